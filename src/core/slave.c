/*
** The slave role and the plain counting slave.
*/
#include "streamlua/slave.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/log.h"
#include "streamlua/status.h"

int sl_slave_init(sl_slave *s, const sl_slave_ops *ops, sl_object *owner) {
  s->ops = ops;
  s->owner = owner;
  s->pool = sl_pool_new();
  if (s->pool == NULL) return SL_ENOMEM;
  atomic_init(&s->frame_count, 0);
  atomic_init(&s->byte_count, 0);
  atomic_init(&s->debug_bytes, 0);
  atomic_init(&s->debug_log, NULL);
  owner->slave = s;
  return SL_OK;
}

void sl_slave_fini(sl_slave *s) {
  sl_pool_unref(s->pool);
  s->pool = NULL;
}

void sl_slave_accept(sl_slave *s, sl_frame *f) {
  s->ops->accept_frame(s, f);
}

/* Bytes first, then the frame (release): whoever has read a frame count
** (acquire) finds at least those frames' bytes in the byte count. */
void sl_slave_count_nolock_(sl_slave *s, const sl_frame *f) {
  atomic_fetch_add_explicit(&s->byte_count, sl_frame_get_payload(f),
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&s->frame_count, 1, memory_order_release);
}

/*
** Rogue's debug dump: a header record, then the first bytes as " 0x%02x"
** items after a 5-space indent, 7 on the first line and 8 on the next,
** and any rest at a level no filter hides.
*/
static void debug_dump(sl_log *log, uint32_t max, const sl_frame *f) {
  uint32_t payload = sl_frame_get_payload(f);
  sl_log_write(log, SL_LOG_CRITICAL, "Got Size=%u, Error=%u, Data:", payload,
               (unsigned)sl_frame_get_error(f));
  uint32_t n = payload < max ? payload : max;
  char line[5 + 8 * 5 + 1] = "     ";
  size_t len = 5;
  sl_frame_iter it;
  sl_frame_iter_read(&it, f, 0);
  for (uint32_t count = 1; count <= n; count++) {
    uint8_t byte;
    sl_frame_iter_get(&it, &byte, 1);
    len += (size_t)snprintf(line + len, sizeof line - len, " 0x%02x", byte);
    if ((count + 1) % 8 == 0) {
      sl_log_write(log, SL_LOG_CRITICAL, "%s", line);
      len = 5;
      line[len] = '\0';
    }
  }
  if (len > 5) sl_log_write(log, SL_LOG_ALWAYS, "%s", line);
}

void sl_slave_accept_base(sl_slave *s, sl_frame *f) {
  int locked = sl_frame_lock_unless_sole(f);
  sl_slave_count_nolock_(s, f);
  uint32_t dbg = atomic_load_explicit(&s->debug_bytes, memory_order_relaxed);
  if (dbg > 0) {
    sl_log *log = atomic_load_explicit(&s->debug_log, memory_order_acquire);
    if (log != NULL) debug_dump(log, dbg, f);
  }
  if (locked) sl_frame_unlock(f);
}

sl_frame *sl_slave_req_frame(sl_slave *s, uint32_t size, int zero_copy) {
  if (s->ops->accept_req != NULL) return s->ops->accept_req(s, size, zero_copy);
  return sl_pool_req_frame(s->pool, size);
}

sl_frame *sl_slave_req_local_frame(sl_slave *s, uint32_t size) {
  return sl_pool_req_frame(s->pool, size);
}

int sl_slave_set_debug(sl_slave *s, uint32_t max_bytes, const char *name) {
  if (max_bytes > 0) {
    sl_log *log = sl_log_get(name);
    if (log == NULL) return SL_ENOMEM;
    sl_log_set_every(log, 1);            /* a dump of every frame, as asked */
    sl_log_write(log, SL_LOG_WARNING, "Starting logger with level = %d",
                 sl_log_level(log));
    atomic_store_explicit(&s->debug_log, log, memory_order_release);
  }
  atomic_store_explicit(&s->debug_bytes, max_bytes, memory_order_relaxed);
  return SL_OK;
}

uint64_t sl_slave_get_frame_count(const sl_slave *s) {
  return atomic_load_explicit(&s->frame_count, memory_order_acquire);
}

uint64_t sl_slave_get_byte_count(const sl_slave *s) {
  return atomic_load_explicit(&s->byte_count, memory_order_relaxed);
}

/* ---- the plain slave ---- */

typedef struct plain_slave {
  sl_object obj;
  sl_slave slave;
} plain_slave;

const sl_slave_ops sl_slave_base_ops = {.accept_frame = sl_slave_accept_base};

static void plain_destroy(sl_object *obj) {
  plain_slave *p = (plain_slave *)obj;
  sl_slave_fini(&p->slave);
  free(p);
}

static const sl_class plain_class = {.name = "Slave", .destroy = plain_destroy};

sl_object *sl_slave_new(sl_error *err) {
  plain_slave *p = malloc(sizeof *p);
  if (p == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&p->obj, &plain_class);
  if (sl_slave_init(&p->slave, &sl_slave_base_ops, &p->obj) != SL_OK) {
    free(p);
    return sl_fail(err, SL_ENOMEM, NULL);
  }
  return &p->obj;
}
