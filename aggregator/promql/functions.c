/* SPDX-License-Identifier: Apache-2.0 */
/* PromQL functions: the table the parser type-checks against, and their evaluation over
 * all steps at once. Range-vector functions walk each series' samples with two moving
 * window indices, so a range query costs O(samples + steps) per series. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "aggregator/promql/internal.h"
#include "common/buf.h"
#include "common/error.h"

typedef struct nn__promql_node node_t;

enum {
  F_ABS,
  F_ABSENT,
  F_ABSENT_OVER_TIME,
  F_ACOS,
  F_ACOSH,
  F_ASIN,
  F_ASINH,
  F_ATAN,
  F_ATANH,
  F_AVG_OVER_TIME,
  F_CEIL,
  F_CHANGES,
  F_CLAMP,
  F_CLAMP_MAX,
  F_CLAMP_MIN,
  F_COS,
  F_COSH,
  F_COUNT_OVER_TIME,
  F_DAYS_IN_MONTH,
  F_DAY_OF_MONTH,
  F_DAY_OF_WEEK,
  F_DAY_OF_YEAR,
  F_DEG,
  F_DELTA,
  F_DERIV,
  F_EXP,
  F_FIRST_OVER_TIME,
  F_FLOOR,
  F_HISTOGRAM_AVG,
  F_HISTOGRAM_COUNT,
  F_HISTOGRAM_FRACTION,
  F_HISTOGRAM_QUANTILE,
  F_HISTOGRAM_SUM,
  F_HISTOGRAM_STDDEV,
  F_HISTOGRAM_STDVAR,
  F_DOUBLE_EXP_SMOOTHING,
  F_HOUR,
  F_IDELTA,
  F_INCREASE,
  F_IRATE,
  F_LABEL_REPLACE,
  F_LABEL_JOIN,
  F_LN,
  F_LOG10,
  F_LOG2,
  F_LAST_OVER_TIME,
  F_MAD_OVER_TIME,
  F_MAX_OVER_TIME,
  F_MIN_OVER_TIME,
  F_TS_OF_FIRST,
  F_TS_OF_LAST,
  F_TS_OF_MAX,
  F_TS_OF_MIN,
  F_MINUTE,
  F_MONTH,
  F_PI,
  F_PREDICT_LINEAR,
  F_PRESENT_OVER_TIME,
  F_QUANTILE_OVER_TIME,
  F_RAD,
  F_RATE,
  F_RESETS,
  F_ROUND,
  F_SCALAR,
  F_SGN,
  F_SIN,
  F_SINH,
  F_SORT,
  F_SORT_DESC,
  F_SORT_BY_LABEL,
  F_SORT_BY_LABEL_DESC,
  F_SQRT,
  F_STDDEV_OVER_TIME,
  F_STDVAR_OVER_TIME,
  F_SUM_OVER_TIME,
  F_TAN,
  F_TANH,
  F_TIME,
  F_TIMESTAMP,
  F_VECTOR,
  F_YEAR,
};

#define S   VT_SCALAR
#define V   VT_VECTOR
#define M   VT_MATRIX
#define STR VT_STRING
#define R   FK_RANGE
#define I   FK_INSTANT

static const struct nn__promql_func funcs[] = {
    {"abs", {V}, 1, 0, V, false, I, F_ABS},
    {"absent", {V}, 1, 0, V, false, I, F_ABSENT},
    {"absent_over_time", {M}, 1, 0, V, false, R, F_ABSENT_OVER_TIME},
    {"acos", {V}, 1, 0, V, false, I, F_ACOS},
    {"acosh", {V}, 1, 0, V, false, I, F_ACOSH},
    {"asin", {V}, 1, 0, V, false, I, F_ASIN},
    {"asinh", {V}, 1, 0, V, false, I, F_ASINH},
    {"atan", {V}, 1, 0, V, false, I, F_ATAN},
    {"atanh", {V}, 1, 0, V, false, I, F_ATANH},
    {"avg_over_time", {M}, 1, 0, V, false, R, F_AVG_OVER_TIME},
    {"ceil", {V}, 1, 0, V, false, I, F_CEIL},
    {"changes", {M}, 1, 0, V, false, R, F_CHANGES},
    {"clamp", {V, S, S}, 3, 0, V, false, I, F_CLAMP},
    {"clamp_max", {V, S}, 2, 0, V, false, I, F_CLAMP_MAX},
    {"clamp_min", {V, S}, 2, 0, V, false, I, F_CLAMP_MIN},
    {"cos", {V}, 1, 0, V, false, I, F_COS},
    {"cosh", {V}, 1, 0, V, false, I, F_COSH},
    {"count_over_time", {M}, 1, 0, V, false, R, F_COUNT_OVER_TIME},
    {"days_in_month", {V}, 1, 1, V, false, I, F_DAYS_IN_MONTH},
    {"day_of_month", {V}, 1, 1, V, false, I, F_DAY_OF_MONTH},
    {"day_of_week", {V}, 1, 1, V, false, I, F_DAY_OF_WEEK},
    {"day_of_year", {V}, 1, 1, V, false, I, F_DAY_OF_YEAR},
    {"deg", {V}, 1, 0, V, false, I, F_DEG},
    {"delta", {M}, 1, 0, V, false, R, F_DELTA},
    {"deriv", {M}, 1, 0, V, false, R, F_DERIV},
    {"exp", {V}, 1, 0, V, false, I, F_EXP},
    {"first_over_time", {M}, 1, 0, V, false, R, F_FIRST_OVER_TIME},
    {"floor", {V}, 1, 0, V, false, I, F_FLOOR},
    {"histogram_avg", {V}, 1, 0, V, false, I, F_HISTOGRAM_AVG},
    {"histogram_count", {V}, 1, 0, V, false, I, F_HISTOGRAM_COUNT},
    {"histogram_fraction", {S, S, V}, 3, 0, V, false, I, F_HISTOGRAM_FRACTION},
    {"histogram_quantile", {S, V}, 2, 0, V, false, I, F_HISTOGRAM_QUANTILE},
    {"histogram_sum", {V}, 1, 0, V, false, I, F_HISTOGRAM_SUM},
    {"histogram_stddev", {V}, 1, 0, V, false, I, F_HISTOGRAM_STDDEV},
    {"histogram_stdvar", {V}, 1, 0, V, false, I, F_HISTOGRAM_STDVAR},
    {"double_exponential_smoothing", {M, S, S}, 3, 0, V, true, R, F_DOUBLE_EXP_SMOOTHING},
    {"hour", {V}, 1, 1, V, false, I, F_HOUR},
    {"idelta", {M}, 1, 0, V, false, R, F_IDELTA},
    {"increase", {M}, 1, 0, V, false, R, F_INCREASE},
    {"irate", {M}, 1, 0, V, false, R, F_IRATE},
    {"label_replace", {V, STR, STR, STR, STR}, 5, 0, V, false, I, F_LABEL_REPLACE},
    {"label_join", {V, STR, STR, STR}, 4, -1, V, false, I, F_LABEL_JOIN},
    {"ln", {V}, 1, 0, V, false, I, F_LN},
    {"log10", {V}, 1, 0, V, false, I, F_LOG10},
    {"log2", {V}, 1, 0, V, false, I, F_LOG2},
    {"last_over_time", {M}, 1, 0, V, false, R, F_LAST_OVER_TIME},
    {"mad_over_time", {M}, 1, 0, V, true, R, F_MAD_OVER_TIME},
    {"max_over_time", {M}, 1, 0, V, false, R, F_MAX_OVER_TIME},
    {"min_over_time", {M}, 1, 0, V, false, R, F_MIN_OVER_TIME},
    {"ts_of_first_over_time", {M}, 1, 0, V, true, R, F_TS_OF_FIRST},
    {"ts_of_last_over_time", {M}, 1, 0, V, true, R, F_TS_OF_LAST},
    {"ts_of_max_over_time", {M}, 1, 0, V, true, R, F_TS_OF_MAX},
    {"ts_of_min_over_time", {M}, 1, 0, V, true, R, F_TS_OF_MIN},
    {"minute", {V}, 1, 1, V, false, I, F_MINUTE},
    {"month", {V}, 1, 1, V, false, I, F_MONTH},
    {"pi", {0}, 0, 0, S, false, I, F_PI},
    {"predict_linear", {M, S}, 2, 0, V, false, R, F_PREDICT_LINEAR},
    {"present_over_time", {M}, 1, 0, V, false, R, F_PRESENT_OVER_TIME},
    {"quantile_over_time", {S, M}, 2, 0, V, false, R, F_QUANTILE_OVER_TIME},
    {"rad", {V}, 1, 0, V, false, I, F_RAD},
    {"rate", {M}, 1, 0, V, false, R, F_RATE},
    {"resets", {M}, 1, 0, V, false, R, F_RESETS},
    {"round", {V, S}, 2, 1, V, false, I, F_ROUND},
    {"scalar", {V}, 1, 0, S, false, I, F_SCALAR},
    {"sgn", {V}, 1, 0, V, false, I, F_SGN},
    {"sin", {V}, 1, 0, V, false, I, F_SIN},
    {"sinh", {V}, 1, 0, V, false, I, F_SINH},
    {"sort", {V}, 1, 0, V, false, I, F_SORT},
    {"sort_desc", {V}, 1, 0, V, false, I, F_SORT_DESC},
    {"sort_by_label", {V, STR}, 2, -1, V, true, I, F_SORT_BY_LABEL},
    {"sort_by_label_desc", {V, STR}, 2, -1, V, true, I, F_SORT_BY_LABEL_DESC},
    {"sqrt", {V}, 1, 0, V, false, I, F_SQRT},
    {"stddev_over_time", {M}, 1, 0, V, false, R, F_STDDEV_OVER_TIME},
    {"stdvar_over_time", {M}, 1, 0, V, false, R, F_STDVAR_OVER_TIME},
    {"sum_over_time", {M}, 1, 0, V, false, R, F_SUM_OVER_TIME},
    {"tan", {V}, 1, 0, V, false, I, F_TAN},
    {"tanh", {V}, 1, 0, V, false, I, F_TANH},
    {"time", {0}, 0, 0, S, false, I, F_TIME},
    {"timestamp", {V}, 1, 0, V, false, I, F_TIMESTAMP},
    {"vector", {S}, 1, 0, V, false, I, F_VECTOR},
    {"year", {V}, 1, 1, V, false, I, F_YEAR},
};

#undef S
#undef V
#undef M
#undef STR
#undef R
#undef I

const struct nn__promql_func *nn__promql_func_lookup(const char *name, size_t n)
{
  for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++)
    if (strlen(funcs[i].name) == n && memcmp(funcs[i].name, name, n) == 0)
      return &funcs[i];
  return NULL;
}

/* ---- helpers ---- */

