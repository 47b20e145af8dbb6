/*
** The stream TCP bridge against libzmq playing Rogue's side over
** 127.0.0.1, in both roles: libzmq PUSH/PULL sockets connect to our
** TcpServer the way Rogue's TcpClient does (PUSH to P, PULL from P+1), and
** bind the way Rogue's TcpServer does for our TcpClient. Messages are
** Rogue's 4 parts (flags LE16, channel, error, payload); bytes and
** metadata must match in both directions. Every wait is bounded.
**
** Built only when libzmq is found (see the zmtp block of CMakeLists.txt).
*/
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "streamlua/streamlua.h"
#include "streamlua/tcp_bridge.h"
#include "support.h"
#include "tt.h"

#include "../../src/core/bytes.h"

/* libzmq is not built with ThreadSanitizer: its own hand-offs look racy. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) {
  return "called_from_lib:libzmq.so\nrace:libzmq.so\n";
}

typedef struct msg {
  uint16_t flags;
  uint8_t channel, error;
  uint32_t size;
} msg;

static const msg msgs[] = {{0x0102, 3, 0, 4},     {0x9E37, 1, 7, 16},
                           {0xFFFF, 255, 255, 300}, {0x0000, 0, 0, 0},
                           {0x1234, 5, 1, 1 << 20}, {0x0001, 2, 0, 255},
                           {0x0002, 2, 0, 256}};
#define NMSGS (sizeof msgs / sizeof msgs[0])

static uint8_t payload_byte(size_t m, size_t i) {
  return (uint8_t)(i * 7 + m * 31 + 1);
}

/* ---- what our side waits for ---- */

static int all_received(void *arg) { return ts_rec_count(arg) == (long)NMSGS; }
static int bridge_ready(void *arg) { return sl_tcp_bridge_ready(sl_tcp_bridge_from_object(arg)); }

/* Waits up to 30 s for cond. */
static int wait_for(int (*cond)(void *), void *arg) { return ts_wait_until(cond, arg, 30); }

/* ---- libzmq's side ---- */

static void *zsock(void *ctx, int type) {
  void *s = zmq_socket(ctx, type);
  int linger = 0, tmo = 20000;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
  zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
  return s;
}

/* Sends message m as Rogue does: 4 parts, SNDMORE on the first three. */
static int zsend(void *s, size_t m) {
  const msg *g = &msgs[m];
  uint8_t fl[2];
  sl_store_le16(fl, g->flags);
  uint8_t *p = malloc(g->size + 1);
  for (uint32_t i = 0; i < g->size; i++) p[i] = payload_byte(m, i);
  int ok = zmq_send(s, fl, 2, ZMQ_SNDMORE) == 2 &&
           zmq_send(s, &g->channel, 1, ZMQ_SNDMORE) == 1 &&
           zmq_send(s, &g->error, 1, ZMQ_SNDMORE) == 1 &&
           zmq_send(s, p, g->size, 0) == (int)g->size;
  free(p);
  return ok;
}

/* Receives one message and checks it is m, part by part. */
static int zrecv_check(void *s, size_t m) {
  const msg *g = &msgs[m];
  zmq_msg_t part;
  int nparts = 0, ok = 1;
  for (;;) {
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, s, 0) < 0) {
      zmq_msg_close(&part);
      return 0;
    }
    const uint8_t *d = zmq_msg_data(&part);
    size_t n = zmq_msg_size(&part);
    switch (nparts) {
      case 0: ok &= n == 2 && sl_load_le16(d) == g->flags; break;
      case 1: ok &= n == 1 && d[0] == g->channel; break;
      case 2: ok &= n == 1 && d[0] == g->error; break;
      case 3:
        ok &= n == g->size;
        for (size_t i = 0; ok && i < n; i++) ok &= d[i] == payload_byte(m, i);
        break;
      default: ok = 0;
    }
    nparts++;
    int more = zmq_msg_more(&part);
    zmq_msg_close(&part);
    if (!more) break;
  }
  return ok && nparts == 4;
}

/* ---- our side ---- */

static sl_frame *our_frame(size_t m) {
  const msg *g = &msgs[m];
  sl_pool *p = sl_pool_new();
  sl_frame *f = sl_pool_req_frame(p, g->size);
  sl_pool_unref(p);
  uint8_t *d = malloc(g->size + 1);
  for (uint32_t i = 0; i < g->size; i++) d[i] = payload_byte(m, i);
  sl_frame_write(f, d, 0, g->size);
  free(d);
  sl_frame_set_flags(f, g->flags);
  sl_frame_set_channel(f, g->channel);
  sl_frame_set_error(f, g->error);
  return f;
}

