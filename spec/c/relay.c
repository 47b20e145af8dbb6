/*
** The lossy UDP relay of the link tests (see relay.h). The relay thread
** owns the sockets and the held datagrams; the test thread changes the
** settings through atomics and reads the counters.
*/
#include "relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DGRAM 65536
#define HOLD_MS 2                    /* a held datagram goes after this quiet */

typedef struct held {
  uint8_t *data;
  size_t len;
  int full;
  int64_t since_ms;
} held;

struct ts_relay {
  pthread_t thread;
  int near_fd, far_fd, wake_fd;
  uint32_t port;
  atomic_uint far_port;
  atomic_uint drop, reorder;         /* parts per thousand */
  atomic_int down, stop;
  /* Relay thread only. */
  uint32_t rng[2];
  struct sockaddr_in near_peer;
  int have_peer;
  held hold[2];
  uint8_t *buf;
  atomic_uint_least64_t forwarded[2], dropped[2], reordered[2], swallowed[2];
};

static uint32_t next_rand(uint32_t *s) {   /* xorshift32 */
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct sockaddr_in loopback_addr(uint32_t port) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)port);
  return sa;
}

/* Sends one datagram in direction dir; a failure is a loss like any. */
static void send_dir(ts_relay *r, int dir, const uint8_t *p, size_t n) {
  struct sockaddr_in to = dir == TS_RELAY_UP ? loopback_addr(atomic_load(&r->far_port))
                                             : r->near_peer;
  int fd = dir == TS_RELAY_UP ? r->far_fd : r->near_fd;
  if (sendto(fd, p, n, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)n)
    atomic_fetch_add(&r->forwarded[dir], 1);
}

static void flush_held(ts_relay *r, int dir) {
  held *h = &r->hold[dir];
  if (!h->full) return;
  h->full = 0;
  send_dir(r, dir, h->data, h->len);
}

/* One datagram in direction dir: swallowed, dropped, held back, or sent
** (then a held one follows it: the two arrive swapped). */
static void relay_one(ts_relay *r, int dir, const uint8_t *p, size_t n) {
  if (atomic_load(&r->down)) {
    atomic_fetch_add(&r->swallowed[dir], 1);
    return;
  }
  uint32_t roll = next_rand(&r->rng[dir]) % 1000;
  unsigned drop = atomic_load(&r->drop), reorder = atomic_load(&r->reorder);
  if (roll < drop) {
    atomic_fetch_add(&r->dropped[dir], 1);
    return;
  }
  held *h = &r->hold[dir];
  if (!h->full && roll < drop + reorder) {
    memcpy(h->data, p, n);
    h->len = n;
    h->full = 1;
    h->since_ms = now_ms();
    return;
  }
  send_dir(r, dir, p, n);
  if (h->full) atomic_fetch_add(&r->reordered[dir], 1);
  flush_held(r, dir);
}

static void *relay_main(void *arg) {
  ts_relay *r = arg;
  while (!atomic_load(&r->stop)) {
    struct pollfd p[3] = {{r->near_fd, POLLIN, 0}, {r->far_fd, POLLIN, 0},
                          {r->wake_fd, POLLIN, 0}};
    int holding = r->hold[0].full || r->hold[1].full;
    int k = poll(p, 3, holding ? HOLD_MS : 1000);
    for (int d = 0; d < 2; d++)      /* held long enough: send it anyway */
      if (r->hold[d].full && now_ms() - r->hold[d].since_ms >= HOLD_MS)
        flush_held(r, d);
    if (k <= 0) continue;
    if (p[0].revents & POLLIN) {
      struct sockaddr_in from;
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(r->near_fd, r->buf, MAX_DGRAM, MSG_DONTWAIT,
                           (struct sockaddr *)&from, &fl);
      if (n >= 0) {
        r->near_peer = from;
        r->have_peer = 1;
        relay_one(r, TS_RELAY_UP, r->buf, (size_t)n);
      }
    }
    if (p[1].revents & POLLIN) {
      ssize_t n = recv(r->far_fd, r->buf, MAX_DGRAM, MSG_DONTWAIT);
      if (n >= 0 && r->have_peer) relay_one(r, TS_RELAY_DOWN, r->buf, (size_t)n);
    }
  }
  return NULL;
}

static int bound_socket(uint32_t *port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in sa = loopback_addr(0);
  socklen_t len = sizeof sa;
  int big = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    close(fd);
    return -1;
  }
  if (port != NULL) *port = ntohs(sa.sin_port);
  return fd;
}

ts_relay *ts_relay_new(uint32_t far_port, unsigned drop_permille,
                       unsigned reorder_permille, uint32_t seed) {
  ts_relay *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->buf = malloc(MAX_DGRAM);
  r->hold[0].data = malloc(MAX_DGRAM);
  r->hold[1].data = malloc(MAX_DGRAM);
  r->near_fd = bound_socket(&r->port);
  r->far_fd = bound_socket(NULL);
  r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  atomic_init(&r->far_port, far_port);
  atomic_init(&r->drop, drop_permille);
  atomic_init(&r->reorder, reorder_permille);
  r->rng[0] = seed * 2654435761u + 1u;
  r->rng[1] = seed * 2246822519u + 7u;
  if (r->buf == NULL || r->hold[0].data == NULL || r->hold[1].data == NULL ||
      r->near_fd < 0 || r->far_fd < 0 || r->wake_fd < 0 ||
      pthread_create(&r->thread, NULL, relay_main, r) != 0) {
    if (r->near_fd >= 0) close(r->near_fd);
    if (r->far_fd >= 0) close(r->far_fd);
    if (r->wake_fd >= 0) close(r->wake_fd);
    free(r->buf);
    free(r->hold[0].data);
    free(r->hold[1].data);
    free(r);
    return NULL;
  }
  return r;
}

uint32_t ts_relay_port(ts_relay *r) { return r->port; }

void ts_relay_set_far(ts_relay *r, uint32_t far_port) {
  atomic_store(&r->far_port, far_port);
}

void ts_relay_set_loss(ts_relay *r, unsigned drop_permille,
                       unsigned reorder_permille) {
  atomic_store(&r->drop, drop_permille);
  atomic_store(&r->reorder, reorder_permille);
}

void ts_relay_set_down(ts_relay *r, int down) { atomic_store(&r->down, down != 0); }

ts_relay_counts ts_relay_counts_of(ts_relay *r, int dir) {
  ts_relay_counts c = {atomic_load(&r->forwarded[dir]), atomic_load(&r->dropped[dir]),
                       atomic_load(&r->reordered[dir]), atomic_load(&r->swallowed[dir])};
  return c;
}

void ts_relay_free(ts_relay *r) {
  if (r == NULL) return;
  atomic_store(&r->stop, 1);
  uint64_t one = 1;
  if (write(r->wake_fd, &one, sizeof one) < 0) { /* the poll ends in 1 s */ }
  pthread_join(r->thread, NULL);
  close(r->near_fd);
  close(r->far_fd);
  close(r->wake_fd);
  free(r->buf);
  free(r->hold[0].data);
  free(r->hold[1].data);
  free(r);
}
