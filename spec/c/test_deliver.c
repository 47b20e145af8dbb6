/*
** The delivery pool (src/net/deliver.h) with stand-in tasks, no sockets:
** each task's items come out in order and on one thread at a time; a task
** that always has more does not keep a waiting one out; a run blocked
** downstream gives up when its task is detached, and the detach returns
** with the run over (the task's memory is freed right after, under ASan);
** a blocked run does not hold up the other tasks. Every wait is bounded.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/status.h"
#include "streamlua/wait.h"
#include "support.h"
#include "tt.h"

#include "../../src/net/deliver.h"

/* ---- a task fed by a producer: items 1, 2, 3 ... in a queue ---- */

#define ITEMS 20000
#define BATCH 37

typedef struct feed {
  sl_deliver_task t;              /* first */
  pthread_mutex_t mu;
  uint32_t produced, consumed;    /* items put, items taken (mu) */
  uint32_t last;                  /* the last item the runs saw */
  atomic_int inside;              /* runs of this task under way */
  atomic_int overlap;             /* runs that found another under way */
  atomic_int disorder;            /* items out of order */
} feed;

static int feed_run(sl_deliver_task *t) {
  feed *f = (feed *)t;
  if (atomic_fetch_add(&f->inside, 1) != 0) atomic_fetch_add(&f->overlap, 1);
  pthread_mutex_lock(&f->mu);
  uint32_t n = f->produced - f->consumed;
  if (n > BATCH) n = BATCH;
  uint32_t from = f->consumed;
  pthread_mutex_unlock(&f->mu);
  for (uint32_t i = 1; i <= n; i++) {   /* outside the lock, as a bridge does */
    if (from + i != f->last + 1) atomic_fetch_add(&f->disorder, 1);
    f->last = from + i;
  }
  pthread_mutex_lock(&f->mu);
  f->consumed += n;
  int more = f->produced != f->consumed;
  pthread_mutex_unlock(&f->mu);
  atomic_fetch_sub(&f->inside, 1);
  return more;
}

static void *produce(void *arg) {
  feed *f = arg;
  for (uint32_t i = 0; i < ITEMS; i++) {
    pthread_mutex_lock(&f->mu);
    int was_empty = f->produced == f->consumed;
    f->produced++;
    pthread_mutex_unlock(&f->mu);
    if (was_empty || i % 97 == 0) sl_deliver_notify(&f->t);
  }
  return NULL;
}

static int feed_done(void *arg) {
  feed *f = arg;
  pthread_mutex_lock(&f->mu);
  int done = f->consumed == ITEMS;
  pthread_mutex_unlock(&f->mu);
  return done;
}

static void test_order(void) {
  enum { N = 6 };
  sl_deliver_set_threads(3);
  feed *fs = calloc(N, sizeof *fs);
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    pthread_mutex_init(&fs[i].mu, NULL);
    CHECK_EQ(sl_deliver_attach(&fs[i].t, feed_run), 0);
  }
  for (int i = 0; i < N; i++) pthread_create(&th[i], NULL, produce, &fs[i]);
  for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < N; i++) {
    CHECK(ts_wait_until(feed_done, &fs[i], 60));
    CHECK_EQ(fs[i].last, ITEMS);
    CHECK_EQ(atomic_load(&fs[i].disorder), 0);
    CHECK_EQ(atomic_load(&fs[i].overlap), 0);
    sl_deliver_detach(&fs[i].t);
    pthread_mutex_destroy(&fs[i].mu);
  }
  free(fs);
}

/* ---- fairness: a task that always has more, and one that comes later ---- */

typedef struct busy {
  sl_deliver_task t;
  char who;
} busy;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char run_log[100000];
static size_t log_n;
static atomic_int b_runs;

static void log_put(char c) {
  pthread_mutex_lock(&log_mu);
  if (log_n < sizeof run_log) run_log[log_n++] = c;
  pthread_mutex_unlock(&log_mu);
}

static int busy_run(sl_deliver_task *t) {
  busy *b = (busy *)t;
  log_put(b->who);
  if (b->who == 'B') {
    atomic_fetch_add(&b_runs, 1);
    return 0;                   /* one batch */
  }
  for (volatile int i = 0; i < 20000; i++) {}
  return !atomic_load(&t->stop);   /* always more, until detached */
}

static int b_ran(void *arg) {
  (void)arg;
  return atomic_load(&b_runs) > 0;
}

static int pool_down_to_one(void *arg) {
  (void)arg;
  return sl_deliver_running() <= 1;
}

