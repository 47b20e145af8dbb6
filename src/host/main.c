/*
** streamlua: the host program. Runs a topology script, `-e` chunks and
** the REPL with the streamlua module built in. Options and the `arg`
** table follow the stock `lua` interpreter, so a script behaves the same
** under both.
*/
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "streamlua/version.h"
#include "streamlua/wait.h"
#include "sl_lua.h"
#include "repl.h"

/* what the command line asks for */
#define ARG_ERROR   1
#define ARG_I       2   /* -i: REPL after the script */
#define ARG_E       4   /* -e: at least one chunk to run */
#define ARG_VERSION 8
#define ARG_HELP    16

/* what pmain leaves for main to do */
#define HOST_DONE   0
#define HOST_FAILED 1
#define HOST_REPL   2

struct host_args {
  int argc;
  char **argv;
  int script;   /* index of the script name in argv, or argc if none */
  int flags;
  int loaded;   /* the module is open: shut it down before closing */
};


static void print_usage(FILE *f) {
  fputs("usage: " SL_HOST_NAME " [options] [script [args]]\n"
        "Available options are:\n"
        "  -e stat        execute string 'stat'\n"
        "  -i             enter interactive mode after executing 'script'\n"
        "  -l mod         require library 'mod' into global 'mod'\n"
        "  -v, --version  show version information\n"
        "  -W             turn warnings on\n"
        "  -h, --help     show this help\n"
        "  --             stop handling options\n"
        "  -              stop handling options and execute stdin\n"
        "With no script and no -e, " SL_HOST_NAME " opens the REPL.\n"
        "The module is preloaded: 'sl' is require \"streamlua\".\n", f);
}


static void print_version(void) {
  printf(SL_HOST_NAME " %s (%s, libevent %s)\n", SL_VERSION, LUA_RELEASE,
         event_get_version());
}


int sl_host_report(lua_State *L, int status) {
  if (status != LUA_OK) {
    int top = lua_gettop(L);
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL)
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, -1));
    fflush(stdout);  /* keep results and errors in order on a shared pipe */
    fprintf(stderr, SL_HOST_NAME ": %s\n", msg);
    fflush(stderr);
    lua_settop(L, top - 1);  /* pop the message */
  }
  return status;
}


/*
** Ctrl-C while Lua code runs: as the stock `lua` does, the handler sets a
** hook and the hook raises "interrupted!" at the next Lua instruction, so
** a runaway loop typed at the prompt can be stopped. A call that waits in
** C gives up as well (wait.h) and raises "interrupted". While the event
** loop runs, SIGINT is the loop's (a clean stop): the signal is handed to
** the handler that was there before (the loop's own).
*/
static lua_State *volatile interrupt_L;
static struct sigaction outer_int;
static int call_depth;

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  sl_wait_take_interrupt();          /* this error is the interrupt */
  luaL_error(L, "interrupted!");
}

static void on_interrupt(int sig) {
  sl_wait_interrupt();
  if (sl_lua_loop_active()) {
    if (!(outer_int.sa_flags & SA_SIGINFO) && outer_int.sa_handler != SIG_DFL &&
        outer_int.sa_handler != SIG_IGN)
      outer_int.sa_handler(sig);
    return;
  }
  lua_sethook(interrupt_L, interrupt_hook,
              LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

int sl_host_docall(lua_State *L, int narg, int nres) {
  int status;
  int base = lua_gettop(L) - narg;  /* function index */
  lua_pushcfunction(L, sl_lua_traceback);
  lua_insert(L, base);  /* put it under the function and its arguments */
  if (call_depth++ == 0) {
    sl_wait_take_interrupt();         /* one from before is not for this call */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    interrupt_L = L;
    sigaction(SIGINT, &sa, &outer_int);
  }
  status = lua_pcall(L, narg, nres, base);
  if (--call_depth == 0) {
    sigaction(SIGINT, &outer_int, NULL);
    lua_sethook(L, NULL, 0, 0);       /* a Ctrl-C that came too late */
  }
  lua_remove(L, base);
  return status;
}


static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK)
    status = sl_host_docall(L, 0, 0);
  return sl_host_report(L, status);
}


/* global[gname] = require(mod), as `lua -l` does */
static int dolibrary(lua_State *L, const char *mod, const char *gname) {
  int status;
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  status = sl_host_docall(L, 1, 1);
  if (status == LUA_OK)
    lua_setglobal(L, gname);
  return sl_host_report(L, status);
}


