/*
** Boxes and classes. A box is a userdata holding one reference to a C
** graph node; there is one box per node (interned in a weak table keyed by
** the node's address), so callbacks hand Lua the same value it made.
** User value 1 holds the object's own fields (Lua-defined endpoints keep
** their callbacks and state there); user value 2 lists the slaves this
** master feeds, so Lua reachability follows the graph.
*/
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lsl.h"
#include "streamlua/memory.h"

typedef struct box {
  sl_object *obj;
  lua_Integer serial;   /* creation order, for stable graph listings */
} box;

static lua_Integer box_serial_next = 1;

const char sl_boxes_key = 0;

extern const luaL_Reg sl_master_methods[];
extern const luaL_Reg sl_slave_methods[];
extern const luaL_Reg sl_mem_master_methods[];
extern const luaL_Reg sl_mem_slave_methods[];

lua_Integer sl_box_serial(lua_State *L, int i) {
  box *b = (box *)sl_lua_test_box(L, i);
  return b != NULL ? b->serial : 0;
}

sl_master *sl_check_master(lua_State *L, int i) {
  return sl_lua_check_role(L, i, SL_ROLE_STREAM_MASTER)->master;
}

sl_slave *sl_check_slave(lua_State *L, int i) {
  return sl_lua_check_role(L, i, SL_ROLE_STREAM_SLAVE)->slave;
}

sl_slave *sl_to_slave(lua_State *L, int i) {
  i = lua_absindex(L, i);
  if (lua_type(L, i) == LUA_TFUNCTION) {
    sl_lua_slave_new(L, i);
    lua_replace(L, i);
  }
  return sl_check_slave(L, i);
}

static int box_gc(lua_State *L) {
  box *b = lua_touserdata(L, 1);
  if (b->obj != NULL) {
    sl_object *o = b->obj;
    b->obj = NULL;
    sl_object_unref(o);
  }
  return 0;
}

/* The counters a one-line description shows, in this order, when the
** class has them. */
static const char *const tostring_counters[] = {
    "rxFrames", "txFrames", "depth", "drops", "errors", "connections", "open", NULL};

/* The value of counter `name` among c[0..n), or 0. */
static uint64_t counter_value(const sl_counter *c, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(c[i].name, name) == 0) return c[i].value;
  return 0;
}

/* Pushes " rxFrames 9 txFrames 6 ..." for the counters obj has; a depth
** with a bound (`maxDepth` > 0) shows as "depth 3/100". */
static void push_counters(lua_State *L, sl_object *obj) {
  sl_counter c[SL_COUNTERS_MAX];
  size_t n = sl_object_counters(obj, c, SL_COUNTERS_MAX);
  uint64_t max_depth = counter_value(c, n, "maxDepth");
  char text[256];
  size_t used = 0;
  text[0] = '\0';
  for (const char *const *k = tostring_counters; *k != NULL; k++)
    for (size_t i = 0; i < n && used < sizeof text; i++)
      if (strcmp(c[i].name, *k) == 0) {
        int w = snprintf(text + used, sizeof text - used, " %s %llu", *k,
                         (unsigned long long)c[i].value);
        used += (w > 0) ? (size_t)w : 0;
        if (max_depth > 0 && strcmp(*k, "depth") == 0 && used < sizeof text) {
          w = snprintf(text + used, sizeof text - used, "/%llu", (unsigned long long)max_depth);
          used += (w > 0) ? (size_t)w : 0;
        }
        break;
      }
  lua_pushstring(L, text);
}

