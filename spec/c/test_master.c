/*
** sl_master and sl_slave together: the primary serves reqFrame, sendFrame
** runs secondaries newest first and the primary last, the base slave
** counts and dumps frames (setDebug), removal is final once it returns,
** and nodes are freed with their last reference (rogue-reference 2.1-2.2).
*/
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"
#include "support.h"
#include "tt.h"

/* ---- a recording slave: the shared recorder, and what these cases add ---- */

typedef struct rec_info {
  int id;
  atomic_long last_seq;         /* sequence number seen last (-1: none) */
  atomic_int out_of_order;
  sl_master *remove_from;       /* accept_frame removes itself from it */
  atomic_int remove_rc;
} rec_info;

static atomic_int destroyed;

/* Delivery order across slaves, recorded only by single-threaded cases. */
static int record_order;
static int order[64];
static int norder;

static rec_info *info(ts_rec *r) { return r->ctx; }

static void rec_hook(ts_rec *r, sl_frame *f) {
  rec_info *i = info(r);
  if (record_order && norder < 64) order[norder++] = i->id;
  int64_t seq;
  if (sl_frame_get_payload(f) == sizeof seq &&
      sl_frame_read(f, &seq, 0, sizeof seq) == SL_OK) {
    if (seq <= atomic_load(&i->last_seq)) atomic_fetch_add(&i->out_of_order, 1);
    atomic_store(&i->last_seq, (long)seq);
  }
  if (i->remove_from != NULL)
    atomic_store(&i->remove_rc, sl_master_remove_slave(i->remove_from, &r->slave));
}

static void rec_free(ts_rec *r) {
  free(r->ctx);
  atomic_fetch_add(&destroyed, 1);
}

static ts_rec *rec_new(int id) {
  ts_rec *r = ts_rec_new(0);
  rec_info *i = calloc(1, sizeof *i);
  if (i == NULL) abort();
  i->id = id;
  atomic_init(&i->last_seq, -1);
  r->ctx = i;
  r->hook = rec_hook;
  r->on_free = rec_free;
  return r;
}

static int refs(const sl_object *o) { return ts_refs(o); }

static sl_master *master_of(sl_object *o) { return o->master; }

/* A frame whose 8-byte payload is a sequence number. */
static void set_seq(sl_frame *f, long seq) {
  int64_t v = seq;
  sl_frame_write(f, &v, 0, sizeof v);
}

/* ---- cases ---- */

static void test_primary_serves_req(void) {
  sl_object *mo = sl_master_new(NULL);
  sl_master *m = master_of(mo);
  CHECK(mo->slave == NULL);
  CHECK_STR(sl_object_kind(mo), "Master");
  ts_rec *p = rec_new(1), *s = rec_new(2);
  CHECK_EQ(sl_master_add_slave(m, &p->slave), SL_OK);
  CHECK_EQ(sl_master_add_slave(m, &s->slave), SL_OK);
  sl_frame *f = sl_master_req_frame(m, 100, 1);
  CHECK(f != NULL);
  CHECK_EQ(atomic_load(&p->reqs), 1);
  CHECK_EQ(atomic_load(&s->reqs), 0);
  CHECK_EQ(atomic_load(&p->last_req_size), 100);
  CHECK_EQ(atomic_load(&p->last_zero_copy), 1);
  CHECK_EQ(sl_frame_get_size(f), 100);
  CHECK(sl_frame_buffer(f, 0)->pool == p->slave.pool);
  CHECK_EQ(sl_pool_get_alloc_count(p->slave.pool), 1);
  sl_frame_unref(f);
  CHECK_EQ(sl_pool_get_alloc_count(p->slave.pool), 0);
  f = sl_master_req_frame(m, 7, 0);
  CHECK_EQ(atomic_load(&p->reqs), 2);
  CHECK_EQ(atomic_load(&p->last_zero_copy), 0);
  sl_frame_unref(f);
  sl_object_unref(mo);
  sl_object_unref(&p->obj);
  sl_object_unref(&s->obj);
}

