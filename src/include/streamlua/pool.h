/*
** sl_pool: the frame allocator every slave carries (Rogue: Slave is a Pool).
**
** Variable mode (fixed size 0): a request for n bytes is one buffer of n
** bytes. Fixed mode: ceil(n / fixed) buffers of min(n, fixed) raw bytes,
** each a block of `fixed` bytes. The counters count live buffers only.
** Thread-safe.
**
** The cache: a released frame of one block from this pool is kept whole
** and serves a later request of the same size class (n rounded up by at
** most 12.5 %; up to four classes at once), in either mode, so a pool left
** at its defaults reuses its memory. Bounded: at most the pool size (if
** set, else SL_POOL_CACHE_COUNT_DEFAULT) blocks and at most the cache
** bytes of block data; 0 cache bytes keeps nothing. In fixed mode with a
** pool size > 0 a returned single block is kept too (Rogue's free list).
** Kept blocks are not in the alloc counters: the cached counters tell
** them. A pool not used for an idle period gives its cache back.
**
** A thread that uses one pool many times in a row keeps up to 16 of its
** frames (one class, blocks of at most 2 KiB) and takes and gives them
** without the pool's lock; they are part of the pool's cache (reserved
** within its bounds, counted in the cached counters) and are taken back
** when the pool is idle, its bounds or fixed size change, its last
** reference goes, or the thread ends.
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

/* Frames as n calls of sl_pool_req_frame(p, size) would give, into
** out[0..n): the kept ones taken under one lock. Returns how many: up to
** n while the pool keeps frames of that size, else 1 (a caller wanting
** more asks again); 0 as sl_pool_req_frame's NULL. */
uint32_t sl_pool_req_frames(sl_pool *p, uint32_t size, sl_frame **out, uint32_t n);

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
/* The most blocks kept (0: SL_POOL_CACHE_COUNT_DEFAULT); lowering it frees
** what is kept over it. */
void sl_pool_set_pool_size(sl_pool *p, uint32_t count);
uint32_t sl_pool_get_pool_size(sl_pool *p);
uint32_t sl_pool_get_alloc_count(sl_pool *p);
uint32_t sl_pool_get_alloc_bytes(sl_pool *p);

#define SL_POOL_CACHE_COUNT_DEFAULT 256u
#define SL_POOL_CACHE_BYTES_DEFAULT (2u << 20)   /* 2 MiB a pool */
/* The most bytes of block data kept for reuse; 0 keeps nothing. Lowering
** it frees what is kept over it. */
void sl_pool_set_cache_bytes(sl_pool *p, uint32_t bytes);
uint32_t sl_pool_get_cache_bytes(sl_pool *p);
/* Blocks kept (whole frames and free blocks), and their data bytes. */
uint32_t sl_pool_get_cached_count(sl_pool *p);
uint64_t sl_pool_get_cached_bytes(sl_pool *p);

/*
** Idle release, for every pool of the process: a pool neither asked for
** nor given back a frame for between `ms` and 2 `ms` gives its cache back.
** One sweeper thread does it, running only while some pool keeps
** something. 0 never gives back. Any thread.
*/
#define SL_POOL_IDLE_MS_DEFAULT 1000u
void sl_pool_set_idle_ms(uint32_t ms);
uint32_t sl_pool_get_idle_ms(void);

#pragma GCC visibility pop

#endif
