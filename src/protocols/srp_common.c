/*
** The parts of SrpV3 and SrpV0 that are the same (srp_internal.h): the
** table of requests in flight, its sweep, the counters and the request
** and response plumbing around each protocol's own bytes.
*/
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srp_internal.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"

#include "../core/bytes.h"
#include "../core/clock.h"

/* An entry outlives its transaction's timeout by this much, so a late
** response is still recognised as late and not as unknown. */
#define SWEEP_GRACE_US 10000000u

void srp_bump(atomic_uint_least64_t *c) {
  atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

int srp_node_init(srp_node *n, const sl_class *cls, const char *name,
                  const sl_mem_slave_ops *mops, const sl_slave_ops *sops,
                  uint32_t max_access) {
  n->base.name = name;
  n->base.log = sl_log_get(name);
  if (pthread_mutex_init(&n->base.mutex, NULL) != 0) return SL_ENOMEM;
  sl_object_init(&n->obj, cls);
  if (sl_slave_init(&n->slave, sops, &n->obj) != SL_OK) goto fail_slave;
  if (sl_master_init(&n->master, &n->obj) != SL_OK) goto fail_master;
  sl_mem_slave_init(&n->mslave, mops, &n->obj, 4, max_access);
  return SL_OK;
fail_master:
  sl_slave_fini(&n->slave);
fail_slave:
  pthread_mutex_destroy(&n->base.mutex);
  return SL_ENOMEM;
}

void srp_node_fini(srp_node *n) {
  srp_base_stop(&n->base);
  sl_master_fini(&n->master);
  sl_slave_fini(&n->slave);
  pthread_mutex_destroy(&n->base.mutex);
}

int srp_check(uint64_t address, uint32_t size, uint32_t max, char *err, size_t n) {
  const uint32_t min = 4;
  if (address % min != 0) {
    snprintf(err, n, "Transaction address 0x%" PRIx64
             " is not aligned to min size %" PRIu32, address, min);
    return -1;
  }
  if (size % min != 0 || size < min) {
    snprintf(err, n, "Transaction size 0x%" PRIx32
             " is not aligned to min size %" PRIu32, size, min);
    return -1;
  }
  if (size > max) {
    snprintf(err, n, "Transaction size %" PRIu32 " exceeds max size %" PRIu32, size, max);
    return -1;
  }
  return 0;
}

/* Forgets expired entries past their grace; caller holds the mutex. The
** dropped references go to `out` (released after unlock). */
static size_t sweep_locked(srp_base *b, uint64_t now, sl_transaction **out,
                           size_t max) {
  size_t k = 0;
  for (size_t i = 0; i < b->n && k < max;) {
    if (now > b->table[i].sweep_us && sl_transaction_expired(b->table[i].t)) {
      out[k++] = b->table[i].t;
      b->table[i] = b->table[--b->n];
    } else {
      i++;
    }
  }
  return k;
}

/* Puts e (its reference passes) in the table; SL_ECLOSED after stop,
** SL_ENOMEM; on failure the reference stays the caller's. */
static int add_entry(srp_base *b, const srp_pending *e) {
  sl_transaction *old[8];
  size_t nold;
  int rc = SL_OK;
  pthread_mutex_lock(&b->mutex);
  nold = sweep_locked(b, (uint64_t)sl_clock_us(), old, 8);
  if (b->closed) {
    rc = SL_ECLOSED;
    goto out;
  }
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16;
    srp_pending *p = realloc(b->table, cap * sizeof *p);
    if (p == NULL) {
      rc = SL_ENOMEM;
      goto out;
    }
    b->table = p;
    b->cap = cap;
  }
  b->table[b->n++] = *e;
out:
  pthread_mutex_unlock(&b->mutex);
  for (size_t i = 0; i < nold; i++) sl_transaction_unref(old[i]);
  return rc;
}

