/* SPDX-License-Identifier: MIT */
/*
** visual.c: the visualizations of artifact versions. lua/lupine/viz.lua
** computes them when a value is saved (HTML, SVG, CSV, markdown or text
** bytes); here each is stored as an object, content-addressed like values,
** and listed in the catalog's visualizations table, in the transaction that
** records its version. Below that, the loops of computing them that viz.lua
** would run too slowly for millions of values (core.number_text, csv,
** describe, extremes, record_columns, is_sequence); then what showing them
** needs: Markdown as HTML (md4c: core.markdown), and a file of its own for
** a page (core.temp_file).
*/
#define _DEFAULT_SOURCE   /* mkstemps */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <md4c-html.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lauxlib.h"
#include "lupine_int.h"

/* The visualization types, the one list of them: lupine.viz makes these, and
** lupine.viz.fragment and the dashboard show each. */
static const char *const types[] = {"html", "svg", "csv", "markdown", "text", NULL};

static int known_type(const char *t) {
  int i;
  for (i = 0; t != NULL && types[i] != NULL; i++)
    if (strcmp(types[i], t) == 0) return 1;
  return 0;
}

int lp_record_visualizations(lua_State *L, lp_runtime *rt, int extra, const char *version_id) {
  int top = lua_gettop(L), k, rc = LUPINE_OK, changes;
  if (extra == 0) return LUPINE_OK;
  extra = lua_absindex(L, extra);
  if (lua_getfield(L, extra, "visualizations") != LUA_TTABLE) {
    lua_settop(L, top);
    return LUPINE_OK;
  }
  /* stack: ..., list; each item { type, bytes } */
  for (k = 1; rc == LUPINE_OK && lua_rawgeti(L, top + 1, k) != LUA_TNIL; k++) {
    lp_object obj;
    const char *type = NULL, *bytes = NULL;
    size_t len = 0;
    if (lua_istable(L, -1)) {
      if (lua_rawgeti(L, -1, 1) == LUA_TSTRING) type = lua_tostring(L, -1);
      if (lua_rawgeti(L, -2, 2) == LUA_TSTRING) bytes = lua_tolstring(L, -1, &len);
    }
    if (!known_type(type) || bytes == NULL || len > LP_VIZ_MAX) {
      lp_errf(rt->err, sizeof rt->err, "lupine: visualization %d of version %s: %s", k,
              version_id, !known_type(type) ? "unknown type"
              : bytes == NULL ? "no bytes" : "over the size limit");
      rc = LUPINE_MISUSE;
      break;
    }
    /* Put while the caller holds the write lock: gc cannot run in between. */
    /* in the store of the version: rt->store, where its object was put */
    if ((rc = lp_store_put(rt->store, bytes, len, &obj, rt->err, sizeof rt->err)) != LUPINE_OK)
      break;
    lua_pushstring(L, version_id);
    lua_pushinteger(L, k);
    lua_pushstring(L, type);
    lua_pushstring(L, obj.hash);
    lua_pushinteger(L, (lua_Integer)obj.size);
    rc = lp_catalog_write(L, rt->catalog, "add_visualization", lua_gettop(L) - 4, 5, &changes,
                          rt->err, sizeof rt->err);
    lua_settop(L, top + 1);
  }
  lua_settop(L, top);
  return rc;
}

