/* SPDX-License-Identifier: MIT */
/*
** store.c: the artifact store's interface, and what its flavors share.
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
** ops on libcurl and keeps a local flavor as its read cache.
**
** Also here, the parts every flavor shares: hashing, and decoding a frame
** held in memory with its checks (the one reader of untrusted frames).
*/
#define _POSIX_C_SOURCE 200809L   /* PATH_MAX */

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>   /* OpenSSL_version */
#include <zstd.h>
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

void lp_store_replaced(lp_store *s, const char *why) {
  char msg[LP_ERRSZ + PATH_MAX + 64];
  if (s->log == NULL) return;
  snprintf(msg, sizeof msg, "store '%s': %s; replaced it with the bytes being saved", s->root,
           why);
  s->log(s->log_ud, msg);
}

/* A malformed hash never reaches a flavor: it could name a path. */
static int malformed(const char *hash, char *err, size_t errsz) {
  lp_errf(err, errsz, "malformed object hash '%.80s' (expected %s and %d lowercase hex digits)",
          hash, LP_HASH_PREFIX, LP_HASH_HEXLEN);
  return LUPINE_MISUSE;
}

int lp_store_put(lp_store *s, const void *data, size_t len, lp_object *info,
                 char *err, size_t errsz) {
  return s->ops->put(s, data, len, info, 1, err, errsz);
}

int lp_store_put_unsynced(lp_store *s, const void *data, size_t len, lp_object *info,
                          char *err, size_t errsz) {
  return s->ops->put(s, data, len, info, 0, err, errsz);
}

int lp_store_sync(lp_store *s, char *err, size_t errsz) {
  return s->ops->sync(s, err, errsz);
}

int lp_store_keep(lp_store *s, const void *data, size_t len, lp_object *info,
                  char *err, size_t errsz) {
  if (lp_store_exists(s, info->hash)) return LUPINE_OK;
  return lp_store_put(s, data, len, info, err, errsz);
}

int lp_store_get(lp_store *s, const char *hash, uint64_t max_size,
                 unsigned char **data, size_t *len, char *err, size_t errsz) {
  *data = NULL;
  *len = 0;
  if (!lp_store_valid_hash(hash)) return malformed(hash, err, errsz);
  return s->ops->get(s, hash, max_size, data, len, err, errsz);
}

int lp_store_get_stream(lp_store *s, const char *hash, uint64_t size, lp_store_sink sink,
                  void *ud, char *err, size_t errsz) {
  if (!lp_store_valid_hash(hash)) return malformed(hash, err, errsz);
  return s->ops->get_stream(s, hash, size, sink, ud, err, errsz);
}

int lp_store_exists(lp_store *s, const char *hash) {
  return lp_store_valid_hash(hash) && s->ops->exists(s, hash);
}

int lp_store_list(lp_store *s, lp_store_object_fn fn, void *ud,
                         char *err, size_t errsz) {
  return s->ops->list(s, fn, ud, err, errsz);
}

int lp_store_remove(lp_store *s, const char *hash, int *removed, char *err, size_t errsz) {
  *removed = 0;
  if (!lp_store_valid_hash(hash)) return malformed(hash, err, errsz);
  return s->ops->remove(s, hash, removed, err, errsz);
}

int lp_store_local_path(lp_store *s, const char *hash, char *buf, size_t bufsz) {
  if (!lp_store_valid_hash(hash)) return LUPINE_MISUSE;
  return s->ops->local_path(s, hash, buf, bufsz);
}

int lp_store_uri(lp_store *s, const char *hash, char *buf, size_t bufsz) {
  if (!lp_store_valid_hash(hash)) return LUPINE_MISUSE;
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

/* ---- shared by the flavors ---- */

int lp_store_corrupt(char *err, size_t errsz, const char *hash, const char *fmt, ...) {
  char why[LP_ERRSZ];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (hash != NULL)
    lp_errf(err, errsz, "object %s is corrupt: %s", hash, why);
  else
    lp_errf(err, errsz, "frame is corrupt: %s", why);
  return LUPINE_CORRUPT;
}

void lp_store_format_hash(const unsigned char *md, unsigned int mdlen, char *out) {
  static const char hex[] = "0123456789abcdef";
  unsigned int i;
  char *p = out + sizeof LP_HASH_PREFIX - 1;
  memcpy(out, LP_HASH_PREFIX, sizeof LP_HASH_PREFIX - 1);
  for (i = 0; i < mdlen; i++) {
    *p++ = hex[md[i] >> 4];
    *p++ = hex[md[i] & 15];
  }
  *p = '\0';
}

/* Given EVP_sha256() instead, every digest fetches SHA-256 again, which
** costs more than hashing a few hundred bytes. Set once, then only read. */
static const EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void) {
  sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
  if (sha256_md == NULL) sha256_md = EVP_sha256();
}

