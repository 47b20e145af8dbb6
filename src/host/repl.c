/*
** The interactive loop of the streamlua host.
**
** It never blocks in read(): stdin is one more event on the module's loop,
** so timers, mailboxes and signals are served while the user types. The
** event only collects input. A complete line is evaluated after the loop
** returns, because the line may run the loop itself (sl.run, sl.sleep)
** and a libevent loop cannot be re-entered; stdin is not watched while a
** line runs, so `sl.run()` at the prompt does not eat the next lines.
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <lua.h>
#include <lauxlib.h>

#ifdef SL_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include "sl_lua.h"
#include "repl.h"

#define PROMPT1     "> "
#define PROMPT2     ">> "
#define EOFMARK     "<eof>"
#define EOFMARK_LEN (sizeof(EOFMARK) - 1)
#define NSIGNALS    5

/* a growing byte string */
struct text {
  char *p;
  size_t n, cap;
};

struct repl {
  lua_State *L;
  struct event *ev_in;              /* stdin is readable */
  struct event *ev_sig[NSIGNALS];   /* see on_signal */
  int tty;          /* stdin is a terminal: show prompts */
  int watch;        /* stdin can be polled (terminal, pipe, socket) */
  int edit;         /* libedit owns the terminal */
  int waiting;      /* prompt shown, events armed */
  int eof;
  int interrupted;  /* Ctrl-C at the prompt */
  char *line;       /* a complete line (malloc'd), not yet evaluated */
  struct text in;   /* bytes read, not yet split into lines */
  struct text stmt; /* an incomplete statement waiting for more lines */
  char *histfile;   /* where libedit keeps the history, or NULL */
  int comp_next;    /* next completion candidate to hand out */
  int eval_ref;     /* registry: repl_eval with its hints */
  int print_ref;    /* registry: prompt_print while it stands in for print */
};

static void edit_open(struct repl *r);
static void edit_close(struct repl *r);
static void edit_start(const char *prompt);
static void edit_stop(void);
static void edit_read(struct repl *r);
static void edit_signal(int sig);
static void edit_redraw(void);
static void edit_save(struct repl *r, const char *stmt);


static int text_add(struct text *t, const char *s, size_t n) {
  if (t->n + n + 1 > t->cap) {
    size_t cap = (t->cap > 0) ? t->cap : 256;
    char *p;
    while (cap < t->n + n + 1)
      cap *= 2;
    p = realloc(t->p, cap);
    if (p == NULL)
      return -1;
    t->p = p;
    t->cap = cap;
  }
  memcpy(t->p + t->n, s, n);
  t->n += n;
  t->p[t->n] = '\0';
  return 0;
}


/*
** {======================================================
** Input: a plain line reader on the fd event, or libedit
** =======================================================
*/

static void read_some(struct repl *r) {
  char chunk[4096];
  ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
  if (n > 0) {
    if (text_add(&r->in, chunk, (size_t)n) != 0)
      r->eof = 1;
  }
  else if (n == 0 || (errno != EINTR && errno != EAGAIN))
    r->eof = 1;
}


static void on_stdin(evutil_socket_t fd, short what, void *arg) {
  struct repl *r = arg;
  (void)fd; (void)what;
  if (r->edit)
    edit_read(r);
  else
    read_some(r);
}


/* SIGINT clears the input; SIGTERM and SIGHUP end the session as end of
** input does; SIGWINCH and SIGCONT are for libedit (see edit_signal). */
static void on_signal(evutil_socket_t sig, short what, void *arg) {
  struct repl *r = arg;
  (void)what;
  if (sig == SIGINT)
    r->interrupted = 1;
  else if (sig == SIGTERM || sig == SIGHUP)
    r->eof = 1;
  else if (r->edit)
    edit_signal(sig);
}


/* Moves the next complete line of r->in to r->line; at end of input, a
** last line without a newline counts too. */
static int take_line(struct repl *r) {
  char *nl;
  size_t len, used;
  if (r->line != NULL)
    return 1;
  nl = (r->in.n > 0) ? memchr(r->in.p, '\n', r->in.n) : NULL;
  if (nl != NULL) {
    len = (size_t)(nl - r->in.p);
    used = len + 1;  /* the newline goes too */
  }
  else if (r->eof && r->in.n > 0)
    used = len = r->in.n;
  else
    return 0;
  r->line = malloc(len + 1);
  if (r->line == NULL) {
    r->eof = 1;
    r->in.n = 0;
    return 0;
  }
  memcpy(r->line, r->in.p, len);
  r->line[len] = '\0';
  memmove(r->in.p, r->in.p + used, r->in.n - used);
  r->in.n -= used;
  return 1;
}


