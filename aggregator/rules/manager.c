/* SPDX-License-Identifier: Apache-2.0 */
/* The rule engine's lifecycle: creation, atomic reloads that carry alert state over
 * (Prometheus's Group.CopyState), programmatic rule groups, and one libuv timer per group
 * firing at Prometheus's aligned evaluation timestamps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include <xxhash.h>

#include "aggregator/rules/internal.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/error.h"
#include "common/log.h"
#include "common/metrics.h"

#define MOD "rules"

static int64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t nn_rules_group_eval_ts(const char *name, const char *file, int64_t interval_ms,
                               int64_t now_ms)
{
  /* labels.Labels{file, name}.Hash(): xxhash64 over "name\xffvalue\xff" pairs in label
   * order, and the offset is taken in nanoseconds, so groups land where Prometheus puts
   * them. */
  if (interval_ms <= 0)
    return now_ms;
  size_t fl = strlen(file), nl = strlen(name);
  char *buf = malloc(fl + nl + 16);
  uint64_t h = 0;
  if (buf) {
    size_t k = 0;
    memcpy(buf + k, "file\xff", 5);
    k += 5;
    memcpy(buf + k, file, fl);
    k += fl;
    buf[k++] = '\xff';
    memcpy(buf + k, "name\xff", 5);
    k += 5;
    memcpy(buf + k, name, nl);
    k += nl;
    buf[k++] = '\xff';
    h = XXH64(buf, k, 0);
    free(buf);
  }
  /* The offset is computed in nanoseconds as Prometheus does, then truncated to whole
   * milliseconds (sample timestamps are ms), so a slot start maps to itself. */
  int64_t offset = (int64_t)(h % (uint64_t)(interval_ms * 1000000)) / 1000000;
  int64_t adj = now_ms - offset;
  int64_t base = adj - (((adj % interval_ms) + interval_ms) % interval_ms);
  return base + offset;
}

/* ---- config copy ---- */

static void cfg_free(struct nn_rules_config *c)
{
  for (size_t i = 0; i < c->rule_files.n; i++)
    free(c->rule_files.v[i]);
  free(c->rule_files.v);
  for (size_t i = 0; i < c->external_labels.n; i++) {
    free(c->external_labels.keys[i]);
    free(c->external_labels.values[i]);
  }
  free(c->external_labels.keys);
  free(c->external_labels.values);
  free(c->external_url);
  memset(c, 0, sizeof(*c));
}

static int cfg_copy(struct nn_rules_config *d, const struct nn_rules_config *s)
{
  memset(d, 0, sizeof(*d));
  d->evaluation_interval_ms = s->evaluation_interval_ms > 0 ? s->evaluation_interval_ms : 60000;
  d->resend_delay_ms = s->resend_delay_ms >= 0 ? s->resend_delay_ms : 60000;
  d->for_outage_tolerance_ms = s->for_outage_tolerance_ms;
  d->for_grace_period_ms = s->for_grace_period_ms;
  if (!(d->external_url = strdup(s->external_url ? s->external_url : "")))
    return NN_ENOMEM;
  /* Go's url.Parse + String drops a trailing slash only through path joining; Prometheus
   * builds the generator URL by concatenation, so keep the URL as given minus one '/'. */
  size_t ul = strlen(d->external_url);
  if (ul && d->external_url[ul - 1] == '/')
    d->external_url[ul - 1] = 0;
  if (s->rule_files.n) {
    if (!(d->rule_files.v = calloc(s->rule_files.n, sizeof(char *))))
      return NN_ENOMEM;
    for (size_t i = 0; i < s->rule_files.n; i++) {
      if (!(d->rule_files.v[i] = strdup(s->rule_files.v[i])))
        return NN_ENOMEM;
      d->rule_files.n++;
    }
  }
  size_t n = s->external_labels.n;
  if (n) {
    d->external_labels.keys = calloc(n, sizeof(char *));
    d->external_labels.values = calloc(n, sizeof(char *));
    if (!d->external_labels.keys || !d->external_labels.values)
      return NN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
      d->external_labels.keys[i] = strdup(s->external_labels.keys[i]);
      d->external_labels.values[i] = strdup(s->external_labels.values[i]);
      d->external_labels.n++;
      if (!d->external_labels.keys[i] || !d->external_labels.values[i])
        return NN_ENOMEM;
    }
  }
  return 0;
}

/* ---- timers ---- */

static void on_timer_closed(uv_handle_t *h)
{
  free(h);
}

static void stop_timer(struct nn__group *g)
{
  if (!g->timer)
    return;
  g->timer->data = NULL;
  uv_timer_stop(g->timer);
  uv_close((uv_handle_t *)g->timer, on_timer_closed);
  g->timer = NULL;
}

