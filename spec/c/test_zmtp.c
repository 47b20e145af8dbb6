/*
** sl_zmtp on byte vectors: the encoders byte for byte, handshakes in both
** roles, Rogue's 4-part messages, frame-size boundaries, PING/PONG, what
** libzmq ignores, every refusal listed in spec/rogue-reference.md 4.5, the
** size limits, and random inputs fed in random chunks. The vectors are
** written out by hand from the reference, not produced by the encoder.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/zmtp.h"
#include "tt.h"

/* ---- byte vectors ------------------------------------------------------ */

/* libzmq 4.3.4's greeting (reference 4.5), the same for PUSH and PULL. */
static const uint8_t zmq_greeting[64] = {
  0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x7F,
  0x03, 0x01,
  0x4E, 0x55, 0x4C, 0x4C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

static const uint8_t ready_push[28] = {
  0x04, 0x1A, 0x05, 0x52, 0x45, 0x41, 0x44, 0x59,
  0x0B, 0x53, 0x6F, 0x63, 0x6B, 0x65, 0x74, 0x2D, 0x54, 0x79, 0x70, 0x65,
  0x00, 0x00, 0x00, 0x04, 0x50, 0x55, 0x53, 0x48};
static const uint8_t ready_pull[28] = {
  0x04, 0x1A, 0x05, 0x52, 0x45, 0x41, 0x44, 0x59,
  0x0B, 0x53, 0x6F, 0x63, 0x6B, 0x65, 0x74, 0x2D, 0x54, 0x79, 0x70, 0x65,
  0x00, 0x00, 0x00, 0x04, 0x50, 0x55, 0x4C, 0x4C};

/* Rogue frame flags 0x0102, channel 3, error 0, payload "ABCD" (4.2). */
static const uint8_t rogue_abcd[] = {
  0x01, 0x02, 0x02, 0x01, 0x01, 0x01, 0x03, 0x01, 0x01, 0x00,
  0x00, 0x04, 0x41, 0x42, 0x43, 0x44};

typedef struct bytes {
  uint8_t *p;
  size_t n, cap;
} bytes;

static void add(bytes *b, const void *src, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
  }
  if (n > 0) memcpy(b->p + b->n, src, n);
  b->n += n;
}

static void add_fill(bytes *b, uint8_t v, size_t n) {
  for (size_t i = 0; i < n; i++) add(b, &v, 1);
}

/* A string literal with its length (embedded zero bytes included). */
#define ADD(b, lit) add((b), (lit), sizeof(lit) - 1)

/* Our greeting + READY as a PULL, from a libzmq PUSH: its bytes. */
static void add_push_handshake(bytes *b) {
  add(b, zmq_greeting, 64);
  add(b, ready_push, 28);
}

/* ---- running a session and recording what comes out ------------------ */

static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

typedef struct evrec {
  sl_zmtp_kind kind;
  char text[200];
  uint8_t minor, as_server;
  uint16_t ttl;
  int pong_queued;
  size_t nparts;
  size_t *sizes;
  uint8_t *data;       /* the parts one after the other */
  uint64_t size;
  size_t at;           /* input bytes used when the event came out */
} evrec;

typedef struct trace {
  evrec *ev;
  size_t n, cap;
  int stuck;           /* feed made no progress, or broke its contract */
} trace;

static void record(trace *t, const sl_zmtp_event *e, size_t at) {
  if (t->n == t->cap) {
    t->cap = t->cap * 2 + 16;
    t->ev = realloc(t->ev, t->cap * sizeof *t->ev);
  }
  evrec *r = &t->ev[t->n++];
  memset(r, 0, sizeof *r);
  r->kind = e->kind;
  snprintf(r->text, sizeof r->text, "%s", e->text);
  r->minor = e->minor;
  r->as_server = e->as_server;
  r->ttl = e->ttl;
  r->pong_queued = e->pong_queued;
  r->at = at;
  if (e->kind != SL_ZMTP_MESSAGE) return;
  r->nparts = e->nparts;
  r->size = e->size;
  r->sizes = malloc(e->nparts * sizeof *r->sizes);
  r->data = malloc(e->size + 1);
  size_t off = 0;
  for (size_t i = 0; i < e->nparts; i++) {
    r->sizes[i] = e->parts[i].size;
    if (e->parts[i].data == NULL) t->stuck = 1;
    else memcpy(r->data + off, e->parts[i].data, e->parts[i].size);
    off += e->parts[i].size;
  }
  if (off != e->size) t->stuck = 1;
}

static void trace_free(trace *t) {
  for (size_t i = 0; i < t->n; i++) {
    free(t->ev[i].sizes);
    free(t->ev[i].data);
  }
  free(t->ev);
  memset(t, 0, sizeof *t);
}

enum { WHOLE, BYTEWISE, RANDOM };
#define COPIED 8   /* with a mode: each chunk fed from a copy scribbled over
                      once its events are popped (what a borrowing caller
                      does with its read buffer) */

/*
** Feeds in whole, one byte at a time or in random chunks, popping every
** event. Stops at FATAL or PEER_ERROR. A feed that neither uses all its
** bytes nor returns an event marks the trace stuck (it would hang a
** caller), and so does one that runs too many rounds.
*/
static void drive(sl_zmtp *z, const uint8_t *in, size_t n, int mode,
                  uint64_t *rng, trace *t) {
  static const size_t spans[] = {2, 7, 64, 1000};
  int copied = mode & COPIED;
  mode &= ~COPIED;
  uint8_t *copy = copied ? malloc(n + 1) : NULL;
  size_t pos = 0;
  for (size_t round = 0; round < 4 * n + 100; round++) {
    size_t left = n - pos, chunk = left;
    if (mode == BYTEWISE && left > 0) chunk = 1;
    if (mode == RANDOM && left > 0) {
      chunk = 1 + rnd(rng) % spans[rnd(rng) % 4];
      if (chunk > left) chunk = left;
    }
    size_t used = (size_t)-1;
    const uint8_t *at = in + pos;
    if (copied && chunk > 0) at = memcpy(copy, in + pos, chunk);
    sl_zmtp_kind k = sl_zmtp_feed(z, at, chunk, &used);
    sl_zmtp_event ev;
    int popped = k != SL_ZMTP_NONE && sl_zmtp_pop(z, &ev);
    if (popped && ev.kind == k) record(t, &ev, pos + used);
    if (copied) memset(copy, 0xEE, n + 1);
    if (used > chunk) break;
    pos += used;
    if (k == SL_ZMTP_NONE) {
      if (used != chunk) break;
      if (pos == n) goto out;
      continue;
    }
    if (!popped || ev.kind != k) break;
    if (k == SL_ZMTP_FATAL || k == SL_ZMTP_PEER_ERROR) goto out;
  }
  t->stuck = 1;
out:
  free(copy);
}

