/*
** src/core/bytes.h and src/core/clock.h: every load and store against
** known byte patterns at every alignment, round trips, and the neighbours
** of a store left alone; the clocks' order and units; timespec arithmetic
** at the nanosecond carry in both directions; deadlines and timevals.
*/
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "streamlua/wait.h"
#include "tt.h"

#include "../../src/core/bytes.h"
#include "../../src/core/clock.h"

#define PAD 0xEEu                /* the bytes around a store */

static const uint8_t seq8[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};

/* A test value from a counter: every byte differs, high bits set. */
static uint64_t mix(uint64_t i) {
  uint64_t x = (i + 1) * UINT64_C(0x9E3779B97F4A7C15);
  x ^= x >> 29;
  return x * UINT64_C(0xBF58476D1CE4E5B9);
}

/* The n bytes at buf[off] hold want, and every other byte of buf is PAD. */
static int only_at(const uint8_t *buf, size_t len, size_t off,
                   const uint8_t *want, size_t n) {
  for (size_t i = 0; i < len; i++) {
    int inside = i >= off && i < off + n;
    if (buf[i] != (inside ? want[i - off] : PAD)) return 0;
  }
  return 1;
}

static void test_host_order(void) {
  const uint32_t one = 1;
  uint8_t first;
  memcpy(&first, &one, 1);
  CHECK_EQ(SL_HOST_LE, first == 1);
}

/* Each codec, widened to 64 bits, with the bytes it gives for `value`. */
static void st_le16(void *p, uint64_t v) { sl_store_le16(p, (uint16_t)v); }
static void st_le32(void *p, uint64_t v) { sl_store_le32(p, (uint32_t)v); }
static void st_le64(void *p, uint64_t v) { sl_store_le64(p, v); }
static void st_be16(void *p, uint64_t v) { sl_store_be16(p, (uint16_t)v); }
static void st_be32(void *p, uint64_t v) { sl_store_be32(p, (uint32_t)v); }
static void st_be64(void *p, uint64_t v) { sl_store_be64(p, v); }
static uint64_t ld_le16(const void *p) { return sl_load_le16(p); }
static uint64_t ld_le32(const void *p) { return sl_load_le32(p); }
static uint64_t ld_le64(const void *p) { return sl_load_le64(p); }
static uint64_t ld_be16(const void *p) { return sl_load_be16(p); }
static uint64_t ld_be32(const void *p) { return sl_load_be32(p); }
static uint64_t ld_be64(const void *p) { return sl_load_be64(p); }

static const uint8_t rev8[8] = {0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01};

static const struct codec {
  const char *name;
  size_t n;
  void (*store)(void *p, uint64_t v);
  uint64_t (*load)(const void *p);
  uint64_t value;
  const uint8_t *bytes;
} codecs[] = {
  {"le16", 2, st_le16, ld_le16, 0xCDEF, rev8},
  {"le32", 4, st_le32, ld_le32, 0x89ABCDEFu, rev8},
  {"le64", 8, st_le64, ld_le64, UINT64_C(0x0123456789ABCDEF), rev8},
  {"be16", 2, st_be16, ld_be16, 0x0123, seq8},
  {"be32", 4, st_be32, ld_be32, 0x01234567u, seq8},
  {"be64", 8, st_be64, ld_be64, UINT64_C(0x0123456789ABCDEF), seq8},
};
#define NCODECS (sizeof codecs / sizeof codecs[0])

/* A load reads the known bytes at every alignment, and nothing after. */
static void test_load(void) {
  uint8_t buf[24];
  for (size_t c = 0; c < NCODECS; c++) {
    for (size_t off = 0; off < 8; off++) {
      memset(buf, PAD, sizeof buf);
      memcpy(buf + off, codecs[c].bytes, codecs[c].n);
      if (!CHECK(codecs[c].load(buf + off) == codecs[c].value))
        printf("  %s at offset %zu\n", codecs[c].name, off);
    }
  }
}

/* A store writes the known bytes at every alignment, and no other byte. */
static void test_store(void) {
  uint8_t buf[24];
  for (size_t c = 0; c < NCODECS; c++) {
    for (size_t off = 0; off < 8; off++) {
      memset(buf, PAD, sizeof buf);
      codecs[c].store(buf + off, codecs[c].value);
      if (!CHECK(only_at(buf, sizeof buf, off, codecs[c].bytes, codecs[c].n)))
        printf("  %s at offset %zu\n", codecs[c].name, off);
    }
  }
}

