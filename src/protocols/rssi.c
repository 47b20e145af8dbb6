/*
** RSSI link (streamlua/rssi.h): Rogue's controller as a state machine
** driven by three kinds of events, each handled under the link's mutex:
**   a segment from the transport (the transport's thread),
**   a frame from the application (the caller's thread),
**   a timer (the shared "RssiTimer" thread) and a delivery ("RssiApp").
** Segments to send are built under the mutex and sent after it is
** released. rogue-link-reference section 2 gives the rules.
*/
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "streamlua/buffer.h"
#include "streamlua/frame.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/pool.h"
#include "streamlua/rssi.h"
#include "streamlua/slave.h"
#include "streamlua/wait.h"
#include "streamlua/worker.h"

#include "../core/bytes.h"
#include "../core/clock.h"

#define NS_PER_MS 1000000LL
#define TRY_PERIOD_MS 100u
#define TX_TIMEOUT_US 1000000u
#define RING 256                  /* sequence numbers are 8 bits */
#define MAX_OUT 64                /* segments sent per pass, at most */
#define RX_CHUNK 32               /* received segments taken per lock */
#define DELIVER_BATCH 64          /* segments delivered per wake, at most */

typedef struct edge {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  struct sl_rssi *link;
} edge;

typedef struct tx_entry {
  sl_frame *f;                    /* a reference; NULL: free */
  uint8_t count;                  /* transmissions so far */
  int64_t last_ns;
} tx_entry;

/* A segment to send once the mutex is released. */
typedef struct out_seg {
  sl_frame *f;                    /* a reference */
  int rewrite;                    /* retransmission: patch flags/ack/sum */
  uint8_t busy, ack;
} out_seg;

typedef struct outbox {
  out_seg seg[MAX_OUT];
  int n;
  int hooks[4];                   /* open/close transitions, in order */
  int nhooks;
  sl_frame *drop[RING];           /* references to release */
  int ndrop;
} outbox;

struct sl_rssi {
  sl_object obj;
  edge tr, app;
  int server;
  sl_log *log;
  pthread_mutex_t mu;
  pthread_cond_t cv;              /* the delivery ring, state */
  pthread_cond_t tx_cv;           /* window space, state, stop: the sends
                                     waiting in wait_window */
  sl_rssi_params loc, cur, init;
  uint32_t try_ms;
  uint64_t tx_timeout_us;
  /* state (mu) */
  int state, started, stopping;
  uint8_t tx_seq;                 /* next unused sequence number */
  uint8_t acked;                  /* last sequence number the peer acked */
  uint8_t rx_next;                /* next expected sequence number */
  uint8_t ack_value;              /* last delivered sequence number */
  uint8_t ack_sent;               /* ack field of our last transmission */
  int loc_busy, rem_busy;
  int syn_only;                   /* server: only SYNs came since it opened */
  uint8_t synack_seq;             /* server: the SYN-ACK it opened with */
  int64_t last_tx_ns, state_ns, due_ns;
  tx_entry tx[RING];
  int outstanding;
  int tx_waiting;                 /* sends asleep on tx_cv */
  sl_frame *ooo[RING];
  int nooo;
  sl_frame *rxq[RING];            /* ring of in-order segments */
  uint8_t rxq_seq[RING];
  int rxq_head, rxq_n;
  int rx_held;                    /* taken by the delivery thread, not yet delivered */
  sl_worker app_worker;
  int worker_running;
  void (*hook)(void *arg, int open);
  void *hook_arg;
  /* the timer registry (registry mutex) */
  struct sl_rssi *next_timer;
  int registered;
  /* counters */
  atomic_uint down_count, drop_count, retran_count, loc_busy_cnt, rem_busy_cnt;
  atomic_uint_least64_t opens, tx_frames, rx_frames, tx_drops, tx_segs, rx_segs,
      reacks;
};

typedef struct sl_rssi rssi;

static void bump(atomic_uint *c) { atomic_fetch_add(c, 1); }
static void bump64(atomic_uint_least64_t *c) { atomic_fetch_add(c, 1); }

/* ==== the shared timer thread ==== */

static struct {
  pthread_mutex_t mu;             /* the list, wake_ns, the worker */
  pthread_cond_t cv;
  pthread_once_t once;
  rssi *head;
  int count;
  int64_t wake_ns;                /* when the thread next looks */
  sl_worker worker;
  int running;
  pthread_mutex_t life;           /* start/stop of the thread */
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER,
         .once = PTHREAD_ONCE_INIT,
         .life = PTHREAD_MUTEX_INITIALIZER};

static void reg_init(void) { sl_cond_init(&reg.cv); }

static int64_t tick(rssi *r, int64_t now);

/* Asks for a pass over r no later than `due`. */
static void timer_arm(rssi *r, int64_t due) {
  pthread_mutex_lock(&reg.mu);
  if (!r->registered) {
    pthread_mutex_unlock(&reg.mu);
    return;
  }
  if (due < r->due_ns) r->due_ns = due;
  if (due < reg.wake_ns) {
    reg.wake_ns = due;
    pthread_cond_signal(&reg.cv);
  }
  pthread_mutex_unlock(&reg.mu);
}

static void timer_wake(void *arg) {
  (void)arg;
  pthread_mutex_lock(&reg.mu);
  pthread_cond_broadcast(&reg.cv);
  pthread_mutex_unlock(&reg.mu);
}

/* The thread: passes over every link whose time has come. */
static int timer_main(void *arg) {
  (void)arg;
  rssi *due[64];
  pthread_mutex_lock(&reg.mu);
  while (!sl_worker_stopping(&reg.worker)) {
    int64_t now = sl_clock_ns(), next = now + 1000 * NS_PER_MS;
    int n = 0;
    for (rssi *r = reg.head; r != NULL; r = r->next_timer) {
      if (r->due_ns <= now && n < 64) {
        r->due_ns = INT64_MAX;
        due[n++] = r;
        sl_object_ref(&r->obj);
      } else if (r->due_ns < next) {
        next = r->due_ns;
      }
    }
    if (n > 0) {
      reg.wake_ns = now;          /* arms during the pass signal */
      pthread_mutex_unlock(&reg.mu);
      for (int i = 0; i < n; i++) {
        int64_t d = tick(due[i], sl_clock_ns());
        timer_arm(due[i], d);
        sl_object_unref(&due[i]->obj);
      }
      pthread_mutex_lock(&reg.mu);
      continue;
    }
    reg.wake_ns = next;
    struct timespec ts = {.tv_sec = (time_t)(next / SL_NS_PER_S),
                          .tv_nsec = (long)(next % SL_NS_PER_S)};
    pthread_cond_timedwait(&reg.cv, &reg.mu, &ts);
  }
  pthread_mutex_unlock(&reg.mu);
  return 0;
}

static int timer_register(rssi *r) {
  pthread_once(&reg.once, reg_init);
  pthread_mutex_lock(&reg.life);
  int rc = SL_OK;
  pthread_mutex_lock(&reg.mu);
  if (!r->registered) {
    r->registered = 1;
    sl_object_ref(&r->obj);
    r->next_timer = reg.head;
    reg.head = r;
    reg.count++;
    r->due_ns = 0;
  }
  reg.wake_ns = 0;
  pthread_cond_signal(&reg.cv);
  int start = !reg.running;
  pthread_mutex_unlock(&reg.mu);
  if (start) {
    if (sl_worker_start(&reg.worker, "RssiTimer", 0, timer_main, timer_wake,
                        NULL) == 0)
      reg.running = 1;
    else
      rc = SL_EIO;
  }
  pthread_mutex_unlock(&reg.life);
  return rc;
}

