/* SPDX-License-Identifier: MIT */
/*
** api.c: the public entry points (lupine.h). Each checks its handle and
** arguments and leaves a message naming the culprit on the handle when
** something fails.
**
** Everything that touches a lua_State runs inside lua_pcall (see
** protect): Lua raises on allocation failure, and an unprotected raise
** would end the host. The Lua client (lupine.client) does the lookups, so
** C hosts and Lua scripts find versions and runs by the same rules and get
** the same messages; listings read the catalog directly, a page at a time.
** Objects handed to the host (lupine_version, lupine_run) are plain C
** copies: the host may keep them after the Lua values are gone, and
** callbacks run outside any protected call, free to call back in.
*/
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
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

struct lupine {
  lua_State *L;
  lp_runtime *rt;       /* NULL if the handle did not open */
  char *err;            /* the message: errbuf, or a longer one malloc'd */
  char errbuf[LP_ERRSZ];
  home_text *homes;
  volatile sig_atomic_t depth;   /* calls of this handle's into Lua under way */
};

/*
** A version or run: string fields pointing into text (NULL where the
** catalog has none), and the numbers. seq orders listings.
*/
#define RECORD(nstr)  \
  const char *s[nstr]; \
  int64_t seq, size, stored_size

enum { V_ID, V_NAME, V_VERSION, V_TYPE, V_DATA_TYPE, V_HASH, V_CREATED, V_STORE, V_NFIELDS };
static const char *const version_keys[V_NFIELDS] = {
  "id", "name", "version", "type", "data_type", "content_hash", "created",
  "artifact_store_id"};
struct lupine_version { RECORD(V_NFIELDS); };

enum { R_ID, R_NAME, R_PIPELINE, R_STATUS, R_START, R_END, R_ERROR, R_NFIELDS };
static const char *const run_keys[R_NFIELDS] = {
  "id", "name", "pipeline_name", "status", "start_time", "end_time", "error"};
struct lupine_run { RECORD(R_NFIELDS); };

/* Listings read this many rows per protected call. */
#define PAGE 256

/* Keep msg as the handle's message, whole (a script's error with its
** traceback can be long); cut between two characters only if memory for
** it runs out. */
static int fail(lupine *h, int rc, const char *msg) {
  size_t n;
  char *p;
  if (msg == NULL) msg = "(error object is not a string)";
  if (msg == h->err) return rc;
  n = strlen(msg);
  if (h->err != h->errbuf) free(h->err);
  h->err = h->errbuf;
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

static void clear(lupine *h) {
  h->err[0] = '\0';
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
** argument): the handle, and rc, which it sets before raising when it
** knows the code (else the message is classified).
*/
typedef struct job {
  lupine *h;
  int rc;
  const char *key, *arg;    /* string arguments */
  void *out;                /* what it made */
  lua_CFunction fn[3];      /* register_materializer's */
  const unsigned char *data;
  size_t len;
  const lupine_version *v;
  /* listings */
  int64_t before;           /* rows with seq below this */
  int n;                    /* rows in page */
  void *page[PAGE];
} job;

/* The code for an error the Lua client raised, from its message: they
** are pinned by the tests, and "not found" is what a host must tell apart. */
static int classify(const char *msg) {
  if (msg == NULL) return LUPINE_ERROR;
  if (strstr(msg, "' not found") != NULL || strstr(msg, "' has no version '") != NULL)
    return LUPINE_NOTFOUND;
  if (strstr(msg, "is ambiguous: it matches") != NULL || strncmp(msg, "bad argument", 12) == 0)
    return LUPINE_MISUSE;
  return LUPINE_ERROR;
}

/* ---- interrupting ---- */

/* Hook set by lupine_interrupt: stop the Lua code running (as lua.c does
** on Ctrl-C). */
static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  lp_runtime_of(L)->interrupted = 0;   /* answered here: the next run must not see it */
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
  if (h->depth++ == 0) forget_interrupt(h);
}

static void leave(lupine *h) {
  if (--h->depth == 0) forget_interrupt(h);
}

void lupine_interrupt(lupine *h) {
  if (h == NULL || h->rt == NULL) return;
  /* as sqlite3_interrupt: with nothing running it is a no-op */
  if (h->depth == 0 && !h->rt->running) return;
  h->rt->interrupted = 1;   /* a run in progress looks at this */
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
  else if (j->rc == LUPINE_OK) j->rc = classify(lua_tostring(L, -1));
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

/* Push package.loaded[name] (a module the runtime loaded). */
static void module(lua_State *L, const char *name) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
}

