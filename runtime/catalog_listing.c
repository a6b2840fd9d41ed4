/* SPDX-License-Identifier: MIT */
/*
** catalog_listing.c: the statements of the Client's listings
** (lua/lupine/query.lua: list_artifact_versions, list_artifacts,
** list_pipeline_runs, list_pipelines), built from a filter description;
** and those of the C API's records (api.c), built from an lp_records.
**
** A description is a Lua table: an array of conditions, each
**   { field = "name", op = "equals", value = "model" }
** (for run_metadata also key, and number: the text's number, either
** matching; or bytes, the CBOR of the value, instead of value), and sort
** (a key of sort_keys), desc, limit and offset. Every part is checked
** here; the user's shorthand ("gte:3", a list of tags, a run's name) is
** the Lua side's to read. Every value is a bound parameter.
**
** The statement's shape depends only on which fields and operators are
** given, and is chosen so that an index answers it: the newest versions
** with a tag come from a range of tag_links_by_version, the versions of a
** name from artifact_versions_by_artifact, and so on (tests/query_spec.lua
** checks the plans). What differs between dialects comes from the
** backend's lp_catalog_dialect: placeholders, LIKE ignoring ASCII case,
** the tag-led FROM, where NULLs sort, and how to ask for a plan.
*/
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lauxlib.h"
#include "catalog_backend.h"

/* ---- what can be asked ---- */

enum { O_EQUALS, O_GT, O_GTE, O_LT, O_LTE, O_CONTAINS, O_STARTSWITH, O_ENDSWITH };
static const char *const op_names[] = {"equals", "gt", "gte", "lt", "lte", "contains",
                                       "startswith", "endswith"};
static const char *const op_sql[] = {"=", ">", ">=", "<", "<="};   /* the rest: a LIKE */
#define NOPS ((int)(sizeof op_names / sizeof op_names[0]))
#define IS_LIKE(op) ((op) >= O_CONTAINS)

/* How a field's condition becomes SQL. */
enum {
  F_TEXT,       /* its column compared with the text */
  F_VERSION,    /* text: the version; a number: the version's number */
  F_TAG,        /* a tag matching the text; one condition per tag, all must match */
  F_RUN,        /* the versions a run's step runs linked (value: the run's id) */
  F_METADATA    /* one condition per key, all must match */
};

typedef struct field {
  const char *name;
  int kind;
} field;

/* The orders a listing may be sorted in (sort), by key, each listing's
** keys in the order of their names: the columns, each sorted in the
** direction asked; ties fall to creation order (seq) in that direction
** too. The listing's statement names its tables v, a, r and p as these do. */
typedef struct sort {
  const char *key;
  const char *columns[4];
} sort;

typedef struct build build;

typedef struct listing {
  const char *name;
  field fields[8];
  sort sorts[8];
  void (*make)(build *b);   /* its statement's parts */
} listing;

/* ---- a condition, read from the description ---- */

typedef struct cond {
  int kind;
  const char *field;
  int op;
  lp_catalog_value value;    /* text, a number, or the CBOR bytes */
  lp_catalog_value number;   /* run_metadata equals: the text's number too (or NULL) */
  lp_catalog_value key;      /* run_metadata */
  char *pattern;             /* a LIKE's pattern, owned */
} cond;

/* ---- building a statement ---- */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int failed;   /* out of memory */
} sbuf;

static void add(sbuf *s, const char *text) {
  size_t n = strlen(text);
  if (s->failed) return;
  if (s->len + n + 1 > s->cap) {
    size_t cap = (s->len + n + 1) * 2;
    char *p = realloc(s->p, cap);
    if (p == NULL) {
      s->failed = 1;
      return;
    }
    s->p = p;
    s->cap = cap;
  }
  memcpy(s->p + s->len, text, n + 1);
  s->len += n;
}

struct build {
  const lp_catalog_dialect *d;
  const listing *ls;
  cond *conds;
  int nconds;
  const char *sort;          /* the key */
  int desc;
  sbuf where;                /* the conditions, " AND " between */
  lp_catalog_value *args;    /* bound in the order their placeholders were written */
  int nargs;
  const char *columns, *order;
  /* FROM from_base from_join; a count, which needs no join that only
  ** adds columns: FROM from_base count_join */
  const char *from_base, *from_join, *count_join;
  char order_buf[256];
};

/* Bind v to the next placeholder, written into ph. */
static void next_placeholder(build *b, const lp_catalog_value *v, char ph[16]) {
  b->args[b->nargs++] = *v;
  snprintf(ph, 16, b->d->param, b->nargs);
}

/* Write the next placeholder into s, for value v. */
static void param(build *b, sbuf *s, const lp_catalog_value *v) {
  char ph[16];
  next_placeholder(b, v, ph);
  add(s, ph);
  if (v->type == LP_CATALOG_REAL) add(s, b->d->real_cast);   /* 9.5 against an integer column */
}

/* Start the next condition of the WHERE. */
static sbuf *term(build *b) {
  if (b->where.len > 0) add(&b->where, " AND ");
  return &b->where;
}

