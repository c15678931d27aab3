/* SPDX-License-Identifier: Apache-2.0 */
/* A parser for the subset of LogQL the log store answers: a stream selector
 * {name op "value", ...} with op one of = != =~ !~, then line filters |= != |~ !~ with
 * double-quoted (Go escapes) or backtick strings, and pipeline stages (pipeline.c). Errors carry
 * line and column, in Loki's "parse error at line L, col C: ..." form. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"
#include "common/utf8.h"

#define MAX_QUERY_BYTES 65536
#define MAX_MATCHERS    64
#define MAX_FILTERS     64

struct parser {
  const char *s;
  size_t n, i;
  char *err;
  size_t errlen;
};

int nn__logstore_vparse_fail(const char *s, size_t n, size_t at, char *err, size_t errlen,
                             const char *fmt, va_list ap)
{
  size_t line = 1, col = 1;
  for (size_t k = 0; k < at && k < n; k++) {
    if (s[k] == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  int off = snprintf(err, errlen, "parse error at line %zu, col %zu: ", line, col);
  if (off > 0 && (size_t)off < errlen)
    vsnprintf(err + off, errlen - (size_t)off, fmt, ap);
  return NN_EINVAL;
}

size_t nn__logstore_skip_ws(const char *s, size_t n, size_t i)
{
  for (;;) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
      i++;
    if (i < n && s[i] == '#') { /* LogQL allows # comments to end of line */
      while (i < n && s[i] != '\n')
        i++;
      continue;
    }
    return i;
  }
}

static int fail(struct parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct parser *p, size_t at, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = nn__logstore_vparse_fail(p->s, p->n, at, p->err, p->errlen, fmt, ap);
  va_end(ap);
  return rc;
}

static void skip_ws(struct parser *p)
{
  p->i = nn__logstore_skip_ws(p->s, p->n, p->i);
}

