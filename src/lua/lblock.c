/*
** sl.memory.Block: a register block from Lua (memory.h has the C side),
** and sl.memory.bitCopy.
**
**   local blk = sl.memory.Block(0x100, 8)   -- a memory master: blk >> hub
**   blk:setUInt(4, 12, 0xabc)              -- into the shadow, no bus
**   blk:start(sl.memory.Write, 0, 4)       -- one transaction of the block
**   local err = blk:wait()                 -- nil, or its error text
**
** A Block is a memory Master too (read, write, setTimeout, reqMinAccess,
** ...). Transactions are for the main thread: wait serves the loop like
** m:read does, so a slave completing from a timer or another thread is
** not a deadlock. A completion landing from another thread wakes the
** loop through the block's notifier.
*/
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "lsl.h"
#include "streamlua/memory.h"

/* The block at argument 1. */
static sl_block *check_block(lua_State *L) {
  sl_object *o = sl_lua_test_object(L, 1);
  sl_block *b = sl_block_from_object(o);
  if (b == NULL) sl_lua_type_error(L, 1, "streamlua.memory.Block");
  return b;
}

/* ---- argument checks: every error names the function and argument ---- */

static uint64_t shadow_bits(sl_block *b) { return (uint64_t)sl_block_size(b) * 8; }

/* bitOffset at i, bitSize at i + 1 (1..max), inside the shadow. */
static void check_field(lua_State *L, sl_block *b, int i, lua_Integer max,
                        uint64_t *bit, uint64_t *nbits) {
  uint64_t all = shadow_bits(b);
  *bit = (uint64_t)sl_check_range(L, i, 0, (lua_Integer)all - 1);
  *nbits = (uint64_t)sl_check_range(L, i + 1, 1, max < (lua_Integer)all ? max : (lua_Integer)all);
  if (*nbits > all - *bit)
    luaL_argerror(L, i + 1, lua_pushfstring(L,
        "bitOffset %I + bitSize %I beyond the shadow's %I bits",
        (lua_Integer)*bit, (lua_Integer)*nbits, (lua_Integer)all));
}

/* low at i, n at i + 1 (nmin..), a byte range inside the shadow. */
static void check_bytes(lua_State *L, sl_block *b, int i, lua_Integer nmin,
                        uint32_t *low, uint32_t *n) {
  lua_Integer size = sl_block_size(b);
  *low = (uint32_t)sl_check_range(L, i, 0, size - nmin);
  *n = (uint32_t)sl_check_range(L, i + 1, nmin, size - *low);
}

/* ---- the shadow ---- */

/* blk:setUInt(bitOffset, bitSize, raw): raw truncated to bitSize bits. */
static int block_set_uint(lua_State *L) {
  sl_block *b = check_block(L);
  uint64_t bit, nbits;
  check_field(L, b, 2, 64, &bit, &nbits);
  lua_Integer v = luaL_checkinteger(L, 4);
  sl_block_set_uint(b, bit, (uint32_t)nbits, (uint64_t)v);
  return 0;
}

