/* SPDX-License-Identifier: MIT */
/*
** exec.c: one step run in a process of its own (`lupine exec`), from a
** step spec. lua/lupine/exec.lua reads the spec, loads the script's steps
** and writes the manifest (both formats: runtime/README.md, "Step spec and
** manifest"); this file is the process around the step.
**
** The process never writes the catalog: the spec names the stores by id,
** flavor and folder, and the inputs as objects in them, and the catalog
** to read (a PostgreSQL one, or a sqlite snapshot the coordinator made),
** opened read only on the first read. The step runs in a child, forked
** and run by the same worker code as the local executor's
** (lp_worker_main), and this process stands where the coordinator stands:
** it reads the child's frames, passes on and keeps what the step prints,
** and ends it at its timeout. The catalog calls the step makes are
** answered in the child (serve): writes and saves come here as records for
** the manifest, made in the catalog when the manifest is ingested; reads
** are answered from the spec's reads, else the catalog to read, else
** refused. core.exec_snapshot is the coordinator's side: the snapshot.
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
#include <sys/socket.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <time.h>
#include <unistd.h>
#include "lauxlib.h"
#include "lupine_int.h"

/* Why a read of the catalog fails here: the catalog is the coordinator's. */
static const char detached[] =
  "a step run by `lupine exec` cannot reach the catalog (the coordinator records what it "
  "does from its manifest)";

/* Registry key (its address): the spec's snapshot of reads, request bytes
** -> reply, in the child. */
static const char reads_key = 'S';

/* What the step printed that the manifest keeps: the first OUTPUT_CAP
** bytes, as a step run's record keeps. */
#define OUTPUT_CAP (1024 * 1024)
#define CUT_NOTE "[output cut at 1 MiB]\n"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* core.exec_begin(home, stores, store id, cwd, catalog): cut this process
** off the catalog but for reading catalog (a target or a snapshot's path;
** nil: none), go to cwd, open the spec's stores, store id's taking new
** objects */
static int core_exec_begin(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  const char *home = luaL_optstring(L, 1, NULL), *write_id = luaL_checkstring(L, 3),
             *cwd = luaL_optstring(L, 4, NULL), *catalog = luaL_optstring(L, 5, NULL);
  lp_store *store;
  int i;
  luaL_checktype(L, 2, LUA_TTABLE);
  /* the coordinator's folder: the script's name, and what the step opens by
  ** a relative path, mean the same here */
  if (cwd != NULL && chdir(cwd) != 0)
    return lp_raise(L, "step spec: cwd %s: %s", cwd, strerror(errno));
  rt->detached = detached;
  /* the home is where extracted copies of file inputs go; nothing else */
  if (lp_runtime_set_home(rt, home, "step spec: home") != LUPINE_OK ||
      (catalog != NULL && lp_runtime_set_catalog(rt, catalog, "step spec: catalog") != LUPINE_OK))
    return lp_raise(L, "%s", rt->err);
  rt->read_only = catalog != NULL;
  for (i = 1; lua_rawgeti(L, 2, i) == LUA_TTABLE; i++) {
    lua_getfield(L, -1, "id");
    lua_getfield(L, -2, "name");
    lua_getfield(L, -3, "flavor");
    lua_getfield(L, -4, "path");
    if (!lua_isstring(L, -4) || !lua_isstring(L, -3) || !lua_isstring(L, -2) ||
        !lua_isstring(L, -1))
      return lp_raise(L, "step spec: stores[%d]: id, name, flavor and path must be strings", i);
    if (lp_runtime_add_store(rt, lua_tostring(L, -4), lua_tostring(L, -3), lua_tostring(L, -2),
                             lua_tostring(L, -1), &store, rt->err, sizeof rt->err) != LUPINE_OK)
      return lp_raise(L, "step spec: store '%s': %s", lua_tostring(L, -3), rt->err);
    if (strcmp(lua_tostring(L, -4), write_id) == 0) {
      rt->store = store;
      snprintf(rt->store_id, sizeof rt->store_id, "%s", write_id);
    }
    lua_pop(L, 5);
  }
  if (rt->store == NULL)
    return lp_raise(L, "step spec: store '%s' is not among its stores", write_id);
  return 0;
}

