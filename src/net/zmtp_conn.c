/*
** ZMTP connections and the bridge base (see zmtp_conn.h).
*/
#include "zmtp_conn.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "../core/clock.h"
#include "sock.h"

#define BULK_MIN (16u * 1024)    /* bodies read straight into place */
#define BULK_MAX (4u << 20)      /* room made ahead for one body */
#define LOWAT_MAX (1u << 20)
#define ACK_REARM_NS 10000000    /* late ACKs asked for again (< 40 ms) */

/* ---- the outbound byte queue ---- */

void sl_zconn_kick_nolock(sl_zconn *c) {
  if (c->kicked) return;
  c->kicked = 1;
  event_add(c->wev, NULL);
  event_active(c->wev, EV_WRITE, 0);
}

static int queue_nolock_(sl_zconn *c, const uint8_t *p, size_t n) {
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
  sl_zconn_kick_nolock(c);
  return 0;
}

int sl_zconn_send_nolock(sl_zconn *c, const uint8_t *p, size_t n) {
  if (c->olen == 0 && c->ready) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w == (ssize_t)n) return 0;
    if (w > 0) {               /* errors are left to the loop's send */
      p += w;
      n -= (size_t)w;
    }
  }
  return queue_nolock_(c, p, n);
}

/* The codec's own output (greeting, READY, PONGs) joins the queue. */
static void queue_codec_nolock_(sl_zconn *c) {
  const uint8_t *out;
  size_t n = sl_zmtp_output(c->z, &out);
  if (n > 0 && queue_nolock_(c, out, n) == 0) sl_zmtp_output_done(c->z, n);
}

