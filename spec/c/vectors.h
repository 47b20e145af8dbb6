/*
** vectors.h: reads the annotated byte vectors of shared/spec/vectors/
** (captured from Rogue) for the C tests.
**
** A file is `#` comment lines, optional `[title]` lines that start a
** block, and `oooo: xx xx ...` hex lines; every hex line adds to the
** current block (a file without titles is one block). tv_load reads
** SL_VECTORS_DIR/<name>.txt (the CMake definition: the source tree's
** ../shared/spec/vectors), tv_comment finds an annotation. Static
** functions only; the caller frees with tv_free.
*/
#ifndef STREAMLUA_TEST_VECTORS_H_INCLUDED_
#define STREAMLUA_TEST_VECTORS_H_INCLUDED_

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SL_VECTORS_DIR
#define SL_VECTORS_DIR "../shared/spec/vectors"
#endif

#define TV_MAX_BLOCKS 32

typedef struct tv_block {
  char title[64];
  uint8_t *bytes;
  size_t n, cap;
} tv_block;

typedef struct tv_file {
  char *text;                    /* the whole file, NUL-terminated */
  tv_block blocks[TV_MAX_BLOCKS];
  size_t nblocks;
} tv_file;

__attribute__((unused)) static void tv_free(tv_file *v) {
  for (size_t i = 0; i < v->nblocks; i++) free(v->blocks[i].bytes);
  free(v->text);
  memset(v, 0, sizeof *v);
}

/* Appends the hex bytes after "oooo:" to block b. */
static void tv_hex_line_(tv_block *b, const char *s) {
  s = strchr(s, ':') + 1;
  for (;;) {
    while (*s == ' ') s++;
    if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1])) return;
    if (b->n == b->cap) {
      b->cap = b->cap ? 2 * b->cap : 256;
      b->bytes = realloc(b->bytes, b->cap);
    }
    b->bytes[b->n++] = (uint8_t)strtoul((char[3]){s[0], s[1], 0}, NULL, 16);
    s += 2;
  }
}

/* Whether a line is a hex line: four hex digits and a colon. */
static int tv_is_hex_line_(const char *s) {
  for (int i = 0; i < 4; i++)
    if (!isxdigit((unsigned char)s[i])) return 0;
  return s[4] == ':';
}

/* Loads vectors/<name>.txt. 0, or -1 when it cannot be read (a message
** says which file). */
__attribute__((unused)) static int tv_load(const char *name, tv_file *v) {
  char path[512];
  memset(v, 0, sizeof *v);
  snprintf(path, sizeof path, "%s/%s.txt", SL_VECTORS_DIR, name);
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "cannot read vector file %s\n", path);
    return -1;
  }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  v->text = calloc(1, (size_t)len + 1);
  if (fread(v->text, 1, (size_t)len, f) != (size_t)len) len = 0;
  fclose(f);
  tv_block *cur = NULL;
  for (char *line = v->text; line != NULL && *line;) {
    char *next = strchr(line, '\n');
    if (line[0] == '[' && v->nblocks < TV_MAX_BLOCKS) {
      cur = &v->blocks[v->nblocks++];
      size_t k = strcspn(line + 1, "]\n");
      if (k >= sizeof cur->title) k = sizeof cur->title - 1;
      memcpy(cur->title, line + 1, k);
    } else if (tv_is_hex_line_(line)) {
      if (cur == NULL) cur = &v->blocks[v->nblocks++];
      tv_hex_line_(cur, line);
    }
    line = next ? next + 1 : NULL;
  }
  return 0;
}

/* The comment text that follows `key` on the first `#` line holding it
** (from `from`, or the file's start when NULL), or NULL. */
__attribute__((unused)) static const char *tv_comment(const tv_file *v,
                                                      const char *from,
                                                      const char *key) {
  const char *s = from ? from : v->text;
  while ((s = strstr(s, key)) != NULL) {
    const char *bol = s;
    while (bol > v->text && bol[-1] != '\n') bol--;
    if (*bol == '#') return s + strlen(key);
    s += strlen(key);
  }
  return NULL;
}

/* The number in the first annotation `key ... = N` (a `#` line holding
** key and then "= " on the same line); -1 when absent. Accepts 0x. */
__attribute__((unused)) static long tv_field(const tv_file *v, const char *key) {
  const char *s = NULL;
  while ((s = tv_comment(v, s, key)) != NULL) {
    const char *eol = strchr(s, '\n');
    const char *eq = strstr(s, "= ");
    if (eq != NULL && (eol == NULL || eq < eol)) return strtol(eq + 2, NULL, 0);
  }
  return -1;
}

#endif
