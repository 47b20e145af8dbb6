/*
** sl_zmtp: a ZMTP 3.x codec for one PUSH or PULL connection with the NULL
** mechanism, as libzmq (and so Rogue's stream bridge) speaks it. Bytes in,
** events out; no sockets, no clock, no threads.
**
**   input (bytes from the peer)          output (bytes for the peer)
**   ---------------------------          ---------------------------
**   sl_zmtp_feed(z, p, n, &used)         sl_zmtp_output(z, &p): greeting
**     stops at the first event;            and READY (queued by new), then
**     the caller advances by used          any PONG answers; send them,
**   sl_zmtp_pop(z, &ev) takes it:          then sl_zmtp_output_done(z, n)
**     GREETING, READY, MESSAGE,          messages: sl_zmtp_frame_header()
**     PING, PONG, IGNORED,                 per part + the payload bytes
**     PEER_ERROR, FATAL                    (writev-friendly), or
**                                          sl_zmtp_encode() into one buffer
**
** Session stages: GREETING (64 bytes) -> HANDSHAKE (waiting for READY) ->
** OPEN (messages and commands) -> DEAD (after FATAL or PEER_ERROR; the
** caller closes the TCP connection). Send messages only once the stage
** is OPEN: both READYs have then been exchanged (ours is queued before
** anything else). Output queued by the session (the greeting, READY,
** PONGs) is whole commands, to be written between frames, never inside a
** frame of a message being sent.
**
** What is accepted and refused follows libzmq 4.3.4 as recorded in
** spec/rogue-reference.md 4.5: padding, minor version, the as-server byte
** and reserved flag bits are not checked; a LONG size is accepted for any
** length; after the handshake, unknown or malformed commands and a second
** READY are dropped (reported as IGNORED); a READY whose Socket-Type is
** not the partner of ours is fatal. Stricter than libzmq: majors below 3
** are refused instead of downgraded to older ZMTP; a READY property with
** an empty name (RFC 23 wants 1-255 characters) and a command over
** SL_ZMTP_COMMAND_MAX before READY are fatal; ERROR ends the session at
** any stage; messages over the configured size or part count are fatal
** (libzmq has no limit by default).
**
** A session belongs to one thread at a time. The encoders without a
** session are pure and thread-safe.
*/
#ifndef STREAMLUA_ZMTP_H_INCLUDED_
#define STREAMLUA_ZMTP_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

#define SL_ZMTP_GREETING_SIZE 64
#define SL_ZMTP_READY_SIZE 28          /* our READY: Socket-Type only */
#define SL_ZMTP_HEADER_MAX 9           /* flags + 8-byte size */
#define SL_ZMTP_SHORT_MAX 255          /* longest body with a 1-byte size */
#define SL_ZMTP_COMMAND_MAX 8192       /* command bytes looked at */
#define SL_ZMTP_PING_CONTEXT_MAX 16
#define SL_ZMTP_DEFAULT_MAX_MSG (64u << 20)
#define SL_ZMTP_DEFAULT_MAX_PARTS 256

/* Frame flag bits (byte 0 of every frame after the greeting). */
#define SL_ZMTP_FLAG_MORE 0x01
#define SL_ZMTP_FLAG_LONG 0x02
#define SL_ZMTP_FLAG_COMMAND 0x04

typedef struct sl_zmtp sl_zmtp;

/* Our socket type; the peer must announce the other one (or none). */
typedef enum sl_zmtp_role { SL_ZMTP_PUSH = 1, SL_ZMTP_PULL = 2 } sl_zmtp_role;

typedef enum sl_zmtp_stage {
  SL_ZMTP_STAGE_GREETING,
  SL_ZMTP_STAGE_HANDSHAKE,
  SL_ZMTP_STAGE_OPEN,
  SL_ZMTP_STAGE_DEAD
} sl_zmtp_stage;

