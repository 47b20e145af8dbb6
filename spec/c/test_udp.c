/*
** The UDP endpoints against plain sockets: datagrams from a raw socket
** arrive as frames, our frames arrive at a raw socket byte for byte, an
** oversize datagram is dropped and counted, a zero-length one ignored, a
** blocked downstream makes the kernel drop datagrams (counted), and stop()
** is prompt in every state. 127.0.0.1 only; every wait is bounded.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/streamlua.h"
#include "streamlua/udp.h"
#include "support.h"
#include "tt.h"

/* A recorder on src's master. */
static ts_rec *rec_new(sl_object *src) { return ts_rec_on(src, 0); }

/* The last frame, its payload in buf. */
static ts_got last_of(ts_rec *r, uint8_t *buf, size_t cap) {
  ts_got g = {0};
  ts_rec_last(r, &g, buf, cap);
  return g;
}

static sl_object *server(int jumbo) {
  sl_error err;
  sl_object *s = sl_udp_object(sl_udp_new("127.0.0.1", 0, 1, jumbo, &err));
  if (s == NULL) {
    printf("server: %s\n", err.msg);
    abort();
  }
  return s;
}

static void fill(uint8_t *b, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i * 31 + seed);
}

static void test_raw_to_server(void) {
  sl_object *s = server(0);
  ts_rec *r = rec_new(s);
  uint32_t rport;
  int fd = ts_udp_socket(&rport);
  uint8_t b[1472];
  fill(b, sizeof b, 1);
  ts_udp_send(fd, sl_udp_port(sl_udp_from_object(s)), b, 0);            /* ignored, as Rogue */
  ts_udp_send(fd, sl_udp_port(sl_udp_from_object(s)), b, sizeof b);
  CHECK(ts_rec_wait(r, 1, 30));
  CHECK_EQ(ts_rec_count(r), 1);
  uint8_t got[sizeof b];
  ts_got g = last_of(r, got, sizeof got);
  CHECK_EQ(g.size, sizeof b);
  CHECK(memcmp(got, b, sizeof b) == 0);
  CHECK_EQ(g.channel, 0);
  CHECK_EQ(g.error, 0);
  CHECK_EQ(g.flags, 0);
  char ip[16];
  uint32_t pport = 0;
  CHECK(sl_udp_peer(sl_udp_from_object(s), ip, &pport));
  CHECK_STR(ip, "127.0.0.1");
  CHECK_EQ(pport, rport);
  CHECK_EQ(ts_counter(s, "rxFrames"), 1);
  CHECK_EQ(ts_counter(s, "rxBytes"), sizeof b);
  close(fd);
  sl_object_stop(s);
  sl_object_unref(s);
  sl_object_unref(ts_rec_object(r));
}

/* A datagram over maxPayload: dropped and counted; the next one is fine. */
static void test_raw_oversize(void) {
  sl_log_set_emit(0);
  sl_object *s = server(0);
  ts_rec *r = rec_new(s);
  uint32_t rport;
  int fd = ts_udp_socket(&rport);
  uint8_t b[4000];
  fill(b, sizeof b, 2);
  ts_udp_send(fd, sl_udp_port(sl_udp_from_object(s)), b, 1473);
  ts_udp_send(fd, sl_udp_port(sl_udp_from_object(s)), b, 100);
  CHECK(ts_rec_wait(r, 1, 30));
  CHECK_EQ(ts_rec_count(r), 1);
  uint8_t got[sizeof b];
  CHECK_EQ(last_of(r, got, sizeof got).size, 100);
  CHECK_EQ(ts_counter(s, "rxOversize"), 1);
  CHECK_EQ(ts_counter(s, "drops"), 1);
  close(fd);
  sl_object_unref(s);             /* destroy stops it */
  sl_object_unref(ts_rec_object(r));
  sl_log_set_emit(1);
}

/* Our frames reach a plain socket byte for byte, one datagram each. */
static void test_client_to_raw(void) {
  uint32_t rport;
  int fd = ts_udp_socket(&rport);
  sl_error err;
  sl_object *c = sl_udp_object(sl_udp_new("127.0.0.1", rport, 0, 1, &err));
  CHECK(c != NULL);
  sl_object *m = sl_master_new(NULL);
  sl_master_add_slave(m->master, c->slave);
  static const uint32_t sizes[] = {1, 100, 1472, 4096, 8972};
  for (unsigned i = 0; i < 5; i++) {
    sl_frame *f = sl_master_req_frame(m->master, sizes[i], 1);
    uint8_t b[8972];
    fill(b, sizes[i], i);
    sl_frame_write(f, b, 0, sizes[i]);
    sl_frame_set_channel(f, 7);          /* not carried */
    sl_master_send_frame(m->master, f);
    sl_frame_unref(f);
    uint8_t got[9100];
    ssize_t n = recv(fd, got, sizeof got, 0);
    CHECK_EQ(n, sizes[i]);
    CHECK(n == (ssize_t)sizes[i] && memcmp(got, b, sizes[i]) == 0);
  }
  CHECK_EQ(ts_counter(c, "txFrames"), 5);
  /* a batch (accept_frames: one sendmmsg) keeps the order */
  sl_frame *fs[40];
  for (unsigned i = 0; i < 40; i++) {
    fs[i] = sl_master_req_frame(m->master, 4, 1);
    sl_frame_write(fs[i], &i, 0, 4);
  }
  sl_master_send_frames(m->master, fs, 40);
  sl_frame_unref_many(fs, 40);
  int in_order = 1;
  for (unsigned i = 0; i < 40; i++) {
    unsigned v = 99;
    in_order &= recv(fd, &v, sizeof v, 0) == 4 && v == i;
  }
  CHECK(in_order);
  CHECK_EQ(ts_counter(c, "txFrames"), 45);
  close(fd);
  sl_object_unref(m);
  sl_object_stop(c);
  sl_object_unref(c);
}

