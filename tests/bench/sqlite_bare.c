/* SPDX-License-Identifier: MIT */
/*
** sqlite_bare: the baseline for the Lua benchmarks in tests/bench. Times one SQL statement
** straight through the sqlite3 C API, as a lower bound for what any
** binding can reach: prepared once, then per call bind the parameters,
** step through every row reading every column as text, reset.
**
**   sqlite_bare DB SQL KEYS BATCH ROUNDS
**
** KEYS is a file of parameter lines (tab-separated values for ?1, ?2, ...;
** a value of digits only is bound as an integer); calls cycle through them.
** Prints the median over ROUNDS of the CPU time per call of a batch of
** BATCH calls, in nanoseconds, then the rows the last call returned.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include "measure.h"

#define MAX_KEYS 100000

static int all_digits(const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

int main(int argc, char **argv) {
  static char *keys[MAX_KEYS][BARE_PARAMS];
  static int nparams[MAX_KEYS];
  sqlite3 *db;
  sqlite3_stmt *st;
  int nkeys = 0, batch, rounds, r, b, k = 0, rows = 0;
  double *per_call;
  volatile size_t sink = 0;
  if (argc != 6) {
    fprintf(stderr, "usage: sqlite_bare DB SQL KEYS BATCH ROUNDS\n");
    return 2;
  }
  batch = atoi(argv[4]);
  rounds = atoi(argv[5]);
  if ((nkeys = read_keys(argv[3], keys, nparams, MAX_KEYS)) < 0) return 1;
  if (nkeys == 0 || batch < 1 || rounds < 1) {
    fprintf(stderr, "sqlite_bare: no keys, or a bad batch or round count\n");
    return 2;
  }
  if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, argv[2], -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "sqlite_bare: %s\n", sqlite3_errmsg(db));
    return 1;
  }
  per_call = calloc((size_t)rounds, sizeof *per_call);
  for (r = -1; r < rounds; r++) {   /* round -1 warms up */
    double t0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (b = 0; b < batch; b++, k = (k + 1) % nkeys) {
      int i, ncol;
      for (i = 0; i < nparams[k]; i++) {
        if (all_digits(keys[k][i])) sqlite3_bind_int64(st, i + 1, atoll(keys[k][i]));
        else sqlite3_bind_text(st, i + 1, keys[k][i], -1, SQLITE_STATIC);
      }
      rows = 0;
      ncol = sqlite3_column_count(st);
      while (sqlite3_step(st) == SQLITE_ROW) {
        for (i = 0; i < ncol; i++) {
          sqlite3_column_text(st, i);
          sink += (size_t)sqlite3_column_bytes(st, i);
        }
        rows++;
      }
      sqlite3_reset(st);
    }
    if (r >= 0) per_call[r] = (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - t0) / batch;
  }
  printf("%.0f %d\n", median(per_call, rounds), rows);
  free(per_call);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return 0;
}
