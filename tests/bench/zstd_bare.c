/* SPDX-License-Identifier: MIT */
/*
** zstd_bare: the zstd floor for tests/bench/codec.lua. Compresses the
** bytes of FILE as the store does (one frame, level 3, content size and
** checksum in the frame; see runtime/store.c), then decompresses that
** frame, ROUNDS times each after one warm-up round, and prints one line:
**
**   <median compress ns> <median decompress ns> <frame bytes>
**
** Only the library calls are timed: buffers are allocated once, before.
**
**   zstd_bare FILE ROUNDS
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>
#include "measure.h"

int main(int argc, char **argv) {
  FILE *f;
  unsigned char *src, *frame, *back;
  size_t len, cap, n = 0, m;
  long size;
  int rounds, r;
  double *ct, *dt;
  ZSTD_CCtx *cctx;
  ZSTD_DCtx *dctx;
  if (argc != 3 || (rounds = atoi(argv[2])) < 1) {
    fprintf(stderr, "usage: zstd_bare FILE ROUNDS\n");
    return 2;
  }
  if ((f = fopen(argv[1], "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
      (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    perror(argv[1]);
    return 1;
  }
  len = (size_t)size;
  cap = ZSTD_compressBound(len);
  src = malloc(len ? len : 1);
  frame = malloc(cap);
  back = malloc(len ? len : 1);
  ct = calloc((size_t)rounds, sizeof *ct);
  dt = calloc((size_t)rounds, sizeof *dt);
  cctx = ZSTD_createCCtx();
  dctx = ZSTD_createDCtx();
  if (!src || !frame || !back || !ct || !dt || !cctx || !dctx) {
    fprintf(stderr, "zstd_bare: out of memory\n");
    return 1;
  }
  if (fread(src, 1, len, f) != len) {
    perror(argv[1]);
    return 1;
  }
  fclose(f);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  for (r = -1; r < rounds; r++) {   /* round -1 warms up */
    double t0 = clock_ns(CLOCK_MONOTONIC), t1;
    n = ZSTD_compress2(cctx, frame, cap, src, len);
    t1 = clock_ns(CLOCK_MONOTONIC);
    if (ZSTD_isError(n)) {
      fprintf(stderr, "zstd_bare: %s\n", ZSTD_getErrorName(n));
      return 1;
    }
    m = ZSTD_decompressDCtx(dctx, back, len, frame, n);
    if (ZSTD_isError(m) || m != len || memcmp(back, src, len) != 0) {
      fprintf(stderr, "zstd_bare: the round trip failed\n");
      return 1;
    }
    if (r >= 0) {
      ct[r] = t1 - t0;
      t0 = clock_ns(CLOCK_MONOTONIC);
      ZSTD_decompressDCtx(dctx, back, len, frame, n);
      dt[r] = clock_ns(CLOCK_MONOTONIC) - t0;
    }
  }
  printf("%.0f %.0f %zu\n", median(ct, rounds), median(dt, rounds), n);
  ZSTD_freeCCtx(cctx);
  ZSTD_freeDCtx(dctx);
  free(src), free(frame), free(back), free(ct), free(dt);
  return 0;
}
