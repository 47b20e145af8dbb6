/*
** streamlua_testing: a test-only Lua module (built with the tests, never
** installed). source(slave, count, size [, channel]) starts a C thread
** that sends `count` frames of `size` bytes straight into a slave, each
** starting with its 32-bit little-endian sequence number; it proves what
** a Lua-defined slave receives from a thread that is not the main one.
** src:stop() ends it early; src:sent() is how many it has sent.
**
** A raw peer for the bridges' specs: dial(port) -> fd (127.0.0.1, or nil),
** send(fd, bytes) -> true if all went, closed(fd, seconds) -> true once the
** other end closed (reading and dropping what comes), close(fd).
**
** relay(farPort, drop, reorder, seed): the lossy UDP relay (lrelay.c).
**
** writes(memSlave, count, size) starts a C thread that hands `count`
** Write transactions of `size` bytes to a memory slave one after another
** without waiting for any (as several bus masters would); w:done() once
** all are handed, w:results() -> a list of error texts ("" for success),
** or nil while any is pending.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "streamlua/lua.h"
#include "streamlua/memory.h"
#include "streamlua/streamlua.h"

#include "../../src/core/clock.h"

#define SOURCE_MT "streamlua_testing.Source"
#define WRITES_MT "streamlua_testing.Writes"

typedef struct source {
  pthread_t thread;
  int started, joined;
  sl_object *target;
  lua_Integer count;
  uint32_t size;
  uint8_t channel;
  sl_pool *pool;
  atomic_int done, stop;
  atomic_llong sent;
} source;

static void *source_main(void *arg) {
  source *src = arg;
  uint8_t buf[4];
  for (lua_Integer i = 0; i < src->count && !atomic_load(&src->stop); i++) {
    sl_frame *f = sl_pool_req_frame(src->pool, src->size);
    if (f == NULL) break;
    uint32_t seq = (uint32_t)i;
    for (int k = 0; k < 4; k++) buf[k] = (uint8_t)(seq >> (8 * k));
    sl_frame_set_payload(f, src->size);
    if (src->size >= 4) sl_frame_write(f, buf, 0, 4);
    sl_frame_set_channel(f, src->channel);
    sl_slave_accept(src->target->slave, f);
    sl_frame_unref(f);
    atomic_fetch_add(&src->sent, 1);
  }
  atomic_store(&src->done, 1);
  return NULL;
}

static void source_join(source *src) {
  if (src->started && !src->joined) {
    pthread_join(src->thread, NULL);
    src->joined = 1;
  }
}

static int l_source(lua_State *L) {
  sl_object *target = sl_lua_check_role(L, 1, SL_ROLE_STREAM_SLAVE);
  lua_Integer count = luaL_checkinteger(L, 2);
  lua_Integer size = luaL_checkinteger(L, 3);
  lua_Integer channel = luaL_optinteger(L, 4, 0);
  source *src = lua_newuserdatauv(L, sizeof *src, 1);
  memset(src, 0, sizeof *src);
  luaL_setmetatable(L, SOURCE_MT);
  lua_pushvalue(L, 1);               /* keep the slave's box alive */
  lua_setiuservalue(L, -2, 1);
  src->target = sl_object_ref(target);
  src->count = count;
  src->size = (uint32_t)size;
  src->channel = (uint8_t)channel;
  src->pool = sl_pool_new();
  if (pthread_create(&src->thread, NULL, source_main, src) != 0)
    return luaL_error(L, "source: cannot start a thread");
  src->started = 1;
  return 1;
}

static int l_done(lua_State *L) {
  source *src = luaL_checkudata(L, 1, SOURCE_MT);
  lua_pushboolean(L, atomic_load(&src->done));
  return 1;
}

static int l_stop(lua_State *L) {
  source *src = luaL_checkudata(L, 1, SOURCE_MT);
  atomic_store(&src->stop, 1);
  return 0;
}

static int l_sent(lua_State *L) {
  source *src = luaL_checkudata(L, 1, SOURCE_MT);
  lua_pushinteger(L, (lua_Integer)atomic_load(&src->sent));
  return 1;
}

/* Only call once the thread can finish (the mailbox is being served). */
static int l_join(lua_State *L) {
  source_join(luaL_checkudata(L, 1, SOURCE_MT));
  return 0;
}

static int l_gc(lua_State *L) {
  source *src = luaL_checkudata(L, 1, SOURCE_MT);
  source_join(src);
  if (src->target) sl_object_unref(src->target);
  src->target = NULL;
  if (src->pool) sl_pool_unref(src->pool);
  src->pool = NULL;
  return 0;
}

/* refcount(box): the object's reference count, for leak checks. */
static int l_refcount(lua_State *L) {
  lua_pushinteger(L, atomic_load(&sl_lua_check_object(L, 1)->refs));
  return 1;
}

static int l_dial(lua_State *L) {
  lua_Integer port = luaL_checkinteger(L, 1);
  luaL_argcheck(L, port > 0 && port < 65536, 1, "port expected");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    if (fd >= 0) close(fd);
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, fd);
  return 1;
}

