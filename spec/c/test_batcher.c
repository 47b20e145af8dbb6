/* Batcher: the batch_* vectors (parse, split, combine, invert), every
** parser refusal with its count and text, and frames over many buffers. */
#include <stdlib.h>
#include <string.h>

#include "streamlua/batcher.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/pool.h"
#include "streamlua/slave.h"
#include "support.h"
#include "tt.h"
#include "vectors.h"

/* The three frames every batch_* vector holds. */
static const uint8_t R0[] = {0xa1, 0xb2, 0xc3};
static const uint8_t R1[] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17};
static const uint8_t R2[] = {0xee};
static const struct {
  const uint8_t *data;
  uint32_t size;
  uint8_t dest, fu, lu;
} RECS[3] = {{R0, 3, 1, 0x02, 0x01}, {R1, 8, 2, 0, 0}, {R2, 1, 255, 0x33, 0x44}};

/* The vector's bytes (one block), or a failed check and n = 0. */
static uint8_t *vector(const char *name, uint32_t *n) {
  tv_file v;
  *n = 0;
  if (!CHECK(tv_load(name, &v) == 0)) return NULL;
  uint8_t *b = malloc(v.blocks[0].n);
  memcpy(b, v.blocks[0].bytes, v.blocks[0].n);
  *n = (uint32_t)v.blocks[0].n;
  tv_free(&v);
  return b;
}

static const char *V1_NAMES[] = {"batch_v1_w0", NULL, "batch_v1_w2", "batch_v1_w3"};

static void check_records(const sl_batch_parsed *p, const uint8_t *b) {
  if (!CHECK_EQ(p->count, 3)) return;
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(p->records[i].size, RECS[i].size);
    CHECK_EQ(p->records[i].dest, RECS[i].dest);
    CHECK_EQ(p->records[i].first_user, RECS[i].fu);
    CHECK_EQ(p->records[i].last_user, RECS[i].lu);
    CHECK(memcmp(b + p->records[i].offset, RECS[i].data, RECS[i].size) == 0);
  }
}

static void test_parse_vectors(void) {
  sl_batch_parsed p = {0};
  char err[160];
  uint32_t n;
  for (int w = 0; w < 4; w++) {
    if (V1_NAMES[w] == NULL) continue;
    uint8_t *b = vector(V1_NAMES[w], &n);
    CHECK_EQ(sl_batch_parse(&p, 1, b, n, err, sizeof err), SL_BATCH_OK);
    CHECK_EQ(p.width, w);
    CHECK_EQ(p.sequence, 0);
    CHECK_EQ(p.header_size, 2u << w);
    check_records(&p, b);
    CHECK_EQ(sl_batch_parse(&p, 2, b, n, err, sizeof err), SL_BATCH_VERSION);
    CHECK_STR(err, "Version mismatch. Got 1");
    free(b);
  }
  uint8_t *b = vector("batch_v2", &n);
  CHECK_EQ(n, 35);
  CHECK_EQ(sl_batch_parse(&p, 2, b, n, err, sizeof err), SL_BATCH_OK);
  CHECK_EQ(p.tail_size, 7);
  check_records(&p, b);
  free(b);
  sl_batch_parsed_free(&p);
}

/* The three frames through a combiner of (version, width): the bytes. */
static uint8_t *combine(int version, uint8_t width, uint32_t *n) {
  sl_object *c = sl_batch_combiner_object(sl_batch_combiner_new(version, width, NULL));
  ts_harness h;
  ts_harness_init(&h, c, 4);
  for (int i = 0; i < 3; i++)
    ts_send(h.master->master, RECS[i].data, RECS[i].size, RECS[i].dest, 0,
            (uint16_t)(RECS[i].fu | RECS[i].lu << 8));
  sl_batch_combiner *bc = sl_batch_combiner_from_object(c);
  CHECK_EQ(sl_batch_combiner_count(bc), 3);
  CHECK_EQ(ts_counter(c, "depth"), 3);
  CHECK_EQ(sl_batch_combiner_send(bc), SL_OK);
  CHECK_EQ(sl_batch_combiner_count(bc), 0);
  uint8_t *out = ts_rec_take(h.rec, n);
  CHECK_EQ(ts_rec_count(h.rec), 1);
  ts_harness_fini(&h);
  return out;
}

