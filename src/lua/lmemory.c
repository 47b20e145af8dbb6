/*
** sl.memory: the register bus from Lua. Master, Hub, Emulate, and
** Lua-defined slaves (Slave{doTransaction = function(self, tran) ... end},
** in lmemslave.c).
**
**   local m = sl.memory.Master()
**   _ = m >> sl.memory.Hub(0x1000) >> sl.memory.Emulate(4, 4)
**   m:writeU32(0x10, 42); print(m:readU32(0x10))
**
** A Lua-defined slave runs on the main thread only. A master called from
** Lua reaches it directly (synchronously); a transaction that reaches it
** from another thread is queued and handed to Lua by the loop. A blocking
** call (read, write...) keeps serving the loop while it waits, so a Lua
** slave that completes later (from a timer) is not a deadlock; inside a
** callback the loop cannot be served, and the call then only waits.
*/
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "../core/clock.h"
#include "lsl.h"
#include "streamlua/memory.h"

#define REQ_MT "streamlua.memory.Request"
#define LOGNAME "memory.Master"

/* ---- nodes from Lua values ---- */

static sl_object *check_master_node(lua_State *L, int i) {
  return sl_lua_check_role(L, i, SL_ROLE_MEMORY_MASTER);
}

static sl_object *check_slave_node(lua_State *L, int i) {
  return sl_lua_check_role(L, i, SL_ROLE_MEMORY_SLAVE);
}

/* ---- blocking calls ---- */

static uint64_t check_addr(lua_State *L, int i) {
  lua_Integer a = luaL_checkinteger(L, i);
  luaL_argcheck(L, a >= 0, i, "address must not be negative");
  return (uint64_t)a;
}

/* Makes the transaction with this Lua thread as the innermost caller, so
** a Lua slave reached synchronously runs here. */
static sl_transaction *request(lua_State *L, sl_mem_master *m, uint64_t addr,
                               uint32_t size, const void *data, uint32_t type,
                               void (*before)(sl_transaction *, void *),
                               void *arg) {
  sl_state *st = sl_state_get(L);
  lua_State *outer = st->cur;
  st->cur = L;
  sl_transaction *t = sl_mem_master_request(m, addr, size, data, type, before, arg);
  st->cur = outer;
  return t;
}

/* Pushes "<fn>: <size> bytes at 0x<addr>: " (the start of every error). */
static void push_where(lua_State *L, const char *fn, sl_transaction *t) {
  char where[96];
  snprintf(where, sizeof where, "%s: %u bytes at 0x%08llx: ", fn,
           (unsigned)sl_transaction_size(t),
           (unsigned long long)sl_transaction_address(t));
  lua_pushstring(L, where);
}

/* Pushes the error text of a failed transaction, with where. */
static void push_tran_error(lua_State *L, const char *fn, sl_transaction *t) {
  char e[1024];
  sl_transaction_get_error(t, e, sizeof e);
  push_where(L, fn, t);
  lua_pushstring(L, e);
  lua_concat(L, 2);
}

/* A round trip over a bridge takes tens of microseconds: a blocking call
** first lets its slave bring the answer to this thread that long. */
#define SERVE_HELP_US 80

int sl_memory_serve(lua_State *L, sl_transaction *t, int (*ready)(void *arg),
                    void *arg) {
  sl_state *st = sl_state_get(L);
  sl_transaction_help(t, SERVE_HELP_US);   /* its slave may bring the answer here */
  for (;;) {
    int done = sl_transaction_check_deadline(t);
    if (done && (ready == NULL || ready(arg))) return SL_OK;
    if (sl_wait_cancelled() && sl_transaction_give_up(t, "interrupted"))
      return SL_ECANCELED;
    if (st->in_loop || !sl_state_on_main(st)) {
      if (done) sched_yield();   /* completed: its hook is finishing */
      else sl_transaction_wait_ms(t, 1);
    } else {
      sl_lua_serve_once(L, 1);
    }
  }
}

