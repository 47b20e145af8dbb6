/*
** sl_frame: sizes, the setPayload walk, metadata and user flags, write and
** read, multi-buffer frames and their iterators, append/clear, refcounts
** and the frame lock (rogue-reference 1.2-1.4, 1.7).
*/
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "streamlua/frame.h"
#include "streamlua/pool.h"
#include "streamlua/status.h"
#include "tt.h"

static sl_pool *var_pool;   /* variable mode */
static sl_pool *fix_pool;   /* fixed 4: a 10-byte request is 3 buffers */

/* Each buffer's getPayload, in order. */
static void buffer_payloads(const sl_frame *f, uint32_t *out) {
  for (size_t i = 0; i < sl_frame_buffer_count(f); i++)
    out[i] = sl_buffer_get_payload(sl_frame_buffer(f, i));
}

#define CHECK_PAYLOADS3(f, a, b, c)        \
  do {                                      \
    uint32_t p_[3] = {0, 0, 0};             \
    buffer_payloads((f), p_);               \
    CHECK_EQ(p_[0], (a));                   \
    CHECK_EQ(p_[1], (b));                   \
    CHECK_EQ(p_[2], (c));                   \
  } while (0)

static sl_frame *frame10(void) {
  sl_frame *f = sl_pool_req_frame(fix_pool, 10);
  CHECK(f != NULL);
  CHECK_EQ(sl_frame_buffer_count(f), 3);
  return f;
}

static void test_sizes(void) {
  sl_frame *f = sl_pool_req_frame(var_pool, 100);
  CHECK_EQ(sl_frame_refcount(f), 1);
  CHECK_EQ(sl_frame_buffer_count(f), 1);
  CHECK_EQ(sl_frame_get_size(f), 100);
  CHECK_EQ(sl_frame_get_payload(f), 0);
  CHECK_EQ(sl_frame_get_available(f), 100);
  CHECK_EQ(sl_frame_set_payload(f, 30), SL_OK);
  CHECK_EQ(sl_frame_get_payload(f), 30);
  CHECK_EQ(sl_frame_get_available(f), 70);
  /* Head room taken from a buffer is no longer frame capacity. */
  CHECK_EQ(sl_buffer_adjust_header(sl_frame_buffer(f, 0), 8), SL_OK);
  CHECK_EQ(sl_frame_get_size(f), 92);
  CHECK_EQ(sl_frame_get_payload(f), 22);
  CHECK_EQ(sl_frame_get_available(f), 70);
  sl_frame_unref(f);

  f = frame10();
  CHECK_EQ(sl_frame_get_size(f), 12);
  CHECK_EQ(sl_frame_get_payload(f), 0);
  CHECK_EQ(sl_frame_get_available(f), 12);
  sl_frame_unref(f);
}

static void test_set_payload_walk(void) {
  sl_frame *f = frame10();
  CHECK_EQ(sl_frame_set_payload(f, 6), SL_OK);   /* full, partial, empty */
  CHECK_PAYLOADS3(f, 4, 2, 0);
  CHECK_EQ(sl_frame_get_payload(f), 6);
  CHECK_EQ(sl_frame_get_available(f), 6);
  CHECK_EQ(sl_frame_set_payload(f, 9), SL_OK);
  CHECK_PAYLOADS3(f, 4, 4, 1);
  CHECK_EQ(sl_frame_set_payload(f, 4), SL_OK);   /* exact fit, then empties */
  CHECK_PAYLOADS3(f, 4, 0, 0);
  CHECK_EQ(sl_frame_set_payload(f, 12), SL_OK);
  CHECK_PAYLOADS3(f, 4, 4, 4);
  CHECK_EQ(sl_frame_get_available(f), 0);
  CHECK_EQ(sl_frame_set_payload(f, 1), SL_OK);
  CHECK_PAYLOADS3(f, 1, 0, 0);
  CHECK_EQ(sl_frame_set_payload(f, 0), SL_OK);
  CHECK_PAYLOADS3(f, 0, 0, 0);
  sl_frame_unref(f);
}

static void test_set_payload_failure_changes_nothing(void) {
  sl_frame *f = frame10();
  CHECK_EQ(sl_frame_set_payload(f, 6), SL_OK);
  CHECK_EQ(sl_frame_set_payload(f, 13), SL_ERANGE);
  CHECK_PAYLOADS3(f, 4, 2, 0);
  CHECK_EQ(sl_frame_set_payload(f, UINT32_MAX), SL_ERANGE);
  CHECK_PAYLOADS3(f, 4, 2, 0);
  CHECK_EQ(sl_frame_get_payload(f), 6);
  sl_frame_unref(f);

  f = sl_pool_req_frame(var_pool, 8);
  CHECK_EQ(sl_frame_set_payload(f, 5), SL_OK);
  CHECK_EQ(sl_frame_set_payload(f, 9), SL_ERANGE);
  CHECK_EQ(sl_frame_get_payload(f), 5);
  sl_frame_unref(f);
}

