/* SPDX-License-Identifier: MIT */
/*
** tap.h: TAP output for the C test programs, each of which includes it once.
** check() prints one line per test; tap_done() prints the plan and gives the
** program's exit status (1 if any test failed). Inline, so a program need
** not use every one.
*/
#ifndef LUPINE_TAP_H
#define LUPINE_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int ntests, nfailed;

/* One TAP line; returns cond, so callers can add diagnostics. Flushed at once:
   a forked step worker must not inherit, and print again, a buffered line. */
__attribute__((format(printf, 2, 3)))
static inline int check(int cond, const char *fmt, ...) {
  va_list ap;
  ntests++;
  if (!cond) nfailed++;
  printf("%sok %d - ", cond ? "" : "not ", ntests);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
  return cond;
}

/* A test pinning an exact string (NULL counts as "(null)"). */
static inline void same(const char *got, const char *want, const char *what) {
  if (!check(got != NULL && want != NULL ? strcmp(got, want) == 0 : got == want, "%s", what))
    printf("#   got:  %s\n#   want: %s\n", got ? got : "(null)", want ? want : "(null)");
}

static inline int tap_done(void) {
  printf("1..%d\n", ntests);
  return nfailed == 0 ? 0 : 1;
}

#endif
