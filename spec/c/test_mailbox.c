/*
** sl_mailbox: FIFO order, bounded take, back-pressure (put waits, never
** drops), one notify per idle period, timed put, close, and what free
** does with queued frames; items other than frames through their ops, and
** try_put, which never waits.
*/
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "streamlua/frame.h"
#include "streamlua/mailbox.h"
#include "streamlua/pool.h"
#include "streamlua/status.h"
#include "tt.h"

/* Counts notify calls, and checks the mailbox lock is not held. */
typedef struct notify_ctx {
  sl_mailbox *mb;
  atomic_int calls;
  atomic_uint size_seen;
} notify_ctx;

static void count_notify(void *arg) {
  notify_ctx *c = arg;
  atomic_fetch_add(&c->calls, 1);
  if (c->mb != NULL) atomic_store(&c->size_seen, sl_mailbox_size(c->mb));
}

static void test_new(void) {
  CHECK(sl_mailbox_new(0, &sl_mailbox_frames, NULL, NULL) == NULL);
  sl_mailbox *mb = sl_mailbox_new(5, &sl_mailbox_frames, NULL, NULL);
  CHECK(mb != NULL);
  CHECK_EQ(sl_mailbox_capacity(mb), 5);
  CHECK_EQ(sl_mailbox_size(mb), 0);
  CHECK_EQ(sl_mailbox_wait_count(mb), 0);
  void *out[2];
  CHECK_EQ(sl_mailbox_take(mb, out, 2), 0);
  sl_mailbox_free(mb);
  sl_mailbox_free(NULL);
}

static void test_fifo_and_take_max(void) {
  sl_mailbox *mb = sl_mailbox_new(8, &sl_mailbox_frames, NULL, NULL);
  sl_frame *f[5];
  for (int i = 0; i < 5; i++) {
    f[i] = sl_frame_new();
    CHECK_EQ(sl_mailbox_put(mb, f[i]), SL_OK);
    CHECK_EQ(sl_frame_refcount(f[i]), 2);       /* the mailbox's own ref */
  }
  CHECK_EQ(sl_mailbox_size(mb), 5);
  void *out[8] = {0};
  CHECK_EQ(sl_mailbox_take(mb, out, 3), 3);
  CHECK(out[0] == f[0] && out[1] == f[1] && out[2] == f[2]);
  CHECK_EQ(sl_mailbox_size(mb), 2);
  /* Wrap around the ring. */
  for (int i = 0; i < 3; i++) CHECK_EQ(sl_mailbox_put(mb, out[i]), SL_OK);
  for (int i = 0; i < 3; i++) sl_frame_unref(out[i]);   /* take's refs */
  CHECK_EQ(sl_mailbox_take(mb, out, 8), 5);
  CHECK(out[0] == f[3] && out[1] == f[4]);
  CHECK(out[2] == f[0] && out[3] == f[1] && out[4] == f[2]);
  CHECK_EQ(sl_mailbox_take(mb, out, 8), 0);
  CHECK_EQ(sl_mailbox_size(mb), 0);
  for (int i = 0; i < 5; i++)
    CHECK_EQ(sl_frame_refcount(out[i]), 2);     /* mine + take's */
  for (int i = 0; i < 5; i++) sl_frame_unref(out[i]);
  for (int i = 0; i < 5; i++) {
    CHECK_EQ(sl_frame_refcount(f[i]), 1);
    sl_frame_unref(f[i]);
  }
  sl_mailbox_free(mb);
}

