/* SPDX-License-Identifier: Apache-2.0 */
/* LogQL metric queries: a parser for the subset in docs/loki-api.md (log range aggregations
 * over a selector with line filters, vector aggregations, arithmetic with numbers) and an
 * evaluator. A range aggregation reads each stream's entries in the query's time range once:
 * every entry adds itself to the steps whose window holds it through a difference array,
 * so the cost is entries + streams x steps, not entries x steps. Series flow one at a time
 * from a range aggregation through arithmetic into the aggregation above, so memory is
 * bounded by the groups kept, not by the streams read. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"

#define MAX_DEPTH  64
#define MAX_GROUPS 64 /* label names in one by/without clause */
#define MAX_K      1000000
/* Bounds that keep every window computation inside int64: durations up to ~31 years, query
 * times within ~95 years of 1970. */
#define MAX_DURATION INT64_C(1000000000000000000)
#define MAX_TIME     INT64_C(3000000000000000000)

/* ---- parser ---- */

struct mp {
  const char *s;
  size_t n, i;
  int depth, nbin; /* nesting, and arithmetic nodes on vectors (each costs a buffer) */
  char *err;
  size_t errlen;
};

static int mfail(struct mp *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int mfail(struct mp *p, size_t at, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = nn__logstore_vparse_fail(p->s, p->n, at, p->err, p->errlen, fmt, ap);
  va_end(ap);
  return rc;
}

static void mskip(struct mp *p)
{
  p->i = nn__logstore_skip_ws(p->s, p->n, p->i);
}

static bool ident_char(char c, bool first)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (!first && c >= '0' && c <= '9');
}

/* Reads an identifier at p->i into buf (truncated names never match a keyword). */
static size_t ident(struct mp *p, char *buf, size_t cap)
{
  size_t st = p->i;
  while (p->i < p->n && ident_char(p->s[p->i], p->i == st))
    p->i++;
  size_t l = p->i - st;
  size_t c = l < cap - 1 ? l : cap - 1;
  memcpy(buf, p->s + st, c);
  buf[c] = '\0';
  return l;
}

static bool peek(struct mp *p, char c)
{
  mskip(p);
  return p->i < p->n && p->s[p->i] == c;
}

static int expect(struct mp *p, char c, const char *what)
{
  mskip(p);
  if (p->i >= p->n || p->s[p->i] != c) {
    if (p->i >= p->n)
      return mfail(p, p->i, "syntax error: unexpected end of query, expected %s", what);
    return mfail(p, p->i, "syntax error: unexpected '%c', expected %s", p->s[p->i], what);
  }
  p->i++;
  return 0;
}

/* A Prometheus duration: one or more <int><unit> with units y w d h m s ms us/µs ns. */
static int duration(struct mp *p, int64_t *out)
{
  size_t st = p->i;
  int64_t total = 0;
  bool any = false;
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
    int64_t v = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
      if (v > INT64_MAX / 10 - 10)
        return mfail(p, st, "duration out of range");
      v = v * 10 + (p->s[p->i++] - '0');
    }
    int64_t unit;
    const char *u = p->s + p->i;
    size_t left = p->n - p->i;
    if (left >= 2 && memcmp(u, "ms", 2) == 0) {
      unit = 1000000;
      p->i += 2;
    } else if (left >= 2 && memcmp(u, "us", 2) == 0) {
      unit = 1000;
      p->i += 2;
    } else if (left >= 2 && memcmp(u, "ns", 2) == 0) {
      unit = 1;
      p->i += 2;
    } else if (left >= 1 &&
               (*u == 's' || *u == 'm' || *u == 'h' || *u == 'd' || *u == 'w' || *u == 'y')) {
      static const int64_t sec = 1000000000;
      unit = *u == 's'   ? sec
             : *u == 'm' ? 60 * sec
             : *u == 'h' ? 3600 * sec
             : *u == 'd' ? 86400 * sec
             : *u == 'w' ? 7 * 86400 * sec
                         : 365 * 86400 * sec;
      p->i++;
    } else {
      return mfail(p, p->i, "syntax error: a duration needs a unit (ms, s, m, h, d, w, y)");
    }
    if (v > (MAX_DURATION - total) / unit)
      return mfail(p, st, "duration out of range");
    total += v * unit;
    any = true;
  }
  if (!any)
    return mfail(p, st, "syntax error: expected a duration such as 5m");
  *out = total;
  return 0;
}

static int number(struct mp *p, double *out)
{
  size_t st = p->i;
  char buf[64];
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
    p->i++;
  if (p->i < p->n && p->s[p->i] == '.') {
    p->i++;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
      p->i++;
  }
  if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
    size_t e = p->i + 1;
    if (e < p->n && (p->s[e] == '+' || p->s[e] == '-'))
      e++;
    if (e < p->n && p->s[e] >= '0' && p->s[e] <= '9') {
      p->i = e;
      while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
        p->i++;
    }
  }
  size_t l = p->i - st;
  if (l == 0 || l >= sizeof(buf) || (l == 1 && p->s[st] == '.'))
    return mfail(p, st, "syntax error: invalid number");
  memcpy(buf, p->s + st, l);
  buf[l] = '\0';
  *out = strtod(buf, NULL);
  return 0;
}

static struct nn__ls_mexpr *node(enum nn__ls_mtype t, size_t pos)
{
  struct nn__ls_mexpr *e = calloc(1, sizeof(*e));
  if (e) {
    e->type = t;
    e->pos = pos;
  }
  return e;
}

void nn__logstore_mexpr_free(struct nn__ls_mexpr *e)
{
  if (!e)
    return;
  nn__logstore_mexpr_free(e->a);
  nn__logstore_mexpr_free(e->b);
  nn__logstore_query_fini(&e->q);
  for (size_t i = 0; i < e->nlabels; i++)
    free(e->labels[i]);
  free(e->labels);
  free(e);
}

static int expr(struct mp *p, struct nn__ls_mexpr **out);

static const struct {
  const char *name;
  enum nn__ls_rfn fn;
} range_fns[] = {
    {"count_over_time", LS_RF_COUNT},     {"rate", LS_RF_RATE},
    {"bytes_over_time", LS_RF_BYTES},     {"bytes_rate", LS_RF_BYTES_RATE},
    {"absent_over_time", LS_RF_ABSENT},   {"sum_over_time", LS_RF_SUM},
    {"avg_over_time", LS_RF_AVG},         {"max_over_time", LS_RF_MAX},
    {"min_over_time", LS_RF_MIN},         {"first_over_time", LS_RF_FIRST},
    {"last_over_time", LS_RF_LAST},       {"stdvar_over_time", LS_RF_STDVAR},
    {"stddev_over_time", LS_RF_STDDEV},   {"quantile_over_time", LS_RF_QUANTILE},
    {"rate_counter", LS_RF_RATE_COUNTER},
};
static const struct {
  const char *name;
  enum nn__ls_agg op;
} agg_ops[] = {
    {"sum", LS_AG_SUM}, {"count", LS_AG_COUNT}, {"min", LS_AG_MIN},         {"max", LS_AG_MAX},
    {"avg", LS_AG_AVG}, {"topk", LS_AG_TOPK},   {"bottomk", LS_AG_BOTTOMK},
};
/* LogQL functions and aggregations outside the subset: named in the 400. */
static const char *const unsupported_fns[] = {
    "stddev", "stdvar", "sort", "sort_desc", "label_replace", "vector",      "approx_topk",
    "absent", "bool",   "on",   "ignoring",  "group_left",    "group_right",
};

