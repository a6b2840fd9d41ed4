/* SPDX-License-Identifier: MIT */
/*
** test_records.c: what a host reads of the catalog through the C API
** (lupine.h) without the Lua state: the runs a script made, their step
** runs (names, statuses, times, errors, logs, inputs and outputs), tags,
** run metadata and its values, lineage (producers and consumers), and
** filtered listings; the result codes of scripts, callbacks and lookups;
** and the names kept from before, deprecated, which still compile and
** work. Prints TAP; exits 1 if any test failed.
*/
#define _XOPEN_SOURCE 700   /* nftw, mkdtemp */

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "lauxlib.h"
#include "lupine.h"
#include "tap.h"

static char base[64];   /* the test's temporary folder */

static void code(lupine *rt, int got, int want, const char *want_msg, const char *what) {
  if (!check(got == want, "%s: %s", what, lupine_errstr(want)))
    printf("#   got %d (%s): %s\n", got, lupine_errstr(got), lupine_errmsg(rt));
  if (!check(lupine_errcode(rt) == want, "%s: lupine_errcode", what))
    printf("#   got %d\n", lupine_errcode(rt));
  if (want_msg != NULL) {
    char label[256];
    snprintf(label, sizeof label, "%s: message", what);
    same(lupine_errmsg(rt), want_msg, label);
  }
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st, (void)type, (void)ftw;
  return remove(path);
}

/* What a listing saw, as one line of text. */
typedef struct seen {
  int n, stop_at;
  lupine *rt;
  char text[2048];
} seen;

static void add(seen *s, const char *fmt, const char *a, const char *b) {
  size_t n = strlen(s->text);
  snprintf(s->text + n, sizeof s->text - n, "%s", n > 0 ? " " : "");
  n = strlen(s->text);
  snprintf(s->text + n, sizeof s->text - n, fmt, a, b);
}

static int see_av(void *ud, const lupine_artifact_version *v) {
  seen *s = ud;
  add(s, "%s:%s", lupine_av_name(v), lupine_av_version(v));
  return ++s->n == s->stop_at ? 7 : 0;
}

static int see_run(void *ud, const lupine_run *r) {
  seen *s = ud;
  add(s, "%s:%s", lupine_run_name(r), lupine_run_status(r));
  return ++s->n == s->stop_at ? 7 : 0;
}

static int see_step(void *ud, const lupine_step_run *sr) {
  seen *s = ud;
  add(s, "%s:%s", lupine_step_run_name(sr), lupine_step_run_status(sr));
  return ++s->n == s->stop_at ? 7 : 0;
}

static int see_io(void *ud, const char *name, const lupine_artifact_version *v) {
  seen *s = ud;
  char what[300];
  snprintf(what, sizeof what, "%s v%s (%s)", lupine_av_name(v), lupine_av_version(v),
           lupine_av_save_type(v));
  add(s, "%s=%s", name, what);
  return ++s->n == s->stop_at ? 7 : 0;
}

/* key=value for each metadata value, by its type */
static int see_md(void *ud, const char *key, const lupine_value *x) {
  seen *s = ud;
  char value[256];
  size_t len, cbor_len;
  const unsigned char *cbor = lupine_value_cbor(x, &cbor_len);
  switch (lupine_value_type(x)) {
    case LUA_TNUMBER: snprintf(value, sizeof value, "%g", lupine_value_number(x)); break;
    case LUA_TSTRING: {
      const char *text = lupine_value_text(x, &len);
      snprintf(value, sizeof value, "'%s'(%zu)", text, len);
      break;
    }
    case LUA_TBOOLEAN: snprintf(value, sizeof value, "%s",
                                lupine_value_number(x) != 0 ? "true" : "false"); break;
    default: snprintf(value, sizeof value, "table");
  }
  if (cbor == NULL || cbor_len == 0) snprintf(value, sizeof value, "(no cbor)");
  add(s, "%s=%s", key, value);
  return ++s->n == s->stop_at ? 7 : 0;
}

/* Loads the value of the key "shape" into its lua_State. */
typedef struct loader {
  lupine *rt;
  lua_State *L;
  int loaded;
} loader;

static int load_shape(void *ud, const char *key, const lupine_value *x) {
  loader *ld = ud;
  if (strcmp(key, "shape") == 0 && lupine_value_load(ld->rt, x, ld->L) == LUPINE_OK) ld->loaded++;
  return 0;
}

