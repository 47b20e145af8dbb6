/*
** The socket helpers of src/net/sock.h that tell what the kernel did: a
** UDP socket's drop count, from SO_MEMINFO and from /proc/self/net/udp
** (where SO_MEMINFO is missing, qemu-user among them).
*/
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/net/sock.h"
#include "support.h"
#include "tt.h"

/* A receiver with the smallest buffer is sent to until the kernel drops:
** on loopback a datagram is queued or dropped before sendto returns, so
** the count is settled when the sends are done. */
static void test_udp_drops(void) {
  uint32_t port;
  uint32_t txport;
  int rx = ts_udp_socket(&port), tx = ts_udp_socket(&txport);
  int small = 1;
  setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  uint32_t before = 99, after = 0, proc = 0;
  CHECK_EQ(sl_sock_udp_drops(rx, &before), 0);
  CHECK_EQ(before, 0);
  uint8_t b[1000] = {0};
  for (int i = 0; i < 200; i++) ts_udp_send(tx, port, b, sizeof b);
  CHECK_EQ(sl_sock_udp_drops(rx, &after), 0);
  CHECK(after > 0 && after < 200);
  CHECK_EQ(sl_sock_udp_drops_proc(rx, &proc), 0);
  CHECK_EQ(proc, after);
  close(tx);
  close(rx);
}

/* A descriptor that is no UDP socket has no line to read. */
static void test_udp_drops_not_udp(void) {
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  uint32_t d = 7;
  CHECK_EQ(sl_sock_udp_drops_proc(fds[0], &d), -1);
  CHECK_EQ(d, 7);
  close(fds[0]);
  close(fds[1]);
}

static const struct tt_case cases[] = {
  {"UDP drops: SO_MEMINFO and /proc agree", test_udp_drops},
  {"UDP drops: none for another descriptor", test_udp_drops_not_udp},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
