/*
** The two ports of a Rogue bridge, P and P+1, kept on one I/O loop
** (internal to src/net). A server listens on both: P takes the peer's
** pushes (our pull side, [0]), P+1 serves the peer's pulls (our push side,
** [1]). A client connects its push side to P and its pull side to P+1, and
** connects again, SL_PAIR_RECONNECT_MS later, whenever a side's connection ends.
** Each new socket, accepted or connecting, goes to on_socket.
**
** The pair also keeps what bounds a bridge against its peers: a server
** takes at most max_conns connections (one more is accepted and closed at
** once); a connection has handshake_us to finish its greeting and READY;
** unfinished messages hold at most max_pending bytes across the bridge's
** connections. accept() failing for want of file descriptors turns the
** listeners off for a while (100 ms, then 1 s while it lasts) instead of
** spinning. Each such event is counted (notes[]) and logged at most once
** a second.
*/
#ifndef STREAMLUA_PAIR_H_INCLUDED_
#define STREAMLUA_PAIR_H_INCLUDED_

#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include "streamlua/log.h"

struct event;
struct event_base;

#define SL_PAIR_RECONNECT_MS 100
#define SL_PAIR_MAX_CONNS 64
#define SL_PAIR_HANDSHAKE_US 30000000     /* libzmq's ZMQ_HANDSHAKE_IVL */
#define SL_PAIR_MAX_PENDING (128u << 20)   /* two 64 MiB messages */

/* What the pair counts, each logged at most once a second. */
enum {
  SL_NOTE_REFUSED,      /* a connection over max_conns, closed at once */
  SL_NOTE_HANDSHAKE,    /* no greeting and READY within handshake_us */
  SL_NOTE_PENDING,      /* unfinished messages over max_pending: closed */
  SL_NOTE_ACCEPT,       /* accept() failed for want of file descriptors */
  SL_NOTE_UNROUTED,     /* memory server: a response with nowhere to go */
  SL_NOTE_BACKLOG,      /* memory server: reading paused by its bounds */
  SL_NOTES
};

typedef struct sl_pair_note_state {
  atomic_int_least64_t logged_ns;
  atomic_uint_least64_t since;
} sl_pair_note_state;

typedef struct sl_pair {
  int server;
  uint32_t port;               /* P (a server asked for 0 gets a free pair) */
  struct sockaddr_in sa;       /* server: bind address; client: peer */
  int lfd[2];                  /* server listeners: [0] on P, [1] on P+1 */
  struct event *lev[2];
  struct event *retry[2];      /* [0] pull, [1] push: a client's reconnect,
                               ** a server's listener set aside (no fds) */
  int failing[2];              /* a client socket() failure was logged */
  /* Takes the non-blocking socket fd for side `push` (0 pull, 1 push). */
  void (*on_socket)(void *owner, int fd, int push);
  void *owner;
  sl_log *log;                 /* set by the owner once it has a name */
  /* limits: set from any thread, read on the I/O thread */
  atomic_uint max_conns;
  atomic_int_least64_t handshake_us;   /* 0: none */
  atomic_uint_least64_t max_pending;
  atomic_uint conns;           /* server: connections open now */
  atomic_uint_least64_t pending;       /* bytes held by unfinished messages */
  atomic_uint_least64_t notes[SL_NOTES];
  sl_pair_note_state note_log[SL_NOTES];
  struct event *backoff;       /* listeners off after EMFILE; back on here */
  int backoff_ms;              /* 0: not backing off */
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

/* Counts one event of kind `note` and logs "<text>" at `level`, at most
** one line a second per kind (the line says how many since the last). */
void sl_pair_note(sl_pair *p, int note, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A one-shot timer calling cb(-1, EV_TIMEOUT, arg) when a new
** connection's handshake time is up; NULL with no limit or no memory. */
struct event *sl_pair_handshake_timer(sl_pair *p, struct event_base *base,
                                      void (*cb)(evutil_socket_t, short, void *),
                                      void *arg);
/* A connection's unfinished-message bytes go from *held to now, and the
** bridge's total with them. 0 when they grew and the total is now over
** max_pending: the caller closes the connection (with now = 0 first). */
int sl_pair_hold(sl_pair *p, uint64_t *held, uint64_t now);

#endif
