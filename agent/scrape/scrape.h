/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus-compatible scraping on the agent's libuv loop: scrape_configs (static,
 * file_sd and Kubernetes pod discovery), target relabeling, one timer per target with
 * Prometheus's spread of start offsets, text/OpenMetrics parsing, honor_labels,
 * metric_relabel_configs, limits, the synthetic up/scrape_* series and staleness markers.
 * Each scrape ends in one batch handed to a sink (the shipper). Loop thread only. */
#ifndef NN_AGENT_SCRAPE_SCRAPE_H
#define NN_AGENT_SCRAPE_SCRAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/expfmt/expfmt.h"
#include "agent/relabel/relabel.h"
#include "common/config.h"
#include "common/labels.h"

struct nn_metrics;

/* Value Prometheus writes to end a series (remote write: MUST be sent when a series ends). */
#define NN_SCRAPE_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

struct nn_scrape_static_config {
  struct nn_cfg_strlist targets; /* "host:port" */
  struct nn_cfg_strmap labels;
};

struct nn_scrape_file_sd_config {
  struct nn_cfg_strlist files; /* *.json, *.yml, *.yaml; the last path element may be a glob */
  int64_t refresh_interval_ms; /* default 5m */
};

struct nn_scrape_k8s_sd_config {
  char *role;                 /* only "pod" */
  char *api_server;           /* "" = https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT */
  char *node_name;            /* "" = $NODE_NAME; pods of this node only (all if both unset) */
  char *token_file;           /* service-account token */
  char *ca_file;              /* CA bundle for the API server */
  bool insecure_skip_verify;  /* tests only */
  bool annotations;           /* apply prometheus.io/scrape|port|path|scheme (default true) */
  int64_t resync_interval_ms; /* full re-list period, default 5m */
  int64_t watch_timeout_ms;   /* each watch request's timeoutSeconds, default 1m */
  struct nn_cfg_strlist namespaces; /* empty = all */
};

struct nn_scrape_job_config {
  char *job_name;
  int64_t scrape_interval_ms;  /* 0 = the global one */
  int64_t scrape_timeout_ms;   /* 0 = the global one, capped at the interval */
  char *metrics_path;          /* default /metrics */
  char *scheme;                /* http or https */
  struct nn_cfg_strmap params; /* a key may repeat: params: {module: [a, b]} */
  bool honor_labels;
  bool honor_timestamps; /* default true */
  int64_t sample_limit;  /* 0 = none; more samples fail the scrape */
  int64_t label_limit;
  int64_t label_name_length_limit;
  int64_t label_value_length_limit;
  uint64_t body_size_limit; /* 0 = 64 MiB */
  struct nn_relabel_config relabel_configs;
  struct nn_relabel_config metric_relabel_configs;
  struct nn_cfg_list static_configs;        /* struct nn_scrape_static_config */
  struct nn_cfg_list file_sd_configs;       /* struct nn_scrape_file_sd_config */
  struct nn_cfg_list kubernetes_sd_configs; /* struct nn_scrape_k8s_sd_config */
};

/* The agent's "scrape:" section. */
struct nn_scrape_config {
  int64_t scrape_interval_ms;        /* global default, 1m */
  int64_t scrape_timeout_ms;         /* global default, 10s */
  struct nn_cfg_list scrape_configs; /* struct nn_scrape_job_config */
};

extern const struct nn_cfg_option nn_scrape_config_options[];
extern const struct nn_cfg_option nn_scrape_job_config_options[];

/* Fills in inherited intervals and checks what a table cannot: unique job names, timeout
 * not above interval, known roles and schemes. NN_ECONFIG with a message naming the job. */
int nn_scrape_config_check(struct nn_scrape_config *cfg, char *err, size_t errlen);

/* One sample of a batch. */
struct nn_scrape_sample {
  const void *series; /* the series, for nn_scrape_rw_labels */
  /* The series' labels decoded; only for a sink that asked for them (NULL/0 otherwise). */
  const struct nn_label *labels;
  uint32_t rw_labels_len; /* bytes nn_scrape_rw_labels writes */
  uint32_t nlabels;
  int64_t t_ms;
  double v; /* stale markers carry NN_SCRAPE_STALE_NAN_BITS */
};

struct nn_scrape_meta {
  const char *family;
  enum nn_expfmt_type type;
  const char *help; /* "" when none */
  const char *unit; /* "" when none */
};

