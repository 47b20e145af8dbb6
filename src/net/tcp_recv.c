/*
** The stream TCP bridge, receiving side: the codec's events become frames
** (small payloads copied into kept blocks, large ones keeping the buffer
** they were read into), queued for the delivery pool one read at a time;
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

/* Receiving connections all live on loop 0, as the resume event does: a
** pause stops the read being pumped after the message at hand (what is
** left of it waits in the connection), so one read cannot take the queue
** far past its limits. */
static void pause_reads_nolock_(bridge *b, int pause) {
  b->rx_paused = pause;
  for (sl_zconn *c = b->zb.conns; c != NULL; c = c->next)
    if (!c->push && !c->dead) {
      if (pause) sl_zconn_pause_nolock(c);
      else sl_zconn_resume_nolock(c);
    }
}

void tcp_resume_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  bridge *b = arg;
  pthread_mutex_lock(&b->zb.mutex);
  if (b->rx_paused && !b->zb.stopping && tcp_rx_room_nolock(b))
    pause_reads_nolock_(b, 0);
  pthread_mutex_unlock(&b->zb.mutex);
}

int tcp_rx_room_nolock(const bridge *b) {
  return b->rx_count + b->rx_busy < RX_FRAMES / 2 &&
         b->rx_qbytes <= b->max_queue_bytes / 2;
}

