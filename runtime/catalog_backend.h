/* SPDX-License-Identifier: MIT */
/*
** catalog_backend.h: between the catalog interface (catalog.c, with the
** listings' statements built in catalog_listing.c) and its backends
** (catalog_sqlite.c). Only the catalog's files include it; the rest of the
** runtime sees lp_catalog_* in lupine_int.h and nothing of a database.
**
** A backend is a table of operations (lp_catalog_backend): open a target
** (creating and migrating its schema), prepare, bind, step and read
** statements, and say whether a transaction is open. It also brings its
** dialect: the SQL of every named statement catalog.c declares
** (lp_catalog_sql, by name), and the few fragments the listings' builder
** needs (lp_catalog_dialect). runtime/README.md says how to add one.
*/
#ifndef LP_CATALOG_BACKEND_H
#define LP_CATALOG_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "lua.h"
#include "lupine_int.h"

/* A value bound to a statement's parameter or read from a row's column.
** Text and blobs are borrowed: a bound one must outlive the statement's
** steps; a column's lasts until the statement steps or resets again. */
typedef enum {
  LP_CATALOG_NULL, LP_CATALOG_INT, LP_CATALOG_REAL, LP_CATALOG_TEXT, LP_CATALOG_BLOB
} lp_catalog_type;

typedef struct lp_catalog_value {
  lp_catalog_type type;
  union {
    int64_t i;
    double d;
    struct { const void *p; size_t len; } s;   /* text (UTF-8, no NUL needed) or blob */
  } u;
} lp_catalog_value;

/* What a step of a statement gives. */
enum { LP_CATALOG_ROW = 1, LP_CATALOG_DONE = 2, LP_CATALOG_FAILED = 3 };

/* The most SQL statements one named statement may run (a write's). */
#define LP_CATALOG_SQL_MAX 8

/* A backend's SQL for one named statement: run in order with the same
** parameters (parameter N of the declaration is the dialect's Nth
** placeholder), in one transaction; the rows of the last are the result.
** A statement with nothing to do in a dialect has no SQL at all. */
typedef struct lp_catalog_sql {
  const char *name;
  const char *sql[LP_CATALOG_SQL_MAX];
} lp_catalog_sql;

/* What a backend's cache_hit, recent_cache_hits and run_cache_hits give
** of a step run s, in either dialect: its output links, each with the
** version it names. */
#define LP_CATALOG_HIT_COLUMNS \
  " s.id AS step_run, s.seed, s.output_count, s.lookups, l.name, v.id, v.seq, v.version," \
  " v.content_hash, v.size, v.data_type, a.name AS artifact, v.artifact_store_id, v.save_type"
#define LP_CATALOG_HIT_LINKS \
  " LEFT JOIN step_run_artifacts l ON l.step_run_id = s.id AND l.kind = 'output'" \
  " LEFT JOIN artifact_versions v ON v.seq = l.version_seq" \
  " LEFT JOIN artifacts a ON a.id = v.artifact_id"
/* cache_hit's, in either dialect: the step run s it finds (cache key ?1)
** joined to a row that is there without one, where a column says what the
** latest earlier run of the same step (?3) of the same pipeline (?2) than
** run ?4 had for cache parts, read only when there is no s. Walking the
** step's runs by name from the latest (step_runs_by_name) finds it in a
** row or two, where walking the pipeline's runs costs a probe each. The
** pipeline's test is wrapped in coalesce, which keeps what it kept (NULL
** was not kept either): PostgreSQL's planner guesses that a plain `= ?2`
** keeps one row in 200, so that walking in order would read 200 rows to
** find one, and read every run of the step and sorted them instead, a cost
** that grew with the catalog's history; it guesses a boolean function
** keeps one in two, and walks. */
#define LP_CATALOG_HIT_OR_PREVIOUS \
  " CASE WHEN s.id IS NULL THEN (SELECT x.cache_parts FROM step_runs x" \
  " WHERE x.name = ?3 AND x.run_id != ?4 AND x.cache_parts IS NOT NULL" \
  " AND coalesce((SELECT p.name FROM pipeline_runs r JOIN pipelines p" \
  " ON p.id = r.pipeline_id WHERE r.id = x.run_id) = ?2, false)" \
  " ORDER BY x.seq DESC LIMIT 1) END AS previous_parts" \
  " FROM (SELECT 1) o LEFT JOIN (SELECT id, seed, output_count, lookups FROM step_runs" \
  " WHERE cache_key = ?1 AND status = 'completed' ORDER BY seq DESC LIMIT 1) s ON 1 = 1" \
  LP_CATALOG_HIT_LINKS

