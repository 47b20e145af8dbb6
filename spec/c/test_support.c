/*
** The C tests' shared scaffolding (support.h) checked on its own: the
** recorder's copies, counts, gate and hooks, the fake master and the
** push/pull harness, counters and waits, sockets on 127.0.0.1 and
** temporary directories.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "streamlua/fifo.h"
#include "streamlua/pool.h"
#include "streamlua/status.h"
#include "support.h"
#include "tt.h"

/* ---- the recorder ---- */

static void test_rec_copies(void) {
  sl_object *m = ts_master_new();
  ts_rec *r = ts_rec_on(m, 2);
  CHECK_EQ(ts_rec_count(r), 0);
  ts_got g;
  CHECK(!ts_rec_frame(r, 0, &g));
  CHECK(!ts_rec_last(r, &g, NULL, 0));
  CHECK_EQ(ts_send(m->master, "one", 3, 1, 2, 3), SL_OK);
  CHECK_EQ(ts_send(m->master, "two", 3, 4, 5, 6), SL_OK);
  CHECK_EQ(ts_send(m->master, "three", 5, 7, 8, 9), SL_OK);
  CHECK_EQ(ts_rec_count(r), 3);
  CHECK(ts_rec_frame(r, 1, &g));
  CHECK(g.size == 3 && memcmp(g.data, "two", 3) == 0);
  CHECK(g.channel == 4 && g.error == 5 && g.flags == 6);
  CHECK(!ts_rec_frame(r, 2, &g));                 /* kept two only */
  char buf[8];
  CHECK(ts_rec_last(r, &g, buf, 4));              /* cut to the buffer */
  CHECK_EQ(g.size, 5);
  CHECK(g.data == (uint8_t *)buf && memcmp(buf, "thre", 4) == 0);
  CHECK_EQ(atomic_load(&r->reqs), 3);             /* reqFrame came here */
  CHECK_EQ(atomic_load(&r->last_req_size), 5);
  CHECK_EQ(sl_slave_get_frame_count(&r->slave), 3);   /* the base counts */
  uint32_t n;
  uint8_t *last = ts_rec_take(r, &n);
  CHECK(n == 5 && memcmp(last, "three", 5) == 0);
  free(last);
  CHECK(ts_rec_take(r, &n) == NULL);
  ts_rec_clear(r);
  CHECK_EQ(ts_rec_count(r), 0);
  CHECK(!ts_rec_frame(r, 0, &g));
  CHECK_EQ(ts_refs(ts_rec_object(r)), 2);         /* mine and the master's */
  sl_object_unref(m);
  CHECK_EQ(ts_refs(ts_rec_object(r)), 1);
  sl_object_unref(ts_rec_object(r));
}

typedef struct sender {
  sl_object *m;
  int n;
} sender;

static void *send_n(void *arg) {
  sender *s = arg;
  for (int i = 0; i < s->n; i++) ts_send(s->m->master, &i, sizeof i, 0, 0, 0);
  return NULL;
}

static void test_rec_gate(void) {
  sl_object *m = ts_master_new();
  ts_rec *r = ts_rec_on(m, 0);
  ts_rec_shut(r);
  sender s = {m, 3};
  pthread_t t;
  pthread_create(&t, NULL, send_n, &s);
  CHECK(ts_rec_await(r, 1, 1, 0, 20));            /* the first is held */
  CHECK(!ts_rec_await(r, 2, 0, 0, 0.05));         /* nothing passes it */
  ts_rec_pass(r, 1);
  CHECK(ts_rec_await(r, 2, 1, 1, 20));            /* one through, the next held */
  ts_rec_open(r);
  CHECK(ts_rec_await(r, 3, 0, 3, 20));
  CHECK(ts_rec_wait(r, 3, 20));
  pthread_join(t, NULL);
  sl_object_unref(m);
  sl_object_unref(ts_rec_object(r));
}

static void at_two(ts_rec *r, sl_frame *f) {
  (void)f;
  if (ts_rec_count(r) == 2) atomic_fetch_add((atomic_int *)r->ctx, 1);
}

