/* SPDX-License-Identifier: MIT */
/*
** host.c: a C program that embeds Lupine (see README.md beside it).
**
** It gives Lua a function of its own, host.scale(x, k), runs a pipeline
** whose step calls it (the factor passed as the script's argument), then
** reads back through the C API: the run the script made and its step runs
** (status, inputs, outputs, what they printed), the version of the output
** (lupine_av_find), its value (lupine_av_load), its stored CBOR bytes
** (lupine_av_read), its metadata and lineage, and filtered listings.
**
**   host HOME            run the pipeline below in the catalog folder HOME
**   host HOME SCRIPT     run the pipeline script SCRIPT instead; it must
**                        store an artifact called "scaled" too
**
** Results go to stdout; progress and what steps print, to stderr. Exits 0,
** 3 if a step failed, 1 for any other failure (a broken script...).
*/
#include <stdio.h>
#include <string.h>
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
  "    lupine.log_metadata { artifact_name = 'scaled', metadata = { factor = factor } }\n"
  "    return out\n"
  "  end }\n"
  "lupine.pipeline { name = 'embedded', tags = { 'nightly' },\n"
  "  function(factor) scale(load_data(), factor) end }(tonumber(...))\n";

/* Progress and what steps print: to stderr. */
static void log_line(void *ud, int level, const char *message) {
  (void)ud;
  if (level <= LUPINE_LOG_INFO || level == LUPINE_LOG_OUTPUT) fprintf(stderr, "%s\n", message);
}

/* "name=artifact vN" for each input or output of a step run */
static int print_io(void *ud, const char *name, const lupine_artifact_version *v) {
  printf(" %s%s=%s v%s", (const char *)ud, name, lupine_av_name(v), lupine_av_version(v));
  return 0;
}

/* One line per step run: status, inputs, outputs; then what it printed. */
static int print_step(void *ud, const lupine_step_run *s) {
  lupine *rt = ud;
  const char *logs = lupine_step_run_logs(s);
  printf("step '%s': %s", lupine_step_run_name(s), lupine_step_run_status(s));
  if (lupine_step_run_inputs(rt, s, print_io, "in:") != LUPINE_OK ||
      lupine_step_run_outputs(rt, s, print_io, "out:") != LUPINE_OK)
    return 1;
  printf("\n");
  if (logs != NULL) printf("  printed: %.*s\n", (int)strcspn(logs, "\n"), logs);
  return 0;
}

static int print_metadata(void *ud, const char *key, const lupine_value *value) {
  (void)ud;
  if (lupine_value_type(value) == LUA_TNUMBER)
    printf(" %s = %g", key, lupine_value_number(value));
  else printf(" %s", key);   /* a string, a table...: lupine_value_cbor has it all */
  return 0;
}

static int print_consumer(void *ud, const lupine_step_run *s) {
  (void)ud;
  printf(" '%s'", lupine_step_run_name(s));
  return 0;
}

/* For each input of a step run: the step runs that used it (a callback
** may call the runtime) */
static int print_users(void *ud, const char *name, const lupine_artifact_version *v) {
  (void)name;
  printf("%s v%s used by:", lupine_av_name(v), lupine_av_version(v));
  if (lupine_av_consumers(ud, v, print_consumer, NULL) != LUPINE_OK) return 1;
  printf("\n");
  return 0;
}

static int print_version(void *ud, const lupine_artifact_version *v) {
  (void)ud;
  printf(" %s v%s", lupine_av_name(v), lupine_av_version(v));
  return 0;
}

static int print_run(void *ud, const lupine_run *r) {
  (void)ud;
  printf("run of '%s': %s\n", lupine_run_pipeline(r), lupine_run_status(r));
  return 0;
}

