/* SPDX-License-Identifier: MIT */
/*
** catalog.c: the catalog of pipelines, runs, step runs, artifacts and
** artifact versions, kept in sqlite. The only file that sees sqlite3.h.
**
** Every statement is prepared once per handle and cached; user strings are
** always bound, never spliced into SQL. The schema is a public interface
** (README, "The catalog schema"): change it only through a new migration.
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include <uuid.h>
#include "lauxlib.h"
#include "lupine_int.h"

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
  ** parts, which cache hits have not, by name (previous_step_run). A cache
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
  " cached_from, seed" \
  " FROM step_runs"

#define STORE_COLUMNS \
  "SELECT s.id, s.name, s.flavor, s.path, s.created FROM artifact_stores s"
#define STACK_COLUMNS \
  "SELECT k.id, k.name, k.orchestrator, k.jobs, k.active, k.created," \
  " s.id AS artifact_store_id," \
  " s.name AS artifact_store_name FROM stacks k JOIN artifact_stores s ON s.id = k.artifact_store_id"
/* The time now, as lp_catalog_now writes it (to the millisecond). */
#define SQL_NOW "strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'"
/* A random (version 4) UUID, made by sqlite for rows the Lua side adds. */
#define SQL_UUID \
  "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||" \
  " substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random()) % 4, 1) ||" \
  " substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"

