/* SPDX-License-Identifier: Apache-2.0 */
/* Private to the promql folder: tokens, the AST, the function table and the evaluator's
 * value types. Range evaluation is step-vectorised: an instant vector holds, per series,
 * one value slot per step; an absent point is a NaN with a reserved payload. */
#ifndef NN_AGGREGATOR_PROMQL_INTERNAL_H
#define NN_AGGREGATOR_PROMQL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aggregator/promql/promql.h"
#include "aggregator/storage/storage.h"
#include "common/pool.h"

/* ---- lexer ---- */

enum nn__promql_tok {
  TK_EOF,
  TK_ERROR,
  TK_IDENT,
  TK_NUMBER,
  TK_DURATION,
  TK_STRING,
  TK_LPAREN,
  TK_RPAREN,
  TK_LBRACE,
  TK_RBRACE,
  TK_LBRACKET,
  TK_RBRACKET,
  TK_COMMA,
  TK_ASSIGN,
  TK_COLON,
  TK_ADD,
  TK_SUB,
  TK_MUL,
  TK_DIV,
  TK_MOD,
  TK_POW,
  TK_EQLC,
  TK_NEQ,
  TK_LSS,
  TK_LTE,
  TK_GTR,
  TK_GTE,
  TK_EQL_REGEX,
  TK_NEQ_REGEX,
  TK_AT,
  /* keyword binary operators, resolved from identifiers by the parser */
  TK_LAND,
  TK_LOR,
  TK_LUNLESS,
  TK_ATAN2,
};

struct nn__promql_token {
  int type;
  uint32_t pos, len; /* byte span in the query */
  const char *msg;   /* TK_ERROR: static message */
};

struct nn__promql_tokens {
  struct nn__promql_token *v;
  size_t n, cap;
};

/* Splits q into tokens (always ending in TK_EOF or TK_ERROR). NN_ENOMEM or 0. */
int nn__promql_lex(const char *q, size_t len, struct nn__promql_tokens *out);
/* Parses a duration like 1h30m (Prometheus model.ParseDuration). */
bool nn__promql_parse_duration(const char *s, size_t n, int64_t *ms);
/* Unquotes a string token (", ' or `) into pool memory; NULL with *msg on bad escapes. */
char *nn__promql_unquote(struct nn_pool *p, const char *s, size_t n, const char **msg);
/* Appends Go's strconv.Quote(s). */
int nn__promql_quote(struct nn_buf *b, const char *s);
/* Appends a duration in Prometheus's model.Duration form (1h30m, 0s). */
int nn__promql_print_duration(struct nn_buf *b, int64_t ms);

/* ---- AST ---- */

enum nn__promql_vt { VT_NONE, VT_SCALAR, VT_VECTOR, VT_MATRIX, VT_STRING };

enum nn__promql_kind {
  N_NUMBER,
  N_STRING,
  N_VSEL,
  N_MSEL,
  N_SUBQ,
  N_CALL,
  N_AGG,
  N_BINARY,
  N_UNARY,
  N_PAREN,
};

enum nn__promql_agg {
  AGG_SUM,
  AGG_AVG,
  AGG_COUNT,
  AGG_MIN,
  AGG_MAX,
  AGG_GROUP,
  AGG_STDDEV,
  AGG_STDVAR,
  AGG_TOPK,
  AGG_BOTTOMK,
  AGG_QUANTILE,
  AGG_COUNT_VALUES,
  AGG_LIMITK,
  AGG_LIMIT_RATIO,
};

enum nn__promql_card { CARD_ONE_TO_ONE, CARD_MANY_TO_ONE, CARD_ONE_TO_MANY, CARD_MANY_TO_MANY };
enum nn__promql_at { AT_NONE, AT_TIME, AT_START, AT_END };

struct nn__promql_func;

struct nn__promql_strs {
  char **v;
  size_t n;
};

