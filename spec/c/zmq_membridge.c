/*
** The memory TCP bridge against libzmq in Rogue's two roles, over
** 127.0.0.1, with Rogue's socket options and Rogue's parts (request: id
** LE32, address LE64, size LE32, type LE32 [, data]; response: the four
** echoed, data, result text):
**
** - libzmq as Rogue's memory TcpClient (PUSH connects to our TcpServer's
**   P, PULL to P+1): the responses must be Rogue's six parts, byte for
**   byte; malformed requests close their connection and the next good
**   one is served.
** - libzmq as Rogue's memory TcpServer (PULL bound on P, PUSH bound on
**   P+1) against our TcpClient: the requests must be Rogue's parts, byte
**   for byte; Rogue's answers complete our transactions; malformed
**   answers close the connection or fail the transaction clearly, and
**   the next good one goes through.
**
** A socket monitor on the libzmq side sees each connection our side
** closes. Every wait is bounded.
**
** Built only when libzmq is found (see the zmtp block of CMakeLists.txt).
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "streamlua/mem_bridge.h"
#include "streamlua/streamlua.h"
#include "tt.h"

#include "../../src/core/bytes.h"

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

/* Sends a request in Rogue's parts (data only when given); 0 or -1. */
static int send_req(rogue_cli *c, uint32_t id, uint64_t addr, uint32_t size,
                    uint32_t type, const uint8_t *data, size_t dlen, int ndata) {
  uint8_t h[20];
  sl_store_le32(h, id);
  sl_store_le64(h + 4, addr);
  sl_store_le32(h + 12, size);
  sl_store_le32(h + 16, type);
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

static int recv_msg(rogue_cli *c, part *parts) { return recv_within(c, parts, 20); }

/* Probes until one is answered "OK" (up to 20 s); the probe id or 0. */
static uint32_t probe(rogue_cli *c, uint32_t *next) {
  double end = now_s() + 20;
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
      sl_store_le32(want, id);
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
  sl_error err;
  sl_mem_bridge *srv = sl_mem_server_new("127.0.0.1", 0, &err);
  CHECK(srv != NULL);
  if (srv == NULL) return;
  sl_object *emu = sl_emulate_object(sl_emulate_new(4, 4096, NULL));
  sl_mem_master_set_slave(sl_mem_bridge_object(srv)->mem_master, emu);
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
  sl_mem_master_set_slave(sl_mem_bridge_object(srv)->mem_master, NULL);
  CHECK(send_req(&c, 5, 0x1000, 4, 1, NULL, 0, 0) == 0);
  CHECK_EQ(recv_msg(&c, p), 6);
  CHECK(part_is(&p[0], "\x05\x00\x00\x00", 4));
  CHECK_EQ(p[4].n, 4);
  CHECK(part_is(&p[5], SL_MEM_UNCONNECTED, strlen(SL_MEM_UNCONNECTED)));
  sl_mem_master_set_slave(sl_mem_bridge_object(srv)->mem_master, emu);

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
  sl_object_stop(sl_mem_bridge_object(srv));
  sl_object_unref(sl_mem_bridge_object(srv));
  sl_object_unref(emu);
}

/* ---- libzmq's side: socket monitors and arbitrary messages ---- */

/* A PAIR socket receiving the DISCONNECTED events of `sock`. */
static void *monitor_open(void *ctx, void *sock, const char *name) {
  char ep[64];
  int rcv = 100, zero = 0;
  snprintf(ep, sizeof ep, "inproc://%s", name);
  if (zmq_socket_monitor(sock, ep, ZMQ_EVENT_DISCONNECTED) != 0) return NULL;
  void *mon = zmq_socket(ctx, ZMQ_PAIR);
  zmq_setsockopt(mon, ZMQ_RCVTIMEO, &rcv, sizeof rcv);
  zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof zero);
  zmq_connect(mon, ep);
  return mon;
}

static void monitor_close(void *sock, void *mon) {
  zmq_socket_monitor(sock, NULL, 0);
  zmq_close(mon);
}