int sl_zconn_drain(sl_zconn *c, int idle_off, size_t *wrote) {
  pthread_mutex_t *mu = &c->b->mutex;
  pthread_mutex_lock(mu);
  ssize_t w = 0;
  int e = 0;
  if (c->ooff < c->olen) w = send(c->fd, c->obuf + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
  if (w < 0) e = errno;
  if (w > 0) c->ooff += (size_t)w;
  int empty = c->ooff == c->olen;
  if (empty) {
    c->ooff = c->olen = 0;
    if (c->ocap > (1u << 20)) {       /* no large buffer kept idle */
      free(c->obuf);
      c->obuf = NULL;
      c->ocap = 0;
    }
    if (idle_off) {
      c->kicked = 0;
      event_del(c->wev);
    }
  }
  pthread_mutex_unlock(mu);
  if (wrote != NULL) *wrote = w > 0 ? (size_t)w : 0;
  if (w < 0 && e != EAGAIN && e != EINTR) {
    sl_zconn_close(c, SL_ZCLOSE_PEER, strerror(e));
    return -1;
  }
  return empty;
}

/* ---- the read pump ---- */

/* The connection the calling thread reads off the loop, while it does. */
static _Thread_local sl_zconn *direct_conn;

void sl_zconn_pause_nolock(sl_zconn *c) {
  c->paused = 1;
  if (atomic_load(&c->reading) == SL_ZREAD_LOOP) event_del(c->rev);
}

void sl_zconn_resume_nolock(sl_zconn *c) {
  c->paused = 0;
  if (atomic_load(&c->reading) != SL_ZREAD_LOOP) return;   /* its reader goes on */
  event_add(c->rev, NULL);
  if (c->stash_len > 0) event_active(c->rev, EV_READ, 0);   /* what waited */
}

static uint8_t *scratch_give(const uint8_t *p);

/* Keeps bytes not fed yet while reading is paused; 0 if out of memory.
** Bytes fed from the stash itself stay where they are (a read of small
** messages may pause many times: its rest is not copied each time), and
** so do bytes in the I/O thread's read buffer: that buffer becomes the
** stash and the thread takes a new one (no copy of up to 256 KiB). */
static int stash(sl_zconn *c, const uint8_t *p, size_t n) {
  if (c->stash != NULL && p >= c->stash && p < c->stash + c->stash_cap) {
    c->stash_off = (size_t)(p - c->stash);
    c->stash_len = n;
    return 1;
  }
  free(c->stash);
  c->stash = NULL;
  uint8_t *whole = scratch_give(p);
  if (whole != NULL) {
    c->stash = whole;
    c->stash_cap = SL_ZCONN_READ_CHUNK;
    c->stash_off = (size_t)(p - whole);
    c->stash_len = n;
    return 1;
  }
  c->stash = malloc(n);
  if (c->stash == NULL) return 0;
  memcpy(c->stash, p, n);
  c->stash_cap = n;
  c->stash_off = 0;
  c->stash_len = n;
  return 1;
}

static void on_ready(sl_zconn *c) {
  sl_zbridge *b = c->b;
  if (c->hev) event_free(c->hev);       /* handshake done in time */
  c->hev = NULL;
  pthread_mutex_lock(&b->mutex);
  c->ready = 1;
  b->ops->on_ready_nolock(c);
  pthread_mutex_unlock(&b->mutex);
  sl_log_write(b->log, SL_LOG_INFO, "peer ready on the %s side", sl_zconn_side(c));
}

/* Ends a read that closed c, after the messages before it. */
static int read_failed(sl_zconn *c, sl_zclose kind, const char *why) {
  if (c->b->ops->on_read_done) c->b->ops->on_read_done(c);
  if (why != NULL) sl_zconn_close(c, kind, why);
  return 0;
}

/* Feeds bytes to the codec and handles what it pops, one event at a
** time; 0 if the connection closed. */
static int pump(sl_zconn *c, const uint8_t *data, size_t n) {
  const sl_zconn_ops *ops = c->b->ops;
  size_t off = 0;
  for (;;) {
    size_t used = 0;
    sl_zmtp_kind k = sl_zmtp_feed(c->z, data + off, n - off, &used);
    off += used;
    sl_zmtp_event ev;
    if (k == SL_ZMTP_NONE || !sl_zmtp_pop(c->z, &ev)) break;
    switch (ev.kind) {
      case SL_ZMTP_READY:
        on_ready(c);
        break;
      case SL_ZMTP_MESSAGE:
        if (c->push)
          return read_failed(c, SL_ZCLOSE_PROTOCOL, "a message arrived on the sending side");
        if (!ops->on_message(c, &ev)) return read_failed(c, SL_ZCLOSE_PROTOCOL, NULL);
        if (c->paused && off < n && !stash(c, data + off, n - off))
          return read_failed(c, SL_ZCLOSE_PROTOCOL, "out of memory for a paused read");
        if (c->paused) goto out;
        break;
      case SL_ZMTP_FATAL:
      case SL_ZMTP_PEER_ERROR:
        return read_failed(c, SL_ZCLOSE_PROTOCOL, ev.text);
      default:
        break;
    }
  }
out:
  if (ops->on_read_done && !ops->on_read_done(c)) return 0;
  pthread_mutex_lock(&c->b->mutex);
  queue_codec_nolock_(c);                    /* PONGs */
  pthread_mutex_unlock(&c->b->mutex);
  return 1;
}

/* One read buffer per I/O thread (freed when the thread ends). */
static pthread_key_t rbuf_key;
static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;

static void rbuf_key_make(void) { pthread_key_create(&rbuf_key, free); }

uint8_t *sl_zconn_scratch(void) {
  pthread_once(&rbuf_once, rbuf_key_make);
  uint8_t *p = pthread_getspecific(rbuf_key);
  if (p == NULL) {
    p = malloc(SL_ZCONN_READ_CHUNK);
    if (p != NULL) pthread_setspecific(rbuf_key, p);
  }
  return p;
}

/* If p lies in the calling thread's read buffer, the buffer is handed
** over (returned) and the thread gets a new one; NULL if p lies elsewhere
** or no new buffer can be had (the caller copies). */
static uint8_t *scratch_give(const uint8_t *p) {
  pthread_once(&rbuf_once, rbuf_key_make);
  uint8_t *s = pthread_getspecific(rbuf_key);
  if (s == NULL || p < s || p >= s + SL_ZCONN_READ_CHUNK) return NULL;
  uint8_t *fresh = malloc(SL_ZCONN_READ_CHUNK);
  if (fresh == NULL || pthread_setspecific(rbuf_key, fresh) != 0) {
    free(fresh);
    return NULL;
  }
  return s;
}

/*
** A connection carries one direction only, so our ACKs never ride on data
** of ours: Linux sends a bare ACK from every read that empties the socket
** of a small message, one more packet through the stack per message (on
** loopback here 3-5 us of the reader's time, as much as the message's
** own). In its ping-pong mode (TCP_QUICKACK off) such an ACK waits for the
** next small message or the delayed-ACK timer (40 ms and more), so one
** bare ACK goes per two messages; full-sized segments are ACKed as before.
** The timer ends the mode when it fires (after a quiet spell), so the
** reader asks again every ACK_REARM_NS.
*/
static void acks_late(sl_zconn *c) {
#ifdef TCP_QUICKACK
  if (!c->b->late_acks) return;
  c->ack_owed = 1;
  int64_t now = sl_clock_coarse_ns();
  if (now - c->acks_armed < ACK_REARM_NS) return;
  c->acks_armed = now;
  int off = 0;
  setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &off, sizeof off);
#else
  (void)c;
#endif
}

