/*
** The stream TCP bridge, sending side: a frame becomes a 4-part message
** (flags, channel, error, payload) written with no copy. Small messages
** are queued per connection and the I/O thread writes many per writev; a
** large one sent while its connection is idle is written by the sender.
*/
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "streamlua/status.h"
#include "streamlua/wait.h"
#include "tcp_internal.h"

#include "../core/bytes.h"

#define DIRECT_POLL_MS 20   /* a blocked direct writer looks at its deadline */

/* writev that never raises SIGPIPE: a peer gone is an error return. */
static ssize_t send_iov(int fd, struct iovec *iov, int niov) {
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
  return sendmsg(fd, &mh, MSG_NOSIGNAL);
}

/* Bytes the 4-part message for a payload of n bytes takes on the wire. */
static uint64_t msg_size(uint64_t n) {
  return 4 + 3 + 3 + (n <= SL_ZMTP_SHORT_MAX ? 2 : 9) + n;
}

/* Writes the three small parts and part 3's header for f, whose payload
** is pay bytes, into h (<= 19). */
static size_t msg_headers(sl_frame *f, uint32_t pay, uint8_t *h) {
  h[0] = SL_ZMTP_FLAG_MORE; h[1] = 2;
  sl_store_le16(h + 2, sl_frame_get_flags(f));
  h[4] = SL_ZMTP_FLAG_MORE; h[5] = 1; h[6] = sl_frame_get_channel(f);
  h[7] = SL_ZMTP_FLAG_MORE; h[8] = 1; h[9] = sl_frame_get_error(f);
  return 10 + sl_zmtp_frame_header(h + 10, pay, 0);
}

