/*
** byteswap: a stream stage written in C and loaded as a Lua module.
**
**   local byteswap = require "byteswap"
**   local swap = byteswap.ByteSwap(4)     -- word width in bytes: 2, 4 or 8
**   _ = gen >> swap >> sink
**
** For each frame it receives, ByteSwap sends on a new frame, asked of its
** own slaves (reqFrame), holding the same bytes with the order reversed
** inside each word, and the same channel, error and flags. A last partial
** word is copied as it is. It is built against the installed headers and
** libraries alone (see the Makefile beside it).
**
** Threads: accept runs in the sender's thread, possibly in several at once;
** the stage keeps no state but its width (set before it is shared) and
** atomic counters, so it needs no lock of its own. The incoming frame is
** locked while it is read and unlocked before the new frame is sent.
*/
#include <stdatomic.h>
#include <stdlib.h>

#include <streamlua/lua.h>
#include <streamlua/streamlua.h>

typedef struct byteswap {
  sl_object obj;           /* first: the node is cast from it */
  sl_slave slave;          /* receives frames */
  sl_master master;        /* sends the swapped ones on */
  uint32_t width;          /* bytes per word */
  atomic_uint_least64_t rx_frames, tx_frames, drops;
} byteswap;

/* Copies n payload bytes of `in` into `out`, each width-byte word reversed. */
static void swap_copy(byteswap *bs, sl_frame *in, sl_frame *out, uint32_t n) {
  sl_frame_iter src, dst;
  sl_frame_iter_read(&src, in, 0);
  sl_frame_iter_write(&dst, out, 0);
  uint8_t word[8];
  uint32_t whole = n - n % bs->width;
  for (uint32_t pos = 0; pos < whole; pos += bs->width) {
    sl_frame_iter_get(&src, word, bs->width);
    for (uint32_t i = 0; i < bs->width / 2; i++) {
      uint8_t t = word[i];
      word[i] = word[bs->width - 1 - i];
      word[bs->width - 1 - i] = t;
    }
    sl_frame_iter_put(&dst, word, bs->width);
  }
  sl_frame_iter_copy(&src, n - whole, &dst);
  sl_frame_set_payload(out, n);
}

/* (transfer none) f, in the sender's thread. */
static void byteswap_accept(sl_slave *s, sl_frame *f) {
  byteswap *bs = (byteswap *)s->owner;
  atomic_fetch_add_explicit(&bs->rx_frames, 1, memory_order_relaxed);
  sl_frame_lock(f);
  uint32_t n = sl_frame_get_payload(f);
  sl_frame *out = sl_master_req_frame(&bs->master, n, 0);
  if (out == NULL) {       /* over the downstream pool's limit, or no memory */
    sl_frame_unlock(f);
    atomic_fetch_add_explicit(&bs->drops, 1, memory_order_relaxed);
    return;
  }
  swap_copy(bs, f, out, n);
  sl_frame_set_channel(out, sl_frame_get_channel(f));
  sl_frame_set_error(out, sl_frame_get_error(f));
  sl_frame_set_flags(out, sl_frame_get_flags(f));
  sl_frame_unlock(f);
  sl_master_send_frame(&bs->master, out);   /* no lock held while slaves run */
  sl_frame_unref(out);
  atomic_fetch_add_explicit(&bs->tx_frames, 1, memory_order_relaxed);
}

static size_t byteswap_counters(sl_object *obj, sl_counter *out, size_t max) {
  byteswap *bs = (byteswap *)obj;
  const sl_counter all[] = {{"rxFrames", atomic_load(&bs->rx_frames)},
                            {"txFrames", atomic_load(&bs->tx_frames)},
                            {"drops", atomic_load(&bs->drops)}};
  size_t n = 0;
  for (; n < max && n < sizeof all / sizeof all[0]; n++) out[n] = all[n];
  return n;
}

/* The last reference is gone: drop the slaves and free. Any thread. */
static void byteswap_destroy(sl_object *obj) {
  byteswap *bs = (byteswap *)obj;
  sl_master_fini(&bs->master);
  sl_slave_fini(&bs->slave);
  free(bs);
}

static const sl_slave_ops byteswap_ops = {.accept_frame = byteswap_accept};

/* The class name is the Lua class's too: boxes are "streamlua.byteswap.ByteSwap". */
static const sl_class byteswap_class = {.name = "byteswap.ByteSwap",
                                        .destroy = byteswap_destroy,
                                        .counters = byteswap_counters};

/* A new stage with refs = 1, or NULL with err set. */
static byteswap *byteswap_new(uint32_t width, sl_error *err) {
  byteswap *bs = calloc(1, sizeof *bs);
  if (bs == NULL) return sl_fail(err, SL_ENOMEM, "out of memory");
  sl_object_init(&bs->obj, &byteswap_class);
  bs->width = width;
  if (sl_slave_init(&bs->slave, &byteswap_ops, &bs->obj) != SL_OK) goto fail;
  if (sl_master_init(&bs->master, &bs->obj) != SL_OK) {
    sl_slave_fini(&bs->slave);
    goto fail;
  }
  return bs;
fail:
  free(bs);
  return sl_fail(err, SL_ENOMEM, "out of memory");
}

/* ---- the Lua side ---- */

/* byteswap.ByteSwap([width]): width 2, 4 (the default) or 8. */
static int l_new(lua_State *L) {
  lua_Integer width = luaL_optinteger(L, 1, 4);
  luaL_argcheck(L, width == 2 || width == 4 || width == 8, 1, "width must be 2, 4 or 8");
  sl_error err = {0};
  byteswap *bs = byteswap_new((uint32_t)width, &err);
  if (bs == NULL) return luaL_error(L, "ByteSwap: %s", err.msg);
  sl_lua_push_object(L, &bs->obj);   /* the box takes its own reference */
  sl_object_unref(&bs->obj);
  return 1;
}

/* swap:getWidth() -> bytes per word */
static int l_get_width(lua_State *L) {
  byteswap *bs = (byteswap *)sl_lua_check_class(L, 1, &byteswap_class);
  lua_pushinteger(L, bs->width);
  return 1;
}

static const luaL_Reg byteswap_methods[] = {{"getWidth", l_get_width}, {NULL, NULL}};

/* require "byteswap" -> {ByteSwap = class}. The class gets the methods of
** every stream master and slave (addSlave, reqFrame, getFrameCount, ...)
** and takes part in >>, << and ==. */
int luaopen_byteswap(lua_State *L);
int luaopen_byteswap(lua_State *L) {
  lua_newtable(L);
  sl_lua_register_class(L, byteswap_class.name, byteswap_methods, l_new, SL_ROLE_STREAM);
  lua_setfield(L, -2, "ByteSwap");
  return 1;
}
