/*
** Block(offset, size): a register block. A memory master with a shadow of
** the block's bytes, the bit fields in it, and one transaction at a time
** over a byte range of it (see memory.h).
**
** A transaction's completion hook lands its data (a Read into the shadow,
** a Verify into the verify buffer) in whatever thread completes it. The
** hook reaches the block through a small reference-counted link, never a
** reference on the block: a block dropped while a slave still holds its
** transaction is destroyed at once (its transaction given up), and a hook
** that runs later finds the link empty.
*/
#include <stdlib.h>
#include <string.h>

#include "streamlua/memory.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"

#include "../core/bytes.h"

typedef struct block_link {
  atomic_int refs;
  pthread_mutex_t mutex;         /* guards b */
  sl_block *b;                   /* NULL once the block is destroyed */
} block_link;

struct sl_block {
  sl_object obj;
  sl_mem_master master;
  uint64_t offset;
  uint32_t size;
  block_link *link;
  pthread_mutex_t mutex;         /* guards everything below */
  pthread_cond_t cond;           /* a transaction landed */
  uint8_t *shadow;               /* size bytes */
  uint8_t *expect;               /* the last Write's bytes (first Write) */
  uint8_t *vdata;                /* the last Verify's bytes (first Verify) */
  uint32_t vlow, vn;             /* the verify range: the last Write's */
  sl_transaction *cur;           /* outstanding (a reference) or NULL */
  uint32_t cur_low;              /* where its data lands */
  int landed;                    /* cur completed and its data is in */
  void (*notify)(void *arg);
  void *notify_arg;
  void (*release)(void *arg);
};

/* ---- bits ---- */

static inline uint64_t low_mask(uint32_t nbits) {
  return nbits >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << nbits) - 1;
}

/* The nbits (1..64) at bit of p (len bytes, the field inside them). */
static uint64_t bits_get(const uint8_t *p, size_t len, uint64_t bit,
                         uint32_t nbits) {
  size_t i0 = (size_t)(bit >> 3);
  uint32_t sh = (uint32_t)(bit & 7);
  uint32_t nbytes = (sh + nbits + 7) >> 3;   /* 1..9 */
  const uint8_t *q = p + i0;
  uint64_t v;
  if (i0 + 8 <= len) {
    v = sl_load_le64(q) >> sh;
  } else {
    v = 0;
    for (uint32_t i = 0; i < nbytes && i < 8; i++) v |= (uint64_t)q[i] << (8 * i);
    v >>= sh;
  }
  if (nbytes == 9) v |= (uint64_t)q[8] << (64 - sh);
  return v & low_mask(nbits);
}

/* Writes the low nbits (1..64) of v at bit of p; other bits keep theirs. */
static void bits_set(uint8_t *p, size_t len, uint64_t bit, uint32_t nbits,
                     uint64_t v) {
  size_t i0 = (size_t)(bit >> 3);
  uint32_t sh = (uint32_t)(bit & 7);
  uint32_t nbytes = (sh + nbits + 7) >> 3;
  uint64_t m = low_mask(nbits);
  v &= m;
  uint8_t *q = p + i0;
  if (i0 + 8 <= len) {
    uint64_t w = sl_load_le64(q);
    w = (w & ~(m << sh)) | (v << sh);
    sl_store_le64(q, w);
  } else {
    for (uint32_t i = 0; i < nbytes && i < 8; i++) {
      uint8_t bm = (uint8_t)((m << sh) >> (8 * i));
      uint8_t bv = (uint8_t)((v << sh) >> (8 * i));
      q[i] = (uint8_t)((q[i] & ~bm) | (bv & bm));
    }
  }
  if (nbytes == 9) {
    uint8_t bm = (uint8_t)(m >> (64 - sh));
    q[8] = (uint8_t)((q[8] & ~bm) | ((uint8_t)(v >> (64 - sh)) & bm));
  }
}

void sl_bit_copy(uint8_t *dst, uint64_t dbit, const uint8_t *src,
                 uint64_t sbit, uint64_t n) {
  if (((dbit | sbit) & 7) == 0 && n >= 8) {
    size_t whole = (size_t)(n >> 3);
    memcpy(dst + (dbit >> 3), src + (sbit >> 3), whole);
    dbit += (uint64_t)whole * 8;
    sbit += (uint64_t)whole * 8;
    n &= 7;
  }
  while (n > 0) {
    uint32_t w = n > 56 ? 56 : (uint32_t)n;
    /* the field's own bytes bound each access: len = its last byte + 1 */
    uint64_t v = bits_get(src, (size_t)((sbit + w + 7) >> 3), sbit, w);
    bits_set(dst, (size_t)((dbit + w + 7) >> 3), dbit, w, v);
    dbit += w;
    sbit += w;
    n -= w;
  }
}

