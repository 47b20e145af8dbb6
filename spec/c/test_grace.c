/*
** Read sections and grace periods (core/grace.h) and the asymmetric
** barrier (barrier.h): a writer waits for exactly the threads that hold a
** snapshot it replaced, never for newer ones; a freed snapshot is never
** read (AddressSanitizer watches the stress case); the barrier keeps two
** threads from both missing each other's store.
*/
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grace.h"
#include "barrier.h"
#include "tt.h"

static void on_alarm(int sig) {
  (void)sig;
  static const char a[] = "FAIL ", b[] = ": timed out\n";
  if (write(1, a, sizeof a - 1) < 0 ||
      write(1, tt_current_, strlen(tt_current_)) < 0 ||
      write(1, b, sizeof b - 1) < 0) {
  }
  _exit(1);
}

/* ---- deferred runs ---- */

typedef struct counted {
  sl_grace_node node;
  int runs;
} counted;

static void count_run(sl_grace_node *n) { ((counted *)n)->runs++; }

static void test_defer(void) {
  counted a = {{NULL, count_run}, 0}, b = {{NULL, count_run}, 0};
  sl_grace_defer(&a.node);                 /* outside a section: now */
  CHECK_EQ(a.runs, 1);
  sl_grace_enter();
  sl_grace_hold(&a);
  sl_grace_enter();                        /* nested */
  sl_grace_hold(&b);
  sl_grace_defer(&b.node);
  sl_grace_exit();
  CHECK_EQ(b.runs, 0);                     /* still inside the outer one */
  sl_grace_exit();
  CHECK_EQ(b.runs, 1);
  CHECK_EQ(a.runs, 1);
}

/* ---- a reader thread that holds a snapshot until told to let go ---- */

typedef struct holder {
  const void *snap;             /* NULL: stays between enter and hold */
  atomic_int inside, release, done;
} holder;

static void *hold_main(void *arg) {
  holder *h = arg;
  sl_grace_enter();
  if (h->snap != NULL) sl_grace_hold(h->snap);
  atomic_store(&h->inside, 1);
  while (!atomic_load(&h->release)) sched_yield();
  atomic_store(&h->done, 1);
  sl_grace_exit();
  return NULL;
}

static int is_x(const void *snap, void *arg) { return snap == arg; }

static void start_holder(pthread_t *t, holder *h, const void *snap) {
  memset(h, 0, sizeof *h);
  h->snap = snap;
  pthread_create(t, NULL, hold_main, h);
  while (!atomic_load(&h->inside)) sched_yield();
}

static void stop_holder(pthread_t t, holder *h) {
  atomic_store(&h->release, 1);
  pthread_join(t, NULL);
}

static int snap_a, snap_b;

static void test_quiet(void) {
  CHECK_EQ(sl_grace_quiet(is_x, &snap_a), 1);       /* nobody reads */
  pthread_t t;
  holder h;
  start_holder(&t, &h, &snap_a);
  CHECK_EQ(sl_grace_quiet(is_x, &snap_a), 0);       /* holds a */
  CHECK_EQ(sl_grace_quiet(is_x, &snap_b), 1);       /* b is not held */
  sl_grace_enter();                                 /* our own hold */
  sl_grace_hold(&snap_b);                           /* does not count */
  CHECK_EQ(sl_grace_quiet(is_x, &snap_b), 1);
  sl_grace_exit();
  stop_holder(t, &h);
  CHECK_EQ(sl_grace_quiet(is_x, &snap_a), 1);

  start_holder(&t, &h, NULL);                       /* still loading */
  CHECK_EQ(sl_grace_quiet(is_x, &snap_b), 0);
  stop_holder(t, &h);
}

typedef struct waiter {
  holder *h;
  const void *old;
  atomic_int returned;
  int done_at_return;
} waiter;

static void *wait_main(void *arg) {
  waiter *w = arg;
  sl_grace_wait(is_x, (void *)w->old);
  w->done_at_return = atomic_load(&w->h->done);
  atomic_store(&w->returned, 1);
  return NULL;
}

static void test_wait(void) {
  pthread_t t, tw;
  holder h;
  start_holder(&t, &h, &snap_a);
  /* Waiting for b returns while a is held. */
  waiter w = {.h = &h, .old = &snap_b};
  pthread_create(&tw, NULL, wait_main, &w);
  pthread_join(tw, NULL);
  CHECK_EQ(w.done_at_return, 0);
  /* Waiting for a lasts until the holder has let go. */
  waiter w2 = {.h = &h, .old = &snap_a};
  pthread_create(&tw, NULL, wait_main, &w2);
  sleep_ms(50);
  CHECK_EQ(atomic_load(&w2.returned), 0);
  stop_holder(t, &h);
  pthread_join(tw, NULL);
  CHECK_EQ(w2.done_at_return, 1);
}

/* Inside a section of its own, a writer does not wait for itself. */
static void test_wait_inside(void) {
  sl_grace_enter();
  sl_grace_hold(&snap_a);
  sl_grace_wait(is_x, &snap_a);
  sl_grace_exit();
  CHECK(1);
}

/* ---- stress: readers never see a freed snapshot ---- */

#define MAGIC 0x5eed5eedu
typedef struct snap {
  unsigned magic;
  unsigned value;
} snap;

static _Atomic(snap *) current;
static atomic_int stop_readers, readers_in;
static atomic_long reads;

