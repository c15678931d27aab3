/* SPDX-License-Identifier: Apache-2.0 */
/* Generates the golden-signal recording rules. Each convention gets its own label
 * (convention="...") so two conventions exposed by one service never collide. */
#include "aggregator/golden/golden.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"

#define OFF(f)  offsetof(struct nn_golden_config, f)
#define COFF(f) offsetof(struct nn_golden_convention, f)

static const struct nn_cfg_option convention_options[] = {
    {.name = "name", .type = NN_CFG_STR, .offset = COFF(name), .flags = NN_CFG_REQUIRED},
    {.name = "requests",
     .type = NN_CFG_STR,
     .offset = COFF(requests),
     .flags = NN_CFG_REQUIRED,
     .help = "request counter"},
    {.name = "status_label", .type = NN_CFG_STR, .offset = COFF(status_label), .def = "code"},
    {.name = "error_regex", .type = NN_CFG_STR, .offset = COFF(error_regex), .def = "5.."},
    {.name = "endpoint_label",
     .type = NN_CFG_STR,
     .offset = COFF(endpoint_label),
     .def = "endpoint"},
    {.name = "latency_bucket",
     .type = NN_CFG_STR,
     .offset = COFF(latency_bucket),
     .help = "histogram _bucket series for latency; empty: no latency signal"},
    {.name = "latency_unit_seconds",
     .type = NN_CFG_DOUBLE,
     .offset = COFF(latency_unit_seconds),
     .def = "1",
     .help = "0.001 when the histogram is in milliseconds"},
    {0},
};

const struct nn_cfg_option nn_golden_config_options[] = {
    {.name = "enabled", .type = NN_CFG_BOOL, .offset = OFF(enabled), .def = "true"},
    {.name = "interval",
     .type = NN_CFG_DURATION,
     .offset = OFF(interval_ms),
     .def = "30s",
     .help = "evaluation interval of the golden-signal rules"},
    {.name = "service_labels",
     .type = NN_CFG_STRLIST,
     .offset = OFF(service_labels),
     .def = "[project, service]",
     .help = "labels that name a service"},
    {.name = "conventions",
     .type = NN_CFG_LIST,
     .offset = OFF(conventions),
     .sub = convention_options,
     .elem_size = sizeof(struct nn_golden_convention),
     .help = "metric conventions; empty: Prometheus client, Spring, OpenTelemetry and nines-agent"},
    {.name = "inflight_metric",
     .type = NN_CFG_STR,
     .offset = OFF(inflight_metric),
     .def = "http_requests_in_flight",
     .help = "gauge of requests in flight (saturation)"},
    {0},
};

static const struct nn_golden_convention defaults[] = {
    {"prometheus", "http_requests_total", "code", "5..", "endpoint",
     "http_request_duration_seconds_bucket", 1},
    {"spring", "http_server_requests_seconds_count", "status", "5..", "uri",
     "http_server_requests_seconds_bucket", 1},
    {"otel", "http_server_duration_milliseconds_count", "http_status_code", "5..", "http_route",
     "http_server_duration_milliseconds_bucket", 0.001},
    {"otel_v2", "http_server_request_duration_seconds_count", "http_response_status_code", "5..",
     "http_route", "http_server_request_duration_seconds_bucket", 1},
    {"nines_logs", "nines_log_http_requests_total", "status", "5..", "endpoint",
     "nines_log_http_request_duration_seconds_bucket", 1},
};

/* One recording rule; expr goes in a YAML single-quoted scalar, where ' is written ''. */
static int rule(struct nn_buf *b, const char *record, const char *conv, const char *expr)
{
  int rc = nn_buf_printf(b, "      - record: %s\n        expr: '", record);
  for (const char *p = expr; rc == 0 && *p; p++)
    rc = *p == '\'' ? nn_buf_append(b, "''", 2) : nn_buf_appendc(b, *p);
  if (rc == 0)
    rc = nn_buf_printf(b, "'\n        labels:\n          convention: \"%s\"\n", conv);
  return rc;
}