typedef enum sl_zmtp_kind {
  SL_ZMTP_NONE = 0,     /* no event: every byte given was used */
  SL_ZMTP_GREETING,     /* the peer's greeting passed (minor, as_server) */
  SL_ZMTP_READY,        /* the peer's READY passed: messages may flow */
  SL_ZMTP_MESSAGE,      /* one whole message (parts, nparts, size) */
  SL_ZMTP_PING,         /* a PING; its PONG is in the output (ttl) */
  SL_ZMTP_PONG,         /* a PONG: the peer is alive */
  SL_ZMTP_IGNORED,      /* a command dropped as libzmq drops it (text) */
  SL_ZMTP_PEER_ERROR,   /* the peer sent ERROR (text = reason); dead */
  SL_ZMTP_FATAL         /* protocol error (text says what); dead */
} sl_zmtp_kind;

/* One part of a message: size bytes at data (never NULL, even for 0). */
typedef struct sl_zmtp_part {
  const uint8_t *data;
  size_t size;
} sl_zmtp_part;

/*
** An event popped from a session. Every pointer in it is borrowed from the
** session (transfer none) and stays valid until the next sl_zmtp_feed,
** sl_zmtp_trim or sl_zmtp_free on that session (with borrowing on, a
** message's parts may point into the data fed: see sl_zmtp_set_borrow).
*/
typedef struct sl_zmtp_event {
  sl_zmtp_kind kind;
  const sl_zmtp_part *parts;   /* MESSAGE */
  size_t nparts;               /* MESSAGE: >= 1 */
  uint64_t size;               /* MESSAGE: sum of the part sizes */
  const char *text;            /* READY: peer Socket-Type ("" if none);
                                  IGNORED: why; PEER_ERROR: the reason;
                                  FATAL: what was wrong; else "" */
  uint8_t minor;               /* GREETING: peer's minor version */
  uint8_t as_server;           /* GREETING: peer's as-server byte */
  uint16_t ttl;                /* PING: peer's TTL in tenths of a second */
  int pong_queued;             /* PING: 0 if the output was too full */
} sl_zmtp_event;

typedef struct sl_zmtp_config {
  sl_zmtp_role role;
  uint64_t max_msg_size;       /* total part bytes; 0: DEFAULT_MAX_MSG */
  uint32_t max_parts;          /* parts per message; 0: DEFAULT_MAX_PARTS */
} sl_zmtp_config;

/* A session with our greeting and READY already queued as output; NULL if
** out of memory or the role is not PUSH or PULL. */
sl_zmtp *sl_zmtp_new(const sl_zmtp_config *cfg);
void sl_zmtp_free(sl_zmtp *z);

/*
** Consumes bytes from the peer until one event is ready or all len bytes
** are used; *consumed says how many (bytes after it must be fed again).
** Returns the kind of the event waiting to be popped, SL_ZMTP_NONE if
** none. While an event waits, feed uses no bytes and returns its kind
** again. A DEAD session uses no bytes and keeps returning its last event
** (FATAL or PEER_ERROR), which pop hands out again. Bytes are never
** retained: data is only read during the call. A message is only reported
** once all its parts have arrived and passed; nothing of a message that
** ends in an error is ever handed out.
*/
sl_zmtp_kind sl_zmtp_feed(sl_zmtp *z, const uint8_t *data, size_t len,
                          size_t *consumed);
/*
** Borrowing: a message whose parts are each at most max_part bytes and all
** lie in the data of one sl_zmtp_feed call is handed out pointing into
** that data, not copied (0, the default: every message is copied). The
** caller then keeps the data unchanged until it is done with the event.
** Nothing else changes: a message that is not whole when feed returns is
** copied before it does, and take_message returns NULL for a borrowed one.
*/
void sl_zmtp_set_borrow(sl_zmtp *z, size_t max_part);
/* Takes the waiting event into *ev: 1, or 0 (ev->kind NONE) if none. */
int sl_zmtp_pop(sl_zmtp *z, sl_zmtp_event *ev);

