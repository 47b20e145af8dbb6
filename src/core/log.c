/*
** Loggers with Rogue's level rules (see log.h). Loggers are interned by
** name and never freed, so a pointer taken once stays valid; their
** effective level is recomputed whenever the global level or a filter
** changes, and read with one relaxed atomic load on the hot path.
**
** Repeats: a record that passes its level is formatted, reduced to a shape
** hash (numbers taken as one) and looked up, with its logger and level, in
** a fixed table under one mutex; the table says whether it is written or
** counted (see log.h). Lines are written under that mutex, so they never
** interleave and a summary never overtakes the line it follows.
*/
#include "streamlua/log.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "clock.h"

#define LOG_MSG_MAX 1000
#define LOG_HISTORY 256
#define REPEAT_SLOTS 64
#define REPEAT_WINDOW_NS 1000000000LL

struct sl_log {
  struct sl_log *next;
  atomic_int level;            /* effective level */
  atomic_int every;            /* 1: out of the repeat limit */
  char name[];
};

typedef struct log_filter {
  char *prefix;
  int level;
} log_filter;

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static sl_log *log_list;
static int log_global = SL_LOG_ERROR;
static log_filter *log_filters;
static size_t log_nfilters;
static atomic_int log_emit = 1;

/* One shape of record, written at since_ns; alike records until until_ns
** are counted, the last one's text kept for the summary. */
typedef struct repeat_slot {
  const sl_log *log;           /* NULL: free */
  unsigned long long shape;
  int level;
  long long since_ns;
  long long until_ns;
  unsigned long long count;
  char last[LOG_MSG_MAX];
} repeat_slot;

static pthread_mutex_t rep_mutex = PTHREAD_MUTEX_INITIALIZER;
static repeat_slot rep[REPEAT_SLOTS];
static long long rep_window = REPEAT_WINDOW_NS;
static long long rep_due = LLONG_MAX;      /* earliest until_ns with a count */
static long long (*rep_clock)(void);       /* NULL: the coarse clock */
static pthread_once_t rep_once = PTHREAD_ONCE_INIT;

static pthread_mutex_t hist_mutex = PTHREAD_MUTEX_INITIALIZER;
static char *hist[LOG_HISTORY];
static size_t hist_next;       /* slot the next line goes to */
static size_t hist_count;

const char *sl_log_normalize(const char *name) {
  static const char prefix[] = "pyrogue";
  size_t n = sizeof prefix - 1;
  if (strncmp(name, prefix, n) != 0) return name;
  if (name[n] == '\0') return name + n;
  if (name[n] == '.') return name + n + 1;
  return name;
}

static int effective_nolock_(const char *name) {
  int level = log_global;
  for (size_t i = 0; i < log_nfilters; i++) {
    const char *p = log_filters[i].prefix;
    if (strncmp(name, p, strlen(p)) == 0 && log_filters[i].level < level)
      level = log_filters[i].level;
  }
  return level;
}

static void recompute_nolock_(void) {
  for (sl_log *l = log_list; l != NULL; l = l->next)
    atomic_store_explicit(&l->level, effective_nolock_(l->name),
                          memory_order_relaxed);
}

sl_log *sl_log_get(const char *name) {
  name = sl_log_normalize(name);
  pthread_mutex_lock(&log_mutex);
  sl_log *l;
  for (l = log_list; l != NULL; l = l->next)
    if (strcmp(l->name, name) == 0) goto out;
  size_t n = strlen(name);
  l = malloc(sizeof *l + n + 1);
  if (l == NULL) goto out;
  memcpy(l->name, name, n + 1);
  atomic_init(&l->level, effective_nolock_(l->name));
  atomic_init(&l->every, 0);
  l->next = log_list;
  log_list = l;
out:
  pthread_mutex_unlock(&log_mutex);
  return l;
}

const char *sl_log_name(const sl_log *log) { return log->name; }

int sl_log_level(const sl_log *log) {
  return atomic_load_explicit(&log->level, memory_order_relaxed);
}

int sl_log_enabled(const sl_log *log, int level) {
  return log != NULL && level >= sl_log_level(log);
}

const char *sl_log_level_name(int level) {
  if (level >= SL_LOG_CRITICAL) return "CRITICAL";
  if (level >= SL_LOG_ERROR) return "ERROR";
  if (level >= SL_LOG_THREAD) return "THREAD";
  if (level >= SL_LOG_WARNING) return "WARNING";
  if (level >= SL_LOG_INFO) return "INFO";
  return "DEBUG";
}

