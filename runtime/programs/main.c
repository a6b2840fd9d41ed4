/* SPDX-License-Identifier: MIT */
/*
** main.c: the lupine command. It, repl.c and ui.c are the programs built
** on the library, kept apart from it in runtime/programs/; each uses only
** the public header, lupine.h (and Lua's): what the CLI needs, a host
** program can do too.
**
** Every command line is parsed by lupine.command.main (Lua), one grammar for
** every command; this file does what it answers: a catalog command has
** run in Lua already (its exit status comes back); `lupine run` runs its
** script here, the run's events drawn by the Lua view the answer holds;
** `lupine repl` and `lupine ui` are helper programs, started with the
** arguments as parsed.
*/
#define _POSIX_C_SOURCE 200809L   /* isatty, dup */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "lauxlib.h"
#include "lupine.h"
#include "helpers.h"   /* LUPINE_HELPERS, written by the Makefile from HELPERDIR */

#define EXIT_FAILED 1

/* Registry keys: the answer of lupine.command.main for `lupine run` (its
** event and finish functions). */
static const char plan_key = 0;

/* The runtime a signal should stop, and the signal that came (the CLI's
** globals: signal handlers have nowhere else to look). */
static lupine *interruptible;
static volatile sig_atomic_t got_signal;

static void on_signal(int sig) {
  got_signal = sig;
  if (interruptible != NULL) lupine_interrupt(interruptible);
}

/* The width of the terminal on fd, or 0. */
static int columns(int fd) {
  struct winsize ws;
  return isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
}

/* In a protected call: lupine.command.main(args, { tty, stdin_tty,
** stderr_tty, columns }), its answer left on the stack. */
static int call_main(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1), i;
  char **argv = lua_touserdata(L, 2);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lupine.command");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 0);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_createtable(L, 0, 4);
  lua_pushboolean(L, isatty(1));
  lua_setfield(L, -2, "tty");
  lua_pushboolean(L, isatty(0));
  lua_setfield(L, -2, "stdin_tty");
  lua_pushboolean(L, isatty(2));
  lua_setfield(L, -2, "stderr_tty");
  lua_pushinteger(L, columns(1) > 0 ? columns(1) : columns(2));
  lua_setfield(L, -2, "columns");
  lua_call(L, 2, 1);
  return 1;
}

static const char *const event_names[] = {
  NULL, "run_start", "step_start", "step_end", "step_retry", "output", "tick", "run_end"};

static void set_string(lua_State *L, const char *k, const char *v) {
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* In a protected call: plan.event(the event at 1, as a table). */
static int deliver(lua_State *L) {
  const lupine_event *ev = lua_touserdata(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &plan_key);
  lua_getfield(L, -1, "event");
  lua_createtable(L, 0, 10);
  set_string(L, "type", ev->type > 0 && ev->type <= LUPINE_EVENT_RUN_END
                          ? event_names[ev->type] : "unknown");
  set_string(L, "run_id", ev->run_id);
  set_string(L, "run", ev->run);
  set_string(L, "pipeline", ev->pipeline);
  set_string(L, "step", ev->step);
  set_string(L, "status", ev->status);
  set_string(L, "detail", ev->detail);
  lua_pushnumber(L, ev->ms);
  lua_setfield(L, -2, "ms");
  lua_pushnumber(L, ev->at);
  lua_setfield(L, -2, "at");
  lua_pushinteger(L, ev->total);
  lua_setfield(L, -2, "total");
  lua_pushinteger(L, ev->attempt);
  lua_setfield(L, -2, "attempt");
  lua_call(L, 1, 0);
  return 0;
}

/* Where the events and warnings go: the state whose registry holds the
** view of `lupine run`, once there is one. */
typedef struct view {
  lua_State *L;
  int ready;    /* a run's view is in the registry (else: plain lines on stderr) */
  int failed;   /* the view raised an error: it was said, and it is not called again */
} view;

/* In a protected call: plan[name at 1](the number at 2) -> its result. */
static int call_field(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &plan_key);
  lua_getfield(L, -1, lua_tostring(L, 1));
  lua_pushvalue(L, 2);
  lua_call(L, 1, 1);
  return 1;
}

