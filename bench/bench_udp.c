/*
** bench_udp: datagrams through a udp.Client -> udp.Server pair over
** loopback, against a plain C UDP sender/receiver in the same run.
**
**   bench_udp [seconds-per-run=0.5 [datagrams-per-run]]
**
** ours: a producer thread sends one pooled frame of the given size into
** the Client again and again (as the raw sender sends one buffer); the
** Server's receive thread takes datagrams with recvmmsg and hands the
** frames to a counting slave itself.
** raw: one thread sendto()s in a blocking loop; the other is the best
** plain receiver: recvmmsg of 32 datagrams (as ours), blocking for the
** first, into buffers of the endpoint's maxPayload.
** The rate is datagrams received per second (from the first send to the
** last arrival); loss = sent - received, counted for both. Each size
** (1400 B, 8900 B) runs with the kernel's default receive buffer and with
** a 4 MiB one (setRxBufferCount; the raw receiver gets the same
** SO_RCVBUF). Ours and raw alternate; best of 3 each. The load average is
** printed at the start and the end.
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

typedef struct result {
  double rate;                       /* received per second */
  uint64_t sent, got;
  double rx_ns;                      /* receiving thread's CPU per datagram */
} result;

/* ---- raw ---- */

typedef struct raw_rx {
  int fd;
  uint32_t bufsize;                  /* each datagram's buffer, as ours */
  uint64_t got;
  double last;
  double cpu_ns;                     /* the thread's CPU time */
} raw_rx;