/* col compared with condition c. */
static void compare(build *b, sbuf *s, const char *col, const cond *c) {
  if (IS_LIKE(c->op)) {
    lp_catalog_value v;
    char ph[16], like[256];
    v.type = LP_CATALOG_TEXT;
    v.u.s.p = c->pattern;
    v.u.s.len = strlen(c->pattern);
    next_placeholder(b, &v, ph);
    /* the columns are this file's, the format the dialect's: never near */
    if (snprintf(like, sizeof like, b->d->like, col, ph) >= (int)sizeof like) s->failed = 1;
    else add(s, like);
    return;
  }
  add(s, col);
  add(s, " ");
  add(s, op_sql[c->op]);
  add(s, " ");
  param(b, s, &c->value);
}

/* col (a tag seq) is that of a tag matching c. */
static void tag_match(build *b, sbuf *s, const char *col, const cond *c) {
  add(s, col);
  if (c->op == O_EQUALS) {
    add(s, " = (SELECT seq FROM tags WHERE name = ");
    param(b, s, &c->value);
    add(s, ")");
    return;
  }
  add(s, " IN (SELECT seq FROM tags WHERE ");
  compare(b, s, "name", c);
  add(s, ")");
}

/* The metadata row m matches c. */
static void metadata_match(build *b, sbuf *s, const cond *c) {
  add(s, "m.key = ");
  param(b, s, &c->key);
  add(s, " AND ");
  if (c->value.type == LP_CATALOG_BLOB) {
    add(s, "m.value = ");
    param(b, s, &c->value);
  } else if (c->value.type == LP_CATALOG_INT || c->value.type == LP_CATALOG_REAL) {
    add(s, "m.value_number ");
    add(s, op_sql[c->op]);
    add(s, " ");
    param(b, s, &c->value);
  } else if (c->number.type != LP_CATALOG_NULL) {
    add(s, "(m.value_text = ");
    param(b, s, &c->value);
    add(s, " OR m.value_number = ");
    param(b, s, &c->number);
    add(s, ")");
  } else {
    compare(b, s, "m.value_text", c);
  }
}

/* The direction's suffix of an ORDER BY column that is never NULL: plain
** ASC and DESC, which an index's order answers on every backend. */
static const char *dir(const build *b) {
  return b->desc ? " DESC" : "";
}

/* The same for a column that may be NULL (a custom version's number):
** NULLs first up, last down, as sqlite orders them, in the dialect's
** words. */
static const char *dir_nulls(const build *b, const char *column) {
  if (strcmp(column, "v.version_number") != 0) return dir(b);
  return b->desc ? b->d->descending : b->d->ascending;
}

/* The first condition on a field of kind, or NULL. */
static const cond *one(const build *b, int kind) {
  int i;
  for (i = 0; i < b->nconds; i++)
    if (b->conds[i].kind == kind) return &b->conds[i];
  return NULL;
}

/* The condition on the F_TEXT field named name, or NULL. */
static const cond *text_field(const build *b, const char *name) {
  int i;
  for (i = 0; i < b->nconds; i++)
    if (b->conds[i].kind == F_TEXT && strcmp(b->conds[i].field, name) == 0) return &b->conds[i];
  return NULL;
}

#define VERSION_COLUMNS \
  "v.id, a.name, v.version, v.type, v.data_type, v.content_hash, v.size, v.stored_size," \
  " v.uri, v.codec_version, v.created, v.producer_step_run_id, v.save_type"
#define RUN_COLUMNS \
  "r.id, r.name, p.name AS pipeline_name, r.status, r.start_time, r.end_time, r.error"
#define WITH_ARTIFACTS " JOIN artifacts a ON a.id = v.artifact_id"

