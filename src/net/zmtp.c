/*
** The ZMTP 3 codec: a resumable state machine that may be handed its
** input in any chunking. The greeting is checked field by field as its
** bytes arrive, so a peer speaking something else is refused as early as
** libzmq would refuse it. After the greeting every frame is read as
** flags -> size -> body. Message bodies are appended to one growing
** buffer; pointers to the parts are only taken once the message is whole,
** since the buffer may move. With borrowing on, a message whose parts all
** lie in the bytes of one feed is handed out pointing into them, with no
** copy; one that does not (a part split across feeds, or larger than the
** borrow limit) is copied into the buffer as soon as that shows, and at
** the latest before feed returns. Command bodies go to a fixed buffer, and the
** bytes of a command past SL_ZMTP_COMMAND_MAX are skipped, not stored.
*/
#include "streamlua/zmtp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/bytes.h"

#define OUT_MAX 1024              /* queued output (greeting, READY, PONGs) */
#define PONG_MAX (2 + 5 + SL_ZMTP_PING_CONTEXT_MAX)
#define FIRST_CAP 4096            /* first message buffer */

enum reader { RD_FLAGS, RD_SIZE, RD_BODY };

struct sl_zmtp {
  sl_zmtp_role role;
  sl_zmtp_stage stage;
  uint64_t max_msg;
  uint32_t max_parts;
  /* greeting */
  uint8_t greet[SL_ZMTP_GREETING_SIZE];
  size_t greet_len;
  /* the frame being read */
  enum reader rd;
  uint8_t flags;
  uint8_t size_buf[8];
  size_t size_len, size_need;
  uint64_t body_size, body_got;
  size_t cmd_kept;                 /* command bytes stored: min(size, MAX) */
  /* the message being assembled */
  uint8_t *msg;
  size_t msg_len, msg_cap;
  sl_zmtp_part *parts;             /* data set when the message is whole */
  uint32_t nparts, parts_cap;
  int msg_handed;                  /* reset the message on the next feed */
  size_t borrow_max;               /* largest part borrowed (0: none) */
  int borrowed;                    /* the parts so far point into the
                                      caller's bytes of this feed */
  /* the event waiting to be popped */
  sl_zmtp_event ev;
  int ev_pending;
  char text[192];
  char peer_type[8];
  /* queued output */
  uint8_t out[OUT_MAX];
  size_t out_len;
  uint8_t cmd[SL_ZMTP_COMMAND_MAX];
};

static const uint8_t empty_part[1];
static const char null_mechanism[20] = "NULL";

static const char *role_name(sl_zmtp_role role) {
  return role == SL_ZMTP_PUSH ? "PUSH" : "PULL";
}

/* Peer bytes go into texts for logs: keep them printable and short. */
static void copy_printable(char *dst, size_t cap, const uint8_t *src,
                           size_t n) {
  size_t i = 0;
  for (; i < n && i + 1 < cap; i++)
    dst[i] = (src[i] >= 0x20 && src[i] < 0x7F) ? (char)src[i] : '?';
  dst[i] = '\0';
}

static void post(sl_zmtp *z, sl_zmtp_kind kind, const char *text) {
  memset(&z->ev, 0, sizeof z->ev);
  z->ev.kind = kind;
  z->ev.text = text != NULL ? text : "";
  z->ev_pending = 1;
}

static void release_message(sl_zmtp *z) {
  free(z->msg);
  free(z->parts);
  z->msg = NULL;
  z->parts = NULL;
  z->msg_len = z->msg_cap = 0;
  z->nparts = z->parts_cap = 0;
  z->msg_handed = 0;
  z->borrowed = 0;
}

/*
** The session ends here: whatever part of a message had arrived is thrown
** away with its buffers, so nothing of it can ever be handed out.
*/
__attribute__((format(printf, 3, 4)))
static void die(sl_zmtp *z, sl_zmtp_kind kind, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(z->text, sizeof z->text, fmt, ap);
  va_end(ap);
  release_message(z);
  z->stage = SL_ZMTP_STAGE_DEAD;
  post(z, kind, z->text);
}