/* Waits for t, serving the loop when it can; raises on failure (t is
** released first). */
static void wait_or_raise(lua_State *L, const char *fn, sl_transaction *t) {
  if (sl_memory_serve(L, t, NULL, NULL) == SL_ECANCELED) {
    sl_transaction_unref(t);
    sl_lua_interrupted(L);
  }
  if (sl_transaction_failed(t)) {
    push_tran_error(L, fn, t);
    sl_transaction_unref(t);
    lua_error(L);
  }
}

/* The completion of a blocking call's transaction ends the loop's wait at
** once, from whatever thread completes it (a reference on the state keeps
** it alive until then; every transaction completes, by its slave or by its
** deadline). */
static void wake_loop(sl_transaction *t, void *arg) {
  (void)t;
  sl_state *st = arg;
  event_active(st->wake, EV_READ, 0);
  sl_state_unref(st);
}

static void wake_loop_when_done(sl_transaction *t, void *arg) {
  sl_transaction_on_done(t, wake_loop, sl_state_ref(arg));
}

sl_transaction *sl_memory_request(lua_State *L, sl_mem_master *m, uint64_t addr,
                                  uint32_t size, const void *data, uint32_t type) {
  return request(L, m, addr, size, data, type, wake_loop_when_done, sl_state_get(L));
}

static sl_transaction *blocking(lua_State *L, const char *fn, uint64_t addr,
                                uint32_t size, const void *data, uint32_t type) {
  sl_mem_master *m = check_master_node(L, 1)->mem_master;
  sl_transaction *t = request(L, m, addr, size, data, type, wake_loop_when_done,
                              sl_state_get(L));
  if (t == NULL) luaL_error(L, "%s: out of memory", fn);
  wait_or_raise(L, fn, t);
  return t;
}

static uint32_t check_size(lua_State *L, int i) {
  return (uint32_t)sl_check_range(L, i, 0, UINT32_MAX);
}

/* m:read(addr, size) -> string */
static int master_read(lua_State *L) {
  sl_transaction *t = blocking(L, "read", check_addr(L, 2), check_size(L, 3),
                               NULL, SL_MEM_READ);
  lua_pushlstring(L, (const char *)sl_transaction_data(t), sl_transaction_size(t));
  sl_transaction_unref(t);
  return 1;
}

static int write_type(lua_State *L, const char *fn, uint32_t type) {
  size_t n;
  uint64_t addr = check_addr(L, 2);
  const char *s = luaL_checklstring(L, 3, &n);
  luaL_argcheck(L, n <= UINT32_MAX, 3, "data too long");
  sl_transaction_unref(blocking(L, fn, addr, (uint32_t)n, s, type));
  return 0;
}

/* m:write(addr, data), m:post(addr, data) */
static int master_write(lua_State *L) { return write_type(L, "write", SL_MEM_WRITE); }
static int master_post(lua_State *L) { return write_type(L, "post", SL_MEM_POST); }

/* m:verify(addr, data) reads #data bytes back; raises if they differ. */
static int master_verify(lua_State *L) {
  size_t n;
  uint64_t addr = check_addr(L, 2);
  const char *s = luaL_checklstring(L, 3, &n);
  luaL_argcheck(L, n <= UINT32_MAX, 3, "data too long");
  sl_transaction *t = blocking(L, "verify", addr, (uint32_t)n, NULL, SL_MEM_VERIFY);
  const uint8_t *got = sl_transaction_data(t);
  for (size_t i = 0; i < n; i++) {
    if (got[i] != (uint8_t)s[i]) {
      char what[96];
      snprintf(what, sizeof what, "mismatch at byte %zu: read 0x%02X, expected 0x%02X",
               i, (unsigned)got[i], (unsigned)(uint8_t)s[i]);
      push_where(L, "verify", t);
      lua_pushstring(L, what);
      lua_concat(L, 2);
      sl_transaction_unref(t);
      return lua_error(L);
    }
  }
  sl_transaction_unref(t);
  return 0;
}

