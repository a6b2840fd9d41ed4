/* SPDX-License-Identifier: MIT */
/*
** store_local.c: the local store flavor, a folder on this machine: the
** ops of store.c's interface (lp_store_local_ops), and the only file that
** knows the folder's layout.
**
** An object is stored at <root>/objects/<first 2 hex>/<other 62 hex>.zst.
** A put writes a unique file in <root>/tmp (same filesystem), syncs it
** and renames it into place, so a reader sees a whole object or none, and
** two writers of the same object both succeed (the last rename wins, with
** identical bytes). A get checks the frame and the hash: corruption is
** reported, never returned.
**
** A temporary file is named after its writer (lp_owner_tag): opening a
** store removes those whose writer is gone (killed in the middle of a
** put), and leaves those of live processes and of other hosts alone.
**
** An object already on disk is not trusted blindly: a put of the same
** content checks it first (see same_content) and replaces a damaged one.
*/
#ifndef _GNU_SOURCE   /* the ThreadSanitizer build defines it for every file */
#define _GNU_SOURCE   /* realpath, and syncfs: one sync for a batch of objects */
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <zstd.h>
#include "store_int.h"

#define STORE_LEVEL 3   /* zstd's default: fast, and most of the gain */

/* Bytes a path may need beyond the root: "/objects/xx/<62 hex>.zst\0". */
#define PATH_ROOM (sizeof "/objects/xx/.zst" + LP_HASH_HEXLEN - 2)

/* A local store: the interface's part, then the folder's. */
typedef struct local {
  lp_store base;
  char *root;         /* absolute, so a chdir does not move the store */
  ZSTD_CCtx *cctx;    /* reused by every put: one thread at a time */
  ZSTD_DCtx *dctx;    /* the same, for checking an object already there */
  int level;          /* zstd compression level */
  int unsynced;       /* objects put without their syncs since lp_store_sync */
  int nosync;         /* a cache: a crash may lose what it holds (see lp_store_local_nosync) */
  uint64_t hash_frames_below;   /* streamed puts of fewer bytes hash their frames */
  char framed[LP_HASH_STRLEN + 1];       /* the object the last streamed put wrote, */
  char frame_sha[LP_HASH_STRLEN + 1];    /* and its frame's hash ("": none) */
  long owner_pid;     /* the process owner is the tag of (a worker is a fork) */
  char owner[LP_OWNER_MAX];
} local;

/* Format a message and append strerror(errno): "<message> (<reason>)". */
static LP_PRINTF(3, 4) int io_error(char *err, size_t errsz, const char *fmt, ...) {
  char msg[LP_ERRSZ];
  const char *reason = strerror(errno);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lp_errf(err, errsz, "%s (%s)", msg, reason);
  return LUPINE_IO;
}

/* mkdir that accepts an existing entry; *created (if not NULL) says which. */
static int make_dir(const char *path, int *created, char *err, size_t errsz) {
  int ok = mkdir(path, 0777) == 0;
  if (created != NULL) *created = ok;
  if (!ok && errno != EEXIST)
    return io_error(err, errsz, "cannot create directory '%s'", path);
  return LUPINE_OK;
}

/* Every path of the store must fit in PATH_MAX. */
static int check_root_length(const char *root, char *err, size_t errsz) {
  size_t n = strlen(root);
  if (n + PATH_ROOM <= PATH_MAX) return LUPINE_OK;
  lp_errf(err, errsz, "store root '%.64s...' is too long (%zu bytes)", root, n);
  return LUPINE_MISUSE;
}

/* mkdir -p: create dir (shorter than PATH_MAX) and its missing parents. */
static int make_dirs(const char *dir, char *err, size_t errsz) {
  char buf[PATH_MAX];
  char *p;
  int rc;
  memcpy(buf, dir, strlen(dir) + 1);
  for (p = buf + 1; ; p++) {
    char c = *p;
    if (c != '/' && c != '\0') continue;
    *p = '\0';
    if ((rc = make_dir(buf, NULL, err, errsz)) != LUPINE_OK) return rc;
    if (c == '\0') return LUPINE_OK;
    *p = c;
  }
}

/* fsync a directory, so the entries just created or renamed in it last. */
static int sync_dir(const char *path, char *err, size_t errsz) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int ok = fd >= 0 && fsync(fd) == 0;
  int rc = ok ? LUPINE_OK
              : io_error(err, errsz, "cannot sync directory '%s'", path);
  if (fd >= 0) close(fd);
  return rc;
}

