/*
** The memory TCP bridge (see mem_bridge.h and mem_internal.h): the
** connections and their codec pump, the sockets, and the object. The
** client's transactions are in mem_client.c, the server's thread in
** mem_server.c.
*/
#include "streamlua/mem_bridge.h"
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "streamlua/io.h"
#include "streamlua/log.h"
#include "streamlua/status.h"
#include "streamlua/thread.h"
#include "streamlua/wait.h"
#include "streamlua/zmtp.h"
#include "mem_internal.h"


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

/* ---- connections (I/O thread, except mb_queue_nolock) ---- */

/* Sends whole bytes on c (lock held; any thread): straight into the
** socket when nothing is queued before them, as a blocking writer would,
** so a request or response costs no wake-up of the I/O thread; what the
** socket does not take is queued and the write event kicked. All writes
** on a connection happen under the lock, so bytes never interleave, and
** a connection on the list is open. 0, or -1 if out of memory. */
int mb_queue_nolock(mconn *c, const uint8_t *p, size_t n) {
  if (c->olen == 0 && c->ready) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w == (ssize_t)n) return 0;
    if (w > 0) {               /* errors are left to the I/O thread's send */
      p += w;
      n -= (size_t)w;
    }
  }
  if (c->olen + n > c->ocap) {
    size_t cap = c->ocap ? c->ocap : 4096;
    while (cap < c->olen + n) cap *= 2;
    uint8_t *nb = realloc(c->obuf, cap);
    if (nb == NULL) return -1;
    c->obuf = nb;
    c->ocap = cap;
  }
  memcpy(c->obuf + c->olen, p, n);
  c->olen += n;
  event_add(c->wev, NULL);
  event_active(c->wev, EV_WRITE, 0);
  return 0;
}

/* Moves the codec's own output (greeting, READY, PONGs) to the queue. */
static void queue_codec_nolock_(mconn *c) {
  const uint8_t *out;
  size_t n = sl_zmtp_output(c->z, &out);
  if (n > 0 && mb_queue_nolock(c, out, n) == 0) sl_zmtp_output_done(c->z, n);
}

static void conn_write(mconn *c) {
  mb *b = c->b;
  pthread_mutex_lock(&b->mutex);
  ssize_t w = 0;
  int e = 0;
  if (c->ooff < c->olen) w = send(c->fd, c->obuf + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
  if (w < 0) e = errno;
  if (w > 0) c->ooff += (size_t)w;
  if (c->ooff == c->olen) {
    c->ooff = c->olen = 0;
    event_del(c->wev);
    if (c->ocap > (1u << 20)) {       /* no large buffer kept idle */
      free(c->obuf);
      c->obuf = NULL;
      c->ocap = 0;
    }
  }
  if (w > 0 && b->any_paused) mb_backlog_resume_nolock(b);   /* room for responses */
  pthread_mutex_unlock(&b->mutex);
  if (w < 0 && e != EAGAIN && e != EINTR) mb_conn_close(c, CLOSE_PEER, strerror(e));
}

/* Keeps bytes not fed yet while reading is paused; 0 if out of memory. */
static int stash(mconn *c, const uint8_t *p, size_t n) {
  c->stash = malloc(n);
  if (c->stash == NULL) return 0;
  memcpy(c->stash, p, n);
  c->stash_len = n;
  return 1;
}

static int handle_events(mconn *c, const uint8_t *data, size_t n) {
  mb *b = c->b;
  size_t off = 0;
  for (;;) {
    size_t used = 0;
    sl_zmtp_kind k = sl_zmtp_feed(c->z, data + off, n - off, &used);
    off += used;
    sl_zmtp_event ev;
    if (k == SL_ZMTP_NONE || !sl_zmtp_pop(c->z, &ev)) break;
    switch (ev.kind) {
      case SL_ZMTP_READY:
        if (c->hev) event_free(c->hev);       /* handshake done in time */
        c->hev = NULL;
        pthread_mutex_lock(&b->mutex);
        c->ready = 1;
        if (!b->pair.server) mb_flush_pending_nolock(b);
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mutex);
        sl_log_write(b->log, SL_LOG_INFO, "peer ready on the %s side",
                     c->push ? "sending" : "receiving");
        break;
      case SL_ZMTP_MESSAGE:
        if (c->push) {
          mb_conn_close(c, CLOSE_PROTOCOL, "a message arrived on the sending side");
          return 0;
        }
        if (!(b->pair.server ? mb_server_message(c, &ev) : mb_client_message(c, &ev))) return 0;
        if (c->paused && off < n && !stash(c, data + off, n - off)) {
          mb_conn_close(c, CLOSE_PROTOCOL, "out of memory for a paused read");
          return 0;
        }
        if (c->paused) goto out;
        break;
      case SL_ZMTP_FATAL:
      case SL_ZMTP_PEER_ERROR:
        mb_conn_close(c, CLOSE_PROTOCOL, ev.text);
        return 0;
      default:
        break;
    }
  }
out:
  pthread_mutex_lock(&b->mutex);
  queue_codec_nolock_(c);                    /* PONGs */
  pthread_mutex_unlock(&b->mutex);
  return 1;
}

