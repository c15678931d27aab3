/* SPDX-License-Identifier: Apache-2.0 */
/* Exposition parsing, line by line. Each line is first bounded with memchr, so the scratch
 * area that receives NUL-terminated copies of names and unescaped values can be sized once
 * per line (a line never needs more than twice its length) and nothing is allocated per
 * sample. Text format follows promparse (free whitespace between tokens, comments ignored);
 * OpenMetrics follows openmetricsparse (single spaces, `# EOF` required, exemplars). */
#include "agent/expfmt/expfmt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/utf8.h"

struct nn_expfmt_parser {
  size_t max_labels;
  struct nn_label *labels;
  size_t lcap;
  char *scratch;
  size_t scap;
  size_t sused;
  /* Family of the last TYPE line, which Prometheus applies to the samples that follow. */
  char *family;
  size_t famcap;
  size_t famlen;
  enum nn_expfmt_type famtype;
  enum nn_expfmt_format fmt;
  const char *line_start;
  uint32_t lineno;
  char err[320];
};

struct nn_expfmt_parser *nn_expfmt_parser_create(size_t max_labels)
{
  struct nn_expfmt_parser *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->max_labels = max_labels ? max_labels : 1024;
  return p;
}

void nn_expfmt_parser_destroy(struct nn_expfmt_parser *p)
{
  if (!p)
    return;
  free(p->labels);
  free(p->scratch);
  free(p->family);
  free(p);
}

const char *nn_expfmt_parser_error(const struct nn_expfmt_parser *p)
{
  return p->err;
}

static int fail(struct nn_expfmt_parser *p, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct nn_expfmt_parser *p, const char *at, const char *fmt, ...)
{
  va_list ap;
  int n = snprintf(p->err, sizeof(p->err), "%u:%zu: ", (unsigned)p->lineno,
                   (size_t)(at - p->line_start) + 1);
  if (n < 0 || (size_t)n >= sizeof(p->err))
    return NN_EINVAL;
  va_start(ap, fmt);
  vsnprintf(p->err + n, sizeof(p->err) - (size_t)n, fmt, ap);
  va_end(ap);
  return NN_EINVAL;
}

enum nn_expfmt_format nn_expfmt_format_from_content_type(const char *ct)
{
  if (!ct)
    return NN_EXPFMT_TEXT;
  while (*ct == ' ' || *ct == '\t')
    ct++;
  if (strncasecmp(ct, "application/openmetrics-text", 28) == 0)
    return NN_EXPFMT_OPENMETRICS;
  return NN_EXPFMT_TEXT;
}

static const char *const type_names[] = {"unknown",        "counter", "gauge", "histogram",
                                         "gaugehistogram", "summary", "info",  "stateset"};

const char *nn_expfmt_type_name(enum nn_expfmt_type t)
{
  return (unsigned)t < sizeof(type_names) / sizeof(type_names[0]) ? type_names[t] : "unknown";
}

static inline bool is_ws(char c)
{
  return c == ' ' || c == '\t';
}

