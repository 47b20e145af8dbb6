/*
** Register transactions: ids, completion from any thread, timeouts, and
** parts of a split (a Hub's sub-transactions).
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streamlua/memory.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"

#include "../core/clock.h"

struct sl_transaction {
  atomic_int refs;
  uint32_t id;
  uint64_t address;
  uint32_t size;
  uint32_t type;
  uint64_t timeout_us;
  uint8_t *data;                 /* owned unless this is a part */
  sl_transaction *parent;        /* a part holds a reference on it */
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  /* under mutex */
  int done, failed, gave_up;
  char *error;                   /* NULL or appended text */
  size_t error_len;
  struct timespec deadline;
  struct timespec started;       /* when the timer started */
  int deadline_set;
  int holds;                     /* sl_transaction_hold: the deadline waits */
  uint32_t parts_pending;        /* parts not yet complete */
  int parts_closed;              /* sl_transaction_parts_done was called */
  char *part_error;              /* the first failed part's error */
  void (*on_done)(sl_transaction *t, void *arg);
  void *on_done_arg;
  sl_tran_helper *helper;        /* while pending */
};

static pthread_mutex_t id_mutex = PTHREAD_MUTEX_INITIALIZER;
static uint32_t id_next = 1;

static uint32_t next_id(void) {
  pthread_mutex_lock(&id_mutex);
  if (id_next == 0) id_next = 1;   /* 0 is never issued */
  uint32_t id = id_next++;
  pthread_mutex_unlock(&id_mutex);
  return id;
}

const char *sl_mem_type_name(uint32_t type) {
  switch (type) {
    case SL_MEM_READ: return "read";
    case SL_MEM_WRITE: return "write";
    case SL_MEM_POST: return "post";
    case SL_MEM_VERIFY: return "verify";
    default: return "unknown";
  }
}

int sl_mem_type_is_write(uint32_t type) {
  return type == SL_MEM_WRITE || type == SL_MEM_POST;
}

static sl_transaction *alloc_tran(uint64_t address, uint32_t size,
                                  uint32_t type, uint64_t timeout_us) {
  sl_transaction *t = calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  if (pthread_mutex_init(&t->mutex, NULL) != 0) goto fail_mutex;
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca) != 0) goto fail_cond;
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&t->cond, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0) goto fail_cond;
  atomic_init(&t->refs, 1);
  t->id = next_id();
  t->address = address;
  t->size = size;
  t->type = type;
  t->timeout_us = timeout_us;
  return t;
fail_cond:
  pthread_mutex_destroy(&t->mutex);
fail_mutex:
  free(t);
  return NULL;
}

sl_transaction *sl_transaction_new(uint64_t address, uint32_t size,
                                   uint32_t type, const void *data,
                                   uint64_t timeout_us) {
  sl_transaction *t = alloc_tran(address, size, type, timeout_us);
  if (t == NULL) return NULL;
  t->data = calloc(size > 0 ? size : 1, 1);
  if (t->data == NULL) {
    sl_transaction_unref(t);
    return NULL;
  }
  if (data != NULL && size > 0) memcpy(t->data, data, size);
  return t;
}

sl_transaction *sl_transaction_ref(sl_transaction *t) {
  atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
  return t;
}

void sl_transaction_unref(sl_transaction *t) {
  if (t == NULL) return;
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
  if (t->parent != NULL) sl_transaction_unref(t->parent);
  else free(t->data);
  free(t->error);
  free(t->part_error);
  pthread_cond_destroy(&t->cond);
  pthread_mutex_destroy(&t->mutex);
  free(t);
}

uint32_t sl_transaction_id(const sl_transaction *t) { return t->id; }
uint64_t sl_transaction_address(const sl_transaction *t) { return t->address; }
uint32_t sl_transaction_size(const sl_transaction *t) { return t->size; }
uint32_t sl_transaction_type(const sl_transaction *t) { return t->type; }
uint64_t sl_transaction_timeout(const sl_transaction *t) { return t->timeout_us; }
uint8_t *sl_transaction_data(sl_transaction *t) { return t->data; }

/* Appends text to the error; mutex held. */
static void append_error(sl_transaction *t, const char *text) {
  size_t n = strlen(text);
  char *e = realloc(t->error, t->error_len + n + 1);
  if (e == NULL) return;   /* the transaction still fails, without text */
  memcpy(e + t->error_len, text, n + 1);
  t->error = e;
  t->error_len += n;
}

static void part_finished(sl_transaction *part, int failed);