/* blk:getUInt(bitOffset, bitSize) -> zero-extended (64 bits wrap). */
static int block_get_uint(lua_State *L) {
  sl_block *b = check_block(L);
  uint64_t bit, nbits, v = 0;
  check_field(L, b, 2, 64, &bit, &nbits);
  sl_block_get_uint(b, bit, (uint32_t)nbits, &v);
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

/* blk:getInt(bitOffset, bitSize) -> sign-extended from bitSize. */
static int block_get_int(lua_State *L) {
  sl_block *b = check_block(L);
  uint64_t bit, nbits, v = 0;
  check_field(L, b, 2, 64, &bit, &nbits);
  sl_block_get_uint(b, bit, (uint32_t)nbits, &v);
  if (nbits < 64 && (v >> (nbits - 1)) & 1) v |= ~(uint64_t)0 << nbits;
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

/* blk:setBits(bitOffset, bitSize, s [, srcBit]): bits srcBit.. of s. */
static int block_set_bits(lua_State *L) {
  sl_block *b = check_block(L);
  uint64_t bit, nbits;
  check_field(L, b, 2, LUA_MAXINTEGER, &bit, &nbits);
  size_t len;
  const char *s = luaL_checklstring(L, 4, &len);
  uint64_t have = (uint64_t)len * 8;
  lua_Integer sbit = sl_opt_range(L, 5, 0, 0, LUA_MAXINTEGER);
  if ((uint64_t)sbit > have || nbits > have - (uint64_t)sbit)
    luaL_argerror(L, 4, lua_pushfstring(L,
        "srcBit %I + bitSize %I beyond the string's %I bits", sbit,
        (lua_Integer)nbits, (lua_Integer)have));
  sl_block_set_bits(b, bit, nbits, (const uint8_t *)s, (uint64_t)sbit);
  return 0;
}

/* blk:getBits(bitOffset, bitSize) -> string of ceil(bitSize/8) bytes. */
static int block_get_bits(lua_State *L) {
  sl_block *b = check_block(L);
  uint64_t bit, nbits;
  check_field(L, b, 2, LUA_MAXINTEGER, &bit, &nbits);
  luaL_Buffer buf;
  size_t n = (size_t)((nbits + 7) / 8);
  uint8_t *out = (uint8_t *)luaL_buffinitsize(L, &buf, n);
  sl_block_get_bits(b, bit, nbits, out);
  luaL_pushresultsize(&buf, n);
  return 1;
}

/* blk:shadow([low [, n]]) -> the shadow's bytes (all of them; from low). */
static int block_shadow(lua_State *L) {
  sl_block *b = check_block(L);
  lua_Integer size = sl_block_size(b);
  uint32_t low = (uint32_t)sl_opt_range(L, 2, 0, 0, size);
  uint32_t n = (uint32_t)sl_opt_range(L, 3, size - low, 0, size - low);
  luaL_Buffer buf;
  uint8_t *out = (uint8_t *)luaL_buffinitsize(L, &buf, n);
  sl_block_get_shadow(b, low, n, out);
  luaL_pushresultsize(&buf, n);
  return 1;
}

/* blk:setShadow(low, s): the bytes of s from shadow byte low. */
static int block_set_shadow(lua_State *L) {
  sl_block *b = check_block(L);
  lua_Integer size = sl_block_size(b);
  uint32_t low = (uint32_t)sl_check_range(L, 2, 0, size);
  size_t n;
  const char *s = luaL_checklstring(L, 3, &n);
  if (n > (size_t)(size - low))
    luaL_argerror(L, 3, lua_pushfstring(L, "%I bytes at %I beyond the shadow's %I",
                                        (lua_Integer)n, (lua_Integer)low, size));
  sl_block_set_shadow(b, low, (uint32_t)n, (const uint8_t *)s);
  return 0;
}

static int block_offset(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_block_offset(check_block(L)));
  return 1;
}

static int block_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)sl_block_size(check_block(L)));
  return 1;
}

/* ---- transactions ---- */

static int landed(void *arg) { return sl_block_landed(arg); }

/* Serves the loop until the outstanding transaction (if any) has landed;
** raises "interrupted" (the transaction given up and taken off) when the
** waits give up. */
static void await_landed(lua_State *L, sl_block *b) {
  if (sl_block_landed(b)) return;
  sl_transaction *t = sl_block_pending(b);
  if (t == NULL) return;
  int rc = sl_memory_serve(L, t, landed, b);
  sl_transaction_unref(t);
  if (rc == SL_ECANCELED) {
    /* given up: complete, and its hook is landing it now if not yet */
    while (sl_block_finish(b, NULL, 0) == SL_EBUSY) sched_yield();
    sl_lua_interrupted(L);
  }
}

/* blk:start(type, low, n): waits for the block's outstanding transaction
** (dropping its error), then issues one of type over shadow [low, low+n). */
static int block_start(lua_State *L) {
  sl_block *b = check_block(L);
  lua_Integer type = luaL_checkinteger(L, 2);
  luaL_argcheck(L, type >= SL_MEM_READ && type <= SL_MEM_VERIFY, 2,
                "transaction type expected (Read, Write, Post or Verify)");
  uint32_t low, n;
  check_bytes(L, b, 3, 1, &low, &n);
  await_landed(L, b);
  sl_state *st = sl_state_get(L);
  lua_State *outer = st->cur;
  st->cur = L;   /* a Lua slave reached synchronously runs on this thread */
  int rc = sl_block_start(b, (uint32_t)type, low, n);
  st->cur = outer;
  if (rc != SL_OK) return sl_status_error(L, "start", rc);
  return 0;
}

/* blk:wait() -> nil, or the outstanding transaction's error text. */
static int block_wait(lua_State *L) {
  sl_block *b = check_block(L);
  await_landed(L, b);
  char err[1024];
  if (sl_block_finish(b, err, sizeof err) == SL_OK) return 0;
  lua_pushstring(L, err);
  return 1;
}

/* blk:verifyRange() -> low, n of the last Write. */
static int block_verify_range(lua_State *L) {
  uint32_t low, n;
  sl_block_verify_range(check_block(L), &low, &n);
  lua_pushinteger(L, low);
  lua_pushinteger(L, n);
  return 2;
}

