/*
** sl_zmtp against libzmq over 127.0.0.1. libzmq plays Rogue's side (a
** PUSH or PULL socket, binding or connecting); our side is a plain
** blocking POSIX socket driven by the codec. Rogue-shaped 4-part messages
** go both ways, with an empty payload, short/long boundaries and a 1 MiB
** payload, and the bytes libzmq sends first are checked against the
** greeting and READY written in spec/rogue-reference.md 4.5. Every wait
** is bounded: libzmq timeouts, poll timeouts and socket timeouts.
**
** Built only when libzmq is found (see the zmtp block of CMakeLists.txt).
*/
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "streamlua/zmtp.h"
#include "support.h"
#include "tt.h"

#include "../../src/core/bytes.h"

#define STEP_MS 20000           /* longest wait for any single step */

/*
** Under ThreadSanitizer only: libzmq is not built with it, so the
** lock-free queues between its own threads are invisible to the checker
** and every hand-off inside libzmq looks like a race. Those reports are
** about libzmq's memory, not ours; the codec itself has no threads.
*/
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) {
  return "called_from_lib:libzmq.so\nrace:libzmq.so\n";
}

static const uint8_t zmq_greeting[64] = {
  0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x7F, 0x03, 0x01,
  'N', 'U', 'L', 'L'};          /* then zeros: mechanism pad, as-server 0 */

static const uint8_t ready_head[24] = {
  0x04, 0x1A, 0x05, 'R', 'E', 'A', 'D', 'Y', 0x0B, 'S', 'o', 'c', 'k', 'e',
  't', '-', 'T', 'y', 'p', 'e', 0x00, 0x00, 0x00, 0x04};

/* ---- the messages: Rogue frames as flags/channel/error/payload -------- */

typedef struct rogue_msg {
  uint16_t flags;
  uint8_t channel, error;
  size_t size;
} rogue_msg;

static const rogue_msg msgs[] = {
  {0x0102, 3, 0, 4},
  {0x9E37, 1, 7, 16},
  {0x0000, 0, 0, 0},             /* empty payload part */
  {0xFFFF, 255, 255, 255},       /* last short frame */
  {0x0001, 2, 1, 256},           /* first long frame */
  {0x8000, 9, 0, 300},
  {0x4242, 5, 3, 1u << 20},      /* 1 MiB */
  {0x0003, 4, 0, 1},
};
#define NMSGS (sizeof msgs / sizeof msgs[0])

static uint8_t payload_byte(size_t msg, size_t i) {
  return (uint8_t)(i * 131 + msg * 17 + (i >> 9));
}

static uint8_t *make_payload(size_t m) {
  uint8_t *p = malloc(msgs[m].size + 1);
  for (size_t i = 0; i < msgs[m].size; i++) p[i] = payload_byte(m, i);
  return p;
}

/* Checks one received 4-part message against msgs[m]. */
static void check_parts(size_t m, const sl_zmtp_part *parts, size_t n) {
  CHECK_EQ(n, 4);
  if (n != 4) return;
  CHECK(parts[0].size == 2 && parts[1].size == 1 && parts[2].size == 1);
  CHECK_EQ(parts[3].size, msgs[m].size);
  CHECK_EQ(sl_load_le16(parts[0].data), msgs[m].flags);
  CHECK_EQ(parts[1].data[0], msgs[m].channel);
  CHECK_EQ(parts[2].data[0], msgs[m].error);
  if (parts[3].size != msgs[m].size) return;
  uint8_t *want = make_payload(m);
  CHECK(memcmp(parts[3].data, want, msgs[m].size) == 0);
  free(want);
}

/* ---- our side: a blocking socket and a codec ------------------------- */

typedef struct conn {
  int fd;
  sl_zmtp *z;
  uint8_t buf[65536];
  size_t pos, len;              /* unfed bytes: buf[pos..len) */
  uint8_t first[92];            /* what libzmq sent first */
  size_t first_len;
} conn;

