/*
** sl_pool: variable and fixed mode, live-only counters, the block cache,
** the 24-bit meta sequence, external buffers, and the pool's lifetime
** (rogue-reference 1.5). Run under ASan/LSan, the lifetime cases prove
** there is no use-after-free and no leak.
*/
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "streamlua/frame.h"
#include "streamlua/pool.h"
#include "streamlua/status.h"
#include "support.h"
#include "tt.h"

#define CHECK_COUNTERS(p, count, bytes)              \
  do {                                               \
    CHECK_EQ(sl_pool_get_alloc_count(p), (count));   \
    CHECK_EQ(sl_pool_get_alloc_bytes(p), (bytes));   \
  } while (0)

static void test_variable_mode(void) {
  sl_pool *p = sl_pool_new();
  CHECK_EQ(sl_pool_get_fixed_size(p), 0);
  CHECK_EQ(sl_pool_get_pool_size(p), 0);
  CHECK_COUNTERS(p, 0, 0);
  sl_frame *f = sl_pool_req_frame(p, 1000);
  CHECK_EQ(sl_frame_buffer_count(f), 1);
  sl_buffer *b = sl_frame_buffer(f, 0);
  CHECK_EQ(b->raw_size, 1000);
  CHECK_EQ(b->alloc_size, 1000);
  CHECK(b->pool == p);
  CHECK_EQ(sl_frame_get_size(f), 1000);
  CHECK_EQ(sl_frame_get_payload(f), 0);
  CHECK_COUNTERS(p, 1, 1000);
  memset(b->data, 0x5a, 1000);              /* all of it is ours (ASan) */
  sl_frame *g = sl_pool_req_frame(p, 1);
  CHECK_EQ(sl_frame_buffer_count(g), 1);
  CHECK_EQ(sl_frame_get_size(g), 1);
  CHECK_COUNTERS(p, 2, 1001);
  sl_frame_unref(f);
  CHECK_COUNTERS(p, 1, 1);
  sl_frame_unref(g);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}

static void test_fixed_mode(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 4);
  CHECK_EQ(sl_pool_get_fixed_size(p), 4);

  sl_frame *f = sl_pool_req_frame(p, 10);   /* ceil(10/4) = 3 */
  CHECK_EQ(sl_frame_buffer_count(f), 3);
  for (size_t i = 0; i < 3; i++) {
    CHECK_EQ(sl_frame_buffer(f, i)->raw_size, 4);
    CHECK_EQ(sl_frame_buffer(f, i)->alloc_size, 4);
  }
  CHECK_EQ(sl_frame_get_size(f), 12);
  CHECK_COUNTERS(p, 3, 12);

  sl_frame *g = sl_pool_req_frame(p, 3);    /* raw 3, alloc 4 */
  CHECK_EQ(sl_frame_buffer_count(g), 1);
  CHECK_EQ(sl_frame_buffer(g, 0)->raw_size, 3);
  CHECK_EQ(sl_frame_buffer(g, 0)->alloc_size, 4);
  CHECK_EQ(sl_frame_get_size(g), 3);
  CHECK_COUNTERS(p, 4, 16);

  sl_frame *h = sl_pool_req_frame(p, 8);    /* exact multiple: 2 */
  CHECK_EQ(sl_frame_buffer_count(h), 2);
  CHECK_EQ(sl_frame_get_size(h), 8);
  CHECK_COUNTERS(p, 6, 24);

  uint32_t raw = 99;
  sl_buffer *b = sl_pool_alloc_buffer(p, 10, &raw);
  CHECK_EQ(raw, 4);
  CHECK_EQ(b->raw_size, 4);
  CHECK_EQ(b->alloc_size, 4);
  CHECK_COUNTERS(p, 7, 28);
  sl_pool_ret_buffer(b);
  CHECK_COUNTERS(p, 6, 24);

  sl_frame_unref(f);
  sl_frame_unref(g);
  sl_frame_unref(h);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}

static void test_zero_request(void) {
  sl_pool *p = sl_pool_new();
  sl_frame *f = sl_pool_req_frame(p, 0);
  CHECK_EQ(sl_frame_buffer_count(f), 0);
  CHECK_COUNTERS(p, 0, 0);
  sl_frame_unref(f);
  sl_pool_set_fixed_size(p, 4);
  f = sl_pool_req_frame(p, 0);
  CHECK_EQ(sl_frame_buffer_count(f), 0);
  CHECK_COUNTERS(p, 0, 0);
  sl_frame_unref(f);
  sl_pool_unref(p);
}

/* Cached blocks are not counted: the counters follow live buffers. */
static void test_counters_live_only(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 64);
  sl_pool_set_pool_size(p, 8);
  sl_frame *f = sl_pool_req_frame(p, 200);  /* 4 buffers */
  CHECK_COUNTERS(p, 4, 256);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  sl_frame_unref(f);
  CHECK_COUNTERS(p, 0, 0);
  CHECK_EQ(sl_pool_get_cached_count(p), 4);
  f = sl_pool_req_frame(p, 64);             /* from the cache */
  CHECK_COUNTERS(p, 1, 64);
  CHECK_EQ(sl_pool_get_cached_count(p), 3);
  sl_frame_unref(f);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}