/* A command libzmq would drop: say so, and go on. */
static void ignore(sl_zmtp *z, const char *why, const char *name) {
  snprintf(z->text, sizeof z->text, "%s%s", why, name);
  post(z, SL_ZMTP_IGNORED, z->text);
}

static void queue_output(sl_zmtp *z, const uint8_t *p, size_t n) {
  memcpy(z->out + z->out_len, p, n);
  z->out_len += n;
}

sl_zmtp *sl_zmtp_new(const sl_zmtp_config *cfg) {
  if (cfg == NULL || (cfg->role != SL_ZMTP_PUSH && cfg->role != SL_ZMTP_PULL))
    return NULL;
  sl_zmtp *z = calloc(1, sizeof *z);
  if (z == NULL) return NULL;
  z->role = cfg->role;
  z->stage = SL_ZMTP_STAGE_GREETING;
  z->max_msg = cfg->max_msg_size != 0 ? cfg->max_msg_size
                                      : SL_ZMTP_DEFAULT_MAX_MSG;
  z->max_parts = cfg->max_parts != 0 ? cfg->max_parts
                                     : SL_ZMTP_DEFAULT_MAX_PARTS;
  z->rd = RD_FLAGS;
  /* RFC 23 lets a peer send its whole greeting at once, and libzmq holds
  ** back the end of its own until it has read our first 11 bytes: sending
  ** all of ours (and READY) first can never deadlock. */
  uint8_t buf[SL_ZMTP_GREETING_SIZE];
  queue_output(z, buf, sl_zmtp_greeting(buf));
  queue_output(z, buf, sl_zmtp_ready(z->role, buf));
  return z;
}

void sl_zmtp_free(sl_zmtp *z) {
  if (z == NULL) return;
  release_message(z);
  free(z);
}

/* ---- greeting -------------------------------------------------------- */

static void check_mechanism(sl_zmtp *z) {
  const uint8_t *m = z->greet + 12;
  if (memcmp(m, null_mechanism, sizeof null_mechanism) == 0) return;
  if (memcmp(m, "NULL", 4) == 0) {
    die(z, SL_ZMTP_FATAL, "malformed mechanism name (NULL must be padded "
        "with zero bytes)");
    return;
  }
  char name[21];
  size_t n = 0;
  while (n < 20 && m[n] != 0) n++;
  copy_printable(name, sizeof name, m, n);
  die(z, SL_ZMTP_FATAL, "peer uses mechanism \"%s\", not NULL", name);
}

/*
** Fields are checked when their byte arrives, and a step never runs past
** a checked field, so a ZMTP 1.0 peer or one with another mechanism is
** refused at the same byte whatever the chunking. Padding (1-8), the
** minor version and the as-server byte are not checked: libzmq accepts
** any value there. Nor is the filler.
*/
static size_t greeting_step(sl_zmtp *z, const uint8_t *p, size_t n) {
  static const size_t marks[] = {1, 10, 11, 32, SL_ZMTP_GREETING_SIZE};
  size_t before = z->greet_len;
  size_t next = SL_ZMTP_GREETING_SIZE;
  for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
    if (marks[i] > before) {
      next = marks[i];
      break;
    }
  size_t take = next - before;     /* stop at each checked field */
  if (take > n) take = n;
  memcpy(z->greet + before, p, take);
  size_t after = z->greet_len = before + take;
  if (after == 1 && z->greet[0] != 0xFF) {
    die(z, SL_ZMTP_FATAL, "bad greeting signature (byte 0 is 0x%02X, not "
        "0xFF)", z->greet[0]);
    return take;
  }
  if (after == 10 && (z->greet[9] & 0x01) == 0) {
    die(z, SL_ZMTP_FATAL, "bad greeting signature (byte 9 is 0x%02X: a "
        "ZMTP 1.0 peer)", z->greet[9]);
    return take;
  }
  if (after == 11 && z->greet[10] < 3) {
    die(z, SL_ZMTP_FATAL, "peer's major version is %u; ZMTP 3.0 or later "
        "is needed", z->greet[10]);
    return take;
  }
  if (after == 32) {
    check_mechanism(z);
    if (z->stage == SL_ZMTP_STAGE_DEAD) return take;
  }
  if (after == SL_ZMTP_GREETING_SIZE) {
    z->stage = SL_ZMTP_STAGE_HANDSHAKE;
    post(z, SL_ZMTP_GREETING, NULL);
    z->ev.minor = z->greet[11];
    z->ev.as_server = z->greet[32];
  }
  return take;
}