/* The log query of a range aggregation: text up to the '[' of its range outside strings. */
static int log_range(struct mp *p, struct nn__ls_mexpr *e)
{
  mskip(p);
  size_t st = p->i;
  bool paren = false;
  if (p->i < p->n && p->s[p->i] == '(') { /* count_over_time(({a="b"} |= "x")[5m]) */
    paren = true;
    st = ++p->i;
    mskip(p);
  }
  if (p->i >= p->n || p->s[p->i] != '{')
    return mfail(p, p->i,
                 "syntax error: a range aggregation takes a log query such as {app=\"x\"} |= "
                 "\"err\" followed by a range such as [5m]");
  size_t k = p->i;
  char q = 0;
  int depth = 0; /* parentheses of stages: unwrap duration(x), (a > 1 or b = "c") */
  for (; k < p->n; k++) {
    char c = p->s[k];
    if (q) {
      if (c == '\\' && q == '"' && k + 1 < p->n)
        k++;
      else if (c == q)
        q = 0;
      continue;
    }
    if (c == '"' || c == '`')
      q = c;
    else if (c == '#') /* a comment runs to the end of the line */
      while (k + 1 < p->n && p->s[k + 1] != '\n')
        k++;
    else if (c == '(' && depth < 64)
      depth++;
    else if (c == ')' && depth > 0)
      depth--;
    else if (c == '[' || c == ')' || c == '(')
      break;
  }
  if (k >= p->n)
    return mfail(p, st, q ? "unterminated string" : "syntax error: expected a range such as [5m]");
  if (p->s[k] == '(')
    return mfail(p, k, "syntax error: unexpected '(' in a log query");
  int rc = nn__logstore_query_parse_span(p->s, st, k, &e->q, p->err, p->errlen);
  if (rc < 0)
    return rc;
  p->i = k;
  if (paren && (rc = expect(p, ')', "')' after the log query")) < 0)
    return rc;
  if ((rc = expect(p, '[', "a range such as [5m]")) < 0)
    return rc;
  mskip(p);
  if ((rc = duration(p, &e->range_ns)) < 0)
    return rc;
  if (e->range_ns <= 0)
    return mfail(p, p->i, "the range must be positive");
  if ((rc = expect(p, ']', "']' after the range")) < 0)
    return rc;
  mskip(p);
  size_t save = p->i;
  char w[16];
  ident(p, w, sizeof(w));
  if (strcmp(w, "offset") == 0) {
    mskip(p);
    bool neg = p->i < p->n && p->s[p->i] == '-';
    if (neg)
      p->i++;
    if ((rc = duration(p, &e->offset_ns)) < 0)
      return rc;
    if (neg)
      e->offset_ns = -e->offset_ns;
  } else {
    p->i = save;
  }
  return 0;
}

static int grouping(struct mp *p, struct nn__ls_mexpr *e, size_t kwpos)
{
  if (e->grouped)
    return mfail(p, kwpos, "syntax error: a second by/without clause");
  e->grouped = true;
  int rc = expect(p, '(', "'(' after by/without");
  if (rc < 0)
    return rc;
  if (!(e->labels = calloc(MAX_GROUPS, sizeof(*e->labels))))
    return NN_ENOMEM;
  for (;;) {
    mskip(p);
    if (p->i < p->n && p->s[p->i] == ')') {
      p->i++;
      return 0;
    }
    size_t st = p->i;
    char name[256];
    size_t l = ident(p, name, sizeof(name));
    if (l == 0)
      return mfail(p, st, "syntax error: expected a label name");
    if (l >= sizeof(name))
      return mfail(p, st, "label name longer than 255 bytes");
    if (e->nlabels == MAX_GROUPS)
      return mfail(p, st, "more than %d labels in by/without", MAX_GROUPS);
    if (!(e->labels[e->nlabels] = strdup(name)))
      return NN_ENOMEM;
    e->nlabels++;
    mskip(p);
    if (p->i < p->n && p->s[p->i] == ',')
      p->i++;
    else if (p->i >= p->n || p->s[p->i] != ')')
      return mfail(p, p->i, "syntax error: expected ',' or ')' in the label list");
  }
}

static int primary(struct mp *p, struct nn__ls_mexpr **out)
{
  mskip(p);
  size_t st = p->i;
  int rc;
  *out = NULL;
  if (p->i >= p->n)
    return mfail(p, p->i, "syntax error: unexpected end of query");
  char c = p->s[p->i];
  if ((c >= '0' && c <= '9') || c == '.') {
    struct nn__ls_mexpr *e = node(LS_M_NUM, st);
    if (!e)
      return NN_ENOMEM;
    *out = e;
    return number(p, &e->num);
  }
  if (c == '(') {
    p->i++;
    if ((rc = expr(p, out)) < 0)
      return rc;
    return expect(p, ')', "')'");
  }
  if (c == '{')
    return mfail(p, st,
                 "a log query cannot be used here: wrap it in a range aggregation such as "
                 "count_over_time({app=\"x\"}[5m])");
  if (c == '"' || c == '`')
    return mfail(p, st, "syntax error: unexpected string");
  char name[64];
  size_t l = ident(p, name, sizeof(name));
  if (l == 0)
    return mfail(p, st, "syntax error: unexpected '%c'", c);
  for (size_t i = 0; i < sizeof(range_fns) / sizeof(range_fns[0]); i++) {
    if (l != strlen(range_fns[i].name) || strcmp(name, range_fns[i].name) != 0)
      continue;
    struct nn__ls_mexpr *e = node(LS_M_RANGE, st);
    if (!e)
      return NN_ENOMEM;
    *out = e;
    e->fn = range_fns[i].fn;
    if ((rc = expect(p, '(', "'(' after the function name")) < 0)
      return rc;
    if (e->fn == LS_RF_QUANTILE) {
      mskip(p);
      size_t ks = p->i;
      bool neg = p->i < p->n && p->s[p->i] == '-';
      if (neg)
        p->i++;
      if ((rc = number(p, &e->phi)) < 0)
        return mfail(p, ks, "syntax error: quantile_over_time needs a number such as 0.99 first");
      if (neg)
        e->phi = -e->phi;
      if ((rc = expect(p, ',', "',' after the quantile")) < 0)
        return rc;
    }
    size_t lq = p->i;
    if ((rc = log_range(p, e)) < 0)
      return rc;
    const char *ul;
    bool unwrapped = nn__logstore_pipeline_unwrap(e->q.pl, &ul) != LS_CONV_NONE;
    bool needs = e->fn >= LS_RF_SUM;
    if (needs && !unwrapped)
      return mfail(p, st, "invalid aggregation %s without unwrap: add | unwrap <label>",
                   range_fns[i].name);
    if (unwrapped && e->fn != LS_RF_RATE && !needs)
      return mfail(p, lq, "invalid aggregation %s with unwrap", range_fns[i].name);
    mskip(p);
    if (p->i < p->n && p->s[p->i] == '|')
      return mfail(p, p->i, "syntax error: pipeline stages go before the range");
    if (p->i < p->n && p->s[p->i] == ',')
      return mfail(p, p->i, "syntax error: %s takes one argument", range_fns[i].name);
    if ((rc = expect(p, ')', "')' after the range")) < 0)
      return rc;
    size_t save = p->i;
    mskip(p);
    char w[16];
    size_t kw = p->i;
    ident(p, w, sizeof(w));
    if (strcmp(w, "by") == 0 || strcmp(w, "without") == 0) {
      if (!unwrapped)
        return mfail(p, kw, "unsupported: %s after a range aggregation without unwrap", w);
      e->without = w[0] == 'w';
      return grouping(p, e, kw);
    }
    p->i = save;
    return 0;
  }
  for (size_t i = 0; i < sizeof(agg_ops) / sizeof(agg_ops[0]); i++) {
    if (l != strlen(agg_ops[i].name) || strcmp(name, agg_ops[i].name) != 0)
      continue;
    struct nn__ls_mexpr *e = node(LS_M_AGG, st);
    if (!e)
      return NN_ENOMEM;
    *out = e;
    e->op = agg_ops[i].op;
    mskip(p);
    size_t kw = p->i;
    char w[16];
    ident(p, w, sizeof(w));
    if (strcmp(w, "by") == 0 || strcmp(w, "without") == 0) {
      e->without = w[0] == 'w';
      if ((rc = grouping(p, e, kw)) < 0)
        return rc;
    } else {
      p->i = kw;
    }
    if ((rc = expect(p, '(', "'(' after the aggregation")) < 0)
      return rc;
    if (e->op == LS_AG_TOPK || e->op == LS_AG_BOTTOMK) {
      mskip(p);
      size_t ks = p->i;
      double k;
      if ((rc = number(p, &k)) < 0)
        return mfail(p, ks, "syntax error: %s needs a number as its first argument", name);
      if (!(k >= 1 && k <= MAX_K) || k != floor(k))
        return mfail(p, ks, "%s's parameter must be an integer from 1 to %d", name, MAX_K);
      e->k = (int64_t)k;
      if ((rc = expect(p, ',', "',' after the parameter")) < 0)
        return rc;
    }
    if ((rc = expr(p, &e->a)) < 0)
      return rc;
    if (e->a->type == LS_M_NUM)
      return mfail(p, e->a->pos, "%s needs a vector, not a number", name);
    if (peek(p, ','))
      return mfail(p, p->i, "syntax error: %s takes %s", name,
                   e->op == LS_AG_TOPK || e->op == LS_AG_BOTTOMK ? "two arguments"
                                                                 : "one argument");
    if ((rc = expect(p, ')', "')' after the aggregation's argument")) < 0)
      return rc;
    size_t save = p->i;
    mskip(p);
    kw = p->i;
    ident(p, w, sizeof(w));
    if (strcmp(w, "by") == 0 || strcmp(w, "without") == 0) {
      e->without = w[0] == 'w';
      if ((rc = grouping(p, e, kw)) < 0)
        return rc;
    } else {
      p->i = save;
    }
    return 0;
  }
  for (size_t i = 0; i < sizeof(unsupported_fns) / sizeof(unsupported_fns[0]); i++)
    if (strcmp(name, unsupported_fns[i]) == 0)
      return mfail(p, st, "unsupported: %s is not in the supported LogQL subset", name);
  return mfail(p, st, "syntax error: unknown function or keyword %.*s", (int)(l < 60 ? l : 60),
               p->s + st);
}

