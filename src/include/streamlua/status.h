/*
** Status codes returned by the C core. Zero is success; every failure is
** negative, so `if (rc < 0)` is the one test a caller needs.
*/
#ifndef STREAMLUA_STATUS_H_INCLUDED_
#define STREAMLUA_STATUS_H_INCLUDED_

typedef enum sl_status {
  SL_OK = 0,
  SL_ERANGE = -1,     /* size or offset outside what the object holds */
  SL_ENOMEM = -2,     /* allocation failed */
  SL_ECLOSED = -3,    /* the object is stopped or closed */
  SL_ETIMEDOUT = -4,  /* a bounded wait ran out */
  SL_EINVAL = -5,     /* an argument makes no sense */
  SL_ENOTFOUND = -6,  /* the thing named is not there */
  SL_EBUSY = -7,      /* would deadlock or is in use */
  SL_ECANCELED = -8   /* a wait gave up: stopped or interrupted */
} sl_status;

/* A short English text for a status code (static storage, thread-safe). */
const char *sl_status_str(int status);

#endif
