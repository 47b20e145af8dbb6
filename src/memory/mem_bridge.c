/*
** The memory TCP bridge (see mem_bridge.h and mem_internal.h): the
** message encoding, the connection hooks and the object. The client's
** transactions are in mem_client.c, the server's thread in mem_server.c.
*/
#include "streamlua/mem_bridge.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "../net/sock.h"
#include "mem_internal.h"
#include "streamlua/log.h"
#include "streamlua/status.h"
#include "streamlua/zmtp.h"

/* Encodes the header parts (and data) into one malloc'd ZMTP message. */
uint8_t *mb_encode(uint32_t id, uint64_t addr, uint32_t size, uint32_t type,
                       const sl_zmtp_part *extra, size_t nextra, size_t *len) {
  uint8_t h[20];
  sl_store_le32(h, id);
  sl_store_le64(h + 4, addr);
  sl_store_le32(h + 12, size);
  sl_store_le32(h + 16, type);
  sl_zmtp_part parts[6] = {{h, 4}, {h + 4, 8}, {h + 12, 4}, {h + 16, 4}};
  for (size_t i = 0; i < nextra; i++) parts[4 + i] = extra[i];
  uint64_t n = sl_zmtp_encoded_size(parts, 4 + nextra);
  uint8_t *m = malloc((size_t)n);
  if (m == NULL) return NULL;
  *len = sl_zmtp_encode(parts, 4 + nextra, m, (size_t)n);
  return m;
}

/* ---- the connection hooks (zmtp_conn.h; the I/O thread) ---- */

static int conn_open_nolock(sl_zconn *zc) {
  mb *b = mb_of((mconn *)zc);
  if (b->zb.pair.server) mb_route_add_nolock(b, (mconn *)zc);
  return 1;
}

static void conn_ready_nolock(sl_zconn *zc) {
  mb *b = mb_of((mconn *)zc);
  if (!b->zb.pair.server) mb_flush_pending_nolock(b);   /* in request order */
  pthread_cond_broadcast(&b->cv);
}

/* A request (server) or a response (client); a malformed one closes the
** connection. 0 if c was closed. */
static int conn_message(sl_zconn *zc, const sl_zmtp_event *ev) {
  mconn *c = (mconn *)zc;
  int server = mb_of(c)->zb.pair.server;
  mb_msg m;
  const char *bad = server ? mb_decode_request(ev, &m) : mb_decode_response(ev, &m);
  if (bad != NULL) {
    char why[160];
    snprintf(why, sizeof why, "%s (%zu parts)", bad, ev->nparts);
    sl_zconn_close(zc, SL_ZCLOSE_PROTOCOL, why);
    return 0;
  }
  return server ? mb_server_message(c, &m) : mb_client_message(c, &m);
}

static void conn_writable(sl_zconn *zc) {
  mb *b = mb_of((mconn *)zc);
  size_t wrote = 0;
  if (sl_zconn_drain(zc, 1, &wrote) < 0 || wrote == 0) return;
  pthread_mutex_lock(&b->zb.mutex);
  if (b->any_paused) mb_backlog_resume_nolock(b);   /* room for responses */
  pthread_mutex_unlock(&b->zb.mutex);
}

static void conn_close_nolock(sl_zconn *zc) {
  mb *b = mb_of((mconn *)zc);
  if (b->zb.pair.server) mb_route_remove_nolock(b, (mconn *)zc);
}

/* On the I/O thread as the bridge starts: a server's resume event, a
** client's sweep. */
static int bridge_start_io(sl_zbridge *zb, struct event_base *base) {
  mb *b = SL_ZBRIDGE_OWNER(mb, zb);
  if (zb->pair.server) {
    b->resume_ev = event_new(base, -1, 0, mb_resume_cb, b);
    return b->resume_ev != NULL ? 0 : ENOMEM;
  }
  b->sweep = event_new(base, -1, EV_PERSIST, mb_sweep_cb, b);
  if (b->sweep == NULL) return ENOMEM;
  struct timeval tv = {0, SWEEP_MS * 1000};
  event_add(b->sweep, &tv);
  return 0;
}

static void bridge_stop_io(sl_zbridge *zb) {
  mb *b = SL_ZBRIDGE_OWNER(mb, zb);
  if (b->sweep) event_free(b->sweep);
  b->sweep = NULL;
  pthread_mutex_lock(&zb->mutex);    /* the server's thread activates it */
  if (b->resume_ev) event_free(b->resume_ev);
  b->resume_ev = NULL;
  pthread_mutex_unlock(&zb->mutex);
}

