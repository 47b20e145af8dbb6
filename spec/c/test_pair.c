/*
** A bridge's two ports (src/net/pair.c), on a libevent loop of the test's
** own, over 127.0.0.1: a server accepts on P and P+1 and names the side; a
** client connects both sides to a server pair; a lost client side
** connects again later; bad addresses and taken ports fail with the text
** the bridges show.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "../../src/net/pair.h"
#include "tt.h"

typedef struct got {
  int n[2];                      /* sockets per side: [0] pull, [1] push */
  int fds[16], push[16];
  int nfd;
} got;

static void record(void *owner, int fd, int push) {
  got *g = owner;
  g->n[push ? 1 : 0]++;
  if (g->nfd < 16) {
    g->push[g->nfd] = push;
    g->fds[g->nfd++] = fd;
  } else {
    close(fd);
  }
}

/* The port a connected socket's peer is on. */
static uint32_t peer_port(int fd) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0) return 0;
  return ntohs(sa.sin_port);
}

static void close_got(got *g) {
  for (int i = 0; i < g->nfd; i++) close(g->fds[i]);
  g->nfd = 0;
}

/* Runs the loop until cond holds or `seconds` pass. */
static int run_until(struct event_base *base, int (*cond)(void *), void *arg,
                     double seconds) {
  double end = now_s() + seconds;
  while (!cond(arg) && now_s() < end) {
    event_base_loop(base, EVLOOP_NONBLOCK);
    sleep_ms(1);
  }
  return cond(arg);
}

static int both_sides(void *arg) {
  got *g = arg;
  return g->n[0] >= 1 && g->n[1] >= 1;
}

static int plain_connect(uint32_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void test_server_sides(void) {
  struct event_base *base = event_base_new();
  got g = {0};
  sl_pair p;
  char err[128] = "";
  CHECK_EQ(sl_pair_open(&p, "127.0.0.1", 0, 1, record, &g, err, sizeof err), 0);
  CHECK(p.port > 0);
  CHECK_EQ(sl_pair_start(&p, base), 0);
  int a = plain_connect(p.port), b = plain_connect(p.port + 1);
  CHECK(a >= 0 && b >= 0);
  CHECK(run_until(base, both_sides, &g, 20.0));
  CHECK_EQ(g.n[0], 1);                /* P: the peer pushes, we pull */
  CHECK_EQ(g.n[1], 1);                /* P+1: we push */
  sl_pair_lost(&p, 1);                /* a server does not reconnect */
  sl_pair_stop(&p);
  CHECK_EQ(p.lfd[0], -1);
  CHECK(plain_connect(p.port) < 0);   /* the listeners are closed */
  close(a);
  close(b);
  close_got(&g);
  event_base_free(base);
}

static int four(void *arg) {
  got *g = arg;
  return g[0].n[0] + g[0].n[1] + g[1].n[0] + g[1].n[1] >= 4;
}

static void test_client_to_server(void) {
  struct event_base *base = event_base_new();
  got g[2];                           /* [0] server, [1] client */
  memset(g, 0, sizeof g);
  sl_pair s, c;
  char err[128] = "";
  CHECK_EQ(sl_pair_open(&s, "*", 0, 1, record, &g[0], err, sizeof err), 0);
  CHECK_EQ(sl_pair_open(&c, "127.0.0.1", s.port, 0, record, &g[1], err, sizeof err), 0);
  CHECK_EQ(sl_pair_start(&s, base), 0);
  CHECK_EQ(sl_pair_start(&c, base), 0);
  CHECK(run_until(base, four, g, 20.0));
  CHECK_EQ(g[0].n[0], 1);
  CHECK_EQ(g[0].n[1], 1);
  CHECK_EQ(g[1].n[0], 1);
  CHECK_EQ(g[1].n[1], 1);
  /* The client's push side went to P, the server's pull side. */
  for (int i = 0; i < g[1].nfd; i++)
    CHECK_EQ(peer_port(g[1].fds[i]), g[1].push[i] ? s.port : s.port + 1);
  sl_pair_stop(&c);
  sl_pair_stop(&s);
  close_got(&g[0]);
  close_got(&g[1]);
  event_base_free(base);
}

static int second_push(void *arg) { return ((got *)arg)->n[1] >= 2; }

static void test_client_reconnects(void) {
  struct event_base *base = event_base_new();
  got g = {0};
  sl_pair c;
  char err[128] = "";
  /* Nothing needs to listen: a client hands on every connecting socket. */
  CHECK_EQ(sl_pair_open(&c, "127.0.0.1", 1, 0, record, &g, err, sizeof err), 0);
  CHECK_EQ(sl_pair_start(&c, base), 0);
  CHECK_EQ(g.n[0], 1);
  CHECK_EQ(g.n[1], 1);
  double t0 = now_s();
  sl_pair_lost(&c, 1);
  CHECK(run_until(base, second_push, &g, 20.0));
  CHECK(now_s() - t0 >= SL_PAIR_RECONNECT_MS / 1000.0 * 0.5);
  CHECK_EQ(g.n[0], 1);                /* the other side was not touched */
  sl_pair_stop(&c);
  close_got(&g);
  event_base_free(base);
}

static void test_open_errors(void) {
  got g = {0};
  sl_pair p, q;
  char err[128] = "";
  CHECK_EQ(sl_pair_open(&p, "no-such-host.invalid", 9000, 0, record, &g, err,
                        sizeof err), ENOENT);
  CHECK(strstr(err, "cannot resolve no-such-host.invalid:9000") == err);
  CHECK_EQ(sl_pair_open(&p, "127.0.0.1", 0, 1, record, &g, err, sizeof err), 0);
  int e = sl_pair_open(&q, "127.0.0.1", p.port, 1, record, &g, err, sizeof err);
  CHECK_EQ(e, EADDRINUSE);
  CHECK(strstr(err, "cannot bind 127.0.0.1:") == err);
  sl_pair_stop(&p);
}

static const struct tt_case cases[] = {
    {"server: P is the pull side, P+1 the push side", test_server_sides},
    {"client connects both sides to a server pair", test_client_to_server},
    {"a lost client side connects again later", test_client_reconnects},
    {"open: unknown host, port taken", test_open_errors},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
