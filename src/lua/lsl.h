/*
** Shared plumbing of the binding files: boxes, classes and roles, the
** per-state record, and calling into Lua safely. Only binding files
** include this; the core never sees a Lua header.
*/
#ifndef STREAMLUA_LSL_H_INCLUDED_
#define STREAMLUA_LSL_H_INCLUDED_

#include <pthread.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "sl_lua.h"
#include "streamlua/lua.h"
#include "streamlua/streamlua.h"

struct event;
struct event_base;

/*
** One record per Lua state that opened the module. Reference counted,
** because C objects that call into Lua (Lua-defined slaves) may outlive
** the lua_State; once the state is closed `L` is NULL and they stop
** calling.
*/
typedef struct sl_state {
  atomic_int refs;
  lua_State *L;                 /* main thread; NULL once closed */
  lua_State *cur;               /* innermost Lua thread calling into C */
  sl_frame *cur_frame;          /* the frame that Lua thread is sending... */
  int cur_frame_idx;            /* ...and its box's stack index there */
  pthread_t main_thread;
  struct event_base *base;
  struct event *wake;           /* runs deferred work on the main thread */
  pthread_mutex_t mutex;        /* guards the deferred lists */
  sl_object **dead;             /* objects to destroy on the main thread */
  size_t ndead, capdead;
  int in_loop;                  /* the event loop is running */
  size_t gc_debt;               /* frame bytes handed to Lua since the last step */
  int ref_accept, ref_accept_;  /* the strings "acceptFrame", "_acceptFrame" */
  void *lua_slaves;             /* live Lua-defined slaves (lslave.c) */
} sl_state;

/* Metatable names, and registry keys (addresses: no string hashing on the
** frame path). */
#define SL_FRAME_MT "streamlua.Frame"
#define SL_FRAMELOCK_MT "streamlua.FrameLock"
extern const char sl_state_key;      /* the sl_state box */
extern const char sl_boxes_key;      /* weak table: C object -> its box */
extern const char sl_frame_mt_key;   /* the Frame metatable */

sl_state *sl_state_get(lua_State *L);
sl_state *sl_state_ref(sl_state *st);
void sl_state_unref(sl_state *st);
/* Is the calling thread the one that owns the Lua state? */
int sl_state_on_main(const sl_state *st);
/* Destroys obj on the main thread (now, if this is it). */
void sl_state_defer_destroy(sl_state *st, sl_object *obj);
/* Runs deferred work; main thread only. */
void sl_state_run_deferred(sl_state *st);
/* The Lua thread to call back on: the innermost caller, or the main one. */
lua_State *sl_state_lua(sl_state *st);

/*
** Classes. A class is a metatable "streamlua.<name>" plus a callable class
** table holding its methods. `roles` (SL_ROLE_* bits, object.h) add each
** role's methods to the class table: stream master and slave (lmaster.c,
** lslave.c), memory master and slave (lmemory.c); the class's own methods
** come last and may replace them. What a box can be connected to is read
** from its C object's roles (sl_object_roles), never from the class.
*/
typedef struct sl_lua_class {
  const char *name;             /* "Slave", "Fifo", ... */
  const luaL_Reg *methods;      /* class methods (may be NULL) */
  lua_CFunction ctor;           /* __call of the class table (may be NULL) */
  unsigned roles;               /* SL_ROLE_* */
} sl_lua_class;

