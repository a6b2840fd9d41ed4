/* SPDX-License-Identifier: MIT */
/*
** test_store.c: the object store (runtime/store.c), from its callers'
** point of view. Prints TAP; exits 1 if any test failed.
*/
#define _XOPEN_SOURCE 700   /* nftw, mkdtemp, fork */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "store_int.h"   /* lp_store_local_hash_frames */
#include "tap.h"

#define PATHSZ 512   /* paths under a short mkdtemp directory */

static size_t nfiles;   /* count_files's tally (nftw takes no context) */

static void diag(const char *msg) {
  printf("#   %s\n", msg);
}

static void skip(const char *what, const char *why) {
  printf("ok %d - %s # SKIP %s\n", ++ntests, what, why);
}

static int count_one(const char *path, const struct stat *st, int type,
                     struct FTW *ftw) {
  (void)path, (void)ftw;
  if (type == FTW_F && S_ISREG(st->st_mode)) nfiles++;
  return 0;
}

/* Regular files under dir. */
static size_t count_files(const char *dir) {
  nfiles = 0;
  nftw(dir, count_one, 16, FTW_PHYS);
  return nfiles;
}

static int remove_one(const char *path, const struct stat *st, int type,
                      struct FTW *ftw) {
  (void)st, (void)type, (void)ftw;
  return remove(path);
}

/* Extracted copies have read-only folders: writable again, to be removed. */
static int unlock_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
  (void)st, (void)ftw;
  if (type == FTW_D) chmod(path, 0755);
  return 0;
}

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  unsigned char *buf;
  long n;
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  rewind(f);
  buf = malloc((size_t)n + 1);
  *len = fread(buf, 1, (size_t)n, f);
  fclose(f);
  return buf;
}

/* Objects are read-only: replace the file rather than open it for writing. */
static void write_file(const char *path, const void *buf, size_t len) {
  FILE *f;
  unlink(path);
  f = fopen(path, "wb");
  fwrite(buf, 1, len, f);
  fclose(f);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Compressible, CBOR-ish filler: words and counters, not one repeated byte. */
static void fill_text(unsigned char *buf, size_t len, uint32_t seed) {
  static const char *words[] = {"alpha", "layer", "weights", "0.125", "bias",
                                "shape", "step", "\xa3\x61", "\xfb\x3f"};
  size_t i = 0;
  while (i < len) {
    const char *w;
    seed = seed * 1664525u + 1013904223u;
    w = words[(seed >> 24) % (sizeof words / sizeof *words)];
    while (*w && i < len) buf[i++] = (unsigned char)*w++;
    if (i < len) buf[i++] = (unsigned char)(seed >> 8);
  }
}

static void test_hash(void) {
  char h[LP_HASH_STRLEN + 1];
  lp_frame_hash_bytes("", 0, h);
  same(h, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "sha256 of \"\"");
  lp_frame_hash_bytes("abc", 3, h);
  same(h, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
       "sha256 of \"abc\"");
  lp_frame_hash_bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, h);
  same(h, "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
       "sha256 of the 448-bit FIPS 180-2 vector");
}

static void test_open(const char *top) {
  char root[PATHSZ], want[LP_ERRSZ], err[LP_ERRSZ] = "";
  lp_store *s = NULL;
  struct stat st;
  int rc;

  snprintf(root, sizeof root, "%s/a/b/store", top);
  rc = lp_store_open(&s, "local", root, "test", NULL, err, sizeof err);
  if (!check(rc == LUPINE_OK, "open creates missing parents"))
    diag(err);
  same(lp_store_root(s), root, "root is the resolved path");
  same(lp_store_flavor(s), "local", "the store says its flavor");
  snprintf(want, sizeof want, "%s/objects", root);
  check(stat(want, &st) == 0 && S_ISDIR(st.st_mode), "open creates objects/");
  snprintf(want, sizeof want, "%s/tmp", root);
  check(stat(want, &st) == 0 && S_ISDIR(st.st_mode), "open creates tmp/");
  lp_store_close(s);
  lp_store_close(NULL);

  snprintf(root, sizeof root, "%s/a/b/store", top);
  check(lp_store_open(&s, "local", root, "test", NULL, err, sizeof err) == LUPINE_OK,
        "open reopens an existing store");
  lp_store_close(s);

  snprintf(root, sizeof root, "%s/plainfile", top);
  write_file(root, "x", 1);
  snprintf(root, sizeof root, "%s/plainfile/store", top);
  rc = lp_store_open(&s, "local", root, "test", NULL, err, sizeof err);
  check(rc == LUPINE_IO && s == NULL, "open under a regular file fails with IO");
  snprintf(want, sizeof want, "cannot create directory '%s' (Not a directory)", root);
  same(err, want, "open failure names the directory and the reason");

  check(lp_store_open(&s, "local", "", "test", NULL, err, sizeof err) == LUPINE_MISUSE,
        "open refuses an empty root");

  snprintf(root, sizeof root, "%s/other", top);
  rc = lp_store_open(&s, "tape", root, "test", NULL, err, sizeof err);
  check(rc == LUPINE_MISUSE && s == NULL, "open refuses a flavor it does not know");
  same(err, "unknown store flavor 'tape'", "unknown flavor: message");
  check(stat(root, &st) != 0, "... and creates nothing");

  {
    char *longroot = malloc(5001);
    memset(longroot, 'a', 5000);
    longroot[5000] = '\0';
    rc = lp_store_open(&s, "local", longroot, "test", NULL, err, sizeof err);
    snprintf(want, sizeof want, "store root '%.64s...' is too long (5000 bytes)",
             longroot);
    check(rc == LUPINE_MISUSE, "open refuses a root too long for PATH_MAX");
    same(err, want, "long root: message");
    free(longroot);
  }
}

