/*
** The memory TCP bridge's insides, shared by its four files:
** mem_bridge.c (the connection hooks, the object), mem_client.c (the
** client's transactions), mem_server.c (the server's thread) and
** mem_route.c (the server's routing). Connections, sockets and the I/O
** thread are the bridge base's (../net/zmtp_conn.h); a request or a
** response is one whole message in a connection's byte queue.
**
** The bridge mutex (zb.mutex) guards what the threads share: the
** connection list and each connection's outbound bytes, the client's
** table of waiting transactions and the server's request queue. The I/O
** thread (loop 0) owns sockets, events and codec sessions; other threads
** send whole messages under the mutex (sl_zconn_send_nolock).
**
** Reading off the loop (zmtp_conn.h): while register traffic flows, a
** round trip passes no thread hand-off. The server's thread reads the
** connection its last request came from itself (for SERVER_POLL_US after
** each answer, then the I/O thread reads again), so a request is read, run
** and answered on that one thread; the I/O thread still never runs graph
** code. A caller waiting for its transaction (sl_transaction_help) reads
** the responses itself for a while, handling any that come (they complete
** their own transactions), and leaves the connection parked when it got
** its answer; the sweep gives a connection parked that long back to the
** I/O thread, which reads whenever no caller does.
**
** ACKs (late_acks, zmtp_conn.c): the receiving sockets leave a small
** message's ACK for later, and a reader sends the one it owes once it has
** answered or sent its next request, off the round trip's path.
*/
#ifndef STREAMLUA_MEM_INTERNAL_H_INCLUDED_
#define STREAMLUA_MEM_INTERNAL_H_INCLUDED_

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "../net/zmtp_conn.h"
#include "streamlua/mem_bridge.h"
#include "streamlua/worker.h"
#include "streamlua/zmtp.h"

#include "../core/bytes.h"
#include "../core/clock.h"

#define SWEEP_MS 5
#define PEER_WAIT_US 1000000    /* the server waits this long for a peer */
#define MAX_MSG (64u << 20)
#define SERVER_POLL_US 80        /* the server's look for the next request */
#define DIRECT_SPIN_US 30        /* such a reader looks, yielding, this long,
                                    then sleeps in poll */
#define MAX_REQUESTS 64          /* server: requests queued, at most */
#define MAX_REQUEST_BYTES (16u << 20)    /* their data, written or to read */
#define MAX_RESPONSE_BYTES (16u << 20)   /* responses queued per connection */

typedef struct sl_mem_bridge mb;

typedef struct mconn {
  sl_zconn zc;                 /* first: the bridge base's connection */
  /* server (mutex): routing, mem_route.c */
  uint64_t serial;             /* names the connection in requests */
  struct in_addr host;         /* the peer's address */
  struct mconn *mate;          /* the other port's connection of that client */
} mconn;

/* A client transaction waiting for its response (or for the connection). */
typedef struct pend {
  struct pend *next;
  sl_transaction *t;           /* a reference */
  uint32_t id;
  uint8_t *msg;                /* the encoded request until it is sent */
  size_t len;
  int sent;
  struct timespec deadline;    /* just before the master gives up */
} pend;

/* A request for the server's thread. */
typedef struct req {
  struct req *next;
  uint32_t id, size, type;
  uint64_t addr;
  uint8_t *data;               /* the write data (size bytes) or NULL */
  uint64_t from, to;           /* serials: its connection and that one's mate */
} req;

struct sl_mem_bridge {
  sl_object obj;
  sl_mem_master master;        /* server */
  sl_mem_slave slave;          /* client */
  sl_zbridge zb;               /* ports, connections, I/O, the mutex */
  struct event *sweep;         /* client: fails transactions past due */
  pthread_cond_t cv;           /* probes answered, peers ready, requests */
  pend *pend;                  /* client, in request order */
  size_t npend;
  uint32_t probe_next, probe_ok;
  req *rq_head, *rq_tail;      /* server */
  atomic_int rq_any;           /* rq_head != NULL, for the server's polls */
  uint32_t rq_count;           /* requests queued or being served */
  uint64_t rq_bytes;           /* their sizes: data held or to be read */
  uint64_t serial_next;
  int any_paused;              /* a request connection is paused */
  struct event *resume_ev;     /* the server's thread: look at the pauses */
  atomic_uint max_requests;
  atomic_uint_least64_t max_request_bytes, max_response_bytes;
  sl_worker server;             /* server: the thread that serves requests;
                                  its stop flag is set with zb.stopping */
  sl_tran_helper helper;        /* client: its waiters read their responses */
};

static inline mb *mb_of(const mconn *c) {
  return SL_ZBRIDGE_OWNER(mb, c->zc.b);
}

/* mem_bridge.c */
/* Encodes the header parts (and data) into one malloc'd ZMTP message. */
uint8_t *mb_encode(uint32_t id, uint64_t addr, uint32_t size, uint32_t type,
                   const sl_zmtp_part *extra, size_t nextra, size_t *len);
/* Sends whole bytes on c (lock held; any thread); 0, or -1 if out of memory. */
static inline int mb_queue_nolock(mconn *c, const uint8_t *p, size_t n) {
  return sl_zconn_send_nolock(&c->zc, p, n);
}

/* A request or response of the bridge, decoded from a message event. The
** pointers are borrowed from the event (transfer none). */
typedef struct mb_msg {
  uint32_t id, size, type;
  uint64_t addr;
  const uint8_t *data;         /* request: the write data, or NULL;
                                  response: the data part */
  size_t dlen;
  const uint8_t *result;       /* response: the result text (no NUL) */
  size_t rlen;
} mb_msg;

/* mem_client.c */
/* Checks a response's shape and reads it into *m: NULL, or why it is
** malformed. No side effects (the fuzz harnesses call it alone). */
const char *mb_decode_response(const sl_zmtp_event *ev, mb_msg *m);
mconn *mb_client_push_nolock(mb *b);
void mb_flush_pending_nolock(mb *b);
void mb_pend_free(pend *p);
int mb_client_message(mconn *c, const mb_msg *m);
void mb_sweep_cb(evutil_socket_t fd, short what, void *arg);
void mb_client_do(sl_mem_slave *s, sl_transaction *t);
/* A waiter reads the responses itself for up to `us` (sl_tran_helper). */
int mb_client_help(sl_tran_helper *h, sl_transaction *t, long us);
/* Parked receiving connections back to the I/O thread after a sweep's
** time idle (the I/O thread, lock held). */
void mb_client_unpark_nolock(mb *b);

/* mem_route.c: which connection answers a request, and when reading
** requests pauses (all on the I/O thread, lock held, unless told). */
/* A new server connection: its peer's address, and its mate if one waits. */
void mb_route_add_nolock(mb *b, mconn *c);
/* A connection going: its mate looks for another; pauses are looked at. */
void mb_route_remove_nolock(mb *b, mconn *c);
/* The response connection for a request (any thread), or NULL. */
mconn *mb_route_nolock(mb *b, const req *r);
/* After a request is queued from c: pauses c's reading at the bounds. */
void mb_backlog_check_nolock(mb *b, mconn *c);
/* Resumes the paused request connections that are under the bounds. */
void mb_backlog_resume_nolock(mb *b);
void mb_resume_cb(evutil_socket_t fd, short what, void *arg);
/* Bytes of responses queued on c. */
static inline size_t mb_queued(const mconn *c) { return sl_zconn_queued(&c->zc); }

/* mem_server.c */
/* Checks a request's shape and reads it into *m: NULL, or why it is
** malformed. No side effects (the fuzz harnesses call it alone). */
const char *mb_decode_request(const sl_zmtp_event *ev, mb_msg *m);
int mb_server_message(mconn *c, const mb_msg *m);
/* A request served (its response queued or dropped): off the counts. */
void mb_server_done(mb *b, req *r);
/* The server's thread (a worker, no wake: the stop's broadcast of cv
** ends its waits). */
int mb_server_main(void *arg);

#endif
