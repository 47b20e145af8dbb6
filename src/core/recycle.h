/*
** Private contract between frame.c and pool.c: a pool in fixed-size mode
** keeps a released single-buffer frame whole (frame object, lock and
** buffer together), so the next request of that size is one pop under one
** lock, with no malloc and no mutex set-up.
*/
#ifndef STREAMLUA_RECYCLE_H_INCLUDED_
#define STREAMLUA_RECYCLE_H_INCLUDED_

#include "streamlua/frame.h"
#include "streamlua/pool.h"

/* frame.c: a cached frame's reset: refs 1, metadata 0, its buffer kept. */
void sl_frame_reset_(sl_frame *f);
/* Frees a cached frame and its buffer block. */
void sl_frame_destroy_cached_(sl_frame *f);

/* pool.c: takes a dead single-buffer frame if the pool keeps it (returns
** 1), else returns 0 and the caller frees it as usual. */
int sl_pool_keep_frame_(sl_pool *p, sl_frame *f);
/* The same for k dead frames whose buffers all come from p: one lock.
** Frames it does not keep are left in fs[] (returned count). */
size_t sl_pool_keep_frames_(sl_pool *p, sl_frame **fs, size_t k);

#endif
