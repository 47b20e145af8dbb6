/*
** The memory TcpServer against clients that take more than they give:
** raw sockets speaking ZMTP by hand. A client that asks for large reads
** and never reads its responses, and one that writes faster than the slave
** serves, make the server stop reading their requests (nothing dropped);
** the figures are the server's own counters. A response goes only to the
** client that asked: a second client, or a bare listener on port P+1
** connected last, gets none of it. Every wait is bounded.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/tcp.h>   /* struct tcp_info with tcpi_segs_in */
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "streamlua/mem_bridge.h"
#include "streamlua/memory.h"
#include "streamlua/streamlua.h"
#include "support.h"
#include "tt.h"

static sl_mem_bridge *server(sl_object *slave) {
  sl_log_set_emit(0);
  sl_mem_bridge *srv = sl_mem_server_new("127.0.0.1", 0, NULL);
  if (srv == NULL) abort();
  sl_mem_master_set_slave(sl_mem_bridge_object(srv)->mem_master, slave);
  return srv;
}

static void done(sl_mem_bridge *srv, sl_object *slave) {
  sl_object_stop(sl_mem_bridge_object(srv));
  sl_object_unref(sl_mem_bridge_object(srv));
  sl_object_unref(slave);
  sl_log_set_emit(1);
}

/* A request: id, address, size, type (and data for a write). */
/* (Not inlined: a caller's small buffer for reads is not a write's.) */
__attribute__((noinline)) static size_t request(uint8_t *out, size_t cap, uint32_t id,
                                                uint32_t size, uint32_t type) {
  uint8_t f[20] = {0};
  for (int i = 0; i < 4; i++) {
    f[i] = (uint8_t)(id >> (8 * i));
    f[12 + i] = (uint8_t)(size >> (8 * i));
    f[16 + i] = (uint8_t)(type >> (8 * i));
  }
  int write = sl_mem_type_is_write(type);
  static const size_t off[4] = {0, 4, 12, 16}, len[4] = {4, 8, 4, 4};
  size_t n = 0;
  for (int i = 0; i < 4; i++) {
    n += sl_zmtp_frame_header(out + n, len[i], i < 3 || write);
    memcpy(out + n, f + off[i], len[i]);
    n += len[i];
  }
  if (write) {
    if (n + 9 + (size_t)size > cap) return 0;   /* does not fit: sends nothing */
    n += sl_zmtp_frame_header(out + n, size, 0);
    memset(out + n, 0x5A, size);
    n += size;
  }
  return n;
}

/* A client on raw sockets: requests to P, responses from P+1 (a small
** receive buffer there, so responses it does not read stay with us). */
typedef struct raw_cli {
  int req, rsp;
} raw_cli;