sl_zmtp_stage sl_zmtp_get_stage(const sl_zmtp *z);
sl_zmtp_role sl_zmtp_get_role(const sl_zmtp *z);

/* Bytes waiting to be sent, borrowed until the next call on z; 0 if none.
** output_done(z, n) says the first n of them were sent. */
size_t sl_zmtp_output(sl_zmtp *z, const uint8_t **data);
void sl_zmtp_output_done(sl_zmtp *z, size_t n);

/*
** Zero-copy receive of large messages. While a message frame's body is
** due, body_space makes room for up to `want` of its bytes in the message
** buffer and returns how many may be written at *dst (0 when no body is
** due); body_done(z, n) says n were written there and returns the event
** now waiting, like feed. After a MESSAGE event is popped, take_message
** hands over the malloc'd buffer its parts lie in, back to back (*cap
** bytes allocated; the caller frees it; the event's pointers point into
** it); the session starts a new buffer. NULL if the message had no bytes.
*/
size_t sl_zmtp_body_space(sl_zmtp *z, size_t want, uint8_t **dst);
sl_zmtp_kind sl_zmtp_body_done(sl_zmtp *z, size_t n);
uint8_t *sl_zmtp_take_message(sl_zmtp *z, size_t *cap);
/* After a take: hands the session a malloc'd buffer of cap bytes to use for
** the next message (it frees it with itself). 1, or 0 (the session already
** has one; the caller keeps buf). */
int sl_zmtp_give_buffer(sl_zmtp *z, uint8_t *buf, size_t cap);

/* Bytes of heap held for incoming data (message and part buffers). */
size_t sl_zmtp_buffered(const sl_zmtp *z);
/* Bytes received of a message not yet whole (0 between messages): what
** a peer makes us hold before it finishes a message. */
size_t sl_zmtp_partial(const sl_zmtp *z);
/* Frees those buffers unless a message is half-received or waiting to be
** popped (worth calling when the connection idles after a large message;
** the next message allocates again). */
void sl_zmtp_trim(sl_zmtp *z);

/* ---- encoders: pure functions, no session --------------------------- */

/* Our 64-byte greeting: ZMTP 3.1, NULL, as-server 0; returns 64. */
size_t sl_zmtp_greeting(uint8_t out[SL_ZMTP_GREETING_SIZE]);
/* Our READY command frame for role (only Socket-Type, as libzmq sends for
** PUSH and PULL); returns 28, or 0 for an unknown role. */
size_t sl_zmtp_ready(sl_zmtp_role role, uint8_t out[SL_ZMTP_READY_SIZE]);
/* The header of a message frame of size body bytes: 2 bytes (short form,
** size <= 255) or 9 (long form, size big-endian); more sets MORE. */
size_t sl_zmtp_frame_header(uint8_t out[SL_ZMTP_HEADER_MAX], uint64_t size,
                            int more);
/* Bytes an n-part message takes on the wire (n >= 1). */
uint64_t sl_zmtp_encoded_size(const sl_zmtp_part *parts, size_t n);
/* Writes an n-part message (MORE on all but the last part) into out and
** returns its size; writes nothing and returns 0 if n == 0 or it needs
** more than cap bytes. */
size_t sl_zmtp_encode(const sl_zmtp_part *parts, size_t n, uint8_t *out,
                      size_t cap);

/* A PING command frame (ZMTP 3.1) with ttl and up to 16 bytes of context
** (longer is cut); returns its size (at most 25). */
size_t sl_zmtp_ping(uint8_t out[25], uint16_t ttl, const uint8_t *ctx,
                    size_t ctx_len);

/* A short name for an event kind or a stage (static storage). */
const char *sl_zmtp_kind_str(sl_zmtp_kind kind);
const char *sl_zmtp_stage_str(sl_zmtp_stage stage);

#pragma GCC visibility pop

#endif