static inline bool is_name_start(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static inline bool is_name_char(char c)
{
  return is_name_start(c) || (c >= '0' && c <= '9');
}

static const char *skip_ws(const char *s, const char *e)
{
  while (s < e && is_ws(*s))
    s++;
  return s;
}

/* Metric names also allow ':'. Returns the end of the name (== s when there is none). */
static const char *scan_metric_name(const char *s, const char *e)
{
  if (s >= e || !(is_name_start(*s) || *s == ':'))
    return s;
  s++;
  while (s < e && (is_name_char(*s) || *s == ':'))
    s++;
  return s;
}

static const char *scan_label_name(const char *s, const char *e)
{
  if (s >= e || !is_name_start(*s))
    return s;
  s++;
  while (s < e && is_name_char(*s))
    s++;
  return s;
}

/* Copies s[0..n) into the line scratch, NUL-terminated. Capacity was reserved per line. */
static char *scratch_put(struct nn_expfmt_parser *p, const char *s, size_t n)
{
  char *d = p->scratch + p->sused;
  memcpy(d, s, n);
  d[n] = '\0';
  p->sused += n + 1;
  return d;
}

static int reserve_line(struct nn_expfmt_parser *p, size_t linelen)
{
  size_t need = 2 * linelen + 64;
  if (need > p->scap) {
    size_t cap = p->scap ? p->scap : 4096;
    while (cap < need)
      cap *= 2;
    char *n = realloc(p->scratch, cap);
    if (!n)
      return NN_ENOMEM;
    p->scratch = n;
    p->scap = cap;
  }
  p->sused = 0;
  return 0;
}

static int push_label(struct nn_expfmt_parser *p, size_t *n, const char *name, const char *value,
                      const char *at)
{
  if (*n >= p->max_labels + 1) {
    fail(p, at, "too many labels (limit %zu)", p->max_labels);
    return NN_ELIMIT;
  }
  if (*n >= p->lcap) {
    size_t cap = p->lcap ? p->lcap * 2 : 32;
    struct nn_label *l = realloc(p->labels, cap * sizeof(*l));
    if (!l)
      return NN_ENOMEM;
    p->labels = l;
    p->lcap = cap;
  }
  p->labels[*n].name = name;
  p->labels[*n].value = value;
  (*n)++;
  return 0;
}

/* Go's strconv.ParseFloat, as far as exposition needs it: decimal and hex floats, Inf,
 * Infinity and NaN in any case with an optional sign; nothing else. */
static bool parse_float(const char *s, size_t n, double *out)
{
  char buf[128];
  size_t i = 0;
  bool neg = false;

  if (n == 0 || n >= sizeof(buf))
    return false;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    i = 1;
  }
  /* Integers of up to 15 digits are exact in a double: the common case, done by hand. */
  if (n - i > 0 && n - i <= 15) {
    uint64_t v = 0;
    size_t j = i;
    for (; j < n && s[j] >= '0' && s[j] <= '9'; j++)
      v = v * 10 + (uint64_t)(s[j] - '0');
    if (j == n) {
      *out = neg ? -(double)v : (double)v;
      return true;
    }
    /* d.ddd with at most 15 digits: the digits and 10^k are exact doubles, so one division
     * rounds correctly, exactly as strtod does (Clinger's fast path). */
    if (s[j] == '.' && j > i) {
      size_t k = 0;
      for (j++; j < n && s[j] >= '0' && s[j] <= '9'; j++, k++)
        v = v * 10 + (uint64_t)(s[j] - '0');
      if (j == n && k > 0) {
        static const double pow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
        double d = (double)v / pow10[k];
        *out = neg ? -d : d;
        return true;
      }
    }
  }
  for (size_t j = 0; j < n; j++) {
    char c = s[j];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
          c == '+' || c == '-'))
      return false;
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  if (end != buf + n)
    return false;
  if (errno == ERANGE && isinf(v))
    return false; /* overflow; Go reports it as an error too */
  if (isnan(v)) {
    /* strtod takes "nan(...)", which the character check already refused; Go wants "NaN"
     * without a sign. */
    if (i != 0)
      return false;
    v = NAN;
  }
  *out = v;
  return true;
}

static bool parse_int64(const char *s, size_t n, int64_t *out)
{
  size_t i = 0;
  bool neg = false;
  uint64_t v = 0;
  if (n > 0 && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    i = 1;
  }
  if (i == n)
    return false;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    if (v > (UINT64_C(9223372036854775808) - (uint64_t)(s[i] - '0')) / 10)
      return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (!neg && v > INT64_MAX)
    return false;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return true;
}

/* Unescapes a label value or HELP text into the scratch. Text-format label values know \\,
 * \" and \n, HELP only \\ and \n (with_quote false); other escapes stay as written, as in
 * Prometheus's replacers. */
