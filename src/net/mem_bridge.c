/*
** The memory TCP bridge (see mem_bridge.h). One mutex guards what the
** threads share: the connection list and each connection's outbound
** bytes, the client's table of waiting transactions and the server's
** request queue. The I/O thread (sl_io loop 0) owns sockets, events and
** codec sessions; other threads only append whole messages to a
** connection's outbound bytes and kick its write event, under the mutex.
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

#define RECONNECT_MS 100
#define SWEEP_MS 5
#define READ_CHUNK (64u * 1024)
#define PEER_WAIT_US 1000000    /* the server waits this long for a peer */
#define MAX_MSG (64u << 20)
#define SERVER_POLL_US 80        /* the server's look for the next request */


typedef struct mb mb;

typedef struct mconn {
  struct mconn *next;
  mb *b;
  int fd;
  int push;                    /* we send on it (else we receive) */
  int ready;                   /* handshake done (mutex) */
  int dead;                    /* closed; freed by the callback */
  sl_zmtp *z;
  struct event *rev, *wev;
  uint8_t *obuf;               /* outbound bytes, whole messages (mutex) */
  size_t olen, ooff, ocap;
} mconn;

/* A client transaction waiting for its response (or for the connection). */
typedef struct pend {
  struct pend *next;
  sl_transaction *t;           /* a reference */
  uint32_t id;
  uint8_t *msg;                /* the encoded request until it is sent */
  size_t len;
  int sent;
  struct timespec deadline;    /* just before the master gives up */
} pend;

/* A request for the server's thread. */
typedef struct req {
  struct req *next;
  uint32_t id, size, type;
  uint64_t addr;
  uint8_t *data;               /* the write data (size bytes) or NULL */
} req;

struct mb {
  sl_mem_node node;
  sl_mem_master master;        /* server */
  sl_mem_slave slave;          /* client */
  int server;
  sl_io *io;
  sl_log *log;
  char addr[64];
  uint32_t port;
  struct sockaddr_in sa;
  int lfd[2];                  /* server: [0] pull (P), [1] push (P+1) */
  struct event *lev[2];
  struct event *retry[2];      /* client: [0] pull, [1] push */
  struct event *sweep;         /* client: fails transactions past due */
  pthread_mutex_t mutex;
  pthread_cond_t cv;           /* probes answered, peers ready, requests */
  mconn *conns;
  int stopping;
  pend *pend;                  /* client, in request order */
  size_t npend;
  uint32_t probe_next, probe_ok;
  req *rq_head, *rq_tail;      /* server */
  atomic_int rq_any;           /* rq_head != NULL, for the server's polls */
  pthread_t thread;
  int started;
  atomic_int exited;
};

enum { CLOSE_PEER, CLOSE_PROTOCOL, CLOSE_STOP };
static void conn_close(mconn *c, int kind, const char *why);
static void client_connect(mb *b, int push);


static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void now_mono(struct timespec *ts) { clock_gettime(CLOCK_MONOTONIC, ts); }

static int ts_after(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec >= b->tv_nsec);
}

static void ts_add_us(struct timespec *ts, uint64_t us) {
  ts->tv_sec += (time_t)(us / 1000000u);
  ts->tv_nsec += (long)(us % 1000000u) * 1000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void realtime_after(struct timespec *ts, uint64_t us) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts_add_us(ts, us);
}

/* Encodes the header parts (and data) into one malloc'd ZMTP message. */
static uint8_t *encode(uint32_t id, uint64_t addr, uint32_t size, uint32_t type,
                       const sl_zmtp_part *extra, size_t nextra, size_t *len) {
  uint8_t h[20];
  put32(h, id);
  put64(h + 4, addr);
  put32(h + 12, size);
  put32(h + 16, type);
  sl_zmtp_part parts[6] = {{h, 4}, {h + 4, 8}, {h + 12, 4}, {h + 16, 4}};
  for (size_t i = 0; i < nextra; i++) parts[4 + i] = extra[i];
  uint64_t n = sl_zmtp_encoded_size(parts, 4 + nextra);
  uint8_t *m = malloc((size_t)n);
  if (m == NULL) return NULL;
  *len = sl_zmtp_encode(parts, 4 + nextra, m, (size_t)n);
  return m;
}

