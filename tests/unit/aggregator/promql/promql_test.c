/* SPDX-License-Identifier: Apache-2.0 */
/* Focused PromQL engine tests: lexer tokens, parse errors with positions, printer
 * round-trips, float formatting, rate extrapolation worked by hand, limits and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/promql/internal.h"
#include "aggregator/promql/promql.h"
#include "common/buf.h"
#include "common/error.h"
#include "memstore.h"

static void lexer_splits_numbers_durations_and_operators(void **state)
{
  (void)state;
  struct nn__promql_tokens t = {0};
  const char *q = "rate(x[1h30m]) >= 0x1F != 1e3 =~ 'a' @ 5";
  assert_int_equal(nn__promql_lex(q, strlen(q), &t), 0);
  int want[] = {TK_IDENT,  TK_LPAREN, TK_IDENT,  TK_LBRACKET, TK_DURATION, TK_RBRACKET,
                TK_RPAREN, TK_GTE,    TK_NUMBER, TK_NEQ,      TK_NUMBER,   TK_EQL_REGEX,
                TK_STRING, TK_AT,     TK_NUMBER, TK_EOF};
  assert_int_equal(t.n, sizeof(want) / sizeof(want[0]));
  for (size_t i = 0; i < t.n; i++)
    assert_int_equal(t.v[i].type, want[i]);
  assert_int_equal(t.v[4].len, 5); /* 1h30m */
  free(t.v);
  int64_t ms;
  assert_true(nn__promql_parse_duration("1h30m", 5, &ms));
  assert_int_equal(ms, 5400000);
  assert_true(nn__promql_parse_duration("1s500ms", 7, &ms));
  assert_int_equal(ms, 1500);
  assert_false(nn__promql_parse_duration("30m1h", 5, &ms)); /* units out of order */
  assert_false(nn__promql_parse_duration("5", 1, &ms));
}

static void check_parse_error(const char *q, const char *want)
{
  struct nn_promql_expr *e = NULL;
  struct nn_promql_error err;
  int rc = nn_promql_parse(q, strlen(q), &e, &err);
  if (rc == 0)
    fail_msg("%s: parsed, expected error %s", q, want);
  assert_int_equal(err.type, NN_PROMQL_ERR_BAD_DATA);
  if (strcmp(err.msg, want) != 0)
    fail_msg("%s: got \"%s\", want \"%s\"", q, err.msg, want);
  assert_null(e);
}

static void parse_errors_carry_prometheus_positions(void **state)
{
  (void)state;
  check_parse_error("sum(", "1:5: parse error: unclosed left parenthesis");
  check_parse_error(
      "{__name__=~\".*\"}",
      "1:1: parse error: vector selector must contain at least one non-empty matcher");
  check_parse_error("foo{a=\"b\"}[5m] + 1",
                    "1:1: parse error: binary expression must contain only scalar and instant "
                    "vector types");
  check_parse_error("1 > 2",
                    "1:1: parse error: comparisons between scalars must use BOOL modifier");
  check_parse_error("rate(foo)", "1:6: parse error: expected type range vector in call to function "
                                 "\"rate\", got instant vector");
  check_parse_error(
      "foo and 1",
      "1:1: parse error: set operator \"and\" not allowed in binary scalar expression");
  check_parse_error("nosuchfn(x)", "1:1: parse error: unknown function with name \"nosuchfn\"");
  check_parse_error("foo\n  + )", "2:5: parse error: unexpected right parenthesis ')'");
  check_parse_error("(foo)[5m]", "1:1: parse error: ranges only allowed for vector selectors");
  check_parse_error("foo offset 1m offset 2m",
                    "1:15: parse error: offset may not be set multiple times");
  check_parse_error("", "1:1: parse error: no expression found in input");
}

