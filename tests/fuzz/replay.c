/* SPDX-License-Identifier: MIT */
/*
** replay.c: run a libFuzzer target over files, without libFuzzer, so that
** `make test` can replay a corpus under the sanitizers. Link it with any
** one target. Each file named on the command line, and each file inside a
** directory named there (in name order, dot files skipped), is passed to
** LLVMFuzzerTestOneInput, and a TAP line reports it: "ok 3 - decode/map".
** Targets abort on failure, so "not ok" only means a file was unreadable.
*/
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ntest, nfail;

/* The last two components of a path: "decode/map". */
static const char *label(const char *path) {
  const char *p = path + strlen(path);
  int slashes = 0;
  while (p > path && !(p[-1] == '/' && ++slashes == 2)) p--;
  return p;
}

static void replay(const char *path) {
  FILE *f = fopen(path, "rb");
  unsigned char *data = NULL;
  size_t n = 0, cap = 0, got;
  if (f == NULL) {
    printf("not ok %d - %s (cannot open)\n", ++ntest, label(path));
    nfail++;
    return;
  }
  do {
    if (n == cap) {
      cap = cap ? 2 * cap : 4096;
      if ((data = realloc(data, cap)) == NULL) abort();
    }
    got = fread(data + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  if (ferror(f)) {
    printf("not ok %d - %s (cannot read)\n", ++ntest, label(path));
    nfail++;
  }
  else {
    LLVMFuzzerTestOneInput(data, n);
    printf("ok %d - %s\n", ++ntest, label(path));
  }
  fclose(f);
  free(data);
}

static int byname(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replaydir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *ent;
  char **names = NULL;
  size_t n = 0, i;
  if (d == NULL) {
    printf("not ok %d - %s (cannot open)\n", ++ntest, dir);
    nfail++;
    return;
  }
  while ((ent = readdir(d)) != NULL) {
    size_t len = strlen(dir) + strlen(ent->d_name) + 2;
    if (ent->d_name[0] == '.') continue;
    if ((names = realloc(names, (n + 1) * sizeof *names)) == NULL ||
        (names[n] = malloc(len)) == NULL) abort();
    snprintf(names[n++], len, "%s/%s", dir, ent->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, byname);
  for (i = 0; i < n; i++) {
    struct stat st;
    if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) replay(names[i]);
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  int i;
  for (i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) replaydir(argv[i]);
    else replay(argv[i]);
  }
  return nfail > 0;
}
