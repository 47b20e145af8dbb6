/*
** The stream TCP bridge (see tcp_bridge.h and tcp_internal.h): the object,
** its connections and sockets, and the delivery thread.
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
#include "streamlua/thread.h"
#include "streamlua/wait.h"
#include "tcp_internal.h"

static void conn_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  conn *c = arg;
  if (what & EV_READ) tcp_conn_read(c);
  if (!c->dead && (what & EV_WRITE)) tcp_conn_write(c);
  if (c->dead) tcp_free_conn(c);   /* closed in this callback: free it now */
}

/* A closed connection's parts (I/O thread); the struct and, if a sender
** wrote on it as it closed, the socket go with whichever lets go last. */
void tcp_free_conn(conn *c) {
  bridge *b = c->b;
  sl_zmtp_free(c->z);
  event_free(c->rev);
  event_free(c->wev);
  if (c->hev) event_free(c->hev);
  c->hev = NULL;
  c->z = NULL;
  pthread_mutex_lock(&b->mutex);
  int keep = c->orphan && !c->released;
  c->released = 1;
  pthread_mutex_unlock(&b->mutex);
  if (keep) return;
  if (c->orphan) close(c->fd);
  free(c);
}

/*
** Closes a connection (I/O thread): off the list, frames still queued on
** it are dropped and counted, a client schedules its reconnect. The
** struct is freed by the callback that called us, or here.
*/
void tcp_conn_close(conn *c, int kind, const char *why) {
  bridge *b = c->b;
  if (c->dead) return;
  sl_frame *left[OUT_FRAMES];
  uint32_t nleft = 0;
  pthread_mutex_lock(&b->mutex);
  conn **pp = &b->conns;
  while (*pp != c) pp = &(*pp)->next;
  *pp = c->next;
  c->dead = 1;
  int orphan = c->orphan = c->writer == WRITER_SENDER;
  while (c->ocount > 0) {
    left[nleft++] = c->out[c->ohead];
    c->ohead = (c->ohead + 1) % OUT_FRAMES;
    c->ocount--;
  }
  int stopping = b->stopping;
  pthread_mutex_unlock(&b->mutex);
  event_del(c->rev);
  event_del(c->wev);
  if (c->hev) event_del(c->hev);
  sl_pair_hold(&b->pair, &c->held, 0);
  if (orphan)
    shutdown(c->fd, SHUT_RDWR);   /* the writer wakes, closes and frees */
  else
    close(c->fd);
  sl_frame_unref_many(left, nleft);
  if (nleft > 0) atomic_fetch_add(&b->drops, nleft);
  if (!stopping) {
    /* A broken protocol is an error; a peer that is away or went away is
    ** part of life (a client keeps trying, quietly, as libzmq does). */
    if (kind == CLOSE_PROTOCOL) atomic_fetch_add(&b->errors, 1);
    sl_log_write(b->log, kind == CLOSE_PROTOCOL ? SL_LOG_ERROR
                         : c->ready && kind != CLOSE_LIMIT ? SL_LOG_WARNING
                         : SL_LOG_DEBUG,
                 "connection on the %s side closed: %s",
                 c->push ? "sending" : "receiving", why);
    sl_pair_lost(&b->pair, c->push);
  }
}

static conn *conn_new(bridge *b, int fd, int push);

/* A socket from the pair, accepted or connecting. */
static void on_socket(void *owner, int fd, int push) {
  bridge *b = owner;
  if (conn_new(b, fd, push) == NULL) sl_pair_lost(&b->pair, push);
}

/* A connection that has not finished its handshake in time. */
static void handshake_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  conn *c = arg;
  bridge *b = c->b;
  if (c->dead || c->ready) return;
  sl_pair_note(&b->pair, SL_NOTE_HANDSHAKE, SL_LOG_WARNING,
               "connection on the %s side closed: no ZMTP handshake within %g s",
               c->push ? "sending" : "receiving",
               (double)atomic_load(&b->pair.handshake_us) / 1e6);
  tcp_conn_close(c, CLOSE_LIMIT, "no handshake in time");
  tcp_free_conn(c);
}

