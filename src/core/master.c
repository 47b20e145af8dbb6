/*
** The master role. The slave list is an immutable snapshot (sl_slave_set)
** replaced under the master lock. A send reads the current snapshot inside
** a read section (grace.h) and delivers without any lock held, so slaves
** may block, send further, or change the graph; it takes no lock and
** writes no shared line. Removing a slave waits for a grace period: until
** no other thread still delivers from an older snapshot.
*/
#include "streamlua/master.h"

#include <stdlib.h>

#include "grace.h"
#include "streamlua/status.h"

struct sl_slave_set {
  sl_grace_node node;          /* its release, deferred while in use */
  struct sl_slave_set *older;  /* replaced snapshots not yet released */
  size_t n;
  sl_slave *s[];
};

static sl_slave_set *set_new(size_t n) {
  sl_slave_set *set = malloc(sizeof *set + n * sizeof set->s[0]);
  if (set == NULL) return NULL;
  set->older = NULL;
  set->n = n;
  return set;
}

static void set_free(sl_grace_node *node) {
  sl_slave_set *set = (sl_slave_set *)node;
  for (size_t i = 0; i < set->n; i++) sl_object_unref(set->s[i]->owner);
  free(set);
}

/* Releases a chain of replaced snapshots that no other thread uses; the
** calling thread may still be delivering from one, so each waits for its
** outermost section to end. */
static void release_chain(sl_slave_set *set) {
  while (set != NULL) {
    sl_slave_set *older = set->older;
    set->node.run = set_free;
    sl_grace_defer(&set->node);
    set = older;
  }
}

/* Installs `set` (lock held), keeping the old one on the retired chain. */
static void swap_nolock_(sl_master *m, sl_slave_set *set) {
  sl_slave_set *old = atomic_load_explicit(&m->set, memory_order_relaxed);
  old->older = m->retired;
  m->retired = old;
  atomic_store(&m->set, set);          /* sequentially consistent: grace.h */
}

/* The current snapshot, inside a read section. */
static sl_slave_set *current(sl_master *m) {
  sl_grace_enter();
  sl_slave_set *set = atomic_load(&m->set);
  sl_grace_hold(set);
  return set;
}

/* Whether snapshot x is on the chain `arg`. */
static int on_chain(const void *x, void *arg) {
  for (sl_slave_set *s = arg; s != NULL; s = s->older)
    if (s == x) return 1;
  return 0;
}

int sl_master_init(sl_master *m, sl_object *owner) {
  m->owner = owner;
  sl_slave_set *set = set_new(0);
  atomic_init(&m->set, set);
  m->retired = NULL;
  m->fallback = sl_pool_new();
  if (set == NULL || m->fallback == NULL) {
    free(set);
    sl_pool_unref(m->fallback);
    return SL_ENOMEM;
  }
  pthread_mutex_init(&m->lock, NULL);
  owner->master = m;
  return SL_OK;
}