/*
** os.exit leaves without unwinding anything: stop the graph first, so no
** thread of the module still runs while the C library tears down.
*/
static int host_exit(lua_State *L) {
  sl_lua_shutdown(L);
  lua_pushvalue(L, lua_upvalueindex(1));  /* the original os.exit */
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 0);
  return 0;
}


static void wrap_exit(lua_State *L) {
  if (lua_getglobal(L, LUA_OSLIBNAME) == LUA_TTABLE) {
    lua_getfield(L, -1, "exit");
    lua_pushcclosure(L, host_exit, 1);
    lua_setfield(L, -2, "exit");
  }
  lua_pop(L, 1);
}


/* The binary links the binding (libstreamlua-lua): `require "streamlua"`
** finds it in package.preload before searching any path. */
static int open_module(lua_State *L) {
  int status;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, sl_lua_open);
  lua_setfield(L, -2, "streamlua");
  lua_pop(L, 1);
  status = dolibrary(L, "streamlua", "sl");
  if (status == LUA_OK)
    wrap_exit(L);
  return status;
}


/*
** The program's own pure-Lua modules (streamlua.testing, anything in
** lua/streamlua/) are found from where the executable is, wherever it was
** installed or moved, without LUA_PATH: package.path starts with the first
** of these directories, relative to the executable's, that holds streamlua/
** (installed: the Lua module directory; in the build tree: the source's
** lua/).
*/
#ifndef SL_HOST_LUA_INSTALLED
#define SL_HOST_LUA_INSTALLED "../share/lua/5.4"
#endif
#ifndef SL_HOST_LUA_BUILD
#define SL_HOST_LUA_BUILD "../lua"
#endif

/* Fills dir (PATH_MAX bytes) with the real path of `rel`, taken from the
** executable's directory, if it holds streamlua/. */
static int find_lua_dir(const char *exe_dir, const char *rel, char *dir) {
  char path[PATH_MAX];
  int n = snprintf(path, sizeof path, "%s/%s/streamlua", exe_dir, rel);
  if (n < 0 || (size_t)n >= sizeof path || realpath(path, dir) == NULL)
    return 0;
  *strrchr(dir, '/') = '\0';  /* the directory that holds streamlua/ */
  return 1;
}

