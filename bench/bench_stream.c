/*
** bench_stream: in-process throughput of the stream engine.
**
**   bench_stream [seconds-per-measurement]      (default 0.5)
**
** Measures, in one run:
**   1. engine: C master -> plain pooled slave (fixed-size pool, 64 cached
**      blocks); per frame: reqFrame, write `size` bytes, sendFrame, unref;
**   1b. defaults: the same into a plain slave left at its defaults (no
**      fixed size, no pool size: the pool's default cache);
**   2. raw: the same memory work without the engine (memcpy into a reused
**      block, count frames and bytes);
**   3. a Lua-defined slave on the same thread, fed from a C loop and from
**      a Lua loop.
**
** Each measurement is calibrated to last about the requested time, run 3
** times, and the best run is reported. Every run checks that the slave saw
** exactly the frames (and bytes) sent. Nothing is asserted about speed.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "sl_lua.h"
#include "streamlua/lua.h"
#include "streamlua/streamlua.h"
#include "bench.h"

#define REPEATS 3
#define POOL_BLOCKS 64

static double seconds_per_run = 0.5;

/* ---------------------------------------------------------------- engine */

typedef struct engine_ctx {
  sl_object *mobj, *sobj;
  sl_master *m;
  sl_slave *s;
  const uint8_t *src;
  uint32_t size;
} engine_ctx;

static double engine_run(void *arg, uint64_t iters) {
  engine_ctx *c = arg;
  sl_master *m = c->m;
  const uint8_t *src = c->src;
  uint32_t size = c->size;
  uint64_t f0 = sl_slave_get_frame_count(c->s);
  uint64_t b0 = sl_slave_get_byte_count(c->s);
  int err = 0;
  double t0 = bench_now();
  for (uint64_t i = 0; i < iters; i++) {
    sl_frame *f = sl_master_req_frame(m, size, 1);
    err |= sl_frame_write(f, src, 0, size);
    sl_master_send_frame(m, f);
    sl_frame_unref(f);
  }
  double t = bench_now() - t0;
  uint64_t df = sl_slave_get_frame_count(c->s) - f0;
  uint64_t db = sl_slave_get_byte_count(c->s) - b0;
  if (err != 0) bench_fail("engine: sl_frame_write status", (unsigned long long)-err, 0);
  if (df != iters) bench_fail("engine: slave frame count", df, iters);
  if (db != iters * size) bench_fail("engine: slave byte count", db, iters * size);
  return t;
}

/* defaults: the slave's pool as sl_slave_new leaves it. */
static int engine_setup(engine_ctx *c, uint32_t size, const uint8_t *src,
                        int defaults) {
  c->mobj = sl_master_new(NULL);
  c->sobj = sl_slave_new(NULL);
  if (c->mobj == NULL || c->sobj == NULL) return -1;
  c->m = c->mobj->master;
  c->s = c->sobj->slave;
  if (!defaults) {
    sl_pool_set_fixed_size(c->s->pool, size);
    sl_pool_set_pool_size(c->s->pool, POOL_BLOCKS);
  }
  if (sl_master_add_slave(c->m, c->s) != SL_OK) return -1;
  c->src = src;
  c->size = size;
  return 0;
}

static void engine_teardown(engine_ctx *c) {
  if (sl_pool_get_alloc_count(c->s->pool) != 0)
    bench_fail("engine: live buffers after the run", sl_pool_get_alloc_count(c->s->pool), 0);
  sl_object_unref(c->mobj);
  sl_object_unref(c->sobj);
}

/* ------------------------------------------------------------------- raw */

typedef struct raw_ctx {
  const uint8_t *src;
  uint8_t *dst;          /* reused block, like the pool's cached one */
  uint32_t size;
  uint64_t frames, bytes;
} raw_ctx;

static double raw_run(void *arg, uint64_t iters) {
  raw_ctx *c = arg;
  const uint8_t *src = c->src;
  uint8_t *dst = c->dst;
  uint32_t size = c->size;
  uint64_t frames = 0, bytes = 0;
  double t0 = bench_now();
  for (uint64_t i = 0; i < iters; i++) {
    memcpy(dst, src, size);
    /* The copy must happen and must be visible: the "slave" may read it. */
    __asm__ __volatile__("" : : "r"(dst) : "memory");
    frames += 1;
    bytes += size;
  }
  double t = bench_now() - t0;
  c->frames += frames;
  c->bytes += bytes;
  if (frames != iters) bench_fail("raw: frame count", frames, iters);
  return t;
}

/* -------------------------------------------------------------- Lua side */

typedef struct lua_ctx {
  lua_State *L;
  sl_object *mobj;       /* the C master inside Lua's `m` box (own ref) */
  sl_master *m;
  sl_frame *frame;       /* the one frame resent by the C loop */
  const uint8_t *src;
  int mode;              /* 0: resend one frame, 1: req/write/send/unref */
} lua_ctx;