/* ---- connections (I/O thread, except queue_nolock_) ---- */

/* Sends whole bytes on c (lock held; any thread): straight into the
** socket when nothing is queued before them, as a blocking writer would,
** so a request or response costs no wake-up of the I/O thread; what the
** socket does not take is queued and the write event kicked. All writes
** on a connection happen under the lock, so bytes never interleave, and
** a connection on the list is open. 0, or -1 if out of memory. */
static int queue_nolock_(mconn *c, const uint8_t *p, size_t n) {
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
  if (n > 0 && queue_nolock_(c, out, n) == 0) sl_zmtp_output_done(c->z, n);
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
  }
  pthread_mutex_unlock(&b->mutex);
  if (w < 0 && e != EAGAIN && e != EINTR) conn_close(c, CLOSE_PEER, strerror(e));
}

/* Client: both directions handshaken; the push connection, or NULL. */
static mconn *client_push_nolock_(mb *b) {
  mconn *push = NULL;
  int pull = 0;
  for (mconn *c = b->conns; c != NULL; c = c->next) {
    if (!c->ready || c->dead) continue;
    if (c->push) push = c;
    else pull = 1;
  }
  return pull ? push : NULL;
}

/* Client: sends what waited for the connection, in order (lock held). */
static void flush_pending_nolock_(mb *b) {
  mconn *c = client_push_nolock_(b);
  if (c == NULL) return;
  for (pend *p = b->pend; p != NULL; p = p->next) {
    if (p->sent || queue_nolock_(c, p->msg, p->len) != 0) continue;
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

static void pend_free(pend *p) {
  sl_transaction_unref(p->t);
  free(p->msg);
  free(p);
}

/* Client: a response. Returns 0 if the connection was closed. */
static int client_message(mconn *c, const sl_zmtp_event *ev) {
  mb *b = c->b;
  const sl_zmtp_part *p = ev->parts;
  if (ev->nparts != 6 || p[0].size != 4 || p[1].size != 8 || p[2].size != 4 ||
      p[3].size != 4 || p[5].size > SL_MEM_BRIDGE_RESULT_MAX) {
    char why[96];
    snprintf(why, sizeof why, "malformed response: %zu parts", ev->nparts);
    conn_close(c, CLOSE_PROTOCOL, why);
    return 0;
  }
  uint32_t id = get32(p[0].data), size = get32(p[2].data), type = get32(p[3].data);
  uint64_t addr = get64(p[1].data);
  int ok = p[5].size == 2 && memcmp(p[5].data, "OK", 2) == 0;
  if (type == SL_MEM_PROBE) {
    pthread_mutex_lock(&b->mutex);
    if (ok && id > b->probe_ok) b->probe_ok = id;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mutex);
    return 1;
  }
  pthread_mutex_lock(&b->mutex);
  pend *pe = take_pending_nolock_(b, id);
  pthread_mutex_unlock(&b->mutex);
  if (pe == NULL) {
    sl_log_write(b->log, SL_LOG_WARNING, "Failed to find transaction id=%u", (unsigned)id);
    return 1;
  }
  sl_transaction *t = pe->t;
  if (sl_transaction_expired(t)) {
    sl_log_write(b->log, SL_LOG_WARNING, "Dropping late response for transaction id=%u",
                 (unsigned)id);
  } else if (addr != sl_transaction_address(t) || size != sl_transaction_size(t) ||
             type != sl_transaction_type(t)) {
    sl_transaction_error(t, "Transaction data mismatch in TcpClient");
  } else if (!sl_mem_type_is_write(type) && p[4].size != size) {
    sl_transaction_error(t, "Received transaction response did not match header size");
  } else {
    if (!sl_mem_type_is_write(type)) memcpy(sl_transaction_data(t), p[4].data, size);
    if (ok) sl_transaction_done(t);
    else if (p[5].size == 0)
      sl_transaction_error(t, "memory.TcpClient %s:%u: empty result in the response "
                           "(request id=%u)", b->addr, (unsigned)b->port, (unsigned)id);
    else sl_transaction_error(t, "%.*s", (int)p[5].size, (const char *)p[5].data);
  }
  pend_free(pe);
  return 1;
}

/* Server: a request for the server's thread. Returns 0 if closed. */
static int server_message(mconn *c, const sl_zmtp_event *ev) {
  mb *b = c->b;
  const sl_zmtp_part *p = ev->parts;
  const char *bad = NULL;
  if ((ev->nparts != 4 && ev->nparts != 5) || p[0].size != 4 || p[1].size != 8 ||
      p[2].size != 4 || p[3].size != 4) {
    bad = "malformed request: want 4 or 5 parts of 4, 8, 4, 4 (, size) bytes";
  } else {
    uint32_t size = get32(p[2].data), type = get32(p[3].data);
    if (type == SL_MEM_PROBE && (ev->nparts != 4 || size != 0))
      bad = "malformed probe: want 4 parts and size 0";
    else if (sl_mem_type_is_write(type) && (ev->nparts != 5 || p[4].size != size))
      bad = "malformed write: the data part does not match the size";
    else if (size > MAX_MSG)   /* its response could not be carried */
      bad = "request too large: size over the 64 MiB message limit";
  }
  if (bad != NULL) {
    char why[160];
    snprintf(why, sizeof why, "%s (%zu parts)", bad, ev->nparts);
    conn_close(c, CLOSE_PROTOCOL, why);
    return 0;
  }
  req *r = calloc(1, sizeof *r);
  if (r == NULL) goto out_nomem;
  r->id = get32(p[0].data);
  r->addr = get64(p[1].data);
  r->size = get32(p[2].data);
  r->type = get32(p[3].data);
  if (sl_mem_type_is_write(r->type) && r->size > 0) {
    r->data = malloc(r->size);
    if (r->data == NULL) goto out_nomem;
    memcpy(r->data, p[4].data, r->size);
  }
  sl_log_write(b->log, SL_LOG_DEBUG, "request id=%u type=%u addr=0x%llx size=%u",
               (unsigned)r->id, (unsigned)r->type, (unsigned long long)r->addr,
               (unsigned)r->size);
  pthread_mutex_lock(&b->mutex);
  if (b->rq_tail != NULL) b->rq_tail->next = r;
  else b->rq_head = r;
  b->rq_tail = r;
  atomic_store_explicit(&b->rq_any, 1, memory_order_relaxed);
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mutex);
  return 1;
out_nomem:
  free(r);
  conn_close(c, CLOSE_PROTOCOL, "out of memory for a request");
  return 0;
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
        pthread_mutex_lock(&b->mutex);
        c->ready = 1;
        if (!b->server) flush_pending_nolock_(b);
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mutex);
        sl_log_write(b->log, SL_LOG_INFO, "peer ready on the %s side",
                     c->push ? "sending" : "receiving");
        break;
      case SL_ZMTP_MESSAGE:
        if (c->push) {
          conn_close(c, CLOSE_PROTOCOL, "a message arrived on the sending side");
          return 0;
        }
        if (!(b->server ? server_message(c, &ev) : client_message(c, &ev))) return 0;
        break;
      case SL_ZMTP_FATAL:
      case SL_ZMTP_PEER_ERROR:
        conn_close(c, CLOSE_PROTOCOL, ev.text);
        return 0;
      default:
        break;
    }
  }
  pthread_mutex_lock(&b->mutex);
  queue_codec_nolock_(c);                    /* PONGs */
  pthread_mutex_unlock(&b->mutex);
  return 1;
}