static int same_event(const evrec *a, const evrec *b) {
  return a->kind == b->kind && strcmp(a->text, b->text) == 0 &&
         a->minor == b->minor && a->as_server == b->as_server &&
         a->ttl == b->ttl && a->pong_queued == b->pong_queued &&
         a->at == b->at && a->nparts == b->nparts && a->size == b->size &&
         (a->nparts == 0 ||
          memcmp(a->sizes, b->sizes, a->nparts * sizeof *a->sizes) == 0) &&
         (a->size == 0 || memcmp(a->data, b->data, a->size) == 0);
}

static int same_trace(const trace *a, const trace *b) {
  if (a->n != b->n || a->stuck || b->stuck) return 0;
  for (size_t i = 0; i < a->n; i++)
    if (!same_event(&a->ev[i], &b->ev[i])) return 0;
  return 1;
}

static size_t count_kind(const trace *t, sl_zmtp_kind kind) {
  size_t c = 0;
  for (size_t i = 0; i < t->n; i++) c += t->ev[i].kind == kind;
  return c;
}

static sl_zmtp *mk(sl_zmtp_role role, uint64_t max_msg, uint32_t max_parts) {
  sl_zmtp_config cfg = {role, max_msg, max_parts};
  return sl_zmtp_new(&cfg);
}

/* A session that borrows parts up to `borrow` bytes (0: none). */
static sl_zmtp *mk_borrowing(const sl_zmtp_config *cfg, size_t borrow) {
  sl_zmtp *z = sl_zmtp_new(cfg);
  if (z != NULL) sl_zmtp_set_borrow(z, borrow);
  return z;
}

/* Borrow limits the tests run with: parts up to a byte, a short frame's
** size, past it (long frames), and everything. */
static const size_t borrows[] = {1, 255, 300, (size_t)-1};

/* One whole-input run as a PULL with default limits. */
static void run_pull(const bytes *in, trace *t) {
  sl_zmtp *z = mk(SL_ZMTP_PULL, 0, 0);
  drive(z, in->p, in->n, WHOLE, NULL, t);
  sl_zmtp_free(z);
}

/* The nth message of a trace, or NULL. */
static const evrec *nth_message(const trace *t, size_t nth) {
  for (size_t i = 0; i < t->n; i++)
    if (t->ev[i].kind == SL_ZMTP_MESSAGE && nth-- == 0) return &t->ev[i];
  return NULL;
}

/*
** The session must die with kind (FATAL or PEER_ERROR), text containing
** want, after exactly msgs messages, identically in every chunking, with
** borrowing off and on, and keep saying so without taking more bytes.
*/
static void expect_death(const sl_zmtp_config *cfg, const bytes *in,
                         sl_zmtp_kind kind, const char *want, size_t msgs) {
  uint64_t rng = 0x9E3779B97F4A7C15u;
  trace first = {0};
  for (int round = 0; round < 16; round++) {
    trace t = {0};
    sl_zmtp *z = mk_borrowing(cfg, round < 8 ? 0 : borrows[round % 4]);
    int mode = round % 8 < 2 ? round % 8 : RANDOM;
    drive(z, in->p, in->n, round < 8 ? mode : mode | COPIED, &rng, &t);
    CHECK(t.n > 0 && !t.stuck);
    if (t.n == 0) goto next;
    CHECK_EQ(t.ev[t.n - 1].kind, kind);
    if (strstr(t.ev[t.n - 1].text, want) == NULL)
      CHECK_STR(t.ev[t.n - 1].text, want);
    CHECK_EQ(count_kind(&t, SL_ZMTP_MESSAGE), msgs);
    CHECK_EQ(sl_zmtp_get_stage(z), SL_ZMTP_STAGE_DEAD);
    CHECK_EQ(sl_zmtp_buffered(z), 0);
    size_t used = 99;
    CHECK_EQ(sl_zmtp_feed(z, in->p, in->n, &used), kind);
    CHECK_EQ(used, 0);
    sl_zmtp_event ev;
    CHECK(sl_zmtp_pop(z, &ev) && ev.kind == kind);
    if (round == 0) first = t;
    else CHECK(same_trace(&first, &t));
  next:
    sl_zmtp_free(z);
    if (round > 0) trace_free(&t);
  }
  trace_free(&first);
}

static void expect_pull_death(const bytes *in, const char *want) {
  sl_zmtp_config cfg = {SL_ZMTP_PULL, 0, 0};
  expect_death(&cfg, in, SL_ZMTP_FATAL, want, 0);
}

/* ---- encoders ---------------------------------------------------------- */

static void test_encoders(void) {
  uint8_t g[64], r[28], h[9];
  CHECK_EQ(sl_zmtp_greeting(g), 64);
  CHECK(memcmp(g, zmq_greeting, 64) == 0);
  CHECK_EQ(sl_zmtp_ready(SL_ZMTP_PUSH, r), 28);
  CHECK(memcmp(r, ready_push, 28) == 0);
  CHECK_EQ(sl_zmtp_ready(SL_ZMTP_PULL, r), 28);
  CHECK(memcmp(r, ready_pull, 28) == 0);
  CHECK_EQ(sl_zmtp_ready((sl_zmtp_role)7, r), 0);
  CHECK_EQ(sl_zmtp_frame_header(h, 0, 0), 2);
  CHECK(h[0] == 0x00 && h[1] == 0x00);
  CHECK_EQ(sl_zmtp_frame_header(h, 255, 1), 2);
  CHECK(h[0] == 0x01 && h[1] == 0xFF);
  CHECK_EQ(sl_zmtp_frame_header(h, 256, 0), 9);
  CHECK(memcmp(h, "\x02\x00\x00\x00\x00\x00\x00\x01\x00", 9) == 0);
  CHECK_EQ(sl_zmtp_frame_header(h, 300, 1), 9);
  CHECK(memcmp(h, "\x03\x00\x00\x00\x00\x00\x00\x01\x2C", 9) == 0);
  CHECK_EQ(sl_zmtp_frame_header(h, 0x0123456789ABCDEFull, 0), 9);
  CHECK(memcmp(h, "\x02\x01\x23\x45\x67\x89\xAB\xCD\xEF", 9) == 0);
  uint8_t p[25];
  CHECK_EQ(sl_zmtp_ping(p, 0, (const uint8_t *)"hi", 2), 11);
  CHECK(memcmp(p, "\x04\x09\x04PING\x00\x00hi", 11) == 0);
  CHECK_EQ(sl_zmtp_ping(p, 0x0102, (const uint8_t *)"0123456789abcdefXYZ",
                        19), 25);
  CHECK(memcmp(p, "\x04\x17\x04PING\x01\x02" "0123456789abcdef", 25) == 0);
}