/*
** The pipeline: load -> train -> evaluate -> broken -> after. broken fails
** when the rate is below 1 (then after is skipped); train prints and saves
** a version by hand; evaluate's score carries metadata and, at rate 0.5,
** a tag. Runs are tagged nightly.
*/
static const char pipeline[] =
  "local load = lupine.step { name = 'load', outputs = { 'dataset' }, function()\n"
  "  lupine.log_metadata { metadata = { rows = 3 } }\n"
  "  return { 1, 2, 3 } end }\n"
  "local train = lupine.step { name = 'train', outputs = { 'model' }, function(data, rate)\n"
  "  print('training on ' .. #data) print('rate ' .. rate)\n"
  "  lupine.save_artifact({ note = 'by hand' }, 'notes')\n"
  "  return { weights = data, rate = rate } end }\n"
  "local evaluate = lupine.step { name = 'evaluate', outputs = { 'score' },\n"
  "  function(data, model)\n"
  "    lupine.log_metadata { artifact_name = 'score', metadata = { accuracy = model.rate,\n"
  "      label = 'rate ' .. model.rate, ok = model.rate < 1, shape = { 3, 1 } } }\n"
  "    if model.rate < 1 then lupine.get_step_context():add_output_tags({ 'production' }) end\n"
  "    return #data * model.rate end }\n"
  "local broken = lupine.step { name = 'broken', function(score)\n"
  "  if score < 3 then error('no luck') end return score end }\n"
  "local after = lupine.step { name = 'after', function(x) return x end }\n"
  "RECORDS = lupine.pipeline { name = 'records', tags = { 'nightly', 'c-api' }, function(rate)\n"
  "  local d = load()\n"
  "  after(broken(evaluate(d, train(d, rate))))\n"
  "end }\n";

