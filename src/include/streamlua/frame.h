/*
** sl_frame: an ordered list of buffers plus channel, error and flags.
**
** The payload is one logical byte string: the concatenation of each
** buffer's payload. Reference counted with atomics; a frame delivered to
** several slaves is the same object, so a slave that keeps it takes its
** own reference. Each frame has one non-recursive lock (Rogue's rule:
** do not hold it while calling sendFrame; built-in slaves take it).
**
** Thread safety: ref/unref are thread-safe. Everything else needs the
** frame lock when the frame can be seen by another thread.
*/
#ifndef STREAMLUA_FRAME_H_INCLUDED_
#define STREAMLUA_FRAME_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#include "buffer.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

typedef struct sl_frame sl_frame;

/* A frame with no buffers (capacity 0), refs = 1. NULL if out of memory. */
sl_frame *sl_frame_new(void);
sl_frame *sl_frame_ref(sl_frame *f);
/* Drops one reference; the last one returns every buffer to its pool. */
void sl_frame_unref(sl_frame *f);
/* sl_frame_unref on each of n frames (NULL entries are skipped), giving
** frames back to their pools in runs, one lock per run. */
void sl_frame_unref_many(sl_frame **fs, size_t n);
int sl_frame_refcount(const sl_frame *f);
/* 1 when the caller's reference is f's only one (acquire: what the other
** holders did to f before they let it go is visible), so it may reuse f. */
int sl_frame_is_sole(const sl_frame *f);

/* Capacity, valid bytes, and capacity - valid bytes. */
uint32_t sl_frame_get_size(const sl_frame *f);
uint32_t sl_frame_get_payload(const sl_frame *f);
uint32_t sl_frame_get_available(const sl_frame *f);

/* Payload changes: SL_ERANGE and nothing changed when out of range. */
int sl_frame_set_payload(sl_frame *f, uint32_t n);
int sl_frame_min_payload(sl_frame *f, uint32_t n);
int sl_frame_adjust_payload(sl_frame *f, int64_t delta);
void sl_frame_set_payload_full(sl_frame *f);
void sl_frame_set_payload_empty(sl_frame *f);

uint8_t sl_frame_get_channel(const sl_frame *f);
void sl_frame_set_channel(sl_frame *f, uint8_t channel);
uint8_t sl_frame_get_error(const sl_frame *f);
void sl_frame_set_error(sl_frame *f, uint8_t error);
uint16_t sl_frame_get_flags(const sl_frame *f);
void sl_frame_set_flags(sl_frame *f, uint16_t flags);
/* flags & 0xff and (flags >> 8) & 0xff. The setters OR into the flags,
** as Rogue's do; they never clear a bit. */
uint8_t sl_frame_get_first_user(const sl_frame *f);
void sl_frame_set_first_user(sl_frame *f, uint8_t user);
uint8_t sl_frame_get_last_user(const sl_frame *f);
void sl_frame_set_last_user(sl_frame *f, uint8_t user);

/* Buffers. append_buffer takes ownership of b (also on failure). */
size_t sl_frame_buffer_count(const sl_frame *f);
sl_buffer *sl_frame_buffer(const sl_frame *f, size_t i);
int sl_frame_append_buffer(sl_frame *f, sl_buffer *b);
/* Moves every buffer of src to the end of f; src is left empty. */
int sl_frame_append_frame(sl_frame *f, sl_frame *src);
/* Moves the first min(max, count) buffers of f into out[], in order
** (transfer full: the caller owns each, e.g. for sl_frame_append_buffer
** or sl_pool_ret_buffer); the rest move to the front. Returns how many. */
size_t sl_frame_take_buffers(sl_frame *f, sl_buffer **out, size_t max);
/* Returns every buffer to its pool; the frame is left empty. */
void sl_frame_clear(sl_frame *f);

/* Copies n bytes in at payload offset `offset`. SL_ERANGE (nothing
** written) if offset + n > size; else grows the payload to offset + n if
** it was shorter (never shrinks it). */
int sl_frame_write(sl_frame *f, const void *src, uint32_t offset, uint32_t n);
/* Copies n bytes out from payload offset. SL_ERANGE if offset + n > payload. */
int sl_frame_read(const sl_frame *f, void *dst, uint32_t offset, uint32_t n);

/* The frame lock (non-recursive). */
void sl_frame_lock(sl_frame *f);
void sl_frame_unlock(sl_frame *f);
/* 1 if the calling thread holds the lock. */
int sl_frame_locked_by_me(const sl_frame *f);
/* Locks f unless the caller's reference is its only one (then no other
** thread can reach f, and what its earlier holders did is visible, as
** after sl_frame_is_sole); returns 1 if it locked, for the caller to
** sl_frame_unlock. A reader of a frame it was handed, without the two
** locked instructions of the lock when it alone holds the frame. */
int sl_frame_lock_unless_sole(sl_frame *f);

/*
** Iterators walk the payload (read) or the capacity (write) across buffer
** boundaries. Position past the end gives the end state: ptr() is NULL.
*/
typedef struct sl_frame_iter {
  const sl_frame *frame;
  size_t buf;          /* current buffer index */
  uint32_t off;        /* offset inside the current buffer's segment */
  uint32_t pos;        /* logical position */
  uint32_t end;        /* logical end (payload or size) */
  int write;           /* segments are sizes, not payloads */
} sl_frame_iter;

void sl_frame_iter_read(sl_frame_iter *it, const sl_frame *f, uint32_t pos);
void sl_frame_iter_write(sl_frame_iter *it, const sl_frame *f, uint32_t pos);
int sl_frame_iter_at_end(const sl_frame_iter *it);
/* Raw pointer at the position; NULL at the end. */
uint8_t *sl_frame_iter_ptr(const sl_frame_iter *it);
/* Bytes left in the current buffer segment (0 at the end). */
uint32_t sl_frame_iter_rem_buffer(const sl_frame_iter *it);
void sl_frame_iter_advance(sl_frame_iter *it, uint32_t n);
/* Copy in / out / frame to frame, segment by segment; each advances its
** iterators and returns the bytes copied, which is less than n when an
** iterator reaches its end. */
uint32_t sl_frame_iter_put(sl_frame_iter *it, const void *src, uint32_t n);
uint32_t sl_frame_iter_get(sl_frame_iter *it, void *dst, uint32_t n);
uint32_t sl_frame_iter_copy(sl_frame_iter *src, uint32_t n, sl_frame_iter *dst);

#pragma GCC visibility pop

#endif
