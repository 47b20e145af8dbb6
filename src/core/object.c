#include "streamlua/object.h"

#include <stddef.h>

#include "streamlua/slave.h"

void sl_object_init(sl_object *obj, const char *kind,
                    void (*destroy)(sl_object *obj)) {
  atomic_init(&obj->refs, 1);
  obj->kind = kind;
  obj->destroy = destroy;
  obj->stop = NULL;
  obj->cancel = NULL;
  obj->counters = NULL;
  obj->master = NULL;
  obj->slave = NULL;
}

sl_object *sl_object_ref(sl_object *obj) {
  atomic_fetch_add_explicit(&obj->refs, 1, memory_order_relaxed);
  return obj;
}

void sl_object_unref(sl_object *obj) {
  if (obj == NULL) return;
  if (atomic_fetch_sub_explicit(&obj->refs, 1, memory_order_acq_rel) == 1)
    obj->destroy(obj);
}

void sl_object_stop(sl_object *obj) {
  if (obj->stop != NULL) obj->stop(obj);
}

void sl_object_cancel(sl_object *obj) {
  if (obj->cancel != NULL) obj->cancel(obj);
}

size_t sl_object_counters(sl_object *obj, sl_counter *out, size_t max) {
  if (obj->counters != NULL) return obj->counters(obj, out, max);
  if (obj->slave == NULL || max < 2) return 0;
  out[0].name = "rxFrames";
  out[0].value = sl_slave_get_frame_count(obj->slave);
  out[1].name = "rxBytes";
  out[1].value = sl_slave_get_byte_count(obj->slave);
  return 2;
}
