/* SPDX-License-Identifier: MIT */
/*
** timeit: the wall clock of a command, for the benchmarks in tests/bench.
** Runs a command directly (fork and exec, no shell in between) WARMUP
** times untimed, then ROUNDS times timed with CLOCK_MONOTONIC, and prints
** one line: the median, the minimum and the maximum, in nanoseconds.
**
**   timeit ROUNDS WARMUP COMMAND [ARGS...]
**
** Each run gets LUPINE_BENCH_REP=<n> in its environment (0, 1, 2, ...
** over warm-up and timed runs alike), so a script can make each run's
** values new. The command's stdout and stderr go to /dev/null unless
** LUPINE_BENCH_SHOW is set. With LUPINE_BENCH_SYNC set, each run starts
** after a sync(2), untimed: a run that writes GiBs is then not slowed by
** the write-back of the one before (each starts with nothing dirty, as the
** first did). A run that fails (exit status not 0, or a
** signal) stops timeit with status 1 and a message on stderr.
*/
#define _XOPEN_SOURCE 700   /* sync(2), beside POSIX.1-2008 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "measure.h"

/* Run argv once with LUPINE_BENCH_REP=rep; returns its wall time in ns,
** or -1 if it failed. */
static double run_once(char **argv, int rep, int show) {
  char value[32];
  double t0, t1;
  int status;
  pid_t pid;
  snprintf(value, sizeof value, "%d", rep);
  setenv("LUPINE_BENCH_REP", value, 1);
  if (getenv("LUPINE_BENCH_SYNC") != NULL) sync();
  t0 = clock_ns(CLOCK_MONOTONIC);
  pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (!show) {
      int fd = open("/dev/null", O_WRONLY);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2) close(fd);
      }
    }
    execvp(argv[0], argv);
    _exit(127);
  }
  while (waitpid(pid, &status, 0) < 0) {}
  t1 = clock_ns(CLOCK_MONOTONIC);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFEXITED(status))
      fprintf(stderr, "timeit: '%s' exited with status %d", argv[0], WEXITSTATUS(status));
    else
      fprintf(stderr, "timeit: '%s' ended by signal %d", argv[0], WTERMSIG(status));
    fprintf(stderr, show ? "\n" : " (LUPINE_BENCH_SHOW=1 shows its output)\n");
    return -1;
  }
  return t1 - t0;
}

int main(int argc, char **argv) {
  int rounds, warmup, i, show = getenv("LUPINE_BENCH_SHOW") != NULL;
  double *times;
  if (argc < 4 || (rounds = atoi(argv[1])) < 1 || (warmup = atoi(argv[2])) < 0) {
    fprintf(stderr, "usage: timeit ROUNDS WARMUP COMMAND [ARGS...]\n");
    return 2;
  }
  if ((times = malloc(sizeof *times * (size_t)rounds)) == NULL) return 1;
  for (i = 0; i < warmup; i++)
    if (run_once(argv + 3, i, show) < 0) return 1;
  for (i = 0; i < rounds; i++)
    if ((times[i] = run_once(argv + 3, warmup + i, show)) < 0) return 1;
  double mid = median(times, rounds);
  printf("%.0f %.0f %.0f\n", mid, times[0], times[rounds - 1]);
  free(times);
  return 0;
}
