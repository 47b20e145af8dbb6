/*
** The stream TCP bridge against crafted peers: plain blocking sockets
** that write exact ZMTP bytes to a TcpServer. A broken peer must have its
** connection closed and counted as an error, nothing of its input may
** reach the graph, and the next good peer must work. Every wait is
** bounded (socket timeouts, polling with a deadline).
*/
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/streamlua.h"
#include "streamlua/tcp_bridge.h"
#include "streamlua/zmtp.h"
#include "support.h"
#include "tt.h"

#include "../../src/core/bytes.h"

static size_t put(uint8_t *out, const void *p, size_t n) {
  memcpy(out, p, n);
  return n;
}

/* One Rogue message: flags LE16, channel, error, payload. */
static size_t rogue_msg(uint8_t *out, uint16_t flags, uint8_t ch, uint8_t er,
                        const char *payload) {
  size_t n = 0, pl = strlen(payload);
  uint8_t h[] = {1, 2, 0, 0, 1, 1, ch, 1, 1, er, 0, (uint8_t)pl};
  sl_store_le16(h + 2, flags);
  n += put(out + n, h, sizeof h);
  n += put(out + n, payload, pl);
  return n;
}

typedef struct fixture {
  sl_object *srv;
  ts_rec *r;
  uint32_t port;
} fixture;

/* The last frame's payload as a string (at most 63 bytes). */
static const char *last_str(fixture *fx, char out[64]) {
  ts_got g;
  out[0] = '\0';
  if (ts_rec_last(fx->r, &g, out, 63)) out[g.size < 63 ? g.size : 63] = '\0';
  return out;
}

static void setup(fixture *fx) {
  sl_error err;
  sl_log_set_emit(0);
  fx->srv = sl_tcp_bridge_object(sl_tcp_bridge_new("127.0.0.1", 0, 1, &err));
  if (fx->srv == NULL) abort();
  fx->port = sl_tcp_bridge_port(sl_tcp_bridge_from_object(fx->srv));
  fx->r = ts_rec_on(fx->srv, 0);
}

static void teardown(fixture *fx) {
  sl_object_stop(fx->srv);
  sl_object_unref(fx->srv);
  sl_object_unref(ts_rec_object(fx->r));
  sl_log_set_emit(1);
}

/* A well-behaved peer after a broken one: its one message arrives. */
static void next_peer_works(fixture *fx) {
  char txt[64];
  int fd = ts_dial(fx->port);
  CHECK(fd >= 0);
  uint8_t good[256];
  size_t g = ts_zmtp_hello(good, SL_ZMTP_PUSH);
  g += rogue_msg(good + g, 0x0102, 3, 0, "ok");
  long before = ts_rec_count(fx->r);    /* read before it can arrive */
  CHECK_EQ(send(fd, good, g, MSG_NOSIGNAL), (ssize_t)g);
  ts_rec_wait(fx->r, before + 1, 30);
  CHECK_EQ(ts_rec_count(fx->r), before + 1);
  CHECK_STR(last_str(fx, txt), "ok");
  close(fd);
}

/* Sends bytes to the server's receiving port and expects the connection
** to be closed, an error counted, and nothing delivered. */
static void expect_rejected(const uint8_t *bytes, size_t n) {
  fixture fx;
  setup(&fx);
  int fd = ts_dial(fx.port);
  CHECK(fd >= 0);
  CHECK_EQ(send(fd, bytes, n, MSG_NOSIGNAL), (ssize_t)n);
  CHECK(ts_closed_by_peer(fd));
  close(fd);
  ts_counter_reaches(fx.srv, "errors", 1, 30);
  CHECK_EQ(ts_counter(fx.srv, "errors"), 1);
  sleep_ms(20);
  CHECK_EQ(ts_rec_count(fx.r), 0);
  next_peer_works(&fx);
  teardown(&fx);
}

static void test_garbage(void) {
  const char *g = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                  "0000000000000000000000000000000000000000000000000000";
  expect_rejected((const uint8_t *)g, strlen(g));
}

static void test_bad_signature(void) {
  uint8_t b[128];
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  b[9] = 0x00;   /* the signature's last byte must be 0x7F */
  expect_rejected(b, n);
}

static void test_wrong_mechanism(void) {
  uint8_t b[128];
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  memcpy(b + 12, "PLAIN", 5);
  expect_rejected(b, n);
}

static void test_wrong_socket_type(void) {
  uint8_t b[128];
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PULL);   /* a PULL cannot feed our PULL */
  expect_rejected(b, n);
}

static void test_message_before_ready(void) {
  uint8_t b[256];
  size_t n = sl_zmtp_greeting(b);
  n += rogue_msg(b + n, 1, 1, 0, "early");
  expect_rejected(b, n);
}

static void test_three_parts(void) {
  uint8_t b[256];
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  uint8_t m[] = {1, 2, 0, 0, 1, 1, 0, 0, 1, 'x'};   /* 3 parts */
  n += put(b + n, m, sizeof m);
  expect_rejected(b, n);
}

static void test_wrong_part_sizes(void) {
  uint8_t b[256];
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  uint8_t m[] = {1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 'x'};   /* sizes 1 1 1 1 */
  n += put(b + n, m, sizeof m);
  expect_rejected(b, n);
}

static void test_over_max_size(void) {
  uint8_t b[256];
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  /* part 3 announces 2^40 bytes, over the 64 MiB default: refused before
  ** any of them is read or allocated */
  uint8_t m[] = {1, 2, 0, 0, 1, 1, 0, 1, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0};
  n += put(b + n, m, sizeof m);
  expect_rejected(b, n);
}

