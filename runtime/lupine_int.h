/* SPDX-License-Identifier: MIT */
/*
** Private declarations shared by the runtime's files. Nothing here is
** part of the public interface (see lupine.h).
**
** Internal functions are named lp_<module>_<verb>. Core C reports
** failure with an LUPINE_* code and writes a message into a caller
** buffer (char *err, size_t errsz); it never raises a Lua error while it
** holds a C resource.
*/
#ifndef LUPINE_INT_H
#define LUPINE_INT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "lua.h"
#include "lauxlib.h"   /* luaL_Reg */
#include "lupine.h"

#define LP_ERRSZ 1024

/* printf into err; a message too long is cut between two characters,
** with "..." at its end. */
void lp_errf(char *err, size_t errsz, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

/* ---- codec.c: Lua values <-> deterministic CBOR (RFC 8949) ---- */

/* Version of the encoding, recorded with each artifact (and later part of
** cache keys). Bump it whenever the bytes produced for some value change. */
#define LP_CODEC_VERSION 1

/* Nesting deeper than this is refused by both encoder and decoder. */
#define LP_CODEC_MAX_DEPTH 200

/*
** Encode the value at stack index idx into a new Lua string pushed on the
** stack (the CBOR bytes). On failure pushes nothing, returns an LUPINE_*
** code and writes into err the path of the culprit inside the value,
** starting with root (e.g. root "value" gives
** "value.layers[3].fn is a function").
** May raise only Lua memory errors (all memory it holds belongs to Lua).
*/
int lp_codec_encode(lua_State *L, int idx, const char *root,
                    char *err, size_t errsz);

/* A string's encoding is a head, then its n bytes: the head into head,
** its length returned. A large string is saved as these two parts, its
** bytes never copied into one string (core.save). */
size_t lp_codec_string_head(const char *s, size_t n, unsigned char head[9]);

/*
** Decode exactly len bytes of CBOR and push the value. On failure pushes
** nothing, returns LUPINE_CORRUPT and describes the problem and its byte
** offset in err. Never executes anything; bounded in depth and memory
** (no allocation larger than the input justifies).
*/
int lp_codec_decode(lua_State *L, const void *data, size_t len,
                    char *err, size_t errsz);

/* Push a tagged value { type = <type>, value = <value> } (stack indices):
** the encoder writes it as tag 27 around [type, value]. */
void lp_codec_push_tagged(lua_State *L, int type, int value);

/* Make fn (stack index) the restore hook: the decoder calls it as
** fn(type, plain value) for each tag 27 and uses what it returns; without
** a hook such values decode as tagged tables. */
void lp_codec_set_restore(lua_State *L, int fn);

/* ---- frame.c: an object's frame: its hash, checks, decoding it whole or
** as it arrives (the store's flavors share it, store_int.h) ---- */

#define LP_HASH_PREFIX "sha256:"
#define LP_HASH_HEXLEN 64
#define LP_HASH_STRLEN (sizeof(LP_HASH_PREFIX) - 1 + LP_HASH_HEXLEN)

/* "sha256:<hex>" of a buffer into out (LP_HASH_STRLEN + 1 bytes); "" if
** OpenSSL failed (out of memory). */
void lp_frame_hash_bytes(const void *data, size_t len, char *out);

/* The versions of the zstd and OpenSSL libraries in use ("1.5.4", "3.0.11"). */
const char *lp_frame_zstd_version(void);
const char *lp_frame_openssl_version(void);

/*
** Decode one stored frame held in memory (the object reader of every store
** flavor's get; exposed for the fuzz target). Refuses frames whose content
** exceeds max_size. If want_hash is not NULL the content must hash to it.
*/
int lp_frame_decode(const void *frame, size_t frame_len, uint64_t max_size,
                    const char *want_hash, unsigned char **data, size_t *len, char *err,
                    size_t errsz);

/* ---- store.c: the artifact store's interface: content-addressed objects
** (zstd frames), whatever the flavor keeping them (store_local.c) ---- */

typedef struct lp_store lp_store;

typedef struct lp_object {
  char hash[LP_HASH_STRLEN + 1];   /* "sha256:<hex>" of the uncompressed bytes */
  uint64_t size;                   /* uncompressed bytes */
  uint64_t stored_size;            /* bytes of the zstd frame on disk */
  int created;                     /* 1 if this put wrote a new object */
} lp_object;

/*
** Open a store of a flavor ("local": location is a folder, created if
** needed; the temporary files of writers that are gone are removed, see
** lp_owner_tag; "s3": location is "s3://bucket/prefix[?settings]", see
** store_s3.c). name is the store's, for messages; cache a folder for a
** remote flavor's read cache (NULL for a local one). LUPINE_MISUSE for an
** unknown flavor. Each flavor is a table of operations behind these
** functions (store.c, store_int.h).
*/
int lp_store_open(lp_store **out, const char *flavor, const char *location, const char *name,
                  const char *cache, char *err, size_t errsz);
void lp_store_close(lp_store *s);   /* NULL-safe */

/* The flavor's name (owned by the flavor). */
const char *lp_store_flavor(const lp_store *s);

/* Receives a message (one line) each time a put replaces a damaged object. */
typedef void (*lp_store_log_fn)(void *ud, const char *message);
void lp_store_set_log(lp_store *s, lp_store_log_fn fn, void *ud);

/* Where the store is: a local store's root directory (owned by the store). */
const char *lp_store_root(const lp_store *s);

/*
** Hash, compress and write an object atomically (temporary file, fsync,
** rename, fsync of the directory). Identical bytes are stored once:
** when the object exists and is intact (its frame decompresses to these
** bytes) nothing is written and info->created is 0; a damaged one is
** replaced (info->created is 1) and the store's log is told.
*/
int lp_store_put(lp_store *s, const void *data, size_t len, lp_object *info,
                 char *err, size_t errsz);

/*
** lp_store_put without the syncs: the object is complete for every reader
** at once, but durable only after lp_store_sync. For a writer that records
** many objects per catalog transaction and syncs once before committing.
*/
int lp_store_put_unsynced(lp_store *s, const void *data, size_t len, lp_object *info,
                          char *err, size_t errsz);

/* lp_store_put (sync 1) or lp_store_put_unsynced (0) of an object whose
** bytes are hlen bytes of head (NULL if 0), then len of data: a large
** string after its encoding's head, never copied into one buffer by a
** flavor that can do without. */
int lp_store_put_parts(lp_store *s, const void *head, size_t hlen, const void *data,
                       size_t len, lp_object *info, int sync, char *err, size_t errsz);

/* Make every object put unsynced so far durable, with their names (one
** syncfs of the store's file system). */
int lp_store_sync(lp_store *s, char *err, size_t errsz);

/*
** Make sure an object put earlier is still there, putting it again if not.
** Called inside the catalog transaction that records a version of it:
** garbage collection deletes objects only while it holds the catalog's
** write lock, so an object seen here stays until the version is committed.
*/
int lp_store_keep(lp_store *s, const void *head, size_t hlen, const void *data, size_t len,
                  lp_object *info, char *err, size_t errsz);

/*
** A file on this machine holding the object's frame into buf: a local
** store's path for it, whether or not it exists; a remote store's copy in
** its read cache, downloaded if needed (then an error code if it cannot
** be). Returns LUPINE_MISUSE for a malformed hash.
*/
int lp_store_local_path(lp_store *s, const char *hash, char *buf, size_t bufsz);

/* Where the object is, for people and the catalog's uri: a local store's
** path, an s3 store's s3://bucket/key. LUPINE_MISUSE for a malformed hash. */
int lp_store_uri(lp_store *s, const char *hash, char *buf, size_t bufsz);

/* 1 if the object exists, 0 if not (a remote store: also when it cannot
** tell; what it learned is kept, see store_s3.c). */
int lp_store_exists(lp_store *s, const char *hash);

/*
** Read an object back: decompress (refusing frames that claim more than
** max_size bytes), check the hash. On success *data (malloc'd, caller
** frees) holds *len bytes. LUPINE_NOTFOUND if missing, LUPINE_CORRUPT on a
** bad frame or hash mismatch; err says which object and what is wrong.
*/
int lp_store_get(lp_store *s, const char *hash, uint64_t max_size,
                 unsigned char **data, size_t *len, char *err, size_t errsz);

/*
** Streamed objects, for content too big to hold in memory: open a writer
** for exactly size bytes (the size goes in the frame header), write the
** bytes in pieces, close it to hash and place the object (atomically, as
** lp_store_put does; an object already there is kept if it reads back
** whole and hashes right, else replaced) and fill info. With s NULL the
** writer only hashes: close fills info->hash and info->size, and stores
** nothing. close and abort free the writer.
*/
typedef struct lp_store_writer lp_store_writer;
int lp_store_writer_open(lp_store *s, uint64_t size, lp_store_writer **out, char *err,
                         size_t errsz);
int lp_store_writer_write(lp_store_writer *w, const void *p, size_t n, char *err,
                          size_t errsz);
int lp_store_writer_close(lp_store_writer *w, lp_object *info, char *err, size_t errsz);
void lp_store_writer_abort(lp_store_writer *w);   /* NULL-safe */

/* Receives an object's content in pieces; nonzero stops the read (the sink
** leaves its reason in the err buffer it was given). */
typedef int (*lp_store_sink)(void *ud, const void *p, size_t n);

/* Stream the content of an object of size bytes to sink; the size and hash
** are checked as it goes and at the end (LUPINE_CORRUPT). */
int lp_store_get_stream(lp_store *s, const char *hash, uint64_t size, lp_store_sink sink,
                        void *ud, char *err, size_t errsz);

/* ---- catalog.c: runs, step runs, artifacts and versions, through a
** backend (catalog_sqlite.c) ---- */

#define LP_ID_LEN 36            /* a UUID in its 36-character text form */
#define LP_NAME_MAX 255         /* bytes in a name */
#define LP_RUN_NAME_MAX (LP_NAME_MAX + 32)

typedef struct lp_catalog lp_catalog;

/* The schema version this build writes to a catalog of the default
** backend (sqlite's user_version). */
int lp_catalog_schema_version(void);

/* The version of the sqlite library in use ("3.40.1"). */
const char *lp_catalog_sqlite_version(void);

/* The version of libpq the PostgreSQL backend was built with ("15.18 ..."). */
const char *lp_catalog_libpq_version(void);

/* The catalog c is: its backend's name ("sqlite", "PostgreSQL") and where
** it is (a file, or the server, database and schema; never a password). */
const char *lp_catalog_backend_name(const lp_catalog *c);
const char *lp_catalog_where(const lp_catalog *c);

/* ---- catalog_copy.c ---- */

/* The tables a copy copies, and how many rows of each went across. */
#define LP_COPY_TABLES 15
typedef struct lp_copy_count {
  const char *table;
  int64_t rows;
} lp_copy_count;

/* Copy everything in catalog from into catalog to, which holds nothing
** but what a new catalog holds (else LUPINE_CONSTRAINT), in one
** transaction of to, each table read back and checked before it commits
** (LUPINE_CORRUPT if one differs): any failure leaves to as it was. */
int lp_catalog_copy(lp_catalog *from, lp_catalog *to, lp_copy_count counts[LP_COPY_TABLES],
                    char *err, size_t errsz);

/* The same of a target, without opening it: the backend's name is
** returned, where it is written into where. */
const char *lp_catalog_describe(const char *target, char *where, size_t wheresz);

/* ---- catalog.c, for the C API (api.c) ---- */

/* Make forks safe while other threads use a backend's library: installs,
** once per process, fork handlers that hold sqlite's global mutexes across
** fork. */
void lp_catalog_fork_safe(void);

/* LUPINE_OK if a backend takes target (a PostgreSQL URI or connection
** string, a path); else LUPINE_MISUSE with a message naming it (without
** what may follow a scheme: a password). */
int lp_catalog_check_target(const char *target, char *err, size_t errsz);

/* Open (creating and migrating if needed) the catalog at path, with the
** first backend that takes it (sqlite takes any path). */
int lp_catalog_open(lp_catalog **out, const char *path, char *err, size_t errsz);
/* The catalog at path, read only (`lupine exec`): a connection that never
** writes (a PostgreSQL session whose transactions are READ ONLY), or a
** snapshot lp_catalog_snapshot made; never created or migrated. */
int lp_catalog_open_read_only(lp_catalog **out, const char *path, char *err, size_t errsz);
/* A snapshot of c as it sees it, for `lupine exec` processes that cannot
** reach it, in folder dir (shared with them): its path in path, made
** there only if c changed since the last one made in dir. An empty path
** for a catalog on a server, which they reach themselves. */
int lp_catalog_snapshot(lp_catalog *c, const char *dir, char *path, size_t pathsz, char *err,
                        size_t errsz);
/* A reader of the snapshot at path is done with it: one without readers
** that is not the newest is removed (the newest, when the next is made). */
void lp_catalog_snapshot_done(lp_catalog *c, const char *path);
void lp_catalog_close(lp_catalog *c);   /* NULL-safe */

/* A write transaction, which takes the catalog's write lock as it starts
** (sqlite: BEGIN IMMEDIATE), so writers queue instead of failing half-way. */
int lp_catalog_begin(lp_catalog *c, char *err, size_t errsz);
/* One that no other write transaction runs beside: where writers can
** share the catalog (PostgreSQL), they wait for it and it for them. */
int lp_catalog_begin_alone(lp_catalog *c, char *err, size_t errsz);
int lp_catalog_commit(lp_catalog *c, char *err, size_t errsz);
void lp_catalog_rollback(lp_catalog *c);
int lp_catalog_in_transaction(lp_catalog *c);   /* 1 inside one */
/* Before a wait or other work: the writes of the open transaction that a
** backend keeps back to send with a later statement are sent now, for the
** server to work on meanwhile (their errors come as before, with the next
** statement that waits for an answer). */
int lp_catalog_send(lp_catalog *c, char *err, size_t errsz);

/* A part of a transaction that can be undone alone (not nested): the
** savepoint, then release to keep it or rollback_savepoint to undo it. */
int lp_catalog_savepoint(lp_catalog *c, char *err, size_t errsz);
int lp_catalog_release(lp_catalog *c, char *err, size_t errsz);
void lp_catalog_rollback_savepoint(lp_catalog *c);

/* Current time as the catalog writes it: "YYYY-MM-DDTHH:MM:SS.ffffffZ". */
void lp_catalog_now(char out[32]);
/* The time that many seconds ago, the same way. */
void lp_catalog_time_ago(long seconds, char out[32]);

/*
** Create a pipeline run (and its pipeline on first use), status
** "running", started at start (catalog time format; NULL: now). name NULL
** gives "<pipeline>-<YYYYMMDD>-<HHMMSS>", with a
** "-N" suffix where that is taken. Writes the id and final name.
*/
int lp_catalog_create_run(lp_catalog *c, const char *pipeline, const char *name,
                          const char *start, char id[LP_ID_LEN + 1],
                          char name_out[LP_RUN_NAME_MAX + 1], char *err, size_t errsz);
int lp_catalog_finish_run(lp_catalog *c, const char *run_id, const char *status,
                          const char *error, char *err, size_t errsz);

/* What a new step run records. */
typedef struct lp_step_run_spec {
  const char *run_id, *name, *step_name;
  /* "running"; one created with another status ends as it starts:
  ** "skipped", or "cached" (with the step run it reuses: cached_from) */
  const char *status;
  const void *parameters;       /* the CBOR map of its parameters */
  size_t parameters_len;
  /* its cache key, what the key was made of (CBOR) and why it is not a
  ** cache hit; NULL: none (a step whose inputs could not be read) */
  const char *cache_key;
  const void *cache_parts;
  size_t cache_parts_len;
  const char *cache_note;
  const char *cached_from;
  const long long *seed;        /* the seed its random numbers start from; NULL: none */
  const char *orchestrator;     /* the orchestrator that runs it; NULL: none does */
} lp_step_run_spec;

/* Create a step run, writing its id. */
int lp_catalog_create_step_run(lp_catalog *c, const lp_step_run_spec *spec,
                               char id[LP_ID_LEN + 1], char *err, size_t errsz);
/* End a step run; output_count is how many outputs it stored (-1: not
** recorded, as for a step run that did not complete), output what its
** step printed (NULL: nothing), attempts how many times it ran (-1: not
** recorded, as for one stopped). */
int lp_catalog_finish_step_run(lp_catalog *c, const char *step_run_id,
                               const char *status, const char *error,
                               const char *traceback, int output_count, const char *output,
                               int attempts, char *err, size_t errsz);
/* Link input (output) name of a step run to a version, by its id and,
** where the caller has it, its seq (0: looked up by id). A step run's own
** new outputs are linked by lp_catalog_add_version; add_output links the
** versions a cache hit reuses. */
int lp_catalog_add_input(lp_catalog *c, const char *step_run_id, const char *name,
                         const char *version_id, long long version_seq, char *err,
                         size_t errsz);
int lp_catalog_add_output(lp_catalog *c, const char *step_run_id, const char *name,
                          const char *version_id, long long version_seq, char *err,
                          size_t errsz);

/* What a new artifact version records. */
typedef struct lp_version_spec {
  const char *artifact;     /* artifact name */
  const char *version;      /* a custom version, or NULL: the next number */
  const char *type;         /* "data", "model", ... */
  const char *data_type;    /* the Lua type, or a materializer's name */
  const lp_object *object;  /* the stored object */
  const char *uri;          /* where the object lives */
  const char *producer;     /* producing step run id, or NULL */
  const char *output;       /* output name on the producer, or NULL */
  const char *store_id;     /* the artifact store holding it; NULL: the default */
  const char *save_type;    /* how it was made: "step_output", "manual", ... */
  /* 1: the caller reads a numbered version's number back later
  ** (lp_catalog_version_number), and a backend that sends writes without
  ** waiting for their answers (PostgreSQL) does so with it too */
  int later;
} lp_version_spec;

/* Record a new version of the artifact (created on first use): the custom
** version, or the highest numeric version plus one. Writes its id, version
** string and seq; with spec->later, the version "" and seq 0 where they
** are not known yet. LUPINE_CONSTRAINT if the custom version exists. */
int lp_catalog_add_version(lp_catalog *c, const lp_version_spec *spec,
                           char id[LP_ID_LEN + 1], char version[LP_NAME_MAX + 1],
                           long long *seq, char *err, size_t errsz);

/* The seq and version of version id, recorded in this transaction or before. */
int lp_catalog_version_number(lp_catalog *c, const char *id, char version[LP_NAME_MAX + 1],
                              long long *seq, char *err, size_t errsz);

/*
** Run one of the catalog's named read queries (see the declarations in
** catalog.c), with the nargs Lua values from stack index first on as its
** parameters, and push an array of rows (tables keyed by column name;
** NULL columns absent). LUPINE_MISUSE for an unknown query name, or a
** value of the wrong type or number ("bad argument #2 to 'tags_of'
** (entity_id: string expected, got nil)"), before anything is run.
*/
int lp_catalog_query(lua_State *L, lp_catalog *c, const char *query,
                     int first, int nargs, char *err, size_t errsz);

/*
** Make one of the catalog's named writes (see the declarations in
** catalog.c), its values checked as lp_catalog_query's, in its own
** transaction unless one is open. *changes counts the rows changed;
** changes NULL: the count is not wanted, and a backend may send the write
** without waiting for its answer (its error comes with the next call that
** waits, at the latest the commit).
*/
int lp_catalog_write(lua_State *L, lp_catalog *c, const char *name,
                     int first, int nargs, int *changes, char *err, size_t errsz);

/* The checks of lp_catalog_query (write 0) or lp_catalog_write (write 1)
** without a catalog: a worker makes them before its coordinator runs the
** statement, so the error is raised where the call is. */
int lp_catalog_check(lua_State *L, int write, const char *name, int first, int nargs,
                     char *err, size_t errsz);

/* ---- catalog_listing.c: the Client's listings (lua/lupine/query.lua) ---- */

/*
** A listing ("artifact_versions", "artifacts", "pipeline_runs",
** "pipelines") of what the filter description at stack index desc selects
** (catalog_listing.c says what a description holds; every part is
** checked, a wrong one named: "bad argument #2 to 'list'
** (description[2].op: unknown operator 'like')"). push says what it
** pushes: "rows" (or NULL), the page's rows; "count", the number of every
** match; "plan" or "count_plan", the plan of the page's or the count's
** statement and the statement's text.
*/
int lp_catalog_list(lua_State *L, lp_catalog *c, const char *listing, int desc,
                    const char *push, char *err, size_t errsz);

/* Push the list of the keys a listing may be sorted by, in the order of
** their names. */
int lp_catalog_sort_keys(lua_State *L, const char *listing, char *err, size_t errsz);

/* ---- catalog_listing.c, for the C API (api.c): its records, read without Lua ---- */

/* The columns of the rows lp_catalog_records gives, for each kind of
** record; the first of a listing's is the seq it pages by. */
enum {
  LP_AV_SEQ, LP_AV_ID, LP_AV_NAME, LP_AV_VERSION, LP_AV_TYPE, LP_AV_DATA_TYPE, LP_AV_HASH,
  LP_AV_SIZE, LP_AV_STORED_SIZE, LP_AV_CREATED, LP_AV_STORE, LP_AV_SAVE_TYPE, LP_AV_PRODUCER,
  LP_AV_TAGS,   /* the tags' names, in order, each ending in '\n' */
  LP_AV_LINK,   /* a step run's inputs and outputs: the link's name */
  LP_AV_NCOLS
};
enum {
  LP_RUN_SEQ, LP_RUN_ID, LP_RUN_NAME, LP_RUN_PIPELINE, LP_RUN_STATUS, LP_RUN_START,
  LP_RUN_END, LP_RUN_ERROR, LP_RUN_TAGS, LP_RUN_NCOLS
};
enum {
  LP_SR_SEQ, LP_SR_ID, LP_SR_RUN, LP_SR_NAME, LP_SR_STEP, LP_SR_STATUS, LP_SR_START,
  LP_SR_END, LP_SR_ERROR, LP_SR_TRACEBACK, LP_SR_LOGS, LP_SR_ATTEMPTS, LP_SR_NCOLS
};
enum { LP_MD_KEY, LP_MD_VALUE, LP_MD_NUMBER, LP_MD_TEXT, LP_MD_NCOLS };

/* What lp_catalog_records lists. */
enum {
  LP_LIST_VERSIONS,    /* versions (LP_AV_*), newest first */
  LP_LIST_RUNS,        /* pipeline runs (LP_RUN_*), newest first */
  LP_LIST_STEP_RUNS,   /* step runs (LP_SR_*), oldest first */
  LP_LIST_CONSUMERS,   /* the step runs that took version id as an input, oldest first */
  LP_LIST_LINKS,       /* the versions linked to step run id as kind (LP_AV_*, with LINK) */
  LP_LIST_METADATA     /* the run metadata (LP_MD_*) of entity kind's id, by key */
};

/* A condition on run metadata: the key is there, and its value compares
** with number (or equals text) as op says. */
enum { LP_MD_ANY, LP_MD_EQ, LP_MD_LT, LP_MD_LE, LP_MD_GT, LP_MD_GE };
typedef struct lp_md_cond {
  const char *key;
  int op;
  const char *text;           /* LP_MD_EQ: the text it equals */
  double number;              /* the number it compares with... */
  int numeric;                /* ...if this is set (LP_MD_EQ: or equals) */
} lp_md_cond;

#define LP_FILTER_MAX 16      /* tags, and metadata conditions, in one listing */

/* A description of the rows wanted (fields that do not apply are NULL or
** 0); catalog_listing.c makes the statement. */
typedef struct lp_records {
  int what;                   /* LP_LIST_* */
  const char *id;             /* versions, runs, step runs: this one only; consumers:
                              ** of this version; links: of this step run; metadata:
                              ** of this entity */
  const char *name;           /* versions: of this artifact; runs: of this pipeline;
                              ** step runs: with this name (in run) */
  const char *run;            /* step runs: of this pipeline run */
  const char *kind;           /* links: "input" or "output"; metadata: the entity
                              ** ("artifact_version", "pipeline_run", "step_run") */
  const char *status;         /* runs: with this status */
  const char *const *tags;    /* versions, runs: carrying each */
  int ntags;
  const lp_md_cond *md;       /* versions, runs: whose metadata meets each */
  int nmd;
  long long past;             /* a listing's rows after this seq in its order (0: all) */
  int limit;                  /* rows at most (0: no limit) */
} lp_records;

/* One row: its columns as bytes (text, numbers as their decimal text,
** BLOBs as they are; NULL for NULL) and their lengths. */
typedef struct lp_row {
  int ncols;
  const char *const *text;
  const size_t *len;
} lp_row;

/* Receives each row; anything but LUPINE_OK stops the rows with that code
** (the receiver says why where it keeps its messages). */
typedef int (*lp_row_fn)(void *ud, const lp_row *row);

/* Pass the rows q describes to fn, in its listing's order. LUPINE_MISUSE
** for a description that asks for too much (more than LP_FILTER_MAX). */
int lp_catalog_records(lp_catalog *c, const lp_records *q, lp_row_fn fn, void *ud, char *err,
                       size_t errsz);

/* ---- catalog.c: stacks and artifact stores ---- */

/* The ids migration 6 gives the default store (<home>/artifacts) and stack. */
#define LP_DEFAULT_STORE_ID "00000000-0000-4000-8000-000000000001"
#define LP_DEFAULT_STACK_ID "00000000-0000-4000-8000-000000000002"
#define LP_DEFAULT_ORCHESTRATOR_ID "00000000-0000-4000-8000-000000000003"

typedef struct lp_store_info {
  char id[LP_ID_LEN + 1];
  char name[LP_NAME_MAX + 1];
  char flavor[32];
  char path[4096];              /* "" for the default store: <home>/artifacts */
  char stack[LP_NAME_MAX + 1];  /* the stack it was found through, if any */
} lp_store_info;

/* The artifact store with id store_id; or, store_id NULL, that of the stack
** named stack (NULL: the active stack). LUPINE_NOTFOUND says which. */
int lp_catalog_store_info(lp_catalog *c, const char *store_id, const char *stack,
                          lp_store_info *out, char *err, size_t errsz);

/* ---- runtime.c: the runtime a lua_State works with ---- */

/* An artifact store the runtime has opened. */
typedef struct lp_store_slot {
  char id[LP_ID_LEN + 1];
  lp_store *store;
} lp_store_slot;

/*
** One per lua_State, kept as a userdata in its registry: where the catalog
** lives and the open catalog and store. Hosts and the module share it, so
** the CLI, an embedding program and plain `require "lupine"` behave alike.
*/
typedef struct lp_runtime {
  char *home;                 /* catalog folder; NULL until resolved */
  char *catalog_target;       /* set_catalog's; NULL: $LUPINE_CATALOG, else the folder's file */
  lp_catalog *catalog;        /* opened on first use */
  lp_store *store;            /* where new objects go: the active (or the run's) stack's
                              ** store, one of stores[]; NULL if it cannot be opened */
  char store_id[LP_ID_LEN + 1];
  char store_err[LP_ERRSZ];   /* why store is NULL */
  lp_store_slot *stores;      /* every store opened, by id (owned) */
  int nstores;
  lupine_log_fn log;          /* where progress goes; NULL: nowhere */
  void *log_ud;
  lupine_event_fn events;     /* where a run's events go; NULL: nowhere */
  void *events_ud;
  int failed_runs;            /* runs that ended failed (the CLI's exit code) */
  char *run_failure;          /* the message of the last of them (malloc'd), or NULL */
  volatile sig_atomic_t interrupted;   /* set by lupine_interrupt: stop the run */
  volatile sig_atomic_t running;       /* a run is in progress (lupine_interrupt looks) */
  /* told of each run that ends (core.run), with its id and status: the C
  ** API keeps those its lupine_exec_* calls started */
  void (*on_run)(void *ud, const char *id, const char *status);
  void *on_run_ud;
  int to_parent, from_parent; /* in a worker process: its pipes; else 0 */
  /* in `lupine exec` (exec.c): answers a worker's calls in its own process
  ** (the call's frame, { kind = "call", op, args }, on top), as lp_wire_call
  ** does through the coordinator; else NULL */
  int (*serve)(lua_State *L, struct lp_runtime *rt, const char *op, int first, int nargs);
  const char *detached;       /* in `lupine exec`: why the catalog is out of reach; else NULL */
  int read_only;              /* in `lupine exec`: catalog_target is opened read only */
  char err[LP_ERRSZ];
} lp_runtime;

/* The runtime of L, created closed on first call (does not open anything). */
lp_runtime *lp_runtime_of(lua_State *L);

/* Open the catalog and store of rt if they are not open, resolving the
** home folder first if none was set. LUPINE_OK or an error in rt->err. */
int lp_runtime_ready(lp_runtime *rt);

/* The open store with this id (opening it on first use: its folder must
** exist, or the message names the store, its flavor and its path). */
int lp_runtime_store(lp_runtime *rt, const char *store_id, lp_store **out, char *err,
                     size_t errsz);

/* Open the store of this id, name (for messages), flavor and path (a folder,
** or a bucket's s3:// address) and keep it among rt's stores, as
** lp_runtime_store does with what the catalog says of it. */
int lp_runtime_add_store(lp_runtime *rt, const char *store_id, const char *name,
                         const char *flavor, const char *path, lp_store **out, char *err,
                         size_t errsz);

/* Make the store of stack (NULL: the active stack) the one new objects go
** to; writes that stack's name into stack_out if not NULL. */
int lp_runtime_use_stack(lp_runtime *rt, const char *stack, char *stack_out, size_t stacksz);

/* rt->store, or LUPINE_IO with the reason it cannot be opened in rt->err. */
int lp_runtime_write_store(lp_runtime *rt);

/* Close the catalog and store and use home (NULL: resolve it again, as
** lupine_open documents), made absolute now: a relative folder is
** relative to the current directory of this call, not of a later one. An
** empty home (or $LUPINE_HOME) is LUPINE_MISUSE, its message starting
** "<who>: " (or "LUPINE_HOME: "). */
int lp_runtime_set_home(lp_runtime *rt, const char *home, const char *who);

/* How long a run on another machine may go without a heartbeat before
** it is taken for dead: $LUPINE_DEAD_AFTER seconds, else LP_DEAD_AFTER.
** Its process beats four times as often. */
#define LP_DEAD_AFTER 120
int lp_runtime_dead_after(void);

/* The catalog rt opens (runtime.c says how it is chosen), its home
** resolved: malloc'd, NULL if memory ran out. */
char *lp_runtime_catalog_target(lp_runtime *rt);

/* The catalog in use named for people, into out (see lupine_catalog_name):
** the folder's path when it is the folder's own file, else its kind and
** where it is, never a password. Finds the folder; LUPINE_OK or a code
** with rt->err. */
int lp_runtime_catalog_name(lp_runtime *rt, char *out, size_t outsz);

/* Use the catalog at target from now on (a file, a connection string);
** NULL: $LUPINE_CATALOG, else the folder's catalog.db. The catalog open
** now is closed. "" is LUPINE_MISUSE, its message starting "<who>: ". */
int lp_runtime_set_catalog(lp_runtime *rt, const char *target, const char *who);

/* In a freshly forked worker: leave the parent's catalog connection alone
** (it must not be used across fork; a new one opens on demand) and send
** catalog writes to the coordinator through these pipes. */
void lp_runtime_forked(lp_runtime *rt, int to_parent, int from_parent);

/* Make rt (the runtime of L) ready as the bindings do on first use: open
** the catalog and store, and mark the runs of dead processes failed. Does
** not raise for an unusable catalog (a code, with rt->err); call it in a
** protected call all the same (marking allocates). */
int lp_runtime_open(lua_State *L, lp_runtime *rt);

/* The runtime of L, opened (lp_runtime_open); raises the reason if it
** cannot be. */
lp_runtime *lp_runtime_opened(lua_State *L);

/* Resolve rt's home folder if none is set yet (as lupine_open documents). */
int lp_runtime_find_home(lp_runtime *rt);

/* mkdir -p: every missing folder of path; the message names the folder. */
int lp_runtime_make_dirs(const char *path, char *err, size_t errsz);

/* The local side of a call a step may make of the catalog: run with the
** nargs values from first on as its arguments, push its results and return
** how many, or return -1 with rt->err set. */
typedef int (*lp_call_fn)(lua_State *L, lp_runtime *rt, int first, int nargs);

/*
** Make the call op of the runtime of L: by fn here, or, in a worker of a
** run, by the same fn in the coordinator (lp_wire_call; worker.c serves
** it), which holds the run's transaction and sees what it has not yet
** committed. The one place that tells the two apart. Pushes the results;
** raises the error.
*/
int lp_runtime_call(lua_State *L, const char *op, lp_call_fn fn, int first, int nargs);
/* 1 if lp_runtime_call runs calls here (by fn), 0 if in the coordinator. */
int lp_runtime_here(lua_State *L);

/* The catalog's calls, as lp_call_fns: a statement's name at first, its
** arguments after it (core.query, core.write); a listing's name, its
** description and what to push (core.list). */
int lp_runtime_query(lua_State *L, lp_runtime *rt, int first, int nargs);
int lp_runtime_write(lua_State *L, lp_runtime *rt, int first, int nargs);
int lp_runtime_list(lua_State *L, lp_runtime *rt, int first, int nargs);
/* args: a folder -> the catalog `lupine exec` reads: the path of a
** snapshot made there (lp_catalog_snapshot), or a server's target */
int lp_runtime_snapshot(lua_State *L, lp_runtime *rt, int first, int nargs);
/* args: a snapshot's path: its reader is done with it (lp_catalog_snapshot_done) */
int lp_runtime_release(lua_State *L, lp_runtime *rt, int first, int nargs);

/* Send a message (formatted, at most 2047 bytes; or text as it is) to the
** runtime's log callback, if any; in a worker, to stderr as "lupine: ...",
** the step's output, which the coordinator logs. */
void lp_log_text(lp_runtime *rt, int level, const char *text);
void lp_log(lp_runtime *rt, int level, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

/* Pass an event to the runtime's event callback, if any. */
void lp_event(lp_runtime *rt, const lupine_event *ev);

/* Raise msg (formatted as lua_pushfstring does) as a Lua error without a
** position in front: the Lua caller of a core function is Lupine's own
** code, whose file and line mean nothing to the user. */
int lp_raise(lua_State *L, const char *fmt, ...);

/* ---- arena.c: the Lua allocator of a worker process ---- */

typedef struct lp_arena {
  lua_Alloc parent;           /* the state's allocator before: large blocks */
  void *parent_ud;
  char *base, *next, *end;    /* the worker's own memory, and what is unused */
  void *free[1024 / 16 + 1];  /* freed blocks by size class */
} lp_arena;

/* In a new worker: give L an allocator that serves small blocks from
** memory of the worker's own (see arena.c). a must outlive L's use.
** 0, or -1 (nothing changed) if the memory cannot be reserved. */
int lp_arena_install(lua_State *L, lp_arena *a);

/* ---- spawn.c: the process that forks a run's workers ---- */

/* Runs in each new worker with its three descriptors (from the request);
** must not return. */
typedef void (*lp_spawn_fn)(void *ud, const int fds[3]);

#define LP_SPAWNER_EXITS 128   /* more than the workers a run has at once */

typedef struct lp_spawner {
  pid_t pid;                  /* 0: not started */
  int sock;
  struct { int pid, status; } exits[LP_SPAWNER_EXITS];   /* not yet waited for */
  int nexits;
  int forgotten[LP_SPAWNER_EXITS];   /* whose exits nobody will wait for */
  int nforgotten;
  int requested;              /* a worker is asked for and not yet here */
  int ready, ready_pid;       /* here and not yet taken: its pid (or -errno) */
  int ready_fds[3];           /* and the coordinator's ends of its channels */
} lp_spawner;

/* Fork the spawner from the calling process: each worker it forks later is
** a copy of this moment's process that calls fn(ud, fds), fds being its
** ends of three channels: to the coordinator, from it, and its output. */
int lp_spawner_start(lp_spawner *sp, lp_spawn_fn fn, void *ud, char *err, size_t errsz);

/* Take a worker (forked ahead of need; the next is asked for at once): 0,
** its pid and the caller's ends of its channels (from it, to it, its
** output; close-on-exec), or an errno value. It waits for its start frame,
** the leader of a process group of its own. */
int lp_spawner_spawn(lp_spawner *sp, int fds[3], pid_t *pid);

/* Wait for worker pid to end: 0 and its waitpid status, or -1 if the
** spawner is gone, or the worker is and its status will never come. */
int lp_spawner_wait(lp_spawner *sp, pid_t pid, int *status);

/* Nobody will wait for worker pid: its exit, come or to come, is dropped. */
void lp_spawner_forget(lp_spawner *sp, pid_t pid);

/* End the spawner (the workers it started are not waited for). NULL-safe;
** a spawner never started is left alone. */
void lp_spawner_stop(lp_spawner *sp);

/* ---- lua_sources.c: the Lua side, embedded (made by the Makefile) ---- */

/* The Lua side (the files in lua/lupine/), embedded at build time; the array ends
** with a NULL module. */
typedef struct lp_lua_source {
  const char *module;      /* "lupine", "lupine.client", ... */
  const char *chunkname;   /* "@lupine/init.lua", for error messages */
  const char *code;
  size_t len;
} lp_lua_source;
extern const lp_lua_source lp_lua_sources[];

/* ---- files.c: files and folders as artifacts (ustar archives) ---- */

/* Store the file or folder at path as one object; *is_dir says which. With
** s NULL nothing is stored: info gets the hash the object would have. */
int lp_files_store(lp_store *s, const char *path, lp_object *info, int *is_dir, char *err,
                   size_t errsz);

/* Extract the archive object into the new folder dest; top gets the name
** of its one top-level entry. Files come out read-only (executable bits
** kept), folders too. */
int lp_files_extract(lp_store *s, const char *hash, uint64_t size, const char *dest,
                     char *top, size_t topsz, char *err, size_t errsz);

/* The path of a read-only copy of the archive object, extracted once into
** cache/<hex>/ (atomically: renamed into place whole) with a manifest of
** its entries. A copy that changed since (see check_copy) is extracted
** again, and changed gets why; else changed is "". */
int lp_files_materialize(lp_store *s, const char *cache, const char *hash, uint64_t size,
                         char *out, size_t outsz, char *changed, size_t changedsz, char *err,
                         size_t errsz);

/* Hash the copy of object hash in cache again, as verify does: LUPINE_OK if
** it still holds what the object does, LUPINE_CORRUPT with why if not,
** LUPINE_NOTFOUND if there is no copy. */
int lp_files_check(const char *cache, const char *hash, char *why, size_t whysz);

/* Remove the copy of object hash from cache (moved out of the way first,
** so no reader finds half of it); LUPINE_NOTFOUND if there is none. */
int lp_files_discard(const char *cache, const char *hash, char *err, size_t errsz);

/* Remove (or, dry_run, only count) the copies in cache that needed(ud, hex)
** says no version needs; *copies and *bytes (their files' sizes) say how
** many and how much. */
int lp_files_prune(const char *cache, int (*needed)(void *ud, const char *hex), void *ud,
                   int dry_run, uint64_t *copies, uint64_t *bytes, char *err, size_t errsz);

/* Remove what processes that are gone left in cache/.tmp (copies being
** extracted or removed). Best effort: nothing is reported. */
void lp_files_clean(const char *cache);

/* ---- text.c ---- */

/* The terminal columns the UTF-8 text s (len bytes) takes: 2 for East Asian
** wide characters, 0 for combining marks and controls, 1 for the rest (an
** invalid byte counts as one column, as the replacement character it shows
** as). If fit is not NULL, *fit is the length in bytes of the longest prefix
** that takes at most max columns. */
size_t lp_text_width(const char *s, size_t len, size_t max, size_t *fit);

/* ---- util.c ---- */

/* The start time of process pid as the kernel counts it (from
** /proc/PID/stat), so a reused pid can be told apart. 0, or -1 if gone. */
int lp_process_start(long pid, char out[32]);

/*
** Temporary files and folders are named after the process writing them,
** so that a later process can tell those left by a crash from those in
** use: an owner tag "<pid>-<start time>-<host>" (the host name with
** characters other than letters, digits, '.' and '_' as '_', at most 64).
*/
#define LP_OWNER_MAX 128
void lp_owner_tag(char out[LP_OWNER_MAX]);

/* 1 if name (an owner tag, '-', then anything without '-') names a process
** of this host that is gone, its pid ended or reused since; 0 for a live
** owner, another host's, or a name of another form. */
int lp_owner_gone(const char *name);

/* How many steps run at once by default: the number of online cores. */
int lp_default_jobs(void);

/* ms as people read a duration ("850 ms", "6.0 s", "2 min 05 s"), into
** buf (24 bytes hold any). */
void lp_duration(double ms, char *buf, size_t size);

/* A fresh seed for a step run's random numbers, from the OS: an integer
** from 0 to 2^53 - 1, so that it reads back exactly wherever JSON goes. */
long long lp_random_seed(void);

/* Append to the text of *len bytes in buf (size bytes in all), formatted
** as printf does, cut to fit; *len grows (to size once it is full). */
void lp_appendf(char *buf, size_t size, size_t *len, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 4, 5)))
#endif
  ;

