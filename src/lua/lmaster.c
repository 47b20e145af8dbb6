/*
** sl.stream.Master, the master-role methods every master class shares, and
** the pyrogue-style connection helpers.
*/
#include "lsl.h"

void sl_unlink(lua_State *L, int mi, int si);

/* A refusal names the limit when the pool that served the request gave
** one (sl_pool_req_status), so "too large" and "out of memory" differ. */
int sl_req_frame_error(lua_State *L, const char *fn, lua_Integer size) {
  uint64_t limit;
  if (sl_pool_req_status(&limit) == SL_EINVAL)
    return luaL_error(L, "%s: frame of %I bytes exceeds the pool's limit of %I",
                      fn, size, (lua_Integer)limit);
  return luaL_error(L, "%s: cannot allocate %I bytes", fn, size);
}

static int master_req_frame(lua_State *L) {
  sl_master *m = sl_check_master(L, 1);
  lua_Integer size = sl_check_range(L, 2, 0, UINT32_MAX);
  int zc = lua_toboolean(L, 3);
  sl_pool_req_status(NULL);   /* forget an older refusal on this thread */
  sl_frame *f = sl_master_req_frame(m, (uint32_t)size, zc);
  if (f == NULL) return sl_req_frame_error(L, "reqFrame", size);
  sl_push_frame(L, f);
  sl_frame_unref(f);
  return 1;
}

/*
** Delivery is synchronous: Lua-defined slaves reached from here run on
** this Lua thread, which the state records as the innermost caller.
*/
static int master_send_frame(lua_State *L) {
  sl_master *m = sl_check_master(L, 1);
  sl_frame *f = sl_check_frame(L, 2);
  if (sl_frame_locked_by_me(f))
    return luaL_error(L, "sendFrame: the frame is locked; release the lock "
                      "before sending it");
  sl_state *st = sl_state_get(L);
  lua_State *outer = st->cur;
  sl_frame *outer_frame = st->cur_frame;
  int outer_idx = st->cur_frame_idx;
  st->cur = L;                 /* Lua slaves get the caller's own box */
  st->cur_frame = f;
  st->cur_frame_idx = 2;
  sl_master_send_frame(m, f);
  st->cur = outer;
  st->cur_frame = outer_frame;
  st->cur_frame_idx = outer_idx;
  sl_lua_check_interrupt(L);   /* a wait downstream gave up */
  return 0;
}

/* The end at i, unwrapped in place through `hook` (sl_lua_unwrap), must
** play `role` (a function may be a stream slave); else the error names
** argument `arg`. */
static void check_end(lua_State *L, int i, int arg, const char *hook, unsigned role) {
  sl_lua_unwrap(L, i, hook);
  if (role == SL_ROLE_STREAM_SLAVE && lua_type(L, i) == LUA_TFUNCTION) return;
  if (sl_lua_test_role(L, i, role) != NULL) return;
  if (sl_lua_test_box(L, i) != NULL && sl_lua_test_object(L, i) == NULL)
    sl_lua_check_object(L, i);   /* raises: closed */
  const char *got = luaL_typename(L, i);
  if (luaL_getmetafield(L, i, "__name") == LUA_TSTRING) got = lua_tostring(L, -1);
  luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", sl_lua_role_name(role), got));
}

/* Arguments 1 and 2 as master and slave of a stream link, unwrapped. */
static void check_pair(lua_State *L) {
  lua_settop(L, 2);
  check_end(L, 1, 1, "_getStreamMaster", SL_ROLE_STREAM_MASTER);
  check_end(L, 2, 2, "_getStreamSlave", SL_ROLE_STREAM_SLAVE);
}

/* master:addSlave(slave) and sl.streamConnect(master, slave) -> slave: a
** wrapper as given, a function as the slave made of it. */
static int master_add_slave(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  check_end(L, 1, 1, "_getStreamMaster", SL_ROLE_STREAM_MASTER);
  check_end(L, 2, 2, "_getStreamSlave", SL_ROLE_STREAM_SLAVE);
  int wrapped = !lua_rawequal(L, 2, 3);
  sl_connect(L, 1, 2);
  lua_settop(L, wrapped ? 3 : 2);
  return 1;
}

