/*
** sl_stream_writer: Rogue's record bytes (rogue-reference 8.2 examples),
** raw mode, skipped frames, staging, splitting, truncation, write
** failures, cached channels, and records from several threads at once.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/log.h"
#include "streamlua/pool.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "streamlua/stream_writer.h"
#include "support.h"
#include "tt.h"

#include "../../src/core/bytes.h"

static char dir[64];
static sl_pool *pool;

static const char *path(const char *name) {
  static char buf[4][256];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

/* The whole file, malloc'd; *len gets its size (-1 if it does not exist). */
static uint8_t *slurp(const char *file, long *len) {
  FILE *fp = fopen(file, "rb");
  *len = -1;
  if (fp == NULL) return NULL;
  fseek(fp, 0, SEEK_END);
  *len = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  uint8_t *data = malloc((size_t)*len + 1);
  if (fread(data, 1, (size_t)*len, fp) != (size_t)*len) *len = -2;
  fclose(fp);
  return data;
}

static long file_size(const char *file) {
  struct stat st;
  return stat(file, &st) == 0 ? (long)st.st_size : -1;
}

static sl_frame *frame_of(const void *data, uint32_t n, uint8_t ch,
                          uint8_t err, uint16_t flags) {
  sl_frame *f = sl_pool_req_frame(pool, n);
  sl_frame_write(f, data, 0, n);
  sl_frame_set_channel(f, ch);
  sl_frame_set_error(f, err);
  sl_frame_set_flags(f, flags);
  return f;
}

/* Sends a frame through a channel (as a master would) and drops it. */
static void push(sl_object *ch, const void *data, uint32_t n, uint8_t channel,
                 uint8_t err, uint16_t flags) {
  sl_frame *f = frame_of(data, n, channel, err, flags);
  sl_slave_accept(ch->slave, f);
  sl_frame_unref(f);
}

static uint64_t counter(sl_object *obj, const char *name) {
  sl_counter c[SL_COUNTERS_MAX];
  size_t n = sl_object_counters(obj, c, SL_COUNTERS_MAX);
  for (size_t i = 0; i < n; i++)
    if (strcmp(c[i].name, name) == 0) return c[i].value;
  return (uint64_t)-1;
}

static int history_has(const char *text) {
  char *lines[256];
  size_t n = sl_log_history(lines, 256);
  int found = 0;
  for (size_t i = 0; i < n; i++) {
    if (strstr(lines[i], text) != NULL) found = 1;
    free(lines[i]);
  }
  return found;
}

static void test_reference_examples(void) {
  sl_stream_writer *w = sl_stream_writer_new(NULL);
  CHECK_EQ(sl_stream_writer_open(w, path("ex.dat"), NULL), SL_OK);
  sl_object *c0 = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 0));
  sl_object *c5 = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 5));
  uint8_t payload[32];
  for (int i = 0; i < 32; i++) payload[i] = (uint8_t)i;
  push(c0, payload, 32, 3, 0, 0x00A5);
  push(c5, "\xAA\xBB\xCC", 3, 3, 0x12, 0xBEEF);
  CHECK_EQ(sl_stream_writer_get_frame_count(w), 2);
  CHECK_EQ(sl_stream_writer_get_total_size(w), 40 + 11);
  sl_stream_writer_close(w);
  long len;
  uint8_t *data = slurp(path("ex.dat"), &len);
  static const uint8_t head1[] = {0x24, 0, 0, 0, 0xA5, 0, 0, 3};
  static const uint8_t rec2[] = {7, 0, 0, 0, 0xEF, 0xBE, 0x12, 5, 0xAA, 0xBB, 0xCC};
  if (CHECK_EQ(len, 51)) {
    CHECK(memcmp(data, head1, 8) == 0);
    CHECK(memcmp(data + 8, payload, 32) == 0);
    CHECK(memcmp(data + 40, rec2, 11) == 0);
  }
  free(data);
  sl_object_unref(c0);
  sl_object_unref(c5);
  sl_object_unref(sl_stream_writer_object(w));
}

static void test_raw_mode(void) {
  sl_stream_writer *w = sl_stream_writer_new(NULL);
  sl_stream_writer_set_raw(w, 1);
  CHECK(sl_stream_writer_get_raw(w));
  sl_stream_writer_open(w, path("raw.dat"), NULL);
  sl_object *c = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 0));
  push(c, "abc", 3, 1, 0, 0);
  push(c, "defg", 4, 2, 0, 0);
  sl_stream_writer_close(w);
  long len;
  uint8_t *data = slurp(path("raw.dat"), &len);
  CHECK_EQ(len, 7);
  CHECK(len == 7 && memcmp(data, "abcdefg", 7) == 0);
  free(data);
  sl_object_unref(c);
  sl_object_unref(sl_stream_writer_object(w));
}

