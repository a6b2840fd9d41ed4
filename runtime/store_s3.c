/* SPDX-License-Identifier: MIT */
/*
** store_s3.c: the s3 store flavor, objects in a bucket of any service
** that speaks S3's protocol: the ops of store.c's interface
** (lp_store_s3_ops), on libcurl as the transport and sigv4.c's signer.
**
** Objects keep the local layout under the store's prefix
** (<prefix>/objects/<first 2 hex>/<other 62 hex>.zst) and the same bytes.
** Every object passes through a local read cache, itself a local store
** (store_local.c) under the home. A value is compressed in memory and
** sent in one PUT, its cache copy written as the bytes go; a streamed put
** (a file or folder) writes the cache's copy, hashing its frame as it
** goes, then uploads that file (one PUT streamed from it, or above a
** threshold a multipart upload in parts of bounded size read one at a
** time, so memory stays bounded whatever the size). A get decodes the
** object as it downloads, checking the frame and the hash, with the
** cache's copy written alongside. Content-addressed, the cache is never
** stale; it is bounded (LUPINE_S3_CACHE_MB), the least recently used
** objects evicted.
**
** Existence: what a put uploaded, a HEAD found or a listing of the
** bucket showed is known to exist. The first question the known set cannot
** answer reads the index (the last listing, kept in the cache's folder,
** trusted for LUPINE_S3_INDEX_TTL seconds, with what was uploaded or found
** since appended) or, if it is stale, lists the bucket once and writes it
** anew; only what that leaves open costs a HEAD. So a cached re-run asks
** the server once at most, not once per object.
**
** Requests are retried with backoff on connection errors, timeouts and
** 5xx answers, a bounded number of times; then the message names the
** store, the bucket, the key and what to do.
**
** A forked worker never uses its parent's curl handle (its connections
** are the parent's): it makes its own.
**
** libcurl is loaded when the first s3 store opens (dlopen), not linked:
** linked, it and the libraries it needs (TLS, Kerberos, LDAP, SSH, ...)
** load and run their constructors at every start of every program that
** uses lupine, S3 or not, which nearly doubled the cost of starting.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* timegm */
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "store_int.h"

#define MAX_PARTS 10000           /* S3's most */
#define LIST_PAGES 20             /* listed pages to learn what exists (20,000 keys) */
#define KEY_MAX 1100              /* an object's key, URI-encoded */

/* The libcurl functions this file calls, found in the loaded library. */
typedef struct curl_api {
  CURL *(*easy_init)(void);
  void (*easy_cleanup)(CURL *);
  void (*easy_reset)(CURL *);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_perform)(CURL *);
  const char *(*easy_strerror)(CURLcode);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
} curl_api;

/* What is known to exist: a set of digests (open addressing). */
typedef struct known {
  unsigned char (*slot)[32];
  size_t n, cap;
} known;

typedef struct s3 {
  lp_store base;
  char *name;                 /* the store's name in the catalog */
  char root[600];             /* "s3://bucket/prefix", for messages */
  char bucket[64], prefix[512], region[64], endpoint[256];
  char host[320];             /* the Host header */
  char url[600];              /* scheme://host[/bucket]: a key's URL follows */
  char urlpath[80];           /* the path that URL ends with ("/bucket" or "") */
  char access[128], secret[128], token[4096];
  const curl_api *api;        /* libcurl, loaded */
  CURL *curl;
  long curl_pid;              /* the process curl belongs to */
  lp_store *cache;            /* the read cache: a local store */
  uint64_t cache_limit, cache_used;
  int cache_counted;          /* cache_used was measured */
  known known;
  int listed;                 /* known was filled from the index or a listing */
  char index[PATH_MAX];       /* the index file of this bucket and prefix */
  long index_ttl;             /* seconds a listing is trusted */
  int attempts;               /* per request, retries included */
  long timeout;               /* seconds without progress before giving up */
  uint64_t multipart_min;     /* objects this large go up in parts */
  size_t part_size;           /* bytes per part (S3's least: 5 MiB) */
  unsigned char *part;        /* part_size bytes, for multipart uploads */
} s3;

/* ---- the set of objects known to exist ---- */

