/*
** Seeing the graph: sl.graph() lists the live objects and their links,
** graph:dot() writes Graphviz text, and sl.monitor() prints a one-line rate
** summary every few seconds. The listing logic is Lua
** (lua/streamlua/graph.lua, embedded at build time as graph_lua[]); C gives
** it the live objects and a monotonic clock.
*/
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "../core/clock.h"
#include "graph_lua.h"
#include "lsl.h"

/* The live objects (after a full collection), oldest first. */
static int graph_objects(lua_State *L) {
  lua_gc(L, LUA_GCCOLLECT);
  lua_newtable(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_boxes_key);
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (sl_lua_test_object(L, -1) != NULL) lua_rawseti(L, -4, ++n);
    else lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 1;
}

static int graph_serial(lua_State *L) {
  lua_pushinteger(L, sl_box_serial(L, 1));
  return 1;
}

/* sl.now(): monotonic seconds, for rates. */
static int graph_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)sl_clock_s());
  return 1;
}

/* Registry key: true when the host opens its prompt after the script. */
static const char interactive_key = 0;

void sl_lua_set_interactive(lua_State *L, int on) {
  lua_pushboolean(L, on);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &interactive_key);
}

/* sl.interactive(): will a prompt follow this script (streamlua -i, or
** the prompt itself)? Scripts keep their graph running when it will. */
static int graph_interactive(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &interactive_key);
  lua_pushboolean(L, lua_toboolean(L, -1));
  return 1;
}

/*
** The terminal for sl.top: raw mode on the whole screen, and a wait for a
** key that serves the loop meanwhile. The terminal's settings are saved
** when raw mode starts and put back when it ends, and at exit should a
** script leave (os.exit) in between. Main thread only.
*/
static struct termios term_saved;
static int term_is_raw;

static void term_restore(void) {
  if (!term_is_raw) return;
  term_is_raw = 0;
  fputs("\033[?25h\033[?1049l", stdout);   /* the cursor, the main screen */
  fflush(stdout);
  tcsetattr(STDIN_FILENO, TCSANOW, &term_saved);
}

/* term.raw(on): keys arrive one at a time, unechoed, Ctrl-C among them. */
static int term_raw(lua_State *L) {
  static int at_exit;
  if (!lua_toboolean(L, 1)) {
    term_restore();
    return 0;
  }
  if (term_is_raw) return 0;
  if (tcgetattr(STDIN_FILENO, &term_saved) != 0)
    return luaL_error(L, "top: stdin is not a terminal");
  struct termios t = term_saved;
  t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
  t.c_iflag &= ~(tcflag_t)(IXON | ICRNL);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (!at_exit) at_exit = (atexit(term_restore) == 0);
  if (tcsetattr(STDIN_FILENO, TCSANOW, &t) != 0)
    return luaL_error(L, "top: cannot set up the terminal");
  term_is_raw = 1;
  fputs("\033[?1049h\033[?25l", stdout);   /* a screen of its own, no cursor */
  fflush(stdout);
  return 0;
}

static int term_tty(lua_State *L) {
  lua_pushboolean(L, isatty(STDIN_FILENO) && isatty(STDOUT_FILENO));
  return 1;
}

/* term.size() -> rows, columns */
static int term_size(lua_State *L) {
  struct winsize ws;
  int ok = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 1 && ws.ws_col > 0;
  lua_pushinteger(L, ok ? ws.ws_row : 24);
  lua_pushinteger(L, ok ? ws.ws_col : 80);
  return 2;
}

struct key_wait {
  struct event_base *base;
  int got;
};

static void key_cb(evutil_socket_t fd, short what, void *arg) {
  struct key_wait *kw = arg;
  (void)fd; (void)what;
  kw->got = 1;
  event_base_loopbreak(kw->base);
}

/* Reads the key that came: one byte, or an escape sequence (an arrow
** key) whole; what is typed after it stays for the prompt. */
static void drop_key(void) {
  char c;
  struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
  if (read(STDIN_FILENO, &c, 1) != 1 || c != '\033') return;
  for (int i = 0; i < 16 && poll(&p, 1, 0) == 1 && read(STDIN_FILENO, &c, 1) == 1; i++)
    if (i > 0 && c >= 0x40 && c <= 0x7e) break;   /* the sequence's last byte */
}

/* term.key(seconds): serves the loop (sl.sleep, upvalue 1) until a key
** comes or the time is up; true when a key came (it is read and dropped)
** or the serve was stopped early (sl.stop, SIGTERM): time to quit. */
static int term_key(lua_State *L) {
  double seconds = luaL_checknumber(L, 1);
  struct key_wait kw = {sl_lua_base(L), 0};
  struct event *ev = event_new(kw.base, STDIN_FILENO, EV_READ, key_cb, &kw);
  if (ev == NULL) return luaL_error(L, "top: cannot watch stdin");
  event_add(ev, NULL);
  double t0 = sl_clock_s();
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushnumber(L, seconds);
  int status = lua_pcall(L, 1, 0, 0);
  event_free(ev);
  if (status != LUA_OK) return lua_error(L);
  if (kw.got) drop_key();
  lua_pushboolean(L, kw.got || sl_clock_s() - t0 < seconds - 0.005);
  return 1;
}

/* sl.top([period]): graph.lua's top (upvalue 1) with the terminal
** (upvalue 2); the terminal is restored whatever happens. */
static int graph_top(lua_State *L) {
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, 1);
  int status = lua_pcall(L, 2, 0, 0);
  term_restore();
  if (status != LUA_OK) return lua_error(L);
  return 0;
}

/* Pushes the terminal table graph.lua's top uses; sl.sleep is the
** module's (the table at -2). */
static void push_term(lua_State *L) {
  lua_createtable(L, 0, 4);   /* not the user's: only sl.top holds it */
  lua_pushcfunction(L, term_raw);
  lua_setfield(L, -2, "raw");
  lua_pushcfunction(L, term_tty);
  lua_setfield(L, -2, "tty");
  lua_pushcfunction(L, term_size);
  lua_setfield(L, -2, "size");
  lua_getfield(L, -2, "sleep");
  lua_pushcclosure(L, term_key, 1);
  lua_setfield(L, -2, "key");
}

/* Sets sl.graph, sl.monitor, sl.show, sl.top, sl.interactive and sl.now in the module table at the top. */
void sl_open_graph(lua_State *L) {
  lua_pushcfunction(L, graph_now);
  lua_setfield(L, -2, "now");
  lua_pushcfunction(L, graph_interactive);
  lua_setfield(L, -2, "interactive");
  if (luaL_loadbuffer(L, graph_lua, sizeof graph_lua, "=streamlua.graph") != LUA_OK)
    lua_error(L);
  lua_pushvalue(L, -2);
  lua_pushcfunction(L, graph_objects);
  lua_pushcfunction(L, graph_serial);
  lua_call(L, 3, 4);
  lua_pushvalue(L, -5);
  push_term(L);
  lua_remove(L, -2);
  lua_pushcclosure(L, graph_top, 2);
  lua_setfield(L, -5, "top");
  lua_setfield(L, -4, "show");
  lua_setfield(L, -3, "monitor");
  lua_setfield(L, -2, "graph");
}
