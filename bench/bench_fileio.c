/*
** bench_fileio: StreamWriter / StreamReader throughput against plain
** write() / read() of the same bytes, in the same run.
**
**   bench_fileio [seconds-per-measurement]      (default 0.5)
**
** For record payloads of 64 B, 1 KiB and 64 KiB:
**   1. writer, unbuffered: one frame sent through channel 0 over and over,
**      to a file in a fresh /tmp directory; raw: write() of the same record
**      bytes (header + payload, prebuilt), one call per record;
**   2. writer with a staging buffer of K whole records (~1 MiB); raw:
**      write() of a prebuilt block of the same K records, one call per block;
**   3. reader: the writer's file replayed into a plain counting slave
**      (fixed-size pool); raw: read() of each header, then of its payload,
**      into one reused buffer.
** Each run includes open and close; its record count is calibrated so
** that an unbuffered writer run lasts about the given time, with at most
** MAX_RUN_BYTES of file per run. Each is repeated 3 times (writer and raw
** alternating) and the best run is reported. Before each write run, untimed, the old file is removed and
** sync() puts earlier dirty pages on disk, so that no run pays for another
** one's writeback; the timed writes land in the page cache (no fsync), and
** the reads come from it. Checks, every run:
** the writer's file and the raw file are byte-identical, the record counts
** match, and the reader delivered every frame and byte.
*/
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/streamlua.h"
#include "streamlua/stream_reader.h"
#include "streamlua/stream_writer.h"
#include "bench.h"

#include "../src/core/bytes.h"

#define REPEATS 3
#define BLOCK (1u << 20)
#define MAX_RUN_BYTES (64u << 20)

static char dir[64], file_w[128], file_r[128];

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "CHECK FAILED: %s\n", what);
    bench_failures++;
  }
}

/* Are the two files the same bytes? */
static int same_files(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  static uint8_t ba[BLOCK], bb[BLOCK];
  int same = fa != NULL && fb != NULL;
  while (same) {
    size_t na = fread(ba, 1, BLOCK, fa), nb = fread(bb, 1, BLOCK, fb);
    same = na == nb && memcmp(ba, bb, na) == 0;
    if (na < BLOCK) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return same;
}

typedef struct bench_case {
  uint32_t size;        /* payload bytes */
  uint32_t rec;         /* record bytes */
  uint32_t per_block;   /* whole records in the staging block */
  uint64_t records;     /* per run */
  uint8_t *block;       /* per_block records, prebuilt */
  sl_frame *frame;
} bench_case;

/* Untimed: a fresh file and no dirty pages left from earlier runs. */
static void settle(const char *file) {
  unlink(file);
  sync();
}

static double writer_run(bench_case *c, int buffered) {
  settle(file_w);
  sl_stream_writer *w = sl_stream_writer_new(NULL);
  sl_object *ch = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, 0));
  if (buffered) sl_stream_writer_set_buffer_size(w, c->per_block * c->rec);
  double t0 = bench_now();
  sl_stream_writer_open(w, file_w, NULL);
  for (uint64_t i = 0; i < c->records; i++) sl_slave_accept(ch->slave, c->frame);
  sl_stream_writer_close(w);
  double t = bench_now() - t0;
  check(sl_stream_writer_get_frame_count(w) == c->records, "writer record count");
  sl_object_unref(ch);
  sl_object_unref(sl_stream_writer_object(w));
  return t;
}

