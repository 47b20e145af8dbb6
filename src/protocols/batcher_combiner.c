/*
** CombinerV1(width) / CombinerV2(): queue frames, then build one
** super-frame of them (batcher.h). The queue is bounded by the size of
** the super-frame it would make.
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

typedef struct queued {
  sl_frame *f;                 /* holds a reference */
  sl_batch_record r;           /* its size and metadata when it came */
} queued;

struct sl_batch_combiner {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  int version;
  uint8_t width;
  sl_log *log;
  pthread_mutex_t mutex;       /* guards the queue, its size and seq */
  queued *q;
  size_t n, cap;
  uint64_t bytes;              /* the super-frame the queue makes */
  atomic_uint_least64_t max_bytes;   /* its bound */
  uint8_t seq;
  atomic_uint_least64_t rx, tx, drops;
};

static void bump(atomic_uint_least64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t record_bytes(const sl_batch_combiner *c, uint32_t size) {
  return sl_batch_padded(c->version, c->width, size) +
         sl_batch_tail_size(c->version, c->width);
}

/* Queues f, unless it is empty or would take the super-frame over the
** bound (then it is dropped, counted and logged). */
static void combiner_accept(sl_slave *s, sl_frame *f) {
  sl_batch_combiner *c = (sl_batch_combiner *)s->owner;
  bump(&c->rx, 1);
  sl_frame_lock(f);
  sl_batch_record r = {0, sl_frame_get_payload(f), sl_frame_get_channel(f),
                       sl_frame_get_first_user(f), sl_frame_get_last_user(f)};
  sl_frame_unlock(f);
  const char *why = NULL;
  pthread_mutex_lock(&c->mutex);
  uint64_t add = record_bytes(c, r.size);
  if (r.size == 0) {
    why = "an empty frame makes no record";
  } else if (c->bytes + add > atomic_load(&c->max_bytes)) {
    why = "the super-frame would be too large";
  } else if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    queued *nq = realloc(c->q, cap * sizeof *nq);
    if (nq == NULL) {
      why = "out of memory";
    } else {
      c->q = nq;
      c->cap = cap;
    }
  }
  if (why == NULL) {
    c->q[c->n++] = (queued){sl_frame_ref(f), r};
    c->bytes += add;
  }
  pthread_mutex_unlock(&c->mutex);
  if (why != NULL) {
    bump(&c->drops, 1);
    sl_log_write(c->log, SL_LOG_ERROR, "Dropping a %" PRIu32 "-byte frame: %s",
                 r.size, why);
  }
}

/* Writes the super-frame of q[0..n) into nf (locked, payload set). */
static void build(sl_batch_combiner *c, sl_frame *nf, const queued *q, size_t n,
                  uint8_t seq) {
  static const uint8_t zeros[64];
  uint8_t b[64];
  sl_frame_iter dst;
  sl_frame_iter_write(&dst, nf, 0);
  sl_frame_iter_put(&dst, b, sl_batch_put_header(b, c->version, c->width, seq));
  for (size_t i = 0; i < n; i++) {
    const sl_batch_record *r = &q[i].r;
    sl_frame_iter src;
    sl_frame_lock(q[i].f);
    sl_frame_iter_read(&src, q[i].f, 0);
    uint32_t got = sl_frame_iter_copy(&src, r->size, &dst);
    sl_frame_unlock(q[i].f);
    uint32_t pad = (uint32_t)sl_batch_padded(c->version, c->width, r->size) - got;
    while (pad > 0) {          /* padding, and any bytes a frame lost since */
      uint32_t k = pad < sizeof zeros ? pad : (uint32_t)sizeof zeros;
      sl_frame_iter_put(&dst, zeros, k);
      pad -= k;
    }
    sl_frame_iter_put(&dst, b, sl_batch_put_tail(b, c->version, c->width, r));
  }
}

