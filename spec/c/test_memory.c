/* The register bus core: transactions, Emulate, Hub, masters. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/memory.h"
#include "streamlua/status.h"
#include "support.h"
#include "tt.h"

static int hook_calls;
static void count_hook(sl_transaction *t, void *arg) {
  (void)t;
  (void)arg;
  hook_calls++;
}

static void test_lifecycle(void) {
  sl_transaction *a = sl_transaction_new(0x1000, 4, SL_MEM_WRITE, "abcd", 500000);
  sl_transaction *b = sl_transaction_new(0, 0, SL_MEM_READ, NULL, 1);
  CHECK(a != NULL && b != NULL);
  CHECK(sl_transaction_id(a) != 0);
  CHECK_EQ(sl_transaction_id(b), sl_transaction_id(a) + 1);
  CHECK_EQ(sl_transaction_address(a), 0x1000);
  CHECK_EQ(sl_transaction_size(a), 4);
  CHECK_EQ(sl_transaction_type(a), SL_MEM_WRITE);
  CHECK_EQ(sl_transaction_timeout(a), 500000);
  CHECK(memcmp(sl_transaction_data(a), "abcd", 4) == 0);
  CHECK(!sl_transaction_is_done(a));
  CHECK(!sl_transaction_expired(a));
  hook_calls = 0;
  sl_transaction_on_done(a, count_hook, NULL);
  CHECK_EQ(sl_transaction_done(a), 1);
  CHECK_EQ(hook_calls, 1);
  CHECK_EQ(sl_transaction_done(a), 0);   /* the first completion wins */
  CHECK_EQ(sl_transaction_error(a, "late"), 0);
  CHECK(!sl_transaction_failed(a));
  CHECK(sl_transaction_is_done(a) && sl_transaction_expired(a));
  CHECK_EQ(hook_calls, 1);
  sl_transaction_on_done(a, count_hook, NULL);   /* already done: runs now */
  CHECK_EQ(hook_calls, 2);
  /* errors append */
  char e[64];
  CHECK_EQ(sl_transaction_error(b, "one %d;", 1), 1);
  sl_transaction_error(b, " two");
  CHECK(sl_transaction_failed(b));
  sl_transaction_get_error(b, e, sizeof e);
  CHECK_STR(e, "one 1; two");
  CHECK_EQ(sl_mem_master_wait(b), SL_EINVAL);
  CHECK_STR(sl_mem_type_name(SL_MEM_VERIFY), "verify");
  sl_transaction_unref(a);
  sl_transaction_unref(b);
  /* timeout */
  sl_transaction *t = sl_transaction_new(0, 4, SL_MEM_READ, NULL, 20000);
  sl_transaction_start_timer(t);
  double t0 = now_s();
  CHECK_EQ(sl_mem_master_wait(t), SL_ETIMEDOUT);
  CHECK(now_s() - t0 >= 0.015);
  CHECK(sl_transaction_timed_out(t) && sl_transaction_expired(t));
  sl_transaction_get_error(t, e, sizeof e);
  char want[96];
  snprintf(want, sizeof want, "Timeout waiting for register transaction %u message response.",
           (unsigned)sl_transaction_id(t));
  CHECK_STR(e, want);   /* Rogue's text */
  sl_transaction_unref(t);
}