/*
** A reader that has answered (or sent its next request) owes the peer an
** ACK for what it read; sending it now, while the peer works on our
** message, keeps it off the next read, where Linux sends it with the
** second small message in a row, before the read returns.
*/
static void ack_now(sl_zconn *c) {
#ifdef TCP_QUICKACK
  if (!c->ack_owed) return;
  c->ack_owed = 0;
  int v = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &v, sizeof v);
  v = 0;
  setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &v, sizeof v);
#else
  (void)c;
#endif
}

/* What recv returned: 1 if there are n bytes to handle. */
static int got_bytes(sl_zconn *c, ssize_t n) {
  if (n == 0) sl_zconn_close(c, SL_ZCLOSE_PEER, "closed by the peer");
  else if (n < 0 && errno != EAGAIN && errno != EINTR)
    sl_zconn_close(c, SL_ZCLOSE_PEER, strerror(errno));
  if (n > 0) acks_late(c);
  return n > 0;
}

/* Handles what waited while reading was paused. */
static void pump_stash(sl_zconn *c) {
  uint8_t *p = c->stash;
  size_t len = c->stash_len;
  c->stash_len = 0;            /* the buffer stays: a pause keeps its rest */
  pump(c, p + c->stash_off, len);
  if (c->stash_len > 0 || c->stash != p) return;
  free(p);
  c->stash = NULL;
  c->stash_off = c->stash_cap = 0;
}

static void read_once(sl_zconn *c) {
  if (c->stash_len > 0) {
    pump_stash(c);
    return;
  }
  if (c->paused) return;
  uint8_t *dst;
  size_t room = c->b->bulk ? sl_zmtp_body_space(c->z, BULK_MAX, &dst) : 0;
  if (room >= BULK_MIN) {                   /* a large body: straight in */
    ssize_t got = recv(c->fd, dst, room, 0);
    if (!got_bytes(c, got)) return;
    sl_zmtp_body_done(c->z, (size_t)got);
    pump(c, NULL, 0);
    return;
  }
  uint8_t *rbuf = sl_zconn_scratch();
  if (rbuf == NULL) {
    sl_zconn_close(c, SL_ZCLOSE_PROTOCOL, "out of memory for reading");
    return;
  }
  ssize_t n = recv(c->fd, rbuf, SL_ZCONN_READ_CHUNK, 0);
  if (got_bytes(c, n)) pump(c, rbuf, (size_t)n);
}

