/*
** The register bus: Rogue's memory interface (rogue.interfaces.memory).
**
** A transaction asks a slave to read or write `size` bytes at `address`.
** A master makes one, hands it to its one downstream slave and waits; a
** slave completes it, now or later, from any thread, with done() or
** error(). A Hub is both: it adds its offset and splits a transaction
** into parts the slave below can take. Emulate is a sparse memory.
**
** Ownership: a transaction is reference counted (atomic); whoever holds a
** reference may use it from any thread. Its data buffer belongs to the
** transaction (a part of a split points into its parent's buffer and
** holds a reference on the parent), so a slave that completes late never
** writes into memory a waiter has already given back. The first
** completion wins: done()/error() on a finished transaction only appends
** the error text. Everything here is thread-safe unless it says otherwise.
*/
#ifndef STREAMLUA_MEMORY_H_INCLUDED_
#define STREAMLUA_MEMORY_H_INCLUDED_

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "object.h"
#include "status.h"

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

/* Transaction types (Rogue's rim.Read ... rim.Verify). Slaves treat Post
** like Write (data goes out) and Verify like Read (data comes in). */
enum {
  SL_MEM_READ = 0x1,
  SL_MEM_WRITE = 0x2,
  SL_MEM_POST = 0x3,
  SL_MEM_VERIFY = 0x4
};

#define SL_MEM_DEFAULT_TIMEOUT_US 1000000u   /* a master's default: 1 s */
#define SL_MEM_UNCONNECTED "Unsupported transaction using unconnected memory bus"
/* Rogue's text of a transaction whose deadline passed (printf, the id). */
#define SL_MEM_TIMEOUT_FMT "Timeout waiting for register transaction %u message response."

typedef struct sl_transaction sl_transaction;

/* "read", "write", "post", "verify" or "unknown". */
const char *sl_mem_type_name(uint32_t type);

/* Is data flowing out to the slave (Write, Post)? */
int sl_mem_type_is_write(uint32_t type);

/* ---- transactions ---- */

/* A new transaction (refs = 1) with its own zeroed buffer of `size`
** bytes, filled from `data` when data is not NULL. The id is process-wide,
** starts at 1 and never is 0. NULL when out of memory. */
sl_transaction *sl_transaction_new(uint64_t address, uint32_t size,
                                   uint32_t type, const void *data,
                                   uint64_t timeout_us);
sl_transaction *sl_transaction_ref(sl_transaction *t);
void sl_transaction_unref(sl_transaction *t);   /* NULL is ignored */

uint32_t sl_transaction_id(const sl_transaction *t);
uint64_t sl_transaction_address(const sl_transaction *t);
uint32_t sl_transaction_size(const sl_transaction *t);
uint32_t sl_transaction_type(const sl_transaction *t);
uint64_t sl_transaction_timeout(const sl_transaction *t);   /* microseconds */

/* The data buffer (size bytes). Valid while a reference is held; a slave
** writes it before it calls done(), a waiter reads it after. Not locked:
** only the one slave serving the transaction writes it. */
uint8_t *sl_transaction_data(sl_transaction *t);

/* Completes with success. Returns 1 if this call completed it, 0 if it
** was already complete (nothing changes then). */
int sl_transaction_done(sl_transaction *t);

