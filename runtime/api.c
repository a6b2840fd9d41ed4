/* SPDX-License-Identifier: MIT */
/*
** api.c: the public entry points (lupine.h). Each checks its handle and
** arguments, and leaves a result code and a message naming the culprit on
** the handle when something fails.
**
** Everything that touches a lua_State runs inside lua_pcall (see
** protect): Lua raises on allocation failure, and an unprotected raise
** would end the host. Finding a version or a run by name or id goes
** through the Lua client (lupine.client), so that C hosts and Lua scripts
** find them by the same rules, with the same messages; the client says why
** a lookup failed, and that (never the message's text) gives the code.
** Everything else reads the catalog's records in C (lp_catalog_records), a
** page at a time.
** Objects handed to the host (versions, runs, step runs) are plain C
** copies: the host may keep them after the Lua values are gone, and
** callbacks run outside any protected call and any catalog statement,
** free to call back in.
*/
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lauxlib.h"
#include "lualib.h"
#include "lupine_int.h"

/* A string lupine_home returned: kept until the handle is closed. */
typedef struct home_text {
  struct home_text *next;
  char s[];
} home_text;

/* A run that a lupine_exec_* call started. */
typedef struct made_run {
  char id[LP_ID_LEN + 1];
  char stopped;         /* it was stopped (lupine_interrupt) */
  char failed;          /* it failed */
} made_run;

struct lupine {
  lua_State *L;
  lp_runtime *rt;       /* NULL if the handle did not open */
  int code;             /* the last call's result code */
  char *err;            /* the message: errbuf, or a longer one malloc'd */
  char errbuf[LP_ERRSZ];
  home_text *homes;
  char catalog_name[PATH_MAX + 300];   /* lupine_catalog_name's */
  volatile sig_atomic_t depth;   /* calls of this handle's into Lua under way */
  /* the runs the last lupine_exec_* call started (made_lost: some could not
  ** be kept, memory ran out) */
  made_run *made;
  int nmade, made_cap, made_lost;
  /* the interrupt's hook fired during the outermost call under way */
  volatile sig_atomic_t stopped;
  /* the script of the call under way ended with a run's error: 'f' (it
  ** failed) or 's' (it was stopped) */
  char raised;
};

/*
** A version, run, step run or metadata entry: its columns' bytes (each
** followed by a zero) and its tags, in one block with the pointers to
** them, so that a copy is one memcpy with the pointers moved along.
*/
typedef struct record {
  size_t size;          /* of the whole block */
  int ncols, ntags;
  const char **s;       /* ncols columns (NULL where NULL), then the ntags tags */
  size_t *len;          /* the columns' lengths */
} record;

struct lupine_artifact_version { record r; };
struct lupine_run { record r; };
struct lupine_step_run { record r; };
struct lupine_value { record r; };

/* Listings read this many records per catalog statement. */
#define PAGE 256

/* The handle of a lua_State, for the interrupt's hook and the message
** handler (registry key: its address). */
static const char handle_key = 'H';

static int fail(lupine *h, int rc, const char *msg) {
  size_t n;
  char *p;
  if (msg == NULL) msg = "(error object is not a string)";
  h->code = rc;
  if (msg == h->err) return rc;
  n = strlen(msg);
  if (h->err != h->errbuf) free(h->err);
  h->err = h->errbuf;
  /* whole (a script's error with its traceback can be long); cut between
  ** two characters only if memory for it runs out */
  if (n >= sizeof h->errbuf && (p = malloc(n + 1)) != NULL) {
    memcpy(p, msg, n + 1);
    h->err = p;
  } else lp_errf(h->errbuf, sizeof h->errbuf, "%s", msg);
  return rc;
}

/* fail with a formatted message, of any length. */
static int failf(lupine *h, int rc, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;
static int failf(lupine *h, int rc, const char *fmt, ...) {
  va_list ap;
  char *msg;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || (msg = malloc((size_t)n + 1)) == NULL) return fail(h, rc, "out of memory");
  va_start(ap, fmt);
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  va_end(ap);
  fail(h, rc, msg);
  free(msg);
  return rc;
}

/* A success: no message, LUPINE_OK. */
static int clear(lupine *h) {
  h->err[0] = '\0';
  h->code = LUPINE_OK;
  return LUPINE_OK;
}

/* A handle that opened; else LUPINE_MISUSE (the message of a handle that
** did not open still says why). */
static int usable(const lupine *h) {
  return h == NULL || h->rt == NULL ? LUPINE_MISUSE : LUPINE_OK;
}

static int misuse(lupine *h, const char *fname, const char *what) {
  return failf(h, LUPINE_MISUSE, "%s: %s", fname, what);
}

/* ---- protected calls ---- */

/*
** Steps run in worker processes forked inside a call into Lua, and a
** worker must end there. Should an error ever unwind one out of its step
** (a raise the executor has no handler for, such as running out of memory
** while reporting), it would land in this call's handler, in a copy of
** the host, and go on running the host's code: end it instead. was is
** the handle's worker pipe before the call (0 in the host itself).
*/
static void no_escape(const lupine *h, int was) {
  if (h->rt != NULL && h->rt->to_parent != was) _exit(70);
}

/*
** What a protected function gets (as a light userdata, its first
** argument): the handle, and rc, which it sets before raising (else the
** code is LUPINE_ERROR).
*/
typedef struct job {
  lupine *h;
  int rc;
  const char *key, *arg;    /* string arguments */
  const struct finder *finder;  /* finding a version or a run */
  const char *version;
  const char *const *queries;   /* checking a name: by name, all names */
  void *out;                /* what it made */
  lua_CFunction fn[3];      /* register_materializer's */
  const unsigned char *data;
  size_t len;
} job;

/* ---- interrupting ---- */

static lupine *handle_of(lua_State *L) {
  lupine *h;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &handle_key);
  h = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return h;
}

/* Hook set by lupine_interrupt: stop the Lua code running (as lua.c does
** on Ctrl-C). */
static void stop_hook(lua_State *L, lua_Debug *ar) {
  lupine *h = handle_of(L);
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  lp_runtime_of(L)->interrupted = 0;   /* answered here: the next run must not see it */
  if (h != NULL) h->stopped = 1;
  luaL_error(L, "interrupted");
}

/* An interrupt that came as the last call ended, unanswered: it was for
** that call, not for the next. */
static void forget_interrupt(lupine *h) {
  if (h->rt == NULL) return;
  h->rt->interrupted = 0;
  if (lua_gethook(h->L) == stop_hook) lua_sethook(h->L, NULL, 0, 0);
}

/* A call into Lua begins or ends (calls nest: a step's host function may
** call the API); an interrupt applies to the outermost one. */
static void enter(lupine *h) {
  if (h->depth++ > 0) return;
  forget_interrupt(h);
  h->stopped = 0;
}

static void leave(lupine *h) {
  if (--h->depth == 0) forget_interrupt(h);
}

void lupine_interrupt(lupine *h) {
  if (h == NULL || h->rt == NULL) return;
  /* as sqlite3_interrupt: with nothing running it is a no-op */
  if (h->depth == 0 && !h->rt->running) return;
  h->rt->interrupted = 1;   /* a run in progress looks at this */
  /* A run answers the interrupt itself (it stops its workers and records
  ** them stopped); the only Lua it runs meanwhile is the host's, told of
  ** events, which the hook would stop instead, losing the run's end. */
  if (!h->rt->running)
    lua_sethook(h->L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/*
** Call f(job) in L, protected; f leaves nresults values (LUA_MULTRET: all
** it returns). On failure the message goes to the handle and the stack is
** as before.
*/
static int protect(lua_State *L, lua_CFunction f, job *j, int nresults) {
  int status, was;
  if (!lua_checkstack(L, 3)) return fail(j->h, LUPINE_NOMEM, "out of memory (Lua stack)");
  was = j->h->rt != NULL ? j->h->rt->to_parent : 0;
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, j);
  enter(j->h);
  status = lua_pcall(L, 1, nresults, 0);
  no_escape(j->h, was);
  leave(j->h);
  if (status == LUA_OK) return LUPINE_OK;
  if (status == LUA_ERRMEM) j->rc = LUPINE_NOMEM;
  else if (j->h->stopped) j->rc = LUPINE_INTERRUPT;
  else if (j->rc == LUPINE_OK) j->rc = LUPINE_ERROR;
  fail(j->h, j->rc, lua_tostring(L, -1));
  lua_pop(L, 1);
  return j->rc;
}

static job *job_of(lua_State *L) {
  return lua_touserdata(L, 1);
}

/* Raise with the code rc and the message msg (in a protected function). */
static int throw(lua_State *L, job *j, int rc, const char *msg) {
  j->rc = rc;
  return luaL_error(L, "%s", msg);
}

/* The runtime's catalog, opened as the bindings open it. */
static void open_catalog(lua_State *L, job *j) {
  lp_runtime *rt = j->h->rt;
  int rc = lp_runtime_open(L, rt);
  if (rc != LUPINE_OK) throw(L, j, rc, rt->err);
}

static int p_open_catalog(lua_State *L) {
  open_catalog(L, job_of(L));
  return 0;
}

/* The catalog of a usable handle, open. */
static int ready(lupine *h) {
  job j = {0};
  j.h = h;
  return protect(h->L, p_open_catalog, &j, 0);
}

/* Push package.loaded[name] (a module the runtime loaded). */
static void module(lua_State *L, const char *name) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
}

