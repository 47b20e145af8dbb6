/* The register block: bit fields of the shadow, transactions, verify. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/memory.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"
#include "support.h"
#include "tt.h"

/* ---- a reference: one bit at a time ---- */

static int ref_bit(const uint8_t *p, uint64_t k) { return (p[k / 8] >> (k % 8)) & 1; }

static void ref_put(uint8_t *p, uint64_t k, int v) {
  if (v) p[k / 8] = (uint8_t)(p[k / 8] | (1u << (k % 8)));
  else p[k / 8] = (uint8_t)(p[k / 8] & ~(1u << (k % 8)));
}

static uint64_t ref_get(const uint8_t *p, uint64_t bit, uint32_t n) {
  uint64_t v = 0;
  for (uint32_t i = 0; i < n; i++) v |= (uint64_t)ref_bit(p, bit + i) << i;
  return v;
}

static void ref_set(uint8_t *p, uint64_t bit, uint32_t n, uint64_t v) {
  for (uint32_t i = 0; i < n; i++) ref_put(p, bit + i, (int)((v >> i) & 1));
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {   /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}

#define SH 18   /* shadow bytes: fields up to bit 70 + 64 end inside it */

/* Every width 1..64 at every offset 0..70, in shadows of random bytes,
** and in a shadow just big enough (the field ends at its last bit). */
static void test_uint_exhaustive(void) {
  int bad = 0;
  for (uint32_t n = 1; n <= 64 && !bad; n++) {
    for (uint64_t off = 0; off <= 70 && !bad; off++) {
      uint32_t sizes[2] = {SH, (uint32_t)((off + n + 7) / 8)};
      for (int s = 0; s < 2; s++) {
        sl_block *b = sl_block_new(0, sizes[s], NULL);
        uint8_t ref[SH], got[SH];
        for (uint32_t i = 0; i < sizes[s]; i++) ref[i] = (uint8_t)rnd();
        sl_block_set_shadow(b, 0, sizes[s], ref);
        uint64_t v = rnd(), out = 0;
        CHECK_EQ(sl_block_get_uint(b, off, n, &out), SL_OK);
        if (out != ref_get(ref, off, n)) bad = 1;
        CHECK_EQ(sl_block_set_uint(b, off, n, v), SL_OK);
        ref_set(ref, off, n, v);
        sl_block_get_shadow(b, 0, sizes[s], got);
        if (memcmp(got, ref, sizes[s]) != 0) bad = 1;
        sl_block_get_uint(b, off, n, &out);
        uint64_t m = n == 64 ? ~0ull : (1ull << n) - 1;
        if (out != (v & m)) bad = 1;
        if (bad) printf("  width %u at bit %llu (shadow %u)\n", n,
                        (unsigned long long)off, sizes[s]);
        sl_object_unref(sl_block_object(b));
      }
    }
  }
  CHECK(!bad);
}

/* Wide fields: set_bits/get_bits and sl_bit_copy at any bit offsets. */
static void test_bits_exhaustive(void) {
  int bad = 0;
  for (uint64_t n = 1; n <= 200 && !bad; n += (n < 70 ? 1 : 13)) {
    for (uint64_t off = 0; off <= 70 && !bad; off++) {
      for (uint64_t sbit = 0; sbit < 9 && !bad; sbit += 3) {
        uint32_t size = (uint32_t)((off + n + 7) / 8);
        sl_block *b = sl_block_new(0, size, NULL);
        uint8_t ref[64], src[64], got[64], out[64];
        for (uint32_t i = 0; i < size; i++) ref[i] = (uint8_t)rnd();
        for (uint32_t i = 0; i < 64; i++) src[i] = (uint8_t)rnd();
        sl_block_set_shadow(b, 0, size, ref);
        CHECK_EQ(sl_block_set_bits(b, off, n, src, sbit), SL_OK);
        for (uint64_t i = 0; i < n; i++) ref_put(ref, off + i, ref_bit(src, sbit + i));
        sl_block_get_shadow(b, 0, size, got);
        if (memcmp(got, ref, size) != 0) bad = 1;
        memset(out, 0xAA, sizeof out);
        CHECK_EQ(sl_block_get_bits(b, off, n, out), SL_OK);
        for (uint64_t i = 0; i < (n + 7) / 8 * 8; i++)
          if (ref_bit(out, i) != (i < n ? ref_bit(src, sbit + i) : 0)) bad = 1;
        if (out[(n + 7) / 8] != 0xAA) bad = 1;   /* nothing past ceil(n/8) */
        if (bad) printf("  %llu bits at bit %llu from bit %llu\n", (unsigned long long)n,
                        (unsigned long long)off, (unsigned long long)sbit);
        sl_object_unref(sl_block_object(b));
      }
    }
  }
  CHECK(!bad);
}

static void check_bytes(sl_block *b, const char *want, uint32_t n) {
  uint8_t got[64];
  sl_block_get_shadow(b, 0, n, got);
  CHECK(memcmp(got, want, n) == 0);
}

/* The reference's worked examples (bus bytes from the block's start). */
static void test_reference_examples(void) {
  sl_block *b = sl_block_new(0x8, 4, NULL);
  sl_block_set_uint(b, 4, 3, 2);                      /* enum bits 6:4 */
  sl_block_set_uint(b, 12, 8, (uint64_t)(int64_t)-3); /* Int8 at bit 12 */
  check_bytes(b, "\x20\xd0\x0f\x00", 4);
  sl_object_unref(sl_block_object(b));

  b = sl_block_new(0x10, 8, NULL);   /* split field 0x1234: bits 16 and 32 */
  sl_block_set_uint(b, 16, 8, 0x34);
  sl_block_set_uint(b, 32, 8, 0x12);
  check_bytes(b, "\x00\x00\x34\x00\x12\x00\x00\x00", 8);
  sl_object_unref(sl_block_object(b));

  b = sl_block_new(0x40, 12, NULL);  /* 0xABC over bits 28, 32, 64 */
  sl_block_set_uint(b, 28, 4, 0xC);
  sl_block_set_uint(b, 32, 4, 0xB);
  sl_block_set_uint(b, 64, 8, 0xA);
  check_bytes(b, "\x00\x00\x00\xc0\x0b\x00\x00\x00\x0a\x00\x00\x00", 12);
  sl_object_unref(sl_block_object(b));

  b = sl_block_new(0x20, 8, NULL);
  sl_block_set_uint(b, 8, 48, 0xABCDEF012345ull);
  check_bytes(b, "\x00\x45\x23\x01\xef\xcd\xab\x00", 8);
  uint64_t v;
  sl_block_get_uint(b, 8, 48, &v);
  CHECK_EQ(v, 0xABCDEF012345ull);
  sl_object_unref(sl_block_object(b));

  b = sl_block_new(0x40, 8, NULL);   /* 4 x 8 bits, stride 16 */
  for (int i = 0; i < 4; i++) sl_block_set_uint(b, 16 * i, 8, (uint64_t)i + 1);
  check_bytes(b, "\x01\x00\x02\x00\x03\x00\x04\x00", 8);
  sl_object_unref(sl_block_object(b));

  b = sl_block_new(0x28, 4, NULL);   /* 8 x Bool, stride 1: T F T T F F F T */
  static const int bools[8] = {1, 0, 1, 1, 0, 0, 0, 1};
  for (int i = 0; i < 8; i++) sl_block_set_uint(b, (uint64_t)i, 1, (uint64_t)bools[i]);
  check_bytes(b, "\x8d\x00\x00\x00", 4);
  sl_object_unref(sl_block_object(b));

  b = sl_block_new(0x30, 4, NULL);   /* 2 x Int12, stride 16: -1, 5 */
  sl_block_set_uint(b, 0, 12, (uint64_t)(int64_t)-1);
  sl_block_set_uint(b, 16, 12, 5);
  check_bytes(b, "\xff\x0f\x05\x00", 4);
  sl_object_unref(sl_block_object(b));

  b = sl_block_new(0x50, 4, NULL);   /* Fixed(16,8) -1.5: raw -384 */
  sl_block_set_uint(b, 0, 16, (uint64_t)(int64_t)-384);
  check_bytes(b, "\x80\xfe\x00\x00", 4);
  sl_object_unref(sl_block_object(b));

  b = sl_block_new(0x10, 16, NULL);  /* UInt128 2^127 + 0x1234 */
  static const uint8_t u128[16] = {0x34, 0x12, 0, 0, 0, 0, 0, 0,
                                   0, 0, 0, 0, 0, 0, 0, 0x80};
  sl_block_set_bits(b, 0, 128, u128, 0);
  check_bytes(b, (const char *)u128, 16);
  sl_object_unref(sl_block_object(b));
}

static void test_ranges(void) {
  sl_error err;
  CHECK(sl_block_new(0, 0, &err) == NULL);
  CHECK_EQ(err.status, SL_ERANGE);
  CHECK(sl_block_new(0, SL_BLOCK_MAX_SIZE + 1, &err) == NULL);
  sl_block *b = sl_block_new(0x100, 8, NULL);
  CHECK_EQ(sl_block_offset(b), 0x100);
  CHECK_EQ(sl_block_size(b), 8);
  uint64_t v;
  uint8_t buf[16];
  CHECK_EQ(sl_block_get_uint(b, 57, 8, &v), SL_ERANGE);
  CHECK_EQ(sl_block_set_uint(b, 0, 65, 1), SL_ERANGE);
  CHECK_EQ(sl_block_set_uint(b, 0, 0, 1), SL_ERANGE);
  CHECK_EQ(sl_block_get_uint(b, 56, 8, &v), SL_OK);
  CHECK_EQ(sl_block_get_bits(b, 1, 64, buf), SL_ERANGE);
  CHECK_EQ(sl_block_set_bits(b, UINT64_MAX - 2, 8, buf, 0), SL_ERANGE);
  CHECK_EQ(sl_block_get_shadow(b, 4, 5, buf), SL_ERANGE);
  CHECK_EQ(sl_block_set_shadow(b, 9, 0, buf), SL_ERANGE);
  CHECK_EQ(sl_block_start(b, SL_MEM_READ, 8, 1), SL_ERANGE);
  CHECK_EQ(sl_block_start(b, SL_MEM_READ, 0, 0), SL_ERANGE);
  CHECK_EQ(sl_block_start(b, 7, 0, 4), SL_EINVAL);
  CHECK(sl_block_from_object(sl_block_object(b)) == b);
  sl_object *m = sl_mem_master_node_new(NULL);
  CHECK(sl_block_from_object(m) == NULL);
  sl_object_unref(m);
  sl_object_unref(sl_block_object(b));
}

/* A block at 0x8 of a Hub at 0x1000 over an Emulate; m reads the Emulate. */
typedef struct rig {
  sl_block *b;
  sl_hub *hub;
  sl_emulate *emu;
  sl_object *m;
} rig;

static void rig_up(rig *r, uint32_t size) {
  r->emu = sl_emulate_new(4, 4096, NULL);
  r->hub = sl_hub_new(0x1000, 0, 0, NULL);
  r->b = sl_block_new(0x8, size, NULL);
  r->m = sl_mem_master_node_new(NULL);
  sl_mem_master_set_slave(sl_hub_object(r->hub)->mem_master, sl_emulate_object(r->emu));
  sl_mem_master_set_slave(sl_block_object(r->b)->mem_master, sl_hub_object(r->hub));
  sl_mem_master_set_slave(r->m->mem_master, sl_emulate_object(r->emu));
}

static void rig_down(rig *r) {
  sl_object_unref(sl_block_object(r->b));
  sl_object_unref(sl_hub_object(r->hub));
  sl_object_unref(sl_emulate_object(r->emu));
  sl_object_unref(r->m);
}

/* m's plain read or write of n bytes at addr. */
static void bus(rig *r, uint32_t type, uint64_t addr, void *p, uint32_t n) {
  sl_transaction *t = sl_mem_master_request(r->m->mem_master, addr, n, p, type, NULL, NULL);
  CHECK_EQ(sl_mem_master_wait(t), SL_OK);
  if (type == SL_MEM_READ) memcpy(p, sl_transaction_data(t), n);
  sl_transaction_unref(t);
}

static void test_emulate(void) {
  rig r;
  rig_up(&r, 8);
  char err[128];
  uint8_t got[8];
  /* Write: the shadow's bytes at offset + low; done when start returns */
  sl_block_set_uint(r.b, 0, 32, 0x12345678);
  CHECK_EQ(sl_block_start(r.b, SL_MEM_WRITE, 0, 4), SL_OK);
  CHECK(sl_block_landed(r.b));
  CHECK_EQ(sl_block_finish(r.b, err, sizeof err), SL_OK);
  CHECK_STR(err, "");
  bus(&r, SL_MEM_READ, 0x1008, got, 8);
  CHECK(memcmp(got, "\x78\x56\x34\x12\0\0\0\0", 8) == 0);
  uint32_t low, n;
  sl_block_verify_range(r.b, &low, &n);
  CHECK(low == 0 && n == 4);
  /* Post: no verify range */
  sl_block_set_uint(r.b, 32, 32, 0xCAFE);
  CHECK_EQ(sl_block_start(r.b, SL_MEM_POST, 4, 4), SL_OK);
  CHECK_EQ(sl_block_wait(r.b, err, sizeof err), SL_OK);
  sl_block_verify_range(r.b, &low, &n);
  CHECK(low == 0 && n == 4);
  bus(&r, SL_MEM_READ, 0x100c, got, 4);
  CHECK(memcmp(got, "\xfe\xca\0\0", 4) == 0);
  /* Read lands in the shadow's range only */
  bus(&r, SL_MEM_WRITE, 0x1008, "abcdefgh", 8);
  sl_block_set_shadow(r.b, 0, 8, (const uint8_t *)"........");
  CHECK_EQ(sl_block_start(r.b, SL_MEM_READ, 4, 4), SL_OK);
  CHECK_EQ(sl_block_wait(r.b, err, sizeof err), SL_OK);
  check_bytes(r.b, "....efgh", 8);
  /* Verify: its own buffer, masked against the write's snapshot */
  static const uint8_t ff[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  uint32_t idx;
  uint8_t g, e, mk;
  CHECK_EQ(sl_block_start(r.b, SL_MEM_VERIFY, 0, 4), SL_OK);
  CHECK_EQ(sl_block_wait(r.b, err, sizeof err), SL_OK);
  CHECK_EQ(sl_block_verify_check(r.b, ff, &idx, &g, &e, &mk), 1);
  CHECK(idx == 0 && g == 'a' && e == 0x78 && mk == 0xff);
  check_bytes(r.b, "....efgh", 8);   /* the shadow is not touched */
  sl_block_set_shadow(r.b, 0, 4, (const uint8_t *)"abcX");
  CHECK_EQ(sl_block_start(r.b, SL_MEM_WRITE, 0, 4), SL_OK);
  bus(&r, SL_MEM_WRITE, 0x100b, "d", 1);
  CHECK_EQ(sl_block_start(r.b, SL_MEM_VERIFY, 0, 4), SL_OK);   /* drops the write */
  CHECK_EQ(sl_block_wait(r.b, err, sizeof err), SL_OK);
  CHECK_EQ(sl_block_verify_check(r.b, ff, &idx, &g, &e, &mk), 1);
  CHECK(idx == 3 && g == 'd' && e == 'X' && mk == 0xff);
  static const uint8_t m3[8] = {0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0xff};
  CHECK_EQ(sl_block_verify_check(r.b, m3, &idx, &g, &e, &mk), 0);
  rig_down(&r);
}

static void test_failures(void) {
  char err[128];
  sl_block *b = sl_block_new(0, 4, NULL);
  /* unconnected */
  CHECK_EQ(sl_block_start(b, SL_MEM_READ, 0, 4), SL_OK);
  CHECK_EQ(sl_block_wait(b, err, sizeof err), SL_EINVAL);
  CHECK_STR(err, SL_MEM_UNCONNECTED);
  CHECK_EQ(sl_block_wait(b, err, sizeof err), SL_OK);   /* nothing outstanding */
  /* a slave that fails: the shadow keeps its bytes */
  ts_mem_rec *rec = ts_mem_rec_new(4, 4, TS_MEM_NOW);
  rec->fail_addr = 0;
  sl_mem_master_set_slave(sl_block_object(b)->mem_master, &rec->obj);
  sl_block_set_shadow(b, 0, 4, (const uint8_t *)"keep");
  CHECK_EQ(sl_block_start(b, SL_MEM_READ, 0, 4), SL_OK);
  CHECK_EQ(sl_block_wait(b, err, sizeof err), SL_EINVAL);
  CHECK_STR(err, "bad address");
  check_bytes(b, "keep", 4);
  /* a slave that never answers: the timeout */
  rec->answer = TS_MEM_NEVER;
  sl_mem_master_set_timeout(sl_block_object(b)->mem_master, 20000);
  CHECK_EQ(sl_block_start(b, SL_MEM_READ, 0, 4), SL_OK);
  CHECK(!sl_block_landed(b));
  char small[8];
  CHECK_EQ(sl_block_finish(b, small, sizeof small), SL_EBUSY);
  CHECK_EQ(sl_block_wait(b, err, sizeof err), SL_EINVAL);
  CHECK(strncmp(err, "Timeout waiting for register transaction ", 41) == 0);
  CHECK_EQ(rec->n, 2);
  /* dropped with a transaction outstanding: given up */
  rec->answer = TS_MEM_HOLD;
  CHECK_EQ(sl_block_start(b, SL_MEM_READ, 0, 4), SL_OK);
  CHECK_EQ(rec->nheld, 1);
  sl_transaction *held = sl_transaction_ref(rec->held[0]);
  sl_object_unref(sl_block_object(b));
  CHECK(sl_transaction_expired(held));
  sl_transaction_get_error(held, err, sizeof err);
  CHECK_STR(err, "block destroyed");
  CHECK_EQ(sl_transaction_done(held), 0);   /* late: nothing lands */
  sl_transaction_unref(held);
  sl_object_unref(&rec->obj);
}

/* A slave whose transactions another thread completes. */
typedef struct answerer {
  ts_mem_rec *rec;
  sl_transaction *t;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
} answerer;

static answerer ans = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void ans_do(sl_mem_slave *s, sl_transaction *t) {
  (void)s;
  pthread_mutex_lock(&ans.mu);
  ans.t = sl_transaction_ref(t);
  pthread_cond_signal(&ans.cv);
  pthread_mutex_unlock(&ans.mu);
}

static void *ans_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&ans.mu);
  for (;;) {
    while (ans.t == NULL && !ans.stop) pthread_cond_wait(&ans.cv, &ans.mu);
    if (ans.t == NULL) break;
    sl_transaction *t = ans.t;
    ans.t = NULL;
    pthread_mutex_unlock(&ans.mu);
    if (sl_transaction_type(t) != SL_MEM_WRITE && sl_transaction_type(t) != SL_MEM_POST) {
      uint8_t *d = sl_transaction_data(t);
      for (uint32_t i = 0; i < sl_transaction_size(t); i++)
        d[i] = (uint8_t)(sl_transaction_address(t) + i);
    }
    sl_transaction_done(t);
    sl_transaction_unref(t);
    pthread_mutex_lock(&ans.mu);
  }
  pthread_mutex_unlock(&ans.mu);
  return NULL;
}

