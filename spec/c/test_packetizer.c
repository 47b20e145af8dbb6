/*
** The packetizer, v1 and v2, against Rogue's captured segments (the
** pack_* and stack_* vector files): frames sent into an application give
** those bytes on the transport; those bytes fed to the transport give
** those frames. Then every receive drop rule, the reset of unfinished
** frames, the bound on held bytes, and the segment sizes over an
** RSSI-like transport.
*/
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/master.h"
#include "streamlua/packetizer.h"
#include "streamlua/slave.h"
#include "support.h"
#include "tt.h"
#include "vectors.h"

#include "../../src/core/bytes.h"
#include "../../src/core/crc32.h"

/* ---- fixtures ---- */

/* A Core with its transport recorded (transport buffers of `fixed` bytes
** when fixed > 0) and a master sending into application(dest). */
typedef struct fix {
  sl_packetizer *p;
  sl_object *transport, *app, *src;
  ts_rec *wire;                  /* segments the transport sent */
} fix;

static void fix_init(fix *x, sl_packetizer *p, uint32_t dest, uint32_t fixed) {
  x->p = p;
  x->transport = sl_packetizer_transport(p);
  x->app = sl_packetizer_application(p, dest, NULL);
  x->wire = ts_rec_on(x->transport, 16);
  if (fixed > 0) sl_pool_set_fixed_size(x->wire->slave.pool, fixed);
  x->src = ts_master_new();
  sl_master_add_slave(x->src->master, x->app->slave);
}

static void fix_fini(fix *x) {
  sl_object_unref(x->src);
  sl_object_unref(&x->wire->obj);
  sl_object_unref(x->app);
  sl_object_unref(x->transport);
  sl_object_unref(sl_packetizer_object(x->p));
}

static uint16_t users(uint8_t first, uint8_t last) {
  return (uint16_t)(first | last << 8);
}

/* The payload bytes of a segmented vector (header h, tail t per block,
** v2 trailing pad removed by the tail's count). */
static uint8_t *vec_payload(const tv_file *v, int version, uint32_t *n) {
  uint8_t *out = malloc(1 << 16);
  *n = 0;
  for (size_t i = 0; i < v->nblocks; i++) {
    const tv_block *b = &v->blocks[i];
    size_t len = version == 1 ? b->n - 9 : b->n - 24 + b->bytes[b->n - 6];
    memcpy(out + *n, b->bytes + 8, len);
    *n += (uint32_t)len;
  }
  return out;
}

/* Segment i on the wire equals block i of the vector. */
static int wire_is(ts_rec *wire, const tv_file *v) {
  if (ts_rec_count(wire) != (long)v->nblocks) return 0;
  for (size_t i = 0; i < v->nblocks; i++) {
    ts_got g;
    if (!ts_rec_frame(wire, (long)i, &g) || g.size != v->blocks[i].n ||
        memcmp(g.data, v->blocks[i].bytes, g.size) != 0)
      return 0;
  }
  return 1;
}

/* Feeds bytes to the transport as one single-buffer segment. */
static void feed(sl_object *transport, const void *p, uint32_t n) {
  sl_pool *pool = sl_pool_new();
  ts_push(transport->slave, pool, p, n);
  sl_pool_unref(pool);
}

static void feed_blocks(sl_object *transport, const tv_file *v) {
  for (size_t i = 0; i < v->nblocks; i++)
    feed(transport, v->blocks[i].bytes, (uint32_t)v->blocks[i].n);
}

/* ---- CRC ---- */