/* A peer that dies in the middle of a message: nothing of it arrives. */
static void test_disconnect_mid_message(void) {
  char txt[64];
  fixture fx;
  setup(&fx);
  int fd = ts_dial(fx.port);
  uint8_t b[256];
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  n += rogue_msg(b + n, 1, 1, 0, "whole");
  uint8_t half[] = {1, 2, 0, 0, 1, 1, 0, 1, 1, 0, 0, 10, 'h', 'a', 'l'};
  n += put(b + n, half, sizeof half);
  CHECK_EQ(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
  ts_rec_wait(fx.r, 1, 30);
  close(fd);
  sleep_ms(100);
  CHECK_EQ(ts_rec_count(fx.r), 1);
  CHECK_STR(last_str(&fx, txt), "whole");
  teardown(&fx);
}

/* ---- the receiving side: large bodies ---- */

#define LARGE (300u * 1024)

/* The first three parts and the long header of a 4-part message whose
** payload is n bytes; returns the header length (19). */
static size_t large_head(uint8_t *h, uint8_t ch, uint64_t n) {
  uint8_t p[] = {1, 2, 0, 0, 1, 1, ch, 1, 1, 0, 2};
  memcpy(h, p, sizeof p);
  for (int i = 0; i < 8; i++) h[11 + i] = (uint8_t)(n >> (8 * (7 - i)));
  return 19;
}

/* A PUSH peer's greeting and READY, then a message whose payload is LARGE
** bytes of 'L'; *head gets the bytes before the payload. */
static uint8_t *large_message(size_t *head) {
  uint8_t *b = malloc(LARGE + 256);
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  n += large_head(b + n, 5, LARGE);
  memset(b + n, 'L', LARGE);
  *head = n;
  return b;
}

/* A large body that arrives in two halves with a pause between, then a
** small message: both arrive, whole, in order (the socket's wake-up mark,
** raised while a large body comes in, is lowered again after it). */
static void test_large_body_in_halves(void) {
  char txt[64];
  fixture fx;
  setup(&fx);
  int fd = ts_dial(fx.port);
  CHECK(fd >= 0);
  size_t n;
  uint8_t *b = large_message(&n);
  size_t total = n + LARGE, half = n + LARGE / 2;
  CHECK_EQ(send(fd, b, half, MSG_NOSIGNAL), (ssize_t)half);
  sleep_ms(100);
  CHECK_EQ(ts_rec_count(fx.r), 0);     /* nothing before it is whole */
  CHECK_EQ(send(fd, b + half, total - half, MSG_NOSIGNAL), (ssize_t)(total - half));
  ts_rec_wait(fx.r, 1, 30);
  CHECK_EQ(ts_rec_count(fx.r), 1);
  last_str(&fx, txt);
  CHECK_EQ((size_t)strspn(txt, "L"), strlen(txt));
  uint8_t m[64];
  size_t k = rogue_msg(m, 0, 1, 0, "small after");
  CHECK_EQ(send(fd, m, k, MSG_NOSIGNAL), (ssize_t)k);
  ts_rec_wait(fx.r, 2, 30);
  CHECK_EQ(ts_rec_count(fx.r), 2);
  CHECK_STR(last_str(&fx, txt), "small after");
  close(fd);
  free(b);
  teardown(&fx);
}

/* A peer gone halfway through a large body: its connection closes (end
** of file wakes the reader whatever the mark), nothing of it arrives, and
** the next peer works. */
static void test_large_body_cut(void) {
  fixture fx;
  setup(&fx);
  int fd = ts_dial(fx.port);
  CHECK(fd >= 0);
  size_t n;
  uint8_t *b = large_message(&n);
  CHECK_EQ(send(fd, b, n + LARGE / 2, MSG_NOSIGNAL), (ssize_t)(n + LARGE / 2));
  sleep_ms(50);
  close(fd);
  for (int i = 0; i < 3000 && ts_counter(fx.srv, "connections") > 0; i++) sleep_ms(10);
  CHECK_EQ(ts_counter(fx.srv, "connections"), 0);
  CHECK_EQ(ts_rec_count(fx.r), 0);
  next_peer_works(&fx);
  free(b);
  teardown(&fx);
}

/* ---- the sending side: large messages a sender writes itself ---- */

#define BIG (1024u * 1024 + 3)

/* A crafted PULL peer on the server's sending port: greeting and READY
** both ways; the server's READY is read and skipped. */
static int dial_puller(uint32_t port) {
  int fd = ts_dial(port + 1);
  if (fd < 0) return -1;
  int buf = 64 * 1024;        /* small: the sender fills it quickly */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  uint8_t b[128];
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PULL);
  if (send(fd, b, n, MSG_NOSIGNAL) != (ssize_t)n) goto out_fail;
  uint8_t g[SL_ZMTP_GREETING_SIZE], h[2], body[256];
  if (!ts_read_exact(fd, g, sizeof g) || !ts_read_exact(fd, h, 2) || h[0] != 4 ||
      !ts_read_exact(fd, body, h[1]))
    goto out_fail;
  return fd;
out_fail:
  close(fd);
  return -1;
}

/* Reads one 4-part message; checks its metadata and that its payload is
** `size` bytes of the pattern seeded with `seed`. */
static int read_big(int fd, uint8_t ch, uint32_t size, uint8_t seed) {
  uint8_t h[10], lh[9];
  if (!ts_read_exact(fd, h, 10)) return 0;
  if (h[0] != 1 || h[1] != 2 || h[4] != 1 || h[5] != 1 || h[6] != ch ||
      h[7] != 1 || h[8] != 1 || h[9] != 0)
    return 0;
  if (!ts_read_exact(fd, lh, 9) || lh[0] != 2) return 0;   /* long, last part */
  if (sl_load_be64(lh + 1) != size) return 0;
  uint8_t *p = malloc(size);
  int ok = ts_read_exact(fd, p, size);
  for (uint32_t i = 0; ok && i < size; i++)
    if (p[i] != (uint8_t)(seed + i * 7)) ok = 0;
  free(p);
  return ok;
}

