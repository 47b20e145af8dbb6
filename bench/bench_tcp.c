/*
** bench_tcp: frames through a TcpClient -> TcpServer pair over loopback,
** against a plain C TCP sender/receiver moving the same bytes in the same
** run.
**
**   bench_tcp [--procs] [seconds-per-measurement] [size] [b|s|r]
**
** First the two-process table (the receiver in a child process, every
** object at its defaults: see run_procs), then, unless --procs, the
** in-process tables with one and two I/O threads. A size measures only
** that size; b, s or r only the bridge, resend or raw case of the
** two-process table (for profiling).
**
** bridge: a producer thread requests pooled frames (the client's pool,
** fixed size, blocks kept) from the client's master side, writes the
** payload and sends them into the TcpClient; the
** TcpServer's delivery thread hands them to a counting slave. Time runs
** until the slave has every frame.
** raw: one thread writes the same number of bytes (each message's 4 parts
** as ZMTP puts them on the wire: 10 + 2 or 9 + size bytes) with write() of
** 64 KiB chunks (or one message per write at 1 MiB), the other reads them
** with read() into a 256 KiB buffer.
** Best of 3 runs each; the checks are that every frame arrived with its
** bytes counted, and that the raw receiver read every byte.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/streamlua.h"
#include "streamlua/io.h"
#include "streamlua/tcp_bridge.h"
#include "bench.h"

/* ---- raw ---- */

typedef struct raw_ctx {
  int fd;
  uint64_t bytes;
  uint64_t got;
} raw_ctx;

static void *raw_reader(void *arg) {
  raw_ctx *c = arg;
  size_t cap = 256 * 1024;
  char *buf = malloc(cap);
  while (c->got < c->bytes) {
    ssize_t n = read(c->fd, buf, cap);
    if (n <= 0) break;
    c->got += (uint64_t)n;
  }
  free(buf);
  return NULL;
}