/* The fragments of a dialect that catalog_listing.c builds listings with. */
typedef struct lp_catalog_dialect {
  const char *param;       /* printf format of placeholder N: "?%d", "$%d" */
  /* printf format of a column (first %s) matching a LIKE pattern (second
  ** %s, a placeholder) with '\' as its escape, ignoring ASCII case as
  ** sqlite's LIKE does */
  const char *like;
  /* the FROM of the versions with a given tag in the order of their seq:
  ** tag_links l, then artifact_versions v on l.version_seq, walking the
  ** index on (tag_seq, version_seq) in order rather than sorting */
  const char *tag_leads;
  /* what follows a column that may be NULL in an ORDER BY to sort it up
  ** and down, NULLs first up (sqlite's order: version_number is NULL for
  ** custom versions); others take plain ASC and DESC, which indexes answer */
  const char *ascending, *descending;
  /* a statement's plan: the prefix that asks for it, and the column of
  ** the rows it gives that holds each line */
  const char *explain, *plan_column;
  /* the C API's records (lp_catalog_records): printf format of the names
  ** of the tags on an entity (first %s its kind, second its id's column)
  ** as one text, in order, each ending in '\n'; and the column that keeps
  ** the order a step run's links (step_run_artifacts l) were made in */
  const char *tag_names, *links_in_order;
  /* copying a catalog (catalog_copy.c): what follows INSERT's column list
  ** to keep the rows' own seq, and the printf format (%s the table, twice)
  ** of what makes a table's next seq follow them, or NULL for nothing */
  const char *keep_seq, *seq_after;
  /* what follows the placeholder of a real number, so that an integer
  ** column compares with it as a number (a typed parameter is one type) */
  const char *real_cast;
} lp_catalog_dialect;

