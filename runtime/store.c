/* SPDX-License-Identifier: MIT */
/*
** store.c: the artifact store's interface.
**
** An object is one zstd frame of some bytes, named by the SHA-256 of the
** uncompressed bytes ("sha256:<hex>"). Every flavor keeps the same frames
** under the same relative names (objects/<first 2 hex>/<other 62 hex>.zst),
** so an object opens with plain `zstd -d` wherever it is kept.
**
** A store is a table of operations (lp_store_ops, store_int.h), one table
** per flavor, as SQLite's VFS is: the runtime calls the lp_store_*
** functions below, which check what every flavor would check and call the
** flavor's op. The operations:
**   put         hash, compress and write an object, all or nothing; an
**               existing intact object is kept, a damaged one replaced
**   sync        make unsynced puts durable (one call per group commit)
**   get         an object whole, in memory, its hash checked
**   get_stream  an object in pieces to a sink, its size and hash checked
**   exists      whether an object is there
**   list        every object, with its stored size (for gc)
**   remove      delete an object
**   local_path  a file on this machine holding the object's frame
**   uri         where the object is, for people (a path, s3://bucket/key)
**   writer_*    a put streamed in pieces (file and folder archives)
** The flavors: local (store_local.c, a folder) and s3 (store_s3.c, a
** bucket of any service speaking S3's protocol), which implements the same
** ops on libcurl and keeps a local flavor as its read cache. What every
** flavor shares about an object's frame (hashing, checks, decoding) is
** frame.c's.
*/
#include <string.h>
#include "store_int.h"

/* The flavors a store may be opened with, by name. */
static int open_local(lp_store **out, const char *location, const char *name,
                      const char *cache, char *err, size_t errsz) {
  (void)name, (void)cache;   /* a folder needs no cache, and names itself in messages */
  return lp_store_local_open(out, location, err, errsz);
}

static const struct {
  const lp_store_ops *ops;
  int (*open)(lp_store **out, const char *location, const char *name, const char *cache,
              char *err, size_t errsz);
} flavors[] = {
  {&lp_store_local_ops, open_local},
  {&lp_store_s3_ops, lp_store_s3_open},
};

int lp_store_open(lp_store **out, const char *flavor, const char *location, const char *name,
                  const char *cache, char *err, size_t errsz) {
  size_t i;
  *out = NULL;
  for (i = 0; i < sizeof flavors / sizeof *flavors; i++)
    if (strcmp(flavors[i].ops->flavor, flavor) == 0)
      return flavors[i].open(out, location, name, cache, err, errsz);
  lp_errf(err, errsz, "unknown store flavor '%s'", flavor);
  return LUPINE_MISUSE;
}

void lp_store_close(lp_store *s) {
  if (s != NULL) s->ops->close(s);
}

const char *lp_store_flavor(const lp_store *s) {
  return s->ops->flavor;
}

const char *lp_store_root(const lp_store *s) {
  return s->root;
}

void lp_store_set_log(lp_store *s, lp_store_log_fn fn, void *ud) {
  s->log = fn;
  s->log_ud = ud;
}

/* A malformed hash never reaches a flavor: it could name a path. */
static int malformed(const char *hash, char *err, size_t errsz) {
  lp_errf(err, errsz, "malformed object hash '%.80s' (expected %s and %d lowercase hex digits)",
          hash, LP_HASH_PREFIX, LP_HASH_HEXLEN);
  return LUPINE_MISUSE;
}

int lp_store_put_parts(lp_store *s, const void *head, size_t hlen, const void *data,
                       size_t len, lp_object *info, int sync, char *err, size_t errsz) {
  return s->ops->put(s, hlen > 0 ? head : NULL, hlen, data, len, info, sync, err, errsz);
}

int lp_store_put(lp_store *s, const void *data, size_t len, lp_object *info,
                 char *err, size_t errsz) {
  return lp_store_put_parts(s, NULL, 0, data, len, info, 1, err, errsz);
}

int lp_store_put_unsynced(lp_store *s, const void *data, size_t len, lp_object *info,
                          char *err, size_t errsz) {
  return lp_store_put_parts(s, NULL, 0, data, len, info, 0, err, errsz);
}

int lp_store_sync(lp_store *s, char *err, size_t errsz) {
  return s->ops->sync(s, err, errsz);
}

int lp_store_keep(lp_store *s, const void *head, size_t hlen, const void *data, size_t len,
                  lp_object *info, char *err, size_t errsz) {
  if (lp_store_exists(s, info->hash)) return LUPINE_OK;
  return lp_store_put_parts(s, head, hlen, data, len, info, 1, err, errsz);
}

int lp_store_get(lp_store *s, const char *hash, uint64_t max_size,
                 unsigned char **data, size_t *len, char *err, size_t errsz) {
  *data = NULL;
  *len = 0;
  if (!lp_frame_valid_hash(hash)) return malformed(hash, err, errsz);
  return s->ops->get(s, hash, max_size, data, len, err, errsz);
}

int lp_store_get_stream(lp_store *s, const char *hash, uint64_t size, lp_store_sink sink,
                  void *ud, char *err, size_t errsz) {
  if (!lp_frame_valid_hash(hash)) return malformed(hash, err, errsz);
  return s->ops->get_stream(s, hash, size, sink, ud, err, errsz);
}

int lp_store_exists(lp_store *s, const char *hash) {
  return lp_frame_valid_hash(hash) && s->ops->exists(s, hash);
}

int lp_store_list(lp_store *s, lp_store_object_fn fn, void *ud,
                         char *err, size_t errsz) {
  return s->ops->list(s, fn, ud, err, errsz);
}

int lp_store_remove(lp_store *s, const char *hash, int *removed, char *err, size_t errsz) {
  *removed = 0;
  if (!lp_frame_valid_hash(hash)) return malformed(hash, err, errsz);
  return s->ops->remove(s, hash, removed, err, errsz);
}

int lp_store_local_path(lp_store *s, const char *hash, char *buf, size_t bufsz) {
  if (!lp_frame_valid_hash(hash)) return LUPINE_MISUSE;
  return s->ops->local_path(s, hash, buf, bufsz);
}

int lp_store_uri(lp_store *s, const char *hash, char *buf, size_t bufsz) {
  if (!lp_frame_valid_hash(hash)) return LUPINE_MISUSE;
  return s->ops->uri(s, hash, buf, bufsz);
}

/* A writer without a store only hashes: the local flavor's writer does
** that (it is the one every build has). */
int lp_store_writer_open(lp_store *s, uint64_t size, lp_store_writer **out, char *err,
                         size_t errsz) {
  return (s != NULL ? s->ops : &lp_store_local_ops)->writer_open(s, size, out, err, errsz);
}

int lp_store_writer_write(lp_store_writer *w, const void *p, size_t n, char *err,
                          size_t errsz) {
  return w->ops->writer_write(w, p, n, err, errsz);
}

int lp_store_writer_close(lp_store_writer *w, lp_object *info, char *err, size_t errsz) {
  return w->ops->writer_close(w, info, err, errsz);
}

void lp_store_writer_abort(lp_store_writer *w) {
  if (w != NULL) w->ops->writer_abort(w);
}