static void check_print(const char *q, const char *want)
{
  struct nn_promql_expr *e = NULL;
  struct nn_promql_error err;
  if (nn_promql_parse(q, strlen(q), &e, &err) != 0)
    fail_msg("%s: %s", q, err.msg);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 16);
  assert_int_equal(nn_promql_expr_print(e, &b), 0);
  if (strcmp(b.data, want) != 0)
    fail_msg("print(%s) = %s, want %s", q, b.data, want);
  /* the printed form parses to the same printed form */
  struct nn_promql_expr *e2 = NULL;
  assert_int_equal(nn_promql_parse(b.data, b.len, &e2, &err), 0);
  struct nn_buf b2;
  nn_buf_init(&b2, 1 << 16);
  assert_int_equal(nn_promql_expr_print(e2, &b2), 0);
  assert_string_equal(b.data, b2.data);
  nn_buf_fini(&b);
  nn_buf_fini(&b2);
  nn_promql_expr_free(e);
  nn_promql_expr_free(e2);
}

static void printer_round_trips_canonical_form(void **state)
{
  (void)state;
  check_print("sum   by(job)(rate(http_requests_total{job='api'}[5m]))",
              "sum by (job) (rate(http_requests_total{job=\"api\"}[5m]))");
  check_print("a+on(b)group_left(c)d", "a + on (b) group_left (c) d");
  check_print("foo offset -5m", "foo offset -5m");
  check_print("foo[1h30m] @ 100", "foo[1h30m] @ 100.000");
  check_print("max_over_time((x - y)[10m:1m] @ end())", "max_over_time((x - y)[10m:1m] @ end())");
  check_print("-2 ^ 2", "-2 ^ 2");
  check_print("1 == bool 2", "1 == bool 2");
  check_print("topk(3, x) by (a)", "topk by (a) (3, x)");
  check_print("{\"my.metric\"}", "{\"my.metric\"}");
}

static void precedence_and_associativity_follow_prometheus(void **state)
{
  (void)state;
  struct nn_promql_expr *e;
  struct nn_promql_error err;
  /* ^ is right-associative: 2 ^ 3 ^ 2 = 2 ^ 9 = 512; unary minus binds looser than ^ */
  struct memstore ms = {0};
  struct nn_querier q = memstore_querier(&ms);
  struct nn_promql_result r;
  const char *cases[][2] = {{"2 ^ 3 ^ 2", "512"}, {"-2 ^ 2", "-4"}, {"2 * 3 + 4", "10"},
                            {"2 + 3 * 4", "14"},  {"10 % 3", "1"},  {"1 - 2 - 3", "-4"}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(nn_promql_parse(cases[i][0], strlen(cases[i][0]), &e, &err), 0);
    assert_int_equal(nn_promql_eval_instant(&q, e, 0, NULL, &r, &err), 0);
    assert_int_equal(r.type, NN_PROMQL_SCALAR);
    char buf[32];
    nn_promql_format_float(r.scalar, buf, sizeof(buf));
    assert_string_equal(buf, cases[i][1]);
    nn_promql_result_fini(&r);
    nn_promql_expr_free(e);
  }
  memstore_clear(&ms);
}

static void float_formatting_matches_go(void **state)
{
  (void)state;
  struct {
    double v;
    const char *want;
  } cases[] = {
      {0, "0"},
      {42, "42"},
      {0.1, "0.1"},
      {1.0 / 3, "0.3333333333333333"},
      {1e-7, "1e-07"},
      {1.5e-7, "1.5e-07"},
      {0.000001, "0.000001"},
      {1e21, "1e+21"},
      {123456789012345678901.0, "123456789012345680000"},
      {-2.5, "-2.5"},
      {NAN, "NaN"},
      {INFINITY, "+Inf"},
      {-INFINITY, "-Inf"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
  };
  char buf[64];
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    nn_promql_format_float(cases[i].v, buf, sizeof(buf));
    if (strcmp(buf, cases[i].want) != 0)
      fail_msg("format(%.17g) = %s, want %s", cases[i].v, buf, cases[i].want);
  }
  nn_promql_format_float_f(1e-7, buf, sizeof(buf));
  assert_string_equal(buf, "0.0000001");
  assert_string_equal(nn_promql_errtype_name(NN_PROMQL_ERR_BAD_DATA), "bad_data");
  assert_string_equal(nn_promql_errtype_name(NN_PROMQL_ERR_EXECUTION), "execution");
}

