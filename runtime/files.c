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
** renamed into place whole, so a reader never sees half a tree. Read-only
** does not stop root (a step in a container, a hand edit): so each copy
** has a manifest of what its entries were when extracted, checked before
** the copy is handed out, and a changed copy is extracted again.
**
** <cache>/<hex>/            a copy: its one top-level entry, and the manifest
** <cache>/.tmp/<owner>-XXXXXX  copies being extracted, and changed ones being
**                           removed: named after their process (lp_owner_tag),
**                           so a later process removes those of a dead one
** <cache>/.lock             taken to replace a changed copy (one at a time)
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
#include <time.h>
#include <unistd.h>
#include "lupine_int.h"

#define BLOCK 512
#define MAX_SIZE 077777777777ULL   /* what 11 octal digits hold: 8 GiB */

typedef struct entry {
  char *path;      /* relative, the top-level name first; "x/" for a folder */
  uint64_t size;
  int exec, dir;
  uint64_t ino;    /* identity and last change, for a copy's manifest */
  struct timespec ctime;
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

/* Add path; st (NULL for none) gives its size, mode and identity. */
static int add_entry(tree *t, const char *path, const struct stat *st) {
  entry *e;
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 64;
    if ((e = realloc(t->e, cap * sizeof *e)) == NULL) return -1;
    t->e = e;
    t->cap = cap;
  }
  e = &t->e[t->n];
  memset(e, 0, sizeof *e);
  if ((e->path = strdup(path)) == NULL) return -1;
  if (st != NULL) {
    e->dir = S_ISDIR(st->st_mode);
    e->size = e->dir ? 0 : (uint64_t)st->st_size;
    e->exec = e->dir || (st->st_mode & 0111) != 0;
    e->ino = (uint64_t)st->st_ino;
    e->ctime = st->st_ctim;
  }
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
    return add_entry(t, rel, &st) == 0 ? LUPINE_OK : LUPINE_NOMEM;
  }
  if (S_ISDIR(st.st_mode)) {
    DIR *d;
    struct dirent *de;
    int rc = LUPINE_OK;
    snprintf(r, sizeof r, "%s/", rel);
    if (add_entry(t, r, &st) != 0) return LUPINE_NOMEM;
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
    return add_entry(&r->dirs, r->current, NULL) == 0 ? 0 : bad_archive(r, "out of memory");
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
  rc = lp_store_get_stream(s, hash, size, untar, &r, err, errsz);
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

/* ---- copies: extracted once, checked at each hand-off ---- */

#define MANIFEST ".lupine-manifest"
#define MANIFEST_ALT ".lupine-manifest.1"   /* when the top-level entry is named MANIFEST */
#define MANIFEST_HEAD "lupine-copy 1\n"

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

/* The bytes of the regular files under path. */
static uint64_t tree_size(const char *path) {
  struct stat st;
  uint64_t n = 0;
  if (lstat(path, &st) != 0) return 0;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *de;
    char sub[PATH_MAX];
    while (d != NULL && (de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
      n += tree_size(sub);
    }
    if (d != NULL) closedir(d);
  } else if (S_ISREG(st.st_mode)) n = (uint64_t)st.st_size;
  return n;
}

static int later(struct timespec a, struct timespec b) {
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

/*
** The manifest of the copy extracted into dir (its top-level entry top):
** MANIFEST_HEAD, then per entry, top first, "<f|d> <inode> <size> <ctime
** s> <ctime ns> <path>" and a NUL (a path may hold a newline, never a NUL).
** The kernel sets an inode's ctime on every change to it (content, mode,
** links; a folder's entries added, removed or renamed) and no call sets it
** back; with the inode number it also catches a file replaced by another.
**
** Timestamps come from a clock that ticks coarsely (milliseconds; seconds
** on some file systems), so a change within the tick of the extraction
** would leave the ctime recorded: the manifest, written after every entry,
** is touched again until its own ctime is past theirs. A change after that
** gets a later ctime. (A few ms at most where times are fine-grained.)
*/
static int write_manifest(const char *dir, const char *top, char *err, size_t errsz) {
  char path[PATH_MAX + sizeof MANIFEST_ALT], full[PATH_MAX + 256];
  tree t = {NULL, 0, 0};
  struct timespec newest = {0, 0}, tick = {0, 1000000};
  struct stat st;
  FILE *f = NULL;
  size_t i;
  int fd = -1, rc, tries;
  snprintf(full, sizeof full, "%s/%s", dir, top);
  if ((rc = walk(&t, full, top, err, errsz)) != LUPINE_OK) goto done;
  snprintf(path, sizeof path, "%s/%s", dir, strcmp(top, MANIFEST) == 0 ? MANIFEST_ALT : MANIFEST);
  if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444)) < 0 ||
      (f = fdopen(fd, "w")) == NULL)
    goto fail;
  fputs(MANIFEST_HEAD, f);
  for (i = 0; i < t.n; i++) {
    const entry *e = &t.e[i];
    fprintf(f, "%c %llu %llu %lld %ld %s", e->dir ? 'd' : 'f', (unsigned long long)e->ino,
            (unsigned long long)e->size, (long long)e->ctime.tv_sec, (long)e->ctime.tv_nsec,
            e->path);
    fputc('\0', f);
    if (later(e->ctime, newest)) newest = e->ctime;
  }
  if (fflush(f) != 0) goto fail;
  for (tries = 0; tries < 3000 && fstat(fd, &st) == 0 && !later(st.st_ctim, newest); tries++) {
    nanosleep(&tick, NULL);
    futimens(fd, NULL);
  }
  fd = -1;
  if (fclose(f) != 0) {
    f = NULL;
    goto fail;
  }
  f = NULL;
  goto done;