/* ---- versions ---- */

const char *lupine_libversion(void) {
  return LUPINE_VERSION;
}

int lupine_libversion_number(void) {
  return LUPINE_VERSION_NUMBER;
}

/* ---- opening and closing ---- */

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "lupine: unprotected error in the Lua state (%s)\n",
          msg != NULL ? msg : "error object is not a string");
  return 0;   /* Lua then aborts */
}

/* A run a lupine_exec_* call under way started: kept for lupine_exec_run.
** (Runs the host starts by calling Lua itself are not its.) */
static void note_run(void *ud, const char *id, const char *status) {
  lupine *h = ud;
  made_run *m;
  if (h->depth == 0 || id == NULL) return;
  if (h->nmade == h->made_cap) {
    int cap = h->made_cap > 0 ? 2 * h->made_cap : 8;
    if ((m = realloc(h->made, (size_t)cap * sizeof *m)) == NULL) {
      h->made_lost = 1;
      return;
    }
    h->made = m;
    h->made_cap = cap;
  }
  m = &h->made[h->nmade++];
  snprintf(m->id, sizeof m->id, "%s", id);
  m->stopped = status != NULL && strcmp(status, "stopped") == 0;
  m->failed = status != NULL && strcmp(status, "failed") == 0;
}

/* Open the libraries and the module, and the runtime of the state. */
static int p_setup(lua_State *L) {
  job *j = job_of(L);
  lp_runtime *rt;
  luaL_openlibs(L);
  luaL_requiref(L, "lupine", luaopen_lupine, 1);
  rt = lp_runtime_of(L);
  rt->on_run = note_run;
  rt->on_run_ud = j->h;
  lua_pushlightuserdata(L, j->h);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &handle_key);
  j->out = rt;
  return 0;
}

/* An open that failed: no handle if memory ran out, else h, which says
** why (its message is set). */
static int open_failed(lupine *h, lupine **out, int rc) {
  if (rc == LUPINE_NOMEM) lupine_close(h);
  else *out = h;
  return rc;
}

int lupine_open_ex(lupine **out, const char *home, lua_Alloc alloc, void *ud) {
  lupine *h;
  job j = {0};
  lp_runtime *rt;
  int rc;
  if (out == NULL) return LUPINE_MISUSE;
  *out = NULL;
  lp_catalog_fork_safe();   /* another thread may be in sqlite when a worker forks */
  if ((h = calloc(1, sizeof *h)) == NULL) return LUPINE_NOMEM;
  h->err = h->errbuf;
  h->L = alloc != NULL ? lua_newstate(alloc, ud) : luaL_newstate();
  if (h->L == NULL) return open_failed(h, out, LUPINE_NOMEM);
  lua_atpanic(h->L, panic);
  j.h = h;
  if (protect(h->L, p_setup, &j, 0) != LUPINE_OK)
    return open_failed(h, out, j.rc == LUPINE_NOMEM ? LUPINE_NOMEM : LUPINE_ERROR);
  rt = j.out;
  /* now: a relative folder is relative to the directory of this moment */
  if ((rc = lp_runtime_set_home(rt, home, "lupine_open")) != LUPINE_OK) {
    fail(h, rc, rt->err);
    return open_failed(h, out, rc);
  }
  h->rt = rt;
  *out = h;
  return LUPINE_OK;
}

int lupine_open(lupine **out, const char *home) {
  return lupine_open_ex(out, home, NULL, NULL);
}

int lupine_close(lupine *h) {
  if (h == NULL) return LUPINE_OK;
  if (h->L != NULL) lua_close(h->L);
  while (h->homes != NULL) {
    home_text *next = h->homes->next;
    free(h->homes);
    h->homes = next;
  }
  free(h->made);
  if (h->err != h->errbuf) free(h->err);
  free(h);
  return LUPINE_OK;
}

const char *lupine_errmsg(const lupine *h) {
  return h == NULL ? "no runtime (NULL handle)" : h->err;
}

int lupine_errcode(const lupine *h) {
  return h == NULL ? LUPINE_MISUSE : h->code;
}

const char *lupine_errstr(int rc) {
  static const char *const names[] = {
    "ok", "error", "misuse", "out of memory", "I/O error", "corrupt data", "not found",
    "catalog error", "a pipeline run failed", "script error", "conflicts with what is stored",
    "interrupted", "stopped by a callback"};
  if (rc < 0 || rc >= (int)(sizeof names / sizeof names[0])) return "unknown result code";
  return names[rc];
}

lua_State *lupine_state(lupine *h) {
  return h == NULL || h->rt == NULL ? NULL : h->L;
}

void lupine_set_log(lupine *h, lupine_log_fn fn, void *ud) {
  if (h == NULL || h->rt == NULL) return;
  h->rt->log = fn;
  h->rt->log_ud = ud;
}

void lupine_set_events(lupine *h, lupine_event_fn fn, void *ud) {
  if (h == NULL || h->rt == NULL) return;
  h->rt->events = fn;
  h->rt->events_ud = ud;
}

int lupine_set_catalog(lupine *h, const char *target) {
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  clear(h);
  if ((rc = lp_runtime_set_catalog(h->rt, target, "lupine_set_catalog")) != LUPINE_OK)
    return failf(h, rc, "%s", h->rt->err);
  return LUPINE_OK;
}

/* The runtime's home changes with lupine.set_home, and frees the old
** string: the handle gives out copies of its own, one per folder. */
const char *lupine_home(lupine *h) {
  home_text *t;
  size_t n;
  if (usable(h) != LUPINE_OK || ready(h) != LUPINE_OK) return NULL;
  clear(h);
  for (t = h->homes; t != NULL; t = t->next)
    if (strcmp(t->s, h->rt->home) == 0) return t->s;
  n = strlen(h->rt->home) + 1;
  if ((t = malloc(sizeof *t + n)) == NULL) {
    fail(h, LUPINE_NOMEM, "out of memory");
    return NULL;
  }
  memcpy(t->s, h->rt->home, n);
  t->next = h->homes;
  h->homes = t;
  return t->s;
}

const char *lupine_catalog_name(lupine *h) {
  int rc;
  if (usable(h) != LUPINE_OK) return NULL;
  clear(h);
  if ((rc = lp_runtime_catalog_name(h->rt, h->catalog_name, sizeof h->catalog_name)) !=
      LUPINE_OK) {
    failf(h, rc, "%s", h->rt->err);
    return NULL;
  }
  return h->catalog_name;
}

/* ---- running Lua ---- */

/* A run's error object (init.lua raises one for a run that fails): a
** table whose field run is a PipelineRun. Its status, 'f' (failed) or 's'
** (stopped), into h->raised. stack: error object */
static void note_raised_run(lua_State *L, lupine *h) {
  int top = lua_gettop(L);
  lua_pushliteral(L, "run");
  if (lua_rawget(L, 1) == LUA_TTABLE && luaL_getmetafield(L, -1, "__name") == LUA_TSTRING &&
      strcmp(lua_tostring(L, -1), "lupine.PipelineRun") == 0) {
    lua_pushliteral(L, "status");
    if (lua_rawget(L, top + 1) == LUA_TSTRING)
      h->raised = strcmp(lua_tostring(L, -1), "stopped") == 0 ? 's' : 'f';
  }
  lua_settop(L, top);
}

