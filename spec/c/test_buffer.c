/*
** sl_buffer: Rogue's buffer arithmetic (rogue-reference 1.1). Every
** buffer here comes from a real pool and goes back to it.
*/
#include <stdint.h>
#include <string.h>

#include "streamlua/buffer.h"
#include "streamlua/pool.h"
#include "streamlua/status.h"
#include "tt.h"

/* The buffer's internal fields, checked in one line. */
#define CHECK_LAYOUT(b, raw, head, tail, pl)   \
  do {                                          \
    CHECK_EQ((b)->raw_size, (raw));             \
    CHECK_EQ((b)->head_room, (head));           \
    CHECK_EQ((b)->tail_room, (tail));           \
    CHECK_EQ((b)->payload, (pl));               \
  } while (0)

static sl_pool *pool;

static sl_buffer *new_buffer(uint32_t size) {
  uint32_t raw = 0;
  sl_buffer *b = sl_pool_alloc_buffer(pool, size, &raw);
  CHECK(b != NULL);
  CHECK_EQ(raw, size);
  return b;
}

static void test_fresh(void) {
  sl_buffer *b = new_buffer(100);
  CHECK_LAYOUT(b, 100, 0, 0, 0);
  CHECK_EQ(b->alloc_size, 100);
  CHECK(b->pool == pool);
  CHECK_EQ(sl_buffer_get_size(b), 100);
  CHECK_EQ(sl_buffer_get_payload(b), 0);
  CHECK_EQ(sl_buffer_get_available(b), 100);
  CHECK(sl_buffer_begin(b) == b->data);
  sl_pool_ret_buffer(b);
}

/* getSize = raw - (head + tail); getPayload = payload - head;
** getAvailable = raw - payload - tail. */
static void test_formulas_with_rooms(void) {
  sl_buffer *b = new_buffer(100);
  CHECK_EQ(sl_buffer_adjust_header(b, 10), SL_OK);
  CHECK_EQ(sl_buffer_adjust_tail(b, 20), SL_OK);
  CHECK_LAYOUT(b, 100, 10, 20, 10);   /* payload pulled up to the head */
  CHECK_EQ(sl_buffer_get_size(b), 70);
  CHECK_EQ(sl_buffer_get_payload(b), 0);
  CHECK_EQ(sl_buffer_get_available(b), 70);
  CHECK(sl_buffer_begin(b) == b->data + 10);

  CHECK_EQ(sl_buffer_set_payload(b, 50), SL_OK);
  CHECK_EQ(b->payload, 60);           /* absolute: includes the head */
  CHECK_EQ(sl_buffer_get_payload(b), 50);
  CHECK_EQ(sl_buffer_get_available(b), 20);
  sl_pool_ret_buffer(b);
}

static void test_available_clamps(void) {
  sl_buffer *b = new_buffer(100);
  CHECK_EQ(sl_buffer_adjust_tail(b, 20), SL_OK);
  sl_buffer_set_payload_full(b);
  CHECK_EQ(b->payload, 80);
  /* Growing the tail over valid data is allowed (delta <= getSize) and
  ** leaves raw - payload - tail negative: reported as 0. */
  CHECK_EQ(sl_buffer_adjust_tail(b, 10), SL_OK);
  CHECK_EQ(b->tail_room, 30);
  CHECK_EQ(sl_buffer_get_size(b), 70);
  CHECK_EQ(sl_buffer_get_payload(b), 80);
  CHECK_EQ(sl_buffer_get_available(b), 0);
  sl_pool_ret_buffer(b);
}

static void test_set_payload(void) {
  sl_buffer *b = new_buffer(64);
  CHECK_EQ(sl_buffer_adjust_header(b, 4), SL_OK);
  CHECK_EQ(sl_buffer_set_payload(b, 60), SL_OK);     /* exactly getSize */
  CHECK_EQ(b->payload, 64);
  CHECK_EQ(sl_buffer_set_payload(b, 10), SL_OK);     /* may shrink */
  CHECK_EQ(b->payload, 14);
  CHECK_EQ(sl_buffer_set_payload(b, 61), SL_ERANGE);
  CHECK_LAYOUT(b, 64, 4, 0, 14);
  CHECK_EQ(sl_buffer_set_payload(b, UINT32_MAX), SL_ERANGE);
  CHECK_LAYOUT(b, 64, 4, 0, 14);
  CHECK_EQ(sl_buffer_set_payload(b, 0), SL_OK);
  CHECK_LAYOUT(b, 64, 4, 0, 4);
  sl_pool_ret_buffer(b);
}