/* A bare block (not a whole frame) is kept only with a fixed size and a
** pool size; either alone keeps nothing. */
static void test_cache_needs_both(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_pool_size(p, 4);              /* variable mode */
  uint32_t raw;
  sl_buffer *b = sl_pool_alloc_buffer(p, 16, &raw);
  sl_pool_ret_buffer(b);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  /* A zero-byte block must not be cached either: the next request of 64
  ** bytes would be handed that empty block. */
  b = sl_pool_alloc_buffer(p, 0, &raw);
  CHECK_EQ(raw, 0);
  sl_pool_ret_buffer(b);
  int kept_empty_block = !CHECK_EQ(sl_pool_get_cached_count(p), 0);
  b = sl_pool_alloc_buffer(p, 64, &raw);
  CHECK_EQ(b->alloc_size, 64);
  if (!kept_empty_block) memset(b->data, 1, 64);   /* ASan: 64 real bytes */
  sl_pool_ret_buffer(b);
  sl_pool_unref(p);

  p = sl_pool_new();
  sl_pool_set_fixed_size(p, 16);            /* pool size 0 */
  b = sl_pool_alloc_buffer(p, 16, &raw);
  sl_pool_ret_buffer(b);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}

static void test_cache_reuses_block(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 32);
  sl_pool_set_pool_size(p, 1);
  CHECK_EQ(sl_pool_get_pool_size(p), 1);
  uint32_t raw;
  sl_buffer *b1 = sl_pool_alloc_buffer(p, 32, &raw);
  uint8_t *d1 = b1->data;
  CHECK_EQ(sl_buffer_adjust_header(b1, 3), SL_OK);
  CHECK_EQ(sl_buffer_set_payload(b1, 5), SL_OK);
  sl_pool_ret_buffer(b1);
  CHECK_EQ(sl_pool_get_cached_count(p), 1);

  sl_buffer *b2 = sl_pool_alloc_buffer(p, 20, &raw);
  CHECK(b2 == b1);                          /* the same block */
  CHECK(b2->data == d1);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  CHECK_EQ(raw, 20);                        /* sized for this request */
  CHECK_EQ(b2->raw_size, 20);
  CHECK_EQ(b2->alloc_size, 32);
  CHECK_EQ(b2->head_room, 0);               /* and reset */
  CHECK_EQ(b2->tail_room, 0);
  CHECK_EQ(b2->payload, 0);
  sl_buffer *b3 = sl_pool_alloc_buffer(p, 32, &raw);
  CHECK(b3 != b2);                          /* cache empty: a new block */
  sl_pool_ret_buffer(b2);
  sl_pool_ret_buffer(b3);                   /* pool size 1: freed */
  CHECK_EQ(sl_pool_get_cached_count(p), 1);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}

static void test_cache_bounded(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 8);
  sl_pool_set_pool_size(p, 2);
  sl_frame *f = sl_pool_req_frame(p, 40);   /* 5 buffers */
  CHECK_EQ(sl_frame_buffer_count(f), 5);
  sl_frame_unref(f);
  CHECK_EQ(sl_pool_get_cached_count(p), 2);
  CHECK_COUNTERS(p, 0, 0);
  f = sl_pool_req_frame(p, 40);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  sl_frame_unref(f);
  CHECK_EQ(sl_pool_get_cached_count(p), 2);

  sl_pool_set_pool_size(p, 5);
  f = sl_pool_req_frame(p, 40);
  sl_frame_unref(f);
  CHECK_EQ(sl_pool_get_cached_count(p), 5);
  sl_pool_set_pool_size(p, 1);              /* shrinking trims the cache */
  CHECK_EQ(sl_pool_get_cached_count(p), 1);
  sl_pool_set_pool_size(p, 0);              /* the default count */
  CHECK_EQ(sl_pool_get_cached_count(p), 1);
  sl_pool_set_cache_bytes(p, 0);            /* nothing kept */
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  CHECK(sl_pool_get_cached_bytes(p) == 0);
  f = sl_pool_req_frame(p, 8);
  sl_frame_unref(f);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  sl_pool_unref(p);
}

static void test_fixed_change_drops_cache(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 16);
  sl_pool_set_pool_size(p, 4);
  sl_frame *f = sl_pool_req_frame(p, 48);
  sl_frame_unref(f);
  CHECK_EQ(sl_pool_get_cached_count(p), 3);
  sl_pool_set_fixed_size(p, 16);            /* no change: cache kept */
  CHECK_EQ(sl_pool_get_cached_count(p), 3);
  sl_pool_set_fixed_size(p, 64);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  f = sl_pool_req_frame(p, 64);             /* a real 64-byte block */
  CHECK_EQ(sl_frame_buffer_count(f), 1);
  CHECK_EQ(sl_frame_buffer(f, 0)->alloc_size, 64);
  memset(sl_frame_buffer(f, 0)->data, 0x77, 64);
  sl_frame_unref(f);
  CHECK_EQ(sl_pool_get_cached_count(p), 1);
  sl_pool_set_fixed_size(p, 0);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  sl_pool_unref(p);
}

/* meta is a rolling 24-bit sequence: +1 per buffer, and after 2^24
** buffers the same value comes round again. */
static void test_meta_sequence(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 8);
  sl_pool_set_pool_size(p, 1);              /* cheap: one cached block */
  uint32_t raw;
  sl_buffer *b = sl_pool_alloc_buffer(p, 8, &raw);
  uint32_t first = b->meta;
  CHECK(first <= 0xffffffu);
  sl_pool_ret_buffer(b);
  b = sl_pool_alloc_buffer(p, 8, &raw);
  CHECK_EQ(b->meta, (first + 1) & 0xffffffu);
  sl_pool_ret_buffer(b);
  int bad = 0;
  uint32_t prev = (first + 1) & 0xffffffu;
  for (uint32_t i = 2; i < (1u << 24); i++) {
    b = sl_pool_alloc_buffer(p, 8, &raw);
    if (b->meta != ((prev + 1) & 0xffffffu) || b->meta > 0xffffffu) bad++;
    prev = b->meta;
    sl_pool_ret_buffer(b);
  }
  CHECK_EQ(bad, 0);
  b = sl_pool_alloc_buffer(p, 8, &raw);     /* buffer number 2^24 */
  CHECK_EQ(b->meta, first);
  sl_pool_ret_buffer(b);
  sl_pool_unref(p);
}

