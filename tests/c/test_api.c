/* SPDX-License-Identifier: MIT */
/*
** test_api.c: the public C API (lupine.h) from a host's point of view:
** result codes, misuse, running pipelines that call host functions,
** finding, loading, reading and listing what they stored, materializers
** written in C, luaopen_lupine in a state the host owns, two handles on two
** threads at once, allocation failure, file and folder artifacts, the
** catalog folder, interrupting, a run's events, long messages, and a host with signal
** settings of its own. Uses lupine.h only (and Lua's own headers). Prints
** TAP; exits 1 if any test failed.
*/
#define _XOPEN_SOURCE 700   /* nftw, mkdtemp, realpath */

#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include "lauxlib.h"
#include "lualib.h"
#include "lupine.h"
#include "tap.h"

#define PATHSZ 512

static pid_t main_pid;      /* this program's process: step workers are others */
static char base[64];   /* the test's temporary folder (set once, before any thread) */

/* A result code and, when want_msg is not NULL, the handle's message. */
static void code(lupine *rt, int got, int want, const char *want_msg, const char *what) {
  if (!check(got == want, "%s: %s", what, lupine_errstr(want)))
    printf("#   got %d (%s): %s\n", got, lupine_errstr(got), lupine_errmsg(rt));
  if (want_msg != NULL) {
    char label[256];
    snprintf(label, sizeof label, "%s: message", what);
    same(lupine_errmsg(rt), want_msg, label);
  }
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st, (void)type, (void)ftw;
  return remove(path);
}

/* A fresh catalog folder under base (not created: lupine does that). */
static void home_path(char *buf, const char *name) {
  snprintf(buf, PATHSZ, "%s/%.64s", base, name);
}

/* ---- host functions ---- */

/* host_twice(x) -> 2x: what a step calls */
static int host_twice(lua_State *L) {
  lua_Integer x = luaL_checkinteger(L, 1);
  lua_pushinteger(L, 2 * x);
  return 1;
}

/* host_latest(name) -> the latest version's value, read through the C API
** from inside a step (the handle is the upvalue) */
static int host_latest(lua_State *L) {
  lupine *rt = lua_touserdata(L, lua_upvalueindex(1));
  lupine_artifact_version *v = NULL;
  int rc = lupine_av_find(rt, luaL_checkstring(L, 1), NULL, &v);
  if (rc == LUPINE_OK) rc = lupine_av_load(rt, v, L);
  lupine_av_free(v);
  if (rc != LUPINE_OK) return luaL_error(L, "host_latest: %s", lupine_errmsg(rt));
  return 1;
}

/* A userdata type of the host: a vector of doubles. */
#define VEC_MT "test.Vec"
typedef struct vec {
  int n;
  double x[8];
} vec;

static vec *vec_push(lua_State *L) {
  vec *v = lua_newuserdatauv(L, sizeof *v, 0);
  memset(v, 0, sizeof *v);
  luaL_setmetatable(L, VEC_MT);
  return v;
}

/* vec_new(x, ...) */
static int vec_new(lua_State *L) {
  int i, n = lua_gettop(L);
  vec *v;
  luaL_argcheck(L, n <= 8, 9, "at most 8 numbers");
  v = vec_push(L);
  for (i = 0; i < n; i++) v->x[i] = luaL_checknumber(L, i + 1);
  v->n = n;
  return 1;
}

/* vec_sum(v) */
static int vec_sum(lua_State *L) {
  vec *v = luaL_checkudata(L, 1, VEC_MT);
  double s = 0;
  int i;
  for (i = 0; i < v->n; i++) s += v->x[i];
  lua_pushnumber(L, s);
  return 1;
}

/* The materializer: match, save (to an array of numbers), load. */
static int vec_match(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, VEC_MT) != NULL);
  return 1;
}

