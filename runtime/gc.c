/* SPDX-License-Identifier: MIT */
/*
** gc.c: removing the stored objects that no artifact version references
** (after versions were deleted or pruned, or a put whose version was never
** recorded).
**
** Why no writer loses an object: every writer puts its objects first, then
** opens its recording transaction (sqlite: BEGIN IMMEDIATE; PostgreSQL: a
** shared lock) and calls lp_store_keep,
** which puts an object again if it is gone, before it records the version.
** gc reads the references and removes files in a transaction no writer
** runs beside (lp_catalog_begin_alone). So an object gc removes either gets
** a version only after gc commits - and that writer's keep puts it back
** first - or was referenced when gc looked, and is kept. Readers only read objects that committed
** versions reference, which gc never removes.
**
** Only well-formed object files are considered (lp_store_list); the
** fan-out folders stay, since a put may be about to rename a file into one.
**
** Two guards against a catalog that is not the store's (a new one made
** where the old one was lost, the wrong folder): objects written within
** the grace period are kept whatever the catalog says, and a catalog that
** records no version at all may not empty a store unless forced.
**
** The extracted copies of file and folder versions (files.c) go the same
** way, when no version in any store needs them (lp_gc_copies).
*/
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lupine_int.h"

#define PLEN (sizeof LP_HASH_PREFIX - 1)

/* The referenced hashes, as their hex digits (no prefix, no NUL). */
typedef struct {
  char (*hex)[LP_HASH_HEXLEN];
  size_t n, cap;
  int nomem;
} hashset;

typedef struct {
  hashset refs;
  lp_store *store;
  const lp_gc_options *opt;
  double recent_after;   /* objects written after this time (seconds) are kept */
  int refuse;            /* the catalog records no version: remove nothing */
  lp_gc_result *out;
  char *err;
  size_t errsz;
} walk;

static int add_ref(void *ud, const char *hash) {
  hashset *h = ud;
  /* A malformed hash names no file: nothing to keep for it. */
  if (hash == NULL || strlen(hash) != LP_HASH_STRLEN ||
      strncmp(hash, LP_HASH_PREFIX, PLEN) != 0)
    return LUPINE_OK;
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 1024;
    void *p = realloc(h->hex, cap * sizeof *h->hex);
    if (p == NULL) {
      h->nomem = 1;
      return LUPINE_NOMEM;
    }
    h->hex = p;
    h->cap = cap;
  }
  memcpy(h->hex[h->n++], hash + PLEN, LP_HASH_HEXLEN);
  return LUPINE_OK;
}

static int cmp_hex(const void *a, const void *b) {
  return memcmp(a, b, LP_HASH_HEXLEN);
}

static int visit(void *ud, const char *hash, uint64_t stored_size, int64_t written) {
  walk *w = ud;
  int removed = 1, rc;
  if (w->refs.n > 0 &&
      bsearch(hash + PLEN, w->refs.hex, w->refs.n, sizeof *w->refs.hex, cmp_hex) != NULL) {
    w->out->kept++;
    return LUPINE_OK;
  }
  if ((double)written > w->recent_after) {
    w->out->recent++;
    return LUPINE_OK;
  }
  if (w->refuse) {
    lp_errf(w->err, w->errsz, "gc: the catalog records no artifact version, yet the store at "
            "%s holds objects: refusing to remove them all; if every version was deleted on "
            "purpose, force it (lupine gc --force, or force = true)", lp_store_root(w->store));
    return LUPINE_CONSTRAINT;
  }
  if (!w->opt->dry_run &&
      (rc = lp_store_remove(w->store, hash, &removed, w->err, w->errsz)) != LUPINE_OK)
    return rc;
  if (removed) {
    w->out->objects++;
    w->out->bytes += stored_size;
  }
  return LUPINE_OK;
}

int lp_gc(lp_catalog *c, lp_store *s, const char *store_id, const lp_gc_options *opt,
          lp_gc_result *out, char *err, size_t errsz) {
  walk w;
  int rc, any = 1;
  memset(out, 0, sizeof *out);
  memset(&w, 0, sizeof w);
  w.store = s;
  w.opt = opt;
  w.recent_after = (double)time(NULL) - opt->grace;
  w.out = out;
  w.err = err;
  w.errsz = errsz;
  if ((rc = lp_catalog_begin_alone(c, err, errsz)) != LUPINE_OK) return rc;
  if (!opt->force && (rc = lp_catalog_has_versions(c, &any, err, errsz)) != LUPINE_OK) goto done;
  w.refuse = !any;
  if ((rc = lp_catalog_each_hash(c, store_id, add_ref, &w.refs, err, errsz)) != LUPINE_OK) {
    if (w.refs.nomem) lp_errf(err, errsz, "gc: out of memory listing referenced objects");
    goto done;
  }
  if (w.refs.n > 0) qsort(w.refs.hex, w.refs.n, sizeof *w.refs.hex, cmp_hex);
  if ((rc = lp_store_list(s, visit, &w, err, errsz)) != LUPINE_OK) goto done;
  /* Nothing in the catalog changed: the commit only releases the lock. */
  rc = lp_catalog_commit(c, err, errsz);
done:
  if (rc != LUPINE_OK) lp_catalog_rollback(c);
  free(w.refs.hex);
  return rc;
}

static int needed(void *ud, const char *hex) {
  const hashset *h = ud;
  return h->n > 0 && bsearch(hex, h->hex, h->n, sizeof *h->hex, cmp_hex) != NULL;
}

int lp_gc_copies(lp_catalog *c, const char *cache, int dry_run, lp_gc_result *out, char *err,
                 size_t errsz) {
  hashset refs;
  int rc;
  memset(out, 0, sizeof *out);
  memset(&refs, 0, sizeof refs);
  if ((rc = lp_catalog_begin_alone(c, err, errsz)) != LUPINE_OK) return rc;
  if ((rc = lp_catalog_each_file_hash(c, add_ref, &refs, err, errsz)) != LUPINE_OK) {
    if (refs.nomem) lp_errf(err, errsz, "gc: out of memory listing referenced objects");
    goto done;
  }
  if (refs.n > 0) qsort(refs.hex, refs.n, sizeof *refs.hex, cmp_hex);
  if ((rc = lp_files_prune(cache, needed, &refs, dry_run, &out->objects, &out->bytes, err,
                           errsz)) != LUPINE_OK)
    goto done;
  rc = lp_catalog_commit(c, err, errsz);
done:
  if (rc != LUPINE_OK) lp_catalog_rollback(c);
  free(refs.hex);
  return rc;
}
