#include "streamlua/wait.h"

#include <sched.h>
#include <stddef.h>
#include <time.h>

static _Thread_local void (*wait_hook)(void *arg);
static _Thread_local void *wait_arg;
static _Thread_local int wait_depth;   /* hooks may wait again, a little */

void sl_wait_set_hook(void (*hook)(void *arg), void *arg) {
  wait_hook = hook;
  wait_arg = arg;
}

void sl_wait_until(int (*cond)(void *arg), void *arg) {
  for (unsigned spins = 0; !cond(arg); spins++) {
    if (wait_hook != NULL && wait_depth < 4) {
      wait_depth++;
      wait_hook(wait_arg);
      wait_depth--;
      if (cond(arg)) break;
    }
    if (spins < 64) {
      sched_yield();
    } else {
      struct timespec ts = {0, 50000};
      nanosleep(&ts, NULL);
    }
  }
}

int sl_wait_briefly(int (*cond)(void *arg), void *arg, long us) {
  if (cond(arg)) return 1;
  struct timespec now, until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += us / 1000000;
  until.tv_nsec += (us % 1000000) * 1000;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  do {
    sched_yield();
    if (cond(arg)) return 1;
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while (now.tv_sec < until.tv_sec ||
           (now.tv_sec == until.tv_sec && now.tv_nsec < until.tv_nsec));
  return 0;
}