/* Takes r off the list; the last link stops the thread. */
static void timer_unregister(rssi *r) {
  pthread_once(&reg.once, reg_init);
  pthread_mutex_lock(&reg.life);
  pthread_mutex_lock(&reg.mu);
  int had = r->registered;
  if (had) {
    for (rssi **p = &reg.head; *p != NULL; p = &(*p)->next_timer) {
      if (*p == r) {
        *p = r->next_timer;
        break;
      }
    }
    r->registered = 0;
    reg.count--;
  }
  int stop = reg.running && reg.count == 0;
  pthread_mutex_unlock(&reg.mu);
  if (stop && !sl_worker_is_self(&reg.worker)) {
    sl_worker_stop(&reg.worker);
    reg.running = 0;
  }
  pthread_mutex_unlock(&reg.life);
  if (had) sl_object_unref(&r->obj);
}

/* ==== segments ==== */

static int64_t ms_ns(uint32_t ms) { return (int64_t)ms * NS_PER_MS; }

/* A control segment (no data) from the transport; NULL if none. */
static sl_frame *control_frame(rssi *r, uint8_t flags, uint8_t seq,
                               uint8_t ack, const sl_rssi_params *p) {
  sl_rssi_header h = {.flags = flags, .seq = seq, .ack = ack};
  if (p != NULL) h.params = *p;
  uint8_t buf[SL_RSSI_SYN_HEADER];
  uint32_t len = sl_rssi_encode(buf, &h);
  sl_frame *f = sl_master_req_frame(&r->tr.master, len, 0);
  if (f == NULL) return NULL;
  if (sl_frame_write(f, buf, 0, len) != SL_OK) {
    sl_frame_unref(f);
    return NULL;
  }
  return f;
}

static void out_add(outbox *o, sl_frame *f) {
  if (f == NULL) return;
  if (o->n == MAX_OUT) {
    sl_frame_unref(f);
    return;
  }
  o->seg[o->n++] = (out_seg){.f = f};
}

static void drop_add(outbox *o, sl_frame *f) {
  if (f == NULL) return;
  if (o->ndrop < RING) o->drop[o->ndrop++] = f;
  else sl_frame_unref(f);
}

/* The busy bit and ack field of a transmission now (mu held). */
static uint8_t busy_bit(rssi *r) { return r->loc_busy ? SL_RSSI_BUSY : 0; }
static uint8_t ack_field(rssi *r) {
  return r->loc_busy ? r->ack_sent : r->ack_value;
}

/* Records a transmission (mu held). */
static void sent_now(rssi *r, uint8_t ack) {
  r->last_tx_ns = sl_clock_ns();
  r->ack_sent = ack;
}

/* An ACK-only segment (mu held). */
static void send_ack(rssi *r, outbox *o) {
  uint8_t ack = ack_field(r);
  out_add(o, control_frame(r, SL_RSSI_ACK | busy_bit(r), r->tx_seq, ack, NULL));
  sent_now(r, ack);
}

/* A sequenced segment kept for retransmission (mu held); f is taken. */
static void send_sequenced(rssi *r, outbox *o, sl_frame *f, uint8_t seq) {
  tx_entry *e = &r->tx[seq];
  if (e->f != NULL) drop_add(o, e->f);
  else r->outstanding++;
  e->f = sl_frame_ref(f);
  e->count = 1;
  e->last_ns = sl_clock_ns();
  out_add(o, f);
}

static void send_nul(rssi *r, outbox *o) {
  uint8_t ack = ack_field(r), seq = r->tx_seq++;
  sl_frame *f = control_frame(r, SL_RSSI_ACK | SL_RSSI_NUL | busy_bit(r), seq,
                              ack, NULL);
  sent_now(r, ack);
  if (f != NULL) send_sequenced(r, o, f, seq);
}

static void send_rst(rssi *r, outbox *o) {
  uint8_t ack = ack_field(r);
  out_add(o, control_frame(r, SL_RSSI_RST | busy_bit(r), r->tx_seq++, ack, NULL));
  sent_now(r, ack);
}

static void send_syn(rssi *r, outbox *o, int with_ack) {
  uint8_t flags = SL_RSSI_SYN | (with_ack ? SL_RSSI_ACK : 0) | busy_bit(r);
  const sl_rssi_params *p = r->server ? &r->cur : &r->loc;
  out_add(o, control_frame(r, flags, r->tx_seq++, r->ack_value, p));
  sent_now(r, r->ack_value);
}

/*
** A server that opened on a SYN and has heard nothing but SYNs since
** takes another SYN (no ACK) as the client's retry, sent before our
** SYN-ACK reached it, not as a restart: the client's next number follows
** it, and while nothing has been sent since, the same SYN-ACK goes again
** (a client that has it ignores it, one that lost it opens). Rogue's
** server resets instead, and a SYN-ACK slower than the client's try
** period costs a link reset just after it opened (mu held).
*/
static void syn_retry(rssi *r, const sl_rssi_header *h, outbox *o) {
  r->rx_next = (uint8_t)(h->seq + 1);
  if ((uint8_t)(r->synack_seq + 1) != r->tx_seq) return;
  out_add(o, control_frame(r, SL_RSSI_SYN | SL_RSSI_ACK | busy_bit(r), r->synack_seq,
                           r->ack_value, &r->cur));
  sent_now(r, r->ack_value);
  sl_log_write(r->log, SL_LOG_INFO, "SYN again before the handshake ACK: SYN-ACK again. "
               "Server=1, seq=%u", (unsigned)h->seq);
}

/* ==== state changes (mu held) ==== */

static void clear_queues(rssi *r, outbox *o) {
  for (int i = 0; i < RING; i++) {
    if (r->tx[i].f != NULL) drop_add(o, r->tx[i].f);
    r->tx[i].f = NULL;
    if (r->ooo[i] != NULL) drop_add(o, r->ooo[i]);
    r->ooo[i] = NULL;
  }
  while (r->rxq_n > 0) {
    drop_add(o, r->rxq[r->rxq_head]);
    r->rxq_head = (r->rxq_head + 1) % RING;
    r->rxq_n--;
  }
  r->outstanding = 0;
  r->nooo = 0;
  r->acked = (uint8_t)(r->tx_seq - 1);
  pthread_cond_broadcast(&r->cv);
  pthread_cond_broadcast(&r->tx_cv);
}

static void hook_add(outbox *o, int open) {
  if (o->nhooks < 4) o->hooks[o->nhooks++] = open;
}

static void go_open(rssi *r, outbox *o) {
  clear_queues(r, o);
  r->state = SL_RSSI_OPEN;
  r->loc_busy = r->rem_busy = 0;
  bump64(&r->opens);
  hook_add(o, 1);
  sl_log_write(r->log, SL_LOG_INFO, "Link state is open. Server=%d", r->server);
}