/*
** Which table leads depends on the filters: an equal name
** (artifact_versions_by_artifact), a run (its step links), else an equal
** tag when sorted by creation (tag_links_by_version, in order), else the
** planner's choice, with the first tag or metadata key as an IN list it
** may lead with. Further tags and metadata keys are probes per version.
*/
static void versions(build *b) {
  const cond *name = text_field(b, "name"), *run = one(b, F_RUN);
  const cond *created = text_field(b, "created"), *version = one(b, F_VERSION);
  const cond *type = text_field(b, "artifact_type");
  int led = (name != NULL && name->op == O_EQUALS) || run != NULL, leader = -1, i;
  int by_created = strcmp(b->sort, "created") == 0;
  sbuf *s;
  for (i = 0; i < b->nconds && !led; i++) {
    const cond *t = &b->conds[i];
    if (t->kind != F_TAG || !by_created || t->op != O_EQUALS) continue;
    s = term(b);
    add(s, "l.entity = 'artifact_version' AND ");
    tag_match(b, s, "l.tag_seq", t);
    snprintf(b->order_buf, sizeof b->order_buf, "l.version_seq%s", dir(b));
    b->order = b->order_buf;
    leader = i;
    led = 1;
  }
  if (name != NULL && !led) {
    /* the names matching first (artifacts is small), then their versions */
    s = term(b);
    add(s, "v.artifact_id IN (SELECT id FROM artifacts WHERE ");
    compare(b, s, "name", name);
    add(s, ")");
    led = 1;
  } else if (name != NULL) {
    compare(b, term(b), "a.name", name);
  }
  if (created != NULL && !led && by_created) {
    /* the same order as seq (versions are recorded in time order), but one
    ** index then answers both the range and the order */
    snprintf(b->order_buf, sizeof b->order_buf, "v.created%s, v.seq%s", dir(b), dir(b));
    b->order = b->order_buf;
    led = 1;
  }
  if (run != NULL) {
    s = term(b);
    add(s, "v.id IN (SELECT k.artifact_version_id FROM step_runs s"
        " JOIN step_run_artifacts k ON k.step_run_id = s.id WHERE s.run_id = ");
    param(b, s, &run->value);
    add(s, ")");
  }
  if (version != NULL && version->value.type != LP_CATALOG_TEXT) {
    s = term(b);
    add(s, "v.version_number ");
    add(s, op_sql[version->op]);
    add(s, " ");
    param(b, s, &version->value);
  } else if (version != NULL) {
    compare(b, term(b), "v.version", version);
  }
  if (type != NULL) compare(b, term(b), "v.type", type);
  if (created != NULL) compare(b, term(b), "v.created", created);
  for (i = 0; i < b->nconds; i++) {
    const cond *t = &b->conds[i];
    if (t->kind != F_TAG || i == leader) continue;
    s = term(b);
    if (!led) {
      add(s, "v.seq IN (SELECT l.version_seq FROM tag_links l"
          " WHERE l.entity = 'artifact_version' AND ");
      tag_match(b, s, "l.tag_seq", t);
      led = 1;
    } else {
      add(s, "EXISTS (SELECT 1 FROM tag_links t WHERE t.entity = 'artifact_version'"
          " AND t.entity_id = v.id AND ");
      tag_match(b, s, "t.tag_seq", t);
    }
    add(s, ")");
  }
  for (i = 0; i < b->nconds; i++) {
    const cond *m = &b->conds[i];
    if (m->kind != F_METADATA) continue;
    s = term(b);
    if (!led) {
      add(s, "v.id IN (SELECT m.entity_id FROM run_metadata m WHERE ");
      metadata_match(b, s, m);
      add(s, " AND m.entity = 'artifact_version')");
      led = 1;
    } else {
      add(s, "EXISTS (SELECT 1 FROM run_metadata m WHERE m.entity = 'artifact_version'"
          " AND m.entity_id = v.id AND ");
      metadata_match(b, s, m);
      add(s, ")");
    }
  }
  b->columns = VERSION_COLUMNS;
  b->from_base = leader >= 0 ? b->d->tag_leads : "artifact_versions v";
  b->from_join = WITH_ARTIFACTS;
  /* counting needs artifacts only to test names: every version has one */
  b->count_join = name != NULL ? WITH_ARTIFACTS : "";
}

static void artifacts(build *b) {
  const cond *name = text_field(b, "name"), *created = text_field(b, "created");
  int i;
  if (name != NULL) compare(b, term(b), "a.name", name);
  if (created != NULL) compare(b, term(b), "a.created", created);
  for (i = 0; i < b->nconds; i++) {
    const cond *t = &b->conds[i];
    sbuf *s;
    if (t->kind != F_TAG) continue;
    /* one placeholder per side of the UNION, so each side can use its index */
    s = term(b);
    add(s, "a.id IN (SELECT entity_id FROM tag_links WHERE entity = 'artifact' AND ");
    tag_match(b, s, "tag_seq", t);
    add(s, " UNION SELECT v.artifact_id FROM tag_links l"
        " JOIN artifact_versions v ON v.seq = l.version_seq"
        " WHERE l.entity = 'artifact_version' AND ");
    tag_match(b, s, "l.tag_seq", t);
    add(s, ")");
  }
  b->columns = "a.id, a.name, a.created";
  b->from_base = "artifacts a";
}

static void runs(build *b) {
  const cond *pipeline = text_field(b, "pipeline_name");
  static const char *const columns[][2] = {{"pipeline_name", "p.name"}, {"name", "r.name"},
    {"status", "r.status"}, {"created", "r.start_time"}};
  int i;
  for (i = 0; i < 4; i++) {
    const cond *c = text_field(b, columns[i][0]);
    if (c != NULL) compare(b, term(b), columns[i][1], c);
  }
  for (i = 0; i < b->nconds; i++) {
    const cond *t = &b->conds[i];
    sbuf *s;
    if (t->kind != F_TAG) continue;
    s = term(b);
    add(s, "r.id IN (SELECT l.entity_id FROM tag_links l WHERE l.entity = 'pipeline_run' AND ");
    tag_match(b, s, "l.tag_seq", t);
    add(s, ")");
  }
  b->columns = RUN_COLUMNS;
  b->from_base = "pipeline_runs r";
  b->from_join = " JOIN pipelines p ON p.id = r.pipeline_id";
  if (pipeline != NULL) b->count_join = b->from_join;
}

