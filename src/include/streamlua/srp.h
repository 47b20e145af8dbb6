/*
** SRP: the SLAC Register Protocol over a stream, versions 3 and 0.
**
** SrpV3 is the bridge from the register bus to a stream: a memory slave
** on one side (transactions in), a stream master and slave on the other
** (request frames out, response frames in). Any number of requests may be
** in flight; a response is matched to its transaction by the transaction
** id (W1). SrpV0 is the same bridge for version 0 (its layout is below,
** with its helpers). SrpV3Emulation plays the firmware: a stream master and slave
** that answers requests from a sparse memory, on its own thread.
**
** Request (all words LE32):
**   W0  bits 7:0 version 3, bits 9:8 opcode (0 read, 1 write, 2 posted
**       write), bits 31:24 hardware timeout count
**   W1  transaction id      W2/W3 address bits 31:0 / 63:32
**   W4  size - 1            then the data for writes and posts
** Response: W0..W4 echoed (W0 bits 13:10 may carry capability flags),
** the data (read data, or the written data echoed), then a LE32 footer.
** Posted writes get no response.
**
** Ownership: the nodes are reference counted sl_objects. SrpV3 (and SrpV0) keeps a
** reference on each transaction in flight until its response comes, it
** is stopped, or the entry is swept a while after its timeout.
** Thread safety: everything here may be called from any thread; the
** encode/decode helpers are pure functions.
*/
#ifndef STREAMLUA_SRP_H_INCLUDED_
#define STREAMLUA_SRP_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#include "memory.h"
#include "object.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

#define SL_SRPV3_VERSION 0x03u
#define SL_SRPV3_HEADER 20u              /* W0..W4 */
#define SL_SRPV3_MIN_RESPONSE 24u        /* header + footer */
#define SL_SRPV3_MIN_ACCESS 4u
#define SL_SRPV3_MAX_ACCESS 4096u
#define SL_SRPV3_DEFAULT_HW_TIMEOUT 0x0Au

/* Opcodes (W0 bits 9:8). */
enum {
  SL_SRPV3_OP_READ = 0,
  SL_SRPV3_OP_WRITE = 1,
  SL_SRPV3_OP_POST = 2,
  SL_SRPV3_OP_NULL = 3
};

/* Footer bits, as surf's SrpV3AxiLite sets them. */
#define SL_SRPV3_FOOTER_TIMEOUT 0x100u   /* bit 8: hardware timer expired */
#define SL_SRPV3_FOOTER_LOCKUP 0x2000u   /* bit 13: bus lockup (Rogue's reading) */

/* ---- pure helpers: encoding and decoding ---- */

/* The opcode for a transaction type; -1 for an unknown type. */
int sl_srpv3_opcode(uint32_t type);

/* Checks Rogue makes before it sends anything. Returns 0 when the
** request may go, else -1 with the error text in err (n > 0). */
int sl_srpv3_check(uint64_t address, uint32_t size, char *err, size_t n);

/* Fills the five header words of a request. */
void sl_srpv3_header(uint32_t hdr[5], uint32_t opcode, uint32_t tid,
                     uint64_t address, uint32_t size, uint8_t hw_timeout);

/* Writes a whole request into out (20 bytes, plus size bytes of data for
** a write or post); returns its length. `data` is read only for those. */
uint32_t sl_srpv3_encode(uint8_t *out, uint32_t opcode, uint32_t tid,
                         uint64_t address, uint32_t size, uint8_t hw_timeout,
                         const uint8_t *data);

/* Splits a response of len bytes into its header words and footer.
** Returns -1 (nothing read) when it is shorter than 24 bytes. */
int sl_srpv3_parse(const uint8_t *frame, uint32_t len, uint32_t hdr[5],
                   uint32_t *footer);

/* The text Rogue gives a non-zero footer (lockup, timeout, or the
** status in hex); returns its length. */
size_t sl_srpv3_footer_text(uint32_t footer, char *buf, size_t n);

/* Judges a response (header, footer, total length) against the request
** it answers (its expected header words and size), in Rogue's order:
** header mismatch, footer, then length. Returns 0 when the response is
** good (for a read the data is at offset 20), else -1 with the error
** text in err. */
int sl_srpv3_judge(const uint32_t expect[5], uint32_t size,
                   const uint32_t hdr[5], uint32_t footer, uint32_t len,
                   char *err, size_t n);

/* ---- SrpV3 ---- */

/* SrpV3(): memory slave (min 4, max 4096), stream master and slave
** (kind "srp.SrpV3"), refs = 1. NULL (err says why) when out of memory. */
typedef struct sl_srpv3 sl_srpv3;
sl_srpv3 *sl_srpv3_new(sl_error *err);
sl_object *sl_srpv3_object(sl_srpv3 *srp);        /* (transfer none); NULL-safe */
sl_srpv3 *sl_srpv3_from_object(sl_object *obj);   /* NULL if not a SrpV3 */

