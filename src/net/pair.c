/* Listening on, or connecting to, a bridge's two ports (pair.h). */
#include "pair.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "../core/clock.h"
#include "sock.h"
#include "streamlua/log.h"

/* Logs a client socket() failure on side i once per run of failures
** (p->failing[i] is cleared by the next success): at the fd limit every
** retry fails the same way. */
static void report(sl_pair *p, int i, const char *what, int e) {
  if (p->failing[i]) return;
  p->failing[i] = 1;
  char ip[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &p->sa.sin_addr, ip, sizeof ip);
  sl_log_write(sl_log_get("net"), SL_LOG_ERROR, "%s %s:%u: %s", what, ip,
               (unsigned)(p->port + (uint32_t)i), strerror(e));
}

int sl_pair_open(sl_pair *p, const char *addr, uint32_t port, int server,
                 void (*on_socket)(void *owner, int fd, int push), void *owner,
                 char *err, size_t errlen) {
  p->server = server;
  p->port = port;
  p->lfd[0] = p->lfd[1] = -1;
  p->lev[0] = p->lev[1] = p->retry[0] = p->retry[1] = NULL;
  p->on_socket = on_socket;
  p->owner = owner;
  p->log = NULL;
  atomic_init(&p->max_conns, SL_PAIR_MAX_CONNS);
  atomic_init(&p->handshake_us, SL_PAIR_HANDSHAKE_US);
  atomic_init(&p->max_pending, SL_PAIR_MAX_PENDING);
  atomic_init(&p->conns, 0);
  atomic_init(&p->pending, 0);
  for (int i = 0; i < SL_NOTES; i++) {
    atomic_init(&p->notes[i], 0);
    atomic_init(&p->note_log[i].logged_ns, 0);
    atomic_init(&p->note_log[i].since, 0);
  }
  p->backoff = NULL;
  p->backoff_ms = 0;
  p->failing[0] = p->failing[1] = 0;
  const char *why;
  if (sl_sock_resolve(addr, server, &p->sa, &why) != 0) {
    sl_sock_error_text(err, errlen, "cannot resolve", addr, port, why);
    return ENOENT;
  }
  if (server) {
    uint32_t failed;
    int e = sl_sock_listen_pair(&p->sa, &p->port, p->lfd, &failed);
    if (e != 0) {
      sl_sock_error(err, errlen, "cannot bind", addr, failed, e);
      return e;
    }
  }
  return 0;
}

void sl_pair_note(sl_pair *p, int note, int level, const char *fmt, ...) {
  atomic_fetch_add(&p->notes[note], 1);
  sl_pair_note_state *st = &p->note_log[note];
  atomic_fetch_add(&st->since, 1);
  int64_t t = sl_clock_ns(), last = atomic_load(&st->logged_ns);
  if ((last != 0 && t - last < 1000000000) ||
      !atomic_compare_exchange_strong(&st->logged_ns, &last, t))
    return;
  uint64_t n = atomic_exchange(&st->since, 0);
  sl_log *log = p->log != NULL ? p->log : sl_log_get("net");
  char text[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n > 1)
    sl_log_write(log, level, "%s (%llu times since the last such line)", text,
                 (unsigned long long)n);
  else
    sl_log_write(log, level, "%s", text);
}

/* The listeners back on after a pause for want of file descriptors. */
static void backoff_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  sl_pair *p = arg;
  for (int i = 0; i < 2; i++)
    if (p->lev[i]) event_add(p->lev[i], NULL);
}

/*
** accept() out of file descriptors leaves the connection in the backlog,
** so the listener stays readable: rather than spin, both listeners go off
** for 100 ms, then 1 s at a time while it lasts. One line per episode.
*/
static void accept_starved(sl_pair *p, int e) {
  char ip[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &p->sa.sin_addr, ip, sizeof ip);
  if (p->backoff_ms == 0)
    sl_pair_note(p, SL_NOTE_ACCEPT, SL_LOG_ERROR,
                 "cannot accept on %s:%u: %s; accepting again in a while",
                 ip, (unsigned)p->port, strerror(e));
  else
    atomic_fetch_add(&p->notes[SL_NOTE_ACCEPT], 1);
  p->backoff_ms = p->backoff_ms == 0 ? 100 : 1000;
  for (int i = 0; i < 2; i++)
    if (p->lev[i]) event_del(p->lev[i]);
  struct timeval tv = sl_tv_from_us((int64_t)p->backoff_ms * 1000);
  if (p->backoff == NULL || evtimer_add(p->backoff, &tv) != 0) backoff_cb(-1, 0, p);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg) {
  (void)what;
  sl_pair *p = arg;
  int push = lfd == p->lfd[1];
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        accept_starved(p, errno);
      else if (errno == ECONNABORTED || errno == EINTR)
        continue;
      return;
    }
    p->backoff_ms = 0;                  /* the episode, if any, is over */
    if (sl_sock_nonblocking(fd) != 0) {
      close(fd);
      continue;
    }
    unsigned max = atomic_load(&p->max_conns);
    if (atomic_load(&p->conns) >= max) {
      sl_pair_note(p, SL_NOTE_REFUSED, SL_LOG_WARNING,   /* counted, then closed */
                   "connection on port %u refused: %u connections open (the limit)",
                   (unsigned)(push ? p->port + 1 : p->port), max);
      close(fd);
      continue;
    }
    atomic_fetch_add(&p->conns, 1);
    p->on_socket(p->owner, fd, push);
  }
}

