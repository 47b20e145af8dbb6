/*
** The packetizer: frames of up to 256 destinations over one transport
** stream, cut into segments no larger than the transport's buffers, as
** Rogue's packetizer Core (v1) and CoreV2 (v2) and SLAC firmware speak it.
**
**   application(dest) ──frames──▶ ┐                 ┌──segments──▶ transport
**   (master+slave, 0..255)        │  Core / CoreV2  │  (master+slave)
**   application(dest) ◀──frames── ┘                 └◀──segments── transport
**
** v1 segment: 8-byte header (version 0, 12-bit frame number, 24-bit
** segment number, dest, tId, tUserFirst), payload, 1-byte tail (EOF,
** tUserLast & 0x7F). One reassembly slot for all destinations.
** v2 segment: 8-byte header (version 2, CRC mode, tUserFirst, dest, tId,
** 16-bit segment number, SOF), payload padded to 8 bytes, 8-byte tail
** (tUserLast, EOF, last byte count, CRC-32 most significant byte first,
** chained over the frame's segments). One reassembly slot per dest.
**
** Sending (application slave, in the sender's thread): a frame goes out
** as one segment per non-empty buffer; the segments of one frame are
** never interleaved with another's. A frame made by the application's
** reqFrame (buffers from the transport, head and tail room reserved) is
** sent without copying and is left empty, as Rogue leaves it; any other
** frame (another pool's, or shared: refcount > 1) is copied into
** transport buffers first. Frames with an error are not sent. The
** segment size is the transport's: reqFrame asks the transport for
** buffers and keeps each buffer's capacity less header and tail, rounded
** down to a multiple of 8.
**
** Receiving (transport slave, in the caller's thread): segments are
** checked and reassembled; a complete frame goes to application(dest) in
** the same thread (channel 0, firstUser/lastUser from the segments, error
** 0x80 with enSsi when lastUser bit 0 is set); frames for a dest whose
** application was never made are discarded. Every bad segment is dropped,
** counted (getDropCount) and logged on "packetizer.Controller" with the
** reason; a damaged frame is never delivered. Bytes held in unfinished
** frames are bounded (sl_packetizer_set_max_pending): a frame that would
** pass the bound is dropped and counted.
**
** Ownership: the Core, its transport and its applications are reference
** counted sl_objects; an edge keeps its Core alive, and the Core keeps
** every edge it made until it goes, so application(dest) always returns
** the same node for a dest. Thread safety: every function may be called
** from any thread.
*/
#ifndef STREAMLUA_PACKETIZER_H_INCLUDED_
#define STREAMLUA_PACKETIZER_H_INCLUDED_

#include <stddef.h>
#include <stdint.h>

#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

#define SL_PACK_V1_HEADER 8u
#define SL_PACK_V1_TAIL 1u
#define SL_PACK_V2_HEADER 8u
#define SL_PACK_V2_TAIL 8u
#define SL_PACK_DESTS 256u
/* Default bound on the bytes of all unfinished received frames. */
#define SL_PACK_MAX_PENDING_DEFAULT (64u << 20)

typedef struct sl_packetizer sl_packetizer;

/* Core(enSsi) (version 1, kind "packetizer.Core") or CoreV2(enIbCrc,
** enObCrc, enSsi) (version 2, kind "packetizer.CoreV2"); the CRC flags
** are ignored for version 1. enIbCrc: check received CRCs; enObCrc: send
** CRC mode 2 with the CRC (else mode 0, CRC 0); enSsi: OR SOF (0x02) into
** tUserFirst on send, error 0x80 on receive when lastUser bit 0 is set.
** refs = 1; NULL (err says why) for a version other than 1 or 2 or when
** out of memory. */
sl_packetizer *sl_packetizer_new(int version, int en_ib_crc, int en_ob_crc,
                                 int en_ssi, sl_error *err);
sl_object *sl_packetizer_object(sl_packetizer *p);        /* (transfer none); NULL-safe */
sl_packetizer *sl_packetizer_from_object(sl_object *obj); /* NULL if not a packetizer */

/* The lower edge (kind "packetizer.Transport"): stream master (segments
** out) and slave (segments in). (transfer full): a new reference. */
sl_object *sl_packetizer_transport(sl_packetizer *p);
/* The upper edge of dest (kind "packetizer.Application"): stream master
** (frames in from the far side) and slave (frames to send). Made on the
** first call, the same node afterwards. (transfer full); NULL (err says
** why) when dest > 255 or out of memory. */
sl_object *sl_packetizer_application(sl_packetizer *p, uint32_t dest,
                                     sl_error *err);

/* 1 or 2. */
int sl_packetizer_version(sl_packetizer *p);
/* Received segments dropped so far (Rogue's getDropCount). */
uint64_t sl_packetizer_drop_count(sl_packetizer *p);

/*
** Forgets every unfinished received frame, counting each as a drop with a
** warning: the transport below was reset (an RSSI link reopened), so no
** segment of those frames will come and the next segment of each dest
** starts a frame. Returns how many frames were dropped.
*/
size_t sl_packetizer_reset(sl_packetizer *p);

/* The bound on bytes held in unfinished received frames, all dests
** together (default SL_PACK_MAX_PENDING_DEFAULT; at least 1). */
void sl_packetizer_set_max_pending(sl_packetizer *p, uint64_t bytes);
uint64_t sl_packetizer_get_max_pending(sl_packetizer *p);

#pragma GCC visibility pop

#endif
