/*
** The two roles of the register bus: the slave's dispatch (with Rogue's
** placeholder for an unconnected bus) and the master, plus the plain
** Master node.
*/
#include <stdlib.h>

#include "streamlua/memory.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"

/* ---- slave role ---- */

void sl_mem_slave_init(sl_mem_slave *s, const sl_mem_slave_ops *ops,
                       sl_object *owner, uint32_t min, uint32_t max) {
  s->ops = ops;
  s->owner = owner;
  if (owner != NULL) owner->mem_slave = s;
  s->min = min;
  s->max = max;
}

void sl_mem_slave_do_transaction(sl_mem_slave *s, sl_transaction *t) {
  if (s == NULL || s->ops == NULL || s->ops->do_transaction == NULL) {
    sl_transaction_error(t, SL_MEM_UNCONNECTED);
    return;
  }
  s->ops->do_transaction(s, t);
}

uint32_t sl_mem_slave_min_access(sl_mem_slave *s) {
  if (s == NULL) return 4;
  if (s->ops != NULL && s->ops->min_access != NULL) return s->ops->min_access(s);
  return s->min;
}

uint32_t sl_mem_slave_max_access(sl_mem_slave *s) {
  if (s == NULL) return 0;
  if (s->ops != NULL && s->ops->max_access != NULL) return s->ops->max_access(s);
  return s->max;
}

/* ---- master role ---- */

int sl_mem_master_init(sl_mem_master *m, sl_object *owner) {
  m->owner = owner;
  m->slave_obj = NULL;
  m->slave = NULL;
  m->timeout_us = SL_MEM_DEFAULT_TIMEOUT_US;
  if (pthread_mutex_init(&m->mutex, NULL) != 0) return SL_ENOMEM;
  if (owner != NULL) owner->mem_master = m;
  return SL_OK;
}

void sl_mem_master_fini(sl_mem_master *m) {
  sl_object_unref(m->slave_obj);
  m->slave_obj = NULL;
  m->slave = NULL;
  pthread_mutex_destroy(&m->mutex);
}

int sl_mem_master_set_slave(sl_mem_master *m, sl_object *slave) {
  if (slave != NULL && slave->mem_slave == NULL) return SL_EINVAL;
  if (slave != NULL) sl_object_ref(slave);
  pthread_mutex_lock(&m->mutex);
  sl_object *old = m->slave_obj;
  m->slave_obj = slave;
  m->slave = slave != NULL ? slave->mem_slave : NULL;
  pthread_mutex_unlock(&m->mutex);
  sl_object_unref(old);
  return SL_OK;
}

sl_object *sl_mem_master_get_slave(sl_mem_master *m) {
  pthread_mutex_lock(&m->mutex);
  sl_object *o = m->slave_obj != NULL ? sl_object_ref(m->slave_obj) : NULL;
  pthread_mutex_unlock(&m->mutex);
  return o;
}

void sl_mem_master_set_timeout(sl_mem_master *m, uint64_t us) {
  if (us == 0) return;   /* Rogue keeps the previous one */
  pthread_mutex_lock(&m->mutex);
  m->timeout_us = us;
  pthread_mutex_unlock(&m->mutex);
}

uint64_t sl_mem_master_get_timeout(sl_mem_master *m) {
  pthread_mutex_lock(&m->mutex);
  uint64_t us = m->timeout_us;
  pthread_mutex_unlock(&m->mutex);
  return us;
}

sl_transaction *sl_mem_master_request(
    sl_mem_master *m, uint64_t address, uint32_t size, const void *data,
    uint32_t type, void (*before)(sl_transaction *t, void *arg), void *arg) {
  pthread_mutex_lock(&m->mutex);
  uint64_t timeout = m->timeout_us;
  sl_object *obj = m->slave_obj != NULL ? sl_object_ref(m->slave_obj) : NULL;
  sl_mem_slave *s = m->slave;
  pthread_mutex_unlock(&m->mutex);
  sl_transaction *t = sl_transaction_new(address, size, type, data, timeout);
  if (t == NULL) goto out;
  if (before != NULL) before(t, arg);
  sl_mem_slave_do_transaction(s, t);   /* NULL slave: the placeholder's error */
  sl_transaction_start_timer(t);
out:
  sl_object_unref(obj);
  return t;
}

#define WAIT_LOOK_US 80

static int tran_complete(void *arg) {
  sl_transaction *t = arg;
  return sl_transaction_wait_ms(t, 1) || sl_transaction_check_deadline(t);
}

static int tran_done(void *arg) { return sl_transaction_is_done(arg); }

int sl_mem_master_wait(sl_transaction *t) {
  /* A round trip over a bridge takes tens of microseconds: the caller
  ** looks for its answer that long (its slave's help, or yielding its
  ** CPU), before it sleeps. */
  int done = sl_transaction_help(t, WAIT_LOOK_US);
  if (done < 0) done = sl_wait_briefly(tran_done, t, WAIT_LOOK_US);
  if (!done && sl_wait_for(tran_complete, t) == SL_ECANCELED &&
      sl_transaction_give_up(t, "interrupted"))
    return SL_ECANCELED;
  if (!sl_transaction_failed(t)) return SL_OK;
  return sl_transaction_timed_out(t) ? SL_ETIMEDOUT : SL_EINVAL;
}

/* ---- the Master node ---- */

typedef struct master_node {
  sl_object obj;
  sl_mem_master master;
} master_node;

static void master_node_destroy(sl_object *obj) {
  master_node *mn = (master_node *)obj;
  sl_mem_master_fini(&mn->master);
  free(mn);
}

static const sl_class master_node_class = {.name = "memory.Master",
                                           .destroy = master_node_destroy};

sl_object *sl_mem_master_node_new(sl_error *err) {
  master_node *mn = calloc(1, sizeof *mn);
  if (mn == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&mn->obj, &master_node_class);
  if (sl_mem_master_init(&mn->master, &mn->obj) != SL_OK) {
    free(mn);
    return sl_fail(err, SL_ENOMEM, NULL);
  }
  return &mn->obj;
}