/* Reads one monitor event (two frames); its number, or -1 (none). */
static int monitor_event(void *mon, int flags) {
  zmq_msg_t m;
  zmq_msg_init(&m);
  if (zmq_msg_recv(&m, mon, flags) < 0) {
    zmq_msg_close(&m);
    return -1;
  }
  uint16_t ev = 0;
  if (zmq_msg_size(&m) >= 2) memcpy(&ev, zmq_msg_data(&m), 2);
  int more = zmq_msg_more(&m);
  zmq_msg_close(&m);
  if (more) {
    zmq_msg_init(&m);
    zmq_msg_recv(&m, mon, 0);
    zmq_msg_close(&m);
  }
  return ev;
}

/* Forgets the events seen so far. */
static void monitor_drain(void *mon) {
  while (monitor_event(mon, ZMQ_DONTWAIT) >= 0) {
  }
}

/* Did a connection of the watched socket close within `limit` s? */
static int disconnected_within(void *mon, double limit) {
  double end = now_s() + limit;
  while (now_s() < end)
    if (monitor_event(mon, 0) == ZMQ_EVENT_DISCONNECTED) return 1;
  return 0;
}

typedef struct spart {
  const void *p;
  size_t n;
} spart;

/* Sends np parts as one message; 0 or -1. */
static int send_parts(void *sock, const spart *ps, int np, int flags) {
  for (int i = 0; i < np; i++)
    if (zmq_send(sock, ps[i].p, ps[i].n, flags | (i < np - 1 ? ZMQ_SNDMORE : 0)) < 0)
      return -1;
  return 0;
}

/* Receives one whole message on sock (up to `limit` s); its part count or 0. */
static int recv_sock(void *sock, part *parts, double limit) {
  int np = 0;
  double end = now_s() + limit;
  for (;;) {
    int more = 0;
    size_t ml = sizeof more;
    int r = zmq_recv(sock, parts[np < MAXP ? np : MAXP - 1].b, sizeof parts[0].b, 0);
    if (r < 0) {
      if (np == 0 && now_s() < end) continue;
      return 0;
    }
    parts[np < MAXP ? np : MAXP - 1].n = (size_t)r;
    np++;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml);
    if (!more) return np;
  }
}

static uint32_t part32(const part *p) {
  return p->n == 4 ? sl_load_le32(p->b) : 0;
}

/* Probes until one of this call's probes is answered "OK", a fresh
** probe every 0.3 s, up to 20 s; 1 or 0. (A probe libzmq takes just as
** it sees a connection close may go down with that connection.) */
static int probe_soon(rogue_cli *c, uint32_t *next) {
  uint32_t first = *next;
  double end = now_s() + 20;
  part p[MAXP];
  while (now_s() < end) {
    uint32_t id = (*next)++;
    if (send_req(c, id, 0, 0, PROBE, NULL, 0, 0) != 0) {
      sleep_ms(20);
      continue;
    }
    double window = now_s() + 0.3;
    while (now_s() < window) {
      int np = recv_within(c, p, 0.05);
      uint32_t got = part32(&p[0]);
      if (np == 6 && got >= first && got <= id && part32(&p[3]) == PROBE &&
          part_is(&p[5], "OK", 2))
        return 1;
    }
  }
  return 0;
}

/* Receives the next answer that is not a probe's (up to 20 s). */
static int recv_reply(rogue_cli *c, part *p) {
  double end = now_s() + 20;
  while (now_s() < end) {
    int np = recv_within(c, p, 0.1);
    if (np > 0 && !(np >= 4 && part32(&p[3]) == PROBE)) return np;
  }
  return 0;
}

/* ---- our TcpServer against malformed requests ---- */

enum { CLOSES, ANSWERS };

typedef struct bad_request {
  const char *name;
  int outcome;
  int np;                  /* parts to send */
  size_t n[10];            /* their sizes */
  uint32_t size, type;     /* the size and type fields */
} bad_request;

