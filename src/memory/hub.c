/*
** Hub(offset, min, max): a master and a slave. It adds its offset to
** each transaction's address and, when the transaction is larger than the
** slave below takes at once, splits it into parts of at most that size,
** handed down in address order. The parent completes when every part has;
** the first failed part's error reaches it (Rogue keeps only the last).
*/
#include <stdlib.h>

#include "streamlua/memory.h"
#include "streamlua/status.h"

typedef struct sl_hub hub;

struct sl_hub {
  sl_object obj;
  sl_mem_master master;
  sl_mem_slave slave;
  uint64_t offset;
  int root;                      /* min and max given: reports its own */
};

static void hub_do(sl_mem_slave *s, sl_transaction *t);
static uint32_t hub_min(sl_mem_slave *s);
static uint32_t hub_max(sl_mem_slave *s);
static const sl_mem_slave_ops hub_ops = {
    .do_transaction = hub_do, .min_access = hub_min, .max_access = hub_max};

static uint32_t hub_min(sl_mem_slave *s) {
  hub *h = (hub *)s->owner;
  if (h->root) return s->min;
  sl_object *o = sl_mem_master_get_slave(&h->master);
  uint32_t v = o != NULL ? sl_mem_slave_min_access(o->mem_slave) : 4;
  sl_object_unref(o);
  return v;
}

static uint32_t hub_max(sl_mem_slave *s) {
  hub *h = (hub *)s->owner;
  return h->root ? s->max : 0xFFFFFFFFu;
}

/* Hands t down as parts of at most the slave's max access, each at the
** offset address (one part when it fits): t itself is never changed, so a
** caller's transaction keeps the address it asked for. */
static void hub_do(sl_mem_slave *s, sl_transaction *t) {
  hub *h = (hub *)s->owner;
  sl_mem_master *m = &h->master;
  pthread_mutex_lock(&m->mutex);
  sl_object *obj = m->slave_obj != NULL ? sl_object_ref(m->slave_obj) : NULL;
  sl_mem_slave *down = m->slave;
  pthread_mutex_unlock(&m->mutex);
  uint32_t max = down != NULL ? sl_mem_slave_max_access(down) : 0;
  uint32_t size = sl_transaction_size(t);
  uint64_t base = sl_transaction_address(t) + h->offset;
  if (h->offset == 0 && (max == 0 || size <= max)) {
    sl_mem_slave_do_transaction(down, t);   /* as it is: nothing to change */
    goto out;
  }
  uint32_t step = (max == 0 || size <= max) ? size : max;
  uint32_t off = 0;
  do {
    uint32_t len = size - off < step ? size - off : step;
    sl_transaction *p = sl_transaction_new_part(t, off, len, base + off);
    if (p == NULL) {
      sl_transaction_error(t, "Hub: out of memory");
      break;
    }
    sl_mem_slave_do_transaction(down, p);
    sl_transaction_unref(p);
    off += len;
  } while (off < size);
  sl_transaction_parts_done(t);
out:
  sl_object_unref(obj);
}

static void hub_destroy(sl_object *obj) {
  hub *h = (hub *)obj;
  sl_mem_master_fini(&h->master);
  free(h);
}

static const sl_class hub_class = {.name = "memory.Hub",
                                   .destroy = hub_destroy};

sl_hub *sl_hub_new(uint64_t offset, uint32_t min, uint32_t max, sl_error *err) {
  hub *h = calloc(1, sizeof *h);
  if (h == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&h->obj, &hub_class);
  if (sl_mem_master_init(&h->master, &h->obj) != SL_OK) {
    free(h);
    return sl_fail(err, SL_ENOMEM, NULL);
  }
  sl_mem_slave_init(&h->slave, &hub_ops, &h->obj, min, max);
  h->offset = offset;
  h->root = min != 0 && max != 0;
  return h;
}

sl_object *sl_hub_object(sl_hub *h) { return h != NULL ? &h->obj : NULL; }

sl_hub *sl_hub_from_object(sl_object *obj) {
  return sl_object_is(obj, &hub_class) ? (hub *)obj : NULL;
}

uint64_t sl_hub_get_offset(sl_hub *h) { return h->offset; }