/* The read queries the bindings may run, by name. An id prefix P matches
** ids in [P, P || '~'), a range the unique index on id answers. */
static const struct query { const char *name; const char *sql; } queries[] = {
  {"version_by_id", VERSION_COLUMNS " WHERE v.id = ?1"},
  {"versions_by_id_prefix", VERSION_COLUMNS
     " WHERE v.id >= ?1 AND v.id < ?1 || '~' ORDER BY v.id LIMIT 11"},
  {"latest_version", VERSION_COLUMNS " WHERE a.name = ?1 ORDER BY v.seq DESC LIMIT 1"},
  {"version_by_name", VERSION_COLUMNS " WHERE a.name = ?1 AND v.version = ?2"},
  /* an external input's content stored before under its name (runtime/executor.c:
  ** lp_record_version): ?1 artifact name, ?2 content hash, ?3 save type */
  {"same_content_version", "SELECT v.id, v.version, v.seq FROM artifact_versions v"
     " JOIN artifacts a ON a.id = v.artifact_id WHERE a.name = ?1 AND v.content_hash = ?2"
     " AND v.save_type = ?3 ORDER BY v.seq DESC LIMIT 1"},
  {"versions_of", VERSION_COLUMNS " WHERE a.name = ?1 ORDER BY v.seq DESC"},
  {"versions", VERSION_COLUMNS " ORDER BY v.seq DESC"},
  {"artifact_names", "SELECT name FROM artifacts ORDER BY name"},
  {"run_by_id", RUN_COLUMNS " WHERE r.id = ?1"},
  {"run_by_name", RUN_COLUMNS " WHERE r.name = ?1"},
  {"runs_by_id_prefix", RUN_COLUMNS
     " WHERE r.id >= ?1 AND r.id < ?1 || '~' ORDER BY r.id LIMIT 11"},
  {"runs", RUN_COLUMNS " ORDER BY r.seq DESC"},
  {"run_names", "SELECT name FROM pipeline_runs ORDER BY name"},
  {"step_runs_of_run", STEP_COLUMNS " WHERE run_id = ?1 ORDER BY seq"},
  {"step_run_by_id", STEP_COLUMNS " WHERE id = ?1"},
  /* with how each version was made: a step's own outputs are step_output,
  ** what it saved by hand manual */
  {"step_run_artifacts", "SELECT l.kind, l.name, l.artifact_version_id,"
     " coalesce(v.save_type, (SELECT save_type FROM deleted_versions d"
     " WHERE d.id = l.artifact_version_id)) AS save_type"
     " FROM step_run_artifacts l LEFT JOIN artifact_versions v ON v.seq = l.version_seq"
     " WHERE l.step_run_id = ?1 ORDER BY l.rowid"},
  {"tags_of", "SELECT t.name FROM tag_links l JOIN tags t ON t.seq = l.tag_seq"
     " WHERE l.entity = ?1 AND l.entity_id = ?2 ORDER BY t.name"},
  {"metadata_of", "SELECT key, value FROM run_metadata WHERE entity = ?1 AND entity_id = ?2"
     " ORDER BY key"},
  {"artifact_by_name", "SELECT id, name, created FROM artifacts WHERE name = ?1"},
  /* what lineage and a step run's links show for a version deleted after
  ** runs used it */
  {"deleted_version_by_id", "SELECT id, artifact_name AS name, version, deleted, save_type"
     " FROM deleted_versions WHERE id = ?1"},
  /* lua/lupine/lineage.lua: the step runs that produced or took version
  ** ?1 (the uses that make deleting it need force), outputs first */
  {"version_uses", "SELECT l.kind, l.name, s.name AS step, r.name AS run"
     " FROM step_run_artifacts l JOIN step_runs s ON s.id = l.step_run_id"
     " JOIN pipeline_runs r ON r.id = s.run_id"
     " WHERE l.version_seq = (SELECT seq FROM artifact_versions WHERE id = ?1)"
     " ORDER BY l.kind = 'input', s.seq"},
  {"versions_of_artifact", VERSION_COLUMNS " WHERE v.artifact_id = ?1 ORDER BY v.seq"},
  /* the versions run ?1 made (its step runs' outputs and saves) */
  {"versions_of_run", VERSION_COLUMNS " WHERE v.producer_step_run_id IN"
     " (SELECT id FROM step_runs WHERE run_id = ?1) ORDER BY v.seq"},
  /* the uses, by step runs of other runs, of the versions run ?1 made:
  ** deleting the run deletes them, so these need force */
  {"uses_of_run_versions", "SELECT v.id, a.name AS artifact, v.version, l.kind, l.name,"
     " s.name AS step, r.name AS run FROM step_runs p"
     " JOIN artifact_versions v ON v.producer_step_run_id = p.id"
     " JOIN artifacts a ON a.id = v.artifact_id"
     " JOIN step_run_artifacts l ON l.version_seq = v.seq"
     " JOIN step_runs s ON s.id = l.step_run_id JOIN pipeline_runs r ON r.id = s.run_id"
     " WHERE p.run_id = ?1 AND s.run_id != ?1 ORDER BY v.seq, l.kind = 'input', s.seq"},
  /* lua/lupine/client.lua: tags, with how many objects carry each */
  {"tags", "SELECT name, exclusive, (SELECT count(*) FROM tag_links l WHERE l.tag_seq = t.seq)"
     " AS tagged_count FROM tags t ORDER BY name"},
  {"tag_by_name", "SELECT name, exclusive, (SELECT count(*) FROM tag_links l"
     " WHERE l.tag_seq = t.seq) AS tagged_count FROM tags t WHERE name = ?1"},
  /* what tag ?1 is on, grouped by what an exclusive tag would allow one of:
  ** versions by artifact, runs by pipeline; and artifacts themselves */
  {"tagged_with", "SELECT 'artifact_version' AS entity, a.name AS owner, v.version AS member,"
     " v.seq FROM tag_links l JOIN artifact_versions v ON v.seq = l.version_seq"
     " JOIN artifacts a ON a.id = v.artifact_id WHERE l.entity = 'artifact_version'"
     " AND l.tag_seq = (SELECT seq FROM tags WHERE name = ?1)"
     " UNION ALL SELECT 'pipeline_run', p.name, r.name, r.seq FROM tag_links l"
     " JOIN pipeline_runs r ON r.id = l.entity_id JOIN pipelines p ON p.id = r.pipeline_id"
     " WHERE l.entity = 'pipeline_run' AND l.tag_seq = (SELECT seq FROM tags WHERE name = ?1)"
     " UNION ALL SELECT 'artifact', a.name, NULL, a.seq FROM tag_links l"
     " JOIN artifacts a ON a.id = l.entity_id"
     " WHERE l.entity = 'artifact' AND l.tag_seq = (SELECT seq FROM tags WHERE name = ?1)"
     " ORDER BY 1, 2, 4"},
  {"consumers", "SELECT s.id, s.run_id, s.name, s.step_name, s.status, s.start_time,"
     " s.end_time, s.parameters, s.error, s.traceback, l.name AS input_name"
     " FROM step_run_artifacts l JOIN step_runs s ON s.id = l.step_run_id"
     " WHERE l.version_seq = (SELECT seq FROM artifact_versions WHERE id = ?1)"
     " AND l.kind = 'input' ORDER BY s.seq"},
  /* lua/lupine/lineage.lua: prune_artifacts. Versions no step run produced
  ** or consumed, and the artifacts that have no other versions. */
  {"prunable_versions", VERSION_COLUMNS " WHERE v.producer_step_run_id IS NULL AND NOT EXISTS"
     " (SELECT 1 FROM step_run_artifacts l WHERE l.version_seq = v.seq) ORDER BY v.seq"},
  {"prunable_artifacts", "SELECT a.id, a.name FROM artifacts a WHERE NOT EXISTS"
     " (SELECT 1 FROM artifact_versions v WHERE v.artifact_id = a.id AND"
     " (v.producer_step_run_id IS NOT NULL OR EXISTS (SELECT 1 FROM step_run_artifacts l"
     " WHERE l.version_seq = v.seq))) ORDER BY a.name"},
  /* the outputs of the latest completed step run with cache key ?1, with
  ** its seed, output count and lookups (1 if it recorded lookups, which
  ** stale_lookups checks); one row of NULLs but those if it has none */
  {"cache_hit", "SELECT s.id AS step_run, s.seed, s.output_count, s.lookups, l.name, v.id,"
     " v.seq, v.version, v.content_hash, v.size, v.data_type, a.name AS artifact,"
     " v.artifact_store_id, v.save_type"
     " FROM (SELECT id, seed, output_count, lookups FROM step_runs WHERE cache_key = ?1"
     " AND status = 'completed' ORDER BY seq DESC LIMIT 1) s"
     " LEFT JOIN step_run_artifacts l ON l.step_run_id = s.id AND l.kind = 'output'"
     " LEFT JOIN artifact_versions v ON v.seq = l.version_seq"
     " LEFT JOIN artifacts a ON a.id = v.artifact_id ORDER BY l.rowid"},
  /* the first lookup of a latest version made by step run ?1 that would
  ** now find another latest version (not one ?1 made itself): the artifact,
  ** the version found then and the latest now (NULL: none), newer 1 if
  ** the latest now came after it */
  {"stale_lookups", "SELECT k.artifact_name AS artifact, coalesce(w.version, d.version) AS was,"
     " v.version AS latest, v.seq > k.version_seq AS newer FROM step_run_lookups k"
     " LEFT JOIN artifact_versions w ON w.id = k.artifact_version_id"
     " LEFT JOIN deleted_versions d ON d.id = k.artifact_version_id"
     " LEFT JOIN artifact_versions v ON v.seq = (SELECT max(x.seq) FROM artifact_versions x"
     " JOIN artifacts a ON a.id = x.artifact_id WHERE a.name = k.artifact_name)"
     " WHERE k.step_run_id = ?1 AND v.id IS NOT k.artifact_version_id"
     " AND v.producer_step_run_id IS NOT ?1 ORDER BY k.artifact_name LIMIT 1"},
  /* the versions step run ?1's lookups of a latest version found */
  {"step_run_lookups", "SELECT artifact_name, artifact_version_id FROM step_run_lookups"
     " WHERE step_run_id = ?1 ORDER BY artifact_name"},
  /* the latest earlier run of the same step of the same pipeline */
  {"previous_step_run", "SELECT s.cache_parts FROM step_runs s"
     " JOIN pipeline_runs r ON r.id = s.run_id JOIN pipelines p ON p.id = r.pipeline_id"
     " WHERE p.name = ?1 AND s.name = ?2 AND s.run_id != ?3 AND s.cache_parts IS NOT NULL"
     " ORDER BY s.seq DESC LIMIT 1"},
  {"running_runs", "SELECT id, name, pid, process_start FROM pipeline_runs"
     " WHERE status = 'running'"},
  {"pipeline_by_name", "SELECT id, name, created FROM pipelines WHERE name = ?1"},
  {"pipeline_names", "SELECT name FROM pipelines ORDER BY name"},
  /* lua/lupine/query.lua: Artifact and Pipeline objects */
  {"pipeline_by_id", "SELECT id, name, created FROM pipelines WHERE id = ?1"},
  {"pipelines_by_id_prefix", "SELECT id, name, created FROM pipelines"
     " WHERE id >= ?1 AND id < ?1 || '~' ORDER BY id LIMIT 11"},
  {"runs_of_pipeline", RUN_COLUMNS " WHERE r.pipeline_id = ?1 ORDER BY r.seq DESC"},
  {"latest_run_of_pipeline", RUN_COLUMNS
     " WHERE r.pipeline_id = ?1 ORDER BY r.seq DESC LIMIT 1"},
  {"run_count_of_pipeline", "SELECT count(*) AS n FROM pipeline_runs WHERE pipeline_id = ?1"},
  {"version_count_of_artifact", "SELECT count(*) AS n FROM artifact_versions"
     " WHERE artifact_id = ?1"},
  {"latest_version_of_artifact", VERSION_COLUMNS
     " WHERE v.artifact_id = ?1 ORDER BY v.seq DESC LIMIT 1"},
  /* an artifact's own tags and its versions' tags */
  {"tags_of_artifact", "SELECT name FROM tags WHERE seq IN ("
     "SELECT tag_seq FROM tag_links WHERE entity = 'artifact' AND entity_id = ?1"
     " UNION SELECT l.tag_seq FROM artifact_versions v JOIN tag_links l"
     " ON l.entity = 'artifact_version' AND l.entity_id = v.id WHERE v.artifact_id = ?1)"
     " ORDER BY name"},
  /* lua/lupine/viz.lua: av.visualizations */
  {"visualizations_of", "SELECT position, type, content_hash, size FROM visualizations"
     " WHERE artifact_version_id = ?1 ORDER BY position"},
  /* lua/lupine/stacks.lua: stacks and artifact stores */
  {"artifact_stores", STORE_COLUMNS " ORDER BY s.name"},
  {"artifact_store_by_name", STORE_COLUMNS " WHERE s.name = ?1"},
  {"artifact_store_by_id", STORE_COLUMNS " WHERE s.id = ?1"},
  {"artifact_store_names", "SELECT name FROM artifact_stores ORDER BY name"},
  {"stacks", STACK_COLUMNS " ORDER BY k.name"},
  {"stack_by_name", STACK_COLUMNS " WHERE k.name = ?1"},
  {"active_stack", STACK_COLUMNS " WHERE k.active = 1"},
  {"stack_names", "SELECT name FROM stacks ORDER BY name"},
  {"stacks_using_store", "SELECT name FROM stacks WHERE artifact_store_id = ?1 ORDER BY name"},
  {"version_count_in_store", "SELECT count(*) AS n FROM artifact_versions"
     " WHERE artifact_store_id = ?1"},
  /* the objects a store should hold: values (files and folders among them:
  ** data_type), then visualizations, with the versions that use them */
  {"objects_in_store", "SELECT 'value' AS kind, v.content_hash, v.size, v.id, a.name,"
     " v.version, v.data_type FROM artifact_versions v JOIN artifacts a ON a.id = v.artifact_id"
     " WHERE v.artifact_store_id = ?1"
     " UNION ALL SELECT 'visualization', z.content_hash, z.size, v.id, a.name, v.version, NULL"
     " FROM visualizations z JOIN artifact_versions v ON v.id = z.artifact_version_id"
     " JOIN artifacts a ON a.id = v.artifact_id WHERE v.artifact_store_id = ?1"
     " ORDER BY 2, 4"},
  {"run_stack", "SELECT stack FROM pipeline_runs WHERE id = ?1"},
  {"visualization_stores", "SELECT DISTINCT v.artifact_store_id FROM visualizations z"
     " JOIN artifact_versions v ON v.id = z.artifact_version_id WHERE z.content_hash = ?1"},
  /* lua/lupine/ui.lua: the dashboard. A run's plan; an artifact's page
  ** (its versions' tags and metadata, all at once), a pipeline's */
  {"run_plan", "SELECT plan FROM pipeline_runs WHERE id = ?1"},
  {"artifact_by_id", "SELECT id, name, created FROM artifacts WHERE id = ?1"},
  /* the version of the same artifact made just before version ?1 */
  {"previous_version", VERSION_COLUMNS " WHERE v.artifact_id = (SELECT artifact_id"
     " FROM artifact_versions WHERE id = ?1) AND v.seq < (SELECT seq FROM artifact_versions"
     " WHERE id = ?1) ORDER BY v.seq DESC LIMIT 1"},
  {"tags_of_artifact_versions", "SELECT l.entity_id AS id, t.name FROM artifact_versions v"
     " JOIN tag_links l ON l.entity = 'artifact_version' AND l.entity_id = v.id"
     " JOIN tags t ON t.seq = l.tag_seq WHERE v.artifact_id = ?1 ORDER BY v.seq, t.name"},
  {"metadata_of_artifact_versions", "SELECT m.entity_id AS id, m.key, m.value"
     " FROM artifact_versions v JOIN run_metadata m ON m.entity = 'artifact_version'"
     " AND m.entity_id = v.id WHERE v.artifact_id = ?1 ORDER BY v.seq, m.key"},
  {"tags_of_pipeline_runs", "SELECT l.entity_id AS id, t.name FROM pipeline_runs r"
     " JOIN tag_links l ON l.entity = 'pipeline_run' AND l.entity_id = r.id"
     " JOIN tags t ON t.seq = l.tag_seq WHERE r.pipeline_id = ?1 ORDER BY r.seq, t.name"},
  {"metadata_of_pipeline_runs", "SELECT m.entity_id AS id, m.key, m.value"
     " FROM pipeline_runs r JOIN run_metadata m ON m.entity = 'pipeline_run'"
     " AND m.entity_id = r.id WHERE r.pipeline_id = ?1 ORDER BY r.seq, m.key"},
  /* the dashboard's search: ?1 a LIKE pattern ('\\' escapes), ?2 how many */
  {"search_artifacts", "SELECT a.id, a.name, a.created, (SELECT count(*)"
     " FROM artifact_versions v WHERE v.artifact_id = a.id) AS version_count"
     " FROM artifacts a WHERE a.name LIKE ?1 ESCAPE '\\' ORDER BY a.name LIMIT ?2"},
  {"search_versions", VERSION_COLUMNS " WHERE a.name LIKE ?1 ESCAPE '\\'"
     " OR v.version LIKE ?1 ESCAPE '\\' ORDER BY v.seq DESC LIMIT ?2"},
  {"search_runs", RUN_COLUMNS " WHERE r.name LIKE ?1 ESCAPE '\\' ORDER BY r.seq DESC LIMIT ?2"},
  {"search_pipelines", "SELECT id, name, created FROM pipelines WHERE name LIKE ?1"
     " ESCAPE '\\' ORDER BY name LIMIT ?2"},
  {"search_tags", "SELECT name, (SELECT count(*) FROM tag_links l WHERE l.tag_seq = t.seq)"
     " AS tagged_count FROM tags t WHERE name LIKE ?1 ESCAPE '\\' ORDER BY name LIMIT ?2"},
  /* metadata whose key or text value matches, with what it is on */
  {"search_metadata", "SELECT m.entity, m.entity_id, m.key, m.value, a.name AS artifact,"
     " v.version, r.name AS run, s.name AS step, sr.name AS step_run_run"
     " FROM run_metadata m"
     " LEFT JOIN artifact_versions v ON m.entity = 'artifact_version' AND v.id = m.entity_id"
     " LEFT JOIN artifacts a ON a.id = v.artifact_id"
     " LEFT JOIN pipeline_runs r ON m.entity = 'pipeline_run' AND r.id = m.entity_id"
     " LEFT JOIN step_runs s ON m.entity = 'step_run' AND s.id = m.entity_id"
     " LEFT JOIN pipeline_runs sr ON sr.id = s.run_id"
     " WHERE m.key LIKE ?1 ESCAPE '\\' OR m.value_text LIKE ?1 ESCAPE '\\'"
     " ORDER BY m.seq DESC LIMIT ?2"},
  {"metadata_keys", "SELECT DISTINCT key AS name FROM run_metadata ORDER BY key"},
};

