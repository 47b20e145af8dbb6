/*
** sl_object: the reference-counted header every graph node carries.
**
** A node may play the master role, the slave role or both (a Fifo); the
** roles are structs embedded in the node and point back to the node, so
** one atomic count owns the whole node. Whoever holds a reference may use
** the node from any thread; the last unref calls `destroy`, which may run
** on any thread.
*/
#ifndef STREAMLUA_OBJECT_H_INCLUDED_
#define STREAMLUA_OBJECT_H_INCLUDED_

#include <stdatomic.h>

struct sl_master;
struct sl_slave;

typedef struct sl_object {
  atomic_int refs;
  const char *kind;                         /* class name: "Slave", "Fifo"... */
  void (*destroy)(struct sl_object *obj);   /* frees the node; refs reached 0 */
  void (*stop)(struct sl_object *obj);      /* optional: end threads, close */
  struct sl_master *master;                 /* NULL if not a master */
  struct sl_slave *slave;                   /* NULL if not a slave */
} sl_object;

/* Sets refs to 1. `destroy` must be non-NULL. */
void sl_object_init(sl_object *obj, const char *kind,
                    void (*destroy)(sl_object *obj));

/* Thread-safe. Returns obj. */
sl_object *sl_object_ref(sl_object *obj);

/* Thread-safe. Runs destroy when the count reaches zero. NULL is ignored. */
void sl_object_unref(sl_object *obj);

/* Calls obj->stop when set. Thread-safe if the node's stop is. */
void sl_object_stop(sl_object *obj);

#endif
