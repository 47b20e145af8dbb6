#include "streamlua/status.h"

#include <stdarg.h>
#include <stdio.h>

const char *sl_status_str(int status) {
  switch (status) {
    case SL_OK: return "ok";
    case SL_ERANGE: return "out of range";
    case SL_ENOMEM: return "out of memory";
    case SL_ECLOSED: return "closed";
    case SL_ETIMEDOUT: return "timed out";
    case SL_EINVAL: return "invalid argument";
    case SL_ENOTFOUND: return "not found";
    case SL_EBUSY: return "busy";
    case SL_ECANCELED: return "interrupted";
    case SL_EIO: return "system error";
    default: return "unknown status";
  }
}

void sl_error_clear(sl_error *err) {
  if (err == NULL) return;
  err->status = SL_OK;
  err->msg[0] = '\0';
}

static void error_vset(sl_error *err, int status, const char *fmt, va_list ap) {
  if (err == NULL) return;
  err->status = status;
  if (fmt == NULL)
    snprintf(err->msg, sizeof err->msg, "%s", sl_status_str(status));
  else
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

void sl_error_set(sl_error *err, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_vset(err, status, fmt, ap);
  va_end(ap);
}

void *sl_fail(sl_error *err, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  error_vset(err, status, fmt, ap);
  va_end(ap);
  return NULL;
}
