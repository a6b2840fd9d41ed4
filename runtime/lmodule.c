/* SPDX-License-Identifier: MIT */
/*
** lmodule.c: the Lua module. `lupine.core` holds the C functions; the
** user-facing module `lupine` is Lua code (the files in lua/lupine/) embedded in
** this library, which luaopen_lupine loads on top of the core.
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lauxlib.h"
#include "lualib.h"
#include "lupine_int.h"

static const char runtime_key = 'R';   /* registry key: its address */

#define RUNTIME_MT "lupine.Runtime"

/* ---- the runtime of a state ---- */

static void runtime_shut(lp_runtime *rt) {
  int i;
  lp_catalog_close(rt->catalog);
  for (i = 0; i < rt->nstores; i++) lp_store_close(rt->stores[i].store);
  free(rt->stores);
  rt->stores = NULL;
  rt->nstores = 0;
  rt->catalog = NULL;
  rt->store = NULL;
  rt->store_id[0] = rt->store_err[0] = '\0';
}

static int runtime_gc(lua_State *L) {
  lp_runtime *rt = luaL_checkudata(L, 1, RUNTIME_MT);
  runtime_shut(rt);
  free(rt->home);
  rt->home = NULL;
  free(rt->catalog_target);
  rt->catalog_target = NULL;
  free(rt->run_failure);
  rt->run_failure = NULL;
  return 0;
}

lp_runtime *lp_runtime_of(lua_State *L) {
  lp_runtime *rt;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &runtime_key) == LUA_TUSERDATA) {
    rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return rt;
  }
  lua_pop(L, 1);
  /* Created closed: nothing is acquired until lp_runtime_ready. */
  rt = lua_newuserdatauv(L, sizeof *rt, 0);
  memset(rt, 0, sizeof *rt);
  if (luaL_newmetatable(L, RUNTIME_MT)) {
    lua_pushcfunction(L, runtime_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &runtime_key);
  return rt;
}

/* mkdir -p: every missing folder of path. */
static int make_dirs(const char *path, char *err, size_t errsz) {
  char buf[PATH_MAX];
  size_t i, n = strlen(path);
  if (n >= sizeof buf) {
    lp_errf(err, errsz, "catalog folder path is too long: %s", path);
    return LUPINE_MISUSE;
  }
  memcpy(buf, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    buf[i] = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
      lp_errf(err, errsz, "cannot create catalog folder %s (%s)", buf, strerror(errno));
      return LUPINE_IO;
    }
    buf[i] = path[i];
  }
  return LUPINE_OK;
}

/* path, absolute: a relative one is taken from the current directory
** (left relative if that cannot be known). malloc'd; NULL if memory ran
** out. */
static char *absolute(const char *path) {
  char dir[PATH_MAX], *p;
  size_t n;
  if (path[0] == '/' || getcwd(dir, sizeof dir) == NULL) return strdup(path);
  n = strlen(dir) + strlen(path) + 2;
  if ((p = malloc(n)) != NULL) snprintf(p, n, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, path);
  return p;
}

/* The nearest .lupine folder up from the current directory (as git finds
** .git); else ./.lupine. malloc'd; NULL if memory ran out. */
static char *nearest_home(void) {
  char dir[PATH_MAX], probe[PATH_MAX + 16];
  struct stat sb;
  char *slash;
  if (getcwd(dir, sizeof dir) == NULL) return strdup(".lupine");
  for (;;) {
    snprintf(probe, sizeof probe, "%s/.lupine", strcmp(dir, "/") == 0 ? "" : dir);
    if (stat(probe, &sb) == 0 && S_ISDIR(sb.st_mode)) return strdup(probe);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) break;
    *slash = '\0';
  }
  if (getcwd(dir, sizeof dir) == NULL) return strdup(".lupine");
  snprintf(probe, sizeof probe, "%s/.lupine", dir);
  return strdup(probe);
}

/*
** The catalog folder home names, absolute (a relative one is taken from
** the current directory now), into *out (malloc'd). home NULL: $LUPINE_HOME
** if set, else nearest_home(). The one rule for a folder, wherever it is
** given: an empty path names none, and is refused (LUPINE_MISUSE), not
** taken as "/" ("<home>/catalog.db") or as the current folder. who: where
** home came from, for the message.
*/
static int resolve_home(lp_runtime *rt, const char *home, const char *who, char **out) {
  if (home == NULL && (home = getenv("LUPINE_HOME")) != NULL) who = "LUPINE_HOME";
  if (home != NULL && home[0] == '\0') {
    lp_errf(rt->err, sizeof rt->err,
            "%s: an empty path names no catalog folder (give none for the default)", who);
    return LUPINE_MISUSE;
  }
  if ((*out = home != NULL ? absolute(home) : nearest_home()) == NULL) {
    lp_errf(rt->err, sizeof rt->err, "out of memory");
    return LUPINE_NOMEM;
  }
  return LUPINE_OK;
}

int lp_dead_after(void) {
  const char *s = getenv("LUPINE_DEAD_AFTER");
  char *end;
  long n = s != NULL ? strtol(s, &end, 10) : 0;
  return s != NULL && end != s && *end == '\0' && n > 0 && n <= 86400 * 365 ? (int)n
                                                                            : LP_DEAD_AFTER;
}

/*
** Runs left "running" by a process that is gone (killed, or its machine
** restarted) are marked failed, so that nobody waits on them. A run's
** process on this machine is known by pid and start time, so a reused pid
** is no alibi; one on another machine (a shared catalog) by its
** heartbeats: none for lp_dead_after() seconds, and it is taken for dead.
** L is where the rows are read; failures here are not the caller's.
*/
static void mark_dead_runs(lua_State *L, lp_runtime *rt) {
  char err[LP_ERRSZ], now[32], why[512], started[32], host[256] = "", cutoff[32];
  int top = lua_gettop(L), i, changes, dead_after = lp_dead_after();
  if (lp_catalog_query(L, rt->catalog, "running_runs", 0, 0, err, sizeof err) != LUPINE_OK)
    return;
  gethostname(host, sizeof host - 1);
  lp_catalog_time_ago(dead_after, cutoff);
  for (i = 1; lua_rawgeti(L, top + 1, i) == LUA_TTABLE; i++) {
    int row = lua_gettop(L), here;
    lua_getfield(L, row, "pid");
    lua_getfield(L, row, "process_start");
    lua_getfield(L, row, "host");
    lua_getfield(L, row, "heartbeat");
    here = !lua_isstring(L, row + 3) || strcmp(lua_tostring(L, row + 3), host) == 0;
    why[0] = '\0';
    if (here && lua_isinteger(L, row + 1) &&
        (lp_process_start((long)lua_tointeger(L, row + 1), started) != 0 ||
         (lua_isstring(L, row + 2) && strcmp(started, lua_tostring(L, row + 2)) != 0)))
      snprintf(why, sizeof why, "the process running it (pid %lld) ended before the run did",
               (long long)lua_tointeger(L, row + 1));
    else if (!here && (!lua_isstring(L, row + 4) ||
                       strcmp(lua_tostring(L, row + 4), cutoff) < 0))
      snprintf(why, sizeof why, "the process running it (pid %lld on %s) sent no heartbeat "
               "for %d seconds (LUPINE_DEAD_AFTER), the last at %s",
               (long long)lua_tointeger(L, row + 1), lua_tostring(L, row + 3), dead_after,
               lua_isstring(L, row + 4) ? lua_tostring(L, row + 4) : "none");
    if (why[0] != '\0') {
      lp_catalog_now(now);
      lua_getfield(L, row, "id");
      lua_pushstring(L, why);
      lua_pushstring(L, now);
      lp_catalog_write(L, rt->catalog, "mark_dead", lua_gettop(L) - 2, 3, &changes, err,
                       sizeof err);
    }
    lua_settop(L, top + 1);
  }
  lua_settop(L, top);
}