/* Open -> reset: RST, downCount++, Closed for one try period. */
static void go_error(rssi *r, outbox *o, const char *why) {
  sl_log_write(r->log, SL_LOG_WARNING, "Entering reset state. Server=%d (%s)",
               r->server, why);
  send_rst(r, o);
  bump(&r->down_count);
  clear_queues(r, o);
  r->state = SL_RSSI_CLOSED;
  r->state_ns = sl_clock_ns();
  hook_add(o, 0);
}

/* Sanitises negotiated values so no peer can stall or overflow us. */
static void adopt(rssi *r, const sl_rssi_params *p) {
  r->cur = *p;
  if (r->cur.max_buffers == 0) r->cur.max_buffers = 1;
  if (r->cur.max_segment < SL_RSSI_HEADER + 1)
    r->cur.max_segment = SL_RSSI_HEADER + 1;
  if (r->cur.retran_tout == 0) r->cur.retran_tout = 1;
  if (r->cur.cum_ack_tout == 0) r->cur.cum_ack_tout = 1;
  if (r->cur.null_tout < 3) r->cur.null_tout = 3;
  if (r->cur.max_retran == 0) r->cur.max_retran = 1;
  if (r->cur.max_cum_ack == 0) r->cur.max_cum_ack = 1;
}

/* The room a sleeping send waits for before it is woken: a quarter of
** the window, so it wakes once per batch of segments rather than per
** ACK (mu held). */
static int wake_room(rssi *r) {
  int room = r->cur.max_buffers / 4;
  return room > 0 ? room : 1;
}

/* Releases what the peer acknowledged, if ack is in range (mu held). */
static void take_ack(rssi *r, uint8_t ack, outbox *o) {
  uint8_t d = (uint8_t)(ack - r->acked);
  uint8_t span = (uint8_t)(r->tx_seq - 1 - r->acked);
  if (d == 0 || d > span) return;
  while (r->acked != ack) {
    r->acked++;
    tx_entry *e = &r->tx[r->acked];
    if (e->f != NULL) {
      drop_add(o, e->f);
      e->f = NULL;
      r->outstanding--;
    }
  }
  if (r->tx_waiting > 0 && r->outstanding <= r->cur.max_buffers - wake_room(r))
    pthread_cond_broadcast(&r->tx_cv);
}

/* ==== sending and hooks after the mutex ==== */

static void patch_header(sl_frame *f, const out_seg *s) {
  sl_frame_lock(f);
  sl_buffer *b = sl_frame_buffer(f, 0);
  if (b != NULL && sl_buffer_get_payload(b) >= SL_RSSI_HEADER) {
    uint8_t *h = sl_buffer_begin(b);
    uint32_t len = h[1];
    if (len <= sl_buffer_get_payload(b)) {
      h[0] = (uint8_t)((h[0] & ~SL_RSSI_BUSY) | s->busy);
      h[3] = s->ack;
      sl_store_be16(h + len - 2, sl_rssi_checksum(h, len));
    }
  }
  sl_frame_unlock(f);
}

/* Sends the outbox's segments to the transport in one batch (a UDP
** endpoint sends them with one sendmmsg), releases what it dropped and
** runs the state hooks. */
static void flush(rssi *r, outbox *o) {
  sl_frame *fs[MAX_OUT];
  for (int i = 0; i < o->n; i++) {
    out_seg *s = &o->seg[i];
    if (s->rewrite) patch_header(s->f, s);
    fs[i] = s->f;
  }
  if (o->n > 0) {
    atomic_fetch_add(&r->tx_segs, (uint64_t)o->n);
    sl_master_send_frames(&r->tr.master, fs, (size_t)o->n);
    sl_frame_unref_many(fs, (size_t)o->n);
  }
  o->n = 0;
  sl_frame_unref_many(o->drop, (size_t)o->ndrop);
  o->ndrop = 0;
  void (*fn)(void *, int) = NULL;
  void *arg = NULL;
  if (o->nhooks > 0) {
    pthread_mutex_lock(&r->mu);
    fn = r->hook;
    arg = r->hook_arg;
    pthread_mutex_unlock(&r->mu);
  }
  for (int i = 0; i < o->nhooks && fn != NULL; i++) fn(arg, o->hooks[i]);
  o->nhooks = 0;
}

/* ==== the timer pass ==== */

static void sample_busy(rssi *r) {
  int threshold = r->cur.max_buffers / 2;
  if (threshold < 2) threshold = 2;
  int busy = r->rxq_n + r->rx_held >= threshold;
  if (busy && !r->loc_busy) bump(&r->loc_busy_cnt);
  r->loc_busy = busy;
}

static int64_t tick_open(rssi *r, int64_t now, outbox *o) {
  sample_busy(r);
  int64_t cum = ms_ns(r->cur.cum_ack_tout), nul = ms_ns(r->cur.null_tout / 3);
  int64_t retran = ms_ns(r->cur.retran_tout);
  uint8_t pend = (uint8_t)(r->ack_value - r->ack_sent);
  if (now - r->last_tx_ns >= nul)
    send_nul(r, o);
  else if ((!r->loc_busy && pend >= r->cur.max_cum_ack) ||
           ((pend > 0 || r->loc_busy) && now - r->last_tx_ns >= cum))
    send_ack(r, o);
  int64_t next = r->last_tx_ns + nul;
  pend = (uint8_t)(r->ack_value - r->ack_sent);
  if (pend > 0 || r->loc_busy) {
    if (r->last_tx_ns + cum < next) next = r->last_tx_ns + cum;
  }
  if (r->rem_busy) return next;
  for (uint8_t s = (uint8_t)(r->acked + 1); s != r->tx_seq; s++) {
    tx_entry *e = &r->tx[s];
    if (e->f == NULL) continue;
    if (now - e->last_ns >= retran) {
      if (e->count >= r->cur.max_retran) {
        go_error(r, o, "max retransmissions");
        return now + ms_ns(r->try_ms);
      }
      if (o->n == MAX_OUT) return now;
      e->count++;
      e->last_ns = now;
      uint8_t ack = ack_field(r);
      o->seg[o->n++] = (out_seg){.f = sl_frame_ref(e->f), .rewrite = 1,
                                 .busy = busy_bit(r), .ack = ack};
      sent_now(r, ack);
      bump(&r->retran_count);
      sl_log_write(r->log, SL_LOG_WARNING,
                   "Retran frame: state=%d server=%d seq=%u recount=%u",
                   r->state, r->server, (unsigned)s, (unsigned)e->count);
    }
    if (e->last_ns + retran < next) next = e->last_ns + retran;
  }
  return next;
}

/* One pass over r at `now`; returns when the next one is due. */
static int64_t tick(rssi *r, int64_t now) {
  outbox o = {.n = 0};
  int64_t next = INT64_MAX;
  int64_t try_ns = ms_ns(r->try_ms);
  pthread_mutex_lock(&r->mu);
  if (!r->started) {
    pthread_mutex_unlock(&r->mu);
    return INT64_MAX;
  }
  switch (r->state) {
    case SL_RSSI_CLOSED:
      if (now - r->state_ns < try_ns) {
        next = r->state_ns + try_ns;
      } else if (r->server) {
        r->state = SL_RSSI_WAIT_SYN;
        r->state_ns = now;
      } else {
        send_syn(r, &o, 0);
        r->state = SL_RSSI_WAIT_SYN;
        r->state_ns = now;
        next = now + try_ns;
      }
      break;
    case SL_RSSI_WAIT_SYN:
      if (r->server) break;
      if (now - r->state_ns >= try_ns) {
        send_syn(r, &o, 0);
        r->state_ns = now;
      }
      next = r->state_ns + try_ns;
      break;
    case SL_RSSI_OPEN:
      next = tick_open(r, now, &o);
      break;
  }
  pthread_mutex_unlock(&r->mu);
  flush(r, &o);
  return next;
}