static const struct nn_label no_labels[1] = {{"", ""}};

static double go_min(double a, double b)
{
  if (isinf(a) && a < 0)
    return a;
  if (isinf(b) && b < 0)
    return b;
  if (isnan(a) || isnan(b))
    return NAN;
  return a < b ? a : b;
}

static double go_max(double a, double b)
{
  if (isinf(a) && a > 0)
    return a;
  if (isinf(b) && b > 0)
    return b;
  if (isnan(a) || isnan(b))
    return NAN;
  return a > b ? a : b;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  /* NaN sorts first, as Go's sort with vectorByValueHeap.Less does */
  if (isnan(x))
    return isnan(y) ? 0 : -1;
  if (isnan(y))
    return 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

double nn__promql_quantile(double q, double *v, size_t n)
{
  if (n == 0 || isnan(q))
    return NAN;
  if (q < 0)
    return -INFINITY;
  if (q > 1)
    return INFINITY;
  qsort(v, n, sizeof(*v), cmp_double);
  double rank = q * (double)(n - 1);
  double lower = fmax(0, floor(rank));
  double upper = fmin((double)(n - 1), lower + 1);
  double w = rank - floor(rank);
  return v[(size_t)lower] * (1 - w) + v[(size_t)upper] * w;
}

static const char *string_arg(const node_t *n)
{
  while (n->kind == N_PAREN)
    n = n->child;
  return n->kind == N_STRING ? n->str : "";
}

/* ---- range functions ---- */

struct window {
  const int64_t *t;
  const double *v;
  size_t n;
  int64_t rstart, rend, ts;
  double range_s;
  bool monotone; /* the whole series never decreases: no counter reset in any window */
  bool v2;       /* Prometheus 2.x semantics (nn_promql_opts.prometheus_v2) */
};

static bool extrapolated_rate(const struct window *w, bool counter, bool rate, double *out)
{
  if (w->n < 2)
    return false;
  double result = w->v[w->n - 1] - w->v[0];
  if (counter && !w->monotone)
    for (size_t i = 1; i < w->n; i++)
      if (w->v[i] < w->v[i - 1])
        result += w->v[i - 1];
  double to_start = (double)(w->t[0] - w->rstart) / 1000;
  double to_end = (double)(w->rend - w->t[w->n - 1]) / 1000;
  double sampled = (double)(w->t[w->n - 1] - w->t[0]) / 1000;
  double avg = sampled / (double)(w->n - 1);
  double thr = avg * 1.1;
  /* The counter's zero point caps the distance to the range start: 2.x before the
   * threshold test (so a zero point within the threshold is extrapolated to even when the
   * first sample is far from the start), 3.x after it. They differ only where a series
   * starts inside the range. */
  bool zero_cap = counter && result > 0 && w->v[0] >= 0;
  double to_zero = zero_cap ? sampled * (w->v[0] / result) : 0;
  if (w->v2 && zero_cap && to_zero < to_start)
    to_start = to_zero;
  if (to_start >= thr)
    to_start = avg / 2;
  if (!w->v2 && zero_cap && to_zero < to_start)
    to_start = to_zero;
  if (to_end >= thr)
    to_end = avg / 2;
  double factor = (sampled + to_start + to_end) / sampled;
  if (rate)
    factor /= w->range_s;
  *out = result * factor;
  return true;
}

static bool instant_value(const struct window *w, bool rate, double *out)
{
  if (w->n < 2)
    return false;
  int64_t dt = w->t[w->n - 1] - w->t[w->n - 2];
  if (dt == 0)
    return false;
  double a = w->v[w->n - 2], b = w->v[w->n - 1];
  double r = b;
  if (!rate || !(b < a))
    r = b - a;
  if (rate)
    r /= (double)dt / 1000;
  *out = r;
  return true;
}

static void linear_regression(const struct window *w, int64_t icpt, double *slope,
                              double *intercept)
{
  double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
  double init = w->v[0];
  bool consty = true;
  for (size_t i = 0; i < w->n; i++) {
    if (consty && i > 0 && w->v[i] != init)
      consty = false;
    n += 1;
    double x = (double)(w->t[i] - icpt) / 1e3;
    nn__promql_kahan_inc(x, &sx, &cx);
    nn__promql_kahan_inc(w->v[i], &sy, &cy);
    nn__promql_kahan_inc(x * w->v[i], &sxy, &cxy);
    nn__promql_kahan_inc(x * x, &sx2, &cx2);
  }
  if (consty) {
    if (isinf(init)) {
      *slope = NAN;
      *intercept = NAN;
      return;
    }
    *slope = 0;
    *intercept = init;
    return;
  }
  sx += cx;
  sy += cy;
  sxy += cxy;
  sx2 += cx2;
  double cov = sxy - sx * sy / n;
  double var = sx2 - sx * sx / n;
  *slope = cov / var;
  *intercept = sy / n - *slope * sx / n;
}

static double avg_over(const struct window *w)
{
  double sum = w->v[0], count = 1, mean = 0, c = 0;
  bool incr = false;
  for (size_t i = 1; i < w->n; i++) {
    double f = w->v[i];
    count = (double)(i + 1);
    if (!incr) {
      double ns = sum, nc = c;
      nn__promql_kahan_inc(f, &ns, &nc);
      if (!isinf(ns)) {
        sum = ns;
        c = nc;
        continue;
      }
      incr = true;
      mean = sum / (count - 1);
      c /= (count - 1);
    }
    double q = (count - 1) / count;
    double m = q * mean, cc = q * c;
    nn__promql_kahan_inc(f / count, &m, &cc);
    mean = m;
    c = cc;
  }
  if (incr)
    return mean + c;
  return sum / count + c / count;
}

static double variance_over(const struct window *w)
{
  double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
  for (size_t i = 0; i < w->n; i++) {
    double f = w->v[i];
    count++;
    double delta = f - (mean + cmean);
    nn__promql_kahan_inc(delta / count, &mean, &cmean);
    nn__promql_kahan_inc(delta * (f - (mean + cmean)), &aux, &caux);
  }
  return (aux + caux) / count;
}

struct rparams {
  const double *p0, *p1; /* scalar args per step */
};

static int range_one(struct nn__promql_ctx *c, int id, const struct window *w, size_t step,
                     const struct rparams *rp, double *out, bool *ok)
{
  *ok = true;
  switch (id) {
  case F_RATE: *ok = extrapolated_rate(w, true, true, out); break;
  case F_INCREASE: *ok = extrapolated_rate(w, true, false, out); break;
  case F_DELTA: *ok = extrapolated_rate(w, false, false, out); break;
  case F_IRATE: *ok = instant_value(w, true, out); break;
  case F_IDELTA: *ok = instant_value(w, false, out); break;
  case F_DERIV: {
    if (w->n < 2) {
      *ok = false;
      break;
    }
    double slope, icpt;
    linear_regression(w, w->t[0], &slope, &icpt);
    *out = slope;
    break;
  }
  case F_PREDICT_LINEAR: {
    if (w->n < 2) {
      *ok = false;
      break;
    }
    double slope, icpt;
    linear_regression(w, w->ts, &slope, &icpt);
    *out = slope * rp->p0[step] + icpt;
    break;
  }
  case F_RESETS:
  case F_CHANGES: {
    double cnt = 0;
    for (size_t i = 1; i < w->n; i++) {
      double p = w->v[i - 1], cur = w->v[i];
      if (id == F_RESETS ? cur < p : (cur != p && !(isnan(cur) && isnan(p))))
        cnt++;
    }
    *out = cnt;
    break;
  }
  case F_AVG_OVER_TIME: *out = avg_over(w); break;
  case F_COUNT_OVER_TIME: *out = (double)w->n; break;
  case F_SUM_OVER_TIME: {
    double s = 0, cc = 0;
    for (size_t i = 0; i < w->n; i++)
      nn__promql_kahan_inc(w->v[i], &s, &cc);
    *out = isinf(s) ? s : s + cc;
    break;
  }
  case F_MAX_OVER_TIME:
  case F_MIN_OVER_TIME:
  case F_TS_OF_MAX:
  case F_TS_OF_MIN: {
    double best = w->v[0];
    int64_t bt = w->t[0];
    for (size_t i = 0; i < w->n; i++) {
      double f = w->v[i];
      bool take;
      switch (id) {
      case F_MAX_OVER_TIME: take = f > best || isnan(best); break;
      case F_MIN_OVER_TIME: take = f < best || isnan(best); break;
      case F_TS_OF_MAX: take = f >= best || isnan(best); break;
      default: take = f <= best || isnan(best); break;
      }
      if (take) {
        best = f;
        bt = w->t[i];
      }
    }
    *out = (id == F_TS_OF_MAX || id == F_TS_OF_MIN) ? (double)bt / 1000 : best;
    break;
  }
  case F_LAST_OVER_TIME: *out = w->v[w->n - 1]; break;
  case F_FIRST_OVER_TIME: *out = w->v[0]; break;
  case F_TS_OF_FIRST: *out = (double)w->t[0] / 1000; break;
  case F_TS_OF_LAST: *out = (double)w->t[w->n - 1] / 1000; break;
  case F_PRESENT_OVER_TIME: *out = 1; break;
  case F_STDDEV_OVER_TIME: *out = sqrt(variance_over(w)); break;
  case F_STDVAR_OVER_TIME: *out = variance_over(w); break;
  case F_QUANTILE_OVER_TIME:
  case F_MAD_OVER_TIME: {
    double *tmp = malloc(w->n * sizeof(*tmp));
    if (!tmp)
      return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
    memcpy(tmp, w->v, w->n * sizeof(*tmp));
    if (id == F_QUANTILE_OVER_TIME) {
      *out = nn__promql_quantile(rp->p0[step], tmp, w->n);
    } else {
      bool nan = false;
      for (size_t i = 0; i < w->n; i++)
        nan |= isnan(w->v[i]) != 0;
      double med = nn__promql_quantile(0.5, tmp, w->n);
      for (size_t i = 0; i < w->n; i++)
        tmp[i] = fabs(w->v[i] - med);
      *out = nan ? NAN : nn__promql_quantile(0.5, tmp, w->n);
    }
    free(tmp);
    break;
  }
  case F_DOUBLE_EXP_SMOOTHING: {
    double sf = rp->p0[step], tf = rp->p1[step];
    if (sf <= 0 || sf >= 1)
      return nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL,
                             "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", sf);
    if (tf <= 0 || tf >= 1)
      return nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL,
                             "invalid trend factor. Expected: 0 < tf < 1, got: %f", tf);
    if (w->n < 2) {
      *ok = false;
      break;
    }
    double s0 = 0, s1 = w->v[0], b = w->v[1] - w->v[0];
    for (size_t i = 1; i < w->n; i++) {
      double x = sf * w->v[i];
      if (i - 1 != 0)
        b = tf * (s1 - s0) + (1 - tf) * b;
      double y = (1 - sf) * (s1 + b);
      s0 = s1;
      s1 = x + y;
    }
    *out = s1;
    break;
  }
  default: *ok = false; break;
  }
  return 0;
}

