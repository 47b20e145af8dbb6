/*
** sl.memory's Transaction values (what doTransaction receives), their
** locks, and Lua-defined memory slaves: Slave{doTransaction = function(self,
** tran) ... end} (or Rogue's name, _doTransaction). Such a slave runs on
** the main thread only: a transaction arriving from another thread is
** queued (at most TRAN_QUEUE of them and TRAN_QUEUE_BYTES of their data,
** setMaxQueueBytes; a transaction finding the queue full fails at once
** with the reason, counted as refused and logged) and handed to Lua by the
** loop. Rogue's table for
** asynchronous completion (_addTransaction, _getTransaction) is a Lua
** table per slave.
*/
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "lqueue.h"
#include "lsl.h"
#include "streamlua/log.h"
#include "streamlua/memory.h"

#define TRAN_MT "streamlua.memory.Transaction"
#define TRANLOCK_MT "streamlua.memory.TransactionLock"
#define TRAN_QUEUE 4096          /* transactions waiting for the loop */
#define TRAN_QUEUE_BYTES (4u << 20)   /* their data bytes, by default */

/* ---- transactions as Lua values ---- */

typedef struct tran_box {
  sl_transaction *t;
} tran_box;

void sl_memory_push_transaction(lua_State *L, sl_transaction *t) {
  tran_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = sl_transaction_ref(t);
  luaL_setmetatable(L, TRAN_MT);
}

sl_transaction *sl_memory_check_transaction(lua_State *L, int i) {
  return ((tran_box *)luaL_checkudata(L, i, TRAN_MT))->t;
}

#define push_tran sl_memory_push_transaction

static sl_transaction *check_tran(lua_State *L) {
  return sl_memory_check_transaction(L, 1);
}

static int tran_gc(lua_State *L) {
  tran_box *b = luaL_checkudata(L, 1, TRAN_MT);
  sl_transaction_unref(b->t);
  b->t = NULL;
  return 0;
}

static int tran_id(lua_State *L) {
  lua_pushinteger(L, sl_transaction_id(check_tran(L)));
  return 1;
}

static int tran_address(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_transaction_address(check_tran(L)));
  return 1;
}

static int tran_size(lua_State *L) {
  lua_pushinteger(L, sl_transaction_size(check_tran(L)));
  return 1;
}

static int tran_type(lua_State *L) {
  lua_pushinteger(L, sl_transaction_type(check_tran(L)));
  return 1;
}

static int tran_timeout(lua_State *L) {
  lua_pushnumber(L, (double)sl_transaction_timeout(check_tran(L)) / 1e6);
  return 1;
}

/* tran:getData() -> the size bytes of the buffer */
static int tran_get_data(lua_State *L) {
  sl_transaction *t = check_tran(L);
  lua_pushlstring(L, (const char *)sl_transaction_data(t), sl_transaction_size(t));
  return 1;
}

