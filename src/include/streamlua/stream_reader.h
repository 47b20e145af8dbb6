/*
** sl_stream_reader: replays a file written by sl_stream_writer (or by
** Rogue's StreamWriter) as frames (rogue.utilities.fileio.StreamReader).
**
** A stream master. open(name) opens the file and starts one thread that
** reads records and sends each as a frame: memory comes from the primary
** slave (sl_master_req_frame, zero-copy allowed); channel, error and flags
** come from headerB. A name ending in ".1" starts split-file mode: after
** `base.1` come `base.2`, `base.3`, ... until one fails to open.
**
**   headerA == 0              warning, the replay stops with an error
**   payload > max record      warning, the replay stops with an error (a
**                             regular file: the bytes it holds count)
**   header cut short          warning, the replay stops with an error
**   headerA <= 4              no payload: skipped, no frame
**   payload cut short         the frame gets error 0x1, is still sent, and
**                             the replay stops with an error
**
** Pipes and devices are polled, so a stop is seen while they are idle
** (opening a FIFO still waits for a writer, as open(2) does): a stop never
** waits for bytes that have not come. A record's frame is requested before
** its payload arrives, so on a pipe a header alone decides the size: the
** max record setting bounds it (in a regular file a record counts as the
** bytes the file holds of it).
**
** Each replay ends with one result (frames, bytes, files, error text),
** queued in the reader and announced through the notify hook; an Info
** line goes to logger "streamReader" (Rogue's name).
**
**   reader thread                      consumer (e.g. the Lua loop)
**   -------------                      ----------------------------
**   queues the result (at most         notify(arg) says "look": it runs
**     SL_STREAM_READER_RESULTS, the      on the reader thread, without a
**     oldest dropped first) in its       lock, and must not block
**     results mailbox (mailbox.h)      sl_stream_reader_take_result()
**   calls notify(arg) when that          until it returns 0 (or takes
**     mailbox was idle                   from the mailbox itself)
**   marks itself inactive
**
** The reader thread never holds a reference on the reader: destroying it
** stops and joins the thread. A sendFrame that blocks (a full mailbox)
** delays a stop until it returns; close, open and destroy wait with
** sl_wait_until (wait.h), so the caller's wait hook keeps serving Lua
** mailboxes meanwhile. Destroy waits at most one second, then leaves the
** thread to end by itself and free the reader.
**
** Thread safety: every function may be called from any thread except the
** reader's own thread (open, close, close_wait and destroy join it).
*/
#ifndef STREAMLUA_STREAM_READER_H_INCLUDED_
#define STREAMLUA_STREAM_READER_H_INCLUDED_

#include <stdint.h>

#include "mailbox.h"
#include "master.h"
#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

#define SL_STREAM_READER_RESULTS 16
#define SL_STREAM_READER_MAX_RECORD (64u << 20)   /* default, payload bytes */
#define SL_STREAM_READER_ERROR_MAX 256

typedef struct sl_stream_reader sl_stream_reader;

/* How one replay ended. error is "" when it reached the end cleanly and
** "stopped" when close() or stop() ended it early. */
typedef struct sl_stream_reader_result {
  uint64_t frames;       /* frames sent */
  uint64_t bytes;        /* payload bytes sent */
  uint32_t files;        /* files opened */
  char error[SL_STREAM_READER_ERROR_MAX];
} sl_stream_reader_result;

/* A closed reader (kind "StreamReader"), refs = 1. NULL if out of memory. */
sl_stream_reader *sl_stream_reader_new(sl_error *err);   /* NULL (err says why) */
sl_object *sl_stream_reader_object(sl_stream_reader *r);       /* (transfer none) */
sl_stream_reader *sl_stream_reader_from_object(sl_object *obj); /* NULL if not one */
sl_master *sl_stream_reader_master(sl_stream_reader *r);

/* Closes any running replay (as close()), opens `name` and starts the
** thread. SL_OK; SL_ENOMEM; or SL_ENOTFOUND when the file cannot be
** opened, with errno in *os_error (os_error may be NULL). */
int sl_stream_reader_open(sl_stream_reader *r, const char *name, int *os_error);
/* The largest record payload a replay accepts; takes effect at the next
** record. */
void sl_stream_reader_set_max_record(sl_stream_reader *r, uint32_t bytes);
uint32_t sl_stream_reader_get_max_record(sl_stream_reader *r);
/* Asks the thread to stop after the record it is on (does not wait). */
void sl_stream_reader_request_stop(sl_stream_reader *r);
/* Stops the replay now, joins the thread, closes the file. Idempotent. */
void sl_stream_reader_close(sl_stream_reader *r);
/* Waits for the replay to reach its end by itself, then joins and closes:
** 1, or 0 if timeout_us (0 = no limit) passed first (still running). */
int sl_stream_reader_close_wait(sl_stream_reader *r, uint64_t timeout_us);
/* Waits up to timeout_us for the thread to finish without joining it:
** 1 if it is not active. */
int sl_stream_reader_wait_inactive(sl_stream_reader *r, uint64_t timeout_us);

int sl_stream_reader_is_open(sl_stream_reader *r);    /* a file is open */
int sl_stream_reader_is_active(sl_stream_reader *r);  /* the thread runs */

/* notify(arg) is called on the reader thread after a result is queued
** while none was waiting (a consumer takes until none is left).
** Set it while no replay runs. release(arg), when not NULL, is called once
** notify will not be called with arg again: when the hook is replaced, or
** by the reader's destroy after its thread is joined (on whatever thread
** drops the last reference). */
void sl_stream_reader_set_notify(sl_stream_reader *r, void (*notify)(void *arg),
                                 void (*release)(void *arg), void *arg);
/* The hook's arg if the hook set is `notify`, else NULL. */
void *sl_stream_reader_notify_arg(sl_stream_reader *r, void (*notify)(void *arg));
/* Moves the oldest queued result into *out: 1, or 0 if none is queued. */
int sl_stream_reader_take_result(sl_stream_reader *r,
                                 sl_stream_reader_result *out);
/* The results mailbox (transfer none; freed with the reader, after the
** release hook ran). Its items are malloc'd sl_stream_reader_result; a
** consumer taking one frees it. */
sl_mailbox *sl_stream_reader_results(sl_stream_reader *r);

#pragma GCC visibility pop

#endif