/* Call plan[name](at) for the view; its answer as a boolean. */
static int ask_view(view *v, const char *name, double at) {
  int yes = 0;
  lua_pushcfunction(v->L, call_field);
  lua_pushstring(v->L, name);
  lua_pushnumber(v->L, at);
  if (lua_pcall(v->L, 2, 1, 0) != LUA_OK) {
    fprintf(stderr, "lupine: cannot show the progress (%s)\n", lua_tostring(v->L, -1));
    v->failed = 1;
  } else yes = lua_toboolean(v->L, -1);
  lua_pop(v->L, 1);
  return yes;
}

/* The runtime's events go to the Lua view (which only writes to the
** terminal: it never calls the runtime). A view that fails says why once
** and the run goes on. What a step prints is written here, with no copy
** of it made in Lua (a step may print gigabytes): the view clears its
** block out of the way first, and draws it again after. */
static void on_event(void *ud, const lupine_event *ev) {
  view *v = ud;
  if (v->failed || !lua_checkstack(v->L, 4)) return;
  if (ev->type == LUPINE_EVENT_OUTPUT) {
    if (ask_view(v, "output_begin", ev->at)) {
      printf("[%s] %s\n", ev->step, ev->detail);
      fflush(stdout);
    }
    if (!v->failed) ask_view(v, "output_end", ev->at);
    return;
  }
  lua_pushcfunction(v->L, deliver);
  lua_pushlightuserdata(v->L, (void *)ev);
  if (lua_pcall(v->L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "lupine: cannot show the progress (%s)\n", lua_tostring(v->L, -1));
    lua_pop(v->L, 1);
    v->failed = 1;
  }
}

/* In a protected call: plan.warn(the message at 1). */
static int deliver_warning(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &plan_key);
  lua_getfield(L, -1, "warn");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  return 0;
}

/* The runtime's warnings and errors (a damaged object it replaced, ...)
** go to the view too, which keeps them clear of its live block; the rest
** of the log the events say. */
static void on_log(void *ud, int level, const char *msg) {
  view *v = ud;
  if (level > LUPINE_LOG_WARN) return;
  if (!v->ready || v->failed || !lua_checkstack(v->L, 3)) {
    fprintf(stderr, "lupine: %s\n", msg);
    return;
  }
  lua_pushcfunction(v->L, deliver_warning);
  lua_pushstring(v->L, msg);
  if (lua_pcall(v->L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "lupine: %s\n", msg);
    lua_pop(v->L, 1);
  }
}

/* In a protected call: plan.finish(code, message, signal) -> exit status. */
static int call_finish(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &plan_key);
  lua_getfield(L, -1, "finish");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_call(L, 3, 1);
  return 1;
}

/* `lupine run`, as parsed: the plan (on top of L's stack) holds the script,
** its arguments and whether stdout is kept for --json. Ctrl-C or SIGTERM
** stops the run (its workers end, it is marked stopped). */
static int run_script(lupine *rt, lua_State *L, view *v) {
  int argc, i, rc, status, json, saved = -1, isnum = 0;
  char **argv = NULL, *script = NULL;
  struct sigaction sa;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &plan_key);
  lua_getfield(L, -1, "json");
  json = lua_toboolean(L, -1);
  lua_getfield(L, -2, "script");
  lua_getfield(L, -3, "args");
  argc = (int)lua_rawlen(L, -1);
  if ((argv = calloc((size_t)argc + 1, sizeof *argv)) == NULL ||
      (script = strdup(lua_tostring(L, -2))) == NULL) {
    fprintf(stderr, "lupine: out of memory\n");
    free(argv);
    return EXIT_FAILED;
  }
  for (i = 0; i < argc; i++) {
    lua_rawgeti(L, -1, i + 1);
    argv[i] = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 3);
  /* --json: stdout holds the result alone; what the script and its steps
  ** print, and the progress, go to stderr meanwhile */
  if (json) {
    fflush(stdout);
    if ((saved = dup(1)) >= 0) dup2(2, 1);
  }
  v->ready = 1;
  lupine_set_events(rt, on_event, v);
  interruptible = rt;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  rc = lupine_exec_file(rt, script, argc, (const char *const *)argv);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  interruptible = NULL;
  lupine_set_events(rt, NULL, NULL);
  v->ready = 0;
  fflush(stdout);
  if (saved >= 0) {
    dup2(saved, 1);
    close(saved);
  }
  for (i = 0; i < argc; i++) free(argv[i]);
  free(argv);
  free(script);
  lua_pushcfunction(L, call_finish);
  lua_pushinteger(L, rc);
  lua_pushstring(L, rc == LUPINE_OK ? NULL : lupine_errmsg(rt));
  lua_pushinteger(L, got_signal);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
    fprintf(stderr, "lupine: %s\n", lua_tostring(L, -1));
    return EXIT_FAILED;
  }
  status = (int)lua_tointegerx(L, -1, &isnum);
  return isnum ? status : EXIT_FAILED;
}

