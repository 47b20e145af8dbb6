/*
** sl.logging: Rogue's logging model (levels, global level, prefix filters)
** for Lua, plus writing records from Lua and reading the recent ones back.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lsl.h"

static const struct {
  const char *name;
  int level;
} levels[] = {{"Critical", SL_LOG_CRITICAL}, {"Error", SL_LOG_ERROR},
              {"Thread", SL_LOG_THREAD},     {"Warning", SL_LOG_WARNING},
              {"Info", SL_LOG_INFO},         {"Debug", SL_LOG_DEBUG},
              {NULL, 0}};

/* A level is a number or one of the names above (any case). */
static int check_level(lua_State *L, int i) {
  if (lua_type(L, i) == LUA_TSTRING) {
    const char *s = lua_tostring(L, i);
    for (int k = 0; levels[k].name; k++)
      if (strcasecmp(s, levels[k].name) == 0) return levels[k].level;
    return luaL_argerror(L, i, lua_pushfstring(L, "unknown level '%s'", s));
  }
  lua_Integer v = luaL_checkinteger(L, i);
  luaL_argcheck(L, v >= 0 && v <= 100, i, "level out of range [0, 100]");
  return (int)v;
}

static int log_set_level(lua_State *L) {
  sl_log_set_level(check_level(L, 1));
  return 0;
}

static int log_get_level(lua_State *L) {
  lua_pushinteger(L, sl_log_get_level());
  return 1;
}

static int log_set_filter(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  sl_log_set_filter(name, check_level(L, 2));
  return 0;
}

/* sl.logging.log(name, level, message): every record is written (Python's
** logging has no repeat limit). */
static int log_log(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int level = check_level(L, 2);
  const char *msg = luaL_checkstring(L, 3);
  sl_log_write_each(sl_log_get(name), level, "%s", msg);
  return 0;
}

/* sl.logging.levelOf(name): the effective level of that logger. */
static int log_level_of(lua_State *L) {
  lua_pushinteger(L, sl_log_level(sl_log_get(luaL_checkstring(L, 1))));
  return 1;
}

static int log_set_emit(lua_State *L) {
  luaL_checkany(L, 1);
  sl_log_set_emit(lua_toboolean(L, 1));
  return 0;
}

/* sl.logging.setRepeatWindow(seconds): 0 writes every record. */
static int log_set_repeat_window(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  luaL_argcheck(L, isfinite(s) && s >= 0 && s <= 1e9, 1,
                "seconds in [0, 1e9] expected");
  sl_log_set_repeat_window((long long)(s * 1e9));
  return 0;
}

static int log_get_repeat_window(lua_State *L) {
  lua_pushnumber(L, (double)sl_log_get_repeat_window() * 1e-9);
  return 1;
}

static int log_flush(lua_State *L) {
  (void)L;
  sl_log_flush();
  return 0;
}

/* sl.logging.history([n]) -> the last n lines (default all kept), oldest first */
static int log_history(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 1, 256);
  luaL_argcheck(L, n >= 0, 1, "count must not be negative");
  if (n > 256) n = 256;
  char *lines[256];
  size_t got = sl_log_history(lines, (size_t)n);
  lua_createtable(L, (int)got, 0);
  for (size_t i = 0; i < got; i++) {
    size_t len = strlen(lines[i]);
    if (len > 0 && lines[i][len - 1] == '\n') len--;
    lua_pushlstring(L, lines[i], len);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
    free(lines[i]);
  }
  return 1;
}

static const luaL_Reg log_funcs[] = {
    {"setLevel", log_set_level},   {"getLevel", log_get_level},
    {"setFilter", log_set_filter}, {"log", log_log},
    {"levelOf", log_level_of},     {"setEmit", log_set_emit},
    {"history", log_history},      {"setRepeatWindow", log_set_repeat_window},
    {"getRepeatWindow", log_get_repeat_window},
    {"flush", log_flush},          {NULL, NULL}};

/* Sets sl.logging in the module table at the top. */
void sl_open_logging(lua_State *L) {
  luaL_newlib(L, log_funcs);
  for (int k = 0; levels[k].name; k++) {
    lua_pushinteger(L, levels[k].level);
    lua_setfield(L, -2, levels[k].name);
  }
  lua_setfield(L, -2, "logging");
}