/* Rogue's layout (4.2): flags LE16, channel, error, payload. */
static void test_encode_rogue(void) {
  uint8_t fl[2] = {0x02, 0x01}, ch = 3, er = 0;
  sl_zmtp_part parts[4] = {{fl, 2}, {&ch, 1}, {&er, 1},
                           {(const uint8_t *)"ABCD", 4}};
  uint8_t out[400];
  CHECK_EQ(sl_zmtp_encoded_size(parts, 4), sizeof rogue_abcd);
  CHECK_EQ(sl_zmtp_encode(parts, 4, out, sizeof out), sizeof rogue_abcd);
  CHECK(memcmp(out, rogue_abcd, sizeof rogue_abcd) == 0);
  CHECK_EQ(sl_zmtp_encode(parts, 4, out, sizeof rogue_abcd - 1), 0);
  CHECK_EQ(sl_zmtp_encode(parts, 0, out, sizeof out), 0);
  /* 0x9E37, channel 1, error 7, 300 bytes: the last part goes long. */
  uint8_t big[300];
  for (int i = 0; i < 300; i++) big[i] = (uint8_t)(i * 7);
  uint8_t fl2[2] = {0x37, 0x9E}, ch2 = 1, er2 = 7;
  sl_zmtp_part p2[4] = {{fl2, 2}, {&ch2, 1}, {&er2, 1}, {big, 300}};
  CHECK_EQ(sl_zmtp_encode(p2, 4, out, sizeof out), 10 + 9 + 300);
  CHECK(memcmp(out, "\x01\x02\x37\x9E\x01\x01\x01\x01\x01\x07"
                    "\x02\x00\x00\x00\x00\x00\x00\x01\x2C", 19) == 0);
  CHECK(memcmp(out + 19, big, 300) == 0);
  /* A zero-length part may have no data pointer. */
  sl_zmtp_part p3[2] = {{NULL, 0}, {NULL, 0}};
  CHECK_EQ(sl_zmtp_encode(p3, 2, out, sizeof out), 4);
  CHECK(memcmp(out, "\x01\x00\x00\x00", 4) == 0);
}

static void test_new_and_output(void) {
  CHECK(mk((sl_zmtp_role)0, 0, 0) == NULL);
  CHECK(sl_zmtp_new(NULL) == NULL);
  sl_zmtp *z = mk(SL_ZMTP_PULL, 0, 0);
  CHECK_EQ(sl_zmtp_get_stage(z), SL_ZMTP_STAGE_GREETING);
  CHECK_EQ(sl_zmtp_get_role(z), SL_ZMTP_PULL);
  const uint8_t *o;
  CHECK_EQ(sl_zmtp_output(z, &o), 92);
  CHECK(memcmp(o, zmq_greeting, 64) == 0);
  CHECK(memcmp(o + 64, ready_pull, 28) == 0);
  sl_zmtp_output_done(z, 11);          /* a short write */
  CHECK_EQ(sl_zmtp_output(z, &o), 81);
  CHECK(memcmp(o, zmq_greeting + 11, 53) == 0);
  sl_zmtp_output_done(z, 500);
  CHECK_EQ(sl_zmtp_output(z, &o), 0);
  sl_zmtp_event ev;
  CHECK_EQ(sl_zmtp_pop(z, &ev), 0);
  CHECK_EQ(ev.kind, SL_ZMTP_NONE);
  sl_zmtp_free(z);
  sl_zmtp_free(NULL);
}

/* ---- handshakes and messages ------------------------------------------ */

static void check_handshake(sl_zmtp_role role, const uint8_t *peer_ready,
                            const char *peer_type) {
  sl_zmtp *z = mk(role, 0, 0);
  size_t used;
  CHECK_EQ(sl_zmtp_feed(z, zmq_greeting, 40, &used), SL_ZMTP_NONE);
  CHECK_EQ(used, 40);
  CHECK_EQ(sl_zmtp_feed(z, zmq_greeting + 40, 24, &used), SL_ZMTP_GREETING);
  CHECK_EQ(used, 24);
  /* Until popped, the event blocks the input. */
  CHECK_EQ(sl_zmtp_feed(z, peer_ready, 28, &used), SL_ZMTP_GREETING);
  CHECK_EQ(used, 0);
  sl_zmtp_event ev;
  CHECK(sl_zmtp_pop(z, &ev));
  CHECK(ev.kind == SL_ZMTP_GREETING && ev.minor == 1 && ev.as_server == 0);
  CHECK_EQ(sl_zmtp_get_stage(z), SL_ZMTP_STAGE_HANDSHAKE);
  CHECK_EQ(sl_zmtp_feed(z, peer_ready, 28, &used), SL_ZMTP_READY);
  CHECK_EQ(used, 28);
  CHECK(sl_zmtp_pop(z, &ev));
  CHECK_STR(ev.text, peer_type);
  CHECK_EQ(sl_zmtp_get_stage(z), SL_ZMTP_STAGE_OPEN);
  sl_zmtp_free(z);
}

static void test_handshakes(void) {
  check_handshake(SL_ZMTP_PULL, ready_push, "PUSH");
  check_handshake(SL_ZMTP_PUSH, ready_pull, "PULL");
}

static void check_rogue_message(const evrec *m, const uint8_t *flags,
                                uint8_t ch, uint8_t err, size_t n) {
  CHECK(m != NULL);
  if (m == NULL) return;
  CHECK_EQ(m->nparts, 4);
  CHECK(m->sizes[0] == 2 && m->sizes[1] == 1 && m->sizes[2] == 1);
  CHECK_EQ(m->sizes[3], n);
  CHECK(m->data[0] == flags[0] && m->data[1] == flags[1]);
  CHECK(m->data[2] == ch && m->data[3] == err);
  CHECK_EQ(m->size, 4 + n);
}

static void test_rogue_messages(void) {
  bytes in = {0};
  add_push_handshake(&in);
  add(&in, rogue_abcd, sizeof rogue_abcd);
  ADD(&in, "\x01\x02\x37\x9E\x01\x01\x01\x01\x01\x07\x00\x10");
  add_fill(&in, 0xA5, 16);
  ADD(&in, "\x01\x02\x37\x9E\x01\x01\x01\x01\x01\x07"
           "\x02\x00\x00\x00\x00\x00\x00\x01\x2C");
  add_fill(&in, 0x5A, 300);
  trace t = {0};
  run_pull(&in, &t);
  CHECK(!t.stuck);
  CHECK_EQ(count_kind(&t, SL_ZMTP_MESSAGE), 3);
  const evrec *m = nth_message(&t, 0);
  check_rogue_message(m, (const uint8_t *)"\x02\x01", 3, 0, 4);
  if (m != NULL) CHECK(memcmp(m->data + 4, "ABCD", 4) == 0);
  check_rogue_message(nth_message(&t, 1), (const uint8_t *)"\x37\x9E", 1, 7,
                      16);
  m = nth_message(&t, 2);
  check_rogue_message(m, (const uint8_t *)"\x37\x9E", 1, 7, 300);
  if (m != NULL) CHECK(m->data[4] == 0x5A && m->data[303] == 0x5A);
  trace_free(&t);
  free(in.p);
}