/* ---- commands -------------------------------------------------------- */

static int name_is(const uint8_t *name, size_t n, const char *want) {
  return n == strlen(want) && memcmp(name, want, n) == 0;
}

/*
** READY properties: 1-byte name length, name, 4-byte big-endian value
** length, value. Only the exact (case-sensitive) name "Socket-Type" is
** checked, as libzmq does; other properties are skipped. Running past the
** end of the command anywhere is fatal.
*/
static void parse_ready(sl_zmtp *z, const uint8_t *p, size_t n) {
  const char *partner = z->role == SL_ZMTP_PUSH ? "PULL" : "PUSH";
  z->peer_type[0] = '\0';
  while (n > 0) {
    size_t nlen = p[0];
    p++, n--;
    if (nlen == 0) goto out_empty_name;
    if (nlen > n) goto out_truncated;
    const uint8_t *name = p;
    p += nlen, n -= nlen;
    if (n < 4) goto out_truncated;
    uint64_t vlen = sl_load_be32(p);
    p += 4, n -= 4;
    if (vlen > n) goto out_truncated;
    if (name_is(name, nlen, "Socket-Type")) {
      if (!name_is(p, (size_t)vlen, partner)) {
        char got[33];
        copy_printable(got, sizeof got, p, (size_t)vlen);
        die(z, SL_ZMTP_FATAL, "incompatible socket type \"%s\" (we are %s)",
            got, role_name(z->role));
        return;
      }
      memcpy(z->peer_type, partner, 5);
    }
    p += vlen, n -= (size_t)vlen;
  }
  z->stage = SL_ZMTP_STAGE_OPEN;
  post(z, SL_ZMTP_READY, z->peer_type);
  return;

out_empty_name:
  die(z, SL_ZMTP_FATAL, "malformed READY: a property with an empty name");
  return;
out_truncated:
  die(z, SL_ZMTP_FATAL, "malformed READY: a property runs past the end");
}

static void on_error_command(sl_zmtp *z, const uint8_t *p, size_t n) {
  if (n < 1 || p[0] > n - 1) {
    die(z, SL_ZMTP_FATAL, "malformed ERROR command");
    return;
  }
  char reason[160];
  copy_printable(reason, sizeof reason, p + 1, p[0]);
  die(z, SL_ZMTP_PEER_ERROR, "%s", reason);
}

/* A PONG carries the PING's context back, cut to 16 bytes as libzmq does. */
static void on_ping(sl_zmtp *z, const uint8_t *p, size_t n) {
  if (n < 2) {
    ignore(z, "malformed PING (no TTL)", "");
    return;
  }
  uint16_t ttl = sl_load_be16(p);
  size_t clen = n - 2;
  if (clen > SL_ZMTP_PING_CONTEXT_MAX) clen = SL_ZMTP_PING_CONTEXT_MAX;
  int queued = 0;
  if (z->out_len + PONG_MAX <= OUT_MAX) {
    uint8_t pong[PONG_MAX] = {SL_ZMTP_FLAG_COMMAND, (uint8_t)(5 + clen),
                              4, 'P', 'O', 'N', 'G'};
    memcpy(pong + 7, p + 2, clen);
    queue_output(z, pong, 7 + clen);
    queued = 1;
  }
  post(z, SL_ZMTP_PING, NULL);
  z->ev.ttl = ttl;
  z->ev.pong_queued = queued;
}

