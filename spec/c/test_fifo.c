/*
** sl_fifo: order across the thread, noCopy hands on the frame itself, copy
** mode copies trimSize bytes and the metadata into a frame from the
** downstream primary, drops at a known depth (the output thread is held
** still by a gate slave), maxDepth 0 never drops, counters, stop() while
** the thread is blocked and from inside its own delivery, the last
** reference dropped inside its own delivery, no thread left behind, many
** producers at once, and the stopping thread's wait hook
** (rogue-reference 3.1).
*/
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../src/core/cpu.h"
#include "streamlua/fifo.h"
#include "streamlua/frame.h"
#include "streamlua/master.h"
#include "streamlua/pool.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"
#include "support.h"
#include "tt.h"

/* ---- time, threads, a watchdog ---- */

/* Polls until the process has `want` output threads; 1 if it got there. */
static int threads_settle(int want, double timeout_s) {
  return tt_threads_settle("sl-fifo", want, timeout_s);
}

/* A case that deadlocks fails by name instead of hanging ctest. */
static void on_alarm(int sig) {
  (void)sig;
  static const char a[] = "FAIL ", b[] = ": timed out (deadlock?)\n";
  if (write(1, a, sizeof a - 1) < 0 ||
      write(1, tt_current_, strlen(tt_current_)) < 0 ||
      write(1, b, sizeof b - 1) < 0) {
    /* nothing more to do */
  }
  _exit(1);
}

static void watchdog(unsigned seconds) { alarm(seconds); }

/* ---- frames ---- */

/* Sequence frames carry producer << 48 | seq in 8 bytes. */
#define SEQ_MASK ((UINT64_C(1) << 48) - 1)
#define MAX_PRODUCERS 8

static sl_frame *seq_frame(sl_pool *p, unsigned producer, uint64_t seq) {
  sl_frame *f = sl_pool_req_frame(p, 8);
  uint64_t v = (uint64_t)producer << 48 | seq;
  if (f == NULL || sl_frame_write(f, &v, 0, 8) != SL_OK) abort();
  return f;
}

/* Hands f to the Fifo as a master would (transfer none). */
static void push(sl_object *fifo, sl_frame *f) { sl_slave_accept(fifo->slave, f); }

static void push_seq(sl_object *fifo, sl_pool *p, unsigned producer,
                     uint64_t seq) {
  sl_frame *f = seq_frame(p, producer, seq);
  push(fifo, f);
  sl_frame_unref(f);
}

/* ---- a gate: the shared recorder, checking each producer's order ---- */

/* Per-producer sequence numbers seen by a gate (its context). */
typedef struct order {
  int allow_gaps;               /* dropped frames leave gaps in the sequence */
  uint64_t next_seq[MAX_PRODUCERS];
  long out_of_order;            /* under the recorder's mu */
} order;

static atomic_int gates_destroyed;

static order *order_of(ts_rec *g) { return g->ctx; }

static void order_check(ts_rec *g, sl_frame *f) {
  uint64_t v;
  if (sl_frame_get_payload(f) != 8 || sl_frame_read(f, &v, 0, 8) != SL_OK) return;
  order *o = order_of(g);
  unsigned p = (unsigned)(v >> 48) % MAX_PRODUCERS;
  uint64_t seq = v & SEQ_MASK;
  pthread_mutex_lock(&g->mu);
  if (o->allow_gaps ? seq < o->next_seq[p] : seq != o->next_seq[p]) o->out_of_order++;
  o->next_seq[p] = seq + 1;
  pthread_mutex_unlock(&g->mu);
}

static void gate_free(ts_rec *g) {
  free(g->ctx);
  atomic_fetch_add(&gates_destroyed, 1);
}

static ts_rec *gate_new(int gated) {
  ts_rec *g = ts_rec_new(0);
  g->ctx = calloc(1, sizeof(order));
  if (g->ctx == NULL) abort();
  g->hook = order_check;
  g->on_free = gate_free;
  if (gated) ts_rec_shut(g);
  return g;
}

/* Waits (20 s at most) until at least `entered` deliveries started, `waiting`
** wait at the gate and `done` returned. 1 if so. */
static int gate_await(ts_rec *g, long entered, int waiting, long done) {
  return ts_rec_await(g, entered, waiting, done, 20);
}

static long gate_get(ts_rec *g, const long *field) {
  pthread_mutex_lock(&g->mu);
  long v = *field;
  pthread_mutex_unlock(&g->mu);
  return v;
}

/* Fifo -> gate; the Fifo's master holds its own reference on the gate. */
static sl_object *fifo_to(ts_rec *g, uint32_t depth, uint32_t trim, int no_copy) {
  sl_object *q = sl_fifo_object(sl_fifo_new(depth, trim, no_copy, NULL));
  if (q == NULL) abort();
  if (sl_master_add_slave(q->master, &g->slave) != SL_OK) abort();
  return q;
}

/* Waits (20 s at most) until counter `name` of q reads `want`: the
** output thread counts what it sent once a batch is delivered. */
static int counter_is(sl_object *q, const char *name, uint64_t want) {
  double end = now_s() + 20;
  while (ts_counter(q, name) != want && now_s() < end) sleep_ms(1);
  return ts_counter(q, name) == want;
}

/* ---- cases ---- */

static void test_new(void) {
  sl_object *q = sl_fifo_object(sl_fifo_new(7, 3, 1, NULL));
  CHECK(q != NULL);
  CHECK_STR(sl_object_kind(q), "Fifo");
  CHECK(q->master != NULL);
  CHECK(q->slave != NULL);
  CHECK_EQ(atomic_load(&q->refs), 1);
  CHECK_EQ(sl_fifo_max_depth(sl_fifo_from_object(q)), 7);
  CHECK_EQ(sl_fifo_size(sl_fifo_from_object(q)), 0);
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), 0);
  /* Rogue's Fifo does not count as a base slave. */
  CHECK_EQ(sl_slave_get_frame_count(q->slave), 0);
  sl_object_unref(q);
  q = sl_fifo_object(sl_fifo_new(0, 0, 0, NULL));
  CHECK_EQ(sl_fifo_max_depth(sl_fifo_from_object(q)), 0);
  sl_object_unref(q);
}

static void test_order(void) {
  watchdog(60);
  enum { N = 10000 };
  for (int no_copy = 0; no_copy <= 1; no_copy++) {
    ts_rec *g = gate_new(0);
    sl_object *q = fifo_to(g, 0, 0, no_copy);
    sl_pool *p = sl_pool_new();
    for (uint64_t i = 0; i < N; i++) push_seq(q, p, 0, i);
    CHECK(gate_await(g, N, 0, N));
    CHECK_EQ(gate_get(g, &g->entered), N);
    CHECK_EQ(gate_get(g, &order_of(g)->out_of_order), 0);
    CHECK_EQ(order_of(g)->next_seq[0], N);
    CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), 0);
    CHECK_EQ(sl_slave_get_frame_count(&g->slave), N);
    sl_object_unref(q);
    CHECK_EQ(sl_pool_get_alloc_count(p), 0);   /* every frame came back */
    sl_pool_unref(p);
    sl_object_unref(&g->obj);
  }
  alarm(0);
}

