/*
** sl.utilities.Prbs: Rogue's PRBS generator and checker, with Rogue's
** method names. A Prbs is master and slave, so `prbs >> fifo >> prbs` and
** `a == b` work as for any endpoint.
**
** Two things differ from a plain call into C, both because Lua lives on
** one thread:
**   - genFrame sends synchronously (as Rogue does), so Lua-defined slaves
**     downstream run at once, on the calling Lua thread;
**   - the checker never blocks the Lua thread while rx is disabled (only
**     Lua could enable it again): such a frame is dropped and counted in
**     counters().drops, with a warning. Frames from C threads still wait.
*/
#include <string.h>

#include "../core/clock.h"
#include "lsl.h"
#include "streamlua/prbs.h"

static sl_prbs *check_prbs(lua_State *L) {
  sl_prbs *p = sl_prbs_from_object(sl_lua_check_object(L, 1));
  if (p == NULL) luaL_typeerror(L, 1, "streamlua.Prbs");
  return p;
}

static uint32_t check_u32(lua_State *L, int i) {
  return (uint32_t)sl_check_range(L, i, 0, UINT32_MAX);
}

static int check_bool(lua_State *L, int i) {
  luaL_checktype(L, i, LUA_TBOOLEAN);
  return lua_toboolean(L, i);
}

/* A frame size genFrame/enable accept, or an argument error saying why. */
static uint32_t check_size(lua_State *L, sl_prbs *p, int i) {
  lua_Integer v = luaL_checkinteger(L, i);
  if (v < 0 || v > (lua_Integer)UINT32_MAX ||
      sl_prbs_check_size(p, (uint32_t)v) != SL_OK) {
    int bytes = (int)sl_prbs_get_width(p) / 8;
    luaL_argerror(L, i, lua_pushfstring(L, "Invalid frame size: %I (a multiple "
                  "of %d, at least %d)", v, bytes, 3 * bytes));
  }
  return (uint32_t)v;
}

/*
** Like sendFrame from Lua: Lua-defined slaves reached from here run on
** this Lua thread (a coroutine, maybe), so the state records it as the
** innermost caller while the frame goes out.
*/
static int prbs_gen_frame(lua_State *L) {
  sl_prbs *p = check_prbs(L);
  uint32_t size = check_size(L, p, 2);
  sl_state *st = sl_state_get(L);
  lua_State *outer = st->cur;
  sl_frame *outer_frame = st->cur_frame;
  int outer_idx = st->cur_frame_idx;
  st->cur = L;
  st->cur_frame = NULL;            /* this frame has no box yet */
  sl_pool_req_status(NULL);   /* forget an older refusal on this thread */
  int rc = sl_prbs_gen_frame(p, size);
  st->cur = outer;
  st->cur_frame = outer_frame;
  st->cur_frame_idx = outer_idx;
  sl_lua_check_interrupt(L);       /* a wait downstream gave up */
  if (rc == SL_EINVAL) check_size(L, p, 2);   /* the width changed meanwhile */
  if (rc == SL_ENOMEM) return sl_req_frame_error(L, "genFrame", size);
  if (rc != SL_OK) return sl_status_error(L, "genFrame", rc);
  return 0;
}

static int prbs_enable(lua_State *L) {
  sl_prbs *p = check_prbs(L);
  int rc = sl_prbs_enable(p, check_size(L, p, 2));
  if (rc == SL_EINVAL) check_size(L, p, 2);
  if (rc != SL_OK)
    return luaL_error(L, "enable: cannot start the generator thread (%s)",
                      sl_status_str(rc));
  return 0;
}

