/*
** Batcher nodes: SplitterV1/V2 and InverterV1/V2 parse super-frames
** (batcher_core.c) and send records or the rewritten super-frame on;
** CombinerV1/V2 queue frames and build super-frames of them. Every refused
** super-frame is counted by reason and logged on batcher.CoreV1/CoreV2.
*/
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/batcher.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/slave.h"

static void bump(atomic_uint_least64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- splitter and inverter: one node shape, four classes ---- */

typedef struct batch_node {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  int version;
  sl_log *log;                 /* batcher.CoreV<version> */
  atomic_uint_least64_t rx, tx, drops, skipped;
  atomic_uint_least64_t why[SL_BATCH_NOMEM + 1];   /* by sl_batch_error */
} batch_node;

struct sl_batch_splitter { batch_node n; };
struct sl_batch_inverter { batch_node n; };

/* Parses f (locked by the caller) into p; a refusal is counted and logged
** and returns 0. */
static int take(batch_node *b, sl_frame *f, sl_batch_parsed *p) {
  char err[160];
  sl_batch_error e = sl_batch_parse_frame(p, b->version, f, err, sizeof err);
  if (e == SL_BATCH_OK) return 1;
  bump(&b->drops, 1);
  bump(&b->why[e], 1);
  sl_log_write(b->log, SL_LOG_ERROR, "%s", err);   /* a loss: seen by default */
  return 0;
}

/* A frame holding record r of the super-frame f (locked), or NULL. */
static sl_frame *record_frame(batch_node *b, sl_frame *f, const sl_batch_record *r) {
  sl_frame *nf = sl_master_req_frame(&b->master, r->size, 1);
  if (nf == NULL) return NULL;
  sl_frame_lock(nf);
  if (sl_frame_set_payload(nf, r->size) != SL_OK) {
    sl_frame_unlock(nf);
    sl_frame_unref(nf);
    return NULL;
  }
  sl_frame_iter src, dst;
  sl_frame_iter_read(&src, f, r->offset);
  sl_frame_iter_write(&dst, nf, 0);
  sl_frame_iter_copy(&src, r->size, &dst);
  sl_frame_set_channel(nf, r->dest);
  sl_frame_set_flags(nf, (uint16_t)(r->first_user | r->last_user << 8));
  sl_frame_unlock(nf);
  return nf;
}

/* Every record becomes a frame; none is sent unless all could be made. */
static void splitter_accept(sl_slave *s, sl_frame *f) {
  batch_node *b = (batch_node *)s->owner;
  sl_batch_parsed p = {0};
  sl_frame **out = NULL;
  size_t made = 0;
  bump(&b->rx, 1);
  sl_frame_lock(f);
  if (!take(b, f, &p)) goto out_unlock;
  out = malloc(p.count * sizeof *out);
  for (; out != NULL && made < p.count; made++) {
    out[made] = record_frame(b, f, &p.records[made]);
    if (out[made] == NULL) break;
  }
  sl_frame_unlock(f);
  if (made < p.count) {
    bump(&b->drops, 1);
    sl_log_write(b->log, SL_LOG_ERROR, "Out of memory for record %zu of %zu "
                 "(%" PRIu32 " bytes)", made, p.count, p.records[made].size);
    goto out;
  }
  sl_master_send_frames(&b->master, out, made);
  bump(&b->tx, made);
  goto out;
out_unlock:
  sl_frame_unlock(f);
out:
  if (out != NULL) sl_frame_unref_many(out, made);
  free(out);
  sl_batch_parsed_free(&p);
}

/* A copy of f's payload (locked) from downstream, or NULL. */
static sl_frame *copy_frame(batch_node *b, sl_frame *f) {
  uint32_t n = sl_frame_get_payload(f);
  sl_frame *nf = sl_master_req_frame(&b->master, n, 1);
  if (nf == NULL) return NULL;
  sl_frame_lock(nf);
  sl_frame_iter src, dst;
  sl_frame_iter_read(&src, f, 0);
  sl_frame_iter_write(&dst, nf, 0);
  if (sl_frame_set_payload(nf, n) == SL_OK && sl_frame_iter_copy(&src, n, &dst) == n) {
    sl_frame_set_flags(nf, sl_frame_get_flags(f));
    sl_frame_set_channel(nf, sl_frame_get_channel(f));
    sl_frame_unlock(nf);
    return nf;
  }
  sl_frame_unlock(nf);
  sl_frame_unref(nf);
  return NULL;
}

/* Rogue's rewrite: the header slot takes the first `h` bytes of record
** 0's tail, each tail slot those of the next record's tail, and the last
** `h` bytes go. */
static void invert(sl_frame *f, const sl_batch_parsed *p) {
  uint32_t h = p->header_size, dst = 0;
  uint8_t tmp[64];
  for (size_t k = 0; k < p->count; k++) {
    const sl_batch_record *r = &p->records[k];
    uint32_t tail = r->offset + (uint32_t)sl_batch_padded(p->version, p->width, r->size);
    sl_frame_read(f, tmp, tail, h);
    sl_frame_write(f, tmp, dst, h);
    dst = tail;
  }
  sl_frame_adjust_payload(f, -(int64_t)h);
}

static void inverter_accept(sl_slave *s, sl_frame *f) {
  batch_node *b = (batch_node *)s->owner;
  sl_batch_parsed p = {0};
  sl_frame *out = NULL;
  bump(&b->rx, 1);
  sl_frame_lock(f);
  if (!take(b, f, &p)) goto out_unlock;
  if (p.count == 0 || (p.version == 1 && p.header_size != p.tail_size)) {
    bump(&b->skipped, 1);      /* Rogue's inverter emits nothing for these */
    goto out_unlock;
  }
  /* the sender's reference alone: nobody else sees the rewrite */
  out = sl_frame_refcount(f) == 1 ? sl_frame_ref(f) : copy_frame(b, f);
  uint32_t len = sl_frame_get_payload(f);
  sl_frame_unlock(f);
  if (out == NULL) {
    bump(&b->drops, 1);
    sl_log_write(b->log, SL_LOG_ERROR, "Out of memory for a copy of a %" PRIu32
                 "-byte frame", len);
    goto out;
  }
  sl_frame_lock(out);
  invert(out, &p);
  sl_frame_unlock(out);
  sl_master_send_frame(&b->master, out);
  bump(&b->tx, 1);
  sl_frame_unref(out);
  goto out;
out_unlock:
  sl_frame_unlock(f);
out:
  sl_batch_parsed_free(&p);
}

static size_t node_counters(sl_object *obj, sl_counter *out, size_t max) {
  batch_node *b = (batch_node *)obj;
  const sl_counter c[] = {
      {"rxFrames", atomic_load(&b->rx)},
      {"txFrames", atomic_load(&b->tx)},
      {"drops", atomic_load(&b->drops)},
      {"skipped", atomic_load(&b->skipped)},
      {"errored", atomic_load(&b->why[SL_BATCH_ERRORED])},
      {"short", atomic_load(&b->why[SL_BATCH_SHORT])},
      {"badVersion", atomic_load(&b->why[SL_BATCH_VERSION])},
      {"badWidth", atomic_load(&b->why[SL_BATCH_WIDTH])},
      {"noRoom", atomic_load(&b->why[SL_BATCH_NO_ROOM])},
      {"emptyRecord", atomic_load(&b->why[SL_BATCH_EMPTY])}};
  size_t n = sizeof c / sizeof c[0];
  if (n > max) n = max;
  memcpy(out, c, n * sizeof *out);
  return n;
}

static void node_destroy(sl_object *obj) {
  batch_node *b = (batch_node *)obj;
  sl_master_fini(&b->master);
  sl_slave_fini(&b->slave);
  free(b);
}

static const sl_slave_ops splitter_ops = {.accept_frame = splitter_accept};
static const sl_slave_ops inverter_ops = {.accept_frame = inverter_accept};

static const sl_class splitter_class[2] = {
    {.name = "batcher.SplitterV1", .destroy = node_destroy, .counters = node_counters},
    {.name = "batcher.SplitterV2", .destroy = node_destroy, .counters = node_counters}};
static const sl_class inverter_class[2] = {
    {.name = "batcher.InverterV1", .destroy = node_destroy, .counters = node_counters},
    {.name = "batcher.InverterV2", .destroy = node_destroy, .counters = node_counters}};

static batch_node *node_new(int version, const sl_class cls[2],
                            const sl_slave_ops *ops, sl_error *err) {
  if (version != 1 && version != 2)
    return sl_fail(err, SL_EINVAL, "unknown batcher version %d", version);
  batch_node *b = calloc(1, sizeof *b);
  if (b == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&b->obj, &cls[version - 1]);
  b->version = version;
  b->log = sl_log_get(version == 1 ? "batcher.CoreV1" : "batcher.CoreV2");
  if (sl_slave_init(&b->slave, ops, &b->obj) != SL_OK) goto out_free;
  if (sl_master_init(&b->master, &b->obj) != SL_OK) goto out_slave;
  return b;
out_slave:
  sl_slave_fini(&b->slave);
out_free:
  free(b);
  return sl_fail(err, SL_ENOMEM, NULL);
}

static int is_one_of(sl_object *obj, const sl_class cls[2]) {
  return sl_object_is(obj, &cls[0]) || sl_object_is(obj, &cls[1]);
}

sl_batch_splitter *sl_batch_splitter_new(int version, sl_error *err) {
  return (sl_batch_splitter *)node_new(version, splitter_class, &splitter_ops, err);
}

sl_object *sl_batch_splitter_object(sl_batch_splitter *s) {
  return s != NULL ? &s->n.obj : NULL;
}

sl_batch_splitter *sl_batch_splitter_from_object(sl_object *obj) {
  return is_one_of(obj, splitter_class) ? (sl_batch_splitter *)obj : NULL;
}

sl_batch_inverter *sl_batch_inverter_new(int version, sl_error *err) {
  return (sl_batch_inverter *)node_new(version, inverter_class, &inverter_ops, err);
}

sl_object *sl_batch_inverter_object(sl_batch_inverter *v) {
  return v != NULL ? &v->n.obj : NULL;
}

sl_batch_inverter *sl_batch_inverter_from_object(sl_object *obj) {
  return is_one_of(obj, inverter_class) ? (sl_batch_inverter *)obj : NULL;
}