static void test_emulate(void) {
  sl_object *emu = sl_emulate_object(sl_emulate_new(4, 0, NULL));
  sl_object *mn = sl_mem_master_node_new(NULL);
  CHECK(emu != NULL && mn != NULL);
  sl_mem_master *m = mn->mem_master;
  sl_mem_master_set_slave(m, emu);
  CHECK_EQ(sl_mem_master_get_timeout(m), SL_MEM_DEFAULT_TIMEOUT_US);
  sl_transaction *t = sl_mem_master_request(m, 0xFFFFF000, 16, NULL, SL_MEM_READ,
                                            NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(t), SL_OK);
  static const uint8_t zero[16];
  CHECK(memcmp(sl_transaction_data(t), zero, 16) == 0);
  CHECK_EQ(sl_emulate_pages(sl_emulate_from_object(emu)), 0);   /* reading makes no page */
  sl_transaction_unref(t);
  /* across pages, far apart */
  uint8_t data[6000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7);
  t = sl_mem_master_request(m, 0x10000800, sizeof data, data, SL_MEM_WRITE, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(t), SL_OK);
  sl_transaction_unref(t);
  t = sl_mem_master_request(m, 0x7000000000ull, 4, "wxyz", SL_MEM_POST, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(t), SL_OK);
  sl_transaction_unref(t);
  CHECK_EQ(sl_emulate_pages(sl_emulate_from_object(emu)), 3);
  t = sl_mem_master_request(m, 0x10000800, sizeof data, NULL, SL_MEM_VERIFY, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(t), SL_OK);
  CHECK(memcmp(sl_transaction_data(t), data, sizeof data) == 0);
  sl_transaction_unref(t);
  sl_object_unref(emu);   /* the master still holds it */
  t = sl_mem_master_request(m, 0x7000000002ull, 2, NULL, SL_MEM_READ, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(t), SL_OK);
  CHECK(memcmp(sl_transaction_data(t), "yz", 2) == 0);
  sl_transaction_unref(t);
  /* unconnected */
  sl_mem_master_set_slave(m, NULL);
  t = sl_mem_master_request(m, 0, 4, NULL, SL_MEM_READ, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(t), SL_EINVAL);
  char e[128];
  sl_transaction_get_error(t, e, sizeof e);
  CHECK_STR(e, SL_MEM_UNCONNECTED);
  sl_transaction_unref(t);
  sl_object_unref(mn);
}

/* A slave of max access 4 that records parts and fails the one at
** fail_addr; completion is now or, with TS_MEM_HOLD, by the test. */
static ts_mem_rec *rec_new(void) { return ts_mem_rec_new(4, 4, TS_MEM_NOW); }

static void test_hub_split(void) {
  sl_object *hub = sl_hub_object(sl_hub_new(0x100, 0, 0, NULL));
  ts_mem_rec *r = rec_new();
  sl_mem_master_set_slave(hub->mem_master, &r->obj);
  sl_object_unref(&r->obj);   /* the hub holds it */
  CHECK_EQ(sl_mem_slave_max_access(hub->mem_slave), 0xFFFFFFFFu);
  CHECK_EQ(sl_mem_slave_min_access(hub->mem_slave), 4);
  CHECK_EQ(sl_hub_get_offset(sl_hub_from_object(hub)), 0x100);
  sl_transaction *t = sl_transaction_new(0x20, 10, SL_MEM_WRITE, "0123456789", 100000);
  sl_mem_slave_do_transaction(hub->mem_slave, t);
  CHECK(sl_transaction_is_done(t) && !sl_transaction_failed(t));
  CHECK_EQ(r->n, 3);
  CHECK_EQ(r->addrs[0], 0x120);
  CHECK_EQ(r->addrs[2], 0x128);
  CHECK_EQ(r->sizes[2], 2);
  CHECK_EQ(sl_transaction_address(t), 0x20);   /* the caller's is unchanged */
  sl_transaction_unref(t);
  /* an error in a middle part reaches the parent though later parts pass */
  r->n = 0;
  r->fail_addr = 0x104;
  t = sl_transaction_new(0, 16, SL_MEM_READ, NULL, 100000);
  sl_mem_slave_do_transaction(hub->mem_slave, t);
  CHECK_EQ(r->n, 4);
  CHECK(sl_transaction_failed(t));
  char e[256];
  sl_transaction_get_error(t, e, sizeof e);
  CHECK(strstr(e, "failed with error: bad address") != NULL);
  sl_transaction_unref(t);
  /* parts completed out of order, the failing one first */
  r->n = 0;
  r->answer = TS_MEM_HOLD;
  t = sl_transaction_new(0, 12, SL_MEM_READ, NULL, 100000);
  sl_mem_slave_do_transaction(hub->mem_slave, t);
  CHECK_EQ(r->nheld, 3);
  sl_transaction_error(r->held[1], "middle");
  CHECK(!sl_transaction_is_done(t));
  sl_transaction_done(r->held[2]);
  sl_transaction_done(r->held[0]);
  CHECK(sl_transaction_failed(t));
  sl_transaction_get_error(t, e, sizeof e);
  CHECK(strstr(e, "middle") != NULL);
  ts_mem_rec_release(r);
  sl_transaction_unref(t);
  /* not split (one part, only the offset added): the error as it is */
  r->n = 0;
  r->answer = TS_MEM_NOW;
  r->fail_addr = 0x100;
  t = sl_transaction_new(0, 4, SL_MEM_READ, NULL, 100000);
  sl_mem_slave_do_transaction(hub->mem_slave, t);
  CHECK(sl_transaction_failed(t));
  sl_transaction_get_error(t, e, sizeof e);
  CHECK(strcmp(e, "bad address") == 0);
  sl_transaction_unref(t);
  sl_object_unref(hub);
}

