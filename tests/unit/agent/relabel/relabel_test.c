/* SPDX-License-Identifier: Apache-2.0 */
/* Relabeling tables after Prometheus's model/relabel/relabel_test.go and the documented
 * examples: YAML rules, an input label set, and the expected result ("DROP" when dropped).
 * Label sets are written "a=foo,b=bar". Then configuration errors with their positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/relabel/relabel.h"
#include "common/config.h"
#include "common/error.h"
#include "common/yaml.h"

static void parse_set(char *buf, struct nn_label *l, size_t *n)
{
  *n = 0;
  if (!*buf)
    return;
  for (char *p = buf; p;) {
    char *comma = strchr(p, ',');
    if (comma)
      *comma = '\0';
    char *eq = strchr(p, '=');
    *eq = '\0';
    l[*n].name = p;
    l[*n].value = eq + 1;
    (*n)++;
    p = comma ? comma + 1 : NULL;
  }
}

static int bind(const char *yaml, struct nn_relabel_config *cfg, struct nn_cfg_error *err)
{
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error ye;
  memset(err, 0, sizeof(*err));
  if (nn_yaml_load_string("test.yml", yaml, strlen(yaml), &doc, &ye) < 0)
    fail_msg("bad test YAML: %s", ye.msg);
  int rc = nn_relabel_config_bind(doc->root, cfg, err);
  nn_yaml_doc_destroy(doc);
  return rc;
}

static void check(const char *yaml, const char *in, const char *want)
{
  struct nn_relabel_config cfg;
  struct nn_cfg_error err;
  char buf[1024], got[2048] = "";
  struct nn_label l[64];
  size_t n;
  struct nn_relabel_scratch sc;

  if (bind(yaml, &cfg, &err) < 0) {
    char msg[1400];
    nn_cfg_error_format(&err, msg, sizeof(msg));
    fail_msg("bind failed: %s\n%s", msg, yaml);
  }
  snprintf(buf, sizeof(buf), "%s", in);
  parse_set(buf, l, &n);
  nn_relabel_scratch_init(&sc);
  int rc = nn_relabel_process(&cfg, l, &n, 64, &sc);
  assert_true(rc >= 0);
  if (rc == 0) {
    snprintf(got, sizeof(got), "DROP");
  } else {
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
      o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s=%s", i ? "," : "", l[i].name,
                            l[i].value);
  }
  if (strcmp(got, want) != 0)
    fail_msg("rules:\n%s\nin:   %s\nwant: %s\ngot:  %s", yaml, in, want, got);
  nn_relabel_scratch_fini(&sc);
  nn_relabel_config_free(&cfg);
}

static void prometheus_relabel_cases(void **state)
{
  check("- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  replacement: ch${1}-ch${1}\n",
        "a=foo", "a=foo,d=choo-choo");
  check("- source_labels: [a, b]\n  regex: f(.*);(.*)r\n  target_label: a\n"
        "  replacement: b${1}${2}m\n",
        "a=foo,b=bar,c=baz", "a=boobam,b=bar,c=baz");
  check("- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  replacement: ch${1}-ch${1}\n"
        "- source_labels: [b]\n  regex: b(.*)\n  target_label: e\n  replacement: ${1}\n",
        "a=foo,b=bar", "a=foo,b=bar,d=choo-choo,e=ar");
  check("- source_labels: [a]\n  regex: .*o.*\n  action: drop\n", "a=foo", "DROP");
  check("- source_labels: [a]\n  regex: .*o.*\n  action: drop\n", "a=abc", "a=abc");
  check("- source_labels: [a]\n  regex: no-match\n  action: keep\n", "a=foo", "DROP");
  /* Fully anchored: "f|o" matches neither "foo" as a whole. */
  check("- source_labels: [a]\n  regex: f|o\n  action: keep\n", "a=foo", "DROP");
  check("- source_labels: [a]\n  regex: f|o\n  action: keep\n", "a=f", "a=f");
  check("- source_labels: [a]\n  regex: \"\"\n  action: keep\n", "b=x", "b=x");
  check("- source_labels: [c]\n  target_label: d\n  modulus: 1000\n  action: hashmod\n",
        "a=foo,b=bar,c=baz", "a=foo,b=bar,c=baz,d=976");
  check("- regex: (b.*)\n  replacement: bar_${1}\n  action: labelmap\n", "a=foo,b1=bar,b2=baz",
        "a=foo,b1=bar,b2=baz,bar_b1=bar,bar_b2=baz");
  check("- regex: __meta_(my.*)\n  replacement: ${1}\n  action: labelmap\n",
        "__meta_my_bar=aaa,__meta_my_baz=bbb,__meta_other=ccc,a=foo",
        "__meta_my_bar=aaa,__meta_my_baz=bbb,__meta_other=ccc,a=foo,my_bar=aaa,my_baz=bbb");
  check("- regex: (b.*)\n  action: labeldrop\n", "a=foo,b1=bar,b2=baz", "a=foo");
  check("- regex: (b.*)\n  action: labelkeep\n", "a=foo,b1=bar,b2=baz", "b1=bar,b2=baz");
  /* An empty replacement deletes the target. */
  check("- source_labels: [a]\n  regex: foo\n  target_label: b\n  replacement: \"\"\n",
        "a=foo,b=bar", "a=foo");
  /* $ in target_label. */
  check("- source_labels: [a]\n  regex: some-([^-]+)-([^,]+)\n  target_label: ${1}\n"
        "  replacement: ${2}\n",
        "a=some-name-value", "a=some-name-value,name=value");
  check("- source_labels: [a]\n  regex: some-([^-]+)-([^,]+)\n  target_label: ${3}\n"
        "  replacement: ${1}\n",
        "a=some-name-value", "a=some-name-value");
  check("- source_labels: [a]\n  regex: some-([^-]+)(-[^,]+)\n  target_label: ${1}\n"
        "  replacement: ${2}\n",
        "a=some-name-0", "a=some-name-0,name=-0");
  /* No source labels: the fast path adds a label. */
  check("- target_label: abc\n  replacement: xyz\n", "a=1", "a=1,abc=xyz");
  check("- target_label: abc\n  replacement: \"\"\n", "a=1,abc=old", "a=1");
  /* No match: nothing happens. */
  check("- source_labels: [a]\n  regex: x(.*)\n  target_label: b\n", "a=foo", "a=foo");
  check("- source_labels: [a]\n  target_label: b\n  action: keepequal\n", "a=foo,b=foo",
        "a=foo,b=foo");
  check("- source_labels: [a]\n  target_label: b\n  action: keepequal\n", "a=foo,b=bar", "DROP");
  check("- source_labels: [a]\n  target_label: b\n  action: dropequal\n", "a=foo,b=foo", "DROP");
  check("- source_labels: [a]\n  target_label: b\n  action: dropequal\n", "a=foo,b=bar",
        "a=foo,b=bar");
  check("- source_labels: [foo]\n  target_label: foo_lower\n  action: lowercase\n", "foo=bAr123Foo",
        "foo=bAr123Foo,foo_lower=bar123foo");
  check("- source_labels: [foo]\n  target_label: foo_upper\n  action: Uppercase\n", "foo=bAr123Foo",
        "foo=bAr123Foo,foo_upper=BAR123FOO");
  /* Missing sources join as empty strings. */
  check("- source_labels: [x, y]\n  regex: ;\n  target_label: z\n  replacement: empty\n", "a=1",
        "a=1,z=empty");
  check("- source_labels: [a, b]\n  separator: \"-\"\n  target_label: c\n", "a=1,b=2",
        "a=1,b=2,c=1-2");
  /* Go's Expand: $1x names group "1x" (empty), ${1}x is group 1 then x, $$ is a dollar. */
  check("- source_labels: [a]\n  regex: (f)oo\n  target_label: b\n  replacement: $1x\n",
        "a=foo,b=keep", "a=foo");
  check("- source_labels: [a]\n  regex: (f)oo\n  target_label: b\n  replacement: ${1}x$$\n",
        "a=foo", "a=foo,b=fx$");
  check("- source_labels: [a]\n  regex: (?P<first>f)(?P<rest>.*)\n  target_label: b\n"
        "  replacement: ${rest}-$first\n",
        "a=foo", "a=foo,b=oo-f");
  check("- source_labels: [a]\n  regex: (.*)\n  target_label: b\n  replacement: a$\n", "a=foo",
        "a=foo,b=a$");
  /* Go's $ is end of text only; '.' does not match a newline. */
  check("- source_labels: [a]\n  regex: foo$\n  action: keep\n", "a=foo", "a=foo");
  /* The job/instance dance documented for Prometheus targets. */
  check("- source_labels: [__address__]\n  regex: \"([^:]+):\\\\d+\"\n  target_label: instance\n",
        "__address__=10.0.0.1:9100", "__address__=10.0.0.1:9100,instance=10.0.0.1");
}

