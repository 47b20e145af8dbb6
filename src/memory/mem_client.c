/*
** The memory TCP bridge, client side: a transaction becomes a request
** message and waits in the pending table (for the connection, then for
** its response) until its response, its deadline or stop() ends it.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem_internal.h"
#include "streamlua/memory.h"
#include "streamlua/wait.h"

#define READY_SLICE_US 20000   /* waitReady looks for a reason to give up */

/* Client: both directions handshaken; the push connection, or NULL. */
mconn *mb_client_push_nolock(mb *b) {
  sl_zconn *push = NULL;
  int pull = 0;
  for (sl_zconn *c = b->zb.conns; c != NULL; c = c->next) {
    if (!c->ready || c->dead) continue;
    if (c->push) push = c;
    else pull = 1;
  }
  return pull ? (mconn *)push : NULL;
}

/* Client: sends what waited for the connection, in order (lock held). */
void mb_flush_pending_nolock(mb *b) {
  mconn *c = mb_client_push_nolock(b);
  if (c == NULL) return;
  for (pend *p = b->pend; p != NULL; p = p->next) {
    if (p->sent || mb_queue_nolock(c, p->msg, p->len) != 0) continue;
    p->sent = 1;
    free(p->msg);
    p->msg = NULL;
  }
}

static pend *take_pending_nolock_(mb *b, uint32_t id) {
  for (pend **pp = &b->pend; *pp != NULL; pp = &(*pp)->next) {
    if ((*pp)->id == id) {
      pend *p = *pp;
      *pp = p->next;
      b->npend--;
      return p;
    }
  }
  return NULL;
}

void mb_pend_free(pend *p) {
  sl_transaction_hold(p->t, 0);
  sl_transaction_unref(p->t);
  free(p->msg);
  free(p);
}

const char *mb_decode_response(const sl_zmtp_event *ev, mb_msg *m) {
  const sl_zmtp_part *p = ev->parts;
  if (ev->nparts != 6 || p[0].size != 4 || p[1].size != 8 || p[2].size != 4 ||
      p[3].size != 4 || p[5].size > SL_MEM_BRIDGE_RESULT_MAX)
    return "malformed response";
  m->id = sl_load_le32(p[0].data);
  m->addr = sl_load_le64(p[1].data);
  m->size = sl_load_le32(p[2].data);
  m->type = sl_load_le32(p[3].data);
  m->data = p[4].data;
  m->dlen = p[4].size;
  m->result = p[5].data;
  m->rlen = p[5].size;
  return NULL;
}

/* Client: a response (decoded). Returns 1: it never closes c. */
int mb_client_message(mconn *c, const mb_msg *m) {
  mb *b = mb_of(c);
  uint32_t id = m->id, size = m->size, type = m->type;
  uint64_t addr = m->addr;
  int ok = m->rlen == 2 && memcmp(m->result, "OK", 2) == 0;
  if (type == SL_MEM_PROBE) {
    pthread_mutex_lock(&b->zb.mutex);
    if (ok && id > b->probe_ok) b->probe_ok = id;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->zb.mutex);
    return 1;
  }
  pthread_mutex_lock(&b->zb.mutex);
  pend *pe = take_pending_nolock_(b, id);
  pthread_mutex_unlock(&b->zb.mutex);
  if (pe == NULL) {
    sl_log_write(b->zb.log, SL_LOG_WARNING, "Failed to find transaction id=%u", (unsigned)id);
    return 1;
  }
  sl_transaction *t = pe->t;
  if (sl_transaction_expired(t)) {
    sl_log_write(b->zb.log, SL_LOG_WARNING, "Dropping late response for transaction id=%u",
                 (unsigned)id);
  } else if (addr != sl_transaction_address(t) || size != sl_transaction_size(t) ||
             type != sl_transaction_type(t)) {
    sl_transaction_error(t, "Transaction data mismatch in TcpClient");
  } else if (!sl_mem_type_is_write(type) && m->dlen != size) {
    sl_transaction_error(t, "Received transaction response did not match header size");
  } else {
    if (!sl_mem_type_is_write(type)) memcpy(sl_transaction_data(t), m->data, size);
    if (ok) sl_transaction_done(t);
    else if (m->rlen == 0)
      sl_transaction_error(t, "memory.TcpClient %s:%u: empty result in the response "
                           "(request id=%u)", b->zb.addr, (unsigned)b->zb.pair.port, (unsigned)id);
    else sl_transaction_error(t, "%.*s", (int)m->rlen, (const char *)m->result);
  }
  mb_pend_free(pe);
  return 1;
}