static bool keeps_name(int id)
{
  return id == F_LAST_OVER_TIME || id == F_FIRST_OVER_TIME;
}

static const struct nn_label *absent_labels(struct nn__promql_ctx *c, const node_t *arg,
                                            size_t *outn)
{
  const node_t *vs = arg->kind == N_VSEL ? arg : arg->kind == N_MSEL ? arg->child : NULL;
  *outn = 0;
  struct nn_label *o = nn_pool_alloc(&c->pool, ((vs ? vs->nmatchers : 0) + 1) * sizeof(*o));
  if (!o)
    return NULL;
  if (!vs)
    return o;
  size_t k = 0;
  for (size_t i = 0; i < vs->nmatchers; i++) {
    const struct nn_matcher *m = &vs->matchers[i];
    if (strcmp(m->name, "__name__") == 0)
      continue;
    size_t j;
    for (j = 0; j < k; j++)
      if (strcmp(o[j].name, m->name) == 0)
        break;
    bool seen = false;
    for (size_t p = 0; p < i; p++)
      if (strcmp(vs->matchers[p].name, m->name) == 0 && vs->matchers[p].type == NN_MATCH_EQ)
        seen = true;
    if (m->type == NN_MATCH_EQ && !seen) {
      if (j == k)
        o[k++] = (struct nn_label){m->name, m->value};
      else
        o[j].value = m->value;
    } else if (j < k) {
      memmove(&o[j], &o[j + 1], (k - j - 1) * sizeof(*o));
      k--;
    }
  }
  k = nn_labels_canonicalize(o, k);
  *outn = k;
  return o;
}

/* Evaluates range function id over one series' windows into vals (absent-filled, g->n
 * slots); *any tells whether some step has a value. */
static int range_series(struct nn__promql_ctx *c, int id, const struct nn__promql_rvec *rv,
                        const struct nn__promql_rser *rs, const struct nn__promql_grid *g,
                        const struct rparams *rp, double *vals, bool *any)
{
  double range_s = (double)rv->range_ms / 1000.0;
  size_t lo = 0, hi = 0;
  int rc;
  *any = false;
  /* A counter without resets needs no per-window reset scan, which for a 1h window at a
   * 30s scrape is 120 comparisons per step; one pass over the series settles it. */
  bool monotone = false;
  if (id == F_RATE || id == F_INCREASE) {
    monotone = true;
    for (size_t k = 1; k < rs->n && monotone; k++)
      monotone = !(rs->v[k] < rs->v[k - 1]);
  }
  if ((id == F_RATE || id == F_INCREASE || id == F_DELTA) && rv->at == AT_NONE) {
    /* The dashboard case, without the per-step dispatch: same operations, same bits. */
    bool counter = id != F_DELTA, rate = id == F_RATE, v2 = c->opts.prometheus_v2;
    struct window w = {rs->t, rs->v, 0, 0, 0, 0, range_s, monotone, v2};
    const int64_t *t = rs->t;
    size_t n = rs->n;
    for (size_t i = 0; i < g->n; i++) {
      int64_t ts = g->start + (int64_t)i * g->step, ref = ts - rv->offset_ms;
      int64_t start = ref - rv->range_ms;
      if (v2)
        while (lo < n && t[lo] < start)
          lo++;
      else
        while (lo < n && t[lo] <= start)
          lo++;
      if (hi < lo)
        hi = lo;
      while (hi < n && t[hi] <= ref)
        hi++;
      if (hi - lo < 2)
        continue;
      w.t = t + lo;
      w.v = rs->v + lo;
      w.n = hi - lo;
      w.rstart = start;
      w.rend = ref;
      w.ts = ts;
      if (extrapolated_rate(&w, counter, rate, &vals[i]))
        *any = true;
    }
    return 0;
  }
  for (size_t i = 0; i < g->n; i++) {
    int64_t ts = nn__promql_ts(g, i);
    int64_t ref = nn__promql_ref_time(c, rv->at, rv->at_ms, rv->offset_ms, ts);
    int64_t start = ref - rv->range_ms;
    while (lo < rs->n && nn__promql_before(c, rs->t[lo], start))
      lo++;
    if (hi < lo)
      hi = lo;
    while (hi < rs->n && rs->t[hi] <= ref)
      hi++;
    if (hi == lo)
      continue;
    struct window w = {rs->t + lo, rs->v + lo,           hi - lo, start, ref, ts, range_s,
                       monotone,   c->opts.prometheus_v2};
    bool ok;
    double v = 0;
    if ((rc = range_one(c, id, &w, i, rp, &v, &ok)) < 0)
      return rc;
    if (ok && rp->p0 == NULL && (id == F_PREDICT_LINEAR || id == F_QUANTILE_OVER_TIME))
      ok = false;
    if (ok) {
      vals[i] = v;
      *any = true;
    }
  }
  return 0;
}

/* A range function's output series from a streamed select: the step values and the
 * labels (which live only during the call) are copied. */
