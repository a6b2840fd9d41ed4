/*
** lupine.h: the public interface of the Lupine runtime.
**
** Lupine runs pipelines written in Lua: steps with named ("annotated")
** outputs, executed in dependency order, every output serialized,
** content-addressed, versioned and recorded in a catalog.
**
** A host program opens a runtime (lupine_open) on a catalog folder, runs
** Lua scripts in it, and queries the catalog. Every function returns an
** int result code (LUPINE_OK on success); after a failure,
** lupine_errmsg(rt) describes it and names the culprit. The library never
** prints to stdout, never calls exit, and keeps no global mutable state:
** separate handles may be used from separate threads.
*/
#ifndef LUPINE_H
#define LUPINE_H

#include <stddef.h>
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
#define LUPINE_LOG_INFO  2   /* run summaries */
#define LUPINE_LOG_DEBUG 3   /* step progress */
#define LUPINE_LOG_OUTPUT 4  /* a line a step printed, as "[step] line" */

/*
** Receives the runtime's messages (one line each, no trailing newline).
** Called on the thread that runs the script; must not call back into the
** runtime.
*/
typedef void (*lupine_log_fn)(void *ud, int level, const char *message);

/* An open runtime: a Lua state wired to one catalog. Opaque. */
typedef struct lupine lupine;

/*
** Open a runtime on the catalog folder home, creating it on first use.
** home NULL means: $LUPINE_HOME if set; else the nearest ".lupine" folder
** found walking up from the current directory; else "./.lupine".
** The catalog itself is opened on first use, so a bad folder is reported
** by the first call that needs it.
** On success *out is a new handle. On failure *out is NULL if memory ran
** out, else a handle whose lupine_errmsg says what failed: close it with
** lupine_close either way.
*/
LUPINE_API int lupine_open(lupine **out, const char *home);

/* Close a runtime and its Lua state. NULL is a harmless no-op. Returns
** LUPINE_OK. */
LUPINE_API int lupine_close(lupine *rt);

/*
** The message of the most recent failure on this handle, naming the
** culprit ("step 'train' (p.lua:12): ..."), or "" if none. Owned by the
** handle, valid until its next call. NULL rt gives a fixed message.
*/
LUPINE_API const char *lupine_errmsg(const lupine *rt);

/*
** The runtime's Lua state, with the standard libraries and `lupine`
** loaded (also as the global `lupine`). Hosts register their own C
** functions in it for steps to call. Owned by the handle.
*/
LUPINE_API lua_State *lupine_state(lupine *rt);

/*
** Ask the pipeline run in progress on rt to stop: its workers are ended and
** the run is marked "stopped". Safe to call from a signal handler (it only
** sets a flag); the CLI calls it on SIGINT and SIGTERM.
*/
LUPINE_API void lupine_interrupt(lupine *rt);

/* Send the runtime's progress and summaries to fn (NULL: discard them,
** except what steps print, which then goes to stderr). */
LUPINE_API void lupine_set_log(lupine *rt, lupine_log_fn fn, void *ud);

/*
** Run the Lua script at path, with the global `arg` set as the `lua`
** command does (arg[0] = path, arg[1..argc] = argv) and argv passed as the
** chunk's `...`.
** Returns LUPINE_OK; LUPINE_SCRIPT if the script raised an error (or did
** not compile); LUPINE_RUNFAILED if it finished but a pipeline run it
** started failed; LUPINE_IO if the file cannot be read.
*/
LUPINE_API int lupine_exec_file(lupine *rt, const char *path, int argc, char **argv);

/* Run a chunk of Lua code; chunkname names it in errors (NULL: "=string").
** Results as lupine_exec_file. */
LUPINE_API int lupine_exec_string(lupine *rt, const char *code, const char *chunkname);

/*
** The catalog folder in use (resolving it as lupine_open describes if
** needed), or NULL with an error message. Owned by the handle.
*/
LUPINE_API const char *lupine_home(lupine *rt);

/*
** The Lua module: `require "lupine"` calls it, and a host that owns a
** lua_State may call it (luaL_requiref(L, "lupine", luaopen_lupine, 1)).
** Pushes the module table.
*/
LUPINE_API int luaopen_lupine(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif
