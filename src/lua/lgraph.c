/*
** Seeing the graph: sl.graph() lists the live objects and their links,
** graph:dot() writes Graphviz text, and sl.monitor() prints a one-line rate
** summary every few seconds. The listing logic is Lua
** (lua/streamlua/graph.lua, embedded at build time as graph_lua[]); C gives
** it the live objects and a monotonic clock.
*/
#include <time.h>

#include "../core/clock.h"
#include "graph_lua.h"
#include "lsl.h"

/* The live objects (after a full collection), oldest first. */
static int graph_objects(lua_State *L) {
  lua_gc(L, LUA_GCCOLLECT);
  lua_newtable(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_boxes_key);
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (sl_lua_test_object(L, -1) != NULL) lua_rawseti(L, -4, ++n);
    else lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 1;
}

static int graph_serial(lua_State *L) {
  lua_pushinteger(L, sl_box_serial(L, 1));
  return 1;
}

/* sl.now(): monotonic seconds, for rates. */
static int graph_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)sl_clock_s());
  return 1;
}

/* Registry key: true when the host opens its prompt after the script. */
static const char interactive_key = 0;

void sl_lua_set_interactive(lua_State *L, int on) {
  lua_pushboolean(L, on);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &interactive_key);
}

/* sl.interactive(): will a prompt follow this script (streamlua -i, or
** the prompt itself)? Scripts keep their graph running when it will. */
static int graph_interactive(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &interactive_key);
  lua_pushboolean(L, lua_toboolean(L, -1));
  return 1;
}

/* Sets sl.graph, sl.monitor, sl.show, sl.interactive and sl.now in the module table at the top. */
void sl_open_graph(lua_State *L) {
  lua_pushcfunction(L, graph_now);
  lua_setfield(L, -2, "now");
  lua_pushcfunction(L, graph_interactive);
  lua_setfield(L, -2, "interactive");
  if (luaL_loadbuffer(L, graph_lua, sizeof graph_lua, "=streamlua.graph") != LUA_OK)
    lua_error(L);
  lua_pushvalue(L, -2);
  lua_pushcfunction(L, graph_objects);
  lua_pushcfunction(L, graph_serial);
  lua_call(L, 3, 3);
  lua_setfield(L, -4, "show");
  lua_setfield(L, -3, "monitor");
  lua_setfield(L, -2, "graph");
}