/* Message handler: a string error with a traceback, as lua.c shows it. An
** error object (a failed run) already says where: it is shown as it
** prints itself. */
static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    lupine *h = handle_of(L);
    if (h != NULL && lua_type(L, 1) == LUA_TTABLE) note_raised_run(L, h);
    luaL_tolstring(L, 1, NULL);
    return 1;
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* The code of a script that finished, from the runs it started since
** the call began (from the first of made): a stopped one interrupts it, a
** failed one fails it. */
static int runs_code(const lupine *h, int from) {
  int i, failed = 0;
  for (i = from; i < h->nmade; i++) {
    if (h->made[i].stopped) return LUPINE_INTERRUPT;
    failed |= h->made[i].failed;
  }
  return failed ? LUPINE_FAILED : LUPINE_OK;
}

/* Call the chunk that sits below its nargs arguments on top of the stack. */
static int call_chunk(lupine *h, int nargs) {
  lua_State *L = h->L;
  int base = lua_gettop(L) - nargs, failed_before = h->rt->failed_runs, status, rc;
  int was = h->rt->to_parent, from = h->nmade;
  char raised = h->raised;   /* of the call this one is nested in, if any */
  h->raised = 0;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  enter(h);
  status = lua_pcall(L, nargs, 0, base);
  no_escape(h, was);
  leave(h);
  if (status != LUA_OK) {
    rc = status == LUA_ERRMEM ? LUPINE_NOMEM : h->stopped || h->raised == 's' ? LUPINE_INTERRUPT
       : h->raised == 'f' ? LUPINE_FAILED : LUPINE_SCRIPT;
    fail(h, rc, lua_tostring(L, -1));
  } else if (h->rt->failed_runs > failed_before) {
    /* runs that do not raise (raise_on_failure = false): the last one's
    ** message, as a raising run gives it */
    const char *last = h->rt->run_failure != NULL ? h->rt->run_failure : "a pipeline run failed";
    int n = h->rt->failed_runs - failed_before;
    rc = runs_code(h, from);
    if (rc == LUPINE_OK) rc = LUPINE_FAILED;   /* its record was lost (made_lost) */
    if (n == 1) fail(h, rc, last);
    else failf(h, rc, "%d pipeline runs failed; the last: %s", n, last);
  } else if (h->made_lost) {
    rc = fail(h, LUPINE_NOMEM, "out of memory keeping the runs the script started");
  } else rc = clear(h);
  lua_settop(L, base - 1);
  h->raised = raised;
  return rc;
}

/* A lupine_exec_* call begins: the outermost one starts the account of
** the runs it makes. */
static void exec_begins(lupine *h) {
  if (h->depth > 0) return;
  h->nmade = 0;
  h->made_lost = 0;
}

typedef struct chunk_args {
  const char *path;           /* a file to load; NULL: code */
  const char *code, *name;
  size_t len;
  int argc;
  const char *const *argv;
  int set_arg;                /* set the global arg */
} chunk_args;

