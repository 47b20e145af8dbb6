/*
** The Fifo. Producers append to a chain of fixed-size segments and
** publish a count; the output thread reads that count, takes everything
** published in one go and delivers it. The two sides share no lock: the
** producers' lock (the low bit of the published count, so that queueing
** a frame is two locked instructions: take it, publish and release)
** orders producers among themselves only, and the output thread owns the
** head of the chain. An idle output thread polls briefly before
** it sleeps, since waking a sleeping thread costs far more here than a
** short poll; a producer wakes only a thread that has gone to sleep.
**
** A Fifo set to wait when full holds a producer that finds it full (in
** frames or bytes) instead of dropping its frame: the producer polls
** briefly, then sleeps until the output thread has taken what was queued
** (one look per batch, a wake only when a producer sleeps) or the Fifo
** stops.
**
** Both sides sleep on futex words, not on a mutex and a condition
** variable: a wake is one system call, and the woken thread does not
** then queue for a mutex its waker still holds.
*/
#include "streamlua/fifo.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/cpu.h"
#include "../core/futex.h"
#include "streamlua/buffer.h"
#include "streamlua/frame.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/pool.h"
#include "streamlua/prefetch.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"
#include "streamlua/worker.h"

#define FIFO_BATCH 256
#define FIFO_SLICE 16      /* frames sent between two looks at the stop */
#define SEG_SLOTS 682      /* a segment (frames and sizes) is 8 KiB */
/* The default byte limit: eight 1 MiB frames. With four, a producer
** waiting on a noCopy Fifo of 1 MiB frames met the output thread frame by
** frame, and on a host whose two cores share lines slowly the hop ran at
** 0.87-1.08 M frames/s; with eight 1.05-1.24 M (bench/README.md). */
#define FIFO_BYTES (8u << 20)
#define SPIN_POLLS 256     /* polls of an empty queue, or of a full one by
                           ** a waiting producer, before sleeping (about
                           ** 40 us: what waking a sleeping thread takes
                           ** on a 2-vCPU VM), */
#define POLL_PAUSES 8      /* each this many pauses apart */
#define GATHER 32          /* frames the output thread lets gather, */
#define GATHER_BYTES (256u << 10)  /* or bytes (a quarter of the limit if less), */
#define GATHER_PAUSES 256  /* looking again this many pauses apart, */
#define GATHER_LOOKS 8     /* at most this many times, while more come */
#define ROOM_SLICE_US 20000  /* a producer asleep for room looks whether
                             ** its waits give up this often */

typedef struct segment {
  struct segment *next;    /* written before the count that publishes it */
  sl_frame *slot[SEG_SLOTS];
  uint32_t size[SEG_SLOTS];   /* each frame's payload as it was queued */
} segment;

struct sl_fifo {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  uint32_t max_depth, trim_size;
  atomic_uint_least64_t max_bytes;   /* 0: no byte limit */
  atomic_uint cache_set;       /* the cache bytes fit_cache gave the pool */
  int no_copy;
  atomic_int wait_full;        /* producers wait for room instead of dropping */
  sl_log *log;                 /* "stream.Fifo": where drops are told */
  int self_free;               /* destroyed from its own thread: it frees */
  int spin_polls;              /* 0 on a single CPU: polling cannot help */
  sl_worker out;               /* the output thread; its stop flag is the
                               ** Fifo's closing: nothing more is queued */
  _Atomic(segment *) spare;    /* one emptied segment kept for reuse */
  /* Producer side, under the lock bit of `pushed`. */
  _Alignas(64) segment *tail;
  uint32_t tail_used;          /* slots filled in tail */
  uint64_t popped_seen;        /* a recent `popped`, for bounded Fifos */
  /* Payload bytes ever queued (one writer: the lock holder; read without
  ** the lock by waiting producers). */
  atomic_uint_least64_t in_bytes;
  atomic_uint_least64_t out_seen;  /* a recent `out_bytes` (written under
                                  ** the lock, read without it) */
  atomic_uint_least64_t drops, rx_frames, rx_bytes;
  /* Frames ever queued, shifted left by one; the low bit is the
  ** producers' lock. The output thread's one look at the producers. */
  _Alignas(64) atomic_uint_least64_t pushed;
  /* Output-thread side; head_mutex lets stop() empty the queue while the
  ** thread is held downstream. */
  _Alignas(64) pthread_mutex_t head_mutex;
  segment *head;
  uint32_t head_used;          /* slots taken from head */
  atomic_uint_least64_t popped;
  /* Payload bytes that left the queue: delivered, or dropped once taken.
  ** Frames being delivered still count toward the byte limit. */
  atomic_uint_least64_t out_bytes;
  atomic_uint_least64_t tx_frames, tx_bytes;
  /* The output thread's futex word: 1 while it sleeps (or is about to). */
  _Alignas(64) atomic_int sleeping;
  /* Producers waiting for room (wait_full): 1 while one sleeps or is
  ** about to, cleared by the one wake it gets; they sleep on room_seq,
  ** which each wake changes. */
  _Alignas(64) atomic_int room_wanted;
  atomic_int room_seq;
  /* Where each side last ran: written when that changes, read by the
  ** other side when it waits (a line of their own, so those reads take no
  ** line either side writes per frame). */
  _Alignas(64) atomic_int in_cpu;    /* the CPU the last producer queued on */
  atomic_int out_cpu;                /* the CPU the output thread looked on */
};

