/* SPDX-License-Identifier: MIT */
/*
** catalog_pg.c: the PostgreSQL catalog backend, the shared one: many
** processes on many machines write one catalog on a server. The only file
** that sees libpq-fe.h.
**
** A target is a libpq connection string or URI (postgresql://..., or
** "host=... dbname=..."); the password comes from where libpq looks for
** one (PGPASSWORD, ~/.pgpass) or from the target itself, and is never
** written anywhere nor shown: messages name the catalog by user, host,
** port, database and schema only. The catalog's tables live in the
** connection's current schema: the first of its search_path, made if it
** is missing, so that one database holds as many catalogs as it has
** schemas.
**
** Its SQL is sqlite's (the base backend) where the two agree, run with
** $N for ?N; below is its own where they differ:
**   - BEGIN takes no lock but a shared one that gc's transaction takes
**     alone (gc.c says why): recording a version locks its artifact's row
**     (SELECT ... FOR UPDATE) to the end of the transaction, and
**     making a run holds a transaction-scoped advisory lock, so two
**     processes never take one number or one run name;
**   - ON CONFLICT for sqlite's INSERT OR IGNORE / OR REPLACE; IS DISTINCT
**     FROM for IS NOT; a parameter that may be NULL is cast;
**   - step_run_artifacts keeps its links' order in an identity column
**     (ord), sqlite in its rowid; tag_links' version_seq is filled by
**     triggers in plpgsql;
**   - LIKE ignores the case of ASCII letters only, as sqlite's does, by
**     folding both sides with translate;
**   - a schema_version table counts the migrations applied; the schema
**     starts from one baseline equal to sqlite's migrations 1 to 9.
** Writes that nobody reads back, in a transaction, go in libpq's pipeline
** mode: sent at once, their results read at the next statement that
** answers (or the commit), one round trip for many (pg_defer).
** Results come as text and are typed here from their columns' types:
** booleans are the integers 0 and 1, as sqlite gives them.
**
** libpq is loaded when the first PostgreSQL target is read (dlopen), not
** linked: it brings 21 libraries (Kerberos, LDAP, ...) whose loading
** made every start of the program 1.7 times slower (an empty script's
** `lupine run` 12.9 M -> 21.5 M instructions), for everyone, PostgreSQL
** or not. LUPINE_LIBPQ names another library to load.
*/
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <pg_config.h>
#include "catalog_backend.h"

/* ---- libpq, loaded on first use ---- */

/* Every function of libpq this file calls, as pq.<name>. */
#define PQ_FUNCTIONS(X) \
  X(PQclear) X(PQcmdTuples) X(PQconnectdb) X(PQconninfoFree) X(PQconninfoParse) X(PQdb) \
  X(PQdescribePrepared) X(PQenterPipelineMode) X(PQerrorMessage) X(PQescapeIdentifier) \
  X(PQescapeLiteral) X(PQexec) X(PQexecPrepared) X(PQexitPipelineMode) X(PQfinish) X(PQflush) \
  X(PQfname) \
  X(PQfreemem) X(PQftype) X(PQgetResult) X(PQgetisnull) X(PQgetlength) X(PQgetvalue) \
  X(PQhost) X(PQnfields) X(PQnparams) X(PQntuples) X(PQparamtype) X(PQpipelineStatus) \
  X(PQpipelineSync) X(PQport) X(PQprepare) X(PQresultErrorField) X(PQresultStatus) \
  X(PQsendQueryPrepared) X(PQserverVersion) X(PQsetNoticeProcessor) X(PQstatus) \
  X(PQtransactionStatus) X(PQuser)

typedef struct pq_api {
#define PQ_MEMBER(f) __typeof__(f) *f;
  PQ_FUNCTIONS(PQ_MEMBER)
#undef PQ_MEMBER
} pq_api;

/* The library's functions, or why it could not be loaded: set once (under
** pthread_once, so catalogs opened at once on several threads load it
** once), then only read. It stays loaded, as libpq cannot be unloaded
** safely. */
static pq_api pq;
static int pq_loaded;
static char pq_why[400];
static pthread_once_t pq_once = PTHREAD_ONCE_INIT;

static void load_pq(void) {
  const char *name = getenv("LUPINE_LIBPQ");
  const char *missing = NULL;
  void *lib;
  pq_api a;
  if (name == NULL || name[0] == '\0') name = "libpq.so.5";
  if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) == NULL) {
    snprintf(pq_why, sizeof pq_why, "%s", dlerror());
    return;
  }
  /* POSIX guarantees a function's address survives the cast from void * */