static void *complete_later(void *arg) {
  ts_mem_rec *r = arg;
  sleep_ms(20);
  for (int i = 0; i < r->nheld; i++) {
    memcpy(sl_transaction_data(r->held[i]), "ABCD", sl_transaction_size(r->held[i]));
    sl_transaction_done(r->held[i]);
  }
  return NULL;
}

static void test_other_thread(void) {
  sl_object *mn = sl_mem_master_node_new(NULL);
  sl_object *hub = sl_hub_object(sl_hub_new(0, 0, 0, NULL));
  ts_mem_rec *r = rec_new();
  r->answer = TS_MEM_HOLD;
  sl_mem_master_set_slave(mn->mem_master, hub);
  sl_mem_master_set_slave(hub->mem_master, &r->obj);
  sl_object_unref(hub);
  sl_object_unref(&r->obj);
  sl_transaction *t = sl_mem_master_request(mn->mem_master, 0, 8, NULL, SL_MEM_READ,
                                            NULL, NULL);
  CHECK_EQ(r->nheld, 2);
  pthread_t th;
  pthread_create(&th, NULL, complete_later, r);
  CHECK_EQ(sl_mem_master_wait(t), SL_OK);
  CHECK(memcmp(sl_transaction_data(t), "ABCDABCD", 8) == 0);
  pthread_join(th, NULL);
  ts_mem_rec_release(r);
  sl_transaction_unref(t);
  /* a slave that answers after the waiter gave up: expired, ignored */
  sl_mem_master_set_timeout(mn->mem_master, 5000);
  sl_mem_master_set_timeout(mn->mem_master, 0);   /* ignored */
  t = sl_mem_master_request(mn->mem_master, 0, 4, NULL, SL_MEM_READ, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(t), SL_ETIMEDOUT);
  CHECK(sl_transaction_expired(r->held[0]));   /* t itself: it fits in one */
  pthread_create(&th, NULL, complete_later, r);
  pthread_join(th, NULL);
  CHECK(sl_transaction_timed_out(t));
  ts_mem_rec_release(r);
  sl_transaction_unref(t);
  sl_object_unref(mn);
}

/* Polls the clock (no waiting on the transaction) until it reads past t. */
static void pass_time(double t) {
  while (now_s() <= t) sleep_ms(1);
}

