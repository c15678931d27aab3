/* SPDX-License-Identifier: Apache-2.0 */
/* The scrape manager: one job per scrape config, each fed by discovery providers (static,
 * file_sd, kubernetes_sd). Whenever a provider's target list changes the job is synced as
 * Prometheus's scrapePool.Sync does: targets are identified by the hash of their labels and
 * URL, unchanged targets keep their loop (and their series cache), new ones start, and
 * vanished ones end with stale markers for every series they had. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "agent/scrape/internal.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/units.h"
#include "common/wire.h"

#define TARGET_LABEL_CAP 4096

void nn__scrape_handle_closed(struct nn_scrape *s)
{
  if (s->closing)
    s->closing--;
  if (s->destroy_pending && s->closing == 0) {
    nn_expfmt_parser_destroy(s->parser);
    nn_relabel_scratch_fini(&s->scratch);
    nn_pool_fini(&s->meta_pool);
    nn_pool_fini(&s->label_pool);
    free(s->lab);
    free(s->keybuf);
    free(s->out);
    free(s->meta);
    free(s->jobs);
    free(s);
  }
}

static char *target_key(const struct nn_label *l, size_t n, const char *url, uint64_t *hash)
{
  struct nn_buf b;
  nn_buf_init(&b, SIZE_MAX / 2);
  for (size_t i = 0; i < n; i++) {
    if (nn_buf_append(&b, l[i].name, strlen(l[i].name) + 1) < 0 ||
        nn_buf_append(&b, l[i].value, strlen(l[i].value) + 1) < 0) {
      nn_buf_fini(&b);
      return NULL;
    }
  }
  if (nn_buf_appends(&b, url) < 0) {
    nn_buf_fini(&b);
    return NULL;
  }
  *hash = XXH3_64bits(b.data, b.len);
  return nn_buf_steal(&b, NULL);
}

static struct nn__scrape_target *target_new(struct nn__scrape_job *j, const struct nn_label *l,
                                            size_t n, char *url, uint64_t hash)
{
  size_t pub = 0, bytes = 0;
  for (size_t i = 0; i < n; i++) {
    if (strncmp(l[i].name, "__", 2) == 0)
      continue;
    pub++;
    bytes += strlen(l[i].name) + strlen(l[i].value) + 2;
  }
  struct nn__scrape_target *t = calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  t->labels = malloc(pub * sizeof(*t->labels) + bytes + 1);
  if (!t->labels) {
    free(t);
    return NULL;
  }
  char *p = (char *)(t->labels + pub);
  for (size_t i = 0; i < n; i++) {
    if (strncmp(l[i].name, "__", 2) == 0)
      continue;
    size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
    memcpy(p, l[i].name, a);
    t->labels[t->nlabels].name = p;
    p += a;
    memcpy(p, l[i].value, b);
    t->labels[t->nlabels].value = p;
    p += b;
    t->nlabels++;
  }
  size_t encn = 0;
  for (size_t i = 0; i < t->nlabels; i++)
    encn += nn_wire_rw_label_size(strlen(t->labels[i].name), strlen(t->labels[i].value));
  t->toff = malloc((t->nlabels + 1) * sizeof(*t->toff));
  t->tenc = malloc(encn ? encn : 1);
  if (!t->toff || !t->tenc || encn > UINT32_MAX) {
    free(t->toff);
    free(t->tenc);
    free(t->labels);
    free(t);
    return NULL;
  }
  t->toff[0] = 0;
  for (size_t i = 0; i < t->nlabels; i++)
    t->toff[i + 1] =
        t->toff[i] + (uint32_t)nn_wire_rw_label_put(t->tenc + t->toff[i], t->labels[i].name,
                                                    strlen(t->labels[i].name), t->labels[i].value,
                                                    strlen(t->labels[i].value));
  t->instance = nn_labels_get(t->labels, t->nlabels, "instance");
  if (!t->instance)
    t->instance = "";
  t->job = j;
  t->url = url;
  t->self = nn__scrape_url_is_self(url, j->s->opts.self_address);
  t->hash = hash;
  const char *iv = nn_labels_get(l, n, "__scrape_interval__");
  const char *tv = nn_labels_get(l, n, "__scrape_timeout__");
  if (!iv || nn_duration_parse(iv, strlen(iv), &t->interval_ms) < 0 || t->interval_ms <= 0)
    t->interval_ms = j->cfg->scrape_interval_ms;
  if (!tv || nn_duration_parse(tv, strlen(tv), &t->timeout_ms) < 0 || t->timeout_ms <= 0)
    t->timeout_ms = j->cfg->scrape_timeout_ms;
  return t;
}

static void job_sync(struct nn__scrape_job *j)
{
  struct nn_scrape *s = j->s;
  struct nn_label *tmp = malloc(TARGET_LABEL_CAP * sizeof(*tmp));
  char err[256];
  if (!tmp) {
    nn_error("scrape", "out of memory syncing targets of job %s", j->cfg->job_name);
    return;
  }
  s->stats.discovery_updates++;
  for (struct nn__scrape_target *t = j->targets; t; t = t->next)
    t->keep = false;
  for (size_t pi = 0; pi < j->nproviders; pi++) {
    struct nn__scrape_provider *p = &j->providers[pi];
    for (size_t di = 0; di < p->n; di++) {
      size_t m = 0;
      nn_relabel_scratch_reset(&s->scratch);
      err[0] = '\0';
      int rc = nn_scrape_populate_labels(j->cfg, p->targets[di].labels, p->targets[di].n, tmp, &m,
                                         TARGET_LABEL_CAP, &s->scratch, err, sizeof(err));
      if (rc == 0)
        continue;
      if (rc < 0) {
        s->stats.discovery_errors++;
        const char *addr = nn_labels_get(p->targets[di].labels, p->targets[di].n, "__address__");
        NN_LOG_RL(NN_LOG_WARN, "scrape", "job %s: dropping target %s: %s", j->cfg->job_name,
                  addr ? addr : "?", err[0] ? err : nn_strerror(rc));
        continue;
      }
      char *url = nn__scrape_target_url(j->cfg, tmp, m);
      uint64_t hash;
      char *key = url ? target_key(tmp, m, url, &hash) : NULL;
      free(key);
      if (!key) {
        free(url);
        continue;
      }
      struct nn__scrape_target *t = j->targets;
      while (t && !(t->hash == hash && strcmp(t->url, url) == 0))
        t = t->next;
      if (t) {
        t->keep = true; /* same target: its loop and series carry on */
        free(url);
        continue;
      }
      if (!(t = target_new(j, tmp, m, url, hash))) {
        free(url);
        continue;
      }
      t->keep = true;
      t->next = j->targets;
      j->targets = t;
      j->ntargets++;
      nn__scrape_target_start(t, s->opts.offset_seed);
    }
  }
  struct nn__scrape_target **pp = &j->targets;
  while (*pp) {
    struct nn__scrape_target *t = *pp;
    if (t->keep) {
      pp = &t->next;
      continue;
    }
    *pp = t->next;
    j->ntargets--;
    nn__scrape_target_remove(t, true);
  }
  free(tmp);
}