/*
** While a large body arrives (bulk), the socket wakes the loop only once
** what is left of it (up to LOWAT_MAX) is there: fewer wake-ups and larger
** copies per message. Between messages it wakes for any byte. End of file
** and errors wake it whatever the mark.
*/
static void set_lowat(sl_zconn *c) {
  uint8_t *dst;
  size_t room = sl_zmtp_body_space(c->z, BULK_MAX, &dst);
  int want = room >= BULK_MIN ? (int)(room < LOWAT_MAX ? room : LOWAT_MAX) : 0;
  if (want == c->lowat) return;
  int v = want > 0 ? want : 1;
  if (setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) == 0) c->lowat = want;
}

/* Counts what c's unfinished message holds (pair.h); closes c past the
** bridge's limit. 0 if closed. */
static int hold(sl_zconn *c) {
  sl_zbridge *b = c->b;
  if (!b->bulk && sl_zmtp_buffered(c->z) > SL_ZCONN_READ_CHUNK) sl_zmtp_trim(c->z);
  int ok;
  if (direct_conn == c) {      /* its reader: after a close, nothing is held */
    pthread_mutex_lock(&b->mutex);
    ok = c->dead || sl_pair_hold(&b->pair, &c->held, sl_zmtp_partial(c->z));
    pthread_mutex_unlock(&b->mutex);
  } else {
    ok = sl_pair_hold(&b->pair, &c->held, sl_zmtp_partial(c->z));
  }
  if (ok) return 1;
  sl_pair_note(&b->pair, SL_NOTE_PENDING, SL_LOG_ERROR,
               "connection on the %s side closed: unfinished messages would "
               "hold more than %llu bytes", sl_zconn_side(c),
               (unsigned long long)atomic_load(&b->pair.max_pending));
  sl_zconn_close(c, SL_ZCLOSE_LIMIT, "unfinished messages over the limit");
  return 0;
}

static void conn_read(sl_zconn *c) {
  if (atomic_load(&c->reading) != SL_ZREAD_LOOP) return;   /* another reads */
  if (atomic_load(&c->failed)) {                  /* a close its reader met */
    sl_zconn_close(c, c->fail_kind, c->fail_why);
    return;
  }
  read_once(c);
  if (!c->dead && hold(c) && c->b->bulk) set_lowat(c);
}

static void conn_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  sl_zconn *c = arg;
  if (what & EV_READ) conn_read(c);
  if (!c->dead && (what & EV_WRITE)) c->b->ops->on_writable(c);
  if (c->dead) sl_zconn_free(c);   /* closed in this callback: free it now */
}

/* ---- open and close ---- */

void sl_zconn_pin_nolock(sl_zconn *c) { c->pins++; }

/* What a reader may still use: the codec, the stash, the read event. */
static void free_reading(sl_zconn *c) {
  if (c->z) sl_zmtp_free(c->z);
  c->z = NULL;
  free(c->stash);
  c->stash = NULL;
  if (c->rev) event_free(c->rev);
  c->rev = NULL;
}

void sl_zconn_unpin(sl_zconn *c) {
  pthread_mutex_lock(&c->b->mutex);
  int last = --c->pins == 0 && c->freed;
  pthread_mutex_unlock(&c->b->mutex);
  if (!last) return;
  free_reading(c);             /* left by a free while a reader held c */
  close(c->fd);
  free(c);
}

void sl_zconn_free(sl_zconn *c) {
  event_free(c->wev);
  if (c->hev) event_free(c->hev);
  c->hev = NULL;
  pthread_mutex_lock(&c->b->mutex);
  int keep = c->pins > 0;
  if (atomic_load(&c->reading) != SL_ZREAD_TAKEN)
    free_reading(c);           /* else the reader's last unpin does */
  c->freed = 1;
  free(c->obuf);
  c->obuf = NULL;
  pthread_mutex_unlock(&c->b->mutex);
  if (keep) return;
  if (c->orphan) close(c->fd);
  free(c);
}

