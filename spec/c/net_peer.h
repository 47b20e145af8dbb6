/*
** net_peer.h: a hostile or plain peer for the TCP bridge tests: blocking
** sockets to 127.0.0.1 with bounded waits, ZMTP greetings and READYs
** written by hand, and a look at an object's counters.
*/
#ifndef STREAMLUA_NET_PEER_H_INCLUDED_
#define STREAMLUA_NET_PEER_H_INCLUDED_

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "streamlua/object.h"
#include "streamlua/zmtp.h"
#include "tt.h"

__attribute__((unused)) static uint64_t peer_counter(sl_object *o, const char *name) {
  sl_counter c[SL_COUNTERS_MAX];
  size_t n = sl_object_counters(o, c, SL_COUNTERS_MAX);
  for (size_t i = 0; i < n; i++)
    if (strcmp(c[i].name, name) == 0) return c[i].value;
  return 0;
}

/* Waits up to `seconds` for counter `name` to reach at least `want`. */
__attribute__((unused)) static int peer_counter_reaches(sl_object *o, const char *name,
                                                        uint64_t want, double seconds) {
  double end = now_s() + seconds;
  while (peer_counter(o, name) < want && now_s() < end) sleep_ms(5);
  return peer_counter(o, name) >= want;
}

/* A blocking socket with 30 s timeouts, not yet connected. */
__attribute__((unused)) static int peer_socket(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

__attribute__((unused)) static int peer_connect(int fd, uint32_t port) {
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return connect(fd, (struct sockaddr *)&sa, sizeof sa);
}

/* A socket connected to 127.0.0.1:port, or -1. */
__attribute__((unused)) static int peer_dial(uint32_t port) {
  int fd = peer_socket();
  if (fd >= 0 && peer_connect(fd, port) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads until the peer closes (1) or 5 s pass (0); discards the bytes. */
__attribute__((unused)) static int peer_closed(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return 1;
    if (n < 0) return errno == ECONNRESET;   /* a timeout is a failure */
  }
}

__attribute__((unused)) static int peer_send(int fd, const void *p, size_t n) {
  return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* A greeting and a READY announcing `role` (what a well-behaved peer of
** that socket type sends first); returns the byte count. */
__attribute__((unused)) static size_t peer_hello(uint8_t out[128], sl_zmtp_role role) {
  size_t n = sl_zmtp_greeting(out);
  return n + sl_zmtp_ready(role, out + n);
}

#endif