static int check_received(ts_rec *r) {
  int ok = ts_rec_count(r) == (long)NMSGS;
  for (int m = 0; ok && m < (int)NMSGS; m++) {
    ts_got f;
    const msg *g = &msgs[m];
    ok &= ts_rec_frame(r, m, &f);
    ok &= ok && f.flags == g->flags && f.channel == g->channel && f.error == g->error &&
          f.size == g->size;
    for (uint32_t i = 0; ok && i < g->size; i++) ok &= f.data[i] == payload_byte((size_t)m, i);
  }
  return ok;
}

static char endpoint[64];

static const char *ep(uint32_t port) {
  snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%u", (unsigned)port);
  return endpoint;
}

/* libzmq as Rogue's TcpClient: PUSH to P, PULL from P+1, against our server. */
static void test_our_server(void) {
  sl_error err;
  sl_object *srv = sl_tcp_bridge_object(sl_tcp_bridge_new("127.0.0.1", 0, 1, &err));
  CHECK(srv != NULL);
  if (srv == NULL) return;
  uint32_t port = sl_tcp_bridge_port(sl_tcp_bridge_from_object(srv));
  ts_rec *r = ts_rec_on(srv, NMSGS);
  void *ctx = zmq_ctx_new();
  void *push = zsock(ctx, ZMQ_PUSH), *pull = zsock(ctx, ZMQ_PULL);
  CHECK_EQ(zmq_connect(push, ep(port)), 0);
  CHECK_EQ(zmq_connect(pull, ep(port + 1)), 0);
  for (size_t m = 0; m < NMSGS; m++) CHECK(zsend(push, m));
  CHECK(wait_for(all_received, r));
  CHECK(check_received(r));
  CHECK(wait_for(bridge_ready, srv));
  for (size_t m = 0; m < NMSGS; m++) {
    sl_frame *f = our_frame(m);
    sl_slave_accept(srv->slave, f);
    sl_frame_unref(f);
  }
  for (size_t m = 0; m < NMSGS; m++) CHECK(zrecv_check(pull, m));
  zmq_close(push);
  zmq_close(pull);
  zmq_ctx_term(ctx);
  sl_object_stop(srv);
  sl_object_unref(srv);
  sl_object_unref(ts_rec_object(r));
}

/* libzmq as Rogue's TcpServer: PULL bound on P, PUSH bound on P+1. */
static void test_our_client(void) {
  void *ctx = zmq_ctx_new();
  void *pull = zsock(ctx, ZMQ_PULL), *push = zsock(ctx, ZMQ_PUSH);
  uint32_t port = 0;
  for (uint32_t p = 41000 + (uint32_t)(getpid() % 4000); p < 65000; p += 2) {
    if (zmq_bind(pull, ep(p)) != 0) continue;
    if (zmq_bind(push, ep(p + 1)) == 0) {
      port = p;
      break;
    }
    zmq_unbind(pull, ep(p));
  }
  CHECK(port != 0);
  sl_error err;
  sl_object *cli = sl_tcp_bridge_object(sl_tcp_bridge_new("127.0.0.1", port, 0, &err));
  CHECK(cli != NULL);
  if (cli == NULL) return;
  ts_rec *r = ts_rec_on(cli, NMSGS);
  CHECK(wait_for(bridge_ready, cli));
  for (size_t m = 0; m < NMSGS; m++) {
    sl_frame *f = our_frame(m);
    sl_slave_accept(cli->slave, f);
    sl_frame_unref(f);
  }
  for (size_t m = 0; m < NMSGS; m++) CHECK(zrecv_check(pull, m));
  for (size_t m = 0; m < NMSGS; m++) CHECK(zsend(push, m));
  CHECK(wait_for(all_received, r));
  CHECK(check_received(r));
  zmq_close(push);
  zmq_close(pull);
  zmq_ctx_term(ctx);
  sl_object_stop(cli);
  sl_object_unref(cli);
  sl_object_unref(ts_rec_object(r));
}

static const struct tt_case cases[] = {
    {"libzmq PUSH/PULL against our TcpServer", test_our_server},
    {"our TcpClient against libzmq bound PULL/PUSH", test_our_client},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
