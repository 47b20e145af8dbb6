/*
** sl.memory.TcpServer(addr, port) and sl.memory.TcpClient(addr, port):
** Rogue's memory TCP bridge (see streamlua/mem_bridge.h).
**
**   -- the process that owns the hardware-facing slave
**   local srv = sl.memory.TcpServer("*", 9000)
**   _ = srv >> sl.memory.Emulate(4, 4096)
**   -- the process that issues transactions
**   local m, cli = sl.memory.Master(), sl.memory.TcpClient("127.0.0.1", 9000)
**   _ = m >> cli
**   m:writeU32(0x100, 42); print(m:readU32(0x100))
**
** The server is a memory master (`srv >> slave`), the client a memory
** slave (`m >> cli`).
*/
#include <math.h>
#include <string.h>

#include "lsl.h"
#include "streamlua/mem_bridge.h"

#define SERVER_KIND "memory.TcpServer"
#define CLIENT_KIND "memory.TcpClient"

static sl_mem_bridge *check_bridge(lua_State *L, int i) {
  sl_mem_bridge *b = sl_mem_bridge_from_object(sl_lua_check_object(L, i));
  if (b == NULL) luaL_argerror(L, i, "memory TcpServer or TcpClient expected");
  return b;
}

static sl_mem_bridge *check_kind(lua_State *L, const char *kind) {
  sl_mem_bridge *b = check_bridge(L, 1);
  int server = strcmp(kind, SERVER_KIND) == 0;
  if (sl_mem_bridge_is_server(b) != server)
    luaL_argerror(L, 1, server ? "memory TcpServer expected" : "memory TcpClient expected");
  return b;
}

/* bridge:ready() -> true when both directions are handshaken */
static int mb_ready(lua_State *L) {
  lua_pushboolean(L, sl_mem_bridge_ready(check_bridge(L, 1)));
  return 1;
}

static int mb_get_port(lua_State *L) {
  lua_pushinteger(L, sl_mem_bridge_port(check_bridge(L, 1)));
  return 1;
}

/* Rogue's deprecated close(): the same as stop(). */
static int mb_close(lua_State *L) {
  sl_object_stop(sl_mem_bridge_object(check_bridge(L, 1)));
  return 0;
}

/* Rogue's _start(): nothing to do here (a client with waitReady probes). */
static int mb_start(lua_State *L) {
  check_bridge(L, 1);
  return 0;
}

static double check_seconds(lua_State *L, int i, double def) {
  double s = luaL_optnumber(L, i, def);
  luaL_argcheck(L, !isnan(s) && s >= 0 && s < 1e9, i,
                "non-negative number of seconds expected");
  return s;
}

/* cli:waitReady([timeout [, period]]) -> true once a probe was answered
** (Rogue's defaults: 10 s, probing every 0.1 s). Blocks. */
static int client_wait_ready(lua_State *L) {
  sl_mem_bridge *n = check_kind(L, CLIENT_KIND);
  double timeout = check_seconds(L, 2, 10.0), period = check_seconds(L, 3, 0.1);
  int ok = sl_mem_client_wait_ready(n, (uint64_t)(timeout * 1e6),
                                     (uint64_t)(period * 1e6));
  sl_lua_check_interrupt(L);
  lua_pushboolean(L, ok);
  return 1;
}

/* cli:pending() -> transactions waiting for a response */
static int client_pending(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_mem_bridge_pending(check_kind(L, CLIENT_KIND)));
  return 1;
}

static uint64_t check_bytes(lua_State *L, int i) {
  lua_Integer n = luaL_checkinteger(L, i);
  luaL_argcheck(L, n > 0, i, "positive number of bytes expected");
  return (uint64_t)n;
}

/* bridge:setMaxConnections(n): a server's cap on open connections. */
static int mb_set_max_connections(lua_State *L) {
  sl_mem_bridge *n = check_bridge(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2);
  luaL_argcheck(L, k >= 0 && k <= 0xFFFFFFFF, 2, "number of connections expected");
  sl_mem_bridge_set_max_connections(n, (uint32_t)k);
  return 0;
}

