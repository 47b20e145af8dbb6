/*
** SrpV3Emulation: the firmware end of SRPv3, for tests (rogue-reference
** 6.3). A request is served in the sender's thread, against a sparse
** memory (an Emulate node: 4 KiB pages, unwritten bytes read 0, where
** Rogue gives random bytes), and the response is sent from its own master
** before acceptFrame returns: no thread hand-off, so an in-process
** register round trip costs no wake-up. Requests it cannot serve are
** dropped, logged and counted, with no response, as Rogue does.
*/
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/memory.h"
#include "streamlua/slave.h"
#include "streamlua/srp.h"
#include "streamlua/status.h"

#include "../core/bytes.h"

typedef struct sl_srpv3_emulation emulation;

struct sl_srpv3_emulation {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  sl_log *log;
  sl_emulate *mem;               /* the sparse memory (owned, thread-safe) */
  atomic_int stopping;
  atomic_uint_least64_t rx, tx, drops;
};

/* Counts a dropped request and logs why. */
static void drop(emulation *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void drop(emulation *e, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  atomic_fetch_add_explicit(&e->drops, 1, memory_order_relaxed);
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sl_log_write(e->log, SL_LOG_WARNING, "%s", msg);
}

/* One memory access through the Emulate node; NULL on failure. */
static sl_transaction *access_mem(emulation *e, uint64_t addr, uint32_t size,
                                  uint32_t type, const uint8_t *data) {
  sl_transaction *t = sl_transaction_new(addr, size, type, data, 1000000u);
  if (t == NULL) return NULL;
  sl_mem_slave_do_transaction(sl_emulate_object(e->mem)->mem_slave, t);
  if (sl_transaction_failed(t)) {
    sl_transaction_unref(t);
    return NULL;
  }
  return t;
}

/* Serves one request (the frame is only ours now). */
static void serve(emulation *e, sl_frame *f) {
  uint8_t head[SL_SRPV3_HEADER];
  sl_frame_lock(f);
  uint32_t len = sl_frame_get_payload(f);
  uint32_t ferr = sl_frame_get_error(f);
  if (ferr != 0) {
    sl_frame_unlock(f);
    drop(e, "Got errored frame = 0x%" PRIx32 ", dropping", ferr);
    return;
  }
  if (len < SL_SRPV3_HEADER) {
    sl_frame_unlock(f);
    drop(e, "Got undersized frame: %" PRIu32 " bytes, dropping", len);
    return;
  }
  sl_frame_read(f, head, 0, SL_SRPV3_HEADER);
  uint32_t w0 = sl_load_le32(head), op = (w0 >> 8) & 0x3u;
  uint32_t size = sl_load_le32(head + 16) + 1;   /* W4 0xFFFFFFFF wraps to 0 */
  uint64_t addr = sl_load_le64(head + 8);
  if ((w0 & 0xFFu) != SL_SRPV3_VERSION) {
    sl_frame_unlock(f);
    drop(e, "Bad version 0x%" PRIx32 ", dropping", w0 & 0xFFu);
    return;
  }
  if (op == SL_SRPV3_OP_NULL) {
    sl_frame_unlock(f);
    drop(e, "Null opcode (W0 0x%08" PRIx32 "), dropping", w0);
    return;
  }
  if (size < 4 || size > SL_SRPV3_MAX_ACCESS || size % 4 != 0) {
    sl_frame_unlock(f);
    drop(e, "Bad request size %" PRIu32 ", dropping", size);
    return;
  }
  int write = op == SL_SRPV3_OP_WRITE || op == SL_SRPV3_OP_POST;
  if (write && len < SL_SRPV3_HEADER + size) {
    sl_frame_unlock(f);
    drop(e, "Write request too short: %" PRIu32 " bytes, dropping", len);
    return;
  }
  uint8_t *data = NULL;
  if (write) {
    data = malloc(size);
    if (data != NULL) sl_frame_read(f, data, SL_SRPV3_HEADER, size);
  }
  sl_frame_unlock(f);
  if (write && data == NULL) {
    drop(e, "Out of memory for %" PRIu32 " bytes, dropping", size);
    return;
  }
  sl_transaction *t = access_mem(e, addr, size, write ? SL_MEM_WRITE : SL_MEM_READ, data);
  free(data);
  if (t == NULL) {
    drop(e, "Memory access of %" PRIu32 " bytes failed, dropping", size);
    return;
  }
  if (op == SL_SRPV3_OP_POST) goto out;   /* posted: no response */
  sl_frame *r = sl_master_req_frame(&e->master, SL_SRPV3_MIN_RESPONSE + size, 1);
  if (r == NULL) {
    drop(e, "Out of memory for a %" PRIu32 "-byte response, dropping", size + 24);
    goto out;
  }
  static const uint8_t zero[4];
  sl_frame_lock(r);
  int rc = sl_frame_write(r, head, 0, SL_SRPV3_HEADER);
  if (rc == SL_OK) rc = sl_frame_write(r, sl_transaction_data(t), SL_SRPV3_HEADER, size);
  if (rc == SL_OK) rc = sl_frame_write(r, zero, SL_SRPV3_HEADER + size, 4);
  sl_frame_unlock(r);
  if (rc == SL_OK) {
    atomic_fetch_add_explicit(&e->tx, 1, memory_order_relaxed);
    sl_master_send_frame(&e->master, r);
  } else {
    drop(e, "Response frame too small for %" PRIu32 " bytes, dropping", size);
  }
  sl_frame_unref(r);
out:
  sl_transaction_unref(t);
}

/* Serves the request now, in the sender's thread. */
static void emulation_accept(sl_slave *s, sl_frame *f) {
  emulation *e = (emulation *)s->owner;
  atomic_fetch_add_explicit(&e->rx, 1, memory_order_relaxed);
  if (atomic_load_explicit(&e->stopping, memory_order_acquire)) {
    atomic_fetch_add_explicit(&e->drops, 1, memory_order_relaxed);
    return;
  }
  serve(e, f);
}

/* From now on requests are dropped (counted). Idempotent. */
static void emulation_stop(sl_object *obj) {
  atomic_store_explicit(&((emulation *)obj)->stopping, 1, memory_order_release);
}

static size_t emulation_counters(sl_object *obj, sl_counter *out, size_t max) {
  emulation *e = (emulation *)obj;
  const sl_counter c[] = {{"rxFrames", atomic_load(&e->rx)},
                          {"txFrames", atomic_load(&e->tx)},
                          {"drops", atomic_load(&e->drops)}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

static void emulation_destroy(sl_object *obj) {
  emulation *e = (emulation *)obj;
  emulation_stop(obj);
  sl_master_fini(&e->master);
  sl_slave_fini(&e->slave);
  sl_object_unref(sl_emulate_object(e->mem));
  free(e);
}

static const sl_slave_ops emulation_ops = {.accept_frame = emulation_accept};

static const sl_class emulation_class = {.name = "srp.SrpV3Emulation",
                                         .destroy = emulation_destroy,
                                         .stop = emulation_stop,
                                         .counters = emulation_counters};

sl_srpv3_emulation *sl_srpv3_emulation_new(sl_error *err) {
  emulation *e = calloc(1, sizeof *e);
  if (e == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  e->mem = sl_emulate_new(4, 0, err);
  if (e->mem == NULL) goto fail_mem;
  atomic_init(&e->stopping, 0);
  sl_object_init(&e->obj, &emulation_class);
  e->log = sl_log_get("SrpV3Emulation");
  if (sl_slave_init(&e->slave, &emulation_ops, &e->obj) != SL_OK) goto fail_slave;
  if (sl_master_init(&e->master, &e->obj) != SL_OK) goto fail_master;
  return e;
fail_master:
  sl_slave_fini(&e->slave);
fail_slave:
  sl_object_unref(sl_emulate_object(e->mem));
  sl_error_set(err, SL_ENOMEM, NULL);
fail_mem:
  free(e);
  return NULL;
}

sl_object *sl_srpv3_emulation_object(sl_srpv3_emulation *e) {
  return e != NULL ? &e->obj : NULL;
}

sl_srpv3_emulation *sl_srpv3_emulation_from_object(sl_object *obj) {
  return sl_object_is(obj, &emulation_class) ? (emulation *)obj : NULL;
}
