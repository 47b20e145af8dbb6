/*
** replay: runs a fuzz harness over files, without libFuzzer, so that the
** harnesses build with any compiler and their committed corpora replay as
** ordinary tests (ctest, in the plain, ASan and TSan builds).
**
**   fuzz_<name> <dir or file>...
**
** Each file is one case, run in a child process: a crash, a sanitizer
** report or a failed invariant (all of which end the child abnormally)
** fails that case and the others still run. Prints "ok <file>" or
** "FAIL <file>: why" per case and, last, "N passed, N failed".
*/
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

static int passed, failed;

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) return NULL;
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  while (buf != NULL) {
    n += fread(buf + n, 1, cap - n, fp);
    if (n < cap) break;
    uint8_t *nb = realloc(buf, cap * 2);
    if (nb == NULL) free(buf);
    buf = nb;
    cap *= 2;
  }
  int bad = ferror(fp);
  fclose(fp);
  if (bad) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

/* One case: the harness on one file, in a child. */
static void run_file(const char *path) {
  size_t len = 0;
  uint8_t *data = read_all(path, &len);
  if (data == NULL) {
    printf("FAIL %s: cannot read: %s\n", path, strerror(errno));
    failed++;
    return;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    /* a copy of exactly len bytes, so that ASan sees a read past the end */
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL) _exit(3);
    memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
    free(data);
    exit(0);                   /* exit, not _exit: LeakSanitizer runs at exit */
  }
  free(data);
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) {
    printf("FAIL %s: cannot run: %s\n", path, strerror(errno));
    failed++;
  } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
    printf("ok %s\n", path);
    passed++;
  } else if (WIFSIGNALED(st)) {
    printf("FAIL %s: signal %d\n", path, WTERMSIG(st));
    failed++;
  } else {
    printf("FAIL %s: exit status %d\n", path, WEXITSTATUS(st));
    failed++;
  }
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of a directory, in name order. */
static void run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    printf("FAIL %s: cannot open: %s\n", dir, strerror(errno));
    failed++;
    return;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, cap * sizeof *names);
      if (nn == NULL) break;
      names = nn;
    }
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    names[n] = malloc(len);
    if (names[n] == NULL) break;
    snprintf(names[n], len, "%s/%s", dir, e->d_name);
    n++;
  }
  closedir(d);
  if (n > 0) qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) run_file(names[i]);
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <corpus dir or file>...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) run_dir(argv[i]);
    else run_file(argv[i]);
  }
  /* an empty corpus proves nothing */
  if (passed + failed == 0) {
    printf("FAIL: no corpus files\n");
    failed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