/* Everything one scrape produced; valid only during the callback. */
struct nn_scrape_batch {
  const char *job;
  const char *instance;
  const struct nn_scrape_sample *samples; /* scraped, then up & co., then stale markers */
  size_t nsamples;
  const struct nn_scrape_meta *meta; /* families seen in this scrape */
  size_t nmeta;
  int64_t scrape_time_ms;
  bool up;
  const void *target; /* for nn_scrape_rw_labels */
};

/* Writes sample s's labels, canonical (sorted by name, __name__ included), as the
 * TimeSeries.labels fields of remote write to out, which has room for s->rw_labels_len
 * bytes: what a remote-write sender sends as is. During the batch callback only. */
void nn_scrape_rw_labels(const struct nn_scrape_batch *b, const struct nn_scrape_sample *s,
                         void *out);

struct nn_scrape_sink {
  void (*on_batch)(void *ud, const struct nn_scrape_batch *b);
  void *ud;
  bool labels; /* also decode every sample's labels (costs time; tests and debugging) */
};

struct nn_scrape_opts {
  struct nn_metrics *metrics; /* self-metrics registry, or NULL */
  /* The agent's own listen address (HOST:PORT, borrowed), or NULL: a target whose URL is
   * http://<it>/metrics (a wildcard host also matches loopback and this host's interface
   * addresses) is the agent itself, and nn_scrape_push_self feeds it. */
  const char *self_address;
  uint64_t offset_seed; /* mixed into start offsets (Prometheus: external labels hash) */
  size_t max_labels;    /* per sample; 0 = 1024 */
};

struct nn_scrape_stats {
  uint64_t targets_up, targets_down, targets_unknown;
  uint64_t scrapes, scrape_failures, samples_scraped, samples_emitted, stale_markers;
  uint64_t sample_limit_hits, discovery_updates, discovery_errors;
};

struct nn_scrape;

/* Builds the scrapers for cfg (borrowed: it must outlive the object; run
 * nn_scrape_config_check first). NULL on out-of-memory. */
struct nn_scrape *nn_scrape_create(uv_loop_t *loop, const struct nn_scrape_config *cfg,
                                   const struct nn_scrape_opts *opts,
                                   const struct nn_scrape_sink *sink);
/* Starts discovery and the target timers. */
int nn_scrape_start(struct nn_scrape *s);
/* Stops every timer, watch and request; no stale markers are written (a restart is not the
 * end of the series). Handles close asynchronously; destroy afterwards. */
void nn_scrape_stop(struct nn_scrape *s);
/* Frees everything once handles have closed (the loop must keep running). NULL is a no-op. */
void nn_scrape_destroy(struct nn_scrape *s);

void nn_scrape_get_stats(const struct nn_scrape *s, struct nn_scrape_stats *out);

/* Samples the agent made itself and also serves on its /metrics (text format 0.0.4, a subset
 * of those lines, spelt the same), sent now instead of at the next scrape of itself: every
 * target that is the agent (opts.self_address) and is not down gets them as a scrape would
 * (its labels, honor_labels, metric relabeling), in one batch without up & co. and without
 * ending any series. Timestamps are now, kept after the target's last scrape, and its next
 * scrape is timestamped after them, so every series' samples stay in order. Returns the
 * number of targets fed (0: none is the agent), NN_EAGAIN while one is being scraped (its
 * answer could hold older values stamped later; try again shortly), NN_EINVAL when the text
 * does not parse. */
int nn_scrape_push_self(struct nn_scrape *s, const char *text, size_t len);

/* Active targets of job (NULL = all). For status pages and tests. */
size_t nn_scrape_target_count(const struct nn_scrape *s, const char *job);

/* ---- exposed for tests ---- */

/* Prometheus's PopulateLabels: scrape defaults, relabel_configs, port defaulting, instance.
 * in[0..n) are discovered labels (__address__, __meta_*, group labels). On keep, *out holds
 * the final label set (with __ labels, sorted) in storage of capacity cap and returns 1; 0
 * when relabeling dropped the target; NN_EINVAL with err for a bad target. */
int nn_scrape_populate_labels(const struct nn_scrape_job_config *job, const struct nn_label *in,
                              size_t n, struct nn_label *out, size_t *nout, size_t cap,
                              struct nn_relabel_scratch *scratch, char *err, size_t errlen);

#endif
