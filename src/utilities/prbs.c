/*
** The PRBS generator and checker (rogue-reference 8.1).
**
** Speed comes from one observation about width 32: each payload word is the
** one before shifted left by one with the feedback bit in bit 0, so
**   V(k+i) = V(k) << i | V(k+32) >> (32 - i)      for 0 < i < 32,
** and V(k+32) is a linear map of V(k): four table lookups. The generator
** emits 32 words per jump with shifts only; the checker tests every word
** against the word before it, which has no serial dependency and
** vectorises. Any other width (or a test that asks) takes the plain
** bit-serial path on 64-bit limbs, the reference the fast path is tested
** against.
**
** Locks, never nested except ctl -> tx: cfg (the LFSR description), ctl
** (starting and joining the thread), tx (generator state and counters),
** rx (checker state and counters), and one process-wide gate on which
** checkers wait while rx is disabled. No lock is held while frames are sent.
*/
#include "streamlua/prbs.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streamlua/frame.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"
#include "streamlua/worker.h"
#include "../core/clock.h"
#include "prbs_words.h"

#define STOP_WAIT_US 500000         /* stop/destroy wait this long at most */

typedef struct rate {
  uint64_t count, bytes;           /* at the last update */
  double time, rate, bw;
} rate;

enum { TX_NONE, TX_RUNNING, TX_EXITED };

struct sl_prbs {
  sl_object obj;
  sl_slave slave;
  sl_master master;
  sl_log *tx_log, *rx_log;
  pthread_mutex_t cfg;
  lfsr *lfsr;
  atomic_int gen_payload, check_payload, send_count, fast, rx_enable, stopped;
  atomic_int run;                  /* the generator should go on */
  pthread_mutex_t ctl;             /* starting and joining the thread */
  sl_worker gen;                   /* the generator; its stop flag is !run
                                      (set with run, under tx) */
  pthread_mutex_t tx;              /* all tx_ fields, hold_off, orphan */
  pthread_cond_t tx_cond;          /* period sleep, thread exit */
  int tx_state, orphan;
  int hold_off;                    /* disable()s waiting for the thread */
  uint32_t tx_size, tx_period, tx_seq;
  uint64_t tx_count, tx_bytes, tx_errors;
  rate tx_rate;
  pthread_mutex_t rx;
  uint32_t rx_seq;                 /* the next sequence number expected */
  uint64_t rx_count, rx_bytes, rx_errors, rx_drops;
  rate rx_rate;
  int has_nowait;                  /* nowait: under the gate mutex */
  pthread_t nowait;
};

static pthread_mutex_t gate_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond;          /* monotonic: made once */
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;

static void gate_init(void) { sl_cond_init(&gate_cond); }
/* The Prbs whose generator thread this is. */
static _Thread_local sl_prbs *gen_self;

/* ---- the LFSR in use ---- */

static lfsr *cfg_get(sl_prbs *p) {
  pthread_mutex_lock(&p->cfg);
  lfsr *l = p->lfsr;
  atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&p->cfg);
  return l;
}

static int use_fast(sl_prbs *p, const lfsr *l) {
  return SL_HOST_LE && l->width == 32 && atomic_load(&p->fast);
}

static int size_ok(const lfsr *l, uint32_t size) {
  return size % l->bytes == 0 && size >= 3 * l->bytes;
}

/* ---- generating frames ---- */

/* Rogue's rule: recompute once more than 1 s has passed. */
static void rate_update(rate *r, uint64_t count, uint64_t bytes) {
  double t = sl_clock_coarse_s(), per = t - r->time;
  if (per <= 1.0) return;
  r->rate = (double)(count - r->count) / per;
  r->bw = (double)(bytes - r->bytes) / per;
  r->count = count;
  r->bytes = bytes;
  r->time = t;
}

/* Builds and sends one frame of a valid size. */
static int send_one(sl_prbs *p, const lfsr *l, uint32_t size) {
  sl_frame *f = sl_master_req_frame(&p->master, size, 1);
  if (f == NULL || sl_frame_set_payload(f, size) != SL_OK) {
    sl_frame_unref(f);
    pthread_mutex_lock(&p->tx);
    p->tx_errors++;
    pthread_mutex_unlock(&p->tx);
    sl_log_write(p->tx_log, SL_LOG_WARNING, "No frame of %u bytes to send", size);
    return SL_ENOMEM;
  }
  pthread_mutex_lock(&p->tx);
  uint32_t seq = p->tx_seq++;
  pthread_mutex_unlock(&p->tx);
  wordgen g = {l, use_fast(p, l), atomic_load(&p->send_count), 0, 0, {0}};
  prbs_fill_frame(f, &g, size, seq, atomic_load(&p->gen_payload));
  sl_master_send_frame(&p->master, f);
  sl_frame_unref(f);
  pthread_mutex_lock(&p->tx);
  p->tx_count++;
  p->tx_bytes += size;
  rate_update(&p->tx_rate, p->tx_count, p->tx_bytes);
  pthread_mutex_unlock(&p->tx);
  return SL_OK;
}

