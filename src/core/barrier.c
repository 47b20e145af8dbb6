/* membarrier(2) for barrier.h, registered once at load time. */
#include "barrier.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

int sl_barrier_asym;

static long membarrier(int cmd) { return syscall(SYS_membarrier, cmd, 0, 0); }

__attribute__((constructor)) static void barrier_setup(void) {
#ifndef SL_BARRIER_TSAN
  sl_barrier_asym = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
#endif
}

void sl_barrier_slow(void) {
  if (!sl_barrier_asym) {
    sl_barrier_full();
    return;
  }
  if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return;
  /* Refused (no registration in this process): register and try again,
  ** and failing that use the global command. */
  if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
      membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
    return;
  membarrier(MEMBARRIER_CMD_GLOBAL);     /* slower; needs no registering */
}
