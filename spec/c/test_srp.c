/* SRPv3: request encoding, response decoding, tid matching, footer bits. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/master.h"
#include "streamlua/memory.h"
#include "streamlua/slave.h"
#include "streamlua/srp.h"
#include "streamlua/status.h"
#include "support.h"
#include "tt.h"

static const uint8_t DATA8[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};

/* The example frames of rogue-reference 6.1. */
static const uint8_t WRITE1[28] = {
    0x03, 0x01, 0x00, 0x0A, 0x01, 0x00, 0x00, 0x00, 0x80, 0x67, 0x45, 0x23, 0x01, 0x00,
    0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
static const uint8_t READ2[20] = {0x03, 0x00, 0x00, 0x0A, 0x02, 0x00, 0x00,
                                  0x00, 0x80, 0x67, 0x45, 0x23, 0x01, 0x00,
                                  0x00, 0x00, 0x07, 0x00, 0x00, 0x00};
static const uint8_t POST4[24] = {0x03, 0x02, 0x00, 0x0A, 0x04, 0x00, 0x00, 0x00,
                                  0x84, 0x67, 0x45, 0x23, 0x01, 0x00, 0x00, 0x00,
                                  0x03, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44};

static void test_encode(void) {
  uint8_t out[SL_SRPV3_HEADER + SL_SRPV3_MAX_ACCESS];
  CHECK_EQ(sl_srpv3_opcode(SL_MEM_READ), SL_SRPV3_OP_READ);
  CHECK_EQ(sl_srpv3_opcode(SL_MEM_VERIFY), SL_SRPV3_OP_READ);
  CHECK_EQ(sl_srpv3_opcode(SL_MEM_WRITE), SL_SRPV3_OP_WRITE);
  CHECK_EQ(sl_srpv3_opcode(SL_MEM_POST), SL_SRPV3_OP_POST);
  CHECK_EQ(sl_srpv3_opcode(9), -1);
  CHECK_EQ(sl_srpv3_encode(out, SL_SRPV3_OP_WRITE, 1, 0x123456780ull, 8, 0x0A, DATA8), 28);
  CHECK(memcmp(out, WRITE1, 28) == 0);
  CHECK_EQ(sl_srpv3_encode(out, SL_SRPV3_OP_READ, 2, 0x123456780ull, 8, 0x0A, NULL), 20);
  CHECK(memcmp(out, READ2, 20) == 0);
  CHECK_EQ(sl_srpv3_encode(out, SL_SRPV3_OP_POST, 4, 0x123456784ull, 4, 0x0A, DATA8), 24);
  CHECK(memcmp(out, POST4, 24) == 0);
  uint32_t hdr[5];
  sl_srpv3_header(hdr, SL_SRPV3_OP_READ, 3, 0, 4096, 0x0A);
  CHECK_EQ(hdr[4], 0xFFF);
  sl_srpv3_header(hdr, SL_SRPV3_OP_WRITE, 3, 0, 4, 0x80);
  CHECK_EQ(hdr[0], 0x80000103u);
}

static void test_check(void) {
  char e[128];
  CHECK_EQ(sl_srpv3_check(0x1000, 4, e, sizeof e), 0);
  CHECK_EQ(sl_srpv3_check(0x1000, 4096, e, sizeof e), 0);
  CHECK_EQ(sl_srpv3_check(2, 4, e, sizeof e), -1);
  CHECK_STR(e, "Transaction address 0x2 is not aligned to min size 4");
  CHECK_EQ(sl_srpv3_check(0, 6, e, sizeof e), -1);
  CHECK_STR(e, "Transaction size 0x6 is not aligned to min size 4");
  CHECK_EQ(sl_srpv3_check(0, 0, e, sizeof e), -1);
  CHECK_STR(e, "Transaction size 0x0 is not aligned to min size 4");
  CHECK_EQ(sl_srpv3_check(0, 4100, e, sizeof e), -1);
  CHECK_STR(e, "Transaction size 4100 exceeds max size 4096");
}

static void test_footer(void) {
  char e[160];
  sl_srpv3_footer_text(0x100, e, sizeof e);
  CHECK_STR(e, "FPGA register bus timeout detected in hardware");
  sl_srpv3_footer_text(0x2000, e, sizeof e);
  CHECK_STR(e, "FPGA register bus lockup detected in hardware. Power cycle required.");
  sl_srpv3_footer_text(0x2100, e, sizeof e);
  CHECK_STR(e, "FPGA register bus lockup detected in hardware. Power cycle required.");
  sl_srpv3_footer_text(0x2, e, sizeof e);
  CHECK_STR(e, "Non zero status message returned on fpga register bus in hardware: 0x2");
  sl_srpv3_footer_text(0x400, e, sizeof e);
  CHECK_STR(e, "Non zero status message returned on fpga register bus in hardware: 0x400");
}

static void test_decode(void) {
  uint8_t resp[32];
  uint32_t expect[5], hdr[5], footer;
  char e[256];
  sl_srpv3_header(expect, SL_SRPV3_OP_READ, 7, 0x100, 8, 0x0A);
  sl_srpv3_encode(resp, SL_SRPV3_OP_READ, 7, 0x100, 8, 0x0A, NULL);
  memcpy(resp + 20, DATA8, 8);
  memset(resp + 28, 0, 4);
  CHECK_EQ(sl_srpv3_parse(resp, 23, hdr, &footer), -1);
  CHECK_EQ(sl_srpv3_parse(resp, 32, hdr, &footer), 0);
  CHECK_EQ(hdr[1], 7);
  CHECK_EQ(footer, 0);
  CHECK_EQ(sl_srpv3_judge(expect, 8, hdr, footer, 32, e, sizeof e), 0);
  hdr[0] |= 0x3C00;   /* capability flags: ignored */
  CHECK_EQ(sl_srpv3_judge(expect, 8, hdr, footer, 32, e, sizeof e), 0);
  hdr[0] |= 0x4000;   /* bit 14: not ignored */
  CHECK_EQ(sl_srpv3_judge(expect, 8, hdr, footer, 32, e, sizeof e), -1);
  CHECK_STR(e, "Received SRPV3 message did not match expected protocol. id=7, "
               "addr=0x0000000000000100");
  hdr[0] = expect[0];
  hdr[4] = 3;
  CHECK_EQ(sl_srpv3_judge(expect, 8, hdr, footer, 32, e, sizeof e), -1);
  hdr[4] = 7;
  CHECK_EQ(sl_srpv3_judge(expect, 8, hdr, 0x100, 32, e, sizeof e), -1);
  CHECK_STR(e, "FPGA register bus timeout detected in hardware");
  /* footer before length: a short error response says what the footer says */
  CHECK_EQ(sl_srpv3_judge(expect, 8, hdr, 0x400, 24, e, sizeof e), -1);
  CHECK_STR(e, "Non zero status message returned on fpga register bus in hardware: 0x400");
  CHECK_EQ(sl_srpv3_judge(expect, 8, hdr, 0, 24, e, sizeof e), -1);
  CHECK_STR(e, "Received SRPV3 message had a header size mismatch. id=7, frameSize=24, "
               "expectedSize=32, tranSize=8, headerSize=8");
  CHECK_EQ(sl_srpv3_judge(expect, 8, hdr, 0, 36, e, sizeof e), -1);
}

/* ---- what the node tests sent and received ---- */

/* The payload of request i the recorder kept (at most 8 are). */
static const uint8_t *sent(ts_rec *r, long i) {
  ts_got g;
  return ts_rec_frame(r, i, &g) ? g.data : (const uint8_t *)"";
}

static void send_bytes(sl_master *m, const uint8_t *b, uint32_t n) {
  ts_send(m, b, n, 0, 0, 0);
}

/* Two reads in flight, answered in reverse order: each gets its own data. */
static void test_tid_matching(void) {
  sl_object *srp = sl_srpv3_object(sl_srpv3_new(NULL));
  ts_rec *cap = ts_rec_new(8);
  sl_object *src = sl_master_new(NULL);
  CHECK(srp != NULL);
  sl_master_add_slave(srp->master, &cap->slave);
  sl_master_add_slave(src->master, srp->slave);
  sl_mem_master mm;
  sl_mem_master_init(&mm, NULL);
  sl_mem_master_set_slave(&mm, srp);
  sl_mem_master_set_timeout(&mm, 200000);
  sl_transaction *a = sl_mem_master_request(&mm, 0x10, 4, NULL, SL_MEM_READ, NULL, NULL);
  sl_transaction *b = sl_mem_master_request(&mm, 0x20, 4, NULL, SL_MEM_READ, NULL, NULL);
  CHECK_EQ(ts_rec_count(cap), 2);
  CHECK_EQ(sl_srpv3_pending(sl_srpv3_from_object(srp)), 2);
  uint8_t r[28];
  memcpy(r, sent(cap, 1), 20);
  memcpy(r + 20, "bbbb\0\0\0\0", 8);
  send_bytes(src->master, r, 28);
  memcpy(r, sent(cap, 0), 20);
  memcpy(r + 20, "aaaa\0\0\0\0", 8);
  send_bytes(src->master, r, 28);
  CHECK_EQ(sl_mem_master_wait(a), SL_OK);
  CHECK_EQ(sl_mem_master_wait(b), SL_OK);
  CHECK(memcmp(sl_transaction_data(a), "aaaa", 4) == 0);
  CHECK(memcmp(sl_transaction_data(b), "bbbb", 4) == 0);
  /* a duplicate, an unknown id, a short frame: dropped and counted */
  send_bytes(src->master, r, 28);
  r[4] ^= 0x55;
  send_bytes(src->master, r, 28);
  send_bytes(src->master, r, 23);
  CHECK_EQ(ts_counter(srp, "unknown"), 2);
  CHECK_EQ(ts_counter(srp, "short"), 1);
  CHECK_EQ(ts_counter(srp, "drops"), 3);
  /* a footer error fails the transaction with its text */
  sl_transaction *c = sl_mem_master_request(&mm, 0x30, 4, NULL, SL_MEM_READ, NULL, NULL);
  memcpy(r, sent(cap, 2), 20);
  memcpy(r + 20, "cccc\0\x01\0\0", 8);
  send_bytes(src->master, r, 28);
  CHECK_EQ(sl_mem_master_wait(c), SL_EINVAL);
  char e[256];
  sl_transaction_get_error(c, e, sizeof e);
  CHECK_STR(e, "FPGA register bus timeout detected in hardware");
  /* refused before sending */
  sl_transaction *d = sl_mem_master_request(&mm, 0x31, 4, NULL, SL_MEM_READ, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(d), SL_EINVAL);
  CHECK_EQ(ts_rec_count(cap), 3);
  sl_transaction_unref(a);
  sl_transaction_unref(b);
  sl_transaction_unref(c);
  sl_transaction_unref(d);
  sl_mem_master_fini(&mm);
  sl_master_clear_slaves(srp->master);
  sl_object_unref(src);
  sl_object_unref(ts_rec_object(cap));
  sl_object_unref(srp);
}

/* SrpV3 against SrpV3Emulation, in C. */
static void test_round_trip(void) {
  sl_object *srp = sl_srpv3_object(sl_srpv3_new(NULL));
  sl_object *emu = sl_srpv3_emulation_object(sl_srpv3_emulation_new(NULL));
  CHECK(srp != NULL && emu != NULL);
  sl_master_add_slave(srp->master, emu->slave);
  sl_master_add_slave(emu->master, srp->slave);
  sl_mem_master mm;
  sl_mem_master_init(&mm, NULL);
  sl_mem_master_set_slave(&mm, srp);
  uint8_t buf[4096];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 31 + 7);
  sl_transaction *w = sl_mem_master_request(&mm, 0x100000FFCull, 4096, buf, SL_MEM_WRITE, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(w), SL_OK);
  sl_transaction *r = sl_mem_master_request(&mm, 0x100000FFCull, 4096, NULL, SL_MEM_READ, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(r), SL_OK);
  CHECK(memcmp(sl_transaction_data(r), buf, sizeof buf) == 0);
  sl_transaction *z = sl_mem_master_request(&mm, 0x9000, 8, NULL, SL_MEM_READ, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(z), SL_OK);
  CHECK(memcmp(sl_transaction_data(z), "\0\0\0\0\0\0\0\0", 8) == 0);
  sl_transaction_unref(w);
  sl_transaction_unref(r);
  sl_transaction_unref(z);
  sl_mem_master_fini(&mm);
  sl_object_stop(emu);
  sl_master_clear_slaves(srp->master);
  sl_master_clear_slaves(emu->master);
  sl_object_unref(emu);
  sl_object_unref(srp);
}

static const struct tt_case cases[] = {
    {"encode", test_encode},
    {"check", test_check},
    {"footer", test_footer},
    {"decode", test_decode},
    {"tid_matching", test_tid_matching},
    {"round_trip", test_round_trip},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
