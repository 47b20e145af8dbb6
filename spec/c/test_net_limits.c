/*
** What a TCP peer can make a bridge hold is bounded: hostile peers on raw
** sockets against a stream TcpServer. Connections over the cap are closed
** at once; connections that never finish their handshake are closed when
** its time is up; unfinished messages past the byte cap close the
** connection that grew them; accept() out of file descriptors backs off
** and logs once. Every wait is bounded.
*/
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <sys/resource.h>

#include "streamlua/streamlua.h"
#include "streamlua/tcp_bridge.h"
#include "support.h"
#include "tt.h"

static sl_object *server(void) {
  sl_error err;
  sl_log_set_emit(0);
  sl_object *srv = sl_tcp_bridge_object(sl_tcp_bridge_new("127.0.0.1", 0, 1, &err));
  if (srv == NULL) abort();
  return srv;
}

static void done(sl_object *srv) {
  sl_object_stop(srv);
  sl_object_unref(srv);
  sl_log_set_emit(1);
}

static int connections_reach(sl_object *srv, uint32_t n) {
  double end = now_s() + 20;
  while (sl_tcp_bridge_connections(sl_tcp_bridge_from_object(srv)) != n && now_s() < end) sleep_ms(5);
  return sl_tcp_bridge_connections(sl_tcp_bridge_from_object(srv)) == n;
}

/* How many lines of the log history hold `text`. */
static int log_lines_with(const char *text) {
  char *lines[256];
  size_t n = sl_log_history(lines, 256);
  int k = 0;
  for (size_t i = 0; i < n; i++) {
    k += strstr(lines[i], text) != NULL;
    free(lines[i]);
  }
  return k;
}

static void test_connection_cap(void) {
  sl_object *srv = server();
  uint32_t port = sl_tcp_bridge_port(sl_tcp_bridge_from_object(srv));
  sl_tcp_bridge_set_max_connections(sl_tcp_bridge_from_object(srv), 3);
  int fd[3];
  for (int i = 0; i < 3; i++) fd[i] = ts_dial(port + (uint32_t)(i & 1));
  CHECK(connections_reach(srv, 3));
  int over = ts_dial(port);
  CHECK(over >= 0);
  CHECK(ts_closed_by_peer(over));             /* accepted and closed at once */
  close(over);
  CHECK_EQ(ts_counter(srv, "refused"), 1);
  CHECK_EQ(sl_tcp_bridge_connections(sl_tcp_bridge_from_object(srv)), 3);
  close(fd[0]);                         /* room again: the next one stays */
  CHECK(connections_reach(srv, 2));
  fd[0] = ts_dial(port);
  CHECK(connections_reach(srv, 3));
  CHECK_EQ(ts_counter(srv, "refused"), 1);
  for (int i = 0; i < 3; i++) close(fd[i]);
  done(srv);
}

static void test_handshake_timeout(void) {
  sl_object *srv = server();
  uint32_t port = sl_tcp_bridge_port(sl_tcp_bridge_from_object(srv));
  uint8_t hello[128];
  size_t hl = ts_zmtp_hello(hello, SL_ZMTP_PUSH);
  /* the good peer finishes its handshake (a message arrives) before the
  ** short timeout is set: however late its handshake, it cannot time out */
  sl_tcp_bridge_set_handshake_timeout(sl_tcp_bridge_from_object(srv), 60000000);
  int good = ts_dial(port);
  CHECK(ts_send_all(good, hello, hl));
  const uint8_t msg[] = {1, 2, 0, 0, 1, 1, 0, 1, 1, 0, 0, 2, 'o', 'k'};
  CHECK(ts_send_all(good, msg, sizeof msg));
  CHECK(ts_counter_reaches(srv, "rxFrames", 1, 20));
  sl_tcp_bridge_set_handshake_timeout(sl_tcp_bridge_from_object(srv), 200000);
  int silent = ts_dial(port);
  int half = ts_dial(port);
  CHECK(ts_send_all(half, hello, 10));        /* a greeting begun, never ended */
  CHECK(ts_closed_by_peer(silent));
  CHECK(ts_closed_by_peer(half));
  CHECK_EQ(ts_counter(srv, "handshakeTimeouts"), 2);
  CHECK_EQ(ts_counter(srv, "errors"), 0);
  /* the peer that finished its handshake is still served */
  CHECK(ts_send_all(good, msg, sizeof msg));
  CHECK(ts_counter_reaches(srv, "rxFrames", 2, 20));
  CHECK_EQ(sl_tcp_bridge_connections(sl_tcp_bridge_from_object(srv)), 1);
  close(silent);
  close(half);
  close(good);
  done(srv);
}

