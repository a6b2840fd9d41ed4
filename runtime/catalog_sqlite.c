/* SPDX-License-Identifier: MIT */
/*
** catalog_sqlite.c: the sqlite catalog backend, the default one: a file
** per catalog folder, in WAL mode. The only file that sees sqlite3.h.
**
** It gives the catalog interface (catalog.c) a table of operations over
** sqlite's prepared statements, its schema and migrations, and its SQL of
** every named statement catalog.c declares. What is sqlite's own, and a
** second backend does its own way:
**   - placeholders ?N; LIKE ignores ASCII case (the listings' dialect);
**   - BEGIN IMMEDIATE: a writer takes the write lock when it starts, and
**     others queue on the busy timeout, so numbering a version as the
**     highest number plus one (next_version) cannot race;
**   - INSERT OR IGNORE / OR REPLACE; IS and IS NOT compare NULLs;
**   - rowid: step_run_artifacts keeps its links' order in it; tag_links,
**     visualizations, step_run_lookups and deleted_versions are WITHOUT
**     ROWID; a deleted row's seq may be given again (delete_version);
**   - triggers fill tag_links.version_seq for writers that leave it out;
**   - PRAGMA user_version counts the migrations applied; PRAGMAs set WAL,
**     the sync level, foreign keys and where temporary data goes;
**   - last_insert_rowid() gives a new version's seq (RETURNING would too,
**     at a cost);
**   - strftime makes the time only in migrations 6 and 10: statements take the
**     time and new ids from the catalog as parameters.
** The schema is a public interface (runtime/README.md, "The catalog
** schema"): change it only through a new migration.
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include "catalog_backend.h"

/* Migrations, applied in order; PRAGMA user_version counts those applied. */
static const char *const migrations[] = {
  "CREATE TABLE pipelines(\n"
  "  seq INTEGER PRIMARY KEY,\n"
  "  id TEXT NOT NULL UNIQUE,\n"
  "  name TEXT NOT NULL UNIQUE,\n"
  "  created TEXT NOT NULL);\n"
  "CREATE TABLE pipeline_runs(\n"
  "  seq INTEGER PRIMARY KEY,\n"
  "  id TEXT NOT NULL UNIQUE,\n"
  "  name TEXT NOT NULL UNIQUE,\n"
  "  pipeline_id TEXT NOT NULL REFERENCES pipelines(id),\n"
  "  status TEXT NOT NULL,\n"
  "  start_time TEXT NOT NULL,\n"
  "  end_time TEXT,\n"
  "  error TEXT);\n"
  "CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs(pipeline_id, seq);\n"
  "CREATE TABLE step_runs(\n"
  "  seq INTEGER PRIMARY KEY,\n"
  "  id TEXT NOT NULL UNIQUE,\n"
  "  run_id TEXT NOT NULL REFERENCES pipeline_runs(id),\n"
  "  name TEXT NOT NULL,\n"
  "  step_name TEXT NOT NULL,\n"
  "  status TEXT NOT NULL,\n"
  "  start_time TEXT NOT NULL,\n"
  "  end_time TEXT,\n"
  "  parameters BLOB,\n"
  "  error TEXT,\n"
  "  traceback TEXT,\n"
  "  UNIQUE(run_id, name));\n"
  "CREATE TABLE artifacts(\n"
  "  seq INTEGER PRIMARY KEY,\n"
  "  id TEXT NOT NULL UNIQUE,\n"
  "  name TEXT NOT NULL UNIQUE,\n"
  "  created TEXT NOT NULL);\n"
  "CREATE TABLE artifact_versions(\n"
  "  seq INTEGER PRIMARY KEY,\n"
  "  id TEXT NOT NULL UNIQUE,\n"
  "  artifact_id TEXT NOT NULL REFERENCES artifacts(id),\n"
  "  version TEXT NOT NULL,\n"
  "  version_number INTEGER,\n"
  "  type TEXT NOT NULL,\n"
  "  data_type TEXT NOT NULL,\n"
  "  content_hash TEXT NOT NULL,\n"
  "  size INTEGER NOT NULL,\n"
  "  stored_size INTEGER NOT NULL,\n"
  "  uri TEXT NOT NULL,\n"
  "  codec_version INTEGER NOT NULL,\n"
  "  created TEXT NOT NULL,\n"
  "  producer_step_run_id TEXT REFERENCES step_runs(id),\n"
  "  UNIQUE(artifact_id, version));\n"
  "CREATE INDEX artifact_versions_by_artifact ON artifact_versions(artifact_id, seq);\n"
  "CREATE INDEX artifact_versions_by_number ON artifact_versions(artifact_id, version_number);\n"
  "CREATE INDEX artifact_versions_by_producer ON artifact_versions(producer_step_run_id);\n"
  "CREATE INDEX artifact_versions_by_hash ON artifact_versions(content_hash);\n"
  "CREATE TABLE step_run_artifacts(\n"
  "  step_run_id TEXT NOT NULL REFERENCES step_runs(id),\n"
  "  kind TEXT NOT NULL CHECK (kind IN ('input', 'output')),\n"
  "  name TEXT NOT NULL,\n"
  "  artifact_version_id TEXT NOT NULL REFERENCES artifact_versions(id),\n"
  "  PRIMARY KEY (step_run_id, kind, name));\n"
  "CREATE INDEX step_run_artifacts_by_version ON step_run_artifacts(artifact_version_id, kind);\n",

  /* 2: tags and run metadata, on artifact versions, artifacts, step runs
  ** and pipeline runs (the entity kind says which table entity_id is in). */
  "CREATE TABLE tags(\n"
  "  seq INTEGER PRIMARY KEY,\n"
  "  name TEXT NOT NULL UNIQUE);\n"
  "CREATE TABLE tag_links(\n"
  "  entity TEXT NOT NULL CHECK (entity IN ('artifact_version', 'artifact', 'pipeline_run')),\n"
  "  entity_id TEXT NOT NULL,\n"
  "  tag_seq INTEGER NOT NULL REFERENCES tags(seq),\n"
  "  PRIMARY KEY (entity, entity_id, tag_seq)) WITHOUT ROWID;\n"
  "CREATE INDEX tag_links_by_tag ON tag_links(tag_seq, entity, entity_id);\n"
  "CREATE TABLE run_metadata(\n"
  "  seq INTEGER PRIMARY KEY,\n"
  "  entity TEXT NOT NULL CHECK (entity IN ('artifact_version', 'step_run', 'pipeline_run')),\n"
  "  entity_id TEXT NOT NULL,\n"
  "  key TEXT NOT NULL,\n"
  "  value BLOB NOT NULL,\n"
  "  value_number REAL,\n"
  "  value_text TEXT,\n"
  "  created TEXT NOT NULL,\n"
  "  UNIQUE (entity, entity_id, key));\n"
  "CREATE INDEX run_metadata_by_key ON run_metadata(key, entity, value_number);\n"
  "CREATE INDEX pipeline_runs_by_status ON pipeline_runs(status, seq);\n"
  "CREATE INDEX artifact_versions_by_type ON artifact_versions(type, seq);\n"
  "CREATE INDEX artifact_versions_by_created ON artifact_versions(created);\n",

  /* 3: step output, retries and caching; the process that runs a run, so
  ** that a run whose process died can be told from one still going. */
  "ALTER TABLE step_runs ADD COLUMN output TEXT;\n"
  "ALTER TABLE step_runs ADD COLUMN attempts INTEGER;\n"
  "ALTER TABLE step_runs ADD COLUMN cache_key TEXT;\n"
  "ALTER TABLE step_runs ADD COLUMN cache_parts BLOB;\n"
  "ALTER TABLE step_runs ADD COLUMN cached_from TEXT;\n"
  "ALTER TABLE step_runs ADD COLUMN cache_note TEXT;\n"
  "CREATE INDEX step_runs_by_cache_key ON step_runs(cache_key, seq);\n"
  "CREATE INDEX step_runs_by_run ON step_runs(run_id, seq);\n"
  "CREATE INDEX step_runs_by_name ON step_runs(name, seq);\n"
  "ALTER TABLE pipeline_runs ADD COLUMN pid INTEGER;\n"
  "ALTER TABLE pipeline_runs ADD COLUMN process_start TEXT;\n",

  /* 4: a version's tag links also hold the version's seq, so "the newest
  ** versions tagged T" is a range of one index however many versions carry
  ** T (lua/lupine/query.lua). Triggers fill it in whichever of the link
  ** and the version is written first, for writers that leave it out. */
  "ALTER TABLE tag_links ADD COLUMN version_seq INTEGER;\n"
  "UPDATE tag_links SET version_seq = (SELECT seq FROM artifact_versions v\n"
  "  WHERE v.id = tag_links.entity_id) WHERE entity = 'artifact_version';\n"
  "CREATE INDEX tag_links_by_version ON tag_links(tag_seq, version_seq)\n"
  "  WHERE entity = 'artifact_version';\n"
  "CREATE TRIGGER tag_links_version_seq AFTER INSERT ON tag_links\n"
  "  WHEN NEW.entity = 'artifact_version' AND NEW.version_seq IS NULL BEGIN\n"
  "  UPDATE tag_links SET version_seq = (SELECT seq FROM artifact_versions\n"
  "    WHERE id = NEW.entity_id) WHERE entity = 'artifact_version'\n"
  "    AND entity_id = NEW.entity_id AND tag_seq = NEW.tag_seq;\n"
  "END;\n"
  "CREATE TRIGGER artifact_versions_tag_seq AFTER INSERT ON artifact_versions BEGIN\n"
  "  UPDATE tag_links SET version_seq = NEW.seq\n"
  "    WHERE entity = 'artifact_version' AND entity_id = NEW.id;\n"
  "END;\n",

  /* visualizations: a version's HTML, SVG, CSV, markdown or text views
  ** (runtime/visual.c), stored as objects; the key is the index by version,
  ** and gc reads the hashes through the other. */
  "CREATE TABLE visualizations(\n"
  "  artifact_version_id TEXT NOT NULL REFERENCES artifact_versions(id),\n"
  "  position INTEGER NOT NULL,\n"
  "  type TEXT NOT NULL CHECK (type IN ('html', 'svg', 'csv', 'markdown', 'text')),\n"
  "  content_hash TEXT NOT NULL,\n"
  "  size INTEGER NOT NULL,\n"
  "  PRIMARY KEY (artifact_version_id, position)) WITHOUT ROWID;\n"
  "CREATE INDEX visualizations_by_hash ON visualizations(content_hash);\n",

  /* 6: stacks and artifact stores. A stack names the artifact store and
  ** the orchestrator a run uses; exactly one is active. Each version
  ** records the store holding its object (and its visualizations'); the
  ** default store (path NULL) is <home>/artifacts, so existing versions
  ** and a moved catalog folder keep working. */
  "CREATE TABLE artifact_stores(\n"
  "  seq INTEGER PRIMARY KEY,\n"
  "  id TEXT NOT NULL UNIQUE,\n"
  "  name TEXT NOT NULL UNIQUE,\n"
  "  flavor TEXT NOT NULL,\n"
  "  path TEXT,\n"
  "  created TEXT NOT NULL);\n"
  "CREATE TABLE stacks(\n"
  "  seq INTEGER PRIMARY KEY,\n"
  "  id TEXT NOT NULL UNIQUE,\n"
  "  name TEXT NOT NULL UNIQUE,\n"
  "  artifact_store_id TEXT NOT NULL REFERENCES artifact_stores(id),\n"
  "  orchestrator TEXT NOT NULL DEFAULT 'local',\n"
  "  jobs INTEGER,\n"
  "  active INTEGER NOT NULL DEFAULT 0,\n"
  "  created TEXT NOT NULL);\n"
  "CREATE UNIQUE INDEX stacks_active ON stacks(active) WHERE active = 1;\n"
  "INSERT INTO artifact_stores(id, name, flavor, path, created) VALUES ("
  "'" LP_DEFAULT_STORE_ID "', 'default', 'local', NULL,"
  " strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z');\n"
  "INSERT INTO stacks(id, name, artifact_store_id, orchestrator, active, created) VALUES ("
  "'" LP_DEFAULT_STACK_ID "', 'default', '" LP_DEFAULT_STORE_ID "', 'local', 1,"
  " strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z');\n"
  "ALTER TABLE artifact_versions ADD COLUMN artifact_store_id TEXT NOT NULL DEFAULT '"
  LP_DEFAULT_STORE_ID "';\n"
  "CREATE INDEX artifact_versions_by_store ON artifact_versions(artifact_store_id,"
  " content_hash);\n"
  "ALTER TABLE pipeline_runs ADD COLUMN stack TEXT;\n",

  /* 7: the cache's two indexes hold only what their lookups can return:
  ** completed step runs by cache key (cache_hit), and step runs with cache
  ** parts, which cache hits have not, by name (cache_hit's previous). A cache
  ** hit then writes a leaf of neither, and both stay smaller. */
  "DROP INDEX step_runs_by_cache_key;\n"
  "CREATE INDEX step_runs_by_cache_key ON step_runs(cache_key, seq)"
  " WHERE status = 'completed';\n"
  "DROP INDEX step_runs_by_name;\n"
  "CREATE INDEX step_runs_by_name ON step_runs(name, seq) WHERE cache_parts IS NOT NULL;\n",

  /* 8: links find their versions' consumers by the version's seq, not its
  ** id: the versions a run reads were made in order, so its links land
  ** side by side in the index instead of one in a random leaf each (a
  ** cached re-run of a 1000-step chain in a catalog of 40 runs: 102 ms,
  ** 54 ms without). sqlite checks a foreign key on a parent's delete
  ** through an index on the child's key, so the key to artifact_versions
  ** goes: deleting a version deletes its links first (delete_version). */
  "CREATE TABLE step_run_artifacts_8(\n"
  "  step_run_id TEXT NOT NULL REFERENCES step_runs(id),\n"
  "  kind TEXT NOT NULL CHECK (kind IN ('input', 'output')),\n"
  "  name TEXT NOT NULL,\n"
  "  artifact_version_id TEXT NOT NULL,\n"
  "  version_seq INTEGER NOT NULL,\n"
  "  PRIMARY KEY (step_run_id, kind, name));\n"
  "INSERT INTO step_run_artifacts_8 SELECT l.step_run_id, l.kind, l.name,"
  " l.artifact_version_id, v.seq FROM step_run_artifacts l"
  " JOIN artifact_versions v ON v.id = l.artifact_version_id ORDER BY l.rowid;\n"
  "DROP TABLE step_run_artifacts;\n"
  "ALTER TABLE step_run_artifacts_8 RENAME TO step_run_artifacts;\n"
  "CREATE INDEX step_run_artifacts_by_version ON step_run_artifacts(version_seq, kind);\n",

  /* 9: exact artifact semantics. A step run's random seed; how each
  ** version was made (its own step's output, saved by hand inside a step,
  ** an external input stored from the pipeline body, or registered from a
  ** path outside any pipeline); exclusive tags (on at most one version of
  ** an artifact, one run of a pipeline); the versions a step's catalog
  ** lookups of "the latest" resolved to, which a later cache hit must
  ** still find the latest; and a tombstone for each deleted version, so
  ** lineage names what a run used after it was deleted. */
  "ALTER TABLE step_runs ADD COLUMN seed INTEGER;\n"
  "ALTER TABLE artifact_versions ADD COLUMN save_type TEXT NOT NULL DEFAULT 'step_output'"
  " CHECK (save_type IN ('step_output', 'manual', 'external', 'registered'));\n"
  "ALTER TABLE tags ADD COLUMN exclusive INTEGER NOT NULL DEFAULT 0;\n"
  "CREATE TABLE step_run_lookups(\n"
  "  step_run_id TEXT NOT NULL,\n"
  "  artifact_name TEXT NOT NULL,\n"
  "  artifact_version_id TEXT NOT NULL,\n"
  "  version_seq INTEGER NOT NULL,\n"
  "  PRIMARY KEY (step_run_id, artifact_name)) WITHOUT ROWID;\n"
  "CREATE TABLE deleted_versions(\n"
  "  id TEXT PRIMARY KEY,\n"
  "  artifact_name TEXT NOT NULL,\n"
  "  version TEXT NOT NULL,\n"
  "  deleted TEXT NOT NULL) WITHOUT ROWID;\n"
  /* how many outputs a completed step run stored: fewer than its step
  ** declares when a step with the default output returned no value (0), so
  ** that a cache hit on it reuses nothing rather than taking a missing
  ** output (a deleted version) for one never stored */
  "ALTER TABLE step_runs ADD COLUMN output_count INTEGER;\n"
  /* before, only save_artifact outside a step made a version no step run
  ** produced */
  "UPDATE artifact_versions SET save_type = 'manual' WHERE producer_step_run_id IS NULL;\n"
  /* 1 on a step run that has rows in step_run_lookups: a cache hit reads
  ** it with the row it finds, so steps without lookups cost no probe */
  "ALTER TABLE step_runs ADD COLUMN lookups INTEGER;\n"
  /* how a deleted version was made: a step run's links to it still tell
  ** its own outputs from what it saved by hand */
  "ALTER TABLE deleted_versions ADD COLUMN save_type TEXT NOT NULL DEFAULT 'step_output';\n"
  /* the steps a run planned when it started (CBOR: [{name, step, after}]),
  ** so that a run still going shows the steps yet to start too */
  "ALTER TABLE pipeline_runs ADD COLUMN plan BLOB;\n",

  /* 10: orchestrators, the stack component that says where steps run
  ** (ZenML's): 'local' is the coordinator's forked workers; a 'slurm' one
  ** submits steps as Slurm jobs, with its defaults for every job and its
  ** work folder on a file system the nodes share. A stack names its
  ** orchestrator by name (stacks.orchestrator, as before). Each step run
  ** records the orchestrator that ran it (NULL: nothing ran, a cache hit
  ** or a skipped step), and on Slurm its job's id (the last attempt's). */
  "CREATE TABLE orchestrators(\n"
  "  seq INTEGER PRIMARY KEY,\n"
  "  id TEXT NOT NULL UNIQUE,\n"
  "  name TEXT NOT NULL UNIQUE,\n"
  "  flavor TEXT NOT NULL,\n"
  "  work_dir TEXT,\n"
  "  partition TEXT,\n"
  "  account TEXT,\n"
  "  time_limit TEXT,\n"
  "  requeue INTEGER NOT NULL DEFAULT 0,\n"
  "  sbatch_args TEXT,\n"
  "  grace REAL,\n"
  "  created TEXT NOT NULL);\n"
  "INSERT INTO orchestrators(id, name, flavor, created) VALUES ("
  "'" LP_DEFAULT_ORCHESTRATOR_ID "', 'local', 'local',"
  " strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z');\n"
  "ALTER TABLE step_runs ADD COLUMN orchestrator TEXT;\n"
  "ALTER TABLE step_runs ADD COLUMN job TEXT;\n",
  /* 11: the machine running a run and when it last said it was alive, so
  ** that a run whose process is on another machine can be told dead */
  "ALTER TABLE pipeline_runs ADD COLUMN host TEXT;\n"
  "ALTER TABLE pipeline_runs ADD COLUMN heartbeat TEXT;\n",
};
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define VERSION_COLUMNS \
  "SELECT v.id, a.name, v.version, v.type, v.data_type, v.content_hash, v.size," \
  " v.stored_size, v.uri, v.codec_version, v.created, v.producer_step_run_id," \
  " v.artifact_store_id, v.save_type" \
  " FROM artifact_versions v JOIN artifacts a ON a.id = v.artifact_id"
