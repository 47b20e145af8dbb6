/*
** sl.utilities.StreamWriter, StreamWriterChannel and StreamReader: the
** Lua face of src/utilities/stream_writer.c and stream_reader.c.
**
** Waiting from Lua (waitFrameCount, close, closeWait) serves the loop in
** short slices, so frames that reach the writer through Lua, or that the
** reader hands to Lua slaves through their mailboxes, keep moving while
** the script waits. A reader reports the end of each replay through a
** libevent event its thread activates; the loop then calls onDone on the
** main thread. While a replay may still report, the reader's box is
** pinned in the registry, so dropping the last variable does not stop it.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "../core/clock.h"
#include "lqueue.h"
#include "lsl.h"
#include "streamlua/stream_reader.h"
#include "streamlua/stream_writer.h"
#include "streamlua/wait.h"

#define SLICE_US 2000            /* longest the loop is served between checks */
#define READER_LOG "streamReader"

static const char chan_cache_key = 0;   /* writer fields: n -> channel box */

/* ---- waiting while the loop is served ---- */

typedef struct waiter {
  int (*done)(void *arg);       /* the condition; never blocks */
  void *arg;
  double deadline;              /* 0: none */
} waiter;

static int waiter_over(void *arg) {
  waiter *w = arg;
  return w->done(w->arg) || (w->deadline > 0 && sl_clock_s() >= w->deadline);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;   /* only ends the loop turn */
}

/* Optional timeout in seconds at i; nil or 0 means no limit. */
static double opt_timeout(lua_State *L, int i) {
  if (lua_isnoneornil(L, i)) return 0;
  double s = luaL_checknumber(L, i);
  luaL_argcheck(L, s >= 0 && isfinite(s) && s <= 1e9, i,
                "non-negative number of seconds expected");
  return s;
}

/* Optional timeout in microseconds at i (Rogue's unit), as seconds; nil or
** 0 means no limit (Rogue's 0). */
static double opt_timeout_us(lua_State *L, int i) {
  if (lua_isnoneornil(L, i)) return 0;
  double us = luaL_checknumber(L, i);
  luaL_argcheck(L, us >= 0 && isfinite(us) && us <= 1e15, i,
                "non-negative number of microseconds expected");
  return us / 1e6;
}

/*
** Waits until done(arg), for at most `timeout` seconds (0: no limit). On
** the main thread outside any callback the loop is served meanwhile, at
** most SLICE_US at a time (any event ends a slice early), so timers run
** and Lua slaves get their mailboxes. Inside a callback the loop cannot be
** entered again: sl_wait_until's hook then keeps the mailboxes served.
*/
static int wait_serving(lua_State *L, int (*done)(void *arg), void *arg,
                        double timeout) {
  sl_state *st = sl_state_get(L);
  waiter w = {done, arg, timeout > 0 ? sl_clock_s() + timeout : 0};
  struct event *tick = NULL;
  if (sl_state_on_main(st) && !st->in_loop)
    tick = event_new(st->base, -1, 0, tick_cb, NULL);
  if (tick == NULL) {
    if (sl_wait_for(waiter_over, &w) == SL_ECANCELED) sl_lua_interrupted(L);
    return done(arg);
  }
  while (!waiter_over(&w)) {
    if (sl_wait_cancelled()) {
      event_free(tick);
      sl_lua_interrupted(L);
    }
    double left = w.deadline > 0 ? w.deadline - sl_clock_s() : 1.0;
    struct timeval tv = sl_tv_from_us(left * 1e6 < SLICE_US ? (int64_t)(left * 1e6) + 1
                                                            : SLICE_US);
    event_add(tick, &tv);
    sl_lua_serve_once(L, -1);
    event_del(tick);
  }
  event_free(tick);
  return done(arg);
}

/* Hands Lua slaves what is already in their mailboxes. */
static void serve_ready(lua_State *L) {
  sl_state *st = sl_state_get(L);
  if (sl_state_on_main(st)) sl_lua_slaves_serve(st);
}

