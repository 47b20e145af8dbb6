/*
** Filter and RateDrop: synchronous modules (they run in the sender's
** thread and pass the frame object itself on), with Rogue's exact rules.
**
** Filter(dropErrors, channel): passes frames of that channel; with
** dropErrors also drops frames whose error byte is non-zero.
**
** RateDrop(period, value): period false or value 0 is count mode — the
** first frame passes, then `value` (truncated) are dropped, then one
** passes (frames k*(value+1) pass). Otherwise time mode — at most one
** frame per `value` seconds passes, none during the first period after
** creation, idle time is not banked.
**
** Both count what they pass and drop (Rogue's have no counters).
** Thread-safe.
*/
#ifndef STREAMLUA_FILTER_H_INCLUDED_
#define STREAMLUA_FILTER_H_INCLUDED_

#include <stdint.h>

#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

/* refs = 1; NULL (err says why) when out of memory, and for RateDrop when
** value is negative (SL_EINVAL) or too large (SL_ERANGE: a period over
** 4294 s, a count over 2^32-1). */
typedef struct sl_filter sl_filter;
typedef struct sl_rate_drop sl_rate_drop;

sl_filter *sl_filter_new(int drop_errors, uint8_t channel, sl_error *err);
sl_object *sl_filter_object(sl_filter *ft);          /* (transfer none); NULL-safe */
sl_filter *sl_filter_from_object(sl_object *obj);    /* NULL if not a Filter */

sl_rate_drop *sl_rate_drop_new(int period, double value, sl_error *err);
sl_object *sl_rate_drop_object(sl_rate_drop *rd);        /* (transfer none); NULL-safe */
sl_rate_drop *sl_rate_drop_from_object(sl_object *obj);  /* NULL if not a RateDrop */

#pragma GCC visibility pop

#endif
