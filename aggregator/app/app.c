/* SPDX-License-Identifier: Apache-2.0 */
/* Aggregator wiring: configuration table, HTTP server with the admin routes, and the
 * shutdown sequence. */
#include "aggregator/app/app.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "aggregator/logstore/logstore.h"
#include "aggregator/tsdb/tsdb.h"
#include "aggregator/page/page.h"
#include "aggregator/storage/metadata.h"
#include "aggregator/remote/remote.h"
#include "aggregator/web/web.h"
#include "common/buf.h"
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

#define STO(f) (OFF(storage.f) - OFF(storage))
static const struct nn_cfg_option storage_options[] = {
    {.name = "retention",
     .type = NN_CFG_DURATION,
     .offset = STO(retention_ms),
     .def = "15d",
     .help = "how long samples are kept"},
    {.name = "retention_size",
     .type = NN_CFG_SIZE,
     .offset = STO(retention_size),
     .def = "0",
     .help = "blocks kept at most, oldest deleted first (0: no size limit)"},
    {.name = "wal_flush_interval",
     .type = NN_CFG_DURATION,
     .offset = STO(wal_flush_interval_ms),
     .def = "100ms",
     .help = "group commit: writes are acknowledged after the next fsync, at most this late"},
    {.name = "wal_flush_bytes",
     .type = NN_CFG_SIZE,
     .offset = STO(wal_flush_bytes),
     .def = "1MiB",
     .help = "or as soon as this much is waiting"},
    {.name = "wal_fsync",
     .type = NN_CFG_BOOL,
     .offset = STO(wal_fsync),
     .def = "true",
     .help = "fsync the WAL (turn off only for throwaway data)"},
    {0},
};

#define LOG(f) (OFF(logs.f) - OFF(logs))
static const struct nn_cfg_option logs_options[] = {
    {.name = "retention",
     .type = NN_CFG_DURATION,
     .offset = LOG(retention_ms),
     .def = "7d",
     .help = "how long log lines are kept"},
    {.name = "retention_size",
     .type = NN_CFG_SIZE,
     .offset = LOG(retention_size),
     .def = "10GiB",
     .help = "compressed log chunks kept at most; the oldest go first"},
    {.name = "max_line_size",
     .type = NN_CFG_SIZE,
     .offset = LOG(max_line_size),
     .def = "256KiB",
     .help = "longer lines are rejected with 400"},
    {.name = "max_streams",
     .type = NN_CFG_INT,
     .offset = LOG(max_streams),
     .def = "100000",
     .help = "streams per tenant"},
    {0},
};

#define QRY(f) (OFF(query.f) - OFF(query))
static const struct nn_cfg_option query_options[] = {
    {.name = "max_samples",
     .type = NN_CFG_INT,
     .offset = QRY(max_samples),
     .def = "50000000",
     .help = "samples one query may hold in memory at once (422 beyond, as Prometheus's "
             "--query.max-samples)"},
    {.name = "timeout",
     .type = NN_CFG_DURATION,
     .offset = QRY(timeout_ms),
     .def = "2m",
     .help = "longest a query may run (503 beyond); a request's timeout= may only shorten it"},
    {.name = "lookback_delta",
     .type = NN_CFG_DURATION,
     .offset = QRY(lookback_delta_ms),
     .def = "5m",
     .help = "how far back an instant selector looks for a sample"},
    {.name = "prometheus_v2",
     .type = NN_CFG_BOOL,
     .offset = QRY(prometheus_v2),
     .def = "false",
     .help = "answer API queries with Prometheus 2.x semantics where 3.0 changed them (rate "
             "extrapolation at a series' start, histogram_quantile float tolerance)"},
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
    {.name = "storage",
     .type = NN_CFG_SECTION,
     .offset = OFF(storage),
     .help = "the time-series store",
     .sub = storage_options},
    {.name = "logs",
     .type = NN_CFG_SECTION,
     .offset = OFF(logs),
     .help = "the log store",
     .sub = logs_options},
    {.name = "query",
     .type = NN_CFG_SECTION,
     .offset = OFF(query),
     .help = "PromQL limits for the HTTP API",
     .sub = query_options},
    {.name = "ingest",
     .type = NN_CFG_SECTION,
     .offset = OFF(ingest),
     .help = "remote write and Loki push limits and access",
     .sub = nn_ingest_config_options},
    {.name = "rules",
     .type = NN_CFG_SECTION,
     .offset = OFF(rules),
     .help = "Prometheus rule files: recording and alerting rules",
     .sub = nn_rules_config_options},
    {.name = "alerting",
     .type = NN_CFG_SECTION,
     .offset = OFF(alerting),
     .help = "Alertmanagers that receive alerts (API v2)",
     .sub = nn_notifier_config_options},
    {.name = "slo",
     .type = NN_CFG_SECTION,
     .offset = OFF(slo),
     .help = "SLO specs (Sloth prometheus/v1 or nines/v1), budgets and burn-rate alerts",
     .sub = nn_slo_config_options},
    {.name = "golden_signals",
     .type = NN_CFG_SECTION,
     .offset = OFF(golden),
     .help = "traffic, errors, latency and saturation per service and endpoint (nines:* series)",
     .sub = nn_golden_config_options},
    {.name = "remote_write",
     .type = NN_CFG_LIST,
     .offset = OFF(remote_write),
     .sub = nn_remote_dest_options,
     .elem_size = sizeof(struct nn_remote_dest_config),
     .help = "send what is ingested (all or, per destination, a relabeled part) to Mimir, "
             "Thanos Receive or VictoriaMetrics; each has its own queue, spool, retries and "
             "saved WAL position"},
    {0},
};