static lua_Integer lua_get_n(lua_State *L) {
  lua_getglobal(L, "n");
  lua_Integer n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

static double lua_c_run(void *arg, uint64_t iters) {
  lua_ctx *c = arg;
  sl_master *m = c->m;
  lua_Integer n0 = lua_get_n(c->L);
  int err = 0;
  double t0 = bench_now();
  if (c->mode == 0) {
    sl_frame *f = c->frame;
    for (uint64_t i = 0; i < iters; i++) sl_master_send_frame(m, f);
  } else {
    for (uint64_t i = 0; i < iters; i++) {
      sl_frame *f = sl_master_req_frame(m, 64, 1);
      err |= sl_frame_write(f, c->src, 0, 64);
      sl_master_send_frame(m, f);
      sl_frame_unref(f);
    }
  }
  double t = bench_now() - t0;
  lua_Integer dn = lua_get_n(c->L) - n0;
  if (err != 0) bench_fail("lua: sl_frame_write status", (unsigned long long)-err, 0);
  if ((uint64_t)dn != iters) bench_fail("lua (C loop): n", (unsigned long long)dn, iters);
  return t;
}

static double lua_lua_run(void *arg, uint64_t iters) {
  lua_ctx *c = arg;
  lua_State *L = c->L;
  lua_Integer n0 = lua_get_n(L);
  lua_getglobal(L, "sendloop");
  lua_pushinteger(L, (lua_Integer)iters);
  double t0 = bench_now();
  int rc = lua_pcall(L, 1, 0, 0);
  double t = bench_now() - t0;
  if (rc != LUA_OK) {
    fprintf(stderr, "sendloop: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    bench_failures++;
    return 1.0;
  }
  lua_Integer dn = lua_get_n(L) - n0;
  if ((uint64_t)dn != iters) bench_fail("lua (Lua loop): n", (unsigned long long)dn, iters);
  return t;
}

static const char lua_setup_chunk[] =
    "sl = streamlua\n"
    "n = 0\n"
    "counter = sl.stream.Slave{acceptFrame = function(self, frame) n = n + 1 end}\n"
    "counter:setFixedSize(64)\n"
    "counter:setPoolSize(64)\n"
    "m = sl.stream.Master()\n"
    "_ = m >> counter\n"
    "f = m:reqFrame(64)\n"
    "f:write(string.rep('x', 64))\n"
    "function sendloop(N)\n"
    "  local m, f = m, f\n"
    "  for i = 1, N do m:sendFrame(f) end\n"
    "end\n";

static int lua_setup(lua_ctx *c, const uint8_t *src) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return -1;
  lua_gc(L, LUA_GCGEN, 0, 0);   /* the collector mode lua5.4 and streamlua use */
  c->L = L;
  luaL_openlibs(L);
  luaL_requiref(L, "streamlua", sl_lua_open, 1);
  lua_pop(L, 1);
  if (luaL_dostring(L, lua_setup_chunk) != LUA_OK) {
    fprintf(stderr, "Lua setup: %s\n", lua_tostring(L, -1));
    return -1;
  }
  lua_getglobal(L, "m");
  c->mobj = sl_object_ref(sl_lua_check_role(L, -1, SL_ROLE_STREAM_MASTER));
  c->m = c->mobj->master;            /* the C master inside the box */
  lua_pop(L, 1);
  /* The resent frame: 64 bytes from a pooled allocator of its own. */
  sl_pool *p = sl_pool_new();
  if (p == NULL) return -1;
  sl_pool_set_fixed_size(p, 64);
  c->frame = sl_pool_req_frame(p, 64);
  sl_pool_unref(p);                  /* lives until the frame's buffer is back */
  if (c->frame == NULL || sl_frame_write(c->frame, src, 0, 64) != SL_OK) return -1;
  c->src = src;
  return 0;
}

static void lua_teardown(lua_ctx *c) {
  sl_frame_unref(c->frame);
  sl_object_unref(c->mobj);
  sl_lua_shutdown(c->L);
  lua_close(c->L);
}

/* --------------------------------------------------------------- driver */

typedef struct result {
  double best_s;       /* best run time */
  uint64_t iters;
} result;

static double rate(const result *r) { return (double)r->iters / r->best_s; }

/* Calibrates the n cases, then runs them in turn REPEATS times. */
static void measure(size_t n, bench_run_fn *fn, void **ctx, result *r) {
  for (size_t i = 0; i < n; i++) {
    r[i].iters = bench_calibrate(fn[i], ctx[i], seconds_per_run, 16, 20.0);
    r[i].best_s = 1e30;
  }
  for (int k = 0; k < REPEATS; k++)
    for (size_t i = 0; i < n; i++) {
      double t = fn[i](ctx[i], r[i].iters);
      if (t < r[i].best_s) r[i].best_s = t;
    }
}

static void fmt_size(char *buf, size_t n, uint32_t size) {
  if (size >= (1u << 20)) snprintf(buf, n, "%u MiB", size >> 20);
  else if (size >= 1024) snprintf(buf, n, "%u KiB", size >> 10);
  else snprintf(buf, n, "%u B", size);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    char *end;
    double s = strtod(argv[1], &end);
    if (*end != '\0' || !(s > 0.0) || s > 60.0) {
      fprintf(stderr, "usage: %s [seconds-per-measurement]  (0 < s <= 60)\n",
              argv[0]);
      return 2;
    }
    seconds_per_run = s;
  }

  static const uint32_t sizes[] = {64, 1024, 64 * 1024, 1024 * 1024};
  enum { NSIZES = sizeof sizes / sizeof sizes[0] };
  uint32_t max = sizes[NSIZES - 1];
  uint8_t *src = malloc(max), *dst = malloc(max);
  if (src == NULL || dst == NULL) return 1;
  for (uint32_t i = 0; i < max; i++) src[i] = (uint8_t)(i * 131u + 7u);
  memset(dst, 0, max);

  printf("streamlua %s stream engine, in process, one thread\n", SL_VERSION);
  printf("each figure: best of %d runs of ~%.2f s; GB/s = 1e9 payload bytes/s\n\n",
         REPEATS, seconds_per_run);
  printf("engine: fixed-size pool, %d cached; defaults: a plain slave's pool "
         "as made\n\n", POOL_BLOCKS);
  printf("%-8s | %14s %9s %9s | %14s %9s | %14s %9s %9s | %10s %10s\n", "size",
         "engine frame/s", "ns/frame", "GB/s", "dflt frame/s", "ns/frame",
         "raw frame/s", "ns/frame", "GB/s", "engine/raw", "dflt/raw");
  printf("---------+-------------------------------------+"
         "--------------------------+"
         "-------------------------------------+----------------------\n");

  for (int i = 0; i < NSIZES; i++) {
    engine_ctx ec, dc;
    memset(&ec, 0, sizeof ec);
    memset(&dc, 0, sizeof dc);
    if (engine_setup(&ec, sizes[i], src, 0) != 0 ||
        engine_setup(&dc, sizes[i], src, 1) != 0) {
      fprintf(stderr, "engine setup failed\n");
      return 1;
    }
    raw_ctx rc = {src, dst, sizes[i], 0, 0};
    result r[3];
    bench_run_fn fns[3] = {engine_run, engine_run, raw_run};
    void *ctxs[3] = {&ec, &dc, &rc};
    measure(3, fns, ctxs, r);
    engine_teardown(&ec);
    engine_teardown(&dc);
    double er = rate(&r[0]), dr = rate(&r[1]), rrate = rate(&r[2]);
    char sz[16];
    fmt_size(sz, sizeof sz, sizes[i]);
    printf("%-8s | %14.0f %9.1f %9.2f | %14.0f %9.1f | %14.0f %9.1f %9.2f | %9.1f%% %9.1f%%\n",
           sz, er, 1e9 / er, er * sizes[i] / 1e9, dr, 1e9 / dr, rrate,
           1e9 / rrate, rrate * sizes[i] / 1e9, 100.0 * er / rrate,
           100.0 * dr / rrate);
    fflush(stdout);
  }
  /* Keep the raw destination observable. */
  volatile uint8_t sink = dst[max - 1];
  (void)sink;

  lua_ctx lc;
  memset(&lc, 0, sizeof lc);
  if (lua_setup(&lc, src) != 0) {
    fprintf(stderr, "Lua setup failed\n");
    return 1;
  }
  static const struct {
    const char *label;
    bench_run_fn fn;
    int mode;
  } lua_cases[] = {
      {"C loop, one 64 B frame resent", lua_c_run, 0},
      {"C loop, req+write+send+unref 64 B", lua_c_run, 1},
      {"Lua loop, m:sendFrame(f), one frame", lua_lua_run, 0},
  };
  printf("\nLua-defined slave on the same thread "
         "(acceptFrame = function(self, frame) n = n + 1 end)\n");
  printf("%-38s | %14s %9s\n", "driver", "frames/s", "ns/frame");
  printf("---------------------------------------+--------------------------\n");
  for (size_t i = 0; i < sizeof lua_cases / sizeof lua_cases[0]; i++) {
    lc.mode = lua_cases[i].mode;
    result r;
    bench_run_fn fn = lua_cases[i].fn;
    void *ctx = &lc;
    measure(1, &fn, &ctx, &r);
    printf("%-38s | %14.0f %9.1f\n", lua_cases[i].label, rate(&r),
           1e9 / rate(&r));
    fflush(stdout);
  }
  lua_Integer total = lua_get_n(lc.L);
  lua_teardown(&lc);

  printf("\nchecks: slave frame/byte counts and Lua n matched every run "
         "(n = %lld in total): %s\n",
         (long long)total, bench_failures == 0 ? "ok" : "FAILED");
  free(src);
  free(dst);
  return bench_failures == 0 ? 0 : 1;
}
