/*
** RSSI: the Reliable SLAC Streaming Interface, Rogue's reliable transport
** over UDP (spec/rogue-link-reference.md section 2), byte-compatible with
** Rogue v6.15 and SLAC firmware.
**
** Part one, the segment header codec: pure functions on the caller's
** bytes, any thread. Every segment starts with an 8-byte header (24 bytes
** when SYN is set; the extra bytes carry the connection parameters), all
** multi-byte fields big-endian, the last two bytes a checksum over the
** rest of the header (data is not covered).
**
** Part two, the link (sl_rssi): a Client or Server with two stream edges,
** `transport` (lower: connect to UDP) and `application` (upper: the
** packetizer or the user). See the comment above sl_rssi_new.
*/
#ifndef STREAMLUA_RSSI_H_INCLUDED_
#define STREAMLUA_RSSI_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

#define SL_RSSI_HEADER 8u        /* every segment but SYN */
#define SL_RSSI_SYN_HEADER 24u   /* SYN segments */

/* Byte 0 of the header. Bits 2 and 1 are never set and are ignored. */
enum {
  SL_RSSI_SYN = 0x80,
  SL_RSSI_ACK = 0x40,
  SL_RSSI_EACK = 0x20,   /* never sent; ignored on receive */
  SL_RSSI_RST = 0x10,
  SL_RSSI_NUL = 0x08,
  SL_RSSI_BUSY = 0x01
};

/* The connection parameters a SYN carries (bytes 4..21). Times are in
** units of 10^-unit s; this implementation sends unit 3 and, as Rogue,
** takes every received value as milliseconds. */
typedef struct sl_rssi_params {
  uint8_t version;        /* byte 4 bits 7:4 (1) */
  uint8_t chk;            /* byte 4 bit 2: checksum enabled (1) */
  uint8_t max_buffers;    /* byte 5: max outstanding segments */
  uint16_t max_segment;   /* bytes 6-7: max segment size, header included */
  uint16_t retran_tout;   /* bytes 8-9 */
  uint16_t cum_ack_tout;  /* bytes 10-11 */
  uint16_t null_tout;     /* bytes 12-13 */
  uint8_t max_retran;     /* byte 14: transmissions of one segment */
  uint8_t max_cum_ack;    /* byte 15 */
  uint8_t max_ooo;        /* byte 16: firmware field, sent 0, ignored */
  uint8_t unit;           /* byte 17 */
  uint32_t conn_id;       /* bytes 18-21 (BE32) */
} sl_rssi_params;

/* A decoded header. `params` is meaningful only with SL_RSSI_SYN. */
typedef struct sl_rssi_header {
  uint8_t flags;          /* byte 0 */
  uint8_t length;         /* byte 1: 8 or 24 */
  uint8_t seq;            /* byte 2 */
  uint8_t ack;            /* byte 3 */
  uint16_t checksum;      /* last two header bytes (BE16) */
  sl_rssi_params params;
} sl_rssi_header;

/* Rogue's defaults (loc... values of a fresh link) for a max segment size. */
void sl_rssi_default_params(sl_rssi_params *p, uint16_t max_segment);

/* The checksum of a header of len bytes (8 or 24) as Rogue computes it:
** the bytes 0..len-3 summed as BE16 words, the carry folded once, then
** inverted. When the once-folded sum is exactly 0x10000 this gives 0xFFFF
** where a full ones-complement fold (firmware) gives 0xFFFE. */
uint16_t sl_rssi_checksum(const uint8_t *hdr, uint32_t len);
/* The full ones-complement fold (firmware's value). */
uint16_t sl_rssi_checksum_full(const uint8_t *hdr, uint32_t len);

/* Writes h's header into out (8 or 24 bytes, by SL_RSSI_SYN in h->flags)
** with its length byte and checksum (Rogue's); h->length and h->checksum
** are not read. Bytes 4-5 of a non-SYN header are 0. Returns the length. */
uint32_t sl_rssi_encode(uint8_t *out, const sl_rssi_header *h);

/* Why a segment is refused, in the order they are checked. */
enum {
  SL_RSSI_OK = 0,
  SL_RSSI_ESHORT = -1,    /* fewer than 8 bytes */
  SL_RSSI_ELENGTH = -2,   /* byte 1 is not 24 with SYN, 8 without */
  SL_RSSI_ETRUNC = -3,    /* fewer bytes than byte 1 says */
  SL_RSSI_ECHECKSUM = -4  /* neither Rogue's checksum nor the full fold */
};

/* Decodes and checks the header at the start of n bytes. Returns
** SL_RSSI_OK with *h filled, or an SL_RSSI_E... code (h partly filled).
** The checksum is accepted in Rogue's form and in the full fold (they
** differ in one corner case only). Version, CHK, unit and connection id
** are not checked (Rogue does not). */
int sl_rssi_decode(const uint8_t *p, uint32_t n, sl_rssi_header *h);

/* A short text for an SL_RSSI_E... code. */
const char *sl_rssi_decode_str(int code);


/* ---- the link ---- */