static sl_fifo *as_fifo(sl_object *obj) { return (sl_fifo *)obj; }

/*
** A side that waits polls only while the other side may be running on
** another CPU: one that last ran on this CPU cannot move while we poll,
** so we sleep at once and give it the CPU. Each side notes its CPU on its
** own line (a store only when it changed).
*/
static int note_cpu(atomic_int *word) {
  int cpu = sl_cpu_now();
  if (atomic_load_explicit(word, memory_order_relaxed) != cpu)
    atomic_store_explicit(word, cpu, memory_order_relaxed);
  return cpu;
}

/* Polls worth making before sleeping, the other side last seen on `peer`. */
static int polls(sl_fifo *q, atomic_int *self, atomic_int *peer) {
  int cpu = note_cpu(self);
  return cpu >= 0 && cpu == atomic_load_explicit(peer, memory_order_relaxed)
             ? 0
             : q->spin_polls;
}

static segment *segment_get(sl_fifo *q) {
  segment *s = atomic_exchange_explicit(&q->spare, NULL, memory_order_acquire);
  if (s == NULL) s = malloc(sizeof *s);
  if (s != NULL) s->next = NULL;
  return s;
}

static void segment_put(sl_fifo *q, segment *s) {
  free(atomic_exchange_explicit(&q->spare, s, memory_order_acq_rel));
}

#define PUSH_LOCK 1u

/* Takes the producers' lock; returns `pushed` as it was (lock bit clear).
** A queueing producer holds it for a few stores: spin, then yield. */
static uint64_t push_lock(sl_fifo *q) {
  for (unsigned spins = 0;; spins++) {
    uint64_t v = atomic_load_explicit(&q->pushed, memory_order_relaxed);
    if (!(v & PUSH_LOCK) &&
        atomic_compare_exchange_weak_explicit(&q->pushed, &v, v | PUSH_LOCK,
                                              memory_order_acquire,
                                              memory_order_relaxed))
      return v;
    if (spins < 64) {
      sl_cpu_relax();
    } else {
      sched_yield();
    }
  }
}

/* Releases the lock taken as `v`, queueing nothing. */
static void push_unlock(sl_fifo *q, uint64_t v) {
  atomic_store_explicit(&q->pushed, v, memory_order_release);
}

static uint64_t published(sl_fifo *q) {
  return atomic_load_explicit(&q->pushed, memory_order_acquire) >> 1;
}

static uint64_t depth(sl_fifo *q) {
  return published(q) - atomic_load_explicit(&q->popped, memory_order_acquire);
}

/* Wakes the output thread if it sleeps: `sleeping` is 1 while it sleeps
** or is about to; the first to clear it wakes it. */
static void wake_thread(sl_fifo *q) {
  if (atomic_exchange(&q->sleeping, 0) == 1) sl_futex_wake(&q->sleeping, 1);
}

/* Counts a frame received (producers' lock held). The counters have one
** writer at a time, so a plain store does: no locked instruction. */
static void count_rx_nolock_(sl_fifo *q, uint32_t bytes) {
  uint64_t n = atomic_load_explicit(&q->rx_frames, memory_order_relaxed);
  uint64_t b = atomic_load_explicit(&q->rx_bytes, memory_order_relaxed);
  atomic_store_explicit(&q->rx_frames, n + 1, memory_order_relaxed);
  atomic_store_explicit(&q->rx_bytes, b + bytes, memory_order_relaxed);
}