static struct memstore counter_store(void)
{
  struct memstore ms = {0};
  struct nn_label ls[] = {{"__name__", "req_total"}, {"job", "api"}};
  struct memseries *s = memstore_series(&ms, ls, 2);
  /* 0 at 15s, 10 at 30s, ..., one sample every 15 s, +10 each; a reset to 5 at 90 s */
  double vals[] = {0, 10, 20, 30, 40, 5, 15};
  for (int i = 0; i < 7; i++)
    memstore_append(s, 15000 * (i + 1), vals[i]);
  return ms;
}

static double eval_one_opts(struct memstore *ms, const char *query, int64_t t,
                            const struct nn_promql_opts *opts)
{
  struct nn_promql_expr *e;
  struct nn_promql_error err;
  struct nn_promql_result r;
  struct nn_querier q = memstore_querier(ms);
  if (nn_promql_parse(query, strlen(query), &e, &err) != 0)
    fail_msg("%s: %s", query, err.msg);
  if (nn_promql_eval_instant(&q, e, t, opts, &r, &err) != 0)
    fail_msg("%s: %s", query, err.msg);
  assert_int_equal(r.type, NN_PROMQL_VECTOR);
  assert_int_equal(r.nseries, 1);
  double v = r.series[0].v[0];
  nn_promql_result_fini(&r);
  nn_promql_expr_free(e);
  return v;
}

static double eval_one(struct memstore *ms, const char *query, int64_t t)
{
  return eval_one_opts(ms, query, t, NULL);
}

static void rate_at_series_start_follows_the_chosen_prometheus_version(void **state)
{
  (void)state;
  struct memstore ms = {0};
  struct nn_label ls[] = {{"__name__", "new_total"}};
  struct memseries *s = memstore_series(&ms, ls, 1);
  /* 4@100s 8@110s 12@120s: increase 8 over 20 s, average gap 10 s, threshold 11 s. At
   * t=120s the window (60,120] starts 40 s before the first sample; the zero point is
   * 20*(4/8) = 10 s before it. */
  memstore_append(s, 100000, 4);
  memstore_append(s, 110000, 8);
  memstore_append(s, 120000, 12);
  /* 3.x: threshold first (40 s -> 5 s), then min(5, 10): factor (20+5)/20. */
  assert_true(fabs(eval_one(&ms, "increase(new_total[1m])", 120000) - 10) < 1e-9);
  /* 2.x: min(40, 10) = 10 s is within the threshold: factor (20+10)/20. */
  struct nn_promql_opts o = {.prometheus_v2 = true};
  assert_true(fabs(eval_one_opts(&ms, "increase(new_total[1m])", 120000, &o) - 12) < 1e-9);
  assert_true(fabs(eval_one_opts(&ms, "rate(new_total[1m])", 120000, &o) - 0.2) < 1e-9);
  /* A sample exactly at the window's start: outside in 3.x (left-open), inside in 2.x. */
  assert_true(eval_one(&ms, "count_over_time(new_total[10s])", 110000) == 1);
  assert_true(eval_one_opts(&ms, "count_over_time(new_total[10s])", 110000, &o) == 2);
  /* ... and the same for the lookback of an instant selector */
  struct nn_promql_opts lb3 = {.lookback_ms = 30000}, lb2 = {.lookback_ms = 30000};
  lb2.prometheus_v2 = true;
  assert_true(eval_one_opts(&ms, "new_total", 150000, &lb2) == 12);
  struct nn_promql_expr *e;
  struct nn_promql_error err;
  struct nn_promql_result r;
  struct nn_querier q = memstore_querier(&ms);
  assert_int_equal(nn_promql_parse("new_total", 9, &e, &err), 0);
  assert_int_equal(nn_promql_eval_instant(&q, e, 150000, &lb3, &r, &err), 0);
  assert_int_equal(r.nseries, 0);
  nn_promql_result_fini(&r);
  nn_promql_expr_free(e);
  memstore_clear(&ms);

  /* histogram_quantile: 3.x evens out the 1e-13 relative noise between the first two
   * buckets (rank 1+5e-14 then lands in +Inf: the second bucket's bound), 2.x
   * interpolates inside the second bucket. */
  struct memstore hs = {0};
  static const char *const les[] = {"1", "2", "+Inf"};
  const double counts[] = {1, 1 + 1e-13, 2};
  for (int i = 0; i < 3; i++) {
    struct nn_label hl[] = {{"__name__", "h_bucket"}, {"le", les[i]}};
    memstore_append(memstore_series(&hs, hl, 2), 60000, counts[i]);
  }
  const char *hq = "histogram_quantile(0.500000000000025, h_bucket)";
  assert_true(eval_one(&hs, hq, 60000) == 2);
  assert_true(fabs(eval_one_opts(&hs, hq, 60000, &o) - 1.5) < 1e-6);
  memstore_clear(&hs);
}