/* ---- the shadow ---- */

static int bits_inside(const sl_block *b, uint64_t bit, uint64_t nbits) {
  uint64_t all = (uint64_t)b->size * 8;
  return nbits > 0 && bit <= all && nbits <= all - bit;
}

static int bytes_inside(const sl_block *b, uint32_t low, uint32_t n) {
  return low <= b->size && n <= b->size - low;
}

int sl_block_set_uint(sl_block *b, uint64_t bit, uint32_t nbits, uint64_t raw) {
  if (nbits > 64 || !bits_inside(b, bit, nbits)) return SL_ERANGE;
  pthread_mutex_lock(&b->mutex);
  bits_set(b->shadow, b->size, bit, nbits, raw);
  pthread_mutex_unlock(&b->mutex);
  return SL_OK;
}

int sl_block_get_uint(sl_block *b, uint64_t bit, uint32_t nbits, uint64_t *raw) {
  if (nbits > 64 || !bits_inside(b, bit, nbits)) return SL_ERANGE;
  pthread_mutex_lock(&b->mutex);
  *raw = bits_get(b->shadow, b->size, bit, nbits);
  pthread_mutex_unlock(&b->mutex);
  return SL_OK;
}

int sl_block_set_bits(sl_block *b, uint64_t bit, uint64_t nbits,
                      const uint8_t *src, uint64_t sbit) {
  if (!bits_inside(b, bit, nbits)) return SL_ERANGE;
  pthread_mutex_lock(&b->mutex);
  sl_bit_copy(b->shadow, bit, src, sbit, nbits);
  pthread_mutex_unlock(&b->mutex);
  return SL_OK;
}

int sl_block_get_bits(sl_block *b, uint64_t bit, uint64_t nbits, uint8_t *out) {
  if (!bits_inside(b, bit, nbits)) return SL_ERANGE;
  memset(out, 0, (size_t)((nbits + 7) >> 3));
  pthread_mutex_lock(&b->mutex);
  sl_bit_copy(out, 0, b->shadow, bit, nbits);
  pthread_mutex_unlock(&b->mutex);
  return SL_OK;
}

int sl_block_get_shadow(sl_block *b, uint32_t low, uint32_t n, uint8_t *out) {
  if (!bytes_inside(b, low, n)) return SL_ERANGE;
  pthread_mutex_lock(&b->mutex);
  if (n > 0) memcpy(out, b->shadow + low, n);
  pthread_mutex_unlock(&b->mutex);
  return SL_OK;
}

int sl_block_set_shadow(sl_block *b, uint32_t low, uint32_t n, const uint8_t *src) {
  if (!bytes_inside(b, low, n)) return SL_ERANGE;
  pthread_mutex_lock(&b->mutex);
  if (n > 0) memcpy(b->shadow + low, src, n);
  pthread_mutex_unlock(&b->mutex);
  return SL_OK;
}

/* ---- transactions ---- */

static void link_unref(block_link *k) {
  if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1) return;
  pthread_mutex_destroy(&k->mutex);
  free(k);
}

/* The completion hook (any thread): lands the data, wakes the waiters. */
static void block_landed(sl_transaction *t, void *arg) {
  block_link *k = arg;
  pthread_mutex_lock(&k->mutex);
  sl_block *b = k->b;
  if (b != NULL) {
    int ok = !sl_transaction_failed(t);
    uint32_t type = sl_transaction_type(t);
    pthread_mutex_lock(&b->mutex);
    if (t == b->cur) {
      uint8_t *to = type == SL_MEM_READ ? b->shadow
                    : type == SL_MEM_VERIFY ? b->vdata : NULL;
      if (ok && to != NULL)
        memcpy(to + b->cur_low, sl_transaction_data(t), sl_transaction_size(t));
      b->landed = 1;
      pthread_cond_broadcast(&b->cond);
    }
    pthread_mutex_unlock(&b->mutex);
    if (b->notify != NULL) b->notify(b->notify_arg);
  }
  pthread_mutex_unlock(&k->mutex);
  link_unref(k);
}

typedef struct start_args {
  sl_block *b;
  uint32_t low;
} start_args;