/* _PROMPT and _PROMPT2 override the prompts, as in the stock REPL; read
** raw, since this runs outside any protected call */
static const char *get_prompt(lua_State *L, int firstline) {
  const char *p = NULL;
  lua_pushglobaltable(L);
  lua_pushstring(L, firstline ? "_PROMPT" : "_PROMPT2");
  if (lua_rawget(L, -2) == LUA_TSTRING)
    p = lua_tostring(L, -1);  /* still anchored in the globals */
  lua_pop(L, 2);
  return (p != NULL) ? p : firstline ? PROMPT1 : PROMPT2;
}


/*
** While the prompt waits, callbacks that print (sl.monitor, timers) go
** through prompt_print, which stands in for the global print: the line
** being typed is cleared, the text printed, and the prompt and the line
** drawn again below it (without libedit: the text on a fresh line, then
** the prompt again). Upvalues: the print it stands for, the session.
*/
static int prompt_print(lua_State *L) {
  struct repl *r = lua_touserdata(L, lua_upvalueindex(2));
  fputs(r->edit ? "\r\033[K" : "\n", stdout);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 0);
  fflush(stdout);
  if (r->edit)
    edit_redraw();
  else
    fputs(get_prompt(L, r->stmt.n == 0), stdout);
  fflush(stdout);
  return 0;
}

static void print_wrap(struct repl *r) {
  lua_State *L = r->L;
  if (!r->tty)
    return;
  if (lua_getglobal(L, "print") == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pushlightuserdata(L, r);
  lua_pushcclosure(L, prompt_print, 2);
  lua_pushvalue(L, -1);
  lua_setglobal(L, "print");
  r->print_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Puts the global print back, unless a callback has replaced it since. */
static void print_unwrap(struct repl *r) {
  lua_State *L = r->L;
  if (r->print_ref == LUA_NOREF)
    return;
  lua_getglobal(L, "print");
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->print_ref);
  if (lua_rawequal(L, -1, -2)) {
    lua_getupvalue(L, -1, 1);
    lua_setglobal(L, "print");
  }
  lua_pop(L, 2);
  luaL_unref(L, LUA_REGISTRYINDEX, r->print_ref);
  r->print_ref = LUA_NOREF;
}


static void wait_start(struct repl *r) {
  int i;
  const char *prompt = get_prompt(r->L, r->stmt.n == 0);
  r->interrupted = 0;
  if (r->edit)
    edit_start(prompt);
  else if (r->tty)
    fputs(prompt, stdout);
  fflush(stdout);
  if (r->watch)
    event_add(r->ev_in, NULL);
  for (i = 0; i < NSIGNALS; i++)
    event_add(r->ev_sig[i], NULL);
  print_wrap(r);
  r->waiting = 1;
}


static void wait_stop(struct repl *r) {
  int i;
  if (!r->waiting)
    return;
  event_del(r->ev_in);
  for (i = 0; i < NSIGNALS; i++)
    event_del(r->ev_sig[i]);  /* Ctrl-C while a line runs is not ours */
  print_unwrap(r);
  if (r->edit)
    edit_stop();
  r->waiting = 0;
}


/* Serves the loop until a line is complete; 0 at end of input. */
static int wait_line(struct repl *r) {
  for (;;) {
    if (take_line(r))
      return 1;
    if (r->eof)
      return 0;
    if (r->interrupted) {  /* drop what was typed, start a fresh prompt */
      wait_stop(r);
      r->stmt.n = 0;
      r->in.n = 0;
      if (r->tty)
        fputs("\n", stdout);
    }
    if (!r->waiting)
      wait_start(r);
    if (!r->watch) {  /* a plain file: reading it never waits */
      sl_lua_serve_once(r->L, 0);
      read_some(r);
    }
    else if (sl_lua_serve_once(r->L, -1) != 0)
      r->eof = 1;  /* the loop is not ours to run */
    fflush(stdout);
  }
}

/* }====================================================== */


/*
** {======================================================
** Evaluation
** =======================================================
*/

static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    if (lmsg >= EOFMARK_LEN && strcmp(msg + lmsg - EOFMARK_LEN, EOFMARK) == 0)
      return 1;
  }
  return 0;
}


