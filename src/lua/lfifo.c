/*
** sl.stream.Fifo(maxDepth [, trimSize=0 [, noCopy=false]]).
*/
#include "lsl.h"
#include "streamlua/fifo.h"

static sl_fifo *check_fifo(lua_State *L) {
  if (luaL_testudata(L, 1, "streamlua.Fifo") == NULL)
    luaL_argerror(L, 1, "Fifo expected");
  return sl_fifo_from_object(sl_lua_check_object(L, 1));
}

static int fifo_size(lua_State *L) {
  lua_pushinteger(L, sl_fifo_size(check_fifo(L)));
  return 1;
}

static int fifo_drop_cnt(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_fifo_drop_count(check_fifo(L)));
  return 1;
}

static int fifo_clear_cnt(lua_State *L) {
  sl_fifo_clear_count(check_fifo(L));
  return 0;
}

static int fifo_max_depth(lua_State *L) {
  lua_pushinteger(L, sl_fifo_max_depth(check_fifo(L)));
  return 1;
}

/* fifo:setMaxQueueBytes(bytes): the byte limit; 0: none. */
static int fifo_set_max_queue_bytes(lua_State *L) {
  sl_fifo *q = check_fifo(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "non-negative number of bytes expected");
  sl_fifo_set_max_queue_bytes(q, (uint64_t)n);
  return 0;
}

static int fifo_max_queue_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_fifo_max_queue_bytes(check_fifo(L)));
  return 1;
}

/* fifo:setWaitWhenFull(on): a producer finding the Fifo full waits for
** room (true) or drops its frame (false, the default). */
static int fifo_set_wait_when_full(lua_State *L) {
  sl_fifo *q = check_fifo(L);
  luaL_checktype(L, 2, LUA_TBOOLEAN);
  sl_fifo_set_wait_when_full(q, lua_toboolean(L, 2));
  return 0;
}

static int fifo_wait_when_full(lua_State *L) {
  lua_pushboolean(L, sl_fifo_wait_when_full(check_fifo(L)));
  return 1;
}

static const luaL_Reg fifo_meth[] = {
    {"size", fifo_size},
    {"dropCnt", fifo_drop_cnt},
    {"clearCnt", fifo_clear_cnt},
    {"maxDepth", fifo_max_depth},
    {"setMaxQueueBytes", fifo_set_max_queue_bytes},
    {"maxQueueBytes", fifo_max_queue_bytes},
    {"setWaitWhenFull", fifo_set_wait_when_full},
    {"waitWhenFull", fifo_wait_when_full},
    {NULL, NULL}};

static int fifo_new(lua_State *L) {
  uint32_t depth = (uint32_t)sl_check_range(L, 1, 0, UINT32_MAX);
  uint32_t trim = (uint32_t)sl_opt_range(L, 2, 0, 0, UINT32_MAX);
  int no_copy = lua_toboolean(L, 3);
  sl_error err;
  sl_object *obj = sl_fifo_object(sl_fifo_new(depth, trim, no_copy, &err));
  if (obj == NULL) return luaL_error(L, "Fifo: %s", err.msg);
  sl_lua_push_object(L, obj);
  sl_object_unref(obj);
  return 1;
}

static const sl_lua_class fifo_class = {"Fifo", fifo_meth, fifo_new, SL_ROLE_STREAM};

void sl_open_fifo(lua_State *L) {
  sl_lua_class_new(L, &fifo_class);
  lua_setfield(L, -2, "Fifo");
}
