/* SPDX-License-Identifier: MIT */
/*
** fuzz_object.c: libFuzzer target for the object reader. The input is
** taken as a stored object file: lp_frame_decode (1 MiB limit)
** must refuse it cleanly or decode it, and decoded bytes go on to the CBOR
** decoder, as a loaded artifact's would.
*/
#include <stdlib.h>
#include "lauxlib.h"
#include "lupine_int.h"

#define MAX_OBJECT (1u << 20)

typedef struct {
  const unsigned char *data;
  size_t len;
} input;

/*
** Runs under lua_pcall, as the decoder may raise memory errors.
** A failure must push nothing and say why; a success pushes one value.
*/
static int decode(lua_State *L) {
  const input *in = lua_touserdata(L, 1);
  char err[LP_ERRSZ] = "";
  int rc = lp_codec_decode(L, in->data, in->len, err, sizeof err);
  if (lua_gettop(L) != (rc == LUPINE_OK ? 2 : 1)) abort();
  if (rc != LUPINE_OK && (rc != LUPINE_CORRUPT || err[0] == '\0')) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static lua_State *L;   /* one state for the whole run */
  unsigned char *obj = NULL;
  char err[LP_ERRSZ] = "";
  input in;
  int rc;

  if (L == NULL && (L = luaL_newstate()) == NULL) abort();
  rc = lp_frame_decode(data, size, MAX_OBJECT, NULL, &obj, &in.len,
                       err, sizeof err);
  if (rc != LUPINE_OK) {
    if (obj != NULL || err[0] == '\0') abort();
    return 0;
  }
  in.data = obj;
  lua_pushcfunction(L, decode);
  lua_pushlightuserdata(L, &in);
  lua_pcall(L, 1, 0, 0);   /* a memory error is no finding */
  lua_settop(L, 0);
  free(obj);
  return 0;
}
