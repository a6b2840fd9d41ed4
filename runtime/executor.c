/*
** executor.c: running one pipeline run.
**
** The coordinator plans (graph.c), hands each step its decoded inputs,
** and records what comes back. The work of one step (decode its inputs,
** call it, encode its outputs) is done by work(), which leaves only bytes
** behind: so moving it into a separate worker process changes work() and
** its caller alone, not how results are stored or recorded.
**
** The spec (built by lua/lupine/init.lua):
**   { pipeline = name, run_name = name | nil,
**     nodes = { { name = invocation, step = step name, where = "file:line",
**                 fn = function, default_output = boolean,
**                 outputs = { { name = output, artifact = artifact name }, ... },
**                 args = { { param = name, node = i, output = k }      -- an edge
**                        | { param = name, value = v }                 -- a parameter
**                        | { param = name, version = id }, ... } } } }   -- a stored version
*/
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "lauxlib.h"
#include "lupine_int.h"

typedef struct run {
  lua_State *L;
  lp_runtime *rt;
  int spec, nodes, results, report;   /* stack indices */
  int n;
  lp_graph *graph;
  char id[LP_ID_LEN + 1];
  char name[LP_RUN_NAME_MAX + 1];
  const char *pipeline;
} run;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Push field k of the table at idx, requiring type t: a malformed spec is
** a bug in the Lua side, reported as such. */
static void field(lua_State *L, int idx, const char *k, int t) {
  if (lua_getfield(L, idx, k) != t)
    luaL_error(L, "lupine: malformed run spec (field '%s' is %s, expected %s)", k,
               luaL_typename(L, -1), lua_typename(L, t));
}

static const char *node_str(run *r, int node, const char *k) {
  const char *s;
  lua_rawgeti(r->L, r->nodes, node + 1);
  field(r->L, -1, k, LUA_TSTRING);
  s = lua_tostring(r->L, -1);   /* kept alive by the spec */
  lua_pop(r->L, 2);
  return s;
}

/* Raise the runtime's error (the catalog failed: nothing sensible to
** record, since recording is what failed). */
static int fail_hard(run *r) {
  lp_catalog_rollback(r->rt->catalog);
  return luaL_error(r->L, "%s", r->rt->err);
}

/* Message handler: keep the message and a traceback apart. */
static int msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) msg = luaL_tolstring(L, 1, NULL);
  lua_createtable(L, 2, 0);
  lua_pushstring(L, msg);
  lua_rawseti(L, -2, 1);
  luaL_traceback(L, L, NULL, 1);
  lua_rawseti(L, -2, 2);
  return 1;
}

/* Record the failure of node (message and traceback on top of the stack,
** traceback may be nil) against its step run. Pops both. */
static void record_failure(run *r, int node, const char *step_run_id) {
  lua_State *L = r->L;
  const char *msg = lua_tostring(L, -2);
  lua_rawgeti(L, r->report, node + 1);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "error");
  lua_pop(L, 1);
  if (lp_catalog_finish_step_run(r->rt->catalog, step_run_id, "failed", msg,
                                 lua_tostring(L, -1), r->rt->err,
                                 sizeof r->rt->err) != LUPINE_OK)
    fail_hard(r);
  lua_pop(L, 2);
}

/* Push a failure message for node: "step 'x' (file:line): <what>". */
static void push_step_error(run *r, int node, const char *what) {
  lua_pushfstring(r->L, "step '%s' (%s): %s", node_str(r, node, "name"),
                  node_str(r, node, "where"), what);
}