int main(int argc, char **argv) {
  static const char *const args[] = {"2.5"};   /* the script's argument: the factor */
  lupine *rt = NULL;
  lupine_run *run = NULL;
  lupine_artifact_version *v = NULL;
  lupine_step_run *producer = NULL;
  lupine_filter *filter = NULL;
  lua_State *L;
  unsigned char *cbor = NULL;
  size_t len = 0, i;
  int rc, t;
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: host HOME [SCRIPT]\n");
    return 2;
  }
  /* the header this was built with is the library's */
  if (lupine_libversion_number() != LUPINE_VERSION_NUMBER) {
    fprintf(stderr, "host: built with lupine.h %s, running with the library %s\n",
            LUPINE_VERSION, lupine_libversion());
    return 1;
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
  rc = argc == 3 ? lupine_exec_file(rt, argv[2], 1, args)
                 : lupine_exec_buffer(rt, pipeline, sizeof pipeline - 1, "=pipeline", 1, args);
  if (rc != LUPINE_OK) goto done;

  /* the run the script made, and its steps */
  if ((rc = lupine_exec_run(rt, lupine_exec_runs(rt) - 1, &run)) != LUPINE_OK) goto done;
  printf("the script's run of '%s': %s, tags:", lupine_run_pipeline(run), lupine_run_status(run));
  for (t = 0; t < lupine_run_tag_count(run); t++) printf(" %s", lupine_run_tag(run, t));
  printf("\n");
  if ((rc = lupine_step_run_list(rt, run, print_step, rt)) != LUPINE_OK) goto done;

  /* the latest version of "scaled", and its value, in the runtime's state */
  if ((rc = lupine_av_find(rt, "scaled", NULL, &v)) != LUPINE_OK) goto done;
  printf("%s v%s: %s, %lld bytes, %s\n", lupine_av_name(v), lupine_av_version(v),
         lupine_av_data_type(v), (long long)lupine_av_size(v), lupine_av_content_hash(v));
  if ((rc = lupine_av_load(rt, v, L)) != LUPINE_OK) goto done;
  printf("value:");
  for (i = 1; lua_rawgeti(L, -1, (lua_Integer)i) != LUA_TNIL; i++) {
    printf(" %g", lua_tonumber(L, -1));
    lua_pop(L, 1);
  }
  printf("\n");
  lua_settop(L, 0);

  /* the same value as stored: CBOR, readable by any CBOR decoder */
  if ((rc = lupine_av_read(rt, v, &cbor, &len)) != LUPINE_OK) goto done;
  printf("cbor:");
  for (i = 0; i < len; i++) printf(" %02x", cbor[i]);
  printf("\n");

  /* its metadata, and its lineage: the step run that made it, and who
  ** used that step's inputs */
  printf("metadata:");
  if ((rc = lupine_av_metadata(rt, v, print_metadata, NULL)) != LUPINE_OK) goto done;
  printf("\n");
  if ((rc = lupine_av_producer(rt, v, &producer)) != LUPINE_OK) goto done;
  if (producer != NULL) {
    printf("made by step '%s'\n", lupine_step_run_step_name(producer));
    if ((rc = lupine_step_run_inputs(rt, producer, print_users, rt)) != LUPINE_OK) goto done;
  }

  /* the versions whose factor was above 2, and every run */
  if ((rc = lupine_filter_new(rt, &filter)) != LUPINE_OK ||
      (rc = lupine_filter_metadata(filter, "factor", ">", "2")) != LUPINE_OK)
    goto done;
  printf("versions with factor > 2:");
  if ((rc = lupine_av_list(rt, filter, print_version, NULL)) != LUPINE_OK) goto done;
  printf("\n");
  rc = lupine_run_list(rt, NULL, print_run, NULL);

done:
  if (rc != LUPINE_OK) fprintf(stderr, "host: %s\n", lupine_errmsg(rt));
  lupine_filter_free(filter);
  lupine_free(cbor);
  lupine_step_run_free(producer);
  lupine_av_free(v);
  lupine_run_free(run);
  lupine_close(rt);
  return rc == LUPINE_OK ? 0 : rc == LUPINE_FAILED ? 3 : 1;
}