/* Before the slave sees t: the data to send, the verify snapshot, t made
** the outstanding one and its hook set. */
static void block_before(sl_transaction *t, void *arg) {
  start_args *a = arg;
  sl_block *b = a->b;
  uint32_t n = sl_transaction_size(t), type = sl_transaction_type(t);
  pthread_mutex_lock(&b->mutex);
  if (sl_mem_type_is_write(type)) memcpy(sl_transaction_data(t), b->shadow + a->low, n);
  if (type == SL_MEM_WRITE) {
    memcpy(b->expect + a->low, b->shadow + a->low, n);
    b->vlow = a->low;
    b->vn = n;
  }
  b->cur = sl_transaction_ref(t);
  b->cur_low = a->low;
  b->landed = 0;
  pthread_mutex_unlock(&b->mutex);
  atomic_fetch_add_explicit(&b->link->refs, 1, memory_order_relaxed);
  sl_transaction_on_done(t, block_landed, b->link);
}

/* Drops a landed cur (mutex held); its error text into err when asked. */
static int take_cur(sl_block *b, char *err, size_t n) {
  if (err != NULL && n > 0) err[0] = '\0';
  if (b->cur == NULL) return SL_OK;
  if (!b->landed) return SL_EBUSY;
  int rc = SL_OK;
  if (sl_transaction_failed(b->cur)) {
    rc = SL_EINVAL;
    if (err != NULL) sl_transaction_get_error(b->cur, err, n);
  }
  sl_transaction_unref(b->cur);
  b->cur = NULL;
  return rc;
}

/* The buffer a transaction of type needs, made on first use (mutex held). */
static int ensure_buffers(sl_block *b, uint32_t type) {
  uint8_t **p = type == SL_MEM_WRITE ? &b->expect
                : type == SL_MEM_VERIFY ? &b->vdata : NULL;
  if (p == NULL || *p != NULL) return SL_OK;
  *p = calloc(b->size, 1);
  return *p != NULL ? SL_OK : SL_ENOMEM;
}

int sl_block_start(sl_block *b, uint32_t type, uint32_t low, uint32_t n) {
  if (type < SL_MEM_READ || type > SL_MEM_VERIFY) return SL_EINVAL;
  if (n == 0 || !bytes_inside(b, low, n)) return SL_ERANGE;
  pthread_mutex_lock(&b->mutex);
  int rc = take_cur(b, NULL, 0) == SL_EBUSY ? SL_EBUSY : SL_OK;   /* drops its error */
  if (rc == SL_OK) rc = ensure_buffers(b, type);
  pthread_mutex_unlock(&b->mutex);
  if (rc != SL_OK) return rc;
  start_args a = {b, low};
  sl_transaction *t = sl_mem_master_request(&b->master, b->offset + low, n, NULL,
                                            type, block_before, &a);
  if (t == NULL) return SL_ENOMEM;
  sl_transaction_unref(t);   /* the block keeps its own */
  return SL_OK;
}

sl_transaction *sl_block_pending(sl_block *b) {
  pthread_mutex_lock(&b->mutex);
  sl_transaction *t = b->cur != NULL ? sl_transaction_ref(b->cur) : NULL;
  pthread_mutex_unlock(&b->mutex);
  return t;
}

int sl_block_landed(sl_block *b) {
  pthread_mutex_lock(&b->mutex);
  int l = b->cur == NULL || b->landed;
  pthread_mutex_unlock(&b->mutex);
  return l;
}

int sl_block_finish(sl_block *b, char *err, size_t n) {
  pthread_mutex_lock(&b->mutex);
  int rc = take_cur(b, err, n);
  pthread_mutex_unlock(&b->mutex);
  return rc;
}

int sl_block_wait(sl_block *b, char *err, size_t n) {
  sl_transaction *t = sl_block_pending(b);
  int rc = t != NULL ? sl_mem_master_wait(t) : SL_OK;
  /* t is complete now; its hook may still be landing it elsewhere */
  pthread_mutex_lock(&b->mutex);
  while (b->cur != NULL && !b->landed) pthread_cond_wait(&b->cond, &b->mutex);
  int f = take_cur(b, err, n);
  pthread_mutex_unlock(&b->mutex);
  sl_transaction_unref(t);
  return rc == SL_ECANCELED ? rc : f;
}

void sl_block_verify_range(sl_block *b, uint32_t *low, uint32_t *n) {
  pthread_mutex_lock(&b->mutex);
  *low = b->vlow;
  *n = b->vn;
  pthread_mutex_unlock(&b->mutex);
}

