/* SPDX-License-Identifier: MIT */
/*
** frame.c: an object's frame: its hash, its checks, and decoding it whole
** or as it arrives.
**
** An object is one zstd frame of some bytes, named by the SHA-256 of the
** uncompressed bytes ("sha256:<hex>"). This file hashes bytes, checks
** hashes, and decodes frames with every check (the one reader of
** untrusted frames): whole when held in memory (lp_frame_decode, which the
** fuzz target feeds), or in pieces as they arrive (lp_frame_decoder, a
** store flavor's get_stream). Every store flavor calls it; it calls no
** store (store.c is the interface, store_local.c and store_s3.c the
** flavors).
*/
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>   /* OpenSSL_version */
#include <zstd.h>
#include "store_int.h"

int lp_frame_corrupt(char *err, size_t errsz, const char *hash, const char *fmt, ...) {
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

void lp_frame_format_hash(const unsigned char *md, unsigned int mdlen, char *out) {
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

const EVP_MD *lp_frame_sha256(void) {
  pthread_once(&sha256_once, fetch_sha256);
  return sha256_md;
}

/*
** Writes "" into out if OpenSSL fails (out of memory, in practice): the
** store's callers report it, and "" matches no object.
*/
void lp_frame_hash_bytes(const void *data, size_t len, char *out) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen;
  if (EVP_Digest(data, len, md, &mdlen, lp_frame_sha256(), NULL) != 1) {
    out[0] = '\0';
    return;
  }
  lp_frame_format_hash(md, mdlen, out);
}

int lp_frame_hash(const void *data, size_t len, char *out, char *err, size_t errsz) {
  lp_frame_hash_bytes(data, len, out);
  if (out[0] != '\0') return LUPINE_OK;
  lp_errf(err, errsz, "cannot hash %zu bytes (OpenSSL's SHA-256 failed)", len);
  return LUPINE_ERROR;
}

int lp_frame_valid_hash(const char *h) {
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
int lp_frame_decode(const void *frame, size_t frame_len, uint64_t max_size,
                    const char *want_hash, unsigned char **data, size_t *len, char *err,
                    size_t errsz) {
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
    return lp_frame_corrupt(err, errsz, want_hash, "not a zstd frame (bad magic number)");
  n = ZSTD_findFrameCompressedSize(frame, frame_len);
  if (ZSTD_isError(n))
    return lp_frame_corrupt(err, errsz, want_hash, "bad frame (%s)", ZSTD_getErrorName(n));
  if (n != frame_len)
    return lp_frame_corrupt(err, errsz, want_hash, "%zu bytes of trailing data after "
                            "the frame", frame_len - n);
  claimed = ZSTD_getFrameContentSize(frame, frame_len);
  if (claimed == ZSTD_CONTENTSIZE_UNKNOWN || claimed == ZSTD_CONTENTSIZE_ERROR)
    return lp_frame_corrupt(err, errsz, want_hash, "frame does not record its content size");
  if (claimed > max_size)
    return lp_frame_corrupt(err, errsz, want_hash, "frame claims %llu bytes, more than "
                            "the %llu expected", claimed, (unsigned long long)max_size);
  if ((out = malloc(claimed > 0 ? (size_t)claimed : 1)) == NULL) {
    lp_errf(err, errsz, "out of memory decompressing %llu bytes", claimed);
    return LUPINE_NOMEM;
  }
  n = ZSTD_decompress(out, (size_t)claimed, frame, frame_len);
  if (ZSTD_isError(n))
    rc = lp_frame_corrupt(err, errsz, want_hash, "bad frame (%s)", ZSTD_getErrorName(n));
  else if (n != claimed)
    rc = lp_frame_corrupt(err, errsz, want_hash, "frame holds %zu bytes, not the %llu "
                          "it claims", n, claimed);
  else if (want_hash == NULL)
    rc = LUPINE_OK;
  else if ((rc = lp_frame_hash(out, n, got, err, errsz)) == LUPINE_OK &&
           strcmp(got, want_hash) != 0)
    rc = lp_frame_corrupt(err, errsz, want_hash, "its content hashes to %s", got);
  if (rc != LUPINE_OK) {
    free(out);
    return rc;
  }
  *data = out;
  *len = n;
  return LUPINE_OK;
}

/* ---- hashing beside other work (large objects) ---- */

/*
** A helper thread hashes each piece while its caller works on the same
** piece (compresses it, writes it), then the caller waits for it: the
** piece is the caller's again. It lives from start to stop, inside one
** put or read (no state outlives the call).
*/
struct lp_frame_hasher {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  EVP_MD_CTX *sha;         /* the writer's */
  const void *p;           /* the piece to hash */
  size_t n;
  int busy, quit;
};

static void *hasher_run(void *ud) {
  lp_frame_hasher *h = ud;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    while (!h->busy && !h->quit) pthread_cond_wait(&h->cv, &h->mu);
    if (!h->busy) break;   /* quit, nothing left */
    pthread_mutex_unlock(&h->mu);
    EVP_DigestUpdate(h->sha, h->p, h->n);
    pthread_mutex_lock(&h->mu);
    h->busy = 0;
    pthread_cond_broadcast(&h->cv);
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

lp_frame_hasher *lp_frame_hasher_start(EVP_MD_CTX *sha) {
  lp_frame_hasher *h = calloc(1, sizeof *h);
  if (h == NULL) return NULL;
  h->sha = sha;
  if (pthread_mutex_init(&h->mu, NULL) != 0) goto fail;
  if (pthread_cond_init(&h->cv, NULL) != 0) {
    pthread_mutex_destroy(&h->mu);
    goto fail;
  }
  if (pthread_create(&h->thread, NULL, hasher_run, h) == 0) return h;
  pthread_cond_destroy(&h->cv);
  pthread_mutex_destroy(&h->mu);
fail:
  free(h);
  return NULL;
}

void lp_frame_hasher_hash(lp_frame_hasher *h, const void *p, size_t n) {
  pthread_mutex_lock(&h->mu);
  h->p = p;
  h->n = n;
  h->busy = 1;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

void lp_frame_hasher_wait(lp_frame_hasher *h) {
  pthread_mutex_lock(&h->mu);
  while (h->busy) pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
}

void lp_frame_hasher_stop(lp_frame_hasher *h) {
  if (h == NULL) return;
  pthread_mutex_lock(&h->mu);
  h->quit = 1;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
  pthread_join(h->thread, NULL);
  pthread_cond_destroy(&h->cv);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

/* ---- decoding a frame as it arrives (a flavor's get_stream) ---- */

struct lp_frame_decoder {
  const char *hash;       /* the caller's, alive until finish */
  uint64_t size, total;
  lp_store_sink sink;
  void *ud;
  EVP_MD_CTX *sha;
  lp_frame_hasher *hasher;   /* hashes beside the sink (large objects), or NULL */
  ZSTD_DCtx *dctx;
  unsigned char *out;
  size_t outcap, left;    /* left: what zstd still expects (0: the frame ended) */
  int at_most;            /* size is a bound, not the size (lp_frame_decoder_at_most) */
};

void lp_frame_decoder_free(lp_frame_decoder *d) {
  if (d == NULL) return;
  lp_frame_hasher_stop(d->hasher);
  EVP_MD_CTX_free(d->sha);
  ZSTD_freeDCtx(d->dctx);
  free(d->out);
  free(d);
}

int lp_frame_decoder_open(lp_frame_decoder **out, const char *hash, uint64_t size,
                          lp_store_sink sink, void *ud, char *err, size_t errsz) {
  lp_frame_decoder *d = calloc(1, sizeof *d);
  /* a large object: pieces of 1 MiB, each hashed while the sink takes it */
  size_t outcap = size >= LP_FRAME_HASHER_MIN ? 1u << 20 : ZSTD_DStreamOutSize();
  *out = NULL;
  if (d == NULL || (d->sha = EVP_MD_CTX_new()) == NULL || (d->dctx = ZSTD_createDCtx()) == NULL ||
      (d->out = malloc(outcap)) == NULL ||
      EVP_DigestInit_ex(d->sha, lp_frame_sha256(), NULL) != 1) {
    lp_frame_decoder_free(d);
    lp_errf(err, errsz, "out of memory reading object %s", hash);
    return LUPINE_NOMEM;
  }
  d->hash = hash;
  d->size = size;
  d->sink = sink;
  d->ud = ud;
  d->outcap = outcap;
  d->left = 1;
  if (size >= LP_FRAME_HASHER_MIN) d->hasher = lp_frame_hasher_start(d->sha);
  *out = d;
  return LUPINE_OK;
}

int lp_frame_decoder_feed(lp_frame_decoder *d, const void *p, size_t n, char *err,
                          size_t errsz) {
  ZSTD_inBuffer ib = {p, n, 0};
  int rc;
  while (ib.pos < ib.size) {
    ZSTD_outBuffer ob = {d->out, d->outcap, 0};
    d->left = ZSTD_decompressStream(d->dctx, &ob, &ib);
    if (ZSTD_isError(d->left))
      return lp_frame_corrupt(err, errsz, d->hash, "%s", ZSTD_getErrorName(d->left));
    if ((d->total += ob.pos) > d->size)
      return lp_frame_corrupt(err, errsz, d->hash, "it holds more than the %llu bytes recorded",
                              (unsigned long long)d->size);
    if (ob.pos == 0) continue;
    if (d->hasher == NULL) EVP_DigestUpdate(d->sha, d->out, ob.pos);
    else lp_frame_hasher_hash(d->hasher, d->out, ob.pos);
    rc = d->sink != NULL && d->sink(d->ud, d->out, ob.pos) != 0;
    if (d->hasher != NULL) lp_frame_hasher_wait(d->hasher);
    if (rc) return LUPINE_ERROR;   /* the sink's own message is in err */
  }
  return LUPINE_OK;
}

void lp_frame_decoder_at_most(lp_frame_decoder *d) {
  d->at_most = 1;
}

int lp_frame_decoder_finish(lp_frame_decoder *d, char *err, size_t errsz) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen;
  char got[LP_HASH_STRLEN + 1];
  if (d->left != 0 || (d->total != d->size && !d->at_most))
    return lp_frame_corrupt(err, errsz, d->hash, "it ends early (%llu of %llu bytes)",
                            (unsigned long long)d->total, (unsigned long long)d->size);
  EVP_DigestFinal_ex(d->sha, md, &mdlen);
  lp_frame_format_hash(md, mdlen, got);
  if (strcmp(got, d->hash) != 0)
    return lp_frame_corrupt(err, errsz, d->hash, "its content hashes to %s", got);
  return LUPINE_OK;
}

const char *lp_frame_zstd_version(void) {
  return ZSTD_versionString();
}

const char *lp_frame_openssl_version(void) {
#ifdef OPENSSL_VERSION_STRING
  return OpenSSL_version(OPENSSL_VERSION_STRING);   /* "3.0.11" */
#else
  return OpenSSL_version(OPENSSL_VERSION);          /* "OpenSSL 1.1.1w  11 Sep 2023" */
#endif
}
