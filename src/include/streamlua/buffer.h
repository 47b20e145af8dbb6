/*
** sl_buffer: one contiguous block of frame memory, owned by a Pool.
**
**   data                                                  data+raw_size
**   |<- head_room ->|<-- payload bytes -->|    ...    |<- tail_room ->|
**                   begin          data+payload            end
**
** `payload` is the absolute end of valid data measured from `data` (it
** includes the head room), exactly as Rogue keeps it, so moving the head
** room prepends or strips header bytes without touching the data.
** A buffer belongs to one frame at a time; it is not locked on its own
** (the frame's lock covers it).
*/
#ifndef STREAMLUA_BUFFER_H_INCLUDED_
#define STREAMLUA_BUFFER_H_INCLUDED_

#include <stdint.h>

#include "streamlua/status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

struct sl_pool;

typedef struct sl_buffer {
  uint8_t *data;
  struct sl_pool *pool;      /* where the block goes back to */
  struct sl_buffer *next;    /* pool free-list link (free blocks only) */
  void (*release)(struct sl_buffer *b);  /* external memory: frees it */
  void *release_arg;
  uint32_t meta;             /* owner's word (pool sequence, driver index) */
  uint32_t alloc_size;       /* bytes allocated */
  uint32_t raw_size;         /* usable bytes of the block */
  uint32_t head_room;
  uint32_t tail_room;
  uint32_t payload;          /* absolute end of valid data */
} sl_buffer;

/* The accessors of every frame operation are inline (C99 inline: the
** library also exports each, defined in buffer.c). */

/* Capacity: raw_size - head_room - tail_room. */
inline uint32_t sl_buffer_get_size(const sl_buffer *b) {
  return b->raw_size - (b->head_room + b->tail_room);
}
/* Valid bytes after the head room. */
inline uint32_t sl_buffer_get_payload(const sl_buffer *b) {
  return b->payload - b->head_room;
}
/* raw_size - payload - tail_room, never below 0. */
uint32_t sl_buffer_get_available(const sl_buffer *b);
/* First payload byte. */
inline uint8_t *sl_buffer_begin(const sl_buffer *b) {
  return b->data + b->head_room;
}

/* Each returns SL_ERANGE and changes nothing when out of range. */
inline int sl_buffer_set_payload(sl_buffer *b, uint32_t n) {
  if (n > sl_buffer_get_size(b)) return SL_ERANGE;
  b->payload = n + b->head_room;
  return SL_OK;
}
inline int sl_buffer_min_payload(sl_buffer *b, uint32_t n) {
  if (n <= sl_buffer_get_payload(b)) return SL_OK;
  return sl_buffer_set_payload(b, n);
}
int sl_buffer_adjust_payload(sl_buffer *b, int64_t delta);
void sl_buffer_set_payload_full(sl_buffer *b);
void sl_buffer_set_payload_empty(sl_buffer *b);
int sl_buffer_adjust_header(sl_buffer *b, int64_t delta);
void sl_buffer_zero_header(sl_buffer *b);
int sl_buffer_adjust_tail(sl_buffer *b, int64_t delta);
void sl_buffer_zero_tail(sl_buffer *b);

#pragma GCC visibility pop

#endif
