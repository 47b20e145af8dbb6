/*
** ZMTP connections and the bridge base they belong to (internal to the
** bridges: src/net/tcp_*.c, src/memory/mem_*.c).
**
** sl_zconn is one connection on an I/O loop: its socket, codec session,
** read and write events, handshake timer, the read pump, the outbound
** byte queue and the one close path. sl_zbridge is what a bridge has
** around its connections: the two ports (pair.h), the list of
** connections, the I/O threads and the lock. A bridge embeds sl_zbridge,
** makes its connection struct start with sl_zconn, and maps messages in
** its ops table (sl_zconn_ops).
**
** Threads. A connection's I/O loop owns its events, its codec session and
** reading its socket. The bridge mutex (sl_zbridge.mutex) guards the list
** of connections and, in each, ready, kicked, pins and the byte queue.
** Writing on a socket happens on the I/O loop, or under the mutex
** (sl_zconn_send_nolock), or by one other thread the bridge lets write
** alone; such a writer pins the connection (sl_zconn_pin_nolock), so a
** close meanwhile shuts the socket down under it instead of closing it,
** and the last of the loop and the writer to let go frees the struct.
*/
#ifndef STREAMLUA_ZMTP_CONN_H_INCLUDED_
#define STREAMLUA_ZMTP_CONN_H_INCLUDED_

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "pair.h"
#include "streamlua/io.h"
#include "streamlua/log.h"
#include "streamlua/zmtp.h"

struct event;
struct event_base;

#define SL_ZCONN_READ_CHUNK (256u * 1024)   /* bytes asked of one recv */

typedef struct sl_zconn sl_zconn;
typedef struct sl_zbridge sl_zbridge;

/* Why a connection closes: the peer went away (or never came), it broke
** the protocol (an error, counted), it ran into a limit (counted and
** logged by the pair), or we stopped. */
typedef enum {
  SL_ZCLOSE_PEER,
  SL_ZCLOSE_PROTOCOL,
  SL_ZCLOSE_LIMIT,
  SL_ZCLOSE_STOP
} sl_zclose;

struct sl_zconn {
  sl_zconn *next;
  sl_zbridge *b;
  int fd;
  int push;                    /* we send on it (else we receive) */
  int loop;                    /* the I/O loop that owns it */
  int ready;                   /* handshake done (mutex) */
  int dead;                    /* closed, waiting to be freed */
  int kicked;                  /* the write event is on (mutex) */
  int paused;                  /* reading paused by the bridge (loop) */
  int lowat;                   /* SO_RCVLOWAT set on fd (0: the default) */
  int64_t acks_armed;          /* when late ACKs were last asked for (its
                                  reader; coarse clock, ns) */
  int ack_owed;                /* read since the last ACK sent (its reader) */
  int pins;                    /* writers off the loop (mutex) */
  int orphan;                  /* closed while pinned: fd only shut down */
  int freed;                   /* the loop let go (mutex) */
  sl_zmtp *z;
  struct event *rev, *wev;
  struct event *hev;           /* handshake timer, until READY */
  uint64_t held;               /* bytes of an unfinished message (pair.h) */
  uint8_t *stash;              /* bytes read but not fed while paused */
  size_t stash_cap, stash_off, stash_len;   /* its size; where the bytes
                                              start in it, how many */
  uint8_t *obuf;               /* outbound bytes, whole messages (mutex) */
  size_t olen, ooff, ocap;
  /* reading off the loop (sl_zconn_take_reading) */
  atomic_int reading;          /* SL_ZREAD_*: who reads (set under mutex) */
  int rev_on;                  /* the read event is still on (the reader) */
  int parked_seen;             /* parked at the last look (mutex) */
  atomic_int failed;           /* the reader met a close: the loop does it */
  sl_zclose fail_kind;
  char fail_why[120];
};

/* Who reads a receiving connection: its loop; a thread that took the
** reading; or nobody for now (parked: the read event off until a thread
** takes it again or the bridge gives it back to the loop). */
enum { SL_ZREAD_LOOP, SL_ZREAD_TAKEN, SL_ZREAD_PARKED };