struct nn__promql_node {
  int kind;
  int vt;
  uint32_t pos, end;
  double num; /* N_NUMBER */
  char *str;  /* N_STRING value; N_VSEL metric name (NULL if none) */
  /* N_VSEL */
  struct nn_matcher *matchers;
  size_t nmatchers;
  /* N_VSEL and N_SUBQ: offset and @ */
  int64_t offset_ms;
  int at;
  int64_t at_ms;
  /* N_MSEL, N_SUBQ */
  int64_t range_ms;
  int64_t step_ms;               /* N_SUBQ; 0 = default */
  struct nn__promql_node *child; /* N_MSEL: vsel; N_SUBQ, N_UNARY, N_PAREN, N_AGG: operand */
  /* N_BINARY */
  struct nn__promql_node *lhs, *rhs;
  int op; /* token type for N_BINARY/N_UNARY, enum nn__promql_agg for N_AGG */
  bool return_bool;
  bool has_matching; /* on/ignoring or group_x given */
  int card;
  bool on;
  struct nn__promql_strs match_labels, include;
  /* N_AGG */
  struct nn__promql_node *param;
  struct nn__promql_strs grouping;
  bool without, has_grouping;
  /* N_CALL */
  const struct nn__promql_func *func;
  struct nn__promql_node **args;
  size_t nargs;
  struct nn__promql_node *next_sel; /* chain of all N_VSEL, for freeing matchers */
};

struct nn_promql_expr {
  struct nn_pool pool;
  struct nn__promql_node *root;
  struct nn__promql_node *sels;
  const char *text;
};

int nn__promql_print_node(struct nn_buf *b, const struct nn__promql_node *n);

/* ---- evaluation values ---- */

/* The reserved NaN marking "no point at this step". Input NaNs with this payload are
 * rewritten to the ordinary NaN when loaded, so the marker cannot come from data. */
#define NN__PROMQL_ABSENT_BITS 0x7ff4a65e1c0d0000ULL

static inline bool nn__promql_absent(double v)
{
  uint64_t b;
  memcpy(&b, &v, sizeof(b));
  return b == NN__PROMQL_ABSENT_BITS;
}

static inline double nn__promql_absent_value(void)
{
  uint64_t b = NN__PROMQL_ABSENT_BITS;
  double v;
  memcpy(&v, &b, sizeof(v));
  return v;
}

struct nn__promql_ser {
  const struct nn_label *ls;
  size_t nls;
  double *v; /* one slot per step */
  bool drop_name;
};

struct nn__promql_vec {
  struct nn__promql_ser *s;
  size_t n, cap;
};

struct nn__promql_grid {
  int64_t start, step; /* step > 0 */
  size_t n;
};

static inline int64_t nn__promql_ts(const struct nn__promql_grid *g, size_t i)
{
  return g->start + (int64_t)i * g->step;
}

/* Raw samples of one series for range-vector functions (stale markers removed). */
struct nn__promql_rser {
  const struct nn_label *ls;
  size_t nls;
  const int64_t *t;
  const double *v;
  size_t n;
  bool drop_name;
};

struct nn__promql_rvec {
  struct nn__promql_rser *s;
  size_t n;
  int64_t range_ms, offset_ms;
  int at;
  int64_t at_ms;
};

struct nn__promql_val {
  int vt;
  struct nn__promql_vec vec; /* VT_VECTOR */
  double *sc;                /* VT_SCALAR: one value per step */
  const char *str;           /* VT_STRING */
};

struct nn__promql_ctx {
  const struct nn_querier *q;
  struct nn_promql_opts opts;
  struct nn_pool pool; /* labels and scratch that live until the query ends */
  struct nn_series_set *sets;
  size_t nsets, capsets;
  size_t cur_samples;
  int64_t deadline_ns; /* 0: none */
  unsigned tick;
  int64_t qstart, qend; /* for @ start() / end() */
  struct nn_promql_error *err;
  int rc; /* the first error's code */
  /* freed step arrays of the main grid's length, reused to avoid malloc churn */
  void *free_steps;
  size_t free_steps_n;
  /* The query, and its grid, for fused aggregations that share a select (aggregate.c). */
  const struct nn__promql_node *root;
  struct nn__promql_grid top;
  struct nn__promql_stash *stash;
  size_t nstash;
};