static atomic_int freed;

static void count_free(ts_rec *r) {
  (void)r;
  atomic_fetch_add(&freed, 1);
}

static void test_rec_hooks(void) {
  atomic_int hits = 0;
  sl_object *m = ts_master_new();
  ts_rec *r = ts_rec_on(m, 0);
  r->hook = at_two;
  r->ctx = &hits;
  r->on_free = count_free;
  sl_object *other = ts_master_new();
  ts_rec_drop_after(r, other);                    /* my reference goes */
  for (int i = 0; i < 3; i++) ts_send(m->master, "x", 1, 0, 0, 0);
  CHECK_EQ(atomic_load(&hits), 1);
  sl_object_unref(m);
  CHECK_EQ(atomic_load(&freed), 0);
  sl_object_unref(ts_rec_object(r));
  CHECK_EQ(atomic_load(&freed), 1);
}

/* ---- the memory recorder ---- */

static void test_mem_rec(void) {
  ts_mem_rec *r = ts_mem_rec_new(4, 8, TS_MEM_NOW);
  r->fail_addr = 0x10;
  CHECK_EQ(sl_mem_slave_min_access(&r->slave), 4);
  CHECK_EQ(sl_mem_slave_max_access(&r->slave), 8);
  sl_transaction *a = sl_transaction_new(0x8, 4, SL_MEM_READ, NULL, 100000);
  sl_transaction *b = sl_transaction_new(0x10, 4, SL_MEM_READ, NULL, 100000);
  sl_mem_slave_do_transaction(&r->slave, a);
  sl_mem_slave_do_transaction(&r->slave, b);
  CHECK(sl_transaction_is_done(a) && !sl_transaction_failed(a));
  CHECK(sl_transaction_failed(b));
  CHECK(r->n == 2 && r->addrs[1] == 0x10 && r->sizes[1] == 4);
  sl_transaction_unref(a);
  sl_transaction_unref(b);
  r->answer = TS_MEM_HOLD;
  a = sl_transaction_new(0x20, 8, SL_MEM_WRITE, "12345678", 100000);
  sl_mem_slave_do_transaction(&r->slave, a);
  CHECK(!sl_transaction_is_done(a));
  CHECK(r->nheld == 1 && r->held[0] == a);
  sl_transaction_done(r->held[0]);
  ts_mem_rec_release(r);
  CHECK_EQ(r->nheld, 0);
  CHECK(sl_transaction_is_done(a));
  sl_transaction_unref(a);
  r->answer = TS_MEM_NEVER;
  a = sl_transaction_new(0x30, 4, SL_MEM_READ, NULL, 100000);
  sl_mem_slave_do_transaction(&r->slave, a);
  CHECK(!sl_transaction_is_done(a) && r->nheld == 0 && r->n == 4);
  sl_transaction_unref(a);
  sl_object_unref(&r->obj);
}

/* ---- the harness ---- */

static void test_harness(void) {
  ts_harness h;
  ts_harness_init(&h, sl_fifo_object(sl_fifo_new(0, 0, 1, NULL)), 4);
  CHECK_EQ(ts_send(h.master->master, "through", 7, 2, 0, 0), SL_OK);
  CHECK(ts_rec_wait(h.rec, 1, 20));
  ts_got g;
  CHECK(ts_rec_frame(h.rec, 0, &g) && g.size == 7 && g.channel == 2);
  sl_pool *p = sl_pool_new();
  CHECK_EQ(ts_push(h.node->slave, p, "pushed", 6), SL_OK);
  CHECK(ts_rec_wait(h.rec, 2, 20));
  CHECK(ts_rec_frame(h.rec, 1, &g) && memcmp(g.data, "pushed", 6) == 0);
  CHECK(ts_counter_reaches(h.node, "txFrames", 2, 20));
  CHECK_EQ(ts_counter(h.node, "no such counter"), UINT64_MAX);
  ts_harness_fini(&h);
  CHECK(h.node == NULL && h.rec == NULL);
  sl_pool_unref(p);
}

