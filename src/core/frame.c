/*
** Frames: a list of buffers with metadata, one lock and an atomic count.
** Sizes are summed on demand: frames have one buffer or a handful, and a
** sum cannot go stale the way a cached total can.
*/
#include "streamlua/frame.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "futex.h"
#include "recycle.h"
#include "streamlua/pool.h"
#include "streamlua/status.h"

/* Most frames sl_frame_unref_many hands to the pools at once: a Fifo's
** whole batch, so a producer waiting for the pool meets it once a batch. */
#define UNREF_RUN 256

/* The address of a thread-local byte names the calling thread. */
static _Thread_local char thread_token;

sl_frame *sl_frame_new(void) {
  sl_frame *f = malloc(sizeof *f);
  if (f == NULL) return NULL;
  atomic_init(&f->refs, 1);
  atomic_init(&f->lock, 0);
  f->flags = 0;
  f->error = 0;
  f->channel = 0;
  f->nbuf = 0;
  f->cap = SL_FRAME_INLINE_BUFS;
  f->bufs = f->inl;
  atomic_init(&f->owner, 0);
  return f;
}

sl_frame *sl_frame_ref(sl_frame *f) {
  atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
  return f;
}

/* The last reference hands the frame to its pool (recycle.h). A holder
** that sees one reference holds the only one: no other thread can take or
** drop one, so the frame is dead without a locked instruction (the
** acquire load orders it after every other holder's drop). */
void sl_frame_unref(sl_frame *f) {
  if (f == NULL) return;
  if (sl_frame_is_sole(f) ||
      atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
    sl_pool_release_frame_(f);
}

/* Batches, as a queue's consumer lets go of frames another thread made,
** keep the locked decrement: with the look first, a Fifo hop at 64 B ran
** about 10 % slower (bench/README.md, "A sole holder lets go without a
** locked instruction"). */
void sl_frame_unref_many(sl_frame **fs, size_t n) {
  sl_frame *dead[UNREF_RUN];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    sl_frame *f = fs[i];
    if (f == NULL ||
        atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
      continue;
    dead[k++] = f;
    if (k == UNREF_RUN) {
      sl_pool_release_frames_(dead, k);
      k = 0;
    }
  }
  if (k > 0) sl_pool_release_frames_(dead, k);
}

int sl_frame_refcount(const sl_frame *f) {
  return atomic_load_explicit(&f->refs, memory_order_relaxed);
}

int sl_frame_is_sole(const sl_frame *f) {
  return atomic_load_explicit(&f->refs, memory_order_acquire) == 1;
}

uint32_t sl_frame_get_size(const sl_frame *f) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < f->nbuf; i++) n += sl_buffer_get_size(f->bufs[i]);
  return n;
}

uint32_t sl_frame_get_payload(const sl_frame *f) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < f->nbuf; i++)
    n += sl_buffer_get_payload(f->bufs[i]);
  return n;
}

uint32_t sl_frame_get_available(const sl_frame *f) {
  return sl_frame_get_size(f) - sl_frame_get_payload(f);
}

/* Fills buffers in order: full ones first, then the rest, then empties. */
int sl_frame_set_payload(sl_frame *f, uint32_t n) {
  if (f->nbuf == 1) return sl_buffer_set_payload(f->bufs[0], n);
  if (n > sl_frame_get_size(f)) return SL_ERANGE;
  uint32_t rem = n;
  for (uint32_t i = 0; i < f->nbuf; i++) {
    sl_buffer *b = f->bufs[i];
    uint32_t sz = sl_buffer_get_size(b);
    if (rem == 0) {
      sl_buffer_set_payload_empty(b);
    } else if (rem <= sz) {
      sl_buffer_set_payload(b, rem);
      rem = 0;
    } else {
      sl_buffer_set_payload_full(b);
      rem -= sz;
    }
  }
  return SL_OK;
}

int sl_frame_min_payload(sl_frame *f, uint32_t n) {
  if (n <= sl_frame_get_payload(f)) return SL_OK;
  return sl_frame_set_payload(f, n);
}

int sl_frame_adjust_payload(sl_frame *f, int64_t delta) {
  /* Beyond +-UINT32_MAX nothing fits, and the sum below cannot overflow. */
  if (delta < -(int64_t)UINT32_MAX || delta > (int64_t)UINT32_MAX)
    return SL_ERANGE;
  int64_t n = (int64_t)sl_frame_get_payload(f) + delta;
  if (n < 0 || n > (int64_t)sl_frame_get_size(f)) return SL_ERANGE;
  return sl_frame_set_payload(f, (uint32_t)n);
}

void sl_frame_set_payload_full(sl_frame *f) {
  for (uint32_t i = 0; i < f->nbuf; i++) sl_buffer_set_payload_full(f->bufs[i]);
}

void sl_frame_set_payload_empty(sl_frame *f) {
  for (uint32_t i = 0; i < f->nbuf; i++)
    sl_buffer_set_payload_empty(f->bufs[i]);
}

