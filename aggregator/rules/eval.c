/* SPDX-License-Identifier: Apache-2.0 */
/* Rule evaluation: recording rules and the alert state machine as Prometheus's
 * rules/alerting.go and rules/group.go run them. Each rule's results are committed to the
 * head before the next rule runs, so later rules of a group see them; series that vanish
 * get stale markers; alerts due for (re)sending go to the notify callback. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "aggregator/rules/internal.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/urlenc.h"

#define MOD "rules"

static int set_error(struct nn__rule *r, const char *msg)
{
  free(r->last_error);
  r->last_error = strdup(msg);
  r->health = NN__HEALTH_ERR;
  return NN_EINVAL;
}

/* ---- label set building ---- */

/* A scratch label set: Prometheus's labels.Builder (set with "" deletes). Strings are
 * borrowed from the sample, the rule or the owner of `own`. */
struct builder {
  struct nn_label *v;
  size_t n, cap;
};

static int b_set(struct builder *b, const char *name, const char *value)
{
  for (size_t i = 0; i < b->n; i++)
    if (strcmp(b->v[i].name, name) == 0) {
      if (!value || !value[0]) {
        b->v[i] = b->v[--b->n];
        return 0;
      }
      b->v[i].value = value;
      return 0;
    }
  if (!value || !value[0])
    return 0;
  if (b->n == b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 16;
    struct nn_label *nv = realloc(b->v, nc * sizeof(*nv));
    if (!nv)
      return NN_ENOMEM;
    b->v = nv;
    b->cap = nc;
  }
  b->v[b->n].name = name;
  b->v[b->n].value = value;
  b->n++;
  return 0;
}

static int b_reset(struct builder *b, const struct nn_label *v, size_t n)
{
  b->n = 0;
  for (size_t i = 0; i < n; i++)
    if (b_set(b, v[i].name, v[i].value) < 0)
      return NN_ENOMEM;
  return 0;
}

static int cmp_label(const void *a, const void *b)
{
  return strcmp(((const struct nn_label *)a)->name, ((const struct nn_label *)b)->name);
}

static void b_sort(struct builder *b)
{
  qsort(b->v, b->n, sizeof(*b->v), cmp_label);
}

static int cmp_lset(const void *a, const void *b)
{
  const struct nn__lset *x = a, *y = b;
  if (x->hash != y->hash)
    return x->hash < y->hash ? -1 : 1;
  return nn_labels_cmp(x->v, x->n, y->v, y->n);
}

/* ---- writing samples ---- */

struct writer {
  struct nn_rules *r;
  struct nn__rule *rule;
  struct nn_tsdb_appender *app;
  struct nn__lset *series; /* written this evaluation (for stale markers next time) */
  size_t n, cap;
  uint64_t failed;
  int first_err;
};

static void w_append(struct writer *w, struct builder *b, int64_t t, double v)
{
  b_sort(b);
  int rc = nn_tsdb_appender_append(w->app, b->v, b->n, t, v, NULL);
  if (rc < 0) {
    w->failed++;
    if (!w->first_err)
      w->first_err = rc;
    return;
  }
  if (w->n == w->cap) {
    size_t nc = w->cap ? w->cap * 2 : 16;
    struct nn__lset *nv = realloc(w->series, nc * sizeof(*nv));
    if (!nv) {
      w->failed++;
      return;
    }
    w->series = nv;
    w->cap = nc;
  }
  if (nn__lset_copy(&w->series[w->n], b->v, b->n) == 0)
    w->n++;
}

/* Commits, marks stale what the previous evaluation wrote and this one did not, and keeps
 * this evaluation's series for next time. */
