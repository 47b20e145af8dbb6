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
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
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
  uint32_t tc_count;          /* blocks reserved by the thread caches */
  uint64_t tc_bytes;          /* and their data bytes */
  struct tcache *tcs;         /* thread caches attached to this pool */
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

static void tc_revoke_all_nolock_(sl_pool *p);
static int tc_used_nolock_(sl_pool *p);
static int tc_armed_nolock_(const sl_pool *p);
static int last_nolock_(const sl_pool *p);

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
    int used = tc_used_nolock_(p) | p->used;   /* both looked at and cleared */
    if (!used && (has_kept_nolock_(p) || tc_armed_nolock_(p))) {
      take_all_nolock_(p, &t);
      tc_revoke_all_nolock_(p);
      idle = 1;
    }
    p->used = 0;
    any |= has_kept_nolock_(p) || tc_armed_nolock_(p);
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
  /* Held for a few pointers at a time, by a thread filling its cache and
  ** one giving frames back: a thread that finds it taken spins briefly
  ** before it sleeps (glibc's adaptive mutex), rather than paying a futex
  ** sleep and wake for a hold shorter than either. */
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
  pthread_mutex_init(&p->mutex, &ma);
  pthread_mutexattr_destroy(&ma);
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
  tc_revoke_all_nolock_(p);
  int last = last_nolock_(p);
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

/* Up to n kept whole frames for a request that fits one block, taken
** under one lock; *lim gets the pool's limit, read under the same lock.
** Returns how many. */
static uint32_t pop_frames(sl_pool *p, uint32_t size, sl_frame **out, uint32_t n,
                           uint64_t *lim) {
  uint32_t k = 0;
  pthread_mutex_lock(&p->mutex);
  p->used = 1;
  *lim = limit_nolock_(p);
  uint32_t fixed = p->fixed_size;
  if (size > 0 && size <= *lim && p->cached_frames > 0 &&
      (fixed == 0 || size <= fixed)) {
    uint32_t alloc = fixed > 0 ? fixed : size;
    ring *r = ring_with(p, block_bytes(alloc));
    while (r != NULL && r->n > 0 && k < n) {
      sl_frame *f = ring_pop_nolock_(p, r);
      prefetch_next(r);
      sl_buffer *b = f->bufs[0];
      buffer_reset(b, p, alloc, size);
      count_nolock_(p, b);
      out[k++] = f;
    }
  }
  pthread_mutex_unlock(&p->mutex);
  for (uint32_t i = 0; i < k; i++) frame_reset(out[i]);
  return k;
}

static sl_frame *pop_frame(sl_pool *p, uint32_t size, uint64_t *lim) {
  sl_frame *f = NULL;
  return pop_frames(p, size, &f, 1, lim) == 1 ? f : NULL;
}

