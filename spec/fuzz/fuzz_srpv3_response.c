/*
** Fuzzes SrpV3's response parsing (src/protocols/srpv3.c): transactions
** go out as requests, and fuzzed frames come back as responses.
**
** Input: records, at most 32, each starting with a byte whose low bit
** says which kind:
**   even: a transaction: type byte (read, write, post, verify, or an
**         unknown type), size (LE16), address (LE32); write data is the
**         byte pattern of the record's bytes
**   odd:  a response: length (LE16), frame error byte, a patch byte, then
**         that many bytes (cut at the end of the input). Patch bit 0 puts
**         the id of a request sent (bits 7:2 pick which) into W1, bit 1 its
**         other header words too, so that responses reach the judging.
**
** Invariants: every response is counted once, as a drop (short, unknown
** or late) or as matched; a matched transaction completes with success
** exactly when sl_srpv3_judge accepts the frame against its request, and
** then read data is the frame's bytes 20..; the pending table shrinks by
** the matched ones; after stop every transaction is complete.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "streamlua/master.h"
#include "streamlua/memory.h"
#include "streamlua/srp.h"

#define MAX_RECORDS 32
#define MAX_FRAME 8192

typedef struct sent {
  sl_transaction *t;
  uint32_t hdr[5];             /* the request's header words, if framed */
  int framed;
} sent;

static const uint32_t types[] = {SL_MEM_READ, SL_MEM_WRITE, SL_MEM_POST,
                                 SL_MEM_VERIFY, 0x55};