static double arith(char op, double x, double y)
{
  switch (op) {
  case '+': return x + y;
  case '-': return x - y;
  case '*': return x * y;
  case '/': return x / y;
  case '%': return fmod(x, y);
  default: return pow(x, y);
  }
}

/* a op b: numbers fold, a vector with a number nests, two vectors are refused. */
static int binary(struct mp *p, char op, size_t pos, struct nn__ls_mexpr *a, struct nn__ls_mexpr *b,
                  struct nn__ls_mexpr **out)
{
  *out = NULL;
  if (a->type == LS_M_NUM && b->type == LS_M_NUM) {
    a->num = arith(op, a->num, b->num);
    nn__logstore_mexpr_free(b);
    *out = a;
    return 0;
  }
  if (a->type != LS_M_NUM && b->type != LS_M_NUM) {
    nn__logstore_mexpr_free(a);
    nn__logstore_mexpr_free(b);
    return mfail(p, pos, "unsupported: binary operations between two vectors ('%c')", op);
  }
  /* A chain "x * 1 * 1 ..." nests one node per operator: bound it like nesting, so neither
   * the evaluator's recursion nor its per-node buffers grow with the query's length. */
  if (++p->nbin > MAX_DEPTH) {
    nn__logstore_mexpr_free(a);
    nn__logstore_mexpr_free(b);
    return mfail(p, pos, "more than %d arithmetic operations on a vector", MAX_DEPTH);
  }
  struct nn__ls_mexpr *e = node(LS_M_BIN, pos);
  if (!e) {
    nn__logstore_mexpr_free(a);
    nn__logstore_mexpr_free(b);
    return NN_ENOMEM;
  }
  e->binop = op;
  e->a = a;
  e->b = b;
  *out = e;
  return 0;
}

static int unary(struct mp *p, struct nn__ls_mexpr **out);

/* primary ('^' unary)? : right-associative, binds tighter than a unary minus. */
static int power(struct mp *p, struct nn__ls_mexpr **out)
{
  int rc = primary(p, out);
  if (rc < 0)
    return rc;
  if (peek(p, '^')) {
    size_t pos = p->i++;
    struct nn__ls_mexpr *b = NULL;
    if ((rc = unary(p, &b)) < 0) {
      nn__logstore_mexpr_free(b);
      return rc;
    }
    struct nn__ls_mexpr *a = *out;
    return binary(p, '^', pos, a, b, out);
  }
  return 0;
}

static int unary(struct mp *p, struct nn__ls_mexpr **out)
{
  *out = NULL;
  if (++p->depth > MAX_DEPTH)
    return mfail(p, p->i, "query nested deeper than %d", MAX_DEPTH);
  int rc;
  mskip(p);
  if (p->i < p->n && (p->s[p->i] == '-' || p->s[p->i] == '+')) {
    char op = p->s[p->i];
    size_t pos = p->i++;
    struct nn__ls_mexpr *x = NULL;
    if ((rc = unary(p, &x)) < 0) {
      nn__logstore_mexpr_free(x);
      return rc;
    }
    if (op == '+') {
      *out = x;
    } else {
      struct nn__ls_mexpr *zero = node(LS_M_NUM, pos);
      if (!zero) {
        nn__logstore_mexpr_free(x);
        return NN_ENOMEM;
      }
      rc = binary(p, '-', pos, zero, x, out);
    }
  } else {
    rc = power(p, out);
  }
  p->depth--;
  return rc;
}

static bool at_op(struct mp *p, const char *ops, char *op)
{
  mskip(p);
  if (p->i >= p->n || !strchr(ops, p->s[p->i]) || p->s[p->i] == '\0')
    return false;
  /* "!=" and "=~" are not arithmetic; they are handled as unsupported comparisons. */
  *op = p->s[p->i];
  return true;
}

static int level(struct mp *p, const char *ops, int (*sub)(struct mp *, struct nn__ls_mexpr **),
                 struct nn__ls_mexpr **out)
{
  int rc = sub(p, out);
  char op;
  while (rc == 0 && at_op(p, ops, &op)) {
    size_t pos = p->i++;
    struct nn__ls_mexpr *b = NULL;
    if ((rc = sub(p, &b)) < 0) {
      nn__logstore_mexpr_free(b);
      break;
    }
    struct nn__ls_mexpr *a = *out;
    rc = binary(p, op, pos, a, b, out);
  }
  return rc;
}

static int muldiv(struct mp *p, struct nn__ls_mexpr **out)
{
  return level(p, "*/%", unary, out);
}

static int expr(struct mp *p, struct nn__ls_mexpr **out)
{
  if (++p->depth > MAX_DEPTH)
    return mfail(p, p->i, "query nested deeper than %d", MAX_DEPTH);
  int rc = level(p, "+-", muldiv, out);
  p->depth--;
  return rc;
}

int nn__logstore_metric_parse(const char *text, size_t len, struct nn__ls_mexpr **out, char *err,
                              size_t errlen)
{
  struct mp p = {text, len, 0, 0, 0, err, errlen};
  *out = NULL;
  if (errlen)
    err[0] = '\0';
  if (len > 65536)
    return mfail(&p, 0, "query is %zu bytes, at most 65536 allowed", len);
  if (memchr(text, '\0', len))
    return mfail(&p, (size_t)((const char *)memchr(text, '\0', len) - text), "NUL byte in query");
  struct nn__ls_mexpr *e = NULL;
  int rc = expr(&p, &e);
  if (rc == 0) {
    mskip(&p);
    if (p.i < p.n) {
      char c = p.s[p.i];
      if (c == '=' || c == '!' || c == '<' || c == '>')
        rc = mfail(&p, p.i, "unsupported: comparison operators");
      else if (ident_char(c, true))
        rc = mfail(&p, p.i, "unsupported: %.*s (set operators and vector matching)",
                   (int)(p.n - p.i < 16 ? p.n - p.i : 16), p.s + p.i);
      else
        rc = mfail(&p, p.i, "syntax error: unexpected '%c'", c);
    } else if (e->type == LS_M_NUM) {
      rc = mfail(&p, 0,
                 "unsupported: a query of numbers only; a metric query needs a range "
                 "aggregation such as count_over_time({app=\"x\"}[5m])");
    }
  }
  if (rc < 0) {
    nn__logstore_mexpr_free(e);
    return rc;
  }
  *out = e;
  return 0;
}

bool nn_logstore_is_log_query(const char *query)
{
  struct mp p = {query, query ? strlen(query) : 0, 0, 0, 0, NULL, 0};
  mskip(&p);
  return p.i < p.n && p.s[p.i] == '{';
}

/* ---- evaluation ---- */

/* A series on its way up the tree: v[k] is meaningful where c[k] > 0 (c counts the input
 * series folded into the point, 1 for a range aggregation's own). */
typedef int (*emit_fn)(void *ud, const struct nn_label *labels, size_t nl, const double *v,
                       const uint32_t *c);

struct ev {
  struct nn_logstore *s;
  const struct nn__ls_tenant *t;
  int64_t start, step;
  size_t np;
  size_t mem; /* bytes held by aggregation groups, against cfg.query_max_bytes */
  struct nn_logstore_query_stats *stats;
  char *err;
  size_t errlen;
  /* A sum whose argument is a range aggregation over a pipeline: its grouping applies to
   * each line's labels already (as Loki injects it), so that a high-cardinality pipeline
   * such as | json yields one series per group, not one per distinct label set. */
  const struct nn__ls_mexpr *inject;
};