/* ---- in the child: the step's catalog calls ---- */

/* Send the table on top (popped) to this process's parent: a call the
** manifest keeps. */
static void record(lua_State *L, lp_runtime *rt) {
  if (lp_wire_send(L, rt->to_parent) != 0) lp_raise(L, "lupine exec: lost its parent process");
}

/* Push an object as a table: { hash, size, stored_size }. */
static void push_object(lua_State *L, const lp_object *obj) {
  lua_createtable(L, 0, 3);
  lua_pushstring(L, obj->hash);
  lua_setfield(L, -2, "hash");
  lua_pushinteger(L, (lua_Integer)obj->size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)obj->stored_size);
  lua_setfield(L, -2, "stored_size");
}

/* A read: the reply the spec's reads have for exactly this call, else the
** catalog's, read only. */
static int serve_read(lua_State *L, lp_runtime *rt, const char *op, int first, int nargs) {
  char err[LP_ERRSZ];
  int i, n;
  lua_createtable(L, nargs + 1, 0);
  lua_pushstring(L, op);
  lua_rawseti(L, -2, 1);
  for (i = 0; i < nargs; i++) {
    lua_pushvalue(L, first + i);
    lua_rawseti(L, -2, i + 2);
  }
  if (lp_codec_encode(L, -1, "read", err, sizeof err) != LUPINE_OK) return lp_raise(L, "%s", err);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &reads_key);
  lua_insert(L, -2);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    if (!rt->read_only)
      return lp_raise(L, "%s: %s '%s' is not among the reads the step spec answers", detached,
                      op, nargs > 0 && lua_type(L, first) == LUA_TSTRING ? lua_tostring(L, first)
                                                                        : "?");
    lua_pop(L, 3);   /* the request, the spec's reads, nil */
    if (lp_runtime_ready(rt) != LUPINE_OK ||
        (n = strcmp(op, "list") == 0 ? lp_runtime_list(L, rt, first, nargs)
                                     : lp_runtime_query(L, rt, first, nargs)) < 0)
      return lp_raise(L, "%s", rt->err);
    return n;
  }
  lua_getfield(L, -1, "n");
  n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n, "reply");
  for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  return n;
}

/*
** rt->serve in the child. A write is kept for the manifest (it was checked
** against its declaration before it came here: core.write does that); a
** save puts its object, durably, and is kept with it; its version has no
** id or number until the manifest is ingested, so the step gets what is
** known of it. A read is the snapshot's.
*/
static int serve(lua_State *L, lp_runtime *rt, const char *op, int first, int nargs) {
  if (strcmp(op, "write") == 0) {
    record(L, rt);   /* the call itself */
    lua_pushinteger(L, 0);   /* rows changed: none yet */
    return 1;
  }
  lua_pop(L, 1);
  if (strcmp(op, "save") == 0) {
    /* args: bytes, cfg, extra, producer, output, data type (core.save) */
    lp_object obj;
    size_t len;
    const char *bytes = lua_tolstring(L, first, &len);
    if (lp_store_put(rt->store, bytes, len, &obj, rt->err, sizeof rt->err) != LUPINE_OK)
      return lp_raise(L, "%s", rt->err);
    lua_createtable(L, 0, 8);
    lua_pushliteral(L, "call");
    lua_setfield(L, -2, "kind");
    lua_pushliteral(L, "save");
    lua_setfield(L, -2, "op");
    push_object(L, &obj);
    lua_setfield(L, -2, "object");
    lua_pushvalue(L, first + 1);
    lua_setfield(L, -2, "cfg");
    lua_pushvalue(L, first + 2);
    lua_setfield(L, -2, "extra");
    lua_pushvalue(L, first + 3);
    lua_setfield(L, -2, "producer");
    lua_pushvalue(L, first + 4);
    lua_setfield(L, -2, "output");
    lua_pushvalue(L, first + 5);
    lua_setfield(L, -2, "data_type");
    record(L, rt);
    /* core.save's id, version, row: the version as far as it is known */
    lua_pushboolean(L, 1);
    lua_getfield(L, first + 1, "version");
    lua_createtable(L, 0, 6);
    lua_getfield(L, first + 1, "artifact");
    lua_setfield(L, -2, "name");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "version");
    lua_getfield(L, first + 1, "type");
    lua_setfield(L, -2, "type");
    lua_pushvalue(L, first + 5);
    lua_setfield(L, -2, "data_type");
    lua_pushstring(L, obj.hash);
    lua_setfield(L, -2, "content_hash");
    lua_pushinteger(L, (lua_Integer)obj.size);
    lua_setfield(L, -2, "size");
    return 3;
  }
  return serve_read(L, rt, op, first, nargs);
}