/* The finite double x in the fewest digits that read back as x, in %g's
** notation at 15 to 17 digits of precision ("0.1", "100", "1e+300",
** "5e-324"). */
void lp_float_text(double x, char *buf, size_t size);

/* ---- cache.c: the cache key (its code part here; the rest in run.h) ---- */

/* The fingerprint of the Lua function at fn: its stripped bytecode and
** what it reaches through upvalues (see cache.c). */
int lp_cache_code_hash(lua_State *L, int fn, char out[LP_HASH_STRLEN + 1]);

/* ---- wire.c: frames between a coordinator and its workers, and a worker's calls ---- */

/* A growable byte buffer. */
typedef struct lp_buf {
  char *p;
  size_t len, cap;
} lp_buf;

/* Append n bytes: 0, or -1 when memory runs out. Drop the first n. */
int lp_wire_buf_add(lp_buf *b, const char *p, size_t n);
void lp_wire_buf_drop(lp_buf *b, size_t n);

/* Write all n bytes to the socket fd: 0, or -1 if the peer is gone. */
int lp_wire_write(int fd, const char *p, size_t n);

/* A frame's 4 bytes of length (big-endian) for n bytes of CBOR. */
void lp_wire_head(unsigned char head[4], size_t n);

/* Encode the table on top as a frame to fd; pops it. 0 or -1. */
int lp_wire_send(lua_State *L, int fd);

