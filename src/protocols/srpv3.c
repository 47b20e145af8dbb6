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

#include "../core/bytes.h"
#include "../core/clock.h"

/* An entry outlives its transaction's timeout by this much, so a late
** response is still recognised as late and not as unknown. */
#define SWEEP_GRACE_US 10000000u

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
  if (address % SL_SRPV3_MIN_ACCESS != 0) {
    snprintf(err, n, "Transaction address 0x%" PRIx64
             " is not aligned to min size %u", address, SL_SRPV3_MIN_ACCESS);
    return -1;
  }
  if (size % SL_SRPV3_MIN_ACCESS != 0 || size < SL_SRPV3_MIN_ACCESS) {
    snprintf(err, n, "Transaction size 0x%" PRIx32
             " is not aligned to min size %u", size, SL_SRPV3_MIN_ACCESS);
    return -1;
  }
  if (size > SL_SRPV3_MAX_ACCESS) {
    snprintf(err, n, "Transaction size %" PRIu32 " exceeds max size %u", size,
             SL_SRPV3_MAX_ACCESS);
    return -1;
  }
  return 0;
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

typedef struct pending {
  sl_transaction *t;             /* holds a reference */
  uint32_t expect[5];            /* the request's header words */
  uint64_t sweep_us;             /* forgotten after this (monotonic) */
} pending;

typedef struct sl_srpv3 srpv3;

struct sl_srpv3 {
  sl_object obj;
  sl_mem_slave mslave;
  sl_master master;
  sl_slave slave;
  sl_log *log;
  atomic_uint hw_timeout;
  pthread_mutex_t mutex;         /* guards the table and closed */
  pending *table;
  size_t n, cap;
  int closed;
  atomic_uint_least64_t tx, rx, errors, drops, late, unknown, shorts, refused;
};

