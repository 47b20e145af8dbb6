/*
** Loggers with Rogue's level rules (see log.h). Loggers are interned by
** name and never freed, so a pointer taken once stays valid; their
** effective level is recomputed whenever the global level or a filter
** changes, and read with one relaxed atomic load on the hot path.
*/
#include "streamlua/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define LOG_MSG_MAX 1000
#define LOG_HISTORY 256

struct sl_log {
  struct sl_log *next;
  atomic_int level;            /* effective level */
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

void sl_log_write(sl_log *log, int level, const char *fmt, ...) {
  if (!sl_log_enabled(log, level)) return;
  char msg[LOG_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct timeval tv;
  gettimeofday(&tv, NULL);
  char line[LOG_MSG_MAX + 256];
  snprintf(line, sizeof line, "%ld.%06ld %s %s: %s\n", (long)tv.tv_sec,
           (long)tv.tv_usec, sl_log_level_name(level), log->name, msg);
  if (atomic_load_explicit(&log_emit, memory_order_relaxed))
    fputs(line, stderr);
  history_add(line);
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
