/*
** main.c: the lupine command. Uses only the public header, lupine.h: what
** the CLI needs, a host program can do too.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lupine.h"

#define EXIT_RUN_FAILED 1
#define EXIT_USAGE 2

static const char usage[] =
  "usage: lupine <command> [options]\n"
  "\n"
  "commands:\n"
  "  run SCRIPT [ARGS...]   run a Lua pipeline script (ARGS become its `arg`)\n"
  "\n"
  "options:\n"
  "  -h, --help             show this help\n"
  "  -V, --version          show the version\n"
  "  -v, --verbose          (with run) also show each step as it starts and ends\n"
  "\n"
  "The catalog lives in $LUPINE_HOME, else the nearest .lupine folder found\n"
  "walking up from the current directory, else ./.lupine.\n"
  "Exit status: 0 ok, 1 a run or the script failed, 2 usage error.\n";

static void log_line(void *ud, int level, const char *msg) {
  int verbose = *(int *)ud;
  if (level == LUPINE_LOG_DEBUG && !verbose) return;
  if (level <= LUPINE_LOG_WARN) fprintf(stderr, "lupine: %s\n", msg);
  else printf("%s\n", msg);
}

static int usage_error(const char *fmt, const char *what) {
  fprintf(stderr, "lupine: ");
  fprintf(stderr, fmt, what);
  fprintf(stderr, "\nTry 'lupine --help'.\n");
  return EXIT_USAGE;
}

static int cmd_run(int argc, char **argv) {
  lupine *rt;
  int verbose = 0, rc, i = 0;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
    if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) verbose = 1;
    else if (strcmp(argv[i], "--") == 0) { i++; break; }
    else return usage_error("run: unknown option '%s'", argv[i]);
  }
  if (i == argc) return usage_error("%s", "run: no script given");
  if (lupine_open(&rt, NULL) != LUPINE_OK) {
    fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
    lupine_close(rt);
    return EXIT_RUN_FAILED;
  }
  lupine_set_log(rt, log_line, &verbose);
  rc = lupine_exec_file(rt, argv[i], argc - i - 1, argv + i + 1);
  fflush(stdout);
  switch (rc) {
    case LUPINE_OK: break;
    case LUPINE_IO:
      fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
      lupine_close(rt);
      return EXIT_USAGE;
    case LUPINE_RUNFAILED:
      fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
      break;
    default:
      fprintf(stderr, "lupine: %s\n", lupine_errmsg(rt));
  }
  lupine_close(rt);
  return rc == LUPINE_OK ? 0 : EXIT_RUN_FAILED;
}

int main(int argc, char **argv) {
  if (argc < 2) {
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
  return usage_error("unknown command '%s'", argv[1]);
}
