/*
** UdpRssiPack (see udp_rssi_pack.h): three layers wired as pyrogue wires
** them, and RSSI's state hook, which resets the packetizer's reassembly
** and sizes the UDP receive buffer each time the link opens or closes.
*/
#include "streamlua/udp_rssi_pack.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/packetizer.h"
#include "streamlua/rssi.h"
#include "streamlua/slave.h"
#include "streamlua/udp.h"

#define RSSI_HEADER_ROOM 8u    /* pyrogue's maxPayload - 8 */

struct sl_udp_rssi_pack {
  sl_object obj;
  sl_log *log;
  sl_udp *udp;
  sl_rssi *rssi;
  sl_packetizer *pack;
  sl_object *rssi_transport, *rssi_app, *pack_transport;   /* references */
  atomic_int linked;            /* the layers are connected */
  atomic_int stopped;
  atomic_uint_least64_t reset_drops, opens;
  uint32_t port;
  int server, jumbo;
  char host[64];
};

static sl_object *udp_obj(sl_udp_rssi_pack *p) { return sl_udp_object(p->udp); }

/* Connects a and b both ways (a == b in Lua). */
static int link_both(sl_object *a, sl_object *b) {
  if (sl_master_add_slave(a->master, b->slave) != SL_OK) return -1;
  if (sl_master_add_slave(b->master, a->slave) != SL_OK) {
    sl_master_remove_slave(a->master, b->slave);
    return -1;
  }
  return 0;
}

static void unlink_both(sl_object *a, sl_object *b) {
  sl_master_remove_slave(a->master, b->slave);
  sl_master_remove_slave(b->master, a->slave);
}

/*
** RSSI opened or closed the link. What the packetizer holds of frames
** from before belongs to a connection that is gone: dropped and counted,
** so the next connection's first frame is not refused as a stray. On
** open, the negotiated window must fit in the UDP receive buffer.
*/
static void on_state(void *arg, int open) {
  sl_udp_rssi_pack *p = arg;
  size_t dropped = sl_packetizer_reset(p->pack);
  if (dropped > 0) atomic_fetch_add(&p->reset_drops, dropped);
  if (!open) return;
  atomic_fetch_add(&p->opens, 1);
  uint32_t n = sl_rssi_get_cur(p->rssi, SL_RSSI_P_MAX_BUFFERS);
  sl_udp_set_rx_buffer_count(p->udp, n);
  sl_log_write(p->log, SL_LOG_INFO,
               "host=%s, port=%u -> Link established. jumbo=%s, maxPayload=%u; "
               "UDP receive buffer holds %u datagrams or more",
               p->server ? "*" : p->host, (unsigned)p->port,
               p->jumbo ? "True" : "False", (unsigned)sl_udp_max_payload(p->udp),
               (unsigned)n);
}

/* Unlinks the layers once: no cycle is left among them. */
static void unlink_layers(sl_udp_rssi_pack *p) {
  if (!atomic_exchange(&p->linked, 0)) return;
  unlink_both(udp_obj(p), p->rssi_transport);
  unlink_both(p->rssi_app, p->pack_transport);
}

static void pack_cancel(sl_object *obj) {
  sl_udp_rssi_pack *p = (sl_udp_rssi_pack *)obj;
  sl_object_cancel(sl_rssi_object(p->rssi));
  sl_object_cancel(udp_obj(p));
}

/* RSSI first (it sends RST while UDP still runs), then UDP, whose receive
** thread is the other place the state hook runs from; then the hook goes. */
static void pack_stop(sl_object *obj) {
  sl_udp_rssi_pack *p = (sl_udp_rssi_pack *)obj;
  if (atomic_exchange(&p->stopped, 1)) return;
  sl_object_stop(sl_rssi_object(p->rssi));
  sl_object_stop(udp_obj(p));
  sl_rssi_set_state_hook(p->rssi, NULL, NULL);
  unlink_layers(p);
}

static void pack_destroy(sl_object *obj) {
  sl_udp_rssi_pack *p = (sl_udp_rssi_pack *)obj;
  pack_stop(obj);
  sl_object_unref(p->pack_transport);
  sl_object_unref(p->rssi_app);
  sl_object_unref(p->rssi_transport);
  sl_object_unref(sl_packetizer_object(p->pack));
  sl_object_unref(sl_rssi_object(p->rssi));
  sl_object_unref(udp_obj(p));
  free(p);
}

static size_t pack_counters(sl_object *obj, sl_counter *out, size_t max) {
  sl_udp_rssi_pack *p = (sl_udp_rssi_pack *)obj;
  sl_rssi_stats st;
  sl_rssi_stats_get(p->rssi, &st);
  sl_counter c[] = {{"open", (uint64_t)st.open},
                    {"opens", atomic_load(&p->opens)},
                    {"txFrames", st.tx_frames},
                    {"rxFrames", st.rx_frames},
                    {"rssiDownCount", st.down_count},
                    {"rssiDropCount", st.drop_count},
                    {"rssiRetranCount", st.retran_count},
                    {"locBusyCnt", st.loc_busy_count},
                    {"remBusyCnt", st.rem_busy_count},
                    {"packDropCount", sl_packetizer_drop_count(p->pack)},
                    {"resetDrops", atomic_load(&p->reset_drops)},
                    {"drops", st.drop_count + sl_packetizer_drop_count(p->pack)}};
  size_t n = sizeof c / sizeof c[0];
  if (n > max) n = max;
  memcpy(out, c, n * sizeof c[0]);
  return n;
}