/*
** The writes the bindings may make, by name: statements run in order with
** the same bindings, in one transaction (or the caller's). Parameters
** whose bit is set in blobs (bit N-1 for ?N) are bound as BLOBs.
*/
#define WRITE_SQL_MAX 8
static const struct write_op {
  const char *name;
  unsigned blobs;
  const char *sql[WRITE_SQL_MAX];
} write_ops[] = {
  /* ?1 entity, ?2 entity id, ?3 tag. Every path that tags comes here (the
  ** Client, outputs' configured and added tags, pipeline tags), so an
  ** exclusive tag leaves the other versions of the artifact, or the other
  ** runs of the pipeline, in the same transaction that adds it. */
  {"tag", 0, {"INSERT OR IGNORE INTO tags(name) VALUES (?3)",
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
  /* ?1 name, ?2 exclusive (0 or 1) */
  {"create_tag", 0, {"INSERT INTO tags(name, exclusive) VALUES (?1, ?2)"}},
  /* ?1 name, ?2 new name or NULL, ?3 exclusive (0, 1) or NULL: unchanged.
  ** Made exclusive only while on at most one version of each artifact and
  ** one run of each pipeline, and on no artifact itself (no row changes
  ** otherwise: lua/lupine/client.lua says why). */
  {"update_tag", 0, {"UPDATE tags SET name = coalesce(?2, name),"
                     " exclusive = coalesce(?3, exclusive) WHERE name = ?1 AND (?3 IS NOT 1"
                     " OR (NOT EXISTS (SELECT 1 FROM tag_links l JOIN artifact_versions v"
                     " ON v.seq = l.version_seq WHERE l.entity = 'artifact_version'"
                     " AND l.tag_seq = tags.seq GROUP BY v.artifact_id HAVING count(*) > 1)"
                     " AND NOT EXISTS (SELECT 1 FROM tag_links l JOIN pipeline_runs r"
                     " ON r.id = l.entity_id WHERE l.entity = 'pipeline_run'"
                     " AND l.tag_seq = tags.seq GROUP BY r.pipeline_id HAVING count(*) > 1)"
                     " AND NOT EXISTS (SELECT 1 FROM tag_links l WHERE l.entity = 'artifact'"
                     " AND l.tag_seq = tags.seq)))"}},
  /* ?1 name: the tag and its links */
  {"delete_tag", 0, {"DELETE FROM tag_links WHERE tag_seq ="
                     " (SELECT seq FROM tags WHERE name = ?1)",
                     "DELETE FROM tags WHERE name = ?1"}},
  {"untag", 0, {"DELETE FROM tag_links WHERE entity = ?1 AND entity_id = ?2"
                " AND tag_seq = (SELECT seq FROM tags WHERE name = ?3)"}},
  /* ?1 entity, ?2 entity id, ?3 key, ?4 CBOR value, ?5 number or NULL,
  ** ?6 text or NULL, ?7 time */
  {"set_metadata", 1u << 3, {
     "INSERT INTO run_metadata(entity, entity_id, key, value, value_number, value_text,"
     " created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (entity, entity_id, key)"
     " DO UPDATE SET value = excluded.value, value_number = excluded.value_number,"
     " value_text = excluded.value_text, created = excluded.created"}},
  /* ?1 step run id, ?2 what it printed, ?3 attempts */
  {"step_output", 0, {"UPDATE step_runs SET output = ?2, attempts = ?3 WHERE id = ?1"}},
  /* ?1 run id, ?2 its plan (CBOR) */
  {"run_plan", 1u << 1, {"UPDATE pipeline_runs SET plan = ?2 WHERE id = ?1"}},
  /* ?1 run id, ?2 pid, ?3 the process's start time (tells a reused pid apart) */
  {"run_process", 0, {"UPDATE pipeline_runs SET pid = ?2, process_start = ?3 WHERE id = ?1"}},
  /* ?1 run id, ?2 why, ?3 time: a run whose process died */
  {"mark_dead", 0, {"UPDATE step_runs SET status = 'failed', error = ?2, end_time = ?3"
                    " WHERE run_id = ?1 AND status = 'running'",
                    "UPDATE pipeline_runs SET status = 'failed', error = ?2, end_time = ?3"
                    " WHERE id = ?1 AND status = 'running'"}},
  /* ?1 step run id, ?2 cache key, ?3 its parts (CBOR), ?4 why it was not a
  ** cache hit (a hit's step run is created with its key: create_step_run) */
  {"step_cache", 1u << 2, {"UPDATE step_runs SET cache_key = ?2, cache_parts = ?3,"
                           " cache_note = ?4 WHERE id = ?1"}},
  /* ?1 step run id, ?2 input name, ?3 artifact version id */
  {"add_input", 0, {"INSERT OR REPLACE INTO step_run_artifacts(step_run_id, kind, name,"
                    " artifact_version_id, version_seq) VALUES (?1, 'input', ?2, ?3,"
                    " (SELECT seq FROM artifact_versions WHERE id = ?3))"}},
  /* ?1 step run id, ?2 artifact name, ?3 the version its lookup of that
  ** artifact's latest version found (nothing if that version is gone) */
  {"add_lookup", 0, {"INSERT OR REPLACE INTO step_run_lookups(step_run_id, artifact_name,"
                     " artifact_version_id, version_seq) SELECT ?1, ?2, id, seq"
                     " FROM artifact_versions WHERE id = ?3",
                     "UPDATE step_runs SET lookups = 1 WHERE id = ?1 AND EXISTS (SELECT 1"
                     " FROM step_run_lookups WHERE step_run_id = ?1)"}},
  /* ?1 step run id, ?2 the step run whose lookups it carries (a cache hit) */
  {"copy_lookups", 0, {"INSERT OR REPLACE INTO step_run_lookups(step_run_id, artifact_name,"
                       " artifact_version_id, version_seq) SELECT ?1, artifact_name,"
                       " artifact_version_id, version_seq FROM step_run_lookups"
                       " WHERE step_run_id = ?2",
                       "UPDATE step_runs SET lookups = 1 WHERE id = ?1 AND EXISTS (SELECT 1"
                       " FROM step_run_lookups WHERE step_run_id = ?1)"}},
  /* ?1 artifact version id: the version and everything attached to it but
  ** the step runs' links to it, which keep saying what the runs made and
  ** used. Those get a tombstone naming the version, and the negated seq:
  ** sqlite gives the largest seq again once its row is gone, and a link
  ** must not find the new version that gets it. */
  {"delete_version", 0, {
     "DELETE FROM tag_links WHERE entity = 'artifact_version' AND entity_id = ?1",
     "DELETE FROM run_metadata WHERE entity = 'artifact_version' AND entity_id = ?1",
     "INSERT OR REPLACE INTO deleted_versions(id, artifact_name, version, deleted, save_type)"
     " SELECT v.id, a.name, v.version, " SQL_NOW ", v.save_type FROM artifact_versions v"
     " JOIN artifacts a ON a.id = v.artifact_id WHERE v.id = ?1"
     " AND EXISTS (SELECT 1 FROM step_run_artifacts l WHERE l.version_seq = v.seq)",
     "UPDATE step_run_artifacts SET version_seq = -version_seq"
     " WHERE version_seq = (SELECT seq FROM artifact_versions WHERE id = ?1)",
     "DELETE FROM visualizations WHERE artifact_version_id = ?1",
     "DELETE FROM artifact_versions WHERE id = ?1"}},
  /* ?1 run id: its step runs' links, first of a run's deletion
  ** (lua/lupine/lineage.lua), and the tombstones only they named. The links
  ** to a deleted version share its negated seq (so may those of a version
  ** deleted later that was given the same seq: its tombstone then stays a
  ** little longer than needed, never shorter). */
  {"delete_run_links", 0, {
     "DELETE FROM deleted_versions WHERE id IN (SELECT l.artifact_version_id"
     " FROM step_runs s JOIN step_run_artifacts l ON l.step_run_id = s.id"
     " WHERE s.run_id = ?1 AND l.version_seq < 0 AND NOT EXISTS (SELECT 1"
     " FROM step_run_artifacts o JOIN step_runs os ON os.id = o.step_run_id"
     " WHERE o.version_seq = l.version_seq AND os.run_id != ?1))",
     "DELETE FROM step_run_artifacts WHERE step_run_id IN"
     " (SELECT id FROM step_runs WHERE run_id = ?1)"}},
  /* ?1 run id: the rest of it, once its links and versions are gone. A
  ** cache hit elsewhere that reused one of its step runs keeps its status
  ** and loses the id of a step run that no longer exists (no index answers
  ** cached_from: deleting a run is rare, a step run's recording is not). */
  {"delete_run", 0, {
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
  /* ?1 artifact version id, ?2 position, ?3 type, ?4 content hash, ?5 size */
  {"add_visualization", 0, {"INSERT INTO visualizations(artifact_version_id, position, type,"
                            " content_hash, size) VALUES (?1, ?2, ?3, ?4, ?5)"}},
  /* ?1 artifact id: the artifact and its tag links, if it has no version */
  {"delete_empty_artifact", 0, {
     "DELETE FROM tag_links WHERE entity = 'artifact' AND entity_id = ?1"
     " AND NOT EXISTS (SELECT 1 FROM artifact_versions WHERE artifact_id = ?1)",
     "DELETE FROM artifacts WHERE id = ?1"
     " AND NOT EXISTS (SELECT 1 FROM artifact_versions WHERE artifact_id = ?1)"}},
  /* ?1 name, ?2 flavor, ?3 path, ?4 time */
  {"add_artifact_store", 0, {"INSERT INTO artifact_stores(id, name, flavor, path, created)"
                             " VALUES (" SQL_UUID ", ?1, ?2, ?3, ?4)"}},
  /* ?1 name: only while no stack and no version uses it */
  {"delete_artifact_store", 0, {
     "DELETE FROM artifact_stores WHERE name = ?1 AND NOT EXISTS (SELECT 1 FROM stacks k"
     " WHERE k.artifact_store_id = artifact_stores.id) AND NOT EXISTS (SELECT 1 FROM"
     " artifact_versions v WHERE v.artifact_store_id = artifact_stores.id)"}},
  /* ?1 name, ?2 artifact store name, ?3 orchestrator, ?4 time */
  {"add_stack", 0, {"INSERT INTO stacks(id, name, artifact_store_id, orchestrator, created,"
                    " jobs) SELECT " SQL_UUID ", ?1, id, ?3, ?4, ?5 FROM artifact_stores"
                    " WHERE name = ?2"}},
  /* ?1 name: only while it is not the active one */
  {"delete_stack", 0, {"DELETE FROM stacks WHERE name = ?1 AND active = 0"}},
  /* ?1 name */
  {"set_active_stack", 0, {"UPDATE stacks SET active = 0 WHERE active = 1"
                           " AND EXISTS (SELECT 1 FROM stacks WHERE name = ?1)",
                           "UPDATE stacks SET active = 1 WHERE name = ?1"}},
  /* ?1 run id, ?2 stack name */
  {"set_run_stack", 0, {"UPDATE pipeline_runs SET stack = ?2 WHERE id = ?1"}},
  /* ?1 version id, ?2 store id, ?3 uri: the object was copied there */
  {"move_version", 0, {"UPDATE artifact_versions SET artifact_store_id = ?2, uri = ?3"
                       " WHERE id = ?1"}},
};
#define NWRITE_OPS ((int)(sizeof(write_ops) / sizeof(write_ops[0])))

/*
** The orders lua/lupine/query.lua's listings may ask for (sort_by), by
** listing and key (each listing's keys in the order of their names): the
** columns, each sorted in the direction asked; ties fall to creation order
** (seq) in that direction too. The listing's statement names its tables
** v, a, r and p as these do.
*/
static const struct sort {
  const char *listing, *key;
  const char *columns[4];
} sorts[] = {
  {"artifact_versions", "artifact_type", {"v.type", "v.seq"}},
  {"artifact_versions", "created", {"v.seq"}},
  {"artifact_versions", "data_type", {"v.data_type", "v.seq"}},
  {"artifact_versions", "name", {"a.name", "v.seq"}},
  {"artifact_versions", "size", {"v.size", "v.seq"}},
  {"artifact_versions", "stored_size", {"v.stored_size", "v.seq"}},
  {"artifact_versions", "version", {"v.version_number", "v.version", "v.seq"}},
  {"artifacts", "created", {"a.seq"}},
  {"artifacts", "name", {"a.name"}},
  {"pipeline_runs", "created", {"r.seq"}},
  {"pipeline_runs", "name", {"r.name"}},
  {"pipelines", "created", {"p.seq"}},
  {"pipelines", "name", {"p.name"}},
};
#define NSORTS ((int)(sizeof(sorts) / sizeof(sorts[0])))

/* Prepared statements for queries built at run time (lp_catalog_select). */
#define SELECT_CACHE 32
#define NQUERIES ((int)(sizeof(queries) / sizeof(queries[0])))

/* The write statements, prepared on first use. */
enum {
  W_BEGIN, W_COMMIT, W_ROLLBACK, W_PIPELINE_ID, W_PIPELINE_NEW, W_RUN_NAME_TAKEN,
  W_RUN_NEW, W_RUN_FINISH, W_STEP_NEW, W_STEP_FINISH, W_ARTIFACT_ID,
  W_ARTIFACT_NEW, W_NEXT_VERSION, W_VERSION_TAKEN, W_VERSION_NEW, W_LINK, W_SAVEPOINT,
  W_RELEASE, W_ROLLBACK_TO, NWRITES
};
static const char *const writes[NWRITES] = {
  "BEGIN IMMEDIATE",
  "COMMIT",
  "ROLLBACK",
  "SELECT id FROM pipelines WHERE name = ?1",
  "INSERT INTO pipelines(id, name, created) VALUES (?1, ?2, ?3)",
  "SELECT 1 FROM pipeline_runs WHERE name = ?1",
  "INSERT INTO pipeline_runs(id, name, pipeline_id, status, start_time)"
  " VALUES (?1, ?2, ?3, 'running', ?4)",
  "UPDATE pipeline_runs SET status = ?2, end_time = ?3, error = ?4 WHERE id = ?1",
  "INSERT INTO step_runs(id, run_id, name, step_name, status, start_time, end_time,"
  " parameters, cache_key, cached_from, seed) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
  " CASE WHEN ?5 = 'running' THEN NULL ELSE ?6 END, ?7, ?8, ?9, ?10)",
  "UPDATE step_runs SET status = ?2, end_time = ?3, error = ?4, traceback = ?5,"
  " output_count = ?6 WHERE id = ?1",
  "SELECT id FROM artifacts WHERE name = ?1",
  "INSERT INTO artifacts(id, name, created) VALUES (?1, ?2, ?3)",
  "SELECT COALESCE(MAX(version_number), 0) + 1 FROM artifact_versions"
  " WHERE artifact_id = ?1",
  "SELECT 1 FROM artifact_versions WHERE artifact_id = ?1 AND version = ?2",
  "INSERT INTO artifact_versions(id, artifact_id, version, version_number, type,"
  " data_type, content_hash, size, stored_size, uri, codec_version, created,"
  " producer_step_run_id, artifact_store_id, save_type) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
  " ?8, ?9, ?10, ?11, ?12, ?13, coalesce(?14, '" LP_DEFAULT_STORE_ID "'), ?15)",
  "INSERT INTO step_run_artifacts(step_run_id, kind, name, artifact_version_id, version_seq)"
  " VALUES (?1, ?2, ?3, ?4, coalesce(?5, (SELECT seq FROM artifact_versions WHERE id = ?4)))",
  "SAVEPOINT part",
  "RELEASE part",
  "ROLLBACK TO part",
};

struct lp_catalog {
  sqlite3 *db;
  char *path;
  sqlite3_stmt *write[NWRITES];
  sqlite3_stmt *read[NQUERIES];
  sqlite3_stmt *op[NWRITE_OPS][WRITE_SQL_MAX];
  struct { char *sql; sqlite3_stmt *st; unsigned long used; } select[SELECT_CACHE];
  unsigned long clock;   /* for least-recently-used eviction of select[] */
};

/* Fill err from the connection, naming the catalog file. */
static int dberr(lp_catalog *c, const char *what, char *err, size_t errsz) {
  lp_errf(err, errsz, "catalog %s: %s failed (%s)", c->path, what,
          sqlite3_errmsg(c->db));
  return LUPINE_CATALOG;
}

static int migrate(lp_catalog *c, char *err, size_t errsz) {
  sqlite3_stmt *st;
  int version = 0, rc;
  if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
    return dberr(c, "reading the schema version", err, errsz);
  if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (version > NMIGRATIONS) {
    lp_errf(err, errsz, "catalog %s: schema version %d is newer than this "
            "Lupine understands (%d); upgrade Lupine", c->path, version, NMIGRATIONS);
    return LUPINE_CATALOG;
  }
  for (; version < NMIGRATIONS; version++) {
    char sql[64];
    if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
      return dberr(c, "starting a migration", err, errsz);
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
    /* Another process may have migrated while we waited for the lock. */
    rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_int(st, 0) > version) {
      sqlite3_finalize(st);
      sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
      continue;
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(c->db, migrations[version], NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
      rc = dberr(c, "migrating the schema", err, errsz);
      sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
      return rc;
    }
  }
  return LUPINE_OK;
}

static void new_id(char id[LP_ID_LEN + 1]);

/* A handle on the sqlite file at path, opened with flags (and NOMUTEX). */
static int connect(lp_catalog **out, const char *path, int flags, char *err, size_t errsz) {
  lp_catalog *c = calloc(1, sizeof *c);
  int rc;
  *out = NULL;
  if (c == NULL || (c->path = strdup(path)) == NULL) {
    free(c);
    lp_errf(err, errsz, "out of memory opening catalog %s", path);
    return LUPINE_NOMEM;
  }
  if (sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    rc = dberr(c, "opening", err, errsz);
    lp_catalog_close(c);
    return rc;
  }
  sqlite3_busy_timeout(c->db, 30000);
  *out = c;
  return LUPINE_OK;
}

/* Open the catalog file at path, which exists. A file made by Lupine has
** a schema version; any other (an empty file, another program's database,
** not a database at all) is refused before anything is written to it. */
static int open_file(lp_catalog **out, const char *path, char *err, size_t errsz) {
  lp_catalog *c;
  sqlite3_stmt *st;
  const char *why = NULL;
  struct stat sb;
  int rc, attempt, version = 0;
  if ((rc = connect(out, path, SQLITE_OPEN_READWRITE, err, errsz)) != LUPINE_OK) return rc;
  c = *out;
  *out = NULL;
  if ((rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL)) == SQLITE_OK) {
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  if (rc == SQLITE_NOTADB) why = "it is not a database";
  else if (rc != SQLITE_ROW && rc != SQLITE_OK) {
    rc = dberr(c, "reading the schema version", err, errsz);
    lp_catalog_close(c);
    return rc;
  } else if (version == 0)
    why = stat(path, &sb) == 0 && sb.st_size == 0 ? "it is an empty file"
                                                   : "it is a database Lupine did not make";
  if (why != NULL) {
    lp_errf(err, errsz, "%s is not a Lupine catalog (%s); move it away and a new "
            "catalog is made there", path, why);
    lp_catalog_close(c);
    return LUPINE_CATALOG;
  }
  /* Turning WAL on takes an exclusive lock without waiting on the busy
  ** handler: two processes opening a catalog at once retry here. */
  for (attempt = 0;; attempt++) {
    rc = sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    if (rc != SQLITE_BUSY || attempt == 3000) break;
    sqlite3_sleep(10);
  }
  if (rc != SQLITE_OK ||
      /* temp_store: statement journals and sorts in memory, not in a new
      ** file in the temporary folder for each of them */
      sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                   " PRAGMA temp_store = MEMORY", NULL, NULL, NULL) != SQLITE_OK) {
    rc = dberr(c, "configuring", err, errsz);
    lp_catalog_close(c);
    return rc;
  }
  if ((rc = migrate(c, err, errsz)) != LUPINE_OK) {
    lp_catalog_close(c);
    return rc;
  }
  *out = c;
  return LUPINE_OK;
}

/* Make a new catalog at path: whole, under a name of its own, then linked
** into place, which fails if a file got there first (another process made
** the catalog at the same time: its file is used). So whoever finds a file
** at path finds a whole catalog, and only a missing file means "new". */
static int create(const char *path, char *err, size_t errsz) {
  char tmp[PATH_MAX], id[LP_ID_LEN + 1];
  lp_catalog *c;
  int rc, fd = -1;
  new_id(id);
  if (snprintf(tmp, sizeof tmp, "%s.new-%s", path, id) >= (int)sizeof tmp) {
    lp_errf(err, errsz, "catalog path is too long: %s", path);
    return LUPINE_MISUSE;
  }
  if ((rc = connect(&c, tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err, errsz)) !=
      LUPINE_OK)
    return rc;
  /* nobody reads the file before it is whole: no journal and no syncs
  ** while it is made, one sync at the end (half the time of making it in
  ** place) */
  if (sqlite3_exec(c->db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF", NULL, NULL,
                   NULL) != SQLITE_OK)
    rc = dberr(c, "configuring", err, errsz);
  else if ((rc = migrate(c, err, errsz)) == LUPINE_OK &&
           sqlite3_exec(c->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK)
    rc = dberr(c, "configuring", err, errsz);
  lp_catalog_close(c);
  if (rc == LUPINE_OK && ((fd = open(tmp, O_RDONLY)) < 0 || fsync(fd) != 0 ||
                          (link(tmp, path) != 0 && errno != EEXIST))) {
    lp_errf(err, errsz, "cannot create catalog %s (%s)", path, strerror(errno));
    rc = LUPINE_IO;
  }
  if (fd >= 0) close(fd);
  unlink(tmp);
  return rc;
}

int lp_catalog_open(lp_catalog **out, const char *path, char *err, size_t errsz) {
  struct stat sb;
  int rc;
  *out = NULL;
  if (stat(path, &sb) != 0) {
    if (errno != ENOENT) {
      lp_errf(err, errsz, "cannot open catalog %s (%s)", path, strerror(errno));
      return LUPINE_IO;
    }
    if ((rc = create(path, err, errsz)) != LUPINE_OK) return rc;
  }
  return open_file(out, path, err, errsz);
}

void lp_catalog_close(lp_catalog *c) {
  int i;
  if (c == NULL) return;
  for (i = 0; i < NWRITES; i++) sqlite3_finalize(c->write[i]);
  for (i = 0; i < NQUERIES; i++) sqlite3_finalize(c->read[i]);
  for (i = 0; i < NWRITE_OPS * WRITE_SQL_MAX; i++)
    sqlite3_finalize(c->op[i / WRITE_SQL_MAX][i % WRITE_SQL_MAX]);
  for (i = 0; i < SELECT_CACHE; i++) {
    sqlite3_finalize(c->select[i].st);
    free(c->select[i].sql);
  }
  sqlite3_close(c->db);
  free(c->path);
  free(c);
}

static sqlite3_stmt *cached(lp_catalog *c, sqlite3_stmt **slot, const char *sql);

/* The cached write statement w, reset and unbound, or NULL. */
static sqlite3_stmt *prepared(lp_catalog *c, int w) {
  return cached(c, &c->write[w], writes[w]);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
  if (s == NULL) sqlite3_bind_null(st, i);
  else sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Step a statement that returns no rows (or whose rows do not matter). */
static int done(lp_catalog *c, sqlite3_stmt *st, const char *what,
                char *err, size_t errsz) {
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    rc = dberr(c, what, err, errsz);
    sqlite3_reset(st);
    return rc;
  }
  sqlite3_reset(st);
  return LUPINE_OK;
}

static int simple(lp_catalog *c, int w, const char *what, char *err, size_t errsz) {
  sqlite3_stmt *st = prepared(c, w);
  if (st == NULL) return dberr(c, what, err, errsz);
  return done(c, st, what, err, errsz);
}

int lp_catalog_begin(lp_catalog *c, char *err, size_t errsz) {
  return simple(c, W_BEGIN, "starting a transaction", err, errsz);
}

int lp_catalog_commit(lp_catalog *c, char *err, size_t errsz) {
  return simple(c, W_COMMIT, "committing", err, errsz);
}

int lp_catalog_savepoint(lp_catalog *c, char *err, size_t errsz) {
  return simple(c, W_SAVEPOINT, "starting a savepoint", err, errsz);
}

int lp_catalog_release(lp_catalog *c, char *err, size_t errsz) {
  return simple(c, W_RELEASE, "releasing a savepoint", err, errsz);
}

void lp_catalog_rollback_savepoint(lp_catalog *c) {
  if (simple(c, W_ROLLBACK_TO, "rolling back to a savepoint", NULL, 0) == LUPINE_OK)
    simple(c, W_RELEASE, "releasing a savepoint", NULL, 0);
}

int lp_catalog_in_transaction(lp_catalog *c) {
  return !sqlite3_get_autocommit(c->db);
}

void lp_catalog_rollback(lp_catalog *c) {
  if (sqlite3_get_autocommit(c->db)) return;
  simple(c, W_ROLLBACK, "rolling back", NULL, 0);
}

void lp_catalog_now(char out[32]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
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

/* Look up the id of name with statement w; *found is 0 if there is none. */
static int find_id(lp_catalog *c, int w, const char *name, char id[LP_ID_LEN + 1],
                   int *found, char *err, size_t errsz) {
  sqlite3_stmt *st = prepared(c, w);
  int rc;
  *found = 0;
  if (st == NULL) return dberr(c, "looking up a name", err, errsz);
  bind_text(st, 1, name);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    snprintf(id, LP_ID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
    *found = 1;
  } else if (rc != SQLITE_DONE) {
    rc = dberr(c, "looking up a name", err, errsz);
    sqlite3_reset(st);
    return rc;
  }
  sqlite3_reset(st);
  return LUPINE_OK;
}

/* The id of the named row of statement w's table, inserting it (with
** statement insert) on first use. */
static int get_or_create(lp_catalog *c, int w, int insert, const char *name,
                         char id[LP_ID_LEN + 1], char *err, size_t errsz) {
  char now[32];
  sqlite3_stmt *st;
  int found, rc = find_id(c, w, name, id, &found, err, errsz);
  if (rc != LUPINE_OK || found) return rc;
  if ((st = prepared(c, insert)) == NULL) return dberr(c, "inserting a name", err, errsz);
  new_id(id);
  lp_catalog_now(now);
  bind_text(st, 1, id);
  bind_text(st, 2, name);
  bind_text(st, 3, now);
  return done(c, st, "inserting a name", err, errsz);
}

static int name_taken(lp_catalog *c, const char *name, int *taken,
                      char *err, size_t errsz) {
  sqlite3_stmt *st = prepared(c, W_RUN_NAME_TAKEN);
  int rc;
  if (st == NULL) return dberr(c, "checking a run name", err, errsz);
  bind_text(st, 1, name);
  rc = sqlite3_step(st);
  *taken = rc == SQLITE_ROW;
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return dberr(c, "checking a run name", err, errsz);
  return LUPINE_OK;
}

int lp_catalog_create_run(lp_catalog *c, const char *pipeline, const char *name,
                          const char *start, char id[LP_ID_LEN + 1],
                          char name_out[LP_RUN_NAME_MAX + 1], char *err, size_t errsz) {
  char pipeline_id[LP_ID_LEN + 1], now[32];
  sqlite3_stmt *st;
  int rc, taken, n;
  if ((rc = get_or_create(c, W_PIPELINE_ID, W_PIPELINE_NEW, pipeline, pipeline_id,
                          err, errsz)) != LUPINE_OK)
    return rc;
  if (start != NULL) snprintf(now, sizeof now, "%s", start);
  else lp_catalog_now(now);
  if (name != NULL) {
    snprintf(name_out, LP_RUN_NAME_MAX + 1, "%s", name);
    if ((rc = name_taken(c, name_out, &taken, err, errsz)) != LUPINE_OK) return rc;
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
      if ((rc = name_taken(c, name_out, &taken, err, errsz)) != LUPINE_OK) return rc;
      if (!taken) break;
      snprintf(name_out + base, LP_RUN_NAME_MAX + 1 - base, "-%d", n);
    }
  }
  if ((st = prepared(c, W_RUN_NEW)) == NULL) return dberr(c, "creating a run", err, errsz);
  new_id(id);
  bind_text(st, 1, id);
  bind_text(st, 2, name_out);
  bind_text(st, 3, pipeline_id);
  bind_text(st, 4, now);
  return done(c, st, "creating a run", err, errsz);
}

int lp_catalog_finish_run(lp_catalog *c, const char *run_id, const char *status,
                          const char *error, char *err, size_t errsz) {
  char now[32];
  sqlite3_stmt *st = prepared(c, W_RUN_FINISH);
  if (st == NULL) return dberr(c, "finishing a run", err, errsz);
  lp_catalog_now(now);
  bind_text(st, 1, run_id);
  bind_text(st, 2, status);
  bind_text(st, 3, now);
  bind_text(st, 4, error);
  return done(c, st, "finishing a run", err, errsz);
}

int lp_catalog_create_step_run(lp_catalog *c, const char *run_id,
                               const char *name, const char *step_name,
                               const char *status,
                               const void *parameters, size_t parameters_len,
                               const char *cache_key, const char *cached_from,
                               const long long *seed, char id[LP_ID_LEN + 1], char *err,
                               size_t errsz) {
  char now[32];
  sqlite3_stmt *st = prepared(c, W_STEP_NEW);
  if (st == NULL) return dberr(c, "creating a step run", err, errsz);
  new_time_ordered_id(id);
  lp_catalog_now(now);
  bind_text(st, 1, id);
  bind_text(st, 2, run_id);
  bind_text(st, 3, name);
  bind_text(st, 4, step_name);
  bind_text(st, 5, status);
  bind_text(st, 6, now);
  sqlite3_bind_blob64(st, 7, parameters, parameters_len, SQLITE_STATIC);
  bind_text(st, 8, cache_key);
  bind_text(st, 9, cached_from);
  if (seed != NULL) sqlite3_bind_int64(st, 10, *seed);
  return done(c, st, "creating a step run", err, errsz);
}

int lp_catalog_finish_step_run(lp_catalog *c, const char *step_run_id,
                               const char *status, const char *error,
                               const char *traceback, int output_count, char *err,
                               size_t errsz) {
  char now[32];
  sqlite3_stmt *st = prepared(c, W_STEP_FINISH);
  if (st == NULL) return dberr(c, "finishing a step run", err, errsz);
  lp_catalog_now(now);
  bind_text(st, 1, step_run_id);
  bind_text(st, 2, status);
  bind_text(st, 3, now);
  bind_text(st, 4, error);
  bind_text(st, 5, traceback);
  if (output_count >= 0) sqlite3_bind_int(st, 6, output_count);
  return done(c, st, "finishing a step run", err, errsz);
}

static int link_artifact(lp_catalog *c, const char *step_run_id, const char *kind,
                         const char *name, const char *version_id, long long version_seq,
                         char *err, size_t errsz) {
  sqlite3_stmt *st = prepared(c, W_LINK);
  if (st == NULL) return dberr(c, "linking an artifact to a step run", err, errsz);
  bind_text(st, 1, step_run_id);
  bind_text(st, 2, kind);
  bind_text(st, 3, name);
  bind_text(st, 4, version_id);
  if (version_seq > 0) sqlite3_bind_int64(st, 5, version_seq);
  return done(c, st, "linking an artifact to a step run", err, errsz);
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
static sqlite3_int64 version_number(const char *v) {
  sqlite3_int64 n = 0;
  size_t i, len = strlen(v);
  if (len == 0 || len > 18) return 0;
  for (i = 0; i < len; i++) {
    if (v[i] < '0' || v[i] > '9') return 0;
    n = n * 10 + (v[i] - '0');
  }
  return n;
}

int lp_catalog_add_version(lp_catalog *c, const lp_version_spec *spec,
                           char id[LP_ID_LEN + 1], char version[LP_NAME_MAX + 1],
                           long long *seq, char *err, size_t errsz) {
  char artifact_id[LP_ID_LEN + 1], now[32];
  sqlite3_int64 number;
  sqlite3_stmt *st;
  int rc;
  if ((rc = get_or_create(c, W_ARTIFACT_ID, W_ARTIFACT_NEW, spec->artifact,
                          artifact_id, err, errsz)) != LUPINE_OK)
    return rc;
  if (spec->version != NULL) {
    int taken;
    if ((st = prepared(c, W_VERSION_TAKEN)) == NULL)
      return dberr(c, "checking a version", err, errsz);
    bind_text(st, 1, artifact_id);
    bind_text(st, 2, spec->version);
    rc = sqlite3_step(st);
    taken = rc == SQLITE_ROW;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return dberr(c, "checking a version", err, errsz);
    if (taken) {
      lp_errf(err, errsz, "artifact '%s' already has a version '%s'", spec->artifact,
              spec->version);
      return LUPINE_CONSTRAINT;
    }
    snprintf(version, LP_NAME_MAX + 1, "%s", spec->version);
    number = version_number(spec->version);
  } else {
    if ((st = prepared(c, W_NEXT_VERSION)) == NULL)
      return dberr(c, "numbering a version", err, errsz);
    bind_text(st, 1, artifact_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
      rc = dberr(c, "numbering a version", err, errsz);
      sqlite3_reset(st);
      return rc;
    }
    number = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    snprintf(version, LP_NAME_MAX + 1, "%lld", (long long)number);
  }
  if ((st = prepared(c, W_VERSION_NEW)) == NULL)
    return dberr(c, "recording a version", err, errsz);
  new_id(id);
  lp_catalog_now(now);
  bind_text(st, 1, id);
  bind_text(st, 2, artifact_id);
  bind_text(st, 3, spec->version != NULL ? spec->version : version);
  if (number > 0) sqlite3_bind_int64(st, 4, number);
  bind_text(st, 5, spec->type);
  bind_text(st, 6, spec->data_type);
  bind_text(st, 7, spec->object->hash);
  sqlite3_bind_int64(st, 8, (sqlite3_int64)spec->object->size);
  sqlite3_bind_int64(st, 9, (sqlite3_int64)spec->object->stored_size);
  bind_text(st, 10, spec->uri);
  sqlite3_bind_int(st, 11, LP_CODEC_VERSION);
  bind_text(st, 12, now);
  bind_text(st, 13, spec->producer);
  bind_text(st, 14, spec->store_id);
  bind_text(st, 15, spec->save_type);
  if ((rc = done(c, st, "recording a version", err, errsz)) != LUPINE_OK) return rc;
  *seq = (long long)sqlite3_last_insert_rowid(c->db);
  if (spec->producer == NULL) return LUPINE_OK;
  return link_artifact(c, spec->producer, "output", spec->output, id, *seq, err, errsz);
}

/* Push column i of the current row (stack: ..., row). */
static void push_column(lua_State *L, sqlite3_stmt *st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: lua_pushinteger(L, sqlite3_column_int64(st, i)); break;
    case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, i)); break;
    case SQLITE_BLOB:
      lua_pushlstring(L, sqlite3_column_blob(st, i), (size_t)sqlite3_column_bytes(st, i));
      break;
    default:
      lua_pushlstring(L, (const char *)sqlite3_column_text(st, i),
                      (size_t)sqlite3_column_bytes(st, i));
  }
}

static int push_rows(lua_State *L, lp_catalog *c, sqlite3_stmt *st, const char *what,
                     char *err, size_t errsz);

/* Prepare sql into *slot once; reset and unbind it on later calls (a Lua
** error may have left it mid-step). */
static sqlite3_stmt *cached(lp_catalog *c, sqlite3_stmt **slot, const char *sql) {
  if (*slot == NULL) {
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK)
      return NULL;
    return *slot;
  }
  sqlite3_reset(*slot);
  sqlite3_clear_bindings(*slot);
  return *slot;
}

/* Bind the nargs Lua values from index first to ?1.. of st; strings whose
** bit is set in blobs go in as BLOBs, nil as NULL. */
static void bind_lua(sqlite3_stmt *st, lua_State *L, int first, int nargs, unsigned blobs) {
  int i, n = sqlite3_bind_parameter_count(st);
  for (i = 0; i < nargs && i < n; i++) {
    int idx = first + i;
    size_t len;
    const char *str;
    switch (lua_type(L, idx)) {
      case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) sqlite3_bind_int64(st, i + 1, lua_tointeger(L, idx));
        else sqlite3_bind_double(st, i + 1, lua_tonumber(L, idx));
        break;
      case LUA_TBOOLEAN:
        sqlite3_bind_int(st, i + 1, lua_toboolean(L, idx));
        break;
      case LUA_TSTRING:
        str = lua_tolstring(L, idx, &len);
        if (blobs & (1u << i)) sqlite3_bind_blob64(st, i + 1, str, len, SQLITE_TRANSIENT);
        else sqlite3_bind_text64(st, i + 1, str, len, SQLITE_TRANSIENT, SQLITE_UTF8);
        break;
      default:
        sqlite3_bind_null(st, i + 1);
    }
  }
}

