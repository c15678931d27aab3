/* SPDX-License-Identifier: Apache-2.0 */
/* Fields of a JSON access-log line without building a tree. The scanner walks the line once,
 * checking it exactly as strictly as jansson's json_loadb (which the agent used before and
 * which stays here as the reference the tests and the fuzzer compare with), and remembers
 * only where the values of the configured top-level keys are; those few are decoded at the
 * end. jansson allocated every key and value of every line (~6 CPU-s per 1M lines of the
 * benchmark's ~270-byte lines); the scanner costs about as much as reading the bytes. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/logmetrics/internal.h"

/* jansson's JSON_PARSER_MAX_DEPTH; every value counts, scalars too: the top-level object is
 * at depth 1 and a value at depth 2,049 fails the whole line. */
#define MAX_DEPTH 2048

enum { T_SERVICE, T_ENDPOINT, T_METHOD, T_STATUS, T_DURATION, NTARGET };
enum { V_NONE, V_STRING, V_INT, V_REAL, V_OTHER };

struct val {
  const unsigned char *p; /* string: the bytes between the quotes; number: the token */
  size_t n;
  int type;
  bool esc; /* a string with backslash escapes */
};

/* Field by field: v was just written in pieces, and a 16-byte load of it would wait for
 * those stores (store forwarding fails; it was 14 % of the scan). */
static void set(struct val *dst, const struct val *v)
{
  dst->p = v->p;
  dst->n = v->n;
  dst->type = v->type;
  dst->esc = v->esc;
}

void nn__logmetrics_copy_field(char *dst, const char *src, size_t n)
{
  if (n >= NN__LM_FIELD_MAX)
    n = NN__LM_FIELD_MAX - 1;
  /* Control characters and quotes would need escaping in exposition; drop them. */
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)src[i] >= 0x20 && src[i] != '"' && src[i] != '\\')
      dst[k++] = src[i];
  dst[k] = '\0';
}

static bool is_digit(unsigned c)
{
  return c - '0' < 10;
}

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *e)
{
  while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  return p;
}

static int32_t hex4(const unsigned char *p)
{
  int32_t v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = p[i];
    if (c - '0' < 10)
      v = v * 16 + (int32_t)(c - '0');
    else if ((c | 0x20) - 'a' < 6)
      v = v * 16 + (int32_t)((c | 0x20) - 'a' + 10);
    else
      return -1;
  }
  return v;
}

/* Length of the strict UTF-8 sequence at p (jansson's utf8_check_first/full: no overlong
 * forms, surrogates or code points past U+10FFFF), 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, const unsigned char *e)
{
  unsigned c = p[0];
  size_t k;
  uint32_t v;
  if (c >= 0xC2 && c <= 0xDF)
    k = 2, v = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF)
    k = 3, v = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4)
    k = 4, v = c & 0x07;
  else
    return 0;
  if ((size_t)(e - p) < k)
    return 0;
  for (size_t i = 1; i < k; i++) {
    if (p[i] < 0x80 || p[i] > 0xBF)
      return 0;
    v = (v << 6) | (p[i] & 0x3F);
  }
  if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (k == 3 && v < 0x800) ||
      (k == 4 && v < 0x10000))
    return 0;
  return k;
}

/* Non-zero when one of the 8 bytes in x is '"', '\\', below 0x20 or above 0x7F: the bytes a
 * string scan must look at one by one (the classic has-zero-byte test, exact for "any"). */
static uint64_t special8(uint64_t x)
{
  const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
  uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
  return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) | x) & high;
}

/* p: just after the opening quote. The closing quote, or NULL when jansson would refuse the
 * string: a control byte, a bad escape, \u0000, a lone or reversed surrogate, bad UTF-8, no
 * end. *esc is set when the string has escapes. */
