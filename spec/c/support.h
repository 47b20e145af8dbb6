/*
** support.h: what the C tests share, linked into each as a static library
** (spec/c/support.c). Checks stay in tt.h; this is the scaffolding around
** them:
**
**   - ts_rec, a recording stream slave: copies of what arrived, a waitable
**     count, an optional gate that holds deliveries, a hook per frame;
**   - ts_mem_rec, a recording memory slave that answers at once (failing
**     one address if told), holds each transaction, or never answers;
**   - a fake master (ts_master_new, ts_send) and a push/pull harness
**     (ts_harness: master -> node -> recorder);
**   - counters, reference counts and a bounded wait for any condition;
**   - sockets on 127.0.0.1: listen on port 0, dial, send-all, read-exact,
**     close detection, a UDP socket on a free port, ZMTP hello bytes;
**   - temporary directories.
**
** The lossy UDP relay of the link tests is beside it, in relay.h.
**
** Every wait is bounded by the caller's seconds; nothing sleeps and then
** asserts. Unless a comment says otherwise a function may be called from
** any thread, and a recorder's fields are read through its accessors.
*/
#ifndef STREAMLUA_TEST_SUPPORT_H_INCLUDED_
#define STREAMLUA_TEST_SUPPORT_H_INCLUDED_

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "streamlua/frame.h"
#include "streamlua/master.h"
#include "streamlua/memory.h"
#include "streamlua/object.h"
#include "streamlua/slave.h"
#include "streamlua/zmtp.h"

/* ---- waiting ---- */

/* Polls cond(arg) every millisecond until it is non-zero (1) or `seconds`
** pass (then cond's last answer, 0 if still false). */
int ts_wait_until(int (*cond)(void *arg), void *arg, double seconds);

/* ---- counters and references ---- */

/* The node's counter `name`, or UINT64_MAX when it has none of that name. */
uint64_t ts_counter(sl_object *o, const char *name);

/* Waits up to `seconds` for counter `name` to reach at least `want`. */
int ts_counter_reaches(sl_object *o, const char *name, uint64_t want,
                       double seconds);

/* The node's reference count now. */
int ts_refs(const sl_object *o);

/* ---- the recording slave ---- */

/* One frame as the recorder kept it. `data` belongs to the recorder and
** lives until ts_rec_clear or the recorder's destruction. */
typedef struct ts_got {
  const sl_frame *frame;        /* compared, never dereferenced */
  uint32_t size;                /* payload bytes */
  size_t buffers;
  uint8_t channel, error;
  uint16_t flags;
  int refs;                     /* the frame's refcount during delivery */
  uint32_t pool_live;           /* the recorder pool's live buffers then */
  double t;                     /* now_s() at arrival */
  uint8_t *data;                /* the whole payload */
} ts_got;

typedef struct ts_rec ts_rec;

/* Runs on the delivering thread for each frame, after it is recorded and
** before the gate, with no lock held. */
typedef void (*ts_rec_hook)(ts_rec *r, sl_frame *f);

struct ts_rec {
  sl_object obj;
  sl_slave slave;
  /* Set before the first frame; the recorder only reads them. */
  ts_rec_hook hook;
  void *ctx;                    /* for the hook and on_free */
  void (*on_free)(ts_rec *r);   /* runs as the last reference goes */
  long keep;                    /* frames kept in order (the last always) */
  /* accept_req: how often, and the last call's arguments */
  atomic_int reqs;
  atomic_uint last_req_size;
  atomic_int last_zero_copy;
  /* Under mu: read them through the accessors below. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  long entered, done;           /* deliveries started / returned */
  int waiting;                  /* deliveries held at the gate now */
  int gated;                    /* deliveries wait for a pass */
  long passes;                  /* passes not yet used */
  ts_got *got;                  /* the first `keep` frames */
  ts_got last;
  sl_object *stop_obj;          /* sl_object_stop(it) after the gate, once */
  sl_object *drop_obj;          /* sl_object_unref(it) after the gate, once */
};

/* A recorder (one reference, the caller's) keeping the first `keep` frames
** in order, and the last one always. Aborts when memory runs out. */
ts_rec *ts_rec_new(long keep);

/* ts_rec_new(keep) added as a slave of src's master; the master holds a
** reference of its own. */
ts_rec *ts_rec_on(sl_object *src, long keep);

static inline sl_object *ts_rec_object(ts_rec *r) { return &r->obj; }

/* Frames recorded so far (deliveries started). */
long ts_rec_count(ts_rec *r);

/* Waits up to `seconds` for at least n frames; 1 if they came. */
int ts_rec_wait(ts_rec *r, long n, double seconds);

/* Waits up to `seconds` until at least `entered` deliveries started,
** `waiting` wait at the gate and `done` returned; 1 if so. */
int ts_rec_await(ts_rec *r, long entered, int waiting, long done,
                 double seconds);

/* Copies kept frame i (0 is the first) into *out, its data still the
** recorder's; 0 if frame i was not kept or has not come. */
int ts_rec_frame(ts_rec *r, long i, ts_got *out);

/* The last frame's record; its payload is copied into buf (at most cap
** bytes) and out->data points at buf. 0 if no frame came yet. */
int ts_rec_last(ts_rec *r, ts_got *out, void *buf, size_t cap);

/* The last frame's payload in a new buffer (caller frees), *n its size;
** NULL when none came. Forgets it, so the next call waits for a new one. */
uint8_t *ts_rec_take(ts_rec *r, uint32_t *n);

