/*
** Fuzzes the ZMTP codec (src/net/zmtp.c) with the bytes a peer sends.
**
** Input: a control byte, a chunk size byte, then the peer's bytes (the
** greeting first). Control bits: 0 role PULL (else PUSH), 1 small limits
** (1000 bytes, 4 parts), 2 zero-copy body reads, 3 drain the output after
** each event, 4 take and give back the message buffer, 5 borrowing (parts
** up to 300 bytes) in the chunked run, each chunk fed from a copy that is
** scribbled over and freed once its event is taken.
**
** Invariants: feed never uses more than it is given; a message has 1 to
** max_parts parts whose sizes sum to its size, within the limit and
** within the bytes fed; the heap held stays within the limits; the events
** are the same whether the bytes come in chunks (and bodies zero-copy,
** and small messages borrowed) or all at once; a message encoded again decodes to the same parts.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "streamlua/zmtp.h"

typedef struct run {
  sl_zmtp *z;
  sl_zmtp_config cfg;
  uint64_t digest;             /* of every event, in order */
  size_t events;
} run;

static void mix(uint64_t *h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) *h = (*h ^ b[i]) * 0x100000001b3ull;
}

static uint64_t event_digest(const sl_zmtp_event *ev) {
  uint64_t h = 0xcbf29ce484222325ull;
  mix(&h, &ev->kind, sizeof ev->kind);
  mix(&h, ev->text, strlen(ev->text));
  if (ev->kind == SL_ZMTP_MESSAGE) {
    mix(&h, &ev->nparts, sizeof ev->nparts);
    for (size_t i = 0; i < ev->nparts; i++) {
      mix(&h, &ev->parts[i].size, sizeof ev->parts[i].size);
      mix(&h, ev->parts[i].data, ev->parts[i].size);
    }
  }
  mix(&h, &ev->minor, 1);
  mix(&h, &ev->as_server, 1);
  mix(&h, &ev->ttl, sizeof ev->ttl);
  mix(&h, &ev->pong_queued, sizeof ev->pong_queued);
  return h;
}

static void check_message(const run *r, const sl_zmtp_event *ev, size_t fed) {
  FUZZ_CHECK(ev->nparts >= 1 && ev->nparts <= r->cfg.max_parts);
  uint64_t sum = 0;
  for (size_t i = 0; i < ev->nparts; i++) {
    FUZZ_CHECK(ev->parts[i].data != NULL);
    sum += ev->parts[i].size;
  }
  FUZZ_CHECK(sum == ev->size);
  FUZZ_CHECK(ev->size <= r->cfg.max_msg_size);
  FUZZ_CHECK(ev->size <= fed);
}

/* The message encoded again and fed to a fresh, open session of the same
** role: the same parts come out. */
static void round_trip(const run *r, const sl_zmtp_event *ev) {
  uint64_t want = sl_zmtp_encoded_size(ev->parts, ev->nparts);
  size_t head = SL_ZMTP_GREETING_SIZE + SL_ZMTP_READY_SIZE;
  uint8_t *buf = malloc(head + (size_t)want);
  FUZZ_CHECK(buf != NULL);
  sl_zmtp_greeting(buf);
  sl_zmtp_role peer = r->cfg.role == SL_ZMTP_PUSH ? SL_ZMTP_PULL : SL_ZMTP_PUSH;
  FUZZ_CHECK(sl_zmtp_ready(peer, buf + SL_ZMTP_GREETING_SIZE) == SL_ZMTP_READY_SIZE);
  FUZZ_CHECK(sl_zmtp_encode(ev->parts, ev->nparts, buf + head, (size_t)want) == want);
  FUZZ_CHECK(sl_zmtp_encode(ev->parts, ev->nparts, buf + head, (size_t)want - 1) == 0);
  sl_zmtp *m = sl_zmtp_new(&r->cfg);
  FUZZ_CHECK(m != NULL);
  size_t off = 0, len = head + (size_t)want;
  sl_zmtp_kind kinds[3] = {SL_ZMTP_GREETING, SL_ZMTP_READY, SL_ZMTP_MESSAGE};
  for (int i = 0; i < 3; i++) {
    size_t used = 0;
    FUZZ_CHECK(sl_zmtp_feed(m, buf + off, len - off, &used) == kinds[i]);
    off += used;
    sl_zmtp_event got;
    FUZZ_CHECK(sl_zmtp_pop(m, &got) == 1);
    if (i == 2) FUZZ_CHECK(event_digest(&got) == event_digest(ev));
  }
  FUZZ_CHECK(off == len);
  sl_zmtp_free(m);
  free(buf);
}