static void test_put_get(lp_store *s) {
  const char *text = "hello, lupine";
  char path[PATHSZ], want[PATHSZ], tmpdir[PATHSZ], h[LP_HASH_STRLEN + 1];
  char err[LP_ERRSZ] = "";
  lp_object a, b;
  unsigned char *data = NULL;
  size_t len = 0;
  struct stat st;
  int rc;

  rc = lp_store_put(s, text, strlen(text), &a, err, sizeof err);
  lp_frame_hash_bytes(text, strlen(text), h);
  if (!check(rc == LUPINE_OK && a.created == 1, "put creates a new object"))
    diag(err);
  same(a.hash, h, "put reports the hash of the uncompressed bytes");
  check(a.size == strlen(text), "put reports the uncompressed size");
  lp_store_local_path(s, a.hash, path, sizeof path);
  check(stat(path, &st) == 0 && (uint64_t)st.st_size == a.stored_size,
        "stored_size is the size of the file on disk");
  snprintf(want, sizeof want, "%s/objects/%.2s/%s.zst", lp_store_root(s),
           h + 7, h + 9);
  same(path, want, "path is <root>/objects/<2 hex>/<62 hex>.zst");
  check((st.st_mode & 0222) == 0, "object files are read-only");
  check(lp_store_exists(s, a.hash) == 1, "exists finds it");

  rc = lp_store_get(s, a.hash, 1 << 20, &data, &len, err, sizeof err);
  if (!check(rc == LUPINE_OK && len == strlen(text) && memcmp(data, text, len) == 0,
            "get returns the bytes put"))
    diag(err);
  free(data);

  rc = lp_store_put(s, text, strlen(text), &b, err, sizeof err);
  check(rc == LUPINE_OK && b.created == 0, "identical bytes: second put creates nothing");
  check(strcmp(a.hash, b.hash) == 0 && b.stored_size == a.stored_size &&
        b.size == a.size, "second put reports the same object");
  snprintf(tmpdir, sizeof tmpdir, "%s/objects", lp_store_root(s));
  check(count_files(tmpdir) == 1, "identical bytes are stored once");
  snprintf(tmpdir, sizeof tmpdir, "%s/tmp", lp_store_root(s));
  check(count_files(tmpdir) == 0, "put leaves no temporary file behind");

  rc = lp_store_put(s, NULL, 0, &a, err, sizeof err);
  same(a.hash, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "empty object: hash");
  rc = lp_store_get(s, a.hash, 0, &data, &len, err, sizeof err);
  if (!check(rc == LUPINE_OK && len == 0 && data != NULL,
            "empty object: get returns 0 bytes in a valid buffer"))
    diag(err);
  free(data);
}

/* A sink comparing what it is given with the bytes expected. */
typedef struct expected {
  const unsigned char *p;
  size_t n, at;
  int same;
} expected;

static int compare_piece(void *ud, const void *p, size_t n) {
  expected *e = ud;
  if (n > e->n - e->at || memcmp(e->p + e->at, p, n) != 0) e->same = 0;
  e->at += n < e->n - e->at ? n : e->n - e->at;
  return 0;
}

static void test_big(lp_store *s) {
  size_t n = 10u << 20, len = 0;
  unsigned char *buf = malloc(n), *data = NULL;
  char err[LP_ERRSZ] = "";
  lp_object o;
  int rc;

  fill_text(buf, n, 1);
  rc = lp_store_put(s, buf, n, &o, err, sizeof err);
  check(rc == LUPINE_OK && o.created && o.size == n && o.stored_size < n / 2,
        "10 MB object: put compresses it (%llu bytes on disk)",
        (unsigned long long)o.stored_size);
  rc = lp_store_get(s, o.hash, n, &data, &len, err, sizeof err);
  if (!check(rc == LUPINE_OK && len == n && memcmp(data, buf, n) == 0,
            "10 MB object: get returns the same bytes"))
    diag(err);
  free(data);
  {
    /* a streamed put this large hashes on a helper thread beside the
    ** compression, in pieces of every size: the same name as a put */
    lp_store_writer *w = NULL;
    lp_object so;
    size_t at = 0, piece = 1;
    rc = lp_store_writer_open(s, n, &w, err, sizeof err);
    while (rc == LUPINE_OK && at < n) {
      size_t k = piece < n - at ? piece : n - at;
      rc = lp_store_writer_write(w, buf + at, k, err, sizeof err);
      at += k;
      piece = piece * 3 + 1;
    }
    if (rc == LUPINE_OK) rc = lp_store_writer_close(w, &so, err, sizeof err);
    else lp_store_writer_abort(w);
    if (!check(rc == LUPINE_OK && strcmp(so.hash, o.hash) == 0 && so.size == n,
               "10 MB object streamed: the same hash as put"))
      diag(err);
    /* given up midway: its helper stopped, its temporary file gone */
    if (lp_store_writer_open(s, n, &w, err, sizeof err) == LUPINE_OK) {
      char tmpdir[PATHSZ];
      lp_store_writer_write(w, buf, n / 3, err, sizeof err);
      lp_store_writer_abort(w);
      snprintf(tmpdir, sizeof tmpdir, "%s/tmp", lp_store_root(s));
      check(count_files(tmpdir) == 0, "10 MB object abandoned midway: nothing left behind");
    }
  }
  {
    /* read as it arrives, hashed on a helper thread beside the sink */
    expected e = {buf, n, 0, 1};
    rc = lp_store_get_stream(s, o.hash, n, compare_piece, &e, err, sizeof err);
    if (!check(rc == LUPINE_OK && e.same && e.at == n, "10 MB object: get_stream gives its bytes"))
      diag(err);
  }
  rc = lp_store_get(s, o.hash, n - 1, &data, &len, err, sizeof err);
  check(rc == LUPINE_CORRUPT && data == NULL, "get refuses an object over max_size");
  {
    char want[LP_ERRSZ];
    snprintf(want, sizeof want, "object %s is corrupt: frame claims %zu bytes, "
             "more than the %zu expected", o.hash, n, n - 1);
    same(err, want, "over max_size: message names the sizes");
  }
  free(buf);
}

static void test_missing(lp_store *s) {
  char h[LP_HASH_STRLEN + 1], path[PATHSZ], want[LP_ERRSZ], err[LP_ERRSZ] = "";
  unsigned char *data = (unsigned char *)"x";
  size_t len = 1;
  lp_frame_hash_bytes("never stored", 12, h);
  lp_store_local_path(s, h, path, sizeof path);
  check(lp_store_exists(s, h) == 0, "exists: 0 for a missing object");
  check(lp_store_get(s, h, 100, &data, &len, err, sizeof err) == LUPINE_NOTFOUND &&
        data == NULL && len == 0, "get of a missing object: NOTFOUND");
  snprintf(want, sizeof want, "object %s is missing (expected at %s)", h, path);
  same(err, want, "missing object: message names hash and path");
}

static void test_corrupt(lp_store *s) {
  unsigned char text[300], *frame, *copy, *data;
  char path[PATHSZ], want[LP_ERRSZ], err[LP_ERRSZ] = "";
  size_t flen, len, i, refused = 0;
  lp_object o, other;
  int rc;

  fill_text(text, sizeof text, 7);
  lp_store_put(s, text, sizeof text, &o, err, sizeof err);
  lp_store_local_path(s, o.hash, path, sizeof path);
  frame = read_file(path, &flen);
  copy = malloc(flen);
  snprintf(want, sizeof want, "object %s is corrupt: ", o.hash);
  for (i = 0; i < flen; i++) {
    memcpy(copy, frame, flen);
    copy[i] ^= 0x20;
    write_file(path, copy, flen);
    rc = lp_store_get(s, o.hash, 1 << 20, &data, &len, err, sizeof err);
    if (rc == LUPINE_CORRUPT && data == NULL &&
        strncmp(err, want, strlen(want)) == 0)
      refused++;
    else
      printf("# flip at %zu: rc %d, %s\n", i, rc, err);
  }
  check(refused == flen, "each of %zu single-byte flips is refused as corrupt", flen);

  lp_store_put(s, "something else", 14, &other, err, sizeof err);
  lp_store_local_path(s, other.hash, want, sizeof want);
  free(copy);
  copy = read_file(want, &len);
  write_file(path, copy, len);
  rc = lp_store_get(s, o.hash, 1 << 20, &data, &len, err, sizeof err);
  snprintf(want, sizeof want, "object %s is corrupt: its content hashes to %s",
           o.hash, other.hash);
  check(rc == LUPINE_CORRUPT, "a valid frame of other content: CORRUPT");
  same(err, want, "hash mismatch: message names both hashes");

  write_file(path, frame, flen - 1);
  rc = lp_store_get(s, o.hash, 1 << 20, &data, &len, err, sizeof err);
  snprintf(want, sizeof want, "object %s is corrupt: bad frame (Src size is incorrect)",
           o.hash);
  same(err, want, "truncated frame: message gives zstd's reason");

  write_file(path, frame, flen);
  rc = lp_store_get(s, o.hash, 100, &data, &len, err, sizeof err);
  check(rc == LUPINE_CORRUPT, "a file larger than max_size allows is refused unread");
  snprintf(want, sizeof want, "object %s is corrupt: file is %zu bytes, more "
           "than a frame of 100 bytes needs", o.hash, flen);
  same(err, want, "oversized file: message names the sizes");
  free(frame);
  free(copy);
}

