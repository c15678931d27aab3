/* SPDX-License-Identifier: Apache-2.0 */
/* Golden signals for services that expose no metrics: a pipeline stage that reads access-log
 * entries (JSON fields, or PCRE2 named groups) and keeps request counters and latency
 * histograms by project, service, method, endpoint and status. Label combinations are
 * capped per metric; beyond the cap, new endpoints fold into endpoint="__other__" and are
 * counted. The series are rendered in Prometheus text format for the agent's /metrics,
 * where the agent's own scrape picks them up and ships them like any other target; the
 * series that lines changed since the last push can also be rendered alone, so that the
 * agent sends them ahead of its next scrape (agent/app/logs.c, push_interval). */
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
  int64_t push_interval_ms;      /* changed series sent at most this often; 0: by scrape only */
};

extern const struct nn_cfg_option nn_logmetrics_config_options[];

struct nn_logmetrics;

/* NULL with a message in err when the regex or buckets are invalid, or on OOM. */
struct nn_logmetrics *nn_logmetrics_create(const struct nn_logmetrics_config *cfg, char *err,
                                           size_t errlen);
void nn_logmetrics_destroy(struct nn_logmetrics *m);
/* Feeds one entry with its stream labels. Lines that are not access logs are ignored.
 * Returns true when the line was counted (its series is then marked changed). */
bool nn_logmetrics_observe(struct nn_logmetrics *m, const struct nn_label *stream, size_t nstream,
                           const char *line, size_t len);
/* Appends the series in text format 0.0.4. */
int nn_logmetrics_render(const struct nn_logmetrics *m, struct nn_buf *out);
/* Series (label combinations) counted since the last nn_logmetrics_clear_changed. */
size_t nn_logmetrics_changed(const struct nn_logmetrics *m);
/* Appends only those series, every line of each exactly as nn_logmetrics_render writes it
 * (request counters by status, histogram buckets, sum and count), with the HELP and TYPE
 * lines of their families; nothing when none changed. */
int nn_logmetrics_render_changed(const struct nn_logmetrics *m, struct nn_buf *out);
/* Forgets which series changed (after a render_changed that was sent). */
void nn_logmetrics_clear_changed(struct nn_logmetrics *m);

struct nn_logmetrics_stats {
  uint64_t observed, matched, overflow;
  size_t series;
};
void nn_logmetrics_stats(const struct nn_logmetrics *m, struct nn_logmetrics_stats *out);

#endif