static void test_crc(void) {
  CHECK_EQ(sl_crc32(0, "123456789", 9), 0xCBF43926u);
  CHECK_EQ(sl_crc32(sl_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
  static const uint8_t cov[] = {0x22, 0x22, 0x05, 0x00, 0x00, 0x00, 0x00,
                                0x80, 0xa1, 0xb2, 0xc3, 0x00, 0x00, 0x00,
                                0x00, 0x00, 0x01, 0x01, 0x03, 0x00};
  CHECK_EQ(sl_crc32(0, cov, sizeof cov), 0x2C285D19u);
  uint8_t big[1000];
  for (int i = 0; i < 1000; i++) big[i] = (uint8_t)(i * 7 + 3);
  uint32_t c = 0;
  for (int i = 0; i < 1000; i += 13) c = sl_crc32(c, big + i, i + 13 > 1000 ? 1000 - (size_t)i : 13);
  CHECK_EQ(c, sl_crc32(0, big, 1000));
  /* every length and alignment against a bit-at-a-time CRC */
  static uint8_t buf[600];
  for (int i = 0; i < 600; i++) buf[i] = (uint8_t)(i * 131 + (i >> 3));
  int bad = 0;
  for (size_t off = 0; off < 16; off++)
    for (size_t n = 0; n + off <= 600; n += 1 + n / 16) {
      uint32_t r = 0xFFFFFFFFu;
      for (size_t k = 0; k < n; k++) {
        r ^= buf[off + k];
        for (int j = 0; j < 8; j++) r = (r & 1u) ? (r >> 1) ^ 0xEDB88320u : r >> 1;
      }
      bad += sl_crc32(0x12345678u, buf, 0) != 0x12345678u ||
             sl_crc32(0, buf + off, n) != ~r;
    }
  CHECK_EQ(bad, 0);
}

/* ---- encode: frames in, Rogue's segments out ---- */

static void test_encode_v1_3byte(void) {
  tv_file v;
  if (tv_load("pack_v1_3byte", &v) != 0) { CHECK(0); return; }
  fix x;
  fix_init(&x, sl_packetizer_new(1, 0, 0, 1, NULL), 5, 0);
  CHECK_EQ(ts_send(x.src->master, "\xa1\xb2\xc3", 3, 0, 0, users(0x20, 0x00)), SL_OK);
  CHECK(wire_is(x.wire, &v));
  fix_fini(&x);
  tv_free(&v);
}

static void test_encode_v1_multi(void) {
  tv_file v;
  if (tv_load("pack_v1_multi", &v) != 0) { CHECK(0); return; }
  CHECK_EQ(v.nblocks, 3);
  uint32_t n;
  uint8_t *data = vec_payload(&v, 1, &n);
  CHECK_EQ(n, 100);
  fix x;
  fix_init(&x, sl_packetizer_new(1, 0, 0, 1, NULL), 2, 64);
  CHECK_EQ(ts_send(x.src->master, "x", 1, 0, 0, 0), SL_OK);   /* frame number 0 */
  ts_rec_clear(x.wire);
  CHECK_EQ(ts_send(x.src->master, data, n, 0, 0, users(0x00, 0xF1)), SL_OK);
  CHECK(wire_is(x.wire, &v));
  fix_fini(&x);
  free(data);
  tv_free(&v);
}

static void test_encode_v2(void) {
  static const struct {
    const char *file;
    int ib, ob, ssi;
    uint32_t dest, fixed;
    uint8_t first, last;
  } cases[] = {{"pack_v2_3byte_crc", 1, 1, 1, 5, 0, 0x20, 0x01},
               {"pack_v2_8byte_nocrc", 0, 0, 0, 0, 0, 0x20, 0x00},
               {"pack_v2_multi_crc", 1, 1, 1, 2, 64, 0x00, 0x5A}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    tv_file v;
    if (tv_load(cases[c].file, &v) != 0) { CHECK(0); continue; }
    uint32_t n;
    uint8_t *data = vec_payload(&v, 2, &n);
    fix x;
    fix_init(&x, sl_packetizer_new(2, cases[c].ib, cases[c].ob, cases[c].ssi, NULL),
             cases[c].dest, cases[c].fixed);
    CHECK_EQ(ts_send(x.src->master, data, n, 0, 0, users(cases[c].first, cases[c].last)),
             SL_OK);
    if (!wire_is(x.wire, &v)) {
      fprintf(stderr, "  %s: segments differ\n", cases[c].file);
      CHECK(0);
    }
    fix_fini(&x);
    free(data);
    tv_free(&v);
  }
}

/* ---- decode: Rogue's segments in, frames out ---- */

static void test_decode(void) {
  static const struct {
    const char *file;
    int version, ib, ssi;
    uint32_t dest;
    uint8_t first, last, error;
  } cases[] = {{"pack_v1_3byte", 1, 0, 1, 5, 0x22, 0x00, 0},
               {"pack_v1_multi", 1, 0, 1, 2, 0x02, 0x71, 0x80},
               {"pack_v2_3byte_crc", 2, 1, 1, 5, 0x22, 0x01, 0x80},
               {"pack_v2_8byte_nocrc", 2, 1, 0, 0, 0x20, 0x00, 0},
               {"pack_v2_multi_crc", 2, 1, 1, 2, 0x02, 0x5A, 0},
               {"pack_v2_surf_full", 2, 1, 1, 0, 0x20, 0x00, 0}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    tv_file v;
    if (tv_load(cases[c].file, &v) != 0) { CHECK(0); continue; }
    uint32_t n;
    uint8_t *want = vec_payload(&v, cases[c].version, &n);
    /* the nocrc vector carries CRC 0: only a receiver that checks nothing takes it */
    int ib = strcmp(cases[c].file, "pack_v2_8byte_nocrc") == 0 ? 0 : cases[c].ib;
    sl_packetizer *p = sl_packetizer_new(cases[c].version, ib, 1, cases[c].ssi, NULL);
    sl_object *t = sl_packetizer_transport(p);
    sl_object *app = sl_packetizer_application(p, cases[c].dest, NULL);
    ts_rec *r = ts_rec_on(app, 4);
    feed_blocks(t, &v);
    ts_got g;
    int ok = ts_rec_count(r) == 1 && ts_rec_frame(r, 0, &g) && g.size == n &&
             memcmp(g.data, want, n) == 0 && g.channel == 0 &&
             g.flags == users(cases[c].first, cases[c].last) && g.error == cases[c].error;
    if (!ok) fprintf(stderr, "  %s: not delivered as expected\n", cases[c].file);
    CHECK(ok);
    CHECK_EQ(sl_packetizer_drop_count(p), 0);
    sl_object_unref(&r->obj);
    sl_object_unref(app);
    sl_object_unref(t);
    sl_object_unref(sl_packetizer_object(p));
    free(want);
    tv_free(&v);
  }
}

static void test_decode_interleaved(void) {
  tv_file v;
  if (tv_load("pack_v2_interleaved", &v) != 0) { CHECK(0); return; }
  sl_packetizer *p = sl_packetizer_new(2, 1, 1, 1, NULL);
  sl_object *t = sl_packetizer_transport(p);
  sl_object *a1 = sl_packetizer_application(p, 1, NULL);
  sl_object *a3 = sl_packetizer_application(p, 3, NULL);
  ts_rec *r1 = ts_rec_on(a1, 2), *r3 = ts_rec_on(a3, 2);
  feed_blocks(t, &v);
  ts_got g;
  CHECK(ts_rec_frame(r1, 0, &g) && g.size == 20 && g.error == 0 && g.flags == users(0x02, 0x44));
  CHECK(memcmp(g.data, v.blocks[0].bytes + 8, 16) == 0 &&
        memcmp(g.data + 16, v.blocks[2].bytes + 8, 4) == 0);
  CHECK(ts_rec_frame(r3, 0, &g) && g.size == 12 && g.error == 0x80 &&
        g.flags == users(0x02, 0x01));
  CHECK_EQ(sl_packetizer_drop_count(p), 0);
  /* v1 has one slot for every dest: the same interleaving loses frames */
  sl_object_unref(&r1->obj);
  sl_object_unref(&r3->obj);
  sl_object_unref(a1);
  sl_object_unref(a3);
  sl_object_unref(t);
  sl_object_unref(sl_packetizer_object(p));
  tv_free(&v);
}

/* ---- receive drop rules (reference 3.6) ---- */

typedef struct rx {
  sl_packetizer *p;
  sl_object *t, *app;
  ts_rec *r;
} rx;

static void rx_init(rx *x, int version, int ib, int ssi) {
  x->p = sl_packetizer_new(version, ib, 1, ssi, NULL);
  x->t = sl_packetizer_transport(x->p);
  x->app = sl_packetizer_application(x->p, 1, NULL);
  x->r = ts_rec_on(x->app, 8);
}

static void rx_fini(rx *x) {
  sl_object_unref(&x->r->obj);
  sl_object_unref(x->app);
  sl_object_unref(x->t);
  sl_object_unref(sl_packetizer_object(x->p));
}

/* A v1 segment: frame number, segment number, dest, payload n bytes
** of value `fill`, EOF, firstUser, lastUser. Returns its length. */
static uint32_t v1_seg(uint8_t *out, uint32_t fnum, uint32_t segn, uint8_t dest,
                       uint32_t n, uint8_t fill, int eof, uint8_t lu) {
  out[0] = (uint8_t)((fnum & 0xF) << 4);
  out[1] = (uint8_t)(fnum >> 4);
  out[2] = (uint8_t)segn;
  out[3] = (uint8_t)(segn >> 8);
  out[4] = (uint8_t)(segn >> 16);
  out[5] = dest;
  out[6] = 0;
  out[7] = 0x02;
  memset(out + 8, fill, n);
  out[8 + n] = (uint8_t)((eof ? 0x80 : 0) | (lu & 0x7F));
  return n + 9;
}

/* A v2 segment with FULL CRC chained from *crc (reset when sof). */
static uint32_t v2_seg(uint8_t *out, uint32_t segn, uint8_t dest, uint32_t n,
                       uint8_t fill, int sof, int eof, uint32_t *crc) {
  uint32_t words = (n + 7) / 8, size = 16 + 8 * words;
  memset(out, 0, size);
  out[0] = 0x22;
  out[1] = 0x02;
  out[2] = dest;
  out[4] = (uint8_t)segn;
  out[5] = (uint8_t)(segn >> 8);
  out[7] = sof ? 0x80 : 0;
  memset(out + 8, fill, n);
  uint8_t *t = out + size - 8;
  t[1] = (uint8_t)eof;
  t[2] = (uint8_t)(n % 8 ? n % 8 : 8);
  *crc = sl_crc32(sof ? 0 : *crc, out, size - 4);
  t[4] = (uint8_t)(*crc >> 24);
  t[5] = (uint8_t)(*crc >> 16);
  t[6] = (uint8_t)(*crc >> 8);
  t[7] = (uint8_t)*crc;
  return size;
}

/* Writes a fresh CRC (chained from prev) into a v2 segment of n bytes. */
static void reseal(uint8_t *s, uint32_t n, uint32_t prev) {
  uint32_t crc = sl_crc32(prev, s, n - 4);
  s[n - 4] = (uint8_t)(crc >> 24);
  s[n - 3] = (uint8_t)(crc >> 16);
  s[n - 2] = (uint8_t)(crc >> 8);
  s[n - 1] = (uint8_t)crc;
}

static void test_v1_drops(void) {
  rx x;
  rx_init(&x, 1, 0, 1);
  uint8_t s[64];
  /* contents: too short, bad version, errored frame, two buffers */
  feed(x.t, s, v1_seg(s, 0, 0, 1, 0, 0, 1, 0));   /* 9 bytes */
  CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "dropContents"), 1);
  uint32_t n = v1_seg(s, 0, 0, 1, 4, 0xAA, 1, 0);
  s[0] |= 0x1;
  feed(x.t, s, n);
  CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "dropContents"), 2);
  n = v1_seg(s, 0, 0, 1, 4, 0xAA, 1, 0);
  sl_pool *pool = sl_pool_new();
  sl_frame *f = sl_pool_req_frame(pool, n);
  sl_frame_write(f, s, 0, n);
  sl_frame_set_error(f, 1);
  sl_slave_accept(x.t->slave, f);
  sl_frame_unref(f);
  sl_pool_set_fixed_size(pool, 8);
  f = sl_pool_req_frame(pool, n);
  sl_frame_write(f, s, 0, n);
  sl_slave_accept(x.t->slave, f);
  sl_frame_unref(f);
  sl_pool_unref(pool);
  CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "dropContents"), 4);
  CHECK_EQ(ts_rec_count(x.r), 0);
  /* continuation without an open frame */
  feed(x.t, s, v1_seg(s, 3, 1, 1, 4, 0, 1, 0));
  CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "dropState"), 1);
  /* frame-number mismatch and wrong segment number discard the open frame */
  feed(x.t, s, v1_seg(s, 3, 0, 1, 4, 0, 0, 0));
  feed(x.t, s, v1_seg(s, 4, 1, 1, 4, 0, 1, 0));
  CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "dropState"), 2);
  feed(x.t, s, v1_seg(s, 3, 1, 1, 4, 0, 1, 0));   /* that frame is gone */
  CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "dropState"), 3);
  feed(x.t, s, v1_seg(s, 5, 0, 1, 4, 0, 0, 0));
  feed(x.t, s, v1_seg(s, 5, 2, 1, 4, 0, 1, 0));
  CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "dropState"), 4);
  CHECK_EQ(ts_rec_count(x.r), 0);
  CHECK_EQ(sl_packetizer_drop_count(x.p), 8);
  /* a new first segment replaces the open frame: logged, not counted */
  feed(x.t, s, v1_seg(s, 6, 0, 1, 4, 0x11, 0, 0));
  feed(x.t, s, v1_seg(s, 7, 0, 1, 3, 0x22, 0, 0));
  feed(x.t, s, v1_seg(s, 7, 1, 1, 2, 0x33, 1, 0x7F));
  CHECK_EQ(sl_packetizer_drop_count(x.p), 8);
  CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "replaced"), 1);
  ts_got g;
  CHECK(ts_rec_frame(x.r, 0, &g) && g.size == 5 &&
        memcmp(g.data, "\x22\x22\x22\x33\x33", 5) == 0 && g.error == 0x80 &&
        g.flags == users(0x02, 0x7F));
  /* tail 0xFE: EOF with lastUser 0x7E, no EOFE */
  feed(x.t, s, v1_seg(s, 8, 0, 1, 1, 0x44, 1, 0x7E));
  CHECK(ts_rec_frame(x.r, 1, &g) && g.error == 0 && g.flags == users(0x02, 0x7E));
  /* a dest without application: discarded, not counted */
  feed(x.t, s, v1_seg(s, 9, 0, 7, 1, 0x44, 1, 0));
  CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "noApplication"), 1);
  CHECK_EQ(sl_packetizer_drop_count(x.p), 8);
  rx_fini(&x);
}

