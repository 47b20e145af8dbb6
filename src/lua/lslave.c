/*
** sl.stream.Slave: the plain counting slave, the slave-role methods every
** slave class shares, and Lua-defined slaves (class LuaSlave), which are
** masters too so that a stage written in Lua can pass frames on.
**
** A Lua-defined slave runs its acceptFrame on the main thread only. Called
** there (a Lua sendFrame, a timer), it runs at once. Called from any other
** thread, the frame goes into the slave's bounded mailbox and the sender
** waits while the mailbox is full (1,024 frames, or its byte limit); the loop hands queued frames to Lua in
** batches. No lock is held while Lua runs.
*/
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "lqueue.h"
#include "lsl.h"

#define MAILBOX_FRAMES 1024
#define MAILBOX_BYTES (4u << 20)   /* the mailbox's default byte limit */

typedef struct lua_slave {
  sl_object obj;                   /* first: the node is cast from it */
  struct lua_slave *next, *prev;   /* st->lua_slaves, main thread only */
  sl_slave slave;
  sl_master master;             /* a Lua stage may pass frames on */
  sl_state *st;
  sl_lua_queue q;               /* frames from other threads */
  int fields_ref;               /* registry ref to the fields table */
  atomic_uint_least64_t dropped;  /* frames refused after close */
  atomic_uint_least64_t rx_frames, rx_bytes;   /* handed to Lua */
} lua_slave;

static void lua_slave_accept(sl_slave *s, sl_frame *f);
static void lua_slave_accept_frames(sl_slave *s, sl_frame **fs, size_t n);
static const sl_slave_ops lua_slave_ops = {
    .accept_frame = lua_slave_accept, .accept_frames = lua_slave_accept_frames};

static lua_slave *as_lua_slave(sl_object *obj) {
  return obj->slave != NULL && obj->slave->ops == &lua_slave_ops
             ? (lua_slave *)obj
             : NULL;
}

int sl_lua_slave_fields(lua_State *L, sl_object *obj) {
  lua_slave *ls = as_lua_slave(obj);
  if (ls == NULL) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->fields_ref);
  return 1;
}

/* Pushes what every delivery calls with: the traceback handler, the
** slave's acceptFrame (or _acceptFrame) and the slave itself. */
static void push_call(lua_slave *ls, lua_State *L) {
  lua_pushcfunction(L, sl_lua_traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->fields_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->st->ref_accept);
  if (lua_gettable(L, -2) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ls->st->ref_accept_);
    lua_gettable(L, -2);
  }
  lua_remove(L, -2);
  sl_lua_push_object(L, &ls->obj);
}

/* acceptFrame(self, f) with push_call's three values at base; an error is
** logged, and (Rogue) the base slave then counts the frame. */
static void call_prepared(lua_slave *ls, lua_State *L, int base, sl_frame *f) {
  atomic_fetch_add_explicit(&ls->rx_frames, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&ls->rx_bytes, sl_frame_get_payload(f),
                            memory_order_relaxed);
  lua_pushvalue(L, base + 1);
  lua_pushvalue(L, base + 2);
  sl_state *st = ls->st;
  if (f == st->cur_frame && L == st->cur)
    lua_pushvalue(L, st->cur_frame_idx);   /* the box the sender holds */
  else
    sl_push_frame_in(L, st, f);
  if (lua_pcall(L, 2, 0, base) != LUA_OK) {
    sl_log_write(sl_log_get("stream.Slave"), SL_LOG_ERROR, "%s",
                 lua_tostring(L, -1));
    lua_pop(L, 1);
    sl_slave_accept_base(&ls->slave, f);
  }
}

static void deliver(lua_slave *ls, lua_State *L, sl_frame *f) {
  int top = lua_gettop(L);
  push_call(ls, L);
  call_prepared(ls, L, top + 1, f);
  lua_settop(L, top);
}