static void on_group_timer(uv_timer_t *t)
{
  struct nn__group *g = t->data;
  if (!g)
    return;
  struct nn_rules *r = g->owner;
  int64_t ts = g->next_ts;
  int64_t now = wall_ms();
  if (now < ts) { /* woke early (timer granularity, clock step): wait the rest */
    uv_timer_start(t, on_group_timer, (uint64_t)(ts - now), 0);
    return;
  }
  nn__group_eval(r, g, ts);
  /* Skip the slots an overlong evaluation (or a suspended process) missed, as Prometheus
   * does, instead of running them back to back. */
  now = wall_ms();
  int64_t missed = (now - ts) / g->interval_ms - 1;
  if (missed > 0)
    r->st.iterations_missed_total += (uint64_t)missed;
  else
    missed = 0;
  int64_t next = ts + (missed + 1) * g->interval_ms;
  g->next_ts = next;
  int64_t delay = next - now;
  uv_timer_start(t, on_group_timer, (uint64_t)(delay > 0 ? delay : 0), 0);
}

static int start_timer(struct nn_rules *r, struct nn__group *g)
{
  if (!r->o.loop || g->timer)
    return 0;
  uv_timer_t *t = malloc(sizeof(*t));
  if (!t)
    return NN_ENOMEM;
  uv_timer_init(r->o.loop, t);
  t->data = g;
  g->timer = t;
  int64_t now = wall_ms();
  int64_t next = nn_rules_group_eval_ts(g->name, g->file, g->interval_ms, now) + g->interval_ms;
  g->next_ts = next;
  uv_timer_start(t, on_group_timer, (uint64_t)(next - now > 0 ? next - now : 0), 0);
  return 0;
}

/* ---- carrying state over ---- */

static struct nn__rule *find_rule(struct nn__group *og, const struct nn__rule *nr, bool *used)
{
  for (size_t i = 0; i < og->nrules; i++) {
    struct nn__rule *o = og->rules[i];
    if (used[i] || o->type != nr->type || strcmp(o->name, nr->name) != 0 ||
        nn_labels_cmp(o->labels.v, o->labels.n, nr->labels.v, nr->labels.n) != 0)
      continue;
    used[i] = true;
    return o;
  }
  return NULL;
}

/* Group.CopyState: rules match by type, name and labels, in order of appearance. */
static void copy_state(struct nn__group *ng, struct nn__group *og)
{
  bool *used = calloc(og->nrules + 1, sizeof(*used));
  if (!used)
    return;
  ng->last_eval_ms = og->last_eval_ms;
  ng->eval_seconds = og->eval_seconds;
  ng->restore_pending = og->restore_pending;
  for (size_t i = 0; i < ng->nrules; i++) {
    struct nn__rule *nr = ng->rules[i], *o = find_rule(og, nr, used);
    if (!o)
      continue;
    nr->health = o->health;
    nr->last_error = o->last_error;
    o->last_error = NULL;
    nr->last_eval_ms = o->last_eval_ms;
    nr->eval_seconds = o->eval_seconds;
    nr->alerts = o->alerts;
    nr->nalerts = o->nalerts;
    nr->alerts_cap = o->alerts_cap;
    nr->restored = o->restored;
    o->alerts = NULL;
    o->nalerts = o->alerts_cap = 0;
    nr->prev_series = o->prev_series;
    nr->nprev = o->nprev;
    o->prev_series = NULL;
    o->nprev = 0;
  }
  free(used);
}

static struct nn__group *find_group(struct nn__groupset *set, const struct nn__group *g)
{
  for (size_t i = 0; set && i < set->n; i++)
    if (set->v[i] && strcmp(set->v[i]->name, g->name) == 0 && strcmp(set->v[i]->file, g->file) == 0)
      return set->v[i];
  return NULL;
}

/* Swaps nset in for *cur: state carried over, old timers stopped, series of vanished
 * rules marked stale, new timers started. Consumes nset. */
static int swap_in(struct nn_rules *r, struct nn__groupset *cur, struct nn__groupset *nset)
{
  int64_t now = wall_ms();
  for (size_t i = 0; i < nset->n; i++) {
    struct nn__group *ng = nset->v[i];
    ng->owner = r;
    struct nn__group *og = find_group(cur, ng);
    if (og) {
      copy_state(ng, og);
    } else {
      for (size_t j = 0; j < ng->nrules; j++)
        if (ng->rules[j]->type == NN__RULE_ALERTING &&
            ng->rules[j]->for_ms >= r->cfg.for_grace_period_ms && ng->rules[j]->for_ms > 0)
          ng->rules[j]->restored = false;
    }
  }
  for (size_t i = 0; i < cur->n; i++) {
    struct nn__group *og = cur->v[i];
    stop_timer(og);
    for (size_t j = 0; j < og->nrules; j++)
      nn__rule_mark_stale(r, og->rules[j], now);
  }
  nn__groupset_free(cur);
  *cur = *nset;
  memset(nset, 0, sizeof(*nset));
  int rc = 0;
  for (size_t i = 0; i < cur->n; i++)
    if (start_timer(r, cur->v[i]) < 0)
      rc = NN_ENOMEM;
  return rc;
}

