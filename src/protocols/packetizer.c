/*
** Packetizer nodes and sending (rogue-link-reference 3.1-3.4): the Core,
** its edges, reqFrame from transport buffers, and frames cut into
** segments in the sender's thread. Receiving is packetizer_rx.c.
*/
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "packetizer_internal.h"

#include "../core/bytes.h"
#include "../core/crc32.h"

#define TX_BATCH 64   /* segments handed to the transport per call */

static uint32_t head_len(const sl_packetizer *p) {
  return p->version == 1 ? SL_PACK_V1_HEADER : SL_PACK_V2_HEADER;
}

static uint32_t tail_len(const sl_packetizer *p) {
  return p->version == 1 ? SL_PACK_V1_TAIL : SL_PACK_V2_TAIL;
}

/* ---- reqFrame: buffers from the transport ---- */

/*
** Reserves header and tail in each new buffer of f (from index `from`),
** trimming the capacity to a multiple of 8. Returns the capacity added,
** or -1 when a buffer is too small to carry a segment.
*/
static int64_t reserve(sl_packetizer *p, sl_frame *f, size_t from) {
  uint32_t h = head_len(p), t = tail_len(p);
  int64_t added = 0;
  for (size_t i = from; i < sl_frame_buffer_count(f); i++) {
    sl_buffer *b = sl_frame_buffer(f, i);
    uint32_t size = sl_buffer_get_size(b);
    if (size < h + t + 8) {
      sl_log_write(p->log, SL_LOG_ERROR, "Buffer size %" PRIu32
                   " is less than min size required %" PRIu32, size, h + t + 8);
      return -1;
    }
    uint32_t room = size - h - t;
    sl_buffer_adjust_tail(b, t + room % 8);
    sl_buffer_adjust_header(b, h);
    sl_buffer_set_payload_empty(b);
    added += room - room % 8;
  }
  return added;
}

/*
** A frame of at least `size` bytes (rounded up to 8) made of transport
** buffers with this packetizer's header and tail reserved: the transport
** is asked for what is missing plus one header and tail until the
** capacity is there. NULL when the transport gives nothing or a buffer
** is too small.
*/
static sl_frame *pk_req(sl_packetizer *p, uint32_t size, int zero_copy) {
  uint64_t want = ((uint64_t)size + 7) & ~(uint64_t)7, cap = 0;
  uint64_t over = head_len(p) + tail_len(p);
  sl_frame *f = sl_frame_new();
  if (f == NULL) return NULL;
  while (cap < want) {
    uint64_t ask = want - cap + over;
    sl_frame *t = sl_master_req_frame(&p->transport->master,
                                      ask > UINT32_MAX ? UINT32_MAX : (uint32_t)ask,
                                      zero_copy);
    if (t == NULL) goto fail;
    size_t from = sl_frame_buffer_count(f);
    int rc = sl_frame_append_frame(f, t);
    sl_frame_unref(t);
    int64_t added = rc == SL_OK ? reserve(p, f, from) : -1;
    if (added <= 0) goto fail;
    cap += (uint64_t)added;
  }
  return f;
fail:
  sl_frame_unref(f);
  return NULL;
}

static sl_frame *app_req(sl_slave *s, uint32_t size, int zero_copy) {
  return pk_req(((pk_edge *)s->owner)->core, size, zero_copy);
}

/* ---- sending ---- */

/* One frame to send: its buffers (owned) and metadata. */
typedef struct pk_job {
  struct pk_job *next;               /* in tx_later */
  uint8_t dest, first_user, last_user;
  size_t n;
  sl_buffer **bufs;
  sl_buffer *inl[8];
} pk_job;

static void job_free(pk_job *j) {
  for (size_t i = 0; i < j->n; i++) sl_pool_ret_buffer(j->bufs[i]);
  if (j->bufs != j->inl) free(j->bufs);
  j->n = 0;
}

