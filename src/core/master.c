/*
** The master role. The slave list is an immutable snapshot (sl_slave_set)
** swapped under the master lock; a send takes a reference on the current
** snapshot and delivers without any lock held, so slaves may block, send
** further, or change the graph. Removing a slave waits until no other
** thread still delivers from a snapshot that holds it.
*/
#include "streamlua/master.h"

#include <stdlib.h>

#include "streamlua/status.h"
#include "streamlua/wait.h"

struct sl_slave_set {
  atomic_int refs;
  struct sl_slave_set *older;  /* replaced by an add while in use (see add) */
  size_t n;
  sl_slave *s[];
};

/* Snapshots this thread is delivering from right now (nested sends). */
#define HELD_MAX 32
static _Thread_local sl_slave_set *held[HELD_MAX];
static _Thread_local int nheld;

static sl_slave_set *set_new(size_t n) {
  sl_slave_set *set = malloc(sizeof *set + n * sizeof set->s[0]);
  if (set == NULL) return NULL;
  atomic_init(&set->refs, 1);
  set->older = NULL;
  set->n = n;
  return set;
}

static void set_unref(sl_slave_set *set) {
  while (set != NULL &&
         atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) == 1) {
    sl_slave_set *older = set->older;
    for (size_t i = 0; i < set->n; i++) sl_object_unref(set->s[i]->owner);
    free(set);
    set = older;
  }
}

int sl_master_init(sl_master *m, sl_object *owner) {
  m->owner = owner;
  m->set = set_new(0);
  m->fallback = sl_pool_new();
  if (m->set == NULL || m->fallback == NULL) {
    free(m->set);
    sl_pool_unref(m->fallback);
    return SL_ENOMEM;
  }
  pthread_mutex_init(&m->lock, NULL);
  owner->master = m;
  return SL_OK;
}

void sl_master_fini(sl_master *m) {
  set_unref(m->set);
  m->set = NULL;
  sl_pool_unref(m->fallback);
  pthread_mutex_destroy(&m->lock);
}

typedef struct plain_master {
  sl_object obj;
  sl_master master;
} plain_master;

static void plain_destroy(sl_object *obj) {
  plain_master *p = (plain_master *)obj;
  sl_master_fini(&p->master);
  free(p);
}

sl_object *sl_master_new(void) {
  plain_master *p = malloc(sizeof *p);
  if (p == NULL) return NULL;
  sl_object_init(&p->obj, "Master", plain_destroy);
  if (sl_master_init(&p->master, &p->obj) != SL_OK) {
    free(p);
    return NULL;
  }
  return &p->obj;
}

/* How many of this thread's in-flight deliveries use `set`. */
static int held_by_me(const sl_slave_set *set) {
  int k = 0;
  for (int i = 0; i < nheld && i < HELD_MAX; i++) k += held[i] == set;
  return k;
}

/*
** Waits until only the caller (and this thread's own outer deliveries)
** still hold `old`, then drops the caller's reference; the same for each
** older snapshot chained to it. After this, no other thread is inside a
** delivery from the old snapshot or from any snapshot before it.
*/
typedef struct retire_wait {
  sl_slave_set *set;
  int mine;
} retire_wait;

static int retire_done(void *arg) {
  retire_wait *w = arg;
  return atomic_load_explicit(&w->set->refs, memory_order_acquire) <= w->mine;
}

static void retire(sl_slave_set *old) {
  while (old != NULL) {
    retire_wait w = {old, 1 + held_by_me(old)};
    sl_wait_until(retire_done, &w);
    sl_slave_set *older = old->older;   /* its reference is ours now */
    old->older = NULL;
    set_unref(old);
    old = older;
  }
}

/* Installs `set` as the current snapshot (lock held) and returns the old one. */
static sl_slave_set *swap_nolock_(sl_master *m, sl_slave_set *set) {
  sl_slave_set *old = m->set;
  m->set = set;
  return old;
}