#define PQ_LOAD(f) \
  if ((a.f = (__typeof__(f) *)dlsym(lib, #f)) == NULL && missing == NULL) missing = #f;
  PQ_FUNCTIONS(PQ_LOAD)
#undef PQ_LOAD
  if (missing != NULL) {
    snprintf(pq_why, sizeof pq_why, "%s has no %s: libpq 14 or newer is needed", name, missing);
    dlclose(lib);
    return;
  }
  pq = a;
  pq_loaded = 1;
}

/* 1 with libpq's functions in pq, else 0 with why in pq_why. */
static int pq_load(void) {
  pthread_once(&pq_once, load_pq);
  return pq_loaded;
}


/* The migrations after the baseline: the same as sqlite's from 10 on. */
#define BASELINE 9

/* The schema as sqlite's migrations 1 to 9 left it, in one step. */
static const char baseline[] =
  "CREATE TABLE pipelines(\n"
  "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
  "  id text NOT NULL UNIQUE,\n"
  "  name text NOT NULL UNIQUE,\n"
  "  created text NOT NULL);\n"
  "CREATE TABLE pipeline_runs(\n"
  "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
  "  id text NOT NULL UNIQUE,\n"
  "  name text NOT NULL UNIQUE,\n"
  "  pipeline_id text NOT NULL REFERENCES pipelines(id),\n"
  "  status text NOT NULL,\n"
  "  start_time text NOT NULL,\n"
  "  end_time text,\n"
  "  error text,\n"
  "  pid bigint,\n"
  "  process_start text,\n"
  "  stack text,\n"
  "  plan bytea);\n"
  "CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs(pipeline_id, seq);\n"
  "CREATE INDEX pipeline_runs_by_status ON pipeline_runs(status, seq);\n"
  "CREATE TABLE step_runs(\n"
  "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
  "  id text NOT NULL UNIQUE,\n"
  "  run_id text NOT NULL REFERENCES pipeline_runs(id),\n"
  "  name text NOT NULL,\n"
  "  step_name text NOT NULL,\n"
  "  status text NOT NULL,\n"
  "  start_time text NOT NULL,\n"
  "  end_time text,\n"
  "  parameters bytea,\n"
  "  error text,\n"
  "  traceback text,\n"
  "  output text,\n"
  "  attempts bigint,\n"
  "  cache_key text,\n"
  "  cache_parts bytea,\n"
  "  cached_from text,\n"
  "  cache_note text,\n"
  "  seed bigint,\n"
  "  output_count bigint,\n"
  "  lookups bigint,\n"
  "  UNIQUE(run_id, name));\n"
  "CREATE INDEX step_runs_by_cache_key ON step_runs(cache_key, seq)"
  " WHERE status = 'completed';\n"
  "CREATE INDEX step_runs_by_run ON step_runs(run_id, seq);\n"
  "CREATE INDEX step_runs_by_name ON step_runs(name, seq) WHERE cache_parts IS NOT NULL;\n"
  "CREATE TABLE artifacts(\n"
  "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
  "  id text NOT NULL UNIQUE,\n"
  "  name text NOT NULL UNIQUE,\n"
  "  created text NOT NULL);\n"
  "CREATE TABLE artifact_stores(\n"
  "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
  "  id text NOT NULL UNIQUE,\n"
  "  name text NOT NULL UNIQUE,\n"
  "  flavor text NOT NULL,\n"
  "  path text,\n"
  "  created text NOT NULL);\n"
  "CREATE TABLE artifact_versions(\n"
  "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
  "  id text NOT NULL UNIQUE,\n"
  "  artifact_id text NOT NULL REFERENCES artifacts(id),\n"
  "  version text NOT NULL,\n"
  "  version_number bigint,\n"
  "  type text NOT NULL,\n"
  "  data_type text NOT NULL,\n"
  "  content_hash text NOT NULL,\n"
  "  size bigint NOT NULL,\n"
  "  stored_size bigint NOT NULL,\n"
  "  uri text NOT NULL,\n"
  "  codec_version bigint NOT NULL,\n"
  "  created text NOT NULL,\n"
  "  producer_step_run_id text REFERENCES step_runs(id),\n"
  "  artifact_store_id text NOT NULL DEFAULT '" LP_DEFAULT_STORE_ID "',\n"
  "  save_type text NOT NULL DEFAULT 'step_output'"
  " CHECK (save_type IN ('step_output', 'manual', 'external', 'registered')),\n"
  "  UNIQUE(artifact_id, version));\n"
  "CREATE INDEX artifact_versions_by_artifact ON artifact_versions(artifact_id, seq);\n"
  "CREATE INDEX artifact_versions_by_number ON artifact_versions(artifact_id, version_number);\n"
  "CREATE INDEX artifact_versions_by_producer ON artifact_versions(producer_step_run_id);\n"
  "CREATE INDEX artifact_versions_by_hash ON artifact_versions(content_hash);\n"
  "CREATE INDEX artifact_versions_by_type ON artifact_versions(type, seq);\n"
  "CREATE INDEX artifact_versions_by_created ON artifact_versions(created);\n"
  "CREATE INDEX artifact_versions_by_store ON artifact_versions(artifact_store_id,"
  " content_hash);\n"
  /* ord: the order links were made in (sqlite's rowid) */
  "CREATE TABLE step_run_artifacts(\n"
  "  step_run_id text NOT NULL REFERENCES step_runs(id),\n"
  "  kind text NOT NULL CHECK (kind IN ('input', 'output')),\n"
  "  name text NOT NULL,\n"
  "  artifact_version_id text NOT NULL,\n"
  "  version_seq bigint NOT NULL,\n"
  "  ord bigint GENERATED ALWAYS AS IDENTITY,\n"
  "  PRIMARY KEY (step_run_id, kind, name));\n"
  "CREATE INDEX step_run_artifacts_by_version ON step_run_artifacts(version_seq, kind);\n"
  "CREATE TABLE tags(\n"
  "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
  "  name text NOT NULL UNIQUE,\n"
  "  exclusive bigint NOT NULL DEFAULT 0);\n"
  "CREATE TABLE tag_links(\n"
  "  entity text NOT NULL CHECK (entity IN ('artifact_version', 'artifact', 'pipeline_run')),\n"
  "  entity_id text NOT NULL,\n"
  "  tag_seq bigint NOT NULL REFERENCES tags(seq),\n"
  "  version_seq bigint,\n"
  "  PRIMARY KEY (entity, entity_id, tag_seq));\n"
  "CREATE INDEX tag_links_by_tag ON tag_links(tag_seq, entity, entity_id);\n"
  "CREATE INDEX tag_links_by_version ON tag_links(tag_seq, version_seq)\n"
  "  WHERE entity = 'artifact_version';\n"
  /* a version's tag links hold its seq (sqlite's migration 4): filled in
  ** whichever of the link and the version is written first, for writers
  ** that leave it out */
  "CREATE FUNCTION tag_links_version_seq() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN\n"
  "  IF NEW.entity = 'artifact_version' AND NEW.version_seq IS NULL THEN\n"
  "    NEW.version_seq := (SELECT seq FROM artifact_versions WHERE id = NEW.entity_id);\n"
  "  END IF;\n"
  "  RETURN NEW;\n"
  "END$$;\n"
  "CREATE TRIGGER tag_links_version_seq BEFORE INSERT ON tag_links\n"
  "  FOR EACH ROW EXECUTE FUNCTION tag_links_version_seq();\n"
  "CREATE FUNCTION artifact_versions_tag_seq() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN\n"
  "  UPDATE tag_links SET version_seq = NEW.seq\n"
  "    WHERE entity = 'artifact_version' AND entity_id = NEW.id;\n"
  "  RETURN NULL;\n"
  "END$$;\n"
  "CREATE TRIGGER artifact_versions_tag_seq AFTER INSERT ON artifact_versions\n"
  "  FOR EACH ROW EXECUTE FUNCTION artifact_versions_tag_seq();\n"
  /* also for writers that turn foreign keys off (session_replication_role
  ** = replica, as a restore does), which turns ordinary triggers off too */
  "ALTER TABLE tag_links ENABLE ALWAYS TRIGGER tag_links_version_seq;\n"
  "ALTER TABLE artifact_versions ENABLE ALWAYS TRIGGER artifact_versions_tag_seq;\n"
  "CREATE TABLE run_metadata(\n"
  "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
  "  entity text NOT NULL CHECK (entity IN ('artifact_version', 'step_run', 'pipeline_run')),\n"
  "  entity_id text NOT NULL,\n"
  "  key text NOT NULL,\n"
  "  value bytea NOT NULL,\n"
  "  value_number double precision,\n"
  "  value_text text,\n"
  "  created text NOT NULL,\n"
  "  UNIQUE (entity, entity_id, key));\n"
  "CREATE INDEX run_metadata_by_key ON run_metadata(key, entity, value_number);\n"
  "CREATE TABLE visualizations(\n"
  "  artifact_version_id text NOT NULL REFERENCES artifact_versions(id),\n"
  "  position bigint NOT NULL,\n"
  "  type text NOT NULL CHECK (type IN ('html', 'svg', 'csv', 'markdown', 'text')),\n"
  "  content_hash text NOT NULL,\n"
  "  size bigint NOT NULL,\n"
  "  PRIMARY KEY (artifact_version_id, position));\n"
  "CREATE INDEX visualizations_by_hash ON visualizations(content_hash);\n"
  "CREATE TABLE stacks(\n"
  "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
  "  id text NOT NULL UNIQUE,\n"
  "  name text NOT NULL UNIQUE,\n"
  "  artifact_store_id text NOT NULL REFERENCES artifact_stores(id),\n"
  "  orchestrator text NOT NULL DEFAULT 'local',\n"
  "  jobs bigint,\n"
  "  active bigint NOT NULL DEFAULT 0,\n"
  "  created text NOT NULL);\n"
  "CREATE UNIQUE INDEX stacks_active ON stacks(active) WHERE active = 1;\n"
  "INSERT INTO artifact_stores(id, name, flavor, path, created) VALUES ("
  "'" LP_DEFAULT_STORE_ID "', 'default', 'local', NULL,"
  " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'));\n"
  "INSERT INTO stacks(id, name, artifact_store_id, orchestrator, active, created) VALUES ("
  "'" LP_DEFAULT_STACK_ID "', 'default', '" LP_DEFAULT_STORE_ID "', 'local', 1,"
  " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'));\n"
  "CREATE TABLE step_run_lookups(\n"
  "  step_run_id text NOT NULL,\n"
  "  artifact_name text NOT NULL,\n"
  "  artifact_version_id text NOT NULL,\n"
  "  version_seq bigint NOT NULL,\n"
  "  PRIMARY KEY (step_run_id, artifact_name));\n"
  "CREATE TABLE deleted_versions(\n"
  "  id text PRIMARY KEY,\n"
  "  artifact_name text NOT NULL,\n"
  "  version text NOT NULL,\n"
  "  deleted text NOT NULL,\n"
  "  save_type text NOT NULL DEFAULT 'step_output');\n";

/* Migrations after the baseline, in order: [0] is schema 10. */
static const char *const migrations[] = {
  /* 10: orchestrators, with the built-in 'local' one; the orchestrator
  ** that ran a step run and its Slurm job */
  "CREATE TABLE orchestrators(\n"
  "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
  "  id text NOT NULL UNIQUE,\n"
  "  name text NOT NULL UNIQUE,\n"
  "  flavor text NOT NULL,\n"
  "  work_dir text,\n"
  "  partition text,\n"
  "  account text,\n"
  "  time_limit text,\n"
  "  requeue bigint NOT NULL DEFAULT 0,\n"
  "  sbatch_args text,\n"
  "  grace double precision,\n"
  "  created text NOT NULL);\n"
  "INSERT INTO orchestrators(id, name, flavor, created) VALUES ("
  "'" LP_DEFAULT_ORCHESTRATOR_ID "', 'local', 'local',"
  " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'));\n"
  "ALTER TABLE step_runs ADD COLUMN orchestrator text;\n"
  "ALTER TABLE step_runs ADD COLUMN job text;\n",
  /* 11: the machine running a run and when it last said it was alive */
  "ALTER TABLE pipeline_runs ADD COLUMN host text;\n"
  "ALTER TABLE pipeline_runs ADD COLUMN heartbeat text;\n",
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))
#define SCHEMA_VERSION (BASELINE + NMIGRATIONS)

/* sqlite's LIKE ignores the case of ASCII letters, and only theirs */
#define FOLD(x) "translate(" x ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
#define LIKE(x, p) FOLD(x) " LIKE " FOLD(p) " ESCAPE '\\'"

/* An artifact's name, locked to the end of the transaction (a lock of its
** own, 7625198, apart from begin's and gc's); advisory locks are the
** database's, so the name is the catalog's: its schema's and its own */
#define NAME_LOCK "SELECT pg_advisory_xact_lock(7625198, hashtext(current_schema() || '/' || ?1))"

/* The statements whose SQL is not sqlite's (catalog.c declares them). */
static const lp_catalog_sql statements[] = {
  /* a write transaction shares a lock that gc's holds alone (gc.c) */
  {"begin", {"BEGIN", "SELECT pg_advisory_xact_lock_shared(7625197)"}},
  {"begin_alone", {"BEGIN", "SELECT pg_advisory_xact_lock(7625197)"}},
  /* runs are made one at a time: no two take one name, and a pipeline
  ** is made once (a lock held to the end of the transaction) */
  {"pipeline_id", {"SELECT pg_advisory_xact_lock(7625196)",
                   "SELECT id FROM pipelines WHERE name = ?1"}},
  /* the artifact's row stays locked to the end of the transaction that
  ** records a version of it: other writers of the name wait to number
  ** theirs, and a clean-up deleting an artifact without versions waits.
  ** The name is locked first (NAME_LOCK), row or no row: a writer that
  ** found no row to lock, the artifact being made by another, would
  ** otherwise number its version beside that one's, unlocked */
  {"artifact_id", {NAME_LOCK, "SELECT id FROM artifacts WHERE name = ?1 FOR UPDATE"}},
  {"artifact_new", {"INSERT INTO artifacts(id, name, created) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT (name) DO NOTHING"}},
  {"version_new", {"INSERT INTO artifact_versions(id, artifact_id, version, version_number,"
                   " type, data_type, content_hash, size, stored_size, uri, codec_version,"
                   " created, producer_step_run_id, artifact_store_id, save_type) VALUES (?1,"
                   " ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, coalesce(?14, '"
                   LP_DEFAULT_STORE_ID "'), ?15) RETURNING seq"}},
  /* the name locked first, as artifact_id does; the artifact made if it is
  ** missing (a write sent without waiting for its answer, as
  ** lp_version_spec's later sends this, has no other way of saying there is
  ** none); its row locked as artifact_id does; then, in a statement of its
  ** own whose snapshot has the versions of the writers the locks waited
  ** for, the version numbered and inserted */
  {"version_new_next", {NAME_LOCK,
                        "INSERT INTO artifacts(id, name, created) SELECT ?14::text, ?1::text,"
                        " ?10::text WHERE NOT EXISTS (SELECT 1 FROM artifacts WHERE name = ?1)"
                        " ON CONFLICT (name) DO NOTHING",
                        "SELECT 1 FROM artifacts WHERE name = ?1 FOR UPDATE",
                        "INSERT INTO artifact_versions(id, artifact_id, version,"
                        " version_number, type, data_type, content_hash, size, stored_size, uri,"
                        " codec_version, created, producer_step_run_id, artifact_store_id,"
                        " save_type) SELECT ?2, a.id, n.next::text, n.next, ?3, ?4, ?5, ?6::bigint,"
                        " ?7::bigint, ?8, ?9::bigint, ?10, ?11::text, coalesce(?12, '"
                        LP_DEFAULT_STORE_ID "'), ?13"
                        " FROM artifacts a, LATERAL (SELECT coalesce(max(v.version_number), 0) + 1"
                        " AS next FROM artifact_versions v WHERE v.artifact_id = a.id) n"
                        " WHERE a.name = ?1 RETURNING seq, version_number"}},
  {"store_of_stack", {"SELECT s.id, s.name, s.flavor, s.path, k.name FROM stacks k"
                      " JOIN artifact_stores s ON s.id = k.artifact_store_id"
                      " WHERE (?1::text IS NULL AND k.active = 1) OR k.name = ?1"}},
  {"step_run_artifacts", {"SELECT l.kind, l.name, l.artifact_version_id,"
     " coalesce(v.save_type, (SELECT save_type FROM deleted_versions d"
     " WHERE d.id = l.artifact_version_id)) AS save_type"
     " FROM step_run_artifacts l LEFT JOIN artifact_versions v ON v.seq = l.version_seq"
     " WHERE l.step_run_id = ?1 ORDER BY l.ord"}},
  {"cache_hit", {"SELECT" LP_CATALOG_HIT_COLUMNS "," LP_CATALOG_HIT_OR_PREVIOUS
     " ORDER BY l.ord"}},
  {"recent_cache_hits", {"SELECT s.cache_key," LP_CATALOG_HIT_COLUMNS
     " FROM (SELECT id, seq, seed, output_count, lookups, cache_key FROM step_runs"
     " WHERE status = 'completed' AND cache_key IS NOT NULL ORDER BY seq DESC LIMIT ?1) s"
     LP_CATALOG_HIT_LINKS " ORDER BY s.seq DESC, l.ord"}},
  {"run_cache_hits", {"SELECT s.cache_key," LP_CATALOG_HIT_COLUMNS
     " FROM (SELECT id, seq, seed, output_count, lookups, cache_key FROM step_runs x"
     " WHERE run_id = (SELECT run_id FROM step_runs WHERE id = ?1) AND status = 'completed'"
     " AND cache_key IS NOT NULL AND NOT EXISTS (SELECT 1 FROM step_runs n"
     " WHERE n.cache_key = x.cache_key AND n.status = 'completed' AND n.seq > x.seq)"
     " ORDER BY seq DESC LIMIT ?2) s" LP_CATALOG_HIT_LINKS " ORDER BY s.seq DESC, l.ord"}},
  {"stale_lookups", {"SELECT k.artifact_name AS artifact, coalesce(w.version, d.version) AS was,"
     " v.version AS latest, v.seq > k.version_seq AS newer FROM step_run_lookups k"
     " LEFT JOIN artifact_versions w ON w.id = k.artifact_version_id"
     " LEFT JOIN deleted_versions d ON d.id = k.artifact_version_id"
     " LEFT JOIN artifact_versions v ON v.seq = (SELECT max(x.seq) FROM artifact_versions x"
     " JOIN artifacts a ON a.id = x.artifact_id WHERE a.name = k.artifact_name)"
     " WHERE k.step_run_id = ?1 AND v.id IS DISTINCT FROM k.artifact_version_id"
     " AND v.producer_step_run_id IS DISTINCT FROM ?1 ORDER BY k.artifact_name LIMIT 1"}},
  {"versions_to_copy", {"SELECT v.id, v.content_hash, v.size FROM artifact_versions v"
     " JOIN artifacts a ON a.id = v.artifact_id WHERE v.artifact_store_id = ?1"
     " AND (?2::text IS NULL OR a.name = ?2) AND (?3::text IS NULL OR EXISTS (SELECT 1"
     " FROM tag_links l JOIN tags t ON t.seq = l.tag_seq WHERE l.entity = 'artifact_version'"
     " AND l.entity_id = v.id AND t.name = ?3)) ORDER BY v.seq"}},
  {"search_artifacts", {"SELECT a.id, a.name, a.created, (SELECT count(*)"
     " FROM artifact_versions v WHERE v.artifact_id = a.id) AS version_count"
     " FROM artifacts a WHERE " LIKE("a.name", "?1") " ORDER BY a.name LIMIT ?2"}},
  {"search_versions", {"SELECT v.id, a.name, v.version, v.type, v.data_type, v.content_hash,"
     " v.size, v.stored_size, v.uri, v.codec_version, v.created, v.producer_step_run_id,"
     " v.artifact_store_id, v.save_type"
     " FROM artifact_versions v JOIN artifacts a ON a.id = v.artifact_id"
     " WHERE " LIKE("a.name", "?1") " OR " LIKE("v.version", "?1")
     " ORDER BY v.seq DESC LIMIT ?2"}},
  {"search_runs", {"SELECT r.id, r.name, p.name AS pipeline_name, r.status, r.start_time,"
     " r.end_time, r.error FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id"
     " WHERE " LIKE("r.name", "?1") " ORDER BY r.seq DESC LIMIT ?2"}},
  {"search_pipelines", {"SELECT id, name, created FROM pipelines WHERE " LIKE("name", "?1")
     " ORDER BY name LIMIT ?2"}},
  {"search_tags", {"SELECT name, (SELECT count(*) FROM tag_links l WHERE l.tag_seq = t.seq)"
     " AS tagged_count FROM tags t WHERE " LIKE("name", "?1") " ORDER BY name LIMIT ?2"}},
  {"search_metadata", {"SELECT m.entity, m.entity_id, m.key, m.value, a.name AS artifact,"
     " v.version, r.name AS run, s.name AS step, sr.name AS step_run_run"
     " FROM run_metadata m"
     " LEFT JOIN artifact_versions v ON m.entity = 'artifact_version' AND v.id = m.entity_id"
     " LEFT JOIN artifacts a ON a.id = v.artifact_id"
     " LEFT JOIN pipeline_runs r ON m.entity = 'pipeline_run' AND r.id = m.entity_id"
     " LEFT JOIN step_runs s ON m.entity = 'step_run' AND s.id = m.entity_id"
     " LEFT JOIN pipeline_runs sr ON sr.id = s.run_id"
     " WHERE " LIKE("m.key", "?1") " OR " LIKE("m.value_text", "?1")
     " ORDER BY m.seq DESC LIMIT ?2"}},
  {"tag", {"INSERT INTO tags(name) VALUES (?3) ON CONFLICT (name) DO NOTHING",
           "DELETE FROM tag_links WHERE ?1::text = 'artifact_version'"
           " AND entity = 'artifact_version'"
           " AND tag_seq = (SELECT seq FROM tags WHERE name = ?3 AND exclusive = 1)"
           " AND version_seq IN (SELECT seq FROM artifact_versions WHERE artifact_id ="
           " (SELECT artifact_id FROM artifact_versions WHERE id = ?2)) AND entity_id != ?2",
           "DELETE FROM tag_links WHERE ?1::text = 'pipeline_run' AND entity = 'pipeline_run'"
           " AND tag_seq = (SELECT seq FROM tags WHERE name = ?3 AND exclusive = 1)"
           " AND entity_id IN (SELECT id FROM pipeline_runs WHERE pipeline_id ="
           " (SELECT pipeline_id FROM pipeline_runs WHERE id = ?2)) AND entity_id != ?2",
           "INSERT INTO tag_links(entity, entity_id, tag_seq)"
           " SELECT ?1::text, ?2::text, seq FROM tags WHERE name = ?3 ON CONFLICT DO NOTHING"}},
  {"update_tag", {"UPDATE tags SET name = coalesce(?2, name),"
                  " exclusive = coalesce(?3, exclusive) WHERE name = ?1"
                  " AND (?3::bigint IS DISTINCT FROM 1"
                  " OR (NOT EXISTS (SELECT 1 FROM tag_links l JOIN artifact_versions v"
                  " ON v.seq = l.version_seq WHERE l.entity = 'artifact_version'"
                  " AND l.tag_seq = tags.seq GROUP BY v.artifact_id HAVING count(*) > 1)"
                  " AND NOT EXISTS (SELECT 1 FROM tag_links l JOIN pipeline_runs r"
                  " ON r.id = l.entity_id WHERE l.entity = 'pipeline_run'"
                  " AND l.tag_seq = tags.seq GROUP BY r.pipeline_id HAVING count(*) > 1)"
                  " AND NOT EXISTS (SELECT 1 FROM tag_links l WHERE l.entity = 'artifact'"
                  " AND l.tag_seq = tags.seq)))"}},
  {"add_input", {"INSERT INTO step_run_artifacts(step_run_id, kind, name,"
                 " artifact_version_id, version_seq) VALUES (?1, 'input', ?2, ?3,"
                 " (SELECT seq FROM artifact_versions WHERE id = ?3))"
                 " ON CONFLICT (step_run_id, kind, name) DO UPDATE SET"
                 " artifact_version_id = excluded.artifact_version_id,"
                 " version_seq = excluded.version_seq"}},
  {"add_lookup", {"INSERT INTO step_run_lookups(step_run_id, artifact_name,"
                  " artifact_version_id, version_seq) SELECT ?1, ?2, id, seq"
                  " FROM artifact_versions WHERE id = ?3"
                  " ON CONFLICT (step_run_id, artifact_name) DO UPDATE SET"
                  " artifact_version_id = excluded.artifact_version_id,"
                  " version_seq = excluded.version_seq",
                  "UPDATE step_runs SET lookups = 1 WHERE id = ?1 AND EXISTS (SELECT 1"
                  " FROM step_run_lookups WHERE step_run_id = ?1)"}},
  {"copy_lookups", {"INSERT INTO step_run_lookups(step_run_id, artifact_name,"
                    " artifact_version_id, version_seq) SELECT ?1, artifact_name,"
                    " artifact_version_id, version_seq FROM step_run_lookups"
                    " WHERE step_run_id = ?2"
                    " ON CONFLICT (step_run_id, artifact_name) DO UPDATE SET"
                    " artifact_version_id = excluded.artifact_version_id,"
                    " version_seq = excluded.version_seq",
                    "UPDATE step_runs SET lookups = 1 WHERE id = ?1 AND EXISTS (SELECT 1"
                    " FROM step_run_lookups WHERE step_run_id = ?1)"}},
  {"delete_version", {
     "DELETE FROM tag_links WHERE entity = 'artifact_version' AND entity_id = ?1",
     "DELETE FROM run_metadata WHERE entity = 'artifact_version' AND entity_id = ?1",
     "INSERT INTO deleted_versions(id, artifact_name, version, deleted, save_type)"
     " SELECT v.id, a.name, v.version, ?2, v.save_type FROM artifact_versions v"
     " JOIN artifacts a ON a.id = v.artifact_id WHERE v.id = ?1"
     " AND EXISTS (SELECT 1 FROM step_run_artifacts l WHERE l.version_seq = v.seq)"
     " ON CONFLICT (id) DO UPDATE SET artifact_name = excluded.artifact_name,"
     " version = excluded.version, deleted = excluded.deleted, save_type = excluded.save_type",
     "UPDATE step_run_artifacts SET version_seq = -version_seq"
     " WHERE version_seq = (SELECT seq FROM artifact_versions WHERE id = ?1)",
     "DELETE FROM visualizations WHERE artifact_version_id = ?1",
     "DELETE FROM artifact_versions WHERE id = ?1"}},
  /* (after those recording a version of it, which lock its name and its
  ** row: its name first, as they do, so that one that found the row before
  ** this deletes it makes it again, where the row lock alone left it
  ** numbering a version of an artifact that was gone) */
  {"delete_empty_artifact", {
     "SELECT pg_advisory_xact_lock(7625198, hashtext(current_schema() || '/' || name))"
     " FROM artifacts WHERE id = ?1",
     "SELECT 1 FROM artifacts WHERE id = ?1 FOR UPDATE",
     "DELETE FROM tag_links WHERE entity = 'artifact' AND entity_id = ?1"
     " AND NOT EXISTS (SELECT 1 FROM artifact_versions WHERE artifact_id = ?1)",
     "DELETE FROM artifacts WHERE id = ?1"
     " AND NOT EXISTS (SELECT 1 FROM artifact_versions WHERE artifact_id = ?1)"}},
  {"add_stack", {"INSERT INTO stacks(id, name, artifact_store_id, orchestrator, created, jobs)"
                 " SELECT ?6, ?1, id, ?3, ?5, ?4::bigint FROM artifact_stores WHERE name = ?2"}},
};

/* A plain JOIN: PostgreSQL's planner walks tag_links_by_version in order
** for an ORDER BY on its column. */
static const lp_catalog_dialect dialect = {
  "$%d",
  LIKE("%s", "%s"),
  "tag_links l JOIN artifact_versions v ON v.seq = l.version_seq",
  " NULLS FIRST", " DESC NULLS LAST",
  "EXPLAIN ", "QUERY PLAN",
  "(SELECT string_agg(t.name || E'\\n', '' ORDER BY t.name) FROM tag_links l"
  " JOIN tags t ON t.seq = l.tag_seq WHERE l.entity = '%s' AND l.entity_id = %s)",
  "l.ord",
  " OVERRIDING SYSTEM VALUE",
  "SELECT setval(pg_get_serial_sequence('%s', 'seq'), (SELECT coalesce(max(seq), 0) + 1"
  " FROM %s), false)",
  "::double precision",
};

/* ---- the connection ---- */

/* The most statements whose rows wait to be sent at once (batched rows) */
#define WAITING_MAX 16

struct pg_stmt;

typedef struct pg_db {
  PGconn *conn;
  char name[256];         /* the catalog in messages: no password */
  char err[LP_ERRSZ];     /* the last failure's text */
  int64_t changes;
  unsigned long named;    /* prepared statements named so far */
  int deferred;           /* writes sent in pipeline mode, their results not read yet */
  char *dealloc;          /* DEALLOCATEs of finalized statements, run at the next prepare */
  size_t dealloc_len;
  /* the statements whose rows wait (send_waiting), in the order of their first */
  struct pg_stmt *waiting[WAITING_MAX];
  int nwaiting;
  size_t waiting_bytes;
} pg_db;

static int send_waiting(pg_db *db);

/* The last failure's text, from a result (or the connection). */
static void keep_error(pg_db *db, const PGresult *res) {
  const char *m = res != NULL ? pq.PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  size_t n;
  snprintf(db->err, sizeof db->err, "%s", m != NULL ? m : pq.PQerrorMessage(db->conn));
  n = strlen(db->err);
  while (n > 0 && db->err[n - 1] == '\n') db->err[--n] = '\0';
}

/*
** After a sync point: the results of the commands sent in pipeline mode
** (the deferred writes, and the statement that brought them, whose result
** goes to *last unless last is NULL), up to the sync; then out of pipeline
** mode. 0, or nonzero with the first failure kept (after a failed command
** the server skips the rest, and the transaction is aborted).
*/
static int collect(pg_db *db, int commands, PGresult **last) {
  PGresult *res;
  int failed = 0, i;
  for (i = 0; i < commands; i++) {
    while ((res = pq.PQgetResult(db->conn)) != NULL) {
      ExecStatusType s = pq.PQresultStatus(res);
      if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && s != PGRES_PIPELINE_ABORTED &&
          !failed) {
        keep_error(db, res);
        failed = 1;
      }
      if (last != NULL && i == commands - 1 && *last == NULL) *last = res;
      else pq.PQclear(res);
    }
  }
  while ((res = pq.PQgetResult(db->conn)) != NULL) {   /* the sync point's */
    int synced = pq.PQresultStatus(res) == PGRES_PIPELINE_SYNC;
    pq.PQclear(res);
    if (synced) break;
  }
  if (pq.PQexitPipelineMode(db->conn) != 1 && !failed) {
    keep_error(db, NULL);
    failed = 1;
  }
  return failed;
}

