/* SPDX-License-Identifier: MIT */
/*
** store_int.h: what a store flavor implements (see store.c), and the
** frame functions every flavor shares (frame.c). Only the store's own
** files include it: the rest of the runtime sees an opaque lp_store
** through lupine_int.h.
*/
#ifndef LUPINE_STORE_INT_H
#define LUPINE_STORE_INT_H

#include <openssl/evp.h>
#include "lupine_int.h"

#if defined(__GNUC__)
#define LP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define LP_PRINTF(fmt, args)
#endif

/*
** A flavor's operations, one table per flavor (as SQLite's VFS): the
** functions of lupine_int.h's store section call these and nothing else.
** Each op has the contract of the lp_store_* function of the same name
** there; hashes reaching an op are not yet checked (lp_frame_valid_hash).
*/
typedef struct lp_store_ops {
  const char *flavor;   /* the name stacks register it under */
  void (*close)(lp_store *s);
  /* put: the object's bytes are head (hlen bytes; NULL if 0), then data
  ** (lp_store_put_parts); with sync 0, durable only after the sync op */
  int (*put)(lp_store *s, const void *head, size_t hlen, const void *data, size_t len,
             lp_object *info, int sync, char *err, size_t errsz);
  int (*sync)(lp_store *s, char *err, size_t errsz);
  int (*get)(lp_store *s, const char *hash, uint64_t max_size, unsigned char **data,
             size_t *len, char *err, size_t errsz);
  int (*get_stream)(lp_store *s, const char *hash, uint64_t size, lp_store_sink sink,
                    void *ud, char *err, size_t errsz);
  int (*exists)(lp_store *s, const char *hash);
  int (*list)(lp_store *s, lp_store_object_fn fn, void *ud, char *err, size_t errsz);
  int (*remove)(lp_store *s, const char *hash, int *removed, char *err, size_t errsz);
  /* a file holding the object's frame (a remote flavor: its local copy) */
  int (*local_path)(lp_store *s, const char *hash, char *buf, size_t bufsz);
  /* where the object is, for people: a local path, or s3://bucket/key */
  int (*uri)(lp_store *s, const char *hash, char *buf, size_t bufsz);
  /* streamed puts: the writer returned starts with its own ops pointer */
  int (*writer_open)(lp_store *s, uint64_t size, lp_store_writer **out, char *err,
                     size_t errsz);
  int (*writer_write)(lp_store_writer *w, const void *p, size_t n, char *err, size_t errsz);
  int (*writer_close)(lp_store_writer *w, lp_object *info, char *err, size_t errsz);
  void (*writer_abort)(lp_store_writer *w);
} lp_store_ops;

/* The part of every store the interface reads; a flavor's own struct
** starts with it. */
struct lp_store {
  const lp_store_ops *ops;
  const char *root;        /* where it is, for messages (owned by the flavor) */
  lp_store_log_fn log;     /* told of each damaged object replaced; may be NULL */
  void *log_ud;
};

/* The part of every writer the interface reads. */
struct lp_store_writer {
  const lp_store_ops *ops;
};

/* store_local.c: a folder on this machine (the default) */
extern const lp_store_ops lp_store_local_ops;
int lp_store_local_open(lp_store **out, const char *root, char *err, size_t errsz);
/* A local store used as a cache: streamed puts skip their syncs (a crash
** may lose a copy, never the original; a torn copy fails its checks). */
void lp_store_local_nosync(lp_store *s);
/* Write all n bytes to fd: 0, or -1 with errno set. */
int lp_store_local_write(int fd, const void *p, size_t n);
/* The frame a put of the store writes for len bytes (its level, the
** content size and checksum in it), in *frame (malloc'd, *n bytes):
** another flavor's objects are the same bytes. hash names it in messages
** (NULL: not known yet, the size does). */
int lp_store_local_compress(lp_store *s, const char *hash, const void *data, size_t len,
                            unsigned char **frame, size_t *n, char *err, size_t errsz);