static void test_notify_once_per_idle(void) {
  notify_ctx c = {0};
  sl_mailbox *mb = sl_mailbox_new(16, &sl_mailbox_frames, count_notify, &c);
  c.mb = mb;
  sl_frame *f = sl_frame_new();
  void *out[16];
  CHECK_EQ(sl_mailbox_put(mb, f), SL_OK);
  CHECK_EQ(atomic_load(&c.calls), 1);
  CHECK_EQ(atomic_load(&c.size_seen), 1);       /* called without the lock */
  sl_mailbox_put(mb, f);
  sl_mailbox_put(mb, f);
  CHECK_EQ(atomic_load(&c.calls), 1);
  CHECK_EQ(sl_mailbox_take(mb, out, 1), 1);     /* not empty yet */
  sl_frame_unref(out[0]);
  sl_mailbox_put(mb, f);
  CHECK_EQ(atomic_load(&c.calls), 1);
  CHECK_EQ(sl_mailbox_take(mb, out, 16), 3);    /* empty: idle again */
  for (int i = 0; i < 3; i++) sl_frame_unref(out[i]);
  CHECK_EQ(atomic_load(&c.calls), 1);
  sl_mailbox_put(mb, f);
  CHECK_EQ(atomic_load(&c.calls), 2);
  sl_mailbox_put(mb, f);
  CHECK_EQ(atomic_load(&c.calls), 2);
  CHECK_EQ(sl_mailbox_take(mb, out, 2), 2);     /* exactly drained */
  for (int i = 0; i < 2; i++) sl_frame_unref(out[i]);
  sl_mailbox_put(mb, f);
  CHECK_EQ(atomic_load(&c.calls), 3);
  CHECK_EQ(sl_frame_refcount(f), 2);
  sl_mailbox_free(mb);
  CHECK_EQ(sl_frame_refcount(f), 1);
  sl_frame_unref(f);
}

static void test_put_timed_times_out(void) {
  sl_mailbox *mb = sl_mailbox_new(1, &sl_mailbox_frames, NULL, NULL);
  sl_frame *a = sl_frame_new(), *b = sl_frame_new();
  CHECK_EQ(sl_mailbox_put_timed(mb, a, 1000), SL_OK);   /* room: no wait */
  CHECK_EQ(sl_mailbox_wait_count(mb), 0);
  double t0 = now_s();
  CHECK_EQ(sl_mailbox_put_timed(mb, b, 30000), SL_ETIMEDOUT);
  double waited = now_s() - t0;
  CHECK(waited >= 0.029);
  CHECK(waited < 30.0);                         /* a bound on a hang */
  CHECK_EQ(sl_mailbox_wait_count(mb), 1);
  CHECK_EQ(sl_frame_refcount(b), 1);            /* not queued */
  CHECK_EQ(sl_mailbox_size(mb), 1);
  CHECK_EQ(sl_mailbox_put_timed(mb, b, 0), SL_ETIMEDOUT);
  CHECK_EQ(sl_mailbox_put_timed(mb, b, -5), SL_ETIMEDOUT);
  CHECK_EQ(sl_mailbox_wait_count(mb), 3);
  void *out;
  CHECK_EQ(sl_mailbox_take(mb, &out, 1), 1);
  CHECK(out == a);
  sl_frame_unref(out);
  sl_mailbox_free(mb);
  CHECK_EQ(sl_frame_refcount(a), 1);
  sl_frame_unref(a);
  sl_frame_unref(b);
}

typedef struct producer_ctx {
  sl_mailbox *mb;
  sl_frame *f;
  int64_t timeout_us;          /* < 0: plain put */
  atomic_int done;
  int rc;
} producer_ctx;

static void *producer_once(void *arg) {
  producer_ctx *p = arg;
  p->rc = p->timeout_us < 0 ? sl_mailbox_put(p->mb, p->f)
                            : sl_mailbox_put_timed(p->mb, p->f, p->timeout_us);
  atomic_store(&p->done, 1);
  return NULL;
}

/* Waits (bounded) until the mailbox has counted `n` waits. */
static int wait_for_waits(sl_mailbox *mb, uint64_t n) {
  double deadline = now_s() + 20.0;
  while (sl_mailbox_wait_count(mb) < n) {
    if (now_s() > deadline) return 0;
    sched_yield();
  }
  return 1;
}

/* Waits (bounded) for a producer to return; if it does not, closes the
** mailbox so the thread can still be joined. Returns 1 if it returned. */
static int join_producer(pthread_t t, producer_ctx *p) {
  double deadline = now_s() + 20.0;
  while (!atomic_load(&p->done) && now_s() < deadline) sched_yield();
  int returned = atomic_load(&p->done);
  if (!returned) sl_mailbox_close(p->mb);
  pthread_join(t, NULL);
  return returned;
}