static void test_no_copy_same_frame(void) {
  watchdog(60);
  ts_rec *g = gate_new(1);
  sl_object *q = fifo_to(g, 0, 123, 1);   /* trimSize ignored with noCopy */
  sl_pool *p = sl_pool_new();
  sl_frame *a = sl_pool_req_frame(p, 300);
  sl_frame_set_payload(a, 300);
  sl_frame_set_channel(a, 9);
  push(q, a);
  CHECK(gate_await(g, 1, 1, 0));
  CHECK(g->last.frame == a);
  CHECK_EQ(g->last.size, 300);
  CHECK_EQ(g->last.channel, 9);
  CHECK_EQ(g->last.refs, 2);                /* mine and the Fifo's */
  CHECK_EQ(atomic_load(&g->reqs), 0);       /* nothing requested downstream */
  sl_frame *b = seq_frame(p, 0, 1);
  push(q, b);
  CHECK_EQ(sl_frame_refcount(b), 2);        /* queued: the Fifo holds it */
  CHECK_EQ(sl_fifo_size(sl_fifo_from_object(q)), 1);
  ts_rec_open(g);
  CHECK(gate_await(g, 2, 0, 2));
  CHECK(g->last.frame == b);
  /* Delivered and let go (the thread unrefs after sendFrame returns). */
  double end = now_s() + 20;
  while ((sl_frame_refcount(a) != 1 || sl_frame_refcount(b) != 1) && now_s() < end)
    sleep_ms(1);
  CHECK_EQ(sl_frame_refcount(a), 1);
  CHECK_EQ(sl_frame_refcount(b), 1);
  sl_frame_unref(a);
  sl_frame_unref(b);
  sl_object_unref(q);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
  alarm(0);
}

/* One copy-mode frame through Fifo(0, trim, 0); checks what arrived. */
static void copy_case(uint32_t trim, uint32_t payload, uint32_t want) {
  ts_rec *g = gate_new(1);
  sl_object *q = fifo_to(g, 0, trim, 0);
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 16);          /* a multi-buffer source frame */
  sl_frame *f = sl_pool_req_frame(p, payload);
  uint8_t src[256];
  for (uint32_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 7 + 1);
  if (payload > 0) CHECK_EQ(sl_frame_write(f, src, 0, payload), SL_OK);
  CHECK_EQ(sl_frame_get_payload(f), payload);
  sl_frame_set_channel(f, 5);
  sl_frame_set_error(f, 3);
  sl_frame_set_flags(f, 0xA5C3);
  push(q, f);
  CHECK_EQ(sl_frame_refcount(f), 1);      /* the copy is queued, not f */
  CHECK(gate_await(g, 1, 1, 0));
  CHECK(g->last.frame != f);
  CHECK_EQ(g->last.size, want);
  CHECK_EQ(g->last.channel, 5);
  CHECK_EQ(g->last.error, 3);
  CHECK_EQ(g->last.flags, 0xA5C3);
  CHECK(memcmp(g->last.data, src, want) == 0);
  CHECK_EQ(atomic_load(&g->reqs), 1);     /* from the downstream primary */
  CHECK_EQ(atomic_load(&g->last_req_size), want);
  CHECK_EQ(atomic_load(&g->last_zero_copy), 1);
  if (want > 0) {
    CHECK_EQ(g->last.pool_live, 1);            /* the copy is the gate pool's */
    CHECK_EQ(g->last.buffers, 1);
  }
  CHECK_EQ(g->last.refs, 1);              /* only the Fifo holds the copy */
  ts_rec_open(g);
  CHECK(gate_await(g, 1, 0, 1));
  double end = now_s() + 20;
  while (sl_pool_get_alloc_count(g->slave.pool) != 0 && now_s() < end) sleep_ms(1);
  CHECK_EQ(sl_pool_get_alloc_count(g->slave.pool), 0);
  /* The source frame is untouched. */
  CHECK_EQ(sl_frame_get_payload(f), payload);
  CHECK_EQ(ts_counter(q, "rxBytes"), payload);
  CHECK(counter_is(q, "txBytes", want));   /* counted after the batch */
  sl_frame_unref(f);
  sl_object_unref(q);
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
}

static void test_copy_mode(void) {
  watchdog(60);
  copy_case(50, 100, 50);     /* trimmed */
  copy_case(0, 100, 100);     /* 0: everything */
  copy_case(200, 100, 100);   /* larger than the payload: everything */
  copy_case(100, 100, 100);   /* equal */
  copy_case(1, 100, 1);
  copy_case(0, 0, 0);         /* an empty frame is copied too */
  copy_case(16, 250, 16);     /* trimmed on a buffer boundary */
  alarm(0);
}

/* With the output thread held on the first frame, exactly maxDepth queue. */
static void depth_case(int no_copy) {
  enum { DEPTH = 8, EXTRA = 5 };
  ts_rec *g = gate_new(1);
  sl_object *q = fifo_to(g, DEPTH, 0, no_copy);
  sl_pool *p = sl_pool_new();
  push_seq(q, p, 0, 0);
  CHECK(gate_await(g, 1, 1, 0));          /* the thread is held */
  CHECK_EQ(sl_fifo_size(sl_fifo_from_object(q)), 0);
  sl_frame *kept[DEPTH + EXTRA];
  for (uint64_t i = 0; i < DEPTH + EXTRA; i++) {
    kept[i] = seq_frame(p, 0, i + 1);
    push(q, kept[i]);
  }
  CHECK_EQ(sl_fifo_size(sl_fifo_from_object(q)), DEPTH);
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), EXTRA);
  for (int i = 0; i < DEPTH + EXTRA; i++)
    CHECK_EQ(sl_frame_refcount(kept[i]), no_copy && i < DEPTH ? 2 : 1);
  /* Copy mode checks "full" before copying: no copy for a dropped frame. */
  if (!no_copy) CHECK_EQ(atomic_load(&g->reqs), 1 + DEPTH);
  CHECK_EQ(ts_counter(q, "rxFrames"), 1 + DEPTH + EXTRA);
  CHECK_EQ(ts_counter(q, "drops"), EXTRA);
  CHECK_EQ(ts_counter(q, "depth"), DEPTH);
  CHECK_EQ(ts_counter(q, "maxDepth"), DEPTH);
  sl_fifo_clear_count(sl_fifo_from_object(q));
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), 0);
  CHECK_EQ(sl_fifo_size(sl_fifo_from_object(q)), DEPTH);       /* clearing counts keeps frames */
  ts_rec_open(g);
  CHECK(gate_await(g, 1 + DEPTH, 0, 1 + DEPTH));
  double end = now_s() + 20;
  while (ts_counter(q, "txFrames") != 1 + DEPTH && now_s() < end) sleep_ms(1);
  CHECK_EQ(ts_counter(q, "txFrames"), 1 + DEPTH);
  CHECK_EQ(sl_fifo_size(sl_fifo_from_object(q)), 0);
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), 0);
  CHECK_EQ(gate_get(g, &order_of(g)->out_of_order), 0);
  CHECK_EQ(order_of(g)->next_seq[0], 1 + DEPTH);    /* 0..DEPTH arrived, in order */
  /* Room again: the next frame is queued and delivered. */
  push_seq(q, p, 0, 1 + DEPTH);
  CHECK(gate_await(g, 2 + DEPTH, 0, 2 + DEPTH));
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), 0);
  for (int i = 0; i < DEPTH + EXTRA; i++) sl_frame_unref(kept[i]);
  sl_object_unref(q);
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
}

