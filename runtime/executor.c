/* SPDX-License-Identifier: MIT */
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
**                 fn = function, default_output = boolean, seed = integer | nil,
**                 outputs = { { name = output, artifact = artifact name }, ... },
**                 args = { { name = param, node = i, output = k }     -- an edge
**                        | { name = param, version = id }            -- a stored version
**                        | { name = param, lookup = artifact name }  -- its latest, at start
**                        | { param = name, value = v | nil,          -- a parameter,
**                            inputs = { { name = "models[1]", keys = { 1 },  -- with inputs
**                                         node = i, output = k | version = id  -- inside it
**                                         | lookup = artifact name }, ... } | nil }, ... },
**                 lookups = true | nil,          -- an input is a lookup (resolved at start)
**                 after = { i, ... } | nil } },                       -- ordering alone
**   fresh = function | nil }   -- LUPINE_EXEC: each step through `lupine exec` (exec.lua)
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "lauxlib.h"
#include "lupine_int.h"

typedef struct pool pool;

typedef struct run {
  lua_State *L;
  lp_runtime *rt;
  int spec, nodes, results, report, waits, versions;   /* stack indices */
  int pendset;          /* stack index: node + 1 -> true while it has a result to record */
  int *order;           /* n ints of working space for record_ready */
  char *line;           /* LINE_CAP + 1 bytes: a printed line for the events (NULL: none) */
  int n;
  lp_graph *graph;
  pool *pool;
  int jobs;             /* workers at most */
  int running;          /* workers alive */
  int retrying;         /* nodes waiting to be tried again */
  int stopping;         /* start nothing new (on_failure = "stop", or interrupted) */
  int failed, interrupted;
  int done;             /* steps settled, for the progress */
  double began;         /* when the run began (events say when from it) */
  double last_tick;     /* when the last event went out (see TICK_MS) */
  double batch_began;   /* when the open transaction began (see commit_batch) */
  double beat_at;       /* when the run's next heartbeat is due (see beat) */
  char id[LP_ID_LEN + 1];
  char name[LP_RUN_NAME_MAX + 1];
  const char *pipeline;
} run;

static int report_get(run *r, int node, const char *k);

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

/* Is the argument record at idx an input (not a parameter, which is
** named by `param` where an input is by `name`)? */
static int is_input(lua_State *L, int idx) {
  int yes = lua_getfield(L, idx, "name") != LUA_TNIL;
  lua_pop(L, 1);
  return yes;
}

/*
** The inputs of a node, in order: each argument that is one, or those
** inside it (its `inputs`). An input's number (j, from 1) keys the version
** its lookup found when the node started (report[node].lookups).
*/
typedef struct input_iter {
  int args;       /* stack index of the node's args table */
  int nargs, k;   /* how many arguments, and the next one to look at (from 1) */
  int i;          /* how many of argument k's inputs were pushed */
  int j;          /* the number of the input last pushed */
  int arg;        /* and the position of its argument */
  int nested;     /* whether it sits inside that argument, at its keys */
} input_iter;

/* Push the args table of the node at nodeidx, to walk its inputs. */
static void inputs_begin(lua_State *L, int nodeidx, input_iter *it) {
  field(L, nodeidx, "args", LUA_TTABLE);
  it->args = lua_gettop(L);
  it->nargs = (int)lua_rawlen(L, it->args);
  it->k = 1;
  it->i = it->j = 0;
}

