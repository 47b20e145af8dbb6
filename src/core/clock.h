/*
** Clocks and deadlines: the monotonic clock read as a timespec, in ns, us
** or seconds; the coarse monotonic clock (a few ms fine, far cheaper) for
** rates; timespec arithmetic and deadlines for pthread_cond_timedwait; a
** timeval for libevent; a sleep.
**
** Internal to streamlua: include it by relative path. Every function is
** safe from any thread. A deadline for a condition variable made by
** sl_cond_init is monotonic: sl_deadline_after (streamlua/wait.h); one
** for a condition variable on the default clock is sl_deadline_real.
*/
#ifndef STREAMLUA_CLOCK_H_INCLUDED_
#define STREAMLUA_CLOCK_H_INCLUDED_

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#define SL_NS_PER_S 1000000000L
#define SL_US_PER_S 1000000L

/* ---- reading the clock ---- */

static inline void sl_clock_now(struct timespec *ts) {
  clock_gettime(CLOCK_MONOTONIC, ts);
}

static inline int64_t sl_ts_ns(const struct timespec *ts) {
  return (int64_t)ts->tv_sec * SL_NS_PER_S + ts->tv_nsec;
}

static inline int64_t sl_clock_ns(void) {
  struct timespec ts;
  sl_clock_now(&ts);
  return sl_ts_ns(&ts);
}

static inline int64_t sl_clock_us(void) {
  struct timespec ts;
  sl_clock_now(&ts);
  return (int64_t)ts.tv_sec * SL_US_PER_S + ts.tv_nsec / 1000;
}

static inline double sl_clock_s(void) {
  struct timespec ts;
  sl_clock_now(&ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The coarse clock: for windows and rates of 100 ms and more. */
static inline int64_t sl_clock_coarse_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return sl_ts_ns(&ts);
}

static inline double sl_clock_coarse_s(void) {
  return (double)sl_clock_coarse_ns() * 1e-9;
}

/* ---- timespec arithmetic ---- */

/* ts += us (either sign); tv_nsec stays in [0, 1 s). */
static inline void sl_ts_add_us(struct timespec *ts, int64_t us) {
  ts->tv_sec += (time_t)(us / SL_US_PER_S);
  ts->tv_nsec += (long)(us % SL_US_PER_S) * 1000L;
  if (ts->tv_nsec >= SL_NS_PER_S) {
    ts->tv_sec++;
    ts->tv_nsec -= SL_NS_PER_S;
  } else if (ts->tv_nsec < 0) {
    ts->tv_sec--;
    ts->tv_nsec += SL_NS_PER_S;
  }
}

/* <0, 0 or >0 as a is before, at or after b. */
static inline int sl_ts_cmp(const struct timespec *a, const struct timespec *b) {
  if (a->tv_sec != b->tv_sec) return a->tv_sec < b->tv_sec ? -1 : 1;
  if (a->tv_nsec != b->tv_nsec) return a->tv_nsec < b->tv_nsec ? -1 : 1;
  return 0;
}

/* a - b in microseconds (truncated toward zero). */
static inline int64_t sl_ts_diff_us(const struct timespec *a,
                                    const struct timespec *b) {
  return (sl_ts_ns(a) - sl_ts_ns(b)) / 1000;
}

/* *ts = the wall clock `us` from now (condition variables on the default
** clock, sem_timedwait). */
static inline void sl_deadline_real(struct timespec *ts, int64_t us) {
  clock_gettime(CLOCK_REALTIME, ts);
  sl_ts_add_us(ts, us);
}

/* ---- timeval, sleep ---- */

/* A timeval of us >= 0 microseconds (libevent's timeouts). */
static inline struct timeval sl_tv_from_us(int64_t us) {
  struct timeval tv;
  tv.tv_sec = (time_t)(us / SL_US_PER_S);
  tv.tv_usec = (suseconds_t)(us % SL_US_PER_S);
  return tv;
}

/* Sleeps about us >= 0 microseconds (a signal may end it early). */
static inline void sl_sleep_us(int64_t us) {
  struct timespec ts;
  ts.tv_sec = (time_t)(us / SL_US_PER_S);
  ts.tv_nsec = (long)(us % SL_US_PER_S) * 1000L;
  nanosleep(&ts, NULL);
}

#endif