/*
** Open an object's file for reading. O_NONBLOCK, then fstat: a FIFO (or a
** device) put where an object belongs would otherwise block the open, or
** the reads, forever; anything but a regular file is refused as corrupt.
** LUPINE_NOTFOUND if there is no file.
*/
static int open_object(const char *hash, const char *path, int *fd, struct stat *st,
                       char *err, size_t errsz) {
  int rc;
  if ((*fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
    if (errno != ENOENT) return io_error(err, errsz, "object %s: cannot open '%s'", hash, path);
    lp_errf(err, errsz, "object %s is missing (expected at %s)", hash, path);
    return LUPINE_NOTFOUND;
  }
  if (fstat(*fd, st) != 0)
    rc = io_error(err, errsz, "object %s: cannot stat '%s'", hash, path);
  else if (!S_ISREG(st->st_mode))
    rc = lp_frame_corrupt(err, errsz, hash, "'%s' is not a regular file", path);
  else
    return LUPINE_OK;
  close(*fd);
  *fd = -1;
  return rc;
}

/* The name of a new temporary file: <root>/tmp/<kind>-<owner tag>-XXXXXX. */
static void temp_name(local *s, const char *kind, char *out, size_t outsz) {
  long pid = (long)getpid();
  if (pid != s->owner_pid) {
    lp_owner_tag(s->owner);
    s->owner_pid = pid;
  }
  snprintf(out, outsz, "%s/tmp/%s-%s-XXXXXX", s->root, kind, s->owner);
}

/* Remove the temporary files in tmp/ whose writer is gone (best effort:
** what cannot be removed now is tried again by the next process). */
static void remove_stale(const char *root) {
  static const char *const kinds[] = {"obj-", "stream-"};
  char path[PATH_MAX];
  struct dirent *d;
  DIR *dir;
  size_t k;
  snprintf(path, sizeof path, "%s/tmp", root);
  if ((dir = opendir(path)) == NULL) return;
  while ((d = readdir(dir)) != NULL)
    for (k = 0; k < sizeof kinds / sizeof *kinds; k++)
      if (strncmp(d->d_name, kinds[k], strlen(kinds[k])) == 0 &&
          lp_owner_gone(d->d_name + strlen(kinds[k]))) {
        snprintf(path, sizeof path, "%s/tmp/%s", root, d->d_name);
        unlink(path);
      }
  closedir(dir);
}

/*
** Make fd read-only (objects are immutable; access is governed by the
** directories, which honour the umask), write n bytes, sync and close it,
** even on failure. Returns 0, or -1 with errno set.
*/
static int fill(int fd, const unsigned char *p, size_t n, int sync) {
  int e;
  if (fchmod(fd, 0444) != 0) goto fail;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) goto fail;
    p += w;
    n -= (size_t)w;
  }
  if (sync && fdatasync(fd) != 0) goto fail;
  return close(fd);
fail:
  e = errno;
  close(fd);
  errno = e;
  return -1;
}

/* Tell the store's log that a damaged object (why: what its check found)
** was written again. */
static void replaced(lp_store *s, const char *why) {
  char msg[LP_ERRSZ + PATH_MAX + 64];
  if (s->log == NULL) return;
  snprintf(msg, sizeof msg, "store '%s': %s; replaced it with the bytes being saved", s->root,
           why);
  s->log(s->log_ud, msg);
}

/* Where the object with this (well-formed) hash lives, whether or not it
** is there. */
static int object_path(const local *s, const char *hash, char *buf, size_t bufsz) {
  const char *hex;
  int n;
  hex = hash + sizeof LP_HASH_PREFIX - 1;
  n = snprintf(buf, bufsz, "%s/objects/%.2s/%s.zst", s->root, hex, hex + 2);
  return n >= 0 && (size_t)n < bufsz ? LUPINE_OK : LUPINE_MISUSE;
}

static int l_local_path(lp_store *base, const char *hash, char *buf, size_t bufsz) {
  return object_path((const local *)base, hash, buf, bufsz);
}

static int l_exists(lp_store *base, const char *hash) {
  char path[PATH_MAX];
  struct stat st;
  return object_path((const local *)base, hash, path, sizeof path) == LUPINE_OK &&
         stat(path, &st) == 0 && st.st_size > 0;   /* see put */
}

