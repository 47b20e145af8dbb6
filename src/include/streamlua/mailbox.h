/*
** sl_mailbox: a bounded queue of items from any thread to one consumer.
** An item is any pointer; the ops given to new say how the queue holds
** one (frames: sl_mailbox_frames, a ref per queued frame).
**
**   producer (any thread)            consumer (one thread, e.g. the loop)
**   ---------------------            ------------------------------------
**   sl_mailbox_put(mb, item)         notify(arg) says "look at the queue"
**     ops->hold(item) when queued;   sl_mailbox_take(mb, out, max)
**     waits while full, in items or    hands over what was held, oldest
**     in bytes (back-pressure, never   first; when it leaves the queue
**     a drop); calls notify when the   empty the next put notifies again
**     queue was idle                 sl_mailbox_close(mb): puts fail with
**   sl_mailbox_try_put: never          SL_ECLOSED, waiters wake
**     waits (SL_EBUSY when full)
**
** notify is called at most once per idle period, so a wake-up is never
** taken for a message: the consumer drains until take returns less than it
** asked for. notify is called without the mailbox lock held.
*/
#ifndef STREAMLUA_MAILBOX_H_INCLUDED_
#define STREAMLUA_MAILBOX_H_INCLUDED_

#include <stdint.h>

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

typedef struct sl_mailbox sl_mailbox;

/* How a mailbox holds its items. hold is called (under the mailbox lock)
** when an item is queued: NULL means the put hands the item over.
** release drops an item the mailbox still holds when it is freed. size
** (NULL: items weigh nothing) is what an item counts toward the byte
** limit, asked once as it is queued. */
typedef struct sl_mailbox_ops {
  void (*hold)(void *item);
  void (*release)(void *item);
  uint64_t (*size)(const void *item);
} sl_mailbox_ops;

/* Frames: put takes its own ref, take hands that ref over; a frame weighs
** its payload. */
extern const sl_mailbox_ops sl_mailbox_frames;

/* ops (transfer none) must outlive the mailbox. */
sl_mailbox *sl_mailbox_new(uint32_t capacity, const sl_mailbox_ops *ops,
                           void (*notify)(void *arg), void *arg);
/* Releases the items still queued. No thread may be inside put. */
void sl_mailbox_free(sl_mailbox *mb);

/* Waits for room. SL_OK, or SL_ECLOSED or SL_ECANCELED (the calling
** thread's waits gave up, wait.h): item not queued (nor held). */
int sl_mailbox_put(sl_mailbox *mb, void *item);
/* Puts n items in order under one lock (waiting for room as put does);
** *done gets how many were queued: all (SL_OK) or fewer (SL_ECLOSED,
** SL_ECANCELED). */
int sl_mailbox_put_many(sl_mailbox *mb, void *const *items, uint32_t n,
                        uint32_t *done);
/* As put but gives up after timeout_us: SL_ETIMEDOUT (or as put). */
int sl_mailbox_put_timed(sl_mailbox *mb, void *item, int64_t timeout_us);
/* As put but never waits (nor counts a wait): SL_EBUSY when full. */
int sl_mailbox_try_put(sl_mailbox *mb, void *item);
/* Up to max items (what was held passes to the caller), oldest first;
** never waits. */
uint32_t sl_mailbox_take(sl_mailbox *mb, void **out, uint32_t max);
void sl_mailbox_close(sl_mailbox *mb);
uint32_t sl_mailbox_size(sl_mailbox *mb);
uint32_t sl_mailbox_capacity(const sl_mailbox *mb);
/* The byte limit beside the capacity (0, the default: none): a put waits
** while the queued sizes plus its item's would pass it, unless nothing
** with a size is queued (an item over the limit passes alone). */
void sl_mailbox_set_max_bytes(sl_mailbox *mb, uint64_t bytes);
uint64_t sl_mailbox_max_bytes(sl_mailbox *mb);
/* The sizes of the items queued now. */
uint64_t sl_mailbox_bytes(sl_mailbox *mb);
/* Times a producer had to wait because the queue was full. */
uint64_t sl_mailbox_wait_count(sl_mailbox *mb);

#pragma GCC visibility pop

#endif