static conn *conn_new(bridge *b, int fd, int push) {
  conn *c = calloc(1, sizeof *c);
  if (c == NULL) goto out_close;
  c->b = b;
  c->fd = fd;
  c->push = push;
  /* With several I/O threads, sending and receiving run on two of them. */
  c->loop = sl_io_count(b->io) > 1 && push ? 1 : 0;
  sl_zmtp_config cfg = {push ? SL_ZMTP_PUSH : SL_ZMTP_PULL, b->max_size, 0};
  c->z = sl_zmtp_new(&cfg);
  c->rev = event_new(sl_io_base(b->io, c->loop), fd, EV_READ | EV_PERSIST, conn_cb, c);
  c->wev = event_new(sl_io_base(b->io, c->loop), fd, EV_WRITE | EV_PERSIST, conn_cb, c);
  if (c->z == NULL || c->rev == NULL || c->wev == NULL) goto out_free;
  c->hev = sl_pair_handshake_timer(&b->pair, sl_io_base(b->io, c->loop), handshake_cb, c);
  int one = 1, buf = 4 << 20;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, push ? SO_SNDBUF : SO_RCVBUF, &buf, sizeof buf);
  pthread_mutex_lock(&b->mutex);
  c->next = b->conns;
  b->conns = c;
  if (push || !b->rx_paused) event_add(c->rev, NULL);
  c->kicked = 1;                        /* greeting and READY to write */
  event_add(c->wev, NULL);
  pthread_mutex_unlock(&b->mutex);
  return c;
out_free:
  if (c->z) sl_zmtp_free(c->z);
  if (c->rev) event_free(c->rev);
  if (c->wev) event_free(c->wev);
  free(c);
out_close:
  close(fd);
  return NULL;
}

/* ---- sockets (pair.h) ---- */

typedef struct start_args {
  bridge *b;
  int rc;
} start_args;

/* On the I/O thread: the listeners' events, or the client's connections. */
static void start_io(void *arg) {
  start_args *sa = arg;
  bridge *b = sa->b;
  struct event_base *base = sl_io_base(b->io, 0);
  b->resume_ev = event_new(base, -1, 0, tcp_resume_cb, b);
  if (b->resume_ev == NULL) {
    sa->rc = ENOMEM;
    return;
  }
  sa->rc = sl_pair_start(&b->pair, base);
}

/* On I/O thread 0: no more accepting, reconnecting or resuming. */
static void stop_io(void *arg) {
  bridge *b = arg;
  if (b->resume_ev) {      /* no one activates it once stopping is set */
    event_free(b->resume_ev);
    b->resume_ev = NULL;
  }
  sl_pair_stop(&b->pair);
}

typedef struct loop_stop {
  bridge *b;
  int loop;
} loop_stop;

/* On I/O thread `loop`: close and free the connections it owns. */
static void stop_conns(void *arg) {
  loop_stop *ls = arg;
  bridge *b = ls->b;
  for (;;) {
    pthread_mutex_lock(&b->mutex);
    conn *c = b->conns;
    while (c != NULL && c->loop != ls->loop) c = c->next;
    pthread_mutex_unlock(&b->mutex);
    if (c == NULL) return;
    tcp_conn_close(c, CLOSE_STOP, "stopped");
    tcp_free_conn(c);
  }
}

/* Everything closed, each piece on the thread that owns it. */
static void close_all(bridge *b) {
  sl_io_call_sync(b->io, 0, stop_io, b);
  for (int i = 0; i < sl_io_count(b->io); i++) {
    loop_stop ls = {b, i};
    sl_io_call_sync(b->io, i, stop_conns, &ls);
  }
}

/* ---- delivery thread ---- */

static void *delivery_main(void *arg) {
  bridge *b = arg;
  pthread_setname_np(pthread_self(), "sl-tcp-rx");
  sl_wait_bind(&b->halt);      /* a stop frees it from waits downstream */
  sl_frame *batch[RX_BATCH];
  pthread_mutex_lock(&b->mutex);
  for (;;) {
    while (b->rx_count == 0 && !b->stopping)
      pthread_cond_wait(&b->rx_cv, &b->mutex);
    if (b->stopping) break;
    uint32_t n = b->rx_count < RX_BATCH ? b->rx_count : RX_BATCH;
    for (uint32_t i = 0; i < n; i++) {
      batch[i] = b->rx[b->rx_head];
      b->rx_head = (b->rx_head + 1) % b->rx_cap;
    }
    b->rx_count -= n;
    if (b->rx_paused && b->rx_count < RX_FRAMES / 2)
      event_active(b->resume_ev, EV_READ, 0);   /* under the lock: see stop */
    pthread_mutex_unlock(&b->mutex);
    sl_master_send_frames(&b->master, batch, n);
    sl_frame_unref_many(batch, n);
    pthread_mutex_lock(&b->mutex);
  }
  pthread_mutex_unlock(&b->mutex);
  atomic_store(&b->exited, 1);
  return NULL;
}