struct push {
  struct nn__promql_ctx *c;
  const struct nn__promql_grid *g;
  struct nn__promql_val *out;
};

static int on_push_series(void *ud, const struct nn_label *ls, size_t nls, bool drop_name,
                          const double *vals)
{
  struct push *p = ud;
  struct nn__promql_ctx *c = p->c;
  struct nn_label *cp = nn_pool_alloc(&c->pool, (nls ? nls : 1) * sizeof(*cp));
  if (!cp)
    return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
  for (size_t i = 0; i < nls; i++) {
    cp[i].name = nn_pool_strndup(&c->pool, ls[i].name, strlen(ls[i].name));
    cp[i].value = nn_pool_strndup(&c->pool, ls[i].value, strlen(ls[i].value));
    if (!cp[i].name || !cp[i].value)
      return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
  }
  double *v = nn__promql_alloc_steps(c, p->g->n);
  if (!v)
    return c->rc;
  memcpy(v, vals, p->g->n * sizeof(*v));
  int rc = nn__promql_vec_push(c, &p->out->vec, cp, nls, v, drop_name);
  if (rc < 0)
    nn__promql_free_steps(c, v, p->g->n);
  return rc;
}

static int eval_range_call(struct nn__promql_ctx *c, const node_t *n,
                           const struct nn__promql_grid *g, struct nn__promql_val *out)
{
  int id = n->func->id;
  size_t marg = id == F_QUANTILE_OVER_TIME ? 1 : 0;
  const node_t *m = n->args[marg];
  while (m->kind == N_PAREN)
    m = m->child;
  if (id != F_ABSENT_OVER_TIME && m->kind == N_MSEL) {
    /* Series by series from the store: the selection is never materialised. */
    struct push p = {c, g, out};
    out->vt = VT_VECTOR;
    memset(&out->vec, 0, sizeof(out->vec));
    int rc = nn__promql_eval_range_stream(c, n, g, on_push_series, &p);
    if (rc < 0)
      nn__promql_vec_free(c, &out->vec, g->n);
    return rc;
  }
  struct nn__promql_val params[2];
  struct rparams rp = {NULL, NULL};
  struct nn__promql_rvec rv;
  int rc = 0;
  size_t np = 0;
  memset(params, 0, sizeof(params));
  memset(&rv, 0, sizeof(rv));
  for (size_t a = 0; a < n->nargs; a++) {
    if (a == marg)
      continue;
    if ((rc = nn__promql_eval(c, n->args[a], g, &params[np])) < 0)
      goto out;
    if (np == 0)
      rp.p0 = params[0].sc;
    else
      rp.p1 = params[1].sc;
    np++;
  }
  if ((rc = nn__promql_eval_range_vector(c, n->args[marg], g, &rv)) < 0)
    goto out;
  out->vt = VT_VECTOR;
  memset(&out->vec, 0, sizeof(out->vec));
  if (id == F_ABSENT_OVER_TIME) {
    double *vals = nn__promql_alloc_steps(c, g->n);
    if (!vals) {
      rc = c->rc;
      goto out;
    }
    size_t *lo = calloc(rv.n + 1, sizeof(*lo));
    if (!lo) {
      nn__promql_free_steps(c, vals, g->n);
      rc = nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
      goto out;
    }
    bool any = false;
    for (size_t i = 0; i < g->n; i++) {
      int64_t ref = nn__promql_ref_time(c, rv.at, rv.at_ms, rv.offset_ms, nn__promql_ts(g, i));
      bool present = false;
      for (size_t s = 0; s < rv.n && !present; s++) {
        const struct nn__promql_rser *rs = &rv.s[s];
        while (lo[s] < rs->n && nn__promql_before(c, rs->t[lo[s]], ref - rv.range_ms))
          lo[s]++;
        present = lo[s] < rs->n && rs->t[lo[s]] <= ref;
      }
      if (!present) {
        vals[i] = 1;
        any = true;
      }
    }
    free(lo);
    size_t nls;
    const node_t *arg = n->args[0];
    while (arg->kind == N_PAREN)
      arg = arg->child;
    const struct nn_label *ls = absent_labels(c, arg, &nls);
    if (!any || !ls) {
      nn__promql_free_steps(c, vals, g->n);
      if (!ls)
        rc = nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
      goto out;
    }
    if ((rc = nn__promql_vec_push(c, &out->vec, ls, nls, vals, false)) < 0)
      nn__promql_free_steps(c, vals, g->n);
    goto out;
  }
  for (size_t s = 0; s < rv.n; s++) {
    const struct nn__promql_rser *rs = &rv.s[s];
    if ((s & 1023) == 1023 && (rc = nn__promql_check_deadline(c)) < 0)
      goto out;
    if (rs->n == 0)
      continue;
    double *vals = nn__promql_alloc_steps(c, g->n);
    if (!vals) {
      rc = c->rc;
      goto out;
    }
    bool any;
    if ((rc = range_series(c, id, &rv, rs, g, &rp, vals, &any)) < 0 || !any) {
      nn__promql_free_steps(c, vals, g->n);
      if (rc < 0)
        goto out;
      continue;
    }
    bool drop = keeps_name(id) ? rs->drop_name : true;
    if ((rc = nn__promql_vec_push(c, &out->vec, rs->ls, rs->nls, vals, drop)) < 0) {
      nn__promql_free_steps(c, vals, g->n);
      goto out;
    }
  }
out:
  for (size_t k = 0; k < np; k++)
    if (params[k].sc)
      nn__promql_free_steps(c, params[k].sc, g->n);
  nn__promql_rvec_free(c, &rv);
  if (rc < 0 && out->vt == VT_VECTOR)
    nn__promql_vec_free(c, &out->vec, g->n);
  return rc;
}

bool nn__promql_call_streams(const node_t *n)
{
  return n->kind == N_CALL && n->func->kind == FK_RANGE && n->func->id != F_ABSENT_OVER_TIME;
}

/* A streamed select feeding range functions: each series the store hands over is
 * evaluated at once, per consumer, in one step array, and only its points are counted
 * against max_samples (cumulatively, as Prometheus holds the function's output before
 * the aggregation; for several consumers the largest one's, as evaluating them one after
 * the other would hold), so no selection is ever materialised. Consumers with the same
 * function and range share the evaluation of a series. */
struct rcons {
  const struct nn__promql_share *sh;
  struct nn__promql_rvec rv;
  double *vals;
  int same;     /* index of an earlier consumer with the same function and range, or -1 */
  bool any, on; /* this series: a point / evaluated */
  size_t points;
};

struct rstream {
  struct nn__promql_ctx *c;
  const struct nn__promql_grid *g;
  const struct rparams *rp;
  struct rcons *k;
  size_t nk;
  size_t seen;
  size_t charged; /* points counted: the largest consumer's, as one at a time would hold */
  int64_t *t;     /* scratch for a series with stale markers */
  double *v;
  size_t cap;
};

static bool extra_match(const struct nn__promql_share *sh, const struct nn_series *sr)
{
  for (size_t i = 0; i < sh->nextra; i++) {
    const char *v = nn_labels_get(sr->labels, sr->nlabels, sh->extra[i]->name);
    if (!nn_matcher_matches(sh->extra[i], v ? v : ""))
      return false;
  }
  return true;
}

static int on_stream_series(void *ud, const struct nn_series *sr)
{
  struct rstream *st = ud;
  struct nn__promql_ctx *c = st->c;
  int rc = 0;
  if ((++st->seen & 1023) == 0 && (rc = nn__promql_check_deadline(c)) < 0)
    return rc;
  struct nn__promql_rser rs = {sr->labels, sr->nlabels, sr->t, sr->v, sr->n, false};
  size_t k = 0;
  while (k < sr->n && !(isnan(sr->v[k]) && (nn_stale_nan(sr->v[k]) || nn__promql_absent(sr->v[k]))))
    k++;
  if (k < sr->n) {
    if (st->cap < sr->n) {
      int64_t *nt = realloc(st->t, sr->n * sizeof(*nt));
      if (nt)
        st->t = nt;
      double *nv = nt ? realloc(st->v, sr->n * sizeof(*nv)) : NULL;
      if (!nv)
        return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
      st->v = nv;
      st->cap = sr->n;
    }
    size_t m = 0;
    for (k = 0; k < sr->n; k++) {
      if (nn_stale_nan(sr->v[k]))
        continue;
      st->t[m] = sr->t[k];
      st->v[m++] = nn__promql_absent(sr->v[k]) ? NAN : sr->v[k];
    }
    rs.t = st->t;
    rs.v = st->v;
    rs.n = m;
  }
  if (rs.n == 0)
    return 0;
  if ((rc = nn__promql_account(c, rs.n)) < 0)
    return rc;
  for (size_t i = 0; i < st->nk && rc == 0; i++) {
    struct rcons *kc = &st->k[i];
    kc->on = false;
    if (kc->sh->nextra && !extra_match(kc->sh, sr))
      continue;
    const double *vals = kc->vals;
    bool any;
    if (kc->same >= 0 && st->k[kc->same].on) {
      vals = st->k[kc->same].vals;
      any = st->k[kc->same].any;
    } else {
      rc = range_series(c, kc->sh->call->func->id, &kc->rv, &rs, st->g, st->rp, kc->vals, &any);
      kc->on = true;
      kc->any = any;
    }
    if (rc < 0 || !any)
      continue;
    size_t pts = 0;
    for (size_t j = 0; j < st->g->n; j++)
      pts += !nn__promql_absent(vals[j]);
    kc->points += pts;
    if (kc->points > st->charged) {
      if ((rc = nn__promql_account(c, kc->points - st->charged)) < 0)
        break;
      st->charged = kc->points;
    }
    bool drop = keeps_name(kc->sh->call->func->id) ? rs.drop_name : true;
    rc = kc->sh->fn(kc->sh->ud, rs.ls, rs.nls, drop, vals);
  }
  double absent = nn__promql_absent_value();
  for (size_t i = 0; i < st->nk; i++)
    if (st->k[i].on && st->k[i].any)
      for (size_t j = 0; j < st->g->n; j++)
        st->k[i].vals[j] = absent;
  nn__promql_unaccount(c, rs.n);
  return rc;
}

