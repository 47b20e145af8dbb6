/*
** bench_fifo: frames per second across a thread boundary.
**
**   bench_fifo [seconds-per-measurement [wait [size] | paced]]   (default 0.5)
**
** (`wait`: the rows of 4. only, or the one row of `size` bytes; `paced`:
** the rows of 5. only.)
** Measures, in one run:
**   1. Fifo hop: a producer thread (reqFrame, write, sendFrame, unref into a
**      C master whose primary slave is a Fifo(0, 0, noCopy)) -> the Fifo's
**      output thread -> a plain counting slave; at 64 B, 1 KiB and 64 KiB,
**      and at 64 B through a Fifo(1024, 0, noCopy) (drops reported);
**   2. the baseline: a textbook two-thread queue (mutex, two condition
**      variables, a ring of pointers; the producer mallocs and fills a
**      buffer, the consumer pops one item per lock round and frees it);
**   3. a Lua-defined slave fed from a Fifo thread: a C producer thread into
**      Lua's `fifo = sl.stream.Fifo(0, 0, true)`, whose output is
**      `sl.stream.Slave{acceptFrame = function(self, frame) n = n + 1 end}`,
**      with the main thread in sl.run() until n reaches the target;
**   4. a producer that waits (no drops): a Fifo(64, 0, noCopy) set to wait
**      when full, at 64 B and 1 KiB copying, at 64 KiB and 1 MiB noCopy
**      (the payload is not touched), its pools at their defaults and then
**      cached, against a ring of 64 pointers between two threads that wait
**      the same way (no frames, no malloc, no copy); beside each rate the
**      best run's CPU time per frame (the whole process) and the CPUs it
**      kept busy: about 1 when the two threads took turns on one CPU,
**      about 2 when each had its own;
**   5. a stream of one 64 B frame every 20, 100 and
**      1000 us (a sleep between sends), so that the output thread sleeps
**      between frames: the CPU a frame costs the process, through a Fifo
**      at its defaults and through a textbook queue (mutex, condition
**      variable, malloc'd copy) paced the same way.
**
** Each measurement is calibrated to last about the requested time, run 3
** times (Fifo and queue alternating), and the best run is reported. Every
** run checks that exactly the frames sent arrived (and that no buffer is
** left live). Nothing is asserted about speed.
*/
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "sl_lua.h"
#include "streamlua/fifo.h"
#include "streamlua/streamlua.h"
#include "bench.h"
#include "../src/core/cpu.h"
#include "../src/core/futex.h"

#define REPEATS 3

static void fmt_size(char *buf, size_t n, uint32_t size);
#define POOL_BYTES (512u << 10) /* the Fifo's pool keeps this much, */
#define POOL_MIN 16             /* and this many blocks at least, */
#define POOL_MAX 8192           /* and at most */
#define BOUNDED_DEPTH 1024
#define QUEUE_CAP 1024          /* the baseline ring */
#define LUA_HIGH 16384          /* the Lua-case producer pauses above this depth */
#define LUA_LOW 8192

static double seconds_per_run = 0.5;
static uint32_t only_size;   /* the waiting rows of this size only (0: all) */

/* ------------------------------------------------------------- Fifo hop */

typedef struct fifo_ctx {
  sl_object *mobj, *fifo, *sobj;   /* master -> Fifo -> counting slave */
  sl_master *m;
  sl_slave *s;
  const uint8_t *src;
  uint32_t size;
  int until_delivered;             /* bounded Fifo: send until N arrived */
  uint64_t iters;                  /* this run */
  uint64_t f0;                     /* slave count at the start of the run */
  uint64_t sent;                   /* frames the producer sent */
  int err;
  uint64_t drops;                  /* over the best run */
} fifo_ctx;

static void *fifo_producer(void *arg) {
  fifo_ctx *c = arg;
  sl_master *m = c->m;
  const uint8_t *src = c->src;
  uint32_t size = c->size;
  int err = 0;
  uint64_t i = 0;
  if (!c->until_delivered) {
    for (; i < c->iters; i++) {
      sl_frame *f = sl_master_req_frame(m, size, 1);
      err |= sl_frame_write(f, src, 0, size);
      sl_master_send_frame(m, f);
      sl_frame_unref(f);
    }
  } else {
    uint64_t target = c->f0 + c->iters;
    for (;;) {
      for (int k = 0; k < 64; k++, i++) {
        sl_frame *f = sl_master_req_frame(m, size, 1);
        err |= sl_frame_write(f, src, 0, size);
        sl_master_send_frame(m, f);
        sl_frame_unref(f);
      }
      if (sl_slave_get_frame_count(c->s) >= target) break;
    }
  }
  c->sent = i;
  c->err = err;
  return NULL;
}

/* Waits (without spinning a core) until the counting slave has `want`. */
static void await_count(sl_slave *s, uint64_t want) {
  double give_up = bench_now() + 60;
  while (sl_slave_get_frame_count(s) < want && bench_now() < give_up) bench_sleep_us(20);
}