static int raise_open(lua_State *L, const char *cls, const char *name, int rc,
                      int err) {
  if (rc == SL_ENOTFOUND)
    return luaL_error(L, "%s: cannot open '%s': %s", cls, name, strerror(err));
  return luaL_error(L, "%s: cannot open '%s': %s", cls, name, sl_status_str(rc));
}

/* ---- StreamWriter ---- */

static sl_stream_writer *check_writer(lua_State *L) {
  sl_stream_writer *w = sl_stream_writer_from_object(sl_lua_check_object(L, 1));
  if (w == NULL) luaL_argerror(L, 1, "StreamWriter expected");
  return w;
}

static int writer_open(lua_State *L) {
  sl_stream_writer *w = check_writer(L);
  const char *name = luaL_checkstring(L, 2);
  int err = 0;
  int rc = sl_stream_writer_open(w, name, &err);
  if (rc != SL_OK) return raise_open(L, "StreamWriter", name, rc, err);
  return 0;
}

static int writer_close(lua_State *L) {
  sl_stream_writer_close(check_writer(L));
  return 0;
}

static int writer_is_open(lua_State *L) {
  lua_pushboolean(L, sl_stream_writer_is_open(check_writer(L)));
  return 1;
}

static int writer_set_raw(lua_State *L) {
  sl_stream_writer *w = check_writer(L);
  luaL_checkany(L, 2);
  sl_stream_writer_set_raw(w, lua_toboolean(L, 2));
  return 0;
}

static int writer_get_raw(lua_State *L) {
  lua_pushboolean(L, sl_stream_writer_get_raw(check_writer(L)));
  return 1;
}

static int writer_set_buffer_size(lua_State *L) {
  sl_stream_writer *w = check_writer(L);
  int rc = sl_stream_writer_set_buffer_size(w, (uint32_t)sl_check_range(L, 2, 0, UINT32_MAX));
  if (rc != SL_OK) return sl_status_error(L, "setBufferSize", rc);
  return 0;
}

static int writer_set_max_size(lua_State *L) {
  sl_stream_writer *w = check_writer(L);
  sl_stream_writer_set_max_size(w, (uint64_t)sl_check_range(L, 2, 0, LUA_MAXINTEGER));
  return 0;
}

static int writer_set_drop_errors(lua_State *L) {
  sl_stream_writer *w = check_writer(L);
  luaL_checkany(L, 2);
  sl_stream_writer_set_drop_errors(w, lua_toboolean(L, 2));
  return 0;
}

/* The channel boxes live in the writer's fields, so getChannel(n) is the
** same value for as long as the writer is. */
static void push_chan_cache(lua_State *L) {
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 1);
  }
  if (lua_rawgetp(L, -1, &chan_cache_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, &chan_cache_key);
  }
  lua_remove(L, -2);                                /* fields */
}

static int writer_get_channel(lua_State *L) {
  sl_stream_writer *w = check_writer(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0 && n <= 255, 2, "channel out of range (0..255)");
  lua_settop(L, 2);
  push_chan_cache(L);                               /* cache */
  if (lua_rawgeti(L, 3, n) == LUA_TUSERDATA) return 1;
  lua_pop(L, 1);
  sl_object *ch = sl_stream_writer_channel_object(sl_stream_writer_get_channel(w, (uint8_t)n));
  if (ch == NULL) return luaL_error(L, "getChannel: out of memory");
  sl_lua_push_object(L, ch);
  sl_object_unref(ch);
  lua_pushvalue(L, -1);
  lua_rawseti(L, 3, n);
  return 1;
}

static int writer_get_total_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_stream_writer_get_total_size(check_writer(L)));
  return 1;
}

static int writer_get_current_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_stream_writer_get_current_size(check_writer(L)));
  return 1;
}

static int writer_get_bandwidth(lua_State *L) {
  lua_pushnumber(L, sl_stream_writer_get_bandwidth(check_writer(L)));
  return 1;
}

static int writer_get_frame_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_stream_writer_get_frame_count(check_writer(L)));
  return 1;
}

/* A frame count to reach, on the writer (ch == NULL) or a channel. */
typedef struct count_wait {
  sl_stream_writer *w;
  sl_stream_writer_channel *ch;
  uint64_t count;
} count_wait;

