/* SPDX-License-Identifier: MIT */
/*
** catalog.c: the catalog interface. Pipelines, runs, step runs, artifacts
** and artifact versions are recorded and read through named statements,
** which a backend (catalog_backend.h) runs in its own SQL: sqlite
** (catalog_sqlite.c) is the one there is. The rest of the runtime sees
** lp_catalog_* and nothing of a database.
**
** What is here is what every backend shares: the named statements and
** the parameters each takes (declared below, checked on every call from
** Lua: the statement and the argument are named when one is wrong), the
** logic of recording (a run's name, a version's number, links), ids and
** times (made here, bound as parameters: no backend makes them in SQL),
** the cache of prepared statements, transactions over the backend's
** statements, and Lua rows. catalog_listing.c builds the listings'
** statements from filter descriptions, with the backend's dialect.
**
** A second backend (PostgreSQL) is an addition: a catalog_<name>.c with
** its own lp_catalog_backend (connect and migrate its schema; prepare,
** bind, step and read; its SQL of every statement declared here, in the
** same order; its dialect's fragments), listed in backends[] before
** sqlite, which takes any target. runtime/README.md has the details.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <uuid.h>
#include "lauxlib.h"
#include "catalog_backend.h"

/* The backends, asked in order whether a target is theirs. */
static const lp_catalog_backend *const backends[] = {&lp_pg_backend, &lp_sqlite_backend};
#define NBACKENDS ((int)(sizeof backends / sizeof backends[0]))

/*
** The named statements. Each names its parameters in order, as
** "name[:type][?]": the type is text unless it says blob, integer or
** number; "?" lets it be nil (NULL). Parameters of type now and new_id
** come last and are the catalog's to fill: the time, and a new random id.
** Statements of kind Q are core.query's, W core.write's (in a
** transaction of their own unless one is open), C this file's own. A
** backend gives each its SQL, in this order (catalog_sqlite.c).
*/
enum { Q = 1, W, C };

typedef struct statement {
  const char *name;
  int kind;
  const char *params;
} statement;

/* The statements this file runs itself, by their place in the table. */
enum {
  S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO, S_PIPELINE_ID,
  S_PIPELINE_NEW, S_RUN_NAME_TAKEN, S_RUN_NEW, S_RUN_FINISH, S_STEP_RUN_NEW, S_STEP_RUN_FINISH,
  S_ARTIFACT_ID, S_ARTIFACT_NEW, S_NEXT_VERSION, S_VERSION_TAKEN, S_VERSION_NEW,
  S_VERSION_NEW_NEXT, S_LINK,
  S_CONTENT_HASHES, S_FILE_HASHES, S_ANY_VERSION, S_STORE_BY_ID, S_STORE_OF_STACK,
  S_BEGIN_ALONE, S_VERSION_NUMBER
};

