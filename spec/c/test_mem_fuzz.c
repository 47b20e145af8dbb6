/*
** SrpV3 fed malformed responses, one table: each row spoils the response
** to an 8-byte read (or write) in one way and says what must follow:
** the transaction fails at once with a clear text, or the frame is
** dropped and counted and the transaction ends by its timeout with a
** clear text. Nothing may hang; SrpV3 keeps working after every row.
** (The memory TCP bridge's malformed messages are in zmq_membridge.c,
** which needs libzmq to craft them.)
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/memory.h"
#include "streamlua/slave.h"
#include "streamlua/srp.h"
#include "streamlua/status.h"
#include "support.h"
#include "tt.h"

#include "../../src/core/bytes.h"

#define TIMEOUT_US 200000u
#define ADDR 0x100u
#define HUGE_FRAME (1u << 20)

/* The header of the last request the recorder got. */
static const uint8_t *head_of(ts_rec *r, uint8_t head[SL_SRPV3_HEADER]) {
  ts_got g;
  memset(head, 0, SL_SRPV3_HEADER);
  ts_rec_last(r, &g, head, SL_SRPV3_HEADER);
  return head;
}

/* Sends n bytes as one frame (error byte `ferr`) from m, in this thread. */
static void send_frame(sl_master *m, const uint8_t *b, uint32_t n, uint8_t ferr) {
  if (ts_send(m, b, n, 0, ferr, 0) != SL_OK) abort();
}

/* ---- the table ---- */

enum { SRP_OK, SRP_FAILS, SRP_DROPPED };

enum {
  R_GOOD, R_CAPS, R_EMPTY, R_ONE_BYTE, R_TRUNC_HEADER, R_HEADER_ONLY, R_23_BYTES,
  R_FRAME_ERROR, R_TID_UNKNOWN, R_VERSION, R_OPCODE, R_OPCODE_NULL, R_BIT14, R_HW_TIMEOUT,
  R_ADDR, R_ADDR_HIGH, R_SIZE_WORD, R_NO_DATA, R_DATA_SHORT, R_DATA_LONG, R_HUGE,
  R_FOOTER_TIMEOUT, R_FOOTER_LOCKUP, R_FOOTER_BOTH, R_FOOTER_SLVERR, R_FOOTER_ALL,
  R_FOOTER_SHORT, R_DUPLICATE, R_LATE
};

typedef struct bad_response {
  const char *name;
  uint32_t type;           /* the transaction: an 8-byte read or write */
  int mutation, outcome;
  const char *text;        /* SRP_FAILS: in the error (%u: the tid);
                              SRP_DROPPED: the counter that says why */
} bad_response;

#define PROTO "Received SRPV3 message did not match expected protocol. id=%u, "
#define SIZE_MISMATCH "Received SRPV3 message had a header size mismatch. id=%u, "

static const bad_response table[] = {
    {"a good response", SL_MEM_READ, R_GOOD, SRP_OK, NULL},
    {"capability flags in W0 bits 13:10", SL_MEM_READ, R_CAPS, SRP_OK, NULL},
    {"a good write response", SL_MEM_WRITE, R_GOOD, SRP_OK, NULL},
    {"a zero-length frame", SL_MEM_READ, R_EMPTY, SRP_DROPPED, "short"},
    {"1 byte", SL_MEM_READ, R_ONE_BYTE, SRP_DROPPED, "short"},
    {"a header cut at 12 bytes", SL_MEM_READ, R_TRUNC_HEADER, SRP_DROPPED, "short"},
    {"the header alone (20 bytes)", SL_MEM_READ, R_HEADER_ONLY, SRP_DROPPED, "short"},
    {"23 bytes", SL_MEM_READ, R_23_BYTES, SRP_DROPPED, "short"},
    {"the frame error set", SL_MEM_READ, R_FRAME_ERROR, SRP_DROPPED, "short"},
    {"an unknown tid", SL_MEM_READ, R_TID_UNKNOWN, SRP_DROPPED, "unknown"},
    {"version 2", SL_MEM_READ, R_VERSION, SRP_FAILS, PROTO "addr=0x0000000000000100"},
    {"the write opcode for a read", SL_MEM_READ, R_OPCODE, SRP_FAILS, PROTO},
    {"the null opcode", SL_MEM_READ, R_OPCODE_NULL, SRP_FAILS, PROTO},
    {"W0 bit 14 set", SL_MEM_READ, R_BIT14, SRP_FAILS, PROTO},
    {"another hardware timeout byte", SL_MEM_READ, R_HW_TIMEOUT, SRP_FAILS, PROTO},
    {"another address", SL_MEM_READ, R_ADDR, SRP_FAILS, PROTO "addr=0x0000000000000104"},
    {"address bits 63:32 set", SL_MEM_READ, R_ADDR_HIGH, SRP_FAILS,
     PROTO "addr=0x0000000100000100"},
    {"another size word (W4)", SL_MEM_READ, R_SIZE_WORD, SRP_FAILS, PROTO},
    {"header and footer only (a read)", SL_MEM_READ, R_NO_DATA, SRP_FAILS,
     SIZE_MISMATCH "frameSize=24, expectedSize=32, tranSize=8, headerSize=8"},
    {"header and footer only (a write)", SL_MEM_WRITE, R_NO_DATA, SRP_FAILS,
     SIZE_MISMATCH "frameSize=24, expectedSize=32"},
    {"4 data bytes short", SL_MEM_READ, R_DATA_SHORT, SRP_FAILS,
     SIZE_MISMATCH "frameSize=28, expectedSize=32"},
    {"4 data bytes too many", SL_MEM_READ, R_DATA_LONG, SRP_FAILS,
     SIZE_MISMATCH "frameSize=36, expectedSize=32"},
    {"a 1 MiB frame", SL_MEM_READ, R_HUGE, SRP_FAILS,
     SIZE_MISMATCH "frameSize=1048576, expectedSize=32"},
    {"footer bit 8 (timeout)", SL_MEM_READ, R_FOOTER_TIMEOUT, SRP_FAILS,
     "FPGA register bus timeout detected in hardware"},
    {"footer bit 13 (lockup)", SL_MEM_READ, R_FOOTER_LOCKUP, SRP_FAILS,
     "FPGA register bus lockup detected in hardware. Power cycle required."},
    {"footer bits 13 and 8", SL_MEM_WRITE, R_FOOTER_BOTH, SRP_FAILS,
     "FPGA register bus lockup detected in hardware. Power cycle required."},
    {"footer 0x2 (SLVERR)", SL_MEM_READ, R_FOOTER_SLVERR, SRP_FAILS,
     "Non zero status message returned on fpga register bus in hardware: 0x2"},
    {"footer 0xFFFFFFFF", SL_MEM_READ, R_FOOTER_ALL, SRP_FAILS,
     "FPGA register bus lockup detected in hardware. Power cycle required."},
    {"footer 0x400 on a 24-byte frame", SL_MEM_READ, R_FOOTER_SHORT, SRP_FAILS,
     "Non zero status message returned on fpga register bus in hardware: 0x400"},
    {"a duplicate of a good response", SL_MEM_READ, R_DUPLICATE, SRP_OK, "unknown"},
    {"a response after the timeout", SL_MEM_READ, R_LATE, SRP_DROPPED, "late"},
    {NULL, 0, 0, 0, NULL}};

