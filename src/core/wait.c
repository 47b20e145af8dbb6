#include "streamlua/wait.h"

#include "streamlua/status.h"

#include "clock.h"

#include <errno.h>
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

int sl_wait_has_hook(void) { return wait_hook != NULL; }

/* The one waiting loop: gives up only when `may_cancel` is set. */
static int wait_loop(int (*cond)(void *arg), void *arg, int may_cancel) {
  for (unsigned spins = 0; !cond(arg); spins++) {
    if (may_cancel && sl_wait_cancelled()) return SL_ECANCELED;
    if (wait_hook != NULL && wait_depth < 4) {
      wait_depth++;
      wait_hook(wait_arg);
      wait_depth--;
      if (cond(arg)) break;
    }
    if (spins < 64) {
      sched_yield();
    } else {
      sl_sleep_us(50);
    }
  }
  return SL_OK;
}

void sl_wait_until(int (*cond)(void *arg), void *arg) {
  (void)wait_loop(cond, arg, 0);
}

int sl_wait_briefly(int (*cond)(void *arg), void *arg, long us) {
  if (cond(arg)) return 1;
  struct timespec now, until;
  sl_deadline_after(&until, us);
  do {
    sched_yield();
    if (cond(arg)) return 1;
    sl_clock_now(&now);
  } while (sl_ts_cmp(&now, &until) < 0);
  return 0;
}

/* ---- giving up ---- */

#define SLICE_US 20000     /* a blocked wait looks for a reason to give up */

static _Thread_local const atomic_int *bound_stop;
static _Thread_local int takes_interrupts;
static _Thread_local int (*interrupt_probe)(void *arg);
static _Thread_local void *probe_arg;
static atomic_int interrupt_pending;   /* lock-free: set in signal handlers */

void sl_wait_bind(const atomic_int *stop) { bound_stop = stop; }

void sl_wait_interruptible(int on, int (*probe)(void *arg), void *arg) {
  takes_interrupts = on;
  interrupt_probe = on ? probe : NULL;
  probe_arg = arg;
}

void sl_wait_interrupt(void) {
  atomic_store_explicit(&interrupt_pending, 1, memory_order_release);
}

int sl_wait_interrupted(void) {
  return atomic_load_explicit(&interrupt_pending, memory_order_acquire);
}

int sl_wait_take_interrupt(void) {
  return atomic_exchange_explicit(&interrupt_pending, 0, memory_order_acq_rel);
}

int sl_wait_cancelled(void) {
  if (bound_stop != NULL &&
      atomic_load_explicit(bound_stop, memory_order_acquire))
    return 1;
  if (!takes_interrupts) return 0;
  if (interrupt_probe != NULL && interrupt_probe(probe_arg))
    sl_wait_interrupt();
  return sl_wait_interrupted();
}

int sl_cond_init(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  int rc = pthread_condattr_init(&ca);
  if (rc != 0) return rc;
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  rc = pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
  return rc;
}

void sl_deadline_after(struct timespec *ts, int64_t us) {
  sl_clock_now(ts);
  sl_ts_add_us(ts, us);
}

int64_t sl_deadline_left(const struct timespec *ts) {
  struct timespec now;
  sl_clock_now(&now);
  return sl_ts_diff_us(ts, &now);
}

int sl_wait_cond(pthread_cond_t *cv, pthread_mutex_t *mu,
                 const struct timespec *deadline) {
  if (sl_wait_cancelled()) return SL_ECANCELED;
  struct timespec slice;
  sl_deadline_after(&slice, SLICE_US);
  int last = 0;
  if (deadline != NULL && sl_ts_cmp(deadline, &slice) <= 0) {
    slice = *deadline;
    last = 1;
  }
  if (pthread_cond_timedwait(cv, mu, &slice) == ETIMEDOUT && last)
    return SL_ETIMEDOUT;
  return sl_wait_cancelled() ? SL_ECANCELED : SL_OK;
}

int sl_wait_for(int (*cond)(void *arg), void *arg) {
  return wait_loop(cond, arg, 1);
}