/* 255 short, 256 long, LONG on 5 bytes (alone and inside a multipart),
** an empty part, an empty message, reserved flag bits. */
static void test_frame_forms(void) {
  bytes in = {0};
  add_push_handshake(&in);
  ADD(&in, "\x00\xFF");
  add_fill(&in, 1, 255);
  ADD(&in, "\x02\x00\x00\x00\x00\x00\x00\x01\x00");
  add_fill(&in, 2, 256);
  ADD(&in, "\x02\x00\x00\x00\x00\x00\x00\x00\x05hello");
  ADD(&in, "\x03\x00\x00\x00\x00\x00\x00\x00\x02hi\x01\x00\x00\x03" "abc");
  ADD(&in, "\x00\x00");
  ADD(&in, "\xF8\x02ok");
  trace t = {0};
  run_pull(&in, &t);
  CHECK(!t.stuck);
  CHECK_EQ(t.n, 2 + 6);
  const evrec *m;
  CHECK((m = nth_message(&t, 0)) && m->nparts == 1 && m->size == 255);
  CHECK((m = nth_message(&t, 1)) && m->nparts == 1 && m->size == 256);
  CHECK((m = nth_message(&t, 2)) && m->size == 5 &&
        memcmp(m->data, "hello", 5) == 0);
  CHECK((m = nth_message(&t, 3)) && m->nparts == 3 && m->sizes[0] == 2 &&
        m->sizes[1] == 0 && m->sizes[2] == 3 &&
        memcmp(m->data, "hiabc", 5) == 0);
  CHECK((m = nth_message(&t, 4)) && m->nparts == 1 && m->size == 0);
  CHECK((m = nth_message(&t, 5)) && m->nparts == 1 &&
        memcmp(m->data, "ok", 2) == 0);
  trace_free(&t);
  free(in.p);
}

/* No part of a message comes out before its last frame has arrived. */
static void test_more_waits(void) {
  sl_zmtp *z = mk(SL_ZMTP_PULL, 0, 0);
  bytes in = {0};
  add_push_handshake(&in);
  trace t = {0};
  drive(z, in.p, in.n, WHOLE, NULL, &t);
  size_t used;
  CHECK_EQ(sl_zmtp_feed(z, (const uint8_t *)"\x01\x01" "a\x01\x00", 5,
                        &used), SL_ZMTP_NONE);
  CHECK_EQ(sl_zmtp_feed(z, (const uint8_t *)"\x00\x01", 2, &used),
           SL_ZMTP_NONE);
  CHECK_EQ(sl_zmtp_feed(z, (const uint8_t *)"z\x00\x00", 3, &used),
           SL_ZMTP_MESSAGE);
  CHECK_EQ(used, 1);
  sl_zmtp_event ev;
  CHECK(sl_zmtp_pop(z, &ev) && ev.nparts == 3 && ev.size == 2);
  CHECK(ev.parts[0].data[0] == 'a' && ev.parts[2].data[0] == 'z');
  CHECK(ev.parts[1].size == 0 && ev.parts[1].data != NULL);
  CHECK_EQ(sl_zmtp_feed(z, (const uint8_t *)"\x00\x00", 2, &used),
           SL_ZMTP_MESSAGE);
  CHECK(sl_zmtp_pop(z, &ev) && ev.nparts == 1 && ev.size == 0);
  sl_zmtp_free(z);
  trace_free(&t);
  free(in.p);
}

/* ---- commands after the handshake ------------------------------------- */

static void test_ping_pong(void) {
  sl_zmtp *z = mk(SL_ZMTP_PUSH, 0, 0);
  bytes in = {0};
  add(&in, zmq_greeting, 64);
  add(&in, ready_pull, 28);
  ADD(&in, "\x04\x09\x04PING\x00\x00hi");
  ADD(&in, "\x04\x07\x04PING\x00\x05");
  ADD(&in, "\x04\x1B\x04PING\x00\x00" "0123456789abcdefWXYZ");
  ADD(&in, "\x04\x06\x04PING\x01");                    /* no TTL */
  ADD(&in, "\x04\x05\x04PONG");
  trace t = {0};
  drive(z, in.p, in.n, BYTEWISE, NULL, &t);
  CHECK(!t.stuck);
  CHECK_EQ(t.n, 7);
  if (t.n == 7) {
    CHECK(t.ev[2].kind == SL_ZMTP_PING && t.ev[2].ttl == 0);
    CHECK(t.ev[3].kind == SL_ZMTP_PING && t.ev[3].ttl == 5);
    CHECK(t.ev[4].kind == SL_ZMTP_PING && t.ev[4].pong_queued);
    CHECK_EQ(t.ev[5].kind, SL_ZMTP_IGNORED);
    CHECK_EQ(t.ev[6].kind, SL_ZMTP_PONG);
  }
  const uint8_t *o;
  size_t n = sl_zmtp_output(z, &o);
  CHECK_EQ(n, 92 + 9 + 7 + 23);
  if (n == 92 + 9 + 7 + 23) {
    CHECK(memcmp(o + 92, "\x04\x07\x04PONGhi", 9) == 0);
    CHECK(memcmp(o + 101, "\x04\x05\x04PONG", 7) == 0);
    CHECK(memcmp(o + 108, "\x04\x15\x04PONG0123456789abcdef", 23) == 0);
  }
  /* A flood of PINGs while nothing is sent: output stays bounded. */
  int dropped = 0;
  for (int i = 0; i < 200; i++) {
    size_t used;
    CHECK_EQ(sl_zmtp_feed(z, (const uint8_t *)"\x04\x07\x04PING\x00\x00", 9,
                          &used), SL_ZMTP_PING);
    sl_zmtp_event ev;
    sl_zmtp_pop(z, &ev);
    dropped += !ev.pong_queued;
  }
  CHECK(dropped > 0);
  CHECK(sl_zmtp_output(z, &o) <= 1024);
  sl_zmtp_output_done(z, 92);         /* room again, after compaction */
  size_t used;
  sl_zmtp_feed(z, (const uint8_t *)"\x04\x07\x04PING\x00\x00", 9, &used);
  sl_zmtp_event ev;
  CHECK(sl_zmtp_pop(z, &ev) && ev.pong_queued);
  sl_zmtp_free(z);
  trace_free(&t);
  free(in.p);
}