void nn__scrape_provider_update(struct nn__scrape_provider *p, struct nn__scrape_dtarget *v,
                                size_t n)
{
  nn__scrape_dtargets_free(p->targets, p->n);
  p->targets = v;
  p->n = n;
  if (!p->job->s->stopped)
    job_sync(p->job);
}

static int static_targets(struct nn__scrape_provider *p, const struct nn_scrape_job_config *cfg)
{
  size_t total = 0, k = 0;
  const struct nn_scrape_static_config *sc = cfg->static_configs.items;
  for (size_t i = 0; i < cfg->static_configs.n; i++)
    total += sc[i].targets.n;
  struct nn__scrape_dtarget *v = calloc(total ? total : 1, sizeof(*v));
  if (!v)
    return NN_ENOMEM;
  for (size_t i = 0; i < cfg->static_configs.n; i++) {
    for (size_t j = 0; j < sc[i].targets.n; j++) {
      const char *pairs[2] = {"__address__", sc[i].targets.v[j]};
      if (nn__scrape_dtarget_make(&v[k], pairs, 1, &sc[i].labels) < 0) {
        nn__scrape_dtargets_free(v, k);
        return NN_ENOMEM;
      }
      k++;
    }
  }
  nn__scrape_provider_update(p, v, k);
  return 0;
}