static void digest_of(const char *hash, unsigned char out[32]) {
  const char *h = hash + sizeof LP_HASH_PREFIX - 1;
  int i;
  for (i = 0; i < 32; i++) {
    int hi = h[2 * i] <= '9' ? h[2 * i] - '0' : h[2 * i] - 'a' + 10;
    int lo = h[2 * i + 1] <= '9' ? h[2 * i + 1] - '0' : h[2 * i + 1] - 'a' + 10;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
}

static size_t slot_of(const known *k, const unsigned char d[32]) {
  size_t i;
  memcpy(&i, d, sizeof i);
  return i & (k->cap - 1);
}


static int known_has_digest(const known *k, const unsigned char d[32]) {
  static const unsigned char none[32];
  size_t i;
  if (k->cap == 0) return 0;
  for (i = slot_of(k, d); memcmp(k->slot[i], none, 32) != 0; i = (i + 1) & (k->cap - 1))
    if (memcmp(k->slot[i], d, 32) == 0) return 1;
  return 0;
}

/* Remember that an object exists; out of memory, it is simply not known. */
static void known_put(known *k, const unsigned char d[32]) {
  static const unsigned char none[32];
  size_t i;
  if (known_has_digest(k, d)) return;
  if ((k->n + 1) * 2 > k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 1024, j;
    unsigned char (*old)[32] = k->slot, (*slot)[32] = calloc(cap, 32);
    size_t oldcap = k->cap;
    if (slot == NULL) return;
    k->slot = slot, k->cap = cap;
    for (j = 0; j < oldcap; j++)
      if (memcmp(old[j], none, 32) != 0) {
        for (i = slot_of(k, old[j]); memcmp(k->slot[i], none, 32) != 0; i = (i + 1) & (cap - 1))
          ;
        memcpy(k->slot[i], old[j], 32);
      }
    free(old);
  }
  for (i = slot_of(k, d); memcmp(k->slot[i], none, 32) != 0; i = (i + 1) & (k->cap - 1))
    ;
  memcpy(k->slot[i], d, 32);
  k->n++;
}

static int known_has(const known *k, const char *hash) {
  unsigned char d[32];
  digest_of(hash, d);
  return known_has_digest(k, d);
}

static void known_add(known *k, const char *hash) {
  unsigned char d[32];
  digest_of(hash, d);
  known_put(k, d);
}

static void known_remove(known *k) {
  free(k->slot);
  memset(k, 0, sizeof *k);
}

/* ---- requests ---- */

/* A growing response body (small ones: listings, errors, upload ids). */
typedef struct body {
  char *p;
  size_t len, cap;
} body;

typedef struct request {
  const char *method;
  const char *key;               /* the object's key (not encoded); NULL: the bucket */
  const char *query;             /* URI-encoded; NULL for none */
  const unsigned char *data;     /* what a PUT or POST sends */
  const lp_frame_raw *raw;       /* or a PUT's frame of raw blocks (len: its size) */
  size_t len;
  int fd;                        /* >= 0: a GET's body goes to this file */
  unsigned char *spool;          /* a decoded GET's copy for fd, gathered (or NULL) */
  size_t spooled;
  int copy_fd;                   /* >= 0: what a PUT of data sends is copied here too */
  /* out */
  long status;
  body resp;
  char etag[128];
  size_t sent;
  /* a PUT streamed from fd (len bytes from its start), of this payload hash */
  int streamed;
  char payload[65];
  /* a GET decoded as it arrives, resumed where it broke off (a Range) */
  lp_frame_decoder *dec;
  uint64_t got;               /* bytes of the body decoded so far */
  uint64_t from;              /* got when this attempt began */
  int dec_rc;                 /* the decoder's failure: no retry */
  char *dec_err;
  size_t dec_errsz;
} request;

static request request_of(const char *method, const char *key, const char *query) {
  request r;
  memset(&r, 0, sizeof r);
  r.method = method;
  r.key = key;
  r.query = query;
  r.fd = -1;
  r.copy_fd = -1;
  return r;
}

/*
** A decoded download's copy goes to its file SPOOL bytes at a time: the
** server's pieces are 16-64 KiB, and a write for each cost 6,000 system
** calls per 100 MB.
*/
#define SPOOL (1u << 20)

static int spool_flush(request *r) {
  int rc = r->spooled > 0 ? lp_store_local_write(r->fd, r->spool, r->spooled) : 0;
  r->spooled = 0;
  return rc;
}

static int spool_copy(request *r, const void *p, size_t n) {
  if (r->spool == NULL || n > SPOOL - r->spooled) {
    if (spool_flush(r) != 0) return -1;
    if (r->spool == NULL || n > SPOOL) return lp_store_local_write(r->fd, p, n);
  }
  memcpy(r->spool + r->spooled, p, n);
  r->spooled += n;
  return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  request *r = ud;
  size_t total = size * n;
  /* a resumed download takes only its range: a whole body again would repeat bytes */
  if (r->dec != NULL && (r->status == 206 || (r->status == 200 && r->from == 0))) {
    if (r->fd >= 0 && spool_copy(r, p, total) != 0) {   /* the read cache's copy */
      lp_errf(r->dec_err, r->dec_errsz, "cannot write into the read cache (%s)",
              strerror(errno));
      r->dec_rc = LUPINE_IO;
      return 0;
    }
    if ((r->dec_rc = lp_frame_decoder_feed(r->dec, p, total, r->dec_err, r->dec_errsz)) !=
        LUPINE_OK)
      return 0;
    r->got += total;
    return total;
  }
  if (r->fd >= 0 && !r->streamed && r->status / 100 == 2)
    return lp_store_local_write(r->fd, p, total) == 0 ? total : 0;   /* else curl reports a write error */
  if (r->resp.len + total + 1 > r->resp.cap) {
    size_t cap = (r->resp.len + total + 1) * 2;
    char *q;
    if (r->resp.len > (1u << 24) || (q = realloc(r->resp.p, cap)) == NULL) return 0;
    r->resp.p = q, r->resp.cap = cap;
  }
  memcpy(r->resp.p + r->resp.len, p, total);
  r->resp.len += total;
  r->resp.p[r->resp.len] = '\0';
  return total;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  request *r = ud;
  size_t total = size * n;
  if (total > 5 && strncmp(p, "HTTP/", 5) == 0) {
    /* a new response (after a redirect or a 100): its status, and nothing kept */
    const char *sp = memchr(p, ' ', total);
    r->status = sp != NULL ? strtol(sp + 1, NULL, 10) : 0;
    r->etag[0] = '\0';
  } else if (total > 5 && strncasecmp(p, "etag:", 5) == 0) {
    size_t i = 5, j;
    while (i < total && p[i] == ' ') i++;
    for (j = total; j > i && (p[j - 1] == '\r' || p[j - 1] == '\n' || p[j - 1] == ' '); j--)
      ;
    snprintf(r->etag, sizeof r->etag, "%.*s", (int)(j - i), p + i);
  }
  return total;
}

static size_t on_read(char *p, size_t size, size_t n, void *ud) {
  request *r = ud;
  size_t want = size * n, left = r->len - r->sent;
  if (want > left) want = left;
  if (r->streamed) {
    ssize_t got;
    do got = read(r->fd, p, want);
    while (got < 0 && errno == EINTR);
    if (got <= 0 && want > 0) return CURL_READFUNC_ABORT;   /* the file shrank or failed */
    want = (size_t)got;
  } else if (r->raw != NULL) {
    const unsigned char *q;
    size_t done = 0, k;
    for (; done < want; done += k) {
      k = lp_frame_raw_at(r->raw, r->sent + done, &q);
      if (k > want - done) k = want - done;
      memcpy(p + done, q, k);
    }
  } else memcpy(p, r->data + r->sent, want);
  /* the read cache's copy, written while the server takes the bytes; if
  ** that fails, only the copy is lost (and dropped: see put_value) */
  if (r->copy_fd >= 0 && lp_store_local_write(r->copy_fd, p, want) != 0) {
    close(r->copy_fd);
    r->copy_fd = -1;
  }
  r->sent += want;
  return want;
}

/* ---- libcurl, loaded on first use ---- */

/* A variable of the environment, unset if empty. */
static const char *env(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The library's functions or why it could not be loaded: set once (the
** first s3 store's open, under pthread_once, so concurrent opens load it
** once), then only read. It stays loaded: libcurl cannot be unloaded
** safely, and a process that used S3 once will likely use it again.
** LUPINE_LIBCURL names another library to load (a libcurl outside the
** linker's path). */
static curl_api curl_fns;
static char curl_why[400];
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void load_curl(void) {
  const char *name = env("LUPINE_LIBCURL") ? env("LUPINE_LIBCURL") : "libcurl.so.4";
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  curl_api c;
  if (lib == NULL) {
    snprintf(curl_why, sizeof curl_why, "%s", dlerror());
    return;
  }
  /* POSIX guarantees a function's address survives the cast from void * */
  c.easy_init = (CURL *(*)(void))dlsym(lib, "curl_easy_init");
  c.easy_cleanup = (void (*)(CURL *))dlsym(lib, "curl_easy_cleanup");
  c.easy_reset = (void (*)(CURL *))dlsym(lib, "curl_easy_reset");
  c.easy_setopt = (CURLcode (*)(CURL *, CURLoption, ...))dlsym(lib, "curl_easy_setopt");
  c.easy_perform = (CURLcode (*)(CURL *))dlsym(lib, "curl_easy_perform");
  c.easy_strerror = (const char *(*)(CURLcode))dlsym(lib, "curl_easy_strerror");
  c.slist_append = (struct curl_slist *(*)(struct curl_slist *, const char *))dlsym(
      lib, "curl_slist_append");
  c.slist_free_all = (void (*)(struct curl_slist *))dlsym(lib, "curl_slist_free_all");
  if (!c.easy_init || !c.easy_cleanup || !c.easy_reset || !c.easy_setopt || !c.easy_perform ||
      !c.easy_strerror || !c.slist_append || !c.slist_free_all) {
    snprintf(curl_why, sizeof curl_why, "%s lacks a function of libcurl's easy interface", name);
    dlclose(lib);
    return;
  }
  curl_fns = c;
}

/* libcurl's functions, or NULL with the message naming the store. */
static const curl_api *curl_load(const char *store, char *err, size_t errsz) {
  pthread_once(&curl_once, load_curl);
  if (curl_fns.easy_init != NULL) return &curl_fns;
  lp_errf(err, errsz, "artifact store '%s': the s3 flavor needs libcurl (%s); install it "
          "(Debian: apt-get install libcurl4)", store, curl_why);
  return NULL;
}

/* The handle of this process (a worker makes its own: see the top). */
static CURL *handle(s3 *s) {
  long pid = (long)getpid();
  if (s->curl != NULL && s->curl_pid != pid) s->curl = NULL;   /* the parent's: left alone */
  if (s->curl == NULL) {
    s->curl = s->api->easy_init();
    s->curl_pid = pid;
  }
  return s->curl;
}

/* The object's key for a hash: <prefix>/objects/ab/<62 hex>.zst */
static void object_key(const s3 *s, const char *hash, char *out, size_t outsz) {
  const char *hex = hash + sizeof LP_HASH_PREFIX - 1;
  snprintf(out, outsz, "%s%sobjects/%.2s/%s.zst", s->prefix, s->prefix[0] ? "/" : "", hex,
           hex + 2);
}

/* The text of an XML element (the first after from), into out; NULL if absent. */
static const char *xml_text(const char *from, const char *tag, char *out, size_t outsz) {
  char open[64], close[64];
  const char *a, *b;
  size_t n = 0;
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  if (from == NULL || (a = strstr(from, open)) == NULL) return NULL;
  a += strlen(open);
  if ((b = strstr(a, close)) == NULL) return NULL;
  while (a < b && n + 1 < outsz) {   /* the five entities XML escapes */
    static const char *const ent[][2] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"},
                                         {"&quot;", "\""}, {"&apos;", "'"}};
    size_t e;
    for (e = 0; e < 5; e++)
      if (strncmp(a, ent[e][0], strlen(ent[e][0])) == 0) break;
    if (e < 5) {
      out[n++] = ent[e][1][0];
      a += strlen(ent[e][0]);
    } else out[n++] = *a++;
  }
  out[n] = '\0';
  return b + strlen(close);
}

static int retryable(CURLcode cc, long status) {
  if (cc != CURLE_OK)
    return cc == CURLE_COULDNT_CONNECT || cc == CURLE_OPERATION_TIMEDOUT ||
           cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING ||
           cc == CURLE_PARTIAL_FILE || cc == CURLE_COULDNT_RESOLVE_HOST;
  return status >= 500 || status == 429;
}

/* One attempt. */
static CURLcode attempt(s3 *s, CURL *h, request *r, char *curlerr) {
  char path[KEY_MAX + 128], url[sizeof s->url + KEY_MAX + 512], date[20];
  char auth[600], hdr[6][4200], payload[65];
  const char *sign[6];
  struct curl_slist *list = NULL;
  struct tm tm;
  time_t now = time(NULL);
  const curl_api *c = s->api;
  CURLcode cc;
  size_t i, n = 0;

  snprintf(path, sizeof path, "%s/", s->urlpath);
  if (r->key != NULL)
    lp_sigv4_encode(r->key, 1, path + strlen(path), sizeof path - strlen(path));
  else if (s->urlpath[0] != '\0')
    path[strlen(path) - 1] = '\0';   /* "/bucket?list-type=2", not "/bucket/?..." */
  snprintf(url, sizeof url, "%s%s%s%s", s->url, path + strlen(s->urlpath),
           r->query != NULL ? "?" : "", r->query != NULL ? r->query : "");
  if (r->payload[0] != '\0') memcpy(payload, r->payload, sizeof payload);
  else if (lp_sigv4_sha256_hex(r->data != NULL ? (const void *)r->data : "", r->len, payload) != 0)
    return CURLE_OUT_OF_MEMORY;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
  snprintf(hdr[n++], sizeof hdr[0], "host:%s", s->host);
  snprintf(hdr[n++], sizeof hdr[0], "x-amz-content-sha256:%s", payload);
  snprintf(hdr[n++], sizeof hdr[0], "x-amz-date:%s", date);
  if (s->token[0] != '\0') snprintf(hdr[n++], sizeof hdr[0], "x-amz-security-token:%s", s->token);
  for (i = 0; i < n; i++) sign[i] = hdr[i];
  {
    lp_sigv4_key k = {s->access, s->secret, s->region, "s3"};
    lp_sigv4_request q = {r->method, path, r->query, sign, n, payload, date};
    char value[sizeof auth - 32];
    if (lp_sigv4_sign(&q, &k, value, sizeof value) != 0) return CURLE_OUT_OF_MEMORY;
    snprintf(auth, sizeof auth, "Authorization: %s", value);
  }
  c->easy_reset(h);
  for (i = 1; i < n; i++) {   /* curl writes Host itself */
    char *colon = strchr(hdr[i], ':');
    char line[sizeof hdr[0] + 2];
    snprintf(line, sizeof line, "%.*s: %s", (int)(colon - hdr[i]), hdr[i], colon + 1);
    list = c->slist_append(list, line);
  }
  list = c->slist_append(list, auth);
  list = c->slist_append(list, "Expect:");   /* unsigned, so dropping it is safe */
  list = c->slist_append(list, "Content-Type:");
  r->from = r->got;
  if (r->dec != NULL && r->got > 0) {   /* resume a download (unsigned: S3 allows it) */
    char range[64];
    snprintf(range, sizeof range, "Range: bytes=%llu-", (unsigned long long)r->got);
    list = c->slist_append(list, range);
  }
  c->easy_setopt(h, CURLOPT_URL, url);
  c->easy_setopt(h, CURLOPT_HTTPHEADER, list);
  c->easy_setopt(h, CURLOPT_ERRORBUFFER, curlerr);
  c->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  c->easy_setopt(h, CURLOPT_CONNECTTIMEOUT, s->timeout < 10 ? s->timeout : 10L);
  c->easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  c->easy_setopt(h, CURLOPT_LOW_SPEED_TIME, s->timeout);
  c->easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  c->easy_setopt(h, CURLOPT_HEADERDATA, r);
  c->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  c->easy_setopt(h, CURLOPT_WRITEDATA, r);
  /* larger pieces than the 16 KiB default: fewer calls to decode and write */
  c->easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
  if (strcmp(r->method, "HEAD") == 0) c->easy_setopt(h, CURLOPT_NOBODY, 1L);
  else if (strcmp(r->method, "PUT") == 0) {
    c->easy_setopt(h, CURLOPT_UPLOAD, 1L);
    c->easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    c->easy_setopt(h, CURLOPT_READDATA, r);
    c->easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->len);
    c->easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
  } else if (strcmp(r->method, "POST") == 0) {
    c->easy_setopt(h, CURLOPT_POST, 1L);
    c->easy_setopt(h, CURLOPT_POSTFIELDS, r->data != NULL ? (const char *)r->data : "");
    c->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
  } else if (strcmp(r->method, "GET") != 0) c->easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
  curlerr[0] = '\0';
  cc = c->easy_perform(h);
  c->easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  c->slist_free_all(list);
  return cc;
}

