/* SPDX-License-Identifier: MIT */
/*
** lmodule.c: the Lua module. `lupine.core` holds the C functions; the
** user-facing module `lupine` is Lua code (the files in lua/lupine/) embedded in
** this library, which luaopen_lupine loads on top of the core.
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "lauxlib.h"
#include "lualib.h"
#include "lupine_int.h"

/* ---- lupine.core ---- */

/* core.run(spec) -> run id, name, status, errors: lp_execute, whose comment
** (executor.c) documents every field of spec and each value returned */
static int core_run(lua_State *L) {
  lp_runtime *rt;
  int n;
  luaL_checktype(L, 1, LUA_TTABLE);
  rt = lp_runtime_opened(L);
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
  /* checked here, where the step called, before a worker's call goes out */
  if (lp_catalog_check(L, 0, name, 2, lua_gettop(L) - 1, rt->err, sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  return lp_runtime_call(L, "query", lp_runtime_query, 1, lua_gettop(L));
}

/* core.list(listing, description [, "rows" | "count" | "plan" | "count_plan"])
** -> rows | count | plan, statement: what a filter description selects
** (runtime/catalog_listing.c). In a worker the coordinator answers. */
static int core_list(lua_State *L) {
  luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_optstring(L, 3, NULL);
  return lp_runtime_call(L, "list", lp_runtime_list, 1, lua_gettop(L));
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
  return lp_versions_load(L, lp_runtime_opened(L), id, 1);
}

/* core.read(version_id) -> the stored CBOR bytes */
static int core_read(lua_State *L) {
  const char *id = luaL_checkstring(L, 1);
  return lp_versions_load(L, lp_runtime_opened(L), id, 0);
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
  lua_pushstring(L, lp_runtime_opened(L)->home);
  return 1;
}

/* core.locate() -> the catalog folder in use (or the one a first use will
** pick) and whether its catalog exists. Creates nothing: for what only
** reads, such as shell completion, which must not leave a catalog behind. */
static int core_locate(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  char path[PATH_MAX + 16], *target;
  struct stat sb;
  if (lp_runtime_find_home(rt) != LUPINE_OK) {
    lua_pushstring(L, rt->err);   /* it names the culprit */
    return lua_error(L);
  }
  snprintf(path, sizeof path, "%s/catalog.db", rt->home);
  /* a catalog elsewhere (a server) is taken to be there */
  if ((target = lp_runtime_catalog_target(rt)) == NULL) return luaL_error(L, "out of memory");
  lua_pushstring(L, rt->home);
  lua_pushboolean(L, rt->catalog != NULL || strcmp(target, path) != 0 || stat(path, &sb) == 0);
  free(target);
  return 2;
}

/* core.set_catalog(target | nil): use another catalog from now on (nil:
** $LUPINE_CATALOG, else the folder's file) */
static int core_set_catalog(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  if (!lua_isnoneornil(L, 1) && lua_type(L, 1) != LUA_TSTRING)
    return luaL_error(L, "set_catalog: the target must be a string: a PostgreSQL URI or "
                      "connection string, or a catalog file's path (got %s)", luaL_typename(L, 1));
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
  if (lp_runtime_find_home(rt) != LUPINE_OK) {
    lua_pushstring(L, rt->err);
    return lua_error(L);
  }
  if ((target = lp_runtime_catalog_target(rt)) == NULL) return luaL_error(L, "out of memory");
  lua_pushstring(L, lp_catalog_describe(target, where, sizeof where));
  free(target);
  lua_pushstring(L, where);
  return 2;
}

/* core.catalog_name() -> the catalog in use named for people (the folder
** for its own file), as lupine_catalog_name: for the CLI's headers */
static int core_catalog_name(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  char name[PATH_MAX + 300];
  if (lp_runtime_catalog_name(rt, name, sizeof name) != LUPINE_OK)
    return luaL_error(L, "%s", rt->err);
  lua_pushstring(L, name);
  return 1;
}

/* core.copy_catalog(target) -> { { table, rows }, ... }: copy the catalog
** in use into the empty one at target (made if it is a new file) */
static int core_copy_catalog(lua_State *L) {
  const char *target = luaL_checkstring(L, 1);
  lp_runtime *rt = lp_runtime_opened(L);
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
  lp_runtime *rt = lp_runtime_opened(L);
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
  /* checked here, where the step called, before a worker's call goes out */
  if (lp_catalog_check(L, 1, name, 2, lua_gettop(L) - 1, rt->err, sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  return lp_runtime_call(L, "write", lp_runtime_write, 1, lua_gettop(L));
}

/* core.check_copy(hash) -> "ok" | "changed" | "none", why: hash the
** extracted copy of a file or folder object again */
static int core_check_copy(lua_State *L) {
  const char *hash = luaL_checkstring(L, 1);
  lp_runtime *rt = lp_runtime_opened(L);
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
  lp_runtime *rt = lp_runtime_opened(L);
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
  if (rt->store == NULL) rt = lp_runtime_opened(L);
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
  lp_runtime *rt = lp_runtime_opened(L);
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
  if (!lua_isstring(L, -1) || !lp_versions_is_file(lua_tostring(L, -1)))
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
  if (lp_cache_code_hash(L, 1, hash) != LUPINE_OK) return luaL_error(L, "out of memory");
  lua_pushstring(L, hash);
  return 1;
}

/* core.hash(bytes) -> "sha256:<hex>" */
static int core_hash(lua_State *L) {
  char hash[LP_HASH_STRLEN + 1];
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lp_frame_hash_bytes(s, len, hash);
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

/* core.sleep(seconds): wait that long, a quarter of a second at most: a
** caller that waits longer (the proxy of a Slurm job, lupine.slurm) loops,
** looking again between naps */
static int core_sleep(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (!(s > 0)) return 0;   /* NaN too */
  if (s > 0.25) s = 0.25;
  ts.tv_sec = 0;
  ts.tv_nsec = (long)(s * 1e9);
  nanosleep(&ts, NULL);
  return 0;
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
  versions[3] = lp_frame_zstd_version();
  versions[4] = lp_frame_openssl_version();
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

/*
** core.save(value, cfg, extra, producer, output) -> id, version, row
** Store value as a new version (cfg and extra as lp_versions_record takes
** them), produced by step run producer's output if given; row is the
** version's catalog row as recorded. A value that
** cannot be encoded, or a custom version that exists, gives nil, message;
** other failures raise. In a worker the coordinator does the recording.
*/
static int core_save(lua_State *L) {
  char err[LP_ERRSZ];
  const char *data_type = luaL_typename(L, 1);   /* a static string */
  luaL_checkany(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_optstring(L, 4, NULL);
  luaL_optstring(L, 5, NULL);
  lua_settop(L, 5);
  if (lua_type(L, 1) == LUA_TSTRING && lp_runtime_here(L)) {
    /* a string (a blob, often large) with its head apart: stored as the
    ** two parts, its bytes not first copied after the head */
    unsigned char head[9];
    size_t n;
    const char *s = lua_tolstring(L, 1, &n);
    lua_pushstring(L, data_type);
    lua_pushlstring(L, (const char *)head, lp_codec_string_head(s, n, head));
    return lp_runtime_call(L, "save", lp_versions_save, 1, 7);
  }
  if (lp_codec_encode(L, 1, "value", err, sizeof err) != LUPINE_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_replace(L, 1);   /* the bytes in place of the value */
  lua_pushstring(L, data_type);
  return lp_runtime_call(L, "save", lp_versions_save, 1, 6);
}

/*
** core.record_object(object, data type, cfg, extra) -> id, version, row
** Record an object stored in the write store by core.store_path ({ hash,
** size, stored_size }) as a new version (cfg and extra as
** lp_versions_record takes them); row as core.save gives it. One whose object is gone (a gc since it
** was stored), or whose custom version exists, gives nil, message.
*/
static int core_record_object(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  lp_object obj;
  int n;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (rt->to_parent != 0) return luaL_error(L, "lupine: objects are recorded by the coordinator");
  rt = lp_runtime_opened(L);
  lua_settop(L, 4);
  lua_getfield(L, 1, "hash");
  lua_getfield(L, 1, "size");
  lua_getfield(L, 1, "stored_size");
  snprintf(obj.hash, sizeof obj.hash, "%s", luaL_checkstring(L, 5));
  obj.size = (uint64_t)luaL_checkinteger(L, 6);
  obj.stored_size = (uint64_t)luaL_checkinteger(L, 7);
  obj.created = 0;
  n = lp_versions_record_object(L, rt, &obj, lua_tostring(L, 2), 3, lua_istable(L, 4) ? 4 : 0);
  if (n < 0) return lp_raise(L, "%s", rt->err);
  return n;
}

/* core.atomic(fn, ...) -> fn's results: fn runs in one catalog
** transaction (BEGIN IMMEDIATE), rolled back if it raises. */
static int core_atomic(lua_State *L) {
  lp_runtime *rt = lp_runtime_opened(L);
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
  lp_runtime *rt = lp_runtime_opened(L);
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
  lp_runtime *rt = lp_runtime_opened(L);
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
  lp_runtime *rt = lp_runtime_opened(L);
  char stack[LP_NAME_MAX + 1];
  if (lp_runtime_use_stack(rt, luaL_optstring(L, 1, NULL), stack, sizeof stack) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  lua_pushstring(L, stack);
  return 1;
}

/* core.store_root(store id) -> its folder | nil, why it cannot be opened */
static int core_store_root(lua_State *L) {
  lp_runtime *rt = lp_runtime_opened(L);
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
  if (lp_runtime_make_dirs(path, err, sizeof err) != LUPINE_OK) {
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
  lp_runtime *rt = lp_runtime_opened(L);
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
  lp_runtime *rt = lp_runtime_opened(L);
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
  {"sleep", core_sleep},
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
  {"catalog_name", core_catalog_name},
  {"copy_catalog", core_copy_catalog},
  {"object_path", core_object_path},
  {"atomic", core_atomic},
  {"gc", core_gc},
  {NULL, NULL}
};

LUPINE_API int luaopen_lupine_core(lua_State *L) {
  luaL_newlib(L, core_funcs);
  luaL_setfuncs(L, lp_visual_core, 0);
  luaL_setfuncs(L, lp_exec_core, 0);
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