static const sl_zconn_ops conn_ops = {
    .conn_size = sizeof(mconn),
    .on_open_nolock = conn_open_nolock,
    .on_ready_nolock = conn_ready_nolock,
    .on_message = conn_message,
    .on_writable = conn_writable,
    .on_close_nolock = conn_close_nolock,
    .on_start = bridge_start_io,
    .on_stop = bridge_stop_io,
};

/* ---- the client's slave role ---- */

static const sl_mem_slave_ops client_ops = {.do_transaction = mb_client_do};

/* ---- the object ---- */

static void mb_stop(sl_object *obj) {
  mb *b = (mb *)obj;
  pthread_mutex_lock(&b->zb.mutex);
  int was = b->zb.stopping;
  b->zb.stopping = 1;
  sl_worker_request_stop(&b->server);   /* its waits downstream give up */
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->zb.mutex);
  if (was) return;
  sl_zbridge_stop_io(&b->zb);
  sl_worker_join(&b->server);   /* with the caller's wait hook; it gives
                                   back the reading it held */
  pthread_mutex_lock(&b->zb.mutex);
  pend *left = b->pend;
  b->pend = NULL;
  b->npend = 0;
  req *rq = b->rq_head;
  b->rq_head = b->rq_tail = NULL;
  pthread_mutex_unlock(&b->zb.mutex);
  while (left != NULL) {
    pend *p = left;
    left = p->next;
    sl_transaction_error(p->t, "memory.TcpClient %s:%u: stopped", b->zb.addr,
                         (unsigned)b->zb.pair.port);
    mb_pend_free(p);
  }
  while (rq != NULL) {
    req *r = rq;
    rq = r->next;
    free(r->data);
    free(r);
  }
  while (atomic_load(&b->helper.users) > 0) sched_yield();   /* waiters reading */
}

static void mb_destroy(sl_object *obj) {
  mb *b = (mb *)obj;
  mb_stop(obj);
  sl_zbridge_release(&b->zb);
  if (b->zb.pair.server) sl_mem_master_fini(&b->master);
  pthread_cond_destroy(&b->cv);
  sl_zbridge_fini(&b->zb);
  free(b);
}