static void lua_slave_accept(sl_slave *s, sl_frame *f) {
  lua_slave *ls = (lua_slave *)s->owner;
  sl_state *st = ls->st;
  if (sl_state_on_main(st)) {
    lua_State *L = sl_state_lua(st);
    if (L != NULL) deliver(ls, L, f);
    return;
  }
  if (sl_mailbox_put(ls->q.mb, f) != SL_OK)
    atomic_fetch_add_explicit(&ls->dropped, 1, memory_order_relaxed);
}

/* A batch from a thread: one mailbox lock for all of it. */
static void lua_slave_accept_frames(sl_slave *s, sl_frame **fs, size_t n) {
  lua_slave *ls = (lua_slave *)s->owner;
  if (sl_state_on_main(ls->st)) {
    for (size_t i = 0; i < n; i++) lua_slave_accept(s, fs[i]);
    return;
  }
  while (n > 0) {
    uint32_t k = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, done;
    if (sl_mailbox_put_many(ls->q.mb, (void *const *)fs, k, &done) != SL_OK) {
      atomic_fetch_add_explicit(&ls->dropped, n - done, memory_order_relaxed);
      return;
    }
    fs += k;
    n -= k;
  }
}

/* A batch from the queue: acceptFrame is looked up again for each. The
** context is the base of push_call's values, 0 once the state is closed. */
static int batch_begin(void *owner) {
  lua_slave *ls = owner;
  lua_State *L = ls->st->L;
  if (L == NULL) return 0;
  int base = lua_gettop(L) + 1;
  push_call(ls, L);
  return base;
}

static void batch_deliver(void *owner, int base, void *item) {
  lua_slave *ls = owner;
  lua_State *L = ls->st->L;
  if (base > 0 && L != NULL) call_prepared(ls, L, base, item);
  sl_frame_unref(item);
}

static void batch_end(void *owner, int base) {
  lua_slave *ls = owner;
  if (base > 0 && ls->st->L != NULL) lua_settop(ls->st->L, base - 1);
}

static const sl_lua_queue_ops queue_ops = {batch_begin, batch_deliver,
                                           batch_end, NULL};

static int drain(lua_slave *ls, uint32_t max) {
  return sl_lua_queue_drain(&ls->q, max);
}

void sl_lua_slave_flush(sl_object *obj) {
  lua_slave *ls = as_lua_slave(obj);
  if (ls == NULL || !sl_state_on_main(ls->st)) return;
  sl_object_ref(obj);
  drain(ls, UINT32_MAX);
  sl_object_unref(obj);
}

/* Lua run by a drain may free other slaves, so hold them all first. */
void sl_lua_slaves_serve(void *arg) {
  sl_state *st = arg;
  size_t n = 0;
  for (lua_slave *ls = st->lua_slaves; ls != NULL; ls = ls->next) n++;
  if (n == 0) return;
  lua_slave **all = malloc(n * sizeof *all);
  if (all == NULL) return;
  n = 0;
  for (lua_slave *ls = st->lua_slaves; ls != NULL; ls = ls->next) {
    sl_object_ref(&ls->obj);
    all[n++] = ls;
  }
  for (size_t i = 0; i < n; i++) drain(all[i], SL_LUA_QUEUE_TURN);
  for (size_t i = 0; i < n; i++) sl_object_unref(&all[i]->obj);
  free(all);
}

static void lua_slave_free(lua_slave *ls) {
  sl_state *st = ls->st;
  if (ls->prev) ls->prev->next = ls->next;
  else st->lua_slaves = ls->next;
  if (ls->next) ls->next->prev = ls->prev;
  sl_lua_queue_fini(&ls->q);
  if (st->L != NULL) luaL_unref(st->L, LUA_REGISTRYINDEX, ls->fields_ref);
  sl_master_fini(&ls->master);
  sl_slave_fini(&ls->slave);
  free(ls);
  sl_state_unref(st);
}