static void test_min_payload(void) {
  sl_buffer *b = new_buffer(32);
  CHECK_EQ(sl_buffer_set_payload(b, 10), SL_OK);
  CHECK_EQ(sl_buffer_min_payload(b, 5), SL_OK);      /* never shrinks */
  CHECK_EQ(sl_buffer_get_payload(b), 10);
  CHECK_EQ(sl_buffer_min_payload(b, 10), SL_OK);
  CHECK_EQ(sl_buffer_get_payload(b), 10);
  CHECK_EQ(sl_buffer_min_payload(b, 20), SL_OK);
  CHECK_EQ(sl_buffer_get_payload(b), 20);
  CHECK_EQ(sl_buffer_min_payload(b, 33), SL_ERANGE);
  CHECK_EQ(sl_buffer_get_payload(b), 20);
  CHECK_EQ(sl_buffer_min_payload(b, 32), SL_OK);
  CHECK_EQ(sl_buffer_get_payload(b), 32);
  sl_pool_ret_buffer(b);
}

static void test_adjust_payload(void) {
  sl_buffer *b = new_buffer(32);
  CHECK_EQ(sl_buffer_adjust_header(b, 2), SL_OK);    /* size 30 */
  CHECK_EQ(sl_buffer_adjust_payload(b, 12), SL_OK);
  CHECK_EQ(sl_buffer_get_payload(b), 12);
  CHECK_EQ(sl_buffer_adjust_payload(b, -5), SL_OK);
  CHECK_EQ(sl_buffer_get_payload(b), 7);
  CHECK_EQ(b->payload, 9);
  /* Below zero: refused, nothing changed. */
  CHECK_EQ(sl_buffer_adjust_payload(b, -8), SL_ERANGE);
  CHECK_LAYOUT(b, 32, 2, 0, 9);
  /* Past getSize: refused, nothing changed. */
  CHECK_EQ(sl_buffer_adjust_payload(b, 24), SL_ERANGE);
  CHECK_LAYOUT(b, 32, 2, 0, 9);
  CHECK_EQ(sl_buffer_adjust_payload(b, 23), SL_OK);  /* exactly full */
  CHECK_EQ(sl_buffer_get_payload(b), 30);
  CHECK_EQ(sl_buffer_adjust_payload(b, -30), SL_OK); /* exactly empty */
  CHECK_EQ(sl_buffer_get_payload(b), 0);
  CHECK_EQ(sl_buffer_set_payload(b, 5), SL_OK);
  /* Extreme deltas (a Lua integer can be anything) are plain range errors. */
  CHECK_EQ(sl_buffer_adjust_payload(b, INT64_MIN), SL_ERANGE);
  CHECK_EQ(sl_buffer_adjust_payload(b, INT64_MAX), SL_ERANGE);
  CHECK_LAYOUT(b, 32, 2, 0, 7);
  sl_pool_ret_buffer(b);
}

/* A positive delta strips bytes off the front of the payload. */
static void test_adjust_header_strips(void) {
  sl_buffer *b = new_buffer(16);
  for (int i = 0; i < 16; i++) b->data[i] = (uint8_t)(0xa0 + i);
  CHECK_EQ(sl_buffer_set_payload(b, 10), SL_OK);
  CHECK_EQ(sl_buffer_adjust_header(b, 3), SL_OK);
  CHECK_LAYOUT(b, 16, 3, 0, 10);      /* absolute end unchanged */
  CHECK_EQ(sl_buffer_get_payload(b), 7);
  CHECK_EQ(sl_buffer_get_size(b), 13);
  CHECK_EQ(sl_buffer_begin(b)[0], 0xa3);
  /* Stripping past the payload drags the payload end along. */
  CHECK_EQ(sl_buffer_adjust_header(b, 9), SL_OK);
  CHECK_LAYOUT(b, 16, 12, 0, 12);
  CHECK_EQ(sl_buffer_get_payload(b), 0);
  /* More than getSize (4 now) is refused. */
  CHECK_EQ(sl_buffer_adjust_header(b, 5), SL_ERANGE);
  CHECK_LAYOUT(b, 16, 12, 0, 12);
  CHECK_EQ(sl_buffer_adjust_header(b, 4), SL_OK);
  CHECK_LAYOUT(b, 16, 16, 0, 16);
  CHECK_EQ(sl_buffer_get_size(b), 0);
  sl_pool_ret_buffer(b);
}

/* A negative delta prepends: the header bytes become payload. */
static void test_adjust_header_prepends(void) {
  sl_buffer *b = new_buffer(16);
  for (int i = 0; i < 16; i++) b->data[i] = (uint8_t)i;
  CHECK_EQ(sl_buffer_adjust_header(b, 6), SL_OK);
  CHECK_EQ(sl_buffer_set_payload(b, 4), SL_OK);      /* bytes 6..9 */
  CHECK_EQ(sl_buffer_adjust_header(b, -2), SL_OK);
  CHECK_LAYOUT(b, 16, 4, 0, 10);
  CHECK_EQ(sl_buffer_get_payload(b), 6);
  CHECK_EQ(sl_buffer_begin(b)[0], 4);
  /* Only as much as the head room holds. */
  CHECK_EQ(sl_buffer_adjust_header(b, -5), SL_ERANGE);
  CHECK_LAYOUT(b, 16, 4, 0, 10);
  CHECK_EQ(sl_buffer_adjust_header(b, -4), SL_OK);
  CHECK_LAYOUT(b, 16, 0, 0, 10);
  CHECK_EQ(sl_buffer_get_payload(b), 10);
  CHECK_EQ(sl_buffer_adjust_header(b, -1), SL_ERANGE);
  CHECK_EQ(sl_buffer_adjust_header(b, INT64_MIN), SL_ERANGE);
  CHECK_EQ(sl_buffer_adjust_header(b, INT64_MAX), SL_ERANGE);
  CHECK_LAYOUT(b, 16, 0, 0, 10);
  sl_pool_ret_buffer(b);
}

