/*
** Fuzzes the packetizer's receive parser (src/protocols/packetizer_rx.c),
** both versions, against a model of the rules written here from the
** reference (rogue-link-reference 3.3, 3.4, 3.6), and sends every frame
** it delivers through a second packetizer and back.
**
** Input: a control byte (bit 0: version 2; bit 1: enIbCrc; bit 2: enSsi;
** bits 7:4: when not 0, the bound on unfinished bytes is 24 x that), then
** segments, each a length (LE16, taken modulo 4096), a flag byte (bit 0:
** frame error; bit 1: reset the packetizer first; bit 2: in 7-byte
** buffers; bit 3: the sender keeps a second reference) and the bytes.
** Applications exist for dests 0, 1 and 2 only.
**
** Invariants: the frames delivered to each dest (payload, flags, error)
** and the drop, reset and no-application counts are the model's; every
** delivered frame sent into another Core's application comes out of a
** third Core the same (v1 keeps lastUser & 0x7F).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "streamlua/packetizer.h"
#include "streamlua/pool.h"

#include "../../src/core/crc32.h"

#define NAPPS 3
#define MAX_SEGS 64

/* ---- the model ---- */

typedef struct mslot {
  int open;
  uint8_t *bytes;
  uint32_t len, fnum, next, crc;
  uint8_t dest, first;
} mslot;

typedef struct mframe {
  uint8_t *bytes;
  uint32_t len;
  uint16_t flags;
  uint8_t error;
} mframe;

typedef struct model {
  int v2, ib, ssi;
  uint64_t max, pending;
  mslot slot[256];
  mframe got[NAPPS][MAX_SEGS];
  size_t ngot[NAPPS];
  uint64_t drops, resets, no_app;
} model;

static void m_discard(model *m, mslot *s) {
  if (!s->open) return;
  free(s->bytes);
  m->pending -= s->len;
  memset(s, 0, sizeof *s);
}

static void m_drop(model *m, mslot *s) {
  m->drops++;
  m_discard(m, s);
}

/* Appends; 0, or -1 when over the bound (dropped). */
static int m_append(model *m, mslot *s, const uint8_t *p, uint32_t n) {
  if (m->pending + n > m->max) {
    m_drop(m, s);
    return -1;
  }
  s->bytes = realloc(s->bytes, s->len + n + 1);
  memcpy(s->bytes + s->len, p, n);
  s->len += n;
  m->pending += n;
  return 0;
}

static void m_finish(model *m, mslot *s, uint8_t last) {
  if (s->dest < NAPPS) {
    mframe *f = &m->got[s->dest][m->ngot[s->dest]++];
    f->bytes = s->bytes;
    f->len = s->len;
    f->flags = (uint16_t)(s->first | last << 8);
    f->error = m->ssi && (last & 1) ? 0x80 : 0;
    s->bytes = NULL;
  } else {
    m->no_app++;
  }
  m->pending -= s->len;
  free(s->bytes);
  memset(s, 0, sizeof *s);
}

static void m_v1(model *m, const uint8_t *d, uint32_t n) {
  uint32_t fnum = (uint32_t)(d[0] >> 4) | (uint32_t)d[1] << 4;
  uint32_t segn = d[2] | (uint32_t)d[3] << 8 | (uint32_t)d[4] << 16;
  mslot *s = &m->slot[0];
  if (segn > 0 && (!s->open || fnum != s->fnum || segn != s->next)) {
    m_drop(m, s);
    return;
  }
  if (segn == 0) {
    m_discard(m, s);   /* replaced: not a drop */
    s->open = 1;
    s->fnum = fnum;
    s->dest = d[5];
    s->first = d[7];
  }
  if (m_append(m, s, d + 8, n - 9) != 0) return;
  s->next = segn + 1;
  if (d[n - 1] & 0x80) m_finish(m, s, d[n - 1] & 0x7F);
}