static double fifo_run(void *arg, uint64_t iters) {
  fifo_ctx *c = arg;
  c->iters = iters;
  c->f0 = sl_slave_get_frame_count(c->s);
  uint64_t b0 = sl_slave_get_byte_count(c->s);
  uint64_t d0 = sl_fifo_drop_count(sl_fifo_from_object(c->fifo));
  pthread_t t;
  double t0 = bench_now();
  if (pthread_create(&t, NULL, fifo_producer, c) != 0) {
    bench_fail("fifo: pthread_create", 1, 0);
    return 1.0;
  }
  pthread_join(t, NULL);
  await_count(c->s, c->f0 + iters);
  double dt = bench_now() - t0;
  uint64_t drops = sl_fifo_drop_count(sl_fifo_from_object(c->fifo)) - d0;
  if (c->err != 0) bench_fail("fifo: sl_frame_write status", (unsigned long long)-c->err, 0);
  /* Let the queue run dry: everything sent is delivered or dropped. */
  double give_up = bench_now() + 60;
  while (sl_slave_get_frame_count(c->s) - c->f0 + (sl_fifo_drop_count(sl_fifo_from_object(c->fifo)) - d0) <
             c->sent && bench_now() < give_up)
    bench_sleep_us(20);
  uint64_t got = sl_slave_get_frame_count(c->s) - c->f0;
  drops = sl_fifo_drop_count(sl_fifo_from_object(c->fifo)) - d0;
  if (got + drops != c->sent) bench_fail("fifo: delivered + dropped", got + drops, c->sent);
  if (sl_slave_get_byte_count(c->s) - b0 != got * c->size)
    bench_fail("fifo: slave byte count", sl_slave_get_byte_count(c->s) - b0, got * c->size);
  if (!c->until_delivered) {
    if (got != iters) bench_fail("fifo: slave frame count", got, iters);
    if (drops != 0) bench_fail("fifo: drops with an unbounded Fifo", drops, 0);
  }
  c->drops = drops;           /* the caller keeps the best run's */
  return dt;
}

static int fifo_setup(fifo_ctx *c, uint32_t depth, uint32_t size,
                      const uint8_t *src) {
  memset(c, 0, sizeof *c);
  c->mobj = sl_master_new(NULL);
  c->fifo = sl_fifo_object(sl_fifo_new(depth, 0, 1, NULL));
  c->sobj = sl_slave_new(NULL);
  if (c->mobj == NULL || c->fifo == NULL || c->sobj == NULL) return -1;
  c->m = c->mobj->master;
  c->s = c->sobj->slave;
  /* reqFrame goes to the master's primary, the Fifo: its own pool. */
  sl_pool_set_fixed_size(c->fifo->slave->pool, size);
  uint32_t blocks = POOL_BYTES / size;
  if (blocks < POOL_MIN) blocks = POOL_MIN;
  if (blocks > POOL_MAX) blocks = POOL_MAX;
  sl_pool_set_pool_size(c->fifo->slave->pool, blocks);
  if (sl_master_add_slave(c->m, c->fifo->slave) != SL_OK) return -1;
  if (sl_master_add_slave(c->fifo->master, c->s) != SL_OK) return -1;
  c->src = src;
  c->size = size;
  c->until_delivered = depth > 0;
  /* An unbounded row is unbounded in bytes too: a producer running ahead
  ** would otherwise meet the default byte limit and see drops. */
  if (depth == 0) sl_fifo_set_max_queue_bytes(sl_fifo_from_object(c->fifo), 0);
  return 0;
}

static void fifo_teardown(fifo_ctx *c) {
  sl_pool *p = c->fifo->slave->pool;
  double give_up = bench_now() + 10;
  while (sl_pool_get_alloc_count(p) != 0 && bench_now() < give_up) bench_sleep_us(100);
  if (sl_pool_get_alloc_count(p) != 0)
    bench_fail("fifo: live buffers after the runs", sl_pool_get_alloc_count(p), 0);
  sl_object_unref(c->mobj);
  sl_object_unref(c->fifo);
  sl_object_unref(c->sobj);
}

/* ------------------------------------------------- textbook queue baseline */

typedef struct queue_ctx {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  void *ring[QUEUE_CAP];
  uint32_t head, count;
  const uint8_t *src;
  uint32_t size;
  uint64_t iters;
  long pace_us;                  /* a sleep after each item (paced rows) */
  uint64_t frames, bytes;        /* consumer side */
  unsigned sink;
  int oom;
} queue_ctx;

static void *queue_producer(void *arg) {
  queue_ctx *q = arg;
  for (uint64_t i = 0; i < q->iters; i++) {
    uint8_t *b = malloc(q->size);
    if (b == NULL) {
      q->oom = 1;
      abort();
    }
    memcpy(b, q->src, q->size);
    pthread_mutex_lock(&q->mu);
    while (q->count == QUEUE_CAP) pthread_cond_wait(&q->not_full, &q->mu);
    q->ring[(q->head + q->count) % QUEUE_CAP] = b;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    if (q->pace_us > 0) bench_sleep_us(q->pace_us);
  }
  return NULL;
}