int sl_batch_combiner_send(sl_batch_combiner *c) {
  pthread_mutex_lock(&c->mutex);
  queued *q = c->q;
  size_t n = c->n;
  uint64_t bytes = c->bytes;
  uint8_t seq = c->seq;
  if (n > 0) {
    c->q = NULL;
    c->n = c->cap = 0;
    c->bytes = sl_batch_header_size(c->version, c->width);
    c->seq++;
  }
  pthread_mutex_unlock(&c->mutex);
  int rc = SL_OK;
  if (n == 0) goto out;
  sl_frame *nf = sl_master_req_frame(&c->master, (uint32_t)bytes, 1);
  if (nf != NULL) {
    sl_frame_lock(nf);
    if (sl_frame_set_payload(nf, (uint32_t)bytes) == SL_OK) build(c, nf, q, n, seq);
    else rc = SL_ENOMEM;
    sl_frame_unlock(nf);
  }
  if (nf == NULL || rc != SL_OK) {
    bump(&c->drops, n);
    sl_log_write(c->log, SL_LOG_ERROR, "Out of memory for a %" PRIu64
                 "-byte super-frame: %zu frames dropped", bytes, n);
    rc = SL_ENOMEM;
  } else {
    sl_master_send_frame(&c->master, nf);
    bump(&c->tx, 1);
  }
  if (nf != NULL) sl_frame_unref(nf);
  for (size_t i = 0; i < n; i++) sl_frame_unref(q[i].f);
out:
  free(q);
  return rc;
}

size_t sl_batch_combiner_count(sl_batch_combiner *c) {
  pthread_mutex_lock(&c->mutex);
  size_t n = c->n;
  pthread_mutex_unlock(&c->mutex);
  return n;
}

int sl_batch_combiner_set_max(sl_batch_combiner *c, uint64_t bytes) {
  if (bytes < sl_batch_header_size(c->version, c->width) || bytes > SL_BATCH_COMBINER_MAX)
    return SL_EINVAL;
  atomic_store(&c->max_bytes, bytes);
  return SL_OK;
}

uint64_t sl_batch_combiner_max(sl_batch_combiner *c) { return atomic_load(&c->max_bytes); }

static size_t combiner_counters(sl_object *obj, sl_counter *out, size_t max) {
  sl_batch_combiner *c = (sl_batch_combiner *)obj;
  const sl_counter k[] = {{"rxFrames", atomic_load(&c->rx)},
                          {"txFrames", atomic_load(&c->tx)},
                          {"drops", atomic_load(&c->drops)},
                          {"depth", sl_batch_combiner_count(c)}};
  size_t n = sizeof k / sizeof k[0];
  if (n > max) n = max;
  memcpy(out, k, n * sizeof *out);
  return n;
}

static void combiner_destroy(sl_object *obj) {
  sl_batch_combiner *c = (sl_batch_combiner *)obj;
  for (size_t i = 0; i < c->n; i++) sl_frame_unref(c->q[i].f);
  free(c->q);
  sl_master_fini(&c->master);
  sl_slave_fini(&c->slave);
  pthread_mutex_destroy(&c->mutex);
  free(c);
}

static const sl_slave_ops combiner_ops = {.accept_frame = combiner_accept};

static const sl_class combiner_class[2] = {
    {.name = "batcher.CombinerV1", .destroy = combiner_destroy, .counters = combiner_counters},
    {.name = "batcher.CombinerV2", .destroy = combiner_destroy, .counters = combiner_counters}};

sl_batch_combiner *sl_batch_combiner_new(int version, uint8_t width, sl_error *err) {
  if (version != 1 && version != 2)
    return sl_fail(err, SL_EINVAL, "unknown batcher version %d", version);
  if (version == 1 && width > SL_BATCH_MAX_WIDTH)
    return sl_fail(err, SL_EINVAL, "Invalid width %u", (unsigned)width);
  sl_batch_combiner *c = calloc(1, sizeof *c);
  if (c == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  if (pthread_mutex_init(&c->mutex, NULL) != 0) goto out_free;
  sl_object_init(&c->obj, &combiner_class[version - 1]);
  c->version = version;
  c->width = version == 1 ? width : 0;
  c->bytes = sl_batch_header_size(version, c->width);
  atomic_init(&c->max_bytes, SL_BATCH_COMBINER_MAX);
  c->log = sl_log_get(version == 1 ? "batcher.CombinerV1" : "batcher.CombinerV2");
  if (sl_slave_init(&c->slave, &combiner_ops, &c->obj) != SL_OK) goto out_mutex;
  if (sl_master_init(&c->master, &c->obj) != SL_OK) goto out_slave;
  return c;
out_slave:
  sl_slave_fini(&c->slave);
out_mutex:
  pthread_mutex_destroy(&c->mutex);
out_free:
  free(c);
  return sl_fail(err, SL_ENOMEM, NULL);
}

sl_object *sl_batch_combiner_object(sl_batch_combiner *c) {
  return c != NULL ? &c->obj : NULL;
}

sl_batch_combiner *sl_batch_combiner_from_object(sl_object *obj) {
  return sl_object_is(obj, &combiner_class[0]) || sl_object_is(obj, &combiner_class[1])
             ? (sl_batch_combiner *)obj
             : NULL;
}
