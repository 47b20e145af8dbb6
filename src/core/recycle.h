/*
** The frame's layout, shared by frame.c and pool.c, and the one way a
** frame is released: frame.c drops references; a frame whose last
** reference is gone goes to pool.c, which owns what happens next. A pool
** in fixed-size mode keeps a released single-buffer frame whole (frame
** object, lock and buffer together), so the next request of that size is
** one pop under one lock, with no malloc and no mutex set-up; any other
** frame's buffers go back to their pools and the frame is freed.
*/
#ifndef STREAMLUA_RECYCLE_H_INCLUDED_
#define STREAMLUA_RECYCLE_H_INCLUDED_

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "streamlua/frame.h"
#include "streamlua/pool.h"

#define SL_FRAME_INLINE_BUFS 2

/*
** One cache line: a frame crosses threads with every hand-off, so what the
** other core must fetch is kept to 64 bytes. The lock is a futex word, not
** a pthread mutex (40 bytes of its own).
*/
struct sl_frame {
  atomic_int refs;
  atomic_int lock;             /* 0 free, 1 held, 2 held with waiters */
  uint16_t flags;
  uint8_t error;
  uint8_t channel;
  uint32_t nbuf;
  uint32_t cap;
  sl_buffer **bufs;            /* inl until it grows */
  sl_buffer *inl[SL_FRAME_INLINE_BUFS];
  atomic_uintptr_t owner;      /* lock holder's token, 0 when unlocked */
};

_Static_assert(sizeof(struct sl_frame) <= 64, "a frame fits one cache line");

/* pool.c: f has no references left; (transfer full) f. */
void sl_pool_release_frame_(sl_frame *f);
/* The same for n frames; frames of one pool in a row go back under one
** lock. */
void sl_pool_release_frames_(sl_frame **fs, size_t n);
/* pool.c: returns f's buffers to their pools; f keeps no buffer. */
void sl_pool_clear_frame_(sl_frame *f);

#endif
