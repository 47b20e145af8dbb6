/*
** A bounded ring of item pointers with one mutex and two condition
** variables: producers wait on `not_full`; the consumer never waits (it is
** woken by notify). See mailbox.h for the protocol.
*/
#include "streamlua/mailbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "streamlua/frame.h"
#include "streamlua/status.h"
#include "streamlua/wait.h"

typedef struct slot {
  void *item;
  uint64_t size;             /* what ops->size said as it was queued */
} slot;

struct sl_mailbox {
  pthread_mutex_t mutex;
  pthread_cond_t not_full;
  uint32_t cap, head, count;
  uint64_t bytes, max_bytes;   /* sizes queued; their limit (0: none) */
  int closed;
  int notified;              /* a wake-up is pending; don't send another */
  uint64_t waits;
  void (*notify)(void *arg);
  void *arg;
  const sl_mailbox_ops *ops;
  slot ring[];
};

static void frame_hold(void *f) { sl_frame_ref(f); }
static void frame_release(void *f) { sl_frame_unref(f); }

static uint64_t frame_size(const void *f) { return sl_frame_get_payload((sl_frame *)f); }

const sl_mailbox_ops sl_mailbox_frames = {frame_hold, frame_release, frame_size};

static uint64_t item_size(const sl_mailbox *mb, const void *item) {
  return mb->ops->size != NULL ? mb->ops->size(item) : 0;
}

/* No room for an item of `size` (lock held): the frame limit, or the byte
** limit unless the queue holds no bytes (a large item passes alone). */
static int full_nolock_(const sl_mailbox *mb, uint64_t size) {
  return mb->count == mb->cap ||
         (mb->max_bytes > 0 && mb->bytes > 0 && mb->bytes + size > mb->max_bytes);
}

/* Queues item at the tail; lock held, room checked. */
static void push_nolock_(sl_mailbox *mb, void *item, uint64_t size) {
  if (mb->ops->hold != NULL) mb->ops->hold(item);
  mb->ring[(mb->head + mb->count) % mb->cap] = (slot){item, size};
  mb->count++;
  mb->bytes += size;
}

sl_mailbox *sl_mailbox_new(uint32_t capacity, const sl_mailbox_ops *ops,
                           void (*notify)(void *arg), void *arg) {
  if (capacity == 0 || ops == NULL) return NULL;
  sl_mailbox *mb = calloc(1, sizeof *mb + capacity * sizeof mb->ring[0]);
  if (mb == NULL) return NULL;
  pthread_mutex_init(&mb->mutex, NULL);
  sl_cond_init(&mb->not_full);
  mb->cap = capacity;
  mb->ops = ops;
  mb->notify = notify;
  mb->arg = arg;
  return mb;
}

void sl_mailbox_free(sl_mailbox *mb) {
  if (mb == NULL) return;
  for (uint32_t i = 0; i < mb->count && mb->ops->release != NULL; i++)
    mb->ops->release(mb->ring[(mb->head + i) % mb->cap].item);
  pthread_cond_destroy(&mb->not_full);
  pthread_mutex_destroy(&mb->mutex);
  free(mb);
}

/* timeout_us < 0 waits without a bound (but gives up with the thread). */
static int put(sl_mailbox *mb, void *item, int64_t timeout_us) {
  struct timespec deadline;
  if (timeout_us >= 0) sl_deadline_after(&deadline, timeout_us);
  uint64_t size = item_size(mb, item);
  pthread_mutex_lock(&mb->mutex);
  if (full_nolock_(mb, size) && !mb->closed) mb->waits++;
  int rc = SL_OK;
  while (full_nolock_(mb, size) && !mb->closed && rc == SL_OK)
    rc = sl_wait_cond(&mb->not_full, &mb->mutex,
                      timeout_us >= 0 ? &deadline : NULL);
  if (mb->closed) goto out_closed;
  if (full_nolock_(mb, size)) goto out_timedout;
  push_nolock_(mb, item, size);
  int wake = !mb->notified;
  mb->notified = 1;
  pthread_mutex_unlock(&mb->mutex);
  if (wake && mb->notify != NULL) mb->notify(mb->arg);
  return SL_OK;
out_timedout:
  pthread_mutex_unlock(&mb->mutex);
  return rc;
out_closed:
  pthread_mutex_unlock(&mb->mutex);
  return SL_ECLOSED;
}

int sl_mailbox_put(sl_mailbox *mb, void *item) { return put(mb, item, -1); }

