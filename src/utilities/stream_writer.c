/*
** The stream writer: Rogue's record format, splitting, staging buffer and
** per-channel slaves (see stream_writer.h).
**
** Everything about the file lives in a `wfile`, reference counted and
** shared by the writer handle and its channels, so there is no reference
** cycle: the writer holds its channels, each channel holds the wfile. One
** mutex (wfile.lock) guards the file, the counts and the channel table;
** a channel takes the frame lock first, then the file lock.
*/
#include "streamlua/stream_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/log.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"

#include "../core/bytes.h"
#include "../core/clock.h"

#define CHANNELS 256
#define IOV_BATCH 64                  /* segments per writev */
#define BW_SLOTS 10                   /* bandwidth window: 10 slots ... */
#define BW_SLOT_NS 100000000LL        /* ... of 100 ms (the coarse clock is */
                                      /* fine enough, and cheap per record) */
#define HEADER 8

typedef struct wfile {
  atomic_int refs;
  pthread_mutex_t lock;
  pthread_cond_t cond;          /* a record count changed */
  int waiters;                  /* threads in a wait_frame_count */
  int fd;                       /* -1: closed */
  char *base;                   /* the name given to open() */
  uint32_t index;               /* split index of the file, 0: not split */
  int raw, drop_errors;
  uint64_t max_size;
  uint8_t *buf;                 /* staging buffer */
  uint32_t buf_size, buf_used;
  uint64_t total, current;      /* bytes flushed: this session, this file */
  uint64_t frames;              /* records since open() */
  int64_t bw_slot[BW_SLOTS];
  uint64_t bw_bytes[BW_SLOTS];
  /* counters since creation */
  uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes, drops, errors, files;
  sl_log *log;
} wfile;

struct sl_stream_writer {
  sl_object obj;
  wfile *file;
  sl_object *chan[CHANNELS];    /* created on demand; guarded by file->lock */
};

typedef struct sl_stream_writer_channel wchan;

struct sl_stream_writer_channel {
  sl_object obj;
  sl_slave slave;               /* its frame_count is the channel's count */
  wfile *file;
  uint8_t n;
};

/* ---- the shared file state ---- */