static void test_records(void) {
  char home[128], want[1024];
  lupine *rt;
  lupine_run *r0 = NULL, *r1 = NULL, *r = (lupine_run *)&r;
  lupine_step_run *sr = NULL, *train = NULL, *copy = NULL;
  lupine_artifact_version *score = NULL, *notes = NULL, *dataset = NULL;
  lua_State *L;
  seen s;
  snprintf(home, sizeof home, "%s/records", base);
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;
  L = lupine_state(rt);
  check(lupine_exec_runs(rt) == 0, "no runs before any script");
  code(rt, lupine_exec_string(rt, pipeline, "=records"), LUPINE_OK, "", "define the pipeline");
  check(lupine_exec_runs(rt) == 0, "a script that starts no run made none");

  /* a script with two runs, the first of which fails without raising */
  code(rt, lupine_exec_string(rt,
       "RECORDS:with_options { run_name = 'r-low', raise_on_failure = false }(0.5)\n"
       "RECORDS:with_options { run_name = 'r-high' }(2)", "=two"), LUPINE_FAILED,
       "pipeline run 'r-low' failed:\nstep 'broken' (records:14) failed: records:15: no luck",
       "a script whose first run fails without raising");
  if (!check(lupine_exec_runs(rt) == 2, "lupine_exec_runs: the script started two runs"))
    printf("#   %d\n", lupine_exec_runs(rt));
  code(rt, lupine_exec_run(rt, 0, &r0), LUPINE_OK, "", "lupine_exec_run(0)");
  code(rt, lupine_exec_run(rt, 1, &r1), LUPINE_OK, "", "lupine_exec_run(1)");
  if (r0 == NULL || r1 == NULL) goto done;
  same(lupine_run_name(r0), "r-low", "the first run, first");
  same(lupine_run_status(r0), "failed", "it failed");
  same(lupine_run_name(r1), "r-high", "the second run");
  same(lupine_run_status(r1), "completed", "it completed");
  code(rt, lupine_exec_run(rt, 2, &r), LUPINE_NOTFOUND,
       "lupine_exec_run: no run 2 (the last lupine_exec_* call started 2)", "lupine_exec_run(2)");
  check(r == NULL, "finds nothing");
  code(rt, lupine_exec_run(rt, -1, &r), LUPINE_NOTFOUND, NULL, "lupine_exec_run(-1)");

  /* tags: the run's, in the order of their names */
  check(lupine_run_tag_count(r0) == 2, "the run has two tags");
  same(lupine_run_tag(r0, 0), "c-api", "the first, in the order of names");
  same(lupine_run_tag(r0, 1), "nightly", "the second");
  check(lupine_run_tag(r0, 2) == NULL && lupine_run_tag(r0, -1) == NULL &&
        lupine_run_tag(NULL, 0) == NULL && lupine_run_tag_count(NULL) == 0,
        "out of range, or of NULL: NULL and 0");

  /* step runs: in the order they started, with their statuses */
  memset(&s, 0, sizeof s);
  code(rt, lupine_step_run_list(rt, r0, see_step, &s), LUPINE_OK, "", "list the run's steps");
  same(s.text, "load:completed train:completed evaluate:completed broken:failed after:skipped",
       "each step run, in order, with its status");
  code(rt, lupine_step_run_find(rt, r0, "broken", &sr), LUPINE_OK, "", "find a step run");
  if (sr != NULL) {
    same(lupine_step_run_name(sr), "broken", "its name");
    same(lupine_step_run_step_name(sr), "broken", "its step's name");
    same(lupine_step_run_run_id(sr), lupine_run_id(r0), "its run");
    same(lupine_step_run_error(sr), "step 'broken' (records:14) failed: records:15: no luck",
         "the error, naming the step and the line");
    check(lupine_step_run_traceback(sr) != NULL &&
          strstr(lupine_step_run_traceback(sr), "stack traceback:") != NULL,
          "and its traceback");
    check(strlen(lupine_step_run_id(sr)) == 36, "its id is a UUID");
    check(lupine_step_run_start_time(sr) != NULL && lupine_step_run_end_time(sr) != NULL &&
          strcmp(lupine_step_run_start_time(sr), lupine_step_run_end_time(sr)) <= 0,
          "it started before it ended");
    check(lupine_step_run_attempts(sr) == 1, "it ran once");
  }
  lupine_step_run_free(sr);
  sr = (lupine_step_run *)&sr;
  code(rt, lupine_step_run_find(rt, r0, "trian", &sr), LUPINE_NOTFOUND,
       "pipeline run 'r-low' has no step run 'trian'", "a step run that is not there");
  check(sr == NULL, "finds nothing");
  code(rt, lupine_step_run_find(rt, r0, "train", &train), LUPINE_OK, "", "find train");
  if (train == NULL) goto done;
  same(lupine_step_run_logs(train), "training on 3\nrate 0.5\n", "what the step printed");
  check(lupine_step_run_error(train) == NULL, "no error");
  code(rt, lupine_step_run_find(rt, r0, "after", &sr), LUPINE_OK, "", "find the skipped step");
  check(sr != NULL && lupine_step_run_attempts(sr) == 0 && lupine_step_run_logs(sr) == NULL,
        "it never ran: no attempt, no logs");
  lupine_step_run_free(sr);
  sr = NULL;

  /* inputs and outputs */
  memset(&s, 0, sizeof s);
  code(rt, lupine_step_run_inputs(rt, train, see_io, &s), LUPINE_OK, "", "train's inputs");
  same(s.text, "data=dataset v1 (step_output)", "the version of each input, by parameter");
  memset(&s, 0, sizeof s);
  code(rt, lupine_step_run_outputs(rt, train, see_io, &s), LUPINE_OK, "", "train's outputs");
  same(s.text, "notes=notes v1 (manual) model=model v1 (step_output)",
       "what it saved by hand as it ran, then its output");

  /* lineage */
  code(rt, lupine_av_find(rt, "notes", "1", &notes), LUPINE_OK, "", "find the notes");
  code(rt, lupine_av_producer(rt, notes, &sr), LUPINE_OK, "", "lupine_av_producer");
  check(sr != NULL && strcmp(lupine_step_run_id(sr), lupine_step_run_id(train)) == 0,
        "the step run that saved it");
  lupine_step_run_free(sr);
  sr = NULL;
  code(rt, lupine_av_find(rt, "dataset", "1", &dataset), LUPINE_OK, "", "find the dataset");
  memset(&s, 0, sizeof s);
  code(rt, lupine_av_consumers(rt, dataset, see_step, &s), LUPINE_OK, "", "its consumers");
  same(s.text, "train:completed evaluate:completed train:completed evaluate:completed",
       "the step runs that took it as an input (load was a cache hit in r-high)");
  code(rt, lupine_exec_string(rt, "lupine.save_artifact(1, 'loose')", "=loose"), LUPINE_OK, "",
       "save a version outside any step");
  check(lupine_exec_runs(rt) == 0, "a later script starts the count again");
  {
    lupine_artifact_version *loose = NULL;
    sr = (lupine_step_run *)&sr;
    lupine_av_find(rt, "loose", NULL, &loose);
    code(rt, lupine_av_producer(rt, loose, &sr), LUPINE_OK, "", "the producer of that one");
    check(sr == NULL, "is none");
    same(lupine_av_save_type(loose), "manual", "it was saved by hand");
    lupine_av_free(loose);
  }

  /* tags and metadata of versions, runs and step runs */
  code(rt, lupine_av_find(rt, "score", "1", &score), LUPINE_OK, "", "find the low score");
  check(score != NULL && lupine_av_tag_count(score) == 1, "it has a tag");
  same(lupine_av_tag(score, 0), "production", "the one the step gave it");
  memset(&s, 0, sizeof s);
  code(rt, lupine_av_metadata(rt, score, see_md, &s), LUPINE_OK, "", "its metadata");
  same(s.text, "accuracy=0.5 label='rate 0.5'(8) ok=true shape=table",
       "each key in order, its value by type");
  memset(&s, 0, sizeof s);
  s.stop_at = 2;
  code(rt, lupine_av_metadata(rt, score, see_md, &s), LUPINE_ABORT,
       "lupine_av_metadata: stopped by the callback (it returned 7)",
       "a metadata callback that returns non-zero");
  memset(&s, 0, sizeof s);
  code(rt, lupine_step_run_metadata(rt, train, see_md, &s), LUPINE_OK, "", "train's metadata");
  same(s.text, "", "it has none");
  code(rt, lupine_step_run_find(rt, r0, "load", &sr), LUPINE_OK, "", "find load");
  memset(&s, 0, sizeof s);
  code(rt, lupine_step_run_metadata(rt, sr, see_md, &s), LUPINE_OK, "", "load's metadata");
  same(s.text, "rows=3", "what it logged for itself");
  lupine_step_run_free(sr);
  sr = NULL;
  code(rt, lupine_exec_string(rt, "lupine.log_metadata { run = 'r-high', metadata ="
       " { owner = 'ci\\0bot' } }", "=md"), LUPINE_OK, "", "log metadata on a run");
  memset(&s, 0, sizeof s);
  code(rt, lupine_run_metadata(rt, r1, see_md, &s), LUPINE_OK, "", "the run's metadata");
  same(s.text, "owner='ci'(6)", "a string with a zero in it: its length says where it ends");

  /* a value pushed whole, into the handle's state and into another */
  {
    loader ld = {rt, L, 0};
    lua_State *L2 = luaL_newstate();
    lupine_av_metadata(rt, score, load_shape, &ld);
    check(ld.loaded == 1 && lua_istable(L, -1) && luaL_len(L, -1) == 2 &&
          lua_rawgeti(L, -1, 1) == LUA_TNUMBER && lua_tointeger(L, -1) == 3,
          "lupine_value_load pushes a table whole: { 3, 1 }");
    lua_settop(L, 0);
    ld.L = L2;
    ld.loaded = 0;
    lupine_av_metadata(rt, score, load_shape, &ld);
    check(ld.loaded == 1 && lua_istable(L2, -1) && luaL_len(L2, -1) == 2,
          "and into another lua_State");
    lua_close(L2);
    check(lupine_value_type(NULL) == LUA_TNONE && lupine_value_number(NULL) == 0 &&
          lupine_value_text(NULL, NULL) == NULL, "the value accessors of NULL");
    code(rt, lupine_value_load(rt, NULL, L), LUPINE_MISUSE, "lupine_value_load: x is NULL",
         "lupine_value_load without a value");
  }

  /* copies outlive the originals */
  check(lupine_step_run_dup(train, &copy) == LUPINE_OK && copy != train, "lupine_step_run_dup");
  lupine_step_run_free(train);
  train = NULL;
  same(lupine_step_run_logs(copy), "training on 3\nrate 0.5\n", "the copy keeps every field");

  /* filters */
  memset(&s, 0, sizeof s);
  code(rt, lupine_av_list(rt, NULL, see_av, &s), LUPINE_OK, "", "every version");
  same(s.text, "loose:1 records::after::output:1 records::broken::output:1 score:2 model:2 "
       "notes:2 score:1 model:1 notes:1 dataset:1", "newest first");
  {
    lupine_filter *f = NULL, *g = NULL;
    lupine *other = NULL;
    code(rt, lupine_filter_new(rt, &f), LUPINE_OK, "", "lupine_filter_new");
    code(rt, lupine_filter_name(f, "score"), LUPINE_OK, "", "by name");
    memset(&s, 0, sizeof s);
    code(rt, lupine_av_list(rt, f, see_av, &s), LUPINE_OK, "", "list by name");
    same(s.text, "score:2 score:1", "the versions of that artifact");
    code(rt, lupine_filter_metadata(f, "accuracy", ">", "1"), LUPINE_OK, "", "and metadata >");
    memset(&s, 0, sizeof s);
    code(rt, lupine_av_list(rt, f, see_av, &s), LUPINE_OK, "", "list by name and metadata");
    same(s.text, "score:2", "the one whose accuracy is above 1");
    lupine_filter_free(f);
    lupine_filter_new(rt, &f);
    lupine_filter_metadata(f, "label", "=", "rate 0.5");
    memset(&s, 0, sizeof s);
    lupine_av_list(rt, f, see_av, &s);
    same(s.text, "score:1", "metadata = a string");
    lupine_filter_free(f);
    lupine_filter_new(rt, &f);
    lupine_filter_metadata(f, "accuracy", "=", "2");
    memset(&s, 0, sizeof s);
    lupine_av_list(rt, f, see_av, &s);
    same(s.text, "score:2", "metadata = a number, given as text");
    lupine_filter_metadata(f, "ok", NULL, NULL);
    memset(&s, 0, sizeof s);
    lupine_av_list(rt, f, see_av, &s);
    same(s.text, "score:2", "and a key that is there");
    lupine_filter_metadata(f, "missing", NULL, NULL);
    memset(&s, 0, sizeof s);
    code(rt, lupine_av_list(rt, f, see_av, &s), LUPINE_OK, "", "a key that is not there");
    same(s.text, "", "matches nothing");
    lupine_filter_free(f);
    lupine_filter_new(rt, &f);
    lupine_filter_tag(f, "production");
    memset(&s, 0, sizeof s);
    code(rt, lupine_av_list(rt, f, see_av, &s), LUPINE_OK, "", "list by tag");
    same(s.text, "score:1", "the tagged version");
    lupine_filter_tag(f, "other");
    memset(&s, 0, sizeof s);
    lupine_av_list(rt, f, see_av, &s);
    same(s.text, "", "every tag must be there");
    lupine_filter_free(f);

    /* runs */
    lupine_filter_new(rt, &f);
    lupine_filter_tag(f, "nightly");
    memset(&s, 0, sizeof s);
    code(rt, lupine_run_list(rt, f, see_run, &s), LUPINE_OK, "", "runs by tag");
    same(s.text, "r-high:completed r-low:failed", "both, newest first");
    lupine_filter_status(f, "failed");
    memset(&s, 0, sizeof s);
    lupine_run_list(rt, f, see_run, &s);
    same(s.text, "r-low:failed", "and by status");
    lupine_filter_free(f);
    lupine_filter_new(rt, &f);
    lupine_filter_metadata(f, "owner", "=", "ci");
    memset(&s, 0, sizeof s);
    lupine_run_list(rt, f, see_run, &s);
    same(s.text, "", "metadata = compares whole strings");
    lupine_filter_free(f);

    /* misuse */
    lupine_filter_new(rt, &f);
    code(rt, lupine_filter_metadata(f, "accuracy", ">", "high"), LUPINE_MISUSE,
         "lupine_filter_metadata: '>' compares numbers, but 'high' is not a number",
         "a comparison with a word");
    code(rt, lupine_filter_metadata(f, "accuracy", "~=", "1"), LUPINE_MISUSE,
         "lupine_filter_metadata: unknown operator '~=' (one of =, <, <=, >, >=)",
         "an unknown operator");
    code(rt, lupine_filter_metadata(f, "accuracy", "=", NULL), LUPINE_MISUSE,
         "lupine_filter_metadata: op and value go together (both NULL: the key is there)",
         "an operator without a value");
    code(rt, lupine_filter_metadata(f, NULL, NULL, NULL), LUPINE_MISUSE,
         "lupine_filter_metadata: key is NULL", "no key");
    code(rt, lupine_filter_tag(f, NULL), LUPINE_MISUSE, "lupine_filter_tag: tag is NULL",
         "no tag");
    check(lupine_filter_name(NULL, "x") == LUPINE_MISUSE && lupine_filter_new(NULL, &g) ==
          LUPINE_MISUSE && g == NULL, "NULL filters and handles are misuse");
    lupine_filter_free(NULL);
    lupine_filter_status(f, "failed");
    code(rt, lupine_av_list(rt, f, see_av, &s), LUPINE_MISUSE,
         "lupine_av_list: a filter by status applies to runs only", "status for versions");
    lupine_filter_free(f);
    lupine_filter_new(rt, &f);
    lupine_filter_name(f, "scroe");
    code(rt, lupine_av_list(rt, f, see_av, &s), LUPINE_NOTFOUND,
         "artifact 'scroe' not found; did you mean 'score'?", "a name that names nothing");
    code(rt, lupine_run_list(rt, f, see_run, &s), LUPINE_NOTFOUND,
         "pipeline 'scroe' not found", "a pipeline name that names nothing");
    lupine_filter_free(f);
    snprintf(want, sizeof want, "%s/other", base);
    if (lupine_open(&other, want) == LUPINE_OK && lupine_filter_new(other, &g) == LUPINE_OK)
      code(rt, lupine_av_list(rt, g, see_av, &s), LUPINE_MISUSE,
           "lupine_av_list: the filter was made for another handle", "another handle's filter");
    lupine_filter_free(g);
    lupine_close(other);
  }

  /* callbacks that stop */
  memset(&s, 0, sizeof s);
  s.stop_at = 1;
  code(rt, lupine_step_run_list(rt, r0, see_step, &s), LUPINE_ABORT,
       "lupine_step_run_list: stopped by the callback (it returned 7)",
       "a callback's non-zero return is LUPINE_ABORT, whatever it was");
  check(s.n == 1, "after its first call");

done:
  lupine_step_run_free(copy);
  lupine_step_run_free(train);
  lupine_av_free(score);
  lupine_av_free(notes);
  lupine_av_free(dataset);
  lupine_run_free(r0);
  lupine_run_free(r1);
  lupine_close(rt);
}