typedef struct big_sender {
  sl_object *m;
  int frames;
  uint8_t seed;
  atomic_int sent;
} big_sender;

static void *send_bigs(void *arg) {
  big_sender *bs = arg;
  for (int k = 0; k < bs->frames; k++) {
    sl_frame *f = sl_master_req_frame(bs->m->master, BIG, 1);
    uint8_t *p = malloc(BIG);
    for (uint32_t i = 0; i < BIG; i++) p[i] = (uint8_t)(bs->seed + k + i * 7);
    sl_frame_write(f, p, 0, BIG);
    free(p);
    sl_frame_set_channel(f, (uint8_t)k);
    sl_master_send_frame(bs->m->master, f);
    sl_frame_unref(f);
    atomic_fetch_add(&bs->sent, 1);
  }
  return NULL;
}

static int await_ready(sl_object *srv) {
  for (int i = 0; i < 3000 && !sl_tcp_bridge_ready(sl_tcp_bridge_from_object(srv)); i++) sleep_ms(10);
  return sl_tcp_bridge_ready(sl_tcp_bridge_from_object(srv));
}

/* A crafted puller on fx's server, once the server is ready to send. */
static int ready_puller(fixture *fx) {
  int fd = dial_puller(fx->port);
  CHECK(fd >= 0);
  CHECK(await_ready(fx->srv));
  return fd;
}

/* Large frames go out whole and in order, whether the sender writes them
** itself or, past its timeout on a slow reader, the I/O thread finishes. */
static void test_big_frames_in_order(void) {
  for (int slow = 0; slow < 2; slow++) {
    fixture fx;
    setup(&fx);
    if (slow) {
      sl_tcp_bridge_set_timeout(sl_tcp_bridge_from_object(fx.srv), 20000);
      /* room for all 16 in the send queue: a sender past its timeout
      ** hands its message over and is not held for room */
      sl_tcp_bridge_set_max_queue_bytes(sl_tcp_bridge_from_object(fx.srv), 64u << 20);
    }
    int fd = ready_puller(&fx);
    big_sender bs = {sl_master_new(NULL), 16, 11, 0};   /* more than fits in
                                                       the socket buffers */
    sl_master_add_slave(bs.m->master, fx.srv->slave);
    pthread_t t;
    pthread_create(&t, NULL, send_bigs, &bs);
    if (slow) sleep_ms(200);   /* the sender meets a full socket */
    for (int k = 0; k < bs.frames; k++)
      CHECK(read_big(fd, (uint8_t)k, BIG, (uint8_t)(bs.seed + k)));
    pthread_join(t, NULL);
    ts_counter_reaches(fx.srv, "txFrames", 16, 30);
    CHECK_EQ(ts_counter(fx.srv, "txFrames"), 16);
    CHECK_EQ(ts_counter(fx.srv, "txBytes"), 16ull * BIG);
    CHECK_EQ(ts_counter(fx.srv, "drops"), 0);
    close(fd);
    sl_object_unref(bs.m);
    teardown(&fx);
  }
}

/* A reader that goes away while a sender writes into it: the frame is a
** counted drop, and the next reader gets whole messages. */
static void test_reader_gone_mid_write(void) {
  fixture fx;
  setup(&fx);
  int fd = ready_puller(&fx);
  big_sender bs = {sl_master_new(NULL), 1, 5, 0};
  sl_master_add_slave(bs.m->master, fx.srv->slave);
  pthread_t t;
  pthread_create(&t, NULL, send_bigs, &bs);
  uint8_t part[1000];
  CHECK(ts_read_exact(fd, part, sizeof part));   /* the write has begun */
  close(fd);
  pthread_join(t, NULL);
  /* the connection leaves the list before its queue is released and
  ** counted: wait for both */
  for (int i = 0; i < 3000 && (ts_counter(fx.srv, "connections") > 0 ||
                               ts_counter(fx.srv, "txFrames") + ts_counter(fx.srv, "drops") == 0);
       i++)
    sleep_ms(10);
  CHECK_EQ(ts_counter(fx.srv, "txFrames") + ts_counter(fx.srv, "drops"), 1);
  fd = ready_puller(&fx);
  bs.seed = 9;
  pthread_create(&t, NULL, send_bigs, &bs);
  CHECK(read_big(fd, 0, BIG, 9));
  pthread_join(t, NULL);
  close(fd);
  sl_object_unref(bs.m);
  teardown(&fx);
}

/* stop() while a sender is held writing into a reader that never reads:
** it returns, and so does the sender, instead of waiting for the reader. */
static void test_stop_during_write(void) {
  fixture fx;
  setup(&fx);
  int fd = ready_puller(&fx);
  big_sender bs = {sl_master_new(NULL), 32, 1, 0};   /* far more than the
                                                  socket buffers hold */
  sl_master_add_slave(bs.m->master, fx.srv->slave);
  pthread_t t;
  pthread_create(&t, NULL, send_bigs, &bs);
  sleep_ms(200);
  CHECK(atomic_load(&bs.sent) < 32);  /* held: nobody reads */
  sl_object_stop(fx.srv);              /* every later send is a drop */
  for (int i = 0; i < 3000 && atomic_load(&bs.sent) < 32; i++) sleep_ms(10);
  if (!CHECK_EQ(atomic_load(&bs.sent), 32)) return;   /* the sender is stuck */
  pthread_join(t, NULL);
  CHECK_EQ(ts_counter(fx.srv, "txFrames") + ts_counter(fx.srv, "drops"), 32);
  close(fd);
  sl_object_unref(bs.m);
  teardown(&fx);
}

