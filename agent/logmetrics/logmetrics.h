/* SPDX-License-Identifier: Apache-2.0 */
/* Golden signals for services that expose no metrics: a pipeline stage that reads access-log
 * entries (JSON fields, or PCRE2 named groups) and keeps request counters and latency
 * histograms by project, service, method, endpoint and status. Label combinations are
 * capped per metric; beyond the cap, new endpoints fold into endpoint="__other__" and are
 * counted. The series are rendered in Prometheus text format for the agent's /metrics,
 * where the agent's own scrape picks them up and ships them like any other target. */
#ifndef NN_AGENT_LOGMETRICS_LOGMETRICS_H
#define NN_AGENT_LOGMETRICS_LOGMETRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/labels.h"

struct nn_buf;

struct nn_logmetrics_config {
  bool enabled;
  char *regex; /* PCRE2 with named groups (service, endpoint, method, status, duration);
                  empty: lines are JSON objects */
  char *service_field, *endpoint_field, *method_field, *status_field, *duration_field;
  double duration_unit_seconds;  /* 0.001 when the duration field is in milliseconds */
  char *project_label;           /* stream label naming the project (namespace) */
  char *service_label;           /* stream label used when the line has no service (container) */
  struct nn_cfg_strlist buckets; /* histogram upper bounds in seconds */
  int64_t max_series;            /* label combinations per metric */
};

extern const struct nn_cfg_option nn_logmetrics_config_options[];

struct nn_logmetrics;

/* NULL with a message in err when the regex or buckets are invalid, or on OOM. */
struct nn_logmetrics *nn_logmetrics_create(const struct nn_logmetrics_config *cfg, char *err,
                                           size_t errlen);
void nn_logmetrics_destroy(struct nn_logmetrics *m);
/* Feeds one entry with its stream labels. Lines that are not access logs are ignored. */
void nn_logmetrics_observe(struct nn_logmetrics *m, const struct nn_label *stream, size_t nstream,
                           const char *line, size_t len);
/* Appends the series in text format 0.0.4. */
int nn_logmetrics_render(const struct nn_logmetrics *m, struct nn_buf *out);

struct nn_logmetrics_stats {
  uint64_t observed, matched, overflow;
  size_t series;
};
void nn_logmetrics_stats(const struct nn_logmetrics *m, struct nn_logmetrics_stats *out);

#endif
