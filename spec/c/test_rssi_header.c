/*
** The RSSI header codec against Rogue's captured segments
** (shared/spec/vectors/rssi_*.txt and the RSSI headers of stack_*.txt):
** decoding gives the annotated fields, encoding those fields gives the
** captured bytes, and the checksum's single-fold corner case.
*/
#include <stdlib.h>
#include <string.h>

#include "streamlua/rssi.h"
#include "tt.h"
#include "vectors.h"

static const char *const rssi_files[] = {
    "rssi_syn_client", "rssi_synack_server", "rssi_ack_handshake",
    "rssi_data_stack_v2_3byte", "rssi_data_stack_v1_3byte", "rssi_ack",
    "rssi_nul", "rssi_busy_ack", "rssi_retransmit", "rssi_rst",
    "rssi_synack_server_custom", "rssi_synack_checksum_edge", NULL};

/* Each annotated field of v (when the file has it) against h. */
static void check_fields(const tv_file *v, const sl_rssi_header *h) {
  const char *s;
  long x;
  if ((s = tv_comment(v, NULL, " flags ")) != NULL)
    CHECK_EQ(strtol(s, NULL, 0), h->flags);
  if ((x = tv_field(v, "header length")) >= 0) CHECK_EQ(x, h->length);
  if ((x = tv_field(v, "sequence number")) >= 0) CHECK_EQ(x, h->seq);
  if ((x = tv_field(v, "acknowledge number")) >= 0) CHECK_EQ(x, h->ack);
  if ((s = tv_comment(v, NULL, " checksum 0x")) != NULL)
    CHECK_EQ(strtol(s, NULL, 16), h->checksum);
  if (!(h->flags & SL_RSSI_SYN)) return;
  const sl_rssi_params *p = &h->params;
  if ((s = tv_comment(v, NULL, " version ")) != NULL)
    CHECK_EQ(strtol(s, NULL, 0), p->version);
  CHECK_EQ(tv_field(v, "CHK bit2"), p->chk);
  CHECK_EQ(tv_field(v, "max outstanding segments"), p->max_buffers);
  CHECK_EQ(tv_field(v, "max segment size"), p->max_segment);
  CHECK_EQ(tv_field(v, "retransmission timeout"), p->retran_tout);
  CHECK_EQ(tv_field(v, "cumulative ack timeout"), p->cum_ack_tout);
  CHECK_EQ(tv_field(v, "null timeout"), p->null_tout);
  CHECK_EQ(tv_field(v, "max retransmissions"), p->max_retran);
  CHECK_EQ(tv_field(v, "max cumulative ack "), p->max_cum_ack);
  CHECK_EQ(tv_field(v, "max out-of-sequence"), p->max_ooo);
  CHECK_EQ(tv_field(v, "timeout unit"), p->unit);
  CHECK_EQ(strtoul(tv_comment(v, NULL, "connection id (BE32) = "), NULL, 0),
           p->conn_id);
}

/* Every rssi_* file: decode, fields, encode back. */
static void test_vectors(void) {
  for (int i = 0; rssi_files[i] != NULL; i++) {
    tv_file v;
    CHECK(tv_load(rssi_files[i], &v) == 0);
    if (v.nblocks != 1) {
      CHECK_EQ(v.nblocks, 1);
      tv_free(&v);
      continue;
    }
    const tv_block *b = &v.blocks[0];
    sl_rssi_header h;
    CHECK_EQ(sl_rssi_decode(b->bytes, (uint32_t)b->n, &h), SL_RSSI_OK);
    check_fields(&v, &h);
    uint8_t out[SL_RSSI_SYN_HEADER];
    uint32_t len = sl_rssi_encode(out, &h);
    CHECK_EQ(len, h.length);
    if (memcmp(out, b->bytes, len) != 0) {
      fprintf(stderr, "encode differs for %s\n", rssi_files[i]);
      CHECK(0);
    }
    tv_free(&v);
  }
}

