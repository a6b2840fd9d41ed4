/* SPDX-License-Identifier: MIT */
/*
** files.c: files and directory trees as artifacts.
**
** A file or a tree is stored as one object, a POSIX ustar archive written
** the same way every time (entries in byte order of their paths, owner 0,
** time 0, modes 0644 or 0755), so equal trees are stored once, and any tar
** reads it: `zstd -d < object | tar -x`. Its one top-level entry is the
** file's or the directory's own name. Content is streamed both ways, so
** memory stays bounded whatever the size.
**
** Loading gives a read-only copy, extracted once into a cache folder and
** renamed into place whole, so a reader never sees half a tree.
*/
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lupine_int.h"

#define BLOCK 512
#define MAX_SIZE 077777777777ULL   /* what 11 octal digits hold: 8 GiB */

typedef struct entry {
  char *path;      /* relative, the top-level name first; "x/" for a folder */
  uint64_t size;
  int exec, dir;
} entry;

typedef struct tree {
  entry *e;
  size_t n, cap;
} tree;

static void tree_free(tree *t) {
  size_t i;
  for (i = 0; i < t->n; i++) free(t->e[i].path);
  free(t->e);
}

static int add_entry(tree *t, const char *path, uint64_t size, int exec, int dir) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 64;
    entry *e = realloc(t->e, cap * sizeof *e);
    if (e == NULL) return -1;
    t->e = e;
    t->cap = cap;
  }
  if ((t->e[t->n].path = strdup(path)) == NULL) return -1;
  t->e[t->n].size = size;
  t->e[t->n].exec = exec;
  t->e[t->n].dir = dir;
  t->n++;
  return 0;
}

/* Collect what is under abs (shown as rel) into t. */
static int walk(tree *t, const char *abs, const char *rel, char *err, size_t errsz) {
  struct stat st;
  char a[PATH_MAX], r[PATH_MAX];
  if (lstat(abs, &st) != 0) {
    lp_errf(err, errsz, "cannot read '%s' (%s)", abs, strerror(errno));
    return LUPINE_IO;
  }
  if (S_ISREG(st.st_mode)) {
    if ((uint64_t)st.st_size > MAX_SIZE) {
      lp_errf(err, errsz, "'%s' is %lld bytes, more than a stored file may hold (8 GiB)",
              abs, (long long)st.st_size);
      return LUPINE_MISUSE;
    }
    return add_entry(t, rel, (uint64_t)st.st_size, (st.st_mode & 0111) != 0, 0) == 0
             ? LUPINE_OK : LUPINE_NOMEM;
  }
  if (S_ISDIR(st.st_mode)) {
    DIR *d;
    struct dirent *de;
    int rc = LUPINE_OK;
    snprintf(r, sizeof r, "%s/", rel);
    if (add_entry(t, r, 0, 1, 1) != 0) return LUPINE_NOMEM;
    if ((d = opendir(abs)) == NULL) {
      lp_errf(err, errsz, "cannot read folder '%s' (%s)", abs, strerror(errno));
      return LUPINE_IO;
    }
    while (rc == LUPINE_OK && (de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      if ((size_t)snprintf(a, sizeof a, "%s/%s", abs, de->d_name) >= sizeof a ||
          (size_t)snprintf(r, sizeof r, "%s/%s", rel, de->d_name) >= sizeof r) {
        lp_errf(err, errsz, "path too long: '%s/%s'", abs, de->d_name);
        rc = LUPINE_MISUSE;
      } else rc = walk(t, a, r, err, errsz);
    }
    closedir(d);
    return rc;
  }
  lp_errf(err, errsz, "'%s' is neither a file nor a folder (links and devices are not stored)",
          abs);
  return LUPINE_MISUSE;
}

static int by_path(const void *a, const void *b) {
  return strcmp(((const entry *)a)->path, ((const entry *)b)->path);
}

/* The ustar header of e into h; -1 if its path does not fit (255 bytes). */
static int header(const entry *e, unsigned char h[BLOCK]) {
  size_t len = strlen(e->path), split = 0, i;
  unsigned sum = 0;
  memset(h, 0, BLOCK);
  if (len > 100) {   /* name (100) and prefix (155), split at a slash */
    for (i = len - 1; i > 0 && (len - i - 1 > 100 || i > 155 || e->path[i] != '/'); i--) {}
    if (i == 0 || len - i - 1 > 100 || i > 155) return -1;
    split = i;
    memcpy(h + 345, e->path, split);
    memcpy(h, e->path + split + 1, len - split - 1);
  } else memcpy(h, e->path, len);
  snprintf((char *)h + 100, 8, "%07o", e->dir || e->exec ? 0755u : 0644u);
  snprintf((char *)h + 108, 8, "%07o", 0u);
  snprintf((char *)h + 116, 8, "%07o", 0u);
  snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)e->size);
  snprintf((char *)h + 136, 12, "%011o", 0u);
  h[156] = e->dir ? '5' : '0';
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  memset(h + 148, ' ', 8);
  for (i = 0; i < BLOCK; i++) sum += h[i];
  snprintf((char *)h + 148, 8, "%06o", sum);
  h[155] = ' ';
  return 0;
}

