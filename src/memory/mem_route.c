/*
** The memory TcpServer's routing and back-pressure (mem_internal.h).
**
** Rogue's wire protocol names no client: requests come in on port P,
** responses go out on P+1, and nothing in a message says which P+1
** connection belongs to the client that sent it. So the server pairs the
** connections itself: each connection accepted on one port is the mate of
** the oldest unpaired connection on the other port from the same peer
** address, and the response to a request goes only to the mate of the
** connection it came in on (or, if that one has gone, to the mate it had
** when the request came). A client that connects both sockets at once,
** as Rogue's and ours do, gets its own responses; a process on another
** host never sees them. Two clients on one host that connect at the same
** instant may be paired crosswise; that is the limit of what the wire
** allows.
**
** Reading requests stops (TCP back-pressure, nothing dropped) while the
** queue holds max_requests requests or max_request_bytes of data (written,
** or to be read back), or while the mate of the connection holds
** max_response_bytes of responses its peer has not read.
*/
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "mem_internal.h"

/* The oldest live connection on the other side from c's host, unpaired. */
static mconn *free_mate_nolock_(mb *b, const mconn *c) {
  mconn *best = NULL;
  for (sl_zconn *z = b->zb.conns; z != NULL; z = z->next) {   /* newest first */
    mconn *o = (mconn *)z;
    if (o != c && !z->dead && z->push != c->zc.push && o->mate == NULL &&
        o->host.s_addr == c->host.s_addr)
      best = o;
  }
  return best;
}

static void pair_nolock_(mb *b, mconn *c) {
  mconn *m = free_mate_nolock_(b, c);
  if (m == NULL) return;
  c->mate = m;
  m->mate = c;
}

void mb_route_add_nolock(mb *b, mconn *c) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (getpeername(c->zc.fd, (struct sockaddr *)&sa, &len) == 0) c->host = sa.sin_addr;
  c->serial = ++b->serial_next;
  pair_nolock_(b, c);
}

void mb_route_remove_nolock(mb *b, mconn *c) {
  mconn *m = c->mate;
  c->mate = NULL;
  if (m != NULL) {
    m->mate = NULL;
    pair_nolock_(b, m);
  }
  if (b->any_paused) mb_backlog_resume_nolock(b);
}

static mconn *live_push_nolock_(mconn *c) {
  return c != NULL && c->zc.push && c->zc.ready && !c->zc.dead ? c : NULL;
}

mconn *mb_route_nolock(mb *b, const req *r) {
  mconn *by_to = NULL;
  for (sl_zconn *z = b->zb.conns; z != NULL; z = z->next) {
    mconn *c = (mconn *)z;
    if (c->serial == r->from && !z->push && live_push_nolock_(c->mate)) return c->mate;
    if (c->serial == r->to) by_to = live_push_nolock_(c);
  }
  return by_to;
}

static int backlogged_nolock_(mb *b, const mconn *c) {
  return b->rq_count >= atomic_load(&b->max_requests) ||
         b->rq_bytes >= atomic_load(&b->max_request_bytes) ||
         (c->mate != NULL && mb_queued(c->mate) >= atomic_load(&b->max_response_bytes));
}

void mb_backlog_check_nolock(mb *b, mconn *c) {
  if (c->zc.paused || c->zc.dead || !backlogged_nolock_(b, c)) return;
  sl_zconn_pause_nolock(&c->zc);
  b->any_paused = 1;
  if (c->mate != NULL && mb_queued(c->mate) >= atomic_load(&b->max_response_bytes))
    sl_pair_note(&b->zb.pair, SL_NOTE_BACKLOG, SL_LOG_WARNING,
                 "reading requests paused: the client holds %zu bytes of "
                 "responses unread on port %u", mb_queued(c->mate),
                 (unsigned)b->zb.pair.port + 1);
  else
    sl_pair_note(&b->zb.pair, SL_NOTE_BACKLOG, SL_LOG_INFO,
                 "reading requests paused: %u requests (%llu bytes) wait for "
                 "the slave", (unsigned)b->rq_count, (unsigned long long)b->rq_bytes);
}

void mb_backlog_resume_nolock(mb *b) {
  int still = 0;
  for (sl_zconn *z = b->zb.conns; z != NULL; z = z->next) {
    if (!z->paused || z->dead) continue;
    if (backlogged_nolock_(b, (mconn *)z)) {
      still = 1;
      continue;
    }
    sl_zconn_resume_nolock(z);
  }
  b->any_paused = still;
}

void mb_resume_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mb *b = arg;
  pthread_mutex_lock(&b->zb.mutex);
  if (!b->zb.stopping && b->any_paused) mb_backlog_resume_nolock(b);
  pthread_mutex_unlock(&b->zb.mutex);
}
