/* SPDX-License-Identifier: Apache-2.0 */
/* The aggregator as a whole: its configuration table and the object that owns the loop,
 * the HTTP server, the stores and the background jobs. main.c only calls these. */
#ifndef NN_AGGREGATOR_APP_APP_H
#define NN_AGGREGATOR_APP_APP_H

#include <stdint.h>
#include <uv.h>

#include "aggregator/golden/golden.h"
#include "aggregator/ingest/ingest.h"
#include "aggregator/notifier/notifier.h"
#include "aggregator/rules/rules.h"
#include "aggregator/slo/slo.h"
#include "common/config.h"

struct nn_agg_config {
  char *listen_address;
  char *data_dir;
  struct {
    char *cert_file;
    char *key_file;
    uint64_t max_body_size;
  } web;
  struct {
    int64_t retention_ms;
    uint64_t retention_size;
    int64_t wal_flush_interval_ms;
    uint64_t wal_flush_bytes;
    bool wal_fsync;
  } storage;
  struct {
    int64_t retention_ms;
    uint64_t retention_size;
    uint64_t max_line_size;
    int64_t max_streams;
  } logs;
  struct {
    int64_t max_samples;
    int64_t timeout_ms;
    int64_t lookback_delta_ms;
    bool prometheus_v2;
  } query;
  struct nn_ingest_config ingest;
  struct nn_rules_config rules;
  struct nn_notifier_config alerting;
  struct nn_slo_config slo;
  struct nn_golden_config golden;
  struct nn_cfg_list remote_write; /* of struct nn_remote_dest_config */
};

extern const struct nn_cfg_option nn_agg_config_options[];

struct nn_agg_app;

/* Builds every module from cfg (which the app borrows). NULL with a logged reason on
 * failure (data dir unusable, address in use, ...). */
struct nn_agg_app *nn_agg_app_create(uv_loop_t *loop, const struct nn_agg_config *cfg);
/* Starts a graceful shutdown: stop accepting, finish in-flight work, flush, close. */
void nn_agg_app_stop(struct nn_agg_app *app);
/* Re-reads rule and SLO files (SIGHUP, POST /-/reload). 0, or NN_ECONFIG with the reason
 * logged (the old rules and SLOs stay in force). */
int nn_agg_app_reload(struct nn_agg_app *app);
/* Validates the rule files and SLO specs a config names (--check-config); writes the first
 * problem, file:line:col first, into err. */
int nn_agg_app_check(const struct nn_agg_config *cfg, char *err, size_t errlen);
void nn_agg_app_destroy(struct nn_agg_app *app);

#endif
