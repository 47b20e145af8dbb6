/*
** What SrpV3 and SrpV0 share: the table of requests waiting for their
** response, the counters, the checks before a request goes, sending a
** request, and claiming the transaction a response answers.
**
** Internal to src/protocols. Every function may be called from any
** thread; the table has its own mutex.
*/
#ifndef STREAMLUA_SRP_INTERNAL_H_INCLUDED_
#define STREAMLUA_SRP_INTERNAL_H_INCLUDED_

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "streamlua/frame.h"
#include "streamlua/log.h"
#include "streamlua/master.h"
#include "streamlua/memory.h"
#include "streamlua/object.h"

/* A request in flight. */
typedef struct srp_pending {
  sl_transaction *t;             /* holds a reference */
  uint32_t expect[5];            /* what the response must echo */
  uint64_t sweep_us;             /* forgotten after this (monotonic) */
} srp_pending;

/* The state both nodes keep; each embeds one. */
typedef struct srp_base {
  sl_log *log;
  const char *name;              /* "SrpV3": prefixes transaction errors */
  pthread_mutex_t mutex;         /* guards table, n, cap and closed */
  srp_pending *table;
  size_t n, cap;
  int closed;
  atomic_uint_least64_t tx, rx, errors, drops, late, unknown, shorts, refused;
} srp_base;

/* The node both are: memory slave, stream master and slave, the base. */
typedef struct srp_node {
  sl_object obj;
  sl_mem_slave mslave;
  sl_master master;
  sl_slave slave;
  srp_base base;
} srp_node;

/* Sets up n (zeroed) as a node of class cls whose transactions and
** transaction errors are named `name`: SL_OK, or SL_ENOMEM with nothing
** left to release. */
int srp_node_init(srp_node *n, const sl_class *cls, const char *name,
                  const sl_mem_slave_ops *mops, const sl_slave_ops *sops,
                  uint32_t max_access);
/* Stops n and releases what srp_node_init set up (not n itself). */
void srp_node_fini(srp_node *n);

/* Fails everything in flight with "<name>: stopped"; so is every later
** request. */
void srp_base_stop(srp_base *b);
size_t srp_base_pending(srp_base *b);
size_t srp_base_counters(srp_base *b, sl_counter *out, size_t max);
void srp_bump(atomic_uint_least64_t *c);

/* Rogue's checks before anything is sent; 0, or -1 and the text. */
int srp_check(uint64_t address, uint32_t size, uint32_t max, char *err, size_t n);

/* One request frame: head, then data_len bytes of data, then trailer_len
** zero bytes. A post completes once sent; any other request is recorded
** under its id with `expect` before it goes. Failures (no frame, stopped)
** fail the transaction. */
typedef struct srp_request {
  const uint8_t *head;
  uint32_t head_len;
  const uint8_t *data;
  uint32_t data_len, trailer_len;
  int post;
  uint32_t expect[5];
} srp_request;
void srp_send(srp_base *b, sl_master *m, sl_transaction *t, const srp_request *r);

/* Refuses a transaction: counted, failed with the text. */
void srp_refuse(srp_base *b, sl_transaction *t, const char *text);

/* Counts a dropped response in `why` and logs the text as a warning. */
void srp_drop(srp_base *b, atomic_uint_least64_t *why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Why srp_claim found no transaction for a response. */
enum { SRP_CLAIMED, SRP_ERRORED, SRP_SHORT, SRP_UNKNOWN, SRP_LATE };

/* Takes the entry of the transaction a response answers (the frame f,
** locked by the caller; its id is the LE32 at tid_at, read once the frame
** is not errored and holds at least min bytes): SRP_CLAIMED and *out, or
** why not (neither counted nor logged). SRP_LATE still takes the entry
** (out->t holds the reference to drop). *tid is the id read, if any. */
int srp_claim(srp_base *b, const sl_frame *f, uint32_t min, uint32_t tid_at,
              uint32_t *tid, srp_pending *out);

/* Puts a claimed entry back (its transaction keeps waiting); the entry's
** reference passes to the table, or is dropped when it is stopped. */
void srp_unclaim(srp_base *b, srp_pending *p);

#endif
