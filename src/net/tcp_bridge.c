/*
** The stream TCP bridge (see tcp_bridge.h). One mutex guards what the
** three kinds of thread share: the connection list, each connection's
** outbound queue and the delivery queue. The I/O thread owns sockets,
** events and the codec sessions; graph threads queue frames and kick a
** connection's write event, except that a sender finding a connection idle
** writes a large message itself (see send_direct); the delivery thread only
** takes frames.
*/
#include "streamlua/tcp_bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "streamlua/frame.h"
#include "streamlua/io.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "streamlua/thread.h"
#include "streamlua/wait.h"
#include "streamlua/zmtp.h"
#include "sock.h"

#define OUT_FRAMES 1000               /* libzmq's default HWM */
#define OUT_BYTES (64u << 20)
#define RX_FRAMES 1024                /* reading pauses at this many queued */
#define RX_BATCH 64
#define READ_CHUNK (256u * 1024)
#define WRITE_MSGS 64                 /* messages per writev */
#define RECONNECT_MS 100
#define DIRECT_MIN (16u * 1024)        /* bodies read straight into place */
#define DIRECT_MAX (4u << 20)          /* room made ahead for one body */
#define ADOPT_MIN (16u * 1024)         /* payloads kept in place, not copied */
#define DIRECT_SEND_MIN (256u * 1024)   /* messages a sender may write itself */
#define DIRECT_IOV 64

typedef struct bridge bridge;

typedef struct conn {
  struct conn *next;
  bridge *b;
  int fd;
  int push;                    /* we send on it (else we receive) */
  int ready;                   /* handshake done */
  int kicked;                  /* a write is pending (mutex) */
  int writer;                  /* who writes on fd now: WRITER_* (mutex) */
  int want_write;              /* the I/O thread waited for a sender */
  int orphan;                  /* closed while a sender wrote on it */
  int released;                /* orphan: the first of the I/O thread and
                                  the sender to let go sets it, the second
                                  closes fd and frees the struct */
  int dead;                    /* closed, waiting to be freed */
  int loop;                    /* the I/O thread that owns it */
  sl_zmtp *z;
  struct event *rev, *wev;
  /* outbound queue (push side, under the bridge mutex) */
  sl_frame *out[OUT_FRAMES];
  uint32_t ohead, ocount;
  uint64_t obytes;
  uint64_t msg_off;            /* bytes of the head message already written */
} conn;

struct bridge {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  sl_io *io;
  sl_log *log;
  int server;
  char addr[64];
  uint32_t port;
  struct sockaddr_in sa;       /* server: bind address; client: peer */
  int lfd[2];                  /* server listeners: [0] pull (P), [1] push (P+1) */
  struct event *lev[2];
  struct event *retry[2];      /* client reconnect timers: [0] pull, [1] push */
  pthread_mutex_t mutex;
  pthread_cond_t send_cv;      /* senders: a peer or room appeared */
  pthread_cond_t rx_cv;        /* delivery thread: frames or stop */
  conn *conns;
  uint32_t rr;                 /* round-robin cursor over push peers */
  /* Received frames for the delivery thread: a ring that may grow past
  ** RX_FRAMES by what one read brings, since reading pauses at RX_FRAMES. */
  sl_frame **rx;
  uint32_t rx_cap, rx_head, rx_count;
  int rx_paused;
  struct event *resume_ev;     /* the delivery thread asks to read again */
  struct block_cache *blocks;  /* received-message buffers, recycled */
  int stopping;
  int64_t timeout_us;
  uint64_t max_size;
  pthread_t thread;
  int started;
  atomic_int exited;           /* the delivery thread has returned */
  atomic_uint_least64_t tx_frames, tx_bytes, rx_frames, rx_bytes, drops, errors;
};

/* Why a connection closes: the peer went away (or never came), it broke
** the protocol (an error, counted), or we stopped. */
enum { CLOSE_PEER, CLOSE_PROTOCOL, CLOSE_STOP };
/* Whoever writes on a connection holds it (bridge mutex): the I/O thread,
** or a sender writing its message straight into an idle connection. */
enum { WRITER_NONE, WRITER_IO, WRITER_SENDER };
static void conn_close(conn *c, int kind, const char *why);
static void client_connect(bridge *b, int push);


/* ---- outbound (push side) ---- */