static void rate_extrapolation_matches_hand_computation(void **state)
{
  (void)state;
  struct memstore ms = counter_store();
  /* At t=60s, window (0,60]: samples 0@15 10@30 20@45 30@60. Increase 30 over 45 s.
   * Start gap 15 s < 1.1*15: extrapolate, but zero point: 45*(0/30)=0 s -> 0.
   * End gap 0. Factor (45+0+0)/45 = 1 -> increase 30, rate 0.5. */
  assert_true(fabs(eval_one(&ms, "increase(req_total[1m])", 60000) - 30) < 1e-9);
  assert_true(fabs(eval_one(&ms, "rate(req_total[1m])", 60000) - 0.5) < 1e-9);
  /* At t=100s, window (40,100]: 20@45 30@60 40@75 5@90 (reset). Increase
   * 5-20+40 = 25 over 45 s; start gap 5 s, end gap 10 s (both < 16.5 s):
   * factor (45+5+10)/45; zero point 45*(20/25)=36 s > 5 s. 25*60/45 = 33.333 */
  assert_true(fabs(eval_one(&ms, "increase(req_total[1m])", 100000) - 25.0 * 60 / 45) < 1e-9);
  /* delta does not correct resets: 5-20 = -15 scaled by 60/45 */
  assert_true(fabs(eval_one(&ms, "delta(req_total[1m])", 100000) - (-15.0 * 60 / 45)) < 1e-9);
  /* irate uses the last two samples: reset -> 5 / 15 s */
  assert_true(fabs(eval_one(&ms, "irate(req_total[1m])", 100000) - 5.0 / 15) < 1e-9);
  assert_true(fabs(eval_one(&ms, "resets(req_total[2m])", 110000) - 1) < 1e-9);
  memstore_clear(&ms);
}

static void range_query_is_step_aligned_and_label_sorted(void **state)
{
  (void)state;
  struct memstore ms = {0};
  struct nn_label a[] = {{"__name__", "m"}, {"i", "b"}};
  struct nn_label b[] = {{"__name__", "m"}, {"i", "a"}};
  struct memseries *sa = memstore_series(&ms, a, 2), *sb = memstore_series(&ms, b, 2);
  for (int i = 0; i <= 10; i++) {
    memstore_append(sa, i * 60000, i);
    memstore_append(sb, i * 60000, 100 + i);
  }
  struct nn_promql_expr *e;
  struct nn_promql_error err;
  struct nn_promql_result r;
  struct nn_querier q = memstore_querier(&ms);
  const char *query = "m * 2";
  assert_int_equal(nn_promql_parse(query, strlen(query), &e, &err), 0);
  assert_int_equal(nn_promql_eval_range(&q, e, 0, 600000, 120000, NULL, &r, &err), 0);
  assert_int_equal(r.type, NN_PROMQL_MATRIX);
  assert_int_equal(r.nseries, 2);
  assert_string_equal(r.series[0].labels[0].value, "a"); /* sorted, __name__ dropped */
  assert_int_equal(r.series[0].nlabels, 1);
  assert_int_equal(r.series[0].n, 6);
  assert_int_equal(r.series[0].t[5], 600000);
  assert_true(r.series[0].v[5] == 220);
  nn_promql_result_fini(&r);
  /* range queries reject zero steps and range-vector expressions */
  assert_int_equal(nn_promql_eval_range(&q, e, 0, 600000, 0, NULL, &r, &err), NN_EINVAL);
  assert_int_equal(err.type, NN_PROMQL_ERR_BAD_DATA);
  nn_promql_expr_free(e);
  memstore_clear(&ms);
}

