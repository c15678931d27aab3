/* SPDX-License-Identifier: Apache-2.0 */
/* The four golden signals per service and endpoint, without hand-written rules: from the
 * metric conventions a fleet already exposes (Prometheus client http_requests_total with
 * http_request_duration_seconds, Spring's http_server_requests_seconds, OpenTelemetry's
 * http.server.duration, and the agent's log-derived metrics) this module writes a
 * Prometheus rule file of nines:* recording rules, which the rule engine evaluates. */
#ifndef NN_AGGREGATOR_GOLDEN_GOLDEN_H
#define NN_AGGREGATOR_GOLDEN_GOLDEN_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

struct nn_buf;

/* One convention: where requests, errors and latency come from. */
struct nn_golden_convention {
  char *name;           /* "prometheus", "spring", ... (the convention label) */
  char *requests;       /* counter of requests, e.g. http_requests_total */
  char *status_label;   /* label holding the status code, e.g. code */
  char *error_regex;    /* status values that count as errors, e.g. 5.. */
  char *endpoint_label; /* label naming the endpoint, e.g. endpoint, uri, http_route */
  char *latency_bucket; /* histogram _bucket series, e.g. http_request_duration_seconds_bucket */
  double latency_unit_seconds; /* 1 for seconds, 0.001 for milliseconds */
};

struct nn_golden_config {
  bool enabled;
  int64_t interval_ms;
  struct nn_cfg_strlist service_labels;   /* grouping besides the endpoint: [project, service] */
  struct nn_cfg_list conventions;         /* struct nn_golden_convention; defaults when empty */
  char *inflight_metric;                  /* saturation from an in-flight gauge */
  double inflight_limit;                  /* in flight per service counted as full; 0: none */
  struct nn_cfg_strlist pod_service_from; /* kube_pod_labels labels naming a pod's service */
  struct nn_cfg_strmap pod_labels;        /* other service labels from kube_pod_labels */
};

extern const struct nn_cfg_option nn_golden_config_options[];

/* Writes the rule file (one group, "nines-golden-signals") for cfg into out. Saturation
 * (CPU and memory against limits) is recorded per pod, then per service and endpoint through
 * nines:pod_service:info, a pod -> service mapping taken from scraped series that carry
 * namespace, pod and the service labels, else from kube-state-metrics' kube_pod_labels.
 * NN_ETOOBIG when an expression outgrows 64 KiB. */
int nn_golden_rules(const struct nn_golden_config *cfg, struct nn_buf *out);

#endif