static const statement statements[] = {
  /* a write transaction, taking the write lock at once so that writers
  ** queue instead of failing half-way; savepoint: a part of one that can
  ** be undone alone */
  [S_BEGIN] = {"begin", C, ""},
  [S_COMMIT] = {"commit", C, ""},
  [S_ROLLBACK] = {"rollback", C, ""},
  [S_SAVEPOINT] = {"savepoint", C, ""},
  [S_RELEASE] = {"release", C, ""},
  [S_ROLLBACK_TO] = {"rollback_to", C, ""},
  /* recording: the id of a name (one row, or none), new rows */
  [S_PIPELINE_ID] = {"pipeline_id", C, "name"},
  [S_PIPELINE_NEW] = {"pipeline_new", C, "id name created"},
  [S_RUN_NAME_TAKEN] = {"run_name_taken", C, "name"},
  [S_RUN_NEW] = {"run_new", C, "id name pipeline_id start_time"},
  [S_RUN_FINISH] = {"run_finish", C, "id status end_time error?"},
  /* a step run created with a status other than running has ended */
  [S_STEP_RUN_NEW] = {"step_run_new", C, "id run_id name step_name status start_time"
                      " parameters:blob cache_key? cached_from? seed:integer? orchestrator?"
                      " cache_parts:blob? cache_note?"},
  [S_STEP_RUN_FINISH] = {"step_run_finish", C, "id status end_time error? traceback?"
                         " output_count:integer? output? attempts:integer?"},
  [S_ARTIFACT_ID] = {"artifact_id", C, "name"},
  [S_ARTIFACT_NEW] = {"artifact_new", C, "id name created"},
  /* the highest numbered version's number plus one (1 for none), in the
  ** transaction that inserts it: the backend keeps two writers from
  ** taking the same number */
  [S_NEXT_VERSION] = {"next_version", C, "artifact_id"},
  [S_VERSION_TAKEN] = {"version_taken", C, "artifact_id version"},
  /* gives the new row's seq; the default store for a NULL store */
  [S_VERSION_NEW] = {"version_new", C, "id artifact_id version version_number:integer? type"
                     " data_type content_hash size:integer stored_size:integer uri"
                     " codec_version:integer created producer_step_run_id? artifact_store_id?"
                     " save_type"},
  /* version_new numbered next (next_version) for an artifact named that,
  ** in one statement after the backend's lock on the artifact: gives the
  ** new row's seq and number; no row if there is no artifact, or a backend
  ** that sends it without waiting for its answer (catalog_pg.c) makes the
  ** artifact first, with the id it is given */
  [S_VERSION_NEW_NEXT] = {"version_new_next", C, "artifact id type data_type content_hash"
                          " size:integer stored_size:integer uri codec_version:integer"
                          " created producer_step_run_id? artifact_store_id? save_type"
                          " new_artifact_id"},
  /* version_seq NULL: looked up by the version's id */
  [S_LINK] = {"link", C, "step_run_id kind name artifact_version_id version_seq:integer?"},
  /* the distinct objects of the versions in a store, values and
  ** visualizations (gc.c) */
  [S_CONTENT_HASHES] = {"content_hashes", C, "artifact_store_id"},
  /* the distinct objects of file and folder versions, in every store:
  ** those whose extracted copies are kept (gc.c) */
  [S_FILE_HASHES] = {"file_hashes", C, ""},
  /* 1 if there is a version at all, in any store (gc.c), else 0 */
  [S_ANY_VERSION] = {"any_version", C, ""},
  /* id, name, flavor, path, and the stack's name (store_by_id: NULL) */
  [S_STORE_BY_ID] = {"store_by_id", C, "id"},
  [S_STORE_OF_STACK] = {"store_of_stack", C, "stack?"},   /* NULL: the active stack */
  /* a write transaction no other write transaction runs beside (gc.c) */
  [S_BEGIN_ALONE] = {"begin_alone", C, ""},
  /* a version's seq and version, once recorded (lp_catalog_version_number) */
  [S_VERSION_NUMBER] = {"version_number", C, "id"},

  /* ---- reads (core.query); the Lua side's module says where each is used ---- */
  {"version_by_id", Q, "id"},
  {"versions_by_id_prefix", Q, "prefix"},   /* at most 11, by id */
  {"latest_version", Q, "name"},
  {"version_by_name", Q, "name version"},
  /* an external input's content stored before under its name, made the
  ** same way (executor.c: lp_versions_record); a NULL name finds none */
  {"same_content_version", Q, "name? content_hash save_type"},
  {"versions_of", Q, "name"},   /* newest first */
  {"artifact_names", Q, ""},
  {"run_by_id", Q, "id"},
  {"run_by_name", Q, "name"},
  {"runs_by_id_prefix", Q, "prefix"},
  {"run_names", Q, ""},
  {"step_runs_of_run", Q, "run_id"},
  {"step_run_by_id", Q, "id"},
  /* a step run's links, in the order they were made, with how each
  ** version was made: a step's own outputs are step_output, what it saved
  ** by hand manual (a deleted version's from its tombstone) */
  {"step_run_artifacts", Q, "step_run_id"},
  {"tags_of", Q, "entity entity_id"},
  {"metadata_of", Q, "entity entity_id"},
  {"artifact_by_name", Q, "name"},
  /* what lineage and a step run's links show for a version deleted after
  ** runs used it */
  {"deleted_version_by_id", Q, "id"},
  /* the step runs that produced or took a version (the uses that make
  ** deleting it need force), outputs first */
  {"version_uses", Q, "version_id"},
  {"versions_of_artifact", Q, "artifact_id"},
  /* the versions a run made (its step runs' outputs and saves) */
  {"versions_of_run", Q, "run_id"},
  /* the uses, by step runs of other runs, of the versions a run made:
  ** deleting the run deletes them, so these need force */
  {"uses_of_run_versions", Q, "run_id"},
  /* tags, with how many objects carry each */
  {"tags", Q, ""},
  {"tag_by_name", Q, "name"},
  /* what a tag is on, grouped by what an exclusive tag would allow one
  ** of: versions by artifact, runs by pipeline; and artifacts themselves */
  {"tagged_with", Q, "tag"},
  {"consumers", Q, "version_id"},
  /* prune_artifacts: versions no step run produced or consumed, and the
  ** artifacts that have no other versions */
  {"prunable_versions", Q, ""},
  {"prunable_artifacts", Q, ""},
  /* the outputs of the latest completed step run with a cache key, with
  ** its seed, output count and lookups (1 if it recorded lookups, which
  ** stale_lookups checks); one row of NULLs but those if it has none.
  ** Without one, a row of NULLs but previous_parts: the cache parts of
  ** the latest earlier run of the same step of the same pipeline (none:
  ** NULL), which say what changed since (one round trip for both) */
  {"cache_hit", Q, "cache_key pipeline step run_id"},
  /* the same for the latest completed step runs with a cache key, at most
  ** limit of them, newest first, each row with its cache_key */
  {"recent_cache_hits", Q, "limit:integer"},
  /* the same for the completed step runs of step_run's pipeline run that
  ** are the latest with their cache key, at most limit of them */
  {"run_cache_hits", Q, "step_run limit:integer"},
  /* the first lookup of a latest version made by a step run that would
  ** now find another latest version (not one the step run made itself):
  ** the artifact, the version found then and the latest now (NULL: none),
  ** newer 1 if the latest now came after it */
  {"stale_lookups", Q, "step_run_id"},
  /* the versions a step run's lookups of a latest version found */
  {"step_run_lookups", Q, "step_run_id"},
  {"running_runs", Q, ""},
  {"pipeline_by_name", Q, "name"},
  {"pipeline_names", Q, ""},
  {"pipeline_by_id", Q, "id"},
  {"pipelines_by_id_prefix", Q, "prefix"},
  {"runs_of_pipeline", Q, "pipeline_id"},
  {"latest_run_of_pipeline", Q, "pipeline_id"},
  {"run_count_of_pipeline", Q, "pipeline_id"},
  {"version_count_of_artifact", Q, "artifact_id"},
  {"latest_version_of_artifact", Q, "artifact_id"},
  /* an artifact's own tags and its versions' tags */
  {"tags_of_artifact", Q, "artifact_id"},
  {"visualizations_of", Q, "version_id"},
  /* stacks and artifact stores */
  {"artifact_stores", Q, ""},
  {"artifact_store_by_name", Q, "name"},
  {"artifact_store_by_id", Q, "id"},
  {"artifact_store_names", Q, ""},
  {"stacks", Q, ""},
  {"stack_by_name", Q, "name"},
  {"active_stack", Q, ""},
  {"stack_names", Q, ""},
  {"stacks_using_store", Q, "artifact_store_id"},
  /* orchestrators: where steps run (lua/lupine/stacks.lua) */
  {"orchestrators", Q, ""},
  {"orchestrator_by_name", Q, "name"},
  {"orchestrator_names", Q, ""},
  {"stacks_using_orchestrator", Q, "name"},
  {"version_count_in_store", Q, "artifact_store_id"},
  /* the objects a store should hold: values (files and folders among them:
  ** data_type), then visualizations, with the versions that use them */
  {"objects_in_store", Q, "artifact_store_id"},
  /* the versions in a store (of one name, with one tag) in order */
  {"versions_to_copy", Q, "artifact_store_id name? tag?"},
  {"visualization_stores", Q, "content_hash"},
  /* lua/lupine/ui.lua: the dashboard. A run's plan; an artifact's page
  ** (its versions' tags and metadata, all at once), a pipeline's */
  {"run_plan", Q, "run_id"},
  {"artifact_by_id", Q, "id"},
  /* the version of the same artifact made just before this one */
  {"previous_version", Q, "version_id"},
  {"tags_of_artifact_versions", Q, "artifact_id"},
  {"metadata_of_artifact_versions", Q, "artifact_id"},
  {"tags_of_pipeline_runs", Q, "pipeline_id"},
  {"metadata_of_pipeline_runs", Q, "pipeline_id"},
  /* lua/lupine/search.lua: the dashboard's search, by a LIKE pattern ('\'
  ** escapes), at most limit rows; metadata whose key or text value
  ** matches, with what it is on */
  {"search_artifacts", Q, "pattern limit:integer"},
  {"search_versions", Q, "pattern limit:integer"},
  {"search_runs", Q, "pattern limit:integer"},
  {"search_pipelines", Q, "pattern limit:integer"},
  {"search_tags", Q, "pattern limit:integer"},
  {"search_metadata", Q, "pattern limit:integer"},
  {"metadata_keys", Q, ""},

  /* ---- writes (core.write), each in one transaction ---- */
  /* Every path that tags comes here (the Client, outputs' configured and
  ** added tags, pipeline tags), so an exclusive tag leaves the other
  ** versions of the artifact, or the other runs of the pipeline, in the
  ** same transaction that adds it. */
  {"tag", W, "entity entity_id tag"},
  {"create_tag", W, "name exclusive:integer"},
  /* a new name, exclusive (0, 1), or NULL: unchanged. Made exclusive only
  ** while on at most one version of each artifact and one run of each
  ** pipeline, and on no artifact itself (no row changes otherwise:
  ** lua/lupine/client.lua says why). */
  {"update_tag", W, "name new_name? exclusive:integer?"},
  {"delete_tag", W, "name"},   /* the tag and its links */
  {"untag", W, "entity entity_id tag"},
  /* the CBOR value, and the value again if it is a number or a string */
  {"set_metadata", W, "entity entity_id key value:blob number:number? text? created"},
  /* the steps it planned as it started (CBOR: [{name, step, after}]) */
  {"set_run_plan", W, "run_id plan:blob"},
  /* the process's start time tells a reused pid apart */
  {"run_process", W, "run_id pid:integer process_start? host? heartbeat:now"},
  /* the run's process is alive (a run without heartbeats for a while, on
  ** another machine, is taken for dead: runtime.c) */
  {"run_heartbeat", W, "run_id heartbeat:now"},
  {"mark_dead", W, "run_id error end_time"},   /* a run whose process died */
  {"add_input", W, "step_run_id name version_id"},
  /* the version a step's lookup of an artifact's latest found (nothing
  ** if that version is gone) */
  {"add_lookup", W, "step_run_id artifact version_id"},
  /* a cache hit carries the lookups of the step run it reuses */
  {"copy_lookups", W, "step_run_id from_step_run_id"},
  /* the version and everything attached to it but the step runs' links
  ** to it, which keep saying what the runs made and used: those get a
  ** tombstone naming the version, and stop finding a version by seq */
  {"delete_version", W, "version_id deleted:now"},
  /* a run's step runs' links, first of a run's deletion
  ** (lua/lupine/lineage.lua), and the tombstones only they named (those
  ** of a version deleted later that was given the same seq may stay a
  ** little longer than needed, never shorter) */
  {"delete_run_links", W, "run_id"},
  /* the rest of a run, once its links and versions are gone. A cache hit
  ** elsewhere that reused one of its step runs keeps its status and loses
  ** the id of a step run that no longer exists. */
  {"delete_run", W, "run_id"},
  {"add_visualization", W, "version_id position:integer type content_hash size:integer"},
  /* the artifact and its tag links, if it has no version */
  {"delete_empty_artifact", W, "artifact_id"},
  {"add_artifact_store", W, "name flavor path? created:now id:new_id"},
  /* only while no stack and no version uses it */
  {"delete_artifact_store", W, "name"},
  {"add_stack", W, "name artifact_store orchestrator jobs:integer? created:now id:new_id"},
  {"delete_stack", W, "name"},   /* only while it is not the active one */
  {"add_orchestrator", W, "name flavor work_dir? partition? account? time_limit?"
                          " requeue:integer sbatch_args? grace:number? created:now id:new_id"},
  /* only while no stack uses it; never 'local' */
  {"delete_orchestrator", W, "name"},
  /* the Slurm job that runs a step run's attempt (lua/lupine/slurm.lua); the
  ** seed an adopted job ran with (NULL: the step run's own) */
  {"set_step_run_job", W, "step_run_id job seed:integer?"},
  {"set_active_stack", W, "name"},
  {"set_run_stack", W, "run_id stack"},
  /* the object was copied to that store */
  {"move_version", W, "version_id artifact_store_id uri"},
};
#define NSTATEMENTS ((int)(sizeof statements / sizeof statements[0]))
_Static_assert(sizeof statements / sizeof statements[0] <= 256, "by_name holds bytes");

/* The most parameters a statement takes. */
#define MAX_PARAMS 16

/* Prepared statements for listings, kept by their text (LRU). */
#define ADHOC_CACHE 32

