/*
** The stream reader: one thread per replay turns Rogue records back into
** frames (see stream_reader.h).
**
** Two locks. `control` serialises open, close and close_wait, the calls
** that start or join the thread, so two of them never join the same
** thread. `lock` guards the state the thread shares (active, open, the
** result queue, the notify hook). The thread owns the file descriptor
** and the replay position; nobody else touches them while it runs.
*/
#include "streamlua/stream_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/log.h"
#include "streamlua/pool.h"
#include "streamlua/status.h"
#include "streamlua/mailbox.h"
#include "streamlua/worker.h"
#include "streamlua/wait.h"

#include "../core/bytes.h"
#include "../core/clock.h"

#define NAME_MAX_LEN 4096
#define POLL_MS 20                    /* stop checks while a pipe is idle */
#define DESTROY_WAIT_S 1.0            /* destroy's wait for a busy thread */

struct sl_stream_reader {
  sl_object obj;
  sl_master master;
  pthread_mutex_t control;      /* open / close / close_wait */
  pthread_mutex_t lock;         /* the fields below, except those marked */
  pthread_cond_t cond;          /* `active` went to 0 */
  sl_worker worker;             /* the replay thread (start/join: control) */
  int active;                   /* the thread runs */
  int open;                     /* the thread has a file open */
  int orphaned;                 /* destroyed: the thread frees the reader */
  atomic_uint_least32_t max_record;   /* payload bytes */
  void (*notify)(void *arg);
  void (*notify_release)(void *arg);
  void *notify_arg;
  sl_mailbox *results;           /* malloc'd sl_stream_reader_result items */
  /* the replay (thread-owned while active) */
  int fd;
  int pollable;                 /* not a regular file: reads may wait */
  char name[NAME_MAX_LEN + 16]; /* the file being read */
  char base[NAME_MAX_LEN];      /* split mode: the name without ".1" */
  int split;
  uint64_t pos, known;          /* offset in the file, its size as last seen */
  atomic_uint_least64_t tx_frames, tx_bytes, errors, files;
  sl_log *log;
};


/*
** A pipe or a device may have nothing to read for a long time: wait for it
** in short polls so that a stop request is seen. 0 when there is data (or
** an end), -1 when stopping. Regular files never wait.
*/
static int wait_readable(sl_stream_reader *r) {
  if (!r->pollable) return 0;
  struct pollfd pfd = {r->fd, POLLIN, 0};
  while (!sl_worker_stopping(&r->worker)) {
    int k = poll(&pfd, 1, POLL_MS);
    if (k != 0 && !(k < 0 && errno == EINTR)) return 0;
  }
  return -1;
}

/* Reads up to n bytes; fewer only at the end of the file. -1 on error
** (errno set), -2 when a stop came while waiting for data. */
static ssize_t read_full(sl_stream_reader *r, void *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    if (wait_readable(r) != 0) return -2;
    ssize_t k = read(r->fd, (uint8_t *)p + got, n - got);
    if (k == 0) break;
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    got += (size_t)k;
  }
  return (ssize_t)got;
}

