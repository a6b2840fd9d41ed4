/* SPDX-License-Identifier: MIT */
/*
** worker.c: the coordinator's worker processes. The pool of a run's
** workers; starting one (the spawner forks it, its start frame brings the
** node); in the new process, the set-up before step.c runs the step; back
** in the coordinator, the calls a worker makes (served in the run's
** transaction), what it prints (to the log, the events and the step run's
** record, in bounded memory), its result, timeouts, and settling and
** reaping each attempt (a failure is tried again while retries remain).
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lauxlib.h"
#include "run.h"

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
  lp_buf frames;
  lp_buf line;                   /* the output line being read: at most LP_LINE_CAP bytes */
  lp_buf kept;                   /* this attempt's output for the step run's record */
  size_t room;                /* what the record may still take */
} worker;

/* What a step prints costs the coordinator bounded memory: a line longer
** than LP_LINE_CAP is handed on in pieces, and a step run keeps the first
** OUTPUT_CAP bytes (its attempts together) with a note, the rest only
** streamed to the log. */
#define OUTPUT_CAP (1024 * 1024)
#define SPLIT_NOTE " [line split at 64 KiB]"
#define CUT_NOTE "[output cut at 1 MiB]\n"

#define POOL_MT "lupine.WorkerPool"
#define POOL_MAX (2 * LP_MAX_JOBS)

struct lp_pool {
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
  lp_pool *p = luaL_checkudata(L, 1, POOL_MT);
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

lp_pool *lp_worker_pool(lp_run *r) {
  lua_State *L = r->L;
  int n = 2 * r->jobs, i;
  lp_pool *p = lua_newuserdatauv(L, sizeof *p + (size_t)n * sizeof(worker), 1);
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
  if (r->rt->events != NULL) {   /* the line buffer lives as long as the pool */
    r->line = lua_newuserdatauv(L, LP_LINE_CAP + 1, 0);
    lua_setiuservalue(L, -2, 1);
  }
  r->pool = p;
  return p;
}

/* In a new worker process: its output to output, the other workers'
** channels closed, signals as a new process has them; then step.c runs
** node. Never returns. */
static void become_worker(lp_run *r, int node, int to_parent, int from_parent, int output) {
  lua_State *L = r->L;
  int i;
  /* the worker holds none of the other workers' channels */
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
  lp_step_main(r, node, to_parent);
}

/*
** A new worker, forked by the spawner from the coordinator as it was when
** the run first needed one: the start frame brings what changed since
** (the node, its step run, seed and parameters, the versions its lookups
** found, the inputs' results); then step.c runs the step. fds: to
** the parent, from it, output.
*/
static void worker_start(void *ud, const int fds[3]) {
  lp_run *r = ud;
  lua_State *L = r->L;
  lp_arena arena;   /* lives as long as the worker: this never returns */
  lp_buf b = {NULL, 0, 0};
  char err[LP_ERRSZ];
  size_t n;
  int node, start;
  lp_arena_install(L, &arena);   /* without it, malloc serves the worker */
  n = lp_wire_read(fds[1], &b);
  if (n == 0 || lp_codec_decode(L, b.p + 4, n - 4, err, sizeof err) != LUPINE_OK ||
      !lua_istable(L, -1))
    _exit(73);   /* the coordinator is gone, or out of memory: it reports the exit */
  free(b.p);
  start = lua_gettop(L);
  lua_getfield(L, start, "node");
  node = (int)lua_tointeger(L, -1);
  lp_run_take_state(r, node, start);
  lua_getfield(L, start, "inputs");
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, r->results);
  }
  lua_settop(L, start - 1);
  become_worker(r, node, fds[0], fds[1], fds[2]);
}

void lp_worker_main(lua_State *L, lp_runtime *rt, int spec, int results, int report,
                    int to_parent, int output) {
  lp_run r;
  memset(&r, 0, sizeof r);
  r.L = L;
  r.rt = rt;
  r.spec = lua_absindex(L, spec);
  r.results = lua_absindex(L, results);
  report = lua_absindex(L, report);
  lp_run_field(L, r.spec, "nodes", LUA_TTABLE);
  r.nodes = lua_gettop(L);
  r.n = (int)luaL_len(L, r.nodes);
  lp_run_push_nodes(&r);
  lua_rawgeti(L, report, 1);
  lp_run_take_state(&r, 0, lua_gettop(L));
  /* the run the step context names (a spec's) */
  lua_getfield(L, -1, "run_id");
  lua_getfield(L, -2, "run_name");
  snprintf(r.id, sizeof r.id, "%s", luaL_optstring(L, -2, ""));
  snprintf(r.name, sizeof r.name, "%s", luaL_optstring(L, -1, ""));
  lua_pop(L, 3);
  lp_worker_pool(&r);   /* no slots: no other workers' channels to close */
  become_worker(&r, 0, to_parent, -1, output);
}

