/*
** bench_udp: the udp.Server's receive path over loopback, against a plain
** C receiver in the same run, with the same sender.
**
**   bench_udp [seconds-per-run=0.5 [datagrams-per-run [pairs=7]]]
**
** Both sides get the same sender: one thread sendto()s one buffer of the
** given size in a blocking loop to the receiving socket's port.
** ours: a udp.Server whose receive thread takes datagrams with recvmmsg
** and hands the frames to a sink slave itself.
** raw: the best plain receiver doing the work a server must: recvmmsg of
** 32 datagrams (as ours), blocking for the first, into buffers of the
** endpoint's maxPayload, with each datagram's source address; the vector
** is set up once. Neither reads the bytes after the kernel's copy.
** Each sink does the same per batch: it adds the count and notes the
** time. The rate is datagrams received per second (from the first send
** to the last arrival); loss = sent - received, counted the same way for
** both. Each size (1400 B, 8900 B) runs with the kernel's default receive
** buffer (neither asks for one) and with a 4 MiB one (setRxBufferCount;
** the raw receiver gets the same SO_RCVBUF). Ours and raw alternate, the
** one going first swapping each pair; each row gives the median and the
** range over the pairs, and ours/raw as the median (and range) of the
** pairs' ratios. The load average is printed at the start and the end.
*/
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/streamlua.h"
#include "streamlua/udp.h"
#include "bench.h"

#define IDLE_S 0.2                   /* nothing for this long: the run is over */
#define RX_BATCH 32                  /* datagrams per recvmmsg, as the endpoint */
#define MAX_PAIRS 31

typedef struct result {
  double rate;                       /* received per second */
  double loss;                       /* (sent - received) / sent */
  double rx_ns;                      /* receiving thread's CPU per datagram */
} result;

/* ---- the sender, the same for both ---- */

/* sendto()s count datagrams of size bytes to sa; returns how many went. */
static uint64_t blast(const struct sockaddr_in *sa, uint32_t size, uint64_t count) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  char *buf = calloc(1, size);
  uint64_t sent = 0;
  for (uint64_t i = 0; i < count; i++)
    if (sendto(fd, buf, size, 0, (const struct sockaddr *)sa, sizeof *sa) == (ssize_t)size)
      sent++;
  free(buf);
  close(fd);
  return sent;
}

static double thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- raw ---- */

typedef struct raw_rx {
  int fd;
  uint32_t bufsize;                  /* each datagram's buffer, as ours */
  uint64_t got;
  double last;
  double cpu_ns;                     /* the thread's CPU time */
} raw_rx;

/* The best plain receiver: recvmmsg of RX_BATCH datagrams, blocking for
** the first (MSG_WAITFORONE), into buffers of the endpoint's maxPayload,
** with the source addresses (a server answers its last sender). */
static void *raw_receive(void *arg) {
  raw_rx *r = arg;
  char *buf = malloc((size_t)r->bufsize * RX_BATCH);
  struct mmsghdr m[RX_BATCH];
  struct iovec iov[RX_BATCH];
  struct sockaddr_in from[RX_BATCH];
  memset(m, 0, sizeof m);
  for (int i = 0; i < RX_BATCH; i++) {
    iov[i] = (struct iovec){buf + (size_t)i * r->bufsize, r->bufsize};
    m[i].msg_hdr.msg_iov = &iov[i];
    m[i].msg_hdr.msg_iovlen = 1;
    m[i].msg_hdr.msg_name = &from[i];
  }
  for (;;) {
    for (int i = 0; i < RX_BATCH; i++) m[i].msg_hdr.msg_namelen = sizeof from[i];
    int n = recvmmsg(r->fd, m, RX_BATCH, MSG_WAITFORONE, NULL);
    if (n <= 0) break;               /* the idle timeout */
    r->got += (uint64_t)n;
    r->last = bench_now();
  }
  r->cpu_ns = thread_cpu_ns();
  free(buf);
  return NULL;
}

