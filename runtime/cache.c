/* SPDX-License-Identifier: MIT */
/*
** cache.c: what a step's cache key is made of, and the fingerprint of its
** code.
**
** A step's code is its function's bytecode, stripped of debug information
** (so moving lines or editing comments changes nothing), together with
** what the function reaches through its upvalues: other Lua functions
** (recursively), functions held in tables it closes over (a helper module
** `local M = {}`, one level deep), and plain values (numbers, strings,
** booleans) it captures. _ENV, the globals, is not followed: a step that
** calls a global function is not invalidated when that function changes
** (documented; the user's cache_key covers such cases).
*/
#include <stdio.h>
#include <string.h>
#include "lauxlib.h"
#include "lupine_int.h"

/* The pieces of a fingerprint, collected in a Lua table (so an error
** leaks nothing) and hashed together at the end. */
typedef struct pieces {
  int table, n;
} pieces;

static void add(lua_State *L, pieces *p, const char *s, size_t len) {
  lua_pushlstring(L, s, len);
  lua_rawseti(L, p->table, ++p->n);
}

/* lua_dump writer. */
static int dump_writer(lua_State *L, const void *s, size_t n, void *ud) {
  add(L, ud, s, n);
  return 0;
}

static void add_function(lua_State *L, pieces *p, int fn, int seen, int depth);

/*
** Lua 5.4 writes where a function starts and ends (linedefined and
** lastlinedefined) even into stripped bytecode, so a comment added above a
** step would change its fingerprint. normalize() walks the dump (the
** format of ldump.c) and zeroes them. Returns the length of the walked
** function, or 0 if the bytes are not what it expects (then the caller
** keeps the dump as it is: still correct, only less forgiving).
*/
typedef struct dump {
  unsigned char *p;
  size_t len, at;
} dump;

static int varint(dump *d, size_t *out) {
  size_t x = 0;
  for (;;) {
    unsigned char b;
    if (d->at >= d->len || x > ((size_t)-1 >> 8)) return 0;
    b = d->p[d->at++];
    x = (x << 7) | (b & 0x7f);
    if (b & 0x80) break;
  }
  *out = x;
  return 1;
}

static int skip(dump *d, size_t n) {
  if (n > d->len - d->at) return 0;
  d->at += n;
  return 1;
}

/* Replace the varint at the cursor with 0 (one byte, 0x80), in place. */
static int zero_varint(dump *d) {
  size_t start = d->at, v;
  if (!varint(d, &v)) return 0;
  memmove(d->p + start + 1, d->p + d->at, d->len - d->at);
  d->len -= d->at - start - 1;
  d->p[start] = 0x80;
  d->at = start + 1;
  return 1;
}

static int walk_function(dump *d, int depth) {
  size_t n, i, size;
  if (depth > 200) return 0;
  if (!varint(d, &size) || (size > 0 && !skip(d, size - 1))) return 0;   /* source */
  if (!zero_varint(d) || !zero_varint(d)) return 0;   /* linedefined, lastlinedefined */
  if (!skip(d, 3)) return 0;                          /* numparams, is_vararg, maxstack */
  if (!varint(d, &n) || n > d->len || !skip(d, n * 4)) return 0;   /* code */
  if (!varint(d, &n)) return 0;                       /* constants */
  for (i = 0; i < n; i++) {
    if (d->at >= d->len) return 0;
    switch (d->p[d->at++]) {
      case 0x00: case 0x01: case 0x11: break;                 /* nil, false, true */
      case 0x03: case 0x13: if (!skip(d, 8)) return 0; break;  /* integer, float */
      case 0x04: case 0x14:                                    /* strings */
        if (!varint(d, &size) || (size > 0 && !skip(d, size - 1))) return 0;
        break;
      default: return 0;
    }
  }
  if (!varint(d, &n) || n > d->len || !skip(d, n * 3)) return 0;   /* upvalues */
  if (!varint(d, &n)) return 0;                                  /* nested functions */
  for (i = 0; i < n; i++)
    if (!walk_function(d, depth + 1)) return 0;
  for (i = 0; i < 4; i++)   /* debug information: all empty when stripped */
    if (!varint(d, &n) || n != 0) return 0;
  return 1;
}

/* Header: signature, versions, sizes and check values; then one byte. */
#define DUMP_HEADER 31

static size_t normalize(unsigned char *p, size_t len) {
  dump d;
  d.p = p;
  d.len = len;
  d.at = DUMP_HEADER + 1;
  if (len <= d.at || !walk_function(&d, 0) || d.at != d.len) return 0;
  return d.len;
}

