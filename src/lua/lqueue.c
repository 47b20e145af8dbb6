/*
** The thread-to-loop queue of the binding (lqueue.h): a mailbox, an event
** and the drain that runs on the main thread.
*/
#include "lqueue.h"

#include <string.h>

#include <event2/event.h>

#include "lsl.h"

void sl_lua_queue_notify(void *arg) {
  sl_lua_queue *q = arg;
  event_active(q->ev, EV_READ, 0);
}

/* Items taken earlier go first, then fresh batches. */
int sl_lua_queue_drain(sl_lua_queue *q, uint32_t max) {
  if (q->draining) return 0;
  const sl_lua_queue_ops *ops = q->ops;
  sl_mailbox *mb = q->mb;
  int ctx = 0, open = 0, more = mb != NULL;
  q->draining = 1;
  for (uint32_t done = 0; more && done < max; done++) {
    if (q->pend_head == q->pend_n) {
      if (open && ops->end != NULL) ops->end(q->owner, ctx);
      open = 0;
      q->pend_head = 0;
      q->pend_n = sl_mailbox_take(mb, q->pend, SL_LUA_QUEUE_BATCH);
      if (q->pend_n == 0) {
        more = 0;
        break;
      }
    }
    if (!open) {
      ctx = ops->begin != NULL ? ops->begin(q->owner) : 0;
      open = 1;
    }
    ops->deliver(q->owner, ctx, q->pend[q->pend_head++]);
  }
  if (open && ops->end != NULL) ops->end(q->owner, ctx);
  q->draining = 0;
  return more;
}

static void drain_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  sl_lua_queue *q = arg;
  sl_object *owner = q->owner;
  sl_object_ref(owner);   /* Lua may drop the last other reference */
  if (sl_lua_queue_drain(q, SL_LUA_QUEUE_TURN)) {
    /* More to come: as a zero timeout, not event_active, so the loop sees
    ** its timers and a stop between two turns however busy the sender. */
    static const struct timeval now = {0, 0};
    event_add(q->ev, &now);
  } else if (q->ops->drained != NULL) {
    q->ops->drained(owner);
  }
  sl_object_unref(owner);
}

void sl_lua_queue_flush(sl_lua_queue *q, void (*fn)(void *item)) {
  sl_mailbox *mb = q->mb;
  for (;;) {
    while (q->pend_head < q->pend_n) fn(q->pend[q->pend_head++]);
    q->pend_head = q->pend_n = 0;
    if (mb == NULL) return;
    q->pend_n = sl_mailbox_take(mb, q->pend, SL_LUA_QUEUE_BATCH);
    if (q->pend_n == 0) return;
  }
}

void sl_lua_queue_detach(sl_lua_queue *q) { q->mb = NULL; }

int sl_lua_queue_attach(sl_lua_queue *q, sl_state *st, sl_mailbox *mb,
                        void (*release)(void *item),
                        const sl_lua_queue_ops *ops, sl_object *owner) {
  memset(q, 0, sizeof *q);
  q->ev = event_new(st->base, -1, 0, drain_cb, q);
  if (q->ev == NULL) return SL_ENOMEM;
  q->mb = mb;
  q->release = release;
  q->ops = ops;
  q->owner = owner;
  return SL_OK;
}

int sl_lua_queue_init(sl_lua_queue *q, sl_state *st, uint32_t capacity,
                      const sl_mailbox_ops *item_ops,
                      const sl_lua_queue_ops *ops, sl_object *owner) {
  sl_mailbox *mb = sl_mailbox_new(capacity, item_ops, sl_lua_queue_notify, q);
  if (mb == NULL) return SL_ENOMEM;
  if (sl_lua_queue_attach(q, st, mb, item_ops->release, ops, owner) != SL_OK) {
    sl_mailbox_free(mb);
    return SL_ENOMEM;
  }
  q->owns_mb = 1;
  return SL_OK;
}

void sl_lua_queue_fini(sl_lua_queue *q) {
  if (q->ev == NULL) return;
  event_free(q->ev);
  q->ev = NULL;
  while (q->pend_head < q->pend_n) {
    void *item = q->pend[q->pend_head++];
    if (q->release != NULL) q->release(item);
  }
  if (q->owns_mb) sl_mailbox_free(q->mb);
  q->mb = NULL;
}