/* Appends the message to the error text and completes with failure (if
** not yet complete). Returns 1 if this call completed it. */
int sl_transaction_error(sl_transaction *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int sl_transaction_verror(sl_transaction *t, const char *fmt, va_list ap);

int sl_transaction_is_done(sl_transaction *t);
/* Completed with an error? Timed out (the waiter gave up)? */
int sl_transaction_failed(sl_transaction *t);
int sl_transaction_timed_out(sl_transaction *t);

/* True when done, or when the waiter has given up (timed out), or, for a
** part of a split, when the parent is expired: a late slave skips it. */
int sl_transaction_expired(sl_transaction *t);

/* Copies the error text ("" on success or while pending) into buf (always
** NUL-terminated when n > 0); returns its full length. */
size_t sl_transaction_get_error(sl_transaction *t, char *buf, size_t n);

/* Runs fn(t, arg) once, in the completing thread, just after completion
** (at once, in this thread, if already complete). One hook per
** transaction; set it before the transaction can complete elsewhere or
** accept that it may run here. No lock is held while fn runs. */
void sl_transaction_on_done(sl_transaction *t,
                            void (*fn)(sl_transaction *t, void *arg),
                            void *arg);

/*
** A slave's help for a waiter: a thread about to wait for t may bring
** t's answer itself for a while (a bridge's caller reading its response
** straight off the socket) instead of being woken by the thread that
** would. The slave sets it before t can complete elsewhere; completion
** clears it. `users` counts the calls of help() under way: the slave
** waits until none is before it goes (a call starts only while t is
** pending, so only while the slave is still there).
*/
typedef struct sl_tran_helper {
  /* Works toward t's completion for up to `us` microseconds; 1 if t is
  ** complete after. */
  int (*help)(struct sl_tran_helper *h, sl_transaction *t, long us);
  atomic_int users;
} sl_tran_helper;
void sl_transaction_set_helper(sl_transaction *t, sl_tran_helper *h);
/* Calls t's helper for up to `us` microseconds: 1 if t is complete after,
** 0 if not, -1 if t is pending without a helper. */
int sl_transaction_help(sl_transaction *t, long us);

/* Starts the timer: deadline = now + timeout (Rogue starts it after the
** slave's doTransaction returns). */
void sl_transaction_start_timer(sl_transaction *t);

/* Fails the transaction with Rogue's text (SL_MEM_TIMEOUT_FMT with its id)
** if the deadline has passed. Returns 1 if the transaction is complete now. */
int sl_transaction_check_deadline(sl_transaction *t);

/* Rogue's transaction lock, as far as a waiter can see it: while held
** (on != 0; as many releases as holds, on == 0), the deadline of t's
** transaction (its parent's, for a part of a split) does not fail it; the
** waiter keeps waiting, and a give-up (an interrupt, a stop) still wins.
** done(), error() and the data stay usable under it. */
void sl_transaction_hold(sl_transaction *t, int on);

/* Rogue's slow-link rule: restarts the timer of t's transaction (deadline
** = now + its timeout) if it is pending and its timer started no earlier
** than that of `since`'s transaction. A slave calls it on every other
** transaction it tracks when one is answered. */
void sl_transaction_refresh(sl_transaction *t, sl_transaction *since);

/* The waiter gives up before the deadline (it was interrupted): fails
** the transaction with `why`, as a timeout would. Returns 1 if this call
** completed it. */
int sl_transaction_give_up(sl_transaction *t, const char *why);

/* Waits up to ms milliseconds on the condition variable; returns 1 if the
** transaction is complete. */
int sl_transaction_wait_ms(sl_transaction *t, long ms);

/* A part of `parent` at `address`: `size` bytes of the parent's buffer
** from `offset`, same type and timeout, its own id. The
** parent completes when every part made before sl_transaction_parts_done
** has completed: with the first part's error, if any failed. NULL when
** out of memory or the range is outside the parent. */
sl_transaction *sl_transaction_new_part(sl_transaction *parent,
                                        uint32_t offset, uint32_t size,
                                        uint64_t address);
/* No more parts will be made; completes the parent if all are done. */
void sl_transaction_parts_done(sl_transaction *parent);

/* ---- the slave role ---- */

typedef struct sl_mem_slave sl_mem_slave;

typedef struct sl_mem_slave_ops {
  /* Serves t: completes it now or later, from any thread. Runs in the
  ** caller's thread; takes a reference (sl_transaction_ref) to keep it. */
  void (*do_transaction)(sl_mem_slave *s, sl_transaction *t);
  /* Optional overrides of the fixed min/max below (a Hub passes through). */
  uint32_t (*min_access)(sl_mem_slave *s);
  uint32_t (*max_access)(sl_mem_slave *s);
} sl_mem_slave_ops;

struct sl_mem_slave {
  const sl_mem_slave_ops *ops;   /* NULL: the unconnected placeholder */
  sl_object *owner;
  uint32_t min, max;             /* access sizes in bytes */
};

/* Sets up the role inside `owner` (owner->mem_slave = s). */
void sl_mem_slave_init(sl_mem_slave *s, const sl_mem_slave_ops *ops,
                       sl_object *owner, uint32_t min, uint32_t max);
void sl_mem_slave_do_transaction(sl_mem_slave *s, sl_transaction *t);
uint32_t sl_mem_slave_min_access(sl_mem_slave *s);
uint32_t sl_mem_slave_max_access(sl_mem_slave *s);

/* ---- the master role ---- */

typedef struct sl_mem_master {
  sl_object *owner;
  pthread_mutex_t mutex;         /* guards slave and timeout */
  sl_object *slave_obj;          /* holds a reference; NULL: unconnected */
  sl_mem_slave *slave;
  uint64_t timeout_us;
} sl_mem_master;

/* Sets up the role inside `owner` (owner->mem_master = m). SL_ENOMEM on
** failure (owner is left without the role). */
int sl_mem_master_init(sl_mem_master *m, sl_object *owner);
void sl_mem_master_fini(sl_mem_master *m);   /* drops the slave */

/* Replaces the downstream slave with slave's memory slave role (the
** master holds a reference on it); NULL disconnects. SL_EINVAL (nothing
** changes) when slave is not a memory slave. */
int sl_mem_master_set_slave(sl_mem_master *m, sl_object *slave);
/* The slave's node with a new reference, or NULL. */
sl_object *sl_mem_master_get_slave(sl_mem_master *m);

/* Timeout of future transactions in microseconds; 0 is ignored. */
void sl_mem_master_set_timeout(sl_mem_master *m, uint64_t us);
uint64_t sl_mem_master_get_timeout(sl_mem_master *m);

/* Makes a transaction (`data` fills a write; NULL zeroes), hands it to
** the slave in the calling thread, then starts its timer. The caller owns
** the returned reference; NULL when out of memory. `before`, if set, is
** called on the new transaction before the slave sees it (to hook
** sl_transaction_on_done, say). */
sl_transaction *sl_mem_master_request(
    sl_mem_master *m, uint64_t address, uint32_t size, const void *data,
    uint32_t type, void (*before)(sl_transaction *t, void *arg), void *arg);

/* Waits for t, bounded by its timeout (running the thread's wait hook
** between checks). SL_OK on success, SL_ETIMEDOUT when it timed out,
** SL_ECANCELED when the thread's waits gave up first (wait.h; t fails
** with "interrupted"), SL_EINVAL for any other error (read it with
** sl_transaction_get_error). */
int sl_mem_master_wait(sl_transaction *t);

/* ---- nodes ---- */

/* A node's roles are in its sl_object (obj->mem_master, obj->mem_slave);
** sl_mem_master_init and sl_mem_slave_init set them, after
** sl_object_init. A C module's node embeds its sl_object and roles. */

/* Master(): a plain master node (kind "memory.Master"), refs = 1; its
** role is obj->mem_master. NULL (err says why) when out of memory. */
sl_object *sl_mem_master_node_new(sl_error *err);

/* Hub(offset, min, max): master and slave (kind "memory.Hub"). With min
** and max both non-zero it reports them; otherwise min comes from below
** and max is 0xFFFFFFFF, since it splits. */
typedef struct sl_hub sl_hub;
sl_hub *sl_hub_new(uint64_t offset, uint32_t min, uint32_t max, sl_error *err);
sl_object *sl_hub_object(sl_hub *hub);          /* (transfer none); NULL-safe */
sl_hub *sl_hub_from_object(sl_object *obj);     /* NULL if not a Hub */
uint64_t sl_hub_get_offset(sl_hub *hub);

/* Emulate(min, max): sparse memory in 4 KiB pages, unwritten bytes read
** as zero; completes every transaction at once (kind "memory.Emulate"). */
typedef struct sl_emulate sl_emulate;
sl_emulate *sl_emulate_new(uint32_t min, uint32_t max, sl_error *err);
sl_object *sl_emulate_object(sl_emulate *emu);        /* (transfer none); NULL-safe */
sl_emulate *sl_emulate_from_object(sl_object *obj);   /* NULL if not an Emulate */
/* Pages allocated so far. */
size_t sl_emulate_pages(sl_emulate *emu);

/* Block(offset, size): a register block, pyrogue's rim.Block (kind
** "memory.Block"). A memory master (connect it to a Hub) that holds a
** shadow of `size` zero bytes for the registers at block offset
** `offset`, and issues at most one transaction at a time over a byte range
** of them: a Read lands in the shadow, a Write or Post sends the shadow's
** bytes (a Write also keeps them as the data a later Verify expects), a
** Verify lands in a buffer of its own.
**
** Threads: the shadow, the verify buffers and the outstanding
** transaction are guarded by the block's mutex, so a completion landing
** from any thread never tears a field that another thread reads or
** writes. Starting and finishing transactions is for one thread at a
** time (the one that owns the block: Lua's main thread).
**
** Bits: block bit k is bit k%8 of byte k/8; a field's bit 0 is its lowest
** bit position. Every function taking a range returns SL_ERANGE (and
** changes nothing) when the range is not inside the shadow. */
#define SL_BLOCK_MAX_SIZE (16u << 20)   /* bytes a shadow may hold */

typedef struct sl_block sl_block;

/* A block of 1..SL_BLOCK_MAX_SIZE bytes; NULL (err says why) otherwise or
** when out of memory. */
sl_block *sl_block_new(uint64_t offset, uint32_t size, sl_error *err);
sl_object *sl_block_object(sl_block *b);          /* (transfer none); NULL-safe */
sl_block *sl_block_from_object(sl_object *obj);   /* NULL if not a Block */
uint64_t sl_block_offset(const sl_block *b);
uint32_t sl_block_size(const sl_block *b);

/* Fields of 1..64 bits: raw is truncated to nbits on the way in and
** zero-extended on the way out. */
int sl_block_set_uint(sl_block *b, uint64_t bit, uint32_t nbits, uint64_t raw);
int sl_block_get_uint(sl_block *b, uint64_t bit, uint32_t nbits, uint64_t *raw);
/* Fields of any width: set copies bits sbit.. of src; get writes
** ceil(nbits/8) bytes to out, value bit 0 at bit 0, unused bits zero. */
int sl_block_set_bits(sl_block *b, uint64_t bit, uint64_t nbits,
                      const uint8_t *src, uint64_t sbit);
int sl_block_get_bits(sl_block *b, uint64_t bit, uint64_t nbits, uint8_t *out);
/* Whole bytes [low, low+n). */
int sl_block_get_shadow(sl_block *b, uint32_t low, uint32_t n, uint8_t *out);
int sl_block_set_shadow(sl_block *b, uint32_t low, uint32_t n, const uint8_t *src);

/* fn(arg) runs in the completing thread each time a transaction of the
** block has landed (to wake a waiting loop). `release(arg)` runs when the
** block is destroyed or the notifier replaced. Set it before the first
** start. */
void sl_block_set_notify(sl_block *b, void (*fn)(void *arg), void *arg,
                         void (*release)(void *arg));

/* Issues one transaction of `type` over shadow bytes [low, low+n) at
** address offset + low, through the block's slave; it may complete
** before this returns. SL_EBUSY when the previous one is still
** outstanding (finish it first), SL_ERANGE, SL_EINVAL for a bad type,
** SL_ENOMEM. */
int sl_block_start(sl_block *b, uint32_t type, uint32_t low, uint32_t n);

/* The outstanding transaction with a new reference, or NULL when none. */
sl_transaction *sl_block_pending(sl_block *b);

/* Nothing outstanding, or it has completed and its data has landed. */
int sl_block_landed(sl_block *b);

/* Takes the landed transaction off the block: SL_OK when none was
** outstanding or it succeeded, else SL_EINVAL with its error text in err
** (n > 0: always NUL-terminated). SL_EBUSY when it has not landed yet. */
int sl_block_finish(sl_block *b, char *err, size_t n);

/* Waits for the outstanding transaction, bounded by its timeout (as
** sl_mem_master_wait), then finishes it: SL_OK, SL_EINVAL (err says
** why), or SL_ECANCELED when the thread's waits gave up first. */
int sl_block_wait(sl_block *b, char *err, size_t n);

/* The byte range of the last Write (0, 0 before any). */
void sl_block_verify_range(sl_block *b, uint32_t *low, uint32_t *n);

/* Compares the last Verify's bytes with the last Write's over the verify
** range, both ANDed with mask (`size` bytes, indexed from the block
** start). 0 when they agree, else 1 with the first mismatching block
** byte index and the three bytes. */
int sl_block_verify_check(sl_block *b, const uint8_t *mask, uint32_t *index,
                          uint8_t *got, uint8_t *exp, uint8_t *mask_byte);

/* Bit strings, with block bit numbering: n bits of src from bit sbit
** into dst from bit dbit (the ranges must not overlap); other bits of dst
** keep their values. */
void sl_bit_copy(uint8_t *dst, uint64_t dbit, const uint8_t *src,
                 uint64_t sbit, uint64_t n);

#pragma GCC visibility pop

#endif