/* The first four non-empty parts carry the fields in order (id 7,
** address 0x1000, size, type), cut or run on to the part's size; empty
** parts, and the parts after the fourth field, are filler bytes. */
static const bad_request bad_requests[] = {
    {"one part", CLOSES, 1, {4}, 4, 1},
    {"three parts", CLOSES, 3, {4, 8, 4}, 4, 1},
    {"six parts", CLOSES, 6, {4, 8, 4, 4, 4, 4}, 4, 1},
    {"nine parts", CLOSES, 9, {4, 8, 4, 4, 4, 4, 4, 4, 4}, 4, 1},
    {"a 3-byte id", CLOSES, 4, {3, 8, 4, 4}, 4, 1},
    {"a 7-byte address", CLOSES, 4, {4, 7, 4, 4}, 4, 1},
    {"a 5-byte size", CLOSES, 4, {4, 8, 5, 4}, 4, 1},
    {"a 3-byte type", CLOSES, 4, {4, 8, 4, 3}, 4, 1},
    {"an extra empty leading part", CLOSES, 5, {0, 4, 8, 4, 4}, 4, 1},
    {"four empty parts", CLOSES, 4, {0, 0, 0, 0}, 4, 1},
    {"a write without its data", CLOSES, 4, {4, 8, 4, 4}, 4, 2},
    {"a write whose data is shorter than its size", CLOSES, 5, {4, 8, 4, 4, 3}, 4, 2},
    {"a post whose data is longer than its size", CLOSES, 5, {4, 8, 4, 4, 12}, 8, 3},
    {"a write of 0xFFFFFFFF bytes carrying 4", CLOSES, 5, {4, 8, 4, 4, 4}, 0xFFFFFFFFu, 2},
    {"a read of 0xFFFFFFFF bytes", CLOSES, 4, {4, 8, 4, 4}, 0xFFFFFFFFu, 1},
    {"a probe of size 4", CLOSES, 4, {4, 8, 4, 4}, 4, PROBE},
    {"a probe with a data part", CLOSES, 5, {4, 8, 4, 4, 0}, 0, PROBE},
    {"a read with a stray fifth part", ANSWERS, 5, {4, 8, 4, 4, 4}, 4, 1},
    {"an unknown type (7), served as a read", ANSWERS, 4, {4, 8, 4, 4}, 4, 7},
    {"a read of 0 bytes", ANSWERS, 4, {4, 8, 4, 4}, 0, 1},
    {NULL, 0, 0, {0}, 0, 0}};

static void test_our_server_against_malformed_requests(void) {
  sl_error err;
  sl_mem_bridge *srv = sl_mem_server_new("127.0.0.1", 0, &err);
  CHECK(srv != NULL);
  if (srv == NULL) return;
  sl_object *emu = sl_emulate_object(sl_emulate_new(4, 4096, NULL));
  sl_mem_master_set_slave(sl_mem_bridge_object(srv)->mem_master, emu);
  rogue_cli c;
  cli_open(&c, sl_mem_bridge_port(srv));
  void *mon = monitor_open(c.ctx, c.push, "mon-cli-push");
  CHECK(mon != NULL);
  uint32_t probe_id = 1;
  CHECK(probe(&c, &probe_id) != 0);
  part p[MAXP];
  const uint8_t good[4] = {0x5A, 0xA5, 0x0F, 0xF0};
  CHECK(send_req(&c, 1, 0x1000, 4, 2, good, 4, 1) == 0);
  CHECK_EQ(recv_msg(&c, p), 6);

  for (const bad_request *b = bad_requests; b->name != NULL; b++) {
    uint8_t h[20], junk[64];
    memset(junk, 0xEE, sizeof junk);
    sl_store_le32(h, 7);
    sl_store_le64(h + 4, 0x1000);
    sl_store_le32(h + 12, b->size);
    sl_store_le32(h + 16, b->type);
    spart ps[10];
    int field = 0;
    for (int i = 0; i < b->np; i++) {
      size_t n = b->n[i];
      if (n == 0 || field >= 4) {
        ps[i] = (spart){junk, n};
        continue;
      }
      static const size_t off[4] = {0, 4, 12, 16};
      ps[i] = (spart){n <= 8 && off[field] + n <= 20 ? h + off[field] : junk, n};
      field++;
    }
    monitor_drain(mon);
    if (!CHECK(send_parts(c.push, ps, b->np, ZMQ_DONTWAIT) == 0)) {
      printf("  case: %s (not sent)\n", b->name);
      continue;
    }
    if (b->outcome == CLOSES) {
      if (!CHECK(disconnected_within(mon, 20))) printf("  case: %s (not closed)\n", b->name);
      /* no answer came for it, and a new connection is served */
      CHECK(probe_soon(&c, &probe_id));
    } else {
      int np = recv_reply(&c, p);
      if (!CHECK_EQ(np, 6)) {
        printf("  case: %s (no answer)\n", b->name);
        continue;
      }
      CHECK_EQ(part32(&p[0]), 7);
      CHECK_EQ(part32(&p[2]), b->size);
      CHECK_EQ(part32(&p[3]), b->type);
      CHECK_EQ(p[4].n, b->size);
      CHECK(b->size == 0 || memcmp(p[4].b, good, 4) == 0);
      CHECK(part_is(&p[5], "OK", 2));
    }
    /* a good read right after */
    CHECK(send_req(&c, 8, 0x1000, 4, 1, NULL, 0, 0) == 0);
    if (!CHECK_EQ(recv_reply(&c, p), 6)) printf("  case: %s (no good read after)\n", b->name);
    CHECK(part_is(&p[0], "\x08\x00\x00\x00", 4));
    CHECK(part_is(&p[4], good, 4));
  }

  monitor_close(c.push, mon);
  cli_close(&c);
  sl_object_stop(sl_mem_bridge_object(srv));
  sl_object_unref(sl_mem_bridge_object(srv));
  sl_object_unref(emu);
}

