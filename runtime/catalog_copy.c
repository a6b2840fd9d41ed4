/* SPDX-License-Identifier: MIT */
/*
** catalog_copy.c: copying a whole catalog into an empty one, between any
** two backends (`lupine catalog copy --to`: a sqlite file into a
** PostgreSQL catalog, and back).
**
** Every row of every table goes across with its own ids and seq (links by
** seq stay right), in an order that satisfies the foreign keys, in one
** transaction of the target. Before it commits, each table is read back
** from the target and checked against the source: the same number of rows
** and the same values, row by row in the same order (a digest of each
** table's rows, typed), so every version is re-read. A failure leaves the
** target as empty as it was.
*/
#include <stdio.h>
#include <string.h>
#include "catalog_backend.h"

/* The tables, parents first, with their columns (schema 11) and the order
** their rows are read in. */
typedef struct table {
  const char *name, *columns, *order;
} table;

static const table tables[] = {
  {"pipelines", "seq, id, name, created", "seq"},
  {"artifact_stores", "seq, id, name, flavor, path, created", "seq"},
  {"pipeline_runs", "seq, id, name, pipeline_id, status, start_time, end_time, error, pid,"
   " process_start, stack, plan, host, heartbeat", "seq"},
  {"step_runs", "seq, id, run_id, name, step_name, status, start_time, end_time, parameters,"
   " error, traceback, output, attempts, cache_key, cache_parts, cached_from, cache_note, seed,"
   " output_count, lookups, orchestrator, job", "seq"},
  {"artifacts", "seq, id, name, created", "seq"},
  {"artifact_versions", "seq, id, artifact_id, version, version_number, type, data_type,"
   " content_hash, size, stored_size, uri, codec_version, created, producer_step_run_id,"
   " artifact_store_id, save_type", "seq"},
  /* in the order the links were made: the dialect's links_in_order */
  {"step_run_artifacts", "step_run_id, kind, name, artifact_version_id, version_seq", NULL},
  {"tags", "seq, name, exclusive", "seq"},
  {"tag_links", "entity, entity_id, tag_seq, version_seq", "entity, entity_id, tag_seq"},
  {"run_metadata", "seq, entity, entity_id, key, value, value_number, value_text, created",
   "seq"},
  {"visualizations", "artifact_version_id, position, type, content_hash, size",
   "artifact_version_id, position"},
  {"orchestrators", "seq, id, name, flavor, work_dir, partition, account, time_limit, requeue,"
   " sbatch_args, grace, created", "seq"},
  {"stacks", "seq, id, name, artifact_store_id, orchestrator, jobs, active, created", "seq"},
  {"step_run_lookups", "step_run_id, artifact_name, artifact_version_id, version_seq",
   "step_run_id, artifact_name"},
  {"deleted_versions", "id, artifact_name, version, deleted, save_type", "id"},
};
#define NTABLES ((int)(sizeof tables / sizeof tables[0]))

/* What an empty catalog holds: the default store, stack and orchestrator,
** a row each (removed from the target before the source's come; stacks
** first, as they refer to stores). */
static const char *const defaults[] = {"stacks", "artifact_stores", "orchestrators"};
#define NDEFAULTS ((int)(sizeof defaults / sizeof defaults[0]))

/* 1 if the table name holds a row in an empty catalog. */
static int has_default(const char *name) {
  int i;
  for (i = 0; i < NDEFAULTS && strcmp(name, defaults[i]) != 0; i++) {}
  return i < NDEFAULTS;
}

/* The SELECT of table t's rows in order, for catalog c (alias l). */
static void select_sql(lp_catalog *c, const table *t, char *sql, size_t sqlsz) {
  const lp_catalog_dialect *d = lp_catalog_dialect_of(c);
  snprintf(sql, sqlsz, "SELECT %s FROM %s l ORDER BY %s", t->columns, t->name,
           t->order != NULL ? t->order : d->links_in_order);
}

/* A digest of rows: FNV-1a over each value's type and bytes, a mark
** between rows. */
typedef struct digest {
  uint64_t h, rows;
} digest;

static void mix(digest *g, const void *p, size_t n) {
  const unsigned char *b = p;
  size_t i;
  for (i = 0; i < n; i++) g->h = (g->h ^ b[i]) * 1099511628211u;
}

static void mix_row(digest *g, const lp_catalog_value *cols, int n) {
  int i;
  for (i = 0; i < n; i++) {
    /* text and blob alike: sqlite may hold either in a column */
    unsigned char type = cols[i].type == LP_CATALOG_BLOB ? LP_CATALOG_TEXT : cols[i].type;
    mix(g, &type, 1);
    if (type == LP_CATALOG_INT) mix(g, &cols[i].u.i, sizeof cols[i].u.i);
    else if (type == LP_CATALOG_REAL) mix(g, &cols[i].u.d, sizeof cols[i].u.d);
    else if (type == LP_CATALOG_TEXT) {
      uint64_t len = cols[i].u.s.len;
      mix(g, &len, sizeof len);
      mix(g, cols[i].u.s.p, cols[i].u.s.len);
    }
  }
  mix(g, "\n", 1);
  g->rows++;
}

static int digest_row(void *ud, const lp_catalog_value *cols, int n) {
  mix_row(ud, cols, n);
  return LUPINE_OK;
}

/* Copying one table's rows: each into the target, and into the digest. */
typedef struct copying {
  lp_catalog *to;
  const char *insert;
  digest g;
  char *err;
  size_t errsz;
} copying;