/*
** core.read_object(hash, size [, store id]) -> bytes | nil, message
** The bytes of a stored object (a visualization's), checked against its
** hash; size is what the catalog recorded, and no larger frame is read.
** Without a store id it is read from the store of a version whose
** visualization it is (visualizations live with their version).
*/
static int core_read_object(lua_State *L) {
  lp_runtime *rt = lp_runtime_of(L);
  const char *hash = luaL_checkstring(L, 1);
  lua_Integer size = luaL_checkinteger(L, 2);
  unsigned char *data;
  size_t len;
  char err[LP_ERRSZ];
  lp_store *store = NULL;
  int top = lua_gettop(L), rc = LUPINE_NOTFOUND, i;
  luaL_argcheck(L, size >= 0, 2, "negative size");
  if (lp_runtime_ready(rt) != LUPINE_OK) return lp_raise(L, "%s", rt->err);
  lp_errf(err, sizeof err, "object %s is not recorded in any artifact store", hash);
  if (lua_isstring(L, 3)) lua_pushvalue(L, 3);
  else {
    lua_pushvalue(L, 1);
    if (lp_catalog_query(L, rt->catalog, "visualization_stores", top + 1, 1, rt->err,
                         sizeof rt->err) != LUPINE_OK)
      return lp_raise(L, "%s", rt->err);
    lua_replace(L, top + 1);
  }
  /* stack: ..., store id or rows { artifact_store_id } */
  for (i = 1; rc != LUPINE_OK; i++) {
    if (lua_isstring(L, top + 1)) {
      if (i > 1) break;
      lua_pushvalue(L, top + 1);
    } else if (lua_rawgeti(L, top + 1, i) != LUA_TTABLE) break;
    else lua_getfield(L, -1, "artifact_store_id");
    if ((rc = lp_runtime_store(rt, lua_tostring(L, -1), &store, err, sizeof err)) == LUPINE_OK)
      rc = lp_store_get(store, hash, (uint64_t)size, &data, &len, err, sizeof err);
    lua_settop(L, top + 1);
  }
  lua_settop(L, top);
  if (rc != LUPINE_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushlstring(L, (const char *)data, len);
  free(data);
  return 1;
}

/* ---- for lua/lupine/viz.lua: the loops of computing visualizations, which
** take a Lua loop several times as long (numbers, CSV, statistics,
** decimation, shape checks) ---- */

/* The text of the number at idx (see core.number_text) into buf. */
static void number_text(lua_State *L, int idx, char *buf, size_t size) {
  double x;
  if (lua_isinteger(L, idx)) {
    snprintf(buf, size, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
    return;
  }
  x = lua_tonumber(L, idx);
  if (x != x) {
    snprintf(buf, size, "NaN");
    return;
  }
  if (x == HUGE_VAL || x == -HUGE_VAL) {
    snprintf(buf, size, "%s", x > 0 ? "inf" : "-inf");
    return;
  }
  lp_float_text(x, buf, size);
  if (strpbrk(buf, ".e") == NULL) strncat(buf, ".0", size - strlen(buf) - 1);
}

/*
** core.number_text(x) -> string
** Integers as they are; floats as the shortest text that reads back as the
** same double ("0.95", "3.0", "1e+300"), "NaN", "inf", "-inf".
*/
static int core_number_text(lua_State *L) {
  char buf[64];
  luaL_checktype(L, 1, LUA_TNUMBER);   /* not a string that looks like one */
  number_text(L, 1, buf, sizeof buf);
  lua_pushstring(L, buf);
  return 1;
}

/* Add to b the CSV field (RFC 4180 quoting) of the value on top, below it
** its column's name, popping both: the stack is back where b left it. What
** is not a string, number or boolean is an error naming the column. */
static void add_field(lua_State *L, luaL_Buffer *b) {
  char num[64];
  size_t len;
  const char *s;
  switch (lua_type(L, -1)) {
    case LUA_TNUMBER:
      if (lua_isinteger(L, -1) || lua_tonumber(L, -1) == lua_tonumber(L, -1))
        number_text(L, -1, num, sizeof num);
      else num[0] = '\0';   /* NaN is an empty field, as pandas writes it */
      lua_pop(L, 2);
      luaL_addstring(b, num);
      return;
    case LUA_TBOOLEAN:
      s = lua_toboolean(L, -1) ? "true" : "false";
      lua_pop(L, 2);
      luaL_addstring(b, s);
      return;
    case LUA_TSTRING:
      break;
    default:
      luaL_error(L, "column '%s': a %s is not a scalar", lua_tostring(L, -2),
                 luaL_typename(L, -1));
  }
  s = lua_tolstring(L, -1, &len);
  if (len > 0 && (memchr(s, ',', len) || memchr(s, '"', len) || memchr(s, '\r', len) ||
                  memchr(s, '\n', len) || s[0] == ' ' || s[0] == '\t' ||
                  s[len - 1] == ' ' || s[len - 1] == '\t')) {
    luaL_Buffer q;
    size_t i;
    luaL_buffinit(L, &q);   /* above the string, which it keeps alive */
    luaL_addchar(&q, '"');
    for (i = 0; i < len; i++) {
      if (s[i] == '"') luaL_addchar(&q, '"');
      luaL_addchar(&q, s[i]);
    }
    luaL_addchar(&q, '"');
    luaL_pushresult(&q);
    lua_remove(L, -2);
  }
  lua_remove(L, -2);   /* the name */
  luaL_addvalue(b);    /* the one buffer call that takes a value pushed since */
}

/* Add to b the CSV line of row i of the array at rows (row 0: the header,
** the column names themselves): the fields named by the array at cols, in
** order, then "\n". Fields are read with metamethods (a data frame's rows
** are computed); nothing stays on the stack between buffer calls. */
static void add_line(lua_State *L, luaL_Buffer *b, int rows, lua_Integer i, int cols,
                     lua_Integer ncol) {
  lua_Integer k;
  for (k = 1; k <= ncol; k++) {
    if (k > 1) luaL_addchar(b, ',');
    if (lua_rawgeti(L, cols, k) != LUA_TSTRING) luaL_error(L, "column %I: not a name", k);
    if (i > 0) {
      lua_geti(L, rows, i);
      lua_pushvalue(L, -2);
      lua_gettable(L, -2);   /* row[name], the whole name (it may hold a NUL) */
      lua_remove(L, -2);
    } else lua_pushvalue(L, -1);
    add_field(L, b);
  }
  luaL_addchar(b, '\n');
}

/*
** core.csv(rows, columns, n, limit, cut) -> text, rows kept
** The CSV of rows 1..n of the array rows: a header line of the names in
** the array columns, then a line per row of its fields in that order:
** numbers as core.number_text writes them (NaN as an empty field),
** booleans as true and false, strings quoted where RFC 4180 needs it (a
** ',', '"', CR or LF, or a blank at either end); "\n" ends every line.
** Up to limit bytes it is whole; past it, only the header and the rows
** that fit in cut bytes are kept (the caller adds a note saying so).
*/
static int core_csv(lua_State *L) {
  lua_Integer ncol, n, limit, cut, i, kept = 0;
  size_t kept_len;
  luaL_Buffer b;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  n = luaL_checkinteger(L, 3);
  limit = luaL_checkinteger(L, 4);
  cut = luaL_checkinteger(L, 5);
  ncol = luaL_len(L, 2);
  lua_settop(L, 2);
  luaL_buffinit(L, &b);
  add_line(L, &b, 1, 0, 2, ncol);
  kept_len = luaL_bufflen(&b);
  for (i = 1; i <= n; i++) {
    add_line(L, &b, 1, i, 2, ncol);
    if ((lua_Integer)luaL_bufflen(&b) > limit) {
      luaL_buffsub(&b, luaL_bufflen(&b) - kept_len);
      break;
    }
    if ((lua_Integer)luaL_bufflen(&b) <= cut) {
      kept = i;
      kept_len = luaL_bufflen(&b);
    }
  }
  if (i > n) kept = n;   /* all of it, within limit */
  luaL_pushresult(&b);
  lua_pushinteger(L, kept);
  return 2;
}

/* Reorder v[0..n) so that v[k] is its k-th smallest (from 0), nothing
** larger before it, nothing smaller after: Hoare's selection, the median
** of three as pivot. A summary needs three quartiles, not a sorted copy. */
static void select_kth(double *v, lua_Integer n, lua_Integer k) {
  lua_Integer lo = 0, hi = n - 1;
  while (lo < hi) {
    double a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi], t;
    double pivot = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
    lua_Integer i = lo, j = hi;
    while (i <= j) {
      while (v[i] < pivot) i++;
      while (v[j] > pivot) j--;
      if (i <= j) t = v[i], v[i++] = v[j], v[j--] = t;
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;   /* between j and i: equal to the pivot, in place */
  }
}

/* The smallest of v[0..n), n > 0. */
static double smallest(const double *v, lua_Integer n) {
  double m = v[0];
  lua_Integer i;
  for (i = 1; i < n; i++)
    if (v[i] < m) m = v[i];
  return m;
}

/*
** core.describe(numbers) -> { count, mean, std, min, "25%", "50%", "75%",
** max }: pandas' describe() of an array of numbers, NaN left out: std is
** the sample standard deviation (n - 1), the quartiles interpolate
** linearly; all NaN but count when nothing is left (std too with one value).
*/
static int core_describe(lua_State *L) {
  static const char *const quartile[] = {"25%", "50%", "75%"};
  lua_Integer n, i, count = 0;
  double *v, sum = 0, mean, ss = 0, nan = NAN, min = nan, max = nan;
  int q;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = luaL_len(L, 1);
  luaL_argcheck(L, (lua_Unsigned)n <= SIZE_MAX / sizeof(double), 1, "too many numbers");
  v = lua_newuserdatauv(L, sizeof(double) * (size_t)(n > 0 ? n : 1), 0);   /* freed by the GC */
  for (i = 1; i <= n; i++) {
    double x;
    if (lua_rawgeti(L, 1, i) != LUA_TNUMBER) luaL_error(L, "item %I is not a number", i);
    x = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (x != x) continue;
    if (count == 0 || x < min) min = x;
    if (count == 0 || x > max) max = x;
    v[count++] = x;
  }
  for (i = 0; i < count; i++) sum += v[i];
  mean = count > 0 ? sum / (double)count : nan;
  for (i = 0; i < count; i++) ss += (v[i] - mean) * (v[i] - mean);
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, count);
  lua_setfield(L, -2, "count");
  lua_pushnumber(L, mean);
  lua_setfield(L, -2, "mean");
  lua_pushnumber(L, count > 1 ? sqrt(ss / (double)(count - 1)) : nan);
  lua_setfield(L, -2, "std");
  lua_pushnumber(L, min);
  lua_setfield(L, -2, "min");
  lua_pushnumber(L, max);
  lua_setfield(L, -2, "max");
  for (q = 0; q < 3; q++) {   /* each selection leaves the ones after it larger */
    double pos = (double)(count - 1) * 0.25 * (q + 1), frac, x = nan;
    lua_Integer lo = (lua_Integer)floor(pos);
    frac = pos - (double)lo;
    if (count > 0) {
      select_kth(v, count, lo);
      x = frac == 0 ? v[lo] : v[lo] + (smallest(v + lo + 1, count - lo - 1) - v[lo]) * frac;
    }
    lua_pushnumber(L, x);
    lua_setfield(L, -2, quartile[q]);
  }
  return 1;
}

/*
** core.extremes(ys, buckets) -> { i1, i2, ... }
** For a line chart of many points: ys (an array of numbers) split into
** buckets runs of about equal length, and for each run, in order, the
** index of its lowest and of its highest number that is not NaN or an
** infinity (the lower index first; one index if they are the same; none
** for a run without such a number). Raises if an item is not a number.
*/
static int core_extremes(lua_State *L) {
  lua_Integer n, buckets, b, i, out = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  buckets = luaL_checkinteger(L, 2);
  luaL_argcheck(L, buckets > 0, 2, "not a positive number of buckets");
  n = luaL_len(L, 1);
  if (buckets > n) buckets = n;   /* the same points: a bucket of one item, or none */
  lua_newtable(L);
  for (b = 0; b < buckets; b++) {
    lua_Integer lo = 0, hi = 0, first = b * n / buckets + 1, last = (b + 1) * n / buckets;
    double vlo = HUGE_VAL, vhi = -HUGE_VAL;
    for (i = first; i <= last; i++) {
      double v;
      if (lua_rawgeti(L, 1, i) != LUA_TNUMBER) luaL_error(L, "item %I is not a number", i);
      v = lua_tonumber(L, -1);
      lua_pop(L, 1);
      if (v < vlo && v > -HUGE_VAL) lo = i, vlo = v;
      if (v > vhi && v < HUGE_VAL) hi = i, vhi = v;
    }
    if (lo > 0 && hi > 0) {
      lua_pushinteger(L, lo < hi ? lo : hi);
      lua_rawseti(L, -2, ++out);
      if (lo != hi) {
        lua_pushinteger(L, lo < hi ? hi : lo);
        lua_rawseti(L, -2, ++out);
      }
    }
  }
  return 1;
}

static int is_scalar(int type) {
  return type == LUA_TSTRING || type == LUA_TNUMBER || type == LUA_TBOOLEAN;
}

/*
** core.record_columns(rows, n) -> { names } | nil
** The column names (in no order) of rows 1..n of an array of records: each
** row a table with the same string keys as the first, at least one, and
** scalar values (strings, numbers, booleans); nil if they are not.
*/
static int core_record_columns(lua_State *L) {
  lua_Integer n, i, ncol = 0, m;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = luaL_checkinteger(L, 2);
  lua_settop(L, 2);
  if (n < 1 || lua_rawgeti(L, 1, 1) != LUA_TTABLE) return 0;   /* 3: the first row */
  lua_newtable(L);                                               /* 4: the names */
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    if (lua_type(L, -2) != LUA_TSTRING || !is_scalar(lua_type(L, -1))) return 0;
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, 4, ++ncol);
  }
  if (ncol == 0) return 0;
  for (i = 2; i <= n; i++) {
    if (lua_rawgeti(L, 1, i) != LUA_TTABLE) return 0;           /* 5: row i */
    m = 0;
    lua_pushnil(L);
    while (lua_next(L, 5)) {
      if (!is_scalar(lua_type(L, -1))) return 0;
      lua_pushvalue(L, -2);
      if (lua_type(L, -1) != LUA_TSTRING || lua_rawget(L, 3) == LUA_TNIL) return 0;
      lua_pop(L, 2);
      m++;
    }
    if (m != ncol) return 0;
    lua_pop(L, 1);
  }
  lua_settop(L, 4);
  return 1;
}

