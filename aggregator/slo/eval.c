/* SPDX-License-Identifier: Apache-2.0 */
/* The SLO engine's evaluation: every interval it queries each SLI's error and total
 * increase over the last interval, folds them into the ledger (replaying missed
 * intervals from stored series after a restart or on first start), derives the window
 * ratios, burn rates and budget, writes Sloth-named slo:* and ALERTS series into the head
 * and runs the alert state machine (page, ticket, no data, budget consumed). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "aggregator/slo/internal.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/units.h"

#define MOD              "slo"
#define RESOLVED_KEEP_MS (15 * 60000)
/* After a page fired, the ticket tier stays quiet this long (the slow page's 6h window):
 * the tail of the same incident keeps the 2h/1d ticket windows hot for hours. */
#define PAGE_SUPPRESSES_TICKET_MS (6 * 3600000LL)
#define TICKET_MIN_FOR_MS         (5 * 60000LL)

/* ---- Configuration ----------------------------------------------------------------------- */

#define OFF(f) offsetof(struct nn_slo_config, f)
const struct nn_cfg_option nn_slo_config_options[] = {
    {.name = "spec_files",
     .type = NN_CFG_STRLIST,
     .offset = OFF(spec_files),
     .def = NULL,
     .help = "Globs of SLO spec files (Sloth prometheus/v1 or nines/v1)."},
    {.name = "evaluation_interval",
     .type = NN_CFG_DURATION,
     .offset = OFF(evaluation_interval_ms),
     .def = "30s",
     .help =
         "How often the SLIs are queried and the ledger updated (divides 1m or a multiple of 1m)."},
    {.name = "min_events",
     .type = NN_CFG_INT,
     .offset = OFF(min_events),
     .def = "50",
     .help = "Burn-rate alerts need at least this many events in their short window."},
    {.name = "time_zone",
     .type = NN_CFG_STR,
     .offset = OFF(time_zone),
     .def = "UTC",
     .help = "Calendar periods and daily series: UTC or a fixed offset such as +02:00."},
    {.name = "persist",
     .type = NN_CFG_BOOL,
     .offset = OFF(persist),
     .def = "true",
     .help = "Keep ledger snapshots under <data_dir>/slo/."},
    {.name = "snapshot_every",
     .type = NN_CFG_INT,
     .offset = OFF(snapshot_every),
     .def = "20",
     .help = "Evaluations between ledger snapshots."},
    {.name = "no_data_for",
     .type = NN_CFG_DURATION,
     .offset = OFF(no_data_for_ms),
     .def = "10m",
     .help = "An SLO without any events this long fires its no-data alert."},
    {.name = "resend_delay",
     .type = NN_CFG_DURATION,
     .offset = OFF(resend_delay_ms),
     .def = "1m",
     .help = "Firing alerts are re-sent to Alertmanager this often."},
    {.name = "backfill",
     .type = NN_CFG_BOOL,
     .offset = OFF(backfill),
     .def = "true",
     .help = "Fill a new ledger from the series already stored."},
    {.name = "evaluation_delay",
     .type = NN_CFG_DURATION,
     .offset = OFF(evaluation_delay_ms),
     .def = "2s",
     .help =
         "Each aligned evaluation time t is evaluated this long after t (at most a quarter "
         "of the interval), so that samples stamped up to t have arrived: an interval whose last "
         "sample is late would be missing from the ledger for good."},
    {.name = NULL},
};

/* ---- Maths ------------------------------------------------------------------------------- */

