/*
** The UDP endpoints (see udp.h). Each endpoint has one receive thread: it
** takes datagrams in batches straight into pool frames and hands them
** downstream itself, like a plain blocking receiver, so a datagram costs
** no hand-off between threads: it sleeps in recvmmsg itself until the
** first datagram of a batch (one system call per wake), and a stop ends
** that wait by shutting the socket's receive side. What the kernel drops because the receiver fell behind is read
** from the socket (SO_MEMINFO), counted and logged. Graph threads send on the socket
** directly (a datagram is atomic, so no lock is needed around sendmsg).
** The server's peer is one atomic word, so a send never takes a lock to
** learn where to go.
*/
#include "streamlua/udp.h"
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/frame.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/pool.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "streamlua/worker.h"
#include "streamlua/wait.h"

#include "../core/clock.h"

#define RX_BATCH 32                  /* datagrams per recvmmsg */
#define TX_BATCH 32                  /* datagrams per sendmmsg */
#define MAX_IOV 8                    /* buffers per datagram before copying */
#define POLL_SLICE_MS 100            /* a waiting sender checks stop this often */
#define RX_WAIT_S 1                  /* an idle receiver looks at drops this often */
#define PEER_VALID (1ull << 48)      /* peer word: valid | ip << 16 | port */

typedef struct sl_udp udp;

struct sl_udp {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  sl_log *log;
  int server;
  int fd;
  uint32_t port;
  uint32_t mtu, max_payload;
  atomic_uint_least64_t peer;        /* PEER_VALID set once known */
  atomic_uint_least64_t timeout_us;
  atomic_int woken;                  /* the stop's wake has shut the receive
                                     ** side: the socket may be closed */
  /* Receive thread only: frames waiting for the next datagrams, and the
  ** recvmmsg vector describing them (kept: a slot is described again
  ** only when its frame is replaced). */
  sl_frame *spare[RX_BATCH];
  uint32_t rx_full;                  /* bit i: spare[i] holds a frame */
  struct mmsghdr rx_msg[RX_BATCH];
  struct iovec rx_iov[RX_BATCH][MAX_IOV];
  struct sockaddr_in rx_from[RX_BATCH];
  int64_t rx_drop_checked_ns;
  int64_t rx_drop_logged_ns;
  uint64_t rx_drop_logged;           /* rx_drops at that log */
  int64_t foreign_logged_ns;
  uint64_t foreign_logged;           /* rx_foreign at that log */
  atomic_int_least64_t tx_logged_ns; /* senders: last rate-limited log */
  atomic_uint_least64_t tx_drop_since;
  atomic_int warned_rcvbuf;
  sl_worker rx;                      /* the receive thread; its stop flag is
                                     ** the endpoint's */
  atomic_int senders;                /* graph threads inside a send */
  atomic_int closing;                /* phase two of a stop has begun */
  atomic_uint_least64_t tx_frames, tx_bytes, rx_frames, rx_bytes, rx_drops,
      rx_oversize, oversize, no_peer, tx_drops, errors, rx_foreign;
};

static uint64_t peer_word(const struct sockaddr_in *sa) {
  return PEER_VALID | (uint64_t)ntohl(sa->sin_addr.s_addr) << 16 |
         ntohs(sa->sin_port);
}

static void peer_addr(uint64_t w, struct sockaddr_in *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl((uint32_t)(w >> 16));
  sa->sin_port = htons((uint16_t)w);
}

/* ---- send path (graph threads) ---- */

/*
** A send-side loss (no peer yet, the endpoint stopped, a send error) is
** counted at once and logged at most once a second, with how many were
** lost since the last line, so a flood of frames cannot flood the log.
*/
static void tx_lost(udp *u, uint64_t n, const char *why) {
  atomic_fetch_add(&u->tx_drops, n);
  uint64_t since = atomic_fetch_add(&u->tx_drop_since, n) + n;
  int64_t t = sl_clock_ns(), last = atomic_load(&u->tx_logged_ns);
  if (t - last < 1000000000 ||
      !atomic_compare_exchange_strong(&u->tx_logged_ns, &last, t))
    return;
  since = atomic_exchange(&u->tx_drop_since, 0);
  sl_log_write(u->log, sl_worker_stopping(&u->rx) ? SL_LOG_DEBUG : SL_LOG_ERROR,
               "%llu frame(s) dropped: %s (%llu in all)", (unsigned long long)since,
               why, (unsigned long long)atomic_load(&u->tx_drops));
}