static bool at(struct parser *p, const char *tok)
{
  size_t l = strlen(tok);
  return p->n - p->i >= l && memcmp(p->s + p->i, tok, l) == 0;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static int put_utf8(struct nn_buf *b, uint32_t cp)
{
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xc0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    u[0] = (char)(0xf0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  return nn_buf_append(b, u, n);
}

/* Parses a "..." (Go escapes) or `...` string into out (NUL-terminated, may hold NULs
 * only via escapes, which are rejected). */
static int parse_string(struct parser *p, struct nn_buf *out)
{
  nn_buf_reset(out);
  size_t start = p->i;
  if (p->i >= p->n || (p->s[p->i] != '"' && p->s[p->i] != '`'))
    return fail(p, p->i, "expected a quoted string");
  char q = p->s[p->i++];
  int rc = 0;
  for (;;) {
    if (p->i >= p->n)
      return fail(p, start, "unterminated string");
    char c = p->s[p->i++];
    if (c == q)
      break;
    if (c == '\n' && q == '"')
      return fail(p, start, "newline in string");
    if (c != '\\' || q == '`') {
      if (c == '\0')
        return fail(p, p->i - 1, "NUL byte in string");
      if ((rc = nn_buf_appendc(out, c)) < 0)
        return rc;
      continue;
    }
    if (p->i >= p->n)
      return fail(p, start, "unterminated string");
    size_t esc = p->i - 1;
    c = p->s[p->i++];
    uint32_t cp = 0;
    int digits = 0;
    switch (c) {
    case 'a': rc = nn_buf_appendc(out, '\a'); break;
    case 'b': rc = nn_buf_appendc(out, '\b'); break;
    case 'f': rc = nn_buf_appendc(out, '\f'); break;
    case 'n': rc = nn_buf_appendc(out, '\n'); break;
    case 'r': rc = nn_buf_appendc(out, '\r'); break;
    case 't': rc = nn_buf_appendc(out, '\t'); break;
    case 'v': rc = nn_buf_appendc(out, '\v'); break;
    case '\\':
    case '"':
    case '\'': rc = nn_buf_appendc(out, c); break;
    case 'x': digits = 2; break;
    case 'u': digits = 4; break;
    case 'U': digits = 8; break;
    default:
      if (c >= '0' && c <= '7') {
        if (p->n - p->i < 2 || p->s[p->i] < '0' || p->s[p->i] > '7' || p->s[p->i + 1] < '0' ||
            p->s[p->i + 1] > '7')
          return fail(p, esc, "invalid octal escape");
        cp = (uint32_t)((c - '0') * 64 + (p->s[p->i] - '0') * 8 + (p->s[p->i + 1] - '0'));
        p->i += 2;
        if (cp == 0 || cp > 255)
          return fail(p, esc, "invalid octal escape");
        rc = nn_buf_appendc(out, (char)cp);
        break;
      }
      return fail(p, esc, "unknown escape sequence \\%c", c);
    }
    if (digits) {
      if (p->n - p->i < (size_t)digits)
        return fail(p, esc, "truncated \\%c escape", c);
      for (int k = 0; k < digits; k++) {
        int h = hexval(p->s[p->i + (size_t)k]);
        if (h < 0)
          return fail(p, esc, "invalid hex digit in \\%c escape", c);
        cp = cp * 16 + (uint32_t)h;
      }
      p->i += (size_t)digits;
      if (cp == 0)
        return fail(p, esc, "NUL byte in string");
      if (c == 'x')
        rc = nn_buf_appendc(out, (char)cp);
      else if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return fail(p, esc, "escape is not a valid Unicode code point");
      else
        rc = put_utf8(out, cp);
    }
    if (rc < 0)
      return rc;
  }
  /* A terminated, non-NULL buffer even for "": callers use out->data as a C string. */
  if ((rc = nn_buf_appendc(out, '\0')) < 0)
    return rc;
  out->len--;
  return 0;
}

int nn__logstore_parse_str(const char *s, size_t n, size_t *i, struct nn_buf *out, char *err,
                           size_t errlen)
{
  struct parser p = {s, n, *i, err, errlen};
  int rc = parse_string(&p, out);
  *i = p.i;
  return rc;
}

static bool name_char(char c, bool first)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

static int add_filter(struct nn__ls_query *q, enum nn__ls_filter_type type, struct nn_buf *val,
                      struct parser *p, size_t pos)
{
  struct nn__ls_filter *f = &q->f[q->nf];
  memset(f, 0, sizeof(*f));
  f->type = type;
  f->len = val->len;
  if (!(f->s = malloc(val->len + 1)))
    return NN_ENOMEM;
  memcpy(f->s, val->data, val->len);
  f->s[val->len] = '\0';
  q->nf++;
  if (type == LS_FILTER_RE || type == LS_FILTER_NRE) {
    int ec;
    PCRE2_SIZE eo;
    /* Unanchored, like RE2's MatchString in Loki's line filters; lines need not be
     * valid UTF-8, so invalid sequences simply never match. */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)f->s, f->len, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                                   &ec, &eo, NULL);
    if (!re) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(ec, msg, sizeof(msg));
      return fail(p, pos, "invalid regexp \"%.100s\": %s at offset %zu", f->s, (const char *)msg,
                  (size_t)eo);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    f->re = re;
    if (!(f->md = pcre2_match_data_create_from_pattern(re, NULL)))
      return NN_ENOMEM;
  }
  return 0;
}

/* `| drop __error__[, __error_details__]`, which Grafana appends to some queries: a no-op
 * here, as no stage of this subset sets those labels. Consumes it and returns true. */
static bool drop_error(struct parser *p)
{
  size_t save = p->i;
  if (!at(p, "|"))
    return false;
  p->i++;
  skip_ws(p);
  if (!at(p, "drop") || (p->i + 4 < p->n && name_char(p->s[p->i + 4], false)))
    goto no;
  p->i += 4;
  for (bool first = true;; first = false) {
    skip_ws(p);
    if (!first) {
      if (!at(p, ","))
        return true;
      p->i++;
      skip_ws(p);
    }
    size_t ns = p->i;
    while (p->i < p->n && name_char(p->s[p->i], p->i == ns))
      p->i++;
    size_t l = p->i - ns;
    if (!((l == 9 && memcmp(p->s + ns, "__error__", 9) == 0) ||
          (l == 17 && memcmp(p->s + ns, "__error_details__", 17) == 0)))
      goto no;
  }
no:
  p->i = save;
  return false;
}