/* Hand-made frames, so no zstd API is needed here. */
static void test_frames(lp_store *s) {
  /* magic, FHD 0xE0 (8-byte content size, single segment), size 2^50,
  ** then an empty last raw block. */
  static const unsigned char huge[] = {0x28, 0xB5, 0x2F, 0xFD, 0xE0,
    0, 0, 0, 0, 0, 0, 4, 0, 0x01, 0x00, 0x00};
  /* FHD 0 (no content size), window descriptor, empty last raw block. */
  static const unsigned char nosize[] = {0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00,
    0x01, 0x00, 0x00};
  /* a skippable frame with 0 bytes of payload */
  static const unsigned char skippable[] = {0x50, 0x2A, 0x4D, 0x18, 0, 0, 0, 0};
  char path[PATHSZ], err[LP_ERRSZ] = "";
  unsigned char *frame, *two, *data = NULL;
  size_t flen, len;
  lp_object o;
  double t;
  int rc;

  t = now();
  rc = lp_frame_decode(huge, sizeof huge, 1 << 20, NULL, &data, &len,
                       err, sizeof err);
  t = now() - t;
  check(rc == LUPINE_CORRUPT && data == NULL, "frame claiming 2^50 bytes: refused");
  check(t < 0.1, "... without allocating or decoding (%.6f s)", t);
  same(err, "frame is corrupt: frame claims 1125899906842624 bytes, more than "
       "the 1048576 expected", "huge claim: message names the sizes");

  rc = lp_frame_decode(nosize, sizeof nosize, 1 << 20, NULL, &data, &len,
                       err, sizeof err);
  same(err, "frame is corrupt: frame does not record its content size",
       "frame without content size: refused");
  lp_frame_decode(skippable, sizeof skippable, 1 << 20, NULL, &data,
                  &len, err, sizeof err);
  same(err, "frame is corrupt: not a zstd frame (bad magic number)",
       "skippable frame: refused");
  lp_frame_decode("hello", 5, 1 << 20, NULL, &data, &len, err, sizeof err);
  same(err, "frame is corrupt: not a zstd frame (bad magic number)",
       "not a frame: refused");
  rc = lp_frame_decode("", 0, 1 << 20, NULL, &data, &len, err, sizeof err);
  check(rc == LUPINE_CORRUPT, "0 bytes: refused");

  lp_store_put(s, "payload", 7, &o, err, sizeof err);
  lp_store_local_path(s, o.hash, path, sizeof path);
  frame = read_file(path, &flen);
  two = malloc(2 * flen);
  memcpy(two, frame, flen);
  memcpy(two + flen, "xyz", 3);
  lp_frame_decode(two, flen + 3, 1 << 20, NULL, &data, &len, err, sizeof err);
  same(err, "frame is corrupt: 3 bytes of trailing data after the frame",
       "trailing garbage: refused");
  memcpy(two + flen, frame, flen);
  rc = lp_frame_decode(two, 2 * flen, 1 << 20, NULL, &data, &len, err,
                       sizeof err);
  check(rc == LUPINE_CORRUPT && data == NULL, "two frames: refused");
  rc = lp_frame_decode(frame, flen, 1 << 20, o.hash, &data, &len, err,
                       sizeof err);
  check(rc == LUPINE_OK && len == 7 && memcmp(data, "payload", 7) == 0,
        "decode_frame with want_hash: accepts the right frame");
  free(data);
  free(two);
  free(frame);
}

/* Deterministic bytes that do not compress (xorshift). */
static void noise(unsigned char *p, size_t n, uint64_t seed) {
  size_t i;
  for (i = 0; i < n; i++) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    p[i] = (unsigned char)(seed >> 24);
  }
}

/* A frame of raw blocks, laid out by lp_frame_raw_at into one buffer. */
static unsigned char *raw_bytes(const lp_frame_raw *f, size_t *n) {
  unsigned char *out = malloc((size_t)f->size);
  const unsigned char *p;
  uint64_t off = 0;
  size_t k;
  for (; (k = lp_frame_raw_at(f, off, &p)) > 0; off += k) memcpy(out + off, p, k);
  *n = (size_t)off;
  return out;
}

static int feed_sink(void *ud, const void *p, size_t n) {
  unsigned char **at = ud;
  memcpy(*at, p, n);
  *at += n;
  return 0;
}