static void limits_and_execution_errors_are_typed(void **state)
{
  (void)state;
  struct memstore ms = {0};
  for (int k = 0; k < 20; k++) {
    char v[8];
    snprintf(v, sizeof(v), "%d", k);
    struct nn_label ls[] = {{"__name__", "m"}, {"k", v}};
    struct memseries *s = memstore_series(&ms, ls, 2);
    for (int i = 0; i < 100; i++)
      memstore_append(s, i * 1000, i);
  }
  struct nn_promql_expr *e;
  struct nn_promql_error err;
  struct nn_promql_result r;
  struct nn_querier q = memstore_querier(&ms);
  struct nn_promql_opts opts = {.max_samples = 500};
  const char *query = "sum(rate(m[1m]))";
  assert_int_equal(nn_promql_parse(query, strlen(query), &e, &err), 0);
  assert_int_equal(nn_promql_eval_range(&q, e, 0, 100000, 1000, &opts, &r, &err), NN_ELIMIT);
  assert_int_equal(err.type, NN_PROMQL_ERR_EXECUTION);
  assert_string_equal(err.msg, "query processing would load too many samples into memory in "
                               "query execution");
  opts.max_samples = 0;
  assert_int_equal(nn_promql_eval_range(&q, e, 0, 100000, 1000, &opts, &r, &err), 0);
  assert_int_equal(r.nseries, 1);
  nn_promql_result_fini(&r);
  nn_promql_expr_free(e);
  query = "m + on() m";
  assert_int_equal(nn_promql_parse(query, strlen(query), &e, &err), 0);
  assert_true(nn_promql_eval_instant(&q, e, 50000, NULL, &r, &err) < 0);
  assert_int_equal(err.type, NN_PROMQL_ERR_EXECUTION);
  assert_non_null(strstr(err.msg, "many-to-many matching not allowed"));
  nn_promql_expr_free(e);
  memstore_clear(&ms);
}

/* Evaluates query as a range query over [0, 3 h] at 7 s steps (several slices) into *r. */
static void eval_range_ok(struct memstore *ms, const char *query, struct nn_promql_result *r)
{
  struct nn_promql_expr *e;
  struct nn_promql_error err;
  struct nn_querier q = memstore_querier(ms);
  if (nn_promql_parse(query, strlen(query), &e, &err) != 0)
    fail_msg("%s: %s", query, err.msg);
  if (nn_promql_eval_range(&q, e, 0, 10800000, 7000, NULL, r, &err) != 0)
    fail_msg("%s: %s", query, err.msg);
  nn_promql_expr_free(e);
}

/* Aggregations directly over a range function are evaluated series by series without a
 * step array per input series; "* 1" forces the general path. Both must agree bit for bit. */
