/* SPDX-License-Identifier: Apache-2.0 */
/* A recursive-descent PromQL parser with Prometheus's operator precedence (right-assoc ^,
 * unary minus binding looser than ^) and its type checks, producing the AST in internal.h.
 * Errors carry Prometheus's "<line>:<col>: parse error: <msg>" shape. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "aggregator/promql/internal.h"
#include "common/buf.h"
#include "common/error.h"

#define MAX_DEPTH 200

struct parser {
  const char *q;
  size_t len;
  struct nn__promql_tokens toks;
  size_t i;
  struct nn_promql_expr *e;
  struct nn_promql_error *err;
  int depth;
  bool failed;
};

typedef struct nn__promql_node node_t;

static const char *vt_name(int vt)
{
  switch (vt) {
  case VT_SCALAR: return "scalar";
  case VT_VECTOR: return "instant vector";
  case VT_MATRIX: return "range vector";
  case VT_STRING: return "string";
  default: return "none";
  }
}

static int fail(struct parser *p, uint32_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, uint32_t pos, const char *fmt, ...)
{
  if (p->failed)
    return NN_EINVAL;
  p->failed = true;
  int line = 1;
  size_t last_nl = (size_t)-1;
  for (size_t k = 0; k < pos && k < p->len; k++)
    if (p->q[k] == '\n') {
      line++;
      last_nl = k;
    }
  int col = (int)(pos - (last_nl + 1)) + 1;
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  p->err->type = NN_PROMQL_ERR_BAD_DATA;
  snprintf(p->err->msg, sizeof(p->err->msg), "%d:%d: parse error: %s", line, col, msg);
  return NN_EINVAL;
}

static struct nn__promql_token *peek(struct parser *p)
{
  return &p->toks.v[p->i];
}

static struct nn__promql_token *peek2(struct parser *p)
{
  return p->i + 1 < p->toks.n ? &p->toks.v[p->i + 1] : &p->toks.v[p->i];
}

static struct nn__promql_token *next(struct parser *p)
{
  struct nn__promql_token *t = &p->toks.v[p->i];
  if (t->type != TK_EOF && t->type != TK_ERROR)
    p->i++;
  return t;
}

static bool tok_is(struct parser *p, const struct nn__promql_token *t, const char *kw)
{
  return t->type == TK_IDENT && strlen(kw) == t->len && strncasecmp(p->q + t->pos, kw, t->len) == 0;
}

static const char *tok_desc(int type)
{
  switch (type) {
  case TK_EOF: return "end of input";
  case TK_IDENT: return "identifier";
  case TK_NUMBER: return "number";
  case TK_DURATION: return "duration";
  case TK_STRING: return "string";
  case TK_LPAREN: return "\"(\"";
  case TK_RPAREN: return "\")\"";
  case TK_LBRACE: return "\"{\"";
  case TK_RBRACE: return "\"}\"";
  case TK_LBRACKET: return "\"[\"";
  case TK_RBRACKET: return "\"]\"";
  case TK_COMMA: return "\",\"";
  case TK_ASSIGN: return "\"=\"";
  case TK_COLON: return "\":\"";
  case TK_AT: return "\"@\"";
  default: return "operator";
  }
}

static int unexpected(struct parser *p, struct nn__promql_token *t, const char *ctx)
{
  if (t->type == TK_ERROR)
    return fail(p, t->pos, "%s", t->msg);
  if (t->type == TK_EOF)
    return fail(p, t->pos, "unexpected end of input%s%s", ctx ? " " : "", ctx ? ctx : "");
  if (t->type == TK_IDENT || t->type == TK_NUMBER || t->type == TK_DURATION || t->type == TK_STRING)
    return fail(p, t->pos, "unexpected %s \"%.*s\"%s%s", tok_desc(t->type), (int)t->len,
                p->q + t->pos, ctx ? " " : "", ctx ? ctx : "");
  return fail(p, t->pos, "unexpected %.*s%s%s", (int)t->len, p->q + t->pos, ctx ? " " : "",
              ctx ? ctx : "");
}

static node_t *new_node(struct parser *p, int kind, uint32_t pos)
{
  node_t *n = nn_pool_calloc(&p->e->pool, sizeof(*n));
  if (!n) {
    fail(p, pos, "out of memory");
    return NULL;
  }
  n->kind = kind;
  n->pos = pos;
  n->end = pos;
  return n;
}

static char *tok_str(struct parser *p, const struct nn__promql_token *t)
{
  char *s = nn_pool_strndup(&p->e->pool, p->q + t->pos, t->len);
  if (!s)
    fail(p, t->pos, "out of memory");
  return s;
}

static char *unquote(struct parser *p, const struct nn__promql_token *t)
{
  const char *msg = NULL;
  char *s = nn__promql_unquote(&p->e->pool, p->q + t->pos, t->len, &msg);
  if (!s)
    fail(p, t->pos, "%s", msg ? msg : "invalid string");
  return s;
}

static bool parse_number_text(const char *s, size_t n, double *out)
{
  /* printed floats can be ~330 characters long ('f' layout of 5e-324) */
  char buf[1024];
  size_t o = 0;
  if (n >= sizeof(buf))
    return false;
  for (size_t k = 0; k < n; k++)
    if (s[k] != '_')
      buf[o++] = s[k];
  buf[o] = 0;
  if (strcasecmp(buf, "inf") == 0 || strcasecmp(buf, "+inf") == 0) {
    *out = INFINITY;
    return true;
  }
  if (strcasecmp(buf, "nan") == 0) {
    *out = NAN;
    return true;
  }
  /* Go's ParseInt(s, 0, 64) first: 0x hex and leading-zero octal integers. */
  bool allint = o > 0;
  for (size_t k = 0; k < o; k++)
    if (!isxdigit((unsigned char)buf[k]) && !(k == 1 && (buf[k] == 'x' || buf[k] == 'X')))
      allint = false;
  if (allint) {
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 0);
    if (*end == 0 && errno == 0) {
      *out = (double)v;
      return true;
    }
  }
  char *end;
  *out = strtod(buf, &end);
  return *end == 0 && o > 0;
}

