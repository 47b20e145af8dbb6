/*
** sl.stream.Frame and its lock handle. A frame box holds one reference
** to the C frame; the payload stays in C memory, so the binding steps the
** collector by the bytes it hands to Lua (see sl_push_frame) to keep a
** fast stream into Lua in bounded memory.
*/
#include <stdio.h>
#include <string.h>

#include "lsl.h"

typedef struct frame_box {
  sl_frame *f;
} frame_box;

typedef struct lock_box {
  sl_frame *f;         /* holds a reference while the box lives */
  int held;
} lock_box;

/* Bytes of frames handed to Lua before the collector takes a step. */
#define GC_STEP_BYTES (1u << 20)

const char sl_frame_mt_key = 0;

void sl_push_frame(lua_State *L, sl_frame *f) {
  sl_push_frame_in(L, sl_state_get(L), f);
}

void sl_push_frame_in(lua_State *L, sl_state *st, sl_frame *f) {
  frame_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->f = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_frame_mt_key);
  lua_setmetatable(L, -2);
  b->f = sl_frame_ref(f);
  st->gc_debt += sl_frame_get_size(f);   /* the box itself Lua counts */
  if (st->gc_debt >= GC_STEP_BYTES) {
    lua_gc(L, LUA_GCSTEP, (int)(st->gc_debt >> 10));
    st->gc_debt = 0;
  }
}

/* luaL_checkudata without the by-name registry lookup. */
static frame_box *to_frame_box(lua_State *L, int i) {
  frame_box *b = lua_touserdata(L, i);
  if (b == NULL || !lua_getmetatable(L, i)) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_frame_mt_key);
  int ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return ok ? b : NULL;
}

sl_frame *sl_check_frame(lua_State *L, int i) {
  frame_box *b = to_frame_box(L, i);
  if (b == NULL) luaL_checkudata(L, i, SL_FRAME_MT);   /* raises the usual error */
  if (b->f == NULL) luaL_error(L, "attempt to use a released Frame");
  return b->f;
}

/*
** Offsets and counts are checked one at a time against what is left, so
** no sum of two Lua integers is ever formed (read(1, math.maxinteger)).
*/
static int frame_write(lua_State *L) {
  sl_frame *f = sl_check_frame(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  uint32_t size = sl_frame_get_size(f);
  lua_Integer off = sl_opt_range(L, 3, 0, 0, size);
  if (len > (uint64_t)(size - off))
    return luaL_argerror(L, 2, lua_pushfstring(L, "%I bytes at offset %I go "
                         "beyond the frame's size (%I)", (lua_Integer)len, off,
                         (lua_Integer)size));
  sl_frame_write(f, s, (uint32_t)off, (uint32_t)len);
  return 0;
}

/* The payload bytes [offset, offset+count) as a string; count defaults to
** the rest, and so does 0 when zero_is_rest (Rogue's getBa). */
static int read_range(lua_State *L, int zero_is_rest) {
  sl_frame *f = sl_check_frame(L, 1);
  uint32_t payload = sl_frame_get_payload(f);
  lua_Integer off = sl_opt_range(L, 2, 0, 0, payload);
  lua_Integer count = sl_opt_range(L, 3, payload - off, 0, payload - off);
  if (zero_is_rest && count == 0) count = payload - off;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)count);
  sl_frame_read(f, p, (uint32_t)off, (uint32_t)count);
  luaL_pushresultsize(&b, (size_t)count);
  return 1;
}

/* frame:read([offset [, count]]) */
static int frame_read(lua_State *L) { return read_range(L, 0); }

/* frame:getBa([offset [, count]]): Rogue's; count 0 means the rest. */
static int frame_get_ba(lua_State *L) { return read_range(L, 1); }

static int frame_get_size(lua_State *L) {
  lua_pushinteger(L, sl_frame_get_size(sl_check_frame(L, 1)));
  return 1;
}

static int frame_get_payload(lua_State *L) {
  lua_pushinteger(L, sl_frame_get_payload(sl_check_frame(L, 1)));
  return 1;
}

static int frame_get_available(lua_State *L) {
  lua_pushinteger(L, sl_frame_get_available(sl_check_frame(L, 1)));
  return 1;
}