const EVP_MD *lp_store_sha256(void) {
  pthread_once(&sha256_once, fetch_sha256);
  return sha256_md;
}

/*
** Writes "" into out if OpenSSL fails (out of memory, in practice): the
** store's callers report it, and "" matches no object.
*/
void lp_store_hash_bytes(const void *data, size_t len, char *out) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen;
  if (EVP_Digest(data, len, md, &mdlen, lp_store_sha256(), NULL) != 1) {
    out[0] = '\0';
    return;
  }
  lp_store_format_hash(md, mdlen, out);
}

int lp_store_hash(const void *data, size_t len, char *out, char *err, size_t errsz) {
  lp_store_hash_bytes(data, len, out);
  if (out[0] != '\0') return LUPINE_OK;
  lp_errf(err, errsz, "cannot hash %zu bytes (OpenSSL's SHA-256 failed)", len);
  return LUPINE_ERROR;
}

int lp_store_valid_hash(const char *h) {
  size_t i, n = sizeof LP_HASH_PREFIX - 1;
  if (strncmp(h, LP_HASH_PREFIX, n) != 0 || strlen(h) != LP_HASH_STRLEN)
    return 0;
  for (i = n; i < LP_HASH_STRLEN; i++)
    if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
      return 0;
  return 1;
}

/*
** Arbitrary bytes may arrive here (the fuzz target feeds them): accept
** exactly one zstd frame that records its content size, and allocate only
** once that size is known to be within max_size.
*/
int lp_store_decode_frame(const void *frame, size_t frame_len, uint64_t max_size,
                          const char *want_hash, unsigned char **data,
                          size_t *len, char *err, size_t errsz) {
  const unsigned char *p = frame;
  char got[LP_HASH_STRLEN + 1];
  unsigned long long claimed;
  unsigned char *out;
  size_t n;
  int rc;

  *data = NULL;
  *len = 0;
  /* Skippable and legacy frames are not something a put writes. */
  if (frame_len < 4 || ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                        (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24)
                       != ZSTD_MAGICNUMBER)
    return lp_store_corrupt(err, errsz, want_hash, "not a zstd frame (bad magic number)");
  n = ZSTD_findFrameCompressedSize(frame, frame_len);
  if (ZSTD_isError(n))
    return lp_store_corrupt(err, errsz, want_hash, "bad frame (%s)", ZSTD_getErrorName(n));
  if (n != frame_len)
    return lp_store_corrupt(err, errsz, want_hash, "%zu bytes of trailing data after "
                            "the frame", frame_len - n);
  claimed = ZSTD_getFrameContentSize(frame, frame_len);
  if (claimed == ZSTD_CONTENTSIZE_UNKNOWN || claimed == ZSTD_CONTENTSIZE_ERROR)
    return lp_store_corrupt(err, errsz, want_hash, "frame does not record its content size");
  if (claimed > max_size)
    return lp_store_corrupt(err, errsz, want_hash, "frame claims %llu bytes, more than "
                            "the %llu expected", claimed, (unsigned long long)max_size);
  if ((out = malloc(claimed > 0 ? (size_t)claimed : 1)) == NULL) {
    lp_errf(err, errsz, "out of memory decompressing %llu bytes", claimed);
    return LUPINE_NOMEM;
  }
  n = ZSTD_decompress(out, (size_t)claimed, frame, frame_len);
  if (ZSTD_isError(n))
    rc = lp_store_corrupt(err, errsz, want_hash, "bad frame (%s)", ZSTD_getErrorName(n));
  else if (n != claimed)
    rc = lp_store_corrupt(err, errsz, want_hash, "frame holds %zu bytes, not the %llu "
                          "it claims", n, claimed);
  else if (want_hash == NULL)
    rc = LUPINE_OK;
  else if ((rc = lp_store_hash(out, n, got, err, errsz)) == LUPINE_OK &&
           strcmp(got, want_hash) != 0)
    rc = lp_store_corrupt(err, errsz, want_hash, "its content hashes to %s", got);
  if (rc != LUPINE_OK) {
    free(out);
    return rc;
  }
  *data = out;
  *len = n;
  return LUPINE_OK;
}