fail:
  lp_errf(err, errsz, "cannot write '%s' (%s)", path, strerror(errno));
  rc = LUPINE_IO;
done:
  if (f != NULL) fclose(f);
  else if (fd >= 0) close(fd);
  tree_free(&t);
  return rc;
}

/* The manifest of the copy in dir, read whole (*len bytes, NUL-terminated,
** caller frees), and the copy's top-level entry; NULL if it has none that
** reads (a copy cut short, or made before copies had manifests). */
static char *read_manifest(const char *dir, size_t *len, char *top, size_t topsz) {
  static const char *const names[] = {MANIFEST, MANIFEST_ALT};
  char path[PATH_MAX];
  size_t k, n, h = sizeof MANIFEST_HEAD - 1;
  for (k = 0; k < 2; k++) {
    struct stat st;
    char *buf = NULL;
    int fd;
    snprintf(path, sizeof path, "%s/%s", dir, names[k]);
    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) continue;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (buf = malloc((size_t)st.st_size + 1)) != NULL) {
      for (n = 0; n < (size_t)st.st_size;) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
      }
      buf[n] = '\0';
    }
    close(fd);
    if (buf != NULL && n == (size_t)st.st_size && n > h && memcmp(buf, MANIFEST_HEAD, h) == 0) {
      /* the top-level entry: the first record's path (without a folder's '/') */
      const char *p = buf + h, *space = p;
      int field;
      for (field = 0; field < 5 && space != NULL; field++) space = strchr(space + 1, ' ');
      if (space != NULL) {
        size_t plen = strlen(space + 1);
        if (plen > 0 && space[plen] == '/') plen--;
        snprintf(top, topsz, "%.*s", (int)plen, space + 1);
        /* MANIFEST_ALT is the manifest only when the top-level entry is MANIFEST */
        if (plen > 0 && plen < topsz && (strcmp(top, MANIFEST) == 0) == (k == 1)) {
          *len = n;
          return buf;
        }
      }
    }
    free(buf);
  }
  return NULL;
}

