/*
** The PRBS words (see prbs.c for the scheme): the LFSR description, the
** fast and plain word generators and checkers, and filling or checking a
** frame's payload. Private to src/utilities.
*/
#ifndef STREAMLUA_PRBS_WORDS_H_INCLUDED_
#define STREAMLUA_PRBS_WORDS_H_INCLUDED_

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "streamlua/frame.h"

#include "../core/bytes.h"

#define MAX_BYTES 64                /* widest word: 512 bits */
#define LIMBS (MAX_BYTES / 8)
#define CHUNK 4096                  /* scratch for frames of several buffers */

/* An LFSR description. Immutable: a setter builds a new one, so a frame in
** flight keeps the one it started with. */
typedef struct lfsr {
  atomic_int refs;
  uint32_t width, bytes;
  uint64_t taps[LIMBS];            /* bit t set: tap t (repeats cancel) */
  uint32_t jump[4][256];           /* width 32: V(k) -> V(k+32), per byte */
} lfsr;

typedef struct wordgen {
  const lfsr *l;
  int fast, count;
  uint32_t s32, index;             /* fast state; count-mode word index */
  uint64_t v[LIMBS];               /* plain state */
} wordgen;

/* A new LFSR (refs 1) for width bits and the taps; NULL if out of memory. */
lfsr *prbs_lfsr_new(uint32_t width, const uint64_t taps[LIMBS]);
void prbs_lfsr_unref(lfsr *l);
/* Loads a word (bytes long, little-endian) into limbs. */
void prbs_get_word(uint64_t v[LIMBS], const uint8_t *src, uint32_t bytes);
/* Writes the header words (seq, word count - 1) and, if payload, the
** sequence into f's first size bytes. */
void prbs_fill_frame(sl_frame *f, wordgen *g, uint32_t size, uint32_t seq,
                     int payload);
/* Payload words 2.. of f; the index of the first bad one (from 0, as Rogue
** counts) or n, with the bytes received and expected. */
size_t prbs_check_frame_payload(sl_frame *f, wordgen *g, size_t n,
                                uint8_t *got, uint8_t *exp);

#endif