struct nn_agg_app {
  uv_loop_t *loop;
  const struct nn_agg_config *cfg;
  struct nn_metrics *metrics;
  struct nn_http_server *http;
  struct nn_tsdb *db;
  struct nn_logstore *logs;
  struct nn_ingest *ingest;
  struct nn_web *web;
  struct nn_notifier *notifier;
  struct nn_rules *rules;
  struct nn_slo_engine *slo;
  struct nn_page *page;
  struct nn_metadata *metadata; /* from remote write, for /api/v1/metadata */
  struct nn_remote *remote;
  int stopping;     /* shutdown steps still running before the stores close */
  uv_timer_t *tick; /* heap: freed in its close callback, which may run after the app */
};

/* Store statistics exported on /metrics, read at render time. */
#define TSDB_STAT(fn, field)                                                                       \
  static double fn(void *ud)                                                                       \
  {                                                                                                \
    struct nn_tsdb_stats st;                                                                       \
    nn_tsdb_stats(((struct nn_agg_app *)ud)->db, &st);                                             \
    return (double)st.field;                                                                       \
  }
TSDB_STAT(tsdb_series, series)
TSDB_STAT(tsdb_samples, samples_appended_total)
TSDB_STAT(tsdb_ooo, out_of_order_total)
TSDB_STAT(tsdb_dup, duplicate_total)
TSDB_STAT(tsdb_oob, out_of_bounds_total)
TSDB_STAT(tsdb_wal_bytes, wal_bytes_written_total)
TSDB_STAT(tsdb_fsyncs, wal_fsyncs_total)
TSDB_STAT(tsdb_fsync_seconds, wal_fsync_seconds_total)
TSDB_STAT(tsdb_wal_failures, wal_write_failures_total)
TSDB_STAT(tsdb_wal_corruptions, wal_corruptions_total)
TSDB_STAT(tsdb_wal_truncated, wal_truncated_bytes)
TSDB_STAT(tsdb_chunks, chunks)

