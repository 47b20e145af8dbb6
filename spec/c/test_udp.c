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
#include "tt.h"

static uint64_t counter(sl_object *o, const char *name) {
  sl_counter c[SL_COUNTERS_MAX];
  size_t n = sl_object_counters(o, c, SL_COUNTERS_MAX);
  for (size_t i = 0; i < n; i++)
    if (strcmp(c[i].name, name) == 0) return c[i].value;
  return 0;
}

/* A raw UDP socket bound to 127.0.0.1 (a free port), 30 s receive timeout. */
static int raw_socket(uint32_t *port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct timeval tv = {30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&sa, sizeof sa);
  socklen_t len = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &len);
  *port = ntohs(sa.sin_port);
  return fd;
}

static void raw_send(int fd, uint32_t port, const void *p, size_t n) {
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)port);
  sendto(fd, p, n, 0, (struct sockaddr *)&sa, sizeof sa);
}

/* A slave that keeps the last frame's bytes; it can be told to block. */
typedef struct rec {
  sl_object obj;
  sl_slave slave;
  atomic_int frames;
  atomic_int hold;             /* accept waits while set (bounded: 30 s) */
  uint32_t len;
  uint8_t last[9000];
  uint8_t channel, error;
  uint16_t flags;
} rec;

static void rec_accept(sl_slave *s, sl_frame *f) {
  rec *r = (rec *)s->owner;
  for (int i = 0; i < 3000 && atomic_load(&r->hold); i++) sleep_ms(10);
  r->len = sl_frame_get_payload(f);
  if (r->len > sizeof r->last) r->len = sizeof r->last;
  sl_frame_read(f, r->last, 0, r->len);
  r->channel = sl_frame_get_channel(f);
  r->error = sl_frame_get_error(f);
  r->flags = sl_frame_get_flags(f);
  atomic_fetch_add(&r->frames, 1);
}

static const sl_slave_ops rec_ops = {.accept_frame = rec_accept};

static void rec_destroy(sl_object *obj) {
  sl_slave_fini(&((rec *)obj)->slave);
  free(obj);
}

static rec *rec_new(sl_object *src) {
  rec *r = calloc(1, sizeof *r);
  sl_object_init(&r->obj, "Rec", rec_destroy);
  if (sl_slave_init(&r->slave, &rec_ops, &r->obj) != SL_OK) abort();
  sl_master_add_slave(src->master, &r->slave);
  return r;
}

static int wait_frames(rec *r, int n) {
  for (int i = 0; i < 3000 && atomic_load(&r->frames) < n; i++) sleep_ms(10);
  return atomic_load(&r->frames) == n;
}

static sl_object *server(int jumbo) {
  char err[128];
  sl_object *s = sl_udp_new("127.0.0.1", 0, 1, jumbo, err, sizeof err);
  if (s == NULL) {
    printf("server: %s\n", err);
    abort();
  }
  return s;
}

static void fill(uint8_t *b, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i * 31 + seed);
}

static void test_raw_to_server(void) {
  sl_object *s = server(0);
  rec *r = rec_new(s);
  uint32_t rport;
  int fd = raw_socket(&rport);
  uint8_t b[1472];
  fill(b, sizeof b, 1);
  raw_send(fd, sl_udp_port(s), b, 0);            /* ignored, as Rogue */
  raw_send(fd, sl_udp_port(s), b, sizeof b);
  CHECK(wait_frames(r, 1));
  CHECK_EQ(r->len, sizeof b);
  CHECK(memcmp(r->last, b, sizeof b) == 0);
  CHECK_EQ(r->channel, 0);
  CHECK_EQ(r->error, 0);
  CHECK_EQ(r->flags, 0);
  char ip[16];
  uint32_t pport = 0;
  CHECK(sl_udp_peer(s, ip, &pport));
  CHECK_STR(ip, "127.0.0.1");
  CHECK_EQ(pport, rport);
  CHECK_EQ(counter(s, "rxFrames"), 1);
  CHECK_EQ(counter(s, "rxBytes"), sizeof b);
  close(fd);
  sl_object_stop(s);
  sl_object_unref(s);
  sl_object_unref(&r->obj);
}