/* Counts a dropped frame and tells it: at Error (the default level) while
** running, the log's repeat limit keeping a flood to a line a second; at
** Debug once the Fifo is stopped (its frames go with it). */
static void dropped(sl_fifo *q, const char *why) {
  uint64_t all = atomic_fetch_add_explicit(&q->drops, 1, memory_order_relaxed) + 1;
  if (atomic_load_explicit(&q->out.stop, memory_order_relaxed))
    sl_log_write(q->log, SL_LOG_DEBUG, "Frame dropped: the Fifo is stopped");
  else
    sl_log_write(q->log, SL_LOG_ERROR, "Frame dropped: %s (maxDepth %u; %llu dropped in all)",
                 why, (unsigned)q->max_depth, (unsigned long long)all);
}

/* Counts a frame received and dropped before it was queued. */
static void count_rx_dropped(sl_fifo *q, uint32_t bytes, const char *why) {
  uint64_t v = push_lock(q);
  count_rx_nolock_(q, bytes);
  push_unlock(q, v);
  dropped(q, why);
}

/* Whether `size` more bytes go over the byte limit (producers' lock
** held). A frame finding the queue empty of bytes passes, however large. */
static int over_bytes_nolock_(sl_fifo *q, uint32_t size) {
  uint64_t max = atomic_load_explicit(&q->max_bytes, memory_order_relaxed);
  uint64_t in = atomic_load_explicit(&q->in_bytes, memory_order_relaxed);
  if (max == 0 ||
      in - atomic_load_explicit(&q->out_seen, memory_order_relaxed) + size <= max)
    return 0;
  uint64_t out = atomic_load_explicit(&q->out_bytes, memory_order_acquire);
  atomic_store_explicit(&q->out_seen, out, memory_order_release);
  uint64_t held = in - out;
  return held > 0 && held + size > max;
}

static const char full_frames[] = "the queue is full";
static const char full_bytes[] = "the queue is at its byte limit";
static const char stopped[] = "the Fifo is stopped";

/* Why a frame of `size` bytes cannot be queued now, or NULL (producers'
** lock held, taken as `v`). */
static const char *no_room_nolock_(sl_fifo *q, uint64_t v, uint32_t size) {
  uint64_t n = v >> 1;
  if (atomic_load_explicit(&q->out.stop, memory_order_relaxed)) return stopped;
  if (q->max_depth > 0 && n - q->popped_seen >= q->max_depth) {
    q->popped_seen = atomic_load_explicit(&q->popped, memory_order_acquire);
    if (n - q->popped_seen >= q->max_depth) return full_frames;
  }
  return over_bytes_nolock_(q, size) ? full_bytes : NULL;
}

/* Whether a frame of `size` bytes finds room or the Fifo stopped: a look
** without the lock, for a waiting producer (the push decides). */
static int room_or_stop(sl_fifo *q, uint32_t size) {
  /* The stop, `popped` and out_bytes are loaded sequentially consistent:
  ** await_room's sleep pairs them with the output thread's stores. */
  if (atomic_load(&q->out.stop)) return 1;
  if (q->max_depth > 0 && published(q) - atomic_load(&q->popped) >= q->max_depth)
    return 0;
  uint64_t max = atomic_load_explicit(&q->max_bytes, memory_order_relaxed);
  if (max == 0) return 1;
  /* out_seen is at most out_bytes: a first look on the producers' line.
  ** Each `out` is loaded before `in`, which then counts its frames. */
  uint64_t out = atomic_load_explicit(&q->out_seen, memory_order_acquire);
  uint64_t in = atomic_load_explicit(&q->in_bytes, memory_order_relaxed);
  if (in - out + size <= max) return 1;
  out = atomic_load(&q->out_bytes);
  in = atomic_load_explicit(&q->in_bytes, memory_order_relaxed);
  return in == out || in - out + size <= max;
}

typedef struct room_wait {
  sl_fifo *q;
  uint32_t size;
} room_wait;

static int room_cond(void *arg) {
  room_wait *w = arg;
  return room_or_stop(w->q, w->size);
}

/* Whether a producer that found the Fifo full waits for room: set to, and
** not the output thread itself (it would wait for its own delivery). */
static int waits_for_room(sl_fifo *q) {
  return atomic_load_explicit(&q->wait_full, memory_order_relaxed) &&
         !sl_worker_is_self(&q->out);
}

