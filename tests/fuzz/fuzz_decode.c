/* SPDX-License-Identifier: MIT */
/*
** fuzz_decode.c: libFuzzer target for the CBOR decoder (runtime/codec.c).
**
** Every input must either be refused cleanly or decode to a value that
** encodes, decodes back, and encodes to the very same bytes again: the
** encoder is deterministic (whatever Lua's table order) and its output is
** a fixed point. The input is also decoded and encoded in a second Lua
** state whose allocator places every block at other addresses (tables
** used as keys hash by address, so their order in Lua's traversal moves),
** and that must give the same bytes too. Anything else aborts, but for two
** refusals: with shared tables, the canonical order may nest a value
** deeper than the input did (deeper than LP_CODEC_MAX_DEPTH), and so may
** the sort keys of tables used as keys; and a map whose keys are distinct
** tables that encode alike (CBOR can hold them, a Lua value cannot be
** written with them) is refused.
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

/*
** An allocator that moves blocks: each is preceded by 16 to 256 bytes of
** padding, varying from block to block with a counter started at *ud (the
** padding's size is kept just before the block).
*/
static void *shifted(void *ud, void *p, size_t osize, size_t nsize) {
  unsigned *counter = ud;
  unsigned char *q = NULL;
  size_t pad;
  if (nsize > 0) {
    *counter = *counter * 1103515245u + 12345u;
    pad = 16 * (1 + (*counter >> 16) % 16);
    if ((q = malloc(pad + nsize)) == NULL) return NULL;
    q += pad;
    memcpy(q - sizeof pad, &pad, sizeof pad);
    if (p != NULL) memcpy(q, p, osize < nsize ? osize : nsize);
  }
  if (p != NULL) {
    memcpy(&pad, (unsigned char *)p - sizeof pad, sizeof pad);
    free((unsigned char *)p - pad);
  }
  return q;
}

/* Is err one of the refusals a decoded value may meet (see above)? */
static int allowed(int rc, const char *err) {
  return rc == LUPINE_MISUSE && (strstr(err, ": nested deeper than ") != NULL ||
                                 strstr(err, " has two keys that encode alike") != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = luaL_newstate(), *M;   /* fresh hash seeds each time */
  unsigned counter = (unsigned)size;
  char err[LP_ERRSZ] = "";
  size_t n1, n2, n3;
  const char *b1, *b2, *b3;
  int rc;
  if (L == NULL) fail("luaL_newstate", "out of memory");
  if (lp_codec_decode(L, data, size, err, sizeof err) == LUPINE_OK) {
    rc = lp_codec_encode(L, 1, "value", err, sizeof err);
    if (allowed(rc, err)) goto done;
    if (rc != LUPINE_OK) fail("a decoded value does not encode", err);
    b1 = lua_tolstring(L, 2, &n1);
    if (lp_codec_decode(L, b1, n1, err, sizeof err) != LUPINE_OK)
      fail("an encoding does not decode", err);
    if (lp_codec_encode(L, 3, "value", err, sizeof err) != LUPINE_OK)
      fail("a decoded encoding does not encode", err);
    b2 = lua_tolstring(L, 4, &n2);
    if (n1 != n2 || memcmp(b1, b2, n1) != 0) fail("encodings differ", "not a fixed point");
    if ((M = lua_newstate(shifted, &counter)) == NULL) fail("lua_newstate", "out of memory");
    if (lp_codec_decode(M, data, size, err, sizeof err) != LUPINE_OK ||
        lp_codec_encode(M, 1, "value", err, sizeof err) != LUPINE_OK)
      fail("a value encodes at other addresses only", err);
    b3 = lua_tolstring(M, 2, &n3);
    if (n1 != n3 || memcmp(b1, b3, n1) != 0)
      fail("encodings differ", "not deterministic (they depend on addresses)");
    lua_close(M);
  }
done:
  lua_close(L);
  return 0;
}
