/*
** sl.stream.TcpServer(addr, port) and sl.stream.TcpClient(addr, port):
** Rogue's stream bridge (see streamlua/tcp_bridge.h).
*/
#include <math.h>

#include "lsl.h"
#include "streamlua/io.h"
#include "streamlua/tcp_bridge.h"

static sl_tcp_bridge *check_bridge(lua_State *L) {
  if (luaL_testudata(L, 1, "streamlua.TcpServer") == NULL &&
      luaL_testudata(L, 1, "streamlua.TcpClient") == NULL)
    luaL_argerror(L, 1, "TcpServer or TcpClient expected");
  return sl_tcp_bridge_from_object(sl_lua_check_object(L, 1));
}

/* bridge:ready() -> true if a peer takes frames now */
static int tcp_ready(lua_State *L) {
  lua_pushboolean(L, sl_tcp_bridge_ready(check_bridge(L)));
  return 1;
}

/* bridge:setTimeout(seconds): how long a sender waits for a peer or room
** before the frame is dropped; nil or a negative number: no bound. */
static int tcp_set_timeout(lua_State *L) {
  sl_tcp_bridge *obj = check_bridge(L);
  if (lua_isnoneornil(L, 2)) {
    sl_tcp_bridge_set_timeout(obj, -1);
    return 0;
  }
  lua_Number s = luaL_checknumber(L, 2);
  luaL_argcheck(L, !isnan(s) && s < 1e9, 2, "number of seconds expected");
  sl_tcp_bridge_set_timeout(obj, s < 0 ? -1 : (int64_t)(s * 1e6));
  return 0;
}

static int tcp_set_max_size(lua_State *L) {
  sl_tcp_bridge *obj = check_bridge(L);
  /* a message becomes one frame, whose size is 32 bits */
  lua_Integer n = sl_check_range(L, 2, 1, UINT32_MAX);
  sl_tcp_bridge_set_max_size(obj, (uint64_t)n);
  return 0;
}

/* bridge:setMaxConnections(n): a server's cap on open connections. */
static int tcp_set_max_connections(lua_State *L) {
  sl_tcp_bridge *obj = check_bridge(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0 && n <= 0xFFFFFFFF, 2, "number of connections expected");
  sl_tcp_bridge_set_max_connections(obj, (uint32_t)n);
  return 0;
}

/* bridge:setHandshakeTimeout(seconds): time for a new connection's
** greeting and READY; 0 or nil: no limit. */
static int tcp_set_handshake_timeout(lua_State *L) {
  sl_tcp_bridge *obj = check_bridge(L);
  lua_Number s = luaL_optnumber(L, 2, 0);
  luaL_argcheck(L, !isnan(s) && s >= 0 && s < 1e9, 2,
                "non-negative number of seconds expected");
  int64_t us = (int64_t)(s * 1e6 + 0.5);
  sl_tcp_bridge_set_handshake_timeout(obj, s > 0 && us == 0 ? 1 : us);
  return 0;
}

/* bridge:setMaxPending(bytes): bytes partly received messages may hold. */
static int tcp_set_max_pending(lua_State *L) {
  sl_tcp_bridge *obj = check_bridge(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0, 2, "positive number of bytes expected");
  sl_tcp_bridge_set_max_pending(obj, (uint64_t)n);
  return 0;
}

/* bridge:setMaxQueueBytes(bytes): the byte limit of the delivery queue
** and of each connection's send queue. */
static int tcp_set_max_queue_bytes(lua_State *L) {
  sl_tcp_bridge *obj = check_bridge(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0, 2, "positive number of bytes expected");
  sl_tcp_bridge_set_max_queue_bytes(obj, (uint64_t)n);
  return 0;
}

static int tcp_get_port(lua_State *L) {
  lua_pushinteger(L, sl_tcp_bridge_port(check_bridge(L)));
  return 1;
}

static int tcp_connections(lua_State *L) {
  lua_pushinteger(L, sl_tcp_bridge_connections(check_bridge(L)));
  return 1;
}

