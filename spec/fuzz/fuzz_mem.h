/*
** fuzz_mem.h: what the two memory bridge harnesses share. The bytes of an
** input are what the peer sends once the ZMTP handshake is done: they go
** through a receiving (PULL) session configured as the bridge configures
** its own, and each message is handed to a decoder, as the bridge's I/O
** thread does. A message the bridge would close the connection for ends
** the input.
*/
#ifndef STREAMLUA_FUZZ_MEM_H_INCLUDED_
#define STREAMLUA_FUZZ_MEM_H_INCLUDED_

#include "fuzz.h"
#include "mem_internal.h"
#include "streamlua/zmtp.h"

typedef const char *(*fuzz_mem_decoder)(const sl_zmtp_event *ev, mb_msg *m);

/* A receiving session as the bridge opens one, past the handshake. */
static sl_zmtp *fuzz_mem_session(void) {
  sl_zmtp_config cfg = {SL_ZMTP_PULL, MAX_MSG, 8};
  sl_zmtp *z = sl_zmtp_new(&cfg);
  FUZZ_CHECK(z != NULL);
  uint8_t hs[SL_ZMTP_GREETING_SIZE + SL_ZMTP_READY_SIZE];
  sl_zmtp_greeting(hs);
  sl_zmtp_ready(SL_ZMTP_PUSH, hs + SL_ZMTP_GREETING_SIZE);
  size_t off = 0;
  while (off < sizeof hs) {
    size_t used = 0;
    sl_zmtp_feed(z, hs + off, sizeof hs - off, &used);
    off += used;
    sl_zmtp_event ev;
    sl_zmtp_pop(z, &ev);
  }
  FUZZ_CHECK(sl_zmtp_get_stage(z) == SL_ZMTP_STAGE_OPEN);
  return z;
}

/*
** Feeds the peer's bytes; each message goes to check(ev, fed), which
** returns 0 when the bridge would close the connection. Returns the
** number of messages.
*/
static size_t fuzz_mem_feed(const uint8_t *data, size_t size,
                            int (*check)(const sl_zmtp_event *ev, size_t fed)) {
  sl_zmtp *z = fuzz_mem_session();
  size_t off = 0, n = 0;
  for (;;) {
    size_t used = 0;
    sl_zmtp_kind k = sl_zmtp_feed(z, data + off, size - off, &used);
    off += used;
    sl_zmtp_event ev;
    if (k == SL_ZMTP_NONE || !sl_zmtp_pop(z, &ev)) break;
    if (ev.kind == SL_ZMTP_FATAL || ev.kind == SL_ZMTP_PEER_ERROR) break;
    if (ev.kind != SL_ZMTP_MESSAGE) continue;
    FUZZ_CHECK(ev.size <= off);
    n++;
    if (!check(&ev, off)) break;
  }
  sl_zmtp_free(z);
  return n;
}

/* Encoded bytes decoded again by `decode`: 1 if it took them. */
static int fuzz_mem_decode_again(const uint8_t *msg, size_t len,
                                 fuzz_mem_decoder decode, mb_msg *out,
                                 uint8_t **keep) {
  sl_zmtp *z = fuzz_mem_session();
  size_t used = 0;
  int ok = 0;
  sl_zmtp_event ev;
  if (sl_zmtp_feed(z, msg, len, &used) == SL_ZMTP_MESSAGE && used == len &&
      sl_zmtp_pop(z, &ev) && decode(&ev, out) == NULL) {
    /* the decoded pointers point into the session: keep a copy */
    *keep = malloc(ev.size + 1);
    FUZZ_CHECK(*keep != NULL);
    size_t at = 0;
    for (size_t i = 0; i < ev.nparts; i++) {
      memcpy(*keep + at, ev.parts[i].data, ev.parts[i].size);
      if (out->data == ev.parts[i].data) out->data = *keep + at;
      if (out->result == ev.parts[i].data) out->result = *keep + at;
      at += ev.parts[i].size;
    }
    ok = 1;
  }
  sl_zmtp_free(z);
  return ok;
}

/* The two decodings say the same. */
static void fuzz_mem_same(const mb_msg *a, const mb_msg *b) {
  FUZZ_CHECK(a->id == b->id && a->addr == b->addr && a->size == b->size &&
             a->type == b->type);
  FUZZ_CHECK(a->dlen == b->dlen && a->rlen == b->rlen);
  FUZZ_CHECK((a->data == NULL) == (b->data == NULL));
  if (a->dlen > 0) FUZZ_CHECK(memcmp(a->data, b->data, a->dlen) == 0);
  if (a->rlen > 0) FUZZ_CHECK(memcmp(a->result, b->result, a->rlen) == 0);
}

/* m encoded again (with its `n` extra parts) decodes by `decode` to the
** same message. */
static void fuzz_mem_round_trip(const mb_msg *m, const sl_zmtp_part *extra,
                                size_t n, fuzz_mem_decoder decode) {
  size_t len = 0;
  uint8_t *msg = mb_encode(m->id, m->addr, m->size, m->type, extra, n, &len);
  FUZZ_CHECK(msg != NULL);
  mb_msg again;
  uint8_t *keep = NULL;
  FUZZ_CHECK(fuzz_mem_decode_again(msg, len, decode, &again, &keep));
  fuzz_mem_same(m, &again);
  free(keep);
  free(msg);
}

#endif
