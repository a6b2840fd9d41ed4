/* SPDX-License-Identifier: MIT */
/*
** codec.c: Lua values <-> deterministic CBOR (RFC 8949).
**
** Mapping. nil is null, booleans are false/true, integers are major
** types 0/1, floats are CBOR floats in their shortest exact width (so
** 1.0 stays a float and reads back as one), strings are text strings when
** they are strict UTF-8 and byte strings otherwise; both decode to Lua
** strings. A table whose keys are exactly 1..n is an array (the empty
** table is the empty array); any other table is a map. Lengths are
** always definite and every head is in its shortest form.
**
** Map order (RFC 8949 section 4.2.1). Entries are sorted by the bytes of
** their key's sort key. The sort key of a value is its encoding on its
** own, except that a table reached more than once within it (other than
** the value itself) is written as 0xf7 (undefined, which the encoder never
** writes otherwise) wherever it is reached: a function of the value alone,
** cut short at cycles, computed in linear time. Distinct scalar keys
** encode differently; two keys of one map whose sort keys are equal (only
** tables can be) are refused, naming the map: a CBOR reader would keep
** one of them (cbor2 does), and no order between them would be a function
** of the value. So the order of every map, and with it the whole
** encoding, is a function of the value alone: the same value gives the
** same bytes in any process, whatever its addresses and hash seeds. The
** rule is strict in one corner: keys that differ only inside tables
** reached twice within each (as {s1, s1} and {s2, s2}) are refused too;
** ordering those in general is graph canonization.
**
** Sharing. A table reached more than once in a value (shared or cyclic)
** is written once, behind tag 28 (shareable), and later as tag 29
** (sharedref) with the number of tag-28 items before it: the "value
** sharing" extension cbor2 implements. Tables reached once carry no tag,
** so unshared data is plain CBOR. Indices follow emission order, which the
** map order fixes.
**
** Encoding runs in two passes. Pass 1 assumes nothing is shared: it
** writes map entries in traversal order, then sorts them in place as byte
** strings (with nothing shared, a key's bytes are its sort key). When it
** reaches a table a second time it gives up, and pass 2 counts references
** first, then sorts each map from sort keys before emitting it, since
** tag numbering depends on emission order.
**
** Paths in error messages: .name and ["other key"] for string keys,
** [3], [1.5], [true] and [<table key>] for other keys, and <key> for the
** key itself rather than its value: "value.t<key> is a function" is a
** function used as a key of value.t.
**
** Values of user-defined types (materializers, lua/lupine/materials.lua)
** reach the encoder as tagged tables and are written as tag 27 around
** [type name, plain value], which any CBOR reader can still read.
**
** Decoding accepts any well-formed CBOR of the forms above in any head
** width, tag 28 around arrays and maps (registered before their items are
** read, which is how cycles come back), tag 29, and tag 27 (given to the
** restore hook, which may raise: it runs in a protected call). null and undefined
** read as nil: inside an array they leave a hole, as a map value they
** leave the key out, as a map key they are an error. Everything else
** (other tags, indefinite lengths, other simple values, integers outside
** int64, duplicate keys, invalid UTF-8 in text) is refused with its byte
** offset. Claimed counts are checked against the bytes left before any
** table is created, and preallocation over the whole input is bounded by
** its length.
**
** All memory held while encoding or decoding is Lua's (blocks owned by
** userdata with __gc, tables and userdata in stack slots), so a memory
** error unwinding through here leaks nothing.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lupine_int.h"

#define RESTART (-1)   /* pass 1 met a shared table or equal keys: start again in pass 2 */

/* Registry keys: the metatable of tagged values, and the restore hook. */
static const char tagged_mt = 0;
static const char restore_hook = 0;

/* The CBOR tag of a value of a user-defined type: [type name, plain value]
** ("serialised language-independent object", RFC 8949 section 9.2). */
#define TAG_TYPED 27

/* ---- growable buffers ---- */

/*
** A buffer's bytes come from the Lua allocator and belong to a box
** userdata in stack slot `slot`, whose __gc frees them if an error unwinds
** through the codec. One box holds the blocks of several buffers (this
** one's is `block`): a userdata with a finalizer costs more than the rest
** of encoding a small value. Growing by reallocation, rather than by
** copying into a bigger userdata, lets the allocator move big blocks
** without copying.
*/
typedef struct Buf {
  unsigned char *p;
  size_t n, cap;
  int slot, block;
} Buf;

#define BOX_BLOCKS 3

typedef struct Box {
  void *p[BOX_BLOCKS];
  size_t cap[BOX_BLOCKS];
} Box;

static const char boxmt = 0;   /* registry key of the boxes' metatable */

static void resize(lua_State *L, Buf *b, size_t cap) {
  Box *x = lua_touserdata(L, b->slot);
  void *ud, *p;
  lua_Alloc f = lua_getallocf(L, &ud);
  p = f(ud, x->p[b->block], x->cap[b->block], cap);
  if (p == NULL && cap > 0) {   /* as lauxlib's buffers do */
    lua_pushliteral(L, "not enough memory");
    lua_error(L);
  }
  x->p[b->block] = b->p = p;
  x->cap[b->block] = b->cap = cap;
}

static int boxgc(lua_State *L) {
  Buf b = {NULL, 0, 0, 1, 0};
  for (; b.block < BOX_BLOCKS; b.block++) resize(L, &b, 0);
  return 0;
}

/* Push a box holding the n (at most BOX_BLOCKS) buffers b[i]. */
static void boxinit(lua_State *L, Buf *const *b, int n) {
  Box *x = lua_newuserdatauv(L, sizeof *x, 0);
  int i;
  memset(x, 0, sizeof *x);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &boxmt) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, boxgc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &boxmt);
  }
  lua_setmetatable(L, -2);
  for (i = 0; i < n; i++) {
    b[i]->n = 0;
    b[i]->slot = lua_gettop(L);
    b[i]->block = i;
    resize(L, b[i], 256);   /* never NULL, even for memcpy of 0 bytes */
  }
}

/* Room for need more bytes at the end of b (may need 1 free stack slot). */
static inline unsigned char *room(lua_State *L, Buf *b, size_t need) {
  if (b->cap - b->n < need) resize(L, b, b->cap * 2 + need);
  return b->p + b->n;
}

/* ---- strict UTF-8 (RFC 3629: no overlongs, surrogates, or > U+10FFFF) ---- */