static void test_skipped_frames(void) {
  sl_stream_writer *w = sl_stream_writer_new(NULL);
  sl_object *c = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 0));
  push(c, "x", 1, 0, 0, 0);                    /* closed: not written */
  sl_stream_writer_open(w, path("skip.dat"), NULL);
  push(c, "", 0, 0, 0, 0);                     /* empty payload */
  push(c, "e", 1, 0, 9, 0);                    /* errored, kept */
  sl_stream_writer_set_drop_errors(w, 1);
  push(c, "E", 1, 0, 9, 0);                    /* errored, dropped */
  push(c, "ok", 2, 0, 0, 0);
  CHECK_EQ(sl_stream_writer_get_frame_count(w), 2);
  CHECK_EQ(sl_stream_writer_channel_get_frame_count(sl_stream_writer_channel_from_object(c)), 4);   /* since open */
  CHECK_EQ(counter(sl_stream_writer_object(w), "drops"), 3);
  CHECK_EQ(counter(sl_stream_writer_object(w), "rxFrames"), 5);
  sl_stream_writer_close(w);
  CHECK_EQ(file_size(path("skip.dat")), 9 + 10);
  sl_object_unref(c);
  sl_object_unref(sl_stream_writer_object(w));
}

static void test_buffering(void) {
  sl_stream_writer *w = sl_stream_writer_new(NULL);
  CHECK_EQ(sl_stream_writer_set_buffer_size(w, 200), SL_OK);
  sl_stream_writer_open(w, path("buf.dat"), NULL);
  sl_object *c = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 0));
  uint8_t big[500];
  memset(big, 0x5a, sizeof big);
  push(c, "0123456789", 10, 1, 0, 0);
  push(c, "abcdefghij", 10, 2, 0, 0);
  CHECK_EQ(file_size(path("buf.dat")), 0);               /* all staged */
  CHECK_EQ(sl_stream_writer_get_current_size(w), 36);
  CHECK_EQ(sl_stream_writer_get_total_size(w), 36);
  push(c, big, sizeof big, 3, 0, 0);                     /* straight through */
  CHECK_EQ(file_size(path("buf.dat")), 36 + 508);
  for (int i = 0; i < 12; i++) push(c, big, 12, 4, 0, 0);   /* 20 B each */
  CHECK_EQ(file_size(path("buf.dat")), 36 + 508 + 200);  /* one flush */
  CHECK_EQ(sl_stream_writer_get_current_size(w), 36 + 508 + 240);
  sl_stream_writer_close(w);
  long len;
  uint8_t *data = slurp(path("buf.dat"), &len);
  CHECK_EQ(len, 36 + 508 + 240);
  if (len == 36 + 508 + 240) {   /* order kept across staging and direct */
    CHECK(memcmp(data + 8, "0123456789", 10) == 0);
    CHECK(memcmp(data + 26, "abcdefghij", 10) == 0);
    CHECK_EQ(data[36 + 7], 3);
    CHECK_EQ(data[36 + 508 + 7], 4);
  }
  free(data);
  sl_object_unref(c);
  sl_object_unref(sl_stream_writer_object(w));
}

static void test_split(void) {
  sl_stream_writer *w = sl_stream_writer_new(NULL);
  sl_stream_writer_set_max_size(w, 100);
  CHECK_EQ(sl_stream_writer_open(w, path("split.dat"), NULL), SL_OK);
  sl_object *c = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 0));
  uint8_t p[40] = {0};
  for (int i = 0; i < 5; i++) {
    p[0] = (uint8_t)i;
    push(c, p, 40, 0, 0, 0);                    /* 48-byte records */
  }
  CHECK_EQ(sl_stream_writer_get_total_size(w), 240);
  CHECK_EQ(sl_stream_writer_get_current_size(w), 48);
  sl_stream_writer_close(w);
  CHECK_EQ(file_size(path("split.dat")), -1);
  CHECK_EQ(file_size(path("split.dat.1")), 96);
  CHECK_EQ(file_size(path("split.dat.2")), 96);
  CHECK_EQ(file_size(path("split.dat.3")), 48);
  CHECK_EQ(file_size(path("split.dat.4")), -1);
  CHECK_EQ(counter(sl_stream_writer_object(w), "files"), 3);
  /* too big for the limit: logged, counted, not written; the file stays */
  sl_stream_writer_set_max_size(w, 50);
  sl_stream_writer_open(w, path("big.dat"), NULL);
  uint64_t errors = counter(sl_stream_writer_object(w), "errors");
  uint8_t q[60] = {0};
  push(c, q, 60, 0, 0, 0);
  CHECK_EQ(counter(sl_stream_writer_object(w), "errors"), errors + 1);
  CHECK(history_has("Frame size is larger than file size limit"));
  CHECK(sl_stream_writer_is_open(w));
  push(c, q, 10, 0, 0, 0);
  sl_stream_writer_close(w);
  CHECK_EQ(file_size(path("big.dat.1")), 18);
  sl_object_unref(c);
  sl_object_unref(sl_stream_writer_object(w));
}

