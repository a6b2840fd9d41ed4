/* SPDX-License-Identifier: MIT */
/*
** run.c: one run's state, as the coordinator keeps it: the spec's nodes
** read by field; each node's state, a C struct (lp_node) with its Lua
** values beside it (lp_node_value); the inputs a node reads and the
** versions they resolve to; the events and log lines a run gives; and the
** group commit of its writes. executor.c, worker.c, step.c and cache.c
** work on it; it calls none of them.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "lauxlib.h"
#include "run.h"

double lp_run_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Push field k of the table at idx, requiring type t: a malformed spec is
** a bug in the Lua side, reported as such. */
void lp_run_field(lua_State *L, int idx, const char *k, int t) {
  if (lua_getfield(L, idx, k) != t)
    luaL_error(L, "lupine: malformed run spec (field '%s' is %s, expected %s)", k,
               luaL_typename(L, -1), lua_typename(L, t));
}

const char *lp_run_node_str(lp_run *r, int node, const char *k) {
  const char *s;
  lua_rawgeti(r->L, r->nodes, node + 1);
  lp_run_field(r->L, -1, k, LUA_TSTRING);
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

/* Push the args table of the node at nodeidx, to walk its inputs. */
void lp_run_inputs_begin(lua_State *L, int nodeidx, lp_input_iter *it) {
  lp_run_field(L, nodeidx, "args", LUA_TTABLE);
  it->args = lua_gettop(L);
  it->nargs = (int)lua_rawlen(L, it->args);
  it->k = 1;
  it->i = it->j = 0;
}

/* Push the record of the next input and return 1; or return 0, pushing
** nothing, after the last. The caller pops each record, and at the end
** the args table. */
int lp_run_inputs_next(lua_State *L, lp_input_iter *it) {
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

/* Tell the event callback, if any, what happened (node -1: the run). */
void lp_run_emit(lp_run *r, int type, int node, const char *status, const char *detail, double ms,
                 int attempt) {
  lupine_event ev;
  if (r->rt->events == NULL) return;
  memset(&ev, 0, sizeof ev);
  ev.type = type;
  ev.run_id = r->id;
  ev.run = r->name;
  ev.pipeline = r->pipeline;
  ev.step = node >= 0 ? lp_run_node_str(r, node, "name") : NULL;
  ev.status = status;
  ev.detail = detail;
  ev.ms = ms;
  ev.total = r->n;
  ev.attempt = attempt;
  r->last_tick = lp_run_now();
  ev.at = r->last_tick - r->began;
  lp_event(r->rt, &ev);
}

/* Raise the runtime's error (the catalog failed: nothing sensible to
** record, since recording is what failed). */
int lp_run_fail(lp_run *r) {
  lp_catalog_rollback(r->rt->catalog);
  return lp_raise(r->L, "%s", r->rt->err);
}

/*
** Group commit: the coordinator's writes share one transaction until it has
** been open LP_BATCH_MS and the coordinator would wait, or the run ends. The
** objects they reference are written without syncs, and synced all at once
** before the commit. Workers read the catalog through the coordinator, so
** they see what it has not committed yet.
*/
void lp_run_commit(lp_run *r) {
  lp_runtime *rt = r->rt;
  if (!lp_catalog_in_transaction(rt->catalog)) return;
  if ((rt->store != NULL && lp_store_sync(rt->store, rt->err, sizeof rt->err) != LUPINE_OK) ||
      lp_catalog_commit(rt->catalog, rt->err, sizeof rt->err) != LUPINE_OK)
    lp_run_fail(r);
}

/* Join the open transaction, or begin one. */
void lp_run_join(lp_run *r) {
  if (lp_catalog_in_transaction(r->rt->catalog)) return;
  if (lp_catalog_begin(r->rt->catalog, r->rt->err, sizeof r->rt->err) != LUPINE_OK)
    lp_run_fail(r);
  r->batch_began = lp_run_now();
}

/* A process on another machine looking at the catalog knows the run is
** alive by its heartbeats (runtime.c: mark_dead_runs). */
void lp_run_beat(lp_run *r, double now) {
  int changes;
  if (now < r->beat_at) return;
  lp_run_join(r);
  lua_pushstring(r->L, r->id);
  if (lp_catalog_write(r->L, r->rt->catalog, "run_heartbeat", lua_gettop(r->L), 1, &changes,
                       r->rt->err, sizeof r->rt->err) != LUPINE_OK)
    lp_run_fail(r);
  lua_pop(r->L, 1);
  r->beat_at = now + lp_runtime_dead_after() * 250.0;
}

void lp_run_step_run_spec(lp_run *r, int node, const char *status, lp_step_run_spec *spec) {
  memset(spec, 0, sizeof *spec);
  spec->run_id = r->id;
  spec->name = lp_run_node_str(r, node, "name");
  spec->step_name = lp_run_node_str(r, node, "step");
  spec->status = status;
}

/* Push a failure message for node: "step 'x' (file:line): <what>". */
void lp_run_push_error(lp_run *r, int node, const char *what) {
  lua_pushfstring(r->L, "step '%s' (%s): %s", lp_run_node_str(r, node, "name"),
                  lp_run_node_str(r, node, "where"), what);
}

/* Push the id of the stored version that input j (the table at input) of
** node reads: its own, or the one its lookup found when the node started;
** nil if its lookup found none. */
void lp_run_push_version(lp_run *r, int node, int j, int input) {
  lua_State *L = r->L;
  if (lua_getfield(L, input, "version") == LUA_TSTRING) return;
  lua_pop(L, 1);
  if (lp_run_push(r, node, LP_NODE_LOOKUPS) == LUA_TTABLE) {
    lua_rawgeti(L, -1, j);
    lua_remove(L, -2);
  }
}

/* Push the content hash of stored version id (looked up once per run), or
** nil if there is no such version. */
static void push_version_hash(lp_run *r, const char *id) {
  lua_State *L = r->L;
  if (lua_getfield(L, r->versions, id) == LUA_TSTRING) return;
  lua_pop(L, 1);
  lua_pushstring(L, id);
  if (lp_catalog_query(L, r->rt->catalog, "version_by_id", lua_gettop(L), 1, r->rt->err,
                       sizeof r->rt->err) != LUPINE_OK)
    lp_run_fail(r);
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
void lp_run_push_input(lp_run *r, int node, int j, int input) {
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
  lp_run_push_version(r, node, j, input);
  lua_pushnil(L);
  if (lua_isstring(L, -2)) push_version_hash(r, lua_tostring(L, -2));
  else lua_pushnil(L);
}

/* Record the artifact inputs of the node at nodeidx against step_run_id. */
void lp_run_link_inputs(lp_run *r, int node, int nodeidx, const char *step_run_id) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  lp_input_iter it;
  lp_run_inputs_begin(L, nodeidx, &it);
  while (lp_run_inputs_next(L, &it)) {
    lp_run_push_input(r, node, it.j, lua_gettop(L));
    /* stack: ..., args, input, version id, seq, hash */
    if (lua_isstring(L, -3)) {
      lua_getfield(L, -4, "name");
      if (lp_catalog_add_input(rt->catalog, step_run_id, lua_tostring(L, -1),
                               lua_tostring(L, -4), (long long)lua_tointeger(L, -3), rt->err,
                               sizeof rt->err) != LUPINE_OK)
        lp_run_fail(r);
      lua_pop(L, 1);
    }
    lua_pop(L, 4);
  }
  lua_pop(L, 1);
}

static void step_done(lp_run *r, int node);

void lp_run_step_done(lp_run *r, int node) {
  lp_run_answer(r);
  step_done(r, node);
}

void lp_run_answer_later(lp_run *r, int node) {
  r->answer[r->nanswer++] = node;
}

/* Read back the seq and version of the versions in results[node] that
** have none yet. */
static void read_numbers(lp_run *r, int node) {
  lua_State *L = r->L;
  int top = lua_gettop(L), k;
  lua_rawgeti(L, r->results, node + 1);
  for (k = 1; lua_rawgeti(L, top + 1, k) == LUA_TTABLE; k++) {
    if (lua_getfield(L, -1, "version") == LUA_TNIL && lua_getfield(L, -2, "id") == LUA_TSTRING) {
      char version[LP_NAME_MAX + 1];
      long long seq;
      if (lp_catalog_version_number(r->rt->catalog, lua_tostring(L, -1), version, &seq,
                                    r->rt->err, sizeof r->rt->err) != LUPINE_OK)
        lp_run_fail(r);
      lua_pushinteger(L, (lua_Integer)seq);
      lua_setfield(L, -4, "seq");
      lua_pushstring(L, version);
      lua_setfield(L, -4, "version");
    }
    lua_settop(L, top + 1);
  }
  lua_settop(L, top);
}

/* Keep "artifact vN, ..." of the versions in results[node] (LP_NODE_ARTIFACTS). */
static void keep_written(lp_run *r, int node) {
  lua_State *L = r->L;
  char written[1024] = "";
  size_t wlen = 0;
  int top = lua_gettop(L), k;
  lua_rawgeti(L, r->results, node + 1);
  lua_rawgeti(L, r->nodes, node + 1);
  lp_run_field(L, -1, "outputs", LUA_TTABLE);
  for (k = 1; lua_rawgeti(L, top + 1, k) == LUA_TTABLE; k++) {
    lua_getfield(L, -1, "version");
    lua_rawgeti(L, top + 3, k);
    lp_run_field(L, -1, "artifact", LUA_TSTRING);
    lp_appendf(written, sizeof written, &wlen, "%s%s v%s", k > 1 ? ", " : "",
               lua_tostring(L, -1), lua_tostring(L, -3));
    lua_settop(L, top + 3);
  }
  lua_settop(L, top);
  lua_pushstring(L, written);
  lp_run_keep(r, node, LP_NODE_ARTIFACTS);
}

void lp_run_answer(lp_run *r) {
  int q, n = r->nanswer;
  if (n == 0) return;
  r->nanswer = 0;   /* (a failure below raises: nothing is told twice) */
  for (q = 0; q < n; q++) read_numbers(r, r->answer[q]);
  for (q = 0; q < n; q++) {
    keep_written(r, r->answer[q]);
    step_done(r, r->answer[q]);
  }
}

/* Tell the log and the events a step is settled: a line saying how, and
** the progress. */
static void step_done(lp_run *r, int node) {
  lua_State *L = r->L;
  const lp_node *n = &r->node[node];
  const char *status = lp_run_status_name(n->status), *what;
  char took[24];
  int top = lua_gettop(L);
  lp_log(r->rt, LUPINE_LOG_PROGRESS, "%d %d", ++r->done, r->n);
  lp_run_push(r, node, LP_NODE_ARTIFACTS);
  lp_run_push(r, node, LP_NODE_ERROR);
  what = lua_isstring(L, -1) ? lua_tostring(L, -1) : lua_tostring(L, -2);
  lp_run_emit(r, LUPINE_EVENT_STEP_END, node, status, what, n->ms, 0);
  lp_duration(n->ms, took, sizeof took);
  if (n->status == LP_NODE_COMPLETED || n->status == LP_NODE_FAILED ||
      n->status == LP_NODE_STOPPED)
    lp_log(r->rt, LUPINE_LOG_INFO, "step '%s' %s %s %s%s%.*s", lp_run_node_str(r, node, "name"),
           status, n->status == LP_NODE_STOPPED ? "after" : "in", took,
           what != NULL && *what ? ": " : "", what != NULL ? (int)strcspn(what, "\n") : 0,
           what != NULL ? what : "");
  else
    lp_log(r->rt, LUPINE_LOG_INFO, "step '%s' %s%s%s", lp_run_node_str(r, node, "name"),
           status ? status : "settled", what != NULL && *what ? ": " : "",
           what != NULL ? what : "");
  lua_settop(L, top);
}

/* Number field k of node's spec, or dflt. */
double lp_run_node_num(lp_run *r, int node, const char *k, double dflt) {
  double v;
  lua_rawgeti(r->L, r->nodes, node + 1);
  lua_getfield(r->L, -1, k);
  v = lua_isnumber(r->L, -1) ? lua_tonumber(r->L, -1) : dflt;
  lua_pop(r->L, 2);
  return v;
}

static const char *const status_names[] = {NULL, "completed", "failed", "cached", "stopped",
                                           "skipped"};

const char *lp_run_status_name(lp_node_status status) {
  return status_names[status];
}

void lp_run_push_nodes(lp_run *r) {
  r->node = lua_newuserdatauv(r->L, sizeof(lp_node) * (size_t)(r->n + 1), 0);
  memset(r->node, 0, sizeof(lp_node) * (size_t)(r->n + 1));
  lua_createtable(r->L, r->n * LP_NODE_NVALUES, 0);
  r->values = lua_gettop(r->L);
}

/* A node's values lie side by side in one array: r->values[node * LP_NODE_NVALUES + v + 1]. */
void lp_run_keep(lp_run *r, int node, lp_node_value v) {
  lua_rawseti(r->L, r->values, (lua_Integer)node * LP_NODE_NVALUES + v + 1);
}

int lp_run_push(lp_run *r, int node, lp_node_value v) {
  return lua_rawgeti(r->L, r->values, (lua_Integer)node * LP_NODE_NVALUES + v + 1);
}

void lp_run_push_state(lp_run *r, int node) {
  lua_State *L = r->L;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, r->node[node].step_run);
  lua_setfield(L, -2, "step_run");
  if (r->node[node].has_seed) lua_pushinteger(L, (lua_Integer)r->node[node].seed);
  else lua_pushnil(L);
  lua_setfield(L, -2, "seed");
  lp_run_push(r, node, LP_NODE_PARAMS);
  lua_setfield(L, -2, "params");
  lp_run_push(r, node, LP_NODE_LOOKUPS);
  lua_setfield(L, -2, "lookups");
}

void lp_run_take_state(lp_run *r, int node, int idx) {
  lua_State *L = r->L;
  lp_node *n = &r->node[node];
  lua_getfield(L, idx, "step_run");
  snprintf(n->step_run, sizeof n->step_run, "%s", luaL_optstring(L, -1, ""));
  lua_getfield(L, idx, "seed");
  n->has_seed = lua_isinteger(L, -1);
  n->seed = (long long)lua_tointeger(L, -1);
  lua_pop(L, 2);
  lua_getfield(L, idx, "params");
  lp_run_keep(r, node, LP_NODE_PARAMS);
  lua_getfield(L, idx, "lookups");
  lp_run_keep(r, node, LP_NODE_LOOKUPS);
}

void lp_run_settle(lp_run *r, int node, lp_node_status status) {
  lp_node *n = &r->node[node];
  n->status = status;
  n->recorded = 1;
  n->ms = lp_run_now() - n->started;
}

/* Set (table on top, popped) or clear (nil on top) node's result to
** record, keeping the set of nodes that have one. */
void lp_run_set_pending(lp_run *r, int node) {
  lua_State *L = r->L;
  lua_pushboolean(L, lua_istable(L, -1));
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  lua_rawseti(L, r->pendset, node + 1);
  lp_run_keep(r, node, LP_NODE_PENDING);
}

/* Stash a failure (message on top, popped) as node's outcome. */
void lp_run_stash_failure(lp_run *r, int node) {
  lua_State *L = r->L;
  lua_createtable(L, 0, 2);
  lua_insert(L, -2);
  lua_setfield(L, -2, "error");
  lp_run_set_pending(r, node);
}