/* Read the results of the writes sent without waiting (pg_defer). */
static int flush(pg_db *db) {
  int n;
  if (send_waiting(db) != 0) return 1;
  n = db->deferred;
  if (n == 0) return 0;
  db->deferred = 0;
  if (pq.PQpipelineSync(db->conn) != 1) {
    keep_error(db, NULL);
    return 1;
  }
  return collect(db, n, NULL);
}

/* Run sql (one or more statements, no parameters); 0 or nonzero with the
** error kept. *out, unless NULL, gets a result with rows (PQclear it). */
static int exec(pg_db *db, const char *sql, PGresult **out) {
  PGresult *res;
  if (flush(db) != 0) return 1;
  res = pq.PQexec(db->conn, sql);
  ExecStatusType s = pq.PQresultStatus(res);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    keep_error(db, res);
    pq.PQclear(res);
    return 1;
  }
  if (out != NULL) *out = res;
  else pq.PQclear(res);
  return 0;
}

/* libpq prints a server's notices on stderr; the library prints nothing */
static void no_notice(void *ud, const char *message) {
  (void)ud;
  (void)message;
}

/* The catalog named for messages: postgresql://user@host:port/dbname and
** its schema, a socket folder after them; never a password. */
static void name_catalog(const char *user, const char *host, const char *port,
                         const char *dbname, const char *schema, char *out, size_t outsz) {
  int socket = host != NULL && host[0] == '/';
  size_t n;
  snprintf(out, outsz, "postgresql://%s%s%s%s%s/%s%s%s", user != NULL ? user : "",
           user != NULL && user[0] ? "@" : "", host != NULL && !socket ? host : "",
           port != NULL && port[0] ? ":" : "", port != NULL ? port : "",
           dbname != NULL ? dbname : "", schema[0] != '\0' ? " schema " : "", schema);
  n = strlen(out);
  if (socket && n < outsz) snprintf(out + n, outsz - n, " (socket in %s)", host);
}