/* Replaces each value from index `first` up with its text by the
** module's show() (objects with their counters, tables one level deep),
** when the module is loaded; values it fails on stay as they are. */
static void show_results(lua_State *L, int first) {
  int i, top = lua_gettop(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "streamlua") == LUA_TTABLE &&
      lua_getfield(L, -1, "show") == LUA_TFUNCTION) {
    for (i = first; i <= top; i++) {
      lua_pushvalue(L, -1);
      lua_pushvalue(L, i);
      if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
        lua_replace(L, i);
      else
        lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
}


/* print(...) over the results from index `first` up */
static void print_results(lua_State *L, int first) {
  int n = lua_gettop(L) - first + 1;
  if (n > 0) {
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    show_results(L, first);
    lua_getglobal(L, "print");
    lua_insert(L, first);
    if (lua_pcall(L, n, 0, 0) != LUA_OK) {
      lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1));
      sl_host_report(L, LUA_ERRRUN);
    }
  }
}


/* Names other languages give Lua's constants: read as undefined globals
** at the prompt, they earn a hint. */
static const char *const other_names[][2] = {
    {"True", "true"}, {"False", "false"}, {"None", "nil"}, {"null", "nil"}};
#define NOTHER (sizeof(other_names) / sizeof(other_names[0]))

/* __index of the global table while a statement typed at the prompt runs
** (it is called for globals that are not there): a hint on stderr, once
** per statement, when the name is one of other_names. Upvalue: the names
** hinted for this statement. */
static int hint_index(lua_State *L) {
  size_t i;
  for (i = 0; i < NOTHER && lua_type(L, 2) == LUA_TSTRING; i++)
    if (strcmp(lua_tostring(L, 2), other_names[i][0]) == 0) {
      lua_pushvalue(L, 2);
      if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL) {
        fflush(stdout);
        fprintf(stderr, SL_HOST_NAME ": hint: '%s' is not defined (nil); Lua writes %s\n",
                other_names[i][0], other_names[i][1]);
        fflush(stderr);
        lua_pushvalue(L, 2);
        lua_pushboolean(L, 1);
        lua_rawset(L, lua_upvalueindex(1));
      }
    }
  lua_pushnil(L);
  return 1;
}

/* Pushes the metatable the global table wears while a statement typed at
** the prompt runs, and its set of names hinted. */
static void push_hints(lua_State *L) {
  lua_newtable(L);                   /* the metatable */
  lua_newtable(L);                   /* the names hinted */
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, hint_index, 1);
  lua_setfield(L, -3, "__index");
}