/*
** Is the copy in dir as it was extracted? LUPINE_OK, with its top-level
** entry's name in top; LUPINE_NOTFOUND if there is no copy; LUPINE_CORRUPT,
** with why, if an entry changed or the manifest does not read. A stat per
** entry, nothing read but the manifest.
*/
static int check_copy(const char *dir, char *top, size_t topsz, char *why, size_t whysz) {
  char path[PATH_MAX];
  struct stat st;
  size_t len = 0;
  char *m, *p, *end;
  if (lstat(dir, &st) != 0) {
    if (errno == ENOENT) return LUPINE_NOTFOUND;
    lp_errf(why, whysz, "cannot read '%s' (%s)", dir, strerror(errno));
    return LUPINE_IO;
  }
  if ((m = read_manifest(dir, &len, top, topsz)) == NULL) {
    lp_errf(why, whysz, "the copy '%s' has no manifest that reads", dir);
    return LUPINE_CORRUPT;
  }
  end = m + len;
  for (p = m + sizeof MANIFEST_HEAD - 1; p < end; p += strlen(p) + 1) {
    unsigned long long ino, size;
    long long sec;
    long nsec;
    char type;
    int at = 0, same;
    if (sscanf(p, "%c %llu %llu %lld %ld%n", &type, &ino, &size, &sec, &nsec, &at) != 5 ||
        at == 0 || p[at] != ' ') {
      lp_errf(why, whysz, "the copy '%s' has a malformed manifest", dir);
      free(m);
      return LUPINE_CORRUPT;
    }
    snprintf(path, sizeof path, "%s/%s", dir, p + at + 1);
    if (type == 'd') path[strlen(path) - 1] = '\0';   /* a folder's '/' */
    same = lstat(path, &st) == 0 && (type == 'd' ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) &&
           (unsigned long long)st.st_ino == ino && (long long)st.st_ctim.tv_sec == sec &&
           (long)st.st_ctim.tv_nsec == nsec &&
           (type == 'd' || (unsigned long long)st.st_size == size);
    if (!same) {
      lp_errf(why, whysz, "'%s' changed after it was extracted", path);
      free(m);
      return LUPINE_CORRUPT;
    }
  }
  free(m);
  return LUPINE_OK;
}

/* A new, empty folder in cache/.tmp named after this process. */
static int temp_dir(const char *cache, char *out, size_t outsz, char *err, size_t errsz) {
  char owner[LP_OWNER_MAX];
  snprintf(out, outsz, "%s/.tmp", cache);
  if ((mkdir(cache, 0755) != 0 && errno != EEXIST) || (mkdir(out, 0755) != 0 && errno != EEXIST)) {
    lp_errf(err, errsz, "cannot make folder '%s' (%s)", out, strerror(errno));
    return LUPINE_IO;
  }
  lp_owner_tag(owner);
  snprintf(out, outsz, "%s/.tmp/%s-XXXXXX", cache, owner);
  if (mkdtemp(out) == NULL) {
    lp_errf(err, errsz, "cannot make a folder in '%s/.tmp' (%s)", cache, strerror(errno));
    return LUPINE_IO;
  }
  return LUPINE_OK;
}

/* Extract the object into a new folder of cache/.tmp (its path in dir),
** with its manifest. */
static int extract_copy(lp_store *s, const char *cache, const char *hash, uint64_t size,
                        char *dir, size_t dirsz, char *top, size_t topsz, char *err,
                        size_t errsz) {
  int rc;
  /* lp_files_extract makes the folder itself, with the modes it wants */
  if ((rc = temp_dir(cache, dir, dirsz, err, errsz)) != LUPINE_OK) return rc;
  rmdir(dir);
  rc = lp_files_extract(s, hash, size, dir, top, topsz, err, errsz);
  if (rc == LUPINE_OK) rc = write_manifest(dir, top, err, errsz);
  if (rc != LUPINE_OK) remove_tree(dir);
  return rc;
}