/* ---- libzmq as Rogue's memory TcpServer, our TcpClient against it ---- */

typedef struct rogue_srv {
  void *ctx, *pull, *push, *mon;
  uint32_t port;
} rogue_srv;

/* Binds PULL on a free port P and PUSH on P+1, with Rogue's options (and
** a bounded send); 0, or -1 when no such pair was found. */
static int srv_open(rogue_srv *s) {
  int zero = 0, rcv = 100, snd = 20000;
  s->ctx = zmq_ctx_new();
  for (int attempt = 0; attempt < 50; attempt++) {
    s->pull = zmq_socket(s->ctx, ZMQ_PULL);
    s->push = zmq_socket(s->ctx, ZMQ_PUSH);
    zmq_setsockopt(s->pull, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s->push, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s->pull, ZMQ_RCVTIMEO, &rcv, sizeof rcv);
    zmq_setsockopt(s->push, ZMQ_SNDTIMEO, &snd, sizeof snd);
    char ep[128];
    size_t n = sizeof ep;
    if (zmq_bind(s->pull, "tcp://127.0.0.1:*") == 0 &&
        zmq_getsockopt(s->pull, ZMQ_LAST_ENDPOINT, ep, &n) == 0) {
      const char *colon = strrchr(ep, ':');
      unsigned port = colon != NULL ? (unsigned)atoi(colon + 1) : 0;
      snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", port + 1);
      if (port > 0 && port < 65535 && zmq_bind(s->push, ep) == 0) {
        s->port = port;
        s->mon = monitor_open(s->ctx, s->push, "mon-srv-push");
        return s->mon != NULL ? 0 : -1;
      }
    }
    zmq_close(s->pull);
    zmq_close(s->push);
  }
  s->pull = s->push = s->mon = NULL;
  return -1;
}

static void srv_close(rogue_srv *s) {
  if (s->mon != NULL) monitor_close(s->push, s->mon);
  if (s->pull != NULL) zmq_close(s->pull);
  if (s->push != NULL) zmq_close(s->push);
  zmq_ctx_term(s->ctx);
}

/* Rogue's response to the request in req: the four parts echoed, data,
** result. */
static int answer(rogue_srv *s, const part *req, const void *data, size_t dlen,
                  const char *result) {
  spart ps[6] = {{req[0].b, req[0].n}, {req[1].b, req[1].n}, {req[2].b, req[2].n},
                 {req[3].b, req[3].n}, {data, dlen}, {result, strlen(result)}};
  return send_parts(s->push, ps, 6, 0);
}

/* Our client and a master in front of it. */
typedef struct our_cli {
  sl_mem_bridge *cli;
  sl_mem_master mm;
} our_cli;

static int our_open(our_cli *o, uint32_t port) {
  sl_error err;
  o->cli = sl_mem_client_new("127.0.0.1", port, &err);
  if (o->cli == NULL) return -1;
  sl_mem_master_init(&o->mm, NULL);
  sl_mem_master_set_slave(&o->mm, sl_mem_bridge_object(o->cli));
  sl_mem_master_set_timeout(&o->mm, 20000000);
  return 0;
}

static void our_close(our_cli *o) {
  sl_mem_master_fini(&o->mm);
  sl_object_stop(sl_mem_bridge_object(o->cli));
  sl_object_unref(sl_mem_bridge_object(o->cli));
}

typedef struct ready_job {
  sl_mem_bridge *cli;
  atomic_int done, ok;
} ready_job;