static int utf8ok(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i], lo = 0x80, hi = 0xbf;
    size_t k, j;
    if (c < 0x80) {  /* skip ASCII a word at a time */
      uint64_t w;
      for (i++; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080u) break;
      }
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) k = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      k = 2;
      if (c == 0xe0) lo = 0xa0;        /* overlong */
      else if (c == 0xed) hi = 0x9f;   /* surrogates */
    }
    else if (c >= 0xf0 && c <= 0xf4) {
      k = 3;
      if (c == 0xf0) lo = 0x90;        /* overlong */
      else if (c == 0xf4) hi = 0x8f;   /* above U+10FFFF */
    }
    else return 0;
    if (n - i - 1 < k || s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (j = 2; j <= k; j++)
      if ((s[i + j] & 0xc0) != 0x80) return 0;
    i += k + 1;
  }
  return 1;
}

/* ---- encoder ---- */

enum { FIDX, FKEY, FVAL };

/* One step of the path from the root: array index i, or the key (FKEY)
** or value (FVAL) of a map entry whose key is at stack slot key. */
typedef struct Frame {
  int kind, key;
  lua_Integer i;
} Frame;

/* A map entry being sorted: its bytes start off bytes after the map's. */
typedef struct Ent {
  const unsigned char *p;
  size_t off, len;
  lua_Integer id;   /* pass 1: its place in traversal order; pass 2: in the anchor */
} Ent;

/*
** The keys of the last map written at a depth, when they were all strings
** (at most SHAPE_KEYS, each encoding in at most SHAPE_KEYLEN bytes): their
** encodings in traversal order and the order they sort in. Records in a
** list have the same keys, and Lua traverses them in the same order, so
** most maps are written from their shape: their keys compared, not
** encoded (no UTF-8 check), and not sorted. Keys are compared by their
** bytes: an address could be a new string's, once the old one is gone.
*/
#define SHAPE_KEYS 16
#define SHAPE_KEYLEN 24
#define SHAPE_DEPTHS 4

typedef struct Shape {
  int n;   /* 0: none */
  unsigned char len[SHAPE_KEYS], head[SHAPE_KEYS], order[SHAPE_KEYS];
  unsigned char bytes[SHAPE_KEYS][SHAPE_KEYLEN];
} Shape;

/* State of one lp_codec_encode call. */
typedef struct Enc {
  lua_State *L;
  Buf out, ents, tmp;   /* output; stack of Ent being sorted; scratch */
  int anchors;          /* slot: pass-2 anchor tables by depth, reused */
  Shape shape[SHAPE_DEPTHS];
  int np;               /* path length */
  Frame fr[LP_CODEC_MAX_DEPTH];
  const char *root;
  char *err;
  size_t errsz;
} Enc;

enum { PASS1, PASS2, SORT };

/* How tables are written: in pass 1 or 2 of the value, or as a sort key. */
typedef struct Ctx {
  Enc *e;
  int mode;
  Buf seen;   /* pass 1: hash set of the tables met (n counts them) */
  int refs;   /* slot: table -> times reached; in pass 2, -(index+1) once emitted */
  lua_Integer nshare;
  int np0;    /* sort key: path length at its root */
} Ctx;

static int emit(Ctx *c, int idx);
static int sortkey(Enc *e, int idx);

static inline void putbyte(Enc *e, unsigned char b) {
  *room(e->L, &e->out, 1) = b;
  e->out.n++;
}

static inline void put(Enc *e, const void *s, size_t n) {
  memcpy(room(e->L, &e->out, n), s, n);
  e->out.n += n;
}

static void putbe(unsigned char *p, uint64_t v, int n) {
  while (n-- > 0) {
    p[n] = (unsigned char)v;
    v >>= 8;
  }
}

/* A head in its shortest form. */
/* An item's head (major type, then v) into p (9 bytes): its length. */
static size_t head_bytes(unsigned char *p, int major, uint64_t v) {
  static const unsigned char info[9] = {0, 24, 25, 0, 26, 0, 0, 0, 27};
  int k = v < 24 ? 0 : v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
  p[0] = (unsigned char)(major << 5 | (k == 0 ? (int)v : info[k]));
  putbe(p + 1, v, k);
  return 1 + (size_t)k;
}

static inline void puthead(Enc *e, int major, uint64_t v) {
  e->out.n += head_bytes(room(e->L, &e->out, 9), major, v);
}

/*
** The bits of the double u as a narrower IEEE float with mant mantissa
** bits and ebits exponent bits, if that loses nothing (NaN excluded).
*/
static int narrow(uint64_t u, int mant, int ebits, uint32_t *out) {
  int bias = (1 << (ebits - 1)) - 1, e = (int)(u >> 52 & 0x7ff), x, shift;
  uint64_t m = u & ((UINT64_C(1) << 52) - 1), full;
  uint32_t sign = (uint32_t)(u >> 63) << (mant + ebits);
  if (e == 0x7ff) { *out = sign | (uint32_t)(2 * bias + 1) << mant; return 1; }
  if (e == 0) { *out = sign; return m == 0; }   /* double subnormals are too small */
  x = e - 1023 + bias;
  if (x > 2 * bias) return 0;
  if (x > 0) {
    if (m & ((UINT64_C(1) << (52 - mant)) - 1)) return 0;
    *out = sign | (uint32_t)x << mant | (uint32_t)(m >> (52 - mant));
    return 1;
  }
  shift = 53 - mant - x;    /* a subnormal of the narrower type */
  full = UINT64_C(1) << 52 | m;
  if (shift > 53 || (full & ((UINT64_C(1) << shift) - 1))) return 0;
  *out = sign | (uint32_t)(full >> shift);
  return 1;
}

static void putfloat(Enc *e, double d) {
  unsigned char *p = room(e->L, &e->out, 9);
  uint64_t u;
  uint32_t h;
  memcpy(&u, &d, sizeof u);
  /* a single (or half) keeps 23 (10) of the 52 mantissa bits: with any of
  ** the low 29 set, only a double holds it (most measured values) */
  if (u & ((UINT64_C(1) << 29) - 1)) { p[0] = 0xfb; putbe(p + 1, u, 8); e->out.n += 9; }
  else if (d != d) { p[0] = 0xf9; putbe(p + 1, 0x7e00, 2); e->out.n += 3; }
  else if (narrow(u, 10, 5, &h)) { p[0] = 0xf9; putbe(p + 1, h, 2); e->out.n += 3; }
  else if (narrow(u, 23, 8, &h)) { p[0] = 0xfa; putbe(p + 1, h, 4); e->out.n += 5; }
  else { p[0] = 0xfb; putbe(p + 1, u, 8); e->out.n += 9; }
}

