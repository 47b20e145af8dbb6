/*
** fuzz.h: what the fuzz harnesses share.
**
** A harness (spec/fuzz/fuzz_*.c) defines LLVMFuzzerTestOneInput and
** nothing else that runs on its own. It is linked either with libFuzzer
** (make fuzz, clang) or with replay.c, which feeds it every file of its
** committed corpus as one ctest case each (make test, any compiler).
**
** FUZZ_CHECK(cond) states an invariant: when it fails the harness says
** which and aborts, which libFuzzer and the replay both report as a
** crash. The capture slave keeps every frame sent to it (payload bytes
** back to back, and each frame's metadata) for the checks.
*/
#ifndef STREAMLUA_FUZZ_H_INCLUDED_
#define STREAMLUA_FUZZ_H_INCLUDED_

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/frame.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/object.h"
#include "streamlua/slave.h"
#include "streamlua/status.h"

#include "../../src/core/bytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) \
  ((cond) ? (void)0 : fuzz_fail_(__FILE__, __LINE__, #cond))

__attribute__((unused, noreturn)) static void fuzz_fail_(const char *file,
                                                         int line,
                                                         const char *what) {
  fprintf(stderr, "invariant failed: %s:%d: %s\n", file, line, what);
  fflush(stderr);
  abort();
}

/* Logging off: a harness runs millions of inputs, most of them refused. */
__attribute__((unused)) static void fuzz_quiet(void) {
  sl_log_set_emit(0);
  sl_log_set_level(SL_LOG_ALWAYS);
}

/* Sends len bytes as one frame with error byte ferr, in this thread. */
__attribute__((unused)) static void fuzz_send(sl_master *m, const uint8_t *p,
                                              uint32_t len, uint8_t ferr) {
  sl_frame *f = sl_master_req_frame(m, len, 1);
  FUZZ_CHECK(f != NULL);
  sl_frame_lock(f);
  if (len > 0) FUZZ_CHECK(sl_frame_write(f, p, 0, len) == SL_OK);
  sl_frame_set_error(f, ferr);
  sl_frame_unlock(f);
  sl_master_send_frame(m, f);
  sl_frame_unref(f);
}

/* A node's counter by name (it must have it). */
__attribute__((unused)) static uint64_t fuzz_counter(sl_object *obj, const char *name) {
  sl_counter c[SL_COUNTERS_MAX];
  size_t n = sl_object_counters(obj, c, SL_COUNTERS_MAX);
  for (size_t i = 0; i < n; i++)
    if (strcmp(c[i].name, name) == 0) return c[i].value;
  FUZZ_CHECK(!"no such counter");
  return 0;
}

/* ---- the capture slave ---- */

typedef struct fuzz_frame {
  size_t off;                  /* its payload in fuzz_capture.bytes */
  uint32_t len;
  uint8_t error, channel;
  uint16_t flags;
} fuzz_frame;

typedef struct fuzz_capture {
  sl_object obj;
  sl_slave slave;
  pthread_mutex_t mutex;
  uint8_t *bytes;
  size_t len, cap;
  fuzz_frame *frames;
  size_t n, fcap;
} fuzz_capture;

__attribute__((unused)) static void fuzz_capture_accept(sl_slave *s, sl_frame *f) {
  fuzz_capture *c = (fuzz_capture *)s->owner;
  sl_frame_lock(f);
  pthread_mutex_lock(&c->mutex);
  uint32_t len = sl_frame_get_payload(f);
  if (c->len + len > c->cap) {
    while (c->len + len > c->cap) c->cap = c->cap ? c->cap * 2 : 4096;
    c->bytes = realloc(c->bytes, c->cap);
    FUZZ_CHECK(c->bytes != NULL);
  }
  if (c->n == c->fcap) {
    c->fcap = c->fcap ? c->fcap * 2 : 16;
    c->frames = realloc(c->frames, c->fcap * sizeof *c->frames);
    FUZZ_CHECK(c->frames != NULL);
  }
  if (len > 0) FUZZ_CHECK(sl_frame_read(f, c->bytes + c->len, 0, len) == SL_OK);
  c->frames[c->n++] = (fuzz_frame){c->len, len, sl_frame_get_error(f),
                                   sl_frame_get_channel(f), sl_frame_get_flags(f)};
  c->len += len;
  pthread_mutex_unlock(&c->mutex);
  sl_frame_unlock(f);
}

__attribute__((unused)) static const sl_slave_ops fuzz_capture_ops =
    {.accept_frame = fuzz_capture_accept};

__attribute__((unused)) static void fuzz_capture_destroy(sl_object *obj) {
  fuzz_capture *c = (fuzz_capture *)obj;
  sl_slave_fini(&c->slave);
  pthread_mutex_destroy(&c->mutex);
  free(c->bytes);
  free(c->frames);
  free(c);
}

__attribute__((unused)) static const sl_class fuzz_capture_class = {
    .name = "FuzzCapture", .destroy = fuzz_capture_destroy};

__attribute__((unused)) static fuzz_capture *fuzz_capture_new(void) {
  fuzz_capture *c = calloc(1, sizeof *c);
  FUZZ_CHECK(c != NULL);
  pthread_mutex_init(&c->mutex, NULL);
  sl_object_init(&c->obj, &fuzz_capture_class);
  FUZZ_CHECK(sl_slave_init(&c->slave, &fuzz_capture_ops, &c->obj) == SL_OK);
  c->obj.slave = &c->slave;
  return c;
}

#endif
