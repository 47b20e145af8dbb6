/*
** The two ports of a Rogue bridge, P and P+1, kept on one I/O loop
** (internal to src/net). A server listens on both: P takes the peer's
** pushes (our pull side, [0]), P+1 serves the peer's pulls (our push side,
** [1]). A client connects its push side to P and its pull side to P+1, and
** connects again, SL_PAIR_RECONNECT_MS later, whenever a side's connection ends.
** Each new socket, accepted or connecting, goes to on_socket.
*/
#ifndef STREAMLUA_PAIR_H_INCLUDED_
#define STREAMLUA_PAIR_H_INCLUDED_

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct event;
struct event_base;

#define SL_PAIR_RECONNECT_MS 100

typedef struct sl_pair {
  int server;
  uint32_t port;               /* P (a server asked for 0 gets a free pair) */
  struct sockaddr_in sa;       /* server: bind address; client: peer */
  int lfd[2];                  /* server listeners: [0] on P, [1] on P+1 */
  struct event *lev[2];
  struct event *retry[2];      /* [0] pull, [1] push: a client's reconnect,
                               ** a server's listener set aside (no fds) */
  int failing[2];              /* a socket/accept failure was logged */
  /* Takes the non-blocking socket fd for side `push` (0 pull, 1 push). */
  void (*on_socket)(void *owner, int fd, int push);
  void *owner;
} sl_pair;

/* Resolves addr and, for a server, binds both listeners. 0, or an errno
** with err set to "cannot resolve/bind <addr>:<port>: <reason>". */
int sl_pair_open(sl_pair *p, const char *addr, uint32_t port, int server,
                 void (*on_socket)(void *owner, int fd, int push), void *owner,
                 char *err, size_t errlen);
/* On the I/O thread: the listeners' events, or both client connections.
** 0 or ENOMEM. */
int sl_pair_start(sl_pair *p, struct event_base *base);
/* On the I/O thread: side `push` of a client lost its connection; it
** connects again later. Nothing for a server. */
void sl_pair_lost(sl_pair *p, int push);
/* On the I/O thread, or before start: events freed, listeners closed. */
void sl_pair_stop(sl_pair *p);

#endif