/* Counts what c's unfinished message holds (pair.h) and lets a large
** buffer go between messages; closes c past the bridge's limit. */
static void conn_hold(mconn *c) {
  mb *b = c->b;
  if (sl_zmtp_buffered(c->z) > READ_CHUNK) sl_zmtp_trim(c->z);
  if (sl_pair_hold(&b->pair, &c->held, sl_zmtp_partial(c->z))) return;
  sl_pair_note(&b->pair, SL_NOTE_PENDING, SL_LOG_ERROR,
               "connection on the %s side closed: unfinished messages would "
               "hold more than %llu bytes", c->push ? "sending" : "receiving",
               (unsigned long long)atomic_load(&b->pair.max_pending));
  mb_conn_close(c, CLOSE_LIMIT, "unfinished messages over the limit");
}

static void conn_read(mconn *c) {
  if (c->stash_len > 0) {       /* what waited while reading was paused */
    uint8_t *p = c->stash;
    size_t len = c->stash_len;
    c->stash = NULL;
    c->stash_len = 0;
    if (handle_events(c, p, len)) conn_hold(c);
    free(p);
    return;
  }
  if (c->paused) return;
  uint8_t buf[READ_CHUNK];
  ssize_t n = recv(c->fd, buf, sizeof buf, 0);
  if (n == 0) {
    mb_conn_close(c, CLOSE_PEER, "closed by the peer");
  } else if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) mb_conn_close(c, CLOSE_PEER, strerror(errno));
  } else if (handle_events(c, buf, (size_t)n)) {
    conn_hold(c);
  }
}

static void conn_free(mconn *c) {
  sl_zmtp_free(c->z);
  event_free(c->rev);
  event_free(c->wev);
  if (c->hev) event_free(c->hev);
  free(c->stash);
  free(c->obuf);
  free(c);
}

static void conn_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  mconn *c = arg;
  if (what & EV_READ) conn_read(c);
  if (!c->dead && (what & EV_WRITE)) conn_write(c);
  if (c->dead) conn_free(c);    /* closed in this callback */
}

/* Closes a connection (I/O thread): off the list; a client reconnects. */
void mb_conn_close(mconn *c, int kind, const char *why) {
  mb *b = c->b;
  if (c->dead) return;
  pthread_mutex_lock(&b->mutex);
  mconn **pp = &b->conns;
  while (*pp != c) pp = &(*pp)->next;
  *pp = c->next;
  c->dead = 1;
  event_del(c->rev);
  event_del(c->wev);
  if (c->hev) event_del(c->hev);
  if (b->pair.server) mb_route_remove_nolock(b, c);
  int stopping = b->stopping;
  pthread_mutex_unlock(&b->mutex);
  sl_pair_hold(&b->pair, &c->held, 0);
  close(c->fd);
  if (stopping) return;
  if (kind == CLOSE_PROTOCOL) atomic_fetch_add(&b->errors, 1);
  sl_log_write(b->log, kind == CLOSE_PROTOCOL ? SL_LOG_ERROR
                       : c->ready && kind != CLOSE_LIMIT ? SL_LOG_WARNING
                       : SL_LOG_DEBUG,
               "connection on the %s side closed: %s",
               c->push ? "sending" : "receiving", why);
  sl_pair_lost(&b->pair, c->push);
}

static mconn *conn_new(mb *b, int fd, int push);

/* A socket from the pair, accepted or connecting. */
static void on_socket(void *owner, int fd, int push) {
  mb *b = owner;
  if (conn_new(b, fd, push) == NULL) sl_pair_lost(&b->pair, push);
}

