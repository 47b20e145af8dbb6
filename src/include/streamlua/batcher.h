/*
** The AXI-stream batcher: a firmware batcher packs several AXI-stream
** frames ("records") into one super-frame; these nodes take them apart
** and build them.
**
** Formats (sizes LE32; W = AXI width in bytes = 2 << width code, 0..5):
**   v1  header W bytes: byte 0 = version 1 | width code << 4, byte 1 =
**       sequence, the rest 0. Each record: data, zero padding to a
**       multiple of W, tail of max(W, 8) bytes: size, tDest, tUserFirst,
**       tUserLast, width code, then zeros.
**   v2  header 2 bytes: version 2, sequence. Each record: data, tail of 7
**       bytes: size, tDest, tUserFirst, tUserLast.
** Records are found from the end of the super-frame, tail by tail, and
** reported in frame order. Any error drops the whole super-frame: an
** errored frame, one too short, a bad version or width, a tail or record
** that does not fit, and (unlike Rogue, which crashes on it) a record of
** size 0.
**
**   SplitterV1/V2   stream master and slave: each record of a super-frame
**                   becomes a frame (channel = tDest, firstUser/lastUser
**                   = tUserFirst/tUserLast), sent in order.
**   InverterV1/V2   stream master and slave: rewrites the super-frame so
**                   each tail sits before its data (Rogue's layout and
**                   quirks: v1 only for width codes >= 2, v2 moves only
**                   the first 2 bytes of each tail) and sends it on. The
**                   frame is rewritten in place when the sender's is the
**                   only reference, else a copy is.
**   CombinerV1/V2   stream slave and master: queues every frame it gets
**                   (sl_batch_combiner_count) and builds one super-frame
**                   of them on sl_batch_combiner_send. The queue is
**                   bounded: a frame that would take the super-frame over
**                   its bound (SL_BATCH_COMBINER_MAX bytes unless set
**                   lower), or an empty one, is dropped, counted, logged.
**
** Loggers: "batcher.CoreV1"/"batcher.CoreV2" (parse errors),
** "batcher.CombinerV1"/"batcher.CombinerV2" (drops).
** Ownership: the nodes are reference counted sl_objects; the combiner
** holds a reference on each queued frame. Thread safety: every function
** may be called from any thread; the parse and encode helpers are pure.
*/
#ifndef STREAMLUA_BATCHER_H_INCLUDED_
#define STREAMLUA_BATCHER_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

#define SL_BATCH_MAX_WIDTH 5u                 /* width code: 64-byte beats */
#define SL_BATCH_V1_MIN 16u                   /* shorter v1 frames are dropped */
#define SL_BATCH_V2_MIN 10u                   /* and v2 ones */
#define SL_BATCH_V2_TAIL 7u
#define SL_BATCH_COMBINER_MAX (64u << 20)     /* bytes of one built super-frame */

/* Why a super-frame was refused (0: it was not). */
typedef enum sl_batch_error {
  SL_BATCH_OK = 0,
  SL_BATCH_ERRORED,        /* the frame's error byte is set */
  SL_BATCH_SHORT,          /* shorter than SL_BATCH_V1_MIN / V2_MIN */
  SL_BATCH_VERSION,        /* version nibble is not the parser's */
  SL_BATCH_WIDTH,          /* v1 width code above 5 */
  SL_BATCH_NO_ROOM,        /* a tail or a record does not fit */
  SL_BATCH_EMPTY,          /* a record of size 0 */
  SL_BATCH_NOMEM           /* out of memory for the record list */
} sl_batch_error;

/* One record of a super-frame. */
typedef struct sl_batch_record {
  uint32_t offset;         /* of its first data byte in the super-frame */
  uint32_t size;           /* data bytes, without padding */
  uint8_t dest, first_user, last_user;
} sl_batch_record;

/* A parsed super-frame. `records` is malloc'd (sl_batch_parsed_free). */
typedef struct sl_batch_parsed {
  int version;             /* 1 or 2 */
  uint8_t width;           /* v1 width code; 0 for v2 */
  uint8_t sequence;
  uint32_t header_size, tail_size;
  sl_batch_record *records;   /* in frame order */
  size_t count, cap;
} sl_batch_parsed;

/* ---- pure helpers: parsing and encoding ---- */