/* Builds the class; leaves the class table on the stack
** (sl_lua_register_class, streamlua/lua.h, is the public face). Boxes are
** pushed with sl_lua_push_object and checked with the inline
** sl_lua_test_object, sl_lua_check_object and sl_lua_check_role of
** streamlua/lua.h: the one role check. */
void sl_lua_class_new(lua_State *L, const sl_lua_class *cls);
sl_master *sl_check_master(lua_State *L, int i);
sl_slave *sl_check_slave(lua_State *L, int i);
/* A slave for argument i: a box with the slave role, or a function (made
** into a Lua-defined slave). Leaves the slave's box at index i. */
sl_slave *sl_to_slave(lua_State *L, int i);
/* master >> slave, kept reachable from the master's box. */
void sl_connect(lua_State *L, int mi, int si);
/* a >> b by whichever roles link them: a stream link when a is a stream
** master and b a stream slave (or a function), else b becomes a's memory
** slave when a is a memory master and b a memory slave; raises "attempt
** to connect a 'A' to a 'B'" when neither. Wrappers are unwrapped first
** (sl_lua_unwrap). */
void sl_link(lua_State *L, int a, int b);
/* a == b, sl.streamConnectBiDir: a >> b, then b >> a (both the same kind
** of link), each end through its wrapper hook; raises as sl_link does. */
void sl_link_both(lua_State *L, int a, int b);
/* pyrogue's wrapper hooks: when the value at i (a table, or a box whose
** fields have it) has a method `hook` (_getStreamMaster, _getStreamSlave,
** _getMemoryMaster, _getMemorySlave), replaces it in place by what
** hook(value) returns. Every connect path calls it on both ends. */
void sl_lua_unwrap(lua_State *L, int i, const char *hook);

/* The creation serial of the box at i (0 if it is not one). */
lua_Integer sl_box_serial(lua_State *L, int i);

/* Metatable `name` with the metamethods `metameth` (its "__index" entry a
** NULL placeholder) and __index the table of `meth`; leaves that method
** table on the stack. */
void sl_lua_createmeta(lua_State *L, const char *name, const luaL_Reg *meth,
                       const luaL_Reg *metameth);

/* Frames. */
void sl_push_frame(lua_State *L, sl_frame *f);   /* takes a new ref */
void sl_push_frame_in(lua_State *L, sl_state *st, sl_frame *f);   /* same */
sl_frame *sl_check_frame(lua_State *L, int i);

/* Ctrl-C during a call that waits (wait.h): raises "interrupted" at the
** caller when an interrupt is pending, and takes it. */
void sl_lua_check_interrupt(lua_State *L);
/* Raises "interrupted" (a wait gave up), taking the pending interrupt. */
int sl_lua_interrupted(lua_State *L);
/* Raises why a frame request of `size` bytes made on this thread came
** back NULL: over the pool's limit (sl_pool_req_status), or out of memory.
** Clear the status with sl_pool_req_status(NULL) before the request. */
int sl_req_frame_error(lua_State *L, const char *fn, lua_Integer size);

/* Raises "<fn>: <what>: <status text>". */
int sl_status_error(lua_State *L, const char *fn, int status);

/* The integer argument i, which must lie in [lo, hi]; otherwise raises
** "bad argument #i to 'fn' (value v out of range [lo, hi])". Every size,
** count and offset from Lua goes through here before any arithmetic. */
lua_Integer sl_check_range(lua_State *L, int i, lua_Integer lo,
                           lua_Integer hi);
/* The same, or def when argument i is absent or nil. */
lua_Integer sl_opt_range(lua_State *L, int i, lua_Integer def, lua_Integer lo,
                         lua_Integer hi);

/* Calls the function at the top-nargs-1 with a traceback handler; on
** error logs it to `logname` and returns the status. Pops everything. */
int sl_pcall_log(lua_State *L, int nargs, const char *logname);

