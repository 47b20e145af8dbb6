/*
** SrpV3: transactions in, SRPv3 request frames out, responses matched by
** transaction id. Checks and texts follow Rogue's SrpV3 (rogue-reference
** 6.2). A response that cannot be matched (too short, errored frame,
** unknown id, or late: its transaction already timed out) is logged,
** counted and dropped; the transaction, if any, is left to its timeout.
*/
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/slave.h"
#include "streamlua/srp.h"
#include "streamlua/status.h"

#include "srp_internal.h"

#include "../core/bytes.h"

/* ---- pure helpers ---- */

int sl_srpv3_opcode(uint32_t type) {
  switch (type) {
    case SL_MEM_READ:
    case SL_MEM_VERIFY: return SL_SRPV3_OP_READ;
    case SL_MEM_WRITE: return SL_SRPV3_OP_WRITE;
    case SL_MEM_POST: return SL_SRPV3_OP_POST;
    default: return -1;
  }
}

int sl_srpv3_check(uint64_t address, uint32_t size, char *err, size_t n) {
  return srp_check(address, size, SL_SRPV3_MAX_ACCESS, err, n);
}

void sl_srpv3_header(uint32_t hdr[5], uint32_t opcode, uint32_t tid,
                     uint64_t address, uint32_t size, uint8_t hw_timeout) {
  hdr[0] = SL_SRPV3_VERSION | (opcode & 0x3u) << 8 | (uint32_t)hw_timeout << 24;
  hdr[1] = tid;
  hdr[2] = (uint32_t)address;
  hdr[3] = (uint32_t)(address >> 32);
  hdr[4] = size - 1;
}

uint32_t sl_srpv3_encode(uint8_t *out, uint32_t opcode, uint32_t tid,
                         uint64_t address, uint32_t size, uint8_t hw_timeout,
                         const uint8_t *data) {
  uint32_t hdr[5];
  sl_srpv3_header(hdr, opcode, tid, address, size, hw_timeout);
  for (int i = 0; i < 5; i++) sl_store_le32(out + 4 * i, hdr[i]);
  if (opcode != SL_SRPV3_OP_WRITE && opcode != SL_SRPV3_OP_POST)
    return SL_SRPV3_HEADER;
  memcpy(out + SL_SRPV3_HEADER, data, size);
  return SL_SRPV3_HEADER + size;
}

int sl_srpv3_parse(const uint8_t *frame, uint32_t len, uint32_t hdr[5],
                   uint32_t *footer) {
  if (len < SL_SRPV3_MIN_RESPONSE) return -1;
  for (int i = 0; i < 5; i++) hdr[i] = sl_load_le32(frame + 4 * i);
  *footer = sl_load_le32(frame + len - 4);
  return 0;
}

size_t sl_srpv3_footer_text(uint32_t footer, char *buf, size_t n) {
  int r;
  if (footer & SL_SRPV3_FOOTER_LOCKUP)
    r = snprintf(buf, n, "FPGA register bus lockup detected in hardware. "
                 "Power cycle required.");
  else if (footer & SL_SRPV3_FOOTER_TIMEOUT)
    r = snprintf(buf, n, "FPGA register bus timeout detected in hardware");
  else
    r = snprintf(buf, n, "Non zero status message returned on fpga register "
                 "bus in hardware: 0x%" PRIx32, footer);
  return r < 0 ? 0 : (size_t)r;
}

int sl_srpv3_judge(const uint32_t expect[5], uint32_t size,
                   const uint32_t hdr[5], uint32_t footer, uint32_t len,
                   char *err, size_t n) {
  /* bits 13:10 carry the firmware's capability flags: ignored */
  if ((hdr[0] & 0xFFFFC3FFu) != expect[0] || hdr[1] != expect[1] ||
      hdr[2] != expect[2] || hdr[3] != expect[3] || hdr[4] != expect[4]) {
    snprintf(err, n, "Received SRPV3 message did not match expected protocol. "
             "id=%" PRIu32 ", addr=0x%08" PRIx32 "%08" PRIx32, hdr[1], hdr[3],
             hdr[2]);
    return -1;
  }
  if (footer != 0) {
    sl_srpv3_footer_text(footer, err, n);
    return -1;
  }
  if (len != SL_SRPV3_MIN_RESPONSE + size || hdr[4] + 1 != size) {
    snprintf(err, n, "Received SRPV3 message had a header size mismatch. "
             "id=%" PRIu32 ", frameSize=%" PRIu32 ", expectedSize=%" PRIu32
             ", tranSize=%" PRIu32 ", headerSize=%" PRIu32, hdr[1], len,
             SL_SRPV3_MIN_RESPONSE + size, size, hdr[4] + 1);
    return -1;
  }
  return 0;
}

/* ---- the node ---- */

typedef struct sl_srpv3 srpv3;

struct sl_srpv3 {
  srp_node n;
  atomic_uint hw_timeout;
};