static int copy_row(void *ud, const lp_catalog_value *cols, int n) {
  copying *k = ud;
  mix_row(&k->g, cols, n);
  return lp_catalog_each(k->to, k->insert, cols, n, NULL, NULL, k->err, k->errsz);
}

/* *rows: how many rows a COUNT-like query's first column gives. */
static int take_count(void *ud, const lp_catalog_value *cols, int n) {
  if (n > 0 && cols[0].type == LP_CATALOG_INT) *(int64_t *)ud = cols[0].u.i;
  return LUPINE_OK;
}

/* The target must hold nothing but what a new catalog holds. */
static int check_empty(lp_catalog *to, char *err, size_t errsz) {
  char sql[256];
  int i, rc;
  for (i = 0; i < NTABLES; i++) {
    int64_t n = 0;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tables[i].name);
    if ((rc = lp_catalog_each(to, sql, NULL, 0, take_count, &n, err, errsz)) != LUPINE_OK)
      return rc;
    if (n > has_default(tables[i].name)) {
      lp_errf(err, errsz, "catalog copy: the catalog %s is not empty (%s has %lld row%s); "
              "copy into a new one", lp_catalog_where(to), tables[i].name, (long long)n,
              n == 1 ? "" : "s");
      return LUPINE_CONSTRAINT;
    }
  }
  return LUPINE_OK;
}

/* Copy table t from one catalog to the other, then read it back from the
** target and compare. */
static int copy_table(lp_catalog *from, lp_catalog *to, const table *t, int64_t *rows,
                      char *err, size_t errsz) {
  const lp_catalog_dialect *d = lp_catalog_dialect_of(to);
  char sql[1024], insert[1536];
  digest back = {14695981039346656037u, 0};
  copying k = {to, insert, {14695981039346656037u, 0}, err, errsz};
  int i, n = 1, len, rc;
  for (i = 0; t->columns[i] != '\0'; i++) n += t->columns[i] == ',';
  len = snprintf(insert, sizeof insert, "INSERT INTO %s(%s)%s VALUES (", t->name, t->columns,
                 d->keep_seq);
  for (i = 1; i <= n; i++) {
    len += snprintf(insert + len, sizeof insert - (size_t)len, d->param, i);
    len += snprintf(insert + len, sizeof insert - (size_t)len, i < n ? ", " : ")");
  }
  select_sql(from, t, sql, sizeof sql);
  if ((rc = lp_catalog_each(from, sql, NULL, 0, copy_row, &k, err, errsz)) != LUPINE_OK)
    return rc;
  if (d->seq_after != NULL && strncmp(t->columns, "seq,", 4) == 0) {
    snprintf(sql, sizeof sql, d->seq_after, t->name, t->name);
    if ((rc = lp_catalog_each(to, sql, NULL, 0, NULL, NULL, err, errsz)) != LUPINE_OK) return rc;
  }
  select_sql(to, t, sql, sizeof sql);
  if ((rc = lp_catalog_each(to, sql, NULL, 0, digest_row, &back, err, errsz)) != LUPINE_OK)
    return rc;
  if (back.rows != k.g.rows || back.h != k.g.h) {
    lp_errf(err, errsz, "catalog copy: %s read back from %s differs from %s (%llu rows "
            "copied, %llu read back); nothing was copied", t->name, lp_catalog_where(to),
            lp_catalog_where(from), (unsigned long long)k.g.rows,
            (unsigned long long)back.rows);
    return LUPINE_CORRUPT;
  }
  *rows = (int64_t)k.g.rows;
  return LUPINE_OK;
}

int lp_catalog_copy(lp_catalog *from, lp_catalog *to, lp_copy_count counts[LP_COPY_TABLES],
                    char *err, size_t errsz) {
  char sql[128];
  int i, rc;
  /* (an empty catalog copied into itself would say it copied nothing) */
  if (strcmp(lp_catalog_backend_name(from), lp_catalog_backend_name(to)) == 0 &&
      strcmp(lp_catalog_where(from), lp_catalog_where(to)) == 0) {
    lp_errf(err, errsz, "catalog copy: %s is the catalog in use, which is what is copied; "
            "to fill it from a catalog folder's file, copy with LUPINE_CATALOG unset "
            "(LUPINE_CATALOG= lupine catalog copy --to ...)", lp_catalog_where(to));
    return LUPINE_MISUSE;
  }
  if ((rc = lp_catalog_begin(to, err, errsz)) != LUPINE_OK) return rc;
  if ((rc = check_empty(to, err, errsz)) != LUPINE_OK) goto failed;
  for (i = 0; i < NDEFAULTS; i++) {
    snprintf(sql, sizeof sql, "DELETE FROM %s", defaults[i]);
    if ((rc = lp_catalog_each(to, sql, NULL, 0, NULL, NULL, err, errsz)) != LUPINE_OK)
      goto failed;
  }
  for (i = 0; i < NTABLES; i++) {
    counts[i].table = tables[i].name;
    if ((rc = copy_table(from, to, &tables[i], &counts[i].rows, err, errsz)) != LUPINE_OK)
      goto failed;
  }
  if ((rc = lp_catalog_commit(to, err, errsz)) != LUPINE_OK) goto failed;
  return LUPINE_OK;
failed:
  lp_catalog_rollback(to);
  return rc;
}

_Static_assert(NTABLES == LP_COPY_TABLES, "lupine_int.h counts every table");