/* writev that never raises SIGPIPE: a peer gone is an error return. */
static ssize_t send_iov(int fd, struct iovec *iov, int niov) {
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
  return sendmsg(fd, &mh, MSG_NOSIGNAL);
}

/* Bytes the 4-part message for f takes on the wire. */
static uint64_t msg_size(sl_frame *f) {
  uint64_t n = sl_frame_get_payload(f);
  return 4 + 3 + 3 + (n <= SL_ZMTP_SHORT_MAX ? 2 : 9) + n;
}

/* Writes the three small parts and part 3's header for f into h (<= 19). */
static size_t msg_headers(sl_frame *f, uint8_t *h) {
  uint16_t flags = sl_frame_get_flags(f);
  h[0] = SL_ZMTP_FLAG_MORE; h[1] = 2;
  h[2] = (uint8_t)(flags & 0xff); h[3] = (uint8_t)(flags >> 8);
  h[4] = SL_ZMTP_FLAG_MORE; h[5] = 1; h[6] = sl_frame_get_channel(f);
  h[7] = SL_ZMTP_FLAG_MORE; h[8] = 1; h[9] = sl_frame_get_error(f);
  return 10 + sl_zmtp_frame_header(h + 10, sl_frame_get_payload(f), 0);
}

/* Adds iovecs for f's message from byte `skip` on; returns the count. */
static int msg_iov(sl_frame *f, uint8_t *h, uint64_t skip, struct iovec *iov,
                   int max) {
  int n = 0;
  size_t hl = msg_headers(f, h);
  if (skip < hl) {
    iov[n].iov_base = h + skip;
    iov[n++].iov_len = hl - skip;
    skip = 0;
  } else {
    skip -= hl;
  }
  for (size_t i = 0; i < sl_frame_buffer_count(f) && n < max; i++) {
    sl_buffer *bf = sl_frame_buffer(f, i);
    uint32_t len = sl_buffer_get_payload(bf);
    if (skip >= len) {
      skip -= len;
      continue;
    }
    iov[n].iov_base = sl_buffer_begin(bf) + skip;
    iov[n++].iov_len = len - skip;
    skip = 0;
  }
  return n;
}

/*
** Writes what a connection has: the codec's own bytes first (greeting,
** READY, PONGs: only between messages), then queued messages, many per
** writev. Frames fully written go back with one release after the lock.
*/
static void conn_write_held(conn *c);

static void conn_write(conn *c) {
  bridge *b = c->b;
  pthread_mutex_lock(&b->mutex);
  if (c->writer == WRITER_SENDER) {     /* it kicks us when it is done */
    c->want_write = 1;
    c->kicked = 0;
    event_del(c->wev);
    pthread_mutex_unlock(&b->mutex);
    return;
  }
  c->writer = WRITER_IO;
  pthread_mutex_unlock(&b->mutex);
  conn_write_held(c);
  pthread_mutex_lock(&b->mutex);
  c->writer = WRITER_NONE;
  pthread_mutex_unlock(&b->mutex);
}