/* What the server's error body says, for a message: " (Code: message)". */
static void server_says(const request *r, char *out, size_t outsz) {
  char code[128], msg[256];
  if (xml_text(r->resp.p, "Code", code, sizeof code) == NULL) {
    out[0] = '\0';
    return;
  }
  if (xml_text(r->resp.p, "Message", msg, sizeof msg) == NULL) msg[0] = '\0';
  snprintf(out, outsz, " (%s%s%s)", code, msg[0] ? ": " : "", msg);
}

/*
** Run a request, with retries and backoff (0.1 s doubled, up to attempts).
** LUPINE_OK with r->status set for every answer but those that are
** failures whatever the request (403, a missing bucket, 5xx after the
** retries, no answer): those are LUPINE_IO with the message.
*/
static int perform(s3 *s, request *r, char *err, size_t errsz) {
  char curlerr[CURL_ERROR_SIZE], why[400], where[KEY_MAX + 200];
  CURL *h = handle(s);
  CURLcode cc = CURLE_OK;
  long delay = 100;
  int i = 0;
  if (h == NULL) {
    lp_errf(err, errsz, "artifact store '%s': out of memory starting an HTTP request", s->name);
    return LUPINE_NOMEM;
  }
  while (i < s->attempts) {
    if (i > 0) {
      struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
      nanosleep(&ts, NULL);
      delay *= 2;
      /* again from the start: a download's file emptied, an upload's
      ** rewound; a download decoded as it arrives resumes where it broke off */
      off_t keep = r->dec != NULL ? (off_t)r->got : 0;
      if (r->fd >= 0 && ((!r->streamed && ftruncate(r->fd, keep) != 0) ||
                         lseek(r->fd, keep, SEEK_SET) != keep))
        break;
      if (r->copy_fd >= 0 && (ftruncate(r->copy_fd, 0) != 0 ||
                              lseek(r->copy_fd, 0, SEEK_SET) != 0)) {
        close(r->copy_fd);
        r->copy_fd = -1;
      }
    }
    r->status = 0;
    r->sent = 0;
    r->resp.len = 0;
    if (r->resp.p != NULL) r->resp.p[0] = '\0';
    cc = attempt(s, h, r, curlerr);
    i++;
    if (r->dec_rc != LUPINE_OK) return r->dec_rc;   /* its message is in err */
    if (spool_flush(r) != 0) {
      lp_errf(err, errsz, "cannot write into the read cache (%s)", strerror(errno));
      return LUPINE_IO;
    }
    if (!retryable(cc, r->status)) break;
  }
  if (r->key != NULL)
    snprintf(where, sizeof where, "bucket '%s', key '%s'", s->bucket, r->key);
  else
    snprintf(where, sizeof where, "bucket '%s'", s->bucket);
  server_says(r, why, sizeof why);
  if (cc == CURLE_OPERATION_TIMEDOUT) {
    lp_errf(err, errsz, "artifact store '%s': %s of %s timed out after %d attempts (%s); "
            "is the S3 server at %s overloaded or the network down?", s->name, r->method,
            where, i, curlerr[0] ? curlerr : s->api->easy_strerror(cc), s->url);
    return LUPINE_IO;
  }
  if (cc != CURLE_OK) {
    lp_errf(err, errsz, "artifact store '%s': cannot reach the S3 server at %s for %s "
            "(%s, after %d attempts); is it running, and is its endpoint right?", s->name,
            s->url, where, curlerr[0] ? curlerr : s->api->easy_strerror(cc), i);
    return LUPINE_IO;
  }
  if (r->status == 403) {
    lp_errf(err, errsz, "artifact store '%s': access denied to %s (HTTP 403%s); check the "
            "credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE and "
            "~/.aws/credentials) and the bucket's permissions", s->name, where, why);
    return LUPINE_IO;
  }
  if (r->status == 404 && r->resp.p != NULL && strstr(r->resp.p, "NoSuchBucket") != NULL) {
    lp_errf(err, errsz, "artifact store '%s': bucket '%s' does not exist at %s; create it, "
            "or register the store with the right bucket and endpoint", s->name, s->bucket,
            s->url);
    return LUPINE_IO;
  }
  if (r->status >= 500 || r->status == 429) {
    lp_errf(err, errsz, "artifact store '%s': the S3 server failed %s of %s (HTTP %ld%s, "
            "after %d attempts); try again later", s->name, r->method, where, r->status, why, i);
    return LUPINE_IO;
  }
  return LUPINE_OK;
}

/* Any other answer than the ones expected: a message with the server's words. */
static int unexpected(s3 *s, request *r, char *err, size_t errsz) {
  char why[400];
  server_says(r, why, sizeof why);
  lp_errf(err, errsz, "artifact store '%s': %s of bucket '%s', key '%s' failed (HTTP %ld%s)",
          s->name, r->method, s->bucket, r->key != NULL ? r->key : "", r->status, why);
  return LUPINE_IO;
}

static void request_done(request *r) {
  free(r->resp.p);
  memset(&r->resp, 0, sizeof r->resp);
}

/* ---- the index: what a listing found, and what was uploaded or seen since,
** kept in the read cache's folder for the processes that follow ---- */

/* Fill known from the index if its listing is recent enough: 1 if so. */
static int index_load(s3 *s) {
  unsigned char d[32];
  int64_t when, now = (int64_t)time(NULL);
  FILE *f = fopen(s->index, "rb");
  int fresh;
  if (f == NULL) return 0;
  fresh = fread(&when, sizeof when, 1, f) == 1 && when <= now && now - when <= s->index_ttl;
  while (fresh && fread(d, sizeof d, 1, f) == 1) known_put(&s->known, d);
  fclose(f);
  return fresh;
}

