#include "streamlua/status.h"

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
    default: return "unknown status";
  }
}