/* Run the program lupine-TOOL (repl.c, ui.c) with args; returns only if it
** cannot. It is looked for in the helpers' folder as installed,
** LUPINE_HELPERS (relative to this program's folder, so an installed tree
** still works when moved or staged under DESTDIR), then beside this
** program (the build tree). args[0] is left for the program's path. */
static int run_tool(const char *tool, char **args) {
  char self[PATH_MAX], installed[PATH_MAX + 64], beside[PATH_MAX + 32];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  char *slash;
  int dir;
  if (n <= 0) {
    fprintf(stderr, "lupine: cannot find where lupine is installed (%s)\n", strerror(errno));
    return EXIT_FAILED;
  }
  self[n] = '\0';
  slash = strrchr(self, '/');
  dir = (int)(slash - self);
  snprintf(installed, sizeof installed, "%.*s/%s/lupine-%s", dir, self, LUPINE_HELPERS, tool);
  snprintf(beside, sizeof beside, "%.*s/lupine-%s", dir, self, tool);
  args[0] = installed;
  execv(installed, args);
  if (errno == ENOENT) {
    args[0] = beside;
    execv(beside, args);
    if (errno == ENOENT) {
      fprintf(stderr, "lupine: cannot run lupine-%s: neither %s nor %s exists\n", tool,
              installed, beside);
      return EXIT_FAILED;
    }
  }
  fprintf(stderr, "lupine: cannot run %s (%s)\n", args[0], strerror(errno));
  return EXIT_FAILED;
}

/* `lupine repl` and `lupine ui`: the plan on top of L names the helper and
** its arguments; they are copied out, the runtime closed, the helper run. */
static int start_tool(lupine *rt, lua_State *L) {
  char tool[16], **args;
  int argc, i, status;
  lua_getfield(L, -1, "exec");
  snprintf(tool, sizeof tool, "%s", lua_tostring(L, -1));
  lua_getfield(L, -2, "args");
  argc = (int)lua_rawlen(L, -1);
  if ((args = calloc((size_t)argc + 2, sizeof *args)) == NULL) {
    fprintf(stderr, "lupine: out of memory\n");
    return EXIT_FAILED;
  }
  for (i = 0; i < argc; i++) {
    lua_rawgeti(L, -1, i + 1);
    args[i + 1] = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lupine_close(rt);
  status = run_tool(tool, args);
  for (i = 0; i < argc; i++) free(args[i + 1]);
  free(args);
  return status;
}

int main(int argc, char **argv) {
  lupine *rt;
  lua_State *L;
  view v = {NULL, 0, 0};
  int status = EXIT_FAILED, isnum = 0;
  if (lupine_open(&rt, NULL) != LUPINE_OK) {
    fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
    lupine_close(rt);
    return EXIT_FAILED;
  }
  L = lupine_state(rt);
  v.L = L;
  lupine_set_log(rt, on_log, &v);   /* the runtime's warnings, for every command */
  lua_pushcfunction(L, call_main);
  lua_pushinteger(L, argc - 1);
  lua_pushlightuserdata(L, argv + 1);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    fprintf(stderr, "lupine: %s\n", lua_tostring(L, -1));
  } else if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "exec");
    if (lua_isstring(L, -1)) {
      lua_pop(L, 1);
      return start_tool(rt, L);   /* it closed the runtime */
    }
    lua_pop(L, 1);
    status = run_script(rt, L, &v);
  } else {
    status = (int)lua_tointegerx(L, -1, &isnum);
    if (!isnum) status = EXIT_FAILED;
  }
  fflush(stdout);
  lupine_close(rt);
  return status;
}
