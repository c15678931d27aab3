/* SPDX-License-Identifier: Apache-2.0 */
/* LogQL pipeline stages after a stream selector, with Loki's semantics: the parsers | json
 * (all fields flattened, or json label="path" parameters), | logfmt (optionally with
 * parameters), | regexp and | pattern; label filter expressions (strings, numbers, durations,
 * bytes, and/or/parentheses); | drop and | keep; | line_format and | label_format with a
 * template subset ({{.label}}, {{__line__}}); and | unwrap for metric queries. Extracted
 * labels that clash with stream labels get the _extracted suffix, parse failures set
 * __error__ and __error_details__. A line's label set lives in scratch buffers reused from
 * line to line, so a query allocates while its buffers grow, not per line. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"
#include "common/utf8.h"

#define MAX_PARAMS       64  /* parameters of one json/logfmt stage, names in drop/keep */
#define MAX_FILTER_NODES 256 /* label filter nodes in a whole pipeline */
#define MAX_FILTER_DEPTH 32
#define MAX_JSON_DEPTH   64
#define MAX_PATH_SEGS    32

#define ERR_JSON    "JSONParserErr"
#define ERR_LOGFMT  "LogfmtParserErr"
#define ERR_FILTER  "LabelFilterErr"
#define ERR_SAMPLE  "SampleExtractionErr"
#define ERROR_LABEL "__error__"
#define DETAILS     "__error_details__"

enum lf_kind { LF_AND, LF_OR, LF_STR, LF_NUM, LF_DUR, LF_BYTES };
enum cmp { CMP_EQ, CMP_NE, CMP_GT, CMP_GE, CMP_LT, CMP_LE };

struct lfilter {
  enum lf_kind k;
  struct lfilter *a, *b; /* LF_AND, LF_OR */
  char *name;
  enum cmp op;
  struct nn_matcher m; /* LF_STR */
  bool have_m;
  double num;     /* LF_NUM */
  int64_t dur;    /* LF_DUR, ns */
  uint64_t bytes; /* LF_BYTES */
};

struct seg { /* a JSON path step: a field or an array index */
  char *field;
  size_t flen;
  long index;
};

struct param {
  char *label; /* extracted label name */
  char *key;   /* logfmt: the key it reads */
  struct seg *segs;
  size_t nsegs;
};

struct pat { /* a pattern's piece: literal text, or a capture (name NULL for <_>) */
  char *lit;
  size_t len;
  char *name;
};

enum st_kind {
  ST_JSON,
  ST_LOGFMT,
  ST_REGEXP,
  ST_PATTERN,
  ST_FILTER,
  ST_DROP,
  ST_KEEP,
  ST_LINE_FORMAT,
  ST_LABEL_FORMAT,
  ST_LINE_FILTER
};

/* A line_format/label_format template: the subset {{.label}} and {{__line__}} with text
 * (trim markers {{- -}} included). A piece is literal text, or a label (field), or the line. */
struct tpiece {
  char *text; /* literal text, or the label name */
  size_t len;
  bool field, line;
};
struct tmpl {
  struct tpiece *p;
  size_t n;
};

struct stage {
  enum st_kind k;
  struct param *p; /* ST_JSON, ST_LOGFMT parameters */
  size_t np;
  pcre2_code *re; /* ST_REGEXP */
  pcre2_match_data *md;
  char **names; /* ST_REGEXP: capture group number -> name or NULL */
  uint32_t ncap;
  struct pat *pat; /* ST_PATTERN */
  size_t npat;
  struct lfilter *f; /* ST_FILTER */
  /* ST_DROP, ST_KEEP: names, each optionally with a matcher on its value */
  char **dn;
  struct nn_matcher *dm;
  bool *dhas;
  size_t nd;
  struct tmpl tl; /* ST_LINE_FORMAT */
  /* ST_LABEL_FORMAT: dst = the label src (a rename), or dst = the template */
  char **fdst, **fsrc;
  struct tmpl *ftl;
  size_t nfmt;
  const struct nn__ls_filter *lf; /* ST_LINE_FILTER, owned by the query */
};

struct nn__ls_pipeline {
  struct stage *st;
  size_t n, nbefore; /* stages, and how many run before the unwrap */
  size_t nodes;      /* label filter nodes, bounded */
  bool unwrap, formats;
  enum nn__ls_conv conv;
  char *ulabel;
};

/* ---- parsing ---- */

struct pp {
  const char *s;
  size_t n, i;
  char *err;
  size_t errlen;
  struct nn__ls_pipeline *pl;
};