static void *ready_main(void *arg) {
  ready_job *j = arg;
  atomic_store(&j->ok, sl_mem_client_wait_ready(j->cli, 15000000, 500000));
  atomic_store(&j->done, 1);
  return NULL;
}

/* Runs our waitReady on a thread while libzmq answers each probe as
** Rogue's server does, after checking it byte for byte; 1 if ready. */
static int probe_answered(rogue_srv *s, sl_mem_bridge *cli) {
  ready_job j = {cli, 0, 0};
  pthread_t th;
  if (pthread_create(&th, NULL, ready_main, &j) != 0) return 0;
  double end = now_s() + 20;
  part p[MAXP];
  while (!atomic_load(&j.done) && now_s() < end) {
    int np = recv_sock(s->pull, p, 0.2);
    if (np == 0) continue;
    CHECK_EQ(np, 4);
    CHECK_EQ(p[0].n, 4);
    CHECK(part_is(&p[1], "\0\0\0\0\0\0\0\0", 8));
    CHECK(part_is(&p[2], "\0\0\0\0", 4));
    CHECK(part_is(&p[3], "\xFE\xFF\xFF\xFF", 4));
    CHECK(answer(s, p, "", 0, "OK") == 0);
  }
  pthread_join(th, NULL);
  return atomic_load(&j.ok);
}

/* Receives our client's request and checks its parts byte for byte. */
static int expect_request(rogue_srv *s, part *p, sl_transaction *t, const void *data) {
  uint8_t id[4], addr[8], size[4], type[4];
  sl_store_le32(id, sl_transaction_id(t));
  sl_store_le64(addr, sl_transaction_address(t));
  sl_store_le32(size, sl_transaction_size(t));
  sl_store_le32(type, sl_transaction_type(t));
  int write = sl_mem_type_is_write(sl_transaction_type(t));
  int np = recv_sock(s->pull, p, 20);
  int ok = CHECK_EQ(np, write ? 5 : 4);
  ok &= CHECK(part_is(&p[0], id, 4));
  ok &= CHECK(part_is(&p[1], addr, 8));
  ok &= CHECK(part_is(&p[2], size, 4));
  ok &= CHECK(part_is(&p[3], type, 4));
  if (write) ok &= CHECK(part_is(&p[4], data, sl_transaction_size(t)));
  return ok;
}

/* libzmq as Rogue's server and our client to it, the probe answered;
** 0 (and nothing left open) if either side could not start. */
static int pair_open(rogue_srv *s, our_cli *o) {
  if (!CHECK(srv_open(s) == 0)) return 0;
  if (!CHECK(our_open(o, s->port) == 0)) {
    srv_close(s);
    return 0;
  }
  CHECK(probe_answered(s, o->cli));
  return 1;
}

