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
#include <unistd.h>

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

/* Bytes the 4-part message for f takes on the wire. */
static uint64_t msg_size(sl_frame *f) {
  uint64_t n = sl_frame_get_payload(f);
  return 4 + 3 + 3 + (n <= SL_ZMTP_SHORT_MAX ? 2 : 9) + n;
}

/* Writes the three small parts and part 3's header for f into h (<= 19). */
static size_t msg_headers(sl_frame *f, uint8_t *h) {
  h[0] = SL_ZMTP_FLAG_MORE; h[1] = 2;
  sl_store_le16(h + 2, sl_frame_get_flags(f));
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

void tcp_conn_write(conn *c) {
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
      tcp_conn_close(c, CLOSE_PEER, strerror(errno));
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
    if (errno != EAGAIN && errno != EINTR) tcp_conn_close(c, CLOSE_PEER, strerror(errno));
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
    /* Past the deadline, or told to give up: the rest goes to the I/O
    ** thread, so the message is never left half written. */
    if (sl_wait_cancelled()) break;
    int ms = DIRECT_POLL_MS;
    if (dl != NULL) {
      int64_t rest = sl_deadline_left(dl) / 1000;
      if (rest <= 0) break;
      if (rest < ms) ms = (int)rest;
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
  int handed = !failed && off < need;  /* the I/O thread finishes it */
  if (handed) {
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
  if (failed) {
    atomic_fetch_add(&b->drops, 1);
  } else if (!handed) {
    atomic_fetch_add(&b->tx_frames, 1);
    atomic_fetch_add(&b->tx_bytes, sl_frame_get_payload(f));
  }
}

/* The send path: wait for a peer with room (or give up), queue, kick;
** or write straight into an idle connection. */
void tcp_bridge_accept(sl_slave *s, sl_frame *f) {
  bridge *b = (bridge *)s->owner;
  uint64_t need = msg_size(f);
  struct timespec dl;
  pthread_mutex_lock(&b->mutex);
  int64_t timeout = b->timeout_us;
  if (timeout >= 0) sl_deadline_after(&dl, timeout);
  conn *c;
  int rc = SL_OK;
  while ((c = pick_nolock_(b, need)) == NULL && !b->stopping && rc == SL_OK)
    rc = sl_wait_cond(&b->send_cv, &b->mutex, timeout >= 0 ? &dl : NULL);
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
out_drop:;
  int stopping = b->stopping;
  pthread_mutex_unlock(&b->mutex);
  atomic_fetch_add(&b->drops, 1);
  sl_log_write(b->log, stopping ? SL_LOG_DEBUG : SL_LOG_WARNING,
               "frame dropped: %s",
               stopping ? "bridge stopped"
               : rc == SL_ECANCELED ? "the sender was stopped or interrupted"
                                    : "no peer took it in time");
}
