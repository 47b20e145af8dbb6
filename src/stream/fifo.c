/*
** The Fifo. One mutex guards the ring; the output thread takes the whole
** ring in one go and delivers it with the lock released, so under load a
** hand-off costs one lock per frame on the producer side and one lock per
** batch on the consumer side, and the producer signals the condition
** variable only when the thread is actually asleep.
*/
#include "streamlua/fifo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/frame.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"

#define FIFO_BATCH 256
#define FIFO_SLICE 16      /* frames sent between two looks at `stopping` */
#define FIFO_INITIAL_CAP 1024

typedef struct sl_fifo {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  pthread_mutex_t mutex;
  pthread_cond_t not_empty;
  sl_frame **ring;
  uint32_t cap, head, count;
  uint32_t max_depth, trim_size;
  int no_copy;
  int closing;                 /* stop asked: the thread ends */
  atomic_int stopping;         /* closing, read by the thread between sends */
  int sleeping;                /* the thread waits on not_empty */
  int self_free;               /* destroyed from its own thread: it frees */
  atomic_int exited;
  pthread_t thread;
  int started, joined;
  /* Producers' and the output thread's counters on lines of their own. */
  _Alignas(64) atomic_uint_least64_t drops;
  atomic_uint_least64_t rx_frames, rx_bytes;
  _Alignas(64) atomic_uint_least64_t tx_frames;
  atomic_uint_least64_t tx_bytes;
} sl_fifo;

static sl_fifo *as_fifo(sl_object *obj) { return (sl_fifo *)obj; }

/* Grows an unbounded ring (lock held). */
static int grow_nolock_(sl_fifo *q) {
  uint32_t cap = q->cap * 2;
  sl_frame **r = malloc(cap * sizeof *r);
  if (r == NULL) return SL_ENOMEM;
  for (uint32_t i = 0; i < q->count; i++) r[i] = q->ring[(q->head + i) % q->cap];
  free(q->ring);
  q->ring = r;
  q->cap = cap;
  q->head = 0;
  return SL_OK;
}

static int full_nolock_(const sl_fifo *q) {
  return q->max_depth > 0 && q->count >= q->max_depth;
}

/* Queues f (transfer full); drops and counts it when full or stopped. */
static void push(sl_fifo *q, sl_frame *f) {
  pthread_mutex_lock(&q->mutex);
  if (q->closing || full_nolock_(q) ||
      (q->count == q->cap && grow_nolock_(q) != SL_OK))
    goto out_drop;
  q->ring[(q->head + q->count) % q->cap] = f;
  q->count++;
  int wake = q->sleeping;      /* one signal per sleep, not one per push */
  q->sleeping = 0;
  pthread_mutex_unlock(&q->mutex);
  if (wake) pthread_cond_signal(&q->not_empty);
  return;
out_drop:
  pthread_mutex_unlock(&q->mutex);
  atomic_fetch_add_explicit(&q->drops, 1, memory_order_relaxed);
  sl_frame_unref(f);
}

/* A copy of the first n bytes of f with its metadata, from downstream. */
static sl_frame *copy_frame(sl_fifo *q, sl_frame *f) {
  uint32_t n = sl_frame_get_payload(f);
  if (q->trim_size != 0 && q->trim_size < n) n = q->trim_size;
  sl_frame *nf = sl_master_req_frame(&q->master, n, 1);
  if (nf == NULL) return NULL;
  if (sl_frame_set_payload(nf, n) != SL_OK) {
    sl_frame_unref(nf);
    return NULL;
  }
  sl_frame_iter src, dst;
  sl_frame_iter_read(&src, f, 0);
  sl_frame_iter_write(&dst, nf, 0);
  sl_frame_iter_copy(&src, n, &dst);
  sl_frame_set_error(nf, sl_frame_get_error(f));
  sl_frame_set_channel(nf, sl_frame_get_channel(f));
  sl_frame_set_flags(nf, sl_frame_get_flags(f));
  return nf;
}