/* 100 parts of 8 KiB, each with MORE: a message that never ends. Parts
** this small are read as they come (no low-water mark), so what the
** bridge holds is exact. */
#define PARTS 100
#define PART (8u * 1024)

static int send_parts(int fd) {
  static uint8_t part[9 + PART];
  size_t hl = sl_zmtp_frame_header(part, PART, 1);
  for (int i = 0; i < PARTS; i++)
    if (send(fd, part, hl + PART, MSG_NOSIGNAL) != (ssize_t)(hl + PART)) return 0;
  return 1;
}

static int pending_is(sl_object *srv, uint64_t want) {
  double end = now_s() + 20;
  while (ts_counter(srv, "pendingBytes") != want && now_s() < end) sleep_ms(5);
  return ts_counter(srv, "pendingBytes") == want;
}

static void test_pending_cap(void) {
  sl_object *srv = server();
  uint32_t port = sl_tcp_bridge_port(sl_tcp_bridge_from_object(srv));
  sl_tcp_bridge_set_max_pending(sl_tcp_bridge_from_object(srv), 1u << 20);
  uint8_t hello[128];
  size_t hl = ts_zmtp_hello(hello, SL_ZMTP_PUSH);
  int a = ts_dial(port), b = ts_dial(port);
  CHECK(ts_send_all(a, hello, hl) && send_parts(a));
  CHECK(pending_is(srv, PARTS * PART));
  CHECK(ts_send_all(b, hello, hl));
  send_parts(b);                          /* fails part way: b is closed */
  CHECK(ts_closed_by_peer(b));
  CHECK_EQ(ts_counter(srv, "pendingCloses"), 1);
  CHECK(pending_is(srv, PARTS * PART));   /* b's bytes went with it */
  CHECK_EQ(sl_tcp_bridge_connections(sl_tcp_bridge_from_object(srv)), 1);
  close(a);
  CHECK(pending_is(srv, 0));
  close(b);
  done(srv);
}

/* accept() with no file descriptor left: counted, logged once, and the
** connection is taken once descriptors are free again. */
static void test_accept_out_of_files(void) {
  sl_object *srv = server();
  uint32_t port = sl_tcp_bridge_port(sl_tcp_bridge_from_object(srv));
  int before = log_lines_with("cannot accept");
  int peer[2] = {ts_socket(30), ts_socket(30)};
  struct rlimit saved, low;
  CHECK(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  int fill[4096], nfill = 0;
  int probe = open("/dev/null", O_RDONLY);
  low = saved;
  low.rlim_cur = (rlim_t)probe + 16;
  close(probe);
  CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
  for (int f; nfill < 4096 && (f = open("/dev/null", O_RDONLY)) >= 0;) fill[nfill++] = f;
  CHECK_EQ(ts_connect(peer[0], port), 0);   /* in the backlog, not accepted */
  CHECK_EQ(ts_connect(peer[1], port + 1), 0);
  CHECK(ts_counter_reaches(srv, "acceptErrors", 2, 20));   /* tried again */
  for (int i = 0; i < nfill; i++) close(fill[i]);
  CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);
  CHECK(connections_reach(srv, 2));
  CHECK_EQ(log_lines_with("cannot accept") - before, 1);
  close(peer[0]);
  close(peer[1]);
  done(srv);
}

static const struct tt_case cases[] = {
    {"connections over the cap are closed at once and counted", test_connection_cap},
    {"connections without a handshake in time are closed", test_handshake_timeout},
    {"unfinished messages past the byte cap close the connection", test_pending_cap},
    {"accept() out of file descriptors backs off and logs once",
     test_accept_out_of_files},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
