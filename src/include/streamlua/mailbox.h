/*
** sl_mailbox: a bounded queue of frames from any thread to one consumer.
**
**   producer (any thread)            consumer (one thread, e.g. the loop)
**   ---------------------            ------------------------------------
**   sl_mailbox_put(mb, f)            notify(arg) says "look at the queue"
**     takes its own ref on f;        sl_mailbox_take(mb, out, max)
**     waits while full (back-          hands over refs, oldest first;
**     pressure, never a drop);         when it leaves the queue empty the
**     calls notify when the queue      next put notifies again
**     was idle                       sl_mailbox_close(mb): puts fail with
**                                      SL_ECLOSED, waiters wake
**
** notify is called at most once per idle period, so a wake-up is never
** taken for a message: the consumer drains until take returns less than it
** asked for. notify is called without the mailbox lock held.
*/
#ifndef STREAMLUA_MAILBOX_H_INCLUDED_
#define STREAMLUA_MAILBOX_H_INCLUDED_

#include <stdint.h>

#include "frame.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

typedef struct sl_mailbox sl_mailbox;

sl_mailbox *sl_mailbox_new(uint32_t capacity, void (*notify)(void *arg),
                           void *arg);
/* Unrefs the frames still queued. No thread may be inside put. */
void sl_mailbox_free(sl_mailbox *mb);

/* (transfer none) f. Waits for room. SL_OK, or SL_ECLOSED or SL_ECANCELED
** (the calling thread's waits gave up, wait.h): f not queued. */
int sl_mailbox_put(sl_mailbox *mb, sl_frame *f);
/* Puts n frames in order under one lock (waiting for room as put does);
** *done gets how many were queued: all (SL_OK) or fewer (SL_ECLOSED,
** SL_ECANCELED). */
int sl_mailbox_put_many(sl_mailbox *mb, sl_frame **fs, uint32_t n,
                        uint32_t *done);
/* As put but gives up after timeout_us: SL_ETIMEDOUT (or as put). */
int sl_mailbox_put_timed(sl_mailbox *mb, sl_frame *f, int64_t timeout_us);
/* Up to max frames (transfer full), oldest first; never waits. */
uint32_t sl_mailbox_take(sl_mailbox *mb, sl_frame **out, uint32_t max);
void sl_mailbox_close(sl_mailbox *mb);
uint32_t sl_mailbox_size(sl_mailbox *mb);
uint32_t sl_mailbox_capacity(const sl_mailbox *mb);
/* Times a producer had to wait because the queue was full. */
uint64_t sl_mailbox_wait_count(sl_mailbox *mb);

#pragma GCC visibility pop

#endif