static void test_put_blocks_until_take(void) {
  sl_mailbox *mb = sl_mailbox_new(2, &sl_mailbox_frames, NULL, NULL);
  sl_frame *a = sl_frame_new(), *b = sl_frame_new(), *c = sl_frame_new();
  sl_mailbox_put(mb, a);
  sl_mailbox_put(mb, b);
  producer_ctx p = {.mb = mb, .f = c, .timeout_us = -1};
  atomic_init(&p.done, 0);
  pthread_t t;
  pthread_create(&t, NULL, producer_once, &p);
  CHECK(wait_for_waits(mb, 1));
  sleep_ms(30);
  CHECK_EQ(atomic_load(&p.done), 0);            /* still waiting */
  CHECK_EQ(sl_mailbox_size(mb), 2);
  void *out[2];
  CHECK_EQ(sl_mailbox_take(mb, out, 1), 1);
  CHECK(out[0] == a);
  sl_frame_unref(out[0]);
  CHECK(join_producer(t, &p));                  /* take woke it */
  CHECK_EQ(p.rc, SL_OK);
  CHECK_EQ(sl_mailbox_size(mb), 2);
  CHECK_EQ(sl_mailbox_take(mb, out, 2), 2);
  CHECK(out[0] == b && out[1] == c);
  sl_frame_unref(out[0]);
  sl_frame_unref(out[1]);
  CHECK_EQ(sl_mailbox_wait_count(mb), 1);

  /* A timed put that gets room in time succeeds. */
  sl_mailbox_put(mb, a);
  sl_mailbox_put(mb, b);
  producer_ctx q = {.mb = mb, .f = c, .timeout_us = 5000000};
  atomic_init(&q.done, 0);
  pthread_create(&t, NULL, producer_once, &q);
  CHECK(wait_for_waits(mb, 2));
  CHECK_EQ(sl_mailbox_take(mb, out, 1), 1);
  sl_frame_unref(out[0]);
  CHECK(join_producer(t, &q));
  CHECK_EQ(q.rc, SL_OK);
  CHECK_EQ(sl_mailbox_size(mb), 2);
  sl_mailbox_free(mb);
  CHECK_EQ(sl_frame_refcount(a), 1);
  CHECK_EQ(sl_frame_refcount(b), 1);
  CHECK_EQ(sl_frame_refcount(c), 1);
  sl_frame_unref(a);
  sl_frame_unref(b);
  sl_frame_unref(c);
}

static void test_close_wakes_producer(void) {
  sl_mailbox *mb = sl_mailbox_new(1, &sl_mailbox_frames, NULL, NULL);
  sl_frame *a = sl_frame_new(), *b = sl_frame_new();
  sl_mailbox_put(mb, a);
  producer_ctx p = {.mb = mb, .f = b, .timeout_us = -1};
  atomic_init(&p.done, 0);
  pthread_t t;
  pthread_create(&t, NULL, producer_once, &p);
  CHECK(wait_for_waits(mb, 1));
  sl_mailbox_close(mb);
  CHECK(join_producer(t, &p));
  CHECK_EQ(p.rc, SL_ECLOSED);
  CHECK_EQ(sl_frame_refcount(b), 1);            /* not queued */

  /* A timed waiter is woken too, long before its timeout. */
  sl_mailbox *mb2 = sl_mailbox_new(1, &sl_mailbox_frames, NULL, NULL);
  sl_mailbox_put(mb2, a);
  producer_ctx q = {.mb = mb2, .f = b, .timeout_us = 60 * 1000000};
  atomic_init(&q.done, 0);
  double t0 = now_s();
  pthread_create(&t, NULL, producer_once, &q);
  CHECK(wait_for_waits(mb2, 1));
  sl_mailbox_close(mb2);
  CHECK(join_producer(t, &q));
  CHECK_EQ(q.rc, SL_ECLOSED);
  CHECK(now_s() - t0 < 30.0);                   /* not its 60 s timeout */

  /* Later puts fail at once, full or not. */
  CHECK_EQ(sl_mailbox_put(mb, b), SL_ECLOSED);
  CHECK_EQ(sl_mailbox_put_timed(mb, b, 1000000), SL_ECLOSED);
  void *out;
  CHECK_EQ(sl_mailbox_take(mb, &out, 1), 1);
  sl_frame_unref(out);
  CHECK_EQ(sl_mailbox_put(mb, b), SL_ECLOSED);   /* room now, still closed */
  CHECK_EQ(sl_mailbox_size(mb), 0);
  CHECK_EQ(sl_frame_refcount(b), 1);
  sl_mailbox_free(mb);
  sl_mailbox_free(mb2);
  CHECK_EQ(sl_frame_refcount(a), 1);
  sl_frame_unref(a);
  sl_frame_unref(b);
}