int tcp_rx_grow_nolock(bridge *b) {
  uint32_t cap = b->rx_cap ? b->rx_cap * 2 : RX_FRAMES * 2;
  rx_slot *r = malloc(cap * sizeof *r);
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
  uint8_t *m = sl_zmtp_take_message(c->zc.z, &cap);
  if (m == NULL) return NULL;
  uint8_t *next = cache_get(b->blocks, &kcap);   /* for the next message */
  if (next != NULL && !sl_zmtp_give_buffer(c->zc.z, next, kcap)) free(next);
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

void tcp_rx_spare_release(rx_batch *rb) {
  if (rb->spare_at < rb->spare_n)
    sl_frame_unref_many(rb->spare + rb->spare_at, rb->spare_n - rb->spare_at);
  rb->spare_at = rb->spare_n = 0;
  rb->ask = 0;
  rb->single = 0;
}

/*
** A frame holding a small message's n payload bytes: the next of those
** requested together (rx_batch), its one block of ADOPT_MIN bytes cut to n
** by its tail room, so its size is n as a request of n would make it. A
** pool set to other blocks (setFixedSize) gives frames one by one, as
** asked. NULL if out of memory.
*/
static sl_frame *small_frame(bridge *b, rx_batch *rb, const uint8_t *data, uint32_t n) {
  sl_frame *f;
  sl_buffer *bf;
  if (rb->single) goto single;
  if (rb->spare_at == rb->spare_n) {
    uint32_t ask = rb->ask > 0 ? rb->ask : 1;
    rb->spare_at = 0;
    rb->spare_n = sl_pool_req_frames(b->slave.pool, ADOPT_MIN, rb->spare, ask);
    rb->ask = ask * 2 < RX_SPARE ? ask * 2 : RX_SPARE;
    if (rb->spare_n == 0) return NULL;
  }
  f = rb->spare[rb->spare_at];
  bf = sl_frame_buffer_count(f) == 1 ? sl_frame_buffer(f, 0) : NULL;
  if (bf == NULL || sl_buffer_get_size(bf) != ADOPT_MIN) {
    tcp_rx_spare_release(rb);
    rb->single = 1;
    goto single;
  }
  rb->spare_at++;
  sl_buffer_adjust_tail(bf, ADOPT_MIN - n);
  sl_buffer_set_payload(bf, n);
  memcpy(sl_buffer_begin(bf), data, n);
  return f;
single:
  f = sl_slave_req_local_frame(&b->slave, n);
  if (f == NULL) return NULL;
  bf = sl_frame_buffer_count(f) == 1 ? sl_frame_buffer(f, 0) : NULL;
  if (bf != NULL && sl_buffer_set_payload(bf, n) == SL_OK)
    memcpy(sl_buffer_begin(bf), data, n);
  else
    sl_frame_write(f, data, 0, n);
  return f;
}

/*
** Queues the batch (I/O thread); `end`: the read's end. 0 if out of
** memory: the frames are dropped and the caller closes the connection.
** The delivery is woken once per spell of work, not per batch: when a
** read ends with frames queued, or once a delivery batch (RX_WAKE) or a
** quarter of the byte limit waits; while it runs (rx_woken) it finds what
** comes next itself. A woken thread often takes the waker's CPU (the
** other one busy with the sender), so a wake per 64 frames cost a pair
** of context switches per 64 frames.
*/
static int rx_flush(bridge *b, rx_batch *rb, int end) {
  if (rb->n == 0 && !(end && rb->held)) return 1;
  atomic_fetch_add(&b->rx_frames, rb->n);
  atomic_fetch_add(&b->rx_bytes, rb->bytes);
  uint32_t put = 0;
  pthread_mutex_lock(&b->zb.mutex);
  while (put < rb->n) {
    if (b->rx_count == b->rx_cap && tcp_rx_grow_nolock(b) != 0) break;
    b->rx[(b->rx_head + b->rx_count) % b->rx_cap] = rb->f[put++];
    b->rx_count++;
  }
  if (put == rb->n) b->rx_qbytes += rb->bytes;
  else for (uint32_t i = 0; i < put; i++) b->rx_qbytes += rb->f[i].pay;
  int wake = !b->rx_woken && b->rx_count > 0 &&
             (end || b->rx_count >= RX_WAKE || b->rx_qbytes >= b->max_queue_bytes / 4);
  if (wake) b->rx_woken = 1;
  rb->held = !end && !b->rx_woken && b->rx_count > 0;
  /* Back-pressure reaches the sender over TCP: reading pauses at either
  ** limit, past it by at most one batch, so a frame larger than the byte
  ** limit still passes alone. */
  if ((b->rx_count + b->rx_busy >= RX_FRAMES || b->rx_qbytes >= b->max_queue_bytes) &&
      !b->rx_paused)
    pause_reads_nolock_(b, 1);
  pthread_mutex_unlock(&b->zb.mutex);
  if (wake) sl_deliver_notify(&b->delivery);
  uint32_t left = rb->n - put;
  if (left > 0) {
    for (uint32_t i = put; i < rb->n; i++) sl_frame_unref(rb->f[i].f);
    uint64_t all = atomic_fetch_add(&b->drops, left) + left;
    sl_log_write(b->zb.log, SL_LOG_ERROR, "%u received frame(s) dropped: out of memory "
                 "for the queue (%llu dropped in all)", (unsigned)left,
                 (unsigned long long)all);
  }
  rb->n = 0;
  rb->bytes = 0;
  return left == 0;
}

/* A valid 4-part message becomes a frame in the delivery batch; anything
** else closes the connection. Returns 0 if the connection was closed. */
int tcp_conn_message(sl_zconn *zc, const sl_zmtp_event *ev) {
  conn *c = (conn *)zc;
  bridge *b = tcp_bridge_of(zc);
  rx_batch *rb = &c->rb;
  if (ev->nparts != 4 || ev->parts[0].size != 2 || ev->parts[1].size != 1 ||
      ev->parts[2].size != 1) {
    char why[96];
    snprintf(why, sizeof why, "bad message: %zu parts, sizes %zu %zu %zu",
             ev->nparts, ev->parts[0].size,
             ev->nparts > 1 ? ev->parts[1].size : 0,
             ev->nparts > 2 ? ev->parts[2].size : 0);
    sl_zconn_close(zc, SL_ZCLOSE_PROTOCOL, why);
    return 0;
  }
  const sl_zmtp_part *p = ev->parts;
  sl_frame *f = p[3].size >= ADOPT_MIN
                   ? adopt_message(b, c, ev)
                   : small_frame(b, rb, p[3].data, (uint32_t)p[3].size);
  if (f == NULL) {
    sl_zconn_close(zc, SL_ZCLOSE_PROTOCOL, "out of memory for a frame");
    return 0;
  }
  sl_frame_set_flags(f, sl_load_le16(p[0].data));
  sl_frame_set_channel(f, p[1].data[0]);
  sl_frame_set_error(f, p[2].data[0]);
  rb->f[rb->n++] = (rx_slot){f, (uint32_t)p[3].size};
  rb->bytes += p[3].size;
  if (rb->n == RX_BATCH && !rx_flush(b, rb, 0)) {
    sl_zconn_close(zc, SL_ZCLOSE_PROTOCOL, "out of memory for the delivery queue");
    return 0;
  }
  return 1;
}

/* The end of a read: its frames go to the delivery pool together, the
** frames it requested and did not fill back to the pool. */
int tcp_conn_read_done(sl_zconn *zc) {
  rx_batch *rb = &((conn *)zc)->rb;
  tcp_rx_spare_release(rb);
  if (rx_flush(tcp_bridge_of(zc), rb, 1)) return 1;
  sl_zconn_close(zc, SL_ZCLOSE_PROTOCOL, "out of memory for the delivery queue");
  return 0;
}