static void lua_slave_destroy(sl_object *obj) {
  lua_slave *ls = (lua_slave *)obj;
  if (!sl_state_on_main(ls->st) && ls->st->L != NULL)
    sl_state_defer_destroy(ls->st, obj);   /* comes back here on main */
  else
    lua_slave_free(ls);
}

/* What reached Lua; Rogue's base counters (getFrameCount) stay separate. */
static size_t lua_slave_counters(sl_object *obj, sl_counter *out, size_t max) {
  lua_slave *ls = (lua_slave *)obj;
  sl_counter c[] = {
      {"rxFrames", atomic_load(&ls->rx_frames)},
      {"rxBytes", atomic_load(&ls->rx_bytes)},
      {"queued", sl_mailbox_size(ls->q.mb)},
      {"waits", sl_mailbox_wait_count(ls->q.mb)},
      {"drops", atomic_load(&ls->dropped)},
      {"maxQueueBytes", sl_mailbox_max_bytes(ls->q.mb)},
      {"queueBytes", sl_mailbox_bytes(ls->q.mb)}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

/* Stop: refuse new frames, let blocked senders go, serve what is queued. */
static void lua_slave_stop(sl_object *obj) {
  lua_slave *ls = (lua_slave *)obj;
  sl_mailbox_close(ls->q.mb);
  if (sl_state_on_main(ls->st)) drain(ls, UINT32_MAX);
}

/* Wraps a plain function f(frame) as acceptFrame(self, frame). */
static int call_plain(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 2);
  lua_call(L, 1, 0);
  return 0;
}

static const sl_class lua_slave_node_class = {.name = "LuaSlave",
                                              .destroy = lua_slave_destroy,
                                              .stop = lua_slave_stop,
                                              .counters = lua_slave_counters};

void sl_lua_slave_new(lua_State *L, int i) {
  i = lua_absindex(L, i);
  sl_state *st = sl_state_get(L);
  if (lua_type(L, i) == LUA_TFUNCTION) {
    lua_newtable(L);
    lua_pushvalue(L, i);
    lua_pushcclosure(L, call_plain, 1);
    lua_setfield(L, -2, "acceptFrame");
  } else {
    luaL_checktype(L, i, LUA_TTABLE);
    lua_getfield(L, i, "acceptFrame");
    lua_getfield(L, i, "_acceptFrame");
    if (!lua_isfunction(L, -2) && !lua_isfunction(L, -1))
      luaL_argerror(L, i, "table with an acceptFrame function expected");
    lua_pop(L, 2);
    lua_pushvalue(L, i);
  }
  lua_slave *ls = calloc(1, sizeof *ls);
  if (ls == NULL) luaL_error(L, "Slave: out of memory");
  sl_object_init(&ls->obj, &lua_slave_node_class);
  ls->st = sl_state_ref(st);
  int queue_ok = 0, slave_ok = 0;
  if (!(queue_ok = sl_lua_queue_init(&ls->q, st, MAILBOX_FRAMES, &sl_mailbox_frames,
                                     &queue_ops, &ls->obj) == SL_OK) ||
      !(slave_ok = sl_slave_init(&ls->slave, &lua_slave_ops, &ls->obj) == SL_OK) ||
      sl_master_init(&ls->master, &ls->obj) != SL_OK) {
    if (slave_ok) sl_slave_fini(&ls->slave);
    if (queue_ok) sl_lua_queue_fini(&ls->q);
    sl_state_unref(st);
    free(ls);
    luaL_error(L, "Slave: out of memory");
  }
  sl_mailbox_set_max_bytes(ls->q.mb, MAILBOX_BYTES);
  ls->fields_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* pops the fields */
  ls->next = st->lua_slaves;
  if (ls->next) ls->next->prev = ls;
  st->lua_slaves = ls;
  sl_lua_push_object(L, &ls->obj);
  sl_object_unref(&ls->obj);
}

/* ---- methods of every slave class ---- */

static int slave_accept_frame(lua_State *L) {
  sl_object *obj = sl_lua_check_object(L, 1);
  sl_slave *s = sl_check_slave(L, 1);
  sl_frame *f = sl_check_frame(L, 2);
  if (sl_frame_locked_by_me(f))
    return luaL_error(L, "acceptFrame: the frame is locked; release the lock "
                      "first");
  if (as_lua_slave(obj) != NULL) sl_slave_accept_base(s, f);   /* the base */
  else sl_slave_accept(s, f);
  return 0;
}

static int slave_get_frame_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_slave_get_frame_count(sl_check_slave(L, 1)));
  return 1;
}