/* Move the copy at path out of the way, into cache/.tmp, and remove it: a
** reader never finds half of it where copies are. */
static int discard(const char *cache, const char *path, char *err, size_t errsz) {
  char old[PATH_MAX];
  int rc;
  if ((rc = temp_dir(cache, old, sizeof old, err, errsz)) != LUPINE_OK) return rc;
  if (rename(path, old) != 0) {   /* onto the empty folder made for it */
    rc = errno == ENOENT ? LUPINE_NOTFOUND : LUPINE_IO;
    lp_errf(err, errsz, "cannot move '%s' away (%s)", path, strerror(errno));
    rmdir(old);
    return rc;
  }
  remove_tree(old);
  return LUPINE_OK;
}

/* Wait for the cache's lock (fd), so that one process at a time replaces a
** changed copy: -1 if it cannot be taken. Closing fd releases it. */
static int lock_cache(const char *cache, char *err, size_t errsz) {
  char path[PATH_MAX];
  struct flock fl;
  int fd;
  snprintf(path, sizeof path, "%s/.lock", cache);
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) >= 0)
    while (fcntl(fd, F_SETLKW, &fl) != 0)
      if (errno != EINTR) {
        close(fd);
        fd = -1;
        break;
      }
  if (fd < 0) lp_errf(err, errsz, "cannot lock '%s' (%s)", path, strerror(errno));
  return fd;
}

int lp_files_materialize(lp_store *s, const char *cache, const char *hash, uint64_t size,
                         char *out, size_t outsz, char *changed, size_t changedsz, char *err,
                         size_t errsz) {
  char target[PATH_MAX], fresh[PATH_MAX], top[256], why[LP_ERRSZ];
  int rc = LUPINE_OK, lock = -1, tries, e;
  changed[0] = '\0';
  if (strlen(hash) != LP_HASH_STRLEN) {
    lp_errf(err, errsz, "malformed object hash '%.80s'", hash);
    return LUPINE_MISUSE;
  }
  snprintf(target, sizeof target, "%s/%s", cache, hash + sizeof LP_HASH_PREFIX - 1);
  /* Tried again only when another process put its copy in place first. */
  for (tries = 0; tries < 3; tries++) {
    rc = check_copy(target, top, sizeof top, why, sizeof why);
    if (rc == LUPINE_CORRUPT && lock < 0) {
      if ((lock = lock_cache(cache, err, errsz)) < 0) return LUPINE_IO;
      rc = check_copy(target, top, sizeof top, why, sizeof why);   /* replaced meanwhile? */
    }
    if (rc == LUPINE_OK) break;
    if (rc != LUPINE_NOTFOUND && rc != LUPINE_CORRUPT) {
      lp_errf(err, errsz, "%s", why);
      break;
    }
    if (rc == LUPINE_CORRUPT) snprintf(changed, changedsz, "%s", why);
    rc = extract_copy(s, cache, hash, size, fresh, sizeof fresh, top, sizeof top, err, errsz);
    if (rc != LUPINE_OK) break;
    if (changed[0] != '\0' && (rc = discard(cache, target, err, errsz)) != LUPINE_OK &&
        rc != LUPINE_NOTFOUND) {
      remove_tree(fresh);
      break;
    }
    /* whole or not at all: the rename fails if another copy got there first */
    if (rename(fresh, target) == 0) {
      rc = LUPINE_OK;
      break;
    }
    e = errno;
    rc = LUPINE_IO;
    lp_errf(err, errsz, "cannot put a copy of object %s in place at '%s' (%s)", hash, target,
            strerror(e));
    remove_tree(fresh);
    if (e != EEXIST && e != ENOTEMPTY) break;
  }
  if (lock >= 0) close(lock);
  if (rc == LUPINE_OK) snprintf(out, outsz, "%s/%s", target, top);
  return rc;
}

/* The top-level entry of the copy in dir: from its manifest, or, for a
** copy without one, its one entry. */
static int copy_top(const char *dir, char *top, size_t topsz) {
  size_t len;
  char *m = read_manifest(dir, &len, top, topsz);
  DIR *d;
  struct dirent *de;
  if (m != NULL) {
    free(m);
    return 0;
  }
  if ((d = opendir(dir)) == NULL) return -1;
  top[0] = '\0';
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      snprintf(top, topsz, "%s", de->d_name);
  closedir(d);
  return top[0] != '\0' ? 0 : -1;
}

