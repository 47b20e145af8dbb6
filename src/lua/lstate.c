/*
** The per-state record: the main-thread event loop, the thread that owns
** Lua, and work that other threads hand to the main thread.
*/
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "lsl.h"
#include "streamlua/wait.h"

const char sl_state_key = 0;

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;

static void evthread_setup(void) {
  evthread_use_pthreads();
}

/*
** The stock interpreter answers Ctrl-C by setting a count hook (every
** instruction) that raises at the next one; streamlua's host does the
** same. A call blocked in C never reaches that instruction, so its waits
** look for the hook (wait.h's probe) and give up; the hook is taken off,
** since the call raises "interrupted" itself.
*/
static int take_interrupt_hook(lua_State *L) {
  const int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT;  /* (+LINE) */
  if (L == NULL || lua_gethook(L) == NULL ||
      (lua_gethookmask(L) & ~LUA_MASKLINE) != mask || lua_gethookcount(L) != 1)
    return 0;
  lua_sethook(L, NULL, 0, 0);
  return 1;
}

static int interrupt_probe(void *arg) {
  sl_state *st = arg;
  return take_interrupt_hook(st->L);
}

/* A wait that gave up on the interpreter's hook raised the interrupt (the
** probe), so the flag alone tells. */
void sl_lua_check_interrupt(lua_State *L) {
  if (sl_wait_interrupted()) sl_lua_interrupted(L);
}

int sl_lua_interrupted(lua_State *L) {
  take_interrupt_hook(sl_state_get(L)->L);
  sl_wait_take_interrupt();
  return luaL_error(L, "interrupted");
}

static void state_wake_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  sl_state_run_deferred(arg);
}

sl_state *sl_state_ref(sl_state *st) {
  atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
  return st;
}

void sl_state_unref(sl_state *st) {
  if (atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) != 1)
    return;
  event_free(st->wake);
  event_base_free(st->base);
  pthread_mutex_destroy(&st->mutex);
  free(st->dead);
  free(st);
}

int sl_state_on_main(const sl_state *st) {
  return pthread_equal(pthread_self(), st->main_thread);
}

lua_State *sl_state_lua(sl_state *st) {
  return st->cur != NULL ? st->cur : st->L;
}

/*
** Objects that call into Lua must be freed where Lua lives. The last
** reference may be dropped on any thread; off the main thread the object
** is queued and the loop frees it.
*/
void sl_state_defer_destroy(sl_state *st, sl_object *obj) {
  pthread_mutex_lock(&st->mutex);
  if (st->ndead == st->capdead) {
    size_t cap = st->capdead ? st->capdead * 2 : 16;
    sl_object **nd = realloc(st->dead, cap * sizeof *nd);
    if (nd == NULL) {   /* cannot queue: leak rather than touch Lua here */
      pthread_mutex_unlock(&st->mutex);
      return;
    }
    st->dead = nd;
    st->capdead = cap;
  }
  st->dead[st->ndead++] = obj;
  pthread_mutex_unlock(&st->mutex);
  event_active(st->wake, EV_READ, 0);
}

void sl_state_run_deferred(sl_state *st) {
  for (;;) {
    pthread_mutex_lock(&st->mutex);
    sl_object *obj = st->ndead > 0 ? st->dead[--st->ndead] : NULL;
    pthread_mutex_unlock(&st->mutex);
    if (obj == NULL) break;
    obj->cls->destroy(obj);   /* on the main thread now: frees for real */
  }
}

static int state_gc(lua_State *L) {
  sl_state **box = lua_touserdata(L, 1);
  sl_state *st = *box;
  if (st == NULL) return 0;
  *box = NULL;
  sl_state_run_deferred(st);
  sl_wait_set_hook(NULL, NULL);
  sl_wait_interruptible(0, NULL, NULL);
  st->L = NULL;
  st->cur = NULL;
  sl_state_unref(st);
  return 0;
}

/* Creates the record on first use and keeps it in the registry. */
sl_state *sl_state_get(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_state_key) == LUA_TUSERDATA) {
    sl_state *st = *(sl_state **)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (st != NULL) return st;
    luaL_error(L, "streamlua: the module's state is closed");
  }
  lua_pop(L, 1);
  pthread_once(&evthread_once, evthread_setup);
  sl_state **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  lua_newtable(L);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  sl_state *st = calloc(1, sizeof *st);
  if (st == NULL) luaL_error(L, "streamlua: out of memory");
  atomic_init(&st->refs, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  st->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  st->main_thread = pthread_self();
  sl_wait_interruptible(1, interrupt_probe, st);   /* Ctrl-C ends its waits */
  pthread_mutex_init(&st->mutex, NULL);
  st->base = event_base_new();
  st->wake = st->base ? event_new(st->base, -1, 0, state_wake_cb, st) : NULL;
  if (st->wake == NULL) {
    if (st->base) event_base_free(st->base);
    free(st);
    return (sl_state *)(luaL_error(L, "streamlua: cannot create the event loop"), NULL);
  }
  *box = st;
  lua_rawsetp(L, LUA_REGISTRYINDEX, &sl_state_key);
  lua_pushliteral(L, "acceptFrame");
  st->ref_accept = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushliteral(L, "_acceptFrame");
  st->ref_accept_ = luaL_ref(L, LUA_REGISTRYINDEX);
  return st;
}

int sl_status_error(lua_State *L, const char *fn, int status) {
  return luaL_error(L, "%s: %s", fn, sl_status_str(status));
}

lua_Integer sl_check_range(lua_State *L, int i, lua_Integer lo,
                           lua_Integer hi) {
  lua_Integer v = luaL_checkinteger(L, i);
  if (v < lo || v > hi)
    luaL_argerror(L, i, lua_pushfstring(L, "value %I out of range [%I, %I]",
                                        v, lo, hi));
  return v;
}

lua_Integer sl_opt_range(lua_State *L, int i, lua_Integer def, lua_Integer lo,
                         lua_Integer hi) {
  return lua_isnoneornil(L, i) ? def : sl_check_range(L, i, lo, hi);
}

int sl_lua_traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int sl_pcall_log(lua_State *L, int nargs, const char *logname) {
  int base = lua_gettop(L) - nargs;   /* the function's index */
  lua_pushcfunction(L, sl_lua_traceback);
  lua_insert(L, base);
  int rc = lua_pcall(L, nargs, 0, base);
  if (rc != LUA_OK) {
    sl_log_write(sl_log_get(logname), SL_LOG_ERROR, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_remove(L, base);
  return rc;
}