/* Client: fails the transactions past their deadline with a clear error. */
void mb_sweep_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mb *b = arg;
  struct timespec now;
  sl_clock_now(&now);
  pend *late = NULL;
  pthread_mutex_lock(&b->zb.mutex);
  for (pend **pp = &b->pend; *pp != NULL;) {
    pend *p = *pp;
    if (sl_ts_cmp(&now, &p->deadline) >= 0 || sl_transaction_expired(p->t)) {
      *pp = p->next;
      b->npend--;
      p->next = late;
      late = p;
    } else {
      pp = &p->next;
    }
  }
  mb_client_unpark_nolock(b);
  pthread_mutex_unlock(&b->zb.mutex);
  while (late != NULL) {
    pend *p = late;
    late = p->next;
    double s = (double)sl_transaction_timeout(p->t) / 1e6;
    /* Rogue's timeout text first, then the cause */
    if (p->sent)
      sl_transaction_error(p->t, SL_MEM_TIMEOUT_FMT " memory.TcpClient %s:%u: no "
                           "response within %g s (request id=%u sent)", (unsigned)p->id,
                           b->zb.addr, (unsigned)b->zb.pair.port, s, (unsigned)p->id);
    else
      sl_transaction_error(p->t, SL_MEM_TIMEOUT_FMT " memory.TcpClient %s:%u: not "
                           "connected to the server within %g s (request id=%u not sent)",
                           (unsigned)p->id, b->zb.addr, (unsigned)b->zb.pair.port, s,
                           (unsigned)p->id);
    mb_pend_free(p);
  }
}

void mb_client_do(sl_mem_slave *s, sl_transaction *t) {
  mb *b = (mb *)s->owner;
  uint32_t type = sl_transaction_type(t), size = sl_transaction_size(t);
  uint32_t id = sl_transaction_id(t);
  sl_zmtp_part data = {sl_transaction_data(t), size};
  size_t len = 0;
  uint8_t *msg = mb_encode(id, sl_transaction_address(t), size, type, &data,
                        sl_mem_type_is_write(type) ? 1 : 0, &len);
  pend *p = calloc(1, sizeof *p);
  if (msg == NULL || p == NULL) {
    free(msg);
    free(p);
    sl_transaction_error(t, "memory.TcpClient: out of memory");
    return;
  }
  pthread_mutex_lock(&b->zb.mutex);
  if (b->zb.stopping) goto out_stopped;
  mconn *c = mb_client_push_nolock(b);
  if (type == SL_MEM_POST) {   /* Rogue: complete at once, not tracked */
    int ok = c != NULL && mb_queue_nolock(c, msg, len) == 0;
    pthread_mutex_unlock(&b->zb.mutex);
    free(msg);
    free(p);
    if (ok) sl_transaction_done(t);
    else sl_transaction_error(t, "memory.TcpClient %s:%u: not connected to the "
                              "server, post id=%u not sent", b->zb.addr,
                              (unsigned)b->zb.pair.port, (unsigned)id);
    return;
  }
  p->t = sl_transaction_ref(t);
  /* held while pending: the sweep fails it at its deadline with the cause;
  ** the waiter's own deadline would say only Rogue's text, and on a loaded
  ** machine it could look first (mb_pend_free releases the hold) */
  sl_transaction_hold(t, 1);
  p->id = id;
  uint64_t to = sl_transaction_timeout(t), margin = to / 10;
  if (margin > 50000) margin = 50000;
  sl_deadline_after(&p->deadline, (int64_t)(to - margin));
  if (c != NULL && mb_queue_nolock(c, msg, len) == 0) {
    p->sent = 1;
    free(msg);
  } else {
    p->msg = msg;                /* sent when the connection comes up */
    p->len = len;
  }
  pend **pp = &b->pend;
  while (*pp != NULL) pp = &(*pp)->next;
  *pp = p;
  b->npend++;
  pthread_mutex_unlock(&b->zb.mutex);
  sl_transaction_set_helper(t, &b->helper);
  return;
out_stopped:
  pthread_mutex_unlock(&b->zb.mutex);
  free(msg);
  free(p);
  sl_transaction_error(t, "memory.TcpClient %s:%u: stopped", b->zb.addr, (unsigned)b->zb.pair.port);
}