bool nn__promql_call_shares(const struct nn__promql_node *n)
{
  if (!nn__promql_call_streams(n) || n->nargs != 1)
    return false;
  const node_t *m = n->args[0];
  while (m->kind == N_PAREN)
    m = m->child;
  return m->kind == N_MSEL;
}

const struct nn__promql_node *nn__promql_call_vsel(const struct nn__promql_node *n)
{
  const node_t *m = n->args[n->func->id == F_QUANTILE_OVER_TIME ? 1 : 0];
  while (m->kind == N_PAREN)
    m = m->child;
  return m->kind == N_MSEL ? m->child : NULL;
}

static const node_t *call_msel(const node_t *n)
{
  const node_t *m = n->args[n->func->id == F_QUANTILE_OVER_TIME ? 1 : 0];
  while (m->kind == N_PAREN)
    m = m->child;
  return m;
}

static int range_shared(struct nn__promql_ctx *c, const struct nn_matcher *ms, size_t nms,
                        const struct nn__promql_share *sh, size_t nsh,
                        const struct nn__promql_grid *g, const struct rparams *rp)
{
  struct rstream st = {.c = c, .g = g, .rp = rp, .nk = nsh};
  int rc = 0;
  if (!(st.k = calloc(nsh ? nsh : 1, sizeof(*st.k))))
    return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
  int64_t mint = INT64_MAX, maxt = INT64_MIN;
  for (size_t i = 0; i < nsh; i++) {
    struct rcons *kc = &st.k[i];
    const node_t *m = call_msel(sh[i].call), *vs = m->child;
    kc->sh = &sh[i];
    kc->rv = (struct nn__promql_rvec){NULL, 0, m->range_ms, vs->offset_ms, vs->at, vs->at_ms};
    kc->same = -1;
    for (size_t j = 0; j < i && kc->same < 0; j++)
      if (st.k[j].same < 0 && st.k[j].rv.range_ms == m->range_ms &&
          sh[j].call->func->id == sh[i].call->func->id)
        kc->same = (int)j;
    int64_t rmin = nn__promql_ref_time(c, vs->at, vs->at_ms, vs->offset_ms, nn__promql_ts(g, 0));
    int64_t rmax =
        nn__promql_ref_time(c, vs->at, vs->at_ms, vs->offset_ms, nn__promql_ts(g, g->n - 1));
    int64_t lo = nn__promql_first(c, rmin - m->range_ms);
    mint = lo < mint ? lo : mint;
    maxt = rmax > maxt ? rmax : maxt;
    if (!(kc->vals = nn__promql_alloc_steps(c, g->n))) {
      rc = c->rc;
      goto out;
    }
  }
  struct nn_select_hints h = {mint, maxt, 0};
  rc = nn_querier_select_stream(c->q, ms, nms, &h, on_stream_series, &st);
  if (rc < 0 && c->rc == 0) {
    if (rc == NN_ETIMEDOUT)
      rc = nn__promql_fail(c, NN_PROMQL_ERR_TIMEOUT, rc, "query timed out in query execution");
    else
      rc = nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, rc, "error selecting series: %s",
                           nn_strerror(rc));
  }
out:
  nn__promql_unaccount(c, st.charged);
  for (size_t i = 0; i < nsh; i++)
    nn__promql_free_steps(c, st.k[i].vals, g->n);
  free(st.k);
  free(st.t);
  free(st.v);
  return rc;
}

int nn__promql_eval_range_shared(struct nn__promql_ctx *c, const struct nn_matcher *ms, size_t nms,
                                 const struct nn__promql_share *sh, size_t nsh,
                                 const struct nn__promql_grid *g)
{
  struct rparams rp = {NULL, NULL};
  return range_shared(c, ms, nms, sh, nsh, g, &rp);
}

int nn__promql_eval_range_stream(struct nn__promql_ctx *c, const node_t *n,
                                 const struct nn__promql_grid *g, nn__promql_series_fn fn, void *ud)
{
  int id = n->func->id;
  size_t marg = id == F_QUANTILE_OVER_TIME ? 1 : 0;
  struct nn__promql_val params[2];
  struct rparams rp = {NULL, NULL};
  struct nn__promql_rvec rv;
  double *vals = NULL;
  int rc = 0;
  size_t np = 0;
  memset(params, 0, sizeof(params));
  memset(&rv, 0, sizeof(rv));
  for (size_t a = 0; a < n->nargs; a++) {
    if (a == marg)
      continue;
    if ((rc = nn__promql_eval(c, n->args[a], g, &params[np])) < 0)
      goto out;
    if (np == 0)
      rp.p0 = params[0].sc;
    else
      rp.p1 = params[1].sc;
    np++;
  }
  const node_t *m = n->args[marg];
  while (m->kind == N_PAREN)
    m = m->child;
  if (m->kind == N_MSEL) {
    struct nn__promql_share sh = {n, NULL, 0, fn, ud};
    rc = range_shared(c, m->child->matchers, m->child->nmatchers, &sh, 1, g, &rp);
    goto out;
  }
  if ((rc = nn__promql_eval_range_vector(c, n->args[marg], g, &rv)) < 0)
    goto out;
  /* One step array for all series: the caller folds it before the next series. */
  if (!(vals = nn__promql_alloc_steps(c, g->n))) {
    rc = c->rc;
    goto out;
  }
  double absent = nn__promql_absent_value();
  for (size_t s = 0; s < rv.n; s++) {
    const struct nn__promql_rser *rs = &rv.s[s];
    if ((s & 1023) == 1023 && (rc = nn__promql_check_deadline(c)) < 0)
      goto out;
    if (rs->n == 0)
      continue;
    bool any;
    if ((rc = range_series(c, id, &rv, rs, g, &rp, vals, &any)) < 0)
      goto out;
    if (!any)
      continue;
    bool drop = keeps_name(id) ? rs->drop_name : true;
    if ((rc = fn(ud, rs->ls, rs->nls, drop, vals)) < 0)
      goto out;
    for (size_t i = 0; i < g->n; i++)
      vals[i] = absent;
  }
out:
  nn__promql_free_steps(c, vals, g->n);
  for (size_t k = 0; k < np; k++)
    if (params[k].sc)
      nn__promql_free_steps(c, params[k].sc, g->n);
  nn__promql_rvec_free(c, &rv);
  return rc;
}

/* ---- dates ---- */

/* Days since the epoch to civil date (Howard Hinnant's algorithm). */
static void civil(int64_t days, int64_t *y, int *m, int *d)
{
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  int64_t doe = days - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t yy = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yy + (*m <= 2);
}