static void test_combine_vectors(void) {
  uint32_t n, m;
  for (int w = 0; w < 4; w++) {
    if (V1_NAMES[w] == NULL) continue;
    uint8_t *want = vector(V1_NAMES[w], &n);
    uint8_t *got = combine(1, (uint8_t)w, &m);
    CHECK(got != NULL && m == n && memcmp(got, want, n) == 0);
    free(want);
    free(got);
  }
  uint8_t *want = vector("batch_v2", &n);
  uint8_t *got = combine(2, 0, &m);
  CHECK(got != NULL && m == n && memcmp(got, want, n) == 0);
  free(want);
  free(got);
}

/* Sends the bytes into a splitter of `version`; checks the three frames. */
static void split(int version, const uint8_t *b, uint32_t n, sl_pool *pool) {
  ts_harness h;
  ts_harness_init(&h, sl_batch_splitter_object(sl_batch_splitter_new(version, NULL)), 8);
  if (pool != NULL) ts_push(h.node->slave, pool, b, n);
  else ts_send(h.master->master, b, n, 0, 0, 0);
  if (CHECK_EQ(ts_rec_count(h.rec), 3)) {
    for (int i = 0; i < 3; i++) {
      ts_got g;
      ts_rec_frame(h.rec, i, &g);
      CHECK_EQ(g.size, RECS[i].size);
      CHECK(memcmp(g.data, RECS[i].data, g.size) == 0);
      CHECK_EQ(g.channel, RECS[i].dest);
      CHECK_EQ(g.flags, RECS[i].fu | RECS[i].lu << 8);
      CHECK_EQ(g.error, 0);
    }
  }
  CHECK_EQ(ts_counter(h.node, "rxFrames"), 1);
  CHECK_EQ(ts_counter(h.node, "txFrames"), 3);
  CHECK_EQ(ts_counter(h.node, "drops"), 0);
  ts_harness_fini(&h);
}

static void test_split_vectors(void) {
  uint32_t n;
  for (int w = 0; w < 4; w++) {
    if (V1_NAMES[w] == NULL) continue;
    uint8_t *b = vector(V1_NAMES[w], &n);
    split(1, b, n, NULL);
    free(b);
  }
  uint8_t *b = vector("batch_v2", &n);
  split(2, b, n, NULL);
  free(b);
}

/* Every width round-trips, and so does a super-frame over 5-byte buffers. */
static void test_round_trip(void) {
  uint32_t n;
  for (uint8_t w = 0; w <= SL_BATCH_MAX_WIDTH; w++) {
    uint8_t *b = combine(1, w, &n);
    split(1, b, n, NULL);
    free(b);
  }
  sl_pool *pool = sl_pool_new();
  sl_pool_set_fixed_size(pool, 5);
  uint8_t *b = combine(1, 3, &n);
  split(1, b, n, pool);
  free(b);
  b = combine(2, 0, &n);
  split(2, b, n, pool);
  free(b);
  sl_pool_unref(pool);
}

/* The bytes into an inverter: what comes out (NULL: nothing). */
static uint8_t *invert(int version, const uint8_t *b, uint32_t n, uint32_t *m) {
  ts_harness h;
  ts_harness_init(&h, sl_batch_inverter_object(sl_batch_inverter_new(version, NULL)), 2);
  ts_send(h.master->master, b, n, 0, 0, 0);
  uint8_t *out = ts_rec_take(h.rec, m);
  ts_harness_fini(&h);
  return out;
}

