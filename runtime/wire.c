/* SPDX-License-Identifier: MIT */
/*
** wire.c: what the coordinator and its workers say to each other: frames
** (4 bytes of length, big-endian, then that many bytes of CBOR) on
** sockets, and a worker's calls into the coordinator (lp_wire_call: the
** catalog statements, listings and saves the coordinator runs for it,
** since it holds the run's transaction). The coordinator's side of a call
** is worker.c's.
*/
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "lauxlib.h"
#include "lupine_int.h"

int lp_wire_buf_add(lp_buf *b, const char *p, size_t n) {
  if (n == 0) return 0;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *q;
    while (cap < b->len + n) cap *= 2;
    if ((q = realloc(b->p, cap)) == NULL) return -1;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

void lp_wire_buf_drop(lp_buf *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

/* Frames travel on sockets: a peer that is gone is an error, not SIGPIPE. */
int lp_wire_write(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* A frame: 4 bytes of length (big-endian), then that many bytes of CBOR. */
void lp_wire_head(unsigned char head[4], size_t n) {
  head[0] = (unsigned char)(n >> 24);
  head[1] = (unsigned char)(n >> 16);
  head[2] = (unsigned char)(n >> 8);
  head[3] = (unsigned char)n;
}

static int send_frame(int fd, const char *p, size_t n) {
  unsigned char head[4];
  if (n > 0xffffffffu) return -1;
  lp_wire_head(head, n);
  return lp_wire_write(fd, (const char *)head, 4) || lp_wire_write(fd, p, n) ? -1 : 0;
}

/* Encode the table on top as a frame to fd; pops it. */
int lp_wire_send(lua_State *L, int fd) {
  char err[LP_ERRSZ];
  size_t len;
  const char *bytes;
  int rc;
  if (lp_codec_encode(L, -1, "message", err, sizeof err) != LUPINE_OK) {
    lua_pop(L, 1);
    return -1;
  }
  bytes = lua_tolstring(L, -1, &len);
  rc = send_frame(fd, bytes, len);
  lua_pop(L, 2);
  return rc;
}

/* Length of the complete frame at the start of b, or 0 if incomplete. */
size_t lp_wire_ready(const lp_buf *b) {
  const unsigned char *h = (const unsigned char *)b->p;
  size_t n;
  if (b->len < 4) return 0;
  n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
  return b->len >= 4 + n ? 4 + n : 0;
}

/* Read one whole frame from fd into b: its length (with the 4 bytes in
** front), or 0 if the peer is gone first or memory runs out. */
size_t lp_wire_read(int fd, lp_buf *b) {
  char chunk[4096];
  size_t n;
  for (;;) {
    ssize_t k = read(fd, chunk, sizeof chunk);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0 || lp_wire_buf_add(b, chunk, (size_t)k) != 0) return 0;
    if ((n = lp_wire_ready(b)) > 0) return n;
  }
}

int lp_wire_call(lua_State *L, lp_runtime *rt, const char *op, int first, int nargs) {
  lp_buf b = {NULL, 0, 0};
  char err[LP_ERRSZ];
  size_t n;
  int i;
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, "call");
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, op);
  lua_setfield(L, -2, "op");
  lua_createtable(L, nargs, 1);
  for (i = 0; i < nargs; i++) {
    lua_pushvalue(L, first + i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, nargs);
  lua_setfield(L, -2, "n");
  lua_setfield(L, -2, "args");
  if (rt->serve != NULL) return rt->serve(L, rt, op, first, nargs);
  if (lp_wire_send(L, rt->to_parent) != 0)
    return luaL_error(L, "lupine: cannot reach the coordinator (%s)", op);
  if ((n = lp_wire_read(rt->from_parent, &b)) == 0) {
    free(b.p);
    return luaL_error(L, "lupine: lost the coordinator during %s", op);
  }
  i = lp_codec_decode(L, b.p + 4, n - 4, err, sizeof err);
  free(b.p);
  if (i != LUPINE_OK) return luaL_error(L, "lupine: bad reply from the coordinator (%s)", err);
  /* reply: { error = message } or { n = count, values... } */
  if (lua_getfield(L, -1, "error") == LUA_TSTRING) return lua_error(L);
  lua_pop(L, 1);
  lua_getfield(L, -1, "n");
  n = (size_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, (int)n, "reply");
  for (i = 1; i <= (int)n; i++) lua_rawgeti(L, -i, i);
  return (int)n;
}