static void test_free_unrefs_queued(void) {
  sl_pool *pool = sl_pool_new();
  sl_mailbox *mb = sl_mailbox_new(8, &sl_mailbox_frames, NULL, NULL);
  for (int i = 0; i < 5; i++) {
    sl_frame *f = sl_pool_req_frame(pool, 100);
    CHECK_EQ(sl_mailbox_put(mb, f), SL_OK);
    sl_frame_unref(f);                          /* the mailbox keeps it */
  }
  /* Take and put back a few so the queued ones wrap around the ring. */
  void *out[3];
  CHECK_EQ(sl_mailbox_take(mb, out, 3), 3);
  for (int i = 0; i < 3; i++) {
    sl_mailbox_put(mb, out[i]);
    sl_frame_unref(out[i]);
  }
  CHECK_EQ(sl_pool_get_alloc_count(pool), 5);
  CHECK_EQ(sl_pool_get_alloc_bytes(pool), 500);
  sl_mailbox_close(mb);
  sl_mailbox_free(mb);
  CHECK_EQ(sl_pool_get_alloc_count(pool), 0);
  CHECK_EQ(sl_pool_get_alloc_bytes(pool), 0);
  sl_pool_unref(pool);
}

/* ---- a producer thread and a consumer thread ---- */

#define STREAM_FRAMES 300000
#define STREAM_CAP 64
#define TAKE_MAX 16

typedef struct stream_ctx {
  sl_mailbox *mb;
  sl_pool *pool;
  sem_t wake;
  atomic_int notifies;
  long received;
  long out_of_order;
  int lost_wakeup;
  int batched;                  /* produce with put_many */
  int produce_errors;
} stream_ctx;

static void stream_notify(void *arg) {
  stream_ctx *c = arg;
  atomic_fetch_add(&c->notifies, 1);
  sem_post(&c->wake);
}

/* The same stream through put_many, in batches larger than the mailbox. */
static void *stream_producer_many(void *arg) {
  stream_ctx *c = arg;
  enum { BATCH = STREAM_CAP * 2 + 3 };
  sl_frame *fs[BATCH];
  for (uint32_t seq = 0; seq < STREAM_FRAMES;) {
    uint32_t n = 0;
    for (; n < BATCH && seq < STREAM_FRAMES; n++, seq++) {
      fs[n] = sl_pool_req_frame(c->pool, 4);
      if (fs[n] == NULL || sl_frame_write(fs[n], &seq, 0, 4) != SL_OK)
        c->produce_errors++;
    }
    uint32_t done = 0;
    if (sl_mailbox_put_many(c->mb, (void *const *)fs, n, &done) != SL_OK || done != n)
      c->produce_errors++;
    for (uint32_t i = 0; i < n; i++) sl_frame_unref(fs[i]);
  }
  return NULL;
}

static void *stream_producer(void *arg) {
  stream_ctx *c = arg;
  if (c->batched) return stream_producer_many(arg);
  for (uint32_t seq = 0; seq < STREAM_FRAMES; seq++) {
    sl_frame *f = sl_pool_req_frame(c->pool, 4);
    if (f == NULL || sl_frame_write(f, &seq, 0, 4) != SL_OK ||
        sl_mailbox_put(c->mb, f) != SL_OK)
      c->produce_errors++;
    sl_frame_unref(f);
  }
  return NULL;
}