static void count(atomic_uint_least64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Ends the replay with an error: text for the result, a warning logged. */
static int fail(sl_stream_reader *r, sl_stream_reader_result *res,
                const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(sl_stream_reader *r, sl_stream_reader_result *res,
                const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->error, sizeof res->error, fmt, ap);
  va_end(ap);
  sl_log_write(r->log, SL_LOG_WARNING, "%s", res->error);
  count(&r->errors, 1);
  return 0;
}

static void set_open(sl_stream_reader *r, int open) {
  pthread_mutex_lock(&r->lock);
  r->open = open;
  pthread_mutex_unlock(&r->lock);
}

/* The thread's file from now on; pipes and devices are polled. */
static void use_fd(sl_stream_reader *r, int fd) {
  struct stat st;
  r->fd = fd;
  r->pollable = fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
  r->pos = r->known = 0;
}

static void close_file(sl_stream_reader *r) {
  if (r->fd < 0) return;
  close(r->fd);
  r->fd = -1;
  set_open(r, 0);
}

/* Split mode: the next file, 1 if it opened. Its absence ends the replay. */
static int next_file(sl_stream_reader *r, sl_stream_reader_result *res,
                     uint32_t *index) {
  close_file(r);
  if (!r->split) return 0;
  snprintf(r->name, sizeof r->name, "%s.%u", r->base, ++*index);
  int fd = open(r->name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  use_fd(r, fd);
  set_open(r, 1);
  res->files++;
  count(&r->files, 1);
  return 1;
}

/* How many of `want` bytes the file holds past pos (it may be growing;
** a pipe's size is unknown). */
static uint32_t bytes_left(sl_stream_reader *r, uint32_t want) {
  struct stat st;
  if (r->pollable) return want;
  if (r->pos + want > r->known && fstat(r->fd, &st) == 0 && st.st_size >= 0)
    r->known = (uint64_t)st.st_size;
  if (r->known <= r->pos) return 0;
  return r->known - r->pos < want ? (uint32_t)(r->known - r->pos) : want;
}

/*
** One record's payload into a frame from the primary slave, then sent.
** A short payload still goes out, with error 0x1, and ends the replay.
** The request is capped at what the file holds, so a corrupt size asks
** for no more memory than the file could fill; on a pipe, where the size
** is all there is, the max record setting bounds it.
*/
static int send_record(sl_stream_reader *r, sl_stream_reader_result *res,
                       uint32_t size, uint32_t meta) {
  uint32_t want = bytes_left(r, size);
  uint32_t max = (uint32_t)atomic_load_explicit(&r->max_record,
                                                memory_order_relaxed);
  if (want > max) {
    fail(r, res, "Record of %u bytes at offset %llu of %s exceeds the limit "
         "of %u", size, (unsigned long long)(r->pos - 8), r->name, max);
    return 0;
  }
  sl_pool_req_status(NULL);   /* forget an older refusal on this thread */
  sl_frame *f = sl_master_req_frame(&r->master, want, 1);
  uint64_t lim;
  if (f == NULL && sl_pool_req_status(&lim) == SL_EINVAL)
    return fail(r, res, "a frame of %u bytes for %s exceeds the pool's limit "
                "of %llu", want, r->name, (unsigned long long)lim);
  if (f == NULL)
    return fail(r, res, "cannot allocate a frame of %u bytes for %s", want,
                r->name);
  sl_frame_set_flags(f, (uint16_t)(meta & 0xffff));
  sl_frame_set_error(f, (uint8_t)(meta >> 16));
  sl_frame_set_channel(f, (uint8_t)(meta >> 24));
  sl_frame_iter it;
  sl_frame_iter_write(&it, f, 0);
  uint32_t got = 0;
  int read_err = 0;
  while (got < size && !sl_frame_iter_at_end(&it)) {
    uint32_t chunk = sl_frame_iter_rem_buffer(&it);
    if (chunk > size - got) chunk = size - got;
    ssize_t k = read_full(r, sl_frame_iter_ptr(&it), chunk);
    if (k == -2) goto out_stopped;
    if (k < 0) {
      read_err = errno;
      break;
    }
    got += (uint32_t)k;
    sl_frame_iter_advance(&it, (uint32_t)k);
    if ((uint32_t)k < chunk) break;
  }
  sl_frame_set_payload(f, got);
  r->pos += got;
  int whole = got == size;
  if (!whole) {
    if (read_err != 0)
      fail(r, res, "read failed on %s: %s", r->name, strerror(read_err));
    else
      fail(r, res, "Short read in %s: record needs %u bytes, got %u", r->name,
           size, got);
    sl_frame_set_error(f, 0x1);
    close_file(r);
  }
  sl_master_send_frame(&r->master, f);
  sl_frame_unref(f);
  res->frames++;
  res->bytes += got;
  count(&r->tx_frames, 1);
  count(&r->tx_bytes, got);
  return whole;

out_stopped:            /* a stop while a pipe was idle: the part is dropped */
  sl_frame_unref(f);
  snprintf(res->error, sizeof res->error, "stopped");
  return 0;
}

/* The record loop over every file of the replay. */
static void replay(sl_stream_reader *r, sl_stream_reader_result *res) {
  uint32_t index = 1;
  for (;;) {
    if (sl_worker_stopping(&r->worker)) {
      snprintf(res->error, sizeof res->error, "stopped");
      return;
    }
    uint8_t hdr[8];
    ssize_t n = read_full(r, hdr, 8);
    if (n == 0) {
      if (next_file(r, res, &index)) continue;
      return;
    }
    if (n == -2) {
      snprintf(res->error, sizeof res->error, "stopped");
      return;
    }
    if (n < 0) {
      fail(r, res, "read failed on %s: %s", r->name, strerror(errno));
      return;
    }
    if (n >= 4 && sl_load_le32(hdr) == 0) {
      fail(r, res, "Bad size read 0 at offset %llu of %s",
           (unsigned long long)r->pos, r->name);
      return;
    }
    if (n < 8) {
      fail(r, res, "Failed to read a whole record header at offset %llu of %s",
           (unsigned long long)r->pos, r->name);
      return;
    }
    r->pos += 8;
    uint32_t size = sl_load_le32(hdr);
    if (size <= 4) continue;                /* no payload, no frame */
    if (!send_record(r, res, size - 4, sl_load_le32(hdr + 4))) return;
  }
}

static void result_free(void *item) { free(item); }

static const sl_mailbox_ops result_items = {NULL, result_free, NULL};

/* The results mailbox's notify: the hook set now, called unlocked. */
static void results_notify(void *arg) {
  sl_stream_reader *r = arg;
  pthread_mutex_lock(&r->lock);
  void (*notify)(void *) = r->notify;
  void *notify_arg = r->notify_arg;
  pthread_mutex_unlock(&r->lock);
  if (notify != NULL) notify(notify_arg);
}

/* Queues a copy of res, the oldest result dropped first when full. */
static void push_result(sl_stream_reader *r, const sl_stream_reader_result *res) {
  sl_stream_reader_result *item = malloc(sizeof *item);
  if (item == NULL) {
    sl_log_write(r->log, SL_LOG_WARNING, "Out of memory: a replay's result is lost");
    return;
  }
  *item = *res;
  int rc;
  while ((rc = sl_mailbox_try_put(r->results, item)) == SL_EBUSY) {
    void *old;
    if (sl_mailbox_take(r->results, &old, 1) == 1) free(old);
  }
  if (rc != SL_OK) free(item);
}

static void reader_free(sl_stream_reader *r);

static int reader_main(void *arg) {
  sl_stream_reader *r = arg;
  sl_stream_reader_result res;
  memset(&res, 0, sizeof res);
  res.files = 1;
  replay(r, &res);
  close_file(r);
  sl_log_write(r->log, SL_LOG_INFO,
               "Replay of %s%s done: %llu frames, %llu bytes, %u file(s)%s%s",
               r->split ? r->base : r->name, r->split ? ".*" : "",
               (unsigned long long)res.frames, (unsigned long long)res.bytes,
               res.files, res.error[0] ? ": " : "", res.error);
  push_result(r, &res);
  pthread_mutex_lock(&r->lock);
  r->active = 0;
  pthread_cond_broadcast(&r->cond);
  int orphaned = r->orphaned;
  pthread_mutex_unlock(&r->lock);
  if (!orphaned) return 0;
  reader_free(r);                 /* destroy left the reader to this thread */
  return SL_WORKER_FREED;
}

/* The thread has ended, or the deadline (0: none) has passed. */
typedef struct end_wait {
  sl_stream_reader *r;
  double deadline;
} end_wait;

static int ended_or_late(void *arg) {
  end_wait *ew = arg;
  return !sl_stream_reader_is_active(ew->r) ||
         (ew->deadline > 0 && sl_clock_s() >= ew->deadline);
}

/* Stops and joins. The wait runs the caller's wait hook (wait.h), so a
** thread blocked on a mailbox the caller serves can still finish. */
static void close_nolock_(sl_stream_reader *r) {
  sl_worker_stop(&r->worker);
}

/* ---- the object ---- */

static void reader_free(sl_stream_reader *r) {
  if (r->notify_release != NULL) r->notify_release(r->notify_arg);
  sl_mailbox_free(r->results);
  sl_master_fini(&r->master);
  pthread_cond_destroy(&r->cond);
  pthread_mutex_destroy(&r->lock);
  pthread_mutex_destroy(&r->control);
  free(r);
}

/*
** Stops and joins the thread. A thread still inside a sendFrame after
** DESTROY_WAIT_S (blocked on a slave nobody serves any more) is not
** waited for: it is detached and frees the reader itself when it ends.
*/
static void reader_destroy(sl_object *obj) {
  sl_stream_reader *r = (sl_stream_reader *)obj;
  sl_stream_reader_request_stop(r);
  end_wait ew = {r, sl_clock_s() + DESTROY_WAIT_S};
  sl_wait_until(ended_or_late, &ew);
  /* Once orphaned is seen the thread may free r: detach before that. */
  pthread_mutex_lock(&r->lock);
  int orphan = r->active;
  sl_log *log = r->log;
  if (orphan) sl_worker_detach(&r->worker);
  r->orphaned = orphan;
  pthread_mutex_unlock(&r->lock);
  if (orphan) {
    sl_log_write(log, SL_LOG_WARNING,
                 "Replay thread still busy in sendFrame; left to end by itself");
    return;
  }
  sl_stream_reader_close(r);
  reader_free(r);
}

static void reader_stop(sl_object *obj) {
  sl_stream_reader_close((sl_stream_reader *)obj);
}

static void reader_cancel(sl_object *obj) {
  sl_stream_reader_request_stop((sl_stream_reader *)obj);
}

static size_t reader_counters(sl_object *obj, sl_counter *out, size_t max) {
  sl_stream_reader *r = (sl_stream_reader *)obj;
  sl_counter c[] = {{"txFrames", atomic_load(&r->tx_frames)},
                    {"txBytes", atomic_load(&r->tx_bytes)},
                    {"errors", atomic_load(&r->errors)},
                    {"files", atomic_load(&r->files)}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

static const sl_class reader_class = {.name = "StreamReader",
                                      .destroy = reader_destroy,
                                      .stop = reader_stop,
                                      .cancel = reader_cancel,
                                      .counters = reader_counters};

sl_stream_reader *sl_stream_reader_new(sl_error *err) {
  sl_stream_reader *r = calloc(1, sizeof *r);
  if (r == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&r->obj, &reader_class);
  r->results = sl_mailbox_new(SL_STREAM_READER_RESULTS, &result_items,
                              results_notify, r);
  if (r->results == NULL) {
    free(r);
    return NULL;
  }
  if (sl_master_init(&r->master, &r->obj) != SL_OK) {
    sl_mailbox_free(r->results);
    free(r);
    return sl_fail(err, SL_ENOMEM, NULL);
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cond, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&r->lock, NULL);
  pthread_mutex_init(&r->control, NULL);
  r->fd = -1;
  atomic_init(&r->max_record, SL_STREAM_READER_MAX_RECORD);
  r->log = sl_log_get("streamReader");
  return r;
}

sl_object *sl_stream_reader_object(sl_stream_reader *r) {
  return r != NULL ? &r->obj : NULL;
}

sl_stream_reader *sl_stream_reader_from_object(sl_object *obj) {
  return sl_object_is(obj, &reader_class) ? (sl_stream_reader *)obj : NULL;
}

sl_master *sl_stream_reader_master(sl_stream_reader *r) {
  return &r->master;
}

int sl_stream_reader_open(sl_stream_reader *r, const char *name, int *os_error) {
  int rc = SL_OK, err = 0;
  size_t len = strlen(name);
  pthread_mutex_lock(&r->control);
  close_nolock_(r);
  if (len >= NAME_MAX_LEN) {
    err = ENAMETOOLONG;
    rc = SL_ENOTFOUND;
    goto out;
  }
  int fd = open(name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = errno;
    rc = SL_ENOTFOUND;
    goto out;
  }
  memcpy(r->name, name, len + 1);
  r->split = len > 2 && strcmp(name + len - 2, ".1") == 0;
  memcpy(r->base, name, len + 1);
  if (r->split) r->base[len - 2] = '\0';
  use_fd(r, fd);
  count(&r->files, 1);
  pthread_mutex_lock(&r->lock);
  r->active = 1;
  r->open = 1;
  pthread_mutex_unlock(&r->lock);
  if (sl_worker_start(&r->worker, "sl-reader", 0, reader_main, NULL, r) != 0) {
    close_file(r);
    pthread_mutex_lock(&r->lock);
    r->active = 0;
    pthread_mutex_unlock(&r->lock);
    rc = SL_ENOMEM;
    goto out;
  }
out:
  pthread_mutex_unlock(&r->control);
  if (os_error != NULL) *os_error = err;
  return rc;
}

void sl_stream_reader_set_max_record(sl_stream_reader *r, uint32_t bytes) {
  atomic_store_explicit(&r->max_record, bytes, memory_order_relaxed);
}

uint32_t sl_stream_reader_get_max_record(sl_stream_reader *r) {
  return (uint32_t)atomic_load_explicit(&r->max_record, memory_order_relaxed);
}

void sl_stream_reader_request_stop(sl_stream_reader *r) {
  sl_worker_request_stop(&r->worker);
}

void sl_stream_reader_close(sl_stream_reader *r) {
  pthread_mutex_lock(&r->control);
  close_nolock_(r);
  pthread_mutex_unlock(&r->control);
}

int sl_stream_reader_wait_inactive(sl_stream_reader *r, uint64_t timeout_us) {
  struct timespec until;
  sl_deadline_after(&until, (int64_t)timeout_us);
  pthread_mutex_lock(&r->lock);
  while (r->active) {
    if (timeout_us == 0)
      pthread_cond_wait(&r->cond, &r->lock);
    else if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT)
      break;
  }
  int done = !r->active;
  pthread_mutex_unlock(&r->lock);
  return done;
}

int sl_stream_reader_close_wait(sl_stream_reader *r, uint64_t timeout_us) {
  pthread_mutex_lock(&r->control);
  int done = sl_stream_reader_wait_inactive(r, timeout_us);
  if (done) sl_worker_join(&r->worker);
  pthread_mutex_unlock(&r->control);
  return done;
}

int sl_stream_reader_is_open(sl_stream_reader *r) {
  pthread_mutex_lock(&r->lock);
  int open = r->open;
  pthread_mutex_unlock(&r->lock);
  return open;
}

int sl_stream_reader_is_active(sl_stream_reader *r) {
  pthread_mutex_lock(&r->lock);
  int active = r->active;
  pthread_mutex_unlock(&r->lock);
  return active;
}

void sl_stream_reader_set_notify(sl_stream_reader *r, void (*notify)(void *arg),
                                 void (*release)(void *arg), void *arg) {
  pthread_mutex_lock(&r->lock);
  void (*old_release)(void *) = r->notify_release;
  void *old_arg = r->notify_arg;
  r->notify = notify;
  r->notify_release = release;
  r->notify_arg = arg;
  pthread_mutex_unlock(&r->lock);
  if (old_release != NULL) old_release(old_arg);
}

void *sl_stream_reader_notify_arg(sl_stream_reader *r, void (*notify)(void *arg)) {
  pthread_mutex_lock(&r->lock);
  void *arg = r->notify == notify ? r->notify_arg : NULL;
  pthread_mutex_unlock(&r->lock);
  return arg;
}

int sl_stream_reader_take_result(sl_stream_reader *r,
                                 sl_stream_reader_result *out) {
  void *item;
  if (sl_mailbox_take(r->results, &item, 1) == 0) return 0;
  *out = *(sl_stream_reader_result *)item;
  free(item);
  return 1;
}

sl_mailbox *sl_stream_reader_results(sl_stream_reader *r) { return r->results; }