/* A connected pair over loopback: *wfd writes (no Nagle), *rfd reads. */
static void raw_connect(int *wfd, int *rfd) {
  struct sockaddr_in sa;
  int lfd = bench_loopback_socket(SOCK_STREAM, &sa);
  listen(lfd, 1);
  *wfd = socket(AF_INET, SOCK_STREAM, 0);
  connect(*wfd, (struct sockaddr *)&sa, sizeof sa);
  *rfd = accept(lfd, NULL, NULL);
  close(lfd);
  int one = 1;
  setsockopt(*wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static double run_raw(uint64_t frames, uint32_t size) {
  int wfd, rfd;
  raw_connect(&wfd, &rfd);
  uint64_t per = 10 + (size <= 255 ? 2 : 9) + (uint64_t)size;
  raw_ctx c = {rfd, frames * per, 0};
  size_t chunk = size >= 65536 ? per : 65536;
  char *buf = malloc(chunk);
  memset(buf, 0x5a, chunk);
  pthread_t t;
  double t0 = bench_now();
  pthread_create(&t, NULL, raw_reader, &c);
  for (uint64_t left = c.bytes; left > 0;) {
    size_t k = left < chunk ? (size_t)left : chunk;
    ssize_t n = write(wfd, buf, k);
    if (n <= 0) break;
    left -= (uint64_t)n;
  }
  pthread_join(t, NULL);
  double dt = bench_now() - t0;
  close(wfd);
  close(rfd);
  free(buf);
  if (c.got != c.bytes) {
    fprintf(stderr, "raw: read %llu of %llu bytes\n", (unsigned long long)c.got,
            (unsigned long long)c.bytes);
    exit(1);
  }
  return dt;
}

/* ---- bridge ---- */

typedef struct producer {
  sl_object *m;
  uint64_t frames;
  uint32_t size;
  int resend;                  /* send one frame over and over, as raw does */
} producer;

static void *produce(void *arg) {
  producer *p = arg;
  char *src = malloc(p->size + 1);
  memset(src, 0xa5, p->size + 1);
  if (p->resend) {
    sl_frame *f = sl_master_req_frame(p->m->master, p->size, 1);
    sl_frame_write(f, src, 0, p->size);
    for (uint64_t i = 0; i < p->frames; i++) sl_master_send_frame(p->m->master, f);
    sl_frame_unref(f);
    free(src);
    return NULL;
  }
  for (uint64_t i = 0; i < p->frames; i++) {
    sl_frame *f = sl_master_req_frame(p->m->master, p->size, 1);
    sl_frame_write(f, src, 0, p->size);
    sl_master_send_frame(p->m->master, f);
    sl_frame_unref(f);
  }
  free(src);
  return NULL;
}

static double run_bridge(sl_object *srv, sl_object *sink, sl_object *m,
                         uint64_t frames, uint32_t size, int resend) {
  uint64_t before = sl_slave_get_frame_count(sink->slave);
  uint64_t bytes0 = sl_slave_get_byte_count(sink->slave);
  producer p = {m, frames, size, resend};
  pthread_t t;
  double t0 = bench_now();
  pthread_create(&t, NULL, produce, &p);
  while (sl_slave_get_frame_count(sink->slave) - before < frames) {
    bench_sleep_us(50);
  }
  double dt = bench_now() - t0;
  pthread_join(t, NULL);
  if (sl_slave_get_byte_count(sink->slave) - bytes0 != frames * size) {
    fprintf(stderr, "bridge: byte count mismatch\n");
    exit(1);
  }
  (void)srv;
  return dt;
}

static uint32_t only_size;     /* 0: every size */
static int only_case;          /* 0: all; 'b'ridge, 's' resend or 'r'aw */

/* ---- two processes ---- */

/*
** The receiving side in a child process, the sending side in this one,
** every object at its defaults: a TcpServer with a counting slave in the
** child, a TcpClient fed by this process's thread with frames from the
** client's default pool. The raw loop has the same shape: a child reads
** a plain socket into a 256 KiB buffer, this process writes the same
** bytes as run_raw does. The child says "done" over a pipe; the time runs
** from the first send to that word. Fork happens before this process
** starts any thread.
*/
typedef struct proc_cmd {
  uint64_t frames;             /* 0: end */
  uint64_t size;
} proc_cmd;

static int read_full(int fd, void *p, size_t n) {
  for (size_t got = 0; got < n;) {
    ssize_t r = read(fd, (char *)p + got, n - got);
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

/* The child: a TcpServer, a counting slave; each command adds to the
** frames it waits for, so frames that come before the command count. */
static int bridge_child(int cmd_fd, int reply_fd) {
  sl_error err;
  sl_tcp_bridge *sb = sl_tcp_bridge_new("127.0.0.1", 0, 1, &err);
  if (sb == NULL) {
    fprintf(stderr, "server: %s\n", err.msg);
    return 1;
  }
  sl_object *srv = sl_tcp_bridge_object(sb);
  sl_object *sink = sl_slave_new(NULL);
  sl_master_add_slave(srv->master, sink->slave);
  uint32_t port = sl_tcp_bridge_port(sb);
  if (write(reply_fd, &port, sizeof port) != sizeof port) return 1;
  uint64_t want = 0, want_bytes = 0;
  proc_cmd c;
  while (read_full(cmd_fd, &c, sizeof c) == 0 && c.frames > 0) {
    want += c.frames;
    want_bytes += c.frames * c.size;
    /* Looks every 1/16 of the time waited so far (50 us to 1 ms): a look
    ** every 100 us woke this thread 4,500 times in a 64 B run of 3 M
    ** frames, a third of the receiver's context switches, each taking a
    ** CPU from the bridge's threads (the raw reader has no such look). */
    double t0 = bench_now();
    while (sl_slave_get_frame_count(sink->slave) < want) {
      long us = (long)((bench_now() - t0) * 1e6 / 16);
      bench_sleep_us(us < 50 ? 50 : us > 1000 ? 1000 : us);
    }
    char ok = sl_slave_get_byte_count(sink->slave) == want_bytes ? 'y' : 'n';
    if (write(reply_fd, &ok, 1) != 1) break;
  }
  sl_object_stop(srv);
  sl_object_unref(srv);
  sl_object_unref(sink);
  return 0;
}

typedef struct procs {
  int cmd_fd, reply_fd;
  pid_t child;
  sl_object *cli, *m;
} procs;

static int procs_start(procs *p) {
  int a[2], b[2];
  if (pipe(a) != 0 || pipe(b) != 0) return -1;
  fflush(stdout);
  p->child = fork();
  if (p->child < 0) return -1;
  if (p->child == 0) {
    close(a[1]);
    close(b[0]);
    _exit(bridge_child(a[0], b[1]));
  }
  close(a[0]);
  close(b[1]);
  p->cmd_fd = a[1];
  p->reply_fd = b[0];
  uint32_t port;
  if (read_full(p->reply_fd, &port, sizeof port) != 0) return -1;
  sl_error err;
  sl_tcp_bridge *cb = sl_tcp_bridge_new("127.0.0.1", port, 0, &err);
  if (cb == NULL) {
    fprintf(stderr, "client: %s\n", err.msg);
    return -1;
  }
  p->cli = sl_tcp_bridge_object(cb);
  p->m = sl_master_new(NULL);
  sl_master_add_slave(p->m->master, p->cli->slave);
  while (!sl_tcp_bridge_ready(cb)) bench_sleep_us(1000);
  return 0;
}

static void procs_end(procs *p) {
  proc_cmd c = {0, 0};
  if (write(p->cmd_fd, &c, sizeof c) != sizeof c) perror("bench_tcp: pipe");
  int st;
  waitpid(p->child, &st, 0);
  sl_object_stop(p->cli);
  sl_object_unref(p->m);
  sl_object_unref(p->cli);
  close(p->cmd_fd);
  close(p->reply_fd);
}

static double procs_bridge(procs *p, uint64_t frames, uint32_t size, int resend) {
  proc_cmd c = {frames, size};
  if (write(p->cmd_fd, &c, sizeof c) != sizeof c) exit(1);
  producer pr = {p->m, frames, size, resend};
  double t0 = bench_now();
  produce(&pr);
  char ok;
  if (read_full(p->reply_fd, &ok, 1) != 0 || ok != 'y') {
    fprintf(stderr, "two processes: the receiver did not get every frame and byte\n");
    exit(1);
  }
  return bench_now() - t0;
}

/* The raw loop, the reader in a child process. */
static double procs_raw(uint64_t frames, uint32_t size) {
  int wfd, rfd;
  raw_connect(&wfd, &rfd);
  uint64_t per = 10 + (size <= 255 ? 2 : 9) + (uint64_t)size;
  uint64_t total = frames * per;
  int done[2];
  if (pipe(done) != 0) exit(1);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(wfd);
    close(done[0]);
    raw_ctx c = {rfd, total, 0};
    raw_reader(&c);
    char ok = c.got == total ? 'y' : 'n';
    _exit(write(done[1], &ok, 1) == 1 ? 0 : 1);
  }
  close(rfd);
  close(done[1]);
  size_t chunk = size >= 65536 ? per : 65536;
  char *buf = malloc(chunk);
  memset(buf, 0x5a, chunk);
  double t0 = bench_now();
  for (uint64_t left = total; left > 0;) {
    size_t k = left < chunk ? (size_t)left : chunk;
    ssize_t n = write(wfd, buf, k);
    if (n <= 0) break;
    left -= (uint64_t)n;
  }
  char ok = 'n';
  if (read_full(done[0], &ok, 1) != 0) ok = 'n';
  double dt = bench_now() - t0;
  int st;
  waitpid(pid, &st, 0);
  close(wfd);
  close(done[0]);
  free(buf);
  if (ok != 'y') {
    fprintf(stderr, "raw, two processes: the reader did not read every byte\n");
    exit(1);
  }
  return dt;
}

static const char *size_label(uint32_t size, char *label, size_t n) {
  if (size >= (1 << 20)) snprintf(label, n, "%u MiB", size >> 20);
  else if (size >= 1024) snprintf(label, n, "%u KiB", size >> 10);
  else snprintf(label, n, "%u B", size);
  return label;
}

static int run_procs(double secs) {
  procs p;
  if (procs_start(&p) != 0) {
    fprintf(stderr, "two processes: cannot start\n");
    return 1;
  }
  static const uint32_t sizes[] = {64, 4096, 65536, 1 << 20};
  printf("two processes, every object at its defaults (1 I/O thread each)\n");
  printf("size     | bridge frame/s   GB/s | resend frame/s   GB/s |    raw frame/s   GB/s | bridge/raw | resend/raw\n");
  printf("---------+-----------------------+-----------------------+-----------------------+------------+-----------\n");
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    uint32_t size = sizes[k];
    if (only_size != 0 && size != only_size) continue;
    uint64_t frames = 1000;
    double dt = only_case == 'r' ? procs_raw(frames, size)
                                 : procs_bridge(&p, frames, size, only_case == 's');
    frames = (uint64_t)((double)frames * secs / (dt > 1e-6 ? dt : 1e-6));
    if (frames < 100) frames = 100;
    if (getenv("BENCH_TCP_FRAMES") != NULL)     /* a fixed count, to profile */
      frames = strtoull(getenv("BENCH_TCP_FRAMES"), NULL, 0);
    double best_b = 1e30, best_s = 1e30, best_r = 1e30;
    for (int r = 0; r < 3; r++) {
      double b = only_case == 0 || only_case == 'b' ? procs_bridge(&p, frames, size, 0) : 1e30;
      double sr = only_case == 0 || only_case == 's' ? procs_bridge(&p, frames, size, 1) : 1e30;
      double w = only_case == 0 || only_case == 'r' ? procs_raw(frames, size) : 1e30;
      if (b < best_b) best_b = b;
      if (sr < best_s) best_s = sr;
      if (w < best_r) best_r = w;
    }
    double fb = (double)frames / best_b, fs = (double)frames / best_s;
    double fr = (double)frames / best_r;
    if (only_case != 0 && only_case != 'r') best_r = 0;   /* no ratio */
    char label[16];
    printf("%-8s | %14.0f %6.2f | %14.0f %6.2f | %14.0f %6.2f | %9.1f%% | %9.1f%%\n",
           size_label(size, label, sizeof label), fb, fb * size / 1e9, fs,
           fs * size / 1e9, fr, fr * size / 1e9, 100.0 * best_r / best_b,
           100.0 * best_r / best_s);
    fflush(stdout);
  }
  printf("\n");
  procs_end(&p);
  return 0;
}

/* One full table with `threads` I/O threads. */

static int run_all(double secs, int threads) {
  if (sl_io_set_threads(threads) != 0) {
    fprintf(stderr, "cannot set %d I/O threads\n", threads);
    return 1;
  }
  sl_error err;
  sl_object *srv = sl_tcp_bridge_object(sl_tcp_bridge_new("127.0.0.1", 0, 1, &err));
  if (srv == NULL) {
    fprintf(stderr, "server: %s\n", err.msg);
    return 1;
  }
  sl_object *cli = sl_tcp_bridge_object(sl_tcp_bridge_new("127.0.0.1", sl_tcp_bridge_port(sl_tcp_bridge_from_object(srv)), 0, &err));
  sl_object *sink = sl_slave_new(NULL);
  sl_object *m = sl_master_new(NULL);
  sl_master_add_slave(srv->master, sink->slave);
  sl_master_add_slave(m->master, cli->slave);
  while (!sl_tcp_bridge_ready(sl_tcp_bridge_from_object(cli))) {
    bench_sleep_us(1000);
  }
  static const uint32_t sizes[] = {64, 1024, 65536, 1 << 20};
  printf("%d I/O thread%s (sending and receiving connections %s)\n", threads,
         threads > 1 ? "s" : "", threads > 1 ? "on two threads" : "on one thread");
  printf("size     | bridge frame/s   GB/s | resend frame/s   GB/s |    raw frame/s   GB/s | resend/raw\n");
  printf("---------+-----------------------+-----------------------+-----------------------+-----------\n");
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    uint32_t size = sizes[k];
    if (only_size != 0 && size != only_size) continue;
    /* pooled frames on the sending side: the client's pool keeps blocks */
    sl_pool_set_fixed_size(cli->slave->pool, size);
    sl_pool_set_pool_size(cli->slave->pool, 2048);
    uint64_t frames = 1000;
    double dt = run_bridge(srv, sink, m, frames, size, 0);
    frames = (uint64_t)((double)frames * secs / (dt > 1e-6 ? dt : 1e-6));
    if (frames < 100) frames = 100;
    double best_b = 1e30, best_s = 1e30, best_r = 1e30;
    for (int r = 0; r < 3; r++) {
      double b = run_bridge(srv, sink, m, frames, size, 0);
      double sr = run_bridge(srv, sink, m, frames, size, 1);
      double w = run_raw(frames, size);
      if (b < best_b) best_b = b;
      if (sr < best_s) best_s = sr;
      if (w < best_r) best_r = w;
    }
    double fb = (double)frames / best_b, fs = (double)frames / best_s;
    double fr = (double)frames / best_r;
    char label[16];
    printf("%-8s | %14.0f %6.2f | %14.0f %6.2f | %14.0f %6.2f | %9.1f%%\n",
           size_label(size, label, sizeof label), fb, fb * size / 1e9, fs, fs * size / 1e9, fr, fr * size / 1e9,
           100.0 * best_r / best_s);
  }
  printf("\n");
  sl_object_stop(cli);
  sl_object_stop(srv);
  sl_object_unref(m);
  sl_object_unref(cli);
  sl_object_unref(srv);
  sl_object_unref(sink);
  return 0;
}

int main(int argc, char **argv) {
  int procs_only = argc > 1 && strcmp(argv[1], "--procs") == 0;
  if (procs_only) {
    argc--;
    argv++;
  }
  double secs = argc > 1 ? atof(argv[1]) : 0.5;
  only_size = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 0;
  only_case = argc > 3 ? argv[3][0] : 0;
  printf("streamlua %s stream TCP bridge over loopback (TcpClient -> TcpServer)\n",
         SL_VERSION);
  printf("best of 3 runs of ~%.2f s; raw: plain write()/read() of the same bytes\n",
         secs);
  printf("bridge: new frame each (req+write+send); resend: one frame sent again and\n"
         "again, as the raw sender sends one buffer; the ratio is resend/raw\n\n");
  /* The two-process table first: no thread runs yet when it forks. */
  if (run_procs(secs) != 0) return 1;
  if (procs_only) {
    printf("checks: every frame and byte arrived, the raw reader read every byte: ok\n");
    return 0;
  }
  if (run_all(secs, 1) != 0 || run_all(secs, 2) != 0) return 1;
  printf("checks: every frame and byte arrived, the raw reader read every byte: ok\n");
  return 0;
}