static int released;
static void *released_arg;
static sl_buffer *released_buf;
static uint8_t external_block[48];

static void release_external(sl_buffer *b) {
  released++;
  released_arg = b->release_arg;
  released_buf = b;
  CHECK(b->data == external_block);
}

static void test_create_buffer(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 64);            /* same as alloc: still not */
  sl_pool_set_pool_size(p, 4);              /* cached, it is not ours */
  int token;
  released = 0;
  sl_buffer *b = sl_pool_create_buffer(p, external_block, 0x80000007u, 40, 64,
                                       release_external, &token);
  CHECK(b != NULL);
  CHECK(b->data == external_block);
  CHECK_EQ(b->meta, 0x80000007u);
  CHECK_EQ(b->raw_size, 40);
  CHECK_EQ(b->alloc_size, 64);
  CHECK_EQ(sl_buffer_get_size(b), 40);
  CHECK_COUNTERS(p, 1, 64);

  sl_frame *f = sl_frame_new();
  CHECK_EQ(sl_frame_append_buffer(f, b), SL_OK);
  CHECK_EQ(sl_frame_write(f, "external", 0, 8), SL_OK);
  CHECK(memcmp(external_block, "external", 8) == 0);
  sl_frame_ref(f);
  sl_frame_unref(f);
  CHECK_EQ(released, 0);                    /* still held */
  sl_frame_unref(f);
  CHECK_EQ(released, 1);
  CHECK(released_arg == &token);
  CHECK(released_buf == b);
  CHECK_COUNTERS(p, 0, 0);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);

  /* Through clear, too. */
  b = sl_pool_create_buffer(p, external_block, 1, 48, 48, release_external,
                            NULL);
  f = sl_frame_new();
  sl_frame_append_buffer(f, b);
  sl_frame_clear(f);
  CHECK_EQ(released, 2);
  CHECK(released_arg == NULL);
  CHECK_COUNTERS(p, 0, 0);
  sl_frame_unref(f);
  CHECK_EQ(released, 2);
  sl_pool_unref(p);
}

/* The pool's last reference goes first; the frame still has its buffers
** and they go back to the pool later, which is then freed. */
static void test_pool_outlives_last_ref(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 16);
  sl_pool_set_pool_size(p, 4);
  sl_frame *warm = sl_pool_req_frame(p, 32);
  sl_frame_unref(warm);                     /* two blocks in the cache */
  CHECK_EQ(sl_pool_get_cached_count(p), 2);

  sl_frame *f = sl_pool_req_frame(p, 40);   /* 3 buffers: 2 cached, 1 new */
  CHECK_EQ(sl_pool_get_alloc_count(p), 3);
  CHECK_EQ(sl_frame_write(f, "0123456789abcdefghijklmnopqrstuvwxyzABCD", 0,
                          40), SL_OK);
  sl_pool_unref(p);                         /* refs 0, buffers live */
  char out[41] = {0};
  CHECK_EQ(sl_frame_read(f, out, 0, 40), SL_OK);
  CHECK_STR(out, "0123456789abcdefghijklmnopqrstuvwxyzABCD");
  CHECK(sl_frame_buffer(f, 0)->pool == p);
  sl_frame_unref(f);                        /* the pool goes with it */

  /* With no live buffer, the last unref frees pool and cache at once. */
  p = sl_pool_new();
  sl_pool_set_fixed_size(p, 16);
  sl_pool_set_pool_size(p, 4);
  warm = sl_pool_req_frame(p, 64);
  sl_frame_unref(warm);
  CHECK_EQ(sl_pool_get_cached_count(p), 4);
  sl_pool_ref(p);
  sl_pool_unref(p);
  CHECK_EQ(sl_pool_get_cached_count(p), 4); /* still alive */
  sl_pool_unref(p);
}

#define CHURN_ROUNDS 50000

static void *churn(void *arg) {
  sl_pool *p = arg;
  for (int i = 0; i < CHURN_ROUNDS; i++) {
    sl_frame *f = sl_pool_req_frame(p, (uint32_t)(1 + i % 13));
    if (f == NULL) break;
    if (sl_frame_get_size(f) == 0) break;
    sl_frame_unref(f);
  }
  return NULL;
}

static void test_concurrent_alloc_free(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 4);
  sl_pool_set_pool_size(p, 6);
  pthread_t a, b;
  pthread_create(&a, NULL, churn, p);
  pthread_create(&b, NULL, churn, p);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  CHECK_COUNTERS(p, 0, 0);
  CHECK(sl_pool_get_cached_count(p) <= 6);
  CHECK(sl_pool_get_cached_count(p) >= 4);  /* a 13-byte frame filled it */
  sl_pool_unref(p);

  p = sl_pool_new();                        /* variable mode, defaults */
  pthread_create(&a, NULL, churn, p);
  pthread_create(&b, NULL, churn, p);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  CHECK_COUNTERS(p, 0, 0);
  CHECK(sl_pool_get_cached_count(p) >= 1);  /* 1..13 bytes: one class */
  /* A block is made only when the requester's cache and the pool are
  ** empty; a thread's cache takes up to 8 from the pool at once, so the
  ** other may hold up to its 16 then, and one frame in use: 2 + 16. */
  CHECK(sl_pool_get_cached_count(p) <= 2 + 16);
  sl_pool_unref(p);

  p = sl_pool_new();                        /* variable mode, no cache */
  sl_pool_set_cache_bytes(p, 0);
  pthread_create(&a, NULL, churn, p);
  pthread_create(&b, NULL, churn, p);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  CHECK_COUNTERS(p, 0, 0);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  sl_pool_unref(p);
}

