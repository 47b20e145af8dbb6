/*
** sl_object: the reference-counted header every graph node carries.
**
** A node's class (sl_class, static storage) names it and holds its
** hooks: destroy, and optionally stop, cancel and counters. A node may
** play up to four roles: stream master, stream slave, memory master and
** memory slave (a Fifo is stream master and slave, a Hub memory master and
** slave, SrpV3 stream master and slave and memory slave). The roles are
** structs embedded in the node that point back to it, so one atomic count
** owns the whole node. Whoever holds a reference may use the node from any
** thread; the last unref calls the class's destroy, which may run on any
** thread.
**
** Every concrete node type has a typed handle with an upcast and a
** checked downcast, e.g. sl_fifo_object(f) and sl_fifo_from_object(o)
** (NULL when o is not a Fifo); the downcast is sl_object_is on the type's
** class.
*/
#ifndef STREAMLUA_OBJECT_H_INCLUDED_
#define STREAMLUA_OBJECT_H_INCLUDED_

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

struct sl_master;
struct sl_slave;
struct sl_mem_master;
struct sl_mem_slave;
struct sl_object;

/* One named counter of a node, as read by sl_object_counters. Names are
** static strings; by convention "rxFrames", "rxBytes", "txFrames",
** "txBytes", "drops", "errors", "depth". */
typedef struct sl_counter {
  const char *name;
  uint64_t value;
} sl_counter;

#define SL_COUNTERS_MAX 16

/* A node's class: one static descriptor per concrete type. */
typedef struct sl_class {
  const char *name;                         /* "Slave", "Fifo", "memory.Hub"... */
  void (*destroy)(struct sl_object *obj);   /* frees the node; refs reached 0 */
  void (*stop)(struct sl_object *obj);      /* optional: end threads, close */
  /* optional: phase one of a stop. Tells the node's threads and every
  ** wait on its behalf to give up, and returns without waiting; `stop`
  ** (phase two) then joins and closes. */
  void (*cancel)(struct sl_object *obj);
  /* optional: fills up to max counters, returns how many (thread-safe) */
  size_t (*counters)(struct sl_object *obj, sl_counter *out, size_t max);
} sl_class;

/* The role bits of a node (sl_object_roles). */
enum {
  SL_ROLE_STREAM_MASTER = 0x1,
  SL_ROLE_STREAM_SLAVE = 0x2,
  SL_ROLE_MEMORY_MASTER = 0x4,
  SL_ROLE_MEMORY_SLAVE = 0x8
};
#define SL_ROLE_STREAM (SL_ROLE_STREAM_MASTER | SL_ROLE_STREAM_SLAVE)
#define SL_ROLE_MEMORY (SL_ROLE_MEMORY_MASTER | SL_ROLE_MEMORY_SLAVE)

typedef struct sl_object {
  atomic_int refs;
  const sl_class *cls;
  /* The roles: NULL when the node does not play it. Set by the
  ** constructor before the node is shared, never changed after. */
  struct sl_master *master;                 /* stream master */
  struct sl_slave *slave;                   /* stream slave */
  struct sl_mem_master *mem_master;         /* memory master */
  struct sl_mem_slave *mem_slave;           /* memory slave */
} sl_object;

/* Sets refs to 1, the class, and no roles. cls and cls->destroy must be
** non-NULL; cls must outlive the node (static storage). */
void sl_object_init(sl_object *obj, const sl_class *cls);

/* Thread-safe. Returns obj. */
sl_object *sl_object_ref(sl_object *obj);

/* Thread-safe. Runs destroy when the count reaches zero. NULL is ignored. */
void sl_object_unref(sl_object *obj);

/* The class name ("Fifo", "memory.Hub"...). */
const char *sl_object_kind(const sl_object *obj);

/* Is obj (not NULL) of class cls? */
int sl_object_is(const sl_object *obj, const sl_class *cls);

/* The roles obj plays: SL_ROLE_* bits; 0 for NULL. */
unsigned sl_object_roles(const sl_object *obj);

/* Calls the class's stop when set. Thread-safe if the node's stop is. */
void sl_object_stop(sl_object *obj);

/* Calls the class's cancel when set: never waits. Stopping a whole graph
** is sl_object_cancel on every node, then sl_object_stop on every node. */
void sl_object_cancel(sl_object *obj);

/* The node's counters: its class's hook, or for a slave without one the
** base slave's rxFrames and rxBytes. Returns how many were written. */
size_t sl_object_counters(sl_object *obj, sl_counter *out, size_t max);

/* For a class's counters hook: copies the first (at most max) of the n
** counters in c to out and returns how many. */
static inline size_t sl_counters_put(sl_counter *out, size_t max,
                                     const sl_counter *c, size_t n) {
  if (n > max) n = max;
  for (size_t i = 0; i < n; i++) out[i] = c[i];
  return n;
}

#pragma GCC visibility pop

#endif