/* A plain value: its type, then how it prints (numbers print exactly
** enough to tell them apart: %.14g is not, so floats use %a). */
static void add_value(lua_State *L, pieces *p, int idx) {
  char num[64];
  lua_pushfstring(L, "%d:", lua_type(L, idx));
  lua_rawseti(L, p->table, ++p->n);
  if (lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx)) {
    snprintf(num, sizeof num, "%a", (double)lua_tonumber(L, idx));
    add(L, p, num, strlen(num));
  } else {
    lua_pushvalue(L, idx);
    lua_tostring(L, -1);   /* integers and booleans... */
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
    }
    lua_rawseti(L, p->table, ++p->n);
  }
}

/* Functions stored in table t (one level), in key order, by key. */
static void add_table_functions(lua_State *L, pieces *p, int t, int seen, int depth) {
  int keys, n = 0, i, j;
  lua_newtable(L);
  keys = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TFUNCTION) {
      lua_pushvalue(L, -2);
      lua_rawseti(L, keys, ++n);
    }
    lua_pop(L, 1);
  }
  /* insertion sort of the keys: table order is not stable between runs */
  for (i = 2; i <= n; i++)
    for (j = i; j > 1; j--) {
      int less;
      lua_rawgeti(L, keys, j);
      lua_rawgeti(L, keys, j - 1);
      less = strcmp(lua_tostring(L, -2), lua_tostring(L, -1)) < 0;
      if (!less) {
        lua_pop(L, 2);
        break;
      }
      lua_rawseti(L, keys, j);
      lua_rawseti(L, keys, j - 1);
    }
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, keys, i);
    lua_rawseti(L, p->table, ++p->n);
    lua_rawgeti(L, keys, i);
    lua_rawget(L, t);
    add_function(L, p, lua_gettop(L), seen, depth + 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void add_function(lua_State *L, pieces *p, int fn, int seen, int depth) {
  int i;
  const char *name;
  if (depth > 16) return;
  lua_pushvalue(L, fn);
  if (lua_rawget(L, seen) != LUA_TNIL) {   /* a cycle, or shared: named, not repeated */
    lua_pop(L, 1);
    add(L, p, "<seen>", 6);
    return;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, fn);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  if (lua_iscfunction(L, fn)) {
    add(L, p, "<C function>", 12);
    return;
  }
  {
    pieces code;
    size_t len;
    luaL_Buffer b;
    int k;
    lua_newtable(L);
    code.table = lua_gettop(L);
    code.n = 0;
    lua_pushvalue(L, fn);
    lua_dump(L, dump_writer, &code, 1);
    lua_pop(L, 1);
    luaL_buffinit(L, &b);
    for (k = 1; k <= code.n; k++) {
      lua_rawgeti(L, code.table, k);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    len = lua_rawlen(L, -1);
    {
      /* a private copy to rewrite: Lua strings are immutable */
      unsigned char *copy = lua_newuserdatauv(L, len > 0 ? len : 1, 0);
      size_t normal;
      memcpy(copy, lua_tostring(L, -2), len);
      normal = normalize(copy, len);
      if (normal > 0) add(L, p, (const char *)copy, normal);
      else add(L, p, lua_tostring(L, -2), len);
    }
    lua_pop(L, 3);
  }
  for (i = 1; (name = lua_getupvalue(L, fn, i)) != NULL; i++) {
    int up = lua_gettop(L);
    if (strcmp(name, "_ENV") != 0) {
      switch (lua_type(L, up)) {
        case LUA_TFUNCTION: add_function(L, p, up, seen, depth + 1); break;
        case LUA_TTABLE: add_table_functions(L, p, up, seen, depth); break;
        case LUA_TNUMBER: case LUA_TSTRING: case LUA_TBOOLEAN: add_value(L, p, up); break;
        default: add(L, p, "-", 1);
      }
    }
    lua_settop(L, up - 1);
  }
}

int lp_code_hash(lua_State *L, int fn, char out[LP_HASH_STRLEN + 1]) {
  luaL_Buffer b;
  pieces p;
  int seen, i;
  fn = lua_absindex(L, fn);
  lua_newtable(L);
  seen = lua_gettop(L);
  lua_newtable(L);
  p.table = lua_gettop(L);
  p.n = 0;
  add_function(L, &p, fn, seen, 0);
  luaL_buffinit(L, &b);
  for (i = 1; i <= p.n; i++) {
    lua_rawgeti(L, p.table, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lp_hash_bytes(lua_tostring(L, -1), lua_rawlen(L, -1), out);
  lua_pop(L, 3);
  return out[0] != '\0' ? LUPINE_OK : LUPINE_NOMEM;
}