/* m:readU8/16/32/64(addr) -> integer (little-endian) */
static int read_uint(lua_State *L, const char *fn, uint32_t n) {
  sl_transaction *t = blocking(L, fn, check_addr(L, 2), n, NULL, SL_MEM_READ);
  const uint8_t *d = sl_transaction_data(t);
  uint64_t v = 0;
  for (uint32_t i = 0; i < n; i++) v |= (uint64_t)d[i] << (8 * i);
  sl_transaction_unref(t);
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

/* m:writeU8/16/32/64(addr, v): v must fit (U64 takes any integer). */
static int write_uint(lua_State *L, const char *fn, uint32_t n) {
  uint64_t addr = check_addr(L, 2);
  lua_Integer v = luaL_checkinteger(L, 3);
  if (n < 8) luaL_argcheck(L, v >= 0 && (uint64_t)v < (1ull << (8 * n)), 3,
                           "value out of range");
  uint8_t d[8];
  for (uint32_t i = 0; i < n; i++) d[i] = (uint8_t)((uint64_t)v >> (8 * i));
  sl_transaction_unref(blocking(L, fn, addr, n, d, SL_MEM_WRITE));
  return 0;
}

static int master_read_u8(lua_State *L) { return read_uint(L, "readU8", 1); }
static int master_read_u16(lua_State *L) { return read_uint(L, "readU16", 2); }
static int master_read_u32(lua_State *L) { return read_uint(L, "readU32", 4); }
static int master_read_u64(lua_State *L) { return read_uint(L, "readU64", 8); }
static int master_write_u8(lua_State *L) { return write_uint(L, "writeU8", 1); }
static int master_write_u16(lua_State *L) { return write_uint(L, "writeU16", 2); }
static int master_write_u32(lua_State *L) { return write_uint(L, "writeU32", 4); }
static int master_write_u64(lua_State *L) { return write_uint(L, "writeU64", 8); }

/* ---- non-blocking requests ---- */

/* One reqTransaction in flight. Two references: the Lua box (its __gc)
** and the transaction's completion hook. */
typedef struct mem_req {
  atomic_int refs;
  pthread_mutex_t mutex;         /* guards ev against the hook */
  struct event *ev;              /* NULL once the box is collected */
  sl_transaction *t;
  sl_state *st;
  int pin;                       /* registry ref to the box until delivered */
} mem_req;

static void req_unref(mem_req *r) {
  if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1) return;
  sl_transaction_unref(r->t);
  pthread_mutex_destroy(&r->mutex);
  sl_state_unref(r->st);
  free(r);
}

/* The completion hook: any thread. */
static void req_on_done(sl_transaction *t, void *arg) {
  (void)t;
  mem_req *r = arg;
  pthread_mutex_lock(&r->mutex);
  /* EV_READ, not EV_TIMEOUT: event_add would cancel a timeout activation */
  if (r->ev != NULL) event_active(r->ev, EV_READ, 0);
  pthread_mutex_unlock(&r->mutex);
  req_unref(r);
}

static void req_before(sl_transaction *t, void *arg) {
  mem_req *r = arg;
  r->t = sl_transaction_ref(t);
  atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
  sl_transaction_on_done(t, req_on_done, r);
}

/* On the main thread: the deadline check, or delivery to the callback. */
static void req_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mem_req *r = arg;
  lua_State *L = r->st->L;
  if (L == NULL || r->pin == LUA_NOREF) return;
  if (!sl_transaction_check_deadline(r->t)) {
    struct timeval tv = {0, 10000};
    event_add(r->ev, &tv);   /* not late yet: look again soon */
    return;
  }
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->pin);   /* keeps r alive meanwhile */
  luaL_unref(L, LUA_REGISTRYINDEX, r->pin);
  r->pin = LUA_NOREF;
  event_del(r->ev);
  lua_getiuservalue(L, -1, 1);                 /* the callback */
  sl_transaction *t = r->t;
  if (sl_transaction_failed(t)) {
    const char *fn = sl_mem_type_name(sl_transaction_type(t));
    push_tran_error(L, fn, t);
  } else {
    lua_pushnil(L);
  }
  lua_pushlstring(L, (const char *)sl_transaction_data(t), sl_transaction_size(t));
  sl_pcall_log(L, 2, LOGNAME);
  lua_settop(L, top);
}