static void raw_open(raw_cli *c, uint32_t port) {
  uint8_t h[128];
  c->rsp = ts_socket(30);
  int small = 64 * 1024;
  setsockopt(c->rsp, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  CHECK(ts_connect(c->rsp, port + 1) == 0);
  CHECK(ts_send_all(c->rsp, h, ts_zmtp_hello(h, SL_ZMTP_PULL)));
  c->req = ts_dial(port);
  CHECK(ts_send_all(c->req, h, ts_zmtp_hello(h, SL_ZMTP_PUSH)));
}

static void raw_close(raw_cli *c) {
  close(c->req);
  close(c->rsp);
}

/* Waits until `name` is `want` (bounded); true if it was seen so. The
** value seen is the answer, not a second reading: a server that served
** what it took may take the next request a moment later. */
static int counter_is(sl_mem_bridge *n, const char *name, uint64_t want) {
  sl_object *o = sl_mem_bridge_object(n);
  double end = now_s() + 20;
  uint64_t v;
  while ((v = ts_counter(o, name)) != want && now_s() < end) sleep_ms(5);
  return v == want;
}

#define NREAD 40
#define READ_SIZE (512u * 1024)

static void test_unread_responses(void) {
  sl_object *emu = sl_emulate_object(sl_emulate_new(4, 0, NULL));
  sl_mem_bridge *srv = server(emu);
  sl_mem_server_set_max_response_bytes(srv, 1u << 20);
  sl_mem_server_set_max_request_bytes(srv, 2u << 20);
  raw_cli c;
  raw_open(&c, sl_mem_bridge_port(srv));
  uint8_t buf[64];
  for (uint32_t i = 0; i < NREAD; i++)
    CHECK(ts_send_all(c.req, buf, request(buf, sizeof buf, i + 1, READ_SIZE, SL_MEM_READ)));
  /* the server stops reading, serves what it took, and holds it */
  CHECK(ts_counter_reaches(sl_mem_bridge_object(srv), "readPauses", 1, 20));
  CHECK(counter_is(srv, "requests", 0));
  /* the socket takes what fits, a moment later the rest is held here */
  CHECK(ts_counter_reaches(sl_mem_bridge_object(srv), "responseBytes", 1, 20));
  uint64_t held = ts_counter(sl_mem_bridge_object(srv), "responseBytes");
  printf("  responses held for a client that does not read: %llu bytes\n",
         (unsigned long long)held);
  CHECK(held > 0);
  CHECK(held <= (1u << 20) + (2u << 20) + READ_SIZE + 64);
  /* nothing was dropped: reading the responses brings every one */
  size_t want = 64 + 28 + (size_t)NREAD * (28 + 9 + READ_SIZE + 4), got = 0;
  static uint8_t rb[1 << 16];
  for (ssize_t n; got < want && (n = recv(c.rsp, rb, sizeof rb, 0)) > 0;) got += (size_t)n;
  CHECK_EQ(got, want);
  CHECK(counter_is(srv, "responseBytes", 0));
  CHECK_EQ(ts_counter(sl_mem_bridge_object(srv), "unrouted"), 0);
  raw_close(&c);
  done(srv, emu);
}

/* A slave that never answers: requests wait for the master's timeout. */
static sl_object *mute_new(void) {
  return &ts_mem_rec_new(4, 0xFFFFFFFFu, TS_MEM_NEVER)->obj;
}

static void test_slow_slave(void) {
  sl_object *slow = mute_new();
  sl_mem_bridge *srv = server(slow);
  sl_mem_master_set_timeout(sl_mem_bridge_object(srv)->mem_master, 60000000);
  sl_mem_server_set_max_requests(srv, 8);
  raw_cli c;
  raw_open(&c, sl_mem_bridge_port(srv));
  static uint8_t buf[64 * 1024 + 64];
  struct timeval tv = {5, 0};            /* a send stuck this long: full */
  setsockopt(c.req, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  for (uint32_t i = 0; i < 100; i++) {   /* 6.4 MiB: more than the kernel holds */
    size_t n = request(buf, sizeof buf, i + 1, 64 * 1024, SL_MEM_WRITE);
    if (send(c.req, buf, n, MSG_NOSIGNAL) != (ssize_t)n) break;   /* full: fine */
  }
  CHECK(ts_counter_reaches(sl_mem_bridge_object(srv), "readPauses", 1, 20));
  CHECK(counter_is(srv, "requests", 8));
  CHECK_EQ(ts_counter(sl_mem_bridge_object(srv), "requestBytes"), 8 * 64 * 1024);
  raw_close(&c);
  double t0 = now_s();
  sl_object_stop(sl_mem_bridge_object(srv));             /* prompt, with the slave stuck */
  CHECK(now_s() - t0 < 30);              /* not the requests' 60 s timeout */
  done(srv, slow);
}

/* Our client with a master in front of it. */
typedef struct cli {
  sl_mem_bridge *node;
  sl_mem_master mm;
} cli;

static void cli_open(cli *c, uint32_t port) {
  c->node = sl_mem_client_new("127.0.0.1", port, NULL);
  if (c->node == NULL) abort();
  sl_mem_master_init(&c->mm, NULL);
  sl_mem_master_set_slave(&c->mm, sl_mem_bridge_object(c->node));
  sl_mem_master_set_timeout(&c->mm, 5000000);
  CHECK(sl_mem_client_wait_ready(c->node, 10000000, 100000));
}

static void cli_close(cli *c) {
  sl_mem_master_fini(&c->mm);
  sl_object_stop(sl_mem_bridge_object(c->node));
  sl_object_unref(sl_mem_bridge_object(c->node));
}

/* One write, waited for. */
static int write_one(cli *c, uint64_t addr, uint32_t value) {
  sl_transaction *t = sl_mem_master_request(&c->mm, addr, 4, &value, SL_MEM_WRITE, NULL, NULL);
  int ok = t != NULL && sl_mem_master_wait(t) == SL_OK;
  sl_transaction_unref(t);
  return ok;
}

/* A write, then a read of it back. */
static int roundtrip(cli *c, uint64_t addr, uint32_t value) {
  int ok = write_one(c, addr, value);
  sl_transaction *t = sl_mem_master_request(&c->mm, addr, 4, NULL, SL_MEM_READ, NULL, NULL);
  uint32_t back = 0;
  if (t != NULL && sl_mem_master_wait(t) == SL_OK) memcpy(&back, sl_transaction_data(t), 4);
  sl_transaction_unref(t);
  return ok && back == value;
}

/* A server on an emulated memory and one client of it, both connections
** up (one write done). */
typedef struct served {
  sl_object *emu;
  sl_mem_bridge *srv;
  uint32_t port;
  cli a;
} served;

static void served_open(served *s) {
  s->emu = sl_emulate_object(sl_emulate_new(4, 0, NULL));
  s->srv = server(s->emu);
  s->port = sl_mem_bridge_port(s->srv);
  cli_open(&s->a, s->port);
  CHECK(write_one(&s->a, 0x100, 1));
}

static void served_close(served *s) {
  cli_close(&s->a);
  done(s->srv, s->emu);
}

/* A connected TCP socket of this process with local port `local` (0: any)
** and peer port `peer` (0: any), or -1. */
static int socket_of(uint32_t local, uint32_t peer) {
  for (int fd = 3; fd < 4096; fd++) {
    struct sockaddr_in a, b;
    socklen_t la = sizeof a, lb = sizeof b;
    int type = 0;
    socklen_t lt = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &lt) != 0 || type != SOCK_STREAM ||
        getsockname(fd, (struct sockaddr *)&a, &la) != 0 ||
        getpeername(fd, (struct sockaddr *)&b, &lb) != 0 || a.sin_family != AF_INET)
      continue;
    if ((local == 0 || ntohs(a.sin_port) == local) && (peer == 0 || ntohs(b.sin_port) == peer))
      return fd;
  }
  return -1;
}