/* Frames of raw blocks (what an s3 put stores for incompressible bytes):
** every reader reads them back exactly, their checksum checked. */
static void test_raw_frames(void) {
  static const size_t sizes[] = {0, 1, 31, 32, 100, 131071, 131072, 131073, 300000,
                                 (1u << 20) + 5};
  size_t i, n, k, len, hlen, bad = 0, badsize = 0, badstream = 0, badcorrupt = 0, badparts = 0,
         badsha = 0, badstreamed = 0, badinto = 0;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen;
  char fhash[LP_HASH_STRLEN + 1], want[LP_HASH_STRLEN + 1];
  EVP_MD_CTX *sha = EVP_MD_CTX_new();
  unsigned char *data = malloc((1u << 20) + 5), *frame, *split, *got, *at;
  char hash[LP_HASH_STRLEN + 1], err[LP_ERRSZ];
  lp_frame_raw f;
  lp_frame_decoder *d;

  noise(data, (1u << 20) + 5, 88172645463325252ULL);
  /* the checksum is XXH64's low 4 bytes: its published values */
  lp_frame_raw_init(&f, NULL, 0, "", 0, NULL);
  check(memcmp(f.sum, "\x99\xe9\xd8\x51", 4) == 0, "raw frame of 0 bytes: XXH64 checksum");
  lp_frame_raw_init(&f, NULL, 0, "abc", 3, NULL);
  check(memcmp(f.sum, "\x99\x09\x77\xad", 4) == 0, "raw frame of 'abc': XXH64 checksum");
  for (i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    len = sizes[i];
    /* the content in two parts (a head and the rest) is laid out the same */
    hlen = len < 9 ? len : 9;
    lp_frame_raw_init(&f, data, hlen, data + hlen, len - hlen, NULL);
    split = raw_bytes(&f, &k);
    EVP_DigestInit_ex(sha, lp_frame_sha256(), NULL);
    lp_frame_raw_init(&f, NULL, 0, data, len, sha);
    frame = raw_bytes(&f, &n);
    if (n != f.size) badsize++;
    EVP_DigestFinal_ex(sha, md, &mdlen);
    lp_frame_format_hash(md, mdlen, fhash);
    lp_frame_hash_bytes(frame, n, want);
    if (strcmp(fhash, want) != 0) badsha++;
    if (k != n || memcmp(split, frame, n) != 0) badparts++;
    free(split);
    {
      /* written as the content comes, in pieces of 1000 bytes: the same frame */
      lp_frame_raw_stream *rs = lp_frame_raw_stream_new(len);
      unsigned char *streamed = malloc(n + 1);
      at = streamed;
      for (k = 0; rs != NULL && k < len; k += 1000)
        if (lp_frame_raw_stream_write(rs, data + k, len - k < 1000 ? len - k : 1000, feed_sink,
                                      &at) != 0)
          break;
      if (rs == NULL || k < len || lp_frame_raw_stream_end(rs, feed_sink, &at) != 0 ||
          (size_t)(at - streamed) != n || memcmp(streamed, frame, n) != 0)
        badstreamed++;
      lp_frame_raw_stream_free(rs);
      free(streamed);
    }
    lp_frame_hash_bytes(data, len, hash);
    got = NULL;
    if (lp_frame_decode(frame, n, len, hash, &got, &k, err, sizeof err) != LUPINE_OK ||
        k != len || (len > 0 && memcmp(got, data, len) != 0)) {
      bad++;
      diag(err);
    }
    free(got);
    /* decoded as it arrives, in pieces of 1000 bytes */
    got = malloc(len + 1);
    at = got;
    if (lp_frame_decoder_open(&d, hash, len, feed_sink, &at, err, sizeof err) != LUPINE_OK)
      badstream++;
    else {
      for (k = 0; k < n; k += 1000)
        if (lp_frame_decoder_feed(d, frame + k, n - k < 1000 ? n - k : 1000, err,
                                  sizeof err) != LUPINE_OK)
          break;
      if (k < n || lp_frame_decoder_finish(d, err, sizeof err) != LUPINE_OK ||
          (size_t)(at - got) != len || (len > 0 && memcmp(got, data, len) != 0))
        badstream++;
      lp_frame_decoder_free(d);
    }
    free(got);
    /* decoded where the content stays, in pieces of 1000 bytes; into a bound
    ** one byte short, refused */
    {
      size_t bound, into;
      for (bound = len + 1; bound-- > (len > 0 ? len - 1 : 0);) {
        int want_rc = bound == len ? LUPINE_OK : LUPINE_CORRUPT, rc = LUPINE_OK;
        got = malloc(bound + 1);
        if (lp_frame_decoder_open(&d, hash, bound, NULL, NULL, err, sizeof err) != LUPINE_OK) {
          badinto++;
          free(got);
          continue;
        }
        lp_frame_decoder_into(d, got, &into);
        for (k = 0; k < n && rc == LUPINE_OK; k += 1000)
          rc = lp_frame_decoder_feed(d, frame + k, n - k < 1000 ? n - k : 1000, err, sizeof err);
        if (rc == LUPINE_OK) rc = lp_frame_decoder_finish(d, err, sizeof err);
        if (rc != want_rc || (rc == LUPINE_OK && (into != len ||
                                                  (len > 0 && memcmp(got, data, len) != 0))))
          badinto++;
        lp_frame_decoder_free(d);
        free(got);
        if (bound == 0) break;
      }
    }
    /* a flipped content byte fails zstd's checksum, before the hash is known */
    if (len > 0) {
      frame[f.headsz + 3] ^= 1;
      got = NULL;
      if (lp_frame_decode(frame, n, len, NULL, &got, &k, err, sizeof err) != LUPINE_CORRUPT ||
          strstr(err, "checksum") == NULL)
        badcorrupt++;
      free(got);
    }
    free(frame);
  }
  check(badsize == 0, "raw frames: lp_frame_raw_at lays out size bytes");
  check(bad == 0, "raw frames of 0 B to 1 MiB + 5 B (block edges too): decoded exactly");
  check(badstream == 0, "raw frames: decoded exactly as they arrive, in pieces");
  check(badcorrupt == 0, "raw frames: a changed byte fails their checksum");
  check(badparts == 0, "raw frames: of content in two parts, the same bytes");
  check(badsha == 0, "raw frames: the hash init gives is their bytes' SHA-256");
  check(badstreamed == 0, "raw frames written as their content comes: the same bytes");
  check(badinto == 0, "raw frames decoded into the caller's buffer: exactly; one byte short: "
        "refused");
  EVP_MD_CTX_free(sha);
  lp_frame_raw_init(&f, NULL, 0, data, 300000, NULL);
  check(f.size == 10 + 3 * 3 + 300000 + 4, "raw frame: 10 B of header, 3 per block, 4 of "
        "checksum (%llu)", (unsigned long long)f.size);
  free(data);
}

static void test_incompressible(void) {
  size_t n = 4u << 20;
  unsigned char *data = malloc(n);
  noise(data, n, 2463534242ULL);
  check(lp_frame_incompressible(data, n, 3), "random bytes: incompressible");
  check(!lp_frame_incompressible(data, (1u << 20) - 1, 3),
        "below 1 MiB: compressed whatever they are");
  memset(data + n / 2, 'a', 1u << 20);   /* a compressible MiB in the middle */
  check(!lp_frame_incompressible(data, n, 3), "random bytes around a compressible MiB: compressed");
  memset(data, 0, n);
  check(!lp_frame_incompressible(data, n, 3), "zeros: compressible");
  free(data);
}

static void test_bad_hashes(lp_store *s) {
  static const char *bad[] = {
    "sha256:abc",
    "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    "sha256:../../../../../../../../../../../../../../../../../../../etc/p",
    "sha256:e3/../../../../../../../../../../../../../../../../../../../../.",
    "sha1:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85 ",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
    "",
  };
  char path[PATHSZ], err[LP_ERRSZ] = "";
  unsigned char *data;
  size_t i, len, refused = 0;
  int removed = 1;
  for (i = 0; i < sizeof bad / sizeof *bad; i++)
    refused += lp_store_local_path(s, bad[i], path, sizeof path) == LUPINE_MISUSE &&
               lp_store_exists(s, bad[i]) == 0 &&
               lp_store_get_stream(s, bad[i], 10, NULL, NULL, err, sizeof err) ==
                 LUPINE_MISUSE &&
               lp_store_remove(s, bad[i], &removed, err, sizeof err) == LUPINE_MISUSE &&
               removed == 0 &&
               lp_store_get(s, bad[i], 10, &data, &len, err, sizeof err) ==
                 LUPINE_MISUSE;
  check(refused == i, "malformed hashes (short, uppercase, ../, other prefix, "
        "long, space, non-hex letter, empty) are refused: %zu of %zu", refused, i);
  same(err, "malformed object hash '' (expected sha256: and 64 lowercase hex "
       "digits)", "malformed hash: message");
  check(lp_store_local_path(s,
                            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                            path, 10) == LUPINE_MISUSE, "path: buffer too small is MISUSE");
}

