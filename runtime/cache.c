/* SPDX-License-Identifier: MIT */
/*
** cache.c: what a step's cache key is made of, and the fingerprint of its
** code.
**
** A step's code is its function's bytecode, stripped of debug information
** (so moving lines or editing comments changes nothing), together with
** what the function reaches through its upvalues: other Lua functions
** (recursively), functions held in tables it closes over (a helper module
** `local M = {}`, one level deep), and plain values (numbers, strings,
** booleans) it captures. _ENV, the globals, is not followed: a step that
** calls a global function is not invalidated when that function changes
** (documented; the user's cache_key covers such cases).
*/
#include <stdio.h>
#include <string.h>
#include "lauxlib.h"
#include "run.h"

/* The pieces of a fingerprint, collected in a Lua table (so an error
** leaks nothing) and hashed together at the end. */
typedef struct pieces {
  int table, n;
} pieces;

static void add(lua_State *L, pieces *p, const char *s, size_t len) {
  lua_pushlstring(L, s, len);
  lua_rawseti(L, p->table, ++p->n);
}

/* lua_dump writer. */
static int dump_writer(lua_State *L, const void *s, size_t n, void *ud) {
  add(L, ud, s, n);
  return 0;
}

static void add_function(lua_State *L, pieces *p, int fn, int seen, int depth);

/*
** Lua 5.4 writes where a function starts and ends (linedefined and
** lastlinedefined) even into stripped bytecode, so a comment added above a
** step would change its fingerprint. normalize() walks the dump (the
** format of ldump.c) and zeroes them. Returns the length of the walked
** function, or 0 if the bytes are not what it expects (then the caller
** keeps the dump as it is: still correct, only less forgiving).
*/
typedef struct dump {
  unsigned char *p;
  size_t len, at;
} dump;

static int varint(dump *d, size_t *out) {
  size_t x = 0;
  for (;;) {
    unsigned char b;
    if (d->at >= d->len || x > ((size_t)-1 >> 8)) return 0;
    b = d->p[d->at++];
    x = (x << 7) | (b & 0x7f);
    if (b & 0x80) break;
  }
  *out = x;
  return 1;
}

static int skip(dump *d, size_t n) {
  if (n > d->len - d->at) return 0;
  d->at += n;
  return 1;
}

/* Replace the varint at the cursor with 0 (one byte, 0x80), in place. */
static int zero_varint(dump *d) {
  size_t start = d->at, v;
  if (!varint(d, &v)) return 0;
  memmove(d->p + start + 1, d->p + d->at, d->len - d->at);
  d->len -= d->at - start - 1;
  d->p[start] = 0x80;
  d->at = start + 1;
  return 1;
}

static int walk_function(dump *d, int depth) {
  size_t n, i, size;
  if (depth > 200) return 0;
  if (!varint(d, &size) || (size > 0 && !skip(d, size - 1))) return 0;   /* source */
  if (!zero_varint(d) || !zero_varint(d)) return 0;   /* linedefined, lastlinedefined */
  if (!skip(d, 3)) return 0;                          /* numparams, is_vararg, maxstack */
  if (!varint(d, &n) || n > d->len || !skip(d, n * 4)) return 0;   /* code */
  if (!varint(d, &n)) return 0;                       /* constants */
  for (i = 0; i < n; i++) {
    if (d->at >= d->len) return 0;
    switch (d->p[d->at++]) {
      case 0x00: case 0x01: case 0x11: break;                 /* nil, false, true */
      case 0x03: case 0x13: if (!skip(d, 8)) return 0; break;  /* integer, float */
      case 0x04: case 0x14:                                    /* strings */
        if (!varint(d, &size) || (size > 0 && !skip(d, size - 1))) return 0;
        break;
      default: return 0;
    }
  }
  if (!varint(d, &n) || n > d->len || !skip(d, n * 3)) return 0;   /* upvalues */
  if (!varint(d, &n)) return 0;                                  /* nested functions */
  for (i = 0; i < n; i++)
    if (!walk_function(d, depth + 1)) return 0;
  for (i = 0; i < 4; i++)   /* debug information: all empty when stripped */
    if (!varint(d, &n) || n != 0) return 0;
  return 1;
}

/* Header: signature, versions, sizes and check values; then one byte. */
#define DUMP_HEADER 31

static size_t normalize(unsigned char *p, size_t len) {
  dump d;
  d.p = p;
  d.len = len;
  d.at = DUMP_HEADER + 1;
  if (len <= d.at || !walk_function(&d, 0) || d.at != d.len) return 0;
  return d.len;
}