static void m_v2(model *m, const uint8_t *d, uint32_t n) {
  const uint8_t *t = d + n - 8;
  uint32_t segn = d[4] | (uint32_t)d[5] << 8;
  int sof = d[7] >> 7;
  mslot *s = &m->slot[d[2]];
  uint32_t crc = 0;
  int bad_crc = 0;
  if (m->ib) {
    crc = sl_crc32(sof ? 0 : s->crc, d, n - 4);
    bad_crc = crc != ((uint32_t)t[4] << 24 | (uint32_t)t[5] << 16 | (uint32_t)t[6] << 8 | t[7]);
  }
  if (sof == s->open || bad_crc || segn != (s->open ? s->next : 0)) {
    m_drop(m, s);
    return;
  }
  if (sof) {
    s->open = 1;
    s->dest = d[2];
    s->first = d[1];
  }
  uint32_t count = t[2] > 8 ? 8 : t[2];
  if (m_append(m, s, d + 8, n - 24 + count) != 0) return;
  s->next = (segn + 1) & 0xFFFF;
  s->crc = crc;
  if (t[1] & 1) m_finish(m, s, t[0]);
}

static void m_segment(model *m, const uint8_t *d, uint32_t n, int ferr, int nbuf) {
  if (nbuf == 0) return;
  uint32_t min = m->v2 ? 24 : 10;
  int ver = d[0] & 0xF;
  if (ferr || nbuf > 1 || n < min || ver != (m->v2 ? 2 : 0) || (m->v2 && n % 8)) {
    m->drops++;
    return;
  }
  if (m->v2) m_v2(m, d, n);
  else m_v1(m, d, n);
}

static void m_reset(model *m) {
  for (int i = 0; i < 256; i++)
    if (m->slot[i].open) {
      m->resets++;
      m_drop(m, &m->slot[i]);
    }
}

static void m_free(model *m) {
  for (int i = 0; i < 256; i++) m_discard(m, &m->slot[i]);
  for (int a = 0; a < NAPPS; a++)
    for (size_t i = 0; i < m->ngot[a]; i++) free(m->got[a][i].bytes);
}

/* ---- the run ---- */

/* One segment into the transport as the flags say. */
static void feed(sl_object *t, sl_pool *pool, sl_pool *small, const uint8_t *d,
                 uint32_t n, uint8_t flags) {
  sl_frame *f = sl_pool_req_frame(flags & 4 ? small : pool, n);
  FUZZ_CHECK(f != NULL);
  if (n > 0) FUZZ_CHECK(sl_frame_write(f, d, 0, n) == SL_OK);
  sl_frame_set_error(f, flags & 1);
  if (flags & 8) sl_frame_ref(f);
  sl_slave_accept(t->slave, f);
  if (flags & 8) sl_frame_unref(f);
  sl_frame_unref(f);
}

/* A frame of g's bytes and flags through m. */
static void send_frame(sl_master *m, const mframe *g) {
  sl_frame *f = sl_master_req_frame(m, g->len, 1);
  FUZZ_CHECK(f != NULL && sl_frame_write(f, g->bytes, 0, g->len) == SL_OK);
  sl_frame_set_flags(f, g->flags);
  sl_master_send_frame(m, f);
  sl_frame_unref(f);
}