/* Adds iovecs for f's message from byte `skip` on; returns the count. */
static int msg_iov(sl_frame *f, uint32_t pay, uint8_t *h, uint64_t skip,
                   struct iovec *iov, int max) {
  int n = 0;
  size_t hl = msg_headers(f, pay, h);
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

/* ---- the writer token and the one release of a frame ---- */

/* Frames that left a connection's queue, released together. */
typedef struct out_done {
  sl_frame *f[WRITE_MSGS];
  uint32_t n;
  uint64_t bytes;
} out_done;

/* Every frame queued on a connection ends here: written (counted as
** sent) or dropped with its connection. */
static void out_release(bridge *b, sl_frame **f, uint32_t n, uint64_t bytes,
                        int written) {
  if (n == 0) return;
  if (written) {
    atomic_fetch_add(&b->tx_frames, n);
    atomic_fetch_add(&b->tx_bytes, bytes);
  } else {
    atomic_fetch_add(&b->drops, n);
  }
  sl_frame_unref_many(f, n);
}

/* w more bytes of c's queue went out (lock and token held): whole
** messages leave the queue into *d. */
static void out_advance_nolock(conn *c, uint64_t w, out_done *d) {
  while (c->ocount > 0) {
    uint32_t pay = c->opay[c->ohead];
    uint64_t size = msg_size(pay), rest = size - c->msg_off;
    if (w < rest) {
      c->msg_off += w;
      break;
    }
    w -= rest;
    c->msg_off = 0;
    d->bytes += pay;
    c->obytes -= size;
    d->f[d->n++] = c->out[c->ohead];
    c->ohead = c->ohead + 1 == OUT_FRAMES ? 0 : c->ohead + 1;
    c->ocount--;
  }
}

/*
** Takes c's writer token for `who` (lock held): 1 if it was free. A sender
** takes it only when the I/O thread has nothing to write, and pins c
** while it holds it (zmtp_conn.h).
*/
static int writer_take_nolock(conn *c, int who) {
  if (c->writer != WRITER_NONE || (who == WRITER_SENDER && c->zc.kicked)) return 0;
  c->writer = who;
  if (who == WRITER_SENDER) sl_zconn_pin_nolock(&c->zc);
  return 1;
}

/* Gives the token back (lock held); the I/O thread is kicked if frames
** or a write of its own wait. A sender unpins c after the lock. */
static void writer_give_nolock(conn *c) {
  c->writer = WRITER_NONE;
  if (!c->zc.dead && (c->ocount > 0 || c->want_write)) {
    c->want_write = 0;
    sl_zconn_kick_nolock(&c->zc);
  }
}

/* ---- the I/O thread's writes ---- */

/*
** Builds one write from the head of c's queue (up to `avail` messages,
** `skip` bytes of the first already sent) and returns its iovec count:
** small messages are copied whole into the stage, so many go out as one
** span; a larger one gives its header from the stage and its payload
** buffers as they are, and one with more buffers than DIRECT_IOV may be
** cut, so it ends the write. The queue's first avail slots are the
** writer's alone, so no lock is held.
*/
static int build_write(conn *c, uint8_t *st, uint32_t avail, uint64_t skip,
                       struct iovec *iov) {
  size_t used = 0;
  int niov = 0;
  uint32_t k = 0, slot = c->ohead;
  for (; k < avail && k < WRITE_MSGS && niov <= WRITE_IOV - DIRECT_IOV;
       k++, slot = slot + 1 == OUT_FRAMES ? 0 : slot + 1) {
    sl_frame *f = c->out[slot];
    uint32_t pay = c->opay[slot];
    size_t size = (size_t)msg_size(pay);
    if (k == 0 && skip > 0) {
      niov += msg_iov(f, pay, st + used, skip, iov + niov, DIRECT_IOV);
      used += 20;
      if (sl_frame_buffer_count(f) >= DIRECT_IOV) return niov;   /* maybe cut */
      continue;
    }
    if (pay <= STAGE_COPY_MAX && used + size <= STAGE_BYTES) {
      uint8_t *d = st + used;
      if (niov > 0 && (uint8_t *)iov[niov - 1].iov_base + iov[niov - 1].iov_len == d)
        iov[niov - 1].iov_len += size;
      else
        iov[niov++] = (struct iovec){d, size};
      used += size;
      d += msg_headers(f, pay, d);
      for (size_t i = 0, nb = sl_frame_buffer_count(f); i < nb; i++) {
        sl_buffer *bf = sl_frame_buffer(f, i);
        uint32_t len = sl_buffer_get_payload(bf);
        memcpy(d, sl_buffer_begin(bf), len);
        d += len;
      }
      continue;
    }
    if (used + 20 > STAGE_BYTES) break;
    niov += msg_iov(f, pay, st + used, 0, iov + niov, DIRECT_IOV);
    used += 20;
    if (sl_frame_buffer_count(f) >= DIRECT_IOV) break;  /* maybe cut: last */
  }
  return niov;
}

/*
** The write event's work: the connection's queued bytes first (greeting,
** READY, PONGs: only between messages), then queued messages, many per
** writev. The lock is taken twice per write: to take the writer token and
** see the queue, and to advance it and give the token back.
*/
void tcp_conn_writable(sl_zconn *zc) {
  conn *c = (conn *)zc;
  bridge *b = tcp_bridge_of(zc);
  pthread_mutex_t *mu = &zc->b->mutex;
  pthread_mutex_lock(mu);
  if (!writer_take_nolock(c, WRITER_IO)) {   /* a sender kicks us when done */
    c->want_write = 1;
    zc->kicked = 0;
    event_del(zc->wev);
    pthread_mutex_unlock(mu);
    return;
  }
  int bytes_first = c->msg_off == 0 && sl_zconn_queued(zc) > 0;
  uint32_t avail = c->ocount;
  pthread_mutex_unlock(mu);
  uint8_t *stage = sl_zconn_scratch();
  if (bytes_first && sl_zconn_drain(zc, 0, NULL) != 1) goto out;
  if (stage == NULL) {
    sl_zconn_close(zc, SL_ZCLOSE_PROTOCOL, "out of memory for sending");
    goto out;
  }
  if (bytes_first) {               /* messages queued meanwhile go too */
    pthread_mutex_lock(mu);
    avail = c->ocount;
    pthread_mutex_unlock(mu);
  }
  out_done d;                     /* no initializer: 8 KiB not cleared */
  d.n = 0;
  d.bytes = 0;
  ssize_t w = 0;
  if (avail > 0) {
    struct iovec iov[WRITE_IOV];
    int niov = build_write(c, stage, avail, c->msg_off, iov);
    w = send_iov(zc->fd, iov, niov);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      sl_zconn_close(zc, SL_ZCLOSE_PEER, strerror(errno));
  }
  pthread_mutex_lock(mu);
  if (avail == 0 && c->ocount == 0 && sl_zconn_queued(zc) == 0) {   /* idle */
    zc->kicked = 0;
    event_del(zc->wev);
  }
  if (w > 0 && !zc->dead) out_advance_nolock(c, (uint64_t)w, &d);
  /* Senders waiting for room wake once the queue is down to half its
  ** limits, not after every write: one wake-up per half queue. */
  if (d.n > 0 && b->send_waiters > 0 && c->ocount <= OUT_FRAMES / 2 &&
      c->obytes <= b->max_queue_bytes / 2)
    pthread_cond_broadcast(&b->send_cv);
  writer_give_nolock(c);
  pthread_mutex_unlock(mu);
  out_release(b, d.f, d.n, d.bytes, 1);
  return;
out:
  pthread_mutex_lock(mu);
  writer_give_nolock(c);
  pthread_mutex_unlock(mu);
}

/* A closed connection's queued frames are dropped (its I/O thread; no
** other thread reaches the queue once the connection is off the list). */
void tcp_conn_closed(sl_zconn *zc) {
  conn *c = (conn *)zc;
  bridge *b = tcp_bridge_of(zc);
  tcp_rx_spare_release(&c->rb);     /* none outside a read: for certain */
  uint32_t lost = c->ocount;
  while (c->ocount > 0) {
    out_done d;
    d.n = 0;
    while (c->ocount > 0 && d.n < WRITE_MSGS) {
      d.f[d.n++] = c->out[c->ohead];
      c->ohead = (c->ohead + 1) % OUT_FRAMES;
      c->ocount--;
    }
    out_release(b, d.f, d.n, 0, 0);
  }
  if (lost == 0) return;
  pthread_mutex_lock(&b->zb.mutex);
  int stopping = b->zb.stopping;
  pthread_mutex_unlock(&b->zb.mutex);
  sl_log_write(b->zb.log, stopping ? SL_LOG_DEBUG : SL_LOG_ERROR,
               "%u frame(s) dropped with the connection on the %s side "
               "(%llu dropped in all)", (unsigned)lost, sl_zconn_side(zc),
               (unsigned long long)atomic_load(&b->drops));
}

/* ---- senders ---- */

/* Whether c takes a message of `need` bytes now (lock held). */
static int room_nolock_(const bridge *b, const conn *c, uint64_t need) {
  return c->zc.push && c->zc.ready && c->ocount < OUT_FRAMES &&
         (c->obytes + need <= b->max_queue_bytes || c->ocount == 0);
}

/* A ready push connection with room, round robin (lock held): the first
** with room from the list place after the last pick on, else from the
** list's start; one pass (a client's list holds its pull connection too). */
static conn *pick_nolock_(bridge *b, uint64_t need) {
  conn *wrap = NULL;
  uint32_t i = 0, wrap_i = 0;
  for (sl_zconn *zc = b->zb.conns; zc != NULL; zc = zc->next, i++) {
    if (!room_nolock_(b, (conn *)zc, need)) continue;
    if (i >= b->rr) {
      b->rr = i + 1;
      return (conn *)zc;
    }
    if (wrap == NULL) {
      wrap = (conn *)zc;
      wrap_i = i;
    }
  }
  if (wrap != NULL) b->rr = wrap_i + 1;
  return wrap;
}

/*
** A sender holding the writer token writes the head message f itself, as
** a plain blocking writer would: no hand-off, no wake-up of the I/O
** thread. It waits for room in the socket until the deadline; what is
** left then goes to the I/O thread like any queued message, and so does a
** write that failed (the I/O thread sees the error and closes). A
** connection closed meanwhile has dropped f with its queue.
*/
static void send_direct(conn *c, sl_frame *f, uint32_t pay, uint64_t need,
                        const struct timespec *dl) {
  bridge *b = tcp_bridge_of(&c->zc);
  uint8_t h[20];
  struct iovec iov[DIRECT_IOV];
  uint64_t off = 0;
  while (off < need) {
    int niov = msg_iov(f, pay, h, off, iov, DIRECT_IOV);
    ssize_t w = send_iov(c->zc.fd, iov, niov);
    if (w > 0) {
      off += (uint64_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN) break;
    /* Past the deadline, or told to give up: the rest goes to the I/O
    ** thread, so the message is never left half written. */
    if (sl_wait_cancelled()) break;
    int ms = DIRECT_POLL_MS;
    if (dl != NULL) {
      int64_t rest = sl_deadline_left(dl) / 1000;
      if (rest <= 0) break;
      if (rest < ms) ms = (int)rest;
    }
    struct pollfd pfd = {c->zc.fd, POLLOUT, 0};
    if (poll(&pfd, 1, ms) < 0 && errno != EINTR) break;
    if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) break;
  }
  out_done d;
  d.n = 0;
  d.bytes = 0;
  pthread_mutex_lock(&b->zb.mutex);
  if (!c->zc.dead) out_advance_nolock(c, off, &d);
  writer_give_nolock(c);
  pthread_cond_broadcast(&b->send_cv);
  pthread_mutex_unlock(&b->zb.mutex);
  sl_zconn_unpin(&c->zc);
  out_release(b, d.f, d.n, d.bytes, 1);
}

/* The send path: wait for a peer with room (or give up) and queue; then
** kick the I/O thread, or take the writer token of an idle connection
** and write a large message straight away. */
void tcp_bridge_accept(sl_slave *s, sl_frame *f) {
  bridge *b = (bridge *)s->owner;
  uint32_t pay = sl_frame_get_payload(f);
  uint64_t need = msg_size(pay);
  struct timespec dl;
  pthread_mutex_lock(&b->zb.mutex);
  int64_t timeout = b->timeout_us;
  if (timeout >= 0) sl_deadline_after(&dl, timeout);
  conn *c;
  int rc = SL_OK;
  while ((c = pick_nolock_(b, need)) == NULL && !b->zb.stopping && rc == SL_OK) {
    b->send_waiters++;
    rc = sl_wait_cond(&b->send_cv, &b->zb.mutex, timeout >= 0 ? &dl : NULL);
    b->send_waiters--;
  }
  if (c == NULL) goto out_drop;
  uint32_t slot = (c->ohead + c->ocount) % OUT_FRAMES;
  c->out[slot] = sl_frame_ref(f);
  c->opay[slot] = pay;
  c->ocount++;
  c->obytes += need;
  if (c->ocount == 1 && need >= DIRECT_SEND_MIN && writer_take_nolock(c, WRITER_SENDER)) {
    pthread_mutex_unlock(&b->zb.mutex);
    send_direct(c, f, pay, need, timeout >= 0 ? &dl : NULL);
    return;
  }
  if (c->writer != WRITER_SENDER) sl_zconn_kick_nolock(&c->zc);
  pthread_mutex_unlock(&b->zb.mutex);
  return;
out_drop:;
  int stopping = b->zb.stopping;
  pthread_mutex_unlock(&b->zb.mutex);
  atomic_fetch_add(&b->drops, 1);
  sl_log_write(b->zb.log, stopping ? SL_LOG_DEBUG : SL_LOG_ERROR,
               "frame dropped: %s",
               stopping ? "bridge stopped"
               : rc == SL_ECANCELED ? "the sender was stopped or interrupted"
                                    : "no peer took it in time");
}