static void test_zero_header(void) {
  sl_buffer *b = new_buffer(40);
  CHECK_EQ(sl_buffer_adjust_header(b, 8), SL_OK);
  CHECK_EQ(sl_buffer_set_payload(b, 12), SL_OK);
  CHECK_EQ(b->payload, 20);
  sl_buffer_zero_header(b);
  CHECK_LAYOUT(b, 40, 0, 0, 20);      /* former header is payload now */
  CHECK_EQ(sl_buffer_get_payload(b), 20);
  CHECK_EQ(sl_buffer_get_size(b), 40);
  sl_pool_ret_buffer(b);
}

static void test_adjust_tail(void) {
  sl_buffer *b = new_buffer(40);
  CHECK_EQ(sl_buffer_set_payload(b, 10), SL_OK);
  CHECK_EQ(sl_buffer_adjust_tail(b, 8), SL_OK);
  CHECK_LAYOUT(b, 40, 0, 8, 10);      /* payload not touched */
  CHECK_EQ(sl_buffer_get_size(b), 32);
  CHECK_EQ(sl_buffer_get_available(b), 22);
  CHECK_EQ(sl_buffer_adjust_tail(b, 33), SL_ERANGE); /* > getSize */
  CHECK_EQ(sl_buffer_adjust_tail(b, -9), SL_ERANGE); /* > tail room */
  CHECK_LAYOUT(b, 40, 0, 8, 10);
  CHECK_EQ(sl_buffer_adjust_tail(b, -3), SL_OK);
  CHECK_LAYOUT(b, 40, 0, 5, 10);
  CHECK_EQ(sl_buffer_adjust_tail(b, INT64_MIN), SL_ERANGE);
  CHECK_EQ(sl_buffer_adjust_tail(b, INT64_MAX), SL_ERANGE);
  CHECK_LAYOUT(b, 40, 0, 5, 10);
  sl_buffer_set_payload_full(b);
  CHECK_EQ(b->payload, 35);
  sl_buffer_zero_tail(b);
  CHECK_LAYOUT(b, 40, 0, 0, 35);
  CHECK_EQ(sl_buffer_get_available(b), 5);
  sl_pool_ret_buffer(b);
}

static void test_full_and_empty(void) {
  sl_buffer *b = new_buffer(50);
  CHECK_EQ(sl_buffer_adjust_header(b, 5), SL_OK);
  CHECK_EQ(sl_buffer_adjust_tail(b, 7), SL_OK);
  sl_buffer_set_payload_full(b);
  CHECK_EQ(b->payload, 43);           /* raw - tail */
  CHECK_EQ(sl_buffer_get_payload(b), 38);
  CHECK_EQ(sl_buffer_get_payload(b), sl_buffer_get_size(b));
  CHECK_EQ(sl_buffer_get_available(b), 0);
  sl_buffer_set_payload_empty(b);
  CHECK_EQ(b->payload, 5);            /* = head */
  CHECK_EQ(sl_buffer_get_payload(b), 0);
  CHECK_EQ(sl_buffer_get_available(b), 38);
  sl_pool_ret_buffer(b);
}

static void test_all_back(void) {
  CHECK_EQ(sl_pool_get_alloc_count(pool), 0);
  CHECK_EQ(sl_pool_get_alloc_bytes(pool), 0);
}

static void setup(void) {
  pool = sl_pool_new();
  CHECK(pool != NULL);
}

static void teardown(void) { sl_pool_unref(pool); }

static const struct tt_case cases[] = {
  {"setup", setup},
  {"fresh buffer", test_fresh},
  {"size/payload/available with head and tail room", test_formulas_with_rooms},
  {"available clamps at 0", test_available_clamps},
  {"setPayload in and out of range", test_set_payload},
  {"minPayload only grows", test_min_payload},
  {"adjustPayload in and out of range", test_adjust_payload},
  {"adjustHeader positive strips", test_adjust_header_strips},
  {"adjustHeader negative prepends", test_adjust_header_prepends},
  {"zeroHeader", test_zero_header},
  {"adjustTail", test_adjust_tail},
  {"setPayloadFull/Empty", test_full_and_empty},
  {"every buffer went back", test_all_back},
  {"teardown", teardown},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