static int pfail(struct pp *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int pfail(struct pp *p, size_t at, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = nn__logstore_vparse_fail(p->s, p->n, at, p->err, p->errlen, fmt, ap);
  va_end(ap);
  return rc;
}

static void pskip(struct pp *p)
{
  p->i = nn__logstore_skip_ws(p->s, p->n, p->i);
}

static bool idc(char c, bool first)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

/* An identifier at p->i: its length (0 if none), copied to buf when it fits. */
static size_t pident(struct pp *p, char *buf, size_t cap)
{
  size_t st = p->i;
  while (p->i < p->n && idc(p->s[p->i], p->i == st))
    p->i++;
  size_t l = p->i - st;
  size_t c = l < cap - 1 ? l : cap - 1;
  memcpy(buf, p->s + st, c);
  buf[c] = '\0';
  return l;
}

static bool pat_char(struct pp *p, char c)
{
  pskip(p);
  if (p->i < p->n && p->s[p->i] == c) {
    p->i++;
    return true;
  }
  return false;
}

/* An identifier that must be a label name (at most 255 bytes); strdup'd into *out. */
static int plabel(struct pp *p, char **out, const char *what)
{
  pskip(p);
  size_t st = p->i;
  char name[256];
  size_t l = pident(p, name, sizeof(name));
  if (l == 0)
    return pfail(p, st, "syntax error: expected %s", what);
  if (l >= sizeof(name))
    return pfail(p, st, "label name longer than 255 bytes");
  return (*out = strdup(name)) ? 0 : NN_ENOMEM;
}

static int pstring(struct pp *p, struct nn_buf *out)
{
  pskip(p);
  return nn__logstore_parse_str(p->s, p->n, &p->i, out, p->err, p->errlen);
}

static struct stage *new_stage(struct pp *p, enum st_kind k, size_t at, int *rc)
{
  struct nn__ls_pipeline *pl = p->pl;
  if (pl->n == LS_MAX_STAGES) {
    *rc = pfail(p, at, "more than %d pipeline stages", LS_MAX_STAGES);
    return NULL;
  }
  if (!pl->st && !(pl->st = calloc(LS_MAX_STAGES, sizeof(*pl->st)))) {
    *rc = NN_ENOMEM;
    return NULL;
  }
  struct stage *s = &pl->st[pl->n++];
  memset(s, 0, sizeof(*s));
  s->k = k;
  if (!pl->unwrap)
    pl->nbefore = pl->n;
  *rc = 0;
  return s;
}

/* A JSON path as Loki's json parameters take it: a.b[0]["c d"].e */
static int parse_path(struct pp *p, size_t at, const char *src, size_t len, struct param *pa)
{
  size_t i = 0;
  if (!(pa->segs = calloc(MAX_PATH_SEGS, sizeof(*pa->segs))))
    return NN_ENOMEM;
  while (i < len) {
    if (pa->nsegs == MAX_PATH_SEGS)
      return pfail(p, at, "JSON path %.100s has more than %d steps", src, MAX_PATH_SEGS);
    struct seg *sg = &pa->segs[pa->nsegs];
    sg->index = -1;
    if (src[i] == '[') {
      i++;
      if (i < len && (src[i] == '"' || src[i] == '\'')) {
        char q = src[i++];
        size_t st = i;
        while (i < len && src[i] != q)
          i++;
        if (i >= len)
          goto bad;
        sg->flen = i - st;
        if (!(sg->field = malloc(sg->flen + 1)))
          return NN_ENOMEM;
        memcpy(sg->field, src + st, sg->flen);
        sg->field[sg->flen] = '\0';
        i++;
      } else {
        long v = 0;
        size_t st = i;
        while (i < len && src[i] >= '0' && src[i] <= '9' && v < 100000000)
          v = v * 10 + (src[i++] - '0');
        if (i == st)
          goto bad;
        sg->index = v;
      }
      if (i >= len || src[i] != ']')
        goto bad;
      i++;
    } else {
      if (src[i] == '.') {
        if (pa->nsegs == 0)
          goto bad;
        i++;
      }
      size_t st = i;
      while (i < len && src[i] != '.' && src[i] != '[' && src[i] != ']' && src[i] != '"')
        i++;
      if (i == st)
        goto bad;
      sg->flen = i - st;
      if (!(sg->field = malloc(sg->flen + 1)))
        return NN_ENOMEM;
      memcpy(sg->field, src + st, sg->flen);
      sg->field[sg->flen] = '\0';
    }
    pa->nsegs++;
  }
  if (pa->nsegs)
    return 0;
bad:
  return pfail(p, at, "cannot parse JSON path [%.100s]", src);
}

/* json/logfmt parameters: label ("=" "source")? ("," ...)* */
static int parse_params(struct pp *p, struct stage *s, bool json)
{
  struct nn_buf v;
  int rc = 0;
  nn_buf_init(&v, 65536);
  if (!(s->p = calloc(MAX_PARAMS, sizeof(*s->p)))) {
    rc = NN_ENOMEM;
    goto out;
  }
  for (;;) {
    pskip(p);
    size_t at = p->i;
    if (s->np == MAX_PARAMS) {
      rc = pfail(p, at, "more than %d parameters", MAX_PARAMS);
      goto out;
    }
    struct param *pa = &s->p[s->np++];
    if ((rc = plabel(p, &pa->label, "a label name")) < 0)
      goto out;
    if (pat_char(p, '=')) {
      size_t vs = p->i;
      if ((rc = pstring(p, &v)) < 0)
        goto out;
      if (json)
        rc = parse_path(p, vs, v.data, v.len, pa);
      else
        rc = (pa->key = strdup(v.data)) ? 0 : NN_ENOMEM;
    } else if (json) {
      rc = parse_path(p, at, pa->label, strlen(pa->label), pa);
    } else {
      rc = (pa->key = strdup(pa->label)) ? 0 : NN_ENOMEM;
    }
    if (rc < 0)
      goto out;
    if (!pat_char(p, ','))
      break;
  }
out:
  nn_buf_fini(&v);
  return rc;
}

static int parse_regexp(struct pp *p, struct stage *s, size_t at)
{
  struct nn_buf v;
  nn_buf_init(&v, 65536);
  size_t vs;
  pskip(p);
  vs = p->i;
  int rc = pstring(p, &v);
  if (rc < 0)
    goto out;
  int ec;
  PCRE2_SIZE eo;
  s->re =
      pcre2_compile((PCRE2_SPTR)v.data, v.len, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
  if (!s->re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(ec, msg, sizeof(msg));
    rc = pfail(p, vs, "invalid regexp \"%.100s\": %s at offset %zu", v.data, (const char *)msg,
               (size_t)eo);
    goto out;
  }
  pcre2_jit_compile(s->re, PCRE2_JIT_COMPLETE);
  uint32_t nn = 0, es = 0;
  PCRE2_SPTR tab = NULL;
  pcre2_pattern_info(s->re, PCRE2_INFO_CAPTURECOUNT, &s->ncap);
  pcre2_pattern_info(s->re, PCRE2_INFO_NAMECOUNT, &nn);
  pcre2_pattern_info(s->re, PCRE2_INFO_NAMEENTRYSIZE, &es);
  pcre2_pattern_info(s->re, PCRE2_INFO_NAMETABLE, &tab);
  if (nn == 0) {
    rc = pfail(p, at, "at least one named capture must be supplied");
    goto out;
  }
  if (!(s->names = calloc(s->ncap + 1, sizeof(*s->names))) ||
      !(s->md = pcre2_match_data_create_from_pattern(s->re, NULL))) {
    rc = NN_ENOMEM;
    goto out;
  }
  for (uint32_t k = 0; k < nn; k++) {
    const unsigned char *e = tab + (size_t)k * es;
    uint32_t g = (uint32_t)e[0] << 8 | e[1];
    if (g <= s->ncap && !s->names[g] && !(s->names[g] = strdup((const char *)e + 2))) {
      rc = NN_ENOMEM;
      goto out;
    }
  }
out:
  nn_buf_fini(&v);
  return rc;
}

static int parse_pattern(struct pp *p, struct stage *s, size_t at)
{
  struct nn_buf v;
  nn_buf_init(&v, 65536);
  int rc = pstring(p, &v);
  size_t named = 0;
  if (rc < 0)
    goto out;
  if (!(s->pat = calloc(v.len + 1, sizeof(*s->pat)))) {
    rc = NN_ENOMEM;
    goto out;
  }
  const char *t = v.data;
  size_t i = 0, lit = 0;
  while (i <= v.len) {
    size_t e = i + 1;
    bool cap = false;
    if (i < v.len && t[i] == '<') {
      while (e < v.len && idc(t[e], e == i + 1))
        e++;
      cap = e > i + 1 && e < v.len && t[e] == '>';
    }
    if (!cap && i < v.len) {
      i++;
      continue;
    }
    if (i > lit) { /* the literal before this capture (or the end) */
      struct pat *pt = &s->pat[s->npat++];
      pt->len = i - lit;
      if (!(pt->lit = malloc(pt->len + 1))) {
        rc = NN_ENOMEM;
        goto out;
      }
      memcpy(pt->lit, t + lit, pt->len);
      pt->lit[pt->len] = '\0';
    }
    if (i == v.len)
      break;
    if (s->npat && !s->pat[s->npat - 1].lit) {
      rc = pfail(p, at, "invalid pattern: two captures must be separated by literal text");
      goto out;
    }
    struct pat *pt = &s->pat[s->npat++];
    size_t nl = e - i - 1;
    if (!(nl == 1 && t[i + 1] == '_')) {
      if (!(pt->name = malloc(nl + 1))) {
        rc = NN_ENOMEM;
        goto out;
      }
      memcpy(pt->name, t + i + 1, nl);
      pt->name[nl] = '\0';
      for (size_t k = 0; k + 1 < s->npat; k++)
        if (s->pat[k].name && strcmp(s->pat[k].name, pt->name) == 0) {
          rc = pfail(p, at, "invalid pattern: duplicate capture name <%s>", pt->name);
          goto out;
        }
      named++;
    }
    i = lit = e + 1;
  }
  if (!named)
    rc = pfail(p, at, "invalid pattern: at least one named capture such as <name> is required");
out:
  nn_buf_fini(&v);
  return rc;
}

/* drop/keep: name (op "value")? ("," ...)* */
static int parse_names(struct pp *p, struct stage *s)
{
  struct nn_buf v;
  int rc = 0;
  nn_buf_init(&v, 65536);
  s->dn = calloc(MAX_PARAMS, sizeof(*s->dn));
  s->dm = calloc(MAX_PARAMS, sizeof(*s->dm));
  s->dhas = calloc(MAX_PARAMS, sizeof(*s->dhas));
  if (!s->dn || !s->dm || !s->dhas) {
    rc = NN_ENOMEM;
    goto out;
  }
  for (;;) {
    pskip(p);
    if (s->nd == MAX_PARAMS) {
      rc = pfail(p, p->i, "more than %d labels", MAX_PARAMS);
      goto out;
    }
    size_t k = s->nd++;
    if ((rc = plabel(p, &s->dn[k], "a label name")) < 0)
      goto out;
    pskip(p);
    enum nn_match_type mt;
    size_t l = 0;
    if (p->n - p->i >= 2 && memcmp(p->s + p->i, "=~", 2) == 0)
      mt = NN_MATCH_RE, l = 2;
    else if (p->n - p->i >= 2 && memcmp(p->s + p->i, "!~", 2) == 0)
      mt = NN_MATCH_NRE, l = 2;
    else if (p->n - p->i >= 2 && memcmp(p->s + p->i, "!=", 2) == 0)
      mt = NN_MATCH_NE, l = 2;
    else if (p->i < p->n && p->s[p->i] == '=')
      mt = NN_MATCH_EQ, l = 1;
    if (l) {
      p->i += l;
      pskip(p);
      size_t vs = p->i;
      if ((rc = pstring(p, &v)) < 0)
        goto out;
      char merr[256];
      if ((rc = nn_matcher_init(&s->dm[k], mt, s->dn[k], v.data, merr, sizeof(merr))) < 0) {
        if (rc == NN_EINVAL)
          rc = pfail(p, vs, "%s", merr);
        goto out;
      }
      s->dhas[k] = true;
    }
    if (!pat_char(p, ','))
      break;
  }
out:
  nn_buf_fini(&v);
  return rc;
}

/* The value of a numeric label filter: a number, a Go duration or a byte size. */
static int filter_value(struct pp *p, struct lfilter *f)
{
  pskip(p);
  size_t st = p->i;
  while (p->i < p->n && (idc(p->s[p->i], false) || p->s[p->i] == '.' || p->s[p->i] == '-' ||
                         p->s[p->i] == '+' || (unsigned char)p->s[p->i] >= 0x80))
    p->i++;
  size_t l = p->i - st;
  char buf[64];
  if (l == 0 || l >= sizeof(buf))
    return pfail(p, st, "syntax error: expected a string, number, duration or byte size after %s",
                 f->name);
  memcpy(buf, p->s + st, l);
  buf[l] = '\0';
  char *end;
  double d = strtod(buf, &end);
  if (end == buf + l &&
      (buf[0] == '-' || buf[0] == '+' || buf[0] == '.' || (buf[0] >= '0' && buf[0] <= '9'))) {
    f->k = LF_NUM;
    f->num = d;
    return 0;
  }
  if (nn__logstore_parse_go_duration(buf, l, &f->dur)) {
    f->k = LF_DUR;
    return 0;
  }
  if (buf[0] >= '0' && buf[0] <= '9' && nn__logstore_parse_bytes(buf, l, &f->bytes)) {
    f->k = LF_BYTES;
    return 0;
  }
  return pfail(p, st, "syntax error: %s is not a number, duration (250ms) or byte size (1KB)", buf);
}

static void lfilter_free(struct lfilter *f)
{
  if (!f)
    return;
  lfilter_free(f->a);
  lfilter_free(f->b);
  if (f->have_m)
    nn_matcher_fini(&f->m);
  free(f->name);
  free(f);
}

static int lf_or(struct pp *p, struct lfilter **out, int depth);

static struct lfilter *lf_node(struct pp *p, enum lf_kind k, int *rc, size_t at)
{
  if (++p->pl->nodes > MAX_FILTER_NODES) {
    *rc = pfail(p, at, "more than %d label filter terms", MAX_FILTER_NODES);
    return NULL;
  }
  struct lfilter *f = calloc(1, sizeof(*f));
  *rc = f ? 0 : NN_ENOMEM;
  if (f)
    f->k = k;
  return f;
}

static int lf_primary(struct pp *p, struct lfilter **out, int depth)
{
  int rc;
  pskip(p);
  size_t at = p->i;
  *out = NULL;
  if (depth > MAX_FILTER_DEPTH)
    return pfail(p, at, "label filter nested deeper than %d", MAX_FILTER_DEPTH);
  if (p->i < p->n && p->s[p->i] == '(') {
    p->i++;
    if ((rc = lf_or(p, out, depth + 1)) < 0)
      return rc;
    if (!pat_char(p, ')'))
      return pfail(p, p->i, "syntax error: expected ')' in the label filter");
    return 0;
  }
  struct lfilter *f = lf_node(p, LF_STR, &rc, at);
  if (!f)
    return rc;
  *out = f;
  if ((rc = plabel(p, &f->name, "a label filter such as status >= 500 or level=\"error\"")) < 0)
    return rc;
  pskip(p);
  size_t ops = p->i;
  const char *o = p->s + p->i;
  size_t left = p->n - p->i;
  enum nn_match_type mt = NN_MATCH_EQ;
  bool str_ok = false;
  if (left >= 2 && memcmp(o, "==", 2) == 0) {
    f->op = CMP_EQ;
    p->i += 2;
  } else if (left >= 2 && memcmp(o, "=~", 2) == 0) {
    mt = NN_MATCH_RE;
    str_ok = true;
    p->i += 2;
  } else if (left >= 2 && memcmp(o, "!~", 2) == 0) {
    mt = NN_MATCH_NRE;
    str_ok = true;
    p->i += 2;
  } else if (left >= 2 && memcmp(o, "!=", 2) == 0) {
    mt = NN_MATCH_NE;
    f->op = CMP_NE;
    str_ok = true;
    p->i += 2;
  } else if (left >= 2 && memcmp(o, ">=", 2) == 0) {
    f->op = CMP_GE;
    p->i += 2;
  } else if (left >= 2 && memcmp(o, "<=", 2) == 0) {
    f->op = CMP_LE;
    p->i += 2;
  } else if (left >= 1 && *o == '=') {
    f->op = CMP_EQ;
    str_ok = true;
    p->i++;
  } else if (left >= 1 && *o == '>') {
    f->op = CMP_GT;
    p->i++;
  } else if (left >= 1 && *o == '<') {
    f->op = CMP_LT;
    p->i++;
  } else {
    return pfail(p, ops, "syntax error: expected one of = != =~ !~ == > >= < <= after label %s",
                 f->name);
  }
  pskip(p);
  if (p->i < p->n && (p->s[p->i] == '"' || p->s[p->i] == '`')) {
    if (!str_ok)
      return pfail(p, p->i, "syntax error: %.*s compares numbers, durations or byte sizes",
                   (int)(p->i - ops), o);
    struct nn_buf v;
    nn_buf_init(&v, 65536);
    size_t vs = p->i;
    rc = pstring(p, &v);
    char merr[256];
    if (rc == 0 && (rc = nn_matcher_init(&f->m, mt, f->name, v.data, merr, sizeof(merr))) < 0 &&
        rc == NN_EINVAL)
      rc = pfail(p, vs, "%s", merr);
    nn_buf_fini(&v);
    f->have_m = rc == 0;
    return rc;
  }
  if (mt == NN_MATCH_RE || mt == NN_MATCH_NRE)
    return pfail(p, p->i, "syntax error: %.2s needs a quoted regexp", o);
  return filter_value(p, f);
}

static bool at_word(struct pp *p, const char *w)
{
  size_t l = strlen(w);
  return p->n - p->i >= l && memcmp(p->s + p->i, w, l) == 0 &&
         (p->i + l == p->n || !idc(p->s[p->i + l], false));
}

static int lf_and(struct pp *p, struct lfilter **out, int depth)
{
  int rc = lf_primary(p, out, depth);
  for (;;) {
    if (rc < 0)
      return rc;
    pskip(p);
    size_t at = p->i;
    if (at_word(p, "and"))
      p->i += 3;
    else if (p->i < p->n && p->s[p->i] == ',')
      p->i++;
    else
      return 0;
    struct lfilter *n = lf_node(p, LF_AND, &rc, at);
    if (!n)
      return rc;
    n->a = *out;
    *out = n;
    rc = lf_primary(p, &n->b, depth);
  }
}

static int lf_or(struct pp *p, struct lfilter **out, int depth)
{
  int rc = lf_and(p, out, depth);
  for (;;) {
    if (rc < 0)
      return rc;
    pskip(p);
    size_t at = p->i;
    if (!at_word(p, "or"))
      return 0;
    p->i += 2;
    struct lfilter *n = lf_node(p, LF_OR, &rc, at);
    if (!n)
      return rc;
    n->a = *out;
    *out = n;
    rc = lf_and(p, &n->b, depth);
  }
}

/* Parses template text t[0, n) (already unescaped) into pieces. */
static int parse_tmpl(struct pp *p, size_t at, const char *t, size_t n, struct tmpl *out)
{
  size_t i = 0, cap = 8;
  if (!(out->p = calloc(cap, sizeof(*out->p))))
    return NN_ENOMEM;
  bool trim_next = false;
  while (i < n) {
    const char *o = n - i >= 2 ? memmem(t + i, n - i, "{{", 2) : NULL;
    size_t e = o ? (size_t)(o - t) : n;
    size_t ts = i, te = e;
    if (trim_next)
      while (ts < te && (t[ts] == ' ' || t[ts] == '\t' || t[ts] == '\n' || t[ts] == '\r'))
        ts++;
    trim_next = false;
    size_t a = e + 2, c = 0, ce = 0;
    if (o) {
      const char *cl = n - a >= 2 ? memmem(t + a, n - a, "}}", 2) : NULL;
      if (!cl)
        return pfail(p, at, "invalid template: unclosed action {{");
      c = (size_t)(cl - t);
      ce = c + 2;
      if (a < c && t[a] == '-' && (a + 1 == c || t[a + 1] == ' ')) { /* {{- trims before */
        a++;
        while (te > ts &&
               (t[te - 1] == ' ' || t[te - 1] == '\t' || t[te - 1] == '\n' || t[te - 1] == '\r'))
          te--;
      }
      if (c > a && t[c - 1] == '-' && (c - 1 == a || t[c - 2] == ' ')) { /* -}} trims after */
        c--;
        trim_next = true;
      }
    }
    for (int piece = 0; piece < 2; piece++) {
      size_t b, l;
      bool field = false, line = false;
      if (piece == 0) {
        b = ts;
        l = te - ts;
        if (!l)
          continue;
      } else {
        if (!o)
          break;
        while (a < c && t[a] == ' ')
          a++;
        while (c > a && t[c - 1] == ' ')
          c--;
        bool ok = true;
        if (c - a == 8 && memcmp(t + a, "__line__", 8) == 0) {
          line = true;
        } else if (c - a >= 2 && t[a] == '.') {
          for (size_t k = a + 1; k < c; k++)
            ok &= idc(t[k], k == a + 1);
          field = true;
          a++;
        } else {
          ok = false;
        }
        if (!ok)
          return pfail(p, at,
                       "unsupported template action {{%.*s}}: only {{.label}} and {{__line__}} "
                       "with text are supported",
                       (int)(c - a < 60 ? c - a : 60), t + a);
        b = a;
        l = c - a;
      }
      if (out->n == cap) {
        struct tpiece *np = realloc(out->p, 2 * cap * sizeof(*np));
        if (!np)
          return NN_ENOMEM;
        memset(np + cap, 0, cap * sizeof(*np));
        out->p = np;
        cap *= 2;
      }
      struct tpiece *tp = &out->p[out->n++];
      tp->field = field;
      tp->line = line;
      tp->len = l;
      if (!(tp->text = malloc(l + 1)))
        return NN_ENOMEM;
      memcpy(tp->text, t + b, l);
      tp->text[l] = '\0';
    }
    i = o ? ce : n;
  }
  return 0;
}

static void tmpl_fini(struct tmpl *t)
{
  for (size_t k = 0; k < t->n; k++)
    free(t->p[k].text);
  free(t->p);
  memset(t, 0, sizeof(*t));
}

static int parse_line_format(struct pp *p, struct stage *s)
{
  struct nn_buf v;
  nn_buf_init(&v, 65536);
  pskip(p);
  size_t vs = p->i;
  int rc = pstring(p, &v);
  if (rc == 0)
    rc = parse_tmpl(p, vs, v.data, v.len, &s->tl);
  nn_buf_fini(&v);
  p->pl->formats = true;
  return rc;
}

/* label_format dst=src, dst="template", ... */
static int parse_label_format(struct pp *p, struct stage *s)
{
  struct nn_buf v;
  int rc = 0;
  nn_buf_init(&v, 65536);
  s->fdst = calloc(MAX_PARAMS, sizeof(*s->fdst));
  s->fsrc = calloc(MAX_PARAMS, sizeof(*s->fsrc));
  s->ftl = calloc(MAX_PARAMS, sizeof(*s->ftl));
  if (!s->fdst || !s->fsrc || !s->ftl) {
    rc = NN_ENOMEM;
    goto out;
  }
  for (;;) {
    pskip(p);
    if (s->nfmt == MAX_PARAMS) {
      rc = pfail(p, p->i, "more than %d labels", MAX_PARAMS);
      goto out;
    }
    size_t k = s->nfmt++;
    if ((rc = plabel(p, &s->fdst[k], "a label name")) < 0)
      goto out;
    if (!pat_char(p, '=')) {
      rc = pfail(p, p->i, "syntax error: expected '=' in label_format");
      goto out;
    }
    pskip(p);
    if (p->i < p->n && (p->s[p->i] == '"' || p->s[p->i] == '`')) {
      size_t vs = p->i;
      if ((rc = pstring(p, &v)) < 0 || (rc = parse_tmpl(p, vs, v.data, v.len, &s->ftl[k])) < 0)
        goto out;
    } else if ((rc = plabel(p, &s->fsrc[k], "a label name or a quoted template")) < 0) {
      goto out;
    }
    if (!pat_char(p, ','))
      break;
  }
out:
  nn_buf_fini(&v);
  return rc;
}

bool nn__logstore_pipeline_formats(const struct nn__ls_pipeline *pl)
{
  return pl && pl->formats;
}

int nn__logstore_stage_add_filter(struct nn__ls_query *q, const struct nn__ls_filter *f, size_t at,
                                  const char *s, size_t n, char *err, size_t errlen)
{
  struct pp p = {s, n, at, err, errlen, q->pl};
  int rc;
  struct stage *st = new_stage(&p, ST_LINE_FILTER, at, &rc);
  if (st)
    st->lf = f;
  return rc;
}

static int parse_unwrap(struct pp *p)
{
  struct nn__ls_pipeline *pl = p->pl;
  char w[32];
  pskip(p);
  size_t st = p->i;
  size_t l = pident(p, w, sizeof(w));
  pl->conv = LS_CONV_FLOAT;
  if (l && l < sizeof(w) && pat_char(p, '(')) {
    if (strcmp(w, "duration") == 0 || strcmp(w, "duration_seconds") == 0)
      pl->conv = LS_CONV_DURATION;
    else if (strcmp(w, "bytes") == 0)
      pl->conv = LS_CONV_BYTES;
    else
      return pfail(p, st,
                   "unsupported unwrap conversion %s: use duration(), duration_seconds() or "
                   "bytes()",
                   w);
    int rc = plabel(p, &pl->ulabel, "a label name to unwrap");
    if (rc < 0)
      return rc;
    if (!pat_char(p, ')'))
      return pfail(p, p->i, "syntax error: expected ')' after the unwrapped label");
  } else {
    p->i = st;
    int rc = plabel(p, &pl->ulabel, "a label name to unwrap");
    if (rc < 0)
      return rc;
  }
  pl->unwrap = true;
  return 0;
}

int nn__logstore_stage_parse(const char *s, size_t n, size_t *i, struct nn__ls_query *q, char *err,
                             size_t errlen)
{
  struct pp p = {s, n, *i, err, errlen, q->pl};
  int rc = 0;
  if (!p.pl && !(p.pl = q->pl = calloc(1, sizeof(*q->pl))))
    return NN_ENOMEM;
  size_t at = p.i;
  p.i++; /* '|' */
  pskip(&p);
  size_t ws = p.i;
  char w[32];
  size_t l = pident(&p, w, sizeof(w));
  if (l >= sizeof(w))
    w[0] = '\0';
  struct stage *st = NULL;
  bool is_stage = strcmp(w, "json") == 0 || strcmp(w, "logfmt") == 0 || strcmp(w, "regexp") == 0 ||
                  strcmp(w, "pattern") == 0 || strcmp(w, "drop") == 0 || strcmp(w, "keep") == 0 ||
                  strcmp(w, "unwrap") == 0 || strcmp(w, "line_format") == 0 ||
                  strcmp(w, "label_format") == 0;
  if (is_stage && p.pl->unwrap)
    return pfail(&p, at, "only label filters may follow unwrap, not | %s", w);
  if (strcmp(w, "json") == 0) {
    if (!(st = new_stage(&p, ST_JSON, at, &rc)))
      return rc;
    size_t save = p.i;
    pskip(&p);
    if (p.i < p.n && idc(p.s[p.i], true))
      rc = parse_params(&p, st, true);
    else
      p.i = save;
  } else if (strcmp(w, "logfmt") == 0) {
    if (!(st = new_stage(&p, ST_LOGFMT, at, &rc)))
      return rc;
    size_t save = p.i;
    pskip(&p);
    if (p.n - p.i >= 2 && memcmp(p.s + p.i, "--", 2) == 0)
      return pfail(&p, p.i, "unsupported: logfmt flags (--strict, --keep-empty)");
    if (p.i < p.n && idc(p.s[p.i], true))
      rc = parse_params(&p, st, false);
    else
      p.i = save;
  } else if (strcmp(w, "regexp") == 0) {
    if (!(st = new_stage(&p, ST_REGEXP, at, &rc)))
      return rc;
    rc = parse_regexp(&p, st, at);
  } else if (strcmp(w, "pattern") == 0) {
    if (!(st = new_stage(&p, ST_PATTERN, at, &rc)))
      return rc;
    pskip(&p);
    rc = parse_pattern(&p, st, p.i);
  } else if (strcmp(w, "drop") == 0 || strcmp(w, "keep") == 0) {
    if (!(st = new_stage(&p, w[0] == 'd' ? ST_DROP : ST_KEEP, at, &rc)))
      return rc;
    rc = parse_names(&p, st);
  } else if (strcmp(w, "unwrap") == 0) {
    rc = parse_unwrap(&p);
  } else if (strcmp(w, "line_format") == 0) {
    if (!(st = new_stage(&p, ST_LINE_FORMAT, at, &rc)))
      return rc;
    rc = parse_line_format(&p, st);
  } else if (strcmp(w, "label_format") == 0) {
    if (!(st = new_stage(&p, ST_LABEL_FORMAT, at, &rc)))
      return rc;
    rc = parse_label_format(&p, st);
  } else if (strcmp(w, "unpack") == 0 || strcmp(w, "decolorize") == 0 ||
             strcmp(w, "distinct") == 0) {
    return pfail(&p, at,
                 "unsupported pipeline stage | %s: supported are json, logfmt, regexp, pattern, "
                 "label filters, drop, keep, line_format, label_format and unwrap",
                 w);
  } else if (l == 0 && !(p.i < p.n && p.s[p.i] == '(')) {
    return pfail(&p, ws, "syntax error: expected a pipeline stage or label filter after '|'");
  } else {
    p.i = ws;
    if (!(st = new_stage(&p, ST_FILTER, at, &rc)))
      return rc;
    rc = lf_or(&p, &st->f, 0);
  }
  if (rc == 0)
    *i = p.i;
  return rc;
}

static void stage_fini(struct stage *s)
{
  for (size_t k = 0; k < s->np; k++) {
    free(s->p[k].label);
    free(s->p[k].key);
    for (size_t j = 0; s->p[k].segs && j < MAX_PATH_SEGS; j++) /* a failed parse's too */
      free(s->p[k].segs[j].field);
    free(s->p[k].segs);
  }
  free(s->p);
  if (s->md)
    pcre2_match_data_free(s->md);
  if (s->re)
    pcre2_code_free(s->re);
  for (uint32_t k = 0; s->names && k <= s->ncap; k++)
    free(s->names[k]);
  free(s->names);
  for (size_t k = 0; k < s->npat; k++) {
    free(s->pat[k].lit);
    free(s->pat[k].name);
  }
  free(s->pat);
  lfilter_free(s->f);
  for (size_t k = 0; k < s->nd; k++) {
    free(s->dn[k]);
    if (s->dhas[k])
      nn_matcher_fini(&s->dm[k]);
  }
  free(s->dn);
  free(s->dm);
  free(s->dhas);
  tmpl_fini(&s->tl);
  for (size_t k = 0; k < s->nfmt; k++) {
    free(s->fdst[k]);
    free(s->fsrc[k]);
    tmpl_fini(&s->ftl[k]);
  }
  free(s->fdst);
  free(s->fsrc);
  free(s->ftl);
}

void nn__logstore_pipeline_free(struct nn__ls_pipeline *pl)
{
  if (!pl)
    return;
  for (size_t k = 0; k < pl->n; k++)
    stage_fini(&pl->st[k]);
  free(pl->st);
  free(pl->ulabel);
  free(pl);
}

enum nn__ls_conv nn__logstore_pipeline_unwrap(const struct nn__ls_pipeline *pl, const char **label)
{
  *label = pl && pl->unwrap ? pl->ulabel : NULL;
  return pl && pl->unwrap ? pl->conv : LS_CONV_NONE;
}

/* ---- value parsers ---- */

bool nn__logstore_parse_go_duration(const char *s, size_t n, int64_t *out)
{
  size_t i = 0;
  bool neg = false;
  if (i < n && (s[i] == '-' || s[i] == '+'))
    neg = s[i++] == '-';
  if (i == n - 1 && s[i] == '0') {
    *out = 0;
    return true;
  }
  if (i >= n)
    return false;
  double total = 0;
  while (i < n) {
    size_t st = i;
    double v = 0, scale = 1;
    bool digits = false;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      v = v * 10 + (s[i++] - '0');
      digits = true;
    }
    if (i < n && s[i] == '.') {
      i++;
      while (i < n && s[i] >= '0' && s[i] <= '9') {
        scale /= 10;
        v += (s[i++] - '0') * scale;
        digits = true;
      }
    }
    if (!digits || i == st)
      return false;
    double unit;
    size_t left = n - i;
    if (left >= 2 && memcmp(s + i, "ns", 2) == 0)
      unit = 1, i += 2;
    else if (left >= 2 && memcmp(s + i, "us", 2) == 0)
      unit = 1e3, i += 2;
    else if (left >= 3 && memcmp(s + i, "\xc2\xb5s", 3) == 0)
      unit = 1e3, i += 3;
    else if (left >= 3 && memcmp(s + i, "\xce\xbcs", 3) == 0)
      unit = 1e3, i += 3;
    else if (left >= 2 && memcmp(s + i, "ms", 2) == 0)
      unit = 1e6, i += 2;
    else if (left >= 1 && s[i] == 's')
      unit = 1e9, i += 1;
    else if (left >= 1 && s[i] == 'm')
      unit = 60e9, i += 1;
    else if (left >= 1 && s[i] == 'h')
      unit = 3600e9, i += 1;
    else
      return false;
    total += v * unit;
  }
  if (total > 9.2233720368547e18)
    return false;
  *out = neg ? -(int64_t)total : (int64_t)total;
  return true;
}

bool nn__logstore_parse_bytes(const char *s, size_t n, uint64_t *out)
{
  static const struct {
    const char *u;
    double m;
  } units[] = {
      {"", 1},
      {"b", 1},
      {"kib", 1024.0},
      {"kb", 1e3},
      {"mib", 1048576},
      {"mb", 1e6},
      {"gib", 1073741824.0},
      {"gb", 1e9},
      {"tib", 1099511627776.0},
      {"tb", 1e12},
      {"pib", 1125899906842624.0},
      {"pb", 1e15},
      {"eib", 1152921504606846976.0},
      {"eb", 1e18},
      {"ki", 1024.0},
      {"k", 1e3},
      {"mi", 1048576},
      {"m", 1e6},
      {"gi", 1073741824.0},
      {"g", 1e9},
      {"ti", 1099511627776.0},
      {"t", 1e12},
      {"pi", 1125899906842624.0},
      {"p", 1e15},
      {"ei", 1152921504606846976.0},
      {"e", 1e18},
  };
  char num[64], unit[8];
  size_t i = 0, k = 0;
  while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == ',')) {
    if (s[i] != ',' && k < sizeof(num) - 1)
      num[k++] = s[i];
    i++;
  }
  if (k == 0 || k >= sizeof(num) - 1)
    return false;
  num[k] = '\0';
  char *end;
  double f = strtod(num, &end);
  if (*end)
    return false;
  while (i < n && s[i] == ' ')
    i++;
  size_t e = n;
  while (e > i && s[e - 1] == ' ')
    e--;
  if (e - i >= sizeof(unit))
    return false;
  for (size_t j = 0; j < e - i; j++) {
    char c = s[i + j];
    unit[j] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
  }
  unit[e - i] = '\0';
  for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
    if (strcmp(unit, units[u].u) != 0)
      continue;
    double v = f * units[u].m;
    if (!(v < 18446744073709551616.0))
      return false;
    *out = (uint64_t)v;
    return true;
  }
  return false;
}