/* ---- public API ---- */

static double stat_value(void *ud, size_t off)
{
  return (double)*(uint64_t *)((char *)ud + off);
}
static double m_evals(void *ud)
{
  return stat_value(ud, offsetof(struct nn_rules, st.evaluations_total));
}
static double m_fails(void *ud)
{
  return stat_value(ud, offsetof(struct nn_rules, st.evaluation_failures_total));
}
static double m_missed(void *ud)
{
  return stat_value(ud, offsetof(struct nn_rules, st.iterations_missed_total));
}
static double m_reload_ok(void *ud)
{
  return ((struct nn_rules *)ud)->st.last_reload_ok ? 1 : 0;
}
static double m_alerts(void *ud, int state)
{
  struct nn_rules_stats st;
  nn_rules_stats(ud, &st);
  return (double)(state == NN__ALERT_FIRING ? st.alerts_firing : st.alerts_pending);
}
static double m_firing(void *ud)
{
  return m_alerts(ud, NN__ALERT_FIRING);
}
static double m_pending(void *ud)
{
  return m_alerts(ud, NN__ALERT_PENDING);
}

struct nn_rules *nn_rules_create(const struct nn_rules_opts *o)
{
  struct nn_rules *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  r->o = *o;
  if (!o->cfg) {
    struct nn_rules_config def = {0};
    def.for_outage_tolerance_ms = 3600000;
    def.for_grace_period_ms = 600000;
    def.resend_delay_ms = 60000;
    if (cfg_copy(&r->cfg, &def) < 0)
      goto fail;
  } else if (cfg_copy(&r->cfg, o->cfg) < 0) {
    goto fail;
  }
  r->o.cfg = &r->cfg;
  r->next = r->cfg.external_labels.n;
  if (r->next) {
    if (!(r->ext = calloc(r->next, sizeof(*r->ext))))
      goto fail;
    for (size_t i = 0; i < r->next; i++) {
      r->ext[i].name = r->cfg.external_labels.keys[i];
      r->ext[i].value = r->cfg.external_labels.values[i];
    }
    r->next = nn_labels_canonicalize(r->ext, r->next);
  }
  if (o->db)
    nn_tsdb_querier(o->db, &r->q);
  if (o->metrics) {
    struct nn_metrics *m = o->metrics;
    nn_metrics_func(m, NN_METRIC_COUNTER, "nines_rule_evaluations_total", "Rule evaluations.", NULL,
                    m_evals, r);
    nn_metrics_func(m, NN_METRIC_COUNTER, "nines_rule_evaluation_failures_total",
                    "Rule evaluations that failed.", NULL, m_fails, r);
    nn_metrics_func(m, NN_METRIC_COUNTER, "nines_rule_group_iterations_missed_total",
                    "Rule group evaluations skipped because the previous one ran late.", NULL,
                    m_missed, r);
    nn_metrics_func(m, NN_METRIC_GAUGE, "nines_rules_config_last_reload_successful",
                    "Whether the last rule reload succeeded.", NULL, m_reload_ok, r);
    nn_metrics_func(m, NN_METRIC_GAUGE, "nines_alerts", "Active alerts by state.",
                    "state=\"firing\"", m_firing, r);
    nn_metrics_func(m, NN_METRIC_GAUGE, "nines_alerts", "Active alerts by state.",
                    "state=\"pending\"", m_pending, r);
  }
  r->st.last_reload_ok = true;
  return r;
fail:
  cfg_free(&r->cfg);
  free(r);
  return NULL;
}

void nn_rules_destroy(struct nn_rules *r)
{
  if (!r)
    return;
  for (size_t i = 0; i < r->files.n; i++)
    stop_timer(r->files.v[i]);
  nn__groupset_free(&r->files);
  for (size_t k = 0; k < r->ngen; k++) {
    for (size_t i = 0; i < r->gen[k].n; i++)
      stop_timer(r->gen[k].v[i]);
    nn__groupset_free(&r->gen[k]);
    free(r->gen_names[k]);
  }
  free(r->gen);
  free(r->gen_names);
  free(r->ext);
  cfg_free(&r->cfg);
  free(r);
}