/* ---- artifact stores ---- */

/* A put replaced a damaged object: the runtime's log says so. */
static void store_replaced(void *ud, const char *message) {
  lp_log_text(ud, LUPINE_LOG_WARN, message);
}

int lp_runtime_store(lp_runtime *rt, const char *store_id, lp_store **out, char *err,
                     size_t errsz) {
  char path[PATH_MAX];
  lp_store_info info;
  struct stat sb;
  int i, rc;
  *out = NULL;
  for (i = 0; i < rt->nstores; i++)
    if (strcmp(rt->stores[i].id, store_id) == 0) {
      *out = rt->stores[i].store;
      return LUPINE_OK;
    }
  if (rt->catalog == NULL && (rc = lp_runtime_ready(rt)) != LUPINE_OK) {   /* a new worker */
    lp_errf(err, errsz, "%s", rt->err);
    return rc;
  }
  if ((rc = lp_catalog_store_info(rt->catalog, store_id, NULL, &info, err, errsz)) != LUPINE_OK)
    return rc;
  if (info.path[0] == '\0') snprintf(path, sizeof path, "%s/artifacts", rt->home);
  else if (strcmp(info.flavor, "s3") == 0) snprintf(path, sizeof path, "%s", info.path);
  else if (strcmp(info.flavor, "local") != 0) {
    lp_errf(err, errsz, "artifact store '%s' has flavor '%s', which this build does not know",
            info.name, info.flavor);
    return LUPINE_MISUSE;
  } else if ((rc = stat(info.path, &sb)) != 0 || !S_ISDIR(sb.st_mode)) {
    /* registered stores are made at registration: a missing one is gone
    ** (an unmounted disk), not something to create again here */
    lp_errf(err, errsz, "artifact store '%s' (flavor %s, path %s) is unreachable: %s",
            info.name, info.flavor, info.path, rc != 0 ? strerror(errno) : "not a folder");
    return LUPINE_IO;
  } else snprintf(path, sizeof path, "%s", info.path);
  return lp_runtime_add_store(rt, info.id, info.name, info.flavor, path, out, err, errsz);
}

int lp_runtime_add_store(lp_runtime *rt, const char *store_id, const char *name,
                         const char *flavor, const char *path, lp_store **out, char *err,
                         size_t errsz) {
  char cache[PATH_MAX];
  lp_store_slot *slots;
  int rc;
  if ((slots = realloc(rt->stores, (size_t)(rt->nstores + 1) * sizeof *slots)) == NULL) {
    lp_errf(err, errsz, "out of memory");
    return LUPINE_NOMEM;
  }
  rt->stores = slots;
  /* a remote store's read cache: one for all, as its objects are named by content */
  snprintf(cache, sizeof cache, "%s/cache", rt->home);
  if ((rc = lp_store_open(&slots[rt->nstores].store, flavor, path, name, cache, err, errsz)) !=
      LUPINE_OK)
    return rc;
  lp_store_set_log(slots[rt->nstores].store, store_replaced, rt);
  snprintf(slots[rt->nstores].id, sizeof slots[rt->nstores].id, "%s", store_id);
  *out = slots[rt->nstores++].store;
  return LUPINE_OK;
}

int lp_runtime_use_stack(lp_runtime *rt, const char *stack, char *stack_out, size_t stacksz) {
  lp_store_info info;
  int rc;
  if ((rc = lp_catalog_store_info(rt->catalog, NULL, stack, &info, rt->err,
                                  sizeof rt->err)) != LUPINE_OK)
    return rc;
  if (stack_out != NULL) snprintf(stack_out, stacksz, "%s", info.stack);
  snprintf(rt->store_id, sizeof rt->store_id, "%s", info.id);
  rt->store_err[0] = '\0';
  if ((rc = lp_runtime_store(rt, info.id, &rt->store, rt->store_err,
                             sizeof rt->store_err)) != LUPINE_OK)
    rt->store = NULL;
  return LUPINE_OK;
}

int lp_runtime_write_store(lp_runtime *rt) {
  if (rt->store != NULL) return LUPINE_OK;
  lp_errf(rt->err, sizeof rt->err, "%s",
          rt->store_err[0] != '\0' ? rt->store_err : "lupine: no artifact store is open");
  return LUPINE_IO;
}

/*
** The catalog of rt: lupine.set_catalog's target, else $LUPINE_CATALOG's,
** else the folder's catalog.db. "{home}" in a target stands for a name
** made from the folder (lupine_ and 16 hex digits of its path's SHA-256),
** so that one server keeps a catalog per folder (a schema each). The
** target may be long: *out is malloc'd (NULL: out of memory).
*/
static char *catalog_target(lp_runtime *rt) {
  const char *t = rt->catalog_target, *at;
  char hash[LP_HASH_STRLEN + 1], *out;
  size_t n;
  if (t == NULL && (t = getenv("LUPINE_CATALOG")) != NULL && t[0] == '\0') t = NULL;
  if (t == NULL) {
    n = strlen(rt->home) + sizeof "/catalog.db";
    if ((out = malloc(n)) != NULL) snprintf(out, n, "%s/catalog.db", rt->home);
    return out;
  }
  if ((at = strstr(t, "{home}")) == NULL) return strdup(t);
  lp_hash_bytes(rt->home, strlen(rt->home), hash);
  n = strlen(t) + 32;
  if ((out = malloc(n)) != NULL)
    snprintf(out, n, "%.*slupine_%.16s%s", (int)(at - t), t, hash + strlen(LP_HASH_PREFIX),
             at + strlen("{home}"));
  return out;
}