/* What a bridge does with its connections. Every hook runs on the
** connection's I/O loop; "_nolock" ones with the bridge mutex held. */
typedef struct sl_zconn_ops {
  size_t conn_size;            /* the bridge's connection struct */
  /* A new connection is on the list: 1 to start reading now. */
  int (*on_open_nolock)(sl_zconn *c);
  /* The handshake is done: c->ready was just set, lock still held (the
  ** base then logs it). */
  void (*on_ready_nolock)(sl_zconn *c);
  /* A message on a receiving connection: 1, or 0 if it closed c. */
  int (*on_message)(sl_zconn *c, const sl_zmtp_event *ev);
  /* The messages of one read are handled (also before a close from the
  ** read): 1, or 0 if it closed c. May be NULL. */
  int (*on_read_done)(sl_zconn *c);
  /* The write event fired (c->kicked). */
  void (*on_writable)(sl_zconn *c);
  /* c leaves the list (closing). May be NULL. */
  void (*on_close_nolock)(sl_zconn *c);
  /* c is closed and off the list; no other thread reaches it but a
  ** pinned writer. May be NULL. */
  void (*on_closed)(sl_zconn *c);
  /* On loop 0 as the bridge starts and stops, around the pair's own
  ** events: its timers. on_start returns 0 or an errno. May be NULL. */
  int (*on_start)(sl_zbridge *b, struct event_base *base);
  void (*on_stop)(sl_zbridge *b);
} sl_zconn_ops;

struct sl_zbridge {
  const sl_zconn_ops *ops;
  sl_pair pair;                /* the two ports: listeners or connections */
  sl_io *io;
  sl_log *log;
  char addr[64];
  pthread_mutex_t mutex;
  sl_zconn *conns;             /* mutex */
  int stopping;                /* mutex: closes are not logged */
  /* How connections are opened (set before they are, or under mutex). */
  uint64_t max_size;           /* per message */
  uint32_t max_parts;          /* 0: the codec's default */
  int split_loops;             /* sending and receiving on two loops */
  int sockbuf;                 /* SO_SNDBUF/SO_RCVBUF asked for (0: none) */
  int bulk;                    /* bodies of 16 KiB and more read straight
                                  into place and buffers kept (streams);
                                  else large buffers let go when idle */
  size_t borrow_max;           /* messages of parts up to this size are
                                  handed out in the read buffer
                                  (sl_zmtp_set_borrow; 0: copied) */
  int late_acks;               /* receiving sockets ACK small messages
                                  late (see acks_late in zmtp_conn.c) */
  atomic_uint_least64_t errors;   /* protocol errors */
};

/* ---- the bridge base ---- */

/* The bridge of type `type` whose member `zb` p points to. */
#define SL_ZBRIDGE_OWNER(type, p) \
  ((type *)(void *)((char *)(p) - offsetof(type, zb)))

/* Before anything else: ops, address, mutex. 0, or -1. */
int sl_zbridge_init(sl_zbridge *b, const sl_zconn_ops *ops, const char *addr);
void sl_zbridge_fini(sl_zbridge *b);
/* Resolves and, for a server, binds the two ports (sl_pair_open). */
int sl_zbridge_open(sl_zbridge *b, uint32_t port, int server, char *err,
                    size_t errlen);
/* Names the log, takes the I/O threads and starts the ports on loop 0.
** 0, or -1 with err set and everything stopped again (the pair too). */
int sl_zbridge_start(sl_zbridge *b, const char *logname, char *err, size_t errlen);
/* Any thread but an I/O one: stopping set, the ports and timers stopped
** and every connection closed and freed, each on its loop. The I/O
** threads stay taken (sl_zbridge_release). */
void sl_zbridge_stop_io(sl_zbridge *b);
void sl_zbridge_release(sl_zbridge *b);
/* Which sides have a ready connection: bit 0 receiving, bit 1 sending. */
int sl_zbridge_ready(sl_zbridge *b);
uint32_t sl_zbridge_connections(sl_zbridge *b);