struct event *sl_pair_handshake_timer(sl_pair *p, struct event_base *base,
                                      void (*cb)(evutil_socket_t, short, void *),
                                      void *arg) {
  int64_t us = atomic_load(&p->handshake_us);
  if (us <= 0) return NULL;
  struct event *ev = evtimer_new(base, cb, arg);
  if (ev == NULL) return NULL;
  struct timeval tv = sl_tv_from_us(us);
  evtimer_add(ev, &tv);
  return ev;
}

int sl_pair_hold(sl_pair *p, uint64_t *held, uint64_t now) {
  uint64_t was = *held;
  *held = now;
  if (now <= was) {
    atomic_fetch_sub(&p->pending, was - now);
    return 1;
  }
  uint64_t total = atomic_fetch_add(&p->pending, now - was) + (now - was);
  return total <= atomic_load(&p->max_pending);
}

/* A non-blocking connect; the connection's own events take over (a
** refused connect shows as EOF or an error on the first read, and the
** owner reports the side lost). */
static void connect_side(sl_pair *p, int push) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) report(p, !push, "cannot open a socket for", errno);
  if (fd < 0 || sl_sock_nonblocking(fd) != 0) goto out_retry;
  p->failing[!push] = 0;
  struct sockaddr_in sa = p->sa;
  sa.sin_port = htons((uint16_t)(push ? p->port : p->port + 1));
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS)
    goto out_retry;
  p->on_socket(p->owner, fd, push);
  return;
out_retry:
  if (fd >= 0) close(fd);
  sl_pair_lost(p, push);
}

static void retry_pull_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  sl_pair *p = arg;
  if (p->server) event_add(p->lev[0], NULL);
  else connect_side(p, 0);
}

static void retry_push_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  sl_pair *p = arg;
  if (p->server) event_add(p->lev[1], NULL);
  else connect_side(p, 1);
}

int sl_pair_start(sl_pair *p, struct event_base *base) {
  if (p->server) {
    p->backoff = evtimer_new(base, backoff_cb, p);
    if (p->backoff == NULL) return ENOMEM;
    for (int i = 0; i < 2; i++) {
      p->lev[i] = event_new(base, p->lfd[i], EV_READ | EV_PERSIST, accept_cb, p);
      if (p->lev[i] == NULL) return ENOMEM;
      event_add(p->lev[i], NULL);
    }
    return 0;
  }
  p->retry[0] = evtimer_new(base, retry_pull_cb, p);
  p->retry[1] = evtimer_new(base, retry_push_cb, p);
  if (p->retry[0] == NULL || p->retry[1] == NULL) return ENOMEM;
  connect_side(p, 0);
  connect_side(p, 1);
  return 0;
}

void sl_pair_lost(sl_pair *p, int push) {
  if (p->server) {
    atomic_fetch_sub(&p->conns, 1);
    return;
  }
  if (p->retry[push] == NULL) return;
  struct timeval tv = {0, SL_PAIR_RECONNECT_MS * 1000};
  evtimer_add(p->retry[push], &tv);
}

void sl_pair_stop(sl_pair *p) {
  if (p->backoff) event_free(p->backoff);
  p->backoff = NULL;
  for (int i = 0; i < 2; i++) {
    if (p->lev[i]) event_free(p->lev[i]);
    p->lev[i] = NULL;
    if (p->lfd[i] >= 0) close(p->lfd[i]);
    p->lfd[i] = -1;
    if (p->retry[i]) event_free(p->retry[i]);
    p->retry[i] = NULL;
  }
}