/* Gives the global table the hints' metatable (upvalue 1) when it has
** none, or takes it back (unless the statement replaced it): 1 when it is
** on. */
static int hints_on(lua_State *L, int on) {
  int done = 0;
  lua_pushglobaltable(L);
  if (!lua_getmetatable(L, -1)) {
    if (on) {
      lua_pushvalue(L, lua_upvalueindex(1));
      lua_setmetatable(L, -2);
      done = 1;
    }
  }
  else {  /* the statement's own, or one the globals had: left alone */
    if (!on && lua_rawequal(L, -1, lua_upvalueindex(1))) {
      lua_pushnil(L);
      lua_setmetatable(L, -3);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return done;
}


/* A statement such as `a >> b` is not Lua; say what is. */
static void hint_syntax(lua_State *L) {
  static const char *const ops[] = {">>", "<<", "=="};
  size_t i;
  const char *msg = lua_tostring(L, -1);
  for (i = 0; msg != NULL && i < sizeof(ops) / sizeof(ops[0]); i++) {
    char near[16];
    snprintf(near, sizeof near, "near '%s'", ops[i]);
    if (strstr(msg, near) != NULL) {
      lua_pushfstring(L, "%s\n  hint: Lua takes 'a %s b' only as a value: "
                      "write '_ = a %s b'", msg, ops[i], ops[i]);
      lua_remove(L, -2);
      return;
    }
  }
}


/*
** repl_eval(chunk, firstline, final): runs the statement typed so far.
** A first line is tried as `return <line>;` first, so an expression shows
** its values. Returns true when the chunk is incomplete and more lines
** may finish it (never when `final`, at end of input). While it runs, the
** global table wears the hints' metatable (upvalue 1, push_hints) unless
** it has one; upvalue 2 is its hint set, cleared for each statement.
*/
static int repl_eval(lua_State *L) {
  size_t len;
  const char *chunk = luaL_checklstring(L, 1, &len);
  int firstline = lua_toboolean(L, 2);
  int status = LUA_ERRSYNTAX;
  size_t i;
  for (i = 0; i < NOTHER; i++) {
    lua_pushnil(L);
    lua_setfield(L, lua_upvalueindex(2), other_names[i][0]);
  }
  lua_settop(L, 3);
  if (firstline) {
    const char *retline;
    if (chunk[0] == '=') {  /* `=expr`, as Lua 5.2 wrote it */
      chunk = lua_pushfstring(L, "return %s", chunk + 1);
      len = strlen(chunk);
      lua_replace(L, 1);  /* keep it anchored */
    }
    retline = lua_pushfstring(L, "return %s;", chunk);
    status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
  }
  if (status != LUA_OK) {
    lua_settop(L, 3);  /* drop what the `return` try left */
    status = luaL_loadbuffer(L, chunk, len, "=stdin");
    if (!lua_toboolean(L, 3) && incomplete(L, status)) {
      lua_pushboolean(L, 1);
      return 1;
    }
    if (status == LUA_ERRSYNTAX)
      hint_syntax(L);
  }
  if (status == LUA_OK) {
    int first = lua_gettop(L);  /* the function, then its results */
    int hinting = hints_on(L, 1);
    status = sl_host_docall(L, 0, LUA_MULTRET);
    if (hinting)
      hints_on(L, 0);
    if (status == LUA_OK)
      print_results(L, first);
  }
  sl_host_report(L, status);
  lua_pushboolean(L, 0);
  return 1;
}


/* Runs the pending statement; keeps it if it needs more lines. */
static void eval_stmt(struct repl *r, int final) {
  lua_State *L = r->L;
  int more = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->eval_ref);
  lua_pushlstring(L, r->stmt.p, r->stmt.n);
  lua_pushboolean(L, strchr(r->stmt.p, '\n') == NULL);
  lua_pushboolean(L, final);
  if (sl_host_report(L, lua_pcall(L, 3, 1, 0)) == LUA_OK) {
    more = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  fflush(stdout);
  if (!more) {
    if (r->edit && r->stmt.n > 0)
      edit_save(r, r->stmt.p);
    r->stmt.n = 0;
  }
}


static void eval_line(struct repl *r) {
  int ok = (r->stmt.n == 0 || text_add(&r->stmt, "\n", 1) == 0) &&
           text_add(&r->stmt, r->line, strlen(r->line)) == 0;
  free(r->line);
  r->line = NULL;
  if (!ok) {
    fputs(SL_HOST_NAME ": not enough memory for the input\n", stderr);
    r->stmt.n = 0;
    return;
  }
  eval_stmt(r, 0);
}

/* }====================================================== */


static int repl_open(struct repl *r, lua_State *L) {
  static const int sigs[NSIGNALS] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH,
                                     SIGCONT};
  struct event_base *base = sl_lua_base(L);
  struct stat st;
  int i;
  memset(r, 0, sizeof(*r));
  r->eval_ref = LUA_NOREF;
  r->print_ref = LUA_NOREF;
  r->L = L;
  r->tty = isatty(STDIN_FILENO);
  r->ev_in = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, r);
  if (r->ev_in == NULL)
    return -1;
  for (i = 0; i < NSIGNALS; i++)
    if ((r->ev_sig[i] = evsignal_new(base, sigs[i], on_signal, r)) == NULL)
      return -1;
  /* epoll refuses plain files (and /dev/null); those never block anyway */
  if (fstat(STDIN_FILENO, &st) != 0)
    r->eof = 1;
  else
    r->watch = r->tty || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
  if (r->tty)
    edit_open(r);
  push_hints(L);
  lua_pushcclosure(L, repl_eval, 2);
  r->eval_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}