static void test_min_payload(void) {
  sl_frame *f = frame10();
  CHECK_EQ(sl_frame_set_payload(f, 6), SL_OK);
  CHECK_EQ(sl_frame_min_payload(f, 3), SL_OK);
  CHECK_PAYLOADS3(f, 4, 2, 0);                   /* did not shrink */
  CHECK_EQ(sl_frame_min_payload(f, 10), SL_OK);
  CHECK_PAYLOADS3(f, 4, 4, 2);
  CHECK_EQ(sl_frame_min_payload(f, 13), SL_ERANGE);
  CHECK_PAYLOADS3(f, 4, 4, 2);
  sl_frame_unref(f);
}

static void test_adjust_payload(void) {
  sl_frame *f = frame10();
  CHECK_EQ(sl_frame_adjust_payload(f, 7), SL_OK);
  CHECK_PAYLOADS3(f, 4, 3, 0);
  CHECK_EQ(sl_frame_adjust_payload(f, -2), SL_OK);
  CHECK_PAYLOADS3(f, 4, 1, 0);
  CHECK_EQ(sl_frame_get_payload(f), 5);
  CHECK_EQ(sl_frame_adjust_payload(f, -6), SL_ERANGE);  /* beyond payload */
  CHECK_PAYLOADS3(f, 4, 1, 0);
  CHECK_EQ(sl_frame_adjust_payload(f, 8), SL_ERANGE);   /* beyond size */
  CHECK_PAYLOADS3(f, 4, 1, 0);
  CHECK_EQ(sl_frame_adjust_payload(f, INT64_MAX), SL_ERANGE);
  CHECK_EQ(sl_frame_adjust_payload(f, INT64_MIN), SL_ERANGE);
  CHECK_PAYLOADS3(f, 4, 1, 0);
  CHECK_EQ(sl_frame_adjust_payload(f, 7), SL_OK);
  CHECK_EQ(sl_frame_get_payload(f), 12);
  CHECK_EQ(sl_frame_adjust_payload(f, -12), SL_OK);
  CHECK_EQ(sl_frame_get_payload(f), 0);
  sl_frame_unref(f);
}

static void test_full_and_empty(void) {
  sl_frame *f = frame10();
  CHECK_EQ(sl_buffer_adjust_header(sl_frame_buffer(f, 1), 1), SL_OK);
  sl_frame_set_payload_full(f);
  CHECK_PAYLOADS3(f, 4, 3, 4);
  CHECK_EQ(sl_frame_get_payload(f), 11);
  CHECK_EQ(sl_frame_get_size(f), 11);
  sl_frame_set_payload_empty(f);
  CHECK_PAYLOADS3(f, 0, 0, 0);
  CHECK_EQ(sl_frame_get_available(f), 11);
  sl_frame_unref(f);
}

static void test_metadata(void) {
  sl_frame *f = sl_frame_new();
  CHECK_EQ(sl_frame_get_channel(f), 0);
  CHECK_EQ(sl_frame_get_error(f), 0);
  CHECK_EQ(sl_frame_get_flags(f), 0);
  sl_frame_set_channel(f, 0xfe);
  sl_frame_set_error(f, 0x81);
  sl_frame_set_flags(f, 0xbeef);
  CHECK_EQ(sl_frame_get_channel(f), 0xfe);
  CHECK_EQ(sl_frame_get_error(f), 0x81);
  CHECK_EQ(sl_frame_get_flags(f), 0xbeef);
  CHECK_EQ(sl_frame_get_first_user(f), 0xef);
  CHECK_EQ(sl_frame_get_last_user(f), 0xbe);
  sl_frame_set_flags(f, 0x0100);                 /* replaces all 16 bits */
  CHECK_EQ(sl_frame_get_flags(f), 0x0100);
  CHECK_EQ(sl_frame_get_first_user(f), 0x00);
  CHECK_EQ(sl_frame_get_last_user(f), 0x01);
  sl_frame_unref(f);
}

