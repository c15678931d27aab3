/* SPDX-License-Identifier: Apache-2.0 */
/* nines-aggregator: parses flags, loads the config and runs the app on one loop. */
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "aggregator/app/app.h"
#include "aggregator/slo/slo.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/error.h"
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

/* nines-aggregator slo export --format prometheus [--config FILE | SPEC_FILE...]: prints the
 * Prometheus rules equivalent to the SLOs, for Mimir, Thanos or Prometheus to evaluate. */
static int slo_export(int argc, char **argv)
{
  const char *format = "prometheus", *config = NULL;
  struct nn_cfg_strlist specs = {0};
  char **paths = calloc((size_t)argc + 1, sizeof(char *));
  if (!paths)
    return 1;
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
      format = argv[++i];
    else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      config = argv[++i];
    else if (argv[i][0] != '-')
      paths[specs.n++] = argv[i];
    else {
      fprintf(stderr, "usage: nines-aggregator slo export [--format prometheus] "
                      "[--config FILE | SPEC_FILE...]\n");
      free(paths);
      return 2;
    }
  }
  specs.v = paths;
  if (strcmp(format, "prometheus") != 0) {
    fprintf(stderr, "nines-aggregator: unknown export format \"%s\" (only prometheus)\n", format);
    free(paths);
    return 2;
  }
  struct nn_agg_config cfg = {0};
  struct nn_cfg_error cerr;
  char err[1024];
  if (config) {
    if (nn_cfg_load_file(config, nn_agg_config_options, &cfg, &cerr) < 0) {
      nn_cfg_error_format(&cerr, err, sizeof(err));
      fprintf(stderr, "%s\n", err);
      free(paths);
      nn_cfg_free(nn_agg_config_options, &cfg);
      return 1;
    }
    if (specs.n == 0)
      specs = cfg.slo.spec_files;
  }
  struct nn_slo_set *set = NULL;
  struct nn_buf out;
  nn_buf_init(&out, 256u << 20);
  int rc = nn_slo_set_load_files(&specs, &set, err, sizeof(err));
  if (rc == 0)
    rc = nn_slo_export_prometheus(set, &out);
  if (rc < 0)
    fprintf(stderr, "%s\n", rc == NN_ECONFIG ? err : nn_strerror(rc));
  else if (out.len)
    fwrite(out.data, 1, out.len, stdout);
  nn_buf_fini(&out);
  nn_slo_set_destroy(set);
  nn_cfg_free(nn_agg_config_options, &cfg);
  free(paths);
  return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
  if (argc >= 3 && strcmp(argv[1], "slo") == 0 && strcmp(argv[2], "export") == 0)
    return slo_export(argc, argv);
  struct nn_agg_config cfg = {0};
  const struct nn_program_flag flags[] = {
      {"listen-address", "HOST:PORT", "address to serve on (default 127.0.0.1:9595)",
       offsetof(struct nn_agg_config, listen_address)},
      {"data-dir", "DIR", "directory for the WAL, blocks and state (default ./data)",
       offsetof(struct nn_agg_config, data_dir)},
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