/* Returns true if the slave was connected (and now is not). */
static int master_remove_slave(lua_State *L) {
  check_pair(L);
  sl_master *m = sl_check_master(L, 1);
  sl_slave *s = sl_check_slave(L, 2);
  int rc = sl_master_remove_slave(m, s);
  if (rc == SL_ENOMEM) return sl_status_error(L, "removeSlave", rc);
  if (rc == SL_ECANCELED) {    /* removed, but a delivery may be under way */
    sl_unlink(L, 1, 2);
    return sl_lua_interrupted(L);
  }
  /* Frames sent before the removal may still wait in a Lua slave's
  ** mailbox: hand them over now, so nothing arrives after we return. */
  sl_lua_slave_flush(sl_lua_check_object(L, 2));
  sl_unlink(L, 1, 2);
  lua_pushboolean(L, rc == SL_OK);
  return 1;
}

/* m:getSlaves() -> {slave, ...}, attachment order: the primary first */
static int master_get_slaves(lua_State *L) {
  sl_master *m = sl_check_master(L, 1);
  lua_newtable(L);
  for (size_t i = 0;; i++) {
    sl_slave *s = sl_master_get_slave(m, i);
    if (s == NULL) break;
    sl_lua_push_object(L, s->owner);
    sl_object_unref(s->owner);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int master_slave_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_master_slave_count(sl_check_master(L, 1)));
  return 1;
}

const luaL_Reg sl_master_methods[] = {
    {"reqFrame", master_req_frame},
    {"_reqFrame", master_req_frame},
    {"sendFrame", master_send_frame},
    {"_sendFrame", master_send_frame},
    {"addSlave", master_add_slave},
    {"_addSlave", master_add_slave},
    {"removeSlave", master_remove_slave},
    {"_removeSlave", master_remove_slave},
    {"_slaveCount", master_slave_count},
    {"getSlaves", master_get_slaves},
    {"slaveCount", master_slave_count},
    {NULL, NULL}};

static int master_new(lua_State *L) {
  luaL_argcheck(L, lua_isnoneornil(L, 1) || lua_istable(L, 1), 1,
                "table or nothing expected");
  lua_settop(L, 1);
  sl_error err;
  sl_object *obj = sl_master_new(&err);
  if (obj == NULL) return luaL_error(L, "Master: %s", err.msg);
  sl_lua_push_object(L, obj);
  sl_object_unref(obj);
  if (lua_istable(L, 1)) {   /* fields for a Lua-defined master */
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
  }
  return 1;
}

static const sl_lua_class master_class = {"Master", NULL, master_new,
                                          SL_ROLE_STREAM_MASTER};

/* sl.streamConnectBiDir(a, b): a feeds b, b feeds a; each end of each
** link through its wrapper hook, both checked before either is made. */
static int stream_connect_bidir(lua_State *L) {
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  check_end(L, 1, 1, "_getStreamMaster", SL_ROLE_STREAM_MASTER);
  check_end(L, 2, 2, "_getStreamSlave", SL_ROLE_STREAM_SLAVE);
  check_end(L, 3, 2, "_getStreamMaster", SL_ROLE_STREAM_MASTER);
  check_end(L, 4, 1, "_getStreamSlave", SL_ROLE_STREAM_SLAVE);
  sl_connect(L, 1, 2);
  sl_connect(L, 3, 4);
  return 0;
}

/* sl.streamDisconnect(master, slave) -> true if they were connected */
static int stream_disconnect(lua_State *L) {
  return master_remove_slave(L);
}

static const luaL_Reg connect_funcs[] = {
    {"streamConnect", master_add_slave},
    {"streamConnectBiDir", stream_connect_bidir},
    {"streamDisconnect", stream_disconnect},
    {NULL, NULL}};

/* Expects the module table at -2 and the stream table at -1. */
void sl_open_master(lua_State *L) {
  sl_lua_class_new(L, &master_class);
  lua_setfield(L, -2, "Master");
  luaL_setfuncs(L, connect_funcs, 0);    /* also in sl.stream */
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, connect_funcs, 0);
  lua_pop(L, 1);
}