/* The zstd level its puts compress at. */
int lp_store_local_level(const lp_store *s);
/* A local store an upload reads from (the s3 flavor's cache): its
** streamed puts of objects under below bytes also hash the frames they
** write, which S3 signs a PUT with, so the upload needs no pass over the
** file to hash it first (larger objects go up in parts, each hashed as it
** is read). */
void lp_store_local_hash_frames(lp_store *s, uint64_t below);
/* "sha256:<hex>" of the frame of the object named hash, if the last
** streamed put wrote it (not if it found it there); else NULL. */
const char *lp_store_local_frame_hash(lp_store *s, const char *hash);

/* store_s3.c: a bucket (and prefix) of a service that speaks S3; location
** is "s3://bucket/prefix[?endpoint=URL&region=R&path-style=1]", name the
** store's for messages, cache the folder of its read cache */
extern const lp_store_ops lp_store_s3_ops;
int lp_store_s3_open(lp_store **out, const char *location, const char *name, const char *cache,
                     char *err, size_t errsz);

/* ---- frame.c: an object's frame, for the store's flavors ---- */

/* SHA-256 from OpenSSL's providers, fetched once per process. */
const EVP_MD *lp_frame_sha256(void);
/* "sha256:<hex>" of a digest into out (LP_HASH_STRLEN + 1 bytes). */
void lp_frame_format_hash(const unsigned char *md, unsigned int mdlen, char *out);
/* lp_frame_hash_bytes (lupine_int.h), with a message when OpenSSL fails. */
int lp_frame_hash(const void *data, size_t len, char *out, char *err, size_t errsz);
/* "sha256:" and 64 lowercase hex digits, nothing else: no path tricks. */
int lp_frame_valid_hash(const char *h);
/* Refuse a frame, naming the object when its hash is known: LUPINE_CORRUPT. */
LP_PRINTF(4, 5) int lp_frame_corrupt(char *err, size_t errsz, const char *hash,
                                     const char *fmt, ...);
/*
** A frame of raw blocks: the bytes themselves in zstd's blocks (with the
** content size and checksum), for bytes that do not compress. Every
** reader reads it as any frame; it costs a pass to checksum, none to
** compress, and is never copied: lp_frame_raw_at gives its bytes at off,
** a pointer into the content or its own headers, and how many follow
** there (0 past its end, at size). Its content is head (hlen bytes; NULL
** if 0), then data; both must outlive it. init also feeds sha (if not
** NULL) the frame's bytes: its hash in the pass that checksums it.
*/
typedef struct lp_frame_raw {
  const void *part[2];
  size_t partlen[2];
  uint64_t len, nblocks, size;     /* len: the content's; size: the frame's */
  unsigned char head[14], block[3], last[3], sum[4];
  size_t headsz;
} lp_frame_raw;
void lp_frame_raw_init(lp_frame_raw *f, const void *head, size_t hlen, const void *data,
                       size_t len, EVP_MD_CTX *sha);
size_t lp_frame_raw_at(const lp_frame_raw *f, uint64_t off, const unsigned char **p);
/*
** A frame of raw blocks written as its content comes (a streamed put's,
** len bytes announced): write hands emit the frame's bytes for a piece of
** content (its header first, a block's header where one starts, then the
** content itself, not copied); end, once len bytes were written, the
** checksum. emit's non-zero return stops either (-1). new gives NULL
** without memory; free is NULL-safe.
*/
typedef struct lp_frame_raw_stream lp_frame_raw_stream;
lp_frame_raw_stream *lp_frame_raw_stream_new(uint64_t len);
int lp_frame_raw_stream_write(lp_frame_raw_stream *f, const void *p, size_t n,
                              lp_store_sink emit, void *ud);
int lp_frame_raw_stream_end(lp_frame_raw_stream *f, lp_store_sink emit, void *ud);
void lp_frame_raw_stream_free(lp_frame_raw_stream *f);
/* 1 if none of 16 pieces of 64 KiB spread over data saves 1/32 of its
** size compressed at level: bytes a frame of raw blocks should hold (0
** below LP_FRAME_SAMPLED bytes, where compressing costs little). */
#define LP_FRAME_SAMPLED (1u << 20)
int lp_frame_incompressible(const void *data, size_t len, int level);