int lp_runtime_ready(lp_runtime *rt) {
  char path[PATH_MAX], *target;
  int rc;
  if (rt->catalog != NULL) return LUPINE_OK;
  if (rt->detached != NULL) {   /* `lupine exec`: the catalog is the coordinator's */
    lp_errf(rt->err, sizeof rt->err, "%s", rt->detached);
    return LUPINE_MISUSE;
  }
  if (rt->home == NULL && (rc = resolve_home(rt, NULL, NULL, &rt->home)) != LUPINE_OK)
    return rc;
  if ((rc = make_dirs(rt->home, rt->err, sizeof rt->err)) != LUPINE_OK) return rc;
  if ((target = catalog_target(rt)) == NULL) {
    lp_errf(rt->err, sizeof rt->err, "out of memory");
    return LUPINE_NOMEM;
  }
  rc = lp_catalog_open(&rt->catalog, target, rt->err, sizeof rt->err);
  free(target);
  if (rc != LUPINE_OK) {
    runtime_shut(rt);
    return rc;
  }
  /* what a process that is gone left of copies being extracted (a
  ** worker's coordinator did this already) */
  if (rt->to_parent == 0) {
    snprintf(path, sizeof path, "%s/files", rt->home);
    lp_files_clean(path);
  }
  /* New objects go to the active stack's store; a worker keeps the one
  ** its run uses. A store that cannot be opened fails only what writes. */
  if (rt->store_id[0] == '\0' &&
      (rc = lp_runtime_use_stack(rt, NULL, NULL, 0)) != LUPINE_OK) {
    runtime_shut(rt);
    return rc;
  }
  return LUPINE_OK;
}

void lp_runtime_forked(lp_runtime *rt, int to_parent, int from_parent) {
  rt->catalog = NULL;   /* the parent's: never touch it here, not even to close it */
  rt->to_parent = to_parent;
  rt->from_parent = from_parent;
}

int lp_runtime_set_home(lp_runtime *rt, const char *home, const char *who) {
  char *copy;
  int rc;
  if ((rc = resolve_home(rt, home, who, &copy)) != LUPINE_OK) return rc;
  runtime_shut(rt);
  free(rt->home);
  rt->home = copy;
  return LUPINE_OK;
}

void lp_log_text(lp_runtime *rt, int level, const char *text) {
  /* in a worker the host's callback would run in a copy of its process:
  ** the message goes out with what the step prints, which the coordinator
  ** logs (a store's warning, a copy extracted again) */
  if (rt->to_parent != 0) {
    if (rt->log != NULL) fprintf(stderr, "lupine: %s\n", text);
    return;
  }
  /* what a step prints is the user's, not the library's: without a
  ** callback it still reaches them, on stderr */
  if (rt->log == NULL) {
    if (level == LUPINE_LOG_OUTPUT && rt->events == NULL) fprintf(stderr, "%s\n", text);
  } else rt->log(rt->log_ud, level, text);
}

void lp_event(lp_runtime *rt, const lupine_event *ev) {
  if (rt->events != NULL) rt->events(rt->events_ud, ev);
}