/* Describes f's payload as iovecs; a frame of many buffers is copied into
** scratch (max_payload bytes). Returns the count, the length in *len. */
static int frame_iov(sl_frame *f, struct iovec *iov, uint8_t *scratch,
                     size_t *len) {
  int n = 0;
  *len = sl_frame_get_payload(f);
  size_t nb = sl_frame_buffer_count(f);
  for (size_t i = 0; i < nb; i++) {
    sl_buffer *b = sl_frame_buffer(f, i);
    uint32_t p = sl_buffer_get_payload(b);
    if (p == 0) continue;
    if (n == MAX_IOV) {
      sl_frame_read(f, scratch, 0, (uint32_t)*len);
      iov[0].iov_base = scratch;
      iov[0].iov_len = *len;
      return 1;
    }
    iov[n].iov_base = sl_buffer_begin(b);
    iov[n++].iov_len = p;
  }
  return n;
}

/*
** Waits until the socket takes more (Rogue's select on writability): in
** slices, so stop() is seen; after each full timeout a critical line, and
** the wait goes on, as Rogue's does. Returns 0 when writable, -1 stopping.
*/
static int wait_writable(udp *u) {
  int64_t waited = 0;
  for (;;) {
    if (sl_worker_stopping(&u->rx) || sl_wait_cancelled()) return -1;
    struct pollfd p = {u->fd, POLLOUT, 0};
    if (poll(&p, 1, POLL_SLICE_MS) > 0) return 0;
    waited += POLL_SLICE_MS * 1000;
    int64_t to = (int64_t)atomic_load(&u->timeout_us);
    if (waited >= to) {
      sl_log_write(u->log, SL_LOG_CRITICAL,
                   "Timeout waiting for outbound transmit after %lld.%06lld "
                   "seconds! May be caused by outbound back-pressure.",
                   (long long)(to / 1000000), (long long)(to % 1000000));
      waited = 0;
    }
  }
}

/* Is f fit to send? Refused frames are counted and logged here. */
static int sendable(udp *u, sl_frame *f) {
  uint32_t n = sl_frame_get_payload(f);
  if (n > u->max_payload) {
    atomic_fetch_add(&u->oversize, 1);
    sl_log_write(u->log, SL_LOG_ERROR,
                 "frame of %u bytes refused: over maxPayload %u (never truncated)",
                 (unsigned)n, (unsigned)u->max_payload);
    return 0;
  }
  if (sl_frame_get_error(f) != 0) {
    atomic_fetch_add(&u->tx_drops, 1);
    sl_log_write(u->log, SL_LOG_ERROR, "frame with error 0x%x dropped",
                 (unsigned)sl_frame_get_error(f));
    return 0;
  }
  return n > 0;                /* an empty frame sends nothing, as Rogue */
}

/*
** Sends n ready messages with sendmmsg, waiting for room when the socket
** is full. A datagram the kernel refuses (an error other than "full") is
** logged and skipped, as Rogue does; when the endpoint stops, the rest are
** lost. Returns the bytes sent; *ok gets how many datagrams went.
*/
static uint64_t send_msgs(udp *u, struct mmsghdr *m, const size_t *lens,
                          unsigned n, unsigned *ok) {
  unsigned done = 0;
  uint64_t bytes = 0;
  *ok = 0;
  while (done < n) {
    int k = sendmmsg(u->fd, m + done, n - done, MSG_DONTWAIT);
    if (k > 0) {
      for (int j = 0; j < k; j++) bytes += lens[done + (unsigned)j];
      done += (unsigned)k;
      *ok += (unsigned)k;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == ENOBUFS) {
      if (wait_writable(u) == 0) continue;
      tx_lost(u, n - done, sl_worker_stopping(&u->rx) ? "endpoint stopped"
                                                    : "sender stopped or interrupted");
      break;
    }
    atomic_fetch_add(&u->errors, 1);
    tx_lost(u, 1, strerror(errno));
    done++;
  }
  return bytes;
}