/*
** Hashing beside other work, for objects of LP_FRAME_HASHER_MIN bytes or
** more: a helper thread updates sha with each piece handed to it while
** the caller works on the same piece; wait returns once it is hashed (one
** piece at a time). start gives NULL if no thread can start (hash inline
** then); stop joins it (NULL-safe).
*/
#define LP_FRAME_HASHER_MIN (8u << 20)
typedef struct lp_frame_hasher lp_frame_hasher;
lp_frame_hasher *lp_frame_hasher_start(EVP_MD_CTX *sha);
void lp_frame_hasher_hash(lp_frame_hasher *h, const void *p, size_t n);
void lp_frame_hasher_wait(lp_frame_hasher *h);
void lp_frame_hasher_stop(lp_frame_hasher *h);

/*
** A frame decoded as it arrives, in pieces of any size: each piece
** decompressed into the sink, the size and hash checked at the end (a
** flavor's get_stream, whatever its source). open: LUPINE_NOMEM or OK;
** feed: the sink's failure is LUPINE_ERROR with its message in err,
** corruption LUPINE_CORRUPT; finish: whether the frame ended, whole, and
** hashes to hash (the sink may take its last piece there, and fail as in
** feed). free is NULL-safe, after finish too.
*/
typedef struct lp_frame_decoder lp_frame_decoder;
int lp_frame_decoder_open(lp_frame_decoder **out, const char *hash, uint64_t size,
                          lp_store_sink sink, void *ud, char *err, size_t errsz);
int lp_frame_decoder_feed(lp_frame_decoder *d, const void *p, size_t n, char *err,
                          size_t errsz);
int lp_frame_decoder_finish(lp_frame_decoder *d, char *err, size_t errsz);
/* The size given is a bound (a get's max_size): a frame may hold fewer
** bytes; the hash still proves them whole. */
void lp_frame_decoder_at_most(lp_frame_decoder *d);
/* Decode into buf (of the size given at open) instead of a sink, with no
** copy after zstd's: *len is how much it holds so far (all, after
** finish). Before the first feed. */
void lp_frame_decoder_into(lp_frame_decoder *d, void *buf, size_t *len);
void lp_frame_decoder_free(lp_frame_decoder *d);

/* ---- sigv4.c: AWS Signature Version 4 (for store_s3.c) ---- */

typedef struct lp_sigv4_key {
  const char *access_key, *secret;
  const char *region;    /* "us-east-1" */
  const char *service;   /* "s3" */
} lp_sigv4_key;

typedef struct lp_sigv4_request {
  const char *method;          /* "GET" */
  const char *path;            /* URI-encoded, as sent: "/bucket/key" */
  const char *query;           /* URI-encoded "a=1&b", any order; NULL or "" for none */
  const char *const *headers;  /* "name:value" each, every header to sign (host included) */
  size_t nheaders;
  const char *payload_hash;    /* x-amz-content-sha256's value */
  const char *amz_date;        /* x-amz-date's value: "20130524T000000Z" */
} lp_sigv4_request;

/* The Authorization header's value for the request, into out: 0, or -1
** if it does not fit (or out of memory). At most 32 query parameters and
** 32 headers are signed. */
int lp_sigv4_sign(const lp_sigv4_request *r, const lp_sigv4_key *k, char *out, size_t outsz);
/* URI-encode s as SigV4 wants (unreserved characters kept; '/' kept if
** keep_slash): the length written, or 0 if it does not fit. */
size_t lp_sigv4_encode(const char *s, int keep_slash, char *out, size_t outsz);
/* n bytes as 2n lowercase hex digits and a NUL into out. */
void lp_sigv4_hex(const unsigned char *md, size_t n, char *out);
/* The lowercase hex SHA-256 of some bytes: 0, or -1 if OpenSSL fails. */
int lp_sigv4_sha256_hex(const void *data, size_t len, char out[65]);

#endif