/*
** Does the file at path hold an intact object of the len bytes at data?
** The cheap checks first (a regular file, no bigger than a frame of len
** bytes needs, a frame header recording len bytes), then the frame
** decompressed piece by piece and compared with data, which hashes to the
** object's name: as sound as hashing the file's content, and cheaper. 1
** if so; else 0, with what is wrong in why.
*/
static int same_content(local *s, const char *hash, const char *path, const void *data,
                        size_t len, char *why, size_t whysz) {
  const unsigned char *want = data;
  unsigned char *frame = NULL, *out = NULL;
  size_t n = 0, outcap = ZSTD_DStreamOutSize(), at = 0, left = 1;
  unsigned long long claimed;
  struct stat st;
  int fd, same = 0;
  if (open_object(hash, path, &fd, &st, why, whysz) != LUPINE_OK) return 0;
  if (st.st_size == 0 || (uint64_t)st.st_size > ZSTD_compressBound(len)) {
    lp_frame_corrupt(why, whysz, hash, "file is %lld bytes, not what a frame of %zu bytes takes",
                     (long long)st.st_size, len);
    goto done;
  }
  if ((frame = malloc((size_t)st.st_size)) == NULL || (out = malloc(outcap)) == NULL ||
      (s->dctx == NULL && (s->dctx = ZSTD_createDCtx()) == NULL)) {
    lp_errf(why, whysz, "object %s: out of memory checking it", hash);
    goto done;
  }
  while (n < (size_t)st.st_size) {
    ssize_t r = read(fd, frame + n, (size_t)st.st_size - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      io_error(why, whysz, "object %s: cannot read '%s'", hash, path);
      goto done;
    }
    n += (size_t)r;
  }
  claimed = ZSTD_getFrameContentSize(frame, n);
  if (claimed != (unsigned long long)len) {
    lp_frame_corrupt(why, whysz, hash, "its frame header does not record its %zu bytes", len);
    goto done;
  }
  if (ZSTD_findFrameCompressedSize(frame, n) != n) {
    lp_frame_corrupt(why, whysz, hash, "its frame is cut short or followed by other bytes");
    goto done;
  }
  {
    ZSTD_inBuffer ib = {frame, n, 0};
    ZSTD_DCtx_reset(s->dctx, ZSTD_reset_session_only);
    while (ib.pos < ib.size || left != 0) {
      ZSTD_outBuffer ob = {out, outcap, 0};
      size_t before = ib.pos;
      left = ZSTD_decompressStream(s->dctx, &ob, &ib);
      if (ZSTD_isError(left)) {
        lp_frame_corrupt(why, whysz, hash, "bad frame (%s)", ZSTD_getErrorName(left));
        goto done;
      }
      if (ob.pos > len - at || memcmp(out, want + at, ob.pos) != 0) {
        lp_frame_corrupt(why, whysz, hash, "its content differs from the bytes it is named after");
        goto done;
      }
      at += ob.pos;
      if (ob.pos == 0 && ib.pos == before) break;   /* no progress: the frame ends early */
    }
  }
  same = left == 0 && at == len;
  if (!same) lp_frame_corrupt(why, whysz, hash, "it ends early (%zu of %zu bytes)", at, len);
done:
  close(fd);
  free(frame);
  free(out);
  return same;
}

int lp_store_local_compress(lp_store *base, const char *hash, const void *data, size_t len,
                            unsigned char **frame, size_t *n, char *err, size_t errsz) {
  local *s = (local *)base;
  size_t cap = ZSTD_compressBound(len);
  *frame = NULL;
  char what[LP_HASH_STRLEN + 32];
  if (hash != NULL) snprintf(what, sizeof what, "object %s", hash);
  else snprintf(what, sizeof what, "a value of %zu bytes", len);
  if (ZSTD_isError(cap) || (*frame = malloc(cap)) == NULL) {
    lp_errf(err, errsz, "%s: out of memory compressing %zu bytes", what, len);
    return LUPINE_NOMEM;
  }
  ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, s->level);
  *n = ZSTD_compress2(s->cctx, *frame, cap, data, len);
  if (!ZSTD_isError(*n)) return LUPINE_OK;
  lp_errf(err, errsz, "%s: cannot compress (%s)", what, ZSTD_getErrorName(*n));
  free(*frame);
  *frame = NULL;
  return LUPINE_ERROR;
}

int lp_store_local_level(const lp_store *base) {
  return ((const local *)base)->level;
}

static int l_sync(lp_store *base, char *err, size_t errsz);