static int req_gc(lua_State *L) {
  mem_req **rp = luaL_checkudata(L, 1, REQ_MT);
  mem_req *r = *rp;
  if (r == NULL) return 0;
  *rp = NULL;
  pthread_mutex_lock(&r->mutex);
  struct event *ev = r->ev;
  r->ev = NULL;
  pthread_mutex_unlock(&r->mutex);
  if (ev != NULL) event_free(ev);
  req_unref(r);
  return 0;
}

uint32_t sl_memory_check_type(lua_State *L, int i) {
  lua_Integer v = luaL_checkinteger(L, i);
  luaL_argcheck(L, v >= SL_MEM_READ && v <= SL_MEM_VERIFY, i,
                "transaction type expected (Read, Write, Post or Verify)");
  return (uint32_t)v;
}

/* m:reqTransaction(addr, size_or_data, type, callback) -> id; later, on
** the main thread, callback(errorOrNil, data). */
static int master_req_transaction(lua_State *L) {
  sl_mem_master *m = check_master_node(L, 1)->mem_master;
  uint64_t addr = check_addr(L, 2);
  uint32_t type = sl_memory_check_type(L, 4);
  luaL_checktype(L, 5, LUA_TFUNCTION);
  size_t n = 0;
  const char *data = NULL;
  if (lua_type(L, 3) == LUA_TSTRING) {
    data = lua_tolstring(L, 3, &n);
    luaL_argcheck(L, n <= UINT32_MAX, 3, "data too long");
  } else {
    n = check_size(L, 3);
  }
  sl_state *st = sl_state_get(L);
  mem_req **rp = lua_newuserdatauv(L, sizeof *rp, 1);
  *rp = NULL;
  luaL_setmetatable(L, REQ_MT);
  lua_pushvalue(L, 5);
  lua_setiuservalue(L, -2, 1);
  mem_req *r = calloc(1, sizeof *r);
  if (r == NULL) return luaL_error(L, "reqTransaction: out of memory");
  if (pthread_mutex_init(&r->mutex, NULL) != 0) {
    free(r);
    return luaL_error(L, "reqTransaction: out of memory");
  }
  atomic_init(&r->refs, 1);
  r->st = sl_state_ref(st);
  r->pin = LUA_NOREF;
  *rp = r;
  r->ev = event_new(st->base, -1, 0, req_cb, r);
  if (r->ev == NULL) return luaL_error(L, "reqTransaction: out of memory");
  lua_pushvalue(L, -1);
  r->pin = luaL_ref(L, LUA_REGISTRYINDEX);
  sl_transaction *t = request(L, m, addr, (uint32_t)n,
                              sl_mem_type_is_write(type) ? data : NULL, type,
                              req_before, r);
  if (t == NULL) {
    luaL_unref(L, LUA_REGISTRYINDEX, r->pin);
    r->pin = LUA_NOREF;
    return luaL_error(L, "reqTransaction: out of memory");
  }
  uint64_t us = sl_transaction_timeout(t) + 1000;
  struct timeval tv = sl_tv_from_us((int64_t)us);
  event_add(r->ev, &tv);
  lua_pushinteger(L, sl_transaction_id(t));
  sl_transaction_unref(t);
  return 1;
}

/* ---- the rest of the master role ---- */

/* m:setSlave(s): s through its _getMemorySlave hook; nil disconnects. */
static int master_set_slave(lua_State *L) {
  sl_mem_master *m = check_master_node(L, 1)->mem_master;
  sl_lua_unwrap(L, 2, "_getMemorySlave");
  if (lua_isnil(L, 2)) {
    sl_mem_master_set_slave(m, NULL);
    return 0;
  }
  sl_mem_master_set_slave(m, check_slave_node(L, 2));
  return 0;
}

