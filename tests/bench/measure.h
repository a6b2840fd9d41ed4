/* SPDX-License-Identifier: MIT */
/*
** measure.h: the clock and the median shared by the benchmarks' C baselines.
*/
#ifndef LUPINE_MEASURE_H
#define LUPINE_MEASURE_H

#include <stdlib.h>
#include <time.h>

/* Nanoseconds on clock id (CLOCK_MONOTONIC for wall time,
   CLOCK_PROCESS_CPUTIME_ID for this process's CPU time). */
static inline double clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of v[0..n-1], n > 0; sorts v, so v[0] and v[n-1] are then the
   minimum and the maximum. */
static inline double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#include <stdio.h>
#include <string.h>

/* The keys of a baseline: at most max lines of path, each up to
   BARE_PARAMS tab-separated parameter values (strdup'd into keys[i],
   their count in nparams[i]). The number of lines, or -1 (with a message)
   if path cannot be read. */
#define BARE_PARAMS 8
static inline int read_keys(const char *path, char *keys[][BARE_PARAMS], int *nparams,
                            int max) {
  char line[4096];
  int n = 0;
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    perror(path);
    return -1;
  }
  while (n < max && fgets(line, sizeof line, f) != NULL) {
    char *save = NULL, *tok;
    line[strcspn(line, "\n")] = '\0';
    for (tok = strtok_r(line, "\t", &save); tok && nparams[n] < BARE_PARAMS;
         tok = strtok_r(NULL, "\t", &save))
      keys[n][nparams[n]++] = strdup(tok);
    n++;
  }
  fclose(f);
  return n;
}

#endif