/* Writes header and tail around buffer b's payload, making it segment
** `segn`; returns the CRC chain after it (v2 with enObCrc), else crc. */
static uint32_t frame_segment(sl_packetizer *p, const pk_job *j, sl_buffer *b,
                              uint32_t segn, int eof, uint32_t crc) {
  uint32_t len = sl_buffer_get_payload(b);
  uint32_t pad = p->version == 2 ? (8 - len % 8) % 8 : 0;
  uint8_t *t = sl_buffer_begin(b) + len;
  memset(t, 0, pad);
  t += pad;
  if (p->version == 1) {
    t[0] = (uint8_t)((eof ? 0x80u : 0u) | (j->last_user & 0x7Fu));
  } else {
    t[0] = j->last_user;
    t[1] = (uint8_t)eof;
    t[2] = (uint8_t)(len % 8 ? len % 8 : 8);
    t[3] = 0;
  }
  sl_buffer_zero_tail(b);
  sl_buffer_adjust_payload(b, pad + tail_len(p));
  sl_buffer_adjust_header(b, -(int64_t)head_len(p));
  uint8_t *h = sl_buffer_begin(b);
  if (p->version == 1) {
    uint32_t fnum = p->frame_num;
    h[0] = (uint8_t)((fnum & 0xFu) << 4);
    h[1] = (uint8_t)(fnum >> 4);
    h[2] = (uint8_t)segn;
    h[3] = (uint8_t)(segn >> 8);
    h[4] = (uint8_t)(segn >> 16);
    h[5] = j->dest;
    h[6] = 0;
    h[7] = j->first_user;
    return crc;
  }
  h[0] = (uint8_t)(2u | (p->ob_crc ? 0x20u : 0u));
  h[1] = j->first_user;
  h[2] = j->dest;
  h[3] = 0;
  sl_store_le16(h + 4, (uint16_t)segn);
  h[6] = 0;
  h[7] = segn == 0 ? 0x80 : 0;
  uint32_t size = sl_buffer_get_payload(b);
  if (p->ob_crc) crc = sl_crc32(segn == 0 ? 0 : crc, h, size - 4);
  sl_store_be32(h + size - 4, p->ob_crc ? crc : 0);
  return crc;
}

/* Hands n segments to the transport and lets go of them. */
static void flush(sl_packetizer *p, sl_frame **segs, size_t n) {
  uint64_t bytes = 0;
  for (size_t i = 0; i < n; i++) bytes += sl_frame_get_payload(segs[i]);
  pk_add(&p->tx_segments, n);
  pk_add(&p->transport->tx_frames, n);
  pk_add(&p->transport->tx_bytes, bytes);
  sl_master_send_frames(&p->transport->master, segs, n);
  sl_frame_unref_many(segs, n);
}

/* Sends one job's segments; the caller holds the send token. Empty
** buffers carry nothing and are not sent. */
static void run_job(sl_packetizer *p, pk_job *j) {
  sl_frame *segs[TX_BATCH];
  size_t k = 0, last = j->n;
  for (size_t i = 0; i < j->n; i++)
    if (sl_buffer_get_payload(j->bufs[i]) > 0) last = i;
  if (last == j->n)
    sl_log_write(p->log, SL_LOG_WARNING, "Empty frame received on application input");
  else
    pk_bump(&p->tx_frames);
  uint32_t segn = 0, crc = 0;
  for (size_t i = 0; i < j->n; i++) {
    sl_buffer *b = j->bufs[i];
    j->bufs[i] = NULL;
    if (sl_buffer_get_payload(b) == 0) {
      sl_pool_ret_buffer(b);
      continue;
    }
    crc = frame_segment(p, j, b, segn++, i == last, crc);
    sl_frame *sf = sl_frame_new();
    if (sf == NULL || sl_frame_append_buffer(sf, b) != SL_OK) {
      if (sf == NULL) sl_pool_ret_buffer(b);
      sl_frame_unref(sf);
      continue;   /* out of memory: the far side drops the frame */
    }
    segs[k++] = sf;
    if (k == TX_BATCH) {
      flush(p, segs, k);
      k = 0;
    }
  }
  flush(p, segs, k);
  if (p->version == 1) p->frame_num = (p->frame_num + 1) & 0xFFFu;
  j->n = 0;
  job_free(j);
}