/* Go's strconv.ParseFloat for label values: the whole string, no surrounding space. */
static bool parse_float(const char *s, double *out)
{
  if (!s[0] || s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' || s[0] == '\f' ||
      s[0] == '\v')
    return false;
  char *end;
  *out = strtod(s, &end);
  return *end == '\0';
}

/* ---- run state ---- */

void nn__logstore_prun_init(struct nn__ls_prun *r, const struct nn__ls_pipeline *pl, size_t *mem,
                            size_t max)
{
  memset(r, 0, sizeof(*r));
  r->pl = pl;
  r->mem = mem;
  r->max = max;
  r->det = UINT32_MAX;
  nn_buf_init(&r->key, LS_MAX_RECORD_BYTES);
}

void nn__logstore_prun_fini(struct nn__ls_prun *r)
{
  free(r->del);
  free(r->a);
  free(r->x);
  free(r->pfx);
  free(r->out);
  free(r->lb[0]);
  free(r->lb[1]);
  free(r->ht);
  nn_buf_fini(&r->key);
  memset(r, 0, sizeof(*r));
}

/* Grows *p (elements of size sz) to hold need, charging growth to the query's memory. */
static int grow(struct nn__ls_prun *r, void **p, size_t *cap, size_t need, size_t sz)
{
  if (need <= *cap)
    return 0;
  size_t nc = *cap ? *cap : 64;
  while (nc < need)
    nc *= 2;
  if (need > LS_MAX_RECORD_BYTES || (nc - *cap) * sz > r->max - *r->mem || *r->mem > r->max) {
    return NN_ELIMIT;
  }
  void *n = realloc(*p, nc * sz);
  if (!n)
    return NN_ENOMEM;
  *r->mem += (nc - *cap) * sz;
  *p = n;
  *cap = nc;
  return 0;
}