/* Number or duration literal; durations give seconds. */
static bool number_value(struct parser *p, const struct nn__promql_token *t, double *v)
{
  if (t->type == TK_DURATION) {
    int64_t ms;
    if (!nn__promql_parse_duration(p->q + t->pos, t->len, &ms))
      return false;
    *v = (double)ms / 1000.0;
    return true;
  }
  return parse_number_text(p->q + t->pos, t->len, v);
}

static bool is_number_tok(struct parser *p, const struct nn__promql_token *t)
{
  return t->type == TK_NUMBER || t->type == TK_DURATION || tok_is(p, t, "inf") ||
         tok_is(p, t, "nan");
}

/* A duration in brackets or after offset: a duration literal or a number of seconds. */
static int parse_duration_arg(struct parser *p, int64_t *ms, bool allow_neg)
{
  bool neg = false;
  struct nn__promql_token *t = peek(p);
  if (allow_neg && (t->type == TK_SUB || t->type == TK_ADD)) {
    neg = t->type == TK_SUB;
    next(p);
    t = peek(p);
  }
  if (t->type == TK_DURATION) {
    next(p);
    if (!nn__promql_parse_duration(p->q + t->pos, t->len, ms))
      return fail(p, t->pos, "not a valid duration string: \"%.*s\"", (int)t->len, p->q + t->pos);
  } else if (t->type == TK_NUMBER) {
    next(p);
    double v;
    if (!parse_number_text(p->q + t->pos, t->len, &v))
      return fail(p, t->pos, "invalid number \"%.*s\"", (int)t->len, p->q + t->pos);
    if (!isfinite(v) || fabs(v * 1000) > 9.2e18)
      return fail(p, t->pos, "duration out of range");
    *ms = (int64_t)llround(v * 1000);
  } else {
    return unexpected(p, t, "in duration");
  }
  if (neg)
    *ms = -*ms;
  return 0;
}

static node_t *parse_expr(struct parser *p, int min_prec);

static int binop_prec(int op)
{
  switch (op) {
  case TK_LOR: return 1;
  case TK_LAND:
  case TK_LUNLESS: return 2;
  case TK_EQLC:
  case TK_NEQ:
  case TK_LTE:
  case TK_LSS:
  case TK_GTE:
  case TK_GTR: return 3;
  case TK_ADD:
  case TK_SUB: return 4;
  case TK_MUL:
  case TK_DIV:
  case TK_MOD:
  case TK_ATAN2: return 5;
  case TK_POW: return 6;
  default: return 0;
  }
}

static bool is_comparison(int op)
{
  return op == TK_EQLC || op == TK_NEQ || op == TK_LTE || op == TK_LSS || op == TK_GTE ||
         op == TK_GTR;
}

static bool is_setop(int op)
{
  return op == TK_LAND || op == TK_LOR || op == TK_LUNLESS;
}

static int tok_binop(struct parser *p, const struct nn__promql_token *t)
{
  if (t->type == TK_IDENT) {
    if (tok_is(p, t, "and"))
      return TK_LAND;
    if (tok_is(p, t, "or"))
      return TK_LOR;
    if (tok_is(p, t, "unless"))
      return TK_LUNLESS;
    if (tok_is(p, t, "atan2"))
      return TK_ATAN2;
    return 0;
  }
  return binop_prec(t->type) ? t->type : 0;
}

static const char *const agg_names[] = {
    "sum",    "avg",  "count",   "min",      "max",          "group",  "stddev",
    "stdvar", "topk", "bottomk", "quantile", "count_values", "limitk", "limit_ratio",
};