int sl_prbs_gen_frame(sl_prbs *p, uint32_t size) {
  lfsr *l = cfg_get(p);
  int rc = size_ok(l, size) ? send_one(p, l, size) : SL_EINVAL;
  prbs_lfsr_unref(l);
  return rc;
}

/* ---- checking frames ---- */

static void hex(char *out, const uint8_t *b, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) sprintf(out + 3 * i, "%02x ", b[i]);
  out[n > 0 ? 3 * n - 1 : 0] = '\0';
}

/* One error: counted and logged (rx lock held). */
static void rx_error(sl_prbs *p, const char *what, uint32_t seq) {
  p->rx_errors++;
  sl_log_write(p->rx_log, SL_LOG_WARNING, "%s (seq=%u, count=%llu)", what, seq,
               (unsigned long long)p->rx_count);
}

/* Rogue's checks, in Rogue's order (frame and rx lock held). */
static void check_frame(sl_prbs *p, const lfsr *l, sl_frame *f) {
  uint32_t size = sl_frame_get_payload(f), bytes = l->bytes;
  uint8_t head[2 * MAX_BYTES] = {0}, got[MAX_BYTES], exp[MAX_BYTES];
  char msg[512], hg[3 * MAX_BYTES + 1], he[3 * MAX_BYTES + 1];
  sl_frame_read(f, head, 0, size < 2 * bytes ? size : 2 * bytes);
  uint32_t seq = sl_load_le32(head);
  if (sl_frame_get_error(f) != 0) {
    snprintf(msg, sizeof msg, "Frame error field is set: 0x%x", sl_frame_get_error(f));
    rx_error(p, msg, seq);
    return;
  }
  if (!size_ok(l, size)) {
    snprintf(msg, sizeof msg, "Size violation size=%u", size);
    rx_error(p, msg, seq);
    return;
  }
  uint32_t exp_seq = p->rx_seq;
  p->rx_seq = seq + 1;             /* resynchronise before further checks */
  uint64_t exp_size = ((uint64_t)sl_load_le32(head + bytes) + 1) * bytes;
  if (exp_size != size || (seq != 0 && exp_seq != 0 && seq != exp_seq)) {
    snprintf(msg, sizeof msg, "Bad header. expSize=%llu gotSize=%u expSeq=%u "
             "gotSeq=%u nxtSeq=%u", (unsigned long long)exp_size, size,
             exp_seq, seq, p->rx_seq);
    rx_error(p, msg, seq);
    return;
  }
  if (atomic_load(&p->check_payload)) {
    wordgen g = {l, use_fast(p, l), 0, seq, 0, {0}};
    prbs_get_word(g.v, head, bytes);
    size_t n = size / bytes - 2, i = prbs_check_frame_payload(f, &g, n, got, exp);
    if (i < n) {
      hex(hg, got, bytes);
      hex(he, exp, bytes);
      snprintf(msg, sizeof msg, "Bad value at index %zu. size=%u, got=%s, exp=%s",
               i, size / bytes - 1, hg, he);
      rx_error(p, msg, seq);
      return;
    }
  }
  p->rx_count++;
  p->rx_bytes += size;
  rate_update(&p->rx_rate, p->rx_count, p->rx_bytes);
}

static void gate_wake(void) {
  pthread_once(&gate_once, gate_init);
  pthread_mutex_lock(&gate_mutex);
  pthread_cond_broadcast(&gate_cond);
  pthread_mutex_unlock(&gate_mutex);
}

