/*
** Fuzzes the memory TcpServer's request decoding (mb_decode_request in
** src/net/mem_server.c) with the bytes a TcpClient sends on port P.
**
** Invariants: a request taken has 4 or 5 parts of 4, 8, 4, 4 (, size)
** bytes; its fields are the little-endian parts; a write's data is its
** size and lies inside the message; no size over the message limit; the
** request encoded again (mb_encode) decodes to the same.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_mem.h"
#include "streamlua/memory.h"

static int check(const sl_zmtp_event *ev, size_t fed) {
  mb_msg m;
  const char *bad = mb_decode_request(ev, &m);
  if (bad != NULL) {
    FUZZ_CHECK(bad[0] != '\0');
    return 0;                  /* the server closes the connection */
  }
  FUZZ_CHECK(ev->nparts == 4 || ev->nparts == 5);
  FUZZ_CHECK(m.id == sl_load_le32(ev->parts[0].data));
  FUZZ_CHECK(m.size == sl_load_le32(ev->parts[2].data));
  FUZZ_CHECK(m.type == sl_load_le32(ev->parts[3].data));
  FUZZ_CHECK(m.size <= MAX_MSG);
  FUZZ_CHECK(m.rlen == 0 && m.result == NULL);
  if (sl_mem_type_is_write(m.type)) {
    FUZZ_CHECK(m.data == ev->parts[4].data && m.dlen == m.size);
    FUZZ_CHECK(m.dlen <= ev->size && ev->size <= fed);
  } else {
    FUZZ_CHECK(m.data == NULL && m.dlen == 0);
  }
  if (m.type == SL_MEM_PROBE) FUZZ_CHECK(m.size == 0 && ev->nparts == 4);
  sl_zmtp_part data = {m.data != NULL ? m.data : (const uint8_t *)"", m.dlen};
  fuzz_mem_round_trip(&m, &data, m.data != NULL ? 1 : 0, mb_decode_request);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_mem_feed(data, size, check);
  return 0;
}