static int mem_take(struct ev *ev, size_t n)
{
  if (ev->mem + n > ev->s->cfg.query_max_bytes) {
    snprintf(ev->err, ev->errlen,
             "the query needs more than %zu bytes of memory; narrow the selector, the time range "
             "or the grouping, or raise the step",
             ev->s->cfg.query_max_bytes);
    return NN_ELIMIT;
  }
  ev->mem += n;
  return 0;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

struct pacc;
struct range_acc {
  const struct nn__ls_mexpr *e;
  struct ev *ev;
  int64_t *dc, *db; /* difference arrays, np + 1 */
  struct pacc *pa;  /* a pipeline's series, or NULL */
};

/* Adds an entry at ts to the difference arrays of the steps t with t - off - range < ts <=
 * t - off. */
static void diff_add(const struct ev *ev, const struct nn__ls_mexpr *e, int64_t *dc, int64_t *db,
                     int64_t ts, size_t len)
{
  int64_t u = ts + e->offset_ns - ev->start;
  int64_t lo = ceil_div(u, ev->step);
  int64_t hi = ceil_div(u + e->range_ns, ev->step); /* exclusive */
  if (lo < 0)
    lo = 0;
  if (hi > (int64_t)ev->np)
    hi = (int64_t)ev->np;
  if (lo >= hi)
    return;
  dc[lo]++;
  dc[hi]--;
  db[lo] += (int64_t)len;
  db[hi] -= (int64_t)len;
}

static int pacc_add(struct pacc *pa, const struct nn__ls_stream *st, int64_t ts, const char *line,
                    size_t len);

static int range_add(struct range_acc *a, const struct nn__ls_stream *st, int64_t ts,
                     const char *line, size_t len)
{
  if (a->pa)
    return pacc_add(a->pa, st, ts, line, len);
  diff_add(a->ev, a->e, a->dc, a->db, ts, len);
  return 0;
}

/* Reads st's entries in (lo, hi] that pass the filters, once. */
static int range_scan(struct range_acc *a, const struct nn__ls_stream *st, int64_t lo, int64_t hi)
{
  struct ev *ev = a->ev;
  const struct nn__ls_query *q = &a->e->q;
  int rc;
  for (size_t k = 0; k < st->nchunks; k++) {
    const struct nn__ls_chunk *c = &st->chunks[k];
    if (c->max_t <= lo || c->min_t > hi)
      continue;
    ev->stats->chunks_scanned++;
    if ((rc = nn__logstore_chunk_decompress(c->data, c->len, c->raw_len, &ev->s->raw)) < 0) {
      snprintf(ev->err, ev->errlen, "chunk of stream %s is unreadable: %s", st->key,
               nn_strerror(rc));
      return rc;
    }
    struct nn__ls_body_iter it = {(const uint8_t *)ev->s->raw.data, ev->s->raw.len, 0, 0, false};
    struct nn__ls_ent e;
    while ((rc = nn__logstore_body_next(&it, &e)) == 1) {
      if (e.ts <= lo || e.ts > hi)
        continue;
      ev->stats->lines_scanned++;
      ev->stats->bytes_scanned += e.len;
      if (nn__logstore_filters_match(q, e.line, e.len) &&
          (rc = range_add(a, st, e.ts, e.line, e.len)) < 0)
        return rc;
    }
    if (rc < 0) {
      snprintf(ev->err, ev->errlen, "chunk of stream %s is corrupt", st->key);
      return rc;
    }
  }
  const struct nn__ls_head *h = &st->head;
  size_t from = 0, to = h->n;
  while (from < to) { /* first head entry after lo (the head is sorted by ts) */
    size_t mid = from + (to - from) / 2;
    if (h->e[mid].ts <= lo)
      from = mid + 1;
    else
      to = mid;
  }
  for (size_t k = from; k < h->n && h->e[k].ts <= hi; k++) {
    const struct nn__ls_hentry *he = &h->e[k];
    const char *line = (const char *)h->buf + he->off;
    ev->stats->lines_scanned++;
    ev->stats->bytes_scanned += he->len;
    if (nn__logstore_filters_match(q, line, he->len) &&
        (rc = range_add(a, st, he->ts, line, he->len)) < 0)
      return rc;
  }
  return 0;
}

/* absent_over_time's one series, labelled by the selector's equality matchers, 1 at the
 * steps where nothing matched (total[k] == 0). v and c are scratch of np. */
static int emit_absent(struct ev *ev, const struct nn__ls_mexpr *e, const int64_t *total, double *v,
                       uint32_t *c, emit_fn emit, void *ud)
{
  struct nn_label ls[64];
  size_t nl = 0;
  bool any = false;
  for (size_t k = 0; k < e->q.nm && nl < 64; k++) {
    const struct nn_matcher *m = &e->q.m[k];
    if (m->type != NN_MATCH_EQ || !m->value[0])
      continue;
    bool dup = false;
    for (size_t j = 0; j < nl; j++)
      dup |= strcmp(ls[j].name, m->name) == 0;
    if (!dup)
      ls[nl++] = (struct nn_label){m->name, m->value};
  }
  nn_labels_canonicalize(ls, nl);
  for (size_t k = 0; k < ev->np; k++) {
    c[k] = total[k] == 0;
    v[k] = 1;
    any |= c[k] > 0;
  }
  return any ? emit(ud, ls, nl, v, c) : 0;
}

static int eval_range_pipeline(struct ev *ev, const struct nn__ls_mexpr *e, emit_fn emit, void *ud);

static int eval_range(struct ev *ev, const struct nn__ls_mexpr *e, emit_fn emit, void *ud)
{
  if (e->q.pl)
    return eval_range_pipeline(ev, e, emit, ud);
  int64_t last = ev->start + (int64_t)(ev->np - 1) * ev->step;
  int64_t lo = ev->start - e->offset_ns - e->range_ns, hi = last - e->offset_ns;
  struct nn__ls_stream **streams = NULL;
  size_t ns = 0;
  size_t np = ev->np;
  struct range_acc a = {e, ev, calloc(np + 1, sizeof(int64_t)), calloc(np + 1, sizeof(int64_t)),
                        NULL};
  double *v = calloc(np, sizeof(double));
  uint32_t *c = calloc(np, sizeof(uint32_t));
  int64_t *total = e->fn == LS_RF_ABSENT ? calloc(np, sizeof(int64_t)) : NULL;
  int rc = 0;
  if (!a.dc || !a.db || !v || !c || (e->fn == LS_RF_ABSENT && !total)) {
    rc = NN_ENOMEM;
    goto out;
  }
  if (ev->t && (rc = nn__logstore_select_streams(ev->s, ev->t, e->q.m, e->q.nm, lo + 1,
                                                 hi == INT64_MAX ? hi : hi + 1, &streams, &ns)) < 0)
    goto out;
  double secs = (double)e->range_ns / 1e9;
  for (size_t i = 0; i < ns; i++) {
    memset(a.dc, 0, (np + 1) * sizeof(int64_t));
    memset(a.db, 0, (np + 1) * sizeof(int64_t));
    if ((rc = range_scan(&a, streams[i], lo, hi)) < 0)
      goto out;
    int64_t cnt = 0, bytes = 0;
    bool any = false;
    for (size_t k = 0; k < np; k++) {
      cnt += a.dc[k];
      bytes += a.db[k];
      c[k] = cnt > 0;
      any |= cnt > 0;
      if (total)
        total[k] += cnt;
      switch (e->fn) {
      case LS_RF_COUNT: v[k] = (double)cnt; break;
      case LS_RF_RATE: v[k] = (double)cnt / secs; break;
      case LS_RF_BYTES: v[k] = (double)bytes; break;
      case LS_RF_BYTES_RATE: v[k] = (double)bytes / secs; break;
      default: break; /* LS_RF_ABSENT; the unwrap ones need a pipeline */
      }
    }
    if (any && !total && (rc = emit(ud, streams[i]->labels, streams[i]->nlabels, v, c)) < 0)
      goto out;
  }
  if (total)
    rc = emit_absent(ev, e, total, v, c, emit, ud);
out:
  free(streams);
  free(a.dc);
  free(a.db);
  free(v);
  free(c);
  free(total);
  return rc;
}

/* ---- range aggregations over a pipeline ---- */

/* A range aggregation's input with a pipeline is keyed by each line's label set after the
 * stages (or its by/without grouping), not by stream: one stream can feed many series and,
 * after drop/keep or grouping, many streams one. */
struct smp {
  int64_t ts;
  double v;
  uint64_t ord; /* arrival order: equal timestamps keep it (first/last_over_time) */
};
struct pser {
  struct nn_label *labels; /* one allocation with the strings */
  size_t nl;
  char *key;
  bool err;         /* carries __error__ */
  int64_t *dc, *db; /* without unwrap: difference arrays, np + 1 */
  struct smp *s;    /* with unwrap: its samples */
  size_t ns, cs;
};
struct pacc {
  struct ev *ev;
  const struct nn__ls_mexpr *e;
  struct nn__ls_prun run;
  bool unwrap;
  struct pser *ser;
  size_t nser, cser;
  struct nn__ls_map map; /* key -> index + 1 */
  uint64_t ord;
  /* The grouping: the range aggregation's, and without one (or with without) the unwrapped
   * label is left out of the series, as Loki does. */
  char **groups;
  size_t ngroups;
  bool grouped, without;
};

static int pacc_series(struct pacc *pa, size_t nl, struct pser **out)
{
  struct ev *ev = pa->ev;
  const struct nn_buf *k = &pa->run.key;
  const char *kd = k->data ? k->data : "";
  uintptr_t idx = (uintptr_t)nn__logstore_map_get(&pa->map, kd, k->len);
  if (idx) {
    *out = &pa->ser[idx - 1];
    return 0;
  }
  size_t arrays = pa->unwrap ? 0 : 2 * (ev->np + 1) * sizeof(int64_t);
  int rc =
      mem_take(ev, sizeof(struct pser) + nl * sizeof(struct nn_label) + 2 * k->len + arrays + 64);
  if (rc < 0)
    return rc;
  if (pa->nser == pa->cser) {
    size_t nc = pa->cser ? pa->cser * 2 : 16;
    struct pser *ns = realloc(pa->ser, nc * sizeof(*ns));
    if (!ns)
      return NN_ENOMEM;
    pa->ser = ns;
    pa->cser = nc;
  }
  struct pser *sr = &pa->ser[pa->nser];
  memset(sr, 0, sizeof(*sr));
  char *mem = malloc(nl * sizeof(struct nn_label) + k->len + 1);
  sr->key = malloc(k->len + 1);
  if (!pa->unwrap) {
    sr->dc = calloc(ev->np + 1, sizeof(int64_t));
    sr->db = calloc(ev->np + 1, sizeof(int64_t));
  }
  pa->nser++; /* freed with the others even when incomplete */
  sr->labels = (struct nn_label *)(void *)mem;
  if (!mem || !sr->key || (!pa->unwrap && (!sr->dc || !sr->db)))
    return NN_ENOMEM;
  memcpy(sr->key, kd, k->len);
  char *w = mem + nl * sizeof(struct nn_label);
  memcpy(w, kd, k->len); /* name\0value\0... in label order */
  for (size_t i = 0; i < nl; i++) {
    sr->labels[i].name = w;
    w += strlen(w) + 1;
    sr->labels[i].value = w;
    w += strlen(w) + 1;
    sr->err |= strcmp(sr->labels[i].name, "__error__") == 0;
  }
  sr->nl = nl;
  if ((rc = nn__logstore_map_put(&pa->map, sr->key, k->len, (void *)(uintptr_t)pa->nser)) < 0)
    return rc;
  *out = sr;
  return 0;
}

static int pacc_limit(struct pacc *pa, int rc)
{
  if (rc == NN_ELIMIT)
    snprintf(pa->ev->err, pa->ev->errlen,
             "the query needs more than %zu bytes of memory; narrow the selector, the time range "
             "or the grouping, or raise the step",
             pa->ev->s->cfg.query_max_bytes);
  return rc;
}

static int pacc_add(struct pacc *pa, const struct nn__ls_stream *st, int64_t ts, const char *line,
                    size_t len)
{
  const struct nn__ls_mexpr *e = pa->e;
  double v = 0;
  size_t nl;
  struct pser *sr;
  int rc = nn__logstore_prun_line(&pa->run, st->labels, st->nlabels, line, len);
  if (rc > 0 && pa->unwrap)
    rc = nn__logstore_prun_unwrap(&pa->run, &v);
  if (rc <= 0)
    return pacc_limit(pa, rc);
  if ((rc = nn__logstore_prun_labels(&pa->run, pa->groups, pa->ngroups, pa->grouped, pa->without,
                                     &nl)) < 0 ||
      (rc = pacc_series(pa, nl, &sr)) < 0)
    return pacc_limit(pa, rc);
  if (!pa->unwrap) {
    diff_add(pa->ev, e, sr->dc, sr->db, ts, pa->run.llen); /* the line after line_format */
    return 0;
  }
  if (sr->ns == sr->cs) {
    size_t nc = sr->cs ? sr->cs * 2 : 16;
    if ((rc = mem_take(pa->ev, (nc - sr->cs) * sizeof(struct smp))) < 0)
      return rc;
    struct smp *ns = realloc(sr->s, nc * sizeof(*ns));
    if (!ns)
      return NN_ENOMEM;
    sr->s = ns;
    sr->cs = nc;
  }
  sr->s[sr->ns++] = (struct smp){ts, v, pa->ord++};
  return 0;
}

static int smp_cmp(const void *a, const void *b)
{
  const struct smp *x = a, *y = b;
  if (x->ts != y->ts)
    return x->ts < y->ts ? -1 : 1;
  return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static int dbl_cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  if (isnan(x) || isnan(y))
    return isnan(x) ? (isnan(y) ? 0 : -1) : 1; /* Go's sort of floats puts NaN first */
  return x < y ? -1 : x > y;
}

/* Loki's rate_counter: Prometheus's extrapolated counter rate, with the range measured back
 * from the window's first sample as Loki does (timestamps in milliseconds). */
static double counter_rate(const struct smp *s, size_t n, int64_t range_ns)
{
  if (n < 2)
    return 0;
  double range_s = (double)range_ns / 1e9;
  int64_t first = s[0].ts / 1000000, last = s[n - 1].ts / 1000000;
  double result = s[n - 1].v - s[0].v, prev = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i].v < prev)
      result += prev;
    prev = s[i].v;
  }
  double to_start = (double)(range_ns / 1000000) / 1000, to_end = 0;
  double sampled = (double)(last - first) / 1000;
  double avg = sampled / (double)(n - 1);
  if (result > 0 && s[0].v >= 0) {
    double to_zero = sampled * (s[0].v / result);
    if (to_zero < to_start)
      to_start = to_zero;
  }
  double thr = avg * 1.1, interval = sampled;
  interval += to_start < thr ? to_start : avg / 2;
  interval += to_end < thr ? to_end : avg / 2;
  return result * (interval / sampled) / range_s;
}