static void repl_close(struct repl *r) {
  int i;
  luaL_unref(r->L, LUA_REGISTRYINDEX, r->eval_ref);
  wait_stop(r);
  edit_close(r);
  if (r->ev_in != NULL)
    event_free(r->ev_in);
  for (i = 0; i < NSIGNALS; i++)
    if (r->ev_sig[i] != NULL)
      event_free(r->ev_sig[i]);
  free(r->line);
  free(r->in.p);
  free(r->stmt.p);
}


void sl_repl_run(lua_State *L) {
  struct repl r;
  if (repl_open(&r, L) != 0)
    fputs(SL_HOST_NAME ": cannot watch stdin\n", stderr);
  else {
    while (wait_line(&r)) {
      wait_stop(&r);
      eval_line(&r);
    }
    wait_stop(&r);
    if (r.stmt.n > 0)  /* input ended inside a statement: say why */
      eval_stmt(&r, 1);
    if (r.tty)
      fputs("\n", stdout);  /* leave the shell prompt a line of its own */
    fflush(stdout);
  }
  repl_close(&r);
}


/*
** {======================================================
** Line editing, history and name completion (libedit)
** =======================================================
*/

#ifdef SL_HAVE_LIBEDIT

#define HISTORY_MAX   1000
#define HISTORY_NAME  ".streamlua_history"
#define CHAIN_MAX     8   /* __index tables followed, at most */

/* '.', ':', '[' and ']' do not break words, so `sl.stream.Fi` and
** `root.Dev.Ch[0].Va` reach the completer whole */
#define WORD_BREAK " \t\n\"\\'`@$><=;|&{}()+-*/%^~#,"

/* libedit's callback interface hands lines and completion requests to
** functions without a context argument: the session they serve is here */
static struct repl *edit_session;


static void on_edit_line(char *line) {
  struct repl *r = edit_session;
  if (line == NULL)
    r->eof = 1;  /* Ctrl-D on an empty line */
  else
    r->line = line;
}


static void edit_read(struct repl *r) {
  int avail = 0;
  if (ioctl(STDIN_FILENO, FIONREAD, &avail) == 0 && avail == 0)
    r->eof = 1;  /* readable with nothing to read: the terminal is gone */
  else
    rl_callback_read_char();
}


static void edit_start(const char *prompt) {
  rl_callback_handler_install(prompt, on_edit_line);  /* shows the prompt */
}


static void edit_stop(void) {
  rl_callback_handler_remove();  /* the terminal back in cooked mode */
}


/* The loop owns the signals, so libedit's own handlers are off: a new
** window size is passed on, and after Ctrl-Z and `fg` (the shell put the
** terminal back in cooked mode) the terminal is set up and the line
** drawn again. */
static void edit_signal(int sig) {
  if (sig == SIGWINCH)
    rl_resize_terminal();
  else {
    rl_deprep_terminal();  /* libedit still believes it is raw */
    rl_prep_terminal(0);
    rl_forced_update_display();
  }
}


static void edit_redraw(void) {
  rl_forced_update_display();
}


static void edit_save(struct repl *r, const char *stmt) {
  add_history(stmt);
  if (r->histfile != NULL)
    write_history(r->histfile);  /* errors ignored: history is a comfort */
}


/* $STREAMLUA_HISTORY (empty: no file), else ~/.streamlua_history */
static char *history_path(void) {
  const char *env = getenv("STREAMLUA_HISTORY");
  const char *home = getenv("HOME");
  char *path;
  if (env != NULL)
    return (env[0] != '\0') ? strdup(env) : NULL;
  if (home == NULL || home[0] == '\0')
    return NULL;
  path = malloc(strlen(home) + sizeof("/" HISTORY_NAME));
  if (path != NULL)
    sprintf(path, "%s/" HISTORY_NAME, home);
  return path;
}


/* Replaces the value on the top with its metatable's __index when that
** is a table, or else with its __class (a streamlua object's methods, whose
** __index is a function): 1, or 0 (the value stays) when neither is. */
static int follow_index(lua_State *L) {
  int t = luaL_getmetafield(L, -1, "__index");
  if (t != LUA_TTABLE) {
    if (t != LUA_TNIL) lua_pop(L, 1);
    t = luaL_getmetafield(L, -1, "__class");
    if (t != LUA_TTABLE) {
      if (t != LUA_TNIL) lua_pop(L, 1);
      return 0;
    }
  }
  lua_remove(L, -2);
  return 1;
}