/* ---- in this process: the child, watched ---- */

/* A growing buffer of bytes, malloc'd: nothing in the loop that fills it
** raises, so it is freed on every path. Out of memory, it takes no more. */
typedef struct growing {
  char *p;
  size_t len, cap;
} growing;

static void add(growing *b, const char *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    char *q;
    while (cap < b->len + n) cap *= 2;
    if ((q = realloc(b->p, cap)) == NULL) return;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

/* Keep n bytes at p of what the step printed, while there is room. */
static void keep(growing *b, const char *p, size_t n) {
  if (b->len >= OUTPUT_CAP) return;
  if (b->len + n < OUTPUT_CAP) {
    add(b, p, n);
    return;
  }
  add(b, p, OUTPUT_CAP - b->len);
  if (b->len > 0 && b->p[b->len - 1] != '\n') add(b, "\n", 1);
  add(b, CUT_NOTE, sizeof CUT_NOTE - 1);   /* past the cap now: nothing more is kept */
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Decode the frames in the n bytes at p: the result into *result's slot
** (stack index result), every other frame appended to the list at records. */
static void take_frames(lua_State *L, const char *p, size_t n, int result, int records) {
  char err[LP_ERRSZ];
  const unsigned char *h;
  size_t len;
  int k = 0;
  while (n >= 4) {
    h = (const unsigned char *)p;
    len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    if (len > n - 4) break;   /* cut short: the child died writing it */
    if (lp_codec_decode(L, p + 4, len, err, sizeof err) == LUPINE_OK && lua_istable(L, -1)) {
      lua_getfield(L, -1, "kind");
      if (strcmp(luaL_optstring(L, -1, ""), "result") == 0) {
        lua_pop(L, 1);
        lua_replace(L, result);
      } else {
        lua_pop(L, 1);
        lua_rawseti(L, records, ++k);
      }
    } else lua_pop(L, 1);
    p += 4 + len;
    n -= 4 + len;
  }
}

/* Put the outputs' bytes of a successful result (at stack index result)
** in the write store, durably, each replaced by its object { hash, size,
** stored_size }. 1; or 0 with the message pushed. */
static int put_outputs(lua_State *L, lp_runtime *rt, int result) {
  lp_object obj;
  int outs, nout, k;
  if (lua_getfield(L, result, "outs") != LUA_TTABLE) {
    lua_pop(L, 1);
    return 1;
  }
  if (lp_runtime_write_store(rt) != LUPINE_OK) {
    lua_pushstring(L, rt->err);
    return 0;
  }
  outs = lua_gettop(L);
  nout = (int)lua_rawlen(L, outs) / 2;
  for (k = 1; k <= nout; k++) {
    size_t len;
    const char *bytes;
    if (lua_rawgeti(L, outs, k) != LUA_TSTRING) {   /* a file the step stored: its object */
      lua_pop(L, 1);
      continue;
    }
    bytes = lua_tolstring(L, -1, &len);
    if (lp_store_put(rt->store, bytes, len, &obj, rt->err, sizeof rt->err) != LUPINE_OK) {
      lua_pushfstring(L, "output %d: %s", k, rt->err);
      return 0;
    }
    lua_pop(L, 1);
    push_object(L, &obj);
    lua_rawseti(L, outs, k);
  }
  lua_pop(L, 1);
  return 1;
}

/* In the child, protected: a malformed run spec raises back to here, not
** into the parent's Lua code, which this process must never run. */
static int worker_body(lua_State *L) {
  lp_worker_main(L, lp_runtime_of(L), 1, 2, 3, (int)lua_tointeger(L, 4),
                 (int)lua_tointeger(L, 5));
  return 0;
}

/* The name of a signal that stops `lupine exec` (those it catches). */
static const char *stop_name(int sig) {
  return sig == SIGTERM ? "SIGTERM" : "SIGINT";
}

/* How long after a SIGCONT a SIGTERM may still come: Slurm sends each
** process of a job SIGCONT, then each SIGTERM (a few ms apart here). */
#define CONT_WAIT_MS 1000

/* Take the signals of set that came (without waiting; or, with wait_ms,
** SIGTERM and SIGINT up to then): the first SIGTERM or SIGINT into
** *stopped, the time of a SIGCONT into *cont_at. */
static void take_signals(const sigset_t *set, int *stopped, double *cont_at, double wait_ms) {
  struct timespec ts = {0, 0};
  int sig;
  if (wait_ms > 0) {
    ts.tv_sec = (time_t)(wait_ms / 1e3);
    ts.tv_nsec = (long)(fmod(wait_ms, 1e3) * 1e6);
  }
  while (!*stopped && (sig = sigtimedwait(set, NULL, &ts)) > 0) {
    if (sig == SIGCONT) *cont_at = now_ms();
    else *stopped = sig;
  }
}

/*
** core.exec_step(run spec, results, report, timeout, reads) -> result,
** records, logs, ended, signal
** Run node 1 of the run spec (see lp_worker_main) in a child, passing on
** what it prints (and keeping the first MiB: logs). result is the child's
** result frame, its outputs' objects put in the write store; records the
** writes and saves it made, in order; ended, when there is no result, why
** (the child's timeout passed, or how it ended). reads: { { request bytes,
** reply }, ... }, the snapshot. SIGTERM or SIGINT to this process (scancel
** sends SIGTERM, and so does Slurm at a job's time limit) ends the child
** at once and leaves this process to write the manifest that says so:
** signal is that signal's number (nil: none came). The two stay blocked
** after it returns, until the process exits.
*/
static int core_exec_step(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  double timeout = luaL_optnumber(L, 4, 0), deadline = 0;
  int res[2], out[2], status = 0, timed_out = 0, lost = 0, i, result, records, stopped = 0;
  sigset_t stops, was_mask;
  double cont_at = 0;
  growing frames = {NULL, 0, 0}, logs = {NULL, 0, 0};
  pid_t pid, parent;
  void (*was_pipe)(int);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 5);
  lua_newtable(L);   /* 6: the snapshot, by request */
  for (i = 1; lua_istable(L, 5) && lua_rawgeti(L, 5, i) == LUA_TTABLE; i++) {
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    lua_rawset(L, 6);
    lua_pop(L, 1);
  }
  lua_settop(L, 6);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &reads_key);
  /* the result on a socket: frames are sent with send() */
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, res) != 0) return lp_raise(L, "lupine exec: %s", strerror(errno));
  if (pipe(out) != 0) {
    close(res[0]);
    close(res[1]);
    return lp_raise(L, "lupine exec: %s", strerror(errno));
  }
  fflush(stdout);
  fflush(stderr);
  parent = getpid();
  /* the stopping signals are taken (sigtimedwait) rather than handled: no
  ** handler, so no global for one to set. Blocked from before the fork (one
  ** that comes as the step starts is taken too), and not in the child: it
  ** and what it runs keep their default action. */
  sigemptyset(&stops);
  sigaddset(&stops, SIGTERM);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGCONT);   /* (it still continues the process) */
  sigprocmask(SIG_BLOCK, &stops, &was_mask);
  if ((pid = fork()) < 0) {
    sigprocmask(SIG_SETMASK, &was_mask, NULL);
    close(res[0]), close(res[1]), close(out[0]), close(out[1]);
    return lp_raise(L, "lupine exec: cannot start the step's process (%s)", strerror(errno));
  }
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &was_mask, NULL);
    /* a group of its own: the programs it starts end with it at its
    ** timeout; and it ends with this process, should that be killed */
    setpgid(0, 0);
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(70);   /* it died before prctl */
#endif
    close(res[0]);
    close(out[0]);
    rt->serve = serve;
    lua_pushcfunction(L, worker_body);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_pushinteger(L, res[1]);
    lua_pushinteger(L, out[1]);
    lua_pcall(L, 5, 0, 0);
    _exit(70);   /* lp_worker_main never returns: the spec was malformed */
  }
  setpgid(pid, pid);
  close(res[1]);
  close(out[1]);
  /* a reader of what the step prints that went away costs it that, not
  ** its manifest */
  was_pipe = signal(SIGPIPE, SIG_IGN);
  if (timeout > 0 && timeout < HUGE_VAL) deadline = now_ms() + timeout * 1e3;
  while (res[0] >= 0 || out[0] >= 0) {
    struct pollfd fds[2];
    char chunk[65536];
    int nfds = 0, ms = -1, j;
    if (deadline > 0) {
      double left = deadline - now_ms();
      if (left <= 0 && !timed_out) {
        kill(-pid, SIGKILL);
        timed_out = 1;
      }
      if (!timed_out) ms = (int)(left < INT_MAX - 1 ? left + 1 : INT_MAX);
    }
    if (res[0] >= 0) fds[nfds].fd = res[0], fds[nfds++].events = POLLIN;
    if (out[0] >= 0) fds[nfds].fd = out[0], fds[nfds++].events = POLLIN;
    /* a signal taken is looked for ten times a second */
    if (ms < 0 || ms > 100) ms = 100;
    if (!stopped) {
      take_signals(&stops, &stopped, &cont_at, 0);
      if (stopped) kill(-pid, SIGKILL);
    }
    if (poll(fds, (nfds_t)nfds, ms) < 0) continue;   /* EINTR */
    for (j = 0; j < nfds; j++) {
      ssize_t k;
      if (!(fds[j].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      k = read(fds[j].fd, chunk, sizeof chunk);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        close(fds[j].fd);
        if (fds[j].fd == res[0]) res[0] = -1;
        else out[0] = -1;
      } else if (fds[j].fd == res[0]) {
        add(&frames, chunk, (size_t)k);
      } else {
        write_all(1, chunk, (size_t)k);   /* the step's output is this process's */
        keep(&logs, chunk, (size_t)k);
      }
    }
  }
  signal(SIGPIPE, was_pipe);
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      lost = 1;
      break;
    }
  /* Slurm signals every process of the job, one after the other: the
  ** step's process (or a program it ran, whose end may have ended the
  ** step) may have had its SIGTERM before this process got its own, which
  ** may have come meanwhile, or be on its way: after a SIGCONT, it is
  ** awaited a moment. Any of these stops the step. The signals stay
  ** blocked: all this process has left to do is write the manifest and
  ** exit, and a signal coming now would leave none, or a temporary file. */
  take_signals(&stops, &stopped, &cont_at, 0);
  if (!stopped && cont_at > 0 && now_ms() - cont_at < CONT_WAIT_MS)
    take_signals(&stops, &stopped, &cont_at, CONT_WAIT_MS - (now_ms() - cont_at));
  if (!stopped && !lost && !timed_out && WIFSIGNALED(status) &&
      (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGINT))
    stopped = WTERMSIG(status);
  lua_pushlstring(L, frames.p != NULL ? frames.p : "", frames.len);
  free(frames.p);
  lua_pushlstring(L, logs.p != NULL ? logs.p : "", logs.len);
  free(logs.p);
  /* stack: ..., frames, logs */
  lua_pushnil(L);
  result = lua_gettop(L);
  lua_newtable(L);
  records = lua_gettop(L);
  take_frames(L, lua_tostring(L, result - 2), lua_rawlen(L, result - 2), result, records);
  lua_pushvalue(L, result - 1);
  if (stopped) {
    lua_pushnil(L);   /* whatever the step sent: it was stopped */
    lua_replace(L, result);
    lua_pushfstring(L, "its process was stopped by %s (signal %d)", stop_name(stopped),
                    stopped);
  } else if (lua_istable(L, result) && !put_outputs(L, rt, result)) {
    lua_pushnil(L);   /* no result: why is the message on top */
    lua_replace(L, result);
  } else if (lua_istable(L, result)) lua_pushnil(L);
  else lp_worker_ended(L, status, timed_out, timeout, lost);
  if (stopped) lua_pushinteger(L, stopped);
  else lua_pushnil(L);
  return 5;
}