/*
** Before READY only READY and ERROR may come; anything else, malformed or
** not, ends the session (libzmq: ZMTP_UNEXPECTED_COMMAND). Afterwards
** libzmq acts on PING and PONG and drops every other command, malformed
** ones and a second READY included. ERROR is fatal in both stages: a peer
** sends it just before it closes.
*/
static void on_command(sl_zmtp *z) {
  const uint8_t *b = z->cmd;
  size_t n = z->cmd_kept;
  int handshake = z->stage == SL_ZMTP_STAGE_HANDSHAKE;
  if (n < 1 || b[0] > n - 1) {
    if (handshake)
      die(z, SL_ZMTP_FATAL, "malformed command before READY");
    else
      ignore(z, "malformed command", "");
    return;
  }
  const uint8_t *name = b + 1;
  size_t nlen = b[0];
  const uint8_t *rest = name + nlen;
  size_t rlen = n - 1 - nlen;
  char shown[40];
  copy_printable(shown, sizeof shown, name, nlen);
  if (name_is(name, nlen, "ERROR")) {
    on_error_command(z, rest, rlen);
  } else if (handshake) {
    if (name_is(name, nlen, "READY"))
      parse_ready(z, rest, rlen);
    else
      die(z, SL_ZMTP_FATAL, "unexpected command %s before READY", shown);
  } else if (name_is(name, nlen, "PING")) {
    on_ping(z, rest, rlen);
  } else if (name_is(name, nlen, "PONG")) {
    post(z, SL_ZMTP_PONG, NULL);
  } else if (name_is(name, nlen, "READY")) {
    ignore(z, "second READY", "");
  } else {
    ignore(z, "unknown command ", shown);
  }
}

/* ---- messages -------------------------------------------------------- */

/*
** Grows by doubling as bytes arrive, never to the size a header merely
** announces: a peer that claims a large frame and sends a few bytes costs
** a few bytes of memory.
*/
static int reserve(sl_zmtp *z, size_t need) {
  if (need <= z->msg_cap) return 1;
  size_t cap = z->msg_cap != 0 ? z->msg_cap : FIRST_CAP;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  if (cap > z->max_msg && need <= z->max_msg) cap = (size_t)z->max_msg;
  uint8_t *m = realloc(z->msg, cap);
  if (m == NULL) return 0;
  z->msg = m;
  z->msg_cap = cap;
  return 1;
}

static int add_part(sl_zmtp *z) {
  if (z->nparts == z->parts_cap) {
    uint32_t cap = z->parts_cap != 0 ? z->parts_cap * 2 : 4;
    if (cap > z->max_parts) cap = z->max_parts;
    sl_zmtp_part *pt = realloc(z->parts, cap * sizeof *pt);
    if (pt == NULL) return 0;
    z->parts = pt;
    z->parts_cap = cap;
  }
  if (z->nparts == 0) z->borrowed = z->borrow_max > 0;
  z->parts[z->nparts].data = empty_part;
  z->parts[z->nparts++].size = (size_t)z->body_size;
  return 1;
}

static int is_command(const sl_zmtp *z) {
  return (z->flags & SL_ZMTP_FLAG_COMMAND) != 0;
}

/* The borrowed parts so far are copied into msg, back to back (msg_len
** counts them already); from here on the message is copied. 0 if out of
** memory. */
static int unborrow(sl_zmtp *z) {
  z->borrowed = 0;
  if (z->msg_len == 0) return 1;
  if (!reserve(z, z->msg_len)) return 0;
  size_t off = 0;
  for (uint32_t i = 0; i < z->nparts; i++) {
    size_t k = z->parts[i].size;
    if (i == z->nparts - 1 && z->rd == RD_BODY && !is_command(z))
      k = (size_t)z->body_got;                 /* the part being read */
    if (k > 0) memcpy(z->msg + off, z->parts[i].data, k);
    off += k;
  }
  return 1;
}

