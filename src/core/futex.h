/*
** Futex words: a thread sleeps while a word holds a value it names, and
** another wakes it after changing the word. Nothing is ordered by the
** calls themselves: what the sleeper looks at is published through
** atomics before the wake.
**
** Internal to streamlua: include it by relative path.
*/
#ifndef STREAMLUA_FUTEX_H_INCLUDED_
#define STREAMLUA_FUTEX_H_INCLUDED_

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleeps while *word == val, until woken, or for at most `us`
** microseconds (us < 0: no limit). Returns at once if *word != val. */
static inline void sl_futex_wait(atomic_int *word, int val, int64_t us) {
  struct timespec ts, *tp = NULL;
  if (us >= 0) {
    ts.tv_sec = (time_t)(us / 1000000);
    ts.tv_nsec = (long)(us % 1000000) * 1000;
    tp = &ts;
  }
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

/* Wakes up to n threads asleep on word. */
static inline void sl_futex_wake(atomic_int *word, int n) {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

#endif