/* Length of the complete frame at the start of b, or 0 if incomplete. */
size_t lp_wire_ready(const lp_buf *b);

/* Read one whole frame from fd into b: its length (with the 4 bytes in
** front), or 0 if the peer is gone first or memory runs out. */
size_t lp_wire_read(int fd, lp_buf *b);

/* In a worker: make call op (see lp_runtime_call) with the nargs values
** from first on as its arguments in the coordinator, and push what it
** returns. Raises the coordinator's error. With rt->serve set (`lupine
** exec`), rt->serve answers instead. */
int lp_wire_call(lua_State *L, lp_runtime *rt, const char *op, int first, int nargs);

/* ---- graph.c: the dependency graph of one pipeline run ---- */

typedef struct lp_graph lp_graph;

/* Push a userdata holding a graph of n nodes with room for nedges edges. */
lp_graph *lp_graph_push(lua_State *L, int n, int nedges);

/* Node to depends on node from (0-based). */
void lp_graph_add_edge(lp_graph *g, int from, int to);

/* After the edges are in: LUPINE_OK, or LUPINE_MISUSE if there is a cycle:
** its *len nodes are then in cycle (room for n), each depending on the one
** before it and the first on the last. */
int lp_graph_seal(lp_graph *g, int *cycle, int *len);