/* ---- error paths ---- */

typedef struct Str {
  char *p;
  size_t n, sz;
} Str;

static void addf(Str *s, const char *fmt, ...) {
  va_list ap;
  int k;
  if (s->n + 1 >= s->sz) return;
  va_start(ap, fmt);
  k = vsnprintf(s->p + s->n, s->sz - s->n, fmt, ap);
  va_end(ap);
  if (k > 0) s->n = s->n + (size_t)k < s->sz ? s->n + (size_t)k : s->sz - 1;
}

static void addkey(lua_State *L, Str *s, int key) {
  switch (lua_type(L, key)) {
    case LUA_TSTRING: {
      size_t n, i;
      const unsigned char *k = (const unsigned char *)lua_tolstring(L, key, &n);
      int text = utf8ok(k, n), ident = n > 0 && !(k[0] >= '0' && k[0] <= '9');
      for (i = 0; i < n && ident; i++)
        ident = k[i] == '_' || (k[i] >= '0' && k[i] <= '9') ||
                ((k[i] | 0x20) >= 'a' && (k[i] | 0x20) <= 'z');
      if (ident) { addf(s, ".%s", (const char *)k); break; }
      addf(s, "[\"");
      for (i = 0; i < n && i < 40; i++) {
        if (k[i] == '"' || k[i] == '\\') addf(s, "\\%c", k[i]);
        else if (k[i] < 0x20 || k[i] == 0x7f || (k[i] >= 0x80 && !text))
          addf(s, "\\x%02X", k[i]);
        else addf(s, "%c", k[i]);
      }
      addf(s, i < n ? "...\"]" : "\"]");
      break;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, key)) addf(s, "[%lld]", (long long)lua_tointeger(L, key));
      else {
        char b[40];
        lp_float_text((double)lua_tonumber(L, key), b, sizeof b);
        addf(s, "[%s]", b);
      }
      break;
    case LUA_TBOOLEAN:
      addf(s, lua_toboolean(L, key) ? "[true]" : "[false]");
      break;
    default:
      addf(s, "[<%s key>]", lua_typename(L, lua_type(L, key)));
  }
}

/* The path to the value being encoded, "..." ending it if cut short. */
static void path(Enc *e, char *b, size_t sz) {
  Str s = {b, 0, sz};
  int i;
  b[0] = '\0';
  addf(&s, "%s", e->root);
  for (i = 0; i < e->np; i++) {
    const Frame *f = &e->fr[i];
    if (f->kind == FIDX) addf(&s, "[%lld]", (long long)f->i);
    else if (f->kind == FKEY) addf(&s, "<key>");
    else addkey(e->L, &s, f->key);
  }
  if (s.n + 1 >= sz) memcpy(b + sz - 4, "...", 4);
}

/* Only a caller already using nearly all of the Lua stack gets this. */
static int nostack(Enc *e) {
  char b[256];
  path(e, b, sizeof b);
  lp_errf(e->err, e->errsz, "%s: Lua stack overflow", b);
  return LUPINE_NOMEM;
}

static int culprit(Enc *e, int idx) {
  char b[256];
  int t = lua_type(e->L, idx);
  path(e, b, sizeof b);
  lp_errf(e->err, e->errsz, "%s is a %s", b,
          t == LUA_TLIGHTUSERDATA ? "light userdata" : lua_typename(e->L, t));
  return LUPINE_MISUSE;
}

/*
** Two keys of the map being written (its entries' frame pushed) encode
** alike: CBOR readers would keep one, and no order between them would be
** a function of the value.
*/
static int alike(Enc *e) {
  char b[256];
  e->np--;
  path(e, b, sizeof b);
  e->np++;
  lp_errf(e->err, e->errsz,
          "%s has two keys that encode alike (tables with equal contents)", b);
  return LUPINE_MISUSE;
}

/* ---- tables ---- */

/* n if the table at t has keys exactly 1..n (n may be 0), else -1. */
static lua_Integer seqlen(lua_State *L, int t) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, t), k = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
      lua_pop(L, 1);
      return -1;
    }
    k++;
  }
  return k == n ? n : -1;
}

static void addent(Enc *e, size_t off, lua_Integer id) {
  Ent *x = (Ent *)room(e->L, &e->ents, sizeof(Ent));
  x->off = off;
  x->id = id;
  e->ents.n += sizeof(Ent);
}

static int bytecmp(const unsigned char *p, size_t pn, const unsigned char *q, size_t qn) {
  int c = memcmp(p, q, pn < qn ? pn : qn);
  return c != 0 ? c : (pn > qn) - (pn < qn);
}

static int entcmp(const void *a, const void *b) {
  const Ent *x = a, *y = b;
  return bytecmp(x->p, x->len, y->p, y->len);
}

/* Bytes in the head starting with byte b. */
static size_t headlen(unsigned char b) {
  b &= 31;
  return b < 24 ? 1 : 1 + ((size_t)1 << (b - 24));
}

/*
** The entries pushed since byte e0 of the Ent stack, their bytes found:
** they run from out[start] to the end of the output, one after another.
*/
static Ent *spans(Enc *e, size_t e0, size_t start, size_t *count) {
  Ent *x = (Ent *)(e->ents.p + e0);
  size_t n = (e->ents.n - e0) / sizeof(Ent), i;
  for (i = 0; i < n; i++) {
    x[i].p = e->out.p + start + x[i].off;
    x[i].len = (i + 1 < n ? x[i + 1].off : e->out.n - start) - x[i].off;
  }
  *count = n;
  return x;
}

/* Those entries sorted by their bytes. */
static Ent *sortents(Enc *e, size_t e0, size_t start, size_t *count) {
  Ent *x = spans(e, e0, start, count);
  size_t n = *count, i;
  if (n > 8) qsort(x, n, sizeof *x, entcmp);
  else {   /* records have a few keys: qsort's setup would dominate */
    for (i = 1; i < n; i++) {
      Ent v = x[i];
      size_t j;
      for (j = i; j > 0 && entcmp(&x[j - 1], &v) > 0; j--) x[j] = x[j - 1];
      x[j] = v;
    }
  }
  return x;
}