static void test_user_flags_or(void) {
  sl_frame *f = sl_frame_new();
  sl_frame_set_first_user(f, 0x01);
  sl_frame_set_first_user(f, 0x02);
  CHECK_EQ(sl_frame_get_first_user(f), 0x03);
  CHECK_EQ(sl_frame_get_flags(f), 0x0003);
  sl_frame_set_first_user(f, 0x00);              /* never clears */
  CHECK_EQ(sl_frame_get_first_user(f), 0x03);
  sl_frame_set_last_user(f, 0x01);
  sl_frame_set_last_user(f, 0x02);
  CHECK_EQ(sl_frame_get_last_user(f), 0x03);     /* bits 15:8 */
  CHECK_EQ(sl_frame_get_flags(f), 0x0303);
  CHECK_EQ(sl_frame_get_first_user(f), 0x03);
  sl_frame_set_last_user(f, 0x80);
  CHECK_EQ(sl_frame_get_flags(f), 0x8303);
  CHECK_EQ(sl_frame_get_last_user(f), 0x83);
  sl_frame_set_last_user(f, 0);
  CHECK_EQ(sl_frame_get_flags(f), 0x8303);
  sl_frame_unref(f);
}

static void test_write_grows_payload(void) {
  sl_frame *f = sl_pool_req_frame(var_pool, 100);
  uint8_t *raw = sl_frame_buffer(f, 0)->data;
  memset(raw, 0xcc, 100);
  uint8_t src[16];
  for (int i = 0; i < 16; i++) src[i] = (uint8_t)(i + 1);

  CHECK_EQ(sl_frame_write(f, src, 0, 10), SL_OK);
  CHECK_EQ(sl_frame_get_payload(f), 10);
  CHECK(memcmp(raw, src, 10) == 0);
  CHECK_EQ(sl_frame_write(f, src, 2, 5), SL_OK);   /* inside: no shrink */
  CHECK_EQ(sl_frame_get_payload(f), 10);
  CHECK_EQ(raw[2], 1);
  CHECK_EQ(raw[6], 5);
  CHECK_EQ(raw[7], 8);
  CHECK_EQ(sl_frame_write(f, src, 20, 5), SL_OK);  /* past payload: grows */
  CHECK_EQ(sl_frame_get_payload(f), 25);
  CHECK_EQ(raw[24], 5);
  CHECK_EQ(sl_frame_write(f, src, 84, 16), SL_OK); /* exactly to capacity */
  CHECK_EQ(sl_frame_get_payload(f), 100);
  CHECK_EQ(raw[99], 16);

  sl_frame_set_payload(f, 50);
  memset(raw + 90, 0xcc, 10);
  CHECK_EQ(sl_frame_write(f, src, 90, 11), SL_ERANGE);
  CHECK_EQ(sl_frame_write(f, src, UINT32_MAX, 2), SL_ERANGE);
  CHECK_EQ(sl_frame_write(f, src, 101, 0), SL_ERANGE);
  CHECK_EQ(sl_frame_get_payload(f), 50);           /* nothing changed */
  for (int i = 90; i < 100; i++) CHECK_EQ(raw[i], 0xcc);
  sl_frame_unref(f);
}

static void test_read(void) {
  sl_frame *f = sl_pool_req_frame(var_pool, 64);
  uint8_t src[20], dst[20];
  for (int i = 0; i < 20; i++) src[i] = (uint8_t)(0x40 + i);
  CHECK_EQ(sl_frame_write(f, src, 0, 20), SL_OK);
  memset(dst, 0, sizeof dst);
  CHECK_EQ(sl_frame_read(f, dst, 5, 15), SL_OK);
  CHECK(memcmp(dst, src + 5, 15) == 0);
  memset(dst, 0xee, sizeof dst);
  CHECK_EQ(sl_frame_read(f, dst, 5, 16), SL_ERANGE);  /* past payload */
  CHECK_EQ(sl_frame_read(f, dst, 21, 0), SL_ERANGE);
  CHECK_EQ(sl_frame_read(f, dst, UINT32_MAX, 2), SL_ERANGE);
  for (int i = 0; i < 20; i++) CHECK_EQ(dst[i], 0xee);
  CHECK_EQ(sl_frame_read(f, dst, 20, 0), SL_OK);
  sl_frame_unref(f);
}