/* Rx is disabled: waits as Rogue does, until enabled, stopped, or the
** sender's thread gives up. 1: check the frame; 0: drop it. */
static int rx_gate(sl_prbs *p) {
  pthread_once(&gate_once, gate_init);
  pthread_mutex_lock(&gate_mutex);
  int on, nowait = p->has_nowait && pthread_equal(p->nowait, pthread_self());
  while (!(on = atomic_load(&p->rx_enable)) && !nowait && !atomic_load(&p->stopped) &&
         sl_wait_cond(&gate_cond, &gate_mutex, NULL) == SL_OK) {
  }
  pthread_mutex_unlock(&gate_mutex);
  if (on) return 1;
  pthread_mutex_lock(&p->rx);
  uint64_t all = ++p->rx_drops;
  pthread_mutex_unlock(&p->rx);
  /* a loss: told at the default level, except while stopping */
  sl_log_write(p->rx_log, atomic_load(&p->stopped) ? SL_LOG_DEBUG : SL_LOG_ERROR,
               "Rx is disabled: a frame %s was dropped unchecked (%llu in all)",
               nowait ? "from the thread that would have to enable it (not waited on)"
                      : "whose sender gave up waiting",
               (unsigned long long)all);
  return 0;
}

static void prbs_accept(sl_slave *s, sl_frame *f) {
  sl_prbs *p = (sl_prbs *)s->owner;
  if (!atomic_load(&p->rx_enable) && !rx_gate(p)) return;
  lfsr *l = cfg_get(p);
  sl_frame_lock(f);
  pthread_mutex_lock(&p->rx);
  check_frame(p, l, f);
  pthread_mutex_unlock(&p->rx);
  sl_frame_unlock(f);
  prbs_lfsr_unref(l);
}

static const sl_slave_ops prbs_slave_ops = {.accept_frame = prbs_accept};

/* ---- the generator thread ---- */

static void prbs_free(sl_prbs *p);

/* The generator (a worker: a disable frees it from waits downstream). */
static int tx_main(void *arg) {
  sl_prbs *p = arg;
  gen_self = p;
  pthread_mutex_lock(&p->tx);
  while (atomic_load(&p->run)) {
    uint32_t size = p->tx_size;
    pthread_mutex_unlock(&p->tx);
    int rc = sl_prbs_gen_frame(p, size);
    pthread_mutex_lock(&p->tx);
    if (rc == SL_EINVAL) {         /* the width changed under it */
      sl_log_write(p->tx_log, SL_LOG_ERROR, "Invalid frame size %u: "
                   "generator stopped", size);
      atomic_store(&p->run, 0);
      sl_worker_request_stop(&p->gen);
    }
    /* Sleep the period (re-read on each wake: setTxPeriod applies now). */
    struct timespec start;
    sl_clock_now(&start);
    for (;;) {
      uint32_t us = p->tx_period;
      if (rc == SL_ENOMEM && us == 0) us = 1000;      /* do not spin */
      if (us == 0 || !atomic_load(&p->run)) break;
      struct timespec until = start;
      sl_ts_add_us(&until, us);
      if (pthread_cond_timedwait(&p->tx_cond, &p->tx, &until) == ETIMEDOUT) break;
    }
  }
  p->tx_state = TX_EXITED;
  int orphan = p->orphan;
  pthread_cond_broadcast(&p->tx_cond);
  pthread_mutex_unlock(&p->tx);
  gen_self = NULL;
  if (!orphan) return 0;
  prbs_free(p);                    /* destroyed while we were busy */
  return SL_WORKER_FREED;
}

/* With ctl held: joins a thread that has left its loop. */
static void join_exited_ctl_(sl_prbs *p) {
  pthread_mutex_lock(&p->tx);
  int exited = p->tx_state == TX_EXITED;
  pthread_mutex_unlock(&p->tx);
  if (!exited) return;
  sl_worker_join(&p->gen);
  pthread_mutex_lock(&p->tx);
  p->tx_state = TX_NONE;
  pthread_mutex_unlock(&p->tx);
}

