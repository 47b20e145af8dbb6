/*
** bench_link: frames through the firmware link between two processes on
** loopback, against a raw UDP loop moving the same bytes in datagrams of
** the same size, in the same run.
**
**   bench_link [seconds-per-run=0.5]
**
** link: the parent is a UdpRssiPack client (packetizer v2), the child a
** UdpRssiPack server; a PRBS generator sends frames into the client's
** application(1) back to back (genFrame in one thread: it waits for RSSI's
** window), a PRBS checker takes them from the server's application(1).
** Payload generation and checking are off, as in Rogue's own figures (the
** header's sequence number is still checked, so a lost or repeated frame
** is an error); the run fails unless every frame arrives.
** raw: a child process binds a UDP socket and recvfrom()s in a blocking
** loop; the parent cuts each frame as packetizer v2 over RSSI would (a
** segment carries 8,936 bytes of frame with jumbo, 1,440 without, plus 24
** bytes of headers: datagrams of 8,960 and 1,464 bytes at most) and
** sendto()s the datagrams in a blocking loop. Both sockets get the same
** receive buffer as the link's UDP endpoint. The rate is frame bytes
** received per second, from the first send to the last arrival (the
** monotonic clock is the machine's, so both processes read the same one);
** loss = datagrams sent - received.
** Best of 3 by rate. BENCH_LINK_MODE (jumbo or standard) and
** BENCH_LINK_SIZE (10000, 65536 or 1048576) run one mode or size only;
** BENCH_LINK_WINDOW sets both ends' max outstanding segments;
** BENCH_LINK_NORAW skips the raw loop (for profiling the link alone);
** BENCH_LINK_LOG shows the server's warnings. A failed run prints what
** the server counted.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "streamlua/streamlua.h"
#include "streamlua/udp.h"
#include "streamlua/udp_rssi_pack.h"
#include "bench.h"

#define IDLE_S 0.3                    /* nothing for this long: the run is over */
#define V2_OVERHEAD 24u               /* RSSI 8 + packetizer v2 header 8 + tail 8 */

typedef struct mode {
  const char *name;
  int jumbo;
  uint32_t seg_payload;               /* frame bytes per datagram (section 6.3) */
  uint32_t mtu;
} mode;

static const mode modes[] = {{"jumbo", 1, 8936, 9000}, {"standard", 0, 1440, 1500}};

/* What the receiving process reports back through its pipe. */
typedef struct report {
  uint64_t bytes, frames;             /* frame bytes, frames (raw: datagrams) */
  double last;                        /* monotonic time of the last arrival */
} report;

typedef struct result {
  double rate;                        /* frame bytes per second */
  uint64_t sent, got;                 /* datagrams (raw) or frames (link) */
} result;

/* The link's UDP receive buffer: 32 datagrams (RSSI's default window) of a
** full MTU, or the kernel's default when that is larger. */
static int link_rcvbuf(int fd, const mode *m) {
  int v = 0;
  socklen_t len = sizeof v;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len);
  int want = (int)(32 * m->mtu);
  return v / 2 > want ? v / 2 : want;
}

/* The child's report, once it has exited; the pipes are closed. The
** result: frame bytes per second from t0 to the last arrival. */
static result collect(pid_t pid, int ctl[2], int res[2], double t0, uint64_t sent) {
  report r;
  if (read(res[0], &r, sizeof r) != (ssize_t)sizeof r) memset(&r, 0, sizeof r);
  waitpid(pid, NULL, 0);
  for (int i = 0; i < 2; i++) {
    close(ctl[i]);
    close(res[i]);
  }
  result out = {r.frames > 0 ? (double)r.bytes / (r.last - t0) : 0, sent, r.frames};
  return out;
}

/* ---- raw ---- */