static int vec_save(lua_State *L) {
  vec *v = luaL_checkudata(L, 1, VEC_MT);
  int i;
  lua_createtable(L, v->n, 0);
  for (i = 0; i < v->n; i++) {
    lua_pushnumber(L, v->x[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int vec_load(lua_State *L) {
  vec *v;
  int i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (int)luaL_len(L, 1);
  luaL_argcheck(L, n <= 8, 1, "at most 8 numbers");
  v = vec_push(L);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    v->x[i] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  v->n = n;
  return 1;
}

/* The host's functions, in a handle's state. */
static void register_host(lupine *rt) {
  lua_State *L = lupine_state(rt);
  lua_register(L, "host_twice", host_twice);
  lua_pushlightuserdata(L, rt);
  lua_pushcclosure(L, host_latest, 1);
  lua_setglobal(L, "host_latest");
  lua_register(L, "vec_new", vec_new);
  lua_register(L, "vec_sum", vec_sum);
  luaL_newmetatable(L, VEC_MT);
  lua_pop(L, 1);
}

/* ---- log capture ---- */

typedef struct logbuf {
  char text[4096];
  int lines;
} logbuf;

static void capture(void *ud, int level, const char *msg) {
  logbuf *b = ud;
  size_t n = strlen(b->text);
  if (level != LUPINE_LOG_OUTPUT) return;
  snprintf(b->text + n, sizeof b->text - n, "%s\n", msg);
  b->lines++;
}

/* ---- listing callbacks ---- */

typedef struct seen {
  int n, stop_at;
  char what[1024];
} seen;

static int see_version(void *ud, const lupine_artifact_version *v) {
  seen *s = ud;
  size_t n = strlen(s->what);
  snprintf(s->what + n, sizeof s->what - n, "%s%s:%s", n ? " " : "", lupine_av_name(v),
           lupine_av_version(v));
  return ++s->n == s->stop_at ? 100 : 0;
}

static int see_run(void *ud, const lupine_run *r) {
  seen *s = ud;
  size_t n = strlen(s->what);
  snprintf(s->what + n, sizeof s->what - n, "%s%s:%s", n ? " " : "", lupine_run_pipeline(r),
           lupine_run_status(r));
  return ++s->n == s->stop_at ? 100 : 0;
}

/* lupine_av_list and lupine_run_list of the versions of an artifact, or
** the runs of a pipeline, called name (NULL: of all). */
static int list_named(lupine *rt, const char *name, lupine_av_fn vfn, lupine_run_fn rfn,
                      void *ud) {
  lupine_filter *f = NULL;
  int rc = name != NULL ? lupine_filter_new(rt, &f) : LUPINE_OK;
  if (rc == LUPINE_OK && name != NULL) rc = lupine_filter_name(f, name);
  if (rc == LUPINE_OK) rc = vfn != NULL ? lupine_av_list(rt, f, vfn, ud)
                                        : lupine_run_list(rt, f, rfn, ud);
  lupine_filter_free(f);
  return rc;
}

static int list_versions(lupine *rt, const char *name, lupine_av_fn fn, void *ud) {
  return list_named(rt, name, fn, NULL, ud);
}

static int list_runs(lupine *rt, const char *name, lupine_run_fn fn, void *ud) {
  return list_named(rt, name, NULL, fn, ud);
}

/* ---- the tests ---- */

static void test_codes(void) {
  check(LUPINE_OK == 0 && LUPINE_ERROR == 1 && LUPINE_MISUSE == 2 && LUPINE_NOMEM == 3 &&
        LUPINE_IO == 4 && LUPINE_CORRUPT == 5 && LUPINE_NOTFOUND == 6 && LUPINE_CATALOG == 7 &&
        LUPINE_FAILED == 8 && LUPINE_SCRIPT == 9 && LUPINE_CONSTRAINT == 10 &&
        LUPINE_INTERRUPT == 11 && LUPINE_ABORT == 12, "result codes keep their values");
  check(LUPINE_LOG_ERROR == 0 && LUPINE_LOG_WARN == 1 && LUPINE_LOG_INFO == 2 &&
        LUPINE_LOG_DEBUG == 3 && LUPINE_LOG_OUTPUT == 4 && LUPINE_LOG_PROGRESS == 5,
        "log levels keep their values");
  same(lupine_errstr(LUPINE_OK), "ok", "lupine_errstr(LUPINE_OK)");
  same(lupine_errstr(LUPINE_NOTFOUND), "not found", "lupine_errstr(LUPINE_NOTFOUND)");
  same(lupine_errstr(LUPINE_CONSTRAINT), "conflicts with what is stored",
       "lupine_errstr(LUPINE_CONSTRAINT)");
  same(lupine_errstr(-1), "unknown result code", "lupine_errstr(-1)");
  same(lupine_errstr(LUPINE_FAILED), "a pipeline run failed", "lupine_errstr(LUPINE_FAILED)");
  same(lupine_errstr(LUPINE_INTERRUPT), "interrupted", "lupine_errstr(LUPINE_INTERRUPT)");
  same(lupine_errstr(LUPINE_ABORT), "stopped by a callback", "lupine_errstr(LUPINE_ABORT)");
  same(lupine_errstr(13), "unknown result code", "lupine_errstr(13)");
}

/* The header's version and the library's: a host built against one
** header and run with another library can tell. */
static void test_versions(void) {
  char text[32];
  snprintf(text, sizeof text, "%d.%d.%d", LUPINE_VERSION_NUMBER / 1000000,
           LUPINE_VERSION_NUMBER / 1000 % 1000, LUPINE_VERSION_NUMBER % 1000);
  same(text, LUPINE_VERSION, "LUPINE_VERSION_NUMBER is LUPINE_VERSION as a number");
  same(lupine_libversion(), LUPINE_VERSION, "lupine_libversion is the header's version");
  check(lupine_libversion_number() == LUPINE_VERSION_NUMBER,
        "lupine_libversion_number is LUPINE_VERSION_NUMBER");
#if LUPINE_VERSION_NUMBER < 1000
  check(0, "LUPINE_VERSION_NUMBER is usable in #if");
#else
  check(1, "LUPINE_VERSION_NUMBER is usable in #if");
#endif
}

static void test_null_handle(void) {
  lupine_artifact_version *v = (lupine_artifact_version *)&v;
  lupine_run *r = (lupine_run *)&r;
  unsigned char *data = (unsigned char *)&data;
  size_t len = 99;
  lua_State *L = luaL_newstate();
  check(lupine_open(NULL, NULL) == LUPINE_MISUSE, "lupine_open(NULL) is misuse");
  check(lupine_close(NULL) == LUPINE_OK, "lupine_close(NULL) is a no-op");
  same(lupine_errmsg(NULL), "no runtime (NULL handle)", "lupine_errmsg(NULL)");
  check(lupine_state(NULL) == NULL && lupine_home(NULL) == NULL,
        "lupine_state and lupine_home of NULL are NULL");
  lupine_interrupt(NULL);
  lupine_set_log(NULL, capture, NULL);
  check(lupine_exec_string(NULL, "x = 1", NULL) == LUPINE_MISUSE &&
        lupine_exec_file(NULL, "x.lua", 0, NULL) == LUPINE_MISUSE,
        "running Lua on a NULL handle is misuse");
  check(lupine_av_find(NULL, "x", NULL, &v) == LUPINE_MISUSE && v == NULL,
        "lupine_av_find(NULL) is misuse and clears *out");
  check(lupine_run_find(NULL, "x", &r) == LUPINE_MISUSE && r == NULL,
        "lupine_run_find(NULL) is misuse and clears *out");
  check(lupine_av_read(NULL, NULL, &data, &len) == LUPINE_MISUSE && data == NULL &&
        len == 0, "lupine_av_read(NULL) is misuse and clears *data and *len");
  check(lupine_av_load(NULL, NULL, L) == LUPINE_MISUSE && lua_gettop(L) == 0,
        "lupine_av_load(NULL) is misuse and pushes nothing");
  check(lupine_av_list(NULL, NULL, see_version, NULL) == LUPINE_MISUSE &&
        lupine_run_list(NULL, NULL, see_run, NULL) == LUPINE_MISUSE,
        "listing on a NULL handle is misuse");
  check(lupine_register_materializer(NULL, "T", vec_match, vec_save, vec_load) ==
        LUPINE_MISUSE, "lupine_register_materializer(NULL) is misuse");
  lupine_av_free(NULL);
  lupine_run_free(NULL);
  lupine_free(NULL);
  check(lupine_av_id(NULL) == NULL && lupine_av_name(NULL) == NULL &&
        lupine_av_version(NULL) == NULL && lupine_av_type(NULL) == NULL &&
        lupine_av_data_type(NULL) == NULL && lupine_av_content_hash(NULL) == NULL &&
        lupine_av_created(NULL) == NULL && lupine_av_size(NULL) == -1 &&
        lupine_av_stored_size(NULL) == -1, "version accessors of NULL give NULL and -1");
  check(lupine_run_id(NULL) == NULL && lupine_run_name(NULL) == NULL &&
        lupine_run_pipeline(NULL) == NULL && lupine_run_status(NULL) == NULL &&
        lupine_run_start_time(NULL) == NULL && lupine_run_end_time(NULL) == NULL &&
        lupine_run_error(NULL) == NULL, "run accessors of NULL give NULL");
  check(lupine_av_dup(NULL, &v) == LUPINE_MISUSE && v == NULL &&
        lupine_run_dup(NULL, &r) == LUPINE_MISUSE && r == NULL &&
        lupine_av_dup(NULL, NULL) == LUPINE_MISUSE, "dup of NULL is misuse");
  lua_close(L);
}

static void test_null_args(void) {
  char home[PATHSZ];
  lupine *rt;
  lupine_artifact_version *v = NULL;
  lupine_run *r = NULL;
  size_t len;
  unsigned char *data;
  home_path(home, "null-args");
  check(lupine_open(&rt, home) == LUPINE_OK, "lupine_open on a new folder");
  same(lupine_errmsg(rt), "", "a new handle has no message");
  code(rt, lupine_exec_string(rt, NULL, NULL), LUPINE_MISUSE, "lupine_exec_string: code is NULL",
       "lupine_exec_string(rt, NULL)");
  code(rt, lupine_exec_file(rt, NULL, 0, NULL), LUPINE_MISUSE,
       "lupine_exec_file: no script path or bad argv", "lupine_exec_file(rt, NULL)");
  code(rt, lupine_exec_file(rt, "x.lua", 2, NULL), LUPINE_MISUSE,
       "lupine_exec_file: no script path or bad argv", "lupine_exec_file with argc 2, argv NULL");
  code(rt, lupine_av_find(rt, NULL, NULL, &v), LUPINE_MISUSE,
       "lupine_av_find: name_or_id is NULL", "lupine_av_find(rt, NULL)");
  code(rt, lupine_av_find(rt, "x", NULL, NULL), LUPINE_MISUSE,
       "lupine_av_find: out is NULL", "lupine_av_find without out");
  code(rt, lupine_run_find(rt, NULL, &r), LUPINE_MISUSE, "lupine_run_find: name_or_id is NULL",
       "lupine_run_find(rt, NULL)");
  code(rt, lupine_av_load(rt, NULL, lupine_state(rt)), LUPINE_MISUSE,
       "lupine_av_load: v is NULL", "lupine_av_load without a version");
  code(rt, lupine_av_read(rt, NULL, &data, &len), LUPINE_MISUSE,
       "lupine_av_read: v is NULL", "lupine_av_read without a version");
  code(rt, lupine_av_list(rt, NULL, NULL, NULL), LUPINE_MISUSE,
       "lupine_av_list: fn is NULL", "lupine_av_list without fn");
  code(rt, lupine_run_list(rt, NULL, NULL, NULL), LUPINE_MISUSE,
       "lupine_run_list: fn is NULL", "lupine_run_list without fn");
  code(rt, lupine_register_materializer(rt, NULL, vec_match, vec_save, vec_load), LUPINE_MISUSE,
       "lupine_register_materializer: type is NULL", "lupine_register_materializer without type");
  code(rt, lupine_register_materializer(rt, "Vec", vec_match, NULL, vec_load), LUPINE_MISUSE,
       "lupine_register_materializer: save is NULL", "lupine_register_materializer without save");
  code(rt, lupine_register_materializer(rt, "", vec_match, vec_save, vec_load), LUPINE_MISUSE,
       "materializer type name must not be empty", "lupine_register_materializer with an empty type");
  code(rt, lupine_exec_string(rt, "x = ", "=bad"), LUPINE_SCRIPT,
       "bad:1: unexpected symbol near <eof>", "a chunk that does not compile");
  code(rt, lupine_exec_file(rt, "/nonexistent/p.lua", 0, NULL), LUPINE_IO,
       "cannot open /nonexistent/p.lua: No such file or directory",
       "a script that cannot be opened");
  code(rt, lupine_exec_string(rt, "return 1", NULL), LUPINE_OK, "",
       "a success clears the message");
  lupine_close(rt);
}

/* The pipeline the main tests run: numbers doubled by the host. */
static const char pipeline[] =
  "local lupine = require 'lupine'\n"
  "local make = lupine.step { name = 'make', outputs = { 'numbers' }, enable_cache = false,\n"
  "  function(n) local t = {} for i = 1, n do t[i] = i end return t end }\n"
  "local double = lupine.step { name = 'double', outputs = { 'doubled' }, enable_cache = false,\n"
  "  function(numbers)\n"
  "    print('doubling ' .. #numbers)\n"
  "    local out = {} for i, x in ipairs(numbers) do out[i] = host_twice(x) end\n"
  "    return out\n"
  "  end }\n"
  "local p = lupine.pipeline { name = 'numbers', function(n) double(make(n)) end }\n"
  "p(...)\n";

/* Run the pipeline (the global PIPELINE) with n numbers. */
static int run_pipeline(lupine *rt, int n) {
  lua_State *L = lupine_state(rt);
  lua_pushinteger(L, n);
  lua_setglobal(L, "N");
  return lupine_exec_string(rt, "return (load(PIPELINE, '=pipeline'))(N)", "=run");
}

/* Path of the stored object of v into buf. */
static void object_path(lupine *rt, const lupine_artifact_version *v, char *buf) {
  const char *hex = lupine_av_content_hash(v) + 7;
  snprintf(buf, PATHSZ, "%s/artifacts/objects/%.2s/%s.zst", lupine_home(rt), hex, hex + 2);
}

static void test_pipeline(void) {
  char home[PATHSZ], path[PATHSZ], want[512];
  lupine *rt;
  lupine_artifact_version *v = NULL, *v2 = NULL, *copy = NULL;
  lupine_run *r = NULL, *rcopy = NULL;
  lua_State *L, *L2;
  logbuf log = {"", 0};
  seen s;
  unsigned char *data = NULL;
  size_t len = 0;
  int rc;
  static const unsigned char cbor[] = {0x83, 0x02, 0x04, 0x06};
  home_path(home, "pipeline");
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;
  register_host(rt);
  lupine_set_log(rt, capture, &log);
  L = lupine_state(rt);
  lua_pushstring(L, pipeline);
  lua_setglobal(L, "PIPELINE");
  code(rt, run_pipeline(rt, 3), LUPINE_OK, "", "a pipeline whose step calls a host function runs");
  same(log.text, "[double] doubling 3\n", "what the step printed reaches the log callback");

  rc = lupine_av_find(rt, "doubled", NULL, &v);
  code(rt, rc, LUPINE_OK, "", "find the latest version by name");
  if (rc != LUPINE_OK) { lupine_close(rt); return; }
  same(lupine_av_name(v), "doubled", "its name");
  same(lupine_av_version(v), "1", "its version");
  same(lupine_av_type(v), "data", "its type");
  same(lupine_av_data_type(v), "numbers", "its data type (an array of numbers)");
  check(strlen(lupine_av_id(v)) == 36, "its id is a UUID");
  check(strncmp(lupine_av_content_hash(v), "sha256:", 7) == 0 &&
        strlen(lupine_av_content_hash(v)) == 71, "its content hash is sha256:<64 hex>");
  check(strlen(lupine_av_created(v)) == 27 && lupine_av_created(v)[26] == 'Z',
        "its creation time is UTC with microseconds");
  check(lupine_av_size(v) == 4, "its size is that of the CBOR (4 bytes)");
  check(lupine_av_stored_size(v) > 0, "its stored size is known");

  code(rt, lupine_av_read(rt, v, &data, &len), LUPINE_OK, "", "read its stored bytes");
  check(data != NULL && len == sizeof cbor && memcmp(data, cbor, len) == 0,
        "the bytes are the CBOR of { 2, 4, 6 }");
  lupine_free(data);

  code(rt, lupine_av_load(rt, v, L), LUPINE_OK, "", "load it into the runtime's state");
  check(lua_gettop(L) == 1 && lua_istable(L, 1) && luaL_len(L, 1) == 3 &&
        lua_rawgeti(L, 1, 3) == LUA_TNUMBER && lua_tointeger(L, -1) == 6,
        "the value is { 2, 4, 6 }");
  lua_settop(L, 0);
  L2 = luaL_newstate();
  code(rt, lupine_av_load(rt, v, L2), LUPINE_OK, "", "load it into another lua_State");
  check(lua_gettop(L2) == 1 && lua_istable(L2, 1) && lua_rawgeti(L2, 1, 1) == LUA_TNUMBER &&
        lua_tointeger(L2, -1) == 2, "the value arrives there whole");
  lua_close(L2);

  rc = lupine_av_find(rt, lupine_av_id(v), NULL, &v2);
  check(rc == LUPINE_OK && strcmp(lupine_av_id(v2), lupine_av_id(v)) == 0,
        "find it by id");
  lupine_av_free(v2);
  snprintf(path, 9, "%s", lupine_av_id(v));
  rc = lupine_av_find(rt, path, NULL, &v2);
  check(rc == LUPINE_OK && strcmp(lupine_av_id(v2), lupine_av_id(v)) == 0,
        "find it by an id prefix");
  lupine_av_free(v2);
  rc = lupine_av_find(rt, "doubled", "1", &v2);
  check(rc == LUPINE_OK && strcmp(lupine_av_id(v2), lupine_av_id(v)) == 0,
        "find it by name and version");
  lupine_av_free(v2);
  v2 = (lupine_artifact_version *)&v2;
  code(rt, lupine_av_find(rt, "doubeld", NULL, &v2), LUPINE_NOTFOUND,
       "artifact 'doubeld' not found; did you mean 'doubled'?", "a misspelt name");
  check(v2 == NULL, "a failed find leaves *out NULL");
  code(rt, lupine_av_find(rt, "doubled", "7", &v2), LUPINE_NOTFOUND,
       "artifact 'doubled' has no version '7' (it has 1)", "a version that does not exist");
  code(rt, lupine_av_find(rt, "doubled", "latest", &v2), LUPINE_OK, "",
       "version \"latest\" is the latest");
  lupine_av_free(v2);

  check(lupine_av_dup(v, &copy) == LUPINE_OK && copy != v &&
        strcmp(lupine_av_id(copy), lupine_av_id(v)) == 0 &&
        lupine_av_id(copy) != lupine_av_id(v) &&
        lupine_av_size(copy) == 4, "lupine_av_dup copies every field");

  /* a second run: version 2, listed first */
  code(rt, run_pipeline(rt, 2), LUPINE_OK, NULL, "a second run");
  memset(&s, 0, sizeof s);
  code(rt, list_versions(rt, "doubled", see_version, &s), LUPINE_OK, "",
       "list the versions of a name");
  same(s.what, "doubled:2 doubled:1", "newest first");
  memset(&s, 0, sizeof s);
  code(rt, list_versions(rt, NULL, see_version, &s), LUPINE_OK, "",
       "list every version");
  same(s.what, "doubled:2 numbers:2 doubled:1 numbers:1", "every version, newest first");
  memset(&s, 0, sizeof s);
  s.stop_at = 2;
  code(rt, list_versions(rt, NULL, see_version, &s), LUPINE_ABORT,
       "lupine_av_list: stopped by the callback (it returned 100)",
       "a callback that returns non-zero stops the listing");
  check(s.n == 2, "after the second call");
  code(rt, list_versions(rt, "dubled", see_version, &s), LUPINE_NOTFOUND,
       "artifact 'dubled' not found; did you mean 'doubled'?", "listing an unknown name");

  memset(&s, 0, sizeof s);
  code(rt, list_runs(rt, NULL, see_run, &s), LUPINE_OK, "", "list the runs");
  same(s.what, "numbers:completed numbers:completed", "both runs, completed");
  memset(&s, 0, sizeof s);
  code(rt, list_runs(rt, "numbers", see_run, &s), LUPINE_OK, "",
       "list the runs of a pipeline");
  check(s.n == 2, "two runs");
  code(rt, list_runs(rt, "numbrs", see_run, &s), LUPINE_NOTFOUND,
       "pipeline 'numbrs' not found; did you mean 'numbers'?", "listing an unknown pipeline");
  code(rt, lupine_run_find(rt, "nope", &r), LUPINE_NOTFOUND, "pipeline run 'nope' not found",
       "an unknown run");
  L = lupine_state(rt);
  lua_settop(L, 0);
  lupine_exec_string(rt, "RUN = lupine.Client():list_pipeline_runs {}[1].name", NULL);
  lua_getglobal(L, "RUN");
  rc = lupine_run_find(rt, lua_tostring(L, -1), &r);
  code(rt, rc, LUPINE_OK, "", "find a run by name");
  if (rc == LUPINE_OK) {
    same(lupine_run_name(r), lua_tostring(L, -1), "its name");
    same(lupine_run_pipeline(r), "numbers", "its pipeline");
    same(lupine_run_status(r), "completed", "its status");
    check(lupine_run_start_time(r) != NULL && lupine_run_end_time(r) != NULL &&
          strcmp(lupine_run_start_time(r), lupine_run_end_time(r)) <= 0,
          "it started before it ended");
    check(lupine_run_error(r) == NULL, "no error");
    check(lupine_run_dup(r, &rcopy) == LUPINE_OK && strcmp(lupine_run_id(rcopy),
          lupine_run_id(r)) == 0 && lupine_run_error(rcopy) == NULL, "lupine_run_dup");
    lupine_run_free(rcopy);
    lupine_run_free(r);
  }
  lua_settop(L, 0);

  /* a host function that reads the catalog through the C API, in a step */
  code(rt, lupine_exec_string(rt,
       "local s = lupine.step { name = 'reader', enable_cache = false,\n"
       "  function() return host_latest('doubled')[2] end }\n"
       "RESULT = s()", "=reader"), LUPINE_OK, "", "a step calls the C API through the host");
  lua_getglobal(L, "RESULT");
  check(lua_tointeger(L, -1) == 4, "and gets the value of the latest version");
  lua_settop(L, 0);

  /* a failing step: the run fails; a raising script */
  code(rt, lupine_exec_string(rt,
       "local s = lupine.step { name = 'broken', function() error('no luck') end }\n"
       "lupine.pipeline { name = 'broken_pipeline', function() s() end }()", "=broken"),
       LUPINE_FAILED, NULL, "a script whose run fails raises the run's error: a failed run");
  check(strstr(lupine_errmsg(rt), "pipeline run 'broken_pipeline-") != NULL &&
        strstr(lupine_errmsg(rt), "no luck") != NULL, "the message names the run and the error");
  code(rt, lupine_exec_string(rt,
       "local s = lupine.step { name = 'broken', function() error('no luck') end }\n"
       "lupine.pipeline { name = 'broken_pipeline', function() s() end }\n"
       "  :with_options { raise_on_failure = false }()", "=broken"),
       LUPINE_FAILED, NULL, "a run that fails without raising");
  check(strncmp(lupine_errmsg(rt), "pipeline run 'broken_pipeline-", 30) == 0 &&
        strstr(lupine_errmsg(rt), "no luck") != NULL, "the message names the run and the error");
  memset(&s, 0, sizeof s);
  list_runs(rt, "broken_pipeline", see_run, &s);
  same(s.what, "broken_pipeline:failed broken_pipeline:failed", "the failed runs are listed");

  /* missing and damaged objects */
  object_path(rt, copy, path);
  check(remove(path) == 0, "remove the object of doubled:1");
  code(rt, lupine_av_read(rt, copy, &data, &len), LUPINE_NOTFOUND, NULL,
       "reading a version whose object is gone");
  snprintf(want, sizeof want, "cannot load artifact 'doubled' version 1 (%s): ",
           lupine_av_id(copy));
  check(strncmp(lupine_errmsg(rt), want, strlen(want)) == 0 && data == NULL && len == 0,
        "the message names the artifact, version and id");
  code(rt, lupine_av_load(rt, copy, L), LUPINE_NOTFOUND, NULL,
       "loading a version whose object is gone");
  check(lua_gettop(L) == 0, "pushes nothing");
  {
    FILE *f = fopen(path, "wb");
    fputs("not a zstd frame", f);
    fclose(f);
  }
  code(rt, lupine_av_read(rt, copy, &data, &len), LUPINE_CORRUPT, NULL,
       "reading a damaged object");
  code(rt, lupine_av_load(rt, copy, L), LUPINE_CORRUPT, NULL, "loading a damaged object");
  lupine_av_free(copy);
  lupine_av_free(v);
  lupine_close(rt);
}

static void test_materializer(void) {
  char home[PATHSZ];
  lupine *rt;
  lupine_artifact_version *v = NULL;
  lua_State *L, *L2;
  int rc;
  vec *x;
  home_path(home, "materializer");
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;
  register_host(rt);
  L = lupine_state(rt);
  code(rt, lupine_register_materializer(rt, "Vec", vec_match, vec_save, vec_load), LUPINE_OK,
       "", "register a materializer written in C");
  code(rt, lupine_exec_string(rt,
       "local make = lupine.step { name = 'make', outputs = { 'vec' },\n"
       "  function() return vec_new(1.5, 2, 3) end }\n"
       "local sum = lupine.step { name = 'sum', outputs = { 'sum' },\n"
       "  function(v) return vec_sum(v) end }\n"
       "lupine.pipeline { name = 'vectors', function() sum(make()) end }()", "=vectors"),
       LUPINE_OK, "", "a pipeline passes a host userdata between steps");
  rc = lupine_av_find(rt, "sum", NULL, &v);
  if (check(rc == LUPINE_OK && lupine_av_load(rt, v, L) == LUPINE_OK,
            "load the step's result")) {
    check(lua_tonumber(L, -1) == 6.5, "the second step got the vector (sum 6.5)");
  }
  lua_settop(L, 0);
  lupine_av_free(v);
  rc = lupine_av_find(rt, "vec", NULL, &v);
  code(rt, rc, LUPINE_OK, "", "find the stored vector");
  if (rc != LUPINE_OK) { lupine_close(rt); return; }
  same(lupine_av_data_type(v), "Vec", "its data type is the materializer's type");
  code(rt, lupine_av_load(rt, v, L), LUPINE_OK, "", "load it into the runtime's state");
  x = luaL_testudata(L, -1, VEC_MT);
  check(x != NULL && x->n == 3 && x->x[0] == 1.5 && x->x[2] == 3,
        "it comes back as the host's userdata, through the C load function");
  lua_settop(L, 0);
  L2 = luaL_newstate();
  code(rt, lupine_av_load(rt, v, L2), LUPINE_OK, "", "load it into another lua_State");
  check(lua_istable(L2, 1) && lua_getfield(L2, 1, "type") == LUA_TSTRING &&
        strcmp(lua_tostring(L2, -1), "Vec") == 0 && lua_getfield(L2, 1, "value") == LUA_TTABLE &&
        luaL_len(L2, -1) == 3, "there it is { type = 'Vec', value = { 1.5, 2, 3 } }");
  lua_close(L2);
  lupine_av_free(v);
  lupine_close(rt);
}

/* A host that owns its lua_State and loads the module itself. */
static void test_luaopen(void) {
  char home[PATHSZ], code_[PATHSZ + 512];
  lua_State *L = luaL_newstate();
  int ok;
  home_path(home, "luaopen");
  luaL_openlibs(L);
  luaL_requiref(L, "lupine", luaopen_lupine, 1);
  check(lua_istable(L, -1), "luaL_requiref(L, \"lupine\", luaopen_lupine, 1) pushes the module");
  lua_pop(L, 1);
  lua_register(L, "host_twice", host_twice);
  snprintf(code_, sizeof code_,
           "lupine.set_home('%s')\n"
           "local s = lupine.step { name = 'twice', outputs = { 'twice' },\n"
           "  function() return host_twice(21) end }\n"
           "lupine.pipeline { name = 'plain', function() s() end }()\n"
           "return lupine.load_artifact('twice'), package.loaded.lupine == lupine,\n"
           "  lupine.home()", home);
  ok = luaL_dostring(L, code_) == LUA_OK;
  if (!check(ok, "a plain host state runs a pipeline with a host function"))
    printf("#   %s\n", lua_tostring(L, -1));
  else {
    check(lua_tointeger(L, 1) == 42 && lua_toboolean(L, 2), "and loads the result back");
    same(lua_tostring(L, 3), home, "in the catalog it chose");
  }
  lua_close(L);
}

/* ---- two handles, two threads ---- */

#define THREAD_RUNS 4

typedef struct worker {
  int id;
  int failures;
  char note[512];
} worker;

static void *thread_main(void *arg) {
  worker *w = arg;
  char home[PATHSZ], code_[1024];
  lupine *rt;
  lupine_artifact_version *v = NULL;
  seen s;
  int i;
  snprintf(home, sizeof home, "%s/thread-%d", base, w->id);
  if (lupine_open(&rt, home) != LUPINE_OK) {
    snprintf(w->note, sizeof w->note, "open: %s", lupine_errmsg(rt));
    w->failures++;
    lupine_close(rt);
    return NULL;
  }
  register_host(rt);
  for (i = 1; i <= THREAD_RUNS && w->failures == 0; i++) {
    int seed = w->id * 1000 + i;
    lua_State *L = lupine_state(rt);
    /* The timeout and retries are for the ASan build only: gcc 12's
    ** AddressSanitizer does not hold its allocator's locks across fork
    ** (LLVM 17's does), so a worker forked while the other thread is
    ** inside malloc can hang; the runtime stops it and runs it again, as
    ** it would any hung worker. */
    snprintf(code_, sizeof code_,
             "local make = lupine.step { name = 'make', outputs = { 'numbers' },\n"
             "  function(seed) local t = {} for k = 1, 10 do t[k] = seed * k end return t end }\n"
             "local total = lupine.step { name = 'total', outputs = { 'total' },\n"
             "  function(numbers) local s = 0\n"
             "    for _, x in ipairs(numbers) do s = s + host_twice(x) end return s end }\n"
             "lupine.pipeline { name = 'thread%d', timeout = 20, retries = 2,\n"
             "  function(seed) total(make(seed)) end }(%d)", w->id, seed);
    if (lupine_exec_string(rt, code_, "=thread") != LUPINE_OK) {
      snprintf(w->note, sizeof w->note, "run %d: %s", i, lupine_errmsg(rt));
      w->failures++;
      break;
    }
    if (lupine_av_find(rt, "total", NULL, &v) != LUPINE_OK ||
        lupine_av_load(rt, v, L) != LUPINE_OK) {
      snprintf(w->note, sizeof w->note, "find/load %d: %s", i, lupine_errmsg(rt));
      w->failures++;
      lupine_av_free(v);
      break;
    }
    if (lua_tointeger(L, -1) != 110 * seed || atoi(lupine_av_version(v)) != i) {
      snprintf(w->note, sizeof w->note, "run %d: got %lld as version %s, want %d as %d", i,
               (long long)lua_tointeger(L, -1), lupine_av_version(v), 110 * seed, i);
      w->failures++;
    }
    lua_settop(L, 0);
    lupine_av_free(v);
    v = NULL;
  }
  memset(&s, 0, sizeof s);
  if (w->failures == 0 && (list_runs(rt, NULL, see_run, &s) != LUPINE_OK ||
                           s.n != THREAD_RUNS)) {
    snprintf(w->note, sizeof w->note, "runs listed: %d (%s)", s.n, lupine_errmsg(rt));
    w->failures++;
  }
  memset(&s, 0, sizeof s);
  if (w->failures == 0 && (list_versions(rt, "total", see_version, &s) != LUPINE_OK ||
                           s.n != THREAD_RUNS)) {
    snprintf(w->note, sizeof w->note, "versions listed: %d (%s)", s.n, lupine_errmsg(rt));
    w->failures++;
  }
  lupine_close(rt);
  return NULL;
}

static void test_threads(void) {
  pthread_t t[2];
  worker w[2];
  int i, started[2];
  for (i = 0; i < 2; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].id = i + 1;
    started[i] = pthread_create(&t[i], NULL, thread_main, &w[i]) == 0;
  }
  for (i = 0; i < 2; i++) {
    if (started[i]) pthread_join(t[i], NULL);
    if (!check(started[i] && w[i].failures == 0,
               "thread %d: %d runs on its own handle and catalog, read back", i + 1, THREAD_RUNS))
      printf("#   %s\n", w[i].note);
  }
}

/*
** A worker forked while another thread of the host is inside sqlite,
** holding its memory mutex (the host may use sqlite itself): the worker
** must not inherit the mutex locked. The log line "step 'peek' started"
** comes just before the fork; the log callback has the other thread take
** the mutex then, and hold it a while.
*/
typedef struct holder {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int state;   /* 0 idle, 1 asked to take it, 2 holding it */
} holder;

static void *hold_sqlite(void *arg) {
  holder *h = arg;
  sqlite3_mutex *mem = sqlite3_mutex_alloc(SQLITE_MUTEX_STATIC_MEM);
  struct timespec pause = {0, 300 * 1000 * 1000};
  pthread_mutex_lock(&h->lock);
  while (h->state != 1) pthread_cond_wait(&h->cond, &h->lock);
  sqlite3_mutex_enter(mem);
  h->state = 2;
  pthread_cond_broadcast(&h->cond);
  pthread_mutex_unlock(&h->lock);
  nanosleep(&pause, NULL);
  sqlite3_mutex_leave(mem);
  return NULL;
}

static void hold_at_fork(void *ud, int level, const char *msg) {
  holder *h = ud;
  (void)level;
  if (strcmp(msg, "step 'peek' started") != 0) return;
  pthread_mutex_lock(&h->lock);
  h->state = 1;
  pthread_cond_broadcast(&h->cond);
  while (h->state != 2) pthread_cond_wait(&h->cond, &h->lock);
  pthread_mutex_unlock(&h->lock);
}

static void test_fork_while_sqlite_busy(void) {
  char home[PATHSZ];
  holder h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  pthread_t t;
  lupine *rt;
  lua_State *L;
  int rc;
  home_path(home, "sqlite-busy");
  if (lupine_open(&rt, home) != LUPINE_OK || pthread_create(&t, NULL, hold_sqlite, &h) != 0) {
    check(0, "set up the sqlite test");
    lupine_close(rt);
    return;
  }
  lupine_set_log(rt, hold_at_fork, &h);
  L = lupine_state(rt);
  /* the step opens the catalog in its worker; a worker that hangs is
  ** stopped after 10 s, and the run fails */
  rc = lupine_exec_string(rt,
    "lupine.save_artifact({ 5, 6 }, 'saved')\n"
    "local peek = lupine.step { name = 'peek', timeout = 10,\n"
    "  function() return lupine.load_artifact('saved')[2] end }\n"
    "PEEKED = peek()", "=peek");
  if (h.state != 2) {
    h.state = 1;   /* the step never started: let the thread finish */
    pthread_cond_broadcast(&h.cond);
  }
  pthread_join(t, NULL);
  check(h.state == 2, "another thread held sqlite's memory mutex when the worker was forked");
  code(rt, rc, LUPINE_OK, "", "the worker still reads the catalog");
  lua_getglobal(L, "PEEKED");
  check(lua_tointeger(L, -1) == 6, "and gets the value");
  lupine_close(rt);
}

/* ---- allocation failure ---- */

typedef struct budget {
  long left;   /* allocations that may still succeed; < 0: no limit */
  long count;
} budget;

static void *limited(void *ud, void *ptr, size_t osize, size_t nsize) {
  budget *b = ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (b->left == 0) return NULL;
  if (b->left > 0) b->left--;
  b->count++;
  return realloc(ptr, nsize);
}

static void test_alloc_failure(void) {
  char home[PATHSZ];
  lupine *rt;
  lupine_artifact_version *v;
  budget b = {-1, 0};
  char escaped[PATHSZ];
  long needed, n, bad = 0, step;
  int rc, ok;
  home_path(home, "alloc");
  home_path(escaped, "escaped");
  /* how much a successful open takes */
  rc = lupine_open_ex(&rt, home, limited, &b);
  needed = b.count;
  check(rc == LUPINE_OK, "lupine_open_ex with a host allocator");
  lupine_close(rt);
  printf("# an open takes %ld Lua allocations\n", needed);
  step = needed / 400 + 1;
  for (n = 0; n < needed; n += n < 100 ? 1 : step) {
    b.left = n;
    rt = (lupine *)&rt;
    rc = lupine_open_ex(&rt, home, limited, &b);
    if (rc != LUPINE_NOMEM || rt != NULL) {
      if (bad++ == 0) printf("#   open with %ld allocations: %d %s\n", n, rc, lupine_errmsg(rt));
    }
    lupine_close(rt);
  }
  check(bad == 0, "lupine_open_ex fails with LUPINE_NOMEM and no handle at every point tried");

  /* a runtime that stored something, then lookups and runs with little memory */
  b.left = -1;
  if (lupine_open_ex(&rt, home, limited, &b) != LUPINE_OK) return;
  register_host(rt);
  rc = lupine_exec_string(rt,
    "lupine.save_artifact({ 1, 2, 3 }, 'small')\n"
    "lupine.pipeline { name = 'tiny', function()\n"
    "  lupine.step { name = 'one', function() return host_twice(1) end }() end }()", "=setup");
  check(rc == LUPINE_OK, "save and run with a host allocator");
  bad = 0;
  for (n = 0, ok = 0; ok < 3; n++) {   /* until three in a row succeed */
    b.left = n;
    v = NULL;
    rc = lupine_av_find(rt, "small", NULL, &v);
    if (rc == LUPINE_OK) rc = lupine_av_load(rt, v, lupine_state(rt));
    lupine_av_free(v);
    ok = rc == LUPINE_OK ? ok + 1 : 0;
    if (rc != LUPINE_OK && rc != LUPINE_NOMEM) {
      if (bad++ == 0) printf("#   find with %ld allocations: %d %s\n", n, rc, lupine_errmsg(rt));
    }
    lua_settop(lupine_state(rt), 0);
  }
  printf("# a find and load take %ld Lua allocations\n", n - 3);
  check(bad == 0, "lupine_av_find and _load give LUPINE_OK or LUPINE_NOMEM at every point");
  for (n = 0, ok = 0; ok < 3; n += n < 200 ? 1 : 7) {
    b.left = n;
    rc = lupine_exec_string(rt,
      "lupine.pipeline { name = 'tiny', enable_cache = false, function()\n"
      "  lupine.step { name = 'one', function() return host_twice(1) end }() end }()", "=tiny");
    if (getpid() != main_pid) {
      /* a worker that could not report came back out of lupine_exec_string */
      FILE *f = fopen(escaped, "w");
      if (f != NULL) fclose(f);
      _exit(0);
    }
    ok = rc == LUPINE_OK ? ok + 1 : 0;
    if (rc != LUPINE_OK && rc != LUPINE_NOMEM && rc != LUPINE_SCRIPT) {
      if (bad++ == 0) printf("#   run with %ld allocations: %d %s\n", n, rc, lupine_errmsg(rt));
    }
  }
  printf("# a run takes about %ld Lua allocations\n", n);
  check(bad == 0, "a run under memory pressure fails with a code, never a crash");
  check(access(escaped, F_OK) != 0, "no step worker ever returns into the host's code");
  b.left = -1;
  v = NULL;
  rc = lupine_av_find(rt, "small", NULL, &v);
  if (rc == LUPINE_OK) rc = lupine_av_load(rt, v, lupine_state(rt));
  if (!check(rc == LUPINE_OK && luaL_len(lupine_state(rt), -1) == 3,
             "the handle still works afterwards"))
    printf("#   %d %s\n", rc, lupine_errmsg(rt));
  lupine_av_free(v);
  lupine_close(rt);
}

/* ---- no memory for the Lua state ---- */

static void test_failed_open(void) {
  budget b = {0, 0};
  lupine *rt;
  int rc = lupine_open_ex(&rt, NULL, limited, &b);
  code(rt, rc, LUPINE_NOMEM, NULL, "lupine_open_ex without memory for the Lua state");
  check(rt == NULL, "gives no handle, as lupine.h says");
  lupine_close(rt);
}

/* ---- files and folders ---- */

/* A pipeline whose step returns a file and a folder it wrote (in the
** folder DIR, a global). */
static const char files_pipeline[] =
  "local make = lupine.step { name = 'make', outputs = { 'weights', 'report' }, function()\n"
  "  os.execute('mkdir -p ' .. DIR .. '/report/sub')\n"
  "  local f = assert(io.open(DIR .. '/weights.bin', 'w')) f:write('w1 w2\\n') f:close()\n"
  "  f = assert(io.open(DIR .. '/report/sub/notes.txt', 'w')) f:write('fine\\n') f:close()\n"
  "  return lupine.file(DIR .. '/weights.bin'), lupine.dir(DIR .. '/report')\n"
  "end }\n"
  "lupine.pipeline { name = 'files', function() make() end }()\n";

/* The whole content of the file at path into buf ("" if it cannot be read). */
static void slurp(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "rb");
  size_t n = f != NULL ? fread(buf, 1, size - 1, f) : 0;
  buf[n] = '\0';
  if (f != NULL) fclose(f);
}

static void test_files(void) {
  char home[PATHSZ], dir[PATHSZ], text[64], want[512], sub[PATHSZ + 32];
  lupine *rt;
  lupine_artifact_version *v = NULL, *d = NULL;
  lua_State *L;
  unsigned char *data = NULL;
  char *path = NULL;
  size_t len = 0;
  home_path(home, "files");
  home_path(dir, "files-src");
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;
  L = lupine_state(rt);
  lua_pushstring(L, dir);
  lua_setglobal(L, "DIR");
  code(rt, lupine_exec_string(rt, files_pipeline, "=files"), LUPINE_OK, "",
       "a step returns a file and a folder");
  if (lupine_av_find(rt, "weights", NULL, &v) != LUPINE_OK ||
      lupine_av_find(rt, "report", NULL, &d) != LUPINE_OK) {
    check(0, "find the file and folder versions: %s", lupine_errmsg(rt));
    lupine_av_free(v);
    lupine_close(rt);
    return;
  }
  same(lupine_av_data_type(v), "file", "the file's data type");
  same(lupine_av_data_type(d), "dir", "the folder's data type");

  /* load: what Lua gets, the path of a read-only copy */
  code(rt, lupine_av_load(rt, v, L), LUPINE_OK, "", "lupine_av_load of a file");
  check(lua_gettop(L) == 1 && lua_type(L, 1) == LUA_TSTRING, "pushes a string");
  if (lua_type(L, 1) == LUA_TSTRING) {
    slurp(lua_tostring(L, 1), text, sizeof text);
    same(text, "w1 w2\n", "the path of a copy with the file's bytes");
    check(strcmp(lua_tostring(L, 1), dir) != 0 &&
          strncmp(lua_tostring(L, 1), home, strlen(home)) == 0,
          "a copy in the catalog folder, not the step's file");
  }
  lua_settop(L, 0);
  code(rt, lupine_av_load(rt, d, L), LUPINE_OK, "", "lupine_av_load of a folder");
  if (check(lua_type(L, 1) == LUA_TSTRING, "pushes a string")) {
    snprintf(sub, sizeof sub, "%s/sub/notes.txt", lua_tostring(L, 1));
    slurp(sub, text, sizeof text);
    same(text, "fine\n", "the path of a copy of the folder, with what is in it");
  }
  lua_settop(L, 0);

  /* path: the same, without a Lua state */
  code(rt, lupine_av_path(rt, v, &path), LUPINE_OK, "", "lupine_av_path of a file");
  if (path != NULL) {
    slurp(path, text, sizeof text);
    same(text, "w1 w2\n", "the path of a copy with the file's bytes");
  }
  lupine_free(path);
  code(rt, lupine_av_path(rt, d, &path), LUPINE_OK, "", "lupine_av_path of a folder");
  if (path != NULL) {
    snprintf(sub, sizeof sub, "%s/sub/notes.txt", path);
    slurp(sub, text, sizeof text);
    same(text, "fine\n", "the path of a copy of the folder");
  }
  lupine_free(path);

  /* read: the stored bytes, here the archive */
  code(rt, lupine_av_read(rt, v, &data, &len), LUPINE_OK, "", "lupine_av_read of a file");
  check(data != NULL && (int64_t)len == lupine_av_size(v) && len >= 512 &&
        memcmp(data + 257, "ustar", 5) == 0 && strcmp((char *)data, "weights.bin") == 0,
        "gives the stored ustar archive, its one entry the file");
  lupine_free(data);
  lupine_av_free(d);
  lupine_av_free(v);

  /* a version that is a value has no path */
  code(rt, lupine_exec_string(rt, "lupine.save_artifact({ 1 }, 'plain')", "=plain"), LUPINE_OK,
       "", "save a value");
  lupine_av_find(rt, "plain", NULL, &v);
  path = (char *)&path;
  snprintf(want, sizeof want, "lupine_av_path: artifact 'plain' version 1 (%s) is a "
           "value (numbers), not a file or folder", lupine_av_id(v));
  code(rt, lupine_av_path(rt, v, &path), LUPINE_MISUSE, want,
       "lupine_av_path of a value");
  check(path == NULL, "leaves *path NULL");
  code(rt, lupine_av_path(rt, NULL, &path), LUPINE_MISUSE, "lupine_av_path: v is NULL",
       "lupine_av_path without a version");
  code(rt, lupine_av_path(rt, v, NULL), LUPINE_MISUSE, "lupine_av_path: path is NULL",
       "lupine_av_path without path");
  check(lupine_av_path(NULL, v, &path) == LUPINE_MISUSE && path == NULL,
        "lupine_av_path(NULL) is misuse");
  lupine_av_free(v);
  lupine_close(rt);
}

/* ---- the catalog folder ---- */

/* lupine_home's string belongs to the handle: a script that switches the
** catalog does not free it. */
static void test_home_lifetime(void) {
  char first[PATHSZ], second[PATHSZ], script[2 * PATHSZ];
  const char *h1, *h2;
  lupine *rt;
  home_path(first, "home-1");
  home_path(second, "home-2");
  if (!check(lupine_open(&rt, first) == LUPINE_OK, "open a runtime")) return;
  h1 = lupine_home(rt);
  same(h1, first, "lupine_home is the folder given");
  snprintf(script, sizeof script, "lupine.set_home('%s')", second);
  code(rt, lupine_exec_string(rt, script, "=switch"), LUPINE_OK, "", "a script switches catalogs");
  h2 = lupine_home(rt);
  same(h2, second, "lupine_home follows it");
  same(h1, first, "the string lupine_home gave before is still valid");
  snprintf(script, sizeof script, "lupine.set_home('%s')", first);
  lupine_exec_string(rt, script, "=switch");
  same(lupine_home(rt), first, "and back");
  same(h2, second, "the second string too");
  lupine_close(rt);
}

/* lupine_set_catalog: another catalog (a file here), "" refused, NULL back
** to the default (the folder's catalog.db, or $LUPINE_CATALOG's). */
static void test_set_catalog(void) {
  char home[PATHSZ], db[PATHSZ + 16];
  struct stat sb;
  lupine *rt;
  home_path(home, "home-catalog");
  snprintf(db, sizeof db, "%s-other.db", home);
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;
  code(rt, lupine_set_catalog(rt, ""), LUPINE_MISUSE,
       "lupine_set_catalog: an empty target names no catalog (give none for the default)",
       "lupine_set_catalog with \"\"");
  {
    /* (the suite's second pass names a PostgreSQL catalog in LUPINE_CATALOG) */
    const char *env = getenv("LUPINE_CATALOG"), *name = lupine_catalog_name(rt);
    if (env != NULL && env[0] != '\0')
      check(name != NULL && strncmp(name, "PostgreSQL postgresql://", 24) == 0,
            "lupine_catalog_name: the kind and where, for $LUPINE_CATALOG's");
    else
      check(name != NULL && strstr(name, "home-catalog") != NULL &&
            strcmp(lupine_catalog_name(rt), lupine_home(rt)) == 0,
            "lupine_catalog_name: the folder, for its own catalog.db");
  }
  code(rt, lupine_set_catalog(rt, "mysql://alice:sekrit@db/lupine"), LUPINE_MISUSE,
       "lupine_set_catalog: catalog 'mysql://...': not a catalog Lupine knows: a PostgreSQL "
       "catalog is named by a postgresql:// URI or a key=value connection string, a sqlite "
       "catalog by its file's path", "lupine_set_catalog with a target no backend takes");
  code(rt, lupine_set_catalog(rt, db), LUPINE_OK, "", "lupine_set_catalog with a file");
  {
    char want[PATHSZ + 32];
    snprintf(want, sizeof want, "sqlite %s", db);
    check(lupine_catalog_name(rt) != NULL && strcmp(lupine_catalog_name(rt), want) == 0,
          "lupine_catalog_name: the kind and the file, for another catalog");
  }
  code(rt, lupine_exec_string(rt, "lupine.save_artifact(1, 'in_other')", "=save"), LUPINE_OK, "",
       "save into it");
  check(stat(db, &sb) == 0, "the catalog is that file");
  code(rt, lupine_set_catalog(rt, NULL), LUPINE_OK, "", "lupine_set_catalog(NULL)");
  code(rt, lupine_exec_string(rt, "assert(lupine.Client():list_artifacts{ name = 'in_other' }"
       ".total == 0)", "=back"), LUPINE_OK, "", "back to the default catalog");
  code(rt, lupine_set_catalog(rt, db), LUPINE_OK, "", "the file again");
  code(rt, lupine_exec_string(rt, "assert(lupine.Client():get_artifact_version('in_other'))",
       "=again"), LUPINE_OK, "", "what was saved there is there");
  code(NULL, lupine_set_catalog(NULL, db), LUPINE_MISUSE, NULL, "lupine_set_catalog(NULL, ...)");
  check(lupine_catalog_name(NULL) == NULL, "lupine_catalog_name(NULL)");
  lupine_close(rt);
}

/* A relative home is relative to the directory at open (or at
** lupine.set_home), not at first use. */
static void test_relative_home(void) {
  char cwd[PATHSZ], real[PATHSZ], dir[PATHSZ + 16], want[2 * PATHSZ], db[3 * PATHSZ];
  lupine *rt = NULL, *rt2 = NULL;
  if (getcwd(cwd, sizeof cwd) == NULL || realpath(base, real) == NULL) {
    check(0, "set up the relative home test");
    return;
  }
  snprintf(dir, sizeof dir, "%s/relative", real);
  mkdir(dir, 0777);
  if (chdir(dir) != 0) {
    check(0, "set up the relative home test");
    return;
  }
  check(lupine_open(&rt, "rel-home") == LUPINE_OK, "lupine_open with a relative home");
  if (chdir(real) == 0) {
    snprintf(want, sizeof want, "%s/rel-home", dir);
    same(lupine_home(rt), want, "it is resolved against the directory at open");
    snprintf(db, sizeof db, "%s/catalog.db", want);
    /* (its file: unless LUPINE_CATALOG puts the catalog on a server) */
    check(getenv("LUPINE_CATALOG") != NULL || access(db, F_OK) == 0,
          "the catalog is made there");
  }
  if (chdir(dir) == 0) {
    lupine_exec_string(rt, "lupine.set_home('second')", "=switch");
    if (chdir(real) == 0) {
      snprintf(want, sizeof want, "%s/second", dir);
      same(lupine_home(rt), want, "lupine.set_home resolves a relative folder when called");
    }
  }
  setenv("LUPINE_HOME", "from-env", 1);
  if (chdir(dir) == 0) {
    check(lupine_open(&rt2, NULL) == LUPINE_OK, "lupine_open with a relative $LUPINE_HOME");
    if (chdir(real) == 0) {
      snprintf(want, sizeof want, "%s/from-env", dir);
      same(lupine_home(rt2), want, "it too is resolved at open");
    }
  }
  unsetenv("LUPINE_HOME");
  lupine_close(rt2);
  lupine_close(rt);
  if (chdir(cwd) != 0) check(0, "back to the directory the tests started in");
}

/* ---- interrupting ---- */

/* host_interrupt(): the host interrupts the script that called it */
static int host_interrupt(lua_State *L) {
  lupine_interrupt(lua_touserdata(L, lua_upvalueindex(1)));
  return 0;
}

/* The log callback interrupts the run when its step 'slow' starts. */
static void interrupt_at_start(void *ud, int level, const char *msg) {
  (void)level;
  if (strcmp(msg, "step 'slow' started") == 0) lupine_interrupt(ud);
}

static const char slow_pipeline[] =
  "local slow = lupine.step { name = 'slow', function() os.execute('sleep 30') end }\n"
  "lupine.pipeline { name = 'slow', enable_cache = false, function() slow() end }\n"
  "  :with_options { raise_on_failure = false }()\n";

static const char raising_slow_pipeline[] =
  "local slow = lupine.step { name = 'slow', function() os.execute('sleep 30') end }\n"
  "lupine.pipeline { name = 'slow', enable_cache = false, function() slow() end }()\n";

static void test_interrupt(void) {
  char home[PATHSZ];
  lupine *rt;
  lupine_artifact_version *v = NULL;
  lua_State *L;
  seen s;
  time_t t0;
  home_path(home, "interrupt");
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;
  L = lupine_state(rt);
  code(rt, lupine_exec_string(rt, "lupine.save_artifact(1, 'one') X = 1", "=setup"), LUPINE_OK,
       "", "save an artifact");
  lupine_interrupt(rt);
  code(rt, lupine_exec_string(rt, "X = X + 1", "=after"), LUPINE_OK, "",
       "lupine_interrupt with nothing running does not stop the next script");
  lupine_interrupt(rt);
  code(rt, lupine_av_find(rt, "one", NULL, &v), LUPINE_OK, "",
       "nor the next lookup");
  lupine_av_free(v);
  lua_pushlightuserdata(L, rt);
  lua_pushcclosure(L, host_interrupt, 1);
  lua_setglobal(L, "host_interrupt");
  code(rt, lupine_exec_string(rt, "host_interrupt() X = X + 1", "=running"), LUPINE_INTERRUPT,
       NULL, "lupine_interrupt while a script runs stops it");
  check(lupine_errcode(rt) == LUPINE_INTERRUPT, "lupine_errcode says so too");
  check(strstr(lupine_errmsg(rt), "interrupted") != NULL, "with the message 'interrupted'");
  code(rt, lupine_exec_string(rt, "X = X + 1", "=next"), LUPINE_OK, "", "the next script runs");
  lua_getglobal(L, "X");
  check(lua_tointeger(L, -1) == 3, "the interrupted one stopped before its assignment");
  lua_settop(L, 0);

  /* a run in progress is stopped, through the API or through the host's own call */
  lupine_set_log(rt, interrupt_at_start, rt);
  t0 = time(NULL);
  code(rt, lupine_exec_string(rt, slow_pipeline, "=slow"), LUPINE_INTERRUPT, NULL,
       "lupine_interrupt during a run stops the run");
  check(strncmp(lupine_errmsg(rt), "pipeline run 'slow-", 19) == 0 &&
        strstr(lupine_errmsg(rt), "' was stopped") != NULL, "the message names the run");
  code(rt, lupine_exec_string(rt, raising_slow_pipeline, "=slow"), LUPINE_INTERRUPT, NULL,
       "and so does a run that raises when it is stopped");
  check(strncmp(lupine_errmsg(rt), "pipeline run 'slow-", 19) == 0 &&
        strstr(lupine_errmsg(rt), "' was stopped") != NULL, "the message names the run");
  lua_pushstring(L, slow_pipeline);
  lua_setglobal(L, "SLOW");
  check(luaL_dostring(L, "load(SLOW, '=slow')()") == LUA_OK,
        "a run the host starts in the state itself");
  lua_settop(L, 0);
  check(time(NULL) - t0 < 20, "the runs ended without waiting for their step");
  memset(&s, 0, sizeof s);
  list_runs(rt, "slow", see_run, &s);
  same(s.what, "slow:stopped slow:stopped slow:stopped", "the runs are stopped");
  lupine_set_log(rt, NULL, NULL);
  code(rt, lupine_exec_string(rt, "X = X + 1", "=after-run"), LUPINE_OK, "",
       "and the next script runs");
  lupine_close(rt);
}

/* ---- events ---- */

typedef struct events {
  lupine *rt;
  char text[4096];    /* each event but ticks, a line each */
  int ticks, in_order;
  double last_at, nap_ms, run_ms;
  int stop_after_ms;  /* > 0: interrupt the run at the first tick this late */
  int view_failed;    /* the Lua run as a view would, right after interrupting, failed */
} events;

static void record_event(void *ud, const lupine_event *ev) {
  static const char *const names[] = {
    "?", "run_start", "step_start", "step_end", "step_retry", "output", "tick", "run_end"};
  events *e = ud;
  size_t n = strlen(e->text);
  if (ev->at < e->last_at) e->in_order = 0;
  e->last_at = ev->at;
  if (ev->type == LUPINE_EVENT_TICK) {
    e->ticks++;
    if (e->stop_after_ms > 0 && ev->at >= e->stop_after_ms) {
      lua_State *L = lupine_state(e->rt);
      int top = lua_gettop(L);
      lupine_interrupt(e->rt);
      /* as a host's view runs Lua when told of an event: the run answers the
      ** interrupt, the view's code is not stopped by it */
      if (luaL_dostring(L, "local n = 0 for i = 1, 100 do n = n + i end return n") != LUA_OK)
        e->view_failed = 1;
      lua_settop(L, top);
    }
    return;
  }
  if (ev->type == LUPINE_EVENT_STEP_END && strcmp(ev->step, "nap") == 0) e->nap_ms = ev->ms;
  if (ev->type == LUPINE_EVENT_RUN_END) e->run_ms = ev->ms;
  snprintf(e->text + n, sizeof e->text - n, "%s %s %s %s %s | %s | %d %d\n",
           ev->type >= 1 && ev->type <= 7 ? names[ev->type] : "?", ev->run, ev->pipeline,
           ev->step ? ev->step : "-", ev->status ? ev->status : "-",
           ev->detail ? ev->detail : "-", ev->total, ev->attempt);
}

static const char events_pipeline[] =
  "local nap = lupine.step { name = 'nap', outputs = { 'rested' },\n"
  "  function() print('zzz') os.execute('sleep 0.3') return 1 end }\n"
  "local flaky = lupine.step { name = 'flaky', retries = 1, function(x) error('no luck', 0) end }\n"
  "local after = lupine.step('after', function(y) return y end)\n"
  "lupine.pipeline { name = 'ev', enable_cache = false, function() after(flaky(nap())) end }\n"
  "  :with_options { run_name = RUN, raise_on_failure = false } ()\n";

static void test_events(void) {
  char home[PATHSZ];
  lupine *rt;
  logbuf log = {"", 0};
  events e;
  home_path(home, "events");
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;
  memset(&e, 0, sizeof e);
  e.rt = rt;
  e.in_order = 1;
  check(LUPINE_EVENT_RUN_START == 1 && LUPINE_EVENT_STEP_START == 2 &&
        LUPINE_EVENT_STEP_END == 3 && LUPINE_EVENT_STEP_RETRY == 4 && LUPINE_EVENT_OUTPUT == 5 &&
        LUPINE_EVENT_TICK == 6 && LUPINE_EVENT_RUN_END == 7, "event types keep their values");
  lupine_set_events(NULL, record_event, &e);   /* harmless */
  lupine_set_events(rt, record_event, &e);
  lupine_set_log(rt, capture, &log);
  code(rt, lupine_exec_string(rt, "RUN = 'first'", "=setup"), LUPINE_OK, "", "setup");
  code(rt, lupine_exec_string(rt, events_pipeline, "=events"), LUPINE_RUNFAILED, NULL,
       "a run with a retried failure");
  same(e.text,
       "run_start first ev - - | - | 3 0\n"
       "step_start first ev nap - | - | 3 1\n"
       "output first ev nap - | zzz | 3 0\n"
       "step_end first ev nap completed | rested v1 | 3 0\n"
       "step_start first ev flaky - | - | 3 1\n"
       "step_retry first ev flaky - | step 'flaky' (events:3) failed: no luck | 3 1\n"
       "step_start first ev flaky - | - | 3 2\n"
       "step_end first ev flaky failed | step 'flaky' (events:3) failed: no luck | 3 0\n"
       "step_end first ev after skipped | - | 3 0\n"
       "run_end first ev - failed | - | 3 0\n",
       "each step's start, attempts, output and end, as data, in order");
  check(e.in_order, "their times never go back");
  check(e.ticks >= 1, "ticks come while a step runs (%d)", e.ticks);
  check(e.nap_ms >= 300 && e.run_ms >= e.nap_ms, "a step's ms is how long it ran (%.1f of %.1f)",
        e.nap_ms, e.run_ms);
  same(log.text, "[nap] zzz\n", "the log still gets what the step printed");

  /* interrupted: a stopped step says how long it ran */
  memset(e.text, 0, sizeof e.text);
  e.stop_after_ms = 150;
  e.last_at = 0;
  code(rt, lupine_exec_string(rt, "RUN = 'second'", "=setup"), LUPINE_OK, "", "setup");
  code(rt, lupine_exec_string(rt, events_pipeline, "=events"), LUPINE_INTERRUPT, NULL,
       "a run interrupted while a step runs");
  check(strstr(e.text, "step_end second ev nap stopped | - | 3 0\n") != NULL &&
        strstr(e.text, "run_end second ev - stopped | - | 3 0\n") != NULL,
        "the step and the run end stopped");
  check(!e.view_failed, "Lua run in an event callback after an interrupt is not stopped");
  /* (its 300 ms sleep may end before a loaded machine stops it: no upper bound) */
  check(e.nap_ms >= 150 && e.nap_ms <= e.run_ms, "the stopped step ran %.1f ms of %.1f", e.nap_ms,
        e.run_ms);
  lupine_set_events(rt, NULL, NULL);
  lupine_close(rt);
}

/* ---- messages ---- */

/* Whether s is well-formed UTF-8 (no character cut). */
static int valid_utf8(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p != 0) {
    int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2
          : (*p & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0) return 0;
    for (p++; n > 0; n--, p++)
      if ((*p & 0xC0) != 0x80) return 0;
  }
  return 1;
}

static void test_messages(void) {
  char home[PATHSZ], want[4096], run_name[64], *long_home;
  lupine *rt, *rt2;
  lupine_artifact_version *v = NULL, *v2 = (lupine_artifact_version *)&v2;
  int i;
  home_path(home, "messages");
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;

  /* a run that fails without raising: the message names it and its step */
  code(rt, lupine_exec_string(rt,
       "local s = lupine.step { name = 'broken', function() error('no luck') end }\n"
       "lupine.pipeline { name = 'quiet', function() s() end }\n"
       "  :with_options { run_name = 'quiet-1', raise_on_failure = false }()", "=quiet"),
       LUPINE_FAILED,
       "pipeline run 'quiet-1' failed:\nstep 'broken' (quiet:1) failed: quiet:1: no luck",
       "a run that fails without raising names the run and the step");
  code(rt, lupine_exec_string(rt,
       "local s = lupine.step { name = 'broken', function() error('no luck') end }\n"
       "local p = lupine.pipeline { name = 'quiet', function() s() end }\n"
       "p:with_options { run_name = 'quiet-2', raise_on_failure = false }()\n"
       "p:with_options { run_name = 'quiet-3', raise_on_failure = false }()", "=quiet"),
       LUPINE_FAILED, "2 pipeline runs failed; the last: pipeline run 'quiet-3' failed:\n"
       "step 'broken' (quiet:1) failed: quiet:1: no luck", "two such runs: the count and the last");

  /* a long message with a traceback, of two-byte characters, is whole */
  code(rt, lupine_exec_string(rt, "local s = string.rep('\xc3\xa9', 700)\nerror(s)", "=long"),
       LUPINE_SCRIPT, NULL, "a script raises a long message");
  snprintf(want, sizeof want, "long:2: ");
  for (i = 0; i < 700; i++) strcat(want, "\xc3\xa9");
  strcat(want, "\nstack traceback:\n\t[C]: in function 'error'\n\tlong:2: in main chunk");
  same(lupine_errmsg(rt), want, "lupine_errmsg keeps it whole, with its traceback");

  /* a message cut in a fixed buffer is cut between characters */
  long_home = malloc(3 * 1000 + PATHSZ);
  if (long_home != NULL) {
    snprintf(long_home, PATHSZ, "%s/", base);
    for (i = 0; i < 1000; i++) strcat(long_home, "\xc3\xa9");
    if (lupine_open(&rt2, long_home) == LUPINE_OK) {
      check(lupine_home(rt2) == NULL, "a folder whose name is too long cannot be made");
      check(strlen(lupine_errmsg(rt2)) > 900 && valid_utf8(lupine_errmsg(rt2)),
            "the message is cut between characters");
      check(strcmp(lupine_errmsg(rt2) + strlen(lupine_errmsg(rt2)) - 3, "...") == 0,
            "and ends with '...'");
    }
    lupine_close(rt2);
    free(long_home);
  }

  /* a version id with a version */
  code(rt, lupine_exec_string(rt, "lupine.save_artifact(1, 'one')", "=save"), LUPINE_OK, "",
       "save an artifact");
  if (lupine_av_find(rt, "one", NULL, &v) == LUPINE_OK) {
    snprintf(want, sizeof want, "bad argument #2 to 'get_artifact_version' (a version id "
             "takes no version: '%s' is version 1 of artifact 'one')", lupine_av_id(v));
    code(rt, lupine_av_find(rt, lupine_av_id(v), "1", &v2), LUPINE_MISUSE, want,
         "lupine_av_find with a full id and a version");
    check(v2 == NULL, "finds nothing");
    snprintf(run_name, 9, "%s", lupine_av_id(v));
    snprintf(want, sizeof want, "bad argument #2 to 'get_artifact_version' (a version id "
             "takes no version: '%s' is version 1 of artifact 'one')", run_name);
    code(rt, lupine_av_find(rt, run_name, "2", &v2), LUPINE_MISUSE, want,
         "an id prefix with a version");
  }
  lupine_av_free(v);
  lupine_close(rt);
}

/* ---- the module's C half ---- */

/* luaopen_lupine_core is exported (Lua's C loader finds it in lupine.so):
** lupine.h declares it. */
static void test_core(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "lupine.core", luaopen_lupine_core, 0);
  check(lua_istable(L, -1) && lua_getfield(L, -1, "version") == LUA_TSTRING &&
        strcmp(lua_tostring(L, -1), LUPINE_VERSION) == 0,
        "luaopen_lupine_core pushes the module's C half");
  lua_close(L);
}