/* `Fifo "tap" rxFrames 9 txFrames 6 depth 3 drops 0`: the kind, the name
** (its `name` field, read raw), the key counters; `Fifo#12` when unnamed. */
static int box_tostring(lua_State *L) {
  box *b = lua_touserdata(L, 1);
  if (b->obj == NULL) {
    luaL_getmetafield(L, 1, "__name");
    lua_pushfstring(L, "%s (closed)", lua_tostring(L, -1));
    return 1;
  }
  lua_settop(L, 1);
  if (lua_getiuservalue(L, 1, 1) == LUA_TTABLE && lua_getfield(L, 2, "name") == LUA_TSTRING)
    lua_pushfstring(L, "%s \"%s\"", sl_object_kind(b->obj), lua_tostring(L, 3));
  else
    lua_pushfstring(L, "%s#%I", sl_object_kind(b->obj), b->serial);
  push_counters(L, b->obj);
  lua_concat(L, 2);
  return 1;
}

/* Fields first (a Lua-defined endpoint overrides), then the class. */
static int box_index(lua_State *L) {
  if (lua_getiuservalue(L, 1, 1) == LUA_TTABLE) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    lua_pop(L, 1);
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static int box_newindex(lua_State *L) {
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, 1);
  }
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

/* Remembers that master box mi feeds slave box si. */
static void link_add(lua_State *L, int mi, int si) {
  if (lua_getiuservalue(L, mi, 2) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, mi, 2);
  }
  lua_pushvalue(L, si);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 1);
}

void sl_connect(lua_State *L, int mi, int si) {
  mi = lua_absindex(L, mi);
  si = lua_absindex(L, si);
  sl_master *m = sl_check_master(L, mi);
  sl_slave *s = sl_to_slave(L, si);
  int rc = sl_master_add_slave(m, s);
  if (rc != SL_OK) sl_status_error(L, "addSlave", rc);
  link_add(L, mi, si);
}

/* Forgets every link from master box mi to slave box si. */
void sl_unlink(lua_State *L, int mi, int si);
void sl_unlink(lua_State *L, int mi, int si) {
  mi = lua_absindex(L, mi);
  si = lua_absindex(L, si);
  if (lua_getiuservalue(L, mi, 2) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  int t = lua_gettop(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, t), j = 1;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, t, i);
    if (lua_rawequal(L, -1, si)) {
      lua_pop(L, 1);
    } else {
      lua_rawseti(L, t, j++);
    }
  }
  for (; j <= n; j++) {
    lua_pushnil(L);
    lua_rawseti(L, t, j);
  }
  lua_pop(L, 1);
}

static int connect_error(lua_State *L, int a, int b) {
  const char *na = luaL_typename(L, a), *nb = luaL_typename(L, b);
  if (luaL_getmetafield(L, a, "__name") == LUA_TSTRING) na = lua_tostring(L, -1);
  if (luaL_getmetafield(L, b, "__name") == LUA_TSTRING) nb = lua_tostring(L, -1);
  return luaL_error(L, "attempt to connect a '%s' to a '%s'", na, nb);
}

/* The roles of the value at i; a function can become a stream slave. */
static unsigned roles_of(lua_State *L, int i) {
  if (lua_type(L, i) == LUA_TFUNCTION) return SL_ROLE_STREAM_SLAVE;
  return sl_object_roles(sl_lua_test_object(L, i));
}

void sl_lua_unwrap(lua_State *L, int i, const char *hook) {
  i = lua_absindex(L, i);
  int t = lua_type(L, i);
  if (t != LUA_TTABLE && (t != LUA_TUSERDATA || sl_lua_test_box(L, i) == NULL)) return;
  if (lua_getfield(L, i, hook) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return;
  }
  lua_pushvalue(L, i);
  lua_call(L, 1, 1);
  lua_replace(L, i);
}