static int array(Ctx *c, int t, lua_Integer n) {
  Enc *e = c->e;
  Frame *f = &e->fr[e->np++];
  int rc = LUPINE_OK;
  lua_Integer i;
  f->kind = FIDX;
  puthead(e, 4, (uint64_t)n);
  for (i = 1; i <= n && rc == LUPINE_OK; i++) {
    f->i = i;
    lua_rawgeti(e->L, t, i);
    rc = emit(c, -1);
    lua_pop(e->L, 1);
  }
  e->np--;
  return rc;
}

/* The argument of the head at p. */
static uint64_t headarg(const unsigned char *p) {
  size_t k = headlen(p[0]), i;
  uint64_t v = k == 1 ? (uint64_t)(p[0] & 31) : 0;
  for (i = 1; i < k; i++) v = v << 8 | p[i];
  return v;
}

/* Bytes of the item at p, as pass 1 writes them (definite lengths; the
** only tag, 27, is followed by the item it tags). */
static size_t itemlen(const unsigned char *p) {
  size_t n = 0;
  uint64_t items;
  for (items = 1; items > 0; items--) {
    uint64_t v = headarg(p + n);
    int major = p[n] >> 5;
    n += headlen(p[n]);
    if (major == 2 || major == 3) n += (size_t)v;
    else if (major == 4 || major == 5) items += v << (major == 5);
    else if (major == 6) items++;
  }
  return n;
}

/*
** Make the shape of the map whose n entries x, keyed by strings, are
** sorted, and whose ids are their traversal order.
*/
static void adopt(Shape *sh, const Ent *x, size_t n) {
  size_t j;
  sh->n = 0;
  for (j = 0; j < n; j++) {
    size_t id = (size_t)x[j].id, head = headlen(x[j].p[0]), len = itemlen(x[j].p);
    if (len > SHAPE_KEYLEN) return;
    sh->head[id] = (unsigned char)head;
    sh->len[id] = (unsigned char)len;
    memcpy(sh->bytes[id], x[j].p, len);
    sh->order[j] = (unsigned char)id;
  }
  sh->n = (int)n;
}

/*
** Turn the i array elements written from out[body] into entries keyed
** 1..i written from out[start], pushing their Ents.
*/
static void rekey(Enc *e, size_t start, size_t body, lua_Integer i) {
  size_t total = e->out.n - body, off = 0, len;
  unsigned char *tmp;
  lua_Integer j;
  e->out.n = start;
  if (i == 0) return;   /* the first key was not 1 */
  tmp = room(e->L, &e->tmp, total);
  memcpy(tmp, e->out.p + body, total);
  for (j = 1; j <= i; j++, off += len) {
    len = itemlen(tmp + off);
    addent(e, e->out.n - start, 0);
    puthead(e, 0, (uint64_t)j);
    put(e, tmp + off, len);
  }
}

/*
** Write the key of the k-th entry of a map at depth (stack: ..., key,
** value): from the depth's shape while the map's keys have been its keys
** (*same), else encoded. *strings: the keys so far are strings.
*/
static int mapkey(Ctx *c, int depth, lua_Integer k, int *same, int *strings) {
  Enc *e = c->e;
  lua_State *L = e->L;
  if (!*strings || k >= SHAPE_KEYS || lua_type(L, -2) != LUA_TSTRING) {
    *strings = *same = 0;
    return emit(c, -2);
  }
  if (*same) {
    const Shape *sh = &e->shape[depth];
    size_t n;
    const char *s = lua_tolstring(L, -2, &n);
    if (k < sh->n && n == (size_t)(sh->len[k] - sh->head[k]) &&
        memcmp(s, sh->bytes[k] + sh->head[k], n) == 0) {
      put(e, sh->bytes[k], sh->len[k]);
      return LUPINE_OK;
    }
    *same = 0;
  }
  return emit(c, -2);
}

/*
** A table in pass 1. Nothing is shared, so every key and value encodes
** here as it would standalone, and one traversal does: while keys come as
** 1, 2, 3... (a sequence in Lua's array part) values go out as an array
** of the length lua_rawlen predicts. At any other key, those values
** become entries keyed 1..i and the rest follow as entries, which are
** then sorted as byte strings (or put in their shape's order) and copied
** back behind the head. A sequence stored out of order ends there too,
** and is then written as an array from its sorted entries. Entries with
** equal keys sort next to each other (items are prefix-free); only table
** keys can be equal. Pass 1 leaves such a map to pass 2, which refuses
** it, so that the error names the first one in the canonical order, not
** in Lua's; sort keys keep them, as sorting there only needs equal
** entries to be interchangeable.
*/
static int tablea(Ctx *c, int t) {
  Enc *e = c->e;
  lua_State *L = e->L;
  int depth = e->np;
  Frame *f = &e->fr[e->np++];
  lua_Integer n = (lua_Integer)lua_rawlen(L, t), i = 0, k = 0;   /* i < 0: entries */
  size_t start = e->out.n, e0 = e->ents.n, body, cnt, j, total, at;
  int rc = LUPINE_OK, seq = 1;   /* seq: every key is in 1..n */
  int tables = 0;                /* some key is a table (an array, map or tag) */
  int strings = depth < SHAPE_DEPTHS, same = strings && e->shape[depth].n > 0;
  const unsigned char *order = NULL;   /* the shape's, else x is sorted */
  unsigned char *tmp;
  Ent *x;
  puthead(e, 4, (uint64_t)n);
  body = e->out.n;
  lua_pushnil(L);
  while (lua_next(L, t)) {   /* stack: ..., key, value */
    if (i >= 0 && i < n && lua_isinteger(L, -2) && lua_tointeger(L, -2) == i + 1) {
      f->kind = FIDX;
      f->i = ++i;
      rc = emit(c, -1);
    }
    else {
      if (i > 0) strings = same = 0;
      if (i >= 0) rekey(e, start, body, i);
      i = -1;
      seq = seq && lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 &&
            lua_tointeger(L, -2) <= n;
      addent(e, e->out.n - start, k);
      f->kind = FKEY;
      f->key = lua_gettop(L) - 1;
      at = e->out.n;
      if ((rc = mapkey(c, depth, k++, &same, &strings)) == LUPINE_OK) {
        tables = tables || (e->out.p[at] >> 5 >= 4 && e->out.p[at] >> 5 <= 6);
        f->kind = FVAL;
        rc = emit(c, -1);
      }
    }
    if (rc != LUPINE_OK) {
      lua_pop(L, 2);
      goto done;
    }
    lua_pop(L, 1);
  }
  if (i == n) goto done;   /* keys were exactly 1..n: an array */
  if (i >= 0) rekey(e, start, body, i);   /* a finalizer cleared t[n] meanwhile */
  if (same && k == e->shape[depth].n) {
    x = spans(e, e0, start, &cnt);
    order = e->shape[depth].order;
  }
  else {
    x = sortents(e, e0, start, &cnt);
    if (strings && k > 0) adopt(&e->shape[depth], x, cnt);
    for (j = 0; tables && c->mode == PASS1 && j + 1 < cnt; j++) {
      size_t kl = itemlen(x[j].p);
      if (x[j + 1].len >= kl && memcmp(x[j].p, x[j + 1].p, kl) == 0) {
        rc = RESTART;
        goto done;
      }
    }
  }
  total = e->out.n - start;
  tmp = room(L, &e->tmp, total);
  memcpy(tmp, e->out.p + start, total);
  e->out.n = start;
  seq = seq && cnt == (size_t)n;
  puthead(e, seq ? 4 : 5, cnt);
  for (j = 0; j < cnt; j++) {   /* a sequence's keys sort as 1..n: drop them */
    const Ent *y = &x[order != NULL ? order[j] : j];
    size_t kl = seq ? headlen(tmp[y->off]) : 0;
    put(e, tmp + y->off + kl, y->len - kl);
  }
done:
  e->np--;
  e->ents.n = e0;
  return rc;
}