/* What libzmq drops silently after READY; the messages after it flow. */
static void test_ignored_commands(void) {
  bytes in = {0};
  add_push_handshake(&in);
  ADD(&in, "\x04\x07\x04" "ABCDxy");               /* unknown */
  ADD(&in, "\x04\x03\x09" "AB");                   /* name past the body */
  ADD(&in, "\x04\x00");                            /* empty */
  ADD(&in, "\x05\x05\x04" "ABCD");                 /* command with MORE */
  add(&in, ready_push, 28);                        /* second READY */
  ADD(&in, "\x06\x00\x00\x00\x00\x00\x00\x27\x10\x04" "ABCD");
  add_fill(&in, 0xEE, 10000 - 5);                  /* 10000-byte command */
  ADD(&in, "\x01\x01" "a");                        /* a command inside */
  ADD(&in, "\x04\x05\x04" "PONG\x00\x01" "b");     /* a message */
  trace t = {0};
  run_pull(&in, &t);
  CHECK(!t.stuck);
  CHECK_EQ(count_kind(&t, SL_ZMTP_IGNORED), 6);
  CHECK_EQ(count_kind(&t, SL_ZMTP_PONG), 1);
  const evrec *m = nth_message(&t, 0);
  CHECK(m != NULL && m->nparts == 2 && memcmp(m->data, "ab", 2) == 0);
  CHECK(t.n >= 3 && strstr(t.ev[2].text, "ABCD") != NULL);
  trace_free(&t);
  free(in.p);
}

/* ---- what libzmq accepts in a greeting and a READY -------------------- */

static void accept_greeting(int at, uint8_t value, int minor, int as_server) {
  bytes in = {0};
  add_push_handshake(&in);
  in.p[at] = value;
  add(&in, rogue_abcd, sizeof rogue_abcd);
  trace t = {0};
  run_pull(&in, &t);
  CHECK(!t.stuck && t.n == 3 && t.ev[2].kind == SL_ZMTP_MESSAGE);
  CHECK(t.n > 0 && t.ev[0].minor == minor && t.ev[0].as_server == as_server);
  trace_free(&t);
  free(in.p);
}

static void test_greeting_variants(void) {
  accept_greeting(11, 0x00, 0, 0);        /* ZMTP 3.0 */
  accept_greeting(11, 0x07, 7, 0);
  accept_greeting(9, 0x01, 1, 0);         /* only bit 0 of byte 9 counts */
  accept_greeting(32, 0x01, 1, 1);        /* as-server is not checked */
  accept_greeting(10, 0x04, 1, 0);        /* a later major */
  bytes in = {0};
  add_push_handshake(&in);
  memcpy(in.p + 1, "\xDE\xAD\xBE\xEF\xCA\xFE\xBA\xBE", 8);
  memset(in.p + 33, 0xAB, 31);            /* filler is not checked either */
  trace t = {0};
  run_pull(&in, &t);
  CHECK(!t.stuck && t.n == 2 && t.ev[1].kind == SL_ZMTP_READY);
  trace_free(&t);
  free(in.p);
}

static void accept_ready(const bytes *ready, const char *peer_type) {
  bytes in = {0};
  add(&in, zmq_greeting, 64);
  add(&in, ready->p, ready->n);
  add(&in, rogue_abcd, sizeof rogue_abcd);
  trace t = {0};
  run_pull(&in, &t);
  CHECK(!t.stuck && t.n == 3);
  if (t.n == 3) {
    CHECK_EQ(t.ev[1].kind, SL_ZMTP_READY);
    CHECK_STR(t.ev[1].text, peer_type);
    CHECK_EQ(t.ev[2].kind, SL_ZMTP_MESSAGE);
  }
  trace_free(&t);
  free(in.p);
}

static void test_ready_variants(void) {
  bytes r = {0};
  ADD(&r, "\x04\x06\x05READY");                          /* no property */
  accept_ready(&r, "");
  r.n = 0;                                 /* lower case: not the check */
  ADD(&r, "\x04\x19\x05READY\x0bsocket-type\x00\x00\x00\x03PUB");
  accept_ready(&r, "");
  r.n = 0;                                 /* Identity, X-Foo, then PUSH */
  ADD(&r, "\x04\x34\x05READY\x08Identity\x00\x00\x00\x00"
          "\x05X-Foo\x00\x00\x00\x03" "bar"
          "\x0bSocket-Type\x00\x00\x00\x04PUSH");
  accept_ready(&r, "PUSH");
  r.n = 0;                                 /* long form and MORE */
  ADD(&r, "\x07\x00\x00\x00\x00\x00\x00\x00\x1A\x05READY"
          "\x0bSocket-Type\x00\x00\x00\x04PUSH");
  accept_ready(&r, "PUSH");
  free(r.p);
}

/* ---- refusals --------------------------------------------------------- */

static void refuse_greeting(int at, uint8_t value, const char *want) {
  bytes in = {0};
  add_push_handshake(&in);
  in.p[at] = value;
  expect_pull_death(&in, want);
  free(in.p);
}

static void test_bad_greetings(void) {
  refuse_greeting(0, 0xFE, "signature");
  refuse_greeting(9, 0x7E, "ZMTP 1.0");
  refuse_greeting(10, 0x02, "major version is 2");
  refuse_greeting(10, 0x01, "major version is 1");
  refuse_greeting(16, ' ', "padded");                 /* "NULL " */
  refuse_greeting(31, 0x01, "padded");
  bytes in = {0};
  add_push_handshake(&in);
  memcpy(in.p + 12, "PLAIN", 5);
  expect_pull_death(&in, "\"PLAIN\", not NULL");
  memcpy(in.p + 12, "CURVE", 5);
  expect_pull_death(&in, "\"CURVE\"");
  free(in.p);
}

/* After libzmq's greeting, these bytes must end the session. */
static void refuse_after_greeting(const char *body, size_t n,
                                  const char *want) {
  bytes in = {0};
  add(&in, zmq_greeting, 64);
  add(&in, body, n);
  add(&in, rogue_abcd, sizeof rogue_abcd);
  expect_pull_death(&in, want);
  free(in.p);
}

#define REFUSE(lit, want) refuse_after_greeting((lit), sizeof(lit) - 1, want)