/* One step's value of an unwrapped range aggregation over the samples s[0, n), n > 0. */
static double unwrap_value(const struct nn__ls_mexpr *e, const struct smp *s, size_t n,
                           double *scratch)
{
  double x = 0, mean = 0, aux = 0, cnt = 0;
  switch (e->fn) {
  case LS_RF_SUM:
  case LS_RF_RATE:
    for (size_t i = 0; i < n; i++)
      x += s[i].v;
    return e->fn == LS_RF_RATE ? x / ((double)e->range_ns / 1e9) : x;
  case LS_RF_AVG:
    for (size_t i = 0; i < n; i++) { /* Loki's incremental mean, with its handling of Inf */
      cnt++;
      if (isinf(mean)) {
        if (isinf(s[i].v) && (mean > 0) == (s[i].v > 0))
          continue;
        if (!isinf(s[i].v) && !isnan(s[i].v))
          continue;
      }
      mean += s[i].v / cnt - mean / cnt;
    }
    return mean;
  case LS_RF_MAX:
  case LS_RF_MIN:
    x = s[0].v;
    for (size_t i = 0; i < n; i++)
      if ((e->fn == LS_RF_MAX ? s[i].v > x : s[i].v < x) || isnan(x))
        x = s[i].v;
    return x;
  case LS_RF_FIRST: return s[0].v;
  case LS_RF_LAST: return s[n - 1].v;
  case LS_RF_STDVAR:
  case LS_RF_STDDEV:
    for (size_t i = 0; i < n; i++) { /* Welford, as Loki */
      cnt++;
      double d = s[i].v - mean;
      mean += d / cnt;
      aux += d * (s[i].v - mean);
    }
    return e->fn == LS_RF_STDDEV ? sqrt(aux / cnt) : aux / cnt;
  case LS_RF_QUANTILE: {
    if (isnan(e->phi))
      return NAN;
    if (e->phi < 0)
      return -INFINITY;
    if (e->phi > 1)
      return INFINITY;
    for (size_t i = 0; i < n; i++)
      scratch[i] = s[i].v;
    qsort(scratch, n, sizeof(*scratch), dbl_cmp);
    double rank = e->phi * (double)(n - 1);
    double lo = fmax(0, floor(rank)), hi = fmin((double)(n - 1), lo + 1);
    double wt = rank - floor(rank);
    return scratch[(size_t)lo] * (1 - wt) + scratch[(size_t)hi] * wt;
  }
  case LS_RF_RATE_COUNTER: return counter_rate(s, n, e->range_ns);
  default: return (double)n;
  }
}

/* Loki's answer to a metric query whose series still carries __error__ after the pipeline. */
static int pipeline_error(struct ev *ev, const struct pser *sr)
{
  const char *kind = nn_labels_get(sr->labels, sr->nl, "__error__");
  struct nn_buf b;
  nn_buf_init(&b, 4096);
  if (nn_labels_format(sr->labels, sr->nl, &b) < 0)
    nn_buf_reset(&b);
  snprintf(ev->err, ev->errlen,
           "pipeline error: '%s' for series: '%s'.\nUse a label filter to intentionally skip "
           "this error. (e.g | __error__!=\"%s\").\nTo skip all potential errors you can match "
           "empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after "
           "unwrap. (e.g | unwrap latency | __error__=\"\" )\n",
           kind, b.data ? b.data : "{}", kind);
  nn_buf_fini(&b);
  return NN_EINVAL;
}

