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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
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

/* The ring itself: every one of 300 alike lines, so the repeat limit is
** off for this case. */
static void test_history(void) {
  sl_log_set_repeat_window(0);
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
  sl_log_set_repeat_window(1000000000LL);
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
** line stays whole (TSan checks the rest). Every line is written: the
** repeat limit is off for this case. */
static void test_threads(void) {
  sl_log_set_repeat_window(0);
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
  sl_log_set_repeat_window(1000000000LL);
}

/* ---- the repeat limit, on a clock the cases step ---- */

static atomic_llong fake_ns;

static long long fake_clock(void) { return atomic_load(&fake_ns); }

static void step_ms(long long ms) { atomic_fetch_add(&fake_ns, ms * 1000000LL); }

/* A marker line no other is alike: its text has no digits and is new. */
static char mark_text[32];

static void mark(void) {
  static unsigned n;
  unsigned v = ++n;
  char *p = mark_text + snprintf(mark_text, sizeof mark_text, "mark-");
  do *p++ = (char)('a' + v % 26); while ((v /= 26) != 0 && p < mark_text + 30);
  *p = '\0';
  marker(mark_text);
}

/* The history lines after the last mark, without their time (each freed
** by the caller); returns the count. */
static size_t since_mark(char **rest, size_t max) {
  char *out[256];
  size_t n = sl_log_history(out, 256), start = n, got = 0;
  char want[64];
  snprintf(want, sizeof want, "CRITICAL t.marker: %s", mark_text);
  long sec;
  char *rests[256];
  for (size_t i = 0; i < n; i++) {
    rests[i] = after_time(out[i], &sec);
    if (rests[i] != NULL && strcmp(rests[i], want) == 0) start = i + 1;
  }
  for (size_t i = 0; i < n; i++) {
    if (i >= start && got < max) rest[got++] = strdup(rests[i] != NULL ? rests[i] : "?");
    free(out[i]);
  }
  return got;
}

static void free_all(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
}

/* The lines after the mark are want[0..n), in order. */
static void expect_since_mark(const char *const *want, size_t n) {
  char *r[64];
  size_t got = since_mark(r, 64);
  CHECK_EQ(got, n);
  for (size_t i = 0; i < got && i < n; i++) CHECK_STR(r[i], want[i]);
  free_all(r, got);
}

/* N of a "(repeated N time(s) in the last T s)" line, 0 if not one. */
static unsigned long long repeated(const char *line) {
  const char *p = strstr(line, " (repeated ");
  unsigned long long n = 0;
  return p != NULL && sscanf(p, " (repeated %llu time", &n) == 1 ? n : 0;
}

static void repeat_setup(void) {
  atomic_store(&fake_ns, 1000000000000LL);
  sl_log_set_clock(fake_clock);
  sl_log_set_repeat_window(1000000000LL);
  sl_log_set_emit(0);
}

/* The stepped clock, a 1 s window, a mark; the logger of that name. */
static sl_log *repeat_start(const char *name) {
  repeat_setup();
  sl_log *l = sl_log_get(name);
  mark();
  return l;
}

/* 200 alike records (numbers differ) within a second: one line; a second
** later the next log call tells the other 199 with the last one's text. */
static void test_repeat_once_then_count(void) {
  sl_log *l = repeat_start("t.rep.udp");
  for (unsigned i = 0; i < 200; i++) {
    sl_log_write(l, SL_LOG_ERROR, "frame of %u bytes refused: over %u", 1500 + i, 1472);
    step_ms(1);
  }
  char *r[16];
  size_t n = since_mark(r, 16);
  CHECK_EQ(n, 1);
  if (n >= 1) CHECK_STR(r[0], "ERROR t.rep.udp: frame of 1500 bytes refused: over 1472");
  free_all(r, n);
  step_ms(800);                        /* 1.0 s after the first */
  sl_log_flush_due();
  n = since_mark(r, 16);
  CHECK_EQ(n, 2);
  if (n >= 2)
    CHECK_STR(r[1], "ERROR t.rep.udp: frame of 1699 bytes refused: over 1472 "
                    "(repeated 199 times in the last 1.0 s)");
  free_all(r, n);
  sl_log_flush_due();                  /* nothing left: nothing more */
  sl_log_flush();
  CHECK_EQ(since_mark(r, 16), 2);
  free_all(r, 2);
}

/* A steady flood: one line a second, and the counts add up to every record. */
static void test_repeat_flood(void) {
  sl_log *l = repeat_start("t.rep.flood");
  for (int i = 0; i < 1000; i++) {     /* 10 s, a record every 10 ms */
    sl_log_write(l, SL_LOG_ERROR, "seq gap %d", i);
    step_ms(10);
  }
  sl_log_flush();
  char *r[64];
  size_t n = since_mark(r, 64);
  CHECK(n >= 10 && n <= 12);
  unsigned long long total = 0;
  for (size_t i = 0; i < n; i++) total += repeated(r[i]) + (i == 0);
  CHECK_EQ(total, 1000);
  CHECK(repeated(r[0]) == 0);
  if (n >= 2) CHECK(strstr(r[1], "(repeated 99 times in the last 1.0 s)") != NULL);
  free_all(r, n);
}

/* Alike means same logger, level and shape: change any and it is written. */
static void test_repeat_what_is_alike(void) {
  repeat_setup();
  sl_log *a = sl_log_get("t.rep.a"), *b = sl_log_get("t.rep.b");
  mark();
  sl_log_write(a, SL_LOG_ERROR, "lost %d of %d", 3, 10);
  sl_log_write(b, SL_LOG_ERROR, "lost %d of %d", 3, 10);        /* logger */
  sl_log_write(a, SL_LOG_CRITICAL, "lost %d of %d", 3, 10);     /* level */
  sl_log_write(a, SL_LOG_ERROR, "lost %d of %d frames", 3, 10); /* text */
  sl_log_write(a, SL_LOG_ERROR, "lost %s", "0x1f");             /* hex is a number */
  sl_log_write(a, SL_LOG_ERROR, "lost %s", "12");
  sl_log_write(a, SL_LOG_ERROR, "lost %d of %d", 7, 100000);    /* alike */
  const char *const written[] = {"ERROR t.rep.a: lost 3 of 10", "ERROR t.rep.b: lost 3 of 10",
                                 "CRITICAL t.rep.a: lost 3 of 10",
                                 "ERROR t.rep.a: lost 3 of 10 frames", "ERROR t.rep.a: lost 0x1f"};
  expect_since_mark(written, 5);
  sl_log_flush();                      /* tells both counts at once */
  char *r[16];
  size_t n = since_mark(r, 16);
  CHECK_EQ(n, 7);
  if (n == 7) {                        /* in the table's order */
    const char *one = "ERROR t.rep.a: lost 12 (repeated 1 time in the last 0.0 s)";
    const char *two = "ERROR t.rep.a: lost 7 of 100000 (repeated 1 time in the last 0.0 s)";
    CHECK((strcmp(r[5], one) == 0 && strcmp(r[6], two) == 0) ||
          (strcmp(r[5], two) == 0 && strcmp(r[6], one) == 0));
  }
  free_all(r, n);
}

/* A record below the level is not counted; window 0 writes every record and
** first tells what was counted. */
static void test_repeat_window_off(void) {
  sl_log *l = repeat_start("t.rep.off");
  sl_log_write(l, SL_LOG_WARNING, "below %d", 1);
  sl_log_write(l, SL_LOG_ERROR, "x %d", 1);
  sl_log_write(l, SL_LOG_ERROR, "x %d", 2);
  sl_log_write(l, SL_LOG_WARNING, "below %d", 2);
  sl_log_set_repeat_window(0);
  CHECK_EQ(sl_log_get_repeat_window(), 0);
  sl_log_write(l, SL_LOG_ERROR, "x %d", 3);
  sl_log_write(l, SL_LOG_ERROR, "x %d", 4);
  const char *const want[] = {"ERROR t.rep.off: x 1",
                              "ERROR t.rep.off: x 2 (repeated 1 time in the last 0.0 s)",
                              "ERROR t.rep.off: x 3", "ERROR t.rep.off: x 4"};
  expect_since_mark(want, 4);
  sl_log_set_repeat_window(1000000000LL);
  CHECK_EQ(sl_log_get_repeat_window(), 1000000000LL);
}

/* A logger set to write every record is out of the limit; others are not. */
static void test_repeat_every(void) {
  repeat_setup();
  sl_log *dump = sl_log_get("t.rep.dump"), *other = sl_log_get("t.rep.other");
  sl_log_set_every(dump, 1);
  mark();
  for (int i = 0; i < 5; i++) {
    sl_log_write(dump, SL_LOG_CRITICAL, "     0x%02x 0x%02x", i, i + 1);
    sl_log_write(other, SL_LOG_CRITICAL, "     0x%02x 0x%02x", i, i + 1);
  }
  char *r[16];
  size_t n = since_mark(r, 16);
  CHECK_EQ(n, 6);
  if (n == 6) CHECK_STR(r[5], "CRITICAL t.rep.dump:      0x04 0x05");
  free_all(r, n);
  sl_log_set_every(dump, 0);
  sl_log_write(dump, SL_LOG_CRITICAL, "     0x%02x 0x%02x", 9, 9);
  sl_log_flush();
  n = since_mark(r, 16);
  CHECK_EQ(n, 8);                      /* dump's new one, other's count */
  free_all(r, n);
  sl_log_flush();
}

/* sl_log_write_each is outside the limit; sl_log_flush ends the windows. */
static void test_repeat_each_and_flush(void) {
  sl_log *l = repeat_start("t.rep.each");
  sl_log_write(l, SL_LOG_ERROR, "try %d failed", 1);
  sl_log_write_each(l, SL_LOG_ERROR, "try %d failed", 2);
  sl_log_write_each(l, SL_LOG_ERROR, "try %d failed", 3);
  sl_log_write(l, SL_LOG_ERROR, "try %d failed", 4);      /* counted */
  sl_log_write_each(l, SL_LOG_WARNING, "below %d", 1);   /* still filtered */
  char *r[16];
  size_t n = since_mark(r, 16);
  CHECK_EQ(n, 3);
  if (n == 3) CHECK_STR(r[2], "ERROR t.rep.each: try 3 failed");
  free_all(r, n);
  sl_log_flush();
  sl_log_write(l, SL_LOG_ERROR, "try %d failed", 5);      /* a new window */
  n = since_mark(r, 16);
  CHECK_EQ(n, 5);
  if (n == 5) {
    CHECK_STR(r[3], "ERROR t.rep.each: try 4 failed (repeated 1 time in the last 0.0 s)");
    CHECK_STR(r[4], "ERROR t.rep.each: try 5 failed");
  }
  free_all(r, n);
  sl_log_flush();
}

/* More shapes than the table holds: a shape pushed out is told first, so
** the counts still add up. */
static void test_repeat_table_bound(void) {
  sl_log *l = repeat_start("t.rep.many");
  unsigned long long sent = 0;
  for (int k = 0; k < 70; k++)         /* 70 shapes, "shape aa"..., twice each */
    for (int twice = 0; twice < 2; twice++) {
      sl_log_write(l, SL_LOG_ERROR, "shape %c%c", 'a' + k / 26, 'a' + k % 26);
      sent++;
    }
  sl_log_flush();
  char *r[256];
  size_t n = since_mark(r, 256);
  unsigned long long total = 0;
  for (size_t i = 0; i < n; i++) total += repeated(r[i]) ? repeated(r[i]) : 1;
  CHECK_EQ(total, sent);
  CHECK_EQ(n, 140);                    /* each shape: its line and its count */
  free_all(r, n);
}

#define REP_THREADS 4
#define REP_ROUNDS 5000

static void *rep_writer(void *arg) {
  sl_log *l = sl_log_get("t.rep.threads");
  for (int i = 0; i < REP_ROUNDS; i++)
    sl_log_write(l, SL_LOG_ERROR, "thread %ld frame %d dropped", (long)arg, i);
  return NULL;
}

/* Writers on several threads, one shape, inside one window: one line, then
** one count of every other record. */
static void test_repeat_threads(void) {
  repeat_setup();
  mark();
  pthread_t t[REP_THREADS];
  for (long i = 0; i < REP_THREADS; i++) pthread_create(&t[i], NULL, rep_writer, (void *)i);
  for (int i = 0; i < REP_THREADS; i++) pthread_join(t[i], NULL);
  sl_log_flush();
  char *r[16];
  size_t n = since_mark(r, 16);
  CHECK_EQ(n, 2);
  if (n == 2) CHECK_EQ(repeated(r[1]), REP_THREADS * REP_ROUNDS - 1);
  free_all(r, n);
}

/* What is counted when the program exits is told then. */
static void test_repeat_told_at_exit(void) {
  int fd[2];
  if (!CHECK(pipe(fd) == 0)) return;
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    dup2(fd[1], 2);
    sl_log_set_emit(1);
    sl_log *l = sl_log_get("t.rep.exit");
    for (int i = 0; i < 3; i++) sl_log_write(l, SL_LOG_ERROR, "gone %d", i);
    exit(0);
  }
  close(fd[1]);
  char buf[1024] = {0};
  size_t got = 0;
  ssize_t k;
  while (got < sizeof buf - 1 && (k = read(fd[0], buf + got, sizeof buf - 1 - got)) > 0)
    got += (size_t)k;
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(strstr(buf, "ERROR t.rep.exit: gone 0\n") != NULL);
  CHECK(strstr(buf, "ERROR t.rep.exit: gone 2 (repeated 2 times in the last ") != NULL);
}

