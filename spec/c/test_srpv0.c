/* SRPv0: the srpv0_* vectors (requests encoded, responses judged), the
** node's matching, drops, status errors and stop. */
#include <stdlib.h>
#include <string.h>

#include "streamlua/master.h"
#include "streamlua/memory.h"
#include "streamlua/slave.h"
#include "streamlua/srp.h"
#include "streamlua/status.h"
#include "support.h"
#include "tt.h"
#include "vectors.h"

#include "../../src/core/bytes.h"

static const uint8_t DATA8[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};

/* The vector's bytes into buf (at most cap); their count, 0 if unread. */
static uint32_t vector(const char *name, uint8_t *buf, uint32_t cap) {
  tv_file v;
  if (!CHECK(tv_load(name, &v) == 0)) return 0;
  uint32_t n = (uint32_t)v.blocks[0].n;
  if (!CHECK(n <= cap)) n = 0;
  memcpy(buf, v.blocks[0].bytes, n);
  tv_free(&v);
  return n;
}

static void test_encode_vectors(void) {
  uint8_t want[64], out[64];
  uint32_t n = vector("srpv0_write_request", want, sizeof want);
  CHECK_EQ(sl_srpv0_encode(out, 1, 1, 0x1000, 8, DATA8), n);
  CHECK(n == 20 && memcmp(out, want, n) == 0);
  n = vector("srpv0_read_request", want, sizeof want);
  CHECK_EQ(sl_srpv0_encode(out, 0, 2, 0x1000, 8, NULL), n);
  CHECK(n == 16 && memcmp(out, want, n) == 0);
  /* address bits above 31 are lost, as Rogue loses them */
  CHECK_EQ(sl_srpv0_word1(1, 0x100001000ull), 0x40000400u);
  CHECK_EQ(sl_srpv0_word1(0, 0xFFFFFFFCull), 0x3FFFFFFFu);
  char e[128];
  CHECK_EQ(sl_srpv0_check(0x1000, 2048, e, sizeof e), 0);
  CHECK_EQ(sl_srpv0_check(0x1000, 2052, e, sizeof e), -1);
  CHECK_STR(e, "Transaction size 2052 exceeds max size 2048");
  CHECK_EQ(sl_srpv0_check(6, 4, e, sizeof e), -1);
  CHECK_STR(e, "Transaction address 0x6 is not aligned to min size 4");
  CHECK_EQ(sl_srpv0_check(0, 2, e, sizeof e), -1);
  CHECK_STR(e, "Transaction size 0x2 is not aligned to min size 4");
}

static void test_judge_vectors(void) {
  uint8_t r[64];
  char e[160];
  uint32_t n = vector("srpv0_read_response", r, sizeof r);
  CHECK_EQ(n, 20);
  CHECK_EQ(sl_srpv0_judge(2, 0x400, 8, r, sl_load_le32(r + n - 4), n, e, sizeof e),
           SL_SRPV0_OK);
  static const uint8_t A[8] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};
  CHECK(memcmp(r + 8, A, 8) == 0);
  n = vector("srpv0_write_response", r, sizeof r);
  CHECK_EQ(sl_srpv0_judge(1, 0x40000400, 8, r, 0, n, e, sizeof e), SL_SRPV0_OK);
  CHECK_EQ(sl_srpv0_judge(1, 0x40000400, 4, r, 0, n, e, sizeof e), SL_SRPV0_BAD_LENGTH);
  CHECK_STR(e, "Bad receive length for 1 exp=16, got=20");
  CHECK_EQ(sl_srpv0_judge(1, 0x400, 8, r, 0, n, e, sizeof e), SL_SRPV0_BAD_HEADER);
  CHECK_STR(e, "Bad header for 1");
  CHECK_EQ(sl_srpv0_judge(3, 0x40000400, 8, r, 0, n, e, sizeof e), SL_SRPV0_BAD_HEADER);
  CHECK_EQ(sl_srpv0_judge(1, 0x40000400, 8, r, 0x30000, n, e, sizeof e), SL_SRPV0_STATUS);
  CHECK_STR(e, "Axi bus timeout detected in hardware");
  CHECK_EQ(sl_srpv0_judge(1, 0x40000400, 8, r, 0x10000, n, e, sizeof e), SL_SRPV0_STATUS);
  CHECK_STR(e, "Axi bus returned fail status in hardware");
  CHECK_EQ(sl_srpv0_judge(1, 0x40000400, 8, r, 0x1F, n, e, sizeof e), SL_SRPV0_STATUS);
  CHECK_STR(e, "Non zero status message returned on axi bus in hardware: 0x1f");
}

