/*
** sl_lua_queue: how a C thread hands items to Lua. An sl_mailbox (any
** item: frames, transactions, replay results) whose notify activates an
** event on the state's loop; the event's callback drains the mailbox on
** the main thread, handing each item to the owner's deliver.
**
**   any thread                      main thread (the loop, or a wait hook)
**   ----------                      --------------------------------------
**   sl_mailbox_put(q->mb, item)     drain: takes items in batches of
**     (or try_put); the first put     SL_LUA_QUEUE_BATCH; begin(owner)
**     after an idle period wakes      before a batch, deliver(owner, ctx,
**     the loop                        item) for each, end(owner, ctx)
**                                     after it; at most max per loop
**                                     turn, then the loop runs again
**
** A drain is never nested in a delivery of the same queue: when Lua,
** inside a delivery, waits and the wait hook serves the mailboxes, this
** queue is skipped, so its owner's callback is not entered again and sees
** its items one at a time, in order (the others are served). A thread
** blocked on this full mailbox meanwhile gives up at its stop flag.
** Items taken but not yet delivered wait in the queue itself. deliver owns
** the item it is given (what the mailbox's ops held). The owner object is
** held for the length of an event-driven drain.
*/
#ifndef STREAMLUA_LQUEUE_H_INCLUDED_
#define STREAMLUA_LQUEUE_H_INCLUDED_

#include <stdint.h>

#include "streamlua/mailbox.h"
#include "streamlua/object.h"

#define SL_LUA_QUEUE_BATCH 64
#define SL_LUA_QUEUE_TURN 4096   /* items per loop turn before yielding */

struct event;
struct sl_state;

typedef struct sl_lua_queue_ops {
  int (*begin)(void *owner);                         /* may be NULL: ctx 0 */
  void (*deliver)(void *owner, int ctx, void *item); /* takes item */
  void (*end)(void *owner, int ctx);                 /* may be NULL */
  void (*drained)(void *owner);   /* may be NULL: after an event's drain */
} sl_lua_queue_ops;

typedef struct sl_lua_queue {
  sl_mailbox *_Atomic mb;        /* NULL once detached */
  int owns_mb;
  void (*release)(void *item);   /* drops an item never delivered */
  struct event *ev;
  const sl_lua_queue_ops *ops;
  sl_object *owner;
  void *pend[SL_LUA_QUEUE_BATCH];
  uint32_t pend_head, pend_n;
  int draining;                  /* a drain of this queue is on the stack */
} sl_lua_queue;

/* A queue of capacity items held as item_ops says; both ops tables must
** outlive it. SL_OK or SL_ENOMEM (nothing to undo). */
int sl_lua_queue_init(sl_lua_queue *q, struct sl_state *st, uint32_t capacity,
                      const sl_mailbox_ops *item_ops,
                      const sl_lua_queue_ops *ops, sl_object *owner);
/* The same over a mailbox someone else owns (and frees), whose notify
** calls sl_lua_queue_notify(q); release drops one of its items. */
int sl_lua_queue_attach(sl_lua_queue *q, struct sl_state *st, sl_mailbox *mb,
                        void (*release)(void *item),
                        const sl_lua_queue_ops *ops, sl_object *owner);
/* Any thread: the mailbox (not owned) is going away; nothing is taken
** from it after this returns, unless a drain had already started. */
void sl_lua_queue_detach(sl_lua_queue *q);
/* Releases the items taken and not delivered, frees the event and (if
** owned) the mailbox with what it holds. Idempotent; main thread. */
void sl_lua_queue_fini(sl_lua_queue *q);

/* The mailbox's notify: any thread. arg is the sl_lua_queue. */
void sl_lua_queue_notify(void *arg);
/* Delivers up to max items; main thread. 1 if the mailbox may hold more.
** Nested in a delivery of the same queue: does nothing, returns 0. */
int sl_lua_queue_drain(sl_lua_queue *q, uint32_t max);
/* Hands every queued item to fn instead (fn takes it); main thread. */
void sl_lua_queue_flush(sl_lua_queue *q, void (*fn)(void *item));

#endif