/* doTransaction: refuse what SRPv3 cannot carry, else send the request. */
static void srpv3_do(sl_mem_slave *ms, sl_transaction *t) {
  srpv3 *s = (srpv3 *)ms->owner;
  char err[160];
  uint64_t addr = sl_transaction_address(t);
  uint32_t size = sl_transaction_size(t);
  uint32_t type = sl_transaction_type(t);
  int op = sl_srpv3_opcode(type);
  if (op < 0) {
    snprintf(err, sizeof err, "SrpV3: unsupported transaction type 0x%" PRIx32, type);
    srp_refuse(&s->n.base, t, err);
    return;
  }
  if (sl_srpv3_check(addr, size, err, sizeof err) != 0) {
    srp_refuse(&s->n.base, t, err);
    return;
  }
  srp_request r = {0};
  uint8_t head[SL_SRPV3_HEADER];
  uint8_t hw = (uint8_t)atomic_load(&s->hw_timeout);
  sl_srpv3_header(r.expect, (uint32_t)op, sl_transaction_id(t), addr, size, hw);
  for (int i = 0; i < 5; i++) sl_store_le32(head + 4 * i, r.expect[i]);
  r.head = head;
  r.head_len = SL_SRPV3_HEADER;
  r.data = sl_transaction_data(t);
  r.data_len = op == SL_SRPV3_OP_READ ? 0 : size;
  r.post = op == SL_SRPV3_OP_POST;
  srp_send(&s->n.base, &s->n.master, t, &r);
}

/* A response frame: match it, judge it, complete the transaction. */
static void srpv3_accept(sl_slave *sv, sl_frame *f) {
  srpv3 *s = (srpv3 *)sv->owner;
  srp_base *b = &s->n.base;
  uint8_t head[SL_SRPV3_HEADER], foot[4];
  uint32_t hdr[5], tid = 0;
  char err[256];
  srp_pending p;
  srp_bump(&b->rx);
  sl_frame_lock(f);
  uint32_t len = sl_frame_get_payload(f);
  uint8_t ferr = sl_frame_get_error(f);
  int why = srp_claim(b, f, SL_SRPV3_MIN_RESPONSE, 4, &tid, &p);
  if (why != SRP_CLAIMED) sl_frame_unlock(f);
  switch (why) {
    case SRP_ERRORED:
      srp_drop(b, &b->shorts, "Got errored frame = 0x%x (length %" PRIu32 "), dropping",
               (unsigned)ferr, len);
      return;
    case SRP_SHORT:
      srp_drop(b, &b->shorts, "Got undersized frame: %" PRIu32 " bytes (minimum %" PRIu32
               "), dropping", len, SL_SRPV3_MIN_RESPONSE);
      return;
    case SRP_UNKNOWN:
      srp_drop(b, &b->unknown, "Failed to find transaction id=%" PRIu32
               " (length %" PRIu32 "), dropping", tid, len);
      return;
    case SRP_LATE:
      srp_drop(b, &b->late, "Dropping late response: transaction id=%" PRIu32
               " (length %" PRIu32 ") has already completed or timed out", tid, len);
      sl_transaction_unref(p.t);
      return;
  }
  sl_transaction *t = p.t;
  sl_frame_read(f, head, 0, SL_SRPV3_HEADER);
  sl_frame_read(f, foot, len - 4, 4);
  for (int i = 0; i < 5; i++) hdr[i] = sl_load_le32(head + 4 * i);
  uint32_t footer = sl_load_le32(foot);
  uint32_t size = sl_transaction_size(t);
  if (sl_srpv3_judge(p.expect, size, hdr, footer, len, err, sizeof err) != 0) {
    sl_frame_unlock(f);
    srp_bump(&b->errors);
    sl_log_write(b->log, SL_LOG_WARNING, "%s", err);
    sl_transaction_error(t, "%s", err);
    goto out;
  }
  if (!sl_mem_type_is_write(sl_transaction_type(t)))
    sl_frame_read(f, sl_transaction_data(t), SL_SRPV3_HEADER, size);
  sl_frame_unlock(f);
  sl_transaction_done(t);
out:
  sl_transaction_unref(p.t);
}

/* Fails everything in flight; no request is sent after this. */
static void srpv3_stop(sl_object *obj) { srp_base_stop(&((srpv3 *)obj)->n.base); }

static size_t srpv3_counters(sl_object *obj, sl_counter *out, size_t max) {
  return srp_base_counters(&((srpv3 *)obj)->n.base, out, max);
}

static void srpv3_destroy(sl_object *obj) {
  srp_node_fini((srp_node *)obj);
  free(obj);
}

static const sl_mem_slave_ops srpv3_mem_ops = {.do_transaction = srpv3_do};
static const sl_slave_ops srpv3_stream_ops = {.accept_frame = srpv3_accept};

static const sl_class srpv3_class = {.name = "srp.SrpV3",
                                     .destroy = srpv3_destroy,
                                     .stop = srpv3_stop,
                                     .counters = srpv3_counters};

sl_srpv3 *sl_srpv3_new(sl_error *err) {
  srpv3 *s = calloc(1, sizeof *s);
  if (s == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  if (srp_node_init(&s->n, &srpv3_class, "SrpV3", &srpv3_mem_ops, &srpv3_stream_ops,
                    SL_SRPV3_MAX_ACCESS) != SL_OK) {
    free(s);
    return sl_fail(err, SL_ENOMEM, NULL);
  }
  atomic_init(&s->hw_timeout, SL_SRPV3_DEFAULT_HW_TIMEOUT);
  return s;
}

sl_object *sl_srpv3_object(sl_srpv3 *s) { return s != NULL ? &s->n.obj : NULL; }

sl_srpv3 *sl_srpv3_from_object(sl_object *obj) {
  return sl_object_is(obj, &srpv3_class) ? (srpv3 *)obj : NULL;
}

void sl_srpv3_set_hw_timeout(sl_srpv3 *s, uint8_t ticks) {
  atomic_store(&s->hw_timeout, ticks);
}

uint8_t sl_srpv3_get_hw_timeout(sl_srpv3 *s) {
  return (uint8_t)atomic_load(&s->hw_timeout);
}

size_t sl_srpv3_pending(sl_srpv3 *s) { return srp_base_pending(&s->n.base); }
