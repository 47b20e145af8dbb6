/*
** The stream TCP bridge (see tcp_bridge.h and tcp_internal.h): the object,
** its connection hooks, and its delivery (a task of the delivery pool).
*/
#include "streamlua/tcp_bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"
#include "tcp_internal.h"

/* ---- the connection hooks (zmtp_conn.h) ---- */

static int conn_open_nolock(sl_zconn *c) {
  return c->push || !tcp_bridge_of(c)->rx_paused;
}

static void conn_ready_nolock(sl_zconn *c) {
  pthread_cond_broadcast(&tcp_bridge_of(c)->send_cv);   /* a peer for senders */
}

/* On I/O thread 0 as the bridge starts and stops: the resume event. */
static int bridge_start_io(sl_zbridge *zb, struct event_base *base) {
  bridge *b = SL_ZBRIDGE_OWNER(bridge, zb);
  b->resume_ev = event_new(base, -1, 0, tcp_resume_cb, b);
  return b->resume_ev != NULL ? 0 : ENOMEM;
}

static void bridge_stop_io(sl_zbridge *zb) {
  bridge *b = SL_ZBRIDGE_OWNER(bridge, zb);
  if (b->resume_ev) {      /* no one activates it once stopping is set */
    event_free(b->resume_ev);
    b->resume_ev = NULL;
  }
}

static const sl_zconn_ops conn_ops = {
    .conn_size = sizeof(conn),
    .on_open_nolock = conn_open_nolock,
    .on_ready_nolock = conn_ready_nolock,
    .on_message = tcp_conn_message,
    .on_read_done = tcp_conn_read_done,
    .on_writable = tcp_conn_writable,
    .on_closed = tcp_conn_closed,
    .on_start = bridge_start_io,
    .on_stop = bridge_stop_io,
};

/* ---- delivery (deliver.h) ---- */

/*
** One run of the delivery pool: takes up to half the queue's frame limit
** (one lock; the pool's returns batched as large), hands them downstream
** as they are, and counts them delivered. Frames taken count toward the
** limits until then. Returns whether more wait.
*/
static int delivery_run(sl_deliver_task *t) {
  bridge *b = (bridge *)((char *)t - offsetof(bridge, delivery));
  sl_frame *batch[DELIVER_MAX];
  uint64_t bytes = 0;
  pthread_mutex_lock(&b->zb.mutex);
  if (b->zb.stopping || b->rx_count == 0) {
    b->rx_woken = 0;
    pthread_mutex_unlock(&b->zb.mutex);
    return 0;
  }
  uint32_t n = b->rx_count < DELIVER_MAX ? b->rx_count : DELIVER_MAX;
  for (uint32_t i = 0; i < n; i++) {
    batch[i] = b->rx[b->rx_head].f;
    bytes += b->rx[b->rx_head].pay;
    b->rx_head = (b->rx_head + 1) % b->rx_cap;
  }
  b->rx_count -= n;
  b->rx_busy += n;
  pthread_mutex_unlock(&b->zb.mutex);
  sl_master_send_frames(&b->master, batch, n);
  sl_frame_unref_many(batch, n);
  pthread_mutex_lock(&b->zb.mutex);
  if (!b->closing) {        /* else the stop empties the queue after us */
    b->rx_qbytes -= bytes;
    b->rx_busy -= n;
  }
  if (b->rx_paused && !b->zb.stopping && tcp_rx_room_nolock(b))
    event_active(b->resume_ev, EV_READ, 0);   /* under the lock: see stop */
  int more = b->rx_count > 0 && !b->zb.stopping;
  if (!more) b->rx_woken = 0;   /* the next frames queued wake it again */
  pthread_mutex_unlock(&b->zb.mutex);
  return more;
}

/* ---- the object ---- */

/* What the constructor set up, let go again. */
static void bridge_free(bridge *b) {
  sl_zbridge_fini(&b->zb);
  pthread_cond_destroy(&b->send_cv);
  free(b->rx);
  tcp_cache_unref(b->blocks);
  free(b);
}


/* Phase one of a stop: senders and a delivery under way give up. */
static void bridge_cancel(sl_object *obj) {
  bridge *b = (bridge *)obj;
  pthread_mutex_lock(&b->zb.mutex);
  b->zb.stopping = 1;
  pthread_cond_broadcast(&b->send_cv);
  pthread_mutex_unlock(&b->zb.mutex);
  sl_deliver_cancel(&b->delivery);
}

