/*
** Fuzzes SrpV3Emulation's request parsing (src/protocols/srpv3_emulation.c)
** with request frames, each served against a fresh sparse memory.
**
** Input: records of a 2-byte length L (LE), a frame error byte, then L
** bytes of frame (cut at the end of the input); at most 32 records.
**
** Invariants: a request is answered exactly when it is valid (no frame
** error, version 3, opcode read or write, size 4..4096 in words, a write's
** data all there), counted as a drop exactly when it is not, and neither
** for a valid posted write; an answer echoes the header, carries size
** bytes and a zero footer; read data is what earlier writes (and posts)
** in the same input left there, zeros elsewhere.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "streamlua/master.h"
#include "streamlua/srp.h"

#define MAX_RECORDS 32

typedef struct written {
  uint64_t addr;
  uint32_t size;
  const uint8_t *data;
} written;

/* What the memory holds at addr after the writes so far (addresses wrap). */
static uint8_t shadow(const written *w, size_t nw, uint64_t addr) {
  uint8_t v = 0;
  for (size_t i = 0; i < nw; i++)
    if (addr - w[i].addr < w[i].size) v = w[i].data[addr - w[i].addr];
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) fuzz_quiet();
  quiet = 1;
  sl_object *emu = sl_srpv3_emulation_object(sl_srpv3_emulation_new(NULL));
  sl_object *src = sl_master_new(NULL);
  fuzz_capture *cap = fuzz_capture_new();
  FUZZ_CHECK(emu != NULL && src != NULL);
  sl_master_add_slave(src->master, emu->slave);
  sl_master_add_slave(emu->master, &cap->slave);
  written w[MAX_RECORDS];
  size_t nw = 0;
  uint64_t drops = 0;
  for (int rec = 0; rec < MAX_RECORDS && size >= 3; rec++) {
    uint32_t len = sl_load_le16(data);
    uint8_t ferr = data[2];
    data += 3;
    size -= 3;
    if (len > size) len = (uint32_t)size;
    const uint8_t *f = data;
    data += len;
    size -= len;
    size_t before = cap->n;
    fuzz_send(src->master, f, len, ferr);
    /* the model */
    uint32_t w0 = len >= 4 ? sl_load_le32(f) : 0, op = (w0 >> 8) & 3;
    uint32_t rsize = len >= 20 ? sl_load_le32(f + 16) + 1 : 0;
    int wr = op == SL_SRPV3_OP_WRITE || op == SL_SRPV3_OP_POST;
    int valid = ferr == 0 && len >= SL_SRPV3_HEADER && (w0 & 0xFF) == SL_SRPV3_VERSION &&
                op != SL_SRPV3_OP_NULL && rsize >= 4 && rsize <= SL_SRPV3_MAX_ACCESS &&
                rsize % 4 == 0 && (!wr || len >= SL_SRPV3_HEADER + rsize);
    if (!valid) drops++;
    FUZZ_CHECK(fuzz_counter(emu, "drops") == drops);
    FUZZ_CHECK(fuzz_counter(emu, "rxFrames") == (uint64_t)rec + 1);
    int answered = valid && op != SL_SRPV3_OP_POST;
    FUZZ_CHECK(cap->n == before + (answered ? 1 : 0));
    uint64_t addr = valid ? sl_load_le64(f + 8) : 0;
    if (answered) {
      const fuzz_frame *r = &cap->frames[cap->n - 1];
      const uint8_t *rb = cap->bytes + r->off;
      FUZZ_CHECK(r->len == SL_SRPV3_MIN_RESPONSE + rsize && r->error == 0);
      FUZZ_CHECK(memcmp(rb, f, SL_SRPV3_HEADER) == 0);
      FUZZ_CHECK(sl_load_le32(rb + r->len - 4) == 0);
      for (uint32_t i = 0; i < rsize; i++) {
        uint8_t want = wr ? f[SL_SRPV3_HEADER + i] : shadow(w, nw, addr + i);
        FUZZ_CHECK(rb[SL_SRPV3_HEADER + i] == want);
      }
    }
    if (valid && wr) w[nw++] = (written){addr, rsize, f + SL_SRPV3_HEADER};
  }
  sl_object_stop(emu);
  sl_master_clear_slaves(src->master);
  sl_master_clear_slaves(emu->master);
  sl_object_unref(src);
  sl_object_unref(emu);
  sl_object_unref(&cap->obj);
  return 0;
}