/* ---- the coordinator side ---- */

/* The calls a worker may make of its coordinator (lp_runtime_call sends
** them): each runs here as it would in a process outside a run, with at
** least nargs arguments. */
static const struct {
  const char *op;
  lp_call_fn fn;
  int nargs;
} calls[] = {
  {"query", lp_runtime_query, 1},
  {"write", lp_runtime_write, 1},
  {"list", lp_runtime_list, 2},
  {"save", lp_versions_save, 6},
  {"snapshot", lp_runtime_snapshot, 1},
  {"release", lp_runtime_release, 1},
};

/* Serve a call a worker made (table on top: { op, args }); reply on fd. */
static void serve_call(lp_run *r, int fd) {
  lua_State *L = r->L;
  lp_runtime *rt = r->rt;
  int msg = lua_gettop(L), nargs, i, nres = -1;
  const char *op;
  size_t k;
  lua_getfield(L, msg, "op");
  op = lua_isstring(L, -1) ? lua_tostring(L, -1) : "?";
  lua_getfield(L, msg, "args");
  lua_getfield(L, -1, "n");
  nargs = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, nargs + 8, "call");
  for (i = 1; i <= nargs; i++) lua_rawgeti(L, msg + 2, i);
  /* stack: msg, op, args, arg1..argn */
  for (k = 0; k < sizeof calls / sizeof calls[0]; k++)
    if (strcmp(op, calls[k].op) == 0 && nargs >= calls[k].nargs) break;
  if (k == sizeof calls / sizeof calls[0])
    lp_errf(rt->err, sizeof rt->err, "lupine: unknown call '%s' from a worker", op);
  else {
    if (calls[k].fn == lp_versions_save) lp_run_commit(r);   /* it makes a transaction of its own */
    /* what `lupine exec` reads is what this run has committed: all of it */
    if (calls[k].fn == lp_runtime_snapshot) lp_run_commit(r);
    nres = calls[k].fn(L, rt, msg + 3, nargs);
  }
  if (nres < 0) {
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
  lp_wire_send(L, fd);
  lua_settop(L, msg - 1);
}