/*
** The generator may be waiting for this very thread: a Lua-defined slave
** downstream takes frames from it through a mailbox the loop drains. So
** while the thread winds down the loop is served, as sl.sleep does: the
** frame being sent is finished (up to SL_PRBS_DISABLE_GRACE_US), then a
** send still waiting downstream is told to give up. Inside
** a callback the loop cannot be served; then disable asks, waits briefly,
** and returns; the thread ends once the loop drains, and is joined by the
** next enable, stop or collection.
*/
static int prbs_disable(lua_State *L) {
  sl_prbs *p = check_prbs(L);
  sl_state *st = sl_state_get(L);
  if (!st->in_loop) {   /* the frame being sent is finished, for a while */
    sl_prbs_finish(p);
    int64_t until = sl_clock_us() + SL_PRBS_DISABLE_GRACE_US;
    while (sl_prbs_tx_wait(p, 2000) == SL_ETIMEDOUT && sl_clock_us() < until) {
      if (sl_wait_cancelled()) {
        sl_prbs_disable_nowait(p);
        sl_lua_interrupted(L);
      }
      sl_lua_serve_once(L, 0);
    }
  }
  sl_prbs_disable_nowait(p);
  while (sl_prbs_tx_wait(p, 2000) == SL_ETIMEDOUT) {
    if (st->in_loop) {
      sl_prbs_tx_wait(p, 100000);
      break;
    }
    if (sl_wait_cancelled()) sl_lua_interrupted(L);
    sl_lua_serve_once(L, 0);
  }
  return 0;
}

static int prbs_set_width(lua_State *L) {
  sl_prbs *p = check_prbs(L);
  lua_Integer w = luaL_checkinteger(L, 2);
  int rc = w < 0 || w > 512 ? SL_EINVAL : sl_prbs_set_width(p, (uint32_t)w);
  if (rc == SL_EINVAL)
    return luaL_argerror(L, 2, lua_pushfstring(L, "Invalid width: %I (a "
                         "multiple of 32 from 32 to 512)", w));
  if (rc != SL_OK) return sl_status_error(L, "setWidth", rc);
  return 0;
}

/* setTaps{1, 2, 6, 31}, or a string of tap bytes (Rogue takes a bytearray). */
static int prbs_set_taps(lua_State *L) {
  sl_prbs *p = check_prbs(L);
  size_t n;
  const uint8_t *taps;
  if (lua_type(L, 2) == LUA_TSTRING) {
    taps = (const uint8_t *)lua_tolstring(L, 2, &n);
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    n = (size_t)luaL_len(L, 2);
    uint8_t *t = lua_newuserdatauv(L, n ? n : 1, 0);
    for (size_t i = 0; i < n; i++) {
      lua_geti(L, 2, (lua_Integer)i + 1);
      int isint;
      lua_Integer v = lua_tointegerx(L, -1, &isint);
      if (!isint || v < 0 || v > 255)
        return luaL_argerror(L, 2, lua_pushfstring(L, "tap %d must be a bit "
                             "position 0..255, got %s", (int)i + 1,
                             luaL_tolstring(L, -1, NULL)));
      t[i] = (uint8_t)v;
      lua_pop(L, 1);
    }
    taps = t;
  }
  int rc = sl_prbs_set_taps(p, taps, n);
  if (rc != SL_OK) return sl_status_error(L, "setTaps", rc);
  return 0;
}

static int prbs_get_rx_enable(lua_State *L) {
  lua_pushboolean(L, sl_prbs_get_rx_enable(check_prbs(L)));
  return 1;
}

static int prbs_set_rx_enable(lua_State *L) {
  sl_prbs *p = check_prbs(L);
  sl_prbs_set_rx_enable(p, check_bool(L, 2));
  return 0;
}

/* One getter per counter or rate, as Rogue has them. */
enum { RX_ERRORS, RX_COUNT, RX_BYTES, RX_RATE, RX_BW,
       TX_ERRORS, TX_COUNT, TX_BYTES, TX_RATE, TX_BW };

static int push_stat(lua_State *L, int which) {
  sl_prbs_stats s;
  sl_prbs_get_stats(check_prbs(L), &s);
  const uint64_t ints[] = {s.rx_errors, s.rx_count, s.rx_bytes, 0, 0,
                           s.tx_errors, s.tx_count, s.tx_bytes};
  switch (which) {
    case RX_RATE: lua_pushnumber(L, s.rx_rate); break;
    case RX_BW: lua_pushnumber(L, s.rx_bw); break;
    case TX_RATE: lua_pushnumber(L, s.tx_rate); break;
    case TX_BW: lua_pushnumber(L, s.tx_bw); break;
    default: lua_pushinteger(L, (lua_Integer)ints[which]); break;
  }
  return 1;
}

