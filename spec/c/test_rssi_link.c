/*
** The RSSI link's state machine: a Client and a Server wired back to back
** through two in-process pipes (one per direction) that copy each
** segment, deliver it from their own thread, and drop or reorder
** segments deterministically on request.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/rssi.h"
#include "streamlua/slave.h"
#include "streamlua/wait.h"
#include "streamlua/worker.h"
#include "support.h"
#include "tt.h"
#include "vectors.h"

/* ---- the lossy pipe ---- */

#define PIPE_RING 1024
#define PIPE_KEEP 8

typedef struct pipe_seg {
  uint8_t *p;
  uint32_t n;
} pipe_seg;

typedef struct lpipe {
  sl_object obj;
  sl_slave slave;
  sl_master master;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pipe_seg q[PIPE_RING];
  int head, n;
  pipe_seg held;                /* a segment kept back for reordering */
  pipe_seg first[PIPE_KEEP];    /* the first segments seen, copies */
  int nfirst;
  sl_worker w;
  /* what to do with the next segments (mu) */
  int black;                    /* drop everything */
  int hold;                     /* keep everything queued, in order */
  int drop_data, drop_acks;     /* drop the next n DATA / pure ACKs */
  int swap_data;                /* hold the next DATA until the one after */
  long seen, dropped;
  long busy;                    /* segments seen with BUSY set */
} lpipe;

static int is_data(const uint8_t *p, uint32_t n) {
  return n > 8 && !(p[0] & (SL_RSSI_SYN | SL_RSSI_RST | SL_RSSI_NUL));
}

static int is_pure_ack(const uint8_t *p, uint32_t n) {
  return n == 8 && (p[0] & ~SL_RSSI_BUSY) == SL_RSSI_ACK;
}

static void pipe_push(lpipe *l, pipe_seg s) {
  if (l->n == PIPE_RING) {
    free(s.p);
    return;
  }
  l->q[(l->head + l->n++) % PIPE_RING] = s;
  pthread_cond_signal(&l->cv);
}

static void pipe_accept(sl_slave *sv, sl_frame *f) {
  lpipe *l = (lpipe *)sv->owner;
  sl_frame_lock(f);
  uint32_t n = sl_frame_get_payload(f);
  uint8_t *p = malloc(n ? n : 1);
  sl_frame_read(f, p, 0, n);
  sl_frame_unlock(f);
  pipe_seg s = {p, n};
  pthread_mutex_lock(&l->mu);
  l->seen++;
  if (n >= 8 && (p[0] & SL_RSSI_BUSY)) l->busy++;
  if (l->nfirst < PIPE_KEEP) {
    uint8_t *c = malloc(n ? n : 1);
    memcpy(c, p, n);
    l->first[l->nfirst++] = (pipe_seg){c, n};
  }
  int drop = l->black;
  if (!drop && l->drop_data > 0 && is_data(p, n)) {
    l->drop_data--;
    drop = 1;
  } else if (!drop && l->drop_acks > 0 && is_pure_ack(p, n)) {
    l->drop_acks--;
    drop = 1;
  }
  if (drop) {
    l->dropped++;
    free(p);
  } else if (l->swap_data && is_data(p, n) && l->held.p == NULL) {
    l->held = s;
  } else {
    pipe_push(l, s);
    if (l->held.p != NULL && is_data(p, n)) {
      pipe_push(l, l->held);
      l->held = (pipe_seg){NULL, 0};
      l->swap_data = 0;
    }
  }
  pthread_mutex_unlock(&l->mu);
}

static int pipe_main(void *arg) {
  lpipe *l = arg;
  pthread_mutex_lock(&l->mu);
  while (!sl_worker_stopping(&l->w)) {
    if (l->n == 0 || l->hold) {
      sl_wait_cond(&l->cv, &l->mu, NULL);
      continue;
    }
    pipe_seg s = l->q[l->head];
    l->head = (l->head + 1) % PIPE_RING;
    l->n--;
    pthread_mutex_unlock(&l->mu);
    sl_frame *f = sl_master_req_frame(&l->master, s.n, 0);
    if (f != NULL) {
      sl_frame_write(f, s.p, 0, s.n);
      sl_master_send_frame(&l->master, f);
      sl_frame_unref(f);
    }
    free(s.p);
    pthread_mutex_lock(&l->mu);
  }
  pthread_mutex_unlock(&l->mu);
  return 0;
}