static void test_bad_handshakes(void) {
  REFUSE("\x00\x01x", "message frame before READY");
  REFUSE("\x01\x01x", "message frame before READY");
  REFUSE("\x04\x07\x04PING\x00\x00", "unexpected command PING");
  REFUSE("\x04\x05\x04" "ABCD", "unexpected command ABCD");
  REFUSE("\x04\x03\x09" "AB", "malformed command");
  REFUSE("\x04\x00", "malformed command");
  REFUSE("\x04\x0D\x05READY\x03" "abc\x00\x00\x00", "runs past");
  REFUSE("\x04\x0A\x05READY\x05" "ab\x00", "runs past");
  REFUSE("\x04\x07\x05READY\x0B", "runs past");   /* one trailing byte */
  REFUSE("\x04\x1A\x05READY\x0bSocket-Type\x00\x00\x00\x05PUSH",
         "runs past");
  REFUSE("\x04\x0B\x05READY\x00\x00\x00\x00\x00", "empty name");
  REFUSE("\x04\x19\x05READY\x0bSocket-Type\x00\x00\x00\x03PUB",
         "incompatible socket type \"PUB\" (we are PULL)");
  REFUSE("\x04\x1A\x05READY\x0bSocket-Type\x00\x00\x00\x04PULL",
         "incompatible socket type \"PULL\"");
  REFUSE("\x04\x1A\x05READY\x0bSocket-Type\x00\x00\x00\x04push",
         "incompatible");
  REFUSE("\x04\x0A\x05" "ERROR\x05" "ERR", "malformed ERROR");
  REFUSE("\x06\x00\x00\x00\x00\x00\x00\x20\x01\x05READY",
         "command of 8193 bytes before READY");
  /* An incompatible peer as seen by a PUSH. */
  bytes in = {0};
  add(&in, zmq_greeting, 64);
  add(&in, ready_push, 28);
  sl_zmtp_config cfg = {SL_ZMTP_PUSH, 0, 0};
  expect_death(&cfg, &in, SL_ZMTP_FATAL, "\"PUSH\" (we are PUSH)", 0);
  free(in.p);
}

static void test_peer_error(void) {
  sl_zmtp_config cfg = {SL_ZMTP_PULL, 0, 0};
  bytes in = {0};
  add(&in, zmq_greeting, 64);
  ADD(&in, "\x04\x0D\x05" "ERROR\x06" "no way");
  expect_death(&cfg, &in, SL_ZMTP_PEER_ERROR, "no way", 0);
  in.n = 0;                   /* after READY too, and mid-message */
  add_push_handshake(&in);
  add(&in, rogue_abcd, sizeof rogue_abcd);
  ADD(&in, "\x01\x01x\x04\x0A\x05" "ERROR\x03" "bye\x00\x01y");
  expect_death(&cfg, &in, SL_ZMTP_PEER_ERROR, "bye", 1);
  free(in.p);
}

/* ---- limits ----------------------------------------------------------- */

static void test_limits(void) {
  sl_zmtp_config cfg = {SL_ZMTP_PULL, 100, 4};
  bytes in = {0};
  add_push_handshake(&in);
  ADD(&in, "\x00\x64");
  add_fill(&in, 'x', 100);                   /* exactly the limit: fine */
  ADD(&in, "\x01\x32");
  add_fill(&in, 'y', 50);
  ADD(&in, "\x00\x33");                      /* 50 + 51 > 100 */
  add_fill(&in, 'z', 51);
  expect_death(&cfg, &in, SL_ZMTP_FATAL, "limit of 100 bytes", 1);
  in.n = 92;                                 /* 5 parts, 4 allowed */
  ADD(&in, "\x01\x00\x01\x00\x01\x00\x01\x00\x00\x00");
  expect_death(&cfg, &in, SL_ZMTP_FATAL, "more than 4 parts", 0);
  /* 2^63-1 bytes announced: refused at the header, nothing allocated. */
  in.n = 92;
  ADD(&in, "\x02\x7F\xFF\xFF\xFF\xFF\xFF\xFF\xFF" "data");
  cfg.max_msg_size = 0;
  expect_death(&cfg, &in, SL_ZMTP_FATAL, "limit of 67108864 bytes", 0);
  trace t = {0};
  sl_zmtp *z = sl_zmtp_new(&cfg);
  drive(z, in.p, in.n, WHOLE, NULL, &t);
  CHECK(t.n == 3 && t.ev[2].at == 92 + 9);
  sl_zmtp_free(z);
  trace_free(&t);
  /* Under the limit, memory follows the bytes that came, not the claim. */
  cfg.max_msg_size = 1ull << 31;
  z = sl_zmtp_new(&cfg);
  in.n = 92;
  ADD(&in, "\x02\x00\x00\x00\x00\x40\x00\x00\x00");      /* 1 GiB */
  add_fill(&in, 'q', 1000);
  drive(z, in.p, in.n, RANDOM, &(uint64_t){7}, &t);
  CHECK(!t.stuck && t.n == 2);
  CHECK(sl_zmtp_buffered(z) < 65536);
  sl_zmtp_trim(z);                          /* half a message: kept */
  CHECK(sl_zmtp_buffered(z) > 0);
  sl_zmtp_free(z);
  trace_free(&t);
  free(in.p);
}

static void test_trim(void) {
  sl_zmtp *z = mk(SL_ZMTP_PULL, 0, 0);
  bytes in = {0};
  add_push_handshake(&in);
  ADD(&in, "\x02\x00\x00\x00\x00\x00\x01\x00\x00");      /* 64 KiB */
  add_fill(&in, 'w', 65536);
  trace t = {0};
  drive(z, in.p, in.n, WHOLE, NULL, &t);
  CHECK(t.n == 3 && t.ev[2].size == 65536);
  CHECK(sl_zmtp_buffered(z) >= 65536);
  sl_zmtp_trim(z);
  CHECK_EQ(sl_zmtp_buffered(z), 0);
  size_t used;
  CHECK_EQ(sl_zmtp_feed(z, rogue_abcd, sizeof rogue_abcd, &used),
           SL_ZMTP_MESSAGE);
  sl_zmtp_event ev;
  CHECK(sl_zmtp_pop(z, &ev) && ev.nparts == 4 && ev.size == 8);
  sl_zmtp_free(z);
  trace_free(&t);
  free(in.p);
}

/* ---- chunkings and random input --------------------------------------- */

/* A valid session from a libzmq PUSH, with where each message ends. */
typedef struct session {
  bytes in;
  size_t ends[16];
  size_t nmsg;
} session;

static void end_message(session *s) { s->ends[s->nmsg++] = s->in.n; }

static void build_session(session *s) {
  memset(s, 0, sizeof *s);
  bytes *b = &s->in;
  add_push_handshake(b);
  add(b, rogue_abcd, sizeof rogue_abcd);
  end_message(s);
  ADD(b, "\x04\x09\x04PING\x00\x00hi");
  ADD(b, "\x01\x02\x37\x9E\x01\x01\x01\x01\x01\x07\x00\x10");
  for (int i = 0; i < 16; i++) add_fill(b, (uint8_t)(i * 13), 1);
  end_message(s);
  ADD(b, "\x04\x07\x04" "ABCDxy");
  ADD(b, "\x01\x02\x37\x9E\x01\x01\x01\x01\x01\x07"
         "\x02\x00\x00\x00\x00\x00\x00\x01\x2C");
  for (int i = 0; i < 300; i++) add_fill(b, (uint8_t)(i * 31 + 5), 1);
  end_message(s);
  ADD(b, "\x03\x00\x00\x00\x00\x00\x00\x00\x02hi\x01\x00\x00\x03" "abc");
  end_message(s);
  ADD(b, "\x00\x00");
  end_message(s);
  ADD(b, "\x04\x05\x04PONG\xF8\x02ok");
  end_message(s);
}