/* A connection that has not finished its handshake in time. */
static void handshake_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mconn *c = arg;
  mb *b = c->b;
  if (c->dead || c->ready) return;
  sl_pair_note(&b->pair, SL_NOTE_HANDSHAKE, SL_LOG_WARNING,
               "connection on the %s side closed: no ZMTP handshake within %g s",
               c->push ? "sending" : "receiving",
               (double)atomic_load(&b->pair.handshake_us) / 1e6);
  mb_conn_close(c, CLOSE_LIMIT, "no handshake in time");
  conn_free(c);
}

static mconn *conn_new(mb *b, int fd, int push) {
  mconn *c = calloc(1, sizeof *c);
  if (c == NULL) goto out_close;
  c->b = b;
  c->fd = fd;
  c->push = push;
  sl_zmtp_config cfg = {push ? SL_ZMTP_PUSH : SL_ZMTP_PULL, MAX_MSG, 8};
  c->z = sl_zmtp_new(&cfg);
  c->rev = event_new(sl_io_base(b->io, 0), fd, EV_READ | EV_PERSIST, conn_cb, c);
  c->wev = event_new(sl_io_base(b->io, 0), fd, EV_WRITE | EV_PERSIST, conn_cb, c);
  if (c->z == NULL || c->rev == NULL || c->wev == NULL) goto out_free;
  c->hev = sl_pair_handshake_timer(&b->pair, sl_io_base(b->io, 0), handshake_cb, c);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  pthread_mutex_lock(&b->mutex);
  c->next = b->conns;
  b->conns = c;
  if (b->pair.server) mb_route_add_nolock(b, c);
  event_add(c->rev, NULL);
  queue_codec_nolock_(c);                    /* greeting and READY */
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

/* ---- sockets (I/O thread, pair.h) ---- */

typedef struct start_args {
  mb *b;
  int rc;
} start_args;

static void start_io(void *arg) {
  start_args *sa = arg;
  mb *b = sa->b;
  struct event_base *base = sl_io_base(b->io, 0);
  sa->rc = ENOMEM;
  if (b->pair.server) {
    b->resume_ev = event_new(base, -1, 0, mb_resume_cb, b);
    if (b->resume_ev == NULL) return;
  } else {
    b->sweep = event_new(base, -1, EV_PERSIST, mb_sweep_cb, b);
    if (b->sweep == NULL) return;
    struct timeval tv = {0, SWEEP_MS * 1000};
    event_add(b->sweep, &tv);
  }
  sa->rc = sl_pair_start(&b->pair, base);
}

/* On the I/O thread: listeners, timers and connections closed and freed. */
static void stop_io(void *arg) {
  mb *b = arg;
  sl_pair_stop(&b->pair);
  if (b->sweep) event_free(b->sweep);
  b->sweep = NULL;
  pthread_mutex_lock(&b->mutex);    /* the server's thread activates it */
  if (b->resume_ev) event_free(b->resume_ev);
  b->resume_ev = NULL;
  pthread_mutex_unlock(&b->mutex);
  for (;;) {
    pthread_mutex_lock(&b->mutex);
    mconn *c = b->conns;
    pthread_mutex_unlock(&b->mutex);
    if (c == NULL) return;
    mb_conn_close(c, CLOSE_STOP, "stopped");
    conn_free(c);
  }
}

/* ---- the server's thread ---- */

/* ---- the client's slave role ---- */

static const sl_mem_slave_ops client_ops = {.do_transaction = mb_client_do};

/* ---- the object ---- */

static void mb_stop(sl_object *obj) {
  mb *b = (mb *)obj;
  pthread_mutex_lock(&b->mutex);
  int was = b->stopping;
  b->stopping = 1;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mutex);
  if (was) return;
  sl_io_call_sync(b->io, 0, stop_io, b);
  if (b->started) {
    sl_wait_until(mb_server_exited, b);
    pthread_join(b->thread, NULL);
    b->started = 0;
  }
  pthread_mutex_lock(&b->mutex);
  pend *left = b->pend;
  b->pend = NULL;
  b->npend = 0;
  req *rq = b->rq_head;
  b->rq_head = b->rq_tail = NULL;
  pthread_mutex_unlock(&b->mutex);
  while (left != NULL) {
    pend *p = left;
    left = p->next;
    sl_transaction_error(p->t, "memory.TcpClient %s:%u: stopped", b->addr,
                         (unsigned)b->pair.port);
    mb_pend_free(p);
  }
  while (rq != NULL) {
    req *r = rq;
    rq = r->next;
    free(r->data);
    free(r);
  }
}

static void mb_destroy(sl_object *obj) {
  mb *b = (mb *)obj;
  mb_stop(obj);
  sl_io_release(b->io);
  if (b->pair.server) sl_mem_master_fini(&b->master);
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mutex);
  free(b);
}