static int agg_lookup(struct parser *p, const struct nn__promql_token *t)
{
  for (int k = 0; k < (int)(sizeof(agg_names) / sizeof(agg_names[0])); k++)
    if (tok_is(p, t, agg_names[k]))
      return k;
  return -1;
}

static bool is_keyword(struct parser *p, const struct nn__promql_token *t)
{
  static const char *const kws[] = {"and",      "or",         "unless",      "atan2",
                                    "offset",   "by",         "without",     "on",
                                    "ignoring", "group_left", "group_right", "bool"};
  for (size_t k = 0; k < sizeof(kws) / sizeof(kws[0]); k++)
    if (tok_is(p, t, kws[k]))
      return true;
  return agg_lookup(p, t) >= 0;
}

/* ( label, label, ... ) with an optional trailing comma. */
static int parse_label_list(struct parser *p, struct nn__promql_strs *out)
{
  struct nn__promql_token *t = next(p);
  if (t->type != TK_LPAREN)
    return unexpected(p, t, "in grouping opts, expected \"(\"");
  size_t cap = 0;
  out->n = 0;
  out->v = NULL;
  for (;;) {
    t = next(p);
    if (t->type == TK_RPAREN)
      return 0;
    char *name;
    if (t->type == TK_IDENT) {
      name = tok_str(p, t);
    } else if (t->type == TK_STRING) {
      name = unquote(p, t);
    } else {
      return unexpected(p, t, "in grouping opts, expected label");
    }
    if (!name)
      return NN_EINVAL;
    if (out->n == cap) {
      size_t nc = cap ? cap * 2 : 4;
      char **nv = nn_pool_alloc(&p->e->pool, nc * sizeof(*nv));
      if (!nv)
        return fail(p, t->pos, "out of memory");
      if (out->n)
        memcpy(nv, out->v, out->n * sizeof(*nv));
      out->v = nv;
      cap = nc;
    }
    out->v[out->n++] = name;
    t = next(p);
    if (t->type == TK_RPAREN)
      return 0;
    if (t->type != TK_COMMA)
      return unexpected(p, t, "in grouping opts, expected \",\" or \")\"");
  }
}

static int add_matcher(struct parser *p, node_t *n, enum nn_match_type type, const char *name,
                       const char *value, uint32_t pos, size_t *cap)
{
  if (n->nmatchers == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    struct nn_matcher *nv = nn_pool_alloc(&p->e->pool, nc * sizeof(*nv));
    if (!nv)
      return fail(p, pos, "out of memory");
    if (n->nmatchers)
      memcpy(nv, n->matchers, n->nmatchers * sizeof(*nv));
    n->matchers = nv;
    *cap = nc;
  }
  char err[300];
  err[0] = 0;
  int rc = nn_matcher_init(&n->matchers[n->nmatchers], type, name, value, err, sizeof(err));
  if (rc < 0)
    return fail(p, pos, "%s", err[0] ? err : "invalid matcher");
  n->nmatchers++;
  return 0;
}

/* Parses {matchers} into vsel n (name may already be set). */
static int parse_matchers(struct parser *p, node_t *n, size_t *cap)
{
  struct nn__promql_token *t = next(p); /* { */
  for (;;) {
    t = next(p);
    if (t->type == TK_RBRACE) {
      n->end = t->pos + 1;
      return 0;
    }
    char *name;
    if (t->type == TK_IDENT)
      name = tok_str(p, t);
    else if (t->type == TK_STRING)
      name = unquote(p, t);
    else
      return unexpected(p, t, "in label matching, expected label");
    if (!name)
      return NN_EINVAL;
    uint32_t mpos = t->pos;
    struct nn__promql_token *op = next(p);
    if (t->type == TK_STRING && (op->type == TK_COMMA || op->type == TK_RBRACE)) {
      /* {"metric.name"}: a quoted metric name */
      if (n->str)
        return fail(p, mpos, "metric name must not be set twice: %s or %s", n->str, name);
      n->str = name;
      if (add_matcher(p, n, NN_MATCH_EQ, "__name__", name, mpos, cap) < 0)
        return NN_EINVAL;
      if (op->type == TK_RBRACE) {
        n->end = op->pos + 1;
        return 0;
      }
      continue;
    }
    enum nn_match_type mt;
    switch (op->type) {
    case TK_ASSIGN: mt = NN_MATCH_EQ; break;
    case TK_NEQ: mt = NN_MATCH_NE; break;
    case TK_EQL_REGEX: mt = NN_MATCH_RE; break;
    case TK_NEQ_REGEX: mt = NN_MATCH_NRE; break;
    default: return unexpected(p, op, "in label matching, expected label matching operator");
    }
    struct nn__promql_token *v = next(p);
    if (v->type != TK_STRING)
      return unexpected(p, v, "in label matching, expected string");
    char *val = unquote(p, v);
    if (!val)
      return NN_EINVAL;
    if (add_matcher(p, n, mt, name, val, mpos, cap) < 0)
      return NN_EINVAL;
    t = next(p);
    if (t->type == TK_RBRACE) {
      n->end = t->pos + 1;
      return 0;
    }
    if (t->type != TK_COMMA)
      return unexpected(p, t, "in label matching, expected \",\" or \"}\"");
  }
}