#define ENT(e, e0, k) (((Ent *)((e)->ents.p + (e0)))[k])   /* the stack may move */

/* Emit the entry id of the map being emitted from its anchor at slot a. */
static int entry(Ctx *c, int a, lua_Integer id) {
  Enc *e = c->e;
  lua_State *L = e->L;
  Frame *f = &e->fr[e->np - 1];
  int rc;
  lua_rawgeti(L, a, 2 * id - 1);
  lua_rawgeti(L, a, 2 * id);
  f->kind = FKEY;
  f->key = lua_gettop(L) - 1;
  if ((rc = emit(c, -2)) == LUPINE_OK) {
    f->kind = FVAL;
    rc = emit(c, -1);
  }
  lua_pop(L, 2);
  return rc;
}

/*
** A map in pass 2, where share indices follow emission order, so the
** order must be known before anything is emitted: append each key's sort
** key, sort, refuse two that are equal, drop them, then emit the entries
** in that order from an anchor table that keeps them alive meanwhile (one
** per depth, reused, since creating one per map would cost more than the
** rest).
*/
static int maps(Ctx *c, int t) {
  Enc *e = c->e;
  lua_State *L = e->L;
  size_t start = e->out.n, e0 = e->ents.n, n, i;
  lua_Integer id = 0;
  int rc = LUPINE_OK, a;
  Ent *x;
  if (lua_rawgeti(L, e->anchors, e->np) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, e->anchors, e->np);
  }
  a = lua_gettop(L);
  e->np++;
  lua_pushnil(L);
  while (lua_next(L, t)) {   /* stack: ..., anchor, key, value */
    addent(e, e->out.n - start, ++id);
    lua_pushvalue(L, -2);
    lua_rawseti(L, a, 2 * id - 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, a, 2 * id);
    e->fr[e->np - 1].kind = FKEY;
    if ((rc = sortkey(e, a + 1)) != LUPINE_OK) goto done;
    lua_pop(L, 1);
  }
  x = sortents(e, e0, start, &n);
  for (i = 0; i + 1 < n; i++)
    if (entcmp(&x[i], &x[i + 1]) == 0) {
      rc = alike(e);
      goto done;
    }
  e->out.n = start;
  puthead(e, 5, n);
  for (i = 0; i < n && rc == LUPINE_OK; i++) rc = entry(c, a, ENT(e, e0, i).id);
done:
  e->np--;
  e->ents.n = e0;
  lua_settop(L, a - 1);
  return rc;
}

#define SLOT(p, mask) \
  ((size_t)((uint64_t)(uintptr_t)(p) * UINT64_C(0x9E3779B97F4A7C15) >> 32) & (mask))

/*
** Pass 1 remembers the tables it meets by address, in an open-addressing
** set kept at most half full: a Lua table of light userdata would cost
** several times more per table. Returns 1 if p was met before.
*/
static int seen(Ctx *c, const void *p) {
  Buf *b = &c->seen;
  size_t mask = b->cap / sizeof p - 1, i;
  const void **s = (const void **)b->p;
  for (i = SLOT(p, mask); s[i] != NULL; i = (i + 1) & mask)
    if (s[i] == p) return 1;
  s[i] = p;
  if (2 * ++b->n > mask) {   /* double it */
    size_t nmask = 2 * mask + 1, j;
    const void **ns = lua_newuserdatauv(c->e->L, (nmask + 1) * sizeof p, 0);
    memset(ns, 0, (nmask + 1) * sizeof p);
    for (i = 0; i <= mask; i++) {
      if (s[i] == NULL) continue;
      for (j = SLOT(s[i], nmask); ns[j] != NULL; j = (j + 1) & nmask) {}
      ns[j] = s[i];
    }
    lua_replace(c->e->L, b->slot);
    b->p = (unsigned char *)ns;
    b->cap = (nmask + 1) * sizeof p;
  }
  return 0;
}

/* Is the table at t a tagged value (see lp_codec_push_tagged)? */
static int is_tagged(lua_State *L, int t) {
  int yes;
  if (!lua_getmetatable(L, t)) return 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tagged_mt);
  yes = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return yes;
}

/* A tagged value: tag 27 around [type name, plain value]. Never shared:
** each reference is written in full. */
static int typed(Ctx *c, int t) {
  lua_State *L = c->e->L;
  int rc;
  puthead(c->e, 6, TAG_TYPED);
  puthead(c->e, 4, 2);
  lua_getfield(L, t, "type");
  rc = emit(c, lua_gettop(L));
  lua_pop(L, 1);
  if (rc != LUPINE_OK) return rc;
  lua_getfield(L, t, "value");
  rc = emit(c, lua_gettop(L));
  lua_pop(L, 1);
  return rc;
}