/* bridge:setHandshakeTimeout(seconds): 0 or nil: no limit. */
static int mb_set_handshake_timeout(lua_State *L) {
  sl_mem_bridge *n = check_bridge(L, 1);
  double s = check_seconds(L, 2, 0);
  int64_t us = (int64_t)(s * 1e6 + 0.5);
  sl_mem_bridge_set_handshake_timeout(n, s > 0 && us == 0 ? 1 : us);
  return 0;
}

static int mb_set_max_pending(lua_State *L) {
  sl_mem_bridge_set_max_pending(check_bridge(L, 1), check_bytes(L, 2));
  return 0;
}

static int server_set_max_requests(lua_State *L) {
  sl_mem_bridge *n = check_kind(L, SERVER_KIND);
  lua_Integer k = luaL_checkinteger(L, 2);
  luaL_argcheck(L, k > 0 && k <= 0xFFFFFFFF, 2, "positive number of requests expected");
  sl_mem_server_set_max_requests(n, (uint32_t)k);
  return 0;
}

static int server_set_max_request_bytes(lua_State *L) {
  sl_mem_bridge *n = check_kind(L, SERVER_KIND);
  sl_mem_server_set_max_request_bytes(n, check_bytes(L, 2));
  return 0;
}

static int server_set_max_response_bytes(lua_State *L) {
  sl_mem_bridge *n = check_kind(L, SERVER_KIND);
  sl_mem_server_set_max_response_bytes(n, check_bytes(L, 2));
  return 0;
}

static const luaL_Reg server_methods[] = {
    {"ready", mb_ready},
    {"getPort", mb_get_port},
    {"close", mb_close},
    {"_start", mb_start},
    {"setMaxConnections", mb_set_max_connections},
    {"setHandshakeTimeout", mb_set_handshake_timeout},
    {"setMaxPending", mb_set_max_pending},
    {"setMaxRequests", server_set_max_requests},
    {"setMaxRequestBytes", server_set_max_request_bytes},
    {"setMaxResponseBytes", server_set_max_response_bytes},
    {NULL, NULL}};

static const luaL_Reg client_methods[] = {
    {"ready", mb_ready},
    {"getPort", mb_get_port},
    {"close", mb_close},
    {"_start", mb_start},
    {"waitReady", client_wait_ready},
    {"pending", client_pending},
    {"setHandshakeTimeout", mb_set_handshake_timeout},
    {"setMaxPending", mb_set_max_pending},
    {NULL, NULL}};

static int bridge_new(lua_State *L, int server) {
  const char *fn = server ? "TcpServer" : "TcpClient";
  const char *addr = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  luaL_argcheck(L, port >= 0 && port <= 65534, 2, "port out of range [0, 65534]");
  luaL_argcheck(L, server || port > 0, 2, "a client needs the server's port");
  int wait_ready = !server && lua_toboolean(L, 3);
  sl_error err;
  sl_mem_bridge *n = server ? sl_mem_server_new(addr, (uint32_t)port, &err)
                            : sl_mem_client_new(addr, (uint32_t)port, &err);
  if (n == NULL) return luaL_error(L, "%s: %s", fn, err.msg);
  sl_lua_push_object(L, sl_mem_bridge_object(n));
  sl_object_unref(sl_mem_bridge_object(n));
  if (wait_ready && !sl_mem_client_wait_ready(n, 10000000u, 100000u))   /* Rogue's waitReady=true */
    return luaL_error(L, "%s: %s:%d did not answer within 10 s", fn, addr, (int)port);
  return 1;
}

static int server_new(lua_State *L) { return bridge_new(L, 1); }
static int client_new(lua_State *L) { return bridge_new(L, 0); }

static const sl_lua_class server_class = {SERVER_KIND, server_methods, server_new,
                                          SL_ROLE_MEMORY_MASTER};
static const sl_lua_class client_class = {CLIENT_KIND, client_methods, client_new,
                                          SL_ROLE_MEMORY_SLAVE};

static void open_class(lua_State *L, const sl_lua_class *cls, const char *field) {
  sl_lua_class_new(L, cls);
  lua_setfield(L, -2, field);
}

/* Adds TcpServer and TcpClient to sl.memory (the module table at the top). */
void sl_open_membridge(lua_State *L) {
  lua_getfield(L, -1, "memory");
  open_class(L, &server_class, "TcpServer");
  open_class(L, &client_class, "TcpClient");
  lua_pop(L, 1);
}
