/* Module threads: start, stop flag, wake, join (worker.h). */
#include "streamlua/worker.h"

#include <string.h>
#include <unistd.h>

#include "streamlua/status.h"
#include "streamlua/thread.h"
#include "streamlua/wait.h"

static void *worker_main(void *arg) {
  sl_worker *w = arg;
  if (w->name[0] != '\0') pthread_setname_np(pthread_self(), w->name);
  sl_wait_bind(&w->stop);   /* a stop frees it from waits downstream */
  int rc = w->fn(w->arg);
  sl_wait_bind(NULL);
  if (rc != SL_WORKER_FREED)
    atomic_store_explicit(&w->exited, 1, memory_order_release);
  return NULL;
}

int sl_worker_start(sl_worker *w, const char *name, size_t stack_size,
                    int (*fn)(void *arg), void (*wake)(void *arg), void *arg) {
  w->fn = fn;
  w->wake = wake;
  w->arg = arg;
  w->name[0] = '\0';
  if (name != NULL) {
    strncpy(w->name, name, sizeof w->name - 1);
    w->name[sizeof w->name - 1] = '\0';
  }
  atomic_store(&w->stop, 0);
  atomic_store(&w->exited, 0);
  /* at least the platform's minimum (16 KiB on x86-64, 128 KiB on arm64) */
  size_t size = stack_size > 0 ? stack_size : SL_WORKER_STACK_DEFAULT;
  long min = sysconf(_SC_THREAD_STACK_MIN);
  if (min > 0 && size < (size_t)min) size = (size_t)min;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  int rc = pthread_attr_setstacksize(&attr, size);
  if (rc != 0) {
    pthread_attr_destroy(&attr);
    return rc;
  }
  atomic_store(&w->joinable, 1);
  rc = sl_thread_start(&w->thread, &attr, worker_main, w);
  pthread_attr_destroy(&attr);
  if (rc != 0) atomic_store(&w->joinable, 0);
  /* named by both: fn sees its name, and the owner when this returns */
  else if (w->name[0] != '\0') pthread_setname_np(w->thread, w->name);
  return rc;
}

/* A thread that frees its worker may do so once the flag is set: w is not
** read after the exchange. */
int sl_worker_request_stop(sl_worker *w) {
  void (*wake)(void *arg) = w->wake;
  void *arg = w->arg;
  if (atomic_exchange_explicit(&w->stop, 1, memory_order_acq_rel)) return 0;
  if (wake != NULL) wake(arg);
  return 1;
}

void sl_worker_cancel_stop(sl_worker *w) {
  atomic_store_explicit(&w->stop, 0, memory_order_release);
}

int sl_worker_is_self(const sl_worker *w) {
  return atomic_load(&w->joinable) && pthread_equal(pthread_self(), w->thread);
}

static int has_exited(void *arg) {
  return atomic_load_explicit(&((sl_worker *)arg)->exited, memory_order_acquire);
}

int sl_worker_join(sl_worker *w) {
  if (!atomic_load(&w->joinable)) return SL_OK;
  if (pthread_equal(pthread_self(), w->thread)) return SL_EBUSY;
  sl_wait_until(has_exited, w);
  pthread_join(w->thread, NULL);
  atomic_store(&w->joinable, 0);
  return SL_OK;
}

int sl_worker_stop(sl_worker *w) {
  sl_worker_request_stop(w);
  return sl_worker_join(w);
}

void sl_worker_detach(sl_worker *w) {
  if (!atomic_exchange(&w->joinable, 0)) return;
  pthread_detach(w->thread);
}