static void *queue_consumer(void *arg) {
  queue_ctx *q = arg;
  uint64_t frames = 0, bytes = 0;
  unsigned sink = 0;
  for (uint64_t i = 0; i < q->iters; i++) {
    pthread_mutex_lock(&q->mu);
    while (q->count == 0) pthread_cond_wait(&q->not_empty, &q->mu);
    uint8_t *b = q->ring[q->head];
    q->head = (q->head + 1) % QUEUE_CAP;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    frames++;
    bytes += q->size;
    sink += b[0];                 /* the "slave" looks at the data */
    free(b);
  }
  q->frames += frames;
  q->bytes += bytes;
  q->sink += sink;
  return NULL;
}

static queue_ctx *queue_new(const uint8_t *src, uint32_t size) {
  queue_ctx *q = calloc(1, sizeof *q);
  if (q == NULL) return NULL;
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  pthread_cond_init(&q->not_full, NULL);
  q->src = src;
  q->size = size;
  return q;
}

static void queue_free(queue_ctx *q) {
  pthread_cond_destroy(&q->not_full);
  pthread_cond_destroy(&q->not_empty);
  pthread_mutex_destroy(&q->mu);
  free(q);
}

static double queue_run(void *arg, uint64_t iters) {
  queue_ctx *q = arg;
  q->iters = iters;
  uint64_t f0 = q->frames, b0 = q->bytes;
  pthread_t p, c;
  double t0 = bench_now();
  pthread_create(&c, NULL, queue_consumer, q);
  pthread_create(&p, NULL, queue_producer, q);
  pthread_join(p, NULL);
  pthread_join(c, NULL);
  double dt = bench_now() - t0;
  if (q->frames - f0 != iters) bench_fail("queue: frames", q->frames - f0, iters);
  if (q->bytes - b0 != iters * q->size) bench_fail("queue: bytes", q->bytes - b0, iters * q->size);
  if (q->count != 0) bench_fail("queue: left in the ring", q->count, 0);
  return dt;
}

/* ------------------------------------------- a producer that waits at 64 */

/*
** The hop with a producer that never drops: a Fifo(64, 0, noCopy) set to
** wait when full, its pools left at their defaults (or, `cached`, both the
** Fifo's pool and the counting slave's fixed-size with blocks kept). At
** 64 B and 1 KiB the Fifo copies (its default); at 64 KiB and 1 MiB it
** hands on the frame itself and nobody touches the payload.
*/

#define WAIT_DEPTH 64

typedef struct wait_ctx {
  sl_object *mobj, *fifo, *sobj;
  sl_master *m;
  sl_slave *s;
  const uint8_t *src;
  uint32_t size;
  int no_copy;
  uint64_t iters;
  int err;
} wait_ctx;

static void *wait_producer(void *arg) {
  wait_ctx *c = arg;
  sl_master *m = c->m;
  int err = 0;
  for (uint64_t i = 0; i < c->iters; i++) {
    sl_frame *f = sl_master_req_frame(m, c->size, 1);
    if (f == NULL) {
      err = -1;
      break;
    }
    if (c->no_copy) err |= sl_frame_set_payload(f, c->size);
    else err |= sl_frame_write(f, c->src, 0, c->size);
    sl_master_send_frame(m, f);
    sl_frame_unref(f);
  }
  c->err = err;
  return NULL;
}

/* The process's CPU time in seconds: what a run cost both threads (the
** main thread sleeps in 20 us steps meanwhile). */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double last_cpu_s;    /* CPU seconds of the last wait_run or ring_run */

static double wait_run(void *arg, uint64_t iters) {
  wait_ctx *c = arg;
  c->iters = iters;
  double c0 = cpu_now();
  uint64_t f0 = sl_slave_get_frame_count(c->s);
  uint64_t d0 = sl_fifo_drop_count(sl_fifo_from_object(c->fifo));
  pthread_t t;
  double t0 = bench_now();
  if (pthread_create(&t, NULL, wait_producer, c) != 0) {
    bench_fail("wait: pthread_create", 1, 0);
    return 1.0;
  }
  pthread_join(t, NULL);
  await_count(c->s, f0 + iters);
  double dt = bench_now() - t0;
  last_cpu_s = cpu_now() - c0;
  if (c->err != 0) bench_fail("wait: producer status", (unsigned long long)-c->err, 0);
  uint64_t got = sl_slave_get_frame_count(c->s) - f0;
  uint64_t drops = sl_fifo_drop_count(sl_fifo_from_object(c->fifo)) - d0;
  if (got != iters) bench_fail("wait: slave frame count", got, iters);
  if (drops != 0) bench_fail("wait: drops with a waiting producer", drops, 0);
  return dt;
}

static void cache_pool(sl_pool *p, uint32_t size) {
  uint32_t blocks = size >= (64u << 10) ? (4u << 20) / size + 8 : 1024;
  sl_pool_set_fixed_size(p, size);
  sl_pool_set_pool_size(p, blocks);
}