static void conn_write_held(conn *c) {
  bridge *b = c->b;
  const uint8_t *cmd;
  size_t cl = c->msg_off == 0 ? sl_zmtp_output(c->z, &cmd) : 0;
  if (cl > 0) {
    ssize_t w = send(c->fd, cmd, cl, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
      conn_close(c, CLOSE_PEER, strerror(errno));
      return;
    }
    if (w > 0) sl_zmtp_output_done(c->z, (size_t)w);
    if (w < (ssize_t)cl) return;           /* the rest when writable */
  }
  struct iovec iov[WRITE_MSGS * 4];
  uint8_t hdr[WRITE_MSGS][20];
  sl_frame *done[WRITE_MSGS];
  size_t ndone = 0;
  pthread_mutex_lock(&b->mutex);
  int niov = 0;
  uint32_t k = 0;
  for (; k < c->ocount && k < WRITE_MSGS && niov < WRITE_MSGS * 4 - 4; k++) {
    sl_frame *f = c->out[(c->ohead + k) % OUT_FRAMES];
    niov += msg_iov(f, hdr[k], k == 0 ? c->msg_off : 0, iov + niov,
                    WRITE_MSGS * 4 - niov);
  }
  if (k == 0) {
    c->kicked = 0;
    event_del(c->wev);
    pthread_mutex_unlock(&b->mutex);
    return;
  }
  pthread_mutex_unlock(&b->mutex);
  ssize_t w = send_iov(c->fd, iov, niov);
  if (w < 0) {
    if (errno != EAGAIN && errno != EINTR) conn_close(c, CLOSE_PEER, strerror(errno));
    return;
  }
  uint64_t left = (uint64_t)w, bytes = 0;
  pthread_mutex_lock(&b->mutex);
  while (c->ocount > 0) {
    sl_frame *f = c->out[c->ohead];
    uint64_t rest = msg_size(f) - c->msg_off;
    if (left < rest) {
      c->msg_off += left;
      break;
    }
    left -= rest;
    c->msg_off = 0;
    bytes += sl_frame_get_payload(f);
    c->obytes -= msg_size(f);
    c->ohead = (c->ohead + 1) % OUT_FRAMES;
    c->ocount--;
    done[ndone++] = f;
  }
  if (ndone > 0) pthread_cond_broadcast(&b->send_cv);   /* room */
  pthread_mutex_unlock(&b->mutex);
  atomic_fetch_add(&b->tx_frames, ndone);
  atomic_fetch_add(&b->tx_bytes, bytes);
  sl_frame_unref_many(done, ndone);
}

/* A ready push connection with room, round robin (lock held). */
static conn *pick_nolock_(bridge *b, uint64_t need) {
  uint32_t n = 0;
  for (conn *c = b->conns; c != NULL; c = c->next) n++;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t want = (b->rr + i) % n, j = 0;
    conn *c = b->conns;
    while (j++ < want) c = c->next;
    if (c->push && c->ready && !c->dead &&
        c->ocount + (c->writer == WRITER_SENDER) < OUT_FRAMES &&
        (c->obytes + need <= OUT_BYTES || c->ocount == 0)) {
      b->rr = want + 1;
      return c;
    }
  }
  return NULL;
}

static void deadline_after(struct timespec *ts, int64_t us) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += (time_t)(us / 1000000);
  ts->tv_nsec += (long)(us % 1000000) * 1000;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

static void free_conn(conn *c);

/*
** A sender that finds a connection idle writes its message itself, as a
** plain blocking writer would: no hand-off, no wake-up of the I/O thread.
** It waits for room in the socket until the deadline; what is left then
** goes to the I/O thread like any queued message. A connection closed
** meanwhile is shut down under the writer, which then frees it.
*/
static void send_direct(conn *c, sl_frame *f, uint64_t need,
                        const struct timespec *dl) {
  bridge *b = c->b;
  uint8_t h[20];
  struct iovec iov[DIRECT_IOV];
  uint64_t off = 0;
  int failed = 0;
  while (off < need) {
    int niov = msg_iov(f, h, off, iov, DIRECT_IOV);
    ssize_t w = send_iov(c->fd, iov, niov);
    if (w > 0) {
      off += (uint64_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN) {
      failed = 1;                 /* the I/O thread sees the close */
      break;
    }
    int ms = -1;
    if (dl != NULL) {
      struct timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      int64_t rest = (int64_t)(dl->tv_sec - now.tv_sec) * 1000 +
                     (dl->tv_nsec - now.tv_nsec) / 1000000;
      if (rest <= 0) break;       /* the rest goes to the I/O thread */
      ms = rest > 1000 ? 1000 : (int)rest;
    } else {
      ms = 1000;
    }
    struct pollfd pfd = {c->fd, POLLOUT, 0};
    if (poll(&pfd, 1, ms) < 0 && errno != EINTR) {
      failed = 1;
      break;
    }
    if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) {
      failed = 1;
      break;
    }
  }
  pthread_mutex_lock(&b->mutex);
  c->writer = WRITER_NONE;
  if (c->orphan) {
    int last = c->released;
    c->released = 1;
    pthread_mutex_unlock(&b->mutex);
    atomic_fetch_add(&b->drops, 1);
    if (last) {
      close(c->fd);
      free(c);
    }
    return;
  }
  int done = !failed && off == need;
  if (done) {
    c->obytes -= need;
  } else if (!failed) {           /* the I/O thread finishes the message */
    c->ohead = (c->ohead + OUT_FRAMES - 1) % OUT_FRAMES;
    c->out[c->ohead] = sl_frame_ref(f);
    c->ocount++;
    c->msg_off = off;
  } else {
    c->obytes -= need;
  }
  if ((c->ocount > 0 || c->want_write) && !c->kicked) {
    c->want_write = 0;
    c->kicked = 1;
    event_add(c->wev, NULL);
    event_active(c->wev, EV_WRITE, 0);
  }
  pthread_cond_broadcast(&b->send_cv);
  pthread_mutex_unlock(&b->mutex);
  if (done) {
    atomic_fetch_add(&b->tx_frames, 1);
    atomic_fetch_add(&b->tx_bytes, sl_frame_get_payload(f));
  } else if (failed) {
    atomic_fetch_add(&b->drops, 1);
  }
}

