/*
** sl_udp: Rogue's UDP stream endpoints (udp.Server, udp.Client). One
** datagram is one frame: the payload is the datagram's bytes, channel,
** error and flags are 0 on receive and are not sent.
**
**   server: bound to addr:port (Rogue: every interface); answers the
**           most recent source it heard from; before it has heard from
**           anyone it has nowhere to send, so frames are dropped, counted
**           ("noPeer") and logged at most once a second
**   client: sends to host:port from a port the kernel picks; takes
**           datagrams from that port only: others are counted
**           ("rxForeign"), logged at most once a second and dropped
**
**   graph thread                   receive thread (one per endpoint)
**   ------------                   ---------------------------------
**   accept_frame(f): refuses f     recvmmsg into pool frames, up to 32 per
**   over maxPayload (counted,      call, and hands them downstream itself;
**   logged), sends it as one       sleeps in poll() while the socket is
**   datagram (sendmsg; a batch     empty. UDP has no back-pressure: while
**   from accept_frames goes in     downstream is slow the kernel's buffer
**   one sendmmsg); waits for       fills and drops; its count (SO_MEMINFO)
**   room up to the timeout, then   is rxDrops, logged at most once a second.
**   logs and waits again (Rogue)   A Fifo after the endpoint decouples.
**
** Ownership: frames given to accept_frame are borrowed (transfer none).
** Thread-safe: every function may be called from any thread.
*/
#ifndef STREAMLUA_UDP_H_INCLUDED_
#define STREAMLUA_UDP_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

typedef struct sl_udp sl_udp;

#define SL_UDP_MAX_PAYLOAD 1472u        /* MTU 1500 - IP and UDP headers */
#define SL_UDP_JUMBO_MAX_PAYLOAD 8972u  /* MTU 9000 - 28 */

/* A started endpoint (kind "UdpServer" or "UdpClient"), refs = 1; NULL
** with the reason in err (e.g. SL_EIO, "cannot bind 127.0.0.1:8192:
** Address already in use"). Server: host is the bind address (NULL or "*": every
** interface, as Rogue), port 0 picks a free port. Client: host is resolved
** (IPv4) and port must be > 0. */
sl_udp *sl_udp_new(const char *host, uint32_t port, int server, int jumbo,
                   sl_error *err);
sl_object *sl_udp_object(sl_udp *u);          /* (transfer none); NULL-safe */
sl_udp *sl_udp_from_object(sl_object *obj);   /* NULL if not a UDP endpoint */

/* Server: the bound port. Client: the port it sends to. */
uint32_t sl_udp_port(sl_udp *u);
/* 1472, or 8972 with jumbo. */
uint32_t sl_udp_max_payload(sl_udp *u);
/* Asks for a receive buffer that holds at least `count` datagrams of a full
** MTU (SO_RCVBUF of count x 1500 or 9000 bytes, as Rogue); unlike Rogue it
** only ever grows, so it stays at least the kernel's default. Returns 1 if
** the buffer holds that much, else 0 with an error line, once per
** endpoint, naming the sysctl to raise (net.core.rmem_max). */
int sl_udp_set_rx_buffer_count(sl_udp *u, uint32_t count);
/* The receive buffer the kernel gives now, in bytes usable for data
** (getsockopt's value halved: Linux reports double what it accounts). */
uint32_t sl_udp_rx_buffer_size(sl_udp *u);
/* How long a sender waits for the socket to take a datagram before it logs
** a critical line and waits again (Rogue's rule; default 1 s). */
void sl_udp_set_timeout(sl_udp *u, uint64_t us);
/* The address frames go to: 1 and "a.b.c.d" + port, or 0 (a server that
** has heard from no one yet). ip needs 16 bytes. */
int sl_udp_peer(sl_udp *u, char *ip, uint32_t *port);

#pragma GCC visibility pop

#endif