int nn_golden_rules(const struct nn_golden_config *cfg, struct nn_buf *out)
{
  const struct nn_golden_convention *cv = cfg->conventions.items;
  size_t ncv = cfg->conventions.n;
  if (ncv == 0) {
    cv = defaults;
    ncv = sizeof(defaults) / sizeof(defaults[0]);
  }
  char by[512] = "";
  size_t used = 0;
  for (size_t i = 0; i < cfg->service_labels.n && used < sizeof(by); i++)
    used += (size_t)snprintf(by + used, sizeof(by) - used, "%s%s", i ? ", " : "",
                             cfg->service_labels.v[i]);
  int rc = nn_buf_printf(out,
                         "groups:\n  - name: nines-golden-signals\n    interval: %llds\n"
                         "    rules:\n",
                         (long long)(cfg->interval_ms / 1000 > 0 ? cfg->interval_ms / 1000 : 30));
  char expr[2048], g[700];
  for (size_t i = 0; rc == 0 && i < ncv; i++) {
    const struct nn_golden_convention *c = &cv[i];
    snprintf(g, sizeof(g), "%s%s%s", by, *by ? ", " : "", c->endpoint_label);
    /* Traffic. */
    snprintf(expr, sizeof(expr), "sum by (%s) (rate(%s[5m]))", g, c->requests);
    rc = rule(out, "nines:requests:rate5m", c->name, expr);
    /* Errors, as a ratio of traffic; no traffic gives no sample, not 0%. */
    snprintf(expr, sizeof(expr),
             "sum by (%s) (rate(%s{%s=~\"%s\"}[5m])) / sum by (%s) (rate(%s[5m]))", g, c->requests,
             c->status_label, c->error_regex, g, c->requests);
    if (rc == 0)
      rc = rule(out, "nines:errors:ratio_rate5m", c->name, expr);
    snprintf(expr, sizeof(expr), "sum by (%s) (rate(%s{%s=~\"%s\"}[5m]))", g, c->requests,
             c->status_label, c->error_regex);
    if (rc == 0)
      rc = rule(out, "nines:errors:rate5m", c->name, expr);
    if (!c->latency_bucket || !*c->latency_bucket)
      continue;
    static const char *const qs[] = {"0.5", "0.9", "0.99"}, *const names[] = {"p50", "p90", "p99"};
    for (int q = 0; rc == 0 && q < 3; q++) {
      char rec[64];
      snprintf(rec, sizeof(rec), "nines:latency_seconds:%s", names[q]);
      if (c->latency_unit_seconds == 1)
        snprintf(expr, sizeof(expr), "histogram_quantile(%s, sum by (%s, le) (rate(%s[5m])))",
                 qs[q], g, c->latency_bucket);
      else
        snprintf(expr, sizeof(expr), "histogram_quantile(%s, sum by (%s, le) (rate(%s[5m]))) * %g",
                 qs[q], g, c->latency_bucket, c->latency_unit_seconds);
      rc = rule(out, rec, c->name, expr);
    }
  }
  /* Saturation: requests in flight per service, and CPU and memory against limits when
   * cAdvisor and kube-state-metrics series are there. */
  if (rc == 0 && cfg->inflight_metric && *cfg->inflight_metric && *by) {
    snprintf(expr, sizeof(expr), "sum by (%s) (%s)", by, cfg->inflight_metric);
    rc = rule(out, "nines:inflight:sum", "prometheus", expr);
  }
  if (rc == 0)
    rc = rule(
        out, "nines:cpu:ratio_of_limit", "kubernetes",
        "sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container!=\"\"}[5m]))"
        " / sum by (namespace, pod) (kube_pod_container_resource_limits{resource=\"cpu\"})");
  if (rc == 0)
    rc = rule(
        out, "nines:memory:ratio_of_limit", "kubernetes",
        "sum by (namespace, pod) (container_memory_working_set_bytes{container!=\"\"})"
        " / sum by (namespace, pod) (kube_pod_container_resource_limits{resource=\"memory\"})");
  return rc;
}
