/*
** UdpRssiPack: a client and a server over real UDP on 127.0.0.1. PRBS
** frames of many sizes cross it for both packetizer versions, standard and
** jumbo, with the datagram sizes of the reference's section 6.3; a frame
** left half assembled by a connection that closed is dropped and counted
** when the link reopens, and the new connection's first frame arrives;
** the receive buffer holds the negotiated window; stop is prompt.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/streamlua.h"
#include "streamlua/udp_rssi_pack.h"
#include "support.h"
#include "tt.h"

typedef struct pair {
  sl_udp_rssi_pack *srv, *cli;
} pair;

static sl_udp_rssi_pack *make(uint32_t port, int server, int jumbo, int ver) {
  sl_error err;
  sl_udp_rssi_pack *p = sl_udp_rssi_pack_new("127.0.0.1", port, server, jumbo, ver, 1, &err);
  if (p == NULL) {
    printf("UdpRssiPack: %s\n", err.msg);
    abort();
  }
  return p;
}

static int both_open(void *arg) {
  pair *p = arg;
  return sl_udp_rssi_pack_is_open(p->srv) && sl_udp_rssi_pack_is_open(p->cli);
}

static pair open_pair(int jumbo, int ver) {
  pair p;
  p.srv = make(0, 1, jumbo, ver);
  p.cli = make(sl_udp_port(sl_udp_rssi_pack_udp(p.srv)), 0, jumbo, ver);
  CHECK_EQ(sl_udp_rssi_pack_start(p.srv), SL_OK);
  CHECK_EQ(sl_udp_rssi_pack_start(p.cli), SL_OK);
  CHECK(ts_wait_until(both_open, &p, 30));
  return p;
}

static void close_pair(pair p) {
  double t0 = now_s();
  sl_object_stop(sl_udp_rssi_pack_object(p.cli));
  sl_object_stop(sl_udp_rssi_pack_object(p.srv));
  CHECK(now_s() - t0 < 30.0);            /* a bound on a hang, not a speed */
  CHECK(!sl_udp_rssi_pack_is_open(p.cli));
  CHECK(!sl_udp_rssi_pack_is_open(p.srv));
  sl_object_unref(sl_udp_rssi_pack_object(p.cli));
  sl_object_unref(sl_udp_rssi_pack_object(p.srv));
}

static sl_object *app(sl_udp_rssi_pack *p, uint32_t dest) {
  sl_error err;
  sl_object *o = sl_packetizer_application(sl_udp_rssi_pack_packetizer(p), dest, &err);
  CHECK(o != NULL);
  return o;
}

typedef struct rx_count {
  sl_prbs *chk;
  uint64_t want;
} rx_count;

static int checked(void *arg) {
  rx_count *c = arg;
  sl_prbs_stats st;
  sl_prbs_get_stats(c->chk, &st);
  return st.rx_count + st.rx_errors >= c->want;
}

/* PRBS frames of each size from the client's dest 1 to the server's. */
static void prbs_sizes(int jumbo, int ver) {
  static const uint32_t sizes[] = {12, 16, 1000, 1440, 1444, 8936, 8940,
                                   10000, 65536, 1048576};
  pair p = open_pair(jumbo, ver);
  sl_object *ca = app(p.cli, 1), *sa = app(p.srv, 1);
  sl_prbs *gen = sl_prbs_new(NULL), *chk = sl_prbs_new(NULL);
  sl_master_add_slave(sl_prbs_object(gen)->master, ca->slave);
  sl_master_add_slave(sa->master, sl_prbs_object(chk)->slave);
  uint64_t n = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    for (int k = 0; k < 3; k++, n++) CHECK_EQ(sl_prbs_gen_frame(gen, sizes[i]), SL_OK);
  rx_count c = {chk, n};
  CHECK(ts_wait_until(checked, &c, 60));
  sl_prbs_stats st;
  sl_prbs_get_stats(chk, &st);
  CHECK_EQ(st.rx_count, n);
  CHECK_EQ(st.rx_errors, 0);
  CHECK_EQ(ts_counter(sl_udp_rssi_pack_object(p.srv), "packDropCount"), 0);
  CHECK_EQ(ts_counter(sl_udp_rssi_pack_object(p.cli), "opens"), 1);
  /* the UDP receive buffer holds the negotiated window of full datagrams */
  uint32_t mtu = jumbo ? 9000 : 1500;
  uint32_t win = sl_rssi_get_cur(sl_udp_rssi_pack_rssi(p.srv), SL_RSSI_P_MAX_BUFFERS);
  CHECK(sl_udp_rx_buffer_size(sl_udp_rssi_pack_udp(p.srv)) >= win * mtu);
  CHECK(sl_udp_rx_buffer_size(sl_udp_rssi_pack_udp(p.cli)) >= win * mtu);
  close_pair(p);
  sl_object_unref(ca);
  sl_object_unref(sa);
  sl_object_unref(sl_prbs_object(gen));
  sl_object_unref(sl_prbs_object(chk));
}

