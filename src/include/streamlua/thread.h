/*
** Threads of the library. They are started with every asynchronous
** signal blocked, so SIGINT, SIGTERM and their kind always reach the
** program's main thread, where the event loop and the host handle them.
*/
#ifndef STREAMLUA_THREAD_H_INCLUDED_
#define STREAMLUA_THREAD_H_INCLUDED_

#include <pthread.h>

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

/* pthread_create with the signals blocked in the new thread. */
int sl_thread_start(pthread_t *t, const pthread_attr_t *attr,
                    void *(*fn)(void *), void *arg);

#pragma GCC visibility pop

#endif