static int aput(struct nn__ls_prun *r, const char *s, size_t n, uint32_t *off)
{
  int rc = grow(r, (void **)&r->a, &r->acap, r->alen + n + 1, 1);
  if (rc < 0)
    return rc;
  *off = (uint32_t)r->alen;
  memcpy(r->a + r->alen, s, n);
  r->a[r->alen + n] = '\0';
  r->alen += n + 1;
  return 0;
}

static bool base_has(const struct nn__ls_prun *r, const char *name)
{
  for (size_t k = 0; k < r->nbase; k++)
    if (strcmp(r->base[k].name, name) == 0)
      return true;
  return false;
}

static uint32_t name_hash(const char *s)
{
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

#define INDEX_FROM 16 /* labels on a line before lookups go through the hash index */

static void idx_insert(struct nn__ls_prun *r, size_t k)
{
  size_t m = r->hcap - 1, pos = r->x[k].hash & m;
  while (r->ht[pos].gen == r->gen)
    pos = (pos + 1) & m;
  r->ht[pos] = (struct nn__ls_xslot){r->gen, (uint32_t)k};
}

/* Makes the index cover every extracted label: a new generation, grown to twice their
 * number. */
static int idx_rebuild(struct nn__ls_prun *r)
{
  size_t need = 64;
  while (need < 2 * r->nx)
    need *= 2;
  if (need > r->hcap) {
    size_t old = r->hcap;
    int rc = grow(r, (void **)&r->ht, &r->hcap, need, sizeof(*r->ht));
    if (rc < 0)
      return rc;
    memset(r->ht + old, 0, (r->hcap - old) * sizeof(*r->ht));
  }
  if (++r->gen == 0) { /* wrapped: slots of an old generation would look current */
    memset(r->ht, 0, r->hcap * sizeof(*r->ht));
    r->gen = 1;
  }
  for (size_t k = 0; k < r->nx; k++)
    idx_insert(r, k);
  r->hn = r->nx;
  return 0;
}

static struct nn__ls_xlabel *xfind_h(struct nn__ls_prun *r, const char *name, uint32_t h)
{
  if (r->nx < INDEX_FROM || (r->hn != r->nx && idx_rebuild(r) < 0)) {
    for (size_t k = 0; k < r->nx; k++)
      if (r->x[k].hash == h && strcmp(r->a + r->x[k].name, name) == 0)
        return &r->x[k];
    return NULL;
  }
  size_t m = r->hcap - 1;
  for (size_t pos = h & m; r->ht[pos].gen == r->gen; pos = (pos + 1) & m) {
    struct nn__ls_xlabel *x = &r->x[r->ht[pos].idx];
    if (x->hash == h && strcmp(r->a + x->name, name) == 0)
      return x;
  }
  return NULL;
}

static struct nn__ls_xlabel *xfind(struct nn__ls_prun *r, const char *name)
{
  return xfind_h(r, name, name_hash(name));
}

/* The label's current value, or NULL; __error__ reads the error. */
static const char *lget(struct nn__ls_prun *r, const char *name)
{
  if (name[0] == '_' && strcmp(name, ERROR_LABEL) == 0)
    return r->err;
  if (name[0] == '_' && strcmp(name, DETAILS) == 0)
    return r->det == UINT32_MAX ? NULL : r->a + r->det;
  struct nn__ls_xlabel *x = xfind(r, name);
  if (x)
    return r->a + x->value;
  for (size_t k = 0; k < r->nbase; k++)
    if (!r->del[k] && strcmp(r->base[k].name, name) == 0)
      return r->base[k].value;
  return NULL;
}

/* Sets an extracted label; the name is at arena offset name (already in the arena). */
static int xset_off(struct nn__ls_prun *r, uint32_t name, uint32_t value)
{
  uint32_t h = name_hash(r->a + name);
  struct nn__ls_xlabel *x = xfind_h(r, r->a + name, h);
  if (x) {
    x->value = value;
    return 0;
  }
  int rc = grow(r, (void **)&r->x, &r->cx, r->nx + 1, sizeof(*r->x));
  if (rc < 0)
    return rc;
  r->x[r->nx++] = (struct nn__ls_xlabel){name, value, h};
  if (r->hn == r->nx - 1 && 2 * r->nx <= r->hcap) { /* keep a current index current */
    idx_insert(r, r->nx - 1);
    r->hn = r->nx;
  }
  return 0;
}

/* Sets name (with _extracted when a stream label has it) to the arena string at vo. */
static int xset_v(struct nn__ls_prun *r, const char *name, size_t nlen, uint32_t vo)
{
  uint32_t no;
  int rc = aput(r, name, nlen, &no);
  if (rc < 0)
    return rc;
  if (base_has(r, r->a + no)) {
    r->alen--; /* extend the name in place */
    if ((rc = grow(r, (void **)&r->a, &r->acap, r->alen + 11, 1)) < 0)
      return rc;
    memcpy(r->a + r->alen, "_extracted", 11);
    r->alen += 11;
  }
  return xset_off(r, no, vo);
}

static int xset(struct nn__ls_prun *r, const char *name, size_t nlen, const char *val, size_t vlen)
{
  uint32_t vo;
  int rc = aput(r, val, vlen, &vo);
  return rc < 0 ? rc : xset_v(r, name, nlen, vo);
}

static int set_err(struct nn__ls_prun *r, const char *err, const char *details)
{
  r->err = err;
  if (!details) {
    r->det = UINT32_MAX;
    return 0;
  }
  return aput(r, details, strlen(details), &r->det);
}

/* ---- JSON ---- */

struct js {
  const char *s;
  size_t n, i;
};

static void js_ws(struct js *j)
{
  while (j->i < j->n &&
         (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r'))
    j->i++;
}

/* A string at j->i (the quote): [*b, *e) is its raw content. */
static bool js_string(struct js *j, size_t *b, size_t *e, bool *esc)
{
  if (j->i >= j->n || j->s[j->i] != '"')
    return false;
  size_t k = ++j->i;
  *esc = false;
  for (;;) {
    const char *q = memchr(j->s + k, '"', j->n - k);
    if (!q)
      return false;
    size_t at = (size_t)(q - j->s);
    const char *bs = memchr(j->s + k, '\\', at - k);
    if (!bs) {
      *b = j->i;
      *e = at;
      j->i = at + 1;
      return true;
    }
    *esc = true;
    k = (size_t)(bs - j->s) + 2; /* skip the escaped character */
    if (k > j->n)
      return false;
  }
}

static int hexv(char c)
{
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* Unescapes JSON string content into the arena; false on a bad escape. */
static int js_unescape(struct nn__ls_prun *r, const char *s, size_t n, uint32_t *off, bool *ok)
{
  int rc = grow(r, (void **)&r->a, &r->acap, r->alen + n + 1, 1);
  if (rc < 0)
    return rc;
  char *w = r->a + r->alen;
  *ok = true;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '\\') {
      *w++ = s[i];
      continue;
    }
    if (++i >= n) {
      *ok = false;
      break;
    }
    switch (s[i]) {
    case '"':
    case '\\':
    case '/': *w++ = s[i]; break;
    case 'b': *w++ = '\b'; break;
    case 'f': *w++ = '\f'; break;
    case 'n': *w++ = '\n'; break;
    case 'r': *w++ = '\r'; break;
    case 't': *w++ = '\t'; break;
    case 'u': {
      uint32_t cp = 0;
      if (n - i < 5) {
        *ok = false;
        break;
      }
      for (int k = 1; k <= 4; k++) {
        int h = hexv(s[i + (size_t)k]);
        if (h < 0)
          *ok = false;
        cp = cp * 16 + (uint32_t)(h < 0 ? 0 : h);
      }
      i += 4;
      if (cp >= 0xd800 && cp < 0xdc00 && n - i >= 7 && s[i + 1] == '\\' && s[i + 2] == 'u') {
        uint32_t lo = 0;
        for (int k = 3; k <= 6; k++) {
          int h = hexv(s[i + (size_t)k]);
          lo = lo * 16 + (uint32_t)(h < 0 ? 0 : h);
        }
        if (lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i += 6;
        }
      }
      if ((cp >= 0xd800 && cp < 0xe000) || cp == 0)
        *ok = false; /* a lone surrogate decodes to U+FFFD, which Loki turns into "" */
      else if (cp < 0x80)
        *w++ = (char)cp;
      else if (cp < 0x800) {
        *w++ = (char)(0xc0 | (cp >> 6));
        *w++ = (char)(0x80 | (cp & 0x3f));
      } else if (cp < 0x10000) {
        *w++ = (char)(0xe0 | (cp >> 12));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
      } else {
        *w++ = (char)(0xf0 | (cp >> 18));
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
      }
      break;
    }
    default: *ok = false;
    }
    if (!*ok)
      break;
  }
  size_t len = (size_t)(w - (r->a + r->alen));
  if (*ok && !nn_utf8_valid(r->a + r->alen, len))
    *ok = false;
  if (!*ok)
    len = 0; /* Loki's value for a string it cannot unescape, or with invalid UTF-8 */
  r->a[r->alen + len] = '\0';
  *off = (uint32_t)r->alen;
  r->alen += len + 1;
  return 0;
}

/* Skips any value at j->i without recursion; false when malformed. */
static bool js_skip(struct js *j)
{
  js_ws(j);
  if (j->i >= j->n)
    return false;
  char c = j->s[j->i];
  if (c == '"') {
    size_t b, e;
    bool esc;
    return js_string(j, &b, &e, &esc);
  }
  if (c == '{' || c == '[') {
    size_t depth = 0;
    while (j->i < j->n) {
      c = j->s[j->i];
      if (c == '"') {
        size_t b, e;
        bool esc;
        if (!js_string(j, &b, &e, &esc))
          return false;
        continue;
      }
      j->i++;
      if (c == '{' || c == '[')
        depth++;
      else if ((c == '}' || c == ']') && --depth == 0)
        return true;
    }
    return false;
  }
  size_t st = j->i;
  while (j->i < j->n &&
         (strchr("+-.eE0123456789", j->s[j->i]) || (j->s[j->i] >= 'a' && j->s[j->i] <= 'z')))
    j->i++;
  if (j->i == st)
    return false;
  size_t l = j->i - st;
  const char *t = j->s + st;
  if ((l == 4 && memcmp(t, "true", 4) == 0) || (l == 5 && memcmp(t, "false", 5) == 0) ||
      (l == 4 && memcmp(t, "null", 4) == 0))
    return true;
  return t[0] == '-' || (t[0] >= '0' && t[0] <= '9');
}

/* Appends key to the prefix buffer the way Loki sanitizes label names: surrounding spaces
 * trimmed, a leading digit prefixed with '_', every character outside [a-zA-Z0-9_] (a whole
 * UTF-8 sequence counts as one) replaced by '_'. */
static int pfx_append(struct nn__ls_prun *r, const char *k, size_t n)
{
  while (n && (k[0] == ' ' || k[0] == '\t' || k[0] == '\n' || k[0] == '\r'))
    k++, n--;
  while (n && (k[n - 1] == ' ' || k[n - 1] == '\t' || k[n - 1] == '\n' || k[n - 1] == '\r'))
    n--;
  int rc = grow(r, (void **)&r->pfx, &r->pcap, r->plen + n + 2, 1);
  if (rc < 0)
    return rc;
  if (n && r->plen == 0 && k[0] >= '0' && k[0] <= '9')
    r->pfx[r->plen++] = '_';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)k[i];
    if (c >= 0x80 && (c & 0xc0) == 0x80)
      continue; /* continuation byte of a character already replaced */
    r->pfx[r->plen++] = idc((char)c, false) ? (char)c : '_';
  }
  return 0;
}

