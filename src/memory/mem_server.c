/*
** The memory TCP bridge, server side: requests from the I/O thread are
** run one at a time on the server's own thread against the slave below,
** and each gets its response.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem_internal.h"
#include "streamlua/memory.h"
#include "streamlua/wait.h"

const char *mb_decode_request(const sl_zmtp_event *ev, mb_msg *m) {
  const sl_zmtp_part *p = ev->parts;
  if ((ev->nparts != 4 && ev->nparts != 5) || p[0].size != 4 || p[1].size != 8 ||
      p[2].size != 4 || p[3].size != 4)
    return "malformed request: want 4 or 5 parts of 4, 8, 4, 4 (, size) bytes";
  uint32_t size = sl_load_le32(p[2].data), type = sl_load_le32(p[3].data);
  if (type == SL_MEM_PROBE && (ev->nparts != 4 || size != 0))
    return "malformed probe: want 4 parts and size 0";
  if (sl_mem_type_is_write(type) && (ev->nparts != 5 || p[4].size != size))
    return "malformed write: the data part does not match the size";
  if (size > MAX_MSG)   /* its response could not be carried */
    return "request too large: size over the 64 MiB message limit";
  m->id = sl_load_le32(p[0].data);
  m->addr = sl_load_le64(p[1].data);
  m->size = size;
  m->type = type;
  m->data = sl_mem_type_is_write(type) ? p[4].data : NULL;
  m->dlen = sl_mem_type_is_write(type) ? size : 0;
  m->result = NULL;
  m->rlen = 0;
  return NULL;
}

/* Server: a request (decoded) for the server's thread. Returns 0 if it
** closed c. */
int mb_server_message(mconn *c, const mb_msg *m) {
  mb *b = mb_of(c);
  req *r = calloc(1, sizeof *r);
  if (r == NULL) goto out_nomem;
  r->id = m->id;
  r->addr = m->addr;
  r->size = m->size;
  r->type = m->type;
  if (m->data != NULL && m->size > 0) {
    r->data = malloc(m->size);
    if (r->data == NULL) goto out_nomem;
    memcpy(r->data, m->data, m->size);
  }
  sl_log_write(b->zb.log, SL_LOG_DEBUG, "request id=%u type=%u addr=0x%llx size=%u",
               (unsigned)r->id, (unsigned)r->type, (unsigned long long)r->addr,
               (unsigned)r->size);
  pthread_mutex_lock(&b->zb.mutex);
  r->from = c->serial;
  r->to = c->mate != NULL ? c->mate->serial : 0;
  if (b->rq_tail != NULL) b->rq_tail->next = r;
  else b->rq_head = r;
  b->rq_tail = r;
  b->rq_count++;
  b->rq_bytes += r->size;
  atomic_store_explicit(&b->rq_any, 1, memory_order_relaxed);
  pthread_cond_broadcast(&b->cv);
  mb_backlog_check_nolock(b, c);
  pthread_mutex_unlock(&b->zb.mutex);
  return 1;
out_nomem:
  free(r);
  sl_zconn_close(&c->zc, SL_ZCLOSE_PROTOCOL, "out of memory for a request");
  return 0;
}

void mb_server_done(mb *b, req *r) {
  pthread_mutex_lock(&b->zb.mutex);
  b->rq_count--;
  b->rq_bytes -= r->size;
  if (b->any_paused && b->resume_ev != NULL)
    event_active(b->resume_ev, EV_READ, 0);   /* under the lock: see stop_io */
  pthread_mutex_unlock(&b->zb.mutex);
  free(r->data);
  free(r);
}

/* Sends a response on the connection of the client that asked
** (mem_route.c), waiting a while for it. */
static void server_send(mb *b, const req *r, uint8_t *msg, size_t len) {
  struct timespec dl;
  sl_deadline_real(&dl, PEER_WAIT_US);
  pthread_mutex_lock(&b->zb.mutex);
  mconn *c = NULL;
  for (;;) {
    c = mb_route_nolock(b, r);
    if (c != NULL || b->zb.stopping) break;
    if (pthread_cond_timedwait(&b->cv, &b->zb.mutex, &dl) == ETIMEDOUT) break;
  }
  int ok = c != NULL && mb_queue_nolock(c, msg, len) == 0;
  int stopping = b->zb.stopping;
  pthread_mutex_unlock(&b->zb.mutex);
  if (!ok && !stopping)
    sl_pair_note(&b->zb.pair, SL_NOTE_UNROUTED, SL_LOG_ERROR,
                 "response id=%u dropped: no connection on port %u from the "
                 "client that sent the request", (unsigned)r->id,
                 (unsigned)b->zb.pair.port + 1);
}