/* ---- the host's signal settings ---- */

/* What a hung run prints before the alarm ends the program: a failed test
** (async-signal-safe: write and _exit only). */
static void on_alarm(int sig) {
  static const char msg[] = "not ok - a run under the host's signal settings hung\n";
  (void)sig;
  if (write(1, msg, sizeof msg - 1) < 0) _exit(2);
  _exit(1);
}

/* host_die(): the worker ends without reporting, as the OOM killer ends one */
static int host_die(lua_State *L) {
  (void)L;
  kill(getpid(), SIGKILL);
  return 0;
}

/* A step killed; a step that runs a program and gets its status; a step
** that gives its signal mask. */
static const char signal_pipeline[] =
  "local die = lupine.step { name = 'die', function() host_die() end }\n"
  "local exits = lupine.step { name = 'exits', outputs = { 'exit_status' },\n"
  "  function() return select(3, os.execute('exit 3')) end }\n"
  "local mask = lupine.step { name = 'mask', outputs = { 'mask' }, function()\n"
  "  for line in io.lines('/proc/self/status') do\n"
  "    local m = line:match('^SigBlk:%s*(%x+)') if m then return m end\n"
  "  end end }\n"
  "lupine.pipeline { name = 'signals', enable_cache = false,\n"
  "  function() die() exits() mask() end }:with_options { raise_on_failure = false }()\n";