static void pipelines(build *b) {
  const cond *name = text_field(b, "name"), *created = text_field(b, "created");
  if (name != NULL) compare(b, term(b), "p.name", name);
  if (created != NULL) compare(b, term(b), "p.created", created);
  b->columns = "p.id, p.name, p.created";
  b->from_base = "pipelines p";
}

static const listing listings[] = {
  {"artifact_versions",
   {{"name", F_TEXT}, {"version", F_VERSION}, {"tag", F_TAG}, {"artifact_type", F_TEXT},
    {"created", F_TEXT}, {"pipeline_run", F_RUN}, {"run_metadata", F_METADATA}},
   {{"artifact_type", {"v.type", "v.seq"}}, {"created", {"v.seq"}},
    {"data_type", {"v.data_type", "v.seq"}}, {"name", {"a.name", "v.seq"}},
    {"size", {"v.size", "v.seq"}}, {"stored_size", {"v.stored_size", "v.seq"}},
    {"version", {"v.version_number", "v.version", "v.seq"}}},
   versions},
  {"artifacts", {{"name", F_TEXT}, {"tag", F_TAG}, {"created", F_TEXT}},
   {{"created", {"a.seq"}}, {"name", {"a.name"}}}, artifacts},
  {"pipeline_runs",
   {{"pipeline_name", F_TEXT}, {"status", F_TEXT}, {"tag", F_TAG}, {"name", F_TEXT},
    {"created", F_TEXT}},
   {{"created", {"r.seq"}}, {"name", {"r.name"}}}, runs},
  {"pipelines", {{"name", F_TEXT}, {"created", F_TEXT}},
   {{"created", {"p.seq"}}, {"name", {"p.name"}}}, pipelines},
};
#define NLISTINGS ((int)(sizeof listings / sizeof listings[0]))

static const listing *find_listing(const char *name, char *err, size_t errsz) {
  int i;
  for (i = 0; i < NLISTINGS && name != NULL; i++)
    if (strcmp(listings[i].name, name) == 0) return &listings[i];
  lp_errf(err, errsz, "unknown listing '%s' (one of: artifact_versions, artifacts, "
          "pipeline_runs, pipelines)", name != NULL ? name : "(none)");
  return NULL;
}

/* ---- reading the description ---- */

/* Push t[key] without metamethods; its type. */
static int get(lua_State *L, int t, const char *key) {
  lua_pushstring(L, key);
  return lua_rawget(L, t);
}

/* The value on top as a text or number value (no string conversion). */
static void value_of(lua_State *L, lp_catalog_value *v) {
  if (lua_type(L, -1) == LUA_TSTRING) {
    v->type = LP_CATALOG_TEXT;
    v->u.s.p = lua_tolstring(L, -1, &v->u.s.len);
  } else if (lua_isinteger(L, -1)) {
    v->type = LP_CATALOG_INT;
    v->u.i = lua_tointeger(L, -1);
  } else {
    v->type = LP_CATALOG_REAL;
    v->u.d = lua_tonumber(L, -1);
  }
}

/* A LIKE pattern for the text of c, '\' escaping the pattern's characters. */
static char *pattern_of(const cond *c) {
  const char *s = c->value.u.s.p;
  size_t i, n = 0, len = c->value.u.s.len;
  char *p = malloc(len * 2 + 3);
  if (p == NULL) return NULL;
  if (c->op != O_STARTSWITH) p[n++] = '%';
  for (i = 0; i < len; i++) {
    if (s[i] == '\\' || s[i] == '%' || s[i] == '_') p[n++] = '\\';
    p[n++] = s[i];
  }
  if (c->op != O_ENDSWITH) p[n++] = '%';
  p[n] = '\0';
  return p;
}

#define BAD "bad argument #2 to 'list' (description"

