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
**
** Block sizes: the data of a block asked for n bytes is block_bytes(n)
** long (n rounded up to a size class), in either mode, and its alloc_size
** stays n. So a kept block's capacity follows from its alloc_size, and a
** kept frame serves any later request of the same class.
**
** Idle release: every pool is on one list; a single sweeper thread, which
** runs only while some pool keeps something, wakes every idle period and
** gives back the cache of each pool not used since its previous look.
** The hot path only sets the pool's `used` word under the lock it holds.
*/
#include "streamlua/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "recycle.h"
#include "streamlua/prefetch.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"
#include "streamlua/worker.h"

/* Whole frames kept for one block size, used oldest first: a frame just
** released by a consumer on another core is the last one handed out
** again, so its cache lines have time to settle. */
typedef struct ring {
  uint32_t block;             /* data bytes of each block; any when n == 0 */
  uint32_t cap, head, n;
  sl_frame **slot;
} ring;

#define RINGS 4               /* block sizes kept at once */

struct sl_pool {
  pthread_mutex_t mutex;
  atomic_int refs;
  int unreferenced;           /* refs reached 0; free with the last buffer */
  int used;                   /* asked or given a frame since the last sweep */
  uint32_t fixed_size;        /* 0: variable mode */
  uint32_t pool_size;         /* most blocks kept for reuse; 0: default */
  uint32_t cache_bytes;       /* most data bytes kept for reuse */
  uint32_t cached;            /* blocks in the free list */
  uint32_t cached_frames;     /* frames in the rings */
  uint64_t kept_bytes;        /* data bytes of both */
  sl_buffer *free_list;
  ring rings[RINGS];
  uint32_t max_frame;         /* largest frame one request may ask for */
  uint32_t max_buffers;       /* most blocks in one fixed-mode frame */
  uint32_t alloc_count;       /* live buffers */
  uint32_t alloc_bytes;
  uint32_t alloc_meta;        /* 24-bit rolling sequence */
  sl_pool *reg_prev, *reg_next;   /* the list of pools (reg_mu) */
};

#define HEADER_SIZE ((sizeof(sl_buffer) + 15u) & ~(size_t)15u)

/* Largest block that is kept; larger ones are allocated exactly. */
#define CLASS_MAX (64u << 20)

/* The data bytes of a block asked for n: 16-byte steps up to 128, then
** eight steps per power of two (at most 12.5 % more than n). */
static uint32_t block_bytes(uint32_t n) {
  if (n <= 128) return (n + 15u) & ~15u;
  if (n > CLASS_MAX) return n;
  unsigned k = 31u - (unsigned)__builtin_clz(n - 1u);   /* 2^k < n <= 2^(k+1) */
  uint32_t step = 1u << (k - 3u);
  return (n + step - 1u) & ~(step - 1u);
}

static int keepable(uint32_t alloc) { return alloc > 0 && alloc <= CLASS_MAX; }

/* ------------------------------------------------------------ the list */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cv;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static sl_pool *reg_head;
static int sweeper_running;          /* reg_mu */
static atomic_int sweeper_on;        /* read by keepers without reg_mu */
static atomic_uint idle_ms = SL_POOL_IDLE_MS_DEFAULT;

static void reg_init(void) { sl_cond_init(&reg_cv); }

static void reg_add(sl_pool *p) {
  pthread_once(&reg_once, reg_init);
  pthread_mutex_lock(&reg_mu);
  p->reg_next = reg_head;
  if (reg_head != NULL) reg_head->reg_prev = p;
  reg_head = p;
  pthread_mutex_unlock(&reg_mu);
}

static void reg_remove(sl_pool *p) {
  pthread_mutex_lock(&reg_mu);
  if (p->reg_prev != NULL) p->reg_prev->reg_next = p->reg_next;
  else reg_head = p->reg_next;
  if (p->reg_next != NULL) p->reg_next->reg_prev = p->reg_prev;
  pthread_mutex_unlock(&reg_mu);
}

/* ------------------------------------------------------------ the cache */

static void frame_free(sl_frame *f) {
  if (f->bufs != f->inl) free(f->bufs);
  free(f);
}

/* A kept frame and its block (not counted as live: it is cached). */
static void destroy_cached(sl_frame *f) {
  for (uint32_t i = 0; i < f->nbuf; i++) free(f->bufs[i]);
  frame_free(f);
}

/* What a pool kept, taken out under its lock and freed after. */
typedef struct taken {
  ring rings[RINGS];
  sl_buffer *free_list;
} taken;

