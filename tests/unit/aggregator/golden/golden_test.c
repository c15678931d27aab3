/* SPDX-License-Identifier: Apache-2.0 */
/* Golden-signal rules: valid for promtool and for our PromQL parser, for the defaults and a
 * custom convention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aggregator/golden/golden.h"
#include "aggregator/promql/promql.h"
#include "common/buf.h"
#include "common/config.h"

static void check_with_promtool(const char *text)
{
  char path[] = "/tmp/nines-golden-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "promtool check rules %s >/dev/null 2>&1", path);
  int rc = system(cmd);
  unlink(path);
  if (rc == 127 * 256)
    skip();
  assert_int_equal(rc, 0);
}

/* Every expr: line parses with nines' PromQL parser. */
static size_t parse_exprs(const char *text)
{
  size_t n = 0;
  for (const char *p = text; (p = strstr(p, "expr: '")); n++) {
    p += 7;
    struct nn_buf e;
    nn_buf_init(&e, 4096);
    for (; *p && !(p[0] == '\'' && p[1] != '\''); p++) {
      if (p[0] == '\'' && p[1] == '\'')
        p++;
      nn_buf_appendc(&e, *p);
    }
    struct nn_promql_expr *x = NULL;
    struct nn_promql_error err;
    if (nn_promql_parse(e.data, e.len, &x, &err) != 0)
      fail_msg("does not parse: %s: %s", e.data, err.msg);
    nn_promql_expr_free(x);
    nn_buf_fini(&e);
  }
  return n;
}

static void default_conventions_make_valid_rules(void **state)
{
  struct nn_golden_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  struct nn_cfg_error err;
  assert_int_equal(nn_cfg_apply_defaults(nn_golden_config_options, &cfg, &err), 0);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  assert_int_equal(nn_golden_rules(&cfg, &b), 0);
  assert_non_null(
      strstr(b.data, "sum by (project, service, endpoint) (rate(http_requests_total[5m]))"));
  assert_non_null(
      strstr(b.data,
             "sum by (project, service, uri, le) (rate(http_server_requests_seconds_bucket[5m]))"));
  assert_non_null(strstr(b.data, "* 0.001"));
  /* 5 conventions x (3 + 3 latency) + in-flight + 2 Kubernetes. */
  assert_int_equal(parse_exprs(b.data), 5 * 6 + 3);
  check_with_promtool(b.data);
  nn_buf_fini(&b);
  nn_cfg_free(nn_golden_config_options, &cfg);
}

static void custom_convention_with_quotes(void **state)
{
  static const char yml[] = "service_labels: [team]\n"
                            "conventions:\n"
                            "  - name: custom\n"
                            "    requests: api_calls_total\n"
                            "    status_label: result\n"
                            "    error_regex: \"fail|it's bad\"\n"
                            "    endpoint_label: op\n";
  struct nn_golden_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  struct nn_cfg_error err;
  assert_int_equal(
      nn_cfg_load_string("t.yml", yml, strlen(yml), nn_golden_config_options, &cfg, &err), 0);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  assert_int_equal(nn_golden_rules(&cfg, &b), 0);
  assert_non_null(
      strstr(b.data, "sum by (team, op) (rate(api_calls_total{result=~\"fail|it''s bad\"}[5m]))"));
  assert_null(strstr(b.data, "histogram_quantile")); /* no latency histogram configured */
  assert_int_equal(parse_exprs(b.data), 3 + 1 + 2);
  check_with_promtool(b.data);
  nn_buf_fini(&b);
  nn_cfg_free(nn_golden_config_options, &cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(default_conventions_make_valid_rules),
      cmocka_unit_test(custom_convention_with_quotes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
