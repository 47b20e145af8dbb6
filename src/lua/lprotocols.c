/*
** sl.protocols.UdpRssiPack{...}: pyrogue's UdpRssiPack (see
** streamlua/udp_rssi_pack.h).
**
**   local link = sl.protocols.UdpRssiPack{host = "192.168.1.10", port = 8198,
**                                         jumbo = true, packVer = 2}
**   local srp = sl.srp.SrpV3()
**   _ = srp == link:application(0)
**
** Fields (pyrogue's names and defaults): port (required), host
** ("127.0.0.1"), jumbo (false), packVer (1; 2 means CoreV2, anything else
** Core), enSsi (true), server (false), wait (true), defaults (a table of
** locMaxBuffers, locCumAckTout, locRetranTout, locNullTout, locMaxRetran,
** locMaxCumAck applied to RSSI before it starts); and timeout, seconds: a
** bound on the wait (none by default, as pyrogue). name, description and
** pollInterval are taken and ignored. The constructor starts the link; a
** client with wait = true returns once it is open, serving the loop
** meanwhile (lua/streamlua/protocols.lua: waitOpen). A server never waits.
*/
#include <string.h>

#include "lsl.h"
#include "protocols_lua.h"
#include "streamlua/udp_rssi_pack.h"

#define KIND "UdpRssiPack"

static sl_udp_rssi_pack *check_pack(lua_State *L) {
  sl_udp_rssi_pack *p = sl_udp_rssi_pack_from_object(sl_lua_check_object(L, 1));
  if (p == NULL) sl_lua_type_error(L, 1, "streamlua." KIND);
  return p;
}

/* link:application(dest) -> the packetizer's edge for dest (the same
** object each call) */
static int pack_application(lua_State *L) {
  sl_udp_rssi_pack *p = check_pack(L);
  lua_Integer dest = luaL_checkinteger(L, 2);
  luaL_argcheck(L, dest >= 0 && dest <= 255, 2, "dest out of range [0, 255]");
  sl_error err;
  sl_object *o = sl_packetizer_application(sl_udp_rssi_pack_packetizer(p),
                                           (uint32_t)dest, &err);
  if (o == NULL) return luaL_error(L, "application: %s", err.msg);
  sl_lua_push_object(L, o);
  sl_object_unref(o);
  return 1;
}

static int pack_get_open(lua_State *L) {
  lua_pushboolean(L, sl_udp_rssi_pack_is_open(check_pack(L)));
  return 1;
}

/* link:countReset(): RSSI's resetCounters */
static int pack_count_reset(lua_State *L) {
  sl_rssi_reset_counters(sl_udp_rssi_pack_rssi(check_pack(L)));
  return 0;
}

static int pack_start(lua_State *L) {
  int rc = sl_udp_rssi_pack_start(check_pack(L));
  if (rc != SL_OK) return luaL_error(L, "_start: %s", sl_status_str(rc));
  return 0;
}

static int pack_stop_link(lua_State *L) {
  sl_udp_rssi_pack_stop_link(check_pack(L));
  return 0;
}

static int pack_udp(lua_State *L) {
  sl_lua_push_object(L, sl_udp_object(sl_udp_rssi_pack_udp(check_pack(L))));
  return 1;
}

static int pack_rssi(lua_State *L) {
  sl_lua_push_object(L, sl_rssi_object(sl_udp_rssi_pack_rssi(check_pack(L))));
  return 1;
}

static int pack_packetizer(lua_State *L) {
  sl_lua_push_object(L, sl_packetizer_object(sl_udp_rssi_pack_packetizer(check_pack(L))));
  return 1;
}

/* link:getPort() -> the UDP port (a server's bound port) */
static int pack_get_port(lua_State *L) {
  lua_pushinteger(L, sl_udp_port(sl_udp_rssi_pack_udp(check_pack(L))));
  return 1;
}

static const luaL_Reg pack_methods[] = {
    {"application", pack_application},
    {"getOpen", pack_get_open},
    {"countReset", pack_count_reset},
    {"_start", pack_start},
    {"_stop", pack_stop_link},
    {"udp", pack_udp},
    {"rssi", pack_rssi},
    {"packetizer", pack_packetizer},
    {"getPort", pack_get_port},
    {NULL, NULL}};

/* ---- the constructor ---- */

typedef struct args {
  const char *host;
  lua_Integer port, pack_ver;
  int jumbo, en_ssi, server, wait;
  int timeout;                  /* stack index of the bound, or 0 */
  int defaults;                 /* stack index of the table, or 0 */
} args;

static const char *const known[] = {"host", "port", "jumbo", "packVer", "enSsi",
                                    "server", "wait", "timeout", "defaults", "name",
                                    "description", "pollInterval", NULL};

/* Raises for a field that is not one of `known`: a typo would otherwise
** be silently ignored. */
static void check_fields(lua_State *L) {
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; known[i] && !ok; i++) ok = strcmp(lua_tostring(L, -1), known[i]) == 0;
    if (!ok)
      luaL_argerror(L, 1, lua_pushfstring(L, "unknown field '%s'", luaL_tolstring(L, -1, NULL)));
  }
}

static int opt_bool(lua_State *L, const char *key, int dflt) {
  int t = lua_getfield(L, 1, key);
  int v = t == LUA_TNIL ? dflt : lua_toboolean(L, -1);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_argerror(L, 1, lua_pushfstring(L, "field '%s' must be a boolean", key));
  lua_pop(L, 1);
  return v;
}

