/*
** The lossy UDP relay of the link tests, between two plain sockets: what
** it forwards arrives once each, what it drops is the share asked and the
** same for the same seed, held-back datagrams arrive after later ones,
** replies find the near peer, a link taken down swallows everything until
** it comes up, and the far side can move to another port.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay.h"
#include "support.h"
#include "tt.h"

typedef struct seen {
  ts_relay *r;
  int dir;
  uint64_t want;               /* forwarded + dropped + swallowed */
} seen;

static int relay_took(void *arg) {
  seen *s = arg;
  ts_relay_counts c = ts_relay_counts_of(s->r, s->dir);
  return c.forwarded + c.dropped + c.swallowed >= s->want;
}

static int udp_big(uint32_t *port) {
  int fd = ts_udp_socket(port);
  int big = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  return fd;
}

static int recv_seq(int fd, uint32_t *seq, struct sockaddr_in *from) {
  uint8_t b[16];
  socklen_t fl = sizeof *from;
  ssize_t n = recvfrom(fd, b, sizeof b, 0, (struct sockaddr *)from, &fl);
  if (n != 4) return 0;
  memcpy(seq, b, 4);
  return 1;
}

/* Sends n numbered datagrams near -> far through r in bursts, reading them
** at the far socket; returns how many dropped, checks the rest arrived once. */
static uint64_t run_up(ts_relay *r, int near, int far, uint32_t n,
                       int *out_of_order) {
  uint8_t *got = calloc(n, 1);
  uint64_t received = 0;
  uint32_t max_seen = 0;
  struct sockaddr_in from;
  for (uint32_t i = 0; i < n; i += 100) {
    for (uint32_t k = i; k < i + 100 && k < n; k++) ts_udp_send(near, ts_relay_port(r), &k, 4);
    seen s = {r, TS_RELAY_UP, i + 100 < n ? i + 100 : n};
    CHECK(ts_wait_until(relay_took, &s, 30));
    ts_relay_counts c = ts_relay_counts_of(r, TS_RELAY_UP);
    while (received < c.forwarded) {
      uint32_t seq;
      if (!recv_seq(far, &seq, &from)) break;
      CHECK(seq < n && got[seq] == 0);
      if (seq < n) got[seq] = 1;
      if (seq < max_seen) *out_of_order += 1;
      if (seq > max_seen) max_seen = seq;
      received++;
    }
  }
  ts_relay_counts c = ts_relay_counts_of(r, TS_RELAY_UP);
  CHECK_EQ(received, c.forwarded);
  CHECK_EQ(c.forwarded + c.dropped, (uint64_t)n);
  free(got);
  return c.dropped;
}

static void test_drops_and_reorders(void) {
  enum { N = 3000 };
  uint32_t np, fp;
  int near = udp_big(&np), far = udp_big(&fp);
  ts_relay *r = ts_relay_new(fp, 30, 30, 7);
  CHECK(r != NULL);
  int ooo = 0;
  uint64_t dropped = run_up(r, near, far, N, &ooo);
  CHECK(dropped >= N / 100 && dropped <= N * 6 / 100);   /* 3 %, deterministic */
  ts_relay_counts c = ts_relay_counts_of(r, TS_RELAY_UP);
  CHECK(c.reordered > 0);
  CHECK(ooo > 0);
  ts_relay_free(r);
  /* the same seed drops the same datagrams */
  r = ts_relay_new(fp, 30, 30, 7);
  ooo = 0;
  CHECK_EQ(run_up(r, near, far, N, &ooo), dropped);
  ts_relay_free(r);
  close(near);
  close(far);
}

static void test_replies_down_and_move(void) {
  uint32_t np, fp, fp2;
  int near = udp_big(&np), far = udp_big(&fp), far2 = udp_big(&fp2);
  ts_relay *r = ts_relay_new(fp, 0, 0, 1);
  uint32_t seq = 1, got;
  struct sockaddr_in relay_far, from;
  ts_udp_send(near, ts_relay_port(r), &seq, 4);
  CHECK(recv_seq(far, &got, &relay_far) && got == 1);
  /* a reply goes back to the near peer */
  seq = 2;
  sendto(far, &seq, 4, 0, (struct sockaddr *)&relay_far, sizeof relay_far);
  CHECK(recv_seq(near, &got, &from) && got == 2);
  CHECK_EQ(ntohs(from.sin_port), ts_relay_port(r));
  /* down: swallowed both ways, counted */
  ts_relay_set_down(r, 1);
  for (seq = 10; seq < 15; seq++) {
    ts_udp_send(near, ts_relay_port(r), &seq, 4);
    sendto(far, &seq, 4, 0, (struct sockaddr *)&relay_far, sizeof relay_far);
  }
  seen up = {r, TS_RELAY_UP, 6}, down = {r, TS_RELAY_DOWN, 6};
  CHECK(ts_wait_until(relay_took, &up, 30) && ts_wait_until(relay_took, &down, 30));
  CHECK_EQ(ts_relay_counts_of(r, TS_RELAY_UP).swallowed, 5);
  CHECK_EQ(ts_relay_counts_of(r, TS_RELAY_DOWN).swallowed, 5);
  /* up again, and the far side on another port */
  ts_relay_set_down(r, 0);
  ts_relay_set_far(r, fp2);
  seq = 20;
  ts_udp_send(near, ts_relay_port(r), &seq, 4);
  CHECK(recv_seq(far2, &got, &from) && got == 20);   /* nothing swallowed came first */
  ts_relay_free(r);
  close(near);
  close(far);
  close(far2);
}

static const struct tt_case cases[] = {
    {"drops and reorders its share, the same for the same seed", test_drops_and_reorders},
    {"replies, a link taken down, a far side that moved", test_replies_down_and_move},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