/* Waits until a frame of `size` bytes may find room: polls, then sleeps
** on a futex word until the output thread has taken the queue well below
** its limits (a thread with a wait hook polls and runs it instead). SL_OK
** to try again; SL_ECANCELED when the Fifo stopped or the thread's waits
** give up. */
static int await_room(sl_fifo *q, uint32_t size) {
  room_wait w = {q, size};
  int n = polls(q, &q->in_cpu, &q->out_cpu);
  for (int i = 0; i < n; i++) {
    if (room_or_stop(q, size)) goto out;
    for (int j = 0; j < POLL_PAUSES; j++) sl_cpu_relax();
  }
  if (sl_wait_has_hook()) {
    if (sl_wait_for(room_cond, &w) != SL_OK) return SL_ECANCELED;
    goto out;
  }
  /* Asleep on room_seq, read before the look at the room: a wake after
  ** the look changes it, so the sleep ends at once. room_wanted is stored
  ** before the look, and what the output thread took before its look at
  ** room_wanted, all sequentially consistent: one of the two sees the
  ** other. */
  for (;;) {
    int seq = atomic_load(&q->room_seq);
    atomic_store(&q->room_wanted, 1);
    if (room_or_stop(q, size)) break;
    if (sl_wait_cancelled()) return SL_ECANCELED;
    sl_futex_wait(&q->room_seq, seq, ROOM_SLICE_US);
  }
out:
  return atomic_load_explicit(&q->out.stop, memory_order_relaxed) ? SL_ECANCELED
                                                                  : SL_OK;
}

/* Whether the queue is well below its limits: half the depth, half the
** bytes. Producers waiting for room are woken only then, so that they
** come back to a queue with room for a batch. */
static int well_below(sl_fifo *q) {
  if (q->max_depth > 0 && depth(q) > q->max_depth / 2) return 0;
  uint64_t max = atomic_load_explicit(&q->max_bytes, memory_order_relaxed);
  return max == 0 ||
         atomic_load_explicit(&q->in_bytes, memory_order_relaxed) -
                 atomic_load_explicit(&q->out_bytes, memory_order_relaxed) <=
             max / 2;
}

/* Wakes every producer asleep on room_seq. */
static void wake_room(sl_fifo *q) {
  atomic_fetch_add(&q->room_seq, 1);
  sl_futex_wake(&q->room_seq, INT32_MAX);
}

/* Wakes the producers asleep for room, if any and the queue is well below
** its limits: after frames or bytes left the queue (their stores
** sequentially consistent, before this look). One wake per sleep: the
** first to clear room_wanted wakes them. A producer that waits longer
** looks again each slice of its wait. */
static void room_made(sl_fifo *q) {
  if (atomic_load(&q->room_wanted) != 0 && well_below(q) &&
      atomic_exchange(&q->room_wanted, 0) != 0)
    wake_room(q);
}

/* Counts a frame received (`bytes` long) and queues f, its payload `size`
** bytes (transfer full): the frame itself, or its copy; drops and counts
** it when stopped, or full (in frames or bytes) and the
** producer does not wait or its wait gave up. */
static void push(sl_fifo *q, sl_frame *f, uint32_t bytes, uint32_t size) {
  uint64_t v = push_lock(q);
  const char *why;
  while ((why = no_room_nolock_(q, v, size)) != NULL) {
    if (why == stopped || !waits_for_room(q)) goto out_drop;
    push_unlock(q, v);
    int rc = await_room(q, size);
    v = push_lock(q);
    if (rc != SL_OK) {
      if (atomic_load_explicit(&q->out.stop, memory_order_relaxed)) why = stopped;
      goto out_drop;
    }
  }
  count_rx_nolock_(q, bytes);
  note_cpu(&q->in_cpu);
  if (q->tail_used == SEG_SLOTS) {
    segment *s = segment_get(q);
    why = "out of memory";
    if (s == NULL) goto out_drop_counted;
    q->tail->next = s;
    q->tail = s;
    q->tail_used = 0;
  }
  q->tail->size[q->tail_used] = size;
  q->tail->slot[q->tail_used++] = f;
  atomic_store_explicit(&q->in_bytes,
                        atomic_load_explicit(&q->in_bytes, memory_order_relaxed) + size,
                        memory_order_relaxed);
  /* Publishes the frame and unlocks; sequentially consistent, so ordered
  ** before the look at `sleeping`. */
  atomic_store(&q->pushed, v + 2);
  if (atomic_load(&q->sleeping) == 1) wake_thread(q);
  return;
out_drop:
  count_rx_nolock_(q, bytes);
out_drop_counted:
  push_unlock(q, v);
  sl_frame_unref(f);
  dropped(q, why);
}