static void test_req_without_slaves(void) {
  sl_object *mo = sl_master_new(NULL);
  sl_frame *f = sl_master_req_frame(master_of(mo), 64, 0);
  CHECK(f != NULL);
  CHECK_EQ(sl_frame_buffer_count(f), 1);
  CHECK_EQ(sl_frame_get_size(f), 64);
  CHECK_EQ(sl_frame_write(f, "still mine", 0, 10), SL_OK);
  sl_object_unref(mo);          /* the frame outlives the master (ASan) */
  char out[11] = {0};
  CHECK_EQ(sl_frame_read(f, out, 0, 10), SL_OK);
  CHECK_STR(out, "still mine");
  sl_frame_unref(f);
  f = NULL;

  /* A plain slave serves from its own pool. */
  sl_object *so = sl_slave_new(NULL);
  CHECK_STR(sl_object_kind(so), "Slave");
  CHECK(so->master == NULL);
  f = sl_slave_req_frame(so->slave, 30, 0);
  CHECK_EQ(sl_pool_get_alloc_count(so->slave->pool), 1);
  CHECK_EQ(sl_frame_get_size(f), 30);
  sl_frame_unref(f);
  ts_rec *r = rec_new(9);
  f = sl_slave_req_local_frame(&r->slave, 12);   /* never accept_req */
  CHECK_EQ(atomic_load(&r->reqs), 0);
  CHECK_EQ(sl_pool_get_alloc_count(r->slave.pool), 1);
  sl_frame_unref(f);
  sl_object_unref(so);
  sl_object_unref(&r->obj);
}

static void test_send_order(void) {
  sl_object *mo = sl_master_new(NULL);
  sl_master *m = master_of(mo);
  ts_rec *a = rec_new(1), *b = rec_new(2), *c = rec_new(3);
  sl_master_add_slave(m, &a->slave);            /* primary */
  sl_master_add_slave(m, &b->slave);
  sl_master_add_slave(m, &c->slave);
  sl_master_add_slave(m, &b->slave);            /* duplicate */
  CHECK_EQ(sl_master_slave_count(m), 4);
  sl_frame *f = sl_master_req_frame(m, 8, 0);
  norder = 0;
  record_order = 1;
  sl_master_send_frame(m, f);
  record_order = 0;
  CHECK_EQ(norder, 4);
  CHECK_EQ(order[0], 2);
  CHECK_EQ(order[1], 3);
  CHECK_EQ(order[2], 2);
  CHECK_EQ(order[3], 1);                         /* the primary last */
  CHECK_EQ(ts_rec_count(b), 2);
  CHECK_EQ(sl_frame_refcount(f), 1);             /* transfer none */

  sl_slave *first = sl_master_get_slave(m, 0);
  CHECK(first == &a->slave);
  CHECK_EQ(refs(&a->obj), 3);                    /* mine, master's, this */
  sl_object_unref(first->owner);
  sl_slave *last = sl_master_get_slave(m, 3);
  CHECK(last == &b->slave);
  sl_object_unref(last->owner);
  CHECK(sl_master_get_slave(m, 4) == NULL);
  sl_frame_unref(f);
  sl_object_unref(mo);
  sl_object_unref(&a->obj);
  sl_object_unref(&b->obj);
  sl_object_unref(&c->obj);
}

static void test_send_without_slaves(void) {
  sl_object *mo = sl_master_new(NULL);
  sl_frame *f = sl_master_req_frame(master_of(mo), 4, 0);
  sl_master_send_frame(master_of(mo), f);       /* dropped silently */
  CHECK_EQ(sl_frame_refcount(f), 1);
  sl_frame_unref(f);
  sl_object_unref(mo);
}

static void test_base_slave_counts(void) {
  sl_object *mo = sl_master_new(NULL), *so = sl_slave_new(NULL);
  sl_master *m = master_of(mo);
  sl_master_add_slave(m, so->slave);
  CHECK_EQ(sl_slave_get_frame_count(so->slave), 0);
  CHECK_EQ(sl_slave_get_byte_count(so->slave), 0);
  sl_frame *f = sl_master_req_frame(m, 100, 0);
  sl_frame_set_payload(f, 10);
  sl_master_send_frame(m, f);
  sl_frame_set_payload(f, 25);
  sl_master_send_frame(m, f);
  sl_frame_unref(f);
  f = sl_master_req_frame(m, 0, 0);             /* empty frames count too */
  sl_master_send_frame(m, f);
  sl_frame_unref(f);
  CHECK_EQ(sl_slave_get_frame_count(so->slave), 3);
  CHECK_EQ(sl_slave_get_byte_count(so->slave), 35);
  /* Direct calls count the same way. */
  f = sl_slave_req_frame(so->slave, 5, 0);
  sl_frame_set_payload(f, 5);
  sl_slave_accept(so->slave, f);
  sl_frame_lock(f);
  sl_slave_count_nolock_(so->slave, f);
  sl_frame_unlock(f);
  sl_frame_unref(f);
  CHECK_EQ(sl_slave_get_frame_count(so->slave), 5);
  CHECK_EQ(sl_slave_get_byte_count(so->slave), 45);
  sl_object_unref(mo);
  sl_object_unref(so);
}