static int json_object(struct nn__ls_prun *r, struct js *j, int depth, const char **why);

/* One member value of an object; the member's key is the current prefix. */
static int json_member(struct nn__ls_prun *r, struct js *j, int depth, const char **why)
{
  js_ws(j);
  if (j->i >= j->n) {
    *why = "Value is not a number, string, bool, object or null";
    return 1;
  }
  char c = j->s[j->i];
  if (c == '{') {
    size_t save = r->plen;
    int rc = json_object(r, j, depth + 1, why);
    r->plen = save;
    return rc;
  }
  if (c == '[' || (c == 'n' && j->n - j->i >= 4 && memcmp(j->s + j->i, "null", 4) == 0)) {
    if (!js_skip(j)) {
      *why = "Malformed array";
      return 1;
    }
    return 0; /* arrays and nulls are not turned into labels */
  }
  if (r->plen == 0)
    return js_skip(j) ? 0 : 1;
  int rc = grow(r, (void **)&r->pfx, &r->pcap, r->plen + 1, 1);
  if (rc < 0)
    return rc;
  r->pfx[r->plen] = '\0';
  if (c == '"') {
    size_t b, e;
    bool esc, ok = true;
    uint32_t vo;
    if (!js_string(j, &b, &e, &esc)) {
      *why = "Malformed string";
      return 1;
    }
    if (esc)
      rc = js_unescape(r, j->s + b, e - b, &vo, &ok);
    else if (!nn_utf8_valid(j->s + b, e - b))
      rc = aput(r, "", 0, &vo);
    else
      rc = aput(r, j->s + b, e - b, &vo);
    return rc < 0 ? rc : xset_v(r, r->pfx, r->plen, vo);
  }
  size_t st = j->i;
  if (!js_skip(j)) {
    *why = "Unknown value type";
    return 1;
  }
  return xset(r, r->pfx, r->plen, j->s + st, j->i - st);
}

