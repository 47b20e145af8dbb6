/*
** Logging with Rogue's rules (rogue-reference 8.3): names without the
** "pyrogue." prefix, the global level (Error by default), filters that can
** only make a prefix more verbose, the line format and the history ring.
**
** The cases share one process-wide logging state and run in table order:
** the default level is checked first, each case that moves the global
** level puts it back, every case uses its own name prefix, and the
** filters that match everything come last.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "streamlua/log.h"
#include "tt.h"

/* The newest history line (caller frees), or NULL. */
static char *newest(void) {
  char *out[1];
  return sl_log_history(out, 1) == 1 ? out[0] : NULL;
}

/* Splits "<sec>.<usec6> <rest>\n": returns rest without the newline, or
** NULL when the line does not have that shape. */
static char *after_time(char *line, long *sec) {
  char *p = line;
  char *end;
  *sec = strtol(p, &end, 10);
  if (end == p || *end != '.') return NULL;
  p = end + 1;
  for (int i = 0; i < 6; i++, p++)
    if (*p < '0' || *p > '9') return NULL;
  if (*p++ != ' ') return NULL;
  size_t n = strlen(p);
  if (n == 0 || p[n - 1] != '\n') return NULL;
  p[n - 1] = '\0';
  return p;
}

static void marker(const char *text) {
  sl_log_write(sl_log_get("t.marker"), SL_LOG_CRITICAL, "%s", text);
}

/* 1 if the newest history line is the marker `text`. */
static int newest_is_marker(const char *text) {
  char *line = newest();
  if (line == NULL) return 0;
  long sec;
  char *rest = after_time(line, &sec);
  char want[256];
  snprintf(want, sizeof want, "CRITICAL t.marker: %s", text);
  int same = rest != NULL && strcmp(rest, want) == 0;
  free(line);
  return same;
}

static void test_default_level(void) {
  sl_log_set_emit(0);
  CHECK_EQ(sl_log_get_level(), SL_LOG_ERROR);
  CHECK_EQ(SL_LOG_ERROR, 40);
  sl_log *l = sl_log_get("t.default");
  CHECK(l != NULL);
  CHECK_EQ(sl_log_level(l), 40);
  CHECK(sl_log_enabled(l, SL_LOG_ERROR));
  CHECK(sl_log_enabled(l, SL_LOG_CRITICAL));
  CHECK(!sl_log_enabled(l, SL_LOG_WARNING));
  CHECK(!sl_log_enabled(l, SL_LOG_THREAD));
  CHECK(!sl_log_enabled(NULL, SL_LOG_CRITICAL));
}

static void test_level_names(void) {
  CHECK_STR(sl_log_level_name(SL_LOG_DEBUG), "DEBUG");
  CHECK_STR(sl_log_level_name(SL_LOG_INFO), "INFO");
  CHECK_STR(sl_log_level_name(SL_LOG_WARNING), "WARNING");
  CHECK_STR(sl_log_level_name(SL_LOG_THREAD), "THREAD");
  CHECK_STR(sl_log_level_name(SL_LOG_ERROR), "ERROR");
  CHECK_STR(sl_log_level_name(SL_LOG_CRITICAL), "CRITICAL");
  CHECK_EQ(SL_LOG_DEBUG, 10);
  CHECK_EQ(SL_LOG_INFO, 20);
  CHECK_EQ(SL_LOG_WARNING, 30);
  CHECK_EQ(SL_LOG_THREAD, 35);
  CHECK_EQ(SL_LOG_CRITICAL, 50);
  CHECK_EQ(SL_LOG_ALWAYS, 100);
}

static void test_normalisation(void) {
  sl_log *a = sl_log_get("pyrogue.stream.Fifo");
  sl_log *b = sl_log_get("stream.Fifo");
  CHECK(a != NULL);
  CHECK(a == b);                                /* one logger object */
  CHECK_STR(sl_log_name(a), "stream.Fifo");
  CHECK(sl_log_get("stream.Fifo2") != a);
  CHECK_STR(sl_log_normalize("pyrogue.udp.Client"), "udp.Client");
  CHECK_STR(sl_log_normalize("udp.Client"), "udp.Client");
  CHECK_STR(sl_log_normalize("pyrogue"), "");
  CHECK_STR(sl_log_normalize("pyrogueX.a"), "pyrogueX.a");
  CHECK_STR(sl_log_normalize("x.pyrogue.a"), "x.pyrogue.a");
}

