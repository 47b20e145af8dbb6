/*
** sl_worker: a started thread runs until told to stop; the stop flag is
** set once and wakes the thread once; waits on the worker's thread give
** up once it is stopping; join waits for the end and joins once; a thread
** cannot join itself; a withdrawn stop lets it go on; a detached worker
** frees itself; stack size 0 takes the default stack; hundreds run at
** once.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "streamlua/status.h"
#include "streamlua/wait.h"
#include "streamlua/worker.h"
#include "tt.h"

/* A thread that sleeps on a condition until woken with a stop. */
typedef struct sleeper {
  sl_worker w;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atomic_int running, wakes, ended;
  int self_join;               /* what join returned on the thread itself */
  char name[16];
} sleeper;

static int sleeper_main(void *arg) {
  sleeper *s = arg;
  atomic_store(&s->running, 1);
  s->self_join = sl_worker_join(&s->w);
  pthread_getname_np(pthread_self(), s->name, sizeof s->name);
  pthread_mutex_lock(&s->mu);
  while (!sl_worker_stopping(&s->w)) pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
  atomic_store(&s->ended, 1);
  return 0;
}

static void sleeper_wake(void *arg) {
  sleeper *s = arg;
  atomic_fetch_add(&s->wakes, 1);
  pthread_mutex_lock(&s->mu);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static int is_running(void *arg) { return atomic_load(&((sleeper *)arg)->running); }

static void test_start_stop_join(void) {
  sleeper s;
  memset(&s, 0, sizeof s);
  pthread_mutex_init(&s.mu, NULL);
  pthread_cond_init(&s.cv, NULL);
  CHECK_EQ(sl_worker_join(&s.w), SL_OK);       /* never started: nothing */
  CHECK_EQ(sl_worker_start(&s.w, "sl-test", 0, sleeper_main, sleeper_wake, &s), 0);
  sl_wait_until(is_running, &s);
  CHECK(!sl_worker_is_self(&s.w));
  CHECK(!sl_worker_stopping(&s.w));
  CHECK_EQ(sl_worker_request_stop(&s.w), 1);
  CHECK_EQ(sl_worker_request_stop(&s.w), 0);   /* once */
  CHECK(sl_worker_stopping(&s.w));
  CHECK_EQ(sl_worker_join(&s.w), SL_OK);
  CHECK_EQ(atomic_load(&s.ended), 1);
  CHECK_EQ(atomic_load(&s.wakes), 1);
  CHECK_EQ(s.self_join, SL_EBUSY);             /* it could not join itself */
  CHECK_STR(s.name, "sl-test");
  CHECK_EQ(sl_worker_join(&s.w), SL_OK);       /* joined already */
  /* started again: the stop flag is clear */
  atomic_store(&s.running, 0);
  atomic_store(&s.ended, 0);
  CHECK_EQ(sl_worker_start(&s.w, NULL, 64 * 1024, sleeper_main, sleeper_wake, &s), 0);
  sl_wait_until(is_running, &s);
  CHECK(!sl_worker_stopping(&s.w));
  CHECK_EQ(sl_worker_stop(&s.w), SL_OK);
  CHECK_EQ(atomic_load(&s.ended), 1);
  CHECK_EQ(atomic_load(&s.wakes), 2);
  pthread_cond_destroy(&s.cv);
  pthread_mutex_destroy(&s.mu);
}

/* A thread in a library wait (nothing wakes it but the stop). */
typedef struct waiter {
  sl_worker w;
  atomic_int rc;
} waiter;

static int never(void *arg) {
  (void)arg;
  return 0;
}

static int waiter_main(void *arg) {
  waiter *t = arg;
  atomic_store(&t->rc, sl_wait_for(never, NULL));
  return 0;
}

static void test_stop_ends_waits(void) {
  waiter t;
  memset(&t, 0, sizeof t);
  atomic_store(&t.rc, 99);
  CHECK_EQ(sl_worker_start(&t.w, NULL, 0, waiter_main, NULL, &t), 0);
  CHECK_EQ(sl_worker_stop(&t.w), SL_OK);
  CHECK_EQ(atomic_load(&t.rc), SL_ECANCELED);
}

/* A thread that ends, under its owner's lock, once asked to stop. */
typedef struct looper {
  sl_worker w;
  pthread_mutex_t mu;
  atomic_int loops;
  int from;                    /* loops when the stop was withdrawn */
} looper;

static int looper_main(void *arg) {
  looper *l = arg;
  pthread_mutex_lock(&l->mu);
  while (!sl_worker_stopping(&l->w)) {
    pthread_mutex_unlock(&l->mu);
    atomic_fetch_add(&l->loops, 1);
    sleep_ms(1);
    pthread_mutex_lock(&l->mu);
  }
  pthread_mutex_unlock(&l->mu);
  return 0;
}

static int looped_twice_more(void *arg) {
  looper *l = arg;
  return atomic_load(&l->loops) >= l->from + 2;
}

static void test_cancel_stop(void) {
  looper l;
  memset(&l, 0, sizeof l);
  pthread_mutex_init(&l.mu, NULL);
  CHECK_EQ(sl_worker_start(&l.w, NULL, 0, looper_main, NULL, &l), 0);
  pthread_mutex_lock(&l.mu);
  CHECK_EQ(sl_worker_request_stop(&l.w), 1);
  sl_worker_cancel_stop(&l.w);                 /* before the thread looked */
  CHECK(!sl_worker_stopping(&l.w));
  l.from = atomic_load(&l.loops);
  pthread_mutex_unlock(&l.mu);
  sl_wait_until(looped_twice_more, &l);        /* it went on */
  CHECK_EQ(sl_worker_request_stop(&l.w), 1);   /* a new stop counts again */
  CHECK_EQ(sl_worker_join(&l.w), SL_OK);
  pthread_mutex_destroy(&l.mu);
}

/* A detached worker that frees its own memory. */
typedef struct orphan {
  sl_worker w;
  atomic_int *freed;
} orphan;

static int orphan_main(void *arg) {
  orphan *o = arg;
  while (!sl_worker_stopping(&o->w)) sleep_ms(1);
  atomic_int *freed = o->freed;
  free(o);
  atomic_store(freed, 1);
  return SL_WORKER_FREED;
}

static int is_set(void *arg) { return atomic_load((atomic_int *)arg); }

static void test_detached_frees_itself(void) {
  static atomic_int freed;
  orphan *o = calloc(1, sizeof *o);
  o->freed = &freed;
  CHECK_EQ(sl_worker_start(&o->w, NULL, 0, orphan_main, NULL, o), 0);
  sl_worker_detach(&o->w);
  CHECK_EQ(sl_worker_join(&o->w), SL_OK);      /* detached: nothing to join */
  sl_worker_request_stop(&o->w);               /* o is the thread's now */
  sl_wait_until(is_set, &freed);
  CHECK_EQ(atomic_load(&freed), 1);
}

/* A worker started with stack_size 0: its stack is the default one, not
** the process's (glibc's 8 MiB), and all of it can be used. */
typedef struct stacker {
  sl_worker w;
  size_t size;                 /* the thread's stack, as it sees it */
  atomic_int used;             /* bytes it touched before returning */
} stacker;

/* Uses about `left` bytes of stack, a page at a time. */
static int deep(size_t left) {
  volatile char page[4096];
  memset((char *)page, (int)(left & 0x7f), sizeof page);
  if (left <= sizeof page) return page[0];
  return deep(left - sizeof page) + page[sizeof page - 1];
}

/* Notes the size of the stack it runs on. */
static int measure_fn(void *arg) {
  stacker *k = arg;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstacksize(&attr, &k->size);
    pthread_attr_destroy(&attr);
  }
  return 0;
}