int nn__logstore_query_parse(const char *text, size_t len, struct nn__ls_query *q, char *err,
                             size_t errlen)
{
  return nn__logstore_query_parse_span(text, 0, len, q, err, errlen);
}

int nn__logstore_query_parse_span(const char *text, size_t from, size_t len, struct nn__ls_query *q,
                                  char *err, size_t errlen)
{
  struct parser p = {text, len, from, err, errlen};
  struct nn_buf val;
  char name[256];
  int rc = 0;
  memset(q, 0, sizeof(*q));
  if (errlen)
    err[0] = '\0';
  if (len > MAX_QUERY_BYTES)
    return fail(&p, 0, "query is %zu bytes, at most %d allowed", len, MAX_QUERY_BYTES);
  if (memchr(text, '\0', len))
    return fail(&p, (size_t)((const char *)memchr(text, '\0', len) - text), "NUL byte in query");
  nn_buf_init(&val, MAX_QUERY_BYTES * 4);
  q->m = calloc(MAX_MATCHERS, sizeof(*q->m));
  q->f = calloc(MAX_FILTERS, sizeof(*q->f));
  if (!q->m || !q->f) {
    rc = NN_ENOMEM;
    goto out;
  }
  skip_ws(&p);
  if (p.i >= p.n || p.s[p.i] != '{') {
    rc = fail(&p, p.i, "syntax error: a log query starts with a stream selector '{'");
    goto out;
  }
  p.i++;
  skip_ws(&p);
  while (p.i < p.n && p.s[p.i] != '}') {
    size_t ns = p.i;
    while (p.i < p.n && name_char(p.s[p.i], p.i == ns))
      p.i++;
    if (p.i == ns) {
      rc = fail(&p, ns, "syntax error: expected a label name");
      goto out;
    }
    if (p.i - ns >= sizeof(name)) {
      rc = fail(&p, ns, "label name longer than %zu bytes", sizeof(name) - 1);
      goto out;
    }
    memcpy(name, p.s + ns, p.i - ns);
    name[p.i - ns] = '\0';
    skip_ws(&p);
    enum nn_match_type mt;
    size_t ops = p.i;
    if (at(&p, "=~")) {
      mt = NN_MATCH_RE;
      p.i += 2;
    } else if (at(&p, "!~")) {
      mt = NN_MATCH_NRE;
      p.i += 2;
    } else if (at(&p, "!=")) {
      mt = NN_MATCH_NE;
      p.i += 2;
    } else if (at(&p, "=")) {
      mt = NN_MATCH_EQ;
      p.i += 1;
    } else {
      rc = fail(&p, ops, "syntax error: expected one of = != =~ !~ after label %s", name);
      goto out;
    }
    skip_ws(&p);
    size_t vs = p.i;
    if ((rc = parse_string(&p, &val)) < 0)
      goto out;
    if (!nn_utf8_valid(val.data, val.len)) {
      rc = fail(&p, vs, "label value is not valid UTF-8");
      goto out;
    }
    if (q->nm == MAX_MATCHERS) {
      rc = fail(&p, ns, "more than %d matchers", MAX_MATCHERS);
      goto out;
    }
    char merr[256];
    if ((rc = nn_matcher_init(&q->m[q->nm], mt, name, val.data, merr, sizeof(merr))) < 0) {
      if (rc == NN_EINVAL)
        rc = fail(&p, vs, "%s", merr);
      goto out;
    }
    q->nm++;
    skip_ws(&p);
    if (p.i < p.n && p.s[p.i] == ',') {
      p.i++;
      skip_ws(&p);
    } else if (p.i < p.n && p.s[p.i] != '}') {
      rc = fail(&p, p.i, "syntax error: expected ',' or '}'");
      goto out;
    }
  }
  if (p.i >= p.n) {
    rc = fail(&p, p.i, "syntax error: unterminated stream selector, expected '}'");
    goto out;
  }
  p.i++;
  if (q->nm == 0) {
    rc = fail(&p, from, "syntax error: the stream selector needs at least one matcher");
    goto out;
  }
  bool selective = false;
  for (size_t k = 0; k < q->nm; k++)
    selective |= !nn_matcher_matches_empty(&q->m[k]);
  if (!selective) {
    rc = fail(&p, from,
              "queries require at least one regexp or equality matcher that does not have an "
              "empty-compatible value. For instance, app=~\".*\" does not meet this "
              "requirement, but app=~\".+\" will");
    goto out;
  }
  for (;;) {
    skip_ws(&p);
    if (p.i >= p.n)
      break;
    size_t fs = p.i;
    enum nn__ls_filter_type ft;
    if (at(&p, "|=")) {
      ft = LS_FILTER_CONTAINS;
    } else if (at(&p, "!=")) {
      ft = LS_FILTER_NOT_CONTAINS;
    } else if (at(&p, "|~")) {
      ft = LS_FILTER_RE;
    } else if (at(&p, "!~")) {
      ft = LS_FILTER_NRE;
    } else if (!q->pl && drop_error(&p)) {
      continue; /* nothing before it sets __error__: a no-op, and no pipeline to run */
    } else if (at(&p, "|")) {
      if ((rc = nn__logstore_stage_parse(p.s, p.n, &p.i, q, err, errlen)) < 0)
        goto out;
      continue;
    } else {
      rc = fail(&p, fs, "syntax error: expected a line filter (|= != |~ !~) or end of query");
      goto out;
    }
    p.i += 2;
    skip_ws(&p);
    if ((rc = parse_string(&p, &val)) < 0)
      goto out;
    if (q->nf == MAX_FILTERS) {
      rc = fail(&p, fs, "more than %d line filters", MAX_FILTERS);
      goto out;
    }
    if ((rc = add_filter(q, ft, &val, &p, fs)) < 0)
      goto out;
    if (!q->pl || !nn__logstore_pipeline_formats(q->pl))
      q->nfirst++; /* before any line_format: runs first, on the stored line */
    else if ((rc = nn__logstore_stage_add_filter(q, &q->f[q->nf - 1], fs, text, len, err, errlen)) <
             0)
      goto out;
  }
out:
  nn_buf_fini(&val);
  if (rc < 0)
    nn__logstore_query_fini(q);
  return rc;
}

