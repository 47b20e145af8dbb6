/*
** The PRBS words: the LFSR, and the fast (width 32) and plain word loops
** that generate and check frame payloads. See prbs.c for the scheme.
*/
#include <stdlib.h>
#include <string.h>

#include "prbs_words.h"
#include "streamlua/buffer.h"

/* The word loops also get an AVX2 build, picked at load time when the CPU
** has it (per-lane variable shifts; twice the lanes of SSE2). Not under
** ThreadSanitizer: its runtime is not up yet when the loader picks. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#if defined(__x86_64__) && defined(__has_attribute) && !defined(UNDER_TSAN)
#if __has_attribute(target_clones)
#define WIDE_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef WIDE_CLONES
#define WIDE_CLONES
#endif

static void step(const lfsr *l, uint64_t v[LIMBS]) {
  uint32_t n = (l->width + 63) / 64;
  uint64_t acc = 0;
  for (uint32_t i = 0; i < n; i++) acc ^= v[i] & l->taps[i];
  uint64_t in = (uint64_t)__builtin_parityll(acc);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t out = v[i] >> 63;
    v[i] = v[i] << 1 | in;
    in = out;
  }
  if (l->width % 64 != 0) v[n - 1] &= (UINT64_C(1) << (l->width % 64)) - 1;
}

static void put_word(uint8_t *dst, const uint64_t v[LIMBS], uint32_t bytes) {
  for (uint32_t i = 0; i < bytes; i++) dst[i] = (uint8_t)(v[i / 8] >> (8 * (i % 8)));
}

void prbs_get_word(uint64_t v[LIMBS], const uint8_t *src, uint32_t bytes) {
  memset(v, 0, LIMBS * sizeof v[0]);
  for (uint32_t i = 0; i < bytes; i++) v[i / 8] |= (uint64_t)src[i] << (8 * (i % 8));
}

lfsr *prbs_lfsr_new(uint32_t width, const uint64_t taps[LIMBS]) {
  lfsr *l = malloc(sizeof *l);
  if (l == NULL) return NULL;
  atomic_init(&l->refs, 1);
  l->width = width;
  l->bytes = width / 8;
  memcpy(l->taps, taps, sizeof l->taps);
  if (width == 32) {
    for (int b = 0; b < 4; b++) {
      for (uint32_t x = 0; x < 256; x++) {
        uint64_t v[LIMBS] = {(uint64_t)x << (8 * b)};
        for (int k = 0; k < 32; k++) step(l, v);
        l->jump[b][x] = (uint32_t)v[0];
      }
    }
  }
  return l;
}

void prbs_lfsr_unref(lfsr *l) {
  if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1) free(l);
}

static inline uint32_t jump32(const lfsr *l, uint32_t v) {
  return l->jump[0][v & 0xff] ^ l->jump[1][(v >> 8) & 0xff] ^
         l->jump[2][(v >> 16) & 0xff] ^ l->jump[3][v >> 24];
}

WIDE_CLONES static void gen_fast(wordgen *g, uint8_t *dst, size_t n) {
  uint32_t a = g->s32;
  for (; n >= 32; n -= 32, dst += 128) {        /* whole jumps: straight out */
    uint32_t b = jump32(g->l, a);
#pragma GCC unroll 32
    for (int i = 1; i < 32; i++) {
      uint32_t w = a << i | b >> (32 - i);
      sl_store_le32(dst + 4 * (i - 1), w);
    }
    sl_store_le32(dst + 124, b);
    a = b;
  }
  if (n > 0) {                                  /* the last few words */
    uint32_t b = jump32(g->l, a), blk[32];
    for (int i = 1; i < 32; i++) blk[i - 1] = a << i | b >> (32 - i);
    blk[31] = b;
    memcpy(dst, blk, 4 * n);
    a = blk[n - 1];
  }
  g->s32 = a;
}

/* The next n words of the frame into dst. */
static void gen_words(wordgen *g, uint8_t *dst, size_t n) {
  uint32_t bytes = g->l->bytes;
  if (g->count) {
    memset(dst, 0, n * bytes);
    for (size_t i = 0; i < n; i++) sl_store_le32(dst + i * bytes, g->index++);
  } else if (g->fast) {
    gen_fast(g, dst, n);
  } else {
    for (size_t i = 0; i < n; i++) {
      step(g->l, g->v);
      put_word(dst + i * bytes, g->v, bytes);
    }
  }
}