/* ---- scripts: arguments, result codes, the runs they made ---- */

/* host_exec(code): the host runs a script of its own from inside one */
static int host_exec(lua_State *L) {
  lupine *rt = lua_touserdata(L, lua_upvalueindex(1));
  lua_pushinteger(L, lupine_exec_string(rt, luaL_checkstring(L, 1), "=inner"));
  return 1;
}

static const char tiny[] =
  "TINY = lupine.pipeline { name = 'tiny', enable_cache = false, function(fail)\n"
  "  lupine.step { name = 'step', function() if fail then error('bad luck') end end }()\n"
  "end }\n";

static void test_scripts(void) {
  static const char *const args[] = {"one", "two"};
  static const char chunk[] = "local a, b = ...\nGOT = a .. '+' .. b .. ' ' .. arg[0] .. ' '"
                              " .. #arg .. ' ' .. #'x\0y'";
  char home[128], path[160];
  lupine *rt;
  lupine_run *r = NULL;
  lua_State *L;
  FILE *f;
  snprintf(home, sizeof home, "%s/scripts", base);
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;
  L = lupine_state(rt);

  /* a string takes arguments as a file does */
  code(rt, lupine_exec_buffer(rt, chunk, sizeof chunk - 1, "=args", 2, args), LUPINE_OK, "",
       "lupine_exec_buffer with arguments");
  lua_getglobal(L, "GOT");
  same(lua_tostring(L, -1), "one+two args 2 3",
       "they are its ... and arg (arg[0] its name), and its bytes may hold a zero");
  lua_settop(L, 0);
  code(rt, lupine_exec_buffer(rt, "ARG = arg", 9, NULL, 0, NULL), LUPINE_OK, "",
       "lupine_exec_buffer without arguments");
  lua_getglobal(L, "ARG");
  check(lua_istable(L, -1) && lua_rawgeti(L, -1, 2) == LUA_TSTRING &&
        strcmp(lua_tostring(L, -1), "two") == 0, "leaves arg as it was");
  lua_settop(L, 0);
  code(rt, lupine_exec_buffer(rt, "x = 1", 5, NULL, 1, NULL), LUPINE_MISUSE,
       "lupine_exec_buffer: bad argc or argv", "arguments without argv");
  code(rt, lupine_exec_buffer(rt, NULL, 0, NULL, 0, NULL), LUPINE_MISUSE,
       "lupine_exec_buffer: code is NULL", "no code");
  snprintf(path, sizeof path, "%s/args.lua", base);
  if ((f = fopen(path, "w")) != NULL) {
    fputs("local a, b = ...\nGOT = a .. '+' .. b .. ' ' .. #arg\n", f);
    fclose(f);
  }
  code(rt, lupine_exec_file(rt, path, 2, args), LUPINE_OK, "", "lupine_exec_file with arguments");
  lua_getglobal(L, "GOT");
  same(lua_tostring(L, -1), "one+two 2", "a file gets them the same way");
  lua_settop(L, 0);

  /* result codes: a failed step, a broken script, both */
  code(rt, lupine_exec_string(rt, tiny, "=tiny"), LUPINE_OK, "", "define a pipeline");
  code(rt, lupine_exec_string(rt, "TINY:with_options { run_name = 'ok-1' }()", "=run"),
       LUPINE_OK, "", "a run that completes");
  check(lupine_exec_runs(rt) == 1, "one run");
  code(rt, lupine_exec_string(rt, "TINY:with_options { run_name = 'bad-1' }(true)", "=run"),
       LUPINE_FAILED, "pipeline run 'bad-1' failed:\nstep 'step' (tiny:2) failed: tiny:2: bad luck",
       "a run whose step fails, and raises: LUPINE_FAILED");
  code(rt, lupine_exec_string(rt, "local x = nil\nreturn x.field", "=broken"), LUPINE_SCRIPT,
       "broken:2: attempt to index a nil value (local 'x')\nstack traceback:\n"
       "\tbroken:2: in main chunk", "a broken script: LUPINE_SCRIPT");
  code(rt, lupine_exec_string(rt, "TINY:with_options { run_name = 'bad-2',\n"
       "  raise_on_failure = false }(true)\nerror('and then this', 0)", "=both"), LUPINE_SCRIPT,
       "and then this\nstack traceback:\n\t[C]: in function 'error'\n\tboth:3: in main chunk",
       "a failed run, then an error of the script's own: the script's");
  check(lupine_exec_runs(rt) == 1, "the run still counts");
  code(rt, lupine_exec_string(rt, "local ok, e = pcall(TINY.with_options(TINY, { run_name ="
       " 'bad-3' }), true)\nerror('wrapped: ' .. tostring(e):match('^[^\\n]*'), 0)", "=wrap"),
       LUPINE_SCRIPT, NULL, "a run's error caught and raised as another: the script's");
  same(lupine_errmsg(rt), "wrapped: pipeline run 'bad-3' failed:\nstack traceback:\n"
       "\t[C]: in function 'error'\n\twrap:2: in main chunk", "with its message");

  /* runs a host starts itself are not counted; nested calls' are */
  check(luaL_dostring(L, "TINY:with_options { run_name = 'own-1' }()") == LUA_OK,
        "a run the host starts in the state itself");
  check(lupine_exec_runs(rt) == 1, "is not counted");
  lua_pushlightuserdata(L, rt);
  lua_pushcclosure(L, host_exec, 1);
  lua_setglobal(L, "host_exec");
  code(rt, lupine_exec_string(rt, "assert(host_exec(\"TINY:with_options { run_name = 'in-1' }()\")"
       " == 0)\nTINY:with_options { run_name = 'out-1' }()", "=nest"), LUPINE_OK, "",
       "a script that runs a script through the host");
  check(lupine_exec_runs(rt) == 2, "both runs count for the outer call");
  if (lupine_exec_run(rt, 0, &r) == LUPINE_OK) same(lupine_run_name(r), "in-1", "in order");
  lupine_run_free(r);
  check(lupine_exec_runs(NULL) == -1, "lupine_exec_runs(NULL) is -1");
  check(lupine_exec_run(NULL, 0, &r) == LUPINE_MISUSE && r == NULL, "lupine_exec_run(NULL)");
  check(lupine_errcode(NULL) == LUPINE_MISUSE, "lupine_errcode(NULL) is misuse");
  lupine_close(rt);
}