/* A target named as name_catalog does, from what it says alone. */
static void pg_describe(const char *target, char *out, size_t outsz) {
  char *errmsg = NULL;
  PQconninfoOption *opts, *o;
  const char *user = NULL, *host = NULL, *port = NULL, *dbname = NULL;
  if (!pq_load()) {   /* the target may hold a password: not shown unread */
    snprintf(out, outsz, "(libpq could not be loaded)");
    return;
  }
  opts = pq.PQconninfoParse(target, &errmsg);
  pq.PQfreemem(errmsg);
  if (opts == NULL) {   /* its open says why */
    snprintf(out, outsz, "(a connection string libpq cannot read)");
    return;
  }
  for (o = opts; o != NULL && o->keyword != NULL; o++) {
    if (o->val == NULL) continue;
    if (strcmp(o->keyword, "user") == 0) user = o->val;
    else if (strcmp(o->keyword, "host") == 0) host = o->val;
    else if (strcmp(o->keyword, "port") == 0) port = o->val;
    else if (strcmp(o->keyword, "dbname") == 0) dbname = o->val;
  }
  name_catalog(user, host, port, dbname, "", out, outsz);
  pq.PQconninfoFree(opts);
}

/* Make the schema the connection's search_path names first, if there is
** none: a new catalog in a database that holds others. */
static int ensure_schema(pg_db *db, char *schema, size_t schemasz) {
  PGresult *res;
  char *quoted, *literal = NULL, sql[768];
  int rc;
  if (exec(db, "SELECT current_schema(), (current_schemas(false))[1],"
           " split_part(current_setting('search_path'), ',', 1)", &res) != 0)
    return 1;
  if (!pq.PQgetisnull(res, 0, 0)) {
    snprintf(schema, schemasz, "%s", pq.PQgetvalue(res, 0, 0));
    pq.PQclear(res);
    return 0;
  }
  /* the first entry of search_path, as written there (quoted or not) */
  snprintf(schema, schemasz, "%s", pq.PQgetvalue(res, 0, 2));
  pq.PQclear(res);
  {
    char *s = schema, *e;
    while (*s == ' ') s++;
    e = s + strlen(s);
    while (e > s && e[-1] == ' ') *--e = '\0';
    if (*s == '"' && e - s >= 2 && e[-1] == '"') {
      s++;
      *--e = '\0';
    }
    memmove(schema, s, strlen(s) + 1);
  }
  if (schema[0] == '\0' || strcmp(schema, "$user") == 0) {
    snprintf(db->err, sizeof db->err, "the connection's search_path names no schema");
    return 1;
  }
  if ((quoted = pq.PQescapeIdentifier(db->conn, schema, strlen(schema))) == NULL ||
      (literal = pq.PQescapeLiteral(db->conn, schema, strlen(schema))) == NULL) {
    keep_error(db, NULL);
    pq.PQfreemem(quoted);
    return 1;
  }
  /* IF NOT EXISTS is no guard against another process making it at the
  ** same moment (a unique violation): the lock migrate takes, by name,
  ** makes them wait for each other */
  snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(hashtext(%s));"
           " CREATE SCHEMA IF NOT EXISTS %s; COMMIT", literal, quoted);
  pq.PQfreemem(quoted);
  pq.PQfreemem(literal);
  rc = exec(db, sql, NULL);
  return rc;
}