/* A copy of the first bytes of f (`payload` long) with its metadata,
** from downstream: trimSize of them at most. */
static sl_frame *copy_frame(sl_fifo *q, sl_frame *f, uint32_t payload) {
  uint32_t n = payload;
  if (q->trim_size != 0 && q->trim_size < n) n = q->trim_size;
  sl_frame *nf = sl_master_req_frame(&q->master, n, 1);
  if (nf == NULL) return NULL;
  if (sl_frame_set_payload(nf, n) != SL_OK) {
    sl_frame_unref(nf);
    return NULL;
  }
  if (sl_frame_buffer_count(f) == 1 && sl_frame_buffer_count(nf) == 1) {
    /* the common case: one block each, the copy's payload set above */
    if (n > 0)
      memcpy(sl_buffer_begin(sl_frame_buffer(nf, 0)),
             sl_buffer_begin(sl_frame_buffer(f, 0)), n);
  } else {
    sl_frame_iter src, dst;
    sl_frame_iter_read(&src, f, 0);
    sl_frame_iter_write(&dst, nf, 0);
    sl_frame_iter_copy(&src, n, &dst);
  }
  sl_frame_set_error(nf, sl_frame_get_error(f));
  sl_frame_set_channel(nf, sl_frame_get_channel(f));
  sl_frame_set_flags(nf, sl_frame_get_flags(f));
  return nf;
}

/* Why a copy of `size` bytes would not be queued now, or NULL: Rogue
** checks "busy" before copying (a look without the lock; push decides).
** A producer that waits for room waits here, before it copies. */
static const char *busy(sl_fifo *q, uint32_t size) {
  for (;;) {
    const char *why = NULL;
    if (atomic_load_explicit(&q->out.stop, memory_order_relaxed)) why = stopped;
    else if (q->max_depth > 0 && depth(q) >= q->max_depth) why = full_frames;
    else if (!room_or_stop(q, size)) why = full_bytes;
    if (why == NULL || why == stopped || !waits_for_room(q)) return why;
    if (await_room(q, size) != SL_OK) {
      return atomic_load_explicit(&q->out.stop, memory_order_relaxed) ? stopped : why;
    }
  }
}

static void fifo_accept(sl_slave *s, sl_frame *f) {
  sl_fifo *q = as_fifo(s->owner);
  if (q->no_copy) {
    uint32_t bytes = sl_frame_get_payload(f);
    push(q, sl_frame_ref(f), bytes, bytes);
    return;
  }
  uint32_t payload = sl_frame_get_payload(f);
  uint32_t size = payload;
  if (q->trim_size != 0 && q->trim_size < size) size = q->trim_size;
  const char *why = busy(q, size);
  if (why != NULL) {
    count_rx_dropped(q, payload, why);
    return;
  }
  /* measured again: another holder may have changed f before letting go */
  int locked = sl_frame_lock_unless_sole(f);
  uint32_t bytes = sl_frame_get_payload(f);
  sl_frame *nf = copy_frame(q, f, bytes);
  if (locked) sl_frame_unlock(f);
  if (nf == NULL) {
    count_rx_dropped(q, bytes, "no frame for its copy");
    return;
  }
  push(q, nf, bytes, q->trim_size != 0 && q->trim_size < bytes ? q->trim_size : bytes);
}

/* Takes up to max published frames off the head, with the sizes they
** were queued with. */
static uint32_t take(sl_fifo *q, sl_frame **out, uint32_t *size, uint32_t max) {
  pthread_mutex_lock(&q->head_mutex);
  uint64_t popped = atomic_load_explicit(&q->popped, memory_order_relaxed);
  uint64_t avail = published(q) - popped;
  uint32_t n = avail < max ? (uint32_t)avail : max;
  for (uint32_t i = 0; i < n; i++) {
    if (q->head_used == SEG_SLOTS) {
      segment *done = q->head;
      q->head = done->next;
      q->head_used = 0;
      segment_put(q, done);
    }
    size[i] = q->head->size[q->head_used];
    out[i] = q->head->slot[q->head_used++];
  }
  atomic_store(&q->popped, popped + n);   /* sequentially consistent, */
  pthread_mutex_unlock(&q->head_mutex);
  if (n > 0) room_made(q);               /* then the look at the waiters */
  return n;
}

static uint64_t sum(const uint32_t *size, uint32_t n) {
  uint64_t t = 0;
  for (uint32_t i = 0; i < n; i++) t += size[i];
  return t;
}

/* Frames taken leave the count of queued bytes. */
static void left_queue(sl_fifo *q, const uint32_t *size, uint32_t n) {
  atomic_fetch_add(&q->out_bytes, sum(size, n));
  room_made(q);
}

