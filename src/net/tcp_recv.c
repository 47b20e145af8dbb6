/*
** The stream TCP bridge, receiving side: the codec's events become frames
** (small payloads copied into kept blocks, large ones keeping the buffer
** they were read into), queued for the delivery thread one read at a time;
** a full queue pauses reading, so back-pressure reaches the sender.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "streamlua/pool.h"
#include "streamlua/status.h"
#include "tcp_internal.h"

#include "../core/bytes.h"

static void pause_reads_nolock_(bridge *b, int pause) {
  b->rx_paused = pause;
  for (conn *c = b->conns; c != NULL; c = c->next)
    if (!c->push && !c->dead) {
      if (pause) event_del(c->rev);
      else event_add(c->rev, NULL);
    }
}

void tcp_resume_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  bridge *b = arg;
  pthread_mutex_lock(&b->mutex);
  if (b->rx_paused && !b->stopping && b->rx_count < RX_FRAMES / 2)
    pause_reads_nolock_(b, 0);
  pthread_mutex_unlock(&b->mutex);
}

int tcp_rx_grow_nolock(bridge *b) {
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

struct block_cache {
  atomic_int refs;
  pthread_mutex_t mutex;
  uint8_t *blocks[CACHE_BLOCKS];
  size_t caps[CACHE_BLOCKS];
  int n;
};

block_cache *tcp_cache_new(void) {
  block_cache *bc = calloc(1, sizeof *bc);
  if (bc == NULL) return NULL;
  atomic_init(&bc->refs, 1);
  pthread_mutex_init(&bc->mutex, NULL);
  return bc;
}

void tcp_cache_unref(block_cache *bc) {
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
  tcp_cache_unref(bc);
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
    tcp_cache_unref(b->blocks);
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
    if (b->rx_count == b->rx_cap && tcp_rx_grow_nolock(b) != 0) break;
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
    tcp_conn_close(c, CLOSE_PROTOCOL, "a message arrived on the sending side");
    return 0;
  }
  if (ev->nparts != 4 || ev->parts[0].size != 2 || ev->parts[1].size != 1 ||
      ev->parts[2].size != 1) {
    char why[96];
    snprintf(why, sizeof why, "bad message: %zu parts, sizes %zu %zu %zu",
             ev->nparts, ev->parts[0].size,
             ev->nparts > 1 ? ev->parts[1].size : 0,
             ev->nparts > 2 ? ev->parts[2].size : 0);
    tcp_conn_close(c, CLOSE_PROTOCOL, why);
    return 0;
  }
  const sl_zmtp_part *p = ev->parts;
  sl_frame *f = p[3].size >= ADOPT_MIN ? adopt_message(b, c, ev)
                                       : sl_slave_req_local_frame(&b->slave,
                                                                  (uint32_t)p[3].size);
  if (f == NULL) {
    tcp_conn_close(c, CLOSE_PROTOCOL, "out of memory for a frame");
    return 0;
  }
  if (p[3].size < ADOPT_MIN) sl_frame_write(f, p[3].data, 0, (uint32_t)p[3].size);
  sl_frame_set_flags(f, sl_load_le16(p[0].data));
  sl_frame_set_channel(f, p[1].data[0]);
  sl_frame_set_error(f, p[2].data[0]);
  rb->f[rb->n++] = f;
  rb->bytes += p[3].size;
  if (rb->n == RX_BATCH && !rx_flush(b, rb)) {
    tcp_conn_close(c, CLOSE_PROTOCOL, "out of memory for the delivery queue");
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

/*
** While a large body arrives, the socket wakes the I/O thread only once
** what is left of it (up to LOWAT_MAX) is there: fewer wake-ups and larger
** copies per message. Between messages it wakes for any byte. End of file
** and errors wake it whatever the mark.
*/
#define LOWAT_MAX (1u << 20)

static void set_lowat(conn *c) {
  uint8_t *dst;
  size_t room = sl_zmtp_body_space(c->z, DIRECT_MAX, &dst);
  int want = room >= DIRECT_MIN ? (int)(room < LOWAT_MAX ? room : LOWAT_MAX) : 0;
  if (want == c->lowat) return;
  int v = want > 0 ? want : 1;
  if (setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0) c->lowat = want;
}

static void conn_read_once(conn *c);

void tcp_conn_read(conn *c) {
  conn_read_once(c);
  if (!c->dead && tcp_conn_hold(c)) set_lowat(c);
}

int tcp_conn_hold(conn *c) {
  bridge *b = c->b;
  if (sl_pair_hold(&b->pair, &c->held, sl_zmtp_partial(c->z))) return 1;
  sl_pair_note(&b->pair, SL_NOTE_PENDING, SL_LOG_ERROR,
               "connection on the %s side closed: unfinished messages would "
               "hold more than %llu bytes", c->push ? "sending" : "receiving",
               (unsigned long long)atomic_load(&b->pair.max_pending));
  tcp_conn_close(c, CLOSE_LIMIT, "unfinished messages over the limit");
  return 0;
}

static void conn_read_once(conn *c) {
  uint8_t *dst;
  size_t room = sl_zmtp_body_space(c->z, DIRECT_MAX, &dst);
  if (room >= DIRECT_MIN) {                 /* a large body: straight in */
    ssize_t got = recv(c->fd, dst, room, 0);
    if (got == 0) {
      tcp_conn_close(c, CLOSE_PEER, "closed by the peer");
    } else if (got < 0) {
      if (errno != EAGAIN && errno != EINTR) tcp_conn_close(c, CLOSE_PEER, strerror(errno));
    } else {
      sl_zmtp_body_done(c->z, (size_t)got);
      handle_events(c, NULL, 0);
    }
    return;
  }
  uint8_t *rbuf = read_buffer();
  if (rbuf == NULL) {
    tcp_conn_close(c, CLOSE_PROTOCOL, "out of memory for reading");
    return;
  }
  ssize_t n = recv(c->fd, rbuf, READ_CHUNK, 0);
  if (n == 0) {
    tcp_conn_close(c, CLOSE_PEER, "closed by the peer");
    return;
  }
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) tcp_conn_close(c, CLOSE_PEER, strerror(errno));
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
        if (c->hev) event_free(c->hev);       /* handshake done in time */
        c->hev = NULL;
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
        tcp_conn_close(c, CLOSE_PROTOCOL, ev.text);
        return 0;
      default:
        break;
    }
  }
  if (!rx_flush(b, &rb)) {
    tcp_conn_close(c, CLOSE_PROTOCOL, "out of memory for the delivery queue");
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