static int eval_range_pipeline(struct ev *ev, const struct nn__ls_mexpr *e, emit_fn emit, void *ud)
{
  int64_t last = ev->start + (int64_t)(ev->np - 1) * ev->step;
  int64_t lo = ev->start - e->offset_ns - e->range_ns, hi = last - e->offset_ns;
  struct nn__ls_stream **streams = NULL;
  size_t ns = 0, np = ev->np;
  const char *ul;
  struct pacc pa = {0};
  pa.ev = ev;
  pa.e = e;
  pa.unwrap = nn__logstore_pipeline_unwrap(e->q.pl, &ul) != LS_CONV_NONE;
  nn__logstore_prun_init(&pa.run, e->q.pl, &ev->mem, ev->s->cfg.query_max_bytes);
  const struct nn__ls_mexpr *g = e->grouped || !ev->inject ? e : ev->inject;
  ev->inject = NULL;
  pa.groups = g->labels;
  pa.ngroups = g->nlabels;
  pa.grouped = true; /* a sum without by/without groups by () */
  pa.without = g->without;
  if (g == e && !e->grouped)
    pa.grouped = pa.without = false;
  char **gl = NULL;
  if (pa.unwrap && (!pa.grouped || pa.without)) {
    if (!(gl = malloc((pa.ngroups + 1) * sizeof(*gl))))
      return NN_ENOMEM;
    for (size_t i = 0; i < pa.ngroups; i++)
      gl[i] = pa.groups[i];
    gl[pa.ngroups] = (char *)(uintptr_t)ul;
    pa.groups = gl;
    pa.ngroups++;
    pa.grouped = pa.without = true;
  }
  struct range_acc a = {e, ev, NULL, NULL, &pa};
  double *v = calloc(np, sizeof(double)), *scratch = NULL;
  uint32_t *c = calloc(np, sizeof(uint32_t));
  int64_t *total = e->fn == LS_RF_ABSENT ? calloc(np, sizeof(int64_t)) : NULL;
  size_t cscratch = 0;
  int rc = 0;
  if (!v || !c || (e->fn == LS_RF_ABSENT && !total)) {
    rc = NN_ENOMEM;
    goto out;
  }
  if (ev->t && (rc = nn__logstore_select_streams(ev->s, ev->t, e->q.m, e->q.nm, lo + 1,
                                                 hi == INT64_MAX ? hi : hi + 1, &streams, &ns)) < 0)
    goto out;
  for (size_t i = 0; i < ns; i++)
    if ((rc = range_scan(&a, streams[i], lo, hi)) < 0)
      goto out;
  double secs = (double)e->range_ns / 1e9;
  for (size_t i = 0; i < pa.nser; i++) {
    struct pser *sr = &pa.ser[i];
    bool any = false;
    if (!pa.unwrap) {
      int64_t cnt = 0, bytes = 0;
      for (size_t k = 0; k < np; k++) {
        cnt += sr->dc[k];
        bytes += sr->db[k];
        c[k] = cnt > 0;
        any |= cnt > 0;
        if (total)
          total[k] += cnt;
        v[k] = e->fn == LS_RF_COUNT        ? (double)cnt
               : e->fn == LS_RF_RATE       ? (double)cnt / secs
               : e->fn == LS_RF_BYTES      ? (double)bytes
               : e->fn == LS_RF_BYTES_RATE ? (double)bytes / secs
                                           : 1;
      }
    } else {
      if (sr->ns > 1)
        qsort(sr->s, sr->ns, sizeof(*sr->s), smp_cmp);
      if (e->fn == LS_RF_QUANTILE && sr->ns > cscratch) {
        if ((rc = mem_take(ev, (sr->ns - cscratch) * sizeof(double))) < 0)
          goto out;
        double *n2 = realloc(scratch, sr->ns * sizeof(double));
        if (!n2) {
          rc = NN_ENOMEM;
          goto out;
        }
        scratch = n2;
        cscratch = sr->ns;
      }
      size_t from = 0, to = 0;
      for (size_t k = 0; k < np; k++) { /* the window (t - off - range, t - off] */
        int64_t t = ev->start + (int64_t)k * ev->step - e->offset_ns;
        while (to < sr->ns && sr->s[to].ts <= t)
          to++;
        while (from < to && sr->s[from].ts <= t - e->range_ns)
          from++;
        c[k] = to > from;
        any |= to > from;
        if (to > from)
          v[k] = unwrap_value(e, sr->s + from, to - from, scratch);
      }
    }
    if (any && sr->err) {
      rc = pipeline_error(ev, sr);
      goto out;
    }
    if (any && !total && (rc = emit(ud, sr->labels, sr->nl, v, c)) < 0)
      goto out;
  }
  if (total)
    rc = emit_absent(ev, e, total, v, c, emit, ud);
out:
  for (size_t i = 0; i < pa.nser; i++) {
    free(pa.ser[i].labels);
    free(pa.ser[i].key);
    free(pa.ser[i].dc);
    free(pa.ser[i].db);
    free(pa.ser[i].s);
  }
  free(pa.ser);
  nn__logstore_map_fini(&pa.map);
  nn__logstore_prun_fini(&pa.run);
  free(streams);
  free(v);
  free(c);
  free(total);
  free(scratch);
  free(gl);
  return rc;
}

struct bin_ud {
  const struct nn__ls_mexpr *e;
  struct ev *ev;
  emit_fn emit;
  void *ud;
  double *v;
};

static int bin_emit(void *ud, const struct nn_label *labels, size_t nl, const double *v,
                    const uint32_t *c)
{
  struct bin_ud *b = ud;
  bool left = b->e->a->type != LS_M_NUM;
  double n = left ? b->e->b->num : b->e->a->num;
  for (size_t k = 0; k < b->ev->np; k++)
    if (c[k])
      b->v[k] = left ? arith(b->e->binop, v[k], n) : arith(b->e->binop, n, v[k]);
  return b->emit(b->ud, labels, nl, b->v, c);
}

/* ---- vector aggregation ---- */

struct member { /* a series kept whole for topk/bottomk */
  struct nn_label *labels;
  size_t nl;
  double *v;
  uint32_t *c;
};
struct group {
  char *key;
  struct nn_label *labels;
  size_t nl;
  double *v;
  uint32_t *c;
  struct member *m;
  size_t nm, cm;
};
struct agg_ud {
  const struct nn__ls_mexpr *e;
  struct ev *ev;
  struct group *g;
  size_t ng, cg;
  struct nn__ls_map map; /* key -> index + 1 */
};

static bool in_list(const struct nn__ls_mexpr *e, const char *name)
{
  for (size_t i = 0; i < e->nlabels; i++)
    if (strcmp(e->labels[i], name) == 0)
      return true;
  return false;
}

static int copy_labels(const struct nn_label *in, size_t n, struct nn_label **out)
{
  *out = NULL;
  if (!n)
    return 0;
  size_t bytes = n * sizeof(**out);
  for (size_t i = 0; i < n; i++)
    bytes += strlen(in[i].name) + strlen(in[i].value) + 2;
  char *mem = malloc(bytes);
  if (!mem)
    return NN_ENOMEM;
  struct nn_label *v = (struct nn_label *)(void *)mem;
  char *w = mem + n * sizeof(*v);
  for (size_t i = 0; i < n; i++) {
    size_t a = strlen(in[i].name) + 1, b = strlen(in[i].value) + 1;
    memcpy(w, in[i].name, a);
    v[i].name = w;
    w += a;
    memcpy(w, in[i].value, b);
    v[i].value = w;
    w += b;
  }
  *out = v;
  return 0;
}