static int delivery_exited(void *arg) {
  return atomic_load(&((bridge *)arg)->exited);
}

/* ---- the object ---- */

/* Phase one of a stop: senders and the delivery thread give up. */
static void bridge_cancel(sl_object *obj) {
  bridge *b = (bridge *)obj;
  pthread_mutex_lock(&b->mutex);
  b->stopping = 1;
  atomic_store(&b->halt, 1);
  pthread_cond_broadcast(&b->send_cv);
  pthread_cond_broadcast(&b->rx_cv);
  pthread_mutex_unlock(&b->mutex);
}

static void bridge_stop(sl_object *obj) {
  bridge *b = (bridge *)obj;
  bridge_cancel(obj);
  pthread_mutex_lock(&b->mutex);
  int was = b->closing;
  b->closing = 1;
  pthread_mutex_unlock(&b->mutex);
  if (was) return;
  close_all(b);
  /* The delivery thread may be waiting on a full Lua mailbox: wait with
  ** the caller's wait hook, which keeps Lua slaves fed, then join. */
  if (b->started) {
    sl_wait_until(delivery_exited, b);
    pthread_join(b->thread, NULL);
  }
  b->started = 0;
  pthread_mutex_lock(&b->mutex);
  uint32_t n = b->rx_count;
  for (uint32_t i = 0; i < n; i++) sl_frame_unref(b->rx[(b->rx_head + i) % b->rx_cap]);
  b->rx_count = 0;
  pthread_mutex_unlock(&b->mutex);
  atomic_fetch_add(&b->drops, n);
}

static void bridge_destroy(sl_object *obj) {
  bridge *b = (bridge *)obj;
  bridge_stop(obj);
  sl_io_release(b->io);
  sl_master_fini(&b->master);
  sl_slave_fini(&b->slave);
  pthread_cond_destroy(&b->send_cv);
  pthread_cond_destroy(&b->rx_cv);
  pthread_mutex_destroy(&b->mutex);
  free(b->rx);
  tcp_cache_unref(b->blocks);
  free(b);
}