static void regex_rejects_what_re2_rejects(void **state)
{
  char err[256];
  struct nn_relabel_regex *re;
  const char *bad[] = {"(a)\\1", "a(?=b)", "a(?!b)", "(?<=a)b", "(?>a)", "a++", "(a"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = '\0';
    assert_null(nn_relabel_regex_compile(bad[i], err, sizeof(err)));
    assert_non_null(strstr(err, "invalid regex"));
  }
  assert_non_null(re = nn_relabel_regex_compile("[(?=]\\\\1", err, sizeof(err)));
  assert_true(nn_relabel_regex_match(re, "(\\1", 3));
  nn_relabel_regex_destroy(re);
  /* A pathological pattern gives up instead of stalling. */
  assert_non_null(re = nn_relabel_regex_compile("(a+)+b", err, sizeof(err)));
  char s[64];
  memset(s, 'a', sizeof(s) - 1);
  s[63] = '\0';
  assert_false(nn_relabel_regex_match(re, s, 63));
  nn_relabel_regex_destroy(re);
}

static void bind_error(const char *yaml, const char *want_pos, const char *want_msg)
{
  struct nn_relabel_config cfg;
  struct nn_cfg_error err;
  char msg[1400];
  assert_int_equal(bind(yaml, &cfg, &err), NN_ECONFIG);
  nn_cfg_error_format(&err, msg, sizeof(msg));
  if (!strstr(msg, want_pos) || !strstr(msg, want_msg))
    fail_msg("yaml:\n%s\nwant %s ... %s\ngot %s", yaml, want_pos, want_msg, msg);
  assert_null(cfg.rules);
}