static void test_multi_buffer_write_read(void) {
  sl_frame *f = frame10();
  for (size_t i = 0; i < 3; i++) memset(sl_frame_buffer(f, i)->data, 0, 4);
  uint8_t src[12], dst[12];
  for (int i = 0; i < 12; i++) src[i] = (uint8_t)(0x10 + i);

  /* Bytes 3..8 cross both boundaries. */
  CHECK_EQ(sl_frame_write(f, src, 3, 6), SL_OK);
  CHECK_EQ(sl_frame_get_payload(f), 9);
  CHECK_PAYLOADS3(f, 4, 4, 1);
  CHECK_EQ(sl_frame_buffer(f, 0)->data[3], 0x10);
  CHECK_EQ(sl_frame_buffer(f, 1)->data[0], 0x11);
  CHECK_EQ(sl_frame_buffer(f, 1)->data[3], 0x14);
  CHECK_EQ(sl_frame_buffer(f, 2)->data[0], 0x15);

  memset(dst, 0, sizeof dst);
  CHECK_EQ(sl_frame_read(f, dst, 3, 6), SL_OK);
  CHECK(memcmp(dst, src, 6) == 0);
  CHECK_EQ(sl_frame_read(f, dst, 3, 7), SL_ERANGE);

  CHECK_EQ(sl_frame_write(f, src, 0, 12), SL_OK);
  CHECK_EQ(sl_frame_get_payload(f), 12);
  CHECK_EQ(sl_frame_read(f, dst, 0, 12), SL_OK);
  CHECK(memcmp(dst, src, 12) == 0);
  CHECK_EQ(sl_frame_write(f, src, 11, 2), SL_ERANGE);
  CHECK_EQ(sl_frame_buffer(f, 2)->data[3], 0x1b);  /* not overwritten */
  sl_frame_unref(f);
}

static void test_many_buffers(void) {
  sl_frame *f = sl_pool_req_frame(fix_pool, 40);
  CHECK_EQ(sl_frame_buffer_count(f), 10);
  CHECK_EQ(sl_frame_get_size(f), 40);
  CHECK(sl_frame_buffer(f, 10) == NULL);
  uint8_t src[40], dst[40];
  for (int i = 0; i < 40; i++) src[i] = (uint8_t)(i * 7);
  CHECK_EQ(sl_frame_write(f, src, 0, 40), SL_OK);
  CHECK_EQ(sl_frame_read(f, dst, 0, 40), SL_OK);
  CHECK(memcmp(src, dst, 40) == 0);
  CHECK_EQ(sl_frame_buffer(f, 9)->data[0], (uint8_t)(36 * 7));
  sl_frame_unref(f);
}

static void test_iterator_walk(void) {
  sl_frame *f = frame10();
  uint8_t src[12];
  for (int i = 0; i < 12; i++) src[i] = (uint8_t)(0x30 + i);
  CHECK_EQ(sl_frame_write(f, src, 0, 10), SL_OK);

  sl_frame_iter it;
  sl_frame_iter_read(&it, f, 1);
  CHECK(!sl_frame_iter_at_end(&it));
  CHECK(sl_frame_iter_ptr(&it) == sl_frame_buffer(f, 0)->data + 1);
  CHECK_EQ(*sl_frame_iter_ptr(&it), 0x31);
  CHECK_EQ(sl_frame_iter_rem_buffer(&it), 3);
  sl_frame_iter_advance(&it, 3);                 /* onto buffer 1 */
  CHECK(sl_frame_iter_ptr(&it) == sl_frame_buffer(f, 1)->data);
  CHECK_EQ(sl_frame_iter_rem_buffer(&it), 4);
  sl_frame_iter_advance(&it, 5);                 /* buffer 2, offset 1 */
  CHECK_EQ(*sl_frame_iter_ptr(&it), 0x39);
  CHECK_EQ(sl_frame_iter_rem_buffer(&it), 1);    /* payload 2 in buffer 2 */
  sl_frame_iter_advance(&it, 1);
  CHECK(sl_frame_iter_at_end(&it));
  CHECK(sl_frame_iter_ptr(&it) == NULL);
  CHECK_EQ(sl_frame_iter_rem_buffer(&it), 0);
  sl_frame_iter_advance(&it, 1);                 /* stays at the end */
  CHECK(sl_frame_iter_at_end(&it));

  sl_frame_iter_read(&it, f, 3);
  sl_frame_iter_advance(&it, 1000);              /* past the end */
  CHECK(sl_frame_iter_at_end(&it));
  CHECK(sl_frame_iter_ptr(&it) == NULL);
  sl_frame_iter_read(&it, f, 10);                /* at payload end */
  CHECK(sl_frame_iter_at_end(&it));
  sl_frame_iter_read(&it, f, 11);
  CHECK(sl_frame_iter_at_end(&it));

  /* The write iterator spans the capacity, not the payload. */
  sl_frame_iter_write(&it, f, 10);
  CHECK(!sl_frame_iter_at_end(&it));
  CHECK(sl_frame_iter_ptr(&it) == sl_frame_buffer(f, 2)->data + 2);
  CHECK_EQ(sl_frame_iter_rem_buffer(&it), 2);
  sl_frame_iter_write(&it, f, 12);
  CHECK(sl_frame_iter_at_end(&it));
  sl_frame_unref(f);
}

