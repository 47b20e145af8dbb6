/*
** The frame allocator. A pool-made buffer is one malloc block: the
** sl_buffer header followed by its data, so a cached block comes back
** with its header and costs no second allocation.
**
** Lifetime: the pool is freed when its references are gone *and* its last
** live buffer has come back, whichever happens last.
**
** Recycling is the pool's alone: a frame whose last reference is gone
** comes here (recycle.h) and is kept whole, or its buffers are returned
** and it is freed; nothing goes back to frame.c.
*/
#include "streamlua/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "recycle.h"
#include "streamlua/prefetch.h"
#include "streamlua/status.h"

struct sl_pool {
  pthread_mutex_t mutex;
  atomic_int refs;
  int unreferenced;           /* refs reached 0; free with the last buffer */
  uint32_t fixed_size;        /* 0: variable mode */
  uint32_t pool_size;         /* most blocks kept for reuse */
  uint32_t cached;            /* blocks in the free list */
  sl_buffer *free_list;
  /* Whole frames kept (each with its block), a ring used oldest first: a
  ** frame just released by a consumer on another core is the last one
  ** handed out again, so its cache lines have time to settle. */
  sl_frame **frames;
  uint32_t frames_cap, frames_head, cached_frames;
  uint32_t max_frame;         /* largest frame one request may ask for */
  uint32_t max_buffers;       /* most blocks in one fixed-mode frame */
  uint32_t alloc_count;       /* live buffers */
  uint32_t alloc_bytes;
  uint32_t alloc_meta;        /* 24-bit rolling sequence */
};

#define HEADER_SIZE ((sizeof(sl_buffer) + 15u) & ~(size_t)15u)

static void frame_free(sl_frame *f) {
  if (f->bufs != f->inl) free(f->bufs);
  free(f);
}

/* A kept frame and its block (not counted as live: it is cached). */
static void destroy_cached(sl_frame *f) {
  for (uint32_t i = 0; i < f->nbuf; i++) free(f->bufs[i]);
  frame_free(f);
}

/* A kept frame handed out again: refs 1, metadata 0, its buffer kept. */
static void frame_reset(sl_frame *f) {
  atomic_store_explicit(&f->refs, 1, memory_order_relaxed);
  f->flags = 0;
  f->error = 0;
  f->channel = 0;
}

/* The pool of the frame's buffer, if it has exactly one from a pool. */
static sl_pool *single_pool(const sl_frame *f) {
  return f->nbuf == 1 && f->bufs[0]->release == NULL ? f->bufs[0]->pool : NULL;
}

sl_pool *sl_pool_new(void) {
  sl_pool *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  pthread_mutex_init(&p->mutex, NULL);
  atomic_init(&p->refs, 1);
  p->max_frame = SL_POOL_MAX_FRAME_DEFAULT;
  p->max_buffers = SL_POOL_MAX_BUFFERS_DEFAULT;
  return p;
}

sl_pool *sl_pool_ref(sl_pool *p) {
  atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
  return p;
}

static void free_list_drop_nolock_(sl_pool *p) {
  while (p->free_list != NULL) {
    sl_buffer *b = p->free_list;
    p->free_list = b->next;
    free(b);
  }
  p->cached = 0;
  for (uint32_t i = 0; i < p->cached_frames; i++)
    destroy_cached(p->frames[(p->frames_head + i) % p->frames_cap]);
  p->frames_head = 0;
  p->cached_frames = 0;
}

static void pool_destroy(sl_pool *p) {
  free_list_drop_nolock_(p);
  free(p->frames);
  pthread_mutex_destroy(&p->mutex);
  free(p);
}

void sl_pool_unref(sl_pool *p) {
  if (p == NULL) return;
  if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
    return;
  pthread_mutex_lock(&p->mutex);
  p->unreferenced = 1;
  int last = p->alloc_count == 0;
  pthread_mutex_unlock(&p->mutex);
  if (last) pool_destroy(p);
}