/* master -> SrpV0 -> recorder, and a source for responses. */
typedef struct rig {
  sl_object *srp, *src;
  ts_rec *cap;
  sl_mem_master mm;
} rig;

static void rig_init(rig *g, uint64_t timeout_us) {
  g->srp = sl_srpv0_object(sl_srpv0_new(NULL));
  g->cap = ts_rec_new(16);
  g->src = sl_master_new(NULL);
  sl_master_add_slave(g->srp->master, &g->cap->slave);
  sl_master_add_slave(g->src->master, g->srp->slave);
  sl_mem_master_init(&g->mm, NULL);
  sl_mem_master_set_slave(&g->mm, g->srp);
  sl_mem_master_set_timeout(&g->mm, timeout_us);
}

static void rig_fini(rig *g) {
  sl_mem_master_fini(&g->mm);
  sl_object_stop(g->srp);
  sl_master_clear_slaves(g->srp->master);
  sl_object_unref(g->src);
  sl_object_unref(ts_rec_object(g->cap));
  sl_object_unref(g->srp);
}

/* The vector with its W0 set to the transaction's id. */
static uint32_t answer(const char *name, sl_transaction *t, uint8_t *r) {
  uint32_t n = vector(name, r, 64);
  sl_store_le32(r, sl_transaction_id(t));
  return n;
}

static void test_node_vectors(void) {
  rig g;
  rig_init(&g, 5000000);
  uint8_t want[64], r[64];
  ts_got got;
  sl_transaction *w = sl_mem_master_request(&g.mm, 0x1000, 8, DATA8, SL_MEM_WRITE, NULL, NULL);
  uint32_t n = vector("srpv0_write_request", want, sizeof want);
  CHECK(ts_rec_frame(g.cap, 0, &got) && got.size == n);
  CHECK_EQ(sl_load_le32(got.data), sl_transaction_id(w));
  CHECK(memcmp(got.data + 4, want + 4, n - 4) == 0);
  CHECK_EQ(got.channel, 0);
  CHECK_EQ(got.flags, 0);
  ts_send(g.src->master, r, answer("srpv0_write_response", w, r), 0, 0, 0);
  CHECK_EQ(sl_mem_master_wait(w), SL_OK);
  sl_transaction *rd = sl_mem_master_request(&g.mm, 0x1000, 8, NULL, SL_MEM_READ, NULL, NULL);
  n = vector("srpv0_read_request", want, sizeof want);
  CHECK(ts_rec_frame(g.cap, 1, &got) && got.size == n);
  CHECK_EQ(sl_load_le32(got.data), sl_transaction_id(rd));
  CHECK(memcmp(got.data + 4, want + 4, n - 4) == 0);
  CHECK_EQ(sl_srpv0_pending(sl_srpv0_from_object(g.srp)), 1);
  n = answer("srpv0_read_response", rd, r);
  ts_send(g.src->master, r, n, 0, 0, 0);
  CHECK_EQ(sl_mem_master_wait(rd), SL_OK);
  CHECK(memcmp(sl_transaction_data(rd), r + 8, 8) == 0);
  CHECK_EQ(sl_srpv0_pending(sl_srpv0_from_object(g.srp)), 0);
  /* a post completes at once; nothing waits for a response */
  sl_transaction *p = sl_mem_master_request(&g.mm, 0x1000, 4, DATA8, SL_MEM_POST, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(p), SL_OK);
  CHECK(ts_rec_frame(g.cap, 2, &got) && got.size == 16);
  CHECK_EQ(sl_load_le32(got.data + 4), 0x40000400u);
  CHECK_EQ(sl_srpv0_pending(sl_srpv0_from_object(g.srp)), 0);
  CHECK_EQ(ts_counter(g.srp, "txFrames"), 3);
  sl_transaction_unref(w);
  sl_transaction_unref(rd);
  sl_transaction_unref(p);
  rig_fini(&g);
}