int sl_prbs_enable(sl_prbs *p, uint32_t size) {
  int rc = sl_prbs_check_size(p, size);
  if (rc != SL_OK) return rc;
  pthread_mutex_lock(&p->tx);
  int mine = gen_self == p, running = p->tx_state == TX_RUNNING;
  if (mine && p->hold_off > 0) {   /* a disable is waiting for us */
    rc = SL_EBUSY;
  } else if (running) {            /* also revives one that is stopping */
    p->tx_size = size;
    sl_worker_cancel_stop(&p->gen);
    atomic_store(&p->run, 1);
  }
  pthread_mutex_unlock(&p->tx);
  if (mine || running) return rc;
  pthread_mutex_lock(&p->ctl);
  pthread_mutex_lock(&p->tx);
  while (p->tx_state == TX_EXITED) {      /* it may end while we look */
    pthread_mutex_unlock(&p->tx);
    join_exited_ctl_(p);
    pthread_mutex_lock(&p->tx);
  }
  p->tx_size = size;
  atomic_store(&p->run, 1);
  if (p->tx_state == TX_RUNNING) {       /* another enable came first */
    sl_worker_cancel_stop(&p->gen);
  } else if (sl_worker_start(&p->gen, "PrbsTx", 0, tx_main, NULL, p) == 0) {
    p->tx_state = TX_RUNNING;            /* its loop starts once tx is free */
  } else {
    atomic_store(&p->run, 0);
    rc = SL_ENOMEM;
  }
  pthread_mutex_unlock(&p->tx);
  pthread_mutex_unlock(&p->ctl);
  return rc;
}

void sl_prbs_disable_nowait(sl_prbs *p) {
  pthread_mutex_lock(&p->tx);
  atomic_store(&p->run, 0);
  sl_worker_request_stop(&p->gen);   /* its waits downstream give up */
  pthread_cond_broadcast(&p->tx_cond);   /* its period sleep ends */
  pthread_mutex_unlock(&p->tx);
  gate_wake();                     /* our thread may wait in a checker */
}

void sl_prbs_finish(sl_prbs *p) {
  pthread_mutex_lock(&p->tx);
  atomic_store(&p->run, 0);
  pthread_cond_broadcast(&p->tx_cond);   /* its period sleep ends */
  pthread_mutex_unlock(&p->tx);
}

void sl_prbs_disable(sl_prbs *p) {
  if (gen_self == p) {             /* cannot join ourselves: joined later */
    sl_prbs_disable_nowait(p);
    return;
  }
  pthread_mutex_lock(&p->tx);
  p->hold_off++;                   /* the thread may not revive itself */
  pthread_mutex_unlock(&p->tx);
  sl_prbs_finish(p);
  if (sl_prbs_tx_wait(p, SL_PRBS_DISABLE_GRACE_US) != SL_OK) {
    sl_prbs_disable_nowait(p);
    sl_prbs_tx_wait(p, -1);
  }
  pthread_mutex_lock(&p->tx);
  p->hold_off--;
  pthread_mutex_unlock(&p->tx);
}

int sl_prbs_tx_wait(sl_prbs *p, int64_t timeout_us) {
  if (gen_self == p) return SL_EBUSY;
  struct timespec until;
  sl_deadline_after(&until, timeout_us < 0 ? 0 : timeout_us);
  pthread_mutex_lock(&p->tx);
  while (p->tx_state == TX_RUNNING && !atomic_load(&p->run)) {
    if (timeout_us < 0) pthread_cond_wait(&p->tx_cond, &p->tx);
    else if (pthread_cond_timedwait(&p->tx_cond, &p->tx, &until) == ETIMEDOUT) break;
  }
  int busy = p->tx_state == TX_RUNNING && !atomic_load(&p->run);
  pthread_mutex_unlock(&p->tx);
  if (busy) return SL_ETIMEDOUT;
  pthread_mutex_lock(&p->ctl);
  join_exited_ctl_(p);
  pthread_mutex_unlock(&p->ctl);
  return SL_OK;
}

/* ---- the node ---- */

static void prbs_cancel(sl_object *obj) {
  sl_prbs *p = (sl_prbs *)obj;
  atomic_store(&p->stopped, 1);    /* disabled checkers stop waiting */
  sl_prbs_disable_nowait(p);
}

static void prbs_stop(sl_object *obj) {
  prbs_cancel(obj);
  sl_prbs_tx_wait((sl_prbs *)obj, STOP_WAIT_US);
}

static void prbs_free(sl_prbs *p) {
  sl_master_fini(&p->master);
  sl_slave_fini(&p->slave);
  prbs_lfsr_unref(p->lfsr);
  pthread_mutex_destroy(&p->cfg);
  pthread_mutex_destroy(&p->ctl);
  pthread_mutex_destroy(&p->tx);
  pthread_mutex_destroy(&p->rx);
  pthread_cond_destroy(&p->tx_cond);
  free(p);
}

