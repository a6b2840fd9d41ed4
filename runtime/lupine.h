/* SPDX-License-Identifier: MIT */
/*
** lupine.h: the public interface of the Lupine runtime.
**
** Lupine runs pipelines written in Lua: steps with named ("annotated")
** outputs, executed in dependency order, every output serialized,
** content-addressed, versioned and recorded in a catalog.
**
** A host program opens a runtime (lupine_open) on a catalog folder, runs
** Lua scripts in it, registers its own C functions for steps to call, and
** reads the catalog back: artifact versions (lupine_version_*) and pipeline
** runs (lupine_run_*).
**
** Conventions, for every function below:
**
**   - Functions that can fail return an int result code: LUPINE_OK (0) on
**     success, one of the LUPINE_* codes otherwise. After a failure,
**     lupine_errmsg(rt) describes it and names the culprit (the artifact,
**     the step, the argument). The codes' values never change.
**   - A NULL handle or a NULL required argument gives LUPINE_MISUSE (with a
**     message on the handle when there is one); it never crashes.
**   - Every object the library returns (lupine, lupine_version, lupine_run,
**     byte buffers) has one function that frees it, and that function
**     accepts NULL.
**   - Strings the library returns are owned by the object they come from
**     and stay valid until that object is freed (or, for lupine_errmsg,
**     until the next call on the handle).
**   - The library never prints to stdout and never calls exit. Progress
**     and what steps print go to a log callback (lupine_set_log).
**   - There is no global mutable state: separate handles are independent
**     and may be used from separate threads at the same time. One handle
**     (and its lua_State) must be used by one thread at a time. (The one
**     process-wide thing: the first lupine_open installs fork handlers,
**     pthread_atfork, that hold sqlite's global mutexes across each fork,
**     so that a step worker forked while another thread is inside sqlite
**     does not inherit a mutex locked.)
**   - Steps run in worker processes forked from the host (through a
**     spawner, a copy of the host forked when a run first needs a worker,
**     which ends with the run). A C function the host registered in the
**     handle's lua_State before a run is therefore available to the steps
**     of that run. The workers are the spawner's children; the spawner is
**     the host's only child that a run makes.
**   - Signals: the spawner and the workers do not depend on the host's
**     signal settings. A host may ignore SIGCHLD (or set SA_NOCLDWAIT) and
**     block any signal: the spawner puts SIGCHLD back to its default for
**     itself, so it still learns how each worker ended, and takes the
**     host's handlers away (each signal the host handles is back to its
**     default there, as after exec; ignored ones stay ignored). A worker
**     starts with no signal blocked, and with SIGINT, SIGTERM, SIGPIPE and
**     the crash signals at their defaults, so a step and the programs it
**     runs see what they would under a shell.
*/
#ifndef LUPINE_H
#define LUPINE_H

#include <stddef.h>
#include <stdint.h>
#include "lua.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LUPINE_VERSION "0.1.0"

/* Marks the functions the shared library exports (it exports no others). */
#if defined(__GNUC__)
#define LUPINE_API __attribute__((visibility("default")))
#else
#define LUPINE_API
#endif

/* Result codes. The values are stable: hosts may store them. */
#define LUPINE_OK         0   /* success */
#define LUPINE_ERROR      1   /* generic error (see lupine_errmsg) */
#define LUPINE_MISUSE     2   /* bad argument from the caller */
#define LUPINE_NOMEM      3   /* out of memory */
#define LUPINE_IO         4   /* a file or directory could not be read or written */
#define LUPINE_CORRUPT    5   /* stored data is malformed or fails its hash check */
#define LUPINE_NOTFOUND   6   /* no such artifact, run or object */
#define LUPINE_CATALOG    7   /* the catalog database failed */
#define LUPINE_RUNFAILED  8   /* a script ran, but a pipeline run in it failed */
#define LUPINE_SCRIPT     9   /* a Lua script raised an error */
#define LUPINE_CONSTRAINT 10  /* the request conflicts with what is stored */

