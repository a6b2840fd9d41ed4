/* SPDX-License-Identifier: MIT */
/*
** versions.c: an artifact version's life in the runtime: saved (a value
** encoded and put in the run's store) or recorded from a stored object,
** with its tags, metadata and visualizations, in the catalog; loaded
** (looked up, read from its own store, decoded); a file or folder
** version materialized as a read-only copy. The executor and the
** bindings share these.
*/
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lauxlib.h"
#include "lupine_int.h"

int lp_versions_record(lua_State *L, lp_runtime *rt, int cfg, int extra,
                       const lp_object *obj, const char *data_type, const char *producer,
                       const char *output, int later, char id[LP_ID_LEN + 1],
                       char version[LP_NAME_MAX + 1], long long *seq) {
  char uri[PATH_MAX], now[32];
  lp_version_spec spec;
  int top = lua_gettop(L), rc, changes, k;
  cfg = lua_absindex(L, cfg);
  if (extra != 0) extra = lua_absindex(L, extra);
  /* the name resolved while the step ran wins over the spec's */
  if (extra == 0 || lua_getfield(L, extra, "artifact") != LUA_TSTRING) {
    lua_pop(L, extra != 0);
    lua_getfield(L, cfg, "artifact");
  } else {
    lua_pushvalue(L, -1);
    lua_setfield(L, cfg, "artifact");
  }
  spec.artifact = lua_tostring(L, -1);
  lua_getfield(L, cfg, "type");
  spec.type = lua_isstring(L, -1) ? lua_tostring(L, -1) : "data";
  lua_getfield(L, cfg, "version");
  spec.version = lua_tostring(L, -1);
  lua_getfield(L, cfg, "save_type");
  spec.save_type = lua_isstring(L, -1) ? lua_tostring(L, -1) : "step_output";
  if (lua_getfield(L, cfg, "reuse") == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
    /* an external input: its content, stored before under this name, is that version */
    lua_pushstring(L, spec.artifact);
    lua_pushstring(L, obj->hash);
    lua_pushstring(L, spec.save_type);
    if (lp_catalog_query(L, rt->catalog, "same_content_version", lua_gettop(L) - 2, 3, rt->err,
                         sizeof rt->err) != LUPINE_OK) {
      lua_settop(L, top);
      return LUPINE_CATALOG;
    }
    if (lua_rawgeti(L, -1, 1) == LUA_TTABLE) {
      lua_getfield(L, -1, "id");
      lua_getfield(L, -2, "version");
      lua_getfield(L, -3, "seq");
      snprintf(id, LP_ID_LEN + 1, "%s", lua_tostring(L, -3));
      snprintf(version, LP_NAME_MAX + 1, "%s", lua_tostring(L, -2));
      *seq = (long long)lua_tointeger(L, -1);
      lua_settop(L, top);
      return LUPINE_OK;
    }
  }
  /* a materializer's type name, from the worker, wins over the Lua type */
  if (extra != 0 && lua_getfield(L, extra, "data_type") == LUA_TSTRING)
    data_type = lua_tostring(L, -1);
  spec.data_type = data_type;
  spec.object = obj;
  spec.producer = producer;
  spec.output = output;
  spec.store_id = rt->store_id;   /* the run's stack's store: where obj was put */
  spec.later = later;
  lp_store_uri(rt->store, obj->hash, uri, sizeof uri);
  spec.uri = uri;
  if (spec.artifact == NULL) {
    lp_errf(rt->err, sizeof rt->err, "lupine: output configuration without an artifact name");
    rc = LUPINE_MISUSE;
  } else rc = lp_catalog_add_version(rt->catalog, &spec, id, version, seq, rt->err,
                                     sizeof rt->err);
  if (rc == LUPINE_OK && extra != 0) {
    lp_catalog_now(now);
    lua_getfield(L, extra, "tags");
    for (k = 1; rc == LUPINE_OK && lua_istable(L, -1) && lua_rawgeti(L, -1, k) != LUA_TNIL; k++) {
      lua_pushliteral(L, "artifact_version");
      lua_pushstring(L, id);
      lua_rotate(L, -3, 2);   /* entity, id, tag */
      rc = lp_catalog_write(L, rt->catalog, "tag", lua_gettop(L) - 2, 3, &changes, rt->err,
                            sizeof rt->err);
      lua_pop(L, 3);
    }
    lua_settop(L, top + 3);
    /* metadata rows: { key, CBOR value, number or nil, text or nil } */
    lua_getfield(L, extra, "metadata");
    for (k = 1; rc == LUPINE_OK && lua_istable(L, -1) && lua_rawgeti(L, -1, k) == LUA_TTABLE; k++) {
      int row = lua_gettop(L), i;
      lua_pushliteral(L, "artifact_version");
      lua_pushstring(L, id);
      for (i = 1; i <= 4; i++) lua_rawgeti(L, row, i);
      lua_pushstring(L, now);
      rc = lp_catalog_write(L, rt->catalog, "set_metadata", row + 1, 7, &changes, rt->err,
                            sizeof rt->err);
      lua_settop(L, row - 1);
    }
  }
  lua_settop(L, top);
  if (rc == LUPINE_OK) rc = lp_record_visualizations(L, rt, extra, id);
  return rc;
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

int lp_versions_save(lua_State *L, lp_runtime *rt, int first, int nargs) {
  char id[LP_ID_LEN + 1], version[LP_NAME_MAX + 1];
  long long seq;
  lp_object obj;
  size_t len, hlen = 0;
  const char *bytes = lua_tolstring(L, first, &len);
  /* a string's head, its bytes apart (core.save), or none */
  const char *head = nargs >= 7 ? lua_tolstring(L, first + 6, &hlen) : NULL;
  int rc;
  if (nargs < 6 || bytes == NULL || !lua_istable(L, first + 1)) {
    lp_errf(rt->err, sizeof rt->err, "lupine: malformed save");
    return -1;
  }
  if (lp_runtime_write_store(rt) != LUPINE_OK) return -1;
  if (lp_store_put_parts(rt->store, head, hlen, bytes, len, &obj, 1, rt->err,
                         sizeof rt->err) != LUPINE_OK ||
      lp_catalog_begin(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK)
    return -1;
  rc = lp_store_keep(rt->store, head, hlen, bytes, len, &obj, rt->err, sizeof rt->err);
  if (rc == LUPINE_OK)
    rc = lp_versions_record(L, rt, first + 1, lua_istable(L, first + 2) ? first + 2 : 0,
                           &obj, luaL_optstring(L, first + 5, "table"),
                           lua_tostring(L, first + 3), lua_tostring(L, first + 4), 0, id,
                           version, &seq);
  return finish_record(L, rt, rc, id, version);
}


int lp_versions_record_object(lua_State *L, lp_runtime *rt, const lp_object *obj,
                              const char *data_type, int cfg, int extra) {
  char id[LP_ID_LEN + 1], version[LP_NAME_MAX + 1];
  long long seq;
  int rc;
  if (lp_runtime_write_store(rt) != LUPINE_OK ||
      lp_catalog_begin(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK)
    return -1;
  /* gc removes objects only under the catalog's write lock, held from here */
  if (!lp_store_exists(rt->store, obj->hash)) {
    lp_errf(rt->err, sizeof rt->err, "its object %s was removed before it was recorded (a gc?)",
            obj->hash);
    rc = LUPINE_CONSTRAINT;
  } else rc = lp_versions_record(L, rt, cfg, extra, obj, data_type, NULL, NULL, 0, id,
                                 version, &seq);
  return finish_record(L, rt, rc, id, version);
}

/* ---- loading ---- */

int lp_versions_load(lua_State *L, lp_runtime *rt, const char *id, int decode) {
  const char *name, *version, *hash;
  lp_store *store = NULL;
  unsigned char *data = NULL;
  size_t len;
  int top = lua_gettop(L), rc, files;
  if (rt->catalog == NULL && lp_runtime_ready(rt) != LUPINE_OK)   /* in a new worker */
    lp_raise(L, "%s", rt->err);
  lua_pushliteral(L, "version_by_id");
  lua_pushstring(L, id);
  lp_runtime_call(L, "query", lp_runtime_query, top + 1, 2);
  if (lua_rawgeti(L, -1, 1) != LUA_TTABLE) lp_raise(L, "artifact version '%s' not found", id);
  lua_getfield(L, -1, "name");
  lua_getfield(L, -2, "version");
  lua_getfield(L, -3, "content_hash");
  lua_getfield(L, -4, "size");
  name = lua_tostring(L, -4);
  version = lua_tostring(L, -3);
  hash = lua_tostring(L, -2);
  lua_getfield(L, -5, "data_type");
  files = lua_isstring(L, -1) && lp_versions_is_file(lua_tostring(L, -1));
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
    } else if ((rc = lp_versions_materialize(rt, store, hash, (uint64_t)lua_tointeger(L, -1), path,
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
  return 1;
}

int lp_versions_is_file(const char *data_type) {
  return strcmp(data_type, "file") == 0 || strcmp(data_type, "dir") == 0;
}

int lp_versions_materialize(lp_runtime *rt, lp_store *s, const char *hash, uint64_t size,
                            char *out, size_t outsz) {
  char cache[PATH_MAX], changed[LP_ERRSZ];
  int rc;
  snprintf(cache, sizeof cache, "%s/files", rt->home);
  rc = lp_files_materialize(s, cache, hash, size, out, outsz, changed, sizeof changed, rt->err,
                            sizeof rt->err);
  if (changed[0] != '\0')
    lp_log(rt, LUPINE_LOG_WARN, "%s: extracted it again from object %s", changed, hash);
  return rc;
}