static const uint8_t DATA8[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};

/* Builds the response to the request header `req` spoilt by `mutation`
** into out (room for HUGE_FRAME bytes); returns its length and sets
** *ferr to the frame error byte. */
static uint32_t build(const uint8_t *req, int mutation, uint8_t *out, uint8_t *ferr) {
  uint32_t len = SL_SRPV3_MIN_RESPONSE + 8;
  memcpy(out, req, SL_SRPV3_HEADER);
  memcpy(out + SL_SRPV3_HEADER, DATA8, 8);
  sl_store_le32(out + 28, 0);
  *ferr = 0;
  switch (mutation) {
    case R_CAPS: out[1] |= 0x3C; break;
    case R_EMPTY: len = 0; break;
    case R_ONE_BYTE: len = 1; break;
    case R_TRUNC_HEADER: len = 12; break;
    case R_HEADER_ONLY: len = 20; break;
    case R_23_BYTES: len = 23; break;
    case R_FRAME_ERROR: *ferr = 1; break;
    case R_TID_UNKNOWN: sl_store_le32(out + 4, 0x7FFFFFF7u); break;
    case R_VERSION: out[0] = 0x02; break;
    case R_OPCODE: out[1] = (uint8_t)((out[1] & ~0x3) | SL_SRPV3_OP_WRITE); break;
    case R_OPCODE_NULL: out[1] |= SL_SRPV3_OP_NULL; break;
    case R_BIT14: out[1] |= 0x40; break;
    case R_HW_TIMEOUT: out[3] ^= 0xFF; break;
    case R_ADDR: sl_store_le32(out + 8, ADDR + 4); break;
    case R_ADDR_HIGH: sl_store_le32(out + 12, 1); break;
    case R_SIZE_WORD: sl_store_le32(out + 16, 3); break;
    case R_NO_DATA:
      sl_store_le32(out + 20, 0);
      len = 24;
      break;
    case R_DATA_SHORT:
      sl_store_le32(out + 24, 0);
      len = 28;
      break;
    case R_DATA_LONG:
      memcpy(out + 28, "XXXX", 4);
      sl_store_le32(out + 32, 0);
      len = 36;
      break;
    case R_HUGE:
      memset(out + 28, 0x5A, HUGE_FRAME - 28);
      sl_store_le32(out + HUGE_FRAME - 4, 0);
      len = HUGE_FRAME;
      break;
    case R_FOOTER_TIMEOUT: sl_store_le32(out + 28, SL_SRPV3_FOOTER_TIMEOUT); break;
    case R_FOOTER_LOCKUP: sl_store_le32(out + 28, SL_SRPV3_FOOTER_LOCKUP); break;
    case R_FOOTER_BOTH: sl_store_le32(out + 28, 0x2100); break;
    case R_FOOTER_SLVERR: sl_store_le32(out + 28, 0x2); break;
    case R_FOOTER_ALL: sl_store_le32(out + 28, 0xFFFFFFFFu); break;
    case R_FOOTER_SHORT:
      sl_store_le32(out + 20, 0x400);
      len = 24;
      break;
    default: break;
  }
  return len;
}