int lp_catalog_query(lua_State *L, lp_catalog *c, const char *query,
                     int first, int nargs, char *err, size_t errsz) {
  sqlite3_stmt *st;
  int q;
  for (q = 0; q < NQUERIES && strcmp(queries[q].name, query) != 0; q++) {}
  if (q == NQUERIES) {
    lp_errf(err, errsz, "unknown catalog query '%s'", query);
    return LUPINE_MISUSE;
  }
  if ((st = cached(c, &c->read[q], queries[q].sql)) == NULL) return dberr(c, query, err, errsz);
  bind_lua(st, L, first, nargs, 0);
  return push_rows(L, c, st, query, err, errsz);
}

/* Step st to the end, pushing an array of its rows (tables keyed by column
** name; NULL columns left out). */
static int push_rows(lua_State *L, lp_catalog *c, sqlite3_stmt *st, const char *what,
                     char *err, size_t errsz) {
  int i, rc, ncol;
  lua_Integer nrows = 0;
  lua_newtable(L);
  ncol = sqlite3_column_count(st);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    lua_createtable(L, 0, ncol);
    for (i = 0; i < ncol; i++) {
      if (sqlite3_column_type(st, i) == SQLITE_NULL) continue;
      push_column(L, st, i);
      lua_setfield(L, -2, sqlite3_column_name(st, i));
    }
    lua_rawseti(L, -2, ++nrows);
  }
  if (rc != SQLITE_DONE) {
    lua_pop(L, 1);
    rc = dberr(c, what, err, errsz);
    sqlite3_reset(st);
    return rc;
  }
  sqlite3_reset(st);
  return LUPINE_OK;
}