/* Rogue's SYN with the defaults is what sl_rssi_default_params encodes. */
static void test_defaults_encode_syn(void) {
  tv_file v;
  CHECK(tv_load("rssi_syn_client", &v) == 0);
  sl_rssi_header h = {.flags = SL_RSSI_SYN, .seq = 100, .ack = 0};
  sl_rssi_default_params(&h.params, 1464);
  uint8_t out[SL_RSSI_SYN_HEADER];
  CHECK_EQ(sl_rssi_encode(out, &h), 24u);
  CHECK(v.nblocks == 1 && v.blocks[0].n == 24 &&
        memcmp(out, v.blocks[0].bytes, 24) == 0);
  /* the worked example of the reference */
  CHECK_EQ(sl_rssi_checksum(out, 24), 0x6F08);
  tv_free(&v);
}

/* The single-fold corner: Rogue's 0xFFFF; the full fold's 0xFFFE is
** accepted too; any other value is not. */
static void test_checksum_edge(void) {
  tv_file v;
  CHECK(tv_load("rssi_synack_checksum_edge", &v) == 0);
  if (v.nblocks != 1 || v.blocks[0].n != 24) {
    CHECK(0);
    tv_free(&v);
    return;
  }
  uint8_t seg[24];
  memcpy(seg, v.blocks[0].bytes, 24);
  CHECK_EQ(sl_rssi_checksum(seg, 24), 0xFFFF);
  CHECK_EQ(sl_rssi_checksum_full(seg, 24), 0xFFFE);
  sl_rssi_header h;
  CHECK_EQ(sl_rssi_decode(seg, 24, &h), SL_RSSI_OK);
  seg[23] = 0xFE;
  CHECK_EQ(sl_rssi_decode(seg, 24, &h), SL_RSSI_OK);
  seg[23] = 0xFD;
  CHECK_EQ(sl_rssi_decode(seg, 24, &h), SL_RSSI_ECHECKSUM);
  /* elsewhere the two folds agree */
  tv_free(&v);
  CHECK(tv_load("rssi_ack", &v) == 0);
  CHECK_EQ(sl_rssi_checksum(v.blocks[0].bytes, 8),
           sl_rssi_checksum_full(v.blocks[0].bytes, 8));
  CHECK_EQ(sl_rssi_checksum(v.blocks[0].bytes, 8), 0x5A92);
  tv_free(&v);
}

/* The RSSI headers of the 5000-byte frame's datagrams: consecutive
** sequence numbers, same ack, each decodes and encodes back. */
static void test_stack_headers(void) {
  tv_file v;
  CHECK(tv_load("stack_v2_5000byte_segments", &v) == 0);
  const char *s = v.text;
  int count = 0, seq0 = -1;
  while ((s = strstr(s, "rssi [")) != NULL) {
    uint8_t hdr[8];
    s += 6;
    for (int i = 0; i < 8; i++, s += 3) hdr[i] = (uint8_t)strtoul(s, NULL, 16);
    sl_rssi_header h;
    CHECK_EQ(sl_rssi_decode(hdr, 8, &h), SL_RSSI_OK);
    CHECK_EQ(h.flags, SL_RSSI_ACK);
    if (seq0 < 0) seq0 = h.seq;
    CHECK_EQ(h.seq, (uint8_t)(seq0 + count));
    CHECK_EQ(h.ack, 0x67);
    uint8_t out[8];
    sl_rssi_encode(out, &h);
    CHECK(memcmp(out, hdr, 8) == 0);
    count++;
  }
  CHECK_EQ(count, 4);
  tv_free(&v);
}

