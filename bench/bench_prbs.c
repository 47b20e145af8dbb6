/*
** bench_prbs: PRBS generator -> checker throughput.
**
**   bench_prbs [seconds-per-measurement]      (default 0.5)
**
** Measures, in one run:
**   1. prbs: sl_prbs_gen_frame on one Prbs whose primary slave is another
**      Prbs (the checker, fixed-size pool of the frame size, 4 cached
**      blocks), all on one thread: request, generate, send, check, release;
**   2. plain: the same with the bit-serial path forced on both ends (what
**      any width other than 32 costs);
**   3. raw: the least memory work a generator and a checker must do,
**      without either: memset `size` bytes of a reused block, then read
**      them back as 64-bit words (a sum the compiler cannot drop);
**   4. thread: the generator thread (enable) feeding the checker, counted
**      by the checker over the same time.
** Each measurement is calibrated to about the requested time, run 3 times,
** best run reported. Every run checks that the checker counted every frame
** and no error. Nothing is asserted about speed.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streamlua/master.h"
#include "streamlua/prbs.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "streamlua/version.h"
#include "bench.h"

#define REPEATS 3

static double seconds_per_run = 0.5;

/* Best of REPEATS runs, in seconds per iteration. */
static double measure(bench_run_fn run, void *ctx) {
  uint64_t iters = bench_calibrate(run, ctx, seconds_per_run, 4, 20.0);
  double best = 1e30;
  for (int k = 0; k < REPEATS; k++) {
    double t = run(ctx, iters) / (double)iters;
    if (t < best) best = t;
  }
  return best;
}

/* ------------------------------------------------------------ prbs pair */

typedef struct pair {
  sl_prbs *gen, *chk;
  uint32_t size;
} pair;

static int pair_setup(pair *c, uint32_t size, int fast) {
  c->gen = sl_prbs_new(NULL);
  c->chk = sl_prbs_new(NULL);
  if (c->gen == NULL || c->chk == NULL) return -1;
  sl_prbs_set_fast_path(c->gen, fast);
  sl_prbs_set_fast_path(c->chk, fast);
  sl_slave *s = sl_prbs_object(c->chk)->slave;
  sl_pool_set_fixed_size(s->pool, size);
  sl_pool_set_pool_size(s->pool, 4);
  c->size = size;
  return sl_master_add_slave(sl_prbs_object(c->gen)->master, s);
}

static void pair_check(pair *c, const char *what) {
  sl_prbs_stats tx, rx;
  sl_prbs_get_stats(c->gen, &tx);
  sl_prbs_get_stats(c->chk, &rx);
  if (rx.rx_count != tx.tx_count) bench_fail(what, rx.rx_count, tx.tx_count);
  if (rx.rx_errors != 0 || tx.tx_errors != 0)
    bench_fail("errors", rx.rx_errors + tx.tx_errors, 0);
}

static void pair_teardown(pair *c) {
  sl_object_unref(sl_prbs_object(c->gen));
  sl_object_unref(sl_prbs_object(c->chk));
}

static double pair_run(void *arg, uint64_t iters) {
  pair *c = arg;
  int err = 0;
  double t0 = bench_now();
  for (uint64_t i = 0; i < iters; i++) err |= sl_prbs_gen_frame(c->gen, c->size);
  double t = bench_now() - t0;
  if (err != 0) bench_fail("sl_prbs_gen_frame status", (unsigned long long)-err, 0);
  pair_check(c, "one thread: checked frames");
  return t;
}

/* The generator thread for about seconds_per_run; returns rx bytes/s. */
static double thread_rate(pair *c) {
  sl_prbs_stats a, b;
  sl_prbs_enable(c->gen, c->size);
  bench_sleep_us(50000);
  sl_prbs_get_stats(c->chk, &a);
  double t0 = bench_now();
  bench_sleep_us((long)(seconds_per_run * 1e6));
  sl_prbs_get_stats(c->chk, &b);
  double t = bench_now() - t0;
  sl_prbs_disable(c->gen);
  pair_check(c, "thread: checked frames");
  return (double)(b.rx_bytes - a.rx_bytes) / t;
}

/* ------------------------------------------------------------------ raw */

typedef struct raw {
  uint8_t *buf;
  uint32_t size;
  uint64_t sink;
} raw;

static double raw_run(void *arg, uint64_t iters) {
  raw *c = arg;
  uint64_t acc = 0;
  double t0 = bench_now();
  for (uint64_t i = 0; i < iters; i++) {
    memset(c->buf, (int)(i & 0xff), c->size);
    __asm__ __volatile__("" : : "r"(c->buf) : "memory");
    const uint8_t *p = c->buf;
    for (uint32_t k = 0; k + 8 <= c->size; k += 8) {
      uint64_t w;
      memcpy(&w, p + k, 8);
      acc += w;
    }
  }
  double t = bench_now() - t0;
  c->sink += acc;
  return t;
}

/* --------------------------------------------------------------- driver */

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
      fprintf(stderr, "usage: %s [seconds-per-measurement]  (0 < s <= 60)\n", argv[0]);
      return 2;
    }
    seconds_per_run = s;
  }
  static const uint32_t sizes[] = {64, 64 * 1024, 1024 * 1024};
  uint8_t *buf = malloc(sizes[2]);
  if (buf == NULL) return 1;

  printf("streamlua %s PRBS generator -> checker (width 32, default taps)\n", SL_VERSION);
  printf("each figure: best of %d runs of ~%.2f s; GB/s = 1e9 frame bytes/s\n\n",
         REPEATS, seconds_per_run);
  printf("%-8s | %12s %8s | %12s %8s | %12s %8s | %9s | %12s\n", "size",
         "prbs frame/s", "GB/s", "plain fr/s", "GB/s", "raw frame/s", "GB/s",
         "prbs/raw", "thread GB/s");
  printf("---------+-----------------------+-----------------------+"
         "-----------------------+-----------+-------------\n");
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    uint32_t size = sizes[i];
    pair fast, plain;
    if (pair_setup(&fast, size, 1) != 0 || pair_setup(&plain, size, 0) != 0) {
      fprintf(stderr, "setup failed\n");
      return 1;
    }
    raw rc = {buf, size, 0};
    double tf = measure(pair_run, &fast);
    double tp = measure(pair_run, &plain);
    double tr = measure(raw_run, &rc);
    double thr = thread_rate(&fast);
    pair_teardown(&fast);
    pair_teardown(&plain);
    char sz[16];
    fmt_size(sz, sizeof sz, size);
    printf("%-8s | %12.0f %8.2f | %12.0f %8.2f | %12.0f %8.2f | %8.1f%% | %12.2f\n",
           sz, 1 / tf, size / tf / 1e9, 1 / tp, size / tp / 1e9, 1 / tr,
           size / tr / 1e9, 100.0 * tr / tf, thr / 1e9);
    fflush(stdout);
    if (rc.sink == 42) printf(" ");   /* keep the sum observable */
  }
  free(buf);
  printf("\nchecks: every frame checked, no error, every run: %s\n",
         bench_failures == 0 ? "ok" : "FAILED");
  return bench_failures == 0 ? 0 : 1;
}
