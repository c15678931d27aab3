/* SPDX-License-Identifier: Apache-2.0 */
/* The alert template subset: expansion of variables, fields and pipelines, the humanize
 * family against the outputs Prometheus's own template tests document, printf, and the
 * split between load-time syntax errors and eval-time "<error expanding template>". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/rules/internal.h"
#include "common/buf.h"

static const struct nn_label labels[] = {
    {"__name__", "up"}, {"instance", "host-1:9100"}, {"job", "node"}};
static const struct nn_label ext[] = {{"cluster", "eu-1"}};

static char *expand(const char *text, double value)
{
  struct nn__tmpl *t = NULL;
  char err[512];
  int rc = nn__tmpl_parse(text, strlen(text), "__alert_Test", &t, err, sizeof(err));
  if (rc < 0)
    fail_msg("parse of %s failed: %s", text, err);
  struct nn__tmpl_data d = {.labels = labels,
                            .nlabels = 3,
                            .ext = ext,
                            .next = 1,
                            .ext_url = "http://nines:9090",
                            .value = value};
  char *s = nn__tmpl_expand_text(t, "__alert_Test", &d);
  nn__tmpl_free(t);
  assert_non_null(s);
  return s;
}

static void check(const char *text, double value, const char *want)
{
  char *got = expand(text, value);
  if (strcmp(got, want) != 0)
    fail_msg("%s with value %g: got \"%s\", want \"%s\"", text, value, got, want);
  free(got);
}

static void test_variables_and_fields(void **state)
{
  check("plain text", 0, "plain text");
  check("{{ $labels.instance }} of {{ .Labels.job }}", 0, "host-1:9100 of node");
  check("{{$value}}/{{ .Value }}", 0.5, "0.5/0.5");
  check("{{ $value }}", 1234567, "1.234567e+06");
  check("{{ $value }}", 100000, "100000");
  check("{{ $externalLabels.cluster }} {{ .ExternalLabels.cluster }}", 0, "eu-1 eu-1");
  check("{{ $externalURL }}", 0, "http://nines:9090");
  check("[{{ $labels.missing }}]", 0, "[]");
  check("{{ \"quoted\" }} {{ `raw` }}", 0, "quoted raw");
  check("a {{- \" b \" -}} c", 0, "a b c");
  check("x {{/* a comment */}}y", 0, "x y");
  check("{{ $labels }}", 0, "map[__name__:up instance:host-1:9100 job:node]");
}

/* Prometheus template/template_test.go outputs. */
static void test_humanize_family(void **state)
{
  const double hv[] = {0.0, 1.0, 1234567.0, .12, -1234567.0, 1e-7, 2e27};
  const char *const hw[] = {"0", "1", "1.235M", "120m", "-1.235M", "100n", "2000Y"};
  for (size_t i = 0; i < sizeof(hv) / sizeof(hv[0]); i++)
    check("{{ humanize $value }}", hv[i], hw[i]);
  const double kv[] = {0.0, 1.0, 1048576.0, .12, 2048};
  const char *const kw[] = {"0", "1", "1Mi", "0.12", "2ki"};
  for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
    check("{{ humanize1024 $value }}", kv[i], kw[i]);
  const double dv[] = {
      0,      1,  60,    3600,   86400, 86400 + 3600, -(86400 * 2 + 3600 * 3 + 60 * 4 + 5),
      899.99, .1, .0001, .12345, 60.1,  60.5,         1.2345,
      12.345};
  const char *const dw[] = {"0s",          "1s",           "1m 0s",   "1h 0m 0s", "1d 0h 0m 0s",
                            "1d 1h 0m 0s", "-2d 3h 4m 5s", "14m 59s", "100ms",    "100us",
                            "123.5ms",     "1m 0s",        "1m 0s",   "1.234s",   "12.35s"};
  for (size_t i = 0; i < sizeof(dv) / sizeof(dv[0]); i++)
    check("{{ humanizeDuration $value }}", dv[i], dw[i]);
  const double pv[] = {0, 0.1234567, 1.23456, 12.3456};
  const char *const pw[] = {"0%", "12.35%", "123.5%", "1235%"};
  for (size_t i = 0; i < sizeof(pv) / sizeof(pv[0]); i++)
    check("{{ $value | humanizePercentage }}", pv[i], pw[i]);
  check("{{ humanizeTimestamp $value }}", 1435065584.128, "2015-06-23 13:19:44.128 +0000 UTC");
  check("{{ humanize \"1234567\" }}", 0, "1.235M");
  check("{{ humanize $value }}", 1.0 / 0.0, "+Inf");
}

