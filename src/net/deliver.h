/*
** The delivery pool: a few threads of the process hand the frames that
** bridges receive downstream, in place of one thread per bridge end.
**
** A bridge end is a task. When frames arrive for it, its I/O thread calls
** sl_deliver_notify; a pool thread then calls task->run, which delivers
** one batch and says whether more waits. One task runs on at most one
** thread at a time, so its frames keep their order; after a batch, a task
** with more to deliver goes behind the tasks waiting, if any (fairness),
** or its thread goes straight on with it.
**
** A delivery that waits downstream (a full Fifo, a Lua slave's full
** mailbox, a bridge waiting for a peer) holds its thread. A watcher
** thread looks every SL_DELIVER_TICK_MS while tasks wait and no pool
** thread is free: a thread whose batch did not move between two looks
** counts as waiting, and another thread starts in its place, up to
** SL_DELIVER_MAX_THREADS in all. So a blocked consumer delays the other
** bridges by a tick or two, not for as long as it blocks. Threads beyond
** the set number, and all of them once no task is attached, end after a
** second without work.
**
** Stop: sl_deliver_cancel sets the task's stop flag, which the waits of
** its run are bound to (wait.h), so a run waiting downstream gives up;
** sl_deliver_detach takes the task off the queue and waits, running the
** caller's wait hook, until no thread runs it. The pool does not touch
** the task afterwards.
*/
#ifndef STREAMLUA_NET_DELIVER_H_INCLUDED_
#define STREAMLUA_NET_DELIVER_H_INCLUDED_

#include <stdatomic.h>

#define SL_DELIVER_MAX_THREADS 64   /* the set number, and those that replace
                                       waiting deliveries */
#define SL_DELIVER_SET_MAX 16       /* the most threads one may set */
#define SL_DELIVER_TICK_MS 10       /* the watcher's look at waiting runs */

typedef struct sl_deliver_task sl_deliver_task;

struct sl_deliver_task {
  /* Delivers one batch (a pool thread, its waits bound to `stop`):
  ** non-zero when more frames wait. */
  int (*run)(sl_deliver_task *t);
  atomic_int stop;              /* set by sl_deliver_cancel */
  /* the pool's (its mutex) */
  sl_deliver_task *next;        /* in the queue */
  int state;                    /* idle, queued, running, detached */
  int again;                    /* notified while running */
  int detaching;                /* detached while a thread runs it */
  int attached;                 /* counted among the pool's users */
};

/* Joins the pool (starting its threads on first need): 0, or an errno
** (EAGAIN: no thread could start). Any thread. */
int sl_deliver_attach(sl_deliver_task *t, int (*run)(sl_deliver_task *t));

/* Frames arrived for t: a pool thread will run it. Any thread. */
void sl_deliver_notify(sl_deliver_task *t);

/* Sets t's stop flag: a run waiting downstream gives up. Any thread. */
void sl_deliver_cancel(sl_deliver_task *t);

/* Leaves the pool: cancels, takes t off the queue, and waits for a run on
** another thread to end. On the thread running t, returns at once (the
** pool lets go of t when that run returns). */
void sl_deliver_detach(sl_deliver_task *t);

/* The number of threads the pool keeps (1 to SL_DELIVER_SET_MAX; default
** the online CPUs, at most 4), for every bridge, from the next need on;
** surplus threads end once idle. sl_deliver_threads reads it. */
void sl_deliver_set_threads(int n);
int sl_deliver_threads(void);

/* Pool threads alive now, and how many were ever started to replace a
** waiting delivery (for the tests). */
int sl_deliver_running(void);
unsigned long sl_deliver_replaced(void);

#endif