static const struct {
  enum nn_metric_type type;
  const char *name, *help;
  nn_metric_value_fn fn;
} store_metrics[] = {
    {NN_METRIC_GAUGE, "nines_tsdb_head_series", "Series in the head.", tsdb_series},
    {NN_METRIC_GAUGE, "nines_tsdb_head_chunks", "Chunks in the head.", tsdb_chunks},
    {NN_METRIC_COUNTER, "nines_tsdb_samples_appended_total", "Samples stored.", tsdb_samples},
    {NN_METRIC_COUNTER, "nines_tsdb_out_of_order_samples_total", "Samples refused as out of order.",
     tsdb_ooo},
    {NN_METRIC_COUNTER, "nines_tsdb_duplicate_samples_total",
     "Samples refused: same timestamp, other value.", tsdb_dup},
    {NN_METRIC_COUNTER, "nines_tsdb_out_of_bounds_samples_total",
     "Samples refused as too old for the head.", tsdb_oob},
    {NN_METRIC_COUNTER, "nines_tsdb_wal_bytes_written_total", "Bytes written to the WAL.",
     tsdb_wal_bytes},
    {NN_METRIC_COUNTER, "nines_tsdb_wal_fsyncs_total", "WAL fsyncs.", tsdb_fsyncs},
    {NN_METRIC_COUNTER, "nines_tsdb_wal_fsync_seconds_total", "Time spent in WAL fsyncs.",
     tsdb_fsync_seconds},
    {NN_METRIC_COUNTER, "nines_tsdb_wal_write_failures_total", "Failed WAL writes.",
     tsdb_wal_failures},
    {NN_METRIC_COUNTER, "nines_tsdb_wal_corruptions_total",
     "Damaged WAL places found and truncated at start-up.", tsdb_wal_corruptions},
    {NN_METRIC_COUNTER, "nines_tsdb_wal_truncated_bytes_total",
     "Bytes cut off damaged WAL segments at start-up.", tsdb_wal_truncated},
};

static void on_tick(uv_timer_t *t)
{
  struct nn_agg_app *app = t->data;
  uv_update_time(app->loop);
  int64_t now_ms = (int64_t)uv_now(app->loop);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  (void)now_ms;
  nn_logstore_tick(app->logs, wall_ms * 1000000);
  /* Cuts 2 h blocks from the head, checkpoints the WAL and applies retention. */
  nn_tsdb_maintain(app->db, wall_ms);
  nn_metadata_save(app->metadata);
}

static int open_stores(struct nn_agg_app *app)
{
  const struct nn_agg_config *cfg = app->cfg;
  struct nn_tsdb_options to;
  nn_tsdb_options_default(&to);
  to.dir = cfg->data_dir;
  to.loop = app->loop;
  to.wal_flush_interval_ms = (uint32_t)cfg->storage.wal_flush_interval_ms;
  to.wal_flush_bytes = cfg->storage.wal_flush_bytes;
  to.wal_fsync = cfg->storage.wal_fsync;
  to.retention_ms = cfg->storage.retention_ms;
  to.retention_bytes = cfg->storage.retention_size;
  /* WAL segments a remote-write destination has not sent yet stay. */
  nn_remote_wal_floor(cfg->data_dir, &cfg->remote_write, &to.wal_retain, &to.wal_retain_from);
  int rc = nn_tsdb_open(&to, &app->db);
  if (rc < 0) {
    nn_error("app", "cannot open the time-series store in %s: %s", cfg->data_dir, nn_strerror(rc));
    return rc;
  }
  struct nn_logstore_config lc;
  nn_logstore_config_defaults(&lc);
  lc.data_dir = cfg->data_dir;
  lc.loop = app->loop;
  lc.retention_ns = cfg->logs.retention_ms * 1000000;
  lc.retention_bytes = cfg->logs.retention_size;
  lc.max_line_bytes = cfg->logs.max_line_size;
  lc.max_streams_per_tenant = (size_t)cfg->logs.max_streams;
  lc.sync_interval_ns = cfg->storage.wal_flush_interval_ms * 1000000;
  lc.sync_bytes = cfg->storage.wal_flush_bytes;
  char err[256];
  rc = nn_logstore_open(&lc, &app->logs, err, sizeof(err));
  if (rc < 0) {
    nn_error("app", "cannot open the log store in %s: %s", cfg->data_dir, err);
    return rc;
  }
  if (nn_logstore_register_metrics(app->logs, app->metrics) < 0)
    return NN_ENOMEM;
  for (size_t i = 0; i < sizeof(store_metrics) / sizeof(store_metrics[0]); i++)
    if (!nn_metrics_func(app->metrics, store_metrics[i].type, store_metrics[i].name,
                         store_metrics[i].help, NULL, store_metrics[i].fn, app))
      return NN_ENOMEM;
  app->tick = malloc(sizeof(*app->tick));
  if (!app->tick)
    return NN_ENOMEM;
  uv_timer_init(app->loop, app->tick);
  app->tick->data = app;
  uv_timer_start(app->tick, on_tick, 5000, 5000);
  return 0;
}

