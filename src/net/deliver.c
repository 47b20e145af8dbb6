/* The delivery pool (deliver.h). */
#include "deliver.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "streamlua/thread.h"
#include "streamlua/wait.h"

#include "../core/clock.h"

#define STACK (256 * 1024)   /* threads that only hand frames on */
#define IDLE_EXIT_US 1000000 /* surplus threads end after this idle */

enum { T_IDLE, T_QUEUED, T_RUNNING, T_DETACHED };

/* A pool thread, on its own stack; listed for the watcher. */
typedef struct dthread {
  struct dthread *next;
  struct dthread *idle_next; /* in the idle stack */
  pthread_cond_t cv;         /* its own: the last one idle is woken first */
  int woken;                 /* taken off the idle stack for a task */
  sl_deliver_task *task;     /* running now, or NULL */
  uint64_t seq, seen;        /* batches run; seq at the watcher's last look */
  int waiting;               /* counted in nwaiting */
} dthread;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t watch;      /* the watcher */
  sl_deliver_task *head, *tail;
  dthread *threads;
  dthread *idle;             /* idle threads, the latest first */
  int nthreads, nidle, nwaiting;
  int set;                   /* threads kept; 0: not decided yet */
  int users;                 /* tasks attached */
  int watcher;               /* the watcher runs */
  int watcher_asleep;        /* it waits with no deadline */
  unsigned long replaced;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The condition variables wait on the monotonic clock, as deadlines do. */
static pthread_once_t conds_once = PTHREAD_ONCE_INIT;
static void conds_init(void) { sl_cond_init(&P.watch); }

/* Every idle thread looks at its conditions again. */
static void wake_idle_nolock(void) {
  for (dthread *d = P.idle; d != NULL; d = d->idle_next) pthread_cond_signal(&d->cv);
}

static _Thread_local sl_deliver_task *running_here;   /* this thread's run */

static int default_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 4 ? 4 : (int)n;
}

/* Threads that count toward the set number: not waiting downstream. */
static int working_nolock(void) { return P.nthreads - P.nwaiting; }

static void push_nolock(sl_deliver_task *t) {
  t->next = NULL;
  t->state = T_QUEUED;
  if (P.tail != NULL) P.tail->next = t;
  else P.head = t;
  P.tail = t;
}

static sl_deliver_task *pop_nolock(void) {
  sl_deliver_task *t = P.head;
  P.head = t->next;
  if (P.head == NULL) P.tail = NULL;
  t->next = NULL;
  return t;
}

static void unlink_nolock(sl_deliver_task *t) {
  sl_deliver_task **pp = &P.head, *prev = NULL;
  while (*pp != NULL && *pp != t) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (*pp == NULL) return;
  *pp = t->next;
  if (P.tail == t) P.tail = prev;
  t->next = NULL;
}

/* A task was queued: the thread idle last (its cache the warmest: often
** the one that ran this task before) takes it; if none is idle, the
** watcher looks. */
static void queued_nolock(void) {
  dthread *d = P.idle;
  if (d != NULL) {
    P.idle = d->idle_next;
    P.nidle--;
    d->woken = 1;
    pthread_cond_signal(&d->cv);
  } else if (P.watcher_asleep) {
    pthread_cond_signal(&P.watch);
  }
}

static void run_task(dthread *me, sl_deliver_task *t);