static void test_string_functions_and_printf(void **state)
{
  check("{{ \"aa bb CC\" | title }}", 0, "Aa Bb CC");
  check("{{ \"aa bb CC\" | toUpper }}", 0, "AA BB CC");
  check("{{ \"aa bb CC\" | toLower }}", 0, "aa bb cc");
  check("{{ printf \"%.2f\" $value }}", 11.111, "11.11");
  check("{{ $value | printf \"%.1f%%\" }}", 99.95, "100.0%");
  check("{{ printf \"%s=%d\" \"x\" 5 }}", 0, "x=5");
  check("{{ printf \"%d\" $value }}", 1.5, "%!d(float64=1.5)");
  check("{{ printf \"%s %s\" \"a\" }}", 0, "a %!s(MISSING)");
  check("{{ $labels.instance | stripPort }}", 0, "host-1");
  check("{{ printf \"%.1f\" (humanize 1234 | len) }}", 0,
        "<error expanding template: error executing template __alert_Test: template: "
        "__alert_Test: function \"len\" is not supported by nines' template engine>");
}

static void test_execution_errors_become_text(void **state)
{
  char *s = expand("{{ humanize \"abc\" }}", 0);
  assert_non_null(strstr(s, "<error expanding template: error executing template __alert_Test:"));
  assert_non_null(strstr(s, "strconv.ParseFloat: parsing \"abc\": invalid syntax"));
  free(s);
  /* Go refuses to compare a float64 with an int constant */
  s = expand("{{ if gt $value 1 }}big{{ end }}", 5);
  assert_non_null(strstr(s, "error calling gt: incompatible types for comparison"));
  free(s);
  s = expand("{{ if lt $labels 1.0 }}x{{ end }}", 5);
  assert_non_null(strstr(s, "error calling lt: invalid type for comparison"));
  free(s);
  s = expand("{{ range $value }}x{{ end }}", 5);
  assert_non_null(strstr(s, "range can't iterate over 5"));
  free(s);
  s = expand("{{ define \"x\" }}y{{ end }}", 5);
  assert_non_null(strstr(s, "{{define}} is not supported by nines' template engine"));
  free(s);
  /* nested ranges multiply; the step budget stops them */
  s = expand("{{range $labels}}{{range $labels}}{{range $labels}}{{range $labels}}{{range "
             "$labels}}{{range $labels}}{{range $labels}}{{range $labels}}{{range $labels}}"
             "{{range $labels}}{{range $labels}}{{end}}{{end}}{{end}}{{end}}{{end}}{{end}}{{end}}"
             "{{end}}{{end}}{{end}}{{end}}",
             0);
  assert_non_null(strstr(s, "execution steps"));
  free(s);
  s = expand("{{ .Nope }}", 0);
  assert_non_null(strstr(s, "can't evaluate field Nope"));
  free(s);
}

static void test_if_else_range_and_comparisons(void **state)
{
  check("{{ if gt $value 1.0 }}big{{ else }}small{{ end }}", 5, "big");
  check("{{ if gt $value 1.0 }}big{{ else }}small{{ end }}", 0.5, "small");
  check("{{ if ge $value 2.0 }}a{{ else if ge $value 1.0 }}b{{ else }}c{{ end }}", 1, "b");
  check("{{ if ge $value 2.0 }}a{{ else if ge $value 1.0 }}b{{ else }}c{{ end }}", 3, "a");
  check("{{ if ge $value 2.0 }}a{{ else if ge $value 1.0 }}b{{ else }}c{{ end }}", 0, "c");
  check("{{ if ge $value 2.0 }}a{{ else if ge $value 1.0 }}b{{ end }}.", 0, ".");
  check("{{ if eq $labels.job \"node\" }}node{{ end }}", 0, "node");
  check("{{ if ne $labels.job \"node\" }}other{{ else }}same{{ end }}", 0, "same");
  check("{{ if eq $labels.job \"a\" \"node\" }}one of{{ end }}", 0, "one of");
  check("{{ if and (gt $value 1.0) (lt $value 10.0) }}in{{ end }}", 5, "in");
  check("{{ if or (lt $value 1.0) (gt $value 10.0) }}out{{ else }}in{{ end }}", 5, "in");
  check("{{ if not (eq $value 0.0) }}nonzero{{ end }}", 2, "nonzero");
  check("{{ if $labels.missing }}set{{ else }}unset{{ end }}", 0, "unset");
  check("{{ if le 1 1 }}{{ if lt \"a\" \"b\" }}ab{{ end }}{{ end }}", 0, "ab");
  check("{{ and 1 0 2 }} {{ or 0 \"\" \"x\" }} {{ printf \"%v\" (eq 1 1) }}", 0, "0 x true");
  /* nested if inside else */
  check("{{ if false }}a{{ else }}{{ if true }}b{{ end }}{{ end }}", 0, "b");
  check("{{- if gt $value 0.5 -}}\n  high\n{{- end }}", 1, "high");
  check("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", 0,
        "__name__=up;instance=host-1:9100;job=node;");
  check("{{ range $labels }}[{{ . }}]{{ end }}", 0, "[up][host-1:9100][node]");
  check("{{ range $v := $externalLabels }}{{ $v }}{{ end }}", 0, "eu-1");
  check("{{ range $k, $v := $labels }}{{ if ne $k \"__name__\" }}{{ $k }} {{ end }}{{ end }}", 0,
        "instance job ");
  check("{{ range $k, $v := .Labels }}{{ $k }}{{ else }}none{{ end }}/{{ $labels.job }}", 0,
        "__name__instancejob/node");
  check("{{ range $k, $v := $labels }}{{ range $externalLabels }}{{ $k }}@{{ . }} {{ end }}{{ "
        "end }}",
        0, "__name__@eu-1 instance@eu-1 job@eu-1 ");
  check("{{ printf \"%s is %.1f\" $labels.job $value }}", 2.25, "node is 2.2");
  check("{{ with $labels.instance }}[{{ . }}]{{ end }}", 0, "[host-1:9100]");
  check("{{ with $labels.missing }}x{{ else }}none{{ end }}", 0, "none");
  check("{{ with printf \"%s-%s\" $labels.job \"a\" }}{{ . }}{{ end }}/{{ .Value }}", 3,
        "node-a/3");
  check("{{ with .Labels }}{{ .job }}{{ with $.Value }} {{ . }}{{ end }}{{ end }}", 4, "node 4");
  check("{{ range $labels }}{{ with . }}<{{ . }}>{{ end }}{{ end }}", 0, "<up><host-1:9100><node>");
}