/* Parts lie back to back in msg, so their sizes give their places
** (borrowed parts already point where they lie). */
static void deliver_message(sl_zmtp *z) {
  size_t off = 0;
  for (uint32_t i = 0; i < z->nparts && !z->borrowed; i++) {
    z->parts[i].data = z->msg != NULL ? z->msg + off : empty_part;
    off += z->parts[i].size;
  }
  post(z, SL_ZMTP_MESSAGE, NULL);
  z->ev.parts = z->parts;
  z->ev.nparts = z->nparts;
  z->ev.size = z->msg_len;
  z->msg_handed = 1;
}

/* ---- frames ---------------------------------------------------------- */

static void frame_done(sl_zmtp *z) {
  z->rd = RD_FLAGS;
  if (is_command(z))
    on_command(z);
  else if ((z->flags & SL_ZMTP_FLAG_MORE) == 0)
    deliver_message(z);
}

/*
** Limits are applied to the announced size, before a byte of the body is
** stored. Commands before READY must fit the command buffer whole (a READY
** is tens of bytes); later ones are cut to it, which loses nothing: PING
** context, ERROR reason and command names all lie in the first 262 bytes.
*/
static void header_done(sl_zmtp *z) {
  z->body_size = z->size_need == 8 ? sl_load_be64(z->size_buf)
                                     : z->size_buf[0];
  z->body_got = 0;
  if (is_command(z)) {
    if (z->stage == SL_ZMTP_STAGE_HANDSHAKE &&
        z->body_size > SL_ZMTP_COMMAND_MAX) {
      die(z, SL_ZMTP_FATAL, "command of %llu bytes before READY",
          (unsigned long long)z->body_size);
      return;
    }
    z->cmd_kept = z->body_size < SL_ZMTP_COMMAND_MAX
                      ? (size_t)z->body_size : SL_ZMTP_COMMAND_MAX;
  } else {
    if (z->nparts >= z->max_parts) {
      die(z, SL_ZMTP_FATAL, "message of more than %u parts",
          (unsigned)z->max_parts);
      return;
    }
    if (z->body_size > z->max_msg - z->msg_len) {
      die(z, SL_ZMTP_FATAL, "message larger than the limit of %llu bytes",
          (unsigned long long)z->max_msg);
      return;
    }
    if (!add_part(z)) {
      die(z, SL_ZMTP_FATAL, "out of memory");
      return;
    }
  }
  z->rd = RD_BODY;
  if (z->body_size == 0) frame_done(z);
}

static size_t body_step(sl_zmtp *z, const uint8_t *p, size_t n) {
  uint64_t left = z->body_size - z->body_got;
  size_t take = left < n ? (size_t)left : n;
  if (is_command(z)) {
    if (z->body_got < z->cmd_kept) {
      size_t keep = z->cmd_kept - (size_t)z->body_got;
      memcpy(z->cmd + z->body_got, p, keep < take ? keep : take);
    }
  } else if (z->borrowed && take == z->body_size && take <= z->borrow_max) {
    z->parts[z->nparts - 1].data = p;        /* the whole body is here */
    z->msg_len += take;
  } else {
    if ((z->borrowed && !unborrow(z)) || !reserve(z, z->msg_len + take)) {
      die(z, SL_ZMTP_FATAL, "out of memory");
      return take;
    }
    memcpy(z->msg + z->msg_len, p, take);
    z->msg_len += take;
  }
  z->body_got += take;
  if (z->body_got == z->body_size) frame_done(z);
  return take;
}

