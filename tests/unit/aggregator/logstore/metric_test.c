/* SPDX-License-Identifier: Apache-2.0 */
/* LogQL metric queries: the parser (what it accepts, what it refuses and where) and the
 * evaluator over a small store, with counts per step worked out by hand, by/without
 * grouping, line filters, offsets, topk, arithmetic, instant vectors, the limits, and the
 * same answers once the heads are cut into chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aggregator/logstore/internal.h"
#include "aggregator/logstore/logstore.h"
#include "common/buf.h"
#include "common/error.h"

#define SEC INT64_C(1000000000)
#define T0  (INT64_C(1700000000) * SEC)

/* ---- parser ---- */

static void parse_ok(const char *q)
{
  struct nn__ls_mexpr *e = NULL;
  char err[512];
  int rc = nn__logstore_metric_parse(q, strlen(q), &e, err, sizeof(err));
  if (rc != 0)
    fail_msg("%s: %s", q, err);
  assert_non_null(e);
  nn__logstore_mexpr_free(e);
}

static void parse_bad(const char *q, const char *pos, const char *what)
{
  struct nn__ls_mexpr *e = NULL;
  char err[512];
  int rc = nn__logstore_metric_parse(q, strlen(q), &e, err, sizeof(err));
  if (rc != NN_EINVAL)
    fail_msg("%s: accepted", q);
  assert_null(e);
  if (!strstr(err, pos) || !strstr(err, what))
    fail_msg("%s: got \"%s\", want \"%s\" and \"%s\"", q, err, pos, what);
}

static void parser_accepts_the_subset(void **state)
{
  (void)state;
  parse_ok("count_over_time({app=\"x\"}[5m])");
  parse_ok("sum by (level) (count_over_time({app=\"x\"} |= \"err\" [1m]))");
  parse_ok("sum(count_over_time({app=\"x\"} != `a` |~ \"b.*\" !~ \"c\"[1m])) by (level, app)");
  parse_ok("rate({app=\"x\"}[30s] offset 1h)");
  parse_ok("bytes_rate({app=\"x\"}[1h30m])");
  parse_ok("bytes_over_time(({app=\"x\"} |= \"[not a range]\")[1m])");
  parse_ok("absent_over_time({app=\"x\"}[1m])");
  parse_ok("topk(3, sum without (pod) (rate({app=\"x\"}[1m])))");
  parse_ok("bottomk by (app) (2, count_over_time({app=\"x\"}[1m]))");
  parse_ok("avg(min(max(count(count_over_time({app=\"x\"}[1m])))))");
  parse_ok("sum(rate({app=\"x\"}[1m])) * 60 + 1");
  parse_ok("2 * (3 - -count_over_time({app=\"x\"}[1m])) ^ 2 / 4 % 5 # a comment");
  parse_ok("  \n count_over_time(\n {app=\"x\"}\n [1m]\n )");
  parse_ok("sum by () (count_over_time({app=\"x\"}[1m]))");
  /* Grafana's `| drop __error__` is a no-op: no stage here sets the label. */
  parse_ok("sum by (level) (count_over_time({app=\"x\"} | drop __error__, __error_details__ |= "
           "\"e\" [1m]))");

  /* The shape of the tree. */
  struct nn__ls_mexpr *e;
  char err[256];
  const char *q = "sum without (a, b) (rate({app=\"x\"} |= \"e\" [2m] offset 30s)) * 60";
  assert_int_equal(nn__logstore_metric_parse(q, strlen(q), &e, err, sizeof(err)), 0);
  assert_int_equal(e->type, LS_M_BIN);
  assert_int_equal(e->binop, '*');
  assert_int_equal(e->b->type, LS_M_NUM);
  assert_true(e->b->num == 60);
  const struct nn__ls_mexpr *agg = e->a;
  assert_int_equal(agg->type, LS_M_AGG);
  assert_int_equal(agg->op, LS_AG_SUM);
  assert_true(agg->grouped && agg->without);
  assert_int_equal(agg->nlabels, 2);
  assert_string_equal(agg->labels[1], "b");
  assert_int_equal(agg->a->type, LS_M_RANGE);
  assert_int_equal(agg->a->fn, LS_RF_RATE);
  assert_int_equal(agg->a->range_ns, 120 * SEC);
  assert_int_equal(agg->a->offset_ns, 30 * SEC);
  assert_int_equal(agg->a->q.nm, 1);
  assert_int_equal(agg->a->q.nf, 1);
  nn__logstore_mexpr_free(e);
}

