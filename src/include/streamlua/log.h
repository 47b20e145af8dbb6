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
**
** Repeats are limited: a record of the same logger, level and shape (its
** text with every number, decimal or hex, taken as one: "frame of 9000
** bytes" and "frame of 64 bytes" are alike) as one written less than the
** repeat window ago (1 s by default) is counted, not written. When the
** window has passed, the next such record, or the first log call or
** sl_log_flush_due after it, writes the last counted one once with
** " (repeated N times in the last T s)", N the records it stands for, and
** a new window starts; so a flood gives one line a second and every
** counted record is told. sl_log_flush writes what is counted at once,
** and runs at exit. sl_log_write_each and a logger set with
** sl_log_set_every are outside the limit. The counts live in a fixed table (64 shapes at a
** time; a shape pushed out has its count written first).
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

/* As sl_log_write, outside the repeat limit: every record is written (the
** records a script writes itself, as Python's logging does). */
void sl_log_write_each(sl_log *log, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void sl_log_set_level(int level);
int sl_log_get_level(void);
void sl_log_set_filter(const char *prefix, int level);
/* Turns the stderr output on or off (the history ring keeps recording). */
void sl_log_set_emit(int on);
/* every = 1 writes each record of this logger, alike or not (a dump the
** user asked for); 0, the default, limits its repeats. */
void sl_log_set_every(sl_log *log, int every);
/* Writes every counted repeat now (see above) and ends every window: the
** next record of each shape is written. */
void sl_log_flush(void);
/* Writes the counted repeats whose window has ended: for a loop to call
** about once a second. Cheap when there is none. */
void sl_log_flush_due(void);
/* The repeat window in ns; 0 writes every record (what is counted is
** written first). */
void sl_log_set_repeat_window(long long ns);
long long sl_log_get_repeat_window(void);
/* The repeat limiter's time source, in ns (for tests that step time);
** NULL restores the default, the coarse monotonic clock. */
void sl_log_set_clock(long long (*now_ns)(void));
/* Copies up to `max` most recent lines (oldest first) into out[]; each is
** malloc'd and owned by the caller. Returns the count. */
size_t sl_log_history(char **out, size_t max);
/* Canonical form of a name: without the "pyrogue." prefix. */
const char *sl_log_normalize(const char *name);
/* "CRITICAL", "ERROR", ... for a level number. */
const char *sl_log_level_name(int level);

#pragma GCC visibility pop

#endif