/*
** The send path for n frames: each is locked (unless this thread holds it
** already: a frame may come twice), checked, described, and the batch
** goes out in sendmmsg calls of up to TX_BATCH datagrams.
*/
static void udp_send(udp *u, sl_frame **fs, size_t n) {
  atomic_fetch_add(&u->senders, 1);
  struct sockaddr_in to;
  uint64_t pw = atomic_load(&u->peer);
  if (sl_worker_stopping(&u->rx)) {
    tx_lost(u, n, "endpoint stopped");
    goto out;
  }
  if (!(pw & PEER_VALID)) {
    atomic_fetch_add(&u->no_peer, n);
    tx_lost(u, n, "no peer yet (the server answers the last sender; none has sent)");
    goto out;
  }
  peer_addr(pw, &to);
  for (size_t i = 0; i < n;) {
    struct mmsghdr m[TX_BATCH];
    struct iovec iov[TX_BATCH][MAX_IOV];
    uint8_t *scratch = NULL;
    sl_frame *locked[TX_BATCH];
    size_t lens[TX_BATCH];
    unsigned k = 0, nl = 0;
    for (; i < n && k < TX_BATCH; i++) {
      sl_frame *f = fs[i];
      if (!sl_frame_locked_by_me(f)) {
        sl_frame_lock(f);
        locked[nl++] = f;
      }
      if (!sendable(u, f)) continue;
      if (sl_frame_buffer_count(f) > MAX_IOV && scratch == NULL) {
        scratch = malloc((size_t)u->max_payload * TX_BATCH);
        if (scratch == NULL) {
          atomic_fetch_add(&u->errors, 1);
          tx_lost(u, 1, "out of memory");
          continue;
        }
      }
      memset(&m[k], 0, sizeof m[k]);
      m[k].msg_hdr.msg_iovlen = (size_t)frame_iov(
          f, iov[k], scratch ? scratch + (size_t)k * u->max_payload : NULL, &lens[k]);
      m[k].msg_hdr.msg_iov = iov[k];
      m[k].msg_hdr.msg_name = &to;
      m[k].msg_hdr.msg_namelen = sizeof to;
      k++;
    }
    unsigned sent = 0;
    uint64_t bytes = k > 0 ? send_msgs(u, m, lens, k, &sent) : 0;
    for (unsigned j = 0; j < nl; j++) sl_frame_unlock(locked[j]);
    free(scratch);
    atomic_fetch_add(&u->tx_frames, sent);
    atomic_fetch_add(&u->tx_bytes, bytes);
  }
out:
  atomic_fetch_sub(&u->senders, 1);
}

static void udp_accept(sl_slave *s, sl_frame *f) {
  udp_send((udp *)s->owner, &f, 1);
}

static void udp_accept_many(sl_slave *s, sl_frame **fs, size_t n) {
  udp_send((udp *)s->owner, fs, n);
}

/* ---- receive path (the receive thread) ---- */

/* Points receive slot i at spare frame f's buffers. */
static void describe_slot(udp *u, int i, sl_frame *f) {
  size_t nb = sl_frame_buffer_count(f), k = 0;
  for (size_t j = 0; j < nb && k < MAX_IOV; j++) {
    sl_buffer *b = sl_frame_buffer(f, j);
    u->rx_iov[i][k].iov_base = sl_buffer_begin(b);
    u->rx_iov[i][k++].iov_len = sl_buffer_get_size(b);
  }
  struct msghdr *h = &u->rx_msg[i].msg_hdr;
  memset(h, 0, sizeof *h);
  h->msg_iov = u->rx_iov[i];
  h->msg_iovlen = k;
  h->msg_name = &u->rx_from[i];
  h->msg_namelen = sizeof u->rx_from[i];
}

_Static_assert(RX_BATCH <= 32, "one bit of rx_full per receive slot");
#define RX_ALL_FULL ((uint32_t)((1ull << RX_BATCH) - 1))

/* Fills the empty receive slots (pool frames of max_payload bytes): only
** those, found from rx_full, not by looking at every slot on every wake. */
static int refill(udp *u) {
  for (uint32_t empty = ~u->rx_full & RX_ALL_FULL; empty != 0; empty &= empty - 1) {
    int i = __builtin_ctz(empty);
    u->spare[i] = sl_slave_req_local_frame(&u->slave, u->max_payload);
    if (u->spare[i] == NULL) return -1;
    describe_slot(u, i, u->spare[i]);
    u->rx_full |= 1u << i;
  }
  return 0;
}

