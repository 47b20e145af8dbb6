/*
** Fuzzes the batcher's super-frame parser (src/protocols/batcher_core.c),
** both versions, and the nodes built on it (src/protocols/batcher.c,
** batcher_combiner.c).
**
** Input: one control byte, then the super-frame. Control bit 0 picks the
** version (0: v1, 1: v2), bit 1 sends the frame in 7-byte buffers, bits
** 7:4 are the frame's error byte when bit 2 is set.
**
** Invariants: parsing bytes and parsing the frame agree; an accepted
** super-frame's records tile it exactly (header, then each record's
** padded data and its tail, in order, ending at the end), sizes are not
** 0 and each tail says what the record says; the splitter emits exactly
** those records (bytes, channel, flags) or nothing and one drop; the
** inverter emits len - header bytes exactly when Rogue's does; a combiner
** fed the records builds a super-frame that parses to the same records.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "streamlua/batcher.h"
#include "streamlua/pool.h"

/* Parses the super-frame as a frame (error byte ferr) from pool. */
static sl_batch_error parse_frame(sl_batch_parsed *p, int version, sl_pool *pool,
                                  const uint8_t *b, uint32_t n, uint8_t ferr) {
  sl_frame *f = sl_pool_req_frame(pool, n);
  FUZZ_CHECK(f != NULL);
  if (n > 0) FUZZ_CHECK(sl_frame_write(f, b, 0, n) == SL_OK);
  sl_frame_set_error(f, ferr);
  char err[160];
  sl_batch_error e = sl_batch_parse_frame(p, version, f, err, sizeof err);
  sl_frame_unref(f);
  return e;
}

/* Field by field: a record's padding bytes are not part of its value. */
static int same_record(const sl_batch_record *a, const sl_batch_record *b) {
  return a->offset == b->offset && a->size == b->size && a->dest == b->dest &&
         a->first_user == b->first_user && a->last_user == b->last_user;
}

static void check_tiling(const sl_batch_parsed *p, const uint8_t *b, uint32_t n) {
  uint64_t at = p->header_size;
  for (size_t i = 0; i < p->count; i++) {
    const sl_batch_record *r = &p->records[i];
    FUZZ_CHECK(r->offset == at && r->size > 0);
    at += sl_batch_padded(p->version, p->width, r->size);
    FUZZ_CHECK(at + p->tail_size <= n);
    FUZZ_CHECK(sl_load_le32(b + at) == r->size && b[at + 4] == r->dest &&
               b[at + 5] == r->first_user && b[at + 6] == r->last_user);
    at += p->tail_size;
  }
  FUZZ_CHECK(at == n);
}

static void check_splitter(int version, sl_pool *pool, const uint8_t *b,
                           uint32_t n, uint8_t ferr, const sl_batch_parsed *p,
                           int ok) {
  sl_object *s = sl_batch_splitter_object(sl_batch_splitter_new(version, NULL));
  fuzz_capture *cap = fuzz_capture_new();
  sl_master_add_slave(s->master, &cap->slave);
  sl_frame *f = sl_pool_req_frame(pool, n);
  FUZZ_CHECK(f != NULL);
  if (n > 0) FUZZ_CHECK(sl_frame_write(f, b, 0, n) == SL_OK);
  sl_frame_set_error(f, ferr);
  sl_slave_accept(s->slave, f);
  sl_frame_unref(f);
  FUZZ_CHECK(cap->n == (ok ? p->count : 0));
  FUZZ_CHECK(fuzz_counter(s, "drops") == (ok ? 0u : 1u));
  for (size_t i = 0; ok && i < p->count; i++) {
    const sl_batch_record *r = &p->records[i];
    const fuzz_frame *g = &cap->frames[i];
    FUZZ_CHECK(g->len == r->size && g->channel == r->dest && g->error == 0);
    FUZZ_CHECK(g->flags == (r->first_user | r->last_user << 8));
    FUZZ_CHECK(memcmp(cap->bytes + g->off, b + r->offset, r->size) == 0);
  }
  sl_object_unref(s);
  sl_object_unref(&cap->obj);
}