void sl_zconn_close(sl_zconn *c, sl_zclose kind, const char *why) {
  sl_zbridge *b = c->b;
  if (direct_conn == c) {      /* its reader's thread: the loop closes it */
    if (!atomic_load(&c->failed)) {
      c->fail_kind = kind;
      snprintf(c->fail_why, sizeof c->fail_why, "%s", why != NULL ? why : "");
      atomic_store(&c->failed, 1);
    }
    return;
  }
  if (c->dead) return;
  pthread_mutex_lock(&b->mutex);
  sl_zconn **pp = &b->conns;
  while (*pp != c) pp = &(*pp)->next;
  *pp = c->next;
  c->dead = 1;
  c->orphan = c->pins > 0;
  if (b->ops->on_close_nolock) b->ops->on_close_nolock(c);
  int stopping = b->stopping;
  pthread_mutex_unlock(&b->mutex);
  event_del(c->rev);
  event_del(c->wev);
  if (c->hev) event_del(c->hev);
  sl_pair_hold(&b->pair, &c->held, 0);
  if (c->orphan)
    shutdown(c->fd, SHUT_RDWR);   /* the writer wakes; the last one closes */
  else
    close(c->fd);
  if (b->ops->on_closed) b->ops->on_closed(c);
  if (stopping) return;
  /* A broken protocol is an error; a peer that is away or went away is
  ** part of life (a client keeps trying, quietly, as libzmq does). */
  if (kind == SL_ZCLOSE_PROTOCOL) atomic_fetch_add(&b->errors, 1);
  sl_log_write(b->log, kind == SL_ZCLOSE_PROTOCOL ? SL_LOG_ERROR
                       : c->ready && kind != SL_ZCLOSE_LIMIT ? SL_LOG_WARNING
                       : SL_LOG_DEBUG,
               "connection on the %s side closed: %s", sl_zconn_side(c), why);
  sl_pair_lost(&b->pair, c->push);
}

/* A connection that has not finished its handshake in time. */
static void handshake_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  sl_zconn *c = arg;
  sl_zbridge *b = c->b;
  if (c->dead || c->ready) return;
  sl_pair_note(&b->pair, SL_NOTE_HANDSHAKE, SL_LOG_WARNING,
               "connection on the %s side closed: no ZMTP handshake within %g s",
               sl_zconn_side(c), (double)atomic_load(&b->pair.handshake_us) / 1e6);
  sl_zconn_close(c, SL_ZCLOSE_LIMIT, "no handshake in time");
  sl_zconn_free(c);
}

static sl_zconn *conn_new(sl_zbridge *b, int fd, int push) {
  sl_zconn *c = calloc(1, b->ops->conn_size);
  if (c == NULL) goto out_close;
  c->b = b;
  c->fd = fd;
  c->push = push;
  /* With several I/O threads, sending and receiving may run on two. */
  c->loop = b->split_loops && sl_io_count(b->io) > 1 && push ? 1 : 0;
  struct event_base *base = sl_io_base(b->io, c->loop);
  sl_zmtp_config cfg = {push ? SL_ZMTP_PUSH : SL_ZMTP_PULL, b->max_size, b->max_parts};
  c->z = sl_zmtp_new(&cfg);
  if (c->z != NULL) sl_zmtp_set_borrow(c->z, b->borrow_max);
  c->rev = event_new(base, fd, EV_READ | EV_PERSIST, conn_cb, c);
  c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, conn_cb, c);
  if (c->z == NULL || c->rev == NULL || c->wev == NULL) goto out_free;
  c->hev = sl_pair_handshake_timer(&b->pair, base, handshake_cb, c);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (b->sockbuf > 0)
    setsockopt(fd, SOL_SOCKET, push ? SO_SNDBUF : SO_RCVBUF, &b->sockbuf, sizeof b->sockbuf);
  pthread_mutex_lock(&b->mutex);
  c->next = b->conns;
  b->conns = c;
  if (b->ops->on_open_nolock(c)) event_add(c->rev, NULL);
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

/* A socket from the pair, accepted or connecting. */
static void on_socket(void *owner, int fd, int push) {
  sl_zbridge *b = owner;
  if (conn_new(b, fd, push) == NULL) sl_pair_lost(&b->pair, push);
}

/* ---- reading off the loop ---- */

