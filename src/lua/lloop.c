/*
** The main-thread loop: sl.run, sl.stop, sl.sleep, sl.every, sl.after,
** SIGINT/SIGTERM as a clean stop, and the host's hooks (serve_once,
** shutdown). Lua runs only here; C threads reach it through mailboxes and
** the state's deferred list, which wake this loop.
*/
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "../core/clock.h"
#include "lsl.h"

#define SL_TIMER_MT "streamlua.Timer"

typedef struct timer_box {
  struct event *ev;
  sl_state *st;
  int pin;                     /* registry ref while scheduled, else LUA_NOREF */
  int repeat;
  double period;
} timer_box;

struct event_base *sl_lua_base(lua_State *L) {
  return sl_state_get(L)->base;
}

static double check_seconds(lua_State *L, int i, int allow_zero) {
  double s = luaL_checknumber(L, i);
  if (!(s > 0 || (allow_zero && s == 0)) || !isfinite(s) || s > 1e9)
    luaL_argerror(L, i, allow_zero ? "non-negative number of seconds expected"
                                   : "positive number of seconds expected");
  return s;
}

/* ---- timers ---- */

static void timer_unpin(timer_box *t, lua_State *L) {
  if (t->pin != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, t->pin);
    t->pin = LUA_NOREF;
  }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  timer_box *t = arg;
  lua_State *L = sl_state_lua(t->st);
  if (L == NULL || t->pin == LUA_NOREF) return;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->pin);     /* keep the box alive */
  if (!t->repeat) timer_unpin(t, L);
  lua_getiuservalue(L, -1, 1);
  int rc = sl_pcall_log(L, 0, "timer");
  if (rc != LUA_OK && t->repeat) {               /* a failing every() stops */
    event_del(t->ev);
    timer_unpin(t, L);
  }
  lua_settop(L, top);
}

static int schedule(lua_State *L, double seconds, int repeat) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  sl_state *st = sl_state_get(L);
  timer_box *t = lua_newuserdatauv(L, sizeof *t, 1);
  t->ev = NULL;
  t->st = st;
  t->pin = LUA_NOREF;
  t->repeat = repeat;
  t->period = seconds;
  luaL_setmetatable(L, SL_TIMER_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  t->ev = event_new(st->base, -1, repeat ? EV_PERSIST : 0, timer_cb, t);
  if (t->ev == NULL) return luaL_error(L, "cannot create a timer");
  struct timeval tv = sl_tv_from_us((int64_t)(seconds * 1e6));
  event_add(t->ev, &tv);
  lua_pushvalue(L, -1);
  t->pin = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/* sl.every(period, fn) -> timer */
static int loop_every(lua_State *L) {
  return schedule(L, check_seconds(L, 1, 0), 1);
}

/* sl.after(delay, fn) -> timer */
static int loop_after(lua_State *L) {
  return schedule(L, check_seconds(L, 1, 1), 0);
}

static timer_box *check_timer(lua_State *L) {
  return luaL_checkudata(L, 1, SL_TIMER_MT);
}

static int timer_cancel(lua_State *L) {
  timer_box *t = check_timer(L);
  if (t->ev != NULL) event_del(t->ev);
  timer_unpin(t, L);
  return 0;
}

static int timer_active(lua_State *L) {
  lua_pushboolean(L, check_timer(L)->pin != LUA_NOREF);
  return 1;
}

static int timer_gc(lua_State *L) {
  timer_box *t = check_timer(L);
  if (t->ev != NULL) {
    event_free(t->ev);
    t->ev = NULL;
  }
  return 0;
}

static int timer_tostring(lua_State *L) {
  timer_box *t = check_timer(L);
  lua_pushfstring(L, "Timer(%s %f s, %s)", t->repeat ? "every" : "after",
                  t->period, t->pin != LUA_NOREF ? "active" : "inactive");
  return 1;
}

static const luaL_Reg timer_meth[] = {
    {"cancel", timer_cancel}, {"active", timer_active}, {NULL, NULL}};

static const luaL_Reg timer_metameth[] = {
    {"__index", NULL}, {"__gc", timer_gc}, {"__close", timer_cancel},
    {"__tostring", timer_tostring}, {NULL, NULL}};

/* ---- running the loop ---- */

static volatile sig_atomic_t looping;   /* read by the host's SIGINT handler */

int sl_lua_loop_active(void) { return looping != 0; }

/* Once a second while the loop runs: the log's counted repeats get told. */
static void log_tick_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
  sl_log_flush_due();
}

static void break_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  event_base_loopbreak(((sl_state *)arg)->base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  sl_state *st = arg;
  sl_wait_take_interrupt();    /* served: a clean stop, not an error */
  event_base_loopbreak(st->base);
}

/*
** While the loop is served, SIGINT and SIGTERM reach libevent's handler,
** which wakes the loop. A callback blocked in a wait would never get back
** to the loop, so in front of that handler sits one that first tells the
** waits to give up (wait.h).
*/
static struct sigaction loop_handler[2];   /* libevent's, for SIGINT, SIGTERM */

static void give_up_then_loop(int sig) {
  sl_wait_interrupt();
  const struct sigaction *h = &loop_handler[sig == SIGTERM];
  if (h->sa_flags & SA_SIGINFO) {
    if (h->sa_sigaction != NULL) h->sa_sigaction(sig, NULL, NULL);
  } else if (h->sa_handler != SIG_DFL && h->sa_handler != SIG_IGN) {
    h->sa_handler(sig);
  }
}