static const unsigned char *scan_string(const unsigned char *p, const unsigned char *e, bool *esc)
{
  for (;;) {
    while (e - p >= 8) {
      uint64_t x;
      memcpy(&x, p, 8);
      uint64_t sp = special8(x);
      if (sp) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* The lowest flagged byte is a true match (borrows only run upwards): go to it
         * instead of stepping there byte by byte. */
        p += __builtin_ctzll(sp) >> 3;
#endif
        break;
      }
      p += 8;
    }
    if (p >= e)
      return NULL;
    unsigned c = *p;
    if (c == '"')
      return p;
    if (c < 0x20)
      return NULL;
    if (c < 0x80 && c != '\\') {
      p++;
      continue;
    }
    if (c >= 0x80) {
      size_t k = utf8_len(p, e);
      if (!k)
        return NULL;
      p += k;
      continue;
    }
    if (e - p < 2)
      return NULL;
    c = p[1];
    *esc = true;
    if (c != 'u') {
      if (!strchr("\"\\/bfnrt", (int)c) || !c)
        return NULL;
      p += 2;
      continue;
    }
    if (e - p < 6)
      return NULL;
    int32_t v = hex4(p + 2);
    if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF))
      return NULL; /* also bad hex (-1) and \u0000, which jansson refuses without ALLOW_NUL */
    p += 6;
    if (v >= 0xD800 && v <= 0xDBFF) {
      if (e - p < 6 || p[0] != '\\' || p[1] != 'u')
        return NULL;
      int32_t v2 = hex4(p + 2);
      if (v2 < 0xDC00 || v2 > 0xDFFF)
        return NULL;
      p += 6;
    }
  }
}

/* strtod of a token that is not NUL-terminated: a stack copy, the heap only for tokens of
 * hostile length. False on out-of-memory. */
static bool token_strtod(const unsigned char *p, size_t n, double *out, int *err)
{
  char small[128];
  char *s = n < sizeof(small) ? small : malloc(n + 1);
  if (!s)
    return false;
  memcpy(s, p, n);
  s[n] = '\0';
  errno = 0;
  *out = strtod(s, NULL);
  *err = errno;
  if (s != small)
    free(s);
  return true;
}

/* p: at '-' or a digit. The end of the number, or NULL when jansson would refuse it: bad
 * syntax, an integer outside int64 or a real that overflows a double. */
static const unsigned char *scan_number(const unsigned char *p, const unsigned char *e, bool *real)
{
  const unsigned char *s = p;
  bool neg = *p == '-';
  if (neg)
    p++;
  const unsigned char *d = p;
  if (p < e && *p == '0')
    p++;
  else if (p < e && is_digit(*p))
    while (p < e && is_digit(*p))
      p++;
  else
    return NULL;
  size_t nint = (size_t)(p - d);
  if (p < e && is_digit(*p))
    return NULL; /* a leading zero */
  if (p == e || (*p != '.' && *p != 'e' && *p != 'E')) {
    *real = false;
    if (nint > 19 ||
        (nint == 19 && memcmp(d, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0))
      return NULL;
    return p;
  }
  *real = true;
  if (*p == '.') {
    p++;
    if (p == e || !is_digit(*p))
      return NULL;
    while (p < e && is_digit(*p))
      p++;
  }
  long ex = 0;
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    bool eneg = false;
    if (p < e && (*p == '+' || *p == '-'))
      eneg = *p++ == '-';
    if (p == e || !is_digit(*p))
      return NULL;
    while (p < e && is_digit(*p)) {
      if (ex < 1000000)
        ex = ex * 10 + (*p - '0');
      p++;
    }
    if (eneg)
      ex = -ex;
  }
  /* Below 10^(integer digits + exponent) <= 10^308 it cannot overflow; only beyond that
   * does strtod decide, as in jansson. */
  if ((long)(nint > 400 ? 400 : nint) + ex > 308) {
    double v;
    int err;
    if (!token_strtod(s, (size_t)(p - s), &v, &err))
      return NULL;
    if ((v == HUGE_VAL || v == -HUGE_VAL) && err == ERANGE)
      return NULL;
  }
  return p;
}

/* The value of a number token as json_number_value gives it: an integer through int64, a
 * real as strtod rounds it. Small decimals (up to 2^53 with at most 22 digits of scale, such
 * as 12.345) take Clinger's fast path, one correctly rounded division or multiplication,
 * which is exactly strtod's result. */
