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
**
** Two processes (first, before this process starts any thread): a child
** forked at start holds memory TcpServer -> Emulate, this process Master
** -> memory TcpClient; against a raw ping-pong of the same shape (a forked
** child echoes 24 bytes; both ends read with MSG_DONTWAIT in a spin that
** yields the CPU between looks, as the bridge's polls do), alternated,
** best of 3. CPU per transaction: the task time of both
** processes (getrusage, the child's sent over a pipe) over the round trips.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

/* Seconds for `trips` 24-byte requests on fd, each answer read whole:
** blocking reads, or (spin) non-blocking ones yielding between looks. */
static double ping_pong(int fd, uint64_t trips, int spin) {
  uint8_t buf[24] = {0};
  double t0 = bench_now();
  for (uint64_t i = 0; i < trips; i++) {
    memcpy(buf, &i, sizeof i);
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) break;
    size_t got = 0;
    while (got < sizeof buf) {
      ssize_t n = recv(fd, buf + got, sizeof buf - got, spin ? MSG_DONTWAIT : 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return -1;
      if (n > 0) got += (size_t)n;
      else sched_yield();
    }
  }
  return bench_now() - t0;
}

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
  double dt = ping_pong(cfd, trips, 0);
  shutdown(cfd, SHUT_RDWR);
  close(cfd);
  pthread_join(t, NULL);
  close(sfd);
  return dt;
}

/* ---- two processes ---- */

/* A forked child: `cmd` carries requests to it, `rep` its replies. */
typedef struct child {
  pid_t pid;
  int cmd, rep;
  uint32_t port;
} child;

static uint64_t cpu_us_self(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int put_u64(int fd, uint64_t v) {
  return write(fd, &v, sizeof v) == (ssize_t)sizeof v ? 0 : -1;
}

static int get_u64(int fd, uint64_t *v) {
  return read(fd, v, sizeof *v) == (ssize_t)sizeof *v ? 0 : -1;
}

/* The child's CPU time so far (it answers between runs). */
static uint64_t child_cpu_us(child *c) {
  uint64_t us = 0;
  if (write(c->cmd, "u", 1) != 1 || get_u64(c->rep, &us) != 0) {
    fprintf(stderr, "bench: the child process is gone\n");
    exit(1);
  }
  return us;
}

/* The raw echo's child: one connection per run, echoed with a spinning
** non-blocking read; between runs it answers the CPU question. */
static void raw_child(int cmd, int rep) {
  struct sockaddr_in sa;
  int lfd = bench_loopback_socket(SOCK_STREAM, &sa);
  listen(lfd, 1);
  put_u64(rep, ntohs(sa.sin_port));
  for (;;) {
    char op;
    if (read(cmd, &op, 1) != 1) _exit(0);
    if (op == 'u') {
      put_u64(rep, cpu_us_self());
      continue;
    }
    int fd = accept(lfd, NULL, NULL);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint8_t buf[24];
    for (;;) {
      size_t got = 0;
      while (got < sizeof buf) {
        ssize_t n = recv(fd, buf + got, sizeof buf - got, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) break;
        if (n > 0) got += (size_t)n;
        else sched_yield();
      }
      if (got < sizeof buf || write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) break;
    }
    close(fd);
  }
}

/* The bridge's child: memory TcpServer -> Emulate until told to end. */
static void bridge_child(int cmd, int rep) {
  sl_error err;
  sl_mem_bridge *srv = sl_mem_server_new("127.0.0.1", 0, &err);
  if (srv == NULL) {
    fprintf(stderr, "server: %s\n", err.msg);
    _exit(1);
  }
  sl_object *emulate = sl_emulate_object(sl_emulate_new(4, 4096, NULL));
  sl_mem_master_set_slave(sl_mem_bridge_object(srv)->mem_master, emulate);
  put_u64(rep, sl_mem_bridge_port(srv));
  char op;
  while (read(cmd, &op, 1) == 1) put_u64(rep, cpu_us_self());
  sl_object_stop(sl_mem_bridge_object(srv));
  sl_object_unref(sl_mem_bridge_object(srv));
  sl_object_unref(emulate);
  _exit(0);
}

static int inherited[4], ninherited;   /* earlier children's pipe ends */

static int spawn(child *c, void (*body)(int cmd, int rep)) {
  int a[2], b[2];
  if (pipe(a) != 0 || pipe(b) != 0) return -1;
  fflush(NULL);
  c->pid = fork();
  if (c->pid < 0) return -1;
  if (c->pid == 0) {
    for (int i = 0; i < ninherited; i++) close(inherited[i]);
    close(a[1]);
    close(b[0]);
    body(a[0], b[1]);
    _exit(0);
  }
  close(a[0]);
  close(b[1]);
  c->cmd = a[1];
  c->rep = b[0];
  if (ninherited + 2 <= 4) {
    inherited[ninherited++] = c->cmd;
    inherited[ninherited++] = c->rep;
  }
  uint64_t port = 0;
  if (get_u64(c->rep, &port) != 0) return -1;
  c->port = (uint32_t)port;
  return 0;
}

static void reap(child *c) {
  close(c->cmd);
  close(c->rep);
  waitpid(c->pid, NULL, 0);
}

/* Seconds for `trips` raw round trips with the echo child. */
static double raw_trips_2p(child *c, uint64_t trips) {
  if (write(c->cmd, "c", 1) != 1) return -1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  double dt = ping_pong(fd, trips, 1);
  close(fd);
  return dt;
}

/* One measurement: rate and CPU microseconds per transaction. */
typedef struct meas {
  double rate, cpu_us;
} meas;

static int round_trips(sl_mem_master *m, uint64_t trips, double *dt);

static meas measure_2p(child *c, sl_mem_master *m, uint64_t trips) {
  uint64_t c0 = child_cpu_us(c), s0 = cpu_us_self();
  double dt;
  uint64_t n = trips;
  if (m != NULL) {
    if (round_trips(m, trips / 2, &dt) != 0) {
      fprintf(stderr, "a register round trip failed\n");
      exit(1);
    }
    n = trips / 2 * 2;
  } else {
    dt = raw_trips_2p(c, trips);
    if (dt <= 0) {
      fprintf(stderr, "the raw ping-pong failed\n");
      exit(1);
    }
  }
  uint64_t s1 = cpu_us_self(), c1 = child_cpu_us(c);
  meas r = {(double)n / dt, (double)(s1 - s0 + c1 - c0) / (double)n};
  return r;
}

static void load_avg(double *l) {
  FILE *f = fopen("/proc/loadavg", "r");
  if (f == NULL || fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3) l[0] = l[1] = l[2] = -1;
  if (f) fclose(f);
}

/* Memory bridge and raw ping-pong between two processes, alternated. */
static void run_two_processes(child *srv, child *echo, double secs) {
  sl_error err;
  sl_mem_bridge *cli = sl_mem_client_new("127.0.0.1", srv->port, &err);
  if (cli == NULL) {
    fprintf(stderr, "client: %s\n", err.msg);
    exit(1);
  }
  sl_object *m = sl_mem_master_node_new(NULL);
  sl_mem_master_set_timeout(m->mem_master, 1000000);
  sl_mem_master_set_slave(m->mem_master, sl_mem_bridge_object(cli));
  sl_mem_client_wait_ready(cli, 5000000, 100000);
  double dt;
  if (round_trips(m->mem_master, 200, &dt) != 0) {
    fprintf(stderr, "a register round trip failed\n");
    exit(1);
  }
  uint64_t trips = (uint64_t)(400.0 * secs / (dt > 1e-6 ? dt : 1e-6));
  if (trips < 400) trips = 400;
  double la[3];
  load_avg(la);
  meas best = {0, 0}, raw = {0, 0};
  for (int r = 0; r < 3; r++) {
    meas a = measure_2p(srv, m->mem_master, trips);
    if (a.rate > best.rate) best = a;
    meas b = measure_2p(echo, NULL, trips);
    if (b.rate > raw.rate) raw = b;
  }
  double lb[3];
  load_avg(lb);
  printf("two processes (load average %.2f before, %.2f after)\n", la[0], lb[0]);
  printf("path                                      | round trips/s | vs raw | CPU us/trip | cores\n");
  printf("------------------------------------------+---------------+--------+-------------+------\n");
  printf("memory TcpClient -> TcpServer -> Emulate  | %13.0f | %5.1f%% | %11.2f | %4.2f\n",
         best.rate, 100.0 * best.rate / raw.rate, best.cpu_us, best.rate * best.cpu_us / 1e6);
  printf("raw TCP ping-pong, both ends spinning     | %13.0f |   100%% | %11.2f | %4.2f\n\n",
         raw.rate, raw.cpu_us, raw.rate * raw.cpu_us / 1e6);
  sl_object_stop(sl_mem_bridge_object(cli));
  sl_object_unref(m);
  sl_object_unref(sl_mem_bridge_object(cli));
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

  /* the children first, while this process has one thread */
  child srv2, echo2;
  if (spawn(&srv2, bridge_child) != 0 || spawn(&echo2, raw_child) != 0) {
    fprintf(stderr, "bench: cannot start the child processes\n");
    return 1;
  }
  run_two_processes(&srv2, &echo2, secs);
  reap(&srv2);
  reap(&echo2);

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
