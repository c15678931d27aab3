/* SPDX-License-Identifier: Apache-2.0 */
/* LogQL pipeline stages: json (flattened and with parameters), logfmt, regexp and pattern
 * parsers with their error labels and _extracted suffix, label filters on strings, numbers,
 * durations and bytes with and/or/parentheses, drop and keep, result streams grouped by the
 * label set after the pipeline, metric queries grouped by extracted labels, the pipeline
 * error of a metric query, and unwrapped range aggregations with values worked out by hand.
 * The same answers once the heads are cut into chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <math.h>
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
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/nn-pipeline-test-XXXXXX");
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

#define L10                                                                                        \
  "{\"status\":500,\"msg\":\"boom\",\"latency\":\"300ms\",\"size\":\"2KB\",\"req\":{\"path\":"     \
  "\"/a\",\"method\":\"GET\"},\"tags\":[\"x\",{\"y\":1}],\"app\":\"shadow\",\"n\":null}"
#define L20                                                                                        \
  "{\"status\":200,\"msg\":\"o\\u006b\",\"latency\":\"20ms\",\"size\":\"512B\",\"req\":{\"path\":" \
  "\"/b\",\"method\":\"GET\"}}"
#define L30 "not json"
#define L40                                                                                        \
  "{\"status\":503,\"msg\":\"slow\",\"latency\":\"1.5s\",\"size\":\"10KB\",\"req\":{\"path\":"     \
  "\"/a\",\"method\":\"POST\"}}"

static struct nn_logstore *fill(void)
{
  struct nn_logstore *s = open_store();
  push(s, "{app=\"api\"}", 10, L10);
  push(s, "{app=\"api\"}", 20, L20);
  push(s, "{app=\"api\"}", 30, L30);
  push(s, "{app=\"api\"}", 40, L40);
  push(s, "{app=\"web\"}", 15, "level=error msg=\"disk full\" dur=250ms 1st=x");
  push(s, "{app=\"web\"}", 25, "level=info msg=started dur=5ms");
  push(s, "{app=\"web\"}", 35, "level=error msg=\"unterminated");
  return s;
}

/* "labels:sec,sec;labels:..." in forward order, or "error: ...". */
static char *logq(struct nn_logstore *s, const char *q)
{
  struct nn_logstore_result r;
  char err[1024];
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  int rc = nn_logstore_query(s, NULL, q, T0, T0 + 100 * SEC, NN_LOGSTORE_FORWARD, 100, &r, err,
                             sizeof(err));
  if (rc < 0) {
    nn_buf_printf(&b, "error: %s", err);
  } else {
    for (size_t i = 0; i < r.n; i++) {
      if (i)
        nn_buf_appendc(&b, ';');
      nn_labels_format(r.streams[i].labels, r.streams[i].nlabels, &b);
      nn_buf_appendc(&b, ':');
      for (size_t k = 0; k < r.streams[i].n; k++)
        nn_buf_printf(&b, "%s%lld", k ? "," : "",
                      (long long)((r.streams[i].entries[k].ts_ns - T0) / SEC));
    }
  }
  nn_logstore_result_fini(&r);
  char *out = strdup(b.data ? b.data : "");
  nn_buf_fini(&b);
  return out;
}

/* The lines of a log query, oldest first, joined with ';'. */
static void expect_lines(struct nn_logstore *s, const char *q, const char *want)
{
  struct nn_logstore_result r;
  char err[512];
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  if (nn_logstore_query(s, NULL, q, T0, T0 + 100 * SEC, NN_LOGSTORE_FORWARD, 100, &r, err,
                        sizeof(err)) < 0)
    fail_msg("%s: %s", q, err);
  for (size_t i = 0; i < r.n; i++)
    for (size_t k = 0; k < r.streams[i].n; k++)
      nn_buf_printf(&b, "%s%.*s", b.len ? ";" : "", (int)r.streams[i].entries[k].len,
                    r.streams[i].entries[k].line);
  nn_logstore_result_fini(&r);
  if (strcmp(b.data ? b.data : "", want) != 0)
    fail_msg("%s\n got: %s\nwant: %s", q, b.data ? b.data : "", want);
  nn_buf_fini(&b);
}

