/*
** The I/O thread: a refcounted singleton. Calls from other threads go
** through a mutex-protected list and one event activated with
** event_active(); the callback drains the whole list, since activations
** coalesce (a wake-up is not a message).
*/
#include "streamlua/io.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <event2/thread.h>

typedef struct io_call {
  struct io_call *next;
  void (*fn)(void *arg);
  void *arg;
  int *done;                   /* sync calls: set under the io mutex */
} io_call;

struct sl_io {
  int refs;                    /* guarded by io_global_mutex */
  struct event_base *base;
  struct event *wake;
  pthread_t thread;
  pthread_mutex_t mutex;
  pthread_cond_t done_cv;
  io_call *head, *tail;
  int stopping;
};

static pthread_mutex_t io_global_mutex = PTHREAD_MUTEX_INITIALIZER;
static sl_io *io_global;
static pthread_once_t io_evthread_once = PTHREAD_ONCE_INIT;

/*
** Once per process: libevent's locking, and the open-file limit raised from
** its soft value to the hard one, so hundreds of bridges (a few sockets
** each) need no system tuning.
*/
static void io_evthread_setup(void) {
  evthread_use_pthreads();
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void run_calls(sl_io *io) {
  for (;;) {
    pthread_mutex_lock(&io->mutex);
    io_call *c = io->head;
    io->head = NULL;
    io->tail = NULL;
    pthread_mutex_unlock(&io->mutex);
    if (c == NULL) return;
    while (c != NULL) {
      io_call *next = c->next;
      c->fn(c->arg);
      if (c->done != NULL) {
        pthread_mutex_lock(&io->mutex);
        *c->done = 1;
        pthread_cond_broadcast(&io->done_cv);
        pthread_mutex_unlock(&io->mutex);
      }
      free(c);
      c = next;
    }
  }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  sl_io *io = arg;
  run_calls(io);
  pthread_mutex_lock(&io->mutex);
  int stop = io->stopping && io->head == NULL;
  pthread_mutex_unlock(&io->mutex);
  if (stop) event_base_loopbreak(io->base);
}

static void *io_main(void *arg) {
  sl_io *io = arg;
  event_base_loop(io->base, EVLOOP_NO_EXIT_ON_EMPTY);
  run_calls(io);               /* whatever was queued last */
  return NULL;
}

static void io_free(sl_io *io) {
  if (io->wake) event_free(io->wake);
  if (io->base) event_base_free(io->base);
  pthread_cond_destroy(&io->done_cv);
  pthread_mutex_destroy(&io->mutex);
  free(io);
}

sl_io *sl_io_acquire(void) {
  pthread_once(&io_evthread_once, io_evthread_setup);
  pthread_mutex_lock(&io_global_mutex);
  sl_io *io = io_global;
  if (io != NULL) {
    io->refs++;
    goto out;
  }
  io = calloc(1, sizeof *io);
  if (io == NULL) goto out;
  pthread_mutex_init(&io->mutex, NULL);
  pthread_cond_init(&io->done_cv, NULL);
  io->base = event_base_new();
  if (io->base == NULL) goto out_free;
  io->wake = event_new(io->base, -1, 0, wake_cb, io);
  if (io->wake == NULL) goto out_free;
  if (pthread_create(&io->thread, NULL, io_main, io) != 0) goto out_free;
  io->refs = 1;
  io_global = io;
  goto out;
out_free:
  io_free(io);
  io = NULL;
out:
  pthread_mutex_unlock(&io_global_mutex);
  return io;
}

void sl_io_release(sl_io *io) {
  if (io == NULL) return;
  pthread_mutex_lock(&io_global_mutex);
  int last = --io->refs == 0;
  if (last) io_global = NULL;
  pthread_mutex_unlock(&io_global_mutex);
  if (!last) return;
  pthread_mutex_lock(&io->mutex);
  io->stopping = 1;
  pthread_mutex_unlock(&io->mutex);
  event_active(io->wake, EV_READ, 0);
  pthread_join(io->thread, NULL);
  io_free(io);
}

struct event_base *sl_io_base(sl_io *io) { return io->base; }

int sl_io_on_thread(sl_io *io) {
  return pthread_equal(pthread_self(), io->thread);
}

static int enqueue(sl_io *io, void (*fn)(void *), void *arg, int *done) {
  io_call *c = malloc(sizeof *c);
  if (c == NULL) return -1;
  c->next = NULL;
  c->fn = fn;
  c->arg = arg;
  c->done = done;
  pthread_mutex_lock(&io->mutex);
  if (io->tail) io->tail->next = c;
  else io->head = c;
  io->tail = c;
  pthread_mutex_unlock(&io->mutex);
  event_active(io->wake, EV_READ, 0);
  return 0;
}

int sl_io_call(sl_io *io, void (*fn)(void *arg), void *arg) {
  return enqueue(io, fn, arg, NULL);
}

int sl_io_call_sync(sl_io *io, void (*fn)(void *arg), void *arg) {
  if (sl_io_on_thread(io)) {
    fn(arg);
    return 0;
  }
  int done = 0;
  if (enqueue(io, fn, arg, &done) != 0) return -1;
  pthread_mutex_lock(&io->mutex);
  while (!done) pthread_cond_wait(&io->done_cv, &io->mutex);
  pthread_mutex_unlock(&io->mutex);
  return 0;
}

int sl_io_thread_count(void) {
  pthread_mutex_lock(&io_global_mutex);
  int n = io_global != NULL;
  pthread_mutex_unlock(&io_global_mutex);
  return n;
}