#ifdef TCP_QUICKACK
static int acks_at_once(int fd) {
  int v = -1;
  socklen_t n = sizeof v;
  return getsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &v, &n) == 0 ? v : -1;
}

/* Both receiving sockets (the server's requests, the client's responses)
** leave a small message's ACK for later once they have read one: set to
** ACK at once here (as a delayed-ACK timer that fired leaves them), each
** is back in the kernel's ping-pong mode after its next read. One write
** per look: after its first read a socket owes no ACK, so no timer can
** end the mode before we look. */
static void test_late_acks(void) {
  served s;
  served_open(&s);
  int srx = socket_of(s.port, 0), crx = socket_of(0, s.port + 1);
  CHECK(srx >= 0 && crx >= 0);
  int late = 0;
  for (uint32_t i = 0; i < 10 && !late; i++) {
    int on = 1;
    CHECK_EQ(setsockopt(srx, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on), 0);
    CHECK_EQ(setsockopt(crx, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on), 0);
    CHECK_EQ(acks_at_once(srx), 1);
    CHECK_EQ(acks_at_once(crx), 1);
    sleep_ms(20);                     /* past the readers' interval between asks */
    CHECK(write_one(&s.a, 0x100, i));
    late = acks_at_once(srx) == 0 && acks_at_once(crx) == 0;
  }
  CHECK(late);
  served_close(&s);
}