static void expect_log(struct nn_logstore *s, const char *q, const char *want)
{
  char *got = logq(s, q);
  if (strcmp(got, want) != 0)
    fail_msg("%s\n got: %s\nwant: %s", q, got, want);
  free(got);
}

static char *metq(struct nn_logstore *s, const char *q, int64_t start, int64_t end, int64_t step)
{
  struct nn_logstore_mresult r;
  char err[1024];
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  int rc = nn_logstore_metric_query(s, NULL, q, T0 + start * SEC, T0 + end * SEC, step * SEC, false,
                                    &r, err, sizeof(err));
  if (rc < 0) {
    nn_buf_printf(&b, "error: %s", err);
  } else {
    for (size_t i = 0; i < r.n; i++) {
      const struct nn_logstore_mseries *se = &r.series[i];
      if (i)
        nn_buf_appendc(&b, ';');
      nn_labels_format(se->labels, se->nlabels, &b);
      nn_buf_appendc(&b, ':');
      for (size_t k = 0; k < se->n; k++)
        nn_buf_printf(&b, "%s%lld=%.10g", k ? "," : "", (long long)((se->ts_ns[k] - T0) / SEC),
                      se->v[k]);
    }
  }
  nn_logstore_mresult_fini(&r);
  char *out = strdup(b.data ? b.data : "");
  nn_buf_fini(&b);
  return out;
}

static void expect_met(struct nn_logstore *s, const char *q, int64_t start, int64_t end,
                       int64_t step, const char *want)
{
  char *got = metq(s, q, start, end, step);
  if (strcmp(got, want) != 0)
    fail_msg("%s\n got: %s\nwant: %s", q, got, want);
  free(got);
}

static void expect_met_error(struct nn_logstore *s, const char *q, const char *want)
{
  char *got = metq(s, q, 60, 60, 60);
  if (strncmp(got, "error: ", 7) != 0 || !strstr(got, want))
    fail_msg("%s\n got: %s\nwant an error with: %s", q, got, want);
  free(got);
}

#define API_500                                                                                    \
  "{app=\"api\", app_extracted=\"shadow\", latency=\"300ms\", msg=\"boom\", req_method=\"GET\", "  \
  "req_path=\"/a\", size=\"2KB\", status=\"500\"}"
#define API_200                                                                                    \
  "{app=\"api\", latency=\"20ms\", msg=\"ok\", req_method=\"GET\", req_path=\"/b\", "              \
  "size=\"512B\", status=\"200\"}"
#define API_503                                                                                    \
  "{app=\"api\", latency=\"1.5s\", msg=\"slow\", req_method=\"POST\", req_path=\"/a\", "           \
  "size=\"10KB\", status=\"503\"}"
#define API_ERR                                                                                    \
  "{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't find "     \
  "closing '}' symbol\", app=\"api\"}"

/* keep always keeps the error labels */
#define API_ERR_KEPT                                                                               \
  "{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't find "     \
  "closing '}' symbol\"}"