int sl_master_add_slave(sl_master *m, sl_slave *s) {
  pthread_mutex_lock(&m->lock);
  size_t n = m->set->n;
  sl_slave_set *set = set_new(n + 1);
  if (set == NULL) {
    pthread_mutex_unlock(&m->lock);
    return SL_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    set->s[i] = m->set->s[i];
    sl_object_ref(set->s[i]->owner);
  }
  set->s[n] = s;
  sl_object_ref(s->owner);
  /*
  ** An add does not wait, but a send may still be delivering from the old
  ** snapshot; a later remove must wait for that send too. So the old
  ** snapshot is chained behind the new one while it is in use (only the
  ** master's reference left: nobody can take another, we hold the lock).
  */
  sl_slave_set *old = m->set;
  if (atomic_load_explicit(&old->refs, memory_order_acquire) == 1) {
    set->older = old->older;
    old->older = NULL;
  } else {
    set->older = old;   /* the master's reference moves to the chain */
    old = NULL;
  }
  swap_nolock_(m, set);
  pthread_mutex_unlock(&m->lock);
  if (old != NULL) set_unref(old);
  return SL_OK;
}

int sl_master_remove_slave(sl_master *m, sl_slave *s) {
  pthread_mutex_lock(&m->lock);
  size_t n = m->set->n, keep = 0;
  for (size_t i = 0; i < n; i++) keep += m->set->s[i] != s;
  if (keep == n) {
    pthread_mutex_unlock(&m->lock);
    return SL_ENOTFOUND;
  }
  sl_slave_set *set = set_new(keep);
  if (set == NULL) {
    pthread_mutex_unlock(&m->lock);
    return SL_ENOMEM;
  }
  for (size_t i = 0, j = 0; i < n; i++) {
    if (m->set->s[i] == s) continue;
    set->s[j++] = m->set->s[i];
    sl_object_ref(m->set->s[i]->owner);
  }
  sl_slave_set *old = swap_nolock_(m, set);
  pthread_mutex_unlock(&m->lock);
  retire(old);
  return SL_OK;
}

void sl_master_clear_slaves(sl_master *m) {
  sl_slave_set *set = set_new(0);
  if (set == NULL) return;
  pthread_mutex_lock(&m->lock);
  sl_slave_set *old = swap_nolock_(m, set);
  pthread_mutex_unlock(&m->lock);
  retire(old);
}

size_t sl_master_slave_count(sl_master *m) {
  pthread_mutex_lock(&m->lock);
  size_t n = m->set->n;
  pthread_mutex_unlock(&m->lock);
  return n;
}

sl_slave *sl_master_get_slave(sl_master *m, size_t i) {
  sl_slave *s = NULL;
  pthread_mutex_lock(&m->lock);
  if (i < m->set->n) {
    s = m->set->s[i];
    sl_object_ref(s->owner);
  }
  pthread_mutex_unlock(&m->lock);
  return s;
}

/* As Rogue does, the primary serves the request under the master lock. */
sl_frame *sl_master_req_frame(sl_master *m, uint32_t size, int zero_copy) {
  pthread_mutex_lock(&m->lock);
  sl_frame *f = m->set->n > 0
                    ? sl_slave_req_frame(m->set->s[0], size, zero_copy)
                    : sl_pool_req_frame(m->fallback, size);
  pthread_mutex_unlock(&m->lock);
  return f;
}

/* One snapshot for a whole batch: a queue's output thread pays the lock
** and the two reference counts once per batch, not once per frame. */
void sl_master_send_frames(sl_master *m, sl_frame **fs, size_t n) {
  pthread_mutex_lock(&m->lock);
  sl_slave_set *set = m->set;
  atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&m->lock);
  if (nheld < HELD_MAX) held[nheld] = set;
  nheld++;
  /* Slave by slave, newest first: each frame still reaches the primary
  ** after every secondary has had it. */
  for (size_t i = set->n; i-- > 0;) {
    sl_slave *s = set->s[i];
    if (s->ops->accept_frames != NULL) {
      s->ops->accept_frames(s, fs, n);
    } else {
      for (size_t k = 0; k < n; k++) sl_slave_accept(s, fs[k]);
    }
  }
  nheld--;
  set_unref(set);
}

void sl_master_send_frame(sl_master *m, sl_frame *f) {
  pthread_mutex_lock(&m->lock);
  sl_slave_set *set = m->set;
  atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&m->lock);
  if (nheld < HELD_MAX) held[nheld] = set;
  nheld++;
  for (size_t i = set->n; i-- > 0;) sl_slave_accept(set->s[i], f);
  nheld--;
  set_unref(set);
}
