/*
** Asymmetric barriers (internal to the core), for a fast path and a slow
** path that each store one word and then load the other's: a sender and a
** writer replacing its snapshot (grace.c). Both need a full
** barrier between their store and load. With membarrier(2) the slow path
** pays for both: it makes every running thread of the process execute a
** full barrier, so the fast path only keeps the compiler from reordering.
**
** Where membarrier is missing, and under ThreadSanitizer (which cannot see
** it), sl_barrier_asym is 0: the fast path then uses a sequentially
** consistent store or exchange, the slow path sequentially consistent
** accesses, and sl_barrier_slow does nothing.
*/
#ifndef STREAMLUA_BARRIER_H_INCLUDED_
#define STREAMLUA_BARRIER_H_INCLUDED_

#include <stdatomic.h>

/* 1 when membarrier(2) is registered for the process (set at load time). */
extern int sl_barrier_asym;

/* The fast path's half, after its store: a compiler barrier. Only valid
** when sl_barrier_asym is 1. */
static inline void sl_barrier_fast(void) {
  atomic_signal_fence(memory_order_seq_cst);
}

/* The slow path's half, after its store and before its load. */
void sl_barrier_slow(void);

#endif