static int json_object(struct nn__ls_prun *r, struct js *j, int depth, const char **why)
{
  if (depth > MAX_JSON_DEPTH) {
    *why = "JSON nested too deeply";
    return 1;
  }
  js_ws(j);
  if (j->i >= j->n || j->s[j->i] != '{') {
    *why = "Value looks like object, but can't find closing '}' symbol";
    return 1;
  }
  j->i++;
  js_ws(j);
  if (j->i < j->n && j->s[j->i] == '}') {
    j->i++;
    return 0;
  }
  size_t base = r->plen;
  for (;;) {
    js_ws(j);
    size_t b, e;
    bool esc;
    if (!js_string(j, &b, &e, &esc)) {
      *why = "Key path not found";
      return 1;
    }
    r->plen = base;
    int rc;
    if (base) {
      if ((rc = grow(r, (void **)&r->pfx, &r->pcap, r->plen + 1, 1)) < 0)
        return rc;
      r->pfx[r->plen++] = '_';
    }
    if (esc) {
      uint32_t off;
      bool ok;
      size_t save = r->alen;
      if ((rc = js_unescape(r, j->s + b, e - b, &off, &ok)) < 0)
        return rc;
      rc = pfx_append(r, r->a + off, strlen(r->a + off));
      r->alen = save;
    } else {
      rc = pfx_append(r, j->s + b, e - b);
    }
    if (rc < 0)
      return rc;
    js_ws(j);
    if (j->i >= j->n || j->s[j->i] != ':') {
      *why = "Malformed object: expected ':'";
      return 1;
    }
    j->i++;
    if ((rc = json_member(r, j, depth, why)) != 0)
      return rc;
    js_ws(j);
    if (j->i < j->n && j->s[j->i] == ',') {
      j->i++;
      continue;
    }
    if (j->i < j->n && j->s[j->i] == '}') {
      j->i++;
      r->plen = base;
      return 0;
    }
    *why = "Value looks like object, but can't find closing '}' symbol";
    return 1;
  }
}

/* Finds the value at a path: *b, *e bound it in the line. 1 found, 0 not, -1 malformed. */
static int json_path(const char *s, size_t n, const struct param *pa, size_t *vb, size_t *ve)
{
  struct js j = {s, n, 0};
  for (size_t k = 0; k < pa->nsegs; k++) {
    const struct seg *sg = &pa->segs[k];
    js_ws(&j);
    if (j.i >= n)
      return -1;
    if (sg->index >= 0) {
      if (s[j.i] != '[')
        return 0;
      j.i++;
      js_ws(&j);
      if (j.i < n && s[j.i] == ']')
        return 0;
      for (long idx = 0;; idx++) {
        if (idx == sg->index)
          break;
        if (!js_skip(&j))
          return -1;
        js_ws(&j);
        if (j.i < n && s[j.i] == ',') {
          j.i++;
          continue;
        }
        return j.i < n && s[j.i] == ']' ? 0 : -1;
      }
      continue;
    }
    if (s[j.i] != '{')
      return 0;
    j.i++;
    js_ws(&j);
    if (j.i < n && s[j.i] == '}')
      return 0;
    for (;;) {
      size_t b, e;
      bool esc;
      js_ws(&j);
      if (!js_string(&j, &b, &e, &esc))
        return -1;
      js_ws(&j);
      if (j.i >= n || s[j.i] != ':')
        return -1;
      j.i++;
      if (!esc && e - b == sg->flen && memcmp(s + b, sg->field, sg->flen) == 0)
        break;
      if (!js_skip(&j))
        return -1;
      js_ws(&j);
      if (j.i < n && s[j.i] == ',') {
        j.i++;
        continue;
      }
      return j.i < n && s[j.i] == '}' ? 0 : -1;
    }
  }
  js_ws(&j);
  *vb = j.i;
  if (!js_skip(&j))
    return -1;
  *ve = j.i;
  return 1;
}