static void test_chunkings(void) {
  session s;
  build_session(&s);
  uint64_t rng = 12345;
  trace whole = {0}, t = {0};
  sl_zmtp *z = mk(SL_ZMTP_PULL, 0, 0);
  drive(z, s.in.p, s.in.n, WHOLE, NULL, &whole);
  sl_zmtp_free(z);
  CHECK(!whole.stuck);
  CHECK_EQ(whole.n, 2 + 6 + 3);
  CHECK_EQ(count_kind(&whole, SL_ZMTP_MESSAGE), s.nmsg);
  for (size_t i = 0; i < s.nmsg; i++) {
    const evrec *m = nth_message(&whole, i);
    CHECK(m != NULL && m->at == s.ends[i]);
  }
  int differ = 0;
  for (int round = 0; round < 301; round++) {
    z = mk(SL_ZMTP_PULL, 0, 0);
    drive(z, s.in.p, s.in.n, round == 0 ? BYTEWISE : RANDOM, &rng, &t);
    differ += !same_trace(&whole, &t);
    sl_zmtp_free(z);
    trace_free(&t);
  }
  CHECK_EQ(differ, 0);
  /* Borrowing: parts handed out pointing into the bytes fed, whole
  ** messages in one feed read a frame at a time; the same events. */
  sl_zmtp_config cfg = {SL_ZMTP_PULL, 0, 0};
  for (int round = 0; round < 404; round++) {
    z = mk_borrowing(&cfg, borrows[round % 4]);
    int mode = round < 4 ? WHOLE : round < 8 ? BYTEWISE : RANDOM;
    drive(z, s.in.p, s.in.n, mode | COPIED, &rng, &t);
    differ += !same_trace(&whole, &t);
    sl_zmtp_free(z);
    trace_free(&t);
  }
  CHECK_EQ(differ, 0);
  trace_free(&whole);
  free(s.in.p);
}

/* Every part handed out is a run of bytes that really was in the input,
** and a message takes at least its frame headers' worth of input. */
static int messages_from_input(const trace *t, const bytes *in) {
  for (size_t i = 0; i < t->n; i++) {
    const evrec *e = &t->ev[i];
    if (e->kind != SL_ZMTP_MESSAGE) continue;
    if (e->size + 2 * e->nparts > e->at) return 0;
    size_t off = 0;
    for (size_t k = 0; k < e->nparts; k++) {
      if (e->sizes[k] > 0 &&
          memmem(in->p, in->n, e->data + off, e->sizes[k]) == NULL)
        return 0;
      off += e->sizes[k];
    }
  }
  return 1;
}

/* Runs in whole, in random chunks, and borrowing in whole or random
** chunks; returns 0 if they disagree. */
static int fuzz_one(const bytes *in, sl_zmtp_role role, uint64_t *rng,
                    trace *whole) {
  trace t = {0}, b = {0};
  sl_zmtp_config cfg = {role, 4096, 16};
  sl_zmtp *z = mk(role, 4096, 16);
  drive(z, in->p, in->n, WHOLE, NULL, whole);
  sl_zmtp_free(z);
  z = mk(role, 4096, 16);
  drive(z, in->p, in->n, RANDOM, rng, &t);
  sl_zmtp_free(z);
  uint64_t r = rnd(rng);
  z = mk_borrowing(&cfg, borrows[r % 4]);
  drive(z, in->p, in->n, ((r >> 8) % 2 ? RANDOM : WHOLE) | COPIED, rng, &b);
  sl_zmtp_free(z);
  int ok = same_trace(whole, &t) && same_trace(whole, &b) &&
           messages_from_input(whole, in);
  trace_free(&t);
  trace_free(&b);
  return ok;
}

/* Random bytes, mostly small ones (flags, short sizes). */
static void add_noise(bytes *b, uint64_t *rng, size_t n) {
  for (size_t k = 0; k < n; k++) {
    uint64_t r = rnd(rng);
    uint8_t v = (r & 3) == 0 ? (uint8_t)(r >> 8) : (uint8_t)((r >> 8) % 8);
    add(b, &v, 1);
  }
}

/* Frames that are often well formed, with noise between them. */
static void add_noisy_frames(bytes *b, uint64_t *rng, size_t n) {
  static const char *const names[] = {"\x04PING", "\x04PONG", "\x05READY",
                                      "\x05" "ERROR", "\x04" "ABCD"};
  size_t end = b->n + n;
  while (b->n < end) {
    uint64_t r = rnd(rng);
    uint8_t size = (uint8_t)((r >> 16) % 40), hdr[9] = {0};
    int cmd = (r >> 8) % 3 == 0, lng = (r >> 10) % 5 == 0;
    const char *name = names[(r >> 24) % 5];
    size_t nlen = cmd ? strlen(name) : 0;
    hdr[0] = (uint8_t)((r >> 32) & 0xF9) | (cmd ? 4 : 0) | (lng ? 2 : 0);
    hdr[lng ? 8 : 1] = (uint8_t)(size + nlen);
    if (r % 7 == 0) add_noise(b, rng, 1 + (r >> 40) % 3);
    add(b, hdr, lng ? 9 : 2);
    add(b, name, nlen);
    add_noise(b, rng, size);
  }
}

static void test_fuzz_random(void) {
  uint64_t rng = 0xC0FFEE;
  int bad = 0;
  size_t events = 0, msgs = 0;
  for (int i = 0; i < 20000; i++) {
    bytes in = {0};
    if (i % 4 == 1) add_push_handshake(&in);
    if (i % 4 == 2) add(&in, zmq_greeting, 64);
    if (i % 4 == 3) add_push_handshake(&in);
    if (i % 4 == 3) add_noisy_frames(&in, &rng, rnd(&rng) % 600);
    else add_noise(&in, &rng, rnd(&rng) % 300);
    trace whole = {0};
    bad += !fuzz_one(&in, i % 8 == 2 ? SL_ZMTP_PUSH : SL_ZMTP_PULL, &rng,
                     &whole);
    events += whole.n;
    msgs += count_kind(&whole, SL_ZMTP_MESSAGE);
    trace_free(&whole);
    free(in.p);
  }
  CHECK_EQ(bad, 0);
  CHECK(events > 40000 && msgs > 5000);    /* the frame parser was reached */
}

static int same_message(const evrec *a, const evrec *b) {
  return a->nparts == b->nparts && a->size == b->size &&
         memcmp(a->sizes, b->sizes, a->nparts * sizeof *a->sizes) == 0 &&
         (a->size == 0 || memcmp(a->data, b->data, a->size) == 0);
}

