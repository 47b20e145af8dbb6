/*
** SrpV0: transactions in, SRPv0 request frames out, responses matched by
** transaction id (W0). Checks and texts follow Rogue's SrpV0
** (rogue-link-reference 5), on the plumbing SrpV3 shares (srp_common.c).
** A response with the wrong length or header is dropped and its request
** keeps waiting (a right one may still come, else its timeout ends it);
** a non-zero status fails the transaction.
*/
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/slave.h"
#include "streamlua/srp.h"
#include "streamlua/status.h"

#include "srp_internal.h"

#include "../core/bytes.h"

/* ---- pure helpers ---- */

int sl_srpv0_check(uint64_t address, uint32_t size, char *err, size_t n) {
  return srp_check(address, size, SL_SRPV0_MAX_ACCESS, err, n);
}

uint32_t sl_srpv0_word1(int write, uint64_t address) {
  return (write ? SL_SRPV0_WRITE : 0u) | ((uint32_t)(address >> 2) & 0x3FFFFFFFu);
}

/* W0 and W1, and for a read W2 and W3: the bytes before any data. */
static uint32_t put_head(uint8_t out[16], int write, uint32_t tid, uint64_t address,
                         uint32_t size) {
  sl_store_le32(out, tid);
  sl_store_le32(out + 4, sl_srpv0_word1(write, address));
  if (write) return 8;
  sl_store_le32(out + 8, size / 4 - 1);
  sl_store_le32(out + 12, 0);
  return 16;
}

uint32_t sl_srpv0_encode(uint8_t *out, int write, uint32_t tid,
                         uint64_t address, uint32_t size, const uint8_t *data) {
  uint32_t h = put_head(out, write, tid, address, size);
  if (!write) return h;
  memcpy(out + 8, data, size);
  sl_store_le32(out + 8 + size, 0);
  return 12 + size;
}

size_t sl_srpv0_status_text(uint32_t status, char *buf, size_t n) {
  int r;
  if (status & SL_SRPV0_STATUS_TIMEOUT)
    r = snprintf(buf, n, "Axi bus timeout detected in hardware");
  else if (status & SL_SRPV0_STATUS_FAIL)
    r = snprintf(buf, n, "Axi bus returned fail status in hardware");
  else
    r = snprintf(buf, n, "Non zero status message returned on axi bus in "
                 "hardware: 0x%" PRIx32, status);
  return r < 0 ? 0 : (size_t)r;
}

int sl_srpv0_judge(uint32_t tid, uint32_t w1, uint32_t size, const uint8_t head[8],
                   uint32_t status, uint32_t len, char *err, size_t n) {
  if (len != 12 + size) {
    snprintf(err, n, "Bad receive length for %" PRIu32 " exp=%" PRIu32 ", got=%" PRIu32,
             tid, 12 + size, len);
    return SL_SRPV0_BAD_LENGTH;
  }
  if (sl_load_le32(head) != tid || sl_load_le32(head + 4) != w1) {
    snprintf(err, n, "Bad header for %" PRIu32, tid);
    return SL_SRPV0_BAD_HEADER;
  }
  if (status != 0) {
    sl_srpv0_status_text(status, err, n);
    return SL_SRPV0_STATUS;
  }
  return SL_SRPV0_OK;
}

/* ---- the node ---- */

typedef struct sl_srpv0 srpv0;

struct sl_srpv0 {
  srp_node n;
  atomic_uint_least64_t mismatch;   /* wrong length or header */
};

/* doTransaction: refuse what SRPv0 cannot carry, else send the request. */
static void srpv0_do(sl_mem_slave *ms, sl_transaction *t) {
  srpv0 *s = (srpv0 *)ms->owner;
  char err[160];
  uint64_t addr = sl_transaction_address(t);
  uint32_t size = sl_transaction_size(t);
  uint32_t type = sl_transaction_type(t);
  if (type < SL_MEM_READ || type > SL_MEM_VERIFY) {
    snprintf(err, sizeof err, "SrpV0: unsupported transaction type 0x%" PRIx32, type);
    srp_refuse(&s->n.base, t, err);
    return;
  }
  if (sl_srpv0_check(addr, size, err, sizeof err) != 0) {
    srp_refuse(&s->n.base, t, err);
    return;
  }
  int write = sl_mem_type_is_write(type);
  uint8_t head[16];
  uint32_t tid = sl_transaction_id(t);
  srp_request r = {head, put_head(head, write, tid, addr, size), sl_transaction_data(t),
                   write ? size : 0u, write ? 4u : 0u, type == SL_MEM_POST,
                   {tid, sl_srpv0_word1(write, addr)}};
  srp_send(&s->n.base, &s->n.master, t, &r);
}