static void *pool_main(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "sl-tcp-rx");
  dthread me = {0};
  sl_cond_init(&me.cv);
  pthread_mutex_lock(&P.mu);
  me.next = P.threads;
  P.threads = &me;
  for (;;) {
    if (P.head != NULL) {
      sl_deliver_task *t = pop_nolock();
      run_task(&me, t);            /* returns with the lock held */
      continue;
    }
    /* idle: surplus threads, and all once no task is attached, end after a
    ** while without work */
    int surplus = P.nthreads > P.set || P.users == 0;
    me.idle_next = P.idle;
    P.idle = &me;
    P.nidle++;
    int rc = 0;
    if (surplus) {
      struct timespec dl;
      sl_deadline_after(&dl, IDLE_EXIT_US);
      rc = pthread_cond_timedwait(&me.cv, &P.mu, &dl);
    } else {
      pthread_cond_wait(&me.cv, &P.mu);
    }
    if (me.woken) {              /* the waker took it off the stack */
      me.woken = 0;
      continue;
    }
    dthread **ip = &P.idle;      /* a look, a timeout or a spurious wake */
    while (*ip != &me) ip = &(*ip)->idle_next;
    *ip = me.idle_next;
    P.nidle--;
    if (rc == ETIMEDOUT && P.head == NULL && (P.nthreads > P.set || P.users == 0)) break;
  }
  dthread **pp = &P.threads;
  while (*pp != &me) pp = &(*pp)->next;
  *pp = me.next;
  P.nthreads--;
  pthread_mutex_unlock(&P.mu);
  pthread_cond_destroy(&me.cv);
  return NULL;
}

/*
** Runs t (lock held on entry and on return, not during the run): one
** batch at a time, going straight on while no other task waits, else
** behind them. One who detached t meanwhile waits for T_RUNNING to end.
** A thread past the set number (started while another waited) goes on
** serving; it ends once idle.
*/
static void run_task(dthread *me, sl_deliver_task *t) {
  t->state = T_RUNNING;
  me->task = t;
  for (;;) {
    pthread_mutex_unlock(&P.mu);
    running_here = t;
    sl_wait_bind(&t->stop);
    int more = t->run(t);
    sl_wait_bind(NULL);
    running_here = NULL;
    pthread_mutex_lock(&P.mu);
    me->seq++;
    if (me->waiting) {
      me->waiting = 0;
      P.nwaiting--;
    }
    more |= t->again;
    t->again = 0;
    if (t->detaching) {          /* the detacher waits for this */
      t->detaching = 0;
      t->state = T_DETACHED;
      break;
    }
    if (!more) {
      t->state = T_IDLE;
      break;
    }
    if (P.head != NULL) {        /* fairness: others waiting go first */
      push_nolock(t);
      queued_nolock();
      break;
    }
  }
  me->task = NULL;
}

/* The watcher: while tasks wait and no thread is free, marks the threads
** whose batch has not moved since its last look as waiting, and starts
** threads while fewer than the set number are not waiting. */
static void start_thread_nolock(void);

static void *watch_main(void *arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "sl-tcp-watch");
  int primed = 0;   /* the last look was a tick ago */
  pthread_mutex_lock(&P.mu);
  while (P.users > 0 || P.nthreads > 0) {
    if (P.head == NULL || P.nidle > 0) {
      primed = 0;
      P.watcher_asleep = 1;
      if (P.users > 0) {
        pthread_cond_wait(&P.watch, &P.mu);
      } else {
        struct timespec dl;
        sl_deadline_after(&dl, IDLE_EXIT_US);
        pthread_cond_timedwait(&P.watch, &P.mu, &dl);
      }
      P.watcher_asleep = 0;
      continue;
    }
    for (dthread *d = P.threads; d != NULL; d = d->next) {
      if (primed && d->task != NULL && !d->waiting && d->seq == d->seen) {
        d->waiting = 1;
        P.nwaiting++;
      }
      d->seen = d->seq;
    }
    primed = 1;
    while (P.head != NULL && P.nidle == 0 && working_nolock() < P.set &&
           P.nthreads < SL_DELIVER_MAX_THREADS) {
      int before = P.nthreads;
      start_thread_nolock();
      if (P.nthreads == before) break;
      P.replaced++;
    }
    struct timespec dl;
    sl_deadline_after(&dl, SL_DELIVER_TICK_MS * 1000);
    pthread_cond_timedwait(&P.watch, &P.mu, &dl);
  }
  P.watcher = 0;
  pthread_mutex_unlock(&P.mu);
  return NULL;
}

