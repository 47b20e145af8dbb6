/*
** The I/O threads: a refcounted set of event loops. Calls from other
** threads go through a mutex-protected list per loop and one event
** activated with event_active(); the callback drains the whole list, since
** activations coalesce (a wake-up is not a message).
*/
#include "streamlua/io.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "streamlua/status.h"
#include "streamlua/worker.h"

#define IO_MAX 8

typedef struct io_call {
  struct io_call *next;
  void (*fn)(void *arg);
  void *arg;
  int *done;                   /* sync calls: set under the loop mutex */
} io_call;

typedef struct io_loop {
  struct event_base *base;
  struct event *wake;
  sl_worker worker;            /* runs the loop; a stop ends it once the
                               ** calls queued so far have run */
  pthread_mutex_t mutex;
  pthread_cond_t done_cv;
  io_call *head, *tail;
} io_loop;

struct sl_io {
  int refs;                    /* guarded by io_global_mutex */
  int n;
  io_loop loops[IO_MAX];
};

static pthread_mutex_t io_global_mutex = PTHREAD_MUTEX_INITIALIZER;
static sl_io *io_global;
static int io_wanted = 1;
static pthread_once_t io_setup_once = PTHREAD_ONCE_INIT;

/*
** Once per process: libevent's locking, and the open-file limit raised from
** its soft value to the hard one, so hundreds of bridges (a few sockets
** each) need no system tuning.
*/
static void io_setup(void) {
  evthread_use_pthreads();
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void run_calls(io_loop *l) {
  for (;;) {
    pthread_mutex_lock(&l->mutex);
    io_call *c = l->head;
    l->head = NULL;
    l->tail = NULL;
    pthread_mutex_unlock(&l->mutex);
    if (c == NULL) return;
    while (c != NULL) {
      io_call *next = c->next;
      c->fn(c->arg);
      if (c->done != NULL) {
        pthread_mutex_lock(&l->mutex);
        *c->done = 1;
        pthread_cond_broadcast(&l->done_cv);
        pthread_mutex_unlock(&l->mutex);
      }
      free(c);
      c = next;
    }
  }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  io_loop *l = arg;
  run_calls(l);
  pthread_mutex_lock(&l->mutex);
  int stop = sl_worker_stopping(&l->worker) && l->head == NULL;
  pthread_mutex_unlock(&l->mutex);
  if (stop) event_base_loopbreak(l->base);
}

static int io_main(void *arg) {
  io_loop *l = arg;
  event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
  run_calls(l);                /* whatever was queued last */
  return 0;
}

/* The worker's wake: the loop looks at its calls and the stop. */
static void wake_loop(void *arg) {
  io_loop *l = arg;
  event_active(l->wake, EV_READ, 0);
}

static void loop_fini(io_loop *l) {
  sl_worker_stop(&l->worker);
  if (l->wake) event_free(l->wake);
  if (l->base) event_base_free(l->base);
  pthread_cond_destroy(&l->done_cv);
  pthread_mutex_destroy(&l->mutex);
}

static int loop_init(io_loop *l) {
  pthread_mutex_init(&l->mutex, NULL);
  pthread_cond_init(&l->done_cv, NULL);
  l->base = event_base_new();
  if (l->base == NULL) return -1;
  l->wake = event_new(l->base, -1, 0, wake_cb, l);
  if (l->wake == NULL) return -1;
  return sl_worker_start(&l->worker, "sl-io", 0, io_main, wake_loop, l) == 0
             ? 0 : -1;
}

static void io_free(sl_io *io) {
  for (int i = 0; i < io->n; i++) loop_fini(&io->loops[i]);
  free(io);
}

int sl_io_set_threads(int n) {
  if (n < 1 || n > IO_MAX) return -1;
  pthread_mutex_lock(&io_global_mutex);
  int busy = io_global != NULL;
  if (!busy) io_wanted = n;
  pthread_mutex_unlock(&io_global_mutex);
  return busy ? -1 : 0;
}

sl_io *sl_io_acquire(void) {
  pthread_once(&io_setup_once, io_setup);
  pthread_mutex_lock(&io_global_mutex);
  sl_io *io = io_global;
  if (io != NULL) {
    io->refs++;
    goto out;
  }
  io = calloc(1, sizeof *io);
  if (io == NULL) goto out;
  for (io->n = 0; io->n < io_wanted; io->n++) {
    if (loop_init(&io->loops[io->n]) != 0) {
      io->n++;                 /* so io_free cleans this one too */
      io_free(io);
      io = NULL;
      goto out;
    }
  }
  io->refs = 1;
  io_global = io;
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
  if (last) io_free(io);
}

int sl_io_count(sl_io *io) { return io->n; }

struct event_base *sl_io_base(sl_io *io, int i) {
  return io->loops[i % io->n].base;
}

int sl_io_on_thread(sl_io *io, int i) {
  return sl_worker_is_self(&io->loops[i % io->n].worker);
}

static int enqueue(io_loop *l, void (*fn)(void *), void *arg, int *done) {
  io_call *c = malloc(sizeof *c);
  if (c == NULL) return -1;
  c->next = NULL;
  c->fn = fn;
  c->arg = arg;
  c->done = done;
  pthread_mutex_lock(&l->mutex);
  if (l->tail) l->tail->next = c;
  else l->head = c;
  l->tail = c;
  pthread_mutex_unlock(&l->mutex);
  event_active(l->wake, EV_READ, 0);
  return 0;
}

int sl_io_call(sl_io *io, int i, void (*fn)(void *arg), void *arg) {
  return enqueue(&io->loops[i % io->n], fn, arg, NULL);
}

int sl_io_call_sync(sl_io *io, int i, void (*fn)(void *arg), void *arg) {
  io_loop *l = &io->loops[i % io->n];
  if (sl_worker_is_self(&l->worker)) {
    fn(arg);
    return 0;
  }
  int done = 0;
  if (enqueue(l, fn, arg, &done) != 0) return -1;
  pthread_mutex_lock(&l->mutex);
  while (!done) pthread_cond_wait(&l->done_cv, &l->mutex);
  pthread_mutex_unlock(&l->mutex);
  return 0;
}

int sl_io_thread_count(void) {
  pthread_mutex_lock(&io_global_mutex);
  int n = io_global != NULL ? io_global->n : 0;
  pthread_mutex_unlock(&io_global_mutex);
  return n;
}