struct lp_catalog {
  const lp_catalog_backend *be;
  void *db;
  char *path;                                  /* the target: in messages */
  const lp_catalog_sql *sql[NSTATEMENTS];      /* the backend's, or its base's */
  void *st[NSTATEMENTS][LP_CATALOG_SQL_MAX];   /* prepared on first use */
  unsigned char nparams[NSTATEMENTS][LP_CATALOG_SQL_MAX];
  unsigned char by_name[NSTATEMENTS];          /* statements in the order of their names */
  struct { char *sql; void *st; unsigned long used; } adhoc[ADHOC_CACHE];
  unsigned long clock;   /* for least-recently-used eviction of adhoc[] */
  /* the snapshots made (lp_catalog_snapshot) that a reader may still need:
  ** the last one, and those whose readers have not all been released; with
  ** how many readers each has */
  struct { char *path; int readers; } *snaps;
  int nsnaps, made;
  int64_t snap_mark;     /* the backend's mark when the last one was made */
};

/* Fill err from the connection, naming the catalog. */
static int dberr(lp_catalog *c, const char *what, char *err, size_t errsz) {
  lp_errf(err, errsz, "catalog %s: %s failed (%s)", c->path, what, c->be->errmsg(c->db));
  return LUPINE_CATALOG;
}

/* ---- parameters ---- */

enum { P_TEXT, P_BLOB, P_INTEGER, P_NUMBER, P_NOW, P_NEW_ID };

typedef struct param {
  const char *name;
  int len;        /* of name */
  int type;
  int optional;   /* may be nil */
} param;

/* Read the parameter at *spec into p and move past it; 0 at the end. A
** type this file does not know is -1. */
static int next_param(const char **spec, param *p) {
  static const char *const types[] = {"text", "blob", "integer", "number", "now", "new_id"};
  const char *s = *spec, *t;
  int i;
  while (*s == ' ') s++;
  if (*s == '\0') return 0;
  p->name = s;
  while (*s != '\0' && *s != ' ' && *s != ':' && *s != '?') s++;
  p->len = (int)(s - p->name);
  p->type = P_TEXT;
  if (*s == ':') {
    t = ++s;
    while (*s != '\0' && *s != ' ' && *s != '?') s++;
    p->type = -1;
    for (i = 0; i < (int)(sizeof types / sizeof types[0]); i++)
      if ((size_t)(s - t) == strlen(types[i]) && memcmp(t, types[i], (size_t)(s - t)) == 0)
        p->type = i;
  }
  p->optional = *s == '?';
  if (p->optional) s++;
  *spec = s;
  return 1;
}

/* How many parameters statement s declares; -1 if it declares too many, or
** one of a type this file does not know (a slip the first use finds). */
static int count_params(int s) {
  const char *spec = statements[s].params;
  param p;
  int n = 0;
  while (next_param(&spec, &p))
    if (p.type < 0 || ++n > MAX_PARAMS) return -1;
  return n;
}

/* A statement's values, and room for those the catalog makes. */
typedef struct lua_values {
  lp_catalog_value v[MAX_PARAMS];
  int n;
  char now[32];
  char id[LP_ID_LEN + 1];
} lua_values;

static void new_id(char id[LP_ID_LEN + 1]);

static const char *const type_names[] = {"string", "string", "integer", "number"};

/*
** The nargs Lua values from index first, checked against statement s's
** parameters, into a (then the values the catalog makes). A wrong one is
** named as Lua names a bad argument, the statement as the function.
*/
static int lua_args(lua_State *L, int s, int first, int nargs, lua_values *a, char *err,
                    size_t errsz) {
  const char *spec = statements[s].params;
  const char *name = statements[s].name;
  param p;
  int i = 0;   /* the Lua values taken */
  a->n = 0;
  while (next_param(&spec, &p)) {
    lp_catalog_value *v = &a->v[a->n];
    int idx = first + i, t = i < nargs ? lua_type(L, idx) : LUA_TNONE;
    if (p.type < 0 || a->n++ == MAX_PARAMS) {
      lp_errf(err, errsz, "catalog: statement '%s' declares a parameter of an unknown type, "
              "or more than %d", name, MAX_PARAMS);
      return LUPINE_MISUSE;
    }
    if (p.type == P_NOW) {
      lp_catalog_now(a->now);
      v->type = LP_CATALOG_TEXT;
      v->u.s.p = a->now;
      v->u.s.len = strlen(a->now);
      continue;
    }
    if (p.type == P_NEW_ID) {
      new_id(a->id);
      v->type = LP_CATALOG_TEXT;
      v->u.s.p = a->id;
      v->u.s.len = LP_ID_LEN;
      continue;
    }
    i++;
    if (t == LUA_TNIL || t == LUA_TNONE) {
      if (p.optional) {
        v->type = LP_CATALOG_NULL;
        continue;
      }
    } else if ((p.type == P_TEXT || p.type == P_BLOB) && t == LUA_TSTRING) {
      v->type = p.type == P_TEXT ? LP_CATALOG_TEXT : LP_CATALOG_BLOB;
      v->u.s.p = lua_tolstring(L, idx, &v->u.s.len);
      continue;
    } else if (p.type == P_INTEGER && t == LUA_TNUMBER) {
      lua_Integer n;
      int ok;
      n = lua_tointegerx(L, idx, &ok);
      if (!ok) {
        lp_errf(err, errsz, "bad argument #%d to '%s' (%.*s: number has no integer "
                "representation)", i, name, p.len, p.name);
        return LUPINE_MISUSE;
      }
      v->type = LP_CATALOG_INT;
      v->u.i = n;
      continue;
    } else if (p.type == P_NUMBER && t == LUA_TNUMBER) {
      if (lua_isinteger(L, idx)) {
        v->type = LP_CATALOG_INT;
        v->u.i = lua_tointeger(L, idx);
      } else {
        v->type = LP_CATALOG_REAL;
        v->u.d = lua_tonumber(L, idx);
      }
      continue;
    }
    lp_errf(err, errsz, "bad argument #%d to '%s' (%.*s: %s expected, got %s)", i, name,
            p.len, p.name, type_names[p.type],
            t == LUA_TNONE ? "no value" : lua_typename(L, t));
    return LUPINE_MISUSE;
  }
  if (nargs > i) {
    lp_errf(err, errsz, "wrong number of arguments to '%s' (%d expected, got %d)", name, i,
            nargs);
    return LUPINE_MISUSE;
  }
  return LUPINE_OK;
}

/* Statement name of kind (Q or W), or -1: by the sorted index of a handle,
** else (a worker, which has none) by a walk of the table. */
static int find(const lp_catalog *c, const char *name, int kind) {
  int lo = 0, hi = NSTATEMENTS - 1, s = -1;
  if (name == NULL) return -1;
  if (c == NULL) {
    for (lo = 0; lo < NSTATEMENTS && s < 0; lo++)
      if (strcmp(statements[lo].name, name) == 0) s = lo;
  } else {
    while (lo <= hi && s < 0) {
      int mid = (lo + hi) / 2, cmp = strcmp(name, statements[c->by_name[mid]].name);
      if (cmp == 0) s = c->by_name[mid];
      else if (cmp < 0) hi = mid - 1;
      else lo = mid + 1;
    }
  }
  return s >= 0 && statements[s].kind == kind ? s : -1;
}

static int unknown(int kind, const char *name, char *err, size_t errsz) {
  lp_errf(err, errsz, "unknown catalog %s '%s'", kind == Q ? "query" : "write",
          name != NULL ? name : "(none)");
  return LUPINE_MISUSE;
}

int lp_catalog_check(lua_State *L, int write, const char *name, int first, int nargs,
                     char *err, size_t errsz) {
  int kind = write ? W : Q, s = find(NULL, name, kind);
  lua_values a;
  if (s < 0) return unknown(kind, name, err, errsz);
  return lua_args(L, s, first, nargs, &a, err, errsz);
}

/* ---- running statements ---- */

/* Called with each row of a statement's last SQL; anything but LUPINE_OK
** stops the statement with that code. */
typedef int (*row_fn)(void *ud, lp_catalog *c, void *st);

/* Part k of statement s, prepared on first use. */
static void *prepared(lp_catalog *c, int s, int k, const char *what, char *err,
                      size_t errsz) {
  int nparams, declared;
  if (c->st[s][k] != NULL) return c->st[s][k];
  declared = count_params(s);
  if (c->be->prepare(c->db, c->sql[s]->sql[k], 1, &c->st[s][k], &nparams) != 0) {
    dberr(c, what, err, errsz);
    return NULL;
  }
  if (declared < 0 || nparams > declared) {
    lp_errf(err, errsz, "catalog %s: the %s backend's statement '%s' has %d parameters, "
            "where the catalog declares %d (-1: a parameter of an unknown type, or too many)",
            c->path, c->be->name, statements[s].name, nparams, declared);
    c->be->finalize(c->st[s][k]);
    c->st[s][k] = NULL;
    return NULL;
  }
  c->nparams[s][k] = (unsigned char)nparams;
  return c->st[s][k];
}