static void bridge_stop(sl_object *obj) {
  bridge *b = (bridge *)obj;
  bridge_cancel(obj);
  pthread_mutex_lock(&b->zb.mutex);
  int was = b->closing;
  b->closing = 1;
  pthread_mutex_unlock(&b->zb.mutex);
  if (was) return;
  sl_zbridge_stop_io(&b->zb);
  /* A pool thread may be delivering, waiting on a full Lua mailbox: it
  ** gives up, and the caller waits with its wait hook, which keeps Lua
  ** slaves fed. Frames still queued are dropped, counted. */
  sl_deliver_detach(&b->delivery);
  pthread_mutex_lock(&b->zb.mutex);
  uint32_t n = b->rx_count;
  for (uint32_t i = 0; i < n; i++) sl_frame_unref(b->rx[(b->rx_head + i) % b->rx_cap].f);
  b->rx_count = 0;
  b->rx_busy = 0;
  b->rx_qbytes = 0;
  pthread_mutex_unlock(&b->zb.mutex);
  atomic_fetch_add(&b->drops, n);
}

static void bridge_destroy(sl_object *obj) {
  bridge *b = (bridge *)obj;
  bridge_stop(obj);
  sl_zbridge_release(&b->zb);
  sl_master_fini(&b->master);
  sl_slave_fini(&b->slave);
  bridge_free(b);
}

/* Bytes queued to send, all connections (lock held). */
static uint64_t tx_queued_nolock(bridge *b) {
  uint64_t n = 0;
  for (sl_zconn *c = b->zb.conns; c != NULL; c = c->next) n += ((conn *)c)->obytes;
  return n;
}

