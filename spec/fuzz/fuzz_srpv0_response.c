/*
** Fuzzes SrpV0's response parsing (src/protocols/srpv0.c): transactions
** go out as requests, and fuzzed frames come back as responses.
**
** Input: records, at most 32, each starting with a byte whose low bit
** says which kind:
**   even: a transaction: type byte (read, write, post, verify, or an
**         unknown type), size (LE16), address (LE32)
**   odd:  a response: length (LE16), frame error byte, a patch byte, then
**         that many bytes (cut at the end of the input). Patch bit 0 puts
**         the id of a request sent (bits 7:2 pick which) into W0, bit 1
**         that request's W1 too, so that responses reach the judging.
**
** Invariants: every response is counted once; one that answers no waiting
** transaction, or that sl_srpv0_judge calls a length or header mismatch,
** is a drop and leaves the table as it was; otherwise its transaction
** completes, with success exactly when the judge says so (then read data
** is the frame's bytes 8..), and leaves the table; after stop every
** transaction is complete.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "streamlua/master.h"
#include "streamlua/memory.h"
#include "streamlua/srp.h"

#define MAX_RECORDS 32
#define MAX_FRAME 4096

typedef struct sent {
  sl_transaction *t;
  uint32_t w1;                 /* the request's W1, if framed */
  int framed;
} sent;

static const uint32_t types[] = {SL_MEM_READ, SL_MEM_WRITE, SL_MEM_POST,
                                 SL_MEM_VERIFY, 0x55};

/* Sends one transaction; checks what went out. */
static void transact(sl_object *srp, fuzz_capture *cap, const uint8_t *d, sent *e) {
  static uint8_t wdata[SL_SRPV0_MAX_ACCESS + 4];
  uint32_t type = types[d[1] % 5];
  uint32_t tsize = sl_load_le16(d + 2);
  uint64_t addr = sl_load_le32(d + 4);
  if (tsize > SL_SRPV0_MAX_ACCESS + 4) tsize = SL_SRPV0_MAX_ACCESS + 4;
  for (uint32_t i = 0; i < tsize; i++) wdata[i] = (uint8_t)(i * d[0] + 7);
  sl_transaction *t = sl_transaction_new(addr, tsize, type, wdata, 1000000u);
  FUZZ_CHECK(t != NULL);
  size_t before = cap->n, pend = sl_srpv0_pending(sl_srpv0_from_object(srp));
  sl_mem_slave_do_transaction(srp->mem_slave, t);
  int ok = type != 0x55 && addr % 4 == 0 && tsize % 4 == 0 && tsize >= 4 &&
           tsize <= SL_SRPV0_MAX_ACCESS;
  int write = sl_mem_type_is_write(type);
  FUZZ_CHECK(cap->n == before + (ok ? 1 : 0));
  FUZZ_CHECK(ok || sl_transaction_failed(t));
  FUZZ_CHECK(sl_srpv0_pending(sl_srpv0_from_object(srp)) ==
             pend + (ok && type != SL_MEM_POST ? 1 : 0));
  if (ok && type == SL_MEM_POST) FUZZ_CHECK(sl_transaction_is_done(t) && !sl_transaction_failed(t));
  e->t = t;
  e->framed = ok;
  if (ok) {
    const fuzz_frame *r = &cap->frames[cap->n - 1];
    static uint8_t want[SL_SRPV0_MAX_ACCESS + 16];
    uint32_t n = sl_srpv0_encode(want, write, sl_transaction_id(t), addr, tsize, wdata);
    FUZZ_CHECK(r->len == n && memcmp(cap->bytes + r->off, want, n) == 0);
    e->w1 = sl_load_le32(want + 4);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) fuzz_quiet();
  quiet = 1;
  sl_object *srp = sl_srpv0_object(sl_srpv0_new(NULL));
  sl_object *src = sl_master_new(NULL);
  fuzz_capture *cap = fuzz_capture_new();
  FUZZ_CHECK(srp != NULL && src != NULL);
  sl_master_add_slave(srp->master, &cap->slave);
  sl_master_add_slave(src->master, srp->slave);
  sent s[MAX_RECORDS];
  size_t ns = 0;
  static uint8_t frame[MAX_FRAME];
  uint64_t rx = 0;
  for (int rec = 0; rec < MAX_RECORDS && size >= 1; rec++) {
    if (!(data[0] & 1)) {                        /* a transaction */
      if (size < 8) break;
      transact(srp, cap, data, &s[ns++]);
      data += 8;
      size -= 8;
      continue;
    }
    if (size < 5) break;                          /* a response */
    uint32_t len = sl_load_le16(data + 1);
    uint8_t ferr = data[3], patch = data[4];
    data += 5;
    size -= 5;
    if (len > MAX_FRAME) len = MAX_FRAME;
    uint32_t have = len < size ? len : (uint32_t)size;
    memset(frame, 0, len);
    memcpy(frame, data, have);
    data += have;
    size -= have;
    if ((patch & 3) && ns > 0) {
      sent *e = &s[(patch >> 2) % ns];
      if (len >= 4) sl_store_le32(frame, sl_transaction_id(e->t));
      if ((patch & 2) && len >= 8) sl_store_le32(frame + 4, e->w1);
    }
    /* which transaction it answers, if any, before it is sent */
    sent *match = NULL;
    if (len >= SL_SRPV0_MIN_RESPONSE && ferr == 0)
      for (size_t i = 0; i < ns; i++)
        if (s[i].framed && sl_transaction_id(s[i].t) == sl_load_le32(frame) &&
            !sl_transaction_is_done(s[i].t))
          match = &s[i];
    char err[256];
    int verdict = -1;
    if (match != NULL)
      verdict = sl_srpv0_judge(sl_transaction_id(match->t), match->w1,
                               sl_transaction_size(match->t), frame,
                               sl_load_le32(frame + len - 4), len, err, sizeof err);
    uint64_t d0 = fuzz_counter(srp, "drops");
    size_t pend = sl_srpv0_pending(sl_srpv0_from_object(srp));
    fuzz_send(src->master, frame, len, ferr);
    rx++;
    FUZZ_CHECK(fuzz_counter(srp, "rxFrames") == rx);
    if (match == NULL || verdict == SL_SRPV0_BAD_LENGTH || verdict == SL_SRPV0_BAD_HEADER) {
      FUZZ_CHECK(fuzz_counter(srp, "drops") == d0 + 1);
      FUZZ_CHECK(sl_srpv0_pending(sl_srpv0_from_object(srp)) == pend);
      FUZZ_CHECK(match == NULL || !sl_transaction_is_done(match->t));
      continue;
    }
    FUZZ_CHECK(fuzz_counter(srp, "drops") == d0);
    FUZZ_CHECK(sl_srpv0_pending(sl_srpv0_from_object(srp)) == pend - 1);
    FUZZ_CHECK(sl_transaction_is_done(match->t));
    FUZZ_CHECK((verdict == SL_SRPV0_OK) == !sl_transaction_failed(match->t));
    uint32_t tsize = sl_transaction_size(match->t);
    if (verdict == SL_SRPV0_OK && !sl_mem_type_is_write(sl_transaction_type(match->t)))
      FUZZ_CHECK(memcmp(sl_transaction_data(match->t), frame + 8, tsize) == 0);
    if (verdict != SL_SRPV0_OK) {
      char got[256];
      sl_transaction_get_error(match->t, got, sizeof got);
      FUZZ_CHECK(strcmp(got, err) == 0);
    }
  }
  sl_object_stop(srp);
  FUZZ_CHECK(sl_srpv0_pending(sl_srpv0_from_object(srp)) == 0);
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