/* The send path: wait for a peer with room (or give up), queue, kick;
** or write straight into an idle connection. */
static void bridge_accept(sl_slave *s, sl_frame *f) {
  bridge *b = (bridge *)s->owner;
  uint64_t need = msg_size(f);
  struct timespec dl;
  pthread_mutex_lock(&b->mutex);
  int64_t timeout = b->timeout_us;
  if (timeout >= 0) deadline_after(&dl, timeout);
  conn *c;
  while ((c = pick_nolock_(b, need)) == NULL && !b->stopping) {
    if (timeout < 0) {
      pthread_cond_wait(&b->send_cv, &b->mutex);
    } else if (pthread_cond_timedwait(&b->send_cv, &b->mutex, &dl) == ETIMEDOUT) {
      break;
    }
  }
  if (c == NULL) goto out_drop;
  if (c->ocount == 0 && !c->kicked && c->writer == WRITER_NONE &&
      need >= DIRECT_SEND_MIN) {
    c->writer = WRITER_SENDER;
    c->obytes += need;
    pthread_mutex_unlock(&b->mutex);
    send_direct(c, f, need, timeout >= 0 ? &dl : NULL);
    return;
  }
  c->out[(c->ohead + c->ocount) % OUT_FRAMES] = sl_frame_ref(f);
  c->ocount++;
  c->obytes += need;
  if (!c->kicked && c->writer != WRITER_SENDER) {
    c->kicked = 1;
    event_add(c->wev, NULL);
    event_active(c->wev, EV_WRITE, 0);
  }
  pthread_mutex_unlock(&b->mutex);
  return;
out_drop:
  pthread_mutex_unlock(&b->mutex);
  atomic_fetch_add(&b->drops, 1);
  sl_log_write(b->log, b->stopping ? SL_LOG_DEBUG : SL_LOG_WARNING,
               "frame dropped: %s", b->stopping ? "bridge stopped"
                                                : "no peer took it in time");
}

/* ---- inbound (pull side) ---- */

static void pause_reads_nolock_(bridge *b, int pause) {
  b->rx_paused = pause;
  for (conn *c = b->conns; c != NULL; c = c->next)
    if (!c->push && !c->dead) {
      if (pause) event_del(c->rev);
      else event_add(c->rev, NULL);
    }
}

static void resume_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  bridge *b = arg;
  pthread_mutex_lock(&b->mutex);
  if (b->rx_paused && !b->stopping && b->rx_count < RX_FRAMES / 2)
    pause_reads_nolock_(b, 0);
  pthread_mutex_unlock(&b->mutex);
}

static int rx_grow_nolock_(bridge *b) {
  uint32_t cap = b->rx_cap ? b->rx_cap * 2 : RX_FRAMES * 2;
  sl_frame **r = malloc(cap * sizeof *r);
  if (r == NULL) return -1;
  for (uint32_t i = 0; i < b->rx_count; i++)
    r[i] = b->rx[(b->rx_head + i) % b->rx_cap];
  free(b->rx);
  b->rx = r;
  b->rx_cap = cap;
  b->rx_head = 0;
  return 0;
}

/*
** Received-message buffers go round: a large message's buffer becomes its
** frame's memory, and when the frame is released the buffer comes back
** here and is handed to the next message, so a stream of large frames
** does not allocate (nor page-fault) fresh memory per frame. The cache is
** counted by the bridge and by each buffer out, so frames may outlive the
** bridge.
*/
#define CACHE_BLOCKS 8