static uint32_t tcp_info_of(int fd, int segs_in) {
  struct tcp_info ti;
  socklen_t n = sizeof ti;
  memset(&ti, 0, sizeof ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &n) != 0) return 0;
  return segs_in ? ti.tcpi_segs_in : ti.tcpi_unacked;
}

static int all_acked(void *arg) { return tcp_info_of(*(int *)arg, 0) == 0; }

/* A reader that has answered (the server's thread) or sent its next
** request (a caller) first sends the ACK it owes for what it read, not
** with its next read: each small message gets its own ACK (without that,
** Linux sends one per two, from the read of the second). Counted on the
** sending sockets of both sides (their segments in are those ACKs). */
static void test_acks_after_answers(void) {
  served s;
  served_open(&s);
  int ctx = socket_of(0, s.port), stx = socket_of(s.port + 1, 0);
  CHECK(ctx >= 0 && stx >= 0);
  struct tcp_info probe;
  socklen_t plen = sizeof probe;
  memset(&probe, 0, sizeof probe);
  if (getsockopt(ctx, IPPROTO_TCP, TCP_INFO, &probe, &plen) != 0 ||
      plen < offsetof(struct tcp_info, tcpi_segs_in) + sizeof probe.tcpi_segs_in ||
      probe.tcpi_segs_in == 0) {
    /* qemu-user passes no whole TCP_INFO: the ACKs cannot be counted there */
    printf("  TCP_INFO without segment counts (%u bytes): ACKs not counted\n", (unsigned)plen);
    served_close(&s);
    return;
  }
  CHECK(ts_wait_until(all_acked, &ctx, 20));
  CHECK(ts_wait_until(all_acked, &stx, 20));
  uint32_t c0 = tcp_info_of(ctx, 1), s0 = tcp_info_of(stx, 1);
  enum { N = 64 };
  for (uint32_t i = 0; i < N; i++) CHECK(write_one(&s.a, 0x100, i));
  CHECK(ts_wait_until(all_acked, &ctx, 20));
  CHECK(ts_wait_until(all_acked, &stx, 20));
  uint32_t creq = tcp_info_of(ctx, 1) - c0, sresp = tcp_info_of(stx, 1) - s0;
  printf("  ACKs for %d requests: %u; for their responses: %u\n", N, (unsigned)creq,
         (unsigned)sresp);
  CHECK(creq >= N * 3 / 4);           /* one each, less a few a loaded machine delays */
  CHECK(sresp >= N * 3 / 4);
  served_close(&s);
}
#endif

static void test_each_client_gets_its_own(void) {
  sl_object *emu = sl_emulate_object(sl_emulate_new(4, 0, NULL));
  sl_mem_bridge *srv = server(emu);
  uint32_t port = sl_mem_bridge_port(srv);
  cli a, b;
  cli_open(&a, port);
  cli_open(&b, port);
  /* a bare listener on P+1, connected last, handshaken */
  int snoop = ts_dial(port + 1);
  uint8_t h[128];
  CHECK(ts_send_all(snoop, h, ts_zmtp_hello(h, SL_ZMTP_PULL)));
  CHECK(counter_is(srv, "connections", 5));
  for (uint32_t i = 0; i < 20; i++) {
    CHECK(roundtrip(&a, 0x1000, 0xA0000000u + i));
    CHECK(roundtrip(&b, 0x2000, 0xB0000000u + i));
  }
  CHECK_EQ(ts_counter(sl_mem_bridge_object(srv), "unrouted"), 0);
  /* the listener got the server's greeting and READY, nothing more */
  size_t got = 0;
  uint8_t rb[4096];
  for (ssize_t n; got < 92 && (n = recv(snoop, rb, sizeof rb, 0)) > 0;) got += (size_t)n;
  CHECK_EQ(got, 92);
  CHECK_EQ(recv(snoop, rb, sizeof rb, MSG_DONTWAIT), -1);
  close(snoop);
  cli_close(&a);
  cli_close(&b);
  done(srv, emu);
}

