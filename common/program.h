/* SPDX-License-Identifier: Apache-2.0 */
/* What both programs share around main(): command-line flags (--config, --check-config,
 * --version, --help, plus program-specific ones), loading the config file or the embedded
 * defaults, logging set-up, the admin HTTP routes (/metrics, /-/healthy, /-/ready) and
 * signal handling for graceful shutdown and reload. */
#ifndef NN_COMMON_PROGRAM_H
#define NN_COMMON_PROGRAM_H

#include <stdbool.h>
#include <uv.h>

struct nn_cfg_option;
struct nn_http_server;
struct nn_metrics;

/* A program-specific flag that overrides a string setting of the config file, e.g.
 * --listen-address HOST:PORT for listen_address. Flags win over the file. */
struct nn_program_flag {
  const char *name; /* without the leading dashes */
  const char *metavar;
  const char *help;
  size_t cfg_offset; /* offset of the char * field in the config struct */
};

struct nn_program_opts {
  const char *name;    /* "nines-aggregator" */
  const char *summary; /* one line for --help */
  /* The config used when no --config is given (YAML text); NULL means all defaults. */
  const char *embedded_config;
  const struct nn_cfg_option *table;
  void *cfg; /* zeroed struct the table describes; filled on success */
  const struct nn_program_flag *flags;
  size_t nflags;
  /* Extra validation for --check-config (files the config names, such as rule files):
   * 0, or a negative code with "file:line:col: message" in err. May be NULL. */
  int (*check)(const void *cfg, char *err, size_t errlen);
};

/* Parses argv and loads the config. Returns 1 when the program should run; 0 when it should
 * exit with *exit_code (after --help, --version, --check-config, or an error, which has
 * been printed to stderr with file:line:col and field). */
int nn_program_init(const struct nn_program_opts *o, int argc, char **argv, int *exit_code);
/* Path of the config file in use, or NULL for the embedded one. */
const char *nn_program_config_path(void);

typedef void (*nn_program_signal_fn)(void *ud);
/* Runs loop until it has no more work. SIGTERM and SIGINT call on_stop once (a second
 * signal exits at once); SIGHUP calls on_reload (may be NULL). */
int nn_program_run(uv_loop_t *loop, nn_program_signal_fn on_stop, nn_program_signal_fn on_reload,
                   void *ud);
/* Closes the signal handles nn_program_run installed, so the loop can end. */
void nn_program_release_signals(void);

/* Registers GET /metrics (rendering metrics), /-/healthy and /-/ready on srv. */
int nn_program_admin_routes(struct nn_http_server *srv, struct nn_metrics *metrics);
/* /-/ready answers 200 only after this is called with true (503 before). */
void nn_program_set_ready(bool ready);

#endif