static void log_queries(struct nn_logstore *s)
{
  /* json: nested objects joined with _, arrays and nulls skipped, escapes decoded, a clash
   * with the stream label suffixed; one result stream per label set, sorted. */
  expect_log(s, "{app=\"api\"} | json", API_ERR ":30;" API_500 ":10;" API_503 ":40;" API_200 ":20");
  expect_log(s, "{app=\"api\"} |= \"status\" | json", API_500 ":10;" API_503 ":40;" API_200 ":20");
  expect_log(s, "{app=\"api\"} | json | __error__ != \"\"", API_ERR ":30");
  expect_log(s, "{app=\"api\"} | json | __error__ = \"\" | drop __error__",
             API_500 ":10;" API_503 ":40;" API_200 ":20");
  expect_log(s, "{app=\"api\"} | json | drop __error__, __error_details__",
             "{app=\"api\"}:30;" API_500 ":10;" API_503 ":40;" API_200 ":20");
  /* Numbers, durations, bytes; a missing label fails a numeric comparison. */
  expect_log(s, "{app=\"api\"} | json | status >= 500 | keep status",
             "{status=\"500\"}:10;{status=\"503\"}:40");
  expect_log(s, "{app=\"api\"} | json | status == 200 | keep status", "{status=\"200\"}:20");
  expect_log(s, "{app=\"api\"} | json | status = 200 | keep status", "{status=\"200\"}:20");
  expect_log(s, "{app=\"api\"} | json | status != 200 | keep status",
             "{status=\"500\"}:10;{status=\"503\"}:40");
  expect_log(s, "{app=\"api\"} | json | status < 500 | keep status", "{status=\"200\"}:20");
  expect_log(s, "{app=\"api\"} | json | status <= 500 | keep status",
             "{status=\"200\"}:20;{status=\"500\"}:10");
  expect_log(s, "{app=\"api\"} | json | status > 500 | keep status", "{status=\"503\"}:40");
  expect_log(s, "{app=\"api\"} | json | latency > 250ms | keep status",
             "{status=\"500\"}:10;{status=\"503\"}:40");
  expect_log(s, "{app=\"api\"} | json | latency <= 20ms | keep status", "{status=\"200\"}:20");
  expect_log(s, "{app=\"api\"} | json | size > 1KB | keep status",
             "{status=\"500\"}:10;{status=\"503\"}:40");
  expect_log(s, "{app=\"api\"} | json | size == 512B | keep status", "{status=\"200\"}:20");
  expect_log(s, "{app=\"api\"} | json | size >= 10KiB | keep status", "");
  /* Strings, regexps (anchored), and/or/','/parentheses (and binds tighter). */
  expect_log(s, "{app=\"api\"} | json | req_path =~ \"/a\" | keep status",
             "{status=\"500\"}:10;{status=\"503\"}:40");
  expect_log(s, "{app=\"api\"} | json | req_path !~ \"/(a|c)\" | keep status",
             API_ERR_KEPT ":30;{status=\"200\"}:20");
  expect_log(s, "{app=\"api\"} | json | msg = \"boom\", status = 500 | keep status",
             "{status=\"500\"}:10");
  expect_log(s, "{app=\"api\"} | json | status == 200 or latency > 1s and msg != \"ok\" | keep msg",
             "{msg=\"ok\"}:20;{msg=\"slow\"}:40");
  expect_log(s,
             "{app=\"api\"} | json | (status == 200 or latency > 1s) and msg != \"ok\" | keep msg",
             "{msg=\"slow\"}:40");
  /* A value that does not convert keeps the line, marked LabelFilterErr. */
  expect_log(s, "{app=\"api\"} |= \"boom\" | json | msg > 5 | keep msg",
             "{__error__=\"LabelFilterErr\", __error_details__=\"strconv.ParseFloat: parsing "
             "\\\"boom\\\": invalid syntax\", msg=\"boom\"}:10");
  /* json parameters: paths, array indexes, a missing path is "", a clash is suffixed. */
  expect_log(s,
             "{app=\"api\"} |= \"boom\" | json p=\"req.path\", t=\"tags[0]\", y=`tags[1].y`, "
             "app, none=\"x.y\" | keep p, t, y, app_extracted, none",
             "{app_extracted=\"shadow\", none=\"\", p=\"/a\", t=\"x\", y=\"1\"}:10");
  expect_log(s, "{app=\"api\"} | json status | __error__=\"\" | keep status",
             "{status=\"200\"}:20;{status=\"500\"}:10;{status=\"503\"}:40");
  /* drop by name and by value, keep with a matcher. */
  expect_log(s, "{app=\"api\"} | json | __error__=\"\" | keep status=\"500\", app",
             "{app=\"api\"}:20,40;{app=\"api\", status=\"500\"}:10");
  expect_log(s,
             "{app=\"api\"} | json | __error__=\"\" | drop latency, msg, req_method, req_path, "
             "size, app_extracted, status=~\"5..\"",
             "{app=\"api\"}:10,40;{app=\"api\", status=\"200\"}:20");
  /* Result streams merge when the pipeline makes label sets equal. */
  expect_log(s, "{app=~\"api|web\"} |= \"o\" | drop app", "{}:10,15,20,25,30,35,40");
  /* logfmt: a bare key, a quoted value, a key sanitized, an error after some labels. */
  expect_log(s, "{app=\"web\"} | logfmt",
             "{_1st=\"x\", app=\"web\", dur=\"250ms\", level=\"error\", msg=\"disk full\"}:15;"
             "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 30 : "
             "unterminated quoted value\", "
             "app=\"web\", level=\"error\"}:35;"
             "{app=\"web\", dur=\"5ms\", level=\"info\", msg=\"started\"}:25");
  expect_log(s,
             "{app=\"web\"} | logfmt | level=\"error\" | __error__=\"\" | dur > 100ms | keep msg",
             "{msg=\"disk full\"}:15");
  expect_log(s, "{app=\"web\"} | logfmt d=\"dur\", level | __error__=\"\" | keep d, level",
             "{d=\"250ms\", level=\"error\"}:15;{d=\"5ms\", level=\"info\"}:25");
  /* regexp: named groups only, no match adds nothing, a clash is suffixed. */
  expect_log(s, "{app=\"web\"} | regexp \"level=(?P<lvl>\\\\w+) msg=(?P<app>\\\\w+)\"",
             "{app=\"web\"}:15,35;{app=\"web\", app_extracted=\"started\", lvl=\"info\"}:25");
  /* pattern: <_> skipped, a missed literal lets the capture take the rest. */
  expect_log(s, "{app=\"web\"} | pattern \"level=<lvl> <_> dur=<d> <rest>\" | keep lvl, d, rest",
             "{d=\"250ms\", lvl=\"error\", rest=\"1st=x\"}:15;{d=\"5ms\", lvl=\"info\"}:25;"
             "{lvl=\"error\"}:35");
  /* Line filters anywhere in the pipeline. */
  expect_log(s, "{app=\"api\"} | json |= \"slow\" | keep status", "{status=\"503\"}:40");
  /* line_format rewrites the line (line filters after it see the new line), label_format
   * renames (the old label goes) or renders a template; a stream label is replaced. */
  expect_lines(s,
               "{app=\"api\"} | json | __error__=\"\" | line_format \"{{.status}} {{ .req_path }} "
               "{{.none}}|\" |= \"/a\" | keep status",
               "500 /a |;503 /a |");
  expect_lines(s, "{app=\"web\"} |= \"disk\" | line_format \"<{{- __line__ -}}>  \"",
               "<level=error msg=\"disk full\" dur=250ms 1st=x>  ");
  expect_log(
      s,
      "{app=\"api\"} | json | status=500 | label_format code=status, app=\"{{.app}}-{{.msg}}\" "
      "| keep app, code, status",
      "{app=\"api-boom\", code=\"500\"}:10");
  expect_met(s,
             "sum by (route) (bytes_over_time({app=\"api\"} | json | __error__=\"\" | label_format "
             "route=req_path | line_format \"{{.status}}\" [1m]))",
             60, 60, 60, "{route=\"/a\"}:60=6;{route=\"/b\"}:60=3");
  /* The limit counts lines after the pipeline: the newest line with status >= 500. */
  struct nn_logstore_result lr;
  char lerr[256];
  assert_int_equal(nn_logstore_query(s, NULL, "{app=\"api\"} | json | status >= 500", T0,
                                     T0 + 100 * SEC, NN_LOGSTORE_BACKWARD, 1, &lr, lerr,
                                     sizeof(lerr)),
                   0);
  assert_int_equal(lr.n, 1);
  assert_int_equal(lr.streams[0].n, 1);
  assert_true(lr.streams[0].entries[0].ts_ns == T0 + 40 * SEC);
  assert_string_equal(nn_labels_get(lr.streams[0].labels, lr.streams[0].nlabels, "status"), "503");
  nn_logstore_result_fini(&lr);
  /* unwrap belongs to metric queries. */
  char *got = logq(s, "{app=\"api\"} | json | unwrap status");
  assert_non_null(strstr(got, "error: unwrap is only valid in a metric query"));
  free(got);
}