int lp_catalog_select(lua_State *L, lp_catalog *c, const char *sql, int first, int nargs,
                      char *err, size_t errsz) {
  int i, slot = 0;
  sqlite3_stmt *st = NULL;
  for (i = 0; i < SELECT_CACHE; i++) {
    if (c->select[i].sql != NULL && strcmp(c->select[i].sql, sql) == 0) {
      st = c->select[i].st;
      slot = i;
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      break;
    }
    if (c->select[i].used < c->select[slot].used) slot = i;
  }
  if (st == NULL) {
    const char *tail;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail) != SQLITE_OK)
      return dberr(c, "a query", err, errsz);
    /* blank or only a comment: sqlite gives no statement, and one cached
    ** as NULL would be reset on the next call */
    if (st == NULL) {
      lp_errf(err, errsz, "catalog: the query is empty");
      return LUPINE_MISUSE;
    }
    if (!sqlite3_stmt_readonly(st) || *tail != '\0') {
      sqlite3_finalize(st);
      lp_errf(err, errsz, "catalog: only a single read-only query may be selected");
      return LUPINE_MISUSE;
    }
    sqlite3_finalize(c->select[slot].st);
    free(c->select[slot].sql);
    c->select[slot].st = st;
    if ((c->select[slot].sql = strdup(sql)) == NULL) {
      sqlite3_finalize(st);
      c->select[slot].st = NULL;
      lp_errf(err, errsz, "out of memory");
      return LUPINE_NOMEM;
    }
  }
  c->select[slot].used = ++c->clock;
  bind_lua(st, L, first, nargs, 0);
  return push_rows(L, c, st, "a query", err, errsz);
}

