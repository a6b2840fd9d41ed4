/*
** api.c: the public entry points (lupine.h). Each checks its handle and
** leaves a message naming the culprit on it when something fails.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lauxlib.h"
#include "lualib.h"
#include "lupine_int.h"

struct lupine {
  lua_State *L;
  lp_runtime *rt;
  char err[LP_ERRSZ];
};

static int fail(lupine *h, int rc, const char *msg) {
  snprintf(h->err, sizeof h->err, "%s", msg);
  return rc;
}

/* Open the libraries and the module, as a protected call: both allocate. */
static int setup(lua_State *L) {
  luaL_openlibs(L);
  luaL_requiref(L, "lupine", luaopen_lupine, 1);
  return 0;
}

int lupine_open(lupine **out, const char *home) {
  lupine *h;
  *out = NULL;
  if ((h = calloc(1, sizeof *h)) == NULL) return LUPINE_NOMEM;
  *out = h;
  if ((h->L = luaL_newstate()) == NULL) return fail(h, LUPINE_NOMEM, "out of memory");
  h->rt = lp_runtime_of(h->L);
  if (home != NULL && lp_runtime_set_home(h->rt, home) != LUPINE_OK)
    return fail(h, LUPINE_NOMEM, h->rt->err);
  lua_pushcfunction(h->L, setup);
  if (lua_pcall(h->L, 0, 0, 0) != LUA_OK) {
    int rc = fail(h, LUPINE_ERROR, lua_tostring(h->L, -1));
    lua_pop(h->L, 1);
    return rc;
  }
  return LUPINE_OK;
}

int lupine_close(lupine *h) {
  if (h == NULL) return LUPINE_OK;
  if (h->L != NULL) lua_close(h->L);
  free(h);
  return LUPINE_OK;
}

const char *lupine_errmsg(const lupine *h) {
  return h == NULL ? "no runtime (NULL handle)" : h->err;
}

lua_State *lupine_state(lupine *h) {
  return h == NULL ? NULL : h->L;
}

/* Hook set by lupine_interrupt: stop the Lua code running (as lua.c does
** on Ctrl-C). */
static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

void lupine_interrupt(lupine *h) {
  if (h == NULL || h->rt == NULL) return;
  h->rt->interrupted = 1;   /* a run in progress looks at this */
  lua_sethook(h->L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

void lupine_set_log(lupine *h, lupine_log_fn fn, void *ud) {
  if (h == NULL || h->rt == NULL) return;
  h->rt->log = fn;
  h->rt->log_ud = ud;
}

const char *lupine_home(lupine *h) {
  if (h == NULL || h->L == NULL) return NULL;
  if (lp_runtime_ready(h->rt) != LUPINE_OK) {
    fail(h, LUPINE_IO, h->rt->err);
    return NULL;
  }
  return h->rt->home;
}

/* Message handler: a string error with a traceback, as lua.c shows it. An
** error object (a failed run) already says where: it is shown as it
** prints itself. */
static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    luaL_tolstring(L, 1, NULL);
    return 1;
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Call the chunk that sits below its nargs arguments on top of the stack. */
static int call_chunk(lupine *h, int nargs) {
  lua_State *L = h->L;
  int base = lua_gettop(L) - nargs, failed_before = h->rt->failed_runs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  if (lua_pcall(L, nargs, 0, base) != LUA_OK) {
    fail(h, LUPINE_SCRIPT, lua_tostring(L, -1));
    lua_settop(L, base - 1);
    return LUPINE_SCRIPT;
  }
  lua_settop(L, base - 1);
  h->err[0] = '\0';
  if (h->rt->failed_runs > failed_before)
    return fail(h, LUPINE_RUNFAILED, "a pipeline run failed");
  return LUPINE_OK;
}

int lupine_exec_file(lupine *h, const char *path, int argc, char **argv) {
  lua_State *L;
  int i;
  if (h == NULL || h->L == NULL) return LUPINE_MISUSE;
  if (path == NULL || argc < 0 || (argc > 0 && argv == NULL))
    return fail(h, LUPINE_MISUSE, "lupine_exec_file: no script path or bad argv");
  L = h->L;
  /* arg, as lua.c builds it: the script at 0, its arguments from 1 */
  lua_createtable(L, argc, 1);
  lua_pushstring(L, path);
  lua_rawseti(L, -2, 0);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setglobal(L, "arg");
  if (luaL_loadfile(L, path) != LUA_OK) {
    int rc = fail(h, LUPINE_SCRIPT, lua_tostring(L, -1));
    if (strstr(h->err, "cannot open") != NULL) rc = LUPINE_IO;
    lua_pop(L, 1);
    return rc;
  }
  if (!lua_checkstack(L, argc)) {
    lua_pop(L, 1);
    return fail(h, LUPINE_MISUSE, "too many arguments to the script");
  }
  for (i = 0; i < argc; i++) lua_pushstring(L, argv[i]);
  return call_chunk(h, argc);
}

int lupine_exec_string(lupine *h, const char *code, const char *chunkname) {
  if (h == NULL || h->L == NULL) return LUPINE_MISUSE;
  if (code == NULL) return fail(h, LUPINE_MISUSE, "lupine_exec_string: code is NULL");
  if (luaL_loadbuffer(h->L, code, strlen(code), chunkname ? chunkname : "=string") != LUA_OK) {
    fail(h, LUPINE_SCRIPT, lua_tostring(h->L, -1));
    lua_pop(h->L, 1);
    return LUPINE_SCRIPT;
  }
  return call_chunk(h, 0);
}
