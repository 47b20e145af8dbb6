/*
** sl_fifo: a queue with its own output thread (Rogue's Fifo).
**
**   producer (any thread)               output thread
**   ---------------------               -------------
**   accept_frame(f)                     takes everything queued (up to 256)
**     full (max_depth > 0 and depth       at once and sends it downstream;
**     >= max_depth, or the byte limit     polls an empty queue briefly (on
**     reached): drop, counted
**     no_copy: queues f itself             more than one CPU), then sleeps
**     else: queues a copy of the first     until a producer signals it
**     trim_size bytes (0: all), with
**     channel, error and flags
**
** Producers append to a chain of segments under a lock of their own and
** publish a count; the output thread shares no lock with them.
** By default the producer never waits: a full Fifo drops the newest frame
** and counts it (Rogue's policy). Set to wait when full, a producer that
** finds it full (max_depth frames queued, or the byte limit reached) waits
** for room instead, until the output thread has taken what is queued; it
** drops (and counts) the frame only if the Fifo stops or its own waits
** give up (wait.h). The output thread's own sends into its Fifo never
** wait. max_depth 0 is unbounded in frames. The bytes
** queued (payloads as queued, frames being delivered included) are bounded
** too: 8 MiB by default; a frame that finds the queue empty passes however
** large it is. Stopping (or dropping the
** last reference) ends the thread and frees the frames still queued,
** counting them as drops; the thread finishes the slice (at most 16
** frames) it is sending, and drops the rest it had taken. Thread-safe.
*/
#ifndef STREAMLUA_FIFO_H_INCLUDED_
#define STREAMLUA_FIFO_H_INCLUDED_

#include <stdint.h>

#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

typedef struct sl_fifo sl_fifo;

/* A running Fifo (kind "Fifo"), refs = 1; NULL (err says why) if out of
** memory or if its thread cannot start. Drop it with
** sl_object_unref(sl_fifo_object(q)). */
sl_fifo *sl_fifo_new(uint32_t max_depth, uint32_t trim_size, int no_copy,
                     sl_error *err);
sl_object *sl_fifo_object(sl_fifo *q);        /* (transfer none); NULL-safe */
sl_fifo *sl_fifo_from_object(sl_object *obj); /* NULL if not a Fifo */

uint32_t sl_fifo_size(sl_fifo *q);
uint64_t sl_fifo_drop_count(sl_fifo *q);
void sl_fifo_clear_count(sl_fifo *q);
uint32_t sl_fifo_max_depth(sl_fifo *q);
/* The byte limit (0: none; default 8 MiB), and the payload bytes queued
** or being delivered now (counters "maxQueueBytes" and "queueBytes"). */
void sl_fifo_set_max_queue_bytes(sl_fifo *q, uint64_t bytes);
uint64_t sl_fifo_max_queue_bytes(sl_fifo *q);
uint64_t sl_fifo_queue_bytes(sl_fifo *q);
/* Whether a producer finding the Fifo full waits for room (on != 0) or
** drops its frame (0, the default). */
void sl_fifo_set_wait_when_full(sl_fifo *q, int on);
int sl_fifo_wait_when_full(sl_fifo *q);

#pragma GCC visibility pop

#endif
