/*
** sl_wait_until: returns once the condition holds, runs the calling
** thread's hook while it waits (and only that thread's), and a hook that
** itself waits does not recurse without bound.
*/
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/status.h"
#include "streamlua/wait.h"
#include "tt.h"

static void on_alarm(int sig) {
  (void)sig;
  static const char a[] = "FAIL ", b[] = ": timed out (wait never returned)\n";
  if (write(1, a, sizeof a - 1) < 0 ||
      write(1, tt_current_, strlen(tt_current_)) < 0 ||
      write(1, b, sizeof b - 1) < 0) {
    /* nothing more to do */
  }
  _exit(1);
}

static int flag_set(void *arg) { return atomic_load((atomic_int *)arg) != 0; }

static atomic_int hook_calls;
static void *hook_arg_seen;

static void count_hook(void *arg) {
  atomic_fetch_add(&hook_calls, 1);
  hook_arg_seen = arg;
}

/* ---- cases ---- */

static int cond_calls;
static int always_true(void *arg) {
  (void)arg;
  cond_calls++;
  return 1;
}

static void test_already_true(void) {
  atomic_store(&hook_calls, 0);
  sl_wait_set_hook(count_hook, NULL);
  cond_calls = 0;
  sl_wait_until(always_true, NULL);
  CHECK_EQ(cond_calls, 1);                  /* checked once */
  CHECK_EQ(atomic_load(&hook_calls), 0);    /* no wait, no hook */
  sl_wait_set_hook(NULL, NULL);
}

typedef struct setter {
  atomic_int *flag;
  long after_ms;
  atomic_int *after_calls;   /* if set, the flag waits for it to be > 0 too */
} setter;

static void *set_later(void *arg) {
  setter *s = arg;
  sleep_ms(s->after_ms);
  for (int i = 0; i < 20000 && s->after_calls != NULL && atomic_load(s->after_calls) == 0; i++)
    sleep_ms(1);
  atomic_store(s->flag, 1);
  return NULL;
}

static void test_returns_when_cond_holds(void) {
  alarm(30);
  atomic_int flag = 0;
  setter s = {&flag, 40, NULL};
  pthread_t t;
  double t0 = now_s();
  pthread_create(&t, NULL, set_later, &s);
  sl_wait_until(flag_set, &flag);
  double waited = now_s() - t0;
  CHECK_EQ(atomic_load(&flag), 1);
  CHECK(waited >= 0.035);
  CHECK(waited < 30.0);                     /* a bound on a hang */
  pthread_join(t, NULL);
  alarm(0);
}

/* Single thread: only the hook can make the condition true. */
typedef struct hook_cond {
  int calls;
  int needed;
} hook_cond;

static void bump_hook(void *arg) { ((hook_cond *)arg)->calls++; }
static int enough_calls(void *arg) {
  hook_cond *h = arg;
  return h->calls >= h->needed;
}

static void test_runs_hook_while_waiting(void) {
  alarm(30);
  hook_cond h = {0, 5};
  sl_wait_set_hook(bump_hook, &h);
  sl_wait_until(enough_calls, &h);
  CHECK_EQ(h.calls, 5);                     /* checked again after each run */
  sl_wait_set_hook(NULL, NULL);
  /* With the hook cleared, nothing calls it. */
  atomic_int flag = 0;
  setter s = {&flag, 20, NULL};
  pthread_t t;
  pthread_create(&t, NULL, set_later, &s);
  sl_wait_until(flag_set, &flag);
  pthread_join(t, NULL);
  CHECK_EQ(h.calls, 5);
  alarm(0);
}

/* The hook waits too: each nested wait would run the hook again. */
typedef struct nest {
  int depth, max_depth, calls, min_calls;
  double until;                             /* the inner condition's deadline */
} nest;

static nest nst;

static int deadline_passed(void *arg) {
  (void)arg;
  return nst.calls >= nst.min_calls && now_s() >= nst.until;   /* the hook ran */
}

static void nesting_hook(void *arg) {
  (void)arg;
  nst.calls++;
  nst.depth++;
  if (nst.depth > nst.max_depth) nst.max_depth = nst.depth;
  sl_wait_until(deadline_passed, NULL);
  nst.depth--;
}

