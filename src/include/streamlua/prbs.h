/*
** sl_prbs: Rogue's PRBS generator (stream master) and checker (stream
** slave) in one node, frame for frame compatible with rogue.utilities.Prbs.
**
**   word 0   sequence number (LE32 in the low 4 bytes, the rest 0)
**   word 1   size / byteWidth - 1
**   word 2.. the LFSR state after 1, 2, ... steps from word 0
**            (or, in count mode, the word's own index as LE32)
**
** A word is byteWidth = width / 8 bytes. One LFSR step treats the state as
** a little-endian integer V of `width` bits: fb = XOR of bit t of V for each
** tap t, V = (V << 1 | fb) mod 2^width. Taps at or beyond the width read 0.
**
** Ownership: sl_prbs_new returns a node with one reference; drop it with
** sl_object_unref(sl_prbs_object(p)). The generator thread holds no
** reference: the last unref stops and joins it (destroy waits a bounded
** time for the frame in flight; a generator stuck downstream longer than
** that is left to free the node itself when its frame completes, so the
** last unref never hangs, and it may even run on the generator thread).
**
** Thread safety: every function may be called from any thread, the node's
** own generator thread included. Frames are requested from the node's own
** master (the primary slave provides memory) and sent with no lock held.
*/
#ifndef STREAMLUA_PRBS_H_INCLUDED_
#define STREAMLUA_PRBS_H_INCLUDED_

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

typedef struct sl_prbs sl_prbs;

/* Counters and rates (frames/s, bytes/s, recomputed by the traffic itself
** once more than 1 s has passed since the last update, as Rogue does). */
typedef struct sl_prbs_stats {
  uint64_t tx_count, tx_bytes, tx_errors;
  uint64_t rx_count, rx_bytes, rx_errors;
  uint64_t rx_drops;       /* frames released unchecked (rx disabled, see below) */
  double tx_rate, tx_bw, rx_rate, rx_bw;
} sl_prbs_stats;

/* Width 32, taps {1, 2, 6, 31}, payload generation and checking on, count
** mode off, tx period 0, rx enabled. Kind "Prbs", refs = 1. NULL if out of
** memory. */
sl_prbs *sl_prbs_new(sl_error *err);   /* NULL (err says why): out of memory */
/* The node (for ref/unref, connecting, stop). */
sl_object *sl_prbs_object(sl_prbs *p);
/* The Prbs behind a node, or NULL if the node is something else. */
sl_prbs *sl_prbs_from_object(sl_object *obj);

/* 32..512 and a multiple of 32, else SL_EINVAL ("Invalid width."). Sets the
** minimum frame size to 3 x width / 8. */
int sl_prbs_set_width(sl_prbs *p, uint32_t bits);
uint32_t sl_prbs_get_width(sl_prbs *p);
/* Bit positions (0..255), copied. Repeated taps cancel, as in Rogue. */
int sl_prbs_set_taps(sl_prbs *p, const uint8_t *taps, size_t n);
/* SL_OK if genFrame(size) would accept the size: a multiple of the word
** size and at least 3 words; SL_EINVAL otherwise. */
int sl_prbs_check_size(sl_prbs *p, uint32_t size);
uint32_t sl_prbs_min_size(sl_prbs *p);

/* Builds one frame and sends it in the calling thread. SL_EINVAL for a bad
** size, SL_ENOMEM if no frame could be had (counted as a tx error). No
** lock is held while the frame is sent, so `prbs >> prbs` checks its own
** frames; two threads generating at once interleave sequence numbers. */
int sl_prbs_gen_frame(sl_prbs *p, uint32_t size);
/* The sequence number the next frame gets (starts at 0). */
void sl_prbs_set_tx_seq(sl_prbs *p, uint32_t seq);
uint32_t sl_prbs_get_tx_seq(sl_prbs *p);

/*
** The generator thread. enable starts it (SL_EINVAL for a bad size,
** SL_ENOMEM if no thread); while it runs (or is still winding down after
** disable_nowait), enable only changes the size and keeps it going.
** disable lets it finish the frame it is sending and joins it; a send
** still waiting downstream after SL_PRBS_DISABLE_GRACE_US (a full link
** window, a checker with rx disabled) is told to give up, so the frame may
** go out in part: call it from a thread the generator's downstream does
** not wait on. finish only asks for the end after the current frame (its
** send goes on as long as it takes); disable_nowait asks for the end now
** (the waits downstream give up);
** tx_wait then waits up to timeout_us (< 0: no limit) for the thread to
** end and joins it: SL_OK once no generator is stopping any more (it ended,
** or was enabled again), SL_ETIMEDOUT otherwise. On the generator thread
** itself (a slave downstream) nothing waits: disable only asks (the thread
** is joined by a later enable, disable, tx_wait, stop or the last unref),
** enable keeps it going unless a disable is waiting (SL_EBUSY), and
** tx_wait returns SL_EBUSY.
*/
#define SL_PRBS_DISABLE_GRACE_US 1000000
int sl_prbs_enable(sl_prbs *p, uint32_t size);
void sl_prbs_disable(sl_prbs *p);
void sl_prbs_disable_nowait(sl_prbs *p);
void sl_prbs_finish(sl_prbs *p);
int sl_prbs_tx_wait(sl_prbs *p, int64_t timeout_us);
/* 1 while the generator is enabled. */
int sl_prbs_tx_enabled(sl_prbs *p);
/* Microseconds slept between generated frames (0: back to back). */
void sl_prbs_set_tx_period(sl_prbs *p, uint32_t us);
uint32_t sl_prbs_get_tx_period(sl_prbs *p);

/*
** While rx is disabled the checker blocks its caller (Rogue's
** back-pressure) until setRxEnable(true) or stop(). A caller that is a
** Prbs generator thread being disabled is let go too, so disable and stop
** never hang on a checker. A frame let go that way is not checked; it is
** counted in rx_drops. The nowait thread (the one that would have to
** re-enable rx, e.g. the Lua thread) never blocks: its frames are dropped
** with a warning, since waiting there could only deadlock.
*/
void sl_prbs_set_rx_enable(sl_prbs *p, int on);
int sl_prbs_get_rx_enable(sl_prbs *p);
void sl_prbs_set_nowait_thread(sl_prbs *p, pthread_t thread);

void sl_prbs_check_payload(sl_prbs *p, int on);
void sl_prbs_gen_payload(sl_prbs *p, int on);
void sl_prbs_send_count(sl_prbs *p, int on);

void sl_prbs_get_stats(sl_prbs *p, sl_prbs_stats *out);
/* Clears the rx/tx counts, bytes and errors (not the sequence numbers). */
void sl_prbs_reset_count(sl_prbs *p);

/* Width 32 uses a word-parallel generator and checker; 0 forces the plain
** bit-serial path (both produce the same bytes: for tests and benches). */
void sl_prbs_set_fast_path(sl_prbs *p, int on);

#pragma GCC visibility pop

#endif