static int run_json(struct nn__ls_prun *r, const struct stage *st, const char *line, size_t len)
{
  int rc;
  if (st->np == 0) {
    struct js j = {line, len, 0};
    const char *why = NULL;
    r->plen = 0;
    rc = json_object(r, &j, 0, &why);
    if (rc > 0)
      return set_err(r, ERR_JSON, why);
    return rc;
  }
  if (len == 0)
    return 0;
  if (line[0] != '{' && line[0] != '[' && line[0] != '"')
    return set_err(r, ERR_JSON, NULL);
  for (size_t k = 0; k < st->np; k++) {
    const struct param *pa = &st->p[k];
    size_t b = 0, e = 0;
    int f = json_path(line, len, pa, &b, &e);
    if (f < 0) {
      if ((rc = set_err(r, ERR_JSON, NULL)) < 0)
        return rc;
      f = 0;
    }
    const char *v = "";
    size_t vl = 0;
    if (f == 1) {
      v = line + b;
      vl = e - b;
      if (vl == 4 && memcmp(v, "null", 4) == 0)
        vl = 0;
    }
    if (f == 1 && vl && v[0] == '"') {
      uint32_t off;
      bool ok;
      if ((rc = js_unescape(r, v + 1, vl - 2, &off, &ok)) < 0 ||
          (rc = xset_v(r, pa->label, strlen(pa->label), off)) < 0)
        return rc;
      continue;
    }
    if ((rc = xset(r, pa->label, strlen(pa->label), v, vl)) < 0)
      return rc;
  }
  return 0;
}

/* ---- logfmt ---- */

/* Reads the next key/value pair: 1 with [kb,ke) and [vb,ve) (vb == SIZE_MAX without a value,
 * quoted tells whether the value needs unquoting), 0 at the end, -1 on a syntax error. */
static int lf_next(const char *s, size_t n, size_t *i, size_t *kb, size_t *ke, size_t *vb,
                   size_t *ve, bool *quoted, const char **why, size_t *epos)
{
  size_t k = *i;
  while (k < n && (unsigned char)s[k] <= ' ')
    k++;
  if (k >= n) {
    *i = k;
    return 0;
  }
  *kb = k;
  while (k < n && (unsigned char)s[k] > ' ' && s[k] != '=' && s[k] != '"')
    k++;
  *ke = k;
  *vb = *ve = SIZE_MAX;
  *quoted = false;
  *epos = k;
  if (k < n && s[k] == '"') {
    *why = "unexpected '\"'";
    return -1;
  }
  if (*ke == *kb) {
    *why = "unexpected '='";
    return -1;
  }
  if (k >= n || s[k] != '=') {
    *i = k;
    return 1;
  }
  k++;
  if (k < n && s[k] == '"') {
    size_t st = ++k;
    while (k < n && s[k] != '"') {
      if (s[k] == '\\')
        k++;
      k++;
    }
    if (k >= n) {
      *why = "unterminated quoted value";
      *epos = n;
      return -1;
    }
    *vb = st;
    *ve = k;
    *quoted = true;
    *i = k + 1;
    return 1;
  }
  *vb = k;
  while (k < n && (unsigned char)s[k] > ' ') {
    if (s[k] == '=' || s[k] == '"') {
      *why = s[k] == '=' ? "unexpected '='" : "unexpected '\"'";
      *epos = k;
      return -1;
    }
    k++;
  }
  *ve = k;
  *i = k;
  return 1;
}

static int run_logfmt(struct nn__ls_prun *r, const struct stage *st, const char *line, size_t len)
{
  size_t i = 0, kb, ke, vb, ve, epos = 0;
  bool quoted;
  const char *why = NULL;
  int rc, m;
  while ((m = lf_next(line, len, &i, &kb, &ke, &vb, &ve, &quoted, &why, &epos)) == 1) {
    const char *label = NULL;
    size_t ll = 0;
    if (st->np) {
      for (size_t k = 0; k < st->np; k++)
        if (strlen(st->p[k].key) == ke - kb && memcmp(st->p[k].key, line + kb, ke - kb) == 0) {
          label = st->p[k].label;
          ll = strlen(label);
          break;
        }
      if (!label)
        continue;
    } else {
      r->plen = 0;
      if ((rc = pfx_append(r, line + kb, ke - kb)) < 0)
        return rc;
      if (r->plen == 0)
        continue;
      label = r->pfx;
      ll = r->plen;
    }
    uint32_t vo;
    bool ok = true;
    if (vb == SIZE_MAX) {
      rc = aput(r, "", 0, &vo);
    } else if (quoted) {
      if ((rc = js_unescape(r, line + vb, ve - vb, &vo, &ok)) == 0 && !ok &&
          memchr(line + vb, '\\', ve - vb)) { /* a bad escape stops the parse, as Loki's */
        why = "invalid quoted value";
        epos = ve + 1;
        m = -1;
        break;
      }
    } else if (!nn_utf8_valid(line + vb, ve - vb))
      rc = aput(r, "", 0, &vo);
    else
      rc = aput(r, line + vb, ve - vb, &vo);
    if (rc < 0 || (rc = xset_v(r, label, ll, vo)) < 0)
      return rc;
  }
  if (m < 0) {
    char det[128];
    snprintf(det, sizeof(det), "logfmt syntax error at pos %zu : %s", epos + 1, why);
    return set_err(r, ERR_LOGFMT, det);
  }
  return 0;
}

/* ---- regexp and pattern ---- */