/* Downstream blocked: the receive thread waits in its delivery, the
** kernel's buffer fills and it drops; its count is read back, so every
** datagram sent is either delivered or counted, none lost unseen. */
static void test_kernel_drops_counted(void) {
  enum { SENT = 6000 };
  sl_log_set_emit(0);
  sl_object *s = server(0);
  ts_rec *r = rec_new(s);
  ts_rec_shut(r);
  uint32_t rport;
  int fd = ts_udp_socket(&rport);
  uint8_t b[8] = {0};
  for (int i = 0; i < SENT; i++) ts_udp_send(fd, sl_udp_port(sl_udp_from_object(s)), b, sizeof b);
  ts_counter_reaches(s, "rxDrops", 1, 20);
  uint64_t drops = ts_counter(s, "rxDrops");
  CHECK(drops > 0);
  CHECK_EQ(ts_counter(s, "drops"), drops);
  ts_rec_open(r);
  for (int i = 0; i < 3000 && (uint64_t)ts_rec_count(r) + drops < SENT; i++) {
    sleep_ms(10);
    drops = ts_counter(s, "rxDrops");
  }
  CHECK_EQ((uint64_t)ts_rec_count(r) + drops, SENT);
  CHECK_EQ(ts_counter(s, "rxFrames"), (uint64_t)ts_rec_count(r));
  close(fd);
  sl_object_stop(s);
  sl_object_unref(s);
  sl_object_unref(ts_rec_object(r));
  sl_log_set_emit(1);
}

/*
** setRxBufferCount(n): the buffer holds n full datagrams. The receive
** thread takes the first datagram and then waits on a shut recorder, so
** what comes next stays in the kernel: n jumbo datagrams after it all arrive
** once the recorder opens, none dropped. A smaller count later, and one
** under the kernel's default, leave the buffer as it is.
*/
static void test_rx_buffer_holds_count(void) {
  enum { N = 150 };
  sl_object *s = server(1);
  sl_udp *u = sl_udp_from_object(s);
  uint32_t dflt = sl_udp_rx_buffer_size(u);
  CHECK(dflt > 0);
  CHECK_EQ(sl_udp_set_rx_buffer_count(u, 1), 1);
  CHECK_EQ(sl_udp_rx_buffer_size(u), dflt);      /* never under the default */
  CHECK_EQ(sl_udp_set_rx_buffer_count(u, N), 1);
  uint32_t grown = sl_udp_rx_buffer_size(u);
  CHECK(grown >= N * 9000u);
  CHECK_EQ(sl_udp_set_rx_buffer_count(u, 2), 1);
  CHECK_EQ(sl_udp_rx_buffer_size(u), grown);     /* never shrinks */
  ts_rec *r = rec_new(s);
  ts_rec_shut(r);
  uint32_t rport;
  int fd = ts_udp_socket(&rport);
  static uint8_t b[SL_UDP_JUMBO_MAX_PAYLOAD];
  fill(b, sizeof b, 7);
  ts_udp_send(fd, sl_udp_port(u), b, sizeof b);
  CHECK(ts_rec_await(r, 1, 1, 0, 30));          /* the receiver is held */
  for (int i = 0; i < N; i++) ts_udp_send(fd, sl_udp_port(u), b, sizeof b);
  ts_rec_open(r);
  CHECK(ts_rec_wait(r, N + 1, 30));
  CHECK_EQ(ts_counter(s, "rxDrops"), 0);
  CHECK_EQ(ts_counter(s, "rxFrames"), (uint64_t)(N + 1));
  close(fd);
  sl_object_stop(s);
  sl_object_unref(s);
  sl_object_unref(ts_rec_object(r));
}

typedef struct sender_arg {
  sl_object *m;
  atomic_int done;
} sender_arg;

static void *blast(void *arg) {
  sender_arg *a = arg;
  uint8_t b[1472] = {0};
  for (int i = 0; i < 200000 && !atomic_load(&a->done); i++) {
    sl_frame *f = sl_master_req_frame(a->m->master, sizeof b, 1);
    sl_frame_write(f, b, 0, sizeof b);
    sl_master_send_frame(a->m->master, f);
    sl_frame_unref(f);
  }
  return NULL;
}