#define PAR_SENDERS 4
#define PAR_FRAMES 20000

static void *par_sender(void *arg) {
  sl_master *m = arg;
  sl_frame *f = sl_master_req_frame(m, 3, 0);
  sl_frame_set_payload(f, 3);
  for (int i = 0; i < PAR_FRAMES; i++) sl_master_send_frame(m, f);
  sl_frame_unref(f);
  return NULL;
}

static void test_parallel_senders_add_up(void) {
  sl_object *mo = sl_master_new(NULL), *so = sl_slave_new(NULL);
  sl_master *m = master_of(mo);
  sl_master_add_slave(m, so->slave);
  pthread_t t[PAR_SENDERS];
  for (int i = 0; i < PAR_SENDERS; i++)
    pthread_create(&t[i], NULL, par_sender, m);
  for (int i = 0; i < PAR_SENDERS; i++) pthread_join(t[i], NULL);
  CHECK_EQ(sl_slave_get_frame_count(so->slave), PAR_SENDERS * PAR_FRAMES);
  CHECK_EQ(sl_slave_get_byte_count(so->slave), 3L * PAR_SENDERS * PAR_FRAMES);
  sl_object_unref(mo);
  sl_object_unref(so);
}

/* A reader that takes the frame count, then the byte count, never finds
** fewer bytes than those frames carried, however it meets the counting. */
static atomic_int count_reader_stop;

static void *count_reader(void *arg) {
  sl_slave *s = arg;
  long torn = 0;
  while (!atomic_load(&count_reader_stop)) {
    uint64_t frames = sl_slave_get_frame_count(s);
    uint64_t bytes = sl_slave_get_byte_count(s);
    torn += bytes < 3 * frames;
  }
  return (void *)torn;
}

static void test_counts_read_in_order(void) {
  sl_object *mo = sl_master_new(NULL), *so = sl_slave_new(NULL);
  sl_master *m = master_of(mo);
  sl_master_add_slave(m, so->slave);
  atomic_store(&count_reader_stop, 0);
  pthread_t r;
  pthread_create(&r, NULL, count_reader, so->slave);
  par_sender(m);                       /* PAR_FRAMES frames of 3 bytes */
  atomic_store(&count_reader_stop, 1);
  void *torn;
  pthread_join(r, &torn);
  CHECK_EQ((long)torn, 0);
  CHECK_EQ(sl_slave_get_byte_count(so->slave), 3L * PAR_FRAMES);
  sl_object_unref(mo);
  sl_object_unref(so);
}

/* ---- setDebug ---- */

/* The text after "<sec>.<usec> " of a history line, without the newline;
** NULL when the prefix is not a timestamp. */
static char *strip_time(char *line) {
  char *p = line;
  if (*p < '0' || *p > '9') return NULL;
  while (*p >= '0' && *p <= '9') p++;
  if (*p++ != '.') return NULL;
  for (int i = 0; i < 6; i++, p++)
    if (*p < '0' || *p > '9') return NULL;
  if (*p++ != ' ') return NULL;
  size_t n = strlen(p);
  if (n > 0 && p[n - 1] == '\n') p[n - 1] = '\0';
  return p;
}

#define HIST_MAX 256

/* What the log wrote after a marker line: l[i] is "<LEVEL> <name>: <text>". */
typedef struct capture {
  char *raw[HIST_MAX];
  size_t nraw;
  char *l[HIST_MAX];
  size_t n;
} capture;

/* A marker line, so the lines after it are exactly what a step wrote. */
static void mark(const char *text) {
  sl_log_write(sl_log_get("test.marker"), SL_LOG_CRITICAL, "%s", text);
}

static void capture_since(const char *text, capture *c) {
  c->nraw = sl_log_history(c->raw, HIST_MAX);
  char want[256];
  snprintf(want, sizeof want, "CRITICAL test.marker: %s", text);
  size_t start = c->nraw + 1;
  for (size_t i = 0; i < c->nraw; i++) {
    char *text_i = strip_time(c->raw[i]);
    CHECK(text_i != NULL);
    if (text_i != NULL && strcmp(text_i, want) == 0) start = i + 1;
  }
  CHECK(start <= c->nraw);                      /* the marker is there */
  c->n = 0;
  for (size_t i = start; i < c->nraw; i++) {
    char *t = strip_time(c->raw[i]);
    c->l[c->n++] = t != NULL ? t : c->raw[i];
  }
}

static void capture_free(capture *c) {
  for (size_t i = 0; i < c->nraw; i++) free(c->raw[i]);
  c->nraw = c->n = 0;
}

