/* SPDX-License-Identifier: MIT */
/*
** host.c: a C program that embeds Lupine (see README.md beside it).
**
** It gives Lua a function of its own, host.scale(x, k), runs a pipeline
** whose step calls it, then reads the step's output back through the C
** API: the version (lupine_version_find), its value (lupine_version_load)
** and its stored CBOR bytes (lupine_version_read), and lists the runs.
**
**   host HOME            run the pipeline below in the catalog folder HOME
**   host HOME SCRIPT     run the pipeline script SCRIPT instead; it must
**                        store an artifact called "scaled" too
**
** Results go to stdout; progress and what steps print, to stderr.
*/
#include <stdio.h>
#include <lupine.h>
#include <lauxlib.h>

/* host.scale(x, k) -> x * k: the host's own code, which steps call */
static int host_scale(lua_State *L) {
  lua_Number x = luaL_checknumber(L, 1), k = luaL_checknumber(L, 2);
  lua_pushnumber(L, x * k);
  return 1;
}

static const luaL_Reg host_funcs[] = {
  {"scale", host_scale},
  {NULL, NULL}
};

/* In a protected call: the global table `host` with the functions above. */
static int open_host(lua_State *L) {
  luaL_newlib(L, host_funcs);
  lua_setglobal(L, "host");
  return 0;
}

static const char pipeline[] =
  "local lupine = require 'lupine'\n"
  "local load_data = lupine.step { name = 'load_data', outputs = { 'dataset' },\n"
  "  function() return { 1, 2, 3, 4 } end }\n"
  "local scale = lupine.step { name = 'scale', outputs = { 'scaled' },\n"
  "  function(dataset, factor)\n"
  "    local out = {}\n"
  "    for i, x in ipairs(dataset) do out[i] = host.scale(x, factor) end\n"
  "    print(('scaled %d values by %g'):format(#out, factor))\n"
  "    return out\n"
  "  end }\n"
  "lupine.pipeline { name = 'embedded', function(factor) scale(load_data(), factor) end }(2.5)\n";

/* Progress and what steps print: to stderr. */
static void log_line(void *ud, int level, const char *message) {
  (void)ud;
  if (level <= LUPINE_LOG_INFO || level == LUPINE_LOG_OUTPUT) fprintf(stderr, "%s\n", message);
}

static int print_run(void *ud, const lupine_run *r) {
  (void)ud;
  printf("run of '%s': %s\n", lupine_run_pipeline(r), lupine_run_status(r));
  return 0;
}

int main(int argc, char **argv) {
  lupine *rt = NULL;
  lupine_version *v = NULL;
  lua_State *L;
  unsigned char *cbor = NULL;
  size_t len = 0, i;
  int rc;
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: host HOME [SCRIPT]\n");
    return 2;
  }
  if ((rc = lupine_open(&rt, argv[1])) != LUPINE_OK) goto done;
  lupine_set_log(rt, log_line, NULL);
  L = lupine_state(rt);
  /* registered before the run: the step's worker process, forked from
  ** this one, has them too */
  lua_pushcfunction(L, open_host);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    lupine_close(rt);
    return 1;
  }
  rc = argc == 3 ? lupine_exec_file(rt, argv[2], 0, NULL)
                 : lupine_exec_string(rt, pipeline, "=pipeline");
  if (rc != LUPINE_OK) goto done;

  /* the latest version of "scaled", and its value, in the runtime's state */
  if ((rc = lupine_version_find(rt, "scaled", NULL, &v)) != LUPINE_OK) goto done;
  printf("%s v%s: %s, %lld bytes, %s\n", lupine_version_name(v), lupine_version_version(v),
         lupine_version_data_type(v), (long long)lupine_version_size(v),
         lupine_version_content_hash(v));
  if ((rc = lupine_version_load(rt, v, L)) != LUPINE_OK) goto done;
  printf("value:");
  for (i = 1; lua_rawgeti(L, -1, (lua_Integer)i) != LUA_TNIL; i++) {
    printf(" %g", lua_tonumber(L, -1));
    lua_pop(L, 1);
  }
  printf("\n");
  lua_settop(L, 0);

  /* the same value as stored: CBOR, readable by any CBOR decoder */
  if ((rc = lupine_version_read(rt, v, &cbor, &len)) != LUPINE_OK) goto done;
  printf("cbor:");
  for (i = 0; i < len; i++) printf(" %02x", cbor[i]);
  printf("\n");

  rc = lupine_list_runs(rt, NULL, print_run, NULL);

done:
  if (rc != LUPINE_OK) fprintf(stderr, "host: %s\n", lupine_errmsg(rt));
  lupine_free(cbor);
  lupine_version_free(v);
  lupine_close(rt);
  return rc == LUPINE_OK ? 0 : 1;
}