/*
** Reserved flag bits (7-3) are dropped unread, as libzmq does; MORE on a
** command is ignored. A message frame before READY is refused from its
** flags byte alone.
*/
static size_t frame_step(sl_zmtp *z, const uint8_t *p, size_t n) {
  switch (z->rd) {
  case RD_FLAGS:
    z->flags = p[0] & (SL_ZMTP_FLAG_MORE | SL_ZMTP_FLAG_LONG |
                       SL_ZMTP_FLAG_COMMAND);
    if (!is_command(z) && z->stage == SL_ZMTP_STAGE_HANDSHAKE) {
      die(z, SL_ZMTP_FATAL, "message frame before READY");
      return 1;
    }
    z->size_need = (z->flags & SL_ZMTP_FLAG_LONG) ? 8 : 1;
    z->size_len = 0;
    z->rd = RD_SIZE;
    return 1;
  case RD_SIZE: {
    size_t take = z->size_need - z->size_len;
    if (take > n) take = n;
    memcpy(z->size_buf + z->size_len, p, take);
    z->size_len += take;
    if (z->size_len == z->size_need) header_done(z);
    return take;
  }
  case RD_BODY:
    return body_step(z, p, n);
  }
  return n;
}

/*
** The common case in one step per frame: message frames lying whole in
** the bytes at hand, each borrowed (see body_step), their header and body
** taken at once with the state machine's checks and results. It stops at
** a message's end (its event is posted) and leaves anything else to the
** state machine: a command, a frame cut short, a body past the borrow
** limit, a message already copied, a limit broken (there it dies with the
** reason). Returns the bytes used; 0 when the next frame is not of this
** kind.
*/
static size_t whole_frames(sl_zmtp *z, const uint8_t *p, size_t n) {
  /* Read once: nothing below changes them (a message already copied
  ** stays copied; the first part borrowed makes the message borrowed). */
  const size_t bmax = z->borrow_max;
  const uint32_t max_parts = z->max_parts;
  const uint64_t max_msg = z->max_msg;
  if (bmax == 0 || (z->nparts > 0 && !z->borrowed)) return 0;
  size_t at = 0;
  while (n - at >= 2) {
    uint8_t fl = p[at];
    if (fl & SL_ZMTP_FLAG_COMMAND) break;
    size_t hl = 2;
    uint64_t size = p[at + 1];
    if (fl & SL_ZMTP_FLAG_LONG) {
      if (n - at < 9) break;
      hl = 9;
      size = sl_load_be64(p + at + 1);
    }
    uint32_t np = z->nparts;
    if (size > bmax || size > n - at - hl || np >= max_parts || size > max_msg - z->msg_len)
      break;
    z->flags = fl & (SL_ZMTP_FLAG_MORE | SL_ZMTP_FLAG_LONG);
    z->body_size = z->body_got = size;
    if (np == z->parts_cap) {               /* rare: add_part grows the list */
      if (!add_part(z)) break;
    } else {
      if (np == 0) z->borrowed = 1;
      z->parts[np].size = (size_t)size;
      z->nparts = np + 1;
    }
    z->parts[np].data = size > 0 ? p + at + hl : empty_part;
    z->msg_len += (size_t)size;
    at += hl + (size_t)size;
    if ((fl & SL_ZMTP_FLAG_MORE) == 0) {
      deliver_message(z);
      break;
    }
  }
  return at;
}

sl_zmtp_kind sl_zmtp_feed(sl_zmtp *z, const uint8_t *data, size_t len,
                          size_t *consumed) {
  size_t used = 0;
  if (z->ev_pending) goto out;
  if (z->stage == SL_ZMTP_STAGE_DEAD) {
    /* Say again why it died (the text is still in z->text). */
    z->ev_pending = 1;
    goto out;
  }
  if (z->msg_handed) {
    z->msg_len = 0;
    z->nparts = 0;
    z->msg_handed = 0;
    z->borrowed = 0;
  }
  while (used < len && !z->ev_pending) {
    if (z->stage == SL_ZMTP_STAGE_OPEN && z->rd == RD_FLAGS) {
      size_t k = whole_frames(z, data + used, len - used);
      used += k;
      if (k > 0) continue;
    }
    if (z->stage == SL_ZMTP_STAGE_GREETING)
      used += greeting_step(z, data + used, len - used);
    else
      used += frame_step(z, data + used, len - used);
  }
  /* Nothing half-received may point into bytes the caller reuses. */
  if (z->borrowed && !z->msg_handed && !unborrow(z))
    die(z, SL_ZMTP_FATAL, "out of memory");
out:
  if (consumed != NULL) *consumed = used;
  return z->ev_pending ? z->ev.kind : SL_ZMTP_NONE;
}