/* Pushes the two ends of a >> b, each replaced by what its wrapper hook
** returns (_getStreamMaster/_getStreamSlave for a stream link, else
** _getMemoryMaster/_getMemorySlave), and returns how they link:
** SL_ROLE_STREAM, SL_ROLE_MEMORY or 0 (it cannot; the memory ends are
** left). A stream link wins when both could be made. */
static unsigned resolve(lua_State *L, int a, int b) {
  static const char *const hooks[2][2] = {{"_getStreamMaster", "_getStreamSlave"},
                                          {"_getMemoryMaster", "_getMemorySlave"}};
  static const unsigned need[2][2] = {{SL_ROLE_STREAM_MASTER, SL_ROLE_STREAM_SLAVE},
                                      {SL_ROLE_MEMORY_MASTER, SL_ROLE_MEMORY_SLAVE}};
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  for (int k = 0; k < 2; k++) {
    if (k > 0) lua_pop(L, 2);
    lua_pushvalue(L, a);
    sl_lua_unwrap(L, -1, hooks[k][0]);
    lua_pushvalue(L, b);
    sl_lua_unwrap(L, -1, hooks[k][1]);
    if ((roles_of(L, -2) & need[k][0]) && (roles_of(L, -1) & need[k][1]))
      return k == 0 ? SL_ROLE_STREAM : SL_ROLE_MEMORY;
  }
  return 0;
}

/* Links the ends at a and a + 1 (as resolve() pushed them) by `kind`. */
static void link_ends(lua_State *L, unsigned kind, int a) {
  if (kind == SL_ROLE_STREAM)
    sl_connect(L, a, a + 1);
  else if (kind == SL_ROLE_MEMORY)
    sl_mem_master_set_slave(sl_lua_check_object(L, a)->mem_master,
                            sl_lua_check_object(L, a + 1));
  else
    connect_error(L, a, a + 1);
}

void sl_link(lua_State *L, int a, int b) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  unsigned kind = resolve(L, a, b);
  link_ends(L, kind, lua_gettop(L) - 1);
  if (lua_type(L, b) == LUA_TFUNCTION) lua_replace(L, b);   /* the slave made of it */
  else lua_pop(L, 1);
  lua_pop(L, 1);
}

/* a >> b: links and returns b, so chains read left to right. */
static int box_shr(lua_State *L) {
  sl_link(L, 1, 2);
  lua_settop(L, 2);
  return 1;
}

/* b << a: the same link as a >> b; returns a (c << b << a chains). */
static int box_shl(lua_State *L) {
  sl_link(L, 2, 1);
  lua_settop(L, 2);
  return 1;
}

void sl_link_both(lua_State *L, int a, int b) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  unsigned ab = resolve(L, a, b);
  int pab = lua_gettop(L) - 1;
  unsigned ba = resolve(L, b, a);
  int pba = lua_gettop(L) - 1;
  if (ab == 0 || ab != ba) connect_error(L, ab == 0 ? pab : pba, ab == 0 ? pab + 1 : pba + 1);
  link_ends(L, ab, pab);
  link_ends(L, ba, pba);
  lua_pop(L, 4);
}

/* a == b: a feeds b and b feeds a. Lua makes the result a boolean; false
** keeps `==` honest as an identity test on two distinct objects. */
static int box_eq(lua_State *L) {
  sl_link_both(L, 1, 2);
  lua_pushboolean(L, 0);
  return 1;
}

static int object_stop(lua_State *L) {
  sl_object_stop(sl_lua_check_object(L, 1));
  return 0;
}

/* obj:counters() -> {name = value, ...} */
static int object_counters(lua_State *L) {
  sl_counter c[SL_COUNTERS_MAX];
  size_t n = sl_object_counters(sl_lua_check_object(L, 1), c, SL_COUNTERS_MAX);
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)c[i].value);
    lua_setfield(L, -2, c[i].name);
  }
  return 1;
}

/* obj:kind() -> the class name, e.g. "Fifo" */
static int object_kind(lua_State *L) {
  lua_pushstring(L, sl_object_kind(sl_lua_check_object(L, 1)));
  return 1;
}

/* Methods every streamlua object has. */
static const luaL_Reg object_methods[] = {
    {"stop", object_stop},
    {"_stop", object_stop},
    {"counters", object_counters},
    {"kind", object_kind},
    {NULL, NULL}};

