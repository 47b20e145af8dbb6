/*
** sl_worker: a module's own thread (a Fifo's output, a receiver, a
** reader, an I/O loop), started, told to stop and joined one way.
**
**   owner (any thread but the worker's)   the worker thread
**   -----------------------------------   -----------------
**   sl_worker_start(w, ..., fn, wake, a)  runs fn(a) with its waits bound
**                                           to the stop flag (wait.h), so
**   sl_worker_request_stop(w): sets the     a stop frees it from any wait
**     flag, then wake(a) nudges fn out      downstream; fn looks at
**     of its own sleeps (poll, cond)        sl_worker_stopping(w) and
**   sl_worker_join(w): waits for fn to      returns
**     return, running the caller's wait
**     hook (a thread blocked on a mailbox
**     the caller serves can finish), then
**     joins
**
** The owner frees the worker's memory only after a join, or, having
** detached it, leaves that to the thread: fn then returns SL_WORKER_FREED
** once it has freed it, and nothing touches w afterwards (the stop of
** such a worker comes from its own thread, or has no wake, since wake may
** run after the free). start, join and
** detach are called by the owner under its own serialisation (one thread
** at a time); request_stop and stopping from any thread.
*/
#ifndef STREAMLUA_WORKER_H_INCLUDED_
#define STREAMLUA_WORKER_H_INCLUDED_

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

#define SL_WORKER_FREED 1   /* fn's return: it freed the worker's memory */

typedef struct sl_worker {
  pthread_t thread;
  atomic_int stop;              /* asked to end; the thread's waits bind it */
  atomic_int exited;            /* fn has returned */
  atomic_int joinable;          /* started, not yet joined nor detached */
  int (*fn)(void *arg);
  void (*wake)(void *arg);      /* may be NULL */
  void *arg;
  char name[16];
} sl_worker;

/* The stack a worker started with stack_size 0 gets. What runs on a
** worker is C only (a module's loop and the slaves downstream of it, no
** Lua, no deep recursion): 512 KiB holds a long chain of stages. Not
** glibc's default (the stack limit, 8 MiB): hundreds of Fifos would fill a
** 32-bit address space with stacks they never touch. The sanitizers' builds
** get 4 MiB: their frames are several times larger, and glibc carves the
** thread's static TLS, where TSan keeps its per-thread state (about
** 0.7 MiB), out of the same stack. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SL_WORKER_STACK_DEFAULT (4u * 1024 * 1024)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SL_WORKER_STACK_DEFAULT (4u * 1024 * 1024)
#endif
#endif
#ifndef SL_WORKER_STACK_DEFAULT
#define SL_WORKER_STACK_DEFAULT (512u * 1024)
#endif

/* Starts fn(arg) on a new thread (signals blocked, thread.h) named name
** (may be NULL) with a stack of stack_size bytes, SL_WORKER_STACK_DEFAULT
** if 0, raised to the platform's minimum (PTHREAD_STACK_MIN) if below it.
** The stop flag is cleared first. 0, or pthread_create's error number (not
** started). */
int sl_worker_start(sl_worker *w, const char *name, size_t stack_size,
                    int (*fn)(void *arg), void (*wake)(void *arg), void *arg);

/* Sets the stop flag and calls wake(arg). 1 if this call set the flag, 0
** if it was set already (wake is then not called again). Any thread. */
int sl_worker_request_stop(sl_worker *w);

/* Withdraws a stop: the flag is cleared and the thread goes on. Only for
** an owner whose thread decides to end under the owner's lock, called
** with that lock held while the thread has not yet decided to. */
void sl_worker_cancel_stop(sl_worker *w);

/* The stop flag (acquire): non-zero once a stop was asked. */
static inline int sl_worker_stopping(const sl_worker *w) {
  return atomic_load_explicit(&w->stop, memory_order_acquire);
}

/* Non-zero on the worker's own thread. */
int sl_worker_is_self(const sl_worker *w);

/* Waits until fn has returned (see above), then joins. SL_OK, also when
** there is nothing to join; SL_EBUSY on the worker's own thread (which
** cannot join itself: nothing is done). Does not ask for a stop. */
int sl_worker_join(sl_worker *w);

/* request_stop, then join. */
int sl_worker_stop(sl_worker *w);

/* The thread will not be joined: it ends by itself. */
void sl_worker_detach(sl_worker *w);

#pragma GCC visibility pop

#endif
