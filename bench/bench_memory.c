/*
** bench_memory: 4-byte register round trips (a write then a read of the
** same register, each waited for), against a raw TCP request/response
** ping-pong over loopback measured in the same run.
**
**   bench_memory [seconds-per-measurement]
**
** srp: memory Master -> SrpV3 == SrpV3Emulation, in one process (the
**   emulation answers on its worker thread).
** bridge: memory Master -> memory TcpClient -> memory TcpServer -> Emulate,
**   over loopback in one process.
** lua: the bridge path driven from a Lua script on the main thread:
**   m:writeU32(a, v); assert(m:readU32(a) == v), the blocking calls.
** raw: one thread writes a 24-byte request and reads a 24-byte answer that
**   a second thread sends back, over a loopback TCP connection.
** Best of 3 runs each. Checks: every read returned the value written.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "sl_lua.h"
#include "streamlua/mem_bridge.h"
#include "streamlua/memory.h"
#include "streamlua/srp.h"
#include "streamlua/streamlua.h"
#include "bench.h"

/* ---- raw ping-pong ---- */

static void *echo_main(void *arg) {
  int fd = *(int *)arg;
  uint8_t buf[24];
  for (;;) {
    size_t got = 0;
    while (got < sizeof buf) {
      ssize_t n = read(fd, buf + got, sizeof buf - got);
      if (n <= 0) return NULL;
      got += (size_t)n;
    }
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) return NULL;
  }
}

static double run_raw(uint64_t trips) {
  struct sockaddr_in sa;
  int lfd = bench_loopback_socket(SOCK_STREAM, &sa);
  listen(lfd, 1);
  int cfd = socket(AF_INET, SOCK_STREAM, 0);
  connect(cfd, (struct sockaddr *)&sa, sizeof sa);
  int sfd = accept(lfd, NULL, NULL);
  close(lfd);
  int one = 1;
  setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  pthread_t t;
  pthread_create(&t, NULL, echo_main, &sfd);
  uint8_t buf[24] = {0};
  double t0 = bench_now();
  for (uint64_t i = 0; i < trips; i++) {
    memcpy(buf, &i, sizeof i);
    if (write(cfd, buf, sizeof buf) != (ssize_t)sizeof buf) break;
    size_t got = 0;
    while (got < sizeof buf) {
      ssize_t n = read(cfd, buf + got, sizeof buf - got);
      if (n <= 0) break;
      got += (size_t)n;
    }
  }
  double dt = bench_now() - t0;
  shutdown(cfd, SHUT_RDWR);
  close(cfd);
  pthread_join(t, NULL);
  close(sfd);
  return dt;
}

/* ---- register round trips through a memory master ---- */

static int round_trips(sl_mem_master *m, uint64_t trips, double *dt) {
  double t0 = bench_now();
  for (uint64_t i = 0; i < trips; i++) {
    uint32_t v = (uint32_t)(i * 2654435761u), back = 0;
    uint64_t addr = 0x1000 + (i % 64) * 4;
    sl_transaction *w = sl_mem_master_request(m, addr, 4, &v, SL_MEM_WRITE, NULL, NULL);
    int rc = sl_mem_master_wait(w);
    sl_transaction_unref(w);
    if (rc != SL_OK) return -1;
    sl_transaction *r = sl_mem_master_request(m, addr, 4, NULL, SL_MEM_READ, NULL, NULL);
    rc = sl_mem_master_wait(r);
    if (rc == SL_OK) memcpy(&back, sl_transaction_data(r), 4);
    sl_transaction_unref(r);
    if (rc != SL_OK || back != v) return -1;
  }
  *dt = bench_now() - t0;
  return 0;
}

static double best_of_3(sl_mem_master *m, uint64_t trips) {
  double best = 1e30;
  for (int r = 0; r < 3; r++) {
    double dt;
    if (round_trips(m, trips, &dt) != 0) {
      fprintf(stderr, "a register round trip failed\n");
      exit(1);
    }
    if (dt < best) best = dt;
  }
  return best;
}

/* Calibrates the number of trips to about `secs` seconds. */
static uint64_t calibrate(sl_mem_master *m, double secs) {
  double dt;
  if (round_trips(m, 200, &dt) != 0) {
    fprintf(stderr, "a register round trip failed\n");
    exit(1);
  }
  uint64_t n = (uint64_t)(200.0 * secs / (dt > 1e-6 ? dt : 1e-6));
  return n < 200 ? 200 : n;
}

/* ---- from Lua ---- */

static const char lua_setup_chunk[] =
    "sl = streamlua\n"
    "srv = sl.memory.TcpServer('127.0.0.1', 0)\n"
    "_ = srv >> sl.memory.Emulate(4, 4096)\n"
    "cli = sl.memory.TcpClient('127.0.0.1', srv:getPort(), true)\n"
    "m = sl.memory.Master()\n"
    "_ = m >> cli\n"
    "function trips(n)\n"
    "  for i = 1, n do\n"
    "    local a, v = 0x100 + (i % 64) * 4, (i * 2654435761) & 0xffffffff\n"
    "    m:writeU32(a, v)\n"
    "    if m:readU32(a) ~= v then error('read back differs') end\n"
    "  end\n"
    "end\n";