static void test_iterator_short_counts(void) {
  sl_frame *f = frame10();
  uint8_t src[12], dst[12];
  for (int i = 0; i < 12; i++) src[i] = (uint8_t)(0x50 + i);

  sl_frame_iter it;
  sl_frame_iter_write(&it, f, 2);
  CHECK_EQ(sl_frame_iter_put(&it, src, 7), 7);   /* 2..8, two boundaries */
  CHECK_EQ(it.pos, 9);
  CHECK_EQ(sl_frame_iter_put(&it, src + 7, 5), 3);   /* only 9..11 left */
  CHECK(sl_frame_iter_at_end(&it));
  CHECK_EQ(sl_frame_iter_put(&it, src, 1), 0);
  CHECK_EQ(sl_frame_get_payload(f), 0);          /* iterators don't set it */
  CHECK_EQ(sl_frame_buffer(f, 0)->data[2], 0x50);
  CHECK_EQ(sl_frame_buffer(f, 2)->data[3], 0x59);

  CHECK_EQ(sl_frame_set_payload(f, 11), SL_OK);
  sl_frame_iter_read(&it, f, 2);
  memset(dst, 0, sizeof dst);
  CHECK_EQ(sl_frame_iter_get(&it, dst, 12), 9);  /* 2..10 */
  CHECK(memcmp(dst, src, 9) == 0);
  CHECK(sl_frame_iter_at_end(&it));
  CHECK_EQ(sl_frame_iter_get(&it, dst, 1), 0);

  /* Frame to frame: stops at whichever end comes first. */
  sl_frame *g = sl_pool_req_frame(var_pool, 7);
  sl_frame_iter src_it, dst_it;
  sl_frame_iter_read(&src_it, f, 2);
  sl_frame_iter_write(&dst_it, g, 0);
  CHECK_EQ(sl_frame_iter_copy(&src_it, 100, &dst_it), 7);
  CHECK(sl_frame_iter_at_end(&dst_it));
  CHECK(!sl_frame_iter_at_end(&src_it));
  CHECK_EQ(src_it.pos, 9);
  CHECK(memcmp(sl_frame_buffer(g, 0)->data, src, 7) == 0);

  sl_frame_iter_read(&src_it, f, 0);
  sl_frame_iter_write(&dst_it, g, 0);
  CHECK_EQ(sl_frame_iter_copy(&src_it, 3, &dst_it), 3);  /* n bounds it */
  CHECK_EQ(src_it.pos, 3);
  CHECK_EQ(dst_it.pos, 3);

  sl_frame_iter_read(&src_it, f, 8);                     /* 3 bytes left */
  sl_frame_iter_write(&dst_it, g, 0);
  CHECK_EQ(sl_frame_iter_copy(&src_it, 100, &dst_it), 3);
  CHECK(sl_frame_iter_at_end(&src_it));
  CHECK_EQ(sl_frame_buffer(g, 0)->data[0], 0x56);
  CHECK_EQ(sl_frame_buffer(g, 0)->data[2], 0x58);
  sl_frame_unref(g);
  sl_frame_unref(f);
}

/* Buffer 1 holds only 2 bytes: the read side of the frame skips its
** unused 2, the write side does not. */
static void test_read_iterator_no_gap(void) {
  sl_frame *f = frame10();
  for (size_t i = 0; i < 3; i++) {
    sl_buffer *b = sl_frame_buffer(f, i);
    for (int k = 0; k < 4; k++) b->data[k] = (uint8_t)(0x10 * (i + 1) + k);
  }
  CHECK_EQ(sl_buffer_set_payload(sl_frame_buffer(f, 0), 4), SL_OK);
  CHECK_EQ(sl_buffer_set_payload(sl_frame_buffer(f, 1), 2), SL_OK);
  CHECK_EQ(sl_buffer_set_payload(sl_frame_buffer(f, 2), 4), SL_OK);
  CHECK_EQ(sl_frame_get_payload(f), 10);

  uint8_t dst[10];
  const uint8_t want[10] = {0x10, 0x11, 0x12, 0x13, 0x20,
                            0x21, 0x30, 0x31, 0x32, 0x33};
  sl_frame_iter it;
  sl_frame_iter_read(&it, f, 0);
  CHECK_EQ(sl_frame_iter_get(&it, dst, 10), 10);
  CHECK(memcmp(dst, want, 10) == 0);
  memset(dst, 0, sizeof dst);
  CHECK_EQ(sl_frame_read(f, dst, 0, 10), SL_OK);
  CHECK(memcmp(dst, want, 10) == 0);
  CHECK_EQ(sl_frame_read(f, dst, 5, 2), SL_OK);
  CHECK_EQ(dst[0], 0x21);
  CHECK_EQ(dst[1], 0x30);

  sl_frame_iter_read(&it, f, 6);                 /* first byte of buffer 2 */
  CHECK(sl_frame_iter_ptr(&it) == sl_frame_buffer(f, 2)->data);
  sl_frame_iter_write(&it, f, 6);                /* inside buffer 1 */
  CHECK(sl_frame_iter_ptr(&it) == sl_frame_buffer(f, 1)->data + 2);
  sl_frame_unref(f);
}