/* ==== receiving from the transport ==== */

static void drop_segment(rssi *r, const char *why) {
  bump(&r->drop_count);
  sl_log_write(r->log, SL_LOG_WARNING, "Dumping bad frame state=%d server=%d: %s",
               r->state, r->server, why);
}

/* Queues an in-order DATA/NUL for delivery (mu held; f: a new reference). */
static void enqueue(rssi *r, sl_frame *f, uint8_t seq) {
  int i = (r->rxq_head + r->rxq_n) % RING;
  r->rxq[i] = f;
  r->rxq_seq[i] = seq;
  r->rxq_n++;
  r->rx_next = (uint8_t)(seq + 1);
  /* the delivery thread sleeps only on an empty ring */
  if (r->rxq_n == 1) pthread_cond_broadcast(&r->cv);
}

/* DATA or NUL while open (mu held). Returns 1 when it wants an ACK now. */
static int receive_data(rssi *r, sl_frame *f, uint8_t seq, outbox *o) {
  uint8_t ahead = (uint8_t)(seq - r->rx_next);
  if (ahead == 0) {
    if (r->rxq_n >= RING - 1) {   /* a peer beyond its window */
      drop_segment(r, "delivery queue full");
      return 0;
    }
    if (r->ooo[seq] != NULL) {    /* a copy the drain left for a full ring */
      drop_add(o, r->ooo[seq]);
      r->ooo[seq] = NULL;
      r->nooo--;
    }
    enqueue(r, sl_frame_ref(f), seq);
    while (r->ooo[r->rx_next] != NULL && r->rxq_n < RING - 1) {
      uint8_t s = r->rx_next;
      sl_frame *g = r->ooo[s];
      r->ooo[s] = NULL;
      r->nooo--;
      enqueue(r, g, s);
    }
    /* busy as the queue fills, not at the next timer pass (up to a third
    ** of the null timeout away: a stalled application would let the
    ** peer's retransmissions run out first) */
    sample_busy(r);
    return 0;
  }
  if (r->ooo[seq] != NULL) {
    bump(&r->drop_count);
    sl_log_write(r->log, SL_LOG_WARNING, "Dropped duplicate frame. server=%d, seq=%u",
                 r->server, (unsigned)seq);
    return 0;
  }
  /* Rogue holds up to a window ahead. A peer's new segments are at most
  ** window - 1 ahead and its retransmissions at most window - 1 behind,
  ** so from a window of 128 on the two ranges meet in the 8-bit numbers:
  ** what could be an old duplicate is never held (it would be delivered
  ** in place of the new segment of that number). */
  if (ahead <= r->cur.max_buffers && ahead < RING - r->cur.max_buffers) {
    r->ooo[seq] = sl_frame_ref(f);
    r->nooo++;
    sl_log_write(r->log, SL_LOG_INFO, "Adding frame to ooo queue. server=%d, seq=%u",
                 r->server, (unsigned)seq);
    return 0;
  }
  bump(&r->drop_count);
  sl_log_write(r->log, SL_LOG_WARNING,
               "Dropping out of window frame. server=%d, seq=%u, expected=%u",
               r->server, (unsigned)seq, (unsigned)r->rx_next);
  /* an old duplicate: the peer missed our ACK; tell it again */
  uint8_t behind = (uint8_t)(r->rx_next - 1 - seq);
  return behind < RING / 2;
}

static void receive(rssi *r, sl_frame *f, const sl_rssi_header *h, int data,
                    outbox *o) {
  int syn = h->flags & SL_RSSI_SYN, ackf = h->flags & SL_RSSI_ACK;
  int rst = h->flags & SL_RSSI_RST, nul = h->flags & SL_RSSI_NUL;
  int busy = h->flags & SL_RSSI_BUSY;
  if (busy && !r->rem_busy) bump(&r->rem_busy_cnt);
  r->rem_busy = busy != 0;
  if (ackf && !syn && r->state == SL_RSSI_OPEN) take_ack(r, h->ack, o);
  if (!r->started) return;
  if (rst) {
    if (r->state == SL_RSSI_OPEN) {
      go_error(r, o, "reset by peer");
    } else if (r->state == SL_RSSI_WAIT_SYN) {
      sl_log_write(r->log, SL_LOG_WARNING, "Closing link after reset request. Server=%d",
                   r->server);
      r->state = SL_RSSI_CLOSED;
      r->state_ns = sl_clock_ns();
    }
    return;
  }
  if (syn) {
    if (r->server) {
      if (r->state == SL_RSSI_WAIT_SYN) {
        adopt(r, &h->params);
        r->cur.version = 1;
        r->cur.chk = 1;
        r->cur.unit = 3;
        r->cur.conn_id = r->loc.conn_id;
        r->rx_next = (uint8_t)(h->seq + 1);
        r->synack_seq = r->tx_seq;
        send_syn(r, o, 1);
        go_open(r, o);
        r->syn_only = 1;
      } else if (r->state == SL_RSSI_OPEN && !ackf && r->syn_only) {
        syn_retry(r, h, o);
      } else if (r->state == SL_RSSI_OPEN && !ackf) {
        go_error(r, o, "peer restarted");
      }
    } else if (ackf && r->state == SL_RSSI_WAIT_SYN) {
      adopt(r, &h->params);
      r->rx_next = (uint8_t)(h->seq + 1);
      r->ack_value = h->seq;
      go_open(r, o);
      send_ack(r, o);
    } else if (ackf && r->state == SL_RSSI_OPEN) {
      send_ack(r, o);             /* the server may have missed our ACK */
    } else if (!ackf && r->state == SL_RSSI_WAIT_SYN) {
      r->cur = r->loc;
    } else if (!ackf && r->state == SL_RSSI_OPEN) {
      go_error(r, o, "peer restarted");
    }
    return;
  }
  r->syn_only = 0;
  if (r->state != SL_RSSI_OPEN || !(data || nul)) return;
  if (receive_data(r, f, h->seq, o)) {
    bump64(&r->reacks);
    send_ack(r, o);
  }
}

/* Reads and checks segment f's header: 0 with *h and *data (a DATA
** segment) set, or -1 when f is dropped (counted, logged). */
static int segment_header(rssi *r, sl_frame *f, sl_rssi_header *h, int *data) {
  uint8_t head[SL_RSSI_SYN_HEADER];
  bump64(&r->rx_segs);
  sl_frame_lock(f);
  sl_buffer *b = sl_frame_buffer(f, 0);
  uint32_t first = b ? sl_buffer_get_payload(b) : 0;
  uint32_t total = sl_frame_get_payload(f);
  uint8_t ferr = sl_frame_get_error(f);
  if (first > sizeof head) first = sizeof head;
  if (b != NULL) memcpy(head, sl_buffer_begin(b), first);
  sl_frame_unlock(f);
  if (ferr != 0 || b == NULL) {
    drop_segment(r, ferr ? "errored frame" : "empty frame");
    return -1;
  }
  int rc = sl_rssi_decode(head, first, h);
  if (rc != SL_RSSI_OK) {
    drop_segment(r, sl_rssi_decode_str(rc));
    return -1;
  }
  *data = !(h->flags & (SL_RSSI_SYN | SL_RSSI_RST | SL_RSSI_NUL)) &&
          total > h->length;
  return 0;
}