static int stacker_main(void *arg) {
  stacker *k = arg;
  measure_fn(k);
  size_t use = SL_WORKER_STACK_DEFAULT / 4 * 3;
  if (deep(use) >= 0) atomic_store(&k->used, (int)use);
  return 0;
}

static void test_default_stack(void) {
  stacker k;
  memset(&k, 0, sizeof k);
  CHECK_EQ(sl_worker_start(&k.w, NULL, 0, stacker_main, NULL, &k), 0);
  CHECK_EQ(sl_worker_join(&k.w), SL_OK);
  CHECK(k.size >= SL_WORKER_STACK_DEFAULT);
  CHECK(k.size < 2 * SL_WORKER_STACK_DEFAULT);
  CHECK_EQ((size_t)atomic_load(&k.used), SL_WORKER_STACK_DEFAULT / 4 * 3);
}

/* A stack below the platform's minimum (128 KiB on arm64) is raised to
** it, not refused. */
static void test_small_stack(void) {
  stacker k;
  memset(&k, 0, sizeof k);
  CHECK_EQ(sl_worker_start(&k.w, NULL, 1, measure_fn, NULL, &k), 0);
  CHECK_EQ(sl_worker_join(&k.w), SL_OK);
  long min = sysconf(_SC_THREAD_STACK_MIN);
  CHECK(k.size >= (size_t)min);
}

/* Hundreds of workers with the default stack alive at once (as hundreds
** of Fifos are): with 8 MiB each they would not fit a 32-bit process.
** Each sleeps on its own condition until its stop. */
#define MANY 384

static void test_many_workers(void) {
  sleeper *s = calloc(MANY, sizeof *s);
  int started = 0, ended = 0;
  for (int i = 0; i < MANY; i++) {
    pthread_mutex_init(&s[i].mu, NULL);
    pthread_cond_init(&s[i].cv, NULL);
    if (sl_worker_start(&s[i].w, NULL, 0, sleeper_main, sleeper_wake, &s[i]) == 0) started++;
  }
  CHECK_EQ(started, MANY);
  for (int i = 0; i < MANY; i++) sl_wait_until(is_running, &s[i]);   /* all at once */
  for (int i = 0; i < MANY; i++) {
    sl_worker_stop(&s[i].w);
    ended += atomic_load(&s[i].ended);
    pthread_cond_destroy(&s[i].cv);
    pthread_mutex_destroy(&s[i].mu);
  }
  CHECK_EQ(ended, MANY);
  free(s);
}

static const struct tt_case cases[] = {
  {"stack size 0 takes the default stack, all of it usable", test_default_stack},
  {"hundreds of workers with the default stack at once", test_many_workers},
  {"a stack below the minimum is raised to it", test_small_stack},
  {"start, stop once, wake once, join", test_start_stop_join},
  {"a stop ends the thread's waits", test_stop_ends_waits},
  {"a withdrawn stop lets the thread go on", test_cancel_stop},
  {"a detached worker frees itself", test_detached_frees_itself},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
