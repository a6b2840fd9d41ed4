/* SPDX-License-Identifier: MIT */
/*
** floor.c: what one executed step costs at the least on this machine, for
** steps.lua to print beside its figures (a median over rounds, in us):
**
**   floor fork MIB ROUNDS   fork, _exit and waitpid of a process with MIB
**                           MiB of anonymous memory in use (a worker's fork
**                           copies the page tables of the process it forks)
**   floor create DIR ROUNDS create, write 64 bytes, close and unlink a file in DIR
**   floor sync DIR ROUNDS   the same with an fdatasync before the close
*/
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "measure.h"

static int file_once(const char *dir, int round, int sync) {
  char path[4096], data[64];
  int fd;
  snprintf(path, sizeof path, "%s/floor-%ld-%d", dir, (long)getpid(), round);
  memset(data, 'x', sizeof data);
  if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) return -1;
  if (write(fd, data, sizeof data) != (ssize_t)sizeof data || (sync && fdatasync(fd) != 0)) {
    close(fd);
    unlink(path);
    return -1;
  }
  close(fd);
  return unlink(path);
}

int main(int argc, char **argv) {
  int rounds, i;
  double *t;
  char *memory = NULL;
  if (argc != 4 || (rounds = atoi(argv[3])) < 1) {
    fprintf(stderr, "usage: floor fork MIB ROUNDS | floor create|sync DIR ROUNDS\n");
    return 2;
  }
  if (strcmp(argv[1], "fork") == 0) {
    size_t size = (size_t)atoi(argv[2]) << 20;
    if ((memory = malloc(size + 1)) == NULL) return 1;
    memset(memory, 1, size + 1);
  } else if (strcmp(argv[1], "create") != 0 && strcmp(argv[1], "sync") != 0) {
    fprintf(stderr, "floor: unknown measure '%s'\n", argv[1]);
    return 2;
  }
  if ((t = malloc(sizeof *t * (size_t)rounds)) == NULL) return 1;
  for (i = 0; i < rounds; i++) {
    double start = clock_ns(CLOCK_MONOTONIC);
    if (memory != NULL) {
      pid_t pid = fork();
      if (pid == 0) _exit(memory[0]);
      if (pid < 0 || waitpid(pid, NULL, 0) != pid) return 1;
    } else if (file_once(argv[2], i, argv[1][0] == 's') != 0) {
      perror("floor");
      return 1;
    }
    t[i] = clock_ns(CLOCK_MONOTONIC) - start;
  }
  printf("%.1f\n", median(t, rounds) / 1e3);
  return 0;
}
