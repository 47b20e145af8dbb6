/*
** Rogue's asynchronous names of the register bus, for ported scripts.
**
** Master (every memory master):
**   local id = m:_reqTransaction(addr, dataOrSize, type)   -- or Rogue's
**              m:_reqTransaction(addr, data, size, offset, type)
**   local data = m:_waitTransaction(id)   -- 0: every outstanding one
**   if m:_getError() ~= "" then ... end; m:_clearError()
** The transactions wait in a table of the master's until
** _waitTransaction; a failure's text becomes the master's error, which
** stays until _clearError (Rogue's sticky error). A Lua string cannot be
** filled as Rogue's buffer is: _waitTransaction returns the bytes.
**
** Lua-defined memory slave:
**   self:_addTransaction(tran); later local t = self:_getTransaction(id)
** _getTransaction takes the transaction out of the slave's table (nil if
** it is not there), drops those that expired, and restarts the timers of
** the ones started no earlier (Rogue's slow-link rule).
**
** All of it is for the main thread, as Lua is. The tables hang off a
** weak-keyed registry table: by the master's box, and by a Lua slave's
** fields table (which lives as long as the slave).
*/
#include <stdlib.h>
#include <string.h>

#include "lsl.h"
#include "streamlua/memory.h"

static const char master_key = 0;   /* box -> {pending = {id = tran}, error = s} */
static const char slave_key = 0;    /* fields -> {id = tran} */

/* Pushes the table that registry table `key` holds for the value at i,
** made on first use. */
static void push_side(lua_State *L, const char *key, int i) {
  i = lua_absindex(L, i);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  }
  lua_pushvalue(L, i);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, i);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
}

/* ---- the master ---- */

/* Pushes the master's state and its pending table: [-2] state, [-1] pending. */
static void push_master_state(lua_State *L) {
  push_side(L, &master_key, 1);
  if (lua_getfield(L, -1, "pending") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "pending");
  }
}

/* m:_reqTransaction(addr, dataOrSize, type) or
** m:_reqTransaction(addr, data, size, offset, type) -> id */
static int master_req_transaction_(lua_State *L) {
  sl_mem_master *m = sl_lua_check_role(L, 1, SL_ROLE_MEMORY_MASTER)->mem_master;
  lua_Integer a = luaL_checkinteger(L, 2);
  luaL_argcheck(L, a >= 0, 2, "address must not be negative");
  size_t n = 0, off = 0;
  const char *data = NULL;
  uint32_t type;
  if (lua_gettop(L) >= 6) {          /* Rogue's (addr, buffer, size, offset, type) */
    size_t len;
    data = luaL_checklstring(L, 3, &len);
    off = (size_t)sl_check_range(L, 5, 0, (lua_Integer)len);
    n = (size_t)sl_check_range(L, 4, 0, (lua_Integer)(len - off));
    if (n == 0) n = len - off;       /* Rogue: size 0 is the buffer's */
    type = sl_memory_check_type(L, 6);
  } else {
    if (lua_type(L, 3) == LUA_TSTRING) data = lua_tolstring(L, 3, &n);
    else n = (size_t)sl_check_range(L, 3, 0, UINT32_MAX);
    type = sl_memory_check_type(L, 4);
  }
  luaL_argcheck(L, n <= UINT32_MAX, 3, "data too long");
  sl_transaction *t = sl_memory_request(L, m, (uint64_t)a, (uint32_t)n,
                                        sl_mem_type_is_write(type) && data ? data + off : NULL,
                                        type);
  if (t == NULL) return luaL_error(L, "_reqTransaction: out of memory");
  push_master_state(L);
  sl_memory_push_transaction(L, t);
  lua_rawseti(L, -2, sl_transaction_id(t));
  lua_pushinteger(L, sl_transaction_id(t));
  sl_transaction_unref(t);
  return 1;
}

/* Waits for the transaction at the top (serving the loop), takes it out of
** the pending table at pi and records its error in the state at si.
** Replaces it with its bytes. Raises "interrupted" on Ctrl-C. */
static void finish(lua_State *L, int si, int pi) {
  sl_transaction *t = sl_memory_check_transaction(L, -1);
  lua_pushnil(L);
  lua_rawseti(L, pi, sl_transaction_id(t));
  if (sl_memory_serve(L, t, NULL, NULL) == SL_ECANCELED) sl_lua_interrupted(L);
  if (sl_transaction_failed(t)) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t len = sl_transaction_get_error(t, NULL, 0);
    char *p = luaL_prepbuffsize(&b, len + 1);
    sl_transaction_get_error(t, p, len + 1);
    luaL_addsize(&b, len);
    luaL_pushresult(&b);
    if (len > 0) lua_setfield(L, si, "error");
    else lua_pop(L, 1);
  }
  lua_pushlstring(L, (const char *)sl_transaction_data(t), sl_transaction_size(t));
  lua_replace(L, -2);
}