static void test_v2_drops(void) {
  rx x;
  rx_init(&x, 2, 1, 1);
  sl_object *core = sl_packetizer_object(x.p);
  uint8_t s[128];
  uint32_t crc = 0, n;
  /* contents: short, size not a multiple of 8, bad version */
  n = v2_seg(s, 0, 1, 16, 0xAA, 1, 1, &crc);
  feed(x.t, s, 16);
  feed(x.t, s, n - 4);
  s[0] = 0x21;
  feed(x.t, s, n);
  CHECK_EQ(ts_counter(core, "dropContents"), 3);
  /* the CRC-mode nibble is not checked: mode 0 carrying a FULL CRC is taken */
  n = v2_seg(s, 0, 1, 8, 0xAA, 1, 1, &crc);
  s[0] = 0x02;
  reseal(s, n, 0);
  feed(x.t, s, n);
  CHECK_EQ(ts_rec_count(x.r), 1);
  /* continuation without SOF, wrong segment number */
  feed(x.t, s, v2_seg(s, 1, 1, 8, 0, 0, 1, &crc));
  CHECK_EQ(ts_counter(core, "dropState"), 1);
  feed(x.t, s, v2_seg(s, 0, 1, 8, 0, 1, 0, &crc));
  feed(x.t, s, v2_seg(s, 2, 1, 8, 0, 0, 1, &crc));
  CHECK_EQ(ts_counter(core, "dropState"), 2);
  /* an unexpected SOF costs both frames, and is counted */
  feed(x.t, s, v2_seg(s, 0, 1, 8, 0, 1, 0, &crc));
  feed(x.t, s, v2_seg(s, 0, 1, 8, 0, 1, 1, &crc));
  CHECK_EQ(ts_counter(core, "dropState"), 3);
  feed(x.t, s, v2_seg(s, 1, 1, 8, 0, 0, 1, &crc));
  CHECK_EQ(ts_counter(core, "dropState"), 4);
  /* a CRC error mid-frame discards it; so does a chain not continued */
  feed(x.t, s, v2_seg(s, 0, 1, 8, 0, 1, 0, &crc));
  n = v2_seg(s, 1, 1, 8, 0, 0, 1, &crc);
  s[9] ^= 1;
  feed(x.t, s, n);
  CHECK_EQ(ts_counter(core, "dropCrc"), 1);
  feed(x.t, s, v2_seg(s, 0, 1, 8, 0, 1, 0, &crc));
  n = v2_seg(s, 1, 1, 8, 0, 0, 1, &crc);
  reseal(s, n, 0);   /* a fresh CRC where the chain should continue */
  feed(x.t, s, n);
  CHECK_EQ(ts_counter(core, "dropCrc"), 2);
  CHECK_EQ(ts_rec_count(x.r), 1);
  CHECK_EQ(sl_packetizer_drop_count(x.p), 9);
  /* count 0 in a 24-byte segment: an empty frame */
  n = v2_seg(s, 0, 1, 8, 0, 1, 1, &crc);
  s[18] = 0;
  reseal(s, n, 0);
  feed(x.t, s, n);
  ts_got g;
  CHECK(ts_rec_frame(x.r, 1, &g) && g.size == 0);
  /* no application for dest 9: discarded, not counted */
  feed(x.t, s, v2_seg(s, 0, 9, 3, 0, 1, 1, &crc));
  CHECK_EQ(ts_counter(core, "noApplication"), 1);
  CHECK_EQ(sl_packetizer_drop_count(x.p), 9);
  rx_fini(&x);
}

