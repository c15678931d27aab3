/* SPDX-License-Identifier: Apache-2.0 */
/* nines-agent: parses flags, loads the config and runs the app on one loop. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent/app/app.h"
#include "common/config.h"
#include "common/program.h"

static void on_stop(void *ud)
{
  nn_agent_app_stop(ud);
}

/* --check-config: what a table cannot check (job names unique, timeouts within intervals). */
static int check(const void *cfg, char *err, size_t errlen)
{
  struct nn_agent_config *c = (struct nn_agent_config *)cfg;
  return c->scrape.scrape_configs.n ? nn_scrape_config_check(&c->scrape, err, errlen) : 0;
}

int main(int argc, char **argv)
{
  struct nn_agent_config cfg = {0};
  const struct nn_program_flag flags[] = {
      {"listen-address", "HOST:PORT", "address for /metrics (default 127.0.0.1:9596)",
       offsetof(struct nn_agent_config, listen_address)},
      {"data-dir", "DIR", "directory for offsets and the spool",
       offsetof(struct nn_agent_config, data_dir)},
  };
  const struct nn_program_opts opts = {
      .name = "nines-agent",
      .summary = "Tails container logs and scrapes metrics, and ships them without loss.",
      .table = nn_agent_config_options,
      .cfg = &cfg,
      .flags = flags,
      .nflags = 2,
      .check = check,
  };
  int code;
  if (!nn_program_init(&opts, argc, argv, &code)) {
    nn_cfg_free(nn_agent_config_options, &cfg);
    return code;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct nn_agent_app *app = nn_agent_app_create(&loop, &cfg);
  code = app ? 0 : 1;
  if (app)
    nn_program_run(&loop, on_stop, NULL, app);
  nn_agent_app_destroy(app);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  nn_cfg_free(nn_agent_config_options, &cfg);
  return code;
}
