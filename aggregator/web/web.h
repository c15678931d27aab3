/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP read API: Prometheus API v1 (query, query_range, series, labels, label values,
 * metadata, buildinfo, exemplars, rules, alerts), so Grafana and any Prometheus client
 * work unchanged, and Loki's query_range and label endpoints over the log store. */
#ifndef NN_AGGREGATOR_WEB_WEB_H
#define NN_AGGREGATOR_WEB_WEB_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregator/storage/metadata.h"
#include "aggregator/storage/storage.h"

struct nn_buf;
struct nn_http_server;
struct nn_logstore;
struct nn_metrics;

/* Writes the "data" value of /api/v1/rules or /api/v1/alerts (the rules module owns it). */
typedef int (*nn_web_json_fn)(void *ud, struct nn_buf *out);

struct nn_web_opts {
  struct nn_querier querier;    /* the series store */
  struct nn_logstore *logs;     /* may be NULL */
  struct nn_metadata *metadata; /* may be NULL: /api/v1/metadata answers {} */
  bool multi_tenancy;           /* X-Scope-OrgID picks the tenant's metadata */
  int64_t lookback_ms;          /* 0 = 5m */
  int64_t query_timeout_ms;     /* 0 = 2m */
  uint64_t query_max_samples;   /* 0 = 50,000,000 */
  bool prometheus_v2;           /* PromQL with Prometheus 2.x semantics (nn_promql_opts) */
  nn_web_json_fn rules_json, alerts_json;
  void *rules_ud, *alerts_ud;
};

struct nn_web;

/* Registers the routes on srv. opts is copied. NULL on out-of-memory. */
struct nn_web *nn_web_create(const struct nn_web_opts *opts, struct nn_metrics *metrics,
                             struct nn_http_server *srv);
void nn_web_destroy(struct nn_web *w);

/* Parses a Prometheus API time: RFC3339 (with fraction and offset) or Unix seconds with
 * an optional fraction. NN_EINVAL if it is neither. */
int nn_web_parse_time(const char *s, int64_t *ms);
/* Parses a duration: Prometheus syntax ("5m") or float seconds ("30", "0.5"). */
int nn_web_parse_duration(const char *s, int64_t *ms);
/* Appends a timestamp as the API does: seconds, with ".mmm" only when ms is not 0. */
int nn_web_write_time(struct nn_buf *out, int64_t ms);

#endif