static void test_our_client_against_rogue_server(void) {
  rogue_srv s;
  our_cli o;
  if (!pair_open(&s, &o)) return;
  CHECK(sl_mem_bridge_ready(o.cli));
  part p[MAXP];
  char e[256], le[SL_MEM_BRIDGE_RESULT_MAX + 8];

  /* write 0x1000, 4 bytes DEADBEEF; then read it back (5.7's capture) */
  const uint8_t data[4] = {0xEF, 0xBE, 0xAD, 0xDE};
  sl_transaction *t = sl_mem_master_request(&o.mm, 0x1000, 4, data, SL_MEM_WRITE, NULL, NULL);
  CHECK(expect_request(&s, p, t, data));
  CHECK(answer(&s, p, data, 4, "OK") == 0);
  CHECK_EQ(sl_mem_master_wait(t), SL_OK);
  sl_transaction_unref(t);
  t = sl_mem_master_request(&o.mm, 0x1000, 4, NULL, SL_MEM_READ, NULL, NULL);
  CHECK(expect_request(&s, p, t, NULL));
  CHECK(answer(&s, p, data, 4, "OK") == 0);
  CHECK_EQ(sl_mem_master_wait(t), SL_OK);
  CHECK(memcmp(sl_transaction_data(t), data, 4) == 0);
  sl_transaction_unref(t);

  /* a verify of 300 bytes above 4 GiB: long data parts, a 64-bit address */
  uint8_t big[300];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 13 + 1);
  t = sl_mem_master_request(&o.mm, 0x123456780ull, 300, NULL, SL_MEM_VERIFY, NULL, NULL);
  CHECK(expect_request(&s, p, t, NULL));
  CHECK(part_is(&p[1], "\x80\x67\x45\x23\x01\x00\x00\x00", 8));
  CHECK(part_is(&p[2], "\x2C\x01\x00\x00", 4));
  CHECK(answer(&s, p, big, sizeof big, "OK") == 0);
  CHECK_EQ(sl_mem_master_wait(t), SL_OK);
  CHECK(memcmp(sl_transaction_data(t), big, sizeof big) == 0);
  sl_transaction_unref(t);

  /* a post completes once sent; Rogue's server answers it anyway, and
  ** that answer (for an id nobody waits on) is dropped */
  t = sl_mem_master_request(&o.mm, 0x2000, 4, data, SL_MEM_POST, NULL, NULL);
  CHECK(sl_transaction_is_done(t));
  CHECK(!sl_transaction_failed(t));
  CHECK(expect_request(&s, p, t, data));
  CHECK(answer(&s, p, data, 4, "OK") == 0);
  sl_transaction_unref(t);

  /* the far slave's error text, as is, for a read and a write */
  t = sl_mem_master_request(&o.mm, 0x3000, 4, NULL, SL_MEM_READ, NULL, NULL);
  CHECK(expect_request(&s, p, t, NULL));
  CHECK(answer(&s, p, "\0\0\0\0", 4, "Emulated bus error at 0x3000") == 0);
  CHECK_EQ(sl_mem_master_wait(t), SL_EINVAL);
  sl_transaction_get_error(t, e, sizeof e);
  CHECK_STR(e, "Emulated bus error at 0x3000");
  sl_transaction_unref(t);
  t = sl_mem_master_request(&o.mm, 0x3004, 4, data, SL_MEM_WRITE, NULL, NULL);
  CHECK(expect_request(&s, p, t, data));
  CHECK(answer(&s, p, data, 4, SL_MEM_UNCONNECTED) == 0);
  CHECK_EQ(sl_mem_master_wait(t), SL_EINVAL);
  sl_transaction_get_error(t, e, sizeof e);
  CHECK_STR(e, SL_MEM_UNCONNECTED);
  sl_transaction_unref(t);

  /* the longest result text Rogue's client takes: 999 bytes */
  char longest[SL_MEM_BRIDGE_RESULT_MAX + 1];
  memset(longest, 'x', SL_MEM_BRIDGE_RESULT_MAX);
  longest[SL_MEM_BRIDGE_RESULT_MAX] = '\0';
  t = sl_mem_master_request(&o.mm, 0x3008, 4, NULL, SL_MEM_READ, NULL, NULL);
  CHECK(expect_request(&s, p, t, NULL));
  CHECK(answer(&s, p, "\0\0\0\0", 4, longest) == 0);
  CHECK_EQ(sl_mem_master_wait(t), SL_EINVAL);
  CHECK_EQ(sl_transaction_get_error(t, le, sizeof le), SL_MEM_BRIDGE_RESULT_MAX);
  CHECK(strcmp(le, longest) == 0);
  sl_transaction_unref(t);

  /* still served after all that */
  t = sl_mem_master_request(&o.mm, 0x1000, 4, NULL, SL_MEM_READ, NULL, NULL);
  CHECK(expect_request(&s, p, t, NULL));
  CHECK(answer(&s, p, data, 4, "OK") == 0);
  CHECK_EQ(sl_mem_master_wait(t), SL_OK);
  sl_transaction_unref(t);
  CHECK_EQ(sl_mem_bridge_pending(o.cli), 0);

  our_close(&o);
  srv_close(&s);
}

/* ---- our TcpClient against malformed responses ---- */

enum { RESP_CLOSES, RESP_FAILS, RESP_IGNORED };

enum {
  M_FIVE_PARTS, M_SEVEN_PARTS, M_NINE_PARTS, M_ONE_PART, M_ID3, M_ADDR7, M_SIZE5,
  M_TYPE_EMPTY, M_ALL_EMPTY, M_RESULT_1000, M_HUGE_DATA, M_RESULT_EMPTY, M_DATA_SHORT,
  M_DATA_LONG, M_SIZE_FFFF, M_ADDR_OTHER, M_TYPE_OTHER, M_UNKNOWN_ID, M_PROBE_UNASKED
};

typedef struct bad_response {
  const char *name;
  int mutation, outcome;
  const char *text;        /* in the transaction's error (RESP_FAILS) */
} bad_response;