static const sl_mem_slave_ops ans_ops = {.do_transaction = ans_do};

static void ans_destroy(sl_object *o) { free(o); }
static const sl_class ans_class = {.name = "test.Answerer", .destroy = ans_destroy};

/* Completions from another thread while this one works the shadow's
** other bytes (TSan watches the shadow). */
static void test_other_thread(void) {
  struct node { sl_object obj; sl_mem_slave slave; } *nd = calloc(1, sizeof *nd);
  sl_object_init(&nd->obj, &ans_class);
  sl_mem_slave_init(&nd->slave, &ans_ops, &nd->obj, 4, 4096);
  pthread_t th;
  ans.stop = 0;
  CHECK_EQ(pthread_create(&th, NULL, ans_main, NULL), 0);
  sl_block *b = sl_block_new(0x40, 16, NULL);
  sl_mem_master_set_slave(sl_block_object(b)->mem_master, &nd->obj);
  char err[128];
  int bad = 0;
  for (int i = 0; i < 2000 && !bad; i++) {
    uint32_t low = (uint32_t)(i % 2) * 8;
    CHECK_EQ(sl_block_start(b, i % 3 == 2 ? SL_MEM_WRITE : SL_MEM_READ, low, 8), SL_OK);
    uint32_t other = 64 - low * 8;   /* the other half's bits */
    uint64_t v;
    sl_block_set_uint(b, other + 3, 50, (uint64_t)i);
    sl_block_get_uint(b, other + 3, 50, &v);
    if (v != (uint64_t)i) bad = 1;
    if (sl_block_wait(b, err, sizeof err) != SL_OK) bad = 1;
    if (i % 3 != 2) {
      uint8_t got[8];
      sl_block_get_shadow(b, low, 8, got);
      for (uint32_t k = 0; k < 8; k++) if (got[k] != (uint8_t)(0x40 + low + k)) bad = 1;
    }
  }
  CHECK(!bad);
  sl_object_unref(sl_block_object(b));
  pthread_mutex_lock(&ans.mu);
  ans.stop = 1;
  pthread_cond_signal(&ans.cv);
  pthread_mutex_unlock(&ans.mu);
  pthread_join(th, NULL);
  sl_object_unref(&nd->obj);
}

