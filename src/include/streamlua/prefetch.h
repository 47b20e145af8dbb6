/*
** Prefetching a cache line the caller is about to write. A line last
** written on another core must be fetched and taken exclusive before the
** write; asking for it exclusive ahead of time (x86 PREFETCHW, where the
** CPU has it) saves the second round trip that a plain prefetch leaves.
*/
#ifndef STREAMLUA_PREFETCH_H_INCLUDED_
#define STREAMLUA_PREFETCH_H_INCLUDED_

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

/* 1 when the CPU has x86 PREFETCHW: set at load time from CPUID
** (core/prefetch.c); 0 on other architectures, where the API is the same. */
extern int sl_prefetchw_ok;

#if defined(__x86_64__) || defined(__i386__)

static inline void sl_prefetch_write(const void *p) {
  if (sl_prefetchw_ok)
    __asm__ __volatile__("prefetchw %0" : : "m"(*(const char *)p));
  else
    __builtin_prefetch(p, 1, 3);
}
#else
static inline void sl_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }
#endif

#pragma GCC visibility pop

#endif
