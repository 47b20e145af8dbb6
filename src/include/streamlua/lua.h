/*
** streamlua/lua.h: the binding's face for C modules, as luv.h is luv's.
**
** A streamlua object in Lua is a full userdata (a "box") whose first field
** is the node's `sl_object *` (NULL once the box is closed) and whose
** metatable, "streamlua.<kind>", carries SL_LUA_TAG = true. One
** box exists per node, so a callback hands Lua the value it made.
**
** Taking objects as arguments needs only this header: the test and check
** functions below are inline and read the box and its metatable, so they
** work in any module, however it is linked. Pushing an object and
** registering a class go through the library (libstreamlua's binding).
**
**   static const sl_class gate_class = {.name = "my.Gate", .destroy = ...};
**   static int gate_new(lua_State *L) {
**     gate *g = gate_new_c();                       -- sl_object_init(&g->obj, &gate_class)
**     sl_lua_push_object(L, &g->obj);               -- the box takes its own reference
**     sl_object_unref(&g->obj);
**     return 1;
**   }
**   int luaopen_gate(lua_State *L) {
**     sl_lua_register_class(L, "my.Gate", gate_methods, gate_new, SL_ROLE_STREAM);
**     return 1;                                     -- the class table: gate.Gate()
**   }
**
** A registered class gets the methods every object has (stop, counters,
** kind), the methods of each role in `roles`, then its own, and the
** operators: `a >> b`, `b << a` and `a == b` link whatever roles the two
** C objects play. Everything here runs on the thread that owns the
** lua_State.
*/
#ifndef STREAMLUA_LUA_H_INCLUDED_
#define STREAMLUA_LUA_H_INCLUDED_

#include <lauxlib.h>
#include <lua.h>

#include "object.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

/* The metatable key marking a streamlua class, with the value true. An
** integer ("slua"), not a field name, so testing a box makes no string: a
** C string pushed costs a string-cache look-up and a strcmp, on every
** argument check of every call. */
#define SL_LUA_TAG ((lua_Integer)0x736c7561)

/* ---- classes and boxes (the library) ---- */

/* Registers class "streamlua.<name>": `methods` (may be NULL), `ctor` the
** __call of the class table (may be NULL), `roles` SL_ROLE_* bits whose
** standard methods the class gets. `name` must be the sl_class name of
** the objects it boxes (sl_object_kind). Leaves the class table on the
** stack. */
void sl_lua_register_class(lua_State *L, const char *name, const luaL_Reg *methods,
                           lua_CFunction ctor, unsigned roles);

/* Pushes the box of obj, made the first time (it takes its own reference
** then); nil for NULL. Raises if no class is registered for its kind. */
void sl_lua_push_object(lua_State *L, sl_object *obj);

/* ---- arguments (inline: no library needed) ---- */

/* The box at i (open or closed), or NULL when i is not one. */
static inline sl_object **sl_lua_test_box(lua_State *L, int i) {
  sl_object **box = (sl_object **)lua_touserdata(L, i);
  if (box == NULL || !lua_getmetatable(L, i)) return NULL;
  int yes = lua_rawgeti(L, -1, SL_LUA_TAG) == LUA_TBOOLEAN && lua_toboolean(L, -1);
  lua_pop(L, 2);
  return yes ? box : NULL;
}

/* The object in the box at i: NULL when i is not a streamlua object or
** its box is closed. */
static inline sl_object *sl_lua_test_object(lua_State *L, int i) {
  sl_object **box = sl_lua_test_box(L, i);
  return box != NULL ? *box : NULL;
}

/* Raises "bad argument #i (<expected> expected, got <__name or type>)". */
static inline int sl_lua_type_error(lua_State *L, int i, const char *expected) {
  const char *got = luaL_typename(L, i);
  if (luaL_getmetafield(L, i, "__name") == LUA_TSTRING) got = lua_tostring(L, -1);
  return luaL_argerror(L, i, lua_pushfstring(L, "%s expected, got %s", expected, got));
}

/* The object at i, or an argument error ("streamlua object expected"), or
** "attempt to use a closed <class>" for a closed box. */
static inline sl_object *sl_lua_check_object(lua_State *L, int i) {
  sl_object *o = sl_lua_test_object(L, i);
  if (o != NULL) return o;
  if (sl_lua_test_box(L, i) == NULL) sl_lua_type_error(L, i, "streamlua object");
  luaL_getmetafield(L, i, "__name");
  luaL_error(L, "attempt to use a closed %s", lua_tostring(L, -1));
  return NULL;
}

/* What a check for `roles` names in its error. */
static inline const char *sl_lua_role_name(unsigned roles) {
  switch (roles) {
    case SL_ROLE_STREAM_MASTER: return "stream master";
    case SL_ROLE_STREAM_SLAVE: return "stream slave";
    case SL_ROLE_MEMORY_MASTER: return "memory master";
    case SL_ROLE_MEMORY_SLAVE: return "memory slave";
    default: return "object that is both master and slave";
  }
}

/* The object at i when it plays every role in `roles`, else NULL. */
static inline sl_object *sl_lua_test_role(lua_State *L, int i, unsigned roles) {
  sl_object *o = sl_lua_test_object(L, i);
  return o != NULL && (sl_object_roles(o) & roles) == roles ? o : NULL;
}

/* The object at i when it plays every role in `roles`, else an argument
** error ("memory master expected, got streamlua.Fifo"). */
static inline sl_object *sl_lua_check_role(lua_State *L, int i, unsigned roles) {
  sl_object *o = sl_lua_test_object(L, i);
  if (o != NULL && (sl_object_roles(o) & roles) == roles) return o;
  if (o == NULL && sl_lua_test_box(L, i) != NULL)
    sl_lua_check_object(L, i);   /* raises: closed */
  sl_lua_type_error(L, i, sl_lua_role_name(roles));
  return NULL;
}

/* The object at i when its class is cls (sl_object_is), else NULL. */
static inline sl_object *sl_lua_test_class(lua_State *L, int i, const sl_class *cls) {
  sl_object *o = sl_lua_test_object(L, i);
  return sl_object_is(o, cls) ? o : NULL;
}

/* The object at i when its class is cls, else an argument error
** ("streamlua.<name> expected, got ..."). */
static inline sl_object *sl_lua_check_class(lua_State *L, int i, const sl_class *cls) {
  sl_object *o = sl_lua_check_object(L, i);
  if (!sl_object_is(o, cls)) {
    lua_pushfstring(L, "streamlua.%s", cls->name);
    sl_lua_type_error(L, i, lua_tostring(L, -1));
  }
  return o;
}

#pragma GCC visibility pop

#endif