static void test_hold(void) {
  /* a hold keeps the deadline from failing the transaction */
  sl_transaction *t = sl_transaction_new(0, 8, SL_MEM_READ, NULL, 1000);
  sl_transaction *part = sl_transaction_new_part(t, 4, 4, 4);
  sl_transaction_parts_done(t);
  sl_transaction_start_timer(t);
  double after = now_s();
  sl_transaction_hold(part, 1);   /* a part holds its parent */
  sl_transaction_hold(t, 1);
  pass_time(after + 0.002);
  CHECK(!sl_transaction_check_deadline(t));
  CHECK(!sl_transaction_expired(part));
  sl_transaction_hold(t, 0);
  CHECK(!sl_transaction_check_deadline(t));   /* one hold left */
  sl_transaction_hold(part, 0);
  sl_transaction_hold(part, 0);               /* more releases than holds: nothing */
  CHECK(sl_transaction_check_deadline(t));
  CHECK(sl_transaction_timed_out(t) && sl_transaction_expired(part));
  /* a give-up still wins over a hold */
  sl_transaction *u = sl_transaction_new(0, 4, SL_MEM_READ, NULL, 1000000);
  sl_transaction_start_timer(u);
  sl_transaction_hold(u, 1);
  CHECK(sl_transaction_give_up(u, "interrupted"));
  /* done under a hold */
  sl_transaction *v = sl_transaction_new(0, 4, SL_MEM_READ, NULL, 1000000);
  sl_transaction_hold(v, 1);
  CHECK(sl_transaction_done(v));
  sl_transaction_hold(v, 0);
  CHECK_EQ(sl_mem_master_wait(v), SL_OK);
  sl_transaction_unref(part);
  sl_transaction_unref(t);
  sl_transaction_unref(u);
  sl_transaction_unref(v);
}

static void test_refresh(void) {
  sl_transaction *a = sl_transaction_new(0, 4, SL_MEM_READ, NULL, 1000);
  sl_transaction_start_timer(a);
  sl_transaction *b = sl_transaction_new(0, 4, SL_MEM_READ, NULL, 1000000);
  sl_transaction_start_timer(b);
  double after = now_s();
  sl_transaction *early = sl_transaction_new(0, 4, SL_MEM_READ, NULL, 1000);
  sl_transaction_refresh(a, early);           /* early's timer never started */
  pass_time(after + 1.0);                     /* both deadlines have passed */
  sl_transaction_refresh(b, a);               /* b started after a: renewed */
  CHECK(!sl_transaction_check_deadline(b));
  sl_transaction_refresh(a, b);               /* a started before b: not */
  CHECK(sl_transaction_check_deadline(a));
  CHECK(sl_transaction_timed_out(a));
  CHECK(sl_transaction_done(b));
  sl_transaction_refresh(b, a);               /* complete: nothing */
  CHECK(!sl_transaction_failed(b));
  sl_transaction_unref(a);
  sl_transaction_unref(b);
  sl_transaction_unref(early);
}

/* A slave's help for a waiter: called while the transaction is pending,
** counted while it runs, cleared by the completion. */
typedef struct fake_helper {
  sl_tran_helper h;
  int calls;
} fake_helper;

static int fake_help(sl_tran_helper *h, sl_transaction *t, long us) {
  fake_helper *f = (fake_helper *)(void *)h;
  f->calls++;
  CHECK_EQ(atomic_load(&h->users), 1);
  CHECK_EQ(us, 50);
  sl_transaction_done(t);
  return sl_transaction_is_done(t);
}

static void test_helper(void) {
  sl_transaction *t = sl_transaction_new(0, 4, SL_MEM_READ, NULL, 1000000);
  CHECK_EQ(sl_transaction_help(t, 50), -1);    /* pending, nobody helps */
  fake_helper f = {.h.help = fake_help};
  atomic_init(&f.h.users, 0);
  sl_transaction_set_helper(t, &f.h);
  CHECK_EQ(sl_transaction_help(t, 50), 1);
  CHECK_EQ(f.calls, 1);
  CHECK_EQ(atomic_load(&f.h.users), 0);
  CHECK_EQ(sl_transaction_help(t, 50), 1);     /* complete: not called again */
  sl_transaction_set_helper(t, &f.h);          /* complete: not set */
  CHECK_EQ(sl_transaction_help(t, 50), 1);
  CHECK_EQ(f.calls, 1);
  sl_transaction_unref(t);
}

static const struct tt_case cases[] = {
    {"a slave's help for a waiter", test_helper},
    {"a hold defers the deadline", test_hold},
    {"Rogue's timer refresh", test_refresh},
    {"transaction lifecycle", test_lifecycle},
    {"emulate sparse memory", test_emulate},
    {"hub split and error propagation", test_hub_split},
    {"completion from another thread", test_other_thread},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