static void buffer_reset(sl_buffer *b, sl_pool *p, uint32_t alloc,
                         uint32_t raw) {
  b->data = (uint8_t *)b + HEADER_SIZE;
  b->pool = p;
  b->next = NULL;
  b->release = NULL;
  b->release_arg = NULL;
  b->alloc_size = alloc;
  b->raw_size = raw;
  b->head_room = 0;
  b->tail_room = 0;
  b->payload = 0;
}

static void count_nolock_(sl_pool *p, sl_buffer *b) {
  b->meta = p->alloc_meta;
  p->alloc_meta = (p->alloc_meta + 1) & 0xffffffu;
  p->alloc_bytes += b->alloc_size;
  p->alloc_count += 1;
}

/* One block for a request of `size` bytes, from the cache when it can. */
static sl_buffer *alloc_nolock_(sl_pool *p, uint32_t size, uint32_t *raw) {
  uint32_t alloc = size, rs = size;
  if (p->fixed_size > 0) {
    alloc = p->fixed_size;
    rs = size < p->fixed_size ? size : p->fixed_size;
  }
  sl_buffer *b = p->free_list;
  if (b != NULL) {
    p->free_list = b->next;
    p->cached--;
  } else {
    b = malloc(HEADER_SIZE + (size_t)alloc);
    if (b == NULL) return NULL;
  }
  buffer_reset(b, p, alloc, rs);
  count_nolock_(p, b);
  *raw = rs;
  return b;
}

sl_buffer *sl_pool_alloc_buffer(sl_pool *p, uint32_t size, uint32_t *raw) {
  pthread_mutex_lock(&p->mutex);
  sl_buffer *b = alloc_nolock_(p, size, raw);
  pthread_mutex_unlock(&p->mutex);
  return b;
}

/* Why this thread's last request came back NULL, and the limit it hit. */
static _Thread_local int req_status;
static _Thread_local uint64_t req_limit;

static uint64_t limit_nolock_(const sl_pool *p) {
  uint64_t lim = p->max_frame;
  if (p->fixed_size > 0 && (uint64_t)p->fixed_size * p->max_buffers < lim)
    lim = (uint64_t)p->fixed_size * p->max_buffers;
  return lim;
}

uint64_t sl_pool_frame_limit(sl_pool *p) {
  pthread_mutex_lock(&p->mutex);
  uint64_t lim = limit_nolock_(p);
  pthread_mutex_unlock(&p->mutex);
  return lim;
}

int sl_pool_req_status(uint64_t *limit) {
  int rc = req_status;
  if (limit != NULL) *limit = req_limit;
  req_status = SL_OK;
  return rc;
}

/* A kept whole frame for a request that fits one fixed-size block; *lim
** gets the pool's limit, read under the same lock. */
static sl_frame *pop_frame(sl_pool *p, uint32_t size, uint64_t *lim) {
  sl_frame *f = NULL;
  pthread_mutex_lock(&p->mutex);
  *lim = limit_nolock_(p);
  if (size <= *lim && p->cached_frames > 0 && size > 0 && size <= p->fixed_size) {
    f = p->frames[p->frames_head];
    p->frames_head = (p->frames_head + 1) % p->frames_cap;
    p->cached_frames--;
    /* Frames come back from other cores: start taking the next ones (frame
    ** four ahead, buffer header two ahead) before they are asked for. */
    if (p->cached_frames > 3) {
      sl_frame *n1 = p->frames[(p->frames_head + 1) % p->frames_cap];
      sl_frame *n2 = p->frames[(p->frames_head + 3) % p->frames_cap];
      sl_prefetch_write(n2);
      sl_prefetch_write(n1->bufs[0]);
    }
    sl_buffer *b = f->bufs[0];
    buffer_reset(b, p, p->fixed_size, size);
    count_nolock_(p, b);
  }
  pthread_mutex_unlock(&p->mutex);
  if (f != NULL) frame_reset(f);
  return f;
}

