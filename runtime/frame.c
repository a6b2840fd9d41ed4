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

/* ---- a frame of raw blocks: bytes that do not compress ---- */

#define RAW_BLOCK (128u << 10)   /* the largest block a frame may hold */
#define SAMPLES 16               /* pieces of a value tried (lp_frame_incompressible) */
#define SAMPLE (64u << 10)
_Static_assert(SAMPLES * SAMPLE == LP_FRAME_SAMPLED, "the sample is LP_FRAME_SAMPLED bytes");

/* XXH64 (seed 0), the content checksum a zstd frame ends with: libzstd
** has it inside but does not export it. */
#define XP1 11400714785074694791ULL
#define XP2 14029467366897019727ULL
#define XP3 1609587929392839161ULL
#define XP4 9650029242287828579ULL
#define XP5 2870177450012600261ULL

static uint64_t rotl64(uint64_t x, int r) {
  return x << r | x >> (64 - r);
}

static uint64_t le64(const unsigned char *p) {
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
         (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
         (uint64_t)p[7] << 56;
}

static uint64_t xround(uint64_t acc, uint64_t in) {
  return rotl64(acc + in * XP2, 31) * XP1;
}

static uint64_t xmerge(uint64_t acc, uint64_t v) {
  return (acc ^ xround(0, v)) * XP1 + XP4;
}

/* XXH64 over bytes that come in pieces. */
typedef struct xxh {
  uint64_t v[4], total;
  unsigned char mem[32];
  size_t memsize;
} xxh;

static void xxh_init(xxh *x) {
  x->v[0] = XP1 + XP2;
  x->v[1] = XP2;
  x->v[2] = 0;
  x->v[3] = 0 - XP1;
  x->total = 0;
  x->memsize = 0;
}

static void xxh_stripe(xxh *x, const unsigned char *b) {
  x->v[0] = xround(x->v[0], le64(b));
  x->v[1] = xround(x->v[1], le64(b + 8));
  x->v[2] = xround(x->v[2], le64(b + 16));
  x->v[3] = xround(x->v[3], le64(b + 24));
}

static void xxh_update(xxh *x, const unsigned char *b, size_t n) {
  x->total += n;
  if (x->memsize + n < 32) {
    if (n > 0) memcpy(x->mem + x->memsize, b, n);
    x->memsize += n;
    return;
  }
  if (x->memsize > 0) {
    size_t k = 32 - x->memsize;
    memcpy(x->mem + x->memsize, b, k);
    xxh_stripe(x, x->mem);
    b += k;
    n -= k;
  }
  for (; n >= 32; b += 32, n -= 32) xxh_stripe(x, b);
  if (n > 0) memcpy(x->mem, b, n);
  x->memsize = n;
}

static uint64_t xxh_digest(const xxh *x) {
  const unsigned char *b = x->mem, *end = b + x->memsize;
  uint64_t h;
  if (x->total >= 32) {
    h = rotl64(x->v[0], 1) + rotl64(x->v[1], 7) + rotl64(x->v[2], 12) + rotl64(x->v[3], 18);
    h = xmerge(xmerge(xmerge(xmerge(h, x->v[0]), x->v[1]), x->v[2]), x->v[3]);
  } else h = XP5;
  h += x->total;
  for (; end - b >= 8; b += 8) h = rotl64(h ^ xround(0, le64(b)), 27) * XP1 + XP4;
  if (end - b >= 4) {
    h ^= ((uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 |
          (uint64_t)b[3] << 24) * XP1;
    h = rotl64(h, 23) * XP2 + XP3;
    b += 4;
  }
  for (; b < end; b++) h = rotl64(h ^ *b * XP5, 11) * XP1;
  h ^= h >> 33;
  h *= XP2;
  h ^= h >> 29;
  h *= XP3;
  return h ^ h >> 32;
}

static void put_le(unsigned char *p, uint64_t v, int n) {
  int i;
  for (i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A raw block's 3-byte header: type 0 (raw), its size, whether it is the last. */
static void raw_block(unsigned char b[3], uint64_t size, int last) {
  put_le(b, size << 3 | (uint64_t)(last != 0), 3);
}

/* A raw frame's header for total bytes of content into head: its size. */
static size_t raw_head(unsigned char head[14], uint64_t total) {
  int wide = total > 0xffffffffu;
  put_le(head, ZSTD_MAGICNUMBER, 4);
  /* the content size's field (4 or 8 bytes) and a checksum; a window of
  ** one block (2^17: exponent 7), which raw blocks never look back past */
  head[4] = (unsigned char)((wide ? 3 : 2) << 6 | 1 << 2);
  head[5] = 7 << 3;
  put_le(head + 6, total, wide ? 8 : 4);
  return wide ? 14 : 10;
}

void lp_frame_raw_init(lp_frame_raw *f, const void *head, size_t hlen, const void *data,
                       size_t len, EVP_MD_CTX *sha) {
  uint64_t total = (uint64_t)hlen + len;
  uint64_t nblocks = total == 0 ? 1 : (total + RAW_BLOCK - 1) / RAW_BLOCK;
  uint64_t last = total - (nblocks - 1) * RAW_BLOCK, off, end;
  const unsigned char *p;
  size_t n;
  xxh x;
  f->part[0] = head;
  f->part[1] = data;
  f->partlen[0] = hlen;
  f->partlen[1] = len;
  f->len = total;
  f->nblocks = nblocks;
  f->headsz = raw_head(f->head, total);
  raw_block(f->block, RAW_BLOCK, 0);
  raw_block(f->last, last, 1);
  f->size = f->headsz + 3 * nblocks + total + 4;
  /* one pass, a block at a time: checksummed, then hashed while in cache */
  xxh_init(&x);
  if (sha != NULL) EVP_DigestUpdate(sha, f->head, f->headsz);
  for (off = f->headsz, end = f->size - 4; off < end; off += n) {
    n = lp_frame_raw_at(f, off, &p);
    if ((off - f->headsz) % (3 + RAW_BLOCK) >= 3) xxh_update(&x, p, n);   /* not a block's header */
    if (sha != NULL) EVP_DigestUpdate(sha, p, n);
  }
  put_le(f->sum, xxh_digest(&x), 4);
  if (sha != NULL) EVP_DigestUpdate(sha, f->sum, 4);
}

size_t lp_frame_raw_at(const lp_frame_raw *f, uint64_t off, const unsigned char **p) {
  uint64_t k, in, at, left, body = 3 * f->nblocks + f->len;
  int i;
  if (off < f->headsz) {
    *p = f->head + off;
    return f->headsz - (size_t)off;
  }
  off -= f->headsz;
  if (off >= body) {
    if (off - body >= 4) return 0;
    *p = f->sum + (off - body);
    return 4 - (size_t)(off - body);
  }
  k = off / (3 + RAW_BLOCK);
  in = off % (3 + RAW_BLOCK);
  if (in < 3) {
    *p = (k + 1 == f->nblocks ? f->last : f->block) + in;
    return 3 - (size_t)in;
  }
  /* content: up to the block's end, within one part */
  at = k * RAW_BLOCK + (in - 3);
  left = (k + 1 == f->nblocks ? f->len - k * RAW_BLOCK : RAW_BLOCK) - (in - 3);
  i = at >= f->partlen[0];
  if (i) at -= f->partlen[0];
  *p = (const unsigned char *)f->part[i] + at;
  return (size_t)(left < f->partlen[i] - at ? left : f->partlen[i] - at);
}

struct lp_frame_raw_stream {
  uint64_t len, done;    /* the content's bytes: announced, passed on */
  int started;
  xxh sum;
};

lp_frame_raw_stream *lp_frame_raw_stream_new(uint64_t len) {
  lp_frame_raw_stream *f = calloc(1, sizeof *f);
  if (f == NULL) return NULL;
  f->len = len;
  xxh_init(&f->sum);
  return f;
}

void lp_frame_raw_stream_free(lp_frame_raw_stream *f) {
  free(f);
}

/* The header of the block that starts at f->done. */
static int raw_block_head(lp_frame_raw_stream *f, lp_store_sink emit, void *ud) {
  unsigned char b[3];
  uint64_t left = f->len - f->done;
  raw_block(b, left > RAW_BLOCK ? RAW_BLOCK : left, left <= RAW_BLOCK);
  return emit(ud, b, 3);
}

static int raw_start(lp_frame_raw_stream *f, lp_store_sink emit, void *ud) {
  unsigned char head[14];
  f->started = 1;
  return emit(ud, head, raw_head(head, f->len));
}

int lp_frame_raw_stream_write(lp_frame_raw_stream *f, const void *p, size_t n,
                              lp_store_sink emit, void *ud) {
  const unsigned char *q = p;
  if (!f->started && raw_start(f, emit, ud) != 0) return -1;
  while (n > 0) {
    size_t in = (size_t)(f->done % RAW_BLOCK), k = RAW_BLOCK - in;
    if (in == 0 && raw_block_head(f, emit, ud) != 0) return -1;
    if (k > n) k = n;
    xxh_update(&f->sum, q, k);
    if (emit(ud, q, k) != 0) return -1;
    f->done += k;
    q += k;
    n -= k;
  }
  return 0;
}

int lp_frame_raw_stream_end(lp_frame_raw_stream *f, lp_store_sink emit, void *ud) {
  unsigned char sum[4];
  if (!f->started && raw_start(f, emit, ud) != 0) return -1;
  if (f->len == 0 && raw_block_head(f, emit, ud) != 0) return -1;   /* one empty block */
  put_le(sum, xxh_digest(&f->sum), 4);
  return emit(ud, sum, 4);
}

int lp_frame_incompressible(const void *data, size_t len, int level) {
  const unsigned char *p = data;
  unsigned char *out;
  size_t cap = ZSTD_compressBound(SAMPLE), i, n;
  ZSTD_CCtx *cctx;
  int raw = 1;
  if (len < LP_FRAME_SAMPLED) return 0;
  if ((out = malloc(cap)) == NULL || (cctx = ZSTD_createCCtx()) == NULL) {
    free(out);
    return 0;   /* compress it, then: the frame is right either way */
  }
  for (i = 0; i < SAMPLES && raw; i++) {
    n = ZSTD_compressCCtx(cctx, out, cap, p + (len - SAMPLE) / (SAMPLES - 1) * i, SAMPLE, level);
    raw = !ZSTD_isError(n) && n > SAMPLE - SAMPLE / 32;
  }
  ZSTD_freeCCtx(cctx);
  free(out);
  return raw;
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
  unsigned char *out;     /* decoded bytes gathered up to outcap, then handed on */
  unsigned char *spare;   /* with a hasher: the piece it may still be hashing */
  size_t outcap, filled;
  unsigned char *dest;    /* or the whole content decodes here (lp_frame_decoder_into) */
  size_t *destlen, hashed;   /* how much dest holds, and of it was handed to the hash */
  size_t left;            /* what zstd still expects (0: the frame ended) */
  int at_most;            /* size is a bound, not the size (lp_frame_decoder_at_most) */
};

void lp_frame_decoder_free(lp_frame_decoder *d) {
  if (d == NULL) return;
  lp_frame_hasher_stop(d->hasher);
  EVP_MD_CTX_free(d->sha);
  ZSTD_freeDCtx(d->dctx);
  free(d->out);
  free(d->spare);
  free(d);
}

int lp_frame_decoder_open(lp_frame_decoder **out, const char *hash, uint64_t size,
                          lp_store_sink sink, void *ud, char *err, size_t errsz) {
  lp_frame_decoder *d = calloc(1, sizeof *d);
  /* a large object: pieces of 1 MiB, hashed while the sink takes them (see flush) */
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
  if (size >= LP_FRAME_HASHER_MIN && (d->spare = malloc(outcap)) != NULL)
    d->hasher = lp_frame_hasher_start(d->sha);   /* else (no memory, no thread) inline */
  *out = d;
  return LUPINE_OK;
}

/* A piece to the hash: inline, or on the hasher once it has done the
** piece before (which stays untouched until then). */
static void hash_piece(lp_frame_decoder *d, const unsigned char *p, size_t n) {
  if (d->hasher == NULL) EVP_DigestUpdate(d->sha, p, n);
  else {
    lp_frame_hasher_wait(d->hasher);
    lp_frame_hasher_hash(d->hasher, p, n);
  }
}

/*
** Hand what out holds to the hash and the sink. With a hasher, the piece
** is hashed while the sink takes it and while the next piece decodes into
** the spare buffer: the hasher is waited for only before it takes another
** (and at finish), so hashing and decoding overlap.
*/
static int flush(lp_frame_decoder *d) {
  unsigned char *piece = d->out;
  size_t n = d->filled;
  if (n == 0) return LUPINE_OK;
  hash_piece(d, piece, n);
  if (d->hasher != NULL) {   /* the next piece decodes into the other buffer */
    d->out = d->spare;
    d->spare = piece;
  }
  d->filled = 0;
  if (d->sink != NULL && d->sink(d->ud, piece, n) != 0)
    return LUPINE_ERROR;   /* the sink's own message is in err */
  return LUPINE_OK;
}

void lp_frame_decoder_into(lp_frame_decoder *d, void *buf, size_t *len) {
  d->dest = buf;
  d->destlen = len;
  *len = 0;
}

/* What dest holds that the hash has not had: handed on once there is a
** piece of outcap bytes (or at the end), hashed beside the decoding of
** what follows (the bytes stay where they are). */
static void hash_dest(lp_frame_decoder *d, int end) {
  size_t n = (size_t)d->total - d->hashed;
  if (n == 0 || (n < d->outcap && !end)) return;
  hash_piece(d, d->dest + d->hashed, n);
  d->hashed += n;
}

/* The whole content into dest: no copy after zstd's. */
static int feed_dest(lp_frame_decoder *d, ZSTD_inBuffer *ib, char *err, size_t errsz) {
  while (ib->pos < ib->size) {
    ZSTD_outBuffer ob = {d->dest, (size_t)d->size, (size_t)d->total};
    size_t was = ib->pos;
    d->left = ZSTD_decompressStream(d->dctx, &ob, ib);
    if (ZSTD_isError(d->left))
      return lp_frame_corrupt(err, errsz, d->hash, "%s", ZSTD_getErrorName(d->left));
    if (ob.pos == d->total && ib->pos == was)   /* no room left, and more to come */
      return lp_frame_corrupt(err, errsz, d->hash, "it holds more than the %llu bytes recorded",
                              (unsigned long long)d->size);
    d->total = *d->destlen = ob.pos;
    hash_dest(d, 0);
  }
  return LUPINE_OK;
}

/*
** Decoded bytes go on only once out is full (or at finish): a download
** arrives in pieces of tens of KiB, and each hand-over to the hashing
** thread costs two wake-ups; 1 GiB in 64 KiB pieces spent a fifth of its
** time in them.
*/
int lp_frame_decoder_feed(lp_frame_decoder *d, const void *p, size_t n, char *err,
                          size_t errsz) {
  ZSTD_inBuffer ib = {p, n, 0};
  int full;
  if (d->dest != NULL) return feed_dest(d, &ib, err, errsz);
  do {
    ZSTD_outBuffer ob = {d->out, d->outcap, d->filled};
    d->left = ZSTD_decompressStream(d->dctx, &ob, &ib);
    if (ZSTD_isError(d->left))
      return lp_frame_corrupt(err, errsz, d->hash, "%s", ZSTD_getErrorName(d->left));
    if ((d->total += ob.pos - d->filled) > d->size)
      return lp_frame_corrupt(err, errsz, d->hash, "it holds more than the %llu bytes recorded",
                              (unsigned long long)d->size);
    d->filled = ob.pos;
    /* full: zstd may hold more of a block, which comes on the next turn
    ** (unless the frame ended: then it would read the start of another) */
    if ((full = d->filled == d->outcap) && flush(d) != LUPINE_OK) return LUPINE_ERROR;
  } while (ib.pos < ib.size || (full && d->left != 0));
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
  if (d->dest != NULL) hash_dest(d, 1);
  else if (flush(d) != LUPINE_OK) return LUPINE_ERROR;
  if (d->hasher != NULL) lp_frame_hasher_wait(d->hasher);
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