/* Without enIbCrc the CRC and mode are ignored. */
static void test_v2_no_ib_crc(void) {
  rx x;
  rx_init(&x, 2, 0, 0);
  uint8_t s[64];
  uint32_t crc = 0;
  uint32_t n = v2_seg(s, 0, 1, 5, 0x5A, 1, 1, &crc);
  s[20] ^= 0xFF;
  feed(x.t, s, n);
  ts_got g;
  CHECK(ts_rec_frame(x.r, 0, &g) && g.size == 5 && g.error == 0);
  CHECK_EQ(sl_packetizer_drop_count(x.p), 0);
  rx_fini(&x);
}

/* A reset forgets and counts unfinished frames; the next first segment
** of each dest is delivered (Rogue's v2 would drop it as unexpected). */
static void test_reset(void) {
  for (int version = 1; version <= 2; version++) {
    rx x;
    rx_init(&x, version, 1, 0);
    uint8_t s[64];
    uint32_t crc = 0;
    if (version == 1)
      feed(x.t, s, v1_seg(s, 1, 0, 1, 8, 0x11, 0, 0));
    else
      feed(x.t, s, v2_seg(s, 0, 1, 8, 0x11, 1, 0, &crc));
    CHECK_EQ(sl_packetizer_reset(x.p), 1);
    CHECK_EQ(sl_packetizer_drop_count(x.p), 1);
    CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "dropReset"), 1);
    if (version == 1)
      feed(x.t, s, v1_seg(s, 0, 0, 1, 3, 0x22, 1, 0));
    else
      feed(x.t, s, v2_seg(s, 0, 1, 3, 0x22, 1, 1, &crc));
    ts_got g;
    CHECK(ts_rec_frame(x.r, 0, &g) && g.size == 3 && memcmp(g.data, "\x22\x22\x22", 3) == 0);
    CHECK_EQ(sl_packetizer_reset(x.p), 0);
    CHECK_EQ(sl_packetizer_drop_count(x.p), 1);
    rx_fini(&x);
  }
}