static double raw_write_run(bench_case *c, int buffered) {
  settle(file_r);
  double t0 = bench_now();
  int fd = open(file_r, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  int ok = fd >= 0;
  if (buffered) {
    size_t len = (size_t)c->per_block * c->rec;
    for (uint64_t i = 0; i < c->records / c->per_block && ok; i++)
      ok = write(fd, c->block, len) == (ssize_t)len;
  } else {
    for (uint64_t i = 0; i < c->records && ok; i++)
      ok = write(fd, c->block, c->rec) == (ssize_t)c->rec;
  }
  if (fd >= 0) close(fd);
  double t = bench_now() - t0;
  check(ok, "raw write");
  return t;
}

static double reader_run(bench_case *c) {
  sl_stream_reader *r = sl_stream_reader_new(NULL);
  sl_object *sink = sl_slave_new(NULL);
  sl_pool_set_fixed_size(sink->slave->pool, c->size);
  sl_pool_set_pool_size(sink->slave->pool, 64);
  sl_master_add_slave(sl_stream_reader_master(r), sink->slave);
  double t0 = bench_now();
  check(sl_stream_reader_open(r, file_w, NULL) == SL_OK, "reader open");
  sl_stream_reader_close_wait(r, 0);
  double t = bench_now() - t0;
  check(sl_slave_get_frame_count(sink->slave) == c->records, "reader frames");
  check(sl_slave_get_byte_count(sink->slave) == c->records * c->size, "reader bytes");
  sl_object_unref(sl_stream_reader_object(r));
  sl_object_unref(sink);
  return t;
}

static double raw_read_run(bench_case *c) {
  static uint8_t buf[BLOCK];
  double t0 = bench_now();
  int fd = open(file_w, O_RDONLY | O_CLOEXEC);
  uint64_t n = 0, bytes = 0;
  uint32_t hdr[2];
  while (fd >= 0 && read(fd, hdr, 8) == 8) {
    ssize_t k = read(fd, buf, hdr[0] - 4);
    if (k != (ssize_t)(hdr[0] - 4)) break;
    n++;
    bytes += (uint64_t)k;
  }
  if (fd >= 0) close(fd);
  double t = bench_now() - t0;
  check(n == c->records && bytes == c->records * c->size, "raw read");
  return t;
}

static void setup(bench_case *c, uint32_t size, sl_pool *pool) {
  c->size = size;
  c->rec = size + 8;
  c->per_block = BLOCK / c->rec;
  c->records = c->per_block;
  c->block = malloc((size_t)c->per_block * c->rec);
  uint8_t *payload = malloc(size);
  for (uint32_t i = 0; i < size; i++) payload[i] = (uint8_t)(i * 31 + 7);
  uint8_t h[8];
  sl_store_le32(h, size + 4);
  sl_store_le32(h + 4, 3u << 24 | 0x00A5);
  for (uint32_t k = 0; k < c->per_block; k++) {
    memcpy(c->block + (size_t)k * c->rec, h, 8);
    memcpy(c->block + (size_t)k * c->rec + 8, payload, size);
  }
  c->frame = sl_pool_req_frame(pool, size);
  sl_frame_write(c->frame, payload, 0, size);
  sl_frame_set_channel(c->frame, 3);
  sl_frame_set_flags(c->frame, 0x00A5);
  free(payload);
}

/* Whole blocks of records, so that an unbuffered writer run lasts about
** `seconds` (at most MAX_RUN_BYTES of file). */
static void calibrate(bench_case *c, double seconds) {
  uint64_t max = MAX_RUN_BYTES / ((uint64_t)c->per_block * c->rec);
  uint64_t blocks = 1;
  for (;;) {
    c->records = blocks * c->per_block;
    double t = writer_run(c, 0);
    if (t >= seconds / 10 || blocks >= max) {
      double want = (double)blocks * seconds / (t > 1e-9 ? t : 1e-9);
      blocks = want < 1 ? 1 : want > (double)max ? max : (uint64_t)want;
      break;
    }
    blocks = blocks * 4 < max ? blocks * 4 : max;
  }
  c->records = blocks * c->per_block;
}

static void row(const char *what, uint32_t size, uint64_t records, uint64_t bytes,
                double tw, double tr) {
  printf("%-10s %6u B | %9.0f rec/s %8.1f MB/s | %9.0f rec/s %8.1f MB/s | %5.1f%% | %5.1f\n",
         what, size, (double)records / tw, (double)bytes / tw / 1e6,
         (double)records / tr, (double)bytes / tr / 1e6, 100.0 * tr / tw,
         (double)bytes / 1048576.0);
}

int main(int argc, char **argv) {
  double seconds = 0.5;
  if (argc > 1) {
    char *end;
    seconds = strtod(argv[1], &end);
    if (*end != '\0' || !(seconds > 0 && seconds <= 60)) {
      fprintf(stderr, "usage: %s [seconds-per-measurement]  (0 < s <= 60)\n", argv[0]);
      return 2;
    }
  }
  snprintf(dir, sizeof dir, "/tmp/bench_fileio_XXXXXX");
  if (mkdtemp(dir) == NULL) return 2;
  snprintf(file_w, sizeof file_w, "%s/writer.dat", dir);
  snprintf(file_r, sizeof file_r, "%s/raw.dat", dir);
  sl_pool *pool = sl_pool_new();
  static const uint32_t sizes[] = {64, 1024, 65536};
  printf("about %.2f s per run (at most %u MiB of file), best of %d\n\n", seconds,
         MAX_RUN_BYTES >> 20, REPEATS);
  printf("%-10s %8s | %-28s | %-28s | %6s | %s\n", "case", "payload", "streamlua",
         "raw write()/read()", "sl/raw", "MiB/run");
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    bench_case c;
    setup(&c, sizes[i], pool);
    calibrate(&c, seconds);
    uint64_t bytes = c.records * c.rec;
    for (int buffered = 0; buffered <= 1; buffered++) {
      double bw = 1e30, br = 1e30;
      for (int k = 0; k < REPEATS; k++) {
        double tw = writer_run(&c, buffered), tr = raw_write_run(&c, buffered);
        if (tw < bw) bw = tw;
        if (tr < br) br = tr;
        check(same_files(file_w, file_r), "writer file == raw file");
      }
      row(buffered ? "write buf" : "write", c.size, c.records, bytes, bw, br);
    }
    double bw = 1e30, br = 1e30;
    for (int k = 0; k < REPEATS; k++) {
      double tw = reader_run(&c), tr = raw_read_run(&c);
      if (tw < bw) bw = tw;
      if (tr < br) br = tr;
    }
    row("read", c.size, c.records, bytes, bw, br);
    sl_frame_unref(c.frame);
    free(c.block);
  }
  sl_pool_unref(pool);
  unlink(file_w);
  unlink(file_r);
  rmdir(dir);
  printf("\nchecks: %s\n", bench_failures == 0 ? "ok" : "FAILED");
  return bench_failures != 0;
}
