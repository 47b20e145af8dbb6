/*
** A bridge's two ports (src/net/pair.c), on a libevent loop of the test's
** own, over 127.0.0.1: a server accepts on P and P+1 and names the side; a
** client connects both sides to a server pair; a lost client side
** connects again later; bad addresses and taken ports fail with the text
** the bridges show.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "../../src/net/pair.h"
#include "streamlua/log.h"
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
  CHECK(strstr(err, "cannot resolve no-such-host.invalid:9000: ") == err);
  /* the resolver's own words, not a stale errno */
  struct addrinfo hints = {.ai_family = AF_INET}, *res = NULL;
  int rc = getaddrinfo("no-such-host.invalid", NULL, &hints, &res);
  CHECK(rc != 0);
  if (rc != 0 && rc != EAI_SYSTEM)
    CHECK_STR(strchr(err + strlen("cannot resolve "), ' ') + 1, gai_strerror(rc));
  CHECK(strstr(err, "No such file or directory") == NULL);
  CHECK_EQ(sl_pair_open(&p, "127.0.0.1", 0, 1, record, &g, err, sizeof err), 0);
  int e = sl_pair_open(&q, "127.0.0.1", p.port, 1, record, &g, err, sizeof err);
  CHECK_EQ(e, EADDRINUSE);
  CHECK(strstr(err, "cannot bind 127.0.0.1:") == err);
  sl_pair_stop(&p);
}

/* A listener of the test's own on 127.0.0.1:port (0: any); its port. */
static int plain_listen(uint32_t port, uint32_t *got_port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      listen(fd, 4) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  *got_port = ntohs(sa.sin_port);
  return fd;
}

/* P free, P+1 taken: the error names P+1, the port that failed. */
static void test_bind_names_failed_port(void) {
  got g = {0};
  sl_pair p;
  char err[128] = "", want[128];
  int done = 0;
  for (int attempt = 0; attempt < 50 && !done; attempt++) {
    uint32_t q;
    int fd = plain_listen(0, &q);
    if (fd < 0 || q < 2) {
      if (fd >= 0) close(fd);
      continue;
    }
    uint32_t p0;
    int probe = plain_listen(q - 1, &p0);   /* is P = q - 1 free? */
    if (probe < 0) {
      close(fd);
      continue;
    }
    close(probe);
    int e = sl_pair_open(&p, "127.0.0.1", q - 1, 1, record, &g, err, sizeof err);
    snprintf(want, sizeof want, "cannot bind 127.0.0.1:%u: %s", (unsigned)q,
             strerror(EADDRINUSE));
    if (e == 0) sl_pair_stop(&p);
    /* someone else may have taken P meanwhile: then try another pair */
    char other[64];
    snprintf(other, sizeof other, "127.0.0.1:%u:", (unsigned)(q - 1));
    if (e != EADDRINUSE || strstr(err, other) == NULL) {
      CHECK_EQ(e, EADDRINUSE);
      CHECK_STR(err, want);
      done = 1;
    }
    close(fd);
  }
  CHECK(done);
}

/* Fills every free descriptor but `keep`; returns how many it took. */
static int fill_fds(int *fds, int max, int keep) {
  int n = 0;
  while (n < max) {
    int fd = dup(0);
    if (fd < 0) break;
    fds[n++] = fd;
  }
  for (int i = 0; i < keep && n > 0; i++) close(fds[--n]);
  return n;
}

static int pull_side(void *arg) { return ((got *)arg)->n[0] >= 1; }

/* Runs fn in a child with a low descriptor limit; its checks count here. */
static void in_child(void (*fn)(void)) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = {64, 64};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(2);
    fn();
    fflush(stdout);
    _exit(tt_case_failures_ != 0);
  }
  int st = 0;
  CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* At the limit, opening a pair says so, and no retry turns it into
** "Address already in use". */
static void emfile_open(void) {
  int fds[64];
  int n = fill_fds(fds, 64, 1);          /* room for P's listener only */
  got g = {0};
  sl_pair p;
  char err[128] = "";
  int e = sl_pair_open(&p, "127.0.0.1", 0, 1, record, &g, err, sizeof err);
  CHECK_EQ(e, EMFILE);
  CHECK(strstr(err, "cannot bind 127.0.0.1:") == err);
  CHECK(strstr(err, strerror(EMFILE)) != NULL);
  for (int i = 0; i < n; i++) close(fds[i]);
}

/* A connection waiting while accept() has no descriptor: one logged
** error, the listener set aside, and the connection taken once there is
** room again. */
static void emfile_accept(void) {
  struct event_base *base = event_base_new();
  got g = {0};
  sl_pair p;
  char err[128] = "";
  sl_log_set_emit(0);
  CHECK_EQ(sl_pair_open(&p, "127.0.0.1", 0, 1, record, &g, err, sizeof err), 0);
  CHECK_EQ(sl_pair_start(&p, base), 0);
  int a = plain_connect(p.port);
  CHECK(a >= 0);
  int fds[64];
  int n = fill_fds(fds, 64, 0);
  char want[96];
  snprintf(want, sizeof want, "cannot accept on 127.0.0.1:%u: %s",
           (unsigned)p.port, strerror(EMFILE));
  int logged = 0;
  for (int i = 0; i < 5000 && !logged; i++) {
    event_base_loop(base, EVLOOP_NONBLOCK);
    char *lines[32];
    size_t k = sl_log_history(lines, 32);
    for (size_t j = 0; j < k; j++) {
      if (strstr(lines[j], want) != NULL) logged++;
      free(lines[j]);
    }
    if (!logged) sleep_ms(1);
  }
  CHECK_EQ(logged, 1);
  CHECK_EQ(g.n[0], 0);
  for (int i = 0; i < n; i++) close(fds[i]);
  CHECK(run_until(base, pull_side, &g, 10.0));   /* the listener came back */
  sl_pair_stop(&p);
  close(a);
  close_got(&g);
  event_base_free(base);
}

static void test_emfile_open(void) { in_child(emfile_open); }
static void test_emfile_accept(void) { in_child(emfile_accept); }

static const struct tt_case cases[] = {
    {"server: P is the pull side, P+1 the push side", test_server_sides},
    {"client connects both sides to a server pair", test_client_to_server},
    {"a lost client side connects again later", test_client_reconnects},
    {"open: unknown host, port taken", test_open_errors},
    {"bind: the error names the port that failed", test_bind_names_failed_port},
    {"out of descriptors: open says so", test_emfile_open},
    {"out of descriptors: accept logs once, then resumes", test_emfile_accept},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