static void payload_result(lua_State *L, sl_frame *f, const char *fn, int rc,
                           lua_Integer want) {
  if (rc != SL_OK)
    luaL_error(L, "%s: payload %I is outside the frame's size (%d)", fn, want,
               (int)sl_frame_get_size(f));
}

static int frame_set_payload(lua_State *L) {
  sl_frame *f = sl_check_frame(L, 1);
  lua_Integer n = sl_check_range(L, 2, 0, UINT32_MAX);
  payload_result(L, f, "setPayload", sl_frame_set_payload(f, (uint32_t)n), n);
  return 0;
}

static int frame_min_payload(lua_State *L) {
  sl_frame *f = sl_check_frame(L, 1);
  lua_Integer n = sl_check_range(L, 2, 0, UINT32_MAX);
  payload_result(L, f, "minPayload", sl_frame_min_payload(f, (uint32_t)n), n);
  return 0;
}

static int frame_adjust_payload(lua_State *L) {
  sl_frame *f = sl_check_frame(L, 1);
  lua_Integer d = sl_check_range(L, 2, -(lua_Integer)UINT32_MAX, UINT32_MAX);
  payload_result(L, f, "adjustPayload", sl_frame_adjust_payload(f, d),
                 (lua_Integer)sl_frame_get_payload(f) + d);
  return 0;
}

#define FRAME_FIELD(get, set, cget, cset, max, type)                  \
  static int get(lua_State *L) {                                      \
    lua_pushinteger(L, cget(sl_check_frame(L, 1)));                   \
    return 1;                                                         \
  }                                                                   \
  static int set(lua_State *L) {                                      \
    sl_frame *f = sl_check_frame(L, 1);                               \
    cset(f, (type)sl_check_range(L, 2, 0, max));                         \
    return 0;                                                         \
  }

FRAME_FIELD(frame_get_channel, frame_set_channel, sl_frame_get_channel,
            sl_frame_set_channel, 0xff, uint8_t)
FRAME_FIELD(frame_get_error, frame_set_error, sl_frame_get_error,
            sl_frame_set_error, 0xff, uint8_t)
FRAME_FIELD(frame_get_flags, frame_set_flags, sl_frame_get_flags,
            sl_frame_set_flags, 0xffff, uint16_t)
FRAME_FIELD(frame_get_first_user, frame_set_first_user,
            sl_frame_get_first_user, sl_frame_set_first_user, 0xff, uint8_t)
FRAME_FIELD(frame_get_last_user, frame_set_last_user, sl_frame_get_last_user,
            sl_frame_set_last_user, 0xff, uint8_t)

static int frame_lock(lua_State *L) {
  sl_frame *f = sl_check_frame(L, 1);
  if (sl_frame_locked_by_me(f))
    return luaL_error(L, "lock: the frame is already locked by this thread");
  lock_box *lb = lua_newuserdatauv(L, sizeof *lb, 0);
  lb->f = NULL;
  lb->held = 0;
  luaL_setmetatable(L, SL_FRAMELOCK_MT);
  lb->f = sl_frame_ref(f);
  sl_frame_lock(f);
  lb->held = 1;
  return 1;
}

static int frame_gc(lua_State *L) {
  frame_box *b = luaL_checkudata(L, 1, SL_FRAME_MT);
  if (b->f != NULL) {
    sl_frame *f = b->f;
    b->f = NULL;
    sl_frame_unref(f);
  }
  return 0;
}

static int frame_len(lua_State *L) {
  lua_pushinteger(L, sl_frame_get_payload(sl_check_frame(L, 1)));
  return 1;
}

static int frame_tostring(lua_State *L) {
  frame_box *b = luaL_checkudata(L, 1, SL_FRAME_MT);
  if (b->f == NULL) {
    lua_pushliteral(L, "Frame (released)");
    return 1;
  }
  sl_frame *f = b->f;
  char flags[8];
  snprintf(flags, sizeof flags, "%04x", (unsigned)sl_frame_get_flags(f));
  lua_pushfstring(L, "Frame(payload=%d, size=%d, channel=%d, error=%d, "
                  "flags=0x%s)", (int)sl_frame_get_payload(f),
                  (int)sl_frame_get_size(f), (int)sl_frame_get_channel(f),
                  (int)sl_frame_get_error(f), flags);
  return 1;
}

