/*
** sl_prbs: Rogue's example frames byte for byte (rogue-reference 8.1), the
** fast width-32 path against the plain bit-serial one, the checker's error
** detection and resynchronisation, frames of several buffers, the rx gate,
** and the generator thread's life (enable, period, disable, destroy while
** running, destroy on its own thread).
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/prbs.h"
#include "streamlua/slave.h"
#include "streamlua/wait.h"
#include "streamlua/status.h"
#include "support.h"
#include "tt.h"

/* ---- a recorder's last frame, and what it does at its n-th frame ---- */

static ts_rec *rec_new(void) { return ts_rec_new(0); }

/* At the n-th frame: drop a reference (ours, handed over) or disable a
** generator; set as the recorder's hook and context. */
typedef struct at_n {
  long n;
  sl_object *drop;
  sl_prbs *disable;
} at_n;

static void at_n_hook(ts_rec *r, sl_frame *f) {
  (void)f;
  at_n *a = r->ctx;
  if (ts_rec_count(r) != a->n) return;
  if (a->drop != NULL) {
    sl_object *o = a->drop;
    a->drop = NULL;
    sl_object_unref(o);
  }
  if (a->disable != NULL) sl_prbs_disable(a->disable);
}

static sl_prbs *prbs_to(ts_rec *r) {
  sl_prbs *p = sl_prbs_new(NULL);
  sl_master_add_slave(sl_prbs_object(p)->master, &r->slave);
  return p;
}

static void unref_prbs(sl_prbs *p) { sl_object_unref(sl_prbs_object(p)); }

/* Sends bytes as one frame from a fresh master into slave s. */
static void send_bytes(sl_slave *s, const uint8_t *b, uint32_t n, uint8_t err) {
  sl_object *m = sl_master_new(NULL);
  sl_master_add_slave(m->master, s);
  sl_frame *f = sl_master_req_frame(m->master, n, 0);
  sl_frame_write(f, b, 0, n);
  sl_frame_set_error(f, err);
  sl_master_send_frame(m->master, f);
  sl_frame_unref(f);
  sl_object_unref(m);
}

/* Polls (20 s at most) until `want` generator threads ("PrbsTx") run;
** 1 if they did. */
static int gen_threads(int want) { return tt_threads_settle("PrbsTx", want, 20); }


/* ---- Rogue's frames ---- */

static int frame_is(ts_rec *r, const uint8_t *want, uint32_t n) {
  uint32_t got_n;
  uint8_t *got = ts_rec_take(r, &got_n);
  int ok = got != NULL && got_n == n && memcmp(got, want, n) == 0;
  free(got);
  return ok;
}

