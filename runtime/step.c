/* SPDX-License-Identifier: MIT */
/*
** step.c: the work of one step, done in a worker process: decode its
** inputs and parameters, call it, encode its outputs, leaving only bytes
** behind; and the worker's body around it (os.exit inside a step, a
** failure around the step, the result sent to the coordinator). How the
** worker came to be is worker.c's; how the bytes are stored and recorded
** is the coordinator's (executor.c).
*/
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lauxlib.h"
#include "run.h"

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

/* The store holding a result's object (the table at idx): a cache hit's
** output stays in its version's store; others are in the run's. */
static int object_store(lp_run *r, int idx, lp_store **out) {
  lua_State *L = r->L;
  int rc = LUPINE_OK;
  *out = r->rt->store;
  if (lua_getfield(L, idx, "store") == LUA_TSTRING)
    rc = lp_runtime_store(r->rt, lua_tostring(L, -1), out, r->rt->err, sizeof r->rt->err);
  lua_pop(L, 1);
  return rc;
}

/* Push the value of output k of node from (0-based), from its result: the
** path of a read-only copy for a file or folder, else the decoded value
** (a cache hit's is read from the store). 1; or 0 with a message in err. */
static int push_output_value(lp_run *r, int from, int k, char *err, size_t errsz) {
  lua_State *L = r->L;
  int res = lua_gettop(L) + 1;
  size_t len;
  const char *bytes;
  lp_store *store = NULL;
  lua_rawgeti(L, r->results, from + 1);
  lua_rawgeti(L, -1, k);
  lua_replace(L, res);
  lua_settop(L, res);
  /* the default output of a step that returned no value: nothing stored,
  ** and nil passed on, as Lua passes a call's missing value */
  if (lua_isnil(L, res)) return 1;
  if (lua_getfield(L, res, "kind") == LUA_TSTRING && lp_versions_is_file(lua_tostring(L, -1))) {
    /* a file or folder: the step gets the path of a read-only copy */
    char path[PATH_MAX];
    lua_getfield(L, res, "hash");
    lua_getfield(L, res, "size");
    if (object_store(r, res, &store) != LUPINE_OK ||
        lp_versions_materialize(r->rt, store, lua_tostring(L, -2), (uint64_t)lua_tointeger(L, -1),
                       path, sizeof path) != LUPINE_OK) {
      snprintf(err, errsz, "%s", r->rt->err);
      lua_settop(L, res - 1);
      return 0;
    }
    lua_settop(L, res - 1);
    lua_pushstring(L, path);
    return 1;
  }
  lua_settop(L, res);
  if (lua_getfield(L, res, "bytes") != LUA_TSTRING) {
    /* a cache hit's output: read it from the store */
    unsigned char *data;
    size_t dlen;
    lua_pop(L, 1);
    lua_getfield(L, res, "hash");
    lua_getfield(L, res, "size");
    if (object_store(r, res, &store) != LUPINE_OK) snprintf(err, errsz, "%s", r->rt->err);
    if (store == NULL ||
        lp_store_get(store, lua_tostring(L, -2), (uint64_t)lua_tointeger(L, -1), &data, &dlen,
                     err, errsz) != LUPINE_OK) {
      lua_settop(L, res - 1);
      return 0;
    }
    lua_settop(L, res);
    lua_pushlstring(L, (const char *)data, dlen);
    free(data);
  }
  bytes = lua_tolstring(L, -1, &len);
  if (lp_codec_decode(L, bytes, len, err, errsz) != LUPINE_OK) {
    lua_settop(L, res - 1);
    return 0;
  }
  lua_replace(L, res);
  lua_settop(L, res);
  return 1;
}

