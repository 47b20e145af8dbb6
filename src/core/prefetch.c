/* Whether the CPU has PREFETCHW (prefetch.h), read once at load time. */
#include "streamlua/prefetch.h"

int sl_prefetchw_ok;

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

__attribute__((constructor)) static void detect_prefetchw(void) {
  unsigned a, b, c, d;
  if (__get_cpuid(0x80000001u, &a, &b, &c, &d)) sl_prefetchw_ok = (c >> 8) & 1;
}
#endif
