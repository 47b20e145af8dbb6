/*
** Boxes and classes. A box is a userdata holding one reference to a C
** graph node; there is one box per node (interned in a weak table keyed by
** the node's address), so callbacks hand Lua the same value it made.
** User value 1 holds the object's own fields (Lua-defined endpoints keep
** their callbacks and state there); user value 2 lists the slaves this
** master feeds, so Lua reachability follows the graph.
*/
#include <stddef.h>
#include <string.h>

#include "lsl.h"

typedef struct box {
  sl_object *obj;
  lua_Integer serial;   /* creation order, for stable graph listings */
} box;

static lua_Integer box_serial_next = 1;

const char sl_boxes_key = 0;

/* Metatable keys marking a streamlua object and its roles. */
static const char tag_object = 0, tag_master = 0, tag_slave = 0;

extern const luaL_Reg sl_master_methods[];
extern const luaL_Reg sl_slave_methods[];
int sl_lua_slave_fields(lua_State *L, sl_object *obj);

static int has_tag(lua_State *L, int i, const char *tag) {
  if (!lua_getmetatable(L, i)) return 0;
  lua_rawgetp(L, -1, tag);
  int yes = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return yes;
}

lua_Integer sl_box_serial(lua_State *L, int i) {
  box *b = lua_touserdata(L, i);
  return b != NULL && has_tag(L, i, &tag_object) ? b->serial : 0;
}

sl_object *sl_test_object(lua_State *L, int i) {
  box *b = lua_touserdata(L, i);
  if (b == NULL || !has_tag(L, i, &tag_object)) return NULL;
  return b->obj;
}

static int type_error(lua_State *L, int i, const char *expected) {
  const char *got = luaL_typename(L, i);
  if (luaL_getmetafield(L, i, "__name") == LUA_TSTRING) got = lua_tostring(L, -1);
  return luaL_argerror(L, i, lua_pushfstring(L, "%s expected, got %s", expected, got));
}

sl_object *sl_check_object(lua_State *L, int i) {
  box *b = lua_touserdata(L, i);
  if (b == NULL || !has_tag(L, i, &tag_object)) type_error(L, i, "streamlua object");
  if (b->obj == NULL) {
    luaL_getmetafield(L, i, "__name");
    luaL_error(L, "attempt to use a closed %s", lua_tostring(L, -1));
  }
  return b->obj;
}

static sl_object *check_role(lua_State *L, int i, const char *role,
                             size_t offset) {
  box *b = lua_touserdata(L, i);
  if (b == NULL || !has_tag(L, i, &tag_object)) type_error(L, i, role);
  if (b->obj == NULL) sl_check_object(L, i);   /* raises: closed */
  if (*(void **)((char *)b->obj + offset) == NULL) type_error(L, i, role);
  return b->obj;
}

sl_master *sl_check_master(lua_State *L, int i) {
  return check_role(L, i, "stream master", offsetof(sl_object, master))->master;
}

sl_slave *sl_check_slave(lua_State *L, int i) {
  return check_role(L, i, "stream slave", offsetof(sl_object, slave))->slave;
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

static int box_tostring(lua_State *L) {
  box *b = lua_touserdata(L, 1);
  luaL_getmetafield(L, 1, "__name");
  if (b->obj == NULL)
    lua_pushfstring(L, "%s (closed)", lua_tostring(L, -1));
  else
    lua_pushfstring(L, "%s: %p", lua_tostring(L, -1), (void *)b->obj);
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

static int is_master(lua_State *L, int i) {
  sl_object *o = sl_test_object(L, i);
  return o != NULL && o->master != NULL;
}

static int is_slave(lua_State *L, int i) {
  sl_object *o = sl_test_object(L, i);
  return lua_type(L, i) == LUA_TFUNCTION || (o != NULL && o->slave != NULL);
}

/* master >> slave: connects and returns the slave, so chains read left to right. */
static int box_shr(lua_State *L) {
  if (!is_master(L, 1) || !is_slave(L, 2)) return connect_error(L, 1, 2);
  sl_connect(L, 1, 2);
  lua_settop(L, 2);
  return 1;
}

/* slave << master: connects and returns the master (c << b << a chains). */
static int box_shl(lua_State *L) {
  if (!is_master(L, 2) || !is_slave(L, 1)) return connect_error(L, 2, 1);
  sl_connect(L, 2, 1);
  lua_settop(L, 2);
  return 1;
}

static void check_bidir(lua_State *L, int i) {
  sl_object *o = sl_test_object(L, i);
  if (o == NULL || o->master == NULL || o->slave == NULL)
    type_error(L, i, "object that is both master and slave");
}

/* a == b: a feeds b and b feeds a. Lua makes the result a boolean; false
** keeps `==` honest as an identity test on two distinct objects. */
static int box_eq(lua_State *L) {
  check_bidir(L, 1);
  check_bidir(L, 2);
  sl_connect(L, 1, 2);
  sl_connect(L, 2, 1);
  lua_pushboolean(L, 0);
  return 1;
}

static int object_stop(lua_State *L) {
  sl_object_stop(sl_check_object(L, 1));
  return 0;
}

/* obj:counters() -> {name = value, ...} */
static int object_counters(lua_State *L) {
  sl_counter c[SL_COUNTERS_MAX];
  size_t n = sl_object_counters(sl_check_object(L, 1), c, SL_COUNTERS_MAX);
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)c[i].value);
    lua_setfield(L, -2, c[i].name);
  }
  return 1;
}

/* obj:kind() -> the class name, e.g. "Fifo" */
static int object_kind(lua_State *L) {
  lua_pushstring(L, sl_object_kind(sl_check_object(L, 1)));
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
  if (cls->master) luaL_setfuncs(L, sl_master_methods, 0);
  if (cls->slave) luaL_setfuncs(L, sl_slave_methods, 0);
  if (cls->methods) luaL_setfuncs(L, cls->methods, 0);
  lua_pushfstring(L, "streamlua.%s", cls->name);
  luaL_newmetatable(L, lua_tostring(L, -1));         /* metatable */
  luaL_setfuncs(L, box_metameth, 0);
  lua_pushvalue(L, ct);
  lua_pushcclosure(L, box_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 1);
  lua_rawsetp(L, -2, &tag_object);
  if (cls->master) {
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &tag_master);
  }
  if (cls->slave) {
    lua_pushboolean(L, 1);
    lua_rawsetp(L, -2, &tag_slave);
  }
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

void sl_push_object(lua_State *L, sl_object *obj) {
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
  if (sl_lua_slave_fields(L, obj)) lua_setiuservalue(L, -2, 1);
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
