/*
** sl.rssi: Rogue's RSSI reliable link from Lua (streamlua/rssi.h).
**
**   local udp = sl.udp.Client("10.0.0.2", 8192)
**   local rssi = sl.rssi.Client(udp:maxPayload() - 8)
**   _ = udp == rssi:transport()
**   _ = rssi:application() == packetizer:transport()
**   rssi:_start()
**
** Names and units are Rogue's (rogue.protocols.rssi): times in ms, the
** transmit timeout in us; setLoc... values go into the next SYN.
*/
#include <stdio.h>

#include "lsl.h"
#include "streamlua/rssi.h"

static sl_rssi *check_rssi(lua_State *L) {
  sl_rssi *r = sl_rssi_from_object(sl_lua_check_object(L, 1));
  if (r == NULL) sl_lua_type_error(L, 1, "rssi.Client or rssi.Server");
  return r;
}

/* rssi:transport() / rssi:application() -> the edge (the same each call) */
static int rssi_transport(lua_State *L) {
  sl_object *e = sl_rssi_transport(check_rssi(L));
  sl_lua_push_object(L, e);
  sl_object_unref(e);
  return 1;
}

static int rssi_application(lua_State *L) {
  sl_object *e = sl_rssi_application(check_rssi(L));
  sl_lua_push_object(L, e);
  sl_object_unref(e);
  return 1;
}

static int rssi_start(lua_State *L) {
  if (sl_rssi_start(check_rssi(L)) != SL_OK)
    return luaL_error(L, "rssi:_start: cannot start its threads");
  return 0;
}

static int rssi_get_open(lua_State *L) {
  lua_pushboolean(L, sl_rssi_is_open(check_rssi(L)));
  return 1;
}

static int rssi_reset_counters(lua_State *L) {
  sl_rssi_reset_counters(check_rssi(L));
  return 0;
}

/* rssi:setTimeout(us): period of the critical log of a waiting send */
static int rssi_set_timeout(lua_State *L) {
  sl_rssi *r = check_rssi(L);
  lua_Integer us = luaL_checkinteger(L, 2);
  luaL_argcheck(L, us > 0, 2, "positive number of microseconds expected");
  sl_rssi_set_timeout(r, (uint64_t)us);
  return 0;
}

/* The counters and flags, one getter each: upvalue 1 names the field. */
static int rssi_stat(lua_State *L) {
  sl_rssi_stats s;
  sl_rssi_stats_get(check_rssi(L), &s);
  switch (lua_tointeger(L, lua_upvalueindex(1))) {
    case 0: lua_pushinteger(L, s.down_count); break;
    case 1: lua_pushinteger(L, s.drop_count); break;
    case 2: lua_pushinteger(L, s.retran_count); break;
    case 3: lua_pushboolean(L, s.loc_busy); break;
    case 4: lua_pushinteger(L, s.loc_busy_count); break;
    case 5: lua_pushboolean(L, s.rem_busy); break;
    default: lua_pushinteger(L, s.rem_busy_count); break;
  }
  return 1;
}

static const char *const stat_names[] = {
    "getDownCount", "getDropCount", "getRetranCount", "getLocBusy",
    "getLocBusyCnt", "getRemBusy", "getRemBusyCnt", NULL};

/* The parameters: Rogue's names, the widths of their SYN fields, and the
** name Rogue's error gives each. */
static const struct param {
  const char *name;            /* after setLoc / getLoc / cur */
  const char *err;             /* Invalid <err> Value = 0 */
  int id;
  lua_Integer max;
} params[] = {
    {"TryPeriod", "LocTryPeriod", SL_RSSI_P_TRY_PERIOD, 0xFFFFFFFF},
    {"MaxBuffers", "LocMaxBuffers", SL_RSSI_P_MAX_BUFFERS, 0xFF},
    {"MaxSegment", "LocMaxSegment", SL_RSSI_P_MAX_SEGMENT, 0xFFFF},
    {"CumAckTout", "LocCumAckTout", SL_RSSI_P_CUM_ACK_TOUT, 0xFFFF},
    {"RetranTout", "LocRetranTout", SL_RSSI_P_RETRAN_TOUT, 0xFFFF},
    {"NullTout", "LocNullTout", SL_RSSI_P_NULL_TOUT, 0xFFFF},
    {"MaxRetran", "LocMaxRetran", SL_RSSI_P_MAX_RETRAN, 0xFF},
    {"MaxCumAck", "LocMaxAck", SL_RSSI_P_MAX_CUM_ACK, 0xFF},
    {NULL, NULL, 0, 0}};