static void parser_refuses_with_positions(void **state)
{
  (void)state;
  parse_bad("count_over_time({app=\"x\"} | decolorize [5m])", "col 27",
            "unsupported pipeline stage | decolorize");
  parse_bad("sum(count_over_time({app=\"x\"} | logfmt | unwrap x [5m]))", "col 21",
            "invalid aggregation count_over_time with unwrap");
  parse_bad("sum_over_time({app=\"x\"}[5m])", "col 1", "sum_over_time without unwrap");
  parse_bad("quantile_over_time(0.9, {app=\"x\"}[5m])", "col 1",
            "quantile_over_time without unwrap");
  parse_bad("count_over_time({app=\"x\"})", "col 26", "expected a range");
  parse_bad("count_over_time({app=\"x\"}[5])", "col 28", "needs a unit");
  parse_bad("count_over_time({app=\"x\"}[0s])", "col", "must be positive");
  parse_bad("count_over_time({app=\"x\"}[5m]", "col 30", "unexpected end of query");
  parse_bad("count_over_time({app=~\".*\"}[5m])", "col 17", "empty-compatible");
  parse_bad("count_over_time({app=\"x\"}[5m]) / count_over_time({app=\"y\"}[5m])", "col 32",
            "between two vectors");
  parse_bad("count_over_time({app=\"x\"}[5m]) > 2", "col 32", "comparison");
  parse_bad("count_over_time({app=\"x\"}[5m]) and count_over_time({app=\"y\"}[5m])", "col 32",
            "set operators");
  parse_bad("{app=\"x\"}", "col 1", "wrap it in a range aggregation");
  parse_bad("sum({app=\"x\"})", "col 5", "wrap it in a range aggregation");
  parse_bad("1 + 2", "col 1", "numbers only");
  parse_bad("topk(count_over_time({app=\"x\"}[5m]))", "col 6", "needs a number");
  parse_bad("topk(0, count_over_time({app=\"x\"}[5m]))", "col 6", "integer from 1");
  parse_bad("topk(1.5, count_over_time({app=\"x\"}[5m]))", "col 6", "integer from 1");
  parse_bad("sum(1)", "col 5", "needs a vector");
  parse_bad("sum by (a) (count_over_time({app=\"x\"}[5m])) by (b)", "col 45", "second by");
  parse_bad("count_over_time({app=\"x\"}[5m]) by (a)", "col 32", "after a range aggregation");
  parse_bad("count_over_time({app=\"x\"} | unpack [1m])", "col 27",
            "unsupported pipeline stage | unpack");
  parse_bad("frobnicate({app=\"x\"}[5m])", "col 1", "unknown function");
  parse_bad("count_over_time({app=\"x\"}[5m]\n  offset)", "line 2, col 9", "expected a duration");
  parse_bad("sum(count_over_time({app=\"x\"\n}[5m])", "line 2, col 7", "unexpected end");
  parse_bad("", "col 1", "unexpected end");
  parse_bad("count_over_time({app=\"x\" [5m])", "col 26", "expected '}'");
  char deep[400];
  size_t n = 0;
  for (int i = 0; i < 100; i++)
    deep[n++] = '(';
  deep[n] = '\0';
  parse_bad(deep, "col", "nested deeper");
  /* An arithmetic chain nests one node per operator: 64 are fine, the 65th is refused (each
   * would cost a buffer of the query's points and a level of recursion). */
  char chain[600];
  n = (size_t)snprintf(chain, sizeof(chain), "count_over_time({a=\"b\"}[1m])");
  for (int i = 0; i < 64; i++)
    n += (size_t)snprintf(chain + n, sizeof(chain) - n, "*1");
  parse_ok(chain);
  snprintf(chain + n, sizeof(chain) - n, "%%1");
  parse_bad(chain, "col 157", "more than 64 arithmetic operations");
  /* Numbers still fold, whatever their count. */
  char nums[600];
  n = (size_t)snprintf(nums, sizeof(nums), "count_over_time({a=\"b\"}[1m]) * (1");
  for (int i = 0; i < 100; i++)
    n += (size_t)snprintf(nums + n, sizeof(nums) - n, "+1");
  snprintf(nums + n, sizeof(nums) - n, ")");
  parse_ok(nums);
  /* A comment inside the log query may hold brackets and quotes. */
  parse_ok("count_over_time({app=\"x\"} # it's [odd] (really)\n[5m])");
}