/* Completes t (failed or not), wakes waiters, runs the hook and tells the
** parent. Returns 1 if this call completed it. */
static int complete(sl_transaction *t, const char *error) {
  pthread_mutex_lock(&t->mutex);
  if (error != NULL) append_error(t, error);
  if (t->done) {
    pthread_mutex_unlock(&t->mutex);
    return 0;
  }
  if (error != NULL && t->error == NULL) append_error(t, "");
  t->done = 1;
  t->failed = error != NULL;
  void (*fn)(sl_transaction *, void *) = t->on_done;
  void *arg = t->on_done_arg;
  t->on_done = NULL;
  t->helper = NULL;
  pthread_cond_broadcast(&t->cond);
  pthread_mutex_unlock(&t->mutex);
  sl_transaction_ref(t);            /* the hook may drop the last other ref */
  if (fn != NULL) fn(t, arg);
  if (t->parent != NULL) part_finished(t, error != NULL);
  sl_transaction_unref(t);
  return 1;
}

int sl_transaction_done(sl_transaction *t) { return complete(t, NULL); }

int sl_transaction_verror(sl_transaction *t, const char *fmt, va_list ap) {
  char small[256];
  va_list aq;
  va_copy(aq, ap);
  int n = vsnprintf(small, sizeof small, fmt, aq);
  va_end(aq);
  if (n < 0) return complete(t, "error");
  if ((size_t)n < sizeof small) return complete(t, small);
  char *big = malloc((size_t)n + 1);
  if (big == NULL) return complete(t, small);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  int rc = complete(t, big);
  free(big);
  return rc;
}

int sl_transaction_error(sl_transaction *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = sl_transaction_verror(t, fmt, ap);
  va_end(ap);
  return rc;
}

int sl_transaction_is_done(sl_transaction *t) {
  pthread_mutex_lock(&t->mutex);
  int d = t->done;
  pthread_mutex_unlock(&t->mutex);
  return d;
}

int sl_transaction_failed(sl_transaction *t) {
  pthread_mutex_lock(&t->mutex);
  int f = t->failed;
  pthread_mutex_unlock(&t->mutex);
  return f;
}

int sl_transaction_timed_out(sl_transaction *t) {
  pthread_mutex_lock(&t->mutex);
  int f = t->gave_up;
  pthread_mutex_unlock(&t->mutex);
  return f;
}

int sl_transaction_expired(sl_transaction *t) {
  pthread_mutex_lock(&t->mutex);
  int e = t->done || t->gave_up;
  pthread_mutex_unlock(&t->mutex);
  if (!e && t->parent != NULL) e = sl_transaction_expired(t->parent);
  return e;
}

size_t sl_transaction_get_error(sl_transaction *t, char *buf, size_t n) {
  pthread_mutex_lock(&t->mutex);
  const char *e = t->error != NULL ? t->error : "";
  size_t len = t->error_len;
  if (n > 0) snprintf(buf, n, "%s", e);
  pthread_mutex_unlock(&t->mutex);
  return len;
}

void sl_transaction_on_done(sl_transaction *t,
                            void (*fn)(sl_transaction *t, void *arg),
                            void *arg) {
  pthread_mutex_lock(&t->mutex);
  int d = t->done;
  if (!d) {
    t->on_done = fn;
    t->on_done_arg = arg;
  }
  pthread_mutex_unlock(&t->mutex);
  if (d) fn(t, arg);
}

void sl_transaction_set_helper(sl_transaction *t, sl_tran_helper *h) {
  pthread_mutex_lock(&t->mutex);
  if (!t->done) t->helper = h;
  pthread_mutex_unlock(&t->mutex);
}

int sl_transaction_help(sl_transaction *t, long us) {
  pthread_mutex_lock(&t->mutex);
  sl_tran_helper *h = t->done ? NULL : t->helper;
  int done = t->done;
  if (h != NULL) atomic_fetch_add(&h->users, 1);   /* its slave is still there */
  pthread_mutex_unlock(&t->mutex);
  if (h == NULL) return done ? 1 : -1;
  int rc = h->help(h, t, us);
  atomic_fetch_sub(&h->users, 1);
  return rc;
}

void sl_transaction_start_timer(sl_transaction *t) {
  struct timespec now, ts;
  sl_clock_now(&now);
  sl_deadline_after(&ts, (int64_t)t->timeout_us);
  pthread_mutex_lock(&t->mutex);
  t->started = now;
  t->deadline = ts;
  t->deadline_set = 1;
  pthread_mutex_unlock(&t->mutex);
}

/* The transaction a part belongs to (itself when it is none): the one a
** waiter times. */
static sl_transaction *root_of(sl_transaction *t) {
  while (t->parent != NULL) t = t->parent;
  return t;
}