/* Keeps dead frame f (lock held) if it fits the cache. */
static int keep_nolock_(sl_pool *p, sl_frame *f) {
  sl_buffer *b = f->bufs[0];
  if (p->fixed_size == 0 || b->alloc_size != p->fixed_size ||
      p->cached + p->cached_frames >= p->pool_size || p->unreferenced)
    return 0;
  if (p->cached_frames == p->frames_cap) {   /* grow the ring to pool_size */
    uint32_t cap = p->pool_size;
    sl_frame **r = malloc(cap * sizeof *r);
    if (r == NULL) return 0;
    for (uint32_t i = 0; i < p->cached_frames; i++)
      r[i] = p->frames[(p->frames_head + i) % p->frames_cap];
    free(p->frames);
    p->frames = r;
    p->frames_cap = cap;
    p->frames_head = 0;
  }
  p->alloc_bytes -= b->alloc_size;
  p->alloc_count -= 1;
  p->frames[(p->frames_head + p->cached_frames) % p->frames_cap] = f;
  p->cached_frames++;
  return 1;
}

void sl_pool_clear_frame_(sl_frame *f) {
  for (uint32_t i = 0; i < f->nbuf; i++) sl_pool_ret_buffer(f->bufs[i]);
  f->nbuf = 0;
}

/* A dead frame the pool does not keep: its buffers back, then freed. */
static void discard(sl_frame *f) {
  sl_pool_clear_frame_(f);
  frame_free(f);
}

void sl_pool_release_frame_(sl_frame *f) {
  sl_pool *p = single_pool(f);
  if (p != NULL) {
    pthread_mutex_lock(&p->mutex);
    int kept = keep_nolock_(p, f);
    pthread_mutex_unlock(&p->mutex);
    if (kept) return;
  }
  discard(f);
}

/* Frames fs[0..n) of pool p: kept under one lock; the rest discarded. */
static void release_run(sl_pool *p, sl_frame **fs, size_t n) {
  size_t left = 0;
  pthread_mutex_lock(&p->mutex);
  for (size_t i = 0; i < n; i++)
    if (!keep_nolock_(p, fs[i])) fs[left++] = fs[i];
  pthread_mutex_unlock(&p->mutex);
  for (size_t i = 0; i < left; i++) discard(fs[i]);
}

void sl_pool_release_frames_(sl_frame **fs, size_t n) {
  size_t i = 0;
  while (i < n) {
    sl_pool *p = single_pool(fs[i]);
    if (p == NULL) {
      discard(fs[i++]);
      continue;
    }
    size_t j = i + 1;
    while (j < n && single_pool(fs[j]) == p) j++;
    release_run(p, fs + i, j - i);
    i = j;
  }
}

/*
** A request is checked against the limits before anything is allocated:
** a fixed-mode pool would otherwise build a frame of one block per
** fixed_size bytes, however many that is.
*/
sl_frame *sl_pool_req_frame(sl_pool *p, uint32_t size) {
  uint64_t lim;
  sl_frame *f = pop_frame(p, size, &lim);
  if (f != NULL) return f;
  if (size > lim) {
    req_status = SL_EINVAL;
    req_limit = lim;
    return NULL;
  }
  f = sl_frame_new();
  if (f == NULL) goto out_nomem;
  if (size == 0) return f;
  uint64_t total = 0;
  while (total < size) {      /* variable mode: one pass */
    uint32_t raw;
    sl_buffer *b = sl_pool_alloc_buffer(p, size, &raw);
    if (b == NULL) goto out_nomem;
    if (sl_frame_append_buffer(f, b) != SL_OK) {
      sl_pool_ret_buffer(b);
      goto out_nomem;
    }
    total += raw;
  }
  return f;
out_nomem:
  sl_frame_unref(f);
  req_status = SL_ENOMEM;
  req_limit = lim;
  return NULL;
}

