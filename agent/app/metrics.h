/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics pipeline: scrape targets -> remote write batches -> ship, with the same
 * retries, spool and back-pressure as logs. */
#ifndef NN_AGENT_APP_METRICS_H
#define NN_AGENT_APP_METRICS_H

#include <stdint.h>
#include <uv.h>

#include "agent/app/dests.h"
#include "agent/scrape/scrape.h"
#include "common/config.h"

struct nn_http_client;
struct nn_metrics;

struct nn_agent_rw_config {
  uint64_t batch_size;
  int64_t batch_wait_ms;
  struct nn_cfg_list destinations; /* struct nn_agent_dest_config */
};

extern const struct nn_cfg_option nn_agent_rw_options[];

struct nn_agent_metrics;

/* Starts scraping (nothing when cfg has no scrape_configs: returns an idle object). NULL with
 * a logged reason. Borrowed: scrape, rw, client, metrics, self_address (the agent's
 * listen_address, which tells the targets that scrape the agent itself). */
struct nn_agent_metrics *nn_agent_metrics_create(uv_loop_t *loop, struct nn_scrape_config *scrape,
                                                 const struct nn_agent_rw_config *rw,
                                                 const char *data_dir,
                                                 struct nn_http_client *client,
                                                 struct nn_metrics *metrics,
                                                 const char *self_address);
/* Sends lines of the agent's own /metrics now, as the targets that scrape the agent would
 * get them (nn_scrape_push_self), and closes the open remote-write batch so they leave at
 * once. Same returns as nn_scrape_push_self; 0 when nothing scrapes the agent. */
int nn_agent_metrics_push_self(struct nn_agent_metrics *m, const char *text, size_t len);
/* Stops scraping, spools what is unsent; on_closed runs once everything is closed. */
void nn_agent_metrics_close(struct nn_agent_metrics *m, void (*on_closed)(void *ud), void *ud);

#endif