static char *unescape(struct nn_expfmt_parser *p, const char *s, size_t n, bool with_quote,
                      size_t *outlen)
{
  if (!memchr(s, '\\', n)) {
    *outlen = n;
    return scratch_put(p, s, n);
  }
  char *d = p->scratch + p->sused, *o = d;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\\' && i + 1 < n) {
      char c = s[i + 1];
      if (c == '\\' || (c == '"' && with_quote)) {
        *o++ = c;
        i++;
        continue;
      }
      if (c == 'n') {
        *o++ = '\n';
        i++;
        continue;
      }
    }
    *o++ = s[i];
  }
  *o = '\0';
  *outlen = (size_t)(o - d);
  p->sused += *outlen + 1;
  return d;
}

/* Parses `{name="value",...}` starting at *ps (just after '{'). In text format whitespace
 * may surround every token; OpenMetrics allows none. With store false the labels are only
 * checked (exemplars). */
static int parse_labels(struct nn_expfmt_parser *p, const char **ps, const char *e, size_t *n,
                        bool store)
{
  const char *s = *ps;
  bool text = p->fmt == NN_EXPFMT_TEXT;
  for (;;) {
    if (text)
      s = skip_ws(s, e);
    if (s < e && *s == '}') {
      *ps = s + 1;
      return 0;
    }
    const char *ne = scan_label_name(s, e);
    if (ne == s)
      return fail(p, s, "invalid label name, expected [a-zA-Z_][a-zA-Z0-9_]* or '}'");
    const char *name = s;
    size_t namelen = (size_t)(ne - s);
    s = ne;
    if (text)
      s = skip_ws(s, e);
    if (s >= e || *s != '=')
      return fail(p, s, "expected '=' after label name \"%.*s\"", (int)namelen, name);
    s++;
    if (text)
      s = skip_ws(s, e);
    if (s >= e || *s != '"')
      return fail(p, s, "expected '\"' to start the value of label \"%.*s\"", (int)namelen, name);
    const char *vs = ++s;
    while (s < e && *s != '"') {
      if (*s == '\\' && s + 1 < e)
        s++;
      s++;
    }
    if (s >= e)
      return fail(p, vs - 1, "unterminated value of label \"%.*s\"", (int)namelen, name);
    if (!nn_utf8_valid(vs, (size_t)(s - vs)))
      return fail(p, vs, "invalid UTF-8 in the value of label \"%.*s\"", (int)namelen, name);
    if (store) {
      size_t vlen;
      const char *nm = scratch_put(p, name, namelen);
      const char *v = unescape(p, vs, (size_t)(s - vs), true, &vlen);
      int rc = push_label(p, n, nm, v, name);
      if (rc < 0)
        return rc;
    }
    s++;
    if (text)
      s = skip_ws(s, e);
    if (s < e && *s == ',') {
      s++;
      continue;
    }
    if (s < e && *s == '}') {
      *ps = s + 1;
      return 0;
    }
    return fail(p, s, "expected ',' or '}' after label value");
  }
}

static enum nn_expfmt_type lookup_type(const char *s, size_t n, bool om, bool *ok)
{
  static const struct {
    const char *name;
    enum nn_expfmt_type t;
    bool om_only;
    bool text_only;
  } tab[] = {
      {"counter", NN_EXPFMT_COUNTER, false, false},
      {"gauge", NN_EXPFMT_GAUGE, false, false},
      {"histogram", NN_EXPFMT_HISTOGRAM, false, false},
      {"summary", NN_EXPFMT_SUMMARY, false, false},
      {"untyped", NN_EXPFMT_UNKNOWN, false, true},
      {"unknown", NN_EXPFMT_UNKNOWN, true, false},
      {"gaugehistogram", NN_EXPFMT_GAUGEHISTOGRAM, true, false},
      {"info", NN_EXPFMT_INFO, true, false},
      {"stateset", NN_EXPFMT_STATESET, true, false},
  };
  for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
    if (strlen(tab[i].name) == n && memcmp(tab[i].name, s, n) == 0 && !(om && tab[i].text_only) &&
        !(!om && tab[i].om_only)) {
      *ok = true;
      return tab[i].t;
    }
  }
  *ok = false;
  return NN_EXPFMT_UNKNOWN;
}