static int master_get_slave(lua_State *L) {
  sl_object *o = sl_mem_master_get_slave(check_master_node(L, 1)->mem_master);
  sl_lua_push_object(L, o);
  sl_object_unref(o);
  return 1;
}

/* m:setTimeout(us), Rogue's unit: microseconds; 0 keeps the one set
** (Rogue). A fraction rounds to the nearest microsecond, at least 1. */
static int master_set_timeout(lua_State *L) {
  sl_mem_master *m = check_master_node(L, 1)->mem_master;
  double us = luaL_checknumber(L, 2);
  luaL_argcheck(L, us >= 0 && us <= 1e15, 2, "non-negative number of microseconds expected");
  uint64_t v = (uint64_t)(us + 0.5);
  sl_mem_master_set_timeout(m, us > 0 && v == 0 ? 1 : v);
  return 0;
}

/* m:getTimeout() -> microseconds, as setTimeout takes them */
static int master_get_timeout(lua_State *L) {
  sl_mem_master *m = check_master_node(L, 1)->mem_master;
  lua_pushinteger(L, (lua_Integer)sl_mem_master_get_timeout(m));
  return 1;
}

static int with_slave(lua_State *L, uint32_t (*fn)(sl_mem_slave *)) {
  sl_mem_master *m = check_master_node(L, 1)->mem_master;
  sl_object *o = sl_mem_master_get_slave(m);
  lua_pushinteger(L, fn(o != NULL ? o->mem_slave : NULL));
  sl_object_unref(o);
  return 1;
}

static int master_req_min_access(lua_State *L) {
  return with_slave(L, sl_mem_slave_min_access);
}

static int master_req_max_access(lua_State *L) {
  return with_slave(L, sl_mem_slave_max_access);
}

const luaL_Reg sl_mem_master_methods[] = {
    {"read", master_read},
    {"write", master_write},
    {"post", master_post},
    {"verify", master_verify},
    {"readU8", master_read_u8},
    {"readU16", master_read_u16},
    {"readU32", master_read_u32},
    {"readU64", master_read_u64},
    {"writeU8", master_write_u8},
    {"writeU16", master_write_u16},
    {"writeU32", master_write_u32},
    {"writeU64", master_write_u64},
    {"reqTransaction", master_req_transaction},
    {"setSlave", master_set_slave},
    {"_setSlave", master_set_slave},
    {"getSlave", master_get_slave},
    {"_getSlave", master_get_slave},
    {"setTimeout", master_set_timeout},
    {"_setTimeout", master_set_timeout},
    {"getTimeout", master_get_timeout},
    {"reqMinAccess", master_req_min_access},
    {"_reqMinAccess", master_req_min_access},
    {"reqMaxAccess", master_req_max_access},
    {"_reqMaxAccess", master_req_max_access},
    {NULL, NULL}};

/* ---- the slave role, Hub and Emulate ---- */

static int slave_min_access(lua_State *L) {
  lua_pushinteger(L, sl_mem_slave_min_access(check_slave_node(L, 1)->mem_slave));
  return 1;
}

static int slave_max_access(lua_State *L) {
  lua_pushinteger(L, sl_mem_slave_max_access(check_slave_node(L, 1)->mem_slave));
  return 1;
}

const luaL_Reg sl_mem_slave_methods[] = {
    {"doMinAccess", slave_min_access},
    {"_doMinAccess", slave_min_access},
    {"doMaxAccess", slave_max_access},
    {"_doMaxAccess", slave_max_access},
    {NULL, NULL}};

static int hub_get_offset(lua_State *L) {
  sl_hub *h = sl_hub_from_object(check_slave_node(L, 1));
  luaL_argcheck(L, h != NULL, 1, "Hub expected");
  lua_pushinteger(L, (lua_Integer)sl_hub_get_offset(h));
  return 1;
}