static int wait_setup(wait_ctx *c, uint32_t size, int no_copy, int cached,
                      const uint8_t *src) {
  memset(c, 0, sizeof *c);
  c->mobj = sl_master_new(NULL);
  sl_fifo *q = sl_fifo_new(WAIT_DEPTH, 0, no_copy, NULL);
  c->fifo = sl_fifo_object(q);
  c->sobj = sl_slave_new(NULL);
  if (c->mobj == NULL || c->fifo == NULL || c->sobj == NULL) return -1;
  sl_fifo_set_wait_when_full(q, 1);
  c->m = c->mobj->master;
  c->s = c->sobj->slave;
  if (cached) {
    cache_pool(c->fifo->slave->pool, size);
    cache_pool(c->s->pool, size);
  }
  if (sl_master_add_slave(c->m, c->fifo->slave) != SL_OK) return -1;
  if (sl_master_add_slave(c->fifo->master, c->s) != SL_OK) return -1;
  c->src = src;
  c->size = size;
  c->no_copy = no_copy;
  return 0;
}

static void wait_teardown(wait_ctx *c) {
  sl_object_unref(c->mobj);
  sl_object_unref(c->fifo);
  sl_object_unref(c->sobj);
}

/*
** The baseline: a ring of pointers between two threads, nothing else. The
** producer waits while WAIT_DEPTH are queued; the consumer takes all that
** is queued at once. Each side polls briefly (as long as the Fifo's
** sides, and not at all when the other side last ran on its CPU), then
** sleeps on a futex word, and is woken only when asleep: the Fifo's way
** of waiting.
*/

#define RING_POLLS 256
#define RING_PAUSES 8
#define RING_GATHER 32
#define RING_GATHER_PAUSES 256
#define RING_GATHER_LOOKS 8

typedef struct ring_side {
  _Alignas(64) atomic_uint_least64_t count;   /* pushed, or popped */
  atomic_int sleeping;                        /* its futex word */
  atomic_int cpu;                             /* where it last ran */
} ring_side;

typedef struct ring_ctx {
  ring_side in, out;
  _Alignas(64) void *slot[WAIT_DEPTH];
  void *items[WAIT_DEPTH];
  uint64_t iters;
  uint64_t got;
} ring_ctx;

static int ring_note_cpu(ring_side *self) {
  int cpu = sl_cpu_now();
  if (atomic_load_explicit(&self->cpu, memory_order_relaxed) != cpu)
    atomic_store_explicit(&self->cpu, cpu, memory_order_relaxed);
  return cpu;
}

/* Whether `other` may be running on another CPU (then polling can help). */
static int ring_other_elsewhere(ring_side *self, ring_side *other) {
  int cpu = ring_note_cpu(self);
  return cpu < 0 || cpu != atomic_load_explicit(&other->cpu, memory_order_relaxed);
}

/* Waits until ready(c) holds, sleeping on `self` after a short poll (none
** when `other` last ran on this CPU). */
static void ring_await(ring_ctx *c, ring_side *self, ring_side *other,
                       int (*ready)(ring_ctx *c)) {
  int n = ring_other_elsewhere(self, other) ? RING_POLLS : 0;
  for (int i = 0; i < n; i++) {
    if (ready(c)) return;
    for (int j = 0; j < RING_PAUSES; j++) sl_cpu_relax();
  }
  for (;;) {
    atomic_store(&self->sleeping, 1);
    if (ready(c)) break;
    sl_futex_wait(&self->sleeping, 1, -1);
  }
  atomic_store_explicit(&self->sleeping, 0, memory_order_relaxed);
}

static void ring_wake(ring_side *other) {
  if (atomic_load(&other->sleeping) == 1 && atomic_exchange(&other->sleeping, 0) == 1)
    sl_futex_wake(&other->sleeping, 1);
}

static int ring_has_room(ring_ctx *c) {
  return atomic_load(&c->in.count) - atomic_load(&c->out.count) < WAIT_DEPTH;
}

static int ring_has_items(ring_ctx *c) {
  return atomic_load(&c->in.count) != atomic_load(&c->out.count);
}

static void *ring_producer(void *arg) {
  ring_ctx *c = arg;
  uint64_t n = atomic_load_explicit(&c->in.count, memory_order_relaxed);
  for (uint64_t i = 0; i < c->iters; i++) {
    if (!ring_has_room(c)) ring_await(c, &c->in, &c->out, ring_has_room);
    ring_note_cpu(&c->in);
    c->slot[n % WAIT_DEPTH] = c->items[i % WAIT_DEPTH];
    atomic_store(&c->in.count, ++n);
    ring_wake(&c->out);
  }
  return NULL;
}

/* The Fifo's gathering: while the producer queues on another CPU, look
** again every RING_GATHER_PAUSES pauses while the count grows, until
** RING_GATHER items are queued or RING_GATHER_LOOKS looks. */
static void ring_gather(ring_ctx *c, uint64_t popped) {
  uint64_t d = atomic_load_explicit(&c->in.count, memory_order_acquire) - popped;
  if (d >= RING_GATHER || !ring_other_elsewhere(&c->out, &c->in)) return;
  for (int i = 0; i < RING_GATHER_LOOKS; i++) {
    for (int j = 0; j < RING_GATHER_PAUSES; j++) sl_cpu_relax();
    uint64_t now = atomic_load_explicit(&c->in.count, memory_order_acquire) - popped;
    if (now == d || now >= RING_GATHER) return;
    d = now;
  }
}