static void metric_queries(struct nn_logstore *s)
{
  expect_met(s, "sum by (status) (count_over_time({app=\"api\"} | json | __error__=\"\" [1m]))", 60,
             60, 60, "{status=\"200\"}:60=1;{status=\"500\"}:60=1;{status=\"503\"}:60=1");
  expect_met(s, "sum by (req_path) (rate({app=\"api\"} |= \"{\" | json [1m]))", 60, 60, 60,
             "{req_path=\"/a\"}:60=0.03333333333;{req_path=\"/b\"}:60=0.01666666667");
  expect_met(s, "count_over_time({app=\"api\"} | json | status >= 500 | keep status [1m])", 60, 60,
             60, "{status=\"500\"}:60=1;{status=\"503\"}:60=1");
  expect_met(s, "bytes_over_time({app=\"web\"} | logfmt | __error__=\"\" | keep level [1m])", 60,
             60, 60, "{level=\"error\"}:60=43;{level=\"info\"}:60=30");
  expect_met(s, "absent_over_time({app=\"api\"} | json | status > 999 [1m])", 60, 60, 60,
             "{app=\"api\"}:60=1");
  /* A sum groups each line's labels first (as Loki injects it): the same answers. */
  expect_met(s,
             "sum without (latency, msg, req_method, req_path, size, app_extracted) "
             "(count_over_time({app=\"api\"} | json | __error__=\"\" [1m]))",
             60, 60, 60,
             "{app=\"api\", status=\"200\"}:60=1;{app=\"api\", status=\"500\"}:60=1;"
             "{app=\"api\", status=\"503\"}:60=1");
  expect_met(s, "max by (req_path) (count_over_time({app=\"api\"} | json | __error__=\"\" [1m]))",
             60, 60, 60, "{req_path=\"/a\"}:60=1;{req_path=\"/b\"}:60=1");
  expect_met(s, "sum by (req_path) (count_over_time({app=\"api\"} | json | __error__=\"\" [1m]))",
             60, 60, 60, "{req_path=\"/a\"}:60=2;{req_path=\"/b\"}:60=1");
  expect_met(s,
             "sum by (req_method) (sum_over_time({app=\"api\"} | json | __error__=\"\" | unwrap "
             "duration(latency) [1m]))",
             60, 60, 60, "{req_method=\"GET\"}:60=0.32;{req_method=\"POST\"}:60=1.5");
  expect_met(s, "sum(count_over_time({app=\"api\"} | json | __error__=\"\" [1m])) * 2", 60, 60, 60,
             "{}:60=6");
  /* A series left with __error__ fails the query as in Loki, unless filtered. */
  expect_met_error(s, "sum(count_over_time({app=\"api\"} | json [1m]))",
                   "pipeline error: 'JSONParserErr' for series: '{__error__=\"JSONParserErr\"");
  expect_met_error(s, "count_over_time({app=\"api\"} | json | __error__=\"\" | msg > 1 [1m])",
                   "pipeline error: 'LabelFilterErr'");
  /* Unwrapped: status 500 @10, 200 @20, 503 @40 (the line @30 is dropped by the filter). */
  const char *sel = "{app=\"api\"} | json | __error__=\"\" | unwrap status";
  struct {
    const char *fn, *want;
  } cases[] = {
      {"sum_over_time", "1203"},
      {"avg_over_time", "401"},
      {"max_over_time", "503"},
      {"min_over_time", "200"},
      {"first_over_time", "500"},
      {"last_over_time", "503"},
      {"stdvar_over_time", "20202"},       /* ((99^2 + 201^2 + 102^2) / 3 */
      {"stddev_over_time", "142.1337398"}, /* its square root */
      {"rate", "20.05"},                   /* 1203 / 60 */
      /* Counter reset at 200 adds 500: increase 503 over 30 s of samples; the range is
       * taken back from the first sample (60 s), cut at the zero point 30*500/503 s, which is
       * past 1.1 x the 15 s average, so half an average (7.5 s) is added at the start and
       * nothing at the end: 503 * 37.5 / 30 / 60. */
      {"rate_counter", "10.47916667"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char q[512], want[128];
    snprintf(q, sizeof(q), "%s(%s [1m]) by (app)", cases[i].fn, sel);
    snprintf(want, sizeof(want), "{app=\"api\"}:60=%s", cases[i].want);
    char *got = metq(s, q, 60, 60, 60);
    if (strncmp(got, want, strlen(want)) != 0)
      fail_msg("%s\n got: %s\nwant: %s", q, got, want);
    free(got);
  }
  /* Quantiles: sorted 200 500 503; rank = phi * 2, interpolated. */
  expect_met(s,
             "quantile_over_time(0.5, {app=\"api\"} | json | __error__=\"\" | unwrap status [1m]) "
             "by (app)",
             60, 60, 60, "{app=\"api\"}:60=500");
  expect_met(s,
             "quantile_over_time(0.75, {app=\"api\"} | json | __error__=\"\" | unwrap status [1m]) "
             "by (app)",
             60, 60, 60, "{app=\"api\"}:60=501.5");
  expect_met(s,
             "quantile_over_time(1.5, {app=\"api\"} | json | __error__=\"\" | unwrap status [1m]) "
             "by (app)",
             60, 60, 60, "{app=\"api\"}:60=inf");
  /* by/without on the range aggregation, duration() and bytes() conversions. */
  expect_met(s,
             "sum_over_time({app=\"api\"} | json | __error__=\"\" | unwrap duration(latency) [1m]) "
             "by (req_path)",
             60, 60, 60, "{req_path=\"/a\"}:60=1.8;{req_path=\"/b\"}:60=0.02");
  expect_met(s,
             "max_over_time({app=\"api\"} | json | __error__=\"\" | unwrap bytes(size) [1m]) "
             "without (app, latency, msg, req_method, req_path, size, app_extracted)",
             60, 60, 60,
             "{status=\"200\"}:60=512;{status=\"500\"}:60=2000;{status=\"503\"}:60=10000");
  /* Sliding windows of 20 s at steps 20, 40: (0,20] holds 500, 200; (20,40] holds 503. */
  expect_met(s,
             "sum by (app) (sum_over_time({app=\"api\"} | json | __error__=\"\" | unwrap status "
             "[20s]))",
             20, 40, 20, "{app=\"api\"}:20=700,40=503");
  /* offset shifts the window: (0, 30] at step 60 holds 500 and 200. */
  expect_met(s,
             "sum_over_time({app=\"api\"} | json | __error__=\"\" | unwrap status [1m] offset 30s) "
             "by (app)",
             60, 60, 60, "{app=\"api\"}:60=700");
  expect_met(s, "count_over_time({app=\"api\"} | json | status >= 500 | keep app [1m] offset 30s)",
             60, 60, 60, "{app=\"api\"}:60=1");
  /* A value that does not convert: SampleExtractionErr fails the query unless filtered. */
  expect_met_error(s, "sum_over_time({app=\"api\"} | json | __error__=\"\" | unwrap msg [1m])",
                   "pipeline error: 'SampleExtractionErr'");
  expect_met(s,
             "sum_over_time({app=\"api\"} | json | __error__=\"\" | unwrap msg | __error__=\"\" "
             "[1m])",
             60, 60, 60, "");
  expect_met(s,
             "sum_over_time({app=\"web\"} | logfmt | __error__=\"\" | unwrap duration(dur) [1m]) "
             "by (level)",
             60, 60, 60, "{level=\"error\"}:60=0.25;{level=\"info\"}:60=0.005");
}

static void evaluates_heads_and_chunks(void **state)
{
  (void)state;
  struct nn_logstore *s = fill();
  log_queries(s);
  metric_queries(s);
  assert_int_equal(nn_logstore_flush(s), 0);
  log_queries(s);
  metric_queries(s);
  nn_logstore_close(s);
}

static void parse_bad(const char *q, const char *pos, const char *what)
{
  struct nn__ls_query pq;
  char err[512];
  int rc = nn__logstore_query_parse(q, strlen(q), &pq, err, sizeof(err));
  if (rc != NN_EINVAL)
    fail_msg("%s: accepted", q);
  if (!strstr(err, pos) || !strstr(err, what))
    fail_msg("%s: got \"%s\", want \"%s\" and \"%s\"", q, err, pos, what);
}

static void parser_refuses_with_positions(void **state)
{
  (void)state;
  parse_bad("{a=\"x\"} | regexp \"(?P<n>[\"", "col 18", "invalid regexp");
  parse_bad("{a=\"x\"} | regexp \"(a)\"", "col 9", "at least one named capture");
  parse_bad("{a=\"x\"} | pattern \"<a><b>\"", "col 19", "separated by literal");
  parse_bad("{a=\"x\"} | pattern \"<_> x\"", "col 19", "at least one named capture");
  parse_bad("{a=\"x\"} | pattern \"<a> <a>\"", "col 19", "duplicate capture");
  parse_bad("{a=\"x\"} | json a=\"b[\"", "col 18", "cannot parse JSON path");
  parse_bad("{a=\"x\"} | status >= \"x\"", "col 21", "compares numbers");
  parse_bad("{a=\"x\"} | status =~ 5", "col 21", "needs a quoted regexp");
  parse_bad("{a=\"x\"} | status > 5q", "col 20", "not a number");
  parse_bad("{a=\"x\"} | status", "col 17", "expected one of");
  parse_bad("{a=\"x\"} | (status > 5", "col 22", "expected ')'");
  parse_bad("{a=\"x\"} | status =~ \"[\"", "col 21", "");
  parse_bad("{a=\"x\"} | logfmt --strict", "col 18", "logfmt flags");
  parse_bad("{a=\"x\"} | logfmt | unwrap x | json", "col 29", "only label filters may follow");
  parse_bad("{a=\"x\"} | unwrap frob(x)", "col 18", "unsupported unwrap conversion");
  parse_bad("{a=\"x\"} | unpack", "col 9", "unsupported pipeline stage");
  parse_bad("{a=\"x\"} | line_format \"{{.a | ToUpper}}\"", "col 23",
            "unsupported template action");
  parse_bad("{a=\"x\"} | line_format \"{{.a\"", "col 23", "unclosed action");
  parse_bad("{a=\"x\"} | label_format b", "col 25", "expected '='");
  parse_bad("{a=\"x\"} | ", "col 11", "expected a pipeline stage");
  char q[2048] = "{a=\"x\"}";
  for (int i = 0; i < 65; i++)
    strcat(q, " | json");
  parse_bad(q, "col 457", "more than 64 pipeline stages");
  char deep[256] = "{a=\"x\"} | ";
  for (int i = 0; i < 40; i++)
    strcat(deep, "(");
  parse_bad(deep, "col", "nested deeper");
}

static void value_parsers(void **state)
{
  (void)state;
  int64_t d;
  assert_true(nn__logstore_parse_go_duration("1h30m", 5, &d));
  assert_true(d == INT64_C(5400) * SEC);
  assert_true(nn__logstore_parse_go_duration("1.5s", 4, &d));
  assert_true(d == INT64_C(1500000000));
  assert_true(nn__logstore_parse_go_duration("-2ms", 4, &d));
  assert_true(d == -2000000);
  assert_true(nn__logstore_parse_go_duration("0", 1, &d));
  assert_true(d == 0);
  assert_true(nn__logstore_parse_go_duration("3\xc2\xb5s", 4, &d));
  assert_true(d == 3000);
  assert_false(nn__logstore_parse_go_duration("5", 1, &d));
  assert_false(nn__logstore_parse_go_duration("1d", 2, &d));
  assert_false(nn__logstore_parse_go_duration("", 0, &d));
  assert_false(nn__logstore_parse_go_duration("s", 1, &d));
  uint64_t b;
  assert_true(nn__logstore_parse_bytes("1KB", 3, &b));
  assert_true(b == 1000);
  assert_true(nn__logstore_parse_bytes("1KiB", 4, &b));
  assert_true(b == 1024);
  assert_true(nn__logstore_parse_bytes("2 mb", 4, &b));
  assert_true(b == 2000000);
  assert_true(nn__logstore_parse_bytes("1.5k", 4, &b));
  assert_true(b == 1500);
  assert_true(nn__logstore_parse_bytes("512", 3, &b));
  assert_true(b == 512);
  assert_false(nn__logstore_parse_bytes("x", 1, &b));
  assert_false(nn__logstore_parse_bytes("1XB", 3, &b));
  assert_false(nn__logstore_parse_bytes("99999999999EB", 13, &b));
}

/* A line with many keys goes through the label index: a later duplicate still overrides. */
static void many_keys(void **state)
{
  (void)state;
  struct nn_logstore *s = open_store();
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  nn_buf_appendc(&b, '{');
  for (int i = 0; i < 8000; i++)
    nn_buf_printf(&b, "\"k%d\":%d,", i, i);
  nn_buf_appends(&b, "\"k5\":\"dup\",\"app\":\"x\"}");
  push(s, "{app=\"api\"}", 10, b.data);
  nn_buf_fini(&b);
  expect_log(s, "{app=\"api\"} | json | keep k5, k7999, app_extracted",
             "{app_extracted=\"x\", k5=\"dup\", k7999=\"7999\"}:10");
  expect_log(s, "{app=\"api\"} | json | drop k1 | label_format k2=k3 | keep k2, k3, k4",
             "{k2=\"3\", k4=\"4\"}:10");
  /* logfmt errors name the position as Loki's decoder does; pairs before the error stay. */
  push(s, "{app=\"fmt\"}", 20, "x=1 a=b=c d=e");
  push(s, "{app=\"fmt\"}", 30, "k=\"a\\qb\" z=2");
  expect_log(s, "{app=\"fmt\"} | logfmt",
             "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 8 : "
             "unexpected '='\", app=\"fmt\", x=\"1\"}:20;"
             "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 9 : "
             "invalid quoted value\", app=\"fmt\"}:30");
  nn_logstore_close(s);
}

/* The pipeline's scratch is charged to the query's memory: a tiny limit refuses the query. */
static void memory_limit(void **state)
{
  (void)state;
  struct nn_logstore_config c;
  nn_logstore_config_defaults(&c);
  c.data_dir = tmpdir;
  c.retention_ns = 0;
  c.query_max_bytes = 2048;
  struct nn_logstore *s = NULL;
  char err[256] = "";
  assert_int_equal(nn_logstore_open(&c, &s, err, sizeof(err)), 0);
  char line[4096];
  memset(line, 'a', sizeof(line));
  memcpy(line, "{\"k\":\"", 6);
  memcpy(line + sizeof(line) - 3, "\"}", 3);
  push(s, "{app=\"api\"}", 10, line);
  char *got = logq(s, "{app=\"api\"} | json");
  assert_non_null(strstr(got, "error: the query result exceeds 2048 bytes"));
  free(got);
  got = metq(s, "count_over_time({app=\"api\"} | json [1m])", 60, 60, 60);
  assert_non_null(strstr(got, "error: the query needs more than 2048 bytes"));
  free(got);
  nn_logstore_close(s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parser_refuses_with_positions),
      cmocka_unit_test(value_parsers),
      cmocka_unit_test_setup_teardown(evaluates_heads_and_chunks, setup, teardown),
      cmocka_unit_test_setup_teardown(memory_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(many_keys, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