static int agg_emit(void *ud, const struct nn_label *labels, size_t nl, const double *v,
                    const uint32_t *c)
{
  struct agg_ud *a = ud;
  const struct nn__ls_mexpr *e = a->e;
  struct ev *ev = a->ev;
  size_t np = ev->np;
  struct nn_label kl[LS_MAX_META_PAIRS + 64];
  size_t nk = 0;
  int rc;
  for (size_t i = 0; i < nl && e->grouped; i++) {
    if (in_list(e, labels[i].name) == e->without || !labels[i].value[0])
      continue;
    if (nk == sizeof(kl) / sizeof(kl[0])) { /* never merge groups by dropping labels */
      snprintf(ev->err, ev->errlen, "a series has more than %zu labels to group by",
               sizeof(kl) / sizeof(kl[0]));
      return NN_ELIMIT;
    }
    kl[nk++] = labels[i];
  }
  struct nn_buf key;
  nn_buf_init(&key, LS_MAX_LABELS_BYTES * 2);
  for (size_t i = 0; i < nk; i++) {
    if ((rc = nn_buf_printf(&key, "%s", kl[i].name)) < 0 || (rc = nn_buf_appendc(&key, 0)) < 0 ||
        (rc = nn_buf_printf(&key, "%s", kl[i].value)) < 0 || (rc = nn_buf_appendc(&key, 0)) < 0) {
      nn_buf_fini(&key);
      return rc;
    }
  }
  uintptr_t idx = (uintptr_t)nn__logstore_map_get(&a->map, key.data ? key.data : "", key.len);
  struct group *g;
  if (idx) {
    g = &a->g[idx - 1];
    nn_buf_fini(&key);
  } else {
    if (a->ng == a->cg) {
      size_t nc = a->cg ? a->cg * 2 : 16;
      struct group *ng = realloc(a->g, nc * sizeof(*ng));
      if (!ng) {
        nn_buf_fini(&key);
        return NN_ENOMEM;
      }
      a->g = ng;
      a->cg = nc;
    }
    if ((rc = mem_take(ev, np * (sizeof(double) + sizeof(uint32_t)) + key.len + 256)) < 0) {
      nn_buf_fini(&key);
      return rc;
    }
    g = &a->g[a->ng];
    memset(g, 0, sizeof(*g));
    g->key = malloc(key.len + 1);
    g->v = calloc(np, sizeof(double));
    g->c = calloc(np, sizeof(uint32_t));
    if (g->key)
      memcpy(g->key, key.data ? key.data : "", key.len);
    rc = g->key && g->v && g->c ? copy_labels(kl, nk, &g->labels) : NN_ENOMEM;
    a->ng++; /* freed with the others even when incomplete */
    if (rc == 0) {
      g->nl = nk;
      rc = nn__logstore_map_put(&a->map, g->key, key.len, (void *)(uintptr_t)a->ng);
    }
    nn_buf_fini(&key);
    if (rc < 0)
      return rc;
  }
  if (e->op == LS_AG_TOPK || e->op == LS_AG_BOTTOMK) {
    if (g->nm == g->cm) {
      size_t nc = g->cm ? g->cm * 2 : 8;
      struct member *nm = realloc(g->m, nc * sizeof(*nm));
      if (!nm)
        return NN_ENOMEM;
      g->m = nm;
      g->cm = nc;
    }
    if ((rc = mem_take(ev, np * (sizeof(double) + sizeof(uint32_t)) + 256)) < 0)
      return rc;
    struct member *m = &g->m[g->nm];
    memset(m, 0, sizeof(*m));
    m->v = malloc(np * sizeof(double));
    m->c = malloc(np * sizeof(uint32_t));
    g->nm++;
    if (!m->v || !m->c || (rc = copy_labels(labels, nl, &m->labels)) < 0)
      return rc < 0 ? rc : NN_ENOMEM;
    m->nl = nl;
    memcpy(m->v, v, np * sizeof(double));
    memcpy(m->c, c, np * sizeof(uint32_t));
    return 0;
  }
  for (size_t k = 0; k < np; k++) {
    if (!c[k])
      continue;
    double x = v[k];
    if (!g->c[k]) {
      g->v[k] = e->op == LS_AG_COUNT ? 1 : x;
    } else {
      switch (e->op) {
      case LS_AG_SUM:
      case LS_AG_AVG: g->v[k] += x; break;
      case LS_AG_COUNT: g->v[k] += 1; break;
      case LS_AG_MIN:
        if (x < g->v[k] || isnan(g->v[k]))
          g->v[k] = x;
        break;
      case LS_AG_MAX:
        if (x > g->v[k] || isnan(g->v[k]))
          g->v[k] = x;
        break;
      default: break;
      }
    }
    g->c[k]++;
  }
  return 0;
}

struct rank {
  double v;
  size_t i;
};
static int rank_desc(const void *x, const void *y)
{
  const struct rank *a = x, *b = y;
  if (isnan(a->v) != isnan(b->v))
    return isnan(a->v) ? 1 : -1; /* NaN last; two NaNs fall through to the index */
  if (!isnan(a->v) && a->v != b->v)
    return a->v > b->v ? -1 : 1;
  return a->i < b->i ? -1 : a->i > b->i;
}
static int rank_asc(const void *x, const void *y)
{
  const struct rank *a = x, *b = y;
  if (isnan(a->v) != isnan(b->v))
    return isnan(a->v) ? 1 : -1; /* NaN last; two NaNs fall through to the index */
  if (!isnan(a->v) && a->v != b->v)
    return a->v < b->v ? -1 : 1;
  return a->i < b->i ? -1 : a->i > b->i;
}

static int eval(struct ev *ev, const struct nn__ls_mexpr *e, emit_fn emit, void *ud);

static int eval_agg(struct ev *ev, const struct nn__ls_mexpr *e, emit_fn emit, void *ud)
{
  struct agg_ud a = {e, ev, NULL, 0, 0, {0}};
  size_t np = ev->np;
  struct rank *r = NULL;
  uint32_t *sel = NULL;
  const struct nn__ls_mexpr *arg = e->a;
  if (e->op == LS_AG_SUM && arg->type == LS_M_RANGE && arg->q.pl && !arg->grouped &&
      arg->fn != LS_RF_ABSENT && (arg->fn <= LS_RF_BYTES_RATE || arg->fn == LS_RF_SUM))
    ev->inject = e; /* a sum of sums: summing each group's lines first gives the same */
  int rc = eval(ev, e->a, agg_emit, &a);
  ev->inject = NULL;
  for (size_t i = 0; rc == 0 && i < a.ng; i++) {
    struct group *g = &a.g[i];
    if (e->op != LS_AG_TOPK && e->op != LS_AG_BOTTOMK) {
      if (e->op == LS_AG_AVG)
        for (size_t k = 0; k < np; k++)
          if (g->c[k])
            g->v[k] /= g->c[k];
      rc = emit(ud, g->labels, g->nl, g->v, g->c);
      continue;
    }
    /* Per step, the k largest (smallest) members present there keep their point. */
    struct rank *nr = realloc(r, (g->nm ? g->nm : 1) * sizeof(*r));
    uint32_t *ns = realloc(sel, (g->nm ? g->nm : 1) * np * sizeof(*sel));
    if (nr)
      r = nr;
    if (ns)
      sel = ns;
    if (!nr || !ns) {
      rc = NN_ENOMEM;
      break;
    }
    memset(sel, 0, g->nm * np * sizeof(*sel));
    for (size_t k = 0; k < np; k++) {
      size_t n = 0;
      for (size_t m = 0; m < g->nm; m++)
        if (g->m[m].c[k])
          r[n++] = (struct rank){g->m[m].v[k], m};
      qsort(r, n, sizeof(*r), e->op == LS_AG_TOPK ? rank_desc : rank_asc);
      for (size_t j = 0; j < n && (int64_t)j < e->k; j++)
        sel[r[j].i * np + k] = 1;
    }
    for (size_t m = 0; rc == 0 && m < g->nm; m++) {
      bool any = false;
      for (size_t k = 0; k < np; k++)
        any |= sel[m * np + k] != 0;
      if (any)
        rc = emit(ud, g->m[m].labels, g->m[m].nl, g->m[m].v, sel + m * np);
    }
  }
  for (size_t i = 0; i < a.ng; i++) {
    struct group *g = &a.g[i];
    for (size_t m = 0; m < g->nm; m++) {
      free(g->m[m].labels);
      free(g->m[m].v);
      free(g->m[m].c);
    }
    free(g->m);
    free(g->key);
    free(g->labels);
    free(g->v);
    free(g->c);
  }
  free(a.g);
  free(r);
  free(sel);
  nn__logstore_map_fini(&a.map);
  return rc;
}

static int eval(struct ev *ev, const struct nn__ls_mexpr *e, emit_fn emit, void *ud)
{
  switch (e->type) {
  case LS_M_RANGE: return eval_range(ev, e, emit, ud);
  case LS_M_AGG: return eval_agg(ev, e, emit, ud);
  case LS_M_BIN: {
    int rc = mem_take(ev, ev->np * sizeof(double));
    if (rc < 0)
      return rc;
    struct bin_ud b = {e, ev, emit, ud, calloc(ev->np, sizeof(double))};
    if (!b.v)
      return NN_ENOMEM;
    rc = eval(ev, e->a->type == LS_M_NUM ? e->b : e->a, bin_emit, &b);
    free(b.v);
    return rc;
  }
  case LS_M_NUM: break;
  }
  snprintf(ev->err, ev->errlen, "a number cannot be evaluated as a vector");
  return NN_EINVAL;
}

/* ---- result ---- */

struct collect {
  struct ev *ev;
  struct nn_logstore_mresult *out;
  size_t cap;
};