/* Unfinished frames hold at most max_pending bytes. */
static void test_pending_bound(void) {
  rx x;
  rx_init(&x, 2, 0, 0);
  sl_packetizer_set_max_pending(x.p, 40);
  CHECK_EQ(sl_packetizer_get_max_pending(x.p), 40);
  uint8_t s[64];
  uint32_t crc = 0;
  feed(x.t, s, v2_seg(s, 0, 1, 24, 1, 1, 0, &crc));
  feed(x.t, s, v2_seg(s, 1, 1, 24, 1, 0, 0, &crc));   /* 48 > 40 */
  CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "dropLimit"), 1);
  feed(x.t, s, v2_seg(s, 0, 1, 40, 2, 1, 1, &crc));    /* exactly the bound */
  ts_got g;
  CHECK(ts_rec_frame(x.r, 0, &g) && g.size == 40);
  rx_fini(&x);
}

/* ---- round trips, copies, sizes ---- */

/* Frames not made by the application (another pool, no head room), and
** shared ones, are copied; frames of every size come back whole. */
static void test_round_trip(void) {
  for (int version = 1; version <= 2; version++) {
    sl_packetizer *a = sl_packetizer_new(version, 1, 1, 1, NULL);
    sl_packetizer *b = sl_packetizer_new(version, 1, 1, 1, NULL);
    sl_object *ta = sl_packetizer_transport(a), *tb = sl_packetizer_transport(b);
    sl_master_add_slave(ta->master, tb->slave);
    sl_object *app = sl_packetizer_application(a, 4, NULL);
    sl_object *out = sl_packetizer_application(b, 4, NULL);
    sl_pool_set_fixed_size(tb->slave->pool, 100);   /* segments of <= 100 bytes */
    ts_rec *r = ts_rec_on(out, 0);
    static uint8_t data[5000];
    for (int i = 0; i < 5000; i++) data[i] = (uint8_t)(i * 31 + version);
    const uint32_t sizes[] = {1, 7, 8, 9, 63, 64, 65, 100, 1000, 4999};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      sl_pool *pool = sl_pool_new();
      sl_frame *f = sl_pool_req_frame(pool, sizes[k]);
      sl_frame_write(f, data, 0, sizes[k]);
      sl_frame_set_flags(f, users(0x10, 0x20));
      if (k % 2) sl_frame_ref(f);   /* shared */
      sl_slave_accept(app->slave, f);
      if (k % 2) sl_frame_unref(f);
      sl_frame_unref(f);
      sl_pool_unref(pool);
      ts_got g;
      uint8_t buf[5000];
      CHECK(ts_rec_last(r, &g, buf, sizeof buf) && g.size == sizes[k] &&
            memcmp(buf, data, sizes[k]) == 0 && g.flags == users(0x12, 0x20));
    }
    CHECK_EQ(ts_rec_count(r), 10);
    CHECK_EQ(ts_counter(sl_packetizer_object(a), "copied"), 10);
    CHECK_EQ(sl_packetizer_drop_count(b), 0);
    sl_object_unref(&r->obj);
    sl_object_unref(app);
    sl_object_unref(out);
    sl_object_unref(ta);
    sl_object_unref(tb);
    sl_object_unref(sl_packetizer_object(a));
    sl_object_unref(sl_packetizer_object(b));
  }
}