/* The lowest-numbered node whose dependencies have all finished, marking it
** taken; -1 when none is ready. */
int lp_graph_next(lp_graph *g);

/* Node finished. If it failed, every node downstream of it is skipped:
** lp_graph_next never returns them, and lp_graph_skipped says so. */
void lp_graph_finish(lp_graph *g, int node, int ok);
int lp_graph_skipped(const lp_graph *g, int node);

/* ---- executor.c: running a pipeline run (its files share run.h) ---- */

/*
** Run the pipeline described by the table at stack index spec (core.run's
** argument, built by lua/lupine/init.lua; every field is documented above
** lp_execute in executor.c). Pushes four values: the run's id, its name,
** its status and the failed steps' messages. Step failures are recorded,
** not raised; raises only for a malformed spec or when the catalog itself
** fails.
*/
int lp_execute(lua_State *L, lp_runtime *rt, int spec);

/* ---- worker.c, for exec.c: a step run as a worker runs it ---- */

/*
** In a process forked to run one step (exec.c): run node 1 of the run spec
** at stack index spec as a forked worker does, its inputs' results in the
** table at results (node -> { output -> { hash, size, kind, store } }), its
** report entry at report[1] ({ step_run, params, seed, run_id, run_name }:
** the run its context names); send the result
** frame to to_parent, with what it prints on output, then _exit. Never
** returns.
*/
void lp_worker_main(lua_State *L, lp_runtime *rt, int spec, int results, int report,
                    int to_parent, int output);