static void test_truncates(void) {
  int fd = open(path("old.dat"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  char junk[64];
  memset(junk, 'J', sizeof junk);
  CHECK_EQ(write(fd, junk, sizeof junk), 64);
  close(fd);
  sl_stream_writer *w = sl_stream_writer_new(NULL);
  sl_stream_writer_open(w, path("old.dat"), NULL);
  sl_object *c = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 0));
  push(c, "twelve bytes", 12, 0, 0, 0);
  sl_stream_writer_close(w);
  CHECK_EQ(file_size(path("old.dat")), 20);   /* Rogue would leave 64 */
  sl_object_unref(c);
  sl_object_unref(sl_stream_writer_object(w));
}

static void test_open_and_write_failures(void) {
  sl_stream_writer *w = sl_stream_writer_new(NULL);
  int err = 0;
  CHECK_EQ(sl_stream_writer_open(w, path("no/such/dir.dat"), &err), SL_ENOTFOUND);
  CHECK_EQ(err, ENOENT);
  CHECK(!sl_stream_writer_is_open(w));
  if (access("/dev/full", W_OK) == 0) {
    CHECK_EQ(sl_stream_writer_open(w, "/dev/full", NULL), SL_OK);
    sl_object *c = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 0));
    push(c, "abc", 3, 0, 0, 0);
    CHECK(!sl_stream_writer_is_open(w));            /* closed on failure */
    CHECK_EQ(counter(sl_stream_writer_object(w), "errors"), 1);
    CHECK(history_has("Write failed, closing file!"));
    push(c, "abc", 3, 0, 0, 0);                     /* closed: dropped */
    CHECK_EQ(counter(sl_stream_writer_object(w), "errors"), 1);
    sl_stream_writer_set_buffer_size(w, 64);        /* fails at the flush */
    sl_stream_writer_open(w, "/dev/full", NULL);
    push(c, "abc", 3, 0, 0, 0);
    CHECK(sl_stream_writer_is_open(w));
    sl_stream_writer_close(w);
    CHECK_EQ(counter(sl_stream_writer_object(w), "errors"), 2);
    sl_object_unref(c);
  }
  sl_object_unref(sl_stream_writer_object(w));
}

static void test_channels(void) {
  sl_stream_writer *w = sl_stream_writer_new(NULL);
  sl_object *a = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 7));
  sl_object *b = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 7));
  CHECK(a == b);
  CHECK_STR(sl_object_kind(a), "StreamWriterChannel");
  CHECK(sl_stream_writer_channel_from_object(a) != NULL);
  CHECK(sl_stream_writer_channel_from_object(sl_stream_writer_object(w)) == NULL);
  CHECK(sl_stream_writer_from_object(a) == NULL);
  sl_stream_writer_open(w, path("ch.dat"), NULL);
  push(a, "x", 1, 0, 0, 0);
  push(a, "y", 1, 0, 0, 0);
  CHECK_EQ(sl_stream_writer_channel_get_frame_count(sl_stream_writer_channel_from_object(a)), 2);
  CHECK_EQ(sl_slave_get_frame_count(a->slave), 2);
  sl_stream_writer_channel_set_frame_count(sl_stream_writer_channel_from_object(a), 10);
  CHECK_EQ(sl_stream_writer_channel_get_frame_count(sl_stream_writer_channel_from_object(a)), 10);
  CHECK(sl_stream_writer_channel_wait_frame_count(sl_stream_writer_channel_from_object(a), 10, 1000));
  double t0 = now_s();
  CHECK(!sl_stream_writer_channel_wait_frame_count(sl_stream_writer_channel_from_object(a), 11, 20000));
  CHECK(!sl_stream_writer_wait_frame_count(w, 3, 20000));
  double dt = now_s() - t0;
  CHECK(dt >= 0.035 && dt < 30.0);   /* waited both timeouts; no hang */
  sl_stream_writer_open(w, path("ch.dat"), NULL);      /* resets the counts */
  CHECK_EQ(sl_stream_writer_channel_get_frame_count(sl_stream_writer_channel_from_object(a)), 0);
  CHECK_EQ(sl_stream_writer_get_frame_count(w), 0);
  CHECK_EQ(sl_stream_writer_get_total_size(w), 0);
  /* a channel outlives its writer and keeps recording */
  sl_object_unref(sl_stream_writer_object(w));
  sl_object_unref(b);
  push(a, "late", 4, 0, 0, 0);
  CHECK_EQ(file_size(path("ch.dat")), 12);
  sl_object_unref(a);                                  /* closes the file */
}

