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

/* Waits for b's outstanding transaction (dropping its error), then issues
** one of type over shadow [low, low+n); fn names the caller in errors. */
static void start_one(lua_State *L, sl_block *b, const char *fn, uint32_t type,
                      uint32_t low, uint32_t n) {
  await_landed(L, b);
  sl_state *st = sl_state_get(L);
  lua_State *outer = st->cur;
  st->cur = L;   /* a Lua slave reached synchronously runs on this thread */
  int rc = sl_block_start(b, type, low, n);
  st->cur = outer;
  if (rc != SL_OK) sl_status_error(L, fn, rc);
}

/* Waits for b's outstanding transaction and takes it off: 0, or 1 with its
** error text pushed. */
static int finish_one(lua_State *L, sl_block *b) {
  await_landed(L, b);
  char err[1024];
  if (sl_block_finish(b, err, sizeof err) == SL_OK) return 0;
  lua_pushstring(L, err);
  return 1;
}

static lua_Integer check_type(lua_State *L, int i) {
  lua_Integer type = luaL_checkinteger(L, i);
  luaL_argcheck(L, type >= SL_MEM_READ && type <= SL_MEM_VERIFY, i,
                "transaction type expected (Read, Write, Post or Verify)");
  return type;
}

/* blk:start(type, low, n): waits for the block's outstanding transaction
** (dropping its error), then issues one of type over shadow [low, low+n). */
static int block_start(lua_State *L) {
  sl_block *b = check_block(L);
  lua_Integer type = check_type(L, 2);
  uint32_t low, n;
  check_bytes(L, b, 3, 1, &low, &n);
  start_one(L, b, "start", (uint32_t)type, low, n);
  return 0;
}

/* blk:wait() -> nil, or the outstanding transaction's error text. */
static int block_wait(lua_State *L) {
  return finish_one(L, check_block(L));
}