/* Push why a worker process ended without a result: its timeout (seconds)
** passed (timed_out), its status is unknown (lost), or its waitpid status. */
void lp_worker_ended(lua_State *L, int status, int timed_out, double timeout, int lost);

/* ---- versions.c: an artifact version saved, recorded, loaded, materialized ---- */

/*
** Record a stored object as a new version, with its tags and metadata:
** cfg (a stack index) is { artifact = name, type = ..., version = custom or
** nil, save_type = how it was made or nil: "step_output", reuse = true
** to give the latest version of that name and save type with the same
** content instead, if there is one }; extra (a stack index, or 0) is
** { tags = { ... }, metadata = { { key, CBOR value, number or nil, text or
** nil }, ... } }; later as lp_version_spec's (version "" and seq 0 when
** the number is left to read back). The caller holds the transaction.
** LUPINE_CONSTRAINT (message in rt->err) if the custom version exists.
*/
int lp_versions_record(lua_State *L, lp_runtime *rt, int cfg, int extra,
                       const lp_object *obj, const char *data_type, const char *producer,
                       const char *output, int later, char id[LP_ID_LEN + 1],
                       char version[LP_NAME_MAX + 1], long long *seq);

/* Store CBOR bytes as a new version: the nargs (6) values from first on
** are bytes, cfg, extra, producer, output, data type (cfg and extra as
** lp_versions_record takes them), in a transaction of its own. Pushes
** id, version and the version's catalog row and returns 3; or pushes nil
** and a message (the custom version exists) and returns 2; or returns -1
** with rt->err set. An lp_call_fn: a worker's save runs it in the
** coordinator. */
int lp_versions_save(lua_State *L, lp_runtime *rt, int first, int nargs);

