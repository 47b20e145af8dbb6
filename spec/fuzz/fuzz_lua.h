/*
** fuzz_lua.h: what the harnesses of the tree's embedded Lua share. A
** harness gives an embedded module's source and a check chunk; the first
** input builds one Lua state for the whole run: the module is loaded and
** run, the chunk is called with the module's value and returns the check,
** a function taking one input and returning nil, or what went wrong.
**
** fuzz_lua_input(...) runs the check on one input. Invariants: the check
** itself does not raise, says nothing went wrong, and the state's memory
** after a full collection stays under FUZZ_LUA_MAX_KIB.
*/
#ifndef STREAMLUA_FUZZ_LUA_H_INCLUDED_
#define STREAMLUA_FUZZ_LUA_H_INCLUDED_

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz.h"

#define FUZZ_LUA_MAX_KIB (64 * 1024)

/* The registry key of the check function. */
#define FUZZ_LUA_CHECK_KEY "streamlua.fuzz_lua.check"

/* A new state with module `name` (src, len bytes) run and `check` called
** with its value; the check kept in the registry. */
static lua_State *fuzz_lua_state(const char *name, const char *src, size_t len,
                                 const char *check, size_t check_len) {
  lua_State *L = luaL_newstate();
  FUZZ_CHECK(L != NULL);
  luaL_openlibs(L);
  lua_pushfstring(L, "=%s", name);
  FUZZ_CHECK(luaL_loadbuffer(L, src, len, lua_tostring(L, -1)) == LUA_OK);
  lua_remove(L, -2);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "%s: %s\n", name, lua_tostring(L, -1));
    FUZZ_CHECK(0);
  }
  FUZZ_CHECK(luaL_loadbuffer(L, check, check_len, "=check") == LUA_OK);
  lua_insert(L, -2);
  FUZZ_CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK);
  FUZZ_CHECK(lua_isfunction(L, -1));
  lua_setfield(L, LUA_REGISTRYINDEX, FUZZ_LUA_CHECK_KEY);
  return L;
}

/* Runs the check of the embedded module on one input (the state is made
** on the first call and kept for the run). */
__attribute__((unused)) static void fuzz_lua_input(const char *name, const char *src,
                                                   size_t len, const char *check,
                                                   size_t check_len, const uint8_t *data,
                                                   size_t size) {
  static lua_State *L;
  if (L == NULL) L = fuzz_lua_state(name, src, len, check, check_len);
  lua_getfield(L, LUA_REGISTRYINDEX, FUZZ_LUA_CHECK_KEY);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "check raised: %s\n", lua_tostring(L, -1));
    FUZZ_CHECK(0);
  }
  if (!lua_isnil(L, -1)) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    FUZZ_CHECK(0);
  }
  lua_pop(L, 1);
  lua_gc(L, LUA_GCCOLLECT);
  FUZZ_CHECK(lua_gc(L, LUA_GCCOUNT) < FUZZ_LUA_MAX_KIB);
}

#endif