/*
** The last reference is gone. Normally the thread is stopped and joined
** here. Should that take too long (a frame stuck downstream), or should
** this run on the generator thread itself, the thread is detached and
** frees the node when its frame completes.
*/
static void prbs_destroy(sl_object *obj) {
  sl_prbs *p = (sl_prbs *)obj;
  prbs_stop(obj);
  pthread_mutex_lock(&p->ctl);
  pthread_mutex_lock(&p->tx);
  int orphan = p->tx_state == TX_RUNNING;
  if (orphan) {
    p->orphan = 1;
    sl_worker_detach(&p->gen);
  }
  pthread_mutex_unlock(&p->tx);
  if (!orphan) join_exited_ctl_(p);
  pthread_mutex_unlock(&p->ctl);
  if (!orphan) {
    prbs_free(p);
  } else if (gen_self != p) {
    sl_log_write(p->tx_log, SL_LOG_WARNING, "Generator busy at destroy: it "
                 "frees the Prbs when its frame completes");
  }
}

static size_t prbs_counters(sl_object *obj, sl_counter *out, size_t max) {
  sl_prbs_stats s;
  sl_prbs_get_stats((sl_prbs *)obj, &s);
  const sl_counter all[] = {
      {"txFrames", s.tx_count}, {"txBytes", s.tx_bytes},
      {"rxFrames", s.rx_count}, {"rxBytes", s.rx_bytes},
      {"errors", s.rx_errors + s.tx_errors}, {"drops", s.rx_drops}};
  return sl_counters_put(out, max, all, sizeof all / sizeof all[0]);
}

static void tap_mask(uint64_t mask[LIMBS], const uint8_t *taps, size_t n) {
  memset(mask, 0, LIMBS * sizeof mask[0]);
  for (size_t i = 0; i < n; i++) mask[taps[i] / 64] ^= UINT64_C(1) << (taps[i] % 64);
}

static const sl_class prbs_class = {.name = "Prbs",
                                    .destroy = prbs_destroy,
                                    .stop = prbs_stop,
                                    .cancel = prbs_cancel,
                                    .counters = prbs_counters};

sl_prbs *sl_prbs_new(sl_error *err) {
  static const uint8_t taps[] = {1, 2, 6, 31};
  uint64_t mask[LIMBS];
  tap_mask(mask, taps, sizeof taps);
  sl_prbs *p = calloc(1, sizeof *p);
  if (p == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&p->obj, &prbs_class);
  p->lfsr = prbs_lfsr_new(32, mask);
  if (p->lfsr == NULL) goto out_free;
  if (sl_slave_init(&p->slave, &prbs_slave_ops, &p->obj) != SL_OK) goto out_lfsr;
  if (sl_master_init(&p->master, &p->obj) != SL_OK) goto out_slave;
  p->tx_log = sl_log_get("prbs.tx");
  p->rx_log = sl_log_get("prbs.rx");
  pthread_mutex_init(&p->cfg, NULL);
  pthread_mutex_init(&p->ctl, NULL);
  pthread_mutex_init(&p->tx, NULL);
  pthread_mutex_init(&p->rx, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->tx_cond, &ca);
  pthread_condattr_destroy(&ca);
  atomic_init(&p->gen_payload, 1);
  atomic_init(&p->check_payload, 1);
  atomic_init(&p->fast, 1);
  atomic_init(&p->rx_enable, 1);
  p->tx_rate.time = p->rx_rate.time = sl_clock_coarse_s();
  return p;
out_slave:
  sl_slave_fini(&p->slave);
out_lfsr:
  prbs_lfsr_unref(p->lfsr);
out_free:
  free(p);
  return sl_fail(err, SL_ENOMEM, NULL);
}

sl_object *sl_prbs_object(sl_prbs *p) { return p != NULL ? &p->obj : NULL; }

sl_prbs *sl_prbs_from_object(sl_object *obj) {
  return sl_object_is(obj, &prbs_class) ? (sl_prbs *)obj : NULL;
}

/* ---- configuration ---- */

/* Replaces the LFSR description with one of the given width and taps. */
static int cfg_set(sl_prbs *p, const uint32_t *width, const uint64_t *taps) {
  pthread_mutex_lock(&p->cfg);
  lfsr *old = p->lfsr;
  lfsr *l = prbs_lfsr_new(width ? *width : old->width, taps ? taps : old->taps);
  if (l != NULL) p->lfsr = l;
  pthread_mutex_unlock(&p->cfg);
  if (l == NULL) return SL_ENOMEM;
  prbs_lfsr_unref(old);
  return SL_OK;
}

