/* SPDX-License-Identifier: MIT */
/*
** sigv4.c: AWS Signature Version 4 for the s3 store flavor (store_s3.c):
** the canonical request, the string to sign, the derived key and the
** Authorization header, on libcrypto's HMAC and SHA-256.
**
** Lupine signs itself rather than through libcurl's CURLOPT_AWS_SIGV4:
** the libcurl of Debian 12 (7.88) signs an empty header it was told to
** drop, signs "?uploads" without its "=", and does not sort the query, so
** multipart uploads and listings fail against a server that checks
** signatures (see runtime/README.md, "S3 store").
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "store_int.h"

#define MAX_PARTS 32   /* query parameters or headers of one request */

void lp_sigv4_hex(const unsigned char *md, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = digits[md[i] >> 4];
    out[2 * i + 1] = digits[md[i] & 15];
  }
  out[2 * n] = '\0';
}

int lp_sigv4_sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen;
  if (EVP_Digest(data, len, md, &mdlen, lp_frame_sha256(), NULL) != 1) return -1;
  lp_sigv4_hex(md, mdlen, out);
  return 0;
}

size_t lp_sigv4_encode(const char *s, int keep_slash, char *out, size_t outsz) {
  static const char digits[] = "0123456789ABCDEF";
  size_t n = 0;
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
    if (n + 4 > outsz) return 0;
    if (plain) out[n++] = (char)c;
    else {
      out[n++] = '%';
      out[n++] = digits[c >> 4];
      out[n++] = digits[c & 15];
    }
  }
  if (n + 1 > outsz) return 0;
  out[n] = '\0';
  return n;
}

/* A growing string; a failed append leaves it marked (ok = 0). */
typedef struct buf {
  char *p;
  size_t len, cap;
  int ok;
} buf;

static void put(buf *b, const char *s, size_t n) {
  if (!b->ok) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->len + n + 1) * 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->ok = 0;
      return;
    }
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s) {
  put(b, s, strlen(s));
}

/* A name and value (query parameter or header), for sorting. */
typedef struct pair {
  char name[128];
  const char *value;
  size_t vlen;
} pair;

static int by_name(const void *a, const void *b) {
  const pair *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c != 0) return c;
  return strcmp(x->value, y->value);   /* (values compared to their ends: enough to order) */
}

/* A header value without the spaces around it, and with inner runs of
** spaces squeezed to one, as the canonical form wants. */
static void trimmed(buf *b, const char *v, size_t n) {
  size_t i = 0;
  int space = 0, started = 0;
  for (i = 0; i < n; i++) {
    if (v[i] == ' ' || v[i] == '\t') {
      space = started;
      continue;
    }
    if (space) put(b, " ", 1);
    space = 0, started = 1;
    put(b, v + i, 1);
  }
}

static void hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32]) {
  unsigned int n = 32;
  HMAC(lp_frame_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &n);
}

int lp_sigv4_sign(const lp_sigv4_request *r, const lp_sigv4_key *k, char *out, size_t outsz) {
  pair q[MAX_PARTS], h[MAX_PARTS];
  size_t nq = 0, nh = 0, i;
  buf canon = {NULL, 0, 0, 1}, signed_headers = {NULL, 0, 0, 1}, sts = {NULL, 0, 0, 1};
  char scope[128], hashed[65], key0[256], sig[65];
  unsigned char kd[32], kr[32], ks[32], kk[32], sm[32];
  const char *p;
  int rc = -1;

  /* the query: "a=1&b" becomes pairs; a name without "=" gets an empty value */
  for (p = r->query != NULL ? r->query : ""; *p != '\0' && nq < MAX_PARTS;) {
    const char *end = strchr(p, '&'), *eq;
    size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
    eq = memchr(p, '=', n);
    snprintf(q[nq].name, sizeof q[nq].name, "%.*s", (int)(eq != NULL ? eq - p : (long)n), p);
    q[nq].value = eq != NULL ? eq + 1 : p + n;
    q[nq].vlen = eq != NULL ? (size_t)(p + n - eq - 1) : 0;
    nq++;
    p += n + (end != NULL);
  }
  for (i = 0; i < r->nheaders && nh < MAX_PARTS; i++, nh++) {
    const char *c = strchr(r->headers[i], ':');
    size_t j, n = c != NULL ? (size_t)(c - r->headers[i]) : strlen(r->headers[i]);
    if (n >= sizeof h[nh].name) n = sizeof h[nh].name - 1;
    for (j = 0; j < n; j++) {
      char ch = r->headers[i][j];
      h[nh].name[j] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    h[nh].name[n] = '\0';
    h[nh].value = c != NULL ? c + 1 : "";
    h[nh].vlen = strlen(h[nh].value);
  }
  qsort(q, nq, sizeof *q, by_name);
  qsort(h, nh, sizeof *h, by_name);

  puts_(&canon, r->method);
  put(&canon, "\n", 1);
  puts_(&canon, r->path);
  put(&canon, "\n", 1);
  for (i = 0; i < nq; i++) {
    if (i > 0) put(&canon, "&", 1);
    puts_(&canon, q[i].name);
    put(&canon, "=", 1);
    put(&canon, q[i].value, q[i].vlen);
  }
  put(&canon, "\n", 1);
  for (i = 0; i < nh; i++) {
    puts_(&canon, h[i].name);
    put(&canon, ":", 1);
    trimmed(&canon, h[i].value, h[i].vlen);
    put(&canon, "\n", 1);
    if (i > 0) put(&signed_headers, ";", 1);
    puts_(&signed_headers, h[i].name);
  }
  put(&canon, "\n", 1);
  puts_(&canon, signed_headers.ok && signed_headers.p != NULL ? signed_headers.p : "");
  put(&canon, "\n", 1);
  puts_(&canon, r->payload_hash);
  if (!canon.ok || !signed_headers.ok || lp_sigv4_sha256_hex(canon.p, canon.len, hashed) != 0)
    goto done;

  snprintf(scope, sizeof scope, "%.8s/%s/%s/aws4_request", r->amz_date, k->region, k->service);
  puts_(&sts, "AWS4-HMAC-SHA256\n");
  puts_(&sts, r->amz_date);
  put(&sts, "\n", 1);
  puts_(&sts, scope);
  put(&sts, "\n", 1);
  puts_(&sts, hashed);
  if (!sts.ok) goto done;

  snprintf(key0, sizeof key0, "AWS4%s", k->secret);
  snprintf(sig, sizeof sig, "%.8s", r->amz_date);
  hmac(key0, strlen(key0), sig, kd);
  hmac(kd, sizeof kd, k->region, kr);
  hmac(kr, sizeof kr, k->service, ks);
  hmac(ks, sizeof ks, "aws4_request", kk);
  hmac(kk, sizeof kk, sts.p, sm);
  lp_sigv4_hex(sm, sizeof sm, sig);
  OPENSSL_cleanse(key0, sizeof key0);
  OPENSSL_cleanse(kk, sizeof kk);

  i = (size_t)snprintf(out, outsz, "AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s",
                       k->access_key, scope, signed_headers.p != NULL ? signed_headers.p : "", sig);
  rc = i < outsz ? 0 : -1;
done:
  free(canon.p);
  free(signed_headers.p);
  free(sts.p);
  return rc;
}