static void conn_read(mconn *c) {
  uint8_t buf[READ_CHUNK];
  ssize_t n = recv(c->fd, buf, sizeof buf, 0);
  if (n == 0) {
    conn_close(c, CLOSE_PEER, "closed by the peer");
  } else if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) conn_close(c, CLOSE_PEER, strerror(errno));
  } else {
    handle_events(c, buf, (size_t)n);
  }
}

static void conn_free(mconn *c) {
  sl_zmtp_free(c->z);
  event_free(c->rev);
  event_free(c->wev);
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
static void conn_close(mconn *c, int kind, const char *why) {
  mb *b = c->b;
  if (c->dead) return;
  pthread_mutex_lock(&b->mutex);
  mconn **pp = &b->conns;
  while (*pp != c) pp = &(*pp)->next;
  *pp = c->next;
  c->dead = 1;
  event_del(c->rev);
  event_del(c->wev);
  int stopping = b->stopping;
  pthread_mutex_unlock(&b->mutex);
  close(c->fd);
  if (stopping) return;
  sl_log_write(b->log, kind == CLOSE_PROTOCOL ? SL_LOG_ERROR
                       : c->ready ? SL_LOG_WARNING : SL_LOG_DEBUG,
               "connection on the %s side closed: %s",
               c->push ? "sending" : "receiving", why);
  if (!b->server) {
    struct timeval tv = {0, RECONNECT_MS * 1000};
    evtimer_add(b->retry[c->push], &tv);
  }
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
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  pthread_mutex_lock(&b->mutex);
  c->next = b->conns;
  b->conns = c;
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

/* ---- sockets (I/O thread) ---- */


static void accept_cb(evutil_socket_t lfd, short what, void *arg) {
  (void)what;
  mb *b = arg;
  int push = lfd == b->lfd[1];
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) return;
    if (sl_sock_nonblocking(fd) != 0) {
      close(fd);
      continue;
    }
    conn_new(b, fd, push);
  }
}