/* A request over the limit is refused before anything is allocated, and
** the refusal says why. */
static void test_frame_limits(void) {
  sl_pool *p = sl_pool_new();
  uint64_t lim = 0;
  CHECK_EQ(sl_pool_get_max_frame_size(p), SL_POOL_MAX_FRAME_DEFAULT);
  CHECK_EQ(sl_pool_get_max_buffers(p), SL_POOL_MAX_BUFFERS_DEFAULT);
  CHECK(sl_pool_frame_limit(p) == SL_POOL_MAX_FRAME_DEFAULT);
  CHECK(sl_pool_req_frame(p, SL_POOL_MAX_FRAME_DEFAULT + 1u) == NULL);
  CHECK_EQ(sl_pool_req_status(&lim), SL_EINVAL);
  CHECK(lim == SL_POOL_MAX_FRAME_DEFAULT);
  CHECK_EQ(sl_pool_req_status(NULL), SL_OK);   /* reading cleared it */

  sl_pool_set_fixed_size(p, 1);              /* ~1 G one-byte blocks */
  CHECK(sl_pool_req_frame(p, 1u << 30) == NULL);
  CHECK_EQ(sl_pool_req_status(&lim), SL_EINVAL);
  CHECK(lim == SL_POOL_MAX_BUFFERS_DEFAULT);
  CHECK_COUNTERS(p, 0, 0);

  sl_pool_set_fixed_size(p, 4);
  sl_pool_set_max_buffers(p, 3);
  sl_frame *f = sl_pool_req_frame(p, 12);    /* exactly three blocks */
  CHECK(f != NULL);
  CHECK_EQ(sl_frame_buffer_count(f), 3);
  sl_frame_unref(f);
  CHECK(sl_pool_req_frame(p, 13) == NULL);
  CHECK_EQ(sl_pool_req_status(&lim), SL_EINVAL);
  CHECK(lim == 12);

  sl_pool_set_fixed_size(p, 0);              /* variable: the byte limit */
  sl_pool_set_max_frame_size(p, 100);
  CHECK(sl_pool_frame_limit(p) == 100);
  f = sl_pool_req_frame(p, 100);
  CHECK(f != NULL);
  sl_frame_unref(f);
  CHECK(sl_pool_req_frame(p, 101) == NULL);
  CHECK_EQ(sl_pool_req_status(&lim), SL_EINVAL);
  CHECK(lim == 100);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}


/* Defaults: a released one-block frame is kept whole and serves the next
** request of its size class; the counters follow live buffers only. */
static void test_default_cache(void) {
  sl_pool *p = sl_pool_new();
  CHECK_EQ(sl_pool_get_cache_bytes(p), SL_POOL_CACHE_BYTES_DEFAULT);
  sl_frame *f = sl_pool_req_frame(p, 1000);
  sl_buffer *b = sl_frame_buffer(f, 0);
  CHECK_EQ(sl_buffer_set_payload(b, 10), SL_OK);
  sl_frame_set_channel(f, 5);
  sl_frame_unref(f);
  CHECK_COUNTERS(p, 0, 0);
  CHECK_EQ(sl_pool_get_cached_count(p), 1);
  CHECK(sl_pool_get_cached_bytes(p) == 1024);   /* 1000 in its class */
  sl_frame *g = sl_pool_req_frame(p, 970);     /* same class: 961..1024 */
  CHECK(g == f);
  CHECK(sl_frame_buffer(g, 0) == b);
  CHECK_EQ(b->alloc_size, 970);                /* what was asked */
  CHECK_EQ(b->raw_size, 970);
  CHECK_EQ(b->payload, 0);
  CHECK_EQ(sl_frame_get_channel(g), 0);
  CHECK_EQ(sl_frame_get_payload(g), 0);
  CHECK_COUNTERS(p, 1, 970);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  CHECK(sl_pool_get_cached_bytes(p) == 0);
  memset(b->data, 0x33, 970);
  sl_frame *h = sl_pool_req_frame(p, 1025);    /* another class: new */
  CHECK(h != g);
  sl_frame_unref(g);
  sl_frame_unref(h);
  CHECK_EQ(sl_pool_get_cached_count(p), 2);
  CHECK(sl_pool_get_cached_bytes(p) == 1024 + 1152);
  f = sl_pool_req_frame(p, 1024);              /* the largest of a class */
  memset(sl_frame_buffer(f, 0)->data, 0x44, 1024);   /* ASan: all real */
  sl_frame_unref(f);
  sl_pool_unref(p);
}