static size_t bridge_counters(sl_object *obj, sl_counter *out, size_t max) {
  bridge *b = (bridge *)obj;
  sl_counter c[] = {{"txFrames", atomic_load(&b->tx_frames)},
                    {"txBytes", atomic_load(&b->tx_bytes)},
                    {"rxFrames", atomic_load(&b->rx_frames)},
                    {"rxBytes", atomic_load(&b->rx_bytes)},
                    {"drops", atomic_load(&b->drops)},
                    {"errors", atomic_load(&b->errors)},
                    {"connections", sl_tcp_bridge_connections(obj)},
                    {"refused", atomic_load(&b->pair.notes[SL_NOTE_REFUSED])},
                    {"handshakeTimeouts", atomic_load(&b->pair.notes[SL_NOTE_HANDSHAKE])},
                    {"pendingBytes", atomic_load(&b->pair.pending)},
                    {"pendingCloses", atomic_load(&b->pair.notes[SL_NOTE_PENDING])},
                    {"acceptErrors", atomic_load(&b->pair.notes[SL_NOTE_ACCEPT])}};
  size_t n = sizeof c / sizeof c[0];
  if (n > max) n = max;
  memcpy(out, c, n * sizeof c[0]);
  return n;
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

sl_object *sl_tcp_bridge_new(const char *addr, uint32_t port, int server,
                             sl_error *err) {
  char why[SL_ERROR_MAX] = "";
  if (port > 65534) {
    sl_sock_error(why, sizeof why, "bad port for", addr, port, EINVAL);
    return sl_fail(err, SL_EINVAL, "%s", why);
  }
  bridge *b = calloc(1, sizeof *b);
  if (b == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&b->obj, server ? &server_class : &client_class);
  b->timeout_us = -1;
  b->max_size = SL_ZMTP_DEFAULT_MAX_MSG;
  snprintf(b->addr, sizeof b->addr, "%s", addr);
  pthread_mutex_init(&b->mutex, NULL);
  sl_cond_init(&b->send_cv);
  pthread_cond_init(&b->rx_cv, NULL);
  b->blocks = tcp_cache_new();
  if (b->blocks == NULL || tcp_rx_grow_nolock(b) != 0 || sl_slave_init(&b->slave, &bridge_ops, &b->obj) != SL_OK)
    goto out_free;
  if (sl_master_init(&b->master, &b->obj) != SL_OK) goto out_slave;
  /* Received frames come from the bridge's own pool: small ones in kept
  ** fixed-size blocks (large ones keep the memory they arrived in). */
  sl_pool_set_fixed_size(b->slave.pool, ADOPT_MIN);
  sl_pool_set_pool_size(b->slave.pool, 1024);
  if (sl_pair_open(&b->pair, addr, port, server, on_socket, b, why, sizeof why) != 0)
    goto out_master;
  char name[128];
  snprintf(name, sizeof name, "stream.TcpCore.%s.%s.%u", b->addr,
           server ? "Server" : "Client", (unsigned)b->pair.port);
  b->log = sl_log_get(name);
  b->pair.log = b->log;
  b->io = sl_io_acquire();
  if (b->io == NULL) goto out_listen;
  start_args sa = {b, 0};
  sl_io_call_sync(b->io, 0, start_io, &sa);
  /* The delivery thread only hands frames on: a small stack does, and
  ** hundreds of bridges then cost little memory. */
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int trc = sa.rc != 0 ? -1 : sl_thread_start(&b->thread, &attr, delivery_main, b);
  pthread_attr_destroy(&attr);
  if (trc != 0) {
    sl_sock_error(why, sizeof why, "cannot start", addr, port, sa.rc ? sa.rc : EAGAIN);
    close_all(b);
    sl_io_release(b->io);
    goto out_master;
  }
  b->started = 1;
  return &b->obj;
out_listen:
  sl_pair_stop(&b->pair);
out_master:
  sl_master_fini(&b->master);
out_slave:
  sl_slave_fini(&b->slave);
out_free:
  pthread_cond_destroy(&b->send_cv);
  pthread_cond_destroy(&b->rx_cv);
  pthread_mutex_destroy(&b->mutex);
  free(b->rx);
  tcp_cache_unref(b->blocks);
  free(b);
  if (why[0] == '\0') return sl_fail(err, SL_ENOMEM, NULL);
  return sl_fail(err, SL_EIO, "%s", why);
}

int sl_tcp_bridge_ready(sl_object *obj) {
  bridge *b = (bridge *)obj;
  pthread_mutex_lock(&b->mutex);
  int ready = 0;
  for (conn *c = b->conns; c != NULL; c = c->next) ready |= c->push && c->ready;
  pthread_mutex_unlock(&b->mutex);
  return ready;
}

void sl_tcp_bridge_set_timeout(sl_object *obj, int64_t us) {
  bridge *b = (bridge *)obj;
  pthread_mutex_lock(&b->mutex);
  b->timeout_us = us;
  pthread_mutex_unlock(&b->mutex);
}

void sl_tcp_bridge_set_max_size(sl_object *obj, uint64_t bytes) {
  bridge *b = (bridge *)obj;
  if (bytes > UINT32_MAX) bytes = UINT32_MAX;   /* one frame holds the message */
  pthread_mutex_lock(&b->mutex);
  b->max_size = bytes;
  pthread_mutex_unlock(&b->mutex);
}

void sl_tcp_bridge_set_max_connections(sl_object *obj, uint32_t n) {
  atomic_store(&((bridge *)obj)->pair.max_conns, n);
}

void sl_tcp_bridge_set_handshake_timeout(sl_object *obj, int64_t us) {
  atomic_store(&((bridge *)obj)->pair.handshake_us, us > 0 ? us : 0);
}

void sl_tcp_bridge_set_max_pending(sl_object *obj, uint64_t bytes) {
  atomic_store(&((bridge *)obj)->pair.max_pending, bytes);
}

uint32_t sl_tcp_bridge_port(sl_object *obj) { return ((bridge *)obj)->pair.port; }

uint32_t sl_tcp_bridge_connections(sl_object *obj) {
  bridge *b = (bridge *)obj;
  pthread_mutex_lock(&b->mutex);
  uint32_t n = 0;
  for (conn *c = b->conns; c != NULL; c = c->next) n++;
  pthread_mutex_unlock(&b->mutex);
  return n;
}