static void test_invert_vectors(void) {
  uint32_t n, m, k;
  uint8_t *b = vector("batch_v1_w2", &n);
  uint8_t *want = vector("batch_v1_w2_inverted", &m);
  b[1] = 9;                    /* the capture's sequence; the header goes */
  uint8_t *got = invert(1, b, n, &k);
  CHECK(got != NULL && k == m && memcmp(got, want, m) == 0);
  free(b), free(want), free(got);
  b = vector("batch_v2", &n);
  want = vector("batch_v2_inverted", &m);
  got = invert(2, b, n, &k);
  CHECK(got != NULL && k == m && memcmp(got, want, m) == 0);
  free(b), free(want), free(got);
  /* widths 0 and 1: header and tail differ, nothing comes out */
  b = vector("batch_v1_w0", &n);
  CHECK(invert(1, b, n, &k) == NULL);
  free(b);
  /* width 3 works as width 2 does */
  b = combine(1, 3, &n);
  got = invert(1, b, n, &k);
  if (CHECK(got != NULL && k == n - 16)) {
    CHECK(memcmp(got, b + 32, 16) == 0);         /* record 0's tail first */
    CHECK(memcmp(got + 16, R0, 3) == 0);
    CHECK(memcmp(got + 32, b + 64, 16) == 0);    /* then record 1's */
    CHECK(memcmp(got + 48, R1, 8) == 0);
  }
  free(b), free(got);
}

/* A frame shared with another holder is copied, not rewritten. */
static void test_invert_shared(void) {
  uint32_t n;
  uint8_t *b = vector("batch_v1_w2", &n);
  ts_harness h;
  ts_harness_init(&h, sl_batch_inverter_object(sl_batch_inverter_new(1, NULL)), 2);
  sl_frame *f = sl_master_req_frame(h.master->master, n, 1);
  sl_frame_write(f, b, 0, n);
  sl_frame *keep = sl_frame_ref(f);
  sl_master_send_frame(h.master->master, f);
  sl_frame_unref(f);
  CHECK_EQ(ts_rec_count(h.rec), 1);
  uint8_t now[56];
  CHECK_EQ(sl_frame_get_payload(keep), n);
  sl_frame_read(keep, now, 0, n);
  CHECK(memcmp(now, b, n) == 0);
  ts_got g;
  ts_rec_frame(h.rec, 0, &g);
  CHECK(g.frame != keep);
  CHECK_EQ(g.size, n - 8);
  sl_frame_unref(keep);
  ts_harness_fini(&h);
  free(b);
}

/* Each refusal: its code and text, then its counter on a splitter. */
static void refused(int version, const uint8_t *b, uint32_t n, uint8_t ferr,
                    sl_batch_error want, const char *counter, const char *text) {
  sl_batch_parsed p = {0};
  char err[160] = "";
  if (ferr == 0) {
    CHECK_EQ(sl_batch_parse(&p, version, b, n, err, sizeof err), want);
    CHECK_STR(err, text);
    CHECK_EQ(p.count, 0);
  }
  sl_batch_parsed_free(&p);
  ts_harness h;
  ts_harness_init(&h, sl_batch_splitter_object(sl_batch_splitter_new(version, NULL)), 2);
  ts_send(h.master->master, b, n, 0, ferr, 0);
  CHECK_EQ(ts_rec_count(h.rec), 0);
  CHECK_EQ(ts_counter(h.node, "drops"), 1);
  CHECK_EQ(ts_counter(h.node, counter), 1);
  ts_harness_fini(&h);
  char *lines[4];
  size_t k = sl_log_history(lines, 4);
  CHECK(k > 0 && strstr(lines[k - 1], text) != NULL);
  CHECK(k > 0 && strstr(lines[k - 1], version == 1 ? "batcher.CoreV1" : "batcher.CoreV2"));
  for (size_t i = 0; i < k; i++) free(lines[i]);
}