static void fifo_accept(sl_slave *s, sl_frame *f) {
  sl_fifo *q = as_fifo(s->owner);
  atomic_fetch_add_explicit(&q->rx_frames, 1, memory_order_relaxed);
  if (q->no_copy) {
    atomic_fetch_add_explicit(&q->rx_bytes, sl_frame_get_payload(f),
                              memory_order_relaxed);
    push(q, sl_frame_ref(f));
    return;
  }
  pthread_mutex_lock(&q->mutex);   /* Rogue checks "busy" before copying */
  int busy = q->closing || full_nolock_(q);
  pthread_mutex_unlock(&q->mutex);
  if (busy) {
    atomic_fetch_add_explicit(&q->rx_bytes, sl_frame_get_payload(f),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&q->drops, 1, memory_order_relaxed);
    return;
  }
  sl_frame_lock(f);
  atomic_fetch_add_explicit(&q->rx_bytes, sl_frame_get_payload(f),
                            memory_order_relaxed);
  sl_frame *nf = copy_frame(q, f);
  sl_frame_unlock(f);
  if (nf == NULL) {
    atomic_fetch_add_explicit(&q->drops, 1, memory_order_relaxed);
    return;
  }
  push(q, nf);
}

static void free_fifo(sl_fifo *q) {
  for (uint32_t i = 0; i < q->count; i++)
    sl_frame_unref(q->ring[(q->head + i) % q->cap]);
  free(q->ring);
  sl_master_fini(&q->master);
  sl_slave_fini(&q->slave);
  pthread_cond_destroy(&q->not_empty);
  pthread_mutex_destroy(&q->mutex);
  free(q);
}

static void *fifo_main(void *arg) {
  sl_fifo *q = arg;
  pthread_setname_np(pthread_self(), "sl-fifo");
  sl_frame *batch[FIFO_BATCH];
  pthread_mutex_lock(&q->mutex);
  for (;;) {
    while (q->count == 0 && !q->closing) {
      q->sleeping = 1;
      pthread_cond_wait(&q->not_empty, &q->mutex);
      q->sleeping = 0;
    }
    if (q->closing) break;
    uint32_t n = q->count < FIFO_BATCH ? q->count : FIFO_BATCH;
    for (uint32_t i = 0; i < n; i++) {
      batch[i] = q->ring[q->head];
      q->head = (q->head + 1) % q->cap;
    }
    q->count -= n;
    pthread_mutex_unlock(&q->mutex);
    /* Sent in slices, so a stop is noticed within a few frames; frames
    ** taken but not sent are dropped as the queued ones are. */
    uint32_t sent = 0;
    uint64_t bytes = 0;
    while (sent < n) {
      if (atomic_load_explicit(&q->stopping, memory_order_relaxed)) {
        sl_frame_unref_many(batch + sent, n - sent);
        atomic_fetch_add_explicit(&q->drops, n - sent, memory_order_relaxed);
        break;
      }
      uint32_t k = n - sent < FIFO_SLICE ? n - sent : FIFO_SLICE;
      /* The frames were written on another core: fetch the next slice's
      ** while this one is delivered. */
      for (uint32_t i = sent + k; i < n && i < sent + 2 * k; i++)
        __builtin_prefetch(batch[i], 1, 3);
      for (uint32_t i = sent; i < sent + k; i++)
        bytes += sl_frame_get_payload(batch[i]);
      sl_master_send_frames(&q->master, batch + sent, k);
      sent += k;
    }
    sl_frame_unref_many(batch, sent);   /* back to their pools in runs */
    atomic_fetch_add_explicit(&q->tx_frames, sent, memory_order_relaxed);
    atomic_fetch_add_explicit(&q->tx_bytes, bytes, memory_order_relaxed);
    pthread_mutex_lock(&q->mutex);
  }
  int self_free = q->self_free;
  pthread_mutex_unlock(&q->mutex);
  if (self_free) {
    free_fifo(q);
    return NULL;
  }
  atomic_store_explicit(&q->exited, 1, memory_order_release);
  return NULL;
}