static void test_nested_hook_bounded(void) {
  alarm(30);
  memset(&nst, 0, sizeof nst);
  nst.until = now_s() + 0.05;
  nst.min_calls = 1;
  sl_wait_set_hook(nesting_hook, NULL);
  sl_wait_until(deadline_passed, NULL);
  CHECK(nst.max_depth >= 1);
  CHECK(nst.max_depth <= 16);               /* bounded, not one per step */
  CHECK_EQ(nst.depth, 0);
  /* After the nested waits unwound, the hook runs again at the top. */
  int calls = nst.calls;
  nst.until = now_s() + 0.02;
  nst.min_calls = calls + 1;
  sl_wait_until(deadline_passed, NULL);
  CHECK(nst.calls > calls);
  sl_wait_set_hook(NULL, NULL);
  alarm(0);
}

/* The hook belongs to the thread that set it. */
typedef struct other {
  atomic_int *flag;
  atomic_int own_calls;
} other;

static void other_hook(void *arg) { atomic_fetch_add(&((other *)arg)->own_calls, 1); }

static void *wait_elsewhere(void *arg) {
  other *o = arg;
  sl_wait_until(flag_set, o->flag);         /* main's hook must not run here */
  sl_wait_set_hook(other_hook, o);          /* this thread's own hook does */
  atomic_int late = 0;
  setter s = {&late, 10, &o->own_calls};   /* set once the hook ran */
  pthread_t t;
  pthread_create(&t, NULL, set_later, &s);
  sl_wait_until(flag_set, &late);
  pthread_join(t, NULL);
  return NULL;
}

static void test_hook_is_per_thread(void) {
  alarm(30);
  atomic_store(&hook_calls, 0);
  int marker;
  sl_wait_set_hook(count_hook, &marker);
  atomic_int flag = 0;
  other o = {&flag, 0};
  pthread_t t;
  pthread_create(&t, NULL, wait_elsewhere, &o);
  sleep_ms(20);
  atomic_store(&flag, 1);
  pthread_join(t, NULL);
  CHECK_EQ(atomic_load(&hook_calls), 0);    /* main's hook never ran there */
  CHECK(atomic_load(&o.own_calls) > 0);     /* its own did */
  /* Main's hook still runs on main, with its argument. */
  atomic_int flag2 = 0;
  setter s = {&flag2, 10, &hook_calls};
  pthread_create(&t, NULL, set_later, &s);
  sl_wait_until(flag_set, &flag2);
  pthread_join(t, NULL);
  CHECK(atomic_load(&hook_calls) > 0);
  CHECK(hook_arg_seen == &marker);
  sl_wait_set_hook(NULL, NULL);
  alarm(0);
}

/* sl_wait_briefly: at once when the condition holds, within the window
** when another thread makes it hold, and 0 once the window has passed. */
static void *set_flag_soon(void *arg) {
  sleep_ms(5);
  atomic_store((atomic_int *)arg, 1);
  return NULL;
}

static void test_wait_briefly(void) {
  alarm(60);
  atomic_int flag = 1;
  CHECK_EQ(sl_wait_briefly(flag_set, &flag, 0), 1);
  atomic_store(&flag, 0);
  double t0 = now_s();
  CHECK_EQ(sl_wait_briefly(flag_set, &flag, 20000), 0);
  CHECK(now_s() - t0 >= 0.019);
  pthread_t t;
  pthread_create(&t, NULL, set_flag_soon, &flag);
  CHECK_EQ(sl_wait_briefly(flag_set, &flag, 20000000), 1);
  pthread_join(t, NULL);
  alarm(0);
}


/* ---- giving up ---- */

/* A thread bound to a stop flag waits on a condition nobody signals; it
** gives up once the flag is set. */
typedef struct bound_waiter {
  atomic_int stop;
  atomic_int rc;               /* 1 until the wait returns */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int use_for;                 /* sl_wait_for instead of sl_wait_cond */
} bound_waiter;

static int never(void *arg) {
  (void)arg;
  return 0;
}

static void *bound_main(void *arg) {
  bound_waiter *w = arg;
  sl_wait_bind(&w->stop);
  int rc;
  if (w->use_for) {
    rc = sl_wait_for(never, NULL);
  } else {
    pthread_mutex_lock(&w->mu);
    while ((rc = sl_wait_cond(&w->cv, &w->mu, NULL)) == SL_OK) {
    }
    pthread_mutex_unlock(&w->mu);
  }
  atomic_store(&w->rc, rc);
  sl_wait_bind(NULL);
  return NULL;
}

