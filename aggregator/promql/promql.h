/* SPDX-License-Identifier: Apache-2.0 */
/* The PromQL engine's public API: parse a query into an expression, evaluate it as an
 * instant or range query against a querier, and format sample values the way the
 * Prometheus HTTP API does. Float samples only; native histograms are not supported. */
#ifndef NN_AGGREGATOR_PROMQL_PROMQL_H
#define NN_AGGREGATOR_PROMQL_PROMQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/storage/storage.h"
#include "common/labels.h"

struct nn_buf;

enum nn_promql_value_type {
  NN_PROMQL_NONE,
  NN_PROMQL_SCALAR,
  NN_PROMQL_VECTOR, /* instant vector */
  NN_PROMQL_MATRIX, /* range vector */
  NN_PROMQL_STRING,
};

/* Error classes as the HTTP API names them (errorType). */
enum nn_promql_errtype {
  NN_PROMQL_ERR_NONE,
  NN_PROMQL_ERR_BAD_DATA,  /* parse or type error in the query: HTTP 400 */
  NN_PROMQL_ERR_EXECUTION, /* error while evaluating: HTTP 422 */
  NN_PROMQL_ERR_TIMEOUT,   /* deadline passed: HTTP 503 */
  NN_PROMQL_ERR_CANCELED,
  NN_PROMQL_ERR_INTERNAL, /* storage failure, out of memory: HTTP 500 */
};

struct nn_promql_error {
  enum nn_promql_errtype type;
  char msg[512]; /* Prometheus's wording, e.g. "1:5: parse error: unclosed left parenthesis" */
};

struct nn_promql_opts {
  int64_t lookback_ms;      /* staleness lookback; 0 means 5 minutes */
  size_t max_samples;       /* samples held at once; 0 means 50,000,000 */
  int64_t timeout_ms;       /* 0 means no deadline */
  int64_t subquery_step_ms; /* default step of [range:]; 0 means 1 minute */
  /* Prometheus 2.x semantics where 3.0 changed them: rate/increase extrapolate to the
   * counter's zero point before the threshold test, and histogram_quantile forces
   * monotonic buckets without the 1e-12 relative tolerance. Default (false): 3.x. */
  bool prometheus_v2;
};

/* One series of a result. For a vector it has exactly one point (the evaluation time). */
struct nn_promql_series {
  struct nn_label *labels;
  size_t nlabels;
  int64_t *t; /* milliseconds */
  double *v;
  size_t n;
};

/* A query result. Vectors keep the engine's order (sort(), topk() order is meaningful);
 * matrices are sorted by label set. All memory belongs to the result. */
struct nn_promql_result {
  enum nn_promql_value_type type;
  struct nn_promql_series *series;
  size_t nseries;
  int64_t t;     /* scalar and string results: evaluation time */
  double scalar; /* scalar result */
  char *str;     /* string result */
  void *priv;
};

/* A parsed, type-checked expression. Immutable after parsing; may be evaluated many times
 * but not concurrently (compiled regex match data is shared). */
struct nn_promql_expr;

/* Parses query[0..len). On failure err holds Prometheus's message with a line:col position
 * and NN_EINVAL is returned; NN_ENOMEM when out of memory. */
int nn_promql_parse(const char *query, size_t len, struct nn_promql_expr **out,
                    struct nn_promql_error *err);
void nn_promql_expr_free(struct nn_promql_expr *e);
/* Starts loading the expression into the cache, one level at a time: stage 0 the
 * expression, stage 1 its root node, stage k the nodes k - 1 levels below it (a call's
 * arguments and a selector's matchers one level further). A loop evaluating many
 * expressions calls it for the ones a few places ahead, a stage per expression, so each
 * stage finds the nodes it reads already loaded. Reads nothing the previous stage did not
 * start loading; changes nothing. */
void nn_promql_expr_prefetch(const struct nn_promql_expr *e, int stage);
/* Type of the value the expression evaluates to. */
enum nn_promql_value_type nn_promql_expr_type(const struct nn_promql_expr *e);
/* Appends the canonical text form of the expression (Prometheus's String()). */
int nn_promql_expr_print(const struct nn_promql_expr *e, struct nn_buf *out);

/* Evaluates e at time t (ms). Fills out (release with nn_promql_result_fini). On error
 * returns a negative NN_E* code with err filled in. */
int nn_promql_eval_instant(const struct nn_querier *q, const struct nn_promql_expr *e, int64_t t,
                           const struct nn_promql_opts *opts, struct nn_promql_result *out,
                           struct nn_promql_error *err);
/* Evaluates e at start, start+step, ... <= end (ms). The result is a matrix sorted by labels.
 * The expression must be of scalar or instant vector type. */
int nn_promql_eval_range(const struct nn_querier *q, const struct nn_promql_expr *e, int64_t start,
                         int64_t end, int64_t step, const struct nn_promql_opts *opts,
                         struct nn_promql_result *out, struct nn_promql_error *err);
void nn_promql_result_fini(struct nn_promql_result *r);

/* Formats v like Prometheus's JSON API: shortest round-trip digits, 'f' layout unless the
 * exponent is < -4 or >= 21 ('e' layout, "1e-07"), "NaN", "+Inf", "-Inf". Returns the
 * length written (buf is always NUL-terminated; 32 bytes are always enough). */
size_t nn_promql_format_float(double v, char *buf, size_t len);
/* Go's strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never exponent. */
size_t nn_promql_format_float_f(double v, char *buf, size_t len);
/* "bad_data", "execution", "timeout", "canceled", "internal". */
const char *nn_promql_errtype_name(enum nn_promql_errtype t);

#endif