static int prbs_get_rx_errors(lua_State *L) { return push_stat(L, RX_ERRORS); }
static int prbs_get_rx_count(lua_State *L) { return push_stat(L, RX_COUNT); }
static int prbs_get_rx_bytes(lua_State *L) { return push_stat(L, RX_BYTES); }
static int prbs_get_rx_rate(lua_State *L) { return push_stat(L, RX_RATE); }
static int prbs_get_rx_bw(lua_State *L) { return push_stat(L, RX_BW); }
static int prbs_get_tx_errors(lua_State *L) { return push_stat(L, TX_ERRORS); }
static int prbs_get_tx_count(lua_State *L) { return push_stat(L, TX_COUNT); }
static int prbs_get_tx_bytes(lua_State *L) { return push_stat(L, TX_BYTES); }
static int prbs_get_tx_rate(lua_State *L) { return push_stat(L, TX_RATE); }
static int prbs_get_tx_bw(lua_State *L) { return push_stat(L, TX_BW); }

static int prbs_get_tx_period(lua_State *L) {
  lua_pushinteger(L, sl_prbs_get_tx_period(check_prbs(L)));
  return 1;
}

static int prbs_set_tx_period(lua_State *L) {
  sl_prbs *p = check_prbs(L);
  sl_prbs_set_tx_period(p, check_u32(L, 2));
  return 0;
}

static int prbs_get_tx_seq(lua_State *L) {
  lua_pushinteger(L, sl_prbs_get_tx_seq(check_prbs(L)));
  return 1;
}

static int prbs_set_tx_seq(lua_State *L) {
  sl_prbs *p = check_prbs(L);
  sl_prbs_set_tx_seq(p, check_u32(L, 2));
  return 0;
}

static int prbs_check_payload(lua_State *L) {
  sl_prbs *p = check_prbs(L);
  sl_prbs_check_payload(p, check_bool(L, 2));
  return 0;
}

static int prbs_gen_payload(lua_State *L) {
  sl_prbs *p = check_prbs(L);
  sl_prbs_gen_payload(p, check_bool(L, 2));
  return 0;
}

static int prbs_send_count(lua_State *L) {
  sl_prbs *p = check_prbs(L);
  sl_prbs_send_count(p, check_bool(L, 2));
  return 0;
}

static int prbs_reset_count(lua_State *L) {
  sl_prbs_reset_count(check_prbs(L));
  return 0;
}

static const luaL_Reg prbs_methods[] = {
    {"genFrame", prbs_gen_frame},
    {"enable", prbs_enable},
    {"disable", prbs_disable},
    {"setWidth", prbs_set_width},
    {"setTaps", prbs_set_taps},
    {"getRxEnable", prbs_get_rx_enable},
    {"setRxEnable", prbs_set_rx_enable},
    {"getRxErrors", prbs_get_rx_errors},
    {"getRxCount", prbs_get_rx_count},
    {"getRxBytes", prbs_get_rx_bytes},
    {"getRxRate", prbs_get_rx_rate},
    {"getRxBw", prbs_get_rx_bw},
    {"getTxErrors", prbs_get_tx_errors},
    {"getTxCount", prbs_get_tx_count},
    {"getTxBytes", prbs_get_tx_bytes},
    {"getTxRate", prbs_get_tx_rate},
    {"getTxBw", prbs_get_tx_bw},
    {"getTxPeriod", prbs_get_tx_period},
    {"setTxPeriod", prbs_set_tx_period},
    {"getTxSeq", prbs_get_tx_seq},
    {"setTxSeq", prbs_set_tx_seq},
    {"checkPayload", prbs_check_payload},
    {"genPayload", prbs_gen_payload},
    {"sendCount", prbs_send_count},
    {"resetCount", prbs_reset_count},
    {NULL, NULL}};

static int prbs_new(lua_State *L) {
  luaL_argcheck(L, lua_isnone(L, 1), 1, "no arguments expected");
  sl_state *st = sl_state_get(L);
  sl_error err;
  sl_prbs *p = sl_prbs_new(&err);
  if (p == NULL) return luaL_error(L, "Prbs: %s", err.msg);
  sl_prbs_set_nowait_thread(p, st->main_thread);
  sl_lua_push_object(L, sl_prbs_object(p));
  sl_object_unref(sl_prbs_object(p));
  return 1;
}

static const sl_lua_class prbs_class = {"Prbs", prbs_methods, prbs_new, SL_ROLE_STREAM};

void sl_open_prbs(lua_State *L) {
  sl_lua_class_new(L, &prbs_class);
  lua_setfield(L, -2, "Prbs");
}
