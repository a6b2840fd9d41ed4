/* SPDX-License-Identifier: MIT */
/*
** fuzz_decode.c: libFuzzer target for the CBOR decoder (runtime/codec.c).
**
** Every input must either be refused cleanly or decode to a value that
** encodes, decodes back, and encodes to the very same bytes again: the
** encoder is deterministic (whatever Lua's table order) and its output is
** a fixed point. Anything else aborts, but for one refusal: with shared
** tables, the canonical order may nest a value deeper than the input did
** (deeper than LP_CODEC_MAX_DEPTH), and so may the sort keys of tables
** used as keys.
**
** clang -g -O1 -fsanitize=fuzzer,address,undefined -I/usr/include/lua5.4 \
**   -Iruntime tests/fuzz/fuzz_decode.c runtime/codec.c runtime/util.c \
**   -llua5.4 -lm -o /tmp/fuzz_decode
** /tmp/fuzz_decode -max_total_time=240 -rss_limit_mb=512 -timeout=5 \
**   /tmp/corpus tests/fuzz/corpus/decode
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lauxlib.h"
#include "lupine_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *err) {
  fprintf(stderr, "fuzz_decode: %s: %s\n", what, err);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = luaL_newstate();   /* fresh hash seeds each time */
  char err[LP_ERRSZ] = "";
  size_t n1, n2;
  const char *b1, *b2;
  if (L == NULL) fail("luaL_newstate", "out of memory");
  if (lp_codec_decode(L, data, size, err, sizeof err) == LUPINE_OK) {
    int rc = lp_codec_encode(L, 1, "value", err, sizeof err);
    if (rc == LUPINE_MISUSE && strstr(err, ": nested deeper than ") != NULL) goto done;
    if (rc != LUPINE_OK) fail("a decoded value does not encode", err);
    b1 = lua_tolstring(L, 2, &n1);
    if (lp_codec_decode(L, b1, n1, err, sizeof err) != LUPINE_OK)
      fail("an encoding does not decode", err);
    if (lp_codec_encode(L, 3, "value", err, sizeof err) != LUPINE_OK)
      fail("a decoded encoding does not encode", err);
    b2 = lua_tolstring(L, 4, &n2);
    if (n1 != n2 || memcmp(b1, b2, n1) != 0) fail("encodings differ", "not deterministic");
  }
done:
  lua_close(L);
  return 0;
}
