/*
** sl_prefetch_write: PREFETCHW is used exactly when the CPU reports it
** (checked against the kernel's view in /proc/cpuinfo, "3dnowprefetch"),
** and the hint leaves memory as it was.
*/
#include <stdio.h>
#include <string.h>

#include "streamlua/prefetch.h"
#include "tt.h"

static void test_detection(void) {
#if defined(__x86_64__) || defined(__i386__)
  FILE *f = fopen("/proc/cpuinfo", "r");
  CHECK(f != NULL);
  if (f == NULL) return;
  char line[8192];
  int flag = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "flags", 5) != 0) continue;
    flag = strstr(line, " 3dnowprefetch") != NULL;
    break;
  }
  fclose(f);
  CHECK(flag >= 0);
  CHECK_EQ(sl_prefetchw_ok, flag);
#endif
}

static void test_harmless(void) {
  static char buf[4096];
  for (size_t i = 0; i < sizeof buf; i += 64) sl_prefetch_write(buf + i);
  buf[100] = 7;
  CHECK_EQ(buf[100], 7);
}

static const struct tt_case cases[] = {
    {"PREFETCHW is used when the CPU has it", test_detection},
    {"the hint is harmless", test_harmless},
    {NULL, NULL}};

int main(void) { return tt_main(cases); }
