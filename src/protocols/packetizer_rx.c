/*
** Packetizer receive: segments in (the transport's accept_frame), frames
** out to application(dest), with Rogue's checks in Rogue's order
** (rogue-link-reference 3.3, 3.4, 3.6). A segment's buffer is moved into
** the frame being built when the caller holds the only reference to the
** segment; otherwise its payload is copied.
*/
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "packetizer_internal.h"

#include "../core/bytes.h"
#include "../core/crc32.h"

/* Counts a dropped segment under `why` and logs the reason. */
static void drop(sl_packetizer *p, atomic_uint_least64_t *why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void drop(sl_packetizer *p, atomic_uint_least64_t *why, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  pk_bump(&p->drops);
  pk_bump(why);
  pk_bump(&p->transport->dropped);
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sl_log_write(p->log, SL_LOG_ERROR, "%s", msg);   /* a loss: seen by default */
}

/* Forgets the slot's frame; caller holds rx_mu. */
static void slot_discard(sl_packetizer *p, pk_slot *s) {
  if (s->f == NULL) return;
  sl_frame_unref(s->f);
  p->pending -= s->bytes;
  s->f = NULL;
  s->bytes = 0;
  s->next_seg = 0;
}

/* Opens a frame in the slot; 0, or -1 when out of memory. */
static int slot_open(pk_slot *s, uint8_t dest, uint8_t first_user) {
  s->f = sl_frame_new();
  if (s->f == NULL) return -1;
  s->dest = dest;
  s->first_user = first_user;
  s->bytes = 0;
  s->next_seg = 0;
  s->crc = 0;
  return 0;
}

/*
** Adds len payload bytes at offset off of the segment's buffer b to the
** slot's frame: the buffer itself when the segment is ours alone, else a
** copy. Returns 0, -1 over the pending bound, -2 out of memory.
*/
static int slot_append(sl_packetizer *p, pk_slot *s, sl_frame *seg,
                       sl_buffer *b, uint32_t off, uint32_t len) {
  if (p->pending + len > p->max_pending) return -1;
  if (len == 0) return 0;
  if (sl_frame_refcount(seg) == 1) {
    sl_buffer_adjust_header(b, off);
    sl_buffer_set_payload(b, len);
    if (sl_frame_append_frame(s->f, seg) != SL_OK) return -2;
  } else {
    uint32_t raw;
    sl_buffer *nb = sl_pool_alloc_buffer(p->transport->slave.pool, len, &raw);
    if (nb == NULL) return -2;
    memcpy(sl_buffer_begin(nb), sl_buffer_begin(b) + off, len);
    sl_buffer_set_payload(nb, len);
    if (sl_frame_append_buffer(s->f, nb) != SL_OK) return -2;
    pk_bump(&p->copied);
  }
  s->bytes += len;
  p->pending += len;
  return 0;
}

/* Appends, or drops the segment and the slot's frame when that fails.
** Returns 0 when appended. */
static int append_or_drop(sl_packetizer *p, pk_slot *s, sl_frame *seg,
                          sl_buffer *b, uint32_t off, uint32_t len) {
  int rc = slot_append(p, s, seg, b, off, len);
  if (rc == 0) return 0;
  if (rc == -1)
    drop(p, &p->drop_limit, "Dropping frame: dest=%u would hold %" PRIu64
         " bytes, over the bound of %" PRIu64 " bytes for unfinished frames",
         (unsigned)s->dest, p->pending + len, p->max_pending);
  else
    drop(p, &p->drop_limit, "Dropping frame: dest=%u: out of memory", (unsigned)s->dest);
  slot_discard(p, s);
  return -1;
}

/* The slot's frame is complete: returns it (the caller's reference) with
** its metadata set, and empties the slot. Caller holds rx_mu. */
static sl_frame *slot_finish(sl_packetizer *p, pk_slot *s, uint8_t last_user) {
  sl_frame *f = s->f;
  sl_frame_set_flags(f, (uint16_t)(s->first_user | last_user << 8));
  if (p->ssi && (last_user & 0x01u)) sl_frame_set_error(f, 0x80);
  p->pending -= s->bytes;
  s->f = NULL;
  s->bytes = 0;
  s->next_seg = 0;
  return f;
}

/* Version 1 (reference 3.3): one slot for every dest. d/size: the whole
** segment. Returns a finished frame, or NULL. */
static sl_frame *rx_v1(sl_packetizer *p, sl_frame *seg, sl_buffer *b,
                       const uint8_t *d, uint32_t size, uint8_t *dest) {
  uint32_t fnum = (uint32_t)(d[0] >> 4) | (uint32_t)d[1] << 4;
  uint32_t segn = (uint32_t)d[2] | (uint32_t)d[3] << 8 | (uint32_t)d[4] << 16;
  uint8_t tail = d[size - 1];
  pk_slot *s = &p->slots[0];
  if (segn > 0 && (s->f == NULL || fnum != s->frame_num || segn != s->next_seg)) {
    drop(p, &p->drop_state, "Dropping frame due to state mismatch: expIdx=%" PRIu32
         ", gotIdx=%" PRIu32 ", expCount=%" PRIu32 ", gotCount=%" PRIu32,
         s->frame_num, fnum, s->next_seg, segn);
    slot_discard(p, s);
    return NULL;
  }
  if (segn == 0) {
    if (s->f != NULL) {   /* not a drop in Rogue's count: only logged */
      pk_bump(&p->replaced);
      sl_log_write(p->log, SL_LOG_ERROR, "Dropping frame due to new incoming "
                   "frame: expIdx=%" PRIu32 ", expCount=%" PRIu32, s->frame_num,
                   s->next_seg);
      slot_discard(p, s);
    }
    if (slot_open(s, d[5], d[7]) != 0) {
      drop(p, &p->drop_limit, "Dropping frame: out of memory");
      return NULL;
    }
    s->frame_num = fnum;
  }
  if (append_or_drop(p, s, seg, b, SL_PACK_V1_HEADER,
                     size - SL_PACK_V1_HEADER - SL_PACK_V1_TAIL) != 0)
    return NULL;
  s->next_seg = (segn + 1) & 0xFFFFFFu;
  if (!(tail & 0x80u)) return NULL;
  *dest = s->dest;
  return slot_finish(p, s, tail & 0x7Fu);
}

/* Version 2 (reference 3.4): one slot per dest, CRC chained per dest. */
static sl_frame *rx_v2(sl_packetizer *p, sl_frame *seg, sl_buffer *b,
                       const uint8_t *d, uint32_t size, uint8_t *dest) {
  const uint8_t *tail = d + size - SL_PACK_V2_TAIL;
  uint32_t segn = sl_load_le16(d + 4);
  int sof = d[7] >> 7, eof = tail[1] & 1;
  uint8_t last_user = tail[0];
  pk_slot *s = &p->slots[d[2]];
  int crc_err = 0;
  uint32_t crc = 0;
  if (p->ib_crc) {   /* always the FULL mode, whatever the header says */
    crc = sl_crc32(sof ? 0 : s->crc, d, size - 4);
    crc_err = crc != sl_load_be32(tail + 4);
  }
  int expect_new = s->f == NULL;
  int state_err = sof != expect_new || segn != s->next_seg;
  if (state_err || crc_err) {
    drop(p, state_err ? &p->drop_state : &p->drop_crc, "Dropping frame: gotDest=%u, "
         "gotSof=%d, crcErr=%d, expCount=%" PRIu32 ", gotCount=%" PRIu32,
         (unsigned)d[2], sof, crc_err, s->next_seg, segn);
    slot_discard(p, s);
    return NULL;
  }
  if (sof && slot_open(s, d[2], d[1]) != 0) {
    drop(p, &p->drop_limit, "Dropping frame: out of memory");
    return NULL;
  }
  /* the last word holds `count` bytes; a count over 8 is taken as 8 */
  uint32_t count = tail[2] > 8 ? 8 : tail[2];
  uint32_t len = size - SL_PACK_V2_HEADER - SL_PACK_V2_TAIL - 8 + count;
  if (append_or_drop(p, s, seg, b, SL_PACK_V2_HEADER, len) != 0) return NULL;
  s->next_seg = (segn + 1) & 0xFFFFu;
  s->crc = crc;
  if (!eof) return NULL;
  *dest = s->dest;
  return slot_finish(p, s, last_user);
}

/* Hands a finished frame to application(dest), outside every lock. */
static void deliver(sl_packetizer *p, uint8_t dest, sl_frame *f) {
  pk_edge *app = atomic_load_explicit(&p->apps[dest], memory_order_acquire);
  if (app == NULL) {
    pk_bump(&p->no_app);   /* discarded, as Rogue: no application */
    sl_frame_unref(f);
    return;
  }
  pk_bump(&p->rx_frames);
  pk_bump(&app->rx_frames);
  pk_add(&app->rx_bytes, sl_frame_get_payload(f));
  sl_master_send_frame(&app->master, f);
  sl_frame_unref(f);
}

/* The contents checks of both versions; 0 when the segment may be parsed. */
static int check_contents(sl_packetizer *p, sl_frame *seg, uint32_t size,
                          size_t nbuf, uint8_t ver) {
  uint32_t min = p->version == 1 ? SL_PACK_V1_HEADER + SL_PACK_V1_TAIL + 1
                                 : SL_PACK_V2_HEADER + SL_PACK_V2_TAIL + 8;
  int bad = sl_frame_get_error(seg) != 0 || nbuf > 1 || size < min ||
            ver != (p->version == 1 ? 0 : 2) || (p->version == 2 && size % 8 != 0);
  if (!bad) return 0;
  drop(p, &p->drop_contents, "Dropping frame due to contents: error=0x%x, "
       "payload=%" PRIu32 ", buffers=%zu, Version=0x%x",
       (unsigned)sl_frame_get_error(seg), size, nbuf, (unsigned)ver);
  return -1;
}

void pk_rx_segment(sl_packetizer *p, sl_frame *seg) {
  sl_frame *done = NULL;
  uint8_t dest = 0;
  pk_bump(&p->rx_segments);
  sl_frame_lock(seg);
  size_t nbuf = sl_frame_buffer_count(seg);
  uint32_t size = sl_frame_get_payload(seg);
  pk_bump(&p->transport->rx_frames);
  pk_add(&p->transport->rx_bytes, size);
  if (nbuf == 0) {
    sl_frame_unlock(seg);
    sl_log_write(p->log, SL_LOG_WARNING, "Empty frame received on transport input");
    return;
  }
  sl_buffer *b = sl_frame_buffer(seg, 0);
  const uint8_t *d = sl_buffer_begin(b);
  uint8_t ver = sl_buffer_get_payload(b) > 0 ? d[0] & 0x0Fu : 0xFFu;
  pthread_mutex_lock(&p->rx_mu);
  if (check_contents(p, seg, size, nbuf, ver) == 0)
    done = p->version == 1 ? rx_v1(p, seg, b, d, size, &dest)
                           : rx_v2(p, seg, b, d, size, &dest);
  pthread_mutex_unlock(&p->rx_mu);
  sl_frame_unlock(seg);
  if (done != NULL) deliver(p, dest, done);
}

size_t pk_rx_clear(sl_packetizer *p, int why) {
  size_t n = 0, nslots = p->version == 1 ? 1 : SL_PACK_DESTS;
  pthread_mutex_lock(&p->rx_mu);
  for (size_t i = 0; i < nslots; i++) {
    pk_slot *s = &p->slots[i];
    if (s->f == NULL) continue;
    n++;
    if (why)
      drop(p, &p->drop_reset, "Dropping frame: dest=%u, the transport was reset "
           "with %" PRIu32 " segment(s) and %" PRIu32 " byte(s) of it received",
           (unsigned)s->dest, s->next_seg, s->bytes);
    slot_discard(p, s);
  }
  pthread_mutex_unlock(&p->rx_mu);
  return n;
}