/* ---- byte limits of the queues ---- */

/* A crafted PUSH peer that writes `frames` messages of `size` bytes
** (channel k, payload bytes k) from its own thread, blocking while the
** bridge does not read. */
typedef struct pusher {
  int fd;
  int frames;
  uint32_t size;
  pthread_t t;
} pusher;

static void *push_main(void *arg) {
  pusher *p = arg;
  uint8_t hello[128], h[19];
  size_t n = ts_zmtp_hello(hello, SL_ZMTP_PUSH);
  if (!ts_send_all(p->fd, hello, n)) return NULL;
  uint8_t *body = malloc(p->size);
  for (int k = 0; k < p->frames; k++) {
    memset(body, k, p->size);
    large_head(h, (uint8_t)k, p->size);
    if (!ts_send_all(p->fd, h, sizeof h) || !ts_send_all(p->fd, body, p->size)) break;
  }
  free(body);
  return NULL;
}

static void pusher_start(pusher *p, uint32_t port, int frames, uint32_t size) {
  p->fd = ts_dial(port);
  p->frames = frames;
  p->size = size;
  pthread_create(&p->t, NULL, push_main, p);
}

static sl_tcp_bridge *bridge_of(fixture *fx) { return sl_tcp_bridge_from_object(fx->srv); }

static int rx_queue_empty(void *arg) {
  return ts_counter(((fixture *)arg)->srv, "rxQueueBytes") == 0;
}

/* The delivery queue's bytes fall to 0 once everything is delivered. */
static int queue_empties(fixture *fx) { return ts_wait_until(rx_queue_empty, fx, 30); }

/* A fixture whose recorder keeps the first `keep` frames. */
static void setup_keep(fixture *fx, long keep) {
  setup(fx);
  sl_object *old = ts_rec_object(fx->r);
  fx->r = ts_rec_on(fx->srv, keep);
  sl_master_remove_slave(fx->srv->master, old->slave);
  sl_object_unref(old);
}

/* Every frame arrived in order on channels 0, 1, ... */
static int all_in_order(fixture *fx, int frames, uint32_t size) {
  if (!ts_rec_wait(fx->r, frames, 60)) return 0;
  for (long i = 0; i < frames; i++) {
    ts_got g;
    if (!ts_rec_frame(fx->r, i, &g) || g.channel != (uint8_t)i || g.size != size) return 0;
  }
  return 1;
}

/* Large frames fill the delivery queue to its byte limit and no further
** (reading pauses), then all arrive in order once downstream takes them. */
static void test_rx_byte_limit(void) {
  fixture fx;
  setup_keep(&fx, 16);
  ts_rec_shut(fx.r);
  uint64_t limit = 4u << 20;
  sl_tcp_bridge_set_max_queue_bytes(bridge_of(&fx), limit);
  CHECK_EQ(ts_counter(fx.srv, "maxQueueBytes"), limit);
  pusher p;
  pusher_start(&p, fx.port, 16, BIG);
  CHECK(ts_counter_reaches(fx.srv, "rxQueueBytes", limit, 30));
  sleep_ms(200);                            /* reading has paused */
  CHECK(ts_counter(fx.srv, "rxQueueBytes") < limit + BIG);
  CHECK_EQ(ts_counter(fx.srv, "rxFrames"), 4);   /* 4 x BIG >= 4 MiB */
  ts_rec_open(fx.r);
  CHECK(all_in_order(&fx, 16, BIG));
  pthread_join(p.t, NULL);
  CHECK_EQ(ts_counter(fx.srv, "drops"), 0);
  CHECK(queue_empties(&fx));
  close(p.fd);
  teardown(&fx);
}

/* Small frames: the frame limit (1,024, past it by at most one read of
** 256 KiB) still holds under the byte limit. */
static void test_rx_frame_limit(void) {
  fixture fx;
  setup_keep(&fx, 6000);
  ts_rec_shut(fx.r);
  pusher p;
  pusher_start(&p, fx.port, 6000, 1000);
  CHECK(ts_counter_reaches(fx.srv, "rxFrames", 1024, 30));
  sleep_ms(200);
  CHECK(ts_counter(fx.srv, "rxFrames") <= 1024 + 262 + 1);
  CHECK(ts_counter(fx.srv, "rxQueueBytes") < (4u << 20));
  ts_rec_open(fx.r);
  CHECK(all_in_order(&fx, 6000, 1000));
  pthread_join(p.t, NULL);
  CHECK_EQ(ts_counter(fx.srv, "drops"), 0);
  close(p.fd);
  teardown(&fx);
}

/* A frame larger than the byte limit passes alone. */
static void test_rx_frame_over_limit(void) {
  fixture fx;
  setup_keep(&fx, 3);
  ts_rec_shut(fx.r);
  sl_tcp_bridge_set_max_queue_bytes(bridge_of(&fx), 1000);
  pusher p;
  pusher_start(&p, fx.port, 3, BIG);
  CHECK(ts_counter_reaches(fx.srv, "rxFrames", 1, 30));
  sleep_ms(200);
  CHECK_EQ(ts_counter(fx.srv, "rxFrames"), 1);
  CHECK_EQ(ts_counter(fx.srv, "rxQueueBytes"), BIG);
  ts_rec_open(fx.r);
  CHECK(all_in_order(&fx, 3, BIG));
  pthread_join(p.t, NULL);
  close(p.fd);
  teardown(&fx);
}

/* Holds each delivery until its thread is told to give up. */
static void hold_until_cancelled(ts_rec *r, sl_frame *f) {
  (void)r;
  (void)f;
  while (!sl_wait_cancelled()) sleep_ms(1);
}