/* n segments from the transport, in order: headers checked outside the
** mutex, then all taken under one lock, and what they make us send goes
** out in one batch (a state change flushes at once, so every open or
** close reaches the hook). */
static void transport_accept_many(sl_slave *s, sl_frame **fs, size_t n) {
  rssi *r = ((edge *)s->owner)->link;
  int rearm = 0;
  for (size_t i = 0; i < n;) {
    sl_frame *seg[RX_CHUNK];
    sl_rssi_header h[RX_CHUNK];
    int data[RX_CHUNK], k = 0;
    for (; i < n && k < RX_CHUNK; i++)
      if (segment_header(r, fs[i], &h[k], &data[k]) == 0) seg[k++] = fs[i];
    outbox o = {.n = 0};
    pthread_mutex_lock(&r->mu);
    for (int j = 0; j < k; j++) {
      int was = r->state;
      receive(r, seg[j], &h[j], data[j], &o);
      if (r->state != was) rearm = 1;
      if (o.nhooks > 0 || o.n > MAX_OUT - 2) {
        pthread_mutex_unlock(&r->mu);
        flush(r, &o);
        pthread_mutex_lock(&r->mu);
      }
    }
    pthread_mutex_unlock(&r->mu);
    flush(r, &o);
  }
  if (rearm) timer_arm(r, sl_clock_ns());
}

static void transport_accept(sl_slave *s, sl_frame *f) {
  transport_accept_many(s, &f, 1);
}

/* ==== delivery ("RssiApp") ==== */

/* Takes up to max in-order segments off the ring (mu held); returns how
** many, the last one's number in *last. */
static int take_ring(rssi *r, sl_frame **fs, int max, uint8_t *last) {
  int n = 0;
  while (r->rxq_n > 0 && n < max) {
    fs[n++] = r->rxq[r->rxq_head];
    *last = r->rxq_seq[r->rxq_head];
    r->rxq_head = (r->rxq_head + 1) % RING;
    r->rxq_n--;
  }
  return n;
}

/* Strips the headers of n segments and hands the DATA ones to the
** application in one batch (NULs end here); lets go of all n. */
static void deliver(rssi *r, sl_frame **fs, int n) {
  sl_frame *out[DELIVER_BATCH];
  int k = 0;
  for (int i = 0; i < n; i++) {
    sl_frame *f = fs[i];
    sl_frame_lock(f);
    sl_buffer *b = sl_frame_buffer(f, 0);
    uint32_t hl = b ? sl_buffer_begin(b)[1] : 0;
    int nul = b ? (sl_buffer_begin(b)[0] & SL_RSSI_NUL) != 0 : 1;
    if (!nul) sl_buffer_adjust_header(b, hl);
    sl_frame_unlock(f);
    if (nul) sl_frame_unref(f);
    else out[k++] = f;
  }
  if (k == 0) return;
  atomic_fetch_add(&r->rx_frames, (uint64_t)k);
  sl_master_send_frames(&r->app.master, out, (size_t)k);
  sl_frame_unref_many(out, (size_t)k);
}

/* The delivery thread: wakes when the ring stops being empty, takes what
** it holds (up to DELIVER_BATCH) under one lock, delivers the batch with
** no lock held, then marks it delivered and acknowledges as the rules
** say (what the application has not taken is never acknowledged). */
static int app_main(void *arg) {
  rssi *r = arg;
  sl_frame *fs[DELIVER_BATCH];
  pthread_mutex_lock(&r->mu);
  while (!sl_worker_stopping(&r->app_worker)) {
    if (r->rxq_n == 0) {
      sl_wait_cond(&r->cv, &r->mu, NULL);
      continue;
    }
    uint8_t last = 0;
    int n = take_ring(r, fs, DELIVER_BATCH, &last);
    uint64_t opens = atomic_load(&r->opens);
    r->rx_held = n;               /* still waiting for the application */
    pthread_mutex_unlock(&r->mu);
    deliver(r, fs, n);
    pthread_mutex_lock(&r->mu);
    r->rx_held = 0;
    /* acknowledged once delivered, unless the link reopened meanwhile */
    if (r->state == SL_RSSI_OPEN && atomic_load(&r->opens) == opens)
      r->ack_value = last;
    outbox o = {.n = 0};
    int64_t now = sl_clock_ns();
    sample_busy(r);
    uint8_t pend = (uint8_t)(r->ack_value - r->ack_sent);
    int ack_now = r->state == SL_RSSI_OPEN && !r->loc_busy &&
                  (pend >= r->cur.max_cum_ack ||
                   now - r->last_tx_ns >= ms_ns(r->cur.cum_ack_tout));
    if (ack_now) send_ack(r, &o);
    int64_t due = r->last_tx_ns + ms_ns(r->cur.cum_ack_tout);
    pthread_mutex_unlock(&r->mu);
    flush(r, &o);
    if (!ack_now) timer_arm(r, due);
    pthread_mutex_lock(&r->mu);
  }
  pthread_mutex_unlock(&r->mu);
  return 0;
}