static void client_connect(mb *b, int push) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || sl_sock_nonblocking(fd) != 0) goto out_retry;
  struct sockaddr_in sa = b->sa;
  sa.sin_port = htons((uint16_t)(push ? b->port : b->port + 1));
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
    goto out_retry;
  conn_new(b, fd, push);
  return;
out_retry:
  if (fd >= 0) close(fd);
  struct timeval tv = {0, RECONNECT_MS * 1000};
  evtimer_add(b->retry[push], &tv);
}

static void retry_pull_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  client_connect(arg, 0);
}

static void retry_push_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  client_connect(arg, 1);
}

/* Client: fails the transactions past their deadline with a clear error. */
static void sweep_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mb *b = arg;
  struct timespec now;
  now_mono(&now);
  pend *late = NULL;
  pthread_mutex_lock(&b->mutex);
  for (pend **pp = &b->pend; *pp != NULL;) {
    pend *p = *pp;
    if (ts_after(&now, &p->deadline) || sl_transaction_expired(p->t)) {
      *pp = p->next;
      b->npend--;
      p->next = late;
      late = p;
    } else {
      pp = &p->next;
    }
  }
  pthread_mutex_unlock(&b->mutex);
  while (late != NULL) {
    pend *p = late;
    late = p->next;
    double s = (double)sl_transaction_timeout(p->t) / 1e6;
    if (p->sent)
      sl_transaction_error(p->t, "memory.TcpClient %s:%u: no response within %g s "
                           "(request id=%u sent)", b->addr, (unsigned)b->port, s,
                           (unsigned)p->id);
    else
      sl_transaction_error(p->t, "memory.TcpClient %s:%u: not connected to the "
                           "server within %g s (request id=%u not sent)", b->addr,
                           (unsigned)b->port, s, (unsigned)p->id);
    pend_free(p);
  }
}




typedef struct start_args {
  mb *b;
  int rc;
} start_args;

static void start_io(void *arg) {
  start_args *sa = arg;
  mb *b = sa->b;
  struct event_base *base = sl_io_base(b->io, 0);
  sa->rc = ENOMEM;
  if (b->server) {
    for (int i = 0; i < 2; i++) {
      b->lev[i] = event_new(base, b->lfd[i], EV_READ | EV_PERSIST, accept_cb, b);
      if (b->lev[i] == NULL) return;
      event_add(b->lev[i], NULL);
    }
  } else {
    b->retry[0] = evtimer_new(base, retry_pull_cb, b);
    b->retry[1] = evtimer_new(base, retry_push_cb, b);
    b->sweep = event_new(base, -1, EV_PERSIST, sweep_cb, b);
    if (b->retry[0] == NULL || b->retry[1] == NULL || b->sweep == NULL) return;
    struct timeval tv = {0, SWEEP_MS * 1000};
    event_add(b->sweep, &tv);
    client_connect(b, 0);
    client_connect(b, 1);
  }
  sa->rc = 0;
}