static void take_all_nolock_(sl_pool *p, taken *t) {
  memcpy(t->rings, p->rings, sizeof t->rings);
  memset(p->rings, 0, sizeof p->rings);
  t->free_list = p->free_list;
  p->free_list = NULL;
  p->cached = 0;
  p->cached_frames = 0;
  p->kept_bytes = 0;
}

static void free_taken(taken *t) {
  for (int i = 0; i < RINGS; i++) {
    ring *r = &t->rings[i];
    for (uint32_t k = 0; k < r->n; k++)
      destroy_cached(r->slot[(r->head + k) % r->cap]);
    free(r->slot);
  }
  while (t->free_list != NULL) {
    sl_buffer *b = t->free_list;
    t->free_list = b->next;
    free(b);
  }
}

static int has_kept_nolock_(const sl_pool *p) {
  return p->cached + p->cached_frames > 0;
}

/* The oldest frame of ring r, out of the cache. */
static sl_frame *ring_pop_nolock_(sl_pool *p, ring *r) {
  sl_frame *f = r->slot[r->head];
  r->head = (r->head + 1) % r->cap;
  r->n--;
  p->cached_frames--;
  p->kept_bytes -= r->block;
  return f;
}

/* Frees kept frames, then kept blocks, until at most `count` remain and
** at most `bytes` are held (lock held: bounds change seldom). */
static void trim_nolock_(sl_pool *p, uint32_t count, uint64_t bytes) {
  for (int i = 0; i < RINGS; i++) {
    ring *r = &p->rings[i];
    while (r->n > 0 && (p->cached + p->cached_frames > count || p->kept_bytes > bytes))
      destroy_cached(ring_pop_nolock_(p, r));
  }
  while (p->free_list != NULL && (p->cached > count || p->kept_bytes > bytes)) {
    sl_buffer *b = p->free_list;
    p->free_list = b->next;
    p->cached--;
    p->kept_bytes -= block_bytes(b->alloc_size);
    free(b);
  }
}

/* --------------------------------------------------------- the sweeper */

/* One look at every pool: the cache of a pool not used since the last
** look is given back. Non-zero while some pool keeps something. reg_mu
** held. */
static int sweep_nolock_(void) {
  int any = 0;
  for (sl_pool *p = reg_head; p != NULL; p = p->reg_next) {
    taken t;
    int idle = 0;
    pthread_mutex_lock(&p->mutex);
    if (!p->used && has_kept_nolock_(p)) {
      take_all_nolock_(p, &t);
      idle = 1;
    }
    p->used = 0;
    any |= has_kept_nolock_(p);
    pthread_mutex_unlock(&p->mutex);
    if (idle) free_taken(&t);
  }
  return any;
}

/*
** Ends once a look finds nothing kept anywhere. sweeper_on is cleared
** before each look: a pool that starts keeping after its turn in the look
** sees it cleared and calls sweeper_ensure, which waits for reg_mu and
** then finds this thread still running (the look found something) or
** gone (and starts another).
*/
static int sweeper_main(void *arg) {
  pthread_mutex_lock(&reg_mu);
  for (;;) {
    unsigned ms = atomic_load(&idle_ms);
    if (ms == 0) {
      pthread_cond_wait(&reg_cv, &reg_mu);
      continue;
    }
    struct timespec deadline;
    sl_deadline_after(&deadline, (int64_t)ms * 1000);
    pthread_cond_timedwait(&reg_cv, &reg_mu, &deadline);
    if (atomic_load(&idle_ms) == 0) continue;
    atomic_store(&sweeper_on, 0);
    if (!sweep_nolock_()) break;
    atomic_store(&sweeper_on, 1);
  }
  sweeper_running = 0;
  pthread_mutex_unlock(&reg_mu);
  free(arg);
  return SL_WORKER_FREED;
}

/* Starts the sweeper unless it runs. Called without any pool's lock. */
static void sweeper_ensure(void) {
  pthread_mutex_lock(&reg_mu);
  if (!sweeper_running) {
    sl_worker *w = calloc(1, sizeof *w);
    if (w != NULL && sl_worker_start(w, "sl-pool-idle", 256 * 1024, sweeper_main,
                                     NULL, w) == 0) {
      sl_worker_detach(w);
      sweeper_running = 1;
      atomic_store(&sweeper_on, 1);
    } else {
      free(w);                 /* the next pool to keep tries again */
    }
  }
  pthread_mutex_unlock(&reg_mu);
}

