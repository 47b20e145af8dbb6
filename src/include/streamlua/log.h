/*
** Logging with Rogue's model: hierarchical names, a global level, and
** filters that make a name prefix more verbose.
**
** A logger's effective level is the lowest of the global level and of every
** filter whose name is a prefix of the logger's name. Names are kept
** without Rogue's "pyrogue." prefix; a name or filter given with it means
** the same. A record is written when level >= effective level, one line
** on stderr: "<sec>.<usec> <LEVEL> <name>: <message>". The last lines are
** also kept in a small ring for sl_log_history. Thread-safe.
*/
#ifndef STREAMLUA_LOG_H_INCLUDED_
#define STREAMLUA_LOG_H_INCLUDED_

#include <stddef.h>

#pragma GCC visibility push(default)   /* the public API; the rest is hidden */

enum {
  SL_LOG_DEBUG = 10,
  SL_LOG_INFO = 20,
  SL_LOG_WARNING = 30,
  SL_LOG_THREAD = 35,
  SL_LOG_ERROR = 40,
  SL_LOG_CRITICAL = 50,
  SL_LOG_ALWAYS = 100
};

typedef struct sl_log sl_log;

/* The logger of that name, created on first use; loggers live until exit. */
sl_log *sl_log_get(const char *name);
const char *sl_log_name(const sl_log *log);
int sl_log_level(const sl_log *log);
int sl_log_enabled(const sl_log *log, int level);
void sl_log_write(sl_log *log, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void sl_log_set_level(int level);
int sl_log_get_level(void);
void sl_log_set_filter(const char *prefix, int level);
/* Turns the stderr output on or off (the history ring keeps recording). */
void sl_log_set_emit(int on);
/* Copies up to `max` most recent lines (oldest first) into out[]; each is
** malloc'd and owned by the caller. Returns the count. */
size_t sl_log_history(char **out, size_t max);
/* Canonical form of a name: without the "pyrogue." prefix. */
const char *sl_log_normalize(const char *name);
/* "CRITICAL", "ERROR", ... for a level number. */
const char *sl_log_level_name(int level);

#pragma GCC visibility pop

#endif