/* Condition i (from 1) of the description at index d into c. Its strings
** stay in the description, which the caller keeps on the stack. */
static int read_cond(lua_State *L, int d, int i, const build *b, cond *c, char *err,
                     size_t errsz) {
  const listing *ls = b->ls;
  int t, k, numeric;
  const char *s;
  if ((t = lua_rawgeti(L, d, i)) != LUA_TTABLE) {
    lp_errf(err, errsz, BAD "[%d]: table expected, got %s)", i, lua_typename(L, t));
    return LUPINE_MISUSE;
  }
  d = lua_gettop(L);   /* the condition, from here on */
  if (get(L, d, "field") != LUA_TSTRING) {
    lp_errf(err, errsz, BAD "[%d].field: string expected, got %s)", i, luaL_typename(L, -1));
    return LUPINE_MISUSE;
  }
  s = lua_tostring(L, -1);
  for (k = 0; k < 8 && ls->fields[k].name != NULL && strcmp(ls->fields[k].name, s) != 0; k++) {}
  if (k == 8 || ls->fields[k].name == NULL) {
    lp_errf(err, errsz, BAD "[%d].field: '%s' is not a field of %s)", i, s, ls->name);
    return LUPINE_MISUSE;
  }
  c->field = ls->fields[k].name;
  c->kind = ls->fields[k].kind;
  if (c->kind != F_TAG && c->kind != F_METADATA)
    for (k = 0; k < b->nconds; k++)
      if (b->conds[k].field == c->field) {
        lp_errf(err, errsz, BAD "[%d].field: '%s' is given twice)", i, s);
        return LUPINE_MISUSE;
      }
  if (get(L, d, "op") != LUA_TSTRING) {
    lp_errf(err, errsz, BAD "[%d].op: string expected, got %s)", i, luaL_typename(L, -1));
    return LUPINE_MISUSE;
  }
  s = lua_tostring(L, -1);
  for (c->op = 0; c->op < NOPS && strcmp(op_names[c->op], s) != 0; c->op++) {}
  if (c->op == NOPS) {
    lp_errf(err, errsz, BAD "[%d].op: unknown operator '%s')", i, s);
    return LUPINE_MISUSE;
  }
  c->number.type = LP_CATALOG_NULL;
  if (c->kind == F_METADATA) {
    if (get(L, d, "key") != LUA_TSTRING) {
      lp_errf(err, errsz, BAD "[%d].key: string expected, got %s)", i, luaL_typename(L, -1));
      return LUPINE_MISUSE;
    }
    value_of(L, &c->key);
    if (get(L, d, "bytes") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TSTRING || c->op != O_EQUALS) {
        lp_errf(err, errsz, BAD "[%d].bytes: a string compared with equals expected)", i);
        return LUPINE_MISUSE;
      }
      value_of(L, &c->value);
      c->value.type = LP_CATALOG_BLOB;
      return LUPINE_OK;
    }
    if (get(L, d, "number") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TNUMBER || c->op != O_EQUALS) {
        lp_errf(err, errsz, BAD "[%d].number: a number beside a text compared with equals "
                "expected)", i);
        return LUPINE_MISUSE;
      }
      value_of(L, &c->number);
    }
  }
  /* numbers: a version's number, or a metadata value's */
  numeric = c->kind == F_VERSION || (c->kind == F_METADATA && c->number.type == LP_CATALOG_NULL);
  t = get(L, d, "value");
  if (t != LUA_TSTRING && !(t == LUA_TNUMBER && numeric)) {
    lp_errf(err, errsz, BAD "[%d].value: %s expected, got %s)", i,
            numeric ? "string or number" : "string", lua_typename(L, t));
    return LUPINE_MISUSE;
  }
  value_of(L, &c->value);
  if (t == LUA_TNUMBER && IS_LIKE(c->op)) {
    lp_errf(err, errsz, BAD "[%d].op: '%s' compares text, and value is a number)", i,
            op_names[c->op]);
    return LUPINE_MISUSE;
  }
  if ((c->kind == F_RUN || c->number.type != LP_CATALOG_NULL) && c->op != O_EQUALS) {
    lp_errf(err, errsz, BAD "[%d].op: %s takes only equals)", i, c->field);
    return LUPINE_MISUSE;
  }
  if (IS_LIKE(c->op) && (c->pattern = pattern_of(c)) == NULL) {
    lp_errf(err, errsz, "out of memory");
    return LUPINE_NOMEM;
  }
  return LUPINE_OK;
}

/* The sort and paging of the description at d (limit and offset only
** where rows are asked for). */
static int read_order(lua_State *L, int d, build *b, int paged, lua_Integer *page,
                      char *err, size_t errsz) {
  const char *const names[2] = {"limit", "offset"};
  int t, k;
  b->sort = "created";
  if ((t = get(L, d, "sort")) != LUA_TNIL) {
    if (t != LUA_TSTRING) {
      lp_errf(err, errsz, BAD ".sort: string expected, got %s)", lua_typename(L, t));
      return LUPINE_MISUSE;
    }
    for (k = 0; k < 8 && b->ls->sorts[k].key != NULL; k++)
      if (strcmp(b->ls->sorts[k].key, lua_tostring(L, -1)) == 0) b->sort = b->ls->sorts[k].key;
    if (strcmp(b->sort, lua_tostring(L, -1)) != 0) {
      lp_errf(err, errsz, BAD ".sort: '%s' is not a sort key of %s)", lua_tostring(L, -1),
              b->ls->name);
      return LUPINE_MISUSE;
    }
  }
  if ((t = get(L, d, "desc")) != LUA_TNIL && t != LUA_TBOOLEAN) {
    lp_errf(err, errsz, BAD ".desc: boolean expected, got %s)", lua_typename(L, t));
    return LUPINE_MISUSE;
  }
  b->desc = lua_toboolean(L, -1);
  for (k = 0; paged && k < 2; k++) {
    t = get(L, d, names[k]);
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) < 1 - k) {
      lp_errf(err, errsz, BAD ".%s: integer from %d expected, got %lld)", names[k], 1 - k,
              (long long)lua_tointeger(L, -1));
      return LUPINE_MISUSE;
    }
    if (!lua_isinteger(L, -1)) {
      lp_errf(err, errsz, BAD ".%s: integer expected, got %s)", names[k],
              t == LUA_TNUMBER ? "a float" : lua_typename(L, t));
      return LUPINE_MISUSE;
    }
    page[k] = lua_tointeger(L, -1);
  }
  return LUPINE_OK;
}