int sl_prbs_set_width(sl_prbs *p, uint32_t bits) {
  if (bits < 32 || bits > 8 * MAX_BYTES || bits % 32 != 0) return SL_EINVAL;
  return cfg_set(p, &bits, NULL);
}

int sl_prbs_set_taps(sl_prbs *p, const uint8_t *taps, size_t n) {
  uint64_t mask[LIMBS];
  tap_mask(mask, taps, n);
  return cfg_set(p, NULL, mask);
}

uint32_t sl_prbs_get_width(sl_prbs *p) {
  lfsr *l = cfg_get(p);
  uint32_t w = l->width;
  prbs_lfsr_unref(l);
  return w;
}

uint32_t sl_prbs_min_size(sl_prbs *p) { return 3 * sl_prbs_get_width(p) / 8; }

int sl_prbs_check_size(sl_prbs *p, uint32_t size) {
  lfsr *l = cfg_get(p);
  int ok = size_ok(l, size);
  prbs_lfsr_unref(l);
  return ok ? SL_OK : SL_EINVAL;
}

void sl_prbs_set_tx_seq(sl_prbs *p, uint32_t seq) {
  pthread_mutex_lock(&p->tx);
  p->tx_seq = seq;
  pthread_mutex_unlock(&p->tx);
}

uint32_t sl_prbs_get_tx_seq(sl_prbs *p) {
  pthread_mutex_lock(&p->tx);
  uint32_t seq = p->tx_seq;
  pthread_mutex_unlock(&p->tx);
  return seq;
}

int sl_prbs_tx_enabled(sl_prbs *p) { return atomic_load(&p->run); }

void sl_prbs_set_tx_period(sl_prbs *p, uint32_t us) {
  pthread_mutex_lock(&p->tx);
  p->tx_period = us;
  pthread_cond_broadcast(&p->tx_cond);   /* a sleeping generator re-reads it */
  pthread_mutex_unlock(&p->tx);
}

uint32_t sl_prbs_get_tx_period(sl_prbs *p) {
  pthread_mutex_lock(&p->tx);
  uint32_t us = p->tx_period;
  pthread_mutex_unlock(&p->tx);
  return us;
}

void sl_prbs_set_rx_enable(sl_prbs *p, int on) {
  atomic_store(&p->rx_enable, on != 0);
  if (on) gate_wake();
}

int sl_prbs_get_rx_enable(sl_prbs *p) { return atomic_load(&p->rx_enable); }

void sl_prbs_set_nowait_thread(sl_prbs *p, pthread_t thread) {
  pthread_mutex_lock(&gate_mutex);
  p->nowait = thread;
  p->has_nowait = 1;
  pthread_mutex_unlock(&gate_mutex);
}

void sl_prbs_check_payload(sl_prbs *p, int on) { atomic_store(&p->check_payload, on != 0); }
void sl_prbs_gen_payload(sl_prbs *p, int on) { atomic_store(&p->gen_payload, on != 0); }
void sl_prbs_send_count(sl_prbs *p, int on) { atomic_store(&p->send_count, on != 0); }
void sl_prbs_set_fast_path(sl_prbs *p, int on) { atomic_store(&p->fast, on != 0); }

void sl_prbs_get_stats(sl_prbs *p, sl_prbs_stats *out) {
  pthread_mutex_lock(&p->tx);
  out->tx_count = p->tx_count;
  out->tx_bytes = p->tx_bytes;
  out->tx_errors = p->tx_errors;
  out->tx_rate = p->tx_rate.rate;
  out->tx_bw = p->tx_rate.bw;
  pthread_mutex_unlock(&p->tx);
  pthread_mutex_lock(&p->rx);
  out->rx_count = p->rx_count;
  out->rx_bytes = p->rx_bytes;
  out->rx_errors = p->rx_errors;
  out->rx_drops = p->rx_drops;
  out->rx_rate = p->rx_rate.rate;
  out->rx_bw = p->rx_rate.bw;
  pthread_mutex_unlock(&p->rx);
}

void sl_prbs_reset_count(sl_prbs *p) {
  pthread_mutex_lock(&p->tx);
  p->tx_count = p->tx_bytes = p->tx_errors = 0;
  p->tx_rate.count = p->tx_rate.bytes = 0;
  pthread_mutex_unlock(&p->tx);
  pthread_mutex_lock(&p->rx);
  p->rx_count = p->rx_bytes = p->rx_errors = p->rx_drops = 0;
  p->rx_rate.count = p->rx_rate.bytes = 0;
  pthread_mutex_unlock(&p->rx);
}