/* Set `arg` as lua.c builds it (the script at 0, its arguments from 1) if
** asked (a chunk's name without the '=' or '@' that tells Lua how to show
** it), load the chunk, and leave it with its arguments on the stack. */
static int p_load(lua_State *L) {
  job *j = job_of(L);
  const chunk_args *a = j->out;
  int i, status;
  lua_settop(L, 0);
  if (a->set_arg) {
    lua_createtable(L, a->argc, 1);
    if (a->path != NULL) lua_pushstring(L, a->path);
    else lua_pushstring(L, a->name + (a->name[0] == '=' || a->name[0] == '@'));
    lua_rawseti(L, -2, 0);
    for (i = 0; i < a->argc; i++) {
      lua_pushstring(L, a->argv[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");
  }
  status = a->path != NULL ? luaL_loadfile(L, a->path)
                           : luaL_loadbuffer(L, a->code, a->len, a->name);
  if (status != LUA_OK) {
    j->rc = status == LUA_ERRFILE ? LUPINE_IO
      : status == LUA_ERRMEM ? LUPINE_NOMEM : LUPINE_SCRIPT;
    return lua_error(L);
  }
  if (!lua_checkstack(L, a->argc))
    return throw(L, j, LUPINE_MISUSE, "too many arguments to the script");
  for (i = 0; i < a->argc; i++) lua_pushstring(L, a->argv[i]);
  return a->argc + 1;
}

static int exec(lupine *h, const chunk_args *a) {
  job j = {0};
  int rc;
  exec_begins(h);
  j.h = h;
  j.rc = LUPINE_SCRIPT;
  j.out = (void *)a;
  if ((rc = protect(h->L, p_load, &j, LUA_MULTRET)) != LUPINE_OK) return rc;
  return call_chunk(h, a->argc);
}

int lupine_exec_file(lupine *h, const char *path, int argc, const char *const *argv) {
  chunk_args a = {0};
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (path == NULL || argc < 0 || (argc > 0 && argv == NULL))
    return misuse(h, "lupine_exec_file", "no script path or bad argv");
  a.path = path;
  a.argc = argc;
  a.argv = argv;
  a.set_arg = 1;
  return exec(h, &a);
}

int lupine_exec_buffer(lupine *h, const char *code, size_t len, const char *chunkname,
                       int argc, const char *const *argv) {
  chunk_args a = {0};
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (code == NULL) return misuse(h, "lupine_exec_buffer", "code is NULL");
  if (argc < 0 || (argc > 0 && argv == NULL))
    return misuse(h, "lupine_exec_buffer", "bad argc or argv");
  a.code = code;
  a.len = len;
  a.name = chunkname != NULL ? chunkname : "=string";
  a.argc = argc;
  a.argv = argv;
  a.set_arg = argc > 0;
  return exec(h, &a);
}

int lupine_exec_string(lupine *h, const char *code, const char *chunkname) {
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (code == NULL) return misuse(h, "lupine_exec_string", "code is NULL");
  return lupine_exec_buffer(h, code, strlen(code), chunkname, 0, NULL);
}

int lupine_exec_runs(const lupine *h) {
  return h == NULL ? -1 : h->nmade;
}

/* ---- materializers ---- */

static int p_register(lua_State *L) {
  job *j = job_of(L);
  static const char *const keys[3] = {"match", "save", "load"};
  int i;
  module(L, "lupine");
  if (lua_type(L, -1) != LUA_TTABLE ||
      lua_getfield(L, -1, "register_materializer") != LUA_TFUNCTION)
    return throw(L, j, LUPINE_MISUSE, "lupine_register_materializer: materializers are not "
                 "available");
  lua_createtable(L, 0, 4);
  lua_pushstring(L, j->key);
  lua_setfield(L, -2, "type");
  for (i = 0; i < 3; i++) {
    lua_pushcfunction(L, j->fn[i]);
    lua_setfield(L, -2, keys[i]);
  }
  j->rc = LUPINE_MISUSE;   /* what it raises is about the arguments */
  lua_call(L, 1, 0);
  j->rc = LUPINE_OK;
  return 0;
}

int lupine_register_materializer(lupine *h, const char *type, lua_CFunction match,
                                 lua_CFunction save, lua_CFunction load) {
  static const char fname[] = "lupine_register_materializer";
  job j = {0};
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (type == NULL) return misuse(h, fname, "type is NULL");
  if (match == NULL) return misuse(h, fname, "match is NULL");
  if (save == NULL) return misuse(h, fname, "save is NULL");
  if (load == NULL) return misuse(h, fname, "load is NULL");
  j.h = h;
  j.key = type;
  j.fn[0] = match;
  j.fn[1] = save;
  j.fn[2] = load;
  if ((rc = protect(h->L, p_register, &j, 0)) != LUPINE_OK) return rc;
  return clear(h);
}

/* ---- records ---- */

/*
** A record of the row's columns; tags_col (or -1) is a column of tags,
** each ending in '\n', which become its tags. NULL if memory ran out.
*/
static record *record_new(const lp_row *row, int tags_col) {
  size_t text = 0, size, ptrs;
  int i, ntags = 0;
  record *r;
  char *t;
  for (i = 0; i < row->ncols; i++)
    if (row->text[i] != NULL) text += row->len[i] + 1;
  if (tags_col >= 0 && row->text[tags_col] != NULL)
    for (i = 0; (size_t)i < row->len[tags_col]; i++) ntags += row->text[tags_col][i] == '\n';
  ptrs = (size_t)(row->ncols + ntags) * sizeof(char *);
  size = sizeof *r + ptrs + (size_t)row->ncols * sizeof(size_t) + text;
  if ((r = malloc(size)) == NULL) return NULL;
  r->size = size;
  r->ncols = row->ncols;
  r->ntags = ntags;
  r->s = (const char **)(r + 1);
  r->len = (size_t *)((char *)r->s + ptrs);
  t = (char *)(r->len + row->ncols);
  for (i = 0; i < row->ncols; i++) {
    r->s[i] = NULL;
    r->len[i] = 0;
    if (row->text[i] == NULL) continue;
    memcpy(t, row->text[i], row->len[i]);
    t[row->len[i]] = '\0';
    r->s[i] = t;
    r->len[i] = row->len[i];
    t += row->len[i] + 1;
  }
  if (ntags > 0) {   /* each tag: a piece of the column, its '\n' made its end */
    char *p = (char *)r->s[tags_col];
    for (i = 0; i < ntags; i++) {
      char *nl = strchr(p, '\n');
      *nl = '\0';
      r->s[row->ncols + i] = p;
      p = nl + 1;
    }
  }
  return r;
}

/* A copy of r (NULL: memory ran out), its pointers moved into the copy. */
static record *record_dup(const record *r) {
  record *d = malloc(r->size);
  int i;
  if (d == NULL) return NULL;
  memcpy(d, r, r->size);
  d->s = (const char **)((char *)d + ((const char *)r->s - (const char *)r));
  d->len = (size_t *)((char *)d + ((const char *)r->len - (const char *)r));
  for (i = 0; i < r->ncols + r->ntags; i++)
    if (r->s[i] != NULL) d->s[i] = (char *)d + (r->s[i] - (const char *)r);
  return d;
}

/* The _dup functions: a copy of x into *out. */
#define DUP(fn, type) \
  int fn(const type *x, type **out) { \
    if (out == NULL) return LUPINE_MISUSE; \
    *out = x != NULL ? (type *)record_dup(&x->r) : NULL; \
    return x == NULL ? LUPINE_MISUSE : *out == NULL ? LUPINE_NOMEM : LUPINE_OK; \
  }
DUP(lupine_av_dup, lupine_artifact_version)
DUP(lupine_run_dup, lupine_run)
DUP(lupine_step_run_dup, lupine_step_run)

/* Column col of r as an integer (-1 for r NULL, 0 where the catalog has
** nothing). */
static int64_t integer(const record *r, int col) {
  if (r == NULL) return -1;
  return r->s[col] != NULL ? (int64_t)strtoll(r->s[col], NULL, 10) : 0;
}

static const char *tag(const record *r, int i) {
  return r == NULL || i < 0 || i >= r->ntags ? NULL : r->s[r->ncols + i];
}

/* The Lua fields of a version and a run (the client's rows), by column;
** NULL where the row has none (seq, which finding does not need) or it
** comes another way (tags). */
static const char *const av_fields[LP_AV_NCOLS] = {
  NULL, "id", "name", "version", "type", "data_type", "content_hash", "size", "stored_size",
  "created", "artifact_store_id", "save_type", "producer_step_run_id", NULL, NULL};
static const char *const run_fields[LP_RUN_NCOLS] = {
  NULL, "id", "name", "pipeline_name", "status", "start_time", "end_time", "error", NULL};

/*
** The record of the client's object at idx, its columns read from its
** fields (raw: the row's own), its tags from its field tags (a list), at
** *slot at once (so that the caller frees it whatever happens next);
** raises NOMEM if memory runs out.
*/
static void record_of_object(lua_State *L, job *j, int idx, const char *const *fields,
                             int ncols, int tags_col, void **slot) {
  const char *text[LP_AV_NCOLS];
  size_t len[LP_AV_NCOLS];
  lp_row row = {ncols, text, len};
  int i, top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, ncols + 4, "reading a record");
  for (i = 0; i < ncols; i++) {   /* each value stays on the stack while it is used */
    text[i] = NULL;
    if (fields[i] != NULL) {
      lua_pushstring(L, fields[i]);
      if (lua_rawget(L, idx) != LUA_TNIL) text[i] = lua_tolstring(L, -1, &len[i]);
    } else if (i == tags_col) {
      luaL_Buffer b;
      int k;
      lua_getfield(L, idx, "tags");
      luaL_buffinit(L, &b);
      for (k = 1; lua_rawgeti(L, top + i + 1, k) == LUA_TSTRING; k++) {
        luaL_addvalue(&b);
        luaL_addchar(&b, '\n');
      }
      lua_pop(L, 1);
      luaL_pushresult(&b);
      lua_remove(L, -2);
      text[i] = lua_tolstring(L, -1, &len[i]);
    } else lua_pushnil(L);
  }
  if ((*slot = record_new(&row, tags_col)) == NULL) throw(L, j, LUPINE_NOMEM, "out of memory");
  lua_settop(L, top);
}

/* ---- finding by name or id: through the client ---- */

/* How a version or a run is found through the client, and read from the
** object it gives. */
typedef struct finder {
  const char *client_fn;      /* lupine.client's */
  const char *const *fields;
  int ncols, tags_col;
} finder;

static const finder version_finder = {"find_version", av_fields, LP_AV_NCOLS, LP_AV_TAGS};
static const finder run_finder = {"find_run", run_fields, LP_RUN_NCOLS, LP_RUN_TAGS};

/* stack: job. Calls the client's function (j->key [, j->version]) and makes
** the record of what it finds; raises its message with the code its why
** gives. */
static int p_find(lua_State *L) {
  job *j = job_of(L);
  const finder *f = j->finder;
  const char *why;
  open_catalog(L, j);
  module(L, "lupine.client");
  lua_getfield(L, -1, f->client_fn);
  lua_pushstring(L, j->key);
  lua_pushstring(L, j->version);   /* NULL: nil, the latest */
  lua_call(L, 2, 3);
  if (lua_isnil(L, -3)) {
    why = lua_tostring(L, -1);
    j->rc = why != NULL && strcmp(why, "notfound") == 0 ? LUPINE_NOTFOUND : LUPINE_MISUSE;
    lua_pop(L, 1);
    return lua_error(L);
  }
  record_of_object(L, j, -3, f->fields, f->ncols, f->tags_col, &j->out);
  return 0;
}

/* The lookups' shared frame: checks, finds under protection, and hands
** over what it made only on success. has_out: the caller gave somewhere
** to put it. */
static int find(lupine *h, const char *fname, const finder *f, const char *key,
                const char *version, int has_out, void **made) {
  job j = {0};
  int rc;
  *made = NULL;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (!has_out) return misuse(h, fname, "out is NULL");
  if (key == NULL) return misuse(h, fname, "name_or_id is NULL");
  j.h = h;
  j.key = key;
  j.finder = f;
  j.version = version;
  if ((rc = protect(h->L, p_find, &j, 0)) != LUPINE_OK) {
    free(j.out);   /* made before a later failure, if any */
    return rc;
  }
  *made = j.out;
  return clear(h);
}

/* ---- reading records: in C ---- */

/* The records a statement gives (collect), in one growing array. */
typedef struct page {
  int tags_col;               /* the records' column of tags, or -1 */
  int n, cap, nomem;
  record **rec;
} page;

static int collect(void *ud, const lp_row *row) {
  page *p = ud;
  record **grown;
  if (p->n == p->cap) {
    int cap = p->cap > 0 ? 2 * p->cap : 16;
    if ((grown = realloc(p->rec, (size_t)cap * sizeof *grown)) == NULL) goto nomem;
    p->rec = grown;
    p->cap = cap;
  }
  if ((p->rec[p->n] = record_new(row, p->tags_col)) == NULL) goto nomem;
  p->n++;
  return LUPINE_OK;
nomem:
  p->nomem = 1;
  return LUPINE_NOMEM;
}

/* Passes a record to the host's callback (cast from its type); non-zero
** stops the listing. */
typedef int (*record_fn)(void *ud, const record *r);

/* Read the records q describes into p. */
static int read_records(lupine *h, lp_records *q, page *p) {
  char err[LP_ERRSZ];
  int rc = lp_catalog_records(h->rt->catalog, q, collect, p, err, sizeof err);
  if (rc != LUPINE_OK) fail(h, rc, p->nomem ? "out of memory" : err);
  return rc;
}

/*
** Pass the records q describes to fn, outside the catalog's statement (fn
** may call back in). A listing that pages (paged) is read PAGE records at
** a time, each page after the seq the last one ended at. *seen counts the
** records passed, if seen is not NULL.
*/
static int each(lupine *h, const char *fname, lp_records *q, int tags_col, int paged,
                record_fn fn, void *ud, int *seen) {
  int rc, i, n;
  if (seen != NULL) *seen = 0;
  if ((rc = ready(h)) != LUPINE_OK) return rc;
  do {
    page p = {tags_col, 0, 0, 0, NULL};
    q->limit = paged ? PAGE : 0;
    rc = read_records(h, q, &p);
    n = p.n;
    for (i = 0; i < n; i++) {
      if (rc == LUPINE_OK) {
        int stop = fn(ud, p.rec[i]);
        if (seen != NULL) (*seen)++;
        if (stop != 0)
          rc = failf(h, LUPINE_ABORT, "%s: stopped by the callback (it returned %d)", fname,
                     stop);
      }
      if (paged) q->past = (long long)integer(p.rec[i], 0);   /* column 0: the seq */
      free(p.rec[i]);
    }
    free(p.rec);
  } while (rc == LUPINE_OK && paged && n == PAGE);
  return rc == LUPINE_OK ? clear(h) : rc;
}

/* The one record q describes into *out (NULL if there is none). */
static int one_record(lupine *h, lp_records *q, int tags_col, record **out) {
  page p = {tags_col, 0, 0, 0, NULL};
  int rc;
  *out = NULL;
  if ((rc = ready(h)) != LUPINE_OK) return rc;
  q->limit = 1;
  rc = read_records(h, q, &p);
  if (rc == LUPINE_OK && p.n == 1) *out = p.rec[0];
  else if (p.n == 1) free(p.rec[0]);
  free(p.rec);
  return rc == LUPINE_OK ? clear(h) : rc;
}

/* Raise NOTFOUND for a name with no row: "<what> '<name>' not found",
** with near names (from the query names_query) suggested; j->arg is what
** and j->data the queries: by name, then all names. */
static int p_check_name(lua_State *L) {
  job *j = job_of(L);
  const char *const *queries = j->queries;
  lp_runtime *rt = j->h->rt;
  int i, top;
  open_catalog(L, j);
  top = lua_gettop(L);
  lua_pushstring(L, j->key);
  if (lp_catalog_query(L, rt->catalog, queries[0], top + 1, 1, rt->err,
                       sizeof rt->err) != LUPINE_OK)
    return throw(L, j, LUPINE_CATALOG, rt->err);
  if (lua_rawgeti(L, -1, 1) == LUA_TTABLE) return 0;   /* it exists */
  lua_settop(L, top);
  if (lp_catalog_query(L, rt->catalog, queries[1], 0, 0, rt->err, sizeof rt->err) != LUPINE_OK)
    return throw(L, j, LUPINE_CATALOG, rt->err);
  /* stack: rows; the candidates are their names */
  lua_createtable(L, (int)luaL_len(L, -1), 0);
  for (i = 1; lua_rawgeti(L, top + 1, i) == LUA_TTABLE; i++) {
    lua_getfield(L, -1, "name");
    lua_rawseti(L, top + 2, i);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  module(L, "lupine.names");
  lua_getfield(L, -1, "suggest");
  lua_pushstring(L, j->key);
  lua_pushvalue(L, top + 2);
  lua_call(L, 2, 1);
  j->rc = LUPINE_NOTFOUND;
  return luaL_error(L, "%s '%s' not found%s", j->arg, j->key, lua_tostring(L, -1));
}

/* ---- filters ---- */

struct lupine_filter {
  lupine *h;
  char *name, *status;
  char *tags[LP_FILTER_MAX];
  int ntags;
  lp_md_cond md[LP_FILTER_MAX];   /* their key and text are the filter's own copies */
  int nmd;
};

int lupine_filter_new(lupine *h, lupine_filter **out) {
  int rc;
  if (out != NULL) *out = NULL;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (out == NULL) return misuse(h, "lupine_filter_new", "out is NULL");
  if ((*out = calloc(1, sizeof **out)) == NULL) return fail(h, LUPINE_NOMEM, "out of memory");
  (*out)->h = h;
  return clear(h);
}

void lupine_filter_free(lupine_filter *f) {
  int i;
  if (f == NULL) return;
  free(f->name);
  free(f->status);
  for (i = 0; i < f->ntags; i++) free(f->tags[i]);
  for (i = 0; i < f->nmd; i++) {
    free((char *)f->md[i].key);
    free((char *)f->md[i].text);
  }
  free(f);
}

/* A copy of s into *slot, replacing what was there. */
static int set_text(lupine_filter *f, char **slot, const char *s) {
  char *copy = strdup(s);
  if (copy == NULL) return fail(f->h, LUPINE_NOMEM, "out of memory");
  free(*slot);
  *slot = copy;
  return clear(f->h);
}

int lupine_filter_name(lupine_filter *f, const char *name) {
  if (f == NULL) return LUPINE_MISUSE;
  if (name == NULL) return misuse(f->h, "lupine_filter_name", "name is NULL");
  return set_text(f, &f->name, name);
}

int lupine_filter_status(lupine_filter *f, const char *status) {
  if (f == NULL) return LUPINE_MISUSE;
  if (status == NULL) return misuse(f->h, "lupine_filter_status", "status is NULL");
  return set_text(f, &f->status, status);
}

int lupine_filter_tag(lupine_filter *f, const char *tag) {
  int rc;
  if (f == NULL) return LUPINE_MISUSE;
  if (tag == NULL) return misuse(f->h, "lupine_filter_tag", "tag is NULL");
  if (f->ntags == LP_FILTER_MAX)
    return failf(f->h, LUPINE_MISUSE, "lupine_filter_tag: at most %d tags", LP_FILTER_MAX);
  f->tags[f->ntags] = NULL;
  if ((rc = set_text(f, &f->tags[f->ntags], tag)) == LUPINE_OK) f->ntags++;
  return rc;
}

/* Whether s reads as a finite number, into *x. */
static int reads_as_number(const char *s, double *x) {
  char *end;
  *x = strtod(s, &end);
  return end != s && *end == '\0' && isfinite(*x);
}

int lupine_filter_metadata(lupine_filter *f, const char *key, const char *op,
                           const char *value) {
  static const char fname[] = "lupine_filter_metadata";
  static const char *const ops[] = {"=", "<", "<=", ">", ">="};
  static const int codes[] = {LP_MD_EQ, LP_MD_LT, LP_MD_LE, LP_MD_GT, LP_MD_GE};
  lp_md_cond c = {0};
  int i;
  if (f == NULL) return LUPINE_MISUSE;
  if (key == NULL) return misuse(f->h, fname, "key is NULL");
  if ((op == NULL) != (value == NULL))
    return misuse(f->h, fname, "op and value go together (both NULL: the key is there)");
  if (f->nmd == LP_FILTER_MAX)
    return failf(f->h, LUPINE_MISUSE, "%s: at most %d conditions", fname, LP_FILTER_MAX);
  c.op = LP_MD_ANY;
  if (op != NULL) {
    for (i = 0; i < 5 && strcmp(ops[i], op) != 0; i++) {}
    if (i == 5)
      return failf(f->h, LUPINE_MISUSE, "%s: unknown operator '%s' (one of =, <, <=, >, >=)",
                   fname, op);
    c.op = codes[i];
    c.numeric = reads_as_number(value, &c.number);
    if (c.op != LP_MD_EQ && !c.numeric)
      return failf(f->h, LUPINE_MISUSE, "%s: '%s' compares numbers, but '%s' is not a number",
                   fname, op, value);
  }
  if ((c.key = strdup(key)) == NULL ||
      (c.op == LP_MD_EQ && (c.text = strdup(value)) == NULL)) {
    free((char *)c.key);
    return fail(f->h, LUPINE_NOMEM, "out of memory");
  }
  f->md[f->nmd++] = c;
  return clear(f->h);
}

/*
** A listing of versions or runs by the filter f (NULL: everything) through
** fn; when a name selects nothing, LUPINE_NOTFOUND if nothing has that
** name (what, and its queries: by name, all names).
*/
static int list_filtered(lupine *h, const char *fname, int what, const lupine_filter *f,
                         const char *what_name, const char *const *name_queries, record_fn fn,
                         void *ud) {
  lp_records q = {0};
  int rc, seen;
  if (f != NULL) {
    if (f->h != h) return misuse(h, fname, "the filter was made for another handle");
    if (f->status != NULL && what != LP_LIST_RUNS)
      return misuse(h, fname, "a filter by status applies to runs only");
    q.name = f->name;
    q.status = f->status;
    q.tags = (const char *const *)f->tags;
    q.ntags = f->ntags;
    q.md = f->md;
    q.nmd = f->nmd;
  }
  q.what = what;
  rc = each(h, fname, &q, what == LP_LIST_RUNS ? LP_RUN_TAGS : LP_AV_TAGS, 1, fn, ud, &seen);
  if (rc == LUPINE_OK && seen == 0 && q.name != NULL) {
    job j = {0};
    j.h = h;
    j.key = q.name;
    j.arg = what_name;
    j.queries = name_queries;
    if ((rc = protect(h->L, p_check_name, &j, 0)) == LUPINE_OK) clear(h);
  }
  return rc;
}

/* ---- artifact versions ---- */

int lupine_av_find(lupine *h, const char *name_or_id, const char *version,
                   lupine_artifact_version **out) {
  void *made;
  int rc = find(h, "lupine_av_find", &version_finder, name_or_id, version, out != NULL, &made);
  if (out != NULL) *out = made;
  return rc;
}

void lupine_av_free(lupine_artifact_version *v) {
  free(v);
}

#define AV_FIELD(fn, col) \
  const char *fn(const lupine_artifact_version *v) { return v == NULL ? NULL : v->r.s[col]; }
AV_FIELD(lupine_av_id, LP_AV_ID)
AV_FIELD(lupine_av_name, LP_AV_NAME)
AV_FIELD(lupine_av_version, LP_AV_VERSION)
AV_FIELD(lupine_av_type, LP_AV_TYPE)
AV_FIELD(lupine_av_data_type, LP_AV_DATA_TYPE)
AV_FIELD(lupine_av_save_type, LP_AV_SAVE_TYPE)
AV_FIELD(lupine_av_content_hash, LP_AV_HASH)
AV_FIELD(lupine_av_created, LP_AV_CREATED)

int64_t lupine_av_size(const lupine_artifact_version *v) {
  return integer(v != NULL ? &v->r : NULL, LP_AV_SIZE);
}

int64_t lupine_av_stored_size(const lupine_artifact_version *v) {
  return integer(v != NULL ? &v->r : NULL, LP_AV_STORED_SIZE);
}

int lupine_av_tag_count(const lupine_artifact_version *v) {
  return v == NULL ? 0 : v->r.ntags;
}

const char *lupine_av_tag(const lupine_artifact_version *v, int i) {
  return tag(v != NULL ? &v->r : NULL, i);
}

/* Column col of v for a message ("?" where the catalog has none). */
static const char *shown(const lupine_artifact_version *v, int col) {
  return v->r.s[col] != NULL ? v->r.s[col] : "?";
}

/* rc, with the message "cannot load artifact 'x' version 1 (<id>): why". */
static int cannot_load(lupine *h, const lupine_artifact_version *v, int rc, const char *why) {
  return failf(h, rc, "cannot load artifact '%s' version %s (%s): %s", shown(v, LP_AV_NAME),
               shown(v, LP_AV_VERSION), shown(v, LP_AV_ID), why);
}

/* The store that holds v's object, with the catalog open. */
static int store_of(lupine *h, const char *fname, const lupine_artifact_version *v,
                    lp_store **store) {
  char err[LP_ERRSZ];
  int rc;
  if ((rc = ready(h)) != LUPINE_OK) return rc;
  if (v->r.s[LP_AV_HASH] == NULL || v->r.s[LP_AV_SIZE] == NULL)
    return misuse(h, fname, "the version has no content hash");
  *store = h->rt->store;   /* versions of old catalogs: the active one */
  if (v->r.s[LP_AV_STORE] != NULL &&
      (rc = lp_runtime_store(h->rt, v->r.s[LP_AV_STORE], store, err, sizeof err)) != LUPINE_OK)
    return cannot_load(h, v, rc, err);
  return LUPINE_OK;
}

/* The stored bytes of v, checked against its hash; the message names it. */
static int read_bytes(lupine *h, const char *fname, const lupine_artifact_version *v,
                      unsigned char **data, size_t *len) {
  char err[LP_ERRSZ];
  lp_store *store;
  int rc;
  if ((rc = store_of(h, fname, v, &store)) != LUPINE_OK) return rc;
  if ((rc = lp_store_get(store, v->r.s[LP_AV_HASH], (uint64_t)lupine_av_size(v), data, len,
                         err, sizeof err)) != LUPINE_OK)
    return cannot_load(h, v, rc, err);
  return LUPINE_OK;
}

/* Is v a file or folder (its object an archive, its value a path)? */
static int is_path(const lupine_artifact_version *v) {
  return v->r.s[LP_AV_DATA_TYPE] != NULL && lp_versions_is_file(v->r.s[LP_AV_DATA_TYPE]);
}

/* The path of a read-only copy of the file or folder v, into out, as
** loading it in Lua gives. */
static int local_copy(lupine *h, const char *fname, const lupine_artifact_version *v, char *out,
                      size_t outsz) {
  lp_store *store;
  int rc;
  if ((rc = store_of(h, fname, v, &store)) != LUPINE_OK) return rc;
  if ((rc = lp_versions_materialize(h->rt, store, v->r.s[LP_AV_HASH], (uint64_t)lupine_av_size(v), out,
                           outsz)) != LUPINE_OK)
    return cannot_load(h, v, rc, h->rt->err);
  return LUPINE_OK;
}

int lupine_av_read(lupine *h, const lupine_artifact_version *v, unsigned char **data,
                   size_t *len) {
  static const char fname[] = "lupine_av_read";
  int rc;
  if (data != NULL) *data = NULL;
  if (len != NULL) *len = 0;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (v == NULL) return misuse(h, fname, "v is NULL");
  if (data == NULL || len == NULL) return misuse(h, fname, "data or len is NULL");
  if ((rc = read_bytes(h, fname, v, data, len)) != LUPINE_OK) {
    *data = NULL;
    *len = 0;
    return rc;
  }
  return clear(h);
}

int lupine_av_path(lupine *h, const lupine_artifact_version *v, char **path) {
  static const char fname[] = "lupine_av_path";
  char buf[PATH_MAX];
  int rc;
  if (path != NULL) *path = NULL;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (v == NULL) return misuse(h, fname, "v is NULL");
  if (path == NULL) return misuse(h, fname, "path is NULL");
  if (!is_path(v))
    return failf(h, LUPINE_MISUSE, "%s: artifact '%s' version %s (%s) is a value (%s), not "
                 "a file or folder", fname, shown(v, LP_AV_NAME), shown(v, LP_AV_VERSION),
                 shown(v, LP_AV_ID), shown(v, LP_AV_DATA_TYPE));
  if ((rc = local_copy(h, fname, v, buf, sizeof buf)) != LUPINE_OK) return rc;
  if ((*path = strdup(buf)) == NULL) return fail(h, LUPINE_NOMEM, "out of memory");
  return clear(h);
}

void lupine_free(void *p) {
  free(p);
}

/* In the target state: decode the bytes, through its restore hook; j->arg
** names them in the message ("artifact 'x' version 1 (<id>)"). */
static int p_decode(lua_State *L) {
  job *j = job_of(L);
  char err[LP_ERRSZ];
  int rc = lp_codec_decode(L, j->data, j->len, err, sizeof err);
  if (rc != LUPINE_OK) {
    j->rc = rc;
    return luaL_error(L, "cannot load %s: %s", j->arg, err);
  }
  return 1;
}

/* In the target state: the path of a file or folder's copy. */
static int p_push_path(lua_State *L) {
  lua_pushstring(L, job_of(L)->key);
  return 1;
}

/* Decode len bytes of CBOR into L, pushing the value; what names them in
** a message. */
static int decode_into(lupine *h, lua_State *L, const unsigned char *data, size_t len,
                       const char *what) {
  job j = {0};
  j.h = h;
  j.data = data;
  j.len = len;
  j.arg = what;
  return protect(L, p_decode, &j, 1);
}

int lupine_av_load(lupine *h, const lupine_artifact_version *v, lua_State *L) {
  static const char fname[] = "lupine_av_load";
  char path[PATH_MAX], what[LP_ERRSZ];
  unsigned char *data = NULL;
  size_t len;
  job j = {0};
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (v == NULL) return misuse(h, fname, "v is NULL");
  if (L == NULL) return misuse(h, fname, "L is NULL");
  j.h = h;
  if (is_path(v)) {   /* its value is a path, as in Lua */
    if ((rc = local_copy(h, fname, v, path, sizeof path)) != LUPINE_OK) return rc;
    j.key = path;
    rc = protect(L, p_push_path, &j, 1);
  } else {
    if ((rc = read_bytes(h, fname, v, &data, &len)) != LUPINE_OK) return rc;
    lp_errf(what, sizeof what, "artifact '%s' version %s (%s)", shown(v, LP_AV_NAME),
            shown(v, LP_AV_VERSION), shown(v, LP_AV_ID));
    rc = decode_into(h, L, data, len, what);
    free(data);
  }
  return rc == LUPINE_OK ? clear(h) : rc;
}

/* C calls through a function pointer of another type are undefined: a
** small adapter per callback type. */
typedef struct adapt {
  lupine_av_fn av;
  lupine_run_fn run;
  lupine_step_run_fn step_run;
  lupine_io_fn io;
  lupine_metadata_fn md;
  void *ud;
} adapt;

static int call_av(void *ud, const record *r) {
  const adapt *a = ud;
  return a->av(a->ud, (const lupine_artifact_version *)r);
}

static int call_run(void *ud, const record *r) {
  const adapt *a = ud;
  return a->run(a->ud, (const lupine_run *)r);
}

static int call_step_run(void *ud, const record *r) {
  const adapt *a = ud;
  return a->step_run(a->ud, (const lupine_step_run *)r);
}

static int call_io(void *ud, const record *r) {
  const adapt *a = ud;
  return a->io(a->ud, r->s[LP_AV_LINK], (const lupine_artifact_version *)r);
}

static int call_md(void *ud, const record *r) {
  const adapt *a = ud;
  return a->md(a->ud, r->s[LP_MD_KEY], (const lupine_value *)r);
}

static const char *const artifact_name_queries[] = {"artifact_by_name", "artifact_names"};
static const char *const pipeline_name_queries[] = {"pipeline_by_name", "pipeline_names"};

int lupine_av_list(lupine *h, const lupine_filter *f, lupine_av_fn fn, void *ud) {
  adapt a = {0};
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (fn == NULL) return misuse(h, "lupine_av_list", "fn is NULL");
  a.av = fn;
  a.ud = ud;
  return list_filtered(h, "lupine_av_list", LP_LIST_VERSIONS, f, "artifact",
                       artifact_name_queries, call_av, &a);
}

/* LUPINE_OK if h is usable and x (named xname) is not NULL. */
static int check_object(lupine *h, const char *fname, const void *x, const char *xname) {
  char what[32];
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (x != NULL) return LUPINE_OK;
  snprintf(what, sizeof what, "%s is NULL", xname);
  return misuse(h, fname, what);
}

int lupine_av_producer(lupine *h, const lupine_artifact_version *v, lupine_step_run **out) {
  static const char fname[] = "lupine_av_producer";
  lp_records q = {0};
  record *r;
  int rc;
  if (out != NULL) *out = NULL;
  if ((rc = check_object(h, fname, v, "v")) != LUPINE_OK) return rc;
  if (out == NULL) return misuse(h, fname, "out is NULL");
  if (v->r.s[LP_AV_PRODUCER] == NULL) return clear(h);
  q.what = LP_LIST_STEP_RUNS;
  q.id = v->r.s[LP_AV_PRODUCER];
  rc = one_record(h, &q, -1, &r);
  *out = (lupine_step_run *)r;
  return rc;
}

int lupine_av_consumers(lupine *h, const lupine_artifact_version *v, lupine_step_run_fn fn,
                        void *ud) {
  static const char fname[] = "lupine_av_consumers";
  lp_records q = {0};
  adapt a = {0};
  int rc;
  if ((rc = check_object(h, fname, v, "v")) != LUPINE_OK) return rc;
  if (fn == NULL) return misuse(h, fname, "fn is NULL");
  q.what = LP_LIST_CONSUMERS;
  q.id = v->r.s[LP_AV_ID];
  a.step_run = fn;
  a.ud = ud;
  return each(h, fname, &q, -1, 1, call_step_run, &a, NULL);
}

/* ---- metadata ---- */

static int metadata(lupine *h, const char *fname, const void *x, const char *xname,
                    const char *entity, const record *r, int id_col, lupine_metadata_fn fn,
                    void *ud) {
  lp_records q = {0};
  adapt a = {0};
  int rc;
  if ((rc = check_object(h, fname, x, xname)) != LUPINE_OK) return rc;
  if (fn == NULL) return misuse(h, fname, "fn is NULL");
  q.what = LP_LIST_METADATA;
  q.kind = entity;
  q.id = r->s[id_col];
  a.md = fn;
  a.ud = ud;
  return each(h, fname, &q, -1, 0, call_md, &a, NULL);
}

int lupine_av_metadata(lupine *h, const lupine_artifact_version *v, lupine_metadata_fn fn,
                       void *ud) {
  return metadata(h, "lupine_av_metadata", v, "v", "artifact_version", v ? &v->r : NULL,
                  LP_AV_ID, fn, ud);
}

int lupine_run_metadata(lupine *h, const lupine_run *r, lupine_metadata_fn fn, void *ud) {
  return metadata(h, "lupine_run_metadata", r, "r", "pipeline_run", r ? &r->r : NULL,
                  LP_RUN_ID, fn, ud);
}

int lupine_step_run_metadata(lupine *h, const lupine_step_run *s, lupine_metadata_fn fn,
                             void *ud) {
  return metadata(h, "lupine_step_run_metadata", s, "s", "step_run", s ? &s->r : NULL,
                  LP_SR_ID, fn, ud);
}

/* The bytes of a value that is a CBOR string (text or bytes: a Lua string
** that is not UTF-8, or holds a NUL, which the catalog keeps no text copy
** of), or NULL. */
static const char *cbor_string(const lupine_value *x, size_t *len) {
  const unsigned char *p = (const unsigned char *)x->r.s[LP_MD_VALUE];
  size_t n = x->r.len[LP_MD_VALUE], head, i;
  uint64_t count;
  if (n == 0 || (p[0] >> 5 != 2 && p[0] >> 5 != 3)) return NULL;
  if ((p[0] & 31) < 24) head = 1, count = p[0] & 31;
  else if ((p[0] & 31) <= 27) {
    head = 1 + ((size_t)1 << ((p[0] & 31) - 24));
    if (n < head) return NULL;
    for (count = 0, i = 1; i < head; i++) count = count << 8 | p[i];
  } else return NULL;   /* indefinite lengths: the codec writes none */
  if (count != n - head) return NULL;
  *len = (size_t)count;
  return (const char *)p + head;
}

int lupine_value_type(const lupine_value *x) {
  unsigned char first;
  size_t len;
  if (x == NULL) return LUA_TNONE;
  if (x->r.s[LP_MD_NUMBER] != NULL) return LUA_TNUMBER;
  if (x->r.s[LP_MD_TEXT] != NULL || cbor_string(x, &len) != NULL) return LUA_TSTRING;
  /* CBOR's simple values false (0xf4) and true (0xf5); anything else that
  ** Lua stores and is not a number or a string is a table */
  first = x->r.len[LP_MD_VALUE] > 0 ? (unsigned char)x->r.s[LP_MD_VALUE][0] : 0;
  return first == 0xf4 || first == 0xf5 ? LUA_TBOOLEAN : LUA_TTABLE;
}

double lupine_value_number(const lupine_value *x) {
  switch (lupine_value_type(x)) {
    case LUA_TNUMBER: return strtod(x->r.s[LP_MD_NUMBER], NULL);
    case LUA_TBOOLEAN: return (unsigned char)x->r.s[LP_MD_VALUE][0] == 0xf5;
    default: return 0;
  }
}

const char *lupine_value_text(const lupine_value *x, size_t *len) {
  size_t n = 0;
  const char *text = NULL;
  if (x != NULL && x->r.s[LP_MD_TEXT] != NULL) {
    text = x->r.s[LP_MD_TEXT];
    n = x->r.len[LP_MD_TEXT];
  } else if (x != NULL && x->r.s[LP_MD_NUMBER] == NULL) text = cbor_string(x, &n);
  if (len != NULL) *len = text != NULL ? n : 0;
  return text;
}

const unsigned char *lupine_value_cbor(const lupine_value *x, size_t *len) {
  if (len != NULL) *len = 0;
  if (x == NULL || len == NULL) return NULL;
  *len = x->r.len[LP_MD_VALUE];
  return (const unsigned char *)x->r.s[LP_MD_VALUE];
}

int lupine_value_load(lupine *h, const lupine_value *x, lua_State *L) {
  char what[LP_ERRSZ];
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (x == NULL) return misuse(h, "lupine_value_load", "x is NULL");
  if (L == NULL) return misuse(h, "lupine_value_load", "L is NULL");
  lp_errf(what, sizeof what, "metadata '%s'", x->r.s[LP_MD_KEY]);
  rc = decode_into(h, L, (const unsigned char *)x->r.s[LP_MD_VALUE], x->r.len[LP_MD_VALUE],
                   what);
  return rc == LUPINE_OK ? clear(h) : rc;
}

/* ---- step runs ---- */

int lupine_step_run_find(lupine *h, const lupine_run *r, const char *name,
                         lupine_step_run **out) {
  static const char fname[] = "lupine_step_run_find";
  lp_records q = {0};
  record *found;
  int rc;
  if (out != NULL) *out = NULL;
  if ((rc = check_object(h, fname, r, "r")) != LUPINE_OK) return rc;
  if (name == NULL) return misuse(h, fname, "name is NULL");
  if (out == NULL) return misuse(h, fname, "out is NULL");
  q.what = LP_LIST_STEP_RUNS;
  q.run = r->r.s[LP_RUN_ID];
  q.name = name;
  rc = one_record(h, &q, -1, &found);
  if ((*out = (lupine_step_run *)found) == NULL && rc == LUPINE_OK)
    return failf(h, LUPINE_NOTFOUND, "pipeline run '%s' has no step run '%s'",
                 r->r.s[LP_RUN_NAME], name);
  return rc;
}

int lupine_step_run_list(lupine *h, const lupine_run *r, lupine_step_run_fn fn, void *ud) {
  static const char fname[] = "lupine_step_run_list";
  lp_records q = {0};
  adapt a = {0};
  int rc;
  if ((rc = check_object(h, fname, r, "r")) != LUPINE_OK) return rc;
  if (fn == NULL) return misuse(h, fname, "fn is NULL");
  q.what = LP_LIST_STEP_RUNS;
  q.run = r->r.s[LP_RUN_ID];
  a.step_run = fn;
  a.ud = ud;
  return each(h, fname, &q, -1, 1, call_step_run, &a, NULL);
}

void lupine_step_run_free(lupine_step_run *s) {
  free(s);
}

#define SR_FIELD(fn, col) \
  const char *fn(const lupine_step_run *s) { return s == NULL ? NULL : s->r.s[col]; }
SR_FIELD(lupine_step_run_id, LP_SR_ID)
SR_FIELD(lupine_step_run_run_id, LP_SR_RUN)
SR_FIELD(lupine_step_run_name, LP_SR_NAME)
SR_FIELD(lupine_step_run_step_name, LP_SR_STEP)
SR_FIELD(lupine_step_run_status, LP_SR_STATUS)
SR_FIELD(lupine_step_run_start_time, LP_SR_START)
SR_FIELD(lupine_step_run_end_time, LP_SR_END)
SR_FIELD(lupine_step_run_error, LP_SR_ERROR)
SR_FIELD(lupine_step_run_traceback, LP_SR_TRACEBACK)
SR_FIELD(lupine_step_run_logs, LP_SR_LOGS)

int lupine_step_run_attempts(const lupine_step_run *s) {
  return (int)integer(s != NULL ? &s->r : NULL, LP_SR_ATTEMPTS);
}

/* The versions linked to s as kind ("input", "output"), to fn. */
static int links(lupine *h, const char *fname, const lupine_step_run *s, const char *kind,
                 lupine_io_fn fn, void *ud) {
  lp_records q = {0};
  adapt a = {0};
  int rc;
  if ((rc = check_object(h, fname, s, "s")) != LUPINE_OK) return rc;
  if (fn == NULL) return misuse(h, fname, "fn is NULL");
  q.what = LP_LIST_LINKS;
  q.id = s->r.s[LP_SR_ID];
  q.kind = kind;
  a.io = fn;
  a.ud = ud;
  return each(h, fname, &q, LP_AV_TAGS, 0, call_io, &a, NULL);
}

int lupine_step_run_inputs(lupine *h, const lupine_step_run *s, lupine_io_fn fn, void *ud) {
  return links(h, "lupine_step_run_inputs", s, "input", fn, ud);
}

int lupine_step_run_outputs(lupine *h, const lupine_step_run *s, lupine_io_fn fn, void *ud) {
  return links(h, "lupine_step_run_outputs", s, "output", fn, ud);
}

/* ---- pipeline runs ---- */

int lupine_run_find(lupine *h, const char *name_or_id, lupine_run **out) {
  void *made;
  int rc = find(h, "lupine_run_find", &run_finder, name_or_id, NULL, out != NULL, &made);
  if (out != NULL) *out = made;
  return rc;
}

int lupine_exec_run(lupine *h, int i, lupine_run **out) {
  static const char fname[] = "lupine_exec_run";
  lp_records q = {0};
  record *found;
  int rc;
  if (out != NULL) *out = NULL;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (out == NULL) return misuse(h, fname, "out is NULL");
  if (i < 0 || i >= h->nmade)
    return failf(h, LUPINE_NOTFOUND, "%s: no run %d (the last lupine_exec_* call started %d)",
                 fname, i, h->nmade);
  q.what = LP_LIST_RUNS;
  q.id = h->made[i].id;
  rc = one_record(h, &q, LP_RUN_TAGS, &found);
  if ((*out = (lupine_run *)found) == NULL && rc == LUPINE_OK)   /* deleted since */
    return failf(h, LUPINE_NOTFOUND, "%s: run %d (%s) is no longer in the catalog", fname, i,
                 h->made[i].id);
  return rc;
}

void lupine_run_free(lupine_run *r) {
  free(r);
}

#define RUN_FIELD(fn, col) \
  const char *fn(const lupine_run *r) { return r == NULL ? NULL : r->r.s[col]; }
RUN_FIELD(lupine_run_id, LP_RUN_ID)
RUN_FIELD(lupine_run_name, LP_RUN_NAME)
RUN_FIELD(lupine_run_pipeline, LP_RUN_PIPELINE)
RUN_FIELD(lupine_run_status, LP_RUN_STATUS)
RUN_FIELD(lupine_run_start_time, LP_RUN_START)
RUN_FIELD(lupine_run_end_time, LP_RUN_END)
RUN_FIELD(lupine_run_error, LP_RUN_ERROR)

int lupine_run_tag_count(const lupine_run *r) {
  return r == NULL ? 0 : r->r.ntags;
}

const char *lupine_run_tag(const lupine_run *r, int i) {
  return tag(r != NULL ? &r->r : NULL, i);
}

int lupine_run_list(lupine *h, const lupine_filter *f, lupine_run_fn fn, void *ud) {
  adapt a = {0};
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (fn == NULL) return misuse(h, "lupine_run_list", "fn is NULL");
  a.run = fn;
  a.ud = ud;
  return list_filtered(h, "lupine_run_list", LP_LIST_RUNS, f, "pipeline",
                       pipeline_name_queries, call_run, &a);
}
