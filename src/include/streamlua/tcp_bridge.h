/*
** sl_tcp_bridge: Rogue's stream TCP bridge (TcpServer / TcpClient), wire
** compatible with it: ZeroMQ PUSH/PULL over ZMTP 3 with the NULL
** mechanism, two ports, one 4-part message per frame (flags LE16, channel,
** error, payload).
**
**   server: receives on port P (PULL, bound), sends on P+1 (PUSH, bound)
**   client: sends to P (PUSH, connects), receives from P+1 (PULL, connects)
**
**   graph thread                  I/O thread               delivery thread
**   ------------                  ----------               ---------------
**   accept_frame(f): waits while  writes queued frames     takes received
**   no peer is ready or its       with writev (headers +   frames, sends
**   queue is full (Rogue: block,  payload, no copy);       them downstream
**   no backlog), or gives up      reads, decodes, makes    in batches
**   after the timeout; queues f   frames; pauses reading
**                                 while the delivery
**                                 queue is full
**
** A received message is delivered only when it is complete and valid; a
** peer that breaks the protocol, sends a message of the wrong shape or one
** over the maximum size has its connection closed with a logged error.
** Clients reconnect every 100 ms while the server is away. Thread-safe.
*/
#ifndef STREAMLUA_TCP_BRIDGE_H_INCLUDED_
#define STREAMLUA_TCP_BRIDGE_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

/* A started bridge (kind "TcpServer" or "TcpClient"), refs = 1; NULL with
** the reason in err (e.g. SL_EIO, "cannot bind 127.0.0.1:8000: Address
** already in use"). A server's port 0 picks two free consecutive ports. */
typedef struct sl_tcp_bridge sl_tcp_bridge;

sl_tcp_bridge *sl_tcp_bridge_new(const char *addr, uint32_t port, int server,
                                 sl_error *err);
sl_object *sl_tcp_bridge_object(sl_tcp_bridge *b);         /* (transfer none); NULL-safe */
sl_tcp_bridge *sl_tcp_bridge_from_object(sl_object *obj);  /* NULL if not a bridge */

/* Does a peer take frames now (a handshaken connection on the send side)? */
int sl_tcp_bridge_ready(sl_tcp_bridge *b);
/* How long a sender waits for a peer or for room: <0 without a bound
** (Rogue's rule, the default), else microseconds; then the frame is
** dropped, counted and logged. */
void sl_tcp_bridge_set_timeout(sl_tcp_bridge *b, int64_t us);
/* Largest message accepted from a peer (bytes; default 64 MiB; at most
** 2^32 - 1, since a message becomes one frame). */
void sl_tcp_bridge_set_max_size(sl_tcp_bridge *b, uint64_t bytes);
/* Bytes of payload each queue may hold (default 4 MiB; 0 counts as 1):
** the delivery queue of received frames (frames being delivered count
** until they are delivered), where reading pauses at this or at 1,024
** frames and resumes under half of both; and each connection's send
** queue, where a sender waits (as for a full queue of 1,000 frames) while
** it is over. A frame larger than the limit passes alone. Counters
** "maxQueueBytes", "rxQueueBytes" and "txQueueBytes" (the send queues,
** message headers included). */
void sl_tcp_bridge_set_max_queue_bytes(sl_tcp_bridge *b, uint64_t bytes);
/* A server's cap on open connections, both ports together (default 64);
** one over it is accepted and closed at once, counted ("refused"). */
void sl_tcp_bridge_set_max_connections(sl_tcp_bridge *b, uint32_t n);
/* How long a new connection has to finish the ZMTP greeting and READY
** (microseconds; default 30 s, libzmq's ZMQ_HANDSHAKE_IVL; 0: no limit);
** then it is closed and counted ("handshakeTimeouts"). */
void sl_tcp_bridge_set_handshake_timeout(sl_tcp_bridge *b, int64_t us);
/* Bytes received of messages not yet whole, all connections together
** (default 128 MiB: two messages of the largest size); a connection that takes the total past it is closed
** and counted ("pendingCloses"). Held now: counter "pendingBytes". */
void sl_tcp_bridge_set_max_pending(sl_tcp_bridge *b, uint64_t bytes);
/* The base port P (the one asked for, or the one picked for port 0). */
uint32_t sl_tcp_bridge_port(sl_tcp_bridge *b);
/* Connections now open (handshaken or not). */
uint32_t sl_tcp_bridge_connections(sl_tcp_bridge *b);

/* The delivery threads every bridge of the process shares: the number
** kept (1 to 16; default the online CPUs, at most 4), effective at once;
** threads beyond it end once idle. More start, up to 64 in all, while
** deliveries wait downstream (a full Fifo, a full Lua mailbox), so one
** blocked consumer does not hold up the other bridges. */
void sl_tcp_set_delivery_threads(int n);
int sl_tcp_delivery_threads(void);

#pragma GCC visibility pop

#endif