/* Runs one request against the slave below and answers it. */
static void server_serve(mb *b, req *r) {
  char errbuf[SL_MEM_BRIDGE_RESULT_MAX + 1] = "OK";
  sl_transaction *t = NULL;
  const uint8_t *data = r->data;
  uint32_t dlen = r->data != NULL ? r->size : 0;
  if (r->type != SL_MEM_PROBE) {
    t = sl_mem_master_request(&b->master, r->addr, r->size, r->data, r->type, NULL, NULL);
    if (t == NULL) {
      snprintf(errbuf, sizeof errbuf, "memory.TcpServer: out of memory");
      dlen = 0;
      goto out_send;
    }
    while (!sl_transaction_check_deadline(t)) {
      if (sl_worker_stopping(&b->server)) goto out;   /* no answer: we are going */
      sl_transaction_wait_ms(t, 10);
    }
    if (sl_transaction_failed(t)) {
      sl_transaction_get_error(t, errbuf, sizeof errbuf);
      if (errbuf[0] == '\0') snprintf(errbuf, sizeof errbuf, "OK");
    }
    if (!sl_mem_type_is_write(r->type)) {
      data = sl_transaction_data(t);
      dlen = r->size;
    }
  }
out_send:;
  sl_zmtp_part extra[2] = {{data != NULL ? data : (const uint8_t *)"", dlen},
                           {(const uint8_t *)errbuf, strlen(errbuf)}};
  size_t len = 0;
  uint8_t *msg = mb_encode(r->id, r->addr, r->size, r->type, extra, 2, &len);
  if (msg == NULL) {
    sl_log_write(b->zb.log, SL_LOG_ERROR, "response id=%u dropped: out of memory",
                 (unsigned)r->id);
    goto out;
  }
  server_send(b, r, msg, len);
  free(msg);
out:
  sl_transaction_unref(t);
}

static int request_waits(void *arg) {
  return atomic_load_explicit(&((mb *)arg)->rq_any, memory_order_relaxed);
}

/* Takes the reading of the receiving connection `serial` (lock held). */
static sl_zconn *take_nolock(mb *b, uint64_t serial) {
  for (sl_zconn *z = b->zb.conns; z != NULL; z = z->next)
    if (((mconn *)z)->serial == serial)
      return sl_zconn_take_reading_nolock(z) ? z : NULL;
  return NULL;
}

int mb_server_main(void *arg) {
  mb *b = arg;
  sl_zconn *own = NULL;        /* the connection whose reading we hold */
  uint64_t last = 0;           /* where the last request came from */
  pthread_mutex_lock(&b->zb.mutex);
  for (;;) {
    if (b->rq_head == NULL && !b->zb.stopping) {
      /* The next request of a client that reads back what it wrote comes
      ** one round trip after our answer: we read it ourselves. */
      if (own == NULL && last != 0) own = take_nolock(b, last);
      pthread_mutex_unlock(&b->zb.mutex);
      if (own == NULL) {
        sl_wait_briefly(request_waits, b, SERVER_POLL_US);
      } else if (sl_zconn_read_until(own, request_waits, b, DIRECT_SPIN_US,
                                     SERVER_POLL_US) != 1) {
        sl_zconn_give_reading(own, 0);   /* the I/O thread reads again */
        own = NULL;
        last = 0;
      }
      pthread_mutex_lock(&b->zb.mutex);
    }
    while (b->rq_head == NULL && !b->zb.stopping) pthread_cond_wait(&b->cv, &b->zb.mutex);
    if (b->zb.stopping) break;
    req *r = b->rq_head;
    b->rq_head = r->next;
    if (b->rq_head == NULL) {
      b->rq_tail = NULL;
      atomic_store_explicit(&b->rq_any, 0, memory_order_relaxed);
    }
    if (own == NULL) last = r->from;
    pthread_mutex_unlock(&b->zb.mutex);
    server_serve(b, r);
    mb_server_done(b, r);
    pthread_mutex_lock(&b->zb.mutex);
  }
  pthread_mutex_unlock(&b->zb.mutex);
  if (own != NULL) sl_zconn_give_reading(own, 0);
  return 0;
}
