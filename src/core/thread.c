/* Library threads start with the asynchronous signals blocked (thread.h). */
#include "streamlua/thread.h"

#include <signal.h>

int sl_thread_start(pthread_t *t, const pthread_attr_t *attr,
                    void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  /* faults stay deliverable to the thread that causes them */
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGILL);
  sigdelset(&all, SIGABRT);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(t, attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}