static int set_family(struct nn_expfmt_parser *p, const char *name, size_t n, enum nn_expfmt_type t)
{
  if (n + 1 > p->famcap) {
    size_t cap = n + 64;
    char *f = realloc(p->family, cap);
    if (!f)
      return NN_ENOMEM;
    p->family = f;
    p->famcap = cap;
  }
  memcpy(p->family, name, n);
  p->family[n] = '\0';
  p->famlen = n;
  p->famtype = t;
  return 0;
}

/* `# HELP|TYPE|UNIT name rest` with s just past the keyword and its separator. */
static int parse_meta(struct nn_expfmt_parser *p, enum nn_expfmt_meta_kind kind, const char *s,
                      const char *e, const struct nn_expfmt_handler *h, void *ud)
{
  bool om = p->fmt == NN_EXPFMT_OPENMETRICS;
  if (!om)
    s = skip_ws(s, e);
  const char *ne = scan_metric_name(s, e);
  if (ne == s)
    return fail(p, s, "invalid metric name in %s line",
                kind == NN_EXPFMT_META_HELP   ? "HELP"
                : kind == NN_EXPFMT_META_TYPE ? "TYPE"
                                              : "UNIT");
  struct nn_expfmt_meta m = {.kind = kind, .text = "", .type = NN_EXPFMT_UNKNOWN};
  const char *name = s;
  size_t namelen = (size_t)(ne - s);
  s = ne;
  if (s < e) {
    if (!is_ws(*s) || (om && *s != ' '))
      return fail(p, s, "expected a space after the metric name");
    if (om)
      s++;
    else
      s = skip_ws(s, e);
  } else if (om && kind != NN_EXPFMT_META_HELP) {
    return fail(p, s, "expected a space after the metric name");
  }
  if (kind == NN_EXPFMT_META_TYPE) {
    const char *te = s;
    while (te < e && !is_ws(*te))
      te++;
    bool ok;
    m.type = lookup_type(s, (size_t)(te - s), om, &ok);
    if (!ok)
      return fail(p, s, "invalid metric type \"%.*s\"", (int)(te - s), s);
    if ((om && te != e) || skip_ws(te, e) != e)
      return fail(p, te, "unexpected text after the metric type");
    int rc = set_family(p, name, namelen, m.type);
    if (rc < 0)
      return rc;
  } else if (kind == NN_EXPFMT_META_HELP) {
    m.text = unescape(p, s, (size_t)(e - s), om, &m.text_len);
  } else {
    m.text = scratch_put(p, s, (size_t)(e - s));
    m.text_len = (size_t)(e - s);
  }
  m.family = scratch_put(p, name, namelen);
  return h->on_meta ? h->on_meta(ud, &m) : 0;
}

static bool has_suffix(const char *s, size_t n, const char *suf)
{
  size_t m = strlen(suf);
  return n >= m && memcmp(s + n - m, suf, m) == 0;
}

/* Whether a sample called name belongs to the family of the last TYPE line: the family
 * name itself or one of the suffixes the types use. */
static bool in_family(const struct nn_expfmt_parser *p, const char *name, size_t n)
{
  static const char *const suffixes[] = {"_total",   "_bucket", "_sum",    "_count",
                                         "_created", "_gsum",   "_gcount", "_info"};
  if (p->famlen == 0 || n < p->famlen || memcmp(name, p->family, p->famlen) != 0)
    return false;
  if (n == p->famlen)
    return true;
  for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
    if (strlen(suffixes[i]) == n - p->famlen && has_suffix(name, n, suffixes[i]))
      return true;
  return false;
}