static int table(Ctx *c, int t) {
  Enc *e = c->e;
  lua_State *L = e->L;
  const void *p = lua_topointer(L, t);
  lua_Integer n;
  if (!lua_checkstack(L, 8)) return nostack(e);
  if (e->np >= LP_CODEC_MAX_DEPTH) {
    char b[256];
    path(e, b, sizeof b);
    lp_errf(e->err, e->errsz, "%s: nested deeper than %d levels", b, LP_CODEC_MAX_DEPTH);
    return LUPINE_MISUSE;
  }
  if (is_tagged(L, t)) return typed(c, t);
  if (c->mode == PASS1) return seen(c, p) ? RESTART : tablea(c, t);
  lua_rawgetp(L, c->refs, p);
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (c->mode == SORT) {
    if (n < 2 || e->np == c->np0) return tablea(c, t);
    putbyte(e, 0xf7);
    return LUPINE_OK;
  }
  if (n < 0) {   /* emitted before */
    puthead(e, 6, 29);
    puthead(e, 0, (uint64_t)(-n - 1));
    return LUPINE_OK;
  }
  if (n > 1) {   /* the first of several */
    puthead(e, 6, 28);
    lua_pushinteger(L, -++c->nshare);
    lua_rawsetp(L, c->refs, p);
  }
  n = seqlen(L, t);
  return n >= 0 ? array(c, t, n) : maps(c, t);
}

static int emit(Ctx *c, int idx) {
  Enc *e = c->e;
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      putbyte(e, 0xf6);
      return LUPINE_OK;
    case LUA_TBOOLEAN:
      putbyte(e, lua_toboolean(L, idx) ? 0xf5 : 0xf4);
      return LUPINE_OK;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        puthead(e, i < 0, i < 0 ? (uint64_t)(-1 - i) : (uint64_t)i);
      }
      else putfloat(e, (double)lua_tonumber(L, idx));
      return LUPINE_OK;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      puthead(e, utf8ok((const unsigned char *)s, n) ? 3 : 2, n);
      put(e, s, n);
      return LUPINE_OK;
    }
    case LUA_TTABLE:
      return table(c, lua_absindex(L, idx));
    default:
      return culprit(e, idx);
  }
}

/* How often each table is reached from t; only the first reach descends. */
static void count(Ctx *c, int t, int depth) {
  lua_State *L = c->e->L;
  const void *p = lua_topointer(L, t);
  lua_Integer n;
  lua_rawgetp(L, c->refs, p);
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_pushinteger(L, n + 1);
  lua_rawsetp(L, c->refs, p);
  if (n > 0 || depth >= LP_CODEC_MAX_DEPTH || !lua_checkstack(L, 4)) return;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) == LUA_TTABLE) count(c, lua_gettop(L) - 1, depth + 1);
    if (lua_type(L, -1) == LUA_TTABLE) count(c, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
}

/* Append the sort key of the value at idx (see the top of the file). */
static int sortkey(Enc *e, int idx) {
  Ctx c = {e, SORT, {NULL, 0, 0, 0, 0}, 0, 0, e->np};
  int rc;
  if (lua_type(e->L, idx) != LUA_TTABLE) return emit(&c, idx);
  idx = lua_absindex(e->L, idx);
  lua_newtable(e->L);
  c.refs = lua_gettop(e->L);
  count(&c, idx, e->np);
  rc = emit(&c, idx);
  lua_settop(e->L, c.refs - 1);
  return rc;
}

/* Encode the value at idx in pass 1, or in pass 2 if something is shared
** or two keys are alike. */
static int encode(Enc *e, int idx) {
  lua_State *L = e->L;
  Ctx c = {e, PASS1, {NULL, 0, 0, 0, 0}, 0, 0, 0};
  int rc;
  c.seen.cap = 16 * sizeof(void *);
  c.seen.p = memset(lua_newuserdatauv(L, c.seen.cap, 0), 0, c.seen.cap);
  c.seen.slot = lua_gettop(L);
  rc = emit(&c, idx);
  if (rc == RESTART) {
    e->out.n = 0;
    c.mode = PASS2;
    lua_newtable(L);
    c.refs = lua_gettop(L);
    count(&c, idx, 0);
    rc = emit(&c, idx);
  }
  lua_settop(L, c.seen.slot - 1);
  return rc;
}

size_t lp_codec_string_head(const char *s, size_t n, unsigned char head[9]) {
  return head_bytes(head, utf8ok((const unsigned char *)s, n) ? 3 : 2, n);
}

int lp_codec_encode(lua_State *L, int idx, const char *root,
                    char *err, size_t errsz) {
  Enc e;
  int top = lua_gettop(L), rc, d;
  idx = lua_absindex(L, idx);
  e.L = L;
  e.np = 0;
  e.root = root;
  e.err = err;
  e.errsz = errsz;
  if (!lua_checkstack(L, 8)) return nostack(&e);
  boxinit(L, (Buf *const[]){&e.out, &e.ents, &e.tmp}, 3);
  lua_newtable(L);
  e.anchors = lua_gettop(L);
  for (d = 0; d < SHAPE_DEPTHS; d++) e.shape[d].n = 0;
  if (lua_type(L, idx) == LUA_TSTRING) {
    /* A string alone (a blob of bytes, often large): its head, then the
    ** string joined to it, which copies its bytes once, not twice. */
    unsigned char head[9];
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    lua_pushlstring(L, (const char *)head, lp_codec_string_head(s, n, head));
    lua_pushvalue(L, idx);
    lua_concat(L, 2);
    rc = LUPINE_OK;
  } else if ((rc = encode(&e, idx)) == LUPINE_OK)
    lua_pushlstring(L, (const char *)e.out.p, e.out.n);
  resize(L, &e.out, 0);   /* now rather than at the next collection */
  resize(L, &e.ents, 0);
  resize(L, &e.tmp, 0);
  if (rc == LUPINE_OK) lua_replace(L, top + 1);
  lua_settop(L, rc == LUPINE_OK ? top + 1 : top);
  return rc;
}

/* ---- decoder ---- */

#define KEY_SLOTS 64   /* short map keys a decoder remembers (a power of 2) */

typedef struct Dec {
  lua_State *L;
  const unsigned char *p;
  size_t n, pos;
  size_t budget;         /* table slots that may still be preallocated */
  int shared;            /* slot: tag-28 tables by index (nil until the first) */
  lua_Integer nshared;
  int depth;
  int keys;              /* slot: the remembered keys' strings (nil until the first) */
  struct { const char *s; size_t len; } key[KEY_SLOTS];   /* their bytes, in keys */
  char *err;
  size_t errsz;
} Dec;