/* Record obj, stored in the write store, as a new version of data_type
** (cfg and extra as lp_versions_record takes them), in a transaction of
** its own; returns as lp_versions_save does. An object gone (a gc since
** it was stored) gives nil and a message. */
int lp_versions_record_object(lua_State *L, lp_runtime *rt, const lp_object *obj,
                              const char *data_type, int cfg, int extra);

/* Load artifact version id: look it up (in a worker, through the
** coordinator, which sees what it has not committed), read its object from
** its own store, push its value (decode; a file or folder's: the path of
** a read-only copy) or its CBOR bytes. Returns 1; raises a Lua error
** naming the artifact on failure. */
int lp_versions_load(lua_State *L, lp_runtime *rt, const char *id, int decode);

/* Is data_type that of a file or folder artifact ("file", "dir")? */
int lp_versions_is_file(const char *data_type);

/* The path of a read-only copy of a file or folder object (in the files
** cache under the catalog folder); message in rt->err. */
int lp_versions_materialize(lp_runtime *rt, lp_store *s, const char *hash, uint64_t size,
                            char *out, size_t outsz);

/* ---- gc.c: removing objects no version references (with the store and
** catalog functions it uses) ---- */

/* Called for each object: its hash ("sha256:<hex>"), its size on disk and
** when its file was last written (seconds since the epoch). Returning
** anything but LUPINE_OK stops the walk with that code. */
typedef int (*lp_store_object_fn)(void *ud, const char *hash, uint64_t stored_size,
                                  int64_t written);