static size_t mb_counters(sl_object *obj, sl_counter *out, size_t max) {
  mb *b = (mb *)obj;
  uint32_t conns = 0;
  uint64_t resp = 0;
  pthread_mutex_lock(&b->zb.mutex);
  for (sl_zconn *c = b->zb.conns; c != NULL; c = c->next) {
    conns++;
    if (c->push) resp += sl_zconn_queued(c);
  }
  uint64_t rq = b->rq_count, rqb = b->rq_bytes;
  pthread_mutex_unlock(&b->zb.mutex);
  sl_pair *p = &b->zb.pair;
  sl_counter c[] = {{"connections", conns},
                    {"errors", atomic_load(&b->zb.errors)},
                    {"refused", atomic_load(&p->notes[SL_NOTE_REFUSED])},
                    {"handshakeTimeouts", atomic_load(&p->notes[SL_NOTE_HANDSHAKE])},
                    {"pendingBytes", atomic_load(&p->pending)},
                    {"pendingCloses", atomic_load(&p->notes[SL_NOTE_PENDING])},
                    {"acceptErrors", atomic_load(&p->notes[SL_NOTE_ACCEPT])},
                    {"requests", rq},
                    {"requestBytes", rqb},
                    {"responseBytes", resp},
                    {"readPauses", atomic_load(&p->notes[SL_NOTE_BACKLOG])},
                    {"unrouted", atomic_load(&p->notes[SL_NOTE_UNROUTED])}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

static const sl_class server_class = {.name = "memory.TcpServer",
                                      .destroy = mb_destroy,
                                      .stop = mb_stop,
                                      .counters = mb_counters};
static const sl_class client_class = {.name = "memory.TcpClient",
                                      .destroy = mb_destroy,
                                      .stop = mb_stop,
                                      .counters = mb_counters};

static mb *mb_new(const char *addr, uint32_t port, int server, sl_error *err) {
  char why[SL_ERROR_MAX] = "";
  if (port > 65534 || (!server && port == 0)) {
    sl_sock_error(why, sizeof why, "bad port for", addr, port, EINVAL);
    return sl_fail(err, SL_EINVAL, "%s", why);
  }
  mb *b = calloc(1, sizeof *b);
  if (b == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  if (sl_zbridge_init(&b->zb, &conn_ops, addr) != 0) goto out_free;
  b->zb.max_size = MAX_MSG;
  b->zb.max_parts = 8;
  b->zb.late_acks = 1;         /* small messages each way (mem_internal.h) */
  sl_object_init(&b->obj, server ? &server_class : &client_class);
  atomic_init(&b->max_requests, MAX_REQUESTS);
  b->helper.help = mb_client_help;
  atomic_init(&b->helper.users, 0);
  atomic_init(&b->max_request_bytes, MAX_REQUEST_BYTES);
  atomic_init(&b->max_response_bytes, MAX_RESPONSE_BYTES);
  if (pthread_cond_init(&b->cv, NULL) != 0) goto out_base;
  if (server) {
    if (sl_mem_master_init(&b->master, &b->obj) != SL_OK) goto out_cond;
  } else {
    sl_mem_slave_init(&b->slave, &client_ops, &b->obj, 4, 0xFFFFFFFFu);
  }
  if (sl_zbridge_open(&b->zb, port, server, why, sizeof why) != 0) goto out_master;
  char name[128];
  snprintf(name, sizeof name, "memory.%s.%s.%u", server ? "TcpServer" : "TcpClient",
           b->zb.addr, (unsigned)b->zb.pair.port);
  if (sl_zbridge_start(&b->zb, name, why, sizeof why) != 0) goto out_master;
  if (server) {
    int trc = sl_worker_start(&b->server, "sl-mem-srv", 0, mb_server_main, NULL, b);
    if (trc != 0) {
      sl_sock_error(why, sizeof why, "cannot start", addr, port, trc);
      sl_zbridge_stop_io(&b->zb);
      sl_zbridge_release(&b->zb);
      goto out_master;
    }
  }
  sl_log_write(b->zb.log, SL_LOG_DEBUG, "%s on %s:%u and %u", server ? "bound" : "connecting",
               b->zb.addr, (unsigned)b->zb.pair.port, (unsigned)b->zb.pair.port + 1);
  return b;
out_master:
  if (server) sl_mem_master_fini(&b->master);
out_cond:
  pthread_cond_destroy(&b->cv);
out_base:
  sl_zbridge_fini(&b->zb);
out_free:
  free(b);
  if (why[0] == '\0') return sl_fail(err, SL_ENOMEM, NULL);
  return sl_fail(err, SL_EIO, "%s", why);
}

sl_mem_bridge *sl_mem_server_new(const char *addr, uint32_t port, sl_error *err) {
  return mb_new(addr, port, 1, err);
}

sl_mem_bridge *sl_mem_client_new(const char *addr, uint32_t port, sl_error *err) {
  return mb_new(addr, port, 0, err);
}

sl_object *sl_mem_bridge_object(sl_mem_bridge *b) { return b != NULL ? &b->obj : NULL; }

sl_mem_bridge *sl_mem_bridge_from_object(sl_object *obj) {
  if (!sl_object_is(obj, &server_class) && !sl_object_is(obj, &client_class))
    return NULL;
  return (mb *)obj;
}

int sl_mem_bridge_is_server(sl_mem_bridge *b) { return b->zb.pair.server; }

int sl_mem_bridge_ready(sl_mem_bridge *b) { return sl_zbridge_ready(&b->zb) == 3; }

uint32_t sl_mem_bridge_port(sl_mem_bridge *b) { return b->zb.pair.port; }

void sl_mem_bridge_set_max_connections(sl_mem_bridge *b, uint32_t max) {
  atomic_store(&b->zb.pair.max_conns, max);
}

void sl_mem_bridge_set_handshake_timeout(sl_mem_bridge *b, int64_t us) {
  atomic_store(&b->zb.pair.handshake_us, us > 0 ? us : 0);
}

void sl_mem_bridge_set_max_pending(sl_mem_bridge *b, uint64_t bytes) {
  atomic_store(&b->zb.pair.max_pending, bytes);
}

void sl_mem_server_set_max_requests(sl_mem_bridge *b, uint32_t count) {
  atomic_store(&b->max_requests, count);
}

void sl_mem_server_set_max_request_bytes(sl_mem_bridge *b, uint64_t bytes) {
  atomic_store(&b->max_request_bytes, bytes);
}

void sl_mem_server_set_max_response_bytes(sl_mem_bridge *b, uint64_t bytes) {
  atomic_store(&b->max_response_bytes, bytes);
}