uint8_t sl_frame_get_channel(const sl_frame *f) { return f->channel; }
void sl_frame_set_channel(sl_frame *f, uint8_t channel) { f->channel = channel; }
uint8_t sl_frame_get_error(const sl_frame *f) { return f->error; }
void sl_frame_set_error(sl_frame *f, uint8_t error) { f->error = error; }
uint16_t sl_frame_get_flags(const sl_frame *f) { return f->flags; }
void sl_frame_set_flags(sl_frame *f, uint16_t flags) { f->flags = flags; }

uint8_t sl_frame_get_first_user(const sl_frame *f) {
  return (uint8_t)(f->flags & 0xff);
}

void sl_frame_set_first_user(sl_frame *f, uint8_t user) {
  f->flags = (uint16_t)(f->flags | user);
}

uint8_t sl_frame_get_last_user(const sl_frame *f) {
  return (uint8_t)((f->flags >> 8) & 0xff);
}

void sl_frame_set_last_user(sl_frame *f, uint8_t user) {
  f->flags = (uint16_t)(f->flags | ((user << 8) & 0xff00));
}

size_t sl_frame_buffer_count(const sl_frame *f) { return f->nbuf; }

sl_buffer *sl_frame_buffer(const sl_frame *f, size_t i) {
  return i < f->nbuf ? f->bufs[i] : NULL;
}

static int frame_grow(sl_frame *f, uint32_t need) {
  if (need <= f->cap) return SL_OK;
  uint32_t cap = f->cap * 2;
  while (cap < need) cap *= 2;
  sl_buffer **nb = malloc(cap * sizeof *nb);
  if (nb == NULL) return SL_ENOMEM;
  memcpy(nb, f->bufs, f->nbuf * sizeof *nb);
  if (f->bufs != f->inl) free(f->bufs);
  f->bufs = nb;
  f->cap = cap;
  return SL_OK;
}

int sl_frame_append_buffer(sl_frame *f, sl_buffer *b) {
  if (frame_grow(f, f->nbuf + 1) != SL_OK) {
    sl_pool_ret_buffer(b);
    return SL_ENOMEM;
  }
  f->bufs[f->nbuf++] = b;
  return SL_OK;
}

int sl_frame_append_frame(sl_frame *f, sl_frame *src) {
  if (src == f) return SL_EINVAL;
  if (frame_grow(f, f->nbuf + src->nbuf) != SL_OK) return SL_ENOMEM;
  memcpy(f->bufs + f->nbuf, src->bufs, src->nbuf * sizeof *f->bufs);
  f->nbuf += src->nbuf;
  src->nbuf = 0;
  return SL_OK;
}

size_t sl_frame_take_buffers(sl_frame *f, sl_buffer **out, size_t max) {
  size_t n = f->nbuf < max ? f->nbuf : max;
  memcpy(out, f->bufs, n * sizeof *out);
  memmove(f->bufs, f->bufs + n, (f->nbuf - n) * sizeof *f->bufs);
  f->nbuf -= (uint32_t)n;
  return n;
}

void sl_frame_clear(sl_frame *f) { sl_pool_clear_frame_(f); }

int sl_frame_write(sl_frame *f, const void *src, uint32_t offset, uint32_t n) {
  if ((uint64_t)offset + n > sl_frame_get_size(f)) return SL_ERANGE;
  if (f->nbuf == 1) {   /* the common case, without the iterator */
    sl_buffer *b = f->bufs[0];
    if (n > 0) memcpy(sl_buffer_begin(b) + offset, src, n);
    return sl_buffer_min_payload(b, offset + n);
  }
  sl_frame_iter it;
  sl_frame_iter_write(&it, f, offset);
  sl_frame_iter_put(&it, src, n);
  return sl_frame_min_payload(f, offset + n);
}

int sl_frame_read(const sl_frame *f, void *dst, uint32_t offset, uint32_t n) {
  if ((uint64_t)offset + n > sl_frame_get_payload(f)) return SL_ERANGE;
  if (f->nbuf == 1) {
    if (n > 0) memcpy(dst, sl_buffer_begin(f->bufs[0]) + offset, n);
    return SL_OK;
  }
  sl_frame_iter it;
  sl_frame_iter_read(&it, f, offset);
  sl_frame_iter_get(&it, dst, n);
  return SL_OK;
}

/* A three-state futex lock (free, held, held with waiters). */
void sl_frame_lock(sl_frame *f) {
  int c = 0;
  if (!atomic_compare_exchange_strong_explicit(&f->lock, &c, 1,
                                               memory_order_acquire,
                                               memory_order_relaxed)) {
    if (c != 2) c = atomic_exchange_explicit(&f->lock, 2, memory_order_acquire);
    while (c != 0) {
      sl_futex_wait(&f->lock, 2, -1);
      c = atomic_exchange_explicit(&f->lock, 2, memory_order_acquire);
    }
  }
  atomic_store_explicit(&f->owner, (uintptr_t)&thread_token,
                        memory_order_relaxed);
}