int lp_catalog_order(lua_State *L, const char *listing, const char *key, int desc) {
  luaL_Buffer b;
  int i, k, n = 0;
  for (i = 0; i < NSORTS; i++)
    if (strcmp(sorts[i].listing, listing) == 0 && strcmp(sorts[i].key, key) == 0)
      break;
  if (i == NSORTS) {
    lua_newtable(L);
    for (i = 0; i < NSORTS; i++) {
      if (strcmp(sorts[i].listing, listing) != 0) continue;
      lua_pushstring(L, sorts[i].key);
      lua_rawseti(L, -2, ++n);
    }
    return LUPINE_NOTFOUND;
  }
  luaL_buffinit(L, &b);
  for (k = 0; k < 4 && sorts[i].columns[k] != NULL; k++) {
    if (k > 0) luaL_addstring(&b, ", ");
    luaL_addstring(&b, sorts[i].columns[k]);
    if (desc) luaL_addstring(&b, " DESC");
  }
  luaL_pushresult(&b);
  return LUPINE_OK;
}

int lp_catalog_write(lua_State *L, lp_catalog *c, const char *name,
                     int first, int nargs, int *changes, char *err, size_t errsz) {
  int w, k, rc = LUPINE_OK, own = sqlite3_get_autocommit(c->db);
  *changes = 0;
  for (w = 0; w < NWRITE_OPS && strcmp(write_ops[w].name, name) != 0; w++) {}
  if (w == NWRITE_OPS) {
    lp_errf(err, errsz, "unknown catalog write '%s'", name);
    return LUPINE_MISUSE;
  }
  if (own && (rc = lp_catalog_begin(c, err, errsz)) != LUPINE_OK) return rc;
  for (k = 0; k < WRITE_SQL_MAX && write_ops[w].sql[k] != NULL; k++) {
    sqlite3_stmt *st = cached(c, &c->op[w][k], write_ops[w].sql[k]);
    if (st == NULL) {
      rc = dberr(c, name, err, errsz);
      break;
    }
    bind_lua(st, L, first, nargs, write_ops[w].blobs);
    if ((rc = done(c, st, name, err, errsz)) != LUPINE_OK) break;
    *changes += sqlite3_changes(c->db);
  }
  if (!own) return rc;
  if (rc == LUPINE_OK) return lp_catalog_commit(c, err, errsz);
  lp_catalog_rollback(c);
  return rc;
}