/* Frees what is queued, counting it as dropped. */
static void drain(sl_fifo *q) {
  sl_frame *batch[FIFO_BATCH];
  uint32_t size[FIFO_BATCH];
  uint32_t n;
  while ((n = take(q, batch, size, FIFO_BATCH)) > 0) {
    sl_frame_unref_many(batch, n);
    left_queue(q, size, n);
    atomic_fetch_add_explicit(&q->drops, n, memory_order_relaxed);
  }
}

static void free_fifo(sl_fifo *q) {
  drain(q);
  free(q->head);
  free(atomic_load(&q->spare));
  sl_master_fini(&q->master);
  sl_slave_fini(&q->slave);
  pthread_mutex_destroy(&q->head_mutex);
  free(q);
}

static int is_closing(sl_fifo *q) {
  return sl_worker_stopping(&q->out);
}

static int queue_empty(sl_fifo *q) {
  return atomic_load(&q->pushed) >> 1 ==
         atomic_load_explicit(&q->popped, memory_order_relaxed);
}

static int frames_or_closing(void *arg) {
  sl_fifo *q = arg;
  return !queue_empty(q) || is_closing(q);
}

/* Returns when there is something to take or the Fifo is closing. A
** producer that queues after the last store of 1 here sees it and wakes
** the thread; the store is renewed on every wake-up, so a wake meant for
** an earlier sleep (its frame already taken) cannot leave the word
** cleared. The stop is looked at sequentially consistent, after the
** store of 1, as wake_output reads it before it looks at the word. */
static void await_frames(sl_fifo *q) {
  int n = polls(q, &q->out_cpu, &q->in_cpu);
  for (int i = 0; i < n; i++) {
    if (frames_or_closing(q)) return;
    for (int j = 0; j < POLL_PAUSES; j++) sl_cpu_relax();
  }
  for (;;) {
    atomic_store(&q->sleeping, 1);      /* sequentially consistent, then */
    if (!queue_empty(q) || atomic_load(&q->out.stop))  /* the looks */
      break;
    sl_futex_wait(&q->sleeping, 1, -1);
  }
  atomic_store_explicit(&q->sleeping, 0, memory_order_relaxed);
}

/*
** Before it takes, the output thread lets a batch gather while a producer
** on another CPU is still queueing: each look at the published count takes
** that line from the producing core, and each frame taken alone is a
** round of lines between the cores (frame, buffer, slot), where a batch
** moves together, prefetched. It looks again every GATHER_PAUSES pauses
** while the count grows, until GATHER frames or GATHER_BYTES are queued,
** a producer waits for room, or GATHER_LOOKS looks (about 40 us here).
** A producer that last ran on this CPU is not waited for.
*/
static void gather(sl_fifo *q) {
  uint64_t want = GATHER;
  if (q->max_depth > 0 && q->max_depth / 2 < want) want = q->max_depth / 2;
  uint64_t bytes = GATHER_BYTES;
  uint64_t max = atomic_load_explicit(&q->max_bytes, memory_order_relaxed);
  if (max > 0 && max / 4 < bytes) bytes = max / 4;
  uint64_t d = depth(q);
  if (d >= want || polls(q, &q->out_cpu, &q->in_cpu) == 0) return;
  for (int i = 0; i < GATHER_LOOKS; i++) {
    if (atomic_load_explicit(&q->in_bytes, memory_order_relaxed) -
                atomic_load_explicit(&q->out_bytes, memory_order_relaxed) >=
            bytes ||
        atomic_load_explicit(&q->room_wanted, memory_order_relaxed) != 0 ||
        is_closing(q))
      return;
    for (int j = 0; j < GATHER_PAUSES; j++) sl_cpu_relax();
    uint64_t now = depth(q);
    if (now == d || now >= want) return;
    d = now;
  }
}

