/*
** The Lua binding's face towards its host (src/host) and towards the
** binding files themselves. Everything here runs on the main thread,
** the one that owns the lua_State. libstreamlua-lua exports these.
*/
#ifndef STREAMLUA_SL_LUA_H_INCLUDED_
#define STREAMLUA_SL_LUA_H_INCLUDED_

#include <lua.h>

struct event_base;

#pragma GCC visibility push(default)

/* Opens the module: returns the `streamlua` table. The first call in a
** process also creates the main-thread event loop. luaopen_streamlua, in
** the module file, calls it; a host preloads it under "streamlua". */
int sl_lua_open(lua_State *L);

/* The main-thread libevent base the module serves timers, signals and
** mailboxes on. A host may add its own events to it (the REPL adds stdin). */
struct event_base *sl_lua_base(lua_State *L);

/* Message handler for lua_pcall: turns the error into a string with a
** traceback appended. */
int sl_lua_traceback(lua_State *L);

/* Runs the loop once: waits until at least one event is ready (or until
** `timeout_ms` passes, when >= 0), serves what is ready and returns. Used by
** a host that waits for its own input while the graph keeps running.
** Returns 0, or -1 if called while the loop is already running. */
int sl_lua_serve_once(lua_State *L, int timeout_ms);

/* Non-zero while the main thread's loop runs (sl.run, sl.sleep, a serve).
** Safe to call from a signal handler: the loop then handles SIGINT and
** SIGTERM itself, as a clean stop. */
int sl_lua_loop_active(void);

/* What sl.interactive() answers: a host that opens a prompt once the
** script has run says so before running it. */
void sl_lua_set_interactive(lua_State *L, int on);

/* Stops every object the module started (threads end, sockets close) and
** serves what is left in the mailboxes. Idempotent; a host calls it before
** lua_close. */
void sl_lua_shutdown(lua_State *L);

#pragma GCC visibility pop

#endif
