/*
** tt.h: a tiny table-driven test harness for the C unit tests.
**
** Each test file ends in a table of cases and one call to tt_main:
**
**   static void test_something(void) {
**     CHECK(x > 0);
**     CHECK_EQ(sl_frame_get_size(f), 12);
**     CHECK_STR(name, "stream.Fifo");
**   }
**   static const struct tt_case cases[] = {
**     {"something", test_something},
**     {NULL, NULL}
**   };
**   int main(void) { return tt_main(cases); }
**
** A failed check prints "FAIL <case>: file:line: expr" and the case goes
** on, so one run shows every broken check. A case with no failed check
** prints "ok <case>". The run ends with the single line
** "N passed, N failed" (cases, not checks) and tt_main returns non-zero
** when any case failed. Cases run in table order in one process, so
** global state (the log level, filters) carries from one case to the next.
*/
#ifndef STREAMLUA_TT_H_INCLUDED_
#define STREAMLUA_TT_H_INCLUDED_

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Clocks for tests that wait: monotonic seconds, and a plain sleep. */
__attribute__((unused)) static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((unused)) static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

struct tt_case {
  const char *name;
  void (*fn)(void);
};

/* The case running now and how many of its checks failed. */
static const char *tt_current_ = "?";
static int tt_case_failures_;

__attribute__((unused)) static void tt_fail_(const char *file, int line,
                                              const char *what) {
  tt_case_failures_++;
  printf("FAIL %s: %s:%d: %s\n", tt_current_, file, line, what);
  fflush(stdout);
}

/* The check passes when cond is non-zero; returns cond for chaining. */
__attribute__((unused)) static int tt_check_(int cond, const char *file,
                                             int line, const char *expr) {
  if (!cond) tt_fail_(file, line, expr);
  return cond;
}

__attribute__((unused)) static int tt_check_eq_(long long a, long long b,
                                                const char *file, int line,
                                                const char *expr) {
  if (a == b) return 1;
  char what[512];
  snprintf(what, sizeof what, "%s (got %lld, expected %lld)", expr, a, b);
  tt_fail_(file, line, what);
  return 0;
}

__attribute__((unused)) static int tt_check_str_(const char *a, const char *b,
                                                 const char *file, int line,
                                                 const char *expr) {
  if (a != NULL && b != NULL && strcmp(a, b) == 0) return 1;
  char what[1024];
  snprintf(what, sizeof what, "%s (got \"%s\", expected \"%s\")", expr,
           a != NULL ? a : "(null)", b != NULL ? b : "(null)");
  tt_fail_(file, line, what);
  return 0;
}

/* Each check records file:line and keeps going; each yields 1 on success. */
#define CHECK(expr) tt_check_((expr) ? 1 : 0, __FILE__, __LINE__, #expr)
#define CHECK_EQ(a, b) \
  tt_check_eq_((long long)(a), (long long)(b), __FILE__, __LINE__, \
               #a " == " #b)
#define CHECK_STR(a, b) tt_check_str_((a), (b), __FILE__, __LINE__, \
                                      #a " == " #b)

/* Runs every case of a {NULL, NULL}-terminated table. */
__attribute__((unused)) static int tt_main(const struct tt_case *cases) {
  int passed = 0, failed = 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (const struct tt_case *c = cases; c->name != NULL; c++) {
    tt_current_ = c->name;
    tt_case_failures_ = 0;
    c->fn();
    if (tt_case_failures_ == 0) {
      printf("ok %s\n", c->name);
      passed++;
    } else {
      failed++;
    }
  }
  tt_current_ = "?";
  printf("%d passed, %d failed\n", passed, failed);
  fflush(stdout);
  return failed != 0;
}

#endif