/* The peer word is written only when it changes: the senders read it. */
static void learn_peer(udp *u, const struct sockaddr_in *from) {
  uint64_t w = peer_word(from);
  if (atomic_load_explicit(&u->peer, memory_order_relaxed) == w) return;
  if (atomic_exchange(&u->peer, w) != w && sl_log_enabled(u->log, SL_LOG_DEBUG)) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from->sin_addr, ip, sizeof ip);
    sl_log_write(u->log, SL_LOG_DEBUG, "peer is now %s:%u", ip,
                 (unsigned)ntohs(from->sin_port));
  }
}

/*
** A client takes datagrams from its server's port only: one from another
** port (another program's stale peer reaching a reused port, say) is
** counted, logged at most once a second and dropped. The address is not
** compared: a server with several addresses may answer from another one.
** Rogue's client takes any source; every server answers from its port.
*/
static int foreign(udp *u, const struct sockaddr_in *from) {
  uint16_t want = (uint16_t)atomic_load(&u->peer);
  if (ntohs(from->sin_port) == want) return 0;
  uint64_t n = atomic_fetch_add(&u->rx_foreign, 1) + 1;
  int64_t t = sl_clock_ns();
  if (t - u->foreign_logged_ns >= 1000000000) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from->sin_addr, ip, sizeof ip);
    sl_log_write(u->log, SL_LOG_ERROR,
                 "%llu datagram(s) not from the server's port %u dropped "
                 "(the last from %s:%u; %llu in all)",
                 (unsigned long long)(n - u->foreign_logged), (unsigned)want, ip,
                 (unsigned)ntohs(from->sin_port), (unsigned long long)n);
    u->foreign_logged = n;
    u->foreign_logged_ns = t;
  }
  return 1;
}

/*
** The kernel's count of datagrams it dropped on this socket for want of
** buffer room becomes rxDrops. UDP has no back-pressure, so a receiver
** slower than the sender (a slow downstream included) loses datagrams;
** the receive thread looks at the count at most every 100 ms (an idle
** socket's wait ends each second, so it looks then too), and logs a rise
** at most once a second. Not on every wake: a link's receiver runs dry
** after each few datagrams.
*/
static void read_kernel_drops(udp *u) {
  uint32_t d;
  if (u->fd >= 0 && sl_sock_udp_drops(u->fd, &d) == 0) atomic_store(&u->rx_drops, d);
}

static void check_drops(udp *u) {
  int64_t t = sl_clock_ns();
  if (t - u->rx_drop_checked_ns < 100000000) return;
  u->rx_drop_checked_ns = t;
  read_kernel_drops(u);
  uint64_t d = atomic_load(&u->rx_drops);
  if (d == u->rx_drop_logged || t - u->rx_drop_logged_ns < 1000000000) return;
  sl_log_write(u->log, SL_LOG_ERROR,
               "%llu datagram(s) dropped by the kernel: its receive buffer "
               "(%u bytes) was full (this endpoint or its downstream is slower "
               "than the sender; a Fifo after it, or setRxBufferCount, helps; "
               "%llu in all)",
               (unsigned long long)(d - u->rx_drop_logged),
               (unsigned)sl_udp_rx_buffer_size(u), (unsigned long long)d);
  u->rx_drop_logged = d;
  u->rx_drop_logged_ns = t;
}