static int count_done(void *arg) {
  count_wait *c = arg;
  uint64_t n = c->ch != NULL ? sl_stream_writer_channel_get_frame_count(c->ch)
                             : sl_stream_writer_get_frame_count(c->w);
  return n >= c->count;
}

/* waitFrameCount(count [, timeoutUs]) -> true once count is reached, false
** once timeoutUs microseconds passed (Rogue's unit; nil or 0: no limit). */
static int wait_count(lua_State *L, sl_stream_writer *w, sl_stream_writer_channel *ch) {
  count_wait c = {w, ch, (uint64_t)sl_check_range(L, 2, 0, LUA_MAXINTEGER)};
  lua_pushboolean(L, wait_serving(L, count_done, &c, opt_timeout_us(L, 3)));
  return 1;
}

static int writer_wait_frame_count(lua_State *L) {
  return wait_count(L, check_writer(L), NULL);
}

static const luaL_Reg writer_methods[] = {
    {"open", writer_open},
    {"close", writer_close},
    {"isOpen", writer_is_open},
    {"setRaw", writer_set_raw},
    {"getRaw", writer_get_raw},
    {"setBufferSize", writer_set_buffer_size},
    {"setMaxSize", writer_set_max_size},
    {"setDropErrors", writer_set_drop_errors},
    {"getChannel", writer_get_channel},
    {"getTotalSize", writer_get_total_size},
    {"getCurrentSize", writer_get_current_size},
    {"getBandwidth", writer_get_bandwidth},
    {"getFrameCount", writer_get_frame_count},
    {"waitFrameCount", writer_wait_frame_count},
    {NULL, NULL}};

static int writer_new(lua_State *L) {
  sl_error err;
  sl_stream_writer *w = sl_stream_writer_new(&err);
  if (w == NULL) return luaL_error(L, "StreamWriter: %s", err.msg);
  sl_lua_push_object(L, sl_stream_writer_object(w));
  sl_object_unref(sl_stream_writer_object(w));
  return 1;
}

/* ---- StreamWriterChannel ---- */

static sl_stream_writer_channel *check_channel(lua_State *L) {
  sl_stream_writer_channel *ch =
      sl_stream_writer_channel_from_object(sl_lua_check_object(L, 1));
  if (ch == NULL) luaL_argerror(L, 1, "StreamWriterChannel expected");
  return ch;
}

static int channel_get_frame_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_stream_writer_channel_get_frame_count(check_channel(L)));
  return 1;
}

static int channel_set_frame_count(lua_State *L) {
  sl_stream_writer_channel *ch = check_channel(L);
  sl_stream_writer_channel_set_frame_count(ch, (uint64_t)sl_check_range(L, 2, 0, LUA_MAXINTEGER));
  return 0;
}

static int channel_wait_frame_count(lua_State *L) {
  return wait_count(L, NULL, check_channel(L));
}

static const luaL_Reg channel_methods[] = {
    {"getFrameCount", channel_get_frame_count},
    {"setFrameCount", channel_set_frame_count},
    {"waitFrameCount", channel_wait_frame_count},
    {NULL, NULL}};

/* ---- StreamReader ---- */

/*
** What the binding keeps per reader: the queue over the reader's results
** mailbox (its event is what the reader thread activates), the onDone
** function and the pin. An sl_object only so that its release can be
** deferred to the main thread.
*/
typedef struct rnote {
  sl_object obj;
  sl_state *st;
  sl_lua_queue q;
  sl_stream_reader *_Atomic r;  /* NULL once the reader is gone */
  int fn_ref;                   /* onDone, or LUA_NOREF */
  int pin_ref;                  /* the reader's box, or LUA_NOREF */
} rnote;

static void note_notify(void *arg) {   /* on the reader thread */
  rnote *rn = arg;
  sl_lua_queue_notify(&rn->q);
}

static void note_free(sl_object *obj) {
  rnote *rn = (rnote *)obj;
  if (!sl_state_on_main(rn->st) && rn->st->L != NULL) {
    sl_state_defer_destroy(rn->st, obj);   /* comes back here on main */
    return;
  }
  sl_lua_queue_fini(&rn->q);
  if (rn->st->L != NULL) {
    luaL_unref(rn->st->L, LUA_REGISTRYINDEX, rn->fn_ref);
    luaL_unref(rn->st->L, LUA_REGISTRYINDEX, rn->pin_ref);
  }
  sl_state_unref(rn->st);
  free(rn);
}

