/*
** The CPU a thread runs on, and a pause for a thread that polls.
**
** sl_cpu_now reads the number the kernel keeps in the thread's rseq area
** (a load, where sched_getcpu is a call and some thirty instructions); a
** thread without one (an old kernel or C library, rseq turned off) asks
** sched_getcpu. Either may be stale by the time it is used: a hint for
** whether to poll or sleep, never a guarantee.
**
** Internal to streamlua: include it by relative path.
*/
#ifndef STREAMLUA_CPU_H_INCLUDED_
#define STREAMLUA_CPU_H_INCLUDED_

#include <sched.h>
#include <stdint.h>

#if defined(__has_include)
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define SL_HAVE_RSEQ 1
#endif
#endif

/* The CPU the caller runs on now, or -1 if unknown. */
static inline int sl_cpu_now(void) {
#if defined(SL_HAVE_RSEQ) && defined(RSEQ_SIG)
  if (__rseq_size > 0) {
    const struct rseq *rs =
        (const struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
    int cpu = (int)__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
    if (cpu >= 0) return cpu;
  }
#endif
  return sched_getcpu();
}

/* A short pause in a polling loop: lets the other hardware thread of the
** core run, and saves power. */
static inline void sl_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__arm__) && __ARM_ARCH >= 7)
  __asm__ __volatile__("yield");
#endif
}

#endif
