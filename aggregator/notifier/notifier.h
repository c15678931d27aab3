/* SPDX-License-Identifier: Apache-2.0 */
/* Sends alerts to Alertmanager (API v2, POST <url>/api/v2/alerts) with the Prometheus
 * notifier's semantics: every alert goes to every configured Alertmanager, each through its
 * own bounded queue (oldest dropped first, counted), in batches, with no retry (the rules
 * engine re-sends on its own cadence). External labels are added when absent. */
#ifndef NN_AGGREGATOR_NOTIFIER_NOTIFIER_H
#define NN_AGGREGATOR_NOTIFIER_NOTIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/labels.h"

struct uv_loop_s;
struct nn_metrics;
struct nn_notifier;

/* One alert as handed to the notifier. Everything is copied during nn_notifier_send. */
struct nn_notifier_alert {
  const struct nn_label *labels; /* the alert's labels (alertname included) */
  size_t nlabels;
  const struct nn_label *annotations; /* none: omitted from the payload */
  size_t nannotations;
  int64_t starts_at_ms;      /* FiredAt; 0 leaves startsAt out */
  int64_t ends_at_ms;        /* ResolvedAt, or ValidUntil while firing; 0 leaves endsAt out */
  const char *generator_url; /* NULL or "": left out */
};

/* One `alertmanagers:` entry. */
struct nn_notifier_am_config {
  char *url;          /* base URL; "/api/v2/alerts" is appended */
  int64_t timeout_ms; /* per POST; default 10s */
};

struct nn_notifier_config {
  struct nn_cfg_list alertmanagers; /* of struct nn_notifier_am_config */
  int64_t queue_capacity;           /* alerts per Alertmanager queue; default 10000 */
  int64_t batch_size;               /* alerts per POST; default 256 */
  int64_t drain_timeout_ms;         /* how long stop waits for queues to drain; default 10s */
};

/* Option table for struct nn_notifier_config (alertmanagers, queue_capacity, batch_size,
 * drain_timeout), for embedding in the aggregator's configuration. */
extern const struct nn_cfg_option nn_notifier_config_options[];

struct nn_notifier_opts {
  struct uv_loop_s *loop;
  const struct nn_notifier_config *cfg;        /* copied */
  const struct nn_cfg_strmap *external_labels; /* copied; may be NULL */
  struct nn_metrics *metrics;                  /* may be NULL */
  const char *user_agent;                      /* NULL: "nines/<version>" */
};

/* Creates the notifier and its HTTP client on loop. NULL on out-of-memory or when a URL is
 * empty (logged). */
struct nn_notifier *nn_notifier_create(const struct nn_notifier_opts *o);
/* Queues copies of the alerts for every Alertmanager and starts sending. When a queue is
 * full the oldest alerts are dropped (counted). Loop thread only. */
void nn_notifier_send(struct nn_notifier *n, const struct nn_notifier_alert *alerts, size_t count);
/* nn_notifier_send in the shape of the rules engine's notify callback (ud is the notifier). */
void nn_notifier_notify(void *ud, const struct nn_notifier_alert *alerts, size_t count);
/* Stops accepting alerts and keeps sending until every queue is empty or drain_timeout
 * passed, then calls on_done(ud) from the loop (never from inside this call). */
void nn_notifier_stop(struct nn_notifier *n, void (*on_done)(void *ud), void *ud);
/* Cancels what is in flight and frees the notifier once libuv closed its handles (the loop
 * must run on). NULL is a no-op. */
void nn_notifier_destroy(struct nn_notifier *n);

struct nn_notifier_am_stats {
  const char *url;
  uint64_t sent;    /* alerts in batches that got a 2xx */
  uint64_t errors;  /* alerts in batches that failed */
  uint64_t dropped; /* alerts dropped: failed batches and queue overflow */
  uint64_t batches;
  size_t queue_length;
  double last_latency_seconds;
};

/* Number of Alertmanagers; stats of the i-th (0 <= i < count). */
size_t nn_notifier_am_count(const struct nn_notifier *n);
int nn_notifier_am_stats(const struct nn_notifier *n, size_t i, struct nn_notifier_am_stats *out);

/* Formats ms since the epoch as Go's time.Time JSON (RFC3339Nano, UTC, trailing zeros of
 * the fraction dropped: "2024-01-02T03:04:05.12Z"). Returns the length (buf of >= 40). */
size_t nn_notifier_format_time(int64_t ms, char *buf, size_t len);

#endif