static size_t bridge_counters(sl_object *obj, sl_counter *out, size_t max) {
  bridge *b = (bridge *)obj;
  pthread_mutex_lock(&b->zb.mutex);
  uint64_t limit = b->max_queue_bytes, rxq = b->rx_qbytes, txq = tx_queued_nolock(b);
  pthread_mutex_unlock(&b->zb.mutex);
  sl_counter c[] = {{"txFrames", atomic_load(&b->tx_frames)},
                    {"txBytes", atomic_load(&b->tx_bytes)},
                    {"rxFrames", atomic_load(&b->rx_frames)},
                    {"rxBytes", atomic_load(&b->rx_bytes)},
                    {"drops", atomic_load(&b->drops)},
                    {"errors", atomic_load(&b->zb.errors)},
                    {"connections", sl_tcp_bridge_connections(b)},
                    {"refused", atomic_load(&b->zb.pair.notes[SL_NOTE_REFUSED])},
                    {"handshakeTimeouts", atomic_load(&b->zb.pair.notes[SL_NOTE_HANDSHAKE])},
                    {"pendingBytes", atomic_load(&b->zb.pair.pending)},
                    {"pendingCloses", atomic_load(&b->zb.pair.notes[SL_NOTE_PENDING])},
                    {"acceptErrors", atomic_load(&b->zb.pair.notes[SL_NOTE_ACCEPT])},
                    {"maxQueueBytes", limit},
                    {"rxQueueBytes", rxq},
                    {"txQueueBytes", txq}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

static const sl_slave_ops bridge_ops = {.accept_frame = tcp_bridge_accept};


static const sl_class server_class = {.name = "TcpServer",
                                      .destroy = bridge_destroy,
                                      .stop = bridge_stop,
                                      .cancel = bridge_cancel,
                                      .counters = bridge_counters};
static const sl_class client_class = {.name = "TcpClient",
                                      .destroy = bridge_destroy,
                                      .stop = bridge_stop,
                                      .cancel = bridge_cancel,
                                      .counters = bridge_counters};

sl_tcp_bridge *sl_tcp_bridge_new(const char *addr, uint32_t port, int server,
                                 sl_error *err) {
  char why[SL_ERROR_MAX] = "";
  if (port > 65534) {
    sl_sock_error(why, sizeof why, "bad port for", addr, port, EINVAL);
    return sl_fail(err, SL_EINVAL, "%s", why);
  }
  bridge *b = calloc(1, sizeof *b);
  if (b == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  if (sl_zbridge_init(&b->zb, &conn_ops, addr) != 0) {
    free(b);
    return sl_fail(err, SL_ENOMEM, NULL);
  }
  sl_object_init(&b->obj, server ? &server_class : &client_class);
  b->timeout_us = -1;
  b->max_queue_bytes = QUEUE_BYTES;
  b->zb.split_loops = 1;
  b->zb.sockbuf = 4 << 20;
  b->zb.bulk = 1;
  b->zb.borrow_max = ADOPT_MIN - 1;     /* copied once, into the frame */
  sl_cond_init(&b->send_cv);
  b->blocks = tcp_cache_new();
  if (b->blocks == NULL || tcp_rx_grow_nolock(b) != 0 || sl_slave_init(&b->slave, &bridge_ops, &b->obj) != SL_OK)
    goto out_free;
  if (sl_master_init(&b->master, &b->obj) != SL_OK) goto out_slave;
  /* Received frames come from the bridge's own pool: small ones in kept
  ** blocks of ADOPT_MIN bytes (large ones keep the memory they arrived
  ** in). The pool stays in variable mode, as Rogue's: a frame asked of
  ** the bridge from upstream is one block of its size, and a small one
  ** comes from the asking thread's cache. */
  sl_pool_set_pool_size(b->slave.pool, 1024);
  sl_pool_set_cache_bytes(b->slave.pool, 1024 * ADOPT_MIN);   /* given back idle */
  if (sl_zbridge_open(&b->zb, port, server, why, sizeof why) != 0) goto out_master;
  char name[128];
  snprintf(name, sizeof name, "stream.TcpCore.%s.%s.%u", b->zb.addr,
           server ? "Server" : "Client", (unsigned)b->zb.pair.port);
  if (sl_zbridge_start(&b->zb, name, why, sizeof why) != 0) goto out_master;
  /* Received frames go downstream on the process's delivery pool: a few
  ** threads for every bridge, not one each. */
  if (sl_deliver_attach(&b->delivery, delivery_run) != 0) {
    sl_sock_error(why, sizeof why, "cannot start", addr, port, EAGAIN);
    sl_zbridge_stop_io(&b->zb);
    sl_zbridge_release(&b->zb);
    goto out_master;
  }
  return b;
out_master:
  sl_master_fini(&b->master);
out_slave:
  sl_slave_fini(&b->slave);
out_free:
  bridge_free(b);
  if (why[0] == '\0') return sl_fail(err, SL_ENOMEM, NULL);
  return sl_fail(err, SL_EIO, "%s", why);
}

sl_object *sl_tcp_bridge_object(sl_tcp_bridge *b) { return b != NULL ? &b->obj : NULL; }

sl_tcp_bridge *sl_tcp_bridge_from_object(sl_object *obj) {
  if (!sl_object_is(obj, &server_class) && !sl_object_is(obj, &client_class)) return NULL;
  return (bridge *)obj;
}

int sl_tcp_bridge_ready(sl_tcp_bridge *b) {
  return (sl_zbridge_ready(&b->zb) & 2) != 0;
}

void sl_tcp_bridge_set_timeout(sl_tcp_bridge *b, int64_t us) {
  pthread_mutex_lock(&b->zb.mutex);
  b->timeout_us = us;
  pthread_mutex_unlock(&b->zb.mutex);
}

void sl_tcp_bridge_set_max_size(sl_tcp_bridge *b, uint64_t bytes) {
  if (bytes > UINT32_MAX) bytes = UINT32_MAX;   /* one frame holds the message */
  pthread_mutex_lock(&b->zb.mutex);
  b->zb.max_size = bytes;
  pthread_mutex_unlock(&b->zb.mutex);
}

void sl_tcp_bridge_set_max_queue_bytes(sl_tcp_bridge *b, uint64_t bytes) {
  pthread_mutex_lock(&b->zb.mutex);
  b->max_queue_bytes = bytes > 0 ? bytes : 1;
  pthread_cond_broadcast(&b->send_cv);          /* room, if it grew */
  if (b->rx_paused && !b->zb.stopping && b->resume_ev != NULL && tcp_rx_room_nolock(b))
    event_active(b->resume_ev, EV_READ, 0);
  pthread_mutex_unlock(&b->zb.mutex);
}

void sl_tcp_bridge_set_max_connections(sl_tcp_bridge *b, uint32_t n) {
  atomic_store(&b->zb.pair.max_conns, n);
}

void sl_tcp_bridge_set_handshake_timeout(sl_tcp_bridge *b, int64_t us) {
  atomic_store(&b->zb.pair.handshake_us, us > 0 ? us : 0);
}

void sl_tcp_bridge_set_max_pending(sl_tcp_bridge *b, uint64_t bytes) {
  atomic_store(&b->zb.pair.max_pending, bytes);
}

void sl_tcp_set_delivery_threads(int n) { sl_deliver_set_threads(n); }

int sl_tcp_delivery_threads(void) { return sl_deliver_threads(); }

uint32_t sl_tcp_bridge_port(sl_tcp_bridge *b) { return b->zb.pair.port; }

uint32_t sl_tcp_bridge_connections(sl_tcp_bridge *b) {
  return sl_zbridge_connections(&b->zb);
}