static void test_v1_standard(void) { prbs_sizes(0, 1); }
static void test_v1_jumbo(void) { prbs_sizes(1, 1); }
static void test_v2_standard(void) { prbs_sizes(0, 2); }
static void test_v2_jumbo(void) { prbs_sizes(1, 2); }

/* Section 6.2 and 6.3: segment size maxPayload - 8, CoreV2 sends FULL CRC,
** Core for any packVer but 2. */
static void test_wiring(void) {
  sl_udp_rssi_pack *a = make(0, 1, 0, 2), *b = make(0, 1, 1, 7);
  CHECK_EQ(sl_rssi_get_loc(sl_udp_rssi_pack_rssi(a), SL_RSSI_P_MAX_SEGMENT), 1464);
  CHECK_EQ(sl_rssi_get_loc(sl_udp_rssi_pack_rssi(b), SL_RSSI_P_MAX_SEGMENT), 8964);
  CHECK_EQ(sl_packetizer_version(sl_udp_rssi_pack_packetizer(a)), 2);
  CHECK_EQ(sl_packetizer_version(sl_udp_rssi_pack_packetizer(b)), 1);
  CHECK_STR(sl_object_kind(sl_udp_rssi_pack_object(a)), "UdpRssiPack");
  CHECK(sl_udp_rssi_pack_from_object(sl_udp_rssi_pack_object(a)) == a);
  CHECK(sl_udp_rssi_pack_from_object(sl_udp_object(sl_udp_rssi_pack_udp(a))) == NULL);
  CHECK(!sl_udp_rssi_pack_is_open(a));
  sl_error err;
  CHECK(sl_udp_rssi_pack_new("127.0.0.1", 0, 0, 0, 2, 1, &err) == NULL);
  CHECK(strstr(err.msg, "bad port") != NULL);
  sl_object_unref(sl_udp_rssi_pack_object(a));   /* never started: no stop needed */
  sl_object_unref(sl_udp_rssi_pack_object(b));
}

/*
** The server's packetizer holds the first segment of a frame for dest 1
** (as if the old connection died mid-frame). The link closes (the client
** stops its link: RST) and reopens: that frame is dropped and counted, and
** the new connection's first frame for dest 1 arrives whole (Rogue's v2
** would refuse its first segment as an unexpected SOF and lose it too).
*/
static void test_reopen_drops_half_frame(void) {
  pair p = open_pair(0, 2);
  sl_object *sa = app(p.srv, 1), *ca = app(p.cli, 1);
  ts_rec *r = ts_rec_new(4);
  sl_master_add_slave(sa->master, ts_rec_object(r)->slave);
  static const uint8_t sof_only[24] = {0x02, 0, 1, 0, 0, 0, 0, 0x80,
                                       1, 2, 3, 4, 5, 6, 7, 8,
                                       0, 0, 8, 0, 0, 0, 0, 0};
  sl_object *pt = sl_packetizer_transport(sl_udp_rssi_pack_packetizer(p.srv));
  sl_pool *pool = sl_pool_new();
  CHECK_EQ(ts_push(pt->slave, pool, sof_only, sizeof sof_only), SL_OK);
  CHECK_EQ(ts_rec_count(r), 0);
  sl_udp_rssi_pack_stop_link(p.cli);
  CHECK(!sl_udp_rssi_pack_is_open(p.cli));
  CHECK_EQ(sl_udp_rssi_pack_start(p.cli), SL_OK);
  CHECK(ts_wait_until(both_open, &p, 30));
  CHECK(ts_counter_reaches(sl_udp_rssi_pack_object(p.srv), "opens", 2, 30));
  CHECK_EQ(ts_counter(sl_udp_rssi_pack_object(p.srv), "resetDrops"), 1);
  sl_object *m = ts_master_new();
  sl_master_add_slave(m->master, ca->slave);
  CHECK_EQ(ts_send(m->master, "after reopen", 12, 0, 0, 0), SL_OK);
  CHECK(ts_rec_wait(r, 1, 30));
  ts_got g = {0};
  CHECK(ts_rec_frame(r, 0, &g));
  CHECK_EQ(g.size, 12);
  CHECK(g.data != NULL && memcmp(g.data, "after reopen", 12) == 0);
  close_pair(p);
  sl_object_unref(m);
  sl_object_unref(pt);
  sl_pool_unref(pool);
  sl_object_unref(sa);
  sl_object_unref(ca);
  sl_object_unref(ts_rec_object(r));
}

static const struct tt_case cases[] = {
    {"wiring and sizes of section 6", test_wiring},
    {"PRBS frames 12 B to 1 MiB, v1, standard", test_v1_standard},
    {"PRBS frames 12 B to 1 MiB, v1, jumbo", test_v1_jumbo},
    {"PRBS frames 12 B to 1 MiB, v2, standard", test_v2_standard},
    {"PRBS frames 12 B to 1 MiB, v2, jumbo", test_v2_jumbo},
    {"a reopen drops the half frame, the next frame arrives", test_reopen_drops_half_frame},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