static void w_finish(struct writer *w, int64_t t)
{
  struct nn__rule *rule = w->rule;
  if (w->n > 1)
    qsort(w->series, w->n, sizeof(*w->series), cmp_lset);
  for (size_t i = 0; i < rule->nprev; i++) {
    if (w->n && bsearch(&rule->prev_series[i], w->series, w->n, sizeof(*w->series), cmp_lset))
      continue;
    int rc = nn_tsdb_appender_append(w->app, rule->prev_series[i].v, rule->prev_series[i].n, t,
                                     nn_stale_nan_value(), NULL);
    if (rc < 0 && rc != NN_EOUTOFORDER && rc != NN_EDUPLICATE)
      w->failed++;
  }
  int rc = nn_tsdb_appender_commit(w->app);
  if (rc < 0)
    NN_LOG_RL(NN_LOG_WARN, MOD, "rule \"%s\": committing results failed: %s", rule->name,
              nn_strerror(rc));
  if (w->failed)
    NN_LOG_RL(NN_LOG_WARN, MOD, "rule \"%s\": %llu samples not appended (first error: %s)",
              rule->name, (unsigned long long)w->failed, nn_strerror(w->first_err));
  for (size_t i = 0; i < rule->nprev; i++)
    nn__lset_fini(&rule->prev_series[i]);
  free(rule->prev_series);
  rule->prev_series = w->series;
  rule->nprev = w->n;
  w->series = NULL;
  w->n = w->cap = 0;
}

void nn__rule_mark_stale(struct nn_rules *r, struct nn__rule *rule, int64_t t)
{
  if (!rule->nprev || !r->o.db)
    return;
  struct nn_tsdb_appender *app = nn_tsdb_appender_create(r->o.db);
  if (!app)
    return;
  for (size_t i = 0; i < rule->nprev; i++)
    nn_tsdb_appender_append(app, rule->prev_series[i].v, rule->prev_series[i].n, t,
                            nn_stale_nan_value(), NULL);
  nn_tsdb_appender_commit(app);
  nn_tsdb_appender_destroy(app);
}

/* ---- querying ---- */

/* Runs the rule's query at t: a vector, or a scalar turned into one label-less sample
 * (Prometheus's EngineQueryFunc). */
static int run_query(struct nn_rules *r, struct nn__rule *rule, int64_t t,
                     struct nn_promql_result *res)
{
  struct nn_promql_error perr;
  memset(res, 0, sizeof(*res));
  int rc = nn_promql_eval_instant(&r->q, rule->expr, t, &r->o.promql, res, &perr);
  if (rc < 0) {
    if (rc == NN_ENOMEM)
      return set_error(rule, "out of memory");
    return set_error(rule, perr.msg[0] ? perr.msg : nn_strerror(rc));
  }
  if (res->type == NN_PROMQL_SCALAR) {
    double v = res->scalar;
    nn_promql_result_fini(res);
    memset(res, 0, sizeof(*res));
    res->type = NN_PROMQL_VECTOR;
    res->series = calloc(1, sizeof(*res->series));
    int64_t *ts = malloc(sizeof(*ts));
    double *vs = malloc(sizeof(*vs));
    if (!res->series || !ts || !vs) {
      free(res->series);
      free(ts);
      free(vs);
      res->series = NULL;
      return set_error(rule, "out of memory");
    }
    ts[0] = t;
    vs[0] = v;
    res->series[0].t = ts;
    res->series[0].v = vs;
    res->series[0].n = 1;
    res->nseries = 1;
    res->priv = (void *)1; /* freed by free_scalar_vector */
    return 0;
  }
  if (res->type != NN_PROMQL_VECTOR) {
    nn_promql_result_fini(res);
    memset(res, 0, sizeof(*res));
    return set_error(rule, "rule result is not a vector or scalar");
  }
  return 0;
}

static void result_fini(struct nn_promql_result *res)
{
  if (res->priv == (void *)1) {
    free(res->series[0].t);
    free(res->series[0].v);
    free(res->series);
    memset(res, 0, sizeof(*res));
    return;
  }
  nn_promql_result_fini(res);
}

/* ---- recording rules ---- */