/* The cache is bounded in bytes and, by default, in blocks. */
static void test_cache_bytes_bound(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_cache_bytes(p, 3000);
  CHECK_EQ(sl_pool_get_cache_bytes(p), 3000);
  sl_frame *fs[300];
  for (int i = 0; i < 4; i++) fs[i] = sl_pool_req_frame(p, 1000);
  CHECK_COUNTERS(p, 4, 4000);
  for (int i = 0; i < 4; i++) sl_frame_unref(fs[i]);
  CHECK_COUNTERS(p, 0, 0);
  CHECK_EQ(sl_pool_get_cached_count(p), 2);   /* 2 x 1024 <= 3000 */
  CHECK(sl_pool_get_cached_bytes(p) == 2048);
  sl_pool_set_cache_bytes(p, 1024);            /* lowering gives back */
  CHECK_EQ(sl_pool_get_cached_count(p), 1);
  CHECK(sl_pool_get_cached_bytes(p) == 1024);
  sl_pool_set_cache_bytes(p, 0);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  CHECK(sl_pool_get_cached_bytes(p) == 0);

  sl_pool_set_cache_bytes(p, SL_POOL_CACHE_BYTES_DEFAULT);
  for (int i = 0; i < 300; i++) fs[i] = sl_pool_req_frame(p, 16);
  for (int i = 0; i < 300; i++) sl_frame_unref(fs[i]);
  CHECK_EQ(sl_pool_get_cached_count(p), SL_POOL_CACHE_COUNT_DEFAULT);
  CHECK(sl_pool_get_cached_bytes(p) == 16u * SL_POOL_CACHE_COUNT_DEFAULT);

  /* A large fixed-size cache is bounded in bytes too. */
  sl_pool_set_fixed_size(p, 16384);
  sl_pool_set_pool_size(p, 1024);
  for (int i = 0; i < 200; i++) fs[i] = sl_pool_req_frame(p, 16384);
  for (int i = 0; i < 200; i++) sl_frame_unref(fs[i]);
  CHECK_EQ(sl_pool_get_cached_count(p), SL_POOL_CACHE_BYTES_DEFAULT / 16384);
  CHECK(sl_pool_get_cached_bytes(p) == SL_POOL_CACHE_BYTES_DEFAULT);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}

/* Up to four classes are kept at once; a fifth is freed. */
static void test_cache_classes(void) {
  sl_pool *p = sl_pool_new();
  static const uint32_t sizes[] = {16, 200, 1000, 5000, 20000};
  sl_frame *fs[5];
  for (int i = 0; i < 5; i++) fs[i] = sl_pool_req_frame(p, sizes[i]);
  for (int i = 0; i < 5; i++) sl_frame_unref(fs[i]);
  CHECK_EQ(sl_pool_get_cached_count(p), 4);
  for (int i = 0; i < 4; i++) {
    sl_frame *f = sl_pool_req_frame(p, sizes[i]);
    CHECK(f == fs[i]);
    memset(sl_frame_buffer(f, 0)->data, 0x55, sizes[i]);
    fs[i] = f;
  }
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  for (int i = 0; i < 4; i++) sl_frame_unref(fs[i]);
  sl_pool_unref(p);
}

/* A block made in fixed mode and released after a change to variable mode
** is kept for its class, with all the bytes of that class. */
static void test_mode_change_keeps_size(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 100);
  sl_frame *f = sl_pool_req_frame(p, 100);
  sl_pool_set_fixed_size(p, 0);
  sl_frame_unref(f);
  CHECK_EQ(sl_pool_get_cached_count(p), 1);
  sl_frame *g = sl_pool_req_frame(p, 112);     /* 100 and 112: one class */
  CHECK(g == f);
  memset(sl_frame_buffer(g, 0)->data, 0x66, 112);
  CHECK_COUNTERS(p, 1, 112);
  sl_frame_unref(g);
  sl_pool_unref(p);
}

static int cache_empty(void *arg) { return sl_pool_get_cached_bytes(arg) == 0; }

/* An idle pool gives its cache back; the sweeper comes again for a cache
** filled after it (it may have ended in between). */
static void test_idle_release(void) {
  sl_pool_set_idle_ms(5);
  sl_pool *p = sl_pool_new();
  sl_pool *busy = sl_pool_new();
  for (int round = 0; round < 3; round++) {
    sl_frame *f = sl_pool_req_frame(p, 64 << round);
    sl_frame_unref(f);
    CHECK_EQ(sl_pool_get_cached_count(p), 1);
    CHECK(ts_wait_until(cache_empty, p, 10.0));
    CHECK_EQ(sl_pool_get_cached_count(p), 0);
    CHECK_COUNTERS(p, 0, 0);
  }
  sl_pool_set_fixed_size(p, 32);               /* kept blocks too */
  sl_pool_set_pool_size(p, 4);
  uint32_t raw;
  sl_buffer *b = sl_pool_alloc_buffer(p, 32, &raw);
  sl_pool_ret_buffer(b);
  CHECK(ts_wait_until(cache_empty, p, 10.0));
  sl_pool_set_idle_ms(0);                      /* never */
  sl_frame *f = sl_pool_req_frame(busy, 64);
  sl_frame_unref(f);
  CHECK_EQ(sl_pool_get_cached_count(busy), 1);
  sl_pool_unref(busy);
  sl_pool_unref(p);
}

/* Pools made, used and freed on two threads while the sweeper gives back
** every millisecond (TSan, ASan). */
static void *sweep_churn(void *arg) {
  (void)arg;
  for (int k = 0; k < 200; k++) {
    sl_pool *p = sl_pool_new();
    if (k % 2) sl_pool_set_fixed_size(p, 48);
    for (int i = 0; i < 200; i++) {
      sl_frame *f = sl_pool_req_frame(p, (uint32_t)(1 + (i * 37) % 300));
      if (f == NULL) break;
      sl_frame_unref(f);
    }
    sl_frame *live = sl_pool_req_frame(p, 40);
    sl_pool_unref(p);                         /* goes with the frame */
    sl_frame_unref(live);
  }
  return NULL;
}