/* Room for one more kept block of `block` bytes (lock held). */
static int room_nolock_(const sl_pool *p, uint32_t block) {
  uint32_t most = p->pool_size > 0 ? p->pool_size : SL_POOL_CACHE_COUNT_DEFAULT;
  return !p->unreferenced && p->cached + p->cached_frames + p->tc_count < most &&
         p->kept_bytes + p->tc_bytes + block <= p->cache_bytes;
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

/* Puts dead frame f, whose block is no longer counted live, in the cache
** if it fits (lock held); *first is set when the pool kept nothing before. */
static int put_nolock_(sl_pool *p, sl_frame *f, int *first) {
  sl_buffer *b = f->bufs[0];
  if (!keepable(b->alloc_size) || (p->fixed_size > 0 && b->alloc_size != p->fixed_size))
    return 0;
  uint32_t block = block_bytes(b->alloc_size);
  if (!room_nolock_(p, block)) return 0;
  ring *r = ring_for(p, block);
  if (r == NULL) return 0;
  if (!has_kept_nolock_(p)) *first = 1;
  r->slot[(r->head + r->n) % r->cap] = f;
  r->n++;
  p->cached_frames++;
  p->kept_bytes += block;
  return 1;
}

/* Puts dead frames fs[0..k), not counted live, in the cache (lock held);
** those that do not fit move to the front, and their count is returned. */
static uint32_t put_all_nolock_(sl_pool *p, sl_frame **fs, uint32_t k, int *first) {
  uint32_t left = 0;
  for (uint32_t i = 0; i < k; i++)
    if (!put_nolock_(p, fs[i], first)) fs[left++] = fs[i];
  return left;
}

/* Keeps dead frame f, still counted live (lock held), if it fits. */
static int keep_nolock_(sl_pool *p, sl_frame *f, int *first) {
  p->used = 1;
  if (!put_nolock_(p, f, first)) return 0;
  p->alloc_bytes -= f->bufs[0]->alloc_size;
  p->alloc_count -= 1;
  return 1;
}

/* After a pool began to keep: the sweeper must be running to give it back
** when idle. */
static void kept_first(void) {
  if (!atomic_load_explicit(&sweeper_on, memory_order_seq_cst)) sweeper_ensure();
}

/* put_all_nolock_ under p's lock, p marked used. */
static uint32_t put_back(sl_pool *p, sl_frame **fs, uint32_t k) {
  int first = 0;
  pthread_mutex_lock(&p->mutex);
  p->used = 1;
  uint32_t left = put_all_nolock_(p, fs, k, &first);
  pthread_mutex_unlock(&p->mutex);
  if (first) kept_first();
  return left;
}

/* ------------------------------------------------------- thread caches */

/*
** A thread that requests or releases frames of one pool many times in a
** row keeps a few of them itself: at most TC_FRAMES of one size class, of
** at most TC_BLOCK_MAX bytes each, taken and given back with no lock and
** no locked instruction (the common request and release write only lines
** of the thread's own). It has TC_SLOTS such caches, one per pool, so a
** thread that uses two pools in turn (a copying Fifo's producer: the
** frame it writes from one, the copy from the next one's) keeps both. Frames move between such a cache and its pool
** TC_MOVE at a time under the pool's lock, so frames released on another
** thread reach the requesting one in batches.
**
** Bounds: attaching reserves TC_FRAMES blocks of the pool's count and
** bytes, so the pool's kept frames and its caches' together stay within
** the pool size and the cache bytes. Counters: each cache holds its
** owner's change to the live counters (only the owner writes it); readers
** add them under the pool's lock, and the cached counters add what the
** caches hold.
**
** Taking back: another thread (the sweeper, a changed bound or size, the
** pool's last reference gone) revokes the caches under the pool's lock:
** it sets `take`, then waits until the owner is not `busy` (the
** asymmetric barrier of barrier.h orders the owner's store of busy and
** load of take against it), frees the frames, folds the counters into the
** pool's and gives back the reservation. A revoked cache stays on the
** pool's list holding nothing until its owner detaches it (when it next
** attaches, or at its exit); the pool is freed once none is attached.
*/

#define TC_FRAMES 16
#define TC_MOVE 8             /* frames moved to or from the pool at once */
#define TC_LOW 2              /* a fill comes ahead at this many left */
#define TC_BLOCK_MAX 2048u
#define TC_HOT 64             /* locked uses of one pool in a row to attach */
#define TC_META 256           /* sequence numbers taken at once */
#define TC_SLOTS 2            /* caches of a thread, for as many pools */

typedef struct tcache {
  /* The owner's alone (pool and block written under the pool's lock). */
  sl_pool *pool;              /* attached to, or NULL */
  uint32_t block;             /* data bytes of each block kept */
  uint32_t fixed;             /* the pool's fixed size when attached */
  uint64_t lim;               /* the pool's request limit when attached */
  uint32_t meta, meta_left;   /* sequence numbers taken from the pool */
  int reserved;               /* holds a reservation (the pool's lock) */
  int ahead;                  /* the last fill moved TC_MOVE: fill ahead */
  /* The owner's while busy; a revoker's once the owner is not. */
  uint32_t n;
  sl_frame *slot[TC_FRAMES];
  /* Shared. */
  atomic_int busy;            /* the owner is using n and slot */
  atomic_int take;            /* revoked: the owner must not use them */
  atomic_uint held;           /* n, for readers */
  atomic_uint dcount, dbytes; /* the owner's change to the live counters */
  atomic_int used;            /* used since the sweeper's last look */
  struct tcache *next, *prev;           /* the pool's list (its lock) */
  struct tcache *all_next, *all_prev;   /* every thread's first (tc_mu) */
} tcache;

static _Thread_local tcache *my_tc;       /* the thread's TC_SLOTS caches */
static _Thread_local int tc_gone;          /* the thread is ending */
/* The pools of the last locked uses, the latest first, and such uses of
** each since another pool took its place. */
static _Thread_local sl_pool *tc_last[TC_SLOTS];
static _Thread_local uint32_t tc_streak[TC_SLOTS];
static pthread_mutex_t tc_mu = PTHREAD_MUTEX_INITIALIZER;
static tcache *tc_all;        /* reachable from here until its thread ends */
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static pthread_key_t tc_key;
static int tc_key_ok;

static void tc_thread_end(void *arg);
static void tc_init(void) {
  tc_key_ok = pthread_key_create(&tc_key, tc_thread_end) == 0;
}

/* The owner starts using n and slot; 0 if its cache is revoked. */
static int tc_enter(tcache *tc) {
  if (sl_barrier_asym) {
    atomic_store_explicit(&tc->busy, 1, memory_order_relaxed);
    sl_barrier_fast();
  } else {
    atomic_exchange(&tc->busy, 1);
    sl_barrier_full();
  }
  if (!atomic_load(&tc->take)) return 1;
  atomic_store_explicit(&tc->busy, 0, memory_order_release);
  return 0;
}

static void tc_exit(tcache *tc) {
  atomic_store_explicit(&tc->busy, 0, memory_order_release);
}

/* Owner-only writers of shared words: a load and a store, no RMW. */
static void tc_add(atomic_uint *w, uint32_t d) {
  atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) + d,
                        memory_order_relaxed);
}