/* stop() with the delivery queue full at its byte limit and downstream
** held: it returns, the peer's writes end, the queued frames are drops.
** The delivery under way may have taken every frame queued when it began,
** so the limit is raised once it holds one: reading goes on, and the
** frames queued then wait behind it. */
static void test_stop_with_full_queue(void) {
  fixture fx;
  setup(&fx);
  fx.r->hook = hold_until_cancelled;
  sl_tcp_bridge_set_max_queue_bytes(bridge_of(&fx), 2u << 20);
  pusher p;
  pusher_start(&p, fx.port, 16, BIG);
  CHECK(ts_counter_reaches(fx.srv, "rxQueueBytes", 2u << 20, 30));
  CHECK(ts_rec_await(fx.r, 1, 0, 0, 30));          /* one frame held */
  sl_tcp_bridge_set_max_queue_bytes(bridge_of(&fx), 5u << 20);
  CHECK(ts_counter_reaches(fx.srv, "rxQueueBytes", 5u << 20, 30));
  sl_object_stop(fx.srv);
  pthread_join(p.t, NULL);               /* the peer's socket was closed */
  CHECK_EQ(ts_counter(fx.srv, "rxQueueBytes"), 0);
  CHECK(ts_counter(fx.srv, "drops") >= 1);
  close(p.fd);
  teardown(&fx);
}

/* A reader that reads nothing: the send queue holds up to its byte limit
** (message headers included), and what finds no room in time is dropped
** and counted. */
static void test_tx_byte_limit(void) {
  fixture fx;
  setup(&fx);
  uint64_t limit = 3u << 20;
  sl_tcp_bridge_set_max_queue_bytes(bridge_of(&fx), limit);
  sl_tcp_bridge_set_timeout(bridge_of(&fx), 50000);
  int fd = ready_puller(&fx);
  big_sender bs = {sl_master_new(NULL), 24, 3, 0};   /* more than the socket
                                                 buffers and the queue hold */
  sl_master_add_slave(bs.m->master, fx.srv->slave);
  pthread_t t;
  pthread_create(&t, NULL, send_bigs, &bs);
  pthread_join(t, NULL);                 /* each frame queued or dropped */
  uint64_t q = ts_counter(fx.srv, "txQueueBytes");
  CHECK(q > 0);
  CHECK(q <= limit);
  CHECK(ts_counter(fx.srv, "drops") >= 1);
  close(fd);
  sl_object_unref(bs.m);
  teardown(&fx);
}


/* ---- small messages: many per write, many per read ---- */

#define SMALL_N 20000   /* received */
#define SMALL_TX 60000  /* sent: ~22 MB, more than the socket buffers (8 MiB
                           and 64 KiB) hold, so the send queue fills */

/* The kth small frame's payload size (0 to 700: both sides of the size
** copied into one span with the headers) and its bytes. */
static uint32_t small_size(int k) { return (uint32_t)((k * 37) % 701); }
static uint8_t small_byte(int k, uint32_t i) { return (uint8_t)(k * 5 + i * 3); }

typedef struct small_sender {
  sl_object *m;
  int frames;
  atomic_int sent;
} small_sender;

static void *send_smalls(void *arg) {
  small_sender *ss = arg;
  uint8_t p[701];
  for (int k = 0; k < ss->frames; k++) {
    uint32_t n = small_size(k);
    sl_frame *f = sl_master_req_frame(ss->m->master, n > 0 ? n : 1, 1);
    for (uint32_t i = 0; i < n; i++) p[i] = small_byte(k, i);
    sl_frame_write(f, p, 0, n);
    sl_frame_set_payload(f, n);
    sl_frame_set_flags(f, (uint16_t)(k * 11));
    sl_frame_set_channel(f, (uint8_t)k);
    sl_frame_set_error(f, (uint8_t)(k >> 8));
    sl_master_send_frame(ss->m->master, f);
    sl_frame_unref(f);
    atomic_fetch_add(&ss->sent, 1);
  }
  return NULL;
}

/* A server with a puller that does not read yet, and a sender of SMALL_TX
** small frames on its own thread, held once the send queue has filled. */
typedef struct small_run {
  fixture fx;
  int fd;
  small_sender ss;
  pthread_t t;
} small_run;

static void small_start(small_run *s) {
  setup(&s->fx);
  s->fd = ready_puller(&s->fx);
  s->ss.m = sl_master_new(NULL);
  s->ss.frames = SMALL_TX;
  atomic_init(&s->ss.sent, 0);
  sl_master_add_slave(s->ss.m->master, s->fx.srv->slave);
  pthread_create(&s->t, NULL, send_smalls, &s->ss);
  CHECK(ts_counter_reaches(s->fx.srv, "txQueueBytes", 100000, 30));
}

static void small_end(small_run *s) {
  close(s->fd);
  sl_object_unref(s->ss.m);
  teardown(&s->fx);
}

/* Reads the kth small message (short or long size form) and checks it
** byte for byte. */
static int read_small(int fd, int k) {
  uint8_t h[10], sh[9], p[701];
  uint32_t n = small_size(k);
  if (!ts_read_exact(fd, h, 10) || !ts_read_exact(fd, sh, 2)) return 0;
  if (h[0] != 1 || h[1] != 2 || sl_load_le16(h + 2) != (uint16_t)(k * 11) ||
      h[4] != 1 || h[5] != 1 || h[6] != (uint8_t)k || h[7] != 1 || h[8] != 1 ||
      h[9] != (uint8_t)(k >> 8))
    return 0;
  uint64_t size = sh[1];
  if (sh[0] == 2) {               /* long: 8 bytes of size */
    if (!ts_read_exact(fd, sh + 2, 7)) return 0;
    size = sl_load_be64(sh + 1);
  } else if (sh[0] != 0) {
    return 0;
  }
  if (size != n || !ts_read_exact(fd, p, n)) return 0;
  for (uint32_t i = 0; i < n; i++)
    if (p[i] != small_byte(k, i)) return 0;
  return 1;
}

