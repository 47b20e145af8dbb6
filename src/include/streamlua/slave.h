/*
** sl_slave: the receiving role of a graph node.
**
** accept_frame is called in the sender's thread with a borrowed frame
** (transfer none): a slave that keeps the frame past the call takes its own
** reference. Several threads may call it at once; an implementation
** protects its own state. The base implementation (sl_slave_accept_base)
** locks the frame, counts frames and bytes, and logs the frame when
** setDebug is on.
*/
#ifndef STREAMLUA_SLAVE_H_INCLUDED_
#define STREAMLUA_SLAVE_H_INCLUDED_

#include <stdatomic.h>
#include <stdint.h>

#include "frame.h"
#include "object.h"
#include "status.h"
#include "pool.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

struct sl_log;
typedef struct sl_slave sl_slave;

typedef struct sl_slave_ops {
  /* (transfer none) frame. Required. */
  void (*accept_frame)(sl_slave *s, sl_frame *f);
  /* Serves a master's reqFrame; NULL means "from my own pool". */
  sl_frame *(*accept_req)(sl_slave *s, uint32_t size, int zero_copy);
  /* Optional: n frames in order, as n accept_frame calls would (a slave
  ** that hands frames to another thread takes one lock for all). */
  void (*accept_frames)(sl_slave *s, sl_frame **fs, size_t n);
} sl_slave_ops;

struct sl_slave {
  const sl_slave_ops *ops;
  sl_object *owner;
  sl_pool *pool;
  /* The counts below are written by the thread that delivers, at each
  ** frame; the fields above are read at each request for a frame, often
  ** on another thread. A line between them keeps them apart whatever the
  ** struct's alignment (malloc's, not a line's). */
  char line_gap_[64];
  atomic_uint_least64_t frame_count;
  atomic_uint_least64_t byte_count;
  atomic_uint debug_bytes;
  struct sl_log *_Atomic debug_log;
};

/* Sets up the role inside `owner` (owner->slave = s). SL_ENOMEM on failure. */
int sl_slave_init(sl_slave *s, const sl_slave_ops *ops, sl_object *owner);
void sl_slave_fini(sl_slave *s);

/* A plain counting slave (kind "Slave"), refs = 1; its role is
** obj->slave. NULL (err says why) when out of memory. */
sl_object *sl_slave_new(sl_error *err);
extern const sl_slave_ops sl_slave_base_ops;

/* Dispatches to ops->accept_frame. (transfer none) */
void sl_slave_accept(sl_slave *s, sl_frame *f);
/* Locks f, counts it, logs it when debug is on. */
void sl_slave_accept_base(sl_slave *s, sl_frame *f);
/* Counts without locking: for a slave that already holds the frame lock. */
void sl_slave_count_nolock_(sl_slave *s, const sl_frame *f);

/* ops->accept_req, or the slave's own pool. */
sl_frame *sl_slave_req_frame(sl_slave *s, uint32_t size, int zero_copy);
/* Always from the slave's own pool (for receivers building frames). */
sl_frame *sl_slave_req_local_frame(sl_slave *s, uint32_t size);

/* max_bytes 0 turns logging off; the logger is named `name`. */
int sl_slave_set_debug(sl_slave *s, uint32_t max_bytes, const char *name);
/* Frames and bytes counted so far. Read the frame count first: the byte
** count read after it covers at least those frames. */
uint64_t sl_slave_get_frame_count(const sl_slave *s);
uint64_t sl_slave_get_byte_count(const sl_slave *s);

#pragma GCC visibility pop

#endif