static int collect_emit(void *ud, const struct nn_label *labels, size_t nl, const double *v,
                        const uint32_t *c)
{
  struct collect *col = ud;
  struct nn_logstore_mresult *out = col->out;
  struct ev *ev = col->ev;
  struct nn_pool *pool = &out->pool;
  size_t n = 0;
  for (size_t k = 0; k < ev->np; k++)
    n += c[k] != 0;
  if (!n)
    return 0;
  if (out->n == NN_LOGSTORE_MAX_SERIES) {
    snprintf(ev->err, ev->errlen,
             "maximum of series (%d) reached for a single query; aggregate with sum by (...) "
             "or narrow the selector",
             NN_LOGSTORE_MAX_SERIES);
    return NN_ELIMIT;
  }
  if (out->n == col->cap) {
    size_t nc = col->cap ? col->cap * 2 : 16;
    struct nn_logstore_mseries *ns = nn_pool_alloc(pool, nc * sizeof(*ns));
    if (!ns)
      goto toobig;
    if (out->n)
      memcpy(ns, out->series, out->n * sizeof(*ns));
    out->series = ns;
    col->cap = nc;
  }
  struct nn_logstore_mseries *s = &out->series[out->n];
  struct nn_label *ls = nn_pool_alloc(pool, (nl ? nl : 1) * sizeof(*ls));
  s->ts_ns = nn_pool_alloc(pool, n * sizeof(*s->ts_ns));
  s->v = nn_pool_alloc(pool, n * sizeof(*s->v));
  if (!ls || !s->ts_ns || !s->v)
    goto toobig;
  for (size_t i = 0; i < nl; i++) {
    ls[i].name = nn_pool_strndup(pool, labels[i].name, strlen(labels[i].name));
    ls[i].value = nn_pool_strndup(pool, labels[i].value, strlen(labels[i].value));
    if (!ls[i].name || !ls[i].value)
      goto toobig;
  }
  s->labels = ls;
  s->nlabels = nl;
  s->n = 0;
  for (size_t k = 0; k < ev->np; k++) {
    if (!c[k])
      continue;
    s->ts_ns[s->n] = ev->start + (int64_t)k * ev->step;
    s->v[s->n++] = v[k];
  }
  out->n++;
  return 0;
toobig:
  snprintf(ev->err, ev->errlen,
           "the query result exceeds %zu bytes; narrow the selector or time range, or raise "
           "the step",
           ev->s->cfg.query_max_bytes);
  return NN_ELIMIT;
}

static int mseries_cmp(const void *a, const void *b)
{
  const struct nn_logstore_mseries *x = a, *y = b;
  return nn_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static double mono_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int nn_logstore_metric_query(struct nn_logstore *s, const char *tenant, const char *query,
                             int64_t start_ns, int64_t end_ns, int64_t step_ns, bool instant,
                             struct nn_logstore_mresult *out, char *err, size_t errlen)
{
  struct nn__ls_mexpr *e = NULL;
  double t0 = mono_s();
  memset(out, 0, sizeof(*out));
  nn_pool_init(&out->pool, s->cfg.query_max_bytes);
  out->vector = instant;
  if (errlen)
    err[0] = '\0';
  if (!query)
    query = "";
  int rc = nn__logstore_metric_parse(query, strlen(query), &e, err, errlen);
  if (rc < 0)
    goto out;
  if (instant) {
    end_ns = start_ns;
    step_ns = 1;
  }
  if (step_ns <= 0) {
    snprintf(err, errlen,
             "zero or negative query resolution step widths are not accepted. Try a positive "
             "integer");
    rc = NN_EINVAL;
    goto out;
  }
  if (start_ns < -MAX_TIME || start_ns > MAX_TIME || end_ns < -MAX_TIME || end_ns > MAX_TIME) {
    snprintf(err, errlen, "the query time is out of range");
    rc = NN_EINVAL;
    goto out;
  }
  if (end_ns < start_ns) {
    snprintf(err, errlen, "the end time must not be before the start time");
    rc = NN_EINVAL;
    goto out;
  }
  uint64_t np = (uint64_t)(end_ns - start_ns) / (uint64_t)step_ns + 1;
  if (np > NN_LOGSTORE_MAX_POINTS) {
    snprintf(err, errlen,
             "exceeded maximum resolution of %d points per timeseries. Try decreasing the query "
             "resolution (?step=XX)",
             NN_LOGSTORE_MAX_POINTS);
    rc = NN_ELIMIT;
    goto out;
  }
  struct ev ev = {s,           nn__logstore_tenant(s, tenant, false),
                  start_ns,    step_ns,
                  (size_t)np,  0,
                  &out->stats, err,
                  errlen,      NULL};
  struct collect col = {&ev, out, 0};
  if ((rc = eval(&ev, e, collect_emit, &col)) < 0)
    goto out;
  if (out->n > 1)
    qsort(out->series, out->n, sizeof(*out->series), mseries_cmp);
  for (size_t i = 0; i < out->n; i++)
    out->stats.entries_returned += out->series[i].n;
out:
  nn__logstore_mexpr_free(e);
  out->stats.exec_seconds = mono_s() - t0;
  return rc;
}

void nn_logstore_mresult_fini(struct nn_logstore_mresult *r)
{
  nn_pool_fini(&r->pool);
  r->series = NULL;
  r->n = 0;
}

/* Unix seconds as Prometheus's JSON writes a sample time: integer, or up to 3 decimals. */
static int write_time(struct nn_buf *b, int64_t ns)
{
  int64_t ms = ns >= 0 ? ns / 1000000 : -((-ns + 999999) / 1000000);
  int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int frac = (int)(ms - sec * 1000);
  if (!frac)
    return nn_buf_printf(b, "%lld", (long long)sec);
  char f[8];
  snprintf(f, sizeof(f), "%03d", frac);
  size_t l = strlen(f);
  while (l > 1 && f[l - 1] == '0')
    f[--l] = '\0';
  return nn_buf_printf(b, "%lld.%s", (long long)sec, f);
}

/* Go's strconv.FormatFloat(v, 'f', -1, 64) for the values Loki writes. */
static void format_value(double v, char *out, size_t cap)
{
  if (isnan(v)) {
    snprintf(out, cap, "NaN");
    return;
  }
  if (isinf(v)) {
    snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  if (v == floor(v) && fabs(v) < 1e15) {
    snprintf(out, cap, "%.0f", v);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(out, cap, "%.*g", prec, v);
    if (strtod(out, NULL) == v)
      break;
  }
  if (strchr(out, 'e')) { /* no exponent in 'f' form: print the digits it stands for */
    int digits = 0;
    for (int d = 0; d <= 340; d++) {
      snprintf(out, cap, "%.*f", d, v);
      if (strtod(out, NULL) == v) {
        digits = d;
        break;
      }
    }
    snprintf(out, cap, "%.*f", digits, v);
  }
}

static int write_labels(struct nn_buf *b, const struct nn_label *v, size_t n)
{
  int rc = nn_buf_appendc(b, '{');
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (i)
      rc = nn_buf_appendc(b, ',');
    if (rc == 0)
      rc = nn_buf_append_json_str(b, v[i].name, strlen(v[i].name));
    if (rc == 0)
      rc = nn_buf_appendc(b, ':');
    if (rc == 0)
      rc = nn_buf_append_json_str(b, v[i].value, strlen(v[i].value));
  }
  return rc ? rc : nn_buf_appendc(b, '}');
}

static int write_sample(struct nn_buf *b, int64_t ts, double v)
{
  char num[400];
  format_value(v, num, sizeof(num));
  int rc = nn_buf_appendc(b, '[');
  if (rc == 0)
    rc = write_time(b, ts);
  if (rc == 0)
    rc = nn_buf_printf(b, ",\"%s\"]", num);
  return rc;
}

int nn_logstore_mresult_write_json(const struct nn_logstore_mresult *r, struct nn_buf *out)
{
  int rc =
      nn_buf_printf(out, "{\"status\":\"success\",\"data\":{\"resultType\":\"%s\",\"result\":[",
                    r->vector ? "vector" : "matrix");
  for (size_t i = 0; rc == 0 && i < r->n; i++) {
    const struct nn_logstore_mseries *s = &r->series[i];
    if (i)
      rc = nn_buf_appendc(out, ',');
    if (rc == 0)
      rc = nn_buf_appends(out, "{\"metric\":");
    if (rc == 0)
      rc = write_labels(out, s->labels, s->nlabels);
    if (rc < 0)
      break;
    if (r->vector) {
      rc = nn_buf_appends(out, ",\"value\":");
      if (rc == 0 && s->n)
        rc = write_sample(out, s->ts_ns[0], s->v[0]);
    } else {
      rc = nn_buf_appends(out, ",\"values\":[");
      for (size_t k = 0; rc == 0 && k < s->n; k++) {
        if (k)
          rc = nn_buf_appendc(out, ',');
        if (rc == 0)
          rc = write_sample(out, s->ts_ns[k], s->v[k]);
      }
      if (rc == 0)
        rc = nn_buf_appendc(out, ']');
    }
    if (rc == 0)
      rc = nn_buf_appendc(out, '}');
  }
  if (rc < 0)
    return rc;
  return nn__logstore_write_stats_tail(out, &r->stats);
}
