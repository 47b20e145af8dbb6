/*
** sl_thread_start: the new thread runs with SIGINT, SIGTERM and the other
** asynchronous signals blocked, faults left deliverable, and the caller's
** own mask is as it was.
*/
#include <pthread.h>
#include <signal.h>

#include "streamlua/thread.h"
#include "tt.h"

typedef struct seen {
  int intr, term, hup, segv, bus;
} seen;

static void *look(void *arg) {
  seen *s = arg;
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  s->intr = sigismember(&cur, SIGINT);
  s->term = sigismember(&cur, SIGTERM);
  s->hup = sigismember(&cur, SIGHUP);
  s->segv = sigismember(&cur, SIGSEGV);
  s->bus = sigismember(&cur, SIGBUS);
  return NULL;
}

static void test_signals_blocked(void) {
  seen s = {-1, -1, -1, -1, -1};
  pthread_t t;
  CHECK_EQ(sl_thread_start(&t, NULL, look, &s), 0);
  pthread_join(t, NULL);
  CHECK_EQ(s.intr, 1);
  CHECK_EQ(s.term, 1);
  CHECK_EQ(s.hup, 1);
  CHECK_EQ(s.segv, 0);
  CHECK_EQ(s.bus, 0);
}

static void test_caller_mask_kept(void) {
  sigset_t before, after;
  pthread_sigmask(SIG_BLOCK, NULL, &before);
  seen s;
  pthread_t t;
  CHECK_EQ(sl_thread_start(&t, NULL, look, &s), 0);
  pthread_join(t, NULL);
  pthread_sigmask(SIG_BLOCK, NULL, &after);
  CHECK_EQ(sigismember(&after, SIGINT), sigismember(&before, SIGINT));
  CHECK_EQ(sigismember(&after, SIGTERM), sigismember(&before, SIGTERM));
  seen main_view;
  look(&main_view);
  CHECK_EQ(main_view.intr, 0);           /* the main thread still takes it */
}

static const struct tt_case cases[] = {
    {"a library thread starts with the asynchronous signals blocked",
     test_signals_blocked},
    {"the caller's signal mask is left as it was", test_caller_mask_kept},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