#define RUN_COLUMNS \
  "SELECT r.id, r.name, p.name AS pipeline_name, r.status, r.start_time," \
  " r.end_time, r.error FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id"
#define STEP_COLUMNS \
  "SELECT id, run_id, name, step_name, status, start_time, end_time," \
  " parameters, error, traceback, output AS logs, attempts, cache_key, cache_note," \
  " cached_from, seed, orchestrator, job" \
  " FROM step_runs"
#define STORE_COLUMNS \
  "SELECT s.id, s.name, s.flavor, s.path, s.created FROM artifact_stores s"
#define ORCHESTRATOR_COLUMNS \
  "SELECT id, name, flavor, work_dir, partition, account, time_limit, requeue, sbatch_args," \
  " grace, created FROM orchestrators"
#define STACK_COLUMNS \
  "SELECT k.id, k.name, k.orchestrator, k.jobs, k.active, k.created," \
  " s.id AS artifact_store_id," \
  " s.name AS artifact_store_name FROM stacks k JOIN artifact_stores s ON s.id = k.artifact_store_id"
/*
** The SQL of each named statement (catalog.c declares them: what each
** does and the parameters it takes, ?1 for the first). Grouped as there.
** An id prefix P matches ids in [P, P || '~'), a range the unique index on
** id answers.
*/
static const lp_catalog_sql statements[] = {
  /* transactions: the part of one that can be undone alone is a savepoint */
  {"begin", {"BEGIN IMMEDIATE"}},
  {"commit", {"COMMIT"}},
  {"rollback", {"ROLLBACK"}},
  {"savepoint", {"SAVEPOINT part"}},
  {"release", {"RELEASE part"}},
  {"rollback_to", {"ROLLBACK TO part"}},

  /* recording runs, step runs and versions */
  {"pipeline_id", {"SELECT id FROM pipelines WHERE name = ?1"}},
  {"pipeline_new", {"INSERT INTO pipelines(id, name, created) VALUES (?1, ?2, ?3)"}},
  {"run_name_taken", {"SELECT 1 FROM pipeline_runs WHERE name = ?1"}},
  {"run_new", {"INSERT INTO pipeline_runs(id, name, pipeline_id, status, start_time)"
               " VALUES (?1, ?2, ?3, 'running', ?4)"}},
  {"run_finish", {"UPDATE pipeline_runs SET status = ?2, end_time = ?3, error = ?4"
                  " WHERE id = ?1"}},
  {"step_run_new", {"INSERT INTO step_runs(id, run_id, name, step_name, status, start_time,"
                    " end_time, parameters, cache_key, cached_from, seed, orchestrator,"
                    " cache_parts, cache_note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN"
                    " ?5 = 'running' THEN NULL ELSE ?6 END, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"}},
  {"step_run_finish", {"UPDATE step_runs SET status = ?2, end_time = ?3, error = ?4,"
                       " traceback = ?5, output_count = ?6, output = ?7, attempts = ?8"
                       " WHERE id = ?1"}},
  {"artifact_id", {"SELECT id FROM artifacts WHERE name = ?1"}},
  {"artifact_new", {"INSERT INTO artifacts(id, name, created) VALUES (?1, ?2, ?3)"}},
  /* under the write lock BEGIN IMMEDIATE took: no other writer numbers */
  {"next_version", {"SELECT COALESCE(MAX(version_number), 0) + 1 FROM artifact_versions"
                    " WHERE artifact_id = ?1"}},
  {"version_taken", {"SELECT 1 FROM artifact_versions WHERE artifact_id = ?1 AND version = ?2"}},
  {"version_new", {"INSERT INTO artifact_versions(id, artifact_id, version, version_number,"
                   " type, data_type, content_hash, size, stored_size, uri, codec_version,"
                   " created, producer_step_run_id, artifact_store_id, save_type) VALUES (?1,"
                   " ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, coalesce(?14, '"
                   LP_DEFAULT_STORE_ID "'), ?15)",
                   /* RETURNING would cost a version 20,000 instructions more */
                   "SELECT last_insert_rowid()"}},
  {"version_new_next", {"INSERT INTO artifact_versions(id, artifact_id, version,"
                        " version_number, type, data_type, content_hash, size, stored_size, uri,"
                        " codec_version, created, producer_step_run_id, artifact_store_id,"
                        " save_type) SELECT ?2, n.id, n.next, n.next, ?3, ?4, ?5, ?6, ?7, ?8,"
                        " ?9, ?10, ?11, coalesce(?12, '" LP_DEFAULT_STORE_ID "'), ?13"
                        " FROM (SELECT a.id, (SELECT COALESCE(MAX(v.version_number), 0) + 1"
                        " FROM artifact_versions v WHERE v.artifact_id = a.id) AS next"
                        " FROM artifacts a WHERE a.name = ?1) n",
                        "SELECT seq, version_number FROM artifact_versions"
                        " WHERE seq = last_insert_rowid() AND changes() > 0"}},
  {"link", {"INSERT INTO step_run_artifacts(step_run_id, kind, name, artifact_version_id,"
            " version_seq) VALUES (?1, ?2, ?3, ?4, coalesce(?5, (SELECT seq FROM"
            " artifact_versions WHERE id = ?4)))"}},
  /* the store's index on versions reads the first side */
  {"content_hashes", {"SELECT content_hash FROM artifact_versions WHERE artifact_store_id = ?1"
                      " UNION SELECT z.content_hash FROM visualizations z"
                      " JOIN artifact_versions v ON v.id = z.artifact_version_id"
                      " WHERE v.artifact_store_id = ?1"}},
  {"file_hashes", {"SELECT DISTINCT content_hash FROM artifact_versions"
                   " WHERE data_type IN ('file', 'dir')"}},
  {"any_version", {"SELECT EXISTS (SELECT 1 FROM artifact_versions)"}},
  {"store_by_id", {"SELECT s.id, s.name, s.flavor, s.path, NULL FROM artifact_stores s"
                   " WHERE s.id = ?1"}},
  {"store_of_stack", {"SELECT s.id, s.name, s.flavor, s.path, k.name FROM stacks k"
                      " JOIN artifact_stores s ON s.id = k.artifact_store_id"
                      " WHERE (?1 IS NULL AND k.active = 1) OR k.name = ?1"}},
  {"begin_alone", {"BEGIN IMMEDIATE"}},
  {"version_number", {"SELECT seq, version_number FROM artifact_versions WHERE id = ?1"}},

  /* reads */
  {"version_by_id", {VERSION_COLUMNS " WHERE v.id = ?1"}},
  {"versions_by_id_prefix", {VERSION_COLUMNS
     " WHERE v.id >= ?1 AND v.id < ?1 || '~' ORDER BY v.id LIMIT 11"}},
  {"latest_version", {VERSION_COLUMNS " WHERE a.name = ?1 ORDER BY v.seq DESC LIMIT 1"}},
  {"version_by_name", {VERSION_COLUMNS " WHERE a.name = ?1 AND v.version = ?2"}},
  {"same_content_version", {"SELECT v.id, v.version, v.seq FROM artifact_versions v"
     " JOIN artifacts a ON a.id = v.artifact_id WHERE a.name = ?1 AND v.content_hash = ?2"
     " AND v.save_type = ?3 ORDER BY v.seq DESC LIMIT 1"}},
  {"versions_of", {VERSION_COLUMNS " WHERE a.name = ?1 ORDER BY v.seq DESC"}},
  {"artifact_names", {"SELECT name FROM artifacts ORDER BY name"}},
  {"run_by_id", {RUN_COLUMNS " WHERE r.id = ?1"}},
  {"run_by_name", {RUN_COLUMNS " WHERE r.name = ?1"}},
  {"runs_by_id_prefix", {RUN_COLUMNS
     " WHERE r.id >= ?1 AND r.id < ?1 || '~' ORDER BY r.id LIMIT 11"}},
  {"run_names", {"SELECT name FROM pipeline_runs ORDER BY name"}},
  {"step_runs_of_run", {STEP_COLUMNS " WHERE run_id = ?1 ORDER BY seq"}},
  {"step_run_by_id", {STEP_COLUMNS " WHERE id = ?1"}},
  /* in the order they were linked: rowid */
  {"step_run_artifacts", {"SELECT l.kind, l.name, l.artifact_version_id,"
     " coalesce(v.save_type, (SELECT save_type FROM deleted_versions d"
     " WHERE d.id = l.artifact_version_id)) AS save_type"
     " FROM step_run_artifacts l LEFT JOIN artifact_versions v ON v.seq = l.version_seq"
     " WHERE l.step_run_id = ?1 ORDER BY l.rowid"}},
  {"tags_of", {"SELECT t.name FROM tag_links l JOIN tags t ON t.seq = l.tag_seq"
     " WHERE l.entity = ?1 AND l.entity_id = ?2 ORDER BY t.name"}},
  {"metadata_of", {"SELECT key, value FROM run_metadata WHERE entity = ?1 AND entity_id = ?2"
     " ORDER BY key"}},
  {"artifact_by_name", {"SELECT id, name, created FROM artifacts WHERE name = ?1"}},
  {"deleted_version_by_id", {"SELECT id, artifact_name AS name, version, deleted, save_type"
     " FROM deleted_versions WHERE id = ?1"}},
  {"version_uses", {"SELECT l.kind, l.name, s.name AS step, r.name AS run"
     " FROM step_run_artifacts l JOIN step_runs s ON s.id = l.step_run_id"
     " JOIN pipeline_runs r ON r.id = s.run_id"
     " WHERE l.version_seq = (SELECT seq FROM artifact_versions WHERE id = ?1)"
     " ORDER BY l.kind = 'input', s.seq"}},
  {"versions_of_artifact", {VERSION_COLUMNS " WHERE v.artifact_id = ?1 ORDER BY v.seq"}},
  {"versions_of_run", {VERSION_COLUMNS " WHERE v.producer_step_run_id IN"
     " (SELECT id FROM step_runs WHERE run_id = ?1) ORDER BY v.seq"}},
  {"uses_of_run_versions", {"SELECT v.id, a.name AS artifact, v.version, l.kind, l.name,"
     " s.name AS step, r.name AS run FROM step_runs p"
     " JOIN artifact_versions v ON v.producer_step_run_id = p.id"
     " JOIN artifacts a ON a.id = v.artifact_id"
     " JOIN step_run_artifacts l ON l.version_seq = v.seq"
     " JOIN step_runs s ON s.id = l.step_run_id JOIN pipeline_runs r ON r.id = s.run_id"
     " WHERE p.run_id = ?1 AND s.run_id != ?1 ORDER BY v.seq, l.kind = 'input', s.seq"}},
  {"tags", {"SELECT name, exclusive, (SELECT count(*) FROM tag_links l WHERE l.tag_seq = t.seq)"
     " AS tagged_count FROM tags t ORDER BY name"}},
  {"tag_by_name", {"SELECT name, exclusive, (SELECT count(*) FROM tag_links l"
     " WHERE l.tag_seq = t.seq) AS tagged_count FROM tags t WHERE name = ?1"}},
  {"tagged_with", {"SELECT 'artifact_version' AS entity, a.name AS owner, v.version AS member,"
     " v.seq FROM tag_links l JOIN artifact_versions v ON v.seq = l.version_seq"
     " JOIN artifacts a ON a.id = v.artifact_id WHERE l.entity = 'artifact_version'"
     " AND l.tag_seq = (SELECT seq FROM tags WHERE name = ?1)"
     " UNION ALL SELECT 'pipeline_run', p.name, r.name, r.seq FROM tag_links l"
     " JOIN pipeline_runs r ON r.id = l.entity_id JOIN pipelines p ON p.id = r.pipeline_id"
     " WHERE l.entity = 'pipeline_run' AND l.tag_seq = (SELECT seq FROM tags WHERE name = ?1)"
     " UNION ALL SELECT 'artifact', a.name, NULL, a.seq FROM tag_links l"
     " JOIN artifacts a ON a.id = l.entity_id"
     " WHERE l.entity = 'artifact' AND l.tag_seq = (SELECT seq FROM tags WHERE name = ?1)"
     " ORDER BY 1, 2, 4"}},
  {"consumers", {"SELECT s.id, s.run_id, s.name, s.step_name, s.status, s.start_time,"
     " s.end_time, s.parameters, s.error, s.traceback, l.name AS input_name"
     " FROM step_run_artifacts l JOIN step_runs s ON s.id = l.step_run_id"
     " WHERE l.version_seq = (SELECT seq FROM artifact_versions WHERE id = ?1)"
     " AND l.kind = 'input' ORDER BY s.seq"}},
  {"prunable_versions", {VERSION_COLUMNS " WHERE v.producer_step_run_id IS NULL AND NOT EXISTS"
     " (SELECT 1 FROM step_run_artifacts l WHERE l.version_seq = v.seq) ORDER BY v.seq"}},
  {"prunable_artifacts", {"SELECT a.id, a.name FROM artifacts a WHERE NOT EXISTS"
     " (SELECT 1 FROM artifact_versions v WHERE v.artifact_id = a.id AND"
     " (v.producer_step_run_id IS NOT NULL OR EXISTS (SELECT 1 FROM step_run_artifacts l"
     " WHERE l.version_seq = v.seq))) ORDER BY a.name"}},
  /* the outputs in the order they were linked (rowid) */
  {"cache_hit", {"SELECT" LP_CATALOG_HIT_COLUMNS "," LP_CATALOG_HIT_OR_PREVIOUS
     " ORDER BY l.rowid"}},
  {"recent_cache_hits", {"SELECT s.cache_key," LP_CATALOG_HIT_COLUMNS
     " FROM (SELECT id, seq, seed, output_count, lookups, cache_key FROM step_runs"
     " WHERE status = 'completed' AND cache_key IS NOT NULL ORDER BY seq DESC LIMIT ?1) s"
     LP_CATALOG_HIT_LINKS " ORDER BY s.seq DESC, l.rowid"}},
  {"run_cache_hits", {"SELECT s.cache_key," LP_CATALOG_HIT_COLUMNS
     " FROM (SELECT id, seq, seed, output_count, lookups, cache_key FROM step_runs x"
     " WHERE run_id = (SELECT run_id FROM step_runs WHERE id = ?1) AND status = 'completed'"
     " AND cache_key IS NOT NULL AND NOT EXISTS (SELECT 1 FROM step_runs n"
     " WHERE n.cache_key = x.cache_key AND n.status = 'completed' AND n.seq > x.seq)"
     " ORDER BY seq DESC LIMIT ?2) s" LP_CATALOG_HIT_LINKS " ORDER BY s.seq DESC, l.rowid"}},
  {"stale_lookups", {"SELECT k.artifact_name AS artifact, coalesce(w.version, d.version) AS was,"
     " v.version AS latest, v.seq > k.version_seq AS newer FROM step_run_lookups k"
     " LEFT JOIN artifact_versions w ON w.id = k.artifact_version_id"
     " LEFT JOIN deleted_versions d ON d.id = k.artifact_version_id"
     " LEFT JOIN artifact_versions v ON v.seq = (SELECT max(x.seq) FROM artifact_versions x"
     " JOIN artifacts a ON a.id = x.artifact_id WHERE a.name = k.artifact_name)"
     " WHERE k.step_run_id = ?1 AND v.id IS NOT k.artifact_version_id"
     " AND v.producer_step_run_id IS NOT ?1 ORDER BY k.artifact_name LIMIT 1"}},
  {"step_run_lookups", {"SELECT artifact_name, artifact_version_id FROM step_run_lookups"
     " WHERE step_run_id = ?1 ORDER BY artifact_name"}},
  {"running_runs", {"SELECT id, name, pid, process_start, host, heartbeat FROM pipeline_runs"
     " WHERE status = 'running'"}},
  {"pipeline_by_name", {"SELECT id, name, created FROM pipelines WHERE name = ?1"}},
  {"pipeline_names", {"SELECT name FROM pipelines ORDER BY name"}},
  {"pipeline_by_id", {"SELECT id, name, created FROM pipelines WHERE id = ?1"}},
  {"pipelines_by_id_prefix", {"SELECT id, name, created FROM pipelines"
     " WHERE id >= ?1 AND id < ?1 || '~' ORDER BY id LIMIT 11"}},
  {"runs_of_pipeline", {RUN_COLUMNS " WHERE r.pipeline_id = ?1 ORDER BY r.seq DESC"}},
  {"latest_run_of_pipeline", {RUN_COLUMNS
     " WHERE r.pipeline_id = ?1 ORDER BY r.seq DESC LIMIT 1"}},
  {"run_count_of_pipeline", {"SELECT count(*) AS n FROM pipeline_runs WHERE pipeline_id = ?1"}},
  {"version_count_of_artifact", {"SELECT count(*) AS n FROM artifact_versions"
     " WHERE artifact_id = ?1"}},
  {"latest_version_of_artifact", {VERSION_COLUMNS
     " WHERE v.artifact_id = ?1 ORDER BY v.seq DESC LIMIT 1"}},
  {"tags_of_artifact", {"SELECT name FROM tags WHERE seq IN ("
     "SELECT tag_seq FROM tag_links WHERE entity = 'artifact' AND entity_id = ?1"
     " UNION SELECT l.tag_seq FROM artifact_versions v JOIN tag_links l"
     " ON l.entity = 'artifact_version' AND l.entity_id = v.id WHERE v.artifact_id = ?1)"
     " ORDER BY name"}},
  {"visualizations_of", {"SELECT position, type, content_hash, size FROM visualizations"
     " WHERE artifact_version_id = ?1 ORDER BY position"}},
  {"artifact_stores", {STORE_COLUMNS " ORDER BY s.name"}},
  {"artifact_store_by_name", {STORE_COLUMNS " WHERE s.name = ?1"}},
  {"artifact_store_by_id", {STORE_COLUMNS " WHERE s.id = ?1"}},
  {"artifact_store_names", {"SELECT name FROM artifact_stores ORDER BY name"}},
  {"stacks", {STACK_COLUMNS " ORDER BY k.name"}},
  {"stack_by_name", {STACK_COLUMNS " WHERE k.name = ?1"}},
  {"active_stack", {STACK_COLUMNS " WHERE k.active = 1"}},
  {"stack_names", {"SELECT name FROM stacks ORDER BY name"}},
  {"stacks_using_store", {"SELECT name FROM stacks WHERE artifact_store_id = ?1 ORDER BY name"}},
  {"orchestrators", {ORCHESTRATOR_COLUMNS " ORDER BY name"}},
  {"orchestrator_by_name", {ORCHESTRATOR_COLUMNS " WHERE name = ?1"}},
  {"orchestrator_names", {"SELECT name FROM orchestrators ORDER BY name"}},
  {"stacks_using_orchestrator", {"SELECT name FROM stacks WHERE orchestrator = ?1"
                                 " ORDER BY name"}},
  {"version_count_in_store", {"SELECT count(*) AS n FROM artifact_versions"
     " WHERE artifact_store_id = ?1"}},
  {"objects_in_store", {"SELECT 'value' AS kind, v.content_hash, v.size, v.id, a.name,"
     " v.version, v.data_type FROM artifact_versions v JOIN artifacts a ON a.id = v.artifact_id"
     " WHERE v.artifact_store_id = ?1"
     " UNION ALL SELECT 'visualization', z.content_hash, z.size, v.id, a.name, v.version, NULL"
     " FROM visualizations z JOIN artifact_versions v ON v.id = z.artifact_version_id"
     " JOIN artifacts a ON a.id = v.artifact_id WHERE v.artifact_store_id = ?1"
     " ORDER BY 2, 4"}},
  {"versions_to_copy", {"SELECT v.id, v.content_hash, v.size FROM artifact_versions v"
     " JOIN artifacts a ON a.id = v.artifact_id WHERE v.artifact_store_id = ?1"
     " AND (?2 IS NULL OR a.name = ?2) AND (?3 IS NULL OR EXISTS (SELECT 1 FROM tag_links l"
     " JOIN tags t ON t.seq = l.tag_seq WHERE l.entity = 'artifact_version'"
     " AND l.entity_id = v.id AND t.name = ?3)) ORDER BY v.seq"}},
  {"visualization_stores", {"SELECT DISTINCT v.artifact_store_id FROM visualizations z"
     " JOIN artifact_versions v ON v.id = z.artifact_version_id WHERE z.content_hash = ?1"}},
  {"run_plan", {"SELECT plan FROM pipeline_runs WHERE id = ?1"}},
  {"artifact_by_id", {"SELECT id, name, created FROM artifacts WHERE id = ?1"}},
  {"previous_version", {VERSION_COLUMNS " WHERE v.artifact_id = (SELECT artifact_id"
     " FROM artifact_versions WHERE id = ?1) AND v.seq < (SELECT seq FROM artifact_versions"
     " WHERE id = ?1) ORDER BY v.seq DESC LIMIT 1"}},
  {"tags_of_artifact_versions", {"SELECT l.entity_id AS id, t.name FROM artifact_versions v"
     " JOIN tag_links l ON l.entity = 'artifact_version' AND l.entity_id = v.id"
     " JOIN tags t ON t.seq = l.tag_seq WHERE v.artifact_id = ?1 ORDER BY v.seq, t.name"}},
  {"metadata_of_artifact_versions", {"SELECT m.entity_id AS id, m.key, m.value"
     " FROM artifact_versions v JOIN run_metadata m ON m.entity = 'artifact_version'"
     " AND m.entity_id = v.id WHERE v.artifact_id = ?1 ORDER BY v.seq, m.key"}},
  {"tags_of_pipeline_runs", {"SELECT l.entity_id AS id, t.name FROM pipeline_runs r"
     " JOIN tag_links l ON l.entity = 'pipeline_run' AND l.entity_id = r.id"
     " JOIN tags t ON t.seq = l.tag_seq WHERE r.pipeline_id = ?1 ORDER BY r.seq, t.name"}},
  {"metadata_of_pipeline_runs", {"SELECT m.entity_id AS id, m.key, m.value"
     " FROM pipeline_runs r JOIN run_metadata m ON m.entity = 'pipeline_run'"
     " AND m.entity_id = r.id WHERE r.pipeline_id = ?1 ORDER BY r.seq, m.key"}},
  {"search_artifacts", {"SELECT a.id, a.name, a.created, (SELECT count(*)"
     " FROM artifact_versions v WHERE v.artifact_id = a.id) AS version_count"
     " FROM artifacts a WHERE a.name LIKE ?1 ESCAPE '\\' ORDER BY a.name LIMIT ?2"}},
  {"search_versions", {VERSION_COLUMNS " WHERE a.name LIKE ?1 ESCAPE '\\'"
     " OR v.version LIKE ?1 ESCAPE '\\' ORDER BY v.seq DESC LIMIT ?2"}},
  {"search_runs", {RUN_COLUMNS " WHERE r.name LIKE ?1 ESCAPE '\\' ORDER BY r.seq DESC"
     " LIMIT ?2"}},
  {"search_pipelines", {"SELECT id, name, created FROM pipelines WHERE name LIKE ?1"
     " ESCAPE '\\' ORDER BY name LIMIT ?2"}},
  {"search_tags", {"SELECT name, (SELECT count(*) FROM tag_links l WHERE l.tag_seq = t.seq)"
     " AS tagged_count FROM tags t WHERE name LIKE ?1 ESCAPE '\\' ORDER BY name LIMIT ?2"}},
  {"search_metadata", {"SELECT m.entity, m.entity_id, m.key, m.value, a.name AS artifact,"
     " v.version, r.name AS run, s.name AS step, sr.name AS step_run_run"
     " FROM run_metadata m"
     " LEFT JOIN artifact_versions v ON m.entity = 'artifact_version' AND v.id = m.entity_id"
     " LEFT JOIN artifacts a ON a.id = v.artifact_id"
     " LEFT JOIN pipeline_runs r ON m.entity = 'pipeline_run' AND r.id = m.entity_id"
     " LEFT JOIN step_runs s ON m.entity = 'step_run' AND s.id = m.entity_id"
     " LEFT JOIN pipeline_runs sr ON sr.id = s.run_id"
     " WHERE m.key LIKE ?1 ESCAPE '\\' OR m.value_text LIKE ?1 ESCAPE '\\'"
     " ORDER BY m.seq DESC LIMIT ?2"}},
  {"metadata_keys", {"SELECT DISTINCT key AS name FROM run_metadata ORDER BY key"}},

  /* writes */
  {"tag", {"INSERT OR IGNORE INTO tags(name) VALUES (?3)",
           "DELETE FROM tag_links WHERE ?1 = 'artifact_version'"
           " AND entity = 'artifact_version'"
           " AND tag_seq = (SELECT seq FROM tags WHERE name = ?3 AND exclusive = 1)"
           " AND version_seq IN (SELECT seq FROM artifact_versions WHERE artifact_id ="
           " (SELECT artifact_id FROM artifact_versions WHERE id = ?2)) AND entity_id != ?2",
           "DELETE FROM tag_links WHERE ?1 = 'pipeline_run' AND entity = 'pipeline_run'"
           " AND tag_seq = (SELECT seq FROM tags WHERE name = ?3 AND exclusive = 1)"
           " AND entity_id IN (SELECT id FROM pipeline_runs WHERE pipeline_id ="
           " (SELECT pipeline_id FROM pipeline_runs WHERE id = ?2)) AND entity_id != ?2",
           "INSERT OR IGNORE INTO tag_links(entity, entity_id, tag_seq)"
           " SELECT ?1, ?2, seq FROM tags WHERE name = ?3"}},
  {"create_tag", {"INSERT INTO tags(name, exclusive) VALUES (?1, ?2)"}},
  {"update_tag", {"UPDATE tags SET name = coalesce(?2, name),"
                  " exclusive = coalesce(?3, exclusive) WHERE name = ?1 AND (?3 IS NOT 1"
                  " OR (NOT EXISTS (SELECT 1 FROM tag_links l JOIN artifact_versions v"
                  " ON v.seq = l.version_seq WHERE l.entity = 'artifact_version'"
                  " AND l.tag_seq = tags.seq GROUP BY v.artifact_id HAVING count(*) > 1)"
                  " AND NOT EXISTS (SELECT 1 FROM tag_links l JOIN pipeline_runs r"
                  " ON r.id = l.entity_id WHERE l.entity = 'pipeline_run'"
                  " AND l.tag_seq = tags.seq GROUP BY r.pipeline_id HAVING count(*) > 1)"
                  " AND NOT EXISTS (SELECT 1 FROM tag_links l WHERE l.entity = 'artifact'"
                  " AND l.tag_seq = tags.seq)))"}},
  {"delete_tag", {"DELETE FROM tag_links WHERE tag_seq = (SELECT seq FROM tags WHERE name = ?1)",
                  "DELETE FROM tags WHERE name = ?1"}},
  {"untag", {"DELETE FROM tag_links WHERE entity = ?1 AND entity_id = ?2"
             " AND tag_seq = (SELECT seq FROM tags WHERE name = ?3)"}},
  {"set_metadata", {"INSERT INTO run_metadata(entity, entity_id, key, value, value_number,"
                    " value_text, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    " ON CONFLICT (entity, entity_id, key) DO UPDATE SET value = excluded.value,"
                    " value_number = excluded.value_number, value_text = excluded.value_text,"
                    " created = excluded.created"}},
  {"set_run_plan", {"UPDATE pipeline_runs SET plan = ?2 WHERE id = ?1"}},
  {"run_process", {"UPDATE pipeline_runs SET pid = ?2, process_start = ?3, host = ?4,"
                   " heartbeat = ?5 WHERE id = ?1"}},
  {"run_heartbeat", {"UPDATE pipeline_runs SET heartbeat = ?2 WHERE id = ?1"}},
  {"mark_dead", {"UPDATE step_runs SET status = 'failed', error = ?2, end_time = ?3"
                 " WHERE run_id = ?1 AND status = 'running'",
                 "UPDATE pipeline_runs SET status = 'failed', error = ?2, end_time = ?3"
                 " WHERE id = ?1 AND status = 'running'"}},
  {"add_input", {"INSERT OR REPLACE INTO step_run_artifacts(step_run_id, kind, name,"
                 " artifact_version_id, version_seq) VALUES (?1, 'input', ?2, ?3,"
                 " (SELECT seq FROM artifact_versions WHERE id = ?3))"}},
  {"add_lookup", {"INSERT OR REPLACE INTO step_run_lookups(step_run_id, artifact_name,"
                  " artifact_version_id, version_seq) SELECT ?1, ?2, id, seq"
                  " FROM artifact_versions WHERE id = ?3",
                  "UPDATE step_runs SET lookups = 1 WHERE id = ?1 AND EXISTS (SELECT 1"
                  " FROM step_run_lookups WHERE step_run_id = ?1)"}},
  {"copy_lookups", {"INSERT OR REPLACE INTO step_run_lookups(step_run_id, artifact_name,"
                    " artifact_version_id, version_seq) SELECT ?1, artifact_name,"
                    " artifact_version_id, version_seq FROM step_run_lookups"
                    " WHERE step_run_id = ?2",
                    "UPDATE step_runs SET lookups = 1 WHERE id = ?1 AND EXISTS (SELECT 1"
                    " FROM step_run_lookups WHERE step_run_id = ?1)"}},
  /* the links' seq is negated: sqlite gives the largest seq again once its
  ** row is gone, and a link must not find the new version that gets it */
  {"delete_version", {
     "DELETE FROM tag_links WHERE entity = 'artifact_version' AND entity_id = ?1",
     "DELETE FROM run_metadata WHERE entity = 'artifact_version' AND entity_id = ?1",
     "INSERT OR REPLACE INTO deleted_versions(id, artifact_name, version, deleted, save_type)"
     " SELECT v.id, a.name, v.version, ?2, v.save_type FROM artifact_versions v"
     " JOIN artifacts a ON a.id = v.artifact_id WHERE v.id = ?1"
     " AND EXISTS (SELECT 1 FROM step_run_artifacts l WHERE l.version_seq = v.seq)",
     "UPDATE step_run_artifacts SET version_seq = -version_seq"
     " WHERE version_seq = (SELECT seq FROM artifact_versions WHERE id = ?1)",
     "DELETE FROM visualizations WHERE artifact_version_id = ?1",
     "DELETE FROM artifact_versions WHERE id = ?1"}},
  {"delete_run_links", {
     "DELETE FROM deleted_versions WHERE id IN (SELECT l.artifact_version_id"
     " FROM step_runs s JOIN step_run_artifacts l ON l.step_run_id = s.id"
     " WHERE s.run_id = ?1 AND l.version_seq < 0 AND NOT EXISTS (SELECT 1"
     " FROM step_run_artifacts o JOIN step_runs os ON os.id = o.step_run_id"
     " WHERE o.version_seq = l.version_seq AND os.run_id != ?1))",
     "DELETE FROM step_run_artifacts WHERE step_run_id IN"
     " (SELECT id FROM step_runs WHERE run_id = ?1)"}},
  {"delete_run", {
     "DELETE FROM run_metadata WHERE entity = 'step_run'"
     " AND entity_id IN (SELECT id FROM step_runs WHERE run_id = ?1)",
     "DELETE FROM step_run_lookups WHERE step_run_id IN"
     " (SELECT id FROM step_runs WHERE run_id = ?1)",
     "UPDATE step_runs SET cached_from = NULL WHERE cached_from IN"
     " (SELECT id FROM step_runs WHERE run_id = ?1) AND run_id != ?1",
     "DELETE FROM step_runs WHERE run_id = ?1",
     "DELETE FROM tag_links WHERE entity = 'pipeline_run' AND entity_id = ?1",
     "DELETE FROM run_metadata WHERE entity = 'pipeline_run' AND entity_id = ?1",
     "DELETE FROM pipeline_runs WHERE id = ?1"}},
  {"add_visualization", {"INSERT INTO visualizations(artifact_version_id, position, type,"
                         " content_hash, size) VALUES (?1, ?2, ?3, ?4, ?5)"}},
  {"delete_empty_artifact", {
     "DELETE FROM tag_links WHERE entity = 'artifact' AND entity_id = ?1"
     " AND NOT EXISTS (SELECT 1 FROM artifact_versions WHERE artifact_id = ?1)",
     "DELETE FROM artifacts WHERE id = ?1"
     " AND NOT EXISTS (SELECT 1 FROM artifact_versions WHERE artifact_id = ?1)"}},
  {"add_artifact_store", {"INSERT INTO artifact_stores(id, name, flavor, path, created)"
                          " VALUES (?5, ?1, ?2, ?3, ?4)"}},
  {"delete_artifact_store", {
     "DELETE FROM artifact_stores WHERE name = ?1 AND NOT EXISTS (SELECT 1 FROM stacks k"
     " WHERE k.artifact_store_id = artifact_stores.id) AND NOT EXISTS (SELECT 1 FROM"
     " artifact_versions v WHERE v.artifact_store_id = artifact_stores.id)"}},
  {"add_stack", {"INSERT INTO stacks(id, name, artifact_store_id, orchestrator, created, jobs)"
                 " SELECT ?6, ?1, id, ?3, ?5, ?4 FROM artifact_stores WHERE name = ?2"}},
  {"delete_stack", {"DELETE FROM stacks WHERE name = ?1 AND active = 0"}},
  {"add_orchestrator", {"INSERT INTO orchestrators(id, name, flavor, work_dir, partition,"
                        " account, time_limit, requeue, sbatch_args, grace, created)"
                        " VALUES (?11, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"}},
  {"delete_orchestrator", {"DELETE FROM orchestrators WHERE name = ?1 AND name <> 'local'"
                           " AND NOT EXISTS (SELECT 1 FROM stacks WHERE orchestrator = ?1)"}},
  {"set_step_run_job", {"UPDATE step_runs SET job = ?2, seed = coalesce(?3, seed)"
                        " WHERE id = ?1"}},
  {"set_active_stack", {"UPDATE stacks SET active = 0 WHERE active = 1"
                        " AND EXISTS (SELECT 1 FROM stacks WHERE name = ?1)",
                        "UPDATE stacks SET active = 1 WHERE name = ?1"}},
  {"set_run_stack", {"UPDATE pipeline_runs SET stack = ?2 WHERE id = ?1"}},
  {"move_version", {"UPDATE artifact_versions SET artifact_store_id = ?2, uri = ?3"
                    " WHERE id = ?1"}},
};