static void test_write_and_format(void) {
  sl_log *l = sl_log_get("pyrogue.t.write");
  time_t before = time(NULL);
  sl_log_write(l, SL_LOG_ERROR, "hello %d %s", 42, "there");
  char *line = newest();
  CHECK(line != NULL);
  if (line != NULL) {
    long sec = 0;
    char *rest = after_time(line, &sec);
    CHECK(rest != NULL);
    if (rest != NULL) CHECK_STR(rest, "ERROR t.write: hello 42 there");
    /* time() reads a coarse clock that may trail gettimeofday by a tick */
    CHECK(sec >= (long)before - 1 && sec <= (long)time(NULL) + 1);
    free(line);
  }
  sl_log_write(l, SL_LOG_CRITICAL, "crit");
  line = newest();
  long sec;
  if (CHECK(line != NULL)) {
    char *rest = after_time(line, &sec);
    CHECK(rest != NULL && strcmp(rest, "CRITICAL t.write: crit") == 0);
    free(line);
  }
}

/* Records under the effective level leave no trace. */
static void test_below_level_not_written(void) {
  sl_log *l = sl_log_get("t.below");
  marker("below");
  sl_log_write(l, SL_LOG_WARNING, "not me");
  sl_log_write(l, SL_LOG_DEBUG, "nor me");
  sl_log_write(l, SL_LOG_ERROR - 1, "nor me either");
  CHECK(newest_is_marker("below"));
  sl_log_write(l, SL_LOG_ERROR, "me");
  CHECK(!newest_is_marker("below"));
}

static void test_history(void) {
  sl_log *l = sl_log_get("t.hist");
  for (int i = 0; i < 300; i++) sl_log_write(l, SL_LOG_ERROR, "line %d", i);
  char *out[400];
  size_t n = sl_log_history(out, 400);
  CHECK(n >= 100);
  CHECK(n < 400);                               /* a bounded ring */
  long sec;
  char *last = after_time(out[n - 1], &sec);
  CHECK(last != NULL && strcmp(last, "ERROR t.hist: line 299") == 0);
  char *prev = after_time(out[n - 2], &sec);    /* oldest first */
  CHECK(prev != NULL && strcmp(prev, "ERROR t.hist: line 298") == 0);
  for (size_t i = 0; i < n; i++) free(out[i]);
  CHECK_EQ(sl_log_history(out, 0), 0);
  n = sl_log_history(out, 3);
  CHECK_EQ(n, 3);
  char *third = after_time(out[0], &sec);
  CHECK(third != NULL && strcmp(third, "ERROR t.hist: line 297") == 0);
  for (size_t i = 0; i < n; i++) free(out[i]);
}

static void test_truncation(void) {
  char big[2001];
  memset(big, 'x', 2000);
  big[2000] = '\0';
  sl_log_write(sl_log_get("t.trunc"), SL_LOG_ERROR, "%s", big);
  char *line = newest();
  long sec;
  char *rest = line != NULL ? after_time(line, &sec) : NULL;
  CHECK(rest != NULL);
  if (rest != NULL) {
    const char *msg = strstr(rest, ": ");
    CHECK(msg != NULL);
    if (msg != NULL) CHECK_EQ(strlen(msg + 2), 999);   /* 1000-byte buffer */
  }
  free(line);
}