static void test_repeat_restore(void) {
  sl_log_set_clock(NULL);
  sl_log_set_emit(1);
  sl_log *l = sl_log_get("t.rep.real");
  mark();
  sl_log_write(l, SL_LOG_ERROR, "real %d", 1);
  sl_log_write(l, SL_LOG_ERROR, "real %d", 2);
  sl_log_set_emit(0);
  sl_log_flush();
  char *r[16];
  size_t n = since_mark(r, 16);       /* 2 lines, whether or not 1 s passed */
  CHECK_EQ(n, 2);
  unsigned long long total = 0;
  for (size_t i = 0; i < n; i++) total += repeated(r[i]) ? repeated(r[i]) : 1;
  CHECK_EQ(total, 2);
  free_all(r, n);
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
  {"repeat: one line, then the count a second later", test_repeat_once_then_count},
  {"repeat: a flood is a line a second, counts add up", test_repeat_flood},
  {"repeat: same logger, level and shape", test_repeat_what_is_alike},
  {"repeat: below the level, window 0", test_repeat_window_off},
  {"repeat: a logger that writes every record", test_repeat_every},
  {"repeat: write_each, flush ends the windows", test_repeat_each_and_flush},
  {"repeat: more shapes than the table", test_repeat_table_bound},
  {"repeat: threads", test_repeat_threads},
  {"repeat: told at exit", test_repeat_told_at_exit},
  {"repeat: the default clock", test_repeat_restore},
  {"root filter matches everything", test_root_filter},
  {NULL, NULL}
};

int main(void) { return tt_main(cases); }