/* The part of a line after "<LEVEL>", for records at level 100. */
static const char *after_level(const char *line) {
  const char *sp = strchr(line, ' ');
  return sp != NULL ? sp : "";
}

static void test_set_debug_dump(void) {
  sl_log_set_emit(0);
  sl_object *mo = sl_master_new(NULL), *so = sl_slave_new(NULL);
  sl_master *m = master_of(mo);
  sl_master_add_slave(m, so->slave);
  CHECK_EQ(sl_slave_set_debug(so->slave, 20, "pyrogue.dbg.test"), SL_OK);

  sl_frame *f = sl_master_req_frame(m, 64, 0);
  uint8_t data[64];
  for (int i = 0; i < 64; i++) data[i] = (uint8_t)i;
  sl_frame_write(f, data, 0, 10);
  capture c;
  mark("ten");
  sl_master_send_frame(m, f);
  capture_since("ten", &c);
  if (CHECK_EQ(c.n, 3)) {
    CHECK_STR(c.l[0], "CRITICAL dbg.test: Got Size=10, Error=0, Data:");
    CHECK_STR(c.l[1],
              "CRITICAL dbg.test:       0x00 0x01 0x02 0x03 0x04 0x05 0x06");
    /* The remainder goes out at level 100: compare after the level. */
    CHECK_STR(after_level(c.l[2]), " dbg.test:       0x07 0x08 0x09");
  }
  capture_free(&c);

  /* 7 bytes on the first line, then 8; max 15 ends exactly on a line. */
  sl_slave_set_debug(so->slave, 15, "dbg.test");
  sl_frame_set_error(f, 200);
  sl_frame_write(f, data, 0, 20);
  mark("twenty");
  sl_master_send_frame(m, f);
  capture_since("twenty", &c);
  if (CHECK_EQ(c.n, 3)) {
    CHECK_STR(c.l[0], "CRITICAL dbg.test: Got Size=20, Error=200, Data:");
    CHECK_STR(c.l[1],
              "CRITICAL dbg.test:       0x00 0x01 0x02 0x03 0x04 0x05 0x06");
    CHECK_STR(c.l[2], "CRITICAL dbg.test:       "
                      "0x07 0x08 0x09 0x0a 0x0b 0x0c 0x0d 0x0e");
  }
  capture_free(&c);

  /* max 16: one byte left over, on its own line. */
  sl_slave_set_debug(so->slave, 16, "dbg.test");
  mark("sixteen");
  sl_master_send_frame(m, f);
  capture_since("sixteen", &c);
  if (CHECK_EQ(c.n, 4))
    CHECK_STR(after_level(c.l[3]), " dbg.test:       0x0f");
  capture_free(&c);

  /* Only the payload is dumped, even when max is larger. */
  sl_slave_set_debug(so->slave, 100, "dbg.test");
  sl_frame_set_payload(f, 2);
  sl_frame_set_error(f, 0);
  mark("two");
  sl_master_send_frame(m, f);
  capture_since("two", &c);
  if (CHECK_EQ(c.n, 2)) {
    CHECK_STR(c.l[0], "CRITICAL dbg.test: Got Size=2, Error=0, Data:");
    CHECK_STR(after_level(c.l[1]), " dbg.test:       0x00 0x01");
  }
  capture_free(&c);

  /* 0 turns it off; the counters keep counting. */
  sl_slave_set_debug(so->slave, 0, "dbg.test");
  mark("off");
  sl_master_send_frame(m, f);
  capture_since("off", &c);
  CHECK_EQ(c.n, 0);
  capture_free(&c);
  CHECK_EQ(sl_slave_get_frame_count(so->slave), 5);

  /* "Starting logger" is a Warning: hidden at the default level (Error),
  ** visible once a filter lets Warnings through. */
  mark("quiet");
  sl_slave_set_debug(so->slave, 8, "dbgquiet");
  capture_since("quiet", &c);
  CHECK_EQ(c.n, 0);
  capture_free(&c);
  sl_log_set_filter("pyrogue.dbgwarn", SL_LOG_WARNING);
  mark("start");
  sl_slave_set_debug(so->slave, 8, "dbgwarn");
  capture_since("start", &c);
  if (CHECK_EQ(c.n, 1))
    CHECK_STR(c.l[0], "WARNING dbgwarn: Starting logger with level = 30");
  capture_free(&c);

  sl_frame_unref(f);
  sl_object_unref(mo);
  sl_object_unref(so);
}

/* ---- removal ---- */