static void test_empty_frame(void) {
  sl_frame *frames[2] = {sl_pool_req_frame(fix_pool, 0), sl_frame_new()};
  for (int k = 0; k < 2; k++) {
    sl_frame *f = frames[k];
    CHECK(f != NULL);
    CHECK_EQ(sl_frame_buffer_count(f), 0);
    CHECK(sl_frame_buffer(f, 0) == NULL);
    CHECK_EQ(sl_frame_get_size(f), 0);
    CHECK_EQ(sl_frame_get_payload(f), 0);
    CHECK_EQ(sl_frame_get_available(f), 0);
    sl_frame_iter it;
    sl_frame_iter_read(&it, f, 0);
    CHECK(sl_frame_iter_at_end(&it));
    CHECK(sl_frame_iter_ptr(&it) == NULL);
    CHECK_EQ(sl_frame_iter_rem_buffer(&it), 0);
    uint8_t x = 7;
    CHECK_EQ(sl_frame_iter_get(&it, &x, 1), 0);
    sl_frame_iter_write(&it, f, 0);
    CHECK(sl_frame_iter_at_end(&it));
    CHECK(sl_frame_iter_ptr(&it) == NULL);
    CHECK_EQ(sl_frame_iter_put(&it, &x, 1), 0);
    CHECK_EQ(sl_frame_write(f, &x, 0, 1), SL_ERANGE);
    CHECK_EQ(sl_frame_read(f, &x, 0, 1), SL_ERANGE);
    CHECK_EQ(sl_frame_read(f, &x, 0, 0), SL_OK);
    CHECK_EQ(sl_frame_set_payload(f, 0), SL_OK);
    CHECK_EQ(sl_frame_set_payload(f, 1), SL_ERANGE);
    CHECK_EQ(sl_frame_adjust_payload(f, 1), SL_ERANGE);
    sl_frame_set_payload_full(f);
    CHECK_EQ(sl_frame_get_payload(f), 0);
    sl_frame_unref(f);
  }
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 0);
}

static void test_take_buffers(void) {
  sl_frame *a = sl_pool_req_frame(fix_pool, 12);   /* 3 buffers of 4 */
  CHECK_EQ(sl_frame_write(a, "abcdefghij", 0, 10), SL_OK);
  sl_buffer *b0 = sl_frame_buffer(a, 0), *b2 = sl_frame_buffer(a, 2);
  sl_buffer *got[3];
  CHECK_EQ(sl_frame_take_buffers(a, got, 1), 1);   /* the first; the rest move up */
  CHECK(got[0] == b0);
  CHECK_EQ(sl_frame_buffer_count(a), 2);
  CHECK(sl_frame_buffer(a, 1) == b2);
  CHECK_EQ(sl_frame_get_payload(a), 6);
  sl_pool_ret_buffer(got[0]);
  CHECK_EQ(sl_frame_take_buffers(a, got, 3), 2);
  CHECK(got[1] == b2);
  CHECK_EQ(sl_frame_buffer_count(a), 0);
  CHECK_EQ(sl_frame_take_buffers(a, got, 3), 0);
  sl_frame_unref(a);                                /* holds nothing now */
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 2);
  sl_pool_ret_buffer(got[0]);
  sl_pool_ret_buffer(got[1]);
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 0);
}

