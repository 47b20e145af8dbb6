/*
** support.c: the C tests' shared scaffolding (see support.h).
*/
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/pool.h"
#include "streamlua/status.h"
#include "tt.h"

/* ---- waiting ---- */

int ts_wait_until(int (*cond)(void *arg), void *arg, double seconds) {
  double end = now_s() + seconds;
  for (;;) {
    if (cond(arg)) return 1;
    if (now_s() > end) return cond(arg) ? 1 : 0;
    sleep_ms(1);
  }
}

/* ---- counters and references ---- */

uint64_t ts_counter(sl_object *o, const char *name) {
  sl_counter c[SL_COUNTERS_MAX];
  size_t n = sl_object_counters(o, c, SL_COUNTERS_MAX);
  for (size_t i = 0; i < n; i++)
    if (strcmp(c[i].name, name) == 0) return c[i].value;
  return UINT64_MAX;
}

typedef struct counter_want {
  sl_object *o;
  const char *name;
  uint64_t want;
} counter_want;

static int counter_reached(void *arg) {
  counter_want *w = arg;
  uint64_t v = ts_counter(w->o, w->name);
  return v != UINT64_MAX && v >= w->want;
}

int ts_counter_reaches(sl_object *o, const char *name, uint64_t want,
                       double seconds) {
  counter_want w = {o, name, want};
  return ts_wait_until(counter_reached, &w, seconds);
}

int ts_refs(const sl_object *o) { return atomic_load(&o->refs); }

/* ---- the recording slave ---- */

static void got_free(ts_got *g) {
  free(g->data);
  g->data = NULL;
}

/* Fills g from f (frame locked by the caller); 0 when memory ran out. */
static int got_fill(ts_got *g, sl_slave *s, sl_frame *f, double t) {
  uint32_t n = sl_frame_get_payload(f);
  uint8_t *data = realloc(g->data, n ? n : 1);
  if (data == NULL) return 0;
  sl_frame_read(f, data, 0, n);
  *g = (ts_got){.frame = f, .size = n, .buffers = sl_frame_buffer_count(f),
                .channel = sl_frame_get_channel(f), .error = sl_frame_get_error(f),
                .flags = sl_frame_get_flags(f), .refs = sl_frame_refcount(f),
                .pool_live = sl_pool_get_alloc_count(s->pool), .t = t, .data = data};
  return 1;
}

static void rec_record(ts_rec *r, sl_slave *s, sl_frame *f) {
  double t = now_s();
  sl_frame_lock(f);
  pthread_mutex_lock(&r->mu);
  long i = r->entered++;
  int ok = got_fill(&r->last, s, f, t);
  if (ok && i < r->keep) ok = got_fill(&r->got[i], s, f, t);
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  sl_frame_unlock(f);
  if (!ok) abort();
}

/* Holds the delivery while the gate is shut and no pass is left. */
static void rec_gate(ts_rec *r) {
  pthread_mutex_lock(&r->mu);
  if (r->gated) {
    r->waiting++;
    pthread_cond_broadcast(&r->cv);
    while (r->gated && r->passes == 0) pthread_cond_wait(&r->cv, &r->mu);
    if (r->gated) r->passes--;
    r->waiting--;
  }
  sl_object *stop_obj = r->stop_obj, *drop_obj = r->drop_obj;
  r->stop_obj = r->drop_obj = NULL;
  pthread_mutex_unlock(&r->mu);
  if (stop_obj != NULL) sl_object_stop(stop_obj);
  if (drop_obj != NULL) sl_object_unref(drop_obj);
}

