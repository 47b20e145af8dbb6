/*
** Fuzzes StreamReader's record parsing (src/utilities/stream_reader.c):
** the input is the file, handed over as a memfd, replayed by the reader's
** own thread into a capture slave.
**
** Invariants: the frames, their payloads (bytes, flags, error, channel)
** and the result (frames, bytes, error or not) are exactly what a
** straightforward reading of the record format gives: 8-byte headers
** (size, then meta), size 0 an error, size <= 4 skipped, a short header an
** error, a short payload sent with error 0x1 and ending the replay.
*/
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "streamlua/stream_reader.h"

/* Checks the capture against the record format; returns 1 if the
** replay should have ended with an error. */
static int check_frames(const fuzz_capture *c, const uint8_t *d, size_t n,
                        uint64_t *bytes) {
  size_t pos = 0, k = 0;
  int err = 0;
  *bytes = 0;
  while (pos < n) {
    size_t rem = n - pos;
    if (rem >= 4 && sl_load_le32(d + pos) == 0) { err = 1; break; }
    if (rem < 8) { err = 1; break; }
    uint32_t size = sl_load_le32(d + pos), meta = sl_load_le32(d + pos + 4);
    pos += 8;
    if (size <= 4) continue;
    size_t want = size - 4, got = n - pos < want ? n - pos : want;
    FUZZ_CHECK(k < c->n);
    const fuzz_frame *f = &c->frames[k++];
    FUZZ_CHECK(f->len == got);
    FUZZ_CHECK(got == 0 || memcmp(c->bytes + f->off, d + pos, got) == 0);
    FUZZ_CHECK(f->flags == (meta & 0xffff) && f->channel == (meta >> 24));
    FUZZ_CHECK(f->error == (got < want ? 1 : ((meta >> 16) & 0xff)));
    *bytes += got;
    pos += got;
    if (got < want) { err = 1; break; }
  }
  FUZZ_CHECK(k == c->n);
  return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) fuzz_quiet();
  quiet = 1;
  int fd = memfd_create("fuzz_stream_reader", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0);
  for (size_t off = 0; off < size;) {
    ssize_t k = write(fd, data + off, size - off);
    FUZZ_CHECK(k > 0);
    off += (size_t)k;
  }
  char name[64];
  snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
  sl_stream_reader *r = sl_stream_reader_new(NULL);
  fuzz_capture *cap = fuzz_capture_new();
  FUZZ_CHECK(r != NULL);
  sl_master_add_slave(sl_stream_reader_master(r), &cap->slave);
  FUZZ_CHECK(sl_stream_reader_open(r, name, NULL) == SL_OK);
  FUZZ_CHECK(sl_stream_reader_close_wait(r, 0) == 1);
  sl_stream_reader_result res;
  FUZZ_CHECK(sl_stream_reader_take_result(r, &res) == 1);
  uint64_t bytes = 0;
  pthread_mutex_lock(&cap->mutex);
  int err = check_frames(cap, data, size, &bytes);
  FUZZ_CHECK(res.frames == cap->n && res.bytes == bytes && bytes <= size);
  pthread_mutex_unlock(&cap->mutex);
  FUZZ_CHECK(res.files == 1);
  FUZZ_CHECK((res.error[0] != '\0') == err);
  sl_master_clear_slaves(sl_stream_reader_master(r));
  sl_object_unref(sl_stream_reader_object(r));
  sl_object_unref(&cap->obj);
  close(fd);
  return 0;
}