/* The text with its "%u" (if any) replaced by the tid. */
static void expand(char *out, size_t n, const char *text, uint32_t tid) {
  const char *at = strstr(text, "%u");
  if (at == NULL) snprintf(out, n, "%s", text);
  else snprintf(out, n, "%.*s%u%s", (int)(at - text), text, (unsigned)tid, at + 2);
}

static void test_srpv3_malformed_responses(void) {
  sl_object *srp = sl_srpv3_object(sl_srpv3_new(NULL));
  ts_rec *cap = ts_rec_new(0);
  uint8_t head[SL_SRPV3_HEADER];
  sl_object *src = sl_master_new(NULL);
  uint8_t *resp = malloc(HUGE_FRAME);
  if (!CHECK(srp != NULL && src != NULL && resp != NULL)) return;
  sl_master_add_slave(srp->master, &cap->slave);
  sl_master_add_slave(src->master, srp->slave);
  sl_mem_master mm;
  sl_mem_master_init(&mm, NULL);
  sl_mem_master_set_slave(&mm, srp);
  sl_mem_master_set_timeout(&mm, TIMEOUT_US);

  for (const bad_response *b = table; b->name != NULL; b++) {
    uint64_t errors0 = ts_counter(srp, "errors"), drops0 = ts_counter(srp, "drops");
    uint64_t why0 = b->text != NULL && b->outcome != SRP_FAILS ? ts_counter(srp, b->text) : 0;
    long n0 = ts_rec_count(cap);
    sl_transaction *t = sl_mem_master_request(&mm, ADDR, 8, DATA8, b->type, NULL, NULL);
    if (!CHECK_EQ(ts_rec_count(cap), n0 + 1)) {
      printf("  case: %s (no request sent)\n", b->name);
      sl_transaction_unref(t);
      continue;
    }
    uint32_t tid = sl_transaction_id(t);
    uint8_t ferr;
    uint32_t len = build(head_of(cap, head), b->mutation, resp, &ferr);
    if (b->mutation != R_LATE) send_frame(src->master, resp, len, ferr);
    if (b->mutation == R_DUPLICATE) send_frame(src->master, resp, len, ferr);
    int rc = sl_mem_master_wait(t);
    if (b->mutation == R_LATE) send_frame(src->master, resp, len, ferr);

    char e[512], want[256];
    sl_transaction_get_error(t, e, sizeof e);
    int ok = 1;
    switch (b->outcome) {
      case SRP_OK:
        ok &= CHECK_EQ(rc, SL_OK);
        if (b->type == SL_MEM_READ)
          ok &= CHECK(memcmp(sl_transaction_data(t), DATA8, 8) == 0);
        ok &= CHECK_EQ(ts_counter(srp, "errors"), errors0);
        if (b->text != NULL) ok &= CHECK_EQ(ts_counter(srp, b->text), why0 + 1);
        break;
      case SRP_FAILS:
        expand(want, sizeof want, b->text, tid);
        ok &= CHECK_EQ(rc, SL_EINVAL);
        ok &= CHECK(strstr(e, want) != NULL);
        ok &= CHECK_EQ(ts_counter(srp, "errors"), errors0 + 1);
        ok &= CHECK_EQ(ts_counter(srp, "drops"), drops0);
        break;
      default:   /* dropped, counted, and the transaction timed out */
        ok &= CHECK_EQ(rc, SL_ETIMEDOUT);
        ok &= CHECK(strstr(e, "Timeout waiting for register transaction") != NULL);
        ok &= CHECK_EQ(ts_counter(srp, b->text), why0 + 1);
        ok &= CHECK_EQ(ts_counter(srp, "drops"), drops0 + 1);
        ok &= CHECK_EQ(ts_counter(srp, "errors"), errors0);
        break;
    }
    if (!ok) printf("  case: %s: \"%s\"\n", b->name, e);
    sl_transaction_unref(t);

    /* SrpV3 still serves a good round trip */
    t = sl_mem_master_request(&mm, ADDR + 0x10, 8, NULL, SL_MEM_READ, NULL, NULL);
    len = build(head_of(cap, head), R_GOOD, resp, &ferr);
    send_frame(src->master, resp, len, ferr);
    if (!CHECK_EQ(sl_mem_master_wait(t), SL_OK)) printf("  case: %s (none after)\n", b->name);
    sl_transaction_unref(t);
  }

  free(resp);
  sl_mem_master_fini(&mm);
  sl_object_stop(srp);
  sl_master_clear_slaves(srp->master);
  sl_master_clear_slaves(src->master);
  sl_object_unref(src);
  sl_object_unref(ts_rec_object(cap));
  sl_object_unref(srp);
}

static const struct tt_case cases[] = {
    {"SrpV3 against a table of malformed responses", test_srpv3_malformed_responses},
    {NULL, NULL}};

int main(void) {
  sl_log_set_emit(0);
  return tt_main(cases);
}