/*
** The work of one step: push its inputs, call it (as spec.invoke(node,
** step run id, run id, run name, inputs...), which gives the step its
** context), encode its outputs. On success leaves
** a table on the stack: the outputs' CBOR bytes at 1..n, their data types
** at n+1..2n, and `extras` (per output: tags and metadata rows) from
** invoke; returns 1. On failure leaves message and traceback (or nil) and
** returns 0.
** stack in: ..., node, parameters (decoded copy of the step's parameters)
*/
static int work(run *r, int node, const char *step_run_id) {
  lua_State *L = r->L;
  int nodeidx = lua_gettop(L) - 1, params = nodeidx + 1;
  int base, nargs, k, nret, nout, default_output;
  char err[LP_ERRSZ];
  lua_pushcfunction(L, msgh);
  base = lua_gettop(L);
  field(L, r->spec, "invoke", LUA_TFUNCTION);
  field(L, nodeidx, "args", LUA_TTABLE);
  nargs = (int)luaL_len(L, -1);
  luaL_checkstack(L, nargs + 8, "too many step inputs");
  lua_pushinteger(L, node + 1);
  lua_pushstring(L, step_run_id);
  lua_pushstring(L, r->id);
  lua_pushstring(L, r->name);
  for (k = 1; k <= nargs; k++) {
    lua_rawgeti(L, base + 2, k);
    if (lua_getfield(L, -1, "node") == LUA_TNUMBER) {
      int from = (int)lua_tointeger(L, -1) - 1;
      lua_getfield(L, -2, "output");
      lua_rawgeti(L, r->results, from + 1);
      lua_rawgeti(L, -1, lua_tointeger(L, -2));
      lua_getfield(L, -1, "bytes");
      {
        size_t len;
        const char *bytes = lua_tolstring(L, -1, &len);
        if (lp_codec_decode(L, bytes, len, err, sizeof err) != LUPINE_OK) {
          lua_settop(L, base - 1);
          push_step_error(r, node, err);
          lua_pushnil(L);
          return 0;
        }
      }
      lua_replace(L, -7);   /* the value replaces the arg spec */
      lua_pop(L, 5);
    } else if (lua_getfield(L, -2, "version") == LUA_TSTRING) {
      lp_load_version(L, r->rt, lua_tostring(L, -1));
      lua_replace(L, -4);
      lua_pop(L, 2);
    } else {
      lua_getfield(L, -3, "param");
      lua_rawget(L, params);
      lua_replace(L, -4);
      lua_pop(L, 2);
    }
  }
  lua_remove(L, base + 2);   /* the args table */
  if (lua_pcall(L, nargs + 4, LUA_MULTRET, base) != LUA_OK) {
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    lua_remove(L, -3);
    lua_remove(L, base);
    /* stack: ..., node, params, message, traceback */
    lua_pushfstring(L, "step '%s' (%s) failed: %s", node_str(r, node, "name"),
                    node_str(r, node, "where"), lua_tostring(L, -2));
    lua_replace(L, -3);
    return 0;
  }
  /* stack: msgh (base), extras, outputs... */
  nret = lua_gettop(L) - base - 1;
  field(L, nodeidx, "outputs", LUA_TTABLE);
  nout = (int)luaL_len(L, -1);
  lua_pop(L, 1);
  field(L, nodeidx, "default_output", LUA_TBOOLEAN);
  default_output = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (nret == 0 && default_output) {
    lua_pushnil(L);
    nret = 1;
  }
  if (nret != nout) {
    lua_settop(L, base - 1);
    lua_pushfstring(L, "returned %d value%s but declares %d output%s", nret,
                    nret == 1 ? "" : "s", nout, nout == 1 ? "" : "s");
    push_step_error(r, node, lua_tostring(L, -1));
    lua_remove(L, -2);
    lua_pushnil(L);
    return 0;
  }
  lua_createtable(L, 2 * nout, 1);
  lua_pushvalue(L, base + 1);
  lua_setfield(L, -2, "extras");
  for (k = 1; k <= nout; k++) {
    if (lp_codec_encode(L, base + 1 + k, "value", err, sizeof err) != LUPINE_OK) {
      field(L, nodeidx, "outputs", LUA_TTABLE);
      lua_rawgeti(L, -1, k);
      field(L, -1, "name", LUA_TSTRING);
      lua_pushfstring(L, "output '%s': %s", lua_tostring(L, -1), err);
      push_step_error(r, node, lua_tostring(L, -1));
      lua_replace(L, base);
      lua_settop(L, base);
      lua_pushnil(L);
      return 0;
    }
    lua_rawseti(L, -2, k);
    lua_pushstring(L, luaL_typename(L, base + 1 + k));
    lua_rawseti(L, -2, nout + k);
  }
  lua_replace(L, base);
  lua_settop(L, base);
  return 1;
}