/* Step st to its end, each row to fn (NULL: rows are not read). */
static int step_all(lp_catalog *c, void *st, const char *what, row_fn fn, void *ud,
                    char *err, size_t errsz) {
  int step, rc = LUPINE_OK;
  while ((step = c->be->step(st)) == LP_CATALOG_ROW)
    if (fn != NULL && (rc = fn(ud, c, st)) != LUPINE_OK) break;
  if (rc == LUPINE_OK && step != LP_CATALOG_DONE && step != LP_CATALOG_ROW)
    rc = dberr(c, what, err, errsz);
  c->be->reset(st);
  return rc;
}

/*
** Run statement s with the n values of args: each of its SQL statements
** in turn, the rows of the last to fn. *changes, unless NULL, adds up the
** rows they changed. what names it in a message.
*/
static int run(lp_catalog *c, int s, const lp_catalog_value *args, int n, const char *what,
               row_fn fn, void *ud, int *changes, char *err, size_t errsz) {
  const char *const *sql = c->sql[s]->sql;
  int k, rc = LUPINE_OK;
  for (k = 0; k < LP_CATALOG_SQL_MAX && sql[k] != NULL && rc == LUPINE_OK; k++) {
    void *st = prepared(c, s, k, what, err, errsz);
    int last = k + 1 == LP_CATALOG_SQL_MAX || sql[k + 1] == NULL;
    if (st == NULL) return LUPINE_CATALOG;
    if (n < c->nparams[s][k]) {   /* a C caller's slip: never bind an earlier use's */
      lp_errf(err, errsz, "catalog: statement '%s' given %d values for %d parameters",
              statements[s].name, n, c->nparams[s][k]);
      return LUPINE_MISUSE;
    }
    /* a Lua error raised while it pushed rows may have left it mid-step */
    c->be->reset(st);
    if (c->be->bind(st, args, c->nparams[s][k]) != 0) {
      rc = dberr(c, what, err, errsz);
      c->be->reset(st);
      break;
    }
    /* a write nobody reads back, or a statement before the last (a lock),
    ** in a transaction or beginning one: the backend may batch it
    ** (PostgreSQL sends it without waiting for its answer) */
    if ((fn == NULL || !last) && changes == NULL && c->be->defer != NULL &&
        (s == S_BEGIN || s == S_BEGIN_ALONE || c->be->in_transaction(c->db))) {
      if (c->be->defer(st) != 0) rc = dberr(c, what, err, errsz);
      c->be->reset(st);
      continue;
    }
    rc = step_all(c, st, what, last ? fn : NULL, ud, err, errsz);
    if (changes != NULL) *changes += (int)c->be->changes(c->db);
  }
  return rc;
}

/* ---- opening ---- */

static int by_name_cmp(const void *a, const void *b) {
  return strcmp(statements[*(const unsigned char *)a].name,
                statements[*(const unsigned char *)b].name);
}

/* The backend that takes target, or NULL. */
static const lp_catalog_backend *backend_of(const char *target) {
  int i;
  for (i = 0; i < NBACKENDS; i++)
    if (backends[i]->accepts(target)) return backends[i];
  return NULL;
}

/* What no backend takes, named without what may follow a scheme (a
** password): "mysql://...", or the target itself. */
static void name_unknown(const char *target, char *out, size_t outsz) {
  const char *scheme = strstr(target, "://");
  if (scheme != NULL) snprintf(out, outsz, "%.*s://...", (int)(scheme - target), target);
  else if (strchr(target, '=') != NULL) snprintf(out, outsz, "a connection string");
  else snprintf(out, outsz, "%s", target);
}

/*
** The SQL of every declared statement: the backend's own where it has
** some, else its base's. A base gives every statement in the order of the
** declarations, and a backend's own must each be declared: one that
** drifted fails every open, naming the statement.
*/
static int resolve_sql(lp_catalog *c, char *err, size_t errsz) {
  const lp_catalog_backend *base = c->be->base != NULL ? c->be->base : c->be;
  int i, j;
  for (i = 0; i < NSTATEMENTS || i < base->nsql; i++) {
    if (i < NSTATEMENTS && i < base->nsql && strcmp(statements[i].name, base->sql[i].name) == 0) {
      c->sql[i] = &base->sql[i];
      continue;
    }
    lp_errf(err, errsz, "catalog %s: the %s backend's statement %d is '%s' where the catalog "
            "declares '%s'", c->path, base->name, i + 1,
            i < base->nsql ? base->sql[i].name : "(none)",
            i < NSTATEMENTS ? statements[i].name : "(none)");
    return LUPINE_CATALOG;
  }
  for (j = 0; base != c->be && j < c->be->nsql; j++) {
    for (i = 0; i < NSTATEMENTS && strcmp(statements[i].name, c->be->sql[j].name) != 0; i++) {}
    if (i == NSTATEMENTS) {
      lp_errf(err, errsz, "catalog %s: the %s backend's statement '%s' is not one the catalog "
              "declares", c->path, c->be->name, c->be->sql[j].name);
      return LUPINE_CATALOG;
    }
    c->sql[i] = &c->be->sql[j];
  }
  return LUPINE_OK;
}

int lp_catalog_check_target(const char *target, char *err, size_t errsz) {
  char name[64];
  if (backend_of(target) != NULL) return LUPINE_OK;
  name_unknown(target, name, sizeof name);
  lp_errf(err, errsz, "catalog '%s': not a catalog Lupine knows: a PostgreSQL catalog is named "
          "by a postgresql:// URI or a key=value connection string, a sqlite catalog by its "
          "file's path", name);
  return LUPINE_MISUSE;
}

static int open_catalog(lp_catalog **out, const char *path, int read_only, char *err,
                        size_t errsz) {
  lp_catalog *c;
  int rc, i;
  *out = NULL;
  c = calloc(1, sizeof *c);
  if (c == NULL || (c->path = strdup(path)) == NULL) {
    free(c);
    lp_errf(err, errsz, "out of memory opening catalog %s", path);
    return LUPINE_NOMEM;
  }
  if ((rc = lp_catalog_check_target(path, err, errsz)) != LUPINE_OK) {
    free(c->path);
    free(c);
    return rc;
  }
  c->be = backend_of(path);
  for (i = 0; i < NSTATEMENTS; i++) c->by_name[i] = (unsigned char)i;
  qsort(c->by_name, NSTATEMENTS, 1, by_name_cmp);
  if ((rc = c->be->open(path, read_only, &c->db, err, errsz)) != LUPINE_OK) {
    lp_catalog_close(c);
    return rc;
  }
  /* messages name the catalog as the backend does (a connection string's
  ** password stays out of them) */
  if (c->be->where != NULL) {
    char *where = strdup(c->be->where(c->db));
    if (where == NULL) {
      lp_catalog_close(c);
      lp_errf(err, errsz, "out of memory");
      return LUPINE_NOMEM;
    }
    free(c->path);
    c->path = where;
  }
  if ((rc = resolve_sql(c, err, errsz)) != LUPINE_OK) {
    lp_catalog_close(c);
    return rc;
  }
  *out = c;
  return LUPINE_OK;
}

int lp_catalog_open(lp_catalog **out, const char *path, char *err, size_t errsz) {
  return open_catalog(out, path, 0, err, errsz);
}

int lp_catalog_open_read_only(lp_catalog **out, const char *path, char *err, size_t errsz) {
  return open_catalog(out, path, 1, err, errsz);
}

/* Remove snapshot i (its file too) from c's list, which stays in order:
** the last is the newest. */
static void drop_snapshot(lp_catalog *c, int i) {
  unlink(c->snaps[i].path);
  free(c->snaps[i].path);
  memmove(&c->snaps[i], &c->snaps[i + 1], (size_t)(c->nsnaps - i - 1) * sizeof *c->snaps);
  c->nsnaps--;
}