static int fail(pg_db *db, const char *what, char *err, size_t errsz) {
  lp_errf(err, errsz, "catalog %s: %s failed (%s)", db->name, what, db->err);
  return LUPINE_CATALOG;
}

/*
** Create or migrate the schema, under a lock on the catalog's schema held
** to the end of the transaction: processes opening a new catalog at once
** wait for the first, then find it made.
*/
static int migrate(pg_db *db, char *err, size_t errsz) {
  PGresult *res;
  int version = 0, exists;
  char sql[64];
  if (exec(db, "SELECT to_regclass('schema_version') IS NOT NULL", &res) != 0)
    return fail(db, "reading the schema version", err, errsz);
  exists = pq.PQgetvalue(res, 0, 0)[0] == 't';
  pq.PQclear(res);
  if (exists) {
    if (exec(db, "SELECT version FROM schema_version", &res) != 0)
      return fail(db, "reading the schema version", err, errsz);
    version = pq.PQntuples(res) > 0 ? atoi(pq.PQgetvalue(res, 0, 0)) : 0;
    pq.PQclear(res);
    if (version > SCHEMA_VERSION) {
      lp_errf(err, errsz, "catalog %s: schema version %d is newer than this "
              "Lupine understands (%d); upgrade Lupine", db->name, version, SCHEMA_VERSION);
      return LUPINE_CATALOG;
    }
    if (version == SCHEMA_VERSION) return LUPINE_OK;
  }
  if (exec(db, "BEGIN; SELECT pg_advisory_xact_lock(hashtext(current_schema()))", NULL) != 0)
    return fail(db, "starting a migration", err, errsz);
  /* another process may have migrated while we waited for the lock */
  if (exec(db, "CREATE TABLE IF NOT EXISTS schema_version(version integer NOT NULL)", NULL) != 0 ||
      exec(db, "SELECT version FROM schema_version", &res) != 0)
    goto failed;
  version = pq.PQntuples(res) > 0 ? atoi(pq.PQgetvalue(res, 0, 0)) : 0;
  pq.PQclear(res);
  if (version == 0 && (exec(db, baseline, NULL) != 0 ||
                       exec(db, "INSERT INTO schema_version VALUES (9)", NULL) != 0))
    goto failed;
  if (version == 0) version = BASELINE;
  for (; version < SCHEMA_VERSION; version++) {
    snprintf(sql, sizeof sql, "UPDATE schema_version SET version = %d", version + 1);
    if (exec(db, migrations[version - BASELINE], NULL) != 0 || exec(db, sql, NULL) != 0)
      goto failed;
  }
  if (exec(db, "COMMIT", NULL) != 0) goto failed;
  return LUPINE_OK;
failed:
  fail(db, "migrating the schema", err, errsz);
  exec(db, "ROLLBACK", NULL);
  return LUPINE_CATALOG;
}

static void pg_close(void *p) {
  pg_db *db = p;
  if (db == NULL) return;
  pq.PQfinish(db->conn);
  free(db->dealloc);
  free(db);
}

/* Every s in msg becomes with (while it fits). */
static void replace_all(char *msg, size_t msgsz, const char *s, size_t slen, const char *with) {
  size_t wlen = strlen(with);
  char *at = msg;
  while (slen > 0 && (at = strstr(at, s)) != NULL && strlen(msg) - slen + wlen < msgsz) {
    memmove(at + wlen, at + slen, strlen(at + slen) + 1);
    memcpy(at, with, wlen);
    at += wlen;
  }
}

/*
** libpq quotes a connection string it cannot read, password and all: in
** msg, the target becomes "the connection string", and its password (a
** URI's user:password@, a key=value string's password=) "***" wherever
** else it is.
*/
static void without_target(char *msg, size_t msgsz, const char *target) {
  const char *p = NULL, *scheme = strstr(target, "://");
  size_t n = 0;
  replace_all(msg, msgsz, target, strlen(target), "the connection string");
  if (scheme != NULL) {
    const char *auth = scheme + 3, *end = auth + strcspn(auth, "/?"), *at = NULL, *c;
    for (c = auth; c < end; c++)
      if (*c == '@') at = c;
    for (c = auth; at != NULL && c < at && *c != ':'; c++) {}
    if (at != NULL && c < at) p = c + 1, n = (size_t)(at - p);
  } else if ((p = strstr(target, "password")) != NULL) {
    p += strlen("password");
    while (*p == ' ') p++;
    if (*p++ != '=') return;
    while (*p == ' ') p++;
    if (*p == '\'') p++, n = strcspn(p, "'");
    else n = strcspn(p, " \t");
  }
  if (p != NULL && n > 0) {
    char secret[256];
    if (n >= sizeof secret) n = sizeof secret - 1;
    memcpy(secret, p, n);
    secret[n] = '\0';
    replace_all(msg, msgsz, secret, n, "***");
  }
}

/*
** Read only (`lupine exec`): every transaction of the session is READ
** ONLY, so a write fails in the server, naming it; the schema must exist at
** this build's version (nothing is made or migrated).
*/
static int read_only_session(pg_db *db, char *schema, size_t schemasz, char *err,
                             size_t errsz) {
  PGresult *res;
  int version;
  if (exec(db, "SET default_transaction_read_only = on", NULL) != 0 ||
      exec(db, "SELECT current_schema(), to_regclass('schema_version') IS NOT NULL", &res) != 0)
    return fail(db, "configuring", err, errsz);
  if (pq.PQgetisnull(res, 0, 0) || pq.PQgetvalue(res, 0, 1)[0] != 't') {
    pq.PQclear(res);
    lp_errf(err, errsz, "catalog %s: no catalog there to read", db->name);
    return LUPINE_CATALOG;
  }
  snprintf(schema, schemasz, "%s", pq.PQgetvalue(res, 0, 0));
  pq.PQclear(res);
  if (exec(db, "SELECT version FROM schema_version", &res) != 0)
    return fail(db, "reading the schema version", err, errsz);
  version = pq.PQntuples(res) > 0 ? atoi(pq.PQgetvalue(res, 0, 0)) : 0;
  pq.PQclear(res);
  if (version != SCHEMA_VERSION) {
    lp_errf(err, errsz, "catalog %s: schema version %d, where this Lupine reads %d", db->name,
            version, SCHEMA_VERSION);
    return LUPINE_CATALOG;
  }
  return LUPINE_OK;
}

static int pg_open(const char *target, int read_only, void **out, char *err, size_t errsz) {
  pg_db *db = calloc(1, sizeof *db);
  char schema[128] = "";
  int rc;
  *out = NULL;
  if (db == NULL) {
    lp_errf(err, errsz, "out of memory opening a catalog");
    return LUPINE_NOMEM;
  }
  pg_describe(target, db->name, sizeof db->name);
  if (!pq_load()) {
    lp_errf(err, errsz, "a PostgreSQL catalog needs libpq (%s); install it (Debian: "
            "apt-get install libpq5)", pq_why);
    free(db);
    return LUPINE_CATALOG;
  }
  db->conn = pq.PQconnectdb(target);
  if (db->conn == NULL || pq.PQstatus(db->conn) != CONNECTION_OK) {
    keep_error(db, NULL);
    without_target(db->err, sizeof db->err, target);
    if (strstr(db->err, "no password supplied") != NULL)
      lp_appendf(db->err, sizeof db->err, &(size_t){strlen(db->err)},
                 "; give it in PGPASSWORD or ~/.pgpass");
    lp_errf(err, errsz, "catalog %s: cannot connect (%s)", db->name, db->err);
    pg_close(db);
    return LUPINE_CATALOG;
  }
  pq.PQsetNoticeProcessor(db->conn, no_notice, NULL);
  /* times and ids come as parameters; text compares byte by byte as
  ** sqlite's does, whatever the database's collation. Every statement is
  ** prepared once and run many times with other values, which a plan made
  ** for its parameters' types serves as well: planned anew at each run (the
  ** server's choice for most of them), a step's lookups cost it 0.2 ms each */
  if (exec(db, pq.PQserverVersion(db->conn) >= 120000   /* (11 has no such setting) */
                   ? "SET client_encoding = 'UTF8'; SET plan_cache_mode = force_generic_plan"
                   : "SET client_encoding = 'UTF8'",
           NULL) != 0 ||
      (!read_only && ensure_schema(db, schema, sizeof schema) != 0)) {
    rc = fail(db, "configuring", err, errsz);
    pg_close(db);
    return rc;
  }
  if (read_only && (rc = read_only_session(db, schema, sizeof schema, err, errsz)) != LUPINE_OK) {
    pg_close(db);
    return rc;
  }
  name_catalog(pq.PQuser(db->conn), pq.PQhost(db->conn), pq.PQport(db->conn), pq.PQdb(db->conn), schema,
               db->name, sizeof db->name);
  if (!read_only && (rc = migrate(db, err, errsz)) != LUPINE_OK) {
    pg_close(db);
    return rc;
  }
  *out = db;
  return LUPINE_OK;
}

