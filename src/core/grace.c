/*
** Grace periods over per-thread records. Each thread that ever reads gets
** a record on a cache line of its own, kept in a registry that only grows
** (records are reused by later threads, never freed), so a writer walks it
** without a lock. A thread's record is handed back when it exits.
*/
#include "grace.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "barrier.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"

#define LEVELS 7    /* nesting levels whose snapshot is recorded */

typedef struct reader {
  _Alignas(64) atomic_uint ctr;        /* odd while inside a section */
  atomic_uint depth;                   /* sections entered */
  _Atomic(const void *) held[LEVELS];  /* their snapshots; NULL: loading */
  _Alignas(64) atomic_int taken;       /* a live thread owns it */
  _Atomic(struct reader *) next;
} reader;

static _Atomic(reader *) readers;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static int key_ok;

/* Threads whose record could not be allocated share this one: its counter
** counts the sections inside it, whatever they hold. */
static reader shared;

static _Thread_local reader *me;
static _Thread_local unsigned nest;
static _Thread_local sl_grace_node *deferred;

static void release_reader(void *arg) {
  atomic_store_explicit(&((reader *)arg)->taken, 0, memory_order_release);
}

static void setup(void) {
  key_ok = pthread_key_create(&key, release_reader) == 0;
}

static reader *attach(void) {
  pthread_once(&once, setup);
  reader *r = atomic_load_explicit(&readers, memory_order_acquire);
  for (; r != NULL; r = atomic_load_explicit(&r->next, memory_order_acquire)) {
    int idle = 0;
    if (atomic_compare_exchange_strong(&r->taken, &idle, 1)) break;
  }
  if (r == NULL) {
    r = aligned_alloc(64, sizeof *r);
    if (r == NULL) return me = &shared;
    atomic_init(&r->ctr, 0);
    atomic_init(&r->depth, 0);
    for (int i = 0; i < LEVELS; i++) atomic_init(&r->held[i], NULL);
    atomic_init(&r->taken, 1);
    reader *head = atomic_load_explicit(&readers, memory_order_relaxed);
    do {
      atomic_store_explicit(&r->next, head, memory_order_relaxed);
    } while (!atomic_compare_exchange_weak_explicit(
        &readers, &head, r, memory_order_release, memory_order_relaxed));
  }
  /* Without the key the record stays taken: one line lost, nothing wrong. */
  if (key_ok) pthread_setspecific(key, r);
  return me = r;
}

void sl_grace_enter(void) {
  unsigned d = nest++;
  reader *r = me != NULL ? me : attach();
  if (r == &shared) {
    if (d == 0) atomic_fetch_add(&shared.ctr, 1);
    return;
  }
  if (d < LEVELS) atomic_store_explicit(&r->held[d], NULL, memory_order_relaxed);
  if (d == 0) {
    unsigned c = atomic_load_explicit(&r->ctr, memory_order_relaxed) + 1;
    atomic_store_explicit(&r->ctr, c, memory_order_relaxed);
  }
  if (sl_barrier_asym) {
    atomic_store_explicit(&r->depth, d + 1, memory_order_release);
    sl_barrier_fast();
  } else {
    atomic_exchange(&r->depth, d + 1);
    sl_barrier_full();
  }
}

void sl_grace_hold(const void *snapshot) {
  unsigned d = nest - 1;
  if (me != &shared && d < LEVELS)
    atomic_store_explicit(&me->held[d], snapshot, memory_order_release);
}

void sl_grace_exit(void) {
  unsigned d = --nest;
  reader *r = me;
  if (r == &shared) {
    if (d == 0) atomic_fetch_sub_explicit(&shared.ctr, 1, memory_order_release);
  } else {
    atomic_store_explicit(&r->depth, d, memory_order_release);
    if (d == 0) {
      unsigned c = atomic_load_explicit(&r->ctr, memory_order_relaxed) + 1;
      atomic_store_explicit(&r->ctr, c, memory_order_release);
    }
  }
  while (deferred != NULL && nest == 0) {
    sl_grace_node *n = deferred;
    deferred = n->next;
    n->run(n);
  }
}

void sl_grace_defer(sl_grace_node *node) {
  if (nest == 0) {
    node->run(node);
    return;
  }
  node->next = deferred;
  deferred = node;
}

typedef struct seen {
  reader *r;
  unsigned ctr;
  sl_grace_old old;
  void *arg;
} seen;

/* 1 while the section s->ctr names is open and may hold an old snapshot. */
static int holds(const seen *s) {
  if (atomic_load(&s->r->ctr) != s->ctr) return 0;
  unsigned d = atomic_load(&s->r->depth);
  if (d > LEVELS) return 1;
  for (unsigned i = 0; i < d; i++) {
    const void *h = atomic_load_explicit(&s->r->held[i], memory_order_acquire);
    if (h == NULL || s->old(h, s->arg)) return 1;
  }
  return 0;
}

static int let_go(void *arg) { return !holds(arg); }

static unsigned own_shared(void) { return me == &shared && nest > 0; }

static int shared_left(void *arg) {
  return atomic_load(&shared.ctr) <= *(unsigned *)arg;
}

/* Calls each(s) for every other thread inside a section until it returns
** 0; returns 0 if one did. */
static int each_other(int (*each)(seen *s), sl_grace_old old, void *arg) {
  /* After it, a reader either shows it is inside, or will load the
  ** snapshot stored before. */
  sl_barrier_slow();
  reader *r = atomic_load_explicit(&readers, memory_order_acquire);
  for (; r != NULL; r = atomic_load_explicit(&r->next, memory_order_acquire)) {
    if (r == me) continue;
    seen s = {r, atomic_load(&r->ctr), old, arg};
    if ((s.ctr & 1u) && holds(&s) && !each(&s)) return 0;
  }
  return 1;
}

static int wait_one(seen *s) { return sl_wait_for(let_go, s) == SL_OK; }

static int refuse(seen *s) {
  (void)s;
  return 0;
}

int sl_grace_wait(sl_grace_old old, void *arg) {
  if (!each_other(wait_one, old, arg)) return SL_ECANCELED;
  unsigned own = own_shared();
  return shared_left(&own) ? SL_OK : sl_wait_for(shared_left, &own);
}

int sl_grace_quiet(sl_grace_old old, void *arg) {
  unsigned own = own_shared();
  return each_other(refuse, old, arg) && shared_left(&own);
}
