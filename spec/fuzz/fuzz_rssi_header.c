/*
** Fuzzes the RSSI segment header decoder (sl_rssi_decode,
** src/protocols/rssi_header.c). Input: one segment's bytes.
**
** Invariants: a decoded header fits in the input; its length is 24 with
** SYN and 8 without; its stored checksum is Rogue's or the full fold of
** its bytes; encoding the decoded fields gives a header that decodes to
** the same fields with Rogue's checksum; a refusal is one of the codes.
*/
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "streamlua/rssi.h"

static int same_fields(const sl_rssi_header *a, const sl_rssi_header *b) {
  if (a->flags != b->flags || a->length != b->length || a->seq != b->seq ||
      a->ack != b->ack)
    return 0;
  if (!(a->flags & SL_RSSI_SYN)) return 1;
  const sl_rssi_params *p = &a->params, *q = &b->params;
  return p->version == q->version && p->chk == q->chk &&
         p->max_buffers == q->max_buffers && p->max_segment == q->max_segment &&
         p->retran_tout == q->retran_tout && p->cum_ack_tout == q->cum_ack_tout &&
         p->null_tout == q->null_tout && p->max_retran == q->max_retran &&
         p->max_cum_ack == q->max_cum_ack && p->max_ooo == q->max_ooo &&
         p->unit == q->unit && p->conn_id == q->conn_id;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint32_t n = size > 65536 ? 65536 : (uint32_t)size;
  sl_rssi_header h, again;
  int rc = sl_rssi_decode(data, n, &h);
  FUZZ_CHECK(rc <= SL_RSSI_OK && rc >= SL_RSSI_ECHECKSUM);
  FUZZ_CHECK(sl_rssi_decode_str(rc) != NULL);
  if (rc != SL_RSSI_OK) {
    if (n < SL_RSSI_HEADER) FUZZ_CHECK(rc == SL_RSSI_ESHORT);
    return 0;
  }
  FUZZ_CHECK(h.length <= n);
  FUZZ_CHECK(h.length == ((h.flags & SL_RSSI_SYN) ? SL_RSSI_SYN_HEADER
                                                  : SL_RSSI_HEADER));
  FUZZ_CHECK(h.checksum == sl_rssi_checksum(data, h.length) ||
             h.checksum == sl_rssi_checksum_full(data, h.length));
  uint8_t out[SL_RSSI_SYN_HEADER];
  uint32_t len = sl_rssi_encode(out, &h);
  FUZZ_CHECK(len == h.length);
  FUZZ_CHECK(sl_rssi_decode(out, len, &again) == SL_RSSI_OK);
  FUZZ_CHECK(again.checksum == sl_rssi_checksum(out, len));
  FUZZ_CHECK(same_fields(&h, &again));
  /* bytes the encoder does not normalise come back unchanged */
  FUZZ_CHECK(memcmp(out, data, 4) == 0);
  return 0;
}