static void test_drops_at_depth(void) {
  watchdog(60);
  depth_case(1);
  depth_case(0);
  alarm(0);
}

static void test_unbounded(void) {
  watchdog(60);
  enum { N = 50000 };
  ts_rec *g = gate_new(1);
  sl_object *q = fifo_to(g, 0, 0, 1);
  sl_pool *p = sl_pool_new();
  push_seq(q, p, 0, 0);
  CHECK(gate_await(g, 1, 1, 0));
  for (uint64_t i = 1; i <= N; i++) push_seq(q, p, 0, i);
  CHECK_EQ(sl_fifo_size(sl_fifo_from_object(q)), N);
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), 0);
  CHECK_EQ(ts_counter(q, "depth"), N);
  ts_rec_open(g);
  CHECK(gate_await(g, N + 1, 0, N + 1));
  CHECK_EQ(gate_get(g, &order_of(g)->out_of_order), 0);
  CHECK_EQ(order_of(g)->next_seq[0], N + 1);
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), 0);
  sl_object_unref(q);
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
  alarm(0);
}

static void test_counters(void) {
  watchdog(60);
  for (int no_copy = 0; no_copy <= 1; no_copy++) {
    ts_rec *g = gate_new(0);
    sl_object *q = fifo_to(g, 0, no_copy ? 0 : 15, no_copy);
    sl_pool *p = sl_pool_new();
    for (uint32_t len = 10; len <= 30; len += 10) {
      sl_frame *f = sl_pool_req_frame(p, len);
      sl_frame_set_payload(f, len);
      push(q, f);
      sl_frame_unref(f);
    }
    CHECK(gate_await(g, 3, 0, 3));
    double end = now_s() + 20;
    while (ts_counter(q, "txFrames") != 3 && now_s() < end) sleep_ms(1);
    counter_is(q, "txBytes", no_copy ? 60 : 10 + 15 + 15);   /* added after txFrames */
    sl_counter c[SL_COUNTERS_MAX];
    size_t n = sl_object_counters(q, c, SL_COUNTERS_MAX);
    CHECK_EQ(n, 9);
    static const char *names[] = {"rxFrames", "rxBytes", "txFrames", "txBytes", "drops",
                                  "depth", "maxDepth", "maxQueueBytes", "queueBytes"};
    for (size_t i = 0; i < 9 && i < n; i++) CHECK_STR(c[i].name, names[i]);
    CHECK_EQ(ts_counter(q, "maxDepth"), 0);
    CHECK_EQ(ts_counter(q, "maxQueueBytes"), 8u << 20);   /* the default */
    CHECK_EQ(ts_counter(q, "queueBytes"), 0);
    CHECK_EQ(ts_counter(q, "rxFrames"), 3);
    CHECK_EQ(ts_counter(q, "rxBytes"), 60);
    CHECK_EQ(ts_counter(q, "txFrames"), 3);
    CHECK_EQ(ts_counter(q, "txBytes"), no_copy ? 60 : 10 + 15 + 15);
    CHECK_EQ(ts_counter(q, "drops"), 0);
    CHECK_EQ(ts_counter(q, "depth"), 0);
    CHECK_EQ(sl_object_counters(q, c, 2), 2);   /* max is respected */
    CHECK_STR(c[1].name, "rxBytes");
    sl_object_unref(q);
    sl_pool_unref(p);
    sl_object_unref(&g->obj);
  }
  alarm(0);
}

/* Pushes a frame of `len` bytes (transfer none). */
static void push_len(sl_object *q, sl_pool *p, uint32_t len) {
  sl_frame *f = sl_pool_req_frame(p, len);
  sl_frame_set_payload(f, len);
  push(q, f);
  sl_frame_unref(f);
}

static int tx_reaches(sl_object *q, uint64_t n) {
  return ts_counter_reaches(q, "txFrames", n, 20);
}

/* Large frames: the Fifo holds up to its byte limit (the frame being
** delivered included) and drops the rest, counted; then empties. */
static void test_byte_limit(void) {
  watchdog(60);
  for (int no_copy = 0; no_copy <= 1; no_copy++) {
    ts_rec *g = gate_new(1);
    sl_object *q = fifo_to(g, 0, 0, no_copy);
    sl_fifo_set_max_queue_bytes(sl_fifo_from_object(q), 10000);
    CHECK_EQ(ts_counter(q, "maxQueueBytes"), 10000);
    sl_pool *p = sl_pool_new();
    push_len(q, p, 1000);
    CHECK(gate_await(g, 1, 1, 0));          /* held downstream, still counted */
    for (int i = 0; i < 20; i++) push_len(q, p, 1000);
    CHECK_EQ(ts_counter(q, "queueBytes"), 10000);
    CHECK_EQ(ts_counter(q, "depth"), 9);
    CHECK_EQ(ts_counter(q, "drops"), 11);
    CHECK_EQ(ts_counter(q, "rxFrames"), 21);
    ts_rec_open(g);
    CHECK(gate_await(g, 10, 0, 10));
    CHECK(tx_reaches(q, 10));
    CHECK_EQ(ts_counter(q, "queueBytes"), 0);
    push_len(q, p, 1000);                   /* room again */
    CHECK(gate_await(g, 11, 0, 11));
    CHECK_EQ(ts_counter(q, "drops"), 11);
    sl_object_unref(q);
    sl_pool_unref(p);
    sl_object_unref(&g->obj);
  }
  alarm(0);
}

/* Small frames: the depth limit still holds under the byte limit. */
static void test_depth_under_byte_limit(void) {
  watchdog(60);
  ts_rec *g = gate_new(1);
  sl_object *q = fifo_to(g, 5, 0, 1);
  sl_fifo_set_max_queue_bytes(sl_fifo_from_object(q), 1u << 20);
  sl_pool *p = sl_pool_new();
  push_len(q, p, 100);
  CHECK(gate_await(g, 1, 1, 0));
  for (int i = 0; i < 20; i++) push_len(q, p, 100);
  CHECK_EQ(ts_counter(q, "depth"), 5);
  CHECK_EQ(ts_counter(q, "drops"), 15);
  CHECK_EQ(ts_counter(q, "queueBytes"), 600);
  ts_rec_open(g);
  CHECK(gate_await(g, 6, 0, 6));
  sl_object_unref(q);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
  alarm(0);
}