static const char *const kinds[8] = {
  "integer", "negative integer", "byte string", "text string",
  "array", "map", "tag", "simple value"
};

static int bad(Dec *d, const char *fmt, ...) {
  va_list ap;
  if (d->err == NULL || d->errsz <= 6) return LUPINE_CORRUPT;
  memcpy(d->err, "CBOR: ", 7);
  va_start(ap, fmt);
  vsnprintf(d->err + 6, d->errsz - 6, fmt, ap);
  va_end(ap);
  return LUPINE_CORRUPT;
}

/* Read the head at d->pos: major type, additional information, argument. */
static int gethead(Dec *d, int *major, int *info, uint64_t *arg) {
  size_t at = d->pos, k;
  if (at >= d->n) return bad(d, "truncated input at byte %zu (an item is missing)", at);
  *major = d->p[at] >> 5;
  *info = d->p[at] & 31;
  d->pos++;
  if (*info < 24) { *arg = (uint64_t)*info; return LUPINE_OK; }
  if (*info == 31)
    return *major == 7 ? bad(d, "unexpected break at byte %zu", at)
         : *major >= 2 && *major <= 5
           ? bad(d, "indefinite-length %s at byte %zu (not supported)", kinds[*major], at)
           : bad(d, "invalid additional information 31 at byte %zu", at);
  if (*info > 27) return bad(d, "reserved additional information %d at byte %zu", *info, at);
  k = (size_t)1 << (*info - 24);
  if (d->n - d->pos < k)
    return bad(d, "truncated head at byte %zu (needs %zu bytes, %zu left)",
               at, k, d->n - d->pos);
  for (*arg = 0; k > 0; k--) *arg = *arg << 8 | d->p[d->pos++];
  return LUPINE_OK;
}

static double half(unsigned h) {
  int e = h >> 10 & 0x1f;
  unsigned m = h & 0x3ff;
  double v = e == 0 ? ldexp(m, -24) : e < 31 ? ldexp(m + 1024, e - 25)
           : m == 0 ? HUGE_VAL : NAN;
  return h & 0x8000 ? -v : v;
}

static int item(Dec *d);

/*
** A map key. Records repeat their keys, so a short text key is looked up
** among the ones this value had before and, when there, pushed as the same
** Lua string, its bytes neither checked nor interned again.
*/
static int map_key(Dec *d) {
  lua_State *L = d->L;
  size_t at = d->pos, len;
  const unsigned char *b;
  unsigned slot;
  int rc;
  if (at >= d->n || d->p[at] >> 5 != 3 || (d->p[at] & 31) >= 24) return item(d);
  len = d->p[at] & 31;
  if (len > d->n - at - 1) return item(d);   /* which says what is wrong */
  b = d->p + at + 1;
  slot = (unsigned)(len * 31 + (len > 0 ? b[0] * 7u + b[len - 1] : 0)) & (KEY_SLOTS - 1);
  if (d->key[slot].s != NULL && d->key[slot].len == len && memcmp(d->key[slot].s, b, len) == 0) {
    lua_rawgeti(L, d->keys, slot + 1);
    d->pos = at + 1 + len;
    return LUPINE_OK;
  }
  if ((rc = item(d)) != LUPINE_OK) return rc;
  if (lua_isnil(L, d->keys)) {
    lua_createtable(L, KEY_SLOTS, 0);
    lua_replace(L, d->keys);
  }
  lua_pushvalue(L, -1);
  lua_rawseti(L, d->keys, slot + 1);   /* keeps d->key[slot].s alive */
  d->key[slot].s = lua_tostring(L, -1);
  d->key[slot].len = len;
  return LUPINE_OK;
}

/* A map entry into the table at t. */
static int pair(Dec *d, int t) {
  lua_State *L = d->L;
  size_t at = d->pos;
  int rc = map_key(d);
  if (rc != LUPINE_OK) return rc;
  if (lua_isnil(L, -1)) return bad(d, "null map key at byte %zu", at);
  if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1))
    return bad(d, "NaN map key at byte %zu", at);
  lua_pushvalue(L, -1);
  if (lua_rawget(L, t) != LUA_TNIL) return bad(d, "duplicate map key at byte %zu", at);
  lua_pop(L, 1);
  if ((rc = item(d)) != LUPINE_OK) return rc;
  lua_rawset(L, t);
  return LUPINE_OK;
}

/* An array or map of n items; share is its tag-28 index plus 1, or 0. */
static int container(Dec *d, int major, uint64_t n, size_t at, lua_Integer share) {
  lua_State *L = d->L;
  size_t left = d->n - d->pos, pre;
  uint64_t i;
  int rc = LUPINE_OK, t;
  if (d->depth >= LP_CODEC_MAX_DEPTH)
    return bad(d, "nested deeper than %d levels at byte %zu", LP_CODEC_MAX_DEPTH, at);
  if (!lua_checkstack(L, 6)) return bad(d, "Lua stack overflow at byte %zu", at);
  if (n > (major == 4 ? left : left / 2))
    return bad(d, "%s of %llu %s at byte %zu exceeds the input (%zu bytes left)",
               kinds[major], (unsigned long long)n, major == 4 ? "items" : "pairs",
               at, left);
  pre = n < d->budget ? (size_t)n : d->budget;
  if (pre > 1 << 30) pre = 1 << 30;
  d->budget -= pre;
  lua_createtable(L, major == 4 ? (int)pre : 0, major == 5 ? (int)pre : 0);
  t = lua_gettop(L);
  if (share > 0) {   /* before the items, so they may refer to it */
    lua_pushvalue(L, t);
    lua_rawseti(L, d->shared, share);
  }
  d->depth++;
  for (i = 1; i <= n && rc == LUPINE_OK; i++) {
    if (major == 5) rc = pair(d, t);
    else if (d->n - d->pos >= 9 && d->p[d->pos] == 0xfb) {
      /* a double, read here: arrays of them are the bulk of numeric data */
      uint64_t u = 0;
      double x;
      int k;
      for (k = 1; k <= 8; k++) u = u << 8 | d->p[d->pos + k];
      memcpy(&x, &u, sizeof x);
      d->pos += 9;
      lua_pushnumber(L, x);
      lua_rawseti(L, t, (lua_Integer)i);
    } else if ((rc = item(d)) == LUPINE_OK) lua_rawseti(L, t, (lua_Integer)i);
  }
  d->depth--;
  return rc;
}