static node_t *parse_selector(struct parser *p)
{
  struct nn__promql_token *t = peek(p);
  node_t *n = new_node(p, N_VSEL, t->pos);
  size_t cap = 0;
  if (!n)
    return NULL;
  n->vt = VT_VECTOR;
  n->next_sel = p->e->sels;
  p->e->sels = n;
  if (t->type == TK_IDENT) {
    next(p);
    n->str = tok_str(p, t);
    n->end = t->pos + t->len;
    if (!n->str || add_matcher(p, n, NN_MATCH_EQ, "__name__", n->str, t->pos, &cap) < 0)
      return NULL;
  }
  if (peek(p)->type == TK_LBRACE) {
    const char *first_name = n->str;
    if (parse_matchers(p, n, &cap) < 0)
      return NULL;
    for (size_t k = first_name ? 1 : 0; k < n->nmatchers; k++) {
      if (strcmp(n->matchers[k].name, "__name__") == 0 && first_name && t->type == TK_IDENT) {
        fail(p, n->pos, "metric name must not be set twice: \"%s\" or \"%s\"", first_name,
             n->matchers[k].value);
        return NULL;
      }
    }
  }
  bool nonempty = false;
  for (size_t k = 0; k < n->nmatchers; k++)
    if (!nn_matcher_matches_empty(&n->matchers[k]))
      nonempty = true;
  if (!nonempty) {
    fail(p, n->pos, "vector selector must contain at least one non-empty matcher");
    return NULL;
  }
  return n;
}

static int check_args(struct parser *p, node_t *n)
{
  const struct nn__promql_func *f = n->func;
  int nargs = (int)n->nargs;
  if (f->variadic == 0 && nargs != f->nargs)
    return fail(p, n->end, "expected %d argument(s) in call to \"%s\", got %d", f->nargs, f->name,
                nargs);
  if (f->variadic != 0) {
    int min = f->variadic > 0 ? f->nargs - f->variadic : f->nargs - 1;
    if (nargs < min)
      return fail(p, n->end, "expected at least %d argument(s) in call to \"%s\", got %d", min,
                  f->name, nargs);
    if (f->variadic > 0 && nargs > f->nargs)
      return fail(p, n->end, "expected at most %d argument(s) in call to \"%s\", got %d", f->nargs,
                  f->name, nargs);
  }
  for (int k = 0; k < nargs; k++) {
    int want = k < f->nargs ? f->argtypes[k] : f->argtypes[f->nargs - 1];
    if (n->args[k]->vt != want)
      return fail(p, n->args[k]->pos, "expected type %s in call to function \"%s\", got %s",
                  vt_name(want), f->name, vt_name(n->args[k]->vt));
  }
  return 0;
}

static node_t *parse_call(struct parser *p)
{
  struct nn__promql_token *t = next(p);
  const struct nn__promql_func *f = nn__promql_func_lookup(p->q + t->pos, t->len);
  if (!f) {
    fail(p, t->pos, "unknown function with name \"%.*s\"", (int)t->len, p->q + t->pos);
    return NULL;
  }
  node_t *n = new_node(p, N_CALL, t->pos);
  if (!n)
    return NULL;
  n->func = f;
  n->vt = f->ret;
  next(p); /* ( */
  size_t cap = 0;
  if (peek(p)->type == TK_RPAREN) {
    n->end = next(p)->pos + 1;
  } else {
    for (;;) {
      node_t *a = parse_expr(p, 0);
      if (!a)
        return NULL;
      if (n->nargs == cap) {
        size_t nc = cap ? cap * 2 : 4;
        node_t **nv = nn_pool_alloc(&p->e->pool, nc * sizeof(*nv));
        if (!nv) {
          fail(p, a->pos, "out of memory");
          return NULL;
        }
        if (n->nargs)
          memcpy(nv, n->args, n->nargs * sizeof(*nv));
        n->args = nv;
        cap = nc;
      }
      n->args[n->nargs++] = a;
      struct nn__promql_token *s = next(p);
      if (s->type == TK_RPAREN) {
        n->end = s->pos + 1;
        break;
      }
      if (s->type != TK_COMMA) {
        unexpected(p, s, "in call to function, expected \",\" or \")\"");
        return NULL;
      }
    }
  }
  if (check_args(p, n) < 0)
    return NULL;
  return n;
}

