/* SPDX-License-Identifier: MIT */
/*
** main.c: the lupine command. Uses only the public header, lupine.h: what
** the CLI needs, a host program can do too. `lupine run`, --help and
** --version are answered here; every other command is Lua code,
** lupine.cli.main, called through the runtime's Lua state.
*/
#define _POSIX_C_SOURCE 200809L   /* isatty */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lupine.h"
#include "helpers.h"   /* LUPINE_HELPERS, written by the Makefile from HELPERDIR */

#define EXIT_RUN_FAILED 1
#define EXIT_USAGE 2

static const char usage[] =
  "usage: lupine <command> [options]\n"
  "\n"
  "commands:\n"
  "  run [OPTIONS] SCRIPT [ARGS...]      run a Lua pipeline script (ARGS become its `arg`)\n"
  "      -v, --verbose                   also show each step as it starts\n"
  "      -q, --quiet                     show only each run's result\n"
  "      -j, --jobs N                    run up to N steps at once (default: the cores)\n"
  "      --no-cache                      run every step, reusing no earlier result\n"
  "  artifact list                       list artifacts\n"
  "  artifact version list               list artifact versions\n"
  "  artifact version describe KEY       show an artifact version\n"
  "  artifact version update KEY -t TAG -r TAG   add (-t) or remove (-r) tags\n"
  "  artifact export KEY [--format json|cbor] [-o FILE]   write a version's value\n"
  "  artifact prune [--dry-run] [-y]     delete versions no step run produced or used\n"
  "  pipeline list                       list pipelines\n"
  "  pipeline runs list                  list pipeline runs\n"
  "  pipeline runs describe RUN          show a run and its steps\n"
  "  tag list                            list tags\n"
  "  tag create NAME [--exclusive]       create a tag (exclusive: one version of each artifact)\n"
  "  tag update NAME [--exclusive|--non-exclusive] [--name NEW]   change a tag\n"
  "  tag delete NAME                     delete a tag\n"
  "  lineage KEY [--up|--down] [--depth N] [--format text|dot|mermaid|json]\n"
  "                                      what a version was made from and what was made from it\n"
  "  gc [--dry-run]                      delete stored objects nothing refers to\n"
  "  artifact visualize KEY [-o FILE]    write a version's visualizations as one HTML page\n"
  "  ui [--host HOST] [--port PORT]      serve a read-only dashboard (default 127.0.0.1:8237)\n"
  "  repl [SCRIPT [ARGS...]]             a Lua REPL with `lupine` and `client` ready\n"
  "                                      (after running SCRIPT); `lupine` alone on a terminal\n"
  "\n"
  "KEY is NAME (the latest version), NAME:VERSION, an id or a unique id prefix.\n"
  "Every catalog command takes --json (machine-readable output) and --help\n"
  "(its options); lists take --page N and --size N.\n"
  "\n"
  "options:\n"
  "  -h, --help                          show this help\n"
  "  -V, --version                       show the version\n"
  "\n"
  "The catalog lives in $LUPINE_HOME, else the nearest .lupine folder found\n"
  "walking up from the current directory, else ./.lupine.\n"
  "Exit status: 0 ok, 1 a run or the script failed, or not found, 2 usage error.\n";

/* How `lupine run` shows a run's progress. */
typedef struct view {
  int verbose, quiet;
  int tty;             /* stdout is a terminal: a progress bar for long runs */
  int total, done;     /* steps of the run in progress */
  int bar;             /* the bar is on the last line */
} view;

#define BAR_FROM 10    /* steps from which a terminal gets a bar, not a line a step */

static void draw_bar(view *v) {
  int i, width = 30, filled = v->total > 0 ? v->done * width / v->total : 0;
  fputs("\r[", stdout);
  for (i = 0; i < width; i++) putchar(i < filled ? '#' : '.');
  printf("] %d/%d steps", v->done, v->total);
  v->bar = 1;
}