/* Push the record of the next input and return 1; or return 0, pushing
** nothing, after the last. The caller pops each record, and at the end
** the args table. */
static int inputs_next(lua_State *L, input_iter *it) {
  for (; it->k <= it->nargs; it->k++, it->i = 0) {
    lua_rawgeti(L, it->args, it->k);
    if (it->i == 0 && is_input(L, -1)) {
      it->arg = it->k++;
      it->nested = 0;
      it->j++;
      return 1;
    }
    if (lua_getfield(L, -1, "inputs") == LUA_TTABLE) {
      if (lua_rawgeti(L, -1, ++it->i) == LUA_TTABLE) {
        lua_replace(L, -3);   /* over the argument's record */
        lua_pop(L, 1);
        it->arg = it->k;
        it->nested = 1;
        it->j++;
        return 1;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  return 0;
}

/* While steps run, an event goes out at least this often (a TICK when
** nothing else happens), so that displays can show elapsed times. */
#define TICK_MS 100.0

/* Tell the event callback, if any, what happened (node -1: the run). */
static void emit(run *r, int type, int node, const char *status, const char *detail, double ms,
                 int attempt) {
  lupine_event ev;
  if (r->rt->events == NULL) return;
  memset(&ev, 0, sizeof ev);
  ev.type = type;
  ev.run_id = r->id;
  ev.run = r->name;
  ev.pipeline = r->pipeline;
  ev.step = node >= 0 ? node_str(r, node, "name") : NULL;
  ev.status = status;
  ev.detail = detail;
  ev.ms = ms;
  ev.total = r->n;
  ev.attempt = attempt;
  r->last_tick = now_ms();
  ev.at = r->last_tick - r->began;
  lp_event(r->rt, &ev);
}

/* Raise the runtime's error (the catalog failed: nothing sensible to
** record, since recording is what failed). */
static int fail_hard(run *r) {
  lp_catalog_rollback(r->rt->catalog);
  return lp_raise(r->L, "%s", r->rt->err);
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

/*
** Group commit: the coordinator's writes share one transaction until it has
** been open BATCH_MS and the coordinator would wait, or the run ends. The
** objects they reference are written without syncs, and synced all at once
** before the commit. Workers read the catalog through the coordinator, so
** they see what it has not committed yet.
*/
#define BATCH_MS 10.0

static void commit_batch(run *r) {
  lp_runtime *rt = r->rt;
  if (!lp_catalog_in_transaction(rt->catalog)) return;
  if ((rt->store != NULL && lp_store_sync(rt->store, rt->err, sizeof rt->err) != LUPINE_OK) ||
      lp_catalog_commit(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK)
    fail_hard(r);
}

/* Join the open transaction, or begin one. */
static void join_batch(run *r) {
  if (lp_catalog_in_transaction(r->rt->catalog)) return;
  if (lp_catalog_begin(r->rt->catalog, r->rt->err, sizeof r->rt->err) != LUPINE_OK)
    fail_hard(r);
  r->batch_began = now_ms();
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
                                 lua_tostring(L, -1), -1, r->rt->err,
                                 sizeof r->rt->err) != LUPINE_OK)
    fail_hard(r);
  lua_pop(L, 2);
}

/* Push a failure message for node: "step 'x' (file:line): <what>". */
static void push_step_error(run *r, int node, const char *what) {
  lua_pushfstring(r->L, "step '%s' (%s): %s", node_str(r, node, "name"),
                  node_str(r, node, "where"), what);
}

/* The store holding a result's object (the table at idx): a cache hit's
** output stays in its version's store; others are in the run's. */
static int object_store(run *r, int idx, lp_store **out) {
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
static int push_output_value(run *r, int from, int k, char *err, size_t errsz) {
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
  if (lua_getfield(L, res, "kind") == LUA_TSTRING && lp_is_file_type(lua_tostring(L, -1))) {
    /* a file or folder: the step gets the path of a read-only copy */
    char path[PATH_MAX];
    lua_getfield(L, res, "hash");
    lua_getfield(L, res, "size");
    if (object_store(r, res, &store) != LUPINE_OK ||
        lp_materialize(r->rt, store, lua_tostring(L, -2), (uint64_t)lua_tointeger(L, -1),
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

/* Push the id of the stored version that input j (the table at input) of
** node reads: its own, or the one its lookup found when the node started;
** nil if its lookup found none. */
static void push_version_id(run *r, int node, int j, int input) {
  lua_State *L = r->L;
  if (lua_getfield(L, input, "version") == LUA_TSTRING) return;
  lua_pop(L, 1);
  if (report_get(r, node, "lookups") == LUA_TTABLE) {
    lua_rawgeti(L, -1, j);
    lua_remove(L, -2);
  }
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
static int work(run *r, int node, const char *step_run_id) {
  lua_State *L = r->L;
  int nodeidx = lua_gettop(L) - 1, params = nodeidx + 1;
  int base, first, nargs, k, nret, nout, default_output;
  char err[LP_ERRSZ];
  input_iter it;
  lua_pushcfunction(L, msgh);
  base = lua_gettop(L);
  field(L, r->spec, "invoke", LUA_TFUNCTION);
  inputs_begin(L, nodeidx, &it);
  nargs = it.nargs;
  luaL_checkstack(L, nargs + 16, "too many step inputs");
  lua_pushinteger(L, node + 1);
  lua_pushstring(L, step_run_id);
  lua_pushstring(L, r->id);
  lua_pushstring(L, r->name);
  lua_rawgeti(L, r->report, node + 1);
  lua_getfield(L, -1, "seed");
  lua_remove(L, -2);
  first = lua_gettop(L) + 1;
  for (k = 1; k <= nargs; k++) {   /* the parameters; then the inputs, in or over them */
    lua_rawgeti(L, it.args, k);
    if (lua_getfield(L, -1, "param") == LUA_TSTRING) lua_rawget(L, params);
    lua_remove(L, -2);
  }
  while (inputs_next(L, &it)) {
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
      push_version_id(r, node, it.j, input);
      ok = lua_isstring(L, -1);
      if (ok) lp_load_version(L, r->rt, lua_tostring(L, -1));
      lua_remove(L, input + 1);
      if (!ok) lp_errf(err, sizeof err, "input %d: no version to read", it.j);
    }
    if (!ok) {
      lua_settop(L, base - 1);
      push_step_error(r, node, err);
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
    push_step_error(r, node, lua_tostring(L, -1));
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

/* Push the content hash of stored version id (looked up once per run), or
** nil if there is no such version. */
static void push_version_hash(run *r, const char *id) {
  lua_State *L = r->L;
  if (lua_getfield(L, r->versions, id) == LUA_TSTRING) return;
  lua_pop(L, 1);
  lua_pushstring(L, id);
  if (lp_catalog_query(L, r->rt->catalog, "version_by_id", lua_gettop(L), 1, r->rt->err,
                       sizeof r->rt->err) != LUPINE_OK)
    fail_hard(r);
  if (lua_rawgeti(L, -1, 1) == LUA_TTABLE) lua_getfield(L, -1, "content_hash");
  else lua_pushnil(L);
  /* stack: id, rows, row, hash */
  if (lua_isstring(L, -1)) {
    lua_pushvalue(L, -1);
    lua_setfield(L, r->versions, id);
  }
  lua_replace(L, -4);
  lua_pop(L, 2);
}

/* Push the version id, its seq (nil where not at hand) and its content
** hash that input j (the table at input) of node reads; three nils for a
** default output never stored, or a lookup that found nothing. */
static void push_input(run *r, int node, int j, int input) {
  lua_State *L = r->L;
  if (lua_getfield(L, input, "node") == LUA_TNUMBER) {
    lua_rawgeti(L, r->results, lua_tointeger(L, -1));
    lua_getfield(L, input, "output");
    if (lua_rawget(L, -2) == LUA_TNIL) {   /* a default output never stored */
      lua_pop(L, 3);
      lua_pushnil(L);
      lua_pushnil(L);
      lua_pushnil(L);
      return;
    }
    lua_getfield(L, -1, "id");
    lua_getfield(L, -2, "seq");
    lua_getfield(L, -3, "hash");
    lua_rotate(L, -6, 3);
    lua_pop(L, 3);
    return;
  }
  lua_pop(L, 1);
  push_version_id(r, node, j, input);
  lua_pushnil(L);
  if (lua_isstring(L, -2)) push_version_hash(r, lua_tostring(L, -2));
  else lua_pushnil(L);
}

/* Record the artifact inputs of the node at nodeidx against step_run_id. */
static void link_inputs(run *r, int node, int nodeidx, const char *step_run_id) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  input_iter it;
  inputs_begin(L, nodeidx, &it);
  while (inputs_next(L, &it)) {
    push_input(r, node, it.j, lua_gettop(L));
    /* stack: ..., args, input, version id, seq, hash */
    if (lua_isstring(L, -3)) {
      lua_getfield(L, -4, "name");
      if (lp_catalog_add_input(rt->catalog, step_run_id, lua_tostring(L, -1),
                               lua_tostring(L, -4), (long long)lua_tointeger(L, -3), rt->err,
                               sizeof rt->err) != LUPINE_OK)
        fail_hard(r);
      lua_pop(L, 1);
    }
    lua_pop(L, 4);
  }
  lua_pop(L, 1);
}

/* Record the versions the step's lookups of a latest resolved to: the
** result at outs has them in extras.lookups (artifact name -> version id),
** when it made any. */
static void record_lookups(run *r, int outs, const char *step_run_id) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int top = lua_gettop(L), changes;
  if (lua_getfield(L, outs, "extras") == LUA_TTABLE &&
      lua_getfield(L, -1, "lookups") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, top + 2) != 0) {
      lua_pushstring(L, step_run_id);
      lua_pushvalue(L, -3);
      lua_pushvalue(L, -3);
      if (lp_catalog_write(L, rt->catalog, "add_lookup", lua_gettop(L) - 2, 3, &changes,
                           rt->err, sizeof rt->err) != LUPINE_OK)
        fail_hard(r);
      lua_pop(L, 4);
    }
  }
  lua_settop(L, top);
}

/*
** Store the outputs (table on top: bytes 1..n, data types n+1..2n) and
** record them and the step's completion, in the open transaction (a
** savepoint: a rollback here undoes this step alone).
** Returns 1; or 0 with message and nil pushed if an object cannot be stored.
*/
static int record_success(run *r, int node, const char *step_run_id, int nodeidx) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int outs = lua_gettop(L), nout = (int)luaL_len(L, -1) / 2, k, resnode, specs;
  char written[1024] = "";
  size_t wlen = 0;
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
      push_step_error(r, node, rt->err);
      lua_pushnil(L);
      return 0;
    }
    lua_pop(L, 1);
  }
  join_batch(r);
  if (lp_catalog_savepoint(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK) fail_hard(r);
  for (k = 0; k < nout; k++) {
    if (lua_rawgeti(L, outs, k + 1) == LUA_TSTRING) {
      if (lp_store_keep(rt->store, lua_tostring(L, -1), lua_rawlen(L, -1), &objs[k], rt->err,
                        sizeof rt->err) != LUPINE_OK)
        fail_hard(r);
    } else if (!lp_store_exists(rt->store, objs[k].hash)) {
      /* gc ran between the step's put and now: the file is not here to put again */
      lp_catalog_rollback_savepoint(rt->catalog);
      lua_settop(L, outs - 1);
      lua_pushfstring(L, "output %d: its object %s was removed before it was recorded "
                      "(a gc while the step ran?)", k + 1, objs[k].hash);
      push_step_error(r, node, lua_tostring(L, -1));
      lua_remove(L, -2);
      lua_pushnil(L);
      return 0;
    }
    lua_pop(L, 1);
  }
  /* results[node] = { { bytes = ..., id = ..., version = ... }, ... } */
  lua_createtable(L, nout, 0);
  resnode = lua_gettop(L);
  lua_getfield(L, outs, "extras");
  field(L, nodeidx, "outputs", LUA_TTABLE);
  specs = lua_gettop(L);
  for (k = 0; k < nout; k++) {
    char id[LP_ID_LEN + 1], version[LP_NAME_MAX + 1];
    const char *output;
    long long seq;
    int rc;
    lua_rawgeti(L, specs, k + 1);
    field(L, -1, "name", LUA_TSTRING);
    output = lua_tostring(L, -1);
    lua_rawgeti(L, outs, nout + k + 1);
    if (lua_type(L, specs - 1) == LUA_TTABLE) lua_rawgeti(L, specs - 1, k + 1);
    else lua_pushnil(L);
    rc = lp_record_version(L, rt, specs + 1, lua_istable(L, -1) ? -1 : 0, &objs[k],
                           lua_tostring(L, -2), step_run_id, output, id, version, &seq);
    if (rc == LUPINE_CONSTRAINT) {
      lp_catalog_rollback_savepoint(rt->catalog);
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
    lua_pushinteger(L, (lua_Integer)seq);   /* for the links of the steps that read it */
    lua_setfield(L, -2, "seq");
    lua_pushstring(L, version);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, objs[k].hash);
    lua_setfield(L, -2, "hash");
    lua_pushinteger(L, (lua_Integer)objs[k].size);
    lua_setfield(L, -2, "size");
    lua_rawgeti(L, outs, nout + k + 1);
    lua_setfield(L, -2, "kind");
    lua_rawseti(L, resnode, k + 1);
    field(L, specs + 1, "artifact", LUA_TSTRING);
    append(written, sizeof written, &wlen, "%s%s v%s", k > 0 ? ", " : "",
           lua_tostring(L, -1), version);
    lua_settop(L, specs);
  }
  lua_pop(L, 2);
  lua_rawseti(L, r->results, node + 1);
  record_lookups(r, outs, step_run_id);
  lua_rawgeti(L, r->report, node + 1);
  lua_pushstring(L, written);
  lua_setfield(L, -2, "artifacts");
  lua_pop(L, 1);
  if (lp_catalog_finish_step_run(rt->catalog, step_run_id, "completed", NULL, NULL, nout,
                                 rt->err, sizeof rt->err) != LUPINE_OK ||
      lp_catalog_release(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK)
    fail_hard(r);
  lua_settop(L, outs - 1);
  return 1;
}

/* ---- worker processes ---- */

/* A growable byte buffer owned by the pool (freed by its __gc). */
typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

static int buf_add(buf *b, const char *p, size_t n) {
  if (n == 0) return 0;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *q;
    while (cap < b->len + n) cap *= 2;
    if ((q = realloc(b->p, cap)) == NULL) return -1;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

static void buf_drop(buf *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

/* One worker process running one attempt of one node. */
typedef struct worker {
  pid_t pid;                  /* 0: the slot is free */
  int node;
  int from_child;             /* frames: calls and the result; -1 once closed */
  int to_child;               /* replies to calls */
  int output;                 /* the child's stdout and stderr */
  double deadline;            /* monotonic ms; 0: no timeout */
  int timed_out, got_result;
  int settled;                /* its attempt is settled: the slot waits for its exit */
  buf frames;
  buf line;                   /* the output line being read: at most LINE_CAP bytes */
  buf kept;                   /* this attempt's output for the step run's record */
  size_t room;                /* what the record may still take */
} worker;

/* What a step prints costs the coordinator bounded memory: a line longer
** than LINE_CAP is handed on in pieces, and a step run keeps the first
** OUTPUT_CAP bytes (its attempts together) with a note, the rest only
** streamed to the log. */
#define LINE_CAP (64 * 1024)
#define OUTPUT_CAP (1024 * 1024)
#define SPLIT_NOTE " [line split at 64 KiB]"
#define CUT_NOTE "[output cut at 1 MiB]\n"

#define POOL_MT "lupine.WorkerPool"
#define MAX_JOBS 64
#define POOL_MAX (2 * MAX_JOBS)

struct pool {
  lp_spawner spawner;         /* forks the workers; started by the first */
  int n;
  worker w[];
};

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Ends every worker still alive: the pool is collected when a run ends,
** normally with none left, or when an error unwinds the coordinator. */
static int pool_gc(lua_State *L) {
  pool *p = luaL_checkudata(L, 1, POOL_MT);
  int i;
  for (i = 0; i < p->n; i++) {
    worker *w = &p->w[i];
    if (w->pid > 0) {
      kill(-w->pid, SIGKILL);
      w->pid = 0;
    }
    close_fd(&w->from_child);
    close_fd(&w->to_child);
    close_fd(&w->output);
    free(w->frames.p);
    free(w->line.p);
    free(w->kept.p);
    memset(&w->frames, 0, sizeof w->frames);
    memset(&w->line, 0, sizeof w->line);
    memset(&w->kept, 0, sizeof w->kept);
  }
  lp_spawner_stop(&p->spawner);
  return 0;
}

static pool *pool_push(lua_State *L, int n) {
  pool *p = lua_newuserdatauv(L, sizeof *p + (size_t)n * sizeof(worker), 0);
  int i;
  p->n = n;
  p->spawner.pid = 0;
  for (i = 0; i < n; i++) {
    memset(&p->w[i], 0, sizeof p->w[i]);
    p->w[i].from_child = p->w[i].to_child = p->w[i].output = -1;
  }
  if (luaL_newmetatable(L, POOL_MT)) {
    lua_pushcfunction(L, pool_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, pool_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  return p;
}

/* Frames travel on sockets: a peer that is gone is an error, not SIGPIPE. */
static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* A frame: 4 bytes of length (big-endian), then that many bytes of CBOR. */
static void frame_head(unsigned char head[4], size_t n) {
  head[0] = (unsigned char)(n >> 24);
  head[1] = (unsigned char)(n >> 16);
  head[2] = (unsigned char)(n >> 8);
  head[3] = (unsigned char)n;
}

static int send_frame(int fd, const char *p, size_t n) {
  unsigned char head[4];
  if (n > 0xffffffffu) return -1;
  frame_head(head, n);
  return write_all(fd, (const char *)head, 4) || write_all(fd, p, n) ? -1 : 0;
}

/* Encode the table on top as a frame to fd; pops it. */
static int send_table(lua_State *L, int fd) {
  char err[LP_ERRSZ];
  size_t len;
  const char *bytes;
  int rc;
  if (lp_codec_encode(L, -1, "message", err, sizeof err) != LUPINE_OK) {
    lua_pop(L, 1);
    return -1;
  }
  bytes = lua_tolstring(L, -1, &len);
  rc = send_frame(fd, bytes, len);
  lua_pop(L, 2);
  return rc;
}

/* Length of the complete frame at the start of b, or 0 if incomplete. */
static size_t frame_ready(const buf *b) {
  const unsigned char *h = (const unsigned char *)b->p;
  size_t n;
  if (b->len < 4) return 0;
  n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
  return b->len >= 4 + n ? 4 + n : 0;
}

/* Read one whole frame from fd into b: its length (with the 4 bytes in
** front), or 0 if the peer is gone first or memory runs out. */
static size_t read_frame(int fd, buf *b) {
  char chunk[4096];
  size_t n;
  for (;;) {
    ssize_t k = read(fd, chunk, sizeof chunk);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0 || buf_add(b, chunk, (size_t)k) != 0) return 0;
    if ((n = frame_ready(b)) > 0) return n;
  }
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
  send_table(L, rt->to_parent);
  _exit(code);
  return 0;
}

/* The child's body, as a protected call: lightuserdata run, integer node,
** then the run's spec, nodes, results and report tables, whose stack
** indices in this new frame replace the coordinator's. Pushes the result
** table to send. */
static int child_body(lua_State *L) {
  run *r = lua_touserdata(L, 1);
  int node = (int)lua_tointeger(L, 2), ok;
  char err[LP_ERRSZ];
  size_t plen;
  const char *pbytes;
  lua_settop(L, 6);
  r->spec = 3, r->nodes = 4, r->results = 5, r->report = 6;
  lua_getglobal(L, "os");
  if (lua_istable(L, -1)) {
    lua_pushfstring(L, "step '%s' (%s) failed: ", node_str(r, node, "name"),
                    node_str(r, node, "where"));
    lua_pushcclosure(L, worker_exit, 1);
    lua_setfield(L, -2, "exit");
  }
  lua_pop(L, 1);
  lua_rawgeti(L, r->report, node + 1);
  if (lua_getfield(L, 3, "fresh") == LUA_TFUNCTION) {
    /* the step runs in a fresh process (`lupine exec`): spec.fresh writes
    ** its spec, runs it and makes the calls its manifest records */
    lua_pushinteger(L, node + 1);
    lua_pushvalue(L, 7);
    lua_pushvalue(L, r->results);
    lua_pushstring(L, r->id);
    lua_pushstring(L, r->name);
    lua_pushstring(L, r->rt->store_id);
    lua_call(L, 6, 1);
    return 1;
  }
  lua_pop(L, 1);
  lua_getfield(L, -1, "step_run");
  lua_getfield(L, -2, "params");
  pbytes = lua_tolstring(L, -1, &plen);
  /* stack: run, node, spec, nodes, results, report, report[node], step run id, params */
  lua_rawgeti(L, r->nodes, node + 1);
  if (lp_codec_decode(L, pbytes, plen, err, sizeof err) != LUPINE_OK)
    return luaL_error(L, "lupine: parameters do not round-trip (%s)", err);
  ok = work(r, node, lua_tostring(L, 8));
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
  run *r = lua_touserdata(L, 2);
  int node = (int)lua_tointeger(L, 3);
  r->nodes = 4;
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, "result");
  lua_setfield(L, -2, "kind");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "ok");
  push_step_error(r, node, msg ? msg : "failed");
  lua_setfield(L, -2, "error");
  return 1;
}

/* In the child: run the step, send the result, exit. Never returns. */
static void child_main(run *r, int node, int to_parent, int from_parent, int output) {
  lua_State *L = r->L;
  int i, nodes = r->nodes;
  for (i = 0; i < r->pool->n; i++) {
    close_fd(&r->pool->w[i].from_child);
    close_fd(&r->pool->w[i].to_child);
    close_fd(&r->pool->w[i].output);
  }
  dup2(output, 1);
  dup2(output, 2);
  if (output > 2) close(output);
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* the coordinator, not a handler inherited from the host or a
  ** sanitizer, says what became of a worker that crashed */
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGSEGV, SIG_DFL);
  signal(SIGBUS, SIG_DFL);
  signal(SIGFPE, SIG_DFL);
  signal(SIGILL, SIG_DFL);
  signal(SIGABRT, SIG_DFL);
  lua_sethook(L, NULL, 0, 0);
  fcntl(to_parent, F_SETFD, FD_CLOEXEC);   /* not for programs the step runs */
  fcntl(from_parent, F_SETFD, FD_CLOEXEC);
  lp_runtime_forked(r->rt, to_parent, from_parent);
  lua_pushcfunction(L, child_body);
  lua_pushlightuserdata(L, r);
  lua_pushinteger(L, node);
  lua_pushvalue(L, r->spec);
  lua_pushvalue(L, r->nodes);
  lua_pushvalue(L, r->results);
  lua_pushvalue(L, r->report);
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
  send_table(L, to_parent);
  _exit(0);
}

/*
** A new worker, forked by the spawner from the coordinator as it was when
** the run first needed one: the start frame brings what changed since
** (the node, its step run, seed and parameters, the versions its lookups
** found, the inputs' results); then the step runs as in child_main. fds: to
** the parent, from it, output.
*/
static void worker_start(void *ud, const int fds[3]) {
  run *r = ud;
  lua_State *L = r->L;
  lp_arena arena;   /* lives as long as the worker: this never returns */
  buf b = {NULL, 0, 0};
  char err[LP_ERRSZ];
  size_t n;
  int node, start;
  lp_arena_install(L, &arena);   /* without it, malloc serves the worker */
  n = read_frame(fds[1], &b);
  if (n == 0 || lp_codec_decode(L, b.p + 4, n - 4, err, sizeof err) != LUPINE_OK ||
      !lua_istable(L, -1))
    _exit(73);   /* the coordinator is gone, or out of memory: it reports the exit */
  free(b.p);
  start = lua_gettop(L);
  lua_getfield(L, start, "node");
  node = (int)lua_tointeger(L, -1);
  lua_rawgeti(L, r->report, node + 1);
  lua_getfield(L, start, "step_run");
  lua_setfield(L, -2, "step_run");
  lua_getfield(L, start, "params");
  lua_setfield(L, -2, "params");
  lua_getfield(L, start, "seed");
  lua_setfield(L, -2, "seed");
  lua_getfield(L, start, "lookups");
  lua_setfield(L, -2, "lookups");
  lua_getfield(L, start, "inputs");
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, r->results);
  }
  lua_settop(L, start - 1);
  child_main(r, node, fds[0], fds[1], fds[2]);
}

int lp_worker_send(lua_State *L, int fd) {
  return send_table(L, fd);
}

void lp_worker_main(lua_State *L, lp_runtime *rt, int spec, int results, int report,
                    int to_parent, int output) {
  run r;
  memset(&r, 0, sizeof r);
  r.L = L;
  r.rt = rt;
  r.spec = lua_absindex(L, spec);
  r.results = lua_absindex(L, results);
  r.report = lua_absindex(L, report);
  field(L, r.spec, "nodes", LUA_TTABLE);
  r.nodes = lua_gettop(L);
  r.n = (int)luaL_len(L, r.nodes);
  r.pool = pool_push(L, 0);
  child_main(&r, 0, to_parent, -1, output);
}

int lp_worker_call(lua_State *L, lp_runtime *rt, const char *op, int first, int nargs) {
  buf b = {NULL, 0, 0};
  char err[LP_ERRSZ];
  size_t n;
  int i;
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, "call");
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, op);
  lua_setfield(L, -2, "op");
  lua_createtable(L, nargs, 1);
  for (i = 0; i < nargs; i++) {
    lua_pushvalue(L, first + i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, nargs);
  lua_setfield(L, -2, "n");
  lua_setfield(L, -2, "args");
  if (rt->serve != NULL) return rt->serve(L, rt, op, first, nargs);
  if (send_table(L, rt->to_parent) != 0)
    return luaL_error(L, "lupine: cannot reach the coordinator (%s)", op);
  if ((n = read_frame(rt->from_parent, &b)) == 0) {
    free(b.p);
    return luaL_error(L, "lupine: lost the coordinator during %s", op);
  }
  i = lp_codec_decode(L, b.p + 4, n - 4, err, sizeof err);
  free(b.p);
  if (i != LUPINE_OK) return luaL_error(L, "lupine: bad reply from the coordinator (%s)", err);
  /* reply: { error = message } or { n = count, values... } */
  if (lua_getfield(L, -1, "error") == LUA_TSTRING) return lua_error(L);
  lua_pop(L, 1);
  lua_getfield(L, -1, "n");
  n = (size_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, (int)n, "reply");
  for (i = 1; i <= (int)n; i++) lua_rawgeti(L, -i, i);
  return (int)n;
}

/* ---- the coordinator side ---- */

/* Serve a call a worker made (table on top: { op, args }); reply on fd. */
static void serve_call(run *r, int fd) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int msg = lua_gettop(L), nargs, i, nres = 0, rc = LUPINE_OK;
  const char *op;
  lua_getfield(L, msg, "op");
  op = lua_tostring(L, -1);
  lua_getfield(L, msg, "args");
  lua_getfield(L, -1, "n");
  nargs = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, nargs + 8, "call");
  for (i = 1; i <= nargs; i++) lua_rawgeti(L, msg + 2, i);
  /* stack: msg, op, args, arg1..argn */
  if (op != NULL && strcmp(op, "write") == 0 && nargs >= 1) {
    int changes;
    rc = lp_catalog_write(L, rt->catalog, lua_tostring(L, msg + 3), msg + 4, nargs - 1,
                          &changes, rt->err, sizeof rt->err);
    lua_pushinteger(L, changes);
    nres = 1;
  } else if (op != NULL && strcmp(op, "query") == 0 && nargs >= 1) {
    rc = lp_catalog_query(L, rt->catalog, lua_tostring(L, msg + 3), msg + 4, nargs - 1,
                          rt->err, sizeof rt->err);
    nres = 1;
  } else if (op != NULL && strcmp(op, "list") == 0 && nargs >= 2) {
    int top = lua_gettop(L);
    rc = lp_catalog_list(L, rt->catalog, lua_tostring(L, msg + 3), msg + 4,
                         nargs >= 3 ? lua_tostring(L, msg + 5) : NULL, rt->err, sizeof rt->err);
    nres = lua_gettop(L) - top;
  } else if (op != NULL && strcmp(op, "save") == 0 && nargs >= 6) {
    commit_batch(r);   /* it makes a transaction of its own */
    nres = lp_save_bytes(L, rt, msg + 3);
    rc = nres < 0 ? LUPINE_ERROR : LUPINE_OK;
  } else {
    lp_errf(rt->err, sizeof rt->err, "lupine: unknown call '%s' from a worker", op ? op : "?");
    rc = LUPINE_MISUSE;
  }
  if (rc != LUPINE_OK) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, rt->err);
    lua_setfield(L, -2, "error");
  } else {
    int res0 = lua_gettop(L) - nres;
    lua_createtable(L, nres, 1);
    for (i = 1; i <= nres; i++) {
      lua_pushvalue(L, res0 + i);
      lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, nres);
    lua_setfield(L, -2, "n");
  }
  send_table(L, fd);
  lua_settop(L, msg - 1);
}
/* Tell the log and the events a step is settled: a line saying how, and
** the progress. */
static void step_done(run *r, int node) {
  lua_State *L = r->L;
  const char *status, *what;
  char took[24];
  int top = lua_gettop(L);
  lp_log(r->rt, LUPINE_LOG_PROGRESS, "%d %d", ++r->done, r->n);
  lua_rawgeti(L, r->report, node + 1);
  lua_getfield(L, -1, "status");
  lua_getfield(L, -2, "ms");
  lua_getfield(L, -3, "artifacts");
  lua_getfield(L, -4, "error");
  status = lua_tostring(L, -4);
  what = lua_isstring(L, -1) ? lua_tostring(L, -1) : lua_tostring(L, -2);
  emit(r, LUPINE_EVENT_STEP_END, node, status, what, lua_tonumber(L, -3), 0);
  lp_duration(lua_tonumber(L, -3), took, sizeof took);
  if (status != NULL && (strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
                         strcmp(status, "stopped") == 0))
    lp_log(r->rt, LUPINE_LOG_INFO, "step '%s' %s %s %s%s%.*s", node_str(r, node, "name"),
           status, strcmp(status, "stopped") == 0 ? "after" : "in", took,
           what != NULL && *what ? ": " : "", what != NULL ? (int)strcspn(what, "\n") : 0,
           what != NULL ? what : "");
  else
    lp_log(r->rt, LUPINE_LOG_INFO, "step '%s' %s%s%s", node_str(r, node, "name"),
           status ? status : "settled", what != NULL && *what ? ": " : "",
           what != NULL ? what : "");
  lua_settop(L, top);
}