typedef struct block_cache {
  atomic_int refs;
  pthread_mutex_t mutex;
  uint8_t *blocks[CACHE_BLOCKS];
  size_t caps[CACHE_BLOCKS];
  int n;
} block_cache;

static block_cache *cache_new(void) {
  block_cache *bc = calloc(1, sizeof *bc);
  if (bc == NULL) return NULL;
  atomic_init(&bc->refs, 1);
  pthread_mutex_init(&bc->mutex, NULL);
  return bc;
}

static void cache_unref(block_cache *bc) {
  if (bc == NULL || atomic_fetch_sub(&bc->refs, 1) != 1) return;
  for (int i = 0; i < bc->n; i++) free(bc->blocks[i]);
  pthread_mutex_destroy(&bc->mutex);
  free(bc);
}

/* A kept block, or NULL. */
static uint8_t *cache_get(block_cache *bc, size_t *cap) {
  uint8_t *b = NULL;
  pthread_mutex_lock(&bc->mutex);
  if (bc->n > 0) {
    b = bc->blocks[--bc->n];
    *cap = bc->caps[bc->n];
  }
  pthread_mutex_unlock(&bc->mutex);
  return b;
}

/* A frame let go of a block: keep it, or free it when the cache is full. */
static void block_release(sl_buffer *bf) {
  block_cache *bc = bf->release_arg;
  pthread_mutex_lock(&bc->mutex);
  int kept = bc->n < CACHE_BLOCKS;
  if (kept) {
    bc->blocks[bc->n] = bf->data;
    bc->caps[bc->n++] = bf->alloc_size;
  }
  pthread_mutex_unlock(&bc->mutex);
  if (!kept) free(bf->data);
  cache_unref(bc);
}

/*
** A large message keeps the memory it was received into: the codec's
** buffer (flags, channel, error, payload back to back) becomes the frame's
** buffer, its head room covering the first three parts. No copy.
*/
static sl_frame *adopt_message(bridge *b, conn *c, const sl_zmtp_event *ev) {
  size_t cap = 0, kcap = 0;
  uint8_t *m = sl_zmtp_take_message(c->z, &cap);
  if (m == NULL) return NULL;
  uint8_t *next = cache_get(b->blocks, &kcap);   /* for the next message */
  if (next != NULL && !sl_zmtp_give_buffer(c->z, next, kcap)) free(next);
  atomic_fetch_add(&b->blocks->refs, 1);         /* the buffer's reference */
  sl_buffer *bf = sl_pool_create_buffer(b->slave.pool, m, 0, (uint32_t)ev->size,
                                        (uint32_t)cap, block_release, b->blocks);
  if (bf == NULL) {
    free(m);
    cache_unref(b->blocks);
    return NULL;
  }
  sl_buffer_set_payload(bf, (uint32_t)ev->size);
  sl_buffer_adjust_header(bf, 4);           /* parts 0..2: 2 + 1 + 1 bytes */
  sl_frame *f = sl_frame_new();
  if (f == NULL || sl_frame_append_buffer(f, bf) != SL_OK) {
    if (f == NULL) sl_pool_ret_buffer(bf);
    sl_frame_unref(f);
    return NULL;
  }
  return f;
}

/* A valid 4-part message becomes a frame in the delivery queue; anything
** else closes the connection. Returns 0 if the connection was closed. */
/* Frames decoded from one read, queued for the delivery thread together:
** one lock per read, not one per message. */
typedef struct rx_batch {
  sl_frame *f[RX_BATCH];
  uint32_t n;
  uint64_t bytes;
} rx_batch;

/* Queues the batch (I/O thread). 0 if out of memory: the frames are
** dropped and the caller closes the connection. */
static int rx_flush(bridge *b, rx_batch *rb) {
  if (rb->n == 0) return 1;
  atomic_fetch_add(&b->rx_frames, rb->n);
  atomic_fetch_add(&b->rx_bytes, rb->bytes);
  uint32_t put = 0;
  pthread_mutex_lock(&b->mutex);
  int was_empty = b->rx_count == 0;
  while (put < rb->n) {
    if (b->rx_count == b->rx_cap && rx_grow_nolock_(b) != 0) break;
    b->rx[(b->rx_head + b->rx_count) % b->rx_cap] = rb->f[put++];
    b->rx_count++;
  }
  if (was_empty && put > 0) pthread_cond_signal(&b->rx_cv);
  if (b->rx_count >= RX_FRAMES && !b->rx_paused)
    pause_reads_nolock_(b, 1);   /* back-pressure reaches the sender over TCP */
  pthread_mutex_unlock(&b->mutex);
  uint32_t left = rb->n - put;
  if (left > 0) {
    sl_frame_unref_many(rb->f + put, left);
    atomic_fetch_add(&b->drops, left);
  }
  rb->n = 0;
  rb->bytes = 0;
  return left == 0;
}