static void note_release(void *arg) {
  rnote *rn = arg;
  atomic_store(&rn->r, NULL);
  sl_lua_queue_detach(&rn->q);           /* the reader frees its mailbox */
  note_free(&rn->obj);
}

static void unpin(rnote *rn, lua_State *L) {
  int ref = rn->pin_ref;
  rn->pin_ref = LUA_NOREF;
  luaL_unref(L, LUA_REGISTRYINDEX, ref);   /* rn may go with the box now */
}

/* One result to onDone, on the loop. */
static void note_deliver(void *owner, int ctx, void *item) {
  (void)ctx;
  rnote *rn = owner;
  const sl_stream_reader_result *res = item;
  lua_State *L = sl_state_lua(rn->st);
  if (L != NULL && rn->fn_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rn->fn_ref);
    lua_pushinteger(L, (lua_Integer)res->frames);
    lua_pushinteger(L, (lua_Integer)res->bytes);
    if (res->error[0] != '\0') lua_pushstring(L, res->error);
    else lua_pushnil(L);
    lua_pushinteger(L, (lua_Integer)res->files);
    sl_pcall_log(L, 4, READER_LOG);
  }
  free(item);
}

/* Once the results are handed over: joins a thread that has finished and
** unpins the reader once nothing can report. The pin keeps rn alive until
** the very last line. */
static void note_drained(void *owner) {
  rnote *rn = owner;
  sl_stream_reader *r = atomic_load(&rn->r);
  lua_State *L = sl_state_lua(rn->st);
  if (r == NULL || L == NULL) return;
  if (!sl_stream_reader_is_active(r)) {
    sl_stream_reader_close(r);             /* joins the finished thread */
    if (rn->pin_ref != LUA_NOREF) unpin(rn, L);
  }
}

static const sl_lua_queue_ops note_ops = {NULL, note_deliver, NULL, note_drained};

/* Runs on the loop: every queued result to onDone, then note_drained. */
static void note_drain(rnote *rn) {
  if (atomic_load(&rn->r) == NULL || sl_state_lua(rn->st) == NULL) return;
  sl_lua_queue_drain(&rn->q, UINT32_MAX);
  note_drained(rn);
}

static const sl_class note_class = {.name = "StreamReaderNote",
                                    .destroy = note_free};

static rnote *check_reader(lua_State *L, sl_stream_reader **rp) {
  sl_stream_reader *r = sl_stream_reader_from_object(sl_lua_check_object(L, 1));
  if (r == NULL) luaL_argerror(L, 1, "StreamReader expected");
  *rp = r;
  rnote *rn = sl_stream_reader_notify_arg(r, note_notify);
  if (rn != NULL) return rn;
  sl_state *st = sl_state_get(L);       /* a reader made in C: attach one */
  rn = calloc(1, sizeof *rn);
  if (rn == NULL) luaL_error(L, "StreamReader: out of memory");
  if (sl_lua_queue_attach(&rn->q, st, sl_stream_reader_results(r), free,
                          &note_ops, &rn->obj) != SL_OK) {
    free(rn);
    luaL_error(L, "StreamReader: cannot create an event");
  }
  sl_object_init(&rn->obj, &note_class);
  rn->st = sl_state_ref(st);
  rn->fn_ref = rn->pin_ref = LUA_NOREF;
  atomic_init(&rn->r, r);
  sl_stream_reader_set_notify(r, note_notify, note_release, rn);
  return rn;
}

static int reader_done(void *arg) {
  return !sl_stream_reader_is_active(arg);
}

/*
** Stops (stop != 0) or waits for the replay, serving Lua meanwhile; once
** the thread has ended, what it sent is handed to Lua slaves, the thread
** is joined and onDone runs, all before this returns. 0 on a timeout.
*/
static int reader_finish(lua_State *L, rnote *rn, sl_stream_reader *r,
                         int stop, double timeout) {
  if (stop) sl_stream_reader_request_stop(r);
  if (!wait_serving(L, reader_done, r, timeout)) return 0;
  serve_ready(L);
  note_drain(rn);          /* the box at 1 keeps rn alive meanwhile */
  return 1;
}