/* Put the value on top (popped) inside the argument at stack index slot,
** at the keys of the input record at stack index input, making the tables
** on the way. */
static void place(lua_State *L, int input, int slot) {
  int nkeys, i;
  lua_getfield(L, input, "keys");
  nkeys = (int)lua_rawlen(L, -1);
  lua_insert(L, -2);
  if (!lua_istable(L, slot)) {
    lua_newtable(L);
    lua_replace(L, slot);
  }
  lua_pushvalue(L, slot);
  /* stack: ..., keys, value, table */
  for (i = 1; i < nkeys; i++) {
    lua_rawgeti(L, -3, i);
    if (lua_rawget(L, -2) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_rawgeti(L, -4, i);
      lua_pushvalue(L, -2);
      lua_rawset(L, -4);
    }
    lua_remove(L, -2);
  }
  lua_rawgeti(L, -3, nkeys);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 3);
}

/*
** The work of one step: push its arguments (parameters, with its inputs
** put in), call it (as spec.invoke(node, step run id, run id, run name,
** seed, arguments...), which gives the step its context and seeds its
** random numbers), encode its outputs.
** On success leaves a table on the stack: the outputs' CBOR bytes at 1..n,
** their data types at n+1..2n, and `extras` (per output: tags and
** metadata rows) from invoke; returns 1. On failure leaves message and
** traceback (or nil) and returns 0.
** stack in: ..., node, parameters (decoded copy of the step's parameters)
*/
int lp_step_work(lp_run *r, int node, const char *step_run_id) {
  lua_State *L = r->L;
  int nodeidx = lua_gettop(L) - 1, params = nodeidx + 1;
  int base, first, nargs, k, nret, nout, default_output;
  char err[LP_ERRSZ];
  lp_input_iter it;
  lua_pushcfunction(L, msgh);
  base = lua_gettop(L);
  lp_run_field(L, r->spec, "invoke", LUA_TFUNCTION);
  lp_run_inputs_begin(L, nodeidx, &it);
  nargs = it.nargs;
  luaL_checkstack(L, nargs + 16, "too many step inputs");
  lua_pushinteger(L, node + 1);
  lua_pushstring(L, step_run_id);
  lua_pushstring(L, r->id);
  lua_pushstring(L, r->name);
  if (r->node[node].has_seed) lua_pushinteger(L, (lua_Integer)r->node[node].seed);
  else lua_pushnil(L);
  first = lua_gettop(L) + 1;
  for (k = 1; k <= nargs; k++) {   /* the parameters; then the inputs, in or over them */
    lua_rawgeti(L, it.args, k);
    if (lua_getfield(L, -1, "param") == LUA_TSTRING) lua_rawget(L, params);
    lua_remove(L, -2);
  }
  while (lp_run_inputs_next(L, &it)) {
    int input = lua_gettop(L), ok;
    if (lua_getfield(L, input, "node") == LUA_TNUMBER) {
      lua_getfield(L, input, "output");
      ok = push_output_value(r, (int)lua_tointeger(L, -2) - 1, (int)lua_tointeger(L, -1), err,
                             sizeof err);
      lua_replace(L, input + 1);   /* stack: ..., input, value, output */
      lua_pop(L, 1);
      if (!ok) {   /* its object is gone, or damaged: name the input */
        lua_getfield(L, input, "name");
        lua_pushfstring(L, "input '%s': %s", lua_tostring(L, -1), err);
        snprintf(err, sizeof err, "%s", lua_tostring(L, -1));
        lua_pop(L, 2);
      }
    } else {
      lua_pop(L, 1);
      lp_run_push_version(r, node, it.j, input);
      ok = lua_isstring(L, -1);
      if (ok) lp_versions_load(L, r->rt, lua_tostring(L, -1), 1);
      lua_remove(L, input + 1);
      if (!ok) lp_errf(err, sizeof err, "input %d: no version to read", it.j);
    }
    if (!ok) {
      lua_settop(L, base - 1);
      lp_run_push_error(r, node, err);
      lua_pushnil(L);
      return 0;
    }
    if (it.nested) place(L, input, first + it.arg - 1);
    else lua_replace(L, first + it.arg - 1);
    lua_pop(L, 1);
  }
  lua_remove(L, it.args);
  if (lua_pcall(L, nargs + 5, LUA_MULTRET, base) != LUA_OK) {
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    lua_remove(L, -3);
    lua_remove(L, base);
    /* stack: ..., node, params, message, traceback */
    lua_pushfstring(L, "step '%s' (%s) failed: %s", lp_run_node_str(r, node, "name"),
                    lp_run_node_str(r, node, "where"), lua_tostring(L, -2));
    lua_replace(L, -3);
    return 0;
  }
  /* stack: msgh (base), extras, outputs... */
  nret = lua_gettop(L) - base - 1;
  lp_run_field(L, nodeidx, "outputs", LUA_TTABLE);
  nout = (int)luaL_len(L, -1);
  lua_pop(L, 1);
  lp_run_field(L, nodeidx, "default_output", LUA_TBOOLEAN);
  default_output = lua_toboolean(L, -1);
  lua_pop(L, 1);
  /* a step with the default output that returns no value stores nothing
  ** (`return nil` stores nil) */
  if (nret == 0 && default_output) nout = 0;
  if (nret != nout) {
    lua_settop(L, base - 1);
    if (nout == 0)
      lua_pushfstring(L, "returned %d value%s but declares no outputs", nret,
                      nret == 1 ? "" : "s");
    else
      lua_pushfstring(L, "returned %d value%s but declares %d output%s", nret,
                      nret == 1 ? "" : "s", nout, nout == 1 ? "" : "s");
    lp_run_push_error(r, node, lua_tostring(L, -1));
    lua_remove(L, -2);
    lua_pushnil(L);
    return 0;
  }
  lua_createtable(L, 2 * nout, 1);
  lua_pushvalue(L, base + 1);
  lua_setfield(L, -2, "extras");
  for (k = 1; k <= nout; k++) {
    /* a file or folder the step stored itself: its object, not bytes */
    if (lua_istable(L, base + 1) && lua_rawgeti(L, base + 1, k) == LUA_TTABLE &&
        lua_getfield(L, -1, "stored") == LUA_TTABLE) {
      lua_rawseti(L, -3, k);
      lua_getfield(L, -1, "data_type");
      lua_rawseti(L, -3, nout + k);
      lua_pop(L, 1);
      continue;
    }
    lua_settop(L, base + 2 + nret);
    if (lp_codec_encode(L, base + 1 + k, "value", err, sizeof err) != LUPINE_OK) {
      lp_run_field(L, nodeidx, "outputs", LUA_TTABLE);
      lua_rawgeti(L, -1, k);
      lp_run_field(L, -1, "name", LUA_TSTRING);
      lua_pushfstring(L, "output '%s': %s", lua_tostring(L, -1), err);
      lp_run_push_error(r, node, lua_tostring(L, -1));
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

/* ---- the worker side (runs in the child) ---- */

/* os.exit inside a step: report it as the step's failure, then exit.
** upvalue: the start of the message, "step 'x' (file:line) failed: ". */
static int worker_exit(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  int code = lua_isboolean(L, 1) ? (lua_toboolean(L, 1) ? 0 : 1)
                                 : (int)luaL_optinteger(L, 1, 0);
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, "result");
  lua_setfield(L, -2, "kind");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "ok");
  lua_pushfstring(L, "%scalled os.exit(%d)", lua_tostring(L, lua_upvalueindex(1)), code);
  lua_setfield(L, -2, "error");
  fflush(stdout);
  fflush(stderr);
  lp_wire_send(L, rt->to_parent);
  _exit(code);
  return 0;
}

/* The child's body, as a protected call: lightuserdata run, integer node,
** then the run's spec, nodes, results and values tables, whose stack
** indices in this new frame replace the coordinator's. Pushes the result
** table to send. */
static int child_body(lua_State *L) {
  lp_run *r = lua_touserdata(L, 1);
  int node = (int)lua_tointeger(L, 2), ok;
  char err[LP_ERRSZ];
  size_t plen;
  const char *pbytes;
  lua_settop(L, 6);
  r->spec = 3, r->nodes = 4, r->results = 5, r->values = 6;
  lua_getglobal(L, "os");
  if (lua_istable(L, -1)) {
    lua_pushfstring(L, "step '%s' (%s) failed: ", lp_run_node_str(r, node, "name"),
                    lp_run_node_str(r, node, "where"));
    lua_pushcclosure(L, worker_exit, 1);
    lua_setfield(L, -2, "exit");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 3, "fresh") == LUA_TFUNCTION) {
    /* the step runs in a fresh process (`lupine exec`): spec.fresh writes
    ** its spec, runs it and makes the calls its manifest records */
    lua_pushinteger(L, node + 1);
    lp_run_push_state(r, node);
    lua_pushvalue(L, r->results);
    lua_pushstring(L, r->id);
    lua_pushstring(L, r->name);
    lua_pushstring(L, r->rt->store_id);
    lua_call(L, 6, 1);
    /* nil: it runs in this worker after all (a step kept local on a
    ** stack whose orchestrator runs the others elsewhere) */
    if (!lua_isnil(L, -1)) return 1;
  }
  lua_pop(L, 1);
  lp_run_push(r, node, LP_NODE_PARAMS);
  pbytes = lua_tolstring(L, -1, &plen);
  /* stack: run, node, spec, nodes, results, values, params */
  lua_rawgeti(L, r->nodes, node + 1);
  if (lp_codec_decode(L, pbytes, plen, err, sizeof err) != LUPINE_OK)
    return luaL_error(L, "lupine: parameters do not round-trip (%s)", err);
  ok = lp_step_work(r, node, r->node[node].step_run);
  /* stack: ..., node, params, outs | message, traceback */
  lua_createtable(L, 0, 4);
  lua_pushliteral(L, "result");
  lua_setfield(L, -2, "kind");
  lua_pushboolean(L, ok);
  lua_setfield(L, -2, "ok");
  if (ok) {
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "outs");
  } else {
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "error");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "traceback");
  }
  return 1;
}