int lp_files_check(const char *cache, const char *hash, char *why, size_t whysz) {
  char dir[PATH_MAX], path[PATH_MAX + 256], top[256], err[LP_ERRSZ];
  struct stat st;
  lp_object obj;
  int is_dir;
  if (strlen(hash) != LP_HASH_STRLEN) {
    lp_errf(why, whysz, "malformed object hash '%.80s'", hash);
    return LUPINE_MISUSE;
  }
  snprintf(dir, sizeof dir, "%s/%s", cache, hash + sizeof LP_HASH_PREFIX - 1);
  if (lstat(dir, &st) != 0 && errno == ENOENT) return LUPINE_NOTFOUND;
  if (copy_top(dir, top, sizeof top) != 0) {
    lp_errf(why, whysz, "the copy '%s' changed: it holds nothing", dir);
    return LUPINE_CORRUPT;
  }
  snprintf(path, sizeof path, "%s/%s", dir, top);
  if (lp_files_store(NULL, path, &obj, &is_dir, err, sizeof err) != LUPINE_OK) {
    lp_errf(why, whysz, "the copy '%s' changed: %s", dir, err);
    return LUPINE_CORRUPT;
  }
  if (strcmp(obj.hash, hash) != 0) {
    lp_errf(why, whysz, "the copy '%s' changed: it hashes to %s", dir, obj.hash);
    return LUPINE_CORRUPT;
  }
  return LUPINE_OK;
}

int lp_files_discard(const char *cache, const char *hash, char *err, size_t errsz) {
  char dir[PATH_MAX];
  if (strlen(hash) != LP_HASH_STRLEN) {
    lp_errf(err, errsz, "malformed object hash '%.80s'", hash);
    return LUPINE_MISUSE;
  }
  snprintf(dir, sizeof dir, "%s/%s", cache, hash + sizeof LP_HASH_PREFIX - 1);
  return discard(cache, dir, err, errsz);
}

int lp_files_prune(const char *cache, int (*needed)(void *ud, const char *hex), void *ud,
                   int dry_run, uint64_t *copies, uint64_t *bytes, char *err, size_t errsz) {
  char path[PATH_MAX];
  struct dirent *de;
  struct stat st;
  DIR *d;
  int rc = LUPINE_OK;
  size_t i;
  *copies = *bytes = 0;
  if ((d = opendir(cache)) == NULL) {
    if (errno == ENOENT) return LUPINE_OK;
    lp_errf(err, errsz, "cannot read folder '%s' (%s)", cache, strerror(errno));
    return LUPINE_IO;
  }
  while (rc == LUPINE_OK && (de = readdir(d)) != NULL) {
    /* copies only: 64 hex digits, a folder */
    for (i = 0; i < LP_HASH_HEXLEN; i++)
      if (!((de->d_name[i] >= '0' && de->d_name[i] <= '9') ||
            (de->d_name[i] >= 'a' && de->d_name[i] <= 'f')))
        break;
    if (i != LP_HASH_HEXLEN || de->d_name[i] != '\0' || needed(ud, de->d_name)) continue;
    snprintf(path, sizeof path, "%s/%s", cache, de->d_name);
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    *bytes += tree_size(path);
    ++*copies;
    if (!dry_run && (rc = discard(cache, path, err, errsz)) == LUPINE_NOTFOUND) rc = LUPINE_OK;
  }
  closedir(d);
  return rc;
}

void lp_files_clean(const char *cache) {
  char path[PATH_MAX];
  struct dirent *de;
  DIR *d;
  snprintf(path, sizeof path, "%s/.tmp", cache);
  if ((d = opendir(path)) == NULL) return;
  while ((de = readdir(d)) != NULL)
    if (lp_owner_gone(de->d_name)) {
      snprintf(path, sizeof path, "%s/.tmp/%s", cache, de->d_name);
      remove_tree(path);
    }
  closedir(d);
}