/* Pops the waiting event, checks it, folds it into the digest. 0 when the
** session is dead. */
static int take_event(run *r, int ctl, size_t fed, int check_trip) {
  sl_zmtp_event ev;
  FUZZ_CHECK(sl_zmtp_pop(r->z, &ev) == 1);
  FUZZ_CHECK(ev.text != NULL && strlen(ev.text) < 1024);
  if (ev.kind == SL_ZMTP_MESSAGE) {
    check_message(r, &ev, fed);
    if (check_trip) round_trip(r, &ev);
  }
  r->digest = r->digest * 31 + event_digest(&ev);
  r->events++;
  if (ev.kind == SL_ZMTP_MESSAGE && (ctl & 0x10)) {
    size_t cap = 0;
    uint8_t *m = sl_zmtp_take_message(r->z, &cap);
    if (m != NULL && !sl_zmtp_give_buffer(r->z, m, cap)) free(m);
  }
  if (ctl & 0x08) {
    const uint8_t *out;
    sl_zmtp_output_done(r->z, sl_zmtp_output(r->z, &out));
  }
  size_t limit = (size_t)r->cfg.max_msg_size + 4096 +
                 (size_t)r->cfg.max_parts * sizeof(sl_zmtp_part);
  FUZZ_CHECK(sl_zmtp_buffered(r->z) <= limit);
  return sl_zmtp_get_stage(r->z) != SL_ZMTP_STAGE_DEAD;
}

/* Feeds data in chunks of `chunk`, bodies zero-copy when asked. */
static void feed_chunked(run *r, int ctl, const uint8_t *data, size_t size,
                         size_t chunk) {
  size_t off = 0;
  for (;;) {
    uint8_t *dst;
    size_t room = (ctl & 0x04) ? sl_zmtp_body_space(r->z, chunk, &dst) : 0;
    sl_zmtp_kind k;
    if (room > 0) {
      FUZZ_CHECK(room <= chunk);
      size_t n = size - off < room ? size - off : room;
      if (n == 0) return;
      memcpy(dst, data + off, n);
      off += n;
      k = sl_zmtp_body_done(r->z, n);
    } else {
      size_t n = size - off < chunk ? size - off : chunk, used = 0;
      /* A borrowed message points into this copy: it must be whole in
      ** it, and nothing may point into it after the next feed. */
      uint8_t *copy = malloc(n + 1);
      FUZZ_CHECK(copy != NULL);
      memcpy(copy, data + off, n);
      k = sl_zmtp_feed(r->z, copy, n, &used);
      FUZZ_CHECK(used <= n);
      FUZZ_CHECK(k != SL_ZMTP_NONE || used == n);
      off += used;
      int live = k != SL_ZMTP_NONE && take_event(r, ctl, off, 1);
      memset(copy, 0xee, n + 1);
      free(copy);
      if (k == SL_ZMTP_NONE && off == size) return;
      if (k != SL_ZMTP_NONE && !live) return;
      continue;
    }
    if (k != SL_ZMTP_NONE && !take_event(r, ctl, off, 1)) return;
  }
}

static void feed_whole(run *r, int ctl, const uint8_t *data, size_t size) {
  size_t off = 0;
  for (;;) {
    size_t used = 0;
    sl_zmtp_kind k = sl_zmtp_feed(r->z, data + off, size - off, &used);
    FUZZ_CHECK(used <= size - off);
    off += used;
    if (k == SL_ZMTP_NONE) return;
    if (!take_event(r, ctl, off, 0)) return;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  int ctl = data[0];
  size_t chunk = 1 + (size_t)data[1];
  data += 2;
  size -= 2;
  sl_zmtp_config cfg = {(ctl & 1) ? SL_ZMTP_PULL : SL_ZMTP_PUSH, 0, 0};
  if (ctl & 0x02) {
    cfg.max_msg_size = 1000;
    cfg.max_parts = 4;
  }
  run a = {sl_zmtp_new(&cfg), cfg, 0, 0}, b = {sl_zmtp_new(&cfg), cfg, 0, 0};
  FUZZ_CHECK(a.z != NULL && b.z != NULL);
  if (cfg.max_msg_size == 0) a.cfg.max_msg_size = b.cfg.max_msg_size = SL_ZMTP_DEFAULT_MAX_MSG;
  if (cfg.max_parts == 0) a.cfg.max_parts = b.cfg.max_parts = SL_ZMTP_DEFAULT_MAX_PARTS;
  const uint8_t *out;
  FUZZ_CHECK(sl_zmtp_output(a.z, &out) == SL_ZMTP_GREETING_SIZE + SL_ZMTP_READY_SIZE);
  if (ctl & 0x20) sl_zmtp_set_borrow(a.z, 300);
  feed_chunked(&a, ctl, data, size, chunk);
  feed_whole(&b, ctl, data, size);
  FUZZ_CHECK(a.events == b.events);
  FUZZ_CHECK(a.digest == b.digest);
  FUZZ_CHECK(sl_zmtp_get_stage(a.z) == sl_zmtp_get_stage(b.z));
  sl_zmtp_trim(a.z);
  sl_zmtp_free(a.z);
  sl_zmtp_free(b.z);
  return 0;
}