/* tran:setData(s [, offset]) copies s into the buffer from offset (0). */
static int tran_set_data(lua_State *L) {
  sl_transaction *t = check_tran(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  uint32_t size = sl_transaction_size(t);
  lua_Integer off = sl_opt_range(L, 3, 0, 0, size);
  if (n > (uint64_t)(size - off))
    return luaL_argerror(L, 2, lua_pushfstring(L, "%I bytes at offset %I do "
                         "not fit a transaction of %I bytes", (lua_Integer)n,
                         off, (lua_Integer)size));
  if (sl_transaction_expired(t)) return 0;   /* the waiter has gone */
  memcpy(sl_transaction_data(t) + off, s, n);
  return 0;
}

static int tran_done(lua_State *L) {
  lua_pushboolean(L, sl_transaction_done(check_tran(L)));
  return 1;
}

static int tran_error(lua_State *L) {
  sl_transaction *t = check_tran(L);
  const char *msg = luaL_optstring(L, 2, "error");
  lua_pushboolean(L, sl_transaction_error(t, "%s", msg));
  return 1;
}

static int tran_expired(lua_State *L) {
  lua_pushboolean(L, sl_transaction_expired(check_tran(L)));
  return 1;
}

/* ---- Rogue's transaction lock ---- */

typedef struct tranlock_box {
  sl_transaction *t;
  int held;
} tranlock_box;

/* tran:lock() -> a TransactionLock, held: while it is, the waiter's
** timeout does not complete the transaction (sl_transaction_hold). */
static int tran_lock(lua_State *L) {
  sl_transaction *t = check_tran(L);
  tranlock_box *lb = lua_newuserdatauv(L, sizeof *lb, 0);
  lb->t = NULL;
  lb->held = 0;
  luaL_setmetatable(L, TRANLOCK_MT);
  lb->t = sl_transaction_ref(t);
  sl_transaction_hold(t, 1);
  lb->held = 1;
  return 1;
}

static tranlock_box *check_tranlock(lua_State *L) {
  return luaL_checkudata(L, 1, TRANLOCK_MT);
}

static int tranlock_unlock(lua_State *L) {
  tranlock_box *lb = check_tranlock(L);
  if (lb->t != NULL && lb->held) {
    lb->held = 0;
    sl_transaction_hold(lb->t, 0);
  }
  return 0;
}

static int tranlock_lock(lua_State *L) {
  tranlock_box *lb = check_tranlock(L);
  if (lb->t != NULL && !lb->held) {
    sl_transaction_hold(lb->t, 1);
    lb->held = 1;
  }
  return 0;
}

static int tranlock_gc(lua_State *L) {
  tranlock_box *lb = check_tranlock(L);
  tranlock_unlock(L);
  sl_transaction_unref(lb->t);
  lb->t = NULL;
  return 0;
}

static int tranlock_tostring(lua_State *L) {
  tranlock_box *lb = check_tranlock(L);
  lua_pushfstring(L, "TransactionLock(%s)", lb->held ? "held" : "released");
  return 1;
}

static int tran_tostring(lua_State *L) {
  sl_transaction *t = check_tran(L);
  char s[128];
  snprintf(s, sizeof s, "Transaction(%u, %s %u bytes at 0x%08llx)",
           (unsigned)sl_transaction_id(t), sl_mem_type_name(sl_transaction_type(t)),
           (unsigned)sl_transaction_size(t),
           (unsigned long long)sl_transaction_address(t));
  lua_pushstring(L, s);
  return 1;
}

static const luaL_Reg tran_methods[] = {
    {"id", tran_id},           {"address", tran_address},
    {"size", tran_size},       {"type", tran_type},
    {"timeout", tran_timeout}, {"getData", tran_get_data},
    {"setData", tran_set_data}, {"done", tran_done},
    {"error", tran_error},     {"expired", tran_expired},
    {"lock", tran_lock},       {NULL, NULL}};

static const luaL_Reg tranlock_methods[] = {
    {"lock", tranlock_lock}, {"unlock", tranlock_unlock}, {NULL, NULL}};

static const luaL_Reg tranlock_metameth[] = {
    {"__index", NULL}, {"__gc", tranlock_gc}, {"__close", tranlock_unlock},
    {"__tostring", tranlock_tostring}, {NULL, NULL}};

static const luaL_Reg tran_metameth[] = {
    {"__index", NULL}, {"__gc", tran_gc}, {"__tostring", tran_tostring}, {NULL, NULL}};

/* ---- Lua-defined slaves ---- */

typedef struct lua_mem_slave {
  sl_object obj;
  sl_mem_slave slave;
  sl_state *st;
  int fields_ref;                /* registry ref to the callbacks table */
  sl_lua_queue q;                /* transactions from other threads */
  atomic_uint_least64_t refused; /* failed: the queue was full */
} lua_mem_slave;


/* doTransaction(self, tran) on the main thread; a Lua error fails the
** transaction with its message. */
static void call_lua(lua_mem_slave *ls, sl_transaction *t) {
  lua_State *L = sl_state_lua(ls->st);
  if (L == NULL) {
    sl_transaction_error(t, "memory.Slave: the Lua state is closed");
    return;
  }
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->fields_ref);
  if (lua_getfield(L, -1, "doTransaction") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_getfield(L, -1, "_doTransaction");   /* Rogue's name */
  }
  sl_lua_push_object(L, &ls->obj);
  push_tran(L, t);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    sl_transaction_error(t, "%s", msg != NULL ? msg : "error in doTransaction");
  }
  lua_settop(L, top);
}