static result run_raw(uint64_t count, uint32_t size, int rcvbuf) {
  struct sockaddr_in sa;
  int rfd = bench_loopback_socket(SOCK_DGRAM, &sa);
  if (rcvbuf > 0) setsockopt(rfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct timeval tv = {0, (long)(IDLE_S * 1e6)};
  setsockopt(rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  raw_rx r = {rfd, size > SL_UDP_MAX_PAYLOAD ? SL_UDP_JUMBO_MAX_PAYLOAD : SL_UDP_MAX_PAYLOAD,
              0, 0, 0};
  pthread_t t;
  pthread_create(&t, NULL, raw_receive, &r);
  double t0 = bench_now();
  uint64_t sent = blast(&sa, size, count);
  pthread_join(t, NULL);
  close(rfd);
  result res = {r.got > 0 ? (double)r.got / (r.last - t0) : 0,
                sent > 0 ? (double)(sent - r.got) / (double)sent : 1,
                r.got > 0 ? r.cpu_ns / (double)r.got : 0};
  return res;
}

/* ---- ours ---- */

/* CPU time so far of this process's threads named `name` (schedstat). */
static double named_threads_cpu_ns(const char *name) {
  double ns = 0;
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue;
    if (fgets(comm, sizeof comm, f) == NULL) comm[0] = '\0';
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    if (strcmp(comm, name) != 0) continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
    unsigned long long run = 0;
    if ((f = fopen(path, "r")) == NULL) continue;
    if (fscanf(f, "%llu", &run) == 1) ns += (double)run;
    fclose(f);
  }
  if (d != NULL) closedir(d);
  return ns;
}

/* The sink: per batch, what the raw receiver does (count, note the time).
** Only the server's receive thread calls it. */
typedef struct sink {
  sl_object obj;
  sl_slave slave;
  _Atomic uint64_t got;
  _Atomic double last;
} sink;

static void sink_accept_frames(sl_slave *s, sl_frame **fs, size_t n) {
  (void)fs;
  sink *k = (sink *)s->owner;
  atomic_store_explicit(&k->got, atomic_load_explicit(&k->got, memory_order_relaxed) + n,
                        memory_order_relaxed);
  atomic_store_explicit(&k->last, bench_now(), memory_order_relaxed);
}

static void sink_accept(sl_slave *s, sl_frame *f) { sink_accept_frames(s, &f, 1); }

static const sl_slave_ops sink_ops = {.accept_frame = sink_accept,
                                      .accept_frames = sink_accept_frames};

static void sink_destroy(sl_object *obj) {
  sink *k = (sink *)obj;
  sl_slave_fini(&k->slave);
  free(k);
}

static const sl_class sink_class = {.name = "BenchSink", .destroy = sink_destroy};

typedef struct sender {
  struct sockaddr_in sa;
  uint32_t size;
  uint64_t count, sent;
} sender;

static result run_ours(uint64_t count, uint32_t size, uint32_t rxcount) {
  int jumbo = size > SL_UDP_MAX_PAYLOAD;
  sl_error err;
  sl_object *srv = sl_udp_object(sl_udp_new("127.0.0.1", 0, 1, jumbo, &err));
  if (srv == NULL) {
    fprintf(stderr, "server: %s\n", err.msg);
    exit(1);
  }
  if (rxcount > 0) sl_udp_set_rx_buffer_count(sl_udp_from_object(srv), rxcount);
  sink *k = calloc(1, sizeof *k);
  sl_object_init(&k->obj, &sink_class);
  if (sl_slave_init(&k->slave, &sink_ops, &k->obj) != SL_OK) exit(1);
  sl_master_add_slave(srv->master, &k->slave);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                           .sin_port = htons((uint16_t)sl_udp_port(sl_udp_from_object(srv)))};
  double t0 = bench_now();
  uint64_t sent = blast(&sa, size, count);
  /* Until nothing has arrived for IDLE_S (looked at rarely: this thread
  ** must not take the cores' time from the receiver). */
  for (;;) {
    bench_sleep_us(20000);
    double last = atomic_load(&k->last);
    if (bench_now() - (last > t0 ? last : t0) > IDLE_S) break;
  }
  uint64_t got = atomic_load(&k->got);
  double last = atomic_load(&k->last);
  double rx_cpu = named_threads_cpu_ns("sl-udp-rx");
  sl_object_stop(srv);
  sl_object_unref(srv);
  sl_object_unref(&k->obj);
  result res = {got > 0 ? (double)got / (last - t0) : 0,
                sent > 0 ? (double)(sent - got) / (double)sent : 1,
                got > 0 ? rx_cpu / (double)got : 0};
  return res;
}

