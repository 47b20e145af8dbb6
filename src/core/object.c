#include "streamlua/object.h"

#include <stddef.h>

void sl_object_init(sl_object *obj, const char *kind,
                    void (*destroy)(sl_object *obj)) {
  atomic_init(&obj->refs, 1);
  obj->kind = kind;
  obj->destroy = destroy;
  obj->stop = NULL;
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