/* Every frame the model delivered goes out through tx and comes back
** through rx the same. */
static void round_trip(const model *m) {
  int ver = m->v2 ? 2 : 1;
  sl_packetizer *tx = sl_packetizer_new(ver, 1, 1, 0, NULL);
  sl_packetizer *rx = sl_packetizer_new(ver, 1, 1, 0, NULL);
  sl_object *tt = sl_packetizer_transport(tx), *rt = sl_packetizer_transport(rx);
  sl_master_add_slave(tt->master, rt->slave);
  sl_pool_set_fixed_size(rt->slave->pool, 64);   /* several segments a frame */
  sl_object *src = sl_master_new(NULL);
  for (uint32_t a = 0; a < NAPPS; a++) {
    sl_object *in = sl_packetizer_application(tx, a, NULL);
    sl_object *out = sl_packetizer_application(rx, a, NULL);
    fuzz_capture *cap = fuzz_capture_new();
    sl_master_add_slave(out->master, &cap->slave);
    sl_master_add_slave(src->master, in->slave);
    size_t k = 0;   /* an empty frame sends nothing: they are skipped */
    for (size_t i = 0; i < m->ngot[a]; i++)
      if (m->got[a][i].len > 0) send_frame(src->master, &m->got[a][i]);
    sl_master_clear_slaves(src->master);
    for (size_t i = 0; i < m->ngot[a]; i++) {
      const mframe *g = &m->got[a][i];
      if (g->len == 0) continue;
      FUZZ_CHECK(k < cap->n);
      const fuzz_frame *c = &cap->frames[k++];
      FUZZ_CHECK(c->len == g->len && c->error == 0);
      FUZZ_CHECK(c->flags == (g->flags & (m->v2 ? 0xFFFFu : 0x7FFFu)));
      FUZZ_CHECK(memcmp(cap->bytes + c->off, g->bytes, g->len) == 0);
    }
    FUZZ_CHECK(k == cap->n);
    sl_object_unref(&cap->obj);
    sl_object_unref(in);
    sl_object_unref(out);
  }
  FUZZ_CHECK(sl_packetizer_drop_count(rx) == 0);
  sl_object_unref(src);
  sl_object_unref(tt);
  sl_object_unref(rt);
  sl_object_unref(sl_packetizer_object(tx));
  sl_object_unref(sl_packetizer_object(rx));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  if (size < 1) return 0;
  model *m = calloc(1, sizeof *m);
  FUZZ_CHECK(m != NULL);
  m->v2 = data[0] & 1;
  m->ib = m->v2 && (data[0] & 2);
  m->ssi = (data[0] >> 2) & 1;
  m->max = data[0] >> 4 ? 24u * (data[0] >> 4) : SL_PACK_MAX_PENDING_DEFAULT;
  sl_packetizer *p = sl_packetizer_new(m->v2 ? 2 : 1, m->ib, 1, m->ssi, NULL);
  FUZZ_CHECK(p != NULL);
  sl_packetizer_set_max_pending(p, m->max);
  sl_object *t = sl_packetizer_transport(p);
  sl_object *apps[NAPPS];
  fuzz_capture *caps[NAPPS];
  for (uint32_t a = 0; a < NAPPS; a++) {
    apps[a] = sl_packetizer_application(p, a, NULL);
    caps[a] = fuzz_capture_new();
    sl_master_add_slave(apps[a]->master, &caps[a]->slave);
  }
  sl_pool *pool = sl_pool_new(), *small = sl_pool_new();
  sl_pool_set_fixed_size(small, 7);
  size_t at = 1;
  for (int k = 0; k < MAX_SEGS && at + 3 <= size; k++) {
    uint32_t n = sl_load_le16(data + at) % 4096;
    uint8_t flags = data[at + 2];
    at += 3;
    if (n > size - at) n = (uint32_t)(size - at);
    if (flags & 2) {
      size_t dropped = sl_packetizer_reset(p);
      uint64_t before = m->resets;
      m_reset(m);
      FUZZ_CHECK(dropped == m->resets - before);
    }
    int nbuf = n == 0 ? 0 : (flags & 4) ? (int)((n + 6) / 7) : 1;
    m_segment(m, data + at, n, flags & 1, nbuf);
    feed(t, pool, small, data + at, n, flags);
    at += n;
  }
  sl_object *core = sl_packetizer_object(p);
  FUZZ_CHECK(sl_packetizer_drop_count(p) == m->drops);
  FUZZ_CHECK(fuzz_counter(core, "dropReset") == m->resets);
  FUZZ_CHECK(fuzz_counter(core, "noApplication") == m->no_app);
  for (int a = 0; a < NAPPS; a++) {
    fuzz_capture *c = caps[a];
    FUZZ_CHECK(c->n == m->ngot[a]);
    for (size_t i = 0; i < c->n; i++) {
      const mframe *g = &m->got[a][i];
      FUZZ_CHECK(c->frames[i].len == g->len && c->frames[i].flags == g->flags &&
                 c->frames[i].error == g->error && c->frames[i].channel == 0);
      FUZZ_CHECK(g->len == 0 || memcmp(c->bytes + c->frames[i].off, g->bytes, g->len) == 0);
    }
  }
  round_trip(m);
  for (int a = 0; a < NAPPS; a++) {
    sl_object_unref(&caps[a]->obj);
    sl_object_unref(apps[a]);
  }
  sl_object_unref(t);
  sl_object_unref(core);
  sl_pool_unref(pool);
  sl_pool_unref(small);
  m_free(m);
  free(m);
  return 0;
}