static const bad_response bad_responses[] = {
    {"five parts (no result)", M_FIVE_PARTS, RESP_CLOSES, NULL},
    {"seven parts", M_SEVEN_PARTS, RESP_CLOSES, NULL},
    {"nine parts", M_NINE_PARTS, RESP_CLOSES, NULL},
    {"one part", M_ONE_PART, RESP_CLOSES, NULL},
    {"a 3-byte id", M_ID3, RESP_CLOSES, NULL},
    {"a 7-byte address", M_ADDR7, RESP_CLOSES, NULL},
    {"a 5-byte size", M_SIZE5, RESP_CLOSES, NULL},
    {"an empty type part", M_TYPE_EMPTY, RESP_CLOSES, NULL},
    {"six empty parts", M_ALL_EMPTY, RESP_CLOSES, NULL},
    {"a 1000-byte result", M_RESULT_1000, RESP_CLOSES, NULL},
    {"a data part over the 64 MiB message limit", M_HUGE_DATA, RESP_CLOSES, NULL},
    {"an empty result", M_RESULT_EMPTY, RESP_FAILS, "empty result"},
    {"data shorter than the size", M_DATA_SHORT, RESP_FAILS,
     "Received transaction response did not match header size"},
    {"data longer than the size", M_DATA_LONG, RESP_FAILS,
     "Received transaction response did not match header size"},
    {"size 0xFFFFFFFF", M_SIZE_FFFF, RESP_FAILS, "Transaction data mismatch in TcpClient"},
    {"another address", M_ADDR_OTHER, RESP_FAILS, "Transaction data mismatch in TcpClient"},
    {"an unknown type (7)", M_TYPE_OTHER, RESP_FAILS, "Transaction data mismatch in TcpClient"},
    {"an unknown id", M_UNKNOWN_ID, RESP_IGNORED, NULL},
    {"a probe answer nobody asked for", M_PROBE_UNASKED, RESP_IGNORED, NULL},
    {NULL, 0, 0, NULL}};

/* Sends the response req (a read of 8 bytes) gets, spoilt by `mutation`. */
static int send_bad_response(rogue_srv *s, const part *req, int mutation) {
  static const uint8_t data[16] = "abcdefghABCDEFGH";
  uint8_t f[24], result[1000];
  memcpy(f, req[0].b, 4);
  memcpy(f + 4, req[1].b, 8);
  memcpy(f + 12, req[2].b, 4);
  memcpy(f + 16, req[3].b, 4);
  memset(f + 20, 0, 4);
  memset(result, 'E', sizeof result);
  spart ps[9] = {{f, 4}, {f + 4, 8}, {f + 12, 4}, {f + 16, 4}, {data, 8}, {"OK", 2},
                 {"OK", 2}, {"OK", 2}, {"OK", 2}};
  int np = 6;
  uint8_t *huge = NULL;
  switch (mutation) {
    case M_FIVE_PARTS: np = 5; break;
    case M_SEVEN_PARTS: np = 7; break;
    case M_NINE_PARTS: np = 9; break;
    case M_ONE_PART: np = 1; break;
    case M_ID3: ps[0].n = 3; break;
    case M_ADDR7: ps[1].n = 7; break;
    case M_SIZE5: ps[2].n = 5; break;   /* the size and one byte of type */
    case M_TYPE_EMPTY: ps[3].n = 0; break;
    case M_ALL_EMPTY:
      for (int i = 0; i < 6; i++) ps[i].n = 0;
      break;
    case M_RESULT_1000: ps[5] = (spart){result, sizeof result}; break;
    case M_HUGE_DATA:
      huge = calloc(1, (64u << 20) + 1);
      if (huge == NULL) return -1;
      ps[4] = (spart){huge, (64u << 20) + 1};
      break;
    case M_RESULT_EMPTY: ps[5].n = 0; break;
    case M_DATA_SHORT: ps[4].n = 7; break;
    case M_DATA_LONG: ps[4].n = 12; break;
    case M_SIZE_FFFF: sl_store_le32(f + 12, 0xFFFFFFFFu); break;
    case M_ADDR_OTHER: sl_store_le64(f + 4, 0x2004); break;
    case M_TYPE_OTHER: sl_store_le32(f + 16, 7); break;
    case M_UNKNOWN_ID: sl_store_le32(f, 0x7FFFFFF0u); break;
    case M_PROBE_UNASKED:
      sl_store_le32(f, 0x7FFFFFF1u);
      sl_store_le64(f + 4, 0);
      sl_store_le32(f + 12, 0);
      sl_store_le32(f + 16, PROBE);
      ps[4].n = 0;
      break;
    default: break;
  }
  int rc = send_parts(s->push, ps, np, 0);
  free(huge);
  return rc;
}