static int fifo_main(void *arg) {
  sl_fifo *q = arg;
  sl_frame *batch[FIFO_BATCH];
  uint32_t size[FIFO_BATCH];
  for (;;) {
    await_frames(q);
    gather(q);
    if (is_closing(q)) break;
    uint32_t n = take(q, batch, size, FIFO_BATCH);
    /* Sent in slices, so a stop is noticed within a few frames; frames
    ** taken but not sent are dropped as the queued ones are. */
    uint32_t sent = 0;
    uint64_t bytes = 0;
    while (sent < n) {
      if (is_closing(q)) {
        sl_frame_unref_many(batch + sent, n - sent);
        left_queue(q, size + sent, n - sent);
        atomic_fetch_add_explicit(&q->drops, n - sent, memory_order_relaxed);
        break;
      }
      uint32_t k = n - sent < FIFO_SLICE ? n - sent : FIFO_SLICE;
      /* The frames were written on another core: fetch the next slice's
      ** while this one is delivered. */
      for (uint32_t i = sent + k; i < n && i < sent + 2 * k; i++) {
        sl_prefetch_write(batch[i]);
        if (i + k < n) sl_prefetch_write(batch[i + k]);
      }
      for (uint32_t i = sent; i < sent + k; i++)
        bytes += sl_frame_get_payload(batch[i]);
      sl_master_send_frames(&q->master, batch + sent, k);
      left_queue(q, size + sent, k);
      sl_frame_unref_many(batch + sent, k);   /* back to their pools */
      sent += k;
    }
    atomic_fetch_add_explicit(&q->tx_frames, sent, memory_order_relaxed);
    atomic_fetch_add_explicit(&q->tx_bytes, bytes, memory_order_relaxed);
  }
  /* No frame is queued after the stop (producers look at it under their
  ** mutex): what is left is dropped here. */
  drain(q);
  if (q->self_free) {                   /* set before the stop */
    free_fifo(q);
    return SL_WORKER_FREED;
  }
  return 0;
}

/* Reads the stop flag (already set) by a sequentially consistent
** read-modify-write, so that the stop is ordered before what follows with
** the sleeping threads' sequentially consistent looks at it. */
static void stop_seen(sl_fifo *q) { atomic_fetch_or(&q->out.stop, 0); }

/* The output thread's wake: out of its sleep, to see the stop (set
** before this is called). */
static void wake_output(void *arg) {
  sl_fifo *q = arg;
  stop_seen(q);
  wake_thread(q);
}

/* Phase one of a stop (and the Fifo's cancel hook): queues nothing more
** and frees the output thread from any wait downstream. */
static void close_queue(sl_fifo *q) {
  uint64_t v = push_lock(q);            /* no push completes after this */
  sl_worker_request_stop(&q->out);
  push_unlock(q, v);
  stop_seen(q);                         /* nor does a producer wait on */
  atomic_store(&q->room_wanted, 0);
  wake_room(q);
}

static void fifo_cancel(sl_object *obj) { close_queue(as_fifo(obj)); }

/* Drops what is queued, then ends the thread (waiting with the caller's
** wait hook, so a thread blocked downstream on the caller can finish). */
static void fifo_stop(sl_object *obj) {
  sl_fifo *q = as_fifo(obj);
  close_queue(q);
  drain(q);
  sl_worker_join(&q->out);   /* not from the output thread itself */
}

static void fifo_destroy(sl_object *obj) {
  sl_fifo *q = as_fifo(obj);
  if (sl_worker_is_self(&q->out)) {
    /* The last reference went inside a delivery of our own thread: it
    ** cannot join itself, so it frees the Fifo on its way out. */
    q->self_free = 1;
    close_queue(q);
    sl_worker_detach(&q->out);
    return;
  }
  fifo_stop(obj);
  free_fifo(q);
}