/* postgresql:// and postgres:// URIs, and key=value connection strings
** (which libpq reads when the catalog opens, saying what is wrong with one
** it cannot read); a path to a sqlite file is neither. */
static int pg_accepts(const char *target) {
  if (strncmp(target, "postgresql://", 13) == 0 || strncmp(target, "postgres://", 11) == 0)
    return 1;
  return strstr(target, "://") == NULL && target[0] != '/' && target[0] != '.' &&
         strchr(target, '=') != NULL;
}

static const char *pg_where(void *p) {
  return ((pg_db *)p)->name;
}

static const char *pg_errmsg(void *p) {
  return ((pg_db *)p)->err;
}

static int pg_in_transaction(void *p) {
  pg_db *db = p;
  PGTransactionStatusType s;
  /* writes are deferred only in a transaction */
  if (db->deferred > 0 || db->nwaiting > 0) return 1;
  s = pq.PQtransactionStatus(db->conn);
  return s == PQTRANS_INTRANS || s == PQTRANS_INERROR;
}

static int64_t pg_changes(void *p) {
  return ((pg_db *)p)->changes;
}

/* ---- statements ---- */

#define PG_MAX_PARAMS 32

/* type oids (pg_type.h, which is not a client header) */
enum { BOOLOID = 16, BYTEAOID = 17, INT8OID = 20, INT2OID = 21, INT4OID = 23, TEXTOID = 25,
       OIDOID = 26,
       FLOAT4OID = 700, FLOAT8OID = 701, NUMERICOID = 1700 };


/* A growing text. */
typedef struct pg_text {
  char *p;
  size_t len, cap;
} pg_text;

typedef struct pg_stmt {
  pg_db *db;
  char name[24];        /* the prepared statement's, on the server */
  int nparams;
  int undo;             /* a ROLLBACK: it runs even after deferred writes failed */
  int control;          /* BEGIN, COMMIT, ROLLBACK, SAVEPOINT...: run at once */
  /* BEGIN, SAVEPOINT or RELEASE: may go with the deferred writes after
  ** all, as nothing waits for what they answer (a RELEASE after a write
  ** that failed is skipped, and the next statement that waits fails) */
  int deferrable;
  PGresult *res;
  int row;              /* the row the columns are read from; -1 before the first */
  int ran;
  /* 1 for a parameter the SQL does not use (another of the statement's
  ** list does): sent as bytes, it needs a type the server cannot guess */
  char unused[PG_MAX_PARAMS];
  const char *values[PG_MAX_PARAMS];
  int lengths[PG_MAX_PARAMS], formats[PG_MAX_PARAMS];
  char *text;           /* the bound values' text, each NUL-terminated */
  size_t text_cap;
  /* the bytea columns of the row, decoded: one buffer a column, as a row's
  ** columns are all read before it is used */
  struct { unsigned char *p; size_t cap; } *blobs;
  int nblobs;
  /* batched rows (send_waiting): an INSERT of one row of values keeps its
  ** SQL until its first deferred row tells whether its rows batch */
  char *insert;
  int batches;          /* 1 its rows are batched, -1 not, 0 not known yet */
  char batch_name[24];  /* the statement of many rows, on the server */
  char *batch_sql;
  char *references;     /* " a b ": the tables its table's foreign keys reference */
  char table[64];
  pg_text *arrays;      /* the rows waiting: an array's text a parameter */
  int rows;
  /* the first of them as bound, which goes alone with the statement itself
  ** (one row through unnest costs the server several times a plain INSERT's
  ** work): its values one after another, where each starts, its length (-1:
  ** NULL), its format */
  pg_text first;
  int first_at[PG_MAX_PARAMS], first_len[PG_MAX_PARAMS], first_format[PG_MAX_PARAMS];
} pg_stmt;

/* sql with ?N made $N (outside quotes), its highest N in *nparams, and
** used[N - 1] set for each N it uses (up to PG_MAX_PARAMS); malloc'd, NULL
** if memory ran out. */
static char *dollars(const char *sql, int *nparams, char *used) {
  char *out = malloc(strlen(sql) + 1), *o = out;
  char quote = 0;
  *nparams = 0;
  if (out == NULL) return NULL;
  for (; *sql != '\0'; sql++) {
    if (quote != 0) {
      if (*sql == quote) quote = 0;
    } else if (*sql == '\'' || *sql == '"') quote = *sql;
    else if ((*sql == '?' || *sql == '$') && sql[1] >= '0' && sql[1] <= '9') {
      int n = atoi(sql + 1);
      if (n > *nparams) *nparams = n;
      if (n <= PG_MAX_PARAMS) used[n - 1] = 1;
      *o++ = '$';
      continue;
    }
    *o++ = *sql;
  }
  *o = '\0';
  return out;
}

static int pg_prepare(void *p, const char *sql, int lasting, void **out, int *nparams) {
  pg_db *db = p;
  pg_stmt *st;
  PGresult *res;
  char *text, used[PG_MAX_PARAMS] = {0};
  Oid types[PG_MAX_PARAMS] = {0};
  int ok, i;
  (void)lasting;   /* every statement is prepared by name once, and kept */
  *out = NULL;
  if (flush(db) != 0) return 1;
  if (db->dealloc_len > 0) {   /* the statements finalized since: in one round trip */
    exec(db, db->dealloc, NULL);
    db->dealloc_len = 0;
  }
  if ((st = calloc(1, sizeof *st)) == NULL || (text = dollars(sql, nparams, used)) == NULL) {
    free(st);
    snprintf(db->err, sizeof db->err, "out of memory");
    return 1;
  }
  if (*nparams > PG_MAX_PARAMS) {
    free(text);
    free(st);
    snprintf(db->err, sizeof db->err, "more than %d parameters", PG_MAX_PARAMS);
    return 1;
  }
  st->db = db;
  st->nparams = *nparams;
  st->undo = strncmp(sql, "ROLLBACK", 8) == 0;
  st->control = st->undo || strncmp(sql, "BEGIN", 5) == 0 || strncmp(sql, "COMMIT", 6) == 0 ||
                strncmp(sql, "SAVEPOINT", 9) == 0 || strncmp(sql, "RELEASE", 7) == 0;
  st->deferrable = strncmp(sql, "BEGIN", 5) == 0 || strncmp(sql, "SAVEPOINT", 9) == 0 ||
                   strncmp(sql, "RELEASE", 7) == 0;
  st->row = -1;
  snprintf(st->name, sizeof st->name, "lp%lu", ++db->named);
  for (i = 0; i < *nparams; i++) {
    st->unused[i] = !used[i];
    if (st->unused[i]) types[i] = BYTEAOID;
  }
  res = pq.PQprepare(db->conn, st->name, text, *nparams, types);
  ok = pq.PQresultStatus(res) == PGRES_COMMAND_OK;
  if (!ok) keep_error(db, res);
  pq.PQclear(res);
  if (ok && *nparams > 0 && strncmp(text, "INSERT INTO ", 12) == 0) st->insert = text;
  else free(text);
  if (!ok) {
    free(st);
    return 1;
  }
  *out = st;
  return 0;
}

/* The server's copy goes with the next prepare's round trip (or with the
** connection): closing a catalog finalizes every statement at once. */
static void deallocate(pg_db *db, const char *name) {
  size_t need = db->dealloc_len + strlen(name) + 16;
  char *grown = realloc(db->dealloc, need);
  if (grown != NULL) {
    db->dealloc = grown;
    db->dealloc_len += (size_t)snprintf(grown + db->dealloc_len, need - db->dealloc_len,
                                        "DEALLOCATE %s;", name);
  }
}

static void pg_finalize(void *p) {
  pg_stmt *st = p;
  pg_db *db;
  int i;
  if (st == NULL) return;
  db = st->db;
  if (st->rows > 0) send_waiting(db);   /* (a failure is the next statement's) */
  deallocate(db, st->name);
  if (st->batches == 1) deallocate(db, st->batch_name);
  for (i = 0; st->arrays != NULL && i < st->nparams; i++) free(st->arrays[i].p);
  free(st->arrays);
  free(st->first.p);
  free(st->insert);
  free(st->batch_sql);
  free(st->references);
  pq.PQclear(st->res);
  free(st->text);
  while (st->nblobs > 0) free(st->blobs[--st->nblobs].p);
  free(st->blobs);
  free(st);
}

/* Text for the n values, each NUL-terminated (libpq's text parameters
** are C strings); blobs go as bytes (binary bytea). */
static int pg_bind(void *p, const lp_catalog_value *args, int n) {
  pg_stmt *st = p;
  size_t need = 0, at = 0;
  int i;
  for (i = 0; i < n; i++)
    need += (args[i].type == LP_CATALOG_TEXT ? args[i].u.s.len : 0) + 32;
  if (need > st->text_cap) {
    char *grown = realloc(st->text, need);
    if (grown == NULL) {
      snprintf(st->db->err, sizeof st->db->err, "out of memory");
      return 1;
    }
    st->text = grown;
    st->text_cap = need;
  }
  for (i = 0; i < st->nparams; i++) {
    const lp_catalog_value *v = i < n ? &args[i] : NULL;
    char *t = st->text + at;
    st->formats[i] = 0;
    st->lengths[i] = 0;
    st->values[i] = t;
    if (v == NULL || v->type == LP_CATALOG_NULL || st->unused[i]) {
      st->values[i] = NULL;
      continue;
    }
    switch (v->type) {
      case LP_CATALOG_INT: at += (size_t)snprintf(t, 32, "%lld", (long long)v->u.i) + 1; break;
      case LP_CATALOG_REAL: at += (size_t)snprintf(t, 32, "%.17g", v->u.d) + 1; break;
      case LP_CATALOG_TEXT:
        memcpy(t, v->u.s.p, v->u.s.len);
        t[v->u.s.len] = '\0';
        at += v->u.s.len + 1;
        break;
      default:   /* a blob */
        st->values[i] = v->u.s.len > 0 ? v->u.s.p : "";
        st->lengths[i] = (int)v->u.s.len;
        st->formats[i] = 1;
    }
  }
  return 0;
}