/* On the I/O thread: listeners, timers and connections closed and freed. */
static void stop_io(void *arg) {
  mb *b = arg;
  for (int i = 0; i < 2; i++) {
    if (b->lev[i]) event_free(b->lev[i]);
    b->lev[i] = NULL;
    if (b->lfd[i] >= 0) close(b->lfd[i]);
    b->lfd[i] = -1;
    if (b->retry[i]) event_free(b->retry[i]);
    b->retry[i] = NULL;
  }
  if (b->sweep) event_free(b->sweep);
  b->sweep = NULL;
  for (;;) {
    pthread_mutex_lock(&b->mutex);
    mconn *c = b->conns;
    pthread_mutex_unlock(&b->mutex);
    if (c == NULL) return;
    conn_close(c, CLOSE_STOP, "stopped");
    conn_free(c);
  }
}

/* ---- the server's thread ---- */

/* Sends a response on a ready push connection, waiting a while for one. */
static void server_send(mb *b, uint8_t *msg, size_t len, uint32_t id) {
  struct timespec dl;
  realtime_after(&dl, PEER_WAIT_US);
  pthread_mutex_lock(&b->mutex);
  mconn *c = NULL;
  for (;;) {
    for (c = b->conns; c != NULL; c = c->next)
      if (c->push && c->ready && !c->dead) break;
    if (c != NULL || b->stopping) break;
    if (pthread_cond_timedwait(&b->cv, &b->mutex, &dl) == ETIMEDOUT) break;
  }
  int ok = c != NULL && queue_nolock_(c, msg, len) == 0;
  int stopping = b->stopping;
  pthread_mutex_unlock(&b->mutex);
  if (!ok && !stopping)
    sl_log_write(b->log, SL_LOG_WARNING, "response id=%u dropped: no peer on port %u",
                 (unsigned)id, (unsigned)b->port + 1);
}

static int server_stopping(mb *b) {
  pthread_mutex_lock(&b->mutex);
  int s = b->stopping;
  pthread_mutex_unlock(&b->mutex);
  return s;
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
      if (server_stopping(b)) goto out;     /* no answer: we are going */
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
  uint8_t *msg = encode(r->id, r->addr, r->size, r->type, extra, 2, &len);
  if (msg == NULL) {
    sl_log_write(b->log, SL_LOG_ERROR, "response id=%u dropped: out of memory",
                 (unsigned)r->id);
    goto out;
  }
  server_send(b, msg, len, r->id);
  free(msg);
out:
  sl_transaction_unref(t);
}

static void *server_main(void *arg) {
  mb *b = arg;
  pthread_setname_np(pthread_self(), "sl-mem-srv");
  pthread_mutex_lock(&b->mutex);
  for (;;) {
    if (b->rq_head == NULL && !b->stopping) {
      /* The next request of a client that reads back what it wrote comes
      ** one round trip after our answer: a short poll saves the wake-up. */
      pthread_mutex_unlock(&b->mutex);
      struct timespec until, now;
      now_mono(&until);
      ts_add_us(&until, SERVER_POLL_US);
      do {
        sched_yield();             /* lets the I/O threads have this CPU */
        now_mono(&now);
      } while (!atomic_load_explicit(&b->rq_any, memory_order_relaxed) &&
               !ts_after(&now, &until));
      pthread_mutex_lock(&b->mutex);
    }
    while (b->rq_head == NULL && !b->stopping) pthread_cond_wait(&b->cv, &b->mutex);
    if (b->stopping) break;
    req *r = b->rq_head;
    b->rq_head = r->next;
    if (b->rq_head == NULL) {
      b->rq_tail = NULL;
      atomic_store_explicit(&b->rq_any, 0, memory_order_relaxed);
    }
    pthread_mutex_unlock(&b->mutex);
    server_serve(b, r);
    free(r->data);
    free(r);
    pthread_mutex_lock(&b->mutex);
  }
  pthread_mutex_unlock(&b->mutex);
  atomic_store(&b->exited, 1);
  return NULL;
}

