/* SPDX-License-Identifier: MIT */
/*
** crash_module.c: a Lua C module whose function dereferences NULL, so the
** tests can check what happens to a step that segfaults in C code.
*/
#include "lauxlib.h"
#include "lua.h"

static int segfault(lua_State *L) {
  volatile int *nowhere = NULL;
  (void)L;
  return *nowhere;
}

__attribute__((visibility("default"))) int luaopen_crash(lua_State *L) {
  lua_newtable(L);
  lua_pushcfunction(L, segfault);
  lua_setfield(L, -2, "segfault");
  return 1;
}