int lp_catalog_schema_version(void) {
  return NMIGRATIONS;
}

/* ---- for gc.c ---- */

/* fn for each row's first column of sql (?1 bound to arg, if not NULL). */
static int each_text(lp_catalog *c, const char *sql, const char *arg,
                     int (*fn)(void *ud, const char *hash), void *ud, char *err, size_t errsz) {
  sqlite3_stmt *st;
  int rc = LUPINE_OK, step;
  if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
    return dberr(c, "listing content hashes", err, errsz);
  if (arg != NULL) sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
  while ((step = sqlite3_step(st)) == SQLITE_ROW)
    if ((rc = fn(ud, (const char *)sqlite3_column_text(st, 0))) != LUPINE_OK) break;
  if (rc == LUPINE_OK && step != SQLITE_DONE) rc = dberr(c, "listing content hashes", err, errsz);
  sqlite3_finalize(st);
  return rc;
}

int lp_catalog_each_hash(lp_catalog *c, const char *store_id,
                         int (*fn)(void *ud, const char *hash), void *ud,
                         char *err, size_t errsz) {
  /* Values' and visualizations' objects of the versions held in the store;
  ** the store's index on versions reads the first side. */
  return each_text(c, "SELECT content_hash FROM artifact_versions"
                   " WHERE artifact_store_id = ?1"
                   " UNION SELECT z.content_hash FROM visualizations z"
                   " JOIN artifact_versions v ON v.id = z.artifact_version_id"
                   " WHERE v.artifact_store_id = ?1", store_id, fn, ud, err, errsz);
}

int lp_catalog_each_file_hash(lp_catalog *c, int (*fn)(void *ud, const char *hash), void *ud,
                              char *err, size_t errsz) {
  return each_text(c, "SELECT DISTINCT content_hash FROM artifact_versions"
                   " WHERE data_type IN ('file', 'dir')", NULL, fn, ud, err, errsz);
}

int lp_catalog_has_versions(lp_catalog *c, int *any, char *err, size_t errsz) {
  sqlite3_stmt *st;
  int rc;
  if (sqlite3_prepare_v2(c->db, "SELECT EXISTS (SELECT 1 FROM artifact_versions)", -1, &st,
                         NULL) != SQLITE_OK)
    return dberr(c, "counting versions", err, errsz);
  if (sqlite3_step(st) == SQLITE_ROW) {
    *any = sqlite3_column_int(st, 0);
    rc = LUPINE_OK;
  } else rc = dberr(c, "counting versions", err, errsz);
  sqlite3_finalize(st);
  return rc;
}

/* ---- stacks and artifact stores (lmodule.c) ---- */

static void copy_column(sqlite3_stmt *st, int i, char *out, size_t outsz) {
  const unsigned char *t = sqlite3_column_text(st, i);
  snprintf(out, outsz, "%s", t != NULL ? (const char *)t : "");
}

int lp_catalog_store_info(lp_catalog *c, const char *store_id, const char *stack,
                          lp_store_info *out, char *err, size_t errsz) {
  sqlite3_stmt *st;
  int step;
  const char *sql = store_id != NULL
    ? "SELECT s.id, s.name, s.flavor, s.path, NULL FROM artifact_stores s WHERE s.id = ?1"
    : "SELECT s.id, s.name, s.flavor, s.path, k.name FROM stacks k JOIN artifact_stores s"
      " ON s.id = k.artifact_store_id WHERE (?1 IS NULL AND k.active = 1) OR k.name = ?1";
  memset(out, 0, sizeof *out);
  if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
    return dberr(c, "reading an artifact store", err, errsz);
  sqlite3_bind_text(st, 1, store_id != NULL ? store_id : stack, -1, SQLITE_TRANSIENT);
  if ((step = sqlite3_step(st)) == SQLITE_ROW) {
    copy_column(st, 0, out->id, sizeof out->id);
    copy_column(st, 1, out->name, sizeof out->name);
    copy_column(st, 2, out->flavor, sizeof out->flavor);
    copy_column(st, 3, out->path, sizeof out->path);
    copy_column(st, 4, out->stack, sizeof out->stack);
  }
  sqlite3_finalize(st);
  if (step == SQLITE_ROW) return LUPINE_OK;
  if (step != SQLITE_DONE) return dberr(c, "reading an artifact store", err, errsz);
  if (store_id != NULL) lp_errf(err, errsz, "artifact store '%s' not found", store_id);
  else if (stack != NULL) lp_errf(err, errsz, "stack '%s' not found", stack);
  else lp_errf(err, errsz, "catalog %s has no active stack", c->path);
  return LUPINE_NOTFOUND;
}

/* ---- for the C API (api.c): forking while other threads use sqlite ---- */

#include <pthread.h>

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

void lp_catalog_fork_safe(void) {
  pthread_once(&fork_once, fork_install);
}

/* ---- for the C API (api.c): its records, read without Lua ---- */

/* The columns of each record (lupine_int.h names them, in this order). */
#define REC_TAGS(entity, id) \
  " (SELECT group_concat(name || char(10), '') FROM (SELECT t.name FROM tag_links l" \
  " JOIN tags t ON t.seq = l.tag_seq WHERE l.entity = '" entity "' AND l.entity_id = " id \
  " ORDER BY t.name))"