static int put_one(lp_store *base, const void *data, size_t len, lp_object *info, int sync,
                   char *err, size_t errsz) {
  local *s = (local *)base;
  char path[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX] = "", why[LP_ERRSZ] = "";
  unsigned char *frame = NULL;
  struct stat st;
  size_t n;
  int fd, created, rc;

  s->framed[0] = '\0';   /* what it writes is not a streamed put's frame */
  if ((rc = lp_frame_hash(data, len, info->hash, err, errsz)) != LUPINE_OK) return rc;
  info->size = len;
  object_path(s, info->hash, path, sizeof path);  /* fits: see PATH_ROOM */
  if (stat(path, &st) == 0) {
    /* A file has the object's name: trusted only once checked. Damaged
    ** (a crash on a file system that keeps a name without its data, a
    ** flipped bit, a hand edit), it is replaced by the rename below. */
    if (same_content(s, info->hash, path, data, len, why, sizeof why)) {
      info->created = 0;
      info->stored_size = (uint64_t)st.st_size;
      /* another writer's unsynced put, maybe: durable by our sync too */
      s->unsynced++;
      return sync ? l_sync(base, err, errsz) : LUPINE_OK;
    }
  } else if (errno != ENOENT)
    return io_error(err, errsz, "object %s: cannot stat '%s'", info->hash, path);

  if ((rc = lp_store_local_compress(base, info->hash, data, len, &frame, &n, err, errsz)) !=
      LUPINE_OK)
    return rc;

  /* The fan-out directory, and its own entry in objects/ when new. */
  strcpy(dir, path);
  *strrchr(dir, '/') = '\0';
  if ((rc = make_dir(dir, &created, err, errsz)) != LUPINE_OK) goto done;
  if (created && sync) {
    char objects[PATH_MAX];
    snprintf(objects, sizeof objects, "%s/objects", s->root);
    if ((rc = sync_dir(objects, err, errsz)) != LUPINE_OK) goto done;
  }

  /* mkstemp makes the name unique across threads and processes. */
  temp_name(s, "obj", tmp, sizeof tmp);
  if ((fd = mkstemp(tmp)) < 0) {
    rc = io_error(err, errsz, "object %s: cannot create '%s'", info->hash, tmp);
    tmp[0] = '\0';
    goto done;
  }
  if (fill(fd, frame, n, sync) != 0) {
    rc = io_error(err, errsz, "object %s: cannot write '%s'", info->hash, tmp);
    goto done;
  }
  if (rename(tmp, path) != 0) {
    rc = io_error(err, errsz, "object %s: cannot rename '%s' to '%s'",
                  info->hash, tmp, path);
    goto done;
  }
  tmp[0] = '\0';
  if (!sync) s->unsynced++;
  else if ((rc = sync_dir(dir, err, errsz)) != LUPINE_OK) goto done;
  info->created = 1;
  info->stored_size = n;
  if (why[0] != '\0') replaced(base, why);
done:
  if (tmp[0] != '\0') unlink(tmp);
  free(frame);
  return rc;
}

/* The parts joined: compressing and comparing take one buffer. */
static int l_put(lp_store *base, const void *head, size_t hlen, const void *data, size_t len,
                 lp_object *info, int sync, char *err, size_t errsz) {
  unsigned char *joined;
  int rc;
  if (hlen == 0) return put_one(base, data, len, info, sync, err, errsz);
  if ((joined = malloc(hlen + len)) == NULL) {
    lp_errf(err, errsz, "store '%s': out of memory saving %zu bytes", base->root, hlen + len);
    return LUPINE_NOMEM;
  }
  memcpy(joined, head, hlen);
  memcpy(joined + hlen, data, len);
  rc = put_one(base, joined, hlen + len, info, sync, err, errsz);
  free(joined);
  return rc;
}

static int l_sync(lp_store *base, char *err, size_t errsz) {
  local *s = (local *)base;
  int fd, ok;
  if (s->unsynced == 0) return LUPINE_OK;
  fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ok = fd >= 0 && syncfs(fd) == 0;
  if (fd >= 0) close(fd);
  if (!ok) return io_error(err, errsz, "cannot sync the store at '%s'", s->root);
  s->unsynced = 0;
  return LUPINE_OK;
}