/* Header and tail sizes of a format: v1 W and max(W, 8), v2 2 and 7. */
uint32_t sl_batch_header_size(int version, uint8_t width);
uint32_t sl_batch_tail_size(int version, uint8_t width);
/* A record's data size rounded up to the beat (v1), as 64 bits: a size
** near 2^32 does not wrap. */
uint64_t sl_batch_padded(int version, uint8_t width, uint32_t size);

/* Parses len bytes as a super-frame of `version` (1 or 2). Returns
** SL_BATCH_OK and fills *out (records in frame order), or the reason with
** Rogue's text in err (n > 0) and out->count 0. *out must be zeroed or
** hold an earlier parse (its record array is reused). */
sl_batch_error sl_batch_parse(sl_batch_parsed *out, int version,
                              const uint8_t *bytes, uint32_t len, char *err,
                              size_t n);
/* The same on a frame's payload (the caller holds the frame lock); an
** errored frame is refused as SL_BATCH_ERRORED. */
sl_batch_error sl_batch_parse_frame(sl_batch_parsed *out, int version,
                                    const sl_frame *f, char *err, size_t n);
void sl_batch_parsed_free(sl_batch_parsed *p);

/* Writes a header (sl_batch_header_size bytes) / a tail (sl_batch_tail_size
** bytes) of the format into out; returns the bytes written. */
uint32_t sl_batch_put_header(uint8_t *out, int version, uint8_t width,
                             uint8_t sequence);
uint32_t sl_batch_put_tail(uint8_t *out, int version, uint8_t width,
                           const sl_batch_record *r);

/* ---- the nodes ---- */

typedef struct sl_batch_splitter sl_batch_splitter;
typedef struct sl_batch_inverter sl_batch_inverter;
typedef struct sl_batch_combiner sl_batch_combiner;

/* SplitterV<version>() (kind "batcher.SplitterV1"/"batcher.SplitterV2"),
** refs = 1. NULL (err says why): SL_EINVAL for a version other than 1 or
** 2, SL_ENOMEM. */
sl_batch_splitter *sl_batch_splitter_new(int version, sl_error *err);
sl_object *sl_batch_splitter_object(sl_batch_splitter *s);   /* (transfer none); NULL-safe */
sl_batch_splitter *sl_batch_splitter_from_object(sl_object *obj);  /* NULL if not one */

/* InverterV<version>() (kind "batcher.InverterV1"/"batcher.InverterV2"). */
sl_batch_inverter *sl_batch_inverter_new(int version, sl_error *err);
sl_object *sl_batch_inverter_object(sl_batch_inverter *v);   /* (transfer none); NULL-safe */
sl_batch_inverter *sl_batch_inverter_from_object(sl_object *obj);  /* NULL if not one */

/* CombinerV1(width) / CombinerV2() (kind "batcher.CombinerV1"/"V2"); width
** is ignored for v2. NULL (err says why): SL_EINVAL for a bad version or
** a width above 5 ("Invalid width N"), SL_ENOMEM. */
sl_batch_combiner *sl_batch_combiner_new(int version, uint8_t width, sl_error *err);
sl_object *sl_batch_combiner_object(sl_batch_combiner *c);   /* (transfer none); NULL-safe */
sl_batch_combiner *sl_batch_combiner_from_object(sl_object *obj);  /* NULL if not one */
/* Frames queued now. */
size_t sl_batch_combiner_count(sl_batch_combiner *c);
/* Builds one super-frame of every queued frame (arrival order), requests
** it from downstream and sends it; the sequence then steps by one. SL_OK
** (also when nothing is queued: nothing is sent), SL_ENOMEM when no frame
** could be had (the queued frames are dropped and counted). */
int sl_batch_combiner_send(sl_batch_combiner *c);
/* The bound on the super-frame the queue makes, header and tails included:
** SL_BATCH_COMBINER_MAX unless set lower. It applies to frames that come
** after (those queued stay). SL_EINVAL below the header's size or above
** SL_BATCH_COMBINER_MAX. */
int sl_batch_combiner_set_max(sl_batch_combiner *c, uint64_t bytes);
uint64_t sl_batch_combiner_max(sl_batch_combiner *c);

#pragma GCC visibility pop

#endif