/*
** The send token: one frame's segments at a time, in order, with no lock
** held while the transport runs. A thread that sends again from inside
** its own send (a slave downstream answering at once) queues its frame;
** the token holder sends it next.
*/
static void submit(sl_packetizer *p, pk_job *j) {
  pthread_t self = pthread_self();
  pthread_mutex_lock(&p->tx_mu);
  if (p->tx_busy && pthread_equal(p->tx_owner, self)) {
    pk_job *later = malloc(sizeof *later);
    if (later == NULL) {
      pthread_mutex_unlock(&p->tx_mu);
      job_free(j);
      return;
    }
    *later = *j;
    if (j->bufs == j->inl) later->bufs = later->inl;
    later->next = p->tx_later;
    p->tx_later = later;
    pthread_mutex_unlock(&p->tx_mu);
    return;
  }
  while (p->tx_busy) pthread_cond_wait(&p->tx_cv, &p->tx_mu);
  p->tx_busy = 1;
  p->tx_owner = self;
  pthread_mutex_unlock(&p->tx_mu);
  run_job(p, j);
  pthread_mutex_lock(&p->tx_mu);
  while (p->tx_later != NULL) {
    pk_job *first = p->tx_later, **pp = &p->tx_later;
    while (first->next != NULL) {   /* the oldest is at the end */
      pp = &first->next;
      first = first->next;
    }
    *pp = NULL;
    pthread_mutex_unlock(&p->tx_mu);
    run_job(p, first);
    free(first);
    pthread_mutex_lock(&p->tx_mu);
  }
  p->tx_busy = 0;
  pthread_cond_signal(&p->tx_cv);
  pthread_mutex_unlock(&p->tx_mu);
}

/* Can f's buffers become segments where they are: f ours alone, and room
** for header, padding and tail around every buffer's payload? */
static int in_place(sl_packetizer *p, sl_frame *f) {
  if (sl_frame_refcount(f) != 1) return 0;
  for (size_t i = 0; i < sl_frame_buffer_count(f); i++) {
    sl_buffer *b = sl_frame_buffer(f, i);
    uint32_t len = sl_buffer_get_payload(b);
    uint32_t pad = p->version == 2 ? (8 - len % 8) % 8 : 0;
    if (b->head_room < head_len(p) || b->raw_size - b->payload < pad + tail_len(p))
      return 0;
  }
  return 1;
}

/* A copy of f's payload in transport buffers; caller holds f's lock. */
static sl_frame *copy_out(sl_packetizer *p, sl_frame *f, uint32_t len) {
  sl_frame *c = pk_req(p, len, 1);
  if (c == NULL) return NULL;
  sl_frame_iter ri, wi;
  sl_frame_iter_read(&ri, f, 0);
  sl_frame_iter_write(&wi, c, 0);
  sl_frame_iter_copy(&ri, len, &wi);
  sl_frame_set_payload(c, len);
  pk_bump(&p->copied);
  return c;
}

/* Takes every buffer out of f into the job. */
static int job_take(pk_job *j, sl_frame *f) {
  size_t n = sl_frame_buffer_count(f);
  j->bufs = n <= 8 ? j->inl : malloc(n * sizeof *j->bufs);
  if (j->bufs == NULL) return -1;
  j->n = sl_frame_take_buffers(f, j->bufs, n);
  return 0;
}

/* An application's accept_frame: the frame goes out as segments. */
static void app_accept(sl_slave *s, sl_frame *f) {
  pk_edge *e = (pk_edge *)s->owner;
  sl_packetizer *p = e->core;
  pk_job j = {.dest = (uint8_t)e->dest};
  sl_frame_lock(f);
  if (sl_frame_get_error(f) != 0) {   /* not sent, as Rogue */
    sl_frame_unlock(f);
    pk_bump(&p->tx_errored);
    return;
  }
  uint32_t len = sl_frame_get_payload(f);
  pk_bump(&e->tx_frames);
  pk_add(&e->tx_bytes, len);
  j.first_user = (uint8_t)(sl_frame_get_first_user(f) | (p->ssi ? 0x02u : 0u));
  j.last_user = sl_frame_get_last_user(f);
  sl_frame *src = f;
  if (len > 0 && !in_place(p, f)) src = copy_out(p, f, len);
  int rc = src != NULL ? job_take(&j, src) : -1;
  sl_frame_unlock(f);
  if (src != f) sl_frame_unref(src);
  if (rc != 0) {
    sl_log_write(p->log, SL_LOG_ERROR, "Dropping a %" PRIu32 "-byte frame for "
                 "dest %d: no transport buffers or memory", len, e->dest);
    pk_bump(&p->tx_errored);
    return;
  }
  submit(p, &j);
}

