/* SPDX-License-Identifier: Apache-2.0 */
/* Rule file loading: a valid file that `promtool check rules` also accepts, and invalid
 * files whose errors carry file:line:col and Prometheus's wording (promtool rejects them
 * too); globs; reload atomicity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/rules/internal.h"
#include "aggregator/tsdb/tsdb.h"

static const char good[] =
    "groups:\n"
    "  - name: node\n"
    "    interval: 30s\n"
    "    limit: 100\n"
    "    rules:\n"
    "      - record: job:up:sum\n"
    "        expr: sum by (job) (up)\n"
    "        labels:\n"
    "          source: recorded\n"
    "      - alert: InstanceDown\n"
    "        expr: up == 0\n"
    "        for: 5m\n"
    "        keep_firing_for: 1m\n"
    "        labels:\n"
    "          severity: page\n"
    "          instance: '{{ $labels.instance }}'\n"
    "        annotations:\n"
    "          summary: '{{ $labels.instance }} down ({{ $value | humanize }})'\n"
    "          description: '{{ if gt $value 0.0 }}x{{ end }}'\n"
    "  - name: other\n"
    "    rules:\n"
    "      - alert: Always\n"
    "        expr: vector(1)\n";

static char dir[64];

static void write_file(const char *name, const char *text)
{
  char path[128];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int promtool(const char *name)
{
  if (access("/usr/bin/promtool", X_OK) != 0)
    return -1;
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check rules %s/%s >/dev/null 2>&1", dir, name);
  return system(cmd);
}

static int setup(void **state)
{
  snprintf(dir, sizeof(dir), "/tmp/nn-rules-load.XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_valid_file_loads_and_promtool_agrees(void **state)
{
  write_file("good.yml", good);
  struct nn__groupset set = {0};
  char err[1024] = "";
  int rc = nn__rules_load_text("good.yml", good, strlen(good), 60000, &set, err, sizeof(err));
  if (rc < 0)
    fail_msg("load: %s", err);
  assert_int_equal(set.n, 2);
  struct nn__group *g = set.v[0];
  assert_string_equal(g->name, "node");
  assert_int_equal(g->interval_ms, 30000);
  assert_int_equal(g->limit, 100);
  assert_int_equal(g->nrules, 2);
  assert_int_equal(g->rules[0]->type, NN__RULE_RECORDING);
  assert_string_equal(g->rules[0]->query, "sum by (job) (up)");
  assert_int_equal(g->rules[1]->type, NN__RULE_ALERTING);
  assert_int_equal(g->rules[1]->for_ms, 300000);
  assert_int_equal(g->rules[1]->keep_firing_for_ms, 60000);
  assert_int_equal(g->rules[1]->labels.n, 2);
  assert_string_equal(g->rules[1]->labels.v[0].name, "instance"); /* sorted */
  assert_int_equal(set.v[1]->interval_ms, 60000);                 /* default */
  nn__groupset_free(&set);
  int prc = promtool("good.yml");
  if (prc == -1)
    skip();
  assert_int_equal(prc, 0);
}

static void test_invalid_files_report_positions(void **state)
{
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"groups:\n  - name: a\n    rules:\n      - record: x\n        expr: sum(\n",
       "bad.yml:5:15: group \"a\", rule 1, \"x\": could not parse expression: "},
      {"groups:\n  - name: a\n    rules: []\n  - name: a\n    rules: []\n",
       "bad.yml:4:11: groupname: \"a\" is repeated in the same file"},
      {"groups:\n  - name: a\n    rules:\n      - record: 'bad-name'\n        expr: up\n",
       "bad.yml:4:17: group \"a\", rule 1, \"bad-name\": invalid recording rule name: bad-name"},
      {"groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        labels:\n"
       "          'bad-label': x\n",
       "bad.yml:7:11: group \"a\", rule 1, \"A\": invalid label name: bad-label"},
      {"groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        severity: "
       "x\n",
       "bad.yml:6:9: group \"a\", rule 1, \"A\": field severity not found in type rulefmt.Rule"},
      {"groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        "
       "annotations:\n"
       "          s: '{{ nosuch }}'\n",
       "bad.yml:7:14: group \"a\", rule 1, \"A\": annotation \"s\": template: __alert_A:1: "
       "function \"nosuch\" not defined"},
      {"groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        for: 1m\n",
       "bad.yml:6:14: group \"a\", rule 1, \"r\": invalid field 'for' in recording rule"},
      {"groups:\n  - name: a\n    rules:\n      - expr: up\n",
       "bad.yml:4:9: group \"a\", rule 1, \"\": one of 'record' or 'alert' must be set"},
      {"groups:\n  - name: a\n    interval: 5x\n", "bad.yml:3:15: interval: not a valid duration"},
      {"groups:\n  - name: a\n    rules:\n      - alert: A\n        record: b\n        expr: up\n",
       "bad.yml:4:9: group \"a\", rule 1, \"A\": only one of 'record' and 'alert' must be set"},
      {"groups: [\n", "bad.yml:2:1: "},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[1024] = "";
    int rc =
        nn_rules_check_string("bad.yml", cases[i].text, strlen(cases[i].text), err, sizeof(err));
    if (rc == 0 || strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
      fail_msg("case %zu: rc %d, got \"%s\", want prefix \"%s\"", i, rc, err, cases[i].want);
    write_file("bad.yml", cases[i].text);
    int prc = promtool("bad.yml");
    if (prc != -1 && i != 8 && prc == 0)
      fail_msg("case %zu: promtool accepted a file we reject", i);
  }
}

static void test_globs_and_reload_keep_old_rules_on_error(void **state)
{
  write_file("a.rules.yml", "groups:\n  - name: a\n    rules:\n      - record: r:a\n        expr: "
                            "vector(1)\n");
  write_file("b.rules.yml", "groups:\n  - name: b\n    rules:\n      - record: r:b\n        expr: "
                            "vector(2)\n");
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  struct nn_rules_opts ro = {.db = db};
  struct nn_rules *r = nn_rules_create(&ro);
  assert_non_null(r);
  char glob[128], err[512];
  snprintf(glob, sizeof(glob), "%s/*.rules.yml", dir);
  char *globs[] = {glob};
  struct nn_cfg_strlist gl = {.v = globs, .n = 1};
  assert_int_equal(nn_rules_reload(r, &gl, err, sizeof(err)), 0);
  struct nn_rules_stats st;
  nn_rules_stats(r, &st);
  assert_int_equal(st.groups, 2);
  write_file("b.rules.yml", "groups:\n  - name: b\n    rules:\n      - record: r:b\n        expr: "
                            "vector(\n");
  assert_int_not_equal(nn_rules_reload(r, &gl, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "b.rules.yml:5:15:"));
  nn_rules_stats(r, &st);
  assert_int_equal(st.groups, 2);
  assert_false(st.last_reload_ok);
  assert_int_equal(st.reload_failures_total, 1);
  nn_rules_destroy(r);
  nn_tsdb_close(db);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_file_loads_and_promtool_agrees),
      cmocka_unit_test(test_invalid_files_report_positions),
      cmocka_unit_test(test_globs_and_reload_keep_old_rules_on_error),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