int lp_catalog_snapshot(lp_catalog *c, const char *dir, char *path, size_t pathsz, char *err,
                        size_t errsz) {
  size_t n = strlen(dir);
  int64_t mark;
  FILE *f;
  int rc, last = c->nsnaps - 1;
  void *grown;
  path[0] = '\0';
  if (c->be->snapshot == NULL) return LUPINE_OK;
  mark = c->be->mark(c->db);
  /* unchanged since the last one, made in the same folder: that one */
  if (last >= 0 && mark == c->snap_mark && strncmp(c->snaps[last].path, dir, n) == 0 &&
      c->snaps[last].path[n] == '/' && strchr(c->snaps[last].path + n + 1, '/') == NULL) {
    c->snaps[last].readers++;
    snprintf(path, pathsz, "%s", c->snaps[last].path);
    return LUPINE_OK;
  }
  if ((grown = realloc(c->snaps, (size_t)(c->nsnaps + 1) * sizeof *c->snaps)) == NULL) {
    lp_errf(err, errsz, "out of memory");
    return LUPINE_NOMEM;
  }
  c->snaps = grown;
  /* a name no snapshot has: a job still queued may read any earlier one */
  do {
    if (snprintf(path, pathsz, "%s/catalog.%d.db", dir, ++c->made) >= (int)pathsz) {
      lp_errf(err, errsz, "catalog snapshot in %s: the path is too long", dir);
      return LUPINE_MISUSE;
    }
    if ((f = fopen(path, "rb")) != NULL) fclose(f);
  } while (f != NULL);
  if ((rc = c->be->snapshot(c->db, path, err, errsz)) != LUPINE_OK) return rc;
  if ((c->snaps[c->nsnaps].path = strdup(path)) == NULL) {
    unlink(path);
    lp_errf(err, errsz, "out of memory");
    return LUPINE_NOMEM;
  }
  c->snaps[c->nsnaps++].readers = 1;
  c->snap_mark = mark;
  /* the one before, no longer the last, with no reader left */
  if (last >= 0 && c->snaps[last].readers == 0) drop_snapshot(c, last);
  return LUPINE_OK;
}

void lp_catalog_snapshot_done(lp_catalog *c, const char *path) {
  int i;
  for (i = 0; i < c->nsnaps && strcmp(c->snaps[i].path, path) != 0; i++) {}
  if (i == c->nsnaps || --c->snaps[i].readers > 0) return;
  /* the last one stays for the readers to come, if the catalog stays as it is */
  if (i != c->nsnaps - 1) drop_snapshot(c, i);
}

void lp_catalog_close(lp_catalog *c) {
  int s, k;
  if (c == NULL) return;
  for (k = 0; k < c->nsnaps; k++) free(c->snaps[k].path);
  free(c->snaps);
  for (s = 0; s < NSTATEMENTS; s++)
    for (k = 0; k < LP_CATALOG_SQL_MAX; k++) c->be->finalize(c->st[s][k]);
  for (k = 0; k < ADHOC_CACHE; k++) {
    c->be->finalize(c->adhoc[k].st);
    free(c->adhoc[k].sql);
  }
  if (c->db != NULL) c->be->close(c->db);
  free(c->path);
  free(c);
}

int lp_catalog_schema_version(void) {
  return lp_sqlite_backend.schema_version;
}

const char *lp_catalog_sqlite_version(void) {
  return lp_sqlite_backend.library_version();
}

const char *lp_catalog_libpq_version(void) {
  return lp_pg_backend.library_version();
}

const char *lp_catalog_describe(const char *target, char *where, size_t wheresz) {
  const lp_catalog_backend *be = backend_of(target);
  if (be == NULL) {
    name_unknown(target, where, wheresz);
    return "unknown";
  }
  if (be->describe != NULL) be->describe(target, where, wheresz);
  else snprintf(where, wheresz, "%s", target);
  return be->name;
}

const char *lp_catalog_backend_name(const lp_catalog *c) {
  return c->be->name;
}

const char *lp_catalog_where(const lp_catalog *c) {
  return c->path;
}

void lp_catalog_fork_safe(void) {
  int i;
  for (i = 0; i < NBACKENDS; i++)
    if (backends[i]->fork_safe != NULL) backends[i]->fork_safe();
}

const lp_catalog_dialect *lp_catalog_dialect_of(const lp_catalog *c) {
  return c->be->dialect;
}

/* ---- transactions ---- */

static int simple(lp_catalog *c, int s, const char *what, char *err, size_t errsz) {
  return run(c, s, NULL, 0, what, NULL, NULL, NULL, err, errsz);
}

/* Rows read only to wait for them. */
static int skip_row(void *ud, lp_catalog *c, void *st) {
  (void)ud, (void)c, (void)st;
  return LUPINE_OK;
}

/* A transaction begins with the lock its backend takes held, not merely
** asked for: a writer checks its objects are still stored (lp_store_keep)
** only once gc cannot run beside it (gc.c). */
static int begin(lp_catalog *c, int s, char *err, size_t errsz) {
  return run(c, s, NULL, 0, "starting a transaction", skip_row, NULL, NULL, err, errsz);
}

int lp_catalog_begin(lp_catalog *c, char *err, size_t errsz) {
  return begin(c, S_BEGIN, err, errsz);
}

int lp_catalog_begin_alone(lp_catalog *c, char *err, size_t errsz) {
  return begin(c, S_BEGIN_ALONE, err, errsz);
}

int lp_catalog_commit(lp_catalog *c, char *err, size_t errsz) {
  return simple(c, S_COMMIT, "committing", err, errsz);
}

int lp_catalog_savepoint(lp_catalog *c, char *err, size_t errsz) {
  return simple(c, S_SAVEPOINT, "starting a savepoint", err, errsz);
}

int lp_catalog_release(lp_catalog *c, char *err, size_t errsz) {
  return simple(c, S_RELEASE, "releasing a savepoint", err, errsz);
}

void lp_catalog_rollback_savepoint(lp_catalog *c) {
  char err[LP_ERRSZ];
  if (simple(c, S_ROLLBACK_TO, "rolling back to a savepoint", err, sizeof err) == LUPINE_OK)
    simple(c, S_RELEASE, "releasing a savepoint", err, sizeof err);
}

int lp_catalog_send(lp_catalog *c, char *err, size_t errsz) {
  if (c->be->send == NULL || c->be->send(c->db) == 0) return LUPINE_OK;
  return dberr(c, "sending writes", err, errsz);
}

int lp_catalog_in_transaction(lp_catalog *c) {
  return c->be->in_transaction(c->db);
}

void lp_catalog_rollback(lp_catalog *c) {
  char err[LP_ERRSZ];
  if (!c->be->in_transaction(c->db)) return;
  simple(c, S_ROLLBACK, "rolling back", err, sizeof err);
}

/* ---- ids and times ---- */

void lp_catalog_now(char out[32]) {
  lp_catalog_time_ago(0, out);
}

void lp_catalog_time_ago(long seconds, char out[32]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec -= seconds;
  gmtime_r(&ts.tv_sec, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + 19, 32 - 19, ".%06dZ", (int)(ts.tv_nsec / 1000) % 1000000);
}

/* 16 random bytes: from getrandom, one call (libuuid's generator makes five
** system calls an id, mixing in pids and uids) */
static void random_uuid(uuid_t u) {
  if (getrandom(u, sizeof(uuid_t), 0) != (ssize_t)sizeof(uuid_t)) uuid_generate_random(u);
}

/* Mark u as a UUID of this version (RFC 9562 variant) and write it out. */
static void unparse(uuid_t u, int version, char id[LP_ID_LEN + 1]) {
  u[6] = (unsigned char)(version << 4 | (u[6] & 0x0f));
  u[8] = (unsigned char)(0x80 | (u[8] & 0x3f));
  uuid_unparse_lower(u, id);
}

/* A random (version 4) UUID. */
static void new_id(char id[LP_ID_LEN + 1]) {
  uuid_t u;
  random_uuid(u);
  unparse(u, 4, id);
}

/*
** A time-ordered (version 7, RFC 9562) UUID: 48 bits of Unix milliseconds,
** then random bits. Step runs get these, so that the indexes keyed by a
** step run's id (its own, its artifact links', its versions' producer)
** grow at their right edge instead of taking a write in a random leaf per
** step. Users name versions and runs by id prefix, step runs never: those
** keep random ids, whose prefixes tell them apart.
*/
static void new_time_ordered_id(char id[LP_ID_LEN + 1]) {
  uuid_t u;
  struct timespec ts;
  uint64_t ms;
  int i;
  clock_gettime(CLOCK_REALTIME, &ts);
  ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)(ts.tv_nsec / 1000000);
  random_uuid(u);
  for (i = 0; i < 6; i++) u[i] = (unsigned char)(ms >> (40 - 8 * i));
  unparse(u, 7, id);
}

/* ---- values from C ---- */

static lp_catalog_value text(const char *s) {
  lp_catalog_value v;
  if (s == NULL) {
    v.type = LP_CATALOG_NULL;
    return v;
  }
  v.type = LP_CATALOG_TEXT;
  v.u.s.p = s;
  v.u.s.len = strlen(s);
  return v;
}

static lp_catalog_value integer(int64_t i) {
  lp_catalog_value v;
  v.type = LP_CATALOG_INT;
  v.u.i = i;
  return v;
}

static lp_catalog_value blob(const void *p, size_t len) {
  lp_catalog_value v;
  v.type = LP_CATALOG_BLOB;
  v.u.s.p = p;
  v.u.s.len = len;
  return v;
}

static const lp_catalog_value null_value = {LP_CATALOG_NULL, {0}};