static int on_message(conn *c, const sl_zmtp_event *ev, rx_batch *rb) {
  bridge *b = c->b;
  if (c->push) {
    conn_close(c, CLOSE_PROTOCOL, "a message arrived on the sending side");
    return 0;
  }
  if (ev->nparts != 4 || ev->parts[0].size != 2 || ev->parts[1].size != 1 ||
      ev->parts[2].size != 1) {
    char why[96];
    snprintf(why, sizeof why, "bad message: %zu parts, sizes %zu %zu %zu",
             ev->nparts, ev->parts[0].size,
             ev->nparts > 1 ? ev->parts[1].size : 0,
             ev->nparts > 2 ? ev->parts[2].size : 0);
    conn_close(c, CLOSE_PROTOCOL, why);
    return 0;
  }
  const sl_zmtp_part *p = ev->parts;
  sl_frame *f = p[3].size >= ADOPT_MIN ? adopt_message(b, c, ev)
                                       : sl_slave_req_local_frame(&b->slave,
                                                                  (uint32_t)p[3].size);
  if (f == NULL) {
    conn_close(c, CLOSE_PROTOCOL, "out of memory for a frame");
    return 0;
  }
  if (p[3].size < ADOPT_MIN) sl_frame_write(f, p[3].data, 0, (uint32_t)p[3].size);
  sl_frame_set_flags(f, (uint16_t)(p[0].data[0] | p[0].data[1] << 8));
  sl_frame_set_channel(f, p[1].data[0]);
  sl_frame_set_error(f, p[2].data[0]);
  rb->f[rb->n++] = f;
  rb->bytes += p[3].size;
  if (rb->n == RX_BATCH && !rx_flush(b, rb)) {
    conn_close(c, CLOSE_PROTOCOL, "out of memory for the delivery queue");
    return 0;
  }
  return 1;
}

/* One read buffer per I/O thread (freed when the thread ends). */
static pthread_key_t rbuf_key;
static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;

static void rbuf_key_make(void) { pthread_key_create(&rbuf_key, free); }

static uint8_t *read_buffer(void) {
  pthread_once(&rbuf_once, rbuf_key_make);
  uint8_t *p = pthread_getspecific(rbuf_key);
  if (p == NULL) {
    p = malloc(READ_CHUNK);
    if (p != NULL) pthread_setspecific(rbuf_key, p);
  }
  return p;
}

/* Pops and handles what the session has; 0 if the connection closed. */
static int handle_events(conn *c, const uint8_t *data, size_t n);

static void conn_read(conn *c) {
  uint8_t *dst;
  size_t room = sl_zmtp_body_space(c->z, DIRECT_MAX, &dst);
  if (room >= DIRECT_MIN) {                 /* a large body: straight in */
    ssize_t got = recv(c->fd, dst, room, 0);
    if (got == 0) {
      conn_close(c, CLOSE_PEER, "closed by the peer");
    } else if (got < 0) {
      if (errno != EAGAIN && errno != EINTR) conn_close(c, CLOSE_PEER, strerror(errno));
    } else {
      sl_zmtp_body_done(c->z, (size_t)got);
      handle_events(c, NULL, 0);
    }
    return;
  }
  uint8_t *rbuf = read_buffer();
  if (rbuf == NULL) {
    conn_close(c, CLOSE_PROTOCOL, "out of memory for reading");
    return;
  }
  ssize_t n = recv(c->fd, rbuf, READ_CHUNK, 0);
  if (n == 0) {
    conn_close(c, CLOSE_PEER, "closed by the peer");
    return;
  }
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) conn_close(c, CLOSE_PEER, strerror(errno));
    return;
  }
  handle_events(c, rbuf, (size_t)n);
}

