/* SPDX-License-Identifier: Apache-2.0 */
/* Exposition parser tables: each input is parsed and the samples are rendered as
 * `name{l="v",...} value [@ts] <type>` lines, or the error as "ERR line:col: ...". */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agent/expfmt/expfmt.h"
#include "common/buf.h"
#include "common/error.h"

/* Series text the fast path may take, with its labels rendered as on_sample saw them. */
#define KNOWN_MAX 256
struct known {
  char *text[KNOWN_MAX];
  char *labels[KNOWN_MAX];
  size_t n;
};

struct out {
  struct nn_buf b;
  int metas;
  char lastmeta[256];
  struct known *known; /* NULL: the fast path is off */
  size_t fast;         /* samples the fast path took */
};

static void render_value(struct out *o, const struct nn_expfmt_sample *s)
{
  if (isnan(s->value))
    nn_buf_printf(&o->b, "} NaN");
  else
    nn_buf_printf(&o->b, "} %g", s->value);
  if (s->has_ts)
    nn_buf_printf(&o->b, " @%lld", (long long)s->ts_ms);
  nn_buf_printf(&o->b, " %s\n", nn_expfmt_type_name(s->type));
}

static int on_sample(void *ud, const struct nn_expfmt_sample *s)
{
  struct out *o = ud;
  assert_string_equal(s->labels[0].name, "__name__");
  assert_non_null(s->series);
  assert_memory_equal(s->series, s->labels[0].value, strlen(s->labels[0].value));
  size_t start = o->b.len;
  nn_buf_printf(&o->b, "%s{", s->labels[0].value);
  for (size_t i = 1; i < s->nlabels; i++)
    nn_buf_printf(&o->b, "%s%s=\"%s\"", i > 1 ? "," : "", s->labels[i].name, s->labels[i].value);
  struct known *k = o->known;
  if (k && k->n < KNOWN_MAX) {
    k->text[k->n] = strndup(s->series, s->series_len);
    k->labels[k->n] = strndup(o->b.data + start, o->b.len - start);
    k->n++;
  }
  render_value(o, s);
  return 0;
}

static int on_series(void *ud, const struct nn_expfmt_sample *s)
{
  struct out *o = ud;
  assert_null(s->labels);
  for (size_t i = 0; i < o->known->n; i++) {
    if (strlen(o->known->text[i]) == s->series_len &&
        memcmp(o->known->text[i], s->series, s->series_len) == 0) {
      nn_buf_appends(&o->b, o->known->labels[i]);
      render_value(o, s);
      o->fast++;
      return 0;
    }
  }
  return NN_EXPFMT_PARSE_LABELS;
}

static int on_meta(void *ud, const struct nn_expfmt_meta *m)
{
  struct out *o = ud;
  o->metas++;
  snprintf(o->lastmeta, sizeof(o->lastmeta), "%d %s %s %s", (int)m->kind, m->family, m->text,
           nn_expfmt_type_name(m->type));
  return 0;
}

/* Parses in and compares with want three times: without the fast path, with it while it
 * knows nothing, and with it knowing every series text the second pass saw. All three
 * must give the same samples and the same error. */
static void check(enum nn_expfmt_format fmt, const char *in, const char *want)
{
  struct nn_expfmt_parser *p = nn_expfmt_parser_create(0);
  struct known known = {0};
  for (int pass = 0; pass < 3; pass++) {
    struct out o = {.known = pass ? &known : NULL};
    struct nn_expfmt_handler h = {on_sample, on_meta, pass ? on_series : NULL};
    nn_buf_init(&o.b, 1 << 20);
    nn_buf_appends(&o.b, "");
    int rc = nn_expfmt_parse(p, fmt, in, strlen(in), &h, &o);
    if (rc < 0) {
      nn_buf_reset(&o.b);
      nn_buf_printf(&o.b, "ERR %s", nn_expfmt_parser_error(p));
    }
    if (strncmp(want, "ERR", 3) == 0 && rc < 0) {
      /* Only the position and a message prefix are compared for errors. */
      if (strncmp(o.b.data, want, strlen(want)) != 0)
        fail_msg("pass %d, input:\n%s\nwant error: %s\ngot:        %s", pass, in, want, o.b.data);
    } else if (strcmp(o.b.data, want) != 0) {
      fail_msg("pass %d, input:\n%s\nwant:\n%s\ngot:\n%s", pass, in, want, o.b.data);
    }
    if (pass == 2 && known.n)
      assert_true(o.fast > 0);
    nn_buf_fini(&o.b);
  }
  for (size_t i = 0; i < known.n; i++) {
    free(known.text[i]);
    free(known.labels[i]);
  }
  nn_expfmt_parser_destroy(p);
}