/* Push node's start frame (see worker_start), its 4 bytes of length in
** front; or nil if it cannot be encoded. */
static void push_start(lp_run *r, int node) {
  lua_State *L = r->L;
  char err[LP_ERRSZ];
  unsigned char head[4];
  size_t n;
  lp_input_iter it;
  lp_run_push_state(r, node);
  lua_pushinteger(L, node);
  lua_setfield(L, -2, "node");
  lua_newtable(L);
  lua_rawgeti(L, r->nodes, node + 1);
  lp_run_inputs_begin(L, lua_gettop(L), &it);
  while (lp_run_inputs_next(L, &it)) {
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
  lp_wire_head(head, n);
  lua_pushlstring(L, (const char *)head, 4);
  lua_insert(L, -2);
  lua_concat(L, 2);
  lua_replace(L, -2);
}

/* A slot of the pool with no worker, or -1. */
static int free_slot(lp_run *r) {
  int i;
  for (i = 0; i < r->pool->n; i++)
    if (r->pool->w[i].pid == 0) return i;
  return -1;
}

/* How many workers are settled but not yet gone. */
int lp_worker_ending(lp_run *r) {
  int i, n = 0;
  for (i = 0; i < r->pool->n; i++) n += r->pool->w[i].pid != 0 && r->pool->w[i].settled;
  return n;
}

int lp_worker_can_start(lp_run *r) {
  return r->running < r->jobs && free_slot(r) >= 0;
}

/* Hand node (its step run recorded) to a worker. */
void lp_worker_start(lp_run *r, int node) {
  lua_State *L = r->L;
  char err[LP_ERRSZ];
  int top = lua_gettop(L);
  size_t frame_len = 0;
  const char *frame = NULL;
  pid_t pid;
  worker *w;
  w = &r->pool->w[free_slot(r)];
  if (r->pool->spawner.pid == 0) {
    /* it keeps a copy of this process: of its catalog connection too,
    ** which must not be in a transaction there */
    lp_run_commit(r);
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
  if (lp_run_push(r, node, LP_NODE_OUTPUT) == LUA_TSTRING)   /* what earlier attempts printed */
    w->room = lua_rawlen(L, -1) < OUTPUT_CAP ? OUTPUT_CAP - lua_rawlen(L, -1) : 0;
  else w->room = OUTPUT_CAP;
  lua_pop(L, 1);
  {
    /* math.huge: no timeout (a deadline that far is never reached anyway) */
    double timeout = lp_run_node_num(r, node, "timeout", 0);
    w->deadline = timeout > 0 && timeout < HUGE_VAL ? lp_run_now() + timeout * 1e3 : 0;
  }
  r->running++;
  /* the worker waits for this; one that died waiting is reported by its exit */
  frame = lua_tolstring(L, -1, &frame_len);
  lp_wire_write(w->to_child, frame, frame_len);
  lua_settop(L, top);
  /* the steps recorded before it are told done first: their versions'
  ** numbers are read back while this one runs (executor.c: record_later) */
  lp_run_answer(r);
  lp_run_emit(r, LUPINE_EVENT_STEP_START, node, NULL, NULL, 0, r->node[node].attempts);
  return;
nopipe:
  lua_pushfstring(L, "cannot start a worker process (%s)", strerror(errno));
failed:
  lp_run_push_error(r, node, lua_tostring(L, -1));
  lua_remove(L, -2);
  lp_run_stash_failure(r, node);
  lua_settop(L, top);
  }


/* Keep n bytes at p for the record, as far as there is room. */
static void keep(worker *w, const char *p, size_t n) {
  if (n > w->room) n = w->room;
  if (lp_wire_buf_add(&w->kept, p, n) != 0) n = w->room;   /* out of memory: keep no more */
  w->room -= n;
}

/* Hand a line of the worker's output (without its newline) to the log and
** keep it for the record; split: a LP_LINE_CAP piece of a longer line. */
static void output_line(lp_run *r, worker *w, const char *p, size_t n, int split) {
  lp_log(r->rt, LUPINE_LOG_OUTPUT, "[%s] %.*s", lp_run_node_str(r, w->node, "name"), (int)n, p);
  if (r->line != NULL) {   /* the line with a NUL after it, in memory of the run's own */
    size_t m = n < LP_LINE_CAP ? n : LP_LINE_CAP;
    memcpy(r->line, p, m);
    r->line[m] = '\0';
    lp_run_emit(r, LUPINE_EVENT_OUTPUT, w->node, NULL, r->line, 0, 0);
  }
  if (w->room == 0) return;
  keep(w, p, n);
  if (split) keep(w, SPLIT_NOTE, sizeof SPLIT_NOTE - 1);
  keep(w, "\n", 1);
  if (w->room > 0) return;
  if (w->kept.len > 0 && w->kept.p[w->kept.len - 1] != '\n') lp_wire_buf_add(&w->kept, "\n", 1);
  lp_wire_buf_add(&w->kept, CUT_NOTE, sizeof CUT_NOTE - 1);
}

/* Add what the worker kept of its output to the step run's record. */
static void keep_output(lp_run *r, worker *w) {
  lua_State *L = r->L;
  if (w->kept.len == 0) return;
  if (lp_run_push(r, w->node, LP_NODE_OUTPUT) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushliteral(L, "");
  }
  lua_pushlstring(L, w->kept.p, w->kept.len);
  lua_concat(L, 2);
  lp_run_keep(r, w->node, LP_NODE_OUTPUT);
  w->kept.len = 0;
}

/* A partial last line the worker printed, as a line of its own. */
static void flush_line(lp_run *r, worker *w) {
  if (w->line.len > 0) output_line(r, w, w->line.p, w->line.len, 0);
  w->line.len = 0;
}

/* Read what the child printed, at most 1 MiB a call, so that a step that
** prints without pause does not hold up the others (poll says when there
** is more); at end of file flush a last partial line. */
static void read_output(lp_run *r, worker *w) {
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
      /* a newline within room + 1 bytes ends a line of at most LP_LINE_CAP */
      size_t room = LP_LINE_CAP - w->line.len, left = (size_t)(end - p);
      const char *nl = memchr(p, '\n', left < room + 1 ? left : room + 1);
      size_t n = nl != NULL ? (size_t)(nl - p) : left > room ? room : left;
      if (nl == NULL && left <= room) {   /* the line goes on in the next read */
        lp_wire_buf_add(&w->line, p, n);
        break;
      }
      if (w->line.len > 0) {
        lp_wire_buf_add(&w->line, p, n);
        output_line(r, w, w->line.p, w->line.len, nl == NULL);
        w->line.len = 0;
      } else output_line(r, w, p, n, nl == NULL);
      p += n + (nl != NULL);
    }
  }
}