void sl_master_fini(sl_master *m) {
  sl_slave_set *set = atomic_load_explicit(&m->set, memory_order_relaxed);
  set->older = m->retired;
  release_chain(set);
  atomic_store_explicit(&m->set, NULL, memory_order_relaxed);
  m->retired = NULL;
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

static const sl_class plain_class = {.name = "Master",
                                     .destroy = plain_destroy};

sl_object *sl_master_new(sl_error *err) {
  plain_master *p = malloc(sizeof *p);
  if (p == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&p->obj, &plain_class);
  if (sl_master_init(&p->master, &p->obj) != SL_OK) {
    free(p);
    return sl_fail(err, SL_ENOMEM, NULL);
  }
  return &p->obj;
}

/* The current snapshot, for a writer holding the lock. */
static sl_slave_set *set_nolock_(sl_master *m) {
  return atomic_load_explicit(&m->set, memory_order_relaxed);
}

/* Takes the chain of replaced snapshots. Lock held. */
static sl_slave_set *take_retired_nolock_(sl_master *m) {
  sl_slave_set *chain = m->retired;
  m->retired = NULL;
  return chain;
}

int sl_master_add_slave(sl_master *m, sl_slave *s) {
  pthread_mutex_lock(&m->lock);
  sl_slave_set *cur = set_nolock_(m);
  size_t n = cur->n;
  sl_slave_set *set = set_new(n + 1);
  if (set == NULL) {
    pthread_mutex_unlock(&m->lock);
    return SL_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    set->s[i] = cur->s[i];
    sl_object_ref(set->s[i]->owner);
  }
  set->s[n] = s;
  sl_object_ref(s->owner);
  swap_nolock_(m, set);
  /* An add does not wait: the old snapshots are released now if no other
  ** thread is delivering from this master, else by a later remove. */
  sl_slave_set *chain = NULL;
  if (sl_grace_quiet(on_chain, m->retired)) chain = take_retired_nolock_(m);
  pthread_mutex_unlock(&m->lock);
  release_chain(chain);
  return SL_OK;
}

/* Installs `set` and waits until no other thread delivers from an older
** snapshot, then releases them all. A wait that gives up puts them back
** on the retired chain, for a later remove or the end. */
static int replace_and_wait(sl_master *m, sl_slave_set *set) {
  swap_nolock_(m, set);
  sl_slave_set *chain = take_retired_nolock_(m);
  pthread_mutex_unlock(&m->lock);
  if (sl_grace_wait(on_chain, chain) == SL_OK) {
    release_chain(chain);
    return SL_OK;
  }
  sl_slave_set *last = chain;
  while (last->older != NULL) last = last->older;
  pthread_mutex_lock(&m->lock);
  last->older = m->retired;
  m->retired = chain;
  pthread_mutex_unlock(&m->lock);
  return SL_ECANCELED;
}

int sl_master_remove_slave(sl_master *m, sl_slave *s) {
  pthread_mutex_lock(&m->lock);
  sl_slave_set *cur = set_nolock_(m);
  size_t n = cur->n, keep = 0;
  for (size_t i = 0; i < n; i++) keep += cur->s[i] != s;
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
    if (cur->s[i] == s) continue;
    set->s[j++] = cur->s[i];
    sl_object_ref(cur->s[i]->owner);
  }
  return replace_and_wait(m, set);
}

void sl_master_clear_slaves(sl_master *m) {
  sl_slave_set *set = set_new(0);
  if (set == NULL) return;
  pthread_mutex_lock(&m->lock);
  (void)replace_and_wait(m, set);
}

size_t sl_master_slave_count(sl_master *m) {
  pthread_mutex_lock(&m->lock);
  size_t n = set_nolock_(m)->n;
  pthread_mutex_unlock(&m->lock);
  return n;
}

sl_slave *sl_master_get_slave(sl_master *m, size_t i) {
  sl_slave *s = NULL;
  pthread_mutex_lock(&m->lock);
  sl_slave_set *cur = set_nolock_(m);
  if (i < cur->n) {
    s = cur->s[i];
    sl_object_ref(s->owner);
  }
  pthread_mutex_unlock(&m->lock);
  return s;
}

/* The primary serves the request; as under Rogue's master lock, a remove
** waits for a request in progress. */
sl_frame *sl_master_req_frame(sl_master *m, uint32_t size, int zero_copy) {
  sl_slave_set *set = current(m);
  sl_frame *f = set->n > 0 ? sl_slave_req_frame(set->s[0], size, zero_copy)
                           : sl_pool_req_frame(m->fallback, size);
  sl_grace_exit();
  return f;
}

/* One snapshot for a whole batch. */
void sl_master_send_frames(sl_master *m, sl_frame **fs, size_t n) {
  sl_slave_set *set = current(m);
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
  sl_grace_exit();
}

void sl_master_send_frame(sl_master *m, sl_frame *f) {
  sl_slave_set *set = current(m);
  for (size_t i = set->n; i-- > 0;) sl_slave_accept(set->s[i], f);
  sl_grace_exit();
}