/* Rogue's deprecated close(): the same as stop(). */
static int tcp_close(lua_State *L) {
  sl_object_stop(sl_tcp_bridge_object(check_bridge(L)));
  return 0;
}

static const luaL_Reg tcp_meth[] = {
    {"ready", tcp_ready},
    {"setTimeout", tcp_set_timeout},
    {"setMaxSize", tcp_set_max_size},
    {"setMaxConnections", tcp_set_max_connections},
    {"setHandshakeTimeout", tcp_set_handshake_timeout},
    {"setMaxPending", tcp_set_max_pending},
    {"setMaxQueueBytes", tcp_set_max_queue_bytes},
    {"getPort", tcp_get_port},
    {"connections", tcp_connections},
    {"close", tcp_close},
    {NULL, NULL}};

static int tcp_new(lua_State *L, int server, const char *fn) {
  const char *addr = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  luaL_argcheck(L, port >= 0 && port <= 65534, 2, "port out of range [0, 65534]");
  luaL_argcheck(L, server || port > 0, 2, "a client needs the server's port");
  sl_error err;
  sl_object *obj = sl_tcp_bridge_object(sl_tcp_bridge_new(addr, (uint32_t)port, server, &err));
  if (obj == NULL) return luaL_error(L, "%s: %s", fn, err.msg);
  sl_lua_push_object(L, obj);
  sl_object_unref(obj);
  return 1;
}

static int tcp_server_new(lua_State *L) { return tcp_new(L, 1, "TcpServer"); }
static int tcp_client_new(lua_State *L) { return tcp_new(L, 0, "TcpClient"); }

static const sl_lua_class server_class = {"TcpServer", tcp_meth, tcp_server_new,
                                          SL_ROLE_STREAM};
static const sl_lua_class client_class = {"TcpClient", tcp_meth, tcp_client_new,
                                          SL_ROLE_STREAM};

/* sl.setIoThreads(n): network I/O threads for the bridges started from now
** on (1 to 8; 1 by default). Only before the first bridge starts, or once
** every bridge is gone. */
static int io_set_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 8, 1, "1 to 8 threads expected");
  if (sl_io_set_threads((int)n) != 0)
    return luaL_error(L, "setIoThreads: the I/O threads already run "
                      "(set them before the first bridge)");
  return 0;
}

/* sl.ioThreads() -> I/O threads running now (0 when no bridge runs) */
static int io_threads(lua_State *L) {
  lua_pushinteger(L, sl_io_thread_count());
  return 1;
}

/* sl.setTcpDeliveryThreads(n): the threads that hand every TCP bridge's
** received frames downstream (1 to 16), from now on. */
static int tcp_set_delivery_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 16, 1, "1 to 16 threads expected");
  sl_tcp_set_delivery_threads((int)n);
  return 0;
}

/* sl.tcpDeliveryThreads() -> the number set (or the default) */
static int tcp_delivery_threads(lua_State *L) {
  lua_pushinteger(L, sl_tcp_delivery_threads());
  return 1;
}

/* Sets setIoThreads, ioThreads, setTcpDeliveryThreads and
** tcpDeliveryThreads in the module table at the top. */
void sl_open_io(lua_State *L) {
  lua_pushcfunction(L, io_set_threads);
  lua_setfield(L, -2, "setIoThreads");
  lua_pushcfunction(L, io_threads);
  lua_setfield(L, -2, "ioThreads");
  lua_pushcfunction(L, tcp_set_delivery_threads);
  lua_setfield(L, -2, "setTcpDeliveryThreads");
  lua_pushcfunction(L, tcp_delivery_threads);
  lua_setfield(L, -2, "tcpDeliveryThreads");
}

void sl_open_tcp(lua_State *L) {
  sl_lua_class_new(L, &server_class);
  lua_setfield(L, -2, "TcpServer");
  sl_lua_class_new(L, &client_class);
  lua_setfield(L, -2, "TcpClient");
}