/* The 1-minute load average, to print beside the figures. */
static double load1(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f != NULL) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median, low and high of n values (sorted in place). */
static void stats(double *v, int n, double *med, double *lo, double *hi) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  *med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  *lo = v[0];
  *hi = v[n - 1];
}

/* One row: each figure as median [low-high] over the pairs. */
static void row(uint32_t size, const char *buf, const result *o, const result *r, int n) {
  double v[MAX_PAIRS], m[5], lo[5], hi[5];
  for (int f = 0; f < 5; f++) {
    for (int i = 0; i < n; i++) {
      switch (f) {
        case 0: v[i] = o[i].rate / 1e3; break;
        case 1: v[i] = 100.0 * o[i].loss; break;
        case 2: v[i] = r[i].rate / 1e3; break;
        case 3: v[i] = 100.0 * r[i].loss; break;
        default: v[i] = 100.0 * o[i].rate / r[i].rate; break;
      }
    }
    stats(v, n, &m[f], &lo[f], &hi[f]);
  }
  double on[MAX_PAIRS], rn[MAX_PAIRS], om, rm, x, y;
  for (int i = 0; i < n; i++) {
    on[i] = o[i].rx_ns;
    rn[i] = r[i].rx_ns;
  }
  stats(on, n, &om, &x, &y);
  stats(rn, n, &rm, &x, &y);
  printf("%5u B | %-7s | %6.1f [%5.1f-%5.1f] %5.2f%% [%5.2f-%5.2f] |"
         " %6.1f [%5.1f-%5.1f] %5.2f%% [%5.2f-%5.2f] | %5.1f%% [%5.1f-%5.1f] | %5.0f %5.0f\n",
         size, buf, m[0], lo[0], hi[0], m[1], lo[1], hi[1], m[2], lo[2], hi[2], m[3],
         lo[3], hi[3], m[4], lo[4], hi[4], om, rm);
  fflush(stdout);
}

int main(int argc, char **argv) {
  /* bench_udp [seconds-per-run [datagrams-per-run [pairs]]], like the
  ** other benchmarks (bench/run.sh passes the seconds): the count is sized
  ** for about that long at the raw loop's ~600,000 datagrams/s. */
  double secs = argc > 1 ? atof(argv[1]) : 0.5;
  uint64_t count = argc > 2 ? strtoull(argv[2], NULL, 10)
                            : (uint64_t)(secs * 600000.0);
  int pairs = argc > 3 ? atoi(argv[3]) : 7;
  if (count < 10000) count = 10000;
  if (pairs < 1) pairs = 1;
  if (pairs > MAX_PAIRS) pairs = MAX_PAIRS;
  sl_log_set_emit(0);              /* the drop warnings are expected here */
  printf("streamlua %s UDP over loopback: udp.Server against a plain recvmmsg "
         "receiver, the same sendto() sender\n", SL_VERSION);
  printf("%llu datagrams per run, %d pairs alternating; median [low-high]; "
         "loss = (sent - received) / sent; load %.2f\n\n",
         (unsigned long long)count, pairs, load1());
  printf("size    | rx buf  | ours k dgram/s          loss                 |"
         "  raw k dgram/s          loss                 | ours/raw              |"
         " rx ns/dgram ours raw\n");
  static const uint32_t sizes[] = {1400, 8900};
  for (int k = 0; k < 2; k++) {
    for (int big = 0; big < 2; big++) {
      uint32_t size = sizes[k], mtu = size > SL_UDP_MAX_PAYLOAD ? 9000 : 1500;
      uint32_t rxcount = big ? (4u << 20) / mtu : 0;
      result o[MAX_PAIRS], w[MAX_PAIRS];
      for (int r = 0; r < pairs; r++) {
        if (r % 2 == 0) {
          o[r] = run_ours(count, size, rxcount);
          w[r] = run_raw(count, size, big ? (int)(rxcount * mtu) : 0);
        } else {
          w[r] = run_raw(count, size, big ? (int)(rxcount * mtu) : 0);
          o[r] = run_ours(count, size, rxcount);
        }
      }
      row(size, big ? "4 MiB" : "default", o, w, pairs);
    }
  }
  printf("load %.2f at the end\n", load1());
  return 0;
}