static void fused_aggregation_matches_general_path(void **state)
{
  (void)state;
  struct memstore ms = {0};
  for (int k = 0; k < 12; k++) {
    char inst[8], grp[8];
    snprintf(inst, sizeof(inst), "%d", k);
    snprintf(grp, sizeof(grp), "g%d", k % 3);
    struct nn_label ls[] = {{"__name__", "c_total"}, {"g", grp}, {"i", inst}};
    struct memseries *s = memstore_series(&ms, ls, 3);
    double v = 0;
    /* irregular scrapes, a reset in some series, a gap in others */
    for (int t = 1000 * k; t <= 10800000; t += 10000 + 1000 * (k % 4)) {
      if (k % 5 == 1 && t > 200000 && t < 300000)
        continue;
      v = (k % 4 == 2 && t > 400000 && t < 411000 + 1000 * k) ? 1 : v + 0.1 * (k + 1) + t % 7;
      memstore_append(s, t, v);
    }
  }
  const char *ops[] = {"sum", "avg", "count", "min", "max", "stddev", "stdvar", "group"};
  const char *fns[] = {"rate(c_total[1m])", "increase(c_total[45s])", "max_over_time(c_total[2m])",
                       "resets(c_total[5m])"};
  char fused[160], general[160];
  for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
    for (size_t f = 0; f < sizeof(fns) / sizeof(fns[0]); f++) {
      snprintf(fused, sizeof(fused), "%s by (g) (%s)", ops[o], fns[f]);
      snprintf(general, sizeof(general), "%s by (g) (%s * 1)", ops[o], fns[f]);
      struct nn_promql_result a, b;
      eval_range_ok(&ms, fused, &a);
      eval_range_ok(&ms, general, &b);
      assert_int_equal(a.nseries, 3);
      assert_int_equal(a.nseries, b.nseries);
      for (size_t k = 0; k < a.nseries; k++) {
        assert_string_equal(a.series[k].labels[0].value, b.series[k].labels[0].value);
        assert_int_equal(a.series[k].n, b.series[k].n);
        assert_memory_equal(a.series[k].t, b.series[k].t, a.series[k].n * sizeof(int64_t));
        assert_memory_equal(a.series[k].v, b.series[k].v, a.series[k].n * sizeof(double));
      }
      nn_promql_result_fini(&a);
      nn_promql_result_fini(&b);
    }
  }
  memstore_clear(&ms);
}

/* The value of result r's series with label g = grp at time t, or NAN when it has none. */
static double value_at(const struct nn_promql_result *r, const char *grp, int64_t t)
{
  for (size_t k = 0; k < r->nseries; k++) {
    const char *g = nn_labels_get(r->series[k].labels, r->series[k].nlabels, "g");
    if (!g || strcmp(g, grp) != 0)
      continue;
    for (size_t i = 0; i < r->series[k].n; i++)
      if (r->series[k].t[i] == t)
        return r->series[k].v[i];
  }
  return NAN;
}

static int nselects;

static int counting_select(void *ctx, const struct nn_matcher *ms, size_t nms,
                           const struct nn_select_hints *hints, struct nn_series_set *out)
{
  nselects++;
  return memstore_select(ctx, ms, nms, hints, out);
}

/* The smallest max_samples under which query evaluates (range as in eval_range_ok). */
static size_t min_limit(struct memstore *ms, const char *query)
{
  struct nn_promql_expr *e;
  struct nn_promql_error err;
  struct nn_querier q = memstore_querier(ms);
  assert_int_equal(nn_promql_parse(query, strlen(query), &e, &err), 0);
  size_t lo = 1, hi = 1u << 24;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    struct nn_promql_opts o = {.max_samples = mid};
    struct nn_promql_result r;
    int rc = nn_promql_eval_range(&q, e, 0, 10800000, 7000, &o, &r, &err);
    if (rc == 0) {
      nn_promql_result_fini(&r);
      hi = mid;
    } else {
      assert_int_equal(rc, NN_ELIMIT);
      lo = mid + 1;
    }
  }
  nn_promql_expr_free(e);
  return lo;
}

/* Fused aggregations over one metric in one query (error ratios, burn rates) share one
 * select; each must still come out bit for bit as when evaluated alone. */
