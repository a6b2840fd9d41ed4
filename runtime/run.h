/* SPDX-License-Identifier: MIT */
/*
** run.h: one pipeline run's state, shared by the files that run it: run.c
** (the state and the group commit), executor.c (the coordinator loop),
** worker.c (worker processes), step.c (a step's work in one) and cache.c
** (cache hits). Nothing else sees it.
*/
#ifndef LUPINE_RUN_H
#define LUPINE_RUN_H

#include "lupine_int.h"

/* Workers a run has at most at once (spec.jobs is clamped to it). */
#define LP_MAX_JOBS 64

/* A printed line reaches the log and the events in pieces of at most this. */
#define LP_LINE_CAP (64 * 1024)

typedef struct lp_pool lp_pool;   /* worker.c */

/* What became of a node: its step run's status once settled. */
typedef enum {
  LP_NODE_WAITING,     /* not settled (yet): a node still waiting at the end is skipped */
  LP_NODE_COMPLETED,
  LP_NODE_FAILED,
  LP_NODE_CACHED,
  LP_NODE_STOPPED,
  LP_NODE_SKIPPED
} lp_node_status;

/* A node's state while its run goes: one per node of the spec. */
typedef struct lp_node {
  lp_node_status status;
  int recorded;              /* its outcome is in the catalog */
  int attempts;              /* attempts started */
  int has_seed;
  long long seed;            /* its random numbers' seed, every attempt's */
  double started;            /* when it started (monotonic ms) */
  double ms;                 /* how long it took, once settled */
  double retry_at;           /* when it is tried again (monotonic ms); 0: not */
  char step_run[LP_ID_LEN + 1];   /* its step run's id; "" until it has one */
} lp_node;

/* The parts of a node's state that are Lua values, kept in the run's
** table of values (lp_run_keep, lp_run_push): the Lua side made them, or
** the catalog or the wire takes them. */
typedef enum {
  LP_NODE_PARAMS,      /* its parameters' CBOR bytes */
  LP_NODE_LOOKUPS,     /* { [input number] = the version id its lookup found } */
  LP_NODE_OUTPUT,      /* what its attempts printed, kept for its step run */
  LP_NODE_RESULT,      /* the result its worker sent, until the worker settles */
  LP_NODE_PENDING,     /* its outcome, to record: { outs = ... } | { error, traceback } */
  LP_NODE_ERROR,       /* its failure's message, once recorded */
  LP_NODE_ARTIFACTS,   /* the versions it made ("model v3, ..."), for the log */
  LP_NODE_TO_RECORD,   /* { outs = ..., objects = ... } stored, until recorded (executor.c) */
  LP_NODE_CACHE_KEY,   /* its cache key, once its step run is made */
  LP_NODE_NVALUES
} lp_node_value;

typedef struct lp_run {
  lua_State *L;
  lp_runtime *rt;
  int spec, nodes, results, waits, versions;   /* stack indices */
  int values;           /* stack index: the nodes' Lua values (lp_node_value) */
  int pendset;          /* stack index: node + 1 -> true while it has a result to record */
  int hits;             /* stack index: cache key -> rows, read at the start (lp_cache_prefetch) */
  int hit_runs;         /* pipeline runs whose hits were read since (lp_cache_find_hit) */
  lp_node *node;        /* n nodes' states */
  int *order;           /* n ints of working space for record_ready */
  int *later, nlater;   /* the nodes whose outputs wait to be recorded (executor.c) */
  /* records them (executor.c: record_later), for what must see them first
  ** elsewhere (cache.c: a hit's lookups of a latest) */
  void (*record_later)(struct lp_run *r);
  int *answer, nanswer; /* the nodes recorded, to tell done (lp_run_answer) */
  char *line;           /* LP_LINE_CAP + 1 bytes: a printed line for the events (NULL: none) */
  int n;
  lp_graph *graph;
  lp_pool *pool;
  int jobs;             /* workers at most */
  int running;          /* workers alive */
  int retrying;         /* nodes waiting to be tried again */
  int stopping;         /* start nothing new (on_failure = "stop", or interrupted) */
  int failed, interrupted;
  int done;             /* steps settled, for the progress */
  double began;         /* when the run began (events say when from it) */
  double last_tick;     /* when the last event went out (see LP_TICK_MS) */
  double batch_began;   /* when the open transaction began (see lp_run_commit) */
  double beat_at;       /* when the run's next heartbeat is due (see lp_run_beat) */
  char id[LP_ID_LEN + 1];
  char name[LP_RUN_NAME_MAX + 1];
  const char *pipeline;
} lp_run;