static void gives_up_when_owner_stops(int use_for) {
  alarm(30);
  bound_waiter w = {.use_for = use_for};
  atomic_init(&w.stop, 0);
  atomic_init(&w.rc, 1);
  pthread_mutex_init(&w.mu, NULL);
  CHECK_EQ(sl_cond_init(&w.cv), 0);
  pthread_t t;
  pthread_create(&t, NULL, bound_main, &w);
  /* Not before the flag: it waits as long as nothing happens. */
  for (int i = 0; i < 5; i++) {
    sleep_ms(10);
    CHECK_EQ(atomic_load(&w.rc), 1);
  }
  atomic_store(&w.stop, 1);
  pthread_join(t, NULL);       /* the alarm bounds it */
  CHECK_EQ(atomic_load(&w.rc), SL_ECANCELED);
  pthread_cond_destroy(&w.cv);
  pthread_mutex_destroy(&w.mu);
  alarm(0);
}

static void test_cond_gives_up(void) { gives_up_when_owner_stops(0); }
static void test_wait_for_gives_up(void) { gives_up_when_owner_stops(1); }

static void test_cond_deadline(void) {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv;
  CHECK_EQ(sl_cond_init(&cv), 0);
  struct timespec dl;
  sl_deadline_after(&dl, 30000);
  CHECK(sl_deadline_left(&dl) > 0);
  pthread_mutex_lock(&mu);
  int rc;
  while ((rc = sl_wait_cond(&cv, &mu, &dl)) == SL_OK) {
  }
  pthread_mutex_unlock(&mu);
  CHECK_EQ(rc, SL_ETIMEDOUT);
  CHECK(sl_deadline_left(&dl) <= 0);       /* not before the deadline */
  pthread_cond_destroy(&cv);
}

/* Interrupts reach only the threads that take them, and are taken once. */
static int probe_calls;
static int probe_says;
static int probe(void *arg) {
  (void)arg;
  probe_calls++;
  return probe_says;
}

static void test_interrupts(void) {
  sl_wait_take_interrupt();
  CHECK(!sl_wait_cancelled());
  sl_wait_interrupt();
  CHECK(sl_wait_interrupted());
  CHECK(!sl_wait_cancelled());               /* this thread takes none yet */
  sl_wait_interruptible(1, NULL, NULL);
  CHECK(sl_wait_cancelled());
  CHECK_EQ(sl_wait_for(never, NULL), SL_ECANCELED);
  CHECK(sl_wait_take_interrupt());
  CHECK(!sl_wait_take_interrupt());
  CHECK(!sl_wait_cancelled());
  /* A probe that sees an interrupt another way raises one. */
  sl_wait_interruptible(1, probe, NULL);
  probe_says = 0;
  CHECK(!sl_wait_cancelled());
  probe_says = 1;
  CHECK(sl_wait_cancelled());
  CHECK(probe_calls >= 2);
  CHECK(sl_wait_take_interrupt());
  sl_wait_interruptible(0, NULL, NULL);
  sl_wait_interrupt();
  CHECK(!sl_wait_cancelled());
  sl_wait_take_interrupt();
}

static const struct tt_case cases[] = {
  {"condition already true: no hook", test_already_true},
  {"returns once the condition holds", test_returns_when_cond_holds},
  {"runs the hook while waiting", test_runs_hook_while_waiting},
  {"a waiting hook does not recurse without bound", test_nested_hook_bounded},
  {"the hook is per thread", test_hook_is_per_thread},
  {"a brief wait yields until the condition holds or time is up", test_wait_briefly},
  {"a bound thread's condition wait gives up when its owner stops", test_cond_gives_up},
  {"a bound thread's sl_wait_for gives up when its owner stops", test_wait_for_gives_up},
  {"a condition wait ends at its deadline, not before", test_cond_deadline},
  {"interrupts reach the threads that take them, once", test_interrupts},
  {NULL, NULL}
};

int main(void) {
  signal(SIGALRM, on_alarm);
  return tt_main(cases);
}