static void pipe_wake(void *arg) {
  lpipe *l = arg;
  pthread_mutex_lock(&l->mu);
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

static void pipe_destroy(sl_object *o) {
  lpipe *l = (lpipe *)o;
  sl_worker_stop(&l->w);
  while (l->n > 0) {
    free(l->q[l->head].p);
    l->head = (l->head + 1) % PIPE_RING;
    l->n--;
  }
  free(l->held.p);
  for (int i = 0; i < l->nfirst; i++) free(l->first[i].p);
  sl_master_fini(&l->master);
  sl_slave_fini(&l->slave);
  free(l);
}

static const sl_class pipe_class = {.name = "test.Pipe", .destroy = pipe_destroy};
static const sl_slave_ops pipe_ops = {.accept_frame = pipe_accept};

static lpipe *pipe_new(void) {
  lpipe *l = calloc(1, sizeof *l);
  sl_object_init(&l->obj, &pipe_class);
  pthread_mutex_init(&l->mu, NULL);
  sl_cond_init(&l->cv);
  sl_slave_init(&l->slave, &pipe_ops, &l->obj);
  sl_master_init(&l->master, &l->obj);
  sl_worker_start(&l->w, "TestPipe", 0, pipe_main, pipe_wake, l);
  return l;
}

static void pipe_set(lpipe *l, int *field, int v) {
  pthread_mutex_lock(&l->mu);
  *field = v;
  pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

static long pipe_busy(lpipe *l) {
  pthread_mutex_lock(&l->mu);
  long n = l->busy;
  pthread_mutex_unlock(&l->mu);
  return n;
}

static long pipe_seen(lpipe *l) {
  pthread_mutex_lock(&l->mu);
  long n = l->seen;
  pthread_mutex_unlock(&l->mu);
  return n;
}

/* ---- a client and a server back to back ---- */

typedef struct pair {
  sl_rssi *c, *s;
  sl_object *ct, *ca, *st, *sa;   /* edges */
  lpipe *cs, *sc;                 /* client -> server, server -> client */
  sl_object *cm, *sm;             /* masters feeding each application */
  ts_rec *crec, *srec;            /* what each application delivers */
} pair;

static void pair_init(pair *p) {
  memset(p, 0, sizeof *p);
  p->c = sl_rssi_new(0, 1464, NULL);
  p->s = sl_rssi_new(1, 1464, NULL);
  p->ct = sl_rssi_transport(p->c);
  p->ca = sl_rssi_application(p->c);
  p->st = sl_rssi_transport(p->s);
  p->sa = sl_rssi_application(p->s);
  p->cs = pipe_new();
  p->sc = pipe_new();
  sl_master_add_slave(p->ct->master, &p->cs->slave);
  sl_master_add_slave(&p->cs->master, p->st->slave);
  sl_master_add_slave(p->st->master, &p->sc->slave);
  sl_master_add_slave(&p->sc->master, p->ct->slave);
  p->cm = ts_master_new();
  p->sm = ts_master_new();
  sl_master_add_slave(p->cm->master, p->ca->slave);
  sl_master_add_slave(p->sm->master, p->sa->slave);
  p->crec = ts_rec_on(p->ca, 4096);
  p->srec = ts_rec_on(p->sa, 4096);
}

static void pair_fini(pair *p) {
  sl_rssi_stop(p->c);
  sl_rssi_stop(p->s);
  sl_object_stop(&p->cs->obj);
  sl_worker_stop(&p->cs->w);
  sl_worker_stop(&p->sc->w);
  sl_master_clear_slaves(p->ct->master);
  sl_master_clear_slaves(p->st->master);
  sl_master_clear_slaves(&p->cs->master);
  sl_master_clear_slaves(&p->sc->master);
  sl_master_clear_slaves(p->cm->master);
  sl_master_clear_slaves(p->sm->master);
  sl_master_clear_slaves(p->ca->master);
  sl_master_clear_slaves(p->sa->master);
  sl_object_unref(p->ct);
  sl_object_unref(p->ca);
  sl_object_unref(p->st);
  sl_object_unref(p->sa);
  sl_object_unref(&p->cs->obj);
  sl_object_unref(&p->sc->obj);
  sl_object_unref(p->cm);
  sl_object_unref(p->sm);
  sl_object_unref(&p->crec->obj);
  sl_object_unref(&p->srec->obj);
  sl_object_unref(sl_rssi_object(p->c));
  sl_object_unref(sl_rssi_object(p->s));
}

static int both_open(void *arg) {
  pair *p = arg;
  return sl_rssi_is_open(p->c) && sl_rssi_is_open(p->s);
}

static int both_closed(void *arg) {
  pair *p = arg;
  return !sl_rssi_is_open(p->c) && !sl_rssi_is_open(p->s);
}

static int pair_open(pair *p) {
  sl_rssi_start(p->s);
  sl_rssi_start(p->c);
  return ts_wait_until(both_open, p, 10);
}

static sl_rssi_stats stats(sl_rssi *r) {
  sl_rssi_stats s;
  sl_rssi_stats_get(r, &s);
  return s;
}

/* Neither end has reset. */
static int no_resets(pair *p) {
  return stats(p->c).down_count == 0 && stats(p->s).down_count == 0;
}

/* Sends frame i (its bytes a pattern of i and n) through master m. */
static int send_pattern(sl_object *m, uint32_t i, uint32_t n) {
  uint8_t buf[1456];
  for (uint32_t k = 0; k < n; k++) buf[k] = (uint8_t)(i * 7 + k);
  return ts_send(m->master, buf, n, 0, 0, 0);
}

static int check_pattern(ts_rec *rec, long i, uint32_t n) {
  ts_got g;
  if (!ts_rec_frame(rec, i, &g) || g.size != n) return 0;
  for (uint32_t k = 0; k < n; k++)
    if (g.data[k] != (uint8_t)(i * 7 + k)) return 0;
  return 1;
}

static int bytes_equal(const pipe_seg *s, const char *vector) {
  tv_file v;
  if (tv_load(vector, &v) != 0) return 0;
  int eq = v.nblocks == 1 && v.blocks[0].n == s->n &&
           memcmp(v.blocks[0].bytes, s->p, s->n) == 0;
  tv_free(&v);
  return eq;
}

/* ---- cases ---- */

static int handshake_seen(void *arg) {
  pair *p = arg;
  pthread_mutex_lock(&p->cs->mu);
  int n = p->cs->nfirst;
  pthread_mutex_unlock(&p->cs->mu);
  return n >= 2;
}

/* The handshake: Rogue's SYN, SYN-ACK and ACK bytes; both open. */
static void test_open(void) {
  pair p;
  pair_init(&p);
  /* one SYN only, however slow the machine */
  sl_rssi_set_loc(p.c, SL_RSSI_P_TRY_PERIOD, 60000);
  CHECK(pair_open(&p));
  CHECK(ts_wait_until(handshake_seen, &p, 10));
  CHECK_EQ(stats(p.c).opens, 1);
  CHECK_EQ(stats(p.s).opens, 1);
  pthread_mutex_lock(&p.cs->mu);
  CHECK(p.cs->nfirst >= 2);
  CHECK(bytes_equal(&p.cs->first[0], "rssi_syn_client"));
  CHECK(bytes_equal(&p.cs->first[1], "rssi_ack_handshake"));
  pthread_mutex_unlock(&p.cs->mu);
  pthread_mutex_lock(&p.sc->mu);
  CHECK(p.sc->nfirst >= 1);
  CHECK(bytes_equal(&p.sc->first[0], "rssi_synack_server"));
  pthread_mutex_unlock(&p.sc->mu);
  CHECK_EQ(sl_rssi_get_cur(p.c, SL_RSSI_P_MAX_BUFFERS), 32);
  CHECK_EQ(sl_rssi_get_cur(p.s, SL_RSSI_P_MAX_SEGMENT), 1464);
  pair_fini(&p);
}

/* Data both ways, in order, more frames than the window. */
static void test_data_both_ways(void) {
  pair p;
  pair_init(&p);
  CHECK(pair_open(&p));
  for (uint32_t i = 0; i < 300; i++) {
    CHECK_EQ(send_pattern(p.cm, i, 1 + i % 1400), SL_OK);
    CHECK_EQ(send_pattern(p.sm, i, 1 + (i * 13) % 1400), SL_OK);
  }
  CHECK(ts_rec_wait(p.srec, 300, 10));
  CHECK(ts_rec_wait(p.crec, 300, 10));
  int good = 1;
  for (uint32_t i = 0; i < 300; i++) {
    good &= check_pattern(p.srec, i, 1 + i % 1400);
    good &= check_pattern(p.crec, i, 1 + (i * 13) % 1400);
  }
  CHECK(good);
  CHECK(no_resets(&p));
  pair_fini(&p);
}

/* A lost DATA is retransmitted and counted; a swapped pair is put back
** in order. */
static void test_retransmission_and_reorder(void) {
  pair p;
  pair_init(&p);
  CHECK(pair_open(&p));
  pipe_set(p.cs, &p.cs->drop_data, 1);
  CHECK_EQ(send_pattern(p.cm, 0, 100), SL_OK);
  CHECK(ts_rec_wait(p.srec, 1, 10));
  CHECK(check_pattern(p.srec, 0, 100));
  CHECK(stats(p.c).retran_count >= 1);
  pipe_set(p.cs, &p.cs->swap_data, 1);
  CHECK_EQ(send_pattern(p.cm, 1, 50), SL_OK);
  CHECK_EQ(send_pattern(p.cm, 2, 60), SL_OK);
  CHECK(ts_rec_wait(p.srec, 3, 10));
  CHECK(check_pattern(p.srec, 1, 50));
  CHECK(check_pattern(p.srec, 2, 60));
  CHECK_EQ(stats(p.s).down_count, 0);
  pair_fini(&p);
}

static int reacked(void *arg) {
  pair *p = arg;
  return stats(p->s).reacks >= 1 && stats(p->c).tx_segments > 0;
}

static int nothing_outstanding(void *arg) {
  pair *p = arg;
  return stats(p->c).retran_count >= 1 && stats(p->s).reacks >= 1;
}

/* One lost ACK: the sender retransmits, the receiver drops the duplicate
** and acknowledges it again, and the link stays open. */
static void test_duplicate_reack(void) {
  pair p;
  pair_init(&p);
  CHECK(pair_open(&p));
  pipe_set(p.sc, &p.sc->drop_acks, 1000);   /* every pure ACK is lost... */
  CHECK_EQ(send_pattern(p.cm, 0, 10), SL_OK);
  CHECK(ts_rec_wait(p.srec, 1, 10));
  CHECK(ts_wait_until(nothing_outstanding, &p, 10));
  pipe_set(p.sc, &p.sc->drop_acks, 0);      /* ...until now */
  CHECK(ts_wait_until(reacked, &p, 10));
  /* the link carries on: a frame after it arrives once */
  CHECK_EQ(send_pattern(p.cm, 1, 10), SL_OK);
  CHECK(ts_rec_wait(p.srec, 2, 10));
  CHECK_EQ(ts_rec_count(p.srec), 2);
  CHECK(no_resets(&p));
  CHECK(stats(p.s).drop_count >= 1);
  pair_fini(&p);
}

static int both_down(void *arg) {
  pair *p = arg;
  return stats(p->c).down_count >= 1 && stats(p->s).down_count >= 1;
}

static int reopened(void *arg) {
  pair *p = arg;
  return both_open(p) && stats(p->c).opens >= 2 && stats(p->s).opens >= 2;
}

/* Both directions black-holed: keep-alives go unanswered, both reset;
** traffic back: the client's SYNs reopen the link, data flows again. */
static void test_peer_loss_and_reopen(void) {
  pair p;
  pair_init(&p);
  CHECK(pair_open(&p));
  pipe_set(p.cs, &p.cs->black, 1);
  pipe_set(p.sc, &p.sc->black, 1);
  CHECK(ts_wait_until(both_down, &p, 20));
  CHECK(both_closed(&p) || !sl_rssi_is_open(p.c));
  pipe_set(p.cs, &p.cs->black, 0);
  pipe_set(p.sc, &p.sc->black, 0);
  CHECK(ts_wait_until(reopened, &p, 20));
  CHECK_EQ(send_pattern(p.cm, 0, 33), SL_OK);
  CHECK(ts_rec_wait(p.srec, 1, 10));
  CHECK(check_pattern(p.srec, 0, 33));
  pair_fini(&p);
}

/* ---- stop in every state ---- */

typedef struct sender {
  pair *p;
  atomic_int done;
  int sent;
} sender;

static void *send_many(void *arg) {
  sender *s = arg;
  for (int i = 0; i < 100; i++) {
    send_pattern(s->p->cm, (uint32_t)i, 20);
    s->sent++;
  }
  atomic_store(&s->done, 1);
  return NULL;
}

static int sender_done(void *arg) { return atomic_load(&((sender *)arg)->done); }

static int peer_closed(void *arg) { return !sl_rssi_is_open(((pair *)arg)->s); }

static void test_stop_every_state(void) {
  /* never started */
  sl_rssi *r = sl_rssi_new(0, 1464, NULL);
  sl_rssi_stop(r);
  CHECK(!sl_rssi_is_open(r));
  /* started with no peer (waiting for SYN-ACK), twice */
  sl_rssi_start(r);
  sl_rssi_stop(r);
  sl_rssi_start(r);
  sl_rssi_stop(r);
  sl_object_unref(sl_rssi_object(r));
  /* open: the RST closes the peer */
  pair p;
  pair_init(&p);
  CHECK(pair_open(&p));
  sl_rssi_stop(p.c);
  CHECK(!sl_rssi_is_open(p.c));
  CHECK(ts_wait_until(peer_closed, &p, 10));
  /* restart after stop: opens again */
  sl_rssi_start(p.c);
  CHECK(ts_wait_until(both_open, &p, 10));
  /* a sender waiting for window space (the peer gone) is freed by stop */
  pipe_set(p.cs, &p.cs->black, 1);
  pipe_set(p.sc, &p.sc->black, 1);
  sender s = {.p = &p};
  pthread_t t;
  pthread_create(&t, NULL, send_many, &s);
  CHECK(!ts_wait_until(sender_done, &s, 0.05) || s.sent == 100);
  sl_rssi_stop(p.c);
  CHECK(ts_wait_until(sender_done, &s, 10));
  pthread_join(t, NULL);
  pair_fini(&p);
  CHECK(tt_threads_settle("RssiTimer", 0, 10));
  CHECK(tt_threads_settle("RssiApp", 0, 10));
}

/* Bad segments are counted as drops and change nothing. */
static void test_bad_segments(void) {
  pair p;
  pair_init(&p);
  CHECK(pair_open(&p));
  sl_pool *pool = sl_pool_new();
  uint8_t bad[8] = {0x40, 0x08, 0x10, 0x10, 0, 0, 0x12, 0x34};
  uint8_t shortseg[4] = {0x40, 0x08, 0, 0};
  uint32_t before = stats(p.s).drop_count;
  ts_push(p.st->slave, pool, bad, sizeof bad);
  ts_push(p.st->slave, pool, shortseg, sizeof shortseg);
  CHECK_EQ(stats(p.s).drop_count, before + 2);
  CHECK(sl_rssi_is_open(p.s));
  sl_pool_unref(pool);
  pair_fini(&p);
}

/* Pushes one segment from a hand-made peer: SYN (with params) or DATA
** carrying the 16-bit marker k. */
static void peer_push(sl_object *t, sl_pool *pool, uint8_t flags, uint8_t seq, uint16_t k) {
  sl_rssi_header h;
  memset(&h, 0, sizeof h);
  h.flags = flags;
  h.seq = seq;
  h.ack = 100;
  sl_rssi_default_params(&h.params, 1464);
  uint8_t seg[26];
  uint32_t n = sl_rssi_encode(seg, &h);
  if (!(flags & SL_RSSI_SYN)) {
    seg[n++] = (uint8_t)k;
    seg[n++] = (uint8_t)(k >> 8);
  }
  ts_push(t->slave, pool, seg, n);
}

static uint16_t last_marker(ts_rec *rec) {
  ts_got g;
  uint8_t buf[8] = {0};
  if (!ts_rec_last(rec, &g, buf, sizeof buf) || g.size != 2) return 0xffff;
  return (uint16_t)(buf[0] | buf[1] << 8);
}

/* A started server alone, fed by hand (peer_push), its deliveries
** recorded. */
typedef struct lone {
  sl_rssi *s;
  sl_object *st, *sa;
  ts_rec *rec;
  sl_pool *pool;
} lone;

static void lone_init(lone *l, int gated) {
  l->s = sl_rssi_new(1, 1464, NULL);
  l->st = sl_rssi_transport(l->s);
  l->sa = sl_rssi_application(l->s);
  l->rec = ts_rec_on(l->sa, 16);
  l->pool = sl_pool_new();
  if (gated) ts_rec_shut(l->rec);
  sl_rssi_start(l->s);
}

static void lone_fini(lone *l) {
  sl_rssi_stop(l->s);
  sl_master_clear_slaves(l->sa->master);
  sl_pool_unref(l->pool);
  sl_object_unref(&l->rec->obj);
  sl_object_unref(l->st);
  sl_object_unref(l->sa);
  sl_object_unref(sl_rssi_object(l->s));
}

/* An in-order segment whose sequence number still has a copy waiting out
** of order (left there when the delivery ring filled) replaces that copy:
** 256 numbers later the copy is not delivered in place of the new one. */
static void test_full_ring_leaves_no_copy(void) {
  lone l;
  lone_init(&l, 1);
  sl_rssi *s = l.s;
  sl_object *st = l.st;
  ts_rec *rec = l.rec;
  sl_pool *pool = l.pool;
  peer_push(st, pool, SL_RSSI_SYN, 100, 0);
  CHECK(sl_rssi_is_open(s));
  uint16_t k = 0;
  peer_push(st, pool, SL_RSSI_ACK, 101, k++);          /* held at the gate */
  CHECK(ts_rec_await(rec, 1, 1, 0, 10));
  uint8_t seq = 102;
  for (int i = 0; i < 253; i++) peer_push(st, pool, SL_RSSI_ACK, seq++, k++);
  uint8_t x = seq;                                     /* the ring holds 253 */
  peer_push(st, pool, SL_RSSI_ACK, (uint8_t)(x + 1), 1001);
  peer_push(st, pool, SL_RSSI_ACK, (uint8_t)(x + 2), 1002);
  peer_push(st, pool, SL_RSSI_ACK, x, 1000);           /* drains x + 1 only */
  ts_rec_pass(rec, 10);
  CHECK(ts_rec_await(rec, 11, 1, 10, 10));
  peer_push(st, pool, SL_RSSI_ACK, (uint8_t)(x + 2), 2002);  /* resent */
  ts_rec_open(rec);
  long want = 1 + 253 + 3;
  CHECK(ts_rec_wait(rec, want, 10));
  CHECK_EQ(last_marker(rec), 2002);
  uint32_t drops = stats(s).drop_count;
  for (int i = 0; i < 255; i++) {
    peer_push(st, pool, SL_RSSI_ACK, (uint8_t)(x + 3 + i), (uint16_t)(3000 + i));
    CHECK(ts_rec_wait(rec, ++want, 10));
  }
  peer_push(st, pool, SL_RSSI_ACK, (uint8_t)(x + 2), 4000);
  CHECK(ts_rec_wait(rec, ++want, 10));
  CHECK_EQ(last_marker(rec), 4000);
  CHECK_EQ(ts_rec_count(rec), want);
  CHECK_EQ(stats(s).drop_count, drops);
  lone_fini(&l);
}

static int three_syns(void *arg) { return pipe_seen(((pair *)arg)->cs) >= 3; }

static int client_open(void *arg) { return sl_rssi_is_open(((pair *)arg)->c); }

/* The client's SYN retries cross the server's SYN-ACK (slower than the
** try period): the server, open since the first SYN, answers each retry
** with the same SYN-ACK and stays open; the client opens on the first;
** nobody resets and data flows both ways in order. */
static void test_syn_retry_crossing(void) {
  pair p;
  pair_init(&p);
  sl_rssi_set_loc(p.c, SL_RSSI_P_TRY_PERIOD, 10);
  pipe_set(p.sc, &p.sc->hold, 1);
  sl_rssi_start(p.s);
  sl_rssi_start(p.c);
  CHECK(ts_wait_until(three_syns, &p, 10));          /* SYN and two retries */
  sl_rssi_set_loc(p.c, SL_RSSI_P_TRY_PERIOD, 60000);
  CHECK(sl_rssi_is_open(p.s));
  pipe_set(p.sc, &p.sc->hold, 0);
  CHECK(ts_wait_until(both_open, &p, 10));
  for (uint32_t i = 0; i < 40; i++) {
    CHECK_EQ(send_pattern(p.cm, i, 1 + i * 30), SL_OK);
    CHECK_EQ(send_pattern(p.sm, i, 1400 - i * 30), SL_OK);
  }
  CHECK(ts_rec_wait(p.srec, 40, 10));
  CHECK(ts_rec_wait(p.crec, 40, 10));
  int good = 1;
  for (uint32_t i = 0; i < 40; i++) {
    good &= check_pattern(p.srec, i, 1 + i * 30);
    good &= check_pattern(p.crec, i, 1400 - i * 30);
  }
  CHECK(good);
  CHECK(no_resets(&p));
  CHECK_EQ(stats(p.c).opens, 1);
  CHECK_EQ(stats(p.s).opens, 1);
  pthread_mutex_lock(&p.sc->mu);                     /* the same SYN-ACK again */
  CHECK(p.sc->nfirst >= 2);
  CHECK(bytes_equal(&p.sc->first[0], "rssi_synack_server"));
  CHECK_EQ(p.sc->first[1].n, p.sc->first[0].n);
  CHECK(memcmp(p.sc->first[1].p, p.sc->first[0].p, p.sc->first[0].n) == 0);
  pthread_mutex_unlock(&p.sc->mu);
  pair_fini(&p);
}

/* The server's SYN-ACK is lost: the client's next SYN brings it again
** and the link opens without a reset. */
static void test_synack_lost(void) {
  pair p;
  pair_init(&p);
  sl_rssi_set_loc(p.c, SL_RSSI_P_TRY_PERIOD, 10);
  pipe_set(p.sc, &p.sc->black, 1);
  sl_rssi_start(p.s);
  sl_rssi_start(p.c);
  CHECK(ts_wait_until(three_syns, &p, 10));
  pipe_set(p.sc, &p.sc->black, 0);
  CHECK(ts_wait_until(client_open, &p, 10));
  CHECK_EQ(send_pattern(p.cm, 0, 99), SL_OK);
  CHECK(ts_rec_wait(p.srec, 1, 10));
  CHECK(check_pattern(p.srec, 0, 99));
  CHECK(no_resets(&p));
  CHECK_EQ(stats(p.s).opens, 1);
  pair_fini(&p);
}

/* A server takes SYNs after its opening SYN as retries (the client's
** numbers follow the last) until another segment comes; a SYN after that
** is a restarted peer: reset. */
static void test_syn_after_traffic_resets(void) {
  lone l;
  lone_init(&l, 0);
  peer_push(l.st, l.pool, SL_RSSI_SYN, 100, 0);
  CHECK(sl_rssi_is_open(l.s));
  peer_push(l.st, l.pool, SL_RSSI_SYN, 101, 0);
  peer_push(l.st, l.pool, SL_RSSI_SYN, 102, 0);
  CHECK(sl_rssi_is_open(l.s));
  CHECK_EQ(stats(l.s).down_count, 0);
  peer_push(l.st, l.pool, SL_RSSI_ACK, 103, 77);         /* follows the last SYN */
  CHECK(ts_rec_wait(l.rec, 1, 10));
  CHECK_EQ(last_marker(l.rec), 77);
  CHECK_EQ(stats(l.s).drop_count, 0);
  peer_push(l.st, l.pool, SL_RSSI_SYN, 104, 0);
  CHECK(!sl_rssi_is_open(l.s));
  CHECK_EQ(stats(l.s).down_count, 1);
  lone_fini(&l);
}

typedef struct busy_wait {
  pair *p;
  long until;                   /* BUSY segments to have seen */
} busy_wait;

static int server_busy(void *arg) {
  pair *p = arg;
  return stats(p->s).loc_busy && stats(p->c).rem_busy;
}

static int busy_acks_since(void *arg) {
  busy_wait *w = arg;
  return pipe_busy(w->p->sc) >= w->until;
}

static int server_not_busy(void *arg) {
  pair *p = arg;
  return !stats(p->s).loc_busy && !stats(p->c).rem_busy;
}

/* BUSY flow control: the server's application takes one frame and then
** nothing. Its delivery queue fills to half the window, it sets BUSY and
** holds its ack back: the client sends no more than a window past what
** was acknowledged (its sender waits) and retransmits nothing while the
** BUSY ACKs keep coming. The application drains: BUSY clears, the sender
** resumes, and every frame arrives once, in order. */
static void test_busy_flow_control(void) {
  enum { N = 100 };
  pair p;
  pair_init(&p);
  CHECK(pair_open(&p));
  uint32_t window = sl_rssi_get_cur(p.c, SL_RSSI_P_MAX_BUFFERS);
  ts_rec_shut(p.srec);
  sender s = {.p = &p};
  pthread_t t;
  pthread_create(&t, NULL, send_many, &s);
  CHECK(ts_wait_until(server_busy, &p, 10));
  CHECK(stats(p.s).loc_busy_count >= 1);
  CHECK(stats(p.c).rem_busy_count >= 1);
  /* BUSY ACKs come one per cumulative ACK timeout (5 ms): after 10 (any
  ** segment built before BUSY is long through), 80 more are 400 ms, 20
  ** retransmission timeouts; unsuspended, the 15th transmission of the
  ** oldest segment would have reset the link */
  busy_wait w = {.p = &p, .until = pipe_busy(p.sc) + 10};
  CHECK(ts_wait_until(busy_acks_since, &w, 20));
  uint32_t retran = stats(p.c).retran_count;
  w.until += 80;
  CHECK(ts_wait_until(busy_acks_since, &w, 20));
  CHECK(stats(p.s).loc_busy);
  CHECK_EQ(stats(p.c).retran_count, retran);
  CHECK_EQ(stats(p.c).down_count, 0);
  /* one frame was taken (and acknowledged): at most a window beyond it */
  CHECK(stats(p.c).tx_frames <= 1 + window);
  CHECK(!atomic_load(&s.done));
  CHECK_EQ(ts_rec_count(p.srec), 1);
  ts_rec_open(p.srec);
  CHECK(ts_wait_until(sender_done, &s, 20));
  pthread_join(t, NULL);
  CHECK(ts_rec_wait(p.srec, N, 20));
  int good = 1;
  for (uint32_t i = 0; i < N; i++) good &= check_pattern(p.srec, i, 20);
  CHECK(good);
  CHECK_EQ(ts_rec_count(p.srec), N);
  CHECK(ts_wait_until(server_not_busy, &p, 10));
  CHECK_EQ(stats(p.c).tx_frames, N);
  CHECK_EQ(stats(p.c).tx_drops, 0);
  CHECK(no_resets(&p));
  pair_fini(&p);
}

/* A hand-made client's SYN asking for a window of `window` segments. */
static void peer_syn(sl_object *t, sl_pool *pool, uint8_t seq, uint8_t window) {
  sl_rssi_header h;
  memset(&h, 0, sizeof h);
  h.flags = SL_RSSI_SYN;
  h.seq = seq;
  sl_rssi_default_params(&h.params, 1464);
  h.params.max_buffers = window;
  uint8_t seg[SL_RSSI_SYN_HEADER];
  ts_push(t->slave, pool, seg, sl_rssi_encode(seg, &h));
}

/* With a window of 128, a retransmission 127 numbers behind is 128 ahead
** in the 8-bit numbers: it is re-acknowledged and dropped, never held to
** be delivered in place of the new segment of that number 128 segments
** later; a new segment 127 ahead is still held. */
static void test_window_128_old_duplicate(void) {
  sl_rssi *s = sl_rssi_new(1, 1464, NULL);
  sl_object *st = sl_rssi_transport(s), *sa = sl_rssi_application(s);
  ts_rec *rec = ts_rec_on(sa, 512);
  sl_pool *pool = sl_pool_new();
  sl_rssi_start(s);
  peer_syn(st, pool, 100, 128);
  CHECK(sl_rssi_is_open(s));
  CHECK_EQ(sl_rssi_get_cur(s, SL_RSSI_P_MAX_BUFFERS), 128);
  uint8_t seq = 101;
  for (uint16_t k = 0; k < 128; k++) peer_push(st, pool, SL_RSSI_ACK, seq++, k);
  CHECK(ts_rec_wait(rec, 128, 10));
  uint64_t reacks = stats(s).reacks;
  peer_push(st, pool, SL_RSSI_ACK, (uint8_t)(seq - 128), 9999);   /* 127 behind */
  CHECK_EQ(stats(s).reacks, reacks + 1);
  peer_push(st, pool, SL_RSSI_ACK, (uint8_t)(seq + 127), 2127);   /* 127 ahead */
  for (uint16_t k = 0; k < 127; k++) peer_push(st, pool, SL_RSSI_ACK, seq++, 2000 + k);
  CHECK(ts_rec_wait(rec, 256, 10));
  int good = 1;
  for (long i = 0; i < 256; i++) {
    ts_got g;
    good &= ts_rec_frame(rec, i, &g) && g.size == 2 &&
            (g.data[0] | g.data[1] << 8) == (i < 128 ? i : 2000 + i - 128);
  }
  CHECK(good);
  CHECK_EQ(ts_rec_count(rec), 256);
  sl_rssi_stop(s);
  sl_master_clear_slaves(sa->master);
  sl_pool_unref(pool);
  sl_object_unref(&rec->obj);
  sl_object_unref(st);
  sl_object_unref(sa);
  sl_object_unref(sl_rssi_object(s));
}

/* Parameters: defaults, setters, refusals, cur... before negotiation. */
static void test_parameters(void) {
  sl_rssi *r = sl_rssi_new(1, 1000, NULL);
  CHECK_EQ(sl_rssi_get_loc(r, SL_RSSI_P_MAX_SEGMENT), 1000);
  CHECK_EQ(sl_rssi_get_loc(r, SL_RSSI_P_TRY_PERIOD), 100);
  CHECK_EQ(sl_rssi_get_loc(r, SL_RSSI_P_NULL_TOUT), 1000);
  CHECK_EQ(sl_rssi_set_loc(r, SL_RSSI_P_MAX_BUFFERS, 8), SL_OK);
  CHECK_EQ(sl_rssi_set_loc(r, SL_RSSI_P_MAX_BUFFERS, 0), SL_EINVAL);
  CHECK_EQ(sl_rssi_set_loc(r, SL_RSSI_P_MAX_BUFFERS, 256), SL_EINVAL);
  CHECK_EQ(sl_rssi_get_loc(r, SL_RSSI_P_MAX_BUFFERS), 8);
  CHECK_EQ(sl_rssi_get_cur(r, SL_RSSI_P_MAX_BUFFERS), 32);
  CHECK(sl_rssi_new(0, 8, NULL) == NULL);
  sl_object_unref(sl_rssi_object(r));
}

/* n pattern frames (frame i as send_pattern makes it, 1 + i * 11 % 1400
** bytes) from m's pool, for one sl_master_send_frames call. */
static void pattern_batch(sl_object *m, sl_frame **fs, uint32_t first, int n) {
  uint8_t buf[1456];
  for (int j = 0; j < n; j++) {
    uint32_t i = first + (uint32_t)j, len = 1 + i * 11 % 1400;
    for (uint32_t k = 0; k < len; k++) buf[k] = (uint8_t)(i * 7 + k);
    fs[j] = sl_master_req_frame(m->master, len, 0);
    sl_frame_write(fs[j], buf, 0, len);
  }
}

typedef struct batch_sender {
  pair *p;
  sl_frame *fs[100];
  atomic_int done;
} batch_sender;

static void *send_batch(void *arg) {
  batch_sender *b = arg;
  sl_master_send_frames(b->p->cm->master, b->fs, 100);
  atomic_store(&b->done, 1);
  return NULL;
}

static int batch_done(void *arg) { return atomic_load(&((batch_sender *)arg)->done); }

/* Frames the application hands over in one batch (as a packetizer sends a
** frame's segments), more than the window: all delivered in order; a
** batch waiting for window space is freed by stop, and what did not go
** is counted as dropped. */
static void test_batch_send(void) {
  pair p;
  pair_init(&p);
  CHECK(pair_open(&p));
  sl_frame *fs[100];
  pattern_batch(p.cm, fs, 0, 100);
  sl_master_send_frames(p.cm->master, fs, 100);
  sl_frame_unref_many(fs, 100);
  CHECK(ts_rec_wait(p.srec, 100, 10));
  int good = 1;
  for (uint32_t i = 0; i < 100; i++) good &= check_pattern(p.srec, i, 1 + i * 11 % 1400);
  CHECK(good);
  CHECK_EQ(stats(p.c).tx_frames, 100);
  /* the peer gone: the batch fills the window and waits until stop (or
  ** until the link gives up on the peer) */
  pipe_set(p.cs, &p.cs->black, 1);
  pipe_set(p.sc, &p.sc->black, 1);
  batch_sender b = {.p = &p};
  pattern_batch(p.cm, b.fs, 100, 100);
  pthread_t t;
  pthread_create(&t, NULL, send_batch, &b);
  sl_rssi_stop(p.c);
  CHECK(ts_wait_until(batch_done, &b, 10));
  pthread_join(t, NULL);
  sl_frame_unref_many(b.fs, 100);
  sl_rssi_stats st = stats(p.c);   /* at most a window went */
  CHECK(st.tx_frames <= 100 + 32);
  CHECK_EQ(st.tx_frames + st.tx_drops, 200);
  pair_fini(&p);
}

static const struct tt_case cases[] = {
    {"parameters", test_parameters},
    {"open", test_open},
    {"data_both_ways", test_data_both_ways},
    {"retransmission_and_reorder", test_retransmission_and_reorder},
    {"duplicate_reack", test_duplicate_reack},
    {"peer_loss_and_reopen", test_peer_loss_and_reopen},
    {"bad_segments", test_bad_segments},
    {"stop_every_state", test_stop_every_state},
    {"full_ring_leaves_no_copy", test_full_ring_leaves_no_copy},
    {"syn_retry_crossing", test_syn_retry_crossing},
    {"busy_flow_control", test_busy_flow_control},
    {"synack_lost", test_synack_lost},
    {"syn_after_traffic_resets", test_syn_after_traffic_resets},
    {"batch_send", test_batch_send},
    {"window_128_old_duplicate", test_window_128_old_duplicate},
    {NULL, NULL}};

int main(void) {
  sl_log_set_level(SL_LOG_ERROR);
  return tt_main(cases);
}