static void test_reference_frames(void) {
  static const uint8_t f0[] = {0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  static const uint8_t f1[] = {1, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0};
  static const uint8_t f2[] = {2, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 0x0b, 0, 0, 0,
                               0x17, 0, 0, 0};
  static const uint8_t f3[] = {3, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0};
  static const uint8_t f4[] = {4, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0,
                               3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0};
  static const uint8_t fx[] = {0x78, 0x56, 0x34, 0x12, 4, 0, 0, 0, 0xf1, 0xac,
                               0x68, 0x24, 0xe3, 0x59, 0xd1, 0x48, 0xc6, 0xb3,
                               0xa2, 0x91};
  static const uint8_t w64[] = {1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,
                                2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0};
  for (int fast = 1; fast >= 0; fast--) {
    ts_rec *r = rec_new();
    sl_prbs *p = prbs_to(r), *chk = sl_prbs_new(NULL);
    sl_prbs_set_fast_path(p, fast);
    sl_prbs_set_fast_path(chk, fast);
    sl_master_add_slave(sl_prbs_object(p)->master, sl_prbs_object(chk)->slave);
    CHECK_EQ(sl_prbs_gen_frame(p, 16), SL_OK);
    CHECK(frame_is(r, f0, sizeof f0));
    CHECK_EQ(sl_prbs_gen_frame(p, 16), SL_OK);
    CHECK(frame_is(r, f1, sizeof f1));
    CHECK_EQ(sl_prbs_gen_frame(p, 20), SL_OK);
    CHECK(frame_is(r, f2, sizeof f2));
    CHECK_EQ(sl_prbs_gen_frame(p, 12), SL_OK);
    CHECK(frame_is(r, f3, sizeof f3));
    sl_prbs_send_count(p, 1);
    CHECK_EQ(sl_prbs_gen_frame(p, 24), SL_OK);
    CHECK(frame_is(r, f4, sizeof f4));
    sl_prbs_send_count(p, 0);
    sl_prbs_set_tx_seq(p, 0x12345678);
    CHECK_EQ(sl_prbs_gen_frame(p, 20), SL_OK);
    CHECK(frame_is(r, fx, sizeof fx));
    sl_prbs_stats s;
    sl_prbs_get_stats(chk, &s);
    /* the count-mode frame fails the payload check, as in Rogue; the
    ** jump to 0x12345678 is a header error */
    CHECK_EQ(s.rx_count, 4);
    CHECK_EQ(s.rx_errors, 2);
    CHECK_EQ(sl_prbs_set_width(p, 64), SL_OK);
    sl_prbs_set_tx_seq(p, 1);
    CHECK_EQ(sl_prbs_gen_frame(p, 32), SL_OK);
    CHECK(frame_is(r, w64, sizeof w64));
    unref_prbs(p);
    unref_prbs(chk);
    sl_object_unref(ts_rec_object(r));
  }
}

/* A fresh checker accepts each example; a copy with its last byte changed
** is rejected. */
static void test_reference_frames_checked(void) {
  static const uint8_t f1[] = {1, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0};
  uint8_t fx[] = {0x78, 0x56, 0x34, 0x12, 4, 0, 0, 0, 0xf1, 0xac, 0x68, 0x24,
                  0xe3, 0x59, 0xd1, 0x48, 0xc6, 0xb3, 0xa2, 0x91};
  for (int fast = 1; fast >= 0; fast--) {
    sl_prbs *chk = sl_prbs_new(NULL);
    sl_prbs_set_fast_path(chk, fast);
    sl_slave *s = sl_prbs_object(chk)->slave;
    sl_prbs_stats st;
    send_bytes(s, f1, sizeof f1, 0);
    send_bytes(s, fx, sizeof fx, 0);
    sl_prbs_get_stats(chk, &st);
    CHECK_EQ(st.rx_count, 1);      /* fx jumps the sequence: header error */
    unref_prbs(chk);
    chk = sl_prbs_new(NULL);
    sl_prbs_set_fast_path(chk, fast);
    s = sl_prbs_object(chk)->slave;
    send_bytes(s, fx, sizeof fx, 0);
    fx[19] ^= 0x01;
    send_bytes(s, fx, sizeof fx, 0);
    fx[19] ^= 0x01;
    sl_prbs_get_stats(chk, &st);
    CHECK_EQ(st.rx_count, 1);
    CHECK_EQ(st.rx_errors, 1);
    CHECK_EQ(st.rx_bytes, 20);
    unref_prbs(chk);
  }
}

static void test_bad_sizes_and_widths(void) {
  sl_prbs *p = sl_prbs_new(NULL);
  CHECK_EQ(sl_prbs_gen_frame(p, 18), SL_EINVAL);
  CHECK_EQ(sl_prbs_gen_frame(p, 8), SL_EINVAL);
  CHECK_EQ(sl_prbs_enable(p, 18), SL_EINVAL);
  CHECK_EQ(sl_prbs_min_size(p), 12);
  CHECK_EQ(sl_prbs_set_width(p, 48), SL_EINVAL);
  CHECK_EQ(sl_prbs_set_width(p, 544), SL_EINVAL);
  CHECK_EQ(sl_prbs_set_width(p, 0), SL_EINVAL);
  CHECK_EQ(sl_prbs_get_width(p), 32);
  CHECK_EQ(sl_prbs_set_width(p, 512), SL_OK);
  CHECK_EQ(sl_prbs_min_size(p), 192);
  CHECK_EQ(sl_prbs_check_size(p, 128), SL_EINVAL);
  CHECK_EQ(sl_prbs_gen_frame(p, 192), SL_OK);
  sl_prbs_stats s;
  sl_prbs_get_stats(p, &s);
  CHECK_EQ(s.tx_count, 1);
  CHECK_EQ(s.tx_bytes, 192);
  unref_prbs(p);
}

/* ---- fast against plain ---- */

static uint32_t rnd_state = 12345;
static uint32_t rnd(void) {
  rnd_state ^= rnd_state << 13;
  rnd_state ^= rnd_state >> 17;
  rnd_state ^= rnd_state << 5;
  return rnd_state;
}

static void test_fast_equals_plain(void) {
  ts_rec *ra = rec_new(), *rb = rec_new();
  sl_prbs *fast = prbs_to(ra), *plain = prbs_to(rb);
  sl_prbs *cf = sl_prbs_new(NULL), *cp = sl_prbs_new(NULL);
  sl_prbs_set_fast_path(plain, 0);
  sl_prbs_set_fast_path(cp, 0);
  /* each checker sees the other path's frames */
  sl_master_add_slave(sl_prbs_object(fast)->master, sl_prbs_object(cp)->slave);
  sl_master_add_slave(sl_prbs_object(plain)->master, sl_prbs_object(cf)->slave);
  int same = 1, frames = 0;
  for (int round = 0; round < 300; round++) {
    if (round % 50 == 0) {         /* other taps now and then */
      uint8_t taps[5];
      size_t n = 1 + rnd() % 5;
      for (size_t i = 0; i < n; i++) taps[i] = (uint8_t)(rnd() % 32);
      if (round == 0) n = 0;       /* no taps at all is valid too */
      for (sl_prbs **q = (sl_prbs *[]){fast, plain, cf, cp, NULL}; *q; q++)
        sl_prbs_set_taps(*q, taps, n);
    }
    uint32_t size = round < 200 ? 12 + 4 * (uint32_t)round : 4 * (3 + rnd() % 70000);
    uint32_t seq = rnd();
    sl_prbs_set_tx_seq(fast, seq);
    sl_prbs_set_tx_seq(plain, seq);
    sl_prbs_gen_frame(fast, size);
    sl_prbs_gen_frame(plain, size);
    uint32_t na, nb;
    uint8_t *a = ts_rec_take(ra, &na), *b = ts_rec_take(rb, &nb);
    same &= a != NULL && b != NULL && na == size && nb == size && memcmp(a, b, size) == 0;
    free(a);
    free(b);
    frames++;
  }
  CHECK(same);
  sl_prbs_stats s1, s2;
  sl_prbs_get_stats(cf, &s1);
  sl_prbs_get_stats(cp, &s2);
  /* random seeds break the sequence: count header errors away */
  CHECK_EQ(s1.rx_count + s1.rx_errors, frames);
  CHECK_EQ(s2.rx_count + s2.rx_errors, frames);
  CHECK_EQ(s1.rx_count, s2.rx_count);
  CHECK(s1.rx_count > 0);
  unref_prbs(fast);
  unref_prbs(plain);
  unref_prbs(cf);
  unref_prbs(cp);
  sl_object_unref(&ra->obj);
  sl_object_unref(&rb->obj);
}

/* Both checkers reject one changed byte anywhere and accept the next frame. */
static void test_corruption_detected(void) {
  for (int fast = 1; fast >= 0; fast--) {
    ts_rec *r = rec_new();
    sl_prbs *gen = prbs_to(r), *chk = sl_prbs_new(NULL);
    sl_prbs_set_fast_path(chk, fast);
    sl_slave *s = sl_prbs_object(chk)->slave;
    int caught = 0, passed = 0;
    for (int i = 0; i < 60; i++) {
      uint32_t size = 4 * (3 + rnd() % 3000);
      sl_prbs_gen_frame(gen, size);
      uint32_t n;
      uint8_t *b = ts_rec_take(r, &n);
      uint32_t at = rnd() % n;
      b[at] ^= (uint8_t)(1u << (rnd() % 8));
      sl_prbs_stats before, after;
      sl_prbs_get_stats(chk, &before);
      send_bytes(s, b, n, 0);
      sl_prbs_get_stats(chk, &after);
      caught += after.rx_errors == before.rx_errors + 1;
      free(b);
      sl_prbs_gen_frame(gen, size);      /* the next good frame passes */
      b = ts_rec_take(r, &n);
      send_bytes(s, b, n, 0);
      free(b);
      sl_prbs_get_stats(chk, &before);
      passed += before.rx_count == after.rx_count + 1;
    }
    CHECK_EQ(caught, 60);
    CHECK_EQ(passed, 60);
    unref_prbs(gen);
    unref_prbs(chk);
    sl_object_unref(ts_rec_object(r));
  }
}

static void test_header_checks(void) {
  ts_rec *r = rec_new();
  sl_prbs *gen = prbs_to(r), *chk = sl_prbs_new(NULL);
  sl_slave *s = sl_prbs_object(chk)->slave;
  uint8_t *fr[4];
  uint32_t n;
  for (int i = 0; i < 4; i++) {
    sl_prbs_gen_frame(gen, 16);
    fr[i] = ts_rec_take(r, &n);
  }
  sl_prbs_stats st;
  send_bytes(s, fr[0], 16, 0);
  send_bytes(s, fr[1], 16, 0);
  send_bytes(s, fr[2], 16, 0);
  send_bytes(s, fr[1], 16, 0);     /* repeated seq 1: bad header */
  sl_prbs_get_stats(chk, &st);
  CHECK_EQ(st.rx_count, 3);
  CHECK_EQ(st.rx_errors, 1);
  send_bytes(s, fr[2], 16, 0);     /* resynchronised on seq 1 + 1 */
  send_bytes(s, fr[0], 16, 0);     /* seq 0 never flags */
  send_bytes(s, fr[3], 16, 0);     /* expected 1, got 3: bad header */
  sl_prbs_get_stats(chk, &st);
  CHECK_EQ(st.rx_count, 5);
  CHECK_EQ(st.rx_errors, 2);
  fr[2][4] = 4;                    /* size word disagrees with the length */
  send_bytes(s, fr[2], 16, 0);
  send_bytes(s, fr[3], 14, 0);     /* size violation */
  send_bytes(s, fr[3], 16, 1);     /* error field set */
  sl_prbs_get_stats(chk, &st);
  CHECK_EQ(st.rx_count, 5);
  CHECK_EQ(st.rx_errors, 5);
  sl_counter c[SL_COUNTERS_MAX];
  size_t nc = sl_object_counters(sl_prbs_object(chk), c, SL_COUNTERS_MAX);
  CHECK_EQ(nc, 6);
  CHECK_STR(c[2].name, "rxFrames");
  CHECK_EQ(c[2].value, 5);
  CHECK_STR(c[4].name, "errors");
  CHECK_EQ(c[4].value, 5);
  sl_prbs_reset_count(chk);
  sl_prbs_get_stats(chk, &st);
  CHECK_EQ(st.rx_count + st.rx_errors + st.rx_bytes, 0);
  for (int i = 0; i < 4; i++) free(fr[i]);
  unref_prbs(gen);
  unref_prbs(chk);
  sl_object_unref(ts_rec_object(r));
}

/* Small fixed-size buffers downstream: words straddle buffer boundaries. */
static void test_multi_buffer(void) {
  for (int fast = 1; fast >= 0; fast--) {
    sl_prbs *chk = sl_prbs_new(NULL), *gen = sl_prbs_new(NULL), *ref = NULL;
    ts_rec *r = rec_new();
    ref = prbs_to(r);
    sl_prbs_set_fast_path(chk, fast);
    sl_prbs_set_fast_path(gen, fast);
    sl_pool_set_fixed_size(sl_prbs_object(chk)->slave->pool, 999);
    sl_master_add_slave(sl_prbs_object(gen)->master, sl_prbs_object(chk)->slave);
    for (uint32_t size = 12; size < 40000; size = size * 3 + 4)
      CHECK_EQ(sl_prbs_gen_frame(gen, size), SL_OK);
    CHECK_EQ(sl_prbs_gen_frame(gen, 12000), SL_OK);
    sl_prbs_stats st;
    sl_prbs_get_stats(chk, &st);
    CHECK_EQ(st.rx_errors, 0);
    CHECK_EQ(st.rx_count, st.rx_bytes > 0 ? 9 : 0);
    /* the same frame from a one-buffer generator, corrupted deep inside */
    sl_prbs_set_tx_seq(ref, sl_prbs_get_tx_seq(gen));
    sl_prbs_gen_frame(ref, 12000);
    uint32_t n;
    uint8_t *b = ts_rec_take(r, &n);
    b[7777] ^= 0x40;
    send_bytes(sl_prbs_object(chk)->slave, b, n, 0);
    free(b);
    sl_prbs_get_stats(chk, &st);
    CHECK_EQ(st.rx_errors, 1);
    unref_prbs(gen);
    unref_prbs(chk);
    unref_prbs(ref);
    sl_object_unref(ts_rec_object(r));
  }
}

/* genPayload(false) writes the header only: a recycled block keeps its bytes. */
static void test_gen_payload_off(void) {
  ts_rec *r = rec_new();
  sl_pool_set_fixed_size(r->slave.pool, 64);
  sl_pool_set_pool_size(r->slave.pool, 1);
  sl_prbs *p = prbs_to(r);
  sl_prbs_send_count(p, 1);
  sl_prbs_gen_frame(p, 24);
  uint32_t n;
  free(ts_rec_take(r, &n));
  sl_prbs_send_count(p, 0);
  sl_prbs_gen_payload(p, 0);
  sl_prbs_gen_frame(p, 24);
  static const uint8_t want[] = {1, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0,
                                 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0};
  CHECK(frame_is(r, want, sizeof want));
  unref_prbs(p);
  sl_object_unref(ts_rec_object(r));
}

/* ---- rx gate ---- */

typedef struct sender {
  sl_slave *s;
  uint8_t frame[16];
  atomic_int done;
} sender;

static void *send_main(void *arg) {
  sender *x = arg;
  send_bytes(x->s, x->frame, 16, 0);
  atomic_store(&x->done, 1);
  return NULL;
}

static void test_rx_gate(void) {
  sl_prbs *chk = sl_prbs_new(NULL);
  sl_slave *s = sl_prbs_object(chk)->slave;
  sender x = {s, {1, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0}, 0};
  sl_prbs_set_rx_enable(chk, 0);
  CHECK_EQ(sl_prbs_get_rx_enable(chk), 0);
  pthread_t t;
  pthread_create(&t, NULL, send_main, &x);
  sleep_ms(50);
  CHECK_EQ(atomic_load(&x.done), 0);     /* blocked, as in Rogue */
  sl_prbs_set_rx_enable(chk, 1);
  pthread_join(t, NULL);
  sl_prbs_stats st;
  sl_prbs_get_stats(chk, &st);
  CHECK_EQ(st.rx_count, 1);
  /* the nowait thread is never blocked: its frame is dropped */
  sl_prbs_set_rx_enable(chk, 0);
  sl_prbs_set_nowait_thread(chk, pthread_self());
  sl_log_set_emit(0);
  send_bytes(s, x.frame, 16, 0);
  sl_log_set_emit(1);
  sl_prbs_get_stats(chk, &st);
  CHECK_EQ(st.rx_drops, 1);
  /* stop lets a blocked sender go */
  atomic_store(&x.done, 0);
  pthread_create(&t, NULL, send_main, &x);
  sleep_ms(50);
  CHECK_EQ(atomic_load(&x.done), 0);
  sl_object_stop(sl_prbs_object(chk));
  pthread_join(t, NULL);
  sl_prbs_get_stats(chk, &st);
  CHECK_EQ(st.rx_drops, 2);
  CHECK_EQ(st.rx_count, 1);
  unref_prbs(chk);
}

/* ---- the generator thread ---- */

static int wait_rx(sl_prbs *chk, uint64_t n, long ms) {
  sl_prbs_stats st;
  for (long t = 0; t < ms; t += 5) {
    sl_prbs_get_stats(chk, &st);
    if (st.rx_count >= n) return 1;
    sleep_ms(5);
  }
  return 0;
}

static int wait_tx(sl_prbs *gen, uint64_t n, long ms) {
  sl_prbs_stats st;
  for (long t = 0; t < ms; t += 5) {
    sl_prbs_get_stats(gen, &st);
    if (st.tx_count >= n) return 1;
    sleep_ms(5);
  }
  return 0;
}

/* Waits until the generator has numbered `n` frames (a frame is numbered
** before it is sent). */
static int wait_seq(sl_prbs *gen, uint32_t n, long ms) {
  for (long t = 0; t < ms; t += 5) {
    if (sl_prbs_get_tx_seq(gen) >= n) return 1;
    sleep_ms(5);
  }
  return 0;
}

static void test_generator_thread(void) {
  CHECK(gen_threads(0));
  sl_prbs *gen = sl_prbs_new(NULL), *chk = sl_prbs_new(NULL);
  sl_master_add_slave(sl_prbs_object(gen)->master, sl_prbs_object(chk)->slave);
  CHECK_EQ(sl_prbs_enable(gen, 4096), SL_OK);
  CHECK_EQ(sl_prbs_tx_enabled(gen), 1);
  CHECK_EQ(sl_prbs_enable(gen, 1024), SL_OK);  /* running: only the size */
  CHECK(gen_threads(1));
  CHECK(wait_rx(chk, 200, 20000));
  sl_prbs_disable(gen);
  CHECK_EQ(sl_prbs_tx_enabled(gen), 0);
  CHECK(gen_threads(0));
  sl_prbs_stats tx, rx;
  sl_prbs_get_stats(gen, &tx);
  sl_prbs_get_stats(chk, &rx);
  CHECK_EQ(tx.tx_count, rx.rx_count);
  CHECK_EQ(tx.tx_bytes, rx.rx_bytes);
  CHECK_EQ(rx.rx_errors, 0);
  /* rate limit: 50 ms between frames, so never more than one frame per
  ** 50 ms of the time it ran, however late it ran */
  sl_prbs_reset_count(gen);
  sl_prbs_set_tx_period(gen, 50000);
  CHECK_EQ(sl_prbs_get_tx_period(gen), 50000);
  double t0 = now_s();
  sl_prbs_enable(gen, 64);
  CHECK(wait_tx(gen, 4, 20000));
  sl_prbs_disable_nowait(gen);
  CHECK_EQ(sl_prbs_tx_wait(gen, -1), SL_OK);
  double ran = now_s() - t0;
  sl_prbs_get_stats(gen, &tx);
  CHECK(tx.tx_count >= 4 && (double)tx.tx_count <= ran / 0.05 + 1);
  CHECK(gen_threads(0));
  /* dropped while running: the last unref stops and joins it */
  sl_prbs_set_tx_period(gen, 0);
  sl_prbs_enable(gen, 256);
  CHECK(wait_tx(gen, tx.tx_count + 1, 20000));
  unref_prbs(gen);
  CHECK(gen_threads(0));
  sl_prbs_get_stats(chk, &rx);
  CHECK_EQ(rx.rx_errors, 0);
  unref_prbs(chk);
}

/* A rate appears once more than a second has passed. */
static void test_rates(void) {
  sl_prbs *gen = sl_prbs_new(NULL), *chk = sl_prbs_new(NULL);
  sl_master_add_slave(sl_prbs_object(gen)->master, sl_prbs_object(chk)->slave);
  sl_prbs_set_tx_period(gen, 1000);
  sl_prbs_enable(gen, 1000);
  sl_prbs_stats tx, rx;
  double end = now_s() + 30;
  do {
    sleep_ms(10);
    sl_prbs_get_stats(gen, &tx);
    sl_prbs_get_stats(chk, &rx);
  } while ((tx.tx_rate <= 0 || rx.rx_rate <= 0) && now_s() < end);
  sl_prbs_disable(gen);
  /* at most one frame a millisecond; bytes/s is frames/s times 1000 */
  CHECK(tx.tx_rate > 0 && tx.tx_rate < 1100);
  CHECK(tx.tx_bw > tx.tx_rate * 999.0 && tx.tx_bw < tx.tx_rate * 1001.0);
  CHECK(rx.rx_rate > 0 && rx.rx_bw > rx.rx_rate * 999.0 && rx.rx_bw < rx.rx_rate * 1001.0);
  unref_prbs(gen);
  unref_prbs(chk);
}

/* The last reference goes on the generator thread itself, or the generator
** disables itself from downstream: neither may deadlock. */
static void test_own_thread(void) {
  CHECK(gen_threads(0));
  ts_rec *r = rec_new();
  sl_prbs *gen = prbs_to(r);
  at_n a = {.n = 50, .drop = sl_prbs_object(gen)};   /* our reference goes to the hook */
  r->hook = at_n_hook;
  r->ctx = &a;
  sl_prbs_enable(gen, 64);
  CHECK(gen_threads(0));
  CHECK(ts_rec_count(r) >= 50);
  sl_object_unref(ts_rec_object(r));

  r = rec_new();
  gen = prbs_to(r);
  a = (at_n){.n = 10, .disable = gen};
  r->hook = at_n_hook;
  r->ctx = &a;
  sl_prbs_enable(gen, 64);
  for (int i = 0; i < 4000 && sl_prbs_tx_enabled(gen); i++) sleep_ms(5);
  CHECK_EQ(sl_prbs_tx_wait(gen, 5000000), SL_OK);
  CHECK_EQ(sl_prbs_tx_enabled(gen), 0);
  CHECK(gen_threads(0));
  CHECK_EQ(ts_rec_count(r), 10);
  a.disable = NULL;
  CHECK_EQ(sl_prbs_enable(gen, 64), SL_OK);    /* starts again */
  for (int i = 0; i < 4000 && ts_rec_count(r) <= 10; i++) sleep_ms(5);
  sl_prbs_disable(gen);
  CHECK(ts_rec_count(r) > 10);
  unref_prbs(gen);
  sl_object_unref(ts_rec_object(r));
}

/* A generator blocked in a disabled checker still stops. */
static void test_disable_releases_checker(void) {
  sl_prbs *gen = sl_prbs_new(NULL), *chk = sl_prbs_new(NULL);
  sl_master_add_slave(sl_prbs_object(gen)->master, sl_prbs_object(chk)->slave);
  sl_prbs_set_rx_enable(chk, 0);
  sl_prbs_enable(gen, 64);
  CHECK(wait_seq(gen, 1, 20000));            /* its first frame is on its way */
  sl_prbs_disable(gen);
  sl_prbs_stats st;
  sl_prbs_get_stats(chk, &st);
  CHECK_EQ(st.rx_count, 0);
  CHECK_EQ(st.rx_drops, 1);
  sl_prbs_enable(gen, 64);
  CHECK(wait_seq(gen, 2, 20000));
  unref_prbs(gen);                 /* destroy releases it too */
  unref_prbs(chk);
}

/* Several threads switch one generator on and off at random: no deadlock,
** no race (TSan), no error, no thread left behind. */
typedef struct churn {
  sl_prbs *gen;
  uint32_t seed;
  atomic_int *stop;
} churn;

static void *churn_main(void *arg) {
  churn *c = arg;
  while (!atomic_load(c->stop)) {
    c->seed = c->seed * 1103515245u + 12345u;
    switch ((c->seed >> 16) % 5) {
      case 0: sl_prbs_enable(c->gen, 64 + 4 * ((c->seed >> 8) % 64)); break;
      case 1: sl_prbs_disable(c->gen); break;
      case 2: sl_prbs_disable_nowait(c->gen); break;
      case 3: sl_prbs_tx_wait(c->gen, 1000); break;
      default: sl_prbs_set_tx_period(c->gen, (c->seed >> 4) % 3 == 0 ? 200 : 0); break;
    }
  }
  return NULL;
}

static void test_enable_disable_churn(void) {
  CHECK(gen_threads(0));
  sl_prbs *gen = sl_prbs_new(NULL), *chk = sl_prbs_new(NULL);
  sl_master_add_slave(sl_prbs_object(gen)->master, sl_prbs_object(chk)->slave);
  atomic_int stop = 0;
  churn c[3];
  pthread_t t[3];
  for (int i = 0; i < 3; i++) {
    c[i] = (churn){gen, 77u * (uint32_t)i + 1u, &stop};
    pthread_create(&t[i], NULL, churn_main, &c[i]);
  }
  /* half a second of churn (on a loaded machine the churn may switch the
  ** generator off before it sends anything: that is allowed) */
  sleep_ms(500);
  atomic_store(&stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  /* the generator still works after the churn */
  sl_prbs_stats tx, rx;
  sl_prbs_get_stats(gen, &tx);
  uint32_t seq = sl_prbs_get_tx_seq(gen);
  sl_prbs_set_tx_period(gen, 0);
  CHECK_EQ(sl_prbs_enable(gen, 64), SL_OK);
  CHECK(wait_seq(gen, seq + 2, 20000));
  sl_prbs_disable(gen);
  CHECK(gen_threads(0));
  sl_prbs_get_stats(gen, &tx);
  sl_prbs_get_stats(chk, &rx);
  CHECK(tx.tx_count >= 2);
  CHECK_EQ(rx.rx_count, tx.tx_count);
  CHECK_EQ(rx.rx_errors, 0);
  unref_prbs(gen);
  unref_prbs(chk);
}

/* disable lets the frame being sent finish: a slave holding the first
** frame in a wait that gives up with the generator's waits returns it
** when the generator has been asked to end, not cancelled. */
typedef struct hold {
  sl_prbs *gen;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int held, cancelled;
} hold;

static void hold_first(ts_rec *r, sl_frame *f) {
  (void)f;
  hold *h = r->ctx;
  pthread_mutex_lock(&h->mu);
  if (!h->held) {
    h->held = 1;
    struct timespec until;
    sl_deadline_after(&until, 20000000);
    int rc = SL_OK;
    while (sl_prbs_tx_enabled(h->gen) && rc == SL_OK)
      rc = sl_wait_cond(&h->cv, &h->mu, &until);
    h->cancelled = rc == SL_ECANCELED;
  }
  pthread_mutex_unlock(&h->mu);
}

static void *disable_main(void *arg) {
  sl_prbs_disable(arg);
  return NULL;
}

static int hold_held(hold *h) {
  pthread_mutex_lock(&h->mu);
  int held = h->held;
  pthread_mutex_unlock(&h->mu);
  return held;
}

static void test_disable_finishes_frame(void) {
  sl_prbs *gen = sl_prbs_new(NULL);
  hold h = {.gen = gen};
  pthread_mutex_init(&h.mu, NULL);
  CHECK_EQ(sl_cond_init(&h.cv), 0);
  ts_rec *r = ts_rec_new(4);
  r->hook = hold_first;
  r->ctx = &h;
  sl_master_add_slave(sl_prbs_object(gen)->master, &r->slave);
  CHECK_EQ(sl_prbs_enable(gen, 64), SL_OK);
  double t0 = now_s();
  while (!hold_held(&h) && now_s() - t0 < 20) sleep_ms(1);
  CHECK(hold_held(&h));
  pthread_t t;
  pthread_create(&t, NULL, disable_main, gen);
  pthread_join(t, NULL);
  CHECK(gen_threads(0));
  CHECK_EQ(h.cancelled, 0);
  CHECK(ts_rec_count(r) >= 1);
  unref_prbs(gen);
  sl_object_unref(ts_rec_object(r));
  pthread_cond_destroy(&h.cv);
  pthread_mutex_destroy(&h.mu);
}

static const struct tt_case cases[] = {
    {"reference frames, fast and plain", test_reference_frames},
    {"disable lets the frame being sent finish", test_disable_finishes_frame},
    {"reference frames accepted, a changed byte rejected", test_reference_frames_checked},
    {"bad sizes and widths", test_bad_sizes_and_widths},
    {"fast path equals plain path", test_fast_equals_plain},
    {"one changed byte is caught", test_corruption_detected},
    {"header checks and resynchronisation", test_header_checks},
    {"frames of several buffers", test_multi_buffer},
    {"genPayload off writes the header only", test_gen_payload_off},
    {"rx disabled blocks; enable, nowait and stop release", test_rx_gate},
    {"generator thread, period, drop while running", test_generator_thread},
    {"rates after a second", test_rates},
    {"destroy and disable on the generator thread", test_own_thread},
    {"disable releases a generator blocked in a checker", test_disable_releases_checker},
    {"enable and disable from several threads", test_enable_disable_churn},
    {NULL, NULL}};

int main(void) {
  sl_log_set_level(SL_LOG_CRITICAL);   /* expected warnings stay quiet */
  return tt_main(cases);
}