/* Store then load gives the value back (cut to the width), at every
** alignment; the two orders are each other's byte reversal. */
static void test_round_trips(void) {
  uint8_t buf[16], other[16];
  int bad = 0;
  for (uint64_t i = 0; i < 4096; i++) {
    uint64_t v = mix(i);
    size_t off = (size_t)(i % 8);
    for (size_t c = 0; c < NCODECS; c++) {
      uint64_t mask = codecs[c].n == 8 ? UINT64_MAX
                                       : (UINT64_C(1) << (8 * codecs[c].n)) - 1;
      codecs[c].store(buf + off, v);
      bad += codecs[c].load(buf + off) != (v & mask);
    }
    sl_store_le64(buf + off, v);
    sl_store_be64(other + off, v);
    for (int k = 0; k < 8; k++) bad += buf[off + k] != other[off + 7 - k];
  }
  CHECK_EQ(bad, 0);
  for (size_t c = 0; c < NCODECS; c++) {          /* the extremes */
    codecs[c].store(buf + 3, UINT64_MAX);
    for (size_t k = 0; k < codecs[c].n; k++) bad += buf[3 + k] != 0xFF;
    codecs[c].store(buf + 5, 0);
    bad += codecs[c].load(buf + 5) != 0;
  }
  CHECK_EQ(bad, 0);
}

/* ---- clocks ---- */

/* How often of 1000 reads the clock went back. */
static int steps_back(int64_t (*clock)(void)) {
  int64_t last = clock();
  int back = 0;
  for (int i = 0; i < 1000; i++) {
    int64_t t = clock();
    back += t < last;
    last = t;
  }
  return back;
}

static void test_clock_order(void) {
  struct timespec a, b;
  sl_clock_now(&a);
  int64_t ns = sl_clock_ns(), us = sl_clock_us();
  double s = sl_clock_s();
  sl_clock_now(&b);
  CHECK(a.tv_nsec >= 0 && a.tv_nsec < SL_NS_PER_S);
  CHECK(sl_ts_cmp(&a, &b) <= 0);
  CHECK(sl_ts_ns(&a) <= ns);
  CHECK(ns / 1000 <= us);
  CHECK(us <= sl_ts_ns(&b) / 1000);
  CHECK((double)sl_ts_ns(&a) * 1e-9 <= s + 1e-6);
  CHECK(s <= (double)sl_ts_ns(&b) * 1e-9 + 1e-6);
  CHECK_EQ(steps_back(sl_clock_ns), 0);
}

/* The coarse clock never runs ahead of the precise one, and never back. */
static void test_clock_coarse(void) {
  int64_t c = sl_clock_coarse_ns();
  CHECK(c <= sl_clock_ns());
  double cs = sl_clock_coarse_s();
  CHECK(cs >= (double)c * 1e-9 - 1e-6);
  CHECK(cs <= sl_clock_s() + 1e-6);
  CHECK_EQ(steps_back(sl_clock_coarse_ns), 0);
}

/* ---- timespec arithmetic ---- */

static int ts_is(const struct timespec *ts, time_t sec, long nsec) {
  return ts->tv_sec == sec && ts->tv_nsec == nsec;
}

