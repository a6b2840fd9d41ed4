// SPDX-License-Identifier: MIT
// cxx_host.cpp: a host written in C++, which tests/embed_spec.lua builds
// with g++: lupine.h declares its functions and Lua's with C linkage, so it
// links with a Lua built as C whatever that Lua's headers say.
//
//   cxx_host HOME    stores 2 * 21 through Lua, reads it back: "answer: 42"
#include <cstdio>
#include "lupine.h"

int main(int argc, char **argv) {
  lupine *rt = nullptr;
  lupine_artifact_version *v = nullptr;
  if (argc != 2) {
    std::fprintf(stderr, "usage: cxx_host HOME\n");
    return 2;
  }
  int rc = lupine_open(&rt, argv[1]);
  lua_State *L = lupine_state(rt);
  if (rc == LUPINE_OK) {
    lua_pushinteger(L, 21);   // Lua's own API, as lupine.h declares it
    lua_setglobal(L, "N");
    rc = lupine_exec_string(rt, "lupine.save_artifact(N * 2, 'answer')", "=cxx");
  }
  if (rc == LUPINE_OK) rc = lupine_av_find(rt, "answer", nullptr, &v);
  if (rc == LUPINE_OK) rc = lupine_av_load(rt, v, L);
  if (rc == LUPINE_OK) std::printf("answer: %lld\n", static_cast<long long>(lua_tointeger(L, -1)));
  else std::fprintf(stderr, "cxx_host: %s\n", lupine_errmsg(rt));
  lupine_av_free(v);
  lupine_close(rt);
  return rc == LUPINE_OK ? 0 : 1;
}