static bool leap(int64_t y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static double date_fn(int id, double secs)
{
  if (isnan(secs) || isinf(secs) || fabs(secs) > 9.2e15)
    return NAN;
  int64_t t = (int64_t)secs;
  int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
  int64_t sod = t - days * 86400;
  int64_t y;
  int m, d;
  civil(days, &y, &m, &d);
  static const int cum[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  switch (id) {
  case F_DAYS_IN_MONTH: return (double)(dim[m - 1] + (m == 2 && leap(y)));
  case F_DAY_OF_MONTH: return d;
  case F_DAY_OF_WEEK: return (double)(((days % 7) + 11) % 7);
  case F_DAY_OF_YEAR: return (double)(cum[m - 1] + d + (m > 2 && leap(y)));
  case F_HOUR: return (double)(sod / 3600);
  case F_MINUTE: return (double)(sod % 3600 / 60);
  case F_MONTH: return m;
  case F_YEAR: return (double)y;
  default: return NAN;
  }
}

/* ---- label functions ---- */

static int expand(struct nn_buf *b, const char *tmpl, const char *src, pcre2_code *re,
                  PCRE2_SIZE *ov, int nmatch)
{
  int rc = 0;
  for (const char *p = tmpl; *p && rc == 0;) {
    if (*p != '$') {
      rc = nn_buf_appendc(b, *p++);
      continue;
    }
    p++;
    if (*p == '$') {
      rc = nn_buf_appendc(b, '$');
      p++;
      continue;
    }
    bool brace = *p == '{';
    const char *s = brace ? p + 1 : p;
    const char *e = s;
    while (*e && ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') ||
                  (*e >= '0' && *e <= '9') || *e == '_'))
      e++;
    if (e == s || (brace && *e != '}')) {
      rc = nn_buf_appendc(b, '$');
      continue;
    }
    char name[128];
    size_t nl = (size_t)(e - s);
    p = brace ? e + 1 : e;
    if (nl >= sizeof(name))
      continue;
    memcpy(name, s, nl);
    name[nl] = 0;
    int idx = -1;
    bool num = true;
    for (size_t k = 0; k < nl; k++)
      if (name[k] < '0' || name[k] > '9')
        num = false;
    if (num) {
      idx = nl < 8 ? (int)strtol(name, NULL, 10) : -1;
    } else {
      idx = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
    }
    if (idx < 0 || idx >= nmatch || ov[2 * idx] == PCRE2_UNSET)
      continue;
    rc = nn_buf_append(b, src + ov[2 * idx], ov[2 * idx + 1] - ov[2 * idx]);
  }
  return rc;
}

/* Label names follow the legacy scheme ([a-zA-Z_][a-zA-Z0-9_]*), as in Prometheus 2.x and
 * as everywhere else in nines. */
static bool valid_label_name(const char *s)
{
  return nn_label_name_valid(s, strlen(s));
}

static int label_fn(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                    struct nn__promql_val *out)
{
  int id = n->func->id;
  const char *dst = string_arg(n->args[1]);
  int rc;
  pcre2_code *re = NULL;
  pcre2_match_data *md = NULL;
  struct nn_buf b;
  nn_buf_init(&b, (size_t)1 << 20);
  if (id == F_LABEL_REPLACE) {
    const char *regex = string_arg(n->args[4]);
    struct nn_buf pat;
    nn_buf_init(&pat, strlen(regex) + 16);
    if (nn_buf_printf(&pat, "^(?s:%s)$", regex) < 0) {
      nn_buf_fini(&pat);
      return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
    }
    int ec;
    PCRE2_SIZE eo;
    re = pcre2_compile((PCRE2_SPTR)pat.data, pat.len, PCRE2_UTF, &ec, &eo, NULL);
    nn_buf_fini(&pat);
    if (!re)
      return nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL,
                             "invalid regular expression in label_replace(): %s", regex);
    md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
      pcre2_code_free(re);
      return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
    }
    if (!valid_label_name(dst)) {
      rc = nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL,
                           "invalid destination label name in label_replace(): %s", dst);
      goto out;
    }
  } else {
    for (size_t a = 3; a < n->nargs; a++)
      if (!valid_label_name(string_arg(n->args[a]))) {
        return nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL,
                               "invalid source label name in label_join(): %s",
                               string_arg(n->args[a]));
      }
    if (!valid_label_name(dst))
      return nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL,
                             "invalid destination label name in label_join(): %s", dst);
  }
  if ((rc = nn__promql_eval(c, n->args[0], g, out)) < 0)
    goto out;
  for (size_t s = 0; s < out->vec.n; s++) {
    struct nn__promql_ser *se = &out->vec.s[s];
    nn_buf_reset(&b);
    if (id == F_LABEL_REPLACE) {
      const char *src = nn_labels_get(se->ls, se->nls, string_arg(n->args[3]));
      if (!src)
        src = "";
      int r = pcre2_match(re, (PCRE2_SPTR)src, strlen(src), 0, 0, md, NULL);
      if (r < 0)
        continue;
      if ((rc = expand(&b, string_arg(n->args[2]), src, re, pcre2_get_ovector_pointer(md), r)) <
          0) {
        rc = nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, rc, "label_replace result too large");
        goto out;
      }
    } else {
      const char *sep = string_arg(n->args[2]);
      for (size_t a = 3; a < n->nargs; a++) {
        const char *v = nn_labels_get(se->ls, se->nls, string_arg(n->args[a]));
        if ((a > 3 && nn_buf_appends(&b, sep) < 0) || (v && nn_buf_appends(&b, v) < 0)) {
          rc = nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_ETOOBIG,
                               "label_join result too large");
          goto out;
        }
      }
    }
    char *val = nn_pool_strndup(&c->pool, b.data ? b.data : "", b.len);
    if (!val) {
      rc = nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
      goto out;
    }
    size_t nls;
    const struct nn_label *ls = nn__promql_labels_set(c, se->ls, se->nls, dst, val, &nls);
    if (!ls) {
      rc = c->rc;
      goto out;
    }
    se->ls = ls;
    se->nls = nls;
    if (strcmp(dst, "__name__") == 0)
      se->drop_name = false;
  }
  rc = nn__promql_vec_merge(c, &out->vec, g->n);
out:
  if (rc < 0 && out->vt == VT_VECTOR)
    nn__promql_vec_free(c, &out->vec, g->n);
  nn_buf_fini(&b);
  if (md)
    pcre2_match_data_free(md);
  if (re)
    pcre2_code_free(re);
  return rc;
}

/* ---- classic histograms ---- */

struct bucket {
  double upper, count;
};

static int cmp_bucket(const void *a, const void *b)
{
  double x = ((const struct bucket *)a)->upper, y = ((const struct bucket *)b)->upper;
  return x < y ? -1 : x > y ? 1 : 0;
}

static size_t coalesce(struct bucket *b, size_t n)
{
  size_t i = 0;
  struct bucket last = b[0];
  for (size_t k = 1; k < n; k++) {
    if (b[k].upper == last.upper) {
      last.count += b[k].count;
    } else {
      b[i++] = last;
      last = b[k];
    }
  }
  b[i++] = last;
  return i;
}

/* v2: Prometheus 2.x, which forces monotonicity without first evening out float noise. */
static double bucket_quantile(double q, struct bucket *b, size_t n, bool v2)
{
  if (isnan(q))
    return NAN;
  if (q < 0)
    return -INFINITY;
  if (q > 1)
    return INFINITY;
  qsort(b, n, sizeof(*b), cmp_bucket);
  if (!(isinf(b[n - 1].upper) && b[n - 1].upper > 0))
    return NAN;
  n = coalesce(b, n);
  /* correct float precision errors, then force monotonicity */
  double prev = b[0].count;
  for (size_t i = 1; i < n && !v2; i++) {
    double cur = b[i].count, delta = fabs(cur - prev);
    if (delta == 0)
      continue;
    if (delta / cur <= 1e-12)
      b[i].count = prev;
    else
      prev = cur;
  }
  double mx = b[0].count;
  for (size_t i = 1; i < n; i++) {
    if (b[i].count > mx)
      mx = b[i].count;
    else if (b[i].count < mx)
      b[i].count = mx;
  }
  if (n < 2)
    return NAN;
  double obs = b[n - 1].count;
  if (obs == 0)
    return NAN;
  double rank = q * obs;
  size_t k = 0;
  while (k < n - 1 && !(b[k].count >= rank))
    k++;
  if (k == n - 1)
    return b[n - 2].upper;
  if (k == 0 && b[0].upper <= 0)
    return b[0].upper;
  double bs = 0, be = b[k].upper, cnt = b[k].count;
  if (k > 0) {
    bs = b[k - 1].upper;
    cnt -= b[k - 1].count;
    rank -= b[k - 1].count;
  }
  return bs + (be - bs) * (rank / cnt);
}

static double bucket_fraction(double lower, double upper, struct bucket *b, size_t n)
{
  qsort(b, n, sizeof(*b), cmp_bucket);
  if (!(isinf(b[n - 1].upper) && b[n - 1].upper > 0))
    return NAN;
  n = coalesce(b, n);
  double count = b[n - 1].count;
  if (count == 0 || isnan(lower) || isnan(upper))
    return NAN;
  if (lower >= upper)
    return 0;
  double rank = 0, lr = 0, ur = 0;
  bool ls = false, us = false;
  for (size_t i = 0; i < n; i++) {
    double lb = i > 0 ? b[i - 1].upper : -INFINITY;
    double ub = b[i].upper;
    if (i == 0 && ub > 0)
      lb = 0;
    if (!ls && lb >= lower) {
      lr = rank;
      ls = true;
    }
    if (!us && lb >= upper) {
      ur = rank;
      us = true;
    }
    if (ls && us)
      break;
    /* no interpolation inside a bucket of infinite width: it contributes nothing */
    bool inf = isinf(lb) || isinf(ub);
    double infv = isinf(lb) ? b[i].count : rank;
    if (!ls && lb < lower && ub > lower) {
      lr = inf ? infv : rank + (b[i].count - rank) * (lower - lb) / (ub - lb);
      ls = true;
    }
    if (!us && lb < upper && ub > upper) {
      ur = inf ? infv : rank + (b[i].count - rank) * (upper - lb) / (ub - lb);
      us = true;
    }
    if (ls && us)
      break;
    rank = b[i].count;
  }
  if (!ls || lr > count)
    lr = count;
  if (!us || ur > count)
    ur = count;
  return (ur - lr) / count;
}

