#include "streamlua/object.h"

#include <stddef.h>

#include "streamlua/slave.h"

void sl_object_init(sl_object *obj, const sl_class *cls) {
  atomic_init(&obj->refs, 1);
  obj->cls = cls;
  obj->master = NULL;
  obj->slave = NULL;
  obj->mem_master = NULL;
  obj->mem_slave = NULL;
}

sl_object *sl_object_ref(sl_object *obj) {
  atomic_fetch_add_explicit(&obj->refs, 1, memory_order_relaxed);
  return obj;
}

void sl_object_unref(sl_object *obj) {
  if (obj == NULL) return;
  if (atomic_fetch_sub_explicit(&obj->refs, 1, memory_order_acq_rel) == 1)
    obj->cls->destroy(obj);
}

const char *sl_object_kind(const sl_object *obj) { return obj->cls->name; }

int sl_object_is(const sl_object *obj, const sl_class *cls) {
  return obj != NULL && obj->cls == cls;
}

unsigned sl_object_roles(const sl_object *obj) {
  if (obj == NULL) return 0;
  return (obj->master != NULL ? SL_ROLE_STREAM_MASTER : 0u) |
         (obj->slave != NULL ? SL_ROLE_STREAM_SLAVE : 0u) |
         (obj->mem_master != NULL ? SL_ROLE_MEMORY_MASTER : 0u) |
         (obj->mem_slave != NULL ? SL_ROLE_MEMORY_SLAVE : 0u);
}

void sl_object_stop(sl_object *obj) {
  if (obj->cls->stop != NULL) obj->cls->stop(obj);
}

void sl_object_cancel(sl_object *obj) {
  if (obj->cls->cancel != NULL) obj->cls->cancel(obj);
}

size_t sl_object_counters(sl_object *obj, sl_counter *out, size_t max) {
  if (obj->cls->counters != NULL) return obj->cls->counters(obj, out, max);
  if (obj->slave == NULL || max < 3) return 0;
  out[0].name = "rxFrames";
  out[0].value = sl_slave_get_frame_count(obj->slave);
  out[1].name = "rxBytes";
  out[1].value = sl_slave_get_byte_count(obj->slave);
  out[2].name = "cachedBytes";     /* the pool's kept blocks, not live */
  out[2].value = sl_pool_get_cached_bytes(obj->slave->pool);
  return 3;
}