static void test_errored_and_empty(void) {
  fix x;
  fix_init(&x, sl_packetizer_new(2, 0, 1, 0, NULL), 1, 0);
  CHECK_EQ(ts_send(x.src->master, "abc", 3, 0, 1, 0), SL_OK);
  CHECK_EQ(ts_counter(sl_packetizer_object(x.p), "txErrored"), 1);
  CHECK_EQ(ts_send(x.src->master, "", 0, 0, 0, 0), SL_OK);
  CHECK_EQ(ts_rec_count(x.wire), 0);
  /* a frame requested larger than written: no empty segments */
  sl_frame *f = sl_slave_req_frame(x.app->slave, 5000, 1);
  sl_frame_write(f, "hello", 0, 5);
  sl_slave_accept(x.app->slave, f);
  CHECK_EQ(sl_frame_buffer_count(f), 0);   /* sent in place: left empty */
  sl_frame_unref(f);
  CHECK_EQ(ts_rec_count(x.wire), 1);
  fix_fini(&x);
}

/* The same node for a dest, each call; bad dests refused. */
static void test_edges(void) {
  sl_packetizer *p = sl_packetizer_new(2, 0, 1, 1, NULL);
  sl_object *a = sl_packetizer_application(p, 255, NULL);
  sl_object *b = sl_packetizer_application(p, 255, NULL);
  CHECK(a == b);
  CHECK_STR(sl_object_kind(a), "packetizer.Application");
  CHECK_STR(sl_object_kind(sl_packetizer_object(p)), "packetizer.CoreV2");
  sl_error err;
  CHECK(sl_packetizer_application(p, 256, &err) == NULL);
  CHECK_EQ(err.status, SL_EINVAL);
  CHECK(sl_packetizer_new(3, 0, 0, 0, &err) == NULL);
  sl_object_unref(a);
  sl_object_unref(b);
  /* idle now; handed out again, still the same node */
  sl_object *c = sl_packetizer_application(p, 255, NULL);
  CHECK(c == a);
  sl_object *t = sl_packetizer_transport(p);
  CHECK_STR(sl_object_kind(t), "packetizer.Transport");
  sl_object_unref(sl_packetizer_object(p));   /* the edges keep it alive */
  sl_object_unref(c);
  sl_object_unref(t);
}

/* ---- the stack: an RSSI-like transport below ---- */

/* A transport slave that caps whole segments at seg_size, RSSI header
** (8 bytes) included, and records datagram sizes and bytes. */
typedef struct rssi_like {
  sl_object obj;
  sl_slave slave;
  uint32_t seg_size;
  size_t n;
  uint32_t sizes[64];
  uint8_t *bytes[64];
} rssi_like;

static sl_frame *rl_req(sl_slave *s, uint32_t size, int zero_copy) {
  (void)zero_copy;
  rssi_like *r = (rssi_like *)s->owner;
  uint32_t raw = size + 8 < r->seg_size ? size + 8 : r->seg_size, got;
  sl_buffer *b = sl_pool_alloc_buffer(s->pool, raw, &got);
  memset(b->data, 0, b->raw_size);
  sl_buffer_adjust_header(b, 8);
  sl_frame *f = sl_frame_new();
  sl_frame_append_buffer(f, b);
  return f;
}

static void rl_accept(sl_slave *s, sl_frame *f) {
  rssi_like *r = (rssi_like *)s->owner;
  if (r->n == 64) return;
  uint32_t n = sl_frame_get_payload(f);
  r->sizes[r->n] = n + 8;
  r->bytes[r->n] = malloc(n);
  sl_frame_read(f, r->bytes[r->n], 0, n);
  r->n++;
}

static void rl_destroy(sl_object *o) {
  rssi_like *r = (rssi_like *)o;
  for (size_t i = 0; i < r->n; i++) free(r->bytes[i]);
  sl_slave_fini(&r->slave);
  free(r);
}

static const sl_slave_ops rl_ops = {.accept_frame = rl_accept, .accept_req = rl_req};
static const sl_class rl_class = {.name = "test.RssiLike", .destroy = rl_destroy};

static rssi_like *rl_new(uint32_t seg_size) {
  rssi_like *r = calloc(1, sizeof *r);
  sl_object_init(&r->obj, &rl_class);
  sl_slave_init(&r->slave, &rl_ops, &r->obj);
  r->seg_size = seg_size;
  return r;
}

/* Datagram sizes of stack_segment_sizes, for both versions and MTUs. */
static void test_stack_sizes(void) {
  tv_file v;
  if (tv_load("stack_segment_sizes", &v) != 0) { CHECK(0); return; }
  static uint8_t data[20000];
  int lines = 0;
  for (const char *l = strstr(v.text, "packVer "); l != NULL; l = strstr(l + 1, "packVer ")) {
    int ver, jumbo;
    unsigned maxp, seg, small;
    if (sscanf(l, "packVer %d, jumbo %d: udp maxPayload %u, rssi segSize %u; "
               "3-byte frame -> datagram %u", &ver, &jumbo, &maxp, &seg, &small) != 5)
      continue;
    lines++;
    CHECK_EQ(seg, maxp - 8);
    sl_packetizer *p = ver == 2 ? sl_packetizer_new(2, 0, 1, 1, NULL)
                                : sl_packetizer_new(1, 0, 0, 1, NULL);
    sl_object *t = sl_packetizer_transport(p);
    sl_object *app = sl_packetizer_application(p, 1, NULL);
    rssi_like *r = rl_new(seg);
    sl_master_add_slave(t->master, &r->slave);
    sl_object *src = ts_master_new();
    sl_master_add_slave(src->master, app->slave);
    ts_send(src->master, data, 3, 0, 0, 0);
    CHECK(r->n == 1 && r->sizes[0] == small);
    ts_send(src->master, data, 20000, 0, 0, 0);
    const char *list = strstr(l, "datagrams:") + 10;
    size_t k = 1;
    char *end;
    for (unsigned long want = strtoul(list, &end, 10); end != list;
         list = end, want = strtoul(list, &end, 10)) {
      if (k >= r->n || r->sizes[k] != want) {
        fprintf(stderr, "  packVer %d jumbo %d: datagram %zu is %u, want %lu\n", ver,
                jumbo, k, k < r->n ? r->sizes[k] : 0, want);
        CHECK(0);
        break;
      }
      k++;
    }
    CHECK_EQ(k, r->n);
    sl_object_unref(src);
    sl_object_unref(app);
    sl_object_unref(t);
    sl_object_unref(&r->obj);
    sl_object_unref(sl_packetizer_object(p));
  }
  CHECK_EQ(lines, 4);
  tv_free(&v);
}

