/* SPDX-License-Identifier: Apache-2.0 */
/* Golden-signal rules: valid for promtool and for our PromQL parser, for the defaults and a
 * custom convention; saturation per pod, service and endpoint through the pod -> service
 * mapping, for the service label sets a fleet may use. */
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

static size_t count(const char *text, const char *needle)
{
  size_t n = 0;
  for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
    n++;
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
  /* 5 conventions x (3 + 3 latency) + in-flight + 2 per pod + mapping + 2 per service +
   * service saturation + 5 conventions x (CPU, memory, in flight, saturation) per endpoint. */
  assert_int_equal(parse_exprs(b.data), 5 * 6 + 3 + 1 + 2 + 1 + 5 * 4);
  assert_int_equal(count(b.data, "record: nines:saturation:ratio\n"), 5);
  assert_int_equal(count(b.data, "record: nines:endpoint_cpu:ratio_of_limit\n"), 5);
  assert_non_null(strstr(b.data, "topk by (namespace, pod) (1, group by (namespace, pod, project, "
                                 "service) ({__name__=~\"up|http_requests_total|"));
  assert_non_null(strstr(b.data, "namespace!=\"\", pod!=\"\", service!=\"\"})"));
  /* kube_pod_labels: app.kubernetes.io/name, then app; the project is the namespace. */
  assert_non_null(strstr(b.data,
                         "or on (namespace, pod) group by (namespace, pod, project, service) "
                         "(label_replace(label_replace(kube_pod_labels{"
                         "label_app_kubernetes_io_name!=\"\"}, \"service\", \"$1\", "
                         "\"label_app_kubernetes_io_name\", \"(.+)\"), \"project\", "
                         "\"$1\", \"namespace\", \"(.*)\"))"));
  assert_non_null(strstr(b.data, "kube_pod_labels{label_app!=\"\"}"));
  assert_non_null(strstr(b.data, "sum by (project, service) (sum by (namespace, pod) "
                                 "(kube_pod_container_resource_limits{resource=\"cpu\"}) * on "
                                 "(namespace, pod) group_left(project, service) "
                                 "nines:pod_service:info)"));
  assert_non_null(strstr(b.data, "group by (project, service, uri) (nines:requests:rate5m{"
                                 "convention=\"spring\"}) * on (project, service) group_left "
                                 "nines:service_memory:ratio_of_limit"));
  /* No in-flight limit by default: in flight is recorded, not part of the ratio. */
  assert_null(strstr(b.data, "\"inflight\""));
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
  /* 3 + in-flight + 2 per pod + mapping + 2 per service + saturation + 4 per endpoint. */
  assert_int_equal(parse_exprs(b.data), 3 + 1 + 2 + 1 + 2 + 1 + 4);
  assert_non_null(strstr(b.data, "{__name__=~\"up|api_calls_total\", namespace!=\"\", pod!=\"\", "
                                 "team!=\"\"}"));
  assert_non_null(strstr(b.data, "group_left(team) nines:pod_service:info"));
  check_with_promtool(b.data);
  nn_buf_fini(&b);
  nn_cfg_free(nn_golden_config_options, &cfg);
}

/* The YAML config yml gives valid rules; returns them (the caller frees with nn_buf_fini). */
static void rules_for(const char *yml, struct nn_buf *b)
{
  struct nn_golden_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  struct nn_cfg_error err;
  assert_int_equal(
      nn_cfg_load_string("t.yml", yml, strlen(yml), nn_golden_config_options, &cfg, &err), 0);
  nn_buf_init(b, 1 << 20);
  assert_int_equal(nn_golden_rules(&cfg, b), 0);
  parse_exprs(b->data);
  check_with_promtool(b->data);
  nn_cfg_free(nn_golden_config_options, &cfg);
}

static void inflight_limit_joins_the_saturation_ratio(void **state)
{
  struct nn_buf b;
  rules_for("inflight_limit: 8\n", &b);
  assert_non_null(strstr(b.data, "or label_replace(nines:inflight:sum / 8, \"resource\", "
                                 "\"inflight\", \"\", \"\"))"));
  assert_non_null(strstr(b.data, "or label_replace(group by (project, service, endpoint) "
                                 "(nines:requests:rate5m{convention=\"prometheus\"}) * on "
                                 "(project, service) group_left nines:inflight:sum / 8, "));
  assert_int_equal(count(b.data, "group_left nines:inflight:sum / 8"), 5);
  nn_buf_fini(&b);
}

/* A namespace among the service labels is already a join key: it must not be copied by
 * group_left (Prometheus rejects a label in on() and group_left() at once), and kube_pod_labels
 * has it already. */
static void namespace_as_service_label(void **state)
{
  struct nn_buf b;
  rules_for("service_labels: [namespace, app]\npod_service_from: [label_team_app]\n", &b);
  assert_non_null(strstr(b.data, "group by (namespace, pod, app) ({__name__=~\"up|"));
  assert_non_null(strstr(b.data, "or on (namespace, pod) group by (namespace, pod, app) "
                                 "(label_replace(kube_pod_labels{label_team_app!=\"\"}, "
                                 "\"app\", \"$1\", \"label_team_app\", \"(.+)\")))"));
  assert_non_null(strstr(b.data, "group_left(app) nines:pod_service:info"));
  assert_null(strstr(b.data, "group_left(namespace"));
  assert_non_null(strstr(b.data, "sum by (namespace, app) (sum by (namespace, pod)"));
  nn_buf_fini(&b);
}

/* A service label with no kube_pod_labels source is emptied, not left as kube-state-metrics'
 * own target label. */
static void unmapped_service_label_is_emptied(void **state)
{
  struct nn_buf b;
  rules_for("service_labels: [team, service]\npod_labels: {}\n", &b);
  assert_non_null(strstr(b.data, "\"label_app_kubernetes_io_name\", \"(.+)\"), \"team\", "
                                 "\"\", \"\", \"\")"));
  nn_buf_fini(&b);
}

/* Services named by the namespace alone: no mapping to build; per-pod saturation only. */
static void no_service_label_beyond_the_pod(void **state)
{
  struct nn_buf b;
  rules_for("service_labels: [namespace]\n", &b);
  assert_null(strstr(b.data, "nines:pod_service:info"));
  assert_null(strstr(b.data, "nines:saturation:ratio"));
  assert_non_null(strstr(b.data, "record: nines:cpu:ratio_of_limit\n"));
  nn_buf_fini(&b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(default_conventions_make_valid_rules),
      cmocka_unit_test(custom_convention_with_quotes),
      cmocka_unit_test(inflight_limit_joins_the_saturation_ratio),
      cmocka_unit_test(namespace_as_service_label),
      cmocka_unit_test(unmapped_service_label_is_emptied),
      cmocka_unit_test(no_service_label_beyond_the_pod),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