static void log_query_detection(void **state)
{
  (void)state;
  assert_true(nn_logstore_is_log_query("{app=\"x\"} |= \"a\""));
  assert_true(nn_logstore_is_log_query("  # c\n {app=\"x\"}"));
  assert_false(nn_logstore_is_log_query("count_over_time({app=\"x\"}[1m])"));
  assert_false(nn_logstore_is_log_query(""));
}

/* ---- evaluation ---- */

static char tmpdir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static int setup(void **state)
{
  (void)state;
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/nn-metric-test-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

static struct nn_logstore *open_store(void)
{
  struct nn_logstore_config c;
  nn_logstore_config_defaults(&c);
  c.data_dir = tmpdir;
  c.retention_ns = 0;
  struct nn_logstore *s = NULL;
  char err[256] = "";
  int rc = nn_logstore_open(&c, &s, err, sizeof(err));
  if (rc < 0)
    fail_msg("open: %s (%s)", nn_strerror(rc), err);
  return s;
}

static void push(struct nn_logstore *s, const char *labels, int64_t sec, const char *line)
{
  struct nn_logstore_entry e = {T0 + sec * SEC, line, strlen(line), NULL, 0};
  struct nn_logstore_stream_in in = {labels, strlen(labels), NULL, 0, &e, 1};
  struct nn_logstore_batch b = {NULL, NULL, &in, 1};
  struct nn_logstore_append_result res;
  assert_int_equal(nn_logstore_append_batch(s, &b, &res, NULL, NULL), 0);
  assert_int_equal(res.accepted, 1);
}

/* The test data: second offsets from T0 and lines.
 *   {app="a",level="err"}:  10 "boom 1", 20 "ok", 30 "boom 3", 70 "boom 4"
 *   {app="a",level="info"}: 15 "hello",  75 "hello again"
 *   {app="b",level="err"}:  5 "boom b",  60 "edge" (exactly on a step) */
static struct nn_logstore *fill(void)
{
  struct nn_logstore *s = open_store();
  push(s, "{app=\"a\",level=\"err\"}", 10, "boom 1");
  push(s, "{app=\"a\",level=\"err\"}", 20, "ok");
  push(s, "{app=\"a\",level=\"err\"}", 30, "boom 3");
  push(s, "{app=\"a\",level=\"err\"}", 70, "boom 4");
  push(s, "{app=\"a\",level=\"info\"}", 15, "hello");
  push(s, "{app=\"a\",level=\"info\"}", 75, "hello again");
  push(s, "{app=\"b\",level=\"err\"}", 5, "boom b");
  push(s, "{app=\"b\",level=\"err\"}", 60, "edge");
  return s;
}

/* "labels:t=v,t=v;..." with t in seconds from T0, or "error: ...". */
static char *run(struct nn_logstore *s, const char *q, int64_t start, int64_t end, int64_t step,
                 bool instant)
{
  struct nn_logstore_mresult r;
  char err[512];
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  int rc = nn_logstore_metric_query(s, NULL, q, T0 + start * SEC, T0 + end * SEC, step * SEC,
                                    instant, &r, err, sizeof(err));
  if (rc < 0) {
    nn_buf_printf(&b, "error: %s", err);
  } else {
    assert_int_equal(r.vector, instant);
    for (size_t i = 0; i < r.n; i++) {
      const struct nn_logstore_mseries *se = &r.series[i];
      if (i)
        nn_buf_appendc(&b, ';');
      nn_labels_format(se->labels, se->nlabels, &b);
      nn_buf_appendc(&b, ':');
      for (size_t k = 0; k < se->n; k++)
        nn_buf_printf(&b, "%s%lld=%g", k ? "," : "", (long long)((se->ts_ns[k] - T0) / SEC),
                      se->v[k]);
    }
  }
  nn_logstore_mresult_fini(&r);
  char *out = strdup(b.data ? b.data : "");
  nn_buf_fini(&b);
  return out;
}

static void expect_run(struct nn_logstore *s, const char *q, int64_t start, int64_t end,
                       int64_t step, bool instant, const char *want)
{
  char *got = run(s, q, start, end, step, instant);
  if (strcmp(got, want) != 0)
    fail_msg("%s\n got: %s\nwant: %s", q, got, want);
  free(got);
}

static void evaluates(struct nn_logstore *s)
{
  /* Steps 60 and 120; windows (0, 60] and (60, 120]. */
  expect_run(s, "count_over_time({app=\"a\"}[1m])", 60, 120, 60, false,
             "{app=\"a\", level=\"err\"}:60=3,120=1;{app=\"a\", level=\"info\"}:60=1,120=1");
  /* The entry at exactly 60 is in (0, 60], not in (60, 120]. */
  expect_run(s, "count_over_time({app=\"b\"}[1m])", 60, 120, 60, false,
             "{app=\"b\", level=\"err\"}:60=2");
  expect_run(s, "sum by (level) (count_over_time({app=~\".+\"}[1m]))", 60, 120, 60, false,
             "{level=\"err\"}:60=5,120=1;{level=\"info\"}:60=1,120=1");
  expect_run(s, "sum(count_over_time({app=~\".+\"}[1m])) by (level)", 60, 120, 60, false,
             "{level=\"err\"}:60=5,120=1;{level=\"info\"}:60=1,120=1");
  expect_run(s, "sum without (level) (count_over_time({app=~\".+\"}[1m]))", 60, 120, 60, false,
             "{app=\"a\"}:60=4,120=2;{app=\"b\"}:60=2");
  expect_run(s, "sum(count_over_time({app=~\".+\"}[1m]))", 60, 120, 60, false, "{}:60=6,120=2");
  /* Line filters. */
  expect_run(s, "count_over_time({app=~\".+\"} |= \"boom\" [1m])", 60, 120, 60, false,
             "{app=\"a\", level=\"err\"}:60=2,120=1;{app=\"b\", level=\"err\"}:60=1");
  expect_run(s, "sum(count_over_time({level=\"err\"} != \"boom\" |~ \"^(ok|edge)$\" [1m]))", 60,
             120, 60, false, "{}:60=2");
  /* Overlapping windows: range 2m at step 30s over 30..120. */
  expect_run(s, "count_over_time({app=\"a\",level=\"err\"}[2m])", 30, 120, 30, false,
             "{app=\"a\", level=\"err\"}:30=3,60=3,90=4,120=4");
  /* rate and bytes. */
  expect_run(s, "rate({app=\"b\"}[1m])", 60, 60, 60, false,
             "{app=\"b\", level=\"err\"}:60=0.0333333");
  expect_run(s, "bytes_over_time({app=\"a\",level=\"info\"}[1m])", 60, 120, 60, false,
             "{app=\"a\", level=\"info\"}:60=5,120=11");
  expect_run(s, "bytes_rate({app=\"a\",level=\"info\"}[10s])", 20, 20, 60, false,
             "{app=\"a\", level=\"info\"}:20=0.5");
  /* offset moves the window back: at 120 with offset 1m it is (0, 60]. */
  expect_run(s, "count_over_time({app=\"a\",level=\"err\"}[1m] offset 1m)", 120, 120, 60, false,
             "{app=\"a\", level=\"err\"}:120=3");
  /* Aggregations. */
  expect_run(s, "count(count_over_time({app=~\".+\"}[1m]))", 60, 120, 60, false, "{}:60=3,120=2");
  expect_run(s, "max(count_over_time({app=~\".+\"}[1m]))", 60, 120, 60, false, "{}:60=3,120=1");
  expect_run(s, "min by (app) (count_over_time({app=~\".+\"}[1m]))", 60, 120, 60, false,
             "{app=\"a\"}:60=1,120=1;{app=\"b\"}:60=2");
  expect_run(s, "avg(count_over_time({app=~\".+\"}[1m]))", 60, 120, 60, false, "{}:60=2,120=1");
  expect_run(s, "topk(1, count_over_time({app=~\".+\"}[1m]))", 60, 120, 60, false,
             "{app=\"a\", level=\"err\"}:60=3,120=1");
  expect_run(s, "bottomk by (app) (1, count_over_time({app=~\".+\"}[1m]))", 60, 60, 60, false,
             "{app=\"a\", level=\"info\"}:60=1;{app=\"b\", level=\"err\"}:60=2");
  /* NaN ranks last in topk and bottomk, and NaNs keep their order between steps. */
  char *nan = run(s, "topk(2, count_over_time({app=~\".+\"}[1m]) % 0)", 60, 60, 60, false);
  const char *e1 = strstr(nan, "{app=\"a\", level=\"err\"}:60="),
             *e2 = strstr(nan, "{app=\"a\", level=\"info\"}:60=");
  if (!e1 || !e2 || e1 > e2 || !strstr(nan, "nan"))
    fail_msg("topk over NaNs: %s", nan);
  free(nan);
  /* Arithmetic with numbers. */
  expect_run(s, "sum(count_over_time({app=~\".+\"}[1m])) * 10 + 1", 60, 120, 60, false,
             "{}:60=61,120=21");
  expect_run(s, "100 / sum(count_over_time({app=~\".+\"}[1m]))", 60, 60, 60, false,
             "{}:60=16.6667");
  expect_run(s, "-sum(count_over_time({app=~\".+\"}[1m]))", 60, 60, 60, false, "{}:60=-6");
  /* absent_over_time: 1 where nothing matched, labelled by the equality matchers. */
  expect_run(s, "absent_over_time({app=\"b\", level=~\"e.*\"}[30s])", 30, 120, 30, false,
             "{app=\"b\"}:90=1,120=1");
  expect_run(s, "absent_over_time({app=\"zzz\"}[1m])", 60, 60, 60, false, "{app=\"zzz\"}:60=1");
  /* Empty results. */
  expect_run(s, "count_over_time({app=\"zzz\"}[1m])", 60, 120, 60, false, "");
  expect_run(s, "sum(count_over_time({app=\"a\"} |= \"nothing like this\" [1m]))", 60, 120, 60,
             false, "");
  expect_run(s, "count_over_time({app=\"a\"}[1m])", 1000, 2000, 60, false, "");
  /* Instant: a vector at one time. */
  expect_run(s, "sum by (app) (count_over_time({app=~\".+\"}[1m]))", 60, 0, 0, true,
             "{app=\"a\"}:60=4;{app=\"b\"}:60=2");
  /* Limits and bad parameters. */
  char *got = run(s, "count_over_time({app=\"a\"}[1m])", 0, 86400, 1, false);
  assert_non_null(strstr(got, "maximum resolution of 11000 points"));
  free(got);
  got = run(s, "count_over_time({app=\"a\"}[1m])", 0, 60, 0, false);
  assert_non_null(strstr(got, "step"));
  free(got);
  got = run(s, "count_over_time({app=\"a\"}[1m])", 0, INT64_C(4000000000), 60, false);
  assert_non_null(strstr(got, "out of range"));
  free(got);
  expect_run(s, "count_over_time({app=\"b\"} | drop __error__ [1m])", 60, 60, 60, false,
             "{app=\"b\", level=\"err\"}:60=2");
  got = run(s, "count_over_time({app=\"a\"} | distinct a [1m])", 0, 60, 60, false);
  assert_non_null(strstr(got, "error: parse error at line 1, col 27: unsupported pipeline stage"));
  free(got);
}

static void evaluates_heads_and_chunks(void **state)
{
  (void)state;
  struct nn_logstore *s = fill();
  evaluates(s);
  assert_int_equal(nn_logstore_flush(s), 0);
  evaluates(s);
  /* Entries split between a chunk and the head. */
  push(s, "{app=\"a\",level=\"err\"}", 100, "boom 5");
  expect_run(s, "count_over_time({app=\"a\",level=\"err\"}[1m])", 60, 120, 60, false,
             "{app=\"a\", level=\"err\"}:60=3,120=2");
  nn_logstore_close(s);
  /* And after reopening (chunks and WAL replayed). */
  s = open_store();
  expect_run(s, "count_over_time({app=\"a\",level=\"err\"}[1m])", 60, 120, 60, false,
             "{app=\"a\", level=\"err\"}:60=3,120=2");
  nn_logstore_close(s);
}

static void series_limit(void **state)
{
  (void)state;
  struct nn_logstore *s = open_store();
  char labels[64];
  for (int i = 0; i < NN_LOGSTORE_MAX_SERIES + 1; i++) {
    snprintf(labels, sizeof(labels), "{app=\"many\",pod=\"p%d\"}", i);
    push(s, labels, 10, "x");
  }
  char *got = run(s, "count_over_time({app=\"many\"}[1m])", 60, 60, 60, false);
  assert_non_null(strstr(got, "maximum of series (500)"));
  free(got);
  /* Aggregated, the same streams are one series. */
  expect_run(s, "sum(count_over_time({app=\"many\"}[1m]))", 60, 60, 60, false, "{}:60=501");
  nn_logstore_close(s);
}

static void writes_loki_json(void **state)
{
  (void)state;
  struct nn_logstore *s = fill();
  struct nn_logstore_mresult r;
  char err[256];
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  const char *q = "sum by (level) (rate({app=\"a\"}[1m]))";
  assert_int_equal(nn_logstore_metric_query(s, NULL, q, T0 + 60 * SEC, T0 + 90 * SEC + SEC / 2,
                                            30 * SEC + SEC / 4, false, &r, err, sizeof(err)),
                   0);
  assert_int_equal(nn_logstore_mresult_write_json(&r, &b), 0);
  const char *want =
      "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
      "{\"metric\":{\"level\":\"err\"},\"values\":[[1700000060,\"0.05\"],[1700000090.25,"
      "\"0.016666666666666666\"]]},"
      "{\"metric\":{\"level\":\"info\"},\"values\":[[1700000060,\"0.016666666666666666\"],"
      "[1700000090.25,\"0.016666666666666666\"]]}],\"stats\":{\"summary\":";
  if (strncmp(b.data, want, strlen(want)) != 0)
    fail_msg("got %s", b.data);
  nn_logstore_mresult_fini(&r);
  nn_buf_reset(&b);
  assert_int_equal(nn_logstore_metric_query(s, NULL, "count_over_time({app=\"b\"}[1m])",
                                            T0 + 60 * SEC, 0, 0, true, &r, err, sizeof(err)),
                   0);
  assert_int_equal(nn_logstore_mresult_write_json(&r, &b), 0);
  want = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
         "{\"metric\":{\"app\":\"b\",\"level\":\"err\"},\"value\":[1700000060,\"2\"]}],"
         "\"stats\":{\"summary\":";
  if (strncmp(b.data, want, strlen(want)) != 0)
    fail_msg("got %s", b.data);
  nn_logstore_mresult_fini(&r);
  nn_buf_fini(&b);
  nn_logstore_close(s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parser_accepts_the_subset),
      cmocka_unit_test(parser_refuses_with_positions),
      cmocka_unit_test(log_query_detection),
      cmocka_unit_test_setup_teardown(evaluates_heads_and_chunks, setup, teardown),
      cmocka_unit_test_setup_teardown(series_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(writes_loki_json, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