static void transport_accept(sl_slave *s, sl_frame *f) {
  pk_rx_segment(((pk_edge *)s->owner)->core, f);
}

/* ---- the edges ---- */

static const sl_slave_ops transport_ops = {.accept_frame = transport_accept};
static const sl_slave_ops app_ops = {.accept_frame = app_accept,
                                     .accept_req = app_req};

/* An edge's count reached zero: it lets go of its Core and waits, idle,
** to be handed out again or freed with the Core. */
static void edge_release(sl_object *obj) {
  sl_object_unref(&((pk_edge *)obj)->core->obj);
}

static size_t edge_counters(sl_object *obj, sl_counter *out, size_t max) {
  pk_edge *e = (pk_edge *)obj;
  const sl_counter c[] = {{"txFrames", atomic_load(&e->tx_frames)},
                          {"txBytes", atomic_load(&e->tx_bytes)},
                          {"rxFrames", atomic_load(&e->rx_frames)},
                          {"rxBytes", atomic_load(&e->rx_bytes)},
                          {"drops", atomic_load(&e->dropped)}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0] - (e->dest >= 0));
}

static const sl_class transport_class = {.name = "packetizer.Transport",
                                         .destroy = edge_release,
                                         .counters = edge_counters};
static const sl_class app_class = {.name = "packetizer.Application",
                                   .destroy = edge_release,
                                   .counters = edge_counters};

/* A new edge (count 1, holding a reference on p); NULL when out of memory. */
static pk_edge *edge_new(sl_packetizer *p, int dest) {
  pk_edge *e = calloc(1, sizeof *e);
  if (e == NULL) return NULL;
  sl_object_init(&e->obj, dest < 0 ? &transport_class : &app_class);
  e->core = p;
  e->dest = dest;
  if (sl_slave_init(&e->slave, dest < 0 ? &transport_ops : &app_ops, &e->obj) != SL_OK)
    goto fail;
  if (sl_master_init(&e->master, &e->obj) != SL_OK) {
    sl_slave_fini(&e->slave);
    goto fail;
  }
  sl_object_ref(&p->obj);
  return e;
fail:
  free(e);
  return NULL;
}

static void edge_free(pk_edge *e) {
  if (e == NULL) return;
  sl_master_fini(&e->master);
  sl_slave_fini(&e->slave);
  free(e);
}

/* Hands out a reference to e; caller holds p->mu. An idle edge (count 0)
** takes its reference on the Core back. */
static sl_object *edge_hand_out(sl_packetizer *p, pk_edge *e) {
  if (atomic_fetch_add(&e->obj.refs, 1) == 0) sl_object_ref(&p->obj);
  return &e->obj;
}

/* ---- the Core ---- */

static size_t core_counters(sl_object *obj, sl_counter *out, size_t max) {
  sl_packetizer *p = (sl_packetizer *)obj;
  const sl_counter c[] = {
      {"txFrames", atomic_load(&p->tx_frames)},
      {"txSegments", atomic_load(&p->tx_segments)},
      {"rxFrames", atomic_load(&p->rx_frames)},
      {"rxSegments", atomic_load(&p->rx_segments)},
      {"drops", atomic_load(&p->drops)},
      {"dropContents", atomic_load(&p->drop_contents)},
      {"dropState", atomic_load(&p->drop_state)},
      {"dropCrc", atomic_load(&p->drop_crc)},
      {"dropLimit", atomic_load(&p->drop_limit)},
      {"dropReset", atomic_load(&p->drop_reset)},
      {"replaced", atomic_load(&p->replaced)},
      {"noApplication", atomic_load(&p->no_app)},
      {"txErrored", atomic_load(&p->tx_errored)},
      {"copied", atomic_load(&p->copied)}};
  return sl_counters_put(out, max, c, sizeof c / sizeof c[0]);
}

/* Nothing runs on the Core's behalf; a stop forgets unfinished frames. */
static void core_stop(sl_object *obj) { pk_rx_clear((sl_packetizer *)obj, 0); }