/* Small frames sent while the reader does not read: the socket and the
** send queue fill, writes go out in part, and each later write resumes
** where the last stopped. Every message arrives whole, in order, with its
** metadata; each is counted as sent. */
static void test_small_frames_coalesced(void) {
  small_run s;
  small_start(&s);                       /* the sender waits for room until the reads below */
  sl_object *srv = s.fx.srv;
  int bad = 0;
  for (int k = 0; k < SMALL_TX && !bad; k++) bad = !read_small(s.fd, k);
  CHECK_EQ(bad, 0);
  if (bad) sl_object_stop(srv);          /* the sender's waits end */
  pthread_join(s.t, NULL);
  CHECK(ts_counter_reaches(srv, "txFrames", SMALL_TX, 30));
  uint64_t bytes = 0;
  for (int k = 0; k < SMALL_TX; k++) bytes += small_size(k);
  CHECK_EQ(ts_counter(srv, "txBytes"), bytes);
  CHECK_EQ(ts_counter(srv, "drops"), 0);
  CHECK_EQ(ts_counter(srv, "txQueueBytes"), 0);
  small_end(&s);
}

/* stop() with small frames queued behind a write the reader never takes:
** it returns, the sender returns, and every frame is sent or a counted
** drop. */
static void test_stop_with_small_frames_queued(void) {
  small_run s;
  small_start(&s);
  sl_object *srv = s.fx.srv;
  sl_object_stop(srv);
  for (int i = 0; i < 3000 && atomic_load(&s.ss.sent) < SMALL_TX; i++) sleep_ms(10);
  if (!CHECK_EQ(atomic_load(&s.ss.sent), SMALL_TX)) return;   /* the sender is stuck */
  pthread_join(s.t, NULL);
  CHECK(ts_counter(srv, "drops") > 0);
  CHECK_EQ(ts_counter(srv, "txFrames") + ts_counter(srv, "drops"), SMALL_TX);
  CHECK_EQ(ts_counter(srv, "txQueueBytes"), 0);
  small_end(&s);
}

/* Small messages arriving far faster than they are delivered: one read
** holds thousands, reading pauses at the delivery queue's frame limit
** several times within it, and each time resumes where it stopped.
** Every frame arrives once, in order, whole. */
static void test_small_frames_paused_reads(void) {
  fixture fx;
  setup_keep(&fx, SMALL_N);
  ts_rec_shut(fx.r);
  int fd = ts_dial(fx.port);
  CHECK(fd >= 0);
  size_t cap = 128 + (size_t)SMALL_N * 80;
  uint8_t *b = malloc(cap);
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  for (int k = 0; k < SMALL_N; k++) {
    char pay[64];
    memset(pay, 'a' + k % 26, sizeof pay);
    pay[63] = '\0';
    n += rogue_msg(b + n, (uint16_t)k, (uint8_t)k, 0, pay + (k % 3) * 20);
  }
  CHECK(ts_send_all(fd, b, n));
  CHECK(ts_counter_reaches(fx.srv, "rxFrames", 1024, 30));
  ts_rec_open(fx.r);
  CHECK(ts_rec_wait(fx.r, SMALL_N, 60));
  int bad = 0;
  for (long i = 0; i < SMALL_N; i++) {
    ts_got g;
    if (!ts_rec_frame(fx.r, i, &g) || g.channel != (uint8_t)i || g.flags != (uint16_t)i ||
        g.size != 63 - (uint32_t)(i % 3) * 20 || g.data == NULL ||
        g.data[0] != (uint8_t)('a' + i % 26))
      bad++;
  }
  CHECK_EQ(bad, 0);
  CHECK_EQ(ts_counter(fx.srv, "drops"), 0);
  free(b);
  close(fd);
  teardown(&fx);
}

/* Mixed sizes in one stream: small messages take frames requested from
** the pool several at a time, large ones keep their read buffer. */
static const uint32_t MIXED_SIZES[] = {64, 0, 1, 255, 256, 16383, 16384, 40000, 64, 3000};
#define MIXED_N 600

static uint32_t mixed_size(int k) {
  return MIXED_SIZES[k % (int)(sizeof MIXED_SIZES / sizeof MIXED_SIZES[0])];
}

/* Message k: flags and channel from k, payload bytes (k + i) & 0xff. */
static size_t mixed_msg(uint8_t *out, int k) {
  uint32_t size = mixed_size(k);
  uint8_t h[] = {1, 2, 0, 0, 1, 1, (uint8_t)k, 1, 1, 0};
  sl_store_le16(h + 2, (uint16_t)k);
  size_t n = put(out, h, sizeof h);
  n += sl_zmtp_frame_header(out + n, size, 0);
  for (uint32_t i = 0; i < size; i++) out[n + i] = (uint8_t)(k + i);
  return n + size;
}

/* On the delivering thread: each frame's size is its payload, as a
** request of that size would make it (a frame of one block; several
** blocks are whole ones), and its bytes are message k's. */
typedef struct mixed_check {
  atomic_long seen, bad;
} mixed_check;

static void mixed_hook(ts_rec *r, sl_frame *f) {
  mixed_check *mc = r->ctx;
  long k = atomic_fetch_add(&mc->seen, 1);
  uint32_t size = mixed_size((int)k), pay = sl_frame_get_payload(f);
  /* one block: sized as asked; several (a fixed-size pool's) are whole */
  uint32_t want = sl_frame_buffer_count(f) > 1 ? sl_frame_get_size(f) : size;
  int bad = pay != size || sl_frame_get_size(f) != want || sl_frame_get_size(f) < size ||
            sl_frame_get_channel(f) != (uint8_t)k ||
            sl_frame_get_flags(f) != (uint16_t)k;
  uint8_t buf[256];
  for (uint32_t off = 0; off < pay && !bad; off += sizeof buf) {
    uint32_t n = pay - off < sizeof buf ? pay - off : (uint32_t)sizeof buf;
    sl_frame_read(f, buf, off, n);
    for (uint32_t i = 0; i < n; i++) bad |= buf[i] != (uint8_t)(k + off + i);
  }
  if (bad) atomic_fetch_add(&mc->bad, 1);
}

