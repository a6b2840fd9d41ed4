/* SPDX-License-Identifier: MIT */
/*
** runtime.c: the runtime of a lua_State: where the catalog lives (the home
** folder, or the catalog set_catalog or LUPINE_CATALOG names), the open
** catalog and stores, the runs of dead processes failed as it opens, the
** log and event callbacks, and whether this process is a worker of a run. Its calls of the catalog that
** a step may make go through lp_runtime_call, the one place that decides
** whether they run here or in the coordinator.
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
#include "lupine_int.h"

static const char runtime_key = 'R';   /* registry key: its address */

#define RUNTIME_MT "lupine.Runtime"

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
int lp_runtime_make_dirs(const char *path, char *err, size_t errsz) {
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

int lp_runtime_find_home(lp_runtime *rt) {
  return rt->home != NULL ? LUPINE_OK : resolve_home(rt, NULL, NULL, &rt->home);
}

int lp_runtime_dead_after(void) {
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
** heartbeats: none for lp_runtime_dead_after() seconds, and it is taken
** for dead. L is where the rows are read; failures here are not the
** caller's.
*/
static void mark_dead_runs(lua_State *L, lp_runtime *rt) {
  char err[LP_ERRSZ], now[32], why[512], started[32], host[256] = "", cutoff[32];
  int top = lua_gettop(L), i, changes, dead_after = lp_runtime_dead_after();
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
** so that one server keeps a catalog per folder (a schema each).
*/
char *lp_runtime_catalog_target(lp_runtime *rt) {
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
  lp_frame_hash_bytes(rt->home, strlen(rt->home), hash);
  n = strlen(t) + 32;
  if ((out = malloc(n)) != NULL)
    snprintf(out, n, "%.*slupine_%.16s%s", (int)(at - t), t, hash + strlen(LP_HASH_PREFIX),
             at + strlen("{home}"));
  return out;
}

int lp_runtime_catalog_name(lp_runtime *rt, char *out, size_t outsz) {
  const char *env = getenv("LUPINE_CATALOG"), *kind;
  char where[PATH_MAX + 256], *target;
  int rc;
  if ((rc = lp_runtime_find_home(rt)) != LUPINE_OK) return rc;
  if (rt->catalog_target == NULL && (env == NULL || env[0] == '\0')) {
    snprintf(out, outsz, "%s", rt->home);
    return LUPINE_OK;
  }
  if (rt->catalog != NULL) {   /* as it opened: a PostgreSQL one with its schema */
    kind = lp_catalog_backend_name(rt->catalog);
    snprintf(where, sizeof where, "%s", lp_catalog_where(rt->catalog));
  } else if ((target = lp_runtime_catalog_target(rt)) != NULL) {
    kind = lp_catalog_describe(target, where, sizeof where);
    free(target);
  } else {
    lp_errf(rt->err, sizeof rt->err, "out of memory");
    return LUPINE_NOMEM;
  }
  snprintf(out, outsz, "%s %s", kind, where);
  return LUPINE_OK;
}

int lp_runtime_ready(lp_runtime *rt) {
  char path[PATH_MAX], *target;
  int rc;
  if (rt->catalog != NULL) return LUPINE_OK;
  if (rt->read_only)   /* `lupine exec`: the coordinator's, to read (nothing else to do) */
    return lp_catalog_open_read_only(&rt->catalog, rt->catalog_target, rt->err, sizeof rt->err);
  if (rt->detached != NULL) {   /* `lupine exec`: the catalog is the coordinator's */
    lp_errf(rt->err, sizeof rt->err, "%s", rt->detached);
    return LUPINE_MISUSE;
  }
  if ((rc = lp_runtime_find_home(rt)) != LUPINE_OK) return rc;
  if ((rc = lp_runtime_make_dirs(rt->home, rt->err, sizeof rt->err)) != LUPINE_OK) return rc;
  if ((target = lp_runtime_catalog_target(rt)) == NULL) {
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

int lp_runtime_set_catalog(lp_runtime *rt, const char *target, const char *who) {
  char *copy = NULL, msg[LP_ERRSZ];
  if (target != NULL && target[0] == '\0') {
    lp_errf(rt->err, sizeof rt->err,
            "%s: an empty target names no catalog (give none for the default)", who);
    return LUPINE_MISUSE;
  }
  if (target != NULL && lp_catalog_check_target(target, msg, sizeof msg) != LUPINE_OK) {
    lp_errf(rt->err, sizeof rt->err, "%s: %s", who, msg);
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

int lp_runtime_open(lua_State *L, lp_runtime *rt) {
  int rc;
  if (rt->catalog != NULL) return LUPINE_OK;
  if ((rc = lp_runtime_ready(rt)) != LUPINE_OK) return rc;
  if (rt->to_parent == 0 && !rt->read_only) mark_dead_runs(L, rt);
  return LUPINE_OK;
}

lp_runtime *lp_runtime_opened(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  /* the message names the culprit (the folder, the catalog file); the
  ** position of the call, often in lupine's own Lua code, would not help */
  if (lp_runtime_open(L, rt) != LUPINE_OK) lp_raise(L, "%s", rt->err);
  return rt;
}

/* ---- calls a step makes of the catalog ---- */

int lp_runtime_here(lua_State *L) {
  /* the coordinator's view: it holds the run's transaction, and sees what
  ** it has not committed yet */
  return lp_runtime_of(L)->to_parent == 0;
}

int lp_runtime_call(lua_State *L, const char *op, lp_call_fn fn, int first, int nargs) {
  lp_runtime *rt = lp_runtime_of(L);
  int n;
  if (!lp_runtime_here(L)) return lp_wire_call(L, rt, op, first, nargs);
  /* `lupine exec` replaying the script's top level: what it writes there
  ** the coordinator has written (init.lua answers its saves) */
  if (rt->read_only && strcmp(op, "write") == 0) {
    lua_pushinteger(L, 0);
    return 1;
  }
  rt = lp_runtime_opened(L);
  if ((n = fn(L, rt, first, nargs)) < 0) return lp_raise(L, "%s", rt->err);
  return n;
}

int lp_runtime_query(lua_State *L, lp_runtime *rt, int first, int nargs) {
  return lp_catalog_query(L, rt->catalog, lua_tostring(L, first), first + 1, nargs - 1, rt->err,
                          sizeof rt->err) == LUPINE_OK ? 1 : -1;
}

int lp_runtime_write(lua_State *L, lp_runtime *rt, int first, int nargs) {
  int changes;
  if (lp_catalog_write(L, rt->catalog, lua_tostring(L, first), first + 1, nargs - 1, &changes,
                       rt->err, sizeof rt->err) != LUPINE_OK)
    return -1;
  lua_pushinteger(L, changes);
  return 1;
}

int lp_runtime_snapshot(lua_State *L, lp_runtime *rt, int first, int nargs) {
  char path[PATH_MAX];
  (void)nargs;
  if (lp_catalog_snapshot(rt->catalog, luaL_checkstring(L, first), path, sizeof path, rt->err,
                          sizeof rt->err) != LUPINE_OK)
    return -1;
  if (path[0] == '\0') {   /* on a server: its target, which the readers reach */
    char *target = lp_runtime_catalog_target(rt);
    if (target == NULL) {
      lp_errf(rt->err, sizeof rt->err, "out of memory");
      return -1;
    }
    lua_pushstring(L, target);
    free(target);
  } else lua_pushstring(L, path);
  return 1;
}

int lp_runtime_release(lua_State *L, lp_runtime *rt, int first, int nargs) {
  (void)nargs;
  lp_catalog_snapshot_done(rt->catalog, luaL_checkstring(L, first));
  return 0;
}

int lp_runtime_list(lua_State *L, lp_runtime *rt, int first, int nargs) {
  int top = lua_gettop(L);
  if (lp_catalog_list(L, rt->catalog, lua_tostring(L, first), first + 1,
                      nargs >= 3 ? lua_tostring(L, first + 2) : NULL, rt->err,
                      sizeof rt->err) != LUPINE_OK)
    return -1;
  return lua_gettop(L) - top;
}