static void tc_mark_used(tcache *tc) {
  if (!atomic_load_explicit(&tc->used, memory_order_relaxed))
    atomic_store_explicit(&tc->used, 1, memory_order_relaxed);
}

static void tc_set_n(tcache *tc, uint32_t n) {
  tc->n = n;
  atomic_store_explicit(&tc->held, n, memory_order_relaxed);
}

/* Folds a cache's counters into the pool's (lock held; owner not busy). */
static void tc_fold_nolock_(sl_pool *p, tcache *tc) {
  p->alloc_count += atomic_exchange_explicit(&tc->dcount, 0, memory_order_relaxed);
  p->alloc_bytes += atomic_exchange_explicit(&tc->dbytes, 0, memory_order_relaxed);
}

static void tc_unreserve_nolock_(sl_pool *p, tcache *tc) {
  tc->reserved = 0;
  p->tc_count -= TC_FRAMES;
  p->tc_bytes -= (uint64_t)TC_FRAMES * tc->block;
}

static void tc_revoke_all_nolock_(sl_pool *p) {
  int any = 0;
  for (tcache *tc = p->tcs; tc != NULL; tc = tc->next)
    if (!atomic_load_explicit(&tc->take, memory_order_relaxed)) {
      atomic_store(&tc->take, 1);
      any = 1;
    }
  if (!any) return;
  sl_barrier_slow();
  for (tcache *tc = p->tcs; tc != NULL; tc = tc->next) {
    if (!tc->reserved) continue;               /* revoked before */
    while (atomic_load(&tc->busy)) sched_yield();   /* a few instructions */
    for (uint32_t i = 0; i < tc->n; i++) destroy_cached(tc->slot[i]);
    tc_set_n(tc, 0);
    tc_fold_nolock_(p, tc);
    tc_unreserve_nolock_(p, tc);
  }
}

/* Whether a cache of p was used since the last look; clears the marks. */
static int tc_used_nolock_(sl_pool *p) {
  int used = 0;
  for (tcache *tc = p->tcs; tc != NULL; tc = tc->next)
    used |= atomic_exchange_explicit(&tc->used, 0, memory_order_relaxed);
  return used;
}

/* Whether some cache of p may keep frames. */
static int tc_armed_nolock_(const sl_pool *p) {
  for (const tcache *tc = p->tcs; tc != NULL; tc = tc->next)
    if (!atomic_load_explicit(&tc->take, memory_order_relaxed)) return 1;
  return 0;
}

static uint32_t live_count_nolock_(const sl_pool *p) {
  uint32_t n = p->alloc_count;
  for (const tcache *tc = p->tcs; tc != NULL; tc = tc->next)
    n += atomic_load_explicit(&tc->dcount, memory_order_relaxed);
  return n;
}

static uint32_t live_bytes_nolock_(const sl_pool *p) {
  uint32_t n = p->alloc_bytes;
  for (const tcache *tc = p->tcs; tc != NULL; tc = tc->next)
    n += atomic_load_explicit(&tc->dbytes, memory_order_relaxed);
  return n;
}

