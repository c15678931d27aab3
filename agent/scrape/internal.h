/* SPDX-License-Identifier: Apache-2.0 */
/* Private to agent/scrape: jobs, targets, the per-target series cache and the discovery
 * providers that feed a job its target list. */
#ifndef NN_AGENT_SCRAPE_INTERNAL_H
#define NN_AGENT_SCRAPE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/scrape/scrape.h"
#include "common/http_client.h"
#include "common/pool.h"

struct nn_metric;

/* A discovered target: labels before relabeling, in one allocation with its strings. */
struct nn__scrape_dtarget {
  struct nn_label *labels;
  size_t n;
};

/* One series a target has produced. Its labels are kept as remote write encodes them
 * (TimeSeries.labels fields, sorted by name), which is also its identity and what the
 * shipper sends, so a repeated scrape encodes nothing; nn_scrape_rw_labels expands these
 * shorter forms of a field:
 *   {0, k}                   the target's own label k (job, instance, discovery labels)
 *   {1, n, len, value...}    name n of the target's names dictionary, a value under 128 bytes
 *   {2, lo, hi}              entry lo | hi << 8 of its __name__ dictionary
 * 31 bytes plus the stored labels. */
struct nn__scrape_series {
  struct nn__scrape_series *next; /* hash chain */
  uint32_t seen;                  /* scrape iteration that last saw it */
  uint32_t enc_len;               /* bytes of enc */
  uint32_t full_len;              /* bytes once expanded */
  uint32_t check;                 /* of the series text whose raw slot points here */
  bool live;    /* emitted by the last successful scrape: ending it needs a stale marker */
  bool report;  /* one of up & co. */
  bool dead;    /* swept, freed once the batch is out */
  bool has_raw; /* a raw slot points here (other spellings of it take the slow path) */
  bool pushed;  /* in the batch nn_scrape_push_self is building */
  char enc[];
};

/* An append-only dictionary of byte strings with a hash index, per target: label names,
 * and whole encoded __name__ labels, which every series of a family repeats. Entry i is
 * bytes[off[i] .. off[i + 1]). */
struct nn__scrape_dict {
  uint8_t *bytes;
  size_t len, cap;
  uint32_t *off; /* n + 1 offsets */
  size_t n, offcap, max;
  uint32_t *slots; /* entry index + 1, linear probing */
  size_t nslots;
};

struct nn__scrape_cache {
  struct nn__scrape_series **buckets;
  size_t nbuckets, n;
};

/* A slot of the per-target index from series text as the exposition writes it to its
 * series, so a repeated line skips label parsing, relabeling and encoding. A text is known
 * by 96 bits of its 128-bit hash: h0 here, and 32 more (check) in its series, or for text
 * whose sample metric relabeling drops, in v: (check << 32 | iteration << 2 | 1). v is 0
 * for an empty slot, RAW_TOMB for a deleted one, else a series pointer. 16 bytes. */
struct nn__scrape_raw {
  uint64_t h0;
  uint64_t v;
};

struct nn__scrape_rawtab {
  struct nn__scrape_raw *slots;
  size_t cap, used, tombs, dropped;
};

struct nn__scrape_job;

struct nn__scrape_target {
  struct nn__scrape_job *job;
  struct nn__scrape_target *next; /* in the job's list */
  uint64_t hash;
  struct nn_label *labels; /* public labels (no __ ones), sorted, with job and instance */
  size_t nlabels;
  /* labels[k] as a TimeSeries.labels field is tenc[toff[k] .. toff[k + 1]) */
  uint8_t *tenc;
  uint32_t *toff;
  struct nn__scrape_dict names, metric_names;
  char *mem; /* storage of labels */
  char *url;
  const char *instance;
  int64_t interval_ms, timeout_ms;
  uv_timer_t timer;
  bool timer_open, inflight, removed, keep; /* keep: seen in the current sync */
  bool self;                                /* the agent's own /metrics */
  int health;                               /* -1 unknown, 0 down, 1 up */
  uint32_t iter;
  int64_t start_wall_ms;
  int64_t push_ms; /* timestamp of the last nn_scrape_push_self batch, 0 none */
  uint64_t start_mono_ns;
  struct nn__scrape_cache cache;
  struct nn__scrape_rawtab raw;
  struct nn__scrape_series *report[5];
  char last_error[320];
};