/* Parses "name [aa bb ...]" after `from`; returns the count of bytes. */
static size_t bracket(const char *from, const char *name, uint8_t *out) {
  const char *s = strstr(from, name);
  if (s == NULL) return 0;
  s = strchr(s, '[') + 1;
  size_t n = 0;
  while (*s != ']') {
    out[n++] = (uint8_t)strtoul(s, (char **)&s, 16);
    while (*s == ' ') s++;
  }
  return n;
}

/* stack_v2_5000byte_segments: sizes, packetizer headers, the first data
** bytes and the tails' first four bytes (the CRC covers a data pattern
** the file does not give). */
static void test_stack_5000(void) {
  tv_file v;
  if (tv_load("stack_v2_5000byte_segments", &v) != 0) { CHECK(0); return; }
  static uint8_t data[5000];
  for (int i = 0; i < 5000; i++) data[i] = (uint8_t)(i * 13);
  const char *lines[8];
  size_t nl = 0;
  for (const char *l = strstr(v.text, "\ndatagram "); l && nl < 8; l = strstr(l + 1, "\ndatagram "))
    lines[nl++] = l + 1;
  CHECK_EQ(nl, 4);
  for (size_t i = 0; i < nl; i++) {
    uint8_t d[8];
    bracket(lines[i], "data [", d);
    memcpy(data + 1440 * i, d, 8);
  }
  sl_packetizer *p = sl_packetizer_new(2, 0, 1, 1, NULL);
  sl_object *t = sl_packetizer_transport(p);
  sl_object *app = sl_packetizer_application(p, 1, NULL);
  rssi_like *r = rl_new(1464);
  sl_master_add_slave(t->master, &r->slave);
  sl_object *src = ts_master_new();
  sl_master_add_slave(src->master, app->slave);
  ts_send(src->master, data, 5000, 0, 0, users(0, 0x5A));
  CHECK_EQ(r->n, nl);
  uint32_t chain = 0;
  for (size_t i = 0; i < nl && i < r->n; i++) {
    unsigned size;
    uint8_t hdr[8], d[8], tail[8];
    sscanf(lines[i], "datagram %u", &size);
    bracket(lines[i], "pkt-hdr [", hdr);
    bracket(lines[i], "data [", d);
    bracket(lines[i], "tail [", tail);
    uint8_t *seg = r->bytes[i];
    uint32_t n = r->sizes[i] - 8;
    CHECK_EQ(r->sizes[i], size);
    CHECK(memcmp(seg, hdr, 8) == 0);
    CHECK(memcmp(seg + 8, d, 8) == 0);
    CHECK(memcmp(seg + n - 8, tail, 4) == 0);
    chain = sl_crc32(chain, seg, n - 4);   /* chained across the segments */
    CHECK_EQ(sl_load_be32(seg + n - 4), chain);
  }
  sl_object_unref(src);
  sl_object_unref(app);
  sl_object_unref(t);
  sl_object_unref(&r->obj);
  sl_object_unref(sl_packetizer_object(p));
  tv_free(&v);
}

/* The packetizer part of rssi_data_stack_v1/v2_3byte: what a 3-byte frame
** becomes, and Rogue's v2 segment (stale pad bytes under its CRC) read. */
static void test_stack_3byte(void) {
  static const struct { const char *file; int ver; uint32_t dest; } cases[] = {
      {"rssi_data_stack_v1_3byte", 1, 3}, {"rssi_data_stack_v2_3byte", 2, 0}};
  for (size_t c = 0; c < 2; c++) {
    tv_file v;
    if (tv_load(cases[c].file, &v) != 0) { CHECK(0); continue; }
    const uint8_t *seg = v.blocks[0].bytes + 8;
    uint32_t n = (uint32_t)v.blocks[0].n - 8;
    sl_packetizer *p = sl_packetizer_new(cases[c].ver, 1, 1, 1, NULL);
    sl_object *t = sl_packetizer_transport(p);
    sl_object *app = sl_packetizer_application(p, cases[c].dest, NULL);
    rssi_like *r = rl_new(1464);
    sl_master_add_slave(t->master, &r->slave);
    sl_object *src = ts_master_new();
    sl_master_add_slave(src->master, app->slave);
    ts_send(src->master, "\xa1\xb2\xc3", 3, 0, 0, users(0x01, 0));
    CHECK(r->n == 1 && r->sizes[0] == v.blocks[0].n);
    if (r->n == 1 && cases[c].ver == 1) CHECK(memcmp(r->bytes[0], seg, n) == 0);
    if (r->n == 1 && cases[c].ver == 2)   /* all but the pad and the CRC over it */
      CHECK(memcmp(r->bytes[0], seg, 11) == 0 && memcmp(r->bytes[0] + 16, seg + 16, 4) == 0);
    ts_rec *rec = ts_rec_on(app, 2);
    feed(t, seg, n);
    ts_got g;
    CHECK(ts_rec_frame(rec, 0, &g) && g.size == 3 && memcmp(g.data, "\xa1\xb2\xc3", 3) == 0 &&
          g.flags == users(0x03, 0));
    sl_object_unref(&rec->obj);
    sl_object_unref(src);
    sl_object_unref(app);
    sl_object_unref(t);
    sl_object_unref(&r->obj);
    sl_object_unref(sl_packetizer_object(p));
    tv_free(&v);
  }
}