/* Read frames from the child: serve its calls, keep its result. */
static void read_frames(lp_run *r, worker *w) {
  lua_State *L = r->L;
  char chunk[65536], err[LP_ERRSZ];
  size_t n;
  ssize_t k = read(w->from_child, chunk, sizeof chunk);
  if (k < 0 && errno == EINTR) return;
  if (k <= 0) {
    close_fd(&w->from_child);
    return;
  }
  if (lp_wire_buf_add(&w->frames, chunk, (size_t)k) != 0) {
    kill(w->pid, SIGKILL);   /* out of memory: give up on this worker */
    return;
  }
  while ((n = lp_wire_ready(&w->frames)) > 0) {
    if (lp_codec_decode(L, w->frames.p + 4, n - 4, err, sizeof err) == LUPINE_OK &&
        lua_istable(L, -1)) {
      lua_getfield(L, -1, "kind");
      if (strcmp(luaL_optstring(L, -1, ""), "call") == 0) {
        lua_pop(L, 1);
        serve_call(r, w->to_child);
      } else {
        lua_pop(L, 1);
        w->got_result = 1;
        lp_run_keep(r, w->node, LP_NODE_RESULT);   /* pending once the worker settles */
      }
    } else lua_settop(L, lua_gettop(L) - (lua_gettop(L) > 0));
    lp_wire_buf_drop(&w->frames, n);
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
static void settle(lp_run *r, worker *w, int status, int lost) {
  lua_State *L = r->L;
  int node = w->node;
  if (w->output >= 0) read_output(r, w);
  flush_line(r, w);
  keep_output(r, w);
  w->settled = 1;
  r->running--;
  if (w->got_result) {
    lp_run_push(r, node, LP_NODE_RESULT);
    lp_run_set_pending(r, node);
    lua_pushnil(L);
    lp_run_keep(r, node, LP_NODE_RESULT);
  } else {
    lp_worker_ended(L, status, w->timed_out, lp_run_node_num(r, node, "timeout", 0), lost);
    lp_run_push_error(r, node, lua_tostring(L, -1));
    lua_remove(L, -2);
    lp_run_stash_failure(r, node);
  }
  lp_run_push(r, node, LP_NODE_PENDING);
  lua_getfield(L, -1, "error");
  if (lua_isstring(L, -1) && !r->stopping) {
    /* more retries than an int counts never run out in practice */
    double asked = lp_run_node_num(r, node, "retries", 0);
    int attempts = r->node[node].attempts, retries = asked < INT_MAX - 1 ? (int)asked : INT_MAX - 1;
    if (attempts <= retries) {
      double backoff = 100.0 * (1 << (attempts < 5 ? attempts - 1 : 4));
      char wait[24];
      lp_duration(backoff, wait, sizeof wait);
      lp_log(r->rt, LUPINE_LOG_INFO, "step '%s' failed (attempt %d of %d), retrying in "
             "%s: %s", lp_run_node_str(r, node, "name"), attempts, retries + 1, wait,
             lua_tostring(L, -1));
      lp_run_emit(r, LUPINE_EVENT_STEP_RETRY, node, NULL, lua_tostring(L, -1), backoff, attempts);
      lua_pushnil(L);
      lp_run_set_pending(r, node);
      r->node[node].retry_at = lp_run_now() + backoff;
      r->retrying++;
    }
  }
  lua_pop(L, 2);
}

/* The worker closed its end: it has ended (or is ending). Settle it if its
** result did not; free its slot. */
static void reap(lp_run *r, worker *w) {
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
void lp_worker_wait(lp_run *r) {
  struct pollfd fds[2 * POOL_MAX];
  worker *who[2 * POOL_MAX];
  int nfds = 0, i, timeout = -1;
  double now = lp_run_now();
  lp_run_beat(r, now);
  if (lp_catalog_in_transaction(r->rt->catalog)) {
    if (now - r->batch_began >= LP_BATCH_MS) lp_run_commit(r);
    else {
      timeout = poll_ms(r->batch_began + LP_BATCH_MS - now);
      if (lp_catalog_send(r->rt->catalog, r->rt->err, sizeof r->rt->err) != LUPINE_OK)
        lp_run_fail(r);
    }
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
      if (r->node[node].retry_at > 0) {
        int ms = poll_ms(r->node[node].retry_at - now);
        if (timeout < 0 || ms < timeout) timeout = ms;
      }
    }
  }
  if (r->rt->events != NULL && r->running > 0 && (timeout < 0 || timeout > LP_TICK_MS))
    timeout = (int)LP_TICK_MS;   /* the next tick */
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

/* Ctrl-C or SIGTERM: end every worker, settling its attempt. */
void lp_worker_stop_all(lp_run *r) {
  int i;
  for (i = 0; i < r->pool->n; i++) {
    worker *w = &r->pool->w[i];
    if (w->pid == 0) continue;
    kill(-w->pid, SIGKILL);
    reap(r, w);
  }
}

void lp_worker_done(lp_run *r) {
  lp_spawner_stop(&r->pool->spawner);
}
