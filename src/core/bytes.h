/*
** Byte order: loads and stores of 16, 32 and 64-bit integers at any
** address (no alignment needed), little-endian (frame headers, SRPv3, the
** memory bridge's wire format) and big-endian (ZMTP lengths).
**
** Internal to streamlua: include it by relative path. Pure functions on the
** caller's bytes; any thread.
*/
#ifndef STREAMLUA_BYTES_H_INCLUDED_
#define STREAMLUA_BYTES_H_INCLUDED_

#include <stdint.h>
#include <string.h>

/* 1 where the host stores words little-endian: a host word is then the
** wire's word, and memcpy alone moves it. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SL_HOST_LE 1
#else
#define SL_HOST_LE 0
#endif

/* ---- little-endian ---- */

static inline uint16_t sl_load_le16(const void *p) {
  const uint8_t *b = p;
  return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t sl_load_le32(const void *p) {
#if SL_HOST_LE
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
#else
  const uint8_t *b = p;
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
         (uint32_t)b[3] << 24;
#endif
}

static inline uint64_t sl_load_le64(const void *p) {
  const uint8_t *b = p;
  return (uint64_t)sl_load_le32(b) | (uint64_t)sl_load_le32(b + 4) << 32;
}

static inline void sl_store_le16(void *p, uint16_t v) {
  uint8_t *b = p;
  b[0] = (uint8_t)v;
  b[1] = (uint8_t)(v >> 8);
}

static inline void sl_store_le32(void *p, uint32_t v) {
#if SL_HOST_LE
  memcpy(p, &v, sizeof v);
#else
  uint8_t *b = p;
  for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
#endif
}

static inline void sl_store_le64(void *p, uint64_t v) {
  uint8_t *b = p;
  sl_store_le32(b, (uint32_t)v);
  sl_store_le32(b + 4, (uint32_t)(v >> 32));
}

/* ---- big-endian ---- */

static inline uint16_t sl_load_be16(const void *p) {
  const uint8_t *b = p;
  return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t sl_load_be32(const void *p) {
  const uint8_t *b = p;
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
         (uint32_t)b[3];
}

static inline uint64_t sl_load_be64(const void *p) {
  const uint8_t *b = p;
  return (uint64_t)sl_load_be32(b) << 32 | (uint64_t)sl_load_be32(b + 4);
}

static inline void sl_store_be16(void *p, uint16_t v) {
  uint8_t *b = p;
  b[0] = (uint8_t)(v >> 8);
  b[1] = (uint8_t)v;
}

static inline void sl_store_be32(void *p, uint32_t v) {
  uint8_t *b = p;
  for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (24 - 8 * i));
}

static inline void sl_store_be64(void *p, uint64_t v) {
  uint8_t *b = p;
  sl_store_be32(b, (uint32_t)(v >> 32));
  sl_store_be32(b + 4, (uint32_t)v);
}

#endif