/* ---- rows batched: many deferred INSERTs as one ---- */

/*
** A deferred "INSERT INTO t(columns) VALUES (expressions)", with nothing
** after, is not sent at once: its rows wait, a text array a parameter,
** and go as one statement, "INSERT INTO t(columns) SELECT expressions FROM
** unnest($1::type[], ...) AS b(p1, ...)", when anything else is sent. The
** server's work for each one-row INSERT, which pipeline mode does not
** save, is most of what recording a cached step costs (three INSERTs of
** 20-30 us each, where sqlite records the whole step in 50 us).
** Several statements' rows may wait at once; each statement's rows keep
** their order, and the statements go in the order of their first rows. So
** a row joins its statement's waiting rows only if none of the statements
** whose rows began after those is one it depends on (one whose table its
** SQL names, or its table's foreign keys reference); otherwise all that
** waits is sent first.
*/

/* The most rows, and bytes of them, that wait before they are sent. */
#define WAITING_ROWS 1000
#define WAITING_BYTES (1 << 20)

static int text_put(pg_text *t, const char *s, size_t n) {
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap > 0 ? t->cap : 256;
    char *grown;
    while (cap < t->len + n + 1) cap *= 2;
    if ((grown = realloc(t->p, cap)) == NULL) return 1;
    t->p = grown;
    t->cap = cap;
  }
  memcpy(t->p + t->len, s, n);
  t->len += n;
  t->p[t->len] = '\0';
  return 0;
}

/* The array type of a parameter's type, NULL for one not known here. */
static const char *array_of(Oid type) {
  switch (type) {
    case BOOLOID: return "boolean[]";
    case BYTEAOID: return "bytea[]";
    case INT8OID: return "bigint[]";
    case INT2OID: return "smallint[]";
    case INT4OID: return "integer[]";
    case TEXTOID: return "text[]";
    case FLOAT4OID: return "real[]";
    case FLOAT8OID: return "double precision[]";
    case NUMERICOID: return "numeric[]";
    default: return NULL;
  }
}

/* 1 if word is in text as a whole word. */
static int names_word(const char *text, const char *word) {
  size_t n = strlen(word);
  const char *at = text;
  while ((at = strstr(at, word)) != NULL) {
    int before = at > text ? (unsigned char)at[-1] : ' ', after = (unsigned char)at[n];
    if (!(isalnum(before) || before == '_') && !(isalnum(after) || after == '_')) return 1;
    at += n;
  }
  return 0;
}

/* st's SQL, if it is "INSERT INTO t(columns) VALUES (expressions)", as
** the statement of many rows its params (one type each) make; NULL if it
** is not one, or memory ran out. The table goes to st->table. */
static char *batch_statement(pg_stmt *st, const PGresult *params) {
  const char *sql = st->insert, *at = sql + 12, *open, *close, *exprs;
  size_t n = 0;
  int depth = 0, i;
  char quote = 0;
  pg_text t = {0};
  while (isalnum((unsigned char)at[n]) || at[n] == '_') n++;
  if (n == 0 || n >= sizeof st->table || at[n] != '(') return NULL;
  memcpy(st->table, at, n);
  st->table[n] = '\0';
  open = at + n;
  if ((close = strchr(open, ')')) == NULL || strncmp(close, ") VALUES (", 10) != 0) return NULL;
  exprs = close + 10;
  /* the expressions end with the statement: no ON CONFLICT, no RETURNING */
  for (at = exprs; *at != '\0' && depth >= 0; at++) {
    if (quote != 0) quote = *at == quote ? 0 : quote;
    else if (*at == '\'' || *at == '"') quote = *at;
    else depth += *at == '(' ? 1 : *at == ')' ? -1 : 0;
  }
  if (depth >= 0 || *at != '\0' || pq.PQnparams(params) != st->nparams) return NULL;
  text_put(&t, sql, (size_t)(close + 1 - sql));
  text_put(&t, " SELECT ", 8);
  for (at = exprs, quote = 0; at < sql + strlen(sql) - 1; at++) {
    if (quote != 0) quote = *at == quote ? 0 : quote;
    else if (*at == '\'' || *at == '"') quote = *at;
    else if (*at == '$' && isdigit((unsigned char)at[1])) {
      text_put(&t, "b.p", 3);
      continue;
    }
    text_put(&t, at, 1);
  }
  text_put(&t, " FROM unnest(", 13);
  for (i = 0; i < st->nparams; i++) {
    const char *type = array_of(pq.PQparamtype(params, i));
    char one[48];
    if (type == NULL) {
      free(t.p);
      return NULL;
    }
    text_put(&t, one, (size_t)snprintf(one, sizeof one, "%s$%d::%s", i > 0 ? ", " : "", i + 1,
                                        type));
  }
  text_put(&t, ") AS b(", 7);
  for (i = 0; i < st->nparams; i++) {
    char one[16];
    text_put(&t, one, (size_t)snprintf(one, sizeof one, "%sp%d", i > 0 ? ", " : "", i + 1));
  }
  if (text_put(&t, ")", 1) != 0) {
    free(t.p);
    return NULL;
  }
  return t.p;
}

/* Whether st's rows are batched, found out at its first deferred row (not
** at prepare: most statements are never deferred): 0, or nonzero with the
** failure kept. Three round trips, once a statement: what types its
** parameters are, the statement of many rows, what its table references. */
static int batch_setup(pg_stmt *st) {
  pg_db *db = st->db;
  PGresult *res;
  char sql[200];
  int ok;
  if (flush(db) != 0) return 1;   /* (an earlier write's failure: asked again next time) */
  st->batches = -1;
  res = pq.PQdescribePrepared(db->conn, st->name);
  if (pq.PQresultStatus(res) != PGRES_COMMAND_OK) {
    keep_error(db, res);
    pq.PQclear(res);
    return 1;
  }
  st->batch_sql = batch_statement(st, res);
  pq.PQclear(res);
  free(st->insert);
  st->insert = NULL;
  if (st->batch_sql == NULL) return 0;
  snprintf(st->batch_name, sizeof st->batch_name, "lp%lu", ++db->named);
  res = pq.PQprepare(db->conn, st->batch_name, st->batch_sql, st->nparams, NULL);
  ok = pq.PQresultStatus(res) == PGRES_COMMAND_OK;
  if (!ok) keep_error(db, res);
  pq.PQclear(res);
  if (!ok) return 1;
  /* (the table's name is letters, digits and _ only: batch_statement) */
  snprintf(sql, sizeof sql, "SELECT ' ' || string_agg(confrelid::regclass::text, ' ') || ' '"
           " FROM pg_constraint WHERE conrelid = '%s'::regclass AND contype = 'f'", st->table);
  if (exec(db, sql, &res) != 0) return 1;
  st->references = strdup(pq.PQgetisnull(res, 0, 0) ? "" : pq.PQgetvalue(res, 0, 0));
  pq.PQclear(res);
  st->arrays = calloc((size_t)st->nparams, sizeof *st->arrays);
  if (st->references == NULL || st->arrays == NULL) {
    snprintf(db->err, sizeof db->err, "out of memory");
    return 1;
  }
  st->batches = 1;
  return 0;
}

/* 1 if st depends on other's table. */
static int depends(const pg_stmt *st, const pg_stmt *other) {
  char word[sizeof other->table + 2];
  snprintf(word, sizeof word, " %s ", other->table);
  return names_word(st->batch_sql, other->table) || strstr(st->references, word) != NULL;
}

/* st's bound row, added to its waiting rows: each value an element of its
** parameter's array, as text (bytea in hex). 0, or 1 if memory ran out. */
static int add_row(pg_stmt *st) {
  static const char hex[] = "0123456789abcdef";
  int i, failed = 0;
  st->first.len = st->rows == 0 ? 0 : st->first.len;
  for (i = 0; i < st->nparams && st->rows == 0; i++) {
    const char *v = st->values[i];
    size_t n = v == NULL ? 0 : st->formats[i] == 1 ? (size_t)st->lengths[i] : strlen(v);
    st->first_at[i] = (int)st->first.len;
    st->first_len[i] = v == NULL ? -1 : (int)n;
    st->first_format[i] = st->formats[i];
    if (v != NULL) failed |= text_put(&st->first, v, n) | text_put(&st->first, "", 1);
  }
  for (i = 0; i < st->nparams; i++) {
    pg_text *a = &st->arrays[i];
    const char *v = st->values[i];
    size_t before = a->len, k;
    failed |= text_put(a, st->rows == 0 ? "{" : ",", 1);
    if (v == NULL) {
      failed |= text_put(a, "NULL", 4);
    } else if (st->formats[i] == 1) {   /* bytes: "\\x" and hex, the backslash escaped */
      failed |= text_put(a, "\"\\\\x", 4);
      for (k = 0; k < (size_t)st->lengths[i]; k++) {
        char two[2] = {hex[(unsigned char)v[k] >> 4], hex[(unsigned char)v[k] & 15]};
        failed |= text_put(a, two, 2);
      }
      failed |= text_put(a, "\"", 1);
    } else {
      failed |= text_put(a, "\"", 1);
      for (; *v != '\0'; v++) {
        if (*v == '"' || *v == '\\') failed |= text_put(a, "\\", 1);
        failed |= text_put(a, v, 1);
      }
      failed |= text_put(a, "\"", 1);
    }
    st->db->waiting_bytes += a->len - before;
  }
  st->rows++;
  return failed;
}