static size_t fifo_counters(sl_object *obj, sl_counter *out, size_t max) {
  sl_fifo *q = as_fifo(obj);
  sl_counter c[] = {
      {"rxFrames", atomic_load(&q->rx_frames)},
      {"rxBytes", atomic_load(&q->rx_bytes)},
      {"txFrames", atomic_load(&q->tx_frames)},
      {"txBytes", atomic_load(&q->tx_bytes)},
      {"drops", atomic_load(&q->drops)},
      {"depth", sl_fifo_size(q)},
      {"maxDepth", q->max_depth},
      {"maxQueueBytes", sl_fifo_max_queue_bytes(q)},
      {"queueBytes", sl_fifo_queue_bytes(q)}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

static const sl_slave_ops fifo_slave_ops = {.accept_frame = fifo_accept};

static const sl_class fifo_class = {.name = "Fifo",
                                    .destroy = fifo_destroy,
                                    .stop = fifo_stop,
                                    .cancel = fifo_cancel,
                                    .counters = fifo_counters};

/*
** In noCopy mode the frames a Fifo holds are those of its own pool (a
** master whose primary slave is the Fifo asks it for them): up to the
** byte limit queued or in delivery, and one more being filled. The pool
** keeps that much of what comes back, so a stream of large frames is not
** a malloc, a free and page faults per frame (with 1 MiB frames and the
** defaults, the limit holds eight while the pool kept two). Bounded as the
** queue is; an idle pool gives it back (pool.h). A cache size set on the
** pool by hand (anything but the default or what this last set) stays.
*/
static void fit_cache(sl_fifo *q) {
  if (!q->no_copy) return;
  sl_pool *p = q->slave.pool;
  uint64_t max = atomic_load_explicit(&q->max_bytes, memory_order_relaxed);
  uint64_t want = SL_POOL_CACHE_BYTES_DEFAULT;
  if (max > 0) want += max;
  if (want > UINT32_MAX) want = UINT32_MAX;
  uint32_t now = sl_pool_get_cache_bytes(p);
  if (now != SL_POOL_CACHE_BYTES_DEFAULT && now != atomic_load(&q->cache_set)) return;
  atomic_store(&q->cache_set, (uint32_t)want);
  sl_pool_set_cache_bytes(p, (uint32_t)want);
}

sl_fifo *sl_fifo_new(uint32_t max_depth, uint32_t trim_size, int no_copy,
                     sl_error *err) {
  int trc = 0;
  sl_fifo *q = aligned_alloc(64, (sizeof(sl_fifo) + 63) & ~(size_t)63);
  if (q == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  memset(q, 0, sizeof *q);
  sl_object_init(&q->obj, &fifo_class);
  q->max_depth = max_depth;
  atomic_init(&q->max_bytes, FIFO_BYTES);
  atomic_init(&q->in_cpu, -1);
  atomic_init(&q->out_cpu, -1);
  q->trim_size = trim_size;
  q->no_copy = no_copy != 0;
  q->log = sl_log_get("stream.Fifo");
  q->spin_polls = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? SPIN_POLLS : 0;
  pthread_mutex_init(&q->head_mutex, NULL);
  q->head = q->tail = segment_get(q);
  if (q->head == NULL) goto out_seg;
  if (sl_slave_init(&q->slave, &fifo_slave_ops, &q->obj) != SL_OK) goto out_seg;
  if (sl_master_init(&q->master, &q->obj) != SL_OK) goto out_slave;
  fit_cache(q);
  trc = sl_worker_start(&q->out, "sl-fifo", 0, fifo_main, wake_output, q);
  if (trc != 0) {
    sl_error_set(err, SL_EIO, "cannot start its thread: %s", strerror(trc));
    goto out_master;
  }
  return q;
out_master:
  sl_master_fini(&q->master);
out_slave:
  sl_slave_fini(&q->slave);
out_seg:
  free(q->head);
  pthread_mutex_destroy(&q->head_mutex);
  free(q);
  if (trc == 0) sl_error_set(err, SL_ENOMEM, NULL);
  return NULL;
}

sl_object *sl_fifo_object(sl_fifo *q) { return q != NULL ? &q->obj : NULL; }

sl_fifo *sl_fifo_from_object(sl_object *obj) {
  return sl_object_is(obj, &fifo_class) ? as_fifo(obj) : NULL;
}

uint32_t sl_fifo_size(sl_fifo *q) { return (uint32_t)depth(q); }

uint64_t sl_fifo_drop_count(sl_fifo *q) {
  return atomic_load_explicit(&q->drops, memory_order_relaxed);
}

void sl_fifo_clear_count(sl_fifo *q) {
  atomic_store_explicit(&q->drops, 0, memory_order_relaxed);
}

uint32_t sl_fifo_max_depth(sl_fifo *q) { return q->max_depth; }

void sl_fifo_set_max_queue_bytes(sl_fifo *q, uint64_t bytes) {
  atomic_store_explicit(&q->max_bytes, bytes, memory_order_relaxed);
  fit_cache(q);
}

uint64_t sl_fifo_max_queue_bytes(sl_fifo *q) {
  return atomic_load_explicit(&q->max_bytes, memory_order_relaxed);
}

void sl_fifo_set_wait_when_full(sl_fifo *q, int on) {
  atomic_store_explicit(&q->wait_full, on != 0, memory_order_relaxed);
}

int sl_fifo_wait_when_full(sl_fifo *q) {
  return atomic_load_explicit(&q->wait_full, memory_order_relaxed);
}

uint64_t sl_fifo_queue_bytes(sl_fifo *q) {
  uint64_t v = push_lock(q);
  uint64_t held = atomic_load_explicit(&q->in_bytes, memory_order_relaxed) -
                  atomic_load_explicit(&q->out_bytes, memory_order_acquire);
  push_unlock(q, v);
  return held;
}