/* ---- many records: listings a page at a time ---- */

/* Counts versions many-N passed with N going down from s->stop_at (the
** one expected next); n counts those out of order. */
static int see_descending(void *ud, const lupine_artifact_version *v) {
  seen *s = ud;
  char want[32];
  snprintf(want, sizeof want, "many-%d", s->stop_at--);
  if (strcmp(lupine_av_name(v), want) != 0) s->n++;
  return 0;
}

static void test_pages(void) {
  char home[128];
  lupine *rt;
  seen s;
  snprintf(home, sizeof home, "%s/pages", base);
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;
  code(rt, lupine_exec_string(rt, "lupine.step { name = 'many', function()\n"
       "  for i = 1, 600 do lupine.save_artifact(i, 'many-' .. i) end end }()", "=many"),
       LUPINE_OK, "", "a step saves 600 versions");
  memset(&s, 0, sizeof s);
  s.stop_at = 600;
  code(rt, lupine_av_list(rt, NULL, see_descending, &s), LUPINE_OK, "", "list them");
  check(s.stop_at == 0 && s.n == 0, "all of them, across pages, newest first");
  lupine_close(rt);
}

/* ---- the earlier names, deprecated ---- */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static int see_old(void *ud, const lupine_version *v) {
  seen *s = ud;
  add(s, "%s:%s", lupine_version_name(v), lupine_version_version(v));
  return ++s->n == s->stop_at ? 7 : 0;
}