/* stop() is prompt: idle, and with a sender pushing hard at the time. */
static void test_stop_prompt(void) {
  sl_log_set_emit(0);
  sl_object *s = server(1);
  double t0 = now_s();
  sl_object_stop(s);
  CHECK(now_s() - t0 < 30.0);          /* a bound on a hang, not a speed */
  sl_object_unref(s);
  s = server(0);
  sl_error err;
  sl_object *c = sl_udp_object(sl_udp_new("127.0.0.1", sl_udp_port(sl_udp_from_object(s)), 0, 0, &err));
  sl_object *m = sl_master_new(NULL);
  sl_master_add_slave(m->master, c->slave);
  sender_arg a = {m, 0};
  pthread_t t;
  pthread_create(&t, NULL, blast, &a);
  ts_counter_reaches(c, "txFrames", 1, 30);
  t0 = now_s();
  sl_object_stop(c);
  sl_object_stop(s);
  CHECK(now_s() - t0 < 30.0);
  atomic_store(&a.done, 1);
  pthread_join(t, NULL);
  CHECK(ts_counter(c, "txFrames") > 0);
  sl_object_unref(m);
  sl_object_unref(c);
  sl_object_unref(s);
  sl_log_set_emit(1);
}

/* The hook of test_kept_frames: marks every frame and keeps every even
** one (a reference), as a downstream that queues some frames would. */
#define KEPT_N 64
static sl_frame *kept[KEPT_N];
static long hooked;

static void mark_and_keep(ts_rec *r, sl_frame *f) {
  (void)r;
  long i = hooked++;                    /* one receive thread delivers */
  sl_frame_set_channel(f, 9);
  sl_frame_set_error(f, 3);
  sl_frame_set_flags(f, 0x55);
  if (i % 2 == 0 && i < KEPT_N) kept[i] = sl_frame_ref(f);
}

/*
** The receive thread reuses a frame nobody kept for the next datagram: a
** frame kept downstream is never written again, and a reused one arrives
** with the marks of its last trip cleared.
*/
static void test_kept_frames(void) {
  sl_object *s = server(0);
  ts_rec *r = ts_rec_new(KEPT_N);
  r->hook = mark_and_keep;
  CHECK_EQ(sl_master_add_slave(s->master, &r->slave), SL_OK);
  uint32_t rport;
  int fd = ts_udp_socket(&rport);
  uint8_t b[200];
  for (long i = 0; i < KEPT_N; i++) {        /* one at a time: none dropped */
    fill(b, sizeof b, (unsigned)i);
    ts_udp_send(fd, sl_udp_port(sl_udp_from_object(s)), b, sizeof b);
    CHECK(ts_rec_wait(r, i + 1, 30));
  }
  for (long i = 0; i < KEPT_N; i++) {
    ts_got g;
    CHECK(ts_rec_frame(r, i, &g));
    CHECK_EQ(g.channel, 0);
    CHECK_EQ(g.error, 0);
    CHECK_EQ(g.flags, 0);
    CHECK_EQ(g.size, sizeof b);
    if (kept[i] == NULL) continue;
    fill(b, sizeof b, (unsigned)i);
    uint8_t got[sizeof b];
    sl_frame_read(kept[i], got, 0, sizeof got);
    CHECK(memcmp(got, b, sizeof b) == 0);   /* never overwritten */
    sl_frame_unref(kept[i]);
    kept[i] = NULL;
  }
  close(fd);
  sl_object_stop(s);
  sl_object_unref(s);
  sl_object_unref(ts_rec_object(r));
}

static void test_errors(void) {
  sl_error err;
  CHECK(sl_udp_object(sl_udp_new("127.0.0.1", 0, 0, 0, &err)) == NULL);
  CHECK(strstr(err.msg, "bad port") != NULL);
  CHECK(sl_udp_object(sl_udp_new("no.such.host.invalid", 9, 0, 0, &err)) == NULL);
  CHECK(strstr(err.msg, "cannot resolve") != NULL);
  sl_object *s = server(0);
  char want[64];
  snprintf(want, sizeof want, "cannot bind 127.0.0.1:%u: Address already in use",
           (unsigned)sl_udp_port(sl_udp_from_object(s)));
  CHECK(sl_udp_object(sl_udp_new("127.0.0.1", sl_udp_port(sl_udp_from_object(s)), 1, 0, &err)) == NULL);
  CHECK_STR(err.msg, want);
  CHECK_EQ(sl_udp_max_payload(sl_udp_from_object(s)), SL_UDP_MAX_PAYLOAD);
  sl_object_unref(s);
}

static const struct tt_case cases[] = {
    {"a raw datagram arrives as a frame", test_raw_to_server},
    {"an oversize datagram is dropped and counted", test_raw_oversize},
    {"our frames reach a raw socket byte for byte", test_client_to_raw},
    {"the kernel's drops are counted: nothing is lost unseen", test_kernel_drops_counted},
    {"the receive buffer holds the count asked, never under the default",
     test_rx_buffer_holds_count},
    {"stop is prompt, idle or busy", test_stop_prompt},
    {"a frame kept downstream is never reused; a reused one comes clean",
     test_kept_frames},
    {"bad arguments and a port in use", test_errors},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