void sl_frame_unlock(sl_frame *f) {
  atomic_store_explicit(&f->owner, 0, memory_order_relaxed);
  if (atomic_fetch_sub_explicit(&f->lock, 1, memory_order_release) != 1) {
    atomic_store_explicit(&f->lock, 0, memory_order_release);
    sl_futex_wake(&f->lock, 1);
  }
}

int sl_frame_lock_unless_sole(sl_frame *f) {
  if (sl_frame_is_sole(f)) return 0;
  sl_frame_lock(f);
  return 1;
}

int sl_frame_locked_by_me(const sl_frame *f) {
  return atomic_load_explicit(&f->owner, memory_order_relaxed) ==
         (uintptr_t)&thread_token;
}

/* ---- iterators ---- */

static uint32_t iter_seg(const sl_frame_iter *it, size_t i) {
  const sl_buffer *b = it->frame->bufs[i];
  return it->write ? sl_buffer_get_size(b) : sl_buffer_get_payload(b);
}

/* Places the iterator at logical position pos (or the end). */
static void iter_seek(sl_frame_iter *it, uint32_t pos) {
  const sl_frame *f = it->frame;
  it->pos = pos;
  if (pos >= it->end) {
    it->buf = f->nbuf;
    it->off = 0;
    it->pos = it->end;
    return;
  }
  size_t i = 0;
  uint32_t rem = pos;
  while (i < f->nbuf) {
    uint32_t seg = iter_seg(it, i);
    if (rem < seg) break;
    rem -= seg;
    i++;
  }
  it->buf = i;
  it->off = rem;
}

static void iter_init(sl_frame_iter *it, const sl_frame *f, uint32_t pos,
                      int write) {
  it->frame = f;
  it->write = write;
  it->end = write ? sl_frame_get_size(f) : sl_frame_get_payload(f);
  iter_seek(it, pos);
}

void sl_frame_iter_read(sl_frame_iter *it, const sl_frame *f, uint32_t pos) {
  iter_init(it, f, pos, 0);
}

void sl_frame_iter_write(sl_frame_iter *it, const sl_frame *f, uint32_t pos) {
  iter_init(it, f, pos, 1);
}

int sl_frame_iter_at_end(const sl_frame_iter *it) {
  return it->pos >= it->end;
}

uint8_t *sl_frame_iter_ptr(const sl_frame_iter *it) {
  if (sl_frame_iter_at_end(it)) return NULL;
  return sl_buffer_begin(it->frame->bufs[it->buf]) + it->off;
}

uint32_t sl_frame_iter_rem_buffer(const sl_frame_iter *it) {
  if (sl_frame_iter_at_end(it)) return 0;
  return iter_seg(it, it->buf) - it->off;
}

/* Walks forward from the current buffer (a seek from the first one would
** make a pass over a frame of many buffers quadratic). */
void sl_frame_iter_advance(sl_frame_iter *it, uint32_t n) {
  if (sl_frame_iter_at_end(it)) return;
  uint64_t to = (uint64_t)it->pos + n;
  if (to >= it->end) {
    iter_seek(it, it->end);
    return;
  }
  uint32_t rem = n, left = iter_seg(it, it->buf) - it->off;
  while (rem >= left) {    /* past this segment: data remains further on */
    rem -= left;
    it->buf++;
    it->off = 0;
    left = iter_seg(it, it->buf);
  }
  it->off += rem;
  it->pos = (uint32_t)to;
}

uint32_t sl_frame_iter_put(sl_frame_iter *it, const void *src, uint32_t n) {
  const uint8_t *s = src;
  uint32_t done = 0;
  while (done < n && !sl_frame_iter_at_end(it)) {
    uint32_t k = sl_frame_iter_rem_buffer(it);
    if (k > n - done) k = n - done;
    memcpy(sl_frame_iter_ptr(it), s + done, k);
    sl_frame_iter_advance(it, k);
    done += k;
  }
  return done;
}

uint32_t sl_frame_iter_get(sl_frame_iter *it, void *dst, uint32_t n) {
  uint8_t *d = dst;
  uint32_t done = 0;
  while (done < n && !sl_frame_iter_at_end(it)) {
    uint32_t k = sl_frame_iter_rem_buffer(it);
    if (k > n - done) k = n - done;
    memcpy(d + done, sl_frame_iter_ptr(it), k);
    sl_frame_iter_advance(it, k);
    done += k;
  }
  return done;
}

uint32_t sl_frame_iter_copy(sl_frame_iter *src, uint32_t n, sl_frame_iter *dst) {
  uint32_t done = 0;
  while (done < n && !sl_frame_iter_at_end(src) && !sl_frame_iter_at_end(dst)) {
    uint32_t k = sl_frame_iter_rem_buffer(src);
    uint32_t kd = sl_frame_iter_rem_buffer(dst);
    if (kd < k) k = kd;
    if (k > n - done) k = n - done;
    memcpy(sl_frame_iter_ptr(dst), sl_frame_iter_ptr(src), k);
    sl_frame_iter_advance(src, k);
    sl_frame_iter_advance(dst, k);
    done += k;
  }
  return done;
}