static const luaL_Reg hub_methods[] = {{"getOffset", hub_get_offset}, {NULL, NULL}};

static int emulate_pages(lua_State *L) {
  sl_emulate *e = sl_emulate_from_object(check_slave_node(L, 1));
  luaL_argcheck(L, e != NULL, 1, "Emulate expected");
  lua_pushinteger(L, (lua_Integer)sl_emulate_pages(e));
  return 1;
}

static const luaL_Reg emulate_methods[] = {{"pages", emulate_pages}, {NULL, NULL}};

static int push_new(lua_State *L, sl_object *n, const char *fn, sl_error *err) {
  if (n == NULL) return luaL_error(L, "%s: %s", fn, err->msg);
  sl_lua_push_object(L, n);
  sl_object_unref(n);
  return 1;
}

static int master_new(lua_State *L) {
  sl_error err;
  return push_new(L, sl_mem_master_node_new(&err), "Master", &err);
}

/* Hub([offset [, min [, max]]]) */
static int hub_new(lua_State *L) {
  lua_Integer off = luaL_optinteger(L, 1, 0);
  luaL_argcheck(L, off >= 0, 1, "offset must not be negative");
  sl_error err;
  sl_hub *h = sl_hub_new((uint64_t)off, sl_memory_opt_access(L, 2, 0),
                         sl_memory_opt_access(L, 3, 0), &err);
  return push_new(L, sl_hub_object(h), "Hub", &err);
}

/* Emulate([min [, max]]) */
static int emulate_new(lua_State *L) {
  sl_error err;
  sl_emulate *e = sl_emulate_new(sl_memory_opt_access(L, 1, 4),
                                 sl_memory_opt_access(L, 2, 0), &err);
  return push_new(L, sl_emulate_object(e), "Emulate", &err);
}

/* sl.busConnect(master, slave) -> slave: pyrogue's, each end through its
** _getMemoryMaster/_getMemorySlave hook; always a memory link. */
static int bus_connect(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  sl_lua_unwrap(L, 1, "_getMemoryMaster");
  sl_lua_unwrap(L, 2, "_getMemorySlave");
  sl_mem_master_set_slave(check_master_node(L, 1)->mem_master, check_slave_node(L, 2));
  return 1;
}

static const sl_lua_class master_class = {"memory.Master", NULL, master_new,
                                          SL_ROLE_MEMORY_MASTER};
static const sl_lua_class hub_class = {"memory.Hub", hub_methods, hub_new,
                                       SL_ROLE_MEMORY};
static const sl_lua_class emulate_class = {"memory.Emulate", emulate_methods,
                                           emulate_new, SL_ROLE_MEMORY_SLAVE};
static const sl_lua_class slave_class = {"memory.Slave", sl_memory_slave_methods,
                                         sl_memory_slave_new,
                                         SL_ROLE_MEMORY_SLAVE};

static void open_class(lua_State *L, const sl_lua_class *cls, const char *field) {
  sl_lua_class_new(L, cls);
  lua_setfield(L, -2, field);
}

void sl_open_memory(lua_State *L) {
  sl_memory_open_transactions(L);
  luaL_newmetatable(L, REQ_MT);
  lua_pushcfunction(L, req_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  lua_newtable(L);                                   /* sl.memory */
  open_class(L, &master_class, "Master");
  open_class(L, &hub_class, "Hub");
  open_class(L, &emulate_class, "Emulate");
  open_class(L, &slave_class, "Slave");
  static const struct { const char *name; int v; } consts[] = {
      {"Read", SL_MEM_READ}, {"Write", SL_MEM_WRITE},
      {"Post", SL_MEM_POST}, {"Verify", SL_MEM_VERIFY}};
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    lua_pushinteger(L, consts[i].v);
    lua_setfield(L, -2, consts[i].name);
  }
  lua_pushcfunction(L, bus_connect);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "busConnect");
  lua_setfield(L, -3, "busConnect");                 /* sl.busConnect too */
  sl_open_block(L);
  lua_setfield(L, -2, "memory");
}
