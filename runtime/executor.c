/* SPDX-License-Identifier: MIT */
/*
** executor.c: the coordinator's loop of one pipeline run: plan it
** (graph.c), start what is ready (a cache hit is recorded at once,
** cache.c; a step to run goes to a worker, worker.c), record what comes
** back in node order, stop on an interrupt, and finish (the skipped
** steps, the run's status and summary). The work of one step is step.c's
** and leaves only bytes behind, so where it runs changes nothing of how
** results are stored or recorded here.
**
** lp_execute, below, is core.run: its comment is the contract between
** the Lua side and this one.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lauxlib.h"
#include "run.h"


/* End node's step run with status, and with what its attempts printed
** and how many there were. */
static void finish(lp_run *r, int node, const char *step_run_id, const char *status,
                   const char *error, const char *traceback, int output_count) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  lp_run_push(r, node, LP_NODE_OUTPUT);
  if (lp_catalog_finish_step_run(rt->catalog, step_run_id, status, error, traceback,
                                 output_count, lua_tostring(L, -1), r->node[node].attempts,
                                 rt->err, sizeof rt->err) != LUPINE_OK)
    lp_run_fail(r);
  lua_pop(L, 1);
}

/* Record the failure of node (message and traceback on top of the stack,
** traceback may be nil) against its step run. Pops both. */
static void record_failure(lp_run *r, int node, const char *step_run_id) {
  lua_State *L = r->L;
  lua_pushvalue(L, -2);
  lp_run_keep(r, node, LP_NODE_ERROR);
  finish(r, node, step_run_id, "failed", lua_tostring(L, -2), lua_tostring(L, -1), -1);
  lua_pop(L, 2);
}

/* Record the versions the step's lookups of a latest resolved to: the
** result at outs has them in extras.lookups (artifact name -> version id),
** when it made any. */
static void record_lookups(lp_run *r, int outs, const char *step_run_id) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int top = lua_gettop(L);
  if (lua_getfield(L, outs, "extras") == LUA_TTABLE &&
      lua_getfield(L, -1, "lookups") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, top + 2) != 0) {
      lua_pushstring(L, step_run_id);
      lua_pushvalue(L, -3);
      lua_pushvalue(L, -3);
      if (lp_catalog_write(L, rt->catalog, "add_lookup", lua_gettop(L) - 2, 3, NULL, rt->err,
                           sizeof rt->err) != LUPINE_OK)
        lp_run_fail(r);
      lua_pop(L, 4);
    }
  }
  lua_settop(L, top);
}

/*
** Store node's outputs (table on top: bytes 1..n, data types n+1..2n),
** each object kept under the open transaction's lock (gc.c), and make
** results[node] of them: what the steps that take them read (their
** versions' ids and numbers are added as they are recorded). The outputs
** and their objects wait in LP_NODE_TO_RECORD for record_outputs.
** Returns 1; or 0 with message and nil pushed if an object cannot be stored.
*/
static int store_outputs(lp_run *r, int node) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int outs = lua_gettop(L), nout = (int)luaL_len(L, -1) / 2, k;
  lp_object *objs = lua_newuserdatauv(L, sizeof(lp_object) * (size_t)(nout + 1), 0);
  for (k = 0; k < nout; k++) {
    size_t len;
    const char *bytes;
    if (lua_rawgeti(L, outs, k + 1) == LUA_TTABLE) {   /* stored by the step: a file */
      lua_getfield(L, -1, "hash");
      lua_getfield(L, -2, "size");
      lua_getfield(L, -3, "stored_size");
      snprintf(objs[k].hash, sizeof objs[k].hash, "%s", luaL_optstring(L, -3, ""));
      objs[k].size = (uint64_t)lua_tointeger(L, -2);
      objs[k].stored_size = (uint64_t)lua_tointeger(L, -1);
      objs[k].created = 0;
      lua_pop(L, 4);
      continue;
    }
    bytes = lua_tolstring(L, -1, &len);
    if (lp_store_put_unsynced(rt->store, bytes, len, &objs[k], rt->err, sizeof rt->err) !=
        LUPINE_OK) {
      lua_settop(L, outs - 1);
      lp_run_push_error(r, node, rt->err);
      lua_pushnil(L);
      return 0;
    }
    lua_pop(L, 1);
  }
  lp_run_join(r);
  for (k = 0; k < nout; k++) {
    if (lua_rawgeti(L, outs, k + 1) == LUA_TSTRING) {
      if (lp_store_keep(rt->store, NULL, 0, lua_tostring(L, -1), lua_rawlen(L, -1), &objs[k],
                        rt->err, sizeof rt->err) != LUPINE_OK)
        lp_run_fail(r);
    } else if (!lp_store_exists(rt->store, objs[k].hash)) {
      /* gc ran between the step's put and now: the file is not here to put again */
      lua_settop(L, outs - 1);
      lua_pushfstring(L, "output %d: its object %s was removed before it was recorded "
                      "(a gc while the step ran?)", k + 1, objs[k].hash);
      lp_run_push_error(r, node, lua_tostring(L, -1));
      lua_remove(L, -2);
      lua_pushnil(L);
      return 0;
    }
    lua_pop(L, 1);
  }
  /* results[node] = { { bytes = ..., hash = ..., size = ..., kind = ... }, ... } */
  lua_createtable(L, nout, 0);
  for (k = 0; k < nout; k++) {
    lua_createtable(L, 0, 7);
    lua_rawgeti(L, outs, k + 1);
    lua_setfield(L, -2, "bytes");
    lua_pushstring(L, objs[k].hash);
    lua_setfield(L, -2, "hash");
    lua_pushinteger(L, (lua_Integer)objs[k].size);
    lua_setfield(L, -2, "size");
    lua_rawgeti(L, outs, nout + k + 1);
    lua_setfield(L, -2, "kind");
    lua_rawseti(L, -2, k + 1);
  }
  lua_rawseti(L, r->results, node + 1);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, outs);
  lua_setfield(L, -2, "outs");
  lua_pushvalue(L, outs + 1);
  lua_setfield(L, -2, "objects");
  lp_run_keep(r, node, LP_NODE_TO_RECORD);
  lua_settop(L, outs - 1);
  return 1;
}

