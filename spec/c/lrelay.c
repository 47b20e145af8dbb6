/*
** The lossy UDP relay (relay.h) for the specs, in streamlua_testing:
**
**   local r = testing.relay(farPort [, drop [, reorder [, seed]]])
**   r:port()               -- where the near side sends
**   r:counts("up")         -- {forwarded, dropped, reordered, swallowed};
**                          -- "up" is near -> far, "down" far -> near
**   r:setDown(true)        -- swallow everything (the far side died)
**   r:setFar(port)         -- the far side came back on another port
**   r:setLoss(drop, reorder)
**   r:stop()               -- also on collection
** drop and reorder are parts per thousand of each direction's datagrams.
*/
#include <lauxlib.h>
#include <lua.h>

#include "relay.h"

#define RELAY_MT "streamlua_testing.Relay"

void ts_open_relay(lua_State *L);

static ts_relay **check_box(lua_State *L) {
  return luaL_checkudata(L, 1, RELAY_MT);
}

static ts_relay *check_relay(lua_State *L) {
  ts_relay **box = check_box(L);
  if (*box == NULL) luaL_error(L, "attempt to use a stopped relay");
  return *box;
}

static unsigned check_permille(lua_State *L, int i, lua_Integer dflt) {
  lua_Integer v = luaL_optinteger(L, i, dflt);
  luaL_argcheck(L, v >= 0 && v <= 1000, i, "parts per thousand expected");
  return (unsigned)v;
}

static uint32_t check_port(lua_State *L, int i) {
  lua_Integer p = luaL_checkinteger(L, i);
  luaL_argcheck(L, p > 0 && p < 65536, i, "port expected");
  return (uint32_t)p;
}

static int relay_new(lua_State *L) {
  uint32_t far = check_port(L, 1);
  unsigned drop = check_permille(L, 2, 0), reorder = check_permille(L, 3, 0);
  lua_Integer seed = luaL_optinteger(L, 4, 1);
  ts_relay **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, RELAY_MT);
  *box = ts_relay_new(far, drop, reorder, (uint32_t)seed);
  if (*box == NULL) return luaL_error(L, "relay: cannot start");
  return 1;
}

static int relay_port(lua_State *L) {
  lua_pushinteger(L, ts_relay_port(check_relay(L)));
  return 1;
}

static int relay_counts(lua_State *L) {
  ts_relay *r = check_relay(L);
  static const char *const dirs[] = {"up", "down", NULL};
  int dir = luaL_checkoption(L, 2, NULL, dirs);
  ts_relay_counts c = ts_relay_counts_of(r, dir == 0 ? TS_RELAY_UP : TS_RELAY_DOWN);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)c.forwarded);
  lua_setfield(L, -2, "forwarded");
  lua_pushinteger(L, (lua_Integer)c.dropped);
  lua_setfield(L, -2, "dropped");
  lua_pushinteger(L, (lua_Integer)c.reordered);
  lua_setfield(L, -2, "reordered");
  lua_pushinteger(L, (lua_Integer)c.swallowed);
  lua_setfield(L, -2, "swallowed");
  return 1;
}

static int relay_set_down(lua_State *L) {
  ts_relay_set_down(check_relay(L), lua_toboolean(L, 2));
  return 0;
}

static int relay_set_far(lua_State *L) {
  ts_relay *r = check_relay(L);
  ts_relay_set_far(r, check_port(L, 2));
  return 0;
}

static int relay_set_loss(lua_State *L) {
  ts_relay *r = check_relay(L);
  unsigned drop = check_permille(L, 2, 0), reorder = check_permille(L, 3, 0);
  ts_relay_set_loss(r, drop, reorder);
  return 0;
}

static int relay_stop(lua_State *L) {
  ts_relay **box = check_box(L);
  ts_relay_free(*box);
  *box = NULL;
  return 0;
}

/* Sets `relay` in the table at the top. */
void ts_open_relay(lua_State *L) {
  static const luaL_Reg meth[] = {
      {"port", relay_port},       {"counts", relay_counts},
      {"setDown", relay_set_down}, {"setFar", relay_set_far},
      {"setLoss", relay_set_loss}, {"stop", relay_stop},
      {NULL, NULL}};
  luaL_newmetatable(L, RELAY_MT);
  luaL_newlib(L, meth);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, relay_stop);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, relay_stop);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  lua_pushcfunction(L, relay_new);
  lua_setfield(L, -2, "relay");
}