/* The pool is done: no reference, no live buffer, no cache attached. */
static int last_nolock_(const sl_pool *p) {
  return p->unreferenced && p->alloc_count == 0 && p->tcs == NULL;
}

static void tc_take_meta_nolock_(sl_pool *p, tcache *tc) {
  tc->meta = p->alloc_meta;
  tc->meta_left = TC_META;
  p->alloc_meta = (p->alloc_meta + TC_META) & 0xffffffu;
}

/* Attaches the owner's detached cache to p for blocks of `block` bytes if
** the pool has room for the reservation (lock held). */
static int tc_attach_nolock_(tcache *tc, sl_pool *p, uint32_t block) {
  uint32_t most = p->pool_size > 0 ? p->pool_size : SL_POOL_CACHE_COUNT_DEFAULT;
  if (tc->pool != NULL || p->unreferenced || block == 0 || block > TC_BLOCK_MAX ||
      p->cached + p->cached_frames + p->tc_count + TC_FRAMES > most ||
      p->kept_bytes + p->tc_bytes + (uint64_t)TC_FRAMES * block > p->cache_bytes)
    return 0;
  p->tc_count += TC_FRAMES;
  p->tc_bytes += (uint64_t)TC_FRAMES * block;
  tc->block = block;
  tc->reserved = 1;
  tc->fixed = p->fixed_size;
  tc->lim = limit_nolock_(p);
  tc_take_meta_nolock_(p, tc);
  atomic_store_explicit(&tc->take, 0, memory_order_relaxed);
  atomic_store_explicit(&tc->used, 1, memory_order_relaxed);
  tc->prev = NULL;
  tc->next = p->tcs;
  if (p->tcs != NULL) p->tcs->prev = tc;
  p->tcs = tc;
  tc->pool = p;
  return 1;
}

/* The owner takes its cache off its pool, giving the frames to the pool. */
static void tc_detach(tcache *tc) {
  sl_pool *p = tc->pool;
  if (p == NULL) return;
  sl_frame *fs[TC_FRAMES];
  uint32_t k = 0;
  if (tc_enter(tc)) {
    k = tc->n;
    memcpy(fs, tc->slot, k * sizeof fs[0]);
    tc_set_n(tc, 0);
    tc_exit(tc);
  }
  int first = 0;
  pthread_mutex_lock(&p->mutex);
  tc_fold_nolock_(p, tc);
  if (tc->reserved) tc_unreserve_nolock_(p, tc);   /* not revoked */
  if (tc->prev != NULL) tc->prev->next = tc->next;
  else p->tcs = tc->next;
  if (tc->next != NULL) tc->next->prev = tc->prev;
  tc->pool = NULL;
  atomic_store_explicit(&tc->take, 0, memory_order_relaxed);
  uint32_t left = put_all_nolock_(p, fs, k, &first);
  int last = last_nolock_(p);
  pthread_mutex_unlock(&p->mutex);
  if (first) kept_first();
  for (uint32_t i = 0; i < left; i++) destroy_cached(fs[i]);
  if (last) pool_destroy(p);
}

static void tc_thread_end(void *arg) {
  tcache *tc = arg;
  tc_gone = 1;
  for (int i = 0; i < TC_SLOTS; i++) tc_detach(&tc[i]);
  my_tc = NULL;
  pthread_mutex_lock(&tc_mu);
  if (tc->all_prev != NULL) tc->all_prev->all_next = tc->all_next;
  else tc_all = tc->all_next;
  if (tc->all_next != NULL) tc->all_next->all_prev = tc->all_prev;
  pthread_mutex_unlock(&tc_mu);
  free(tc);
}

static tcache *tc_get(void) {
  if (my_tc != NULL) return my_tc;
  pthread_once(&tc_once, tc_init);
  if (!tc_key_ok) return NULL;        /* it could not be given back at exit */
  tcache *tc = calloc(TC_SLOTS, sizeof *tc);
  if (tc == NULL) return NULL;
  if (pthread_setspecific(tc_key, tc) != 0) {
    free(tc);
    return NULL;
  }
  pthread_mutex_lock(&tc_mu);
  tc->all_next = tc_all;
  if (tc_all != NULL) tc_all->all_prev = tc;
  tc_all = tc;
  pthread_mutex_unlock(&tc_mu);
  return my_tc = tc;
}

