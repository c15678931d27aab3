/* SPDX-License-Identifier: Apache-2.0 */
/* Agent wiring: configuration table, the admin HTTP server, and the shutdown sequence. */
#include "agent/app/app.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/program.h"

#define OFF(f) offsetof(struct nn_agent_config, f)

const struct nn_cfg_option nn_agent_config_options[] = {
    {.name = "listen_address",
     .type = NN_CFG_STR,
     .offset = OFF(listen_address),
     .def = "127.0.0.1:9596",
     .help = "HOST:PORT for /metrics, /-/healthy and /-/ready"},
    {.name = "data_dir",
     .type = NN_CFG_STR,
     .offset = OFF(data_dir),
     .def = "/var/lib/nines-agent",
     .help = "directory for saved offsets and the disk spool"},
    {0},
};

struct nn_agent_app {
  uv_loop_t *loop;
  const struct nn_agent_config *cfg;
  struct nn_metrics *metrics;
  struct nn_http_server *http;
};

struct nn_agent_app *nn_agent_app_create(uv_loop_t *loop, const struct nn_agent_config *cfg)
{
  int rc;
  struct nn_agent_app *app = calloc(1, sizeof(*app));
  if (!app)
    return NULL;
  app->loop = loop;
  app->cfg = cfg;
  if (mkdir(cfg->data_dir, 0750) < 0 && errno != EEXIST) {
    nn_error("app", "cannot create data directory %s: %s (set data_dir or --data-dir)",
             cfg->data_dir, strerror(errno));
    goto fail;
  }
  app->metrics = nn_metrics_create();
  if (!app->metrics || nn_metrics_add_process(app->metrics) < 0)
    goto fail;
  struct nn_http_server_opts hopts = {.max_body_bytes = 1 << 20};
  app->http = nn_http_server_create(loop, &hopts);
  if (!app->http || nn_program_admin_routes(app->http, app->metrics) < 0)
    goto fail;
  if ((rc = nn_http_server_listen(app->http, cfg->listen_address)) < 0) {
    nn_error("app", "cannot listen on %s: %s", cfg->listen_address, nn_strerror(rc));
    goto fail;
  }
  nn_program_set_ready(true);
  return app;
fail:
  nn_agent_app_destroy(app);
  return NULL;
}

static void on_http_stopped(void *ud)
{
  nn_program_release_signals();
}

void nn_agent_app_stop(struct nn_agent_app *app)
{
  nn_program_set_ready(false);
  nn_http_server_stop(app->http, on_http_stopped, app);
}

void nn_agent_app_destroy(struct nn_agent_app *app)
{
  if (!app)
    return;
  nn_http_server_destroy(app->http);
  nn_metrics_destroy(app->metrics);
  free(app);
}