/* A response frame: match it, judge it, complete the transaction. */
static void srpv0_accept(sl_slave *sv, sl_frame *f) {
  srpv0 *s = (srpv0 *)sv->owner;
  srp_base *b = &s->n.base;
  uint8_t head[8], foot[4];
  uint32_t tid = 0;
  char err[160];
  srp_pending p;
  srp_bump(&b->rx);
  sl_frame_lock(f);
  uint32_t len = sl_frame_get_payload(f);
  uint8_t ferr = sl_frame_get_error(f);
  int why = srp_claim(b, f, SL_SRPV0_MIN_RESPONSE, 0, &tid, &p);
  if (why != SRP_CLAIMED) sl_frame_unlock(f);
  switch (why) {
    case SRP_ERRORED:
      srp_drop(b, &b->shorts, "Got errored frame = 0x%x", (unsigned)ferr);
      return;
    case SRP_SHORT:
      srp_drop(b, &b->shorts, "Got undersized frame size = %" PRIu32, len);
      return;
    case SRP_UNKNOWN:
      srp_drop(b, &b->unknown, "Invalid ID frame for id=%" PRIu32, tid);
      return;
    case SRP_LATE:
      srp_drop(b, &b->late, "Transaction expired. Id=%" PRIu32, tid);
      sl_transaction_unref(p.t);
      return;
  }
  sl_transaction *t = p.t;
  uint32_t size = sl_transaction_size(t);
  sl_frame_read(f, head, 0, 8);
  sl_frame_read(f, foot, len - 4, 4);
  uint32_t status = sl_load_le32(foot);
  int j = sl_srpv0_judge(tid, p.expect[1], size, head, status, len, err, sizeof err);
  if (j == SL_SRPV0_OK && !sl_mem_type_is_write(sl_transaction_type(t)))
    sl_frame_read(f, sl_transaction_data(t), 8, size);
  sl_frame_unlock(f);
  if (j == SL_SRPV0_BAD_LENGTH || j == SL_SRPV0_BAD_HEADER) {
    srp_drop(b, &s->mismatch, "%s", err);
    srp_unclaim(b, &p);
    return;
  }
  if (j == SL_SRPV0_STATUS) {
    srp_bump(&b->errors);
    sl_log_write(b->log, SL_LOG_WARNING, "Error detected for ID id=%" PRIu32
                 ", tail=0x%08" PRIx32, tid, status);
    sl_transaction_error(t, "%s", err);
  } else {
    sl_transaction_done(t);
  }
  sl_transaction_unref(t);
}

static void srpv0_stop(sl_object *obj) { srp_base_stop(&((srpv0 *)obj)->n.base); }

static size_t srpv0_counters(sl_object *obj, sl_counter *out, size_t max) {
  srpv0 *s = (srpv0 *)obj;
  size_t n = srp_base_counters(&s->n.base, out, max);
  if (n < max) out[n++] = (sl_counter){"mismatch", atomic_load(&s->mismatch)};
  return n;
}

static void srpv0_destroy(sl_object *obj) {
  srp_node_fini((srp_node *)obj);
  free(obj);
}

static const sl_mem_slave_ops srpv0_mem_ops = {.do_transaction = srpv0_do};
static const sl_slave_ops srpv0_stream_ops = {.accept_frame = srpv0_accept};

static const sl_class srpv0_class = {.name = "srp.SrpV0",
                                     .destroy = srpv0_destroy,
                                     .stop = srpv0_stop,
                                     .counters = srpv0_counters};

sl_srpv0 *sl_srpv0_new(sl_error *err) {
  srpv0 *s = calloc(1, sizeof *s);
  if (s == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  if (srp_node_init(&s->n, &srpv0_class, "SrpV0", &srpv0_mem_ops, &srpv0_stream_ops,
                    SL_SRPV0_MAX_ACCESS) != SL_OK) {
    free(s);
    return sl_fail(err, SL_ENOMEM, NULL);
  }
  return s;
}

sl_object *sl_srpv0_object(sl_srpv0 *s) { return s != NULL ? &s->n.obj : NULL; }

sl_srpv0 *sl_srpv0_from_object(sl_object *obj) {
  return sl_object_is(obj, &srpv0_class) ? (srpv0 *)obj : NULL;
}

size_t sl_srpv0_pending(sl_srpv0 *s) { return srp_base_pending(&s->n.base); }