static void test_fairness(void) {
  sl_deliver_set_threads(1);
  busy a = {.who = 'A'}, b = {.who = 'B'};
  CHECK_EQ(sl_deliver_attach(&a.t, busy_run), 0);
  CHECK_EQ(sl_deliver_attach(&b.t, busy_run), 0);
  CHECK(ts_wait_until(pool_down_to_one, NULL, 30));   /* extras end when idle */
  sl_deliver_notify(&a.t);
  for (int i = 0; i < 50; i++) {   /* A runs batch after batch */
    pthread_mutex_lock(&log_mu);
    size_t n = log_n;
    pthread_mutex_unlock(&log_mu);
    if (n >= 3) break;
    sleep_ms(20);
  }
  pthread_mutex_lock(&log_mu);
  sl_deliver_notify(&b.t);
  run_log[log_n++] = 'N';
  pthread_mutex_unlock(&log_mu);
  CHECK(ts_wait_until(b_ran, NULL, 30));
  /* B waited for the batch under way at most, not for A to run dry: at
  ** most one A started after the notify (one already decided may log
  ** after it), two with a second thread */
  pthread_mutex_lock(&log_mu);
  char *nmark = memchr(run_log, 'N', log_n);
  size_t as = 0;
  for (char *p = nmark + 1; p < run_log + log_n && *p != 'B'; p++) as += *p == 'A';
  pthread_mutex_unlock(&log_mu);
  CHECK(as <= 2);
  sl_deliver_detach(&a.t);
  sl_deliver_detach(&b.t);
}

/* ---- a run blocked downstream ---- */

typedef struct blocked {
  sl_deliver_task t;
  pthread_mutex_t mu;
  pthread_cond_t cv;            /* never signalled: a consumer that waits */
  atomic_int entered, cancelled, left;
} blocked;

static int blocked_run(sl_deliver_task *t) {
  blocked *b = (blocked *)t;
  atomic_store(&b->entered, 1);
  pthread_mutex_lock(&b->mu);
  int rc;
  while ((rc = sl_wait_cond(&b->cv, &b->mu, NULL)) == SL_OK) {}
  pthread_mutex_unlock(&b->mu);
  if (rc == SL_ECANCELED) atomic_store(&b->cancelled, 1);
  atomic_store(&b->left, 1);
  return 1;                     /* more: a stopped task is not run again */
}

static int entered(void *arg) { return atomic_load(&((blocked *)arg)->entered); }

static blocked *blocked_new(void) {
  blocked *b = calloc(1, sizeof *b);
  pthread_mutex_init(&b->mu, NULL);
  sl_cond_init(&b->cv);
  return b;
}

static void blocked_free(blocked *b) {
  pthread_mutex_destroy(&b->mu);
  pthread_cond_destroy(&b->cv);
  free(b);
}

static void test_stop_while_delivering(void) {
  sl_deliver_set_threads(2);
  blocked *b = blocked_new();
  CHECK_EQ(sl_deliver_attach(&b->t, blocked_run), 0);
  sl_deliver_notify(&b->t);
  CHECK(ts_wait_until(entered, b, 30));
  sl_deliver_detach(&b->t);     /* returns: the wait downstream gave up */
  CHECK_EQ(atomic_load(&b->cancelled), 1);
  CHECK_EQ(atomic_load(&b->left), 1);
  sl_deliver_notify(&b->t);     /* a late notify of a detached task: nothing */
  blocked_free(b);              /* the pool holds nothing of it (ASan) */
}

static void test_blocked_does_not_hold_others(void) {
  sl_deliver_set_threads(1);
  unsigned long replaced = sl_deliver_replaced();
  blocked *stuck = blocked_new();
  busy other = {.who = 'B'};
  atomic_store(&b_runs, 0);
  CHECK_EQ(sl_deliver_attach(&stuck->t, blocked_run), 0);
  CHECK_EQ(sl_deliver_attach(&other.t, busy_run), 0);
  CHECK(ts_wait_until(pool_down_to_one, NULL, 30));
  sl_deliver_notify(&stuck->t);
  CHECK(ts_wait_until(entered, stuck, 30));
  sl_deliver_notify(&other.t);  /* the one thread waits downstream */
  CHECK(ts_wait_until(b_ran, NULL, 30));
  CHECK(sl_deliver_replaced() > replaced);
  CHECK_EQ(atomic_load(&stuck->left), 0);   /* still blocked meanwhile */
  sl_deliver_detach(&stuck->t);
  CHECK_EQ(atomic_load(&stuck->cancelled), 1);
  sl_deliver_detach(&other.t);
  blocked_free(stuck);
  sl_deliver_set_threads(2);
}

static void test_settings(void) {
  sl_deliver_set_threads(0);
  CHECK_EQ(sl_deliver_threads(), 1);
  sl_deliver_set_threads(1000);
  CHECK_EQ(sl_deliver_threads(), SL_DELIVER_SET_MAX);
  sl_deliver_set_threads(2);
  CHECK_EQ(sl_deliver_threads(), 2);
}

static const struct tt_case cases[] = {
    {"settings", test_settings},
    {"order, one thread per task at a time", test_order},
    {"fairness", test_fairness},
    {"stop while delivering", test_stop_while_delivering},
    {"a blocked run does not hold others", test_blocked_does_not_hold_others},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