static int newest_error(void *ud, const lupine_run *r) {
  snprintf(ud, 1024, "%s", lupine_run_error(r) ? lupine_run_error(r) : "(none)");
  return 1;
}

/* A run of signal_pipeline under the host's settings of the moment (what). */
static void run_signals(lupine *rt, const char *what) {
  lua_State *L = lupine_state(rt);
  lupine_artifact_version *v = NULL;
  char error[1024] = "";
  code(rt, lupine_exec_string(rt, signal_pipeline, "=signals"), LUPINE_FAILED, NULL, what);
  list_runs(rt, "signals", newest_error, error);
  if (!check(strstr(error, "step 'die'") != NULL &&
             strstr(error, "its process was killed (killed, signal 9)") != NULL,
             "%s: the killed worker is reported", what))
    printf("#   %s\n", error);
  if (lupine_av_find(rt, "exit_status", NULL, &v) == LUPINE_OK &&
      lupine_av_load(rt, v, L) == LUPINE_OK)
    check(lua_tointeger(L, -1) == 3, "%s: a step gets the exit status of a program it runs",
          what);
  else check(0, "%s: load exit_status: %s", what, lupine_errmsg(rt));
  lupine_av_free(v);
  lua_settop(L, 0);
  if (lupine_av_find(rt, "mask", NULL, &v) == LUPINE_OK &&
      lupine_av_load(rt, v, L) == LUPINE_OK)
    same(lua_tostring(L, -1), "0000000000000000", "a step runs with no signal blocked");
  else check(0, "%s: load mask: %s", what, lupine_errmsg(rt));
  lupine_av_free(v);
  lua_settop(L, 0);
}