/* The statement of a page (count 0) or of the count, into sql. */
static void assemble(build *b, int count, const lua_Integer page[2], sbuf *sql) {
  add(sql, "SELECT ");
  add(sql, count ? "count(*) AS n" : b->columns);
  add(sql, " FROM ");
  add(sql, b->from_base);
  add(sql, count ? b->count_join : b->from_join);
  if (b->where.len > 0) {
    add(sql, " WHERE ");
    add(sql, b->where.p);
  }
  if (count) return;
  add(sql, " ORDER BY ");
  add(sql, b->order);
  {
    lp_catalog_value limit, offset;
    limit.type = offset.type = LP_CATALOG_INT;
    limit.u.i = page[0];
    offset.u.i = page[1];
    add(sql, " LIMIT ");
    param(b, sql, &limit);
    add(sql, " OFFSET ");
    param(b, sql, &offset);
  }
}

/* The ORDER BY of the sort key, when the leading filter did not set it. */
static void sort_order(build *b) {
  const sort *s = b->ls->sorts;
  size_t n = 0;
  int k;
  if (b->order != NULL) return;
  while (strcmp(s->key, b->sort) != 0) s++;
  b->order_buf[0] = '\0';
  for (k = 0; k < 4 && s->columns[k] != NULL; k++)
    n += (size_t)snprintf(b->order_buf + n, sizeof b->order_buf - n, "%s%s%s",
                          k > 0 ? ", " : "", s->columns[k], dir_nulls(b, s->columns[k]));
  b->order = b->order_buf;
}

/* What lp_catalog_list may push: rows, a count, the plan of either. */
static const char *const pushes[] = {"rows", "count", "plan", "count_plan"};

/* A listing's work, and what it holds: lp_catalog_list frees it however
** the protected part (p_list) ends, by a Lua error too. */
typedef struct list_job {
  lp_catalog *c;
  const char *push;
  char *err;
  size_t errsz;
  int rc, n;   /* n: conditions in the description */
  build b;
  sbuf sql;
} list_job;

/* Stack: job, description. Pushes what the job asks for. */
static int p_list(lua_State *L) {
  list_job *j = lua_touserdata(L, 1);
  build *b = &j->b;
  lua_Integer page[2] = {0, 0};
  int i, what, count, plan, top = lua_gettop(L);
  for (what = 0; what < 4 && j->push != NULL && strcmp(pushes[what], j->push) != 0; what++) {}
  if (what == 4) {
    lp_errf(j->err, j->errsz, "bad argument #3 to 'list' (invalid option '%s')", j->push);
    j->rc = LUPINE_MISUSE;
    return 0;
  }
  if (j->push == NULL) what = 0;
  count = what == 1 || what == 3;
  plan = what >= 2;
  for (i = 1; i <= j->n && j->rc == LUPINE_OK; i++) {
    j->rc = read_cond(L, 2, i, b, &b->conds[b->nconds], j->err, j->errsz);
    if (j->rc == LUPINE_OK) b->nconds++;
    lua_settop(L, top);
  }
  if (j->rc == LUPINE_OK) j->rc = read_order(L, 2, b, !count, page, j->err, j->errsz);
  lua_settop(L, top);
  if (j->rc != LUPINE_OK) return 0;
  b->ls->make(b);
  sort_order(b);
  if (plan) add(&j->sql, b->d->explain);
  assemble(b, count, page, &j->sql);
  if (b->where.failed || j->sql.failed) {
    lp_errf(j->err, j->errsz, "out of memory");
    j->rc = LUPINE_NOMEM;
    return 0;
  }
  j->rc = lp_catalog_run_sql(L, j->c, j->sql.p, b->args, b->nargs,
                             plan ? LP_CATALOG_PUSH_PLAN
                                  : count ? LP_CATALOG_PUSH_COUNT : LP_CATALOG_PUSH_ROWS,
                             j->err, j->errsz);
  if (j->rc == LUPINE_OK && plan) lua_pushstring(L, j->sql.p + strlen(b->d->explain));
  return lua_gettop(L) - top;
}

