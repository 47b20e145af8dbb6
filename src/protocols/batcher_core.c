/*
** Batcher formats: the super-frame parser (Rogue's CoreV1/CoreV2, with
** its checks and texts) and the header and tail encoders. Pure functions;
** the parser reads through a small reader so that it works on plain bytes
** and on a frame's buffers alike.
*/
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/batcher.h"

#include "../core/bytes.h"

uint32_t sl_batch_header_size(int version, uint8_t width) {
  return version == 1 ? 2u << width : 2u;
}

uint32_t sl_batch_tail_size(int version, uint8_t width) {
  if (version != 1) return SL_BATCH_V2_TAIL;
  uint32_t w = 2u << width;
  return w > 8 ? w : 8;
}

uint64_t sl_batch_padded(int version, uint8_t width, uint32_t size) {
  if (version != 1) return size;
  uint64_t w = 2u << width;
  return ((uint64_t)size + w - 1) / w * w;
}

/* ---- the parser ---- */

typedef struct reader {
  const uint8_t *bytes;        /* either bytes... */
  const sl_frame *frame;       /* ...or a frame's payload */
} reader;

static void get(const reader *r, uint32_t off, void *dst, uint32_t n) {
  if (r->frame != NULL) sl_frame_read(r->frame, dst, off, n);
  else memcpy(dst, r->bytes + off, n);
}

static sl_batch_error fail(sl_batch_parsed *p, sl_batch_error why, char *err,
                           size_t n, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static sl_batch_error fail(sl_batch_parsed *p, sl_batch_error why, char *err,
                           size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (n > 0) vsnprintf(err, n, fmt, ap);
  va_end(ap);
  p->count = 0;
  return why;
}

static int push(sl_batch_parsed *p, const sl_batch_record *r) {
  if (p->count == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 16;
    sl_batch_record *nr = realloc(p->records, cap * sizeof *nr);
    if (nr == NULL) return -1;
    p->records = nr;
    p->cap = cap;
  }
  p->records[p->count++] = *r;
  return 0;
}

/* Checks the header; fills version, width, sequence and the sizes. */
static sl_batch_error parse_header(sl_batch_parsed *p, int version,
                                   const reader *rd, uint32_t len, char *err,
                                   size_t n) {
  uint32_t min = version == 1 ? SL_BATCH_V1_MIN : SL_BATCH_V2_MIN;
  if (len < min)
    return fail(p, SL_BATCH_SHORT, err, n, "Dropping small frame size = %" PRIu32, len);
  uint8_t head[2];
  get(rd, 0, head, 2);
  if ((head[0] & 0xF) != version)
    return fail(p, SL_BATCH_VERSION, err, n, "Version mismatch. Got %u", head[0] & 0xFu);
  p->version = version;
  p->width = 0;
  if (version == 1) {
    p->width = head[0] >> 4;
    if (p->width > SL_BATCH_MAX_WIDTH)
      return fail(p, SL_BATCH_WIDTH, err, n, "Invalid AXIS Type Detected. Got %u",
                  (unsigned)p->width);
  }
  p->sequence = head[1];
  p->header_size = sl_batch_header_size(version, p->width);
  p->tail_size = sl_batch_tail_size(version, p->width);
  if (len < p->header_size + p->tail_size)
    return fail(p, SL_BATCH_NO_ROOM, err, n, "Not enough space (%" PRIu32
                ") for tail (%" PRIu32 ") + header (%" PRIu32 ")", len,
                p->tail_size, p->header_size);
  return SL_BATCH_OK;
}

/* Walks the tails from the end; records come out last first. */
static sl_batch_error parse_records(sl_batch_parsed *p, const reader *rd,
                                    uint32_t len, char *err, size_t n) {
  uint32_t cursor = len;
  uint8_t tail[8];
  while (cursor > p->header_size) {
    uint32_t rem = cursor - p->header_size;
    if (rem < p->tail_size)
      return fail(p, SL_BATCH_NO_ROOM, err, n, "Not enough space (%" PRIu32
                  ") for tail (%" PRIu32 ")", rem, p->tail_size);
    cursor -= p->tail_size;
    rem -= p->tail_size;
    get(rd, cursor, tail, 7);
    sl_batch_record r = {0, sl_load_le32(tail), tail[4], tail[5], tail[6]};
    uint64_t padded = sl_batch_padded(p->version, p->width, r.size);
    if (padded > rem)
      return fail(p, SL_BATCH_NO_ROOM, err, n, "Not enough space (%" PRIu32
                  ") for frame (%" PRIu64 ")", rem, padded);
    if (r.size == 0)
      return fail(p, SL_BATCH_EMPTY, err, n, "Dropping record of size 0 at "
                  "offset %" PRIu32, cursor);
    cursor -= (uint32_t)padded;
    r.offset = cursor;
    if (push(p, &r) != 0)
      return fail(p, SL_BATCH_NOMEM, err, n, "Out of memory for %zu records", p->count);
  }
  for (size_t i = 0, j = p->count; i + 1 < j; i++, j--) {
    sl_batch_record t = p->records[i];
    p->records[i] = p->records[j - 1];
    p->records[j - 1] = t;
  }
  return SL_BATCH_OK;
}

static sl_batch_error parse(sl_batch_parsed *p, int version, const reader *rd,
                            uint32_t len, char *err, size_t n) {
  p->count = 0;
  if (version != 1 && version != 2)
    return fail(p, SL_BATCH_VERSION, err, n, "Unknown batcher version %d", version);
  sl_batch_error e = parse_header(p, version, rd, len, err, n);
  return e != SL_BATCH_OK ? e : parse_records(p, rd, len, err, n);
}

sl_batch_error sl_batch_parse(sl_batch_parsed *out, int version,
                              const uint8_t *bytes, uint32_t len, char *err,
                              size_t n) {
  reader rd = {bytes, NULL};
  return parse(out, version, &rd, len, err, n);
}

sl_batch_error sl_batch_parse_frame(sl_batch_parsed *out, int version,
                                    const sl_frame *f, char *err, size_t n) {
  uint8_t e = sl_frame_get_error(f);
  if (e != 0)
    return fail(out, SL_BATCH_ERRORED, err, n, "Dropping frame due to error: 0x%x",
                (unsigned)e);
  reader rd = {NULL, f};
  return parse(out, version, &rd, sl_frame_get_payload(f), err, n);
}

void sl_batch_parsed_free(sl_batch_parsed *p) {
  free(p->records);
  p->records = NULL;
  p->count = p->cap = 0;
}

/* ---- encoding ---- */

uint32_t sl_batch_put_header(uint8_t *out, int version, uint8_t width,
                             uint8_t sequence) {
  uint32_t h = sl_batch_header_size(version, width);
  memset(out, 0, h);
  out[0] = version == 1 ? (uint8_t)(1u | (unsigned)width << 4) : 2u;
  out[1] = sequence;
  return h;
}

uint32_t sl_batch_put_tail(uint8_t *out, int version, uint8_t width,
                           const sl_batch_record *r) {
  uint32_t t = sl_batch_tail_size(version, width);
  memset(out, 0, t);
  sl_store_le32(out, r->size);
  out[4] = r->dest;
  out[5] = r->first_user;
  out[6] = r->last_user;
  if (version == 1) out[7] = width;
  return t;
}