static void check_inverter(int version, const uint8_t *b, uint32_t n, uint8_t ferr,
                           const sl_batch_parsed *p, int ok) {
  sl_object *v = sl_batch_inverter_object(sl_batch_inverter_new(version, NULL));
  sl_object *src = sl_master_new(NULL);
  fuzz_capture *cap = fuzz_capture_new();
  sl_master_add_slave(v->master, &cap->slave);
  sl_master_add_slave(src->master, v->slave);
  fuzz_send(src->master, b, n, ferr);
  int emits = ok && p->count > 0 && (version == 2 || p->header_size == p->tail_size);
  FUZZ_CHECK(cap->n == (emits ? 1u : 0u));
  if (emits) {
    FUZZ_CHECK(cap->frames[0].len == n - p->header_size);
    const sl_batch_record *r0 = &p->records[0];
    uint64_t tail0 = r0->offset + sl_batch_padded(version, p->width, r0->size);
    FUZZ_CHECK(memcmp(cap->bytes, b + tail0, p->header_size) == 0);   /* first */
  }
  sl_object_unref(src);
  sl_object_unref(v);
  sl_object_unref(&cap->obj);
}

/* The records into a combiner of the same format: the same records back. */
static void check_combiner(const sl_batch_parsed *p, const uint8_t *b) {
  sl_object *c = sl_batch_combiner_object(sl_batch_combiner_new(p->version, p->width, NULL));
  sl_object *src = sl_master_new(NULL);
  fuzz_capture *cap = fuzz_capture_new();
  sl_master_add_slave(c->master, &cap->slave);
  sl_master_add_slave(src->master, c->slave);
  for (size_t i = 0; i < p->count; i++) {
    const sl_batch_record *r = &p->records[i];
    sl_frame *f = sl_master_req_frame(src->master, r->size, 1);
    FUZZ_CHECK(f != NULL && sl_frame_write(f, b + r->offset, 0, r->size) == SL_OK);
    sl_frame_set_channel(f, r->dest);
    sl_frame_set_flags(f, (uint16_t)(r->first_user | r->last_user << 8));
    sl_master_send_frame(src->master, f);
    sl_frame_unref(f);
  }
  FUZZ_CHECK(sl_batch_combiner_send(sl_batch_combiner_from_object(c)) == SL_OK);
  FUZZ_CHECK(cap->n == 1);
  sl_batch_parsed q = {0};
  char err[160];
  FUZZ_CHECK(sl_batch_parse(&q, p->version, cap->bytes, cap->frames[0].len, err,
                            sizeof err) == SL_BATCH_OK);
  FUZZ_CHECK(q.count == p->count && q.width == p->width && q.sequence == 0);
  for (size_t i = 0; i < q.count; i++) {
    const sl_batch_record *r = &p->records[i], *s = &q.records[i];
    FUZZ_CHECK(s->size == r->size && s->dest == r->dest &&
               s->first_user == r->first_user && s->last_user == r->last_user);
    FUZZ_CHECK(memcmp(cap->bytes + s->offset, b + r->offset, r->size) == 0);
  }
  sl_batch_parsed_free(&q);
  sl_object_unref(src);
  sl_object_unref(c);
  sl_object_unref(&cap->obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) fuzz_quiet();
  quiet = 1;
  if (size < 1 || size > (1u << 20)) return 0;
  uint8_t ctl = data[0];
  int version = (ctl & 1) ? 2 : 1;
  uint8_t ferr = (ctl & 4) ? (uint8_t)(ctl >> 4) : 0;
  const uint8_t *b = data + 1;
  uint32_t n = (uint32_t)size - 1;
  sl_pool *pool = sl_pool_new();
  if (ctl & 2) sl_pool_set_fixed_size(pool, 7);
  sl_batch_parsed p = {0}, pf = {0};
  char err[160];
  sl_batch_error e = sl_batch_parse(&p, version, b, n, err, sizeof err);
  sl_batch_error ef = parse_frame(&pf, version, pool, b, n, ferr);
  FUZZ_CHECK(ferr != 0 ? ef == SL_BATCH_ERRORED : ef == e);
  FUZZ_CHECK(e != SL_BATCH_ERRORED && e != SL_BATCH_NOMEM);
  if (e == SL_BATCH_OK) {
    check_tiling(&p, b, n);
    if (ferr == 0) {
      FUZZ_CHECK(pf.count == p.count);
      for (size_t i = 0; i < p.count; i++) FUZZ_CHECK(same_record(&pf.records[i], &p.records[i]));
    }
  } else {
    FUZZ_CHECK(p.count == 0);
  }
  int ok = e == SL_BATCH_OK && ferr == 0;
  check_splitter(version, pool, b, n, ferr, &p, ok);
  check_inverter(version, b, n, ferr, &p, ok);
  if (ok) check_combiner(&p, b);
  sl_batch_parsed_free(&p);
  sl_batch_parsed_free(&pf);
  sl_pool_unref(pool);
  return 0;
}