/*
** Record node's stored outputs (LP_NODE_TO_RECORD) and its completion in
** the open transaction, and give the node to lp_run_answer. Not later: in
** a savepoint (a rollback here undoes this step alone); returns 1, or 0
** with message and nil pushed if a custom version is taken. later (a step
** without custom versions, record_later says why): the versions' numbers
** are read back by lp_run_answer, a backend that sends writes without
** waiting for their answers sends these so, and what fails fails the run;
** returns 1.
*/
static int record_outputs(lp_run *r, int node, int later) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  const char *step_run_id = r->node[node].step_run;
  int top = lua_gettop(L), outs, res, specs, nout, k;
  lp_object *objs;
  lp_run_push(r, node, LP_NODE_TO_RECORD);
  lua_getfield(L, top + 1, "outs");
  outs = lua_gettop(L);
  nout = (int)luaL_len(L, outs) / 2;
  lua_getfield(L, top + 1, "objects");
  objs = lua_touserdata(L, -1);
  lua_rawgeti(L, r->results, node + 1);
  res = lua_gettop(L);
  lua_getfield(L, outs, "extras");
  lua_rawgeti(L, r->nodes, node + 1);
  lp_run_field(L, -1, "outputs", LUA_TTABLE);
  specs = lua_gettop(L);
  /* (later, nothing is taken: what fails fails the run) */
  if (!later && lp_catalog_savepoint(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK)
    lp_run_fail(r);
  for (k = 0; k < nout; k++) {
    char id[LP_ID_LEN + 1], version[LP_NAME_MAX + 1];
    const char *output;
    long long seq;
    int rc;
    lua_rawgeti(L, specs, k + 1);
    lp_run_field(L, -1, "name", LUA_TSTRING);
    output = lua_tostring(L, -1);
    lua_rawgeti(L, outs, nout + k + 1);
    if (lua_type(L, specs - 2) == LUA_TTABLE) lua_rawgeti(L, specs - 2, k + 1);
    else lua_pushnil(L);
    rc = lp_versions_record(L, rt, specs + 1, lua_istable(L, -1) ? -1 : 0, &objs[k],
                           lua_tostring(L, -2), step_run_id, output, later, id, version, &seq);
    if (rc == LUPINE_CONSTRAINT && !later) {
      lp_catalog_rollback_savepoint(rt->catalog);
      lua_pushnil(L);
      lua_rawseti(L, r->results, node + 1);
      lua_pushnil(L);
      lp_run_keep(r, node, LP_NODE_TO_RECORD);
      lua_pushfstring(L, "output '%s': %s", output, rt->err);
      lp_run_push_error(r, node, lua_tostring(L, -1));
      lua_replace(L, top + 1);
      lua_settop(L, top + 1);
      lua_pushnil(L);
      return 0;
    }
    if (rc != LUPINE_OK) lp_run_fail(r);
    lua_rawgeti(L, res, k + 1);
    lua_pushstring(L, id);
    lua_setfield(L, -2, "id");
    if (version[0] != '\0') {
      lua_pushinteger(L, (lua_Integer)seq);   /* for the links of the steps that read it */
      lua_setfield(L, -2, "seq");
      lua_pushstring(L, version);
      lua_setfield(L, -2, "version");
    }
    lua_settop(L, specs);
  }
  record_lookups(r, outs, step_run_id);
  finish(r, node, step_run_id, "completed", NULL, NULL, nout);
  lua_pushnil(L);
  lp_run_keep(r, node, LP_NODE_TO_RECORD);
  /* what a backend keeps back of this goes now: a server writes it while
  ** this process goes on */
  if ((!later && lp_catalog_release(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK) ||
      lp_catalog_send(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK)
    lp_run_fail(r);
  lp_run_answer_later(r, node);
  lua_settop(L, top);
  return 1;
}

/* 1 if an output of node has a custom version. */
static int custom_versions(lp_run *r, int node) {
  lua_State *L = r->L;
  int k, custom = 0, top = lua_gettop(L);
  lua_rawgeti(L, r->nodes, node + 1);
  lp_run_field(L, -1, "outputs", LUA_TTABLE);
  for (k = 1; !custom && lua_rawgeti(L, -1, k) == LUA_TTABLE; k++) {
    lua_getfield(L, -1, "version");
    custom = !lua_isnil(L, -1);
    lua_pop(L, 2);
  }
  lua_settop(L, top);
  return custom;
}

/*
** Record the outputs of the nodes that wait for it (r->later), in the
** order they were stored: node order where it matters (plan_order's
** waits). A step's outputs are stored and handed on when its result comes
** (store_outputs); their record waits until the steps they make ready
** have asked for a cache hit: a catalog on a server then answers that
** question first, and writes the record while the next step runs, where
** it was a wait between every two steps of a chain. What could see the
** difference records first: a step with the same cache key (start_node),
** a hit whose step looked up a latest while it ran (cache.c: is it still
** the latest?), every other record, a retry's start, and the end of each
** turn of the run's loop (before a worker's calls are answered, or a
** commit). A step's input that is a lookup of a latest needs nothing: one
** of an artifact a step of the run makes is that step's output
** (lua/lupine/init.lua), not the catalog's.
*/
static void record_later(lp_run *r) {
  int q, n = r->nlater;
  r->nlater = 0;
  for (q = 0; q < n; q++) record_outputs(r, r->later[q], 1);
}

/* 1 if a node whose record waits has this cache key. */
static int later_has_key(lp_run *r, const char *key) {
  int q, same = 0;
  for (q = 0; q < r->nlater && !same; q++) {
    if (lp_run_push(r, r->later[q], LP_NODE_CACHE_KEY) == LUA_TSTRING)
      same = strcmp(lua_tostring(r->L, -1), key) == 0;
    lua_pop(r->L, 1);
  }
  return same;
}

/* The skipped steps still get a step run, so the run shows every step. */
static void record_skipped(lp_run *r, int node) {
  char id[LP_ID_LEN + 1];
  lp_runtime *rt = r->rt;
  lp_step_run_spec spec;
  lp_run_step_run_spec(r, node, "skipped", &spec);
  if (lp_catalog_create_step_run(rt->catalog, &spec, id, rt->err, sizeof rt->err) != LUPINE_OK)
    lp_run_fail(r);
  r->node[node].status = LP_NODE_SKIPPED;
  lp_run_step_done(r, node);
}

/* Record which process runs the run, on which machine (in the transaction
** that creates it: a run without one could never be told dead); its
** heartbeat is the time of this write, the next due in a quarter of
** lp_runtime_dead_after() (lp_run_beat). */
static int record_process(lp_run *r) {
  lua_State *L = r->L;
  char started[32], host[256] = "";
  int changes, rc;
  gethostname(host, sizeof host - 1);
  lua_pushstring(L, r->id);
  lua_pushinteger(L, (lua_Integer)getpid());
  lua_pushstring(L, lp_process_start(getpid(), started) == 0 ? started : NULL);
  lua_pushstring(L, host);
  rc = lp_catalog_write(L, r->rt->catalog, "run_process", lua_gettop(L) - 3, 4, &changes,
                        r->rt->err, sizeof r->rt->err);
  lua_pop(L, 4);
  r->beat_at = lp_run_now() + lp_runtime_dead_after() * 250.0;
  return rc;
}

/* Tag the new run with spec.tags. */
static int tag_run(lp_run *r) {
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

/* Count node i's dependencies (1-based), or add them to the graph (g not
** NULL): the nodes whose outputs it reads, and those it runs after. */
static int dependencies(lp_run *r, int i, lp_graph *g) {
  lua_State *L = r->L;
  int n = 0, k;
  lp_input_iter it;
  lua_rawgeti(L, r->nodes, i);
  lp_run_inputs_begin(L, lua_gettop(L), &it);
  while (lp_run_inputs_next(L, &it)) {
    if (lua_getfield(L, -1, "node") == LUA_TNUMBER) {
      lua_Integer from = lua_tointeger(L, -1);
      if (from < 1 || from > r->n)
        luaL_error(L, "lupine: malformed run spec (node %d reads node %d)", i, (int)from);
      if (g != NULL) lp_graph_add_edge(g, (int)from - 1, i - 1);
      n++;
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, -1, "after") == LUA_TTABLE) {
    for (k = 1; lua_rawgeti(L, -1, k) == LUA_TNUMBER; k++) {
      lua_Integer from = lua_tointeger(L, -1);
      if (from < 1 || from > r->n)
        luaL_error(L, "lupine: malformed run spec (node %d runs after node %d)", i, (int)from);
      if (g != NULL) lp_graph_add_edge(g, (int)from - 1, i - 1);
      n++;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return n;
}

/* Build the graph from the spec's edges; a cycle is an error that names
** its steps. */
static void plan(lp_run *r) {
  lua_State *L = r->L;
  int i, nedges = 0, len;
  int *cycle;
  for (i = 1; i <= r->n; i++) nedges += dependencies(r, i, NULL);
  r->graph = lp_graph_push(L, r->n, nedges);
  for (i = 1; i <= r->n; i++) dependencies(r, i, r->graph);
  cycle = lua_newuserdatauv(L, sizeof(int) * (size_t)(r->n + 1), 0);
  if (lp_graph_seal(r->graph, cycle, &len) != LUPINE_OK) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "pipeline '%s': the steps ", r->pipeline);
    luaL_addvalue(&b);
    for (i = 0; i <= len; i++) {
      lua_pushfstring(L, "%s'%s'", i > 0 ? " -> " : "", lp_run_node_str(r, cycle[i % len], "name"));
      luaL_addvalue(&b);
    }
    luaL_addstring(&b, " form a cycle (each runs after the one before it)");
    luaL_pushresult(&b);
    lua_error(L);
  }
  lua_pop(L, 1);
}

/* The terminal columns of a step's name. */
static int name_width(lp_run *r, int node) {
  const char *name = lp_run_node_str(r, node, "name");
  return (int)lp_text_width(name, strlen(name), 0, NULL);
}

/* Log the run's summary: a line for the run, then one message of a line
** per step (one write for the table, however long). The names' column is
** as wide as the widest name (in terminal columns: CJK names take two a
** character), so that the columns after it line up. */
static void summarize(lp_run *r, const char *status, double ms) {
  lua_State *L = r->L;
  luaL_Buffer b;
  char line[2048], took[24];
  int i, width = 24;
  lp_duration(ms, took, sizeof took);
  lp_log(r->rt, LUPINE_LOG_INFO, "run '%s' %s in %s", r->name, status, took);
  if (r->n == 0 || r->rt->log == NULL) return;
  for (i = 0; i < r->n; i++)
    if (name_width(r, i) > width) width = name_width(r, i);
  luaL_buffinit(L, &b);
  for (i = 0; i < r->n; i++) {
    const char *settled = lp_run_status_name(r->node[i].status);
    lp_run_push(r, i, LP_NODE_ARTIFACTS);
    lp_run_push(r, i, LP_NODE_ERROR);
    lp_duration(r->node[i].ms, took, sizeof took);
    snprintf(line, sizeof line, "%s  %s%*s %-10s %11s  %s", i > 0 ? "\n" : "",
             lp_run_node_str(r, i, "name"), width - name_width(r, i), "",
             settled != NULL ? settled : "", took,
             lua_isstring(L, -1) ? lua_tostring(L, -1)
                                 : lua_isstring(L, -2) ? lua_tostring(L, -2) : "");
    lua_pop(L, 2);
    luaL_addstring(&b, line);
  }
  luaL_pushresult(&b);
  lp_log_text(r->rt, LUPINE_LOG_INFO, lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* Resolve the lookups of node (at nodeidx) that no step of the run
** answers, now that it starts: its LP_NODE_LOOKUPS value [j] is the id of the
** latest version of input j's artifact. 1; or 0 with the message in err
** when an artifact has no version. */
static int resolve_lookups(lp_run *r, int node, int nodeidx, char *err, size_t errsz) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int top = lua_gettop(L), ok = 1;
  lp_input_iter it;
  lua_pushnil(L);   /* top + 1: the lookups, once there is one */
  lp_run_inputs_begin(L, nodeidx, &it);
  while (ok && lp_run_inputs_next(L, &it)) {
    if (lua_getfield(L, top + 3, "lookup") == LUA_TSTRING) {
      if (lp_catalog_query(L, rt->catalog, "latest_version", top + 4, 1, rt->err,
                           sizeof rt->err) != LUPINE_OK)
        lp_run_fail(r);
      /* stack: lookups, args, input, artifact name, rows */
      if (lua_rawgeti(L, top + 5, 1) == LUA_TTABLE) {
        lua_getfield(L, top + 6, "id");
        lua_pushvalue(L, -1);
        lua_getfield(L, top + 6, "content_hash");
        lua_rawset(L, r->versions);   /* its hash, for the cache key */
        if (lua_isnil(L, top + 1)) {
          lua_newtable(L);
          lua_replace(L, top + 1);
          lua_pushvalue(L, top + 1);
          lp_run_keep(r, node, LP_NODE_LOOKUPS);
        }
        lua_rawseti(L, top + 1, it.j);
      } else {
        lua_getfield(L, top + 3, "name");
        lp_errf(err, errsz, "input '%s': artifact '%s' not found (it has no version, and no "
                "step of this run makes it)", lua_tostring(L, -1), lua_tostring(L, top + 4));
        ok = 0;
      }
    }
    lua_settop(L, top + 2);
  }
  lua_settop(L, top);
  return ok;
}

/* Tell spec.cached, if the run has one, that node is a cache hit (a job
** submitted ahead for it waits for word of it). What it raises is logged:
** such a job then hears nothing, and never runs the step. */
static void tell_cached(lp_run *r, int node) {
  lua_State *L = r->L;
  if (lua_getfield(L, r->spec, "cached") != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return;
  }
  lua_pushinteger(L, node + 1);
  lua_rawgeti(L, r->results, node + 1);
  lua_pushstring(L, r->id);
  lua_pushstring(L, r->rt->store_id);
  if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
    lp_log(r->rt, LUPINE_LOG_WARN, "step '%s': %s", lp_run_node_str(r, node, "name"),
           lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

/* Start node: record its step run and hand it to a worker. Returns 1. */
static int start_node(lp_run *r, int node) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  lp_node *n = &r->node[node];
  char err[LP_ERRSZ];
  lp_step_run_spec spec;
  int top = lua_gettop(L), nodeidx, nargs, k, ok, found;
  size_t plen = 0;
  const char *pbytes = NULL;
  if (n->step_run[0] != '\0') {   /* a retry: told started after those settled before */
    record_later(r);
    ok = 1;
  }
  else {
    n->started = lp_run_now();
    lua_rawgeti(L, r->nodes, node + 1);
    nodeidx = lua_gettop(L);
    lua_getfield(L, nodeidx, "lookups");
    found = !lua_toboolean(L, -1) || resolve_lookups(r, node, nodeidx, err, sizeof err);
    lua_pop(L, 1);
    /* The parameters: what the arguments hold besides inputs, by name. */
    lua_newtable(L);
    lp_run_field(L, nodeidx, "args", LUA_TTABLE);
    nargs = (int)luaL_len(L, -1);
    for (k = 1; k <= nargs; k++) {
      lua_rawgeti(L, nodeidx + 2, k);
      if (lua_getfield(L, -1, "param") == LUA_TSTRING) {
        lua_getfield(L, -2, "value");
        lua_rawset(L, nodeidx + 1);
      } else lua_pop(L, 1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    ok = found && lp_codec_encode(L, nodeidx + 1, "parameters", err, sizeof err) == LUPINE_OK;
    if (ok) pbytes = lua_tolstring(L, -1, &plen);
    else lua_pushnil(L);
    /* stack: node, parameters, their bytes or nil */
    if (ok) {
      char key[LP_HASH_STRLEN + 1];
      lp_cache_push_parts(r, node, nodeidx, nodeidx + 1);
      if (lp_codec_encode(L, -1, "parts", err, sizeof err) != LUPINE_OK)
        return luaL_error(L, "lupine: cache parts (%s)", err);
      lp_frame_hash_bytes(lua_tostring(L, -1), lua_rawlen(L, -1), key);
      lua_replace(L, -2);   /* the parts' bytes replace the table */
      lua_pushstring(L, key);
      /* stack: node, parameters, bytes, parts, key */
      lua_getfield(L, nodeidx, "enable_cache");
      if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "caching is off for this step");
      } else {
        int hit;
        lua_pop(L, 1);
        if (later_has_key(r, key)) record_later(r);
        hit = lp_cache_find_hit(r, node, nodeidx);
        record_later(r);   /* after the question: see record_later */
        if (hit) {
          lp_cache_record_hit(r, node, nodeidx, pbytes, plen);
          lua_settop(L, top);
          tell_cached(r, node);
          return 1;
        }
      }
      /* stack: node, parameters, bytes, parts, key, why not cached */
    } else {
      lua_pushnil(L);
      lua_pushnil(L);
      lua_pushnil(L);
    }
    /* its seed: the one set, or a fresh one (kept by its retries, so the
    ** seed recorded is the one every attempt ran with) */
    lua_getfield(L, nodeidx, "seed");
    n->seed = lua_isinteger(L, -1) ? (long long)lua_tointeger(L, -1) : lp_random_seed();
    n->has_seed = 1;
    lua_pop(L, 1);
    /* the step run with why it is not a cache hit, and its inputs (so a
    ** step that fails shows what it took), committed with what came before */
    record_later(r);
    lp_run_step_run_spec(r, node, "running", &spec);
    spec.parameters = pbytes;
    spec.parameters_len = plen;
    spec.cache_key = lua_tostring(L, nodeidx + 4);
    spec.cache_parts = lua_tolstring(L, nodeidx + 3, &spec.cache_parts_len);
    spec.cache_note = lua_tostring(L, nodeidx + 5);
    spec.seed = &n->seed;
    spec.orchestrator = lp_run_node_str(r, node, "orchestrator");
    lp_run_join(r);
    if (lp_catalog_create_step_run(rt->catalog, &spec, n->step_run, rt->err, sizeof rt->err) !=
        LUPINE_OK)
      lp_run_fail(r);
    lp_run_link_inputs(r, node, nodeidx, n->step_run);
    lua_pushvalue(L, nodeidx + 4);
    lp_run_keep(r, node, LP_NODE_CACHE_KEY);   /* (later_has_key) */
    lua_settop(L, nodeidx + 2);
    lua_pushvalue(L, -1);
    lp_run_keep(r, node, LP_NODE_PARAMS);
    lp_log(rt, LUPINE_LOG_DEBUG, "step '%s' started", lp_run_node_str(r, node, "name"));
    if (!ok) {
      lp_run_push_error(r, node, err);
      lp_run_stash_failure(r, node);
    }
    lua_settop(L, top);
  }
  if (!ok) return 1;
  n->attempts++;
  lp_worker_start(r, node);
  return 1;
}

/* Start what may start: retries that are due, then ready nodes, up to the
** job limit (and while a slot is free: the workers still ending hold
** theirs). Returns how many were started (or failed to start). */
static int start_ready(lp_run *r) {
  int started = 0, node;
  double now = lp_run_now();
  if (r->stopping) return 0;
  for (node = 0; r->retrying > 0 && node < r->n && lp_worker_can_start(r); node++) {
    if (r->node[node].retry_at > 0 && r->node[node].retry_at <= now) {
      r->node[node].retry_at = 0;
      r->retrying--;
      started += start_node(r, node);
    }
  }
  while (lp_worker_can_start(r) && (node = lp_graph_next(r->graph)) >= 0)
    started += start_node(r, node);
  return started;
}

/* Record, in node order where artifact names are shared, what finished:
** so the versions a run makes do not depend on how many jobs ran it.
** Returns how many nodes were recorded. */
static int by_index(const void *a, const void *b) {
  return *(const int *)a - *(const int *)b;
}

static int record_ready(lp_run *r) {
  lua_State *L = r->L;
  int node, recorded = 0, k, ok, npend = 0, p;
  /* the nodes with a result, in node order: not a scan of the whole run */
  lua_pushnil(L);
  while (lua_next(L, r->pendset) != 0) {
    r->order[npend++] = (int)lua_tointeger(L, -2) - 1;
    lua_pop(L, 1);
  }
  qsort(r->order, (size_t)npend, sizeof *r->order, by_index);
  for (p = 0; p < npend; p++) {
    int top = lua_gettop(L), ready = 1, now = 0;
    node = r->order[p];
    if (lp_run_push(r, node, LP_NODE_PENDING) != LUA_TTABLE) {
      lua_settop(L, top);
      continue;
    }
    lua_rawgeti(L, r->waits, node + 1);
    for (k = 1; ready && lua_rawgeti(L, -1, k) == LUA_TNUMBER; k++) {
      int before = (int)lua_tointeger(L, -1) - 1;
      ready = lp_graph_skipped(r->graph, before) || r->node[before].recorded;
      lua_pop(L, 1);
    }
    lua_settop(L, top + 1);
    if (!ready) {
      lua_settop(L, top);
      continue;
    }
    /* stack: pending */
    lua_pushnil(L);
    lp_run_set_pending(r, node);
    lua_pushstring(L, r->node[node].step_run);
    {
      const char *step_run_id = lua_tostring(L, -1);
      lua_getfield(L, top + 1, "outs");
      if (lua_istable(L, -1)) {
        ok = store_outputs(r, node);
        if (ok && custom_versions(r, node)) {
          /* a custom version taken fails the step: known before its outputs go on */
          record_later(r);
          ok = now = record_outputs(r, node, 0);
        } else if (ok) r->later[r->nlater++] = node;
        if (!ok) {
          record_later(r);
          record_failure(r, node, step_run_id);
        }
      } else {
        lua_getfield(L, top + 1, "error");
        lua_getfield(L, top + 1, "traceback");
        record_later(r);
        record_failure(r, node, step_run_id);
        ok = 0;
      }
    }
    lua_settop(L, top);
    lp_run_settle(r, node, ok ? LP_NODE_COMPLETED : LP_NODE_FAILED);
    lp_graph_finish(r->graph, node, ok);
    if (now) lp_run_answer(r);   /* recorded at once: told done after those before it */
    if (!ok) {
      lp_run_step_done(r, node);
      r->failed = 1;
      lua_rawgeti(L, r->nodes, node + 1);
      lua_getfield(L, -1, "on_failure");
      if (lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "stop") == 0) r->stopping = 1;
      lua_pop(L, 2);
    }
    recorded++;
  }
  return recorded;
}

/* Ctrl-C or SIGTERM: end the workers, mark what ran stopped. */
static void stop_all(lp_run *r) {
  int i;
  record_later(r);
  lp_run_answer(r);
  r->stopping = r->interrupted = 1;
  lp_worker_stop_all(r);
  for (i = 0; i < r->n; i++) {
    if (r->node[i].step_run[0] == '\0' || r->node[i].recorded) continue;
    if (lp_catalog_finish_step_run(r->rt->catalog, r->node[i].step_run, "stopped",
                                   "stopped by a signal", NULL, -1, NULL, -1, r->rt->err,
                                   sizeof r->rt->err) != LUPINE_OK)
      lp_run_fail(r);
    lp_run_settle(r, i, LP_NODE_STOPPED);   /* timed: how long it ran until stopped */
    lp_run_step_done(r, i);
  }
}

/* Which earlier nodes each node must be recorded after: the last earlier
** node writing each of its artifact names. waits[i] = { j, ... } (1-based). */
static void plan_order(lp_run *r) {
  lua_State *L = r->L;
  int i, k;
  lua_newtable(L);   /* artifact name -> last node writing it */
  lua_createtable(L, r->n, 0);
  r->waits = lua_gettop(L);
  for (i = 1; i <= r->n; i++) {
    int nw = 0;
    lua_newtable(L);
    lua_rawgeti(L, r->nodes, i);
    lp_run_field(L, -1, "outputs", LUA_TTABLE);
    for (k = 1; lua_rawgeti(L, -1, k) == LUA_TTABLE; k++) {
      lp_run_field(L, -1, "artifact", LUA_TSTRING);
      lua_pushvalue(L, -1);
      if (lua_rawget(L, r->waits - 1) == LUA_TNUMBER) {
        lua_rawseti(L, -6, ++nw);
      } else lua_pop(L, 1);
      lua_pushinteger(L, i);
      lua_rawset(L, r->waits - 1);
      lua_pop(L, 1);
    }
    lua_pop(L, 3);
    lua_rawseti(L, r->waits, i);
  }
  lua_remove(L, r->waits - 1);
  r->waits--;
}

/* The run records the name of the stack it used. */
static int record_stack(lp_run *r, const char *stack) {
  int changes, rc;
  lua_pushstring(r->L, r->id);
  lua_pushstring(r->L, stack);
  rc = lp_catalog_write(r->L, r->rt->catalog, "set_run_stack", lua_gettop(r->L) - 1, 2,
                        &changes, r->rt->err, sizeof r->rt->err);
  lua_pop(r->L, 2);
  return rc;
}

/*
** The run's plan, recorded as it starts, so that while it runs the steps yet
** to start are known too (the dashboard shows them): a CBOR array of
** { name = the invocation, step = the step's name, after = { the
** invocations whose outputs it takes, in the order of its inputs } }, in
** the order of the pipeline's body.
*/
static int record_plan(lp_run *r) {
  lua_State *L = r->L;
  int i, k, n, changes, rc, top = lua_gettop(L);
  lua_pushstring(L, r->id);
  lua_createtable(L, r->n, 0);
  for (i = 1; i <= r->n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, lp_run_node_str(r, i - 1, "name"));
    lua_setfield(L, -2, "name");
    lua_pushstring(L, lp_run_node_str(r, i - 1, "step"));
    lua_setfield(L, -2, "step");
    lua_newtable(L);
    lua_rawgeti(L, r->nodes, i);
    lp_run_field(L, -1, "args", LUA_TTABLE);
    /* stack: ..., plan, entry, after, node, args */
    for (k = 1, n = 0; k <= (int)luaL_len(L, -1); k++) {
      lua_rawgeti(L, -1, k);
      if (lua_getfield(L, -1, "node") == LUA_TNUMBER) {
        lua_pushstring(L, lp_run_node_str(r, (int)lua_tointeger(L, -1) - 1, "name"));
        lua_rawseti(L, -6, ++n);
      }
      lua_pop(L, 2);
    }
    lua_pop(L, 2);
    lua_setfield(L, -2, "after");
    lua_rawseti(L, -2, i);
  }
  if ((rc = lp_codec_encode(L, -1, "plan", r->rt->err, sizeof r->rt->err)) == LUPINE_OK) {
    lua_replace(L, -2);
    rc = lp_catalog_write(L, r->rt->catalog, "set_run_plan", top + 1, 2, &changes, r->rt->err,
                          sizeof r->rt->err);
  }
  lua_settop(L, top);
  return rc;
}

/*
** core.run(spec) -> id, name, status, errors: lp_execute with the spec at
** stack index spec, built by run() in lua/lupine/init.lua. Every field the
** C side reads (the Lua side keeps others in the same tables):
**
**   pipeline  the pipeline's name
**   run_name  the run's name, or nil for the catalog to choose one
**   start     when the run began ("YYYY-MM-DDTHH:MM:SS.ffffffZ", UTC)
**   tags      { tag, ... } for the run, or nil
**   stack     the stack to run on, or nil for the active one
**   jobs      workers at most (an integer, clamped to 1..LP_MAX_JOBS), or
**             nil for the number of cores
**   invoke    function(i, step_run_id, run_id, run_name, seed, args...)
**             -> extras, values...: runs node i's function (in a worker)
**             with its step context and random seed. extras[k] for output
**             k: { artifact = name resolved while it ran, tags = { ... },
**             data_type = the type recorded, metadata = { { key, CBOR
**             value, number | nil, text | nil }, ... }, visualizations = {
**             { type, bytes }, ... }, stored = { hash, size, stored_size }
**             for a file or folder it stored itself | nil }; extras.lookups
**             = { [artifact name] = version id } its Client lookups of a
**             latest found, or nil
**   explain   function(previous parts | nil, parts) -> why a step was not a
**             cache hit (parts: its cache key's parts, as CBOR)
**   fresh     function(i, state, results, run_id, run_name, store_id) ->
**             result, or nil: with LUPINE_EXEC set, the worker hands node i
**             (state: { step_run, seed, params, lookups }) to this, which
**             runs it in a fresh process (`lupine exec`, lua/lupine/exec.lua)
**   cached    function(i, outputs, run_id, store_id), or nil: called in
**             this process when node i is a cache hit, once it is recorded
**             (outputs: its results, { id, seq, version, hash, size, kind,
**             store } each; a Slurm run's jobs submitted ahead wait for it)
**   nodes     { node, ... } in the order of the pipeline's body; a node:
**     name           the invocation's name, unique in the run
**     step           the step's name
**     where          "file:line" of the step's definition, for messages
**     args           the step's arguments, in order, each one of:
**                      { name = param, node = i, output = k }  output k of node i
**                      { name = param, version = id }          a stored version
**                      { name = param, lookup = artifact }     its latest, at start
**                      { param = name, value = v | nil,        a parameter, with
**                        inputs = { { name = "models[1]",      inputs inside it at
**                          keys = { 1 }, node = i, output = k  keys, or nil
**                          | version = id | lookup = name }, ... } }
**     lookups        true if an input is a lookup (resolved when it starts)
**     after          { i, ... } the nodes it runs after without reading, or nil
**     outputs        { { name = output, artifact = name, type = artifact
**                    type, version = custom version | nil }, ... }
**     default_output true if the step declares no outputs: a value it
**                    returns is output "output", and none stores nothing
**     seed           its random seed (an integer), or nil for a fresh one
**     enable_cache   whether a completed step run may be reused
**     code_hash, outputs_hash, cache_key
**                    the cache key's parts from the Lua side: its code's
**                    fingerprint, its outputs' configuration's hash, the
**                    user's key (or nil); the rest is computed here
**     timeout        seconds an attempt may take, or nil (math.huge: none)
**     retries        attempts after the first that fail
**     on_failure     "stop" to start nothing new once it fails, or "continue"
**
** Returns four values: the run's id and name, its status ("completed",
** "failed" or "stopped") and the failed steps' messages, one a line ("" if
** none). Step failures are recorded, not raised; raises only for a
** malformed spec (naming the field), a cycle (naming its steps), or when
** the catalog itself fails.
*/
int lp_execute(lua_State *L, lp_runtime *rt, int spec) {
  lp_run r;
  char stack[LP_NAME_MAX + 1];
  int i, failed;
  const char *status, *run_name, *start;
  double t0 = lp_run_now();
  int errors;
  memset(&r, 0, sizeof r);
  r.L = L;
  r.rt = rt;
  r.spec = lua_absindex(L, spec);
  lp_run_field(L, r.spec, "pipeline", LUA_TSTRING);
  r.pipeline = lua_tostring(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, r.spec, "run_name");
  run_name = lua_tostring(L, -1);
  lua_getfield(L, r.spec, "start");
  start = lua_tostring(L, -1);
  lua_pop(L, 2);   /* both strings stay alive in the spec */
  lp_run_field(L, r.spec, "nodes", LUA_TTABLE);
  r.nodes = lua_gettop(L);
  r.n = (int)luaL_len(L, r.nodes);
  plan(&r);
  lua_newtable(L);
  r.results = lua_gettop(L);
  lua_newtable(L);
  r.versions = lua_gettop(L);
  lua_newtable(L);
  r.pendset = lua_gettop(L);
  lp_cache_prefetch(&r);
  r.order = lua_newuserdatauv(L, sizeof(int) * (size_t)(r.n + 1), 0);
  r.later = lua_newuserdatauv(L, sizeof(int) * (size_t)(r.n + 1), 0);
  r.record_later = record_later;
  r.answer = lua_newuserdatauv(L, sizeof(int) * (size_t)(r.n + 1), 0);
  lp_run_push_nodes(&r);
  /* The run's stack (spec.stack, or the active one now): its store takes
  ** every object the run writes, in the workers too (they inherit it). */
  lua_getfield(L, r.spec, "stack");
  if (lp_runtime_use_stack(rt, lua_tostring(L, -1), stack, sizeof stack) != LUPINE_OK ||
      lp_runtime_write_store(rt) != LUPINE_OK) {
    lp_runtime_use_stack(rt, NULL, NULL, 0);
    return lp_raise(L, "%s", rt->err);
  }
  lua_pop(L, 1);
  /* One transaction, so two processes cannot pick the same run name. */
  if (lp_catalog_begin(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK ||
      lp_catalog_create_run(rt->catalog, r.pipeline, run_name, start, r.id, r.name,
                            rt->err, sizeof rt->err) != LUPINE_OK ||
      tag_run(&r) != LUPINE_OK || record_process(&r) != LUPINE_OK ||
      record_stack(&r, stack) != LUPINE_OK || record_plan(&r) != LUPINE_OK ||
      lp_catalog_commit(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK) {
    lp_catalog_rollback(rt->catalog);
    lp_runtime_use_stack(rt, NULL, NULL, 0);
    return lp_raise(L, "%s", rt->err);
  }
  lp_log(rt, LUPINE_LOG_DEBUG, "run '%s' of pipeline '%s' started", r.name, r.pipeline);
  r.began = t0;
  lp_run_emit(&r, LUPINE_EVENT_RUN_START, -1, NULL, NULL, 0, 0);
  lua_getfield(L, r.spec, "jobs");
  if (!lua_isinteger(L, -1)) r.jobs = lp_default_jobs();
  else {   /* clamped before it is cut to an int */
    lua_Integer jobs = lua_tointeger(L, -1);
    r.jobs = jobs < 1 ? 1 : jobs > LP_MAX_JOBS ? LP_MAX_JOBS : (int)jobs;
  }
  lua_pop(L, 1);
  lp_worker_pool(&r);
  plan_order(&r);
  for (;;) {
    if (rt->interrupted) {
      /* the run answers the interrupt: the Lua code around it is not stopped */
      rt->interrupted = 0;
      lua_sethook(L, NULL, 0, 0);
      stop_all(&r);
      break;
    }
    while (record_ready(&r) + start_ready(&r) > 0) {}
    record_later(&r);
    lp_run_answer(&r);
    /* workers still ending hold slots a ready step may need */
    if (r.running == 0 && r.retrying == 0 && lp_worker_ending(&r) == 0) break;
    if (!rt->interrupted) lp_worker_wait(&r);   /* an interrupt from the log callback */
    if (r.running > 0 && lp_run_now() - r.last_tick >= LP_TICK_MS)
      lp_run_emit(&r, LUPINE_EVENT_TICK, -1, NULL, NULL, 0, 0);
  }
  lp_worker_done(&r);
  failed = r.failed;
  /* What is left was skipped: it depends on a failed step. */
  lua_pushliteral(L, "");
  errors = lua_gettop(L);
  for (i = 0; i < r.n; i++) {
    if (r.node[i].status == LP_NODE_WAITING) record_skipped(&r, i);
    if (lp_run_push(&r, i, LP_NODE_ERROR) == LUA_TSTRING) {
      lua_pushvalue(L, errors);
      lua_pushstring(L, lua_rawlen(L, errors) > 0 ? "\n" : "");
      lua_pushvalue(L, -3);
      lua_concat(L, 3);
      lua_replace(L, errors);
    }
    lua_pop(L, 1);
  }
  lp_run_commit(&r);
  status = r.interrupted ? "stopped" : failed ? "failed" : "completed";
  if (lp_catalog_finish_run(rt->catalog, r.id, status,
                            r.interrupted ? "stopped by a signal"
                                          : failed ? lua_tostring(L, -1) : NULL, rt->err,
                            sizeof rt->err) != LUPINE_OK)
    return lp_raise(L, "%s", rt->err);
  if (failed || r.interrupted) {
    /* what a script that does not raise for it is told (lupine_exec_*) */
    rt->failed_runs++;
    free(rt->run_failure);
    lua_pushfstring(L, r.interrupted ? "pipeline run '%s' was stopped" : "pipeline run '%s' "
                    "failed:\n%s", r.name, lua_tostring(L, -1));
    rt->run_failure = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lp_runtime_use_stack(rt, NULL, NULL, 0);   /* back to the active stack's store */
  summarize(&r, status, lp_run_now() - t0);
  lp_run_emit(&r, LUPINE_EVENT_RUN_END, -1, status, NULL, lp_run_now() - t0, 0);
  lua_pushstring(L, r.id);
  lua_pushstring(L, r.name);
  lua_pushstring(L, status);
  lua_rotate(L, -4, 3);   /* errors last */
  return 4;
}

