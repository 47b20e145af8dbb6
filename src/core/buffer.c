/*
** Buffer arithmetic, with Rogue's formulas (see buffer.h for the picture).
** Every setter checks first and changes nothing on SL_ERANGE.
*/
#include "streamlua/buffer.h"

#include "streamlua/status.h"

/* No delta beyond +-UINT32_MAX can be in range; refusing those first keeps
** the int64 arithmetic below from overflowing. */
#define DELTA_OUT_OF_RANGE(d) \
  ((d) < -(int64_t)UINT32_MAX || (d) > (int64_t)UINT32_MAX)

/* The external definitions of the header's inline accessors. */
extern inline uint32_t sl_buffer_get_size(const sl_buffer *b);
extern inline uint32_t sl_buffer_get_payload(const sl_buffer *b);
extern inline uint8_t *sl_buffer_begin(const sl_buffer *b);
extern inline int sl_buffer_set_payload(sl_buffer *b, uint32_t n);
extern inline int sl_buffer_min_payload(sl_buffer *b, uint32_t n);

uint32_t sl_buffer_get_available(const sl_buffer *b) {
  int64_t a = (int64_t)b->raw_size - b->payload - b->tail_room;
  return a < 0 ? 0 : (uint32_t)a;
}

int sl_buffer_adjust_payload(sl_buffer *b, int64_t delta) {
  if (DELTA_OUT_OF_RANGE(delta)) return SL_ERANGE;
  int64_t n = (int64_t)sl_buffer_get_payload(b) + delta;
  if (n < 0 || n > (int64_t)sl_buffer_get_size(b)) return SL_ERANGE;
  return sl_buffer_set_payload(b, (uint32_t)n);
}

void sl_buffer_set_payload_full(sl_buffer *b) {
  b->payload = b->raw_size - b->tail_room;
}

void sl_buffer_set_payload_empty(sl_buffer *b) {
  b->payload = b->head_room;
}

/*
** A positive delta strips bytes from the front of the payload (receive
** side); a negative one gives them back, prepending a header in place.
*/
int sl_buffer_adjust_header(sl_buffer *b, int64_t delta) {
  if (DELTA_OUT_OF_RANGE(delta)) return SL_ERANGE;
  if (delta < 0 && -delta > (int64_t)b->head_room) return SL_ERANGE;
  if (delta > 0 && delta > (int64_t)sl_buffer_get_size(b)) return SL_ERANGE;
  b->head_room = (uint32_t)((int64_t)b->head_room + delta);
  if (b->payload < b->head_room) b->payload = b->head_room;
  return SL_OK;
}

void sl_buffer_zero_header(sl_buffer *b) {
  b->head_room = 0;
}

int sl_buffer_adjust_tail(sl_buffer *b, int64_t delta) {
  if (DELTA_OUT_OF_RANGE(delta)) return SL_ERANGE;
  if (delta < 0 && -delta > (int64_t)b->tail_room) return SL_ERANGE;
  if (delta > 0 && delta > (int64_t)sl_buffer_get_size(b)) return SL_ERANGE;
  b->tail_room = (uint32_t)((int64_t)b->tail_room + delta);
  return SL_OK;
}

void sl_buffer_zero_tail(sl_buffer *b) {
  b->tail_room = 0;
}
