/*
** sl_stream_reader: hand-made files back into frames (memory from the
** primary, metadata from headerB), split files, Rogue's reactions to bad
** records, results and their notification, prompt stops, and a writer ->
** reader round trip across split files.
*/
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/pool.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "streamlua/stream_reader.h"
#include "streamlua/stream_writer.h"
#include "support.h"
#include "tt.h"

#include "../../src/core/bytes.h"

static char dir[64];

static const char *path(const char *name) {
  static char buf[4][256];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

/* ---- building files ---- */

typedef struct bytes {
  uint8_t data[65536];
  size_t len;
} bytes;

static void put32(bytes *b, uint32_t v) {
  sl_store_le32(b->data + b->len, v);
  b->len += 4;
}

static void put(bytes *b, const void *p, size_t n) {
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void record(bytes *b, const void *p, uint32_t n, uint8_t ch, uint8_t err,
                   uint16_t flags) {
  put32(b, n + 4);
  put32(b, (uint32_t)ch << 24 | (uint32_t)err << 16 | flags);
  put(b, p, n);
}

static void save(const char *file, const bytes *b) {
  FILE *fp = fopen(file, "wb");
  fwrite(b->data, 1, b->len, fp);
  fclose(fp);
}

/* ---- what the recorder got ---- */

#define KEEP 64

/* Frame i as the recorder kept it (all zero when it has none). */
static ts_got frame_of(ts_rec *k, long i) {
  ts_got g = {0};
  ts_rec_frame(k, i, &g);
  return g;
}

/* Each delivery takes 2 ms: a replay of thousands of records is long. */
static void slow_hook(ts_rec *k, sl_frame *f) {
  (void)k;
  (void)f;
  sl_sleep_us(2000);
}

/* A reader feeding a new recorder. */
static sl_stream_reader *reader_to(ts_rec **out) {
  sl_stream_reader *r = sl_stream_reader_new(NULL);
  *out = ts_rec_new(KEEP);
  sl_master_add_slave(sl_stream_reader_master(r), &(*out)->slave);
  return r;
}

static void drop(sl_stream_reader *r, ts_rec *k) {
  sl_object_unref(sl_stream_reader_object(r));
  sl_object_unref(ts_rec_object(k));
}

/* Replays `file` to the end and returns its result. */
static sl_stream_reader_result replay(sl_stream_reader *r, const char *file) {
  sl_stream_reader_result res;
  memset(&res, 0, sizeof res);
  strcpy(res.error, "(no result)");
  if (!CHECK_EQ(sl_stream_reader_open(r, file, NULL), SL_OK)) return res;
  CHECK(sl_stream_reader_close_wait(r, 10000000));
  CHECK(sl_stream_reader_take_result(r, &res));
  CHECK(!sl_stream_reader_is_active(r));
  CHECK(!sl_stream_reader_is_open(r));
  return res;
}

static void test_hand_made_file(void) {
  bytes *b = calloc(1, sizeof *b);
  uint8_t p[32];
  for (int i = 0; i < 32; i++) p[i] = (uint8_t)(0x40 + i);
  record(b, p, 32, 3, 0, 0x00A5);
  put32(b, 4);                         /* headerA 4: no payload, no frame */
  put32(b, 0x01020304);
  record(b, "\xAA\xBB\xCC", 3, 5, 0x12, 0xBEEF);
  save(path("hand.dat"), b);
  ts_rec *k;
  sl_stream_reader *r = reader_to(&k);
  sl_stream_reader_result res = replay(r, path("hand.dat"));
  CHECK_EQ(res.frames, 2);
  CHECK_EQ(res.bytes, 35);
  CHECK_EQ(res.files, 1);
  CHECK_STR(res.error, "");
  if (CHECK_EQ(ts_rec_count(k), 2)) {
    CHECK_EQ(frame_of(k, 0).channel, 3);
    CHECK_EQ(frame_of(k, 0).error, 0);
    CHECK_EQ(frame_of(k, 0).flags, 0x00A5);
    CHECK_EQ(frame_of(k, 0).size, 32);
    CHECK(memcmp(frame_of(k, 0).data, p, 32) == 0);
    CHECK_EQ(frame_of(k, 1).channel, 5);
    CHECK_EQ(frame_of(k, 1).error, 0x12);
    CHECK_EQ(frame_of(k, 1).flags, 0xBEEF);
    CHECK(memcmp(frame_of(k, 1).data, "\xAA\xBB\xCC", 3) == 0);
  }
  CHECK_EQ(atomic_load(&k->reqs), 2);   /* memory from the primary */
  sl_counter c[SL_COUNTERS_MAX];
  size_t n = sl_object_counters(sl_stream_reader_object(r), c, SL_COUNTERS_MAX);
  CHECK(n >= 2 && c[0].value == 2 && c[1].value == 35);
  free(b);
  drop(r, k);
}

static void test_split_files(void) {
  bytes *b = calloc(1, sizeof *b);
  for (uint8_t i = 1; i <= 3; i++) {
    b->len = 0;
    record(b, &i, 1, i, 0, 0);
    record(b, &i, 1, i, 0, 1);
    char name[32];
    snprintf(name, sizeof name, "parts.%u", i);
    save(path(name), b);
  }
  ts_rec *k;
  sl_stream_reader *r = reader_to(&k);
  sl_stream_reader_result res = replay(r, path("parts.1"));
  CHECK_EQ(res.frames, 6);
  CHECK_EQ(res.files, 3);
  CHECK_STR(res.error, "");
  for (int i = 0; i < 6 && i < ts_rec_count(k); i++) {
    CHECK_EQ(frame_of(k, i).channel, 1 + i / 2);
    CHECK_EQ(frame_of(k, i).flags, i % 2);
  }
  res = replay(r, path("parts.2"));      /* not ".1": one file only */
  CHECK_EQ(res.frames, 2);
  CHECK_EQ(res.files, 1);
  free(b);
  drop(r, k);
}

static void test_bad_records(void) {
  bytes *b = calloc(1, sizeof *b);
  ts_rec *k;
  sl_stream_reader *r = reader_to(&k);
  /* headerA == 0: warning, stop */
  record(b, "ok", 2, 1, 0, 0);
  put32(b, 0);
  put32(b, 0);
  record(b, "never", 5, 1, 0, 0);
  save(path("zero.dat"), b);
  sl_stream_reader_result res = replay(r, path("zero.dat"));
  CHECK_EQ(res.frames, 1);
  CHECK(strstr(res.error, "Bad size read 0") != NULL);
  /* a short payload: sent with error 0x1, then stop */
  b->len = 0;
  record(b, "ok", 2, 1, 0, 0);
  put32(b, 100 + 4);
  put32(b, 2u << 24 | 0x77);
  put(b, "twenty bytes of data", 20);
  save(path("short.dat"), b);
  ts_rec_clear(k);
  res = replay(r, path("short.dat"));
  CHECK_EQ(res.frames, 2);
  CHECK_EQ(res.bytes, 22);
  CHECK(strstr(res.error, "Short read") != NULL);
  if (CHECK_EQ(ts_rec_count(k), 2)) {
    CHECK_EQ(frame_of(k, 1).size, 20);
    CHECK_EQ(frame_of(k, 1).error, 0x1);
    CHECK_EQ(frame_of(k, 1).channel, 2);
    CHECK_EQ(frame_of(k, 1).flags, 0x77);
  }
  /* a header cut short */
  b->len = 0;
  record(b, "ok", 2, 1, 0, 0);
  put32(b, 10);
  put(b, "\x01\x02", 2);
  save(path("cut.dat"), b);
  res = replay(r, path("cut.dat"));
  CHECK_EQ(res.frames, 1);
  CHECK(strstr(res.error, "record header") != NULL);
  /* an absurd size asks for no more than the file holds */
  b->len = 0;
  put32(b, 0xFFFFFFFFu);
  put32(b, 0);
  put(b, "abc", 3);
  save(path("huge.dat"), b);
  ts_rec_clear(k);
  res = replay(r, path("huge.dat"));
  CHECK_EQ(res.frames, 1);
  CHECK(ts_rec_count(k) == 1 && frame_of(k, 0).size == 3 && frame_of(k, 0).error == 1);
  /* a missing file */
  int err = 0;
  CHECK_EQ(sl_stream_reader_open(r, path("missing.dat"), &err), SL_ENOTFOUND);
  CHECK_EQ(err, ENOENT);
  CHECK(!sl_stream_reader_is_active(r));
  free(b);
  drop(r, k);
}

static atomic_int notified, released;

static void on_notify(void *arg) {
  atomic_fetch_add((atomic_int *)arg, 1);
}

static void on_release(void *arg) {
  (void)arg;
  atomic_fetch_add(&released, 1);
}

/* A file of `n` 16-byte records. */
static void long_file(const char *file, int n) {
  FILE *fp = fopen(file, "wb");
  bytes *b = calloc(1, sizeof *b);
  for (int i = 0; i < n; i++) {
    b->len = 0;
    record(b, "0123456789abcdef", 16, 0, 0, 0);
    fwrite(b->data, 1, b->len, fp);
  }
  fclose(fp);
  free(b);
}

static void test_notify_and_stop(void) {
  long_file(path("long.dat"), 5000);
  ts_rec *k;
  sl_stream_reader *r = reader_to(&k);
  sl_stream_reader_set_notify(r, on_notify, on_release, &notified);
  CHECK(sl_stream_reader_notify_arg(r, on_notify) == &notified);
  CHECK(sl_stream_reader_notify_arg(r, on_release) == NULL);
  k->hook = slow_hook;                      /* 10 s at least in all */
  CHECK_EQ(sl_stream_reader_open(r, path("long.dat"), NULL), SL_OK);
  CHECK(sl_stream_reader_is_active(r));
  CHECK(sl_stream_reader_is_open(r));
  CHECK(!sl_stream_reader_close_wait(r, 20000));   /* still running */
  for (int i = 0; i < 2000 && ts_rec_count(k) == 0; i++) sl_sleep_us(10000);
  double t0 = now_s();
  sl_stream_reader_close(r);
  CHECK(now_s() - t0 < 30.0);               /* a bound on a hang */
  CHECK(!sl_stream_reader_is_active(r));
  CHECK_EQ(atomic_load(&notified), 1);
  sl_stream_reader_result res;
  CHECK(sl_stream_reader_take_result(r, &res));
  CHECK_STR(res.error, "stopped");
  CHECK(res.frames > 0 && res.frames < 5000);
  CHECK_EQ(ts_rec_count(k), res.frames);
  CHECK(!sl_stream_reader_take_result(r, &res));
  /* dropping the last reference mid-replay stops and joins the thread */
  CHECK_EQ(sl_stream_reader_open(r, path("long.dat"), NULL), SL_OK);
  sl_sleep_us(10000);
  t0 = now_s();
  drop(r, k);
  CHECK(now_s() - t0 < 30.0);
  CHECK_EQ(atomic_load(&notified), 2);
  CHECK_EQ(atomic_load(&released), 1);
}

/* A thread stuck in sendFrame is left to end by itself, then frees. */
static void test_destroy_while_busy(void) {
  long_file(path("busy.dat"), 10);
  ts_rec *k;
  sl_stream_reader *r = reader_to(&k);
  atomic_store(&released, 0);
  sl_stream_reader_set_notify(r, on_notify, on_release, &notified);
  ts_rec_shut(k);
  CHECK_EQ(sl_stream_reader_open(r, path("busy.dat"), NULL), SL_OK);
  CHECK(ts_rec_await(k, 1, 1, 0, 20));
  CHECK_EQ(ts_rec_count(k), 1);             /* the thread is in sendFrame */
  double t0 = now_s();
  sl_object_unref(sl_stream_reader_object(r));
  double dt = now_s() - t0;
  CHECK(dt > 0.8 && dt < 30);               /* waited, then let it be */
  CHECK_EQ(atomic_load(&released), 0);
  ts_rec_open(k);
  for (int i = 0; i < 3000 && atomic_load(&released) == 0; i++) sl_sleep_us(10000);
  CHECK_EQ(atomic_load(&released), 1);
  CHECK(ts_rec_count(k) >= 1);
  sl_object_unref(ts_rec_object(k));
}

static void test_round_trip(void) {
  sl_stream_writer *w = sl_stream_writer_new(NULL);
  sl_stream_writer_set_max_size(w, 256);
  sl_stream_writer_set_buffer_size(w, 100);
  sl_stream_writer_open(w, path("trip.dat"), NULL);
  sl_object *c = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 0));
  sl_pool *pool = sl_pool_new();
  for (int i = 0; i < 40; i++) {
    uint8_t p[64];
    uint32_t n = 1 + (uint32_t)(i * 13) % 60;
    memset(p, i, n);
    sl_frame *f = sl_pool_req_frame(pool, n);
    sl_frame_write(f, p, 0, n);
    sl_frame_set_channel(f, (uint8_t)(i % 7));
    sl_frame_set_error(f, (uint8_t)(i % 3));
    sl_frame_set_flags(f, (uint16_t)(i * 1000));
    sl_slave_accept(c->slave, f);
    sl_frame_unref(f);
  }
  sl_stream_writer_close(w);
  CHECK(access(path("trip.dat.3"), F_OK) == 0);
  ts_rec *k;
  sl_stream_reader *r = reader_to(&k);
  sl_stream_reader_result res = replay(r, path("trip.dat.1"));
  CHECK_STR(res.error, "");
  CHECK(res.files >= 3);
  CHECK_EQ(ts_rec_count(k), 40);
  int bad = 0;
  for (int i = 0; i < 40 && i < ts_rec_count(k); i++) {
    ts_got g = frame_of(k, i);
    uint32_t n = 1 + (uint32_t)(i * 13) % 60;
    bad += g.size != n || g.channel != i % 7 || g.error != i % 3 ||
           g.flags != (uint16_t)(i * 1000) || g.data[0] != i || g.data[n - 1] != i;
  }
  CHECK_EQ(bad, 0);
  drop(r, k);
  sl_pool_unref(pool);
  sl_object_unref(c);
  sl_object_unref(sl_stream_writer_object(w));
}

static const struct tt_case cases[] = {
    {"hand-made file into frames", test_hand_made_file},
    {"split files", test_split_files},
    {"bad records and a missing file", test_bad_records},
    {"results, notify, prompt stop", test_notify_and_stop},
    {"destroy while a send is stuck", test_destroy_while_busy},
    {"writer to reader across split files", test_round_trip},
    {NULL, NULL}};

int main(void) {
  if (ts_tmpdir(dir, sizeof dir, "sl_reader_") != 0) return 2;
  sl_log_set_emit(0);
  int rc = tt_main(cases);
  if (ts_rmdir(dir) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return rc;
}
