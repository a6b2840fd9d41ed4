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
** reads the catalog back: the runs a script made (lupine_exec_run), their
** step runs (lupine_step_run_*), artifact versions (lupine_av_*), their
** tags, metadata and lineage, and filtered listings (lupine_filter_*).
**
** Conventions, for every function below:
**
**   - Names: lupine_<verb> for what the handle does (lupine_open,
**     lupine_exec_file, lupine_set_log); lupine_<object>_<verb or field>
**     for the objects it gives: lupine_av_* for an artifact version (type
**     lupine_artifact_version), lupine_run_* for a pipeline run,
**     lupine_step_run_* for a step run, lupine_value_* for a metadata
**     value, lupine_filter_* for a listing's filter.
**   - Functions that can fail return an int result code: LUPINE_OK (0) on
**     success, one of the LUPINE_* codes otherwise. After a failure,
**     lupine_errcode(rt) gives the code again and lupine_errmsg(rt)
**     describes it, naming the culprit (the artifact, the step, the
**     argument). Codes are decided by what happened, never read back from
**     a message's text. The codes' values never change.
**   - A NULL handle or a NULL required argument gives LUPINE_MISUSE (with a
**     message on the handle when there is one); it never crashes.
**   - Every object the library returns (lupine, lupine_artifact_version,
**     lupine_run, lupine_step_run, lupine_filter, byte buffers, paths) has
**     one function that frees it, and that function accepts NULL. Objects
**     a callback receives are the library's, valid during the call only
**     (the _dup functions keep one).
**   - Strings the library returns are owned by the object they come from
**     and stay valid until that object is freed: a version's, run's or
**     step run's fields are a snapshot taken when it was found, which
**     later changes to the catalog do not touch. lupine_errmsg's string is
**     valid until the next call on the handle; lupine_home's until the
**     handle is closed.
**   - Reading: lupine_av_find and lupine_run_find look up through the Lua
**     client (the rules and messages of client:get_artifact_version);
**     every other read takes the catalog's records in C, without the Lua
**     state. Called from a step (by a host function the step calls, in
**     the step's worker), the finds see what the run has recorded so far,
**     as the step's Lua does; the other reads, what the catalog has
**     committed (a run commits its steps' records in batches).
**   - The library never prints to stdout and never calls exit. Progress
**     and what steps print go to a log callback (lupine_set_log).
**   - There is no global mutable state: separate handles are independent
**     and may be used from separate threads at the same time. One handle
**     (and its lua_State) must be used by one thread at a time.
**   - Steps run in worker processes forked from the host (through a
**     spawner, a copy of the host forked when a run first needs a worker,
**     which ends with the run). A C function the host registered in the
**     handle's lua_State before a run is therefore available to the steps
**     of that run. The workers are the spawner's children; the spawner is
**     the host's only child that a run makes.
**   - Threads and fork: a forked process has only the thread that forked
**     it, and every mutex as it was at that moment. A mutex of the host's
**     that another thread holds when a run starts (when the spawner is
**     forked) stays locked, forever, in the spawner and in every worker of
**     that run: a step whose host function takes it hangs (and is stopped
**     by its timeout, if it has one). Have no other thread hold a lock a
**     step needs while lupine_exec_* runs, or install pthread_atfork
**     handlers that take and release it. The library does this for
**     sqlite's own global mutexes: the first lupine_open (or
**     luaopen_lupine) installs, once per process, fork handlers that hold
**     them across each fork, so a worker forked while another thread is
**     inside sqlite (the host may use sqlite itself) does not inherit one
**     locked.
**   - Signals: the spawner and the workers do not depend on the host's
**     signal settings. A host may ignore SIGCHLD (or set SA_NOCLDWAIT) and
**     block any signal: the spawner puts SIGCHLD back to its default for
**     itself, so it still learns how each worker ended, and takes the
**     host's handlers away (each signal the host handles is back to its
**     default there, as after exec; ignored ones stay ignored). A worker
**     starts with no signal blocked, and with SIGINT, SIGTERM, SIGPIPE and
**     the crash signals at their defaults, so a step and the programs it
**     runs see what they would under a shell.
**   - C++: the header declares everything with C linkage, Lua's functions
**     included (lua.h is included inside extern "C", as lua.hpp does), so a
**     C++ host links with a Lua built as C, upstream's or a
**     distribution's. Include lupine.h before lua.h, or use lua.hpp.
*/
#ifndef LUPINE_H
#define LUPINE_H

/* What lua.h includes, included first with their own linkage. */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "lua.h"

#if !defined(LUA_VERSION_NUM) || LUA_VERSION_NUM != 504
#error "lupine.h needs the lua.h of Lua 5.4 (LUA_VERSION_NUM 504): check the include path"
#endif

/*
** The version of this header: LUPINE_VERSION as text, and as a number,
** major * 1000000 + minor * 1000 + patch, for #if. lupine_libversion and
** lupine_libversion_number give the library's: a host that finds them
** different from these was built against another header than the library
** it runs with (as sqlite3_libversion_number against SQLITE_VERSION_NUMBER).
*/
#define LUPINE_VERSION "0.1.0"
#define LUPINE_VERSION_NUMBER 1000