static void config_errors_are_positioned(void **state)
{
  bind_error("- source_labels: [a]\n  action: explode\n", "test.yml:2:11",
             "unknown relabel action \"explode\"");
  bind_error("- source_labels: [a]\n  regex: \"(\"\n  target_label: b\n", "test.yml:2:10",
             "invalid regex");
  bind_error("- source_labels: [a]\n", "test.yml:1:3",
             "relabel configuration for replace action requires 'target_label' value");
  bind_error("- source_labels: [a]\n  target_label: d\n  action: hashmod\n", "test.yml:1:3",
             "requires non-zero modulus");
  bind_error("- source_labels: [a]\n  regex: x\n  action: labeldrop\n", "test.yml:1:3",
             "labeldrop action requires only 'regex', and no other fields");
  bind_error("- source_labels: [a]\n  target_label: b\n  replacement: x\n  action: lowercase\n",
             "test.yml:1:3", "'replacement' can not be set for lowercase action");
  bind_error("- source_labels: [a]\n  target_label: 1abc\n", "test.yml:2:17",
             "\"1abc\" is invalid 'target_label' for replace action");
  bind_error("- source_labels: [a]\n  target_label: a-$1\n", "test.yml:2:17",
             "is invalid 'target_label'");
  bind_error("- source_labels: [a]\n  target_label: b\n  regex: x\n  action: keepequal\n",
             "test.yml:1:3", "keepequal action requires only 'source_labels'");
  bind_error("- regex: (.*)\n  replacement: 1x\n  action: labelmap\n", "test.yml:1:3",
             "\"1x\" is invalid 'replacement' for labelmap action");
  bind_error("- source_labels: [a]\n  taget_label: b\n", "test.yml:2:3", "unknown field");
  bind_error("- source_labels: [a-b]\n  target_label: b\n", "test.yml:1:19",
             "\"a-b\" is not a valid label name");
  bind_error("- source_labels: [a]\n  regex: (a)\\1\n  target_label: b\n", "test.yml:2:10",
             "backreferences are not supported");
  bind_error("foo: bar\n", "test.yml:1:1", "must be a list");
  bind_error("- just a string\n", "test.yml:1:3", "must be a map");
  bind_error("- source_labels: [a]\n  modulus: -1\n  target_label: b\n  action: hashmod\n",
             "test.yml:2:12", "non-negative integer");
}

static void expand_follows_go(void **state)
{
  char err[128], out[64];
  struct nn_relabel_regex *re = nn_relabel_regex_compile("(a)(b)?(?P<x>c)", err, sizeof(err));
  assert_non_null(re);
  assert_true(nn_relabel_regex_match(re, "ac", 2));
  struct {
    const char *t, *want;
  } cases[] = {
      {"$1", "a"},   {"${1}", "a"},     {"$2", ""},     {"$x", "c"},    {"${x}", "c"}, {"$3", "c"},
      {"$4", ""},    {"$01", ""},       {"${1", "${1"}, {"$", "$"},     {"$$1", "$1"}, {"$-", "$-"},
      {"a$1b", "a"}, {"a${1}b", "aab"}, {"${}", "${}"}, {"$x$1", "ca"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t n = nn_relabel_expand(re, cases[i].t, "ac", out, sizeof(out));
    assert_int_equal(n, strlen(cases[i].want));
    if (strcmp(out, cases[i].want) != 0)
      fail_msg("template %s: want \"%s\" got \"%s\"", cases[i].t, cases[i].want, out);
  }
  /* Truncation still reports the full length. */
  assert_int_equal(nn_relabel_expand(re, "$1$1$1$1", "ac", out, 3), 4);
  assert_string_equal(out, "aa");
  nn_relabel_regex_destroy(re);
}

static void capacity_is_enforced(void **state)
{
  struct nn_relabel_config cfg;
  struct nn_cfg_error err;
  struct nn_relabel_scratch sc;
  struct nn_label l[2] = {{"a", "1"}, {"b", "2"}};
  size_t n = 2;
  assert_int_equal(bind("- target_label: c\n  replacement: x\n", &cfg, &err), 0);
  nn_relabel_scratch_init(&sc);
  assert_int_equal(nn_relabel_process(&cfg, l, &n, 2, &sc), NN_ETOOBIG);
  nn_relabel_scratch_fini(&sc);
  nn_relabel_config_free(&cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(prometheus_relabel_cases),
      cmocka_unit_test(regex_rejects_what_re2_rejects),
      cmocka_unit_test(config_errors_are_positioned),
      cmocka_unit_test(expand_follows_go),
      cmocka_unit_test(capacity_is_enforced),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
