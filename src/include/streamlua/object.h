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
#include <stddef.h>
#include <stdint.h>

struct sl_master;
struct sl_slave;

/* One named counter of a node, as read by sl_object_counters. Names are
** static strings; by convention "rxFrames", "rxBytes", "txFrames",
** "txBytes", "drops", "errors", "depth". */
typedef struct sl_counter {
  const char *name;
  uint64_t value;
} sl_counter;

#define SL_COUNTERS_MAX 16

typedef struct sl_object {
  atomic_int refs;
  const char *kind;                         /* class name: "Slave", "Fifo"... */
  void (*destroy)(struct sl_object *obj);   /* frees the node; refs reached 0 */
  void (*stop)(struct sl_object *obj);      /* optional: end threads, close */
  /* optional: phase one of a stop. Tells the node's threads and every
  ** wait on its behalf to give up, and returns without waiting; `stop`
  ** (phase two) then joins and closes. */
  void (*cancel)(struct sl_object *obj);
  /* optional: fills up to max counters, returns how many (thread-safe) */
  size_t (*counters)(struct sl_object *obj, sl_counter *out, size_t max);
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

/* Calls obj->cancel when set: never waits. Stopping a whole graph is
** sl_object_cancel on every node, then sl_object_stop on every node. */
void sl_object_cancel(sl_object *obj);

/* The node's counters: its own hook, or for a slave without one the base
** slave's rxFrames and rxBytes. Returns how many were written. */
size_t sl_object_counters(sl_object *obj, sl_counter *out, size_t max);

#endif