/* Takes the entry of tid out of the table (0: not there). */
static int take_entry(srp_base *b, uint32_t tid, srp_pending *out) {
  int found = 0;
  pthread_mutex_lock(&b->mutex);
  for (size_t i = 0; i < b->n; i++) {
    if (sl_transaction_id(b->table[i].t) == tid) {
      *out = b->table[i];
      b->table[i] = b->table[--b->n];
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&b->mutex);
  return found;
}

void srp_refuse(srp_base *b, sl_transaction *t, const char *text) {
  srp_bump(&b->refused);
  sl_transaction_error(t, "%s", text);
}

void srp_send(srp_base *b, sl_master *m, sl_transaction *t, const srp_request *r) {
  uint32_t len = r->head_len + r->data_len + r->trailer_len;
  static const uint8_t zeros[8];
  sl_frame *f = sl_master_req_frame(m, len, 1);
  if (f == NULL) {
    sl_transaction_error(t, "%s: out of memory for a %" PRIu32 "-byte request",
                         b->name, len);
    return;
  }
  sl_frame_lock(f);
  int rc = sl_frame_write(f, r->head, 0, r->head_len);
  if (rc == SL_OK && r->data_len > 0)
    rc = sl_frame_write(f, r->data, r->head_len, r->data_len);
  if (rc == SL_OK && r->trailer_len > 0)
    rc = sl_frame_write(f, zeros, r->head_len + r->data_len, r->trailer_len);
  sl_frame_unlock(f);
  if (rc != SL_OK) {
    sl_transaction_error(t, "%s: request frame too small (%s)", b->name, sl_status_str(rc));
    goto out;
  }
  if (r->post) {
    sl_transaction_done(t);   /* no response will come */
  } else {
    srp_pending e = {sl_transaction_ref(t), {0}, 0};
    memcpy(e.expect, r->expect, sizeof e.expect);
    e.sweep_us = (uint64_t)sl_clock_us() + sl_transaction_timeout(t) + SWEEP_GRACE_US;
    rc = add_entry(b, &e);
    if (rc != SL_OK) {
      sl_transaction_unref(e.t);
      sl_transaction_error(t, "%s: %s", b->name, rc == SL_ECLOSED ? "stopped"
                                                                  : "out of memory");
      goto out;
    }
  }
  srp_bump(&b->tx);
  sl_master_send_frame(m, f);
out:
  sl_frame_unref(f);
}

void srp_drop(srp_base *b, atomic_uint_least64_t *why, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  srp_bump(&b->drops);
  srp_bump(why);
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sl_log_write(b->log, SL_LOG_WARNING, "%s", msg);
}

int srp_claim(srp_base *b, const sl_frame *f, uint32_t min, uint32_t tid_at,
              uint32_t *tid, srp_pending *out) {
  uint8_t w[4];
  if (sl_frame_get_error(f) != 0) return SRP_ERRORED;
  if (sl_frame_get_payload(f) < min) return SRP_SHORT;
  sl_frame_read(f, w, tid_at, 4);
  *tid = sl_load_le32(w);
  if (!take_entry(b, *tid, out)) return SRP_UNKNOWN;
  return sl_transaction_expired(out->t) ? SRP_LATE : SRP_CLAIMED;
}

void srp_unclaim(srp_base *b, srp_pending *p) {
  if (add_entry(b, p) != SL_OK) {
    sl_transaction_error(p->t, "%s: stopped", b->name);
    sl_transaction_unref(p->t);
  }
}

void srp_base_stop(srp_base *b) {
  pthread_mutex_lock(&b->mutex);
  b->closed = 1;
  srp_pending *table = b->table;
  size_t n = b->n;
  b->table = NULL;
  b->n = b->cap = 0;
  pthread_mutex_unlock(&b->mutex);
  for (size_t i = 0; i < n; i++) {
    sl_transaction_error(table[i].t, "%s: stopped", b->name);
    sl_transaction_unref(table[i].t);
  }
  free(table);
}

size_t srp_base_pending(srp_base *b) {
  pthread_mutex_lock(&b->mutex);
  size_t n = b->n;
  pthread_mutex_unlock(&b->mutex);
  return n;
}

size_t srp_base_counters(srp_base *b, sl_counter *out, size_t max) {
  const sl_counter c[] = {
      {"txFrames", atomic_load(&b->tx)},       {"rxFrames", atomic_load(&b->rx)},
      {"errors", atomic_load(&b->errors)},     {"drops", atomic_load(&b->drops)},
      {"late", atomic_load(&b->late)},         {"unknown", atomic_load(&b->unknown)},
      {"short", atomic_load(&b->shorts)},      {"refused", atomic_load(&b->refused)}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}