/* Writes every byte of iov, or fails within the socket timeout. */
static int write_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    struct msghdr mh = {0};
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)n;
    ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++, n--;
    }
    if (n > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

static int flush_output(conn *c) {
  const uint8_t *p;
  size_t n = sl_zmtp_output(c->z, &p);
  if (n == 0) return 0;
  struct iovec v = {(void *)p, n};
  if (write_all(c->fd, &v, 1) != 0) return -1;
  sl_zmtp_output_done(c->z, n);
  return 0;
}

/*
** Feeds what is buffered, reading more when it runs out, until the codec
** has an event; answers (PONG) are flushed at once. 0 on a closed or
** silent socket. The event's pointers live until the next call.
*/
static int next_event(conn *c, sl_zmtp_event *ev) {
  for (;;) {
    if (c->pos < c->len) {
      size_t used;
      sl_zmtp_kind k = sl_zmtp_feed(c->z, c->buf + c->pos, c->len - c->pos,
                                    &used);
      c->pos += used;
      if (k != SL_ZMTP_NONE) {
        sl_zmtp_pop(c->z, ev);
        return flush_output(c) == 0;
      }
      continue;
    }
    struct pollfd p = {c->fd, POLLIN, 0};
    if (poll(&p, 1, STEP_MS) != 1) return 0;
    ssize_t r = recv(c->fd, c->buf, sizeof c->buf, 0);
    if (r <= 0) return 0;
    size_t room = sizeof c->first - c->first_len;
    size_t keep = (size_t)r < room ? (size_t)r : room;
    memcpy(c->first + c->first_len, c->buf, keep);
    c->first_len += keep;
    c->pos = 0;
    c->len = (size_t)r;
  }
}

/* Sends our greeting + READY, then expects libzmq's, byte for byte. */
static int handshake(conn *c, sl_zmtp_role role) {
  sl_zmtp_config cfg = {role, 2u << 20, 8};
  c->z = sl_zmtp_new(&cfg);
  c->pos = c->len = c->first_len = 0;
  sl_zmtp_event ev;
  if (!CHECK(flush_output(c) == 0)) return 0;
  if (!CHECK(next_event(c, &ev) && ev.kind == SL_ZMTP_GREETING)) return 0;
  if (!CHECK(next_event(c, &ev) && ev.kind == SL_ZMTP_READY)) return 0;
  const char *peer = role == SL_ZMTP_PUSH ? "PULL" : "PUSH";
  CHECK_STR(ev.text, peer);
  CHECK_EQ(c->first_len, 92);
  CHECK(memcmp(c->first, zmq_greeting, 64) == 0);
  CHECK(memcmp(c->first + 64, ready_head, 24) == 0);
  CHECK(memcmp(c->first + 88, peer, 4) == 0);
  return 1;
}

static void conn_close(conn *c) {
  if (c->fd >= 0) close(c->fd);
  sl_zmtp_free(c->z);
  free(c);
}

/* ---- libzmq's side ---------------------------------------------------- */

static void *zsocket(void *ctx, int type) {
  void *s = zmq_socket(ctx, type);
  int linger = 0, tmo = STEP_MS;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
  zmq_setsockopt(s, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
  return s;
}

/* Binds to a free port libzmq picks and returns it. */
static uint16_t zbind(void *s) {
  char ep[256];
  size_t n = sizeof ep;
  if (zmq_bind(s, "tcp://127.0.0.1:*") != 0) return 0;
  if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &n) != 0) return 0;
  const char *colon = strrchr(ep, ':');
  return colon != NULL ? (uint16_t)atoi(colon + 1) : 0;
}

static void zconnect(void *s, uint16_t port) {
  char ep[64];
  snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", (unsigned)port);
  CHECK_EQ(zmq_connect(s, ep), 0);
}

/* Rogue's send path: 4 parts, SNDMORE on the first three. */
static void zsend_all(void *s) {
  for (size_t m = 0; m < NMSGS; m++) {
    uint8_t fl[2];
    sl_store_le16(fl, msgs[m].flags);
    uint8_t *pl = make_payload(m);
    CHECK_EQ(zmq_send(s, fl, 2, ZMQ_SNDMORE), 2);
    CHECK_EQ(zmq_send(s, &msgs[m].channel, 1, ZMQ_SNDMORE), 1);
    CHECK_EQ(zmq_send(s, &msgs[m].error, 1, ZMQ_SNDMORE), 1);
    CHECK_EQ(zmq_send(s, pl, msgs[m].size, 0), (int)msgs[m].size);
    free(pl);
  }
}

/* Receives NMSGS messages with zmq_msg_recv and checks each part. */
static void zrecv_all(void *s) {
  for (size_t m = 0; m < NMSGS; m++) {
    sl_zmtp_part parts[4];
    zmq_msg_t zm[4];
    size_t n = 0;
    int more = 1;
    while (more && n < 4) {
      zmq_msg_init(&zm[n]);
      if (!CHECK(zmq_msg_recv(&zm[n], s, 0) >= 0)) {
        zmq_msg_close(&zm[n]);
        break;
      }
      parts[n].data = zmq_msg_data(&zm[n]);
      parts[n].size = zmq_msg_size(&zm[n]);
      more = zmq_msg_more(&zm[n]);
      n++;
    }
    CHECK(!more);
    check_parts(m, parts, n);
    for (size_t i = 0; i < n; i++) zmq_msg_close(&zm[i]);
    if (n != 4) return;
  }
}

/* ---- our side's traffic ----------------------------------------------- */