static double metadata_entries(void *ud)
{
  struct nn_metadata_stats st;
  nn_metadata_stats(((struct nn_agg_app *)ud)->metadata, &st);
  return (double)st.entries;
}

static double metadata_dropped(void *ud)
{
  struct nn_metadata_stats st;
  nn_metadata_stats(((struct nn_agg_app *)ud)->metadata, &st);
  return (double)st.dropped_total;
}

/* Metric metadata from remote write, kept in <data_dir>/metadata. */
static int open_metadata(struct nn_agg_app *app)
{
  char path[4096];
  snprintf(path, sizeof(path), "%s/metadata", app->cfg->data_dir);
  if (!(app->metadata = nn_metadata_create(path, 1000000)))
    return NN_ENOMEM;
  int rc = nn_metadata_load(app->metadata);
  if (rc == NN_ENOMEM)
    return rc;
  if (rc < 0)
    nn_warn("app", "metric metadata in %s: %s (kept what was readable; senders re-send it)", path,
            nn_strerror(rc));
  nn_ingest_set_metadata(app->ingest, app->metadata);
  if (!nn_metrics_func(app->metrics, NN_METRIC_GAUGE, "nines_metadata_entries",
                       "Metric metadata entries (family, tenant) stored from remote write.", NULL,
                       metadata_entries, app) ||
      !nn_metrics_func(app->metrics, NN_METRIC_COUNTER, "nines_metadata_dropped_total",
                       "Metric metadata entries refused: store full, field too long, not UTF-8.",
                       NULL, metadata_dropped, app))
    return NN_ENOMEM;
  return 0;
}

static int ensure_dir(const char *path)
{
  if (mkdir(path, 0750) < 0 && errno != EEXIST) {
    nn_error("app", "cannot create data directory %s: %s", path, strerror(errno));
    return NN_ERRNO(errno);
  }
  return 0;
}

/* /api/v1/alerts: the rule engine's alerts and the SLO engine's, in one list. */
static int alerts_json(void *ud, struct nn_buf *out)
{
  struct nn_agg_app *app = ud;
  size_t start = out->len;
  int rc = nn_rules_json_alerts(app->rules, out);
  /* The rules writer ends with "]}"; reopen the array and append the SLO alerts. */
  if (rc < 0 || out->len < start + 2 || memcmp(out->data + out->len - 2, "]}", 2) != 0)
    return rc < 0 ? rc : NN_EINVAL;
  bool empty = out->data[out->len - 3] == '[';
  out->len -= 2;
  struct nn_buf slo;
  nn_buf_init(&slo, out->max);
  rc = nn_slo_json_alerts(app->slo, &slo);
  if (rc == 0 && slo.len > 2) {
    rc = empty ? 0 : nn_buf_appendc(out, ',');
    if (rc == 0)
      rc = nn_buf_append(out, slo.data + 1, slo.len - 2);
  }
  nn_buf_fini(&slo);
  return rc < 0 ? rc : nn_buf_appends(out, "]}");
}

static void on_slos(struct nn_http_req *req, void *ud)
{
  struct nn_buf b;
  nn_buf_init(&b, 256u << 20);
  int rc = nn_slo_json(ud, &b);
  if (rc < 0) {
    nn_buf_fini(&b);
    nn_http_respond_error(req, 500, nn_strerror(rc));
    return;
  }
  nn_http_respond_buf(req, 200, "application/json", &b);
}

static void on_reload_req(struct nn_http_req *req, void *ud)
{
  if (strcmp(req->method, "POST") != 0 && strcmp(req->method, "PUT") != 0) {
    nn_http_respond_error(req, 405, "Only POST or PUT requests allowed");
    return;
  }
  if (nn_agg_app_reload(ud) < 0)
    nn_http_respond_error(req, 500, "failed to reload config: see the aggregator's log");
  else
    nn_http_respond(req, 200, "text/plain", "", 0);
}

