/*
** Fuzzes the memory TcpClient's response decoding (mb_decode_response in
** src/net/mem_client.c) with the bytes a TcpServer sends on port P+1.
**
** Invariants: a response taken has 6 parts of 4, 8, 4, 4, any, at most
** SL_MEM_BRIDGE_RESULT_MAX bytes; its fields are the little-endian parts;
** data and result lie inside the message; the response encoded again
** (mb_encode) decodes to the same.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_mem.h"
#include "streamlua/mem_bridge.h"

static int check(const sl_zmtp_event *ev, size_t fed) {
  mb_msg m;
  const char *bad = mb_decode_response(ev, &m);
  if (bad != NULL) {
    FUZZ_CHECK(bad[0] != '\0');
    return 0;                  /* the client closes the connection */
  }
  FUZZ_CHECK(ev->nparts == 6);
  FUZZ_CHECK(m.id == sl_load_le32(ev->parts[0].data));
  FUZZ_CHECK(m.size == sl_load_le32(ev->parts[2].data));
  FUZZ_CHECK(m.type == sl_load_le32(ev->parts[3].data));
  FUZZ_CHECK(m.data == ev->parts[4].data && m.dlen == ev->parts[4].size);
  FUZZ_CHECK(m.result == ev->parts[5].data && m.rlen == ev->parts[5].size);
  FUZZ_CHECK(m.rlen <= SL_MEM_BRIDGE_RESULT_MAX);
  FUZZ_CHECK(m.dlen + m.rlen + 20 == ev->size && ev->size <= fed);
  sl_zmtp_part extra[2] = {{m.data, m.dlen}, {m.result, m.rlen}};
  fuzz_mem_round_trip(&m, extra, 2, mb_decode_response);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_mem_feed(data, size, check);
  return 0;
}