static int eval_recording(struct nn_rules *r, struct nn__group *g, struct nn__rule *rule,
                          int64_t ts, struct writer *w)
{
  struct nn_promql_result res;
  int64_t qt = ts - g->query_offset_ms;
  int rc = run_query(r, rule, qt, &res);
  if (rc < 0)
    return rc;
  struct builder b = {0};
  struct nn__lset *keys = calloc(res.nseries ? res.nseries : 1, sizeof(*keys));
  if (!keys) {
    rc = set_error(rule, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < res.nseries; i++) {
    if ((rc = b_reset(&b, res.series[i].labels, res.series[i].nlabels)) < 0 ||
        (rc = b_set(&b, "__name__", rule->name)) < 0)
      goto oom;
    for (size_t j = 0; j < rule->labels.n; j++)
      if ((rc = b_set(&b, rule->labels.v[j].name, rule->labels.v[j].value)) < 0)
        goto oom;
    b_sort(&b);
    if ((rc = nn__lset_copy(&keys[i], b.v, b.n)) < 0)
      goto oom;
  }
  if (res.nseries > 1) {
    struct nn__lset *sorted = malloc(res.nseries * sizeof(*sorted));
    if (!sorted)
      goto oom;
    memcpy(sorted, keys, res.nseries * sizeof(*sorted));
    qsort(sorted, res.nseries, sizeof(*sorted), cmp_lset);
    bool dup = false;
    for (size_t i = 1; i < res.nseries && !dup; i++)
      dup = cmp_lset(&sorted[i - 1], &sorted[i]) == 0;
    free(sorted);
    if (dup) {
      rc = set_error(rule,
                     "vector contains metrics with the same labelset after applying rule labels");
      goto out;
    }
  }
  if (g->limit > 0 && res.nseries > (size_t)g->limit) {
    char msg[128];
    snprintf(msg, sizeof(msg), "exceeded limit of %lld with %zu series", (long long)g->limit,
             res.nseries);
    rc = set_error(rule, msg);
    goto out;
  }
  for (size_t i = 0; i < res.nseries; i++) {
    b.n = 0;
    for (size_t j = 0; j < keys[i].n; j++)
      b_set(&b, keys[i].v[j].name, keys[i].v[j].value);
    w_append(w, &b, res.series[i].t[0], res.series[i].v[0]);
  }
  rc = 0;
  goto out;
oom:
  rc = set_error(rule, "out of memory");
out:
  if (keys)
    for (size_t i = 0; i < res.nseries; i++)
      nn__lset_fini(&keys[i]);
  free(keys);
  free(b.v);
  result_fini(&res);
  return rc;
}

/* ---- alerting rules ---- */

/* Open-addressing index from label-set hash to position in rule->alerts. */
struct index {
  size_t *slot; /* position + 1; 0 = empty */
  size_t mask;
};

static int index_build(struct index *ix, struct nn__rule *rule, size_t extra)
{
  size_t want = (rule->nalerts + extra) * 2 + 8, cap = 16;
  while (cap < want)
    cap <<= 1;
  if (!(ix->slot = calloc(cap, sizeof(*ix->slot))))
    return NN_ENOMEM;
  ix->mask = cap - 1;
  for (size_t i = 0; i < rule->nalerts; i++) {
    size_t h = (size_t)rule->alerts[i]->labels.hash & ix->mask;
    while (ix->slot[h])
      h = (h + 1) & ix->mask;
    ix->slot[h] = i + 1;
  }
  return 0;
}

static ssize_t index_find(const struct index *ix, struct nn__rule *rule, const struct nn__lset *l)
{
  size_t h = (size_t)l->hash & ix->mask;
  while (ix->slot[h]) {
    struct nn__alert *a = rule->alerts[ix->slot[h] - 1];
    if (a->labels.hash == l->hash && nn_labels_cmp(a->labels.v, a->labels.n, l->v, l->n) == 0)
      return (ssize_t)ix->slot[h] - 1;
    h = (h + 1) & ix->mask;
  }
  return -1;
}

static void index_add(struct index *ix, uint64_t hash, size_t pos)
{
  size_t h = (size_t)hash & ix->mask;
  while (ix->slot[h])
    h = (h + 1) & ix->mask;
  ix->slot[h] = pos + 1;
}

static int alerts_push(struct nn__rule *rule, struct nn__alert *a)
{
  if (rule->nalerts == rule->alerts_cap) {
    size_t nc = rule->alerts_cap ? rule->alerts_cap * 2 : 8;
    struct nn__alert **nv = realloc(rule->alerts, nc * sizeof(*nv));
    if (!nv)
      return NN_ENOMEM;
    rule->alerts = nv;
    rule->alerts_cap = nc;
  }
  rule->alerts[rule->nalerts++] = a;
  return 0;
}

/* Expands the rule's templated labels and annotations for one sample into a. */
static int build_alert(struct nn_rules *r, struct nn__rule *rule, const struct nn_promql_series *s,
                       struct nn__alert *a)
{
  int rc = 0;
  char tname[300];
  snprintf(tname, sizeof(tname), "__alert_%s", rule->name);
  struct nn__tmpl_data d = {.labels = s->labels,
                            .nlabels = s->nlabels,
                            .ext = r->ext,
                            .next = r->next,
                            .ext_url = r->cfg.external_url,
                            .value = s->v[0]};
  size_t nl = rule->labels.n, na = rule->annotations.n;
  char **lv = calloc(nl + 1, sizeof(*lv)), **av = calloc(na + 1, sizeof(*av));
  struct builder b = {0};
  if (!lv || !av) {
    rc = NN_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < nl; i++)
    if (!(lv[i] = nn__tmpl_expand_text(rule->label_tmpls[i], tname, &d))) {
      rc = NN_ENOMEM;
      goto out;
    }
  for (size_t i = 0; i < na; i++)
    if (!(av[i] = nn__tmpl_expand_text(rule->ann_tmpls[i], tname, &d))) {
      rc = NN_ENOMEM;
      goto out;
    }
  if ((rc = b_reset(&b, s->labels, s->nlabels)) < 0)
    goto out;
  b_set(&b, "__name__", NULL);
  for (size_t i = 0; i < nl; i++)
    if ((rc = b_set(&b, rule->labels.v[i].name, lv[i])) < 0)
      goto out;
  if ((rc = b_set(&b, "alertname", rule->name)) < 0)
    goto out;
  b_sort(&b);
  if ((rc = nn__lset_copy(&a->labels, b.v, b.n)) < 0)
    goto out;
  /* Annotations keep empty values (Prometheus's ScratchBuilder does not drop them). */
  {
    struct nn_label *ann = calloc(na + 1, sizeof(*ann));
    if (!ann) {
      rc = NN_ENOMEM;
      goto out;
    }
    for (size_t i = 0; i < na; i++) {
      ann[i].name = rule->annotations.v[i].name;
      ann[i].value = av[i];
    }
    rc = nn__lset_copy(&a->annotations, ann, na);
    free(ann);
  }
out:
  for (size_t i = 0; lv && i < nl; i++)
    free(lv[i]);
  for (size_t i = 0; av && i < na; i++)
    free(av[i]);
  free(lv);
  free(av);
  free(b.v);
  return rc;
}

static void write_alert_samples(struct writer *w, struct nn__rule *rule, struct nn__alert *a,
                                int64_t t)
{
  struct builder b = {0};
  if (b_reset(&b, a->labels.v, a->labels.n) == 0 && b_set(&b, "__name__", "ALERTS") == 0 &&
      b_set(&b, "alertname", rule->name) == 0 &&
      b_set(&b, "alertstate", a->state == NN__ALERT_FIRING ? "firing" : "pending") == 0)
    w_append(w, &b, t, 1);
  if (b_reset(&b, a->labels.v, a->labels.n) == 0 &&
      b_set(&b, "__name__", "ALERTS_FOR_STATE") == 0 && b_set(&b, "alertname", rule->name) == 0)
    w_append(w, &b, t, (double)(a->active_at / 1000));
  free(b.v);
}

static int eval_alerting(struct nn_rules *r, struct nn__group *g, struct nn__rule *rule, int64_t ts,
                         struct writer *w)
{
  struct nn_promql_result res;
  int64_t qt = ts - g->query_offset_ms;
  int rc = run_query(r, rule, qt, &res);
  if (rc < 0)
    return rc;
  struct index ix = {0};
  bool *seen = NULL;
  struct nn__alert **fresh = calloc(res.nseries ? res.nseries : 1, sizeof(*fresh));
  if (!fresh || index_build(&ix, rule, res.nseries) < 0)
    goto oom;
  for (size_t i = 0; i < res.nseries; i++) {
    struct nn__alert *a = calloc(1, sizeof(*a));
    if (!a)
      goto oom;
    fresh[i] = a;
    if (build_alert(r, rule, &res.series[i], a) < 0)
      goto oom;
    a->active_at = ts;
    a->state = NN__ALERT_PENDING;
    a->value = res.series[i].v[0];
    for (size_t j = 0; j < i; j++)
      if (cmp_lset(&fresh[j]->labels, &a->labels) == 0) {
        rc = set_error(rule, "vector contains metrics with the same labelset after applying "
                             "alert labels");
        goto out;
      }
  }
  /* Merge: an existing non-inactive alert keeps its state and takes the new value and
   * annotations; anything else is replaced by the fresh pending alert. */
  size_t nold = rule->nalerts;
  if (!(seen = calloc(nold + res.nseries + 1, sizeof(*seen))))
    goto oom;
  for (size_t i = 0; i < res.nseries; i++) {
    struct nn__alert *a = fresh[i];
    ssize_t pos = index_find(&ix, rule, &a->labels);
    if (pos >= 0 && rule->alerts[pos]->state != NN__ALERT_INACTIVE) {
      struct nn__alert *old = rule->alerts[pos];
      old->value = a->value;
      nn__lset_fini(&old->annotations);
      old->annotations = a->annotations;
      memset(&a->annotations, 0, sizeof(a->annotations));
      nn__alert_free(a);
    } else if (pos >= 0) {
      nn__alert_free(rule->alerts[pos]);
      rule->alerts[pos] = a;
    } else {
      if (alerts_push(rule, a) < 0)
        goto oom;
      pos = (ssize_t)rule->nalerts - 1;
      index_add(&ix, a->labels.hash, (size_t)pos);
    }
    fresh[i] = NULL;
    seen[pos] = true;
  }
  size_t active = 0;
  int64_t t_out = ts - g->query_offset_ms;
  size_t keep = 0;
  for (size_t i = 0; i < rule->nalerts; i++) {
    struct nn__alert *a = rule->alerts[i];
    bool drop = false;
    if (!seen[i]) {
      bool keep_firing = false;
      if (a->state == NN__ALERT_FIRING && rule->keep_firing_for_ms > 0) {
        if (a->keep_firing_since == 0)
          a->keep_firing_since = ts;
        if (ts - a->keep_firing_since < rule->keep_firing_for_ms)
          keep_firing = true;
      }
      if (a->state == NN__ALERT_PENDING ||
          (a->resolved_at && ts - a->resolved_at > NN__RULES_RESOLVED_RETENTION_MS))
        drop = true;
      if (a->state != NN__ALERT_INACTIVE && !keep_firing) {
        a->state = NN__ALERT_INACTIVE;
        a->resolved_at = ts;
      }
      if (!keep_firing) {
        if (drop)
          nn__alert_free(a);
        else
          rule->alerts[keep++] = a;
        continue;
      }
    } else {
      a->keep_firing_since = 0;
    }
    active++;
    if (a->state == NN__ALERT_PENDING && ts - a->active_at >= rule->for_ms) {
      a->state = NN__ALERT_FIRING;
      a->fired_at = ts;
    }
    rule->alerts[keep++] = a;
  }
  rule->nalerts = keep;
  if (g->limit > 0 && active > (size_t)g->limit) {
    for (size_t i = 0; i < rule->nalerts; i++)
      nn__alert_free(rule->alerts[i]);
    rule->nalerts = 0;
    char msg[128];
    snprintf(msg, sizeof(msg), "exceeded limit of %lld with %zu alerts", (long long)g->limit,
             active);
    rc = set_error(rule, msg);
    goto out;
  }
  if (rule->restored)
    for (size_t i = 0; i < rule->nalerts; i++)
      if (rule->alerts[i]->state != NN__ALERT_INACTIVE)
        write_alert_samples(w, rule, rule->alerts[i], t_out);
  rc = 0;
  goto out;
oom:
  rc = set_error(rule, "out of memory");
out:
  if (fresh)
    for (size_t i = 0; i < res.nseries; i++)
      nn__alert_free(fresh[i]);
  free(fresh);
  free(seen);
  free(ix.slot);
  result_fini(&res);
  return rc;
}

/* Alert.needsSending. */
static bool needs_sending(const struct nn__alert *a, int64_t ts, int64_t resend_delay)
{
  if (a->state == NN__ALERT_PENDING)
    return false;
  if (a->resolved_at > a->last_sent_at)
    return true;
  return a->last_sent_at + resend_delay < ts;
}

static void send_alerts(struct nn_rules *r, struct nn__group *g, struct nn__rule *rule, int64_t ts)
{
  if (!rule->nalerts)
    return;
  struct nn_notifier_alert *out = calloc(rule->nalerts, sizeof(*out));
  struct nn_buf url;
  nn_buf_init(&url, 1 << 20);
  if (!out)
    goto out;
  int64_t delta = r->cfg.resend_delay_ms > g->interval_ms ? r->cfg.resend_delay_ms : g->interval_ms;
  size_t n = 0;
  for (size_t i = 0; i < rule->nalerts; i++) {
    struct nn__alert *a = rule->alerts[i];
    if (!needs_sending(a, ts, r->cfg.resend_delay_ms))
      continue;
    a->last_sent_at = ts;
    /* Allows for two missed evaluations or failed sends before Alertmanager resolves it. */
    a->valid_until = ts + 4 * delta;
    out[n++] =
        (struct nn_notifier_alert){.labels = a->labels.v,
                                   .nlabels = a->labels.n,
                                   .annotations = a->annotations.v,
                                   .nannotations = a->annotations.n,
                                   .starts_at_ms = a->fired_at,
                                   .ends_at_ms = a->resolved_at ? a->resolved_at : a->valid_until};
  }
  if (n == 0 || !r->o.notify)
    goto out;
  const char *ext = r->cfg.external_url ? r->cfg.external_url : "";
  if (nn_buf_appends(&url, ext) < 0 || nn_buf_appends(&url, "/graph?g0.expr=") < 0 ||
      nn_urlenc_escape(rule->query, strlen(rule->query), &url) < 0 ||
      nn_buf_appends(&url, "&g0.tab=1") < 0)
    goto out;
  for (size_t i = 0; i < n; i++)
    out[i].generator_url = url.data;
  r->o.notify(r->o.notify_ud, out, n);
out:
  nn_buf_fini(&url);
  free(out);
}

/* ---- restoring `for` state (rules/group.go RestoreForState) ---- */

static void restore_rule(struct nn_rules *r, struct nn__rule *rule, int64_t ts)
{
  struct nn_matcher ms[2];
  char err[128];
  struct nn_series_set set = {0};
  bool m0 = false, m1 = false;
  if (nn_matcher_init(&ms[0], NN_MATCH_EQ, "__name__", "ALERTS_FOR_STATE", err, sizeof(err)) < 0)
    goto out;
  m0 = true;
  if (nn_matcher_init(&ms[1], NN_MATCH_EQ, "alertname", rule->name, err, sizeof(err)) < 0)
    goto out;
  m1 = true;
  struct nn_select_hints h = {.mint = ts - r->cfg.for_outage_tolerance_ms, .maxt = ts};
  if (!r->q.select || r->q.select(r->q.ctx, ms, 2, &h, &set) < 0)
    goto out;
  struct builder b = {0};
  for (size_t i = 0; i < set.n; i++) {
    const struct nn_series *s = &set.series[i];
    if (s->n == 0)
      continue;
    if (b_reset(&b, s->labels, s->nlabels) < 0)
      break;
    b_set(&b, "__name__", NULL);
    b_sort(&b);
    for (size_t j = 0; j < rule->nalerts; j++) {
      struct nn__alert *a = rule->alerts[j];
      if (a->state != NN__ALERT_PENDING || nn_labels_cmp(a->labels.v, a->labels.n, b.v, b.n) != 0)
        continue;
      double v = s->v[s->n - 1];
      if (isnan(v) || !isfinite(v))
        break; /* stale: the alert was not active when we went down */
      int64_t down_at = s->t[s->n - 1] / 1000 * 1000;
      int64_t active_at = (int64_t)v * 1000;
      int64_t pending = down_at - active_at;
      int64_t remaining = rule->for_ms - pending;
      if (remaining <= 0) {
        /* Was firing: the next evaluation fires it again. */
      } else if (remaining < r->cfg.for_grace_period_ms) {
        active_at = ts + r->cfg.for_grace_period_ms - rule->for_ms;
      } else {
        active_at += ts - down_at;
      }
      a->active_at = active_at;
      break;
    }
  }
  free(b.v);
  if (set.release)
    set.release(&set);
out:
  if (m0)
    nn_matcher_fini(&ms[0]);
  if (m1)
    nn_matcher_fini(&ms[1]);
}

/* ---- group evaluation ---- */

void nn__group_eval(struct nn_rules *r, struct nn__group *g, int64_t ts)
{
  uint64_t start = uv_hrtime();
  struct writer w = {.r = r};
  if (!(w.app = nn_tsdb_appender_create(r->o.db))) {
    NN_LOG_RL(NN_LOG_ERROR, MOD, "group \"%s\": out of memory", g->name);
    return;
  }
  for (size_t i = 0; i < g->nrules; i++) {
    struct nn__rule *rule = g->rules[i];
    uint64_t rs = uv_hrtime();
    w.rule = rule;
    w.failed = 0;
    w.first_err = 0;
    r->st.evaluations_total++;
    int rc = rule->type == NN__RULE_RECORDING ? eval_recording(r, g, rule, ts, &w)
                                              : eval_alerting(r, g, rule, ts, &w);
    rule->last_eval_ms = ts;
    if (rc < 0) {
      r->st.evaluation_failures_total++;
      nn_tsdb_appender_rollback(w.app);
      for (size_t j = 0; j < w.n; j++)
        nn__lset_fini(&w.series[j]);
      w.n = 0;
      NN_LOG_RL(NN_LOG_WARN, MOD, "group \"%s\" rule \"%s\": evaluation failed: %s", g->name,
                rule->name, rule->last_error ? rule->last_error : "");
    } else {
      rule->health = NN__HEALTH_OK;
      free(rule->last_error);
      rule->last_error = NULL;
      if (rule->type == NN__RULE_ALERTING)
        send_alerts(r, g, rule, ts);
      w_finish(&w, ts - g->query_offset_ms);
    }
    rule->eval_seconds = (double)(uv_hrtime() - rs) / 1e9;
  }
  free(w.series);
  nn_tsdb_appender_destroy(w.app);
  if (g->restore_pending) {
    for (size_t i = 0; i < g->nrules; i++) {
      struct nn__rule *rule = g->rules[i];
      if (rule->type == NN__RULE_ALERTING && !rule->restored) {
        restore_rule(r, rule, ts);
        rule->restored = true;
      }
    }
    g->restore_pending = false;
  }
  g->last_eval_ms = ts;
  g->eval_seconds = (double)(uv_hrtime() - start) / 1e9;
}