/* store.c: call fn for each well-formed object (in a local store, a regular
** file objects/<2 hex>/<62 hex>.zst; other entries, and tmp/, are skipped). */
int lp_store_list(lp_store *s, lp_store_object_fn fn, void *ud, char *err, size_t errsz);

/* store.c: delete an object; *removed is 0 if it was not there. */
int lp_store_remove(lp_store *s, const char *hash, int *removed, char *err, size_t errsz);

/* catalog.c: call fn for each distinct content hash an artifact version
** records (in the caller's transaction, if one is open). Returning anything
** but LUPINE_OK stops with that code. */
int lp_catalog_each_hash(lp_catalog *c, const char *store_id,
                         int (*fn)(void *ud, const char *hash), void *ud,
                         char *err, size_t errsz);

/* catalog.c: the same for the content hashes of file and folder versions,
** in every store (their extracted copies are shared by all). */
int lp_catalog_each_file_hash(lp_catalog *c, int (*fn)(void *ud, const char *hash), void *ud,
                              char *err, size_t errsz);

/* catalog.c: *any is 1 if the catalog records an artifact version at all
** (in any store), else 0. */
int lp_catalog_has_versions(lp_catalog *c, int *any, char *err, size_t errsz);

typedef struct lp_gc_options {
  int dry_run;        /* count, remove nothing */
  double grace;       /* seconds: an object written more recently is kept */
  int force;          /* remove even when the catalog records no version at all */
} lp_gc_options;