static void test_our_client_against_malformed_responses(void) {
  rogue_srv s;
  our_cli o;
  if (!pair_open(&s, &o)) return;
  part p[MAXP];
  char e[256];
  static const uint8_t good[4] = {1, 2, 3, 4};

  for (const bad_response *b = bad_responses; b->name != NULL; b++) {
    /* a connection that is closed leaves the request to its timeout */
    sl_mem_master_set_timeout(&o.mm, b->outcome == RESP_CLOSES ? 500000 : 20000000);
    sl_transaction *t = sl_mem_master_request(&o.mm, 0x2000, 8, NULL, SL_MEM_READ, NULL, NULL);
    monitor_drain(s.mon);
    if (!CHECK(expect_request(&s, p, t, NULL)) || !CHECK(send_bad_response(&s, p, b->mutation) == 0)) {
      printf("  case: %s (no request, or not answered)\n", b->name);
      sl_transaction_unref(t);
      break;
    }
    int rc;
    switch (b->outcome) {
      case RESP_CLOSES:
        if (!CHECK(disconnected_within(s.mon, 20))) printf("  case: %s (not closed)\n", b->name);
        /* Failed by its timeout: the client's sweep says so with the
        ** cause (the waiter's own deadline waits for it) */
        rc = sl_mem_master_wait(t);
        sl_transaction_get_error(t, e, sizeof e);
        if (!CHECK(rc == SL_EINVAL && strstr(e, "Timeout waiting for register transaction") != NULL &&
                   strstr(e, "no response within 0.5 s") != NULL))
          printf("  case: %s: %d \"%s\"\n", b->name, rc, e);
        break;
      case RESP_FAILS:
        rc = sl_mem_master_wait(t);
        sl_transaction_get_error(t, e, sizeof e);
        if (!CHECK_EQ(rc, SL_EINVAL) || !CHECK(strstr(e, b->text) != NULL))
          printf("  case: %s: \"%s\"\n", b->name, e);
        break;
      default:   /* the real answer still completes the transaction */
        CHECK(answer(&s, p, "abcdefgh", 8, "OK") == 0);
        if (!CHECK_EQ(sl_mem_master_wait(t), SL_OK)) printf("  case: %s\n", b->name);
        CHECK(memcmp(sl_transaction_data(t), "abcdefgh", 8) == 0);
        break;
    }
    sl_transaction_unref(t);
    /* the next good transaction goes through, on a new connection if
    ** this one was closed */
    double end = now_s() + 20;
    while (!sl_mem_bridge_ready(o.cli) && now_s() < end) sleep_ms(5);
    sl_mem_master_set_timeout(&o.mm, 20000000);
    t = sl_mem_master_request(&o.mm, 0x10, 4, NULL, SL_MEM_READ, NULL, NULL);
    CHECK(expect_request(&s, p, t, NULL));
    CHECK(answer(&s, p, good, 4, "OK") == 0);
    if (!CHECK_EQ(sl_mem_master_wait(t), SL_OK)) printf("  case: %s (no good one after)\n", b->name);
    CHECK(memcmp(sl_transaction_data(t), good, 4) == 0);
    sl_transaction_unref(t);
  }
  CHECK_EQ(sl_mem_bridge_pending(o.cli), 0);

  our_close(&o);
  srv_close(&s);
}

static const struct tt_case cases[] = {
    {"Rogue's memory TcpClient (libzmq) against our TcpServer",
     test_rogue_client_against_our_server},
    {"our TcpServer against malformed requests (libzmq as Rogue's TcpClient)",
     test_our_server_against_malformed_requests},
    {"our TcpClient against libzmq as Rogue's TcpServer",
     test_our_client_against_rogue_server},
    {"our TcpClient against malformed responses (libzmq as Rogue's TcpServer)",
     test_our_client_against_malformed_responses},
    {NULL, NULL}};

int main(void) {
  sl_log_set_emit(0);
  return tt_main(cases);
}