int sl_zconn_take_reading_nolock(sl_zconn *c) {
  int st = atomic_load(&c->reading);
  if (c->push || c->dead || !c->ready || c->paused || st == SL_ZREAD_TAKEN ||
      atomic_load(&c->failed))
    return 0;
  c->rev_on = st == SL_ZREAD_LOOP;
  c->parked_seen = 0;
  atomic_store(&c->reading, SL_ZREAD_TAKEN);
  sl_zconn_pin_nolock(c);
  return 1;
}

/* The loop's read event off, once a reader has taken c: event_del waits
** for a read callback running on it. */
static void loop_off(sl_zconn *c) {
  if (!c->rev_on) return;
  event_del(c->rev);
  c->rev_on = 0;
}

int sl_zconn_read_direct(sl_zconn *c, uint8_t *buf, size_t len) {
  loop_off(c);
  pthread_mutex_lock(&c->b->mutex);
  int stop = c->dead || c->paused;
  pthread_mutex_unlock(&c->b->mutex);
  if (stop || atomic_load(&c->failed)) return -1;
  direct_conn = c;
  int rc = 1;
  if (c->stash_len > 0) {
    pump_stash(c);
  } else {
    ssize_t n = recv(c->fd, buf, len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) rc = 0;
    else if (!got_bytes(c, n)) rc = -1;
    else pump(c, buf, (size_t)n);
  }
  if (rc > 0 && !atomic_load(&c->failed)) hold(c);
  direct_conn = NULL;
  return atomic_load(&c->failed) ? -1 : rc;
}

#define DIRECT_READ 16384          /* bytes a reader off the loop asks of a recv */

int sl_zconn_read_until(sl_zconn *c, int (*until)(void *arg), void *arg, long spin_us,
                        long us) {
  uint8_t buf[DIRECT_READ];
  struct timespec now, spin_end, end;
  loop_off(c);
  ack_now(c);
  sl_clock_now(&now);
  spin_end = end = now;
  sl_ts_add_us(&spin_end, spin_us);
  sl_ts_add_us(&end, us);
  for (;;) {
    int n = sl_zconn_read_direct(c, buf, sizeof buf);
    if (until(arg)) return 1;
    if (n < 0) return -1;
    if (n > 0) continue;
    sl_clock_now(&now);
    if (sl_ts_cmp(&now, &end) >= 0) return 0;
    if (sl_ts_cmp(&now, &spin_end) < 0) {
      sched_yield();
      continue;
    }
    struct pollfd pfd = {c->fd, POLLIN, 0};
    int64_t left = sl_ts_diff_us(&end, &now);
    struct timespec ts = {0, (long)(left > 0 ? left : 1) * 1000};
    ppoll(&pfd, 1, &ts, NULL);
  }
}

void sl_zconn_give_reading(sl_zconn *c, int park) {
  int was_on = c->rev_on;
  c->rev_on = 0;
  pthread_mutex_lock(&c->b->mutex);
  if (c->dead) {
    atomic_store(&c->reading, SL_ZREAD_LOOP);
  } else if (atomic_load(&c->failed)) {
    atomic_store(&c->reading, SL_ZREAD_LOOP);
    event_active(c->rev, EV_READ, 0);             /* the loop closes it */
  } else if (park && !was_on && !c->paused && c->stash_len == 0) {
    atomic_store(&c->reading, SL_ZREAD_PARKED);
  } else {
    atomic_store(&c->reading, SL_ZREAD_LOOP);
    if (!was_on && !c->paused) {
      event_add(c->rev, NULL);
      if (c->stash_len > 0) event_active(c->rev, EV_READ, 0);
    }
  }
  pthread_mutex_unlock(&c->b->mutex);
  sl_zconn_unpin(c);
}

void sl_zconn_unpark_nolock(sl_zconn *c) {
  if (atomic_load(&c->reading) != SL_ZREAD_PARKED) return;
  atomic_store(&c->reading, SL_ZREAD_LOOP);
  if (!c->paused) event_add(c->rev, NULL);
}

/* ---- the bridge base ---- */