static int histogram_fn(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                        struct nn__promql_val *out)
{
  int id = n->func->id;
  struct nn__promql_val p0, p1, in;
  int rc;
  memset(&p0, 0, sizeof(p0));
  memset(&p1, 0, sizeof(p1));
  memset(&in, 0, sizeof(in));
  struct nn__promql_hmap m;
  memset(&m, 0, sizeof(m));
  double *le = NULL;
  int32_t *grp = NULL;
  struct bucket *bk = NULL;
  size_t *cnt = NULL, *first = NULL;
  size_t ngroups = 0;
  out->vt = VT_VECTOR;
  memset(&out->vec, 0, sizeof(out->vec));
  if ((rc = nn__promql_eval(c, n->args[0], g, &p0)) < 0)
    goto out;
  if (id == F_HISTOGRAM_FRACTION && (rc = nn__promql_eval(c, n->args[1], g, &p1)) < 0)
    goto out;
  if ((rc = nn__promql_eval(c, n->args[id == F_HISTOGRAM_FRACTION ? 2 : 1], g, &in)) < 0)
    goto out;
  struct nn__promql_vec *v = &in.vec;
  le = malloc((v->n + 1) * sizeof(*le));
  grp = malloc((v->n + 1) * sizeof(*grp));
  if (!le || !grp || nn__promql_hmap_init(&m, v->n) < 0) {
    rc = nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
    goto out;
  }
  static const char *const lename[] = {"le"};
  for (size_t s = 0; s < v->n; s++) {
    const char *l = nn_labels_get(v->s[s].ls, v->s[s].nls, "le");
    char *end = NULL;
    grp[s] = -1;
    if (!l)
      continue;
    if (strcasecmp(l, "+inf") == 0 || strcasecmp(l, "inf") == 0)
      le[s] = INFINITY;
    else {
      le[s] = strtod(l, &end);
      if (end == l || *end)
        continue;
    }
    bool found;
    size_t nk;
    const struct nn_label *key =
        nn__promql_labels_without(c, v->s[s].ls, v->s[s].nls, lename, 1, false, false, &nk);
    if (!key) {
      rc = c->rc;
      goto out;
    }
    uint32_t *slot = nn__promql_hmap_put(&m, nn_labels_hash(key, nk), &found);
    if (!slot) {
      rc = nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
      goto out;
    }
    if (!found) {
      size_t nls = nk;
      const struct nn_label *ls = key;
      double *vals = nn__promql_alloc_steps(c, g->n);
      if (!vals) {
        rc = c->rc;
        goto out;
      }
      if ((rc = nn__promql_vec_push(c, &out->vec, ls, nls, vals, true)) < 0) {
        nn__promql_free_steps(c, vals, g->n);
        goto out;
      }
      *slot = (uint32_t)ngroups++;
    }
    grp[s] = (int32_t)*slot;
  }
  bk = malloc((v->n + 1) * sizeof(*bk));
  cnt = calloc(ngroups + 1, sizeof(*cnt));
  first = calloc(ngroups + 1, sizeof(*first));
  if (!bk || !cnt || !first) {
    rc = nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
    goto out;
  }
  /* group members laid out contiguously: first[g] .. first[g]+size */
  size_t *size = cnt;
  for (size_t s = 0; s < v->n; s++)
    if (grp[s] >= 0)
      size[grp[s]]++;
  size_t acc = 0;
  for (size_t k = 0; k < ngroups; k++) {
    first[k] = acc;
    acc += size[k];
  }
  size_t *order = malloc((acc + 1) * sizeof(*order));
  size_t *fill = calloc(ngroups + 1, sizeof(*fill));
  if (!order || !fill) {
    free(order);
    free(fill);
    rc = nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
    goto out;
  }
  for (size_t s = 0; s < v->n; s++)
    if (grp[s] >= 0)
      order[first[grp[s]] + fill[grp[s]]++] = s;
  for (size_t i = 0; i < g->n; i++) {
    for (size_t k = 0; k < ngroups; k++) {
      size_t nb = 0;
      for (size_t q = 0; q < size[k]; q++) {
        size_t s = order[first[k] + q];
        double x = v->s[s].v[i];
        if (nn__promql_absent(x))
          continue;
        bk[nb++] = (struct bucket){le[s], x};
      }
      if (!nb)
        continue;
      double r = id == F_HISTOGRAM_QUANTILE
                     ? bucket_quantile(p0.sc[i], bk, nb, c->opts.prometheus_v2)
                     : bucket_fraction(p0.sc[i], p1.sc[i], bk, nb);
      out->vec.s[k].v[i] = r;
    }
  }
  free(order);
  free(fill);
  /* drop groups that never produced a point */
  size_t w = 0;
  for (size_t k = 0; k < out->vec.n; k++) {
    bool any = false;
    for (size_t i = 0; i < g->n && !any; i++)
      any = !nn__promql_absent(out->vec.s[k].v[i]);
    if (any)
      out->vec.s[w++] = out->vec.s[k];
    else
      nn__promql_free_steps(c, out->vec.s[k].v, g->n);
  }
  out->vec.n = w;
out:
  if (p0.sc)
    nn__promql_free_steps(c, p0.sc, g->n);
  if (p1.sc)
    nn__promql_free_steps(c, p1.sc, g->n);
  nn__promql_vec_free(c, &in.vec, g->n);
  nn__promql_hmap_fini(&m);
  free(le);
  free(grp);
  free(bk);
  free(cnt);
  free(first);
  if (rc < 0)
    nn__promql_vec_free(c, &out->vec, g->n);
  return rc;
}

/* ---- sorting (instant queries only; range results are label-sorted) ---- */

struct sort_ctx {
  const struct nn__promql_node *n;
  bool desc;
  int id;
};

static struct sort_ctx sort_ctx_g;

static int natcmp(const char *a, const char *b)
{
  while (*a && *b) {
    if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
      const char *sa = a, *sb = b;
      while (*sa == '0')
        sa++;
      while (*sb == '0')
        sb++;
      const char *ea = sa, *eb = sb;
      while (*ea >= '0' && *ea <= '9')
        ea++;
      while (*eb >= '0' && *eb <= '9')
        eb++;
      if (ea - sa != eb - sb)
        return (ea - sa) < (eb - sb) ? -1 : 1;
      int r = strncmp(sa, sb, (size_t)(ea - sa));
      if (r)
        return r;
      a = ea;
      b = eb;
      continue;
    }
    if (*a != *b)
      return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
    a++;
    b++;
  }
  return *a ? 1 : *b ? -1 : 0;
}

static int cmp_sort(const void *pa, const void *pb)
{
  const struct nn__promql_ser *a = pa, *b = pb;
  if (sort_ctx_g.id == F_SORT || sort_ctx_g.id == F_SORT_DESC) {
    double x = a->v[0], y = b->v[0];
    if (isnan(x) || isnan(y))
      return isnan(x) ? (isnan(y) ? 0 : 1) : -1;
    int r = x < y ? -1 : x > y ? 1 : 0;
    return sort_ctx_g.desc ? -r : r;
  }
  for (size_t k = 1; k < sort_ctx_g.n->nargs; k++) {
    const char *lab = string_arg(sort_ctx_g.n->args[k]);
    const char *x = nn_labels_get(a->ls, a->nls, lab), *y = nn_labels_get(b->ls, b->nls, lab);
    int r = natcmp(x ? x : "", y ? y : "");
    if (r)
      return sort_ctx_g.desc ? -r : r;
  }
  int r = nn_labels_cmp(a->ls, a->nls, b->ls, b->nls);
  return sort_ctx_g.desc ? -r : r;
}

static void sort_vec(const node_t *n, int id, struct nn__promql_vec *v)
{
  sort_ctx_g.n = n;
  sort_ctx_g.id = id;
  sort_ctx_g.desc = id == F_SORT_DESC || id == F_SORT_BY_LABEL_DESC;
  /* merge-sort stability keeps ties in input order, as Go's slices.SortFunc mostly does */
  qsort(v->s, v->n, sizeof(*v->s), cmp_sort);
}

/* ---- instant-vector functions ---- */