static int server_exited(void *arg) { return atomic_load(&((mb *)arg)->exited); }

/* ---- the client's slave role ---- */

static void client_do(sl_mem_slave *s, sl_transaction *t) {
  mb *b = (mb *)s->owner;
  uint32_t type = sl_transaction_type(t), size = sl_transaction_size(t);
  uint32_t id = sl_transaction_id(t);
  sl_zmtp_part data = {sl_transaction_data(t), size};
  size_t len = 0;
  uint8_t *msg = encode(id, sl_transaction_address(t), size, type, &data,
                        sl_mem_type_is_write(type) ? 1 : 0, &len);
  pend *p = calloc(1, sizeof *p);
  if (msg == NULL || p == NULL) {
    free(msg);
    free(p);
    sl_transaction_error(t, "memory.TcpClient: out of memory");
    return;
  }
  pthread_mutex_lock(&b->mutex);
  if (b->stopping) goto out_stopped;
  mconn *c = client_push_nolock_(b);
  if (type == SL_MEM_POST) {   /* Rogue: complete at once, not tracked */
    int ok = c != NULL && queue_nolock_(c, msg, len) == 0;
    pthread_mutex_unlock(&b->mutex);
    free(msg);
    free(p);
    if (ok) sl_transaction_done(t);
    else sl_transaction_error(t, "memory.TcpClient %s:%u: not connected to the "
                              "server, post id=%u not sent", b->addr,
                              (unsigned)b->port, (unsigned)id);
    return;
  }
  p->t = sl_transaction_ref(t);
  p->id = id;
  uint64_t to = sl_transaction_timeout(t), margin = to / 10;
  if (margin > 50000) margin = 50000;
  now_mono(&p->deadline);
  ts_add_us(&p->deadline, to - margin);
  if (c != NULL && queue_nolock_(c, msg, len) == 0) {
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
  pthread_mutex_unlock(&b->mutex);
  return;
out_stopped:
  pthread_mutex_unlock(&b->mutex);
  free(msg);
  free(p);
  sl_transaction_error(t, "memory.TcpClient %s:%u: stopped", b->addr, (unsigned)b->port);
}

static const sl_mem_slave_ops client_ops = {.do_transaction = client_do};

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
    sl_wait_until(server_exited, b);
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
                         (unsigned)b->port);
    pend_free(p);
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
  if (b->server) sl_mem_master_fini(&b->master);
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mutex);
  free(b);
}