/* Several processes putting the same objects at once all succeed. */
static void test_concurrent(lp_store *s) {
  enum { NPROC = 4, NOBJ = 40 };
  unsigned char buf[64 << 10];
  char dir[PATHSZ], err[LP_ERRSZ];
  int i, j, status, good = 0;
  lp_object o;
  for (i = 0; i < NPROC; i++) {
    if (fork() == 0) {
      for (j = 0; j < NOBJ; j++) {
        fill_text(buf, sizeof buf, 1000u + (uint32_t)j);
        if (lp_store_put(s, buf, sizeof buf, &o, err, sizeof err) != LUPINE_OK)
          _exit(1);
      }
      _exit(0);
    }
  }
  for (i = 0; i < NPROC; i++)
    good += wait(&status) > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  check(good == NPROC, "%d processes putting the same %d objects all succeed",
        NPROC, NOBJ);
  for (j = 0, good = 0; j < NOBJ; j++) {
    unsigned char *data;
    size_t len;
    fill_text(buf, sizeof buf, 1000u + (uint32_t)j);
    lp_frame_hash_bytes(buf, sizeof buf, o.hash);
    good += lp_store_get(s, o.hash, sizeof buf, &data, &len, err, sizeof err) ==
              LUPINE_OK;
    free(data);
  }
  check(good == NOBJ, "... and every object reads back intact");
  snprintf(dir, sizeof dir, "%s/tmp", lp_store_root(s));
  check(count_files(dir) == 0, "... leaving no temporary file");
}

/* What the store's log said: the replacements of damaged objects. */
static struct { int n; char last[LP_ERRSZ + 4200]; } said;

static void note(void *ud, const char *message) {
  (void)ud;
  said.n++;
  snprintf(said.last, sizeof said.last, "%s", message);
}

/* 1 if the object reads back as the bytes given. */
static int reads_back(lp_store *s, const char *hash, const void *want, size_t n) {
  unsigned char *data = NULL;
  size_t len = 0;
  char err[LP_ERRSZ];
  int ok = lp_store_get(s, hash, n, &data, &len, err, sizeof err) == LUPINE_OK && len == n &&
           memcmp(data, want, n) == 0;
  free(data);
  return ok;
}

/* Put bytes again over each kind of damage: the put replaces the file and
** says so; over an intact object it writes nothing and says nothing. */
static void test_damaged_put(lp_store *s) {
  unsigned char text[4000], other[100], *frame, *copy;
  char path[PATHSZ], opath[PATHSZ], want[LP_ERRSZ + PATHSZ], err[LP_ERRSZ] = "";
  size_t flen, olen;
  lp_object o, p, q;
  int rc;

  lp_store_set_log(s, note, NULL);
  said.n = 0;
  fill_text(text, sizeof text, 99);
  lp_store_put(s, text, sizeof text, &o, err, sizeof err);
  lp_store_local_path(s, o.hash, path, sizeof path);
  frame = read_file(path, &flen);
  copy = malloc(flen);

  rc = lp_store_put(s, text, sizeof text, &p, err, sizeof err);
  check(rc == LUPINE_OK && p.created == 0 && said.n == 0,
        "an intact object: the put writes nothing and says nothing");

  memcpy(copy, frame, flen);
  copy[flen / 2] ^= 1;
  write_file(path, copy, flen);
  rc = lp_store_put(s, text, sizeof text, &p, err, sizeof err);
  check(rc == LUPINE_OK && p.created == 1 && reads_back(s, o.hash, text, sizeof text),
        "one flipped bit: the put replaces the object with the good bytes");
  snprintf(want, sizeof want, "store '%s': object %s is corrupt: ", lp_store_root(s), o.hash);
  check(said.n == 1 && strncmp(said.last, want, strlen(want)) == 0 &&
        strstr(said.last, "; replaced it with the bytes being saved") != NULL,
        "... and the log says which object, in which store, and why");
  printf("#   %s\n", said.last);

  memset(copy, 0, flen);
  write_file(path, copy, flen);
  rc = lp_store_put_unsynced(s, text, sizeof text, &p, err, sizeof err);
  check(rc == LUPINE_OK && p.created == 1 && said.n == 2 &&
        reads_back(s, o.hash, text, sizeof text),
        "a zero-filled file of the right size: replaced (unsynced put too)");

  write_file(path, "", 0);
  rc = lp_store_put(s, text, sizeof text, &p, err, sizeof err);
  check(rc == LUPINE_OK && p.created == 1 && said.n == 3 &&
        reads_back(s, o.hash, text, sizeof text), "an empty file: replaced");

  fill_text(other, sizeof other, 5);
  lp_store_put(s, other, sizeof other, &q, err, sizeof err);
  lp_store_local_path(s, q.hash, opath, sizeof opath);
  free(copy);
  copy = read_file(opath, &olen);
  write_file(path, copy, olen);
  rc = lp_store_put(s, text, sizeof text, &p, err, sizeof err);
  check(rc == LUPINE_OK && p.created == 1 && said.n == 4 &&
        reads_back(s, o.hash, text, sizeof text) &&
        strstr(said.last, "its frame header does not record its 4000 bytes") != NULL,
        "another object's valid frame: replaced");

  unlink(path);
  check(mkfifo(path, 0644) == 0, "a FIFO where the object belongs");
  alarm(10);   /* a regression blocks in open: fail, do not hang */
  rc = lp_store_put(s, text, sizeof text, &p, err, sizeof err);
  alarm(0);
  snprintf(want, sizeof want, "is corrupt: '%s' is not a regular file", path);
  check(rc == LUPINE_OK && p.created == 1 && reads_back(s, o.hash, text, sizeof text) &&
        strstr(said.last, want) != NULL, "... is replaced by a put, without blocking");

  /* streamed: the object already there is read back and hashed */
  {
    lp_store_writer *w;
    free(copy);
    copy = read_file(path, &flen);
    copy[flen - 5] ^= 0x40;
    write_file(path, copy, flen);
    said.n = 0;
    lp_store_writer_open(s, sizeof text, &w, err, sizeof err);
    lp_store_writer_write(w, text, 1000, err, sizeof err);
    lp_store_writer_write(w, text + 1000, sizeof text - 1000, err, sizeof err);
    rc = lp_store_writer_close(w, &p, err, sizeof err);
    check(rc == LUPINE_OK && p.created == 1 && said.n == 1 && strcmp(p.hash, o.hash) == 0 &&
          reads_back(s, o.hash, text, sizeof text),
          "a streamed put replaces a damaged object too");
    lp_store_writer_open(s, sizeof text, &w, err, sizeof err);
    lp_store_writer_write(w, text, sizeof text, err, sizeof err);
    rc = lp_store_writer_close(w, &p, err, sizeof err);
    check(rc == LUPINE_OK && p.created == 0 && said.n == 1,
          "... and keeps an intact one, saying nothing");
    lp_store_writer_open(NULL, sizeof text, &w, err, sizeof err);
    lp_store_writer_write(w, text, sizeof text, err, sizeof err);
    rc = lp_store_writer_close(w, &p, err, sizeof err);
    check(rc == LUPINE_OK && strcmp(p.hash, o.hash) == 0 && p.created == 0,
          "a writer on no store only hashes");
  }
  lp_store_set_log(s, NULL, NULL);
  free(copy);
  free(frame);
}

