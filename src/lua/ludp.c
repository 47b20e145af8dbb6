/*
** sl.udp.Server(port [, jumbo [, addr]]) and sl.udp.Client(host, port
** [, jumbo]): Rogue's UDP stream endpoints (see streamlua/udp.h).
*/
#include "lsl.h"
#include "streamlua/udp.h"

static sl_udp *check_udp(lua_State *L) {
  if (luaL_testudata(L, 1, "streamlua.UdpServer") == NULL &&
      luaL_testudata(L, 1, "streamlua.UdpClient") == NULL)
    luaL_argerror(L, 1, "udp.Server or udp.Client expected");
  return sl_udp_from_object(sl_lua_check_object(L, 1));
}

/* udp:getPort() -> the server's bound port (the client's: where it sends) */
static int udp_get_port(lua_State *L) {
  lua_pushinteger(L, sl_udp_port(check_udp(L)));
  return 1;
}

/* udp:maxPayload() -> 1472, or 8972 with jumbo */
static int udp_max_payload(lua_State *L) {
  lua_pushinteger(L, sl_udp_max_payload(check_udp(L)));
  return 1;
}

/* udp:setRxBufferCount(n) -> true if the receive buffer holds n full
** datagrams (it only grows) */
static int udp_set_rx_buffer_count(lua_State *L) {
  sl_udp *obj = check_udp(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0 && n <= 1000000, 2, "count out of range [1, 1000000]");
  lua_pushboolean(L, sl_udp_set_rx_buffer_count(obj, (uint32_t)n));
  return 1;
}

/* udp:rxBufferSize() -> the receive buffer the kernel gives, in bytes */
static int udp_rx_buffer_size(lua_State *L) {
  lua_pushinteger(L, sl_udp_rx_buffer_size(check_udp(L)));
  return 1;
}

/* udp:setTimeout(us): a sender waiting for the socket logs a critical line
** after this many microseconds, then waits again (Rogue's rule). */
static int udp_set_timeout(lua_State *L) {
  sl_udp *obj = check_udp(L);
  lua_Integer us = luaL_checkinteger(L, 2);
  luaL_argcheck(L, us > 0, 2, "positive number of microseconds expected");
  sl_udp_set_timeout(obj, (uint64_t)us);
  return 0;
}

/* udp:peer() -> "a.b.c.d", port of where frames go; nil before a server
** has heard from anyone */
static int udp_peer(lua_State *L) {
  char ip[16];
  uint32_t port;
  if (!sl_udp_peer(check_udp(L), ip, &port)) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

static const luaL_Reg udp_meth[] = {
    {"getPort", udp_get_port},
    {"maxPayload", udp_max_payload},
    {"setRxBufferCount", udp_set_rx_buffer_count},
    {"rxBufferSize", udp_rx_buffer_size},
    {"setTimeout", udp_set_timeout},
    {"peer", udp_peer},
    {NULL, NULL}};

static int udp_push_new(lua_State *L, const char *host, lua_Integer port,
                        int server, int jumbo, const char *fn) {
  sl_error err;
  sl_object *obj = sl_udp_object(sl_udp_new(host, (uint32_t)port, server, jumbo, &err));
  if (obj == NULL) return luaL_error(L, "%s: %s", fn, err.msg);
  sl_lua_push_object(L, obj);
  sl_object_unref(obj);
  return 1;
}

static int udp_server_new(lua_State *L) {
  lua_Integer port = luaL_checkinteger(L, 1);
  luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port out of range [0, 65535]");
  int jumbo = lua_toboolean(L, 2);
  const char *addr = luaL_optstring(L, 3, "*");
  return udp_push_new(L, addr, port, 1, jumbo, "udp.Server");
}

static int udp_client_new(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  luaL_argcheck(L, port > 0 && port <= 65535, 2, "port out of range [1, 65535]");
  return udp_push_new(L, host, port, 0, lua_toboolean(L, 3), "udp.Client");
}

static const sl_lua_class server_class = {"UdpServer", udp_meth, udp_server_new,
                                          SL_ROLE_STREAM};
static const sl_lua_class client_class = {"UdpClient", udp_meth, udp_client_new,
                                          SL_ROLE_STREAM};

/* Sets sl.udp = {Server, Client} in the module table at the top. */
void sl_open_udp(lua_State *L) {
  lua_newtable(L);
  sl_lua_class_new(L, &server_class);
  lua_setfield(L, -2, "Server");
  sl_lua_class_new(L, &client_class);
  lua_setfield(L, -2, "Client");
  lua_setfield(L, -2, "udp");
}
