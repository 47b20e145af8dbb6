/*
** sl_stream_writer: records frames to a file in Rogue's format
** (rogue.utilities.fileio.StreamWriter).
**
** A record is headerA (LE32: payload length + 4), headerB (LE32: channel
** << 24 | error << 16 | flags) and the payload; in raw mode only the
** payload. The writer itself is not a slave: frames reach it through its
** channels, one cached slave per channel number 0..255
** (sl_stream_writer_get_channel). Channel 0 records each frame's own
** channel; channel n records n.
**
**   open(name)        truncates or creates `name` (or `name.1` when a
**                     maximum size is set); resets sizes and frame counts
**   max size          a record that would take the file past it starts
**                     `name.2`, `name.3`, ... (also truncated); a record
**                     larger than the limit is logged and counted, not
**                     written
**   buffer size       records are staged in memory and flushed when the
**                     next one would overflow; larger ones go straight to
**                     the file (0 = unbuffered, the default)
**   skipped           frames with an empty payload, errored frames when
**                     drop errors is on, and anything while closed
**   write failure     the file is closed, logged ("fileio.StreamWriter")
**                     and counted in "errors"
**
** Ownership: the writer and each channel are sl_objects with their own
** count. The writer holds its channels; a channel holds the file state, so
** a channel still connected in a graph keeps recording after the writer's
** last reference is gone. The file is flushed and closed by close(), by
** stop() (sl_object_stop), or when the writer and all its channels are
** gone.
**
** Thread safety: every function may be called from any thread; one mutex
** per writer serialises records, so channels may be fed concurrently and
** each record lands whole.
*/
#ifndef STREAMLUA_STREAM_WRITER_H_INCLUDED_
#define STREAMLUA_STREAM_WRITER_H_INCLUDED_

#include <stdint.h>

#include "frame.h"
#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

typedef struct sl_stream_writer sl_stream_writer;

/* A closed writer (kind "StreamWriter"), refs = 1. NULL (err says why) if
** out of memory. */
sl_stream_writer *sl_stream_writer_new(sl_error *err);
/* The writer's object header (transfer none). */
sl_object *sl_stream_writer_object(sl_stream_writer *w);
/* The writer behind obj, or NULL if obj is not one (transfer none). */
sl_stream_writer *sl_stream_writer_from_object(sl_object *obj);

/* Closes any open file, then opens `name` (or `name.1`). SL_OK; SL_ENOMEM;
** or SL_ENOTFOUND when the OS refused, with its errno in *os_error (when
** os_error is not NULL). The writer stays closed on failure. */
int sl_stream_writer_open(sl_stream_writer *w, const char *name, int *os_error);
/* Flushes and closes; idempotent. */
void sl_stream_writer_close(sl_stream_writer *w);
int sl_stream_writer_is_open(sl_stream_writer *w);

void sl_stream_writer_set_raw(sl_stream_writer *w, int raw);
int sl_stream_writer_get_raw(sl_stream_writer *w);
/* Flushes what is staged first. SL_ENOMEM (old size kept) on failure. */
int sl_stream_writer_set_buffer_size(sl_stream_writer *w, uint32_t bytes);
/* 0 = unlimited. Takes effect from the next record. */
void sl_stream_writer_set_max_size(sl_stream_writer *w, uint64_t bytes);
void sl_stream_writer_set_drop_errors(sl_stream_writer *w, int drop);

typedef struct sl_stream_writer_channel sl_stream_writer_channel;

/* The slave for channel n (kind "StreamWriterChannel"), created on first
** use and the same object afterwards. (transfer full): the caller gets a
** new reference, dropped with
** sl_object_unref(sl_stream_writer_channel_object(ch)). NULL if out of
** memory. */
sl_stream_writer_channel *sl_stream_writer_get_channel(sl_stream_writer *w, uint8_t n);

/* Bytes of this open() session, over every file / in the current file;
** both include staged bytes not flushed yet. */
uint64_t sl_stream_writer_get_total_size(sl_stream_writer *w);
uint64_t sl_stream_writer_get_current_size(sl_stream_writer *w);
/* Bytes recorded in the last second, per second. */
double sl_stream_writer_get_bandwidth(sl_stream_writer *w);
/* Records written since open(). */
uint64_t sl_stream_writer_get_frame_count(sl_stream_writer *w);
/* Waits until the record count reaches `count`: 1 if it did, 0 if
** timeout_us passed first (0 = no limit, as Rogue). Blocks the caller. */
int sl_stream_writer_wait_frame_count(sl_stream_writer *w, uint64_t count,
                                      uint64_t timeout_us);

/* Records f as if it came through a channel whose file channel is
** `channel`. The caller holds f's lock. (transfer none) */
void sl_stream_writer_write_frame(sl_stream_writer *w, sl_frame *f,
                                  uint8_t channel);

/* Channels (from sl_stream_writer_get_channel). The frame count counts
** every frame the channel accepted, written or skipped (Rogue's rule). */
sl_object *sl_stream_writer_channel_object(sl_stream_writer_channel *ch); /* NULL-safe */
/* NULL if obj is not a channel */
sl_stream_writer_channel *sl_stream_writer_channel_from_object(sl_object *obj);
uint64_t sl_stream_writer_channel_get_frame_count(sl_stream_writer_channel *ch);
void sl_stream_writer_channel_set_frame_count(sl_stream_writer_channel *ch, uint64_t n);
/* As sl_stream_writer_wait_frame_count, for the channel's count. */
int sl_stream_writer_channel_wait_frame_count(sl_stream_writer_channel *ch,
                                              uint64_t count, uint64_t timeout_us);

#pragma GCC visibility pop

#endif