static void test_remove_slave(void) {
  sl_object *mo = sl_master_new(NULL);
  sl_master *m = master_of(mo);
  ts_rec *a = rec_new(1), *b = rec_new(2), *stranger = rec_new(3);
  sl_master_add_slave(m, &a->slave);
  sl_master_add_slave(m, &b->slave);
  sl_master_add_slave(m, &a->slave);
  CHECK_EQ(refs(&a->obj), 3);
  CHECK_EQ(sl_master_remove_slave(m, &stranger->slave), SL_ENOTFOUND);
  CHECK_EQ(sl_master_slave_count(m), 3);
  CHECK_EQ(refs(&stranger->obj), 1);

  CHECK_EQ(sl_master_remove_slave(m, &a->slave), SL_OK);  /* both copies */
  CHECK_EQ(sl_master_slave_count(m), 1);
  CHECK_EQ(refs(&a->obj), 1);
  CHECK_EQ(sl_master_remove_slave(m, &a->slave), SL_ENOTFOUND);

  sl_frame *f = sl_master_req_frame(m, 4, 0);
  CHECK_EQ(atomic_load(&b->reqs), 1);            /* b is primary now */
  CHECK_EQ(atomic_load(&a->reqs), 0);
  sl_master_send_frame(m, f);
  CHECK_EQ(ts_rec_count(a), 0);
  CHECK_EQ(ts_rec_count(b), 1);

  sl_master_clear_slaves(m);
  CHECK_EQ(sl_master_slave_count(m), 0);
  CHECK_EQ(refs(&b->obj), 1);
  sl_master_send_frame(m, f);
  CHECK_EQ(ts_rec_count(b), 1);
  sl_frame_unref(f);
  sl_master_clear_slaves(m);                     /* empty: harmless */
  sl_object_unref(mo);
  sl_object_unref(&a->obj);
  sl_object_unref(&b->obj);
  sl_object_unref(&stranger->obj);
}

typedef struct toggle_ctx {
  sl_master *m;
  atomic_int stop;
  atomic_long sent;
} toggle_ctx;

static void *toggle_sender(void *arg) {
  toggle_ctx *c = arg;
  sl_frame *f = sl_master_req_frame(c->m, 8, 0);
  sl_frame_set_payload(f, 8);
  long seq = 0;
  while (!atomic_load(&c->stop)) {
    set_seq(f, ++seq);
    sl_master_send_frame(c->m, f);
    atomic_store(&c->sent, seq);
  }
  sl_frame_unref(f);
  return NULL;
}

/* Waits (bounded) until the sender has finished `more` further sends. */
static int wait_sends(toggle_ctx *c, long more) {
  long target = atomic_load(&c->sent) + more;
  double deadline = now_s() + 20.0;
  while (atomic_load(&c->sent) < target) {
    if (now_s() > deadline) return 0;
    sched_yield();
  }
  return 1;
}

#define TOGGLES 300

static void test_remove_while_sending(void) {
  sl_object *mo = sl_master_new(NULL);
  sl_master *m = master_of(mo);
  ts_rec *p = rec_new(1), *x = rec_new(2);
  sl_master_add_slave(m, &p->slave);
  toggle_ctx c = {.m = m};
  atomic_init(&c.stop, 0);
  atomic_init(&c.sent, 0);
  pthread_t t;
  pthread_create(&t, NULL, toggle_sender, &c);
  int moved = 0, stalled = 0;
  for (int i = 0; i < TOGGLES; i++) {
    sl_master_add_slave(m, &x->slave);
    /* the send in progress may have begun before the add; the next began
    ** after it, so it reaches x */
    if (!wait_sends(&c, 2)) stalled++;
    CHECK_EQ(sl_master_remove_slave(m, &x->slave), SL_OK);
    long before = ts_rec_count(x);
    if (!wait_sends(&c, 3)) stalled++;          /* sends go on without x */
    if (ts_rec_count(x) != before) moved++;
  }
  atomic_store(&c.stop, 1);
  pthread_join(t, NULL);
  CHECK_EQ(stalled, 0);
  CHECK_EQ(moved, 0);
  long sent = atomic_load(&c.sent);
  CHECK_EQ(ts_rec_count(p), sent);      /* the primary got all */
  CHECK_EQ(sl_slave_get_frame_count(&p->slave), sent);
  CHECK_EQ(sl_slave_get_byte_count(&p->slave), 8 * sent);
  CHECK(ts_rec_count(x) >= TOGGLES);    /* one each time, at least */
  CHECK(ts_rec_count(x) < sent);
  CHECK_EQ(atomic_load(&info(p)->last_seq), sent);   /* the order was checked */
  CHECK_EQ(atomic_load(&info(p)->out_of_order), 0);
  CHECK_EQ(atomic_load(&info(x)->out_of_order), 0);
  CHECK_EQ(refs(&x->obj), 1);
  sl_object_unref(mo);
  sl_object_unref(&p->obj);
  sl_object_unref(&x->obj);
}