/* Marks the functions the shared library exports (it exports no others). */
#if defined(__GNUC__)
#define LUPINE_API __attribute__((visibility("default")))
#else
#define LUPINE_API
#endif

LUPINE_API const char *lupine_libversion(void);
LUPINE_API int lupine_libversion_number(void);

/* Result codes. The values are stable: hosts may store them. */
#define LUPINE_OK         0   /* success */
#define LUPINE_ERROR      1   /* generic error (see lupine_errmsg) */
#define LUPINE_MISUSE     2   /* bad argument from the caller */
#define LUPINE_NOMEM      3   /* out of memory */
#define LUPINE_IO         4   /* a file or directory could not be read or written */
#define LUPINE_CORRUPT    5   /* stored data is malformed or fails its hash check */
#define LUPINE_NOTFOUND   6   /* no such artifact, run or object */
#define LUPINE_CATALOG    7   /* the catalog database failed */
#define LUPINE_FAILED     8   /* a pipeline run failed: a step of it failed */
#define LUPINE_SCRIPT     9   /* a Lua script raised an error of its own, or did not compile */
#define LUPINE_CONSTRAINT 10  /* the request conflicts with what is stored */
#define LUPINE_INTERRUPT  11  /* lupine_interrupt stopped it */
#define LUPINE_ABORT      12  /* a callback returned non-zero: the listing stopped */

/* Log levels passed to a lupine_log_fn. */
#define LUPINE_LOG_ERROR 0
#define LUPINE_LOG_WARN  1
#define LUPINE_LOG_INFO  2   /* a step settled ("step 'x' completed in 1.2 ms: ..."),
                                run summaries ("run 'r' completed in 6.0 s", then
                                its table: one message, a line per step) */
#define LUPINE_LOG_DEBUG 3   /* a step started */
#define LUPINE_LOG_OUTPUT 4  /* a line a step printed, as "[step] line" */
#define LUPINE_LOG_PROGRESS 5  /* "<settled> <total>" steps of the run, after each
                                  (kept for older hosts: events say more, as data) */

/*
** Receives the runtime's messages (one line each, but a run's table of
** steps, which is one message of a line per step; no trailing newline).
** Called on the thread that runs the script; must not call back into the
** runtime.
*/
typedef void (*lupine_log_fn)(void *ud, int level, const char *message);

/* The kinds of lupine_event. */
#define LUPINE_EVENT_RUN_START  1  /* a run began: run_id, run, pipeline, total */
#define LUPINE_EVENT_STEP_START 2  /* a step's attempt began in a worker (a cache hit
                                      has none): step, attempt */
#define LUPINE_EVENT_STEP_END   3  /* a step settled: step, status, ms, detail */
#define LUPINE_EVENT_STEP_RETRY 4  /* an attempt failed and the step will be tried
                                      again: step, attempt (the one that failed),
                                      ms (the wait before the next), detail (why) */
#define LUPINE_EVENT_OUTPUT     5  /* a line a step printed: step, detail (the line,
                                      without its newline) */
#define LUPINE_EVENT_TICK       6  /* time passed: while a run has steps running,
                                      one at least every 100 ms, for displays of
                                      elapsed time */
#define LUPINE_EVENT_RUN_END    7  /* a run ended: status, ms */

/*
** What a run is doing, as data: a display reads the fields, never a message
** text. Strings are owned by the library and valid during the call only.
** Fields that do not apply to an event's type are NULL or 0. New fields
** are only ever added at the end (the library allocates the struct).
*/
typedef struct lupine_event {
  int type;              /* LUPINE_EVENT_* */
  const char *run_id;    /* the run's id (a UUID) */
  const char *run;       /* the run's name */
  const char *pipeline;  /* its pipeline's name */
  const char *step;      /* the step's invocation name ("train", "train_2") */
  const char *status;    /* STEP_END: "completed", "cached", "failed", "skipped" or
                            "stopped"; RUN_END: "completed", "failed" or "stopped" */
  const char *detail;    /* STEP_END: the versions a step made ("model v3, data v2"),
                            or why it failed (its error, as recorded); see above */
  double ms;             /* STEP_END: how long the step took, from its first attempt
                            to its end (a cache hit: finding it), stopped ones too;
                            RUN_END: the run's duration */
  double at;             /* when: milliseconds since the run began (monotonic) */
  int total;             /* the steps the run planned */
  int attempt;           /* STEP_START, STEP_RETRY: 1 for the first attempt */
} lupine_event;