void sl_pool_set_idle_ms(uint32_t ms) {
  pthread_once(&reg_once, reg_init);
  pthread_mutex_lock(&reg_mu);
  atomic_store(&idle_ms, ms);
  pthread_cond_broadcast(&reg_cv);
  pthread_mutex_unlock(&reg_mu);
}

uint32_t sl_pool_get_idle_ms(void) { return atomic_load(&idle_ms); }

/* ------------------------------------------------------------ the pool */

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
  p->cache_bytes = SL_POOL_CACHE_BYTES_DEFAULT;
  reg_add(p);
  return p;
}

sl_pool *sl_pool_ref(sl_pool *p) {
  atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
  return p;
}

static void pool_destroy(sl_pool *p) {
  reg_remove(p);
  taken t;
  take_all_nolock_(p, &t);
  free_taken(&t);
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
  sl_buffer *b = p->free_list;   /* fixed mode only: blocks of fixed_size */
  if (b != NULL) {
    p->free_list = b->next;
    p->cached--;
    p->kept_bytes -= block_bytes(alloc);
  } else {
    b = malloc(HEADER_SIZE + (size_t)block_bytes(alloc));
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

/* The ring keeping blocks of `block` bytes, if it keeps any. */
static ring *ring_with(sl_pool *p, uint32_t block) {
  for (int i = 0; i < RINGS; i++)
    if (p->rings[i].n > 0 && p->rings[i].block == block) return &p->rings[i];
  return NULL;
}

/* Frames come back from other cores: start taking the next ones (frame
** four ahead, buffer header two ahead) before they are asked for. */
static void prefetch_next(const ring *r) {
  if (r->n > 3) {
    sl_frame *n1 = r->slot[(r->head + 1) % r->cap];
    sl_frame *n2 = r->slot[(r->head + 3) % r->cap];
    sl_prefetch_write(n2);
    sl_prefetch_write(n1->bufs[0]);
  }
}

/* A kept whole frame for a request that fits one block; *lim gets the
** pool's limit, read under the same lock. */
static sl_frame *pop_frame(sl_pool *p, uint32_t size, uint64_t *lim) {
  sl_frame *f = NULL;
  pthread_mutex_lock(&p->mutex);
  p->used = 1;
  *lim = limit_nolock_(p);
  uint32_t fixed = p->fixed_size;
  if (size > 0 && size <= *lim && p->cached_frames > 0 &&
      (fixed == 0 || size <= fixed)) {
    uint32_t alloc = fixed > 0 ? fixed : size;
    ring *r = ring_with(p, block_bytes(alloc));
    if (r != NULL) {
      f = ring_pop_nolock_(p, r);
      prefetch_next(r);
      sl_buffer *b = f->bufs[0];
      buffer_reset(b, p, alloc, size);
      count_nolock_(p, b);
    }
  }
  pthread_mutex_unlock(&p->mutex);
  if (f != NULL) frame_reset(f);
  return f;
}

/* Room for one more kept block of `block` bytes (lock held). */
static int room_nolock_(const sl_pool *p, uint32_t block) {
  uint32_t most = p->pool_size > 0 ? p->pool_size : SL_POOL_CACHE_COUNT_DEFAULT;
  return !p->unreferenced && p->cached + p->cached_frames < most &&
         p->kept_bytes + block <= p->cache_bytes;
}

/* The ring for blocks of `block` bytes: the one keeping them, or an empty
** one; grown if full. NULL if none is free or memory runs out. */
static ring *ring_for(sl_pool *p, uint32_t block) {
  ring *r = ring_with(p, block), *empty = NULL;
  for (int i = 0; r == NULL && i < RINGS; i++)
    if (p->rings[i].n == 0 && (empty == NULL || p->rings[i].block == block))
      empty = &p->rings[i];
  if (r == NULL) r = empty;
  if (r == NULL) return NULL;
  if (r->n == r->cap) {
    uint32_t cap = r->cap > 0 ? 2 * r->cap : 8;
    sl_frame **s = malloc(cap * sizeof *s);
    if (s == NULL) return NULL;
    for (uint32_t i = 0; i < r->n; i++) s[i] = r->slot[(r->head + i) % r->cap];
    free(r->slot);
    r->slot = s;
    r->cap = cap;
    r->head = 0;
  }
  r->block = block;
  return r;
}

/* Keeps dead frame f (lock held) if it fits the cache; *first is set when
** the pool kept nothing before. */
static int keep_nolock_(sl_pool *p, sl_frame *f, int *first) {
  sl_buffer *b = f->bufs[0];
  p->used = 1;
  if (!keepable(b->alloc_size) || (p->fixed_size > 0 && b->alloc_size != p->fixed_size))
    return 0;
  uint32_t block = block_bytes(b->alloc_size);
  if (!room_nolock_(p, block)) return 0;
  ring *r = ring_for(p, block);
  if (r == NULL) return 0;
  if (!has_kept_nolock_(p)) *first = 1;
  p->alloc_bytes -= b->alloc_size;
  p->alloc_count -= 1;
  r->slot[(r->head + r->n) % r->cap] = f;
  r->n++;
  p->cached_frames++;
  p->kept_bytes += block;
  return 1;
}

/* After a pool began to keep: the sweeper must be running to give it back
** when idle. */
static void kept_first(void) {
  if (!atomic_load_explicit(&sweeper_on, memory_order_seq_cst)) sweeper_ensure();
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
    int first = 0;
    pthread_mutex_lock(&p->mutex);
    int kept = keep_nolock_(p, f, &first);
    pthread_mutex_unlock(&p->mutex);
    if (first) kept_first();
    if (kept) return;
  }
  discard(f);
}

/* Frames fs[0..n) of pool p: kept under one lock; the rest discarded. */
static void release_run(sl_pool *p, sl_frame **fs, size_t n) {
  size_t left = 0;
  int first = 0;
  pthread_mutex_lock(&p->mutex);
  for (size_t i = 0; i < n; i++)
    if (!keep_nolock_(p, fs[i], &first)) fs[left++] = fs[i];
  pthread_mutex_unlock(&p->mutex);
  if (first) kept_first();
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

/* A returned block joins the free list in fixed mode with a pool size
** (Rogue's cache of blocks); in variable mode a zero-byte block would
** otherwise be handed out later for any request size. */
static int keep_block_nolock_(sl_pool *p, const sl_buffer *b) {
  return b->release == NULL && p->fixed_size > 0 && p->pool_size > 0 &&
         b->alloc_size == p->fixed_size && keepable(b->alloc_size) &&
         room_nolock_(p, block_bytes(b->alloc_size));
}

void sl_pool_ret_buffer(sl_buffer *b) {
  sl_pool *p = b->pool;
  sl_buffer *to_free = NULL;
  int first = 0;
  pthread_mutex_lock(&p->mutex);
  p->alloc_bytes -= b->alloc_size;
  p->alloc_count -= 1;
  if (keep_block_nolock_(p, b)) {
    first = !has_kept_nolock_(p);
    b->next = p->free_list;
    p->free_list = b;
    p->cached++;
    p->kept_bytes += block_bytes(b->alloc_size);
  } else {
    to_free = b;
  }
  int last = p->unreferenced && p->alloc_count == 0;
  pthread_mutex_unlock(&p->mutex);
  if (first) kept_first();
  if (to_free != NULL) {
    if (to_free->release != NULL) to_free->release(to_free);
    free(to_free);
  }
  if (last) pool_destroy(p);
}

void sl_pool_set_fixed_size(sl_pool *p, uint32_t size) {
  taken t;
  int drop = 0;
  pthread_mutex_lock(&p->mutex);
  if (size != p->fixed_size) {
    take_all_nolock_(p, &t);
    drop = 1;
  }
  p->fixed_size = size;
  pthread_mutex_unlock(&p->mutex);
  if (drop) free_taken(&t);
}

/* Sets a bound (under the lock) and gives back what is now over it. */
static void set_bound(sl_pool *p, uint32_t *field, uint32_t value) {
  pthread_mutex_lock(&p->mutex);
  *field = value;
  uint32_t most = p->pool_size > 0 ? p->pool_size : SL_POOL_CACHE_COUNT_DEFAULT;
  trim_nolock_(p, most, p->cache_bytes);
  pthread_mutex_unlock(&p->mutex);
}

void sl_pool_set_pool_size(sl_pool *p, uint32_t count) {
  set_bound(p, &p->pool_size, count);
}

void sl_pool_set_cache_bytes(sl_pool *p, uint32_t bytes) {
  set_bound(p, &p->cache_bytes, bytes);
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
uint32_t sl_pool_get_cache_bytes(sl_pool *p) { return read_field(p, &p->cache_bytes); }
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

uint64_t sl_pool_get_cached_bytes(sl_pool *p) {
  pthread_mutex_lock(&p->mutex);
  uint64_t n = p->kept_bytes;
  pthread_mutex_unlock(&p->mutex);
  return n;
}