typedef struct lp_gc_result {
  uint64_t objects;   /* objects removed (or that would be, in a dry run) */
  uint64_t bytes;     /* their size on disk */
  uint64_t kept;      /* objects still referenced by some version */
  uint64_t recent;    /* objects referenced by none, kept as written within the grace */
} lp_gc_result;

/*
** Remove the stored objects that no artifact version references and that
** were written longer than opt->grace seconds ago. Holds the catalog's
** write lock (BEGIN IMMEDIATE) from reading the references until the last
** file is removed: writers record versions under that lock after
** lp_store_keep, so they never lose an object (see lp_store_keep). A
** catalog that records no version at all (new, or not the one the store
** belongs to) while the store has objects to remove is refused with
** LUPINE_CONSTRAINT, and nothing removed, unless opt->force.
*/
int lp_gc(lp_catalog *c, lp_store *s, const char *store_id, const lp_gc_options *opt,
          lp_gc_result *out, char *err, size_t errsz);

/*
** Remove the extracted copies in cache (see files.c) that no file or folder
** version needs, in any store, under the same write lock: a copy is made
** only for a version recorded (if not yet committed, the lock waits for
** it), so none that a reader needs is removed. out->objects counts the
** copies, out->bytes their files' sizes.
*/
int lp_gc_copies(lp_catalog *c, const char *cache, int dry_run, lp_gc_result *out, char *err,
                 size_t errsz);

/* ---- visual.c: the visualizations of versions (lua/lupine/viz.lua) ---- */

/* A visualization's size limit, in bytes (viz.lua cuts longer ones). */
#define LP_VIZ_MAX (1024 * 1024)

/*
** Store the visualizations listed in extra (a stack index, or 0):
** extra.visualizations = { { type, bytes }, ... }, type one of "html",
** "svg", "csv", "markdown", "text". Each is put in the store and recorded
** for version_id, in order. The caller holds the transaction.
*/
int lp_record_visualizations(lua_State *L, lp_runtime *rt, int extra, const char *version_id);

/* Its core functions, which luaopen_lupine_core adds to lupine.core:
** read_object(hash, size) -> bytes | nil, message; number_text(x) -> the
** shortest text that reads back as x; csv(rows, columns, n, limit, cut)
** -> the CSV of rows, rows kept; describe(numbers) -> pandas' describe()
** of them; extremes(ys, buckets) -> the indices a decimated line chart
** keeps; record_columns(rows, n) -> the column names of an array of
** records; is_sequence(t) -> whether t is a sequence, its number of keys;
** markdown(text) -> its HTML (md4c; raw HTML and unsafe URLs refused);
** temp_file(name, suffix) -> the path of a new file of its own. */
extern const luaL_Reg lp_visual_core[];

/* ---- exec.c: one step run in a fresh process (`lupine exec`) ---- */

/* Its core functions, which luaopen_lupine_core adds to lupine.core:
** exec_begin(home, stores, store id, cwd): cut this process off the
** catalog, go to cwd, open the spec's stores, store id's taking new
** objects; exec_step(run spec, results, report, timeout, reads) -> result,
** records, logs, ended: run the step in a child process;
** write_atomic(path, bytes): write a file whole or not at all;
** exec_replay(calls): in a worker, make a manifest's catalog calls. */
extern const luaL_Reg lp_exec_core[];

#endif