static sl_mem_node *mb_new(const char *addr, uint32_t port, int server, char *err,
                           size_t errlen) {
  if (port > 65534 || (!server && port == 0)) {
    sl_sock_error(err, errlen, "bad port for", addr, port, EINVAL);
    return NULL;
  }
  mb *b = calloc(1, sizeof *b);
  if (b == NULL) return NULL;
  b->server = server;
  b->port = port;
  b->lfd[0] = b->lfd[1] = -1;
  atomic_init(&b->exited, 0);
  snprintf(b->addr, sizeof b->addr, "%s", addr);
  sl_object_init(&b->node.obj, server ? "memory.TcpServer" : "memory.TcpClient",
                 mb_destroy);
  b->node.obj.stop = mb_stop;
  if (pthread_mutex_init(&b->mutex, NULL) != 0) goto out_free;
  if (pthread_cond_init(&b->cv, NULL) != 0) goto out_mutex;
  if (server) {
    if (sl_mem_master_init(&b->master, &b->node.obj) != SL_OK) goto out_cond;
    b->node.master = &b->master;
  } else {
    sl_mem_slave_init(&b->slave, &client_ops, &b->node.obj, 4, 0xFFFFFFFFu);
    b->node.slave = &b->slave;
  }
  if (sl_sock_resolve(addr, server, &b->sa) != 0) {
    sl_sock_error(err, errlen, "cannot resolve", addr, port, ENOENT);
    goto out_master;
  }
  if (server) {
    int e = sl_sock_listen_pair(&b->sa, &b->port, b->lfd);
    if (e != 0) {
      sl_sock_error(err, errlen, "cannot bind", addr, port, e);
      goto out_master;
    }
  }
  char name[128];
  snprintf(name, sizeof name, "memory.%s.%s.%u", server ? "TcpServer" : "TcpClient",
           b->addr, (unsigned)b->port);
  b->log = sl_log_get(name);
  b->io = sl_io_acquire();
  if (b->io == NULL) {
    sl_sock_error(err, errlen, "cannot start", addr, port, EAGAIN);
    goto out_listen;
  }
  start_args sa = {b, 0};
  sl_io_call_sync(b->io, 0, start_io, &sa);
  int trc = sa.rc;
  if (trc == 0 && server) {
    trc = sl_thread_start(&b->thread, NULL, server_main, b);
    b->started = trc == 0;
  }
  if (trc != 0) {
    sl_sock_error(err, errlen, "cannot start", addr, port, trc);
    b->stopping = 1;
    sl_io_call_sync(b->io, 0, stop_io, b);
    sl_io_release(b->io);
    goto out_master;
  }
  sl_log_write(b->log, SL_LOG_DEBUG, "%s on %s:%u and %u", server ? "bound" : "connecting",
               b->addr, (unsigned)b->port, (unsigned)b->port + 1);
  return &b->node;
out_listen:
  for (int i = 0; i < 2; i++)
    if (b->lfd[i] >= 0) close(b->lfd[i]);
out_master:
  if (server) sl_mem_master_fini(&b->master);
out_cond:
  pthread_cond_destroy(&b->cv);
out_mutex:
  pthread_mutex_destroy(&b->mutex);
out_free:
  free(b);
  return NULL;
}

sl_mem_node *sl_mem_server_new(const char *addr, uint32_t port, char *err,
                               size_t errlen) {
  return mb_new(addr, port, 1, err, errlen);
}

sl_mem_node *sl_mem_client_new(const char *addr, uint32_t port, char *err,
                               size_t errlen) {
  return mb_new(addr, port, 0, err, errlen);
}

int sl_mem_bridge_ready(sl_mem_node *n) {
  mb *b = (mb *)n;
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

uint32_t sl_mem_bridge_port(sl_mem_node *n) { return ((mb *)n)->port; }

size_t sl_mem_bridge_pending(sl_mem_node *n) {
  mb *b = (mb *)n;
  pthread_mutex_lock(&b->mutex);
  size_t k = b->npend;
  pthread_mutex_unlock(&b->mutex);
  return k;
}

int sl_mem_client_wait_ready(sl_mem_node *n, uint64_t timeout_us, uint64_t period_us) {
  mb *b = (mb *)n;
  if (b->server) return sl_mem_bridge_ready(n);
  struct timespec end, now;
  now_mono(&end);
  ts_add_us(&end, timeout_us);
  int ok = 0;
  pthread_mutex_lock(&b->mutex);
  for (;;) {
    now_mono(&now);
    if (b->stopping || ts_after(&now, &end)) break;
    uint32_t id = ++b->probe_next;
    mconn *c = client_push_nolock_(b);
    size_t len = 0;
    uint8_t *msg = c != NULL ? encode(id, 0, 0, SL_MEM_PROBE, NULL, 0, &len) : NULL;
    if (msg != NULL) queue_nolock_(c, msg, len);
    free(msg);
    struct timespec dl;
    realtime_after(&dl, period_us);
    while (b->probe_ok < id && !b->stopping)
      if (pthread_cond_timedwait(&b->cv, &b->mutex, &dl) == ETIMEDOUT) break;
    if (b->probe_ok >= id) {
      ok = 1;
      break;
    }
  }
  pthread_mutex_unlock(&b->mutex);
  return ok;
}