/* blk:verifyCheck(mask) -> nil, or blockByteIndex, got, exp, maskByte of
** the first byte where the last Verify's data and the last Write's differ
** under mask (a string of the block's size). */
static int block_verify_check(lua_State *L) {
  sl_block *b = check_block(L);
  size_t n;
  const char *mask = luaL_checklstring(L, 2, &n);
  if (n != sl_block_size(b))
    luaL_argerror(L, 2, lua_pushfstring(L, "mask of %I bytes expected, got %I",
                                        (lua_Integer)sl_block_size(b), (lua_Integer)n));
  uint32_t index;
  uint8_t got, exp, m;
  if (!sl_block_verify_check(b, (const uint8_t *)mask, &index, &got, &exp, &m)) return 0;
  lua_pushinteger(L, index);
  lua_pushinteger(L, got);
  lua_pushinteger(L, exp);
  lua_pushinteger(L, m);
  return 4;
}

static const luaL_Reg block_methods[] = {
    {"setUInt", block_set_uint},
    {"getUInt", block_get_uint},
    {"getInt", block_get_int},
    {"setBits", block_set_bits},
    {"getBits", block_get_bits},
    {"shadow", block_shadow},
    {"setShadow", block_set_shadow},
    {"offset", block_offset},
    {"size", block_size},
    {"start", block_start},
    {"wait", block_wait},
    {"verifyRange", block_verify_range},
    {"verifyCheck", block_verify_check},
    {NULL, NULL}};

/* ---- construction ---- */

/* A completion on the main thread needs no wake: it ran inside start or
** inside a callback of the loop being served. */
static void wake(void *arg) {
  sl_state *st = arg;
  if (!sl_state_on_main(st)) event_active(st->wake, EV_READ, 0);
}

static void release_state(void *arg) { sl_state_unref(arg); }

/* Block(offset, size) */
static int block_new(lua_State *L) {
  lua_Integer off = luaL_checkinteger(L, 1);
  luaL_argcheck(L, off >= 0, 1, "offset must not be negative");
  lua_Integer size = luaL_checkinteger(L, 2);
  if (size < 1 || size > (lua_Integer)SL_BLOCK_MAX_SIZE)
    luaL_argerror(L, 2, lua_pushfstring(L, "size %I out of range [1, %I] (16 MiB)",
                                        size, (lua_Integer)SL_BLOCK_MAX_SIZE));
  sl_error err;
  sl_block *b = sl_block_new((uint64_t)off, (uint32_t)size, &err);
  if (b == NULL) return luaL_error(L, "Block: %s", err.msg);
  sl_state *st = sl_state_get(L);
  sl_block_set_notify(b, wake, sl_state_ref(st), release_state);
  sl_lua_push_object(L, sl_block_object(b));
  sl_object_unref(sl_block_object(b));
  return 1;
}

/* sl.memory.bitCopy(dst, dstBit, src, srcBit, nbits) -> a new string:
** dst (grown with zero bytes when short) with nbits bits of src from bit
** srcBit written from bit dstBit. */
static int bit_copy(lua_State *L) {
  size_t dlen, slen;
  const char *dst = luaL_checklstring(L, 1, &dlen);
  const lua_Integer max = (lua_Integer)SL_BLOCK_MAX_SIZE * 8;
  lua_Integer dbit = sl_check_range(L, 2, 0, max);
  const char *src = luaL_checklstring(L, 3, &slen);
  lua_Integer sbit = sl_check_range(L, 4, 0, max);
  lua_Integer n = sl_check_range(L, 5, 0, max - dbit);
  if ((uint64_t)(sbit + n) > (uint64_t)slen * 8)
    luaL_argerror(L, 5, lua_pushfstring(L, "srcBit %I + nbits %I beyond the source's %I bits",
                                        sbit, n, (lua_Integer)slen * 8));
  size_t need = (size_t)((dbit + n + 7) / 8);
  size_t len = need > dlen ? need : dlen;
  luaL_Buffer buf;
  uint8_t *out = (uint8_t *)luaL_buffinitsize(L, &buf, len);
  memcpy(out, dst, dlen);
  memset(out + dlen, 0, len - dlen);
  sl_bit_copy(out, (uint64_t)dbit, (const uint8_t *)src, (uint64_t)sbit, (uint64_t)n);
  luaL_pushresultsize(&buf, len);
  return 1;
}

static const sl_lua_class block_class = {"memory.Block", block_methods, block_new,
                                         SL_ROLE_MEMORY_MASTER};

void sl_open_block(lua_State *L) {
  sl_lua_class_new(L, &block_class);
  lua_setfield(L, -2, "Block");
  lua_pushcfunction(L, bit_copy);
  lua_setfield(L, -2, "bitCopy");
}