static int l_get(lp_store *base, const char *hash, uint64_t max_size,
                 unsigned char **data, size_t *len, char *err, size_t errsz) {
  local *s = (local *)base;
  char path[PATH_MAX];
  unsigned char *frame = NULL;
  struct stat st;
  size_t bound, n = 0;
  int fd, rc;

  object_path(s, hash, path, sizeof path);   /* fits: see PATH_ROOM */
  if ((rc = open_object(hash, path, &fd, &st, err, errsz)) != LUPINE_OK) return rc;
  /* Read no more than a frame of max_size bytes can take. */
  bound = ZSTD_compressBound(max_size);
  if (!ZSTD_isError(bound) && (uint64_t)st.st_size > bound) {
    rc = lp_frame_corrupt(err, errsz, hash, "file is %lld bytes, more than a frame "
                          "of %llu bytes needs", (long long)st.st_size,
                          (unsigned long long)max_size);
    goto done;
  }
  if ((frame = malloc(st.st_size > 0 ? (size_t)st.st_size : 1)) == NULL) {
    lp_errf(err, errsz, "object %s: out of memory reading %lld bytes", hash,
            (long long)st.st_size);
    rc = LUPINE_NOMEM;
    goto done;
  }
  while (n < (size_t)st.st_size) {
    ssize_t r = read(fd, frame + n, (size_t)st.st_size - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = io_error(err, errsz, "object %s: cannot read '%s'", hash, path);
      goto done;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  rc = lp_frame_decode(frame, n, max_size, hash, data, len, err, errsz);
done:
  close(fd);
  free(frame);
  return rc;
}

/* ---- listing and removing objects (for gc.c) ---- */

static int is_hex(const char *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
  return 1;
}

/*
** Only names a put could have written count as objects: a folder of 2 hex
** digits holding regular files named <62 hex digits>.zst. tmp/ is not
** under objects/, and anything else found there is left alone.
*/
static int l_list(lp_store *base, lp_store_object_fn fn, void *ud, char *err, size_t errsz) {
  local *s = (local *)base;
  char path[PATH_MAX], hash[LP_HASH_STRLEN + 1];
  const size_t hexname = LP_HASH_HEXLEN - 2, plen = sizeof LP_HASH_PREFIX - 1;
  DIR *top, *sub = NULL;
  struct dirent *d, *e;
  struct stat st;
  int rc = LUPINE_OK;

  snprintf(path, sizeof path, "%s/objects", s->root);
  if ((top = opendir(path)) == NULL)
    return io_error(err, errsz, "cannot list objects in '%s'", path);
  memcpy(hash, LP_HASH_PREFIX, plen);
  while (rc == LUPINE_OK && (errno = 0, d = readdir(top)) != NULL) {
    if (strlen(d->d_name) != 2 || !is_hex(d->d_name, 2)) continue;
    snprintf(path, sizeof path, "%s/objects/%s", s->root, d->d_name);
    if ((sub = opendir(path)) == NULL) {
      if (errno == ENOTDIR || errno == ENOENT) continue;
      rc = io_error(err, errsz, "cannot list objects in '%s'", path);
      break;
    }
    memcpy(hash + plen, d->d_name, 2);
    while (rc == LUPINE_OK && (errno = 0, e = readdir(sub)) != NULL) {
      if (strlen(e->d_name) != hexname + 4 || !is_hex(e->d_name, hexname) ||
          strcmp(e->d_name + hexname, ".zst") != 0)
        continue;
      snprintf(path, sizeof path, "%s/objects/%s/%s", s->root, d->d_name, e->d_name);
      if (lstat(path, &st) != 0) {
        if (errno == ENOENT) continue;
        rc = io_error(err, errsz, "cannot stat '%s'", path);
        break;
      }
      if (!S_ISREG(st.st_mode)) continue;
      memcpy(hash + plen + 2, e->d_name, hexname);
      hash[LP_HASH_STRLEN] = '\0';
      rc = fn(ud, hash, (uint64_t)st.st_size, (int64_t)st.st_mtime);
    }
    if (rc == LUPINE_OK && errno != 0)
      rc = io_error(err, errsz, "cannot list objects in '%s/objects/%s'", s->root, d->d_name);
    closedir(sub);
  }
  if (rc == LUPINE_OK && errno != 0)
    rc = io_error(err, errsz, "cannot list objects in '%s/objects'", s->root);
  closedir(top);
  return rc;
}

static int l_remove(lp_store *base, const char *hash, int *removed, char *err, size_t errsz) {
  char path[PATH_MAX];
  object_path((local *)base, hash, path, sizeof path);
  if (unlink(path) == 0) {
    *removed = 1;
    return LUPINE_OK;
  }
  if (errno == ENOENT) return LUPINE_OK;
  return io_error(err, errsz, "object %s: cannot remove '%s'", hash, path);
}

/* ---- streamed objects: memory stays bounded whatever their size ---- */

/*
** A streamed put of LP_FRAME_HASHER_MIN bytes or more hashes its pieces
** on a helper thread beside the compression (lp_frame_hasher, frame.c):
** SHA-256 of 1 GiB takes 0.6 s here, zstd of it 1.4 s. Its first
** LP_FRAME_SAMPLED bytes are held back to try: if they do not compress
** (lp_frame_incompressible), the object is written as a frame of raw
** blocks (lp_frame_raw_stream), which costs no compression at all (a
** file of random bytes, a compressed archive, model weights). The start
** decides for the whole object: a file that compresses only further on
** is stored as it is, larger than it could be, and still read right.
*/

/* A streamed put: the interface's part, then a temporary file's. */
typedef struct writer {
  lp_store_writer base;
  local *s;           /* NULL: hashing only */
  unsigned char *held;   /* the first bytes, until they decide how to frame */
  size_t nheld;
  lp_frame_raw_stream *raw;   /* the frame is raw blocks; else zstd's */
  ZSTD_CCtx *cctx;
  EVP_MD_CTX *sha;
  lp_frame_hasher *hasher;   /* hashes beside the compression (large objects), or NULL */
  EVP_MD_CTX *frame_sha;   /* the frame's, when the store hashes frames */
  unsigned char *out;
  size_t outcap;
  uint64_t size, written, stored;
  int fd;
  char tmp[PATH_MAX];
} writer;

int lp_store_local_write(int fd, const void *p, size_t n) {
  const char *q = p;
  while (n > 0) {
    ssize_t w = write(fd, q, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    q += w;
    n -= (size_t)w;
  }
  return 0;
}

static void writer_free(writer *w) {
  lp_frame_hasher_stop(w->hasher);
  free(w->held);
  lp_frame_raw_stream_free(w->raw);
  if (w->fd >= 0) close(w->fd);
  if (w->tmp[0] != '\0') unlink(w->tmp);
  ZSTD_freeCCtx(w->cctx);
  EVP_MD_CTX_free(w->sha);
  EVP_MD_CTX_free(w->frame_sha);
  free(w->out);
  free(w);
}

static void l_writer_abort(lp_store_writer *base) {
  writer_free((writer *)base);
}

static int l_writer_open(lp_store *base, uint64_t size, lp_store_writer **out, char *err,
                         size_t errsz) {
  local *s = (local *)base;
  writer *w = calloc(1, sizeof *w);
  *out = NULL;
  if (w == NULL) goto nomem;
  w->base.ops = &lp_store_local_ops;
  w->fd = -1;
  w->s = s;
  w->size = size;
    if ((w->sha = EVP_MD_CTX_new()) == NULL ||
      EVP_DigestInit_ex(w->sha, lp_frame_sha256(), NULL) != 1)
    goto nomem;
  if (s == NULL) {   /* hashing only */
    *out = &w->base;
    return LUPINE_OK;
  }
  s->framed[0] = '\0';
  w->outcap = ZSTD_CStreamOutSize();
  if ((w->cctx = ZSTD_createCCtx()) == NULL || (w->out = malloc(w->outcap)) == NULL) goto nomem;
  if (size < s->hash_frames_below && ((w->frame_sha = EVP_MD_CTX_new()) == NULL ||
                         EVP_DigestInit_ex(w->frame_sha, lp_frame_sha256(), NULL) != 1))
    goto nomem;
  if (size >= LP_FRAME_HASHER_MIN) {
    w->hasher = lp_frame_hasher_start(w->sha);
    if ((w->held = malloc(LP_FRAME_SAMPLED)) == NULL) goto nomem;
  }
  /* the size goes in the frame header, as for every object */
  ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, s->level);
  ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setPledgedSrcSize(w->cctx, (unsigned long long)size);
  temp_name(s, "stream", w->tmp, sizeof w->tmp);
  if ((w->fd = mkstemp(w->tmp)) < 0) {
    int rc = io_error(err, errsz, "cannot create '%s'", w->tmp);
    w->tmp[0] = '\0';
    writer_free(w);
    return rc;
  }
  *out = &w->base;
  return LUPINE_OK;
nomem:
  if (w != NULL) writer_free(w);
  lp_errf(err, errsz, "out of memory starting an object of %llu bytes",
          (unsigned long long)size);
  return LUPINE_NOMEM;
}

/* Bytes of the frame into the temporary file (a raw stream's emit). */
static int emit(void *ud, const void *p, size_t n) {
  writer *w = ud;
  if (lp_store_local_write(w->fd, p, n) != 0) return -1;
  if (w->frame_sha != NULL) EVP_DigestUpdate(w->frame_sha, p, n);
  w->stored += n;
  return 0;
}

/* Compress what is in ib (mode: continue or end) into the temporary file. */
static int pump(writer *w, ZSTD_inBuffer *ib, ZSTD_EndDirective mode, char *err,
                size_t errsz) {
  size_t left;
  do {
    ZSTD_outBuffer ob = {w->out, w->outcap, 0};
    left = ZSTD_compressStream2(w->cctx, &ob, ib, mode);
    if (ZSTD_isError(left)) {
      lp_errf(err, errsz, "cannot compress an object (%s)", ZSTD_getErrorName(left));
      return LUPINE_ERROR;
    }
    if (emit(w, w->out, ob.pos) != 0) return io_error(err, errsz, "cannot write '%s'", w->tmp);
  } while (mode == ZSTD_e_end ? left != 0 : ib->pos < ib->size);
  return LUPINE_OK;
}

/* Content into the frame, raw or compressed. */
static int frame(writer *w, const void *p, size_t n, char *err, size_t errsz) {
  ZSTD_inBuffer ib = {p, n, 0};
  if (w->raw == NULL) return pump(w, &ib, ZSTD_e_continue, err, errsz);
  if (lp_frame_raw_stream_write(w->raw, p, n, emit, w) != 0)
    return io_error(err, errsz, "cannot write '%s'", w->tmp);
  return LUPINE_OK;
}

/* The frame's end: a raw frame's checksum, or what zstd still holds. */
static int frame_end(writer *w, char *err, size_t errsz) {
  ZSTD_inBuffer ib = {NULL, 0, 0};
  if (w->raw == NULL) return pump(w, &ib, ZSTD_e_end, err, errsz);
  if (lp_frame_raw_stream_end(w->raw, emit, w) != 0)
    return io_error(err, errsz, "cannot write '%s'", w->tmp);
  return LUPINE_OK;
}

/* Hold content back until LP_FRAME_SAMPLED bytes are there, then frame
** them as they decide, and what follows the same way. */
static int frame_held(writer *w, const void *p, size_t n, char *err, size_t errsz) {
  size_t k = LP_FRAME_SAMPLED - w->nheld;
  int rc;
  if (w->held == NULL) return frame(w, p, n, err, errsz);
  if (k > n) k = n;
  memcpy(w->held + w->nheld, p, k);
  if ((w->nheld += k) < LP_FRAME_SAMPLED) return LUPINE_OK;
  if (lp_frame_incompressible(w->held, w->nheld, w->s->level) &&
      (w->raw = lp_frame_raw_stream_new(w->size)) == NULL) {
    lp_errf(err, errsz, "out of memory writing an object of %llu bytes",
            (unsigned long long)w->size);
    return LUPINE_NOMEM;
  }
  rc = frame(w, w->held, w->nheld, err, errsz);
  free(w->held);
  w->held = NULL;
  return rc == LUPINE_OK ? frame(w, (const char *)p + k, n - k, err, errsz) : rc;
}

static int l_writer_write(lp_store_writer *base, const void *p, size_t n, char *err,
                          size_t errsz) {
  writer *w = (writer *)base;
  int rc;
  if (n > w->size - w->written) {
    lp_errf(err, errsz, "an object grew past the %llu bytes it announced",
            (unsigned long long)w->size);
    return LUPINE_MISUSE;
  }
  w->written += n;
  if (w->hasher == NULL) {
    EVP_DigestUpdate(w->sha, p, n);
    return w->s == NULL ? LUPINE_OK : frame_held(w, p, n, err, errsz);
  }
  lp_frame_hasher_hash(w->hasher, p, n);
  rc = frame_held(w, p, n, err, errsz);
  lp_frame_hasher_wait(w->hasher);
  return rc;
}

/* A sink that takes every piece: reading an object only to check it. */
static int ignore_piece(void *ud, const void *p, size_t n) {
  (void)ud, (void)p, (void)n;
  return 0;
}

static int l_get_stream(lp_store *base, const char *hash, uint64_t size, lp_store_sink sink,
                        void *ud, char *err, size_t errsz);

static int l_writer_close(lp_store_writer *base, lp_object *info, char *err, size_t errsz) {
  writer *w = (writer *)base;
  char path[PATH_MAX], dir[PATH_MAX], why[LP_ERRSZ] = "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen;
  struct stat st;
  int rc = LUPINE_OK, created;
  if (w->written != w->size) {
    lp_errf(err, errsz, "an object ended at %llu of the %llu bytes it announced",
            (unsigned long long)w->written, (unsigned long long)w->size);
    rc = LUPINE_MISUSE;
    goto done;
  }
  if (w->s != NULL && (rc = frame_end(w, err, errsz)) != LUPINE_OK) goto done;
  if (EVP_DigestFinal_ex(w->sha, md, &mdlen) != 1) {
    lp_errf(err, errsz, "cannot hash an object (OpenSSL's SHA-256 failed)");
    rc = LUPINE_ERROR;
    goto done;
  }
  lp_frame_format_hash(md, mdlen, info->hash);
  info->size = w->size;
  info->created = 0;
  info->stored_size = w->stored;
  if (w->s == NULL) goto done;
  object_path(w->s, info->hash, path, sizeof path);
  /* Stored before: kept if it reads back whole and hashes right (what it
  ** holds is not at hand to compare, as put does); else replaced below. */
  if (stat(path, &st) == 0) {
    if (l_get_stream(&w->s->base, info->hash, w->size, ignore_piece, NULL, why, sizeof why) ==
        LUPINE_OK) {
      info->stored_size = (uint64_t)st.st_size;
      goto done;
    }
  } else if (errno != ENOENT) {
    rc = io_error(err, errsz, "object %s: cannot stat '%s'", info->hash, path);
    goto done;
  }
  if (fchmod(w->fd, 0444) != 0 || (!w->s->nosync && fdatasync(w->fd) != 0)) {
    rc = io_error(err, errsz, "cannot sync '%s'", w->tmp);
    goto done;
  }
  strcpy(dir, path);
  *strrchr(dir, '/') = '\0';
  if ((rc = make_dir(dir, &created, err, errsz)) != LUPINE_OK) goto done;
  if (created && !w->s->nosync) {
    char objects[PATH_MAX];
    snprintf(objects, sizeof objects, "%s/objects", w->s->root);
    if ((rc = sync_dir(objects, err, errsz)) != LUPINE_OK) goto done;
  }
  if (rename(w->tmp, path) != 0) {
    rc = io_error(err, errsz, "object %s: cannot rename '%s' to '%s'", info->hash, w->tmp,
                  path);
    goto done;
  }
  w->tmp[0] = '\0';
  if (!w->s->nosync) rc = sync_dir(dir, err, errsz);
  info->created = 1;
  if (w->frame_sha != NULL && EVP_DigestFinal_ex(w->frame_sha, md, &mdlen) == 1) {
    lp_frame_format_hash(md, mdlen, w->s->frame_sha);
    memcpy(w->s->framed, info->hash, sizeof w->s->framed);
  }
  if (why[0] != '\0') replaced(&w->s->base, why);
done:
  writer_free(w);
  return rc;
}

static int l_get_stream(lp_store *base, const char *hash, uint64_t size, lp_store_sink sink,
                        void *ud, char *err, size_t errsz) {
  char path[PATH_MAX];
  size_t incap = ZSTD_DStreamInSize();
  unsigned char *in = NULL;
  lp_frame_decoder *d = NULL;
  struct stat st;
  int fd = -1, rc;
  object_path((local *)base, hash, path, sizeof path);
  if ((rc = open_object(hash, path, &fd, &st, err, errsz)) != LUPINE_OK) goto done;
  if ((rc = lp_frame_decoder_open(&d, hash, size, sink, ud, err, errsz)) != LUPINE_OK) goto done;
  if ((in = malloc(incap)) == NULL) {
    lp_errf(err, errsz, "out of memory reading object %s", hash);
    rc = LUPINE_NOMEM;
    goto done;
  }
  for (;;) {
    ssize_t r = read(fd, in, incap);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = io_error(err, errsz, "object %s: cannot read '%s'", hash, path);
      goto done;
    }
    if (r == 0) break;
    if ((rc = lp_frame_decoder_feed(d, in, (size_t)r, err, errsz)) != LUPINE_OK) goto done;
  }
  rc = lp_frame_decoder_finish(d, err, errsz);
done:
  if (fd >= 0) close(fd);
  lp_frame_decoder_free(d);
  free(in);
  return rc;
}

/* ---- opening and closing, and the flavor's table ---- */

static void l_close(lp_store *base) {
  local *s = (local *)base;
  ZSTD_freeCCtx(s->cctx);
  ZSTD_freeDCtx(s->dctx);
  free(s->root);
  free(s);
}

const lp_store_ops lp_store_local_ops = {
  "local",
  l_close,
  l_put,
  l_sync,
  l_get,
  l_get_stream,
  l_exists,
  l_list,
  l_remove,
  l_local_path,
  l_local_path,   /* its uri is its path */
  l_writer_open,
  l_writer_write,
  l_writer_close,
  l_writer_abort,
};

void lp_store_local_nosync(lp_store *base) {
  ((local *)base)->nosync = 1;
}

void lp_store_local_hash_frames(lp_store *base, uint64_t below) {
  ((local *)base)->hash_frames_below = below;
}

const char *lp_store_local_frame_hash(lp_store *base, const char *hash) {
  local *s = (local *)base;
  return strcmp(s->framed, hash) == 0 ? s->frame_sha : NULL;
}

int lp_store_local_open(lp_store **out, const char *root, char *err, size_t errsz) {
  char path[PATH_MAX];
  local *s = NULL;
  int rc;
  *out = NULL;
  if (root == NULL || root[0] == '\0') {
    lp_errf(err, errsz, "store root is empty");
    return LUPINE_MISUSE;
  }
  if ((rc = check_root_length(root, err, errsz)) != LUPINE_OK ||
      (rc = make_dirs(root, err, errsz)) != LUPINE_OK)
    return rc;
  if ((s = calloc(1, sizeof *s)) == NULL) goto nomem;
  s->base.ops = &lp_store_local_ops;
  if ((s->root = realpath(root, NULL)) == NULL) {
    rc = io_error(err, errsz, "cannot resolve store root '%s'", root);
    goto done;
  }
  s->base.root = s->root;
  if ((rc = check_root_length(s->root, err, errsz)) != LUPINE_OK) goto done;
  snprintf(path, sizeof path, "%s/objects", s->root);
  if ((rc = make_dir(path, NULL, err, errsz)) != LUPINE_OK) goto done;
  snprintf(path, sizeof path, "%s/tmp", s->root);
  if ((rc = make_dir(path, NULL, err, errsz)) != LUPINE_OK) goto done;
  remove_stale(s->root);
  if ((s->cctx = ZSTD_createCCtx()) == NULL) goto nomem;
  /* Readers rely on the content size (see lp_frame_decode); the
  ** checksum lets plain `zstd -t` verify a store. */
  ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 1);
  s->level = STORE_LEVEL;
  *out = &s->base;
  return LUPINE_OK;
nomem:
  lp_errf(err, errsz, "store '%s': out of memory", root);
  rc = LUPINE_NOMEM;
done:
  if (s != NULL) l_close(&s->base);
  return rc;
}