/* blk:readUInt(low, n, bitOffset, bitSize) -> the field's value after a
** Read of shadow [low, low+n), waited for (start, wait and getUInt in one
** call); nil and the error text when the Read failed. */
static int block_read_uint(lua_State *L) {
  sl_block *b = check_block(L);
  uint32_t low, n;
  check_bytes(L, b, 2, 1, &low, &n);
  uint64_t bit, nbits, v = 0;
  check_field(L, b, 4, 64, &bit, &nbits);
  start_one(L, b, "readUInt", SL_MEM_READ, low, n);
  if (finish_one(L, b)) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  sl_block_get_uint(b, bit, (uint32_t)nbits, &v);
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

/* Pushes the first verify mismatch under mask (4 values) or nothing. */
static int push_mismatch(lua_State *L, sl_block *b, const char *mask) {
  uint32_t index;
  uint8_t got, exp, m;
  if (!sl_block_verify_check(b, (const uint8_t *)mask, &index, &got, &exp, &m)) return 0;
  lua_pushinteger(L, index);
  lua_pushinteger(L, got);
  lua_pushinteger(L, exp);
  lua_pushinteger(L, m);
  return 4;
}

/* The verify mask at i: a string of the block's size. */
static const char *check_mask(lua_State *L, sl_block *b, int i) {
  size_t n;
  const char *mask = luaL_checklstring(L, i, &n);
  if (n != sl_block_size(b))
    luaL_argerror(L, i, lua_pushfstring(L, "mask of %I bytes expected, got %I",
                                        (lua_Integer)sl_block_size(b), (lua_Integer)n));
  return mask;
}

/* The same, or NULL when nil or absent. */
static const char *opt_mask(lua_State *L, sl_block *b, int i) {
  return lua_isnoneornil(L, i) ? NULL : check_mask(L, b, i);
}

/* blk:writeUInt(bitOffset, bitSize, raw, low, n [, mask]): setUInt, then a
** Write of shadow [low, low+n) and, with a mask, a Verify of the same
** bytes (its start drops the Write's error), waited for. Returns nothing
** when it went through, the error text of the transaction waited for, or
** the first verify mismatch under mask as verifyCheck does. */
static int block_write_uint(lua_State *L) {
  sl_block *b = check_block(L);
  uint64_t bit, nbits;
  check_field(L, b, 2, 64, &bit, &nbits);
  lua_Integer raw = luaL_checkinteger(L, 4);
  uint32_t low, n;
  check_bytes(L, b, 5, 1, &low, &n);
  const char *mask = opt_mask(L, b, 7);
  sl_block_set_uint(b, bit, (uint32_t)nbits, (uint64_t)raw);
  start_one(L, b, "writeUInt", SL_MEM_WRITE, low, n);
  if (mask != NULL) start_one(L, b, "writeUInt", SL_MEM_VERIFY, low, n);
  if (finish_one(L, b)) return 1;
  return mask != NULL ? push_mismatch(L, b, mask) : 0;
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
  return push_mismatch(L, b, check_mask(L, b, 2));
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
    {"readUInt", block_read_uint},
    {"writeUInt", block_write_uint},
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

/* ---- many blocks at once ---- */

/* The block at list[i] (the list at argument 1); fn names the caller. */
static sl_block *list_block(lua_State *L, const char *fn, lua_Integer i) {
  lua_rawgeti(L, 1, i);
  sl_block *b = sl_block_from_object(sl_lua_test_object(L, -1));
  lua_pop(L, 1);   /* the list holds it */
  if (b == NULL)
    luaL_argerror(L, 1, lua_pushfstring(L, "%s: item %I is not a streamlua.memory.Block",
                                        fn, i));
  return b;
}

/* The count at argument i: 0..#list (the list's length by default). */
static lua_Integer list_count(lua_State *L, int i) {
  lua_Integer len = (lua_Integer)lua_rawlen(L, 1);
  return sl_opt_range(L, i, len, 0, len);
}

/* sl.memory.startBlocks(list, type [, count]): blk:start(type, 0, size)
** of the first count blocks of list in order (a Verify: over the block's
** verify range), each first waiting for its block's outstanding
** transaction; nothing is waited for after. */
static int start_blocks(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  uint32_t type = (uint32_t)check_type(L, 2);
  lua_Integer count = list_count(L, 3);
  for (lua_Integer i = 1; i <= count; i++) {
    sl_block *b = list_block(L, "startBlocks", i);
    uint32_t low = 0, n = sl_block_size(b);
    if (type == SL_MEM_VERIFY) sl_block_verify_range(b, &low, &n);
    if (n == 0)
      luaL_argerror(L, 1, lua_pushfstring(L, "startBlocks: item %I has no Write to verify",
                                          i));
    start_one(L, b, "startBlocks", type, low, n);
  }
  return 0;
}

/* sl.memory.waitBlocks(list [, masks [, count]]) -> nothing when the
** outstanding transactions of the first count blocks of list went
** through, else the position of the first that failed and what blk:wait
** returns for it, or of the first whose verify data differs under its
** mask (masks[i], a string: checked as blk:verifyCheck(masks[i]) after
** the wait) and what verifyCheck returns. Waits in list order and stops
** at the first failure: the blocks after it keep their transactions. */
static int wait_blocks(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int masks = !lua_isnoneornil(L, 2);
  if (masks) luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer count = list_count(L, 3);
  for (lua_Integer i = 1; i <= count; i++) {
    sl_block *b = list_block(L, "waitBlocks", i);
    if (finish_one(L, b)) {
      lua_pushinteger(L, i);
      lua_insert(L, -2);
      return 2;
    }
    if (!masks || lua_rawgeti(L, 2, i) != LUA_TSTRING) {
      if (masks) lua_pop(L, 1);
      continue;
    }
    size_t len;
    const char *mask = lua_tolstring(L, -1, &len);
    if (len != sl_block_size(b))
      luaL_argerror(L, 2, lua_pushfstring(L, "waitBlocks: mask %I of %I bytes, block of %I",
                                          i, (lua_Integer)len,
                                          (lua_Integer)sl_block_size(b)));
    lua_pushinteger(L, i);
    int got = push_mismatch(L, b, mask);
    if (got > 0) return got + 1;
    lua_pop(L, 2);
  }
  return 0;
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
  lua_pushcfunction(L, start_blocks);
  lua_setfield(L, -2, "startBlocks");
  lua_pushcfunction(L, wait_blocks);
  lua_setfield(L, -2, "waitBlocks");
}
