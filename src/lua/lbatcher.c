/*
** sl.batcher: the AXI-stream batcher (batcher.h).
**
**   local split = sl.batcher.SplitterV2()     -- super-frames in, records out
**   local comb = sl.batcher.CombinerV1(2)     -- frames in, super-frames out
**   _ = src >> comb;  comb:sendBatch();  print(comb:getCount())
**
** Splitters and inverters are stream masters and slaves with no methods of
** their own; combiners add sendBatch(), getCount() and setMaxSize(bytes) /
** getMaxSize(), the bound on the super-frame.
*/
#include "lsl.h"
#include "streamlua/batcher.h"

static sl_batch_combiner *check_combiner(lua_State *L) {
  sl_batch_combiner *c = sl_batch_combiner_from_object(sl_lua_check_object(L, 1));
  if (c == NULL) sl_lua_type_error(L, 1, "batcher combiner");
  return c;
}

/* comb:sendBatch(): one super-frame of every queued frame (none: no-op). */
static int combiner_send(lua_State *L) {
  int rc = sl_batch_combiner_send(check_combiner(L));
  if (rc != SL_OK) return sl_status_error(L, "sendBatch", rc);
  return 0;
}

static int combiner_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_batch_combiner_count(check_combiner(L)));
  return 1;
}

/* comb:setMaxSize(bytes): the bound on the super-frame (default 64 MiB,
** never more); frames that would pass it are dropped, counted, logged. */
static int combiner_set_max(lua_State *L) {
  sl_batch_combiner *c = check_combiner(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  if (n < 0 || sl_batch_combiner_set_max(c, (uint64_t)n) != SL_OK)
    return luaL_argerror(L, 2, lua_pushfstring(L, "bytes from the header's size to %I expected",
                                               (lua_Integer)SL_BATCH_COMBINER_MAX));
  return 0;
}

static int combiner_get_max(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_batch_combiner_max(check_combiner(L)));
  return 1;
}

static const luaL_Reg combiner_methods[] = {
    {"sendBatch", combiner_send}, {"getCount", combiner_count},
    {"setMaxSize", combiner_set_max}, {"getMaxSize", combiner_get_max}, {NULL, NULL}};

/* Pushes a new node's box, or raises `who: why`. */
static int push_new(lua_State *L, sl_object *o, const char *who, const sl_error *err) {
  if (o == NULL) return luaL_error(L, "%s: %s", who, err->msg);
  sl_lua_push_object(L, o);
  sl_object_unref(o);
  return 1;
}

static int push_splitter(lua_State *L, int version) {
  sl_error err;
  sl_object *o = sl_batch_splitter_object(sl_batch_splitter_new(version, &err));
  return push_new(L, o, version == 1 ? "SplitterV1" : "SplitterV2", &err);
}

static int push_inverter(lua_State *L, int version) {
  sl_error err;
  sl_object *o = sl_batch_inverter_object(sl_batch_inverter_new(version, &err));
  return push_new(L, o, version == 1 ? "InverterV1" : "InverterV2", &err);
}

static int splitter_v1(lua_State *L) { return push_splitter(L, 1); }
static int splitter_v2(lua_State *L) { return push_splitter(L, 2); }
static int inverter_v1(lua_State *L) { return push_inverter(L, 1); }
static int inverter_v2(lua_State *L) { return push_inverter(L, 2); }

/* CombinerV1(width): width code 0..5 (AXI width 2 << width bytes). */
static int combiner_v1(lua_State *L) {
  lua_Integer w = luaL_checkinteger(L, 1);
  if (w < 0 || w > SL_BATCH_MAX_WIDTH)
    return luaL_argerror(L, 1, lua_pushfstring(L, "Invalid width %I (0 to 5)", w));
  sl_error err;
  sl_batch_combiner *c = sl_batch_combiner_new(1, (uint8_t)w, &err);
  return push_new(L, sl_batch_combiner_object(c), "CombinerV1", &err);
}

static int combiner_v2(lua_State *L) {
  sl_error err;
  sl_batch_combiner *c = sl_batch_combiner_new(2, 0, &err);
  return push_new(L, sl_batch_combiner_object(c), "CombinerV2", &err);
}

static const sl_lua_class classes[] = {
    {"batcher.SplitterV1", NULL, splitter_v1, SL_ROLE_STREAM},
    {"batcher.SplitterV2", NULL, splitter_v2, SL_ROLE_STREAM},
    {"batcher.InverterV1", NULL, inverter_v1, SL_ROLE_STREAM},
    {"batcher.InverterV2", NULL, inverter_v2, SL_ROLE_STREAM},
    {"batcher.CombinerV1", combiner_methods, combiner_v1, SL_ROLE_STREAM},
    {"batcher.CombinerV2", combiner_methods, combiner_v2, SL_ROLE_STREAM}};

void sl_open_batcher(lua_State *L) {
  lua_newtable(L);                                   /* sl.batcher */
  for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
    sl_lua_class_new(L, &classes[i]);
    lua_setfield(L, -2, classes[i].name + sizeof "batcher." - 1);
  }
  lua_setfield(L, -2, "batcher");
}