/* Drops by reason; a mismatched response leaves its request waiting. */
static void test_node_drops(void) {
  rig g;
  rig_init(&g, 5000000);
  uint8_t r[64];
  sl_transaction *rd = sl_mem_master_request(&g.mm, 0x1000, 8, NULL, SL_MEM_READ, NULL, NULL);
  uint32_t n = answer("srpv0_read_response", rd, r);
  ts_send(g.src->master, r, n, 0, 1, 0);          /* errored */
  ts_send(g.src->master, r, 15, 0, 0, 0);         /* undersized */
  ts_send(g.src->master, r, n - 4, 0, 0, 0);      /* wrong length */
  r[4] ^= 1;
  ts_send(g.src->master, r, n, 0, 0, 0);          /* wrong header */
  r[4] ^= 1;
  r[0] ^= 0x80;
  ts_send(g.src->master, r, n, 0, 0, 0);          /* unknown id */
  r[0] ^= 0x80;
  CHECK_EQ(ts_counter(g.srp, "short"), 2);
  CHECK_EQ(ts_counter(g.srp, "mismatch"), 2);
  CHECK_EQ(ts_counter(g.srp, "unknown"), 1);
  CHECK_EQ(ts_counter(g.srp, "drops"), 5);
  CHECK(!sl_transaction_is_done(rd));
  CHECK_EQ(sl_srpv0_pending(sl_srpv0_from_object(g.srp)), 1);
  ts_send(g.src->master, r, n, 0, 0, 0);
  CHECK_EQ(sl_mem_master_wait(rd), SL_OK);
  ts_send(g.src->master, r, n, 0, 0, 0);          /* a duplicate: unknown */
  CHECK_EQ(ts_counter(g.srp, "unknown"), 2);
  /* a status fails the transaction with its text */
  sl_transaction *w = sl_mem_master_request(&g.mm, 0x1000, 8, DATA8, SL_MEM_WRITE, NULL, NULL);
  n = answer("srpv0_write_response", w, r);
  sl_store_le32(r + n - 4, 0x10000);
  ts_send(g.src->master, r, n, 0, 0, 0);
  CHECK_EQ(sl_mem_master_wait(w), SL_EINVAL);
  char e[256];
  sl_transaction_get_error(w, e, sizeof e);
  CHECK_STR(e, "Axi bus returned fail status in hardware");
  CHECK_EQ(ts_counter(g.srp, "errors"), 1);
  /* refused before sending: a 4100-byte read, a read of 2 bytes */
  sl_transaction *big = sl_mem_master_request(&g.mm, 0, 2052, NULL, SL_MEM_READ, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(big), SL_EINVAL);
  CHECK_EQ(ts_counter(g.srp, "refused"), 1);
  /* stop fails what waits */
  sl_transaction *s = sl_mem_master_request(&g.mm, 0x10, 4, NULL, SL_MEM_READ, NULL, NULL);
  sl_object_stop(g.srp);
  CHECK_EQ(sl_mem_master_wait(s), SL_EINVAL);
  sl_transaction_get_error(s, e, sizeof e);
  CHECK_STR(e, "SrpV0: stopped");
  sl_transaction *after = sl_mem_master_request(&g.mm, 0x10, 4, NULL, SL_MEM_READ, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(after), SL_EINVAL);
  sl_transaction_unref(rd);
  sl_transaction_unref(w);
  sl_transaction_unref(big);
  sl_transaction_unref(s);
  sl_transaction_unref(after);
  rig_fini(&g);
}

/* A response after the transaction timed out is late, not unknown. */
static void test_late(void) {
  rig g;
  rig_init(&g, 1000);
  uint8_t r[64];
  sl_transaction *rd = sl_mem_master_request(&g.mm, 0x1000, 8, NULL, SL_MEM_READ, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(rd), SL_ETIMEDOUT);
  ts_send(g.src->master, r, answer("srpv0_read_response", rd, r), 0, 0, 0);
  CHECK_EQ(ts_counter(g.srp, "late"), 1);
  CHECK_EQ(sl_srpv0_pending(sl_srpv0_from_object(g.srp)), 0);
  sl_transaction_unref(rd);
  rig_fini(&g);
}

static const struct tt_case cases[] = {
    {"encode_vectors", test_encode_vectors},
    {"judge_vectors", test_judge_vectors},
    {"node_vectors", test_node_vectors},
    {"node_drops", test_node_drops},
    {"late", test_late},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
