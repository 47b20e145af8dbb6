/*
** sl.packetizer: Rogue's packetizer Core (v1) and CoreV2 from Lua (see
** streamlua/packetizer.h).
**
**   local pack = sl.packetizer.CoreV2(false, true, true)
**   _ = rssi:application() == pack:transport()   -- segments both ways
**   _ = pack:application(1) >> prbsRx             -- frames of dest 1
**   _ = prbsTx >> pack:application(1)
**
** The Core is neither master nor slave; its transport() and
** application(dest) edges are both. application(dest) returns the same
** object on every call for a dest.
*/
#include "lsl.h"
#include "streamlua/packetizer.h"

#define CORE_KIND "packetizer.Core"
#define CORE_V2_KIND "packetizer.CoreV2"

static sl_packetizer *check_core(lua_State *L) {
  sl_packetizer *p = sl_packetizer_from_object(sl_lua_check_object(L, 1));
  if (p == NULL) luaL_argerror(L, 1, "packetizer Core or CoreV2 expected");
  return p;
}

/* Pushes an edge (transfer full) and drops the caller's reference. */
static int push_edge(lua_State *L, sl_object *o) {
  sl_lua_push_object(L, o);
  sl_object_unref(o);
  return 1;
}

/* pack:transport() -> the lower edge (segments) */
static int core_transport(lua_State *L) {
  return push_edge(L, sl_packetizer_transport(check_core(L)));
}

/* pack:application(dest) -> the upper edge of dest, 0..255 */
static int core_application(lua_State *L) {
  sl_packetizer *p = check_core(L);
  lua_Integer dest = sl_check_range(L, 2, 0, SL_PACK_DESTS - 1);
  sl_error err;
  sl_object *o = sl_packetizer_application(p, (uint32_t)dest, &err);
  if (o == NULL) return luaL_error(L, "application: %s", err.msg);
  return push_edge(L, o);
}

/* pack:getDropCount() -> received segments dropped */
static int core_get_drop_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_packetizer_drop_count(check_core(L)));
  return 1;
}

/* pack:reset() -> how many unfinished received frames were dropped (and
** counted): for when the transport below reopens */
static int core_reset(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_packetizer_reset(check_core(L)));
  return 1;
}

/* pack:setMaxPending(bytes): the bound on bytes held in unfinished
** received frames */
static int core_set_max_pending(lua_State *L) {
  sl_packetizer *p = check_core(L);
  lua_Integer n = sl_check_range(L, 2, 1, (lua_Integer)1 << 40);
  sl_packetizer_set_max_pending(p, (uint64_t)n);
  return 0;
}

static int core_get_max_pending(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_packetizer_get_max_pending(check_core(L)));
  return 1;
}

static const luaL_Reg core_meth[] = {
    {"transport", core_transport},
    {"application", core_application},
    {"getDropCount", core_get_drop_count},
    {"reset", core_reset},
    {"setMaxPending", core_set_max_pending},
    {"getMaxPending", core_get_max_pending},
    {NULL, NULL}};

/* Boolean argument i (Rogue's constructors take bools). */
static int flag_arg(lua_State *L, int i) {
  luaL_checktype(L, i, LUA_TBOOLEAN);
  return lua_toboolean(L, i);
}

static int push_core(lua_State *L, int version, int ib, int ob, int ssi,
                     const char *fn) {
  sl_error err;
  sl_object *o = sl_packetizer_object(sl_packetizer_new(version, ib, ob, ssi, &err));
  if (o == NULL) return luaL_error(L, "%s: %s", fn, err.msg);
  sl_lua_push_object(L, o);
  sl_object_unref(o);
  return 1;
}

/* sl.packetizer.Core(enSsi) */
static int core_new(lua_State *L) {
  return push_core(L, 1, 0, 0, flag_arg(L, 1), "Core");
}

/* sl.packetizer.CoreV2(enIbCrc, enObCrc, enSsi) */
static int core_v2_new(lua_State *L) {
  int ib = flag_arg(L, 1), ob = flag_arg(L, 2), ssi = flag_arg(L, 3);
  return push_core(L, 2, ib, ob, ssi, "CoreV2");
}

static const sl_lua_class classes[] = {
    {CORE_KIND, core_meth, core_new, 0},
    {CORE_V2_KIND, core_meth, core_v2_new, 0},
    {"packetizer.Transport", NULL, NULL, SL_ROLE_STREAM},
    {"packetizer.Application", NULL, NULL, SL_ROLE_STREAM}};
static const char *const fields[] = {"Core", "CoreV2", "Transport", "Application"};

/* Sets sl.packetizer = {Core, CoreV2, Transport, Application} in the
** module table at the top. */
void sl_open_packetizer(lua_State *L) {
  lua_newtable(L);
  for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
    sl_lua_class_new(L, &classes[i]);
    lua_setfield(L, -2, fields[i]);
  }
  lua_setfield(L, -2, "packetizer");
}