static void history_add(const char *line) {
  char *copy = strdup(line);
  if (copy == NULL) return;
  pthread_mutex_lock(&hist_mutex);
  free(hist[hist_next]);
  hist[hist_next] = copy;
  hist_next = (hist_next + 1) % LOG_HISTORY;
  if (hist_count < LOG_HISTORY) hist_count++;
  pthread_mutex_unlock(&hist_mutex);
}

/* Writes one line now; caller holds rep_mutex. */
static void emit_nolock(const sl_log *log, int level, const char *msg) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  char line[LOG_MSG_MAX + 256];
  snprintf(line, sizeof line, "%ld.%06ld %s %s: %s\n", (long)tv.tv_sec,
           (long)tv.tv_usec, sl_log_level_name(level), log->name, msg);
  if (atomic_load_explicit(&log_emit, memory_order_relaxed))
    fputs(line, stderr);
  history_add(line);
}

/* A hash of the level and of the text with each number (a run of letters
** and digits that starts with a digit: 42, 0x1f, 9000) taken as one. */
static unsigned long long shape_of(int level, const char *msg) {
  unsigned long long h = 1469598103934665603ULL ^ (unsigned)level;
  for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
    unsigned char c = *p;
    if (isdigit(c)) {
      c = '#';
      while (isalnum(p[1])) p++;
    }
    h = (h ^ c) * 1099511628211ULL;
  }
  return h;
}

static long long rep_now_nolock(void) {
  return rep_clock ? rep_clock() : (long long)sl_clock_coarse_ns();
}

/* Writes the summary of a slot's counted records and starts a new window. */
static void tell_nolock(repeat_slot *s, long long now) {
  char msg[LOG_MSG_MAX + 64];
  snprintf(msg, sizeof msg, "%s (repeated %llu time%s in the last %.1f s)",
           s->last, s->count, s->count == 1 ? "" : "s",
           (double)(now - s->since_ns) * 1e-9);
  emit_nolock(s->log, s->level, msg);
  s->count = 0;
  s->since_ns = now;
  s->until_ns = now + rep_window;
}

/* Tells every slot with a count (all) or those whose window has ended. */
static void flush_nolock(long long now, int all) {
  long long due = LLONG_MAX;
  for (size_t i = 0; i < REPEAT_SLOTS; i++) {
    repeat_slot *s = &rep[i];
    if (s->count == 0) continue;
    if (all || now >= s->until_ns) tell_nolock(s, now);
    else if (s->until_ns < due) due = s->until_ns;
  }
  rep_due = due;
}

static void flush_at_exit(void) { sl_log_flush(); }

static void register_exit_flush(void) { atexit(flush_at_exit); }

/* A slot for a new shape: a free one, else the idle one whose window ended
** first, else the oldest counting one, told first. */
static repeat_slot *claim_nolock(long long now) {
  repeat_slot *idle = NULL, *busy = NULL;
  for (size_t i = 0; i < REPEAT_SLOTS; i++) {
    repeat_slot *s = &rep[i];
    if (s->log == NULL) return s;
    repeat_slot **pick = s->count == 0 ? &idle : &busy;
    if (*pick == NULL || s->until_ns < (*pick)->until_ns) *pick = s;
  }
  if (idle != NULL) return idle;
  tell_nolock(busy, now);
  return busy;
}

/* 1 if the record is counted rather than written. */
static int repeat_nolock(const sl_log *log, int level, unsigned long long shape,
                         const char *msg, long long now) {
  repeat_slot *s = NULL;
  for (size_t i = 0; i < REPEAT_SLOTS && s == NULL; i++)
    if (rep[i].log == log && rep[i].shape == shape && rep[i].level == level)
      s = &rep[i];
  if (s != NULL && now < s->until_ns) {
    s->count++;
    snprintf(s->last, sizeof s->last, "%s", msg);
    if (s->until_ns < rep_due) rep_due = s->until_ns;
    pthread_once(&rep_once, register_exit_flush);
    return 1;
  }
  if (s == NULL) s = claim_nolock(now);
  s->log = log;
  s->shape = shape;
  s->level = level;
  s->count = 0;
  s->since_ns = now;
  s->until_ns = now + rep_window;
  return 0;
}