static void test_sweeper_races(void) {
  sl_pool_set_idle_ms(1);
  pthread_t a, b;
  pthread_create(&a, NULL, sweep_churn, NULL);
  pthread_create(&b, NULL, sweep_churn, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  sl_pool_set_idle_ms(0);
}

/* ---- thread caches: a thread using one pool many times in a row keeps a
** few of its frames itself (pool.c) ---- */

#define HOT_ROUNDS 1000               /* well past the uses that attach one */

static void hot_loop(sl_pool *p, uint32_t size) {
  for (int i = 0; i < HOT_ROUNDS; i++) sl_frame_unref(sl_pool_req_frame(p, size));
}

/* Counters and bounds hold while a thread keeps frames: a lowered bound
** takes back what the thread keeps at once. */
static void test_tcache_counts_and_bounds(void) {
  sl_pool *p = sl_pool_new();
  hot_loop(p, 64);
  CHECK_COUNTERS(p, 0, 0);
  sl_frame *fs[40];
  for (int i = 0; i < 40; i++) fs[i] = sl_pool_req_frame(p, 60);
  CHECK_COUNTERS(p, 40, 40 * 60);
  for (int i = 0; i < 40; i++) sl_frame_unref(fs[i]);
  CHECK_COUNTERS(p, 0, 0);
  uint32_t n = sl_pool_get_cached_count(p);
  CHECK(n >= 40);                              /* none was lost */
  CHECK(sl_pool_get_cached_bytes(p) == 64u * n);
  sl_pool_set_pool_size(p, 2);
  CHECK(sl_pool_get_cached_count(p) <= 2);
  hot_loop(p, 64);
  CHECK(sl_pool_get_cached_count(p) <= 2);
  sl_pool_set_pool_size(p, 0);
  sl_pool_set_cache_bytes(p, 0);               /* keeps nothing */
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  hot_loop(p, 64);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  CHECK(sl_pool_get_cached_bytes(p) == 0);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}

/* Frames requested on one thread and released on another (a hop), both
** keeping frames of the pool: the live counters and the byte bound hold. */
typedef struct hop {
  sl_pool *p;
  sl_frame *q[64];
  int head, tail;                 /* q[head..tail) full; under mu */
  int done;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} hop;

static void *hop_consumer(void *arg) {
  hop *h = arg;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    while (h->head == h->tail && !h->done) pthread_cond_wait(&h->cv, &h->mu);
    if (h->head == h->tail) break;
    sl_frame *f = h->q[h->head++ % 64];
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    sl_frame_unref(f);
    pthread_mutex_lock(&h->mu);
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

static void test_tcache_hop(void) {
  hop h = {.p = sl_pool_new()};
  pthread_mutex_init(&h.mu, NULL);
  pthread_cond_init(&h.cv, NULL);
  sl_pool_set_cache_bytes(h.p, 4096);          /* 64 blocks of 64 B */
  pthread_t t;
  pthread_create(&t, NULL, hop_consumer, &h);
  for (int i = 0; i < 20000; i++) {
    sl_frame *f = sl_pool_req_frame(h.p, 64);
    pthread_mutex_lock(&h.mu);
    while (h.tail - h.head == 64) pthread_cond_wait(&h.cv, &h.mu);
    h.q[h.tail++ % 64] = f;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
  }
  pthread_mutex_lock(&h.mu);
  h.done = 1;
  pthread_cond_broadcast(&h.cv);
  pthread_mutex_unlock(&h.mu);
  pthread_join(t, NULL);
  CHECK_COUNTERS(h.p, 0, 0);
  CHECK(sl_pool_get_cached_bytes(h.p) <= 4096);
  CHECK(sl_pool_get_cached_bytes(h.p) == 64u * sl_pool_get_cached_count(h.p));
  sl_pool_unref(h.p);
  pthread_cond_destroy(&h.cv);
  pthread_mutex_destroy(&h.mu);
}

/* A thread that ends gives what it keeps to the pool (ASan: none lost). */
static void *hot_thread(void *arg) {
  hot_loop(arg, 64);
  return NULL;
}

static void test_tcache_thread_exit(void) {
  sl_pool *p = sl_pool_new();
  pthread_t t;
  pthread_create(&t, NULL, hot_thread, p);
  pthread_join(t, NULL);
  CHECK(sl_pool_get_cached_count(p) >= 1);     /* its frames came back */
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_set_cache_bytes(p, 0);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  sl_pool_unref(p);
}

/* The pool's last reference goes while another thread keeps frames of it:
** they are freed at once, and the pool when that thread lets go (ASan). */
typedef struct holder {
  sl_pool *p;
  int stage;                     /* 1: attached; 2: may end; under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
} holder;

static void *holder_thread(void *arg) {
  holder *h = arg;
  hot_loop(h->p, 64);
  pthread_mutex_lock(&h->mu);
  h->stage = 1;
  pthread_cond_broadcast(&h->cv);
  while (h->stage != 2) pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

static void test_tcache_pool_gone(void) {
  holder h = {.p = sl_pool_new()};
  pthread_mutex_init(&h.mu, NULL);
  pthread_cond_init(&h.cv, NULL);
  sl_frame *live = sl_pool_req_frame(h.p, 64);
  pthread_t t;
  pthread_create(&t, NULL, holder_thread, &h);
  pthread_mutex_lock(&h.mu);
  while (h.stage != 1) pthread_cond_wait(&h.cv, &h.mu);
  pthread_mutex_unlock(&h.mu);
  CHECK(sl_pool_get_cached_count(h.p) >= 1);
  sl_pool_unref(h.p);                          /* the thread's frames go */
  sl_frame_unref(live);                        /* not kept: no reference */
  pthread_mutex_lock(&h.mu);
  h.stage = 2;
  pthread_cond_broadcast(&h.cv);
  pthread_mutex_unlock(&h.mu);
  pthread_join(t, NULL);                       /* and the pool with it */
  pthread_cond_destroy(&h.cv);
  pthread_mutex_destroy(&h.mu);
}

/* Bounds changed and counters read while another thread uses its cache
** (TSan: the revoking handshake). */
static void *hot_many(void *arg) {
  for (int k = 0; k < 20; k++) hot_loop(arg, 64);
  return NULL;
}

static void test_tcache_revoke_race(void) {
  sl_pool *p = sl_pool_new();
  pthread_t t;
  pthread_create(&t, NULL, hot_many, p);
  for (int k = 0; k < 200; k++) {
    sl_pool_set_cache_bytes(p, k % 2 ? 0 : SL_POOL_CACHE_BYTES_DEFAULT);
    CHECK(sl_pool_get_alloc_count(p) <= 1);
    CHECK(sl_pool_get_cached_bytes(p) <= SL_POOL_CACHE_BYTES_DEFAULT);
  }
  pthread_join(t, NULL);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}

/* An idle pool takes back what a thread keeps of it too. */
static void test_tcache_idle(void) {
  sl_pool *p = sl_pool_new();
  hot_loop(p, 64);
  CHECK(sl_pool_get_cached_count(p) >= 1);
  sl_pool_set_idle_ms(5);
  CHECK(ts_wait_until(cache_empty, p, 10.0));
  sl_pool_set_idle_ms(0);
  CHECK_COUNTERS(p, 0, 0);
  hot_loop(p, 64);                             /* and keeps again after */
  CHECK(sl_pool_get_cached_count(p) >= 1);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}

/* A thread using two pools in turn (a copying Fifo's producer) keeps
** frames of both; a third pool in the rotation takes one's place. Counters
** and bounds hold in each, a lowered bound takes back one pool's and not
** the other's, and the thread's end gives every pool its frames (ASan). */
static void turns(sl_pool **ps, int n, int rounds) {
  for (int i = 0; i < rounds; i++)
    for (int k = 0; k < n; k++) sl_frame_unref(sl_pool_req_frame(ps[k], 64));
}

static void *turns_thread(void *arg) {
  sl_pool **ps = arg;
  turns(ps, 3, HOT_ROUNDS);
  return NULL;
}

static void test_tcache_two_pools(void) {
  sl_pool *ps[3] = {sl_pool_new(), sl_pool_new(), sl_pool_new()};
  turns(ps, 2, HOT_ROUNDS);
  sl_frame *fs[40];
  for (int k = 0; k < 2; k++) {
    for (int i = 0; i < 40; i++) fs[i] = sl_pool_req_frame(ps[k], 64);
    CHECK_COUNTERS(ps[k], 40, 40 * 64);
    for (int i = 0; i < 40; i++) sl_frame_unref(fs[i]);
    CHECK_COUNTERS(ps[k], 0, 0);
    CHECK(sl_pool_get_cached_count(ps[k]) >= 40);
  }
  sl_pool_set_cache_bytes(ps[0], 0);
  CHECK_EQ(sl_pool_get_cached_count(ps[0]), 0);
  CHECK(sl_pool_get_cached_count(ps[1]) >= 40);
  turns(ps, 2, HOT_ROUNDS);
  CHECK_EQ(sl_pool_get_cached_count(ps[0]), 0);
  turns(ps, 3, HOT_ROUNDS);
  for (int k = 0; k < 3; k++) CHECK_COUNTERS(ps[k], 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, turns_thread, ps);
  pthread_join(t, NULL);
  for (int k = 0; k < 3; k++) {
    CHECK_COUNTERS(ps[k], 0, 0);
    CHECK(sl_pool_get_cached_bytes(ps[k]) == 64u * sl_pool_get_cached_count(ps[k]));
    sl_pool_unref(ps[k]);
  }
}

/* The cases read cached counts with no idle release (a loaded machine may
** pause a thread for longer than a period); the ones about it set their
** own period. */
static void test_idle_default(void) {
  CHECK_EQ(sl_pool_get_idle_ms(), SL_POOL_IDLE_MS_DEFAULT);
  sl_pool_set_idle_ms(0);
}

/* A batch request: kept frames several under one lock, each as a single
** request would make it; with fewer kept, what there is; with none, one
** new frame; limits refused as a single request refuses them. */
static void test_req_frames(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 256);
  sl_pool_set_pool_size(p, 8);
  sl_frame *fs[12];
  CHECK_EQ(sl_pool_req_frames(p, 100, fs, 0), 0);
  CHECK_EQ(sl_pool_req_frames(p, 100, fs, 4), 1);     /* nothing kept: one new */
  CHECK_COUNTERS(p, 1, 256);
  for (int i = 1; i < 6; i++) fs[i] = sl_pool_req_frame(p, 100);
  sl_frame_unref_many(fs, 6);                          /* six kept */
  CHECK_EQ(sl_pool_get_cached_count(p), 6);
  CHECK_COUNTERS(p, 0, 0);
  CHECK_EQ(sl_pool_req_frames(p, 100, fs, 4), 4);      /* four of the six */
  CHECK_EQ(sl_pool_get_cached_count(p), 2);
  CHECK_COUNTERS(p, 4, 4 * 256);
  CHECK_EQ(sl_pool_req_frames(p, 40, fs + 4, 8), 2);   /* the two left */
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  CHECK_EQ(sl_pool_req_frames(p, 40, fs + 6, 8), 1);   /* none left: one new */
  CHECK_COUNTERS(p, 7, 7 * 256);
  for (int i = 0; i < 7; i++) {                        /* each as asked */
    uint32_t want = i < 4 ? 100 : 40;
    CHECK_EQ(sl_frame_buffer_count(fs[i]), 1);
    CHECK_EQ(sl_frame_get_size(fs[i]), want);
    CHECK_EQ(sl_frame_get_payload(fs[i]), 0);
    CHECK_EQ(sl_frame_get_flags(fs[i]), 0);
    for (int j = 0; j < i; j++) CHECK(fs[i] != fs[j]);
  }
  sl_frame_set_flags(fs[0], 7);
  sl_frame_unref_many(fs, 7);
  CHECK_EQ(sl_pool_req_frames(p, 100, fs, 1), 1);      /* reset when handed out */
  CHECK_EQ(sl_frame_get_flags(fs[0]), 0);
  sl_frame_unref(fs[0]);
  CHECK_EQ(sl_pool_req_frames(p, 257, fs, 3), 1);      /* two blocks: made new */
  CHECK_EQ(sl_frame_buffer_count(fs[0]), 2);
  sl_frame_unref(fs[0]);
  sl_pool_set_max_frame_size(p, 64);
  fs[0] = (sl_frame *)p;
  CHECK_EQ(sl_pool_req_frames(p, 100, fs, 3), 0);      /* over the limit */
  CHECK(fs[0] == NULL);
  uint64_t lim = 0;
  CHECK_EQ(sl_pool_req_status(&lim), SL_EINVAL);
  CHECK_EQ(lim, 64);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}

/* A batch release keeps what a release one at a time would keep: the
** ring grows in the middle of the batch, the pool size and the cache
** bytes run out in the middle, sizes of two classes alternate. */
static void test_release_batch(void) {
  sl_pool *p = sl_pool_new();
  sl_pool_set_fixed_size(p, 64);
  sl_pool_set_pool_size(p, 20);
  sl_frame *fs[40];
  for (int i = 0; i < 30; i++) fs[i] = sl_pool_req_frame(p, 64);
  CHECK_COUNTERS(p, 30, 30 * 64);
  sl_frame_unref_many(fs, 30);                  /* rings start at 8 slots */
  CHECK_EQ(sl_pool_get_cached_count(p), 20);    /* the pool size, no more */
  CHECK_COUNTERS(p, 0, 0);
  CHECK_EQ(sl_pool_req_frames(p, 64, fs, 40), 20);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  sl_pool_set_cache_bytes(p, 5 * 64);
  sl_frame_unref_many(fs, 20);
  CHECK_EQ(sl_pool_get_cached_count(p), 5);     /* the byte bound */
  CHECK_EQ(sl_pool_get_cached_bytes(p), 5 * 64);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);

  p = sl_pool_new();                            /* variable mode, two classes */
  sl_pool_set_pool_size(p, 12);
  for (int i = 0; i < 16; i++) fs[i] = sl_pool_req_frame(p, i % 4 < 2 ? 100 : 1000);
  sl_frame_unref_many(fs, 16);
  CHECK_EQ(sl_pool_get_cached_count(p), 12);
  CHECK_COUNTERS(p, 0, 0);
  CHECK_EQ(sl_pool_req_frames(p, 1000, fs, 16), 6);   /* the 1000s kept */
  CHECK_EQ(sl_pool_req_frames(p, 100, fs + 6, 16), 6);
  for (int i = 0; i < 12; i++) CHECK_EQ(sl_frame_get_size(fs[i]), i < 6 ? 1000 : 100);
  CHECK_EQ(sl_pool_get_cached_count(p), 0);
  sl_frame_unref_many(fs, 12);
  CHECK_COUNTERS(p, 0, 0);
  sl_pool_unref(p);
}