static node_t *parse_agg(struct parser *p, int op)
{
  struct nn__promql_token *t = next(p);
  node_t *n = new_node(p, N_AGG, t->pos);
  if (!n)
    return NULL;
  n->op = op;
  n->vt = VT_VECTOR;
  struct nn__promql_token *m = peek(p);
  if (tok_is(p, m, "by") || tok_is(p, m, "without")) {
    next(p);
    n->without = tok_is(p, m, "without");
    n->has_grouping = true;
    if (parse_label_list(p, &n->grouping) < 0)
      return NULL;
  }
  struct nn__promql_token *lp = next(p);
  if (lp->type != TK_LPAREN) {
    unexpected(p, lp, "in aggregation, expected \"(\"");
    return NULL;
  }
  node_t *a = parse_expr(p, 0);
  if (!a)
    return NULL;
  node_t *b = NULL;
  struct nn__promql_token *s = next(p);
  if (s->type == TK_COMMA) {
    b = parse_expr(p, 0);
    if (!b)
      return NULL;
    s = next(p);
  }
  if (s->type != TK_RPAREN) {
    unexpected(p, s, "in aggregation, expected \")\"");
    return NULL;
  }
  n->end = s->pos + 1;
  m = peek(p);
  if (tok_is(p, m, "by") || tok_is(p, m, "without")) {
    if (n->has_grouping) {
      unexpected(p, m, "in aggregation");
      return NULL;
    }
    next(p);
    n->without = tok_is(p, m, "without");
    n->has_grouping = true;
    if (parse_label_list(p, &n->grouping) < 0)
      return NULL;
    n->end = p->toks.v[p->i - 1].pos + 1;
  }
  bool has_param = op == AGG_TOPK || op == AGG_BOTTOMK || op == AGG_QUANTILE ||
                   op == AGG_COUNT_VALUES || op == AGG_LIMITK || op == AGG_LIMIT_RATIO;
  if (has_param) {
    if (!b) {
      fail(p, n->pos,
           "wrong number of arguments for aggregate expression provided, expected 2, got 1");
      return NULL;
    }
    n->param = a;
    n->child = b;
    int want = op == AGG_COUNT_VALUES ? VT_STRING : VT_SCALAR;
    if (a->vt != want) {
      fail(p, a->pos, "expected type %s in aggregation parameter, got %s", vt_name(want),
           vt_name(a->vt));
      return NULL;
    }
  } else {
    if (b) {
      fail(p, n->pos,
           "wrong number of arguments for aggregate expression provided, expected 1, got 2");
      return NULL;
    }
    n->child = a;
  }
  if (n->child->vt != VT_VECTOR) {
    fail(p, n->child->pos, "expected type instant vector in aggregation expression, got %s",
         vt_name(n->child->vt));
    return NULL;
  }
  return n;
}

static node_t *parse_primary(struct parser *p)
{
  struct nn__promql_token *t = peek(p);
  switch (t->type) {
  case TK_NUMBER:
  case TK_DURATION: {
    next(p);
    node_t *n = new_node(p, N_NUMBER, t->pos);
    if (!n)
      return NULL;
    n->vt = VT_SCALAR;
    n->end = t->pos + t->len;
    if (!number_value(p, t, &n->num)) {
      fail(p, t->pos, "invalid number \"%.*s\"", (int)t->len, p->q + t->pos);
      return NULL;
    }
    return n;
  }
  case TK_STRING: {
    next(p);
    node_t *n = new_node(p, N_STRING, t->pos);
    if (!n)
      return NULL;
    n->vt = VT_STRING;
    n->end = t->pos + t->len;
    n->str = unquote(p, t);
    return n->str ? n : NULL;
  }
  case TK_LPAREN: {
    next(p);
    node_t *n = new_node(p, N_PAREN, t->pos);
    if (!n)
      return NULL;
    n->child = parse_expr(p, 0);
    if (!n->child)
      return NULL;
    struct nn__promql_token *r = next(p);
    if (r->type != TK_RPAREN) {
      unexpected(p, r, "in paren expression, expected \")\"");
      return NULL;
    }
    n->vt = n->child->vt;
    n->end = r->pos + 1;
    return n;
  }
  case TK_LBRACE: return parse_selector(p);
  case TK_IDENT: {
    if (tok_is(p, t, "inf") || tok_is(p, t, "nan")) {
      next(p);
      node_t *n = new_node(p, N_NUMBER, t->pos);
      if (!n)
        return NULL;
      n->vt = VT_SCALAR;
      n->end = t->pos + t->len;
      n->num = tok_is(p, t, "inf") ? INFINITY : NAN;
      return n;
    }
    int agg = agg_lookup(p, t);
    if (agg >= 0) {
      struct nn__promql_token *n2 = peek2(p);
      if (n2->type == TK_LPAREN || tok_is(p, n2, "by") || tok_is(p, n2, "without"))
        return parse_agg(p, agg);
      unexpected(p, n2, "in aggregation");
      return NULL;
    }
    if (is_keyword(p, t)) {
      unexpected(p, t, NULL);
      return NULL;
    }
    if (peek2(p)->type == TK_LPAREN)
      return parse_call(p);
    return parse_selector(p);
  }
  default: unexpected(p, t, NULL); return NULL;
  }
}