/* A wait that gives up: the transaction fails "interrupted", and the
** block is free for the next one. */
static void test_interrupt(void) {
  ts_mem_rec *rec = ts_mem_rec_new(4, 4, TS_MEM_NEVER);
  sl_block *b = sl_block_new(0, 4, NULL);
  sl_mem_master_set_slave(sl_block_object(b)->mem_master, &rec->obj);
  sl_mem_master_set_timeout(sl_block_object(b)->mem_master, 60000000);
  char err[128];
  CHECK_EQ(sl_block_start(b, SL_MEM_READ, 0, 4), SL_OK);
  sl_wait_interruptible(1, NULL, NULL);
  sl_wait_interrupt();
  CHECK_EQ(sl_block_wait(b, err, sizeof err), SL_ECANCELED);
  sl_wait_take_interrupt();
  sl_wait_interruptible(0, NULL, NULL);
  CHECK(sl_block_landed(b));
  CHECK_EQ(sl_block_finish(b, err, sizeof err), SL_OK);   /* already taken off */
  /* stop gives the outstanding one up too */
  CHECK_EQ(sl_block_start(b, SL_MEM_READ, 0, 4), SL_OK);
  sl_object_stop(sl_block_object(b));
  CHECK_EQ(sl_block_wait(b, err, sizeof err), SL_EINVAL);
  CHECK_STR(err, "stopped");
  sl_object_unref(sl_block_object(b));
  sl_object_unref(&rec->obj);
}

static void test_bit_copy(void) {
  uint8_t d[4] = {0xff, 0xff, 0xff, 0xff};
  sl_bit_copy(d, 4, (const uint8_t *)"\x00\x00", 0, 16);
  CHECK(memcmp(d, "\x0f\x00\xf0\xff", 4) == 0);
  sl_bit_copy(d, 8, (const uint8_t *)"\xab\xcd", 0, 16);
  CHECK(memcmp(d, "\x0f\xab\xcd\xff", 4) == 0);
  sl_bit_copy(d, 0, (const uint8_t *)"\x01", 0, 0);
  CHECK(memcmp(d, "\x0f\xab\xcd\xff", 4) == 0);
}

static const struct tt_case cases[] = {
    {"uint_exhaustive", test_uint_exhaustive},
    {"bits_exhaustive", test_bits_exhaustive},
    {"reference_examples", test_reference_examples},
    {"ranges", test_ranges},
    {"emulate", test_emulate},
    {"failures", test_failures},
    {"other_thread", test_other_thread},
    {"interrupt", test_interrupt},
    {"bit_copy", test_bit_copy},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