static void shared_selects_match_separate_evaluation(void **state)
{
  (void)state;
  struct memstore ms = {0};
  for (int k = 0; k < 12; k++) {
    char inst[8], grp[8];
    snprintf(inst, sizeof(inst), "%d", k);
    snprintf(grp, sizeof(grp), "g%d", k % 3);
    struct nn_label ls[] = {{"__name__", "c_total"}, {"g", grp}, {"i", inst}};
    struct memseries *s = memstore_series(&ms, ls, 3);
    double v = 0;
    for (int t = 1000 * k; t <= 10800000; t += 10000 + 1000 * (k % 4)) {
      v = (k % 4 == 2 && t > 400000 && t < 411000 + 1000 * k) ? 1 : v + 0.1 * (k + 1) + t % 7;
      memstore_append(s, t, v);
    }
  }
  const char *pairs[][2] = {
      {"sum by (g) (rate(c_total{i=~\"1.*\"}[1m]))", "sum by (g) (rate(c_total[5m]))"},
      {"sum by (g) (rate(c_total{i=~\"1.*\"}[1m]))", "sum by (g) (rate(c_total[1m]))"},
      {"max by (g) (max_over_time(c_total{i!=\"3\"}[2m]))", "count by (g) (rate(c_total[30s]))"},
  };
  char both[256];
  for (size_t p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++) {
    struct nn_promql_result a, b, ab;
    eval_range_ok(&ms, pairs[p][0], &a);
    eval_range_ok(&ms, pairs[p][1], &b);
    snprintf(both, sizeof(both), "%s / %s", pairs[p][0], pairs[p][1]);
    struct nn_promql_expr *e;
    struct nn_promql_error err;
    struct nn_querier q = memstore_querier(&ms);
    q.select = counting_select;
    assert_int_equal(nn_promql_parse(both, strlen(both), &e, &err), 0);
    nselects = 0;
    assert_int_equal(nn_promql_eval_range(&q, e, 0, 10800000, 7000, NULL, &ab, &err), 0);
    assert_int_equal(nselects, 1); /* one select for both sides */
    nn_promql_expr_free(e);
    assert_true(ab.nseries >= 2);
    size_t points = 0;
    for (size_t k = 0; k < ab.nseries; k++) {
      const char *g = nn_labels_get(ab.series[k].labels, ab.series[k].nlabels, "g");
      assert_non_null(g);
      for (size_t i = 0; i < ab.series[k].n; i++) {
        double want = value_at(&a, g, ab.series[k].t[i]) / value_at(&b, g, ab.series[k].t[i]);
        assert_memory_equal(&want, &ab.series[k].v[i], sizeof(want));
        points++;
      }
    }
    assert_true(points > 1000);
    nn_promql_result_fini(&a);
    nn_promql_result_fini(&b);
    nn_promql_result_fini(&ab);
  }
  /* Evaluated together, two sides count against max_samples as evaluating them one after
   * the other would: the larger side's points (12 series x 1,543 steps), not the sum. */
  size_t la = min_limit(&ms, "sum(rate(c_total[1m]))"),
         lb = min_limit(&ms, "sum(increase(c_total[5m]))"),
         lab = min_limit(&ms, "sum(rate(c_total[1m])) / sum(increase(c_total[5m]))");
  assert_true(lab > la && lab > lb);
  assert_true(lab + 12 * 1543 / 2 < la + lb);
  memstore_clear(&ms);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lexer_splits_numbers_durations_and_operators),
      cmocka_unit_test(parse_errors_carry_prometheus_positions),
      cmocka_unit_test(printer_round_trips_canonical_form),
      cmocka_unit_test(precedence_and_associativity_follow_prometheus),
      cmocka_unit_test(float_formatting_matches_go),
      cmocka_unit_test(rate_extrapolation_matches_hand_computation),
      cmocka_unit_test(rate_at_series_start_follows_the_chosen_prometheus_version),
      cmocka_unit_test(range_query_is_step_aligned_and_label_sorted),
      cmocka_unit_test(limits_and_execution_errors_are_typed),
      cmocka_unit_test(fused_aggregation_matches_general_path),
      cmocka_unit_test(shared_selects_match_separate_evaluation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