/* Each refusal's own line: the repeat limit is off for this case. */
static void test_refusals(void) {
  sl_log_set_emit(0);
  long long window = sl_log_get_repeat_window();
  sl_log_set_repeat_window(0);
  sl_log_set_filter("batcher", SL_LOG_WARNING);
  uint8_t b[64] = {0};
  uint32_t n;
  uint8_t *v = vector("batch_v1_w2", &n);
  refused(1, v, n, 3, SL_BATCH_ERRORED, "errored", "Dropping frame due to error: 0x3");
  refused(1, v, 15, 0, SL_BATCH_SHORT, "short", "Dropping small frame size = 15");
  refused(2, v, 9, 0, SL_BATCH_SHORT, "short", "Dropping small frame size = 9");
  v[0] = 0x23;
  refused(1, v, n, 0, SL_BATCH_VERSION, "badVersion", "Version mismatch. Got 3");
  v[0] = 0x61;
  refused(1, v, n, 0, SL_BATCH_WIDTH, "badWidth", "Invalid AXIS Type Detected. Got 6");
  v[0] = 0x51;                 /* 64-byte header: 56 bytes cannot hold it */
  refused(1, v, n, 0, SL_BATCH_NO_ROOM, "noRoom",
          "Not enough space (56) for tail (64) + header (64)");
  v[0] = 0x21;
  v[48] = 0x41;                /* record 2 claims 65 bytes: 72 with padding */
  refused(1, v, n, 0, SL_BATCH_NO_ROOM, "noRoom", "Not enough space (40) for frame (72)");
  memset(v + 48, 0xFF, 4);     /* 0xFFFFFFFF: Rogue's rounding wraps it to 0 */
  refused(1, v, n, 0, SL_BATCH_NO_ROOM, "noRoom",
          "Not enough space (40) for frame (4294967296)");
  /* 4 stray bytes between the header and the one record */
  memcpy(b, v, 8);
  memcpy(b + 12, v + 24, 16);
  refused(1, b, 28, 0, SL_BATCH_NO_ROOM, "noRoom", "Not enough space (4) for tail (8)");
  memset(b, 0, sizeof b);
  free(v);
  /* a v1 header and 8 stray zero bytes: a record of size 0 */
  b[0] = 0x01;
  refused(1, b, 16, 0, SL_BATCH_EMPTY, "emptyRecord", "Dropping record of size 0 at offset 8");
  b[0] = 0x02;
  refused(2, b, 12, 0, SL_BATCH_EMPTY, "emptyRecord", "Dropping record of size 0 at offset 5");
  memcpy(b + 5, R2, 1);        /* 3 stray bytes, then record "ee" */
  sl_batch_put_tail(b + 6, 2, 0, &(sl_batch_record){0, 1, 0, 0, 0});
  refused(2, b, 13, 0, SL_BATCH_NO_ROOM, "noRoom", "Not enough space (3) for tail (7)");
  memset(b + 2, 0, 11);
  b[0] = 0x12;
  refused(2, b, 12, 0, SL_BATCH_EMPTY, "emptyRecord", "Dropping record of size 0 at offset 5");
  sl_log_set_repeat_window(window);
  sl_log_set_emit(1);
}

/* The combiner: empty frames dropped, nothing to send is a no-op, the
** sequence steps, an unknown width or version refused. */
static void test_combiner(void) {
  sl_error err;
  CHECK(sl_batch_combiner_new(1, 6, &err) == NULL);
  CHECK_EQ(err.status, SL_EINVAL);
  CHECK_STR(err.msg, "Invalid width 6");
  CHECK(sl_batch_combiner_new(3, 0, &err) == NULL);
  CHECK(sl_batch_splitter_new(0, &err) == NULL);
  CHECK(sl_batch_inverter_new(3, &err) == NULL);
  sl_log_set_emit(0);
  sl_object *c = sl_batch_combiner_object(sl_batch_combiner_new(2, 0, NULL));
  sl_batch_combiner *bc = sl_batch_combiner_from_object(c);
  CHECK(sl_batch_splitter_from_object(c) == NULL);
  ts_harness h;
  ts_harness_init(&h, c, 4);
  CHECK_EQ(sl_batch_combiner_send(bc), SL_OK);
  CHECK_EQ(ts_rec_count(h.rec), 0);
  ts_send(h.master->master, NULL, 0, 0, 0, 0);
  CHECK_EQ(sl_batch_combiner_count(bc), 0);
  CHECK_EQ(ts_counter(c, "drops"), 1);
  for (int round = 0; round < 3; round++) {
    ts_send(h.master->master, R1, 8, 7, 0, 0);
    sl_batch_combiner_send(bc);
    ts_got g;
    uint8_t buf[32];
    CHECK(ts_rec_last(h.rec, &g, buf, sizeof buf));
    CHECK_EQ(g.size, 2 + 8 + 7);
    CHECK_EQ(buf[0], 2);
    CHECK_EQ(buf[1], round);
    CHECK_EQ(buf[14], 7);
  }
  CHECK_EQ(ts_counter(c, "txFrames"), 3);
  CHECK_EQ(ts_counter(c, "rxFrames"), 4);
  ts_send(h.master->master, R1, 8, 7, 0, 0);   /* left queued: freed with it */
  ts_harness_fini(&h);
  sl_log_set_emit(1);
}