static double number_value(const struct val *v)
{
  static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  const unsigned char *p = v->p, *e = v->p + v->n;
  bool neg = *p == '-';
  if (neg)
    p++;
  uint64_t m = 0;
  if (v->type == V_INT) {
    while (p < e)
      m = m * 10 + (uint64_t)(*p++ - '0');
    int64_t i = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m) : (int64_t)m;
    return (double)i;
  }
  long frac = 0, ex = 0;
  bool in_frac = false, fast = true;
  for (; p < e && *p != 'e' && *p != 'E'; p++) {
    if (*p == '.') {
      in_frac = true;
      continue;
    }
    if (m > (UINT64_C(1) << 53) / 10) {
      fast = false;
      break;
    }
    m = m * 10 + (uint64_t)(*p - '0');
    frac += in_frac;
  }
  if (fast && p < e) {
    p++;
    bool eneg = *p == '-';
    if (*p == '-' || *p == '+')
      p++;
    for (; p < e && ex < 1000; p++)
      ex = ex * 10 + (*p - '0');
    if (p < e)
      fast = false;
    if (eneg)
      ex = -ex;
  }
  long k = frac - ex;
  if (fast && m <= (UINT64_C(1) << 53) && k >= -22 && k <= 22) {
    double r = k >= 0 ? (double)m / pow10[k] : (double)m * pow10[-k];
    return neg ? -r : r;
  }
  double r;
  int err;
  if (!token_strtod(v->p, v->n, &r, &err))
    return NAN;
  return r;
}

/* Decodes the character at *pp of a string that scan_string accepted into its UTF-8 bytes
 * (jansson's utf8_encode); returns how many and moves *pp past it. */
