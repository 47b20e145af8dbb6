/*
** RSSI segment header codec (streamlua/rssi.h): Rogue's layout, checksum
** and receive checks (rogue-link-reference 2.1, 2.2).
*/
#include <string.h>

#include "streamlua/rssi.h"

#include "../core/bytes.h"

/* Byte 4 of a SYN: version in bits 7:4, bit 3 always 1, CHK in bit 2. */
#define SYN_BYTE4_ONE 0x08u

/* Rogue sends only the low byte of its id 0x12345678, in byte 18. */
#define ROGUE_CONN_ID 0x78000000u

void sl_rssi_default_params(sl_rssi_params *p, uint16_t max_segment) {
  memset(p, 0, sizeof *p);
  p->version = 1;
  p->chk = 1;
  p->max_buffers = 32;
  p->max_segment = max_segment;
  p->retran_tout = 20;
  p->cum_ack_tout = 5;
  p->null_tout = 1000;
  p->max_retran = 15;
  p->max_cum_ack = 2;
  p->unit = 3;
  p->conn_id = ROGUE_CONN_ID;
}

/* The BE16 word sum of bytes 0..len-3. */
static uint32_t word_sum(const uint8_t *hdr, uint32_t len) {
  uint32_t s = 0;
  for (uint32_t i = 0; i + 2 < len; i += 2) s += sl_load_be16(hdr + i);
  return s;
}

uint16_t sl_rssi_checksum(const uint8_t *hdr, uint32_t len) {
  uint32_t s = word_sum(hdr, len);
  s = (s & 0xFFFFu) + (s >> 16);
  return (uint16_t)((s ^ 0xFFFFu) & 0xFFFFu);
}

uint16_t sl_rssi_checksum_full(const uint8_t *hdr, uint32_t len) {
  uint32_t s = word_sum(hdr, len);
  while (s >> 16) s = (s & 0xFFFFu) + (s >> 16);
  return (uint16_t)(s ^ 0xFFFFu);
}

uint32_t sl_rssi_encode(uint8_t *out, const sl_rssi_header *h) {
  int syn = (h->flags & SL_RSSI_SYN) != 0;
  uint32_t len = syn ? SL_RSSI_SYN_HEADER : SL_RSSI_HEADER;
  memset(out, 0, len);
  out[0] = h->flags;
  out[1] = (uint8_t)len;
  out[2] = h->seq;
  out[3] = h->ack;
  if (syn) {
    const sl_rssi_params *p = &h->params;
    out[4] = (uint8_t)((p->version & 0xFu) << 4 | SYN_BYTE4_ONE |
                       (p->chk ? 0x04u : 0u));
    out[5] = p->max_buffers;
    sl_store_be16(out + 6, p->max_segment);
    sl_store_be16(out + 8, p->retran_tout);
    sl_store_be16(out + 10, p->cum_ack_tout);
    sl_store_be16(out + 12, p->null_tout);
    out[14] = p->max_retran;
    out[15] = p->max_cum_ack;
    out[16] = p->max_ooo;
    out[17] = p->unit;
    sl_store_be32(out + 18, p->conn_id);
  }
  sl_store_be16(out + len - 2, sl_rssi_checksum(out, len));
  return len;
}

int sl_rssi_decode(const uint8_t *p, uint32_t n, sl_rssi_header *h) {
  memset(h, 0, sizeof *h);
  if (n < SL_RSSI_HEADER) return SL_RSSI_ESHORT;
  h->flags = p[0];
  h->length = p[1];
  h->seq = p[2];
  h->ack = p[3];
  int syn = (h->flags & SL_RSSI_SYN) != 0;
  if (h->length != (syn ? SL_RSSI_SYN_HEADER : SL_RSSI_HEADER))
    return SL_RSSI_ELENGTH;
  if (n < h->length) return SL_RSSI_ETRUNC;
  h->checksum = sl_load_be16(p + h->length - 2);
  if (syn) {
    sl_rssi_params *q = &h->params;
    q->version = p[4] >> 4;
    q->chk = (p[4] >> 2) & 1u;
    q->max_buffers = p[5];
    q->max_segment = sl_load_be16(p + 6);
    q->retran_tout = sl_load_be16(p + 8);
    q->cum_ack_tout = sl_load_be16(p + 10);
    q->null_tout = sl_load_be16(p + 12);
    q->max_retran = p[14];
    q->max_cum_ack = p[15];
    q->max_ooo = p[16];
    q->unit = p[17];
    q->conn_id = sl_load_be32(p + 18);
  }
  if (h->checksum != sl_rssi_checksum(p, h->length) &&
      h->checksum != sl_rssi_checksum_full(p, h->length))
    return SL_RSSI_ECHECKSUM;
  return SL_RSSI_OK;
}

const char *sl_rssi_decode_str(int code) {
  switch (code) {
    case SL_RSSI_OK: return "ok";
    case SL_RSSI_ESHORT: return "shorter than a header";
    case SL_RSSI_ELENGTH: return "bad header length";
    case SL_RSSI_ETRUNC: return "shorter than its header length";
    case SL_RSSI_ECHECKSUM: return "bad checksum";
    default: return "unknown";
  }
}
