/*
** The memory TCP bridge against libzmq playing Rogue's memory TcpClient
** over 127.0.0.1: a PUSH socket connects to our TcpServer's port P and a
** PULL socket to P+1 with Rogue's options, and requests go out in Rogue's
** parts (id LE32, address LE64, size LE32, type LE32 [, data]). The
** responses must be Rogue's six parts, byte for byte. Every wait is
** bounded.
**
** Built only when libzmq is found (see the zmtp block of CMakeLists.txt).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "streamlua/mem_bridge.h"
#include "streamlua/streamlua.h"
#include "tt.h"

/* libzmq is not built with ThreadSanitizer: its own hand-offs look racy. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) {
  return "called_from_lib:libzmq.so\nrace:libzmq.so\n";
}

#define PROBE 0xFFFFFFFEu
#define MAXP 8

typedef struct part {
  uint8_t b[1024];
  size_t n;
} part;

typedef struct rogue_cli {
  void *ctx, *push, *pull;
} rogue_cli;

/* libzmq sockets set up as Rogue's memory TcpClient sets up its own. */
static void cli_open(rogue_cli *c, uint32_t port) {
  char ep[64];
  int one = 1, zero = 0, rcv = 100;
  c->ctx = zmq_ctx_new();
  c->push = zmq_socket(c->ctx, ZMQ_PUSH);
  c->pull = zmq_socket(c->ctx, ZMQ_PULL);
  zmq_setsockopt(c->push, ZMQ_IMMEDIATE, &one, sizeof one);
  zmq_setsockopt(c->push, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(c->pull, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(c->pull, ZMQ_RCVTIMEO, &rcv, sizeof rcv);
  snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", (unsigned)port);
  zmq_connect(c->push, ep);
  snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", (unsigned)port + 1);
  zmq_connect(c->pull, ep);
}

static void cli_close(rogue_cli *c) {
  zmq_close(c->push);
  zmq_close(c->pull);
  zmq_ctx_term(c->ctx);
}

static void le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Sends a request in Rogue's parts (data only when given); 0 or -1. */
static int send_req(rogue_cli *c, uint32_t id, uint64_t addr, uint32_t size,
                    uint32_t type, const uint8_t *data, size_t dlen, int ndata) {
  uint8_t h[20];
  le32(h, id);
  le64(h + 4, addr);
  le32(h + 12, size);
  le32(h + 16, type);
  const uint8_t *p[5] = {h, h + 4, h + 12, h + 16, data};
  size_t n[5] = {4, 8, 4, 4, dlen};
  int np = 4 + ndata;
  for (int i = 0; i < np; i++)
    if (zmq_send(c->push, p[i], n[i], ZMQ_DONTWAIT | (i < np - 1 ? ZMQ_SNDMORE : 0)) < 0)
      return -1;
  return 0;
}

/* Receives one whole message (up to `limit` s); its part count or 0. */
static int recv_within(rogue_cli *c, part *parts, double limit) {
  int np = 0;
  double end = now_s() + limit;
  for (;;) {
    int more = 0;
    size_t ml = sizeof more;
    int r = zmq_recv(c->pull, parts[np < MAXP ? np : MAXP - 1].b, sizeof parts[0].b, 0);
    if (r < 0) {
      if (np == 0 && now_s() < end) continue;
      return 0;
    }
    parts[np < MAXP ? np : MAXP - 1].n = (size_t)r;
    np++;
    zmq_getsockopt(c->pull, ZMQ_RCVMORE, &more, &ml);
    if (!more) return np;
  }
}

static int recv_msg(rogue_cli *c, part *parts) { return recv_within(c, parts, 5); }

/* Probes until one is answered "OK" (up to 10 s); the probe id or 0. */
static uint32_t probe(rogue_cli *c, uint32_t *next) {
  double end = now_s() + 10;
  part parts[MAXP];
  while (now_s() < end) {
    uint32_t id = (*next)++;
    if (send_req(c, id, 0, 0, PROBE, NULL, 0, 0) != 0) {
      sleep_ms(50);
      continue;
    }
    int np = recv_msg(c, parts);
    if (np == 6 && parts[0].n == 4) {
      uint8_t want[4];
      le32(want, id);
      if (memcmp(parts[0].b, want, 4) == 0 && parts[4].n == 0 && parts[5].n == 2 &&
          memcmp(parts[5].b, "OK", 2) == 0)
        return id;
    }
  }
  return 0;
}

static int part_is(const part *p, const void *bytes, size_t n) {
  return p->n == n && memcmp(p->b, bytes, n) == 0;
}

static void test_rogue_client_against_our_server(void) {
  char err[128];
  sl_mem_node *srv = sl_mem_server_new("127.0.0.1", 0, err, sizeof err);
  CHECK(srv != NULL);
  if (srv == NULL) return;
  sl_mem_node *emu = sl_emulate_new(4, 4096);
  sl_mem_master_set_slave(srv->master, &emu->obj, emu->slave);
  rogue_cli c;
  cli_open(&c, sl_mem_bridge_port(srv));
  uint32_t probe_id = 1;
  CHECK(probe(&c, &probe_id) != 0);
  part p[MAXP];

  /* write id 1, 0x1000, 4 bytes DEADBEEF (the capture in 5.7) */
  const uint8_t data[4] = {0xEF, 0xBE, 0xAD, 0xDE};
  CHECK(send_req(&c, 1, 0x1000, 4, 2, data, 4, 1) == 0);
  CHECK_EQ(recv_msg(&c, p), 6);
  CHECK(part_is(&p[0], "\x01\x00\x00\x00", 4));
  CHECK(part_is(&p[1], "\x00\x10\x00\x00\x00\x00\x00\x00", 8));
  CHECK(part_is(&p[2], "\x04\x00\x00\x00", 4));
  CHECK(part_is(&p[3], "\x02\x00\x00\x00", 4));
  CHECK(part_is(&p[4], data, 4));
  CHECK(part_is(&p[5], "OK", 2));

  /* read id 2, 0x1000, 4 bytes */
  CHECK(send_req(&c, 2, 0x1000, 4, 1, NULL, 0, 0) == 0);
  CHECK_EQ(recv_msg(&c, p), 6);
  CHECK(part_is(&p[0], "\x02\x00\x00\x00", 4));
  CHECK(part_is(&p[1], "\x00\x10\x00\x00\x00\x00\x00\x00", 8));
  CHECK(part_is(&p[2], "\x04\x00\x00\x00", 4));
  CHECK(part_is(&p[3], "\x01\x00\x00\x00", 4));
  CHECK(part_is(&p[4], data, 4));
  CHECK(part_is(&p[5], "OK", 2));

  /* 300 bytes: data parts in ZMTP's long form */
  uint8_t big[300];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7 + 3);
  CHECK(send_req(&c, 3, 0x2000, 300, 2, big, 300, 1) == 0);
  CHECK_EQ(recv_msg(&c, p), 6);
  CHECK(part_is(&p[4], big, 300));
  CHECK(part_is(&p[5], "OK", 2));
  CHECK(send_req(&c, 4, 0x2000, 300, 1, NULL, 0, 0) == 0);
  CHECK_EQ(recv_msg(&c, p), 6);
  CHECK(part_is(&p[0], "\x04\x00\x00\x00", 4));
  CHECK(part_is(&p[2], "\x2C\x01\x00\x00", 4));
  CHECK(part_is(&p[4], big, 300));

  /* an error below comes back as the result text, data still sized */
  sl_mem_master_set_slave(srv->master, NULL, NULL);
  CHECK(send_req(&c, 5, 0x1000, 4, 1, NULL, 0, 0) == 0);
  CHECK_EQ(recv_msg(&c, p), 6);
  CHECK(part_is(&p[0], "\x05\x00\x00\x00", 4));
  CHECK_EQ(p[4].n, 4);
  CHECK(part_is(&p[5], SL_MEM_UNCONNECTED, strlen(SL_MEM_UNCONNECTED)));
  sl_mem_master_set_slave(srv->master, &emu->obj, emu->slave);

  /* a malformed request (3 parts) closes that connection, no answer;
  ** libzmq reconnects and the bridge serves again */
  uint8_t h[8] = {0};
  zmq_send(c.push, h, 4, ZMQ_SNDMORE);
  zmq_send(c.push, h, 8, ZMQ_SNDMORE);
  zmq_send(c.push, h, 4, 0);
  CHECK_EQ(recv_within(&c, p, 0.5), 0);
  CHECK(probe(&c, &probe_id) != 0);
  CHECK(send_req(&c, 6, 0x1000, 4, 1, NULL, 0, 0) == 0);
  CHECK_EQ(recv_msg(&c, p), 6);
  CHECK(part_is(&p[4], data, 4));

  cli_close(&c);
  sl_object_stop(&srv->obj);
  sl_object_unref(&srv->obj);
  sl_object_unref(&emu->obj);
}

static const struct tt_case cases[] = {
    {"Rogue's memory TcpClient (libzmq) against our TcpServer",
     test_rogue_client_against_our_server},
    {NULL, NULL}};

int main(void) {
  sl_log_set_emit(0);
  return tt_main(cases);
}