static void *ring_consumer(void *arg) {
  ring_ctx *c = arg;
  uint64_t n = atomic_load_explicit(&c->out.count, memory_order_relaxed);
  uint64_t got = 0;
  uintptr_t sink = 0;
  while (got < c->iters) {
    ring_await(c, &c->out, &c->in, ring_has_items);
    ring_gather(c, n);
    uint64_t end = atomic_load_explicit(&c->in.count, memory_order_acquire);
    for (; n != end; n++, got++) sink += (uintptr_t)c->slot[n % WAIT_DEPTH];
    atomic_store(&c->out.count, n);
    ring_wake(&c->in);
  }
  c->got += got + (sink == 1);   /* keeps the loads */
  return NULL;
}

static double ring_run(void *arg, uint64_t iters) {
  ring_ctx *c = arg;
  c->iters = iters;
  uint64_t g0 = c->got;
  pthread_t p, q;
  double c0 = cpu_now();
  double t0 = bench_now();
  pthread_create(&q, NULL, ring_consumer, c);
  pthread_create(&p, NULL, ring_producer, c);
  pthread_join(p, NULL);
  pthread_join(q, NULL);
  double dt = bench_now() - t0;
  last_cpu_s = cpu_now() - c0;
  if (c->got - g0 != iters) bench_fail("ring: items", c->got - g0, iters);
  return dt;
}

static ring_ctx *ring_new(void) {
  ring_ctx *c = aligned_alloc(64, (sizeof(ring_ctx) + 63) & ~(size_t)63);
  if (c == NULL) return NULL;
  memset(c, 0, sizeof *c);
  for (int i = 0; i < WAIT_DEPTH; i++) c->items[i] = &c->items[i];
  atomic_init(&c->in.cpu, -1);
  atomic_init(&c->out.cpu, -1);
  return c;
}

static void ring_free(ring_ctx *c) { free(c); }

static void wait_rows(const uint8_t *src, int cached) {
  static const struct {
    uint32_t size;
    int no_copy;
  } rows[] = {{64, 0}, {1024, 0}, {64u << 10, 1}, {1u << 20, 1}};
  printf("\nproducer thread -> Fifo(%d, 0, noCopy) waiting when full -> output "
         "thread -> counting slave,\npools %s, vs a ring of %d pointers between "
         "two threads waiting the same way\n",
         WAIT_DEPTH, cached ? "fixed-size with blocks kept" : "at their defaults",
         WAIT_DEPTH);
  printf("%-8s %-6s | %13s %9s %8s %5s | %13s %9s %8s %5s | %10s\n", "size",
         "noCopy", "fifo frame/s", "ns/frame", "cpu ns", "CPUs", "ring item/s",
         "ns/item", "cpu ns", "CPUs", "fifo/ring");
  printf("----------------+----------------------------------------+"
         "----------------------------------------+-----------\n");
  for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
    if (only_size != 0 && rows[r].size != only_size) continue;
    wait_ctx wc;
    ring_ctx *rc = ring_new();
    if (rc == NULL || wait_setup(&wc, rows[r].size, rows[r].no_copy, cached, src) != 0) {
      fprintf(stderr, "wait setup failed\n");
      exit(1);
    }
    double fb = 1e30, rb = 1e30, fc = 0, rcpu = 0;   /* best runs' CPU */
    uint64_t fi = bench_calibrate(wait_run, &wc, seconds_per_run, 1024, 10.0);
    uint64_t ri = bench_calibrate(ring_run, rc, seconds_per_run, 1024, 10.0);
    for (int k = 0; k < REPEATS; k++) {
      double t = wait_run(&wc, fi);
      if (t < fb) {
        fb = t;
        fc = last_cpu_s;
      }
      t = ring_run(rc, ri);
      if (t < rb) {
        rb = t;
        rcpu = last_cpu_s;
      }
    }
    wait_teardown(&wc);
    ring_free(rc);
    char sz[16];
    fmt_size(sz, sizeof sz, rows[r].size);
    double fr = (double)fi / fb, rr = (double)ri / rb;
    printf("%-8s %-6s | %13.0f %9.1f %8.1f %5.2f | %13.0f %9.1f %8.1f %5.2f | %9.2fx\n",
           sz, rows[r].no_copy ? "yes" : "no", fr, 1e9 / fr, fc * 1e9 / (double)fi,
           fc / fb, rr, 1e9 / rr, rcpu * 1e9 / (double)ri, rcpu / rb, fr / rr);
    fflush(stdout);
  }
}

/* ------------------------------------------------ Lua slave behind a Fifo */

typedef struct lua_ctx {
  lua_State *L;
  sl_object *fifo;               /* Lua's `fifo` (own reference) */
  sl_object *mobj;               /* C master -> fifo */
  sl_master *m;
  const uint8_t *src;
  uint64_t iters;
  int err;
  uint64_t pauses;               /* producer waits on a deep Fifo */
} lua_ctx;