static void front_handlers(int on) {
  static const int sigs[2] = {SIGINT, SIGTERM};
  for (int i = 0; i < 2; i++) {
    if (on) {
      struct sigaction sa;
      memset(&sa, 0, sizeof sa);
      sa.sa_handler = give_up_then_loop;
      sigemptyset(&sa.sa_mask);
      sigaction(sigs[i], &sa, &loop_handler[i]);
    } else {
      sigaction(sigs[i], &loop_handler[i], NULL);
    }
  }
}

/*
** Serves the loop until stop() (or SIGINT/SIGTERM), or for `seconds` when
** seconds >= 0. A stop ends the serve it happens in, run() or sleep().
*/
static void serve(lua_State *L, const char *fn, double seconds) {
  sl_state *st = sl_state_get(L);
  if (st->in_loop)
    luaL_error(L, "%s: the loop is already running (called from a callback?)", fn);
  struct event *sigint = evsignal_new(st->base, SIGINT, signal_cb, st);
  struct event *sigterm = evsignal_new(st->base, SIGTERM, signal_cb, st);
  if (sigint) event_add(sigint, NULL);
  if (sigterm) event_add(sigterm, NULL);
  int fronted = sigint != NULL && sigterm != NULL;
  struct event *tick = event_new(st->base, -1, EV_PERSIST, log_tick_cb, NULL);
  struct timeval second = {1, 0};
  if (tick) event_add(tick, &second);
  if (fronted) front_handlers(1);
  /* A timer of our own, not event_base_loopexit: a loopexit left pending
  ** by a serve that ended early would end the next serve too. */
  struct event *timeout = NULL;
  if (seconds >= 0) {
    struct timeval tv = sl_tv_from_us((int64_t)(seconds * 1e6));
    timeout = evtimer_new(st->base, break_cb, st);
    if (timeout) evtimer_add(timeout, &tv);
  }
  lua_State *outer = st->cur;
  sl_frame *outer_frame = st->cur_frame;
  st->cur = L;
  st->cur_frame = NULL;        /* callbacks here are not inside a send */
  st->in_loop = 1;
  looping = 1;
  event_base_loop(st->base, EVLOOP_NO_EXIT_ON_EMPTY);
  looping = 0;
  st->in_loop = 0;
  st->cur = outer;
  st->cur_frame = outer_frame;
  if (fronted) front_handlers(0);
  if (sigint) event_free(sigint);
  if (sigterm) event_free(sigterm);
  if (tick) event_free(tick);
  if (timeout) event_free(timeout);
  sl_state_run_deferred(st);
}

static int loop_run(lua_State *L) {
  double s = lua_isnoneornil(L, 1) ? -1 : check_seconds(L, 1, 1);
  serve(L, "run", s);
  return 0;
}

static int loop_sleep(lua_State *L) {
  serve(L, "sleep", check_seconds(L, 1, 1));
  return 0;
}

static int loop_stop(lua_State *L) {
  sl_state *st = sl_state_get(L);
  if (st->in_loop) event_base_loopbreak(st->base);
  return 0;
}

int sl_lua_serve_once(lua_State *L, int timeout_ms) {
  sl_state *st = sl_state_get(L);
  if (st->in_loop) return -1;
  struct event *timeout = NULL;
  if (timeout_ms >= 0) {
    struct timeval tv = sl_tv_from_us((int64_t)timeout_ms * 1000);
    timeout = evtimer_new(st->base, break_cb, st);
    if (timeout) evtimer_add(timeout, &tv);
  } else {                     /* an idle wait still tells counted repeats */
    struct timeval second = {1, 0};
    timeout = evtimer_new(st->base, log_tick_cb, NULL);
    if (timeout) evtimer_add(timeout, &second);
  }
  st->in_loop = 1;
  looping = 1;
  event_base_loop(st->base, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY);
  looping = 0;
  st->in_loop = 0;
  if (timeout) event_free(timeout);
  sl_state_run_deferred(st);
  sl_log_flush_due();
  return 0;
}

/*
** Stops every live object, in two phases. First every object is told to
** stop (cancel: its threads and every wait on its behalf give up, nothing
** waits here). Then they are stopped for good: Lua-defined slaves first
** (their mailboxes close, so no sender stays blocked on them, and what
** they hold is served), then the rest, which joins their threads; last,
** every link is cut, so graphs with cycles (`a == b`, an echo `srv >>
** stage >> srv`) are freed with the state.
*/
void sl_lua_shutdown(lua_State *L) {
  sl_state *st = sl_state_get(L);
  for (int pass = -1; pass < 3; pass++) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_boxes_key);
    lua_newtable(L);                     /* a copy: stopping may run Lua */
    lua_pushnil(L);
    while (lua_next(L, -3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      sl_object *obj = sl_lua_test_object(L, -1);
      if (obj != NULL && pass == -1) {
        sl_object_cancel(obj);
      } else if (obj != NULL && pass == 2) {
        if (obj->master != NULL) sl_master_clear_slaves(obj->master);
      } else if (obj != NULL) {
        int is_lua = sl_lua_slave_fields(L, obj);
        if (is_lua) lua_pop(L, 1);
        if (is_lua == (pass == 0)) sl_object_stop(obj);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  sl_state_run_deferred(st);
}

static const luaL_Reg loop_funcs[] = {
    {"run", loop_run},     {"stop", loop_stop},   {"sleep", loop_sleep},
    {"every", loop_every}, {"after", loop_after}, {NULL, NULL}};

void sl_open_loop(lua_State *L) {
  luaL_newmetatable(L, SL_TIMER_MT);
  luaL_setfuncs(L, timer_metameth, 0);
  lua_newtable(L);
  luaL_setfuncs(L, timer_meth, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_setfuncs(L, loop_funcs, 0);
}
