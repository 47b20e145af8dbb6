/*
** Asymmetric barriers (internal to the core), for a fast path and a slow
** path that each store one word and then load the other's: a sender and a
** writer replacing its snapshot (grace.c). Both need a full
** barrier between their store and load. With membarrier(2) the slow path
** pays for both: it makes every running thread of the process execute a
** full barrier, so the fast path only keeps the compiler from reordering.
**
** Where membarrier is missing (qemu-user, old kernels), and under
** ThreadSanitizer (which cannot see it), sl_barrier_asym is 0: the fast
** path then uses a sequentially consistent store or exchange followed by
** sl_barrier_full, the slow path sequentially consistent accesses, and
** sl_barrier_slow is a full fence.
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

#if defined(__SANITIZE_THREAD__)
#define SL_BARRIER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SL_BARRIER_TSAN 1
#endif
#endif

/* Where sl_barrier_asym is 0, each side's full barrier after its
** sequentially consistent store or exchange. The store alone does not keep
** a later load from going first on ARM (a store-release, or an exchange's
** store-exclusive, lets a plain or acquire load after it be satisfied
** before the store is seen; x86's xchg happens to be a full barrier).
** Nothing under TSan, which models no fences (its builds run on x86). */
static inline void sl_barrier_full(void) {
#ifndef SL_BARRIER_TSAN
  atomic_thread_fence(memory_order_seq_cst);
#endif
}

#endif