/* Two adds in a row, then removals, while a thread sends: each removed
** slave stays still once its remove has returned. */
static void test_add_add_remove_while_sending(void) {
  sl_object *mo = sl_master_new(NULL);
  sl_master *m = master_of(mo);
  ts_rec *p = rec_new(1), *x = rec_new(2), *y = rec_new(3);
  sl_master_add_slave(m, &p->slave);
  toggle_ctx c = {.m = m};
  atomic_init(&c.stop, 0);
  atomic_init(&c.sent, 0);
  pthread_t t;
  pthread_create(&t, NULL, toggle_sender, &c);
  int moved = 0, stalled = 0;
  for (int i = 0; i < TOGGLES; i++) {
    sl_master_add_slave(m, &x->slave);
    sl_master_add_slave(m, &y->slave);
    CHECK_EQ(sl_master_remove_slave(m, &x->slave), SL_OK);
    long xb = ts_rec_count(x);
    if (!wait_sends(&c, 2)) stalled++;
    if (ts_rec_count(x) != xb) moved++;
    sl_master_add_slave(m, &x->slave);
    CHECK_EQ(sl_master_remove_slave(m, &y->slave), SL_OK);
    long yb = ts_rec_count(y);
    CHECK_EQ(sl_master_remove_slave(m, &x->slave), SL_OK);
    long xb2 = ts_rec_count(x);
    if (!wait_sends(&c, 2)) stalled++;
    if (ts_rec_count(y) != yb) moved++;
    if (ts_rec_count(x) != xb2) moved++;
  }
  atomic_store(&c.stop, 1);
  pthread_join(t, NULL);
  CHECK_EQ(stalled, 0);
  CHECK_EQ(moved, 0);
  CHECK_EQ(ts_rec_count(p), atomic_load(&c.sent));
  CHECK_EQ(atomic_load(&info(x)->out_of_order), 0);
  CHECK_EQ(atomic_load(&info(y)->out_of_order), 0);
  CHECK_EQ(refs(&x->obj), 1);
  CHECK_EQ(refs(&y->obj), 1);
  CHECK_EQ(sl_master_slave_count(m), 1);
  sl_object_unref(mo);
  sl_object_unref(&p->obj);
  sl_object_unref(&x->obj);
  sl_object_unref(&y->obj);
}

static void *one_send(void *arg) {
  sl_master *m = arg;
  sl_frame *f = sl_frame_new();
  sl_master_send_frame(m, f);
  sl_frame_unref(f);
  return NULL;
}

typedef struct remover_ctx {
  sl_master *m;
  ts_rec *x;
  atomic_int done;
  int rc;
  long frames_at_return;
} remover_ctx;

static void *remover(void *arg) {
  remover_ctx *c = arg;
  c->rc = sl_master_remove_slave(c->m, &c->x->slave);
  c->frames_at_return = ts_rec_count(c->x);
  atomic_store(&c->done, 1);
  return NULL;
}

/*
** A send is in flight, held up in slave g before it reaches x (the
** primary runs last). Another slave is added, then x is removed. Once
** remove returns, x must get nothing more: not even from the delivery
** that started before the add. remove may wait for that delivery, so it
** runs in its own thread and the gate opens after 200 ms either way.
*/
static void test_remove_after_add_waits_for_older_send(void) {
  sl_object *mo = sl_master_new(NULL);
  sl_master *m = master_of(mo);
  ts_rec *x = rec_new(1), *g = rec_new(2), *z = rec_new(3);
  ts_rec_shut(g);
  sl_master_add_slave(m, &x->slave);
  sl_master_add_slave(m, &g->slave);
  pthread_t sender, rem;
  pthread_create(&sender, NULL, one_send, m);
  CHECK(ts_rec_await(g, 1, 1, 0, 20));          /* held in g */

  CHECK_EQ(sl_master_add_slave(m, &z->slave), SL_OK);  /* must not wait */
  remover_ctx c = {.m = m, .x = x};
  atomic_init(&c.done, 0);
  pthread_create(&rem, NULL, remover, &c);
  double deadline = now_s() + 0.2;
  while (!atomic_load(&c.done) && now_s() < deadline) sched_yield();

  ts_rec_open(g);
  pthread_join(sender, NULL);
  pthread_join(rem, NULL);
  CHECK_EQ(c.rc, SL_OK);
  CHECK_EQ(ts_rec_count(x), c.frames_at_return);
  CHECK_EQ(ts_rec_count(g), 1);
  CHECK_EQ(ts_rec_count(z), 0);         /* joined after the send */
  sl_object_unref(mo);
  sl_object_unref(&x->obj);
  sl_object_unref(&g->obj);
  sl_object_unref(&z->obj);
}