static int slave_get_byte_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_slave_get_byte_count(sl_check_slave(L, 1)));
  return 1;
}

static int slave_set_debug(lua_State *L) {
  sl_slave *s = sl_check_slave(L, 1);
  lua_Integer n = sl_check_range(L, 2, 0, UINT32_MAX);
  const char *name = luaL_checkstring(L, 3);
  int rc = sl_slave_set_debug(s, (uint32_t)n, name);
  if (rc != SL_OK) return sl_status_error(L, "setDebug", rc);
  return 0;
}

static int slave_get_alloc_count(lua_State *L) {
  lua_pushinteger(L, sl_pool_get_alloc_count(sl_check_slave(L, 1)->pool));
  return 1;
}

static int slave_get_alloc_bytes(lua_State *L) {
  lua_pushinteger(L, sl_pool_get_alloc_bytes(sl_check_slave(L, 1)->pool));
  return 1;
}

static int slave_set_fixed_size(lua_State *L) {
  sl_slave *s = sl_check_slave(L, 1);
  sl_pool_set_fixed_size(s->pool, (uint32_t)sl_check_range(L, 2, 0, UINT32_MAX));
  return 0;
}

static int slave_get_fixed_size(lua_State *L) {
  lua_pushinteger(L, sl_pool_get_fixed_size(sl_check_slave(L, 1)->pool));
  return 1;
}

static int slave_set_pool_size(lua_State *L) {
  sl_slave *s = sl_check_slave(L, 1);
  sl_pool_set_pool_size(s->pool, (uint32_t)sl_check_range(L, 2, 0, UINT32_MAX));
  return 0;
}

static int slave_set_max_frame_size(lua_State *L) {
  sl_slave *s = sl_check_slave(L, 1);
  sl_pool_set_max_frame_size(s->pool, (uint32_t)sl_check_range(L, 2, 0, UINT32_MAX));
  return 0;
}

static int slave_get_max_frame_size(lua_State *L) {
  lua_pushinteger(L, sl_pool_get_max_frame_size(sl_check_slave(L, 1)->pool));
  return 1;
}

static int slave_set_max_buffers(lua_State *L) {
  sl_slave *s = sl_check_slave(L, 1);
  sl_pool_set_max_buffers(s->pool, (uint32_t)sl_check_range(L, 2, 1, UINT32_MAX));
  return 0;
}

static int slave_get_max_buffers(lua_State *L) {
  lua_pushinteger(L, sl_pool_get_max_buffers(sl_check_slave(L, 1)->pool));
  return 1;
}

static int slave_get_pool_size(lua_State *L) {
  lua_pushinteger(L, sl_pool_get_pool_size(sl_check_slave(L, 1)->pool));
  return 1;
}

static int slave_set_cache_bytes(lua_State *L) {
  sl_slave *s = sl_check_slave(L, 1);
  sl_pool_set_cache_bytes(s->pool, (uint32_t)sl_check_range(L, 2, 0, UINT32_MAX));
  return 0;
}

static int slave_get_cache_bytes(lua_State *L) {
  lua_pushinteger(L, sl_pool_get_cache_bytes(sl_check_slave(L, 1)->pool));
  return 1;
}