static lua_Integer opt_int(lua_State *L, const char *key, lua_Integer dflt, int required) {
  int t = lua_getfield(L, 1, key);
  if (t == LUA_TNIL && !required) {
    lua_pop(L, 1);
    return dflt;
  }
  if (!lua_isinteger(L, -1))
    luaL_argerror(L, 1, lua_pushfstring(L, "field '%s' must be an integer", key));
  lua_Integer v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

static void read_args(lua_State *L, args *a) {
  luaL_checktype(L, 1, LUA_TTABLE);
  check_fields(L);
  a->port = opt_int(L, "port", 0, 1);
  a->server = opt_bool(L, "server", 0);
  if (a->port < (a->server ? 0 : 1) || a->port > 65535)
    luaL_argerror(L, 1, "field 'port' out of range");
  a->pack_ver = opt_int(L, "packVer", 1, 0);
  a->jumbo = opt_bool(L, "jumbo", 0);
  a->en_ssi = opt_bool(L, "enSsi", 1);
  a->wait = opt_bool(L, "wait", 1);
  int t = lua_getfield(L, 1, "host");
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_argerror(L, 1, "field 'host' must be a string");
  a->host = t == LUA_TNIL ? "127.0.0.1" : lua_tostring(L, -1);   /* stays on the stack */
  t = lua_getfield(L, 1, "timeout");
  if (t != LUA_TNIL && (t != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0)))
    luaL_argerror(L, 1, "field 'timeout' must be a positive number of seconds");
  a->timeout = t == LUA_TNIL ? 0 : lua_gettop(L);
  t = lua_getfield(L, 1, "defaults");
  if (t != LUA_TNIL && t != LUA_TTABLE) luaL_argerror(L, 1, "field 'defaults' must be a table");
  a->defaults = t == LUA_TNIL ? 0 : lua_gettop(L);
}

/* pyrogue applies these keys of `defaults` with the matching setLoc...
** (not locMaxSegment or locTryPeriod). */
static void apply_defaults(lua_State *L, int idx, sl_rssi *r) {
  static const struct { const char *key; int param; } keys[] = {
      {"locMaxBuffers", SL_RSSI_P_MAX_BUFFERS}, {"locCumAckTout", SL_RSSI_P_CUM_ACK_TOUT},
      {"locRetranTout", SL_RSSI_P_RETRAN_TOUT}, {"locNullTout", SL_RSSI_P_NULL_TOUT},
      {"locMaxRetran", SL_RSSI_P_MAX_RETRAN},   {"locMaxCumAck", SL_RSSI_P_MAX_CUM_ACK}};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    if (lua_getfield(L, idx, keys[i].key) != LUA_TNIL) {
      lua_Integer v = lua_tointeger(L, -1);
      if (!lua_isinteger(L, -1) || v <= 0 || v > UINT32_MAX ||
          sl_rssi_set_loc(r, keys[i].param, (uint32_t)v) != SL_OK)
        luaL_argerror(L, 1, lua_pushfstring(L, "Invalid %s Value in defaults", keys[i].key));
    }
    lua_pop(L, 1);
  }
}

/* The layers' boxes live in the stack's box (its fields), so sl.graph()
** shows them and their links while the stack lives. */
static void keep_layers(lua_State *L, int self, sl_udp_rssi_pack *p) {
  sl_lua_push_object(L, sl_udp_object(sl_udp_rssi_pack_udp(p)));
  lua_setfield(L, self, "_udp");
  sl_lua_push_object(L, sl_rssi_object(sl_udp_rssi_pack_rssi(p)));
  lua_setfield(L, self, "_rssi");
  sl_lua_push_object(L, sl_packetizer_object(sl_udp_rssi_pack_packetizer(p)));
  lua_setfield(L, self, "_packetizer");
}

static int pack_new(lua_State *L) {
  args a;
  read_args(L, &a);
  sl_error err;
  sl_udp_rssi_pack *p = sl_udp_rssi_pack_new(a.host, (uint32_t)a.port, a.server, a.jumbo,
                                             (int)a.pack_ver, a.en_ssi, &err);
  if (p == NULL) return luaL_error(L, "UdpRssiPack: %s", err.msg);
  sl_object *o = sl_udp_rssi_pack_object(p);
  sl_lua_push_object(L, o);
  sl_object_unref(o);
  int self = lua_gettop(L);
  keep_layers(L, self, p);
  lua_getfield(L, self, "_addVariables");   /* protocols.lua */
  lua_pushvalue(L, self);
  lua_call(L, 1, 0);
  if (a.defaults) apply_defaults(L, a.defaults, sl_udp_rssi_pack_rssi(p));
  int rc = sl_udp_rssi_pack_start(p);
  if (rc != SL_OK) {
    sl_object_stop(o);
    return luaL_error(L, "UdpRssiPack: cannot start: %s", sl_status_str(rc));
  }
  if (!a.wait || a.server) return 1;
  lua_getfield(L, self, "_waitStart");   /* protocols.lua */
  lua_pushvalue(L, self);
  if (a.timeout) lua_pushvalue(L, a.timeout);
  else lua_pushnil(L);
  lua_pushstring(L, a.host);
  lua_call(L, 3, 0);
  lua_settop(L, self);
  return 1;
}

static const sl_lua_class udp_rssi_pack_class = {KIND, pack_methods, pack_new, 0};

/* Sets sl.protocols = {UdpRssiPack} in the module table at the top. */
void sl_open_protocols(lua_State *L) {
  lua_newtable(L);                                   /* sl.protocols */
  sl_lua_class_new(L, &udp_rssi_pack_class);
  if (luaL_loadbuffer(L, protocols_lua, sizeof protocols_lua, "=streamlua.protocols") !=
      LUA_OK)
    lua_error(L);
  lua_pushvalue(L, -4);                              /* sl */
  lua_pushvalue(L, -3);                              /* the class table */
  lua_call(L, 2, 0);
  lua_setfield(L, -2, "UdpRssiPack");
  lua_setfield(L, -2, "protocols");
}