/* A FIFO where an object belongs is refused, never waited on. */
static void test_fifo(lp_store *s) {
  char path[PATHSZ], want[LP_ERRSZ + PATHSZ], err[LP_ERRSZ] = "";
  unsigned char *data;
  size_t len;
  lp_object o;
  int rc;
  lp_store_put(s, "fifo victim", 11, &o, err, sizeof err);
  lp_store_local_path(s, o.hash, path, sizeof path);
  unlink(path);
  mkfifo(path, 0644);
  snprintf(want, sizeof want, "object %s is corrupt: '%s' is not a regular file", o.hash, path);
  alarm(10);
  rc = lp_store_get(s, o.hash, 100, &data, &len, err, sizeof err);
  alarm(0);
  check(rc == LUPINE_CORRUPT, "get of a FIFO: CORRUPT, at once");
  same(err, want, "... naming the path");
  alarm(10);
  rc = lp_store_get_stream(s, o.hash, 11, NULL, NULL, err, sizeof err);
  alarm(0);
  check(rc == LUPINE_CORRUPT, "streamed read of a FIFO: CORRUPT, at once");
  same(err, want, "... naming the path");
  unlink(path);
}

/* Files in root/tmp, and folders in cache/.tmp. */
static size_t entries(const char *dir) {
  size_t n = 0;
  struct dirent *d;
  DIR *dd = opendir(dir);
  while (dd != NULL && (d = readdir(dd)) != NULL) n += d->d_name[0] != '.';
  if (dd != NULL) closedir(dd);
  return n;
}