/*
** Direct body reads: a large message body can go from the socket straight
** into the message buffer, without passing through the caller's buffer.
** Room is made for at most `want` bytes (a peer that announces a large
** body and sends little costs at most that much).
*/
size_t sl_zmtp_body_space(sl_zmtp *z, size_t want, uint8_t **dst) {
  if (z->ev_pending || z->stage != SL_ZMTP_STAGE_OPEN || z->rd != RD_BODY ||
      is_command(z))
    return 0;
  if (z->msg_handed) {
    z->msg_len = 0;
    z->nparts = 0;
    z->msg_handed = 0;
    z->borrowed = 0;
  }
  uint64_t left = z->body_size - z->body_got;
  size_t k = left < want ? (size_t)left : want;
  if (k == 0 || !reserve(z, z->msg_len + k)) return 0;
  *dst = z->msg + z->msg_len;
  return k;
}

sl_zmtp_kind sl_zmtp_body_done(sl_zmtp *z, size_t n) {
  z->msg_len += n;
  z->body_got += n;
  if (z->body_got == z->body_size) frame_done(z);
  return z->ev_pending ? z->ev.kind : SL_ZMTP_NONE;
}

int sl_zmtp_give_buffer(sl_zmtp *z, uint8_t *buf, size_t cap) {
  if (z->msg != NULL) return 0;
  z->msg = buf;
  z->msg_cap = cap;
  return 1;
}

uint8_t *sl_zmtp_take_message(sl_zmtp *z, size_t *cap) {
  if (!z->msg_handed || z->borrowed || z->msg == NULL) return NULL;
  uint8_t *m = z->msg;
  *cap = z->msg_cap;
  z->msg = NULL;
  z->msg_cap = 0;
  return m;
}

int sl_zmtp_pop(sl_zmtp *z, sl_zmtp_event *ev) {
  if (!z->ev_pending) {
    memset(ev, 0, sizeof *ev);
    ev->kind = SL_ZMTP_NONE;
    ev->text = "";
    return 0;
  }
  *ev = z->ev;
  z->ev_pending = 0;
  return 1;
}

void sl_zmtp_set_borrow(sl_zmtp *z, size_t max_part) { z->borrow_max = max_part; }

sl_zmtp_stage sl_zmtp_get_stage(const sl_zmtp *z) { return z->stage; }

sl_zmtp_role sl_zmtp_get_role(const sl_zmtp *z) { return z->role; }

size_t sl_zmtp_output(sl_zmtp *z, const uint8_t **data) {
  *data = z->out;
  return z->out_len;
}

/* The rest moves to the front (at most 1 KiB), so room is never lost. */
void sl_zmtp_output_done(sl_zmtp *z, size_t n) {
  size_t left = z->out_len - (n < z->out_len ? n : z->out_len);
  memmove(z->out, z->out + z->out_len - left, left);
  z->out_len = left;
}

size_t sl_zmtp_buffered(const sl_zmtp *z) {
  return z->msg_cap + z->parts_cap * sizeof *z->parts;
}

size_t sl_zmtp_partial(const sl_zmtp *z) {
  return z->nparts == 0 || z->msg_handed ? 0 : z->msg_len;
}

void sl_zmtp_trim(sl_zmtp *z) {
  if (z->ev_pending && z->ev.kind == SL_ZMTP_MESSAGE) return;
  if (z->nparts > 0 && !z->msg_handed) return;   /* half a message */
  release_message(z);
}

