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

/* Sets the calling thread's hook (NULL clears it). */
void sl_wait_set_hook(void (*hook)(void *arg), void *arg);

/* Waits until cond(arg) returns non-zero: yields, then sleeps in short
** steps, running the calling thread's hook between checks. */
void sl_wait_until(int (*cond)(void *arg), void *arg);

/* Looks at cond(arg) for up to `us` microseconds, yielding the CPU between
** looks, for an answer expected sooner than a sleeping thread would wake
** for it. Returns cond(arg). */
int sl_wait_briefly(int (*cond)(void *arg), void *arg, long us);

#endif