static void raw_receive(int fd, int out) {
  char *buf = malloc(65536);
  struct timeval tv = {0, (long)(IDLE_S * 1e6)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  report r = {0, 0, 0};
  for (;;) {
    ssize_t n = recvfrom(fd, buf, 65536, 0, NULL, NULL);
    if (n < 0) break;                 /* idle: the sender is done */
    r.bytes += (uint64_t)n - V2_OVERHEAD;
    r.frames++;
    r.last = bench_now();
  }
  if (write(out, &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
  free(buf);
  _exit(0);
}

static result run_raw(const mode *m, uint32_t size, uint64_t frames) {
  int ctl[2], res[2];
  if (pipe(ctl) != 0 || pipe(res) != 0) exit(1);
  struct sockaddr_in sa;
  int rfd = bench_loopback_socket(SOCK_DGRAM, &sa);
  int rb = link_rcvbuf(rfd, m);
  setsockopt(rfd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
  pid_t pid = fork();
  if (pid == 0) raw_receive(rfd, res[1]);
  close(rfd);
  int wfd = socket(AF_INET, SOCK_DGRAM, 0);
  char *buf = calloc(1, m->seg_payload + V2_OVERHEAD);
  uint64_t sent = 0;
  double t0 = bench_now();
  for (uint64_t f = 0; f < frames; f++) {
    for (uint32_t left = size; left > 0;) {
      uint32_t seg = left < m->seg_payload ? left : m->seg_payload;
      size_t n = seg + V2_OVERHEAD;
      if (sendto(wfd, buf, n, 0, (struct sockaddr *)&sa, sizeof sa) == (ssize_t)n) sent++;
      left -= seg;
    }
  }
  result out = collect(pid, ctl, res, t0, sent);
  close(wfd);
  free(buf);
  return out;
}

/* ---- the link ---- */

typedef struct link_end {
  sl_udp_rssi_pack *stack;
  sl_object *app;
  sl_prbs *prbs;
} link_end;

static link_end link_open(uint32_t port, int server, int jumbo) {
  sl_error err;
  link_end e = {0};
  e.stack = sl_udp_rssi_pack_new("127.0.0.1", port, server, jumbo, 2, 1, &err);
  if (e.stack == NULL) {
    fprintf(stderr, "UdpRssiPack: %s\n", err.msg);
    _exit(1);
  }
  e.app = sl_packetizer_application(sl_udp_rssi_pack_packetizer(e.stack), 1, &err);
  e.prbs = sl_prbs_new(&err);
  sl_prbs_gen_payload(e.prbs, 0);
  sl_prbs_check_payload(e.prbs, 0);
  if (server) sl_master_add_slave(e.app->master, sl_prbs_object(e.prbs)->slave);
  else sl_master_add_slave(sl_prbs_object(e.prbs)->master, e.app->slave);
  const char *w = getenv("BENCH_LINK_WINDOW");
  if (w != NULL)
    sl_rssi_set_loc(sl_udp_rssi_pack_rssi(e.stack), SL_RSSI_P_MAX_BUFFERS,
                    (uint32_t)strtoul(w, NULL, 10));
  sl_udp_rssi_pack_start(e.stack);
  return e;
}

static void link_close(link_end e) {
  sl_object_stop(sl_udp_rssi_pack_object(e.stack));
  sl_object_unref(e.app);
  sl_object_unref(sl_prbs_object(e.prbs));
  sl_object_unref(sl_udp_rssi_pack_object(e.stack));
}

/* A failed run: what the server's checker, RSSI and packetizer counted. */
static void report_failure(link_end *e, uint64_t got, uint64_t errors, uint64_t frames) {
  sl_rssi_stats rs;
  sl_rssi_stats_get(sl_udp_rssi_pack_rssi(e->stack), &rs);
  fprintf(stderr,
          "server: %llu of %llu frames, %llu checker errors; RSSI drops %u "
          "(re-acknowledged %llu), retransmissions %u, resets %u, opens %llu, "
          "segments %llu; packetizer drops %llu\n",
          (unsigned long long)got, (unsigned long long)frames,
          (unsigned long long)errors, rs.drop_count, (unsigned long long)rs.reacks,
          rs.retran_count, rs.down_count, (unsigned long long)rs.opens,
          (unsigned long long)rs.rx_segments,
          (unsigned long long)sl_packetizer_drop_count(sl_udp_rssi_pack_packetizer(e->stack)));
}

/* The child: a server that counts what arrives until `frames` came or
** nothing came for a while, then reports. */
static void link_receive(const mode *m, uint64_t frames, int port_out, int out) {
  if (getenv("BENCH_LINK_LOG") != NULL) {   /* the server's warnings */
    sl_log_set_emit(1);
    sl_log_set_level(SL_LOG_WARNING);
  }
  link_end e = link_open(0, 1, m->jumbo);
  uint32_t port = sl_udp_port(sl_udp_rssi_pack_udp(e.stack));
  if (write(port_out, &port, sizeof port) != (ssize_t)sizeof port) _exit(1);
  report r = {0, 0, 0};
  uint64_t seen = 0, errors = 0;
  double last_change = bench_now();
  for (;;) {
    sl_prbs_stats st;
    sl_prbs_get_stats(e.prbs, &st);
    double t = bench_now();
    if (st.rx_count + st.rx_errors != seen) {
      seen = st.rx_count + st.rx_errors;
      r.frames = st.rx_count;
      r.bytes = st.rx_bytes;
      errors = st.rx_errors;
      r.last = t;
      last_change = t;
    }
    if (seen >= frames || t - last_change > 10.0) break;
    bench_sleep_us(500);
  }
  if (errors > 0 || seen < frames) report_failure(&e, r.frames, errors, frames);
  if (errors > 0) r.frames = 0;          /* a checker error fails the run */
  if (write(out, &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
  link_close(e);
  _exit(0);
}

static int link_is_open(link_end *e) { return sl_udp_rssi_pack_is_open(e->stack); }

static result run_link(const mode *m, uint32_t size, uint64_t frames) {
  int ctl[2], res[2];
  if (pipe(ctl) != 0 || pipe(res) != 0) exit(1);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) link_receive(m, frames, ctl[1], res[1]);
  uint32_t port = 0;
  if (read(ctl[0], &port, sizeof port) != (ssize_t)sizeof port) exit(1);
  link_end e = link_open(port, 0, m->jumbo);
  double deadline = bench_now() + 30;
  while (!link_is_open(&e) && bench_now() < deadline) bench_sleep_us(200);
  double t0 = bench_now();
  uint64_t sent = 0;
  for (uint64_t f = 0; f < frames; f++)
    if (sl_prbs_gen_frame(e.prbs, size) == SL_OK) sent++;
  result out = collect(pid, ctl, res, t0, sent);
  link_close(e);
  return out;
}

/* Rogue's stack on this machine kind (C++, PRBS generation and check off,
** median of 3), MB/s: jumbo, then standard, at 10,000 B, 64 KiB, 1 MiB. */
static const double rogue_mbs[2][3] = {{200, 255, 265}, {67, 69, 55}};

static double loss_pct(result r) {
  return r.sent ? 100.0 * (double)(r.sent - r.got) / (double)r.sent : 0.0;
}

static void row(const mode *m, uint32_t size, double rogue, result o, result w) {
  printf("%-8s | %7u B | %8.1f MB/s %5.2f%% | %8.1f MB/s %5.2f%% | %5.1f%% | %5.0f | %4.1fx\n",
         m->name, size, o.rate / 1e6, loss_pct(o), w.rate / 1e6, loss_pct(w),
         w.rate > 0 ? 100.0 * o.rate / w.rate : 0.0, rogue, o.rate / 1e6 / rogue);
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 0.5;
  if (secs <= 0) secs = 0.5;
  static const uint32_t sizes[] = {10000, 65536, 1048576};
  signal(SIGPIPE, SIG_IGN);
  sl_log_set_emit(0);
  printf("streamlua %s: the firmware link between two processes on loopback\n",
         SL_VERSION);
  printf("UdpRssiPack client -> server, packetizer v2, PRBS frames (payload not\n"
         "generated or checked, as Rogue's figures); raw UDP loop in the same\n"
         "datagram sizes; best of 3 by rate; loss = sent - received\n\n");
  printf("mode     | frame     | link                 | raw UDP              | "
         "link/raw | Rogue | link/Rogue\n");
  printf("---------+-----------+----------------------+----------------------+"
         "--------+-------+------\n");
  const char *only_mode = getenv("BENCH_LINK_MODE"), *only_size = getenv("BENCH_LINK_SIZE");
  int no_raw = getenv("BENCH_LINK_NORAW") != NULL;
  for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
    if (only_mode != NULL && strcmp(only_mode, modes[k].name) != 0) continue;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      if (only_size != NULL && strtoul(only_size, NULL, 10) != sizes[s]) continue;
      /* about `secs` at 1 GB/s for the raw loop; the link moves the same
      ** bytes */
      uint64_t frames = (uint64_t)(secs * 1e9 / sizes[s]);
      if (frames < 20) frames = 20;
      result bo = {0, 1, 0}, bw = {0, 1, 0};
      for (int r = 0; r < 3; r++) {
        result o = run_link(&modes[k], sizes[s], frames);
        result w = no_raw ? (result){0, 1, 0} : run_raw(&modes[k], sizes[s], frames);
        if (o.got != o.sent) bench_fail("link frames received", o.got, o.sent);
        if (o.rate > bo.rate) bo = o;
        if (w.rate > bw.rate) bw = w;
      }
      row(&modes[k], sizes[s], rogue_mbs[k][s], bo, bw);
    }
  }
  return bench_failures != 0;
}