static bool is_selector_like(const node_t *n)
{
  return n->kind == N_VSEL || n->kind == N_MSEL || n->kind == N_SUBQ;
}

static node_t *sel_target(node_t *n)
{
  return n->kind == N_MSEL ? n->child : n;
}

static node_t *parse_postfix(struct parser *p, node_t *n)
{
  for (;;) {
    struct nn__promql_token *t = peek(p);
    if (t->type == TK_LBRACKET) {
      next(p);
      int64_t range;
      if (parse_duration_arg(p, &range, false) < 0)
        return NULL;
      struct nn__promql_token *s = next(p);
      if (s->type == TK_RBRACKET) {
        if (n->kind != N_VSEL) {
          fail(p, n->pos, "ranges only allowed for vector selectors");
          return NULL;
        }
        if (n->offset_ms != 0 || n->at != AT_NONE) {
          fail(p, n->pos, "no offset modifiers allowed before range");
          return NULL;
        }
        if (range <= 0) {
          fail(p, t->pos + 1, "range must be greater than 0");
          return NULL;
        }
        node_t *m = new_node(p, N_MSEL, n->pos);
        if (!m)
          return NULL;
        m->vt = VT_MATRIX;
        m->child = n;
        m->range_ms = range;
        m->end = s->pos + 1;
        n = m;
        continue;
      }
      if (s->type != TK_COLON) {
        unexpected(p, s, "in subquery or range, expected \":\" or \"]\"");
        return NULL;
      }
      int64_t step = 0;
      if (peek(p)->type != TK_RBRACKET && parse_duration_arg(p, &step, false) < 0)
        return NULL;
      s = next(p);
      if (s->type != TK_RBRACKET) {
        unexpected(p, s, "in subquery, expected \"]\"");
        return NULL;
      }
      if (n->vt != VT_VECTOR) {
        fail(p, n->pos, "subquery is only allowed on instant vector, got %s instead",
             vt_name(n->vt));
        return NULL;
      }
      if (range <= 0) {
        fail(p, t->pos + 1, "range must be greater than 0");
        return NULL;
      }
      if (step < 0) {
        fail(p, t->pos + 1, "step must be greater than 0");
        return NULL;
      }
      node_t *sq = new_node(p, N_SUBQ, n->pos);
      if (!sq)
        return NULL;
      sq->vt = VT_MATRIX;
      sq->child = n;
      sq->range_ms = range;
      sq->step_ms = step;
      sq->end = s->pos + 1;
      n = sq;
      continue;
    }
    if (tok_is(p, t, "offset")) {
      next(p);
      if (!is_selector_like(n)) {
        fail(p, t->pos,
             "offset modifier must be preceded by an instant vector selector or range vector "
             "selector or a subquery");
        return NULL;
      }
      node_t *tg = sel_target(n);
      if (tg->offset_ms != 0) {
        fail(p, t->pos, "offset may not be set multiple times");
        return NULL;
      }
      int64_t off;
      if (parse_duration_arg(p, &off, true) < 0)
        return NULL;
      tg->offset_ms = off;
      n->end = p->toks.v[p->i - 1].pos + p->toks.v[p->i - 1].len;
      continue;
    }
    if (t->type == TK_AT) {
      next(p);
      if (!is_selector_like(n)) {
        fail(p, t->pos,
             "@ modifier must be preceded by an instant vector selector or range vector selector "
             "or a subquery");
        return NULL;
      }
      node_t *tg = sel_target(n);
      if (tg->at != AT_NONE) {
        fail(p, t->pos, "@ <timestamp> may not be set multiple times");
        return NULL;
      }
      struct nn__promql_token *v = peek(p);
      if ((tok_is(p, v, "start") || tok_is(p, v, "end")) && peek2(p)->type == TK_LPAREN) {
        tg->at = tok_is(p, v, "start") ? AT_START : AT_END;
        next(p);
        next(p);
        struct nn__promql_token *r = next(p);
        if (r->type != TK_RPAREN) {
          unexpected(p, r, "in @, expected \")\"");
          return NULL;
        }
        n->end = r->pos + 1;
        continue;
      }
      bool neg = false;
      if (v->type == TK_SUB || v->type == TK_ADD) {
        neg = v->type == TK_SUB;
        next(p);
        v = peek(p);
      }
      double ts;
      if (!is_number_tok(p, v) || !number_value(p, v, &ts)) {
        unexpected(p, v, "in @, expected timestamp");
        return NULL;
      }
      next(p);
      if (neg)
        ts = -ts;
      if (!isfinite(ts) || fabs(ts) > 9.2e15) {
        fail(p, v->pos, "timestamp out of bounds for @ modifier: %g", ts);
        return NULL;
      }
      tg->at = AT_TIME;
      tg->at_ms = (int64_t)llround(ts * 1000.0);
      n->end = v->pos + v->len;
      continue;
    }
    return n;
  }
}