/* The hardware timeout byte of future requests (default 0x0A). */
void sl_srpv3_set_hw_timeout(sl_srpv3 *srp, uint8_t ticks);
uint8_t sl_srpv3_get_hw_timeout(sl_srpv3 *srp);

/* Requests waiting for their response. */
size_t sl_srpv3_pending(sl_srpv3 *srp);

/* ---- SRPv0 ----
**
** Request (all words LE32):
**   read/verify   W0 transaction id; W1 opcode 0 (bits 31:30) | address
**                 >> 2 (bits 29:0; address bits above 31 are lost, as in
**                 Rogue); W2 size/4 - 1; W3 0                   16 bytes
**   write/post    W0 id; W1 0x40000000 | address >> 2; the data; one
**                 word 0                                   12 + size bytes
** Response, reads and writes alike: W0 id, W1 echoed, size bytes (read
** data, or the written data echoed), then a status word: 12 + size bytes.
** Posted writes get no response.
*/
#define SL_SRPV0_MIN_ACCESS 4u
#define SL_SRPV0_MAX_ACCESS 2048u
#define SL_SRPV0_MIN_RESPONSE 16u        /* shorter responses are dropped */
#define SL_SRPV0_WRITE 0x40000000u       /* W1 opcode bits of a write */
#define SL_SRPV0_STATUS_TIMEOUT 0x20000u /* bit 17: AXI bus timeout */
#define SL_SRPV0_STATUS_FAIL 0x10000u    /* bit 16: AXI bus fail status */

/* What sl_srpv0_judge says of a response. */
enum {
  SL_SRPV0_OK = 0,
  SL_SRPV0_BAD_LENGTH,   /* not 12 + size bytes: dropped, the request waits */
  SL_SRPV0_BAD_HEADER,   /* W0/W1 not the request's: dropped, likewise */
  SL_SRPV0_STATUS        /* non-zero status: the transaction fails */
};

/* Rogue's checks (max 2048), as sl_srpv3_check. */
int sl_srpv0_check(uint64_t address, uint32_t size, char *err, size_t n);

/* W1 of a request. */
uint32_t sl_srpv0_word1(int write, uint64_t address);

/* Writes a whole request into out (16 bytes for a read, 12 + size for a
** write, `data` read only then); returns its length. */
uint32_t sl_srpv0_encode(uint8_t *out, int write, uint32_t tid,
                         uint64_t address, uint32_t size, const uint8_t *data);

/* The text of a non-zero status (bit 17, bit 16, or the value in hex);
** returns its length. */
size_t sl_srpv0_status_text(uint32_t status, char *buf, size_t n);

/* Judges a response of len bytes, its first 8 bytes `head` and its last
** word `status`, against the request (tid, its W1, size), in Rogue's
** order: length, header, status. Returns SL_SRPV0_OK (read data at
** offset 8) or why not, with the text in err. */
int sl_srpv0_judge(uint32_t tid, uint32_t w1, uint32_t size, const uint8_t head[8],
                   uint32_t status, uint32_t len, char *err, size_t n);

/* SrpV0(): memory slave (min 4, max 2048), stream master and slave (kind
** "srp.SrpV0"), refs = 1; responses are matched by id, as SrpV3's. NULL
** (err says why) when out of memory. */
typedef struct sl_srpv0 sl_srpv0;
sl_srpv0 *sl_srpv0_new(sl_error *err);
sl_object *sl_srpv0_object(sl_srpv0 *srp);        /* (transfer none); NULL-safe */
sl_srpv0 *sl_srpv0_from_object(sl_object *obj);   /* NULL if not a SrpV0 */
/* Requests waiting for their response. */
size_t sl_srpv0_pending(sl_srpv0 *srp);

/* ---- SrpV3Emulation ---- */

/* SrpV3Emulation(): stream master and slave (kind "srp.SrpV3Emulation")
** that answers each request in the sender's thread, before accepting it
** returns; unwritten memory reads as zero. After sl_object_stop requests
** are dropped (counted). refs = 1; NULL (err says why) when out of
** memory. */
typedef struct sl_srpv3_emulation sl_srpv3_emulation;
sl_srpv3_emulation *sl_srpv3_emulation_new(sl_error *err);
/* (transfer none); NULL-safe */
sl_object *sl_srpv3_emulation_object(sl_srpv3_emulation *emu);
/* NULL if not a SrpV3Emulation */
sl_srpv3_emulation *sl_srpv3_emulation_from_object(sl_object *obj);

#pragma GCC visibility pop

#endif
