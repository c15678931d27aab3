/* SPDX-License-Identifier: Apache-2.0 */
/* The SLO engine: loads Sloth "prometheus/v1" and native "nines/v1" SLO specs, keeps a
 * budget ledger of bad/total event counts per SLO in minute and hour buckets (any window
 * is a difference of two prefix sums), writes Sloth-named slo:* series back into the
 * head, runs the multiwindow multi-burn-rate alerts, serves /api/v1/slos and exports
 * equivalent Prometheus rules. Loop thread only. */
#ifndef NN_AGGREGATOR_SLO_SLO_H
#define NN_AGGREGATOR_SLO_SLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/notifier/notifier.h"
#include "aggregator/promql/promql.h"
#include "common/config.h"

struct uv_loop_s;
struct nn_buf;
struct nn_metrics;
struct nn_tsdb;
struct nn_slo_set;
struct nn_slo_engine;

struct nn_slo_config {
  struct nn_cfg_strlist spec_files; /* globs of spec files */
  int64_t evaluation_interval_ms;   /* default 30s; must divide 1m or be a multiple of it */
  int64_t min_events;               /* burn alerts need this many events in the short window; 50 */
  char *time_zone;                  /* calendar periods; "UTC", "+02:00", "Europe/Berlin"; UTC */
  bool persist;                     /* ledger snapshots under <data_dir>/slo/; default true */
  int64_t snapshot_every;           /* evaluations between snapshots; default 20 */
  int64_t no_data_for_ms;           /* no events this long fires the no-data alert; default 10m */
  int64_t resend_delay_ms;          /* re-send firing alerts this often; default 1m */
  bool backfill;                    /* fill an empty ledger from stored series; default true */
  int64_t evaluation_delay_ms;      /* evaluate time t this long after t; default 2s */
};

/* Option table for struct nn_slo_config, for embedding in the aggregator's config. */
extern const struct nn_cfg_option nn_slo_config_options[];

/* ---- Specs, without an engine -------------------------------------------------------- */

/* Loads every file matched by globs (each may hold several YAML documents, each a Sloth
 * "prometheus/v1" or a "nines/v1" spec) into a new set. On error returns NN_ECONFIG (or an
 * I/O code) with "file:line:col: message" in err and *out NULL. */
int nn_slo_set_load_files(const struct nn_cfg_strlist *globs, struct nn_slo_set **out, char *err,
                          size_t errlen);
/* As above for one text (name is used in positions). */
int nn_slo_set_load_string(const char *name, const char *text, size_t len, struct nn_slo_set **out,
                           char *err, size_t errlen);
void nn_slo_set_destroy(struct nn_slo_set *s);
size_t nn_slo_set_count(const struct nn_slo_set *s);
/* sloth_id (service-slo) of the i-th SLO, or NULL. */
const char *nn_slo_set_id(const struct nn_slo_set *s, size_t i);

/* Writes a Prometheus rule file (recording rules slo:sli_error:ratio_rate<w>, the meta
 * recordings and the page/ticket MWMBR alerts, Sloth's layout) equivalent to the set. */
int nn_slo_export_prometheus(const struct nn_slo_set *s, struct nn_buf *out);

/* ---- Engine ---------------------------------------------------------------------------- */

/* Called with alerts due after an evaluation (shape of nn_notifier_notify). The array is
 * valid only during the call. */
typedef void (*nn_slo_notify_fn)(void *ud, const struct nn_notifier_alert *alerts, size_t n);

struct nn_slo_opts {
  struct uv_loop_s *loop;          /* NULL: no timer; drive with nn_slo_eval_at */
  struct nn_tsdb *db;              /* queried and written to (required) */
  const struct nn_slo_config *cfg; /* copied */
  const char *data_dir;            /* snapshots in <data_dir>/slo/; NULL: none */
  nn_slo_notify_fn notify;         /* may be NULL */
  void *notify_ud;
  struct nn_metrics *metrics; /* may be NULL */
  struct nn_promql_opts promql;
  const char *external_url; /* alert generatorURL prefix; may be NULL */
};

/* Creates an engine without SLOs; load them with nn_slo_reload. NULL on OOM or a bad
 * time_zone (logged). */
struct nn_slo_engine *nn_slo_create(const struct nn_slo_opts *o);
/* Writes a final snapshot, stops the timer and frees everything (with a loop, once libuv
 * closed the timer: the loop must run on). NULL is a no-op. */
void nn_slo_destroy(struct nn_slo_engine *e);
/* Loads the spec files (globs NULL: the configured spec_files) and swaps them in; on error
 * nothing changes and err holds "file:line:col: message". Ledgers and alert state of SLOs
 * whose id and SLI are unchanged carry over; new SLOs start from the snapshot or backfill. */
int nn_slo_reload(struct nn_slo_engine *e, const struct nn_cfg_strlist *globs, char *err,
                  size_t errlen);
/* As reload, taking ownership of an already loaded set (on success and failure). */
int nn_slo_reload_set(struct nn_slo_engine *e, struct nn_slo_set *set, char *err, size_t errlen);
/* Runs one evaluation at ts (ms, aligned down to the interval), exactly as the timer does:
 * replay or backfill of missing intervals, the SLI queries, ledger update, series, alerts. */
int nn_slo_eval_at(struct nn_slo_engine *e, int64_t ts);
/* Writes the ledger snapshot now (no-op without persistence). */
int nn_slo_snapshot(struct nn_slo_engine *e);

/* GET /api/v1/slos response body ({"status":"success","data":{...}}); ud is the engine. */
int nn_slo_json(void *ud, struct nn_buf *out);
/* The SLO alerts (pending and firing) as a JSON array of Prometheus /api/v1/alerts alert
 * objects, for the web layer to merge into /api/v1/alerts; ud is the engine. */
int nn_slo_json_alerts(void *ud, struct nn_buf *out);

/* Window values of one SLO at the last evaluation, for tests and tools. NaN = no data. */
struct nn_slo_status {
  const char *id;
  double objective;      /* ratio, e.g. 0.999 */
  double error_ratio[8]; /* 5m 30m 1h 2h 6h 1d 3d period */
  double bad_period, total_period;
  double budget_remaining;   /* 1 - period burn rate */
  double time_to_exhaustion; /* seconds; +Inf when not burning */
  const char *status;        /* ok | at_risk | breached | no_data */
  bool page_firing, ticket_firing, no_data_firing;
  int budget_alert; /* 0, 80 or 95: the budget-consumed alert firing */
};
/* Fills out for the SLO with that sloth_id; NN_ENOTFOUND when there is none. */
int nn_slo_get_status(const struct nn_slo_engine *e, const char *id, struct nn_slo_status *out);

struct nn_slo_stats {
  size_t slos;
  uint64_t evaluations_total, evaluation_failures_total, query_failures_total;
  uint64_t snapshots_total, snapshot_failures_total, backfilled_intervals_total;
  uint64_t reloads_total, reload_failures_total;
  size_t alerts_firing, alerts_pending;
  size_t ledger_bytes; /* memory held by all ledgers */
};
void nn_slo_stats(const struct nn_slo_engine *e, struct nn_slo_stats *out);

/* Benchmark hook: builds n synthetic ledgers (30-day period, filled with a day of data)
 * and times `iterations` evaluation cycles of the ledger maths only (every window, burn
 * rates, alert conditions; no PromQL, no writes). Returns nanoseconds per cycle (all n
 * SLOs), or a negative NN_E* code. */
double nn_slo_bench(size_t n_slos, size_t iterations);

#endif