static void log_vwrite(sl_log *log, int level, int limited, const char *fmt,
                       va_list ap) {
  char msg[LOG_MSG_MAX];
  vsnprintf(msg, sizeof msg, fmt, ap);
  limited = limited && !atomic_load_explicit(&log->every, memory_order_relaxed);
  unsigned long long shape = limited ? shape_of(level, msg) : 0;
  pthread_mutex_lock(&rep_mutex);
  long long now = rep_now_nolock();
  if (now >= rep_due) flush_nolock(now, 0);
  if (!limited || rep_window == 0 || !repeat_nolock(log, level, shape, msg, now))
    emit_nolock(log, level, msg);
  pthread_mutex_unlock(&rep_mutex);
}

void sl_log_write(sl_log *log, int level, const char *fmt, ...) {
  if (!sl_log_enabled(log, level)) return;
  va_list ap;
  va_start(ap, fmt);
  log_vwrite(log, level, 1, fmt, ap);
  va_end(ap);
}

void sl_log_write_each(sl_log *log, int level, const char *fmt, ...) {
  if (!sl_log_enabled(log, level)) return;
  va_list ap;
  va_start(ap, fmt);
  log_vwrite(log, level, 0, fmt, ap);
  va_end(ap);
}

void sl_log_set_every(sl_log *log, int every) {
  atomic_store_explicit(&log->every, every != 0, memory_order_relaxed);
}

/* Ends every window: the next record of each shape is written. */
static void forget_nolock(void) {
  for (size_t i = 0; i < REPEAT_SLOTS; i++) rep[i].until_ns = LLONG_MIN;
}

void sl_log_flush(void) {
  pthread_mutex_lock(&rep_mutex);
  flush_nolock(rep_now_nolock(), 1);
  forget_nolock();
  pthread_mutex_unlock(&rep_mutex);
}

void sl_log_flush_due(void) {
  pthread_mutex_lock(&rep_mutex);
  long long now = rep_now_nolock();
  if (now >= rep_due) flush_nolock(now, 0);
  pthread_mutex_unlock(&rep_mutex);
}

void sl_log_set_repeat_window(long long ns) {
  pthread_mutex_lock(&rep_mutex);
  flush_nolock(rep_now_nolock(), 1);
  rep_window = ns > 0 ? ns : 0;
  forget_nolock();
  pthread_mutex_unlock(&rep_mutex);
}

long long sl_log_get_repeat_window(void) {
  pthread_mutex_lock(&rep_mutex);
  long long ns = rep_window;
  pthread_mutex_unlock(&rep_mutex);
  return ns;
}

void sl_log_set_clock(long long (*now_ns)(void)) {
  pthread_mutex_lock(&rep_mutex);
  flush_nolock(rep_now_nolock(), 1);
  rep_clock = now_ns;
  forget_nolock();
  pthread_mutex_unlock(&rep_mutex);
}

void sl_log_set_level(int level) {
  pthread_mutex_lock(&log_mutex);
  log_global = level;
  recompute_nolock_();
  pthread_mutex_unlock(&log_mutex);
}

int sl_log_get_level(void) {
  pthread_mutex_lock(&log_mutex);
  int level = log_global;
  pthread_mutex_unlock(&log_mutex);
  return level;
}

void sl_log_set_filter(const char *prefix, int level) {
  char *p = strdup(sl_log_normalize(prefix));
  if (p == NULL) return;
  pthread_mutex_lock(&log_mutex);
  log_filter *nf = realloc(log_filters, (log_nfilters + 1) * sizeof *nf);
  if (nf == NULL) {
    free(p);
  } else {
    log_filters = nf;
    log_filters[log_nfilters].prefix = p;
    log_filters[log_nfilters].level = level;
    log_nfilters++;
    recompute_nolock_();
  }
  pthread_mutex_unlock(&log_mutex);
}

void sl_log_set_emit(int on) {
  atomic_store_explicit(&log_emit, on != 0, memory_order_relaxed);
}

size_t sl_log_history(char **out, size_t max) {
  pthread_mutex_lock(&hist_mutex);
  size_t n = hist_count < max ? hist_count : max;
  size_t start = (hist_next + LOG_HISTORY - n) % LOG_HISTORY;
  size_t got = 0;
  for (size_t i = 0; i < n; i++) {
    char *c = strdup(hist[(start + i) % LOG_HISTORY]);
    if (c != NULL) out[got++] = c;
  }
  pthread_mutex_unlock(&hist_mutex);
  return got;
}
