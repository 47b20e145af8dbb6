/*
** What packetizer.c (the nodes, sending) and packetizer_rx.c (receiving)
** share. Internal to streamlua.
**
** Locks: `mu` guards making and reviving edges; `rx_mu` the reassembly
** state (held while a segment is parsed, never while a frame is
** delivered); `tx_mu` the send token, which the thread sending one
** frame's segments holds (no lock is held meanwhile) and which guards the
** v1 frame number; a frame sent from inside that send, by the same
** thread, waits in `tx_later` and goes out right after. Counters are
** atomics.
*/
#ifndef STREAMLUA_PACKETIZER_INTERNAL_H_INCLUDED_
#define STREAMLUA_PACKETIZER_INTERNAL_H_INCLUDED_

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/packetizer.h"
#include "streamlua/slave.h"

/*
** An edge: the transport (dest -1) or one application. Its memory belongs
** to the Core. While its count is above zero it holds one reference on the
** Core; at zero it releases that and lives on, idle, until the Core goes
** (it may be handed out again meanwhile: the count goes back up).
*/
typedef struct pk_edge {
  sl_object obj;
  sl_master master;
  sl_slave slave;
  struct sl_packetizer *core;
  int dest;                          /* -1: the transport */
  atomic_uint_least64_t tx_frames, tx_bytes, rx_frames, rx_bytes, dropped;
} pk_edge;

/* One frame being reassembled. */
typedef struct pk_slot {
  sl_frame *f;                       /* NULL: no frame open */
  uint32_t frame_num;                /* v1 */
  uint32_t next_seg;                 /* the segment number expected next */
  uint32_t crc;                      /* v2: the chain so far */
  uint32_t bytes;                    /* payload held */
  uint8_t dest, first_user;
} pk_slot;

struct sl_packetizer {
  sl_object obj;
  int version, ib_crc, ob_crc, ssi;
  sl_log *log;
  pthread_mutex_t mu;                /* edges */
  pk_edge *transport;
  pk_edge *_Atomic apps[SL_PACK_DESTS];
  pthread_mutex_t tx_mu;
  pthread_cond_t tx_cv;              /* the send token came free */
  pthread_t tx_owner;                /* valid while tx_busy */
  int tx_busy;                       /* a thread holds the send token */
  struct pk_job *tx_later;           /* frames sent re-entrantly, newest first */
  uint32_t frame_num;                /* v1: the next frame's number */
  pthread_mutex_t rx_mu;
  pk_slot *slots;                    /* 1 (v1) or 256 (v2) */
  uint64_t pending, max_pending;     /* payload bytes held in slots */
  atomic_uint_least64_t drops, drop_contents, drop_state, drop_crc,
      drop_limit, drop_reset, replaced, no_app, rx_segments, rx_frames,
      tx_segments, tx_frames, tx_errored, copied;
};

/* packetizer_rx.c: the transport's accept_frame. */
void pk_rx_segment(sl_packetizer *p, sl_frame *seg);
/* Drops every unfinished frame; `why` 1 counts and logs them as reset
** drops, 0 frees them quietly (the Core is going). Returns how many. */
size_t pk_rx_clear(sl_packetizer *p, int why);

static inline void pk_bump(atomic_uint_least64_t *c) {
  atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline void pk_add(atomic_uint_least64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

#endif