/* ---- a slave that removes itself while being delivered to ---- */

static void test_self_removal(void) {
  sl_object *mo = sl_master_new(NULL);
  sl_master *m = master_of(mo);
  ts_rec *p = rec_new(1), *s = rec_new(2);
  sl_master_add_slave(m, &p->slave);
  sl_master_add_slave(m, &s->slave);
  info(s)->remove_from = m;
  atomic_init(&info(s)->remove_rc, 99);
  sl_frame *f = sl_master_req_frame(m, 4, 0);
  sl_master_send_frame(m, f);                   /* must not deadlock */
  CHECK_EQ(atomic_load(&info(s)->remove_rc), SL_OK);
  CHECK_EQ(ts_rec_count(s), 1);
  CHECK_EQ(ts_rec_count(p), 1);         /* the rest still ran */
  CHECK_EQ(sl_master_slave_count(m), 1);
  sl_master_send_frame(m, f);
  CHECK_EQ(ts_rec_count(s), 1);
  CHECK_EQ(ts_rec_count(p), 2);

  /* The primary removes itself: and from a nested send, too. */
  info(p)->remove_from = m;
  sl_master_send_frame(m, f);
  CHECK_EQ(atomic_load(&info(p)->remove_rc), SL_OK);
  CHECK_EQ(sl_master_slave_count(m), 0);
  sl_frame_unref(f);
  sl_object_unref(mo);
  CHECK_EQ(refs(&p->obj), 1);
  CHECK_EQ(refs(&s->obj), 1);
  sl_object_unref(&p->obj);
  sl_object_unref(&s->obj);
}

typedef struct self_ctx {
  sl_master *m;
  atomic_int stop;
} self_ctx;

static void *self_sender(void *arg) {
  self_ctx *c = arg;
  sl_frame *f = sl_frame_new();
  while (!atomic_load(&c->stop)) sl_master_send_frame(c->m, f);
  sl_frame_unref(f);
  return NULL;
}

#define SELF_ROUNDS 300

/* Two threads send; the slave removes itself from whichever reaches it
** first while the other may be delivering from the same snapshot. */
static void test_self_removal_threads(void) {
  sl_object *mo = sl_master_new(NULL);
  sl_master *m = master_of(mo);
  ts_rec *p = rec_new(1), *s = rec_new(2);
  sl_master_add_slave(m, &p->slave);
  info(s)->remove_from = m;
  self_ctx c = {.m = m};
  atomic_init(&c.stop, 0);
  pthread_t t1, t2;
  pthread_create(&t1, NULL, self_sender, &c);
  pthread_create(&t2, NULL, self_sender, &c);
  int stuck = 0;
  for (int i = 0; i < SELF_ROUNDS && !stuck; i++) {
    sl_master_add_slave(m, &s->slave);
    double deadline = now_s() + 20.0;
    while (sl_master_slave_count(m) != 1) {
      if (now_s() > deadline) {
        stuck = 1;
        break;
      }
      sched_yield();
    }
  }
  atomic_store(&c.stop, 1);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  CHECK_EQ(stuck, 0);
  CHECK(ts_rec_count(s) >= SELF_ROUNDS);
  CHECK_EQ(sl_master_slave_count(m), 1);
  sl_object_unref(mo);
  sl_object_unref(&p->obj);
  sl_object_unref(&s->obj);
}

/* ---- lifetimes ---- */

static void test_refcounts(void) {
  atomic_store(&destroyed, 0);
  sl_object *mo = sl_master_new(NULL);
  sl_master *m = master_of(mo);
  ts_rec *a = rec_new(1), *b = rec_new(2);
  sl_master_add_slave(m, &a->slave);
  sl_master_add_slave(m, &b->slave);
  CHECK_EQ(refs(&a->obj), 2);
  sl_object_unref(&a->obj);                     /* the master keeps it */
  sl_object_unref(&b->obj);
  CHECK_EQ(atomic_load(&destroyed), 0);
  sl_frame *f = sl_master_req_frame(m, 16, 0);  /* from a's pool */
  sl_master_send_frame(m, f);
  CHECK_EQ(ts_rec_count(a), 1);
  CHECK_EQ(sl_master_remove_slave(m, &b->slave), SL_OK);
  CHECK_EQ(atomic_load(&destroyed), 1);         /* b's last ref went */
  sl_object_ref(mo);
  sl_object_unref(mo);
  CHECK_EQ(atomic_load(&destroyed), 1);
  sl_object_unref(mo);                          /* drops a too */
  CHECK_EQ(atomic_load(&destroyed), 2);
  /* a's pool lives on in the frame's buffer (ASan checks the access). */
  CHECK_EQ(sl_frame_write(f, "after", 0, 5), SL_OK);
  sl_frame_unref(f);

  sl_object *so = sl_slave_new(NULL);
  mo = sl_master_new(NULL);
  sl_master_add_slave(master_of(mo), so->slave);
  sl_object_unref(mo);
  CHECK_EQ(refs(so), 1);
  sl_object_unref(so);
}