/* Log levels passed to a lupine_log_fn. */
#define LUPINE_LOG_ERROR 0
#define LUPINE_LOG_WARN  1
#define LUPINE_LOG_INFO  2   /* a step settled ("step 'x' completed in 1.2 ms: ..."),
                                run summaries ("run 'r' completed in 9.1 ms", then
                                its table: one message, a line per step) */
#define LUPINE_LOG_DEBUG 3   /* a step started */
#define LUPINE_LOG_OUTPUT 4  /* a line a step printed, as "[step] line" */
#define LUPINE_LOG_PROGRESS 5  /* "<settled> <total>" steps of the run, after each */

/*
** Receives the runtime's messages (one line each, but a run's table of
** steps, which is one message of a line per step; no trailing newline).
** Called on the thread that runs the script; must not call back into the
** runtime.
*/
typedef void (*lupine_log_fn)(void *ud, int level, const char *message);

/* An open runtime: a Lua state wired to one catalog. Opaque. */
typedef struct lupine lupine;

/* ---- opening and closing ---- */

/*
** Open a runtime on the catalog folder home, creating it on first use.
** home NULL means: $LUPINE_HOME if set; else the nearest ".lupine" folder
** found walking up from the current directory; else "./.lupine".
** The folder is chosen here: a relative home (or $LUPINE_HOME) is taken
** from the current directory at this call, and a later chdir does not
** move the catalog (lupine_home gives the absolute path).
** The catalog itself is opened on first use, so a bad folder is reported
** by the first call that needs it.
** On success *out is a new handle. On failure *out is NULL if memory ran
** out (LUPINE_NOMEM), else a handle whose lupine_errmsg says what failed
** (every other call on it gives LUPINE_MISUSE): close it with
** lupine_close (which accepts NULL). LUPINE_MISUSE if out is NULL.
*/
LUPINE_API int lupine_open(lupine **out, const char *home);

/*
** lupine_open with the allocator of the handle's lua_State: Lua's memory
** (every Lua value, the loaded Lua code) comes from alloc(ud, ...), as
** lua_newstate takes it; the library's other memory (sqlite, zstd, buffers)
** still comes from malloc. alloc NULL is lupine_open. When alloc fails, the
** call that needed the memory returns LUPINE_NOMEM (or LUPINE_SCRIPT, if a
** script caught the error and raised another); the handle stays usable and
** can be closed.
*/
LUPINE_API int lupine_open_ex(lupine **out, const char *home, lua_Alloc alloc, void *ud);

/* Close a runtime and its Lua state, freeing everything the handle owns.
** NULL is a harmless no-op. Returns LUPINE_OK. */
LUPINE_API int lupine_close(lupine *rt);

/*
** The message of the most recent failure on this handle, naming the
** culprit ("step 'train' (p.lua:12): ...", "artifact 'x' not found; did you
** mean 'y'?"), or "" if none. UTF-8, whole however long (a script's error
** comes with its traceback); cut (between two characters, ending "...")
** only if memory for it ran out. Owned by the handle, valid until its next
** call. NULL rt gives a fixed message.
*/
LUPINE_API const char *lupine_errmsg(const lupine *rt);

/* A short English description of a result code ("not found"); a static
** string, never NULL ("unknown result code" for a value not listed above). */
LUPINE_API const char *lupine_errstr(int rc);

/*
** The runtime's Lua state, with the standard libraries and `lupine`
** loaded (also as the global `lupine`). Hosts register their own C
** functions in it for steps to call. Owned by the handle. NULL for a NULL
** handle or one that did not open.
*/
LUPINE_API lua_State *lupine_state(lupine *rt);

/*
** Stop what is running on rt: a pipeline run in progress is stopped (its
** workers are ended and it is marked "stopped"; the script goes on after
** it, and lupine_exec_* give LUPINE_RUNFAILED or, if the run raises,
** LUPINE_SCRIPT); else the Lua code running through a call of this API
** raises "interrupted". As sqlite3_interrupt, it applies only to what runs
** at the time: with nothing running it does nothing, and no later call
** sees it. Safe to call from a signal handler (it sets a flag and a Lua
** hook); the CLI calls it on SIGINT and SIGTERM.
*/
LUPINE_API void lupine_interrupt(lupine *rt);