static uint64_t padded(uint64_t n) {
  return (n + BLOCK - 1) / BLOCK * BLOCK;
}

/* Stream the file at abs, padded to a block, into w. */
static int copy_in(lp_store_writer *w, const char *abs, uint64_t size, char *err, size_t errsz) {
  static const unsigned char zeros[BLOCK];
  unsigned char *buf = malloc(1 << 20);
  uint64_t done = 0;
  int fd = open(abs, O_RDONLY | O_CLOEXEC), rc = LUPINE_OK;
  if (buf == NULL || fd < 0) {
    lp_errf(err, errsz, "cannot read '%s' (%s)", abs, buf ? strerror(errno) : "out of memory");
    rc = buf ? LUPINE_IO : LUPINE_NOMEM;
  }
  while (rc == LUPINE_OK && done < size) {
    ssize_t r = read(fd, buf, size - done < (1 << 20) ? (size_t)(size - done) : 1 << 20);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      lp_errf(err, errsz, "'%s' changed while it was being stored", abs);
      rc = LUPINE_IO;
      break;
    }
    rc = lp_store_writer_write(w, buf, (size_t)r, err, errsz);
    done += (uint64_t)r;
  }
  if (rc == LUPINE_OK && padded(size) > size)
    rc = lp_store_writer_write(w, zeros, (size_t)(padded(size) - size), err, errsz);
  if (fd >= 0) close(fd);
  free(buf);
  return rc;
}

int lp_files_store(lp_store *s, const char *path, lp_object *info, int *is_dir, char *err,
                   size_t errsz) {
  static const unsigned char zeros[2 * BLOCK];
  char root[PATH_MAX], name[PATH_MAX], *slash;
  unsigned char h[BLOCK];
  tree t = {NULL, 0, 0};
  uint64_t total = 2 * BLOCK;
  lp_store_writer *w = NULL;
  size_t i, rootlen;
  int rc;
  snprintf(name, sizeof name, "%s", path);
  while ((rootlen = strlen(name)) > 1 && name[rootlen - 1] == '/') name[rootlen - 1] = '\0';
  slash = strrchr(name, '/');
  snprintf(root, sizeof root, "%s", name);
  if (slash != NULL) memmove(name, slash + 1, strlen(slash + 1) + 1);
  if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
    lp_errf(err, errsz, "'%s' has no name to store it under", path);
    return LUPINE_MISUSE;
  }
  if ((rc = walk(&t, root, name, err, errsz)) != LUPINE_OK) goto done;
  qsort(t.e, t.n, sizeof *t.e, by_path);
  for (i = 0; i < t.n; i++) total += BLOCK + padded(t.e[i].size);
  *is_dir = t.e[0].dir;
  if ((rc = lp_store_writer_open(s, total, &w, err, errsz)) != LUPINE_OK) goto done;
  rootlen = strlen(root) - strlen(name);   /* root's part before the name */
  for (i = 0; i < t.n && rc == LUPINE_OK; i++) {
    char abs[PATH_MAX];
    if (header(&t.e[i], h) != 0) {
      lp_errf(err, errsz, "path too long to store (at most 255 bytes): '%s'", t.e[i].path);
      rc = LUPINE_MISUSE;
      break;
    }
    rc = lp_store_writer_write(w, h, BLOCK, err, errsz);
    if (rc == LUPINE_OK && !t.e[i].dir) {
      snprintf(abs, sizeof abs, "%.*s%s", (int)rootlen, root, t.e[i].path);
      rc = copy_in(w, abs, t.e[i].size, err, errsz);
    }
  }
  if (rc == LUPINE_OK) rc = lp_store_writer_write(w, zeros, sizeof zeros, err, errsz);
  if (rc == LUPINE_OK) rc = lp_store_writer_close(w, info, err, errsz);
  else lp_store_writer_abort(w);