/* ---- opening and closing ---- */

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "lupine: unprotected error in the Lua state (%s)\n",
          msg != NULL ? msg : "error object is not a string");
  return 0;   /* Lua then aborts */
}

/* Open the libraries and the module, and the runtime of the state. */
static int p_setup(lua_State *L) {
  job *j = job_of(L);
  luaL_openlibs(L);
  luaL_requiref(L, "lupine", luaopen_lupine, 1);
  j->out = lp_runtime_of(L);
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
  if ((rc = lp_runtime_set_home(rt, home)) != LUPINE_OK) {
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
  if (h->err != h->errbuf) free(h->err);
  free(h);
  return LUPINE_OK;
}

const char *lupine_errmsg(const lupine *h) {
  return h == NULL ? "no runtime (NULL handle)" : h->err;
}

const char *lupine_errstr(int rc) {
  static const char *const names[] = {
    "ok", "error", "misuse", "out of memory", "I/O error", "corrupt data", "not found",
    "catalog error", "a pipeline run failed", "script error", "conflicts with what is stored"};
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

static int p_open_catalog(lua_State *L) {
  open_catalog(L, job_of(L));
  return 0;
}

/* The runtime's home changes with lupine.set_home, and frees the old
** string: the handle gives out copies of its own, one per folder. */
const char *lupine_home(lupine *h) {
  job j = {0};
  home_text *t;
  size_t n;
  if (usable(h) != LUPINE_OK) return NULL;
  j.h = h;
  if (protect(h->L, p_open_catalog, &j, 0) != LUPINE_OK) return NULL;
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

/* ---- running Lua ---- */

/* Message handler: a string error with a traceback, as lua.c shows it. An
** error object (a failed run) already says where: it is shown as it
** prints itself. */
static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    luaL_tolstring(L, 1, NULL);
    return 1;
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Call the chunk that sits below its nargs arguments on top of the stack. */
static int call_chunk(lupine *h, int nargs) {
  lua_State *L = h->L;
  int base = lua_gettop(L) - nargs, failed_before = h->rt->failed_runs, status;
  int was = h->rt->to_parent;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  enter(h);
  status = lua_pcall(L, nargs, 0, base);
  no_escape(h, was);
  leave(h);
  if (status != LUA_OK) {
    fail(h, status == LUA_ERRMEM ? LUPINE_NOMEM : LUPINE_SCRIPT, lua_tostring(L, -1));
    lua_settop(L, base - 1);
    return status == LUA_ERRMEM ? LUPINE_NOMEM : LUPINE_SCRIPT;
  }
  lua_settop(L, base - 1);
  clear(h);
  if (h->rt->failed_runs > failed_before) {
    /* runs that do not raise (raise_on_failure = false): the last one's
    ** message, as a raising run gives it */
    const char *last = h->rt->run_failure != NULL ? h->rt->run_failure : "a pipeline run failed";
    int n = h->rt->failed_runs - failed_before;
    if (n == 1) return fail(h, LUPINE_RUNFAILED, last);
    return failf(h, LUPINE_RUNFAILED, "%d pipeline runs failed; the last: %s", n, last);
  }
  return LUPINE_OK;
}

typedef struct file_args {
  const char *path;
  int argc;
  char **argv;
} file_args;

/* Set `arg` as lua.c builds it (the script at 0, its arguments from 1),
** load the script, and leave it with its arguments on the stack. */
static int p_load_file(lua_State *L) {
  job *j = job_of(L);
  const file_args *a = j->out;
  int i, status;
  lua_settop(L, 0);
  lua_createtable(L, a->argc, 1);
  lua_pushstring(L, a->path);
  lua_rawseti(L, -2, 0);
  for (i = 0; i < a->argc; i++) {
    lua_pushstring(L, a->argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setglobal(L, "arg");
  if ((status = luaL_loadfile(L, a->path)) != LUA_OK) {
    j->rc = status == LUA_ERRFILE ? LUPINE_IO
      : status == LUA_ERRMEM ? LUPINE_NOMEM : LUPINE_SCRIPT;
    return lua_error(L);
  }
  if (!lua_checkstack(L, a->argc))
    return throw(L, j, LUPINE_MISUSE, "lupine_exec_file: too many arguments to the script");
  for (i = 0; i < a->argc; i++) lua_pushstring(L, a->argv[i]);
  return a->argc + 1;
}

int lupine_exec_file(lupine *h, const char *path, int argc, char **argv) {
  file_args a;
  job j = {0};
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (path == NULL || argc < 0 || (argc > 0 && argv == NULL))
    return misuse(h, "lupine_exec_file", "no script path or bad argv");
  a.path = path;
  a.argc = argc;
  a.argv = argv;
  j.h = h;
  j.rc = LUPINE_SCRIPT;
  j.out = &a;
  if ((rc = protect(h->L, p_load_file, &j, LUA_MULTRET)) != LUPINE_OK) return rc;
  return call_chunk(h, argc);
}

int lupine_exec_string(lupine *h, const char *code, const char *chunkname) {
  int rc, status;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (code == NULL) return misuse(h, "lupine_exec_string", "code is NULL");
  if (!lua_checkstack(h->L, 3)) return fail(h, LUPINE_NOMEM, "out of memory (Lua stack)");
  status = luaL_loadbuffer(h->L, code, strlen(code), chunkname ? chunkname : "=string");
  if (status != LUA_OK) {
    rc = status == LUA_ERRMEM ? LUPINE_NOMEM : LUPINE_SCRIPT;
    fail(h, rc, lua_tostring(h->L, -1));
    lua_pop(h->L, 1);
    return rc;
  }
  return call_chunk(h, 0);
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
  return protect(h->L, p_register, &j, 0);
}

/* ---- records: versions and runs as C copies ---- */

/* The string field key of the table at row, or NULL (the column is NULL). */
static const char *field(lua_State *L, int row, const char *key, size_t *len) {
  const char *s = NULL;
  if (lua_getfield(L, row, key) == LUA_TSTRING) s = lua_tolstring(L, -1, len);
  lua_pop(L, 1);   /* the row holds the string: s stays valid */
  return s;
}

static int64_t number(lua_State *L, int row, const char *key) {
  int64_t n;
  lua_getfield(L, row, key);
  n = (int64_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/*
** A malloc'd record of size base (a struct lupine_version or lupine_run,
** whose first members are s[n]) copied from the row table at index row,
** stored at *slot at once (so that the caller frees it whatever happens
** next); raises (NOMEM) if memory runs out.
*/
static void *record_of(lua_State *L, job *j, int row, const char *const *keys, int n,
                       size_t base, void **slot) {
  size_t len, total = 0;
  const char **s;
  char *text, *p;
  int i;
  row = lua_absindex(L, row);
  for (i = 0; i < n; i++)
    if (field(L, row, keys[i], &len) != NULL) total += len + 1;
  if ((p = malloc(base + total)) == NULL) {
    throw(L, j, LUPINE_NOMEM, "out of memory");
    return NULL;
  }
  *slot = p;
  s = (const char **)p;
  text = p + base;
  for (i = 0; i < n; i++) {
    const char *v = field(L, row, keys[i], &len);
    s[i] = NULL;
    if (v == NULL) continue;
    memcpy(text, v, len + 1);
    s[i] = text;
    text += len + 1;
  }
  return p;
}

/* A version from the row at row into *slot. */
static void version_of(lua_State *L, job *j, int row, void **slot) {
  lupine_version *v;
  row = lua_absindex(L, row);
  v = record_of(L, j, row, version_keys, V_NFIELDS, sizeof *v, slot);
  v->seq = number(L, row, "seq");
  v->size = number(L, row, "size");
  v->stored_size = number(L, row, "stored_size");
}

/* A run from the row at row into *slot. */
static void run_of(lua_State *L, job *j, int row, void **slot) {
  lupine_run *r;
  row = lua_absindex(L, row);
  r = record_of(L, j, row, run_keys, R_NFIELDS, sizeof *r, slot);
  r->seq = number(L, row, "seq");
  r->size = r->stored_size = 0;
}

/* A copy of a record of size base with its n strings s. */
static void *dup_record(const void *rec, const char *const *s, int n, size_t base) {
  size_t textlen = 0;
  char *p, *t;
  const char **d;
  int i;
  for (i = 0; i < n; i++)
    if (s[i] != NULL) textlen += strlen(s[i]) + 1;
  if ((p = malloc(base + textlen)) == NULL) return NULL;
  memcpy(p, rec, base);
  d = (const char **)p;
  t = p + base;
  for (i = 0; i < n; i++) {
    size_t len;
    if (s[i] == NULL) continue;
    len = strlen(s[i]);
    memcpy(t, s[i], len + 1);
    d[i] = t;
    t += len + 1;
  }
  return p;
}

/* ---- artifact versions ---- */

/* stack: job; pushes nothing, sets j->out */
static int p_find_version(lua_State *L) {
  job *j = job_of(L);
  open_catalog(L, j);
  module(L, "lupine.client");
  lua_getfield(L, -1, "Client");
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "get_artifact_version");
  lua_insert(L, -2);
  lua_pushstring(L, j->key);
  lua_pushstring(L, j->arg);   /* NULL: nil, the latest */
  lua_call(L, 3, 1);
  version_of(L, j, -1, &j->out);
  return 0;
}

/* The lookups' shared frame: checks, runs find under protection, and hands over what it
   made only on success. has_out is whether the caller gave somewhere to put it. */
static int find_record(lupine *h, const char *fname, lua_CFunction find, const char *key,
                       const char *arg, int has_out, void **made) {
  job j = {0};
  int rc;
  *made = NULL;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (!has_out) return misuse(h, fname, "out is NULL");
  if (key == NULL) return misuse(h, fname, "name_or_id is NULL");
  j.h = h;
  j.key = key;
  j.arg = arg;
  if ((rc = protect(h->L, find, &j, 0)) != LUPINE_OK) {
    free(j.out);   /* made before a later failure, if any */
    return rc;
  }
  *made = j.out;
  clear(h);
  return LUPINE_OK;
}

int lupine_version_find(lupine *h, const char *name_or_id, const char *version,
                        lupine_version **out) {
  void *made;
  int rc = find_record(h, "lupine_version_find", p_find_version, name_or_id, version,
                       out != NULL, &made);
  if (out != NULL) *out = made;
  return rc;
}

int lupine_version_dup(const lupine_version *v, lupine_version **out) {
  if (out == NULL) return LUPINE_MISUSE;
  *out = NULL;
  if (v == NULL) return LUPINE_MISUSE;
  *out = dup_record(v, v->s, V_NFIELDS, sizeof *v);
  return *out == NULL ? LUPINE_NOMEM : LUPINE_OK;
}

void lupine_version_free(lupine_version *v) {
  free(v);
}

#define VGET(fn, i) \
  const char *fn(const lupine_version *v) { return v == NULL ? NULL : v->s[i]; }
VGET(lupine_version_id, V_ID)
VGET(lupine_version_name, V_NAME)
VGET(lupine_version_version, V_VERSION)
VGET(lupine_version_type, V_TYPE)
VGET(lupine_version_data_type, V_DATA_TYPE)
VGET(lupine_version_content_hash, V_HASH)
VGET(lupine_version_created, V_CREATED)

int64_t lupine_version_size(const lupine_version *v) {
  return v == NULL ? -1 : v->size;
}

int64_t lupine_version_stored_size(const lupine_version *v) {
  return v == NULL ? -1 : v->stored_size;
}

/* Field i of v for a message ("?" where the catalog has none). */
static const char *shown(const lupine_version *v, int i) {
  return v->s[i] != NULL ? v->s[i] : "?";
}

/* rc, with the message "cannot load artifact 'x' version 1 (<id>): why". */
static int cannot_load(lupine *h, const lupine_version *v, int rc, const char *why) {
  return failf(h, rc, "cannot load artifact '%s' version %s (%s): %s", shown(v, V_NAME),
               shown(v, V_VERSION), shown(v, V_ID), why);
}

/* The store that holds v's object, with the catalog open. */
static int store_of(lupine *h, const char *fname, const lupine_version *v, lp_store **store) {
  job j = {0};
  char err[LP_ERRSZ];
  int rc;
  j.h = h;
  if ((rc = protect(h->L, p_open_catalog, &j, 0)) != LUPINE_OK) return rc;
  if (v->s[V_HASH] == NULL || v->size < 0)
    return misuse(h, fname, "the version has no content hash");
  *store = h->rt->store;   /* versions of old catalogs: the active one */
  if (v->s[V_STORE] != NULL &&
      (rc = lp_runtime_store(h->rt, v->s[V_STORE], store, err, sizeof err)) != LUPINE_OK)
    return cannot_load(h, v, rc, err);
  return LUPINE_OK;
}

/* The stored bytes of v, checked against its hash; the message names it. */
static int read_bytes(lupine *h, const char *fname, const lupine_version *v,
                      unsigned char **data, size_t *len) {
  char err[LP_ERRSZ];
  lp_store *store;
  int rc;
  if ((rc = store_of(h, fname, v, &store)) != LUPINE_OK) return rc;
  if ((rc = lp_store_get(store, v->s[V_HASH], (uint64_t)v->size, data, len, err,
                         sizeof err)) != LUPINE_OK)
    return cannot_load(h, v, rc, err);
  return LUPINE_OK;
}

/* Is v a file or folder (its object an archive, its value a path)? */
static int is_path(const lupine_version *v) {
  return v->s[V_DATA_TYPE] != NULL && lp_is_file_type(v->s[V_DATA_TYPE]);
}

/* The path of a read-only copy of the file or folder v, into out, as
** loading it in Lua gives. */
static int local_copy(lupine *h, const char *fname, const lupine_version *v, char *out,
                      size_t outsz) {
  lp_store *store;
  int rc;
  if ((rc = store_of(h, fname, v, &store)) != LUPINE_OK) return rc;
  if ((rc = lp_materialize(h->rt, store, v->s[V_HASH], (uint64_t)v->size, out,
                           outsz)) != LUPINE_OK)
    return cannot_load(h, v, rc, h->rt->err);
  return LUPINE_OK;
}

int lupine_version_read(lupine *h, const lupine_version *v, unsigned char **data,
                        size_t *len) {
  static const char fname[] = "lupine_version_read";
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
  clear(h);
  return LUPINE_OK;
}

int lupine_version_path(lupine *h, const lupine_version *v, char **path) {
  static const char fname[] = "lupine_version_path";
  char buf[PATH_MAX];
  int rc;
  if (path != NULL) *path = NULL;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (v == NULL) return misuse(h, fname, "v is NULL");
  if (path == NULL) return misuse(h, fname, "path is NULL");
  if (!is_path(v))
    return failf(h, LUPINE_MISUSE, "%s: artifact '%s' version %s (%s) is a %s, not a file or "
                 "folder", fname, shown(v, V_NAME), shown(v, V_VERSION), shown(v, V_ID),
                 v->s[V_DATA_TYPE] != NULL ? v->s[V_DATA_TYPE] : "value");
  if ((rc = local_copy(h, fname, v, buf, sizeof buf)) != LUPINE_OK) return rc;
  if ((*path = strdup(buf)) == NULL) return fail(h, LUPINE_NOMEM, "out of memory");
  clear(h);
  return LUPINE_OK;
}

void lupine_free(void *p) {
  free(p);
}

/* In the target state: decode the bytes, through its restore hook. */
static int p_decode(lua_State *L) {
  job *j = job_of(L);
  char err[LP_ERRSZ];
  const lupine_version *v = j->v;
  int rc = lp_codec_decode(L, j->data, j->len, err, sizeof err);
  if (rc != LUPINE_OK) {
    j->rc = rc;
    return luaL_error(L, "cannot load artifact '%s' version %s (%s): %s", v->s[V_NAME],
                      v->s[V_VERSION], v->s[V_ID], err);
  }
  return 1;
}

/* In the target state: the path of a file or folder's copy. */
static int p_push_path(lua_State *L) {
  lua_pushstring(L, job_of(L)->key);
  return 1;
}

int lupine_version_load(lupine *h, const lupine_version *v, lua_State *L) {
  static const char fname[] = "lupine_version_load";
  char path[PATH_MAX];
  unsigned char *data = NULL;
  size_t len;
  job j = {0};
  int rc;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  if (v == NULL) return misuse(h, fname, "v is NULL");
  if (L == NULL) return misuse(h, fname, "L is NULL");
  j.h = h;
  j.v = v;
  if (is_path(v)) {   /* its value is a path, as in Lua */
    if ((rc = local_copy(h, fname, v, path, sizeof path)) != LUPINE_OK) return rc;
    j.key = path;
    rc = protect(L, p_push_path, &j, 1);
  } else {
    if ((rc = read_bytes(h, fname, v, &data, &len)) != LUPINE_OK) return rc;
    j.data = data;
    j.len = len;
    rc = protect(L, p_decode, &j, 1);
    free(data);
  }
  if (rc == LUPINE_OK) clear(h);
  return rc;
}

/* ---- listings ---- */

/* Raise NOTFOUND for a name with no row: "<what> '<name>' not found",
** with near names (from the query names_query) suggested. */
static void not_found(lua_State *L, job *j, const char *what, const char *names_query) {
  lp_runtime *rt = j->h->rt;
  int i, top = lua_gettop(L);
  if (lp_catalog_query(L, rt->catalog, names_query, 0, 0, rt->err, sizeof rt->err) != LUPINE_OK)
    throw(L, j, LUPINE_CATALOG, rt->err);
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
  luaL_error(L, "%s '%s' not found%s", what, j->key, lua_tostring(L, -1));
}

typedef struct listing {
  const char *what;         /* "artifact", "pipeline" */
  const char *by_name;      /* the named query that finds the name */
  const char *names;        /* the named query of all names */
  const char *all_sql;      /* a page of everything: ?1 seq bound */
  const char *named_sql;    /* a page of one name's: ?1 seq bound, ?2 name */
  int is_run;
} listing;

#define VERSION_PAGE \
  "SELECT v.seq, v.id, a.name, v.version, v.type, v.data_type, v.content_hash, v.size," \
  " v.stored_size, v.created, v.artifact_store_id FROM artifact_versions v"                \
  " JOIN artifacts a ON a.id = v.artifact_id"
#define RUN_PAGE \
  "SELECT r.seq, r.id, r.name, p.name AS pipeline_name, r.status, r.start_time," \
  " r.end_time, r.error FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id"
#define LIMIT " LIMIT 256"

static const listing version_listing = {
  "artifact", "artifact_by_name", "artifact_names",
  VERSION_PAGE " WHERE v.seq < ?1 ORDER BY v.seq DESC" LIMIT,
  VERSION_PAGE " WHERE v.artifact_id = (SELECT id FROM artifacts WHERE name = ?2)"
  " AND v.seq < ?1 ORDER BY v.seq DESC" LIMIT, 0};
static const listing run_listing = {
  "pipeline", "pipeline_by_name", "pipeline_names",
  RUN_PAGE " WHERE r.seq < ?1 ORDER BY r.seq DESC" LIMIT,
  RUN_PAGE " WHERE r.pipeline_id = (SELECT id FROM pipelines WHERE name = ?2)"
  " AND r.seq < ?1 ORDER BY r.seq DESC" LIMIT, 1};

/* One page of a listing (j->out: the listing) into j->page. On the first
** page (before == INT64_MAX), a name must exist. */
static int p_page(lua_State *L) {
  job *j = job_of(L);
  const listing *ls = j->out;
  lp_runtime *rt = j->h->rt;
  int i, top;
  open_catalog(L, j);
  top = lua_gettop(L);
  if (j->key != NULL && j->before == INT64_MAX) {
    lua_pushstring(L, j->key);
    if (lp_catalog_query(L, rt->catalog, ls->by_name, top + 1, 1, rt->err,
                         sizeof rt->err) != LUPINE_OK)
      return throw(L, j, LUPINE_CATALOG, rt->err);
    if (lua_rawgeti(L, -1, 1) != LUA_TTABLE) not_found(L, j, ls->what, ls->names);
    lua_settop(L, top);
  }
  lua_pushinteger(L, (lua_Integer)j->before);
  if (j->key != NULL) lua_pushstring(L, j->key);
  if (lp_catalog_select(L, rt->catalog, j->key != NULL ? ls->named_sql : ls->all_sql,
                        top + 1, j->key != NULL ? 2 : 1, rt->err, sizeof rt->err) != LUPINE_OK)
    return throw(L, j, LUPINE_CATALOG, rt->err);
  for (i = 1; i <= PAGE && lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
    /* counted first: a raise while it is made leaves nothing unowned */
    void **slot = &j->page[j->n++];
    *slot = NULL;
    if (ls->is_run) run_of(L, j, -1, slot);
    else version_of(L, j, -1, slot);
    lua_pop(L, 1);
  }
  return 0;
}

/* Page through a listing, calling fn (cast from the caller's type) for
** each record outside the protected call. */
static int list(lupine *h, const listing *ls, const char *fname, const char *name,
                int (*fn)(void *, const void *), void *ud) {
  job j = {0};
  int rc = LUPINE_OK, i, n;
  if ((rc = usable(h)) != LUPINE_OK) return rc;
  j.h = h;
  j.key = name;
  j.out = (void *)ls;
  j.before = INT64_MAX;
  do {
    j.n = 0;
    j.rc = LUPINE_OK;
    rc = protect(h->L, p_page, &j, 0);
    n = j.n;
    for (i = 0; i < n; i++) {
      if (j.page[i] == NULL) continue;   /* the one being made when it failed */
      if (rc == LUPINE_OK) {
        rc = fn(ud, j.page[i]);
        if (rc != LUPINE_OK) {
          char msg[128];
          snprintf(msg, sizeof msg, "%s: stopped by the callback (it returned %d)", fname, rc);
          fail(h, rc, msg);
        }
      }
      j.before = ls->is_run ? ((lupine_run *)j.page[i])->seq
                            : ((lupine_version *)j.page[i])->seq;
      free(j.page[i]);
    }
  } while (rc == LUPINE_OK && n == PAGE);
  if (rc == LUPINE_OK) clear(h);
  return rc;
}

/* C calls through a function pointer of another type are undefined: a
** small adapter per record type. */
typedef struct adapt {
  lupine_version_fn vfn;
  lupine_run_fn rfn;
  void *ud;
} adapt;

static int call_version(void *ud, const void *rec) {
  const adapt *a = ud;
  return a->vfn(a->ud, rec);
}

static int call_run(void *ud, const void *rec) {
  const adapt *a = ud;
  return a->rfn(a->ud, rec);
}

int lupine_list_versions(lupine *h, const char *name, lupine_version_fn fn, void *ud) {
  adapt a = {fn, NULL, ud};
  if (fn == NULL) return h == NULL ? LUPINE_MISUSE : misuse(h, "lupine_list_versions", "fn is NULL");
  return list(h, &version_listing, "lupine_list_versions", name, call_version, &a);
}

int lupine_list_runs(lupine *h, const char *pipeline, lupine_run_fn fn, void *ud) {
  adapt a = {NULL, fn, ud};
  if (fn == NULL) return h == NULL ? LUPINE_MISUSE : misuse(h, "lupine_list_runs", "fn is NULL");
  return list(h, &run_listing, "lupine_list_runs", pipeline, call_run, &a);
}

/* ---- pipeline runs ---- */

static int p_find_run(lua_State *L) {
  job *j = job_of(L);
  open_catalog(L, j);
  module(L, "lupine.client");
  lua_getfield(L, -1, "Client");
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "get_pipeline_run");
  lua_insert(L, -2);
  lua_pushstring(L, j->key);
  lua_call(L, 2, 1);
  run_of(L, j, -1, &j->out);
  return 0;
}

int lupine_run_find(lupine *h, const char *name_or_id, lupine_run **out) {
  void *made;
  int rc = find_record(h, "lupine_run_find", p_find_run, name_or_id, NULL, out != NULL, &made);
  if (out != NULL) *out = made;
  return rc;
}

int lupine_run_dup(const lupine_run *r, lupine_run **out) {
  if (out == NULL) return LUPINE_MISUSE;
  *out = NULL;
  if (r == NULL) return LUPINE_MISUSE;
  *out = dup_record(r, r->s, R_NFIELDS, sizeof *r);
  return *out == NULL ? LUPINE_NOMEM : LUPINE_OK;
}

void lupine_run_free(lupine_run *r) {
  free(r);
}

#define RGET(fn, i) \
  const char *fn(const lupine_run *r) { return r == NULL ? NULL : r->s[i]; }
RGET(lupine_run_id, R_ID)
RGET(lupine_run_name, R_NAME)
RGET(lupine_run_pipeline, R_PIPELINE)
RGET(lupine_run_status, R_STATUS)
RGET(lupine_run_start_time, R_START)
RGET(lupine_run_end_time, R_END)
RGET(lupine_run_error, R_ERROR)