static void test_append_frame(void) {
  sl_frame *a = sl_pool_req_frame(fix_pool, 8);    /* 2 buffers */
  sl_frame *b = sl_pool_req_frame(var_pool, 5);    /* 1 buffer */
  CHECK_EQ(sl_frame_write(a, "abcdef", 0, 6), SL_OK);
  CHECK_EQ(sl_frame_write(b, "XYZ", 0, 3), SL_OK);
  sl_buffer *bb = sl_frame_buffer(b, 0);
  sl_frame_set_channel(b, 3);

  CHECK_EQ(sl_frame_append_frame(a, b), SL_OK);
  CHECK_EQ(sl_frame_buffer_count(a), 3);
  CHECK(sl_frame_buffer(a, 2) == bb);              /* moved, not copied */
  CHECK_EQ(sl_frame_buffer_count(b), 0);
  CHECK_EQ(sl_frame_get_size(b), 0);
  CHECK_EQ(sl_frame_get_payload(b), 0);
  CHECK_EQ(sl_frame_get_channel(a), 0);            /* metadata stays */
  CHECK_EQ(sl_frame_get_size(a), 13);
  CHECK_EQ(sl_frame_get_payload(a), 9);
  char dst[10] = {0};
  CHECK_EQ(sl_frame_read(a, dst, 0, 9), SL_OK);
  CHECK_STR(dst, "abcdefXYZ");
  CHECK_EQ(sl_frame_append_frame(a, a), SL_EINVAL);
  CHECK_EQ(sl_frame_buffer_count(a), 3);

  /* Buffers beyond the inline slots. */
  sl_frame *c = sl_pool_req_frame(fix_pool, 12);
  CHECK_EQ(sl_frame_append_frame(a, c), SL_OK);
  CHECK_EQ(sl_frame_buffer_count(a), 6);
  CHECK_EQ(sl_frame_get_size(a), 25);

  CHECK_EQ(sl_pool_get_alloc_count(var_pool), 1);
  sl_frame_unref(b);                               /* holds nothing now */
  CHECK_EQ(sl_pool_get_alloc_count(var_pool), 1);
  sl_frame_unref(c);
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 5);
  sl_frame_unref(a);
  CHECK_EQ(sl_pool_get_alloc_count(var_pool), 0);
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 0);
}

static void test_append_buffer(void) {
  sl_frame *f = sl_frame_new();
  uint32_t raw = 0;
  sl_buffer *b = sl_pool_alloc_buffer(var_pool, 6, &raw);
  CHECK_EQ(raw, 6);
  CHECK_EQ(sl_frame_append_buffer(f, b), SL_OK);
  CHECK_EQ(sl_frame_buffer_count(f), 1);
  CHECK_EQ(sl_frame_get_size(f), 6);
  CHECK_EQ(sl_pool_get_alloc_count(var_pool), 1);
  sl_frame_unref(f);
  CHECK_EQ(sl_pool_get_alloc_count(var_pool), 0);
}

static void test_clear(void) {
  sl_frame *f = frame10();
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 3);
  CHECK_EQ(sl_pool_get_alloc_bytes(fix_pool), 12);
  sl_frame_clear(f);
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 0);
  CHECK_EQ(sl_pool_get_alloc_bytes(fix_pool), 0);
  CHECK_EQ(sl_frame_buffer_count(f), 0);
  CHECK_EQ(sl_frame_get_size(f), 0);
  CHECK_EQ(sl_frame_refcount(f), 1);
  sl_frame_clear(f);                               /* twice is harmless */
  sl_frame_unref(f);
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 0);
}

/* ---- threads ---- */

#define REF_THREADS 4
#define REF_ROUNDS 20000

static void *ref_worker(void *arg) {
  sl_frame *f = arg;
  for (int i = 0; i < REF_ROUNDS; i++) sl_frame_ref(f);
  for (int i = 0; i < REF_ROUNDS; i++) sl_frame_unref(f);
  return NULL;
}

static void *drop_worker(void *arg) {
  sched_yield();
  sl_frame_unref(arg);
  return NULL;
}

static void test_refcount_threads(void) {
  sl_frame *f = frame10();
  pthread_t t[REF_THREADS];
  for (int i = 0; i < REF_THREADS; i++)
    pthread_create(&t[i], NULL, ref_worker, f);
  for (int i = 0; i < REF_THREADS; i++) pthread_join(t[i], NULL);
  CHECK_EQ(sl_frame_refcount(f), 1);
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 3);

  /* Every thread holds one ref; whichever drops the last frees the frame. */
  sl_frame_ref(f);
  sl_frame_ref(f);
  sl_frame_ref(f);
  CHECK_EQ(sl_frame_refcount(f), 4);
  sl_frame_unref(f);
  CHECK_EQ(sl_frame_refcount(f), 3);
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 3);
  for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, drop_worker, f);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 0);
}

static int other_thread_result;

static void *locked_by_me_worker(void *arg) {
  other_thread_result = sl_frame_locked_by_me(arg);
  return NULL;
}

static void test_locked_by_me(void) {
  sl_frame *f = sl_frame_new();
  pthread_t t;
  CHECK(!sl_frame_locked_by_me(f));
  sl_frame_lock(f);
  CHECK(sl_frame_locked_by_me(f));
  other_thread_result = -1;
  pthread_create(&t, NULL, locked_by_me_worker, f);
  pthread_join(t, NULL);
  CHECK_EQ(other_thread_result, 0);
  sl_frame_unlock(f);
  CHECK(!sl_frame_locked_by_me(f));
  sl_frame_unref(f);
}