/*
** A daemon-like host: SIGCHLD ignored (the kernel then reaps children
** without a signal), then SIGCHLD and SIGTERM blocked. Runs under an
** alarm, so that a hang fails instead of stalling the suite. Last: a hang
** ends the program.
*/
static void test_host_signals(void) {
  char home[PATHSZ];
  struct sigaction sa, old_chld, old_alrm;
  sigset_t block, old_mask;
  lupine *rt;
  home_path(home, "signals");
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;
  lua_register(lupine_state(rt), "host_die", host_die);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, &old_alrm);
  alarm(120);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGCHLD, &sa, &old_chld);
  run_signals(rt, "SIGCHLD ignored by the host");
  sigaction(SIGCHLD, &old_chld, NULL);
  sigemptyset(&block);
  sigaddset(&block, SIGCHLD);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  run_signals(rt, "SIGCHLD and SIGTERM blocked by the host");
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  alarm(0);
  sigaction(SIGALRM, &old_alrm, NULL);
  lupine_close(rt);
}

/* An empty catalog folder is refused, from the host and from $LUPINE_HOME
** alike, by lupine_open and by a state that loads the module itself: never
** taken as "/" or as the current folder. */
static void test_empty_home(void) {
  const char *env_msg =
    "LUPINE_HOME: an empty path names no catalog folder (give none for the default)";
  char cwd[PATHSZ], dir[PATHSZ];
  lupine *rt;
  lua_State *L;
  int rc = lupine_open(&rt, "");
  code(rt, rc, LUPINE_MISUSE,
       "lupine_open: an empty path names no catalog folder (give none for the default)",
       "lupine_open with an empty home");
  if (rc == LUPINE_OK) {   /* it would make its catalog at / */
    lupine_close(rt);
    return;
  }
  check(lupine_home(rt) == NULL && lupine_exec_string(rt, "x = 1", NULL) == LUPINE_MISUSE,
        "every call on it is misuse");
  lupine_close(rt);
  /* in a folder of its own: what a wrong default would make shows there */
  home_path(dir, "empty-home-cwd");
  if (!check(getcwd(cwd, sizeof cwd) != NULL && mkdir(dir, 0777) == 0 && chdir(dir) == 0,
             "a folder to work in"))
    return;
  setenv("LUPINE_HOME", "", 1);
  code(rt, lupine_open(&rt, NULL), LUPINE_MISUSE, env_msg, "lupine_open with LUPINE_HOME empty");
  check(lupine_home(rt) == NULL, "lupine_home then fails");
  lupine_close(rt);
  /* a state of the host's: the module finds the folder on first use */
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "lupine", luaopen_lupine, 1);
  lua_pop(L, 1);
  check(luaL_dostring(L, "local ok, e = pcall(function() "
                         "return require('lupine').Client():list_pipeline_runs() end) "
                         "assert(not ok) return e") == LUA_OK,
        "a call that needs the catalog fails");
  same(lua_tostring(L, -1), env_msg, "with that message, and no position");
  lua_settop(L, 0);
  check(luaL_dostring(L, "local ok, e = pcall(require('lupine.core').locate) "
                         "assert(not ok) return e") == LUA_OK,
        "locating the catalog fails too");
  same(lua_tostring(L, -1), env_msg, "with that message");
  lua_close(L);
  check(access(".lupine", F_OK) != 0, "no catalog was made in the current folder");
  unsetenv("LUPINE_HOME");
  if (chdir(cwd) != 0) perror("chdir");
}

int main(void) {
  char tmpl[] = "/tmp/lupine-api.XXXXXX";
  if (mkdtemp(tmpl) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(base, sizeof base, "%s", tmpl);
  unsetenv("LUPINE_HOME");
  main_pid = getpid();
  test_codes();
  test_versions();
  test_null_handle();
  test_null_args();
  test_pipeline();
  test_materializer();
  test_luaopen();
  test_threads();
  test_fork_while_sqlite_busy();
  test_alloc_failure();
  test_failed_open();
  test_files();
  test_home_lifetime();
  test_set_catalog();
  test_relative_home();
  test_interrupt();
  test_events();
  test_messages();
  test_core();
  test_host_signals();
  test_empty_home();
  nftw(base, remove_one, 16, FTW_DEPTH | FTW_PHYS);
  return tap_done();
}
