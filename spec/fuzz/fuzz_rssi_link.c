/*
** Fuzzes an RSSI link's receive path (src/protocols/rssi.c): segments
** from a hostile peer into a started Server or Client's transport edge.
**
** Input: byte 0 bit 0 picks the end (0 server, 1 client); then records,
** at most 64: a length byte L, a patch byte, then L bytes (cut at the end
** of the input). Patch bit 0 rewrites the header's checksum to Rogue's
** (when the bytes hold the header their length byte names), so records
** reach the state machine; bit 1 marks the frame errored.
**
** Invariants: every record is counted as a received segment; drops are
** at most the records; every segment the link sends decodes, with Rogue's
** checksum; the application gets exactly the frames the link counts as
** delivered, each shorter than the largest record; stop returns and
** leaves the link closed.
*/
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "streamlua/rssi.h"

#define MAX_RECORDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) fuzz_quiet();
  quiet = 1;
  if (size < 1) return 0;
  int client = data[0] & 1;
  sl_rssi *r = sl_rssi_new(!client, 1464, NULL);
  FUZZ_CHECK(r != NULL);
  sl_object *tr = sl_rssi_transport(r), *app = sl_rssi_application(r);
  sl_object *src = sl_master_new(NULL);
  fuzz_capture *out = fuzz_capture_new(), *got = fuzz_capture_new();
  FUZZ_CHECK(sl_master_add_slave(src->master, tr->slave) == SL_OK);
  FUZZ_CHECK(sl_master_add_slave(tr->master, &out->slave) == SL_OK);
  FUZZ_CHECK(sl_master_add_slave(app->master, &got->slave) == SL_OK);
  FUZZ_CHECK(sl_rssi_start(r) == SL_OK);
  size_t i = 1;
  uint64_t fed = 0;
  uint32_t longest = 0;
  uint8_t seg[256];
  while (i + 2 <= size && fed < MAX_RECORDS) {
    uint32_t len = data[i], patch = data[i + 1];
    i += 2;
    if (len > size - i) len = (uint32_t)(size - i);
    memcpy(seg, data + i, len);
    i += len;
    if ((patch & 1) && len >= 2 && seg[1] >= 8 && seg[1] <= len && seg[1] % 2 == 0)
      sl_store_be16(seg + seg[1] - 2, sl_rssi_checksum(seg, seg[1]));
    if (len > longest) longest = len;
    fuzz_send(src->master, seg, len, (patch & 2) ? 1 : 0);
    fed++;
  }
  sl_rssi_stop(r);
  FUZZ_CHECK(!sl_rssi_is_open(r));
  sl_rssi_stats st;
  sl_rssi_stats_get(r, &st);
  FUZZ_CHECK(st.rx_segments == fed);
  FUZZ_CHECK(st.drop_count <= fed);
  pthread_mutex_lock(&out->mutex);
  for (size_t k = 0; k < out->n; k++) {
    const uint8_t *p = out->bytes + out->frames[k].off;
    sl_rssi_header h;
    FUZZ_CHECK(sl_rssi_decode(p, out->frames[k].len, &h) == SL_RSSI_OK);
    FUZZ_CHECK(h.checksum == sl_rssi_checksum(p, h.length));
  }
  pthread_mutex_unlock(&out->mutex);
  pthread_mutex_lock(&got->mutex);
  FUZZ_CHECK(got->n == st.rx_frames);
  for (size_t k = 0; k < got->n; k++)
    FUZZ_CHECK(got->frames[k].len > 0 && got->frames[k].len + 8 <= longest);
  pthread_mutex_unlock(&got->mutex);
  sl_master_clear_slaves(src->master);
  sl_master_clear_slaves(tr->master);
  sl_master_clear_slaves(app->master);
  sl_object_unref(src);
  sl_object_unref(tr);
  sl_object_unref(app);
  sl_object_unref(&out->obj);
  sl_object_unref(&got->obj);
  sl_object_unref(sl_rssi_object(r));
  return 0;
}