static void add_own_path(lua_State *L) {
  static const char *const rels[] = {SL_HOST_LUA_INSTALLED, SL_HOST_LUA_BUILD};
  char exe[PATH_MAX], dir[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return;
  exe[n] = '\0';
  *strrchr(exe, '/') = '\0';  /* an absolute path: there is a slash */
  for (size_t i = 0; i < sizeof rels / sizeof rels[0]; i++) {
    if (find_lua_dir(exe, rels[i], dir)) {
      lua_getglobal(L, LUA_LOADLIBNAME);
      lua_getfield(L, -1, "path");
      lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
      lua_setfield(L, -3, "path");
      lua_pop(L, 2);
      return;
    }
  }
}


/* arg[0] is the script, arg[1..n] its arguments, options and the program
** name at negative indices: the layout of the stock interpreter */
static void create_arg_table(lua_State *L, const struct host_args *a) {
  int i, script = (a->script == a->argc) ? 0 : a->script;
  lua_createtable(L, a->argc - (script + 1), script + 1);
  for (i = 0; i < a->argc; i++) {
    lua_pushstring(L, a->argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}


static int run_script(lua_State *L, const struct host_args *a) {
  int status, n, i;
  const char *fname = a->argv[a->script];
  if (strcmp(fname, "-") == 0 && strcmp(a->argv[a->script - 1], "--") != 0)
    fname = NULL;  /* read the script from stdin */
  status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    lua_getglobal(L, "arg");
    n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (i = 1; i <= n; i++)
      lua_rawgeti(L, -i, i);
    lua_remove(L, -i);  /* the arg table */
    status = sl_host_docall(L, n, 0);
  }
  return sl_host_report(L, status);
}


/* -e, -l and -W, in the order given, before the script */
static int run_options(lua_State *L, const struct host_args *a) {
  int i;
  for (i = 1; i < a->script; i++) {
    const char *opt = a->argv[i];
    const char *val;
    switch (opt[1]) {
      case 'e':
      case 'l':
        val = (opt[2] != '\0') ? opt + 2 : a->argv[++i];
        if (opt[1] == 'e') {
          if (dochunk(L, luaL_loadbuffer(L, val, strlen(val),
                                         "=(command line)")) != LUA_OK)
            return 0;
        }
        else if (dolibrary(L, val, val) != LUA_OK)
          return 0;
        break;
      case 'W':
        lua_warning(L, "@on", 0);
        break;
    }
  }
  return 1;
}


static int pmain(lua_State *L) {
  struct host_args *a = lua_touserdata(L, 1);
  luaL_checkversion(L);
  lua_gc(L, LUA_GCSTOP);  /* no collections while the libraries open */
  luaL_openlibs(L);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);  /* the mode the stock interpreter uses */
  add_own_path(L);
  create_arg_table(L, a);
  if (open_module(L) != LUA_OK) {
    lua_pushinteger(L, HOST_FAILED);
    return 1;
  }
  a->loaded = 1;
  sl_lua_set_interactive(L, (a->flags & ARG_I) ||
                            (a->script == a->argc && !(a->flags & ARG_E)));
  if (!run_options(L, a)) {
    lua_pushinteger(L, HOST_FAILED);
    return 1;
  }
  if (a->script < a->argc && run_script(L, a) != LUA_OK) {
    lua_pushinteger(L, HOST_FAILED);
    return 1;
  }
  if ((a->flags & ARG_I) || (a->script == a->argc && !(a->flags & ARG_E)))
    lua_pushinteger(L, HOST_REPL);
  else
    lua_pushinteger(L, HOST_DONE);
  return 1;
}


/* Sets a->script to the first argument that is not an option (argc if
** there is none) and returns the ARG_ flags; on ARG_ERROR, a->script is
** the option at fault. */
static int collect_args(struct host_args *a) {
  char **argv = a->argv;
  int i, flags = 0;
  for (i = 1; i < a->argc; i++) {
    a->script = i;
    if (argv[i][0] != '-')
      return flags;  /* the script */
    switch (argv[i][1]) {
      case '\0':  /* '-': the script is stdin */
        return flags;
      case '-':
        if (argv[i][2] == '\0') {  /* '--' */
          a->script = i + 1;
          return flags;
        }
        if (strcmp(argv[i], "--version") == 0)
          flags |= ARG_VERSION;
        else if (strcmp(argv[i], "--help") == 0)
          flags |= ARG_HELP;
        else
          return ARG_ERROR;
        break;
      case 'i': case 'v': case 'h': case 'W':
        if (argv[i][2] != '\0')
          return ARG_ERROR;
        flags |= (argv[i][1] == 'i') ? ARG_I :
                 (argv[i][1] == 'v') ? ARG_VERSION :
                 (argv[i][1] == 'h') ? ARG_HELP : 0;
        break;
      case 'e':
        flags |= ARG_E;
        /* FALLTHROUGH */
      case 'l':
        if (argv[i][2] == '\0') {  /* the value is the next argument */
          if (i + 1 >= a->argc || argv[i + 1][0] == '-')
            return ARG_ERROR;
          i++;
        }
        break;
      default:
        return ARG_ERROR;
    }
  }
  a->script = a->argc;
  return flags;
}


int main(int argc, char **argv) {
  struct host_args a;
  lua_State *L;
  int status, action;
  a.argc = argc;
  a.argv = argv;
  a.script = argc;
  a.loaded = 0;
  a.flags = (argc > 0) ? collect_args(&a) : 0;
  if (a.flags & ARG_ERROR) {
    const char *bad = argv[a.script];
    if (bad[1] == 'e' || bad[1] == 'l')
      fprintf(stderr, SL_HOST_NAME ": '%s' needs argument\n", bad);
    else
      fprintf(stderr, SL_HOST_NAME ": unrecognized option '%s'\n", bad);
    print_usage(stderr);
    return EXIT_FAILURE;
  }
  if (a.flags & ARG_HELP) {
    print_usage(stdout);
    return EXIT_SUCCESS;
  }
  if (a.flags & ARG_VERSION) {
    print_version();
    return EXIT_SUCCESS;
  }
  L = luaL_newstate();
  if (L == NULL) {
    fputs(SL_HOST_NAME ": cannot create state: not enough memory\n", stderr);
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &a);
  status = lua_pcall(L, 1, 1, 0);
  action = (status == LUA_OK) ? (int)lua_tointeger(L, -1) : HOST_FAILED;
  sl_host_report(L, status);
  lua_settop(L, 0);
  if (action == HOST_REPL) {
    if (isatty(STDIN_FILENO) && a.script == argc)
      print_version();  /* a banner for a session that starts bare */
    else if (isatty(STDIN_FILENO))
      puts("the graph runs on: sl.graph() lists it, sl.top() watches it, "
           "sl.monitor(1) prints its rates");
    sl_repl_run(L);
    action = HOST_DONE;
  }
  if (a.loaded)
    sl_lua_shutdown(L);
  lua_close(L);
  fflush(stdout);
  return (action == HOST_DONE) ? EXIT_SUCCESS : EXIT_FAILURE;
}