/*
** core.is_sequence(t) -> boolean, count
** Whether the table t has no keys but 1..#t, and how many keys it has
** (counted without a Lua loop: the values to draw can be millions).
*/
static int core_is_sequence(lua_State *L) {
  lua_Integer n = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    n++;
  }
  lua_pushboolean(L, n == luaL_len(L, 1));
  lua_pushinteger(L, n);
  return 2;
}

/* ---- showing visualizations ---- */

/* The HTML md4c writes, grown as it comes. It lives in a userdata whose
** __gc frees it, made before md4c runs: no Lua call may run inside
** md_html (an error raised there would leak md4c's own allocations), and
** one raised after it must not leak this. */
typedef struct {
  char *p;
  size_t len, cap;
  int failed;
} Html;

static const char html_mt = 0;   /* registry key of its metatable */

static int html_gc(lua_State *L) {
  Html *h = lua_touserdata(L, 1);
  free(h->p);
  h->p = NULL;
  return 0;
}

static void html_out(const MD_CHAR *s, MD_SIZE n, void *ud) {
  Html *h = ud;
  if (h->failed) return;
  if (n > h->cap - h->len) {
    size_t cap = h->cap ? h->cap : 4096;
    char *p;
    while (cap - h->len < n) cap *= 2;
    if ((p = realloc(h->p, cap)) == NULL) {
      h->failed = 1;
      return;
    }
    h->p = p;
    h->cap = cap;
  }
  memcpy(h->p + h->len, s, n);
  h->len += n;
}