/*
** Before waiting for room the consumer must have been told there is
** something to take, or both would wait: notify (unlocked) first.
*/
int sl_mailbox_put_many(sl_mailbox *mb, void *const *items, uint32_t n,
                        uint32_t *done) {
  uint32_t i = 0;
  int rc = SL_OK;
  pthread_mutex_lock(&mb->mutex);
  while (i < n && !mb->closed && rc == SL_OK) {
    uint64_t size = item_size(mb, items[i]);
    while (!full_nolock_(mb, size)) {
      push_nolock_(mb, items[i], size);
      if (++i == n) break;
      size = item_size(mb, items[i]);
    }
    if (!mb->notified && mb->count > 0) {
      mb->notified = 1;
      pthread_mutex_unlock(&mb->mutex);
      if (mb->notify != NULL) mb->notify(mb->arg);
      pthread_mutex_lock(&mb->mutex);
    }
    if (i < n && full_nolock_(mb, size) && !mb->closed) {
      mb->waits++;
      while (full_nolock_(mb, size) && !mb->closed && rc == SL_OK)
        rc = sl_wait_cond(&mb->not_full, &mb->mutex, NULL);
    }
  }
  pthread_mutex_unlock(&mb->mutex);
  *done = i;
  return i == n ? SL_OK : rc != SL_OK ? rc : SL_ECLOSED;
}

int sl_mailbox_put_timed(sl_mailbox *mb, void *item, int64_t timeout_us) {
  return put(mb, item, timeout_us < 0 ? 0 : timeout_us);
}

int sl_mailbox_try_put(sl_mailbox *mb, void *item) {
  uint64_t size = item_size(mb, item);
  pthread_mutex_lock(&mb->mutex);
  int rc = mb->closed ? SL_ECLOSED : full_nolock_(mb, size) ? SL_EBUSY : SL_OK;
  if (rc == SL_OK) push_nolock_(mb, item, size);
  int wake = rc == SL_OK && !mb->notified;
  if (wake) mb->notified = 1;
  pthread_mutex_unlock(&mb->mutex);
  if (wake && mb->notify != NULL) mb->notify(mb->arg);
  return rc;
}

uint32_t sl_mailbox_take(sl_mailbox *mb, void **out, uint32_t max) {
  pthread_mutex_lock(&mb->mutex);
  uint32_t n = mb->count < max ? mb->count : max;
  for (uint32_t i = 0; i < n; i++) {
    out[i] = mb->ring[mb->head].item;
    mb->bytes -= mb->ring[mb->head].size;
    mb->head = (mb->head + 1) % mb->cap;
  }
  mb->count -= n;
  if (mb->count == 0) mb->notified = 0;
  if (n > 0) pthread_cond_broadcast(&mb->not_full);
  pthread_mutex_unlock(&mb->mutex);
  return n;
}

void sl_mailbox_close(sl_mailbox *mb) {
  pthread_mutex_lock(&mb->mutex);
  mb->closed = 1;
  pthread_cond_broadcast(&mb->not_full);
  pthread_mutex_unlock(&mb->mutex);
}

uint32_t sl_mailbox_size(sl_mailbox *mb) {
  pthread_mutex_lock(&mb->mutex);
  uint32_t n = mb->count;
  pthread_mutex_unlock(&mb->mutex);
  return n;
}

uint32_t sl_mailbox_capacity(const sl_mailbox *mb) { return mb->cap; }

uint64_t sl_mailbox_wait_count(sl_mailbox *mb) {
  pthread_mutex_lock(&mb->mutex);
  uint64_t n = mb->waits;
  pthread_mutex_unlock(&mb->mutex);
  return n;
}

void sl_mailbox_set_max_bytes(sl_mailbox *mb, uint64_t bytes) {
  pthread_mutex_lock(&mb->mutex);
  mb->max_bytes = bytes;
  pthread_cond_broadcast(&mb->not_full);   /* room, if it grew */
  pthread_mutex_unlock(&mb->mutex);
}

uint64_t sl_mailbox_max_bytes(sl_mailbox *mb) {
  pthread_mutex_lock(&mb->mutex);
  uint64_t n = mb->max_bytes;
  pthread_mutex_unlock(&mb->mutex);
  return n;
}

uint64_t sl_mailbox_bytes(sl_mailbox *mb) {
  pthread_mutex_lock(&mb->mutex);
  uint64_t n = mb->bytes;
  pthread_mutex_unlock(&mb->mutex);
  return n;
}