static int sort_labels(struct nn_expfmt_parser *p, size_t n, const char *at)
{
  struct nn_label *l = p->labels;
  /* Exporters almost always write labels sorted already, so insertion sort is linear. */
  for (size_t i = 2; i < n; i++) {
    struct nn_label x = l[i];
    size_t j = i;
    while (j > 1 && strcmp(l[j - 1].name, x.name) > 0) {
      l[j] = l[j - 1];
      j--;
    }
    l[j] = x;
  }
  for (size_t i = 1; i < n; i++) {
    if (strcmp(l[i].name, "__name__") == 0 || (i > 1 && strcmp(l[i - 1].name, l[i].name) == 0))
      return fail(p, at, "duplicate label name \"%s\"", l[i].name);
  }
  return 0;
}

static const char *scan_token(const char *s, const char *e, bool om)
{
  if (om) {
    const char *sp = memchr(s, ' ', (size_t)(e - s));
    return sp ? sp : e;
  }
  while (s < e && !is_ws(*s))
    s++;
  return s;
}

/* Everything after the series text: `value [ts] [# exemplar]`. s is where the value's
 * separator starts, ne the end of the metric name (text format wants whitespace after a
 * name without labels). */
static int parse_rest(struct nn_expfmt_parser *p, const char *s, const char *ne, const char *e,
                      struct nn_expfmt_sample *smp)
{
  bool om = p->fmt == NN_EXPFMT_OPENMETRICS;
  int rc;
  if (om) {
    if (s >= e || *s != ' ')
      return fail(p, s, "expected a space before the value");
    s++;
  } else if (s == ne && (s >= e || !is_ws(*s))) {
    return fail(p, s, "expected whitespace or '{' after the metric name");
  }
  const char *vs = s, *ve = scan_token(s, e, om);
  if (ve == vs)
    return fail(p, vs, "expected a value after the metric");
  if (!parse_float(vs, (size_t)(ve - vs), &smp->value))
    return fail(p, vs, "invalid value \"%.*s\"", (int)(ve - vs), vs);
  if (om && ve < e && ve + 1 == e)
    return fail(p, ve, "trailing space after the value");
  s = om ? ve : skip_ws(ve, e);
  if (om && s < e)
    s++; /* the single space */
  if (s < e && !(om && *s == '#')) {
    const char *ts = s, *te = scan_token(s, e, om);
    if (om) {
      double secs;
      if (!parse_float(ts, (size_t)(te - ts), &secs) || !isfinite(secs) ||
          fabs(secs * 1000.0) >= 9.2e18)
        return fail(p, ts, "invalid timestamp \"%.*s\"", (int)(te - ts), ts);
      smp->ts_ms = (int64_t)(secs * 1000.0);
    } else if (!parse_int64(ts, (size_t)(te - ts), &smp->ts_ms)) {
      return fail(p, ts, "invalid timestamp \"%.*s\"", (int)(te - ts), ts);
    }
    smp->has_ts = true;
    if (om && te < e && te + 1 == e)
      return fail(p, te, "trailing space after the timestamp");
    s = om ? te : skip_ws(te, e);
    if (om && s < e)
      s++;
  }
  if (s < e) {
    /* An exemplar: `# {labels} value [timestamp]`, checked and dropped. */
    if (!om || *s != '#' || s + 2 >= e || s[1] != ' ' || s[2] != '{')
      return fail(p, s, "unexpected text after the %s", smp->has_ts ? "timestamp" : "value");
    const char *x = s + 3;
    size_t dummy = 0;
    if ((rc = parse_labels(p, &x, e, &dummy, false)) < 0)
      return rc;
    if (x >= e || *x != ' ')
      return fail(p, x, "expected a space before the exemplar value");
    x++;
    const char *xe = scan_token(x, e, true);
    double xv;
    if (!parse_float(x, (size_t)(xe - x), &xv))
      return fail(p, x, "invalid exemplar value \"%.*s\"", (int)(xe - x), x);
    if (xe < e) {
      x = xe + 1;
      xe = scan_token(x, e, true);
      if (xe != e || !parse_float(x, (size_t)(xe - x), &xv) || !isfinite(xv))
        return fail(p, x, "invalid exemplar timestamp");
    }
  }
  return 0;
}