/* Is s (n bytes) the lower-case word w, ASCII letters compared alike? */
static int word_is(const char *s, size_t n, const char *w) {
  size_t i;
  if (strlen(w) != n) return 0;
  for (i = 0; i < n; i++) {
    char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
    if (c != w[i]) return 0;
  }
  return 1;
}

/* May a link (an image if image) go to the URL u, n bytes as md4c wrote
** it (percent- and entity-escaped)? Without a scheme (a place on the same
** site) and with http or https, yes; a link to mailto too, an image from
** data:image/ too; nothing else (javascript:, data:text/html, file:, ...). */
static int safe_url(const char *u, size_t n, int image) {
  size_t i;
  for (i = 0; i < n && u[i] != ':'; i++)
    if (u[i] == '/' || u[i] == '?' || u[i] == '#') return 1;
  if (i == n) return 1;
  if (word_is(u, i, "http") || word_is(u, i, "https")) return 1;
  if (!image) return word_is(u, i, "mailto");
  return word_is(u, i, "data") && n > 11 && word_is(u, 11, "data:image/");
}

/* Add to b the HTML s (n bytes) with each link's and image's URL checked:
** a link to a URL safe_url refuses loses its href (its text stays), an
** image its src (its alt text stays); links get rel="noopener noreferrer".
** Only md4c's own tags hold a '<': text and raw HTML are escaped. */
static void add_checked(luaL_Buffer *b, const char *s, size_t n) {
  static const char a[] = "<a href=\"", img[] = "<img src=\"";
  size_t i = 0;
  while (i < n) {
    const char *lt = memchr(s + i, '<', n - i), *q;
    size_t at = lt ? (size_t)(lt - s) : n, url;
    int image;
    luaL_addlstring(b, s + i, at - i);
    if (lt == NULL) break;
    if (n - at > sizeof a - 1 && memcmp(lt, a, sizeof a - 1) == 0) image = 0, url = at + sizeof a - 1;
    else if (n - at > sizeof img - 1 && memcmp(lt, img, sizeof img - 1) == 0)
      image = 1, url = at + sizeof img - 1;
    else {
      luaL_addchar(b, '<');
      i = at + 1;
      continue;
    }
    if ((q = memchr(s + url, '"', n - url)) == NULL) break;   /* md4c closes its quotes */
    if (safe_url(s + url, (size_t)(q - s) - url, image)) {
      luaL_addlstring(b, lt, (size_t)(q - lt) + 1);
      if (!image) luaL_addstring(b, " rel=\"noopener noreferrer\"");
    } else luaL_addstring(b, image ? "<img" : "<a");
    i = (size_t)(q - s) + 1;
  }
}

