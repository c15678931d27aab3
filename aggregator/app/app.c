/* SPDX-License-Identifier: Apache-2.0 */
/* Aggregator wiring: configuration table, HTTP server with the admin routes, and the
 * shutdown sequence. */
#include "aggregator/app/app.h"

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

#define OFF(f) offsetof(struct nn_agg_config, f)

#define WEB(f) (OFF(web.f) - OFF(web))

static const struct nn_cfg_option web_options[] = {
    {.name = "cert_file",
     .type = NN_CFG_STR,
     .offset = WEB(cert_file),
     .help = "TLS certificate (PEM); with key_file the server speaks HTTPS"},
    {.name = "key_file",
     .type = NN_CFG_STR,
     .offset = WEB(key_file),
     .help = "TLS private key (PEM)"},
    {.name = "max_body_size",
     .type = NN_CFG_SIZE,
     .offset = WEB(max_body_size),
     .def = "64MiB",
     .help = "largest request body accepted before decompression (413 beyond)"},
    {0},
};

const struct nn_cfg_option nn_agg_config_options[] = {
    {.name = "listen_address",
     .type = NN_CFG_STR,
     .offset = OFF(listen_address),
     .def = "127.0.0.1:9595",
     .help = "HOST:PORT for ingest, the Prometheus API, the SLO page and /metrics"},
    {.name = "data_dir",
     .type = NN_CFG_STR,
     .offset = OFF(data_dir),
     .def = "data",
     .help = "directory for the WAL, blocks and state"},
    {.name = "web",
     .type = NN_CFG_SECTION,
     .offset = OFF(web),
     .help = "HTTP server settings",
     .sub = web_options},
    {0},
};

struct nn_agg_app {
  uv_loop_t *loop;
  const struct nn_agg_config *cfg;
  struct nn_metrics *metrics;
  struct nn_http_server *http;
};

static int ensure_dir(const char *path)
{
  if (mkdir(path, 0750) < 0 && errno != EEXIST) {
    nn_error("app", "cannot create data directory %s: %s", path, strerror(errno));
    return NN_ERRNO(errno);
  }
  return 0;
}

struct nn_agg_app *nn_agg_app_create(uv_loop_t *loop, const struct nn_agg_config *cfg)
{
  int rc;
  struct nn_agg_app *app = calloc(1, sizeof(*app));
  if (!app)
    return NULL;
  app->loop = loop;
  app->cfg = cfg;
  if ((rc = ensure_dir(cfg->data_dir)) < 0)
    goto fail;
  app->metrics = nn_metrics_create();
  if (!app->metrics || nn_metrics_add_process(app->metrics) < 0)
    goto fail;
  struct nn_http_server_opts hopts = {
      .max_body_bytes = cfg->web.max_body_size,
      .tls_cert_file = cfg->web.cert_file,
      .tls_key_file = cfg->web.key_file,
  };
  app->http = nn_http_server_create(loop, &hopts);
  if (!app->http)
    goto fail;
  if ((rc = nn_program_admin_routes(app->http, app->metrics)) < 0)
    goto fail;
  if ((rc = nn_http_server_listen(app->http, cfg->listen_address)) < 0) {
    nn_error("app", "cannot listen on %s: %s", cfg->listen_address, nn_strerror(rc));
    goto fail;
  }
  nn_info("app", "listening on %s, data in %s", cfg->listen_address, cfg->data_dir);
  nn_program_set_ready(true);
  return app;
fail:
  nn_agg_app_destroy(app);
  return NULL;
}

static void on_http_stopped(void *ud)
{
  nn_program_release_signals();
}

void nn_agg_app_stop(struct nn_agg_app *app)
{
  nn_program_set_ready(false);
  nn_http_server_stop(app->http, on_http_stopped, app);
}

void nn_agg_app_reload(struct nn_agg_app *app)
{
  nn_info("app", "reload requested");
}

void nn_agg_app_destroy(struct nn_agg_app *app)
{
  if (!app)
    return;
  nn_http_server_destroy(app->http);
  nn_metrics_destroy(app->metrics);
  free(app);
}