/* The thread's cache attached to p, or NULL. */
static inline tcache *tc_of(const sl_pool *p) {
  tcache *tc = my_tc;
  if (tc == NULL) return NULL;
  for (int i = 0; i < TC_SLOTS; i++)
    if (tc[i].pool == p) return &tc[i];
  return NULL;
}

/* After a locked use of p for blocks of `block` bytes: the cache the
** thread should attach to p, once it has used p TC_HOT times with at most
** TC_SLOTS - 1 other pools between; it comes detached. NULL otherwise.
** The cache taken is one attached to p, else a free one, else one whose
** pool the thread has not used lately. */
static tcache *tc_want(sl_pool *p, uint32_t block) {
  if (block == 0 || block > TC_BLOCK_MAX || tc_gone) return NULL;
  int k = 0;
  while (k < TC_SLOTS - 1 && tc_last[k] != p) k++;
  uint32_t streak = tc_last[k] == p ? tc_streak[k] : 0;
  for (; k > 0; k--) {                  /* p moves to the front */
    tc_last[k] = tc_last[k - 1];
    tc_streak[k] = tc_streak[k - 1];
  }
  tc_last[0] = p;
  tc_streak[0] = streak + 1;
  if (tc_streak[0] < TC_HOT) return NULL;
  tc_streak[0] = 0;
  tcache *all = tc_get();
  if (all == NULL) return NULL;
  tcache *tc = tc_of(p);
  if (tc != NULL && tc->block == block &&
      !atomic_load_explicit(&tc->take, memory_order_relaxed))
    return NULL;                        /* attached already */
  for (int i = 0; tc == NULL && i < TC_SLOTS; i++)
    if (all[i].pool == NULL) tc = &all[i];
  for (int i = 0; tc == NULL && i < TC_SLOTS; i++) {
    int recent = 0;
    for (int j = 0; j < TC_SLOTS; j++) recent |= all[i].pool == tc_last[j];
    if (!recent) tc = &all[i];
  }
  if (tc == NULL) tc = &all[TC_SLOTS - 1];
  tc_detach(tc);
  return tc;
}

/* A frame from the owner's cache, attached to p; NULL if it has none. */
static sl_frame *tc_pop(tcache *tc, sl_pool *p, uint32_t alloc, uint32_t size) {
  if (tc->meta_left == 0 || !tc_enter(tc)) return NULL;
  if (tc->n == 0) {
    tc_exit(tc);
    return NULL;
  }
  sl_frame *f = tc->slot[tc->n - 1];
  /* The buffer two places down, header and the bytes asked for now (at
  ** most TC_BLOCK_MAX), on their way: the next request's copy is written
  ** into lines the other side last held or the cache let go, and one
  ** frame's time ahead was not enough to have them here. */
  if (tc->n > 2) {
    sl_buffer *nb = tc->slot[tc->n - 3]->bufs[0];
    sl_prefetch_write(nb);
    uint8_t *d = (uint8_t *)nb + HEADER_SIZE;
    for (uint32_t off = 0; off < size; off += 64) sl_prefetch_write(d + off);
  }
  tc_set_n(tc, tc->n - 1);
  tc_add(&tc->dcount, 1);
  tc_add(&tc->dbytes, alloc);
  tc_exit(tc);
  tc_mark_used(tc);
  sl_buffer *b = f->bufs[0];
  buffer_reset(b, p, alloc, size);
  b->meta = tc->meta;
  tc->meta = (tc->meta + 1) & 0xffffffu;
  tc->meta_left--;
  frame_reset(f);
  return f;
}