/* ---- several threads, one file ---- */

#define THREADS 4
#define PER_THREAD 3000

typedef struct feeder {
  pthread_t t;
  sl_object *ch;
  int id;
} feeder;

static void *feed(void *arg) {
  feeder *fd = arg;
  uint8_t p[300];
  for (uint32_t i = 0; i < PER_THREAD; i++) {
    uint32_t n = 8 + (i * 37 + (uint32_t)fd->id) % 290;
    memcpy(p, &i, 4);
    memset(p + 4, fd->id, n - 4);
    push(fd->ch, p, n, 0, 0, (uint16_t)i);
  }
  return NULL;
}

typedef struct waiter_arg {
  sl_stream_writer *w;
  int ok;
} waiter_arg;

static void *wait_all(void *arg) {
  waiter_arg *wa = arg;
  wa->ok = sl_stream_writer_wait_frame_count(wa->w, THREADS * PER_THREAD, 0);
  return NULL;
}

static void test_threads(void) {
  sl_stream_writer *w = sl_stream_writer_new(NULL);
  sl_stream_writer_set_buffer_size(w, 4096);
  sl_stream_writer_open(w, path("mt.dat"), NULL);
  waiter_arg wa = {w, 0};
  pthread_t wt;
  pthread_create(&wt, NULL, wait_all, &wa);
  feeder fs[THREADS];
  for (int i = 0; i < THREADS; i++) {
    fs[i].id = i + 1;
    fs[i].ch = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, (uint8_t)(i + 1)));
    pthread_create(&fs[i].t, NULL, feed, &fs[i]);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(fs[i].t, NULL);
  pthread_join(wt, NULL);
  CHECK(wa.ok);
  CHECK(sl_stream_writer_get_bandwidth(w) > 0);
  sl_stream_writer_close(w);
  long len;
  uint8_t *data = slurp(path("mt.dat"), &len);
  uint32_t next[THREADS + 1] = {0};
  int bad = 0, records = 0;
  for (long off = 0; off + 8 <= len && bad == 0; records++) {
    uint32_t a = sl_load_le32(data + off), b = sl_load_le32(data + off + 4);
    uint32_t ch = b >> 24, n = a - 4;
    uint32_t seq = sl_load_le32(data + off + 8);
    if (ch < 1 || ch > THREADS || seq != next[ch] || (b & 0xffff) != (seq & 0xffff) ||
        n != 8 + (seq * 37 + ch) % 290)
      bad++;
    for (uint32_t k = 4; k < n && bad == 0; k++) bad += data[off + 8 + k] != ch;
    next[ch]++;
    off += 8 + n;
  }
  CHECK_EQ(bad, 0);
  CHECK_EQ(records, THREADS * PER_THREAD);
  free(data);
  for (int i = 0; i < THREADS; i++) sl_object_unref(fs[i].ch);
  sl_object_unref(sl_stream_writer_object(w));
}

static const struct tt_case cases[] = {
    {"reference examples, byte for byte", test_reference_examples},
    {"raw mode writes payload only", test_raw_mode},
    {"skipped frames", test_skipped_frames},
    {"staging buffer", test_buffering},
    {"split files and oversize records", test_split},
    {"open truncates", test_truncates},
    {"open and write failures", test_open_and_write_failures},
    {"channels", test_channels},
    {"records from several threads", test_threads},
    {NULL, NULL}};

int main(void) {
  if (ts_tmpdir(dir, sizeof dir, "sl_writer_") != 0) return 2;
  sl_log_set_emit(0);
  pool = sl_pool_new();
  int rc = tt_main(cases);
  sl_pool_unref(pool);
  if (ts_rmdir(dir) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return rc;
}