/*
** Receives a run's events (lupine_set_events). Called on the thread that
** runs the script, in order, from inside the run: it must not call the
** runtime's functions (lupine_*), and Lua code it runs in the runtime's
** state must not either (the CLI draws its progress in Lua that way).
*/
typedef void (*lupine_event_fn)(void *ud, const lupine_event *event);

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
** lupine_close (which accepts NULL). LUPINE_MISUSE if out is NULL, or if
** home (or, with home NULL, $LUPINE_HOME) is "", which names no folder.
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
** mean 'y'?"), or "" if the last call succeeded. UTF-8, whole however long
** (a script's error comes with its traceback); cut (between two
** characters, ending "...") only if memory for it ran out. Owned by the
** handle, valid until its next call. NULL rt gives a fixed message.
*/
LUPINE_API const char *lupine_errmsg(const lupine *rt);

/* The result code of the most recent call on this handle that reports one
** (LUPINE_OK if it succeeded), as lupine_errmsg describes it: also for the
** calls that return a pointer (lupine_home). LUPINE_MISUSE for NULL. */
LUPINE_API int lupine_errcode(const lupine *rt);

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
** it, and lupine_exec_* give LUPINE_INTERRUPT, whether or not the run
** raises); else the Lua code running through a call of this API raises
** "interrupted" (LUPINE_INTERRUPT). As sqlite3_interrupt, it applies only
** to what runs at the time: with nothing running it does nothing, and no
** later call sees it. Safe to call from a signal handler (it sets a flag
** and a Lua hook); the CLI calls it on SIGINT and SIGTERM. Called from
** another thread, a run in progress sees it at its next event (a worker's
** output or exit, a step's timeout), which may be when the running step
** ends; a signal handler that calls it stops the run at once (the signal
** wakes the runtime's wait).
*/
LUPINE_API void lupine_interrupt(lupine *rt);

/* Send the runtime's progress and summaries to fn (NULL: discard them,
** except what steps print, which then goes to stderr unless an event
** callback takes it: lupine_set_events). */
LUPINE_API void lupine_set_log(lupine *rt, lupine_log_fn fn, void *ud);

/*
** Send the events of the runs on rt to fn (NULL: stop). Independent of
** lupine_set_log: both may be set; what steps print goes to each (and to
** stderr only when neither is set).
*/
LUPINE_API void lupine_set_events(lupine *rt, lupine_event_fn fn, void *ud);

/*
** The catalog folder in use, an absolute path (opening the catalog), or
** NULL with an error message. Owned by the handle and valid until it is
** closed, even after a script switches folders with lupine.set_home (a
** later call then gives the new folder, in a string of its own).
*/
LUPINE_API const char *lupine_home(lupine *rt);

/*
** The catalog in use, named for people, as lupine's programs show it: the
** catalog folder (as lupine_home gives it) when the catalog is the
** folder's own file, else its kind and where it is ("PostgreSQL
** postgresql://alice@db:5432/lupine schema public", the schema once it
** opened), never with a password. Owned by the handle, valid until its
** next call. NULL with an error message if no catalog folder is found.
*/
LUPINE_API const char *lupine_catalog_name(lupine *rt);

/*
** Use the catalog at target from now on: a PostgreSQL connection string
** or URI ("postgresql://user@host/db", "host=/socket/dir dbname=db"), or
** a sqlite catalog file; NULL: $LUPINE_CATALOG if set, else the catalog
** folder's catalog.db (the default). The catalog folder still holds the
** default artifact store. The catalog open until now is closed; the new
** one opens on first use, so a target that cannot be reached (a server
** that is down, a wrong password) is reported by the first call that
** needs it. LUPINE_MISUSE for "" (it names no catalog) and for a target no
** backend takes ("mysql://..."), refused at once.
*/
LUPINE_API int lupine_set_catalog(lupine *rt, const char *target);

/* ---- running Lua ---- */

/* Pipeline runs, as the catalog records them (see "pipeline runs"). */
typedef struct lupine_run lupine_run;

/*
** Run the Lua script at path, with the global `arg` set as the `lua`
** command does (arg[0] = path, arg[1..argc] = argv) and argv passed as the
** chunk's `...`. Returns:
**   LUPINE_OK         the script finished, and every run it started
**                     completed
**   LUPINE_FAILED     a pipeline run it started failed (a step failed),
**                     whether the run raised (the script ended there) or
**                     not (raise_on_failure = false; the script went on):
**                     the message is that run's ("pipeline run
**                     'p-20250101-120000' failed:\nstep 'train' (p.lua:3)
**                     failed: ..."; "N pipeline runs failed; the last: ..."
**                     for several that did not raise)
**   LUPINE_INTERRUPT  lupine_interrupt stopped the script or a run of it
**   LUPINE_SCRIPT     the script raised an error of its own (a bug in it,
**                     a bad argument to lupine, an error it raised; a run's
**                     error it caught and raised as another), or did not
**                     compile; the message has the traceback
**   LUPINE_IO         the file cannot be read
**   LUPINE_NOMEM      Lua ran out of memory
** Either way, lupine_exec_runs and lupine_exec_run give the runs it
** started.
*/
LUPINE_API int lupine_exec_file(lupine *rt, const char *path, int argc,
                                const char *const *argv);

/*
** Run the len bytes of Lua at code (text or a precompiled chunk), named
** chunkname in errors and tracebacks (NULL: "=string"), passing argv as
** the chunk's `...`, as a file gets them. With argv (argc > 0) the global
** `arg` is set too, as lupine_exec_file sets it (arg[0] = chunkname, less
** the "=" or "@" in front that tells Lua how to show it); without, `arg`
** is left as it is. Results as lupine_exec_file's (but
** LUPINE_IO). LUPINE_MISUSE for code NULL, argc < 0, or argc > 0 with
** argv NULL.
*/
LUPINE_API int lupine_exec_buffer(lupine *rt, const char *code, size_t len,
                                  const char *chunkname, int argc, const char *const *argv);

/* lupine_exec_buffer of the string code, without arguments. */
LUPINE_API int lupine_exec_string(lupine *rt, const char *code, const char *chunkname);

/*
** How many pipeline runs the last lupine_exec_* call started (counting
** those of calls nested in it, such as a host function a script calls
** that runs a script of its own), whatever it returned: 0 before any.
** Runs a host starts by calling Lua itself (lua_pcall on lupine_state)
** are not counted. -1 for a NULL handle.
*/
LUPINE_API int lupine_exec_runs(const lupine *rt);

/*
** The i-th of those runs (0: the first started), read from the catalog
** now: its status is "completed", "failed" or "stopped". On success *out
** is a new lupine_run (free it with lupine_run_free); else *out is NULL
** and: LUPINE_NOTFOUND for an i that is not below lupine_exec_runs;
** LUPINE_MISUSE, LUPINE_IO, LUPINE_CATALOG, LUPINE_NOMEM.
*/
LUPINE_API int lupine_exec_run(lupine *rt, int i, lupine_run **out);

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

/* ---- listings ---- */

/*
** What a listing selects: every version (or run), or those matching each
** condition added to the filter. A filter belongs to the handle it was
** made for (listings on another handle refuse it) and may be used for
** several listings. Its functions give LUPINE_MISUSE for a NULL or
** invalid argument and LUPINE_NOMEM, with the message on that handle.
*/
typedef struct lupine_filter lupine_filter;

/* A new filter that matches everything. On failure *out is NULL. */
LUPINE_API int lupine_filter_new(lupine *rt, lupine_filter **out);

/* Free a filter. NULL is a harmless no-op. */
LUPINE_API void lupine_filter_free(lupine_filter *f);

/*
** Only the versions of the artifact name (for lupine_av_list), or the runs
** of the pipeline name (lupine_run_list); a second call replaces the name.
** A listing by a name that names nothing gives LUPINE_NOTFOUND, with near
** names suggested ("artifact 'modle' not found; did you mean 'model'?").
*/
LUPINE_API int lupine_filter_name(lupine_filter *f, const char *name);

/* Only those that carry the tag (each tag added must be there; at most
** 16). */
LUPINE_API int lupine_filter_tag(lupine_filter *f, const char *tag);

/*
** Only those whose run metadata has the key, with a value that compares
** with value as op says (each condition added must hold; at most 16):
**   op "=", value a string: the value is that string, or a number equal
**     to it when value reads as one ("0.9" matches 0.9 and "0.9")
**   op "<", "<=", ">" or ">=": the value is a number, compared with the
**     number value reads as (LUPINE_MISUSE if it does not read as one)
**   op NULL and value NULL: the key is there, whatever its value
*/
LUPINE_API int lupine_filter_metadata(lupine_filter *f, const char *key, const char *op,
                                      const char *value);

/* Only the runs with this status ("running", "completed", "failed",
** "stopped"): for lupine_run_list. */
LUPINE_API int lupine_filter_status(lupine_filter *f, const char *status);

/* ---- artifact versions ---- */

/* One artifact version, as the catalog records it: a snapshot, taken when
** it was found. Opaque; read it with the accessors below. */
typedef struct lupine_artifact_version lupine_artifact_version;

/*
** Look up an artifact version: name_or_id is an artifact name (then
** version selects one of its versions, NULL or "latest" the most recently
** created), a full version id, or a unique id prefix (then version must
** be NULL), exactly as client:get_artifact_version in Lua. An id prefix
** has 4 to 36 hexadecimal digits and dashes, in either case: shorter
** keys are names only. A name is looked up before a prefix.
** On success *out is a new version: free it with lupine_av_free. On
** failure *out is NULL and:
**   LUPINE_NOTFOUND  no such artifact or version; the message suggests
**                    near names ("artifact 'modle' not found; did you mean
**                    'model'?") or lists the versions there are
**   LUPINE_MISUSE    a NULL argument, an id prefix that matches several
**                    versions (the message lists them), or an id with a
**                    version ("... (a version id takes no version: '<id>'
**                    is version 3 of artifact 'model')")
**   LUPINE_IO, LUPINE_CATALOG  the catalog cannot be opened or read
**   LUPINE_NOMEM     out of memory
** Called from a step (in its worker), it sees the versions its run has
** recorded so far, as lupine.load_artifact does.
*/
LUPINE_API int lupine_av_find(lupine *rt, const char *name_or_id, const char *version,
                              lupine_artifact_version **out);

/* A copy of v, owned by the caller (for keeping one a listing passes).
** LUPINE_MISUSE for NULL arguments, LUPINE_NOMEM. */
LUPINE_API int lupine_av_dup(const lupine_artifact_version *v, lupine_artifact_version **out);

/* Free a version. NULL is a harmless no-op. */
LUPINE_API void lupine_av_free(lupine_artifact_version *v);

/*
** The fields of a version, owned by v. NULL v gives NULL (and -1 for the
** sizes).
**   id            a UUID, 36 characters
**   name          the artifact name
**   version       "1", "2", ... or a custom version, always text
**   type          "data", "model", ... (ArtifactType)
**   data_type     what the value is ("records", "columns", "numbers",
**                 "number_map", "plot", "string", "number", "table", ...:
**                 lua/README.md, "Reading the catalog"), the
**                 materializer's type
**                 name, or "file" or "dir" for a file or folder a step
**                 returned (lupine.file, lupine.dir)
**   save_type     how it was made: "step_output" (a step's output),
**                 "manual" (save_artifact), "external" (an input stored
**                 from a pipeline's body), "registered" (a path registered
**                 outside any pipeline)
**   content_hash  "sha256:<64 hex digits>" of the stored bytes
**   created       UTC, "YYYY-MM-DDTHH:MM:SS.ffffffZ"
**   size          bytes stored (what lupine_av_read gives: the CBOR, or a
**                 file's or folder's archive)
**   stored_size   bytes on disk (compressed)
*/
LUPINE_API const char *lupine_av_id(const lupine_artifact_version *v);
LUPINE_API const char *lupine_av_name(const lupine_artifact_version *v);
LUPINE_API const char *lupine_av_version(const lupine_artifact_version *v);
LUPINE_API const char *lupine_av_type(const lupine_artifact_version *v);
LUPINE_API const char *lupine_av_data_type(const lupine_artifact_version *v);
LUPINE_API const char *lupine_av_save_type(const lupine_artifact_version *v);
LUPINE_API const char *lupine_av_content_hash(const lupine_artifact_version *v);
LUPINE_API const char *lupine_av_created(const lupine_artifact_version *v);
LUPINE_API int64_t lupine_av_size(const lupine_artifact_version *v);
LUPINE_API int64_t lupine_av_stored_size(const lupine_artifact_version *v);

/* The version's tags, in the order of their names: how many (0 for NULL
** v), and the i-th (0 first; NULL out of range), owned by v. */
LUPINE_API int lupine_av_tag_count(const lupine_artifact_version *v);
LUPINE_API const char *lupine_av_tag(const lupine_artifact_version *v, int i);

/*
** Load the value of v and push it onto L: one value, or nothing on
** failure. L may be the handle's own state (lupine_state) or a thread of
** it: values of user-defined types are then rebuilt by the materializers
** registered there. Into any other lua_State the value is pushed as it
** was stored, values of user-defined types as tables { type = <name>,
** value = <plain value> } (their own materializers, if lupine is loaded
** there, apply instead). A file or folder (data_type "file" or "dir") is
** pushed as Lua gets it: a string, the path lupine_av_path gives.
** Loading is not recorded as an input of a step (lupine.load_artifact in
** Lua is).
**   LUPINE_NOTFOUND  the stored object is missing
**   LUPINE_CORRUPT   it fails its hash check or does not decode
**   LUPINE_ERROR     a materializer's load raised an error (its message)
**   LUPINE_MISUSE, LUPINE_IO, LUPINE_NOMEM
*/
LUPINE_API int lupine_av_load(lupine *rt, const lupine_artifact_version *v, lua_State *L);

/*
** The stored bytes of v, the bytes content_hash is the SHA-256 of,
** checked before they are returned: for a value, its deterministic CBOR
** (RFC 8949; values of user-defined types as tag 27 around [type name,
** plain value]); for a file or folder, the POSIX tar archive (ustar) of
** it, its one top-level entry the file's or folder's own name (for the
** file itself, use lupine_av_path: this reads the whole archive into
** memory).
** On success *data (free it with lupine_free) holds *len bytes. On failure
** *data is NULL and *len 0: LUPINE_NOTFOUND (the object is missing),
** LUPINE_CORRUPT, LUPINE_IO, LUPINE_NOMEM, LUPINE_MISUSE.
*/
LUPINE_API int lupine_av_read(lupine *rt, const lupine_artifact_version *v,
                              unsigned char **data, size_t *len);

/*
** The path of a read-only local copy of the file or folder v (data_type
** "file" or "dir"): what loading it gives in Lua. The copy is extracted
** once into <home>/files/<hash>/, its object checked against content_hash
** as it is read, and renamed into place whole; later calls give the same
** path. Its files are read-only (0444, or 0555 if executable), its
** folders too: copy what must change.
** On success *path is a new string (free it with lupine_free). On failure
** *path is NULL: LUPINE_MISUSE for a NULL argument or a version that is a
** value ("lupine_av_path: artifact 'x' version 1 (<id>) is a table, not a
** file or folder"); LUPINE_NOTFOUND, LUPINE_CORRUPT, LUPINE_IO,
** LUPINE_NOMEM as lupine_av_read.
*/
LUPINE_API int lupine_av_path(lupine *rt, const lupine_artifact_version *v, char **path);

/* Free memory the library gave the caller (lupine_av_read's bytes,
** lupine_av_path's path). NULL is a harmless no-op. */
LUPINE_API void lupine_free(void *p);

/* Called once per version by a listing; v is valid during the call only
** (lupine_av_dup keeps it). Returning anything but 0 stops the listing,
** which then gives LUPINE_ABORT. The callback may call the runtime
** (lupine_av_load...). */
typedef int (*lupine_av_fn)(void *ud, const lupine_artifact_version *v);

/*
** Call fn for each version that f selects (f NULL: every version),
** newest first, reading them a page at a time: versions created while
** the listing runs are not included; one deleted may still be passed.
** Returns LUPINE_OK after the last one; LUPINE_ABORT if fn stopped it
** (the message says what fn returned); LUPINE_NOTFOUND for a filter by a
** name no artifact has; LUPINE_MISUSE for a NULL rt or fn, a filter of
** another handle, or one by status; LUPINE_IO, LUPINE_CATALOG,
** LUPINE_NOMEM.
*/
LUPINE_API int lupine_av_list(lupine *rt, const lupine_filter *f, lupine_av_fn fn, void *ud);

/* ---- step runs ---- */

/* One run of one step of a pipeline run: a snapshot. Opaque. */
typedef struct lupine_step_run lupine_step_run;

/*
** Lineage: the step run that made v (its output), into *out, a new step
** run (free it with lupine_step_run_free); *out NULL, and LUPINE_OK, for
** a version no step made (saved by hand outside any step, or
** registered). LUPINE_MISUSE, LUPINE_IO, LUPINE_CATALOG, LUPINE_NOMEM.
*/
LUPINE_API int lupine_av_producer(lupine *rt, const lupine_artifact_version *v,
                                  lupine_step_run **out);

/* Called once per step run by a listing; as lupine_av_fn. */
typedef int (*lupine_step_run_fn)(void *ud, const lupine_step_run *s);

/* Lineage: call fn for each step run that took v as an input, in the
** order they started. Results as lupine_av_list's. */
LUPINE_API int lupine_av_consumers(lupine *rt, const lupine_artifact_version *v,
                                   lupine_step_run_fn fn, void *ud);

/*
** Look up the step run of the pipeline run r (a lupine_run, see below)
** named name: the step's name, or the name given to one of its calls
** ("train_2"). On success *out is a new step run (lupine_step_run_free);
** else *out is NULL: LUPINE_NOTFOUND ("pipeline run 'r' has no step run
** 'x'"); LUPINE_MISUSE, LUPINE_IO, LUPINE_CATALOG, LUPINE_NOMEM.
*/
LUPINE_API int lupine_step_run_find(lupine *rt, const lupine_run *r, const char *name,
                                    lupine_step_run **out);

/* Call fn for each step run of the pipeline run r, in the order they
** started (cache hits and skipped steps included). Results as
** lupine_av_list's. */
LUPINE_API int lupine_step_run_list(lupine *rt, const lupine_run *r, lupine_step_run_fn fn,
                                    void *ud);

/* A copy of s, owned by the caller. LUPINE_MISUSE, LUPINE_NOMEM. */
LUPINE_API int lupine_step_run_dup(const lupine_step_run *s, lupine_step_run **out);

/* Free a step run. NULL is a harmless no-op. */
LUPINE_API void lupine_step_run_free(lupine_step_run *s);

/*
** The fields of a step run, owned by s; NULL (-1 for attempts) for a NULL
** s, and NULL where the catalog has nothing.
**   id          a UUID
**   run_id      the pipeline run's id (lupine_run_find takes it)
**   name        its name in the run (the step's, or the one given to a call)
**   step_name   the step's name
**   status      "running", "completed", "failed", "cached" (a cache hit:
**               its outputs are those of an earlier step run) or "skipped"
**               (a step it depends on failed)
**   start_time  UTC, as lupine_av_created
**   end_time    UTC; NULL while it runs
**   error       why it failed ("step 'x' (p.lua:3) failed: ..."); NULL if
**               it did not
**   traceback   the Lua traceback of that error
**   logs        what the step printed (stdout and stderr, as the log
**               callback got them, without the "[step] " in front)
**   attempts    how many times it ran (retries count; 0 for a cache hit or
**               a skipped step)
*/
LUPINE_API const char *lupine_step_run_id(const lupine_step_run *s);
LUPINE_API const char *lupine_step_run_run_id(const lupine_step_run *s);
LUPINE_API const char *lupine_step_run_name(const lupine_step_run *s);
LUPINE_API const char *lupine_step_run_step_name(const lupine_step_run *s);
LUPINE_API const char *lupine_step_run_status(const lupine_step_run *s);
LUPINE_API const char *lupine_step_run_start_time(const lupine_step_run *s);
LUPINE_API const char *lupine_step_run_end_time(const lupine_step_run *s);
LUPINE_API const char *lupine_step_run_error(const lupine_step_run *s);
LUPINE_API const char *lupine_step_run_traceback(const lupine_step_run *s);
LUPINE_API const char *lupine_step_run_logs(const lupine_step_run *s);
LUPINE_API int lupine_step_run_attempts(const lupine_step_run *s);

/*
** An input or output of a step run: name is the input's parameter name,
** or the output's name (for a version the step saved by hand, its
** artifact's name); v the version. Both valid during the call only.
** Returning non-zero stops the listing (LUPINE_ABORT).
*/
typedef int (*lupine_io_fn)(void *ud, const char *name, const lupine_artifact_version *v);

/*
** Call fn for each artifact version the step run s took as an input, or
** made as an output, in the order they were recorded. A cache hit's
** outputs are the versions it reused. The outputs include what the step
** saved by hand (save_type "manual"); its own outputs have save_type
** "step_output". Results as lupine_av_list's.
*/
LUPINE_API int lupine_step_run_inputs(lupine *rt, const lupine_step_run *s, lupine_io_fn fn,
                                      void *ud);
LUPINE_API int lupine_step_run_outputs(lupine *rt, const lupine_step_run *s, lupine_io_fn fn,
                                       void *ud);

/* ---- run metadata ---- */

/* A metadata value: any value Lua can store (a number, a string, a
** boolean, a table). Opaque, valid during the callback that gets it. */
typedef struct lupine_value lupine_value;

/* Called once per key, in the order of the keys. Returning non-zero stops
** the listing (LUPINE_ABORT). */
typedef int (*lupine_metadata_fn)(void *ud, const char *key, const lupine_value *value);

/*
** Call fn for each key of the run metadata logged for a version, a
** pipeline run or a step run (log_metadata in Lua). Results as
** lupine_av_list's.
*/
LUPINE_API int lupine_av_metadata(lupine *rt, const lupine_artifact_version *v,
                                  lupine_metadata_fn fn, void *ud);
LUPINE_API int lupine_run_metadata(lupine *rt, const lupine_run *r, lupine_metadata_fn fn,
                                   void *ud);
LUPINE_API int lupine_step_run_metadata(lupine *rt, const lupine_step_run *s,
                                        lupine_metadata_fn fn, void *ud);

/*
** A value's Lua type: LUA_TNUMBER, LUA_TSTRING, LUA_TBOOLEAN or LUA_TTABLE
** (a table, or a value of a user-defined type); LUA_TNONE for NULL.
**   lupine_value_number  a number's value (a boolean's: 1 or 0); 0 else
**   lupine_value_text    a string's bytes (*len, if len is not NULL, their
**                        count; they may hold zeros); NULL else
**   lupine_value_cbor    the value's deterministic CBOR, whatever its
**                        type (*len bytes; len must not be NULL)
** The strings belong to the value.
*/
LUPINE_API int lupine_value_type(const lupine_value *x);
LUPINE_API double lupine_value_number(const lupine_value *x);
LUPINE_API const char *lupine_value_text(const lupine_value *x, size_t *len);
LUPINE_API const unsigned char *lupine_value_cbor(const lupine_value *x, size_t *len);

/* Push the value onto L, as lupine_av_load pushes a version's (tables
** whole). LUPINE_CORRUPT if it does not decode; LUPINE_MISUSE,
** LUPINE_NOMEM. */
LUPINE_API int lupine_value_load(lupine *rt, const lupine_value *x, lua_State *L);

/* ---- pipeline runs ---- */

/*
** Look up a pipeline run by name, id or unique id prefix (as
** lupine_av_find), as client:get_pipeline_run in Lua. On success *out is
** a new lupine_run: free it with lupine_run_free. On failure *out is NULL
** and the codes are lupine_av_find's (LUPINE_NOTFOUND suggests near run
** names).
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
**   start_time  UTC, as lupine_av_created
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

/* The run's tags, as lupine_av_tag_count and lupine_av_tag. */
LUPINE_API int lupine_run_tag_count(const lupine_run *r);
LUPINE_API const char *lupine_run_tag(const lupine_run *r, int i);

/* Called once per run by a listing; as lupine_av_fn. */
typedef int (*lupine_run_fn)(void *ud, const lupine_run *r);

/* Call fn for each run that f selects (f NULL: every run), newest first.
** Results as lupine_av_list's (LUPINE_NOTFOUND for a filter by a name no
** pipeline has). */
LUPINE_API int lupine_run_list(lupine *rt, const lupine_filter *f, lupine_run_fn fn, void *ud);

/*
** ---- deprecated names, kept for one release ----
**
** The names before the artifact-version type was renamed (lupine_version
** stuttered beside LUPINE_VERSION: lupine_version_version) and before the
** listings took filters. Each is the function named in its message, and
** compiles with a deprecation warning. Define LUPINE_NO_DEPRECATED to
** leave them out. They go in the release after the next.
*/
#ifndef LUPINE_NO_DEPRECATED

#if defined(__GNUC__)
#define LUPINE_DEPRECATED(use) __attribute__((deprecated("use " use)))
#else
#define LUPINE_DEPRECATED(use)
#endif

#define LUPINE_RUNFAILED LUPINE_FAILED   /* deprecated: use LUPINE_FAILED */

typedef lupine_artifact_version lupine_version LUPINE_DEPRECATED("lupine_artifact_version");
typedef lupine_av_fn lupine_version_fn LUPINE_DEPRECATED("lupine_av_fn");

LUPINE_DEPRECATED("lupine_av_find") static inline int lupine_version_find(
    lupine *rt, const char *name_or_id, const char *version, lupine_artifact_version **out) {
  return lupine_av_find(rt, name_or_id, version, out);
}
LUPINE_DEPRECATED("lupine_av_dup") static inline int lupine_version_dup(
    const lupine_artifact_version *v, lupine_artifact_version **out) {
  return lupine_av_dup(v, out);
}
LUPINE_DEPRECATED("lupine_av_free") static inline void lupine_version_free(
    lupine_artifact_version *v) {
  lupine_av_free(v);
}
LUPINE_DEPRECATED("lupine_av_id") static inline const char *lupine_version_id(
    const lupine_artifact_version *v) {
  return lupine_av_id(v);
}
LUPINE_DEPRECATED("lupine_av_name") static inline const char *lupine_version_name(
    const lupine_artifact_version *v) {
  return lupine_av_name(v);
}
LUPINE_DEPRECATED("lupine_av_version") static inline const char *lupine_version_version(
    const lupine_artifact_version *v) {
  return lupine_av_version(v);
}
LUPINE_DEPRECATED("lupine_av_type") static inline const char *lupine_version_type(
    const lupine_artifact_version *v) {
  return lupine_av_type(v);
}
LUPINE_DEPRECATED("lupine_av_data_type") static inline const char *lupine_version_data_type(
    const lupine_artifact_version *v) {
  return lupine_av_data_type(v);
}
LUPINE_DEPRECATED("lupine_av_content_hash") static inline const char *
lupine_version_content_hash(const lupine_artifact_version *v) {
  return lupine_av_content_hash(v);
}
LUPINE_DEPRECATED("lupine_av_created") static inline const char *lupine_version_created(
    const lupine_artifact_version *v) {
  return lupine_av_created(v);
}
LUPINE_DEPRECATED("lupine_av_size") static inline int64_t lupine_version_size(
    const lupine_artifact_version *v) {
  return lupine_av_size(v);
}
LUPINE_DEPRECATED("lupine_av_stored_size") static inline int64_t lupine_version_stored_size(
    const lupine_artifact_version *v) {
  return lupine_av_stored_size(v);
}
LUPINE_DEPRECATED("lupine_av_load") static inline int lupine_version_load(
    lupine *rt, const lupine_artifact_version *v, lua_State *L) {
  return lupine_av_load(rt, v, L);
}
LUPINE_DEPRECATED("lupine_av_read") static inline int lupine_version_read(
    lupine *rt, const lupine_artifact_version *v, unsigned char **data, size_t *len) {
  return lupine_av_read(rt, v, data, len);
}
LUPINE_DEPRECATED("lupine_av_path") static inline int lupine_version_path(
    lupine *rt, const lupine_artifact_version *v, char **path) {
  return lupine_av_path(rt, v, path);
}

/* lupine_av_list (lupine_run_list) by a name, or of everything (NULL). */
static inline int lupine_list_by_name_(lupine *rt, const char *name, lupine_av_fn vfn,
                                       lupine_run_fn rfn, void *ud) {
  lupine_filter *f = NULL;
  int rc = name != NULL ? lupine_filter_new(rt, &f) : LUPINE_OK;
  if (rc == LUPINE_OK && name != NULL) rc = lupine_filter_name(f, name);
  if (rc == LUPINE_OK) rc = vfn != NULL ? lupine_av_list(rt, f, vfn, ud)
                                        : lupine_run_list(rt, f, rfn, ud);
  lupine_filter_free(f);
  return rc;
}
LUPINE_DEPRECATED("lupine_av_list") static inline int lupine_list_versions(
    lupine *rt, const char *name, lupine_av_fn fn, void *ud) {
  return fn == NULL ? lupine_av_list(rt, NULL, fn, ud)
                    : lupine_list_by_name_(rt, name, fn, NULL, ud);
}
LUPINE_DEPRECATED("lupine_run_list") static inline int lupine_list_runs(
    lupine *rt, const char *pipeline, lupine_run_fn fn, void *ud) {
  return fn == NULL ? lupine_run_list(rt, NULL, fn, ud)
                    : lupine_list_by_name_(rt, pipeline, NULL, fn, ud);
}

#endif /* LUPINE_NO_DEPRECATED */

#ifdef __cplusplus
}
#endif
#endif
