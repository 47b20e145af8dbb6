/*
** sl_udp_rssi_pack: pyrogue's UdpRssiPack, the stack that reaches a SLAC
** board: UDP, RSSI on it, the packetizer on RSSI, one stream edge per
** destination (spec/rogue-link-reference.md section 6).
**
**   application(dest) ─┐
**                      packetizer Core (v1) / CoreV2(no inbound CRC check,
**                      outbound CRC, enSsi) ═ rssi application
**                      rssi Client / Server(maxPayload - 8) ═ rssi transport
**                      udp Client(host, port, jumbo) / Server(port, jumbo)
**
** Size arithmetic (section 6.3): RSSI's segment size is the UDP payload
** less 8 (1464, or 8964 with jumbo); the packetizer cuts frames to what
** RSSI's buffers hold, so a datagram is never over the UDP payload.
**
** Reopening. Each time the link opens or closes, the packetizer forgets
** every frame the old connection left half assembled (dropped, counted in
** "resetDrops" and logged), so the new connection's first frame is
** delivered whole; and on each open the UDP receive buffer is made to
** hold at least the negotiated number of outstanding segments (it only
** grows, see sl_udp_set_rx_buffer_count; a kernel that grants less is
** reported loudly). Both run in the thread that opened or closed the
** link.
**
** Ownership: the stack holds a reference on each layer and the links
** between them; its stop stops RSSI and UDP and unlinks the layers, so
** nothing is left in a cycle. Thread-safe: any function from any thread.
*/
#ifndef STREAMLUA_UDP_RSSI_PACK_H_INCLUDED_
#define STREAMLUA_UDP_RSSI_PACK_H_INCLUDED_

#include <stdint.h>

#include "object.h"
#include "packetizer.h"
#include "rssi.h"
#include "status.h"
#include "udp.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

typedef struct sl_udp_rssi_pack sl_udp_rssi_pack;

/* The wired stack (kind "UdpRssiPack"), not started, refs = 1. Client:
** host and port > 0 are where it sends; server: it binds port on every
** interface (0 picks one) and host is unused. pack_ver 2 means CoreV2,
** any other value Core (Rogue's rule). NULL with the reason in err (the
** UDP endpoint's, e.g. "cannot bind *:8192: Address already in use"). */
sl_udp_rssi_pack *sl_udp_rssi_pack_new(const char *host, uint32_t port, int server,
                                       int jumbo, int pack_ver, int en_ssi,
                                       sl_error *err);
sl_object *sl_udp_rssi_pack_object(sl_udp_rssi_pack *p);        /* (transfer none) */
sl_udp_rssi_pack *sl_udp_rssi_pack_from_object(sl_object *obj); /* NULL if not one */

/* The layers (transfer none: valid while the stack is). */
sl_udp *sl_udp_rssi_pack_udp(sl_udp_rssi_pack *p);
sl_rssi *sl_udp_rssi_pack_rssi(sl_udp_rssi_pack *p);
sl_packetizer *sl_udp_rssi_pack_packetizer(sl_udp_rssi_pack *p);

/* Starts RSSI (a client sends its first SYN). SL_OK, or SL_EIO. */
int sl_udp_rssi_pack_start(sl_udp_rssi_pack *p);
/* Rogue's _stop: RSSI sends RST and closes; UDP keeps running, so
** sl_udp_rssi_pack_start may follow. sl_object_stop stops everything. */
void sl_udp_rssi_pack_stop_link(sl_udp_rssi_pack *p);
int sl_udp_rssi_pack_is_open(sl_udp_rssi_pack *p);

#pragma GCC visibility pop

#endif
