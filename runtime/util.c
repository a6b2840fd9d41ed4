/* SPDX-License-Identifier: MIT */
/*
** util.c: small helpers shared by every file of the runtime.
*/
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "lupine_int.h"

/* A message cut to fit its buffer of size bytes ends between two UTF-8
** characters, never inside one, and says it was cut ("..."). */
static void cut(char *s, size_t size) {
  static const char more[] = "...";
  size_t n;
  if (size <= sizeof more) {   /* no room to say so */
    s[0] = '\0';
    return;
  }
  n = size - sizeof more;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;   /* s[n] continues a character */
  memcpy(s + n, more, sizeof more);
}

void lp_errf(char *err, size_t errsz, const char *fmt, ...) {
  va_list ap;
  int n;
  if (err == NULL || errsz == 0) return;
  va_start(ap, fmt);
  n = vsnprintf(err, errsz, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n >= errsz) cut(err, errsz);
}

int lp_process_start(long pid, char out[32]) {
  char path[64], line[1024], *p;
  FILE *f;
  int field;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  if ((f = fopen(path, "r")) == NULL) return -1;
  p = fgets(line, sizeof line, f);
  fclose(f);
  /* the command name (field 2) may hold spaces: count from its ')' */
  if (p == NULL || (p = strrchr(line, ')')) == NULL) return -1;
  for (field = 2; field < 22 && (p = strchr(p + 1, ' ')) != NULL; field++) {}
  if (p == NULL) return -1;
  snprintf(out, 32, "%.*s", (int)strcspn(p + 1, " "), p + 1);
  return 0;
}

long long lp_random_seed(void) {
  uint64_t x;
  if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x) {
    /* no entropy to be had: still different per process and moment */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)ts.tv_sec ^
        (uint64_t)getpid() << 32;
  }
  return (long long)(x & ((UINT64_C(1) << 53) - 1));
}

/* This host's name as a tag may hold it: no '-' (the tag's separator) and
** nothing a file name should not hold. */
static void host_name(char *out, size_t outsz) {
  char host[256] = "";
  size_t i;
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
    snprintf(host, sizeof host, "host");
  for (i = 0; host[i] != '\0'; i++)
    if (!isalnum((unsigned char)host[i]) && host[i] != '.' && host[i] != '_') host[i] = '_';
  snprintf(out, outsz, "%.64s", host);
}

void lp_owner_tag(char out[LP_OWNER_MAX]) {
  char start[32] = "0", host[65];
  long pid = (long)getpid();
  lp_process_start(pid, start);
  host_name(host, sizeof host);
  snprintf(out, LP_OWNER_MAX, "%ld-%s-%s", pid, start, host);
}

int lp_owner_gone(const char *name) {
  char start[32], host[65], *end;
  const char *p = name, *h, *last = strrchr(name, '-');
  long pid;
  size_t n;
  if (!isdigit((unsigned char)*p)) return 0;
  pid = strtol(p, &end, 10);
  if (*end != '-' || !isdigit((unsigned char)end[1])) return 0;
  p = end + 1;
  n = strspn(p, "0123456789");
  if (p[n] != '-') return 0;
  h = p + n + 1;
  if (last == NULL || last < h) return 0;
  /* another host's process cannot be looked up here: never judged gone */
  host_name(host, sizeof host);
  if (strlen(host) != (size_t)(last - h) || strncmp(host, h, (size_t)(last - h)) != 0) return 0;
  if (lp_process_start(pid, start) != 0) return 1;
  return strlen(start) != n || strncmp(start, p, n) != 0;
}

int lp_default_jobs(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/*
** The 16-digit text next to x away from zero, if it reads back as x: above
** a power of two doubles are twice as far apart as below it, so texts
** reach twice as far that way, and the 16-digit text nearest x may miss
** while this one reads back. Only %g's exponent form needs it: where
** %.16g writes without an exponent (10^-4 to 10^16), powers of two have
** exact texts of at most 16 digits.
*/
static int power_of_two_text(double x, char *buf, size_t size) {
  char t[40], *digits, *exp, *end;
  int i, e;
  snprintf(t, sizeof t, "%.15e", x);   /* [-]d.ddddddddddddddde+XX */
  digits = t + (t[0] == '-');
  exp = strchr(digits, 'e');
  e = atoi(exp + 1);
  if (e >= -4 && e < 16) return 0;
  for (i = 16; i >= 0; i--) {   /* add one to the last digit */
    if (i == 1) continue;       /* the point */
    if (digits[i] < '9') break;
    digits[i] = '0';
  }
  if (i < 0) return 0;          /* 9.99...9 would gain a digit */
  digits[i]++;
  if (strtod(t, NULL) != x) return 0;
  for (end = exp; end[-1] == '0'; end--) {}
  if (end[-1] == '.') end--;
  snprintf(buf, size, "%.*s%s", (int)(end - t), t, exp);
  return 1;
}

/*
** For a normal double the first of 15, 16 and 17 digits that reads back
** is the shortest: a text of fewer digits that reads back is within half
** an ulp of x (2^-53 of it), well inside half a step of 15 digits (at
** least 5 * 10^-16 of it), so %.15g prints those digits, its trailing
** zeros dropped. Of 16 digits the nearest text is the one to try, but for
** powers of two (above). Subnormals hold fewer digits and are evenly
** spaced: their search starts at 1.
*/
void lp_float_text(double x, char *buf, size_t size) {
  int prec = fpclassify(x) == FP_SUBNORMAL ? 1 : 15, e;
  for (; prec < 17; prec++) {
    snprintf(buf, size, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) return;
  }
  if (fabs(frexp(x, &e)) == 0.5 && power_of_two_text(x, buf, size)) return;
  snprintf(buf, size, "%.17g", x);
}

/*
** A duration for people, the one format every message and table uses:
** "0.4 ms" and "9.9 ms" (a tenth below 10 ms, where cached steps live),
** "850 ms", "6.0 s", "2 min 05 s", "3 h 07 min". Each unit is used up to
** where its rounded text would reach the next one.
*/
void lp_duration(double ms, char *buf, size_t size) {
  double s;
  long whole;
  if (!(ms > 0)) ms = 0;                 /* NaN or negative: a clock went back */
  if (ms > 1e13) ms = 1e13;              /* (317 years: whole minutes fit a long) */
  s = ms / 1e3;
  if (ms < 9.95) snprintf(buf, size, "%.1f ms", ms);
  else if (ms < 999.5) snprintf(buf, size, "%.0f ms", ms);
  else if (s < 59.95) snprintf(buf, size, "%.1f s", s);
  else if ((whole = (long)(s + 0.5)) < 3600)
    snprintf(buf, size, "%ld min %02ld s", whole / 60, whole % 60);
  else {
    whole = (long)(s / 60 + 0.5);   /* minutes */
    snprintf(buf, size, "%ld h %02ld min", whole / 60, whole % 60);
  }
}

void lp_appendf(char *buf, size_t size, size_t *len, const char *fmt, ...) {
  va_list ap;
  int n;
  if (*len >= size) return;
  va_start(ap, fmt);
  n = vsnprintf(buf + *len, size - *len, fmt, ap);
  va_end(ap);
  *len = n < 0 ? size : *len + (size_t)n;
}
