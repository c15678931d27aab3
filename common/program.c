/* SPDX-License-Identifier: Apache-2.0 */
/* Shared main() plumbing for nines-agent and nines-aggregator. */
#include "common/program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/error.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"

static const char *config_path;
static bool ready;

const char *nn_program_config_path(void)
{
  return config_path;
}

static void usage(const struct nn_program_opts *o, FILE *f)
{
  fprintf(f,
          "Usage: %s [--config FILE] [--check-config] [options]\n%s\n\n"
          "  --config FILE        YAML configuration file (default: embedded defaults)\n"
          "  --check-config       validate the configuration, print what is wrong, exit\n"
          "  --log.level LEVEL    debug, info, warn or error (default info)\n"
          "  --log.format FORMAT  logfmt or json (default logfmt)\n"
          "  --version            print the version and exit\n"
          "  --help               print this help and the configuration reference\n",
          o->name, o->summary);
  for (size_t i = 0; i < o->nflags; i++) {
    char left[64];
    snprintf(left, sizeof(left), "--%s %s", o->flags[i].name, o->flags[i].metavar);
    fprintf(f, "  %-20s %s\n", left, o->flags[i].help);
  }
}

static const char *flag_value(int argc, char **argv, int *i, const char *name)
{
  /* Accepts "--name value" and "--name=value". */
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0)
    return NULL;
  if (a[2 + n] == '=')
    return a + 3 + n;
  if (a[2 + n] == '\0' && *i + 1 < argc)
    return argv[++*i];
  return NULL;
}

static bool is_flag(const char *a, const char *name)
{
  return strncmp(a, "--", 2) == 0 && strcmp(a + 2, name) == 0;
}

int nn_program_init(const struct nn_program_opts *o, int argc, char **argv, int *exit_code)
{
  bool check = false;
  const char *level = "info", *format = "logfmt", *v;
  const char *overrides[16] = {0};
  if (o->nflags > 16) {
    fprintf(stderr, "%s: too many program flags\n", o->name);
    *exit_code = 2;
    return 0;
  }
  *exit_code = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (is_flag(a, "help") || strcmp(a, "-h") == 0) {
      usage(o, stdout);
      struct nn_buf b;
      nn_buf_init(&b, 1 << 20);
      if (nn_cfg_write_help(o->table, &b) == 0 && b.data)
        printf("\nConfiguration file reference:\n%s", b.data);
      nn_buf_fini(&b);
      return 0;
    }
    if (is_flag(a, "version")) {
      printf("%s version %s\n", o->name, NN_VERSION);
      return 0;
    }
    if (is_flag(a, "check-config")) {
      check = true;
      continue;
    }
    if ((v = flag_value(argc, argv, &i, "config"))) {
      config_path = v;
      continue;
    }
    if ((v = flag_value(argc, argv, &i, "log.level"))) {
      level = v;
      continue;
    }
    if ((v = flag_value(argc, argv, &i, "log.format"))) {
      format = v;
      continue;
    }
    bool known = false;
    for (size_t f = 0; f < o->nflags && !known; f++) {
      if ((v = flag_value(argc, argv, &i, o->flags[f].name))) {
        overrides[f] = v;
        known = true;
      }
    }
    if (!known) {
      fprintf(stderr, "%s: unknown or incomplete flag \"%s\" (see --help)\n", o->name, a);
      *exit_code = 2;
      return 0;
    }
  }

  enum nn_log_level lvl;
  enum nn_log_format fmt;
  if (nn_log_level_parse(level, &lvl) < 0 || nn_log_format_parse(format, &fmt) < 0) {
    fprintf(stderr, "%s: --log.level must be debug|info|warn|error and --log.format logfmt|json\n",
            o->name);
    *exit_code = 2;
    return 0;
  }
  nn_log_setup(lvl, fmt);

  struct nn_cfg_error err;
  memset(&err, 0, sizeof(err));
  int rc;
  if (config_path)
    rc = nn_cfg_load_file(config_path, o->table, o->cfg, &err);
  else if (o->embedded_config)
    rc = nn_cfg_load_string("<embedded>", o->embedded_config, strlen(o->embedded_config), o->table,
                            o->cfg, &err);
  else
    rc = nn_cfg_apply_defaults(o->table, o->cfg, &err);
  if (rc < 0) {
    char msg[1400];
    nn_cfg_error_format(&err, msg, sizeof(msg));
    fprintf(stderr, "%s\n", msg);
    if (check)
      fprintf(stderr, "%s: configuration is invalid\n", o->name);
    *exit_code = 1;
    return 0;
  }
  for (size_t f = 0; f < o->nflags; f++) {
    if (!overrides[f])
      continue;
    char **field = (char **)((char *)o->cfg + o->flags[f].cfg_offset);
    char *copy = strdup(overrides[f]);
    if (!copy) {
      *exit_code = 1;
      return 0;
    }
    free(*field);
    *field = copy;
  }
  if (check && o->check) {
    char cerr[1024] = "";
    if (o->check(o->cfg, cerr, sizeof(cerr)) < 0) {
      fprintf(stderr, "%s\n%s: configuration is invalid\n", cerr, o->name);
      *exit_code = 1;
      return 0;
    }
  }
  if (check) {
    printf("%s: %s is valid\n", o->name, config_path ? config_path : "the embedded configuration");
    return 0;
  }
  return 1;
}