done:
  tree_free(&t);
  return rc;
}

/* ---- reading an archive back ---- */

typedef struct reader {
  const char *dest;          /* the folder entries go under */
  char *err;
  size_t errsz;
  unsigned char h[BLOCK];
  size_t hlen;               /* header bytes gathered */
  uint64_t left, pad;        /* of the current file's content, and its padding */
  int fd;                    /* the file being written, or -1 */
  int exec, ended;
  char top[256];             /* the one top-level name */
  char current[PATH_MAX];
  tree dirs;                 /* made read-only at the end, deepest first */
} reader;

static uint64_t octal(const unsigned char *p, size_t n) {
  uint64_t v = 0;
  size_t i;
  for (i = 0; i < n && p[i] >= '0' && p[i] <= '7'; i++) v = v * 8 + (uint64_t)(p[i] - '0');
  return v;
}

/* A path from an archive, made safe: relative, no "..", one top-level name. */
static int check_path(reader *r, const char *path) {
  const char *p = path;
  size_t len;
  if (path[0] == '/' || path[0] == '\0') return -1;
  while (*p) {
    len = strcspn(p, "/");
    if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
      return -1;
    p += len;
    if (*p == '/') p++;
  }
  len = strcspn(path, "/");
  if (r->top[0] == '\0') {
    if (len >= sizeof r->top) return -1;
    memcpy(r->top, path, len);
    r->top[len] = '\0';
  } else if (strlen(r->top) != len || strncmp(r->top, path, len) != 0) return -1;
  return 0;
}

static int bad_archive(reader *r, const char *what) {
  lp_errf(r->err, r->errsz, "stored archive is malformed: %s", what);
  return -1;
}

static int begin_entry(reader *r) {
  char path[PATH_MAX], name[101], prefix[156];
  int type = r->h[156];
  unsigned sum = 0, i;
  for (i = 0; i < BLOCK; i++) sum += (i >= 148 && i < 156) ? ' ' : r->h[i];
  if (sum != (unsigned)octal(r->h + 148, 8)) return bad_archive(r, "bad header checksum");
  memcpy(name, r->h, 100);
  name[100] = '\0';
  memcpy(prefix, r->h + 345, 155);
  prefix[155] = '\0';
  snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "/" : "", name);
  if (path[0] != '\0' && path[strlen(path) - 1] == '/') path[strlen(path) - 1] = '\0';
  if (check_path(r, path) != 0) return bad_archive(r, "an entry's path leaves its folder");
  if ((size_t)snprintf(r->current, sizeof r->current, "%s/%s", r->dest, path) >=
      sizeof r->current)
    return bad_archive(r, "an entry's path is too long here");
  r->exec = (octal(r->h + 100, 8) & 0111) != 0;
  if (type == '5') {
    if (mkdir(r->current, 0755) != 0 && errno != EEXIST) {
      lp_errf(r->err, r->errsz, "cannot make folder '%s' (%s)", r->current, strerror(errno));
      return -1;
    }
    return add_entry(&r->dirs, r->current, 0, 1, 1) == 0 ? 0 : bad_archive(r, "out of memory");
  }
  if (type != '0' && type != '\0') return bad_archive(r, "an entry is neither file nor folder");
  r->left = octal(r->h + 124, 12);
  r->pad = padded(r->left) - r->left;
  if ((r->fd = open(r->current, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
    lp_errf(r->err, r->errsz, "cannot create '%s' (%s)", r->current, strerror(errno));
    return -1;
  }
  return 0;
}

static int end_file(reader *r) {
  int ok = fchmod(r->fd, r->exec ? 0555 : 0444) == 0;
  ok = close(r->fd) == 0 && ok;
  r->fd = -1;
  if (!ok) lp_errf(r->err, r->errsz, "cannot write '%s' (%s)", r->current, strerror(errno));
  return ok ? 0 : -1;
}

/* The sink: headers, content and padding, in turn. */
static int untar(void *ud, const void *data, size_t n) {
  reader *r = ud;
  const unsigned char *p = data;
  while (n > 0) {
    if (r->fd >= 0 && r->left > 0) {
      size_t k = n < r->left ? n : (size_t)r->left;
      ssize_t w = write(r->fd, p, k);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        lp_errf(r->err, r->errsz, "cannot write '%s' (%s)", r->current, strerror(errno));
        return -1;
      }
      p += w, n -= (size_t)w, r->left -= (uint64_t)w;
      if (r->left == 0 && r->pad == 0 && end_file(r) != 0) return -1;
    } else if (r->fd >= 0 || r->pad > 0) {
      size_t k = n < r->pad ? n : (size_t)r->pad;
      p += k, n -= k, r->pad -= k;
      if (r->pad == 0 && r->fd >= 0 && end_file(r) != 0) return -1;
    } else {
      size_t k = BLOCK - r->hlen < n ? BLOCK - r->hlen : n;
      memcpy(r->h + r->hlen, p, k);
      p += k, n -= k, r->hlen += k;
      if (r->hlen < BLOCK) continue;
      r->hlen = 0;
      if (r->h[0] == '\0') r->ended = 1;   /* the end: zero blocks */
      else if (r->ended) return bad_archive(r, "entries after its end");
      else if (begin_entry(r) != 0) return -1;
      else if (r->fd >= 0 && r->left == 0 && r->pad == 0 && end_file(r) != 0) return -1;
    }
  }
  return 0;
}