/*
** sl_rssi_new(server, seg_size): Rogue's rssi.Client / rssi.Server (kind
** "rssi.Client" / "rssi.Server"), not started: nothing is sent before
** sl_rssi_start. Its two edges are stream master+slave objects:
**
**   transport (kind "rssi.Transport"): connect both ways to a UDP
**     endpoint; segments in and out
**   application (kind "rssi.Application"): frames in and out, one frame
**     per DATA segment; reqFrame gives one buffer of up to
**     min(size + 8, cur and loc max segment) - 8 bytes with the 8 header
**     bytes in its head room, so a send adds the header without a copy
**     (a frame from elsewhere is copied)
**
** Threads. Protocol timers (SYN retry, ACK, keep-alive, retransmission)
** of every link run on one shared timer thread ("RssiTimer"), not on the
** libevent I/O thread: a timer's work ends in a send into the transport,
** which is graph code and may wait (a UDP endpoint waits for socket room;
** an in-process transport runs whatever is behind it), and the I/O thread
** must never block. The thread runs while a link is started. Each started
** link has one delivery thread ("RssiApp") that hands in-order segments to
** the application: the transport's receive thread only checks, acks and
** queues, so an application that answers from inside its delivery (and
** waits for window space) never holds up the ACKs that would free it.
** Application sends run in the caller's thread and wait for window space;
** that wait gives up when the link stops or closes, and when the calling
** thread's waits give up (wait.h); the frame is then dropped.
**
** State is under one mutex per link, never held while calling into the
** graph (sends into the transport or the application, hooks).
**
** Improvements over Rogue that stay compatible on the wire: an old
** duplicate DATA/NUL is re-acknowledged (one lost ACK does not reset the
** link); received ack numbers outside the outstanding range are ignored;
** a repeated SYN-ACK while open is answered with an ACK; a server that has
** heard nothing but SYNs since it opened takes another SYN as the client's
** retry (its SYN-ACK was slow or lost) and sends the same SYN-ACK again
** instead of resetting; busy is set when
** half the receive window waits for delivery (Rogue: two segments);
** stop never waits for a datagram; with a window of 128 or more, a
** segment whose number could be an old duplicate's is not held out of
** order (Rogue holds it and later delivers it in the wrong place).
**
** Ownership: sl_rssi_transport and sl_rssi_application return a new
** reference on the edge; an edge holds a reference on its link while
** anyone holds the edge. Thread-safe: any function from any thread.
*/
typedef struct sl_rssi sl_rssi;

/* The link states (numbers as in Rogue's log lines). */
enum {
  SL_RSSI_CLOSED = 0,
  SL_RSSI_WAIT_SYN = 1,
  SL_RSSI_OPEN = 4
};

/* The negotiable parameters, plus the local try period (ms). */
enum {
  SL_RSSI_P_MAX_BUFFERS,
  SL_RSSI_P_MAX_SEGMENT,
  SL_RSSI_P_CUM_ACK_TOUT,
  SL_RSSI_P_RETRAN_TOUT,
  SL_RSSI_P_NULL_TOUT,
  SL_RSSI_P_MAX_RETRAN,
  SL_RSSI_P_MAX_CUM_ACK,
  SL_RSSI_P_TRY_PERIOD,
  SL_RSSI_P_COUNT
};

/* Counters and flags of a link (sl_rssi_stats). */
typedef struct sl_rssi_stats {
  int state, open, loc_busy, rem_busy;
  uint32_t down_count;      /* resets: entries into the error state */
  uint32_t drop_count;      /* received segments dropped */
  uint32_t retran_count;    /* retransmissions */
  uint32_t loc_busy_count, rem_busy_count;   /* not-busy -> busy */
  uint64_t opens;           /* times the link opened */
  uint64_t tx_frames, rx_frames, tx_drops;   /* application frames */
  uint64_t tx_segments, rx_segments, reacks;
} sl_rssi_stats;

sl_rssi *sl_rssi_new(int server, uint32_t seg_size, sl_error *err);
sl_object *sl_rssi_object(sl_rssi *r);          /* (transfer none); NULL-safe */
sl_rssi *sl_rssi_from_object(sl_object *obj);   /* NULL if not a link */
/* The link of an edge (transfer none), NULL if obj is not an edge. */
sl_rssi *sl_rssi_from_edge(sl_object *obj);

/* The edges, each with a new reference. */
sl_object *sl_rssi_transport(sl_rssi *r);
sl_object *sl_rssi_application(sl_rssi *r);

/* Starts the link: a client sends its first SYN at once, a server waits
** for one. SL_OK (also when started), SL_EIO (no thread). */
int sl_rssi_start(sl_rssi *r);
/* Sends RST if open, closes, ends the link's threads. Returns promptly
** whatever the state; sl_rssi_start may follow. */
void sl_rssi_stop(sl_rssi *r);

int sl_rssi_is_open(sl_rssi *r);
void sl_rssi_stats_get(sl_rssi *r, sl_rssi_stats *out);
/* Zeroes drop, down, retransmission and both busy counts. */
void sl_rssi_reset_counters(sl_rssi *r);

/* Local values (the next SYN's; the try period and max segment local
** only). SL_EINVAL for 0 or a value over the field's width. */
int sl_rssi_set_loc(sl_rssi *r, int param, uint32_t value);
uint32_t sl_rssi_get_loc(sl_rssi *r, int param);
/* Negotiated values (the constructor's defaults before any). The try
** period has none: its local value. */
uint32_t sl_rssi_get_cur(sl_rssi *r, int param);
/* Period of the critical log while a send waits for window space (us). */
void sl_rssi_set_timeout(sl_rssi *r, uint64_t us);

/* Called after each open (open = 1) and close (0) transition, from the
** thread that made it, with no lock held; NULL clears. The link wiring
** uses it to reset what sits above when the link reopens. */
void sl_rssi_set_state_hook(sl_rssi *r, void (*fn)(void *arg, int open),
                            void *arg);

#pragma GCC visibility pop

#endif