static int frame_eq(lua_State *L) {
  frame_box *a = luaL_testudata(L, 1, SL_FRAME_MT);
  frame_box *b = luaL_testudata(L, 2, SL_FRAME_MT);
  lua_pushboolean(L, a != NULL && b != NULL && a->f == b->f);
  return 1;
}

static const luaL_Reg frame_meth[] = {
    {"write", frame_write},
    {"read", frame_read},
    {"getBa", frame_get_ba},
    {"getSize", frame_get_size},
    {"getPayload", frame_get_payload},
    {"getAvailable", frame_get_available},
    {"setPayload", frame_set_payload},
    {"minPayload", frame_min_payload},
    {"adjustPayload", frame_adjust_payload},
    {"getChannel", frame_get_channel},
    {"setChannel", frame_set_channel},
    {"getError", frame_get_error},
    {"setError", frame_set_error},
    {"getFlags", frame_get_flags},
    {"setFlags", frame_set_flags},
    {"getFirstUser", frame_get_first_user},
    {"setFirstUser", frame_set_first_user},
    {"getLastUser", frame_get_last_user},
    {"setLastUser", frame_set_last_user},
    {"lock", frame_lock},
    {NULL, NULL}};

static const luaL_Reg frame_metameth[] = {
    {"__index", NULL},   /* placeholder: the method table */
    {"__gc", frame_gc},
    {"__close", frame_gc},
    {"__len", frame_len},
    {"__tostring", frame_tostring},
    {"__eq", frame_eq},
    {NULL, NULL}};

/* ---- the lock handle ---- */

static lock_box *check_lock(lua_State *L) {
  return luaL_checkudata(L, 1, SL_FRAMELOCK_MT);
}

static int lock_unlock(lua_State *L) {
  lock_box *lb = check_lock(L);
  if (lb->held) {
    lb->held = 0;
    sl_frame_unlock(lb->f);
  }
  return 0;
}

static int lock_lock(lua_State *L) {
  lock_box *lb = check_lock(L);
  if (lb->f == NULL) return luaL_error(L, "lock: the handle is released");
  if (!lb->held) {
    if (sl_frame_locked_by_me(lb->f))
      return luaL_error(L, "lock: the frame is already locked by this thread");
    sl_frame_lock(lb->f);
    lb->held = 1;
  }
  return 0;
}

static int lock_gc(lua_State *L) {
  lock_box *lb = check_lock(L);
  lock_unlock(L);
  if (lb->f != NULL) {
    sl_frame_unref(lb->f);
    lb->f = NULL;
  }
  return 0;
}

static int lock_tostring(lua_State *L) {
  lock_box *lb = check_lock(L);
  lua_pushstring(L, lb->held ? "FrameLock (held)" : "FrameLock (released)");
  return 1;
}

static const luaL_Reg lock_meth[] = {
    {"lock", lock_lock}, {"unlock", lock_unlock}, {NULL, NULL}};

static const luaL_Reg lock_metameth[] = {
    {"__index", NULL}, {"__gc", lock_gc}, {"__close", lock_unlock},
    {"__tostring", lock_tostring}, {NULL, NULL}};

void sl_lua_createmeta(lua_State *L, const char *name, const luaL_Reg *meth,
                       const luaL_Reg *metameth) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, metameth, 0);
  lua_newtable(L);
  luaL_setfuncs(L, meth, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
  lua_remove(L, -2);   /* leaves the method table */
}

/* Sets stream.Frame (the method table) in the table at the top. */
void sl_open_frame(lua_State *L) {
  sl_lua_createmeta(L, SL_FRAMELOCK_MT, lock_meth, lock_metameth);
  lua_setfield(L, -2, "FrameLock");
  sl_lua_createmeta(L, SL_FRAME_MT, frame_meth, frame_metameth);
  luaL_getmetatable(L, SL_FRAME_MT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &sl_frame_mt_key);
  lua_setfield(L, -2, "Frame");
}