int lp_catalog_list(lua_State *L, lp_catalog *c, const char *name, int d, const char *push,
                    char *err, size_t errsz) {
  list_job j;
  int i, top = lua_gettop(L), status;
  memset(&j, 0, sizeof j);
  j.c = c;
  j.push = push;
  j.err = err;
  j.errsz = errsz;
  if ((j.b.ls = find_listing(name, err, errsz)) == NULL) return LUPINE_MISUSE;
  if (!lua_istable(L, d)) {
    lp_errf(err, errsz, "bad argument #2 to 'list' (table expected, got %s)",
            luaL_typename(L, d));
    return LUPINE_MISUSE;
  }
  j.b.d = lp_catalog_dialect_of(c);
  j.b.from_join = j.b.count_join = "";
  j.n = (int)lua_rawlen(L, d);
  j.b.conds = calloc((size_t)j.n + 1, sizeof *j.b.conds);
  j.b.args = calloc((size_t)j.n * 3 + 2, sizeof *j.b.args);
  if (j.b.conds == NULL || j.b.args == NULL) {
    lp_errf(err, errsz, "out of memory");
    j.rc = LUPINE_NOMEM;
  } else {
    /* lua_pushcfunction and lua_pushlightuserdata allocate nothing */
    lua_pushcfunction(L, p_list);
    lua_pushlightuserdata(L, &j);
    lua_pushvalue(L, d);
    status = lua_pcall(L, 2, LUA_MULTRET, 0);
    if (status != LUA_OK && j.rc == LUPINE_OK) {
      lp_errf(err, errsz, "%s", status == LUA_ERRMEM ? "out of memory" : lua_tostring(L, -1));
      j.rc = status == LUA_ERRMEM ? LUPINE_NOMEM : LUPINE_ERROR;
    }
    if (j.rc != LUPINE_OK) lua_settop(L, top);
  }
  for (i = 0; i < j.n && j.b.conds != NULL; i++) free(j.b.conds[i].pattern);
  free(j.b.conds);
  free(j.b.args);
  free(j.b.where.p);
  free(j.sql.p);
  return j.rc;
}

int lp_catalog_sort_keys(lua_State *L, const char *name, char *err, size_t errsz) {
  const listing *ls = find_listing(name, err, errsz);
  int k;
  if (ls == NULL) return LUPINE_MISUSE;
  lua_newtable(L);
  for (k = 0; k < 8 && ls->sorts[k].key != NULL; k++) {
    lua_pushstring(L, ls->sorts[k].key);
    lua_rawseti(L, -2, k + 1);
  }
  return LUPINE_OK;
}

/* ---- the C API's records (api.c) ---- */

/* The columns of each record (lupine_int.h names them, in this order),
** up to its tags, which the dialect aggregates. */
#define REC_VERSION \
  "SELECT v.seq, v.id, a.name, v.version, v.type, v.data_type, v.content_hash, v.size," \
  " v.stored_size, v.created, v.artifact_store_id, v.save_type, v.producer_step_run_id, "
#define REC_RUN "SELECT r.seq, r.id, r.name, p.name, r.status, r.start_time, r.end_time, r.error, "
#define REC_STEP_RUN \
  "SELECT s.seq, s.id, s.run_id, s.name, s.step_name, s.status, s.start_time, s.end_time," \
  " s.error, s.traceback, s.output, s.attempts FROM step_runs s"

/* Append sql, then a placeholder for the value. */
static void add_text(build *b, sbuf *s, const char *sql, const char *value) {
  lp_catalog_value v;
  v.type = LP_CATALOG_TEXT;
  v.u.s.p = value;
  v.u.s.len = strlen(value);
  add(s, sql);
  param(b, s, &v);
}

static void add_number(build *b, sbuf *s, const char *sql, double value) {
  lp_catalog_value v;
  v.type = LP_CATALOG_REAL;
  v.u.d = value;
  add(s, sql);
  param(b, s, &v);
}

static void add_integer(build *b, sbuf *s, const char *sql, long long value) {
  lp_catalog_value v;
  v.type = LP_CATALOG_INT;
  v.u.i = value;
  add(s, sql);
  param(b, s, &v);
}

/* The tags of an entity of kind entity whose id is col. */
static void add_tags(build *b, sbuf *s, const char *entity, const char *col) {
  char tags[512];
  if (snprintf(tags, sizeof tags, b->d->tag_names, entity, col) >= (int)sizeof tags) s->failed = 1;
  else add(s, tags);
}

/* The conditions a listing of versions or runs shares: its tags and run
** metadata, on the rows whose id is col (entity: their kind). Led by the
** indexes on tags and metadata keys. */
static void add_filters(build *b, sbuf *s, const lp_records *q, const char *col,
                        const char *entity, const char *seq_col) {
  static const char *const ops[] = {"", " = ", " < ", " <= ", " > ", " >= "};
  int i;
  for (i = 0; i < q->ntags; i++) {
    add(s, " AND ");
    /* a version's tag links also hold its seq (migration 4): its index
    ** gives the versions with a tag in order */
    if (seq_col != NULL) {
      add(s, seq_col);
      add(s, " IN (SELECT l.version_seq FROM tag_links l WHERE l.entity = 'artifact_version'");
    } else {
      add(s, col);
      add(s, " IN (SELECT l.entity_id FROM tag_links l WHERE l.entity = '");
      add(s, entity);
      add(s, "'");
    }
    add_text(b, s, " AND l.tag_seq = (SELECT seq FROM tags WHERE name = ", q->tags[i]);
    add(s, "))");
  }
  for (i = 0; i < q->nmd; i++) {
    const lp_md_cond *m = &q->md[i];
    add(s, " AND ");
    add(s, col);
    add(s, " IN (SELECT m.entity_id FROM run_metadata m WHERE m.entity = '");
    add(s, entity);
    add_text(b, s, "' AND m.key = ", m->key);
    if (m->op == LP_MD_EQ && m->numeric) {
      add_text(b, s, " AND (m.value_text = ", m->text);
      add_number(b, s, " OR m.value_number = ", m->number);
      add(s, ")");
    } else if (m->op == LP_MD_EQ) {
      add_text(b, s, " AND m.value_text = ", m->text);
    } else if (m->op != LP_MD_ANY) {
      add(s, " AND m.value_number");
      add_number(b, s, ops[m->op], m->number);
    }
    add(s, ")");
  }
}