static const luaL_Reg box_metameth[] = {
    {"__gc", box_gc},     {"__close", box_gc},   {"__tostring", box_tostring},
    {"__newindex", box_newindex}, {"__shr", box_shr}, {"__shl", box_shl},
    {"__eq", box_eq},     {NULL, NULL}};

static int class_call(lua_State *L) {
  lua_CFunction ctor = lua_tocfunction(L, lua_upvalueindex(1));
  lua_remove(L, 1);   /* the class table: arguments count from the user's first */
  return ctor(L);
}

void sl_lua_class_new(lua_State *L, const sl_lua_class *cls) {
  lua_newtable(L);                                   /* class table */
  int ct = lua_gettop(L);
  luaL_setfuncs(L, object_methods, 0);
  if (cls->roles & SL_ROLE_STREAM_MASTER) luaL_setfuncs(L, sl_master_methods, 0);
  if (cls->roles & SL_ROLE_STREAM_SLAVE) luaL_setfuncs(L, sl_slave_methods, 0);
  if (cls->roles & SL_ROLE_MEMORY_MASTER) {
    luaL_setfuncs(L, sl_mem_master_methods, 0);
    luaL_setfuncs(L, sl_mem_master_rogue_methods, 0);
  }
  if (cls->roles & SL_ROLE_MEMORY_SLAVE) luaL_setfuncs(L, sl_mem_slave_methods, 0);
  if (cls->methods) luaL_setfuncs(L, cls->methods, 0);
  lua_pushfstring(L, "streamlua.%s", cls->name);
  luaL_newmetatable(L, lua_tostring(L, -1));         /* metatable */
  luaL_setfuncs(L, box_metameth, 0);
  lua_pushvalue(L, ct);
  lua_pushcclosure(L, box_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, ct);                              /* for the REPL's completion */
  lua_setfield(L, -2, "__class");
  lua_pushboolean(L, 1);
  lua_rawseti(L, -2, SL_LUA_TAG);
  lua_pop(L, 2);                                     /* metatable, name */
  lua_newtable(L);                                   /* the class's own metatable */
  if (cls->ctor) {
    lua_pushcfunction(L, cls->ctor);
    lua_pushcclosure(L, class_call, 1);
    lua_setfield(L, -2, "__call");
  }
  lua_pushfstring(L, "streamlua.%s class", cls->name);
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, ct);
}

void sl_lua_register_class(lua_State *L, const char *name, const luaL_Reg *methods,
                           lua_CFunction ctor, unsigned roles) {
  sl_lua_class cls = {name, methods, ctor, roles};
  sl_lua_class_new(L, &cls);
}

void sl_lua_push_object(lua_State *L, sl_object *obj) {
  if (obj == NULL) {
    lua_pushnil(L);
    return;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_boxes_key);
  if (lua_rawgetp(L, -1, obj) == LUA_TUSERDATA) {
    box *b = lua_touserdata(L, -1);
    if (b->obj == obj) {
      lua_remove(L, -2);
      return;
    }
  }
  lua_pop(L, 1);
  box *b = lua_newuserdatauv(L, sizeof *b, 2);
  b->obj = NULL;
  if (luaL_getmetatable(L, lua_pushfstring(L, "streamlua.%s", sl_object_kind(obj))) != LUA_TTABLE)
    luaL_error(L, "streamlua: no class for kind '%s'", sl_object_kind(obj));
  lua_setmetatable(L, -3);
  lua_pop(L, 1);                                     /* name */
  b->obj = sl_object_ref(obj);
  b->serial = box_serial_next++;
  /* a Lua-defined endpoint's fields, when its earlier box was collected */
  if (sl_lua_slave_fields(L, obj) || sl_memory_slave_fields(L, obj))
    lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, obj);
  lua_remove(L, -2);
}

/* Called once by luaopen: the weak table of boxes. */
void sl_open_objects(lua_State *L);
void sl_open_objects(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_boxes_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sl_boxes_key);
  } else {
    lua_pop(L, 1);
  }
}