/* The caller alone holds f: not locked; a second reference: locked, by
** the caller, and excluding another thread's sl_frame_lock. */
static atomic_int unless_sole_in;
static void *unless_sole_worker(void *arg) {
  sl_frame_lock(arg);
  atomic_store(&unless_sole_in, 1);
  sl_frame_unlock(arg);
  return NULL;
}

static void test_lock_unless_sole(void) {
  sl_frame *f = sl_frame_new();
  CHECK_EQ(sl_frame_lock_unless_sole(f), 0);
  CHECK(!sl_frame_locked_by_me(f));
  sl_frame_lock(f);                     /* the lock is free */
  sl_frame_unlock(f);
  sl_frame_ref(f);
  CHECK_EQ(sl_frame_lock_unless_sole(f), 1);
  CHECK(sl_frame_locked_by_me(f));
  atomic_store(&unless_sole_in, 0);
  pthread_t t;
  pthread_create(&t, NULL, unless_sole_worker, f);
  for (int i = 0; i < 1000; i++) sched_yield();
  CHECK_EQ(atomic_load(&unless_sole_in), 0);   /* held off by our lock */
  sl_frame_unlock(f);
  pthread_join(t, NULL);
  CHECK_EQ(atomic_load(&unless_sole_in), 1);
  sl_frame_unref(f);
  CHECK_EQ(sl_frame_lock_unless_sole(f), 0);   /* sole again */
  sl_frame_unref(f);
}

#define LOCK_ROUNDS 100000
static long shared_counter;

static void *lock_worker(void *arg) {
  sl_frame *f = arg;
  for (int i = 0; i < LOCK_ROUNDS; i++) {
    sl_frame_lock(f);
    long v = shared_counter;
    if ((i & 1023) == 0) sched_yield();   /* widen the window */
    shared_counter = v + 1;
    sl_frame_unlock(f);
  }
  return NULL;
}

static void test_lock_excludes(void) {
  sl_frame *f = sl_frame_new();
  shared_counter = 0;
  pthread_t a, b;
  pthread_create(&a, NULL, lock_worker, f);
  pthread_create(&b, NULL, lock_worker, f);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  CHECK_EQ(shared_counter, 2L * LOCK_ROUNDS);
  sl_frame_unref(f);
}

static void setup(void) {
  var_pool = sl_pool_new();
  fix_pool = sl_pool_new();
  CHECK(var_pool != NULL && fix_pool != NULL);
  sl_pool_set_fixed_size(fix_pool, 4);
}

static void test_nothing_leaked(void) {
  CHECK_EQ(sl_pool_get_alloc_count(var_pool), 0);
  CHECK_EQ(sl_pool_get_alloc_count(fix_pool), 0);
  CHECK_EQ(sl_pool_get_alloc_bytes(var_pool), 0);
  CHECK_EQ(sl_pool_get_alloc_bytes(fix_pool), 0);
  sl_pool_unref(var_pool);
  sl_pool_unref(fix_pool);
}

static const struct tt_case cases[] = {
  {"setup", setup},
  {"capacity, payload, available", test_sizes},
  {"setPayload walk: full, partial, empty", test_set_payload_walk},
  {"setPayload failure changes nothing", test_set_payload_failure_changes_nothing},
  {"minPayload only grows", test_min_payload},
  {"adjustPayload", test_adjust_payload},
  {"setPayloadFull/Empty", test_full_and_empty},
  {"channel, error, flags", test_metadata},
  {"setFirstUser/setLastUser OR", test_user_flags_or},
  {"write grows payload, never shrinks, checks capacity", test_write_grows_payload},
  {"read checks payload", test_read},
  {"multi-buffer write/read across boundaries", test_multi_buffer_write_read},
  {"ten buffers", test_many_buffers},
  {"iterator ptr/rem_buffer/advance/at_end", test_iterator_walk},
  {"iterator put/get/copy short counts", test_iterator_short_counts},
  {"read iterator leaves no gap", test_read_iterator_no_gap},
  {"size-0 frame", test_empty_frame},
  {"append_frame moves buffers", test_append_frame},
  {"take_buffers hands buffers out", test_take_buffers},
  {"append_buffer", test_append_buffer},
  {"clear returns buffers", test_clear},
  {"refcount across threads", test_refcount_threads},
  {"locked_by_me", test_locked_by_me},
  {"lock_unless_sole", test_lock_unless_sole},
  {"lock excludes", test_lock_excludes},
  {"nothing leaked", test_nothing_leaked},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
