/* SPDX-License-Identifier: Apache-2.0 */
/* The rule engine: loads Prometheus rule files unchanged, evaluates each group on the loop
 * at aligned timestamps, writes recording-rule results and ALERTS / ALERTS_FOR_STATE back
 * into the head, runs the alert state machine (pending, firing, keep_firing_for, resolved
 * kept 15 minutes) and decides when alerts go to the notifier. Loop thread only. */
#ifndef NN_AGGREGATOR_RULES_RULES_H
#define NN_AGGREGATOR_RULES_RULES_H

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
struct nn_rules;

struct nn_rules_config {
  struct nn_cfg_strlist rule_files;     /* globs */
  int64_t evaluation_interval_ms;       /* default group interval; default 1m */
  int64_t resend_delay_ms;              /* default 1m */
  struct nn_cfg_strmap external_labels; /* $externalLabels in templates */
  char *external_url;                   /* generatorURL prefix; default "" */
  int64_t for_outage_tolerance_ms;      /* default 1h */
  int64_t for_grace_period_ms;          /* default 10m */
};

/* Option table for struct nn_rules_config, for embedding in the aggregator's config. */
extern const struct nn_cfg_option nn_rules_config_options[];

/* Called with the alerts due after a rule's evaluation (shape of nn_notifier_notify). The
 * array is valid only during the call. */
typedef void (*nn_rules_notify_fn)(void *ud, const struct nn_notifier_alert *alerts, size_t n);

struct nn_rules_opts {
  struct uv_loop_s *loop;            /* NULL: no timers; drive evaluation with nn_rules_eval_at */
  struct nn_tsdb *db;                /* queried, and written back to (required) */
  const struct nn_rules_config *cfg; /* copied */
  nn_rules_notify_fn notify;         /* may be NULL */
  void *notify_ud;
  struct nn_metrics *metrics; /* may be NULL */
  struct nn_promql_opts promql;
};

/* Creates an engine with no rules; load them with nn_rules_reload. NULL on OOM. */
struct nn_rules *nn_rules_create(const struct nn_rules_opts *o);
/* Stops the timers and frees everything once libuv closed them (the loop must run on when
 * a loop was given). NULL is a no-op. */
void nn_rules_destroy(struct nn_rules *r);

/* Loads every file matched by the globs (NULL: the configured rule_files) and swaps them in
 * atomically: on any error nothing changes, the old rules stay, and err holds
 * "file:line:col: message". Alert state is carried over for alerting rules of the same
 * group (name and file) with the same name, labels, annotations-free identity and query.
 * Starts group timers when a loop was given. */
int nn_rules_reload(struct nn_rules *r, const struct nn_cfg_strlist *globs, char *err,
                    size_t errlen);
/* Replaces the programmatic groups of source (e.g. "slo") with the groups in yaml, a rule
 * file text (named source in positions and in the API's "file"). Same atomicity as reload.
 * An empty text removes the source's groups. */
int nn_rules_set_generated(struct nn_rules *r, const char *source, const char *yaml, size_t len,
                           char *err, size_t errlen);
/* Validates rule files without an engine (--check-config). */
int nn_rules_check_files(const struct nn_cfg_strlist *globs, char *err, size_t errlen);
/* Validates one rule file text. */
int nn_rules_check_string(const char *name, const char *text, size_t len, char *err, size_t errlen);

/* Evaluates every group whose evaluation timestamp is ts (ms), or every group when
 * all_groups is set, exactly as the timer would. For tests and tools. */
int nn_rules_eval_at(struct nn_rules *r, int64_t ts, bool all_groups);
/* Evaluation timestamp Prometheus uses for a group at wall time now_ms (start of the
 * current slot: multiples of interval plus an offset hashed from name and file). */
int64_t nn_rules_group_eval_ts(const char *name, const char *file, int64_t interval_ms,
                               int64_t now_ms);

/* /api/v1/rules and /api/v1/alerts "data" values (nn_web_json_fn; ud is the engine). */
int nn_rules_json_rules(void *ud, struct nn_buf *out);
int nn_rules_json_alerts(void *ud, struct nn_buf *out);

struct nn_rules_stats {
  size_t groups, rules;
  size_t alerts_pending, alerts_firing;
  uint64_t evaluations_total, evaluation_failures_total, iterations_missed_total;
  uint64_t reloads_total, reload_failures_total;
  int64_t last_reload_ms;
  bool last_reload_ok;
};
void nn_rules_stats(const struct nn_rules *r, struct nn_rules_stats *out);

#endif