static void log_line(void *ud, int level, const char *msg) {
  view *v = ud;
  int bar = v->tty && !v->quiet && v->total >= BAR_FROM;
  if (level == LUPINE_LOG_PROGRESS) {
    if (sscanf(msg, "%d %d", &v->done, &v->total) != 2) return;
    if (v->tty && !v->quiet && v->total >= BAR_FROM) {
      draw_bar(v);
      fflush(stdout);
    }
    return;
  }
  if (level == LUPINE_LOG_DEBUG && !v->verbose) return;
  if (level == LUPINE_LOG_INFO && strncmp(msg, "step '", 6) == 0) {
    /* a settled step: a line, unless the bar shows it (failures always) */
    if (v->quiet || (bar && !v->verbose && strstr(msg, " failed") == NULL)) return;
  } else if (v->quiet && level >= LUPINE_LOG_INFO && strncmp(msg, "run '", 5) != 0) return;
  if (v->bar) {
    fputs("\r\033[K", stdout);   /* clear the bar; it is drawn again after the line */
    v->bar = 0;
  }
  if (level <= LUPINE_LOG_WARN) fprintf(stderr, "lupine: %s\n", msg);
  else printf("%s\n", msg);
  if (bar && v->done < v->total) draw_bar(v);
  if (strncmp(msg, "run '", 5) == 0) v->total = v->done = 0;   /* the next run starts afresh */
  fflush(stdout);   /* progress is read as it happens, also from a pipe */
}

static int usage_error(const char *fmt, const char *what) {
  fprintf(stderr, "lupine: ");
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\nTry 'lupine --help'.\n");
  return EXIT_USAGE;
}

/* The runtime a signal should stop (the CLI's one global: signals have
** nowhere else to look). */
static lupine *interruptible;

static void on_signal(int sig) {
  (void)sig;
  if (interruptible != NULL) lupine_interrupt(interruptible);
}

static int cmd_run(int argc, char **argv) {
  lupine *rt;
  view v = {0, 0, 0, 0, 0, 0};
  int rc, i = 0;
  char overrides[128] = "";
  struct sigaction sa;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
    if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) v.verbose = 1;
    else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) v.quiet = 1;
    else if (strcmp(argv[i], "--no-cache") == 0)
      strcat(overrides, "lupine.overrides.enable_cache = false\n");
    else if (strcmp(argv[i], "-j") == 0 || strcmp(argv[i], "--jobs") == 0) {
      char *end;
      long jobs = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
      if (i + 1 == argc || *end != '\0' || jobs < 1 || jobs > 64)
        return usage_error("run: --jobs takes a number from 1 to 64 (got '%s')",
                           i + 1 < argc ? argv[i + 1] : "");
      snprintf(overrides + strlen(overrides), sizeof overrides - strlen(overrides),
               "lupine.overrides.jobs = %ld\n", jobs);
      i++;
    } else if (strcmp(argv[i], "--") == 0) { i++; break; }
    else return usage_error("run: unknown option '%s'", argv[i]);
  }
  if (i == argc) return usage_error("%s", "run: no script given");
  if (lupine_open(&rt, NULL) != LUPINE_OK ||
      lupine_exec_string(rt, overrides, "=overrides") != LUPINE_OK) {
    fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
    lupine_close(rt);
    return EXIT_RUN_FAILED;
  }
  v.tty = isatty(1);
  lupine_set_log(rt, log_line, &v);
  /* Ctrl-C or SIGTERM stops the run: its workers end, it is marked stopped */
  interruptible = rt;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  rc = lupine_exec_file(rt, argv[i], argc - i - 1, (const char *const *)argv + i + 1);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  interruptible = NULL;
  fflush(stdout);
  switch (rc) {
    case LUPINE_OK: break;
    case LUPINE_IO:
      fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
      lupine_close(rt);
      return EXIT_USAGE;
    case LUPINE_FAILED:
      fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
      break;
    default:
      fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
  }
  lupine_close(rt);
  return rc == LUPINE_OK ? 0 : EXIT_RUN_FAILED;
}

/* In a protected call: the global _LUPINE_CLI = { args = { argv... },
** tty = stdout is a terminal, stdin_tty = stdin is one }. */
static int push_cli_args(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1), i;
  char **argv = lua_touserdata(L, 2);
  lua_createtable(L, 0, 3);
  lua_createtable(L, argc, 0);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "args");
  lua_pushboolean(L, isatty(1));
  lua_setfield(L, -2, "tty");
  lua_pushboolean(L, isatty(0));
  lua_setfield(L, -2, "stdin_tty");
  lua_setglobal(L, "_LUPINE_CLI");
  return 0;
}