/* Sends MIXED_N mixed messages in one write (reads hold many, across the
** batch sizes and the large-message limit) and checks every frame. With
** `fixed`, the server's pool makes blocks of that size first. */
static void mixed_stream(uint32_t fixed) {
  fixture fx;
  setup(&fx);
  mixed_check mc;
  atomic_init(&mc.seen, 0);
  atomic_init(&mc.bad, 0);
  ts_rec *r = ts_rec_new(0);
  r->ctx = &mc;
  r->hook = mixed_hook;                 /* set before any frame comes */
  sl_master_add_slave(fx.srv->master, &r->slave);
  if (fixed > 0) sl_pool_set_fixed_size(fx.srv->slave->pool, fixed);
  int fd = ts_dial(fx.port);
  CHECK(fd >= 0);
  size_t cap = 128, n = 0;
  for (int k = 0; k < MIXED_N; k++) cap += 20 + mixed_size(k);
  uint8_t *b = malloc(cap);
  n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  for (int k = 0; k < MIXED_N; k++) n += mixed_msg(b + n, k);
  CHECK(ts_send_all(fd, b, n));
  CHECK(ts_rec_wait(r, MIXED_N, 60));
  for (int i = 0; i < 6000 && atomic_load(&mc.seen) < MIXED_N; i++)
    sleep_ms(10);                       /* the hook runs after the count */
  CHECK_EQ(atomic_load(&mc.seen), MIXED_N);
  CHECK_EQ(atomic_load(&mc.bad), 0);
  CHECK_EQ(ts_counter(fx.srv, "drops"), 0);
  CHECK_EQ(ts_counter(fx.srv, "errors"), 0);
  free(b);
  close(fd);
  sl_object_stop(fx.srv);
  sl_master_remove_slave(fx.srv->master, &r->slave);
  sl_object_unref(ts_rec_object(r));
  teardown(&fx);
}

static void test_small_frames_batched(void) { mixed_stream(0); }

static void test_small_frames_other_pool(void) {
  mixed_stream(4096);      /* frames of several blocks: asked one by one */
  mixed_stream(65536);     /* larger blocks: still one each */
}

/* stop() while a read's small frames are being made: whatever was
** requested and not filled goes back (the leak checks of the sanitizer
** builds), the delivered frames are whole, and stop returns. */
static void test_stop_mid_batch(void) {
  fixture fx;
  setup(&fx);
  int fd = ts_dial(fx.port);
  CHECK(fd >= 0);
  size_t cap = 128 + (size_t)SMALL_N * 80;
  uint8_t *b = malloc(cap);
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  for (int k = 0; k < SMALL_N; k++) n += rogue_msg(b + n, 0, 0, 0, "sixty-four bytes or so");
  CHECK(ts_send_all(fd, b, n));
  CHECK(ts_counter_reaches(fx.srv, "rxFrames", 1, 30));
  sl_object_stop(fx.srv);
  CHECK(ts_counter(fx.srv, "rxFrames") <= SMALL_N);
  CHECK(ts_rec_count(fx.r) <= (long)ts_counter(fx.srv, "rxFrames"));
  free(b);
  close(fd);
  teardown(&fx);
}

/*
** The delivery is woken at a read's end, or earlier once a delivery batch
** (512 frames) or a quarter of the byte limit waits, and not again while
** it runs. Rounds of small messages, each written at once and waited for
** before the next: counts on both sides of the queued batch (64), the
** early wake and the frame limit (1,024). A read whose frames were left
** without a wake would hold them until the next message: none comes.
*/
static const int WAKE_ROUNDS[] = {1, 2, 63, 64, 65, 127, 128, 511, 512, 513,
                                  575, 576, 577, 1023, 1024, 1025, 3000};
#define WAKE_TOTAL 9786   /* the rounds' sum */

static void test_delivery_wakes_at_batch_bounds(void) {
  fixture fx;
  setup_keep(&fx, WAKE_TOTAL);
  int fd = ts_dial(fx.port);
  CHECK(fd >= 0);
  uint8_t *b = malloc(128 + (size_t)3000 * 40);
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  CHECK(ts_send_all(fd, b, n));
  long k = 0;
  for (size_t r = 0; r < sizeof WAKE_ROUNDS / sizeof WAKE_ROUNDS[0]; r++) {
    n = 0;
    for (int i = 0; i < WAKE_ROUNDS[r]; i++, k++)
      n += rogue_msg(b + n, (uint16_t)k, (uint8_t)r, 0, "twenty-one bytes long");
    CHECK(ts_send_all(fd, b, n));
    CHECK(ts_rec_wait(fx.r, k, 30));
    CHECK_EQ(ts_rec_count(fx.r), k);
  }
  CHECK_EQ(k, WAKE_TOTAL);
  int bad = 0;
  for (long i = 0; i < k; i++) {
    ts_got g;
    if (!ts_rec_frame(fx.r, i, &g) || g.flags != (uint16_t)i || g.size != 21) bad++;
  }
  CHECK_EQ(bad, 0);
  CHECK(queue_empties(&fx));
  CHECK_EQ(ts_counter(fx.srv, "drops"), 0);
  free(b);
  close(fd);
  teardown(&fx);
}