/* The statement of q into s. */
static void records_statement(build *b, sbuf *s, const lp_records *q) {
  switch (q->what) {
    case LP_LIST_VERSIONS:
      add(s, REC_VERSION);
      add_tags(b, s, "artifact_version", "v.id");
      add(s, ", NULL FROM artifact_versions v JOIN artifacts a ON a.id = v.artifact_id"
          " WHERE TRUE");
      if (q->id != NULL) add_text(b, s, " AND v.id = ", q->id);
      if (q->name != NULL) {
        add_text(b, s, " AND v.artifact_id = (SELECT id FROM artifacts WHERE name = ", q->name);
        add(s, ")");
      }
      add_filters(b, s, q, "v.id", "artifact_version", "v.seq");
      if (q->past > 0) add_integer(b, s, " AND v.seq < ", q->past);
      add(s, " ORDER BY v.seq DESC");
      break;
    case LP_LIST_RUNS:
      add(s, REC_RUN);
      add_tags(b, s, "pipeline_run", "r.id");
      add(s, " FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id WHERE TRUE");
      if (q->id != NULL) add_text(b, s, " AND r.id = ", q->id);
      if (q->name != NULL) {
        add_text(b, s, " AND r.pipeline_id = (SELECT id FROM pipelines WHERE name = ", q->name);
        add(s, ")");
      }
      if (q->status != NULL) add_text(b, s, " AND r.status = ", q->status);
      add_filters(b, s, q, "r.id", "pipeline_run", NULL);
      if (q->past > 0) add_integer(b, s, " AND r.seq < ", q->past);
      add(s, " ORDER BY r.seq DESC");
      break;
    case LP_LIST_STEP_RUNS:
      add(s, REC_STEP_RUN " WHERE TRUE");
      if (q->id != NULL) add_text(b, s, " AND s.id = ", q->id);
      if (q->run != NULL) add_text(b, s, " AND s.run_id = ", q->run);
      if (q->name != NULL) add_text(b, s, " AND s.name = ", q->name);
      if (q->past > 0) add_integer(b, s, " AND s.seq > ", q->past);
      add(s, " ORDER BY s.seq");
      break;
    case LP_LIST_CONSUMERS:
      add(s, REC_STEP_RUN " JOIN step_run_artifacts l ON l.step_run_id = s.id");
      add_text(b, s, " WHERE l.version_seq = (SELECT seq FROM artifact_versions WHERE id = ",
               q->id);
      add(s, ") AND l.kind = 'input'");
      if (q->past > 0) add_integer(b, s, " AND s.seq > ", q->past);
      add(s, " ORDER BY s.seq");
      break;
    case LP_LIST_LINKS:
      add(s, REC_VERSION);
      add_tags(b, s, "artifact_version", "v.id");
      add(s, ", l.name FROM step_run_artifacts l JOIN artifact_versions v"
          " ON v.seq = l.version_seq JOIN artifacts a ON a.id = v.artifact_id");
      add_text(b, s, " WHERE l.step_run_id = ", q->id);
      add_text(b, s, " AND l.kind = ", q->kind);
      add(s, " ORDER BY ");
      add(s, b->d->links_in_order);
      break;
    default:   /* LP_LIST_METADATA */
      add_text(b, s, "SELECT key, value, value_number, value_text FROM run_metadata"
               " WHERE entity = ", q->kind);
      add_text(b, s, " AND entity_id = ", q->id);
      add(s, " ORDER BY key");
  }
  if (q->limit > 0) add_integer(b, s, " LIMIT ", q->limit);
}

int lp_catalog_records(lp_catalog *c, const lp_records *q, lp_row_fn fn, void *ud, char *err,
                       size_t errsz) {
  /* a tag takes one value, a metadata condition up to three; the rest, five */
  lp_catalog_value args[4 * LP_FILTER_MAX + 8];
  sbuf sql = {NULL, 0, 0, 0};
  build b;
  int rc;
  if (q->ntags > LP_FILTER_MAX || q->nmd > LP_FILTER_MAX) {
    lp_errf(err, errsz, "at most %d tags and %d metadata conditions", LP_FILTER_MAX,
            LP_FILTER_MAX);
    return LUPINE_MISUSE;
  }
  memset(&b, 0, sizeof b);
  b.d = lp_catalog_dialect_of(c);
  b.args = args;
  records_statement(&b, &sql, q);
  if (sql.failed) {
    lp_errf(err, errsz, "out of memory");
    rc = LUPINE_NOMEM;
  } else {
    rc = lp_catalog_rows(c, sql.p, args, b.nargs, fn, ud, err, errsz);
  }
  free(sql.p);
  return rc;
}