/* The combiner's bound: 64 MiB by default and never more; set lower, a
** frame that would take the super-frame past it is dropped, counted and
** logged, what was queued goes out as one super-frame of exactly the
** bound, and the next batch has the whole bound again. */
static void test_combiner_bound(void) {
  for (int version = 1; version <= 2; version++) {
    uint8_t width = version == 1 ? 2 : 0;
    sl_batch_combiner *bc = sl_batch_combiner_new(version, width, NULL);
    sl_object *c = sl_batch_combiner_object(bc);
    CHECK_EQ(sl_batch_combiner_max(bc), SL_BATCH_COMBINER_MAX);
    CHECK_EQ(SL_BATCH_COMBINER_MAX, 64u << 20);
    uint32_t head = sl_batch_header_size(version, width);
    uint64_t rec = sl_batch_padded(version, width, sizeof R1) +
                   sl_batch_tail_size(version, width);
    CHECK_EQ(sl_batch_combiner_set_max(bc, SL_BATCH_COMBINER_MAX + 1ull), SL_EINVAL);
    CHECK_EQ(sl_batch_combiner_set_max(bc, head - 1), SL_EINVAL);
    CHECK_EQ(sl_batch_combiner_max(bc), SL_BATCH_COMBINER_MAX);
    uint64_t bound = head + 3 * rec;
    CHECK_EQ(sl_batch_combiner_set_max(bc, bound), SL_OK);
    CHECK_EQ(sl_batch_combiner_max(bc), bound);
    ts_harness h;
    ts_harness_init(&h, c, 4);
    sl_log_set_emit(0);
    long long window = sl_log_get_repeat_window();
    sl_log_set_repeat_window(0);         /* each drop's own line */
    int level = sl_log_get_level();
    sl_log_set_level(SL_LOG_WARNING);
    for (int round = 0; round < 2; round++) {
      for (int i = 0; i < 5; i++) ts_send(h.master->master, R1, sizeof R1, 1, 0, 0);
      CHECK_EQ(sl_batch_combiner_count(bc), 3);
      CHECK_EQ(ts_counter(c, "drops"), 2u * (round + 1));
      char *lines[2];
      size_t k = sl_log_history(lines, 2);
      CHECK_EQ(k, 2);
      for (size_t i = 0; i < k; i++) {
        CHECK(strstr(lines[i], version == 1 ? "ERROR batcher.CombinerV1: "
                                            : "ERROR batcher.CombinerV2: ") != NULL);
        CHECK(strstr(lines[i], "Dropping a 8-byte frame: the super-frame would be too "
                               "large") != NULL);
        free(lines[i]);
      }
      CHECK_EQ(sl_batch_combiner_send(bc), SL_OK);
      ts_got g;
      uint8_t buf[256];
      CHECK(ts_rec_last(h.rec, &g, buf, sizeof buf));
      CHECK_EQ(g.size, bound);
      CHECK_EQ(sl_batch_combiner_count(bc), 0);
    }
    sl_log_set_level(level);
    sl_log_set_repeat_window(window);
    sl_log_set_emit(1);
    ts_harness_fini(&h);
  }
}

static const struct tt_case cases[] = {
    {"parse_vectors", test_parse_vectors},
    {"combiner_bound", test_combiner_bound},
    {"combine_vectors", test_combine_vectors},
    {"split_vectors", test_split_vectors},
    {"round_trip", test_round_trip},
    {"invert_vectors", test_invert_vectors},
    {"invert_shared", test_invert_shared},
    {"refusals", test_refusals},
    {"combiner", test_combiner},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