/* ---- encoders -------------------------------------------------------- */

size_t sl_zmtp_greeting(uint8_t out[SL_ZMTP_GREETING_SIZE]) {
  memset(out, 0, SL_ZMTP_GREETING_SIZE);
  out[0] = 0xFF;
  out[8] = 0x01;       /* padding, as libzmq fills it: routing-id size + 1 */
  out[9] = 0x7F;
  out[10] = 3;         /* ZMTP 3.1: we answer PINGs */
  out[11] = 1;
  memcpy(out + 12, null_mechanism, sizeof null_mechanism);
  return SL_ZMTP_GREETING_SIZE;
}

size_t sl_zmtp_ready(sl_zmtp_role role, uint8_t out[SL_ZMTP_READY_SIZE]) {
  if (role != SL_ZMTP_PUSH && role != SL_ZMTP_PULL) return 0;
  static const uint8_t head[] = {
    SL_ZMTP_FLAG_COMMAND, SL_ZMTP_READY_SIZE - 2,
    5, 'R', 'E', 'A', 'D', 'Y',
    11, 'S', 'o', 'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e',
    0, 0, 0, 4};
  memcpy(out, head, sizeof head);
  memcpy(out + sizeof head, role_name(role), 4);
  return SL_ZMTP_READY_SIZE;
}

size_t sl_zmtp_frame_header(uint8_t out[SL_ZMTP_HEADER_MAX], uint64_t size,
                            int more) {
  uint8_t flags = more ? SL_ZMTP_FLAG_MORE : 0;
  if (size <= SL_ZMTP_SHORT_MAX) {
    out[0] = flags;
    out[1] = (uint8_t)size;
    return 2;
  }
  out[0] = flags | SL_ZMTP_FLAG_LONG;
  sl_store_be64(out + 1, size);
  return SL_ZMTP_HEADER_MAX;
}

uint64_t sl_zmtp_encoded_size(const sl_zmtp_part *parts, size_t n) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t hdr = parts[i].size <= SL_ZMTP_SHORT_MAX ? 2 : 9;
    if (parts[i].size > UINT64_MAX - hdr - total) return UINT64_MAX;
    total += hdr + parts[i].size;
  }
  return total;
}

size_t sl_zmtp_encode(const sl_zmtp_part *parts, size_t n, uint8_t *out,
                      size_t cap) {
  uint64_t need = sl_zmtp_encoded_size(parts, n);
  if (n == 0 || need > cap) return 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    at += sl_zmtp_frame_header(out + at, parts[i].size, i + 1 < n);
    if (parts[i].size > 0) memcpy(out + at, parts[i].data, parts[i].size);
    at += parts[i].size;
  }
  return at;
}

size_t sl_zmtp_ping(uint8_t out[25], uint16_t ttl, const uint8_t *ctx,
                    size_t ctx_len) {
  if (ctx_len > SL_ZMTP_PING_CONTEXT_MAX) ctx_len = SL_ZMTP_PING_CONTEXT_MAX;
  out[0] = SL_ZMTP_FLAG_COMMAND;
  out[1] = (uint8_t)(7 + ctx_len);
  memcpy(out + 2, "\x04PING", 5);
  sl_store_be16(out + 7, ttl);
  if (ctx_len > 0) memcpy(out + 9, ctx, ctx_len);
  return 9 + ctx_len;
}

const char *sl_zmtp_kind_str(sl_zmtp_kind kind) {
  static const char *const names[] = {
    "none", "greeting", "ready", "message", "ping", "pong", "ignored",
    "peer error", "fatal"};
  unsigned k = (unsigned)kind;
  return k < sizeof names / sizeof names[0] ? names[k] : "?";
}

const char *sl_zmtp_stage_str(sl_zmtp_stage stage) {
  static const char *const names[] = {"greeting", "handshake", "open",
                                      "dead"};
  unsigned k = (unsigned)stage;
  return k < sizeof names / sizeof names[0] ? names[k] : "?";
}