/* The versions with a tag: sqlite keeps the tables of a CROSS JOIN in
** their order, and INDEXED BY holds it to the index, so the newest
** versions with a tag are one range of tag_links_by_version read in
** order, however the planner would guess (tests/query_spec.lua checks
** the plans). */
static const lp_catalog_dialect dialect = {
  "?%d",
  "%s LIKE %s ESCAPE '\\'",
  "tag_links l INDEXED BY tag_links_by_version CROSS JOIN artifact_versions v"
  " ON v.seq = l.version_seq",
  "", " DESC",
  "EXPLAIN QUERY PLAN ", "detail",
  "(SELECT group_concat(name || char(10), '') FROM (SELECT t.name FROM tag_links l"
  " JOIN tags t ON t.seq = l.tag_seq WHERE l.entity = '%s' AND l.entity_id = %s"
  " ORDER BY t.name))",
  "l.rowid",
  "", NULL,   /* a row's INTEGER PRIMARY KEY is its rowid: the next follows */
  "",
};

/* ---- opening, configuring and migrating ---- */

static int dberr(sqlite3 *db, const char *target, const char *what, char *err, size_t errsz) {
  lp_errf(err, errsz, "catalog %s: %s failed (%s)", target, what, sqlite3_errmsg(db));
  return LUPINE_CATALOG;
}

