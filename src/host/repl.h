/*
** The streamlua host program: the script runner (main.c) and the
** interactive loop (repl.c). Everything here runs on the main thread.
*/
#ifndef STREAMLUA_HOST_REPL_H_INCLUDED_
#define STREAMLUA_HOST_REPL_H_INCLUDED_

#include <lua.h>

/* The name messages are prefixed with ("streamlua: ..."). */
#define SL_HOST_NAME "streamlua"

/* Calls the function under `narg` arguments on the top of the stack, with
** a traceback handler; leaves `nres` results (LUA_MULTRET for all) or the
** error message. Returns the lua_pcall status. */
int sl_host_docall(lua_State *L, int narg, int nres);

/* If `status` is not LUA_OK, prints the message on the top of the stack
** to stderr, prefixed with SL_HOST_NAME, and pops it. Returns `status`. */
int sl_host_report(lua_State *L, int status);

/* Runs the read-eval-print loop on stdin until end of input. The graph
** keeps running while the loop waits for a line. Call it unprotected,
** after the module is loaded: each line runs in its own protected call. */
void sl_repl_run(lua_State *L);

#endif