/* A child that leaves a temporary as a writer would: a stream- file (a
** writer left open), an obj- file, or a copy's folder being extracted
** (files.c names them the same way); it waits to be killed. */
static pid_t leave_temporary(lp_store *s, const char *kind, const char *cache) {
  int fds[2];
  pid_t pid;
  char c = 'x';
  if (pipe(fds) != 0) return -1;
  if ((pid = fork()) == 0) {
    char err[LP_ERRSZ], owner[LP_OWNER_MAX], path[PATHSZ + LP_OWNER_MAX];
    lp_store_writer *w;
    lp_owner_tag(owner);
    if (strcmp(kind, "stream") == 0) {
      lp_store_writer_open(s, 100, &w, err, sizeof err);
      lp_store_writer_write(w, "partial", 7, err, sizeof err);
    } else if (strcmp(kind, "obj") == 0) {
      snprintf(path, sizeof path, "%s/tmp/obj-%s-a1B2c3", lp_store_root(s), owner);
      write_file(path, "half", 4);
    } else {
      snprintf(path, sizeof path, "%s/.tmp", cache);
      mkdir(cache, 0755);
      mkdir(path, 0755);
      snprintf(path, sizeof path, "%s/.tmp/%s-a1B2c3", cache, owner);
      mkdir(path, 0755);
      snprintf(path, sizeof path, "%s/.tmp/%s-a1B2c3/data", cache, owner);
      write_file(path, "half", 4);
      chmod(path, 0444);
    }
    if (write(fds[1], &c, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(fds[1]);
  if (read(fds[0], &c, 1) != 1) pid = -1;
  close(fds[0]);
  return pid;
}

static void kill_child(pid_t pid) {
  int status;
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
}

/* Opening a store removes the temporaries of killed writers, and only
** those; lp_files_clean does the same for copies being extracted. */
static void test_stale_temporaries(const char *top) {
  char root[PATHSZ / 2], tmp[PATHSZ / 2 + 8], cache[PATHSZ / 2 + 8], other[PATHSZ];
  char err[LP_ERRSZ];
  lp_store *s, *again;
  pid_t a, b, c;
  snprintf(root, sizeof root, "%s/stale", top);
  snprintf(tmp, sizeof tmp, "%s/tmp", root);
  snprintf(cache, sizeof cache, "%s/files", top);
  lp_store_open(&s, "local", root, "test", NULL, err, sizeof err);
  a = leave_temporary(s, "stream", NULL);
  b = leave_temporary(s, "obj", NULL);
  c = leave_temporary(s, "copy", cache);
  snprintf(other, sizeof other, "%s/obj-1-1-elsewhere-a1B2c3", tmp);
  write_file(other, "another host's", 14);
  snprintf(other, sizeof other, "%s/obj-inprogress", tmp);
  write_file(other, "not ours to judge", 17);
  check(a > 0 && b > 0 && c > 0 && entries(tmp) == 4, "writers left 2 temporaries (and 2 strays)");
  lp_store_open(&again, "local", root, "test", NULL, err, sizeof err);
  lp_store_close(again);
  snprintf(other, sizeof other, "%s/.tmp", cache);
  lp_files_clean(cache);
  check(entries(tmp) == 4 && entries(other) == 1,
        "opening the store leaves the temporaries of live writers alone");
  kill_child(a);
  kill_child(b);
  kill_child(c);
  lp_store_open(&again, "local", root, "test", NULL, err, sizeof err);
  lp_store_close(again);
  check(entries(tmp) == 2, "the next open removes what the killed writers left (%zu left)",
        entries(tmp));
  snprintf(other, sizeof other, "%s/obj-inprogress", tmp);
  check(access(other, F_OK) == 0, "... not a name of another form");
  snprintf(other, sizeof other, "%s/obj-1-1-elsewhere-a1B2c3", tmp);
  check(access(other, F_OK) == 0, "... nor another host's");
  snprintf(other, sizeof other, "%s/.tmp", cache);
  lp_files_clean(cache);
  check(entries(other) == 0, "a copy a killed process was extracting is removed (read-only "
        "files in it too)");
  lp_store_close(s);
}

static int need_none(void *ud, const char *hex) {
  (void)ud, (void)hex;
  return 0;
}

/* Copies of file and folder objects: checked at each hand-off, extracted
** again when changed, hashed again by lp_files_check, removed. */
static void test_copies(lp_store *s, const char *top) {
  char src[PATHSZ], cache[PATHSZ], path[PATHSZ], file[PATHSZ + 16], changed[LP_ERRSZ];
  char err[LP_ERRSZ] = "", want[LP_ERRSZ + PATHSZ], manifest[LP_ERRSZ + PATHSZ + 32];
  unsigned char *text;
  uint64_t copies, bytes;
  struct stat st;
  size_t len;
  lp_object o;
  int is_dir, rc, fd;

  snprintf(src, sizeof src, "%s/src", top);
  mkdir(src, 0755);
  snprintf(file, sizeof file, "%s/a.txt", src);
  write_file(file, "hello\n", 6);
  snprintf(cache, sizeof cache, "%s/copies", top);
  lp_files_store(s, src, &o, &is_dir, err, sizeof err);
  rc = lp_files_materialize(s, cache, o.hash, o.size, path, sizeof path, changed,
                            sizeof changed, err, sizeof err);
  snprintf(want, sizeof want, "%s/%s/src", cache, o.hash + 7);
  check(rc == LUPINE_OK && changed[0] == '\0', "a folder is extracted once");
  same(path, want, "... at <cache>/<hex>/<its name>");

  /* At once, as a step running as root might: a change in the tick of
  ** the extraction must be seen too. */
  snprintf(file, sizeof file, "%s/a.txt", path);
  if (geteuid() != 0) chmod(file, 0644);
  fd = open(file, O_WRONLY);
  check(fd >= 0 && write(fd, "HELLO\n", 6) == 6, "a file of the copy is written over");
  close(fd);
  rc = lp_files_materialize(s, cache, o.hash, o.size, path, sizeof path, changed,
                            sizeof changed, err, sizeof err);
  snprintf(want, sizeof want, "'%s' changed after it was extracted", file);
  check(rc == LUPINE_OK, "the next hand-off extracts it again");
  same(changed, want, "... and says what changed");
  text = read_file(file, &len);
  check(text != NULL && len == 6 && memcmp(text, "hello\n", 6) == 0,
        "... and the path holds what was stored");
  free(text);
  rc = lp_files_materialize(s, cache, o.hash, o.size, path, sizeof path, changed,
                            sizeof changed, err, sizeof err);
  check(rc == LUPINE_OK && changed[0] == '\0', "an unchanged copy is handed out as it is");

  check(lp_files_check(cache, o.hash, err, sizeof err) == LUPINE_OK,
        "check: an intact copy hashes to its object");
  snprintf(want, sizeof want, "%s/added", path);
  if (geteuid() != 0) chmod(path, 0755);
  write_file(want, "", 0);
  rc = lp_files_check(cache, o.hash, err, sizeof err);
  snprintf(want, sizeof want, "the copy '%s/%s' changed: it hashes to ", cache, o.hash + 7);
  check(rc == LUPINE_CORRUPT && strncmp(err, want, strlen(want)) == 0,
        "check: a file added to a copy is found");
  printf("#   %s\n", err);
  rc = lp_files_materialize(s, cache, o.hash, o.size, path, sizeof path, changed,
                            sizeof changed, err, sizeof err);
  snprintf(want, sizeof want, "'%s' changed after it was extracted", path);
  same(changed, want, "a folder with an entry added is extracted again");

  snprintf(want, sizeof want, "%s/%s", cache, o.hash + 7);
  check(lp_files_discard(cache, o.hash, err, sizeof err) == LUPINE_OK &&
        access(want, F_OK) != 0, "discard removes a copy");
  lp_files_materialize(s, cache, o.hash, o.size, path, sizeof path, changed, sizeof changed,
                       err, sizeof err);
  rc = lp_files_prune(cache, need_none, NULL, 1, &copies, &bytes, err, sizeof err);
  snprintf(manifest, sizeof manifest, "%s/.lupine-manifest", want);
  check(rc == LUPINE_OK && copies == 1 && stat(manifest, &st) == 0 &&
        bytes == 6 + (uint64_t)st.st_size && access(want, F_OK) == 0,
        "prune, dry run: counts a copy nobody needs, and its bytes (its manifest's too)");
  rc = lp_files_prune(cache, need_none, NULL, 0, &copies, &bytes, err, sizeof err);
  check(rc == LUPINE_OK && copies == 1 && access(want, F_OK) != 0, "prune removes it");

  /* a file named as the manifest is: the manifest takes another name */
  snprintf(file, sizeof file, "%s/.lupine-manifest", top);
  write_file(file, "lupine-copy 1\n", 14);
  lp_files_store(s, file, &o, &is_dir, err, sizeof err);
  rc = lp_files_materialize(s, cache, o.hash, o.size, path, sizeof path, changed,
                            sizeof changed, err, sizeof err);
  check(rc == LUPINE_OK && changed[0] == '\0', "a file named .lupine-manifest is extracted");
  rc = lp_files_materialize(s, cache, o.hash, o.size, path, sizeof path, changed,
                            sizeof changed, err, sizeof err);
  text = read_file(path, &len);
  check(rc == LUPINE_OK && changed[0] == '\0' && text != NULL && len == 14,
        "... and handed out again unchanged");
  free(text);
}

/* The files are plain zstd: another implementation reads them. */
static void test_interop(lp_store *s, const char *top) {
  const char *what = "python zstandard decompresses an object to the bytes put";
  unsigned char buf[5000];
  char path[PATHSZ], expect[PATHSZ], cmd[3000], err[LP_ERRSZ];
  lp_object o;
  if (system("/usr/bin/python3 -c 'import zstandard' 2>/dev/null") != 0) {
    skip(what, "/usr/bin/python3 lacks zstandard");
    return;
  }
  fill_text(buf, sizeof buf, 42);
  lp_store_put(s, buf, sizeof buf, &o, err, sizeof err);
  lp_store_local_path(s, o.hash, path, sizeof path);
  snprintf(expect, sizeof expect, "%s/expected", top);
  write_file(expect, buf, sizeof buf);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import sys, zstandard\n"
           "got = zstandard.ZstdDecompressor().decompress(open(sys.argv[1], \"rb\").read())\n"
           "sys.exit(got != open(sys.argv[2], \"rb\").read())' '%s' '%s'",
           path, expect);
  check(system(cmd) == 0, "%s", what);
}

/* The hash of the file at path, or "" if it cannot be read. */
static void hash_file(const char *path, char *out) {
  static unsigned char buf[1 << 16];
  FILE *f = fopen(path, "rb");
  size_t n = f != NULL ? fread(buf, 1, sizeof buf, f) : 0;
  out[0] = '\0';
  if (f == NULL) return;
  fclose(f);
  lp_frame_hash_bytes(buf, n, out);
}

/* Put other (n bytes) through a writer, in two pieces. */
static int stream(lp_store *s, const char *other, size_t n, lp_object *o, char *err,
                  size_t errsz) {
  lp_store_writer *w = NULL;
  int rc = lp_store_writer_open(s, n, &w, err, errsz);
  if (rc == LUPINE_OK) rc = lp_store_writer_write(w, other, n / 2, err, errsz);
  if (rc == LUPINE_OK) rc = lp_store_writer_write(w, other + n / 2, n - n / 2, err, errsz);
  if (rc == LUPINE_OK) return lp_store_writer_close(w, o, err, errsz);
  lp_store_writer_abort(w);
  return rc;
}

/* A store an upload reads from (the s3 flavor's cache) hashes the frame
** each streamed put writes, below a size; one that finds its object, or
** a put of bytes in memory, hashes none. */
static void test_frame_hashes(const char *top) {
  static const char small[] = "a frame to upload";
  static char big[4000];
  char root[PATHSZ], path[PATHSZ], want[LP_HASH_STRLEN + 1], err[LP_ERRSZ] = "";
  const char *got;
  lp_object a, b;
  lp_store *s;
  snprintf(root, sizeof root, "%s/framed", top);
  if (!check(lp_store_open(&s, "local", root, "framed", NULL, err, sizeof err) == LUPINE_OK,
             "open a store that hashes frames")) {
    diag(err);
    return;
  }
  lp_store_local_hash_frames(s, 1000);
  if (!check(stream(s, small, sizeof small, &a, err, sizeof err) == LUPINE_OK && a.created,
             "a streamed put"))
    diag(err);
  lp_store_local_path(s, a.hash, path, sizeof path);
  hash_file(path, want);
  got = lp_store_local_frame_hash(s, a.hash);
  same(got != NULL ? got : "(none)", want, "it gives the hash of the frame it wrote");
  check(lp_store_local_frame_hash(s, "sha256:0000") == NULL, "and of no other object");
  check(stream(s, small, sizeof small, &b, err, sizeof err) == LUPINE_OK && !b.created,
        "the same bytes again: found");
  check(lp_store_local_frame_hash(s, a.hash) == NULL, "a streamed put that found its object "
        "hashes none");
  memset(big, 'x', sizeof big);
  check(stream(s, big, sizeof big, &b, err, sizeof err) == LUPINE_OK && b.created,
        "a streamed put of 4000 bytes");
  check(lp_store_local_frame_hash(s, b.hash) == NULL, "above the size given: no frame hashed");
  check(stream(s, small, 5, &a, err, sizeof err) == LUPINE_OK &&
        lp_store_local_frame_hash(s, a.hash) != NULL, "a streamed put of 5 bytes: hashed");
  check(lp_store_put(s, small, 5, &b, err, sizeof err) == LUPINE_OK && !b.created &&
        lp_store_local_frame_hash(s, a.hash) == NULL, "a put after it: none");
  lp_store_close(s);
}

/* The whole file at path (*n bytes), or NULL. */
static unsigned char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  unsigned char *p = NULL;
  long size;
  if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
      fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)size + 1)) != NULL &&
      fread(p, 1, (size_t)size, f) != (size_t)size) {
    free(p);
    p = NULL;
  }
  *n = p != NULL ? (size_t)size : 0;
  if (f != NULL) fclose(f);
  return p;
}