static void our_recv_all(conn *c) {
  sl_zmtp_event ev;
  for (size_t m = 0; m < NMSGS; m++) {
    if (!CHECK(next_event(c, &ev) && ev.kind == SL_ZMTP_MESSAGE)) return;
    check_parts(m, ev.parts, ev.nparts);
  }
  /* A PING to libzmq comes back as a PONG with our context. */
  uint8_t ping[25];
  size_t n = sl_zmtp_ping(ping, 0, (const uint8_t *)"hi", 2);
  struct iovec v = {ping, n};
  CHECK(write_all(c->fd, &v, 1) == 0);
  CHECK(next_event(c, &ev) && ev.kind == SL_ZMTP_PONG);
  CHECK(c->pos == c->len && c->len >= 9);
  if (c->len >= 9)
    CHECK(memcmp(c->buf + c->len - 9, "\x04\x07\x04PONGhi", 9) == 0);
}

/*
** Small messages go through sl_zmtp_encode into one buffer; large ones
** as headers plus the payload itself in one sendmsg, without a copy.
*/
static void our_send_all(conn *c) {
  for (size_t m = 0; m < NMSGS; m++) {
    uint8_t fl[2];
    sl_store_le16(fl, msgs[m].flags);
    uint8_t *pl = make_payload(m);
    sl_zmtp_part parts[4] = {{fl, 2}, {&msgs[m].channel, 1},
                             {&msgs[m].error, 1}, {pl, msgs[m].size}};
    if (msgs[m].size < 1024) {
      uint8_t out[1100];
      size_t n = sl_zmtp_encode(parts, 4, out, sizeof out);
      struct iovec v = {out, n};
      CHECK(n > 0 && write_all(c->fd, &v, 1) == 0);
    } else {
      uint8_t hdr[4][SL_ZMTP_HEADER_MAX];
      struct iovec v[8];
      for (int i = 0; i < 4; i++) {
        v[2 * i].iov_base = hdr[i];
        v[2 * i].iov_len = sl_zmtp_frame_header(hdr[i], parts[i].size, i < 3);
        v[2 * i + 1].iov_base = (void *)parts[i].data;
        v[2 * i + 1].iov_len = parts[i].size;
      }
      CHECK(write_all(c->fd, v, 8) == 0);
    }
    free(pl);
  }
}

/* ---- the four cases --------------------------------------------------- */

typedef enum { WE_LISTEN, WE_CONNECT } who_binds;

/*
** One case: libzmq's socket of type ztype, our codec in role; whoever
** listens, the other connects. Then traffic flows libzmq -> us (PUSH) or
** us -> libzmq (PULL).
*/
static void run_case(int ztype, sl_zmtp_role role, who_binds how) {
  void *ctx = zmq_ctx_new();
  void *s = zsocket(ctx, ztype);
  conn *c = calloc(1, sizeof *c);
  c->fd = -1;
  if (how == WE_LISTEN) {
    uint32_t port = 0;
    int lfd = ts_listen(&port);
    if (!CHECK(lfd >= 0)) goto out;
    zconnect(s, (uint16_t)port);
    c->fd = ts_accept(lfd, STEP_MS / 1000.0);
    close(lfd);
  } else {
    uint16_t port = zbind(s);
    if (!CHECK(port != 0)) goto out;
    c->fd = ts_socket(STEP_MS / 1000.0);
    if (c->fd >= 0 && ts_connect(c->fd, port) != 0) {
      close(c->fd);
      c->fd = -1;
    }
  }
  if (!CHECK(c->fd >= 0)) goto out;
  if (!handshake(c, role)) goto out;
  if (ztype == ZMQ_PUSH) {
    zsend_all(s);
    our_recv_all(c);
  } else {
    our_send_all(c);
    zrecv_all(s);
  }
out:
  conn_close(c);
  zmq_close(s);
  zmq_ctx_term(ctx);
}

static void test_we_listen_zmq_push(void) {
  run_case(ZMQ_PUSH, SL_ZMTP_PULL, WE_LISTEN);
}
static void test_we_listen_zmq_pull(void) {
  run_case(ZMQ_PULL, SL_ZMTP_PUSH, WE_LISTEN);
}
static void test_zmq_push_binds(void) {
  run_case(ZMQ_PUSH, SL_ZMTP_PULL, WE_CONNECT);
}
static void test_zmq_pull_binds(void) {
  run_case(ZMQ_PULL, SL_ZMTP_PUSH, WE_CONNECT);
}

static const struct tt_case cases[] = {
  {"(a) we listen as PULL, libzmq PUSH connects", test_we_listen_zmq_push},
  {"(b) we listen as PUSH, libzmq PULL connects", test_we_listen_zmq_pull},
  {"(c) libzmq PUSH binds, we connect as PULL", test_zmq_push_binds},
  {"(d) libzmq PULL binds, we connect as PUSH", test_zmq_pull_binds},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
