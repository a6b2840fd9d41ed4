/*
** visual.c: the visualizations of artifact versions. lua/lupine/viz.lua
** computes them when a value is saved (HTML, SVG, CSV, markdown or text
** bytes); here each is stored as an object, content-addressed like values,
** and listed in the catalog's visualizations table, in the transaction that
** records its version.
*/
#include <stdlib.h>
#include <string.h>
#include "lauxlib.h"
#include "lupine_int.h"

static const char *const types[] = {"html", "svg", "csv", "markdown", "text", NULL};

static int known_type(const char *t) {
  int i;
  for (i = 0; t != NULL && types[i] != NULL; i++)
    if (strcmp(types[i], t) == 0) return 1;
  return 0;
}

int lp_record_visualizations(lua_State *L, lp_runtime *rt, int extra, const char *version_id) {
  int top = lua_gettop(L), k, rc = LUPINE_OK, changes;
  if (extra == 0) return LUPINE_OK;
  extra = lua_absindex(L, extra);
  if (lua_getfield(L, extra, "visualizations") != LUA_TTABLE) {
    lua_settop(L, top);
    return LUPINE_OK;
  }
  /* stack: ..., list; each item { type, bytes } */
  for (k = 1; rc == LUPINE_OK && lua_rawgeti(L, top + 1, k) != LUA_TNIL; k++) {
    lp_object obj;
    const char *type = NULL, *bytes = NULL;
    size_t len = 0;
    if (lua_istable(L, -1)) {
      if (lua_rawgeti(L, -1, 1) == LUA_TSTRING) type = lua_tostring(L, -1);
      if (lua_rawgeti(L, -2, 2) == LUA_TSTRING) bytes = lua_tolstring(L, -1, &len);
    }
    if (!known_type(type) || bytes == NULL || len > LP_VIZ_MAX) {
      lp_errf(rt->err, sizeof rt->err, "lupine: visualization %d of version %s: %s", k,
              version_id, !known_type(type) ? "unknown type"
              : bytes == NULL ? "no bytes" : "over the size limit");
      rc = LUPINE_MISUSE;
      break;
    }
    /* Put while the caller holds the write lock: gc cannot run in between. */
    /* in the store of the version: rt->store, where its object was put */
    if ((rc = lp_store_put(rt->store, bytes, len, &obj, rt->err, sizeof rt->err)) != LUPINE_OK)
      break;
    lua_pushstring(L, version_id);
    lua_pushinteger(L, k);
    lua_pushstring(L, type);
    lua_pushstring(L, obj.hash);
    lua_pushinteger(L, (lua_Integer)obj.size);
    rc = lp_catalog_write(L, rt->catalog, "add_visualization", lua_gettop(L) - 4, 5, &changes,
                          rt->err, sizeof rt->err);
    lua_settop(L, top + 1);
  }
  lua_settop(L, top);
  return rc;
}

/*
** core.read_object(hash, size [, store id]) -> bytes | nil, message
** The bytes of a stored object (a visualization's), checked against its
** hash; size is what the catalog recorded, and no larger frame is read.
** Without a store id it is read from the store of a version whose
** visualization it is (visualizations live with their version).
*/
int lp_core_read_object(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  const char *hash = luaL_checkstring(L, 1);
  lua_Integer size = luaL_checkinteger(L, 2);
  unsigned char *data;
  size_t len;
  char err[LP_ERRSZ];
  lp_store *store = NULL;
  int top = lua_gettop(L), rc = LUPINE_NOTFOUND, i;
  luaL_argcheck(L, size >= 0, 2, "negative size");
  if (lp_runtime_ready(rt) != LUPINE_OK) return luaL_error(L, "%s", rt->err);
  lp_errf(err, sizeof err, "object %s is not recorded in any artifact store", hash);
  if (lua_isstring(L, 3)) lua_pushvalue(L, 3);
  else {
    lua_pushvalue(L, 1);
    if (lp_catalog_query(L, rt->catalog, "visualization_stores", top + 1, 1, rt->err,
                         sizeof rt->err) != LUPINE_OK)
      return luaL_error(L, "%s", rt->err);
    lua_replace(L, top + 1);
  }
  /* stack: ..., store id or rows { artifact_store_id } */
  for (i = 1; rc != LUPINE_OK; i++) {
    if (lua_isstring(L, top + 1)) {
      if (i > 1) break;
      lua_pushvalue(L, top + 1);
    } else if (lua_rawgeti(L, top + 1, i) != LUA_TTABLE) break;
    else lua_getfield(L, -1, "artifact_store_id");
    if ((rc = lp_runtime_store(rt, lua_tostring(L, -1), &store, err, sizeof err)) == LUPINE_OK)
      rc = lp_store_get(store, hash, (uint64_t)size, &data, &len, err, sizeof err);
    lua_settop(L, top + 1);
  }
  lua_settop(L, top);
  if (rc != LUPINE_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushlstring(L, (const char *)data, len);
  free(data);
  return 1;
}