/* Sets the family of a sample called name; false for an OpenMetrics `_created` series of a
 * counter, histogram or summary, which is skipped. */
static bool apply_family(const struct nn_expfmt_parser *p, const char *name, size_t namelen,
                         struct nn_expfmt_sample *smp)
{
  if (!in_family(p, name, namelen))
    return true;
  smp->type = p->famtype;
  smp->family = p->family;
  return !(p->fmt == NN_EXPFMT_OPENMETRICS && has_suffix(name, namelen, "_created") &&
           (p->famtype == NN_EXPFMT_COUNTER || p->famtype == NN_EXPFMT_HISTOGRAM ||
            p->famtype == NN_EXPFMT_SUMMARY));
}

/* The fast path: delimits the label block without parsing it (quoted values may hold '}')
 * and offers the line to on_series. NN_EXPFMT_PARSE_LABELS means "take the full path",
 * also for anything malformed, so that errors are reported exactly as the full path finds
 * them. */
static int fast_sample(struct nn_expfmt_parser *p, const char *s, const char *ne, const char *e,
                       const struct nn_expfmt_handler *h, void *ud)
{
  bool om = p->fmt == NN_EXPFMT_OPENMETRICS;
  const char *q = om ? ne : skip_ws(ne, e), *se = ne;
  if (q < e && *q == '{') {
    q++;
    for (;;) {
      while (q < e && *q != '"' && *q != '}')
        q++;
      if (q >= e)
        return NN_EXPFMT_PARSE_LABELS;
      if (*q == '}')
        break;
      for (q++; q < e && *q != '"'; q++)
        if (*q == '\\' && q + 1 < e)
          q++;
      if (q >= e)
        return NN_EXPFMT_PARSE_LABELS;
      q++;
    }
    se = ++q;
    if (!om)
      q = skip_ws(q, e);
  }
  struct nn_expfmt_sample smp = {
      .type = NN_EXPFMT_UNKNOWN, .line = p->lineno, .series = s, .series_len = (size_t)(se - s)};
  if (parse_rest(p, q, ne, e, &smp) < 0) {
    p->err[0] = '\0';
    return NN_EXPFMT_PARSE_LABELS;
  }
  /* A skipped `_created` line still takes the full path, which validates its labels. */
  if (!apply_family(p, s, (size_t)(ne - s), &smp))
    return NN_EXPFMT_PARSE_LABELS;
  return h->on_series(ud, &smp);
}

/* `name{labels} value [ts] [# exemplar]`. */
static int parse_sample(struct nn_expfmt_parser *p, const char *s, const char *e,
                        const struct nn_expfmt_handler *h, void *ud)
{
  bool om = p->fmt == NN_EXPFMT_OPENMETRICS;
  const char *ne = scan_metric_name(s, e);
  size_t n = 0;
  int rc;
  if (ne == s)
    return fail(p, s, "invalid metric name, expected [a-zA-Z_:][a-zA-Z0-9_:]*");
  if (h->on_series && (rc = fast_sample(p, s, ne, e, h, ud)) != NN_EXPFMT_PARSE_LABELS)
    return rc;
  const char *name = s;
  size_t namelen = (size_t)(ne - s);
  struct nn_expfmt_sample smp = {.type = NN_EXPFMT_UNKNOWN, .line = p->lineno, .series = name};
  if ((rc = push_label(p, &n, "__name__", scratch_put(p, name, namelen), s)) < 0)
    return rc;
  s = ne;
  smp.series_len = namelen;
  if (!om)
    s = skip_ws(s, e);
  if (s < e && *s == '{') {
    s++;
    if ((rc = parse_labels(p, &s, e, &n, true)) < 0)
      return rc;
    smp.series_len = (size_t)(s - name);
    if (!om)
      s = skip_ws(s, e);
  }
  if ((rc = parse_rest(p, s, ne, e, &smp)) < 0)
    return rc;
  if ((rc = sort_labels(p, n, name)) < 0)
    return rc;
  if (!apply_family(p, name, namelen, &smp))
    return 0;
  smp.labels = p->labels;
  smp.nlabels = n;
  return h->on_sample(ud, &smp);
}