static int slave_get_cached_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_pool_get_cached_bytes(sl_check_slave(L, 1)->pool));
  return 1;
}

const luaL_Reg sl_slave_methods[] = {
    {"acceptFrame", slave_accept_frame},
    {"_acceptFrame", slave_accept_frame},
    {"getFrameCount", slave_get_frame_count},
    {"getByteCount", slave_get_byte_count},
    {"setDebug", slave_set_debug},
    {"getAllocCount", slave_get_alloc_count},
    {"getAllocBytes", slave_get_alloc_bytes},
    {"setFixedSize", slave_set_fixed_size},
    {"getFixedSize", slave_get_fixed_size},
    {"setPoolSize", slave_set_pool_size},
    {"getPoolSize", slave_get_pool_size},
    {"setMaxFrameSize", slave_set_max_frame_size},
    {"getMaxFrameSize", slave_get_max_frame_size},
    {"setMaxBuffers", slave_set_max_buffers},
    {"getMaxBuffers", slave_get_max_buffers},
    {"setCacheBytes", slave_set_cache_bytes},
    {"getCacheBytes", slave_get_cache_bytes},
    {"getCachedBytes", slave_get_cached_bytes},
    {NULL, NULL}};

/* Slave() is a counting slave; Slave{acceptFrame = f, ...} is Lua-defined. */
static int slave_new(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    sl_error err;
    sl_object *obj = sl_slave_new(&err);
    if (obj == NULL) return luaL_error(L, "Slave: %s", err.msg);
    sl_lua_push_object(L, obj);
    sl_object_unref(obj);
    return 1;
  }
  luaL_argcheck(L, lua_istable(L, 1) || lua_isfunction(L, 1), 1,
                "table or function expected");
  sl_lua_slave_new(L, 1);
  return 1;
}

static const sl_lua_class slave_class = {"Slave", NULL, slave_new,
                                         SL_ROLE_STREAM_SLAVE};
/* slave:setMaxQueueBytes(bytes): the byte limit of a Lua-defined slave's
** mailbox (frames from other threads); senders wait while it is over. */
static int lua_slave_set_max_queue_bytes(lua_State *L) {
  lua_slave *ls = as_lua_slave(sl_lua_check_object(L, 1));
  if (ls == NULL) return luaL_argerror(L, 1, "Lua-defined Slave expected");
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0, 2, "positive number of bytes expected");
  sl_mailbox_set_max_bytes(ls->q.mb, (uint64_t)n);
  return 0;
}

static const luaL_Reg lua_slave_meth[] = {
    {"setMaxQueueBytes", lua_slave_set_max_queue_bytes},
    {NULL, NULL}};

static const sl_lua_class lua_slave_class = {"LuaSlave", lua_slave_meth, NULL,
                                             SL_ROLE_STREAM};

/* sl.setPoolIdleMs(ms), sl.poolIdleMs(): every pool's idle release. */
static int set_pool_idle_ms(lua_State *L) {
  sl_pool_set_idle_ms((uint32_t)sl_check_range(L, 1, 0, UINT32_MAX));
  return 0;
}

static int pool_idle_ms(lua_State *L) {
  lua_pushinteger(L, sl_pool_get_idle_ms());
  return 1;
}

static const luaL_Reg pool_funcs[] = {
    {"setPoolIdleMs", set_pool_idle_ms},
    {"poolIdleMs", pool_idle_ms},
    {NULL, NULL}};

/* Lua-defined slaves: both roles, so a Lua stage can sendFrame onwards.
** Expects the module table at -2 and the stream table at -1. */
void sl_open_slave(lua_State *L) {
  sl_lua_class_new(L, &lua_slave_class);
  lua_pop(L, 1);
  sl_lua_class_new(L, &slave_class);
  lua_setfield(L, -2, "Slave");
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, pool_funcs, 0);
  lua_pop(L, 1);
}
