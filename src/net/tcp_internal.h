/*
** The stream TCP bridge's insides, shared by its three files:
** tcp_bridge.c (the object, connections, sockets, the delivery thread),
** tcp_send.c (the sending side) and tcp_recv.c (the receiving side).
**
** One mutex guards what the three kinds of thread share: the connection
** list, each connection's outbound queue and the delivery queue. The I/O
** thread owns sockets, events and the codec sessions; graph threads queue
** frames and kick a connection's write event, except that a sender finding
** a connection idle writes a large message itself (tcp_send.c); the
** delivery thread only takes frames.
*/
#ifndef STREAMLUA_TCP_INTERNAL_H_INCLUDED_
#define STREAMLUA_TCP_INTERNAL_H_INCLUDED_

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <event2/event.h>

#include "streamlua/frame.h"
#include "streamlua/io.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/slave.h"
#include "streamlua/zmtp.h"
#include "pair.h"

#define OUT_FRAMES 1000               /* libzmq's default HWM */
#define OUT_BYTES (64u << 20)
#define RX_FRAMES 1024                /* reading pauses at this many queued */
#define RX_BATCH 64
#define READ_CHUNK (256u * 1024)
#define WRITE_MSGS 64                 /* messages per writev */
#define DIRECT_MIN (16u * 1024)        /* bodies read straight into place */
#define DIRECT_MAX (4u << 20)          /* room made ahead for one body */
#define ADOPT_MIN (16u * 1024)         /* payloads kept in place, not copied */
#define DIRECT_SEND_MIN (256u * 1024)   /* messages a sender may write itself */
#define DIRECT_IOV 64

typedef struct bridge bridge;

typedef struct conn {
  struct conn *next;
  bridge *b;
  int fd;
  int push;                    /* we send on it (else we receive) */
  int ready;                   /* handshake done */
  int kicked;                  /* a write is pending (mutex) */
  int writer;                  /* who writes on fd now: WRITER_* (mutex) */
  int want_write;              /* the I/O thread waited for a sender */
  int orphan;                  /* closed while a sender wrote on it */
  int released;                /* orphan: the first of the I/O thread and
                                  the sender to let go sets it, the second
                                  closes fd and frees the struct */
  int dead;                    /* closed, waiting to be freed */
  int loop;                    /* the I/O thread that owns it */
  int lowat;                   /* SO_RCVLOWAT set on fd (0: the default) */
  sl_zmtp *z;
  struct event *rev, *wev;
  struct event *hev;           /* handshake timer, until READY */
  uint64_t held;               /* bytes of an unfinished message (pair.h) */
  /* outbound queue (push side, under the bridge mutex) */
  sl_frame *out[OUT_FRAMES];
  uint32_t ohead, ocount;
  uint64_t obytes;
  uint64_t msg_off;            /* bytes of the head message already written */
} conn;

struct bridge {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  sl_io *io;
  sl_log *log;
  char addr[64];
  sl_pair pair;                /* the two ports: listeners or connections */
  pthread_mutex_t mutex;
  pthread_cond_t send_cv;      /* senders: a peer or room appeared */
  pthread_cond_t rx_cv;        /* delivery thread: frames or stop */
  conn *conns;
  uint32_t rr;                 /* round-robin cursor over push peers */
  /* Received frames for the delivery thread: a ring that may grow past
  ** RX_FRAMES by what one read brings, since reading pauses at RX_FRAMES. */
  sl_frame **rx;
  uint32_t rx_cap, rx_head, rx_count;
  int rx_paused;
  struct event *resume_ev;     /* the delivery thread asks to read again */
  struct block_cache *blocks;  /* received-message buffers, recycled */
  int stopping;                /* phase one: senders and delivery give up */
  int closing;                 /* phase two: sockets closed, thread joined */
  atomic_int halt;             /* stopping, for the delivery thread's waits */
  int64_t timeout_us;
  uint64_t max_size;
  pthread_t thread;
  int started;
  atomic_int exited;           /* the delivery thread has returned */
  atomic_uint_least64_t tx_frames, tx_bytes, rx_frames, rx_bytes, drops, errors;
};

/* Why a connection closes: the peer went away (or never came), it broke
** the protocol (an error, counted), it ran into a limit (counted and
** logged by the pair), or we stopped. */
enum { CLOSE_PEER, CLOSE_PROTOCOL, CLOSE_LIMIT, CLOSE_STOP };
/* Whoever writes on a connection holds it (bridge mutex): the I/O thread,
** or a sender writing its message straight into an idle connection. */
enum { WRITER_NONE, WRITER_IO, WRITER_SENDER };


typedef struct block_cache block_cache;

/* tcp_bridge.c: closes a connection (I/O thread); frees a closed one's
** parts, and the struct unless a writing sender still holds it. */
void tcp_conn_close(conn *c, int kind, const char *why);
void tcp_free_conn(conn *c);

/* tcp_send.c: the write event's work (I/O thread); the slave's send. */
void tcp_conn_write(conn *c);
void tcp_bridge_accept(sl_slave *s, sl_frame *f);

/* tcp_recv.c: the read event's work (I/O thread); the delivery thread's
** request to read again; the cache of received-message buffers. */
void tcp_conn_read(conn *c);
/* The bytes c's unfinished message holds, counted; 0 if that took the
** bridge past its limit and c was closed. */
int tcp_conn_hold(conn *c);
void tcp_resume_cb(evutil_socket_t fd, short what, void *arg);
/* Doubles the delivery ring (lock held); 0, or -1 if out of memory. */
int tcp_rx_grow_nolock(bridge *b);
block_cache *tcp_cache_new(void);
void tcp_cache_unref(block_cache *bc);

#endif