static int load_generated_rules(struct nn_agg_app *app)
{
  if (!app->cfg->golden.enabled)
    return 0;
  struct nn_buf b;
  nn_buf_init(&b, 4u << 20);
  char err[600];
  int rc = nn_golden_rules(&app->cfg->golden, &b);
  if (rc == 0)
    rc = nn_rules_set_generated(app->rules, "golden-signals", b.data, b.len, err, sizeof(err));
  if (rc < 0)
    nn_error("app", "golden-signal rules: %s", rc == NN_ECONFIG ? err : nn_strerror(rc));
  nn_buf_fini(&b);
  return rc;
}

static int open_alerting(struct nn_agg_app *app)
{
  const struct nn_agg_config *cfg = app->cfg;
  char err[1024];
  int rc;
  struct nn_notifier_opts no = {
      .loop = app->loop,
      .cfg = &cfg->alerting,
      .external_labels = &cfg->rules.external_labels,
      .metrics = app->metrics,
  };
  app->notifier = nn_notifier_create(&no);
  struct nn_rules_opts ro = {
      .loop = app->loop,
      .db = app->db,
      .cfg = &cfg->rules,
      .notify = nn_notifier_notify,
      .notify_ud = app->notifier,
      .metrics = app->metrics,
  };
  app->rules = app->notifier ? nn_rules_create(&ro) : NULL;
  if (!app->rules)
    return NN_ENOMEM;
  if ((rc = nn_rules_reload(app->rules, NULL, err, sizeof(err))) < 0) {
    nn_error("app", "rule files: %s", err);
    return rc;
  }
  if ((rc = load_generated_rules(app)) < 0)
    return rc;
  struct nn_slo_opts so = {
      .loop = app->loop,
      .db = app->db,
      .cfg = &cfg->slo,
      .data_dir = cfg->data_dir,
      .notify = nn_notifier_notify,
      .notify_ud = app->notifier,
      .metrics = app->metrics,
      .external_url = cfg->rules.external_url,
  };
  app->slo = nn_slo_create(&so);
  if (!app->slo)
    return NN_ENOMEM;
  if ((rc = nn_slo_reload(app->slo, NULL, err, sizeof(err))) < 0) {
    nn_error("app", "SLO specs: %s", err);
    return rc;
  }
  struct nn_page_opts po = {.slos = nn_slo_json, .ud = app->slo};
  nn_tsdb_querier(app->db, &po.querier); /* incident history from ALERTS */
  app->page = nn_page_create(&po, app->http);
  if (!app->page || nn_http_server_route(app->http, "/api/v1/slos", 0, on_slos, app->slo) < 0 ||
      nn_http_server_route(app->http, "/-/reload", 0, on_reload_req, app) < 0)
    return NN_ENOMEM;
  return 0;
}