#define T(in, want)  check(NN_EXPFMT_TEXT, in, want)
#define OM(in, want) check(NN_EXPFMT_OPENMETRICS, in, want)

static void text_basics(void **state)
{
  T("", "");
  T("a 1\n", "a{} 1 unknown\n");
  T("a 1", "a{} 1 unknown\n"); /* no final newline */
  T("  a   1   \n\n\n", "a{} 1 unknown\n");
  T("a{} 1\n", "a{} 1 unknown\n");
  T("a{b=\"c\",} 1\n", "a{b=\"c\"} 1 unknown\n");
  T("a { z = \"1\" , b=\"2\" } 3 1000\n", "a{b=\"2\",z=\"1\"} 3 @1000 unknown\n");
  T("ns:metric_name{x=\"y\"} -1.5e3 -5\n", "ns:metric_name{x=\"y\"} -1500 @-5 unknown\n");
  T("a NaN\nb +Inf\nc -Inf\nd 0x10\n",
    "a{} NaN unknown\nb{} inf unknown\nc{} -inf unknown\nd{} 16 unknown\n");
  T("a 123456789012345678\n", "a{} 1.23457e+17 unknown\n");
  T("# a comment\n#another\n# HELP\na 1\n", "a{} 1 unknown\n");
}

static void text_escapes_and_meta(void **state)
{
  T("a{b=\"q\\\"uo\\\\te\\nnl\\x\"} 1\n", "a{b=\"q\"uo\\te\nnl\\x\"} 1 unknown\n");
  T("a{b=\"{,}=\"} 1\n", "a{b=\"{,}=\"} 1 unknown\n");
  T("a{b=\"ü\"} 1\n", "a{b=\"ü\"} 1 unknown\n");
  /* The fast path delimits label blocks with '}' and escaped quotes inside values, and a
   * repeated line takes it (check() parses every input with it too). */
  T("a{b=\"}\",c=\"x\\\"}\"} 1\na{b=\"}\",c=\"x\\\"}\"} 2\n",
    "a{b=\"}\",c=\"x\"}\"} 1 unknown\na{b=\"}\",c=\"x\"}\"} 2 unknown\n");
  T("a {b=\"1\"} 2\na {b=\"1\"} 3 7\n", "a{b=\"1\"} 2 unknown\na{b=\"1\"} 3 @7 unknown\n");
  T("a{b=\"1\"} 1\na{b=\"1\"} x\n", "ERR 2:10: invalid value");
  T("a{b=\"1\"} 1\na{b=1} 2\n", "ERR 2:5: expected '\"'");

  struct nn_expfmt_parser *p = nn_expfmt_parser_create(0);
  struct out o = {0};
  struct nn_expfmt_handler h = {on_sample, on_meta, NULL};
  nn_buf_init(&o.b, 1 << 20);
  const char *in = "# HELP   go_gc  Help with \\\\ and \\n and \\\"\n# TYPE go_gc summary\n"
                   "go_gc{quantile=\"0.5\"} 1\ngo_gc_sum 2\ngo_gc_count 3\nother 4\n";
  assert_int_equal(nn_expfmt_parse(p, NN_EXPFMT_TEXT, in, strlen(in), &h, &o), 0);
  assert_string_equal(o.b.data, "go_gc{quantile=\"0.5\"} 1 summary\ngo_gc_sum{} 2 summary\n"
                                "go_gc_count{} 3 summary\nother{} 4 unknown\n");
  assert_int_equal(o.metas, 2);
  assert_string_equal(o.lastmeta, "1 go_gc  summary");
  nn_buf_reset(&o.b);
  o.metas = 0;
  in = "# HELP x Help with \\\\ and \\n and \\\"\n";
  assert_int_equal(nn_expfmt_parse(p, NN_EXPFMT_TEXT, in, strlen(in), &h, &o), 0);
  assert_string_equal(o.lastmeta, "0 x Help with \\ and \n and \\\" unknown");
  nn_buf_fini(&o.b);
  nn_expfmt_parser_destroy(p);

  T("# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
    "h_bucket{le=\"0.1\"} 1 histogram\nh_bucket{le=\"+Inf\"} 2 histogram\nh_sum{} 3 "
    "histogram\nh_count{} 2 histogram\n");
  T("# TYPE c counter\nc_total 1\nc 2\n", "c_total{} 1 counter\nc{} 2 counter\n");
  T("# TYPE u untyped\nu 1\n", "u{} 1 unknown\n");
}