void sl_transaction_hold(sl_transaction *t, int on) {
  sl_transaction *r = root_of(t);
  pthread_mutex_lock(&r->mutex);
  if (on) r->holds++;
  else if (r->holds > 0) r->holds--;
  pthread_mutex_unlock(&r->mutex);
}

void sl_transaction_refresh(sl_transaction *t, sl_transaction *since) {
  sl_transaction *r = root_of(t), *s = root_of(since);
  struct timespec from;
  pthread_mutex_lock(&s->mutex);
  int known = s->deadline_set;
  from = s->started;
  pthread_mutex_unlock(&s->mutex);
  if (!known) return;
  struct timespec ts;
  sl_deadline_after(&ts, (int64_t)r->timeout_us);
  pthread_mutex_lock(&r->mutex);
  if (!r->done && r->deadline_set && sl_ts_cmp(&r->started, &from) >= 0) r->deadline = ts;
  pthread_mutex_unlock(&r->mutex);
}

int sl_transaction_check_deadline(sl_transaction *t) {
  struct timespec now;
  sl_clock_now(&now);
  pthread_mutex_lock(&t->mutex);
  int done = t->done;
  int late = !done && t->holds == 0 && t->deadline_set && sl_ts_cmp(&now, &t->deadline) > 0;
  if (late) t->gave_up = 1;
  pthread_mutex_unlock(&t->mutex);
  if (late) {
    sl_transaction_error(t, SL_MEM_TIMEOUT_FMT, (unsigned)t->id);
    return 1;
  }
  return done;
}

int sl_transaction_give_up(sl_transaction *t, const char *why) {
  pthread_mutex_lock(&t->mutex);
  int done = t->done;
  if (!done) t->gave_up = 1;
  pthread_mutex_unlock(&t->mutex);
  return !done && sl_transaction_error(t, "%s", why);
}

int sl_transaction_wait_ms(sl_transaction *t, long ms) {
  struct timespec ts;
  sl_deadline_after(&ts, (int64_t)ms * 1000);
  pthread_mutex_lock(&t->mutex);
  while (!t->done) {
    if (pthread_cond_timedwait(&t->cond, &t->mutex, &ts) == ETIMEDOUT) break;
  }
  int d = t->done;
  pthread_mutex_unlock(&t->mutex);
  return d;
}

/* ---- parts ---- */

sl_transaction *sl_transaction_new_part(sl_transaction *parent,
                                        uint32_t offset, uint32_t size,
                                        uint64_t address) {
  if ((uint64_t)offset + size > parent->size) return NULL;
  sl_transaction *t = alloc_tran(address, size, parent->type,
                                 parent->timeout_us);
  if (t == NULL) return NULL;
  t->data = parent->data + offset;
  t->parent = sl_transaction_ref(parent);
  pthread_mutex_lock(&parent->mutex);
  parent->parts_pending++;
  pthread_mutex_unlock(&parent->mutex);
  return t;
}

/* Completes the parent when the last part is in; mutex not held. The
** first failure is kept (Rogue keeps only the last part's). A part that is
** the whole parent (a hub that only adds its offset) passes its error on
** as it is, as Rogue's hub forwarding the transaction itself does. */
static void finish_parent(sl_transaction *p) {
  pthread_mutex_lock(&p->mutex);
  int ready = p->parts_closed && p->parts_pending == 0 && !p->done;
  char *err = ready ? p->part_error : NULL;
  if (ready) p->part_error = NULL;
  pthread_mutex_unlock(&p->mutex);
  if (!ready) return;
  if (err != NULL) {
    complete(p, err);
    free(err);
  } else {
    complete(p, NULL);
  }
}

static void part_finished(sl_transaction *part, int failed) {
  sl_transaction *p = part->parent;
  char *msg = NULL;
  if (failed) {
    char e[512];
    sl_transaction_get_error(part, e, sizeof e);
    size_t n = strlen(e) + 96;
    msg = malloc(n);
    if (msg != NULL && part->size == p->size)   /* not split: Rogue forwards it */
      snprintf(msg, n, "%s", e);
    else if (msg != NULL)
      snprintf(msg, n, "Transaction error. Subtransaction %u failed with error: %s.",
               (unsigned)part->id, e);
  }
  pthread_mutex_lock(&p->mutex);
  if (p->parts_pending > 0) p->parts_pending--;
  if (failed && p->part_error == NULL) {
    p->part_error = msg != NULL ? msg : strdup("Transaction error.");
    msg = NULL;
  }
  pthread_mutex_unlock(&p->mutex);
  free(msg);
  finish_parent(p);
}

void sl_transaction_parts_done(sl_transaction *parent) {
  pthread_mutex_lock(&parent->mutex);
  parent->parts_closed = 1;
  pthread_mutex_unlock(&parent->mutex);
  finish_parent(parent);
}