/* A frame larger than the byte limit passes when the queue is empty;
** another behind it is dropped; limit 0 is none. */
static void test_frame_over_byte_limit(void) {
  watchdog(60);
  for (int no_copy = 0; no_copy <= 1; no_copy++) {
    ts_rec *g = gate_new(1);
    sl_object *q = fifo_to(g, 0, 0, no_copy);
    sl_fifo_set_max_queue_bytes(sl_fifo_from_object(q), 100);
    sl_pool *p = sl_pool_new();
    push_len(q, p, 5000);
    CHECK(gate_await(g, 1, 1, 0));
    push_len(q, p, 5000);
    CHECK_EQ(ts_counter(q, "drops"), 1);
    CHECK_EQ(ts_counter(q, "queueBytes"), 5000);
    ts_rec_open(g);
    CHECK(tx_reaches(q, 1));
    push_len(q, p, 5000);
    CHECK(gate_await(g, 2, 0, 2));
    CHECK_EQ(ts_counter(q, "drops"), 1);
    ts_rec_shut(g);
    sl_fifo_set_max_queue_bytes(sl_fifo_from_object(q), 0);
    for (int i = 0; i < 10; i++) push_len(q, p, 5000);
    CHECK(gate_await(g, 3, 1, 2));
    CHECK_EQ(ts_counter(q, "drops"), 1);
    CHECK_EQ(ts_counter(q, "queueBytes"), 50000);
    ts_rec_open(g);
    CHECK(gate_await(g, 12, 0, 12));
    sl_object_unref(q);
    sl_pool_unref(p);
    sl_object_unref(&g->obj);
  }
  alarm(0);
}

/* stop() with the queue full at its byte limit and the output thread
** held downstream: it returns, and the queued frames are drops. */
static void hold_until_cancelled(ts_rec *r, sl_frame *f) {
  (void)r;
  (void)f;
  while (!sl_wait_cancelled()) sleep_ms(1);
}

static void test_stop_at_byte_limit(void) {
  watchdog(60);
  ts_rec *g = gate_new(0);
  g->hook = hold_until_cancelled;
  sl_object *q = fifo_to(g, 0, 0, 1);
  sl_fifo_set_max_queue_bytes(sl_fifo_from_object(q), 4000);
  sl_pool *p = sl_pool_new();
  push_len(q, p, 1000);
  CHECK(gate_await(g, 1, 0, 0));
  for (int i = 0; i < 10; i++) push_len(q, p, 1000);
  CHECK_EQ(ts_counter(q, "queueBytes"), 4000);
  sl_object_stop(q);
  CHECK_EQ(ts_counter(q, "queueBytes"), 0);
  CHECK_EQ(ts_counter(q, "drops"), 7 + 3);
  sl_object_unref(q);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
  alarm(0);
}

/* stop() from another thread while the output thread is held downstream. */
typedef struct stopper {
  sl_object *obj;
  atomic_int done;
} stopper;

static void *stop_thread(void *arg) {
  stopper *s = arg;
  sl_object_stop(s->obj);
  atomic_store(&s->done, 1);
  return NULL;
}

static void test_stop_while_blocked(void) {
  watchdog(60);
  enum { QUEUED = 5 };
  ts_rec *g = gate_new(1);
  sl_object *q = fifo_to(g, 0, 0, 1);
  sl_pool *p = sl_pool_new();
  push_seq(q, p, 0, 0);
  CHECK(gate_await(g, 1, 1, 0));
  sl_frame *kept[QUEUED];
  for (int i = 0; i < QUEUED; i++) {
    kept[i] = seq_frame(p, 0, (uint64_t)i + 1);
    push(q, kept[i]);
  }
  CHECK_EQ(sl_fifo_size(sl_fifo_from_object(q)), QUEUED);
  stopper s = {q, 0};
  pthread_t t;
  pthread_create(&t, NULL, stop_thread, &s);
  double end = now_s() + 20;
  while (sl_fifo_drop_count(sl_fifo_from_object(q)) != QUEUED && now_s() < end) sleep_ms(1);
  CHECK_EQ(atomic_load(&s.done), 0);        /* waits for the delivery */
  CHECK_EQ(sl_fifo_size(sl_fifo_from_object(q)), 0);             /* queued frames are gone... */
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), QUEUED);  /* ...counted as drops */
  for (int i = 0; i < QUEUED; i++) CHECK_EQ(sl_frame_refcount(kept[i]), 1);
  ts_rec_open(g);
  pthread_join(t, NULL);
  CHECK_EQ(atomic_load(&s.done), 1);
  CHECK_EQ(gate_get(g, &g->done), 1);       /* nothing after the held one */
  /* After stop: every new frame is a drop, and nothing is delivered. */
  push(q, kept[0]);
  CHECK_EQ(sl_frame_refcount(kept[0]), 1);
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), QUEUED + 1);
  CHECK_EQ(ts_counter(q, "rxFrames"), 1 + QUEUED + 1);
  CHECK_EQ(ts_counter(q, "txFrames") + ts_counter(q, "drops"), ts_counter(q, "rxFrames"));
  sl_object_stop(q);                        /* twice is fine */
  sleep_ms(20);
  CHECK_EQ(gate_get(g, &g->entered), 1);
  for (int i = 0; i < QUEUED; i++) sl_frame_unref(kept[i]);
  sl_object_unref(q);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
  alarm(0);
}

/* The thread takes several frames at a time and sends them in slices of up
** to 16; a stop drops the slices it has not begun, and every frame is
** either delivered or counted as a drop. */
static void test_stop_drops_taken_frames(void) {
  watchdog(60);
  ts_rec *g = gate_new(1);
  sl_object *q = fifo_to(g, 0, 0, 1);
  sl_pool *p = sl_pool_new();
  push_seq(q, p, 0, 0);                     /* A: held */
  CHECK(gate_await(g, 1, 1, 0));
  for (uint64_t i = 1; i <= 3; i++) push_seq(q, p, 0, i);   /* B, C, D */
  CHECK_EQ(sl_fifo_size(sl_fifo_from_object(q)), 3);
  ts_rec_pass(g, 1);                          /* A goes; B is held */
  CHECK(gate_await(g, 2, 1, 1));
  stopper s = {q, 0};
  pthread_t t;
  pthread_create(&t, NULL, stop_thread, &s);
  sleep_ms(50);
  CHECK_EQ(atomic_load(&s.done), 0);
  ts_rec_open(g);
  pthread_join(t, NULL);
  CHECK(gate_get(g, &g->entered) >= 2);     /* A, B, and B's slice */
  CHECK_EQ(gate_get(g, &g->entered) + (int)sl_fifo_drop_count(sl_fifo_from_object(q)), 4);
  CHECK_EQ(ts_counter(q, "txFrames") + ts_counter(q, "drops"), ts_counter(q, "rxFrames"));
  sl_object_unref(q);
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
  alarm(0);
}