/*
** A valid session with one to three edits (flip, overwrite, insert,
** delete, cut). Before the first edited byte everything is as in the
** valid session, so each message that ended there must come out intact;
** a cut-only input must yield exactly those and nothing of the next.
*/
static void test_fuzz_mutations(void) {
  session s;
  build_session(&s);
  trace valid = {0};
  run_pull(&s.in, &valid);
  uint64_t rng = 0xBADC0DE;
  int bad = 0, lost = 0, extra = 0;
  for (int i = 0; i < 20000; i++) {
    bytes m = {0};
    add(&m, s.in.p, s.in.n);
    size_t first = m.n;
    int cut_only = 1;
    for (int k = 1 + (int)(rnd(&rng) % 3); k > 0 && m.n > 0; k--) {
      size_t at = rnd(&rng) % m.n;
      uint8_t v = (uint8_t)rnd(&rng);
      int op = (int)(rnd(&rng) % 5);
      if (op == 0) m.p[at] ^= (uint8_t)(1u << (v % 8));
      if (op == 1) m.p[at] = v;
      if (op == 2) {
        add(&m, &v, 1);
        memmove(m.p + at + 1, m.p + at, m.n - at - 1);
        m.p[at] = v;
      }
      if (op == 3) memmove(m.p + at, m.p + at + 1, --m.n - at);
      if (op == 4) m.n = at;
      cut_only &= op == 4;
      if (at < first) first = at;
    }
    trace whole = {0};
    bad += !fuzz_one(&m, SL_ZMTP_PULL, &rng, &whole);
    size_t intact = 0;
    while (intact < s.nmsg && s.ends[intact] <= first) intact++;
    for (size_t k = 0; k < intact; k++) {
      const evrec *got = nth_message(&whole, k);
      lost += got == NULL || !same_message(got, nth_message(&valid, k));
    }
    if (cut_only) extra += count_kind(&whole, SL_ZMTP_MESSAGE) != intact;
    trace_free(&whole);
    free(m.p);
  }
  CHECK_EQ(bad, 0);
  CHECK_EQ(lost, 0);
  CHECK_EQ(extra, 0);
  trace_free(&valid);
  free(s.in.p);
}

/*
** Zero-copy receive: the header of a 300-byte part goes through feed, the
** body straight into the session's buffer (body_space / body_done), and
** the message buffer is then taken whole; the next message still works.
*/
static void test_direct_body_and_take(void) {
  bytes in = {0};
  add_push_handshake(&in);
  ADD(&in, "\x01\x02\x37\x9E\x01\x01\x01\x01\x01\x07"
           "\x02\x00\x00\x00\x00\x00\x00\x01\x2C");
  sl_zmtp *z = mk(SL_ZMTP_PULL, 0, 0);
  size_t used = 0, off = 0;
  sl_zmtp_event ev;
  while (off < in.n) {                       /* handshake and headers */
    sl_zmtp_kind k = sl_zmtp_feed(z, in.p + off, in.n - off, &used);
    off += used;
    if (k != SL_ZMTP_NONE) sl_zmtp_pop(z, &ev);
  }
  uint8_t *dst = NULL;
  CHECK_EQ(sl_zmtp_body_space(z, 100, &dst), 100);   /* room for what is asked */
  CHECK(dst != NULL);
  memset(dst, 0x5A, 100);
  CHECK_EQ(sl_zmtp_body_done(z, 100), SL_ZMTP_NONE);
  CHECK_EQ(sl_zmtp_body_space(z, 1000, &dst), 200);  /* only what is still due */
  memset(dst, 0x5A, 200);
  CHECK_EQ(sl_zmtp_body_done(z, 200), SL_ZMTP_MESSAGE);
  CHECK(sl_zmtp_pop(z, &ev));
  CHECK_EQ(ev.nparts, 4);
  CHECK_EQ(ev.parts[3].size, 300);
  CHECK(ev.parts[3].data[0] == 0x5A && ev.parts[3].data[299] == 0x5A);
  size_t cap = 0;
  uint8_t *m = sl_zmtp_take_message(z, &cap);
  CHECK(m != NULL && cap >= 304);
  if (m != NULL) CHECK(m[0] == 0x37 && m[1] == 0x9E && m[2] == 1 && m[3] == 7);
  CHECK(ev.parts[3].data == m + 4);          /* the event points into it */
  free(m);
  uint8_t *none;
  CHECK_EQ(sl_zmtp_body_space(z, 100, &none), 0);   /* no body due now */
  CHECK(sl_zmtp_take_message(z, &cap) == NULL);     /* taken already */
  /* a buffer given back is used for the next message */
  uint8_t *given = malloc(4096);
  CHECK_EQ(sl_zmtp_give_buffer(z, given, 4096), 1);
  uint8_t *other = malloc(16);
  CHECK_EQ(sl_zmtp_give_buffer(z, other, 16), 0);   /* it has one now */
  free(other);
  CHECK_EQ(sl_zmtp_feed(z, rogue_abcd, sizeof rogue_abcd, &used), SL_ZMTP_MESSAGE);
  CHECK(sl_zmtp_pop(z, &ev));
  CHECK_EQ(ev.parts[3].size, 4);
  CHECK(memcmp(ev.parts[3].data, "ABCD", 4) == 0);
  CHECK(ev.parts[0].data == given);
  sl_zmtp_free(z);
  free(in.p);
}

static const struct tt_case cases[] = {
  {"encoders: greeting, READY, headers, PING", test_encoders},
  {"encode Rogue 4-part messages byte for byte", test_encode_rogue},
  {"new queues greeting + READY; output_done", test_new_and_output},
  {"handshakes as PULL and as PUSH", test_handshakes},
  {"decode Rogue 4-part messages", test_rogue_messages},
  {"direct body reads and taking the message buffer", test_direct_body_and_take},
  {"short/long boundary, LONG on small, empty parts", test_frame_forms},
  {"MORE: nothing before the last part", test_more_waits},
  {"PING -> PONG bytes; PONG; bounded output", test_ping_pong},
  {"commands libzmq ignores after READY", test_ignored_commands},
  {"greeting variants libzmq accepts", test_greeting_variants},
  {"READY variants libzmq accepts", test_ready_variants},
  {"bad greetings are fatal", test_bad_greetings},
  {"bad handshakes are fatal", test_bad_handshakes},
  {"ERROR from the peer", test_peer_error},
  {"size and part limits", test_limits},
  {"trim releases buffers", test_trim},
  {"any chunking gives the same events", test_chunkings},
  {"20k random inputs in random chunks", test_fuzz_random},
  {"20k mutated sessions in random chunks", test_fuzz_mutations},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
