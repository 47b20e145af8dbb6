/*
** RateDrop: keep one frame in N (count mode) or one per period (time
** mode), by Rogue's rules (see filter.h). Time mode uses the wall clock,
** as Rogue does.
*/
#include <pthread.h>
#include <stdlib.h>

#include "streamlua/filter.h"
#include "streamlua/master.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"

#include "../core/clock.h"

typedef struct sl_rate_drop rate_drop;

struct sl_rate_drop {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  pthread_mutex_t mutex;       /* senders may be on several threads */
  int time_mode;
  uint32_t target, counter;    /* count mode */
  uint64_t period_us, next_us; /* time mode */
  atomic_uint_least64_t passed, dropped;
};

/* Decides under the lock, sends without it. */
static void rate_accept(sl_slave *s, sl_frame *f) {
  rate_drop *r = (rate_drop *)s->owner;
  int pass;
  pthread_mutex_lock(&r->mutex);
  if (r->time_mode) {
    uint64_t now = (uint64_t)sl_clock_us();
    pass = now > r->next_us;
    if (pass) r->next_us = now + r->period_us;
  } else {
    pass = r->counter == r->target;
    r->counter = pass ? 0 : r->counter + 1;
  }
  pthread_mutex_unlock(&r->mutex);
  if (!pass) {
    atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
    return;
  }
  atomic_fetch_add_explicit(&r->passed, 1, memory_order_relaxed);
  sl_master_send_frame(&r->master, f);
}

static size_t rate_counters(sl_object *obj, sl_counter *out, size_t max) {
  rate_drop *r = (rate_drop *)obj;
  sl_counter c[] = {{"txFrames", atomic_load(&r->passed)},
                    {"drops", atomic_load(&r->dropped)}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

static void rate_destroy(sl_object *obj) {
  rate_drop *r = (rate_drop *)obj;
  sl_master_fini(&r->master);
  sl_slave_fini(&r->slave);
  pthread_mutex_destroy(&r->mutex);
  free(r);
}

static const sl_slave_ops rate_ops = {.accept_frame = rate_accept};

static const sl_class rate_class = {.name = "RateDrop",
                                    .destroy = rate_destroy,
                                    .counters = rate_counters};

sl_rate_drop *sl_rate_drop_new(int period, double value, sl_error *err) {
  int time_mode = period && value != 0;
  if (!(value >= 0)) return sl_fail(err, SL_EINVAL, "value must not be negative");
  if (time_mode && value * 1e6 > UINT32_MAX)
    return sl_fail(err, SL_ERANGE, "period too long (at most 4294 s)");
  if (!time_mode && value > UINT32_MAX)
    return sl_fail(err, SL_ERANGE, "count too large (at most 2^32-1)");
  rate_drop *r = calloc(1, sizeof *r);
  if (r == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&r->obj, &rate_class);
  pthread_mutex_init(&r->mutex, NULL);
  r->time_mode = time_mode;
  if (r->time_mode) {
    r->period_us = (uint64_t)(value * 1e6);
    r->next_us = (uint64_t)sl_clock_us() + r->period_us;
  } else {
    r->target = r->counter = (uint32_t)value;
  }
  if (sl_slave_init(&r->slave, &rate_ops, &r->obj) != SL_OK) goto out_free;
  if (sl_master_init(&r->master, &r->obj) != SL_OK) goto out_slave;
  return r;
out_slave:
  sl_slave_fini(&r->slave);
out_free:
  pthread_mutex_destroy(&r->mutex);
  free(r);
  return sl_fail(err, SL_ENOMEM, NULL);
}

sl_object *sl_rate_drop_object(sl_rate_drop *r) { return r != NULL ? &r->obj : NULL; }

sl_rate_drop *sl_rate_drop_from_object(sl_object *obj) {
  return sl_object_is(obj, &rate_class) ? (rate_drop *)obj : NULL;
}