/* Moves up to TC_MOVE of the pool's kept frames (and sequence numbers)
** into the owner's cache, below the frames it holds: those are handed out
** first while these, released on another core as like as not, are
** fetched (prefetched here: frame, buffer header, first data line). Notes
** whether the pool had a whole move to give, so that the next fill may
** come ahead of need. */
static void tc_fill(tcache *tc, sl_pool *p) {
  tc->ahead = 0;
  if (atomic_load_explicit(&tc->take, memory_order_relaxed)) return;   /* revoked */
  sl_frame *fs[TC_MOVE];
  uint32_t k = 0, room = TC_FRAMES - atomic_load_explicit(&tc->held, memory_order_relaxed);
  if (room > TC_MOVE) room = TC_MOVE;
  pthread_mutex_lock(&p->mutex);
  p->used = 1;
  if (tc->meta_left == 0) tc_take_meta_nolock_(p, tc);
  ring *r = ring_with(p, tc->block);
  while (r != NULL && r->n > 0 && k < room) fs[k++] = ring_pop_nolock_(p, r);
  pthread_mutex_unlock(&p->mutex);
  if (k == 0) return;
  for (uint32_t i = 0; i < k; i++) sl_prefetch_write(fs[i]);
  if (tc_enter(tc)) {
    memmove(tc->slot + k, tc->slot, tc->n * sizeof fs[0]);
    memcpy(tc->slot, fs, k * sizeof fs[0]);
    tc_set_n(tc, tc->n + k);
    tc_exit(tc);
    tc->ahead = k == TC_MOVE;
  } else {                              /* revoked meanwhile: back they go */
    uint32_t left = put_back(p, fs, k);
    for (uint32_t i = 0; i < left; i++) destroy_cached(fs[i]);
  }
}