/* The documented consumer: on each notify, take until a take comes back
** short. A lost wake-up shows up as a 5 s wait with frames still due. */
static void *stream_consumer(void *arg) {
  stream_ctx *c = arg;
  uint32_t expect = 0;
  while (c->received < STREAM_FRAMES) {
    struct timespec dl;
    sl_deadline_real(&dl, 5 * SL_US_PER_S);
    int rc;
    while ((rc = sem_timedwait(&c->wake, &dl)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
      c->lost_wakeup = 1;
      break;
    }
    void *out[TAKE_MAX];
    uint32_t n;
    do {
      n = sl_mailbox_take(c->mb, out, TAKE_MAX);
      for (uint32_t i = 0; i < n; i++) {
        uint32_t seq = UINT32_MAX;
        sl_frame_read(out[i], &seq, 0, 4);
        if (seq != expect) c->out_of_order++;
        expect = seq + 1;
        c->received++;
        sl_frame_unref(out[i]);
      }
    } while (n == TAKE_MAX);
  }
  return NULL;
}

static void run_producer_consumer(int batched) {
  stream_ctx c;
  memset(&c, 0, sizeof c);
  c.batched = batched;
  sem_init(&c.wake, 0, 0);
  c.pool = sl_pool_new();
  sl_pool_set_fixed_size(c.pool, 4);
  sl_pool_set_pool_size(c.pool, STREAM_CAP + 8);
  c.mb = sl_mailbox_new(STREAM_CAP, &sl_mailbox_frames, stream_notify, &c);
  pthread_t prod, cons;
  pthread_create(&cons, NULL, stream_consumer, &c);
  pthread_create(&prod, NULL, stream_producer, &c);
  pthread_join(prod, NULL);
  pthread_join(cons, NULL);
  CHECK_EQ(c.produce_errors, 0);
  CHECK_EQ(c.lost_wakeup, 0);
  CHECK_EQ(c.received, STREAM_FRAMES);
  CHECK_EQ(c.out_of_order, 0);
  CHECK_EQ(sl_mailbox_size(c.mb), 0);
  CHECK(atomic_load(&c.notifies) >= 1);
  CHECK(atomic_load(&c.notifies) <= STREAM_FRAMES);
  CHECK_EQ(sl_pool_get_alloc_count(c.pool), 0);
  sl_mailbox_free(c.mb);
  sl_pool_unref(c.pool);
  sem_destroy(&c.wake);
}

static void test_producer_consumer(void) { run_producer_consumer(0); }
static void test_producer_consumer_many(void) { run_producer_consumer(1); }

/* put_many on a closed mailbox queues nothing and says so. */
static void test_put_many_closed(void) {
  sl_pool *p = sl_pool_new();
  sl_mailbox *mb = sl_mailbox_new(4, &sl_mailbox_frames, NULL, NULL);
  sl_frame *fs[3];
  for (int i = 0; i < 3; i++) fs[i] = sl_pool_req_frame(p, 1);
  uint32_t done = 99;
  CHECK_EQ(sl_mailbox_put_many(mb, (void *const *)fs, 3, &done), SL_OK);
  CHECK_EQ(done, 3);
  CHECK_EQ(sl_mailbox_size(mb), 3);
  sl_mailbox_close(mb);
  CHECK_EQ(sl_mailbox_put_many(mb, (void *const *)fs, 3, &done), SL_ECLOSED);
  CHECK_EQ(done, 0);
  CHECK_EQ(sl_mailbox_size(mb), 3);
  for (int i = 0; i < 3; i++) sl_frame_unref(fs[i]);
  sl_mailbox_free(mb);
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
}

/* Items of any kind: counted holds and releases. */
typedef struct item {
  int holds, releases;
} item;

static void item_hold(void *p) { ((item *)p)->holds++; }
static void item_release(void *p) { ((item *)p)->releases++; }
static const sl_mailbox_ops counted = {item_hold, item_release, NULL};
static const sl_mailbox_ops handed = {NULL, item_release, NULL};

static void test_any_item(void) {
  CHECK(sl_mailbox_new(4, NULL, NULL, NULL) == NULL);
  item it[3] = {{0}};
  sl_mailbox *mb = sl_mailbox_new(2, &counted, NULL, NULL);
  CHECK_EQ(sl_mailbox_put(mb, &it[0]), SL_OK);
  CHECK_EQ(sl_mailbox_put(mb, &it[1]), SL_OK);
  CHECK_EQ(it[0].holds, 1);
  void *out = NULL;
  CHECK_EQ(sl_mailbox_take(mb, &out, 1), 1);
  CHECK(out == &it[0]);
  CHECK_EQ(it[0].releases, 0);                  /* the hold is the taker's */
  sl_mailbox_free(mb);                          /* it[1] still queued */
  CHECK_EQ(it[1].holds, 1);
  CHECK_EQ(it[1].releases, 1);
  mb = sl_mailbox_new(1, &handed, NULL, NULL);
  CHECK_EQ(sl_mailbox_put(mb, &it[2]), SL_OK);
  CHECK_EQ(it[2].holds, 0);                     /* handed over, not held */
  sl_mailbox_free(mb);
  CHECK_EQ(it[2].releases, 1);
}

static void test_try_put(void) {
  notify_ctx c = {0};
  item it[2] = {{0}};
  sl_mailbox *mb = sl_mailbox_new(1, &counted, count_notify, &c);
  CHECK_EQ(sl_mailbox_try_put(mb, &it[0]), SL_OK);
  CHECK_EQ(atomic_load(&c.calls), 1);
  CHECK_EQ(sl_mailbox_try_put(mb, &it[1]), SL_EBUSY);   /* full: no wait */
  CHECK_EQ(it[1].holds, 0);
  CHECK_EQ(sl_mailbox_wait_count(mb), 0);
  void *out;
  CHECK_EQ(sl_mailbox_take(mb, &out, 1), 1);
  CHECK_EQ(sl_mailbox_try_put(mb, &it[1]), SL_OK);
  CHECK_EQ(atomic_load(&c.calls), 2);           /* idle again: notified */
  sl_mailbox_close(mb);
  CHECK_EQ(sl_mailbox_try_put(mb, &it[0]), SL_ECLOSED);
  sl_mailbox_free(mb);
  CHECK_EQ(it[1].releases, 1);
  CHECK_EQ(it[0].holds, 1);
}

/* ---- the byte limit ---- */

static sl_frame *sized(sl_pool *p, uint32_t len) {
  sl_frame *f = sl_pool_req_frame(p, len);
  sl_frame_set_payload(f, len);
  return f;
}

static void take_unref(sl_mailbox *mb, uint32_t n) {
  void *out[16];
  CHECK_EQ(sl_mailbox_take(mb, out, n), n);
  for (uint32_t i = 0; i < n; i++) sl_frame_unref(out[i]);
}

/* Large frames fill it to its byte limit and no further; small ones meet
** the item limit first; one larger than the limit passes alone. */
static void test_byte_limit(void) {
  sl_pool *p = sl_pool_new();
  sl_mailbox *mb = sl_mailbox_new(100, &sl_mailbox_frames, NULL, NULL);
  CHECK_EQ(sl_mailbox_max_bytes(mb), 0);
  sl_mailbox_set_max_bytes(mb, 10000);
  CHECK_EQ(sl_mailbox_max_bytes(mb), 10000);
  sl_frame *f[5];
  for (int i = 0; i < 5; i++) f[i] = sized(p, 3000);
  for (int i = 0; i < 3; i++) CHECK_EQ(sl_mailbox_try_put(mb, f[i]), SL_OK);
  CHECK_EQ(sl_mailbox_try_put(mb, f[3]), SL_EBUSY);
  CHECK_EQ(sl_mailbox_put_timed(mb, f[3], 0), SL_ETIMEDOUT);
  CHECK_EQ(sl_mailbox_bytes(mb), 9000);
  CHECK_EQ(sl_mailbox_size(mb), 3);
  take_unref(mb, 1);
  CHECK_EQ(sl_mailbox_bytes(mb), 6000);
  CHECK_EQ(sl_mailbox_try_put(mb, f[3]), SL_OK);
  take_unref(mb, 3);
  CHECK_EQ(sl_mailbox_bytes(mb), 0);
  /* larger than the limit: alone */
  sl_frame *big = sized(p, 50000);
  CHECK_EQ(sl_mailbox_try_put(mb, big), SL_OK);
  CHECK_EQ(sl_mailbox_try_put(mb, f[4]), SL_EBUSY);
  take_unref(mb, 1);
  CHECK_EQ(sl_mailbox_try_put(mb, f[4]), SL_OK);
  take_unref(mb, 1);
  sl_mailbox_free(mb);
  /* small frames: the item limit still holds */
  mb = sl_mailbox_new(4, &sl_mailbox_frames, NULL, NULL);
  sl_mailbox_set_max_bytes(mb, 1u << 20);
  for (int i = 0; i < 4; i++) CHECK_EQ(sl_mailbox_try_put(mb, f[0]), SL_OK);
  CHECK_EQ(sl_mailbox_try_put(mb, f[1]), SL_EBUSY);
  sl_mailbox_free(mb);
  sl_frame_unref(big);
  for (int i = 0; i < 5; i++) sl_frame_unref(f[i]);
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
}

typedef struct many_ctx {
  sl_mailbox *mb;
  sl_frame **f;
  uint32_t n, done;
  int rc;
  atomic_int over;
} many_ctx;

static void *put_many_main(void *arg) {
  many_ctx *m = arg;
  m->rc = sl_mailbox_put_many(m->mb, (void *const *)m->f, m->n, &m->done);
  atomic_store(&m->over, 1);
  return NULL;
}

static int many_over(many_ctx *m) {
  double deadline = now_s() + 20.0;
  while (!atomic_load(&m->over) && now_s() < deadline) sched_yield();
  return atomic_load(&m->over);
}

/* A put at the byte limit waits for room (back-pressure, no drop), and
** close frees it; put_many waits there too. */
static void test_byte_limit_waits(void) {
  sl_pool *p = sl_pool_new();
  sl_mailbox *mb = sl_mailbox_new(100, &sl_mailbox_frames, NULL, NULL);
  sl_mailbox_set_max_bytes(mb, 10000);
  sl_frame *f[5];
  for (int i = 0; i < 5; i++) f[i] = sized(p, 3000);
  many_ctx m = {.mb = mb, .f = f, .n = 5};
  atomic_init(&m.over, 0);
  pthread_t t;
  pthread_create(&t, NULL, put_many_main, &m);
  CHECK(wait_for_waits(mb, 1));
  CHECK_EQ(sl_mailbox_size(mb), 3);
  CHECK_EQ(sl_mailbox_bytes(mb), 9000);
  take_unref(mb, 2);                 /* room for the other two */
  CHECK(many_over(&m));
  pthread_join(t, NULL);
  CHECK_EQ(m.rc, SL_OK);
  CHECK_EQ(m.done, 5);
  CHECK_EQ(sl_mailbox_bytes(mb), 9000);
  /* a single put at the limit, freed by close */
  producer_ctx q = {.mb = mb, .f = f[0], .timeout_us = -1};
  atomic_init(&q.done, 0);
  pthread_create(&t, NULL, producer_once, &q);
  CHECK(wait_for_waits(mb, 2));
  sl_mailbox_close(mb);
  CHECK(join_producer(t, &q));
  CHECK_EQ(q.rc, SL_ECLOSED);
  sl_mailbox_free(mb);
  for (int i = 0; i < 5; i++) {
    CHECK_EQ(sl_frame_refcount(f[i]), 1);
    sl_frame_unref(f[i]);
  }
  sl_pool_unref(p);
}

static const struct tt_case cases[] = {
  {"new, capacity, empty take", test_new},
  {"FIFO order; take returns at most max", test_fifo_and_take_max},
  {"notify once per idle period", test_notify_once_per_idle},
  {"put_timed times out when full", test_put_timed_times_out},
  {"put blocks until take makes room", test_put_blocks_until_take},
  {"close wakes producers; later puts fail", test_close_wakes_producer},
  {"free unrefs queued frames", test_free_unrefs_queued},
  {"producer and consumer threads", test_producer_consumer},
  {"producer and consumer threads, put_many", test_producer_consumer_many},
  {"put_many on a closed mailbox", test_put_many_closed},
  {"items of any kind, through their ops", test_any_item},
  {"try_put never waits", test_try_put},
  {"the byte limit: big items up to it, small ones to the capacity", test_byte_limit},
  {"a put at the byte limit waits; close frees it", test_byte_limit_waits},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