static int handle_events(conn *c, const uint8_t *data, size_t n) {
  bridge *b = c->b;
  size_t off = 0;
  rx_batch rb;
  rb.n = 0;
  rb.bytes = 0;
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
        pthread_cond_broadcast(&b->send_cv);   /* a peer for waiting senders */
        pthread_mutex_unlock(&b->mutex);
        sl_log_write(b->log, SL_LOG_INFO, "peer ready on %s side",
                     c->push ? "sending" : "receiving");
        break;
      case SL_ZMTP_MESSAGE:
        if (!on_message(c, &ev, &rb)) {
          rx_flush(b, &rb);            /* the whole messages before it */
          return 0;
        }
        break;
      case SL_ZMTP_FATAL:
      case SL_ZMTP_PEER_ERROR:
        rx_flush(b, &rb);              /* the whole messages before it */
        conn_close(c, CLOSE_PROTOCOL, ev.text);
        return 0;
      default:
        break;
    }
  }
  if (!rx_flush(b, &rb)) {
    conn_close(c, CLOSE_PROTOCOL, "out of memory for the delivery queue");
    return 0;
  }
  const uint8_t *out;
  if (sl_zmtp_output(c->z, &out) > 0) {      /* PONGs to send */
    pthread_mutex_lock(&b->mutex);
    if (!c->kicked) {
      c->kicked = 1;
      event_add(c->wev, NULL);
    }
    pthread_mutex_unlock(&b->mutex);
  }
  return 1;
}

static void conn_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  conn *c = arg;
  if (what & EV_READ) conn_read(c);
  if (!c->dead && (what & EV_WRITE)) conn_write(c);
  if (c->dead) free_conn(c);   /* closed in this callback: free it now */
}

/* A closed connection's parts (I/O thread); the struct and, if a sender
** wrote on it as it closed, the socket go with whichever lets go last. */
static void free_conn(conn *c) {
  bridge *b = c->b;
  sl_zmtp_free(c->z);
  event_free(c->rev);
  event_free(c->wev);
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
static void conn_close(conn *c, int kind, const char *why) {
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
                         : c->ready ? SL_LOG_WARNING : SL_LOG_DEBUG,
                 "connection on the %s side closed: %s",
                 c->push ? "sending" : "receiving", why);
    if (!b->server) {
      struct timeval tv = {0, RECONNECT_MS * 1000};
      evtimer_add(b->retry[c->push], &tv);
    }
  }
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

/* ---- sockets ---- */