/* ---- decoding a frame as it arrives (the flavors' get_stream) ---- */

struct lp_store_decoder {
  const char *hash;       /* the caller's, alive until finish */
  uint64_t size, total;
  lp_store_sink sink;
  void *ud;
  EVP_MD_CTX *sha;
  ZSTD_DCtx *dctx;
  unsigned char *out;
  size_t outcap, left;    /* left: what zstd still expects (0: the frame ended) */
};

void lp_store_decoder_free(lp_store_decoder *d) {
  if (d == NULL) return;
  EVP_MD_CTX_free(d->sha);
  ZSTD_freeDCtx(d->dctx);
  free(d->out);
  free(d);
}

int lp_store_decoder_open(lp_store_decoder **out, const char *hash, uint64_t size,
                          lp_store_sink sink, void *ud, char *err, size_t errsz) {
  lp_store_decoder *d = calloc(1, sizeof *d);
  *out = NULL;
  if (d == NULL || (d->sha = EVP_MD_CTX_new()) == NULL || (d->dctx = ZSTD_createDCtx()) == NULL ||
      (d->out = malloc(ZSTD_DStreamOutSize())) == NULL ||
      EVP_DigestInit_ex(d->sha, lp_store_sha256(), NULL) != 1) {
    lp_store_decoder_free(d);
    lp_errf(err, errsz, "out of memory reading object %s", hash);
    return LUPINE_NOMEM;
  }
  d->hash = hash;
  d->size = size;
  d->sink = sink;
  d->ud = ud;
  d->outcap = ZSTD_DStreamOutSize();
  d->left = 1;
  *out = d;
  return LUPINE_OK;
}

int lp_store_decoder_feed(lp_store_decoder *d, const void *p, size_t n, char *err,
                          size_t errsz) {
  ZSTD_inBuffer ib = {p, n, 0};
  while (ib.pos < ib.size) {
    ZSTD_outBuffer ob = {d->out, d->outcap, 0};
    d->left = ZSTD_decompressStream(d->dctx, &ob, &ib);
    if (ZSTD_isError(d->left))
      return lp_store_corrupt(err, errsz, d->hash, "%s", ZSTD_getErrorName(d->left));
    if ((d->total += ob.pos) > d->size)
      return lp_store_corrupt(err, errsz, d->hash, "it holds more than the %llu bytes recorded",
                              (unsigned long long)d->size);
    EVP_DigestUpdate(d->sha, d->out, ob.pos);
    if (ob.pos > 0 && d->sink != NULL && d->sink(d->ud, d->out, ob.pos) != 0)
      return LUPINE_ERROR;   /* the sink's own message is in err */
  }
  return LUPINE_OK;
}

int lp_store_decoder_finish(lp_store_decoder *d, char *err, size_t errsz) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen;
  char got[LP_HASH_STRLEN + 1];
  if (d->left != 0 || d->total != d->size)
    return lp_store_corrupt(err, errsz, d->hash, "it ends early (%llu of %llu bytes)",
                            (unsigned long long)d->total, (unsigned long long)d->size);
  EVP_DigestFinal_ex(d->sha, md, &mdlen);
  lp_store_format_hash(md, mdlen, got);
  if (strcmp(got, d->hash) != 0)
    return lp_store_corrupt(err, errsz, d->hash, "its content hashes to %s", got);
  return LUPINE_OK;
}

const char *lp_store_zstd_version(void) {
  return ZSTD_versionString();
}

const char *lp_store_openssl_version(void) {
#ifdef OPENSSL_VERSION_STRING
  return OpenSSL_version(OPENSSL_VERSION_STRING);   /* "3.0.11" */
#else
  return OpenSSL_version(OPENSSL_VERSION);          /* "OpenSSL 1.1.1w  11 Sep 2023" */
#endif
}
