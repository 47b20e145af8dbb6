/*
** RSSI: the Reliable SLAC Streaming Interface, Rogue's reliable transport
** over UDP (spec/rogue-link-reference.md section 2), byte-compatible with
** Rogue v6.15 and SLAC firmware.
**
** Part one, the segment header codec: pure functions on the caller's
** bytes, any thread. Every segment starts with an 8-byte header (24 bytes
** when SYN is set; the extra bytes carry the connection parameters), all
** multi-byte fields big-endian, the last two bytes a checksum over the
** rest of the header (data is not covered).
**
** Part two, the link (sl_rssi): a Client or Server with two stream edges,
** `transport` (lower: connect to UDP) and `application` (upper: the
** packetizer or the user). See the comment above sl_rssi_new.
*/
#ifndef STREAMLUA_RSSI_H_INCLUDED_
#define STREAMLUA_RSSI_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

#define SL_RSSI_HEADER 8u        /* every segment but SYN */
#define SL_RSSI_SYN_HEADER 24u   /* SYN segments */

/* Byte 0 of the header. Bits 2 and 1 are never set and are ignored. */
enum {
  SL_RSSI_SYN = 0x80,
  SL_RSSI_ACK = 0x40,
  SL_RSSI_EACK = 0x20,   /* never sent; ignored on receive */
  SL_RSSI_RST = 0x10,
  SL_RSSI_NUL = 0x08,
  SL_RSSI_BUSY = 0x01
};

/* The connection parameters a SYN carries (bytes 4..21). Times are in
** units of 10^-unit s; this implementation sends unit 3 and, as Rogue,
** takes every received value as milliseconds. */
typedef struct sl_rssi_params {
  uint8_t version;        /* byte 4 bits 7:4 (1) */
  uint8_t chk;            /* byte 4 bit 2: checksum enabled (1) */
  uint8_t max_buffers;    /* byte 5: max outstanding segments */
  uint16_t max_segment;   /* bytes 6-7: max segment size, header included */
  uint16_t retran_tout;   /* bytes 8-9 */
  uint16_t cum_ack_tout;  /* bytes 10-11 */
  uint16_t null_tout;     /* bytes 12-13 */
  uint8_t max_retran;     /* byte 14: transmissions of one segment */
  uint8_t max_cum_ack;    /* byte 15 */
  uint8_t max_ooo;        /* byte 16: firmware field, sent 0, ignored */
  uint8_t unit;           /* byte 17 */
  uint32_t conn_id;       /* bytes 18-21 (BE32) */
} sl_rssi_params;

/* A decoded header. `params` is meaningful only with SL_RSSI_SYN. */
typedef struct sl_rssi_header {
  uint8_t flags;          /* byte 0 */
  uint8_t length;         /* byte 1: 8 or 24 */
  uint8_t seq;            /* byte 2 */
  uint8_t ack;            /* byte 3 */
  uint16_t checksum;      /* last two header bytes (BE16) */
  sl_rssi_params params;
} sl_rssi_header;

/* Rogue's defaults (loc... values of a fresh link) for a max segment size. */
void sl_rssi_default_params(sl_rssi_params *p, uint16_t max_segment);

/* The checksum of a header of len bytes (8 or 24) as Rogue computes it:
** the bytes 0..len-3 summed as BE16 words, the carry folded once, then
** inverted. When the once-folded sum is exactly 0x10000 this gives 0xFFFF
** where a full ones-complement fold (firmware) gives 0xFFFE. */
uint16_t sl_rssi_checksum(const uint8_t *hdr, uint32_t len);
/* The full ones-complement fold (firmware's value). */
uint16_t sl_rssi_checksum_full(const uint8_t *hdr, uint32_t len);

/* Writes h's header into out (8 or 24 bytes, by SL_RSSI_SYN in h->flags)
** with its length byte and checksum (Rogue's); h->length and h->checksum
** are not read. Bytes 4-5 of a non-SYN header are 0. Returns the length. */
uint32_t sl_rssi_encode(uint8_t *out, const sl_rssi_header *h);

/* Why a segment is refused, in the order they are checked. */
enum {
  SL_RSSI_OK = 0,
  SL_RSSI_ESHORT = -1,    /* fewer than 8 bytes */
  SL_RSSI_ELENGTH = -2,   /* byte 1 is not 24 with SYN, 8 without */
  SL_RSSI_ETRUNC = -3,    /* fewer bytes than byte 1 says */
  SL_RSSI_ECHECKSUM = -4  /* neither Rogue's checksum nor the full fold */
};

/* Decodes and checks the header at the start of n bytes. Returns
** SL_RSSI_OK with *h filled, or an SL_RSSI_E... code (h partly filled).
** The checksum is accepted in Rogue's form and in the full fold (they
** differ in one corner case only). Version, CHK, unit and connection id
** are not checked (Rogue does not). */
int sl_rssi_decode(const uint8_t *p, uint32_t n, sl_rssi_header *h);

/* A short text for an SL_RSSI_E... code. */
const char *sl_rssi_decode_str(int code);

#pragma GCC visibility pop

#endif