static const sl_class pack_class = {.name = "UdpRssiPack",
                                    .destroy = pack_destroy,
                                    .stop = pack_stop,
                                    .cancel = pack_cancel,
                                    .counters = pack_counters};

/* Makes the three layers; 0, or -1 with err set. */
static int make_layers(sl_udp_rssi_pack *p, const char *host, int pack_ver,
                       int en_ssi, sl_error *err) {
  p->udp = sl_udp_new(p->server ? NULL : host, p->port, p->server, p->jumbo, err);
  if (p->udp == NULL) return -1;
  p->port = sl_udp_port(p->udp);
  uint32_t seg = sl_udp_max_payload(p->udp) - RSSI_HEADER_ROOM;
  p->rssi = sl_rssi_new(p->server, seg, err);
  if (p->rssi == NULL) return -1;
  p->pack = pack_ver == 2 ? sl_packetizer_new(2, 0, 1, en_ssi, err)
                          : sl_packetizer_new(1, 0, 0, en_ssi, err);
  if (p->pack == NULL) return -1;
  p->rssi_transport = sl_rssi_transport(p->rssi);
  p->rssi_app = sl_rssi_application(p->rssi);
  p->pack_transport = sl_packetizer_transport(p->pack);
  if (p->rssi_transport == NULL || p->rssi_app == NULL || p->pack_transport == NULL) {
    sl_fail(err, SL_ENOMEM, NULL);
    return -1;
  }
  return 0;
}

/* Undoes what make_layers made, whatever it got to. */
static void free_layers(sl_udp_rssi_pack *p) {
  if (p->pack_transport) sl_object_unref(p->pack_transport);
  if (p->rssi_app) sl_object_unref(p->rssi_app);
  if (p->rssi_transport) sl_object_unref(p->rssi_transport);
  if (p->pack) sl_object_unref(sl_packetizer_object(p->pack));
  if (p->rssi) sl_object_unref(sl_rssi_object(p->rssi));
  if (p->udp) {
    sl_object_stop(udp_obj(p));
    sl_object_unref(udp_obj(p));
  }
}

sl_udp_rssi_pack *sl_udp_rssi_pack_new(const char *host, uint32_t port, int server,
                                       int jumbo, int pack_ver, int en_ssi,
                                       sl_error *err) {
  sl_udp_rssi_pack *p = calloc(1, sizeof *p);
  if (p == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&p->obj, &pack_class);
  p->server = server != 0;
  p->jumbo = jumbo != 0;
  p->port = port;
  snprintf(p->host, sizeof p->host, "%s", host != NULL ? host : "*");
  p->log = sl_log_get("protocols.UdpRssiPack");
  if (make_layers(p, host, pack_ver, en_ssi, err) != 0) goto out_layers;
  if (link_both(udp_obj(p), p->rssi_transport) != 0) goto out_nomem;
  if (link_both(p->rssi_app, p->pack_transport) != 0) {
    unlink_both(udp_obj(p), p->rssi_transport);
    goto out_nomem;
  }
  atomic_store(&p->linked, 1);
  sl_rssi_set_state_hook(p->rssi, on_state, p);
  return p;
out_nomem:
  sl_fail(err, SL_ENOMEM, NULL);
out_layers:
  free_layers(p);
  free(p);
  return NULL;
}

sl_object *sl_udp_rssi_pack_object(sl_udp_rssi_pack *p) { return p ? &p->obj : NULL; }

sl_udp_rssi_pack *sl_udp_rssi_pack_from_object(sl_object *obj) {
  return sl_object_is(obj, &pack_class) ? (sl_udp_rssi_pack *)obj : NULL;
}

sl_udp *sl_udp_rssi_pack_udp(sl_udp_rssi_pack *p) { return p->udp; }
sl_rssi *sl_udp_rssi_pack_rssi(sl_udp_rssi_pack *p) { return p->rssi; }
sl_packetizer *sl_udp_rssi_pack_packetizer(sl_udp_rssi_pack *p) { return p->pack; }

int sl_udp_rssi_pack_start(sl_udp_rssi_pack *p) {
  if (atomic_load(&p->stopped)) return SL_ECLOSED;
  return sl_rssi_start(p->rssi);
}

void sl_udp_rssi_pack_stop_link(sl_udp_rssi_pack *p) { sl_rssi_stop(p->rssi); }

int sl_udp_rssi_pack_is_open(sl_udp_rssi_pack *p) { return sl_rssi_is_open(p->rssi); }