/* A plain value: its type, then how it prints (numbers print exactly
** enough to tell them apart: %.14g is not, so floats use %a). */
static void add_value(lua_State *L, pieces *p, int idx) {
  char num[64];
  lua_pushfstring(L, "%d:", lua_type(L, idx));
  lua_rawseti(L, p->table, ++p->n);
  if (lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx)) {
    snprintf(num, sizeof num, "%a", (double)lua_tonumber(L, idx));
    add(L, p, num, strlen(num));
  } else {
    lua_pushvalue(L, idx);
    lua_tostring(L, -1);   /* integers and booleans... */
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
    }
    lua_rawseti(L, p->table, ++p->n);
  }
}

/* Functions stored in table t (one level), in key order, by key. */
static void add_table_functions(lua_State *L, pieces *p, int t, int seen, int depth) {
  int keys, n = 0, i, j;
  lua_newtable(L);
  keys = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TFUNCTION) {
      lua_pushvalue(L, -2);
      lua_rawseti(L, keys, ++n);
    }
    lua_pop(L, 1);
  }
  /* insertion sort of the keys: table order is not stable between runs */
  for (i = 2; i <= n; i++)
    for (j = i; j > 1; j--) {
      int less;
      lua_rawgeti(L, keys, j);
      lua_rawgeti(L, keys, j - 1);
      less = strcmp(lua_tostring(L, -2), lua_tostring(L, -1)) < 0;
      if (!less) {
        lua_pop(L, 2);
        break;
      }
      lua_rawseti(L, keys, j);
      lua_rawseti(L, keys, j - 1);
    }
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, keys, i);
    lua_rawseti(L, p->table, ++p->n);
    lua_rawgeti(L, keys, i);
    lua_rawget(L, t);
    add_function(L, p, lua_gettop(L), seen, depth + 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void add_function(lua_State *L, pieces *p, int fn, int seen, int depth) {
  int i;
  const char *name;
  if (depth > 16) return;
  lua_pushvalue(L, fn);
  if (lua_rawget(L, seen) != LUA_TNIL) {   /* a cycle, or shared: named, not repeated */
    lua_pop(L, 1);
    add(L, p, "<seen>", 6);
    return;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, fn);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  if (lua_iscfunction(L, fn)) {
    add(L, p, "<C function>", 12);
    return;
  }
  {
    pieces code;
    size_t len;
    luaL_Buffer b;
    int k;
    lua_newtable(L);
    code.table = lua_gettop(L);
    code.n = 0;
    lua_pushvalue(L, fn);
    lua_dump(L, dump_writer, &code, 1);
    lua_pop(L, 1);
    luaL_buffinit(L, &b);
    for (k = 1; k <= code.n; k++) {
      lua_rawgeti(L, code.table, k);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    len = lua_rawlen(L, -1);
    {
      /* a private copy to rewrite: Lua strings are immutable */
      unsigned char *copy = lua_newuserdatauv(L, len > 0 ? len : 1, 0);
      size_t normal;
      memcpy(copy, lua_tostring(L, -2), len);
      normal = normalize(copy, len);
      if (normal > 0) add(L, p, (const char *)copy, normal);
      else add(L, p, lua_tostring(L, -2), len);
    }
    lua_pop(L, 3);
  }
  for (i = 1; (name = lua_getupvalue(L, fn, i)) != NULL; i++) {
    int up = lua_gettop(L);
    if (strcmp(name, "_ENV") != 0) {
      switch (lua_type(L, up)) {
        case LUA_TFUNCTION: add_function(L, p, up, seen, depth + 1); break;
        case LUA_TTABLE: add_table_functions(L, p, up, seen, depth); break;
        case LUA_TNUMBER: case LUA_TSTRING: case LUA_TBOOLEAN: add_value(L, p, up); break;
        default: add(L, p, "-", 1);
      }
    }
    lua_settop(L, up - 1);
  }
}

int lp_cache_code_hash(lua_State *L, int fn, char out[LP_HASH_STRLEN + 1]) {
  luaL_Buffer b;
  pieces p;
  int seen, i;
  fn = lua_absindex(L, fn);
  lua_newtable(L);
  seen = lua_gettop(L);
  lua_newtable(L);
  p.table = lua_gettop(L);
  p.n = 0;
  add_function(L, &p, fn, seen, 0);
  luaL_buffinit(L, &b);
  for (i = 1; i <= p.n; i++) {
    lua_rawgeti(L, p.table, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lp_frame_hash_bytes(lua_tostring(L, -1), lua_rawlen(L, -1), out);
  lua_pop(L, 3);
  return out[0] != '\0' ? LUPINE_OK : LUPINE_NOMEM;
}

/* ---- the cache key of a step run, its hits, and recording one ---- */

/* ---- the cache ---- */

/* Push node's cache parts (parameters table at params): what its cache key
** is the hash of. See runtime/README.md, "Caching". */
void lp_cache_push_parts(lp_run *r, int node, int nodeidx, int params) {
  lua_State *L = r->L;
  char err[LP_ERRSZ], hash[LP_HASH_STRLEN + 1];
  lp_input_iter it;
  int parts;
  lua_createtable(L, 0, 6);
  parts = lua_gettop(L);
  lua_pushinteger(L, LP_CODEC_VERSION);
  lua_setfield(L, parts, "codec");
  lua_getfield(L, nodeidx, "code_hash");
  lua_setfield(L, parts, "code");
  lua_getfield(L, nodeidx, "outputs_hash");
  lua_setfield(L, parts, "outputs");
  lua_getfield(L, nodeidx, "cache_key");
  lua_setfield(L, parts, "user");
  lua_getfield(L, nodeidx, "seed");   /* a fixed seed; a fresh one is not part of it */
  lua_setfield(L, parts, "seed");
  lua_newtable(L);   /* parameter name -> hash of its value */
  lua_pushnil(L);
  while (lua_next(L, params) != 0) {
    if (lp_codec_encode(L, -1, "value", err, sizeof err) == LUPINE_OK) {
      lp_frame_hash_bytes(lua_tostring(L, -1), lua_rawlen(L, -1), hash);
      lua_pushvalue(L, -3);
      lua_pushstring(L, hash);
      lua_rawset(L, -6);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_setfield(L, parts, "params");
  lua_newtable(L);   /* input name -> content hash */
  lp_run_inputs_begin(L, nodeidx, &it);
  while (lp_run_inputs_next(L, &it)) {
    lp_run_push_input(r, node, it.j, lua_gettop(L));
    if (lua_isstring(L, -1)) {
      lua_getfield(L, -4, "name");
      lua_pushvalue(L, -2);
      lua_rawset(L, -8);
    }
    lua_pop(L, 4);
  }
  lua_pop(L, 1);
  lua_setfield(L, parts, "inputs");
}

/* Whether the row on top is a link to one of its step's own outputs (not
** a version it saved by hand). */
static int own_output(lua_State *L) {
  const char *type;
  lua_getfield(L, -1, "save_type");
  type = lua_tostring(L, -1);
  lua_pop(L, 1);
  return type != NULL && strcmp(type, "step_output") == 0;
}

/*
** A step run that looked up the latest version of an artifact (through the
** Client, while it ran) is reused only while that lookup would find the
** same version: unless one the step run made itself is newer (it saved it).
** If the step run found (id and its rows at these stack indices) fails
** that, push why and return 1; else return 0. The query is made only for
** step runs that recorded lookups (lookups in their rows, from cache_hit).
*/
static int stale_lookup(lp_run *r, int id, int rows) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int top = lua_gettop(L);
  const char *name, *was, *latest;
  lua_rawgeti(L, rows, 1);
  if (lua_getfield(L, -1, "lookups") == LUA_TNIL) {
    lua_settop(L, top);
    return 0;
  }
  r->record_later(r);   /* a version a step of this run just made may be the latest */
  if (lp_catalog_query(L, rt->catalog, "stale_lookups", id, 1, rt->err, sizeof rt->err) !=
      LUPINE_OK)
    lp_run_fail(r);
  if (lua_rawgeti(L, -1, 1) != LUA_TTABLE) {
    lua_settop(L, top);
    return 0;
  }
  lua_getfield(L, -1, "artifact");
  lua_getfield(L, -2, "was");
  lua_getfield(L, -3, "latest");
  lua_getfield(L, -4, "newer");
  name = lua_tostring(L, -4);
  was = lua_isstring(L, -3) ? lua_tostring(L, -3) : "a deleted version";
  latest = lua_tostring(L, -2);
  if (latest == NULL)
    lua_pushfstring(L, "artifact '%s' has no versions now (was %s)", name, was);
  else
    lua_pushfstring(L, "artifact '%s' has %s (%s, was %s)", name,
                    lua_tointeger(L, -1) != 0 ? "a newer version" : "another latest version",
                    latest, was);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return 1;
}

/* The most pipeline runs whose hits a run reads after its start, a query
** each (lp_cache_find_hit): a run of another shape than those it finds its
** hits in costs that many queries at most. */
#define HIT_RUNS_MAX 8

/* The rows of recent_cache_hits or run_cache_hits (at the top of the
** stack, popped), newest first, added to r->hits: cache key -> the rows
** cache_hit would give, those of the newest step run with it. A key
** already there keeps its rows: they came from a newer step run. */
static void add_hits(lp_run *r) {
  lua_State *L = r->L;
  int rows = lua_gettop(L), i;
  lua_newtable(L);   /* the keys this call added */
  for (i = 1; lua_rawgeti(L, rows, i) == LUA_TTABLE; i++) {
    int row = lua_gettop(L);
    lua_getfield(L, row, "cache_key");
    if (lua_rawget(L, r->hits) == LUA_TNIL) {   /* the newest step run with it */
      lua_pop(L, 1);
      lua_getfield(L, row, "cache_key");
      lua_createtable(L, 1, 0);
      lua_pushvalue(L, -1);
      lua_insert(L, -3);
      lua_rawset(L, r->hits);
      lua_getfield(L, row, "cache_key");
      lua_pushboolean(L, 1);
      lua_rawset(L, rows + 1);
    } else {
      lua_getfield(L, row, "cache_key");
      if (lua_rawget(L, rows + 1) == LUA_TNIL) {   /* an older step run's key */
        lua_settop(L, row - 1);
        continue;
      }
      lua_pop(L, 1);
    }
    /* stack: row, the key's rows; those of an older step run with the key
    ** are not its newest's */
    lua_rawgeti(L, row + 1, 1);
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "step_run");
      lua_getfield(L, row, "step_run");
      if (!lua_rawequal(L, -1, -2)) {
        lua_settop(L, row - 1);
        continue;
      }
    }
    lua_pushvalue(L, row);
    lua_rawseti(L, row + 1, (lua_Integer)luaL_len(L, row + 1) + 1);
    lua_settop(L, row - 1);
  }
  lua_settop(L, rows - 1);
}

/*
** A re-run's hits would each cost a query, one round trip to a catalog on
** a server per step (a cached 1000-step chain on PostgreSQL: 4.2x the
** same on sqlite). So the latest completed step runs with a cache key,
** twice as many as the run has steps, are read in one query at the start,
** and a key found there is tried first. One not found, or found but no
** longer a hit, is asked of the catalog, which has what completed since
** (and older step runs); a hit found so brings those of its pipeline run
** that are the latest with their key (run_cache_hits): the re-run of an
** older run finds the rest of its hits there.
*/
void lp_cache_prefetch(lp_run *r) {
  lua_State *L = r->L;
  int i, cached = 0;
  lua_newtable(L);
  r->hits = lua_gettop(L);
  for (i = 1; i <= r->n && !cached; i++) {   /* none, with caching off everywhere */
    lua_rawgeti(L, r->nodes, i);
    lua_getfield(L, -1, "enable_cache");
    cached = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  if (!cached) return;
  lua_pushinteger(L, 2 * (lua_Integer)r->n);
  if (lp_catalog_query(L, r->rt->catalog, "recent_cache_hits", r->hits + 1, 1, r->rt->err,
                       sizeof r->rt->err) != LUPINE_OK)
    lp_run_fail(r);
  add_hits(r);
  lua_settop(L, r->hits);
}

/* Whether the step run found by cache_hit (rows at top + 1) is one to
** reuse: its outputs are all still stored, and its lookups would find what
** they found then (stale_lookup). If so, put its id under its rows and
** return 1; else pop them, push why not and return 0. */
static int usable_hit(lp_run *r, int nodeidx, int top) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int k, nout, missing = 0;
  lua_rawgeti(L, top + 1, 1);
  lua_getfield(L, top + 2, "step_run");
  lua_insert(L, top + 1);
  /* stack: id, rows, row 1: every declared output among the step's own
  ** outputs, unless its step returned no value (it stored none) */
  lua_getfield(L, top + 3, "output_count");
  nout = lua_isinteger(L, -1) && lua_tointeger(L, -1) == 0 ? 0 : -1;
  lua_settop(L, top + 2);
  if (nout != 0) {
    lp_run_field(L, nodeidx, "outputs", LUA_TTABLE);
    nout = (int)luaL_len(L, -1);
  }
  for (k = 1; k <= nout && !missing; k++) {
    int i, found = 0;
    lua_rawgeti(L, top + 3, k);
    lua_getfield(L, -1, "name");
    for (i = 1; !found && lua_rawgeti(L, top + 2, i) == LUA_TTABLE; i++) {
      lua_getfield(L, -1, "name");
      found = lua_rawequal(L, -1, -3);
      lua_pop(L, 1);
      found = found && own_output(L);
      lua_pop(L, 1);
    }
    missing = !found;
    lua_settop(L, top + 3);
  }
  lua_settop(L, top + 2);
  /* a hit reuses versions where they are: each in its own store */
  for (k = 1; !missing && lua_rawgeti(L, -1, k) == LUA_TTABLE; k++) {
    lp_store *store;
    char err[LP_ERRSZ];
    lua_getfield(L, -1, "artifact_store_id");
    lua_getfield(L, -2, "content_hash");
    lua_getfield(L, -3, "name");
    missing = !lua_isnil(L, -1) &&
              (!lua_isstring(L, -2) ||
               lp_runtime_store(rt, luaL_optstring(L, -3, LP_DEFAULT_STORE_ID), &store, err,
                                sizeof err) != LUPINE_OK ||
               !lp_store_exists(store, lua_tostring(L, -2)));
    lua_pop(L, 4);
  }
  if (!missing) {
    lua_settop(L, top + 2);
    if (!stale_lookup(r, top + 1, top + 2)) return 1;   /* stack: ..., id, rows */
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return 0;
  }
  lua_settop(L, top);
  lua_pushliteral(L, "the outputs of the step run it would reuse are no longer stored");
  return 0;
}

/*
** Look for a completed step run with this cache key whose outputs are all
** still stored, and whose lookups would find what they found then
** (stale_lookup). On a hit push its id and its rows (one per output link,
** each with the run's seed; one without a name if it has none) and return
** 1; else push why not (a string) and return 0.
** stack in: ..., node (nodeidx), parameters, parts, key
*/
int lp_cache_find_hit(lp_run *r, int node, int nodeidx) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int top = lua_gettop(L);
  lua_pushvalue(L, top);
  if (lua_rawget(L, r->hits) == LUA_TTABLE) {
    if (usable_hit(r, nodeidx, top)) return 1;
    lua_settop(L, top);
  } else lua_pop(L, 1);
  lua_pushstring(L, r->pipeline);
  lua_pushstring(L, lp_run_node_str(r, node, "name"));
  lua_pushstring(L, r->id);
  if (lp_catalog_query(L, rt->catalog, "cache_hit", top, 4, rt->err, sizeof rt->err) !=
      LUPINE_OK)
    lp_run_fail(r);
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  lua_rawgeti(L, top + 1, 1);
  if (lua_getfield(L, -1, "step_run") != LUA_TNIL) {
    if (r->hit_runs < HIT_RUNS_MAX) {   /* its pipeline run's other hits (lp_cache_prefetch) */
      r->hit_runs++;
      lua_pushinteger(L, 2 * (lua_Integer)r->n);
      if (lp_catalog_query(L, rt->catalog, "run_cache_hits", top + 3, 2, rt->err,
                           sizeof rt->err) != LUPINE_OK)
        lp_run_fail(r);
      lua_replace(L, top + 3);
      lua_settop(L, top + 3);
      add_hits(r);
    }
    lua_settop(L, top + 1);
    return usable_hit(r, nodeidx, top);
  }
  /* say what changed since the latest earlier run of this step */
  lp_run_field(L, r->spec, "explain", LUA_TFUNCTION);
  lua_getfield(L, top + 2, "previous_parts");
  lua_pushvalue(L, top - 1);   /* this run's parts */
  if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
    lua_settop(L, top);
    lua_pushliteral(L, "no step run with the same cache key completed");
    return 0;
  }
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return 0;
}

/* Record node as a cache hit of the step run (id, output rows on top,
** below them: node, parameters and their bytes, parts, key). Pops both. */
/* An output's result (see step.c's push_output_value) from the row of the
** version a hit reuses: result field <- row column. */
static const struct {
  const char *result, *row;
} hit_fields[] = {
  {"id", "id"}, {"seq", "seq"}, {"version", "version"}, {"hash", "content_hash"},
  {"size", "size"}, {"kind", "data_type"}, {"store", "artifact_store_id"},
};
#define HIT_FIELDS ((int)(sizeof hit_fields / sizeof hit_fields[0]))

void lp_cache_record_hit(lp_run *r, int node, int nodeidx, const char *pbytes, size_t plen) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  lp_node *n = &r->node[node];
  char step_run_id[LP_ID_LEN + 1], written[1024] = "";
  size_t wlen = 0;
  lp_step_run_spec spec;
  int rows = lua_gettop(L), i, k, f, nout, own;
  long long seed;
  double t0 = lp_run_now();
  /* the seed of the step run it reuses: what made the outputs it gets */
  lua_rawgeti(L, rows, 1);
  lua_getfield(L, -1, "seed");
  seed = (long long)lua_tointeger(L, -1);
  lp_run_step_run_spec(r, node, "cached", &spec);
  spec.parameters = pbytes;
  spec.parameters_len = plen;
  spec.cache_key = lua_tostring(L, rows - 2);
  spec.cached_from = lua_tostring(L, rows - 1);
  spec.seed = lua_isinteger(L, -1) ? &seed : NULL;
  lp_run_join(r);
  if (lp_catalog_create_step_run(rt->catalog, &spec, step_run_id, rt->err, sizeof rt->err) !=
      LUPINE_OK)
    lp_run_fail(r);
  lua_settop(L, rows);
  lp_run_link_inputs(r, node, nodeidx, step_run_id);
  lua_rawgeti(L, rows, 1);
  if (lua_getfield(L, -1, "lookups") != LUA_TNIL) {
    /* the lookups its outputs depend on, carried over (sr.lookups; the
    ** next run's lp_cache_find_hit checks those of the completed step run again) */
    lua_pushstring(L, step_run_id);
    lua_pushvalue(L, rows - 1);
    if (lp_catalog_write(L, rt->catalog, "copy_lookups", lua_gettop(L) - 1, 2, NULL, rt->err,
                         sizeof rt->err) != LUPINE_OK)
      lp_run_fail(r);
  }
  lua_settop(L, rows);
  /* the output links, every one the reused step run has (what its step
  ** saved by hand too), and results[node] in declared order from its own
  ** outputs (lp_cache_find_hit found one for each, unless its step returned none) */
  lp_run_field(L, nodeidx, "outputs", LUA_TTABLE);
  nout = (int)luaL_len(L, -1);
  lua_createtable(L, nout, 0);
  for (k = 1; lua_rawgeti(L, rows, k) == LUA_TTABLE; k++) {
    int row = lua_gettop(L);
    if (lua_getfield(L, row, "name") == LUA_TNIL) {   /* the row of a run without links */
      lua_settop(L, row - 1);
      continue;
    }
    lua_getfield(L, row, "id");
    lua_getfield(L, row, "seq");
    if (lp_catalog_add_output(rt->catalog, step_run_id, lua_tostring(L, -3),
                              lua_tostring(L, -2), (long long)lua_tointeger(L, -1), rt->err,
                              sizeof rt->err) != LUPINE_OK)
      lp_run_fail(r);
    lua_settop(L, row);
    own = own_output(L);
    for (i = 1; own && i <= nout; i++) {
      lua_rawgeti(L, rows + 1, i);
      lp_run_field(L, -1, "name", LUA_TSTRING);
      lua_getfield(L, row, "name");
      if (lua_rawequal(L, -1, -2)) {
        lua_createtable(L, 0, HIT_FIELDS);
        for (f = 0; f < HIT_FIELDS; f++) {
          lua_getfield(L, row, hit_fields[f].row);
          lua_setfield(L, -2, hit_fields[f].result);
        }
        lua_rawseti(L, rows + 2, i);
        lua_getfield(L, row, "artifact");
        lua_getfield(L, row, "version");
        lp_appendf(written, sizeof written, &wlen, "%s%s v%s", wlen > 0 ? ", " : "",
                   lua_tostring(L, -2), lua_tostring(L, -1));
      }
      lua_settop(L, row);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_rawseti(L, r->results, node + 1);
  lua_settop(L, rows - 2);
  snprintf(n->step_run, sizeof n->step_run, "%s", step_run_id);
  n->ms = lp_run_now() - t0;   /* the hit's own time: what a cached step costs */
  n->status = LP_NODE_CACHED;
  n->recorded = 1;
  lp_graph_finish(r->graph, node, 1);
  lua_pushstring(L, written);
  lp_run_keep(r, node, LP_NODE_ARTIFACTS);
  lp_run_step_done(r, node);
  lua_pushfstring(L, "%s (cached)", written);
  lp_run_keep(r, node, LP_NODE_ARTIFACTS);
}
