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

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../src/core/clock.h"

/* Clocks for tests that wait: monotonic seconds, and a plain sleep. */
__attribute__((unused)) static double now_s(void) { return sl_clock_s(); }

__attribute__((unused)) static void sleep_ms(long ms) {
  sl_sleep_us((int64_t)ms * 1000);
}

/* Threads of this process named `name` (pthread_setname_np) right now. A
** thread may take its name a moment after it starts, and one that has just
** been joined may still be listed for a moment: wait for a count
** (tt_threads_settle), never compare one read. Other threads of the process
** (the test's own, other modules') do not count. */
__attribute__((unused)) static int tt_threads_named(const char *name) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue;                /* ended while listed */
    if (fgets(comm, sizeof comm, f) != NULL) {
      comm[strcspn(comm, "\n")] = '\0';
      n += strcmp(comm, name) == 0;
    }
    fclose(f);
  }
  closedir(d);
  return n;
}

/* Polls until `want` threads are named `name`, for up to `timeout_s`
** seconds; 1 if they were. */
__attribute__((unused)) static int tt_threads_settle(const char *name, int want,
                                                     double timeout_s) {
  double end = now_s() + timeout_s;
  for (;;) {
    if (tt_threads_named(name) == want) return 1;
    if (now_s() > end) return 0;
    sleep_ms(1);
  }
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
