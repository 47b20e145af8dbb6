/*
** The stream TCP bridge's insides, shared by its three files:
** tcp_bridge.c (the object, the connection hooks, the delivery thread),
** tcp_send.c (the sending side) and tcp_recv.c (the receiving side).
** Connections, sockets and the I/O threads are the bridge base's
** (zmtp_conn.h); a frame is one 4-part message.
**
** The bridge mutex (zb.mutex) guards what the three kinds of thread
** share: the connection list, each connection's frame queue and writer
** token, and the delivery queue. The I/O threads own sockets, events and
** the codec sessions; graph threads queue frames and kick a connection's
** write event, except that a sender holding the writer token writes its
** large message itself (tcp_send.c); the delivery pool's thread running
** the bridge (deliver.h) only takes frames.
*/
#ifndef STREAMLUA_TCP_INTERNAL_H_INCLUDED_
#define STREAMLUA_TCP_INTERNAL_H_INCLUDED_

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "streamlua/frame.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/slave.h"
#include "streamlua/worker.h"
#include "streamlua/zmtp.h"
#include "deliver.h"
#include "zmtp_conn.h"

#define OUT_FRAMES 1000               /* libzmq's default HWM */
#define RX_FRAMES 1024                /* reading pauses at this many queued */
#define QUEUE_BYTES (4u << 20)        /* default byte limit of each queue */
#define RX_BATCH 64                   /* frames queued per lock (I/O thread) */
#define DELIVER_MAX (RX_FRAMES / 2)   /* frames delivered per run (one lock) */
#define RX_WAKE DELIVER_MAX           /* queued frames that wake the delivery
                                         before the read's end */
#define WRITE_MSGS 1024               /* messages per writev */
#define WRITE_IOV 256                 /* iovecs per writev */
#define STAGE_BYTES (64u * 1024)      /* small messages copied to one span
                                         (in the I/O thread's scratch) */
#define STAGE_COPY_MAX 512u           /* payloads copied into the stage */
#define ADOPT_MIN (16u * 1024)         /* payloads kept in place, not copied */
#define DIRECT_SEND_MIN (256u * 1024)   /* messages a sender may write itself */
#define DIRECT_IOV 64

/* Frames decoded from one read, queued for the delivery thread together:
** one lock per read, not one per message (the connection's I/O thread).
** Frames for small messages come from the pool several at a time: a
** read's first message asks for one, each later request twice as many as
** the one before, up to RX_SPARE; what a read leaves over goes back to the
** pool at its end (one lock), so nothing is held between reads. */
#define RX_SPARE 32
/* A received frame and its payload bytes, taken once as it is made. */
typedef struct rx_slot {
  sl_frame *f;
  uint32_t pay;
} rx_slot;

typedef struct rx_batch {
  rx_slot f[RX_BATCH];
  uint32_t n;
  uint64_t bytes;
  sl_frame *spare[RX_SPARE];   /* requested, not yet filled */
  uint32_t spare_at, spare_n;  /* the next one to fill; how many there are */
  uint32_t ask;                /* the next request's count (0: 1) */
  int single;                  /* the pool gives no one-block frames: the
                                  rest of this read asks one by one */
  int held;                    /* this read queued frames the delivery was
                                  not woken for: its end wakes it */
} rx_batch;

typedef struct conn {
  sl_zconn zc;                 /* first: the bridge base's connection */
  int writer;                  /* who holds the socket: WRITER_* (mutex) */
  int want_write;              /* the I/O thread waited for a sender */
  rx_batch rb;                 /* receiving side */
  /* outbound frames (sending side, mutex; after the close, the loop's) */
  sl_frame *out[OUT_FRAMES];
  uint32_t opay[OUT_FRAMES];   /* each one's payload bytes, taken once */
  uint32_t ohead, ocount;
  uint64_t obytes;
  uint64_t msg_off;            /* bytes of the head message already written */
} conn;

typedef struct block_cache block_cache;

typedef struct sl_tcp_bridge bridge;

struct sl_tcp_bridge {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  sl_zbridge zb;               /* ports, connections, I/O, the mutex */
  pthread_cond_t send_cv;      /* senders: a peer or room appeared */
  uint32_t send_waiters;       /* senders waiting on send_cv (mutex) */
  uint32_t rr;                 /* round-robin cursor over push peers */
  /* Received frames for the delivery pool: a ring that may grow past
  ** RX_FRAMES by one batch, since reading pauses at RX_FRAMES. */
  rx_slot *rx;
  uint32_t rx_cap, rx_head, rx_count;
  uint32_t rx_busy;            /* frames taken by the delivering thread, not
                                  yet delivered (they count as queued) */
  int rx_woken;                /* the delivery was woken and has not yet
                                  found the queue empty: no wake needed */
  uint64_t rx_qbytes;          /* payload bytes queued or being delivered */
  uint64_t max_queue_bytes;    /* byte limit of the delivery queue and of
                                  each connection's send queue */
  int rx_paused;
  struct event *resume_ev;     /* the delivering thread asks to read again */
  block_cache *blocks;         /* received-message buffers, recycled */
  int closing;                 /* phase two of a stop: sockets closed,
                                  out of the pool (phase one: zb.stopping) */
  int64_t timeout_us;
  sl_deliver_task delivery;    /* in the delivery pool; its stop flag is
                                  set with zb.stopping */
  atomic_uint_least64_t tx_frames, tx_bytes, rx_frames, rx_bytes, drops;
};

static inline bridge *tcp_bridge_of(sl_zconn *c) {
  return SL_ZBRIDGE_OWNER(bridge, c->b);
}

/* The writer token: whoever writes on a connection holds it (mutex):
** the I/O thread, or a sender writing its message straight into an idle
** connection. */
enum { WRITER_NONE, WRITER_IO, WRITER_SENDER };

/* tcp_send.c: the write event's work; a closed connection's frames
** dropped (I/O thread); the slave's send. */
void tcp_conn_writable(sl_zconn *c);
void tcp_conn_closed(sl_zconn *c);
void tcp_bridge_accept(sl_slave *s, sl_frame *f);

/* tcp_recv.c: a message, the end of a read (I/O thread); the delivering
** thread's request to read again; the cache of received-message buffers. */
int tcp_conn_message(sl_zconn *c, const sl_zmtp_event *ev);
int tcp_conn_read_done(sl_zconn *c);
void tcp_resume_cb(evutil_socket_t fd, short what, void *arg);
/* Whether the delivery queue has room enough to read again (lock held):
** under half its frame and byte limits. */
int tcp_rx_room_nolock(const bridge *b);
/* Doubles the delivery ring (lock held); 0, or -1 if out of memory. */
int tcp_rx_grow_nolock(bridge *b);
block_cache *tcp_cache_new(void);
/* Gives the frames requested and not filled back to the pool (I/O thread:
** the end of a read, a closed connection). */
void tcp_rx_spare_release(rx_batch *rb);
void tcp_cache_unref(block_cache *bc);

#endif