int lp_files_extract(lp_store *s, const char *hash, uint64_t size, const char *dest,
                     char *top, size_t topsz, char *err, size_t errsz) {
  reader r;
  size_t i;
  int rc;
  memset(&r, 0, sizeof r);
  r.dest = dest;
  r.err = err;
  r.errsz = errsz;
  r.fd = -1;
  if (mkdir(dest, 0755) != 0) {
    lp_errf(err, errsz, "cannot make folder '%s' (%s)", dest, strerror(errno));
    return LUPINE_IO;
  }
  rc = lp_store_read(s, hash, size, untar, &r, err, errsz);
  if (r.fd >= 0) {
    close(r.fd);
    if (rc == LUPINE_OK) {
      bad_archive(&r, "it ends inside a file");
      rc = LUPINE_CORRUPT;
    }
  }
  if (rc == LUPINE_OK && r.top[0] == '\0') {
    bad_archive(&r, "it is empty");
    rc = LUPINE_CORRUPT;
  }
  for (i = r.dirs.n; i-- > 0;) chmod(r.dirs.e[i].path, 0555);
  tree_free(&r.dirs);
  snprintf(top, topsz, "%s", r.top);
  return rc;
}

/* Remove a tree made by lp_files_extract (read-only: made writable first). */
static void remove_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d;
    struct dirent *de;
    char sub[PATH_MAX];
    chmod(path, 0755);
    if ((d = opendir(path)) != NULL) {
      while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        remove_tree(sub);
      }
      closedir(d);
    }
    rmdir(path);
  } else unlink(path);
}

int lp_files_materialize(lp_store *s, const char *cache, const char *hash, uint64_t size,
                         char *out, size_t outsz, char *err, size_t errsz) {
  char target[PATH_MAX], tmp[PATH_MAX], top[256];
  DIR *d;
  struct dirent *de;
  int rc;
  if (strlen(hash) != LP_HASH_STRLEN) {
    lp_errf(err, errsz, "malformed object hash '%.80s'", hash);
    return LUPINE_MISUSE;
  }
  snprintf(target, sizeof target, "%s/%s", cache, hash + sizeof LP_HASH_PREFIX - 1);
  if (access(target, F_OK) != 0) {
    if (mkdir(cache, 0755) != 0 && errno != EEXIST) {
      lp_errf(err, errsz, "cannot make folder '%s' (%s)", cache, strerror(errno));
      return LUPINE_IO;
    }
    snprintf(tmp, sizeof tmp, "%s/.tmp-XXXXXX", cache);
    if (mkdtemp(tmp) == NULL || rmdir(tmp) != 0) {
      lp_errf(err, errsz, "cannot make a folder in '%s' (%s)", cache, strerror(errno));
      return LUPINE_IO;
    }
    rc = lp_files_extract(s, hash, size, tmp, top, sizeof top, err, errsz);
    if (rc != LUPINE_OK) {
      remove_tree(tmp);
      return rc;
    }
    /* whole or not at all; another process may have got there first */
    if (rename(tmp, target) != 0) remove_tree(tmp);
  }
  if ((d = opendir(target)) == NULL) {
    lp_errf(err, errsz, "cannot read folder '%s' (%s)", target, strerror(errno));
    return LUPINE_IO;
  }
  top[0] = '\0';
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      snprintf(top, sizeof top, "%s", de->d_name);
  closedir(d);
  snprintf(out, outsz, "%s/%s", target, top);
  return LUPINE_OK;
}