static void accept_cb(evutil_socket_t lfd, short what, void *arg) {
  (void)what;
  bridge *b = arg;
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

/* The client's connection on one side: nonblocking connect, then the
** connection's own events take over (a refused connect shows as EOF or an
** error on the first read, which closes and reschedules). */
static void client_connect(bridge *b, int push) {
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




typedef struct start_args {
  bridge *b;
  int rc;
} start_args;

/* On the I/O thread: the listeners' events, or the client's connections. */
static void start_io(void *arg) {
  start_args *sa = arg;
  bridge *b = sa->b;
  struct event_base *base = sl_io_base(b->io, 0);
  b->resume_ev = event_new(base, -1, 0, resume_cb, b);
  if (b->resume_ev == NULL) {
    sa->rc = ENOMEM;
    return;
  }
  if (b->server) {
    for (int i = 0; i < 2; i++) {
      b->lev[i] = event_new(base, b->lfd[i], EV_READ | EV_PERSIST, accept_cb, b);
      if (b->lev[i] == NULL) {
        sa->rc = ENOMEM;
        return;
      }
      event_add(b->lev[i], NULL);
    }
  } else {
    b->retry[0] = evtimer_new(base, retry_pull_cb, b);
    b->retry[1] = evtimer_new(base, retry_push_cb, b);
    if (b->retry[0] == NULL || b->retry[1] == NULL) {
      sa->rc = ENOMEM;
      return;
    }
    client_connect(b, 0);
    client_connect(b, 1);
  }
  sa->rc = 0;
}

/* On I/O thread 0: no more accepting, reconnecting or resuming. */
static void stop_io(void *arg) {
  bridge *b = arg;
  if (b->resume_ev) {      /* no one activates it once stopping is set */
    event_free(b->resume_ev);
    b->resume_ev = NULL;
  }
  for (int i = 0; i < 2; i++) {
    if (b->lev[i]) {
      event_free(b->lev[i]);
      b->lev[i] = NULL;
    }
    if (b->lfd[i] >= 0) {
      close(b->lfd[i]);
      b->lfd[i] = -1;
    }
    if (b->retry[i]) {
      event_free(b->retry[i]);
      b->retry[i] = NULL;
    }
  }
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
    conn_close(c, CLOSE_STOP, "stopped");
    free_conn(c);
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

static void bridge_stop(sl_object *obj) {
  bridge *b = (bridge *)obj;
  pthread_mutex_lock(&b->mutex);
  int was = b->stopping;
  b->stopping = 1;
  pthread_cond_broadcast(&b->send_cv);
  pthread_cond_broadcast(&b->rx_cv);
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
  cache_unref(b->blocks);
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
                    {"connections", sl_tcp_bridge_connections(obj)}};
  size_t n = sizeof c / sizeof c[0];
  if (n > max) n = max;
  memcpy(out, c, n * sizeof c[0]);
  return n;
}

static const sl_slave_ops bridge_ops = {.accept_frame = bridge_accept};


sl_object *sl_tcp_bridge_new(const char *addr, uint32_t port, int server,
                             char *err, size_t errlen) {
  if (port > 65534) {
    sl_sock_error(err, errlen, "bad port for", addr, port, EINVAL);
    return NULL;
  }
  bridge *b = calloc(1, sizeof *b);
  if (b == NULL) return NULL;
  sl_object_init(&b->obj, server ? "TcpServer" : "TcpClient", bridge_destroy);
  b->obj.stop = bridge_stop;
  b->obj.counters = bridge_counters;
  b->server = server;
  b->port = port;
  b->lfd[0] = b->lfd[1] = -1;
  b->timeout_us = -1;
  b->max_size = SL_ZMTP_DEFAULT_MAX_MSG;
  snprintf(b->addr, sizeof b->addr, "%s", addr);
  pthread_mutex_init(&b->mutex, NULL);
  pthread_cond_init(&b->send_cv, NULL);
  pthread_cond_init(&b->rx_cv, NULL);
  b->blocks = cache_new();
  if (b->blocks == NULL || rx_grow_nolock_(b) != 0 || sl_slave_init(&b->slave, &bridge_ops, &b->obj) != SL_OK)
    goto out_free;
  if (sl_master_init(&b->master, &b->obj) != SL_OK) goto out_slave;
  /* Received frames come from the bridge's own pool: small ones in kept
  ** fixed-size blocks (large ones keep the memory they arrived in). */
  sl_pool_set_fixed_size(b->slave.pool, ADOPT_MIN);
  sl_pool_set_pool_size(b->slave.pool, 1024);
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
  snprintf(name, sizeof name, "stream.TcpCore.%s.%s.%u", b->addr,
           server ? "Server" : "Client", (unsigned)b->port);
  b->log = sl_log_get(name);
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
    sl_sock_error(err, errlen, "cannot start", addr, port, sa.rc ? sa.rc : EAGAIN);
    close_all(b);
    sl_io_release(b->io);
    goto out_master;
  }
  b->started = 1;
  return &b->obj;
out_listen:
  for (int i = 0; i < 2; i++)
    if (b->lfd[i] >= 0) close(b->lfd[i]);
out_master:
  sl_master_fini(&b->master);
out_slave:
  sl_slave_fini(&b->slave);
out_free:
  pthread_cond_destroy(&b->send_cv);
  pthread_cond_destroy(&b->rx_cv);
  pthread_mutex_destroy(&b->mutex);
  free(b->rx);
  cache_unref(b->blocks);
  free(b);
  return NULL;
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
  pthread_mutex_lock(&b->mutex);
  b->max_size = bytes;
  pthread_mutex_unlock(&b->mutex);
}

uint32_t sl_tcp_bridge_port(sl_object *obj) { return ((bridge *)obj)->port; }

uint32_t sl_tcp_bridge_connections(sl_object *obj) {
  bridge *b = (bridge *)obj;
  pthread_mutex_lock(&b->mutex);
  uint32_t n = 0;
  for (conn *c = b->conns; c != NULL; c = c->next) n++;
  pthread_mutex_unlock(&b->mutex);
  return n;
}
