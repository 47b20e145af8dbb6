/*
** sl.srp: SRPv3 and SRPv0 from Lua.
**
**   local m, srp, emu = sl.memory.Master(), sl.srp.SrpV3(), sl.srp.SrpV3Emulation()
**   _ = m >> srp          -- the register bus side (memory slave)
**   _ = srp == emu        -- the stream side: requests out, responses in
**   m:writeU32(0x100, 42); print(m:readU32(0x100))
**
** SrpV3 (and SrpV0, the same with version 0) is a memory slave and a stream master and slave: `m >> srp` (or
** `srp << m`) sets the bus slave, `srp >> transport` and
** `srp == transport` connect streams.
*/
#include "lsl.h"
#include "streamlua/srp.h"

#define SRPV3_KIND "srp.SrpV3"

static sl_srpv3 *check_srpv3(lua_State *L, int i) {
  sl_srpv3 *s = sl_srpv3_from_object(sl_lua_check_object(L, i));
  if (s == NULL) luaL_argerror(L, i, "SrpV3 expected");
  return s;
}

/* srp:setHardwareTimeout(ticks): W0 bits 31:24 of future requests. */
static int srpv3_set_hw_timeout(lua_State *L) {
  sl_srpv3 *n = check_srpv3(L, 1);
  lua_Integer v = luaL_checkinteger(L, 2);
  luaL_argcheck(L, v >= 0 && v <= 255, 2, "timeout count out of range [0, 255]");
  sl_srpv3_set_hw_timeout(n, (uint8_t)v);
  return 0;
}

static int srpv3_get_hw_timeout(lua_State *L) {
  lua_pushinteger(L, sl_srpv3_get_hw_timeout(check_srpv3(L, 1)));
  return 1;
}

static int srpv3_pending(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_srpv3_pending(check_srpv3(L, 1)));
  return 1;
}

static const luaL_Reg srpv3_methods[] = {
    {"setHardwareTimeout", srpv3_set_hw_timeout},
    {"_setHardwareTimeout", srpv3_set_hw_timeout},
    {"getHardwareTimeout", srpv3_get_hw_timeout},
    {"pending", srpv3_pending},
    {NULL, NULL}};

static int srpv3_new(lua_State *L) {
  sl_error err;
  sl_object *o = sl_srpv3_object(sl_srpv3_new(&err));
  if (o == NULL) return luaL_error(L, "SrpV3: %s", err.msg);
  sl_lua_push_object(L, o);
  sl_object_unref(o);
  return 1;
}

static int srpv0_pending(lua_State *L) {
  sl_srpv0 *s = sl_srpv0_from_object(sl_lua_check_object(L, 1));
  if (s == NULL) luaL_argerror(L, 1, "SrpV0 expected");
  lua_pushinteger(L, (lua_Integer)sl_srpv0_pending(s));
  return 1;
}

static const luaL_Reg srpv0_methods[] = {{"pending", srpv0_pending}, {NULL, NULL}};

static int srpv0_new(lua_State *L) {
  sl_error err;
  sl_object *o = sl_srpv0_object(sl_srpv0_new(&err));
  if (o == NULL) return luaL_error(L, "SrpV0: %s", err.msg);
  sl_lua_push_object(L, o);
  sl_object_unref(o);
  return 1;
}

static int emulation_new(lua_State *L) {
  sl_error err;
  sl_object *o = sl_srpv3_emulation_object(sl_srpv3_emulation_new(&err));
  if (o == NULL) return luaL_error(L, "SrpV3Emulation: %s", err.msg);
  sl_lua_push_object(L, o);
  sl_object_unref(o);
  return 1;
}

static const sl_lua_class srpv3_class = {SRPV3_KIND, srpv3_methods, srpv3_new,
                                         SL_ROLE_STREAM | SL_ROLE_MEMORY_SLAVE};
static const sl_lua_class srpv0_class = {"srp.SrpV0", srpv0_methods, srpv0_new,
                                         SL_ROLE_STREAM | SL_ROLE_MEMORY_SLAVE};
static const sl_lua_class emulation_class = {"srp.SrpV3Emulation", NULL,
                                         emulation_new,
                                             SL_ROLE_STREAM};

void sl_open_srp(lua_State *L) {
  lua_newtable(L);                                   /* sl.srp */
  sl_lua_class_new(L, &srpv3_class);
  lua_setfield(L, -2, "SrpV3");
  sl_lua_class_new(L, &srpv0_class);
  lua_setfield(L, -2, "SrpV0");
  sl_lua_class_new(L, &emulation_class);
  lua_setfield(L, -2, "SrpV3Emulation");
  lua_setfield(L, -2, "srp");
}
