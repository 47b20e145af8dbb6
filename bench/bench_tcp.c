/*
** bench_tcp: frames through a TcpClient -> TcpServer pair over loopback,
** against a plain C TCP sender/receiver moving the same bytes in the same
** run.
**
**   bench_tcp [seconds-per-measurement]
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

static double run_raw(uint64_t frames, uint32_t size) {
  struct sockaddr_in sa;
  int lfd = bench_loopback_socket(SOCK_STREAM, &sa);
  listen(lfd, 1);
  int wfd = socket(AF_INET, SOCK_STREAM, 0);
  connect(wfd, (struct sockaddr *)&sa, sizeof sa);
  int rfd = accept(lfd, NULL, NULL);
  close(lfd);
  int one = 1;
  setsockopt(wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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

/* One full table with `threads` I/O threads. */
static uint32_t only_size;     /* 0: every size */

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
    if (size >= (1 << 20)) snprintf(label, sizeof label, "%u MiB", size >> 20);
    else if (size >= 1024) snprintf(label, sizeof label, "%u KiB", size >> 10);
    else snprintf(label, sizeof label, "%u B", size);
    printf("%-8s | %14.0f %6.2f | %14.0f %6.2f | %14.0f %6.2f | %9.1f%%\n",
           label, fb, fb * size / 1e9, fs, fs * size / 1e9, fr, fr * size / 1e9,
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
  double secs = argc > 1 ? atof(argv[1]) : 0.5;
  only_size = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 0;
  printf("streamlua %s stream TCP bridge over loopback (TcpClient -> TcpServer)\n",
         SL_VERSION);
  printf("best of 3 runs of ~%.2f s; raw: plain write()/read() of the same bytes\n",
         secs);
  printf("bridge: new frame each (req+write+send); resend: one frame sent again and\n"
         "again, as the raw sender sends one buffer; the ratio is resend/raw\n\n");
  if (run_all(secs, 1) != 0 || run_all(secs, 2) != 0) return 1;
  printf("checks: every frame and byte arrived, the raw reader read every byte: ok\n");
  return 0;
}