/* ---- run.c ---- */

/* While steps run, an event goes out at least this often (a TICK when
** nothing else happens), so that displays can show elapsed times. */
#define LP_TICK_MS 100.0

/* The coordinator's writes share one transaction until it has been open
** this long and the coordinator would wait (see run.c). */
#define LP_BATCH_MS 10.0

/* Monotonic milliseconds. */
double lp_run_now(void);

/* Push field k of the table at idx, requiring type t: a malformed spec is
** a bug in the Lua side, raised as such. */
void lp_run_field(lua_State *L, int idx, const char *k, int t);

/* String field k of node's spec (alive as long as the spec). */
const char *lp_run_node_str(lp_run *r, int node, const char *k);

/* Number field k of node's spec, or dflt. */
double lp_run_node_num(lp_run *r, int node, const char *k, double dflt);

/*
** The inputs of a node, in order: each argument that is one, or those
** inside it (its `inputs`). An input's number (j, from 1) keys the version
** its lookup found when the node started (LP_NODE_LOOKUPS).
*/
typedef struct lp_input_iter {
  int args;       /* stack index of the node's args table */
  int nargs, k;   /* how many arguments, and the next one to look at (from 1) */
  int i;          /* how many of argument k's inputs were pushed */
  int j;          /* the number of the input last pushed */
  int arg;        /* and the position of its argument */
  int nested;     /* whether it sits inside that argument, at its keys */
} lp_input_iter;

/* Push the args table of the node at nodeidx, to walk its inputs. */
void lp_run_inputs_begin(lua_State *L, int nodeidx, lp_input_iter *it);

/* Push the record of the next input and return 1; or return 0, pushing
** nothing, after the last. The caller pops each record, and at the end
** the args table. */
int lp_run_inputs_next(lua_State *L, lp_input_iter *it);

/* Tell the event callback, if any, what happened (node -1: the run). */
void lp_run_emit(lp_run *r, int type, int node, const char *status, const char *detail,
                 double ms, int attempt);

/* Raise the runtime's error after rolling back (the catalog failed:
** nothing sensible to record, since recording is what failed). */
int lp_run_fail(lp_run *r);

/* Commit the open transaction, its objects synced first; join it, or begin one. */
void lp_run_commit(lp_run *r);
void lp_run_join(lp_run *r);

/* The run's heartbeat, when due at now (lp_run_now), in the open batch;
** the next falls due a quarter of lp_runtime_dead_after() later. */
void lp_run_beat(lp_run *r, double now);

/* A new step run of node with status: its run, names and status; the
** rest none until the caller sets it. */
void lp_run_step_run_spec(lp_run *r, int node, const char *status, lp_step_run_spec *spec);

/* Push a failure message for node: "step 'x' (file:line): <what>". */
void lp_run_push_error(lp_run *r, int node, const char *what);

/* Push the id of the stored version that input j (the table at input) of
** node reads: its own, or the one its lookup found when the node started;
** nil if its lookup found none. */
void lp_run_push_version(lp_run *r, int node, int j, int input);

/* Push the version id, its seq (nil where not at hand) and its content
** hash that input j (the table at input) of node reads; three nils for a
** default output never stored, or a lookup that found nothing. */
void lp_run_push_input(lp_run *r, int node, int j, int input);

/* Record the artifact inputs of the node at nodeidx against step_run_id. */
void lp_run_link_inputs(lp_run *r, int node, int nodeidx, const char *step_run_id);

/* Tell the log and the events a step is settled: a line saying how, and
** the progress (after the steps recorded before it, lp_run_answer). */
void lp_run_step_done(lp_run *r, int node);

/* Node is recorded, its versions' numbers perhaps not read yet: it is
** told done by the next lp_run_answer. */
void lp_run_answer_later(lp_run *r, int node);