/* Label text for nn_metrics: job="<escaped>",rest. */
static void metric_labels(char *buf, size_t len, const char *job, const char *rest)
{
  size_t o = 0;
  o += (size_t)snprintf(buf, len, "job=\"");
  for (const char *c = job; *c && o + 4 < len; c++) {
    if (*c == '"' || *c == '\\')
      buf[o++] = '\\';
    if (*c == '\n') {
      buf[o++] = '\\';
      buf[o++] = 'n';
      continue;
    }
    buf[o++] = *c;
  }
  snprintf(buf + o, len - o, "\"%s%s", rest[0] ? "," : "", rest);
}

struct nn_scrape *nn_scrape_create(uv_loop_t *loop, const struct nn_scrape_config *cfg,
                                   const struct nn_scrape_opts *opts,
                                   const struct nn_scrape_sink *sink)
{
  struct nn_scrape *s = calloc(1, sizeof(*s));
  if (!s)
    return NULL;
  s->loop = loop;
  s->cfg = cfg;
  if (opts)
    s->opts = *opts;
  if (sink)
    s->sink = *sink;
  nn_relabel_scratch_init(&s->scratch);
  nn_pool_init(&s->meta_pool, 16u << 20);
  nn_pool_init(&s->label_pool, SIZE_MAX / 2);
  s->parser = nn_expfmt_parser_create(s->opts.max_labels);
  s->njobs = cfg->scrape_configs.n;
  s->jobs = calloc(s->njobs ? s->njobs : 1, sizeof(*s->jobs));
  struct nn_http_client_opts ho = {.max_conns_per_host = 2, .max_total_conns = 256};
  s->http = nn_http_client_create(loop, &ho);
  if (!s->parser || !s->jobs || !s->http)
    goto fail;
  const struct nn_scrape_job_config *jc = cfg->scrape_configs.items;
  struct nn_metrics *m = s->opts.metrics;
  if (m) {
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    s->m_duration = nn_metrics_histogram(m, "nines_scrape_duration_seconds",
                                         "Duration of scrapes, failed ones included.", NULL, bounds,
                                         sizeof(bounds) / sizeof(bounds[0]));
  }
  for (size_t i = 0; i < s->njobs; i++) {
    struct nn__scrape_job *j = &s->jobs[i];
    j->s = s;
    j->cfg = &jc[i];
    j->nproviders =
        (jc[i].static_configs.n ? 1 : 0) + jc[i].file_sd_configs.n + jc[i].kubernetes_sd_configs.n;
    j->providers = calloc(j->nproviders ? j->nproviders : 1, sizeof(*j->providers));
    if (!j->providers)
      goto fail;
    for (size_t k = 0; k < j->nproviders; k++)
      j->providers[k].job = j;
    if (m) {
      char lb[600];
      const char *th = "Scrape targets by job and health.";
      metric_labels(lb, sizeof(lb), jc[i].job_name, "health=\"up\"");
      j->m_up = nn_metrics_gauge(m, "nines_scrape_targets", th, lb);
      metric_labels(lb, sizeof(lb), jc[i].job_name, "health=\"down\"");
      j->m_down = nn_metrics_gauge(m, "nines_scrape_targets", th, lb);
      metric_labels(lb, sizeof(lb), jc[i].job_name, "health=\"unknown\"");
      j->m_unknown = nn_metrics_gauge(m, "nines_scrape_targets", th, lb);
      metric_labels(lb, sizeof(lb), jc[i].job_name, "");
      j->m_scrapes = nn_metrics_counter(m, "nines_scrapes_total", "Scrapes attempted.", lb);
      j->m_failures =
          nn_metrics_counter(m, "nines_scrape_failures_total", "Scrapes that failed (up=0).", lb);
      j->m_samples = nn_metrics_counter(m, "nines_scrape_samples_scraped_total",
                                        "Samples parsed from scrape responses.", lb);
      j->m_limit_hits = nn_metrics_counter(m, "nines_scrape_sample_limit_hits_total",
                                           "Scrapes failed by sample_limit.", lb);
    }
  }
  return s;
fail:
  for (size_t i = 0; s->jobs && i < s->njobs; i++)
    free(s->jobs[i].providers);
  nn_http_client_destroy(s->http);
  s->http = NULL;
  s->destroy_pending = true;
  s->closing = 1;
  nn__scrape_handle_closed(s);
  return NULL;
}