static void test_deprecated(void) {
  char home[128];
  lupine *rt;
  lupine_version *v = NULL, *copy = NULL;
  lupine_version_fn fn = see_old;
  unsigned char *data = NULL;
  size_t len = 0;
  seen s;
  snprintf(home, sizeof home, "%s/deprecated", base);
  if (!check(lupine_open(&rt, home) == LUPINE_OK, "open a runtime")) return;
  code(rt, lupine_exec_string(rt, "lupine.save_artifact({ 1 }, 'old') lupine.save_artifact(2,"
       " 'old') lupine.pipeline { name = 'p', function()"
       " lupine.step('s', function() end)() end }()", "=old"), LUPINE_OK, "",
       "store two versions");
  check(LUPINE_RUNFAILED == LUPINE_FAILED, "LUPINE_RUNFAILED is LUPINE_FAILED");
  code(rt, lupine_version_find(rt, "old", "1", &v), LUPINE_OK, "", "lupine_version_find");
  if (v == NULL) {
    lupine_close(rt);
    return;
  }
  same(lupine_version_name(v), "old", "lupine_version_name");
  same(lupine_version_version(v), "1", "lupine_version_version");
  same(lupine_version_data_type(v), "numbers", "lupine_version_data_type");
  same(lupine_version_type(v), "data", "lupine_version_type");
  check(strlen(lupine_version_id(v)) == 36 && strlen(lupine_version_content_hash(v)) == 71 &&
        strlen(lupine_version_created(v)) == 27 && lupine_version_size(v) == 2 &&
        lupine_version_stored_size(v) > 0, "the other accessors");
  check(lupine_version_dup(v, &copy) == LUPINE_OK && copy != NULL, "lupine_version_dup");
  code(rt, lupine_version_load(rt, copy, lupine_state(rt)), LUPINE_OK, "", "lupine_version_load");
  lua_settop(lupine_state(rt), 0);
  code(rt, lupine_version_read(rt, v, &data, &len), LUPINE_OK, "", "lupine_version_read");
  check(len == 2 && data[0] == 0x81 && data[1] == 0x01, "gives the CBOR of { 1 }");
  lupine_free(data);
  code(rt, lupine_version_path(rt, v, (char **)&data), LUPINE_MISUSE, NULL,
       "lupine_version_path (of a value)");
  memset(&s, 0, sizeof s);
  code(rt, lupine_list_versions(rt, "old", fn, &s), LUPINE_OK, "", "lupine_list_versions");
  same(s.text, "old:2 old:1", "by name");
  memset(&s, 0, sizeof s);
  lupine_list_versions(rt, NULL, fn, &s);
  same(s.text, "old:2 old:1", "all");
  code(rt, lupine_list_versions(rt, "olde", fn, &s), LUPINE_NOTFOUND,
       "artifact 'olde' not found; did you mean 'old'?", "an unknown name");
  code(rt, lupine_list_versions(rt, "old", NULL, &s), LUPINE_MISUSE,
       "lupine_av_list: fn is NULL", "no callback");
  memset(&s, 0, sizeof s);
  code(rt, lupine_list_runs(rt, "p", see_run, &s), LUPINE_OK, "", "lupine_list_runs");
  check(s.n == 1, "the run");
  lupine_version_free(copy);
  lupine_version_free(v);
  lupine_close(rt);
}
#pragma GCC diagnostic pop

int main(void) {
  char tmpl[] = "/tmp/lupine-records.XXXXXX";
  if (mkdtemp(tmpl) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(base, sizeof base, "%s", tmpl);
  unsetenv("LUPINE_HOME");
  test_records();
  test_scripts();
  test_pages();
  test_deprecated();
  nftw(base, remove_one, 16, FTW_DEPTH | FTW_PHYS);
  return tap_done();
}