static void test_stop_from_own_delivery(void) {
  watchdog(60);
  CHECK(threads_settle(0, 20));
  ts_rec *g = gate_new(1);
  sl_object *q = fifo_to(g, 0, 0, 1);
  CHECK(threads_settle(1, 20));
  sl_pool *p = sl_pool_new();
  push_seq(q, p, 0, 0);
  CHECK(gate_await(g, 1, 1, 0));
  push_seq(q, p, 0, 1);
  push_seq(q, p, 0, 2);
  pthread_mutex_lock(&g->mu);
  g->stop_obj = q;                          /* borrowed: I keep my reference */
  pthread_mutex_unlock(&g->mu);
  ts_rec_open(g);
  CHECK(gate_await(g, 1, 0, 1));            /* stop returned inside delivery */
  CHECK(threads_settle(0, 20));             /* and the thread ended */
  CHECK_EQ(gate_get(g, &g->entered), 1);
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), 2);
  push_seq(q, p, 0, 3);                     /* stopped: dropped */
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), 3);
  sl_object_unref(q);                       /* joins the finished thread */
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
  alarm(0);
}

static void test_last_ref_in_own_delivery(void) {
  watchdog(60);
  CHECK(threads_settle(0, 20));
  int destroyed0 = atomic_load(&gates_destroyed);
  ts_rec *g = gate_new(1);
  sl_object *q = fifo_to(g, 0, 0, 1);
  CHECK_EQ(atomic_load(&g->obj.refs), 2);   /* mine and the Fifo's master */
  sl_pool *p = sl_pool_new();
  sl_frame *a = seq_frame(p, 0, 0), *b = seq_frame(p, 0, 1), *c = seq_frame(p, 0, 2);
  push(q, a);
  CHECK(gate_await(g, 1, 1, 0));
  push(q, b);
  push(q, c);
  pthread_mutex_lock(&g->mu);
  g->drop_obj = q;                          /* my reference goes to the ts_rec */
  pthread_mutex_unlock(&g->mu);
  q = NULL;
  ts_rec_open(g);
  CHECK(gate_await(g, 1, 0, 1));
  /* The Fifo is freed on its own thread: its master lets go of the gate,
  ** the queued frames come back, and the thread ends. */
  double end = now_s() + 20;
  while (atomic_load(&g->obj.refs) != 1 && now_s() < end) sleep_ms(1);
  CHECK_EQ(atomic_load(&g->obj.refs), 1);
  CHECK(threads_settle(0, 20));
  CHECK_EQ(gate_get(g, &g->entered), 1);
  CHECK_EQ(sl_frame_refcount(a), 1);
  CHECK_EQ(sl_frame_refcount(b), 1);
  CHECK_EQ(sl_frame_refcount(c), 1);
  sl_frame_unref(a);
  sl_frame_unref(b);
  sl_frame_unref(c);
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
  CHECK_EQ(atomic_load(&gates_destroyed), destroyed0 + 1);
  alarm(0);
}

static void test_no_thread_left(void) {
  watchdog(120);
  CHECK(threads_settle(0, 20));
  sl_pool *p = sl_pool_new();
  for (int i = 0; i < 1000; i++) {
    sl_object *q = sl_fifo_object(sl_fifo_new((uint32_t)(i % 3), 0, i & 1, NULL));
    if (!CHECK(q != NULL)) break;
    if (i % 10 == 0) {                      /* some carry traffic */
      sl_object *s = sl_slave_new(NULL);
      sl_master_add_slave(q->master, s->slave);
      sl_object_unref(s);
      for (uint64_t k = 0; k < 3; k++) push_seq(q, p, 0, k);
    }
    sl_object_unref(q);
    if (i % 100 == 0) CHECK(threads_settle(0, 20));
  }
  CHECK(threads_settle(0, 20));
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
  alarm(0);
}

/* Several producers into one Fifo: per-producer order, and the counts add up. */
#define PRODUCERS 4
#define PER_PRODUCER 20000

typedef struct producer {
  sl_object *fifo;
  unsigned id;
} producer;

static void *produce(void *arg) {
  producer *pr = arg;
  sl_pool *p = sl_pool_new();
  for (uint64_t i = 0; i < PER_PRODUCER; i++) {
    push_seq(pr->fifo, p, pr->id, i);
    if (i % 1024 == 0) sched_yield();
  }
  sl_pool_unref(p);
  return NULL;
}

/* `stagger`: the first producer queues alone until `stagger` frames
** arrived, then the others join it mid-stream. */
static void producers_case_staggered(uint32_t depth, int no_copy, uint64_t stagger) {
  ts_rec *g = gate_new(0);
  order_of(g)->allow_gaps = depth > 0;
  sl_object *q = fifo_to(g, depth, 0, no_copy);
  sl_object *counting = sl_slave_new(NULL);    /* a second slave, fed first */
  sl_master_add_slave(q->master, counting->slave);
  pthread_t t[PRODUCERS];
  producer pr[PRODUCERS];
  for (unsigned i = 0; i < PRODUCERS; i++) {
    pr[i].fifo = q;
    pr[i].id = i;
    pthread_create(&t[i], NULL, produce, &pr[i]);
    double until = now_s() + 30;
    while (i == 0 && ts_counter(q, "rxFrames") < stagger && now_s() < until) sched_yield();
  }
  for (int i = 0; i < PRODUCERS; i++) pthread_join(t[i], NULL);
  const uint64_t total = (uint64_t)PRODUCERS * PER_PRODUCER;
  double end = now_s() + 60;
  while (ts_counter(q, "txFrames") + ts_counter(q, "drops") != total && now_s() < end)
    sleep_ms(1);
  uint64_t tx = ts_counter(q, "txFrames"), drops = ts_counter(q, "drops");
  counter_is(q, "txBytes", tx * 8);   /* added after txFrames */
  CHECK_EQ(ts_counter(q, "rxFrames"), total);
  CHECK_EQ(tx + drops, total);
  CHECK_EQ(ts_counter(q, "rxBytes"), total * 8);
  CHECK_EQ(ts_counter(q, "txBytes"), tx * 8);
  CHECK(gate_await(g, (long)tx, 0, (long)tx));
  CHECK_EQ(sl_slave_get_frame_count(&g->slave), tx);
  CHECK_EQ(sl_slave_get_frame_count(counting->slave), tx);
  CHECK_EQ(gate_get(g, &order_of(g)->out_of_order), 0);
  if (depth == 0) {
    CHECK_EQ(drops, 0);
    for (int i = 0; i < PRODUCERS; i++) CHECK_EQ(order_of(g)->next_seq[i], PER_PRODUCER);
  } else {
    CHECK(tx > 0);
  }
  sl_object_unref(q);
  sl_object_unref(counting);
  sl_object_unref(&g->obj);
}

static void producers_case(uint32_t depth, int no_copy) {
  producers_case_staggered(depth, no_copy, 0);
}

static void test_many_producers(void) {
  watchdog(120);
  producers_case(0, 1);
  producers_case(0, 0);
  producers_case(16, 1);
  producers_case(16, 0);
  alarm(0);
}

/* A producer queueing in a tight loop while another thread queues a few:
** the second takes the producers' lock while the first may hold it; each
** of many Fifos must deliver exactly what both queued, in order. */
typedef struct hot {
  sl_object *fifo;
  sl_pool *pool;
  atomic_int started;
} hot;

#define HOT_FRAMES 300