/* Seconds for n Lua round-trip pairs, or -1 on failure. */
static double lua_trips(lua_State *L, uint64_t n) {
  lua_getglobal(L, "trips");
  lua_pushinteger(L, (lua_Integer)n);
  double t0 = bench_now();
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "Lua: %s\n", lua_tostring(L, -1));
    return -1;
  }
  return bench_now() - t0;
}

/* Round trips per second from Lua, best of 3 (0 on failure). */
static double run_lua(double secs) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return 0;
  lua_gc(L, LUA_GCGEN, 0, 0);   /* the collector mode lua5.4 and streamlua use */
  luaL_openlibs(L);
  luaL_requiref(L, "streamlua", sl_lua_open, 1);
  lua_pop(L, 1);
  double best = 1e30;
  uint64_t n = 200;
  if (luaL_dostring(L, lua_setup_chunk) != LUA_OK) {
    fprintf(stderr, "Lua setup: %s\n", lua_tostring(L, -1));
    best = -1;
  } else {
    double dt = lua_trips(L, n);
    if (dt > 0) n = (uint64_t)((double)n * secs / (dt > 1e-6 ? dt : 1e-6));
    if (n < 200) n = 200;
    for (int r = 0; r < 3 && dt >= 0; r++) {
      dt = lua_trips(L, n);
      if (dt < 0) best = -1;
      else if (dt < best) best = dt;
    }
  }
  sl_lua_shutdown(L);
  lua_close(L);
  return best > 0 ? (double)n * 2.0 / best : 0;
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 0.5;
  printf("streamlua %s register round trips (4 bytes: write, then read back)\n",
         SL_VERSION);
  printf("best of 3 runs of ~%.2f s; a round trip here is one transaction\n\n", secs);

  /* in process: Master -> SrpV3 == SrpV3Emulation */
  sl_object *m1 = sl_mem_master_node_new(NULL);
  sl_object *srp = sl_srpv3_object(sl_srpv3_new(NULL));
  sl_object *emu = sl_srpv3_emulation_object(sl_srpv3_emulation_new(NULL));
  sl_mem_master_set_timeout(m1->mem_master, 1000000);
  sl_mem_master_set_slave(m1->mem_master, srp);
  sl_master_add_slave(srp->master, emu->slave);
  sl_master_add_slave(emu->master, srp->slave);
  uint64_t n1 = calibrate(m1->mem_master, secs);
  double d1 = best_of_3(m1->mem_master, n1) / 2.0;   /* per transaction */

  /* over loopback: Master -> mem TcpClient -> mem TcpServer -> Emulate */
  sl_error err;
  sl_mem_bridge *srv = sl_mem_server_new("127.0.0.1", 0, &err);
  if (srv == NULL) {
    fprintf(stderr, "server: %s\n", err.msg);
    return 1;
  }
  sl_mem_bridge *cli = sl_mem_client_new("127.0.0.1", sl_mem_bridge_port(srv), &err);
  sl_object *emulate = sl_emulate_object(sl_emulate_new(4, 4096, NULL));
  sl_mem_master_set_slave(sl_mem_bridge_object(srv)->mem_master, emulate);
  sl_object *m2 = sl_mem_master_node_new(NULL);
  sl_mem_master_set_timeout(m2->mem_master, 1000000);
  sl_mem_master_set_slave(m2->mem_master, sl_mem_bridge_object(cli));
  for (int i = 0; i < 500 && !sl_mem_bridge_ready(cli); i++) {
    bench_sleep_us(10000);
  }
  uint64_t n2 = calibrate(m2->mem_master, secs);
  double d2 = best_of_3(m2->mem_master, n2) / 2.0;

  /* raw ping-pong with as many trips as the bridge made */
  double dr = 1e30;
  for (int r = 0; r < 3; r++) {
    double dt = run_raw(n2 * 2);
    if (dt < dr) dr = dt;
  }
  dr /= 2.0;

  double rl = run_lua(secs);
  if (rl <= 0) {
    fprintf(stderr, "a register round trip from Lua failed\n");
    return 1;
  }

  double r1 = (double)n1 / d1, r2 = (double)n2 / d2, rr = (double)n2 / dr;
  printf("path                                      | round trips/s | vs raw\n");
  printf("------------------------------------------+---------------+-------\n");
  printf("SrpV3 <-> SrpV3Emulation, in process      | %13.0f |      -\n", r1);
  printf("memory TcpClient -> TcpServer -> Emulate  | %13.0f | %5.1f%%\n", r2,
         100.0 * r2 / rr);
  printf("the same bridge from a Lua script         | %13.0f | %5.1f%%\n", rl,
         100.0 * rl / rr);
  printf("raw TCP ping-pong over loopback (24 B)    | %13.0f |  100%%\n", rr);
  printf("\nchecks: every read returned the value written: ok\n");

  sl_object_stop(emu);
  sl_object_stop(sl_mem_bridge_object(srv));
  sl_object_stop(sl_mem_bridge_object(cli));
  sl_object_unref(m1);
  sl_object_unref(m2);
  sl_master_clear_slaves(srp->master);
  sl_master_clear_slaves(emu->master);
  sl_object_unref(srp);
  sl_object_unref(emu);
  sl_object_unref(sl_mem_bridge_object(cli));
  sl_object_unref(sl_mem_bridge_object(srv));
  sl_object_unref(emulate);
  return 0;
}