/* Receive checks in Rogue's order. */
static void test_refusals(void) {
  uint8_t seg[32];
  sl_rssi_header h = {.flags = SL_RSSI_ACK, .seq = 5, .ack = 4};
  sl_rssi_header d;
  sl_rssi_encode(seg, &h);
  CHECK_EQ(sl_rssi_decode(seg, 7, &d), SL_RSSI_ESHORT);
  CHECK_EQ(sl_rssi_decode(seg, 8, &d), SL_RSSI_OK);
  seg[1] = 24;   /* non-SYN with 24 */
  CHECK_EQ(sl_rssi_decode(seg, 32, &d), SL_RSSI_ELENGTH);
  h.flags = SL_RSSI_SYN;
  sl_rssi_default_params(&h.params, 1000);
  sl_rssi_encode(seg, &h);
  CHECK_EQ(sl_rssi_decode(seg, 23, &d), SL_RSSI_ETRUNC);
  CHECK_EQ(sl_rssi_decode(seg, 24, &d), SL_RSSI_OK);
  CHECK_EQ(d.params.max_segment, 1000);
  seg[1] = 8;    /* SYN with 8 */
  CHECK_EQ(sl_rssi_decode(seg, 24, &d), SL_RSSI_ELENGTH);
  seg[1] = 24;
  for (int i = 0; i < 22; i++) {   /* any header byte changed: refused */
    if (i == 0 || i == 1) continue;
    seg[i] ^= 0x10;
    CHECK_EQ(sl_rssi_decode(seg, 24, &d), SL_RSSI_ECHECKSUM);
    seg[i] ^= 0x10;
  }
  CHECK_STR(sl_rssi_decode_str(SL_RSSI_ECHECKSUM), "bad checksum");
}

/* Every sequence number, 255 wrapping to 0, with its ack one behind
** (0's ack is 255), through encode and decode for each kind of segment:
** the fields come back, the checksum is Rogue's and agrees with the full
** fold, and the bytes are the captured ACK's with seq, ack and checksum
** changed. */
static void test_sequence_wrap(void) {
  static const uint8_t kinds[] = {SL_RSSI_ACK, SL_RSSI_ACK | SL_RSSI_NUL,
                                  SL_RSSI_ACK | SL_RSSI_BUSY, SL_RSSI_RST,
                                  SL_RSSI_SYN, SL_RSSI_SYN | SL_RSSI_ACK};
  tv_file v;
  CHECK(tv_load("rssi_ack", &v) == 0);
  int bad = 0, wraps = 0;
  for (size_t k = 0; k < sizeof kinds; k++) {
    uint8_t prev = 0;
    for (int i = 0; i < 512; i++) {              /* twice round */
      uint8_t seq = (uint8_t)i, ack = (uint8_t)(seq - 1);
      sl_rssi_header h = {.flags = kinds[k], .seq = seq, .ack = ack}, d;
      sl_rssi_default_params(&h.params, 1464);
      uint8_t out[SL_RSSI_SYN_HEADER];
      uint32_t n = sl_rssi_encode(out, &h);
      bad += n != ((kinds[k] & SL_RSSI_SYN) ? 24u : 8u);
      bad += sl_rssi_decode(out, n, &d) != SL_RSSI_OK;
      bad += d.seq != seq || d.ack != ack || d.flags != kinds[k] || d.length != n;
      bad += d.checksum != sl_rssi_checksum(out, n);
      bad += sl_rssi_checksum(out, n) != sl_rssi_checksum_full(out, n) &&
             sl_rssi_checksum(out, n) != 0xFFFF;
      if (i > 0 && seq == 0 && prev == 255) wraps++;
      prev = seq;
      if (kinds[k] == SL_RSSI_ACK && v.nblocks == 1 && v.blocks[0].n == 8) {
        uint8_t want[8];
        memcpy(want, v.blocks[0].bytes, 8);
        want[2] = seq;
        want[3] = ack;
        uint16_t sum = sl_rssi_checksum(want, 8);
        want[6] = (uint8_t)(sum >> 8);
        want[7] = (uint8_t)sum;
        bad += memcmp(out, want, 8) != 0;
      }
    }
  }
  CHECK_EQ(bad, 0);
  CHECK_EQ(wraps, (int)sizeof kinds);
  tv_free(&v);
}

static const struct tt_case cases[] = {
    {"vectors", test_vectors},
    {"defaults_encode_syn", test_defaults_encode_syn},
    {"checksum_edge", test_checksum_edge},
    {"stack_headers", test_stack_headers},
    {"refusals", test_refusals},
    {"sequence_wrap", test_sequence_wrap},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