static node_t *parse_unary(struct parser *p)
{
  struct nn__promql_token *t = peek(p);
  if (t->type == TK_ADD || t->type == TK_SUB) {
    next(p);
    if (++p->depth > MAX_DEPTH) {
      fail(p, t->pos, "expression nested too deeply");
      return NULL;
    }
    node_t *e = parse_expr(p, binop_prec(TK_POW));
    p->depth--;
    if (!e)
      return NULL;
    if (e->kind == N_NUMBER) {
      if (t->type == TK_SUB)
        e->num = -e->num;
      e->pos = t->pos;
      return e;
    }
    if (e->vt != VT_SCALAR && e->vt != VT_VECTOR) {
      fail(p, e->pos,
           "unary expression only allowed on expressions of type scalar or instant vector, got %s",
           vt_name(e->vt));
      return NULL;
    }
    node_t *n = new_node(p, N_UNARY, t->pos);
    if (!n)
      return NULL;
    n->op = t->type;
    n->child = e;
    n->vt = e->vt;
    n->end = e->end;
    return n;
  }
  if (++p->depth > MAX_DEPTH) {
    fail(p, t->pos, "expression nested too deeply");
    return NULL;
  }
  node_t *prim = parse_primary(p);
  p->depth--;
  if (!prim)
    return NULL;
  return parse_postfix(p, prim);
}

static bool str_in(const struct nn__promql_strs *s, const char *v)
{
  for (size_t k = 0; k < s->n; k++)
    if (strcmp(s->v[k], v) == 0)
      return true;
  return false;
}

static node_t *parse_expr(struct parser *p, int min_prec)
{
  node_t *lhs = parse_unary(p);
  if (!lhs)
    return NULL;
  for (;;) {
    struct nn__promql_token *t = peek(p);
    int op = tok_binop(p, t);
    int prec = op ? binop_prec(op) : 0;
    if (!op || prec < min_prec)
      return lhs;
    next(p);
    node_t *n = new_node(p, N_BINARY, t->pos);
    if (!n)
      return NULL;
    n->op = op;
    n->card = is_setop(op) ? CARD_MANY_TO_MANY : CARD_ONE_TO_ONE;
    struct nn__promql_token *m = peek(p);
    if (tok_is(p, m, "bool")) {
      next(p);
      if (!is_comparison(op)) {
        fail(p, t->pos, "bool modifier can only be used on comparison operators");
        return NULL;
      }
      n->return_bool = true;
      m = peek(p);
    }
    if (tok_is(p, m, "on") || tok_is(p, m, "ignoring")) {
      next(p);
      n->on = tok_is(p, m, "on");
      n->has_matching = true;
      if (parse_label_list(p, &n->match_labels) < 0)
        return NULL;
      m = peek(p);
      if (tok_is(p, m, "group_left") || tok_is(p, m, "group_right")) {
        next(p);
        n->card = tok_is(p, m, "group_left") ? CARD_MANY_TO_ONE : CARD_ONE_TO_MANY;
        if (peek(p)->type == TK_LPAREN && parse_label_list(p, &n->include) < 0)
          return NULL;
      }
    } else if (tok_is(p, m, "group_left") || tok_is(p, m, "group_right")) {
      unexpected(p, m, "in binary expression, grouping requires on or ignoring");
      return NULL;
    }
    if (++p->depth > MAX_DEPTH) {
      fail(p, t->pos, "expression nested too deeply");
      return NULL;
    }
    node_t *rhs = parse_expr(p, op == TK_POW ? prec : prec + 1);
    p->depth--;
    if (!rhs)
      return NULL;
    n->lhs = lhs;
    n->rhs = rhs;
    n->pos = lhs->pos;
    n->end = rhs->end;
    /* type checks (Prometheus parser checkAST) */
    bool lv = lhs->vt == VT_VECTOR, rv = rhs->vt == VT_VECTOR;
    if ((lhs->vt != VT_SCALAR && !lv) || (rhs->vt != VT_SCALAR && !rv)) {
      fail(p, n->pos, "binary expression must contain only scalar and instant vector types");
      return NULL;
    }
    if (is_comparison(op) && !n->return_bool && !lv && !rv) {
      fail(p, n->pos, "comparisons between scalars must use BOOL modifier");
      return NULL;
    }
    if (is_setop(op) && (!lv || !rv)) {
      const char *nm = op == TK_LAND ? "and" : op == TK_LOR ? "or" : "unless";
      fail(p, n->pos, "set operator \"%s\" not allowed in binary scalar expression", nm);
      return NULL;
    }
    if (n->has_matching && (!lv || !rv)) {
      fail(p, n->pos, "vector matching only allowed between instant vectors");
      return NULL;
    }
    if (is_setop(op)) {
      if (n->card == CARD_MANY_TO_ONE || n->card == CARD_ONE_TO_MANY) {
        const char *nm = op == TK_LAND ? "and" : op == TK_LOR ? "or" : "unless";
        fail(p, n->pos, "no grouping allowed for \"%s\" operation", nm);
        return NULL;
      }
      n->card = CARD_MANY_TO_MANY;
    }
    if (n->on) {
      for (size_t k = 0; k < n->include.n; k++)
        if (str_in(&n->match_labels, n->include.v[k])) {
          fail(p, n->pos, "label \"%s\" must not occur in ON and GROUP clause at once",
               n->include.v[k]);
          return NULL;
        }
    }
    n->vt = (lv || rv) ? VT_VECTOR : VT_SCALAR;
    lhs = n;
  }
}

