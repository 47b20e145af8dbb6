/* streamlua version. */
#ifndef STREAMLUA_VERSION_H_INCLUDED_
#define STREAMLUA_VERSION_H_INCLUDED_

#define SL_VERSION_MAJOR 0
#define SL_VERSION_MINOR 1
#define SL_VERSION_PATCH 0
#define SL_VERSION "0.1.0"

#endif