/* With emit on the line goes to stderr too; with emit off only history. */
static void test_emit(void) {
  fflush(stderr);
  int saved = dup(2);
  FILE *tmp = tmpfile();
  CHECK(saved >= 0 && tmp != NULL);
  if (saved < 0 || tmp == NULL) return;
  dup2(fileno(tmp), 2);
  sl_log *l = sl_log_get("t.emit");
  sl_log_set_emit(1);
  sl_log_write(l, SL_LOG_ERROR, "to stderr");
  sl_log_set_emit(0);
  sl_log_write(l, SL_LOG_ERROR, "history only");
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char buf[512] = {0};
  rewind(tmp);
  size_t got = fread(buf, 1, sizeof buf - 1, tmp);
  fclose(tmp);
  CHECK(got > 0);
  CHECK(strstr(buf, "history only") == NULL);
  long sec;
  char *rest = after_time(buf, &sec);     /* the one line, whole */
  CHECK(rest != NULL && strcmp(rest, "ERROR t.emit: to stderr") == 0);
  char *line = newest();
  CHECK(line != NULL && strstr(line, "ERROR t.emit: history only\n") != NULL);
  free(line);
}

static void test_global_level(void) {
  sl_log *l = sl_log_get("t.global");
  sl_log_set_level(SL_LOG_INFO);
  CHECK_EQ(sl_log_get_level(), 20);
  CHECK_EQ(sl_log_level(l), 20);                /* recomputed */
  CHECK_EQ(sl_log_level(sl_log_get("t.global.new")), 20);
  marker("global");
  sl_log_write(l, SL_LOG_INFO, "info passes");
  CHECK(!newest_is_marker("global"));
  sl_log_set_level(SL_LOG_CRITICAL);
  CHECK_EQ(sl_log_level(l), 50);
  marker("global2");
  sl_log_write(l, SL_LOG_ERROR, "error is quiet now");
  CHECK(newest_is_marker("global2"));
  sl_log_set_level(SL_LOG_ERROR);               /* restore */
  CHECK_EQ(sl_log_level(l), 40);
}

static void test_filter(void) {
  sl_log *before = sl_log_get("t.filt.a");
  sl_log *other = sl_log_get("t.other");
  sl_log_set_filter("pyrogue.t.filt", SL_LOG_INFO);   /* prefix given */
  CHECK_EQ(sl_log_level(before), 20);
  CHECK_EQ(sl_log_level(other), 40);
  CHECK_EQ(sl_log_level(sl_log_get("pyrogue.t.filt.late")), 20);
  CHECK_EQ(sl_log_level(sl_log_get("t.filtx")), 20);  /* plain prefix */
  CHECK_EQ(sl_log_level(sl_log_get("t.fil")), 40);
  CHECK_EQ(sl_log_get_level(), 40);             /* global unchanged */
  marker("filt");
  sl_log_write(before, SL_LOG_INFO, "info through the filter");
  CHECK(!newest_is_marker("filt"));
  marker("filt2");
  sl_log_write(before, SL_LOG_DEBUG, "debug is still below");
  sl_log_write(other, SL_LOG_INFO, "other is not filtered");
  CHECK(newest_is_marker("filt2"));

  sl_log_set_filter("t.second", SL_LOG_WARNING);      /* prefix not given */
  CHECK_EQ(sl_log_level(sl_log_get("pyrogue.t.second.x")), 30);
  CHECK_EQ(sl_log_level(sl_log_get("t.second")), 30);
}

/* A filter never makes a logger quieter than the global level. */
static void test_filter_only_more_verbose(void) {
  sl_log *l = sl_log_get("t.quiet.a");
  sl_log_set_filter("t.quiet", SL_LOG_CRITICAL);
  CHECK_EQ(sl_log_level(l), 40);
  marker("quiet");
  sl_log_write(l, SL_LOG_ERROR, "errors still pass");
  CHECK(!newest_is_marker("quiet"));
  sl_log_set_level(SL_LOG_DEBUG);
  CHECK_EQ(sl_log_level(l), 10);
  sl_log_set_level(SL_LOG_ERROR);
  CHECK_EQ(sl_log_level(l), 40);
}