int nn_scrape_start(struct nn_scrape *s)
{
  int rc = 0;
  for (size_t i = 0; i < s->njobs; i++) {
    struct nn__scrape_job *j = &s->jobs[i];
    const struct nn_scrape_job_config *c = j->cfg;
    size_t k = 0;
    if (c->static_configs.n && (rc = static_targets(&j->providers[k++], c)) < 0)
      return rc;
    const struct nn_scrape_file_sd_config *fs = c->file_sd_configs.items;
    for (size_t x = 0; x < c->file_sd_configs.n; x++)
      if ((rc = nn__scrape_file_sd_start(&j->providers[k++], &fs[x])) < 0)
        return rc;
    const struct nn_scrape_k8s_sd_config *ks = c->kubernetes_sd_configs.items;
    for (size_t x = 0; x < c->kubernetes_sd_configs.n; x++)
      if ((rc = nn__scrape_k8s_sd_start(&j->providers[k++], &ks[x])) < 0)
        return rc;
  }
  return 0;
}

void nn_scrape_stop(struct nn_scrape *s)
{
  if (!s || s->stopped)
    return;
  s->stopped = true;
  for (size_t i = 0; i < s->njobs; i++) {
    struct nn__scrape_job *j = &s->jobs[i];
    for (size_t k = 0; k < j->nproviders; k++) {
      if (j->providers[k].stop)
        j->providers[k].stop(j->providers[k].impl);
      j->providers[k].stop = NULL;
    }
    while (j->targets) {
      struct nn__scrape_target *t = j->targets;
      j->targets = t->next;
      j->ntargets--;
      nn__scrape_target_remove(t, false);
    }
  }
  /* Cancels in-flight scrapes: their callbacks run now and free removed targets. */
  nn_http_client_destroy(s->http);
  s->http = NULL;
}

void nn_scrape_destroy(struct nn_scrape *s)
{
  if (!s)
    return;
  nn_scrape_stop(s);
  for (size_t i = 0; i < s->njobs; i++) {
    struct nn__scrape_job *j = &s->jobs[i];
    for (size_t k = 0; k < j->nproviders; k++)
      nn__scrape_dtargets_free(j->providers[k].targets, j->providers[k].n);
    free(j->providers);
    j->providers = NULL;
    j->nproviders = 0;
  }
  s->destroy_pending = true;
  s->closing++;
  nn__scrape_handle_closed(s);
}

void nn_scrape_get_stats(const struct nn_scrape *s, struct nn_scrape_stats *out)
{
  *out = s->stats;
}

size_t nn_scrape_target_count(const struct nn_scrape *s, const char *job)
{
  size_t n = 0;
  for (size_t i = 0; i < s->njobs; i++)
    if (!job || strcmp(job, s->jobs[i].cfg->job_name) == 0)
      n += s->jobs[i].ntargets;
  return n;
}
