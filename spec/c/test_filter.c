/*
** Filter and RateDrop: Rogue's exact pass/drop sequences (count mode: the
** first frame passes, then `value` are dropped; time mode: nothing in the
** first period, at most one frame per period, idle time not banked), the
** frame object itself is passed on, the counters, several senders at once,
** and the values RateDrop refuses (rogue-reference 3.2, 3.3).
*/
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streamlua/filter.h"
#include "streamlua/frame.h"
#include "streamlua/master.h"
#include "streamlua/pool.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "support.h"
#include "tt.h"

/* ---- what the recorder saw: each frame's 8-byte index, the object ---- */

#define REC_MAX 4096

/* Frame i's 8-byte index payload, or -1 (another size, or not kept). */
static int64_t rec_idx(ts_rec *r, long i) {
  ts_got g;
  int64_t v = -1;
  if (ts_rec_frame(r, i, &g) && g.size == 8) memcpy(&v, g.data, 8);
  return v;
}

/* Frame i's object: compared, never dereferenced. */
static const sl_frame *rec_ptr(ts_rec *r, long i) {
  ts_got g;
  return ts_rec_frame(r, i, &g) ? g.frame : NULL;
}

/* module -> r; the module's master holds its own reference on r. */
static void connect_to(sl_object *mod, ts_rec *r) {
  if (sl_master_add_slave(mod->master, &r->slave) != SL_OK) abort();
}

static sl_frame *index_frame(sl_pool *p, int64_t i) {
  sl_frame *f = sl_pool_req_frame(p, 8);
  if (f == NULL || sl_frame_write(f, &i, 0, 8) != SL_OK) abort();
  return f;
}

/* Sends frames 0..n-1 (as a master would: transfer none). */
static void send_indices(sl_object *mod, sl_pool *p, int64_t from, int64_t n) {
  for (int64_t i = from; i < from + n; i++) {
    sl_frame *f = index_frame(p, i);
    sl_slave_accept(mod->slave, f);
    sl_frame_unref(f);
  }
}

/* The indices r received are exactly want[0..nwant). */
static void check_indices(ts_rec *r, const int64_t *want, long nwant) {
  long n = ts_rec_count(r);
  CHECK_EQ(n, nwant);
  for (long i = 0; i < n && i < nwant && i < REC_MAX; i++)
    if (!CHECK_EQ(rec_idx(r, i), want[i])) break;
}

/* ---- Filter ---- */

static void test_filter_new(void) {
  sl_object *ft = sl_filter_object(sl_filter_new(1, 4, NULL));
  CHECK(ft != NULL);
  CHECK_STR(sl_object_kind(ft), "Filter");
  CHECK(ft->master != NULL);
  CHECK(ft->slave != NULL);
  CHECK_EQ(ts_counter(ft, "txFrames"), 0);
  CHECK_EQ(ts_counter(ft, "drops"), 0);
  /* No slave: a passed frame goes nowhere, quietly. */
  sl_pool *p = sl_pool_new();
  sl_frame *f = index_frame(p, 0);
  sl_frame_set_channel(f, 4);
  sl_slave_accept(ft->slave, f);
  CHECK_EQ(sl_frame_refcount(f), 1);
  CHECK_EQ(ts_counter(ft, "txFrames"), 1);
  sl_frame_unref(f);
  sl_object_unref(ft);
  sl_pool_unref(p);
}