/* A request from a client with no response connection: dropped after a
** bounded wait, counted, logged. */
static void test_no_response_connection(void) {
  sl_object *emu = sl_emulate_object(sl_emulate_new(4, 0, NULL));
  sl_mem_bridge *srv = server(emu);
  int req = ts_dial(sl_mem_bridge_port(srv));
  uint8_t buf[128];
  CHECK(ts_send_all(req, buf, ts_zmtp_hello(buf, SL_ZMTP_PUSH)));
  CHECK(ts_send_all(req, buf, request(buf, sizeof buf, 9, 4, SL_MEM_READ)));
  CHECK(ts_counter_reaches(sl_mem_bridge_object(srv), "unrouted", 1, 20));
  CHECK(counter_is(srv, "requests", 0));
  close(req);
  done(srv, emu);
}

/* A malformed request right behind an answer (read by the server's own
** thread while it looks for the next request): the connection is closed,
** counted and logged, and a well-behaved client is served after it. */
static void test_hostile_behind_answers(void) {
  sl_object *emu = sl_emulate_object(sl_emulate_new(4, 0, NULL));
  sl_mem_bridge *srv = server(emu);
  sl_object *o = sl_mem_bridge_object(srv);
  raw_cli c;
  raw_open(&c, sl_mem_bridge_port(srv));
  uint8_t buf[128];
  static uint8_t rb[4096];
  size_t want = 64 + 28, got = 0;     /* greeting and READY */
  for (uint32_t i = 0; i < 20; i++) {
    CHECK(ts_send_all(c.req, buf, request(buf, sizeof buf, i + 1, 4, SL_MEM_WRITE)));
    want += 38;                       /* six parts: 22 bytes and six headers */
    for (ssize_t n; got < want && (n = recv(c.rsp, rb, sizeof rb, 0)) > 0;) got += (size_t)n;
  }
  CHECK_EQ(got, want);
  static const uint8_t junk[] = {0x00, 0x02, 'x', 'y'};   /* a one-part message */
  CHECK(ts_send_all(c.req, junk, sizeof junk));
  CHECK(ts_counter_reaches(o, "errors", 1, 20));
  ssize_t n;
  size_t hello = 0;                   /* the server's greeting and READY, then the end */
  while ((n = recv(c.req, rb, sizeof rb, 0)) > 0) hello += (size_t)n;
  CHECK_EQ(n, 0);
  CHECK_EQ(hello, 64 + 28);
  raw_close(&c);
  cli a;
  cli_open(&a, sl_mem_bridge_port(srv));
  CHECK(roundtrip(&a, 0x100, 0x12345678));
  cli_close(&a);
  CHECK_EQ(ts_counter(o, "errors"), 1);
  done(srv, emu);
}

static const struct tt_case cases[] = {
    {"a malformed request behind answers: closed, counted, others served",
     test_hostile_behind_answers},
    {"a client that never reads its responses: reading stops, nothing lost",
     test_unread_responses},
    {"a slave slower than the requests: the queue stops at its bound", test_slow_slave},
    {"two clients and a listener: each response goes to the client that asked",
     test_each_client_gets_its_own},
    {"a request with no response connection is dropped and counted",
     test_no_response_connection},
#ifdef TCP_QUICKACK
    {"both receiving sockets ACK small messages late after a read", test_late_acks},
    {"a reader ACKs each message once it has answered or asked again",
     test_acks_after_answers},
#endif
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