static void text_errors(void **state)
{
  T("a\n", "ERR 1:2: expected whitespace");
  T("a \n", "ERR 1:3: expected a value");
  T("a 1\nb x\n", "ERR 2:3: invalid value \"x\"");
  T("a 1 2 3\n", "ERR 1:7: unexpected text");
  T("a 1 1.5\n", "ERR 1:5: invalid timestamp");
  T("a{b=\"c} 1\n", "ERR 1:5: unterminated value");
  T("a{b=c} 1\n", "ERR 1:5: expected '\"'");
  T("a{b=\"c\" d=\"e\"} 1\n", "ERR 1:9: expected ',' or '}'");
  T("a{1b=\"c\"} 1\n", "ERR 1:3: invalid label name");
  T("a{b=\"1\",b=\"2\"} 1\n", "ERR 1:1: duplicate label name \"b\"");
  T("a{__name__=\"x\"} 1\n", "ERR 1:1: duplicate label name \"__name__\"");
  T("1a 1\n", "ERR 1:1: invalid metric name");
  T("# TYPE a nonsense\n", "ERR 1:10: invalid metric type");
  T("# TYPE a gaugehistogram\n", "ERR 1:10: invalid metric type"); /* OpenMetrics only */
  T("a{b=\"\xff\"} 1\n", "ERR 1:6: invalid UTF-8");
  T("a 1\r\n", "ERR 1:3: invalid value");
  T("a nan(123)\n", "ERR 1:3: invalid value");
  T("a 1e999\n", "ERR 1:3: invalid value");
  T("a 99999999999999999999\n", "a{} 1e+20 unknown\n");
  T("a 1 99999999999999999999\n", "ERR 1:5: invalid timestamp");
}

static void openmetrics_basics(void **state)
{
  OM("# EOF\n", "");
  OM("# EOF", "");
  OM("a 1\n# EOF\n", "a{} 1 unknown\n");
  OM("a{b=\"c\",d=\"e\"} 1 1.5\n# EOF\n", "a{b=\"c\",d=\"e\"} 1 @1500 unknown\n");
  OM("a 1 -0.001\n# EOF\n", "a{} 1 @-1 unknown\n");
  OM("# TYPE c counter\n# HELP c Help \\\"quoted\\\"\n# UNIT c seconds\nc_total 1\n"
     "c_created 1600000000\n# EOF\n",
     "c_total{} 1 counter\n");
  OM("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0.5\n"
     "h_created 123\n# EOF\n",
     "h_bucket{le=\"1\"} 1 histogram\nh_bucket{le=\"+Inf\"} 1 histogram\nh_count{} 1 "
     "histogram\nh_sum{} 0.5 histogram\n");
  OM("# TYPE g gauge\ng_created 5\n# EOF\n", "g_created{} 5 gauge\n"); /* not skipped: gauge */
  OM("# TYPE gh gaugehistogram\ngh_bucket{le=\"1\"} 1\ngh_gcount 1\ngh_gsum 1\n# EOF\n",
     "gh_bucket{le=\"1\"} 1 gaugehistogram\ngh_gcount{} 1 gaugehistogram\ngh_gsum{} 1 "
     "gaugehistogram\n");
  OM("# TYPE i info\ni_info{v=\"1\"} 1\n# TYPE s stateset\ns{s=\"a\"} 1\n# EOF\n",
     "i_info{v=\"1\"} 1 info\ns{s=\"a\"} 1 stateset\n");
  /* Exemplars are checked and dropped. */
  OM("# TYPE c counter\nc_total 5 # {trace_id=\"abc\"} 1.0 1600000000.123\n# EOF\n",
     "c_total{} 5 counter\n");
  OM("c_total 5 100 # {} 1\n# EOF\n", "c_total{} 5 @100000 unknown\n");
}

static void openmetrics_errors(void **state)
{
  OM("a 1\n", "ERR 2:1: data does not end with # EOF");
  OM("", "ERR 1:1: data does not end with # EOF");
  OM("a 1\n# EOF\nb 2\n", "ERR 3:1: unexpected data after # EOF");
  OM("a 1\n\n# EOF\n", "ERR 2:1: empty line");
  OM("# random comment\n# EOF\n", "ERR 1:1: invalid comment");
  OM("a  1\n# EOF\n", "ERR 1:3: expected a value");
  OM("a 1 \n# EOF\n", "ERR 1:4: trailing space");
  OM("a{b=\"c\", d=\"e\"} 1\n# EOF\n", "ERR 1:9: invalid label name");
  OM("a 1 NaN\n# EOF\n", "ERR 1:5: invalid timestamp");
  OM("a 1 # {x=\"y\"} notanumber\n# EOF\n", "ERR 1:15: invalid exemplar value");
  OM("a 1 # x\n# EOF\n", "ERR 1:5: unexpected text");
  OM("# TYPE a untyped\n# EOF\n", "ERR 1:10: invalid metric type");
  OM("a 1", "ERR 1:4: expected a newline");
}