static int cmp_integer(const void *a, const void *b) {
  lua_Integer x = *(const lua_Integer *)a, y = *(const lua_Integer *)b;
  return (x > y) - (x < y);
}

/* m:_waitTransaction(id) -> the bytes (read, or written) of transaction id,
** or nil when it is not outstanding; m:_waitTransaction(0) waits for every
** outstanding one -> {[id] = bytes}. Failures go to _getError. */
static int master_wait_transaction_(lua_State *L) {
  sl_lua_check_role(L, 1, SL_ROLE_MEMORY_MASTER);
  lua_Integer id = sl_check_range(L, 2, 0, UINT32_MAX);
  lua_settop(L, 2);
  push_master_state(L);              /* 3 state, 4 pending */
  if (id != 0) {
    if (lua_rawgeti(L, 4, id) == LUA_TNIL) return 1;
    finish(L, 3, 4);
    return 1;
  }
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, 4) != 0) {
    lua_pop(L, 1);
    n++;
  }
  lua_Integer *ids = lua_newuserdatauv(L, (n ? n : 1) * sizeof *ids, 0);   /* 5 */
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, 4) != 0 && k < n) {
    lua_pop(L, 1);
    ids[k++] = lua_tointeger(L, -1);
  }
  lua_settop(L, 5);
  qsort(ids, k, sizeof *ids, cmp_integer);
  lua_createtable(L, 0, (int)k);     /* 6 the bytes by id */
  for (size_t i = 0; i < k; i++) {
    if (lua_rawgeti(L, 4, ids[i]) == LUA_TNIL) {   /* waited meanwhile */
      lua_pop(L, 1);
      continue;
    }
    finish(L, 3, 4);
    lua_rawseti(L, 6, ids[i]);
  }
  return 1;
}

/* m:_getError() -> the sticky error text ("" when none) */
static int master_get_error_(lua_State *L) {
  sl_lua_check_role(L, 1, SL_ROLE_MEMORY_MASTER);
  push_side(L, &master_key, 1);
  if (lua_getfield(L, -1, "error") == LUA_TNIL) lua_pushliteral(L, "");
  return 1;
}

static int master_clear_error_(lua_State *L) {
  sl_lua_check_role(L, 1, SL_ROLE_MEMORY_MASTER);
  push_side(L, &master_key, 1);
  lua_pushnil(L);
  lua_setfield(L, -2, "error");
  return 0;
}

const luaL_Reg sl_mem_master_rogue_methods[] = {
    {"_reqTransaction", master_req_transaction_},
    {"_waitTransaction", master_wait_transaction_},
    {"_getError", master_get_error_},
    {"_clearError", master_clear_error_},
    {NULL, NULL}};

/* ---- the Lua-defined slave ---- */

/* Pushes the slave's table of transactions by id. */
static void push_slave_table(lua_State *L) {
  sl_object *o = sl_lua_check_role(L, 1, SL_ROLE_MEMORY_SLAVE);
  if (!sl_memory_slave_fields(L, o))
    luaL_argerror(L, 1, "Lua-defined memory slave expected (Slave{doTransaction = ...})");
  push_side(L, &slave_key, -1);
  lua_remove(L, -2);
}

/* s:_addTransaction(tran): keeps it by id until _getTransaction. */
static int slave_add_transaction(lua_State *L) {
  sl_transaction *t = sl_memory_check_transaction(L, 2);
  push_slave_table(L);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, sl_transaction_id(t));
  return 0;
}

/* s:_getTransaction(id) -> the transaction, taken out, or nil */
static int slave_get_transaction(lua_State *L) {
  lua_Integer id = sl_check_range(L, 2, 0, UINT32_MAX);
  lua_settop(L, 2);
  push_slave_table(L);                /* 3 */
  if (lua_rawgeti(L, 3, id) == LUA_TNIL) return 1;   /* 4 */
  sl_transaction *got = sl_memory_check_transaction(L, 4);
  lua_pushnil(L);
  lua_rawseti(L, 3, id);
  lua_pushnil(L);
  while (lua_next(L, 3) != 0) {       /* the others: refresh, or drop if expired */
    sl_transaction *t = sl_memory_check_transaction(L, -1);
    lua_pop(L, 1);
    if (sl_transaction_expired(t)) {
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, 3);               /* clearing a field during lua_next is allowed */
    } else {
      sl_transaction_refresh(t, got);
    }
  }
  lua_settop(L, 4);
  return 1;
}

const luaL_Reg sl_memory_slave_methods[] = {
    {"_addTransaction", slave_add_transaction},
    {"_getTransaction", slave_get_transaction},
    {"setMaxQueueBytes", sl_memory_slave_set_max_queue_bytes},
    {NULL, NULL}};
