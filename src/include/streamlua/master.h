/*
** sl_master: the sending role of a graph node.
**
** The first slave added is the primary: reqFrame asks it for frames, and
** sendFrame calls it last, after every secondary (newest first), so a
** primary that empties a zero-copy frame does so after everyone has seen
** it. Delivery is synchronous in the caller's thread.
**
** Thread safety: every function may be called from any thread. The slave
** list is an immutable snapshot replaced on each change; a send reads it
** without taking a lock and holds none while slaves run; after
** sl_master_remove_slave returns, the removed slave receives nothing more
** from this master (other threads' sends in flight are waited for).
*/
#ifndef STREAMLUA_MASTER_H_INCLUDED_
#define STREAMLUA_MASTER_H_INCLUDED_

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "object.h"
#include "slave.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

typedef struct sl_slave_set sl_slave_set;
typedef struct sl_master sl_master;

struct sl_master {
  sl_object *owner;
  pthread_mutex_t lock;
  _Atomic(sl_slave_set *) set; /* current snapshot, never NULL after init */
  sl_slave_set *retired;      /* replaced snapshots not yet released */
  sl_pool *fallback;          /* serves reqFrame while there is no slave */
};

int sl_master_init(sl_master *m, sl_object *owner);
/* Drops every slave. The owner's destroy calls this. */
void sl_master_fini(sl_master *m);

/* A plain master (kind "Master"), refs = 1; its role is obj->master.
** NULL (err says why) when out of memory. */
sl_object *sl_master_new(sl_error *err);

/* Appends s (duplicates allowed) and takes a reference on its owner. */
int sl_master_add_slave(sl_master *m, sl_slave *s);
/* Removes every occurrence of s. SL_ENOTFOUND if it was not there;
** SL_ECANCELED when the calling thread's waits gave up (wait.h) before
** another thread's delivery to s ended: s is removed, but that delivery
** may still be under way. */
int sl_master_remove_slave(sl_master *m, sl_slave *s);
/* Removes every slave. */
void sl_master_clear_slaves(sl_master *m);
size_t sl_master_slave_count(sl_master *m);
/* The i-th slave (attachment order), with a new reference on its owner; NULL past the end. */
sl_slave *sl_master_get_slave(sl_master *m, size_t i);

/* A frame from the primary slave (or a plain pool with no slaves). */
sl_frame *sl_master_req_frame(sl_master *m, uint32_t size, int zero_copy);
/* Delivers f to every slave: newest first, primary last. (transfer none) */
void sl_master_send_frame(sl_master *m, sl_frame *f);
/* Delivers n frames in order, taking the slave snapshot once (a removal
** waits for the whole batch): slave by slave, newest first, so each slave
** sees the frames in order and the primary gets each frame last. */
void sl_master_send_frames(sl_master *m, sl_frame **fs, size_t n);

#pragma GCC visibility pop

#endif