/* The first column of the first row, for the statements that give one
** value: an integer, or text (into out, "" for NULL). */
typedef struct first_value {
  int found;
  int64_t i;
  char *out;
  size_t outsz;
} first_value;

static int take_first(void *ud, lp_catalog *c, void *st) {
  first_value *f = ud;
  lp_catalog_value v;
  if (f->found) return LUPINE_OK;
  f->found = 1;
  c->be->column(st, 0, &v);
  if (v.type == LP_CATALOG_INT) f->i = v.u.i;
  if (f->out != NULL)
    snprintf(f->out, f->outsz, "%.*s", v.type == LP_CATALOG_TEXT ? (int)v.u.s.len : 0,
             v.type == LP_CATALOG_TEXT ? (const char *)v.u.s.p : "");
  return LUPINE_OK;
}

/* ---- recording (executor.c, lmodule.c) ---- */

/* Look up the id of name with statement s; *found is 0 if there is none. */
static int find_id(lp_catalog *c, int s, const char *name, char id[LP_ID_LEN + 1],
                   int *found, char *err, size_t errsz) {
  lp_catalog_value arg = text(name);
  first_value f = {0, 0, id, LP_ID_LEN + 1};
  int rc = run(c, s, &arg, 1, "looking up a name", take_first, &f, NULL, err, errsz);
  *found = f.found;
  return rc;
}

/* The id of the named row of statement s's table, inserting it (with
** statement insert) on first use. A backend where another writer may
** insert the same name meanwhile keeps theirs (the insert changes no row):
** its id is looked up again. */
static int get_or_create(lp_catalog *c, int s, int insert, const char *name,
                         char id[LP_ID_LEN + 1], char *err, size_t errsz) {
  char now[32];
  int found, changes = 0, rc = find_id(c, s, name, id, &found, err, errsz);
  if (rc != LUPINE_OK || found) return rc;
  new_id(id);
  lp_catalog_now(now);
  {
    lp_catalog_value args[] = {text(id), text(name), text(now)};
    rc = run(c, insert, args, 3, "inserting a name", NULL, NULL, &changes, err, errsz);
  }
  if (rc != LUPINE_OK || changes > 0) return rc;
  return find_id(c, s, name, id, &found, err, errsz);
}

/* *taken: 1 if statement s gives a row for its arguments. */
static int exists(lp_catalog *c, int s, const lp_catalog_value *args, int n, const char *what,
                  int *taken, char *err, size_t errsz) {
  first_value f = {0, 0, NULL, 0};
  int rc = run(c, s, args, n, what, take_first, &f, NULL, err, errsz);
  *taken = f.found;
  return rc;
}

int lp_catalog_create_run(lp_catalog *c, const char *pipeline, const char *name,
                          const char *start, char id[LP_ID_LEN + 1],
                          char name_out[LP_RUN_NAME_MAX + 1], char *err, size_t errsz) {
  char pipeline_id[LP_ID_LEN + 1], now[32];
  lp_catalog_value arg;
  int rc, taken, n;
  if ((rc = get_or_create(c, S_PIPELINE_ID, S_PIPELINE_NEW, pipeline, pipeline_id,
                          err, errsz)) != LUPINE_OK)
    return rc;
  if (start != NULL) snprintf(now, sizeof now, "%s", start);
  else lp_catalog_now(now);
  if (name != NULL) {
    snprintf(name_out, LP_RUN_NAME_MAX + 1, "%s", name);
    arg = text(name_out);
    if ((rc = exists(c, S_RUN_NAME_TAKEN, &arg, 1, "checking a run name", &taken, err,
                     errsz)) != LUPINE_OK)
      return rc;
    if (taken) {
      lp_errf(err, errsz, "pipeline '%s': a run named '%s' already exists",
              pipeline, name);
      return LUPINE_CONSTRAINT;
    }
  } else {
    /* now is "YYYY-MM-DDTHH:MM:SS...": keep the digits. */
    snprintf(name_out, LP_RUN_NAME_MAX + 1, "%s-%.4s%.2s%.2s-%.2s%.2s%.2s", pipeline,
             now, now + 5, now + 8, now + 11, now + 14, now + 17);
    size_t base = strlen(name_out);
    for (n = 2;; n++) {
      arg = text(name_out);
      if ((rc = exists(c, S_RUN_NAME_TAKEN, &arg, 1, "checking a run name", &taken, err,
                       errsz)) != LUPINE_OK)
        return rc;
      if (!taken) break;
      snprintf(name_out + base, LP_RUN_NAME_MAX + 1 - base, "-%d", n);
    }
  }
  new_id(id);
  {
    lp_catalog_value args[] = {text(id), text(name_out), text(pipeline_id), text(now)};
    return run(c, S_RUN_NEW, args, 4, "creating a run", NULL, NULL, NULL, err, errsz);
  }
}

int lp_catalog_finish_run(lp_catalog *c, const char *run_id, const char *status,
                          const char *error, char *err, size_t errsz) {
  char now[32];
  lp_catalog_now(now);
  {
    lp_catalog_value args[] = {text(run_id), text(status), text(now), text(error)};
    return run(c, S_RUN_FINISH, args, 4, "finishing a run", NULL, NULL, NULL, err, errsz);
  }
}

/* The step run's whole record goes in its one INSERT, and what it ends with
** in one UPDATE: each UPDATE of a row writes the whole row again, and on
** PostgreSQL one of an indexed column every index of it too. */
int lp_catalog_create_step_run(lp_catalog *c, const lp_step_run_spec *spec,
                               char id[LP_ID_LEN + 1], char *err, size_t errsz) {
  char now[32];
  new_time_ordered_id(id);
  lp_catalog_now(now);
  {
    lp_catalog_value args[] = {text(id), text(spec->run_id), text(spec->name),
                               text(spec->step_name), text(spec->status), text(now),
                               blob(spec->parameters, spec->parameters_len),
                               text(spec->cache_key), text(spec->cached_from),
                               spec->seed != NULL ? integer(*spec->seed) : null_value,
                               text(spec->orchestrator),
                               spec->cache_parts != NULL
                                   ? blob(spec->cache_parts, spec->cache_parts_len)
                                   : null_value,
                               text(spec->cache_note)};
    return run(c, S_STEP_RUN_NEW, args, 13, "creating a step run", NULL, NULL, NULL, err,
               errsz);
  }
}

int lp_catalog_finish_step_run(lp_catalog *c, const char *step_run_id,
                               const char *status, const char *error,
                               const char *traceback, int output_count, const char *output,
                               int attempts, char *err, size_t errsz) {
  char now[32];
  lp_catalog_now(now);
  {
    lp_catalog_value args[] = {text(step_run_id), text(status), text(now), text(error),
                               text(traceback),
                               output_count >= 0 ? integer(output_count) : null_value,
                               text(output), attempts >= 0 ? integer(attempts) : null_value};
    return run(c, S_STEP_RUN_FINISH, args, 8, "finishing a step run", NULL, NULL, NULL, err,
               errsz);
  }
}

static int link_artifact(lp_catalog *c, const char *step_run_id, const char *kind,
                         const char *name, const char *version_id, long long version_seq,
                         char *err, size_t errsz) {
  lp_catalog_value args[] = {text(step_run_id), text(kind), text(name), text(version_id),
                             version_seq > 0 ? integer(version_seq) : null_value};
  return run(c, S_LINK, args, 5, "linking an artifact to a step run", NULL, NULL, NULL, err,
             errsz);
}

int lp_catalog_add_input(lp_catalog *c, const char *step_run_id, const char *name,
                         const char *version_id, long long version_seq, char *err,
                         size_t errsz) {
  return link_artifact(c, step_run_id, "input", name, version_id, version_seq, err, errsz);
}

int lp_catalog_add_output(lp_catalog *c, const char *step_run_id, const char *name,
                          const char *version_id, long long version_seq, char *err,
                          size_t errsz) {
  return link_artifact(c, step_run_id, "output", name, version_id, version_seq, err, errsz);
}

/* The number a custom version counts as for automatic numbering: its value
** if it is a plain decimal integer, else 0 (none). */
static int64_t version_number(const char *v) {
  int64_t n = 0;
  size_t i, len = strlen(v);
  if (len == 0 || len > 18) return 0;
  for (i = 0; i < len; i++) {
    if (v[i] < '0' || v[i] > '9') return 0;
    n = n * 10 + (v[i] - '0');
  }
  return n;
}

/* The new row's seq and number, from version_new_next. */
typedef struct numbered {
  int found;
  int64_t seq, number;
} numbered;

static int take_numbered(void *ud, lp_catalog *c, void *st) {
  numbered *n = ud;
  lp_catalog_value v;
  n->found = 1;
  c->be->column(st, 0, &v);
  n->seq = v.type == LP_CATALOG_INT ? v.u.i : 0;
  c->be->column(st, 1, &v);
  n->number = v.type == LP_CATALOG_INT ? v.u.i : 0;
  return LUPINE_OK;
}