/*
** Takes up to RX_BATCH datagrams into frames (got[]), waiting up to
** RX_WAIT_S for the first; -1 when none came (the wait ended, a stop),
** -2 when there was no memory for the frames.
*/
static int receive(udp *u, sl_frame **got, int *slot) {
  if (refill(u) != 0) {
    sl_log_write(u->log, SL_LOG_ERROR, "out of memory for receive frames");
    return -2;
  }
  int n = recvmmsg(u->fd, u->rx_msg, RX_BATCH, MSG_WAITFORONE, NULL);
  if (n <= 0) return -1;
  int ng = 0;
  uint64_t bytes = 0;
  for (int i = 0; i < n; i++) {
    struct msghdr *h = &u->rx_msg[i].msg_hdr;
    uint32_t len = u->rx_msg[i].msg_len;
    int flags = h->msg_flags;
    h->msg_namelen = sizeof u->rx_from[i];     /* the slot is ready again */
    if (len == 0) continue;                  /* ignored, as Rogue */
    if (u->server) learn_peer(u, &u->rx_from[i]);
    else if (foreign(u, &u->rx_from[i])) continue;  /* the frame is reused */
    if (flags & MSG_TRUNC) {
      atomic_fetch_add(&u->rx_oversize, 1);
      sl_log_write(u->log, SL_LOG_ERROR,
                   "Receive data was too large (over %u bytes). Dropping.",
                   (unsigned)sl_frame_get_size(u->spare[i]));
      continue;                              /* the frame is reused */
    }
    sl_frame_set_payload(u->spare[i], len);
    slot[ng] = i;
    got[ng++] = u->spare[i];
    u->spare[i] = NULL;
    u->rx_full &= ~(1u << i);
    bytes += len;
  }
  if (ng > 0) {
    atomic_fetch_add_explicit(&u->rx_frames, (uint64_t)ng, memory_order_relaxed);
    atomic_fetch_add_explicit(&u->rx_bytes, bytes, memory_order_relaxed);
  }
  return ng;
}

/*
** After delivery, a frame that nobody downstream kept and whose buffer
** is still the one its slot describes goes back to that slot as it is
** (flags, error and channel cleared): the next datagram lands in the same
** memory, as a plain receiver's does, with no trip through the pool. The
** others are let go.
*/
static void reuse_or_release(udp *u, sl_frame **got, const int *slot, int n) {
  sl_frame *drop[RX_BATCH];
  size_t nd = 0;
  for (int i = 0; i < n; i++) {
    sl_frame *f = got[i];
    const struct iovec *io = &u->rx_iov[slot[i]][0];
    /* Sole first: a frame held elsewhere may be changing under us. */
    sl_buffer *b = sl_frame_is_sole(f) && sl_frame_buffer_count(f) == 1
                       ? sl_frame_buffer(f, 0) : NULL;
    if (b == NULL || sl_buffer_begin(b) != io->iov_base ||
        sl_buffer_get_size(b) != io->iov_len) {
      drop[nd++] = f;
      continue;
    }
    sl_frame_set_flags(f, 0);
    sl_frame_set_error(f, 0);
    sl_frame_set_channel(f, 0);
    u->spare[slot[i]] = f;
    u->rx_full |= 1u << slot[i];
  }
  sl_frame_unref_many(drop, nd);
}

static int receive_main(void *arg) {
  udp *u = arg;
  sl_frame *got[RX_BATCH];
  int slot[RX_BATCH];
  while (!sl_worker_stopping(&u->rx)) {
    int n = receive(u, got, slot);
    check_drops(u);
    if (n > 0) {
      sl_master_send_frames(&u->master, got, (size_t)n);
      reuse_or_release(u, got, slot, n);
    } else if (n == -2) {
      sl_sleep_us(10000);      /* the kernel keeps (or drops, counted) meanwhile */
    }
  }
  sl_frame_unref_many(u->spare, RX_BATCH);
  memset(u->spare, 0, sizeof u->spare);
  u->rx_full = 0;
  return 0;
}

/* The receive thread's wake: shutting the receive side ends its recvmmsg
** at once (every later one returns empty datagrams). Sending still works. */
static void wake_receiver(void *arg) {
  udp *u = arg;
  shutdown(u->fd, SHUT_RD);
  atomic_store(&u->woken, 1);
}

static int no_senders(void *arg) {
  return atomic_load(&((udp *)arg)->senders) == 0;
}

static int receiver_woken(void *arg) {
  return atomic_load(&((udp *)arg)->woken);
}

/* ---- the object ---- */

/* Phase one of a stop: the receive thread and waiting senders give up. */
static void udp_cancel(sl_object *obj) {
  sl_worker_request_stop(&((udp *)obj)->rx);
}