/* A datagram over maxPayload: dropped and counted; the next one is fine. */
static void test_raw_oversize(void) {
  sl_log_set_emit(0);
  sl_object *s = server(0);
  rec *r = rec_new(s);
  uint32_t rport;
  int fd = raw_socket(&rport);
  uint8_t b[4000];
  fill(b, sizeof b, 2);
  raw_send(fd, sl_udp_port(s), b, 1473);
  raw_send(fd, sl_udp_port(s), b, 100);
  CHECK(wait_frames(r, 1));
  CHECK_EQ(r->len, 100);
  CHECK_EQ(counter(s, "rxOversize"), 1);
  CHECK_EQ(counter(s, "drops"), 1);
  close(fd);
  sl_object_unref(s);             /* destroy stops it */
  sl_object_unref(&r->obj);
  sl_log_set_emit(1);
}

/* Our frames reach a plain socket byte for byte, one datagram each. */
static void test_client_to_raw(void) {
  uint32_t rport;
  int fd = raw_socket(&rport);
  char err[128];
  sl_object *c = sl_udp_new("127.0.0.1", rport, 0, 1, err, sizeof err);
  CHECK(c != NULL);
  sl_object *m = sl_master_new();
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
  CHECK_EQ(counter(c, "txFrames"), 5);
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
  CHECK_EQ(counter(c, "txFrames"), 45);
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
  rec *r = rec_new(s);
  atomic_store(&r->hold, 1);
  uint32_t rport;
  int fd = raw_socket(&rport);
  uint8_t b[8] = {0};
  for (int i = 0; i < SENT; i++) raw_send(fd, sl_udp_port(s), b, sizeof b);
  for (int i = 0; i < 2000 && counter(s, "rxDrops") == 0; i++) sleep_ms(10);
  uint64_t drops = counter(s, "rxDrops");
  CHECK(drops > 0);
  CHECK_EQ(counter(s, "drops"), drops);
  atomic_store(&r->hold, 0);
  for (int i = 0; i < 3000 && (uint64_t)atomic_load(&r->frames) + drops < SENT; i++) {
    sleep_ms(10);
    drops = counter(s, "rxDrops");
  }
  CHECK_EQ((uint64_t)atomic_load(&r->frames) + drops, SENT);
  CHECK_EQ(counter(s, "rxFrames"), (uint64_t)atomic_load(&r->frames));
  close(fd);
  sl_object_stop(s);
  sl_object_unref(s);
  sl_object_unref(&r->obj);
  sl_log_set_emit(1);
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
  char err[128];
  sl_object *c = sl_udp_new("127.0.0.1", sl_udp_port(s), 0, 0, err, sizeof err);
  sl_object *m = sl_master_new();
  sl_master_add_slave(m->master, c->slave);
  sender_arg a = {m, 0};
  pthread_t t;
  pthread_create(&t, NULL, blast, &a);
  for (int i = 0; i < 3000 && counter(c, "txFrames") == 0; i++) sleep_ms(10);
  t0 = now_s();
  sl_object_stop(c);
  sl_object_stop(s);
  CHECK(now_s() - t0 < 30.0);
  atomic_store(&a.done, 1);
  pthread_join(t, NULL);
  CHECK(counter(c, "txFrames") > 0);
  sl_object_unref(m);
  sl_object_unref(c);
  sl_object_unref(s);
  sl_log_set_emit(1);
}

static void test_errors(void) {
  char err[128] = "";
  CHECK(sl_udp_new("127.0.0.1", 0, 0, 0, err, sizeof err) == NULL);
  CHECK(strstr(err, "bad port") != NULL);
  CHECK(sl_udp_new("no.such.host.invalid", 9, 0, 0, err, sizeof err) == NULL);
  CHECK(strstr(err, "cannot resolve") != NULL);
  sl_object *s = server(0);
  char want[64];
  snprintf(want, sizeof want, "cannot bind 127.0.0.1:%u: Address already in use",
           (unsigned)sl_udp_port(s));
  CHECK(sl_udp_new("127.0.0.1", sl_udp_port(s), 1, 0, err, sizeof err) == NULL);
  CHECK_STR(err, want);
  CHECK_EQ(sl_udp_max_payload(s), SL_UDP_MAX_PAYLOAD);
  sl_object_unref(s);
}

static const struct tt_case cases[] = {
    {"a raw datagram arrives as a frame", test_raw_to_server},
    {"an oversize datagram is dropped and counted", test_raw_oversize},
    {"our frames reach a raw socket byte for byte", test_client_to_raw},
    {"the kernel's drops are counted: nothing is lost unseen", test_kernel_drops_counted},
    {"stop is prompt, idle or busy", test_stop_prompt},
    {"bad arguments and a port in use", test_errors},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