/* A slave with the batch entry point: records how it was called. */
typedef struct batch_slave {
  sl_object obj;
  sl_slave slave;
  int batches, frames;
  int64_t seqs[16];
} batch_slave;

static void batch_one(sl_slave *s, sl_frame *f) {
  batch_slave *b = (batch_slave *)s->owner;
  int64_t seq = -1;
  sl_frame_read(f, &seq, 0, sizeof seq);
  if (b->frames < 16) b->seqs[b->frames] = seq;
  b->frames++;
  if (record_order && norder < 64) order[norder++] = 100;
}

static void batch_many(sl_slave *s, sl_frame **fs, size_t n) {
  ((batch_slave *)s->owner)->batches++;
  for (size_t i = 0; i < n; i++) batch_one(s, fs[i]);
}

static const sl_slave_ops batch_ops = {.accept_frame = batch_one,
                                       .accept_frames = batch_many};

static void batch_destroy(sl_object *obj) {
  batch_slave *b = (batch_slave *)obj;
  sl_slave_fini(&b->slave);
  free(b);
}

static const sl_class batch_class = {.name = "BatchSlave",
                                     .destroy = batch_destroy};

/* send_frames: slave by slave, newest first, each slave in frame order;
** a slave with accept_frames gets the batch in one call. */
static void test_send_frames(void) {
  sl_object *m = sl_master_new(NULL);
  ts_rec *primary = rec_new(1);
  batch_slave *b = calloc(1, sizeof *b);
  sl_object_init(&b->obj, &batch_class);
  if (sl_slave_init(&b->slave, &batch_ops, &b->obj) != SL_OK) abort();
  sl_master_add_slave(master_of(m), &primary->slave);
  sl_master_add_slave(master_of(m), &b->slave);
  sl_frame *fs[3];
  for (int i = 0; i < 3; i++) {
    fs[i] = sl_master_req_frame(master_of(m), 8, 0);
    set_seq(fs[i], i);
  }
  record_order = 1;
  norder = 0;
  sl_master_send_frames(master_of(m), fs, 3);
  record_order = 0;
  CHECK_EQ(b->batches, 1);
  CHECK_EQ(b->frames, 3);
  CHECK_EQ(b->seqs[0], 0);
  CHECK_EQ(b->seqs[2], 2);
  CHECK_EQ(norder, 6);
  CHECK_EQ(order[0], 100);                 /* the secondary first... */
  CHECK_EQ(order[2], 100);
  CHECK_EQ(order[3], 1);                   /* ...then the primary, in order */
  CHECK_EQ(ts_rec_count(primary), 3);
  CHECK_EQ(atomic_load(&info(primary)->out_of_order), 0);
  for (int i = 0; i < 3; i++) sl_frame_unref(fs[i]);
  sl_object_unref(m);
  sl_object_unref(&primary->obj);
  sl_object_unref(&b->obj);
}

static const struct tt_case cases[] = {
  {"primary serves reqFrame", test_primary_serves_req},
  {"reqFrame without slaves; slave pools", test_req_without_slaves},
  {"sendFrame: newest first, primary last, duplicates", test_send_order},
  {"sendFrame without slaves", test_send_without_slaves},
  {"base slave counts frames and bytes", test_base_slave_counts},
  {"parallel senders: counts add up", test_parallel_senders_add_up},
  {"frame count, then byte count: never fewer bytes", test_counts_read_in_order},
  {"setDebug dump", test_set_debug_dump},
  {"remove_slave / clear_slaves", test_remove_slave},
  {"remove and re-add while sending", test_remove_while_sending},
  {"add, add, remove while sending", test_add_add_remove_while_sending},
  {"remove after add waits for an older send", test_remove_after_add_waits_for_older_send},
  {"slave removes itself during delivery", test_self_removal},
  {"self-removal with two senders", test_self_removal_threads},
  {"refcounts and destruction", test_refcounts},
  {"send_frames: batches, order, primary last", test_send_frames},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