/* Forgets every frame and count; for a recorder no frame is reaching. */
void ts_rec_clear(ts_rec *r);

/* The gate: while shut, each delivery waits for a pass. */
void ts_rec_shut(ts_rec *r);
void ts_rec_pass(ts_rec *r, long k);
void ts_rec_open(ts_rec *r);

/* After the next delivery passes the gate: stop o (ts_rec_stop_after) or
** drop a reference to it (ts_rec_drop_after, which takes the caller's). */
void ts_rec_stop_after(ts_rec *r, sl_object *o);
void ts_rec_drop_after(ts_rec *r, sl_object *o);

/* ---- the recording memory slave ---- */

#define TS_MEM_KEEP 64

typedef enum ts_mem_answer {
  TS_MEM_NOW,                   /* done, or failed ("bad address") at fail_addr */
  TS_MEM_HOLD,                  /* kept in held[] (a reference) for the test */
  TS_MEM_NEVER                  /* left alone: its master's timeout ends it */
} ts_mem_answer;

/* Transactions reach it on the caller's thread; a test reads the fields
** once the calls that feed it have returned. */
typedef struct ts_mem_rec {
  sl_object obj;
  sl_mem_slave slave;
  ts_mem_answer answer;
  uint64_t fail_addr;           /* UINT64_MAX: none */
  int n;                        /* transactions seen */
  uint64_t addrs[TS_MEM_KEEP];  /* the first TS_MEM_KEEP's address and size */
  uint32_t sizes[TS_MEM_KEEP];
  sl_transaction *held[TS_MEM_KEEP];
  int nheld;
} ts_mem_rec;

/* A memory slave of the given access sizes (one reference, the caller's). */
ts_mem_rec *ts_mem_rec_new(uint32_t min, uint32_t max, ts_mem_answer answer);

/* Drops the references to the held transactions; nheld becomes 0. */
void ts_mem_rec_release(ts_mem_rec *r);

/* ---- a fake master and the push/pull harness ---- */

/* A plain master node (one reference, the caller's). */
sl_object *ts_master_new(void);

/* One frame of bytes through m (reqFrame, write, sendFrame, unref) with
** the given channel, error and flags. SL_OK, or why not. */
int ts_send(sl_master *m, const void *p, uint32_t n, uint8_t channel,
            uint8_t error, uint16_t flags);

/* Hands one frame of bytes from `pool` straight to the slave, as a master
** would (transfer none). */
int ts_push(sl_slave *s, sl_pool *pool, const void *p, uint32_t n);

/* master -> node -> recorder. The harness holds a reference on each. */
typedef struct ts_harness {
  sl_object *master;
  sl_object *node;
  ts_rec *rec;
} ts_harness;

/* Wires the harness around `node` (the caller's reference passes to it);
** the recorder keeps `keep` frames. */
void ts_harness_init(ts_harness *h, sl_object *node, long keep);

/* Stops the node, then drops every reference the harness holds. */
void ts_harness_fini(ts_harness *h);

/* ---- sockets on 127.0.0.1 ---- */

/* A blocking TCP socket with send and receive timeouts of `seconds`. */
int ts_socket(double seconds);

/* Connects fd to 127.0.0.1:port; 0 on success, -1 with errno. */
int ts_connect(int fd, uint32_t port);

/* A socket (30 s timeouts) connected to 127.0.0.1:port, or -1. */
int ts_dial(uint32_t port);

/* A listening socket on 127.0.0.1 at a port the kernel picks (*port). */
int ts_listen(uint32_t *port);

/* The next connection on a listening socket, with send and receive
** timeouts of `seconds`; -1 if none came within them. */
int ts_accept(int lfd, double seconds);

/* A port free on 127.0.0.1 right now (bound and released): only for a
** server that cannot take port 0; prefer ts_listen or the node's port. */
uint32_t ts_free_port(void);

/* Sends all n bytes (MSG_NOSIGNAL); 1 if every byte went. */
int ts_send_all(int fd, const void *p, size_t n);

/* Reads exactly n bytes; 1 if they came before EOF, error or timeout. */
int ts_read_exact(int fd, void *p, size_t n);

/* Reads until the peer closes (1) or the socket's timeout passes (0); the
** bytes are discarded. A reset counts as closed. */
int ts_closed_by_peer(int fd);

/* A UDP socket bound to 127.0.0.1 at a free port (*port), 30 s receive
** timeout. */
int ts_udp_socket(uint32_t *port);

/* One datagram to 127.0.0.1:port; 1 if it was sent whole. */
int ts_udp_send(int fd, uint32_t port, const void *p, size_t n);

/* A ZMTP greeting and a READY announcing `role`, as a well-behaved peer of
** that socket type sends first; returns the byte count (at most 128). */
size_t ts_zmtp_hello(uint8_t out[128], sl_zmtp_role role);

/* ---- temporary directories ---- */

/* Makes a new directory /tmp/<prefix>XXXXXX, its path in dir (cap bytes);
** 0 on success. */
int ts_tmpdir(char *dir, size_t cap, const char *prefix);

/* dir/name into out (cap bytes); returns out. */
char *ts_path(char *out, size_t cap, const char *dir, const char *name);

/* Removes dir and everything in it; 0 on success. */
int ts_rmdir(const char *dir);

#endif