static void *hot_producer(void *arg) {
  hot *h = arg;
  for (uint64_t i = 0; i < HOT_FRAMES; i++) {
    push_seq(h->fifo, h->pool, 0, i);
    if (i == 20) atomic_store(&h->started, 1);
  }
  return NULL;
}

static void test_producer_joins_hot_one(void) {
  watchdog(120);
  sl_pool *p = sl_pool_new();
  for (int k = 0; k < 1000; k++) {
    ts_rec *g = gate_new(0);
    sl_object *q = fifo_to(g, 0, 0, 1);
    hot h = {q, sl_pool_new(), 0};
    pthread_t t;
    pthread_create(&t, NULL, hot_producer, &h);
    double until = now_s() + 20;
    while (!atomic_load(&h.started) && now_s() < until) sl_cpu_relax();
    for (uint64_t i = 0; i < 4; i++) push_seq(q, p, 1, i);
    pthread_join(t, NULL);
    CHECK(gate_await(g, HOT_FRAMES + 4, 0, HOT_FRAMES + 4));
    CHECK_EQ(ts_counter(q, "rxFrames"), HOT_FRAMES + 4);
    CHECK_EQ(gate_get(g, &order_of(g)->out_of_order), 0);
    CHECK_EQ(order_of(g)->next_seq[0], HOT_FRAMES);
    CHECK_EQ(order_of(g)->next_seq[1], 4);
    sl_object_unref(q);
    sl_pool_unref(h.pool);
    sl_object_unref(&g->obj);
  }
  sl_pool_unref(p);
  alarm(0);
}

/* Producers that join one already queueing at full speed: nothing is lost
** or reordered. */
static void test_producers_join_mid_stream(void) {
  watchdog(120);
  for (int i = 0; i < 8; i++) {
    producers_case_staggered(0, i & 1, 1000 + 1000 * (uint64_t)i);
    producers_case_staggered(16, i & 1, 500);
  }
  alarm(0);
}

/* The stopping thread runs its wait hook while the output thread is held;
** here the hook itself is what lets the output thread go. */
typedef struct hook_ctx {
  ts_rec *g;
  atomic_int calls;
  atomic_int released_by_hook;
  atomic_int released_by_watchdog;
  atomic_int finished;
} hook_ctx;

static void release_hook(void *arg) {
  hook_ctx *h = arg;
  if (atomic_fetch_add(&h->calls, 1) + 1 == 3) {
    atomic_store(&h->released_by_hook, 1);
    ts_rec_open(h->g);
  }
}

static void *release_watchdog(void *arg) {
  hook_ctx *h = arg;
  double end = now_s() + 20;
  while (!atomic_load(&h->finished) && now_s() < end) sleep_ms(5);
  if (!atomic_load(&h->finished)) {
    atomic_store(&h->released_by_watchdog, 1);
    ts_rec_open(h->g);
  }
  return NULL;
}

static void test_stop_runs_wait_hook(void) {
  watchdog(60);
  ts_rec *g = gate_new(1);
  sl_object *q = fifo_to(g, 0, 0, 1);
  sl_pool *p = sl_pool_new();
  push_seq(q, p, 0, 0);
  CHECK(gate_await(g, 1, 1, 0));
  push_seq(q, p, 0, 1);
  hook_ctx h = {g, 0, 0, 0, 0};
  pthread_t wd;
  pthread_create(&wd, NULL, release_watchdog, &h);
  sl_wait_set_hook(release_hook, &h);
  sl_object_stop(q);
  sl_wait_set_hook(NULL, NULL);
  atomic_store(&h.finished, 1);
  pthread_join(wd, NULL);
  CHECK(atomic_load(&h.calls) >= 3);
  CHECK_EQ(atomic_load(&h.released_by_hook), 1);
  CHECK_EQ(atomic_load(&h.released_by_watchdog), 0);
  CHECK_EQ(gate_get(g, &g->done), 1);
  CHECK_EQ(sl_fifo_drop_count(sl_fifo_from_object(q)), 1);
  int calls = atomic_load(&h.calls);
  sl_object_unref(q);                       /* the hook is cleared: not run */
  CHECK_EQ(atomic_load(&h.calls), calls);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
  alarm(0);
}


/* A slave that waits as the library's own waits do (a sender waiting for
** a peer that never comes): stop() frees the Fifo's thread from it. */
typedef struct blocker {
  sl_object obj;
  sl_slave slave;
  pthread_mutex_t mu;
  pthread_cond_t cv;          /* never signalled */
  atomic_int entered, rc;
} blocker;

static void blocker_accept(sl_slave *s, sl_frame *f) {
  (void)f;
  blocker *b = (blocker *)s->owner;
  atomic_fetch_add(&b->entered, 1);
  pthread_mutex_lock(&b->mu);
  int rc;
  while ((rc = sl_wait_cond(&b->cv, &b->mu, NULL)) == SL_OK) {
  }
  pthread_mutex_unlock(&b->mu);
  atomic_store(&b->rc, rc);
}

static const sl_slave_ops blocker_ops = {.accept_frame = blocker_accept};

static void blocker_destroy(sl_object *obj) {
  blocker *b = (blocker *)obj;
  sl_slave_fini(&b->slave);
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mu);
  free(b);
}

static const sl_class blocker_class = {.name = "Blocker",
                                       .destroy = blocker_destroy};

static void test_stop_frees_thread_from_waits(void) {
  watchdog(30);
  blocker *b = calloc(1, sizeof *b);
  sl_object_init(&b->obj, &blocker_class);
  pthread_mutex_init(&b->mu, NULL);
  sl_cond_init(&b->cv);
  sl_slave_init(&b->slave, &blocker_ops, &b->obj);
  sl_object *q = sl_fifo_object(sl_fifo_new(0, 0, 1, NULL));
  CHECK_EQ(sl_master_add_slave(q->master, &b->slave), SL_OK);
  sl_pool *p = sl_pool_new();
  push_seq(q, p, 0, 0);
  push_seq(q, p, 0, 1);
  while (atomic_load(&b->entered) == 0) sleep_ms(1);   /* the watchdog bounds it */
  sl_object_cancel(q);                      /* phase one: never waits */
  sl_object_stop(q);                        /* phase two: joins */
  CHECK_EQ(atomic_load(&b->rc), SL_ECANCELED);
  /* The second frame was dropped, or given up on downstream at once. */
  CHECK_EQ(atomic_load(&b->entered) + (int)sl_fifo_drop_count(sl_fifo_from_object(q)), 2);
  sl_object_unref(q);
  sl_pool_unref(p);
  sl_object_unref(&b->obj);
  alarm(0);
}

/* A producer thread pushing frames `first` .. `count` - 1: sequence
** frames, or frames of `len` bytes when len > 0. The tests push frame 0
** themselves and wait until it is held downstream, so that the output
** thread holds that one alone. */
typedef struct feeder {
  sl_object *q;
  sl_pool *p;
  uint64_t first, count;        /* sequence numbers first .. count - 1 */
  uint32_t len;
  atomic_int done;
} feeder;