static int migrate(sqlite3 *db, const char *target, char *err, size_t errsz) {
  sqlite3_stmt *st;
  int version = 0, rc;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
    return dberr(db, target, "reading the schema version", err, errsz);
  if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (version > NMIGRATIONS) {
    lp_errf(err, errsz, "catalog %s: schema version %d is newer than this "
            "Lupine understands (%d); upgrade Lupine", target, version, NMIGRATIONS);
    return LUPINE_CATALOG;
  }
  for (; version < NMIGRATIONS; version++) {
    char sql[64];
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
      return dberr(db, target, "starting a migration", err, errsz);
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
    /* Another process may have migrated while we waited for the lock. */
    rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_int(st, 0) > version) {
      sqlite3_finalize(st);
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      continue;
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(db, migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
      rc = dberr(db, target, "migrating the schema", err, errsz);
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      return rc;
    }
  }
  return LUPINE_OK;
}

/* A connection to the sqlite file at path, opened with flags (and NOMUTEX). */
static int connect(const char *path, int flags, sqlite3 **out, char *err, size_t errsz) {
  int rc;
  *out = NULL;
  if (sqlite3_open_v2(path, out, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    if (*out == NULL) {
      lp_errf(err, errsz, "out of memory opening catalog %s", path);
      return LUPINE_NOMEM;
    }
    rc = dberr(*out, path, "opening", err, errsz);
    sqlite3_close(*out);
    *out = NULL;
    return rc;
  }
  sqlite3_busy_timeout(*out, 30000);
  return LUPINE_OK;
}

/* Open the catalog file at path, which exists. A file made by Lupine has
** a schema version; any other (an empty file, another program's database,
** not a database at all) is refused before anything is written to it. */
static int open_file(const char *path, sqlite3 **out, char *err, size_t errsz) {
  sqlite3 *db;
  sqlite3_stmt *st;
  const char *why = NULL;
  struct stat sb;
  int rc, attempt, version = 0;
  if ((rc = connect(path, SQLITE_OPEN_READWRITE, &db, err, errsz)) != LUPINE_OK) return rc;
  if ((rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL)) == SQLITE_OK) {
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  if (rc == SQLITE_NOTADB) why = "it is not a database";
  else if (rc != SQLITE_ROW && rc != SQLITE_OK) {
    rc = dberr(db, path, "reading the schema version", err, errsz);
    sqlite3_close(db);
    return rc;
  } else if (version == 0)
    why = stat(path, &sb) == 0 && sb.st_size == 0 ? "it is an empty file"
                                                   : "it is a database Lupine did not make";
  if (why != NULL) {
    lp_errf(err, errsz, "%s is not a Lupine catalog (%s); move it away and a new "
            "catalog is made there", path, why);
    sqlite3_close(db);
    return LUPINE_CATALOG;
  }
  /* Turning WAL on takes an exclusive lock without waiting on the busy
  ** handler: two processes opening a catalog at once retry here. */
  for (attempt = 0;; attempt++) {
    rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    if (rc != SQLITE_BUSY || attempt == 3000) break;
    sqlite3_sleep(10);
  }
  if (rc != SQLITE_OK ||
      /* temp_store: statement journals and sorts in memory, not in a new
      ** file in the temporary folder for each of them */
      sqlite3_exec(db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                   " PRAGMA temp_store = MEMORY", NULL, NULL, NULL) != SQLITE_OK) {
    rc = dberr(db, path, "configuring", err, errsz);
    sqlite3_close(db);
    return rc;
  }
  if ((rc = migrate(db, path, err, errsz)) != LUPINE_OK) {
    sqlite3_close(db);
    return rc;
  }
  *out = db;
  return LUPINE_OK;
}

/* Make a new catalog at path: whole, under a name of its own, then linked
** into place, which fails if a file got there first (another process made
** the catalog at the same time: its file is used). So whoever finds a file
** at path finds a whole catalog, and only a missing file means "new". */
static int create(const char *path, char *err, size_t errsz) {
  char tmp[PATH_MAX];
  unsigned char r[16];
  sqlite3 *db;
  int rc, fd = -1, n, i;
  sqlite3_randomness(sizeof r, r);
  n = snprintf(tmp, sizeof tmp, "%s.new-", path);
  for (i = 0; i < (int)sizeof r && n > 0 && n < (int)sizeof tmp; i++)
    n += snprintf(tmp + n, sizeof tmp - (size_t)n, "%02x", r[i]);
  if (n <= 0 || n >= (int)sizeof tmp) {
    lp_errf(err, errsz, "catalog path is too long: %s", path);
    return LUPINE_MISUSE;
  }
  if ((rc = connect(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db, err, errsz)) !=
      LUPINE_OK)
    return rc;
  /* nobody reads the file before it is whole: no journal and no syncs
  ** while it is made, one sync at the end (half the time of making it in
  ** place) */
  if (sqlite3_exec(db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF", NULL, NULL,
                   NULL) != SQLITE_OK)
    rc = dberr(db, tmp, "configuring", err, errsz);
  else if ((rc = migrate(db, tmp, err, errsz)) == LUPINE_OK &&
           sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK)
    rc = dberr(db, tmp, "configuring", err, errsz);
  sqlite3_close(db);
  if (rc == LUPINE_OK && ((fd = open(tmp, O_RDONLY)) < 0 || fsync(fd) != 0 ||
                          (link(tmp, path) != 0 && errno != EEXIST))) {
    lp_errf(err, errsz, "cannot create catalog %s (%s)", path, strerror(errno));
    rc = LUPINE_IO;
  }
  if (fd >= 0) close(fd);
  unlink(tmp);
  return rc;
}

/*
** A snapshot at path, read only (`lupine exec`): opened immutable, so no
** lock is taken and no journal looked for (it never changes once made, and
** a shared file system's locks are not to be trusted), and query_only, so
** a write fails at once. Its schema must be this build's: a snapshot is
** never migrated.
*/
static int open_snapshot(const char *path, sqlite3 **out, char *err, size_t errsz) {
  char uri[PATH_MAX * 3 + 32];
  size_t n = 0;
  const char *p;
  sqlite3_stmt *st;
  int rc, version = -1;
  /* the path as a URI's: what a URI gives meaning to, escaped */
  n = (size_t)snprintf(uri, sizeof uri, "file:");
  for (p = path; *p != '\0' && n + 4 < sizeof uri; p++)
    n += strchr("?#%", *p) != NULL ? (size_t)snprintf(uri + n, 4, "%%%02X", (unsigned char)*p)
                                    : (size_t)snprintf(uri + n, 2, "%c", *p);
  snprintf(uri + n, sizeof uri - n, "?immutable=1");
  if ((rc = connect(uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, out, err, errsz)) != LUPINE_OK) {
    lp_errf(err, errsz, "catalog snapshot %s: cannot open it (%s)", path,
            access(path, R_OK) != 0 ? strerror(errno) : "not a database");
    return rc;
  }
  if (sqlite3_prepare_v2(*out, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  if (version != NMIGRATIONS || sqlite3_exec(*out, "PRAGMA query_only = 1", NULL, NULL,
                                             NULL) != SQLITE_OK) {
    if (version < 0) rc = dberr(*out, path, "reading the schema version", err, errsz);
    else {
      lp_errf(err, errsz, "catalog snapshot %s: schema version %d, where this Lupine reads %d",
              path, version, NMIGRATIONS);
      rc = LUPINE_CATALOG;
    }
    sqlite3_close(*out);
    *out = NULL;
    return rc;
  }
  return LUPINE_OK;
}

/* The catalog file at target, made first if there is none; or a snapshot,
** read only. */
static int sq_open(const char *target, int read_only, void **out, char *err, size_t errsz) {
  struct stat sb;
  int rc;
  *out = NULL;
  if (read_only) {
    sqlite3 *db = NULL;
    if ((rc = open_snapshot(target, &db, err, errsz)) == LUPINE_OK) *out = db;
    return rc;
  }
  if (stat(target, &sb) != 0) {
    if (errno != ENOENT) {
      lp_errf(err, errsz, "cannot open catalog %s (%s)", target, strerror(errno));
      return LUPINE_IO;
    }
    if (target[0] == '\0') {
      lp_errf(err, errsz, "an empty path names no catalog file");
      return LUPINE_MISUSE;
    }
    {   /* its folder is not made here: a catalog folder's own is, elsewhere */
      const char *slash = strrchr(target, '/');
      char folder[PATH_MAX];
      snprintf(folder, sizeof folder, "%.*s", slash == NULL ? 1 : slash == target ? 1 :
               (int)(slash - target), slash == NULL ? "." : target);
      if (stat(folder, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        lp_errf(err, errsz, "cannot create catalog %s: its folder %s is not there", target,
                folder);
        return LUPINE_IO;
      }
    }
    if ((rc = create(target, err, errsz)) != LUPINE_OK) return rc;
  }
  {
    sqlite3 *db = NULL;
    if ((rc = open_file(target, &db, err, errsz)) == LUPINE_OK) *out = db;
    return rc;
  }
}

/* A path to the catalog file: not a URI (scheme://), nor a key=value
** connection string, unless it is plainly a path (/..., ./...). */
static int sq_accepts(const char *target) {
  return strstr(target, "://") == NULL &&
         (strchr(target, '=') == NULL || target[0] == '/' || target[0] == '.');
}

static void sq_close(void *db) {
  sqlite3_close(db);
}

static const char *sq_errmsg(void *db) {
  return sqlite3_errmsg(db);
}

static int sq_in_transaction(void *db) {
  return !sqlite3_get_autocommit(db);
}

static int64_t sq_changes(void *db) {
  return sqlite3_changes64(db);
}

/*
** The catalog as db sees it (its uncommitted writes too), copied page by
** page (the backup API: a 20 MB catalog in about 20 ms, where VACUUM INTO
** rebuilds every index) into a file beside path, then put in place. The
** copy of a WAL catalog says WAL: it is made a plain file, which an
** immutable open reads without a -wal or -shm beside it. Not synced: a
** snapshot lasts one run, and is made again by a run started again.
*/
static int sq_snapshot(void *src, const char *path, char *err, size_t errsz) {
  char tmp[PATH_MAX];
  sqlite3 *db;
  sqlite3_backup *b;
  int rc;
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
    lp_errf(err, errsz, "catalog snapshot %s: the path is too long", path);
    return LUPINE_MISUSE;
  }
  unlink(tmp);
  if ((rc = connect(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db, err, errsz)) !=
      LUPINE_OK)
    return rc;
  /* nobody reads the file before it is whole: no journal, no syncs */
  if (sqlite3_exec(db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF", NULL, NULL,
                   NULL) != SQLITE_OK ||
      (b = sqlite3_backup_init(db, "main", src, "main")) == NULL)
    rc = dberr(db, tmp, "making a snapshot", err, errsz);
  else {
    int step = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    if (step != SQLITE_DONE)
      rc = dberr(db, tmp, "making a snapshot", err, errsz);
    else if (sqlite3_exec(db, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != SQLITE_OK)
      rc = dberr(db, tmp, "configuring a snapshot", err, errsz);
  }
  sqlite3_close(db);
  if (rc == LUPINE_OK && rename(tmp, path) != 0) {
    lp_errf(err, errsz, "catalog snapshot %s: %s", path, strerror(errno));
    rc = LUPINE_IO;
  }
  if (rc != LUPINE_OK) unlink(tmp);
  return rc;
}

/* Changes by this connection, and commits by any other (data_version). */
static int64_t sq_mark(void *db) {
  sqlite3_stmt *st;
  int64_t others = 0;
  if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) others = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  return (others << 32) + sqlite3_total_changes64(db);
}

/* ---- statements ---- */

static int sq_prepare(void *db, const char *sql, int lasting, void **out, int *nparams) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v3(db, sql, -1, lasting ? SQLITE_PREPARE_PERSISTENT : 0, &st,
                         NULL) != SQLITE_OK)
    return 1;
  *out = st;
  *nparams = sqlite3_bind_parameter_count(st);
  return 0;
}

static void sq_finalize(void *st) {
  sqlite3_finalize(st);
}

/* Values are bound without a copy (SQLITE_STATIC): the catalog steps a
** statement to its end, and resets it, while they live, and binds every
** parameter again before the next step (no clearing needed). */
static int sq_bind(void *stp, const lp_catalog_value *args, int n) {
  sqlite3_stmt *st = stp;
  int i, rc = SQLITE_OK;
  for (i = 0; i < n && rc == SQLITE_OK; i++) {
    const lp_catalog_value *v = &args[i];
    switch (v->type) {
      case LP_CATALOG_INT: rc = sqlite3_bind_int64(st, i + 1, v->u.i); break;
      case LP_CATALOG_REAL: rc = sqlite3_bind_double(st, i + 1, v->u.d); break;
      case LP_CATALOG_TEXT:
        rc = sqlite3_bind_text64(st, i + 1, v->u.s.p, v->u.s.len, SQLITE_STATIC, SQLITE_UTF8);
        break;
      case LP_CATALOG_BLOB:
        rc = sqlite3_bind_blob64(st, i + 1, v->u.s.p, v->u.s.len, SQLITE_STATIC);
        break;
      default: rc = sqlite3_bind_null(st, i + 1);
    }
  }
  return rc != SQLITE_OK;
}

static int sq_step(void *st) {
  switch (sqlite3_step(st)) {
    case SQLITE_ROW: return LP_CATALOG_ROW;
    case SQLITE_DONE: return LP_CATALOG_DONE;
    default: return LP_CATALOG_FAILED;
  }
}

static int sq_columns(void *st) {
  return sqlite3_column_count(st);
}

static const char *sq_column_name(void *st, int i) {
  return sqlite3_column_name(st, i);
}

static void sq_column(void *st, int i, lp_catalog_value *out) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
      out->type = LP_CATALOG_INT;
      out->u.i = sqlite3_column_int64(st, i);
      break;
    case SQLITE_FLOAT:
      out->type = LP_CATALOG_REAL;
      out->u.d = sqlite3_column_double(st, i);
      break;
    case SQLITE_BLOB:
      out->type = LP_CATALOG_BLOB;
      out->u.s.p = sqlite3_column_blob(st, i);
      out->u.s.len = (size_t)sqlite3_column_bytes(st, i);
      break;
    case SQLITE_TEXT:
      out->type = LP_CATALOG_TEXT;
      out->u.s.p = sqlite3_column_text(st, i);
      out->u.s.len = (size_t)sqlite3_column_bytes(st, i);
      break;
    default:
      out->type = LP_CATALOG_NULL;
  }
}

