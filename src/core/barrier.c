/* membarrier(2) for barrier.h, registered once at load time. */
#include "streamlua/barrier.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define SL_BARRIER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SL_BARRIER_TSAN 1
#endif
#endif

int sl_barrier_asym;

__attribute__((constructor)) static void barrier_setup(void) {
#ifndef SL_BARRIER_TSAN
  sl_barrier_asym = syscall(SYS_membarrier,
                            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

void sl_barrier_slow(void) {
  if (sl_barrier_asym)
    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
}