static void core_destroy(sl_object *obj) {
  sl_packetizer *p = (sl_packetizer *)obj;
  if (p->slots != NULL) pk_rx_clear(p, 0);
  for (size_t i = 0; i < SL_PACK_DESTS; i++) edge_free(atomic_load(&p->apps[i]));
  edge_free(p->transport);
  free(p->slots);
  pthread_cond_destroy(&p->tx_cv);
  pthread_mutex_destroy(&p->tx_mu);
  pthread_mutex_destroy(&p->rx_mu);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

static const sl_class core_class = {.name = "packetizer.Core",
                                    .destroy = core_destroy,
                                    .stop = core_stop,
                                    .counters = core_counters};
static const sl_class core_v2_class = {.name = "packetizer.CoreV2",
                                       .destroy = core_destroy,
                                       .stop = core_stop,
                                       .counters = core_counters};

sl_packetizer *sl_packetizer_new(int version, int en_ib_crc, int en_ob_crc,
                                 int en_ssi, sl_error *err) {
  if (version != 1 && version != 2)
    return sl_fail(err, SL_EINVAL, "packetizer version %d: 1 or 2 expected", version);
  sl_packetizer *p = calloc(1, sizeof *p);
  if (p == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  sl_object_init(&p->obj, version == 1 ? &core_class : &core_v2_class);
  p->version = version;
  p->ib_crc = version == 2 && en_ib_crc;
  p->ob_crc = version == 2 && en_ob_crc;
  p->ssi = en_ssi != 0;
  p->log = sl_log_get("packetizer.Controller");
  p->max_pending = SL_PACK_MAX_PENDING_DEFAULT;
  pthread_mutex_init(&p->mu, NULL);
  pthread_mutex_init(&p->tx_mu, NULL);
  pthread_cond_init(&p->tx_cv, NULL);
  pthread_mutex_init(&p->rx_mu, NULL);
  p->slots = calloc(version == 1 ? 1 : SL_PACK_DESTS, sizeof *p->slots);
  p->transport = edge_new(p, -1);
  if (p->slots == NULL || p->transport == NULL) {
    core_destroy(&p->obj);
    return sl_fail(err, SL_ENOMEM, NULL);
  }
  /* the transport is idle until handed out: it holds no reference yet */
  atomic_store(&p->transport->obj.refs, 0);
  atomic_fetch_sub(&p->obj.refs, 1);
  return p;
}

sl_object *sl_packetizer_object(sl_packetizer *p) { return p != NULL ? &p->obj : NULL; }

sl_packetizer *sl_packetizer_from_object(sl_object *obj) {
  return sl_object_is(obj, &core_class) || sl_object_is(obj, &core_v2_class)
             ? (sl_packetizer *)obj
             : NULL;
}

sl_object *sl_packetizer_transport(sl_packetizer *p) {
  pthread_mutex_lock(&p->mu);
  sl_object *o = edge_hand_out(p, p->transport);
  pthread_mutex_unlock(&p->mu);
  return o;
}

sl_object *sl_packetizer_application(sl_packetizer *p, uint32_t dest, sl_error *err) {
  if (dest >= SL_PACK_DESTS)
    return sl_fail(err, SL_EINVAL, "dest %" PRIu32 " out of range [0, 255]", dest);
  sl_object *o = NULL;
  pthread_mutex_lock(&p->mu);
  pk_edge *e = atomic_load(&p->apps[dest]);
  if (e != NULL) {
    o = edge_hand_out(p, e);
  } else if ((e = edge_new(p, (int)dest)) != NULL) {
    atomic_store_explicit(&p->apps[dest], e, memory_order_release);
    o = &e->obj;
  }
  pthread_mutex_unlock(&p->mu);
  return o != NULL ? o : sl_fail(err, SL_ENOMEM, NULL);
}

int sl_packetizer_version(sl_packetizer *p) { return p->version; }

uint64_t sl_packetizer_drop_count(sl_packetizer *p) { return atomic_load(&p->drops); }

size_t sl_packetizer_reset(sl_packetizer *p) { return pk_rx_clear(p, 1); }

void sl_packetizer_set_max_pending(sl_packetizer *p, uint64_t bytes) {
  pthread_mutex_lock(&p->rx_mu);
  p->max_pending = bytes > 0 ? bytes : 1;
  pthread_mutex_unlock(&p->rx_mu);
}

uint64_t sl_packetizer_get_max_pending(sl_packetizer *p) {
  pthread_mutex_lock(&p->rx_mu);
  uint64_t v = p->max_pending;
  pthread_mutex_unlock(&p->rx_mu);
  return v;
}