static const char *sq_column_text(void *st, int i, size_t *len) {
  /* text before bytes: the length is that of the form asked for */
  const char *p = sqlite3_column_type(st, i) == SQLITE_BLOB ? sqlite3_column_blob(st, i)
                : (const char *)sqlite3_column_text(st, i);
  *len = (size_t)sqlite3_column_bytes(st, i);
  return p;
}

static void sq_reset(void *st) {
  sqlite3_reset(st);
}

/* ---- forking while other threads use sqlite (the C API, api.c) ---- */

/*
** A worker is forked from one thread while another may be inside sqlite,
** holding one of its global mutexes; the child would inherit it locked and
** hang at its first sqlite call. Around every fork the process makes, hold
** the mutexes a worker's catalog connection needs, in an order sqlite
** never nests them the other way (the random number generator's takes
** the main one on first use; file locks and page caches allocate).
*/
static const int fork_mutexes[] = {
  SQLITE_MUTEX_STATIC_PRNG, SQLITE_MUTEX_STATIC_MAIN, SQLITE_MUTEX_STATIC_VFS1,
  SQLITE_MUTEX_STATIC_MEM, SQLITE_MUTEX_STATIC_PMEM};
#define NFORK_MUTEXES ((int)(sizeof fork_mutexes / sizeof fork_mutexes[0]))

static void fork_prepare(void) {
  int i;
  for (i = 0; i < NFORK_MUTEXES; i++) sqlite3_mutex_enter(sqlite3_mutex_alloc(fork_mutexes[i]));
}

static void fork_done(void) {
  int i;
  for (i = NFORK_MUTEXES - 1; i >= 0; i--)
    sqlite3_mutex_leave(sqlite3_mutex_alloc(fork_mutexes[i]));
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_install(void) {
  if (sqlite3_initialize() == SQLITE_OK) pthread_atfork(fork_prepare, fork_done, fork_done);
}

static void sq_fork_safe(void) {
  pthread_once(&fork_once, fork_install);
}

const lp_catalog_backend lp_sqlite_backend = {
  "sqlite", NMIGRATIONS, statements, (int)(sizeof statements / sizeof statements[0]), NULL,
  &dialect, sq_accepts, sq_open, sq_close, NULL, NULL, sq_errmsg, sq_in_transaction, sq_changes, sq_prepare,
  sq_finalize, sq_bind, sq_step, NULL, NULL, sq_columns, sq_column_name, sq_column, sq_column_text,
  sq_reset, sq_fork_safe, sqlite3_libversion, sq_snapshot, sq_mark,
};
