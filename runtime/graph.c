/* SPDX-License-Identifier: MIT */
/*
** graph.c: the dependency graph of one pipeline run, and the order its
** steps may run in.
**
** Ready nodes are handed out lowest number first. Nodes are numbered in
** the order the pipeline body called its steps, so a run's order (and so
** the order its versions are numbered in) depends only on the script.
** The graph lives in one Lua userdata, so an error raised while it is in
** use leaks nothing.
*/
#include <string.h>
#include "lauxlib.h"
#include "lupine_int.h"

enum { WAITING, TAKEN, DONE, SKIPPED };

struct lp_graph {
  int n, nedges, maxedges;
  int *from, *to;        /* edge i: to depends on from */
  int *first;            /* CSR over edges sorted by from: first[v]..first[v+1] */
  int *succ;             /* successors of each node, in CSR order */
  int *pending;          /* unfinished dependencies of each node */
  int *scratch;          /* n ints of working space */
  unsigned char *state;
};

lp_graph *lp_graph_push(lua_State *L, int n, int nedges) {
  size_t ints = (size_t)nedges * 3 + (size_t)n * 3 + 1;
  lp_graph *g = lua_newuserdatauv(L, sizeof *g + ints * sizeof(int) + (size_t)n, 0);
  int *p = (int *)(g + 1);
  g->n = n;
  g->nedges = 0;
  g->maxedges = nedges;
  g->from = p; p += nedges;
  g->to = p; p += nedges;
  g->succ = p; p += nedges;
  g->first = p; p += n + 1;
  g->pending = p; p += n;
  g->scratch = p; p += n;
  g->state = (unsigned char *)p;
  memset(g->pending, 0, (size_t)n * sizeof(int));
  memset(g->state, WAITING, (size_t)n);
  return g;
}

void lp_graph_add_edge(lp_graph *g, int from, int to) {
  g->from[g->nedges] = from;
  g->to[g->nedges] = to;
  g->nedges++;
  g->pending[to]++;
}

/* Kahn's algorithm over a copy of the pending counts: a node never
** released lies on (or behind) a cycle. */
static int has_cycle(const lp_graph *g, int *culprit) {
  int *left = g->scratch;
  int v, e, head, tail = 0;
  memcpy(left, g->pending, (size_t)g->n * sizeof(int));
  for (v = 0; v < g->n; v++)
    if (left[v] == 0) left[v] = -1, tail++;
  /* Repeated sweeps keep this allocation-free; graphs are small. */
  for (head = -1; head != tail;) {
    head = tail;
    for (v = 0; v < g->n; v++) {
      if (left[v] != -1) continue;
      left[v] = -2;
      for (e = g->first[v]; e < g->first[v + 1]; e++)
        if (--left[g->succ[e]] == 0) left[g->succ[e]] = -1, tail++;
    }
  }
  for (v = 0; v < g->n; v++)
    if (left[v] >= 0) {
      *culprit = v;
      return 1;
    }
  return 0;
}

/*
** After has_cycle found v never released: walk back from v through
** dependencies never released (every such node has one) until a node
** comes again; what lies between is a cycle. Writes it into out in
** dependency order (each node depends on the one before, the first on the
** last) and returns its length. Only an error path: O(length * edges).
*/
static int cycle_from(const lp_graph *g, int v, int *out) {
  int *left = g->scratch;   /* >= 0: never released; <= -3: on the walk, at -3 - position */
  int len = 0, e, start, i;
  while (left[v] >= 0) {
    left[v] = -3 - len;
    out[len++] = v;
    for (e = 0; e < g->nedges; e++)
      if (g->to[e] == v && (left[g->from[e]] >= 0 || left[g->from[e]] <= -3)) break;
    v = g->from[e];
  }
  start = -3 - left[v];
  len -= start;
  memmove(out, out + start, (size_t)len * sizeof *out);
  for (i = 0; i < len / 2; i++) {   /* the walk went against the edges */
    int t = out[i];
    out[i] = out[len - 1 - i];
    out[len - 1 - i] = t;
  }
  /* from its lowest-numbered node: the one the body called first */
  for (start = 0, i = 1; i < len; i++)
    if (out[i] < out[start]) start = i;
  for (i = 0; i < start; i++) {
    int t = out[0];
    memmove(out, out + 1, (size_t)(len - 1) * sizeof *out);
    out[len - 1] = t;
  }
  return len;
}

int lp_graph_seal(lp_graph *g, int *cycle, int *len) {
  int v, e, *pos = g->scratch;
  memset(g->first, 0, (size_t)(g->n + 1) * sizeof(int));
  for (e = 0; e < g->nedges; e++) g->first[g->from[e] + 1]++;
  for (v = 0; v < g->n; v++) g->first[v + 1] += g->first[v];
  for (v = 0; v < g->n; v++) pos[v] = g->first[v];
  for (e = 0; e < g->nedges; e++) g->succ[pos[g->from[e]]++] = g->to[e];
  if (!has_cycle(g, &v)) return LUPINE_OK;
  *len = cycle_from(g, v, cycle);
  return LUPINE_MISUSE;
}

int lp_graph_next(lp_graph *g) {
  int v;
  for (v = 0; v < g->n; v++)
    if (g->state[v] == WAITING && g->pending[v] == 0) {
      g->state[v] = TAKEN;
      return v;
    }
  return -1;
}

/* Mark everything downstream of v skipped (scratch is the work stack). */
static void skip_downstream(lp_graph *g, int v) {
  int top = 0, e;
  g->scratch[top++] = v;
  while (top > 0) {
    v = g->scratch[--top];
    for (e = g->first[v]; e < g->first[v + 1]; e++) {
      int w = g->succ[e];
      if (g->state[w] == SKIPPED) continue;
      g->state[w] = SKIPPED;
      g->scratch[top++] = w;
    }
  }
}

void lp_graph_finish(lp_graph *g, int node, int ok) {
  int e;
  g->state[node] = DONE;
  if (!ok) {
    skip_downstream(g, node);
    return;
  }
  for (e = g->first[node]; e < g->first[node + 1]; e++) g->pending[g->succ[e]]--;
}

int lp_graph_skipped(const lp_graph *g, int node) {
  return g->state[node] == SKIPPED;
}
