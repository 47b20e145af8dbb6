/*
** CRC-32/ISO-HDLC by slicing: eight tables let the loop take eight bytes
** per step, several times faster than one table and a byte at a time.
** On x86 with carry-less multiply (PCLMULQDQ) long runs are folded 64
** bytes per step instead, about ten times faster again: the packetizer
** computes a CRC over every byte it sends.
*/
#include "crc32.h"

#include <pthread.h>

#include "bytes.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_CLMUL_PATH 1
static int use_clmul;   /* set once by table_build */
#endif

#define POLY 0xEDB88320u   /* 0x04C11DB7 reflected */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ POLY : c >> 1;
    table[0][i] = c;
  }
  for (int t = 1; t < 8; t++)
    for (uint32_t i = 0; i < 256; i++)
      table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFFu];
#ifdef HAVE_CLMUL_PATH
  __builtin_cpu_init();
  use_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
}

#ifdef HAVE_CLMUL_PATH
/*
** Folding by carry-less multiplication (Intel's "Fast CRC Computation
** Using PCLMULQDQ"): four 128-bit lanes are folded forward 512 bits per
** step, then into one lane, then reduced to 32 bits (Barrett). The
** constants are powers of x modulo the reflected polynomial. n >= 64 and
** a multiple of 16; crc is the register (not inverted), as returned.
*/
__attribute__((target("pclmul,sse4.1")))
static uint32_t crc_clmul(uint32_t crc, const uint8_t *p, size_t n) {
  const __m128i k12 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);
  const __m128i k34 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);
  const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124LL);
  const __m128i poly = _mm_set_epi64x(0x1f7011641LL, 0x1db710641LL);
  const __m128i mask = _mm_set_epi32(0, 0, 0, -1);
  __m128i x[4];
  for (int i = 0; i < 4; i++) x[i] = _mm_loadu_si128((const __m128i *)(p + 16 * i));
  x[0] = _mm_xor_si128(x[0], _mm_cvtsi32_si128((int)crc));
  p += 64;
  n -= 64;
  for (; n >= 64; n -= 64, p += 64)
    for (int i = 0; i < 4; i++)
      x[i] = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x[i], k12, 0x00),
                                         _mm_clmulepi64_si128(x[i], k12, 0x11)),
                           _mm_loadu_si128((const __m128i *)(p + 16 * i)));
  __m128i a = x[0];
  for (int i = 1; i < 4; i++)
    a = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k34, 0x00),
                                    _mm_clmulepi64_si128(a, k34, 0x11)), x[i]);
  for (; n >= 16; n -= 16, p += 16)
    a = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k34, 0x00),
                                    _mm_clmulepi64_si128(a, k34, 0x11)),
                      _mm_loadu_si128((const __m128i *)p));
  /* 128 bits to 64, 64 to 32, then Barrett */
  a = _mm_xor_si128(_mm_clmulepi64_si128(a, k34, 0x10), _mm_srli_si128(a, 8));
  a = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(a, mask), k5, 0x00),
                    _mm_srli_si128(a, 4));
  __m128i b = _mm_clmulepi64_si128(_mm_and_si128(a, mask), poly, 0x10);
  b = _mm_clmulepi64_si128(_mm_and_si128(b, mask), poly, 0x00);
  return (uint32_t)_mm_extract_epi32(_mm_xor_si128(a, b), 1);
}
#endif

uint32_t sl_crc32(uint32_t crc, const void *data, size_t n) {
  const uint8_t *p = data;
  pthread_once(&table_once, table_build);
  crc = ~crc;
#ifdef HAVE_CLMUL_PATH
  if (use_clmul && n >= 64) {
    size_t bulk = n & ~(size_t)15;
    crc = crc_clmul(crc, p, bulk);
    p += bulk;
    n -= bulk;
  }
#endif
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo = sl_load_le32(p) ^ crc, hi = sl_load_le32(p + 4);
    crc = table[7][lo & 0xFFu] ^ table[6][(lo >> 8) & 0xFFu] ^
          table[5][(lo >> 16) & 0xFFu] ^ table[4][lo >> 24] ^
          table[3][hi & 0xFFu] ^ table[2][(hi >> 8) & 0xFFu] ^
          table[1][(hi >> 16) & 0xFFu] ^ table[0][hi >> 24];
  }
  while (n--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFFu];
  return ~crc;
}
