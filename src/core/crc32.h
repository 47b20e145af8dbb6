/*
** CRC-32/ISO-HDLC, the CRC of zlib's crc32(), Ethernet and the packetizer
** v2: polynomial 0x04C11DB7 reflected, initial value and final XOR
** 0xFFFFFFFF. sl_crc32(0, "123456789", 9) is 0xCBF43926.
**
** Chaining: sl_crc32(sl_crc32(0, a, na), b, nb) is the CRC of a then b,
** as zlib's crc32(prev, ...). Start a fresh CRC with 0.
**
** Internal to streamlua: include it by relative path. Pure function on the
** caller's bytes; any thread (its tables are built once, on first use).
*/
#ifndef STREAMLUA_CRC32_H_INCLUDED_
#define STREAMLUA_CRC32_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

uint32_t sl_crc32(uint32_t crc, const void *data, size_t n);

#endif
