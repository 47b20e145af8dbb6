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
