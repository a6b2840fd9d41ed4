/* SPDX-License-Identifier: MIT */
/*
** test_sigv4.c: the SigV4 signer (runtime/sigv4.c) against the example
** signatures AWS documents for S3 ("Examples: Signature Calculations in
** AWS Signature Version 4": GET Object, PUT Object, GET Bucket Lifecycle,
** Get Bucket). Prints TAP; exits 1 if any test failed.
*/
#include <stdio.h>
#include <string.h>
#include "store_int.h"
#include "tap.h"

#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define CRED "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"

static const lp_sigv4_key key = {"AKIAIOSFODNN7EXAMPLE",
                                 "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"};

static void signs(const char *method, const char *path, const char *query,
                  const char *const *headers, size_t n, const char *payload, const char *want,
                  const char *what) {
  char out[512];
  lp_sigv4_request r = {method, path, query, headers, n, payload, "20130524T000000Z"};
  check(lp_sigv4_sign(&r, &key, out, sizeof out) == 0, "%s: signed", what);
  same(out, want, what);
}

int main(void) {
  char sha[65], enc[64];
  const char *get[] = {"Host:examplebucket.s3.amazonaws.com", "Range:bytes=0-9",
                       "x-amz-content-sha256:" EMPTY_SHA, "x-amz-date:20130524T000000Z"};
  const char *put[] = {"Host:examplebucket.s3.amazonaws.com",
                       "Date:Fri, 24 May 2013 00:00:00 GMT", "x-amz-date:20130524T000000Z",
                       "x-amz-storage-class:REDUCED_REDUNDANCY",
                       "x-amz-content-sha256:"
                       "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"};
  const char *bucket[] = {"Host:examplebucket.s3.amazonaws.com",
                          "x-amz-date:20130524T000000Z", "x-amz-content-sha256:" EMPTY_SHA};

  signs("GET", "/test.txt", "", get, 4, EMPTY_SHA,
        CRED "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        "AWS's GET Object example");

  check(lp_sigv4_sha256_hex("Welcome to Amazon S3.", 21, sha) == 0 &&
        strcmp(sha, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072") == 0,
        "the PUT Object example's payload hash");
  check(lp_sigv4_encode("test$file.text", 1, enc, sizeof enc) > 0, "encode a key");
  same(enc, "test%24file.text", "'$' is percent-encoded in a key");
  signs("PUT", "/test%24file.text", NULL, put, 5, sha,
        CRED "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        "AWS's PUT Object example (headers in any order and case)");

  /* "?lifecycle": a parameter without a value is signed as "lifecycle=" */
  signs("GET", "/", "lifecycle", bucket, 3, EMPTY_SHA,
        CRED "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
        "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        "AWS's GET Bucket Lifecycle example (a parameter without a value)");
  /* the query is sorted before signing, whatever order it is sent in */
  signs("GET", "/", "prefix=J&max-keys=2", bucket, 3, EMPTY_SHA,
        CRED "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        "AWS's Get Bucket example, its query given unsorted");

  check(lp_sigv4_encode("a b+c(d)/e~", 0, enc, sizeof enc) > 0, "encode a query value");
  same(enc, "a%20b%2Bc%28d%29%2Fe~", "space, '+', '(', ')' and '/' are percent-encoded");
  check(lp_sigv4_encode("0123456789", 0, enc, 8) == 0, "encode: 0 when it does not fit");
  {
    char small[40];
    lp_sigv4_request r = {"GET", "/", "", bucket, 3, EMPTY_SHA, "20130524T000000Z"};
    check(lp_sigv4_sign(&r, &key, small, sizeof small) == -1, "sign: -1 when it does not fit");
  }
  return tap_done();
}