static void *reader_main(void *arg) {
  (void)arg;
  long n = 0, bad = 0;
  while (!atomic_load_explicit(&stop_readers, memory_order_relaxed)) {
    sl_grace_enter();
    snap *s = atomic_load(&current);
    sl_grace_hold(s);
    bad += s->magic != MAGIC;
    sl_grace_exit();
    if (++n == 1) atomic_fetch_add(&readers_in, 1);
  }
  atomic_fetch_add(&reads, n);
  return (void *)bad;
}

static void test_stress(void) {
  snap *s = malloc(sizeof *s);
  s->magic = MAGIC;
  s->value = 0;
  atomic_store(&current, s);
  atomic_store(&stop_readers, 0);
  atomic_store(&reads, 0);
  atomic_store(&readers_in, 0);
  pthread_t r[3];
  for (int i = 0; i < 3; i++) pthread_create(&r[i], NULL, reader_main, NULL);
  /* the writer starts once every reader reads (20 s at most) */
  double end = now_s() + 20;
  while (atomic_load(&readers_in) < 3 && now_s() < end) sched_yield();
  CHECK_EQ(atomic_load(&readers_in), 3);
  for (unsigned i = 1; i <= 2000; i++) {
    snap *n = malloc(sizeof *n);
    n->magic = MAGIC;
    n->value = i;
    snap *old = atomic_exchange(&current, n);
    sl_grace_wait(is_x, old);
    old->magic = 0;                       /* a late reader would see it */
    free(old);
  }
  atomic_store(&stop_readers, 1);
  long bad = 0;
  for (int i = 0; i < 3; i++) {
    void *b;
    pthread_join(r[i], &b);
    bad += (long)b;
  }
  CHECK_EQ(bad, 0);
  CHECK(atomic_load(&reads) > 0);
  free(atomic_load(&current));
}

/* ---- a thread's record goes back when it exits ---- */

static void *enter_once(void *arg) {
  sl_grace_enter();
  sl_grace_hold(arg);
  sl_grace_exit();
  return NULL;
}

/* Hundreds of short-lived readers, then a wait: every record left behind
** is idle, so the wait returns at once. */
static void test_thread_exit(void) {
  for (int i = 0; i < 300; i++) {
    pthread_t t;
    pthread_create(&t, NULL, enter_once, &snap_a);
    pthread_join(t, NULL);
  }
  CHECK_EQ(sl_grace_quiet(is_x, &snap_a), 1);
  sl_grace_wait(is_x, &snap_a);
}

/* ---- the asymmetric barrier: store, barrier, load on both sides ---- */

#define ROUNDS 20000
static atomic_int x, y, ready, seen_fast, arrived;

/* Spins, yielding now and then: on a loaded machine the other side may
** need this CPU to arrive. */
static void spin_until(atomic_int *v, int at_least) {
  for (unsigned n = 1; atomic_load_explicit(v, memory_order_relaxed) < at_least; n++)
    if (n % 1024 == 0) sched_yield();
}

/* Both sides spin until both are ready for round i, then go at once. */
static void meet(int i) {
  atomic_fetch_add(&ready, 1);
  spin_until(&ready, 2 * i);
}

static void *fast_side(void *arg) {
  (void)arg;
  for (int i = 1; i <= ROUNDS; i++) {
    meet(i);
    if (sl_barrier_asym) {
      atomic_store_explicit(&x, i, memory_order_relaxed);
      sl_barrier_fast();
    } else {
      atomic_store(&x, i);
      sl_barrier_full();
    }
    atomic_store_explicit(&seen_fast, atomic_load_explicit(&y, memory_order_relaxed) == i,
                          memory_order_relaxed);
    atomic_fetch_add(&arrived, 1);
  }
  return NULL;
}

static void test_barrier(void) {
  CHECK(sl_barrier_asym == 0 || sl_barrier_asym == 1);
  atomic_store(&x, 0);
  atomic_store(&y, 0);
  atomic_store(&ready, 0);
  atomic_store(&arrived, 0);
  pthread_t t;
  pthread_create(&t, NULL, fast_side, NULL);
  int both_missed = 0;
  for (int i = 1; i <= ROUNDS; i++) {
    meet(i);
    atomic_store(&y, i);
    sl_barrier_slow();
    int s = atomic_load(&x) == i;
    spin_until(&arrived, i);
    both_missed += !s && !atomic_load_explicit(&seen_fast, memory_order_relaxed);
  }
  pthread_join(t, NULL);
  CHECK_EQ(both_missed, 0);
}

/* The same where membarrier(2) is missing (old kernels, emulators that
** lack it): both sides then use sequentially consistent accesses. */
static void test_barrier_without_membarrier(void) {
  int asym = sl_barrier_asym;
  sl_barrier_asym = 0;
  test_barrier();
  sl_barrier_asym = asym;
}

static const struct tt_case cases[] = {
    {"defer: now outside, at the outermost exit inside", test_defer},
    {"quiet: held, not held, own, loading", test_quiet},
    {"wait: for old snapshots only, until let go", test_wait},
    {"wait inside a section of one's own", test_wait_inside},
    {"stress: no freed snapshot is read", test_stress},
    {"exited threads' records are idle", test_thread_exit},
    {"asymmetric barrier: never both missed", test_barrier},
    {"asymmetric barrier without membarrier: never both missed",
     test_barrier_without_membarrier},
    {NULL, NULL}};

int main(void) {
  signal(SIGALRM, on_alarm);
  alarm(600);                    /* a hang, not a slow machine */
  return tt_main(cases);
}