static int l_send(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  lua_pushboolean(L, send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n);
  return 1;
}

static int l_closed(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  double s = luaL_checknumber(L, 2);
  double t0 = sl_clock_s();
  char buf[4096];
  for (;;) {
    double left = s - (sl_clock_s() - t0);
    if (left <= 0) break;
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, (int)(left * 1000) + 1) <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      lua_pushboolean(L, 1);
      return 1;
    }
  }
  lua_pushboolean(L, 0);
  return 1;
}

static int l_close(lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

typedef struct writes {
  pthread_t thread;
  int started;
  sl_object *target;
  lua_Integer count;
  uint32_t size;
  sl_transaction **t;
  atomic_int done;
} writes;

static void *writes_main(void *arg) {
  writes *w = arg;
  for (lua_Integer i = 0; i < w->count; i++) {
    w->t[i] = sl_transaction_new(0x1000 + (uint64_t)i * w->size, w->size,
                                 SL_MEM_WRITE, NULL, 30000000);
    if (w->t[i] != NULL) sl_mem_slave_do_transaction(w->target->mem_slave, w->t[i]);
  }
  atomic_store(&w->done, 1);
  return NULL;
}

static int l_writes(lua_State *L) {
  sl_object *target = sl_lua_check_role(L, 1, SL_ROLE_MEMORY_SLAVE);
  lua_Integer count = luaL_checkinteger(L, 2);
  lua_Integer size = luaL_checkinteger(L, 3);
  luaL_argcheck(L, count > 0 && count <= 100000, 2, "1 to 100000 expected");
  writes *w = lua_newuserdatauv(L, sizeof *w, 1);
  memset(w, 0, sizeof *w);
  luaL_setmetatable(L, WRITES_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  w->t = calloc((size_t)count, sizeof *w->t);
  if (w->t == NULL) return luaL_error(L, "writes: out of memory");
  w->target = sl_object_ref(target);
  w->count = count;
  w->size = (uint32_t)size;
  if (pthread_create(&w->thread, NULL, writes_main, w) != 0)
    return luaL_error(L, "writes: cannot start a thread");
  w->started = 1;
  return 1;
}

static int l_writes_done(lua_State *L) {
  writes *w = luaL_checkudata(L, 1, WRITES_MT);
  lua_pushboolean(L, atomic_load(&w->done));
  return 1;
}

static int l_writes_results(lua_State *L) {
  writes *w = luaL_checkudata(L, 1, WRITES_MT);
  if (!atomic_load(&w->done)) return 0;
  for (lua_Integer i = 0; i < w->count; i++)
    if (w->t[i] != NULL && !sl_transaction_is_done(w->t[i])) return 0;
  lua_createtable(L, (int)w->count, 0);
  for (lua_Integer i = 0; i < w->count; i++) {
    char e[256] = "out of memory";
    if (w->t[i] != NULL) sl_transaction_get_error(w->t[i], e, sizeof e);
    lua_pushstring(L, e);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_writes_gc(lua_State *L) {
  writes *w = luaL_checkudata(L, 1, WRITES_MT);
  if (w->started) pthread_join(w->thread, NULL);   /* never waits long */
  w->started = 0;
  for (lua_Integer i = 0; w->t != NULL && i < w->count; i++)
    sl_transaction_unref(w->t[i]);
  free(w->t);
  w->t = NULL;
  if (w->target) sl_object_unref(w->target);
  w->target = NULL;
  return 0;
}

void ts_open_relay(lua_State *L);   /* lrelay.c */

int luaopen_streamlua_testing(lua_State *L);
int luaopen_streamlua_testing(lua_State *L) {
  luaL_newmetatable(L, SOURCE_MT);
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  lua_pushcfunction(L, l_done);
  lua_setfield(L, -2, "done");
  lua_pushcfunction(L, l_join);
  lua_setfield(L, -2, "join");
  lua_pushcfunction(L, l_stop);
  lua_setfield(L, -2, "stop");
  lua_pushcfunction(L, l_sent);
  lua_setfield(L, -2, "sent");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  static const luaL_Reg writes_meth[] = {{"done", l_writes_done},
                                         {"results", l_writes_results},
                                         {NULL, NULL}};
  luaL_newmetatable(L, WRITES_MT);
  lua_pushcfunction(L, l_writes_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newlib(L, writes_meth);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_source);
  lua_setfield(L, -2, "source");
  lua_pushcfunction(L, l_refcount);
  lua_setfield(L, -2, "refcount");
  lua_pushcfunction(L, l_writes);
  lua_setfield(L, -2, "writes");
  static const luaL_Reg net[] = {{"dial", l_dial}, {"send", l_send},
                                 {"closed", l_closed}, {"close", l_close},
                                 {NULL, NULL}};
  luaL_setfuncs(L, net, 0);
  ts_open_relay(L);
  return 1;
}
