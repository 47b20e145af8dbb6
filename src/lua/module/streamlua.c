/*
** require "streamlua": the module file the interpreter loads. The binding
** itself is libstreamlua-lua, which this file links, so the module, the
** host and any C module share one binding and one core.
*/
#include <lua.h>

#include "sl_lua.h"

__attribute__((visibility("default"))) int luaopen_streamlua(lua_State *L);

int luaopen_streamlua(lua_State *L) {
  return sl_lua_open(L);
}