static size_t decode_unit(const unsigned char **pp, unsigned char u[4])
{
  const unsigned char *p = *pp;
  if (*p != '\\') {
    u[0] = *p;
    *pp = p + 1;
    return 1;
  }
  uint32_t c = p[1];
  *pp = p + 2;
  switch (c) {
  case 'b': u[0] = '\b'; return 1;
  case 'f': u[0] = '\f'; return 1;
  case 'n': u[0] = '\n'; return 1;
  case 'r': u[0] = '\r'; return 1;
  case 't': u[0] = '\t'; return 1;
  case 'u': break;
  default: u[0] = (unsigned char)c; return 1; /* '"', '\\', '/' */
  }
  c = (uint32_t)hex4(p + 2);
  *pp = p + 6;
  if (c >= 0xD800 && c <= 0xDBFF) {
    c = 0x10000 + ((c - 0xD800) << 10) + ((uint32_t)hex4(p + 8) - 0xDC00);
    *pp = p + 12;
  }
  if (c < 0x80) {
    u[0] = (unsigned char)c;
    return 1;
  }
  if (c < 0x800) {
    u[0] = (unsigned char)(0xC0 | (c >> 6));
    u[1] = (unsigned char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    u[0] = (unsigned char)(0xE0 | (c >> 12));
    u[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    u[2] = (unsigned char)(0x80 | (c & 0x3F));
    return 3;
  }
  u[0] = (unsigned char)(0xF0 | (c >> 18));
  u[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
  u[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
  u[3] = (unsigned char)(0x80 | (c & 0x3F));
  return 4;
}

/* Whether the raw key text (between its quotes) is name once unescaped. */
static bool key_is(const struct val *k, const char *name, size_t nlen)
{
  if (!k->esc)
    return k->n == nlen && memcmp(k->p, name, nlen) == 0;
  const unsigned char *p = k->p, *e = k->p + k->n;
  const unsigned char *want = (const unsigned char *)name, *wend = want + nlen;
  while (p < e) {
    unsigned char u[4];
    size_t un = decode_unit(&p, u);
    if ((size_t)(wend - want) < un || memcmp(want, u, un) != 0)
      return false;
    want += un;
  }
  return want == wend;
}

/* Unescapes at most cap bytes of a string value into dst; returns how many. */
static size_t unescape_prefix(const struct val *v, char *dst, size_t cap)
{
  if (!v->esc) {
    size_t n = v->n < cap ? v->n : cap;
    memcpy(dst, v->p, n);
    return n;
  }
  const unsigned char *p = v->p, *e = v->p + v->n;
  size_t k = 0;
  while (p < e && k < cap) {
    unsigned char u[4];
    size_t un = decode_unit(&p, u);
    for (size_t i = 0; i < un && k < cap; i++)
      dst[k++] = (char)u[i];
  }
  return k;
}

/* A string or integer value as json_field wrote it; anything else leaves dst empty. */
static void field_text(const struct val *v, char *dst)
{
  if (v->type == V_STRING) {
    char tmp[NN__LM_FIELD_MAX];
    size_t n = unescape_prefix(v, tmp, NN__LM_FIELD_MAX - 1);
    nn__logmetrics_copy_field(dst, tmp, n);
  } else if (v->type == V_INT) {
    /* The token is already %lld's form, except "-0". */
    if (v->n == 2 && v->p[0] == '-' && v->p[1] == '0') {
      dst[0] = '0';
      dst[1] = '\0';
    } else {
      memcpy(dst, v->p, v->n);
      dst[v->n] = '\0';
    }
  }
}

bool nn__logmetrics_json_scan(const struct nn_logmetrics_config *cfg, const char *line, size_t len,
                              struct nn__logmetrics_fields *f)
{
  if (len == 0 || line[0] != '{')
    return false;
  const char *name[NTARGET] = {cfg->service_field, cfg->endpoint_field, cfg->method_field,
                               cfg->status_field, cfg->duration_field};
  size_t nlen[NTARGET];
  bool active[NTARGET];
  uint64_t lens = 0; /* bit n: some name is n bytes long (bit 63: 63 or more) */
  for (int t = 0; t < NTARGET; t++) {
    /* json_field skips an empty name; the duration lookup did not. */
    active[t] = name[t] && (t == T_DURATION || *name[t]);
    nlen[t] = active[t] ? strlen(name[t]) : 0;
    if (active[t])
      lens |= UINT64_C(1) << (nlen[t] < 63 ? nlen[t] : 63);
  }
  struct val got[NTARGET];
  memset(got, 0, sizeof(got));
  uint64_t is_obj[MAX_DEPTH / 64]; /* one bit per open container: object or array */
  size_t depth = 0;                /* open containers */
  unsigned want = 0;               /* targets the value about to be read is for */
  const unsigned char *p = (const unsigned char *)line, *e = p + len;

value:
  p = skip_ws(p, e);
  if (p == e || depth >= MAX_DEPTH)
    return false;
  {
    struct val v = {.p = p, .type = V_OTHER};
    bool lookahead = true; /* a number or keyword: jansson reads one byte past it */
    switch (*p) {
    case '{':
    case '[': {
      bool obj = *p == '{';
      lookahead = false;
      if (obj)
        is_obj[depth / 64] |= UINT64_C(1) << (depth % 64);
      else
        is_obj[depth / 64] &= ~(UINT64_C(1) << (depth % 64));
      depth++;
      p = skip_ws(p + 1, e);
      if (p < e && *p == (obj ? '}' : ']')) {
        p++;
        depth--;
      } else if (obj) {
        for (int t = 0; t < NTARGET; t++)
          if (want & (1u << t))
            set(&got[t], &v);
        want = 0;
        goto key;
      } else {
        for (int t = 0; t < NTARGET; t++)
          if (want & (1u << t))
            set(&got[t], &v);
        want = 0;
        goto value;
      }
      break;
    }
    case '"': {
      const unsigned char *q = scan_string(p + 1, e, &v.esc);
      if (!q)
        return false;
      v.type = V_STRING;
      lookahead = false;
      v.p = p + 1;
      v.n = (size_t)(q - v.p);
      p = q + 1;
      break;
    }
    case 't':
    case 'f':
    case 'n': {
      const unsigned char *q = p;
      while (q < e && (unsigned)((*q | 0x20) - 'a') < 26u)
        q++;
      size_t n = (size_t)(q - p);
      if (!((n == 4 && memcmp(p, "true", 4) == 0) || (n == 5 && memcmp(p, "false", 5) == 0) ||
            (n == 4 && memcmp(p, "null", 4) == 0)))
        return false;
      p = q;
      break;
    }
    default: {
      if (*p != '-' && !is_digit(*p))
        return false;
      bool real;
      const unsigned char *q = scan_number(p, e, &real);
      if (!q)
        return false;
      v.type = real ? V_REAL : V_INT;
      v.n = (size_t)(q - p);
      p = q;
      break;
    }
    }
    /* jansson's lexer loses one NUL byte that it read ahead after a number or a keyword
     * (stream_get takes the NUL put back for an empty slot), so there it is skipped. */
    if (lookahead && p < e && *p == '\0')
      p++;
    if (want)
      for (int t = 0; t < NTARGET; t++)
        if (want & (1u << t))
          set(&got[t], &v);
    want = 0;
  }

next:
  /* After a value: the end of the line at the top, else a separator or a closing bracket. */
  p = skip_ws(p, e);
  if (depth == 0)
    goto done;
  if (p == e)
    return false;
  if (is_obj[(depth - 1) / 64] & (UINT64_C(1) << ((depth - 1) % 64))) {
    if (*p == ',') {
      p++;
      goto key;
    }
    if (*p != '}')
      return false;
  } else {
    if (*p == ',') {
      p++;
      goto value;
    }
    if (*p != ']')
      return false;
  }
  p++;
  depth--;
  goto next;

key:
  p = skip_ws(p, e);
  if (p == e || *p != '"')
    return false;
  {
    struct val k = {.p = p + 1};
    const unsigned char *q = scan_string(p + 1, e, &k.esc);
    if (!q)
      return false;
    k.n = (size_t)(q - k.p);
    /* Most keys are no field: a key without escapes must have the length of a name. */
    if (depth == 1 && (k.esc || (lens >> (k.n < 63 ? k.n : 63) & 1)))
      for (int t = 0; t < NTARGET; t++)
        if (active[t] && key_is(&k, name[t], nlen[t]))
          want |= 1u << t;
    p = skip_ws(q + 1, e);
    if (p == e || *p != ':')
      return false;
    p++;
    goto value;
  }

done:
  if (p != e)
    return false;
  field_text(&got[T_SERVICE], f->key[NN__LM_SERVICE]);
  field_text(&got[T_ENDPOINT], f->key[NN__LM_ENDPOINT]);
  field_text(&got[T_METHOD], f->key[NN__LM_METHOD]);
  char st[NN__LM_FIELD_MAX] = "";
  field_text(&got[T_STATUS], st);
  size_t sl = strnlen(st, NN__LM_STATUS_MAX - 1);
  memcpy(f->status, st, sl);
  f->status[sl] = '\0';
  if (got[T_DURATION].type == V_INT || got[T_DURATION].type == V_REAL)
    f->seconds = number_value(&got[T_DURATION]) * cfg->duration_unit_seconds;
  return true;
}

static bool json_field(json_t *o, const char *name, char *dst)
{
  json_t *v = name && *name ? json_object_get(o, name) : NULL;
  if (json_is_string(v)) {
    nn__logmetrics_copy_field(dst, json_string_value(v), json_string_length(v));
    return true;
  }
  if (json_is_integer(v)) {
    snprintf(dst, NN__LM_FIELD_MAX, "%lld", (long long)json_integer_value(v));
    return true;
  }
  return false;
}

bool nn__logmetrics_json_jansson(const struct nn_logmetrics_config *cfg, const char *line,
                                 size_t len, struct nn__logmetrics_fields *f)
{
  if (len == 0 || line[0] != '{')
    return false;
  json_error_t e;
  json_t *o = json_loadb(line, len, JSON_DECODE_ANY, &e);
  if (!json_is_object(o)) {
    json_decref(o);
    return false;
  }
  json_field(o, cfg->service_field, f->key[NN__LM_SERVICE]);
  json_field(o, cfg->endpoint_field, f->key[NN__LM_ENDPOINT]);
  json_field(o, cfg->method_field, f->key[NN__LM_METHOD]);
  char st[NN__LM_FIELD_MAX] = "";
  json_field(o, cfg->status_field, st);
  snprintf(f->status, sizeof(f->status), "%.15s", st);
  json_t *d = json_object_get(o, cfg->duration_field);
  if (json_is_number(d))
    f->seconds = json_number_value(d) * cfg->duration_unit_seconds;
  json_decref(o);
  return true;
}
