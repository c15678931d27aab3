/* SPDX-License-Identifier: Apache-2.0 */
/* The log pipeline: tail -> parse -> Loki push batches -> ship, with offsets acknowledged
 * back to the tailer only after every destination accepted the batch. */
#ifndef NN_AGENT_APP_LOGS_H
#define NN_AGENT_APP_LOGS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent/logmetrics/logmetrics.h"
#include "agent/app/dests.h"
#include "common/config.h"

struct nn_http_client;
struct nn_metrics;

struct nn_agent_logs_config {
  bool enabled;
  struct nn_cfg_strlist include;
  struct nn_cfg_strlist exclude;
  int64_t ignore_older_ms;
  uint64_t max_line_size;
  bool start_at_end;
  char *multiline_start;
  int64_t multiline_max_lines;
  int64_t multiline_timeout_ms;
  struct nn_cfg_strmap labels; /* static labels added to every stream */
  uint64_t batch_size;
  int64_t batch_wait_ms;
  struct nn_cfg_list destinations; /* struct nn_agent_dest_config */
  struct nn_logmetrics_config metrics;
};

extern const struct nn_cfg_option nn_agent_logs_options[];

struct nn_agent_logs;

/* Starts the pipeline. Borrowed: cfg, client, metrics. NULL with a logged reason. */
struct nn_agent_logs *nn_agent_logs_create(uv_loop_t *loop, const struct nn_agent_logs_config *cfg,
                                           const char *data_dir, struct nn_http_client *client,
                                           struct nn_metrics *metrics);
/* Where log-derived series go as lines change them (logs.metrics.push_interval): push gets
 * the changed series' lines of /metrics and returns what nn_agent_metrics_push_self does.
 * Without it (or with push_interval 0s) they go out only with the scrape of /metrics. */
void nn_agent_logs_set_push(struct nn_agent_logs *l,
                            int (*push)(void *ud, const char *text, size_t len), void *ud);
/* Stops reading, spools what is unsent, saves offsets; on_closed runs once it is all closed. */
void nn_agent_logs_close(struct nn_agent_logs *l, void (*on_closed)(void *ud), void *ud);

#endif