static double thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The best plain receiver: recvmmsg of RX_BATCH datagrams, blocking for
** the first (MSG_WAITFORONE), into buffers of the endpoint's maxPayload. */
static void *raw_receive(void *arg) {
  raw_rx *r = arg;
  char *buf = malloc((size_t)r->bufsize * RX_BATCH);
  struct mmsghdr m[RX_BATCH];
  struct iovec iov[RX_BATCH];
  for (;;) {
    for (int i = 0; i < RX_BATCH; i++) {
      iov[i] = (struct iovec){buf + (size_t)i * r->bufsize, r->bufsize};
      memset(&m[i], 0, sizeof m[i]);
      m[i].msg_hdr.msg_iov = &iov[i];
      m[i].msg_hdr.msg_iovlen = 1;
    }
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
  int rfd = bench_loopback_socket(SOCK_DGRAM, &sa), wfd = socket(AF_INET, SOCK_DGRAM, 0);
  if (rcvbuf > 0) setsockopt(rfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct timeval tv = {0, (long)(IDLE_S * 1e6)};
  setsockopt(rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char *buf = calloc(1, size);
  raw_rx r = {rfd, size > SL_UDP_MAX_PAYLOAD ? SL_UDP_JUMBO_MAX_PAYLOAD : SL_UDP_MAX_PAYLOAD,
              0, 0, 0};
  pthread_t t;
  pthread_create(&t, NULL, raw_receive, &r);
  double t0 = bench_now();
  uint64_t sent = 0;
  for (uint64_t i = 0; i < count; i++)
    if (sendto(wfd, buf, size, 0, (struct sockaddr *)&sa, sizeof sa) == (ssize_t)size) sent++;
  pthread_join(t, NULL);
  close(rfd);
  close(wfd);
  free(buf);
  result res = {r.got > 0 ? (double)r.got / (r.last - t0) : 0, sent, r.got,
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

typedef struct producer {
  sl_object *m;
  uint64_t count;
  uint32_t size;
} producer;

static void *produce(void *arg) {
  producer *p = arg;
  char *src = calloc(1, p->size);
  sl_frame *f = sl_master_req_frame(p->m->master, p->size, 1);
  sl_frame_write(f, src, 0, p->size);
  for (uint64_t i = 0; i < p->count; i++) sl_master_send_frame(p->m->master, f);
  sl_frame_unref(f);
  free(src);
  return NULL;
}

static result run_ours(uint64_t count, uint32_t size, uint32_t rxcount) {
  int jumbo = size > SL_UDP_MAX_PAYLOAD;
  sl_error err;
  sl_object *srv = sl_udp_object(sl_udp_new("127.0.0.1", 0, 1, jumbo, &err));
  if (srv == NULL) {
    fprintf(stderr, "server: %s\n", err.msg);
    exit(1);
  }
  sl_object *cli = sl_udp_object(sl_udp_new("127.0.0.1", sl_udp_port(sl_udp_from_object(srv)), 0, jumbo, &err));
  if (rxcount > 0) sl_udp_set_rx_buffer_count(sl_udp_from_object(srv), rxcount);
  sl_object *sink = sl_slave_new(NULL);
  sl_object *m = sl_master_new(NULL);
  sl_master_add_slave(srv->master, sink->slave);
  sl_master_add_slave(m->master, cli->slave);
  producer p = {m, count, size};
  pthread_t t;
  double t0 = bench_now(), last = t0;
  pthread_create(&t, NULL, produce, &p);
  pthread_join(t, NULL);
  uint64_t got = 0;
  for (;;) {                       /* until nothing arrives for IDLE_S */
    uint64_t g = sl_slave_get_frame_count(sink->slave);
    double tn = bench_now();
    if (g != got) {
      got = g;
      last = tn;
    } else if (tn - last > IDLE_S) {
      break;
    }
    bench_sleep_us(200);
  }
  sl_counter c[SL_COUNTERS_MAX];
  size_t nc = sl_object_counters(cli, c, SL_COUNTERS_MAX);
  uint64_t sent = 0;
  for (size_t i = 0; i < nc; i++)
    if (strcmp(c[i].name, "txFrames") == 0) sent = c[i].value;
  double rx_cpu = named_threads_cpu_ns("sl-udp-rx");   /* both ends' */
  sl_object_stop(cli);
  sl_object_stop(srv);
  sl_object_unref(m);
  sl_object_unref(cli);
  sl_object_unref(srv);
  sl_object_unref(sink);
  result res = {got > 0 ? (double)got / (last - t0) : 0, sent, got,
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

static void row(uint32_t size, const char *buf, result o, result r) {
  printf("%5u B | %-7s | %10.0f %6.2f%% | %10.0f %6.2f%% | %6.1f%% | %6.0f %6.0f\n",
         size, buf, o.rate, 100.0 * (double)(o.sent - o.got) / (double)o.sent,
         r.rate, 100.0 * (double)(r.sent - r.got) / (double)r.sent,
         100.0 * o.rate / r.rate, o.rx_ns, r.rx_ns);
}

int main(int argc, char **argv) {
  /* bench_udp [seconds-per-run [datagrams-per-run]], like the other
  ** benchmarks (bench/run.sh passes the seconds): the count is sized for
  ** about that long at the raw loop's ~600,000 datagrams/s. */
  double secs = argc > 1 ? atof(argv[1]) : 0.5;
  uint64_t count = argc > 2 ? strtoull(argv[2], NULL, 10)
                            : (uint64_t)(secs * 600000.0);
  if (count < 10000) count = 10000;
  sl_log_set_emit(0);              /* the drop warnings are expected here */
  printf("streamlua %s UDP over loopback (udp.Client -> udp.Server)\n", SL_VERSION);
  printf("%llu datagrams per run, best of 3 by rate; loss = sent - received; "
         "load %.2f\n\n", (unsigned long long)count, load1());
  printf("size    | rx buf  | ours dgram/s   loss   |  raw dgram/s   loss   | ours/raw | rx ns/dgram ours raw\n");
  printf("--------+---------+-----------------------+-----------------------+----------+---------------------\n");
  static const uint32_t sizes[] = {1400, 8900};
  for (int k = 0; k < 2; k++) {
    for (int big = 0; big < 2; big++) {
      uint32_t size = sizes[k], mtu = size > SL_UDP_MAX_PAYLOAD ? 9000 : 1500;
      uint32_t rxcount = big ? (4u << 20) / mtu : 0;
      result bo = {0, 1, 0, 0}, br = {0, 1, 0, 0};
      for (int r = 0; r < 3; r++) {
        result o = run_ours(count, size, rxcount);
        result w = run_raw(count, size, big ? (int)(rxcount * mtu) : 0);
        if (o.rate > bo.rate) bo = o;
        if (w.rate > br.rate) br = w;
      }
      row(size, big ? "4 MiB" : "default", bo, br);
    }
  }
  printf("load %.2f at the end\n", load1());
  return 0;
}