/* The result of a worker that failed around its step: (message, run,
** node, nodes) -> result table. The nodes table comes again: child_body
** left r->nodes an index of its own frame, gone now. */
static int child_failure(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  lp_run *r = lua_touserdata(L, 2);
  int node = (int)lua_tointeger(L, 3);
  r->nodes = 4;
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, "result");
  lua_setfield(L, -2, "kind");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "ok");
  lp_run_push_error(r, node, msg ? msg : "failed");
  lua_setfield(L, -2, "error");
  return 1;
}

/* In a worker process, set up by worker.c: run the step, send the result,
** exit. Never returns. */
void lp_step_main(lp_run *r, int node, int to_parent) {
  lua_State *L = r->L;
  int nodes = r->nodes;
  lua_pushcfunction(L, child_body);
  lua_pushlightuserdata(L, r);
  lua_pushinteger(L, node);
  lua_pushvalue(L, r->spec);
  lua_pushvalue(L, r->nodes);
  lua_pushvalue(L, r->results);
  lua_pushvalue(L, r->values);
  if (lua_pcall(L, 6, 1, 0) != LUA_OK) {
    /* a failure around the step, not in it (a missing input object...) */
    lua_pushcfunction(L, child_failure);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, r);
    lua_pushinteger(L, node);
    lua_pushvalue(L, nodes);
    /* if even that fails (memory), the coordinator sees an exit without a
    ** result: this process must never go back into the host's code */
    if (lua_pcall(L, 4, 1, 0) != LUA_OK) _exit(70);
  }
  /* what the step printed goes before its result: the result settles it */
  fflush(stdout);
  fflush(stderr);
  lp_wire_send(L, to_parent);
  _exit(0);
}