/* Whether a sample at t lies before a window (or lookback) that starts at start: windows
 * are left-open in Prometheus 3, closed in 2.x (nn_promql_opts.prometheus_v2). */
static inline bool nn__promql_before(const struct nn__promql_ctx *c, int64_t t, int64_t start)
{
  return c->opts.prometheus_v2 ? t < start : t <= start;
}

/* The first millisecond a window starting at start can hold. */
static inline int64_t nn__promql_first(const struct nn__promql_ctx *c, int64_t start)
{
  return c->opts.prometheus_v2 ? start : start + 1;
}

int nn__promql_fail(struct nn__promql_ctx *c, enum nn_promql_errtype t, int rc, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
int nn__promql_check_deadline(struct nn__promql_ctx *c);
int nn__promql_eval(struct nn__promql_ctx *c, const struct nn__promql_node *n,
                    const struct nn__promql_grid *g, struct nn__promql_val *out);
/* Allocates n absent slots, counted against max_samples. */
double *nn__promql_alloc_steps(struct nn__promql_ctx *c, size_t n);
void nn__promql_free_steps(struct nn__promql_ctx *c, double *v, size_t n);
int nn__promql_vec_push(struct nn__promql_ctx *c, struct nn__promql_vec *v,
                        const struct nn_label *ls, size_t nls, double *vals, bool drop_name);
void nn__promql_vec_free(struct nn__promql_ctx *c, struct nn__promql_vec *v, size_t nsteps);
void nn__promql_rvec_free(struct nn__promql_ctx *c, struct nn__promql_rvec *r);
/* Evaluates a matrix-typed node (selector or subquery) into raw samples per series. */
int nn__promql_eval_range_vector(struct nn__promql_ctx *c, const struct nn__promql_node *n,
                                 const struct nn__promql_grid *g, struct nn__promql_rvec *out);
/* A vector selector whose values are its samples' timestamps (for timestamp()). */
int nn__promql_eval_vsel_ts(struct nn__promql_ctx *c, const struct nn__promql_node *n,
                            const struct nn__promql_grid *g, struct nn__promql_vec *out);
/* Reference time of step i for a selector with offset/@. */
int64_t nn__promql_ref_time(const struct nn__promql_ctx *c, int at, int64_t at_ms, int64_t off,
                            int64_t ts);

/* Label helpers (pool memory). */
const struct nn_label *nn__promql_labels_set(struct nn__promql_ctx *c, const struct nn_label *ls,
                                             size_t nls, const char *name, const char *value,
                                             size_t *outn);
const struct nn_label *nn__promql_labels_without(struct nn__promql_ctx *c,
                                                 const struct nn_label *ls, size_t nls,
                                                 const char *const *names, size_t nnames,
                                                 bool drop_metric, bool keep, size_t *outn);
uint64_t nn__promql_hash_subset(const struct nn_label *ls, size_t nls, const char *const *names,
                                size_t nnames, bool on);

/* Merges series with equal label sets; equal sets with a point at the same step are an
 * error. Used after label-changing operations and at the end of evaluation. */
int nn__promql_vec_merge(struct nn__promql_ctx *c, struct nn__promql_vec *v, size_t nsteps);

/* ---- hash map: uint64 key -> uint32 value ---- */

struct nn__promql_hmap {
  uint64_t *keys;
  uint32_t *vals;
  size_t cap, n; /* cap is a power of two */
};

int nn__promql_hmap_init(struct nn__promql_hmap *m, size_t hint);
void nn__promql_hmap_fini(struct nn__promql_hmap *m);
/* Returns a pointer to the value slot; *found tells whether the key existed. NULL on OOM. */
uint32_t *nn__promql_hmap_put(struct nn__promql_hmap *m, uint64_t key, bool *found);
uint32_t *nn__promql_hmap_get(const struct nn__promql_hmap *m, uint64_t key);

/* ---- functions and aggregations ---- */

enum nn__promql_fkind {
  FK_RANGE,   /* first matrix argument, evaluated per window */
  FK_INSTANT, /* everything else */
};

struct nn__promql_func {
  const char *name;
  int argtypes[6];
  int nargs;    /* number of entries in argtypes */
  int variadic; /* 0 fixed; >0 that many optional trailing args; -1 unlimited repeats */
  int ret;
  bool experimental;
  int kind;
  int id;
};

const struct nn__promql_func *nn__promql_func_lookup(const char *name, size_t n);
int nn__promql_eval_call(struct nn__promql_ctx *c, const struct nn__promql_node *n,
                         const struct nn__promql_grid *g, struct nn__promql_val *out);
int nn__promql_eval_agg(struct nn__promql_ctx *c, const struct nn__promql_node *n,
                        const struct nn__promql_grid *g, struct nn__promql_val *out);

/* Called once per series of a streamed range-function call with its step values
 * (absent-filled; valid only during the call). A negative return stops the stream. */
typedef int (*nn__promql_series_fn)(void *ud, const struct nn_label *ls, size_t nls, bool drop_name,
                                    const double *vals);
/* True when call n is a range function that nn__promql_eval_range_stream can evaluate. */
bool nn__promql_call_streams(const struct nn__promql_node *n);
/* Evaluates range-function call n series by series without keeping a step array per
 * series (for aggregations over it): fn sees each series that has a point. */
int nn__promql_eval_range_stream(struct nn__promql_ctx *c, const struct nn__promql_node *n,
                                 const struct nn__promql_grid *g, nn__promql_series_fn fn,
                                 void *ud);
/* One consumer of a shared streamed select: range-function call (one argument, a matrix
 * selector) fed the series that also match extra (matchers of its selector that the
 * shared select leaves out), each handed to fn. */
struct nn__promql_share {
  const struct nn__promql_node *call;
  const struct nn_matcher *const *extra;
  size_t nextra;
  nn__promql_series_fn fn;
  void *ud;
};
/* True when call n can be a consumer of a shared select. */
bool nn__promql_call_shares(const struct nn__promql_node *n);
/* The vector selector under call n's matrix argument, or NULL (a subquery). */
const struct nn__promql_node *nn__promql_call_vsel(const struct nn__promql_node *n);
/* Streams the series matching ms once and evaluates every consumer's call over them. The
 * consumers' selectors must agree on offset and @. */
int nn__promql_eval_range_shared(struct nn__promql_ctx *c, const struct nn_matcher *ms, size_t nms,
                                 const struct nn__promql_share *sh, size_t nsh,
                                 const struct nn__promql_grid *g);
/* Fused aggregations evaluated ahead of time by a shared select, waiting to be asked for. */
void nn__promql_stash_free(struct nn__promql_ctx *c);
/* Counts n samples against max_samples (NN_ELIMIT with the error set) / gives them back. */
int nn__promql_account(struct nn__promql_ctx *c, size_t n);
void nn__promql_unaccount(struct nn__promql_ctx *c, size_t n);

/* Kahan summation step (Prometheus kahansum.Inc). */
static inline void nn__promql_kahan_inc(double inc, double *sum, double *c)
{
  double t = *sum + inc;
  if (t != t || t - t != 0) { /* NaN or Inf: compensation is meaningless */
    *sum = t;
    *c = 0;
    return;
  }
  double a = *sum < 0 ? -*sum : *sum, b = inc < 0 ? -inc : inc;
  if (a >= b)
    *c += (*sum - t) + inc;
  else
    *c += (inc - t) + *sum;
  *sum = t;
}

/* Prometheus's quantile over values (sorted in place). */
double nn__promql_quantile(double q, double *v, size_t n);

#endif
