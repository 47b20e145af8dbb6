/* Listening on, or connecting to, a bridge's two ports (pair.h). */
#include "pair.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "sock.h"
#include "streamlua/log.h"

/* Logs a socket()/accept() failure on side i once per run of failures
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

/*
** Out of descriptors, the pending connection stays queued and the
** listener stays readable: it is set aside for SL_PAIR_RECONNECT_MS
** (the same timer a client side uses to connect again) rather than spin.
*/
static void accept_cb(evutil_socket_t lfd, short what, void *arg) {
  (void)what;
  sl_pair *p = arg;
  int push = lfd == p->lfd[1];
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
      int e = errno;
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        report(p, push, "cannot accept on", e);
        event_del(p->lev[push]);
        struct timeval tv = {0, SL_PAIR_RECONNECT_MS * 1000};
        evtimer_add(p->retry[push], &tv);
      }
      return;
    }
    p->failing[push] = 0;
    if (sl_sock_nonblocking(fd) != 0) {
      close(fd);
      continue;
    }
    p->on_socket(p->owner, fd, push);
  }
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
  p->retry[0] = evtimer_new(base, retry_pull_cb, p);
  p->retry[1] = evtimer_new(base, retry_push_cb, p);
  if (p->retry[0] == NULL || p->retry[1] == NULL) return ENOMEM;
  if (p->server) {
    for (int i = 0; i < 2; i++) {
      p->lev[i] = event_new(base, p->lfd[i], EV_READ | EV_PERSIST, accept_cb, p);
      if (p->lev[i] == NULL) return ENOMEM;
      event_add(p->lev[i], NULL);
    }
    return 0;
  }
  connect_side(p, 0);
  connect_side(p, 1);
  return 0;
}

void sl_pair_lost(sl_pair *p, int push) {
  if (p->server || p->retry[push] == NULL) return;
  struct timeval tv = {0, SL_PAIR_RECONNECT_MS * 1000};
  evtimer_add(p->retry[push], &tv);
}

void sl_pair_stop(sl_pair *p) {
  for (int i = 0; i < 2; i++) {
    if (p->lev[i]) event_free(p->lev[i]);
    p->lev[i] = NULL;
    if (p->lfd[i] >= 0) close(p->lfd[i]);
    p->lfd[i] = -1;
    if (p->retry[i]) event_free(p->retry[i]);
    p->retry[i] = NULL;
  }
}