/* Tell done, in the order they were recorded, the nodes given to
** lp_run_answer_later: first their versions' numbers not at hand are read
** back (results[node][k].seq and .version: a query each, the first of
** which waits for the writes before it); then the versions they made
** (LP_NODE_ARTIFACTS) and lp_run_step_done. Called before a step's events
** go out, so that they keep the order the steps settled in. */
void lp_run_answer(lp_run *r);

/* Push the node states (n of them) and the table of their Lua values, and
** point r->node and r->values at them. */
void lp_run_push_nodes(lp_run *r);

/* Keep the value on top (popped; nil clears it) as node's value v; push
** node's value v and return its type. */
void lp_run_keep(lp_run *r, int node, lp_node_value v);
int lp_run_push(lp_run *r, int node, lp_node_value v);

/* Push what a worker needs of node's state besides the spec, as a table:
** { step_run, seed, params, lookups } (a start frame's, or a fresh
** process's: lua/lupine/exec.lua). lp_run_take_state sets node's state
** from such a table at stack index idx. */
void lp_run_push_state(lp_run *r, int node);
void lp_run_take_state(lp_run *r, int node, int idx);

/* A status as the catalog and the log write it ("completed", ...; NULL
** for LP_NODE_WAITING). */
const char *lp_run_status_name(lp_node_status status);

/* Settle node as status (its outcome recorded), timed from when it started. */
void lp_run_settle(lp_run *r, int node, lp_node_status status);

/* Set (table on top, popped) or clear (nil on top) node's result to
** record, keeping the set of nodes that have one. */
void lp_run_set_pending(lp_run *r, int node);

/* Stash a failure (message on top, popped) as node's outcome. */
void lp_run_stash_failure(lp_run *r, int node);

/* ---- step.c: the work of one step, in a worker process ---- */

/*
** The work of one step: push its arguments, call it, encode its outputs.
** stack in: ..., node, parameters (decoded copy of the step's parameters).
** On success leaves a table (see step.c) and returns 1; on failure leaves
** message and traceback (or nil) and returns 0.
*/
int lp_step_work(lp_run *r, int node, const char *step_run_id);

/* In a worker process: run node's step, send its result to the
** coordinator on to_parent, exit. Never returns. */
void lp_step_main(lp_run *r, int node, int to_parent);

/* ---- worker.c: the coordinator's workers ---- */

/* Push the pool of r's workers (2 * r->jobs slots: for each worker
** running, one ending), ended when it is collected. */
lp_pool *lp_worker_pool(lp_run *r);

/* Hand node (its step run recorded) to a worker. A worker that cannot
** start stashes the node's failure. */
void lp_worker_start(lp_run *r, int node);

/* Whether a worker may start now (under the job limit, a slot free). */
int lp_worker_can_start(lp_run *r);

/* How many workers are settled but not yet gone. */
int lp_worker_ending(lp_run *r);

/* Wait for something to happen to the workers (or a retry to fall due),
** and settle what it was. */
void lp_worker_wait(lp_run *r);

/* End every worker at once (an interrupt), settling each. */
void lp_worker_stop_all(lp_run *r);

/* End the spawner once the run needs no more workers. */
void lp_worker_done(lp_run *r);

/* ---- cache.c: cache hits ---- */

/* Push node's cache parts (parameters table at params): what its cache key
** is the hash of. See runtime/README.md, "Caching". */
void lp_cache_push_parts(lp_run *r, int node, int nodeidx, int params);

/* Push and point r->hits at what the latest completed step runs with a
** cache key would give lp_cache_find_hit, read in one query. */
void lp_cache_prefetch(lp_run *r);

/* Look for a step run to reuse (see cache.c). stack in: ..., node
** (nodeidx), parameters, parts, key. 1 with its id and rows pushed; 0 with
** why not pushed. */
int lp_cache_find_hit(lp_run *r, int node, int nodeidx);

/* Record node as a cache hit of the step run found (id and rows on top,
** popped). */
void lp_cache_record_hit(lp_run *r, int node, int nodeidx, const char *pbytes, size_t plen);

#endif