static void bump(atomic_uint_least64_t *c) {
  atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Forgets expired entries past their grace; caller holds the mutex. The
** dropped references go to `out` (released after unlock). */
static size_t sweep_locked(srpv3 *s, uint64_t now, sl_transaction **out,
                           size_t max) {
  size_t k = 0;
  for (size_t i = 0; i < s->n && k < max;) {
    if (now > s->table[i].sweep_us && sl_transaction_expired(s->table[i].t)) {
      out[k++] = s->table[i].t;
      s->table[i] = s->table[--s->n];
    } else {
      i++;
    }
  }
  return k;
}

/* Records t under its id; SL_ECLOSED after stop, SL_ENOMEM. */
static int add_pending(srpv3 *s, sl_transaction *t, const uint32_t hdr[5]) {
  sl_transaction *old[8];
  size_t nold;
  int rc = SL_OK;
  uint64_t now = (uint64_t)sl_clock_us();
  pthread_mutex_lock(&s->mutex);
  nold = sweep_locked(s, now, old, 8);
  if (s->closed) {
    rc = SL_ECLOSED;
    goto out;
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    pending *p = realloc(s->table, cap * sizeof *p);
    if (p == NULL) {
      rc = SL_ENOMEM;
      goto out;
    }
    s->table = p;
    s->cap = cap;
  }
  pending *e = &s->table[s->n++];
  e->t = sl_transaction_ref(t);
  memcpy(e->expect, hdr, sizeof e->expect);
  e->sweep_us = now + sl_transaction_timeout(t) + SWEEP_GRACE_US;
out:
  pthread_mutex_unlock(&s->mutex);
  for (size_t i = 0; i < nold; i++) sl_transaction_unref(old[i]);
  return rc;
}

/* Takes the entry of tid out of the table (0: not there). */
static int take_pending(srpv3 *s, uint32_t tid, pending *out) {
  int found = 0;
  pthread_mutex_lock(&s->mutex);
  for (size_t i = 0; i < s->n; i++) {
    if (sl_transaction_id(s->table[i].t) == tid) {
      *out = s->table[i];
      s->table[i] = s->table[--s->n];
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&s->mutex);
  return found;
}

/* doTransaction: refuse what SRPv3 cannot carry, else send the request. */
static void srpv3_do(sl_mem_slave *ms, sl_transaction *t) {
  srpv3 *s = (srpv3 *)ms->owner;
  char err[160];
  uint64_t addr = sl_transaction_address(t);
  uint32_t size = sl_transaction_size(t);
  uint32_t type = sl_transaction_type(t);
  int op = sl_srpv3_opcode(type);
  if (op < 0) {
    bump(&s->refused);
    sl_transaction_error(t, "SrpV3: unsupported transaction type 0x%" PRIx32, type);
    return;
  }
  if (sl_srpv3_check(addr, size, err, sizeof err) != 0) {
    bump(&s->refused);
    sl_transaction_error(t, "%s", err);
    return;
  }
  uint32_t hdr[5];
  uint8_t hw = (uint8_t)atomic_load(&s->hw_timeout);
  sl_srpv3_header(hdr, (uint32_t)op, sl_transaction_id(t), addr, size, hw);
  uint32_t len = SL_SRPV3_HEADER + (op == SL_SRPV3_OP_READ ? 0 : size);
  sl_frame *f = sl_master_req_frame(&s->master, len, 1);
  if (f == NULL) {
    sl_transaction_error(t, "SrpV3: out of memory for a %" PRIu32 "-byte request", len);
    return;
  }
  uint8_t head[SL_SRPV3_HEADER];
  for (int i = 0; i < 5; i++) sl_store_le32(head + 4 * i, hdr[i]);
  sl_frame_lock(f);
  int rc = sl_frame_write(f, head, 0, SL_SRPV3_HEADER);
  if (rc == SL_OK && op != SL_SRPV3_OP_READ)
    rc = sl_frame_write(f, sl_transaction_data(t), SL_SRPV3_HEADER, size);
  sl_frame_unlock(f);
  if (rc != SL_OK) {
    sl_transaction_error(t, "SrpV3: request frame too small (%s)", sl_status_str(rc));
    goto out;
  }
  if (op == SL_SRPV3_OP_POST) {
    sl_transaction_done(t);   /* no response will come */
  } else {
    rc = add_pending(s, t, hdr);
    if (rc != SL_OK) {
      sl_transaction_error(t, "SrpV3: %s", rc == SL_ECLOSED ? "stopped"
                                                              : "out of memory");
      goto out;
    }
  }
  bump(&s->tx);
  sl_master_send_frame(&s->master, f);
out:
  sl_frame_unref(f);
}

/* Counts a dropped response and logs why. */
static void drop(srpv3 *s, atomic_uint_least64_t *why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void drop(srpv3 *s, atomic_uint_least64_t *why, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  bump(&s->drops);
  bump(why);
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sl_log_write(s->log, SL_LOG_WARNING, "%s", msg);
}

/* A response frame: match it, judge it, complete the transaction. */
static void srpv3_accept(sl_slave *sv, sl_frame *f) {
  srpv3 *s = (srpv3 *)sv->owner;
  uint8_t head[SL_SRPV3_HEADER], foot[4];
  uint32_t hdr[5];
  char err[256];
  bump(&s->rx);
  sl_frame_lock(f);
  uint32_t len = sl_frame_get_payload(f);
  uint8_t ferr = sl_frame_get_error(f);
  if (ferr != 0) {
    sl_frame_unlock(f);
    drop(s, &s->shorts, "Got errored frame = 0x%x (length %" PRIu32 "), dropping",
         (unsigned)ferr, len);
    return;
  }
  if (len < SL_SRPV3_MIN_RESPONSE) {
    sl_frame_unlock(f);
    drop(s, &s->shorts, "Got undersized frame: %" PRIu32 " bytes (minimum %" PRIu32
         "), dropping", len, SL_SRPV3_MIN_RESPONSE);
    return;
  }
  sl_frame_read(f, head, 0, SL_SRPV3_HEADER);
  sl_frame_read(f, foot, len - 4, 4);
  for (int i = 0; i < 5; i++) hdr[i] = sl_load_le32(head + 4 * i);
  uint32_t footer = sl_load_le32(foot);
  pending p;
  if (!take_pending(s, hdr[1], &p)) {
    sl_frame_unlock(f);
    drop(s, &s->unknown, "Failed to find transaction id=%" PRIu32
         " (length %" PRIu32 "), dropping", hdr[1], len);
    return;
  }
  sl_transaction *t = p.t;
  if (sl_transaction_expired(t)) {
    sl_frame_unlock(f);
    drop(s, &s->late, "Dropping late response: transaction id=%" PRIu32
         " (length %" PRIu32 ") has already completed or timed out", hdr[1], len);
    goto out;
  }
  uint32_t size = sl_transaction_size(t);
  if (sl_srpv3_judge(p.expect, size, hdr, footer, len, err, sizeof err) != 0) {
    sl_frame_unlock(f);
    bump(&s->errors);
    sl_log_write(s->log, SL_LOG_WARNING, "%s", err);
    sl_transaction_error(t, "%s", err);
    goto out;
  }
  if (!sl_mem_type_is_write(sl_transaction_type(t)))
    sl_frame_read(f, sl_transaction_data(t), SL_SRPV3_HEADER, size);
  sl_frame_unlock(f);
  sl_transaction_done(t);
out:
  sl_transaction_unref(t);
}

/* Fails everything in flight; no request is sent after this. */
static void srpv3_stop(sl_object *obj) {
  srpv3 *s = (srpv3 *)obj;
  pthread_mutex_lock(&s->mutex);
  s->closed = 1;
  pending *table = s->table;
  size_t n = s->n;
  s->table = NULL;
  s->n = s->cap = 0;
  pthread_mutex_unlock(&s->mutex);
  for (size_t i = 0; i < n; i++) {
    sl_transaction_error(table[i].t, "SrpV3: stopped");
    sl_transaction_unref(table[i].t);
  }
  free(table);
}

static size_t srpv3_counters(sl_object *obj, sl_counter *out, size_t max) {
  srpv3 *s = (srpv3 *)obj;
  const sl_counter c[] = {
      {"txFrames", atomic_load(&s->tx)},       {"rxFrames", atomic_load(&s->rx)},
      {"errors", atomic_load(&s->errors)},     {"drops", atomic_load(&s->drops)},
      {"late", atomic_load(&s->late)},         {"unknown", atomic_load(&s->unknown)},
      {"short", atomic_load(&s->shorts)},      {"refused", atomic_load(&s->refused)}};
  size_t n = sizeof c / sizeof c[0];
  if (n > max) n = max;
  memcpy(out, c, n * sizeof *out);
  return n;
}

static void srpv3_destroy(sl_object *obj) {
  srpv3 *s = (srpv3 *)obj;
  srpv3_stop(obj);
  sl_master_fini(&s->master);
  sl_slave_fini(&s->slave);
  pthread_mutex_destroy(&s->mutex);
  free(s);
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
  if (pthread_mutex_init(&s->mutex, NULL) != 0) goto fail_mutex;
  sl_object_init(&s->obj, &srpv3_class);
  s->log = sl_log_get("SrpV3");
  atomic_init(&s->hw_timeout, SL_SRPV3_DEFAULT_HW_TIMEOUT);
  if (sl_slave_init(&s->slave, &srpv3_stream_ops, &s->obj) != SL_OK)
    goto fail_slave;
  if (sl_master_init(&s->master, &s->obj) != SL_OK) goto fail_master;
  sl_mem_slave_init(&s->mslave, &srpv3_mem_ops, &s->obj,
                    SL_SRPV3_MIN_ACCESS, SL_SRPV3_MAX_ACCESS);
  return s;
fail_master:
  sl_slave_fini(&s->slave);
fail_slave:
  pthread_mutex_destroy(&s->mutex);
fail_mutex:
  free(s);
  return sl_fail(err, SL_ENOMEM, NULL);
}

sl_object *sl_srpv3_object(sl_srpv3 *s) { return s != NULL ? &s->obj : NULL; }

sl_srpv3 *sl_srpv3_from_object(sl_object *obj) {
  return sl_object_is(obj, &srpv3_class) ? (srpv3 *)obj : NULL;
}

void sl_srpv3_set_hw_timeout(sl_srpv3 *s, uint8_t ticks) {
  atomic_store(&s->hw_timeout, ticks);
}

uint8_t sl_srpv3_get_hw_timeout(sl_srpv3 *s) {
  return (uint8_t)atomic_load(&s->hw_timeout);
}

size_t sl_srpv3_pending(sl_srpv3 *s) {
  pthread_mutex_lock(&s->mutex);
  size_t n = s->n;
  pthread_mutex_unlock(&s->mutex);
  return n;
}
