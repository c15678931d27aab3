/* SPDX-License-Identifier: Apache-2.0 */
/* The agent as a whole: its configuration table and the object that owns the loop, the
 * admin HTTP server, the tailers, the scrapers and the shippers. main.c only calls these. */
#ifndef NN_AGENT_APP_APP_H
#define NN_AGENT_APP_APP_H

#include <uv.h>

#include "agent/app/logs.h"
#include "agent/app/metrics.h"
#include "common/config.h"

struct nn_agent_config {
  char *listen_address;
  char *data_dir;
  struct nn_agent_logs_config logs;
  struct nn_scrape_config scrape;
  struct nn_agent_rw_config remote_write;
};

extern const struct nn_cfg_option nn_agent_config_options[];

struct nn_agent_app;

/* Builds every module from cfg (borrowed). NULL with a logged reason on failure. */
struct nn_agent_app *nn_agent_app_create(uv_loop_t *loop, struct nn_agent_config *cfg);
/* Graceful shutdown: stop reading, flush batches for a bounded time, save offsets, close. */
void nn_agent_app_stop(struct nn_agent_app *app);
void nn_agent_app_destroy(struct nn_agent_app *app);

#endif
