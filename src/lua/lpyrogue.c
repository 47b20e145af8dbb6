/*
** sl.pyrogue: the register tree (Root, Device, variables, commands) is Lua,
** lua/streamlua/pyrogue/X.lua files, embedded at build time (every file there is
** listed in generated/pyrogue_lua.h). Each file X is registered in
** package.preload as streamlua.pyrogue.X; sl.pyrogue is
** require "streamlua.pyrogue.init", loaded the first time it is read.
*/
#include <string.h>

#include "lsl.h"
#include "pyrogue_lua.h"

/* package.preload loader: upvalue 1 is the index in sl_pyrogue_files. */
static int pyrogue_load(lua_State *L) {
  lua_Integer i = lua_tointeger(L, lua_upvalueindex(1));
  const char *name = sl_pyrogue_files[i].name;
  lua_pushfstring(L, "=%s", name);
  if (luaL_loadbuffer(L, sl_pyrogue_files[i].src, sl_pyrogue_files[i].size,
                      lua_tostring(L, -1)) != LUA_OK)
    return lua_error(L);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  return 1;
}

/* The module table's __index: `pyrogue` is whatever require gives now,
** not a copy kept in the module table, so that sl.pyrogue and the files
** it requires are always the same load (a test runner that unloads
** modules between files, while the program keeps the module, would
** otherwise mix an old tree with new files). */
static int pyrogue_index(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (k == NULL || strcmp(k, "pyrogue") != 0) return 0;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "streamlua.pyrogue.init");
  lua_call(L, 1, 1);
  return 1;
}

/* Registers the preloads and makes sl.pyrogue load on first use (the
** module table is at the top). */
void sl_open_pyrogue(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (lua_Integer i = 0; sl_pyrogue_files[i].name != NULL; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, pyrogue_load, 1);
    lua_setfield(L, -2, sl_pyrogue_files[i].name);
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, pyrogue_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
}