/* Pushes the own fields of the streamlua object on the top (its first user
** value): 1, or 0 (nothing pushed) when it is not one or has none. */
static int push_fields(lua_State *L) {
  if (lua_type(L, -1) != LUA_TUSERDATA || luaL_getmetafield(L, -1, "__class") == LUA_TNIL)
    return 0;
  lua_pop(L, 1);
  if (lua_getiuservalue(L, -1, 1) == LUA_TTABLE)
    return 1;
  lua_pop(L, 1);
  return 0;
}

/* Replaces the value on the top with its field `k` (an integer key when
** index is set), read raw: completion must not run user code, so __index
** is followed only through tables. */
static void field_raw(lua_State *L, const char *k, size_t len, int index) {
  int depth;
  if (!index && push_fields(L)) {
    lua_pushlstring(L, k, len);
    if (lua_rawget(L, -2) != LUA_TNIL) {
      lua_replace(L, -3);
      lua_pop(L, 1);
      return;
    }
    lua_pop(L, 2);
  }
  for (depth = 0; depth < CHAIN_MAX; depth++) {
    if (lua_istable(L, -1)) {
      if (index)
        lua_pushinteger(L, (lua_Integer)strtoll(k, NULL, 10));
      else
        lua_pushlstring(L, k, len);
      if (lua_rawget(L, -2) != LUA_TNIL) {
        lua_remove(L, -2);
        return;
      }
      lua_pop(L, 1);
    }
    if (!follow_index(L)) break;
  }
  lua_pop(L, 1);
  lua_pushnil(L);
}


static int is_name(const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (i > 0 && c >= '0' && c <= '9')))
      return 0;
  }
  return len > 0;
}


/* result[#result + 1] = head .. name, once; stack: result, seen, ... */
static void add_candidate(lua_State *L, const char *head, size_t hlen,
                          const char *name) {
  lua_pushlstring(L, head, hlen);
  lua_pushstring(L, name);
  lua_concat(L, 2);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, 3) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushboolean(L, 1);
    lua_rawset(L, 3);
    lua_rawseti(L, 2, (lua_Integer)lua_rawlen(L, 2) + 1);
  }
  else
    lua_pop(L, 2);
}


/* Adds the names in the table on the top that start with `part` (plen
** bytes); only functions when `methods`; names starting with '_' (and
** '__') only when `part` does. Stack: result, seen, head, ..., table. */
static void add_keys(lua_State *L, const char *part, size_t plen, int methods) {
  lua_pushnil(L);
  while (lua_next(L, -2)) {  /* key at -2, value at -1 */
    size_t klen;
    const char *k = (lua_type(L, -2) == LUA_TSTRING) ?
                    lua_tolstring(L, -2, &klen) : NULL;
    if (k != NULL && klen >= plen && memcmp(k, part, plen) == 0 &&
        is_name(k, klen) && (!methods || lua_isfunction(L, -1)) &&
        (k[0] != '_' || part[0] == '_') &&
        (strncmp(k, "__", 2) != 0 || strncmp(part, "__", 2) == 0))
      add_candidate(L, lua_tostring(L, 4), lua_rawlen(L, 4), k);
    lua_pop(L, 1);
  }
}


/* The start of the path in `word`: after the last '[' or ']' that is not
** part of an integer index `[123]` (`t[k.x` completes `k.x`). */
static const char *path_start(const char *word) {
  const char *p, *start = word;
  for (p = word; *p != '\0'; p++) {
    if (*p == '[') {
      const char *q = p + 1;
      while (*q >= '0' && *q <= '9') q++;
      if (q > p + 1 && *q == ']' && p > start)
        p = q;  /* an index: part of the path */
      else
        start = p + 1;
    }
    else if (*p == ']')
      start = p + 1;
  }
  return start;
}