/* Releases dead frame f of pool p into the owner's cache; 0 if it cannot
** go there. When full, the oldest TC_MOVE go to the pool. */
static int tc_push(tcache *tc, sl_pool *p, sl_frame *f) {
  uint32_t alloc = f->bufs[0]->alloc_size;
  if (!keepable(alloc) || block_bytes(alloc) != tc->block ||
      (tc->fixed > 0 && alloc != tc->fixed) || !tc_enter(tc))
    return 0;
  tc_add(&tc->dcount, (uint32_t)-1);
  tc_add(&tc->dbytes, (uint32_t)0 - alloc);
  if (tc->n < TC_FRAMES) {
    tc->slot[tc->n] = f;
    tc_set_n(tc, tc->n + 1);
    tc_exit(tc);
    tc_mark_used(tc);
    return 1;
  }
  sl_frame *fs[TC_MOVE];
  memcpy(fs, tc->slot, sizeof fs);
  memmove(tc->slot, tc->slot + TC_MOVE, (TC_FRAMES - TC_MOVE) * sizeof fs[0]);
  tc->slot[TC_FRAMES - TC_MOVE] = f;
  tc_set_n(tc, TC_FRAMES - TC_MOVE + 1);
  tc_exit(tc);
  tc_mark_used(tc);
  uint32_t left = put_back(p, fs, TC_MOVE);   /* alive: the cache is on its list */
  /* What the pool had no room for fills the cache again. */
  uint32_t back = 0;
  if (left > 0 && tc_enter(tc)) {
    back = TC_FRAMES - tc->n < left ? TC_FRAMES - tc->n : left;
    memcpy(tc->slot + tc->n, fs + left - back, back * sizeof fs[0]);
    tc_set_n(tc, tc->n + back);
    tc_exit(tc);
  }
  for (uint32_t i = 0; i < left - back; i++) destroy_cached(fs[i]);
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

/* The pool is alive while f's buffer is counted live; a cache to attach
** is attached under the same lock as the frame is kept. */
void sl_pool_release_frame_(sl_frame *f) {
  sl_pool *p = single_pool(f);
  if (p != NULL) {
    tcache *tc = tc_of(p);
    if (tc != NULL && tc_push(tc, p, f)) return;
    tc = tc_want(p, block_bytes(f->bufs[0]->alloc_size));
    int first = 0;
    pthread_mutex_lock(&p->mutex);
    int kept = keep_nolock_(p, f, &first);
    int attached = tc != NULL && tc_attach_nolock_(tc, p, block_bytes(f->bufs[0]->alloc_size));
    pthread_mutex_unlock(&p->mutex);
    if (first || attached) kept_first();
    if (kept) return;
  }
  discard(f);
}

/* Frames fs[0..n) of pool p: kept under one lock; the rest discarded.
** A frame of the same block size as the one kept before it goes to the
** same ring while that has a free slot and the pool room (what
** keep_nolock_ would find, without looking again). */
static void release_run(sl_pool *p, sl_frame **fs, size_t n) {
  size_t left = 0;
  int first = 0;
  ring *r = NULL;               /* where the frame before went */
  uint32_t alloc = 0, block = 0;
  pthread_mutex_lock(&p->mutex);
  for (size_t i = 0; i < n; i++) {
    sl_frame *f = fs[i];
    uint32_t a = f->bufs[0]->alloc_size;
    if (r != NULL && a == alloc && r->n < r->cap && room_nolock_(p, block)) {
      r->slot[(r->head + r->n) % r->cap] = f;
      r->n++;
      p->cached_frames++;
      p->kept_bytes += block;
      p->alloc_bytes -= a;
      p->alloc_count -= 1;
      continue;
    }
    r = NULL;
    if (!keep_nolock_(p, f, &first)) {
      fs[left++] = f;
      continue;
    }
    alloc = a;
    block = block_bytes(a);
    r = ring_with(p, block);
  }
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
static sl_frame *req_locked(sl_pool *p, uint32_t size);

sl_frame *sl_pool_req_frame(sl_pool *p, uint32_t size) {
  tcache *tc = tc_of(p);
  if (tc != NULL && size > 0 && size <= tc->lim &&
      (tc->fixed == 0 || size <= tc->fixed)) {
    uint32_t alloc = tc->fixed > 0 ? tc->fixed : size;
    if (tc->fixed > 0 || block_bytes(alloc) == tc->block) {
      sl_frame *f = tc_pop(tc, p, alloc, size);
      if (f == NULL) {
        tc_fill(tc, p);
        f = tc_pop(tc, p, alloc, size);
      } else if (tc->ahead &&
                 atomic_load_explicit(&tc->held, memory_order_relaxed) <= TC_LOW) {
        tc_fill(tc, p);                 /* while the frames left are used */
      }
      if (f != NULL) return f;
    }
  }
  sl_frame *f = req_locked(p, size);
  if (f != NULL && f->nbuf == 1) {      /* the caller's reference keeps p */
    tc = tc_want(p, block_bytes(f->bufs[0]->alloc_size));
    if (tc != NULL) {
      pthread_mutex_lock(&p->mutex);
      int attached = tc_attach_nolock_(tc, p, block_bytes(f->bufs[0]->alloc_size));
      pthread_mutex_unlock(&p->mutex);
      if (attached) kept_first();
    }
  }
  return f;
}

uint32_t sl_pool_req_frames(sl_pool *p, uint32_t size, sl_frame **out, uint32_t n) {
  if (n == 0) return 0;
  if (n > 1 && tc_of(p) == NULL) {     /* a thread cache needs no lock */
    uint64_t lim;
    uint32_t k = pop_frames(p, size, out, n, &lim);
    if (k > 0) return k;
  }
  out[0] = sl_pool_req_frame(p, size);
  return out[0] != NULL;
}

static sl_frame *req_locked(sl_pool *p, uint32_t size) {
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
  int last = last_nolock_(p);
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
    tc_revoke_all_nolock_(p);
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
  tc_revoke_all_nolock_(p);
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
  tc_revoke_all_nolock_(p);             /* they keep the old limit */
  pthread_mutex_unlock(&p->mutex);
}

void sl_pool_set_max_buffers(sl_pool *p, uint32_t count) {
  pthread_mutex_lock(&p->mutex);
  p->max_buffers = count;
  tc_revoke_all_nolock_(p);             /* they keep the old limit */
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
/* The counters add what the thread caches hold and changed. */
uint32_t sl_pool_get_alloc_count(sl_pool *p) {
  pthread_mutex_lock(&p->mutex);
  uint32_t n = live_count_nolock_(p);
  pthread_mutex_unlock(&p->mutex);
  return n;
}

uint32_t sl_pool_get_alloc_bytes(sl_pool *p) {
  pthread_mutex_lock(&p->mutex);
  uint32_t n = live_bytes_nolock_(p);
  pthread_mutex_unlock(&p->mutex);
  return n;
}

uint32_t sl_pool_get_cached_count(sl_pool *p) {
  pthread_mutex_lock(&p->mutex);
  uint32_t n = p->cached + p->cached_frames;
  for (const tcache *tc = p->tcs; tc != NULL; tc = tc->next)
    n += atomic_load_explicit(&tc->held, memory_order_relaxed);
  pthread_mutex_unlock(&p->mutex);
  return n;
}

uint64_t sl_pool_get_cached_bytes(sl_pool *p) {
  pthread_mutex_lock(&p->mutex);
  uint64_t n = p->kept_bytes;
  for (const tcache *tc = p->tcs; tc != NULL; tc = tc->next)
    n += (uint64_t)atomic_load_explicit(&tc->held, memory_order_relaxed) * tc->block;
  pthread_mutex_unlock(&p->mutex);
  return n;
}
