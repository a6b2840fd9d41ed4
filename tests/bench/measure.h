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

#endif