/*
** A transaction that finds the queue full (in count or in bytes) fails at
** once with the reason, is counted and logged (the log limits repeats).
*/
static void refuse(lua_mem_slave *ls, sl_transaction *t) {
  sl_mailbox *mb = ls->q.mb;
  uint32_t queued = sl_mailbox_size(mb);
  uint64_t bytes = sl_mailbox_bytes(mb), max = sl_mailbox_max_bytes(mb);
  uint64_t n = atomic_fetch_add(&ls->refused, 1) + 1;
  char why[96];
  if (queued >= sl_mailbox_capacity(mb))
    snprintf(why, sizeof why, "%u transactions already queued", (unsigned)queued);
  else
    snprintf(why, sizeof why, "%llu of %llu queue bytes taken",
             (unsigned long long)bytes, (unsigned long long)max);
  sl_transaction_error(t, "memory.Slave: queue full (%s), transaction of %u "
                       "bytes refused", why, (unsigned)sl_transaction_size(t));
  sl_log_write(sl_log_get("memory.Slave"), SL_LOG_ERROR,
               "transaction of %u bytes refused: queue full (%s; %llu refused "
               "in all)", (unsigned)sl_transaction_size(t), why,
               (unsigned long long)n);
}

static void lua_mem_do(sl_mem_slave *s, sl_transaction *t) {
  lua_mem_slave *ls = (lua_mem_slave *)s->owner;
  if (sl_state_on_main(ls->st)) {
    call_lua(ls, t);
    return;
  }
  int rc = sl_mailbox_try_put(ls->q.mb, t);
  if (rc == SL_EBUSY) refuse(ls, t);
  else if (rc != SL_OK) sl_transaction_error(t, "memory.Slave: stopped");
}

static const sl_mem_slave_ops lua_mem_ops = {.do_transaction = lua_mem_do};

static void tran_hold(void *t) { sl_transaction_ref(t); }
static void tran_release(void *t) { sl_transaction_unref(t); }
static uint64_t tran_bytes(const void *t) { return sl_transaction_size(t); }
static const sl_mailbox_ops tran_items = {tran_hold, tran_release, tran_bytes};

static void tran_deliver(void *owner, int ctx, void *item) {
  (void)ctx;
  if (!sl_transaction_expired(item)) call_lua(owner, item);
  sl_transaction_unref(item);
}

static const sl_lua_queue_ops tran_queue_ops = {NULL, tran_deliver, NULL, NULL};

static void tran_fail(void *item) {
  sl_transaction_error(item, "memory.Slave: stopped");
  sl_transaction_unref(item);
}

/* Stop: refuse new transactions and fail the queued ones (off the main
** thread only those still in the mailbox: the rest is the loop's). */
static void lua_mem_stop(sl_object *obj) {
  lua_mem_slave *ls = (lua_mem_slave *)obj;
  sl_mailbox_close(ls->q.mb);
  if (sl_state_on_main(ls->st)) {
    sl_lua_queue_flush(&ls->q, tran_fail);
    return;
  }
  void *t;
  while (sl_mailbox_take(ls->q.mb, &t, 1) == 1) tran_fail(t);
}

static void lua_mem_destroy(sl_object *obj) {
  lua_mem_slave *ls = (lua_mem_slave *)obj;
  sl_state *st = ls->st;
  if (!sl_state_on_main(st) && st->L != NULL) {
    sl_state_defer_destroy(st, obj);   /* comes back here on main */
    return;
  }
  sl_lua_queue_flush(&ls->q, tran_fail);
  sl_lua_queue_fini(&ls->q);
  if (st->L != NULL) luaL_unref(st->L, LUA_REGISTRYINDEX, ls->fields_ref);
  free(ls);
  sl_state_unref(st);
}