static int64_t floordiv64(int64_t a, int64_t b)
{
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void nn__slo_compute(const struct nn_slo_spec *s, const struct nn_slo_ledger *l, int64_t ts,
                     int64_t min_events, int64_t no_data_min, struct nn_slo_values *v)
{
  int64_t end = floordiv64(ts - 1, 60000);
  /* ts inside a minute: the newest bucket holds the events up to ts, and a rolling window
   * (ts - len, ts] also covers this share of its oldest minute's bucket (events spread
   * evenly over a minute), as a [len] range does in PromQL. */
  double part = (double)((end + 1) * 60000 - ts) / 60000.0;
  double eb = 1.0 - s->objective;
  memset(v, 0, sizeof(*v));
  v->ts = ts;
  for (int w = 0; w < NN_SLO_NWINDOWS; w++) {
    int64_t len;
    bool rolling = w < NN_SLO_W_PERIOD || s->period_kind == NN_SLO_ROLLING;
    if (w < NN_SLO_W_PERIOD)
      len = nn__slo_window_min[w];
    else if (s->period_kind == NN_SLO_ROLLING)
      len = s->period_min;
    else
      len = end - nn__slo_calendar_start(end, &l->tz, s->period_kind == NN_SLO_QUARTER) + 1;
    nn__slo_ledger_window(l, end, len, &v->bad[w], &v->total[w]);
    if (rolling && part > 0) {
      double b1, t1;
      nn__slo_ledger_window(l, end - len, 1, &b1, &t1);
      v->bad[w] += part * b1;
      v->total[w] += part * t1;
    }
    v->ratio[w] = v->total[w] > 0 ? v->bad[w] / v->total[w] : NAN;
  }
  v->period_burn = v->ratio[NN_SLO_W_PERIOD] / eb;
  v->remaining = 1.0 - v->period_burn;
  v->current_burn = v->ratio[NN_SLO_W_5M] / eb;
  double burn1h = v->ratio[NN_SLO_W_1H] / eb;
  if (isnan(v->remaining))
    v->tte = NAN;
  else if (v->remaining <= 0)
    v->tte = 0;
  else if (isnan(burn1h) || burn1h <= 0)
    v->tte = INFINITY;
  else
    v->tte = v->remaining * (double)s->period_min * 60.0 / burn1h;
  bool tier[4];
  for (int t = 0; t < 4; t++) {
    double thr = nn__slo_factor(s, t) * eb;
    int lw = nn__slo_tier_long[t], sw = nn__slo_tier_short[t];
    tier[t] = v->ratio[lw] > thr && v->ratio[sw] > thr && v->total[sw] >= (double)min_events;
  }
  v->page = !s->page.disable && (tier[0] || tier[1]);
  v->ticket = !s->ticket.disable && (tier[2] || tier[3]);
  if (!s->no_data_disable && l->head_min != INT64_MIN && end - l->first_min + 1 >= no_data_min) {
    double b, t;
    nn__slo_ledger_window(l, end, no_data_min, &b, &t);
    v->nodata = t <= 0;
  }
  if (!s->budget_disable && !isnan(v->remaining)) {
    double consumed = 1.0 - v->remaining;
    v->budget_level = consumed >= 0.95 ? 95 : consumed >= 0.80 ? 80 : 0;
  }
}

/* ---- Runtime ----------------------------------------------------------------------------- */

static int64_t interval_ms(const struct nn_slo_engine *e)
{
  return e->cfg.evaluation_interval_ms;
}

static void rt_fini(struct nn_slo_rt *r)
{
  nn__slo_ledger_fini(&r->ledger);
  nn_promql_expr_free(r->err_expr);
  nn_promql_expr_free(r->total_expr);
  memset(r, 0, sizeof(*r));
}

static int parse_rendered(const char *tmpl, const char *win, struct nn_promql_expr **out)
{
  struct nn_buf b;
  struct nn_promql_error perr;
  nn_buf_init(&b, 1 << 20);
  int rc = nn__slo_render_query(tmpl, win, &b);
  if (rc == 0)
    rc = nn_promql_parse(b.data, b.len, out, &perr);
  if (rc < 0 && rc != NN_ENOMEM)
    nn_warn(MOD, "query %s: %s", b.data ? b.data : "", perr.msg);
  nn_buf_fini(&b);
  return rc;
}

static int rt_init(struct nn_slo_engine *e, struct nn_slo_rt *r, struct nn_slo_spec *s)
{
  char win[40];
  int rc;
  memset(r, 0, sizeof(*r));
  r->spec = s;
  if (!s->tz_set)
    s->tz = e->tz;
  if ((rc = nn__slo_ledger_init(&r->ledger, s->period_min, &s->tz)) < 0)
    return rc;
  nn_duration_format(interval_ms(e), win, sizeof(win));
  if (s->sli == NN_SLO_SLI_EVENTS) {
    if ((rc = parse_rendered(s->error_query, win, &r->err_expr)) < 0 ||
        (rc = parse_rendered(s->total_query, win, &r->total_expr)) < 0)
      return rc;
  } else if ((rc = parse_rendered(s->ratio_query, win, &r->err_expr)) < 0) {
    return rc;
  }
  return 0;
}

static double m_evals(void *ud)
{
  return (double)((struct nn_slo_engine *)ud)->stats.evaluations_total;
}
static double m_fail(void *ud)
{
  return (double)((struct nn_slo_engine *)ud)->stats.evaluation_failures_total;
}
static double m_qfail(void *ud)
{
  return (double)((struct nn_slo_engine *)ud)->stats.query_failures_total;
}
static double m_slos(void *ud)
{
  return (double)((struct nn_slo_engine *)ud)->nrt;
}
static double m_snaps(void *ud)
{
  return (double)((struct nn_slo_engine *)ud)->stats.snapshots_total;
}

static void register_metrics(struct nn_slo_engine *e, struct nn_metrics *m)
{
  nn_metrics_func(m, NN_METRIC_COUNTER, "nines_slo_evaluations_total",
                  "SLO engine evaluation cycles.", NULL, m_evals, e);
  nn_metrics_func(m, NN_METRIC_COUNTER, "nines_slo_evaluation_failures_total",
                  "SLO evaluation cycles in which a query failed.", NULL, m_fail, e);
  nn_metrics_func(m, NN_METRIC_COUNTER, "nines_slo_query_failures_total",
                  "SLI queries that failed.", NULL, m_qfail, e);
  nn_metrics_func(m, NN_METRIC_GAUGE, "nines_slo_slos", "SLOs loaded.", NULL, m_slos, e);
  nn_metrics_func(m, NN_METRIC_COUNTER, "nines_slo_snapshots_total", "Ledger snapshots written.",
                  NULL, m_snaps, e);
}

struct nn_slo_engine *nn_slo_create(const struct nn_slo_opts *o)
{
  struct nn_slo_engine *e = calloc(1, sizeof(*e));
  struct nn_cfg_error cerr;
  if (!e)
    return NULL;
  if (nn_cfg_apply_defaults(nn_slo_config_options, &e->cfg, &cerr) < 0)
    goto fail;
  if (o->cfg) {
    const struct nn_slo_config *c = o->cfg;
    nn_cfg_free(nn_slo_config_options, &e->cfg);
    e->cfg = *c;
    e->cfg.time_zone = strdup(c->time_zone ? c->time_zone : "UTC");
    e->cfg.spec_files.v = calloc(c->spec_files.n + 1, sizeof(char *));
    if (!e->cfg.time_zone || !e->cfg.spec_files.v)
      goto fail;
    for (size_t i = 0; i < c->spec_files.n; i++)
      if (!(e->cfg.spec_files.v[i] = strdup(c->spec_files.v[i])))
        goto fail;
  }
  int64_t iv = e->cfg.evaluation_interval_ms;
  if (iv < 1000 || (60000 % iv != 0 && iv % 60000 != 0) || iv > 3600000) {
    nn_error(MOD, "evaluation_interval must divide 1m or be whole minutes up to 1h");
    goto fail;
  }
  if (e->cfg.min_events < 0 || e->cfg.snapshot_every < 1 || e->cfg.no_data_for_ms < 60000 ||
      e->cfg.resend_delay_ms < 0) {
    nn_error(MOD, "min_events, snapshot_every, no_data_for (>= 1m) or resend_delay out of range");
    goto fail;
  }
  if (nn__slo_tz_parse(e->cfg.time_zone, &e->tz) < 0) {
    nn_error(MOD,
             "time_zone \"%s\": expected UTC, a fixed offset such as +02:00 or a zone "
             "name of the tz database such as Europe/Berlin",
             e->cfg.time_zone);
    goto fail;
  }
  e->loop = o->loop;
  e->db = o->db;
  e->notify = o->notify;
  e->notify_ud = o->notify_ud;
  e->popts = o->promql;
  if (o->external_url && !(e->external_url = strdup(o->external_url)))
    goto fail;
  if (o->data_dir && e->cfg.persist) {
    if (!(e->data_dir = strdup(o->data_dir)))
      goto fail;
    nn__slo_snapshot_read(e);
  }
  if (!(e->set = calloc(1, sizeof(*e->set))))
    goto fail;
  if (o->metrics)
    register_metrics(e, o->metrics);
  return e;
fail:
  nn_slo_destroy(e);
  return NULL;
}

static void on_timer_close(uv_handle_t *h)
{
  free(h);
}

void nn_slo_destroy(struct nn_slo_engine *e)
{
  if (!e)
    return;
  if (e->data_dir && e->nrt)
    nn__slo_snapshot_write(e);
  if (e->timer) {
    uv_timer_stop(e->timer);
    uv_close((uv_handle_t *)e->timer, on_timer_close);
  }
  for (size_t i = 0; i < e->nrt; i++)
    rt_fini(&e->rt[i]);
  free(e->rt);
  nn_slo_set_destroy(e->set);
  free(e->batch);
  free(e->snap);
  free(e->data_dir);
  free(e->external_url);
  nn_cfg_free(nn_slo_config_options, &e->cfg);
  free(e);
}

static int64_t wall_ms(void)
{
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void schedule(struct nn_slo_engine *e);

static void on_timer(uv_timer_t *t)
{
  struct nn_slo_engine *e = t->data;
  int64_t now = wall_ms();
  nn_slo_eval_at(e, now - now % interval_ms(e));
  schedule(e);
}

static void schedule(struct nn_slo_engine *e)
{
  if (!e->loop)
    return;
  if (!e->timer) {
    if (!(e->timer = malloc(sizeof(*e->timer))))
      return;
    uv_timer_init(e->loop, e->timer);
    e->timer->data = e;
  }
  int64_t now = wall_ms(), iv = interval_ms(e);
  int64_t delay = e->cfg.evaluation_delay_ms;
  if (delay < 0 || delay > iv / 4)
    delay = delay < 0 ? 0 : iv / 4;
  /* The next aligned time, plus the delay (on_timer evaluates the aligned time before now). */
  int64_t wait = iv - (now - delay) % iv + 5;
  uv_timer_start(e->timer, on_timer, (uint64_t)wait, 0);
}

int nn_slo_reload_set(struct nn_slo_engine *e, struct nn_slo_set *set, char *err, size_t errlen)
{
  struct nn_slo_rt *rts = set->n ? calloc(set->n, sizeof(*rts)) : NULL;
  int rc = 0;
  e->stats.reloads_total++;
  if (set->n && !rts) {
    rc = NN_ENOMEM;
    goto fail;
  }
  for (size_t i = 0; i < set->n; i++) {
    struct nn_slo_spec *s = &set->v[i];
    struct nn_slo_rt *old = NULL;
    for (size_t k = 0; k < e->nrt && !old; k++)
      if (e->rt[k].spec && !strcmp(e->rt[k].spec->id, s->id) &&
          e->rt[k].spec->fingerprint == s->fingerprint &&
          nn__slo_tz_equal(s->tz_set ? &s->tz : &e->tz, &e->rt[k].ledger.tz))
        old = &e->rt[k];
    if ((rc = rt_init(e, &rts[i], s)) < 0) {
      if (err && errlen)
        snprintf(err, errlen, "%s: slo %s: cannot prepare queries: %s", s->file, s->id,
                 nn_strerror(rc));
      goto fail;
    }
    if (old) {
      /* Same SLI and period: keep the counts and the alert state. */
      struct nn_slo_ledger tmp = rts[i].ledger;
      rts[i].ledger = old->ledger;
      old->ledger = tmp;
      memcpy(rts[i].alerts, old->alerts, sizeof(rts[i].alerts));
      rts[i].last = old->last;
      rts[i].have_last = old->have_last;
      rts[i].loaded = true;
    } else if (e->snap) {
      size_t len;
      const unsigned char *p = nn__slo_snapshot_find(e, s->id, s->fingerprint, &len);
      size_t used;
      if (p && nn__slo_ledger_decode(&rts[i].ledger, p, len, &used) == 0)
        rts[i].loaded = true;
    }
  }
  for (size_t k = 0; k < e->nrt; k++)
    rt_fini(&e->rt[k]);
  free(e->rt);
  nn_slo_set_destroy(e->set);
  e->set = set;
  e->rt = rts;
  e->nrt = set->n;
  free(e->snap);
  e->snap = NULL;
  e->snap_len = 0;
  e->stats.slos = e->nrt;
  if (e->loop && !e->timer)
    schedule(e);
  return 0;
fail:
  e->stats.reload_failures_total++;
  for (size_t i = 0; rts && i < set->n; i++)
    rt_fini(&rts[i]);
  free(rts);
  nn_slo_set_destroy(set);
  return rc;
}

int nn_slo_reload(struct nn_slo_engine *e, const struct nn_cfg_strlist *globs, char *err,
                  size_t errlen)
{
  struct nn_slo_set *set;
  int rc = nn_slo_set_load_files(globs ? globs : &e->cfg.spec_files, &set, err, errlen);
  if (rc < 0) {
    e->stats.reloads_total++;
    e->stats.reload_failures_total++;
    return rc;
  }
  return nn_slo_reload_set(e, set, err, errlen);
}

/* ---- Queries ----------------------------------------------------------------------------- */

/* Sum of an instant vector (or scalar) result; *have false when it is empty. */
static int query_instant(struct nn_slo_engine *e, const struct nn_querier *q,
                         const struct nn_promql_expr *x, int64_t ts, double *sum, bool *have)
{
  struct nn_promql_result res;
  struct nn_promql_error perr;
  int rc = nn_promql_eval_instant(q, x, ts, &e->popts, &res, &perr);
  *sum = 0;
  *have = false;
  if (rc < 0) {
    NN_LOG_RL(NN_LOG_WARN, MOD, "SLI query failed: %s", perr.msg);
    e->stats.query_failures_total++;
    return rc;
  }
  if (res.type == NN_PROMQL_SCALAR) {
    *sum = res.scalar;
    *have = !isnan(res.scalar);
  } else {
    for (size_t i = 0; i < res.nseries; i++) {
      if (res.series[i].n && !isnan(res.series[i].v[0])) {
        *sum += res.series[i].v[0];
        *have = true;
      }
    }
  }
  nn_promql_result_fini(&res);
  return 0;
}

/* Per-step sums of a range evaluation over [start, end] into out[(t - start) / step]. */
static int query_range(struct nn_slo_engine *e, const struct nn_querier *q,
                       const struct nn_promql_expr *x, int64_t start, int64_t end, int64_t step,
                       double *out, bool *have)
{
  struct nn_promql_result res;
  struct nn_promql_error perr;
  int rc = nn_promql_eval_range(q, x, start, end, step, &e->popts, &res, &perr);
  if (rc < 0) {
    NN_LOG_RL(NN_LOG_WARN, MOD, "SLI backfill query failed: %s", perr.msg);
    e->stats.query_failures_total++;
    return rc;
  }
  size_t n = (size_t)((end - start) / step) + 1;
  for (size_t i = 0; i < res.nseries; i++) {
    const struct nn_promql_series *s = &res.series[i];
    for (size_t k = 0; k < s->n; k++) {
      int64_t idx = (s->t[k] - start) / step;
      if (idx < 0 || (size_t)idx >= n || isnan(s->v[k]))
        continue;
      out[idx] += s->v[k];
      have[idx] = true;
    }
  }
  nn_promql_result_fini(&res);
  return 0;
}

/* Events of one interval from the query values: rates times the interval's seconds. A
 * missing error series with traffic present means no errors (no 5xx series yet), not
 * "no data", which is where Sloth's recordings turn NaN. */
static void fold(struct nn_slo_rt *r, int64_t ts, int64_t iv, double ev, bool have_e, double tv,
                 bool have_t)
{
  double secs = (double)iv / 1000.0, bad = 0, total = 0;
  if (r->spec->sli == NN_SLO_SLI_EVENTS) {
    if (have_t) {
      total = tv * secs;
      bad = have_e ? ev * secs : 0;
    }
  } else if (have_e) {
    double ratio = ev < 0 ? 0 : ev > 1 ? 1 : ev;
    total = secs; /* a raw ratio is weighted by time: one event per second */
    bad = ratio * secs;
  }
  nn__slo_ledger_add(&r->ledger, floordiv64(ts - 1, 60000), bad, total);
}

/* Replays the intervals ending in (from, to] from stored series with one range query. */
static int replay(struct nn_slo_engine *e, const struct nn_querier *q, struct nn_slo_rt *r,
                  int64_t from, int64_t to)
{
  int64_t iv = interval_ms(e);
  int64_t start = from + iv;
  if (start > to)
    return 0;
  size_t n = (size_t)((to - start) / iv) + 1;
  double *ev = calloc(n, sizeof(double)), *tv = calloc(n, sizeof(double));
  bool *he = calloc(n, sizeof(bool)), *ht = calloc(n, sizeof(bool));
  int rc = NN_ENOMEM;
  if (!ev || !tv || !he || !ht)
    goto out;
  if ((rc = query_range(e, q, r->err_expr, start, to, iv, ev, he)) < 0)
    goto out;
  if (r->total_expr && (rc = query_range(e, q, r->total_expr, start, to, iv, tv, ht)) < 0)
    goto out;
  for (size_t i = 0; i < n; i++) {
    if (r->total_expr ? !ht[i] : !he[i])
      continue;
    fold(r, start + (int64_t)i * iv, iv, ev[i], he[i], tv[i], ht[i]);
    e->stats.backfilled_intervals_total++;
  }
out:
  free(ev);
  free(tv);
  free(he);
  free(ht);
  return rc;
}

/* ---- Output series ----------------------------------------------------------------------- */

void nn__slo_lset_put(struct nn_slo_lset *l, const char *name, const char *value)
{
  for (size_t i = 0; i < l->n; i++) {
    if (!strcmp(l->v[i].name, name)) {
      l->v[i].value = value;
      return;
    }
  }
  if (l->n < NN_SLO_MAX_LABELS)
    l->v[l->n++] = (struct nn_label){name, value};
}

static void base_labels(const struct nn_slo_spec *s, struct nn_slo_lset *l)
{
  l->n = 0;
  for (size_t i = 0; i < s->labels.n; i++)
    nn__slo_lset_put(l, s->labels.k[i], s->labels.v[i]);
  nn__slo_lset_put(l, "sloth_id", s->id);
  nn__slo_lset_put(l, "sloth_service", s->service);
  nn__slo_lset_put(l, "sloth_slo", s->name);
}

/* Appends v to the series name{l}; ref (may be NULL) receives its head id. */
static void put_sample_ref(struct nn_slo_engine *e, struct nn_tsdb_appender *a,
                           struct nn_slo_lset *l, const char *name, int64_t ts, double v,
                           uint64_t *ref)
{
  (void)e;
  if (isnan(v))
    return; /* no data is an absent sample, never a NaN that poisons averages */
  struct nn_slo_lset c = *l;
  nn__slo_lset_put(&c, "__name__", name);
  size_t n = nn_labels_canonicalize(c.v, c.n);
  uint64_t id = 0;
  int rc = nn_tsdb_appender_append(a, c.v, n, ts, v, &id);
  if (ref && id && (rc == 0 || rc == NN_EOUTOFORDER || rc == NN_EDUPLICATE))
    *ref = id;
  if (rc < 0 && rc != NN_EOUTOFORDER && rc != NN_EDUPLICATE)
    NN_LOG_RL(NN_LOG_WARN, MOD, "writing %s: %s", name, nn_strerror(rc));
}

static const char *period_name(const struct nn_slo_spec *s, char *buf, size_t len)
{
  if (s->period_kind == NN_SLO_MONTH)
    return "month";
  if (s->period_kind == NN_SLO_QUARTER)
    return "quarter";
  nn_duration_format(s->period_min * 60000, buf, len);
  return buf;
}

static const char *const meta_name[NN_SLO_NOUT - NN_SLO_OUT_META] = {
    "slo:objective:ratio",
    "slo:error_budget:ratio",
    "slo:time_period:days",
    "slo:current_burn_rate:ratio",
    "slo:period_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio",
    "slo:time_until_exhaustion:seconds",
    "sloth_slo_info",
};

/* Appends to the series with id ref: at *sp when that is known, by id otherwise (and *sp
 * found for the next time). */
static int append_id(struct nn_slo_engine *e, struct nn_tsdb_appender *a, uint64_t ref,
                     struct nn__tsdb_series **sp, int64_t ts, double v)
{
  if (*sp)
    return nn_tsdb_appender_append_series(a, *sp, ts, v);
  int rc = nn_tsdb_appender_append_ref(a, ref, ts, v);
  if (rc != NN_ENOTFOUND)
    *sp = nn_tsdb_series_find(e->db, ref);
  return rc;
}

/* Forgets the SLO's series addresses once series have left the head since they were
 * found. */
static void check_epoch(struct nn_slo_engine *e, struct nn_slo_rt *r)
{
  uint64_t ep = nn_tsdb_series_epoch(e->db);
  if (r->s_epoch != ep) {
    memset(r->out_s, 0, sizeof(r->out_s));
    memset(r->alert_s, 0, sizeof(r->alert_s));
    r->s_epoch = ep;
  }
}

/* Appends the SLO's output series at v->ts: by cached series id where there is one, by
 * labels (caching the id) for the others. */
static void write_series(struct nn_slo_engine *e, struct nn_tsdb_appender *a, struct nn_slo_rt *r)
{
  const struct nn_slo_spec *s = r->spec;
  const struct nn_slo_values *v = &r->last;
  double val[NN_SLO_NOUT];
  bool by_labels[NN_SLO_NOUT], any = false;
  for (int w = 0; w < NN_SLO_NWINDOWS; w++)
    val[w] = v->ratio[w];
  double *m = val + NN_SLO_OUT_META;
  m[0] = s->objective;
  m[1] = 1.0 - s->objective;
  m[2] = (double)s->period_min / 1440.0;
  m[3] = v->current_burn;
  m[4] = v->period_burn;
  m[5] = v->remaining;
  m[6] = v->tte;
  m[7] = 1;
  for (int i = 0; i < NN_SLO_NOUT; i++) {
    by_labels[i] = false;
    if (isnan(val[i]))
      continue; /* no data is an absent sample, never a NaN that poisons averages */
    if (r->out_ref[i]) {
      int rc = append_id(e, a, r->out_ref[i], &r->out_s[i], v->ts, val[i]);
      if (rc != NN_ENOTFOUND) {
        if (rc < 0 && rc != NN_EOUTOFORDER && rc != NN_EDUPLICATE)
          NN_LOG_RL(NN_LOG_WARN, MOD, "writing %s: %s",
                    i < NN_SLO_NWINDOWS ? "slo:sli_error" : meta_name[i - NN_SLO_OUT_META],
                    nn_strerror(rc));
        continue;
      }
      r->out_ref[i] = 0; /* dropped from the head: look it up (or create it) again */
    }
    by_labels[i] = any = true;
  }
  if (!any)
    return;
  struct nn_slo_lset l;
  char name[64], pbuf[40], num[40];
  base_labels(s, &l);
  const char *pname = period_name(s, pbuf, sizeof(pbuf));
  for (int w = 0; w < NN_SLO_NWINDOWS; w++) {
    if (!by_labels[w])
      continue;
    struct nn_slo_lset c = l;
    const char *wn = w < NN_SLO_W_PERIOD ? nn__slo_window_name[w] : pname;
    snprintf(name, sizeof(name), "slo:sli_error:ratio_rate%s", wn);
    nn__slo_lset_put(&c, "sloth_window", wn);
    put_sample_ref(e, a, &c, name, v->ts, val[w], &r->out_ref[w]);
  }
  for (int i = NN_SLO_OUT_META; i < NN_SLO_NOUT - 1; i++)
    if (by_labels[i])
      put_sample_ref(e, a, &l, meta_name[i - NN_SLO_OUT_META], v->ts, val[i], &r->out_ref[i]);
  if (by_labels[NN_SLO_NOUT - 1]) {
    struct nn_slo_lset info = l;
    nn_promql_format_float(s->objective * 100.0, num, sizeof(num));
    nn__slo_lset_put(&info, "sloth_mode", "nines");
    nn__slo_lset_put(&info, "sloth_objective", num);
    nn__slo_lset_put(&info, "sloth_spec", s->format);
    nn__slo_lset_put(&info, "sloth_version", NN_VERSION);
    put_sample_ref(e, a, &info, "sloth_slo_info", v->ts, 1, &r->out_ref[NN_SLO_NOUT - 1]);
  }
}

/* ---- Alerts ------------------------------------------------------------------------------ */

/* Labels of alert kind k: the SLO's series labels, alerting.labels, the tier's labels,
 * sloth_severity, then alertname. */
void nn__slo_alert_labels(const struct nn_slo_spec *s, int k, int level, char *lvlbuf,
                          size_t lvllen, struct nn_slo_lset *l)
{
  base_labels(s, l);
  for (size_t i = 0; i < s->alert_labels.n; i++)
    nn__slo_lset_put(l, s->alert_labels.k[i], s->alert_labels.v[i]);
  const struct nn_slo_alert_spec *tier = k == NN_SLO_A_PAGE ? &s->page : &s->ticket;
  for (size_t i = 0; i < tier->labels.n; i++)
    nn__slo_lset_put(l, tier->labels.k[i], tier->labels.v[i]);
  nn__slo_lset_put(l, "sloth_severity", k == NN_SLO_A_PAGE ? "page" : "ticket");
  if (k == NN_SLO_A_NODATA) {
    nn__slo_lset_put(l, "alertname", "SLONoData");
  } else if (k == NN_SLO_A_BUDGET) {
    nn__slo_lset_put(l, "alertname", "SLOErrorBudgetConsumed");
    snprintf(lvlbuf, lvllen, "%d", level);
    nn__slo_lset_put(l, "budget_consumed", lvlbuf);
  } else {
    nn__slo_lset_put(l, "alertname", s->alert_name);
  }
}

/* Expands {{$labels.x}}, {{ $labels.x }} and {{$value}} (what Sloth's defaults use). */
static void expand(const char *t, const struct nn_slo_lset *l, double value, struct nn_buf *out)
{
  while (*t) {
    if (t[0] == '{' && t[1] == '{') {
      const char *p = t + 2, *close = strstr(p, "}}");
      while (*p == ' ')
        p++;
      if (close) {
        size_t n = (size_t)(close - p);
        while (n && p[n - 1] == ' ')
          n--;
        if (n > 8 && !strncmp(p, "$labels.", 8)) {
          for (size_t i = 0; i < l->n; i++)
            if (strlen(l->v[i].name) == n - 8 && !strncmp(l->v[i].name, p + 8, n - 8))
              nn_buf_appends(out, l->v[i].value);
          t = close + 2;
          continue;
        }
        if (n == 6 && !strncmp(p, "$value", 6)) {
          char num[40];
          nn_promql_format_float(value, num, sizeof(num));
          nn_buf_appends(out, num);
          t = close + 2;
          continue;
        }
      }
    }
    /* Literal text up to the next "{{" (or one '{') in one append. */
    const char *q = t + 1;
    while (*q && !(q[0] == '{' && q[1] == '{'))
      q++;
    nn_buf_append(out, t, (size_t)(q - t));
    t = q;
  }
}

/* Builds annotations into bufs (each a NUL-separated "name\0value\0" list in one buffer). */
int nn__slo_alert_annotations(const struct nn_slo_spec *s, int k, const struct nn_slo_lset *l,
                              const struct nn_slo_values *v, struct nn_buf *out,
                              struct nn_label *ann, size_t *nann)
{
  const char *sev = k == NN_SLO_A_PAGE ? "page" : "ticket";
  char title[256], desc[1024];
  const char *summary;
  /* A description on every alert: what the SLO promises, what is happening, and the spec's
   * own description when it has one (alerting.annotations.description replaces it). */
  const char *what = k == NN_SLO_A_NODATA ? "its SLI queries returned no events"
                     : k == NN_SLO_A_BUDGET
                         ? "{{$labels.budget_consumed}}% of the period's error budget is spent"
                         : "it is burning its error budget too fast (error ratio over 1h: "
                           "{{$value}})";
  snprintf(desc, sizeof(desc), "%s %s: objective %.10g%%; %s.%s%s", s->service, s->name,
           s->objective * 100, what, s->description && *s->description ? " " : "",
           s->description ? s->description : "");
  if (k == NN_SLO_A_NODATA) {
    snprintf(title, sizeof(title),
             "(ticket) {{$labels.sloth_service}} {{$labels.sloth_slo}} "
             "SLO has no events.");
    summary = "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO has had no events: its SLI "
              "queries return nothing.";
  } else if (k == NN_SLO_A_BUDGET) {
    snprintf(title, sizeof(title),
             "(ticket) {{$labels.sloth_service}} {{$labels.sloth_slo}} "
             "SLO error budget is {{$labels.budget_consumed}}%% consumed.");
    summary = "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO has used "
              "{{$labels.budget_consumed}}% of its error budget for the period.";
  } else {
    snprintf(title, sizeof(title),
             "(%s) {{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate "
             "is too fast.",
             sev);
    summary = "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over "
              "expected.";
  }
  /* Sloth's defaults, then alerting.annotations, then the tier's; later ones replace. */
  const struct nn_slo_alert_spec *tier = k == NN_SLO_A_PAGE ? &s->page : &s->ticket;
  const struct nn_slo_kv *src[2] = {&s->alert_annotations, &tier->annotations};
  const char *kk[16] = {"title", "summary", "description"}, *vv[16] = {title, summary, desc};
  size_t nkv = 3, offs[16];
  for (int si = 0; si < 2; si++) {
    for (size_t i = 0; i < src[si]->n; i++) {
      size_t j = 0;
      while (j < nkv && strcmp(kk[j], src[si]->k[i]))
        j++;
      if (j == nkv && nkv == 16)
        continue;
      kk[j] = src[si]->k[i];
      vv[j] = src[si]->v[i];
      if (j == nkv)
        nkv++;
    }
  }
  nn_buf_reset(out);
  for (size_t i = 0; i < nkv; i++) {
    offs[i] = out->len;
    expand(vv[i], l, v ? v->ratio[NN_SLO_W_1H] : 0, out);
    if (nn_buf_appendc(out, 0) < 0)
      return NN_ENOMEM;
  }
  for (size_t i = 0; i < nkv; i++)
    ann[i] = (struct nn_label){kk[i], out->data + offs[i]};
  *nann = nkv;
  return 0;
}

struct nn_slo_notify_batch {
  struct nn_notifier_alert a[NN_SLO_NALERTS + 1];
  struct nn_slo_lset labels[NN_SLO_NALERTS + 1];
  struct nn_label ann[NN_SLO_NALERTS + 1][16];
  struct nn_buf annbuf[NN_SLO_NALERTS + 1];
  char lvl[NN_SLO_NALERTS + 1][8];
  char url[NN_SLO_NALERTS + 1][512];
  size_t n;
};

/* generatorURL of an SLO alert: the SLO's row on the summary page (external_url/#slo-<id>),
 * the id percent-encoded outside [A-Za-z0-9._~-]. NULL without an external URL. */
static const char *slo_url(const struct nn_slo_engine *e, const char *id, char *buf, size_t len)
{
  if (!e->external_url || !*e->external_url)
    return NULL;
  size_t base = strlen(e->external_url);
  while (base > 0 && e->external_url[base - 1] == '/')
    base--;
  int n = snprintf(buf, len, "%.*s/#slo-", (int)base, e->external_url);
  if (n < 0 || (size_t)n >= len)
    return e->external_url;
  size_t o = (size_t)n;
  for (const unsigned char *p = (const unsigned char *)id; *p && o + 4 < len; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '_' || *p == '.' || *p == '~')
      buf[o++] = (char)*p;
    else
      o += (size_t)snprintf(buf + o, len - o, "%%%02X", *p);
  }
  buf[o] = 0;
  return buf;
}

static void queue_alert(struct nn_slo_engine *e, struct nn_slo_notify_batch *b, struct nn_slo_rt *r,
                        int k, int level, int64_t starts, int64_t ends)
{
  if (b->n >= NN_SLO_NALERTS + 1)
    return;
  size_t i = b->n;
  struct nn_slo_lset *l = &b->labels[i];
  nn__slo_alert_labels(r->spec, k, level, b->lvl[i], sizeof(b->lvl[i]), l);
  size_t nl = nn_labels_canonicalize(l->v, l->n);
  l->n = nl;
  size_t nann = 0;
  nn_buf_init(&b->annbuf[i], 1 << 16);
  if (nn__slo_alert_annotations(r->spec, k, l, &r->last, &b->annbuf[i], b->ann[i], &nann) < 0) {
    nn_buf_fini(&b->annbuf[i]);
    return;
  }
  b->a[i] = (struct nn_notifier_alert){
      .labels = l->v,
      .nlabels = l->n,
      .annotations = b->ann[i],
      .nannotations = nann,
      .starts_at_ms = starts,
      .ends_at_ms = ends,
      .generator_url = slo_url(e, r->spec->id, b->url[i], sizeof(b->url[i])),
  };
  b->n++;
}

static void step_alert(struct nn_slo_engine *e, struct nn_slo_rt *r, int k, bool cond, int level,
                       int64_t for_ms, int64_t ts, struct nn_slo_notify_batch *b)
{
  struct nn_slo_alert_state *a = &r->alerts[k];
  int64_t iv = interval_ms(e);
  int64_t valid = 4 * (iv > e->cfg.resend_delay_ms ? iv : e->cfg.resend_delay_ms);
  bool send = false;
  if (cond && a->state == NN_SLO_FIRING && k == NN_SLO_A_BUDGET && level != a->budget_level) {
    /* 80% -> 95%: the old level resolves, the new one fires. */
    queue_alert(e, b, r, k, a->budget_level, a->fired_at, ts);
    a->state = NN_SLO_INACTIVE;
  }
  if (cond) {
    if (a->state == NN_SLO_INACTIVE) {
      a->state = for_ms > 0 ? NN_SLO_PENDING : NN_SLO_FIRING;
      a->active_at = ts;
      a->resolved_at = 0;
      a->budget_level = level;
      if (a->state == NN_SLO_FIRING) {
        a->fired_at = ts;
        send = true;
      }
    } else if (a->state == NN_SLO_PENDING && ts - a->active_at >= for_ms) {
      a->state = NN_SLO_FIRING;
      a->fired_at = ts;
      send = true;
    }
    if (a->state == NN_SLO_FIRING && (send || ts - a->last_sent >= e->cfg.resend_delay_ms)) {
      queue_alert(e, b, r, k, a->budget_level, a->fired_at, ts + valid);
      a->last_sent = ts;
    }
    return;
  }
  if (a->state == NN_SLO_FIRING) {
    a->resolved_at = ts;
    a->resolved_level = a->budget_level;
    a->last_sent = 0;
  }
  a->state = NN_SLO_INACTIVE;
  if (a->resolved_at) {
    if (ts - a->resolved_at > RESOLVED_KEEP_MS) {
      a->resolved_at = 0;
    } else if (!a->last_sent || ts - a->last_sent >= e->cfg.resend_delay_ms) {
      queue_alert(e, b, r, k, a->resolved_level, a->fired_at, a->resolved_at);
      a->last_sent = ts;
    }
  }
}

static void run_alerts(struct nn_slo_engine *e, struct nn_slo_rt *r, int64_t ts,
                       struct nn_tsdb_appender *app)
{
  /* One batch for the engine's life: queue_alert fills every field of the entries it
   * adds, so clearing the count is enough. */
  if (!e->batch && !(e->batch = calloc(1, sizeof(*e->batch))))
    return;
  struct nn_slo_notify_batch *b = e->batch;
  b->n = 0;
  const struct nn_slo_values *v = &r->last;
  const struct nn_slo_spec *s = r->spec;
  step_alert(e, r, NN_SLO_A_PAGE, v->page, 0, s->page.for_ms, ts, b);
  /* A tier fires only when no faster one is active for this SLO: the page suppresses the
   * ticket, so one incident is one notification (SRE Workbook, approach 5's caveat). */
  const struct nn_slo_alert_state *pg = &r->alerts[NN_SLO_A_PAGE];
  bool page_active = pg->state != NN_SLO_INACTIVE ||
                     (pg->fired_at && ts - pg->fired_at < PAGE_SUPPRESSES_TICKET_MS);
  /* A ticket waits at least the page's short window (5m) before firing, so a burn that
   * trips a slow ticket tier first and the page a few minutes later notifies once. */
  int64_t tfor = s->ticket.for_ms > TICKET_MIN_FOR_MS ? s->ticket.for_ms : TICKET_MIN_FOR_MS;
  step_alert(e, r, NN_SLO_A_TICKET, v->ticket && !page_active, 0, tfor, ts, b);
  step_alert(e, r, NN_SLO_A_NODATA, v->nodata, 0, 0, ts, b);
  step_alert(e, r, NN_SLO_A_BUDGET, v->budget_level > 0, v->budget_level, 0, ts, b);
  for (int k = 0; k < NN_SLO_NALERTS; k++) {
    const struct nn_slo_alert_state *a = &r->alerts[k];
    if (a->state == NN_SLO_INACTIVE)
      continue;
    /* The series' labels follow from the state and the budget level alone. */
    int key = (int)a->state * 1000 + a->budget_level;
    if (r->alert_ref[k] && r->alert_key[k] == key) {
      int rc = append_id(e, app, r->alert_ref[k], &r->alert_s[k], ts, 1);
      if (rc != NN_ENOTFOUND) {
        if (rc < 0 && rc != NN_EOUTOFORDER && rc != NN_EDUPLICATE)
          NN_LOG_RL(NN_LOG_WARN, MOD, "writing ALERTS: %s", nn_strerror(rc));
        continue;
      }
    }
    r->alert_ref[k] = 0;
    r->alert_s[k] = NULL;
    r->alert_key[k] = key;
    struct nn_slo_lset l;
    char lvl[8];
    nn__slo_alert_labels(s, k, a->budget_level, lvl, sizeof(lvl), &l);
    nn__slo_lset_put(&l, "alertstate", a->state == NN_SLO_FIRING ? "firing" : "pending");
    put_sample_ref(e, app, &l, "ALERTS", ts, 1, &r->alert_ref[k]);
  }
  if (b->n && e->notify)
    e->notify(e->notify_ud, b->a, b->n);
  for (size_t i = 0; i < b->n; i++)
    nn_buf_fini(&b->annbuf[i]);
  b->n = 0;
}

/* ---- Evaluation -------------------------------------------------------------------------- */

/* SLOs whose samples are committed together: a few hundred samples, whose series are
 * still in the cache from their appends (one commit per cycle walked 170,000 cold series
 * and a 5 MB list of pending samples again for 10,000 SLOs). */
#define COMMIT_EVERY 32

/* SLOs ahead of the one being written whose series' head slots start loading. */
#define PREFETCH_AHEAD 8

static void prefetch_series(const struct nn_slo_engine *e, const struct nn_slo_rt *r, int stage,
                            uint64_t epoch)
{
  if (!r->due)
    return;
  if (r->s_epoch != epoch) {
    /* Its addresses are stale: by id, as write_series will append. */
    for (int k = 0; k < NN_SLO_NOUT; k++)
      if (r->out_ref[k])
        nn_tsdb_prefetch_ref(e->db, r->out_ref[k], stage);
    return;
  }
  for (int k = 0; k < NN_SLO_NOUT; k++) {
    if (r->out_s[k] && stage == 1)
      nn_tsdb_prefetch_series(r->out_s[k]);
    else if (!r->out_s[k] && r->out_ref[k])
      nn_tsdb_prefetch_ref(e->db, r->out_ref[k], stage);
  }
  for (int k = 0; k < NN_SLO_NALERTS; k++) {
    if (!r->alert_ref[k] || r->alerts[k].state == NN_SLO_INACTIVE)
      continue;
    if (r->alert_s[k] && stage == 1)
      nn_tsdb_prefetch_series(r->alert_s[k]);
    else if (!r->alert_s[k])
      nn_tsdb_prefetch_ref(e->db, r->alert_ref[k], stage);
  }
}

/* Levels of an SLI query loaded ahead: sum(rate(m{...}[w])) is a sum, a call, its
 * arguments, a range, a selector and its matchers. */
#define AST_STAGES 7

/* Each SLO's two query trees are cold by its turn (20,000 of them a cycle): the ones of
 * the SLOs ahead start loading, a level per SLO, their runtime entry first. */
static void prefetch_queries(const struct nn_slo_engine *e, size_t i)
{
  if (i + AST_STAGES + 1 < e->nrt)
    __builtin_prefetch(&e->rt[i + AST_STAGES + 1].err_expr);
  for (int st = 0; st < AST_STAGES; st++) {
    size_t j = i + AST_STAGES - (size_t)st;
    if (j < e->nrt) {
      nn_promql_expr_prefetch(e->rt[j].err_expr, st);
      nn_promql_expr_prefetch(e->rt[j].total_expr, st);
    }
  }
}

static void commit(struct nn_tsdb_appender *app)
{
  int rc = nn_tsdb_appender_commit(app);
  if (rc < 0)
    NN_LOG_RL(NN_LOG_WARN, MOD, "committing slo series: %s", nn_strerror(rc));
}

int nn_slo_eval_at(struct nn_slo_engine *e, int64_t ts)
{
  int64_t iv = interval_ms(e);
  ts -= ((ts % iv) + iv) % iv;
  struct nn_querier q;
  nn_tsdb_querier(e->db, &q);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(e->db, &st);
  struct nn_tsdb_appender *app = nn_tsdb_appender_create(e->db);
  if (!app)
    return NN_ENOMEM;
  int failures = 0;
  e->stats.evaluations_total++;
  for (size_t i = 0; i < e->nrt; i++) {
    prefetch_queries(e, i);
    struct nn_slo_rt *r = &e->rt[i];
    const struct nn_slo_spec *s = r->spec;
    if (r->ledger.last_eval_ms >= ts)
      continue; /* already folded in: never count an interval twice */
    int64_t period_ms = (s->period_min + 72 * 60) * 60000;
    int64_t from = r->ledger.last_eval_ms;
    if (!from && e->cfg.backfill && st.min_time != INT64_MAX)
      from = st.min_time - st.min_time % iv;
    if (from && from < ts - period_ms)
      from = ts - period_ms - (ts - period_ms) % iv;
    if (from && from < ts - iv && replay(e, &q, r, from, ts - iv) < 0)
      failures++;
    double ev = 0, tv = 0;
    bool he = false, ht = false;
    int rc = query_instant(e, &q, r->err_expr, ts, &ev, &he);
    if (rc == 0 && r->total_expr)
      rc = query_instant(e, &q, r->total_expr, ts, &tv, &ht);
    if (rc < 0) {
      failures++;
      continue;
    }
    fold(r, ts, iv, ev, he, tv, ht);
    r->ledger.last_eval_ms = ts;
    int64_t me = s->min_events >= 0 ? s->min_events : e->cfg.min_events;
    nn__slo_compute(s, &r->ledger, ts, me, e->cfg.no_data_for_ms / 60000, &r->last);
    r->have_last = true;
    r->due = true;
  }
  /* Then the writes, once every query has run (so that no query sees this cycle's
   * samples), committed a few SLOs at a time while their series are in the cache; the
   * head slots of the series some SLOs ahead start loading, then the series. */
  int batched = 0;
  for (size_t i = 0; i < e->nrt; i++) {
    uint64_t epoch = nn_tsdb_series_epoch(e->db);
    if (i + PREFETCH_AHEAD < e->nrt)
      prefetch_series(e, &e->rt[i + PREFETCH_AHEAD], 0, epoch);
    if (i + PREFETCH_AHEAD / 2 < e->nrt)
      prefetch_series(e, &e->rt[i + PREFETCH_AHEAD / 2], 1, epoch);
    struct nn_slo_rt *r = &e->rt[i];
    if (!r->due)
      continue;
    r->due = false;
    check_epoch(e, r);
    write_series(e, app, r);
    run_alerts(e, r, ts, app);
    if (++batched == COMMIT_EVERY) {
      commit(app);
      batched = 0;
    }
  }
  commit(app);
  nn_tsdb_appender_destroy(app);
  if (failures)
    e->stats.evaluation_failures_total++;
  if (e->data_dir && ++e->evals_since_snapshot >= (uint64_t)e->cfg.snapshot_every) {
    e->evals_since_snapshot = 0;
    nn__slo_snapshot_write(e);
  }
  return failures ? NN_EIO : 0;
}

int nn_slo_snapshot(struct nn_slo_engine *e)
{
  return e->data_dir ? nn__slo_snapshot_write(e) : 0;
}

/* ---- Introspection ----------------------------------------------------------------------- */

static const char *status_of(const struct nn_slo_rt *r)
{
  const struct nn_slo_values *v = &r->last;
  if (!r->have_last || isnan(v->remaining))
    return "no_data";
  if (v->remaining < 0)
    return "breached";
  if (r->alerts[NN_SLO_A_PAGE].state == NN_SLO_FIRING ||
      r->alerts[NN_SLO_A_TICKET].state == NN_SLO_FIRING || v->remaining < 0.25)
    return "at_risk";
  return "ok";
}

const char *nn__slo_status(const struct nn_slo_rt *r)
{
  return status_of(r);
}

int nn_slo_get_status(const struct nn_slo_engine *e, const char *id, struct nn_slo_status *out)
{
  for (size_t i = 0; i < e->nrt; i++) {
    const struct nn_slo_rt *r = &e->rt[i];
    if (strcmp(r->spec->id, id))
      continue;
    memset(out, 0, sizeof(*out));
    out->id = r->spec->id;
    out->objective = r->spec->objective;
    for (int w = 0; w < NN_SLO_NWINDOWS; w++)
      out->error_ratio[w] = r->have_last ? r->last.ratio[w] : NAN;
    out->bad_period = r->last.bad[NN_SLO_W_PERIOD];
    out->total_period = r->last.total[NN_SLO_W_PERIOD];
    out->budget_remaining = r->have_last ? r->last.remaining : NAN;
    out->time_to_exhaustion = r->have_last ? r->last.tte : NAN;
    out->status = status_of(r);
    out->page_firing = r->alerts[NN_SLO_A_PAGE].state == NN_SLO_FIRING;
    out->ticket_firing = r->alerts[NN_SLO_A_TICKET].state == NN_SLO_FIRING;
    out->no_data_firing = r->alerts[NN_SLO_A_NODATA].state == NN_SLO_FIRING;
    out->budget_alert = r->alerts[NN_SLO_A_BUDGET].state == NN_SLO_FIRING
                            ? r->alerts[NN_SLO_A_BUDGET].budget_level
                            : 0;
    return 0;
  }
  return NN_ENOTFOUND;
}

void nn_slo_stats(const struct nn_slo_engine *e, struct nn_slo_stats *out)
{
  *out = e->stats;
  out->slos = e->nrt;
  out->alerts_firing = out->alerts_pending = 0;
  out->ledger_bytes = 0;
  for (size_t i = 0; i < e->nrt; i++) {
    out->ledger_bytes += nn__slo_ledger_bytes(&e->rt[i].ledger);
    for (int k = 0; k < NN_SLO_NALERTS; k++) {
      out->alerts_firing += e->rt[i].alerts[k].state == NN_SLO_FIRING;
      out->alerts_pending += e->rt[i].alerts[k].state == NN_SLO_PENDING;
    }
  }
}

/* ---- Benchmark hook ---------------------------------------------------------------------- */

double nn_slo_bench(size_t n_slos, size_t iterations)
{
  if (n_slos == 0 || iterations == 0 || n_slos > 1000000)
    return NN_EINVAL;
  struct nn_slo_spec spec = {0};
  spec.objective = 0.999;
  spec.period_kind = NN_SLO_ROLLING;
  spec.period_min = 30 * 1440;
  double pct[4] = {2, 5, 10, 10};
  memcpy(spec.budget_pct, pct, sizeof(pct));
  struct nn_slo_ledger *l = calloc(n_slos, sizeof(*l));
  if (!l)
    return NN_ENOMEM;
  int64_t t0 = 28000000; /* minutes since the epoch, about 2023 */
  size_t made = 0;
  double rc = 0;
  for (; made < n_slos; made++) {
    if (nn__slo_ledger_init(&l[made], spec.period_min, 0) < 0) {
      rc = NN_ENOMEM;
      goto out;
    }
    for (int64_t m = 0; m < 1440; m++)
      nn__slo_ledger_add(&l[made], t0 + m, (double)(m % 7), 1000);
  }
  struct timespec a, b;
  struct nn_slo_values v;
  double sink = 0;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (size_t it = 0; it < iterations; it++) {
    for (size_t i = 0; i < n_slos; i++) {
      nn__slo_compute(&spec, &l[i], (t0 + 1440) * 60000, 50, 10, &v);
      sink += v.remaining;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  rc = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)iterations;
  if (isnan(sink))
    rc += 0; /* keeps the loop from being optimised away */
out:
  for (size_t i = 0; i < made; i++)
    nn__slo_ledger_fini(&l[i]);
  free(l);
  return rc;
}
