/* SPDX-License-Identifier: Apache-2.0 */
/* Generates the golden-signal recording rules. Each convention gets its own label
 * (convention="...") so two conventions exposed by one service never collide. */
#include "aggregator/golden/golden.h"

#include <stdarg.h>
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
    {.name = "inflight_limit",
     .type = NN_CFG_DOUBLE,
     .offset = OFF(inflight_limit),
     .def = "0",
     .help = "requests in flight, over all of a service's pods, at which it counts as saturated "
             "(nines:saturation:ratio 1); 0: in flight is not part of the ratio"},
    {.name = "pod_service_from",
     .type = NN_CFG_STRLIST,
     .offset = OFF(pod_service_from),
     .def = "[label_app_kubernetes_io_name, label_app]",
     .help = "kube_pod_labels labels that name a pod's service (the last of service_labels), "
             "first present wins; used for pods whose scraped series carry no service label"},
    {.name = "pod_labels",
     .type = NN_CFG_STRMAP,
     .offset = OFF(pod_labels),
     .def = "{project: namespace}",
     .help = "the other service_labels of a pod known from kube_pod_labels: service label -> "
             "kube_pod_labels label (the agent's log metrics take project from the namespace)"},
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

/* One recording rule; expr goes in a YAML single-quoted scalar, where ' is written ''.
 * conv NULL: no convention label (a series that several conventions share). */
static int rule(struct nn_buf *b, const char *record, const char *conv, const char *expr)
{
  int rc = nn_buf_printf(b, "      - record: %s\n        expr: '", record);
  for (const char *p = expr; rc == 0 && *p; p++)
    rc = *p == '\'' ? nn_buf_append(b, "''", 2) : nn_buf_appendc(b, *p);
  if (rc == 0)
    rc = nn_buf_appends(b, "'\n");
  if (rc == 0 && conv)
    rc = nn_buf_printf(b, "        labels:\n          convention: \"%s\"\n", conv);
  return rc;
}