/*
** complete_collect(word): the completions of `word` (a name, or a path
** such as `sl.stream.Fi`, `frame:getP` or `root.Dev.Ch[0].Va`), as a
** sequence of whole words. Lists the string keys of the table the path
** leads to and of the tables its metatables' __index lead to; after ':'
** only functions; names starting with '_' (and '__') only when asked for.
*/
static int complete_collect(lua_State *L) {
  static const char *const keywords[] = {"and", "break", "do", "else",
    "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true",
    "until", "while", NULL};
  const char *word = luaL_checkstring(L, 1);
  const char *path = path_start(word);
  const char *part = path, *p, *seg = path;
  size_t plen;
  int depth, methods = 0;
  for (p = path; *p != '\0'; p++)
    if (*p == '.' || *p == ':' || *p == ']') {
      part = p + 1;
      methods = (*p == ':');
    }
  plen = strlen(part);
  lua_settop(L, 1);
  lua_newtable(L);  /* 2: the candidates */
  lua_newtable(L);  /* 3: the candidates already listed */
  if (part > path && part[-1] == ']')  /* 4: the head of each candidate */
    lua_pushfstring(L, "%s.", word);   /* `Ch[0]<TAB>` lists `Ch[0].Name` */
  else
    lua_pushlstring(L, word, (size_t)(part - word));
  lua_pushglobaltable(L);
  for (p = path; p < part; p++)  /* walk the path */
    if (*p == '.' || *p == ':' || *p == '[') {
      if (p > seg) field_raw(L, seg, (size_t)(p - seg), 0);
      seg = p + 1;
    }
    else if (*p == ']') {
      field_raw(L, seg, (size_t)(p - seg), 1);
      seg = p + 1;
    }
  if (push_fields(L)) {
    add_keys(L, part, plen, methods);
    lua_pop(L, 1);
  }
  for (depth = 0; depth < CHAIN_MAX; depth++) {
    if (lua_istable(L, -1))
      add_keys(L, part, plen, methods);
    if (!follow_index(L)) break;
  }
  for (depth = 0; part == path && keywords[depth] != NULL; depth++)
    if (strncmp(keywords[depth], part, plen) == 0)
      add_candidate(L, word, (size_t)(path - word), keywords[depth]);
  lua_settop(L, 2);
  return 1;
}


/* rl_completion_matches takes the candidates one at a time from the
** table complete() left on the top of the stack */
static char *complete_next(const char *text, int state) {
  struct repl *r = edit_session;
  char *s = NULL;
  (void)text;
  if (state == 0)
    r->comp_next = 0;
  if (lua_rawgeti(r->L, -1, ++r->comp_next) == LUA_TSTRING)
    s = strdup(lua_tostring(r->L, -1));
  lua_pop(r->L, 1);
  return s;
}


static char **complete(const char *text, int start, int end) {
  lua_State *L = edit_session->L;
  char **matches = NULL;
  (void)start; (void)end;
  rl_attempted_completion_over = 1;  /* no file names in Lua code */
  lua_pushcfunction(L, complete_collect);
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_rawlen(L, -1) > 0)
    matches = rl_completion_matches(text, complete_next);
  lua_pop(L, 1);
  return matches;
}


static void edit_open(struct repl *r) {
  edit_session = r;
  rl_readline_name = "streamlua";  /* for ~/.editrc */
  rl_catch_signals = 0;  /* the loop owns the signals */
  rl_attempted_completion_function = complete;
  rl_basic_word_break_characters = WORD_BREAK;
  rl_completion_append_character = '\0';
  rl_initialize();
  using_history();
  stifle_history(HISTORY_MAX);
  r->histfile = history_path();
  if (r->histfile != NULL)
    read_history(r->histfile);
  r->edit = 1;
}


static void edit_close(struct repl *r) {
  free(r->histfile);
  r->histfile = NULL;
  edit_session = NULL;
}

#else  /* no libedit: a plain line reader, and no history */

static void edit_open(struct repl *r) { (void)r; }
static void edit_close(struct repl *r) { (void)r; }
static void edit_start(const char *prompt) { (void)prompt; }
static void edit_stop(void) { }
static void edit_read(struct repl *r) { (void)r; }
static void edit_signal(int sig) { (void)sig; }
static void edit_redraw(void) { }
static void edit_save(struct repl *r, const char *s) { (void)r; (void)s; }

#endif

/* }====================================================== */