static int rssi_set_loc(lua_State *L) {
  const struct param *p = &params[lua_tointeger(L, lua_upvalueindex(1))];
  sl_rssi *r = check_rssi(L);
  lua_Integer v = luaL_checkinteger(L, 2);
  if (v == 0) return luaL_error(L, "Invalid %s Value = 0", p->err);
  if (v < 0 || v > p->max)
    return luaL_argerror(L, 2, lua_pushfstring(L, "value out of range [1, %I]", p->max));
  if (p->id == SL_RSSI_P_MAX_SEGMENT && v <= SL_RSSI_HEADER)
    return luaL_argerror(L, 2, "a segment must hold more than its 8-byte header");
  sl_rssi_set_loc(r, p->id, (uint32_t)v);
  return 0;
}

static int rssi_get_param(lua_State *L) {
  const struct param *p = &params[lua_tointeger(L, lua_upvalueindex(1))];
  int cur = lua_toboolean(L, lua_upvalueindex(2));
  sl_rssi *r = check_rssi(L);
  lua_pushinteger(L, cur ? sl_rssi_get_cur(r, p->id) : sl_rssi_get_loc(r, p->id));
  return 1;
}

static const luaL_Reg rssi_methods[] = {
    {"transport", rssi_transport},
    {"application", rssi_application},
    {"_start", rssi_start},
    {"start", rssi_start},
    {"getOpen", rssi_get_open},
    {"resetCounters", rssi_reset_counters},
    {"setTimeout", rssi_set_timeout},
    {NULL, NULL}};

/* Adds the generated getters and setters to the class table at the top. */
static void add_param_methods(lua_State *L) {
  for (int i = 0; stat_names[i] != NULL; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, rssi_stat, 1);
    lua_setfield(L, -2, stat_names[i]);
  }
  char name[32];
  for (int i = 0; params[i].name != NULL; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, rssi_set_loc, 1);
    snprintf(name, sizeof name, "setLoc%s", params[i].name);
    lua_setfield(L, -2, name);
    lua_pushinteger(L, i);
    lua_pushboolean(L, 0);
    lua_pushcclosure(L, rssi_get_param, 2);
    snprintf(name, sizeof name, "getLoc%s", params[i].name);
    lua_setfield(L, -2, name);
    if (params[i].id == SL_RSSI_P_TRY_PERIOD) continue;
    lua_pushinteger(L, i);
    lua_pushboolean(L, 1);
    lua_pushcclosure(L, rssi_get_param, 2);
    snprintf(name, sizeof name, "cur%s", params[i].name);
    lua_setfield(L, -2, name);
  }
}

static int rssi_new(lua_State *L, int server, const char *fn) {
  lua_Integer seg = luaL_checkinteger(L, 1);
  luaL_argcheck(L, seg > SL_RSSI_HEADER && seg <= 0xFFFF, 1,
                "segment size out of range [9, 65535]");
  sl_error err;
  sl_object *o = sl_rssi_object(sl_rssi_new(server, (uint32_t)seg, &err));
  if (o == NULL) return luaL_error(L, "%s: %s", fn, err.msg);
  sl_lua_push_object(L, o);
  sl_object_unref(o);
  return 1;
}

static int client_new(lua_State *L) { return rssi_new(L, 0, "rssi.Client"); }
static int server_new(lua_State *L) { return rssi_new(L, 1, "rssi.Server"); }

static const sl_lua_class client_class = {"rssi.Client", rssi_methods, client_new, 0};
static const sl_lua_class server_class = {"rssi.Server", rssi_methods, server_new, 0};
static const sl_lua_class transport_class = {"rssi.Transport", NULL, NULL,
                                             SL_ROLE_STREAM};
static const sl_lua_class application_class = {"rssi.Application", NULL, NULL,
                                               SL_ROLE_STREAM};

/* The class table just made (at the top) gets the generated methods. */
static void class_with_params(lua_State *L, const sl_lua_class *cls) {
  sl_lua_class_new(L, cls);
  add_param_methods(L);
  /* the box's __index reads this same table: nothing else to do */
}

void sl_open_rssi(lua_State *L) {
  lua_newtable(L);                                   /* sl.rssi */
  class_with_params(L, &client_class);
  lua_setfield(L, -2, "Client");
  class_with_params(L, &server_class);
  lua_setfield(L, -2, "Server");
  sl_lua_class_new(L, &transport_class);
  lua_setfield(L, -2, "Transport");
  sl_lua_class_new(L, &application_class);
  lua_setfield(L, -2, "Application");
  lua_setfield(L, -2, "rssi");
}