static void *feed_thread(void *arg) {
  feeder *fd = arg;
  for (uint64_t i = fd->first; i < fd->count; i++) {
    if (fd->len > 0) push_len(fd->q, fd->p, fd->len);
    else push_seq(fd->q, fd->p, 0, i);
  }
  atomic_store(&fd->done, 1);
  return NULL;
}

/* feed_thread for one of several producers: its id is its place in an
** array of feeders that starts at producer 0's (its own sequence). */
static feeder *feeders_base;

static void *feed_thread_as(void *arg) {
  feeder *fd = arg;
  sl_pool *p = fd->p;
  unsigned id = (unsigned)(fd - feeders_base);
  for (uint64_t i = fd->first; i < fd->count; i++) push_seq(fd->q, p, id, i);
  atomic_store(&fd->done, 1);
  return NULL;
}

/* A Fifo set to wait when full behind a shut gate that holds its frame 0,
** and a feeder thread pushing the rest. */
typedef struct waiting {
  ts_rec *g;
  sl_object *q;
  feeder fd;
  pthread_t t;
} waiting;

static void waiting_start(waiting *w, uint32_t depth, int no_copy,
                          uint64_t max_bytes, uint64_t count, uint32_t len) {
  w->g = gate_new(1);
  w->q = fifo_to(w->g, depth, 0, no_copy);
  sl_fifo *q = sl_fifo_from_object(w->q);
  sl_fifo_set_max_queue_bytes(q, max_bytes);
  CHECK_EQ(sl_fifo_wait_when_full(q), 0);
  sl_fifo_set_wait_when_full(q, 1);
  CHECK_EQ(sl_fifo_wait_when_full(q), 1);
  w->fd = (feeder){w->q, sl_pool_new(), 1, count, len, 0};
  if (len > 0) push_len(w->q, w->fd.p, len);
  else push_seq(w->q, w->fd.p, 0, 0);
  CHECK(gate_await(w->g, 1, 1, 0));        /* held alone, counted */
  pthread_create(&w->t, NULL, feed_thread, &w->fd);
}

static void waiting_end(waiting *w) {
  sl_object_unref(w->q);
  sl_pool_unref(w->fd.p);
  sl_object_unref(&w->g->obj);
}

/* Set to wait when full, a producer finding maxDepth frames queued waits
** for room: nothing is dropped, order holds (copy mode and noCopy). */
static void test_wait_when_full(void) {
  watchdog(60);
  enum { N = 2000 };
  for (int no_copy = 0; no_copy <= 1; no_copy++) {
    waiting w;
    waiting_start(&w, 2, no_copy, 4u << 20, N, 0);
    CHECK(counter_is(w.q, "depth", 2));
    CHECK_EQ(ts_counter(w.q, "rxFrames"), 3);   /* the fourth waits */
    CHECK_EQ(atomic_load(&w.fd.done), 0);
    CHECK_EQ(ts_counter(w.q, "drops"), 0);
    ts_rec_open(w.g);
    pthread_join(w.t, NULL);
    CHECK(gate_await(w.g, N, 0, N));
    CHECK_EQ(ts_counter(w.q, "drops"), 0);
    CHECK_EQ(gate_get(w.g, &order_of(w.g)->out_of_order), 0);
    CHECK_EQ(order_of(w.g)->next_seq[0], N);
    waiting_end(&w);
  }
  alarm(0);
}

/* The byte limit holds a waiting producer as the depth does. */
static void test_wait_at_byte_limit(void) {
  watchdog(60);
  enum { N = 500 };
  for (int no_copy = 0; no_copy <= 1; no_copy++) {
    waiting w;
    waiting_start(&w, 0, no_copy, 3000, N, 1000);
    CHECK(counter_is(w.q, "depth", 2));
    CHECK_EQ(ts_counter(w.q, "queueBytes"), 3000);
    CHECK_EQ(ts_counter(w.q, "rxFrames"), 3);
    CHECK_EQ(ts_counter(w.q, "drops"), 0);
    ts_rec_open(w.g);
    pthread_join(w.t, NULL);
    CHECK(gate_await(w.g, N, 0, N));
    CHECK_EQ(ts_counter(w.q, "drops"), 0);
    CHECK(counter_is(w.q, "queueBytes", 0));
    waiting_end(&w);
  }
  alarm(0);
}

/* A stop lets a waiting producer go: its frame and every later one are
** dropped and counted, and the producer finishes with the output thread
** still held downstream. */
static void test_stop_frees_waiting_producer(void) {
  watchdog(60);
  enum { N = 100 };
  for (int no_copy = 0; no_copy <= 1; no_copy++) {
    waiting w;
    waiting_start(&w, 2, no_copy, 4u << 20, N, 0);
    CHECK(counter_is(w.q, "depth", 2));
    sl_object_cancel(w.q);                    /* phase one: never waits */
    pthread_join(w.t, NULL);                  /* the producer is let go */
    CHECK_EQ(atomic_load(&w.fd.done), 1);
    CHECK_EQ(ts_counter(w.q, "rxFrames"), N);
    CHECK_EQ(ts_counter(w.q, "drops"), N - 3);  /* the queued two go at stop */
    ts_rec_open(w.g);
    sl_object_stop(w.q);
    CHECK_EQ(ts_counter(w.q, "drops"), N - 1);
    CHECK_EQ(gate_get(w.g, &w.g->done), 1);
    waiting_end(&w);
  }
  alarm(0);
}

/* Several producers wait for room on a Fifo of depth 2 at once, each
** woken and put back to sleep many times: every frame arrives, in each
** producer's order, none dropped (copy mode and noCopy). */
static void test_wait_many_producers(void) {
  watchdog(120);
  enum { N = 3000 };
  for (int no_copy = 0; no_copy <= 1; no_copy++) {
    ts_rec *g = gate_new(0);
    sl_object *q = fifo_to(g, 2, 0, no_copy);
    sl_fifo_set_wait_when_full(sl_fifo_from_object(q), 1);
    feeder fd[PRODUCERS];
    pthread_t t[PRODUCERS];
    feeders_base = fd;
    for (unsigned i = 0; i < PRODUCERS; i++) {
      fd[i] = (feeder){q, sl_pool_new(), 0, N, 0, 0};
      pthread_create(&t[i], NULL, feed_thread_as, &fd[i]);
    }
    for (unsigned i = 0; i < PRODUCERS; i++) pthread_join(t[i], NULL);
    const long total = (long)PRODUCERS * N;
    CHECK(gate_await(g, total, 0, total));
    CHECK_EQ(ts_counter(q, "drops"), 0);
    CHECK(counter_is(q, "txFrames", (uint64_t)total));   /* after the batch */
    CHECK_EQ(gate_get(g, &order_of(g)->out_of_order), 0);
    for (unsigned i = 0; i < PRODUCERS; i++) CHECK_EQ(order_of(g)->next_seq[i], N);
    sl_object_unref(q);
    for (unsigned i = 0; i < PRODUCERS; i++) sl_pool_unref(fd[i].p);
    sl_object_unref(&g->obj);
  }
  alarm(0);
}