static size_t mb_counters(sl_object *obj, sl_counter *out, size_t max) {
  mb *b = (mb *)obj;
  uint32_t conns = 0;
  uint64_t resp = 0;
  pthread_mutex_lock(&b->mutex);
  for (mconn *c = b->conns; c != NULL; c = c->next) {
    conns++;
    if (c->push) resp += mb_queued(c);
  }
  uint64_t rq = b->rq_count, rqb = b->rq_bytes;
  pthread_mutex_unlock(&b->mutex);
  sl_pair *p = &b->pair;
  sl_counter c[] = {{"connections", conns},
                    {"errors", atomic_load(&b->errors)},
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
  size_t n = sizeof c / sizeof c[0];
  if (n > max) n = max;
  memcpy(out, c, n * sizeof c[0]);
  return n;
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
  atomic_init(&b->exited, 0);
  snprintf(b->addr, sizeof b->addr, "%s", addr);
  sl_object_init(&b->obj, server ? &server_class : &client_class);
  atomic_init(&b->max_requests, MAX_REQUESTS);
  atomic_init(&b->max_request_bytes, MAX_REQUEST_BYTES);
  atomic_init(&b->max_response_bytes, MAX_RESPONSE_BYTES);
  if (pthread_mutex_init(&b->mutex, NULL) != 0) goto out_free;
  if (pthread_cond_init(&b->cv, NULL) != 0) goto out_mutex;
  if (server) {
    if (sl_mem_master_init(&b->master, &b->obj) != SL_OK) goto out_cond;
  } else {
    sl_mem_slave_init(&b->slave, &client_ops, &b->obj, 4, 0xFFFFFFFFu);
  }
  if (sl_pair_open(&b->pair, addr, port, server, on_socket, b, why, sizeof why) != 0)
    goto out_master;
  char name[128];
  snprintf(name, sizeof name, "memory.%s.%s.%u", server ? "TcpServer" : "TcpClient",
           b->addr, (unsigned)b->pair.port);
  b->log = sl_log_get(name);
  b->pair.log = b->log;
  b->io = sl_io_acquire();
  if (b->io == NULL) {
    sl_sock_error(why, sizeof why, "cannot start", addr, port, EAGAIN);
    goto out_listen;
  }
  start_args sa = {b, 0};
  sl_io_call_sync(b->io, 0, start_io, &sa);
  int trc = sa.rc;
  if (trc == 0 && server) {
    trc = sl_thread_start(&b->thread, NULL, mb_server_main, b);
    b->started = trc == 0;
  }
  if (trc != 0) {
    sl_sock_error(why, sizeof why, "cannot start", addr, port, trc);
    b->stopping = 1;
    sl_io_call_sync(b->io, 0, stop_io, b);
    sl_io_release(b->io);
    goto out_master;
  }
  sl_log_write(b->log, SL_LOG_DEBUG, "%s on %s:%u and %u", server ? "bound" : "connecting",
               b->addr, (unsigned)b->pair.port, (unsigned)b->pair.port + 1);
  return b;
out_listen:
  sl_pair_stop(&b->pair);
out_master:
  if (server) sl_mem_master_fini(&b->master);
out_cond:
  pthread_cond_destroy(&b->cv);
out_mutex:
  pthread_mutex_destroy(&b->mutex);
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

int sl_mem_bridge_is_server(sl_mem_bridge *b) { return b->pair.server; }

int sl_mem_bridge_ready(sl_mem_bridge *b) {
  int push = 0, pull = 0;
  pthread_mutex_lock(&b->mutex);
  for (mconn *c = b->conns; c != NULL; c = c->next) {
    if (!c->ready || c->dead) continue;
    if (c->push) push = 1;
    else pull = 1;
  }
  pthread_mutex_unlock(&b->mutex);
  return push && pull;
}

uint32_t sl_mem_bridge_port(sl_mem_bridge *b) { return b->pair.port; }


void sl_mem_bridge_set_max_connections(sl_mem_bridge *b, uint32_t max) {
  atomic_store(&b->pair.max_conns, max);
}

void sl_mem_bridge_set_handshake_timeout(sl_mem_bridge *b, int64_t us) {
  atomic_store(&b->pair.handshake_us, us > 0 ? us : 0);
}

void sl_mem_bridge_set_max_pending(sl_mem_bridge *b, uint64_t bytes) {
  atomic_store(&b->pair.max_pending, bytes);
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