#define REC_VERSION \
  "SELECT v.seq, v.id, a.name, v.version, v.type, v.data_type, v.content_hash, v.size," \
  " v.stored_size, v.created, v.artifact_store_id, v.save_type, v.producer_step_run_id," \
  REC_TAGS("artifact_version", "v.id")
#define REC_RUN \
  "SELECT r.seq, r.id, r.name, p.name, r.status, r.start_time, r.end_time, r.error," \
  REC_TAGS("pipeline_run", "r.id") \
  " FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id"
#define REC_STEP_RUN \
  "SELECT s.seq, s.id, s.run_id, s.name, s.step_name, s.status, s.start_time, s.end_time," \
  " s.error, s.traceback, s.output, s.attempts FROM step_runs s"

/* A statement being made: its text, and the values its parameters bind
** (?1 on, in the order they were added). */
typedef struct stmt_text {
  char text[8192];
  size_t len;
  int full;   /* the text did not fit */
  int n;
  /* a tag takes one, a metadata condition up to three; the rest, five */
  struct { const char *s; double d; long long i; char type; } arg[4 * LP_FILTER_MAX + 8];
} stmt_text;

static void put(stmt_text *t, const char *s) {
  size_t n = strlen(s);
  if (t->len + n >= sizeof t->text) {
    t->full = 1;
    return;
  }
  memcpy(t->text + t->len, s, n + 1);
  t->len += n;
}

/* Append s, then a parameter for the next value (set by the caller). */
static int param(stmt_text *t, const char *s) {
  char p[16];
  put(t, s);
  if (t->n == (int)(sizeof t->arg / sizeof t->arg[0])) {
    t->full = 1;
    return 0;
  }
  snprintf(p, sizeof p, "?%d", t->n + 1);
  put(t, p);
  return t->n++;
}

static void put_text(stmt_text *t, const char *s, const char *value) {
  int i = param(t, s);
  t->arg[i].type = 't';
  t->arg[i].s = value;
}

static void put_number(stmt_text *t, const char *s, double value) {
  int i = param(t, s);
  t->arg[i].type = 'd';
  t->arg[i].d = value;
}

static void put_integer(stmt_text *t, const char *s, long long value) {
  int i = param(t, s);
  t->arg[i].type = 'i';
  t->arg[i].i = value;
}

/* The conditions a listing of versions or runs shares: its tags and run
** metadata, on the rows whose id is col (entity: their kind). Led by the
** indexes on tags and metadata keys. */
static void put_filters(stmt_text *t, const lp_records *q, const char *col, const char *entity,
                        const char *seq_col) {
  static const char *const ops[] = {"", " = ", " < ", " <= ", " > ", " >= "};
  int i;
  for (i = 0; i < q->ntags; i++) {
    /* a version's tag links also hold its seq (migration 4): its index
    ** gives the versions with a tag in order */
    if (seq_col != NULL) {
      put(t, " AND ");
      put(t, seq_col);
      put(t, " IN (SELECT l.version_seq FROM tag_links l WHERE l.entity = 'artifact_version'");
    } else {
      put(t, " AND ");
      put(t, col);
      put(t, " IN (SELECT l.entity_id FROM tag_links l WHERE l.entity = '");
      put(t, entity);
      put(t, "'");
    }
    put_text(t, " AND l.tag_seq = (SELECT seq FROM tags WHERE name = ", q->tags[i]);
    put(t, "))");
  }
  for (i = 0; i < q->nmd; i++) {
    const lp_md_cond *m = &q->md[i];
    put(t, " AND ");
    put(t, col);
    put(t, " IN (SELECT m.entity_id FROM run_metadata m WHERE m.entity = '");
    put(t, entity);
    put_text(t, "' AND m.key = ", m->key);
    if (m->op == LP_MD_EQ && m->numeric) {
      put_text(t, " AND (m.value_text = ", m->text);
      put_number(t, " OR m.value_number = ", m->number);
      put(t, ")");
    } else if (m->op == LP_MD_EQ) {
      put_text(t, " AND m.value_text = ", m->text);
    } else if (m->op != LP_MD_ANY) {
      put(t, " AND m.value_number");
      put_number(t, ops[m->op], m->number);
    }
    put(t, ")");
  }
}

/* The statement of q into t. */
static void records_statement(stmt_text *t, const lp_records *q) {
  switch (q->what) {
    case LP_LIST_VERSIONS:
      put(t, REC_VERSION ", NULL FROM artifact_versions v JOIN artifacts a"
          " ON a.id = v.artifact_id WHERE 1");
      if (q->id != NULL) put_text(t, " AND v.id = ", q->id);
      if (q->name != NULL) {
        put_text(t, " AND v.artifact_id = (SELECT id FROM artifacts WHERE name = ", q->name);
        put(t, ")");
      }
      put_filters(t, q, "v.id", "artifact_version", "v.seq");
      if (q->past > 0) put_integer(t, " AND v.seq < ", q->past);
      put(t, " ORDER BY v.seq DESC");
      break;
    case LP_LIST_RUNS:
      put(t, REC_RUN " WHERE 1");
      if (q->id != NULL) put_text(t, " AND r.id = ", q->id);
      if (q->name != NULL) {
        put_text(t, " AND r.pipeline_id = (SELECT id FROM pipelines WHERE name = ", q->name);
        put(t, ")");
      }
      if (q->status != NULL) put_text(t, " AND r.status = ", q->status);
      put_filters(t, q, "r.id", "pipeline_run", NULL);
      if (q->past > 0) put_integer(t, " AND r.seq < ", q->past);
      put(t, " ORDER BY r.seq DESC");
      break;
    case LP_LIST_STEP_RUNS:
      put(t, REC_STEP_RUN " WHERE 1");
      if (q->id != NULL) put_text(t, " AND s.id = ", q->id);
      if (q->run != NULL) put_text(t, " AND s.run_id = ", q->run);
      if (q->name != NULL) put_text(t, " AND s.name = ", q->name);
      if (q->past > 0) put_integer(t, " AND s.seq > ", q->past);
      put(t, " ORDER BY s.seq");
      break;
    case LP_LIST_CONSUMERS:
      put(t, REC_STEP_RUN " JOIN step_run_artifacts l ON l.step_run_id = s.id");
      put_text(t, " WHERE l.version_seq = (SELECT seq FROM artifact_versions WHERE id = ", q->id);
      put(t, ") AND l.kind = 'input'");
      if (q->past > 0) put_integer(t, " AND s.seq > ", q->past);
      put(t, " ORDER BY s.seq");
      break;
    case LP_LIST_LINKS:
      put(t, REC_VERSION ", l.name FROM step_run_artifacts l JOIN artifact_versions v"
          " ON v.seq = l.version_seq JOIN artifacts a ON a.id = v.artifact_id");
      put_text(t, " WHERE l.step_run_id = ", q->id);
      put_text(t, " AND l.kind = ", q->kind);
      put(t, " ORDER BY l.rowid");
      break;
    default:   /* LP_LIST_METADATA */
      put_text(t, "SELECT key, value, value_number, value_text FROM run_metadata"
               " WHERE entity = ", q->kind);
      put_text(t, " AND entity_id = ", q->id);
      put(t, " ORDER BY key");
  }
  if (q->limit > 0) put_integer(t, " LIMIT ", q->limit);
}

int lp_catalog_records(lp_catalog *c, const lp_records *q, lp_row_fn fn, void *ud, char *err,
                       size_t errsz) {
  const char *text[LP_AV_NCOLS];
  size_t len[LP_AV_NCOLS];
  lp_row row = {0, text, len};
  stmt_text *t;
  sqlite3_stmt *st = NULL;
  int rc = LUPINE_OK, step, i;
  if (q->ntags > LP_FILTER_MAX || q->nmd > LP_FILTER_MAX) {
    lp_errf(err, errsz, "at most %d tags and %d metadata conditions", LP_FILTER_MAX,
            LP_FILTER_MAX);
    return LUPINE_MISUSE;
  }
  if ((t = calloc(1, sizeof *t)) == NULL) {
    lp_errf(err, errsz, "out of memory");
    return LUPINE_NOMEM;
  }
  records_statement(t, q);
  if (t->full) {   /* the limits above keep it from happening */
    lp_errf(err, errsz, "catalog: a listing's statement is too long");
    free(t);
    return LUPINE_MISUSE;
  }
  if (sqlite3_prepare_v2(c->db, t->text, -1, &st, NULL) != SQLITE_OK) {
    free(t);
    return dberr(c, "a listing", err, errsz);
  }
  for (i = 0; i < t->n; i++) {
    if (t->arg[i].type == 't') bind_text(st, i + 1, t->arg[i].s);
    else if (t->arg[i].type == 'd') sqlite3_bind_double(st, i + 1, t->arg[i].d);
    else sqlite3_bind_int64(st, i + 1, t->arg[i].i);
  }
  row.ncols = sqlite3_column_count(st);
  if (row.ncols > LP_AV_NCOLS) row.ncols = LP_AV_NCOLS;   /* the widest record */
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    for (i = 0; i < row.ncols; i++) {
      /* text before bytes: the length is that of the form asked for */
      text[i] = sqlite3_column_type(st, i) == SQLITE_BLOB ? sqlite3_column_blob(st, i)
              : (const char *)sqlite3_column_text(st, i);
      len[i] = (size_t)sqlite3_column_bytes(st, i);
    }
    if ((rc = fn(ud, &row)) != LUPINE_OK) break;
  }
  if (rc == LUPINE_OK && step != SQLITE_DONE) rc = dberr(c, "a listing", err, errsz);
  sqlite3_finalize(st);
  free(t);
  return rc;
}

const char *lp_catalog_sqlite_version(void) {
  return sqlite3_libversion();
}
