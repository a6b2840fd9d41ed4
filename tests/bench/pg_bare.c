/* SPDX-License-Identifier: MIT */
/*
** pg_bare: the PostgreSQL baseline for tests/bench/catalog_pg.lua. Times one
** SQL statement straight through libpq, as a lower bound for what any
** binding can reach: prepared once, then per call execute it with its
** parameters (as text) and read every column of every row.
**
**   pg_bare CONNINFO SQL KEYS BATCH ROUNDS
**
** KEYS is a file of parameter lines (tab-separated values for $1, $2, ...);
** calls cycle through them. Prints the median over ROUNDS of the wall time
** per call of a batch of BATCH calls, in nanoseconds (the server's work is
** part of every call), then the rows the last call returned.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>
#include "measure.h"

#define MAX_KEYS 100000

int main(int argc, char **argv) {
  static char *keys[MAX_KEYS][BARE_PARAMS];
  static int nparams[MAX_KEYS];
  PGconn *conn;
  PGresult *res;
  int nkeys = 0, batch, rounds, r, b, k = 0, rows = 0;
  double *per_call;
  volatile size_t sink = 0;
  if (argc != 6) {
    fprintf(stderr, "usage: pg_bare CONNINFO SQL KEYS BATCH ROUNDS\n");
    return 2;
  }
  batch = atoi(argv[4]);
  rounds = atoi(argv[5]);
  if ((nkeys = read_keys(argv[3], keys, nparams, MAX_KEYS)) < 0) return 1;
  if (nkeys == 0 || batch <= 0 || rounds <= 0) {
    fprintf(stderr, "pg_bare: no keys, or a batch or rounds that is not positive\n");
    return 2;
  }
  conn = PQconnectdb(argv[1]);
  if (PQstatus(conn) != CONNECTION_OK) {
    fprintf(stderr, "pg_bare: %s", PQerrorMessage(conn));
    return 1;
  }
  res = PQprepare(conn, "q", argv[2], 0, NULL);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    fprintf(stderr, "pg_bare: %s", PQerrorMessage(conn));
    return 1;
  }
  PQclear(res);
  per_call = calloc((size_t)rounds, sizeof *per_call);
  for (r = -1; r < rounds; r++) {   /* round -1 warms up */
    double t0 = clock_ns(CLOCK_MONOTONIC);
    for (b = 0; b < batch; b++) {
      int i, j, n;
      k = (k + 1) % nkeys;
      res = PQexecPrepared(conn, "q", nparams[k], (const char *const *)keys[k], NULL, NULL, 0);
      if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pg_bare: %s", PQerrorMessage(conn));
        return 1;
      }
      rows = PQntuples(res);
      n = PQnfields(res);
      for (i = 0; i < rows; i++)
        for (j = 0; j < n; j++) sink += (size_t)PQgetlength(res, i, j) + (size_t)*PQgetvalue(res, i, j);
      PQclear(res);
    }
    if (r >= 0) per_call[r] = (clock_ns(CLOCK_MONOTONIC) - t0) / batch;
  }
  printf("%.0f %d\n", median(per_call, rounds), rows);
  PQfinish(conn);
  return 0;
}
