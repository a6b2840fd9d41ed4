/* SPDX-License-Identifier: MIT */
/*
** arena.c: the Lua allocator of a worker process.
**
** A worker is a fork of the spawner, so every page of its heap is shared
** copy-on-write. glibc's malloc, serving a small allocation, unlinks a free
** chunk from its bins and so writes to chunks scattered over that heap:
** each first write to a page costs a fault and a page copy (about half of
** a trivial step's faults). This allocator serves the small blocks Lua
** asks for from memory of the worker's own, packed, and leaves the blocks
** allocated before the fork alone: freeing one of those gives nothing back
** (its page is shared, not the worker's to reuse), so it is not touched.
** Large blocks go to the allocator the state had.
*/

#define _DEFAULT_SOURCE   /* MAP_ANONYMOUS, MAP_NORESERVE */
#include <string.h>
#include <sys/mman.h>
#include "lupine_int.h"

#define CLASS 16                       /* block sizes round up to this */
#define SMALL 1024                     /* larger blocks: the parent allocator
                                       ** (lp_arena's free[] has a list per class) */
#define RESERVE ((size_t)1 << 30)      /* address space; pages come on use */

static size_t class_of(size_t size) {
  return (size + CLASS - 1) / CLASS;   /* 1 .. SMALL / CLASS */
}

static int owns(const lp_arena *a, const void *p) {
  return (const char *)p >= a->base && (const char *)p < a->end;
}

static void *take(lp_arena *a, size_t size) {
  size_t c = class_of(size);
  void *p = a->free[c];
  if (p != NULL) {
    memcpy(&a->free[c], p, sizeof p);   /* the next free block of the class */
    return p;
  }
  if ((size_t)(a->end - a->next) < c * CLASS) return NULL;
  p = a->next;
  a->next += c * CLASS;
  return p;
}

static void give(lp_arena *a, void *p, size_t size) {
  size_t c = class_of(size);
  memcpy(p, &a->free[c], sizeof p);
  a->free[c] = p;
}

/* Frees a block of either kind: the arena's to its class, a large one to
** the parent; a small one from before the fork is left as it is. */
static void release(lp_arena *a, void *p, size_t size) {
  if (owns(a, p)) give(a, p, size);
  else if (size > SMALL) a->parent(a->parent_ud, p, size, 0);
}

static void *arena_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lp_arena *a = ud;
  void *p;
  if (nsize == 0) {
    if (ptr != NULL) release(a, ptr, osize);
    return NULL;
  }
  if (ptr == NULL) osize = 0;   /* then osize says what Lua makes, not a size */
  else if (owns(a, ptr) ? class_of(nsize) <= class_of(osize) : osize <= SMALL && nsize <= osize)
    return ptr;   /* it fits where it is (a block stays as big as it was) */
  else if (!owns(a, ptr) && osize > SMALL && nsize > SMALL)
    return a->parent(a->parent_ud, ptr, osize, nsize);
  p = nsize <= SMALL ? take(a, nsize) : NULL;
  if (p == NULL) p = a->parent(a->parent_ud, NULL, 0, nsize);
  if (p == NULL) return nsize <= osize ? ptr : NULL;   /* Lua needs a shrink to succeed */
  if (ptr != NULL) {
    memcpy(p, ptr, osize < nsize ? osize : nsize);
    release(a, ptr, osize);
  }
  return p;
}

int lp_arena_install(lua_State *L, lp_arena *a) {
  void *base = mmap(NULL, RESERVE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return -1;
  memset(a, 0, sizeof *a);
  a->base = a->next = base;
  a->end = a->base + RESERVE;
  a->parent = lua_getallocf(L, &a->parent_ud);
  lua_setallocf(L, arena_alloc, a);
  return 0;
}