int sl_zbridge_init(sl_zbridge *b, const sl_zconn_ops *ops, const char *addr) {
  b->ops = ops;
  snprintf(b->addr, sizeof b->addr, "%s", addr);
  b->max_size = SL_ZMTP_DEFAULT_MAX_MSG;
  atomic_init(&b->errors, 0);
  return pthread_mutex_init(&b->mutex, NULL) == 0 ? 0 : -1;
}

void sl_zbridge_fini(sl_zbridge *b) { pthread_mutex_destroy(&b->mutex); }

int sl_zbridge_open(sl_zbridge *b, uint32_t port, int server, char *err,
                    size_t errlen) {
  return sl_pair_open(&b->pair, b->addr, port, server, on_socket, b, err, errlen);
}

typedef struct start_args {
  sl_zbridge *b;
  int rc;
} start_args;

/* On loop 0: the bridge's timers, then the listeners or connections. */
static void start_io(void *arg) {
  start_args *sa = arg;
  struct event_base *base = sl_io_base(sa->b->io, 0);
  sa->rc = sa->b->ops->on_start ? sa->b->ops->on_start(sa->b, base) : 0;
  if (sa->rc == 0) sa->rc = sl_pair_start(&sa->b->pair, base);
}

int sl_zbridge_start(sl_zbridge *b, const char *logname, char *err, size_t errlen) {
  b->log = sl_log_get(logname);
  b->pair.log = b->log;
  b->io = sl_io_acquire();
  if (b->io == NULL) {
    sl_sock_error(err, errlen, "cannot start", b->addr, b->pair.port, EAGAIN);
    sl_pair_stop(&b->pair);
    return -1;
  }
  start_args sa = {b, 0};
  sl_io_call_sync(b->io, 0, start_io, &sa);
  if (sa.rc == 0) return 0;
  sl_sock_error(err, errlen, "cannot start", b->addr, b->pair.port, sa.rc);
  sl_zbridge_stop_io(b);
  sl_zbridge_release(b);
  return -1;
}

/* On loop 0: no more accepting, reconnecting or timers. */
static void stop_ports(void *arg) {
  sl_zbridge *b = arg;
  sl_pair_stop(&b->pair);
  if (b->ops->on_stop) b->ops->on_stop(b);
}

typedef struct loop_stop {
  sl_zbridge *b;
  int loop;
} loop_stop;

/* On loop `loop`: close and free the connections it owns. */
static void stop_conns(void *arg) {
  loop_stop *ls = arg;
  sl_zbridge *b = ls->b;
  for (;;) {
    pthread_mutex_lock(&b->mutex);
    sl_zconn *c = b->conns;
    while (c != NULL && c->loop != ls->loop) c = c->next;
    pthread_mutex_unlock(&b->mutex);
    if (c == NULL) return;
    sl_zconn_close(c, SL_ZCLOSE_STOP, "stopped");
    sl_zconn_free(c);
  }
}

void sl_zbridge_stop_io(sl_zbridge *b) {
  pthread_mutex_lock(&b->mutex);
  b->stopping = 1;
  pthread_mutex_unlock(&b->mutex);
  sl_io_call_sync(b->io, 0, stop_ports, b);
  for (int i = 0; i < sl_io_count(b->io); i++) {
    loop_stop ls = {b, i};
    sl_io_call_sync(b->io, i, stop_conns, &ls);
  }
}

void sl_zbridge_release(sl_zbridge *b) {
  sl_io_release(b->io);
  b->io = NULL;
}

int sl_zbridge_ready(sl_zbridge *b) {
  int sides = 0;
  pthread_mutex_lock(&b->mutex);
  for (sl_zconn *c = b->conns; c != NULL; c = c->next)
    if (c->ready) sides |= c->push ? 2 : 1;
  pthread_mutex_unlock(&b->mutex);
  return sides;
}

uint32_t sl_zbridge_connections(sl_zbridge *b) {
  pthread_mutex_lock(&b->mutex);
  uint32_t n = 0;
  for (sl_zconn *c = b->conns; c != NULL; c = c->next) n++;
  pthread_mutex_unlock(&b->mutex);
  return n;
}