static int stop_at_second(void *ud, const struct nn_expfmt_sample *s)
{
  int *n = ud;
  return ++*n == 2 ? 42 : 0;
}

static void callback_stops_parse_and_limits(void **state)
{
  struct nn_expfmt_parser *p = nn_expfmt_parser_create(2);
  struct nn_expfmt_handler h = {stop_at_second, NULL, NULL};
  int n = 0;
  const char *in = "a 1\nb 2\nc 3\n";
  assert_int_equal(nn_expfmt_parse(p, NN_EXPFMT_TEXT, in, strlen(in), &h, &n), 42);
  assert_int_equal(n, 2);
  in = "a{x=\"1\",y=\"2\",z=\"3\"} 1\n";
  n = 0;
  assert_int_equal(nn_expfmt_parse(p, NN_EXPFMT_TEXT, in, strlen(in), &h, &n), NN_ELIMIT);
  assert_non_null(strstr(nn_expfmt_parser_error(p), "too many labels"));
  nn_expfmt_parser_destroy(p);
}

static void content_type_selects_format(void **state)
{
  assert_int_equal(nn_expfmt_format_from_content_type(
                       "application/openmetrics-text; version=1.0.0; charset=utf-8"),
                   NN_EXPFMT_OPENMETRICS);
  assert_int_equal(nn_expfmt_format_from_content_type("text/plain; version=0.0.4"), NN_EXPFMT_TEXT);
  assert_int_equal(nn_expfmt_format_from_content_type(NULL), NN_EXPFMT_TEXT);
  assert_int_equal(nn_expfmt_format_from_content_type("application/json"), NN_EXPFMT_TEXT);
}

static int count_cb(void *ud, const struct nn_expfmt_sample *s)
{
  (*(size_t *)ud)++;
  return 0;
}

static int value_cb(void *ud, const struct nn_expfmt_sample *s)
{
  *(double *)ud = s->value;
  return 0;
}

/* Short decimals take a shortcut past strtod; the result must be the same double. */
static void decimal_values_match_strtod(void **state)
{
  struct nn_expfmt_parser *p = nn_expfmt_parser_create(0);
  struct nn_expfmt_handler h = {value_cb, NULL, NULL};
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    char v[40], line[64];
    int frac = (int)(x % 15) + 1, intd = (int)((x >> 8) % 15);
    uint64_t digits = (x >> 16) % 1000000000000000ull;
    snprintf(v, sizeof(v), "%s%.*s.%0*llu", (x >> 60) & 1 ? "-" : "", intd, "123456789012345", frac,
             (unsigned long long)(digits % 1000000000000000ull));
    int n = snprintf(line, sizeof(line), "a %s\n", v);
    double got = 0, want = strtod(v, NULL);
    assert_int_equal(nn_expfmt_parse(p, NN_EXPFMT_TEXT, line, (size_t)n, &h, &got), 0);
    if (memcmp(&got, &want, sizeof(got)) != 0)
      fail_msg("%s: got %.17g want %.17g", v, got, want);
  }
  nn_expfmt_parser_destroy(p);
}

/* A large exposition parses completely (speed is measured in bench/, not asserted here). */
static void large_exposition_parses_completely(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 64 << 20);
  for (int i = 0; i < 200000; i++)
    nn_buf_printf(&b, "http_requests_total{code=\"200\",handler=\"/api/v%d\",method=\"GET\"} %d\n",
                  i % 1000, i);
  struct nn_expfmt_parser *p = nn_expfmt_parser_create(0);
  struct nn_expfmt_handler h = {count_cb, NULL, NULL};
  size_t n = 0;
  struct timespec a, z;
  clock_gettime(CLOCK_MONOTONIC, &a);
  assert_int_equal(nn_expfmt_parse(p, NN_EXPFMT_TEXT, b.data, b.len, &h, &n), 0);
  clock_gettime(CLOCK_MONOTONIC, &z);
  double ns = ((double)(z.tv_sec - a.tv_sec) * 1e9 + (double)(z.tv_nsec - a.tv_nsec)) / 200000;
  printf("# expfmt: %.0f ns/sample\n", ns);
  assert_int_equal(n, 200000);
  nn_expfmt_parser_destroy(p);
  nn_buf_fini(&b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(text_basics),
      cmocka_unit_test(text_escapes_and_meta),
      cmocka_unit_test(text_errors),
      cmocka_unit_test(openmetrics_basics),
      cmocka_unit_test(openmetrics_errors),
      cmocka_unit_test(callback_stops_parse_and_limits),
      cmocka_unit_test(content_type_selects_format),
      cmocka_unit_test(decimal_values_match_strtod),
      cmocka_unit_test(large_exposition_parses_completely),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
