/* SPDX-License-Identifier: MIT */
/*
** fuzz_archive.c: libFuzzer target for the archive reader (files.c). The
** input is taken as the content of a file or folder artifact: it is stored
** as an object, then extracted; the reader must refuse it cleanly or write
** a tree inside the folder it was given, and never outside it.
*/
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lupine_int.h"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  chmod(path, 0700);
  return remove(path);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static lp_store *store;   /* one scratch store for the whole run */
  static char root[64] = "/tmp/lupine-fuzz-archive-XXXXXX";
  char err[LP_ERRSZ] = "", dest[128], top[256], outside[160];
  lp_object obj;
  int rc;
  if (store == NULL) {
    char path[96];
    if (mkdtemp(root) == NULL) abort();
    snprintf(path, sizeof path, "%s/store", root);
    if (lp_store_open(&store, "local", path, "fuzz", NULL, err, sizeof err) != LUPINE_OK) abort();
  }
  if (lp_store_put(store, data, size, &obj, err, sizeof err) != LUPINE_OK) abort();
  snprintf(dest, sizeof dest, "%s/out", root);
  rc = lp_files_extract(store, obj.hash, obj.size, dest, top, sizeof top, err, sizeof err);
  if (rc != LUPINE_OK && err[0] == '\0') abort();
  /* nothing may land beside the destination */
  snprintf(outside, sizeof outside, "%s/evil", root);
  if (access(outside, F_OK) == 0) abort();
  nftw(dest, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}