void mb_client_unpark_nolock(mb *b) {
  for (sl_zconn *z = b->zb.conns; z != NULL; z = z->next) {
    if (atomic_load(&z->reading) != SL_ZREAD_PARKED) continue;
    if (z->parked_seen) sl_zconn_unpark_nolock(z);
    else z->parked_seen = 1;
  }
}

static int tran_done(void *arg) { return sl_transaction_is_done(arg); }

int mb_client_help(sl_tran_helper *h, sl_transaction *t, long us) {
  mb *b = (mb *)(void *)((char *)h - offsetof(mb, helper));
  sl_zconn *c = NULL;
  pthread_mutex_lock(&b->zb.mutex);
  for (sl_zconn *z = b->zb.conns; z != NULL && !b->zb.stopping; z = z->next) {
    if (!z->push && sl_zconn_take_reading_nolock(z)) {
      c = z;
      break;
    }
  }
  pthread_mutex_unlock(&b->zb.mutex);
  if (c == NULL) return sl_wait_briefly(tran_done, t, us);   /* another reads */
  int done = sl_zconn_read_until(c, tran_done, t, DIRECT_SPIN_US, us) == 1;
  sl_zconn_give_reading(c, done);   /* parked while answers come in time */
  return done || sl_transaction_is_done(t);
}

size_t sl_mem_bridge_pending(sl_mem_bridge *b) {
  pthread_mutex_lock(&b->zb.mutex);
  size_t k = b->npend;
  pthread_mutex_unlock(&b->zb.mutex);
  return k;
}

int sl_mem_client_wait_ready(sl_mem_bridge *b, uint64_t timeout_us, uint64_t period_us) {
  if (b->zb.pair.server) return sl_mem_bridge_ready(b);
  struct timespec end, now;
  sl_deadline_after(&end, (int64_t)timeout_us);
  int ok = 0;
  pthread_mutex_lock(&b->zb.mutex);
  for (;;) {
    sl_clock_now(&now);
    if (b->zb.stopping || sl_ts_cmp(&now, &end) >= 0 || sl_wait_cancelled()) break;
    uint32_t id = ++b->probe_next;
    mconn *c = mb_client_push_nolock(b);
    size_t len = 0;
    uint8_t *msg = c != NULL ? mb_encode(id, 0, 0, SL_MEM_PROBE, NULL, 0, &len) : NULL;
    if (msg != NULL) mb_queue_nolock(c, msg, len);
    free(msg);
    /* The answer, until the next probe is due; in short slices, so a
    ** waiter that must give up (wait.h) sees it. */
    struct timespec next = now, dl;
    sl_ts_add_us(&next, (int64_t)period_us);
    while (b->probe_ok < id && !b->zb.stopping && !sl_wait_cancelled()) {
      sl_clock_now(&now);
      if (sl_ts_cmp(&now, &next) >= 0) break;
      sl_deadline_real(&dl, READY_SLICE_US);
      pthread_cond_timedwait(&b->cv, &b->zb.mutex, &dl);
    }
    if (b->probe_ok >= id) {
      ok = 1;
      break;
    }
  }
  pthread_mutex_unlock(&b->zb.mutex);
  return ok;
}
