/* SPDX-License-Identifier: Apache-2.0 */
/* Destination settings shared by the log pipeline (Loki push) and the metrics pipeline
 * (remote write): one option table, one translation into ship destinations. */
#ifndef NN_AGENT_APP_DESTS_H
#define NN_AGENT_APP_DESTS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

/* Retry timing of one destination (its `retry` block): full-jitter exponential backoff. */
struct nn_agent_retry_config {
  int64_t min_backoff_ms; /* first retry delay; 1s */
  int64_t max_backoff_ms; /* cap on the delay, so on how long a destination that came back
                             may wait for its next try; 60s */
};

/* One receiver: a nines aggregator, Loki, or anything speaking Loki push / remote write. */
struct nn_agent_dest_config {
  char *name;
  char *url;
  char *codec; /* snappy (default, what Loki and Prometheus speak), zstd, lz4 */
  char *tenant;
  char *bearer_token;
  int64_t timeout_ms;
  uint64_t spool_max;
  bool drop_oldest;
  struct nn_agent_retry_config retry;
};

extern const struct nn_cfg_option nn_agent_dest_options[];

#endif