static bool keyword(const char *s, const char *e, const char *kw, size_t kwlen)
{
  return (size_t)(e - s) > kwlen && memcmp(s, kw, kwlen) == 0 && is_ws(s[kwlen]);
}

static int text_line(struct nn_expfmt_parser *p, const char *s, const char *e,
                     const struct nn_expfmt_handler *h, void *ud)
{
  s = skip_ws(s, e);
  if (s == e)
    return 0;
  if (*s != '#')
    return parse_sample(p, s, e, h, ud);
  s++;
  if (s == e || !is_ws(*s))
    return 0; /* a comment */
  s = skip_ws(s, e);
  if (keyword(s, e, "HELP", 4))
    return parse_meta(p, NN_EXPFMT_META_HELP, s + 5, e, h, ud);
  if (keyword(s, e, "TYPE", 4))
    return parse_meta(p, NN_EXPFMT_META_TYPE, s + 5, e, h, ud);
  return 0;
}

/* Returns 1 for `# EOF`. */
static int om_line(struct nn_expfmt_parser *p, const char *s, const char *e,
                   const struct nn_expfmt_handler *h, void *ud)
{
  if (s == e)
    return fail(p, s, "empty line (not allowed in OpenMetrics)");
  if (*s != '#')
    return parse_sample(p, s, e, h, ud);
  if (e - s == 5 && memcmp(s, "# EOF", 5) == 0)
    return 1;
  if (e - s >= 7 && memcmp(s, "# HELP ", 7) == 0)
    return parse_meta(p, NN_EXPFMT_META_HELP, s + 7, e, h, ud);
  if (e - s >= 7 && memcmp(s, "# TYPE ", 7) == 0)
    return parse_meta(p, NN_EXPFMT_META_TYPE, s + 7, e, h, ud);
  if (e - s >= 7 && memcmp(s, "# UNIT ", 7) == 0)
    return parse_meta(p, NN_EXPFMT_META_UNIT, s + 7, e, h, ud);
  return fail(p, s, "invalid comment: OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF");
}

int nn_expfmt_parse(struct nn_expfmt_parser *p, enum nn_expfmt_format fmt, const char *data,
                    size_t len, const struct nn_expfmt_handler *h, void *ud)
{
  const char *s = data, *end = data + len;
  bool om = fmt == NN_EXPFMT_OPENMETRICS;
  int rc;

  p->fmt = fmt;
  p->err[0] = '\0';
  p->lineno = 0;
  p->famlen = 0;
  p->famtype = NN_EXPFMT_UNKNOWN;
  if (p->family)
    p->family[0] = '\0';
  else if ((rc = set_family(p, "", 0, NN_EXPFMT_UNKNOWN)) < 0)
    return rc;
  p->line_start = s;
  while (s < end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *le = nl ? nl : end;
    p->lineno++;
    p->line_start = s;
    if ((rc = reserve_line(p, (size_t)(le - s))) < 0)
      return rc;
    rc = om ? om_line(p, s, le, h, ud) : text_line(p, s, le, h, ud);
    if (rc == 1 && om) {
      if (nl && nl + 1 != end) {
        p->lineno++;
        p->line_start = nl + 1;
        return fail(p, nl + 1, "unexpected data after # EOF");
      }
      return 0;
    }
    if (rc != 0)
      return rc;
    if (!nl && om)
      return fail(p, le, "expected a newline at the end of the line");
    s = nl ? nl + 1 : end;
  }
  if (om) {
    p->lineno++;
    p->line_start = end;
    return fail(p, end, "data does not end with # EOF");
  }
  return 0;
}
