/* SPDX-License-Identifier: Apache-2.0 */
/* Agent wiring: configuration table, the admin HTTP server, and the shutdown sequence. */
#include "agent/app/app.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/http_client.h"
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
    {.name = "logs",
     .type = NN_CFG_SECTION,
     .offset = OFF(logs),
     .help = "container log tailing and shipping (Loki push)",
     .sub = nn_agent_logs_options},
    {.name = "scrape",
     .type = NN_CFG_SECTION,
     .offset = OFF(scrape),
     .help = "Prometheus scraping (scrape_configs as Prometheus spells them)",
     .sub = nn_scrape_config_options},
    {.name = "remote_write",
     .type = NN_CFG_SECTION,
     .offset = OFF(remote_write),
     .help = "where scraped samples go (Prometheus remote write 1.0)",
     .sub = nn_agent_rw_options},
    {0},
};

struct nn_agent_app {
  uv_loop_t *loop;
  struct nn_agent_config *cfg;
  struct nn_metrics *metrics;
  struct nn_http_server *http;
  struct nn_http_client *client;
  struct nn_agent_logs *logs;
  struct nn_agent_metrics *scrape;
  int closing; /* modules still closing */
};

static int push_self(void *ud, const char *text, size_t len)
{
  return nn_agent_metrics_push_self(ud, text, len);
}

struct nn_agent_app *nn_agent_app_create(uv_loop_t *loop, struct nn_agent_config *cfg)
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
  app->client = nn_http_client_create(loop, &(struct nn_http_client_opts){0});
  if (!app->client)
    goto fail;
  if (cfg->logs.enabled) {
    app->logs = nn_agent_logs_create(loop, &cfg->logs, cfg->data_dir, app->client, app->metrics);
    if (!app->logs)
      goto fail;
  }
  app->scrape = nn_agent_metrics_create(loop, &app->cfg->scrape, &cfg->remote_write, cfg->data_dir,
                                        app->client, app->metrics, cfg->listen_address);
  if (!app->scrape)
    goto fail;
  /* Log-derived series go out as lines change them, ahead of the scrape of /metrics. */
  if (app->logs)
    nn_agent_logs_set_push(app->logs, push_self, app->scrape);
  nn_program_set_ready(true);
  return app;
fail:
  nn_agent_app_destroy(app);
  return NULL;
}

static void on_closed(void *ud)
{
  struct nn_agent_app *app = ud;
  if (--app->closing > 0)
    return;
  nn_http_client_destroy(app->client);
  app->client = NULL;
  nn_program_release_signals();
}

static void on_scrape_closed(void *ud)
{
  struct nn_agent_app *app = ud;
  app->scrape = NULL;
  on_closed(app);
}

static void on_logs_closed(void *ud)
{
  struct nn_agent_app *app = ud;
  app->logs = NULL;
  on_closed(app);
}

void nn_agent_app_stop(struct nn_agent_app *app)
{
  nn_program_set_ready(false);
  app->closing = 1 + (app->logs != NULL) + (app->scrape != NULL);
  if (app->logs)
    nn_agent_logs_close(app->logs, on_logs_closed, app);
  if (app->scrape)
    nn_agent_metrics_close(app->scrape, on_scrape_closed, app);
  nn_http_server_stop(app->http, on_closed, app);
}

void nn_agent_app_destroy(struct nn_agent_app *app)
{
  if (!app)
    return;
  nn_agent_logs_close(app->logs, NULL, NULL);
  nn_agent_metrics_close(app->scrape, NULL, NULL);
  nn_http_server_destroy(app->http);
  nn_http_client_destroy(app->client);
  nn_metrics_destroy(app->metrics);
  free(app);
}