static int reader_open(lua_State *L) {
  sl_stream_reader *r;
  rnote *rn = check_reader(L, &r);
  const char *name = luaL_checkstring(L, 2);
  if (sl_stream_reader_is_active(r)) reader_finish(L, rn, r, 1, 0);
  int err = 0;
  int rc = sl_stream_reader_open(r, name, &err);
  if (rc != SL_OK) return raise_open(L, "StreamReader", name, rc, err);
  if (rn->pin_ref == LUA_NOREF) {
    lua_pushvalue(L, 1);
    rn->pin_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

static int reader_close(lua_State *L) {
  sl_stream_reader *r;
  rnote *rn = check_reader(L, &r);
  reader_finish(L, rn, r, 1, 0);
  return 0;
}

static int reader_close_wait(lua_State *L) {
  sl_stream_reader *r;
  rnote *rn = check_reader(L, &r);
  lua_pushboolean(L, reader_finish(L, rn, r, 0, opt_timeout(L, 2)));
  return 1;
}

static int reader_is_open(lua_State *L) {
  sl_stream_reader *r;
  check_reader(L, &r);
  lua_pushboolean(L, sl_stream_reader_is_open(r));
  return 1;
}

static int reader_is_active(lua_State *L) {
  sl_stream_reader *r;
  check_reader(L, &r);
  lua_pushboolean(L, sl_stream_reader_is_active(r));
  return 1;
}

/* reader:onDone(fn) -- fn(frames, bytes, errorText or nil, files); nil clears */
static int reader_on_done(lua_State *L) {
  sl_stream_reader *r;
  rnote *rn = check_reader(L, &r);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  luaL_unref(L, LUA_REGISTRYINDEX, rn->fn_ref);
  rn->fn_ref = lua_isnil(L, 2) ? LUA_NOREF : luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int reader_set_max_record(lua_State *L) {
  sl_stream_reader *r;
  check_reader(L, &r);
  sl_stream_reader_set_max_record(r, (uint32_t)sl_check_range(L, 2, 0, UINT32_MAX));
  return 0;
}

static int reader_get_max_record(lua_State *L) {
  sl_stream_reader *r;
  check_reader(L, &r);
  lua_pushinteger(L, sl_stream_reader_get_max_record(r));
  return 1;
}

static const luaL_Reg reader_methods[] = {
    {"open", reader_open},
    {"close", reader_close},
    {"closeWait", reader_close_wait},
    {"isOpen", reader_is_open},
    {"isActive", reader_is_active},
    {"onDone", reader_on_done},
    {"setMaxRecord", reader_set_max_record},
    {"getMaxRecord", reader_get_max_record},
    {"stop", reader_close},
    {"_stop", reader_close},
    {NULL, NULL}};

static int reader_new(lua_State *L) {
  sl_error err;
  sl_stream_reader *r = sl_stream_reader_new(&err);
  if (r == NULL) return luaL_error(L, "StreamReader: %s", err.msg);
  lua_settop(L, 0);
  sl_lua_push_object(L, sl_stream_reader_object(r));   /* at 1 */
  sl_object_unref(sl_stream_reader_object(r));
  check_reader(L, &r);                             /* attaches the note */
  return 1;
}

static const sl_lua_class writer_class = {"StreamWriter", writer_methods, writer_new,
                                          0};
static const sl_lua_class channel_class = {"StreamWriterChannel", channel_methods, NULL,
                                           SL_ROLE_STREAM_SLAVE};
static const sl_lua_class reader_class = {"StreamReader", reader_methods, reader_new,
                                          SL_ROLE_STREAM_MASTER};

void sl_open_fileio(lua_State *L) {
  sl_lua_class_new(L, &writer_class);
  lua_setfield(L, -2, "StreamWriter");
  sl_lua_class_new(L, &channel_class);
  lua_setfield(L, -2, "StreamWriterChannel");
  sl_lua_class_new(L, &reader_class);
  lua_setfield(L, -2, "StreamReader");
}