/* Channels 0..4, each without and with an error byte: frame k has
** channel k / 2 and error (k % 2 ? errval : 0). */
static void filter_case(int drop_errors, uint8_t channel, uint8_t errval) {
  sl_object *ft = sl_filter_object(sl_filter_new(drop_errors, channel, NULL));
  ts_rec *r = ts_rec_new(REC_MAX);
  connect_to(ft, r);
  sl_pool *p = sl_pool_new();
  sl_frame *sent[10];
  int64_t want[10];
  long nwant = 0;
  for (int k = 0; k < 10; k++) {
    uint8_t ch = (uint8_t)(k / 2), err = k % 2 ? errval : 0;
    sent[k] = index_frame(p, k);
    sl_frame_set_channel(sent[k], ch);
    sl_frame_set_error(sent[k], err);
    sl_slave_accept(ft->slave, sent[k]);
    if (ch == channel && !(drop_errors && err != 0)) want[nwant++] = k;
  }
  check_indices(r, want, nwant);
  for (long i = 0; i < nwant && i < ts_rec_count(r); i++)
    CHECK(rec_ptr(r, i) == sent[want[i]]);     /* the same object, passed on */
  for (int k = 0; k < 10; k++) {
    CHECK_EQ(sl_frame_refcount(sent[k]), 1);
    CHECK_EQ(sl_frame_get_channel(sent[k]), k / 2);   /* unchanged */
    sl_frame_unref(sent[k]);
  }
  CHECK_EQ(ts_counter(ft, "txFrames"), nwant);
  CHECK_EQ(ts_counter(ft, "drops"), 10 - nwant);
  CHECK_EQ(sl_slave_get_frame_count(&r->slave), nwant);
  sl_object_unref(ft);
  sl_object_unref(ts_rec_object(r));
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
}

static void test_filter_channel(void) {
  filter_case(0, 3, 1);      /* both frames of channel 3 */
  filter_case(0, 0, 0xff);
  filter_case(0, 7, 1);      /* no frame has channel 7 */
}

static void test_filter_errors(void) {
  filter_case(1, 3, 1);      /* only the error-free frame of channel 3 */
  filter_case(1, 2, 0xff);
  filter_case(1, 0, 0x80);
}

static void test_filter_channel_255(void) {
  sl_object *ft = sl_filter_object(sl_filter_new(0, 255, NULL));
  ts_rec *r = ts_rec_new(REC_MAX);
  connect_to(ft, r);
  sl_pool *p = sl_pool_new();
  sl_frame *f = index_frame(p, 1);
  sl_slave_accept(ft->slave, f);           /* channel 0: dropped */
  sl_frame_set_channel(f, 255);
  sl_slave_accept(ft->slave, f);
  CHECK_EQ(ts_rec_count(r), 1);
  sl_frame_unref(f);
  sl_object_unref(ft);
  sl_object_unref(ts_rec_object(r));
  sl_pool_unref(p);
}

/* ---- RateDrop, count mode ---- */

static void count_case(int period, double value, int nframes,
                       const int64_t *want, long nwant) {
  sl_object *rd = sl_rate_drop_object(sl_rate_drop_new(period, value, NULL));
  if (!CHECK(rd != NULL)) return;
  ts_rec *r = ts_rec_new(REC_MAX);
  connect_to(rd, r);
  sl_pool *p = sl_pool_new();
  send_indices(rd, p, 0, nframes);
  check_indices(r, want, nwant);
  CHECK_EQ(ts_counter(rd, "txFrames"), nwant);
  CHECK_EQ(ts_counter(rd, "drops"), nframes - nwant);
  sl_object_unref(rd);
  sl_object_unref(ts_rec_object(r));
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
}