static int is_lua_slave(sl_object *obj) {
  return obj->mem_slave != NULL && obj->mem_slave->ops == &lua_mem_ops;
}

int sl_memory_slave_fields(lua_State *L, sl_object *obj) {
  if (!is_lua_slave(obj)) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ((lua_mem_slave *)obj)->fields_ref);
  return 1;
}

uint32_t sl_memory_opt_access(lua_State *L, int i, uint32_t def) {
  return (uint32_t)sl_opt_range(L, i, def, 0, UINT32_MAX);
}

/* The queue of transactions from other threads, and what it refused. */
static size_t lua_mem_counters(sl_object *obj, sl_counter *out, size_t max) {
  lua_mem_slave *ls = (lua_mem_slave *)obj;
  sl_counter c[] = {{"queued", sl_mailbox_size(ls->q.mb)},
                    {"queueBytes", sl_mailbox_bytes(ls->q.mb)},
                    {"maxQueued", sl_mailbox_capacity(ls->q.mb)},
                    {"maxQueueBytes", sl_mailbox_max_bytes(ls->q.mb)},
                    {"refused", atomic_load(&ls->refused)}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

static const sl_class lua_mem_class = {.name = "memory.Slave",
                                       .destroy = lua_mem_destroy,
                                       .stop = lua_mem_stop,
                                       .counters = lua_mem_counters};

/* s:setMaxQueueBytes(bytes): the data bytes of the transactions queued
** from other threads (default 4 MiB); one that would pass it fails at
** once. A transaction larger than the limit passes alone. */
int sl_memory_slave_set_max_queue_bytes(lua_State *L) {
  sl_object *o = sl_lua_test_class(L, 1, &lua_mem_class);
  if (o == NULL) return sl_lua_type_error(L, 1, "memory.Slave");
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0, 2, "positive number of bytes expected");
  sl_mailbox_set_max_bytes(((lua_mem_slave *)o)->q.mb, (uint64_t)n);
  return 0;
}

/* Slave{doTransaction = f, ...} [, min, max]; Slave(min, max) is Rogue's
** base slave, which fails every transaction. */
int sl_memory_slave_new(lua_State *L) {
  sl_state *st = sl_state_get(L);
  int has_table = lua_istable(L, 1);
  uint32_t min = sl_memory_opt_access(L, has_table ? 2 : 1, 4);
  uint32_t max = sl_memory_opt_access(L, has_table ? 3 : 2, 0);
  if (has_table) {
    lua_getfield(L, 1, "doTransaction");
    lua_getfield(L, 1, "_doTransaction");
    if (!lua_isfunction(L, -1) && !lua_isfunction(L, -2))
      return luaL_argerror(L, 1, "table with a doTransaction (or _doTransaction) "
                           "function expected");
    lua_pop(L, 2);
  }
  lua_mem_slave *ls = calloc(1, sizeof *ls);
  if (ls == NULL) return luaL_error(L, "Slave: out of memory");
  if (sl_lua_queue_init(&ls->q, st, TRAN_QUEUE, &tran_items, &tran_queue_ops,
                        &ls->obj) != SL_OK) {
    free(ls);
    return luaL_error(L, "Slave: out of memory");
  }
  sl_mailbox_set_max_bytes(ls->q.mb, TRAN_QUEUE_BYTES);
  sl_object_init(&ls->obj, &lua_mem_class);
  sl_mem_slave_init(&ls->slave, has_table ? &lua_mem_ops : NULL, &ls->obj,
                    min, max);
  ls->st = sl_state_ref(st);
  if (has_table) lua_pushvalue(L, 1);
  else lua_newtable(L);
  ls->fields_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  sl_lua_push_object(L, &ls->obj);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->fields_ref);
  lua_setiuservalue(L, -2, 1);
  sl_object_unref(&ls->obj);
  return 1;
}

void sl_memory_open_transactions(lua_State *L) {
  sl_lua_createmeta(L, TRANLOCK_MT, tranlock_methods, tranlock_metameth);
  sl_lua_createmeta(L, TRAN_MT, tran_methods, tran_metameth);
  lua_pop(L, 2);
}