/* Send the runtime's progress and summaries to fn (NULL: discard them,
** except what steps print, which then goes to stderr). */
LUPINE_API void lupine_set_log(lupine *rt, lupine_log_fn fn, void *ud);

/*
** The catalog folder in use, an absolute path (opening the catalog), or
** NULL with an error message. Owned by the handle and valid until it is
** closed, even after a script switches folders with lupine.set_home (a
** later call then gives the new folder, in a string of its own).
*/
LUPINE_API const char *lupine_home(lupine *rt);

/* ---- running Lua ---- */

/*
** Run the Lua script at path, with the global `arg` set as the `lua`
** command does (arg[0] = path, arg[1..argc] = argv) and argv passed as the
** chunk's `...`.
** Returns LUPINE_OK; LUPINE_SCRIPT if the script raised an error (or did
** not compile); LUPINE_RUNFAILED if it finished but a pipeline run it
** started failed without raising (raise_on_failure = false) or was
** stopped: the message is then that run's, as a raising run gives it
** ("pipeline run 'p-20250101-120000' failed:\nstep 'train' (p.lua:3) failed: ...";
** "N pipeline runs failed; the last: ..." for several); LUPINE_IO if the
** file cannot be read; LUPINE_NOMEM if Lua ran out of memory.
*/
LUPINE_API int lupine_exec_file(lupine *rt, const char *path, int argc, char **argv);

/* Run a chunk of Lua code; chunkname names it in errors (NULL: "=string").
** Results as lupine_exec_file. */
LUPINE_API int lupine_exec_string(lupine *rt, const char *code, const char *chunkname);

/*
** The Lua module: `require "lupine"` calls it, and a host that owns a
** lua_State may call it (luaL_requiref(L, "lupine", luaopen_lupine, 1)).
** Pushes the module table. Each lua_State gets its own runtime: the
** catalog folder is resolved as lupine_open's with home NULL, and
** lupine.set_home(dir) changes it.
*/
LUPINE_API int luaopen_lupine(lua_State *L);

/*
** The C half of the module, `require "lupine.core"`: luaopen_lupine puts
** it in package.preload, and Lua's all-in-one C loader finds it in
** lupine.so when the Lua half comes from plain files instead (lua/ on
** LUA_PATH, as while editing them). Pushes its table. What is in it is
** the Lua half's to use, and changes with it: hosts call luaopen_lupine.
*/
LUPINE_API int luaopen_lupine_core(lua_State *L);

/*
** Register a materializer written in C: how values of a user-defined type
** (typically a userdata) are stored and loaded, as the Lua function
** lupine.register_materializer { type, match, save, load } does.
** match(v) returns true when v is of this type; save(v) returns a plain
** serializable value that stands for v; load(plain) rebuilds the value
** from it. Each is called with one argument and must return one value;
** an error it raises fails the step (or the load) with its message.
** type is a name (non-empty UTF-8, at most 255 bytes): it is stored with
** each value, and data_type of the versions is set to it. Registering a
** type again replaces it.
** LUPINE_MISUSE for a NULL or invalid argument (the message names it).
*/
LUPINE_API int lupine_register_materializer(lupine *rt, const char *type,
                                            lua_CFunction match, lua_CFunction save,
                                            lua_CFunction load);

/* ---- artifact versions ---- */

/* One artifact version, as the catalog records it: a snapshot, taken when
** it was found. Opaque; read it with the accessors below. */
typedef struct lupine_version lupine_version;

/*
** Look up an artifact version: name_or_id is an artifact name (then
** version selects one of its versions, NULL or "latest" the most recently
** created), a full version id, or a unique id prefix (then version must
** be NULL), exactly as client:get_artifact_version in Lua.
** On success *out is a new lupine_version: free it with
** lupine_version_free. On failure *out is NULL and:
**   LUPINE_NOTFOUND  no such artifact or version; the message suggests
**                    near names ("artifact 'modle' not found; did you mean
**                    'model'?") or lists the versions there are
**   LUPINE_MISUSE    a NULL argument, an id prefix that matches several
**                    versions (the message lists them), or an id with a
**                    version ("... (a version id takes no version: '<id>'
**                    is version 3 of artifact 'model')")
**   LUPINE_IO, LUPINE_CATALOG  the catalog cannot be opened or read
**   LUPINE_NOMEM     out of memory
*/
LUPINE_API int lupine_version_find(lupine *rt, const char *name_or_id, const char *version,
                                   lupine_version **out);