static void test_syntax_errors_at_parse(void **state)
{
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"{{ $labels.x ", "unclosed action"},
      {"{{ nosuch $value }}", "function \"nosuch\" not defined"},
      {"{{ $undefined }}", "undefined variable \"$undefined\""},
      {"{{ \"abc }}", "unclosed action"},
      {"{{ }}", "missing value for command"},
      {"{{ end }}", "unexpected {{end}}"},
      {"{{ if true }}x", "unexpected EOF"},
      {"{{ if }}x{{ end }}", "missing value for if"},
      {"{{ else }}", "unexpected {{else}}"},
      {"{{ if true }}a{{ else }}b{{ else }}c{{ end }}", "expected end; found {{else}}"},
      {"{{ range $k, $v := $labels }}{{ end }}{{ $k }}", "undefined variable \"$k\""},
      {"{{ break }}", "{{break}} outside {{range}}"},
      {"{{ if true 1 }}{{ end }}", "can't give argument to non-function"},
      {"line1\n{{ ( $value }}", "template: __alert_T:2: unclosed left paren"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct nn__tmpl *t = NULL;
    char err[512] = "";
    int rc =
        nn__tmpl_parse(cases[i].text, strlen(cases[i].text), "__alert_T", &t, err, sizeof(err));
    if (rc == 0 || !strstr(err, cases[i].want))
      fail_msg("%s: rc %d, err \"%s\", want \"%s\"", cases[i].text, rc, err, cases[i].want);
    assert_null(t);
  }
}

static void test_go_number_formatting(void **state)
{
  char b[64];
  nn__fmt_go_e(1, b, sizeof(b));
  assert_string_equal(b, "1e+00");
  nn__fmt_go_e(0.000123, b, sizeof(b));
  assert_string_equal(b, "1.23e-04");
  nn__fmt_go_e(-2.5e300, b, sizeof(b));
  assert_string_equal(b, "-2.5e+300");
  nn__fmt_go_v(0.1 + 0.2, b, sizeof(b));
  assert_string_equal(b, "0.30000000000000004");
  nn__fmt_go_v(1e-5, b, sizeof(b));
  assert_string_equal(b, "1e-05");
  nn__fmt_go_v(0.0001, b, sizeof(b));
  assert_string_equal(b, "0.0001");
  nn__fmt_rfc3339(1700000000120, b, sizeof(b));
  assert_string_equal(b, "2023-11-14T22:13:20.12Z");
  nn__fmt_rfc3339(1700000000000, b, sizeof(b));
  assert_string_equal(b, "2023-11-14T22:13:20Z");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_variables_and_fields),
      cmocka_unit_test(test_humanize_family),
      cmocka_unit_test(test_string_functions_and_printf),
      cmocka_unit_test(test_execution_errors_become_text),
      cmocka_unit_test(test_if_else_range_and_comparisons),
      cmocka_unit_test(test_syntax_errors_at_parse),
      cmocka_unit_test(test_go_number_formatting),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