sl_buffer *sl_pool_create_buffer(sl_pool *p, void *data, uint32_t meta,
                                 uint32_t size, uint32_t alloc,
                                 void (*release)(sl_buffer *b), void *arg) {
  sl_buffer *b = malloc(sizeof *b);
  if (b == NULL) return NULL;
  buffer_reset(b, p, alloc, size);
  b->data = data;              /* the caller's memory, given back by release */
  b->release = release;
  b->release_arg = arg;
  pthread_mutex_lock(&p->mutex);
  p->alloc_bytes += alloc;
  p->alloc_count += 1;
  pthread_mutex_unlock(&p->mutex);
  b->meta = meta;
  return b;
}

void sl_pool_ret_buffer(sl_buffer *b) {
  sl_pool *p = b->pool;
  sl_buffer *to_free = NULL;
  pthread_mutex_lock(&p->mutex);
  p->alloc_bytes -= b->alloc_size;
  p->alloc_count -= 1;
  /* Only fixed mode caches: in variable mode a zero-byte block would
  ** match fixed_size 0 and later be handed out for any request size. */
  if (b->release == NULL && p->fixed_size > 0 &&
      b->alloc_size == p->fixed_size &&
      p->cached + p->cached_frames < p->pool_size && !p->unreferenced) {
    b->next = p->free_list;
    p->free_list = b;
    p->cached++;
  } else {
    to_free = b;
  }
  int last = p->unreferenced && p->alloc_count == 0;
  pthread_mutex_unlock(&p->mutex);
  if (to_free != NULL) {
    if (to_free->release != NULL) {
      to_free->release(to_free);
      free(to_free);
    } else {
      free(to_free);
    }
  }
  if (last) pool_destroy(p);
}

void sl_pool_set_fixed_size(sl_pool *p, uint32_t size) {
  pthread_mutex_lock(&p->mutex);
  if (size != p->fixed_size) free_list_drop_nolock_(p);
  p->fixed_size = size;
  pthread_mutex_unlock(&p->mutex);
}

void sl_pool_set_pool_size(sl_pool *p, uint32_t count) {
  pthread_mutex_lock(&p->mutex);
  p->pool_size = count;
  while (p->cached_frames > 0 && p->cached + p->cached_frames > count) {
    sl_frame *f = p->frames[p->frames_head];
    p->frames_head = (p->frames_head + 1) % p->frames_cap;
    p->cached_frames--;
    destroy_cached(f);
  }
  while (p->cached > count) {
    sl_buffer *b = p->free_list;
    p->free_list = b->next;
    p->cached--;
    free(b);
  }
  pthread_mutex_unlock(&p->mutex);
}

void sl_pool_set_max_frame_size(sl_pool *p, uint32_t bytes) {
  pthread_mutex_lock(&p->mutex);
  p->max_frame = bytes;
  pthread_mutex_unlock(&p->mutex);
}

void sl_pool_set_max_buffers(sl_pool *p, uint32_t count) {
  pthread_mutex_lock(&p->mutex);
  p->max_buffers = count;
  pthread_mutex_unlock(&p->mutex);
}

/* Readers of one word each: the lock keeps TSan and the memory model happy. */
static uint32_t read_field(sl_pool *p, const uint32_t *field) {
  pthread_mutex_lock(&p->mutex);
  uint32_t v = *field;
  pthread_mutex_unlock(&p->mutex);
  return v;
}

uint32_t sl_pool_get_fixed_size(sl_pool *p) { return read_field(p, &p->fixed_size); }
uint32_t sl_pool_get_pool_size(sl_pool *p) { return read_field(p, &p->pool_size); }
uint32_t sl_pool_get_max_frame_size(sl_pool *p) { return read_field(p, &p->max_frame); }
uint32_t sl_pool_get_max_buffers(sl_pool *p) { return read_field(p, &p->max_buffers); }
uint32_t sl_pool_get_alloc_count(sl_pool *p) { return read_field(p, &p->alloc_count); }
uint32_t sl_pool_get_alloc_bytes(sl_pool *p) { return read_field(p, &p->alloc_bytes); }
uint32_t sl_pool_get_cached_count(sl_pool *p) {
  pthread_mutex_lock(&p->mutex);
  uint32_t n = p->cached + p->cached_frames;
  pthread_mutex_unlock(&p->mutex);
  return n;
}