/* ---- a connection ---- */

/* Closes c (its loop): off the list, events off, socket closed (only
** shut down while pinned), the one log line unless stopping, a client
** connects again. The struct stays for the callback that called us to
** free (sl_zconn_free). Closing twice does nothing. */
void sl_zconn_close(sl_zconn *c, sl_zclose kind, const char *why);
/* Frees a closed c's parts and, unless pinned, the struct (its loop). */
void sl_zconn_free(sl_zconn *c);
/* A writer off the loop holds c (lock held); unpinning lets it go and
** frees it if it was closed and freed meanwhile (lock not held). */
void sl_zconn_pin_nolock(sl_zconn *c);
void sl_zconn_unpin(sl_zconn *c);

/* Turns the write event on, once (lock held; any thread). */
void sl_zconn_kick_nolock(sl_zconn *c);
/* Whole bytes out (lock held; any thread): straight into the socket when
** nothing waits before them and the bridge has no other writer, as a
** blocking writer would; the rest is queued and the write event kicked.
** 0, or -1 if out of memory. */
int sl_zconn_send_nolock(sl_zconn *c, const uint8_t *p, size_t n);
/* Writes queued bytes (its loop). 1 when none are left, 0 when some are,
** -1 if c was closed. With idle_off, an empty queue turns the write event
** off in the same hold of the lock. *wrote (may be NULL): bytes written. */
int sl_zconn_drain(sl_zconn *c, int idle_off, size_t *wrote);
/* Bytes queued on c (lock held). */
static inline size_t sl_zconn_queued(const sl_zconn *c) { return c->olen - c->ooff; }

/* The calling I/O thread's buffer of SL_ZCONN_READ_CHUNK bytes, or NULL
** if out of memory. A read's bytes lie in it while its messages are
** handled; between callbacks it is free, and a write may build in it. */
uint8_t *sl_zconn_scratch(void);

/* Reading stops after the message being handled (its loop or its
** reader, lock held); bytes read past it wait in the connection until
** resumed. */
void sl_zconn_pause_nolock(sl_zconn *c);
void sl_zconn_resume_nolock(sl_zconn *c);

/*
** Reading off the loop. A thread that expects a message soon (a caller
** waiting for its response, a server's thread for the next request) may
** take a ready receiving connection's reading (lock held; 1 if taken,
** never while paused): the connection is pinned, the loop's read event
** goes off, and the thread reads and handles messages itself with
** sl_zconn_read_direct (no lock held; the bridge's on_message runs on
** it), then gives the reading back: to the loop, or parked (the event
** stays off, so the next take costs no call into the loop; the bridge
** gives a parked connection back to the loop on its loop with
** sl_zconn_unpark_nolock). A close on the reader's thread (a hostile
** peer, the end of the stream) is left to the loop, which does it when
** the reading comes back; a close on the loop meanwhile only shuts the
** socket down and the last of the two frees the connection.
*/
int sl_zconn_take_reading_nolock(sl_zconn *c);
/* One non-blocking read handled into buf: 1 if bytes came, 0 if none
** were there, -1 if reading must stop (closed, paused). */
int sl_zconn_read_direct(sl_zconn *c, uint8_t *buf, size_t len);
void sl_zconn_give_reading(sl_zconn *c, int park);
/* Reads c (taken) until until(arg) holds: looking with the CPU yielded
** between looks for `spin_us`, then sleeping in the kernel until bytes
** come, for `us` in all. Returns until(arg), or -1 if reading must stop. */
int sl_zconn_read_until(sl_zconn *c, int (*until)(void *arg), void *arg, long spin_us,
                        long us);
/* A parked connection back to its loop (its loop, lock held). */
void sl_zconn_unpark_nolock(sl_zconn *c);

/* "sending" or "receiving". */
static inline const char *sl_zconn_side(const sl_zconn *c) {
  return c->push ? "sending" : "receiving";
}

#endif