/* lupine.h has no call-with-arguments entry point, so the arguments go in
** a global the chunk takes, and the exit status comes back in another. */
static const char cli_chunk[] =
  "local cli = _LUPINE_CLI\n"
  "_LUPINE_CLI = nil\n"
  "_LUPINE_CLI_STATUS = require('lupine.cli').main(cli.args,\n"
  "  { tty = cli.tty, stdin_tty = cli.stdin_tty })\n";

/* Every command but run: lupine.cli.main(args, { tty, stdin_tty }). */
static int cmd_catalog(int argc, char **argv) {
  lupine *rt;
  lua_State *L;
  view v = {0, 0, 0, 0, 0, 0};
  int status = EXIT_RUN_FAILED, isnum = 0;
  if (lupine_open(&rt, NULL) != LUPINE_OK) {
    fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
    lupine_close(rt);
    return EXIT_RUN_FAILED;
  }
  lupine_set_log(rt, log_line, &v);
  L = lupine_state(rt);
  lua_pushcfunction(L, push_cli_args);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "lupine: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  } else if (lupine_exec_string(rt, cli_chunk, "=lupine") != LUPINE_OK) {
    fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
  } else {
    lua_getglobal(L, "_LUPINE_CLI_STATUS");
    status = (int)lua_tointegerx(L, -1, &isnum);
    if (!isnum) status = EXIT_RUN_FAILED;
    lua_pop(L, 1);
  }
  fflush(stdout);
  lupine_close(rt);
  return status;
}

/* Run the program lupine-TOOL (repl.c, ui.c) with the arguments after the
** command; returns only if it cannot. It is looked for in the helpers'
** folder as installed, LUPINE_HELPERS (relative to this program's folder, so
** an installed tree still works when moved or staged under DESTDIR), then
** beside this program (the build tree). */
static int run_tool(const char *tool, int argc, char **argv) {
  char self[PATH_MAX], installed[PATH_MAX + 64], beside[PATH_MAX + 32], **args;
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  char *slash;
  int i, dir;
  if (n <= 0) {
    fprintf(stderr, "lupine: cannot find where lupine is installed (%s)\n", strerror(errno));
    return EXIT_RUN_FAILED;
  }
  self[n] = '\0';
  slash = strrchr(self, '/');
  dir = (int)(slash - self);
  snprintf(installed, sizeof installed, "%.*s/%s/lupine-%s", dir, self, LUPINE_HELPERS, tool);
  snprintf(beside, sizeof beside, "%.*s/lupine-%s", dir, self, tool);
  if ((args = calloc((size_t)argc + 2, sizeof *args)) == NULL) return EXIT_RUN_FAILED;
  for (i = 0; i < argc; i++) args[i + 1] = argv[i];
  args[0] = installed;
  execv(installed, args);
  if (errno == ENOENT) {
    args[0] = beside;
    execv(beside, args);
    if (errno == ENOENT) {
      fprintf(stderr, "lupine: cannot run lupine-%s: neither %s nor %s exists\n", tool,
              installed, beside);
      free(args);
      return EXIT_RUN_FAILED;
    }
  }
  fprintf(stderr, "lupine: cannot run %s (%s)\n", args[0], strerror(errno));
  free(args);
  return EXIT_RUN_FAILED;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    if (isatty(0)) return run_tool("repl", 0, argv + 1);
    fputs(usage, stderr);
    return EXIT_USAGE;
  }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "help") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
    printf("lupine %s\n", LUPINE_VERSION);
    return 0;
  }
  if (strcmp(argv[1], "run") == 0) return cmd_run(argc - 2, argv + 2);
  if (strcmp(argv[1], "repl") == 0) return run_tool("repl", argc - 2, argv + 2);
  if (strcmp(argv[1], "ui") == 0) return run_tool("ui", argc - 2, argv + 2);
  return cmd_catalog(argc - 1, argv + 1);
}