/* A copy of v, owned by the caller (for keeping one a listing passes).
** LUPINE_MISUSE for NULL arguments, LUPINE_NOMEM. */
LUPINE_API int lupine_version_dup(const lupine_version *v, lupine_version **out);

/* Free a version. NULL is a harmless no-op. */
LUPINE_API void lupine_version_free(lupine_version *v);

/*
** The fields of a version, owned by v. NULL v gives NULL (and -1 for the
** sizes).
**   id            a UUID, 36 characters
**   name          the artifact name
**   version       "1", "2", ... or a custom version, always text
**   type          "data", "model", ... (ArtifactType)
**   data_type     the Lua type of the value ("table", "number", ...),
**                 the materializer's type name, or "file" or "dir" for a
**                 file or folder a step returned (lupine.file, lupine.dir)
**   content_hash  "sha256:<64 hex digits>" of the stored bytes
**   created       UTC, "YYYY-MM-DDTHH:MM:SS.ffffffZ"
**   size          bytes stored (what lupine_version_read gives: the CBOR,
**                 or a file's or folder's archive)
**   stored_size   bytes on disk (compressed)
*/
LUPINE_API const char *lupine_version_id(const lupine_version *v);
LUPINE_API const char *lupine_version_name(const lupine_version *v);
LUPINE_API const char *lupine_version_version(const lupine_version *v);
LUPINE_API const char *lupine_version_type(const lupine_version *v);
LUPINE_API const char *lupine_version_data_type(const lupine_version *v);
LUPINE_API const char *lupine_version_content_hash(const lupine_version *v);
LUPINE_API const char *lupine_version_created(const lupine_version *v);
LUPINE_API int64_t lupine_version_size(const lupine_version *v);
LUPINE_API int64_t lupine_version_stored_size(const lupine_version *v);

/*
** Load the value of v and push it onto L: one value, or nothing on
** failure. L may be the handle's own state (lupine_state) or a thread of
** it: values of user-defined types are then rebuilt by the materializers
** registered there. Into any other lua_State the value is pushed as it
** was stored, values of user-defined types as tables { type = <name>,
** value = <plain value> } (their own materializers, if lupine is loaded
** there, apply instead). A file or folder (data_type "file" or "dir") is
** pushed as Lua gets it: a string, the path lupine_version_path gives.
** Loading is not recorded as an input of a step (lupine.load_artifact in
** Lua is).
**   LUPINE_NOTFOUND  the stored object is missing
**   LUPINE_CORRUPT   it fails its hash check or does not decode
**   LUPINE_ERROR     a materializer's load raised an error (its message)
**   LUPINE_MISUSE, LUPINE_IO, LUPINE_NOMEM
*/
LUPINE_API int lupine_version_load(lupine *rt, const lupine_version *v, lua_State *L);

/*
** The stored bytes of v, the bytes content_hash is the SHA-256 of,
** checked before they are returned: for a value, its deterministic CBOR
** (RFC 8949; values of user-defined types as tag 27 around [type name,
** plain value]); for a file or folder, the POSIX tar archive (ustar) of
** it, its one top-level entry the file's or folder's own name (for the
** file itself, use lupine_version_path: this reads the whole archive
** into memory).
** On success *data (free it with lupine_free) holds *len bytes. On failure
** *data is NULL and *len 0: LUPINE_NOTFOUND (the object is missing),
** LUPINE_CORRUPT, LUPINE_IO, LUPINE_NOMEM, LUPINE_MISUSE.
*/
LUPINE_API int lupine_version_read(lupine *rt, const lupine_version *v, unsigned char **data,
                                   size_t *len);