/* core.write_atomic(path, bytes): write a file whole or not at all */
static int core_write_atomic(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *bytes = luaL_checklstring(L, 2, &len);
  char tmp[PATH_MAX], dir[PATH_MAX], *slash;
  int fd, ok;
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
    return lp_raise(L, "cannot write %s (the path is too long)", path);
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
    return lp_raise(L, "cannot write %s (%s)", path, strerror(errno));
  ok = write_all(fd, bytes, len) == 0 && fsync(fd) == 0;
  if (close(fd) != 0) ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return lp_raise(L, "cannot write %s (%s)", path, strerror(e));
  }
  /* the rename itself made durable: the folder's entry */
  snprintf(dir, sizeof dir, "%s", path);
  slash = strrchr(dir, '/');
  if (slash == NULL) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';
  if ((fd = open(dir, O_RDONLY | O_CLOEXEC)) >= 0) {
    fsync(fd);
    close(fd);
  }
  return 0;
}

/*
** core.exec_replay(calls): in a worker, make the catalog calls of an
** ingested manifest through the coordinator, in order, as the step would
** have made them there: calls = { { op = "write" | "save", args = { n =
** count, ... } }, ... } (lua/lupine/exec.lua, ingest).
*/
static int core_exec_replay(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  int i, k, n, top;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (rt->to_parent == 0) return luaL_error(L, "exec_replay: not in a worker");
  for (i = 1; lua_rawgeti(L, 1, i) == LUA_TTABLE; i++) {
    top = lua_gettop(L);
    lua_getfield(L, top, "op");
    lua_getfield(L, top, "args");
    lua_getfield(L, -1, "n");
    n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n + 4, "call");
    for (k = 1; k <= n; k++) lua_rawgeti(L, top + 2, k);
    lp_wire_call(L, rt, lua_tostring(L, top + 1), top + 3, n);
    lua_settop(L, top - 1);
  }
  return 0;
}

/* core.exec_snapshot(dir) -> the catalog `lupine exec` is to read: the
** path of a snapshot of it in folder dir (made there if it changed since
** the last), or a server's target. In a worker the coordinator answers,
** having committed what its run recorded, so the reader sees all of it. */
static int core_exec_snapshot(lua_State *L) {
  luaL_checkstring(L, 1);
  return lp_runtime_call(L, "snapshot", lp_runtime_snapshot, 1, 1);
}

/* core.exec_release(catalog): the step whose spec named this catalog
** (exec_snapshot's) is done with it: a snapshot nobody needs is removed */
static int core_exec_release(lua_State *L) {
  luaL_checkstring(L, 1);
  return lp_runtime_call(L, "release", lp_runtime_release, 1, 1);
}

/* The core functions of this file, which luaopen_lupine_core adds. */
const luaL_Reg lp_exec_core[] = {
  {"exec_begin", core_exec_begin},
  {"exec_step", core_exec_step},
  {"write_atomic", core_write_atomic},
  {"exec_replay", core_exec_replay},
  {"exec_snapshot", core_exec_snapshot},
  {"exec_release", core_exec_release},
  {NULL, NULL}
};