static int thread_exited(void *arg) {
  return atomic_load_explicit(&((sl_fifo *)arg)->exited, memory_order_acquire);
}

/* Ends the thread (waiting with the caller's wait hook, so a thread
** blocked downstream on the caller can finish) and drops what is queued. */
static void fifo_stop(sl_object *obj) {
  sl_fifo *q = as_fifo(obj);
  pthread_mutex_lock(&q->mutex);
  q->closing = 1;
  atomic_store_explicit(&q->stopping, 1, memory_order_relaxed);
  uint32_t dropped = q->count;
  for (uint32_t i = 0; i < q->count; i++)
    sl_frame_unref(q->ring[(q->head + i) % q->cap]);
  q->count = 0;
  pthread_mutex_unlock(&q->mutex);
  pthread_cond_broadcast(&q->not_empty);
  atomic_fetch_add_explicit(&q->drops, dropped, memory_order_relaxed);
  if (q->started && !q->joined && !pthread_equal(pthread_self(), q->thread)) {
    sl_wait_until(thread_exited, q);
    pthread_join(q->thread, NULL);
    q->joined = 1;
  }
}

static void fifo_destroy(sl_object *obj) {
  sl_fifo *q = as_fifo(obj);
  if (q->started && !q->joined && pthread_equal(pthread_self(), q->thread)) {
    /* The last reference went inside a delivery of our own thread: it
    ** cannot join itself, so it frees the Fifo on its way out. */
    pthread_mutex_lock(&q->mutex);
    q->closing = 1;
    atomic_store_explicit(&q->stopping, 1, memory_order_relaxed);
    q->self_free = 1;
    pthread_mutex_unlock(&q->mutex);
    pthread_detach(q->thread);
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
      {"depth", sl_fifo_size(obj)}};
  size_t n = sizeof c / sizeof c[0];
  if (n > max) n = max;
  memcpy(out, c, n * sizeof c[0]);
  return n;
}

static const sl_slave_ops fifo_slave_ops = {.accept_frame = fifo_accept};

sl_object *sl_fifo_new(uint32_t max_depth, uint32_t trim_size, int no_copy) {
  sl_fifo *q = calloc(1, sizeof *q);
  if (q == NULL) return NULL;
  sl_object_init(&q->obj, "Fifo", fifo_destroy);
  q->obj.stop = fifo_stop;
  q->obj.counters = fifo_counters;
  q->max_depth = max_depth;
  q->trim_size = trim_size;
  q->no_copy = no_copy != 0;
  q->cap = max_depth > 0 ? max_depth : FIFO_INITIAL_CAP;
  q->ring = malloc(q->cap * sizeof *q->ring);
  pthread_mutex_init(&q->mutex, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  if (q->ring == NULL) goto out_ring;
  if (sl_slave_init(&q->slave, &fifo_slave_ops, &q->obj) != SL_OK) goto out_ring;
  if (sl_master_init(&q->master, &q->obj) != SL_OK) goto out_slave;
  if (pthread_create(&q->thread, NULL, fifo_main, q) != 0) goto out_master;
  q->started = 1;
  return &q->obj;
out_master:
  sl_master_fini(&q->master);
out_slave:
  sl_slave_fini(&q->slave);
out_ring:
  free(q->ring);
  pthread_cond_destroy(&q->not_empty);
  pthread_mutex_destroy(&q->mutex);
  free(q);
  return NULL;
}

uint32_t sl_fifo_size(sl_object *obj) {
  sl_fifo *q = as_fifo(obj);
  pthread_mutex_lock(&q->mutex);
  uint32_t n = q->count;
  pthread_mutex_unlock(&q->mutex);
  return n;
}

uint64_t sl_fifo_drop_count(sl_object *obj) {
  return atomic_load_explicit(&as_fifo(obj)->drops, memory_order_relaxed);
}

void sl_fifo_clear_count(sl_object *obj) {
  atomic_store_explicit(&as_fifo(obj)->drops, 0, memory_order_relaxed);
}

uint32_t sl_fifo_max_depth(sl_object *obj) { return as_fifo(obj)->max_depth; }
