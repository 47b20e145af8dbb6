/*
** Filter: pass one channel, optionally without errored frames.
*/
#include "streamlua/filter.h"

#include <stdlib.h>

#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"

typedef struct sl_filter filter;

struct sl_filter {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  int drop_errors;
  uint8_t channel;
  sl_log *log;
  atomic_uint_least64_t passed, dropped;
};

static void filter_accept(sl_slave *s, sl_frame *f) {
  filter *ft = (filter *)s->owner;
  if (sl_frame_get_channel(f) != ft->channel) goto out_drop;
  if (ft->drop_errors && sl_frame_get_error(f) != 0) {
    sl_log_write(ft->log, SL_LOG_DEBUG, "Dropping frame due to error: 0x%x",
                 (unsigned)sl_frame_get_error(f));
    goto out_drop;
  }
  atomic_fetch_add_explicit(&ft->passed, 1, memory_order_relaxed);
  sl_master_send_frame(&ft->master, f);
  return;
out_drop:
  atomic_fetch_add_explicit(&ft->dropped, 1, memory_order_relaxed);
}

static size_t filter_counters(sl_object *obj, sl_counter *out, size_t max) {
  filter *ft = (filter *)obj;
  sl_counter c[] = {{"txFrames", atomic_load(&ft->passed)},
                    {"drops", atomic_load(&ft->dropped)}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

static void filter_destroy(sl_object *obj) {
  filter *ft = (filter *)obj;
  sl_master_fini(&ft->master);
  sl_slave_fini(&ft->slave);
  free(ft);
}

static const sl_slave_ops filter_ops = {.accept_frame = filter_accept};

static const sl_class filter_class = {.name = "Filter",
                                      .destroy = filter_destroy,
                                      .counters = filter_counters};

sl_filter *sl_filter_new(int drop_errors, uint8_t channel, sl_error *err) {
  filter *ft = calloc(1, sizeof *ft);
  if (ft == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&ft->obj, &filter_class);
  ft->drop_errors = drop_errors != 0;
  ft->channel = channel;
  ft->log = sl_log_get("stream.Filter");
  if (sl_slave_init(&ft->slave, &filter_ops, &ft->obj) != SL_OK) goto out_free;
  if (sl_master_init(&ft->master, &ft->obj) != SL_OK) goto out_slave;
  return ft;
out_slave:
  sl_slave_fini(&ft->slave);
out_free:
  free(ft);
  return sl_fail(err, SL_ENOMEM, NULL);
}

sl_object *sl_filter_object(sl_filter *ft) { return ft != NULL ? &ft->obj : NULL; }

sl_filter *sl_filter_from_object(sl_object *obj) {
  return sl_object_is(obj, &filter_class) ? (filter *)obj : NULL;
}