int nn_agg_app_check(const struct nn_agg_config *cfg, char *err, size_t errlen)
{
  int rc = nn_remote_config_check(&cfg->remote_write, err, errlen);
  if (rc < 0)
    return rc;
  rc = nn_rules_check_files(&cfg->rules.rule_files, err, errlen);
  if (rc < 0)
    return rc;
  struct nn_slo_set *set = NULL;
  rc = nn_slo_set_load_files(&cfg->slo.spec_files, &set, err, errlen);
  nn_slo_set_destroy(set);
  return rc;
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
  if ((rc = open_stores(app)) < 0)
    goto fail;
  if (cfg->remote_write.n > 0) {
    char err[1024];
    if (nn_remote_config_check(&cfg->remote_write, err, sizeof(err)) < 0) {
      nn_error("app", "%s", err);
      goto fail;
    }
    struct nn_remote_opts ro = {
        .loop = loop,
        .data_dir = cfg->data_dir,
        .db = app->db,
        .dests = &cfg->remote_write,
        .metrics = app->metrics,
        .external_labels = &cfg->rules.external_labels,
    };
    if (!(app->remote = nn_remote_create(&ro)))
      goto fail;
  }
  app->ingest = nn_ingest_create(&cfg->ingest, app->db, app->logs, app->metrics, app->http);
  if (!app->ingest || (rc = open_metadata(app)) < 0)
    goto fail;
  if ((rc = open_alerting(app)) < 0)
    goto fail;
  struct nn_web_opts wo = {
      .logs = app->logs,
      .metadata = app->metadata,
      .multi_tenancy = cfg->ingest.multi_tenancy,
      .lookback_ms = cfg->query.lookback_delta_ms,
      .query_timeout_ms = cfg->query.timeout_ms,
      .query_max_samples = cfg->query.max_samples > 0 ? (uint64_t)cfg->query.max_samples : 0,
      .prometheus_v2 = cfg->query.prometheus_v2,
      .rules_json = nn_rules_json_rules,
      .alerts_json = alerts_json,
      .rules_ud = app->rules,
      .alerts_ud = app,
  };
  nn_tsdb_querier(app->db, &wo.querier);
  app->web = nn_web_create(&wo, app->metrics, app->http);
  if (!app->web)
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

static void on_tick_closed(uv_handle_t *h)
{
  free(h);
}

static void close_tick(struct nn_agg_app *app)
{
  if (app->tick) {
    uv_close((uv_handle_t *)app->tick, on_tick_closed);
    app->tick = NULL;
  }
}

static void on_stop_step(void *ud)
{
  struct nn_agg_app *app = ud;
  if (--app->stopping > 0)
    return;
  nn_tsdb_close(app->db);
  app->db = NULL;
  nn_logstore_close(app->logs);
  app->logs = NULL;
  nn_program_release_signals();
}

static void on_notifier_drained(void *ud)
{
  struct nn_agg_app *app = ud;
  nn_notifier_destroy(app->notifier);
  app->notifier = NULL;
  on_stop_step(app);
}

static void on_http_stopped(void *ud)
{
  struct nn_agg_app *app = ud;
  /* In-flight writes are answered. Stop evaluating (the SLO engine saves its ledger), let
   * the notifier deliver what is queued, then make everything durable. */
  close_tick(app);
  nn_ingest_destroy(app->ingest);
  app->ingest = NULL;
  nn_web_destroy(app->web);
  app->web = NULL;
  nn_metadata_save(app->metadata);
  nn_metadata_destroy(app->metadata);
  app->metadata = NULL;
  nn_page_destroy(app->page);
  app->page = NULL;
  nn_slo_destroy(app->slo);
  app->slo = NULL;
  nn_rules_destroy(app->rules);
  app->rules = NULL;
  /* The notifier delivers what is queued; remote write saves its acknowledged WAL
   * positions. Both finish before the stores close. */
  app->stopping = 3;
  struct nn_remote *remote = app->remote;
  app->remote = NULL;
  nn_remote_close(remote, on_stop_step, app);
  if (app->notifier)
    nn_notifier_stop(app->notifier, on_notifier_drained, app);
  else
    on_notifier_drained(app);
  on_stop_step(app);
}

void nn_agg_app_stop(struct nn_agg_app *app)
{
  nn_program_set_ready(false);
  nn_http_server_stop(app->http, on_http_stopped, app);
}

int nn_agg_app_reload(struct nn_agg_app *app)
{
  char err[1024];
  int rc = nn_rules_reload(app->rules, NULL, err, sizeof(err));
  if (rc < 0)
    nn_error("app", "reload: rule files: %s (the previous rules stay)", err);
  else
    rc = load_generated_rules(app);
  int rc2 = nn_slo_reload(app->slo, NULL, err, sizeof(err));
  if (rc2 < 0)
    nn_error("app", "reload: SLO specs: %s (the previous SLOs stay)", err);
  if (rc == 0 && rc2 == 0)
    nn_info("app", "reloaded rules and SLOs");
  return rc < 0 || rc2 < 0 ? NN_ECONFIG : 0;
}

void nn_agg_app_destroy(struct nn_agg_app *app)
{
  if (!app)
    return;
  close_tick(app);
  nn_ingest_destroy(app->ingest);
  nn_web_destroy(app->web);
  nn_metadata_destroy(app->metadata);
  nn_page_destroy(app->page);
  nn_slo_destroy(app->slo);
  nn_rules_destroy(app->rules);
  nn_notifier_destroy(app->notifier);
  nn_remote_close(app->remote, NULL, NULL);
  nn_http_server_destroy(app->http);
  nn_tsdb_close(app->db);
  nn_logstore_close(app->logs);
  nn_metrics_destroy(app->metrics);
  free(app);
}