/* ---- waiting ---- */

static int is_set(void *arg) { return atomic_load((atomic_int *)arg); }

static void test_wait_until(void) {
  atomic_int flag = 1;
  CHECK(ts_wait_until(is_set, &flag, 1));
  atomic_store(&flag, 0);
  double t0 = now_s();
  CHECK(!ts_wait_until(is_set, &flag, 0.05));
  CHECK(now_s() - t0 >= 0.05);                    /* waited its bound */
}

/* ---- sockets ---- */

static void test_tcp(void) {
  uint32_t port = 0;
  int lfd = ts_listen(&port);
  CHECK(lfd >= 0 && port > 0);
  int c = ts_dial(port);
  CHECK(c >= 0);
  int s = ts_accept(lfd, 30);
  CHECK(s >= 0);
  static char big[1 << 20];
  memset(big, 'b', sizeof big);
  CHECK(ts_send_all(c, "hello", 5));
  char got[5];
  CHECK(ts_read_exact(s, got, 5) && memcmp(got, "hello", 5) == 0);
  CHECK(ts_send_all(s, big, 1000));
  close(s);
  CHECK(ts_closed_by_peer(c));                    /* bytes first, then the close */
  CHECK(!ts_read_exact(c, got, 1));
  close(c);
  close(lfd);
  CHECK(ts_free_port() > 0);
}

static void test_udp(void) {
  uint32_t pa = 0, pb = 0;
  int a = ts_udp_socket(&pa), b = ts_udp_socket(&pb);
  CHECK(a >= 0 && b >= 0 && pa != pb);
  CHECK(ts_udp_send(a, pb, "datagram", 8));
  char got[16];
  CHECK_EQ(recv(b, got, sizeof got, 0), 8);
  CHECK(memcmp(got, "datagram", 8) == 0);
  close(a);
  close(b);
}

static void test_zmtp_hello(void) {
  uint8_t out[128];
  size_t n = ts_zmtp_hello(out, SL_ZMTP_PUSH);
  CHECK(n > SL_ZMTP_GREETING_SIZE && n <= sizeof out);
  CHECK_EQ(out[0], 0xFF);                         /* a greeting's signature */
  CHECK(memmem(out, n, "PUSH", 4) != NULL);
}

/* ---- temporary directories ---- */

static void test_tmpdir(void) {
  char dir[64], path[128];
  CHECK_EQ(ts_tmpdir(dir, sizeof dir, "sl_support_"), 0);
  CHECK(strncmp(dir, "/tmp/sl_support_", 16) == 0);
  FILE *f = fopen(ts_path(path, sizeof path, dir, "file"), "w");
  CHECK(f != NULL);
  if (f != NULL) fclose(f);
  CHECK_EQ(mkdir(ts_path(path, sizeof path, dir, "sub"), 0700), 0);
  f = fopen(ts_path(path, sizeof path, dir, "sub/inner"), "w");
  if (f != NULL) fclose(f);
  CHECK_EQ(ts_rmdir(dir), 0);
  CHECK(access(dir, F_OK) != 0);
  char small[8];
  CHECK(ts_tmpdir(small, sizeof small, "too_long_a_prefix") != 0);
}

static const struct tt_case cases[] = {
    {"the recorder copies what it gets, the last frame always", test_rec_copies},
    {"the recorder's gate holds, passes and opens", test_rec_gate},
    {"the recorder's hook, action after the gate and free hook", test_rec_hooks},
    {"the memory recorder answers, holds or stays silent", test_mem_rec},
    {"the push/pull harness around a Fifo", test_harness},
    {"a bounded wait for a condition", test_wait_until},
    {"TCP on 127.0.0.1: listen, dial, send all, read exact, close", test_tcp},
    {"a UDP pair on free ports", test_udp},
    {"a ZMTP greeting and READY", test_zmtp_hello},
    {"temporary directories, made and removed whole", test_tmpdir},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
