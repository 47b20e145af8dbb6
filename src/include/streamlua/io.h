/*
** sl_io: the network I/O thread. One libevent event_base on one thread
** serves every socket of every bridge. It never calls graph code and never
** blocks: it moves bytes between sockets and queues, and the queues have
** their own threads on the other side.
**
**   any thread                         the I/O thread
**   ----------                         --------------
**   sl_io_acquire(): starts it         runs events; runs calls queued
**   sl_io_call(io, fn, arg): queue     by sl_io_call in order
**   sl_io_call_sync(): ...and wait
**   sl_io_release(): the last one
**     stops and joins it
**
** Thread-safe. sl_io_call_sync from the I/O thread itself runs fn at once.
*/
#ifndef STREAMLUA_IO_H_INCLUDED_
#define STREAMLUA_IO_H_INCLUDED_

struct event_base;
typedef struct sl_io sl_io;

/* The process's I/O thread, started on first use; NULL if it cannot start. */
sl_io *sl_io_acquire(void);
void sl_io_release(sl_io *io);

struct event_base *sl_io_base(sl_io *io);
int sl_io_on_thread(sl_io *io);

/* Runs fn(arg) on the I/O thread, soon (returns at once). 0, or -1 if out
** of memory. */
int sl_io_call(sl_io *io, void (*fn)(void *arg), void *arg);
/* Runs fn(arg) on the I/O thread and waits until it has run. */
int sl_io_call_sync(sl_io *io, void (*fn)(void *arg), void *arg);

/* How many I/O threads run now (0 or 1), for reports and tests. */
int sl_io_thread_count(void);

#endif