/*
** A large streamed put whose first MiB does not compress is a frame of raw
** blocks (what put would store for the same bytes), its frame hashed as
** written, read back exactly; one whose start compresses is compressed.
*/
static void test_streamed_raw(const char *top) {
  size_t n = 10u << 20, k, fn = 0, want_size = 10 + 3 * (n / (128u << 10)) + n + 4;
  unsigned char *buf = malloc(n), *file, *data = NULL;
  char root[PATHSZ], path[PATHSZ], fhash[LP_HASH_STRLEN + 1], err[LP_ERRSZ] = "";
  const char *framed;
  lp_frame_raw f;
  lp_object o;
  lp_store *s;
  snprintf(root, sizeof root, "%s/rawstream", top);
  if (!check(lp_store_open(&s, "local", root, "raw", NULL, err, sizeof err) == LUPINE_OK,
             "open a store for streamed raw frames")) {
    diag(err);
    return;
  }
  lp_store_local_hash_frames(s, 64u << 20);
  noise(buf, n, 7);
  if (!check(stream(s, (const char *)buf, n, &o, err, sizeof err) == LUPINE_OK && o.created,
             "10 MiB of noise, streamed"))
    diag(err);
  check(o.stored_size == want_size, "it is stored as raw blocks (%llu bytes, want %zu)",
        (unsigned long long)o.stored_size, want_size);
  lp_store_local_path(s, o.hash, path, sizeof path);
  file = read_all(path, &fn);
  lp_frame_raw_init(&f, NULL, 0, buf, n, NULL);
  {
    unsigned char *frame = raw_bytes(&f, &k);
    check(file != NULL && fn == k && memcmp(file, frame, k) == 0,
          "the same frame as the one a put of the bytes makes");
    free(frame);
  }
  lp_frame_hash_bytes(file, fn, fhash);
  framed = lp_store_local_frame_hash(s, o.hash);
  same(framed != NULL ? framed : "(none)", fhash, "its frame hashed as it was written");
  free(file);
  check(lp_store_get(s, o.hash, n, &data, &k, err, sizeof err) == LUPINE_OK && k == n &&
        memcmp(data, buf, n) == 0, "read back exactly");
  free(data);
  /* the start decides: noise, then text, is still raw */
  fill_text(buf + (1u << 20), n - (1u << 20), 3);
  check(stream(s, (const char *)buf, n, &o, err, sizeof err) == LUPINE_OK &&
        o.stored_size == want_size, "a first MiB of noise, then text: raw blocks");
  fill_text(buf, n, 4);
  check(stream(s, (const char *)buf, n, &o, err, sizeof err) == LUPINE_OK &&
        o.stored_size < n / 2, "text from the start: compressed (%llu bytes)",
        (unsigned long long)o.stored_size);
  lp_store_close(s);
  free(buf);
}

int main(void) {
  char top[] = "/tmp/lupine-test-store-XXXXXX", root[200], err[LP_ERRSZ] = "";
  lp_store *s;

  setvbuf(stdout, NULL, _IOLBF, 0);   /* TAP lines survive a crash */
  if (mkdtemp(top) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  test_hash();
  test_open(top);
  snprintf(root, sizeof root, "%s/store", top);
  if (lp_store_open(&s, "local", root, "test", NULL, err, sizeof err) != LUPINE_OK) {
    printf("Bail out! %s\n", err);
    return 1;
  }
  test_put_get(s);
  test_big(s);
  test_missing(s);
  test_corrupt(s);
  test_frames(s);
  test_raw_frames();
  test_incompressible();
  test_bad_hashes(s);
  test_concurrent(s);
  test_damaged_put(s);
  test_fifo(s);
  test_stale_temporaries(top);
  test_copies(s, top);
  test_interop(s, top);
  test_frame_hashes(top);
  test_streamed_raw(top);
  lp_store_close(s);
  nftw(top, unlock_one, 16, FTW_PHYS);
  nftw(top, remove_one, 16, FTW_DEPTH | FTW_PHYS);
  return tap_done();
}