int nn_promql_parse(const char *query, size_t len, struct nn_promql_expr **out,
                    struct nn_promql_error *err)
{
  struct parser p;
  int rc = 0;
  memset(&p, 0, sizeof(p));
  memset(err, 0, sizeof(*err));
  *out = NULL;
  p.q = query;
  p.len = len;
  p.err = err;
  p.e = calloc(1, sizeof(*p.e));
  if (!p.e)
    return NN_ENOMEM;
  nn_pool_init(&p.e->pool, (size_t)64 << 20);
  if ((rc = nn__promql_lex(query, len, &p.toks)) < 0) {
    err->type = NN_PROMQL_ERR_INTERNAL;
    snprintf(err->msg, sizeof(err->msg), "out of memory");
    goto out;
  }
  if (p.toks.n == 1 && p.toks.v[0].type == TK_EOF) {
    rc = fail(&p, 0, "no expression found in input");
    goto out;
  }
  node_t *root = parse_expr(&p, 0);
  if (!root) {
    rc = NN_EINVAL;
    goto out;
  }
  struct nn__promql_token *t = peek(&p);
  if (t->type != TK_EOF) {
    rc = unexpected(&p, t, NULL);
    goto out;
  }
  p.e->root = root;
  p.e->text = nn_pool_strndup(&p.e->pool, query, len);
  *out = p.e;
  p.e = NULL;
out:
  free(p.toks.v);
  if (p.e)
    nn_promql_expr_free(p.e);
  if (rc < 0 && err->type == NN_PROMQL_ERR_NONE) {
    err->type = NN_PROMQL_ERR_BAD_DATA;
    snprintf(err->msg, sizeof(err->msg), "parse error");
  }
  return rc;
}

void nn_promql_expr_free(struct nn_promql_expr *e)
{
  if (!e)
    return;
  for (node_t *s = e->sels; s; s = s->next_sel)
    for (size_t k = 0; k < s->nmatchers; k++)
      nn_matcher_fini(&s->matchers[k]);
  nn_pool_clear(&e->pool);
  free(e);
}

static void prefetch_bytes(const void *p, size_t n)
{
  for (size_t k = 0; k < n; k += 64)
    __builtin_prefetch((const char *)p + k);
}

/* Prefetches the nodes d levels below n, which is loaded when d > 0. */
static void prefetch_level(const node_t *n, int d)
{
  if (!n)
    return;
  if (d == 0) {
    prefetch_bytes(n, sizeof(*n));
    return;
  }
  prefetch_level(n->child, d - 1);
  prefetch_level(n->lhs, d - 1);
  prefetch_level(n->rhs, d - 1);
  prefetch_level(n->param, d - 1);
  if (n->kind == N_VSEL && d == 1 && n->matchers)
    prefetch_bytes(n->matchers, n->nmatchers * sizeof(*n->matchers));
  if (n->kind == N_CALL && n->args) {
    if (d == 1)
      prefetch_bytes(n->args, n->nargs * sizeof(*n->args));
    else
      for (size_t k = 0; k < n->nargs; k++)
        prefetch_level(n->args[k], d - 2);
  }
}

void nn_promql_expr_prefetch(const struct nn_promql_expr *e, int stage)
{
  if (!e)
    return;
  if (stage == 0)
    prefetch_bytes(e, sizeof(*e));
  else
    prefetch_level(e->root, stage - 1);
}

enum nn_promql_value_type nn_promql_expr_type(const struct nn_promql_expr *e)
{
  switch (e->root->vt) {
  case VT_SCALAR: return NN_PROMQL_SCALAR;
  case VT_VECTOR: return NN_PROMQL_VECTOR;
  case VT_MATRIX: return NN_PROMQL_MATRIX;
  case VT_STRING: return NN_PROMQL_STRING;
  default: return NN_PROMQL_NONE;
  }
}