void prbs_fill_frame(sl_frame *f, wordgen *g, uint32_t size, uint32_t seq,
                       int payload) {
  uint32_t bytes = g->l->bytes, nwords = size / bytes;
  uint8_t head[2 * MAX_BYTES] = {0};
  sl_store_le32(head, seq);
  sl_store_le32(head + bytes, nwords - 1);
  prbs_get_word(g->v, head, bytes);     /* the state starts as word 0 */
  g->s32 = seq;
  g->index = 2;
  if (sl_frame_buffer_count(f) == 1) {
    uint8_t *dst = sl_buffer_begin(sl_frame_buffer(f, 0));
    memcpy(dst, head, 2 * bytes);
    if (payload) gen_words(g, dst + 2 * bytes, nwords - 2);
    return;
  }
  sl_frame_iter it;
  sl_frame_iter_write(&it, f, 0);
  sl_frame_iter_put(&it, head, 2 * bytes);
  uint8_t tmp[CHUNK];
  for (size_t w = 2, k; payload && w < nwords; w += k) {
    k = nwords - w < CHUNK / bytes ? nwords - w : CHUNK / bytes;
    gen_words(g, tmp, k);
    sl_frame_iter_put(&it, tmp, (uint32_t)(k * bytes));
  }
}

static inline uint32_t next32(uint32_t mask, uint32_t w) {
  uint32_t x = w & mask;
  x ^= x >> 16;
  x ^= x >> 8;
  x ^= x >> 4;
  x ^= x >> 2;
  x ^= x >> 1;
  return w << 1 | (x & 1);
}

/* Index of the first of n words that is not the step of the word before it
** (*prev before the first), or n; then *prev is the last word. Each word is
** tested on its own, so the loop runs as wide as the vector unit. */
WIDE_CLONES static size_t check_fast(uint32_t mask, uint32_t *prev,
                                     const uint8_t *src, size_t n) {
  uint32_t a, b;
  if (n == 0) return 0;
  b = sl_load_le32(src);
  if (b != next32(mask, *prev)) return 0;
  for (size_t i = 1; i < n; i += 256) {
    size_t end = n - i < 256 ? n : i + 256;
    uint32_t bad = 0;
    for (size_t j = i; j < end; j++) {
      a = sl_load_le32(src + 4 * (j - 1));
      b = sl_load_le32(src + 4 * j);
      bad |= b ^ next32(mask, a);
    }
    for (size_t j = i; bad != 0 && j < end; j++) {
      a = sl_load_le32(src + 4 * (j - 1));
      b = sl_load_le32(src + 4 * j);
      if (b != next32(mask, a)) return j;
    }
  }
  *prev = sl_load_le32(src + 4 * (n - 1));
  return n;
}

/* Index of the first of the n words at src that differs from the sequence,
** or n; on a mismatch exp gets the expected word. */
static size_t check_words(wordgen *g, const uint8_t *src, size_t n,
                          uint8_t *exp) {
  uint32_t bytes = g->l->bytes;
  if (g->fast) {
    uint32_t before = g->s32;
    size_t i = check_fast((uint32_t)g->l->taps[0], &g->s32, src, n);
    if (i < n) {
      uint32_t prev = i == 0 ? before : sl_load_le32(src + 4 * (i - 1));
      sl_store_le32(exp, next32((uint32_t)g->l->taps[0], prev));
    }
    return i;
  }
  for (size_t i = 0; i < n; i++) {
    step(g->l, g->v);
    put_word(exp, g->v, bytes);
    if (memcmp(exp, src + i * bytes, bytes) != 0) return i;
  }
  return n;
}

/* Payload words 2.. of f; the index of the first bad one (from 0, as Rogue
** counts) or n, with the bytes received and expected. */
size_t prbs_check_frame_payload(sl_frame *f, wordgen *g, size_t n,
                                  uint8_t *got, uint8_t *exp) {
  uint32_t bytes = g->l->bytes;
  if (sl_frame_buffer_count(f) == 1) {
    const uint8_t *src = sl_buffer_begin(sl_frame_buffer(f, 0)) + 2 * bytes;
    size_t i = check_words(g, src, n, exp);
    if (i < n) memcpy(got, src + i * bytes, bytes);
    return i;
  }
  sl_frame_iter it;
  sl_frame_iter_read(&it, f, 2 * bytes);
  uint8_t tmp[CHUNK];
  for (size_t w = 0, k; w < n; w += k) {
    k = n - w < CHUNK / bytes ? n - w : CHUNK / bytes;
    sl_frame_iter_get(&it, tmp, (uint32_t)(k * bytes));
    size_t i = check_words(g, tmp, k, exp);
    if (i < k) {
      memcpy(got, tmp + i * bytes, bytes);
      return w + i;
    }
  }
  return n;
}