/* Like rule(), with the expression built by printf into e (reset first). */
static int rulef(struct nn_buf *b, struct nn_buf *e, const char *record, const char *conv,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int rulef(struct nn_buf *b, struct nn_buf *e, const char *record, const char *conv,
                 const char *fmt, ...)
{
  nn_buf_reset(e);
  va_list ap;
  va_start(ap, fmt);
  int rc = nn_buf_vprintf(e, fmt, ap);
  va_end(ap);
  return rc < 0 ? rc : rule(b, record, conv, e->data);
}

static bool is_pod_key(const char *l)
{
  return strcmp(l, "namespace") == 0 || strcmp(l, "pod") == 0;
}

/* Usage of the containers that have a limit, and their limits, summed per pod: a container
 * without a limit (a sidecar, the pause container) would otherwise count against the limits
 * of the others. */
#define CPU_USE                                                                                    \
  "sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container!=\"\"}[5m])"          \
  " and on (namespace, pod, container) kube_pod_container_resource_limits{resource=\"cpu\"})"
#define CPU_LIM "sum by (namespace, pod) (kube_pod_container_resource_limits{resource=\"cpu\"})"
#define MEM_USE                                                                                    \
  "sum by (namespace, pod) (container_memory_working_set_bytes{container!=\"\"}"                   \
  " and on (namespace, pod, container) kube_pod_container_resource_limits{resource=\"memory\"})"
#define MEM_LIM "sum by (namespace, pod) (kube_pod_container_resource_limits{resource=\"memory\"})"

/* nines:pod_service:info{namespace, pod, <service labels>} 1. Scraped series (up, or a
 * convention's request counter) that carry namespace, pod and the service label come
 * first; kube_pod_labels fills in the pods they do not cover. topk keeps one service per pod
 * so that the group_left joins below never meet a duplicate. */
static int pod_service_rule(const struct nn_golden_config *cfg,
                            const struct nn_golden_convention *cv, size_t ncv, const char *svc,
                            const char *key, struct nn_buf *e, struct nn_buf *out)
{
  char mapby[600];
  snprintf(mapby, sizeof(mapby), "namespace, pod%s%s", *svc ? ", " : "", svc);
  nn_buf_reset(e);
  int rc = nn_buf_printf(e, "topk by (namespace, pod) (1, group by (%s) ({__name__=~\"up", mapby);
  for (size_t i = 0; rc == 0 && i < ncv; i++)
    rc = nn_buf_printf(e, "|%s", cv[i].requests);
  if (rc == 0)
    rc = nn_buf_printf(e, "\", namespace!=\"\", pod!=\"\", %s!=\"\"})", key);
  for (size_t i = 0; rc == 0 && i < cfg->pod_service_from.n; i++) {
    const char *from = cfg->pod_service_from.v[i];
    /* Innermost: the service label from the pod label; then every other service label, from
     * pod_labels or emptied (kube_pod_labels carries kube-state-metrics' own target labels,
     * which say nothing about the pod it describes). */
    size_t nwrap = 1;
    for (size_t j = 0; j < cfg->service_labels.n; j++)
      nwrap += !is_pod_key(cfg->service_labels.v[j]) && strcmp(cfg->service_labels.v[j], key);
    rc = nn_buf_printf(e, " or on (namespace, pod) group by (%s) (", mapby);
    for (size_t j = 0; rc == 0 && j < nwrap; j++)
      rc = nn_buf_appends(e, "label_replace(");
    if (rc == 0)
      rc = nn_buf_printf(e, "kube_pod_labels{%s!=\"\"}, \"%s\", \"$1\", \"%s\", \"(.+)\")", from,
                         key, from);
    for (size_t j = 0; rc == 0 && j < cfg->service_labels.n; j++) {
      const char *l = cfg->service_labels.v[j];
      if (is_pod_key(l) || strcmp(l, key) == 0)
        continue;
      const char *src = nn_cfg_strmap_get(&cfg->pod_labels, l);
      rc = src ? nn_buf_printf(e, ", \"%s\", \"$1\", \"%s\", \"(.*)\")", l, src)
               : nn_buf_printf(e, ", \"%s\", \"\", \"\", \"\")", l);
    }
    if (rc == 0)
      rc = nn_buf_appendc(e, ')');
  }
  if (rc == 0)
    rc = nn_buf_appendc(e, ')');
  return rc < 0 ? rc : rule(out, "nines:pod_service:info", "kubernetes", e->data);
}

/* Saturation per pod, per service and per endpoint, and the one number per endpoint. */
static int saturation_rules(const struct nn_golden_config *cfg,
                            const struct nn_golden_convention *cv, size_t ncv, const char *by,
                            struct nn_buf *e, struct nn_buf *out)
{
  bool inflight = cfg->inflight_metric && *cfg->inflight_metric;
  int rc = 0;
  if (inflight && *by)
    rc = rulef(out, e, "nines:inflight:sum", "prometheus", "sum by (%s) (%s)", by,
               cfg->inflight_metric);
  if (rc == 0)
    rc = rulef(out, e, "nines:cpu:ratio_of_limit", "kubernetes", "%s / %s", CPU_USE, CPU_LIM);
  if (rc == 0)
    rc = rulef(out, e, "nines:memory:ratio_of_limit", "kubernetes", "%s / %s", MEM_USE, MEM_LIM);
  /* Per service: needs a service label that is not the pod's own namespace or name. */
  const char *key = cfg->service_labels.n ? cfg->service_labels.v[cfg->service_labels.n - 1] : "";
  if (rc < 0 || !*key || is_pod_key(key))
    return rc;
  char svc[512] = "";
  size_t used = 0;
  for (size_t i = 0; i < cfg->service_labels.n && used < sizeof(svc); i++)
    if (!is_pod_key(cfg->service_labels.v[i]))
      used += (size_t)snprintf(svc + used, sizeof(svc) - used, "%s%s", used ? ", " : "",
                               cfg->service_labels.v[i]);
  rc = pod_service_rule(cfg, cv, ncv, svc, key, e, out);
  /* The service's share of its pods' limits: sum of usage over sum of limits, pods without
   * a mapping or a limit left out of both. */
#define JOIN "* on (namespace, pod) group_left(%s) nines:pod_service:info"
  if (rc == 0)
    rc = rulef(out, e, "nines:service_cpu:ratio_of_limit", "kubernetes",
               "sum by (%s) (" CPU_USE " " JOIN ") / sum by (%s) (" CPU_LIM " " JOIN ")", by, svc,
               by, svc);
  if (rc == 0)
    rc = rulef(out, e, "nines:service_memory:ratio_of_limit", "kubernetes",
               "sum by (%s) (" MEM_USE " " JOIN ") / sum by (%s) (" MEM_LIM " " JOIN ")", by, svc,
               by, svc);
#undef JOIN
  /* In flight against inflight_limit, for the whole service (its endpoints share its pods). */
  bool inf = inflight && cfg->inflight_limit > 0;
  nn_buf_reset(e);
  if (rc == 0)
    rc = nn_buf_printf(e,
                       "max by (%s) (label_replace(nines:service_cpu:ratio_of_limit, \"resource\", "
                       "\"cpu\", \"\", \"\") or label_replace(nines:service_memory:ratio_of_limit, "
                       "\"resource\", \"memory\", \"\", \"\")",
                       by);
  if (rc == 0 && inf)
    rc = nn_buf_printf(e,
                       " or label_replace(nines:inflight:sum / %.17g, \"resource\", \"inflight\", "
                       "\"\", \"\")",
                       cfg->inflight_limit);
  if (rc == 0 && (rc = nn_buf_appendc(e, ')')) == 0)
    rc = rule(out, "nines:service_saturation:ratio", NULL, e->data);
  /* Per endpoint: an endpoint runs on all of its service's pods, so it gets the service's
   * ratios, on every endpoint the convention has traffic for. */
  for (size_t i = 0; rc == 0 && i < ncv; i++) {
    const struct nn_golden_convention *c = &cv[i];
    char eps[1200];
    snprintf(eps, sizeof(eps), "group by (%s, %s) (nines:requests:rate5m{convention=\"%s\"})", by,
             c->endpoint_label, c->name);
    rc = rulef(out, e, "nines:endpoint_cpu:ratio_of_limit", c->name,
               "%s * on (%s) group_left nines:service_cpu:ratio_of_limit", eps, by);
    if (rc == 0)
      rc = rulef(out, e, "nines:endpoint_memory:ratio_of_limit", c->name,
                 "%s * on (%s) group_left nines:service_memory:ratio_of_limit", eps, by);
    if (rc == 0 && inflight)
      rc = rulef(out, e, "nines:endpoint_inflight:sum", c->name,
                 "sum by (%s, %s) (%s{%s!=\"\"}) and on (%s, %s) %s", by, c->endpoint_label,
                 cfg->inflight_metric, c->endpoint_label, by, c->endpoint_label, eps);
    nn_buf_reset(e);
    if (rc == 0)
      rc = nn_buf_printf(e,
                         "max by (%s, %s) (label_replace(nines:endpoint_cpu:ratio_of_limit{"
                         "convention=\"%s\"}, \"resource\", \"cpu\", \"\", \"\") or "
                         "label_replace(nines:endpoint_memory:ratio_of_limit{convention=\"%s\"}, "
                         "\"resource\", \"memory\", \"\", \"\")",
                         by, c->endpoint_label, c->name, c->name);
    if (rc == 0 && inf)
      rc = nn_buf_printf(e,
                         " or label_replace(%s * on (%s) group_left nines:inflight:sum / %.17g, "
                         "\"resource\", \"inflight\", \"\", \"\")",
                         eps, by, cfg->inflight_limit);
    if (rc == 0 && (rc = nn_buf_appendc(e, ')')) == 0)
      rc = rule(out, "nines:saturation:ratio", c->name, e->data);
  }
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
  struct nn_buf e;
  nn_buf_init(&e, 64 << 10);
  if (rc == 0)
    rc = saturation_rules(cfg, cv, ncv, by, &e, out);
  nn_buf_fini(&e);
  return rc;
}