int lp_raise(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

void lp_log(lp_runtime *rt, int level, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  if (rt->log == NULL && level != LUPINE_LOG_OUTPUT) return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lp_log_text(rt, level, msg);
}

/* The runtime of L, ready for use; raises the reason if it cannot be. */
static lp_runtime *ready(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  if (rt->catalog == NULL) {
    /* the message names the culprit (the folder, the catalog file); the
    ** position of the call, often in lupine's own Lua code, would not help */
    if (lp_runtime_ready(rt) != LUPINE_OK) lp_raise(L, "%s", rt->err);
    if (rt->to_parent == 0) mark_dead_runs(L, rt);
  }
  return rt;
}

/* ---- loading a version ---- */

/* Push version id's value (decode) or its stored CBOR bytes; raise an
** error naming the artifact if it cannot be read. */
static void read_version(lua_State *L, lp_runtime *rt, const char *id, int decode) {
  const char *name, *version, *hash;
  lp_store *store = NULL;
  unsigned char *data = NULL;
  size_t len;
  int top = lua_gettop(L), rc, files;
  if (rt->catalog == NULL && lp_runtime_ready(rt) != LUPINE_OK)   /* in a new worker */
    lp_raise(L, "%s", rt->err);
  if (rt->to_parent != 0) {   /* the coordinator's view: what it has not committed too */
    lua_pushliteral(L, "version_by_id");
    lua_pushstring(L, id);
    lp_worker_call(L, rt, "query", top + 1, 2);
  } else {
    lua_pushstring(L, id);
    if (lp_catalog_query(L, rt->catalog, "version_by_id", top + 1, 1, rt->err,
                         sizeof rt->err) != LUPINE_OK)
      lp_raise(L, "%s", rt->err);
  }
  if (lua_rawgeti(L, -1, 1) != LUA_TTABLE) lp_raise(L, "artifact version '%s' not found", id);
  lua_getfield(L, -1, "name");
  lua_getfield(L, -2, "version");
  lua_getfield(L, -3, "content_hash");
  lua_getfield(L, -4, "size");
  name = lua_tostring(L, -4);
  version = lua_tostring(L, -3);
  hash = lua_tostring(L, -2);
  lua_getfield(L, -5, "data_type");
  files = lua_isstring(L, -1) && lp_is_file_type(lua_tostring(L, -1));
  lua_getfield(L, -6, "artifact_store_id");
  rc = lp_runtime_store(rt, luaL_optstring(L, -1, LP_DEFAULT_STORE_ID), &store, rt->err,
                        sizeof rt->err);
  lua_pop(L, 2);
  if (rc != LUPINE_OK) {
    /* the store is gone: say which, and where it was */
  } else if (files) {
    /* a file or folder: its value is the path of a read-only copy */
    char path[PATH_MAX];
    if (!decode) {
      lp_errf(rt->err, sizeof rt->err, "it is a file or folder, not a value: export it instead");
      rc = LUPINE_MISUSE;
    } else if ((rc = lp_materialize(rt, store, hash, (uint64_t)lua_tointeger(L, -1), path,
                                    sizeof path)) == LUPINE_OK)
      lua_pushstring(L, path);
  } else if ((rc = lp_store_get(store, hash, (uint64_t)lua_tointeger(L, -1), &data, &len,
                                rt->err, sizeof rt->err)) == LUPINE_OK) {
    /* a memory error in either would leak data: rare, and bounded by it */
    if (decode) rc = lp_codec_decode(L, data, len, rt->err, sizeof rt->err);
    else lua_pushlstring(L, (const char *)data, len);
    free(data);
  }
  if (rc != LUPINE_OK) {   /* the culprit is the artifact: no position of ours in front */
    lua_pushfstring(L, "cannot load artifact '%s' version %s (%s): %s", name, version, id,
                    rt->err);
    lua_error(L);
  }
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

int lp_load_version(lua_State *L, lp_runtime *rt, const char *id) {
  read_version(L, rt, id, 1);
  return 1;
}

/* ---- lupine.core ---- */

/* core.run(spec) -> run id, name, status, errors */
static int core_run(lua_State *L) {
  lp_runtime *rt;
  int n;
  luaL_checktype(L, 1, LUA_TTABLE);
  rt = ready(L);
  rt->running = 1;
  n = lp_execute(L, rt, 1);
  rt->running = 0;
  /* stack: ..., id, name, status, errors */
  if (rt->on_run != NULL) rt->on_run(rt->on_run_ud, lua_tostring(L, -4), lua_tostring(L, -2));
  return n;
}

/* core.query(name, ...) -> rows. In a worker the coordinator answers: it
** holds the run's transaction, so it sees what it has not committed yet. */
static int core_query(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lp_runtime *rt = lp_runtime_of(L);
  if (rt->to_parent != 0) {
    if (lp_catalog_check(L, 0, name, 2, lua_gettop(L) - 1, rt->err, sizeof rt->err) !=
        LUPINE_OK)
      return lp_raise(L, "%s", rt->err);
    return lp_worker_call(L, rt, "query", 1, lua_gettop(L));
  }
  rt = ready(L);
  if (lp_catalog_query(L, rt->catalog, name, 2, lua_gettop(L) - 1, rt->err,
                       sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  return 1;
}

/* core.list(listing, description [, "rows" | "count" | "plan" | "count_plan"])
** -> rows | count | plan, statement: what a filter description selects
** (runtime/catalog_listing.c). In a worker the coordinator answers. */
static int core_list(lua_State *L) {
  const char *listing = luaL_checkstring(L, 1), *push = luaL_optstring(L, 3, NULL);
  lp_runtime *rt = lp_runtime_of(L);
  int top;
  luaL_checktype(L, 2, LUA_TTABLE);
  if (rt->to_parent != 0) return lp_worker_call(L, rt, "list", 1, lua_gettop(L));
  rt = ready(L);
  top = lua_gettop(L);
  if (lp_catalog_list(L, rt->catalog, listing, 2, push, rt->err, sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  return lua_gettop(L) - top;
}

/* core.sort_keys(listing) -> the keys it may be sorted by */
static int core_sort_keys(lua_State *L) {
  char err[LP_ERRSZ];
  if (lp_catalog_sort_keys(L, luaL_checkstring(L, 1), err, sizeof err) != LUPINE_OK)
    return lp_raise(L, "%s", err);
  return 1;
}

/* core.load(version_id) -> value */
static int core_load(lua_State *L) {
  const char *id = luaL_checkstring(L, 1);
  return lp_load_version(L, ready(L), id);
}

/* core.read(version_id) -> the stored CBOR bytes */
static int core_read(lua_State *L) {
  read_version(L, ready(L), luaL_checkstring(L, 1), 0);
  return 1;
}

/* core.encode(value [, root]) -> CBOR bytes | nil, message (naming the
** culprit's path from root, "value" by default) */
static int core_encode(lua_State *L) {
  char err[LP_ERRSZ];
  const char *root = luaL_optstring(L, 2, "value");
  luaL_checkany(L, 1);
  if (lp_codec_encode(L, 1, root, err, sizeof err) != LUPINE_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

/* core.decode(bytes) -> value | nil, message */
static int core_decode(lua_State *L) {
  char err[LP_ERRSZ];
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  if (lp_codec_decode(L, data, len, err, sizeof err) != LUPINE_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

/* core.home() -> the catalog folder (opening the catalog) */
static int core_home(lua_State *L) {
  lua_pushstring(L, ready(L)->home);
  return 1;
}

/* core.locate() -> the catalog folder in use (or the one a first use will
** pick) and whether its catalog exists. Creates nothing: for what only
** reads, such as shell completion, which must not leave a catalog behind. */
static int core_locate(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  char path[PATH_MAX + 16], *target;
  struct stat sb;
  if (rt->home == NULL && resolve_home(rt, NULL, NULL, &rt->home) != LUPINE_OK) {
    lua_pushstring(L, rt->err);   /* it names the culprit */
    return lua_error(L);
  }
  snprintf(path, sizeof path, "%s/catalog.db", rt->home);
  /* a catalog elsewhere (a server) is taken to be there */
  if ((target = catalog_target(rt)) == NULL) return luaL_error(L, "out of memory");
  lua_pushstring(L, rt->home);
  lua_pushboolean(L, rt->catalog != NULL || strcmp(target, path) != 0 || stat(path, &sb) == 0);
  free(target);
  return 2;
}

int lp_runtime_set_catalog(lp_runtime *rt, const char *target, const char *who) {
  char *copy = NULL;
  if (target != NULL && target[0] == '\0') {
    lp_errf(rt->err, sizeof rt->err,
            "%s: an empty target names no catalog (give none for the default)", who);
    return LUPINE_MISUSE;
  }
  if (target != NULL && (copy = strdup(target)) == NULL) {
    lp_errf(rt->err, sizeof rt->err, "out of memory");
    return LUPINE_NOMEM;
  }
  runtime_shut(rt);
  free(rt->catalog_target);
  rt->catalog_target = copy;
  return LUPINE_OK;
}

/* core.set_catalog(target | nil): use another catalog from now on (nil:
** $LUPINE_CATALOG, else the folder's file) */
static int core_set_catalog(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  if (lp_runtime_set_catalog(rt, luaL_optstring(L, 1, NULL), "set_catalog") != LUPINE_OK)
    return luaL_error(L, "%s", rt->err);
  return 0;
}

/* core.catalog([target]) -> the backend's name and where the catalog in
** use (or at target) is, without opening it, never with a password: for
** `lupine --version`, `lupine stack describe`, `lupine catalog copy` */
static int core_catalog(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  char where[PATH_MAX + 256], *target;
  if (!lua_isnoneornil(L, 1)) {
    lua_pushstring(L, lp_catalog_describe(luaL_checkstring(L, 1), where, sizeof where));
    lua_pushstring(L, where);
    return 2;
  }
  if (rt->catalog != NULL) {
    lua_pushstring(L, lp_catalog_backend_name(rt->catalog));
    lua_pushstring(L, lp_catalog_where(rt->catalog));
    return 2;
  }
  if (rt->home == NULL && resolve_home(rt, NULL, NULL, &rt->home) != LUPINE_OK) {
    lua_pushstring(L, rt->err);
    return lua_error(L);
  }
  if ((target = catalog_target(rt)) == NULL) return luaL_error(L, "out of memory");
  lua_pushstring(L, lp_catalog_describe(target, where, sizeof where));
  free(target);
  lua_pushstring(L, where);
  return 2;
}

/* core.copy_catalog(target) -> { { table, rows }, ... }: copy the catalog
** in use into the empty one at target (made if it is a new file) */
static int core_copy_catalog(lua_State *L) {
  const char *target = luaL_checkstring(L, 1);
  lp_runtime *rt = ready(L);
  lp_catalog *to;
  lp_copy_count counts[LP_COPY_TABLES];
  int i, rc;
  if (lp_catalog_open(&to, target, rt->err, sizeof rt->err) != LUPINE_OK)
    return luaL_error(L, "%s", rt->err);
  rc = lp_catalog_copy(rt->catalog, to, counts, rt->err, sizeof rt->err);
  lp_catalog_close(to);
  if (rc != LUPINE_OK) return luaL_error(L, "%s", rt->err);
  lua_createtable(L, LP_COPY_TABLES, 0);
  for (i = 0; i < LP_COPY_TABLES; i++) {
    lua_createtable(L, 2, 0);
    lua_pushstring(L, counts[i].table);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, (lua_Integer)counts[i].rows);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* core.set_home(dir | nil): use another catalog folder from now on */
static int core_set_home(lua_State *L) {
  const char *home = luaL_optstring(L, 1, NULL);
  lp_runtime *rt = lp_runtime_of(L);
  if (lp_runtime_set_home(rt, home, "set_home") != LUPINE_OK) return luaL_error(L, "%s", rt->err);
  return 0;
}

/* core.object_path(hash) -> where the store keeps that object */
static int core_object_path(lua_State *L) {
  char path[PATH_MAX];
  const char *hash = luaL_checkstring(L, 1);
  lp_runtime *rt = ready(L);
  lp_store *s = NULL;
  if (lua_isstring(L, 2)) {   /* core.object_path(hash, store id) */
    if (lp_runtime_store(rt, lua_tostring(L, 2), &s, rt->err, sizeof rt->err) != LUPINE_OK)
      return lp_raise(L, "%s", rt->err);
  } else if (lp_runtime_write_store(rt) != LUPINE_OK) return lp_raise(L, "%s", rt->err);
  else s = rt->store;
  if (lp_store_uri(s, hash, path, sizeof path) != LUPINE_OK)
    return luaL_argerror(L, 1, "not a content hash");
  lua_pushstring(L, path);
  return 1;
}

/* core.write(name, ...) -> rows changed */
static int core_write(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lp_runtime *rt = lp_runtime_of(L);
  int changes;
  if (rt->to_parent != 0) {
    if (lp_catalog_check(L, 1, name, 2, lua_gettop(L) - 1, rt->err, sizeof rt->err) !=
        LUPINE_OK)
      return lp_raise(L, "%s", rt->err);
    return lp_worker_call(L, rt, "write", 1, lua_gettop(L));
  }
  rt = ready(L);
  if (lp_catalog_write(L, rt->catalog, name, 2, lua_gettop(L) - 1, &changes, rt->err,
                       sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  lua_pushinteger(L, changes);
  return 1;
}

int lp_is_file_type(const char *data_type) {
  return strcmp(data_type, "file") == 0 || strcmp(data_type, "dir") == 0;
}

int lp_materialize(lp_runtime *rt, lp_store *s, const char *hash, uint64_t size, char *out,
                   size_t outsz) {
  char cache[PATH_MAX], changed[LP_ERRSZ];
  int rc;
  snprintf(cache, sizeof cache, "%s/files", rt->home);
  rc = lp_files_materialize(s, cache, hash, size, out, outsz, changed, sizeof changed, rt->err,
                            sizeof rt->err);
  if (changed[0] != '\0')
    lp_log(rt, LUPINE_LOG_WARN, "%s: extracted it again from object %s", changed, hash);
  return rc;
}

/* core.check_copy(hash) -> "ok" | "changed" | "none", why: hash the
** extracted copy of a file or folder object again */
static int core_check_copy(lua_State *L) {
  const char *hash = luaL_checkstring(L, 1);
  lp_runtime *rt = ready(L);
  char cache[PATH_MAX], why[LP_ERRSZ] = "";
  int rc;
  snprintf(cache, sizeof cache, "%s/files", rt->home);
  rc = lp_files_check(cache, hash, why, sizeof why);
  if (rc == LUPINE_MISUSE) return luaL_argerror(L, 1, "not a content hash");
  lua_pushstring(L, rc == LUPINE_OK ? "ok" : rc == LUPINE_NOTFOUND ? "none" : "changed");
  lua_pushstring(L, why);
  return 2;
}

/* core.discard_copy(hash): remove the extracted copy of a file or folder
** object (the next load extracts it again) */
static int core_discard_copy(lua_State *L) {
  const char *hash = luaL_checkstring(L, 1);
  lp_runtime *rt = ready(L);
  char cache[PATH_MAX];
  int rc;
  snprintf(cache, sizeof cache, "%s/files", rt->home);
  rc = lp_files_discard(cache, hash, rt->err, sizeof rt->err);
  if (rc != LUPINE_OK && rc != LUPINE_NOTFOUND) return lp_raise(L, "%s", rt->err);
  return 0;
}

/* core.store_path(path) -> hash, size, stored size, "file" | "dir":
** the file or folder at path, stored as one object (an archive) */
static int core_store_path(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lp_runtime *rt = lp_runtime_of(L);
  lp_object obj;
  int is_dir;
  if (rt->store == NULL) rt = ready(L);
  if (lp_runtime_write_store(rt) != LUPINE_OK) return lp_raise(L, "%s", rt->err);
  if (lp_files_store(rt->store, path, &obj, &is_dir, rt->err, sizeof rt->err) != LUPINE_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, rt->err);
    return 2;
  }
  lua_pushstring(L, obj.hash);
  lua_pushinteger(L, (lua_Integer)obj.size);
  lua_pushinteger(L, (lua_Integer)obj.stored_size);
  lua_pushstring(L, is_dir ? "dir" : "file");
  return 4;
}

/* core.export_path(version_id, dest): write a file or folder version out
** to dest (which must not exist) */
static int core_export_path(lua_State *L) {
  const char *id = luaL_checkstring(L, 1), *dest = luaL_checkstring(L, 2);
  lp_runtime *rt = ready(L);
  char tmp[PATH_MAX], top[256], from[PATH_MAX + 256];
  const char *slash = strrchr(dest, '/');
  lp_store *store;
  int rc;
  lua_pushvalue(L, 1);
  if (lp_catalog_query(L, rt->catalog, "version_by_id", lua_gettop(L), 1, rt->err,
                       sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  if (lua_rawgeti(L, -1, 1) != LUA_TTABLE) return lp_raise(L, "artifact version '%s' not found", id);
  lua_getfield(L, -1, "data_type");
  if (!lua_isstring(L, -1) || !lp_is_file_type(lua_tostring(L, -1)))
    return lp_raise(L, "artifact version '%s' is not a file or folder", id);
  lua_getfield(L, -2, "artifact_store_id");
  if (lp_runtime_store(rt, luaL_optstring(L, -1, LP_DEFAULT_STORE_ID), &store, rt->err,
                       sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  lua_pop(L, 1);
  lua_getfield(L, -2, "content_hash");
  lua_getfield(L, -3, "size");
  /* beside dest, so the rename that puts it in place stays on one disk */
  snprintf(tmp, sizeof tmp, "%.*s/.lupine-export-%ld", slash ? (int)(slash - dest) : 1,
           slash ? dest : ".", (long)getpid());
  if (access(dest, F_OK) == 0) return lp_raise(L, "'%s' exists already", dest);
  rc = lp_files_extract(store, lua_tostring(L, -2), (uint64_t)lua_tointeger(L, -1), tmp,
                        top, sizeof top, rt->err, sizeof rt->err);
  snprintf(from, sizeof from, "%s/%s", tmp, top);
  if (rc == LUPINE_OK && rename(from, dest) != 0)
    rc = LUPINE_IO, lp_errf(rt->err, sizeof rt->err, "cannot move to '%s' (%s)", dest,
                            strerror(errno));
  chmod(tmp, 0755);
  rmdir(tmp);
  if (rc != LUPINE_OK) return lp_raise(L, "%s", rt->err);
  return 0;
}

/* core.code_hash(fn) -> the fingerprint of a step's code */
static int core_code_hash(lua_State *L) {
  char hash[LP_HASH_STRLEN + 1];
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (lp_code_hash(L, 1, hash) != LUPINE_OK) return luaL_error(L, "out of memory");
  lua_pushstring(L, hash);
  return 1;
}

/* core.hash(bytes) -> "sha256:<hex>" */
static int core_hash(lua_State *L) {
  char hash[LP_HASH_STRLEN + 1];
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lp_hash_bytes(s, len, hash);
  lua_pushstring(L, hash);
  return 1;
}

/* core.tagged(type, value) -> a value the codec writes as tag 27 */
static int core_tagged(lua_State *L) {
  luaL_checkstring(L, 1);
  luaL_checkany(L, 2);
  lp_codec_push_tagged(L, 1, 2);
  return 1;
}

/* core.set_restore(fn): what decoding calls for each tagged value */
static int core_set_restore(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lp_codec_set_restore(L, 1);
  return 0;
}

/* core.now() -> the current time as the catalog writes it */
static int core_now(lua_State *L) {
  char now[32];
  lp_catalog_now(now);
  lua_pushstring(L, now);
  return 1;
}

/* core.cwd() -> the working directory, as the kernel has it ($PWD is
** only what a shell last set, and may be stale or made up) */
static int core_cwd(lua_State *L) {
  char dir[PATH_MAX];
  if (getcwd(dir, sizeof dir) == NULL)
    return luaL_error(L, "cannot read the working directory (%s)", strerror(errno));
  lua_pushstring(L, dir);
  return 1;
}

/* core.text_width(s [, max]) -> the terminal columns s takes [, the length
** in bytes of its longest prefix that takes at most max columns] */
static int core_text_width(lua_State *L) {
  size_t len, fit;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_Integer max;
  if (lua_isnoneornil(L, 2)) {
    lua_pushinteger(L, (lua_Integer)lp_text_width(s, len, 0, NULL));
    return 1;
  }
  max = luaL_checkinteger(L, 2);
  luaL_argcheck(L, max >= 0, 2, "negative width");
  lua_pushinteger(L, (lua_Integer)lp_text_width(s, len, (size_t)max, &fit));
  lua_pushinteger(L, (lua_Integer)fit);
  return 2;
}

/*
** End the transaction that recorded version id (rc: how recording went):
** commit, and push id, version and the version's catalog row, read before
** the commit (another process may delete the version the moment it
** commits, as prune does, and the caller still gets what it recorded);
** returns 3. A failure rolls back: nil and the message for one the caller
** is to report (LUPINE_CONSTRAINT: a custom version taken, an object gone),
** returning 2; else -1, with rt->err set.
*/
static int finish_record(lua_State *L, lp_runtime *rt, int rc, const char *id,
                         const char *version) {
  if (rc == LUPINE_OK) {
    lua_pushstring(L, id);
    rc = lp_catalog_query(L, rt->catalog, "version_by_id", lua_gettop(L), 1, rt->err,
                          sizeof rt->err);
  }
  if (rc == LUPINE_OK) rc = lp_catalog_commit(rt->catalog, rt->err, sizeof rt->err);
  if (rc != LUPINE_OK) {
    lp_catalog_rollback(rt->catalog);
    if (rc != LUPINE_CONSTRAINT) return -1;
    luaL_pushfail(L);
    lua_pushstring(L, rt->err);
    return 2;
  }
  /* stack: ..., id, rows */
  lua_rawgeti(L, -1, 1);
  lua_replace(L, -2);
  lua_pushstring(L, version);
  lua_insert(L, -2);
  return 3;
}

/* core.duration(ms) -> "850 ms", "6.0 s", "2 min 05 s": the one format of
** durations, the runtime's messages' and the Lua side's alike */
static int core_duration(lua_State *L) {
  char text[24];
  lp_duration(luaL_checknumber(L, 1), text, sizeof text);
  lua_pushstring(L, text);
  return 1;
}

/* core.libraries() -> { { "Lua", "5.4.6" }, { "SQLite", ... }, ... }: the
** libraries the runtime runs with, for `lupine --version` */
static int core_libraries(lua_State *L) {
  static const char *const names[] = {"Lua", "SQLite", "libpq", "zstd", "OpenSSL"};
  const char *versions[5];
  int i;
  versions[0] = LUA_VERSION_MAJOR "." LUA_VERSION_MINOR "." LUA_VERSION_RELEASE;
  versions[1] = lp_catalog_sqlite_version();
  versions[2] = lp_catalog_libpq_version();
  versions[3] = lp_store_zstd_version();
  versions[4] = lp_store_openssl_version();
  lua_createtable(L, 5, 0);
  for (i = 0; i < 5; i++) {
    lua_createtable(L, 2, 0);
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, versions[i]);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

int lp_save_bytes(lua_State *L, lp_runtime *rt, int first) {
  char id[LP_ID_LEN + 1], version[LP_NAME_MAX + 1];
  long long seq;
  lp_object obj;
  size_t len;
  const char *bytes = lua_tolstring(L, first, &len);
  int rc;
  if (bytes == NULL || !lua_istable(L, first + 1)) {
    lp_errf(rt->err, sizeof rt->err, "lupine: malformed save");
    return -1;
  }
  if (lp_runtime_write_store(rt) != LUPINE_OK) return -1;
  if (lp_store_put(rt->store, bytes, len, &obj, rt->err, sizeof rt->err) != LUPINE_OK ||
      lp_catalog_begin(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK)
    return -1;
  rc = lp_store_keep(rt->store, bytes, len, &obj, rt->err, sizeof rt->err);
  if (rc == LUPINE_OK)
    rc = lp_record_version(L, rt, first + 1, lua_istable(L, first + 2) ? first + 2 : 0,
                           &obj, luaL_optstring(L, first + 5, "table"),
                           lua_tostring(L, first + 3), lua_tostring(L, first + 4), id,
                           version, &seq);
  return finish_record(L, rt, rc, id, version);
}

/*
** core.save(value, cfg, extra, producer, output) -> id, version, row
** Store value as a new version (cfg and extra as lp_record_version takes
** them), produced by step run producer's output if given; row is the
** version's catalog row as recorded. A value that
** cannot be encoded, or a custom version that exists, gives nil, message;
** other failures raise. In a worker the coordinator does the recording.
*/
static int core_save(lua_State *L) {
  char err[LP_ERRSZ];
  lp_runtime *rt = lp_runtime_of(L);
  const char *data_type = luaL_typename(L, 1);   /* a static string */
  int n;
  luaL_checkany(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_optstring(L, 4, NULL);
  luaL_optstring(L, 5, NULL);
  lua_settop(L, 5);
  if (lp_codec_encode(L, 1, "value", err, sizeof err) != LUPINE_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_replace(L, 1);   /* the bytes in place of the value */
  lua_pushstring(L, data_type);
  if (rt->to_parent != 0) return lp_worker_call(L, rt, "save", 1, 6);
  rt = ready(L);
  if ((n = lp_save_bytes(L, rt, 1)) < 0) return lp_raise(L, "%s", rt->err);
  return n;
}

/*
** core.record_object(object, data type, cfg, extra) -> id, version, row
** Record an object stored in the write store by core.store_path ({ hash,
** size, stored_size }) as a new version (cfg and extra as
** lp_record_version takes them); row as core.save gives it. One whose object is gone (a gc since it
** was stored), or whose custom version exists, gives nil, message.
*/
static int core_record_object(lua_State *L) {
  char id[LP_ID_LEN + 1], version[LP_NAME_MAX + 1];
  lp_runtime *rt = lp_runtime_of(L);
  lp_object obj;
  long long seq;
  int rc, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (rt->to_parent != 0) return luaL_error(L, "lupine: objects are recorded by the coordinator");
  rt = ready(L);
  lua_settop(L, 4);
  lua_getfield(L, 1, "hash");
  lua_getfield(L, 1, "size");
  lua_getfield(L, 1, "stored_size");
  snprintf(obj.hash, sizeof obj.hash, "%s", luaL_checkstring(L, 5));
  obj.size = (uint64_t)luaL_checkinteger(L, 6);
  obj.stored_size = (uint64_t)luaL_checkinteger(L, 7);
  obj.created = 0;
  if (lp_runtime_write_store(rt) != LUPINE_OK ||
      lp_catalog_begin(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  /* gc removes objects only under the catalog's write lock, held from here */
  if (!lp_store_exists(rt->store, obj.hash)) {
    lp_errf(rt->err, sizeof rt->err, "its object %s was removed before it was recorded (a gc?)",
            obj.hash);
    rc = LUPINE_CONSTRAINT;
  } else rc = lp_record_version(L, rt, 3, lua_istable(L, 4) ? 4 : 0, &obj, lua_tostring(L, 2),
                                NULL, NULL, id, version, &seq);
  if ((n = finish_record(L, rt, rc, id, version)) < 0) return lp_raise(L, "%s", rt->err);
  return n;
}

/* core.atomic(fn, ...) -> fn's results: fn runs in one catalog
** transaction (BEGIN IMMEDIATE), rolled back if it raises. */
static int core_atomic(lua_State *L) {
  lp_runtime *rt = ready(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (lp_catalog_begin(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  if (lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0) != LUA_OK) {
    lp_catalog_rollback(rt->catalog);
    return lua_error(L);
  }
  if (lp_catalog_commit(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK) {
    lp_catalog_rollback(rt->catalog);
    return lp_raise(L, "%s", rt->err);
  }
  return lua_gettop(L);
}

/* core.gc(dry_run, store id, grace, force) -> objects removed, bytes
** freed, objects kept, objects kept as recent | nil, why it refused: the
** store's objects that no version recorded in it references, written more
** than grace seconds ago (see lp_gc) */
static int core_gc(lua_State *L) {
  lp_runtime *rt = ready(L);
  lp_gc_options opt;
  lp_gc_result res;
  lp_store *s;
  int rc;
  opt.dry_run = lua_toboolean(L, 1);
  opt.grace = luaL_checknumber(L, 3);
  opt.force = lua_toboolean(L, 4);
  luaL_argcheck(L, opt.grace >= 0, 3, "not a number of seconds");   /* NaN too */
  if (lp_runtime_store(rt, luaL_checkstring(L, 2), &s, rt->err, sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  rc = lp_gc(rt->catalog, s, lua_tostring(L, 2), &opt, &res, rt->err, sizeof rt->err);
  if (rc == LUPINE_CONSTRAINT) {
    luaL_pushfail(L);
    lua_pushstring(L, rt->err);
    return 2;
  }
  if (rc != LUPINE_OK) return lp_raise(L, "%s", rt->err);
  lua_pushinteger(L, (lua_Integer)res.objects);
  lua_pushinteger(L, (lua_Integer)res.bytes);
  lua_pushinteger(L, (lua_Integer)res.kept);
  lua_pushinteger(L, (lua_Integer)res.recent);
  return 4;
}

/* core.gc_copies(dry_run) -> copies removed, bytes freed: the extracted
** copies of file and folder objects that no version needs */
static int core_gc_copies(lua_State *L) {
  lp_runtime *rt = ready(L);
  char cache[PATH_MAX];
  lp_gc_result res;
  snprintf(cache, sizeof cache, "%s/files", rt->home);
  if (lp_gc_copies(rt->catalog, cache, lua_toboolean(L, 1), &res, rt->err,
                   sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  lua_pushinteger(L, (lua_Integer)res.objects);
  lua_pushinteger(L, (lua_Integer)res.bytes);
  return 2;
}

/* core.use_stack([name]) -> the stack's name: new objects go to the store
** of that stack (nil: the active one) from now on */
static int core_use_stack(lua_State *L) {
  lp_runtime *rt = ready(L);
  char stack[LP_NAME_MAX + 1];
  if (lp_runtime_use_stack(rt, luaL_optstring(L, 1, NULL), stack, sizeof stack) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  lua_pushstring(L, stack);
  return 1;
}

/* core.store_root(store id) -> its folder | nil, why it cannot be opened */
static int core_store_root(lua_State *L) {
  lp_runtime *rt = ready(L);
  lp_store *s;
  char err[LP_ERRSZ];
  if (lp_runtime_store(rt, luaL_checkstring(L, 1), &s, err, sizeof err) != LUPINE_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushstring(L, lp_store_root(s));
  return 1;
}

/* core.check_store_path(path) -> true | nil, why: make the folder of a new
** local store and prove a file can be written there */
static int core_check_store_path(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char probe[PATH_MAX], err[LP_ERRSZ];
  FILE *f;
  int ok;
  if (make_dirs(path, err, sizeof err) != LUPINE_OK) {
    luaL_pushfail(L);
    lua_pushfstring(L, "cannot create '%s': %s", path, strerror(errno));
    return 2;
  }
  snprintf(probe, sizeof probe, "%s/.lupine-probe-%ld", path, (long)getpid());
  ok = (f = fopen(probe, "wb")) != NULL;
  if (ok) ok = fputs("probe\n", f) >= 0;
  if (f != NULL && fclose(f) != 0) ok = 0;
  if (!ok) {
    int e = errno;
    remove(probe);
    luaL_pushfail(L);
    lua_pushfstring(L, "cannot write in '%s': %s", path, strerror(e));
    return 2;
  }
  remove(probe);
  lua_pushboolean(L, 1);
  return 1;
}

/* Stream sink: a copy goes into a writer; a check goes nowhere. */
typedef struct { lp_store_writer *w; char *err; size_t errsz; } copy_sink;
static int sink_write(void *ud, const void *p, size_t n) {
  copy_sink *c = ud;
  return c->w == NULL ? LUPINE_OK : lp_store_writer_write(c->w, p, n, c->err, c->errsz);
}

/* core.check_object(store id, hash, size) -> "ok" | "missing" | "corrupt",
** message: read the whole object and check its size and hash */
static int core_check_object(lua_State *L) {
  lp_runtime *rt = ready(L);
  const char *hash = luaL_checkstring(L, 2);
  lua_Integer size = luaL_checkinteger(L, 3);
  char err[LP_ERRSZ] = "";
  copy_sink c = {NULL, err, sizeof err};
  lp_store *s;
  int rc;
  if (lp_runtime_store(rt, luaL_checkstring(L, 1), &s, rt->err, sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  rc = lp_store_get_stream(s, hash, (uint64_t)size, sink_write, &c, err, sizeof err);
  lua_pushstring(L, rc == LUPINE_OK ? "ok" : rc == LUPINE_NOTFOUND ? "missing" : "corrupt");
  lua_pushstring(L, err);
  return 2;
}

/* core.copy_object(from store id, to store id, hash, size [, repair]) -> the
** object's path in the second store | nil, message: streamed, checked as it
** goes. An object the second store has is kept, unless repair is true: then
** it is checked, and replaced if damaged (see lp_store_writer_close). */
static int core_copy_object(lua_State *L) {
  lp_runtime *rt = ready(L);
  const char *hash = luaL_checkstring(L, 3);
  lua_Integer size = luaL_checkinteger(L, 4);
  int repair = lua_toboolean(L, 5);
  char err[LP_ERRSZ] = "", path[PATH_MAX];
  copy_sink c = {NULL, err, sizeof err};
  lp_store *from, *to;
  lp_object obj;
  int rc;
  luaL_argcheck(L, size >= 0, 4, "negative size");
  if (lp_runtime_store(rt, luaL_checkstring(L, 1), &from, rt->err, sizeof rt->err) != LUPINE_OK ||
      lp_runtime_store(rt, luaL_checkstring(L, 2), &to, rt->err, sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  if (lp_store_uri(to, hash, path, sizeof path) != LUPINE_OK)
    return luaL_argerror(L, 3, "not a content hash");
  if (repair || !lp_store_exists(to, hash)) {
    if ((rc = lp_store_writer_open(to, (uint64_t)size, &c.w, err, sizeof err)) == LUPINE_OK)
      rc = lp_store_get_stream(from, hash, (uint64_t)size, sink_write, &c, err, sizeof err);
    if (rc == LUPINE_OK) rc = lp_store_writer_close(c.w, &obj, err, sizeof err);
    else lp_store_writer_abort(c.w);
    if (rc == LUPINE_OK && strcmp(obj.hash, hash) != 0)
      rc = LUPINE_CORRUPT, lp_errf(err, sizeof err, "object %s changed while copied", hash);
    if (rc != LUPINE_OK) {
      luaL_pushfail(L);
      lua_pushstring(L, err);
      return 2;
    }
  }
  lua_pushstring(L, path);
  return 1;
}

static const luaL_Reg core_funcs[] = {
  {"use_stack", core_use_stack},
  {"store_root", core_store_root},
  {"check_store_path", core_check_store_path},
  {"check_object", core_check_object},
  {"copy_object", core_copy_object},
  {"check_copy", core_check_copy},
  {"discard_copy", core_discard_copy},
  {"gc_copies", core_gc_copies},
  {"write", core_write},
  {"now", core_now},
  {"cwd", core_cwd},
  {"text_width", core_text_width},
  {"duration", core_duration},
  {"libraries", core_libraries},
  {"store_path", core_store_path},
  {"export_path", core_export_path},
  {"tagged", core_tagged},
  {"set_restore", core_set_restore},
  {"code_hash", core_code_hash},
  {"hash", core_hash},
  {"save", core_save},
  {"record_object", core_record_object},
  {"run", core_run},
  {"query", core_query},
  {"list", core_list},
  {"sort_keys", core_sort_keys},
  {"load", core_load},
  {"read", core_read},
  {"encode", core_encode},
  {"decode", core_decode},
  {"home", core_home},
  {"locate", core_locate},
  {"set_home", core_set_home},
  {"set_catalog", core_set_catalog},
  {"catalog", core_catalog},
  {"copy_catalog", core_copy_catalog},
  {"object_path", core_object_path},
  {"atomic", core_atomic},
  {"gc", core_gc},
  {"read_object", lp_core_read_object},   /* visual.c */
  {"number_text", lp_core_number_text},
  {"csv", lp_core_csv},
  {"describe", lp_core_describe},
  {"extremes", lp_core_extremes},
  {"record_columns", lp_core_record_columns},
  {"is_sequence", lp_core_is_sequence},
  {"markdown", lp_core_markdown},
  {"temp_file", lp_core_temp_file},
  {"exec_begin", lp_core_exec_begin},   /* exec.c */
  {"exec_step", lp_core_exec_step},
  {"write_atomic", lp_core_write_atomic},
  {"exec_replay", lp_core_exec_replay},
  {NULL, NULL}
};

LUPINE_API int luaopen_lupine_core(lua_State *L) {
  luaL_newlib(L, core_funcs);
  lua_pushliteral(L, LUPINE_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, LP_CODEC_VERSION);
  lua_setfield(L, -2, "codec_version");
  lua_pushinteger(L, lp_catalog_schema_version());
  lua_setfield(L, -2, "schema_version");
  return 1;
}

/* ---- the embedded Lua side ---- */

/* package.preload loader for an embedded module; upvalue: its index. */
static int load_embedded(lua_State *L) {
  const lp_lua_source *src = &lp_lua_sources[lua_tointeger(L, lua_upvalueindex(1))];
  if (luaL_loadbufferx(L, src->code, src->len, src->chunkname, "b") != LUA_OK)
    return lua_error(L);
  lua_pushvalue(L, 1);   /* the module name, as require passes it */
  lua_call(L, 1, 1);
  return 1;
}

LUPINE_API int luaopen_lupine(lua_State *L) {
  int i;
  lp_catalog_fork_safe();   /* a host thread may be in sqlite when a worker forks */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_lupine_core);
  lua_setfield(L, -2, "lupine.core");
  for (i = 0; lp_lua_sources[i].module != NULL; i++) {
    if (strcmp(lp_lua_sources[i].module, "lupine") == 0) continue;
    if (lua_getfield(L, -1, lp_lua_sources[i].module) == LUA_TNIL) {
      lua_pushinteger(L, i);
      lua_pushcclosure(L, load_embedded, 1);
      lua_setfield(L, -3, lp_lua_sources[i].module);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  for (i = 0; strcmp(lp_lua_sources[i].module, "lupine") != 0; i++) {}
  lua_pushinteger(L, i);
  lua_pushcclosure(L, load_embedded, 1);
  lua_pushliteral(L, "lupine");
  lua_call(L, 1, 1);
  return 1;
}

/* ---- for the C API (api.c) ---- */

int lp_runtime_open(lua_State *L, lp_runtime *rt) {
  int rc;
  if (rt->catalog != NULL) return LUPINE_OK;
  if ((rc = lp_runtime_ready(rt)) != LUPINE_OK) return rc;
  if (rt->to_parent == 0) mark_dead_runs(L, rt);
  return LUPINE_OK;
}