/* A discovery provider's current targets; kind-specific state lives in the provider. */
struct nn__scrape_provider {
  struct nn__scrape_job *job;
  struct nn__scrape_dtarget *targets;
  size_t n;
  void *impl;
  void (*stop)(void *impl);
};

struct nn__scrape_job {
  struct nn_scrape *s;
  const struct nn_scrape_job_config *cfg;
  struct nn__scrape_provider *providers;
  size_t nproviders;
  struct nn__scrape_target *targets;
  size_t ntargets;
  struct nn_metric *m_up, *m_down, *m_unknown, *m_scrapes, *m_failures, *m_samples, *m_limit_hits;
};

struct nn_scrape {
  uv_loop_t *loop;
  const struct nn_scrape_config *cfg;
  struct nn_scrape_opts opts;
  struct nn_scrape_sink sink;
  struct nn_http_client *http;
  struct nn__scrape_job *jobs;
  size_t njobs;
  bool stopped;
  size_t closing; /* handles still closing */
  bool destroy_pending;
  struct nn_scrape_stats stats;
  struct nn_metric *m_duration;

  /* Per-scrape working state, shared by all targets (one loop thread). */
  struct nn_expfmt_parser *parser;
  struct nn_label *lab;
  size_t labcap;
  struct nn_relabel_scratch scratch;
  char *keybuf;
  size_t keycap;
  size_t batch_n; /* scraped samples at the start of out */
  struct nn_scrape_sample *out;
  size_t out_cap;
  struct nn_pool label_pool; /* decoded labels for a sink that wants them */
  struct nn_pool meta_pool;
  struct nn_scrape_meta *meta;
  size_t nmeta, meta_cap;
};

/* Replaces provider p's targets (takes ownership of v, an array of n) and resyncs the job. */
void nn__scrape_provider_update(struct nn__scrape_provider *p, struct nn__scrape_dtarget *v,
                                size_t n);
void nn__scrape_dtargets_free(struct nn__scrape_dtarget *v, size_t n);
/* Builds a discovered target from a NULL-terminated list of name/value pairs plus extra
 * pairs from a strmap (may be NULL; earlier names win). Returns 0 or NN_ENOMEM. */
int nn__scrape_dtarget_make(struct nn__scrape_dtarget *t, const char *const *pairs, size_t npairs,
                            const struct nn_cfg_strmap *extra);

int nn__scrape_file_sd_start(struct nn__scrape_provider *p,
                             const struct nn_scrape_file_sd_config *cfg);
int nn__scrape_k8s_sd_start(struct nn__scrape_provider *p,
                            const struct nn_scrape_k8s_sd_config *cfg);
/* Parses a file_sd document (JSON or YAML by extension) into targets with __meta_filepath. */
int nn__scrape_file_sd_parse(const char *path, const char *text, size_t len,
                             struct nn__scrape_dtarget **out, size_t *n, char *err, size_t errlen);
/* Turns a Kubernetes Pod (jansson object) into targets as Prometheus's pod role does. */
struct json_t;
int nn__scrape_k8s_pod_targets(const struct json_t *pod, bool annotations,
                               struct nn__scrape_dtarget **out, size_t *n);

/* Target lifecycle (loop.c). */
void nn__scrape_target_start(struct nn__scrape_target *t, uint64_t seed);
/* Emits stale markers for every live series, then stops and frees the target once its
 * request and timer are done. */
void nn__scrape_target_remove(struct nn__scrape_target *t, bool stale);
int64_t nn__scrape_now_ms(void);
/* A handle counted in s->closing has closed; frees s when it was the last one and destroy
 * was called. */
void nn__scrape_handle_closed(struct nn_scrape *s);
/* Whether url is the agent's own /metrics, self_address its listen address (NULL: no). */
bool nn__scrape_url_is_self(const char *url, const char *self_address);
/* scheme://address/path?params for final target labels (with __ labels). NULL on OOM. */
char *nn__scrape_target_url(const struct nn_scrape_job_config *job, const struct nn_label *l,
                            size_t n);

#endif