static void test_rate_drop_count(void) {
  static const int64_t every3[] = {0, 3, 6, 9};
  static const int64_t every2[] = {0, 2, 4, 6, 8, 10};
  static const int64_t all[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  static const int64_t first[] = {0};
  count_case(0, 2.0, 12, every3, 4);        /* Rogue's own unit test */
  count_case(0, 2.9, 12, every3, 4);        /* truncated to 2 */
  count_case(0, 1.0, 12, every2, 6);
  count_case(0, 0.0, 12, all, 12);          /* 0: everything passes */
  count_case(0, 0.7, 12, all, 12);          /* truncated to 0 */
  count_case(1, 0.0, 12, all, 12);          /* period + 0: count mode, and
                                               nothing waits a first period */
  count_case(0, 11.0, 12, first, 1);
  count_case(0, 4294967295.0, 12, first, 1);
}

static void test_rate_drop_kind(void) {
  sl_object *rd = sl_rate_drop_object(sl_rate_drop_new(0, 1, NULL));
  CHECK_STR(sl_object_kind(rd), "RateDrop");
  CHECK(rd->master != NULL);
  CHECK(rd->slave != NULL);
  ts_rec *r = ts_rec_new(REC_MAX);
  connect_to(rd, r);
  sl_pool *p = sl_pool_new();
  sl_frame *f = index_frame(p, 0);
  sl_slave_accept(rd->slave, f);            /* passes */
  CHECK_EQ(ts_rec_count(r), 1);
  CHECK(rec_ptr(r, 0) == f);                    /* the same object */
  CHECK_EQ(sl_frame_refcount(f), 1);
  sl_frame_unref(f);
  sl_object_unref(rd);
  sl_object_unref(ts_rec_object(r));
  sl_pool_unref(p);
}

static void test_rate_drop_invalid(void) {
  CHECK(sl_rate_drop_object(sl_rate_drop_new(0, -1.0, NULL)) == NULL);
  CHECK(sl_rate_drop_object(sl_rate_drop_new(1, -1.0, NULL)) == NULL);
  CHECK(sl_rate_drop_object(sl_rate_drop_new(0, -0.5, NULL)) == NULL);
  CHECK(sl_rate_drop_object(sl_rate_drop_new(1, -0.001, NULL)) == NULL);
  CHECK(sl_rate_drop_object(sl_rate_drop_new(0, NAN, NULL)) == NULL);
  CHECK(sl_rate_drop_object(sl_rate_drop_new(1, NAN, NULL)) == NULL);
  CHECK(sl_rate_drop_object(sl_rate_drop_new(0, INFINITY, NULL)) == NULL);
  CHECK(sl_rate_drop_object(sl_rate_drop_new(1, INFINITY, NULL)) == NULL);
  CHECK(sl_rate_drop_object(sl_rate_drop_new(1, 4295.0, NULL)) == NULL);          /* > 2^32-1 us */
  CHECK(sl_rate_drop_object(sl_rate_drop_new(1, 1e12, NULL)) == NULL);
  CHECK(sl_rate_drop_object(sl_rate_drop_new(0, 4294967296.0, NULL)) == NULL);    /* > 2^32-1 */
  CHECK(sl_rate_drop_object(sl_rate_drop_new(0, 1e20, NULL)) == NULL);
  /* The largest accepted values. */
  sl_object *ok = sl_rate_drop_object(sl_rate_drop_new(1, 4294.0, NULL));
  CHECK(ok != NULL);
  sl_object_unref(ok);
  ok = sl_rate_drop_object(sl_rate_drop_new(0, 4294967295.0, NULL));
  CHECK(ok != NULL);
  sl_object_unref(ok);
  ok = sl_rate_drop_object(sl_rate_drop_new(0, 4295.0, NULL));         /* fine as a count */
  CHECK(ok != NULL);
  sl_object_unref(ok);
}

/* ---- RateDrop, time mode ---- */

#define PERIOD_MS 50
#define SLACK_S 0.005      /* wall clock vs monotonic, preemption */

static void test_rate_drop_time(void) {
  const double period = PERIOD_MS / 1000.0;
  double t_before = now_s();
  sl_object *rd = sl_rate_drop_object(sl_rate_drop_new(1, period, NULL));
  if (!CHECK(rd != NULL)) return;
  ts_rec *r = ts_rec_new(REC_MAX);
  connect_to(rd, r);
  sl_pool *p = sl_pool_new();

  /* 1. The first period: a frame sent (and returned) less than one period
  ** after t_before was sent less than one period after creation, so it
  ** must be dropped. */
  int64_t i = 0;
  long passed_early = 0;
  while (now_s() - t_before < 0.6 * period) {
    send_indices(rd, p, i++, 1);
    if (now_s() - t_before < period) passed_early = ts_rec_count(r);
    sleep_ms(1);
  }
  CHECK_EQ(passed_early, 0);   /* the next test shows such a send happens */

  /* 2. A steady stream, one frame a millisecond, for 8 periods (longer
  ** until two frames passed): at most one frame per period, and the passes
  ** are more than a period apart. The time of a pass is only known to lie
  ** within its send call, so two passes are a period apart if the end of
  ** the later send is a period after the start of the earlier one. */
  enum { PASSES = 64 };
  double ts[PASSES], te[PASSES];
  long seen = ts_rec_count(r), k0 = seen;
  double t0 = now_s();
  while ((now_s() - t0 < 8 * period || ts_rec_count(r) < 2) && now_s() - t0 < 20) {
    double a = now_s();
    send_indices(rd, p, i++, 1);
    double b = now_s();
    if (ts_rec_count(r) > seen) {
      if (seen - k0 < PASSES) ts[seen - k0] = a, te[seen - k0] = b;
      seen = ts_rec_count(r);
    }
    sleep_ms(1);
  }
  double span = now_s() - t_before;        /* creation is after t_before */
  long n = ts_rec_count(r);
  CHECK(n >= 2);                            /* something does pass */
  CHECK(n <= (long)(span / period));        /* nothing in the first period */
  for (long k = 1; k < seen - k0 && k < PASSES; k++)
    CHECK(te[k] - ts[k - 1] >= period - SLACK_S);
  CHECK_EQ(ts_counter(rd, "txFrames"), n);
  CHECK_EQ(ts_counter(rd, "drops"), i - n);

  /* 3. Idle for four periods, then a burst: one frame passes (the first
  ** of the burst), not four: idle time is not banked. */
  sleep_ms(4 * PERIOD_MS);
  long before = ts_rec_count(r);
  double b0 = now_s();
  int64_t first = i;
  send_indices(rd, p, i, 200);
  i += 200;
  double burst = now_s() - b0;
  long passed = ts_rec_count(r) - before;
  if (burst < period - SLACK_S) {
    CHECK_EQ(passed, 1);
    if (passed >= 1 && before < REC_MAX) CHECK_EQ(rec_idx(r, before), first);
    /* 4. Right after it, another burst: still inside that period (the
    ** pass was after b0). */
    double c0 = b0;
    long before2 = ts_rec_count(r);
    send_indices(rd, p, i, 50);
    i += 50;
    if (now_s() - c0 < period - SLACK_S) CHECK_EQ(ts_rec_count(r) - before2, 0);
  } else {
    CHECK(passed >= 1);
    CHECK(passed <= 1 + (long)(burst / period));
  }
  sl_object_unref(rd);
  sl_object_unref(ts_rec_object(r));
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
}

/* A frame sent within the first period after creation is dropped. A
** preempted attempt (its send ended a period or more after creation) shows
** nothing; twenty attempts in a row are not all preempted. */
static void test_rate_drop_time_first_period(void) {
  const double period = PERIOD_MS / 1000.0;
  sl_pool *p = sl_pool_new();
  int early = 0, passed = 0;
  for (int attempt = 0; attempt < 20 && early < 3; attempt++) {
    double t0 = now_s();
    sl_object *rd = sl_rate_drop_object(sl_rate_drop_new(1, period, NULL));
    ts_rec *r = ts_rec_new(REC_MAX);
    connect_to(rd, r);
    send_indices(rd, p, 0, 1);
    if (now_s() - t0 < period) {
      early++;
      passed += (int)ts_rec_count(r);
    }
    sl_object_unref(rd);
    sl_object_unref(ts_rec_object(r));
  }
  CHECK(early > 0);
  CHECK_EQ(passed, 0);
  CHECK_EQ(sl_pool_get_alloc_count(p), 0);
  sl_pool_unref(p);
}

/* A period of 0.5 s: over 0.2 s of frames nothing passes at all. */
static void test_rate_drop_time_long_period(void) {
  double t0 = now_s();                     /* before its period starts */
  sl_object *rd = sl_rate_drop_object(sl_rate_drop_new(1, 0.5, NULL));
  ts_rec *r = ts_rec_new(REC_MAX);
  connect_to(rd, r);
  sl_pool *p = sl_pool_new();
  int64_t i = 0;
  while (now_s() - t0 < 0.2) {
    send_indices(rd, p, i++, 10);
    sleep_ms(2);
  }
  if (now_s() - t0 < 0.5 - SLACK_S) CHECK_EQ(ts_rec_count(r), 0);
  sl_object_unref(rd);
  sl_object_unref(ts_rec_object(r));
  sl_pool_unref(p);
}

/* ---- several senders at once ---- */

#define SENDERS 4
#define PER_SENDER 10000

typedef struct sender {
  sl_object *mod;
  int id;
} sender;

static void *send_many(void *arg) {
  sender *s = arg;
  sl_pool *p = sl_pool_new();
  for (int k = 0; k < PER_SENDER; k++) {
    sl_frame *f = index_frame(p, k);
    sl_frame_set_channel(f, (uint8_t)(k % 2));
    sl_frame_set_error(f, (uint8_t)(k % 3 == 0));
    sl_slave_accept(s->mod->slave, f);
    sl_frame_unref(f);
  }
  sl_pool_unref(p);
  return NULL;
}

static void run_senders(sl_object *mod) {
  pthread_t t[SENDERS];
  sender s[SENDERS];
  for (int i = 0; i < SENDERS; i++) {
    s[i].mod = mod;
    s[i].id = i;
    pthread_create(&t[i], NULL, send_many, &s[i]);
  }
  for (int i = 0; i < SENDERS; i++) pthread_join(t[i], NULL);
}

static void test_parallel_senders(void) {
  const long total = (long)SENDERS * PER_SENDER;
  /* RateDrop count mode keeps one counter for all senders: exactly one in
  ** value + 1 frames passes overall. */
  sl_object *rd = sl_rate_drop_object(sl_rate_drop_new(0, 3, NULL));
  ts_rec *r = ts_rec_new(REC_MAX);
  connect_to(rd, r);
  run_senders(rd);
  CHECK_EQ(ts_rec_count(r), total / 4);
  CHECK_EQ(ts_counter(rd, "txFrames"), total / 4);
  CHECK_EQ(ts_counter(rd, "drops"), total - total / 4);
  sl_object_unref(rd);
  sl_object_unref(ts_rec_object(r));

  /* Filter(dropErrors, 1): channel 1 and no error. */
  long want = 0;
  for (int k = 0; k < PER_SENDER; k++) want += k % 2 == 1 && k % 3 != 0;
  want *= SENDERS;
  sl_object *ft = sl_filter_object(sl_filter_new(1, 1, NULL));
  r = ts_rec_new(REC_MAX);
  connect_to(ft, r);
  run_senders(ft);
  CHECK_EQ(ts_rec_count(r), want);
  CHECK_EQ(ts_counter(ft, "txFrames"), want);
  CHECK_EQ(ts_counter(ft, "drops"), total - want);
  sl_object_unref(ft);
  sl_object_unref(ts_rec_object(r));
}

static const struct tt_case cases[] = {
  {"Filter: kind, roles, counters", test_filter_new},
  {"Filter on channel", test_filter_channel},
  {"Filter drops errored frames", test_filter_errors},
  {"Filter on channel 255", test_filter_channel_255},
  {"RateDrop count mode sequences", test_rate_drop_count},
  {"RateDrop: kind, same frame passed on", test_rate_drop_kind},
  {"RateDrop refuses invalid values", test_rate_drop_invalid},
  {"RateDrop time mode", test_rate_drop_time},
  {"RateDrop time mode, first period", test_rate_drop_time_first_period},
  {"RateDrop time mode, long period", test_rate_drop_time_long_period},
  {"several senders at once", test_parallel_senders},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
