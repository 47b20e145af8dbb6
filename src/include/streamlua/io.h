/*
** sl_io: the network I/O threads. By default one libevent event_base on
** one thread serves every socket of every bridge; more threads can be
** asked for before the first bridge starts (a bridge then puts its sending
** and its receiving connections on different threads, so the two kernel
** copies of a stream in each direction run on two cores). The number does
** not grow with the number of sockets. I/O threads never call graph code
** and never block: they move bytes between sockets and queues, and the
** queues have their own threads on the other side.
**
**   any thread                         an I/O thread
**   ----------                         -------------
**   sl_io_acquire(): starts them       runs events; runs calls queued
**   sl_io_call(io, i, fn, arg)         by sl_io_call in order
**   sl_io_call_sync(): ...and wait
**   sl_io_release(): the last one
**     stops and joins them
**
** Thread-safe. sl_io_call_sync from thread i itself runs fn at once.
*/
#ifndef STREAMLUA_IO_H_INCLUDED_
#define STREAMLUA_IO_H_INCLUDED_

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

struct event_base;
typedef struct sl_io sl_io;

/* How many I/O threads the next start uses (1..8; default 1). Returns 0,
** or -1 if the threads already run or n is out of range. */
int sl_io_set_threads(int n);

/* The process's I/O threads, started on first use; NULL if they cannot. */
sl_io *sl_io_acquire(void);
void sl_io_release(sl_io *io);

int sl_io_count(sl_io *io);
/* Loop i's base (i taken modulo the count). */
struct event_base *sl_io_base(sl_io *io, int i);
int sl_io_on_thread(sl_io *io, int i);

/* Runs fn(arg) on I/O thread i, soon (returns at once). 0, or -1 if out
** of memory. */
int sl_io_call(sl_io *io, int i, void (*fn)(void *arg), void *arg);
/* Runs fn(arg) on I/O thread i and waits until it has run. */
int sl_io_call_sync(sl_io *io, int i, void (*fn)(void *arg), void *arg);

/* I/O threads running now (0 when none), for reports and tests. */
int sl_io_thread_count(void);

#pragma GCC visibility pop

#endif