/* Family openers; each sets its fields in the table at the top. */
void sl_open_frame(lua_State *L);
void sl_open_master(lua_State *L);
void sl_open_slave(lua_State *L);
void sl_open_loop(lua_State *L);
void sl_open_logging(lua_State *L);
void sl_open_fifo(lua_State *L);       /* sl.stream.Fifo */
void sl_open_filter(lua_State *L);     /* sl.stream.Filter, sl.stream.RateDrop */
void sl_open_tcp(lua_State *L);        /* sl.stream.TcpServer, TcpClient */
void sl_open_udp(lua_State *L);        /* sl.udp.Server, sl.udp.Client */
void sl_open_io(lua_State *L);         /* sl.setIoThreads, sl.ioThreads */
void sl_open_memory(lua_State *L);
/* lmemslave.c: Transaction values and Lua-defined memory slaves. */
void sl_memory_open_transactions(lua_State *L);
int sl_memory_slave_new(lua_State *L);
/* Pushes the fields table of a Lua-defined memory slave; 0 if obj is not
** one. sl_lua_push_object gives a new box these fields. */
int sl_memory_slave_fields(lua_State *L, sl_object *obj);
uint32_t sl_memory_opt_access(lua_State *L, int i, uint32_t def);
int sl_memory_slave_set_max_queue_bytes(lua_State *L);
/* Serves the loop (or, where it cannot, waits) until t is complete and
** then until ready(arg) holds (when ready is set); t fails with its
** timeout at its deadline. SL_OK, or SL_ECANCELED when the thread's waits
** gave up (t then failed with "interrupted"). */
struct sl_transaction;
int sl_memory_serve(lua_State *L, struct sl_transaction *t,
                    int (*ready)(void *arg), void *arg);
/* A transaction from m for the calling Lua thread (a Lua slave reached
** synchronously runs here) whose completion wakes the loop; the caller
** owns the reference; NULL when out of memory. */
struct sl_mem_master;
struct sl_transaction *sl_memory_request(lua_State *L, struct sl_mem_master *m,
                                         uint64_t addr, uint32_t size,
                                         const void *data, uint32_t type);
/* lmemslave.c: a Transaction value (takes its own reference), and the
** transaction in the one at i (raises if it is not one). */
void sl_memory_push_transaction(lua_State *L, struct sl_transaction *t);
struct sl_transaction *sl_memory_check_transaction(lua_State *L, int i);
/* lmemory.c: the transaction type at i (Read...Verify), else an argument error. */
uint32_t sl_memory_check_type(lua_State *L, int i);
/* lmemrogue.c: Rogue's asynchronous names: the memory master role's
** (_reqTransaction, _waitTransaction, _getError, _clearError) and a
** Lua-defined slave's (_addTransaction, _getTransaction). */
extern const luaL_Reg sl_mem_master_rogue_methods[];
extern const luaL_Reg sl_memory_slave_methods[];
/* lblock.c: sets Block and bitCopy in the sl.memory table at the top. */
void sl_open_block(lua_State *L);
void sl_open_srp(lua_State *L);
void sl_open_batcher(lua_State *L);   /* sl.batcher */
void sl_open_packetizer(lua_State *L);   /* sl.packetizer.Core, CoreV2 */
void sl_open_rssi(lua_State *L);       /* sl.rssi.Client, sl.rssi.Server */
void sl_open_membridge(lua_State *L);  /* sl.memory.TcpServer, TcpClient */
void sl_open_prbs(lua_State *L);       /* sl.utilities.Prbs */
void sl_open_fileio(lua_State *L);     /* sl.utilities.StreamWriter/Reader */
void sl_open_graph(lua_State *L);      /* sl.graph, sl.monitor */
void sl_open_protocols(lua_State *L);  /* sl.protocols.UdpRssiPack */
void sl_open_pyrogue(lua_State *L);    /* sl.pyrogue, package.preload */

/* Lua-defined slave from the table or function at i; pushes its box. */
void sl_lua_slave_new(lua_State *L, int i);
/* Pushes the fields table of a Lua-defined stream slave; 0 if obj is not
** one. sl_lua_push_object gives a new box these fields. */
int sl_lua_slave_fields(lua_State *L, sl_object *obj);
/* Delivers everything queued for obj if it is a Lua-defined slave. */
void sl_lua_slave_flush(sl_object *obj);
/* Hands queued mailbox frames to Lua: the main thread's wait hook. */
void sl_lua_slaves_serve(void *st);

#endif
