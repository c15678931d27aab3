/* SPDX-License-Identifier: Apache-2.0 */
/* nines-aggregator: parses flags, loads the config and runs the app on one loop. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "aggregator/app/app.h"
#include "common/config.h"
#include "common/program.h"

static void on_stop(void *ud)
{
  nn_agg_app_stop(ud);
}

static void on_reload(void *ud)
{
  (void)nn_agg_app_reload(ud);
}

static int check(const void *cfg, char *err, size_t errlen)
{
  return nn_agg_app_check(cfg, err, errlen);
}

int main(int argc, char **argv)
{
  struct nn_agg_config cfg = {0};
  const char *listen = NULL, *data_dir = NULL;
  const struct nn_program_flag flags[] = {
      {"listen-address", "HOST:PORT", "address to serve on (default 127.0.0.1:9595)", &listen},
      {"data-dir", "DIR", "directory for the WAL, blocks and state (default ./data)", &data_dir},
  };
  const struct nn_program_opts opts = {
      .name = "nines-aggregator",
      .summary = "Stores series and logs, answers PromQL, computes SLOs and sends alerts.",
      .table = nn_agg_config_options,
      .cfg = &cfg,
      .flags = flags,
      .nflags = 2,
      .check = check,
  };
  int code;
  if (!nn_program_init(&opts, argc, argv, &code)) {
    nn_cfg_free(nn_agg_config_options, &cfg);
    return code;
  }
  /* Flags win over the file. */
  if (listen) {
    free(cfg.listen_address);
    cfg.listen_address = strdup(listen);
  }
  if (data_dir) {
    free(cfg.data_dir);
    cfg.data_dir = strdup(data_dir);
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct nn_agg_app *app = nn_agg_app_create(&loop, &cfg);
  code = app ? 0 : 1;
  if (app)
    nn_program_run(&loop, on_stop, on_reload, app);
  nn_agg_app_destroy(app);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  nn_cfg_free(nn_agg_config_options, &cfg);
  return code;
}