/*
** Record spec numbered next, as id, if its artifact exists or the backend
** makes it (*done 1), in one statement: the usual case, which on a catalog
** on a server costs one round trip where finding the artifact, numbering
** and inserting cost three. spec->later, with a backend that defers
** writes: sent without waiting for its answer, its number left for
** lp_catalog_version_number (version "", seq 0).
*/
static int add_next_version(lp_catalog *c, const lp_version_spec *spec, const char *id,
                            const char *now, char version[LP_NAME_MAX + 1], long long *seq,
                            int *done, char *err, size_t errsz) {
  numbered n = {0, 0, 0};
  char artifact_id[LP_ID_LEN + 1];
  int later = spec->later && c->be->defer != NULL && c->be->in_transaction(c->db), rc;
  new_id(artifact_id);
  {
    lp_catalog_value args[] = {
      text(spec->artifact), text(id), text(spec->type), text(spec->data_type),
      text(spec->object->hash), integer((int64_t)spec->object->size),
      integer((int64_t)spec->object->stored_size), text(spec->uri), integer(LP_CODEC_VERSION),
      text(now), text(spec->producer), text(spec->store_id), text(spec->save_type),
      text(artifact_id)};
    rc = run(c, S_VERSION_NEW_NEXT, args, 14, "recording a version",
             later ? NULL : take_numbered, &n, NULL, err, errsz);
  }
  if (later) {
    *done = rc == LUPINE_OK;
    version[0] = '\0';
    *seq = 0;
    return rc;
  }
  *done = rc == LUPINE_OK && n.found;
  if (*done) {
    *seq = (long long)n.seq;
    snprintf(version, LP_NAME_MAX + 1, "%lld", (long long)n.number);
  }
  return rc;
}

int lp_catalog_add_version(lp_catalog *c, const lp_version_spec *spec,
                           char id[LP_ID_LEN + 1], char version[LP_NAME_MAX + 1],
                           long long *seq, char *err, size_t errsz) {
  char artifact_id[LP_ID_LEN + 1], now[32];
  int64_t number;
  first_value f = {0, 0, NULL, 0};
  int rc, done = 0;
  new_id(id);
  lp_catalog_now(now);
  if (spec->version == NULL &&
      (rc = add_next_version(c, spec, id, now, version, seq, &done, err, errsz)) != LUPINE_OK)
    return rc;
  if (!done) {   /* a custom version, or the first of its artifact */
    if ((rc = get_or_create(c, S_ARTIFACT_ID, S_ARTIFACT_NEW, spec->artifact,
                            artifact_id, err, errsz)) != LUPINE_OK)
      return rc;
    if (spec->version != NULL) {
      lp_catalog_value args[] = {text(artifact_id), text(spec->version)};
      int taken;
      if ((rc = exists(c, S_VERSION_TAKEN, args, 2, "checking a version", &taken, err,
                       errsz)) != LUPINE_OK)
        return rc;
      if (taken) {
        lp_errf(err, errsz, "artifact '%s' already has a version '%s'", spec->artifact,
                spec->version);
        return LUPINE_CONSTRAINT;
      }
      snprintf(version, LP_NAME_MAX + 1, "%s", spec->version);
      number = version_number(spec->version);
    } else {
      lp_catalog_value arg = text(artifact_id);
      if ((rc = run(c, S_NEXT_VERSION, &arg, 1, "numbering a version", take_first, &f, NULL,
                    err, errsz)) != LUPINE_OK)
        return rc;
      if (!f.found) {
        lp_errf(err, errsz, "catalog %s: numbering a version failed (no number)", c->path);
        return LUPINE_CATALOG;
      }
      number = f.i;
      snprintf(version, LP_NAME_MAX + 1, "%lld", (long long)number);
    }
    {
      lp_catalog_value args[] = {
        text(id), text(artifact_id), text(spec->version != NULL ? spec->version : version),
        number > 0 ? integer(number) : null_value, text(spec->type), text(spec->data_type),
        text(spec->object->hash), integer((int64_t)spec->object->size),
        integer((int64_t)spec->object->stored_size), text(spec->uri),
        integer(LP_CODEC_VERSION), text(now), text(spec->producer), text(spec->store_id),
        text(spec->save_type)};
      f.found = 0;
      if ((rc = run(c, S_VERSION_NEW, args, 15, "recording a version", take_first, &f, NULL,
                    err, errsz)) != LUPINE_OK)
        return rc;
    }
    *seq = (long long)f.i;
  }
  if (spec->producer == NULL) return LUPINE_OK;
  return link_artifact(c, spec->producer, "output", spec->output, id, *seq, err, errsz);
}

int lp_catalog_version_number(lp_catalog *c, const char *id, char version[LP_NAME_MAX + 1],
                              long long *seq, char *err, size_t errsz) {
  numbered n = {0, 0, 0};
  lp_catalog_value arg = text(id);
  int rc = run(c, S_VERSION_NUMBER, &arg, 1, "reading a version's number", take_numbered, &n,
               NULL, err, errsz);
  if (rc != LUPINE_OK) return rc;
  if (!n.found) {
    lp_errf(err, errsz, "catalog %s: version %s was not recorded", c->path, id);
    return LUPINE_CATALOG;
  }
  *seq = (long long)n.seq;
  snprintf(version, LP_NAME_MAX + 1, "%lld", (long long)n.number);
  return LUPINE_OK;
}

/* ---- named statements from Lua ---- */

/* Push value v (stack: ..., row). */
static void push_value(lua_State *L, const lp_catalog_value *v) {
  switch (v->type) {
    case LP_CATALOG_INT: lua_pushinteger(L, v->u.i); break;
    case LP_CATALOG_REAL: lua_pushnumber(L, v->u.d); break;
    case LP_CATALOG_TEXT: case LP_CATALOG_BLOB:
      lua_pushlstring(L, v->u.s.p, v->u.s.len);
      break;
    default: lua_pushnil(L);
  }
}

/* Rows into the array on top of L: tables keyed by column name, NULL
** columns left out. */
typedef struct rows {
  lua_State *L;
  lua_Integer n;
} rows;

static int push_row(void *ud, lp_catalog *c, void *st) {
  rows *r = ud;
  lua_State *L = r->L;
  lp_catalog_value v;
  int i, ncol = c->be->columns(st);
  lua_createtable(L, 0, ncol);
  for (i = 0; i < ncol; i++) {
    c->be->column(st, i, &v);
    if (v.type == LP_CATALOG_NULL) continue;
    push_value(L, &v);
    lua_setfield(L, -2, c->be->column_name(st, i));
  }
  lua_rawseti(L, -2, ++r->n);
  return LUPINE_OK;
}

int lp_catalog_query(lua_State *L, lp_catalog *c, const char *query,
                     int first, int nargs, char *err, size_t errsz) {
  int s = find(c, query, Q), rc;
  lua_values a;
  rows r = {L, 0};
  if (s < 0) return unknown(Q, query, err, errsz);
  if ((rc = lua_args(L, s, first, nargs, &a, err, errsz)) != LUPINE_OK) return rc;
  lua_newtable(L);
  if ((rc = run(c, s, a.v, a.n, query, push_row, &r, NULL, err, errsz)) != LUPINE_OK)
    lua_pop(L, 1);
  return rc;
}

int lp_catalog_write(lua_State *L, lp_catalog *c, const char *name,
                     int first, int nargs, int *changes, char *err, size_t errsz) {
  int s = find(c, name, W), rc, own;
  lua_values a;
  if (changes != NULL) *changes = 0;
  if (s < 0) return unknown(W, name, err, errsz);
  if ((rc = lua_args(L, s, first, nargs, &a, err, errsz)) != LUPINE_OK) return rc;
  own = !c->be->in_transaction(c->db);
  if (own && (rc = lp_catalog_begin(c, err, errsz)) != LUPINE_OK) return rc;
  rc = run(c, s, a.v, a.n, name, NULL, NULL, changes, err, errsz);
  if (!own) return rc;
  if (rc == LUPINE_OK) return lp_catalog_commit(c, err, errsz);
  lp_catalog_rollback(c);
  return rc;
}

/* ---- statements built at run time (catalog_listing.c) ---- */

/* The plan's lines, joined (stack: ..., buffer). */
typedef struct plan {
  luaL_Buffer *b;
  const char *column;
  int lines;
} plan;

static int push_plan_line(void *ud, lp_catalog *c, void *st) {
  plan *p = ud;
  lp_catalog_value v;
  int i, ncol = c->be->columns(st);
  for (i = 0; i < ncol; i++) {
    if (strcmp(c->be->column_name(st, i), p->column) != 0) continue;
    c->be->column(st, i, &v);
    if (v.type != LP_CATALOG_TEXT) continue;
    if (p->lines++ > 0) luaL_addchar(p->b, '\n');
    luaL_addlstring(p->b, v.u.s.p, v.u.s.len);
  }
  return LUPINE_OK;
}