static void test_ts_add(void) {
  static const struct {
    time_t sec;
    long nsec;
    int64_t us;
    time_t want_sec;
    long want_nsec;
  } cases[] = {
    {5, 0, 0, 5, 0},
    {5, 0, 1, 5, 1000},
    {5, 999999000, 1, 6, 0},                  /* carry to exactly 0 */
    {5, 999999999, 1, 6, 999},                /* carry, remainder kept */
    {5, 0, 1000000, 6, 0},                    /* whole seconds only */
    {5, 0, 2500000, 7, 500000000},
    {0, 999999999, 999999, 1, 999998999},     /* the largest carry */
    {5, 999999999, 3999999, 9, 999998999},
    {5, 0, -1, 4, 999999000},                 /* borrow */
    {5, 500, -1, 4, 999999500},
    {5, 1000, -1, 5, 0},                      /* no borrow at exactly 0 */
    {5, 0, -1000000, 4, 0},
    {5, 250000000, -2750000, 2, 500000000},
    {0, 0, INT64_C(4000000000000), 4000000, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct timespec ts = {cases[i].sec, cases[i].nsec};
    sl_ts_add_us(&ts, cases[i].us);
    if (!CHECK(ts_is(&ts, cases[i].want_sec, cases[i].want_nsec)))
      printf("  case %zu: got %lld.%09ld\n", i, (long long)ts.tv_sec, ts.tv_nsec);
  }
  /* adding and taking away again is the identity, from any nsec */
  int bad = 0;
  for (uint64_t i = 0; i < 2000; i++) {
    struct timespec ts = {100, (long)(mix(i) % SL_NS_PER_S)}, orig = ts;
    int64_t us = (int64_t)(mix(i + 7) % 5000000);
    sl_ts_add_us(&ts, us);
    bad += ts.tv_nsec < 0 || ts.tv_nsec >= SL_NS_PER_S;
    bad += sl_ts_diff_us(&ts, &orig) != us;
    sl_ts_add_us(&ts, -us);
    bad += !ts_is(&ts, orig.tv_sec, orig.tv_nsec);
  }
  CHECK_EQ(bad, 0);
}

static void test_ts_cmp(void) {
  struct timespec a = {5, 100}, b = {5, 100}, c = {5, 101}, d = {6, 0};
  CHECK_EQ(sl_ts_cmp(&a, &b), 0);
  CHECK(sl_ts_cmp(&a, &c) < 0);
  CHECK(sl_ts_cmp(&c, &a) > 0);
  CHECK(sl_ts_cmp(&c, &d) < 0);                 /* seconds first */
  CHECK(sl_ts_cmp(&d, &c) > 0);
  struct timespec e = {4, 999999999};
  CHECK(sl_ts_cmp(&e, &a) < 0);
}

static void test_ts_diff(void) {
  struct timespec a = {6, 100}, b = {5, 999999100};
  CHECK_EQ(sl_ts_diff_us(&a, &b), 1);           /* across the second */
  CHECK_EQ(sl_ts_diff_us(&b, &a), -1);
  struct timespec c = {5, 999}, d = {5, 0};
  CHECK_EQ(sl_ts_diff_us(&c, &d), 0);           /* truncated */
  CHECK_EQ(sl_ts_diff_us(&d, &c), 0);
  struct timespec e = {10, 0};
  CHECK_EQ(sl_ts_diff_us(&e, &d), 5000000);
  CHECK_EQ(sl_ts_ns(&a), INT64_C(6000000100));
}

/* ---- deadlines, timevals, sleep ---- */

static void test_deadlines(void) {
  struct timespec before, dl, after;
  sl_clock_now(&before);
  sl_deadline_after(&dl, 1500000);
  sl_clock_now(&after);
  CHECK(dl.tv_nsec >= 0 && dl.tv_nsec < SL_NS_PER_S);
  CHECK(sl_ts_diff_us(&dl, &before) >= 1500000);
  CHECK(sl_ts_diff_us(&dl, &after) <= 1500000);
  int64_t left = sl_deadline_left(&dl);
  CHECK(left > 0 && left <= 1500000);
  sl_deadline_after(&dl, 0);
  CHECK(sl_deadline_left(&dl) <= 0);

  struct timespec rb, rdl, ra;
  clock_gettime(CLOCK_REALTIME, &rb);
  sl_deadline_real(&rdl, 2999999);
  clock_gettime(CLOCK_REALTIME, &ra);
  CHECK(rdl.tv_nsec >= 0 && rdl.tv_nsec < SL_NS_PER_S);
  CHECK(sl_ts_diff_us(&rdl, &rb) >= 2999999);
  CHECK(sl_ts_diff_us(&rdl, &ra) <= 2999999);
}

static void test_timeval(void) {
  static const struct {
    int64_t us;
    long sec, usec;
  } cases[] = {
    {0, 0, 0}, {1, 0, 1}, {999999, 0, 999999}, {1000000, 1, 0},
    {2500001, 2, 500001}, {INT64_C(86400000000), 86400, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct timeval tv = sl_tv_from_us(cases[i].us);
    CHECK_EQ(tv.tv_sec, cases[i].sec);
    CHECK_EQ(tv.tv_usec, cases[i].usec);
  }
}

/* A sleep lasts at least what it was asked for (no signal here). */
static void test_sleep(void) {
  int64_t t0 = sl_clock_us();
  sl_sleep_us(2000);
  CHECK(sl_clock_us() - t0 >= 2000);
  t0 = sl_clock_us();
  sl_sleep_us(0);                               /* returns at once */
  CHECK(sl_clock_us() >= t0);
}

static const struct tt_case cases[] = {
  {"host order", test_host_order},
  {"loads", test_load},
  {"stores", test_store},
  {"round trips", test_round_trips},
  {"clock order", test_clock_order},
  {"coarse clock", test_clock_coarse},
  {"timespec add", test_ts_add},
  {"timespec compare", test_ts_cmp},
  {"timespec difference", test_ts_diff},
  {"deadlines", test_deadlines},
  {"timeval", test_timeval},
  {"sleep", test_sleep},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
