/*
** sl.stream.Filter(dropErrors, channel) and sl.stream.RateDrop(period, value).
*/
#include "lsl.h"
#include "streamlua/filter.h"

static int check_bool(lua_State *L, int i) {
  luaL_checktype(L, i, LUA_TBOOLEAN);
  return lua_toboolean(L, i);
}

static int filter_new(lua_State *L) {
  int drop_errors = check_bool(L, 1);
  lua_Integer ch = luaL_checkinteger(L, 2);
  luaL_argcheck(L, ch >= 0 && ch <= 255, 2, "channel out of range [0, 255]");
  sl_error err;
  sl_object *obj = sl_filter_object(sl_filter_new(drop_errors, (uint8_t)ch, &err));
  if (obj == NULL) return luaL_error(L, "Filter: %s", err.msg);
  sl_lua_push_object(L, obj);
  sl_object_unref(obj);
  return 1;
}

static int rate_drop_new(lua_State *L) {
  int period = check_bool(L, 1);
  lua_Number v = luaL_checknumber(L, 2);
  luaL_argcheck(L, v >= 0, 2, "value must not be negative");
  sl_error err;
  sl_object *obj = sl_rate_drop_object(sl_rate_drop_new(period, v, &err));
  if (obj == NULL && err.status == SL_ENOMEM) return luaL_error(L, "RateDrop: %s", err.msg);
  if (obj == NULL) return luaL_argerror(L, 2, err.msg);
  sl_lua_push_object(L, obj);
  sl_object_unref(obj);
  return 1;
}

static const sl_lua_class filter_class = {"Filter", NULL, filter_new, SL_ROLE_STREAM};
static const sl_lua_class rate_drop_class = {"RateDrop", NULL, rate_drop_new,
                                             SL_ROLE_STREAM};

void sl_open_filter(lua_State *L) {
  sl_lua_class_new(L, &filter_class);
  lua_setfield(L, -2, "Filter");
  sl_lua_class_new(L, &rate_drop_class);
  lua_setfield(L, -2, "RateDrop");
}