static void udp_stop(sl_object *obj) {
  udp *u = (udp *)obj;
  udp_cancel(obj);
  if (atomic_exchange(&u->closing, 1)) return;
  /* The receive thread may be waiting on a full Lua mailbox: wait with
  ** the caller's wait hook, which keeps Lua slaves fed, then join. */
  sl_worker_join(&u->rx);
  /* The wake (another thread's cancel, maybe) is done with the socket;
  ** a sender in its poll sees stopping within one slice. */
  sl_wait_until(receiver_woken, u);
  sl_wait_until(no_senders, u);
  close(u->fd);
  u->fd = -1;
}

static void udp_destroy(sl_object *obj) {
  udp *u = (udp *)obj;
  udp_stop(obj);
  sl_master_fini(&u->master);
  sl_slave_fini(&u->slave);
  free(u);
}

static size_t udp_counters(sl_object *obj, sl_counter *out, size_t max) {
  udp *u = (udp *)obj;
  if (!sl_worker_stopping(&u->rx)) read_kernel_drops(u);
  uint64_t rxd = atomic_load(&u->rx_drops), rxo = atomic_load(&u->rx_oversize),
           ov = atomic_load(&u->oversize), txd = atomic_load(&u->tx_drops);
  sl_counter c[] = {{"txFrames", atomic_load(&u->tx_frames)},
                    {"txBytes", atomic_load(&u->tx_bytes)},
                    {"rxFrames", atomic_load(&u->rx_frames)},
                    {"rxBytes", atomic_load(&u->rx_bytes)},
                    {"drops", rxd + rxo + ov + txd},
                    {"rxDrops", rxd},
                    {"rxOversize", rxo},
                    {"oversize", ov},
                    {"txDrops", txd},
                    {"noPeer", atomic_load(&u->no_peer)},
                    {"rxForeign", atomic_load(&u->rx_foreign)},
                    {"errors", atomic_load(&u->errors)}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

static const sl_slave_ops udp_ops = {.accept_frame = udp_accept,
                                     .accept_frames = udp_accept_many};


/* Opens, binds (server) and sets up the socket: blocking, for the
** receive thread's recvmmsg, which gives up after RX_WAIT_S (sends never
** block: MSG_DONTWAIT). 0, or an errno. */
static int open_socket(udp *u, const struct sockaddr_in *sa) {
  u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (u->fd < 0) return errno;
  struct timeval tv = {RX_WAIT_S, 0};
  if (setsockopt(u->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return errno;
  if (u->server) {
    struct sockaddr_in b = *sa;
    socklen_t len = sizeof b;
    if (bind(u->fd, (struct sockaddr *)&b, sizeof b) != 0) return errno;
    getsockname(u->fd, (struct sockaddr *)&b, &len);
    u->port = ntohs(b.sin_port);
  } else {
    atomic_store(&u->peer, peer_word(sa));
  }
  return 0;
}

static const sl_class server_class = {.name = "UdpServer",
                                      .destroy = udp_destroy,
                                      .stop = udp_stop,
                                      .cancel = udp_cancel,
                                      .counters = udp_counters};
static const sl_class client_class = {.name = "UdpClient",
                                      .destroy = udp_destroy,
                                      .stop = udp_stop,
                                      .cancel = udp_cancel,
                                      .counters = udp_counters};

sl_udp *sl_udp_new(const char *host, uint32_t port, int server, int jumbo,
                   sl_error *err) {
  char text[SL_ERROR_MAX] = "";
  const char *shown = host != NULL ? host : "*";
  if (port > 65535 || (!server && port == 0)) {
    sl_sock_error(text, sizeof text, "bad port for", shown, port, EINVAL);
    return sl_fail(err, SL_EINVAL, "%s", text);
  }
  udp *u = calloc(1, sizeof *u);
  if (u == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&u->obj, server ? &server_class : &client_class);
  u->server = server;
  u->port = port;
  u->fd = -1;
  u->mtu = jumbo ? 9000 : 1500;
  u->max_payload = jumbo ? SL_UDP_JUMBO_MAX_PAYLOAD : SL_UDP_MAX_PAYLOAD;
  atomic_init(&u->timeout_us, 1000000);
  if (sl_slave_init(&u->slave, &udp_ops, &u->obj) != SL_OK) goto out_free;
  if (sl_master_init(&u->master, &u->obj) != SL_OK) goto out_slave;
  /* Rogue's pool: blocks of maxPayload, 10000 kept. */
  sl_pool_set_fixed_size(u->slave.pool, u->max_payload);
  sl_pool_set_pool_size(u->slave.pool, 10000);
  u->log = sl_log_get(server ? "udp.Server" : "udp.Client");
  struct sockaddr_in sa;
  const char *why;
  if (sl_sock_resolve(host, 1, &sa, &why) != 0) {
    sl_sock_error_text(text, sizeof text, "cannot resolve", shown, port, why);
    goto out_master;
  }
  sa.sin_port = htons((uint16_t)port);
  int e = open_socket(u, &sa);
  if (e != 0) {
    sl_sock_error(text, sizeof text, server ? "cannot bind" : "cannot open a socket for",
            shown, port, e);
    goto out_socket;
  }
  int trc = sl_worker_start(&u->rx, "sl-udp-rx", 256 * 1024, receive_main,
                            wake_receiver, u);
  if (trc != 0) {
    sl_sock_error(text, sizeof text, "cannot start", shown, port, trc);
    goto out_socket;
  }
  return u;
out_socket:
  if (u->fd >= 0) close(u->fd);
out_master:
  sl_master_fini(&u->master);
out_slave:
  sl_slave_fini(&u->slave);
out_free:
  free(u);
  if (text[0] == '\0') return sl_fail(err, SL_ENOMEM, NULL);
  return sl_fail(err, SL_EIO, "%s", text);
}

sl_object *sl_udp_object(sl_udp *u) { return u != NULL ? &u->obj : NULL; }

sl_udp *sl_udp_from_object(sl_object *obj) {
  if (!sl_object_is(obj, &server_class) && !sl_object_is(obj, &client_class)) return NULL;
  return (udp *)obj;
}

uint32_t sl_udp_port(sl_udp *u) { return u->port; }

uint32_t sl_udp_max_payload(sl_udp *u) { return u->max_payload; }

uint32_t sl_udp_rx_buffer_size(sl_udp *u) {
  int v = 0;
  socklen_t len = sizeof v;
  if (u->fd < 0 || getsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &v, &len) != 0) return 0;
  return (uint32_t)v / 2;
}

/*
** Rogue sets SO_RCVBUF to count x MTU bytes, also below the kernel's
** default (32 x 1500 is a quarter of Linux's usual 208 KiB), and then loses
** datagrams on a plain loopback run. Here the buffer only grows: a count it
** holds already changes nothing, so it is never smaller than the kernel's
** default nor than an earlier ask. Linux reports twice what it was given
** (the other half pays for its bookkeeping), so the usable size is half
** the report; count x MTU of it holds count full datagrams. Too little
** granted is an error line (visible at the default level), once.
*/
int sl_udp_set_rx_buffer_count(sl_udp *u, uint32_t count) {
  uint64_t want = (uint64_t)count * u->mtu;
  int v = want > INT32_MAX / 2 ? INT32_MAX / 2 : (int)want;
  if (u->fd < 0) return 0;
  if (sl_udp_rx_buffer_size(u) >= want) return 1;
  setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
  uint32_t got = sl_udp_rx_buffer_size(u);
  if (got >= want) return 1;
  if (!atomic_exchange(&u->warned_rcvbuf, 1)) {
    sl_log_write(u->log, SL_LOG_ERROR,
                 "receive buffer too small: %llu bytes asked (%u datagrams x "
                 "%u), the kernel gave %u, so bursts will be lost: raise it "
                 "with 'sysctl -w net.core.rmem_max=%llu'",
                 (unsigned long long)want, (unsigned)count, (unsigned)u->mtu,
                 (unsigned)got, (unsigned long long)want);
  }
  return 0;
}

void sl_udp_set_timeout(sl_udp *u, uint64_t us) {
  atomic_store(&u->timeout_us, us);
}

int sl_udp_peer(sl_udp *u, char *ip, uint32_t *port) {
  uint64_t w = atomic_load(&u->peer);
  if (!(w & PEER_VALID)) return 0;
  struct sockaddr_in sa;
  peer_addr(w, &sa);
  inet_ntop(AF_INET, &sa.sin_addr, ip, INET_ADDRSTRLEN);
  *port = ntohs(sa.sin_port);
  return 1;
}