/*
** core.markdown(text) -> html
** Markdown (CommonMark with GitHub's tables, strikethrough, task lists and
** autolinks) as HTML, by md4c. Raw HTML in it is written as text
** (MD_FLAG_NOHTML), and links and images keep only the URLs safe_url
** allows. The caller makes text valid UTF-8.
*/
static int core_markdown(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  Html *h;
  luaL_Buffer b;
  int rc;
  luaL_argcheck(L, len <= (MD_SIZE)-1, 1, "text too long");
  lua_settop(L, 1);
  h = lua_newuserdatauv(L, sizeof *h, 0);
  memset(h, 0, sizeof *h);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &html_mt) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, html_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &html_mt);
  }
  lua_setmetatable(L, 2);
  rc = md_html(text, (MD_SIZE)len, html_out, h, MD_DIALECT_GITHUB | MD_FLAG_NOHTML,
               MD_HTML_FLAG_SKIP_UTF8_BOM);
  if (rc != 0 || h->failed) return luaL_error(L, "markdown: %s", h->failed ? "out of memory" : "cannot render it");
  luaL_buffinit(L, &b);
  add_checked(&b, h->p ? h->p : "", h->len);
  luaL_pushresult(&b);
  return 1;
}

/*
** core.temp_file(name, suffix) -> path | nil, message
** A new empty file of its own (mode 0600, made with mkstemps: no one else's
** file or link is written through) in $TMPDIR, default /tmp, named
** lupine-NAME-XXXXXX followed by suffix: a page written for the user to
** open. NAME is name with only ASCII letters, digits, '.', '-' and '_'
** kept (others become '_'), at most 40 of them.
*/
static int core_temp_file(lua_State *L) {
  const char *name = luaL_checkstring(L, 1), *suffix = luaL_checkstring(L, 2);
  const char *dir = getenv("TMPDIR");
  char path[PATH_MAX], safe[41];
  size_t i;
  int fd, n;
  for (i = 0; name[i] != '\0' && i < sizeof safe - 1; i++) {
    char c = name[i];
    int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '-' || c == '_';
    safe[i] = keep ? c : '_';
  }
  safe[i] = '\0';
  if (dir == NULL || dir[0] == '\0') dir = "/tmp";
  n = snprintf(path, sizeof path, "%s/lupine-%s-XXXXXX%s", dir, safe, suffix);
  luaL_argcheck(L, n > 0 && (size_t)n < sizeof path && strlen(suffix) < 64, 2, "path too long");
  if ((fd = mkstemps(path, (int)strlen(suffix))) < 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "cannot make a file in '%s' (%s)", dir, strerror(errno));
    return 2;
  }
  close(fd);
  lua_pushstring(L, path);
  return 1;
}

/* The core functions of this file, which luaopen_lupine_core adds. */
const luaL_Reg lp_visual_core[] = {
  {"read_object", core_read_object},
  {"number_text", core_number_text},
  {"csv", core_csv},
  {"describe", core_describe},
  {"extremes", core_extremes},
  {"record_columns", core_record_columns},
  {"is_sequence", core_is_sequence},
  {"markdown", core_markdown},
  {"temp_file", core_temp_file},
  {NULL, NULL}
};