/* The waiting rows, sent in pipeline mode (their results read with the
** deferred writes'): 0, or nonzero with the failure kept. */
static int send_waiting(pg_db *db) {
  const char *values[PG_MAX_PARAMS];
  int i, k, failed = 0;
  for (k = 0; k < db->nwaiting; k++) {
    pg_stmt *st = db->waiting[k];
    int one = st->rows == 1, full = 0;
    for (i = 0; i < st->nparams; i++) {
      full |= text_put(&st->arrays[i], "}", 1);
      values[i] = one ? (st->first_len[i] < 0 ? NULL : st->first.p + st->first_at[i])
                      : st->arrays[i].p;
      st->arrays[i].len = 0;
    }
    st->rows = 0;
    if (failed) {
      continue;   /* (the first failure's message stays) */
    } else if (full) {
      snprintf(db->err, sizeof db->err, "out of memory");
      failed = 1;
    } else if ((pq.PQpipelineStatus(db->conn) == PQ_PIPELINE_OFF &&
                pq.PQenterPipelineMode(db->conn) != 1) ||
               pq.PQsendQueryPrepared(db->conn, one ? st->name : st->batch_name, st->nparams,
                                      values, one ? st->first_len : NULL,
                                      one ? st->first_format : NULL, 0) != 1) {
      keep_error(db, NULL);
      failed = 1;
    } else {
      db->deferred++;
    }
  }
  db->nwaiting = 0;
  db->waiting_bytes = 0;
  return failed;
}

/* st's bound row, to wait with the others (send_waiting). */
static int wait_row(pg_stmt *st) {
  pg_db *db = st->db;
  int k = 0, i, j;
  while (k < db->nwaiting && db->waiting[k] != st) k++;
  for (i = k + 1; i < db->nwaiting && !depends(st, db->waiting[i]); i++) {}
  if (i < db->nwaiting) {
    /* its rows go after those of the statements after it, unless one of
    ** those depends on it: then what waits goes now */
    for (j = k + 1; j < db->nwaiting && !depends(db->waiting[j], st); j++) {}
    if (j < db->nwaiting) {
      if (send_waiting(db) != 0) return 1;
      k = 0;
    } else {
      memmove(db->waiting + k, db->waiting + k + 1, (size_t)(db->nwaiting - k - 1) * sizeof st);
      db->waiting[db->nwaiting - 1] = st;
    }
  }
  if (k == db->nwaiting) {
    if (k == WAITING_MAX && send_waiting(db) != 0) return 1;
    db->waiting[db->nwaiting++] = st;
  }
  if (add_row(st) != 0) {
    snprintf(db->err, sizeof db->err, "out of memory");
    return 1;
  }
  if (st->rows >= WAITING_ROWS || db->waiting_bytes >= WAITING_BYTES) return send_waiting(db);
  return 0;
}

/* The most writes sent before their results are read: the server's
** answers wait in the socket meanwhile, which must not fill up. */
#define DEFER_MAX 256

static int pg_step(void *p);

static int pg_defer(void *p) {
  pg_stmt *st = p;
  pg_db *db = st->db;
  if (st->control && !st->deferrable) {   /* the transaction's own: after what is deferred */
    int step;
    while ((step = pg_step(st)) == LP_CATALOG_ROW) {}
    return step == LP_CATALOG_FAILED;
  }
  if (st->batches == 0 && st->insert != NULL && batch_setup(st) != 0) return 1;
  if (st->batches == 1) return wait_row(st) != 0 || (db->deferred >= DEFER_MAX && flush(db) != 0);
  if (send_waiting(db) != 0) return 1;
  if (pq.PQpipelineStatus(db->conn) == PQ_PIPELINE_OFF && pq.PQenterPipelineMode(db->conn) != 1) {
    keep_error(db, NULL);
    return 1;
  }
  if (pq.PQsendQueryPrepared(db->conn, st->name, st->nparams, st->values, st->lengths, st->formats,
                          0) != 1) {
    keep_error(db, NULL);
    return 1;
  }
  return ++db->deferred >= DEFER_MAX ? flush(db) : 0;
}

/* What waits goes to the server, which runs it as it comes (the sync
** point, and reading the answers, come with the next statement that
** waits). */
static int pg_send(void *p) {
  pg_db *db = p;
  if (send_waiting(db) != 0) return 1;
  if (db->deferred > 0 && pq.PQflush(db->conn) != 0) {
    keep_error(db, NULL);
    return 1;
  }
  return 0;
}

/* Run st at the end of the pipeline of deferred writes: one round trip
** for them all. 0, or nonzero with the first failure kept. */
static int run_after_deferred(pg_stmt *st) {
  pg_db *db = st->db;
  int n = db->deferred + 1;
  db->deferred = 0;
  if (pq.PQsendQueryPrepared(db->conn, st->name, st->nparams, st->values, st->lengths, st->formats,
                          0) != 1 || pq.PQpipelineSync(db->conn) != 1) {
    keep_error(db, NULL);
    return 1;
  }
  return collect(db, n, &st->res);
}

static int pg_step(void *p) {
  pg_stmt *st = p;
  if (!st->ran) {
    ExecStatusType s;
    st->ran = 1;
    if (send_waiting(st->db) != 0 && !st->undo) return LP_CATALOG_FAILED;
    if (st->db->deferred > 0 && run_after_deferred(st) != 0) {
      /* a ROLLBACK the failure skipped: now, on its own */
      if (!st->undo) return LP_CATALOG_FAILED;
      pq.PQclear(st->res);
      st->res = NULL;
    }
    if (st->res == NULL)
      st->res = pq.PQexecPrepared(st->db->conn, st->name, st->nparams, st->values, st->lengths,
                               st->formats, 0);
    s = pq.PQresultStatus(st->res);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
      keep_error(st->db, st->res);
      return LP_CATALOG_FAILED;
    }
    st->db->changes = atoll(pq.PQcmdTuples(st->res));
  }
  if (st->res == NULL || st->row + 1 >= pq.PQntuples(st->res)) return LP_CATALOG_DONE;
  st->row++;
  return LP_CATALOG_ROW;
}

static int pg_columns(void *p) {
  pg_stmt *st = p;
  return st->res != NULL ? pq.PQnfields(st->res) : 0;
}

static const char *pg_column_name(void *p, int i) {
  return pq.PQfname(((pg_stmt *)p)->res, i);
}

static int hexval(int c) {
  return c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0';
}

/* Column col's text (a bytea's: \x and hex digits) as its bytes, in the
** column's buffer; empty if memory ran out. */
static const unsigned char *unhex(pg_stmt *st, int col, const char *t, size_t len,
                                  size_t *out) {
  size_t n = len >= 2 ? (len - 2) / 2 : 0, i;
  unsigned char *b;
  *out = 0;
  if (col >= st->nblobs) {
    int want = pq.PQnfields(st->res);
    void *grown = realloc(st->blobs, (size_t)want * sizeof *st->blobs);
    if (grown == NULL) return (const unsigned char *)"";
    st->blobs = grown;
    memset(st->blobs + st->nblobs, 0, (size_t)(want - st->nblobs) * sizeof *st->blobs);
    st->nblobs = want;
  }
  if (n + 1 > st->blobs[col].cap) {
    unsigned char *grown = realloc(st->blobs[col].p, n + 1);
    if (grown == NULL) return (const unsigned char *)"";
    st->blobs[col].p = grown;
    st->blobs[col].cap = n + 1;
  }
  b = st->blobs[col].p;
  for (i = 0; i < n; i++) b[i] = (unsigned char)(hexval(t[2 + 2 * i]) << 4 | hexval(t[3 + 2 * i]));
  *out = n;
  return b;
}

static void pg_column(void *p, int i, lp_catalog_value *out) {
  pg_stmt *st = p;
  const char *t;
  if (pq.PQgetisnull(st->res, st->row, i)) {
    out->type = LP_CATALOG_NULL;
    return;
  }
  t = pq.PQgetvalue(st->res, st->row, i);
  switch (pq.PQftype(st->res, i)) {
    case BOOLOID:
      out->type = LP_CATALOG_INT;
      out->u.i = t[0] == 't';
      break;
    case INT8OID: case INT4OID: case INT2OID: case OIDOID:
      out->type = LP_CATALOG_INT;
      out->u.i = strtoll(t, NULL, 10);
      break;
    case FLOAT4OID: case FLOAT8OID: case NUMERICOID:
      out->type = LP_CATALOG_REAL;
      out->u.d = strtod(t, NULL);
      break;
    case BYTEAOID:
      out->type = LP_CATALOG_BLOB;
      out->u.s.p = unhex(st, i, t, (size_t)pq.PQgetlength(st->res, st->row, i), &out->u.s.len);
      break;
    default:
      out->type = LP_CATALOG_TEXT;
      out->u.s.p = t;
      out->u.s.len = (size_t)pq.PQgetlength(st->res, st->row, i);
  }
}

static const char *pg_column_text(void *p, int i, size_t *len) {
  pg_stmt *st = p;
  lp_catalog_value v;
  if (pq.PQgetisnull(st->res, st->row, i)) {
    *len = 0;
    return NULL;
  }
  switch (pq.PQftype(st->res, i)) {
    case BOOLOID:
      *len = 1;
      return pq.PQgetvalue(st->res, st->row, i)[0] == 't' ? "1" : "0";
    case BYTEAOID:
      pg_column(p, i, &v);
      *len = v.u.s.len;
      return v.u.s.p;
    default:
      *len = (size_t)pq.PQgetlength(st->res, st->row, i);
      return pq.PQgetvalue(st->res, st->row, i);
  }
}

static void pg_reset(void *p) {
  pg_stmt *st = p;
  pq.PQclear(st->res);
  st->res = NULL;
  st->row = -1;
  st->ran = 0;
}

static const char *pg_library_version(void) {
  return PG_VERSION;
}

const lp_catalog_backend lp_pg_backend = {
  "PostgreSQL", SCHEMA_VERSION, statements, (int)(sizeof statements / sizeof statements[0]),
  &lp_sqlite_backend, &dialect, pg_accepts, pg_open, pg_close, pg_describe, pg_where, pg_errmsg, pg_in_transaction,
  pg_changes, pg_prepare, pg_finalize, pg_bind, pg_step, pg_defer, pg_send, pg_columns, pg_column_name, pg_column,
  pg_column_text, pg_reset, NULL, pg_library_version, NULL, NULL,
};