static void app_wake(void *arg) {
  rssi *r = arg;
  pthread_mutex_lock(&r->mu);
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* ==== the application side ==== */

/* f as a segment with 8 header bytes in front: f itself when its one
** buffer has the head room, else a copy from the transport. A new
** reference; NULL if there is no memory. */
static sl_frame *as_segment(rssi *r, sl_frame *f, uint32_t n) {
  sl_frame_lock(f);
  sl_buffer *b = sl_frame_buffer(f, 0);
  if (sl_frame_buffer_count(f) == 1 && b->head_room >= SL_RSSI_HEADER) {
    sl_buffer_adjust_header(b, -(int64_t)SL_RSSI_HEADER);
    sl_frame_unlock(f);
    return sl_frame_ref(f);
  }
  sl_frame *g = sl_master_req_frame(&r->tr.master, n + SL_RSSI_HEADER, 0);
  if (g != NULL) {
    sl_frame_lock(g);
    sl_frame_iter src, dst;
    sl_frame_iter_read(&src, f, 0);
    sl_frame_set_payload(g, n + SL_RSSI_HEADER);
    sl_frame_iter_write(&dst, g, SL_RSSI_HEADER);
    if (sl_frame_iter_copy(&src, n, &dst) != n) {
      sl_frame_unlock(g);
      sl_frame_unref(g);
      g = NULL;
    } else {
      sl_frame_unlock(g);
    }
  }
  sl_frame_unlock(f);
  return g;
}

/* Counts an application frame dropped and logs it: a loss of data is at
** Error, seen at the default level (the log's repeat limit keeps a flood
** to a line a second). */
static void tx_drop(rssi *r, int level, const char *msg) {
  bump64(&r->tx_drops);
  sl_log_write(r->log, level, "%s (%llu dropped in all)", msg,
               (unsigned long long)atomic_load(&r->tx_drops));
}

/* A send's wait: over when the window has room, the link is not open or
** stopping, or the deadline passed. */
typedef struct window_wait {
  rssi *r;
  struct timespec deadline;
} window_wait;

static int window_full(rssi *r) {
  return r->state == SL_RSSI_OPEN && !r->stopping &&
         r->outstanding >= r->cur.max_buffers;
}

static int window_over(void *arg) {
  window_wait *w = arg;
  pthread_mutex_lock(&w->r->mu);
  int full = window_full(w->r);
  pthread_mutex_unlock(&w->r->mu);
  return !full || sl_deadline_left(&w->deadline) <= 0;
}

/* One wait of up to tx_timeout_us for window space (mu held; released
** while waiting): SL_OK, SL_ETIMEDOUT or SL_ECANCELED. A thread with a
** wait hook polls and runs the hook (the Lua thread keeps its mailboxes
** served, so a Lua slave behind the peer can take the frames whose ACKs
** free the window); any other sleeps on tx_cv, which an ACK that frees
** room, a state change and a stop signal. */
static int wait_window_once(rssi *r) {
  window_wait w = {.r = r};
  sl_deadline_after(&w.deadline, (int64_t)r->tx_timeout_us);
  if (sl_wait_has_hook()) {
    pthread_mutex_unlock(&r->mu);
    int rc = sl_wait_for(window_over, &w);
    pthread_mutex_lock(&r->mu);
    return rc == SL_ECANCELED ? rc : window_full(r) ? SL_ETIMEDOUT : SL_OK;
  }
  int rc = SL_OK;
  r->tx_waiting++;
  while (window_full(r) && rc == SL_OK)
    rc = sl_wait_cond(&r->tx_cv, &r->mu, &w.deadline);
  r->tx_waiting--;
  return rc;
}

/* Waits for window space (mu held; released while waiting). 0 when a DATA
** may go now. Gives up when the link closes or stops and as the thread's
** waits do (wait.h); a critical line each tx_timeout_us of waiting. */
static int wait_window(rssi *r) {
  while (window_full(r)) {
    uint64_t us = r->tx_timeout_us;
    int rc = wait_window_once(r);
    if (rc == SL_ECANCELED) return -1;
    if (rc == SL_ETIMEDOUT && window_full(r))
      sl_log_write(r->log, SL_LOG_CRITICAL,
                   "Controller::applicationRx: Timeout waiting for outbound queue "
                   "after %" PRIu64 ".%06" PRIu64 " seconds! May be caused by "
                   "outbound backpressure.", us / 1000000, us % 1000000);
  }
  return r->state == SL_RSSI_OPEN && !r->stopping ? 0 : -1;
}

/* The segment for application frame f (a new reference: f itself with
** the header room taken, or a copy), or NULL when f is dropped (counted,
** logged as Rogue does). */
static sl_frame *app_segment(rssi *r, sl_frame *f) {
  sl_frame_lock(f);
  uint32_t n = sl_frame_get_payload(f);
  uint8_t ferr = sl_frame_get_error(f);
  sl_frame_unlock(f);
  if (n == 0 || ferr != 0) {
    tx_drop(r, n == 0 ? SL_LOG_WARNING : SL_LOG_ERROR,
            n == 0 ? "Dropping empty application frame" : "Dropping errored application frame");
    return NULL;
  }
  pthread_mutex_lock(&r->mu);
  uint32_t max = r->cur.max_segment;
  int open = r->state == SL_RSSI_OPEN, stopping = r->stopping;
  pthread_mutex_unlock(&r->mu);
  if (!open || n + SL_RSSI_HEADER > max) {   /* Rogue: closed silently */
    tx_drop(r, stopping ? SL_LOG_DEBUG : SL_LOG_ERROR,
            open ? "Dropping application frame over the max segment size"
                 : "Dropping application frame: the link is not open");
    return NULL;
  }
  sl_frame *g = as_segment(r, f, n);
  if (g == NULL) tx_drop(r, SL_LOG_ERROR, "No memory for an RSSI segment");
  return g;
}

/* Drops segment g made from f: f gets its header room back. A drop at
** stop is at Debug. */
static void app_unsegment(rssi *r, sl_frame *f, sl_frame *g, int stopping) {
  if (g == f) {
    sl_frame_lock(f);
    sl_buffer_adjust_header(sl_frame_buffer(f, 0), SL_RSSI_HEADER);
    sl_frame_unlock(f);
  }
  sl_frame_unref(g);
  tx_drop(r, stopping ? SL_LOG_DEBUG : SL_LOG_ERROR,
          "Dropping application frame: the link closed before it was sent");
}

/* Numbers segment g as the next DATA and queues it (mu held; g taken). */
static void app_number(rssi *r, outbox *o, sl_frame *g) {
  uint8_t ack = ack_field(r), seq = r->tx_seq++;
  sl_rssi_header h = {.flags = SL_RSSI_ACK | busy_bit(r), .seq = seq, .ack = ack};
  sl_frame_lock(g);
  sl_rssi_encode(sl_buffer_begin(sl_frame_buffer(g, 0)), &h);
  sl_frame_unlock(g);
  sent_now(r, ack);
  send_sequenced(r, o, g, seq);
}

/* Sends k segments (seg[j] made from src[j]) as the window allows, in
** batches to the transport: what is numbered goes out before a wait for
** window space. When the link closes or the wait gives up, the rest are
** dropped. */
static void app_send(rssi *r, sl_frame **src, sl_frame **seg, int k) {
  outbox o = {.n = 0};
  int sent = 0, j = 0;
  pthread_mutex_lock(&r->mu);
  for (; j < k; j++) {
    if (o.n > 0 && window_full(r)) {
      pthread_mutex_unlock(&r->mu);
      flush(r, &o);
      pthread_mutex_lock(&r->mu);
    }
    if (wait_window(r) != 0) break;
    app_number(r, &o, seg[j]);
    sent++;
  }
  int64_t due = r->last_tx_ns + ms_ns(r->cur.retran_tout);
  int stopping = r->stopping;
  pthread_mutex_unlock(&r->mu);
  for (; j < k; j++) app_unsegment(r, src[j], seg[j], stopping);
  atomic_fetch_add(&r->tx_frames, (uint64_t)sent);
  flush(r, &o);
  if (sent > 0) timer_arm(r, due);
}

static int in_batch(sl_frame **fs, int n, const sl_frame *f) {
  for (int i = 0; i < n; i++)
    if (fs[i] == f) return 1;
  return 0;
}

/* n frames from the application, in order, each one DATA segment. A
** frame that comes twice in the batch starts a new one (its header room
** is taken once per send). */
static void app_accept_many(sl_slave *s, sl_frame **fs, size_t n) {
  rssi *r = ((edge *)s->owner)->link;
  size_t i = 0;
  while (i < n) {
    sl_frame *src[MAX_OUT], *seg[MAX_OUT];
    int k = 0;
    for (; i < n && k < MAX_OUT && !in_batch(src, k, fs[i]); i++) {
      sl_frame *g = app_segment(r, fs[i]);
      if (g == NULL) continue;
      src[k] = fs[i];
      seg[k++] = g;
    }
    app_send(r, src, seg, k);
  }
}

static void app_accept(sl_slave *s, sl_frame *f) { app_accept_many(s, &f, 1); }

/* reqFrame: one buffer, 8 bytes of head room, from the transport. */
static sl_frame *app_req(sl_slave *s, uint32_t size, int zero_copy) {
  rssi *r = ((edge *)s->owner)->link;
  (void)zero_copy;
  pthread_mutex_lock(&r->mu);
  uint32_t cap = r->cur.max_segment < r->loc.max_segment ? r->cur.max_segment
                                                           : r->loc.max_segment;
  pthread_mutex_unlock(&r->mu);
  uint64_t want = (uint64_t)size + SL_RSSI_HEADER;
  if (want > cap) want = cap;
  sl_frame *f = sl_master_req_frame(&r->tr.master, (uint32_t)want, 0);
  if (f == NULL) return NULL;
  sl_frame_lock(f);
  sl_buffer *b = sl_frame_buffer(f, 0);
  int ok = sl_frame_buffer_count(f) == 1 &&
           sl_buffer_adjust_header(b, SL_RSSI_HEADER) == SL_OK;
  sl_frame_unlock(f);
  if (ok) return f;
  sl_frame_unref(f);
  return sl_slave_req_local_frame(s, (uint32_t)want - SL_RSSI_HEADER);
}

/* ==== the nodes ==== */

static size_t rssi_counters(sl_object *obj, sl_counter *out, size_t max);

static void edge_destroy(sl_object *obj) {
  sl_object_unref(&((edge *)obj)->link->obj);
}

static void edge_stop(sl_object *obj) { sl_rssi_stop(((edge *)obj)->link); }

static void edge_cancel(sl_object *obj) {
  rssi *r = ((edge *)obj)->link;
  pthread_mutex_lock(&r->mu);
  r->stopping = 1;
  pthread_cond_broadcast(&r->cv);
  pthread_cond_broadcast(&r->tx_cv);
  pthread_mutex_unlock(&r->mu);
}

static const sl_class transport_class = {.name = "rssi.Transport",
                                         .destroy = edge_destroy,
                                         .stop = edge_stop,
                                         .cancel = edge_cancel};
static const sl_class application_class = {.name = "rssi.Application",
                                           .destroy = edge_destroy,
                                           .stop = edge_stop,
                                           .cancel = edge_cancel};

static const sl_slave_ops transport_ops = {.accept_frame = transport_accept,
                                           .accept_frames = transport_accept_many};
static const sl_slave_ops application_ops = {.accept_frame = app_accept,
                                             .accept_req = app_req,
                                             .accept_frames = app_accept_many};

static void rssi_cancel(sl_object *obj) { edge_cancel(&((rssi *)obj)->tr.obj); }
static void rssi_stop(sl_object *obj) { sl_rssi_stop((rssi *)obj); }

static void rssi_destroy(sl_object *obj) {
  rssi *r = (rssi *)obj;
  outbox o = {.n = 0};
  if (r->worker_running) sl_worker_stop(&r->app_worker);
  clear_queues(r, &o);
  sl_frame_unref_many(o.drop, (size_t)o.ndrop);
  sl_master_fini(&r->tr.master);
  sl_slave_fini(&r->tr.slave);
  sl_master_fini(&r->app.master);
  sl_slave_fini(&r->app.slave);
  pthread_cond_destroy(&r->tx_cv);
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

static const sl_class client_class = {.name = "rssi.Client",
                                      .destroy = rssi_destroy,
                                      .stop = rssi_stop,
                                      .cancel = rssi_cancel,
                                      .counters = rssi_counters};
static const sl_class server_class = {.name = "rssi.Server",
                                      .destroy = rssi_destroy,
                                      .stop = rssi_stop,
                                      .cancel = rssi_cancel,
                                      .counters = rssi_counters};

static int edge_init(rssi *r, edge *e, const sl_class *cls,
                     const sl_slave_ops *ops) {
  sl_object_init(&e->obj, cls);
  atomic_store(&e->obj.refs, 0);  /* counts outside users only */
  e->link = r;
  if (sl_slave_init(&e->slave, ops, &e->obj) != SL_OK) return -1;
  if (sl_master_init(&e->master, &e->obj) != SL_OK) {
    sl_slave_fini(&e->slave);
    return -1;
  }
  return 0;
}

sl_rssi *sl_rssi_new(int server, uint32_t seg_size, sl_error *err) {
  if (seg_size <= SL_RSSI_HEADER || seg_size > 0xFFFF)
    return sl_fail(err, SL_EINVAL, "segment size %" PRIu32 " out of range [9, 65535]",
                   seg_size);
  rssi *r = calloc(1, sizeof *r);
  if (r == NULL) return sl_fail(err, SL_ENOMEM, NULL);
  if (pthread_mutex_init(&r->mu, NULL) != 0) goto fail_mu;
  if (sl_cond_init(&r->cv) != 0) goto fail_cv;
  if (sl_cond_init(&r->tx_cv) != 0) goto fail_tx_cv;
  sl_object_init(&r->obj, server ? &server_class : &client_class);
  if (edge_init(r, &r->tr, &transport_class, &transport_ops) != 0) goto fail_tr;
  if (edge_init(r, &r->app, &application_class, &application_ops) != 0)
    goto fail_app;
  r->server = server != 0;
  r->log = sl_log_get("rssi.controller");
  sl_rssi_default_params(&r->loc, (uint16_t)seg_size);
  r->cur = r->init = r->loc;
  r->try_ms = TRY_PERIOD_MS;
  r->tx_timeout_us = TX_TIMEOUT_US;
  r->tx_seq = 100;
  r->acked = 99;
  r->state = SL_RSSI_CLOSED;
  return r;
fail_app:
  sl_master_fini(&r->tr.master);
  sl_slave_fini(&r->tr.slave);
fail_tr:
  pthread_cond_destroy(&r->tx_cv);
fail_tx_cv:
  pthread_cond_destroy(&r->cv);
fail_cv:
  pthread_mutex_destroy(&r->mu);
fail_mu:
  free(r);
  return sl_fail(err, SL_ENOMEM, NULL);
}

sl_object *sl_rssi_object(sl_rssi *r) { return r != NULL ? &r->obj : NULL; }

sl_rssi *sl_rssi_from_object(sl_object *obj) {
  return sl_object_is(obj, &client_class) || sl_object_is(obj, &server_class)
             ? (rssi *)obj : NULL;
}

sl_rssi *sl_rssi_from_edge(sl_object *obj) {
  return sl_object_is(obj, &transport_class) ||
                 sl_object_is(obj, &application_class)
             ? ((edge *)obj)->link : NULL;
}

static sl_object *edge_ref(rssi *r, edge *e) {
  if (atomic_fetch_add(&e->obj.refs, 1) == 0) sl_object_ref(&r->obj);
  return &e->obj;
}

sl_object *sl_rssi_transport(sl_rssi *r) { return edge_ref(r, &r->tr); }
sl_object *sl_rssi_application(sl_rssi *r) { return edge_ref(r, &r->app); }

int sl_rssi_start(sl_rssi *r) {
  outbox o = {.n = 0};
  pthread_mutex_lock(&r->mu);
  int was = r->started;
  r->started = 1;
  r->stopping = 0;
  if (!was) {   /* a server takes a SYN at once, a client sends one */
    r->state = SL_RSSI_WAIT_SYN;
    r->state_ns = sl_clock_ns();
    if (!r->server) send_syn(r, &o, 0);
  }
  int need_worker = !r->worker_running;
  r->worker_running = 1;
  pthread_mutex_unlock(&r->mu);
  flush(r, &o);
  if (need_worker &&
      sl_worker_start(&r->app_worker, "RssiApp", 0, app_main, app_wake, r) != 0) {
    pthread_mutex_lock(&r->mu);
    r->worker_running = 0;
    r->started = 0;
    pthread_mutex_unlock(&r->mu);
    return SL_EIO;
  }
  return timer_register(r);
}

void sl_rssi_stop(sl_rssi *r) {
  outbox o = {.n = 0};
  pthread_mutex_lock(&r->mu);
  r->stopping = 1;
  if (r->state == SL_RSSI_OPEN) {
    send_rst(r, &o);
    hook_add(&o, 0);
  }
  r->state = SL_RSSI_CLOSED;
  r->started = 0;
  clear_queues(r, &o);
  int worker = r->worker_running;
  r->worker_running = 0;
  pthread_mutex_unlock(&r->mu);
  flush(r, &o);
  if (worker && sl_worker_stop(&r->app_worker) == SL_EBUSY) {
    pthread_mutex_lock(&r->mu);   /* on its own thread: it ends itself */
    r->worker_running = 1;
    pthread_mutex_unlock(&r->mu);
  }
  timer_unregister(r);   /* the registry's reference last */
}

int sl_rssi_is_open(sl_rssi *r) {
  pthread_mutex_lock(&r->mu);
  int open = r->state == SL_RSSI_OPEN;
  pthread_mutex_unlock(&r->mu);
  return open;
}

void sl_rssi_stats_get(sl_rssi *r, sl_rssi_stats *s) {
  memset(s, 0, sizeof *s);
  pthread_mutex_lock(&r->mu);
  s->state = r->state;
  s->open = r->state == SL_RSSI_OPEN;
  s->loc_busy = r->loc_busy;
  s->rem_busy = r->rem_busy;
  pthread_mutex_unlock(&r->mu);
  s->down_count = atomic_load(&r->down_count);
  s->drop_count = atomic_load(&r->drop_count);
  s->retran_count = atomic_load(&r->retran_count);
  s->loc_busy_count = atomic_load(&r->loc_busy_cnt);
  s->rem_busy_count = atomic_load(&r->rem_busy_cnt);
  s->opens = atomic_load(&r->opens);
  s->tx_frames = atomic_load(&r->tx_frames);
  s->rx_frames = atomic_load(&r->rx_frames);
  s->tx_drops = atomic_load(&r->tx_drops);
  s->tx_segments = atomic_load(&r->tx_segs);
  s->rx_segments = atomic_load(&r->rx_segs);
  s->reacks = atomic_load(&r->reacks);
}

void sl_rssi_reset_counters(sl_rssi *r) {
  atomic_store(&r->down_count, 0);
  atomic_store(&r->drop_count, 0);
  atomic_store(&r->retran_count, 0);
  atomic_store(&r->loc_busy_cnt, 0);
  atomic_store(&r->rem_busy_cnt, 0);
}

static size_t rssi_counters(sl_object *obj, sl_counter *out, size_t max) {
  sl_rssi_stats s;
  sl_rssi_stats_get((rssi *)obj, &s);
  const sl_counter c[] = {
      {"txFrames", s.tx_frames},       {"rxFrames", s.rx_frames},
      {"drops", s.drop_count},         {"txDrops", s.tx_drops},
      {"retransmissions", s.retran_count}, {"downs", s.down_count},
      {"opens", s.opens},              {"open", (uint64_t)s.open},
      {"locBusyCnt", s.loc_busy_count}, {"remBusyCnt", s.rem_busy_count},
      {"txSegments", s.tx_segments},   {"rxSegments", s.rx_segments},
      {"reacks", s.reacks}};
  size_t n = sizeof c / sizeof c[0];
  if (n > max) n = max;
  memcpy(out, c, n * sizeof *out);
  return n;
}

/* ==== parameters ==== */

static const uint32_t param_max[SL_RSSI_P_COUNT] = {
    0xFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFF, 0xFF, 0xFFFFFFFFu};

static uint32_t param_get(const sl_rssi_params *p, int param, uint32_t try_ms) {
  switch (param) {
    case SL_RSSI_P_MAX_BUFFERS: return p->max_buffers;
    case SL_RSSI_P_MAX_SEGMENT: return p->max_segment;
    case SL_RSSI_P_CUM_ACK_TOUT: return p->cum_ack_tout;
    case SL_RSSI_P_RETRAN_TOUT: return p->retran_tout;
    case SL_RSSI_P_NULL_TOUT: return p->null_tout;
    case SL_RSSI_P_MAX_RETRAN: return p->max_retran;
    case SL_RSSI_P_MAX_CUM_ACK: return p->max_cum_ack;
    case SL_RSSI_P_TRY_PERIOD: return try_ms;
    default: return 0;
  }
}

int sl_rssi_set_loc(sl_rssi *r, int param, uint32_t v) {
  if (param < 0 || param >= SL_RSSI_P_COUNT || v == 0 || v > param_max[param])
    return SL_EINVAL;
  if (param == SL_RSSI_P_MAX_SEGMENT && v <= SL_RSSI_HEADER) return SL_EINVAL;
  pthread_mutex_lock(&r->mu);
  sl_rssi_params *p = &r->loc;
  switch (param) {
    case SL_RSSI_P_MAX_BUFFERS: p->max_buffers = (uint8_t)v; break;
    case SL_RSSI_P_MAX_SEGMENT: p->max_segment = (uint16_t)v; break;
    case SL_RSSI_P_CUM_ACK_TOUT: p->cum_ack_tout = (uint16_t)v; break;
    case SL_RSSI_P_RETRAN_TOUT: p->retran_tout = (uint16_t)v; break;
    case SL_RSSI_P_NULL_TOUT: p->null_tout = (uint16_t)v; break;
    case SL_RSSI_P_MAX_RETRAN: p->max_retran = (uint8_t)v; break;
    case SL_RSSI_P_MAX_CUM_ACK: p->max_cum_ack = (uint8_t)v; break;
    case SL_RSSI_P_TRY_PERIOD: r->try_ms = v; break;
  }
  pthread_mutex_unlock(&r->mu);
  return SL_OK;
}

uint32_t sl_rssi_get_loc(sl_rssi *r, int param) {
  pthread_mutex_lock(&r->mu);
  uint32_t v = param_get(&r->loc, param, r->try_ms);
  pthread_mutex_unlock(&r->mu);
  return v;
}

uint32_t sl_rssi_get_cur(sl_rssi *r, int param) {
  pthread_mutex_lock(&r->mu);
  uint32_t v = param_get(&r->cur, param, r->try_ms);
  pthread_mutex_unlock(&r->mu);
  return v;
}

void sl_rssi_set_timeout(sl_rssi *r, uint64_t us) {
  pthread_mutex_lock(&r->mu);
  r->tx_timeout_us = us > 0 ? us : 1;
  pthread_mutex_unlock(&r->mu);
}

void sl_rssi_set_state_hook(sl_rssi *r, void (*fn)(void *arg, int open),
                            void *arg) {
  pthread_mutex_lock(&r->mu);
  r->hook = fn;
  r->hook_arg = arg;
  pthread_mutex_unlock(&r->mu);
}
