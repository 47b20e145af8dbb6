/*
** sl_mem_bridge: Rogue's memory TCP bridge (rogue.interfaces.memory
** TcpServer / TcpClient), wire compatible with it: ZeroMQ PUSH/PULL over
** ZMTP 3 (NULL mechanism) on two consecutive ports.
**
**   TcpClient (memory slave)                TcpServer (memory master)
**   ------------------------                -------------------------
**   PUSH connects to P   -- request -->     PULL bound on P
**   PULL connects to P+1 <-- response --    PUSH bound on P+1
**
** Request: id LE32, address LE64, size LE32, type LE32 [, data (Write,
** Post)]. Response: the four echoed, data, result text ("OK" or the
** error). Type 0xFFFFFFFE with size 0 is the readiness probe.
**
** The client (a memory slave) sends each transaction it is given and
** completes it from the I/O thread when the response arrives. A
** transaction given while the bridge is not connected waits for the
** connection; one that gets no answer within its timeout fails with a
** message that says whether it was ever sent. A Post is completed once it
** is sent (Rogue does not wait for its answer); with no connection it
** fails at once. The server (a memory master) runs the requests it
** receives one at a time on its own thread against the slave below it,
** with its own timeout, and sends the response back.
**
** A peer that breaks the protocol or sends a message of the wrong shape
** has its connection closed with a logged error. The server answers a
** request only on the response connection paired with the connection the
** request came in on: same peer address, oldest unpaired (mem_route.c). A client reconnects
** every 100 ms while the server is away. stop() closes everything and
** fails what is still waiting, promptly.
**
** Ownership: the constructors give the caller one reference (refs = 1);
** drop it with sl_object_unref(sl_mem_bridge_object(b)). Everything here
** is thread-safe.
*/
#ifndef STREAMLUA_MEM_BRIDGE_H_INCLUDED_
#define STREAMLUA_MEM_BRIDGE_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#include "memory.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

#define SL_MEM_PROBE 0xFFFFFFFEu     /* the readiness probe's type */
#define SL_MEM_BRIDGE_RESULT_MAX 999 /* longest result text accepted */

typedef struct sl_mem_bridge sl_mem_bridge;

/* TcpServer(addr, port): binds addr:port and addr:port+1 ("*" = any);
** port 0 picks two free consecutive ports. Kind "memory.TcpServer", a
** memory master node; NULL with the reason in err ("cannot bind ...:
** <strerror>"). */
sl_mem_bridge *sl_mem_server_new(const char *addr, uint32_t port, sl_error *err);

/* TcpClient(addr, port): connects to addr:port and addr:port+1. Kind
** "memory.TcpClient", a memory slave node (min access 4, max
** 0xFFFFFFFF); NULL with the reason in err. */
sl_mem_bridge *sl_mem_client_new(const char *addr, uint32_t port, sl_error *err);

sl_object *sl_mem_bridge_object(sl_mem_bridge *b);        /* (transfer none); NULL-safe */
sl_mem_bridge *sl_mem_bridge_from_object(sl_object *obj); /* NULL if not a bridge */
/* 1 for a TcpServer, 0 for a TcpClient. */
int sl_mem_bridge_is_server(sl_mem_bridge *b);

/* Both directions handshaken? (client: its two connections; server: at
** least one peer on each port) */
int sl_mem_bridge_ready(sl_mem_bridge *b);
/* The base port P (the one asked for, or the one picked for port 0). */
uint32_t sl_mem_bridge_port(sl_mem_bridge *b);
/* Client: transactions waiting for a response (or for the connection). */
size_t sl_mem_bridge_pending(sl_mem_bridge *b);

/* Limits against peers (both roles; as the stream bridge's, see
** tcp_bridge.h): a server's cap on open connections (default 64), the
** time a connection has for its handshake (us; default 30 s; 0: none),
** the bytes messages not yet whole may hold (default 128 MiB). */
void sl_mem_bridge_set_max_connections(sl_mem_bridge *b, uint32_t max);
void sl_mem_bridge_set_handshake_timeout(sl_mem_bridge *b, int64_t us);
void sl_mem_bridge_set_max_pending(sl_mem_bridge *b, uint64_t bytes);
/* Server: reading requests pauses (TCP back-pressure, nothing dropped)
** while `count` requests wait (default 64), or their sizes (data written
** or to be read) add up to `bytes` (default 16 MiB), or the client's
** response connection holds `bytes` of responses it has not read
** (default 16 MiB, per connection). */
void sl_mem_server_set_max_requests(sl_mem_bridge *b, uint32_t count);
void sl_mem_server_set_max_request_bytes(sl_mem_bridge *b, uint64_t bytes);
void sl_mem_server_set_max_response_bytes(sl_mem_bridge *b, uint64_t bytes);

/* Client: Rogue's waitReady: sends probes (a fresh id each), waiting up to
** period_us for each answer; 1 when one came back "OK", 0 after
** timeout_us. Blocks the caller. */
int sl_mem_client_wait_ready(sl_mem_bridge *b, uint64_t timeout_us,
                             uint64_t period_us);

#pragma GCC visibility pop

#endif