/* The skipped steps still get a step run, so the run shows every step. */
static void record_skipped(run *r, int node) {
  char id[LP_ID_LEN + 1];
  lp_runtime *rt = r->rt;
  if (lp_catalog_create_step_run(rt->catalog, r->id, node_str(r, node, "name"),
                                 node_str(r, node, "step"), "skipped", NULL, 0, NULL, NULL,
                                 NULL, id, rt->err, sizeof rt->err) != LUPINE_OK)
    fail_hard(r);
  lua_rawgeti(r->L, r->report, node + 1);
  lua_pushliteral(r->L, "skipped");
  lua_setfield(r->L, -2, "status");
  lua_pop(r->L, 1);
  step_done(r, node);
}

/* Record which process runs the run, on which machine (in the transaction
** that creates it: a run without one could never be told dead). */
static int record_process(run *r) {
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
  r->beat_at = now_ms() + lp_dead_after() * 250.0;
  return rc;
}

/* The run's heartbeat, when due, in the open batch: a process on another
** machine looking at the catalog then knows the run is alive. */
static void beat(run *r, double now) {
  int changes;
  if (now < r->beat_at) return;
  join_batch(r);
  lua_pushstring(r->L, r->id);
  if (lp_catalog_write(r->L, r->rt->catalog, "run_heartbeat", lua_gettop(r->L), 1, &changes,
                       r->rt->err, sizeof r->rt->err) != LUPINE_OK)
    fail_hard(r);
  lua_pop(r->L, 1);
  r->beat_at = now + lp_dead_after() * 250.0;
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

/* Count node i's dependencies (1-based), or add them to the graph (g not
** NULL): the nodes whose outputs it reads, and those it runs after. */
static int dependencies(run *r, int i, lp_graph *g) {
  lua_State *L = r->L;
  int n = 0, k;
  input_iter it;
  lua_rawgeti(L, r->nodes, i);
  inputs_begin(L, lua_gettop(L), &it);
  while (inputs_next(L, &it)) {
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
static void plan(run *r) {
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
      lua_pushfstring(L, "%s'%s'", i > 0 ? " -> " : "", node_str(r, cycle[i % len], "name"));
      luaL_addvalue(&b);
    }
    luaL_addstring(&b, " form a cycle (each runs after the one before it)");
    luaL_pushresult(&b);
    lua_error(L);
  }
  lua_pop(L, 1);
}

/* The terminal columns of a step's name. */
static int name_width(run *r, int node) {
  const char *name = node_str(r, node, "name");
  return (int)lp_text_width(name, strlen(name), 0, NULL);
}

/* Log the run's summary: a line for the run, then one message of a line
** per step (one write for the table, however long). The names' column is
** as wide as the widest name (in terminal columns: CJK names take two a
** character), so that the columns after it line up. */
static void summarize(run *r, const char *status, double ms) {
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
    lua_rawgeti(L, r->report, i + 1);
    lua_getfield(L, -1, "status");
    lua_getfield(L, -2, "ms");
    lua_getfield(L, -3, "artifacts");
    lua_getfield(L, -4, "error");
    lp_duration(lua_tonumber(L, -3), took, sizeof took);
    snprintf(line, sizeof line, "%s  %s%*s %-10s %11s  %s", i > 0 ? "\n" : "",
             node_str(r, i, "name"), width - name_width(r, i), "", lua_tostring(L, -4), took,
             lua_isstring(L, -1) ? lua_tostring(L, -1)
                                 : lua_isstring(L, -2) ? lua_tostring(L, -2) : "");
    lua_pop(L, 5);
    luaL_addstring(&b, line);
  }
  luaL_pushresult(&b);
  lp_log_text(r->rt, LUPINE_LOG_INFO, lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* Number field k of node's spec, or dflt. */
static double node_num(run *r, int node, const char *k, double dflt) {
  double v;
  lua_rawgeti(r->L, r->nodes, node + 1);
  lua_getfield(r->L, -1, k);
  v = lua_isnumber(r->L, -1) ? lua_tonumber(r->L, -1) : dflt;
  lua_pop(r->L, 2);
  return v;
}

/* Set report[node][k] to the value on top (popped). */
static void report_set(run *r, int node, const char *k) {
  lua_rawgeti(r->L, r->report, node + 1);
  lua_insert(r->L, -2);
  lua_setfield(r->L, -2, k);
  lua_pop(r->L, 1);
}

/* Push report[node][k]. */
static int report_get(run *r, int node, const char *k) {
  int t;
  lua_rawgeti(r->L, r->report, node + 1);
  t = lua_getfield(r->L, -1, k);
  lua_remove(r->L, -2);
  return t;
}

/* Set (table on top, popped) or clear (nil on top) node's result to
** record, keeping the set of nodes that have one. */
static void set_pending(run *r, int node) {
  lua_State *L = r->L;
  lua_pushboolean(L, lua_istable(L, -1));
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  lua_rawseti(L, r->pendset, node + 1);
  report_set(r, node, "pending");
}

/* Stash a failure (message on top, popped) as node's outcome. */
static void stash_failure(run *r, int node) {
  lua_State *L = r->L;
  lua_createtable(L, 0, 2);
  lua_insert(L, -2);
  lua_setfield(L, -2, "error");
  set_pending(r, node);
}

/* ---- the cache ---- */

/* Push node's cache parts (parameters table at params): what its cache key
** is the hash of. See runtime/README.md, "Caching". */
static void push_cache_parts(run *r, int node, int nodeidx, int params) {
  lua_State *L = r->L;
  char err[LP_ERRSZ], hash[LP_HASH_STRLEN + 1];
  input_iter it;
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
      lp_hash_bytes(lua_tostring(L, -1), lua_rawlen(L, -1), hash);
      lua_pushvalue(L, -3);
      lua_pushstring(L, hash);
      lua_rawset(L, -6);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_setfield(L, parts, "params");
  lua_newtable(L);   /* input name -> content hash */
  inputs_begin(L, nodeidx, &it);
  while (inputs_next(L, &it)) {
    push_input(r, node, it.j, lua_gettop(L));
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
static int stale_lookup(run *r, int id, int rows) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int top = lua_gettop(L);
  const char *name, *was, *latest;
  lua_rawgeti(L, rows, 1);
  if (lua_getfield(L, -1, "lookups") == LUA_TNIL) {
    lua_settop(L, top);
    return 0;
  }
  if (lp_catalog_query(L, rt->catalog, "stale_lookups", id, 1, rt->err, sizeof rt->err) !=
      LUPINE_OK)
    fail_hard(r);
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

/*
** Look for a completed step run with this cache key whose outputs are all
** still stored, and whose lookups would find what they found then
** (stale_lookup). On a hit push its id and its rows (one per output link,
** each with the run's seed; one without a name if it has none) and return
** 1; else push why not (a string) and return 0.
** stack in: ..., node (nodeidx), parameters, parts, key
*/
static int find_hit(run *r, int node, int nodeidx) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int top = lua_gettop(L), k, nout, missing = 0;
  if (lp_catalog_query(L, rt->catalog, "cache_hit", top, 1, rt->err, sizeof rt->err) != LUPINE_OK)
    fail_hard(r);
  if (lua_rawgeti(L, top + 1, 1) == LUA_TTABLE) {
    lua_getfield(L, top + 2, "step_run");
    lua_insert(L, top + 1);
    /* stack: id, rows, row 1: every declared output among the step's own
    ** outputs, unless its step returned no value (it stored none) */
    lua_getfield(L, top + 3, "output_count");
    nout = lua_isinteger(L, -1) && lua_tointeger(L, -1) == 0 ? 0 : -1;
    lua_settop(L, top + 2);
    if (nout != 0) {
      field(L, nodeidx, "outputs", LUA_TTABLE);
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
  lua_settop(L, top);
  /* say what changed since the latest earlier run of this step */
  field(L, r->spec, "explain", LUA_TFUNCTION);
  lua_pushstring(L, r->pipeline);
  lua_pushstring(L, node_str(r, node, "name"));
  lua_pushstring(L, r->id);
  if (lp_catalog_query(L, rt->catalog, "previous_step_run", top + 2, 3, rt->err,
                       sizeof rt->err) != LUPINE_OK)
    fail_hard(r);
  lua_rawgeti(L, -1, 1);
  lua_replace(L, top + 2);
  lua_settop(L, top + 2);
  if (lua_istable(L, -1)) lua_getfield(L, -1, "cache_parts"), lua_replace(L, -2);
  lua_pushvalue(L, top - 1);   /* this run's parts */
  if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
    lua_settop(L, top);
    lua_pushliteral(L, "no step run with the same cache key completed");
  }
  return 0;
}

/* Record node as a cache hit of the step run (id, output rows on top,
** below them: node, parameters and their bytes, parts, key). Pops both. */
static void record_hit(run *r, int node, int nodeidx, const char *pbytes, size_t plen) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  char step_run_id[LP_ID_LEN + 1], written[1024] = "";
  size_t wlen = 0;
  int rows = lua_gettop(L), i, k, nout, own;
  long long seed;
  double t0 = now_ms();
  /* the seed of the step run it reuses: what made the outputs it gets */
  lua_rawgeti(L, rows, 1);
  lua_getfield(L, -1, "seed");
  seed = (long long)lua_tointeger(L, -1);
  join_batch(r);
  if (lp_catalog_create_step_run(rt->catalog, r->id, node_str(r, node, "name"),
                                 node_str(r, node, "step"), "cached", pbytes, plen,
                                 lua_tostring(L, rows - 2), lua_tostring(L, rows - 1),
                                 lua_isinteger(L, -1) ? &seed : NULL, step_run_id, rt->err,
                                 sizeof rt->err) != LUPINE_OK)
    fail_hard(r);
  lua_settop(L, rows);
  link_inputs(r, node, nodeidx, step_run_id);
  lua_rawgeti(L, rows, 1);
  if (lua_getfield(L, -1, "lookups") != LUA_TNIL) {
    /* the lookups its outputs depend on, carried over (sr.lookups; the
    ** next run's find_hit checks those of the completed step run again) */
    int changes;
    lua_pushstring(L, step_run_id);
    lua_pushvalue(L, rows - 1);
    if (lp_catalog_write(L, rt->catalog, "copy_lookups", lua_gettop(L) - 1, 2, &changes,
                         rt->err, sizeof rt->err) != LUPINE_OK)
      fail_hard(r);
  }
  lua_settop(L, rows);
  /* the output links, every one the reused step run has (what its step
  ** saved by hand too), and results[node] in declared order from its own
  ** outputs (find_hit found one for each, unless its step returned none) */
  field(L, nodeidx, "outputs", LUA_TTABLE);
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
      fail_hard(r);
    lua_settop(L, row);
    own = own_output(L);
    for (i = 1; own && i <= nout; i++) {
      lua_rawgeti(L, rows + 1, i);
      field(L, -1, "name", LUA_TSTRING);
      lua_getfield(L, row, "name");
      if (lua_rawequal(L, -1, -2)) {
        lua_createtable(L, 0, 7);
        lua_getfield(L, row, "id");
        lua_setfield(L, -2, "id");
        lua_getfield(L, row, "seq");
        lua_setfield(L, -2, "seq");
        lua_getfield(L, row, "version");
        lua_setfield(L, -2, "version");
        lua_getfield(L, row, "content_hash");
        lua_setfield(L, -2, "hash");
        lua_getfield(L, row, "size");
        lua_setfield(L, -2, "size");
        lua_getfield(L, row, "data_type");
        lua_setfield(L, -2, "kind");
        lua_getfield(L, row, "artifact_store_id");
        lua_setfield(L, -2, "store");
        lua_rawseti(L, rows + 2, i);
        lua_getfield(L, row, "artifact");
        lua_getfield(L, row, "version");
        append(written, sizeof written, &wlen, "%s%s v%s", wlen > 0 ? ", " : "",
               lua_tostring(L, -2), lua_tostring(L, -1));
      }
      lua_settop(L, row);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_rawseti(L, r->results, node + 1);
  lua_settop(L, rows - 2);
  lua_pushstring(L, step_run_id);
  report_set(r, node, "step_run");
  lua_pushnumber(L, now_ms() - t0);
  report_set(r, node, "ms");
  lua_pushliteral(L, "cached");
  report_set(r, node, "status");
  lua_pushboolean(L, 1);
  report_set(r, node, "recorded");
  lp_graph_finish(r->graph, node, 1);
  lua_pushstring(L, written);
  report_set(r, node, "artifacts");
  step_done(r, node);
  lua_pushfstring(L, "%s (cached)", written);
  report_set(r, node, "artifacts");
}

/* Push node's start frame (see worker_start), its 4 bytes of length in
** front; or nil if it cannot be encoded. */
static void push_start(run *r, int node) {
  lua_State *L = r->L;
  char err[LP_ERRSZ];
  unsigned char head[4];
  size_t n;
  input_iter it;
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, node);
  lua_setfield(L, -2, "node");
  report_get(r, node, "step_run");
  lua_setfield(L, -2, "step_run");
  report_get(r, node, "seed");
  lua_setfield(L, -2, "seed");
  report_get(r, node, "params");
  lua_setfield(L, -2, "params");
  report_get(r, node, "lookups");
  lua_setfield(L, -2, "lookups");
  lua_newtable(L);
  lua_rawgeti(L, r->nodes, node + 1);
  inputs_begin(L, lua_gettop(L), &it);
  while (inputs_next(L, &it)) {
    if (lua_getfield(L, -1, "node") == LUA_TNUMBER) {
      lua_Integer from = lua_tointeger(L, -1);
      lua_rawgeti(L, r->results, from);
      lua_rawseti(L, -6, from);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 2);
  lua_setfield(L, -2, "inputs");
  if (lp_codec_encode(L, -1, "message", err, sizeof err) != LUPINE_OK ||
      (n = lua_rawlen(L, -1)) > 0xffffffffu) {
    lua_settop(L, lua_gettop(L) - 1);
    lua_pushnil(L);
    return;
  }
  frame_head(head, n);
  lua_pushlstring(L, (const char *)head, 4);
  lua_insert(L, -2);
  lua_concat(L, 2);
  lua_replace(L, -2);
}

/* A slot of the pool with no worker, or -1. */
static int free_slot(run *r) {
  int i;
  for (i = 0; i < r->pool->n; i++)
    if (r->pool->w[i].pid == 0) return i;
  return -1;
}

/* How many workers are settled but not yet gone. */
static int ending(run *r) {
  int i, n = 0;
  for (i = 0; i < r->pool->n; i++) n += r->pool->w[i].pid != 0 && r->pool->w[i].settled;
  return n;
}

static int can_start(run *r) {
  return r->running < r->jobs && free_slot(r) >= 0;
}

/* Resolve the lookups of node (at nodeidx) that no step of the run
** answers, now that it starts: report[node].lookups[j] is the id of the
** latest version of input j's artifact. 1; or 0 with the message in err
** when an artifact has no version. */
static int resolve_lookups(run *r, int node, int nodeidx, char *err, size_t errsz) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int top = lua_gettop(L), ok = 1;
  input_iter it;
  lua_pushnil(L);   /* top + 1: the lookups, once there is one */
  inputs_begin(L, nodeidx, &it);
  while (ok && inputs_next(L, &it)) {
    if (lua_getfield(L, top + 3, "lookup") == LUA_TSTRING) {
      if (lp_catalog_query(L, rt->catalog, "latest_version", top + 4, 1, rt->err,
                           sizeof rt->err) != LUPINE_OK)
        fail_hard(r);
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
          report_set(r, node, "lookups");
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

/* Start node: record its step run and hand it to a worker. Returns 1. */
static int start_node(run *r, int node) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  char step_run_id[LP_ID_LEN + 1], err[LP_ERRSZ];
  int top = lua_gettop(L), nodeidx, nargs, k, ok, found;
  long long seed;
  size_t plen = 0, frame_len = 0;
  const char *pbytes = NULL, *frame = NULL;
  pid_t pid;
  worker *w;
  if (report_get(r, node, "step_run") == LUA_TSTRING) {   /* a retry */
    snprintf(step_run_id, sizeof step_run_id, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    ok = 1;
  } else {
    lua_pop(L, 1);
    lua_pushnumber(L, now_ms());
    report_set(r, node, "started");
    lua_rawgeti(L, r->nodes, node + 1);
    nodeidx = lua_gettop(L);
    lua_getfield(L, nodeidx, "lookups");
    found = !lua_toboolean(L, -1) || resolve_lookups(r, node, nodeidx, err, sizeof err);
    lua_pop(L, 1);
    /* The parameters: what the arguments hold besides inputs, by name. */
    lua_newtable(L);
    field(L, nodeidx, "args", LUA_TTABLE);
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
      push_cache_parts(r, node, nodeidx, nodeidx + 1);
      if (lp_codec_encode(L, -1, "parts", err, sizeof err) != LUPINE_OK)
        return luaL_error(L, "lupine: cache parts (%s)", err);
      lp_hash_bytes(lua_tostring(L, -1), lua_rawlen(L, -1), key);
      lua_replace(L, -2);   /* the parts' bytes replace the table */
      lua_pushstring(L, key);
      /* stack: node, parameters, bytes, parts, key */
      lua_getfield(L, nodeidx, "enable_cache");
      if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        lua_pushliteral(L, "caching is off for this step");
      } else {
        lua_pop(L, 1);
        if (find_hit(r, node, nodeidx)) {
          record_hit(r, node, nodeidx, pbytes, plen);
          lua_settop(L, top);
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
    seed = lua_isinteger(L, -1) ? (long long)lua_tointeger(L, -1) : lp_random_seed();
    lua_pushinteger(L, (lua_Integer)seed);
    report_set(r, node, "seed");
    lua_pop(L, 1);
    /* the step run, its inputs (so a step that fails shows what it took) and
    ** why it is not a cache hit, committed with what came before it */
    join_batch(r);
    if (lp_catalog_create_step_run(rt->catalog, r->id, node_str(r, node, "name"),
                                   node_str(r, node, "step"), "running", pbytes, plen,
                                   NULL, NULL, &seed, step_run_id, rt->err,
                                   sizeof rt->err) != LUPINE_OK)
      fail_hard(r);
    link_inputs(r, node, nodeidx, step_run_id);
    {
      int changes;
      lua_pushstring(L, step_run_id);
      lua_pushvalue(L, nodeidx + 4);
      lua_pushvalue(L, nodeidx + 3);
      lua_pushvalue(L, nodeidx + 5);
      if (lp_catalog_write(L, rt->catalog, "step_cache", lua_gettop(L) - 3, 4, &changes,
                           rt->err, sizeof rt->err) != LUPINE_OK)
        fail_hard(r);
      lua_settop(L, nodeidx + 2);
    }
    lua_pushvalue(L, -1);
    report_set(r, node, "params");
    lua_pushstring(L, step_run_id);
    report_set(r, node, "step_run");
    lp_log(rt, LUPINE_LOG_DEBUG, "step '%s' started", node_str(r, node, "name"));
    if (!ok) {
      push_step_error(r, node, err);
      stash_failure(r, node);
    }
    lua_settop(L, top);
  }
  if (!ok) return 1;
  report_get(r, node, "attempts");
  lua_pushinteger(L, lua_tointeger(L, -1) + 1);
  report_set(r, node, "attempts");
  lua_pop(L, 1);
  w = &r->pool->w[free_slot(r)];
  if (r->pool->spawner.pid == 0) {
    /* it keeps a copy of this process: of its catalog connection too,
    ** which must not be in a transaction there */
    commit_batch(r);
    fflush(stdout);
    fflush(stderr);
    if (lp_spawner_start(&r->pool->spawner, worker_start, r, err, sizeof err) != LUPINE_OK) {
      lua_pushstring(L, err);
      goto failed;
    }
  }
  /* encoded before a worker is taken: an error here leaks nothing */
  push_start(r, node);
  if (lua_isnil(L, -1)) {
    lua_pushliteral(L, "its inputs cannot be sent to its worker");
    goto failed;
  }
  {
    int fds[3], e = lp_spawner_spawn(&r->pool->spawner, fds, &pid);
    if (e != 0) {
      errno = e;
      goto nopipe;
    }
    fcntl(fds[2], F_SETFL, O_NONBLOCK);
    w->from_child = fds[0];
    w->to_child = fds[1];
    w->output = fds[2];
  }
  w->pid = pid;
  w->node = node;
  w->timed_out = w->got_result = w->settled = 0;
  w->frames.len = w->line.len = w->kept.len = 0;
  if (report_get(r, node, "output") == LUA_TSTRING)   /* what earlier attempts printed */
    w->room = lua_rawlen(L, -1) < OUTPUT_CAP ? OUTPUT_CAP - lua_rawlen(L, -1) : 0;
  else w->room = OUTPUT_CAP;
  lua_pop(L, 1);
  {
    /* math.huge: no timeout (a deadline that far is never reached anyway) */
    double timeout = node_num(r, node, "timeout", 0);
    w->deadline = timeout > 0 && timeout < HUGE_VAL ? now_ms() + timeout * 1e3 : 0;
  }
  r->running++;
  /* the worker waits for this; one that died waiting is reported by its exit */
  frame = lua_tolstring(L, -1, &frame_len);
  write_all(w->to_child, frame, frame_len);
  lua_settop(L, top);
  report_get(r, node, "attempts");
  emit(r, LUPINE_EVENT_STEP_START, node, NULL, NULL, 0, (int)lua_tointeger(L, -1));
  lua_pop(L, 1);
  return 1;
nopipe:
  lua_pushfstring(L, "cannot start a worker process (%s)", strerror(errno));
failed:
  push_step_error(r, node, lua_tostring(L, -1));
  lua_remove(L, -2);
  stash_failure(r, node);
  lua_settop(L, top);
  return 1;
}

/* Start what may start: retries that are due, then ready nodes, up to the
** job limit (and while a slot is free: the workers still ending hold
** theirs). Returns how many were started (or failed to start). */
static int start_ready(run *r) {
  int started = 0, node;
  double now = now_ms();
  if (r->stopping) return 0;
  for (node = 0; r->retrying > 0 && node < r->n && can_start(r); node++) {
    if (report_get(r, node, "retry_at") == LUA_TNUMBER && lua_tonumber(r->L, -1) <= now) {
      lua_pushnil(r->L);
      report_set(r, node, "retry_at");
      r->retrying--;
      started += start_node(r, node);
    }
    lua_pop(r->L, 1);
  }
  while (can_start(r) && (node = lp_graph_next(r->graph)) >= 0)
    started += start_node(r, node);
  return started;
}

/* Keep n bytes at p for the record, as far as there is room. */
static void keep(worker *w, const char *p, size_t n) {
  if (n > w->room) n = w->room;
  if (buf_add(&w->kept, p, n) != 0) n = w->room;   /* out of memory: keep no more */
  w->room -= n;
}

/* Hand a line of the worker's output (without its newline) to the log and
** keep it for the record; split: a LINE_CAP piece of a longer line. */
static void output_line(run *r, worker *w, const char *p, size_t n, int split) {
  lp_log(r->rt, LUPINE_LOG_OUTPUT, "[%s] %.*s", node_str(r, w->node, "name"), (int)n, p);
  if (r->line != NULL) {   /* the line with a NUL after it, in memory of the run's own */
    size_t m = n < LINE_CAP ? n : LINE_CAP;
    memcpy(r->line, p, m);
    r->line[m] = '\0';
    emit(r, LUPINE_EVENT_OUTPUT, w->node, NULL, r->line, 0, 0);
  }
  if (w->room == 0) return;
  keep(w, p, n);
  if (split) keep(w, SPLIT_NOTE, sizeof SPLIT_NOTE - 1);
  keep(w, "\n", 1);
  if (w->room > 0) return;
  if (w->kept.len > 0 && w->kept.p[w->kept.len - 1] != '\n') buf_add(&w->kept, "\n", 1);
  buf_add(&w->kept, CUT_NOTE, sizeof CUT_NOTE - 1);
}

/* Add what the worker kept of its output to the step run's record. */
static void keep_output(run *r, worker *w) {
  lua_State *L = r->L;
  if (w->kept.len == 0) return;
  if (report_get(r, w->node, "output") != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushliteral(L, "");
  }
  lua_pushlstring(L, w->kept.p, w->kept.len);
  lua_concat(L, 2);
  report_set(r, w->node, "output");
  w->kept.len = 0;
}

/* A partial last line the worker printed, as a line of its own. */
static void flush_line(run *r, worker *w) {
  if (w->line.len > 0) output_line(r, w, w->line.p, w->line.len, 0);
  w->line.len = 0;
}

/* Read what the child printed, at most 1 MiB a call, so that a step that
** prints without pause does not hold up the others (poll says when there
** is more); at end of file flush a last partial line. */
static void read_output(run *r, worker *w) {
  char chunk[65536];
  int reads;
  for (reads = 0; reads < 16; reads++) {
    ssize_t k = read(w->output, chunk, sizeof chunk);
    const char *p = chunk, *end = chunk + (k > 0 ? k : 0);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return;   /* EAGAIN: nothing more now */
    if (k == 0) {
      flush_line(r, w);
      close_fd(&w->output);
      return;
    }
    while (p < end) {
      /* a newline within room + 1 bytes ends a line of at most LINE_CAP */
      size_t room = LINE_CAP - w->line.len, left = (size_t)(end - p);
      const char *nl = memchr(p, '\n', left < room + 1 ? left : room + 1);
      size_t n = nl != NULL ? (size_t)(nl - p) : left > room ? room : left;
      if (nl == NULL && left <= room) {   /* the line goes on in the next read */
        buf_add(&w->line, p, n);
        break;
      }
      if (w->line.len > 0) {
        buf_add(&w->line, p, n);
        output_line(r, w, w->line.p, w->line.len, nl == NULL);
        w->line.len = 0;
      } else output_line(r, w, p, n, nl == NULL);
      p += n + (nl != NULL);
    }
  }
}

/* Read frames from the child: serve its calls, keep its result. */
static void read_frames(run *r, worker *w) {
  lua_State *L = r->L;
  char chunk[65536], err[LP_ERRSZ];
  size_t n;
  ssize_t k = read(w->from_child, chunk, sizeof chunk);
  if (k < 0 && errno == EINTR) return;
  if (k <= 0) {
    close_fd(&w->from_child);
    return;
  }
  if (buf_add(&w->frames, chunk, (size_t)k) != 0) {
    kill(w->pid, SIGKILL);   /* out of memory: give up on this worker */
    return;
  }
  while ((n = frame_ready(&w->frames)) > 0) {
    if (lp_codec_decode(L, w->frames.p + 4, n - 4, err, sizeof err) == LUPINE_OK &&
        lua_istable(L, -1)) {
      lua_getfield(L, -1, "kind");
      if (strcmp(luaL_optstring(L, -1, ""), "call") == 0) {
        lua_pop(L, 1);
        serve_call(r, w->to_child);
      } else {
        lua_pop(L, 1);
        w->got_result = 1;
        report_set(r, w->node, "result");   /* pending once the process is reaped */
      }
    } else lua_settop(L, lua_gettop(L) - (lua_gettop(L) > 0));
    buf_drop(&w->frames, n);
  }
}

/* Name a signal for a person. */
static const char *signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "segmentation fault";
    case SIGBUS: return "bus error";
    case SIGABRT: return "abort";
    case SIGFPE: return "floating-point exception";
    case SIGILL: return "illegal instruction";
    case SIGKILL: return "killed";
    case SIGTERM: return "terminated";
    case SIGINT: return "interrupted";
    default: return "signal";
  }
}

void lp_worker_ended(lua_State *L, int status, int timed_out, double timeout, int lost) {
  if (timed_out) {
    char secs[32];
    snprintf(secs, sizeof secs, "%g", timeout);
    lua_pushfstring(L, "ran past its timeout of %s s and was stopped", secs);
  }
  else if (lost)
    lua_pushliteral(L, "its process ended and its status is unknown");
  else if (WIFSIGNALED(status))
    lua_pushfstring(L, "its process %s (%s, signal %d)",
                    WTERMSIG(status) == SIGKILL ? "was killed" : "crashed",
                    signal_name(WTERMSIG(status)), WTERMSIG(status));
  else
    lua_pushfstring(L, "its process exited with status %d before the step returned",
                    WEXITSTATUS(status));
}

/*
** Settle the worker's attempt: its result when it sent one (the step's
** output is in by then: the worker flushes it before the result), else
** what became of its process (status, or lost: no status will come). A
** failure is tried again while retries remain.
*/
static void settle(run *r, worker *w, int status, int lost) {
  lua_State *L = r->L;
  int node = w->node;
  if (w->output >= 0) read_output(r, w);
  flush_line(r, w);
  keep_output(r, w);
  w->settled = 1;
  r->running--;
  if (w->got_result) {
    report_get(r, node, "result");
    set_pending(r, node);
    lua_pushnil(L);
    report_set(r, node, "result");
  } else {
    lp_worker_ended(L, status, w->timed_out, node_num(r, node, "timeout", 0), lost);
    push_step_error(r, node, lua_tostring(L, -1));
    lua_remove(L, -2);
    stash_failure(r, node);
  }
  report_get(r, node, "pending");
  lua_getfield(L, -1, "error");
  if (lua_isstring(L, -1) && !r->stopping) {
    /* more retries than an int counts never run out in practice */
    double asked = node_num(r, node, "retries", 0);
    int attempts, retries = asked < INT_MAX - 1 ? (int)asked : INT_MAX - 1;
    report_get(r, node, "attempts");
    attempts = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (attempts <= retries) {
      double backoff = 100.0 * (1 << (attempts < 5 ? attempts - 1 : 4));
      char wait[24];
      lp_duration(backoff, wait, sizeof wait);
      lp_log(r->rt, LUPINE_LOG_INFO, "step '%s' failed (attempt %d of %d), retrying in "
             "%s: %s", node_str(r, node, "name"), attempts, retries + 1, wait,
             lua_tostring(L, -1));
      emit(r, LUPINE_EVENT_STEP_RETRY, node, NULL, lua_tostring(L, -1), backoff, attempts);
      lua_pushnil(L);
      set_pending(r, node);
      lua_pushnumber(L, now_ms() + backoff);
      report_set(r, node, "retry_at");
      r->retrying++;
    }
  }
  lua_pop(L, 2);
}

/* The worker closed its end: it has ended (or is ending). Settle it if its
** result did not; free its slot. */
static void reap(run *r, worker *w) {
  if (!w->settled) {
    int status = 0, lost = lp_spawner_wait(&r->pool->spawner, w->pid, &status) != 0;
    settle(r, w, status, lost);
  } else lp_spawner_forget(&r->pool->spawner, w->pid);
  if (w->output >= 0) read_output(r, w);
  flush_line(r, w);
  keep_output(r, w);
  close_fd(&w->output);
  close_fd(&w->to_child);
  close_fd(&w->from_child);
  w->pid = 0;
}

/* poll's timeout for a moment ms_left from now: its int of milliseconds,
** rounded up, at most INT_MAX (about 24 days: poll is called again after
** that, for a timeout as long as a user likes). */
static int poll_ms(double ms_left) {
  if (ms_left <= 0) return 0;
  return ms_left < INT_MAX - 1 ? (int)ms_left + 1 : INT_MAX;
}

/* Wait for something to happen to the workers (or a retry to fall due). */
static void wait_workers(run *r) {
  struct pollfd fds[2 * POOL_MAX];
  worker *who[2 * POOL_MAX];
  int nfds = 0, i, timeout = -1;
  double now = now_ms();
  beat(r, now);
  if (lp_catalog_in_transaction(r->rt->catalog)) {
    if (now - r->batch_began >= BATCH_MS) commit_batch(r);
    else timeout = poll_ms(r->batch_began + BATCH_MS - now);
  } else timeout = poll_ms(r->beat_at - now);
  for (i = 0; i < r->pool->n; i++) {
    worker *w = &r->pool->w[i];
    if (w->pid == 0) continue;
    if (w->deadline > 0 && !w->settled) {
      if (now >= w->deadline && !w->timed_out) {
        kill(-w->pid, SIGKILL);
        w->timed_out = 1;
      }
      if (!w->timed_out) {
        int ms = poll_ms(w->deadline - now);
        if (timeout < 0 || ms < timeout) timeout = ms;
      }
    }
    if (w->from_child >= 0 && nfds < 2 * POOL_MAX) {
      fds[nfds].fd = w->from_child, fds[nfds].events = POLLIN, who[nfds++] = w;
    }
    if (w->output >= 0 && nfds < 2 * POOL_MAX) {
      fds[nfds].fd = w->output, fds[nfds].events = POLLIN, who[nfds++] = w;
    }
  }
  if (r->retrying > 0) {
    int node;
    for (node = 0; node < r->n; node++) {
      if (report_get(r, node, "retry_at") == LUA_TNUMBER) {
        int ms = poll_ms(lua_tonumber(r->L, -1) - now);
        if (timeout < 0 || ms < timeout) timeout = ms;
      }
      lua_pop(r->L, 1);
    }
  }
  if (r->rt->events != NULL && r->running > 0 && (timeout < 0 || timeout > TICK_MS))
    timeout = (int)TICK_MS;   /* the next tick */
  if (poll(fds, (nfds_t)nfds, timeout) < 0) return;   /* EINTR: the caller looks why */
  for (i = 0; i < nfds; i++) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    if (fds[i].fd == who[i]->from_child) read_frames(r, who[i]);
    else if (fds[i].fd == who[i]->output) read_output(r, who[i]);
  }
  /* a result settles its step at once: the worker's exit is not waited for */
  for (i = 0; i < r->pool->n; i++) {
    worker *w = &r->pool->w[i];
    if (w->pid != 0 && w->got_result && !w->settled) settle(r, w, 0, 0);
    if (w->pid != 0 && w->from_child < 0) reap(r, w);
  }
}

/* Record, in node order where artifact names are shared, what finished:
** so the versions a run makes do not depend on how many jobs ran it.
** Returns how many nodes were recorded. */
static int by_index(const void *a, const void *b) {
  return *(const int *)a - *(const int *)b;
}

static int record_ready(run *r) {
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
    int top = lua_gettop(L), ready = 1;
    node = r->order[p];
    if (report_get(r, node, "pending") != LUA_TTABLE) {
      lua_settop(L, top);
      continue;
    }
    lua_rawgeti(L, r->waits, node + 1);
    for (k = 1; ready && lua_rawgeti(L, -1, k) == LUA_TNUMBER; k++) {
      int before = (int)lua_tointeger(L, -1) - 1;
      ready = lp_graph_skipped(r->graph, before) || report_get(r, before, "recorded") != LUA_TNIL;
      lua_pop(L, 2);
    }
    lua_settop(L, top + 1);
    if (!ready) {
      lua_settop(L, top);
      continue;
    }
    /* stack: pending */
    lua_pushnil(L);
    set_pending(r, node);
    report_get(r, node, "step_run");
    {
      const char *step_run_id = lua_tostring(L, -1);
      int changes;
      lua_getfield(L, top + 1, "outs");
      if (lua_istable(L, -1)) {
        lua_rawgeti(L, r->nodes, node + 1);
        lua_pushnil(L);
        lua_pushvalue(L, -3);
        /* stack: pending, id, outs, node, nil, outs */
        ok = record_success(r, node, step_run_id, top + 4);
        if (!ok) record_failure(r, node, step_run_id);
      } else {
        lua_getfield(L, top + 1, "error");
        lua_getfield(L, top + 1, "traceback");
        record_failure(r, node, step_run_id);
        ok = 0;
      }
      report_get(r, node, "output");
      report_get(r, node, "attempts");
      lua_pushstring(L, step_run_id);
      lua_rotate(L, -3, 1);
      if (lp_catalog_write(L, r->rt->catalog, "step_output", lua_gettop(L) - 2, 3, &changes,
                           r->rt->err, sizeof r->rt->err) != LUPINE_OK)
        fail_hard(r);
    }
    lua_settop(L, top);
    report_get(r, node, "started");
    lua_pushnumber(L, now_ms() - lua_tonumber(L, -1));
    report_set(r, node, "ms");
    lua_pop(L, 1);
    lua_pushstring(L, ok ? "completed" : "failed");
    report_set(r, node, "status");
    lua_pushboolean(L, 1);
    report_set(r, node, "recorded");
    lp_graph_finish(r->graph, node, ok);
    step_done(r, node);
    if (!ok) {
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
static void stop_all(run *r) {
  int i;
  r->stopping = r->interrupted = 1;
  for (i = 0; i < r->pool->n; i++) {
    worker *w = &r->pool->w[i];
    if (w->pid == 0) continue;
    kill(-w->pid, SIGKILL);
    reap(r, w);
  }
  for (i = 0; i < r->n; i++) {
    int top = lua_gettop(r->L);
    if (report_get(r, i, "step_run") == LUA_TSTRING && report_get(r, i, "recorded") == LUA_TNIL) {
      if (lp_catalog_finish_step_run(r->rt->catalog, lua_tostring(r->L, -2), "stopped",
                                     "stopped by a signal", NULL, -1, r->rt->err,
                                     sizeof r->rt->err) != LUPINE_OK)
        fail_hard(r);
      lua_pushliteral(r->L, "stopped");
      report_set(r, i, "status");
      lua_pushboolean(r->L, 1);
      report_set(r, i, "recorded");
      report_get(r, i, "started");   /* how long it ran until stopped */
      lua_pushnumber(r->L, now_ms() - lua_tonumber(r->L, -1));
      report_set(r, i, "ms");
      step_done(r, i);
    }
    lua_settop(r->L, top);
  }
}

/* Which earlier nodes each node must be recorded after: the last earlier
** node writing each of its artifact names. waits[i] = { j, ... } (1-based). */
static void plan_order(run *r) {
  lua_State *L = r->L;
  int i, k;
  lua_newtable(L);   /* artifact name -> last node writing it */
  lua_createtable(L, r->n, 0);
  r->waits = lua_gettop(L);
  for (i = 1; i <= r->n; i++) {
    int nw = 0;
    lua_newtable(L);
    lua_rawgeti(L, r->nodes, i);
    field(L, -1, "outputs", LUA_TTABLE);
    for (k = 1; lua_rawgeti(L, -1, k) == LUA_TTABLE; k++) {
      field(L, -1, "artifact", LUA_TSTRING);
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
static int record_stack(run *r, const char *stack) {
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
static int record_plan(run *r) {
  lua_State *L = r->L;
  int i, k, n, changes, rc, top = lua_gettop(L);
  lua_pushstring(L, r->id);
  lua_createtable(L, r->n, 0);
  for (i = 1; i <= r->n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, node_str(r, i - 1, "name"));
    lua_setfield(L, -2, "name");
    lua_pushstring(L, node_str(r, i - 1, "step"));
    lua_setfield(L, -2, "step");
    lua_newtable(L);
    lua_rawgeti(L, r->nodes, i);
    field(L, -1, "args", LUA_TTABLE);
    /* stack: ..., plan, entry, after, node, args */
    for (k = 1, n = 0; k <= (int)luaL_len(L, -1); k++) {
      lua_rawgeti(L, -1, k);
      if (lua_getfield(L, -1, "node") == LUA_TNUMBER) {
        lua_pushstring(L, node_str(r, (int)lua_tointeger(L, -1) - 1, "name"));
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

int lp_execute(lua_State *L, lp_runtime *rt, int spec) {
  run r;
  char stack[LP_NAME_MAX + 1];
  int i, failed;
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
  lua_newtable(L);
  r.versions = lua_gettop(L);
  lua_newtable(L);
  r.pendset = lua_gettop(L);
  r.order = lua_newuserdatauv(L, sizeof(int) * (size_t)(r.n + 1), 0);
  if (rt->events != NULL) r.line = lua_newuserdatauv(L, LINE_CAP + 1, 0);
  lua_createtable(L, r.n, 0);
  r.report = lua_gettop(L);
  for (i = 1; i <= r.n; i++) {
    lua_newtable(L);
    lua_rawseti(L, r.report, i);
  }
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
  emit(&r, LUPINE_EVENT_RUN_START, -1, NULL, NULL, 0, 0);
  lua_getfield(L, r.spec, "jobs");
  if (!lua_isinteger(L, -1)) r.jobs = lp_default_jobs();
  else {   /* clamped before it is cut to an int */
    lua_Integer jobs = lua_tointeger(L, -1);
    r.jobs = jobs < 1 ? 1 : jobs > MAX_JOBS ? MAX_JOBS : (int)jobs;
  }
  lua_pop(L, 1);
  r.pool = pool_push(L, 2 * r.jobs);   /* for each worker running, one ending */
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
    /* workers still ending hold slots a ready step may need */
    if (r.running == 0 && r.retrying == 0 && ending(&r) == 0) break;
    if (!rt->interrupted) wait_workers(&r);   /* an interrupt from the log callback */
    if (r.running > 0 && now_ms() - r.last_tick >= TICK_MS)
      emit(&r, LUPINE_EVENT_TICK, -1, NULL, NULL, 0, 0);
  }
  lp_spawner_stop(&r.pool->spawner);
  failed = r.failed;
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
  commit_batch(&r);
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
  summarize(&r, status, now_ms() - t0);
  emit(&r, LUPINE_EVENT_RUN_END, -1, status, NULL, now_ms() - t0, 0);
  lua_pushstring(L, r.id);
  lua_pushstring(L, r.name);
  lua_pushstring(L, status);
  lua_rotate(L, -4, 3);   /* errors last */
  return 4;
}