/* Two peers at once, many reads each: a read's end wakes the delivery for
** the other's frames too, and a delivery that runs on finds what either
** queued meanwhile. Each peer's frames arrive whole and in its order. */
typedef struct wake_peer {
  int fd;
  uint8_t ch;
  pthread_t t;
} wake_peer;

#define WAKE_PEER_N 20000

static void *wake_peer_main(void *arg) {
  wake_peer *p = arg;
  uint8_t hello[128], m[64];
  size_t n = ts_zmtp_hello(hello, SL_ZMTP_PUSH);
  if (!ts_send_all(p->fd, hello, n)) return NULL;
  for (int k = 0; k < WAKE_PEER_N; k++) {     /* one message per write */
    n = rogue_msg(m, (uint16_t)k, p->ch, 0, "x");
    if (!ts_send_all(p->fd, m, n)) break;
  }
  return NULL;
}

static void test_delivery_wakes_two_peers(void) {
  fixture fx;
  setup_keep(&fx, 2 * WAKE_PEER_N);
  wake_peer p[2];
  for (int i = 0; i < 2; i++) {
    p[i].fd = ts_dial(fx.port);
    p[i].ch = (uint8_t)(i + 1);
    CHECK(p[i].fd >= 0);
  }
  for (int i = 0; i < 2; i++) pthread_create(&p[i].t, NULL, wake_peer_main, &p[i]);
  CHECK(ts_rec_wait(fx.r, 2 * WAKE_PEER_N, 60));
  for (int i = 0; i < 2; i++) pthread_join(p[i].t, NULL);
  long next[3] = {0, 0, 0};
  int bad = 0;
  for (long i = 0; i < 2 * WAKE_PEER_N; i++) {
    ts_got g;
    if (!ts_rec_frame(fx.r, i, &g) || g.channel < 1 || g.channel > 2 || g.size != 1 ||
        g.flags != (uint16_t)next[g.channel]++)
      bad++;
  }
  CHECK_EQ(bad, 0);
  CHECK_EQ(next[1], WAKE_PEER_N);
  CHECK_EQ(next[2], WAKE_PEER_N);
  CHECK_EQ(ts_counter(fx.srv, "drops"), 0);
  for (int i = 0; i < 2; i++) close(p[i].fd);
  teardown(&fx);
}

/* stop() while reading is paused with a read's rest kept (the I/O
** thread's read buffer, handed to the connection): stop returns, the
** kept bytes go with the connection (the sanitizer builds' leak checks),
** and no more frames arrive than were read. */
static void test_stop_paused_with_rest_kept(void) {
  fixture fx;
  setup(&fx);
  fx.r->hook = hold_until_cancelled;      /* the first delivery holds */
  int fd = ts_dial(fx.port);
  CHECK(fd >= 0);
  size_t cap = 128 + (size_t)SMALL_N * 40;
  uint8_t *b = malloc(cap);
  size_t n = ts_zmtp_hello(b, SL_ZMTP_PUSH);
  for (int k = 0; k < SMALL_N; k++) n += rogue_msg(b + n, 0, 0, 0, "twenty-one bytes long");
  CHECK(ts_send_all(fd, b, n));
  CHECK(ts_counter_reaches(fx.srv, "rxFrames", 1024, 30));   /* paused */
  CHECK(ts_rec_await(fx.r, 1, 0, 0, 30));
  sl_object_stop(fx.srv);
  CHECK(ts_counter(fx.srv, "rxFrames") < SMALL_N);
  CHECK(ts_counter(fx.srv, "drops") >= 1);
  free(b);
  close(fd);
  teardown(&fx);
}

static const struct tt_case cases[] = {
    {"garbage is closed and logged", test_garbage},
    {"a bad greeting signature", test_bad_signature},
    {"a mechanism other than NULL", test_wrong_mechanism},
    {"READY with an incompatible socket type", test_wrong_socket_type},
    {"a message before READY", test_message_before_ready},
    {"a 3-part message", test_three_parts},
    {"4 parts of the wrong sizes", test_wrong_part_sizes},
    {"a message over the maximum size", test_over_max_size},
    {"a peer gone in the middle of a message", test_disconnect_mid_message},
    {"a large body in two halves, then a small message", test_large_body_in_halves},
    {"a peer gone halfway through a large body", test_large_body_cut},
    {"large frames arrive whole and in order, fast or slow reader",
     test_big_frames_in_order},
    {"a reader gone while a sender writes: a counted drop", test_reader_gone_mid_write},
    {"stop() while a sender writes into a full socket", test_stop_during_write},
    {"the delivery queue fills to its byte limit and no further", test_rx_byte_limit},
    {"the delivery queue's frame limit holds with small frames", test_rx_frame_limit},
    {"a frame larger than the byte limit passes alone", test_rx_frame_over_limit},
    {"stop() with the delivery queue full at its byte limit", test_stop_with_full_queue},
    {"the send queue holds up to its byte limit", test_tx_byte_limit},
    {"small frames, many per write, partial writes: whole and in order",
     test_small_frames_coalesced},
    {"stop() with small frames queued behind a full socket",
     test_stop_with_small_frames_queued},
    {"small frames: a read paused many times delivers each once, in order",
     test_small_frames_paused_reads},
    {"small frames requested in batches: every size, whole, sized as asked",
     test_small_frames_batched},
    {"small frames from a pool set to other blocks", test_small_frames_other_pool},
    {"stop() while a read's small frames are being made", test_stop_mid_batch},
    {"the delivery is woken for every read, across the batch bounds",
     test_delivery_wakes_at_batch_bounds},
    {"two peers: the delivery finds both peers' frames, each in order",
     test_delivery_wakes_two_peers},
    {"stop() while reading is paused with a read's rest kept",
     test_stop_paused_with_rest_kept},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