static int run_regexp(struct nn__ls_prun *r, const struct stage *st, const char *line, size_t len)
{
  int m = pcre2_match(st->re, (PCRE2_SPTR)line, len, 0, 0, st->md, NULL);
  if (m < 0)
    return 0;
  PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md);
  for (uint32_t g = 1; g <= st->ncap; g++) {
    if (!st->names[g])
      continue;
    const char *v = "";
    size_t vl = 0;
    if ((int)g < m && ov[2 * g] != PCRE2_UNSET) {
      v = line + ov[2 * g];
      vl = ov[2 * g + 1] - ov[2 * g];
    }
    int rc = xset(r, st->names[g], strlen(st->names[g]), v, vl);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int run_pattern(struct nn__ls_prun *r, const struct stage *st, const char *line, size_t len)
{
  size_t k = 0, i = 0;
  int rc;
  if (len == 0)
    return 0;
  if (st->pat[0].lit) {
    if (len < st->pat[0].len || memcmp(line, st->pat[0].lit, st->pat[0].len) != 0)
      return 0;
    i = st->pat[0].len;
    k = 1;
  }
  while (k < st->npat) {
    const struct pat *cap = &st->pat[k];
    if (k + 1 == st->npat) { /* ends on a capture: it takes the rest */
      if (cap->name)
        return xset(r, cap->name, strlen(cap->name), line + i, len - i);
      return 0;
    }
    const struct pat *lit = &st->pat[k + 1];
    k += 2;
    const char *f = memmem(line + i, len - i, lit->lit, lit->len);
    if (!f) { /* a missed literal: the capture takes the rest, and matching stops */
      if (cap->name)
        return xset(r, cap->name, strlen(cap->name), line + i, len - i);
      return 0;
    }
    size_t at = (size_t)(f - line);
    if (cap->name && (rc = xset(r, cap->name, strlen(cap->name), line + i, at - i)) < 0)
      return rc;
    i = at + lit->len;
  }
  return 0;
}

/* ---- label filters, drop, keep ---- */

static bool num_cmp(enum cmp op, double a, double b)
{
  switch (op) {
  case CMP_EQ: return a == b;
  case CMP_NE: return a != b;
  case CMP_GT: return a > b;
  case CMP_GE: return a >= b;
  case CMP_LT: return a < b;
  default: return a <= b;
  }
}

static int filter_eval(struct nn__ls_prun *r, const struct lfilter *f, bool *ok)
{
  int rc;
  switch (f->k) {
  case LF_AND:
    if ((rc = filter_eval(r, f->a, ok)) < 0 || !*ok)
      return rc;
    return filter_eval(r, f->b, ok);
  case LF_OR:
    if ((rc = filter_eval(r, f->a, ok)) < 0 || *ok)
      return rc;
    return filter_eval(r, f->b, ok);
  case LF_STR: {
    const char *v = lget(r, f->name);
    *ok = nn_matcher_matches(&f->m, v ? v : "");
    return 0;
  }
  default: break;
  }
  const char *v = lget(r, f->name);
  if (!v) { /* a missing label never passes a numeric comparison */
    *ok = false;
    return 0;
  }
  bool conv;
  double a = 0, b = 0;
  char det[300];
  if (f->k == LF_NUM) {
    conv = parse_float(v, &a);
    b = f->num;
    snprintf(det, sizeof(det), "strconv.ParseFloat: parsing \"%.200s\": invalid syntax", v);
  } else if (f->k == LF_DUR) {
    int64_t d;
    conv = nn__logstore_parse_go_duration(v, strlen(v), &d);
    a = (double)d;
    b = (double)f->dur;
    snprintf(det, sizeof(det), "time: invalid duration \"%.200s\"", v);
  } else {
    uint64_t x;
    conv = nn__logstore_parse_bytes(v, strlen(v), &x);
    a = (double)x;
    b = (double)f->bytes;
    snprintf(det, sizeof(det), "invalid byte size \"%.200s\"", v);
  }
  if (!conv) { /* Loki keeps the line and marks it, unless an error is already set */
    *ok = true;
    return r->err ? 0 : set_err(r, ERR_FILTER, det);
  }
  *ok = num_cmp(f->op, a, b);
  return 0;
}

static bool in_names(const struct stage *st, const char *name, const char *value)
{
  for (size_t k = 0; k < st->nd; k++)
    if (strcmp(st->dn[k], name) == 0 && (!st->dhas[k] || nn_matcher_matches(&st->dm[k], value)))
      return true;
  return false;
}

static void run_dropkeep(struct nn__ls_prun *r, const struct stage *st)
{
  bool drop = st->k == ST_DROP;
  for (size_t k = 0; k < r->nbase; k++)
    if (!r->del[k] && in_names(st, r->base[k].name, r->base[k].value) == drop)
      r->del[k] = 1;
  for (size_t k = 0; k < r->nx;) {
    if (in_names(st, r->a + r->x[k].name, r->a + r->x[k].value) == drop) {
      r->x[k] = r->x[--r->nx];
      r->hn = SIZE_MAX; /* indexes moved */
    } else {
      k++;
    }
  }
  /* keep always keeps the error labels, as Loki's does */
  if (drop && r->err) {
    if (in_names(st, ERROR_LABEL, r->err))
      r->err = NULL;
  }
  if (drop && r->det != UINT32_MAX && in_names(st, DETAILS, r->a + r->det))
    r->det = UINT32_MAX;
}

/* Renders t with the current labels (and line) into line buffer b. */
static int render(struct nn__ls_prun *r, const struct tmpl *t, int b, const char *line, size_t len,
                  size_t *out)
{
  size_t n = 0;
  int rc = grow(r, (void **)&r->lb[b], &r->lcap[b], 1, 1);
  for (size_t k = 0; rc == 0 && k < t->n; k++) {
    const struct tpiece *tp = &t->p[k];
    const char *v = tp->text;
    size_t l = tp->len;
    if (tp->line) {
      v = line;
      l = len;
    } else if (tp->field) {
      v = lget(r, tp->text);
      l = v ? strlen(v) : 0; /* a missing label renders as "" */
    }
    if ((rc = grow(r, (void **)&r->lb[b], &r->lcap[b], n + l + 1, 1)) < 0)
      break;
    if (l)
      memcpy(r->lb[b] + n, v, l);
    n += l;
  }
  if (rc < 0)
    return rc;
  r->lb[b][n] = '\0';
  *out = n;
  return 0;
}

/* Removes a label (a stream label, an extracted one, or an error label). */
static void ldel(struct nn__ls_prun *r, const char *name)
{
  if (strcmp(name, ERROR_LABEL) == 0) {
    r->err = NULL;
    return;
  }
  if (strcmp(name, DETAILS) == 0) {
    r->det = UINT32_MAX;
    return;
  }
  for (size_t k = 0; k < r->nx; k++)
    if (strcmp(r->a + r->x[k].name, name) == 0) {
      r->x[k] = r->x[--r->nx];
      r->hn = SIZE_MAX; /* indexes moved */
      break;
    }
  for (size_t k = 0; k < r->nbase; k++)
    if (strcmp(r->base[k].name, name) == 0)
      r->del[k] = 1;
}

/* label_format: each dst takes src's value (src is removed) or its template's text; a stream
 * label of that name is replaced, not suffixed. */
static int run_label_format(struct nn__ls_prun *r, const struct stage *st, const char *line,
                            size_t len)
{
  for (size_t k = 0; k < st->nfmt; k++) {
    const char *v;
    size_t vl;
    int rc;
    if (st->fsrc[k]) {
      v = lget(r, st->fsrc[k]);
      if (!v)
        continue;
      vl = strlen(v);
    } else {
      int b = r->cur ^ 1; /* the spare line buffer: line is in lb[cur] or the stored line */
      if ((rc = render(r, &st->ftl[k], b, line, len, &vl)) < 0)
        return rc;
      v = r->lb[b];
    }
    uint32_t vo, no;
    /* A value in the arena moves as it grows: keep its offset (as integers, which gcc's
     * use-after-free analysis does not mistake for a stale pointer). */
    uintptr_t pv = (uintptr_t)v, pa = (uintptr_t)r->a;
    if (r->a && pv >= pa && pv < pa + r->alen) {
      size_t off = (size_t)(pv - pa);
      if ((rc = grow(r, (void **)&r->a, &r->acap, r->alen + vl + 1, 1)) < 0)
        return rc;
      v = r->a + off;
    }
    if ((rc = aput(r, v, vl, &vo)) < 0)
      return rc;
    if (st->fsrc[k] && strcmp(st->fsrc[k], st->fdst[k]) != 0)
      ldel(r, st->fsrc[k]);
    ldel(r, st->fdst[k]);
    if ((rc = aput(r, st->fdst[k], strlen(st->fdst[k]), &no)) < 0 || (rc = xset_off(r, no, vo)) < 0)
      return rc;
  }
  return 0;
}

static int run_stages(struct nn__ls_prun *r, size_t from, size_t to, const char *line, size_t len)
{
  for (size_t k = from; k < to; k++) {
    const struct stage *st = &r->pl->st[k];
    int rc = 0;
    bool ok = true;
    switch (st->k) {
    case ST_LINE_FORMAT: {
      size_t n;
      if ((rc = render(r, &st->tl, r->cur ^ 1, line, len, &n)) < 0)
        return rc;
      r->cur ^= 1;
      line = r->lb[r->cur];
      len = n;
      r->line = line;
      r->llen = len;
      break;
    }
    case ST_LABEL_FORMAT: rc = run_label_format(r, st, line, len); break;
    case ST_LINE_FILTER: ok = nn__logstore_filter_match(st->lf, line, len); break;
    case ST_JSON: rc = run_json(r, st, line, len); break;
    case ST_LOGFMT: rc = run_logfmt(r, st, line, len); break;
    case ST_REGEXP: rc = run_regexp(r, st, line, len); break;
    case ST_PATTERN: rc = run_pattern(r, st, line, len); break;
    case ST_FILTER: rc = filter_eval(r, st->f, &ok); break;
    case ST_DROP:
    case ST_KEEP: run_dropkeep(r, st); break;
    }
    if (rc < 0)
      return rc;
    if (!ok)
      return 0;
  }
  return 1;
}

int nn__logstore_prun_line(struct nn__ls_prun *r, const struct nn_label *base, size_t nbase,
                           const char *line, size_t len)
{
  int rc = grow(r, (void **)&r->del, &r->cdel, nbase + 1, 1);
  if (rc < 0)
    return rc;
  memset(r->del, 0, nbase);
  r->base = base;
  r->nbase = nbase;
  r->alen = 0;
  r->nx = 0;
  r->hn = SIZE_MAX; /* rebuilt, as a new generation, when a line needs it */
  r->err = NULL;
  r->det = UINT32_MAX;
  r->line = line;
  r->llen = len;
  return run_stages(r, 0, r->pl->nbefore, line, len);
}

int nn__logstore_prun_unwrap(struct nn__ls_prun *r, double *v)
{
  const struct nn__ls_pipeline *pl = r->pl;
  const char *s = lget(r, pl->ulabel);
  bool ok;
  char det[300];
  if (!s)
    s = "";
  *v = 0;
  if (pl->conv == LS_CONV_DURATION) {
    int64_t d;
    ok = nn__logstore_parse_go_duration(s, strlen(s), &d);
    *v = (double)d / 1e9;
    snprintf(det, sizeof(det), "time: invalid duration \"%.200s\"", s);
  } else if (pl->conv == LS_CONV_BYTES) {
    uint64_t b;
    ok = nn__logstore_parse_bytes(s, strlen(s), &b);
    *v = (double)b;
    snprintf(det, sizeof(det), "strconv.ParseFloat: parsing \"%.200s\": invalid syntax", s);
  } else {
    ok = parse_float(s, v);
    snprintf(det, sizeof(det), "strconv.ParseFloat: parsing \"%.200s\": invalid syntax", s);
  }
  int rc;
  if (!ok && (rc = set_err(r, ERR_SAMPLE, det)) < 0)
    return rc;
  return run_stages(r, pl->nbefore, pl->n, "", 0);
}

static int label_cmp(const void *a, const void *b)
{
  return strcmp(((const struct nn_label *)a)->name, ((const struct nn_label *)b)->name);
}

static bool listed(char *const *groups, size_t n, const char *name)
{
  for (size_t k = 0; k < n; k++)
    if (strcmp(groups[k], name) == 0)
      return true;
  return false;
}

int nn__logstore_prun_labels(struct nn__ls_prun *r, char *const *groups, size_t ngroups,
                             bool grouped, bool without, size_t *nout)
{
  size_t need = r->nbase + r->nx + 2;
  int rc = grow(r, (void **)&r->out, &r->cout, need, sizeof(*r->out));
  if (rc < 0)
    return rc;
  size_t n = 0;
  bool filter = grouped && !r->err; /* an error keeps every label, so that it is seen */
  for (size_t k = 0; k < r->nbase; k++) {
    if (r->del[k] || (filter && listed(groups, ngroups, r->base[k].name) == without))
      continue;
    r->out[n++] = r->base[k];
  }
  for (size_t k = 0; k < r->nx; k++) {
    const char *nm = r->a + r->x[k].name;
    if (filter && listed(groups, ngroups, nm) == without)
      continue;
    r->out[n++] = (struct nn_label){nm, r->a + r->x[k].value};
  }
  if (r->err) {
    r->out[n++] = (struct nn_label){ERROR_LABEL, r->err};
    if (r->det != UINT32_MAX)
      r->out[n++] = (struct nn_label){DETAILS, r->a + r->det};
  }
  if (n > 1)
    qsort(r->out, n, sizeof(*r->out), label_cmp);
  nn_buf_reset(&r->key);
  for (size_t k = 0; k < n; k++) {
    if ((rc = nn_buf_append(&r->key, r->out[k].name, strlen(r->out[k].name) + 1)) < 0 ||
        (rc = nn_buf_append(&r->key, r->out[k].value, strlen(r->out[k].value) + 1)) < 0)
      return rc == NN_ETOOBIG ? NN_ELIMIT : rc;
  }
  *nout = n;
  return 0;
}