static double math1(int id, double x, double p)
{
  switch (id) {
  case F_ABS: return fabs(x);
  case F_CEIL: return ceil(x);
  case F_FLOOR: return floor(x);
  case F_EXP: return exp(x);
  case F_SQRT: return sqrt(x);
  case F_LN: return log(x);
  case F_LOG2: return log2(x);
  case F_LOG10: return log10(x);
  case F_SIN: return sin(x);
  case F_COS: return cos(x);
  case F_TAN: return tan(x);
  case F_ASIN: return asin(x);
  case F_ACOS: return acos(x);
  case F_ATAN: return atan(x);
  case F_SINH: return sinh(x);
  case F_COSH: return cosh(x);
  case F_TANH: return tanh(x);
  case F_ASINH: return asinh(x);
  case F_ACOSH: return acosh(x);
  case F_ATANH: return atanh(x);
  case F_DEG: return x * 180 / M_PI;
  case F_RAD: return x * M_PI / 180;
  case F_SGN: return x < 0 ? -1 : x > 0 ? 1 : x;
  case F_ROUND: {
    double inv = 1.0 / p;
    return floor(x * inv + 0.5) / inv;
  }
  default: return NAN;
  }
}

int nn__promql_eval_call(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                         struct nn__promql_val *out)
{
  int id = n->func->id;
  int rc = 0;
  memset(out, 0, sizeof(*out));
  if (n->func->kind == FK_RANGE)
    return eval_range_call(c, n, g, out);
  switch (id) {
  case F_PI:
  case F_TIME: {
    double *o = nn__promql_alloc_steps(c, g->n);
    if (!o)
      return c->rc;
    for (size_t i = 0; i < g->n; i++)
      o[i] = id == F_PI ? M_PI : (double)nn__promql_ts(g, i) / 1000.0;
    out->vt = VT_SCALAR;
    out->sc = o;
    return 0;
  }
  case F_LABEL_REPLACE:
  case F_LABEL_JOIN: return label_fn(c, n, g, out);
  case F_HISTOGRAM_QUANTILE:
  case F_HISTOGRAM_FRACTION: return histogram_fn(c, n, g, out);
  case F_VECTOR: {
    struct nn__promql_val s;
    if ((rc = nn__promql_eval(c, n->args[0], g, &s)) < 0)
      return rc;
    out->vt = VT_VECTOR;
    rc = nn__promql_vec_push(c, &out->vec, no_labels, 0, s.sc, false);
    if (rc < 0)
      nn__promql_free_steps(c, s.sc, g->n);
    return rc;
  }
  case F_TIMESTAMP: {
    const node_t *a = n->args[0];
    while (a->kind == N_PAREN)
      a = a->child;
    out->vt = VT_VECTOR;
    if (a->kind == N_VSEL) {
      rc = nn__promql_eval_vsel_ts(c, a, g, &out->vec);
    } else {
      rc = nn__promql_eval(c, a, g, out);
      for (size_t s = 0; rc == 0 && s < out->vec.n; s++)
        for (size_t i = 0; i < g->n; i++)
          if (!nn__promql_absent(out->vec.s[s].v[i]))
            out->vec.s[s].v[i] = (double)nn__promql_ts(g, i) / 1000.0;
    }
    for (size_t s = 0; rc == 0 && s < out->vec.n; s++)
      out->vec.s[s].drop_name = true;
    if (rc < 0)
      nn__promql_vec_free(c, &out->vec, g->n);
    return rc;
  }
  default: break;
  }
  /* Everything else: evaluate the vector argument (if any) and scalar parameters. */
  struct nn__promql_val params[3];
  memset(params, 0, sizeof(params));
  size_t np = 0;
  bool have_vec = n->nargs > 0 && n->func->argtypes[0] == VT_VECTOR;
  if (have_vec) {
    if ((rc = nn__promql_eval(c, n->args[0], g, out)) < 0)
      return rc;
  }
  for (size_t a = have_vec ? 1 : 0; a < n->nargs && np < 3; a++) {
    if (n->func->argtypes[a < (size_t)n->func->nargs ? a : (size_t)n->func->nargs - 1] != VT_SCALAR)
      continue;
    if ((rc = nn__promql_eval(c, n->args[a], g, &params[np])) < 0)
      goto out;
    np++;
  }
  switch (id) {
  case F_SCALAR: {
    double *o = nn__promql_alloc_steps(c, g->n);
    if (!o) {
      rc = c->rc;
      goto out;
    }
    for (size_t i = 0; i < g->n; i++) {
      size_t cntp = 0;
      double val = NAN;
      for (size_t s = 0; s < out->vec.n && cntp < 2; s++)
        if (!nn__promql_absent(out->vec.s[s].v[i])) {
          cntp++;
          val = out->vec.s[s].v[i];
        }
      o[i] = cntp == 1 ? val : NAN;
    }
    nn__promql_vec_free(c, &out->vec, g->n);
    out->vt = VT_SCALAR;
    out->sc = o;
    goto out;
  }
  case F_ABSENT: {
    double *o = nn__promql_alloc_steps(c, g->n);
    if (!o) {
      rc = c->rc;
      goto out;
    }
    bool any = false;
    for (size_t i = 0; i < g->n; i++) {
      bool present = false;
      for (size_t s = 0; s < out->vec.n && !present; s++)
        present = !nn__promql_absent(out->vec.s[s].v[i]);
      if (!present) {
        o[i] = 1;
        any = true;
      }
    }
    nn__promql_vec_free(c, &out->vec, g->n);
    out->vt = VT_VECTOR;
    if (!any) {
      nn__promql_free_steps(c, o, g->n);
      goto out;
    }
    size_t nls;
    const struct nn_label *ls = absent_labels(c, n->args[0], &nls);
    if (!ls) {
      nn__promql_free_steps(c, o, g->n);
      rc = nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
      goto out;
    }
    if ((rc = nn__promql_vec_push(c, &out->vec, ls, nls, o, false)) < 0)
      nn__promql_free_steps(c, o, g->n);
    goto out;
  }
  case F_SORT:
  case F_SORT_DESC:
  case F_SORT_BY_LABEL:
  case F_SORT_BY_LABEL_DESC:
    if (g->n == 1)
      sort_vec(n, id, &out->vec);
    goto out;
  case F_HISTOGRAM_AVG:
  case F_HISTOGRAM_COUNT:
  case F_HISTOGRAM_SUM:
  case F_HISTOGRAM_STDDEV:
  case F_HISTOGRAM_STDVAR:
    /* float samples are ignored by the native-histogram functions */
    nn__promql_vec_free(c, &out->vec, g->n);
    out->vt = VT_VECTOR;
    goto out;
  case F_DAYS_IN_MONTH:
  case F_DAY_OF_MONTH:
  case F_DAY_OF_WEEK:
  case F_DAY_OF_YEAR:
  case F_HOUR:
  case F_MINUTE:
  case F_MONTH:
  case F_YEAR:
    if (n->nargs == 0) {
      double *o = nn__promql_alloc_steps(c, g->n);
      if (!o) {
        rc = c->rc;
        goto out;
      }
      for (size_t i = 0; i < g->n; i++)
        o[i] = date_fn(id, (double)(nn__promql_ts(g, i) / 1000));
      out->vt = VT_VECTOR;
      if ((rc = nn__promql_vec_push(c, &out->vec, no_labels, 0, o, false)) < 0)
        nn__promql_free_steps(c, o, g->n);
      goto out;
    }
    for (size_t s = 0; s < out->vec.n; s++) {
      struct nn__promql_ser *se = &out->vec.s[s];
      for (size_t i = 0; i < g->n; i++)
        if (!nn__promql_absent(se->v[i]))
          se->v[i] = date_fn(id, se->v[i]);
      se->drop_name = true;
    }
    goto out;
  default: break;
  }
  /* element-wise: math, clamp, round */
  size_t w = 0;
  for (size_t s = 0; s < out->vec.n; s++) {
    struct nn__promql_ser *se = &out->vec.s[s];
    bool any = false;
    for (size_t i = 0; i < g->n; i++) {
      double x = se->v[i];
      if (nn__promql_absent(x))
        continue;
      double r;
      switch (id) {
      case F_CLAMP:
      case F_CLAMP_MIN:
      case F_CLAMP_MAX: {
        double lo = id == F_CLAMP_MAX ? -INFINITY : params[0].sc[i];
        double hi = id == F_CLAMP       ? params[1].sc[i]
                    : id == F_CLAMP_MAX ? params[0].sc[i]
                                        : INFINITY;
        if (hi < lo) {
          se->v[i] = nn__promql_absent_value();
          continue;
        }
        r = go_max(lo, go_min(hi, x));
        break;
      }
      case F_ROUND: r = math1(id, x, np ? params[0].sc[i] : 1.0); break;
      default: r = math1(id, x, 0); break;
      }
      se->v[i] = r;
      any = true;
    }
    se->drop_name = true;
    if (!any) {
      nn__promql_free_steps(c, se->v, g->n);
      continue;
    }
    out->vec.s[w++] = *se;
  }
  out->vec.n = w;
out:
  for (size_t k = 0; k < np; k++)
    if (params[k].sc)
      nn__promql_free_steps(c, params[k].sc, g->n);
  if (rc < 0 && out->vt == VT_VECTOR)
    nn__promql_vec_free(c, &out->vec, g->n);
  return rc;
}
