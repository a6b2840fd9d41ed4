/*
** util.c: small helpers shared by every file of the runtime.
*/
#include <stdarg.h>
#include <stdio.h>
#include "lupine_int.h"

void lp_errf(char *err, size_t errsz, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errsz == 0) return;
  va_start(ap, fmt);
  vsnprintf(err, errsz, fmt, ap);
  va_end(ap);
}