/* Tag 27: [type name, plain value]; the restore hook, if any, turns it
** into the type's value (a materializer's load), else it stays tagged. */
static int typed_item(Dec *d, size_t at) {
  lua_State *L = d->L;
  int major, info, rc;
  uint64_t v;
  if ((rc = gethead(d, &major, &info, &v)) != LUPINE_OK) return rc;
  if (major != 4 || v != 2)
    return bad(d, "tag 27 at byte %zu does not wrap a [type, value] pair", at);
  if (d->depth >= LP_CODEC_MAX_DEPTH)
    return bad(d, "nested deeper than %d levels at byte %zu", LP_CODEC_MAX_DEPTH, at);
  if (!lua_checkstack(L, 6)) return bad(d, "Lua stack overflow at byte %zu", at);
  d->depth++;
  if ((rc = item(d)) == LUPINE_OK && lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    rc = bad(d, "tag 27 at byte %zu has no type name", at);
  }
  if (rc == LUPINE_OK && (rc = item(d)) != LUPINE_OK) lua_pop(L, 1);
  d->depth--;
  if (rc != LUPINE_OK) return rc;
  /* stack: type, value */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &restore_hook) == LUA_TFUNCTION) {
    lua_insert(L, -3);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
      lp_errf(d->err, d->errsz, "%s", lua_tostring(L, -1));
      lua_pop(L, 1);
      return LUPINE_ERROR;
    }
    return LUPINE_OK;
  }
  lua_pop(L, 1);
  lp_codec_push_tagged(L, lua_gettop(L) - 1, lua_gettop(L));
  lua_replace(L, -3);
  lua_pop(L, 1);
  return LUPINE_OK;
}

void lp_codec_push_tagged(lua_State *L, int type, int value) {
  type = lua_absindex(L, type);
  value = lua_absindex(L, value);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, type);
  lua_setfield(L, -2, "type");
  lua_pushvalue(L, value);
  lua_setfield(L, -2, "value");
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &tagged_mt) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushliteral(L, "lupine.Tagged");
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tagged_mt);
  }
  lua_setmetatable(L, -2);
}

void lp_codec_set_restore(lua_State *L, int fn) {
  lua_pushvalue(L, fn);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &restore_hook);
}

/* Tag handlers. */
static int tag(Dec *d, uint64_t tg, size_t at) {
  lua_State *L = d->L;
  size_t at2 = d->pos;
  int major, info, rc;
  uint64_t v;
  if (tg == TAG_TYPED) return typed_item(d, at);
  if (tg != 28 && tg != 29)
    return bad(d, "unknown tag %llu at byte %zu", (unsigned long long)tg, at);
  if ((rc = gethead(d, &major, &info, &v)) != LUPINE_OK) return rc;
  if (tg == 28) {   /* shareable */
    if (major != 4 && major != 5)
      return bad(d, "tag 28 at byte %zu does not wrap an array or a map", at);
    if (d->nshared == 0) {
      lua_newtable(L);
      lua_replace(L, d->shared);
    }
    return container(d, major, v, at2, ++d->nshared);
  }
  if (major != 0)   /* sharedref */
    return bad(d, "tag 29 at byte %zu does not wrap an unsigned integer", at);
  if (v >= (uint64_t)d->nshared)
    return bad(d, "tag 29 at byte %zu refers to shared value %llu (%lld defined)",
               at, (unsigned long long)v, (long long)d->nshared);
  lua_rawgeti(L, d->shared, (lua_Integer)v + 1);
  return LUPINE_OK;
}

static int item(Dec *d) {
  lua_State *L = d->L;
  size_t at = d->pos;
  int major, info, rc;
  uint64_t v;
  float f;
  double x;
  if ((rc = gethead(d, &major, &info, &v)) != LUPINE_OK) return rc;
  switch (major) {
    case 0: case 1:
      if (v > INT64_MAX)
        return bad(d, "%s at byte %zu does not fit a Lua integer", kinds[major], at);
      lua_pushinteger(L, major == 0 ? (lua_Integer)v : -1 - (lua_Integer)v);
      return LUPINE_OK;
    case 2: case 3:
      if (v > d->n - d->pos)
        return bad(d, "truncated string at byte %zu (needs %llu bytes, %zu left)",
                   at, (unsigned long long)v, d->n - d->pos);
      if (major == 3 && !utf8ok(d->p + d->pos, (size_t)v))
        return bad(d, "invalid UTF-8 in text string at byte %zu", at);
      lua_pushlstring(L, (const char *)d->p + d->pos, (size_t)v);
      d->pos += (size_t)v;
      return LUPINE_OK;
    case 4: case 5:
      return container(d, major, v, at, 0);
    case 6:
      return tag(d, v, at);
  }
  switch (info) {
    case 20: case 21: lua_pushboolean(L, info == 21); break;
    case 22: case 23: lua_pushnil(L); break;
    case 25: lua_pushnumber(L, half((unsigned)v)); break;
    case 26: {
      uint32_t u = (uint32_t)v;
      memcpy(&f, &u, sizeof f);
      lua_pushnumber(L, f);
      break;
    }
    case 27:
      memcpy(&x, &v, sizeof x);
      lua_pushnumber(L, x);
      break;
    default:
      return bad(d, "unsupported simple value %llu at byte %zu",
                 (unsigned long long)(info == 24 ? v : (uint64_t)info), at);
  }
  return LUPINE_OK;
}

int lp_codec_decode(lua_State *L, const void *data, size_t len,
                    char *err, size_t errsz) {
  Dec d;
  int top = lua_gettop(L), rc;
  d.L = L;
  d.p = data;
  d.n = d.budget = len;
  d.pos = 0;
  d.nshared = 0;
  d.depth = 0;
  d.err = err;
  d.errsz = errsz;
  memset(d.key, 0, sizeof d.key);
  if (!lua_checkstack(L, 6)) return bad(&d, "Lua stack overflow");
  lua_pushnil(L);   /* becomes the tag-28 table if needed */
  d.shared = top + 1;
  lua_pushnil(L);   /* becomes the remembered keys' table */
  d.keys = top + 2;
  rc = item(&d);
  if (rc == LUPINE_OK && d.pos != len)
    rc = bad(&d, "trailing bytes at byte %zu (%zu after the value)", d.pos, len - d.pos);
  if (rc == LUPINE_OK) {
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
  } else lua_settop(L, top);
  return rc;
}