/* Signals */

struct sigctx {
  nn_program_signal_fn on_stop, on_reload;
  void *ud;
  int stops;
};

static uv_signal_t sig_term, sig_int, sig_hup;
static struct sigctx sigctx;
static bool signals_open;

static void on_signal(uv_signal_t *h, int signum)
{
  struct sigctx *c = h->data;
  if (signum == SIGHUP) {
    if (c->on_reload)
      c->on_reload(c->ud);
    return;
  }
  if (c->stops++ > 0) {
    nn_warn("main", "second signal: exiting now");
    exit(1);
  }
  nn_info("main", "signal %d: shutting down", signum);
  c->on_stop(c->ud);
}

int nn_program_run(uv_loop_t *loop, nn_program_signal_fn on_stop, nn_program_signal_fn on_reload,
                   void *ud)
{
  sigctx.on_stop = on_stop;
  sigctx.on_reload = on_reload;
  sigctx.ud = ud;
  uv_signal_t *hs[] = {&sig_term, &sig_int, &sig_hup};
  int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; i++) {
    uv_signal_init(loop, hs[i]);
    hs[i]->data = &sigctx;
    uv_signal_start(hs[i], on_signal, sigs[i]);
  }
  signals_open = true;
  return uv_run(loop, UV_RUN_DEFAULT);
}

void nn_program_release_signals(void)
{
  if (!signals_open)
    return;
  signals_open = false;
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_hup, NULL);
}

/* Admin routes */

static void on_metrics(struct nn_http_req *req, void *ud)
{
  struct nn_buf b;
  nn_buf_init(&b, 64 << 20);
  int rc = nn_metrics_render(ud, &b);
  if (rc < 0) {
    nn_buf_fini(&b);
    nn_http_respond_error(req, 500, nn_strerror(rc));
    return;
  }
  nn_http_respond_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static void on_healthy(struct nn_http_req *req, void *ud)
{
  static const char msg[] = "Healthy.\n";
  nn_http_respond(req, 200, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
}

static void on_ready(struct nn_http_req *req, void *ud)
{
  static const char ok[] = "Ready.\n", no[] = "Service Unavailable\n";
  if (ready)
    nn_http_respond(req, 200, "text/plain; charset=utf-8", ok, sizeof(ok) - 1);
  else
    nn_http_respond(req, 503, "text/plain; charset=utf-8", no, sizeof(no) - 1);
}

void nn_program_set_ready(bool r)
{
  ready = r;
}

int nn_program_admin_routes(struct nn_http_server *srv, struct nn_metrics *metrics)
{
  int rc;
  if ((rc = nn_http_server_route(srv, "/metrics", 0, on_metrics, metrics)) < 0 ||
      (rc = nn_http_server_route(srv, "/-/healthy", 0, on_healthy, NULL)) < 0 ||
      (rc = nn_http_server_route(srv, "/-/ready", 0, on_ready, NULL)) < 0)
    return rc;
  return 0;
}