static void rec_accept(sl_slave *s, sl_frame *f) {
  ts_rec *r = (ts_rec *)s->owner;
  rec_record(r, s, f);
  if (r->hook != NULL) r->hook(r, f);
  rec_gate(r);
  sl_slave_accept_base(s, f);
  pthread_mutex_lock(&r->mu);
  r->done++;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static sl_frame *rec_req(sl_slave *s, uint32_t size, int zero_copy) {
  ts_rec *r = (ts_rec *)s->owner;
  atomic_fetch_add(&r->reqs, 1);
  atomic_store(&r->last_req_size, size);
  atomic_store(&r->last_zero_copy, zero_copy);
  return sl_pool_req_frame(s->pool, size);
}

static const sl_slave_ops rec_ops = {.accept_frame = rec_accept,
                                     .accept_req = rec_req};

static void rec_forget(ts_rec *r) {
  for (long i = 0; i < r->keep; i++) got_free(&r->got[i]);
  got_free(&r->last);
  r->last = (ts_got){0};
  r->entered = r->done = 0;
}

static void rec_destroy(sl_object *obj) {
  ts_rec *r = (ts_rec *)obj;
  if (r->on_free != NULL) r->on_free(r);
  sl_slave_fini(&r->slave);
  rec_forget(r);
  free(r->got);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

static const sl_class rec_class = {.name = "Rec", .destroy = rec_destroy};

ts_rec *ts_rec_new(long keep) {
  ts_rec *r = calloc(1, sizeof *r);
  if (r == NULL) abort();
  r->keep = keep > 0 ? keep : 0;
  r->got = calloc((size_t)r->keep + 1, sizeof *r->got);
  if (r->got == NULL) abort();
  sl_object_init(&r->obj, &rec_class);
  if (sl_slave_init(&r->slave, &rec_ops, &r->obj) != SL_OK) abort();
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  return r;
}

ts_rec *ts_rec_on(sl_object *src, long keep) {
  ts_rec *r = ts_rec_new(keep);
  if (sl_master_add_slave(src->master, &r->slave) != SL_OK) abort();
  return r;
}

long ts_rec_count(ts_rec *r) {
  pthread_mutex_lock(&r->mu);
  long n = r->entered;
  pthread_mutex_unlock(&r->mu);
  return n;
}

int ts_rec_wait(ts_rec *r, long n, double seconds) {
  return ts_rec_await(r, n, 0, 0, seconds);
}

int ts_rec_await(ts_rec *r, long entered, int waiting, long done,
                 double seconds) {
  struct timespec dl;
  sl_deadline_real(&dl, (int64_t)(seconds * 1e6));
  pthread_mutex_lock(&r->mu);
  int ok;
  while (!(ok = r->entered >= entered && r->waiting >= waiting && r->done >= done))
    if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT) {
      ok = r->entered >= entered && r->waiting >= waiting && r->done >= done;
      break;
    }
  pthread_mutex_unlock(&r->mu);
  return ok;
}

int ts_rec_frame(ts_rec *r, long i, ts_got *out) {
  pthread_mutex_lock(&r->mu);
  int ok = i >= 0 && i < r->keep && i < r->entered;
  if (ok) *out = r->got[i];
  pthread_mutex_unlock(&r->mu);
  return ok;
}

int ts_rec_last(ts_rec *r, ts_got *out, void *buf, size_t cap) {
  pthread_mutex_lock(&r->mu);
  int ok = r->last.data != NULL;
  if (ok) {
    *out = r->last;
    memcpy(buf, r->last.data, r->last.size < cap ? r->last.size : cap);
    out->data = buf;
  }
  pthread_mutex_unlock(&r->mu);
  return ok;
}

uint8_t *ts_rec_take(ts_rec *r, uint32_t *n) {
  pthread_mutex_lock(&r->mu);
  uint8_t *b = r->last.data;
  *n = r->last.size;
  r->last = (ts_got){0};
  pthread_mutex_unlock(&r->mu);
  return b;
}

void ts_rec_clear(ts_rec *r) {
  pthread_mutex_lock(&r->mu);
  rec_forget(r);
  pthread_mutex_unlock(&r->mu);
}

static void rec_set_gate(ts_rec *r, int gated, long passes) {
  pthread_mutex_lock(&r->mu);
  r->gated = gated;
  r->passes += passes;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

void ts_rec_shut(ts_rec *r) { rec_set_gate(r, 1, 0); }

void ts_rec_pass(ts_rec *r, long k) {
  pthread_mutex_lock(&r->mu);
  r->passes += k;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

void ts_rec_open(ts_rec *r) { rec_set_gate(r, 0, 0); }

void ts_rec_stop_after(ts_rec *r, sl_object *o) {
  pthread_mutex_lock(&r->mu);
  r->stop_obj = o;
  pthread_mutex_unlock(&r->mu);
}

void ts_rec_drop_after(ts_rec *r, sl_object *o) {
  pthread_mutex_lock(&r->mu);
  r->drop_obj = o;
  pthread_mutex_unlock(&r->mu);
}

/* ---- the recording memory slave ---- */

static void mem_rec_do(sl_mem_slave *s, sl_transaction *t) {
  ts_mem_rec *r = (ts_mem_rec *)s->owner;
  if (r->n < TS_MEM_KEEP) {
    r->addrs[r->n] = sl_transaction_address(t);
    r->sizes[r->n] = sl_transaction_size(t);
  }
  r->n++;
  if (r->answer == TS_MEM_NEVER) return;
  if (r->answer == TS_MEM_HOLD) {
    if (r->nheld < TS_MEM_KEEP) r->held[r->nheld++] = sl_transaction_ref(t);
    else sl_transaction_error(t, "too many held");
    return;
  }
  if (sl_transaction_address(t) == r->fail_addr) sl_transaction_error(t, "bad address");
  else sl_transaction_done(t);
}

static const sl_mem_slave_ops mem_rec_ops = {.do_transaction = mem_rec_do};

static void mem_rec_destroy(sl_object *obj) {
  ts_mem_rec *r = (ts_mem_rec *)obj;
  ts_mem_rec_release(r);
  free(r);
}

static const sl_class mem_rec_class = {.name = "test.MemRec", .destroy = mem_rec_destroy};

ts_mem_rec *ts_mem_rec_new(uint32_t min, uint32_t max, ts_mem_answer answer) {
  ts_mem_rec *r = calloc(1, sizeof *r);
  if (r == NULL) abort();
  sl_object_init(&r->obj, &mem_rec_class);
  sl_mem_slave_init(&r->slave, &mem_rec_ops, &r->obj, min, max);
  r->answer = answer;
  r->fail_addr = UINT64_MAX;
  return r;
}

void ts_mem_rec_release(ts_mem_rec *r) {
  for (int i = 0; i < r->nheld; i++) sl_transaction_unref(r->held[i]);
  r->nheld = 0;
}

/* ---- a fake master and the push/pull harness ---- */

sl_object *ts_master_new(void) {
  sl_object *m = sl_master_new(NULL);
  if (m == NULL) abort();
  return m;
}

int ts_send(sl_master *m, const void *p, uint32_t n, uint8_t channel,
            uint8_t error, uint16_t flags) {
  sl_frame *f = sl_master_req_frame(m, n, 1);
  if (f == NULL) return SL_ENOMEM;
  int rc = n > 0 ? sl_frame_write(f, p, 0, n) : SL_OK;
  if (rc == SL_OK) {
    sl_frame_set_channel(f, channel);
    sl_frame_set_error(f, error);
    sl_frame_set_flags(f, flags);
    sl_master_send_frame(m, f);
  }
  sl_frame_unref(f);
  return rc;
}

int ts_push(sl_slave *s, sl_pool *pool, const void *p, uint32_t n) {
  sl_frame *f = sl_pool_req_frame(pool, n);
  if (f == NULL) return SL_ENOMEM;
  int rc = sl_frame_write(f, p, 0, n);
  if (rc == SL_OK) sl_slave_accept(s, f);
  sl_frame_unref(f);
  return rc;
}

void ts_harness_init(ts_harness *h, sl_object *node, long keep) {
  h->master = ts_master_new();
  h->node = node;
  h->rec = ts_rec_on(node, keep);
  if (sl_master_add_slave(h->master->master, node->slave) != SL_OK) abort();
}

void ts_harness_fini(ts_harness *h) {
  sl_object_stop(h->node);
  sl_object_unref(h->master);
  sl_object_unref(h->node);
  sl_object_unref(&h->rec->obj);
  *h = (ts_harness){0};
}

/* ---- sockets on 127.0.0.1 ---- */

static struct sockaddr_in loopback(uint32_t port) {
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

static uint32_t local_port(int fd) {
  struct sockaddr_in sa = {0};
  socklen_t len = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) return 0;
  return ntohs(sa.sin_port);
}

static void set_timeouts(int fd, double seconds, int send_too) {
  struct timeval tv = sl_tv_from_us((int64_t)(seconds * 1e6));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (send_too) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int ts_socket(double seconds) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0) set_timeouts(fd, seconds, 1);
  return fd;
}

int ts_connect(int fd, uint32_t port) {
  struct sockaddr_in sa = loopback(port);
  return connect(fd, (struct sockaddr *)&sa, sizeof sa);
}

int ts_dial(uint32_t port) {
  int fd = ts_socket(30);
  if (fd >= 0 && ts_connect(fd, port) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int ts_listen(uint32_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = loopback(0);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0) {
    close(fd);
    return -1;
  }
  *port = local_port(fd);
  return fd;
}

int ts_accept(int lfd, double seconds) {
  struct pollfd p = {lfd, POLLIN, 0};
  if (poll(&p, 1, (int)(seconds * 1000)) != 1) return -1;
  int fd = accept(lfd, NULL, NULL);
  if (fd >= 0) set_timeouts(fd, seconds, 1);
  return fd;
}

uint32_t ts_free_port(void) {
  uint32_t port = 0;
  int fd = ts_listen(&port);
  if (fd >= 0) close(fd);
  return port;
}

int ts_send_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n > 0) {
    ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    b += k;
    n -= (size_t)k;
  }
  return 1;
}

int ts_read_exact(int fd, void *p, size_t n) {
  uint8_t *b = p;
  while (n > 0) {
    ssize_t k = recv(fd, b, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    b += k;
    n -= (size_t)k;
  }
  return 1;
}

int ts_closed_by_peer(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return 1;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == ECONNRESET;   /* a timeout is a failure */
  }
}

int ts_udp_socket(uint32_t *port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = loopback(0);
  if (fd < 0) return -1;
  set_timeouts(fd, 30, 0);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  *port = local_port(fd);
  return fd;
}

int ts_udp_send(int fd, uint32_t port, const void *p, size_t n) {
  struct sockaddr_in sa = loopback(port);
  return sendto(fd, p, n, 0, (struct sockaddr *)&sa, sizeof sa) == (ssize_t)n;
}

size_t ts_zmtp_hello(uint8_t out[128], sl_zmtp_role role) {
  size_t n = sl_zmtp_greeting(out);
  return n + sl_zmtp_ready(role, out + n);
}

/* ---- temporary directories ---- */

int ts_tmpdir(char *dir, size_t cap, const char *prefix) {
  if ((size_t)snprintf(dir, cap, "/tmp/%sXXXXXX", prefix) >= cap) return -1;
  return mkdtemp(dir) != NULL ? 0 : -1;
}

char *ts_path(char *out, size_t cap, const char *dir, const char *name) {
  snprintf(out, cap, "%s/%s", dir, name);
  return out;
}

static int remove_one(const char *path, const struct stat *st, int type,
                      struct FTW *ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  return remove(path);
}

int ts_rmdir(const char *dir) {
  return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