/* Effective level = min(global, every matching filter); filters add up and
** a later, higher one does not undo an earlier, lower one. */
static void test_min_of_filters(void) {
  sl_log *deep = sl_log_get("t.multi.deep.x");
  sl_log *shallow = sl_log_get("t.multi.y");
  sl_log_set_filter("t.multi", SL_LOG_WARNING);
  sl_log_set_filter("t.multi.deep", SL_LOG_DEBUG);
  CHECK_EQ(sl_log_level(deep), 10);
  CHECK_EQ(sl_log_level(shallow), 30);
  sl_log_set_filter("t.multi.deep", SL_LOG_THREAD);
  CHECK_EQ(sl_log_level(deep), 10);
  sl_log_set_filter("t.multi", SL_LOG_INFO);
  CHECK_EQ(sl_log_level(shallow), 20);
  CHECK_EQ(sl_log_level(deep), 10);
  sl_log_set_level(SL_LOG_DEBUG);
  CHECK_EQ(sl_log_level(shallow), 10);
  sl_log_set_level(SL_LOG_ERROR);
  CHECK_EQ(sl_log_level(shallow), 20);
  CHECK_EQ(sl_log_level(sl_log_get("t.other")), 40);
}

#define LOG_THREADS 4
#define LOG_ROUNDS 2000

static void *log_writer(void *arg) {
  char name[32];
  snprintf(name, sizeof name, "t.thread.%d", (int)(long)arg);
  sl_log *l = sl_log_get(name);
  for (int i = 0; i < LOG_ROUNDS; i++) {
    sl_log_write(l, SL_LOG_ERROR, "n=%d", i);
    if (i % 100 == 0) sl_log_get(name);
  }
  return NULL;
}

/* Writers on several threads while the level changes: every history
** line stays whole (TSan checks the rest). */
static void test_threads(void) {
  pthread_t t[LOG_THREADS];
  for (long i = 0; i < LOG_THREADS; i++)
    pthread_create(&t[i], NULL, log_writer, (void *)i);
  for (int i = 0; i < 200; i++)
    sl_log_set_level(i % 2 ? SL_LOG_ERROR : SL_LOG_WARNING);
  for (int i = 0; i < LOG_THREADS; i++) pthread_join(t[i], NULL);
  sl_log_set_level(SL_LOG_ERROR);
  char *out[256];
  size_t n = sl_log_history(out, 256);
  CHECK(n > 0);
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    long sec;
    char *rest = after_time(out[i], &sec);
    if (rest == NULL || strncmp(rest, "ERROR t.thread.", 15) != 0) bad++;
    free(out[i]);
  }
  CHECK_EQ(bad, 0);
  CHECK_EQ(sl_log_level(sl_log_get("t.thread.0")), 40);
}

/* Last: "pyrogue" (the root) and "" match every logger, old and new. */
static void test_root_filter(void) {
  sl_log *old = sl_log_get("t.default");
  CHECK_EQ(sl_log_level(old), 40);
  sl_log_set_filter("pyrogue", SL_LOG_INFO);
  CHECK_EQ(sl_log_level(old), 20);
  CHECK_EQ(sl_log_level(sl_log_get("zz.unrelated")), 20);
  CHECK_EQ(sl_log_level(sl_log_get("t.multi.deep.x")), 10);  /* still min */
  CHECK_EQ(sl_log_get_level(), 40);
  sl_log_set_filter("", SL_LOG_DEBUG);
  CHECK_EQ(sl_log_level(old), 10);
  CHECK_EQ(sl_log_level(sl_log_get("pyrogue.zz.other")), 10);
}

static const struct tt_case cases[] = {
  {"default global level is Error", test_default_level},
  {"level names", test_level_names},
  {"pyrogue. prefix normalisation", test_normalisation},
  {"line format", test_write_and_format},
  {"records below the level are not written", test_below_level_not_written},
  {"history ring", test_history},
  {"1000-byte message buffer", test_truncation},
  {"emit on/off", test_emit},
  {"global level", test_global_level},
  {"filters, created before and after", test_filter},
  {"a filter only makes more verbose", test_filter_only_more_verbose},
  {"min of global and every matching filter", test_min_of_filters},
  {"threads", test_threads},
  {"root filter matches everything", test_root_filter},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