/* The statement of sql, prepared once and kept by its text (the least
** recently used goes), with the nargs values of args bound; NULL with the
** message in err if it cannot be. */
static void *adhoc(lp_catalog *c, const char *sql, const lp_catalog_value *args, int nargs,
                   char *err, size_t errsz) {
  int i, slot = 0, nparams;
  void *st = NULL;
  for (i = 0; i < ADHOC_CACHE; i++) {
    if (c->adhoc[i].sql != NULL && strcmp(c->adhoc[i].sql, sql) == 0) {
      st = c->adhoc[i].st;
      slot = i;
      break;
    }
    if (c->adhoc[i].used < c->adhoc[slot].used) slot = i;
  }
  if (st == NULL) {
    char *copy = strdup(sql);
    if (copy == NULL) {
      lp_errf(err, errsz, "out of memory");
      return NULL;
    }
    if (c->be->prepare(c->db, sql, 1, &st, &nparams) != 0) {
      free(copy);
      dberr(c, "a listing", err, errsz);
      return NULL;
    }
    c->be->finalize(c->adhoc[slot].st);
    free(c->adhoc[slot].sql);
    c->adhoc[slot].st = st;
    c->adhoc[slot].sql = copy;
  }
  c->adhoc[slot].used = ++c->clock;
  c->be->reset(st);   /* a Lua error may have left it mid-step */
  if (c->be->bind(st, args, nargs) != 0) {
    dberr(c, "a listing", err, errsz);
    c->be->reset(st);
    return NULL;
  }
  return st;
}

int lp_catalog_run_sql(lua_State *L, lp_catalog *c, const char *sql,
                       const lp_catalog_value *args, int nargs, int push, char *err,
                       size_t errsz) {
  void *st = adhoc(c, sql, args, nargs, err, errsz);
  int rc;
  if (st == NULL) return LUPINE_CATALOG;
  if (push == LP_CATALOG_PUSH_ROWS) {
    rows r = {L, 0};
    lua_newtable(L);
    if ((rc = step_all(c, st, "a listing", push_row, &r, err, errsz)) != LUPINE_OK)
      lua_pop(L, 1);
  } else if (push == LP_CATALOG_PUSH_COUNT) {
    first_value f = {0, 0, NULL, 0};
    if ((rc = step_all(c, st, "a listing", take_first, &f, err, errsz)) == LUPINE_OK)
      lua_pushinteger(L, f.i);
  } else {
    luaL_Buffer b;
    plan p = {&b, c->be->dialect->plan_column, 0};
    luaL_buffinit(L, &b);
    rc = step_all(c, st, "a listing", push_plan_line, &p, err, errsz);
    luaL_pushresult(&b);
    if (rc != LUPINE_OK) lua_pop(L, 1);
  }
  return rc;
}

/* A C receiver's rows: each column as text (lp_catalog_rows). */
typedef struct c_rows {
  lp_row_fn fn;
  void *ud;
} c_rows;

static int call_row(void *ud, lp_catalog *c, void *st) {
  c_rows *r = ud;
  const char *text[LP_AV_NCOLS];
  size_t len[LP_AV_NCOLS];
  lp_row row = {0, text, len};
  int i;
  row.ncols = c->be->columns(st);
  if (row.ncols > LP_AV_NCOLS) row.ncols = LP_AV_NCOLS;   /* the widest record */
  for (i = 0; i < row.ncols; i++) text[i] = c->be->column_text(st, i, &len[i]);
  return r->fn(r->ud, &row);
}

int lp_catalog_rows(lp_catalog *c, const char *sql, const lp_catalog_value *args, int nargs,
                    lp_row_fn fn, void *ud, char *err, size_t errsz) {
  void *st = adhoc(c, sql, args, nargs, err, errsz);
  c_rows r = {fn, ud};
  if (st == NULL) return LUPINE_CATALOG;
  return step_all(c, st, "a listing", call_row, &r, err, errsz);
}

/* Each row's columns, typed (lp_catalog_each). */
typedef struct typed_rows {
  lp_catalog_each_fn fn;
  void *ud;
  lp_catalog_value cols[LP_CATALOG_COLS_MAX];
} typed_rows;

static int call_typed(void *ud, lp_catalog *c, void *st) {
  typed_rows *r = ud;
  int i, n = c->be->columns(st);
  if (n > LP_CATALOG_COLS_MAX) n = LP_CATALOG_COLS_MAX;
  for (i = 0; i < n; i++) c->be->column(st, i, &r->cols[i]);
  return r->fn(r->ud, r->cols, n);
}

int lp_catalog_each(lp_catalog *c, const char *sql, const lp_catalog_value *args, int nargs,
                    lp_catalog_each_fn fn, void *ud, char *err, size_t errsz) {
  void *st = adhoc(c, sql, args, nargs, err, errsz);
  typed_rows r;
  if (st == NULL) return LUPINE_CATALOG;
  r.fn = fn;
  r.ud = ud;
  return step_all(c, st, "copying", fn != NULL ? call_typed : NULL, &r, err, errsz);
}

/* ---- for gc.c ---- */

typedef struct each_hash {
  int (*fn)(void *ud, const char *hash);
  void *ud;
  char hash[LP_HASH_STRLEN + 1];
} each_hash;

static int call_each(void *ud, lp_catalog *c, void *st) {
  each_hash *e = ud;
  lp_catalog_value v;
  c->be->column(st, 0, &v);
  snprintf(e->hash, sizeof e->hash, "%.*s", v.type == LP_CATALOG_TEXT ? (int)v.u.s.len : 0,
           v.type == LP_CATALOG_TEXT ? (const char *)v.u.s.p : "");
  return e->fn(e->ud, e->hash);
}

int lp_catalog_each_hash(lp_catalog *c, const char *store_id,
                         int (*fn)(void *ud, const char *hash), void *ud,
                         char *err, size_t errsz) {
  lp_catalog_value arg = text(store_id);
  each_hash e = {fn, ud, ""};
  return run(c, S_CONTENT_HASHES, &arg, 1, "listing content hashes", call_each, &e, NULL, err,
             errsz);
}

int lp_catalog_each_file_hash(lp_catalog *c, int (*fn)(void *ud, const char *hash), void *ud,
                              char *err, size_t errsz) {
  each_hash e = {fn, ud, ""};
  return run(c, S_FILE_HASHES, NULL, 0, "listing content hashes", call_each, &e, NULL, err,
             errsz);
}

int lp_catalog_has_versions(lp_catalog *c, int *any, char *err, size_t errsz) {
  first_value f = {0, 0, NULL, 0};
  int rc = run(c, S_ANY_VERSION, NULL, 0, "counting versions", take_first, &f, NULL, err,
               errsz);
  *any = f.i != 0;
  return rc;
}

/* ---- stacks and artifact stores (lmodule.c) ---- */

static void copy_column(lp_catalog *c, void *st, int i, char *out, size_t outsz) {
  lp_catalog_value v;
  c->be->column(st, i, &v);
  snprintf(out, outsz, "%.*s", v.type == LP_CATALOG_TEXT ? (int)v.u.s.len : 0,
           v.type == LP_CATALOG_TEXT ? (const char *)v.u.s.p : "");
}

static int take_store(void *ud, lp_catalog *c, void *st) {
  lp_store_info *out = ud;
  if (out->id[0] != '\0') return LUPINE_OK;
  copy_column(c, st, 0, out->id, sizeof out->id);
  copy_column(c, st, 1, out->name, sizeof out->name);
  copy_column(c, st, 2, out->flavor, sizeof out->flavor);
  copy_column(c, st, 3, out->path, sizeof out->path);
  copy_column(c, st, 4, out->stack, sizeof out->stack);
  return LUPINE_OK;
}

int lp_catalog_store_info(lp_catalog *c, const char *store_id, const char *stack,
                          lp_store_info *out, char *err, size_t errsz) {
  lp_catalog_value arg = text(store_id != NULL ? store_id : stack);
  int rc;
  memset(out, 0, sizeof *out);
  if ((rc = run(c, store_id != NULL ? S_STORE_BY_ID : S_STORE_OF_STACK, &arg, 1,
                "reading an artifact store", take_store, out, NULL, err, errsz)) != LUPINE_OK)
    return rc;
  if (out->id[0] != '\0') return LUPINE_OK;
  if (store_id != NULL) lp_errf(err, errsz, "artifact store '%s' not found", store_id);
  else if (stack != NULL) lp_errf(err, errsz, "stack '%s' not found", stack);
  else lp_errf(err, errsz, "catalog %s has no active stack", c->path);
  return LUPINE_NOTFOUND;
}
