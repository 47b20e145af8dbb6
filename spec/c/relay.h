/*
** relay.h: a lossy UDP relay for the link tests. One thread forwards
** datagrams both ways between a near port it binds on 127.0.0.1 (the near
** peer sends there; the relay answers whoever sent last) and a far port on
** 127.0.0.1. In each direction it drops and reorders a deterministic share
** of the datagrams (a fixed-seed generator per direction), and counts what
** it did. Taking the link down makes it swallow everything both ways, as
** if the far side had died; bringing it up again resumes forwarding.
**
**   test thread                         relay thread
**   -----------                         ------------
**   ts_relay_new(far, drop, reorder)    poll(near, far, wake): forward,
**   ts_relay_port / counts / set_down   drop or hold back one datagram and
**   ts_relay_set_far                    send it after the next one (or
**   ts_relay_free: wakes, joins         after 2 ms of quiet)
**
** Needs nothing but sockets and threads; every function may be called from
** any thread.
*/
#ifndef STREAMLUA_TEST_RELAY_H_INCLUDED_
#define STREAMLUA_TEST_RELAY_H_INCLUDED_

#include <stdint.h>

typedef struct ts_relay ts_relay;

enum { TS_RELAY_UP = 0, TS_RELAY_DOWN = 1 };   /* direction index: near -> far, far -> near */

typedef struct ts_relay_counts {
  uint64_t forwarded;   /* datagrams sent on (a reordered one included) */
  uint64_t dropped;     /* dropped on purpose */
  uint64_t reordered;   /* sent after a datagram that came later */
  uint64_t swallowed;   /* lost while the link was down */
} ts_relay_counts;

/* A running relay to 127.0.0.1:far_port; drop and reorder are in parts per
** thousand of each direction's datagrams, seed makes the pattern. NULL
** when a socket or the thread cannot be made. */
ts_relay *ts_relay_new(uint32_t far_port, unsigned drop_permille,
                       unsigned reorder_permille, uint32_t seed);

/* The near port (where the near peer sends). */
uint32_t ts_relay_port(ts_relay *r);

/* Where far-bound datagrams go from now on. */
void ts_relay_set_far(ts_relay *r, uint32_t far_port);

/* Changes the drop and reorder shares (parts per thousand). */
void ts_relay_set_loss(ts_relay *r, unsigned drop_permille,
                       unsigned reorder_permille);

/* down != 0: swallow everything both ways; 0: forward again. */
void ts_relay_set_down(ts_relay *r, int down);

/* What the relay did so far in direction dir (TS_RELAY_UP or _DOWN). */
ts_relay_counts ts_relay_counts_of(ts_relay *r, int dir);

/* Stops the thread, closes the sockets, frees r. NULL-safe. */
void ts_relay_free(ts_relay *r);

#endif