void nn__logstore_query_fini(struct nn__ls_query *q)
{
  for (size_t k = 0; q->m && k < q->nm; k++)
    nn_matcher_fini(&q->m[k]);
  for (size_t k = 0; q->f && k < q->nf; k++) {
    free(q->f[k].s);
    if (q->f[k].md)
      pcre2_match_data_free(q->f[k].md);
    if (q->f[k].re)
      pcre2_code_free(q->f[k].re);
  }
  free(q->m);
  free(q->f);
  nn__logstore_pipeline_free(q->pl);
  memset(q, 0, sizeof(*q));
}

static inline bool filter_match(const struct nn__ls_filter *f, const char *line, size_t len)
{
  bool hit;
  switch (f->type) {
  case LS_FILTER_CONTAINS:
  case LS_FILTER_NOT_CONTAINS:
    hit = f->len == 0 || (len >= f->len && memmem(line, len, f->s, f->len) != NULL);
    return hit == (f->type == LS_FILTER_CONTAINS);
  case LS_FILTER_RE:
  case LS_FILTER_NRE:
    hit = pcre2_match(f->re, (PCRE2_SPTR)line, len, 0, 0, f->md, NULL) >= 0;
    return hit == (f->type == LS_FILTER_RE);
  }
  return true;
}

bool nn__logstore_filter_match(const struct nn__ls_filter *f, const char *line, size_t len)
{
  return filter_match(f, line, len);
}

bool nn__logstore_filters_match(const struct nn__ls_query *q, const char *line, size_t len)
{
  for (size_t k = 0; k < q->nfirst; k++)
    if (!filter_match(&q->f[k], line, len))
      return false;
  return true;
}