int sl_block_verify_check(sl_block *b, const uint8_t *mask, uint32_t *index,
                          uint8_t *got, uint8_t *exp, uint8_t *mask_byte) {
  int bad = 0;
  pthread_mutex_lock(&b->mutex);
  const uint8_t *v = b->vdata, *e = b->expect;
  for (uint32_t i = b->vlow; v != NULL && e != NULL && i < b->vlow + b->vn; i++) {
    if ((v[i] & mask[i]) != (e[i] & mask[i])) {
      *index = i;
      *got = v[i];
      *exp = e[i];
      *mask_byte = mask[i];
      bad = 1;
      break;
    }
  }
  pthread_mutex_unlock(&b->mutex);
  return bad;
}

void sl_block_set_notify(sl_block *b, void (*fn)(void *arg), void *arg,
                         void (*release)(void *arg)) {
  pthread_mutex_lock(&b->link->mutex);
  void (*old_release)(void *) = b->release;
  void *old_arg = b->notify_arg;
  b->notify = fn;
  b->notify_arg = arg;
  b->release = release;
  pthread_mutex_unlock(&b->link->mutex);
  if (old_release != NULL) old_release(old_arg);
}

/* ---- the node ---- */

/* Gives up the outstanding transaction (its hook lands nothing). */
static void give_up(sl_block *b, const char *why) {
  sl_transaction *t = sl_block_pending(b);
  if (t == NULL) return;
  sl_transaction_give_up(t, why);
  sl_transaction_unref(t);
}

static void block_cancel(sl_object *obj) { give_up((sl_block *)obj, "stopped"); }

static void block_destroy(sl_object *obj) {
  sl_block *b = (sl_block *)obj;
  pthread_mutex_lock(&b->link->mutex);
  b->link->b = NULL;                /* a hook running now has finished */
  pthread_mutex_unlock(&b->link->mutex);
  link_unref(b->link);
  if (b->cur != NULL) {
    sl_transaction_give_up(b->cur, "block destroyed");
    sl_transaction_unref(b->cur);
  }
  if (b->release != NULL) b->release(b->notify_arg);
  sl_mem_master_fini(&b->master);
  pthread_cond_destroy(&b->cond);
  pthread_mutex_destroy(&b->mutex);
  free(b->shadow);
  free(b->expect);
  free(b->vdata);
  free(b);
}

static const sl_class block_class = {.name = "memory.Block",
                                     .destroy = block_destroy,
                                     .stop = block_cancel,
                                     .cancel = block_cancel};

static block_link *link_new(sl_block *b) {
  block_link *k = calloc(1, sizeof *k);
  if (k == NULL) return NULL;
  if (pthread_mutex_init(&k->mutex, NULL) != 0) {
    free(k);
    return NULL;
  }
  atomic_init(&k->refs, 1);
  k->b = b;
  return k;
}

sl_block *sl_block_new(uint64_t offset, uint32_t size, sl_error *err) {
  if (size == 0 || size > SL_BLOCK_MAX_SIZE)
    return sl_fail(err, SL_ERANGE, "size %u out of range [1, %u]", (unsigned)size,
                   (unsigned)SL_BLOCK_MAX_SIZE);
  sl_block *b = calloc(1, sizeof *b);
  if (b == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  b->shadow = calloc(size, 1);
  b->link = link_new(b);
  if (b->shadow == NULL || b->link == NULL) goto fail;
  if (pthread_mutex_init(&b->mutex, NULL) != 0) goto fail;
  if (sl_cond_init(&b->cond) != 0) goto fail_cond;
  sl_object_init(&b->obj, &block_class);
  if (sl_mem_master_init(&b->master, &b->obj) != SL_OK) goto fail_master;
  b->offset = offset;
  b->size = size;
  return b;
fail_master:
  pthread_cond_destroy(&b->cond);
fail_cond:
  pthread_mutex_destroy(&b->mutex);
fail:
  if (b->link != NULL) link_unref(b->link);
  free(b->shadow);
  free(b);
  return sl_fail(err, SL_ENOMEM, NULL);
}

sl_object *sl_block_object(sl_block *b) { return b != NULL ? &b->obj : NULL; }

sl_block *sl_block_from_object(sl_object *obj) {
  return sl_object_is(obj, &block_class) ? (sl_block *)obj : NULL;
}

uint64_t sl_block_offset(const sl_block *b) { return b->offset; }
uint32_t sl_block_size(const sl_block *b) { return b->size; }