/* Write known as the index, stamped now (best effort: it is only a hint,
** written whole to a temporary file and renamed, so readers see all or none). */
static void index_write(s3 *s) {
  static const unsigned char none[32];
  char tmp[PATH_MAX + 8];
  int64_t now = (int64_t)time(NULL);
  size_t i;
  FILE *f;
  int fd, ok;
  snprintf(tmp, sizeof tmp, "%s.XXXXXX", s->index);
  if ((fd = mkstemp(tmp)) < 0) return;
  if ((f = fdopen(fd, "wb")) == NULL) {
    close(fd);
    unlink(tmp);
    return;
  }
  ok = fwrite(&now, sizeof now, 1, f) == 1;
  for (i = 0; ok && i < s->known.cap; i++)
    if (memcmp(s->known.slot[i], none, 32) != 0) ok = fwrite(s->known.slot[i], 32, 1, f) == 1;
  if (fclose(f) != 0 || !ok || rename(tmp, s->index) != 0) unlink(tmp);
}

/* The object exists: known here, and to the index's later readers (one
** append of 32 bytes, which O_APPEND keeps whole among writers). */
static void remember(s3 *s, const char *hash) {
  unsigned char d[32];
  int fd;
  known_add(&s->known, hash);
  if ((fd = open(s->index, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0) return;
  digest_of(hash, d);
  if (write(fd, d, sizeof d) != (ssize_t)sizeof d) {
    /* a short append would shift every later entry: the index goes */
    unlink(s->index);
  }
  close(fd);
}

/* ---- existence ---- */

/* HEAD: 1 there, 0 not, -1 could not tell (err says why). */
static int head(s3 *s, const char *hash, char *err, size_t errsz) {
  char key[KEY_MAX] = "";   /* (filled below: GCC cannot tell, and warns) */
  request r = request_of("HEAD", key, NULL);
  int rc, there = -1;
  object_key(s, hash, key, sizeof key);
  rc = perform(s, &r, err, errsz);
  if (rc == LUPINE_OK && r.status == 200) there = 1;
  else if (rc == LUPINE_OK && r.status == 404) there = 0;
  else if (rc == LUPINE_OK) unexpected(s, &r, err, errsz);
  request_done(&r);
  if (there == 1) remember(s, hash);
  return there;
}

/* The listing's pages, object by object: fn(ud, hash, size, mtime). */
static int list_objects(s3 *s, int max_pages, lp_store_object_fn fn, void *ud, char *err,
                        size_t errsz) {
  char prefix[600], eprefix[1800], token[1024], etoken[3100], query[5000] = "";
  char key[KEY_MAX], size[32], stamp[40], truncated[8];
  size_t plen;
  int page, rc = LUPINE_OK;
  snprintf(prefix, sizeof prefix, "%s%sobjects/", s->prefix, s->prefix[0] ? "/" : "");
  plen = strlen(prefix);
  lp_sigv4_encode(prefix, 0, eprefix, sizeof eprefix);
  token[0] = '\0';
  for (page = 0; rc == LUPINE_OK && page < max_pages; page++) {
    request r = request_of("GET", NULL, query);
    const char *at;
    if (token[0] != '\0') {
      lp_sigv4_encode(token, 0, etoken, sizeof etoken);
      snprintf(query, sizeof query, "continuation-token=%s&list-type=2&prefix=%s", etoken,
               eprefix);
    } else snprintf(query, sizeof query, "list-type=2&prefix=%s", eprefix);
    if ((rc = perform(s, &r, err, errsz)) == LUPINE_OK && r.status != 200)
      rc = unexpected(s, &r, err, errsz);
    for (at = r.resp.p; rc == LUPINE_OK && at != NULL &&
                        (at = strstr(at, "<Contents>")) != NULL;) {
      const char *end = strstr(at, "</Contents>");
      char hash[LP_HASH_STRLEN + 1];
      struct tm tm;
      if (end == NULL) break;
      if (xml_text(at, "Key", key, sizeof key) == NULL ||
          xml_text(at, "Size", size, sizeof size) == NULL ||
          xml_text(at, "LastModified", stamp, sizeof stamp) == NULL) {
        at = end;
        continue;
      }
      at = end;
      /* only names a put could have written: objects/ab/<62 hex>.zst */
      if (strlen(key) != plen + 3 + LP_HASH_HEXLEN - 2 + 4 || key[plen + 2] != '/' ||
          strcmp(key + strlen(key) - 4, ".zst") != 0)
        continue;
      snprintf(hash, sizeof hash, "%s%.2s%.62s", LP_HASH_PREFIX, key + plen, key + plen + 3);
      if (!lp_frame_valid_hash(hash)) continue;
      memset(&tm, 0, sizeof tm);
      if (sscanf(stamp, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                 &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        continue;
      tm.tm_year -= 1900;
      tm.tm_mon -= 1;
      known_add(&s->known, hash);
      rc = fn(ud, hash, strtoull(size, NULL, 10), (int64_t)timegm(&tm));
    }
    if (rc == LUPINE_OK &&
        (xml_text(r.resp.p, "IsTruncated", truncated, sizeof truncated) == NULL ||
         strcmp(truncated, "true") != 0 ||
         xml_text(r.resp.p, "NextContinuationToken", token, sizeof token) == NULL)) {
      request_done(&r);
      return LUPINE_OK;
    }
    request_done(&r);
  }
  return rc;
}

static int ignore_object(void *ud, const char *hash, uint64_t size, int64_t mtime) {
  (void)ud, (void)hash, (void)size, (void)mtime;
  return LUPINE_OK;
}

static int s_exists(lp_store *base, const char *hash) {
  s3 *s = (s3 *)base;
  char err[LP_ERRSZ];
  if (known_has(&s->known, hash)) return 1;
  if (!s->listed) {
    s->listed = 1;
    if (index_load(s)) {
      if (known_has(&s->known, hash)) return 1;
    } else if (list_objects(s, LIST_PAGES, ignore_object, NULL, err, sizeof err) == LUPINE_OK) {
      index_write(s);
      if (known_has(&s->known, hash)) return 1;
    }
  }
  return head(s, hash, err, sizeof err) == 1;
}

static int s_list(lp_store *base, lp_store_object_fn fn, void *ud, char *err, size_t errsz) {
  return list_objects((s3 *)base, INT_MAX, fn, ud, err, errsz);
}

static int s_remove(lp_store *base, const char *hash, int *removed, char *err, size_t errsz) {
  s3 *s = (s3 *)base;
  char key[KEY_MAX] = "";
  request r = request_of("DELETE", key, NULL);
  int rc;
  object_key(s, hash, key, sizeof key);
  if ((rc = perform(s, &r, err, errsz)) == LUPINE_OK) {
    if (r.status == 204 || r.status == 200) *removed = 1;
    else if (r.status != 404) rc = unexpected(s, &r, err, errsz);
  }
  request_done(&r);
  /* what this process and the index knew may be wrong now: both go */
  if (rc == LUPINE_OK) {
    known_remove(&s->known);
    s->listed = 0;
    unlink(s->index);
  }
  return rc;
}

/* ---- uploads: from the cache's file of the object ---- */

static int read_full(int fd, unsigned char *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

/* Abort a multipart upload (what it stored is freed); its failure only
** leaves parts the bucket's lifecycle rules will expire. */
static void abort_upload(s3 *s, const char *key, const char *equery) {
  char query[3200] = "", err[LP_ERRSZ];
  request r = request_of("DELETE", key, query);
  snprintf(query, sizeof query, "uploadId=%s", equery);
  perform(s, &r, err, sizeof err);
  request_done(&r);
}

static int multipart(s3 *s, const char *key, int fd, uint64_t size, char *err, size_t errsz) {
  char id[1024], eid[3100], query[3200];
  char (*etags)[128] = NULL;
  body done = {NULL, 0, 0};
  size_t part = s->part_size, nparts, i;
  int rc;
  request r = request_of("POST", key, "uploads=");
  while ((size + part - 1) / part > MAX_PARTS) part *= 2;
  nparts = (size_t)((size + part - 1) / part);
  {
    unsigned char *p = realloc(s->part, part);   /* kept for the next upload */
    if (p == NULL) goto nomem;
    s->part = p;
  }
  if ((rc = perform(s, &r, err, errsz)) != LUPINE_OK) goto out;
  if (r.status != 200 || xml_text(r.resp.p, "UploadId", id, sizeof id) == NULL) {
    rc = unexpected(s, &r, err, errsz);
    goto out;
  }
  request_done(&r);
  lp_sigv4_encode(id, 0, eid, sizeof eid);
  if ((etags = calloc(nparts, sizeof *etags)) == NULL) goto nomem_abort;
  for (i = 0; i < nparts; i++) {
    size_t n = i + 1 < nparts ? part : (size_t)(size - (uint64_t)i * part);
    request p = request_of("PUT", key, query);
    p.data = s->part;
    p.len = n;
    if (read_full(fd, s->part, n) != 0) {
      lp_errf(err, errsz, "artifact store '%s': cannot read the cached copy of key '%s' (%s)",
              s->name, key, strerror(errno ? errno : EIO));
      rc = LUPINE_IO;
      goto abort;
    }
    snprintf(query, sizeof query, "partNumber=%zu&uploadId=%s", i + 1, eid);
    if ((rc = perform(s, &p, err, errsz)) == LUPINE_OK && p.status != 200)
      rc = unexpected(s, &p, err, errsz);
    snprintf(etags[i], sizeof etags[i], "%s", p.etag);
    request_done(&p);
    if (rc != LUPINE_OK) goto abort;
  }
  {
    size_t cap = 128 + nparts * 200, n;
    if ((done.p = malloc(cap)) == NULL) goto nomem_abort;
    n = (size_t)snprintf(done.p, cap, "<CompleteMultipartUpload>");
    for (i = 0; i < nparts; i++)
      n += (size_t)snprintf(done.p + n, cap - n, "<Part><PartNumber>%zu</PartNumber>"
                            "<ETag>%s</ETag></Part>", i + 1, etags[i]);
    n += (size_t)snprintf(done.p + n, cap - n, "</CompleteMultipartUpload>");
    done.len = n;
  }
  snprintf(query, sizeof query, "uploadId=%s", eid);
  r.query = query;
  r.data = (const unsigned char *)done.p;
  r.len = done.len;
  /* S3 may answer 200 and still fail: the body then holds an Error */
  if ((rc = perform(s, &r, err, errsz)) == LUPINE_OK &&
      (r.status != 200 || r.resp.p == NULL || strstr(r.resp.p, "<Error>") != NULL))
    rc = unexpected(s, &r, err, errsz);
  if (rc != LUPINE_OK) goto abort;
  goto out;
nomem_abort:
  lp_errf(err, errsz, "artifact store '%s': out of memory uploading key '%s'", s->name, key);
  rc = LUPINE_NOMEM;
abort:
  abort_upload(s, key, eid);
  goto out;
nomem:
  lp_errf(err, errsz, "artifact store '%s': out of memory uploading key '%s'", s->name, key);
  rc = LUPINE_NOMEM;
out:
  request_done(&r);
  free(etags);
  free(done.p);
  return rc;
}

/* The hex SHA-256 of a file's bytes from where it is: 0, or -1 (errno set). */
static int hash_file(int fd, char out[65]) {
  enum { CHUNK = 1 << 20 };
  unsigned char *buf = malloc(CHUNK), md[EVP_MAX_MD_SIZE];
  unsigned int mdlen;
  EVP_MD_CTX *sha = EVP_MD_CTX_new();
  ssize_t n;
  int rc = -1;
  if (buf == NULL || sha == NULL || EVP_DigestInit_ex(sha, lp_frame_sha256(), NULL) != 1) {
    errno = ENOMEM;
    goto done;
  }
  while ((n = read(fd, buf, CHUNK)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) goto done;
    EVP_DigestUpdate(sha, buf, (size_t)n);
  }
  if (EVP_DigestFinal_ex(sha, md, &mdlen) == 1) {
    lp_sigv4_hex(md, mdlen, out);
    rc = 0;
  }
done:
  EVP_MD_CTX_free(sha);
  free(buf);
  return rc;
}

/* Upload the cache's copy of an object, unless the bucket has it. */
static int upload(s3 *s, const char *hash, lp_object *info, char *err, size_t errsz) {
  char path[PATH_MAX], key[KEY_MAX];
  struct stat st;
  int fd, rc, there;
  if (known_has(&s->known, hash)) {
    info->created = 0;
    return LUPINE_OK;
  }
  if ((there = head(s, hash, err, errsz)) < 0) return LUPINE_IO;
  if (there) {
    info->created = 0;
    return LUPINE_OK;
  }
  lp_store_local_path(s->cache, hash, path, sizeof path);
  object_key(s, hash, key, sizeof key);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
    lp_errf(err, errsz, "artifact store '%s': cannot read the cached copy of key '%s' at %s "
            "(%s)", s->name, key, path, strerror(errno));
    if (fd >= 0) close(fd);
    return LUPINE_IO;
  }
  if ((uint64_t)st.st_size >= s->multipart_min)
    rc = multipart(s, key, fd, (uint64_t)st.st_size, err, errsz);
  else {
    /* one PUT, streamed from the file, with the frame's hash its put
    ** computed as it wrote it (else a first pass hashes the file) */
    const char *framed = lp_store_local_frame_hash(s->cache, hash);
    request r = request_of("PUT", key, NULL);
    r.len = (size_t)st.st_size;
    r.fd = fd;
    r.streamed = 1;
    if (framed != NULL) memcpy(r.payload, framed + sizeof LP_HASH_PREFIX - 1, sizeof r.payload);
    if (framed == NULL && (hash_file(fd, r.payload) != 0 || lseek(fd, 0, SEEK_SET) != 0)) {
      lp_errf(err, errsz, "artifact store '%s': cannot read the cached copy of key '%s' (%s)",
              s->name, key, strerror(errno ? errno : EIO));
      rc = LUPINE_IO;
    } else if ((rc = perform(s, &r, err, errsz)) == LUPINE_OK && r.status != 200)
      rc = unexpected(s, &r, err, errsz);
    request_done(&r);
  }
  close(fd);
  if (rc != LUPINE_OK) return rc;
  remember(s, hash);
  info->created = 1;
  info->stored_size = (uint64_t)st.st_size;
  return LUPINE_OK;
}

/* ---- the read cache ---- */

typedef struct entry {
  char hash[LP_HASH_STRLEN + 1];
  uint64_t size;
  int64_t mtime;
} entry;

typedef struct entries {
  entry *e;
  size_t n, cap;
  uint64_t total;
} entries;

static int gather(void *ud, const char *hash, uint64_t size, int64_t mtime) {
  entries *l = ud;
  l->total += size;
  if (l->e == NULL && l->cap > 0) return LUPINE_OK;   /* only counting */
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 256;
    entry *e = realloc(l->e, cap * sizeof *e);
    if (e == NULL) return LUPINE_NOMEM;
    l->e = e, l->cap = cap;
  }
  snprintf(l->e[l->n].hash, sizeof l->e[l->n].hash, "%s", hash);
  l->e[l->n].size = size;
  l->e[l->n++].mtime = mtime;
  return LUPINE_OK;
}

static int oldest_first(const void *a, const void *b) {
  const entry *x = a, *y = b;
  return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/*
** An object of size bytes entered the cache: evict the least recently
** used (by mtime, which a hit renews) down to 3/4 of the limit when it is
** over, keeping keep. Best effort: the cache is only a copy.
*/
static void cache_added(s3 *s, const char *keep, uint64_t size) {
  char err[LP_ERRSZ];
  entries l = {NULL, 0, 0, 0};
  size_t i;
  int removed;
  if (!s->cache_counted) {
    entries count = {NULL, 0, 1, 0};
    if (lp_store_list(s->cache, gather, &count, err, sizeof err) != LUPINE_OK) return;
    s->cache_used = count.total;
    s->cache_counted = 1;
  } else s->cache_used += size;
  if (s->cache_used <= s->cache_limit) return;
  if (lp_store_list(s->cache, gather, &l, err, sizeof err) == LUPINE_OK) {
    qsort(l.e, l.n, sizeof *l.e, oldest_first);
    s->cache_used = l.total;
    for (i = 0; i < l.n && s->cache_used > s->cache_limit / 4 * 3; i++) {
      if (strcmp(l.e[i].hash, keep) == 0) continue;
      if (lp_store_remove(s->cache, l.e[i].hash, &removed, err, sizeof err) == LUPINE_OK &&
          removed)
        s->cache_used -= l.e[i].size;
    }
  }
  free(l.e);
}

static int checked(s3 *s, const char *hash, int rc, char *err, size_t errsz);

/* A new temporary file in the read cache, for cache_install. */
static int cache_temp(s3 *s, char *tmp, int *fd, char *err, size_t errsz) {
  char owner[LP_OWNER_MAX];
  lp_owner_tag(owner);
  snprintf(tmp, PATH_MAX, "%s/tmp/obj-%s-XXXXXX", lp_store_root(s->cache), owner);
  if ((*fd = mkstemp(tmp)) >= 0) return LUPINE_OK;
  lp_errf(err, errsz, "artifact store '%s': cannot create '%s' in the read cache (%s)", s->name,
          tmp, strerror(errno));
  return LUPINE_IO;
}

/* A whole temporary file (closed) becomes the cache's copy of an object:
** renamed into place, so a reader sees a whole copy or none. */
static int cache_install(s3 *s, const char *hash, const char *tmp, char *err, size_t errsz) {
  char path[PATH_MAX], dir[PATH_MAX], *slash;
  struct stat st;
  lp_store_local_path(s->cache, hash, path, sizeof path);
  memcpy(dir, path, sizeof dir);
  if ((slash = strrchr(dir, '/')) != NULL) *slash = '\0';
  mkdir(dir, 0777);   /* the fan-out folder, made on first use */
  if (stat(tmp, &st) != 0 || rename(tmp, path) != 0) {
    lp_errf(err, errsz, "artifact store '%s': cannot move '%s' into the read cache (%s)",
            s->name, tmp, strerror(errno));
    return LUPINE_IO;
  }
  cache_added(s, hash, (uint64_t)st.st_size);
  return LUPINE_OK;
}

static int missing(s3 *s, const char *hash, const char *key, char *err, size_t errsz) {
  lp_errf(err, errsz, "object %s is missing (expected at s3://%s/%s in artifact store '%s')",
          hash, s->bucket, key, s->name);
  return LUPINE_NOTFOUND;
}

/*
** Make sure the cache holds the object: a hit renews its place in the
** LRU order; a miss downloads it (to a temporary file, renamed into
** place: a reader sees a whole file or none). Reading it checks it. With
** a decoder (dec, else NULL), a miss also decodes the object as it
** arrives, and the copy enters the cache only if it decodes whole and
** hashes right; *fed (if not NULL) says whether dec was fed.
*/
static int fetch(s3 *s, const char *hash, lp_frame_decoder *dec, int *fed, char *err,
                 size_t errsz) {
  char path[PATH_MAX], tmp[PATH_MAX], key[KEY_MAX] = "";
  request r = request_of("GET", key, NULL);
  struct stat st;
  int rc;
  lp_store_local_path(s->cache, hash, path, sizeof path);
  if (fed != NULL) *fed = 0;
  if (stat(path, &st) == 0) {
    utimensat(AT_FDCWD, path, NULL, 0);
    return LUPINE_OK;
  }
  if (fed != NULL) *fed = dec != NULL;
  r.dec = dec;
  r.dec_err = err;
  r.dec_errsz = errsz;
  object_key(s, hash, key, sizeof key);
  if ((rc = cache_temp(s, tmp, &r.fd, err, errsz)) != LUPINE_OK) return rc;
  if (dec != NULL) r.spool = malloc(SPOOL);   /* without it, a write per piece */
  if ((rc = perform(s, &r, err, errsz)) == LUPINE_OK && r.status != 200 &&
      (dec == NULL || r.status != 206))
    rc = r.status == 404 ? missing(s, hash, key, err, errsz) : unexpected(s, &r, err, errsz);
  else if (rc == LUPINE_OK && dec != NULL)
    rc = lp_frame_decoder_finish(dec, err, errsz);
  rc = checked(s, hash, rc, err, errsz);   /* a corrupt download: named by its key */
  if (close(r.fd) != 0 && rc == LUPINE_OK) {
    lp_errf(err, errsz, "artifact store '%s': cannot write '%s' (%s)", s->name, tmp,
            strerror(errno));
    rc = LUPINE_IO;
  }
  request_done(&r);
  free(r.spool);
  if (rc == LUPINE_OK) rc = cache_install(s, hash, tmp, err, errsz);
  if (rc != LUPINE_OK) {
    unlink(tmp);
    return rc;
  }
  remember(s, hash);
  return LUPINE_OK;
}

/* A read from the cache failed its checks: the copy goes (the next read
** downloads it again), and the message says where the object is. */
static int checked(s3 *s, const char *hash, int rc, char *err, size_t errsz) {
  char key[KEY_MAX], why[LP_ERRSZ];
  int removed;
  if (rc != LUPINE_CORRUPT) return rc;
  lp_store_remove(s->cache, hash, &removed, why, sizeof why);
  object_key(s, hash, key, sizeof key);
  snprintf(why, sizeof why, "%s", err);
  lp_errf(err, errsz, "%s (artifact store '%s', bucket '%s', key '%s')", why, s->name,
          s->bucket, key);
  return rc;
}

/* ---- the ops ---- */

/* Write a frame of raw blocks to fd: 0, or -1 with errno set. */
static int write_raw(int fd, const lp_frame_raw *f) {
  const unsigned char *p;
  uint64_t off = 0;
  size_t n;
  for (; (n = lp_frame_raw_at(f, off, &p)) > 0; off += n)
    if (lp_store_local_write(fd, p, n) != 0) return -1;
  return 0;
}

/*
** The hash of a value (info->hash: of hd, then data), its frame and that
** frame's hash (the PUT's payload hash, hex). Bytes that do not compress
** (lp_frame_incompressible) get a frame of raw blocks (*raw), made of the
** value itself: nothing to compress, and no copy; the others the frame a
** local store writes (*frame, malloc'd). Both hashes precede the PUT (its
** key and its signature), so a large value's hash is computed by a helper
** thread while this one makes and hashes the frame.
*/
static int frame_value(s3 *s, const void *hd, size_t hlen, const void *data, size_t len,
                       lp_object *info, lp_frame_raw *raw, unsigned char **frame, size_t *n,
                       char payload[65], char *err, size_t errsz) {
  unsigned char md[EVP_MAX_MD_SIZE], *joined = NULL;
  unsigned int mdlen;
  EVP_MD_CTX *vsha = EVP_MD_CTX_new(), *fsha = EVP_MD_CTX_new();
  lp_frame_hasher *h = NULL;
  int rc = LUPINE_OK;
  *frame = NULL;
  if (vsha == NULL || fsha == NULL || EVP_DigestInit_ex(fsha, lp_frame_sha256(), NULL) != 1 ||
      EVP_DigestInit_ex(vsha, lp_frame_sha256(), NULL) != 1)
    goto nomem;
  EVP_DigestUpdate(vsha, hd != NULL ? hd : "", hlen);
  if (len >= LP_FRAME_HASHER_MIN && (h = lp_frame_hasher_start(vsha)) != NULL)
    lp_frame_hasher_hash(h, data, len);
  else EVP_DigestUpdate(vsha, data, len);
  if (lp_frame_incompressible(data, len, lp_store_local_level(s->cache))) {
    lp_frame_raw_init(raw, hd, hlen, data, len, fsha);
    *n = (size_t)raw->size;
  } else {
    if (hlen > 0) {   /* compressed from one buffer */
      if ((joined = malloc(hlen + len)) == NULL) goto nomem;
      memcpy(joined, hd, hlen);
      memcpy(joined + hlen, data, len);
    }
    rc = lp_store_local_compress(s->cache, NULL, joined != NULL ? joined : data, hlen + len,
                                 frame, n, err, errsz);
    if (rc != LUPINE_OK) goto done;
    EVP_DigestUpdate(fsha, *frame, *n);
  }
  if (EVP_DigestFinal_ex(fsha, md, &mdlen) != 1) goto nomem;
  lp_sigv4_hex(md, mdlen, payload);
  if (h != NULL) lp_frame_hasher_wait(h);
  if (EVP_DigestFinal_ex(vsha, md, &mdlen) != 1) goto nomem;
  lp_frame_format_hash(md, mdlen, info->hash);
  goto done;
nomem:
  lp_errf(err, errsz, "artifact store '%s': out of memory saving a value of %zu bytes",
          s->name, hlen + len);
  rc = LUPINE_NOMEM;
done:
  lp_frame_hasher_stop(h);   /* waits for it, if it hashes still */
  EVP_MD_CTX_free(vsha);
  EVP_MD_CTX_free(fsha);
  free(joined);
  if (rc != LUPINE_OK) {
    free(*frame);
    *frame = NULL;
  }
  return rc;
}

/*
** A value below the multipart threshold: framed in memory (frame_value),
** then one PUT of it, unless the bucket has it; the read cache's copy is
** written as the bytes are sent (while the server takes them), not
** before, and enters the cache once the upload succeeded (a copy that
** could not be written is dropped).
*/
static int put_value(s3 *s, const void *hd, size_t hlen, const void *data, size_t len,
                     lp_object *info, char *err, size_t errsz) {
  char path[PATH_MAX], tmp[PATH_MAX] = "", key[KEY_MAX] = "";
  unsigned char *frame = NULL;
  lp_frame_raw raw;
  request r = request_of("PUT", key, NULL);
  struct stat st;
  size_t n = 0;
  int rc, there;
  info->size = hlen + len;
  info->created = 0;
  if ((rc = frame_value(s, hd, hlen, data, len, info, &raw, &frame, &n, r.payload, err,
                        errsz)) != LUPINE_OK)
    return rc;
  info->stored_size = n;   /* it goes into the catalog */
  lp_store_local_path(s->cache, info->hash, path, sizeof path);
  if (stat(path, &st) != 0 && cache_temp(s, tmp, &r.copy_fd, err, errsz) != LUPINE_OK)
    tmp[0] = '\0';   /* no copy: the upload does not need one */
  if (known_has(&s->known, info->hash)) there = 1;
  else if ((there = head(s, info->hash, err, errsz)) < 0) {
    rc = LUPINE_IO;
    goto done;
  }
  if (there) {   /* only the cache's copy to write */
    if (r.copy_fd >= 0 && (frame != NULL ? lp_store_local_write(r.copy_fd, frame, n)
                                         : write_raw(r.copy_fd, &raw)) != 0) {
      close(r.copy_fd);
      r.copy_fd = -1;
    }
  } else {
    object_key(s, info->hash, key, sizeof key);
    r.data = frame;
    r.raw = frame != NULL ? NULL : &raw;
    r.len = n;
    if ((rc = perform(s, &r, err, errsz)) == LUPINE_OK && r.status != 200)
      rc = unexpected(s, &r, err, errsz);
    request_done(&r);
    if (rc != LUPINE_OK) goto done;
    remember(s, info->hash);
    info->created = 1;
  }
  if (r.copy_fd >= 0) {   /* best effort: the cache is only a copy */
    char why[LP_ERRSZ];
    int closed = close(r.copy_fd);
    r.copy_fd = -1;
    if (closed == 0 && cache_install(s, info->hash, tmp, why, sizeof why) == LUPINE_OK)
      tmp[0] = '\0';
  }
done:
  if (r.copy_fd >= 0) close(r.copy_fd);
  if (tmp[0] != '\0') unlink(tmp);
  free(frame);
  return rc;
}

static int s_put(lp_store *base, const void *hd, size_t hlen, const void *data, size_t len,
                 lp_object *info, int sync, char *err, size_t errsz) {
  s3 *s = (s3 *)base;
  int rc;
  (void)sync;   /* an uploaded object is as durable as the service makes it */
  if (hlen + len < s->multipart_min) return put_value(s, hd, hlen, data, len, info, err, errsz);
  /* in parts, read one at a time from the cache's copy */
  if ((rc = lp_store_put_parts(s->cache, hd, hlen, data, len, info, 0, err, errsz)) !=
      LUPINE_OK)
    return rc;
  if (info->created) cache_added(s, info->hash, info->stored_size);
  return upload(s, info->hash, info, err, errsz);
}

static int s_sync(lp_store *base, char *err, size_t errsz) {
  (void)base, (void)err, (void)errsz;
  return LUPINE_OK;
}

/*
** From the cache if it holds the object; else downloaded, decoded and
** checked as it arrives, the copy written into the cache alongside (not
** first, then read back: one pass over the bytes instead of three).
*/
static int s_get(lp_store *base, const char *hash, uint64_t max_size, unsigned char **data,
                 size_t *len, char *err, size_t errsz) {
  s3 *s = (s3 *)base;
  char path[PATH_MAX];
  unsigned char *buf = NULL;
  size_t got = 0;
  lp_frame_decoder *d = NULL;
  struct stat st;
  int rc, fed = 0;
  lp_store_local_path(s->cache, hash, path, sizeof path);
  if (stat(path, &st) == 0)   /* a hit: no decoder (fetch only renews it) */
    rc = fetch(s, hash, NULL, NULL, err, errsz);
  else if (max_size >= SIZE_MAX || (buf = malloc(max_size > 0 ? (size_t)max_size : 1)) == NULL) {
    lp_errf(err, errsz, "out of memory reading object %s (%llu bytes)", hash,
            (unsigned long long)max_size);
    return LUPINE_NOMEM;
  } else if ((rc = lp_frame_decoder_open(&d, hash, max_size, NULL, NULL, err, errsz)) ==
             LUPINE_OK) {
    /* decoded where it stays: the bytes the caller gets */
    lp_frame_decoder_into(d, buf, &got);
    lp_frame_decoder_at_most(d);
    rc = fetch(s, hash, d, &fed, err, errsz);
    lp_frame_decoder_free(d);
  }
  if (rc == LUPINE_OK && fed) {
    *data = buf;
    *len = got;
    return LUPINE_OK;
  }
  free(buf);
  if (rc != LUPINE_OK) return rc;
  return checked(s, hash, lp_store_get(s->cache, hash, max_size, data, len, err, errsz), err,
                 errsz);
}

/*
** Straight from the bucket, decoded as it arrives: no copy in the cache (a
** file or folder is extracted once into the home's copies, which serve its
** later loads), and verify and copy read what the bucket holds.
*/
static int s_get_stream(lp_store *base, const char *hash, uint64_t size, lp_store_sink sink,
                        void *ud, char *err, size_t errsz) {
  s3 *s = (s3 *)base;
  char key[KEY_MAX] = "";
  request r = request_of("GET", key, NULL);
  int rc;
  object_key(s, hash, key, sizeof key);
  if ((rc = lp_frame_decoder_open(&r.dec, hash, size, sink, ud, err, errsz)) != LUPINE_OK)
    return rc;
  r.dec_err = err;
  r.dec_errsz = errsz;
  if ((rc = perform(s, &r, err, errsz)) == LUPINE_OK) {
    if (r.status == 404) rc = missing(s, hash, key, err, errsz);
    else if (r.status != 200 && r.status != 206) rc = unexpected(s, &r, err, errsz);
    else rc = checked(s, hash, lp_frame_decoder_finish(r.dec, err, errsz), err, errsz);
  }
  lp_frame_decoder_free(r.dec);
  request_done(&r);
  return rc;
}

static int s_local_path(lp_store *base, const char *hash, char *buf, size_t bufsz) {
  s3 *s = (s3 *)base;
  char err[LP_ERRSZ];
  int rc = fetch(s, hash, NULL, NULL, err, sizeof err);
  if (rc != LUPINE_OK) return rc;
  return lp_store_local_path(s->cache, hash, buf, bufsz);
}

static int s_uri(lp_store *base, const char *hash, char *buf, size_t bufsz) {
  s3 *s = (s3 *)base;
  char key[KEY_MAX];
  int n;
  object_key(s, hash, key, sizeof key);
  n = snprintf(buf, bufsz, "s3://%s/%s", s->bucket, key);
  return n >= 0 && (size_t)n < bufsz ? LUPINE_OK : LUPINE_MISUSE;
}

/* A streamed put: the cache's writer, then an upload of what it wrote. */
typedef struct writer {
  lp_store_writer base;
  s3 *s;
  lp_store_writer *inner;
} writer;

static int s_writer_open(lp_store *base, uint64_t size, lp_store_writer **out, char *err,
                         size_t errsz) {
  s3 *s = (s3 *)base;
  writer *w = calloc(1, sizeof *w);
  int rc;
  *out = NULL;
  if (w == NULL) {
    lp_errf(err, errsz, "out of memory starting an object of %llu bytes",
            (unsigned long long)size);
    return LUPINE_NOMEM;
  }
  w->base.ops = &lp_store_s3_ops;
  w->s = s;
  if ((rc = lp_store_writer_open(s->cache, size, &w->inner, err, errsz)) != LUPINE_OK) {
    free(w);
    return rc;
  }
  *out = &w->base;
  return LUPINE_OK;
}

static int s_writer_write(lp_store_writer *base, const void *p, size_t n, char *err,
                          size_t errsz) {
  return lp_store_writer_write(((writer *)base)->inner, p, n, err, errsz);
}

static int s_writer_close(lp_store_writer *base, lp_object *info, char *err, size_t errsz) {
  writer *w = (writer *)base;
  s3 *s = w->s;
  int rc = lp_store_writer_close(w->inner, info, err, errsz);
  free(w);
  if (rc != LUPINE_OK) return rc;
  if (info->created) cache_added(s, info->hash, info->stored_size);
  return upload(s, info->hash, info, err, errsz);
}

static void s_writer_abort(lp_store_writer *base) {
  writer *w = (writer *)base;
  lp_store_writer_abort(w->inner);
  free(w);
}

static void s_close(lp_store *base) {
  s3 *s = (s3 *)base;
  if (s->curl != NULL && s->curl_pid == (long)getpid()) s->api->easy_cleanup(s->curl);
  lp_store_close(s->cache);
  known_remove(&s->known);
  OPENSSL_cleanse(s->secret, sizeof s->secret);
  free(s->part);
  free(s->name);
  free(s);
}

const lp_store_ops lp_store_s3_ops = {
  "s3",
  s_close,
  s_put,
  s_sync,
  s_get,
  s_get_stream,
  s_exists,
  s_list,
  s_remove,
  s_local_path,
  s_uri,
  s_writer_open,
  s_writer_write,
  s_writer_close,
  s_writer_abort,
};

/* ---- opening: settings and credentials ---- */

/* The value of name=... in a "&"-separated list of settings, or NULL. */
static const char *setting(const char *settings, const char *name, char *out, size_t outsz) {
  size_t n = strlen(name);
  const char *p = settings;
  while (p != NULL && *p != '\0') {
    const char *end = strchr(p, '&');
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
      snprintf(out, outsz, "%.*s", (int)(len - n - 1), p + n + 1);
      return out;
    }
    p = end != NULL ? end + 1 : NULL;
  }
  return NULL;
}

/* The credentials: the environment's, else the profile's in the shared
** credentials file. 0, or -1 with why in err. */
static int credentials(s3 *s, char *err, size_t errsz) {
  char path[PATH_MAX], line[4200], section[256] = "", want[256];
  const char *profile = env("AWS_PROFILE"), *home = env("HOME");
  FILE *f;
  if (env("AWS_ACCESS_KEY_ID") != NULL && env("AWS_SECRET_ACCESS_KEY") != NULL) {
    snprintf(s->access, sizeof s->access, "%s", env("AWS_ACCESS_KEY_ID"));
    snprintf(s->secret, sizeof s->secret, "%s", env("AWS_SECRET_ACCESS_KEY"));
    snprintf(s->token, sizeof s->token, "%s", env("AWS_SESSION_TOKEN") ? env("AWS_SESSION_TOKEN") : "");
    return 0;
  }
  snprintf(want, sizeof want, "%s", profile != NULL ? profile : "default");
  if (env("AWS_SHARED_CREDENTIALS_FILE") != NULL)
    snprintf(path, sizeof path, "%s", env("AWS_SHARED_CREDENTIALS_FILE"));
  else snprintf(path, sizeof path, "%s/.aws/credentials", home != NULL ? home : "");
  if ((f = fopen(path, "r")) != NULL) {
    while (fgets(line, sizeof line, f) != NULL) {
      char *p = line, *e, *eq;
      while (*p == ' ' || *p == '\t') p++;
      for (e = p + strlen(p); e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' '); e--)
        ;
      *e = '\0';
      if (*p == '[') {
        snprintf(section, sizeof section, "%.*s", (int)(e - p > 2 ? e - p - 2 : 0), p + 1);
        continue;
      }
      if (strcmp(section, want) != 0 || *p == '#' || *p == ';' || (eq = strchr(p, '=')) == NULL)
        continue;
      for (e = eq; e > p && (e[-1] == ' ' || e[-1] == '\t'); e--)
        ;
      *e = '\0';
      for (eq++; *eq == ' ' || *eq == '\t'; eq++)
        ;
      if (strcmp(p, "aws_access_key_id") == 0)
        snprintf(s->access, sizeof s->access, "%.*s", (int)sizeof s->access - 1, eq);
      else if (strcmp(p, "aws_secret_access_key") == 0)
        snprintf(s->secret, sizeof s->secret, "%.*s", (int)sizeof s->secret - 1, eq);
      else if (strcmp(p, "aws_session_token") == 0)
        snprintf(s->token, sizeof s->token, "%.*s", (int)sizeof s->token - 1, eq);
    }
    fclose(f);
    OPENSSL_cleanse(line, sizeof line);
  }
  if (s->access[0] != '\0' && s->secret[0] != '\0') return 0;
  lp_errf(err, errsz, "artifact store '%s': no S3 credentials (set AWS_ACCESS_KEY_ID and "
          "AWS_SECRET_ACCESS_KEY, or put profile '%s' in %s)", s->name, want, path);
  return -1;
}

/* Where requests go: the endpoint, or AWS's for the region; the bucket in
** the path (path-style, and always for an address or localhost) or in the
** host name. */
static int address(s3 *s, int path_style, char *err, size_t errsz) {
  const char *e = s->endpoint, *host, *end;
  char scheme[16], hostport[256];
  size_t n;
  int ip;
  if (e[0] == '\0')
    snprintf(s->endpoint, sizeof s->endpoint, "https://s3.%s.amazonaws.com", s->region);
  if ((host = strstr(e, "://")) == NULL || (size_t)(host - e) >= sizeof scheme) {
    lp_errf(err, errsz, "artifact store '%s': endpoint '%s' is not a URL (expected "
            "http://host:port or https://host)", s->name, e);
    return LUPINE_MISUSE;
  }
  snprintf(scheme, sizeof scheme, "%.*s", (int)(host - e), e);
  host += 3;
  end = host + strcspn(host, "/");
  snprintf(hostport, sizeof hostport, "%.*s", (int)(end - host), host);
  n = strcspn(hostport, ":");
  ip = hostport[0] == '[' || strspn(hostport, "0123456789.") == n ||
       (n == 9 && strncmp(hostport, "localhost", 9) == 0);
  if (path_style || ip) {
    snprintf(s->host, sizeof s->host, "%s", hostport);
    snprintf(s->urlpath, sizeof s->urlpath, "/%s", s->bucket);
  } else {
    snprintf(s->host, sizeof s->host, "%s.%s", s->bucket, hostport);
    s->urlpath[0] = '\0';
  }
  snprintf(s->url, sizeof s->url, "%s://%s%s", scheme, s->host, s->urlpath);
  return LUPINE_OK;
}

/* A positive integer from the environment, or the default. */
static long env_long(const char *name, long dflt) {
  const char *v = env(name);
  char *end;
  long n = v != NULL ? strtol(v, &end, 10) : 0;
  return v != NULL && *end == '\0' && n > 0 ? n : dflt;
}

int lp_store_s3_open(lp_store **out, const char *location, const char *name, const char *cache,
                     char *err, size_t errsz) {
  char settings[1024] = "", value[1200], digest[65];
  const char *p, *q;
  size_t n;
  s3 *s;
  int rc;
  *out = NULL;
  if (strncmp(location, "s3://", 5) != 0) {
    lp_errf(err, errsz, "artifact store '%s': '%s' is not an s3:// location", name, location);
    return LUPINE_MISUSE;
  }
  if ((s = calloc(1, sizeof *s)) == NULL || (s->name = strdup(name)) == NULL) {
    if (s != NULL) free(s->name);
    free(s);
    lp_errf(err, errsz, "artifact store '%s': out of memory", name);
    return LUPINE_NOMEM;
  }
  s->base.ops = &lp_store_s3_ops;
  s->base.root = s->root;
  if ((s->api = curl_load(name, err, errsz)) == NULL) {
    rc = LUPINE_ERROR;
    goto fail;
  }
  p = location + 5;
  n = strcspn(p, "/?");
  snprintf(s->bucket, sizeof s->bucket, "%.*s", (int)n, p);
  p += n;
  while (*p == '/') p++;
  n = strcspn(p, "?");
  for (q = p + n; q > p && q[-1] == '/'; q--)
    ;
  snprintf(s->prefix, sizeof s->prefix, "%.*s", (int)(q - p), p);
  if (p[n] == '?') snprintf(settings, sizeof settings, "%s", p + n + 1);
  snprintf(s->root, sizeof s->root, "s3://%s%s%s", s->bucket, s->prefix[0] ? "/" : "", s->prefix);
  if (setting(settings, "region", s->region, sizeof s->region) == NULL)
    snprintf(s->region, sizeof s->region, "%s",
             env("AWS_REGION") ? env("AWS_REGION")
             : env("AWS_DEFAULT_REGION") ? env("AWS_DEFAULT_REGION") : "us-east-1");
  if (setting(settings, "endpoint", s->endpoint, sizeof s->endpoint) == NULL)
    snprintf(s->endpoint, sizeof s->endpoint, "%s",
             env("AWS_ENDPOINT_URL_S3") ? env("AWS_ENDPOINT_URL_S3")
             : env("AWS_ENDPOINT_URL") ? env("AWS_ENDPOINT_URL") : "");
  s->attempts = (int)env_long("LUPINE_S3_ATTEMPTS", 4);
  s->timeout = env_long("LUPINE_S3_TIMEOUT", 30);
  s->cache_limit = (uint64_t)env_long("LUPINE_S3_CACHE_MB", 8192) << 20;
  s->index_ttl = env_long("LUPINE_S3_INDEX_TTL", 600);
  /* one PUT (S3 takes up to 5 GiB) is the fastest there is: multipart only
  ** above 2 GiB by default, in parts of 16 MiB (at least S3's 5 MiB) */
  s->multipart_min = (uint64_t)env_long("LUPINE_S3_MULTIPART_MB", 2048) << 20;
  s->part_size = (size_t)env_long("LUPINE_S3_PART_MB", 16) << 20;
  if (s->part_size < (5u << 20)) s->part_size = 5u << 20;
  if (s->bucket[0] == '\0') {
    lp_errf(err, errsz, "artifact store '%s': '%s' names no bucket", name, location);
    rc = LUPINE_MISUSE;
    goto fail;
  }
  if ((rc = address(s, setting(settings, "path-style", value, sizeof value) != NULL, err,
                    errsz)) != LUPINE_OK)
    goto fail;
  if (credentials(s, err, errsz) != 0) {
    rc = LUPINE_MISUSE;
    goto fail;
  }
  if (cache == NULL) {
    lp_errf(err, errsz, "artifact store '%s': an s3 store needs a read cache folder", name);
    rc = LUPINE_MISUSE;
    goto fail;
  }
  if ((rc = lp_store_local_open(&s->cache, cache, err, errsz)) != LUPINE_OK) goto fail;
  lp_store_local_nosync(s->cache);   /* the bucket is where objects last */
  lp_store_local_hash_frames(s->cache, s->multipart_min);
  /* the index's name: a digest of where the objects are */
  snprintf(value, sizeof value, "%s\n%s", s->url, s->prefix);
  if (lp_sigv4_sha256_hex(value, strlen(value), digest) != 0) {
    lp_errf(err, errsz, "artifact store '%s': cannot hash (OpenSSL's SHA-256 failed)", name);
    rc = LUPINE_ERROR;
    goto fail;
  }
  snprintf(s->index, sizeof s->index, "%s/index", lp_store_root(s->cache));
  mkdir(s->index, 0777);
  snprintf(s->index, sizeof s->index, "%s/index/%.32s", lp_store_root(s->cache), digest);
  *out = &s->base;
  return LUPINE_OK;
fail:
  s_close(&s->base);
  return rc;
}
