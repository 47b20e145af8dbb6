/*
** bench_link: frames through the firmware link between two processes on
** loopback, against a raw UDP loop moving the same bytes in datagrams of
** the same size, in the same run.
**
**   bench_link [seconds-per-run=0.5]
**
** raw: a child process binds a UDP socket and recvfrom()s in a blocking
** loop; the parent cuts each frame as packetizer v2 over RSSI would (a
** segment carries 8,936 bytes of frame with jumbo, 1,440 without, plus 24
** bytes of headers: datagrams of 8,960 and 1,464 bytes at most) and
** sendto()s the datagrams in a blocking loop. Both sockets get the same
** receive buffer as the link's UDP endpoint. The rate is frame bytes
** received per second, from the first send to the last arrival (the
** monotonic clock is the machine's, so both processes read the same one);
** loss = datagrams sent - received.
** Best of 3 by rate.
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
  int rfd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(rfd, (struct sockaddr *)&sa, sizeof sa);
  socklen_t len = sizeof sa;
  getsockname(rfd, (struct sockaddr *)&sa, &len);
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
  report r;
  if (read(res[0], &r, sizeof r) != (ssize_t)sizeof r) memset(&r, 0, sizeof r);
  waitpid(pid, NULL, 0);
  close(wfd);
  close(ctl[0]);
  close(ctl[1]);
  close(res[0]);
  close(res[1]);
  free(buf);
  result out = {r.frames > 0 ? (double)r.bytes / (r.last - t0) : 0, sent, r.frames};
  return out;
}

static void row(const mode *m, uint32_t size, result r) {
  printf("%-8s | %7u B | %9.1f MB/s %6.2f%% loss\n", m->name, size, r.rate / 1e6,
         r.sent ? 100.0 * (double)(r.sent - r.got) / (double)r.sent : 0.0);
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 0.5;
  if (secs <= 0) secs = 0.5;
  static const uint32_t sizes[] = {10000, 65536, 1048576};
  signal(SIGPIPE, SIG_IGN);
  printf("streamlua %s: the firmware link between two processes on loopback\n",
         SL_VERSION);
  printf("raw UDP loop in the link's datagram sizes; best of 3 by rate\n\n");
  printf("mode     | frame     | raw UDP\n");
  printf("---------+-----------+---------------------------\n");
  for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      /* about `secs` at 1 GB/s */
      uint64_t frames = (uint64_t)(secs * 1e9 / sizes[s]);
      if (frames < 20) frames = 20;
      result best = {0, 1, 0};
      for (int r = 0; r < 3; r++) {
        result w = run_raw(&modes[k], sizes[s], frames);
        if (w.rate > best.rate) best = w;
      }
      row(&modes[k], sizes[s], best);
    }
  }
  return bench_failures != 0;
}
