/*
** Status codes returned by the C core. Zero is success; every failure is
** negative, so `if (rc < 0)` is the one test a caller needs.
*/
#ifndef STREAMLUA_STATUS_H_INCLUDED_
#define STREAMLUA_STATUS_H_INCLUDED_

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

typedef enum sl_status {
  SL_OK = 0,
  SL_ERANGE = -1,     /* size or offset outside what the object holds */
  SL_ENOMEM = -2,     /* allocation failed */
  SL_ECLOSED = -3,    /* the object is stopped or closed */
  SL_ETIMEDOUT = -4,  /* a bounded wait ran out */
  SL_EINVAL = -5,     /* an argument makes no sense */
  SL_ENOTFOUND = -6,  /* the thing named is not there */
  SL_EBUSY = -7,      /* would deadlock or is in use */
  SL_ECANCELED = -8,  /* a wait gave up: stopped or interrupted */
  SL_EIO = -9         /* the system refused: a socket, a thread, a file */
} sl_status;

/* A short English text for a status code (static storage, thread-safe). */
const char *sl_status_str(int status);

/*
** Why a constructor failed. Every sl_<type>_new takes a trailing
** `sl_error *err` (NULL: the caller does not care) and, when it returns
** NULL, sets it: the status code and an English message naming the cause
** ("cannot start its thread: out of memory", "bind: address in use"). A
** success leaves err untouched. Not shared between threads.
*/
#define SL_ERROR_MAX 256

typedef struct sl_error {
  int status;                  /* SL_OK until a failure sets it */
  char msg[SL_ERROR_MAX];      /* NUL-terminated; "" until then */
} sl_error;

/* Sets err to SL_OK and "". NULL is ignored. */
void sl_error_clear(sl_error *err);

/* Sets err (NULL is ignored) to status and the formatted message; a NULL
** fmt uses sl_status_str(status). */
void sl_error_set(sl_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* sl_error_set, then returns NULL: `return sl_fail(err, SL_ENOMEM, NULL);` */
void *sl_fail(sl_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#pragma GCC visibility pop

#endif