/* Writes every byte of iov[0..n) (it is consumed); 0 or an errno. */
static int write_iov(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t k = writev(fd, iov, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    size_t left = (size_t)k;
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

/* Rogue's rule: a failed write closes the file. Staged bytes are lost. */
static void fail_nolock_(wfile *wf, int err) {
  sl_log_write(wf->log, SL_LOG_ERROR, "Write failed, closing file! (%s)",
               strerror(err));
  wf->errors++;
  close(wf->fd);
  wf->fd = -1;
  wf->buf_used = 0;
}

/* Writes n segments straight to the file and counts them as flushed. */
static int put_nolock_(wfile *wf, struct iovec *iov, int n, uint64_t bytes) {
  int err = write_iov(wf->fd, iov, n);
  if (err != 0) {
    fail_nolock_(wf, err);
    return -1;
  }
  wf->current += bytes;
  wf->total += bytes;
  return 0;
}

static int flush_nolock_(wfile *wf) {
  if (wf->fd < 0 || wf->buf_used == 0) return 0;
  struct iovec iov = {wf->buf, wf->buf_used};
  uint32_t n = wf->buf_used;
  wf->buf_used = 0;
  return put_nolock_(wf, &iov, 1, n);
}

static void close_nolock_(wfile *wf) {
  if (wf->fd < 0) return;
  if (flush_nolock_(wf) != 0) return;   /* already closed */
  if (close(wf->fd) != 0) {
    sl_log_write(wf->log, SL_LOG_ERROR, "Close failed: %s", strerror(errno));
    wf->errors++;
  }
  wf->fd = -1;
}

/* Opens (truncating) one file of the session; 0 or an errno. */
static int open_file_nolock_(wfile *wf, const char *name) {
  int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return errno;
  wf->fd = fd;
  wf->current = 0;
  wf->files++;
  return 0;
}

/* Closes the current split file and opens the next one. */
static int next_file_nolock_(wfile *wf) {
  close_nolock_(wf);
  size_t len = strlen(wf->base) + 12;
  char *name = malloc(len);
  int err = ENOMEM;
  if (name != NULL) {
    snprintf(name, len, "%s.%u", wf->base, ++wf->index);
    err = open_file_nolock_(wf, name);
  }
  if (err != 0) {
    sl_log_write(wf->log, SL_LOG_ERROR, "Failed to open file %s.%u: %s",
                 wf->base, wf->index, strerror(err));
    wf->errors++;
  }
  free(name);
  return err != 0 ? -1 : 0;
}

static void bw_add_nolock_(wfile *wf, uint64_t bytes) {
  int64_t slot = sl_clock_coarse_ns() / BW_SLOT_NS;
  int i = (int)(slot % BW_SLOTS);
  if (wf->bw_slot[i] != slot) {
    wf->bw_slot[i] = slot;
    wf->bw_bytes[i] = 0;
  }
  wf->bw_bytes[i] += bytes;
}

/* Header and payload: staged when the record fits the buffer, else
** written straight through, segment by segment, after what is staged. */
static int emit_nolock_(wfile *wf, const uint8_t *hdr, uint32_t hlen,
                        const sl_frame *f, uint32_t size) {
  uint64_t rec = (uint64_t)hlen + size;
  if (rec <= wf->buf_size) {
    if (wf->buf_used + rec > wf->buf_size && flush_nolock_(wf) != 0) return -1;
    memcpy(wf->buf + wf->buf_used, hdr, hlen);
    sl_frame_read(f, wf->buf + wf->buf_used + hlen, 0, size);
    wf->buf_used += (uint32_t)rec;
    return 0;
  }
  if (flush_nolock_(wf) != 0) return -1;
  struct iovec iov[IOV_BATCH];
  int n = 0;
  uint64_t batch = 0;
  if (hlen > 0) {
    iov[n++] = (struct iovec){(void *)hdr, hlen};
    batch = hlen;
  }
  sl_frame_iter it;
  sl_frame_iter_read(&it, f, 0);
  while (!sl_frame_iter_at_end(&it)) {
    uint32_t len = sl_frame_iter_rem_buffer(&it);
    iov[n++] = (struct iovec){sl_frame_iter_ptr(&it), len};
    batch += len;
    sl_frame_iter_advance(&it, len);
    if (n == IOV_BATCH) {
      if (put_nolock_(wf, iov, n, batch) != 0) return -1;
      n = 0;
      batch = 0;
    }
  }
  return n > 0 ? put_nolock_(wf, iov, n, batch) : 0;
}

/* One frame: skipped, refused, or written as one record. */
static void record_nolock_(wfile *wf, sl_frame *f, uint8_t channel) {
  uint32_t size = sl_frame_get_payload(f);
  uint8_t error = sl_frame_get_error(f);
  wf->rx_frames++;
  wf->rx_bytes += size;
  if (wf->fd < 0 || size == 0 || (wf->drop_errors && error != 0)) {
    wf->drops++;
    return;
  }
  uint32_t hlen = wf->raw ? 0 : HEADER;
  uint64_t rec = (uint64_t)size + hlen;
  if ((wf->max_size > 0 && rec > wf->max_size) || size > UINT32_MAX - 4) {
    sl_log_write(wf->log, SL_LOG_ERROR,
                 "Frame size is larger than file size limit (record of %llu "
                 "bytes, limit %llu)", (unsigned long long)rec,
                 (unsigned long long)(wf->max_size ? wf->max_size : UINT32_MAX - 4));
    wf->errors++;
    return;
  }
  if (wf->max_size > 0 && wf->current + wf->buf_used + rec > wf->max_size &&
      next_file_nolock_(wf) != 0)
    return;
  uint8_t hdr[HEADER];
  sl_store_le32(hdr, size + 4);
  sl_store_le32(hdr + 4, (uint32_t)channel << 24 | (uint32_t)error << 16 |
                        sl_frame_get_flags(f));
  if (emit_nolock_(wf, hdr, hlen, f, size) != 0) return;
  wf->frames++;
  wf->tx_frames++;
  wf->tx_bytes += rec;
  bw_add_nolock_(wf, rec);
}

static void wake_nolock_(wfile *wf) {
  if (wf->waiters > 0) pthread_cond_broadcast(&wf->cond);
}

static wfile *wfile_new(void) {
  wfile *wf = calloc(1, sizeof *wf);
  if (wf == NULL) return NULL;
  sl_cond_init(&wf->cond);
  pthread_mutex_init(&wf->lock, NULL);
  atomic_init(&wf->refs, 1);
  wf->fd = -1;
  wf->log = sl_log_get("fileio.StreamWriter");
  return wf;
}

static void wfile_unref(wfile *wf) {
  if (atomic_fetch_sub_explicit(&wf->refs, 1, memory_order_acq_rel) != 1)
    return;
  close_nolock_(wf);   /* the last user: nobody else can take the lock */
  pthread_cond_destroy(&wf->cond);
  pthread_mutex_destroy(&wf->lock);
  free(wf->buf);
  free(wf->base);
  free(wf);
}

/*
** Waits on the file's condition until *count (read under the lock by
** get) reaches `count`, or the timeout (0: none), or the thread's waits
** give up (wait.h). 1 if it did.
*/
static int wait_count(wfile *wf, uint64_t (*get)(void *arg), void *arg,
                      uint64_t count, uint64_t timeout_us) {
  struct timespec until;
  sl_deadline_after(&until, (int64_t)timeout_us);
  pthread_mutex_lock(&wf->lock);
  wf->waiters++;
  int ok = 1;
  while (get(arg) < count) {
    if (sl_wait_cond(&wf->cond, &wf->lock, timeout_us == 0 ? NULL : &until) != SL_OK) {
      ok = get(arg) >= count;
      break;
    }
  }
  wf->waiters--;
  pthread_mutex_unlock(&wf->lock);
  return ok;
}

/* ---- channels ---- */

static void chan_accept(sl_slave *s, sl_frame *f);
static const sl_slave_ops chan_ops = {.accept_frame = chan_accept};

static void chan_accept(sl_slave *s, sl_frame *f) {
  wchan *c = (wchan *)s->owner;
  wfile *wf = c->file;
  sl_frame_lock(f);
  pthread_mutex_lock(&wf->lock);
  record_nolock_(wf, f, c->n == 0 ? sl_frame_get_channel(f) : c->n);
  sl_slave_count_nolock_(s, f);   /* even when the frame was skipped */
  wake_nolock_(wf);
  pthread_mutex_unlock(&wf->lock);
  sl_frame_unlock(f);
}

static void chan_destroy(sl_object *obj) {
  wchan *c = (wchan *)obj;
  sl_slave_fini(&c->slave);
  wfile_unref(c->file);
  free(c);
}

static const sl_class chan_class = {.name = "StreamWriterChannel",
                                    .destroy = chan_destroy};

static wchan *as_chan(sl_object *obj) {
  return sl_object_is(obj, &chan_class) ? (wchan *)obj : NULL;
}

sl_object *sl_stream_writer_channel_object(sl_stream_writer_channel *ch) {
  return ch != NULL ? &ch->obj : NULL;
}

sl_stream_writer_channel *sl_stream_writer_channel_from_object(sl_object *obj) {
  return as_chan(obj);
}

static uint64_t chan_count(void *arg) {
  return sl_slave_get_frame_count(&((wchan *)arg)->slave);
}

uint64_t sl_stream_writer_channel_get_frame_count(sl_stream_writer_channel *c) {
  return chan_count(c);
}

void sl_stream_writer_channel_set_frame_count(sl_stream_writer_channel *c, uint64_t n) {
  pthread_mutex_lock(&c->file->lock);
  atomic_store_explicit(&c->slave.frame_count, n, memory_order_relaxed);
  wake_nolock_(c->file);
  pthread_mutex_unlock(&c->file->lock);
}

int sl_stream_writer_channel_wait_frame_count(sl_stream_writer_channel *c,
                                              uint64_t count, uint64_t timeout_us) {
  return wait_count(c->file, chan_count, c, count, timeout_us);
}

/* ---- the writer ---- */

static void writer_destroy(sl_object *obj) {
  sl_stream_writer *w = (sl_stream_writer *)obj;
  for (int i = 0; i < CHANNELS; i++) sl_object_unref(w->chan[i]);
  wfile_unref(w->file);
  free(w);
}

static void writer_stop(sl_object *obj) {
  sl_stream_writer_close((sl_stream_writer *)obj);
}

static size_t writer_counters(sl_object *obj, sl_counter *out, size_t max) {
  wfile *wf = ((sl_stream_writer *)obj)->file;
  pthread_mutex_lock(&wf->lock);
  sl_counter c[] = {{"rxFrames", wf->rx_frames}, {"rxBytes", wf->rx_bytes},
                    {"txFrames", wf->tx_frames}, {"txBytes", wf->tx_bytes},
                    {"drops", wf->drops},         {"errors", wf->errors},
                    {"files", wf->files}};
  pthread_mutex_unlock(&wf->lock);
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

static const sl_class writer_class = {.name = "StreamWriter",
                                      .destroy = writer_destroy,
                                      .stop = writer_stop,
                                      .counters = writer_counters};

sl_stream_writer *sl_stream_writer_new(sl_error *err) {
  sl_stream_writer *w = calloc(1, sizeof *w);
  if (w == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  w->file = wfile_new();
  if (w->file == NULL) {
    free(w);
    return sl_fail(err, SL_ENOMEM, NULL);
  }
  sl_object_init(&w->obj, &writer_class);
  return w;
}

sl_object *sl_stream_writer_object(sl_stream_writer *w) {
  return w != NULL ? &w->obj : NULL;
}

sl_stream_writer *sl_stream_writer_from_object(sl_object *obj) {
  return sl_object_is(obj, &writer_class) ? (sl_stream_writer *)obj : NULL;
}

int sl_stream_writer_open(sl_stream_writer *w, const char *name, int *os_error) {
  wfile *wf = w->file;
  size_t len = strlen(name);
  char *base = malloc(len + 1);
  char *first = malloc(len + 3);
  if (base == NULL || first == NULL) {
    free(base);
    free(first);
    return SL_ENOMEM;
  }
  memcpy(base, name, len + 1);
  pthread_mutex_lock(&wf->lock);
  close_nolock_(wf);
  free(wf->base);
  wf->base = base;
  wf->index = wf->max_size > 0 ? 1 : 0;
  snprintf(first, len + 3, wf->index ? "%s.1" : "%s", name);
  int err = open_file_nolock_(wf, first);
  wf->buf_used = 0;
  wf->total = 0;
  wf->current = 0;
  wf->frames = 0;
  memset(wf->bw_slot, 0, sizeof wf->bw_slot);
  memset(wf->bw_bytes, 0, sizeof wf->bw_bytes);
  for (int i = 0; i < CHANNELS; i++) {
    wchan *c = (wchan *)w->chan[i];
    if (c != NULL) atomic_store(&c->slave.frame_count, 0);
  }
  wake_nolock_(wf);
  pthread_mutex_unlock(&wf->lock);
  free(first);
  if (os_error != NULL) *os_error = err;
  return err == 0 ? SL_OK : SL_ENOTFOUND;
}

void sl_stream_writer_close(sl_stream_writer *w) {
  pthread_mutex_lock(&w->file->lock);
  close_nolock_(w->file);
  pthread_mutex_unlock(&w->file->lock);
}

/* A consistent copy of what the getters report; staged bytes count. */
typedef struct wstate {
  int open, raw;
  uint64_t total, current, frames;
} wstate;

static wstate state_of(sl_stream_writer *w) {
  wfile *wf = w->file;
  pthread_mutex_lock(&wf->lock);
  wstate st = {wf->fd >= 0, wf->raw, wf->total + wf->buf_used,
               wf->current + wf->buf_used, wf->frames};
  pthread_mutex_unlock(&wf->lock);
  return st;
}

int sl_stream_writer_is_open(sl_stream_writer *w) {
  return state_of(w).open;
}

void sl_stream_writer_set_raw(sl_stream_writer *w, int raw) {
  pthread_mutex_lock(&w->file->lock);
  w->file->raw = raw != 0;
  pthread_mutex_unlock(&w->file->lock);
}

int sl_stream_writer_get_raw(sl_stream_writer *w) {
  return state_of(w).raw;
}

int sl_stream_writer_set_buffer_size(sl_stream_writer *w, uint32_t bytes) {
  wfile *wf = w->file;
  int rc = SL_OK;
  pthread_mutex_lock(&wf->lock);
  flush_nolock_(wf);
  uint8_t *buf = NULL;
  if (bytes > 0 && (buf = malloc(bytes)) == NULL) {
    rc = SL_ENOMEM;
    goto out;
  }
  free(wf->buf);
  wf->buf = buf;
  wf->buf_size = bytes;
  wf->buf_used = 0;
out:
  pthread_mutex_unlock(&wf->lock);
  return rc;
}

void sl_stream_writer_set_max_size(sl_stream_writer *w, uint64_t bytes) {
  pthread_mutex_lock(&w->file->lock);
  w->file->max_size = bytes;
  pthread_mutex_unlock(&w->file->lock);
}

void sl_stream_writer_set_drop_errors(sl_stream_writer *w, int drop) {
  pthread_mutex_lock(&w->file->lock);
  w->file->drop_errors = drop != 0;
  pthread_mutex_unlock(&w->file->lock);
}


sl_stream_writer_channel *sl_stream_writer_get_channel(sl_stream_writer *w, uint8_t n) {
  wfile *wf = w->file;
  pthread_mutex_lock(&wf->lock);
  sl_object *obj = w->chan[n];
  if (obj == NULL) {
    wchan *c = calloc(1, sizeof *c);
    if (c == NULL) goto out;
    sl_object_init(&c->obj, &chan_class);
    if (sl_slave_init(&c->slave, &chan_ops, &c->obj) != SL_OK) {
      free(c);
      goto out;
    }
    c->n = n;
    c->file = wf;
    atomic_fetch_add_explicit(&wf->refs, 1, memory_order_relaxed);
    w->chan[n] = obj = &c->obj;   /* the writer's reference */
  }
  sl_object_ref(obj);             /* the caller's */
out:
  pthread_mutex_unlock(&wf->lock);
  return as_chan(obj);
}

uint64_t sl_stream_writer_get_total_size(sl_stream_writer *w) {
  return state_of(w).total;
}

uint64_t sl_stream_writer_get_current_size(sl_stream_writer *w) {
  return state_of(w).current;
}

double sl_stream_writer_get_bandwidth(sl_stream_writer *w) {
  wfile *wf = w->file;
  int64_t slot = sl_clock_coarse_ns() / BW_SLOT_NS;
  uint64_t bytes = 0;
  pthread_mutex_lock(&wf->lock);
  for (int i = 0; i < BW_SLOTS; i++)
    if (wf->bw_slot[i] > slot - BW_SLOTS && wf->bw_slot[i] <= slot)
      bytes += wf->bw_bytes[i];
  pthread_mutex_unlock(&wf->lock);
  return (double)bytes / (BW_SLOTS * BW_SLOT_NS * 1e-9);
}

static uint64_t writer_count(void *arg) {
  return ((wfile *)arg)->frames;
}

uint64_t sl_stream_writer_get_frame_count(sl_stream_writer *w) {
  return state_of(w).frames;
}

int sl_stream_writer_wait_frame_count(sl_stream_writer *w, uint64_t count,
                                      uint64_t timeout_us) {
  return wait_count(w->file, writer_count, w->file, count, timeout_us);
}

void sl_stream_writer_write_frame(sl_stream_writer *w, sl_frame *f,
                                  uint8_t channel) {
  pthread_mutex_lock(&w->file->lock);
  record_nolock_(w->file, f, channel);
  wake_nolock_(w->file);
  pthread_mutex_unlock(&w->file->lock);
}