typedef struct lp_catalog_backend {
  const char *name;                   /* "sqlite": in messages */
  int schema_version;                 /* the schema this build migrates to */
  /* the SQL of every declared statement, in the order of the
  ** declarations; or, with a base, of those whose SQL differs from the
  ** base's, in any order (the base's is run for the others: its
  ** placeholders are ?N, which prepare takes) */
  const lp_catalog_sql *sql;
  int nsql;
  const struct lp_catalog_backend *base;
  const lp_catalog_dialect *dialect;
  int (*accepts)(const char *target);           /* 1 if target is this backend's */
  /* Connect to target (a file, a connection string), configure the
  ** connection, and create or migrate the schema; a schema newer than
  ** schema_version is refused. The message names the target. read_only
  ** (`lupine exec`): a connection that can never write, to a catalog
  ** whose schema is this build's (one that is not is refused, not
  ** migrated); for sqlite, target is a snapshot, which never changes. */
  int (*open)(const char *target, int read_only, void **db, char *err, size_t errsz);
  void (*close)(void *db);                      /* NULL-safe */
  /* the catalog in messages, if not its target (which may hold a
  ** password): from the target alone, and once connected; NULL: the
  ** target */
  void (*describe)(const char *target, char *out, size_t outsz);
  const char *(*where)(void *db);
  const char *(*errmsg)(void *db);              /* the last failure's text */
  int (*in_transaction)(void *db);              /* 1 while one is open */
  int64_t (*changes)(void *db);                 /* rows the last statement changed */
  /* Prepare one statement; lasting: it will be kept and reused. *nparams
  ** is the highest placeholder it uses. 0, or nonzero with errmsg set. */
  int (*prepare)(void *db, const char *sql, int lasting, void **st, int *nparams);
  void (*finalize)(void *st);                   /* NULL-safe */
  /* Bind the n values to placeholders 1..n, every placeholder st has: no
  ** binding of an earlier use is left. 0, or nonzero with errmsg set. */
  int (*bind)(void *st, const lp_catalog_value *args, int n);
  int (*step)(void *st);                        /* LP_CATALOG_ROW, _DONE or _FAILED */
  /* Run st, bound, where nobody reads its rows or counts its changes, in
  ** an open transaction: the backend may send it now and read its result
  ** later (before the next statement it steps, or the commit, which then
  ** report its failure). NULL: step it. 0, or nonzero with errmsg set. */
  int (*defer)(void *st);
  /* Send what defer keeps back, reading no answer: the server works on it
  ** while the process waits for something else. NULL: defer keeps nothing
  ** back. 0, or nonzero with errmsg set. */
  int (*send)(void *db);
  int (*columns)(void *st);
  const char *(*column_name)(void *st, int i);  /* i from 0 */
  void (*column)(void *st, int i, lp_catalog_value *out);
  /* column i as text (numbers in decimal), a blob as its bytes, NULL for
  ** NULL; *len its length. Lasts as column's does. */
  const char *(*column_text)(void *st, int i, size_t *len);
  void (*reset)(void *st);                      /* back to its start, for its next use */
  /* Make the process's forks safe while other threads use the backend's
  ** library (held locks); NULL if it needs nothing. */
  void (*fork_safe)(void);
  const char *(*library_version)(void);         /* of the library it speaks through */
  /* A snapshot of the catalog as this connection sees it, for readers
  ** that cannot reach it (`lupine exec` on another machine): a new file
  ** at path, made whole before it is there. NULL for a server, which
  ** such readers reach. 0, or nonzero with the message in err. */
  int (*snapshot)(void *db, const char *path, char *err, size_t errsz);
  /* A number that changes whenever the catalog changes (by this
  ** connection or any other); with snapshot. */
  int64_t (*mark)(void *db);
} lp_catalog_backend;

/* catalog_sqlite.c */
extern const lp_catalog_backend lp_sqlite_backend;
/* catalog_pg.c: PostgreSQL, through libpq; sqlite is its base */
extern const lp_catalog_backend lp_pg_backend;

/* ---- catalog.c, for catalog_listing.c ---- */

const lp_catalog_dialect *lp_catalog_dialect_of(const lp_catalog *c);

/* What lp_catalog_run_sql does with the rows. */
enum { LP_CATALOG_PUSH_ROWS, LP_CATALOG_PUSH_COUNT, LP_CATALOG_PUSH_PLAN };

/*
** Run a read statement built at run time (its text from the dialect's
** fragments, every value bound), prepared once and kept by its text, and
** push its rows (an array of tables keyed by column name), the integer in
** the first column of its one row, or its plan (the dialect's plan lines,
** one a line).
*/
int lp_catalog_run_sql(lua_State *L, lp_catalog *c, const char *sql,
                       const lp_catalog_value *args, int nargs, int push, char *err,
                       size_t errsz);

/* The same statements, their rows to a C receiver, each column as text
** (at most LP_AV_NCOLS, the widest record). */
int lp_catalog_rows(lp_catalog *c, const char *sql, const lp_catalog_value *args, int nargs,
                    lp_row_fn fn, void *ud, char *err, size_t errsz);

/* The most columns lp_catalog_each gives of a row. */
#define LP_CATALOG_COLS_MAX 32

/* Called with each row's columns, typed; they last until it returns.
** Anything but LUPINE_OK stops the statement with that code. */
typedef int (*lp_catalog_each_fn)(void *ud, const lp_catalog_value *cols, int ncols);

/* The same statements, their rows typed (catalog_copy.c): at most
** LP_CATALOG_COLS_MAX columns; fn NULL: the rows are not read. */
int lp_catalog_each(lp_catalog *c, const char *sql, const lp_catalog_value *args, int nargs,
                    lp_catalog_each_fn fn, void *ud, char *err, size_t errsz);

#endif