static uint64_t drops_now(sl_object *o) { return fuzz_counter(o, "drops"); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) fuzz_quiet();
  quiet = 1;
  sl_object *srp = sl_srpv3_object(sl_srpv3_new(NULL));
  sl_object *src = sl_master_new(NULL);
  fuzz_capture *cap = fuzz_capture_new();
  FUZZ_CHECK(srp != NULL && src != NULL);
  sl_master_add_slave(srp->master, &cap->slave);
  sl_master_add_slave(src->master, srp->slave);
  sent s[MAX_RECORDS];
  size_t ns = 0;
  static uint8_t frame[MAX_FRAME], wdata[SL_SRPV3_MAX_ACCESS + 4];
  uint64_t rx = 0;
  for (int rec = 0; rec < MAX_RECORDS && size >= 1; rec++) {
    uint8_t kind = data[0];
    if (!(kind & 1)) {                           /* a transaction */
      if (size < 8) break;
      uint32_t type = types[data[1] % 5];
      uint32_t tsize = sl_load_le16(data + 2);
      uint64_t addr = sl_load_le32(data + 4);
      for (uint32_t i = 0; i < tsize && i < sizeof wdata; i++) wdata[i] = (uint8_t)(i * kind + 7);
      data += 8;
      size -= 8;
      if (tsize > SL_SRPV3_MAX_ACCESS + 4) tsize = SL_SRPV3_MAX_ACCESS + 4;
      sl_transaction *t = sl_transaction_new(addr, tsize, type, wdata, 1000000u);
      FUZZ_CHECK(t != NULL);
      size_t before = cap->n;
      size_t pend = sl_srpv3_pending(sl_srpv3_from_object(srp));
      sl_mem_slave_do_transaction(srp->mem_slave, t);
      int ok_req = sl_srpv3_opcode(type) >= 0 && addr % 4 == 0 && tsize % 4 == 0 &&
                   tsize >= 4 && tsize <= SL_SRPV3_MAX_ACCESS;
      FUZZ_CHECK(cap->n == before + (ok_req ? 1 : 0));
      FUZZ_CHECK(ok_req || sl_transaction_failed(t));
      FUZZ_CHECK(sl_srpv3_pending(sl_srpv3_from_object(srp)) ==
                 pend + (ok_req && type != SL_MEM_POST ? 1 : 0));
      if (type == SL_MEM_POST && ok_req) FUZZ_CHECK(sl_transaction_is_done(t) && !sl_transaction_failed(t));
      sent *e = &s[ns++];
      e->t = t;
      e->framed = ok_req;
      if (ok_req) {
        const fuzz_frame *r = &cap->frames[cap->n - 1];
        FUZZ_CHECK(r->len == SL_SRPV3_HEADER + (type == SL_MEM_READ || type == SL_MEM_VERIFY ? 0 : tsize));
        for (int i = 0; i < 5; i++) e->hdr[i] = sl_load_le32(cap->bytes + r->off + 4 * i);
        FUZZ_CHECK(e->hdr[1] == sl_transaction_id(t));
      }
      continue;
    }
    if (size < 5) break;                          /* a response */
    uint32_t len = sl_load_le16(data + 1);
    uint8_t ferr = data[3], patch = data[4];
    data += 5;
    size -= 5;
    uint32_t have = len < size ? len : (uint32_t)size;
    if (len > MAX_FRAME) len = MAX_FRAME;
    if (have > len) have = len;
    memset(frame, 0, len);
    memcpy(frame, data, have);
    data += have;
    size -= have;
    sent *e = NULL;
    if ((patch & 3) && ns > 0) {
      e = &s[(patch >> 2) % ns];
      for (int i = 0; i < 5; i++) {
        if ((i == 1 || (patch & 2)) && 4 * (uint32_t)i + 4 <= len)
          sl_store_le32(frame + 4 * i, i == 1 ? sl_transaction_id(e->t) : e->hdr[i]);
      }
    }
    /* which transaction it answers, if any, before it is sent */
    sent *match = NULL;
    uint32_t hdr[5], footer = 0;
    int parsed = sl_srpv3_parse(frame, len, hdr, &footer) == 0;
    if (parsed && ferr == 0)
      for (size_t i = 0; i < ns; i++)
        if (s[i].framed && sl_transaction_id(s[i].t) == hdr[1] &&
            !sl_transaction_is_done(s[i].t))
          match = &s[i];
    uint64_t d0 = drops_now(srp);
    size_t pend = sl_srpv3_pending(sl_srpv3_from_object(srp));
    fuzz_send(src->master, frame, len, ferr);
    rx++;
    FUZZ_CHECK(fuzz_counter(srp, "rxFrames") == rx);
    if (match == NULL) {
      FUZZ_CHECK(drops_now(srp) == d0 + 1);
      FUZZ_CHECK(sl_srpv3_pending(sl_srpv3_from_object(srp)) == pend);
      continue;
    }
    FUZZ_CHECK(drops_now(srp) == d0);
    FUZZ_CHECK(sl_srpv3_pending(sl_srpv3_from_object(srp)) == pend - 1);
    FUZZ_CHECK(sl_transaction_is_done(match->t));
    char err[256];
    uint32_t tsize = sl_transaction_size(match->t);
    int good = sl_srpv3_judge(match->hdr, tsize, hdr, footer, len, err, sizeof err) == 0;
    FUZZ_CHECK(good == !sl_transaction_failed(match->t));
    if (good) {
      FUZZ_CHECK(len == SL_SRPV3_MIN_RESPONSE + tsize && footer == 0);
      if (!sl_mem_type_is_write(sl_transaction_type(match->t)))
        FUZZ_CHECK(memcmp(sl_transaction_data(match->t), frame + SL_SRPV3_HEADER, tsize) == 0);
    } else {
      char got[256];
      sl_transaction_get_error(match->t, got, sizeof got);
      FUZZ_CHECK(strcmp(got, err) == 0);
    }
  }
  sl_object_stop(srp);
  FUZZ_CHECK(sl_srpv3_pending(sl_srpv3_from_object(srp)) == 0);
  for (size_t i = 0; i < ns; i++) {
    FUZZ_CHECK(sl_transaction_is_done(s[i].t));
    sl_transaction_unref(s[i].t);
  }
  sl_master_clear_slaves(src->master);
  sl_master_clear_slaves(srp->master);
  sl_object_unref(src);
  sl_object_unref(srp);
  sl_object_unref(&cap->obj);
  return 0;
}
