/*
** sl_pool: the frame allocator every slave carries (Rogue: Slave is a Pool).
**
** Variable mode (fixed size 0): a request for n bytes is one buffer of n
** bytes. Fixed mode: ceil(n / fixed) buffers of min(n, fixed) raw bytes,
** each a block of `fixed` bytes; with a pool size > 0 returned blocks are
** kept for reuse. The counters count live buffers only. Thread-safe.
**
** The pool lives until its last reference is gone and its last buffer is
** back, so frames may outlive the slave that made them.
*/
#ifndef STREAMLUA_POOL_H_INCLUDED_
#define STREAMLUA_POOL_H_INCLUDED_

#include <stdint.h>

#include "buffer.h"
#include "frame.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

typedef struct sl_pool sl_pool;

sl_pool *sl_pool_new(void);
sl_pool *sl_pool_ref(sl_pool *p);
void sl_pool_unref(sl_pool *p);

/* A frame of at least `size` bytes of capacity (payload 0). size 0 gives
** a frame with no buffers. NULL if the request is over the pool's limit or
** memory runs out; sl_pool_req_status then says which. */
sl_frame *sl_pool_req_frame(sl_pool *p, uint32_t size);

/*
** Limits on one request, so that a size from a user or a peer cannot make
** the pool allocate without bound. The largest frame served is
** min(max frame size, fixed size * max buffers) (the second term in fixed
** mode only).
*/
#define SL_POOL_MAX_FRAME_DEFAULT (1u << 30)     /* 1 GiB */
#define SL_POOL_MAX_BUFFERS_DEFAULT (1u << 18)   /* 1 GiB of 4 KiB blocks */
void sl_pool_set_max_frame_size(sl_pool *p, uint32_t bytes);
uint32_t sl_pool_get_max_frame_size(sl_pool *p);
void sl_pool_set_max_buffers(sl_pool *p, uint32_t count);
uint32_t sl_pool_get_max_buffers(sl_pool *p);
/* The largest request p serves now, in bytes. */
uint64_t sl_pool_frame_limit(sl_pool *p);

/* Like errno, per thread: why the last sl_pool_req_frame that returned
** NULL did so: SL_EINVAL (over the limit, which *limit gets) or
** SL_ENOMEM; SL_OK if none did since the last call. Reading clears it. */
int sl_pool_req_status(uint64_t *limit);

/* One buffer for a request of `size` bytes; *raw gets its raw size. */
sl_buffer *sl_pool_alloc_buffer(sl_pool *p, uint32_t size, uint32_t *raw);

/* Wraps external memory; release(b) runs when the buffer comes back. The
** buffer is counted in the pool's counters while it lives. */
sl_buffer *sl_pool_create_buffer(sl_pool *p, void *data, uint32_t meta,
                                 uint32_t size, uint32_t alloc,
                                 void (*release)(sl_buffer *b), void *arg);

/* Where a frame's buffer goes when the frame lets go of it. */
void sl_pool_ret_buffer(sl_buffer *b);

/* Changing the fixed size drops the cached blocks (they have the old size). */
void sl_pool_set_fixed_size(sl_pool *p, uint32_t size);
uint32_t sl_pool_get_fixed_size(sl_pool *p);
void sl_pool_set_pool_size(sl_pool *p, uint32_t count);
uint32_t sl_pool_get_pool_size(sl_pool *p);
uint32_t sl_pool_get_alloc_count(sl_pool *p);
uint32_t sl_pool_get_alloc_bytes(sl_pool *p);
/* Blocks waiting in the free list. */
uint32_t sl_pool_get_cached_count(sl_pool *p);

#pragma GCC visibility pop

#endif