/*
** The path of a read-only local copy of the file or folder v (data_type
** "file" or "dir"): what loading it gives in Lua. The copy is extracted
** once into <home>/files/<hash>/, its object checked against content_hash
** as it is read, and renamed into place whole; later calls give the same
** path. Its files are read-only (0444, or 0555 if executable), its
** folders too: copy what must change.
** On success *path is a new string (free it with lupine_free). On failure
** *path is NULL: LUPINE_MISUSE for a NULL argument or a version that is a
** value ("lupine_version_path: artifact 'x' version 1 (<id>) is a table,
** not a file or folder"); LUPINE_NOTFOUND, LUPINE_CORRUPT, LUPINE_IO,
** LUPINE_NOMEM as lupine_version_read.
*/
LUPINE_API int lupine_version_path(lupine *rt, const lupine_version *v, char **path);

/* Free memory the library gave the caller (lupine_version_read's bytes,
** lupine_version_path's path). NULL is a harmless no-op. */
LUPINE_API void lupine_free(void *p);

/* Called once per version by lupine_list_versions; v is valid during the
** call only (lupine_version_dup keeps it). Returning anything but 0 stops
** the listing. The callback may call the runtime (lupine_version_load...). */
typedef int (*lupine_version_fn)(void *ud, const lupine_version *v);

/*
** Call fn for each version of the artifact name (NULL: of every
** artifact), newest first. Versions created while the listing runs are
** not included; one deleted may still be passed. Returns LUPINE_OK after
** the last one, or the first non-zero value fn returned (the listing then
** stops). LUPINE_NOTFOUND if there is no artifact called name (with near
** names suggested); LUPINE_MISUSE for a NULL rt or fn; LUPINE_IO,
** LUPINE_CATALOG, LUPINE_NOMEM.
*/
LUPINE_API int lupine_list_versions(lupine *rt, const char *name, lupine_version_fn fn,
                                    void *ud);

/* ---- pipeline runs ---- */

/* One pipeline run, as the catalog records it: a snapshot. Opaque. */
typedef struct lupine_run lupine_run;

/*
** Look up a pipeline run by name, id or unique id prefix, as
** client:get_pipeline_run in Lua. On success *out is a new lupine_run:
** free it with lupine_run_free. On failure *out is NULL and the codes are
** lupine_version_find's (LUPINE_NOTFOUND suggests near run names).
*/
LUPINE_API int lupine_run_find(lupine *rt, const char *name_or_id, lupine_run **out);

/* A copy of r, owned by the caller. LUPINE_MISUSE, LUPINE_NOMEM. */
LUPINE_API int lupine_run_dup(const lupine_run *r, lupine_run **out);

/* Free a run. NULL is a harmless no-op. */
LUPINE_API void lupine_run_free(lupine_run *r);

/*
** The fields of a run, owned by r; NULL for a NULL r.
**   id          a UUID
**   name        "<pipeline>-<YYYYMMDD>-<HHMMSS>" or the name it was given
**   pipeline    the pipeline's name
**   status      "running", "completed", "failed" or "stopped"
**   start_time  UTC, as lupine_version_created
**   end_time    UTC; NULL while it runs
**   error       why it failed; NULL if it did not
*/
LUPINE_API const char *lupine_run_id(const lupine_run *r);
LUPINE_API const char *lupine_run_name(const lupine_run *r);
LUPINE_API const char *lupine_run_pipeline(const lupine_run *r);
LUPINE_API const char *lupine_run_status(const lupine_run *r);
LUPINE_API const char *lupine_run_start_time(const lupine_run *r);
LUPINE_API const char *lupine_run_end_time(const lupine_run *r);
LUPINE_API const char *lupine_run_error(const lupine_run *r);

/* Called once per run by lupine_list_runs; as lupine_version_fn. */
typedef int (*lupine_run_fn)(void *ud, const lupine_run *r);

/*
** Call fn for each run of the pipeline named pipeline (NULL: of every
** pipeline), newest first. Results as lupine_list_versions
** (LUPINE_NOTFOUND if there is no such pipeline).
*/
LUPINE_API int lupine_list_runs(lupine *rt, const char *pipeline, lupine_run_fn fn, void *ud);

#ifdef __cplusplus
}
#endif
#endif