static void reload_done(struct nn_rules *r, int rc, const char *what, const char *err)
{
  r->st.reloads_total++;
  r->st.last_reload_ms = wall_ms();
  r->st.last_reload_ok = rc == 0;
  if (rc < 0) {
    r->st.reload_failures_total++;
    nn_error(MOD, "loading %s failed, keeping the previous rules: %s", what, err);
  } else {
    nn_info(MOD, "loaded %s", what);
  }
}

int nn_rules_reload(struct nn_rules *r, const struct nn_cfg_strlist *globs, char *err,
                    size_t errlen)
{
  struct nn__groupset nset = {0};
  char dummy[8];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof(dummy);
  }
  err[0] = 0;
  int rc = nn__rules_load_globs(globs ? globs : &r->cfg.rule_files, r->cfg.evaluation_interval_ms,
                                &nset, err, errlen);
  if (rc == NN_ENOMEM && !err[0])
    snprintf(err, errlen, "out of memory loading rule files");
  if (rc == 0)
    rc = swap_in(r, &r->files, &nset);
  nn__groupset_free(&nset);
  reload_done(r, rc, "rule files", err);
  return rc;
}

int nn_rules_set_generated(struct nn_rules *r, const char *source, const char *yaml, size_t len,
                           char *err, size_t errlen)
{
  struct nn__groupset nset = {0};
  char dummy[8];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof(dummy);
  }
  err[0] = 0;
  int rc = 0;
  if (len > 0)
    rc = nn__rules_load_text(source, yaml, len, r->cfg.evaluation_interval_ms, &nset, err, errlen);
  if (rc < 0) {
    nn__groupset_free(&nset);
    reload_done(r, rc, source, err);
    return rc;
  }
  size_t k = 0;
  for (; k < r->ngen; k++)
    if (strcmp(r->gen_names[k], source) == 0)
      break;
  if (k == r->ngen) {
    char **nn = realloc(r->gen_names, (r->ngen + 1) * sizeof(*nn));
    if (nn)
      r->gen_names = nn;
    struct nn__groupset *ng = realloc(r->gen, (r->ngen + 1) * sizeof(*ng));
    if (ng)
      r->gen = ng;
    if (!nn || !ng || !(r->gen_names[k] = strdup(source))) {
      nn__groupset_free(&nset);
      snprintf(err, errlen, "out of memory");
      return NN_ENOMEM;
    }
    memset(&r->gen[k], 0, sizeof(r->gen[k]));
    r->ngen++;
  }
  rc = swap_in(r, &r->gen[k], &nset);
  nn__groupset_free(&nset);
  reload_done(r, rc, source, err);
  return rc;
}

void nn__rules_each_group(const struct nn_rules *r, void (*fn)(struct nn__group *g, void *ud),
                          void *ud)
{
  for (size_t i = 0; i < r->files.n; i++)
    fn(r->files.v[i], ud);
  for (size_t k = 0; k < r->ngen; k++)
    for (size_t i = 0; i < r->gen[k].n; i++)
      fn(r->gen[k].v[i], ud);
}

struct eval_ctx {
  struct nn_rules *r;
  int64_t ts;
  bool all;
};

static void eval_one(struct nn__group *g, void *ud)
{
  struct eval_ctx *c = ud;
  if (c->all || nn_rules_group_eval_ts(g->name, g->file, g->interval_ms, c->ts) == c->ts)
    nn__group_eval(c->r, g, c->ts);
}

int nn_rules_eval_at(struct nn_rules *r, int64_t ts, bool all_groups)
{
  if (!r->o.db)
    return NN_EINVAL;
  struct eval_ctx c = {.r = r, .ts = ts, .all = all_groups};
  nn__rules_each_group(r, eval_one, &c);
  return 0;
}

static void count_one(struct nn__group *g, void *ud)
{
  struct nn_rules_stats *st = ud;
  st->groups++;
  st->rules += g->nrules;
  for (size_t i = 0; i < g->nrules; i++)
    for (size_t j = 0; j < g->rules[i]->nalerts; j++) {
      enum nn__alert_state s = g->rules[i]->alerts[j]->state;
      if (s == NN__ALERT_FIRING)
        st->alerts_firing++;
      else if (s == NN__ALERT_PENDING)
        st->alerts_pending++;
    }
}

void nn_rules_stats(const struct nn_rules *r, struct nn_rules_stats *out)
{
  *out = r->st;
  out->groups = out->rules = out->alerts_firing = out->alerts_pending = 0;
  nn__rules_each_group(r, count_one, out);
}
