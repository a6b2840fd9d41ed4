/*
** util.c: small helpers shared by every file of the runtime.
*/
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lupine_int.h"

void lp_errf(char *err, size_t errsz, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errsz == 0) return;
  va_start(ap, fmt);
  vsnprintf(err, errsz, fmt, ap);
  va_end(ap);
}

int lp_process_start(long pid, char out[32]) {
  char path[64], line[1024], *p;
  FILE *f;
  int field;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  if ((f = fopen(path, "r")) == NULL) return -1;
  p = fgets(line, sizeof line, f);
  fclose(f);
  /* the command name (field 2) may hold spaces: count from its ')' */
  if (p == NULL || (p = strrchr(line, ')')) == NULL) return -1;
  for (field = 2; field < 22 && (p = strchr(p + 1, ' ')) != NULL; field++) {}
  if (p == NULL) return -1;
  snprintf(out, 32, "%.*s", (int)strcspn(p + 1, " "), p + 1);
  return 0;
}

int lp_default_jobs(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/*
** For a normal double the first of 15, 16 and 17 digits that reads back
** is the shortest: a text of fewer digits that reads back is within half
** an ulp of x (2^-53 of it), well inside half a step of 15 digits (at
** least 5 * 10^-16 of it), so %.15g prints those digits, its trailing
** zeros dropped. Subnormals hold fewer digits: their search starts at 1.
*/
void lp_float_text(double x, char *buf, size_t size) {
  int prec = fpclassify(x) == FP_SUBNORMAL ? 1 : 15;
  for (; prec < 17; prec++) {
    snprintf(buf, size, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) return;
  }
  snprintf(buf, size, "%.17g", x);
}