/* A frame queued after the output thread went to sleep wakes it: lone
** frames, each sent once the one before was delivered and the thread has
** had time to fall asleep, all arrive. */
static void test_lone_frames_wake_output(void) {
  watchdog(60);
  enum { N = 50 };
  ts_rec *g = gate_new(0);
  sl_object *q = fifo_to(g, 0, 0, 1);
  sl_pool *p = sl_pool_new();
  for (long i = 0; i < N; i++) {
    push_seq(q, p, 0, (uint64_t)i);
    CHECK(gate_await(g, i + 1, 0, i + 1));
    sleep_ms(2);                       /* past the output thread's polls */
  }
  CHECK_EQ(order_of(g)->next_seq[0], N);
  CHECK_EQ(gate_get(g, &order_of(g)->out_of_order), 0);
  sl_object_unref(q);
  sl_pool_unref(p);
  sl_object_unref(&g->obj);
  alarm(0);
}

/* The same waits with every thread on one CPU: a side that waits does not
** poll while the other last ran there (it could not move), it sleeps at
** once. Frames arrive in order, none dropped, the byte limit holds, a
** stop lets a waiting producer go, lone frames wake the output thread. */
static void test_waits_on_one_cpu(void) {
  cpu_set_t was, one;
  CHECK_EQ(sched_getaffinity(0, sizeof was, &was), 0);
  int cpu = sched_getcpu();
  CHECK(cpu >= 0);
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  CHECK_EQ(sched_setaffinity(0, sizeof one, &one), 0);   /* threads inherit it */
  CHECK_EQ(sl_cpu_now(), cpu);       /* the CPU the waits compare, as the kernel says */
  test_wait_when_full();
  test_wait_at_byte_limit();
  test_stop_frees_waiting_producer();
  test_wait_many_producers();
  test_lone_frames_wake_output();
  CHECK_EQ(sched_setaffinity(0, sizeof was, &was), 0);
}

/* A noCopy Fifo's own pool keeps what its queue may hold: its byte limit
** and the pool's default beside it, following setMaxQueueBytes; a cache
** size set on the pool by hand stays, and a copying Fifo's pool keeps
** the default (its frames go back as soon as they are copied). */
static void test_pool_cache_fits_limit(void) {
  const uint32_t def = SL_POOL_CACHE_BYTES_DEFAULT;
  sl_object *q = sl_fifo_object(sl_fifo_new(0, 0, 1, NULL));
  sl_fifo *f = sl_fifo_from_object(q);
  sl_pool *p = q->slave->pool;
  CHECK_EQ(sl_pool_get_cache_bytes(p), def + sl_fifo_max_queue_bytes(f));
  sl_fifo_set_max_queue_bytes(f, 1u << 20);
  CHECK_EQ(sl_pool_get_cache_bytes(p), def + (1u << 20));
  sl_fifo_set_max_queue_bytes(f, 0);                 /* no limit: the default */
  CHECK_EQ(sl_pool_get_cache_bytes(p), def);
  sl_pool_set_cache_bytes(p, 12345);                 /* by hand: kept */
  sl_fifo_set_max_queue_bytes(f, 8u << 20);
  CHECK_EQ(sl_pool_get_cache_bytes(p), 12345);
  sl_object_unref(q);
  q = sl_fifo_object(sl_fifo_new(0, 0, 0, NULL));
  CHECK_EQ(sl_pool_get_cache_bytes(q->slave->pool), def);
  sl_object_unref(q);
}

/* The Fifo's own output thread sending into its Fifo never waits (it
** would wait for itself): its frame is dropped when full. */
typedef struct resender {
  sl_object *q;
  atomic_int calls;
} resender;

static void resend_twice(ts_rec *r, sl_frame *f) {
  resender *rs = r->ctx;
  if (atomic_fetch_add(&rs->calls, 1) == 0) {
    sl_slave_accept(rs->q->slave, f);       /* queued */
    sl_slave_accept(rs->q->slave, f);       /* full: dropped, not waited */
  }
}

static void test_own_thread_never_waits(void) {
  watchdog(60);
  ts_rec *r = ts_rec_new(0);
  resender rs = {NULL, 0};
  r->ctx = &rs;
  r->hook = resend_twice;
  sl_object *q = sl_fifo_object(sl_fifo_new(1, 0, 1, NULL));
  rs.q = q;
  sl_fifo_set_wait_when_full(sl_fifo_from_object(q), 1);
  CHECK_EQ(sl_master_add_slave(q->master, &r->slave), SL_OK);
  sl_pool *p = sl_pool_new();
  push_len(q, p, 10);
  CHECK(ts_rec_await(r, 2, 0, 2, 20));
  CHECK_EQ(ts_counter(q, "drops"), 1);
  CHECK_EQ(ts_counter(q, "rxFrames"), 3);
  sl_object_stop(q);
  sl_object_unref(q);
  sl_pool_unref(p);
  sl_object_unref(&r->obj);
  alarm(0);
}

static const struct tt_case cases[] = {
  {"new: kind, roles, depth", test_new},
  {"order preserved across the thread", test_order},
  {"noCopy passes the same frame", test_no_copy_same_frame},
  {"copy mode: trimSize, metadata, downstream pool", test_copy_mode},
  {"drops at maxDepth, dropCount, clearCount, size", test_drops_at_depth},
  {"maxDepth 0 is unbounded", test_unbounded},
  {"counters", test_counters},
  {"stop while the thread is blocked downstream", test_stop_while_blocked},
  {"stop drops frames taken but not yet sent", test_stop_drops_taken_frames},
  {"stop from inside its own delivery", test_stop_from_own_delivery},
  {"last reference dropped inside its own delivery", test_last_ref_in_own_delivery},
  {"1000 Fifos leave no thread", test_no_thread_left},
  {"several producers at once", test_many_producers},
  {"producers joining one already queueing", test_producers_join_mid_stream},
  {"a producer joining one queueing in a tight loop", test_producer_joins_hot_one},
  {"stop runs the wait hook while it waits", test_stop_runs_wait_hook},
  {"stop frees the thread from a library wait downstream", test_stop_frees_thread_from_waits},
  {"the byte limit: large frames fill it and no further", test_byte_limit},
  {"the depth limit holds under the byte limit", test_depth_under_byte_limit},
  {"a frame over the byte limit passes alone", test_frame_over_byte_limit},
  {"stop() with the queue full at its byte limit", test_stop_at_byte_limit},
  {"wait when full: no drops, order holds", test_wait_when_full},
  {"wait when full at the byte limit", test_wait_at_byte_limit},
  {"stop lets a waiting producer go", test_stop_frees_waiting_producer},
  {"the output thread's own sends never wait", test_own_thread_never_waits},
  {"wait when full: several producers waiting at once", test_wait_many_producers},
  {"a lone frame wakes a sleeping output thread", test_lone_frames_wake_output},
  {"a noCopy Fifo's pool keeps what its queue may hold", test_pool_cache_fits_limit},
  {"waits with every thread on one CPU", test_waits_on_one_cpu},
  {NULL, NULL}
};

int main(void) {
  signal(SIGALRM, on_alarm);
  return tt_main(cases);
}