/* ---- threads and re-entry ---- */

/* A slave on the transport that answers the first segment it sees by
** sending a frame into the same Core, from inside the send. */
static void answer_once(ts_rec *r, sl_frame *f) {
  (void)f;
  if (ts_rec_count(r) != 1) return;
  sl_object *src = r->ctx;
  CHECK_EQ(ts_send(src->master, "answer", 6, 0, 0, 0), SL_OK);
}

/* A frame sent from inside the transport's send goes out after the
** frame being sent, whole, and nothing waits on itself. */
static void test_reentrant_send(void) {
  fix x;
  fix_init(&x, sl_packetizer_new(1, 0, 0, 0, NULL), 1, 17);   /* 8 bytes a segment */
  x.wire->ctx = x.src;
  x.wire->hook = answer_once;
  static const char msg[] = "twenty-one bytes long";
  CHECK_EQ(ts_send(x.src->master, msg, 21, 0, 0, 0), SL_OK);
  CHECK_EQ(ts_rec_count(x.wire), 4);   /* 3 segments, then the answer's 1 */
  ts_got g;
  CHECK(ts_rec_frame(x.wire, 2, &g) && (g.data[g.size - 1] & 0x80) && g.data[0] == 0x00);
  CHECK(ts_rec_frame(x.wire, 3, &g) && g.data[0] == 0x10 && g.data[2] == 0 &&
        memcmp(g.data + 8, "answer", 6) == 0);
  fix_fini(&x);
}

typedef struct sender {
  sl_object *app;
  uint8_t seed;
  int frames;
} sender;

static void *send_main(void *arg) {
  sender *s = arg;
  sl_object *m = ts_master_new();
  sl_master_add_slave(m->master, s->app->slave);
  uint8_t data[3000];
  for (int i = 0; i < s->frames; i++) {
    uint32_t n = 1 + (uint32_t)(i * 97 + s->seed) % 3000;
    memset(data, s->seed + i, n);
    ts_send(m->master, data, n, 0, 0, 0);
  }
  sl_object_unref(m);
  return NULL;
}

/* Two threads send to two dests at once through v1 (one reassembly slot
** at the far end): every frame arrives whole, none is dropped. */
static void test_threads(void) {
  sl_packetizer *a = sl_packetizer_new(1, 0, 0, 0, NULL);
  sl_packetizer *b = sl_packetizer_new(1, 0, 0, 0, NULL);
  sl_object *ta = sl_packetizer_transport(a), *tb = sl_packetizer_transport(b);
  sl_master_add_slave(ta->master, tb->slave);
  sl_pool_set_fixed_size(tb->slave->pool, 512);
  sender s[2] = {{sl_packetizer_application(a, 1, NULL), 1, 200},
                 {sl_packetizer_application(a, 2, NULL), 2, 200}};
  sl_object *out[2] = {sl_packetizer_application(b, 1, NULL),
                       sl_packetizer_application(b, 2, NULL)};
  ts_rec *r[2] = {ts_rec_on(out[0], 0), ts_rec_on(out[1], 0)};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, send_main, &s[i]);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  CHECK_EQ(ts_rec_count(r[0]), 200);
  CHECK_EQ(ts_rec_count(r[1]), 200);
  CHECK_EQ(sl_packetizer_drop_count(b), 0);
  CHECK_EQ(ts_counter(sl_packetizer_object(b), "replaced"), 0);
  uint8_t buf[3000];
  ts_got g;
  CHECK(ts_rec_last(r[1], &g, buf, sizeof buf) && g.size == 1 + (199 * 97 + 2) % 3000 &&
        buf[0] == (uint8_t)(2 + 199) && buf[g.size - 1] == (uint8_t)(2 + 199));
  for (int i = 0; i < 2; i++) {
    sl_object_unref(&r[i]->obj);
    sl_object_unref(out[i]);
    sl_object_unref(s[i].app);
  }
  sl_object_unref(ta);
  sl_object_unref(tb);
  sl_object_unref(sl_packetizer_object(a));
  sl_object_unref(sl_packetizer_object(b));
}

static const struct tt_case cases[] = {
    {"crc", test_crc},
    {"encode v1 3 bytes", test_encode_v1_3byte},
    {"encode v1 multi", test_encode_v1_multi},
    {"encode v2", test_encode_v2},
    {"decode", test_decode},
    {"decode v2 interleaved", test_decode_interleaved},
    {"v1 drop rules", test_v1_drops},
    {"v2 drop rules", test_v2_drops},
    {"v2 without inbound CRC", test_v2_no_ib_crc},
    {"reset drops unfinished frames", test_reset},
    {"pending bound", test_pending_bound},
    {"round trip and copies", test_round_trip},
    {"errored and empty frames", test_errored_and_empty},
    {"edges", test_edges},
    {"stack segment sizes", test_stack_sizes},
    {"stack v2 5000 bytes", test_stack_5000},
    {"stack 3 bytes", test_stack_3byte},
    {"re-entrant send", test_reentrant_send},
    {"two sending threads", test_threads},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