static const struct tt_case cases[] = {
  {"idle release: 1 s by default (off for these cases)", test_idle_default},
  {"variable mode: one buffer of exactly the size", test_variable_mode},
  {"fixed mode: ceil(size/fixed) buffers", test_fixed_mode},
  {"size 0: no buffers", test_zero_request},
  {"counters count live buffers only", test_counters_live_only},
  {"a bare block is kept with fixed size and pool size", test_cache_needs_both},
  {"cache reuses the same block", test_cache_reuses_block},
  {"cache never exceeds pool size", test_cache_bounded},
  {"changing the fixed size drops the cache", test_fixed_change_drops_cache},
  {"meta is a 24-bit rolling sequence", test_meta_sequence},
  {"create_buffer: external memory and release", test_create_buffer},
  {"pool outlives its last reference", test_pool_outlives_last_ref},
  {"concurrent alloc/free", test_concurrent_alloc_free},
  {"frame limits: bytes, and blocks in fixed mode", test_frame_limits},
  {"defaults keep released frames for their class", test_default_cache},
  {"the cache is bounded in bytes and blocks", test_cache_bytes_bound},
  {"four size classes kept at once", test_cache_classes},
  {"a block keeps its size across a mode change", test_mode_change_keeps_size},
  {"an idle pool gives its cache back", test_idle_release},
  {"sweeper and pools on other threads", test_sweeper_races},
  {"thread cache: counters, bounds lowered at once", test_tcache_counts_and_bounds},
  {"thread cache: frames released on another thread", test_tcache_hop},
  {"thread cache: given back when its thread ends", test_tcache_thread_exit},
  {"thread cache: the pool's last reference goes first", test_tcache_pool_gone},
  {"thread cache: bounds changed while in use", test_tcache_revoke_race},
  {"thread cache: taken back from an idle pool", test_tcache_idle},
  {"thread cache: two pools used in turn, and a third", test_tcache_two_pools},
  {"batch request: kept frames under one lock, else one", test_req_frames},
  {"batch release: growth and bounds reached mid-batch", test_release_batch},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
