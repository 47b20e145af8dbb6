/*
** Bounded-latency waiting for the few places where a thread must wait for
** another to finish something (a removed slave's last delivery, a module
** thread's exit). While it waits, the waiting thread runs its wait hook:
** the Lua binding sets one on the main thread that keeps handing mailbox
** frames to Lua, so a thread blocked on a full mailbox can always finish
** and the wait cannot turn into a deadlock.
*/
#ifndef STREAMLUA_WAIT_H_INCLUDED_
#define STREAMLUA_WAIT_H_INCLUDED_

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

/* Sets the calling thread's hook (NULL clears it). */
void sl_wait_set_hook(void (*hook)(void *arg), void *arg);
/* Whether the calling thread has a hook (a wait that cannot run it, a
** sleep on a condition variable, must not be used there). */
int sl_wait_has_hook(void);

/* Waits until cond(arg) returns non-zero: yields, then sleeps in short
** steps, running the calling thread's hook between checks. */
void sl_wait_until(int (*cond)(void *arg), void *arg);

/* Looks at cond(arg) for up to `us` microseconds, yielding the CPU between
** looks, for an answer expected sooner than a sleeping thread would wake
** for it. Returns cond(arg). */
int sl_wait_briefly(int (*cond)(void *arg), void *arg, long us);

/*
** Giving up. A wait inside the library (a sender waiting for a peer or for
** room, a full mailbox, a checker that holds senders back, a memory
** transaction) gives up, besides its own object stopping, when
**   - the thread it runs on belongs to an object that is stopping: a
**     module thread (a Fifo's output, a generator, a bridge's delivery
**     thread, a reader) binds its owner's stop flag with sl_wait_bind, so
**     stopping the owner frees its thread from whatever it waits in
**     downstream, and the owner can then join it; or
**   - the thread takes interrupts (the thread that runs Lua) and one is
**     pending: sl_wait_interrupt, called from a SIGINT handler.
** Waits that give up return SL_ECANCELED; the frame they held is dropped
** and counted, never half sent.
*/

/* Binds the calling thread to `stop` (NULL unbinds): while *stop is
** non-zero, waits on this thread give up. */
void sl_wait_bind(const atomic_int *stop);

/* The calling thread takes interrupts (on != 0) or not. `probe`, when
** set, is asked in each look whether an interrupt came another way (the
** Lua interpreter's own Ctrl-C handler); it may call sl_wait_interrupt. */
void sl_wait_interruptible(int on, int (*probe)(void *arg), void *arg);

/* Records an interrupt for the threads that take them. Safe in a signal
** handler. */
void sl_wait_interrupt(void);

/* Whether an interrupt is pending; sl_wait_take_interrupt also clears it. */
int sl_wait_interrupted(void);
int sl_wait_take_interrupt(void);

/* Non-zero when waits on the calling thread should give up now. */
int sl_wait_cancelled(void);

/* Inits a condition variable on the monotonic clock (the clock of every
** deadline below). Returns 0 or an errno. */
int sl_cond_init(pthread_cond_t *cv);

/* *ts = now (monotonic) + us microseconds. */
void sl_deadline_after(struct timespec *ts, int64_t us);

/* Microseconds from now until *ts (negative once passed). */
int64_t sl_deadline_left(const struct timespec *ts);

/* Waits on cv (made by sl_cond_init) with mu held, until woken, until
** `deadline` (NULL: none) or until the thread's waits give up; it wakes
** in short slices to look. Returns SL_OK when woken or a slice ended (the
** caller looks at its condition again), SL_ETIMEDOUT, or SL_ECANCELED. */
int sl_wait_cond(pthread_cond_t *cv, pthread_mutex_t *mu,
                 const struct timespec *deadline);

/* sl_wait_until that gives up: SL_OK once cond(arg) holds, SL_ECANCELED
** when the thread's waits give up first. */
int sl_wait_for(int (*cond)(void *arg), void *arg);

#pragma GCC visibility pop

#endif