int lp_record_version(lua_State *L, lp_runtime *rt, int cfg, int extra,
                      const lp_object *obj, const char *data_type, const char *producer,
                      const char *output, char id[LP_ID_LEN + 1],
                      char version[LP_NAME_MAX + 1]) {
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
  spec.data_type = data_type;
  spec.object = obj;
  spec.producer = producer;
  spec.output = output;
  lp_store_path(rt->store, obj->hash, uri, sizeof uri);
  spec.uri = uri;
  if (spec.artifact == NULL) {
    lp_errf(rt->err, sizeof rt->err, "lupine: output configuration without an artifact name");
    rc = LUPINE_MISUSE;
  } else rc = lp_catalog_add_version(rt->catalog, &spec, id, version, rt->err, sizeof rt->err);
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
  return rc;
}

/* Append to a fixed buffer, truncating. */
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) {
  va_list ap;
  int n;
  if (*len >= size) return;
  va_start(ap, fmt);
  n = vsnprintf(buf + *len, size - *len, fmt, ap);
  va_end(ap);
  *len = n < 0 ? size : *len + (size_t)n;
}

/*
** Store the outputs (table on top: bytes 1..n, data types n+1..2n) and
** record them, the inputs and the step's completion in one transaction.
** Returns 1; or 0 with message and nil pushed if an object cannot be stored.
*/
static int record_success(run *r, int node, const char *step_run_id, int nodeidx) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int outs = lua_gettop(L), nout = (int)luaL_len(L, -1) / 2, k, nargs, resnode, specs;
  char written[1024] = "";
  size_t wlen = 0;
  lp_object *objs = lua_newuserdatauv(L, sizeof(lp_object) * (size_t)(nout + 1), 0);
  for (k = 0; k < nout; k++) {
    size_t len;
    const char *bytes;
    lua_rawgeti(L, outs, k + 1);
    bytes = lua_tolstring(L, -1, &len);
    if (lp_store_put(rt->store, bytes, len, &objs[k], rt->err, sizeof rt->err) != LUPINE_OK) {
      lua_settop(L, outs - 1);
      push_step_error(r, node, rt->err);
      lua_pushnil(L);
      return 0;
    }
    lua_pop(L, 1);
  }
  if (lp_catalog_begin(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK) fail_hard(r);
  for (k = 0; k < nout; k++) {
    lua_rawgeti(L, outs, k + 1);
    if (lp_store_keep(rt->store, lua_tostring(L, -1), lua_rawlen(L, -1), &objs[k], rt->err,
                      sizeof rt->err) != LUPINE_OK)
      fail_hard(r);
    lua_pop(L, 1);
  }
  field(L, nodeidx, "args", LUA_TTABLE);
  nargs = (int)luaL_len(L, -1);
  for (k = 1; k <= nargs; k++) {
    const char *version_id = NULL;
    lua_rawgeti(L, -1, k);
    if (lua_getfield(L, -1, "node") == LUA_TNUMBER) {
      lua_rawgeti(L, r->results, lua_tointeger(L, -1));
      lua_getfield(L, -3, "output");
      lua_rawget(L, -2);
      lua_getfield(L, -1, "id");
      version_id = lua_tostring(L, -1);
      lua_replace(L, -4);
      lua_pop(L, 2);
    } else if (lua_getfield(L, -2, "version") == LUA_TSTRING) {
      version_id = lua_tostring(L, -1);
      lua_replace(L, -2);
    } else lua_pop(L, 1);
    /* stack: ..., args, arg, version id or nil */
    if (version_id != NULL) {
      lua_getfield(L, -2, "param");
      if (lp_catalog_add_input(rt->catalog, step_run_id, lua_tostring(L, -1), version_id,
                               rt->err, sizeof rt->err) != LUPINE_OK)
        fail_hard(r);
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  /* results[node] = { { bytes = ..., id = ..., version = ... }, ... } */
  lua_createtable(L, nout, 0);
  resnode = lua_gettop(L);
  lua_getfield(L, outs, "extras");
  field(L, nodeidx, "outputs", LUA_TTABLE);
  specs = lua_gettop(L);
  for (k = 0; k < nout; k++) {
    char id[LP_ID_LEN + 1], version[LP_NAME_MAX + 1];
    const char *output;
    int rc;
    lua_rawgeti(L, specs, k + 1);
    field(L, -1, "name", LUA_TSTRING);
    output = lua_tostring(L, -1);
    lua_rawgeti(L, outs, nout + k + 1);
    if (lua_type(L, specs - 1) == LUA_TTABLE) lua_rawgeti(L, specs - 1, k + 1);
    else lua_pushnil(L);
    rc = lp_record_version(L, rt, specs + 1, lua_istable(L, -1) ? -1 : 0, &objs[k],
                           lua_tostring(L, -2), step_run_id, output, id, version);
    if (rc == LUPINE_CONSTRAINT) {
      lp_catalog_rollback(rt->catalog);
      lua_pushfstring(L, "output '%s': %s", output, rt->err);
      push_step_error(r, node, lua_tostring(L, -1));
      lua_replace(L, outs - 1);   /* over the parameters: nothing else is needed */
      lua_settop(L, outs - 1);
      lua_pushnil(L);
      return 0;
    }
    if (rc != LUPINE_OK) fail_hard(r);
    lua_createtable(L, 0, 3);
    lua_rawgeti(L, outs, k + 1);
    lua_setfield(L, -2, "bytes");
    lua_pushstring(L, id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, version);
    lua_setfield(L, -2, "version");
    lua_rawseti(L, resnode, k + 1);
    field(L, specs + 1, "artifact", LUA_TSTRING);
    append(written, sizeof written, &wlen, "%s%s v%s", k > 0 ? ", " : "",
           lua_tostring(L, -1), version);
    lua_settop(L, specs);
  }
  lua_pop(L, 2);
  lua_rawseti(L, r->results, node + 1);
  lua_rawgeti(L, r->report, node + 1);
  lua_pushstring(L, written);
  lua_setfield(L, -2, "artifacts");
  lua_pop(L, 1);
  if (lp_catalog_finish_step_run(rt->catalog, step_run_id, "completed", NULL, NULL,
                                 rt->err, sizeof rt->err) != LUPINE_OK ||
      lp_catalog_commit(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK)
    fail_hard(r);
  lua_settop(L, outs - 1);
  return 1;
}

/* Run one node: create its step run, do its work, record the outcome.
** Returns 1 if it completed. */
static int run_node(run *r, int node) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  char step_run_id[LP_ID_LEN + 1], err[LP_ERRSZ];
  int top = lua_gettop(L), nodeidx, nargs, k, ok;
  size_t plen = 0;
  const char *pbytes = NULL;
  double t0 = now_ms();
  lua_rawgeti(L, r->nodes, node + 1);
  nodeidx = lua_gettop(L);
  /* The parameters: a map of the arguments that are not artifacts. */
  lua_newtable(L);
  field(L, nodeidx, "args", LUA_TTABLE);
  nargs = (int)luaL_len(L, -1);
  for (k = 1; k <= nargs; k++) {
    int is_param;
    lua_rawgeti(L, nodeidx + 2, k);
    is_param = lua_getfield(L, -1, "node") == LUA_TNIL &&
               lua_getfield(L, -2, "version") == LUA_TNIL;
    lua_settop(L, nodeidx + 3);
    if (is_param) {
      lua_getfield(L, -1, "param");
      lua_getfield(L, -2, "value");
      lua_rawset(L, nodeidx + 1);
    }
    lua_settop(L, nodeidx + 2);
  }
  lua_pop(L, 1);
  ok = lp_codec_encode(L, nodeidx + 1, "parameters", err, sizeof err) == LUPINE_OK;
  if (ok) pbytes = lua_tolstring(L, -1, &plen);
  else lua_pushnil(L);
  /* stack: node, parameters, their bytes or nil */
  if (lp_catalog_create_step_run(rt->catalog, r->id, node_str(r, node, "name"),
                                 node_str(r, node, "step"), "running", pbytes, plen,
                                 step_run_id, rt->err, sizeof rt->err) != LUPINE_OK)
    fail_hard(r);
  lp_log(rt, LUPINE_LOG_DEBUG, "step '%s' started", node_str(r, node, "name"));
  if (!ok) {
    push_step_error(r, node, err);
    lua_pushnil(L);
  } else {
    /* The step gets a decoded copy, so it cannot change what was recorded. */
    if (lp_codec_decode(L, pbytes, plen, err, sizeof err) != LUPINE_OK)
      return luaL_error(L, "lupine: parameters do not round-trip (%s)", err);
    lua_replace(L, nodeidx + 1);
    lua_settop(L, nodeidx + 1);
    ok = work(r, node, step_run_id) && record_success(r, node, step_run_id, nodeidx);
  }
  if (!ok) record_failure(r, node, step_run_id);
  lua_rawgeti(L, r->report, node + 1);
  lua_pushnumber(L, now_ms() - t0);
  lua_setfield(L, -2, "ms");
  lua_pushstring(L, ok ? "completed" : "failed");
  lua_setfield(L, -2, "status");
  lua_settop(L, top);
  lp_log(rt, LUPINE_LOG_DEBUG, "step '%s' %s", node_str(r, node, "name"),
         ok ? "completed" : "failed");
  return ok;
}

/* The skipped steps still get a step run, so the run shows every step. */
static void record_skipped(run *r, int node) {
  char id[LP_ID_LEN + 1];
  lp_runtime *rt = r->rt;
  if (lp_catalog_create_step_run(rt->catalog, r->id, node_str(r, node, "name"),
                                 node_str(r, node, "step"), "skipped", NULL, 0, id,
                                 rt->err, sizeof rt->err) != LUPINE_OK ||
      lp_catalog_finish_step_run(rt->catalog, id, "skipped", NULL, NULL, rt->err,
                                 sizeof rt->err) != LUPINE_OK)
    fail_hard(r);
  lua_rawgeti(r->L, r->report, node + 1);
  lua_pushliteral(r->L, "skipped");
  lua_setfield(r->L, -2, "status");
  lua_pop(r->L, 1);
}

/* Tag the new run with spec.tags. */
static int tag_run(run *r) {
  lua_State *L = r->L;
  int k, changes, rc = LUPINE_OK, top = lua_gettop(L);
  lua_getfield(L, r->spec, "tags");
  for (k = 1; rc == LUPINE_OK && lua_istable(L, -1) && lua_rawgeti(L, -1, k) != LUA_TNIL; k++) {
    lua_pushliteral(L, "pipeline_run");
    lua_pushstring(L, r->id);
    lua_rotate(L, -3, 2);   /* entity, id, tag */
    rc = lp_catalog_write(L, r->rt->catalog, "tag", lua_gettop(L) - 2, 3, &changes,
                          r->rt->err, sizeof r->rt->err);
    lua_pop(L, 3);
  }
  lua_settop(L, top);
  return rc;
}

/* Build the graph from the spec's edges. */
static void plan(run *r) {
  lua_State *L = r->L;
  int i, k, nedges = 0, culprit;
  for (i = 1; i <= r->n; i++) {
    lua_rawgeti(L, r->nodes, i);
    field(L, -1, "args", LUA_TTABLE);
    for (k = 1; k <= (int)luaL_len(L, -1); k++) {
      lua_rawgeti(L, -1, k);
      if (lua_getfield(L, -1, "node") == LUA_TNUMBER) {
        lua_Integer from = lua_tointeger(L, -1);
        if (from < 1 || from > r->n)
          luaL_error(L, "lupine: malformed run spec (node %d reads node %d)", i, (int)from);
        nedges++;
      }
      lua_pop(L, 2);
    }
    lua_pop(L, 2);
  }
  r->graph = lp_graph_push(L, r->n, nedges);
  for (i = 1; i <= r->n; i++) {
    lua_rawgeti(L, r->nodes, i);
    field(L, -1, "args", LUA_TTABLE);
    for (k = 1; k <= (int)luaL_len(L, -1); k++) {
      lua_rawgeti(L, -1, k);
      if (lua_getfield(L, -1, "node") == LUA_TNUMBER)
        lp_graph_add_edge(r->graph, (int)lua_tointeger(L, -1) - 1, i - 1);
      lua_pop(L, 2);
    }
    lua_pop(L, 2);
  }
  if (lp_graph_seal(r->graph, &culprit) != LUPINE_OK)
    luaL_error(L, "pipeline '%s': step '%s' depends on itself (a cycle)", r->pipeline,
               node_str(r, culprit, "name"));
}

/* Log the run's summary: one line for the run, one per step. */
static void summarize(run *r, const char *status, double ms) {
  lua_State *L = r->L;
  int i;
  lp_log(r->rt, LUPINE_LOG_INFO, "run '%s' %s in %.1f ms", r->name, status, ms);
  for (i = 0; i < r->n; i++) {
    lua_rawgeti(L, r->report, i + 1);
    lua_getfield(L, -1, "status");
    lua_getfield(L, -2, "ms");
    lua_getfield(L, -3, "artifacts");
    lua_getfield(L, -4, "error");
    lp_log(r->rt, LUPINE_LOG_INFO, "  %-24s %-10s %8.1f ms  %s", node_str(r, i, "name"),
           lua_tostring(L, -4), lua_tonumber(L, -3),
           lua_isstring(L, -1) ? lua_tostring(L, -1)
                               : lua_isstring(L, -2) ? lua_tostring(L, -2) : "");
    lua_pop(L, 5);
  }
}

int lp_execute(lua_State *L, lp_runtime *rt, int spec) {
  run r;
  int i, node, failed = 0;
  const char *status, *run_name, *start;
  double t0 = now_ms();
  int errors;
  memset(&r, 0, sizeof r);
  r.L = L;
  r.rt = rt;
  r.spec = lua_absindex(L, spec);
  field(L, r.spec, "pipeline", LUA_TSTRING);
  r.pipeline = lua_tostring(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, r.spec, "run_name");
  run_name = lua_tostring(L, -1);
  lua_getfield(L, r.spec, "start");
  start = lua_tostring(L, -1);
  lua_pop(L, 2);   /* both strings stay alive in the spec */
  field(L, r.spec, "nodes", LUA_TTABLE);
  r.nodes = lua_gettop(L);
  r.n = (int)luaL_len(L, r.nodes);
  plan(&r);
  lua_newtable(L);
  r.results = lua_gettop(L);
  lua_createtable(L, r.n, 0);
  r.report = lua_gettop(L);
  for (i = 1; i <= r.n; i++) {
    lua_newtable(L);
    lua_rawseti(L, r.report, i);
  }
  /* One transaction, so two processes cannot pick the same run name. */
  if (lp_catalog_begin(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK ||
      lp_catalog_create_run(rt->catalog, r.pipeline, run_name, start, r.id, r.name,
                            rt->err, sizeof rt->err) != LUPINE_OK ||
      tag_run(&r) != LUPINE_OK ||
      lp_catalog_commit(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK) {
    lp_catalog_rollback(rt->catalog);
    return luaL_error(L, "%s", rt->err);
  }
  lp_log(rt, LUPINE_LOG_DEBUG, "run '%s' of pipeline '%s' started", r.name, r.pipeline);
  while ((node = lp_graph_next(r.graph)) >= 0) {
    int ok = run_node(&r, node);
    lp_graph_finish(r.graph, node, ok);
    if (!ok) failed = 1;
  }
  /* What is left was skipped: it depends on a failed step. */
  lua_pushliteral(L, "");
  errors = lua_gettop(L);
  for (i = 0; i < r.n; i++) {
    lua_rawgeti(L, r.report, i + 1);
    if (lua_getfield(L, -1, "status") == LUA_TNIL) record_skipped(&r, i);
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "error") == LUA_TSTRING) {
      lua_pushvalue(L, errors);
      lua_pushstring(L, lua_rawlen(L, errors) > 0 ? "\n" : "");
      lua_pushvalue(L, -3);
      lua_concat(L, 3);
      lua_replace(L, errors);
    }
    lua_pop(L, 2);
  }
  status = failed ? "failed" : "completed";
  if (lp_catalog_finish_run(rt->catalog, r.id, status,
                            failed ? lua_tostring(L, -1) : NULL, rt->err,
                            sizeof rt->err) != LUPINE_OK)
    return luaL_error(L, "%s", rt->err);
  if (failed) rt->failed_runs++;
  summarize(&r, status, now_ms() - t0);
  lua_pushstring(L, r.id);
  lua_pushstring(L, r.name);
  lua_pushstring(L, status);
  lua_rotate(L, -4, 3);   /* errors last */
  return 4;
}