static lua_Integer lua_get_n(lua_State *L) {
  lua_getglobal(L, "n");
  lua_Integer n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/* Sends iters 64 B frames; pauses while the Fifo holds more than LUA_HIGH
** frames (the Lua side is slower: this keeps memory bounded, and the Fifo
** never runs dry). */
static void *lua_producer(void *arg) {
  lua_ctx *c = arg;
  sl_master *m = c->m;
  int err = 0;
  uint64_t pauses = 0;
  for (uint64_t i = 0; i < c->iters; i++) {
    if ((i & 255) == 0 && sl_fifo_size(sl_fifo_from_object(c->fifo)) > LUA_HIGH) {
      pauses++;
      while (sl_fifo_size(sl_fifo_from_object(c->fifo)) > LUA_LOW) bench_sleep_us(50);
    }
    sl_frame *f = sl_master_req_frame(m, 64, 1);
    err |= sl_frame_write(f, c->src, 0, 64);
    sl_master_send_frame(m, f);
    sl_frame_unref(f);
  }
  c->err = err;
  c->pauses += pauses;
  return NULL;
}

static const char lua_setup_chunk[] =
    "sl = streamlua\n"
    "fifo = sl.stream.Fifo(0, 0, true)\n"
    "n = 0\n"
    "_ = fifo >> sl.stream.Slave{acceptFrame = function(self, frame) n = n + 1 end}\n"
    "function wait_for(N)\n"
    "  local t = sl.every(0.001, function() if n >= N then sl.stop() end end)\n"
    "  sl.run()\n"
    "  t:cancel()\n"
    "end\n";

static double lua_run(void *arg, uint64_t iters) {
  lua_ctx *c = arg;
  lua_State *L = c->L;
  c->iters = iters;
  lua_Integer n0 = lua_get_n(L);
  uint64_t d0 = sl_fifo_drop_count(sl_fifo_from_object(c->fifo));
  pthread_t t;
  double t0 = bench_now();
  if (pthread_create(&t, NULL, lua_producer, c) != 0) {
    bench_fail("lua: pthread_create", 1, 0);
    return 1.0;
  }
  lua_getglobal(L, "wait_for");
  lua_pushinteger(L, n0 + (lua_Integer)iters);
  int rc = lua_pcall(L, 1, 0, 0);
  double dt = bench_now() - t0;
  pthread_join(t, NULL);
  if (rc != LUA_OK) {
    fprintf(stderr, "wait_for: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    bench_failures++;
    return 1.0;
  }
  lua_Integer dn = lua_get_n(L) - n0;
  if (c->err != 0) bench_fail("lua: sl_frame_write status", (unsigned long long)-c->err, 0);
  if ((uint64_t)dn != iters) bench_fail("lua: n", (unsigned long long)dn, iters);
  if (sl_fifo_drop_count(sl_fifo_from_object(c->fifo)) != d0) bench_fail("lua: Fifo drops", sl_fifo_drop_count(sl_fifo_from_object(c->fifo)) - d0, 0);
  return dt;
}

static int lua_setup(lua_ctx *c, const uint8_t *src) {
  memset(c, 0, sizeof *c);
  lua_State *L = luaL_newstate();
  if (L == NULL) return -1;
  lua_gc(L, LUA_GCGEN, 0, 0);   /* the collector mode lua5.4 and streamlua use */
  c->L = L;
  luaL_openlibs(L);
  luaL_requiref(L, "streamlua", sl_lua_open, 1);
  lua_pop(L, 1);
  if (luaL_dostring(L, lua_setup_chunk) != LUA_OK) {
    fprintf(stderr, "Lua setup: %s\n", lua_tostring(L, -1));
    return -1;
  }
  /* The box's first field is the C object. */
  lua_getglobal(L, "fifo");
  sl_object **box = lua_touserdata(L, -1);
  if (box == NULL || *box == NULL || strcmp(sl_object_kind(*box), "Fifo") != 0) {
    fprintf(stderr, "Lua setup: `fifo` is not a Fifo box\n");
    return -1;
  }
  c->fifo = sl_object_ref(*box);
  lua_pop(L, 1);
  sl_pool_set_fixed_size(c->fifo->slave->pool, 64);
  /* room for every frame in flight: the queue, the mailbox, and the boxes
  ** Lua has not collected yet */
  sl_pool_set_pool_size(c->fifo->slave->pool, 4 * LUA_HIGH);
  c->mobj = sl_master_new(NULL);
  if (c->mobj == NULL) return -1;
  c->m = c->mobj->master;
  if (sl_master_add_slave(c->m, c->fifo->slave) != SL_OK) return -1;
  c->src = src;
  return 0;
}

static void lua_teardown(lua_ctx *c) {
  sl_object_unref(c->mobj);
  sl_object_unref(c->fifo);
  sl_lua_shutdown(c->L);
  lua_close(c->L);
}

/* --------------------------------------------------------------- driver */

typedef struct result {
  double best_s;
  uint64_t iters;
  uint64_t drops;        /* in the best run (Fifo cases) */
} result;

/* ------------------------------------------------------ a paced stream */

/* One 64 B frame every gap_us (a sleep between sends), so the output thread
** sleeps between frames: what each frame costs the process in CPU, through
** a Fifo at its defaults (Fifo(0, 0, false): a copy per frame) and through
** the textbook queue of the other rows (queue_ctx), paced the same way. */

/* CPU seconds an item through the textbook queue, paced. */
static double paced_queue(const uint8_t *src, long gap_us, uint64_t n) {
  queue_ctx *q = queue_new(src, 64);
  if (q == NULL) return 0;
  q->pace_us = gap_us;
  double c0 = cpu_now();
  queue_run(q, n);
  double cpu = cpu_now() - c0;
  queue_free(q);
  return cpu / (double)n;
}

/* CPU seconds a frame through a Fifo at its defaults. */
static double paced_fifo(const uint8_t *src, long gap_us, uint64_t n) {
  sl_object *mobj = sl_master_new(NULL);
  sl_object *fifo = sl_fifo_object(sl_fifo_new(0, 0, 0, NULL));
  sl_object *sobj = sl_slave_new(NULL);
  int err = 0;
  if (mobj == NULL || fifo == NULL || sobj == NULL ||
      sl_master_add_slave(mobj->master, fifo->slave) != SL_OK ||
      sl_master_add_slave(fifo->master, sobj->slave) != SL_OK) {
    bench_fail("paced fifo: setup", 1, 0);
    n = 0;                              /* nothing sent; freed below */
  }
  double c0 = cpu_now();
  for (uint64_t i = 0; i < n; i++) {
    sl_frame *f = sl_master_req_frame(mobj->master, 64, 1);
    if (f == NULL) {
      bench_fail("paced fifo: no frame", i, n);
      n = i;                            /* wait for those sent */
      break;
    }
    err |= sl_frame_write(f, src, 0, 64);
    sl_master_send_frame(mobj->master, f);
    sl_frame_unref(f);
    bench_sleep_us(gap_us);
  }
  double cpu = 0;
  if (n > 0) {
    await_count(sobj->slave, n);
    cpu = cpu_now() - c0;
    if (err != 0) bench_fail("paced fifo: write", (unsigned long long)err, 0);
    if (sl_slave_get_frame_count(sobj->slave) != n)
      bench_fail("paced fifo: frames", sl_slave_get_frame_count(sobj->slave), n);
  }
  if (fifo != NULL) sl_object_stop(fifo);
  if (mobj != NULL) sl_object_unref(mobj);
  if (fifo != NULL) sl_object_unref(fifo);
  if (sobj != NULL) sl_object_unref(sobj);
  return n > 0 ? cpu / (double)n : 0;
}

static void paced_rows(const uint8_t *src) {
  static const long gaps[] = {20, 100, 1000};
  printf("one 64 B frame every GAP (a sleep between sends): CPU a frame, the whole process,\n"
         "producer -> Fifo(0, 0, false) at its defaults -> output thread -> counting slave,\n"
         "vs a textbook queue paced the same way (mutex + condvar + ring, malloc/memcpy/free)\n");
  printf("%-8s | %10s | %14s %10s | %14s %10s | %10s\n", "GAP", "frames", "fifo frame/s",
         "CPU us", "queue item/s", "CPU us", "fifo/queue");
  printf("---------+------------+---------------------------+---------------------------+-----------\n");
  for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
    uint64_t n = (uint64_t)(seconds_per_run / ((double)gaps[g] * 1e-6 + 60e-6));
    if (n < 200) n = 200;
    double best_f = 1e30, best_q = 1e30, wall_f = 0, wall_q = 0;
    for (int k = 0; k < REPEATS; k++) {
      double t0 = bench_now();
      double f = paced_fifo(src, gaps[g], n);
      double t1 = bench_now();
      double qc = paced_queue(src, gaps[g], n);
      double t2 = bench_now();
      if (f > 0 && f < best_f) best_f = f, wall_f = t1 - t0;
      if (qc > 0 && qc < best_q) best_q = qc, wall_q = t2 - t1;
    }
    char label[16];
    snprintf(label, sizeof label, "%ld us", gaps[g]);
    printf("%-8s | %10llu | %14.0f %10.2f | %14.0f %10.2f | %9.2fx\n", label,
           (unsigned long long)n, (double)n / wall_f, best_f * 1e6, (double)n / wall_q,
           best_q * 1e6, best_f / best_q);
  }
  printf("\n");
}

static double rate(const result *r) { return (double)r->iters / r->best_s; }

static void fmt_size(char *buf, size_t n, uint32_t size) {
  if (size >= (1u << 20)) snprintf(buf, n, "%u MiB", size >> 20);
  else if (size >= 1024) snprintf(buf, n, "%u KiB", size >> 10);
  else snprintf(buf, n, "%u B", size);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    char *end;
    double s = strtod(argv[1], &end);
    if (*end != '\0' || !(s > 0.0) || s > 60.0) {
      fprintf(stderr, "usage: %s [seconds-per-measurement [wait [size] | paced]]  (0 < s <= 60)\n",
              argv[0]);
      return 2;
    }
    seconds_per_run = s;
  }
  int only_wait = argc > 2 && strcmp(argv[2], "wait") == 0;
  int only_paced = argc > 2 && strcmp(argv[2], "paced") == 0;
  if (only_wait && argc > 3) only_size = (uint32_t)strtoul(argv[3], NULL, 0);
  static const uint32_t sizes[] = {64, 1024, 64 * 1024};
  enum { NSIZES = sizeof sizes / sizeof sizes[0] };
  uint32_t max = sizes[NSIZES - 1];
  uint8_t *src = malloc(max);
  if (src == NULL) return 1;
  for (uint32_t i = 0; i < max; i++) src[i] = (uint8_t)(i * 131u + 7u);

  printf("streamlua %s: frames across a thread boundary\n", SL_VERSION);
  printf("each figure: best of %d runs of ~%.2f s (CLOCK_MONOTONIC)\n\n", REPEATS,
         seconds_per_run);
  if (only_paced) {
    paced_rows(src);
    free(src);
    return bench_failures == 0 ? 0 : 1;
  }
  if (only_wait) {
    wait_rows(src, 0);
    wait_rows(src, 1);
    free(src);
    return bench_failures == 0 ? 0 : 1;
  }
  printf("producer thread -> Fifo(depth, 0, noCopy) -> output thread -> counting slave,\n"
         "vs a textbook two-thread queue (mutex + condvars + ring, malloc/memcpy/free)\n");
  printf("%-8s %-6s | %13s %9s %9s | %13s %9s | %10s\n", "size", "depth",
         "fifo frame/s", "ns/frame", "drops", "queue frame/s", "ns/frame",
         "fifo/queue");
  printf("----------------+-----------------------------------+"
         "-------------------------+-----------\n");

  struct {
    uint32_t size, depth;
  } rows[] = {{64, 0}, {1024, 0}, {64 * 1024, 0}, {64, BOUNDED_DEPTH}};
  for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
    fifo_ctx fc;
    if (fifo_setup(&fc, rows[r].depth, rows[r].size, src) != 0) {
      fprintf(stderr, "Fifo setup failed\n");
      return 1;
    }
    int with_queue = rows[r].depth == 0;
    queue_ctx *qc = queue_new(src, rows[r].size);
    if (qc == NULL) return 1;

    result rf = {1e30, bench_calibrate(fifo_run, &fc, seconds_per_run, 1024, 10.0), 0};
    result rq = {1e30, with_queue ? bench_calibrate(queue_run, qc, seconds_per_run, 1024, 10.0) : 0, 0};
    for (int k = 0; k < REPEATS; k++) {
      double t = fifo_run(&fc, rf.iters);
      if (t < rf.best_s) {
        rf.best_s = t;
        rf.drops = fc.drops;
      }
      if (with_queue) {
        t = queue_run(qc, rq.iters);
        if (t < rq.best_s) rq.best_s = t;
      }
    }
    fifo_teardown(&fc);
    char sz[16], dp[16];
    fmt_size(sz, sizeof sz, rows[r].size);
    if (rows[r].depth == 0) snprintf(dp, sizeof dp, "0");
    else snprintf(dp, sizeof dp, "%u", rows[r].depth);
    double fr = rate(&rf);
    if (with_queue) {
      double qr = rate(&rq);
      printf("%-8s %-6s | %13.0f %9.1f %9llu | %13.0f %9.1f | %9.2fx\n", sz, dp,
             fr, 1e9 / fr, (unsigned long long)rf.drops, qr, 1e9 / qr, fr / qr);
    } else {
      printf("%-8s %-6s | %13.0f %9.1f %9llu | %13s %9s | %10s\n", sz, dp, fr,
             1e9 / fr, (unsigned long long)rf.drops, "-", "-", "-");
    }
    fflush(stdout);
    queue_free(qc);
  }
  printf("(depth %u: the producer sends until the slave has N frames; frame/s "
         "counts delivered frames, drops are those of the best run)\n",
         BOUNDED_DEPTH);
  wait_rows(src, 0);
  wait_rows(src, 1);

  lua_ctx lc;
  if (lua_setup(&lc, src) != 0) {
    fprintf(stderr, "Lua setup failed\n");
    return 1;
  }
  result rl = {1e30, bench_calibrate(lua_run, &lc, seconds_per_run, 1024, 10.0), 0};
  for (int k = 0; k < REPEATS; k++) {
    double t = lua_run(&lc, rl.iters);
    if (t < rl.best_s) rl.best_s = t;
  }
  lua_Integer total = lua_get_n(lc.L);
  uint64_t pauses = lc.pauses;
  lua_teardown(&lc);
  printf("\nC producer thread -> Lua Fifo(0, 0, true) -> Lua-defined slave "
         "(n = n + 1), main thread in sl.run()\n");
  printf("%-34s | %13s %9s\n", "case", "frames/s", "ns/frame");
  printf("-----------------------------------+------------------------\n");
  printf("%-34s | %13.0f %9.1f\n", "64 B, Fifo thread -> Lua slave", rate(&rl),
         1e9 / rate(&rl));
  printf("(producer paused %llu times at a Fifo depth over %d)\n",
         (unsigned long long)pauses, LUA_HIGH);

  printf("\n");
  paced_rows(src);
  printf("checks: every frame sent arrived (or was counted as a drop), no "
         "live buffer left, Lua n = %lld in total: %s\n",
         (long long)total, bench_failures == 0 ? "ok" : "FAILED");
  free(src);
  return bench_failures == 0 ? 0 : 1;
}