static int start_detached(void *(*fn)(void *)) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, STACK);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t th;
  int rc = sl_thread_start(&th, &attr, fn, NULL);
  pthread_attr_destroy(&attr);
  return rc;
}

static void start_thread_nolock(void) {
  if (start_detached(pool_main) == 0) P.nthreads++;
}

int sl_deliver_attach(sl_deliver_task *t, int (*run)(sl_deliver_task *t)) {
  t->run = run;
  atomic_store(&t->stop, 0);
  t->next = NULL;
  t->state = T_IDLE;
  t->again = 0;
  t->detaching = 0;
  t->attached = 0;
  pthread_once(&conds_once, conds_init);
  pthread_mutex_lock(&P.mu);
  if (P.set == 0) P.set = default_threads();
  if (!P.watcher && start_detached(watch_main) == 0) P.watcher = 1;
  while (working_nolock() < P.set && P.nthreads < SL_DELIVER_MAX_THREADS) {
    int before = P.nthreads;
    start_thread_nolock();
    if (P.nthreads == before) break;
  }
  int ok = P.nthreads > 0 && P.watcher;
  if (ok) {
    P.users++;
    t->attached = 1;
  }
  pthread_mutex_unlock(&P.mu);
  return ok ? 0 : EAGAIN;
}

void sl_deliver_notify(sl_deliver_task *t) {
  pthread_mutex_lock(&P.mu);
  if (t->state == T_IDLE) {
    push_nolock(t);
    queued_nolock();
  } else if (t->state == T_RUNNING) {
    t->again = 1;
  }
  pthread_mutex_unlock(&P.mu);
}

void sl_deliver_cancel(sl_deliver_task *t) {
  atomic_store_explicit(&t->stop, 1, memory_order_release);
}

static int not_running(void *arg) {
  sl_deliver_task *t = arg;
  pthread_mutex_lock(&P.mu);
  int done = t->state != T_RUNNING;
  pthread_mutex_unlock(&P.mu);
  return done;
}

void sl_deliver_detach(sl_deliver_task *t) {
  sl_deliver_cancel(t);
  pthread_mutex_lock(&P.mu);
  if (t->attached) {
    t->attached = 0;
    if (--P.users == 0) {        /* idle threads and the watcher may end */
      wake_idle_nolock();
      pthread_cond_signal(&P.watch);
    }
  }
  if (t->state == T_QUEUED) unlink_nolock(t);
  if (t->state != T_RUNNING) {
    t->state = T_DETACHED;
    pthread_mutex_unlock(&P.mu);
    return;
  }
  t->detaching = 1;              /* its thread lets go of it after the run */
  int self = running_here == t;
  pthread_mutex_unlock(&P.mu);
  if (!self) sl_wait_until(not_running, t);   /* the caller's hook runs */
}

void sl_deliver_set_threads(int n) {
  pthread_once(&conds_once, conds_init);
  if (n < 1) n = 1;
  if (n > SL_DELIVER_SET_MAX) n = SL_DELIVER_SET_MAX;
  pthread_mutex_lock(&P.mu);
  P.set = n;
  while (P.users > 0 && working_nolock() < P.set && P.nthreads < SL_DELIVER_MAX_THREADS) {
    int before = P.nthreads;
    start_thread_nolock();
    if (P.nthreads == before) break;
  }
  wake_idle_nolock();                 /* surplus idle threads look again */
  pthread_mutex_unlock(&P.mu);
}

int sl_deliver_threads(void) {
  pthread_mutex_lock(&P.mu);
  int n = P.set != 0 ? P.set : default_threads();
  pthread_mutex_unlock(&P.mu);
  return n;
}

int sl_deliver_running(void) {
  pthread_mutex_lock(&P.mu);
  int n = P.nthreads;
  pthread_mutex_unlock(&P.mu);
  return n;
}

unsigned long sl_deliver_replaced(void) {
  pthread_mutex_lock(&P.mu);
  unsigned long n = P.replaced;
  pthread_mutex_unlock(&P.mu);
  return n;
}
