/*
** What every bench program shares: a monotonic clock, a correctness check
** that counts failures (a program exits non-zero on any), and the
** calibration that sizes one timed run.
*/
#ifndef STREAMLUA_BENCH_H_INCLUDED_
#define STREAMLUA_BENCH_H_INCLUDED_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "../src/core/clock.h"

__attribute__((unused)) static int bench_failures;

/* A socket of `type` bound to 127.0.0.1 on a port the kernel picks; *sa
** gets its address. For the raw loops the programs compare against. */
static inline int bench_loopback_socket(int type, struct sockaddr_in *sa) {
  int fd = socket(AF_INET, type, 0);
  *sa = (struct sockaddr_in){.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof *sa;
  if (fd >= 0 && (bind(fd, (struct sockaddr *)sa, len) != 0 ||
                  getsockname(fd, (struct sockaddr *)sa, &len) != 0)) {
    perror("bench: loopback socket");
    return -1;
  }
  return fd;
}

static inline double bench_now(void) { return sl_clock_s(); }

static inline void bench_sleep_us(long us) { sl_sleep_us(us); }

static inline void bench_fail(const char *what, unsigned long long got,
                              unsigned long long want) {
  fprintf(stderr, "CHECK FAILED: %s: got %llu, expected %llu\n", what, got,
          want);
  bench_failures++;
}

/* One timed case: run(ctx, iters) does `iters` of something and returns
** the seconds it took. */
typedef double (*bench_run_fn)(void *ctx, uint64_t iters);

/* Grows the count from `start` until a run lasts at least `seconds` /
** `floor_div`, then scales it so that one run lasts about `seconds`. */
static inline uint64_t bench_calibrate(bench_run_fn run, void *ctx,
                                       double seconds, uint64_t start,
                                       double floor_div) {
  uint64_t iters = start;
  double floor_s = seconds / floor_div;
  for (;;) {
    double t = run(ctx, iters);
    if (t >= floor_s || iters >= (UINT64_C(1) << 40)) {
      double want = (double)iters * seconds / (t > 1e-9 ? t : 1e-9);
      return want < 1.0 ? 1 : (uint64_t)want;
    }
    iters *= t < floor_s / 8 ? 8 : 2;
  }
}

#endif
