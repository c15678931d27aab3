/* SPDX-License-Identifier: Apache-2.0 */
/* The SLO engine against hand-computed budgets (SRE Workbook numbers), a real in-memory
 * tsdb holding synthetic request counters (spike pages, trickle tickets, low traffic does
 * not page, no data is no data), Sloth's own rule expressions evaluated by our PromQL
 * engine, snapshot + replay across a restart, O(1) window cost, Sloth's example specs,
 * `promtool check rules` on the export, and the JSON API parsed back with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/slo/internal.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/buf.h"
#include "common/error.h"

#define T0   1700002800000LL /* an hour boundary */
#define MIN  60000LL
#define HOUR (60 * MIN)

static const char SPEC[] =
    "version: \"prometheus/v1\"\n"
    "service: api\n"
    "labels: {owner: team-a}\n"
    "slos:\n"
    "  - name: availability\n"
    "    objective: 99.9\n"
    "    sli:\n"
    "      events:\n"
    "        error_query: sum(rate(http_requests_total{job=\"api\",code=~\"5..\"}[{{.window}}]))\n"
    "        total_query: sum(rate(http_requests_total{job=\"api\"}[{{.window}}]))\n"
    "    alerting:\n"
    "      name: ApiAvailability\n"
    "      annotations: {runbook_url: \"https://runbooks/api\"}\n"
    "      page_alert: {labels: {severity: page}}\n"
    "      ticket_alert: {labels: {severity: ticket}}\n";

/* ---- Test data: counters sampled every 15 s, constant rate inside each 30 s slot -------- */

typedef void (*rate_fn)(int64_t t, double *ok_rps, double *err_rps);

static struct nn_tsdb *open_db(void)
{
  struct nn_tsdb_options o;
  struct nn_tsdb *db;
  nn_tsdb_options_default(&o);
  o.out_of_bounds_window_ms = 30LL * 24 * HOUR;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  return db;
}

static void write_counters(struct nn_tsdb *db, int64_t from, int64_t to, rate_fn fn)
{
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  struct nn_label ok[] = {{"__name__", "http_requests_total"}, {"code", "200"}, {"job", "api"}};
  struct nn_label er[] = {{"__name__", "http_requests_total"}, {"code", "500"}, {"job", "api"}};
  double c_ok = 1000, c_err = 1000;
  for (int64_t t = from; t <= to; t += 15000) {
    double r_ok, r_err;
    /* The rate of the slot (t - 30 s, t] applies to both of its 15 s halves. */
    int64_t slot_end = t + (t % 30000 ? 15000 : 0);
    fn(slot_end, &r_ok, &r_err);
    if (t > from) {
      c_ok += r_ok * 15;
      c_err += r_err * 15;
    }
    assert_int_equal(nn_tsdb_appender_append(a, ok, 3, t, c_ok, NULL), 0);
    assert_int_equal(nn_tsdb_appender_append(a, er, 3, t, c_err, NULL), 0);
    if (nn_tsdb_appender_pending(a) > 10000)
      assert_int_equal(nn_tsdb_appender_commit(a), 0);
  }
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
}

/* ---- Notifications captured -------------------------------------------------------------- */

struct captured {
  int page_firing, ticket_firing, resolved;
  char severity[32], alertname[64], runbook[64];
  /* Error-budget-policy alerts: how often each level was sent firing, and resolved. */
  int budget80, budget95, budget80_resolved;
  int64_t last_eval_ms; /* set by run(): the evaluation the notification comes from */
  char description[512], budget_description[512], generator_url[128];
  /* Page notifications: endsAt of the last firing one minus its evaluation time; resolved
   * ones sent (endsAt = resolution time) and the evaluation of the last. */
  int64_t page_valid_ms, page_resolved_ends;
  int page_resolved_sends;
  int64_t page_resolved_last_eval;
};
static struct captured cap;

static void on_notify(void *ud, const struct nn_notifier_alert *alerts, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    const char *sev = nn_labels_get(alerts[i].labels, alerts[i].nlabels, "sloth_severity");
    const char *an = nn_labels_get(alerts[i].labels, alerts[i].nlabels, "alertname");
    const char *desc = "";
    for (size_t k = 0; k < alerts[i].nannotations; k++)
      if (!strcmp(alerts[i].annotations[k].name, "description"))
        desc = alerts[i].annotations[k].value;
    snprintf(cap.generator_url, sizeof(cap.generator_url), "%s",
             alerts[i].generator_url ? alerts[i].generator_url : "");
    if (!strcmp(an, "SLOErrorBudgetConsumed")) {
      const char *lvl = nn_labels_get(alerts[i].labels, alerts[i].nlabels, "budget_consumed");
      bool resolved = alerts[i].ends_at_ms <= cap.last_eval_ms;
      if (!strcmp(lvl, "80"))
        resolved ? cap.budget80_resolved++ : cap.budget80++;
      else if (!strcmp(lvl, "95") && !resolved)
        cap.budget95++;
      snprintf(cap.budget_description, sizeof(cap.budget_description), "%s", desc);
      continue;
    }
    if (alerts[i].ends_at_ms <= alerts[i].starts_at_ms + 15 * MIN &&
        alerts[i].ends_at_ms < alerts[i].starts_at_ms + 4 * MIN) {
      cap.resolved++;
      continue;
    }
    if (strcmp(an, "ApiAvailability"))
      continue;
    if (!strcmp(sev, "page")) {
      if (alerts[i].ends_at_ms <= cap.last_eval_ms) {
        cap.page_resolved_sends++;
        cap.page_resolved_ends = alerts[i].ends_at_ms;
        cap.page_resolved_last_eval = cap.last_eval_ms;
        continue;
      }
      cap.page_valid_ms = alerts[i].ends_at_ms - cap.last_eval_ms;
    }
    if (!strcmp(sev, "page"))
      cap.page_firing++;
    else
      cap.ticket_firing++;
    snprintf(cap.severity, sizeof(cap.severity), "%s",
             nn_labels_get(alerts[i].labels, alerts[i].nlabels, "severity"));
    snprintf(cap.alertname, sizeof(cap.alertname), "%s", an);
    snprintf(cap.description, sizeof(cap.description), "%s", desc);
    for (size_t k = 0; k < alerts[i].nannotations; k++)
      if (!strcmp(alerts[i].annotations[k].name, "runbook_url"))
        snprintf(cap.runbook, sizeof(cap.runbook), "%s", alerts[i].annotations[k].value);
  }
}

static struct nn_slo_engine *engine(struct nn_tsdb *db, const char *dir, const char *spec)
{
  struct nn_slo_config cfg;
  struct nn_cfg_error cerr;
  memset(&cfg, 0, sizeof(cfg));
  assert_int_equal(nn_cfg_apply_defaults(nn_slo_config_options, &cfg, &cerr), 0);
  cfg.snapshot_every = 1000000;
  struct nn_slo_opts o = {.db = db,
                          .cfg = &cfg,
                          .data_dir = dir,
                          .notify = on_notify,
                          .external_url = "http://nines.example:9595/"};
  struct nn_slo_engine *e = nn_slo_create(&o);
  nn_cfg_free(nn_slo_config_options, &cfg);
  assert_non_null(e);
  struct nn_slo_set *set;
  char err[512];
  assert_int_equal(nn_slo_set_load_string("spec.yml", spec, strlen(spec), &set, err, sizeof(err)),
                   0);
  assert_int_equal(nn_slo_reload_set(e, set, err, sizeof(err)), 0);
  return e;
}

static void run(struct nn_slo_engine *e, int64_t from, int64_t to)
{
  for (int64_t t = from; t <= to; t += 30000) {
    cap.last_eval_ms = t;
    nn_slo_eval_at(e, t);
  }
}

/* ---- Hand-computed budget maths ---------------------------------------------------------- */

static struct nn_slo_spec std_spec(double objective, int64_t period_days)
{
  struct nn_slo_spec s;
  memset(&s, 0, sizeof(s));
  s.objective = objective;
  s.period_kind = NN_SLO_ROLLING;
  s.period_min = period_days * 1440;
  double pct[4] = {2, 5, 10, 10};
  memcpy(s.budget_pct, pct, sizeof(pct));
  return s;
}

static void budget_numbers_match_the_workbook(void **state)
{
  struct nn_slo_spec s = std_spec(0.999, 30);
  /* 99.9% over 30 days allows 43.2 minutes of full outage. */
  assert_float_equal((1 - s.objective) * (double)s.period_min, 43.2, 1e-9);
  /* Burn factors 14.4, 6, 3, 1 for the 30-day period. */
  assert_float_equal(nn__slo_factor(&s, 0), 14.4, 1e-12);
  assert_float_equal(nn__slo_factor(&s, 1), 6, 1e-12);
  assert_float_equal(nn__slo_factor(&s, 2), 3, 1e-12);
  assert_float_equal(nn__slo_factor(&s, 3), 1, 1e-12);
  struct nn_slo_spec s28 = std_spec(0.999, 28);
  assert_float_equal(nn__slo_factor(&s28, 0), 13.44, 1e-12);

  /* 30 days of 1000 events/min without errors, then one hour burning at 14.4x. */
  struct nn_slo_ledger l;
  assert_int_equal(nn__slo_ledger_init(&l, s.period_min, 0), 0);
  int64_t m0 = 28000000, end = m0 + 30 * 1440 - 1;
  for (int64_t m = m0; m <= end; m++)
    nn__slo_ledger_add(&l, m, m > end - 60 ? 1000 * 0.0144 : 0, 1000);
  struct nn_slo_values v;
  nn__slo_compute(&s, &l, (end + 1) * MIN, 50, 10, &v);
  assert_float_equal(v.total[NN_SLO_W_PERIOD], 30.0 * 1440 * 1000, 1e-3);
  assert_float_equal(v.ratio[NN_SLO_W_1H] / 0.001, 14.4, 1e-9);
  /* That hour consumed 2% of the budget. */
  assert_float_equal(1 - v.remaining, 0.02, 1e-9);
  /* Exactly at 14.4x does not page: the comparison is strict (">"), as in Sloth's rules. */
  assert_true(v.ratio[NN_SLO_W_5M] > 0);
  /* At 14.4x with 98% left: 0.98 * 30 d / 14.4. */
  assert_float_equal(v.tte, 0.98 * 30 * 86400 / 14.4, 1e-3);
  /* Windows are exact sums: the 3-day window (coarse buckets) sees the whole hour too. */
  assert_float_equal(v.bad[NN_SLO_W_3D], 864, 1e-6);
  assert_true(nn__slo_ledger_bytes(&l) < 64 * 1024);
  nn__slo_ledger_fini(&l);
}

static void traffic_weighted_not_mean_of_ratios(void **state)
{
  struct nn_slo_spec s = std_spec(0.99, 30);
  struct nn_slo_ledger l;
  assert_int_equal(nn__slo_ledger_init(&l, s.period_min, 0), 0);
  /* One busy minute at 1% errors, 59 quiet minutes at 100% errors of 1 request. */
  int64_t m0 = 28000000;
  nn__slo_ledger_add(&l, m0, 100, 10000);
  for (int64_t m = m0 + 1; m < m0 + 60; m++)
    nn__slo_ledger_add(&l, m, 1, 1);
  struct nn_slo_values v;
  nn__slo_compute(&s, &l, (m0 + 60) * MIN, 50, 10, &v);
  assert_float_equal(v.ratio[NN_SLO_W_1H], 159.0 / 10059.0, 1e-12);
  nn__slo_ledger_fini(&l);
}

/* Evaluated 30 s into a minute, a 5-minute window covers the second half of its oldest minute
 * too, as rate(x[5m]) does: (ts - 5m, ts], not whole minutes only. */
static void windows_cover_part_of_the_oldest_minute(void **state)
{
  struct nn_slo_spec s = std_spec(0.99, 30);
  struct nn_slo_ledger l;
  assert_int_equal(nn__slo_ledger_init(&l, s.period_min, 0), 0);
  int64_t m0 = 28000000;
  for (int64_t i = 0; i < 10; i++)
    nn__slo_ledger_add(&l, m0 + i, (double)i, 100);
  struct nn_slo_values v;
  nn__slo_compute(&s, &l, (m0 + 9) * MIN + 30000, 50, 10, &v);
  assert_float_equal(v.total[NN_SLO_W_5M], 500 + 50, 1e-9);
  assert_float_equal(v.bad[NN_SLO_W_5M], 5 + 6 + 7 + 8 + 9 + 0.5 * 4, 1e-9);
  /* On a minute boundary the window is whole minutes. */
  nn__slo_compute(&s, &l, (m0 + 10) * MIN, 50, 10, &v);
  assert_float_equal(v.total[NN_SLO_W_5M], 500, 1e-9);
  assert_float_equal(v.bad[NN_SLO_W_5M], 35, 1e-9);
  nn__slo_ledger_fini(&l);
}

static void window_cost_does_not_grow_with_period(void **state)
{
  struct nn_slo_spec s7 = std_spec(0.999, 7), s90 = std_spec(0.999, 90);
  struct nn_slo_ledger a, b;
  assert_int_equal(nn__slo_ledger_init(&a, s7.period_min, 0), 0);
  assert_int_equal(nn__slo_ledger_init(&b, s90.period_min, 0), 0);
  int64_t m0 = 28000000, end = m0 + 90 * 1440;
  for (int64_t m = m0; m < end; m += 7) {
    nn__slo_ledger_add(&a, m, 1, 100);
    nn__slo_ledger_add(&b, m, 1, 100);
  }
  struct nn_slo_values v;
  double best[2] = {1e30, 1e30};
  for (int rep = 0; rep < 5; rep++) {
    for (int k = 0; k < 2; k++) {
      struct timespec t0, t1;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      for (int i = 0; i < 20000; i++)
        nn__slo_compute(k ? &s90 : &s7, k ? &b : &a, end * MIN, 50, 10, &v);
      clock_gettime(CLOCK_MONOTONIC, &t1);
      double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
      if (ns < best[k])
        best[k] = ns;
    }
  }
  /* 90 days is 13x the 7-day period; O(1) windows keep the cost within noise. */
  assert_true(best[1] < best[0] * 2.5);
  assert_true(nn_slo_bench(10, 10) > 0);
  nn__slo_ledger_fini(&a);
  nn__slo_ledger_fini(&b);
}

/* ---- Engine over a tsdb ------------------------------------------------------------------ */

static void spike_rates(int64_t t, double *ok, double *err)
{
  /* 20 rps with 0.05% errors; 20% errors for 10 minutes from T0 + 6h. */
  double e = t > T0 + 6 * HOUR && t <= T0 + 6 * HOUR + 10 * MIN ? 0.2 : 0.0005;
  *ok = 20 * (1 - e);
  *err = 20 * e;
}

static void spike_pages(void **state)
{
  struct nn_tsdb *db = open_db();
  write_counters(db, T0, T0 + 7 * HOUR, spike_rates);
  memset(&cap, 0, sizeof(cap));
  struct nn_slo_engine *e = engine(db, NULL, SPEC);
  run(e, T0 + 30000, T0 + 6 * HOUR);
  struct nn_slo_status st;
  assert_int_equal(nn_slo_get_status(e, "api-availability", &st), 0);
  assert_false(st.page_firing);
  assert_int_equal(cap.page_firing, 0);
  assert_string_equal(st.status, "ok");
  run(e, T0 + 6 * HOUR + 30000, T0 + 6 * HOUR + 10 * MIN);
  assert_int_equal(nn_slo_get_status(e, "api-availability", &st), 0);
  assert_true(st.page_firing);
  assert_false(st.ticket_firing); /* the page suppresses the ticket */
  /* 2400 bad of ~444,000 events is 0.54%: over the whole 0.1% budget already. */
  assert_string_equal(st.status, "breached");
  assert_true(cap.page_firing > 0);
  assert_int_equal(cap.ticket_firing, 0);
  assert_string_equal(cap.severity, "page");
  assert_string_equal(cap.runbook, "https://runbooks/api");
  /* The short windows (5m, 30m) let the page reset soon after the errors stop. */
  run(e, T0 + 6 * HOUR + 10 * MIN + 30000, T0 + 6 * HOUR + 20 * MIN);
  assert_int_equal(nn_slo_get_status(e, "api-availability", &st), 0);
  assert_true(st.page_firing); /* 6h > 6x and 30m > 6x still hold */
  /* endsAt = send time + 4 x max(evaluation interval 30 s, resend delay 1 m). */
  assert_int_equal(cap.page_valid_ms, 4 * MIN);
  run(e, T0 + 6 * HOUR + 20 * MIN + 30000, T0 + 6 * HOUR + 41 * MIN);
  assert_int_equal(nn_slo_get_status(e, "api-availability", &st), 0);
  assert_false(st.page_firing);
  /* Resolved: sent with endsAt = the resolution, then again every minute for 15 minutes. */
  int64_t resolved = cap.page_resolved_ends;
  assert_true(cap.page_resolved_sends >= 1 && resolved > T0 + 6 * HOUR + 20 * MIN);
  run(e, T0 + 6 * HOUR + 41 * MIN + 30000, T0 + 7 * HOUR);
  assert_int_equal(cap.page_resolved_ends, resolved);
  assert_true(cap.page_resolved_last_eval <= resolved + 15 * MIN);
  assert_true(cap.page_resolved_last_eval >= resolved + 14 * MIN);
  assert_int_equal(cap.page_resolved_sends, 16); /* at +0, +1 m, ..., +15 m */

  /* ALERTS and slo:* series went into the head. */
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  struct nn_promql_expr *x;
  struct nn_promql_error perr;
  const char *qs = "ALERTS{alertname=\"ApiAvailability\",alertstate=\"firing\",sloth_severity="
                   "\"page\"}[1h]";
  assert_int_equal(nn_promql_parse(qs, strlen(qs), &x, &perr), 0);
  struct nn_promql_result res;
  assert_int_equal(nn_promql_eval_instant(&q, x, T0 + 6 * HOUR + 41 * MIN, NULL, &res, &perr), 0);
  assert_int_equal(res.nseries, 1);
  nn_promql_result_fini(&res);
  nn_promql_expr_free(x);
  qs = "slo:period_error_budget_remaining:ratio{sloth_id=\"api-availability\",owner=\"team-a\"}";
  assert_int_equal(nn_promql_parse(qs, strlen(qs), &x, &perr), 0);
  assert_int_equal(nn_promql_eval_instant(&q, x, T0 + 6 * HOUR + 41 * MIN, NULL, &res, &perr), 0);
  assert_int_equal(res.nseries, 1);
  assert_float_equal(res.series[0].v[0], st.budget_remaining, 1e-12);
  nn_promql_result_fini(&res);
  nn_promql_expr_free(x);
  nn_slo_destroy(e);
  nn_tsdb_close(db);
}

static void trickle_rates(int64_t t, double *ok, double *err)
{
  *ok = 20 * 0.996; /* 0.4% errors: a 4x burn */
  *err = 20 * 0.004;
}

/* One number from an instant query; NaN when it returns nothing. */
static double instant_value(struct nn_tsdb *db, const char *qs, int64_t t)
{
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  struct nn_promql_expr *x;
  struct nn_promql_error perr;
  struct nn_promql_result res;
  assert_int_equal(nn_promql_parse(qs, strlen(qs), &x, &perr), 0);
  assert_int_equal(nn_promql_eval_instant(&q, x, t, NULL, &res, &perr), 0);
  double v = res.type == NN_PROMQL_SCALAR ? res.scalar : res.nseries ? res.series[0].v[0] : NAN;
  nn_promql_result_fini(&res);
  nn_promql_expr_free(x);
  return v;
}

/* The engine appends its slo:* and ALERTS series by the head ids it cached; once head GC
 * removed those series, the next evaluations write them by labels again: they come back,
 * once each, with the current values. */
static void output_series_come_back_after_head_gc(void **state)
{
  struct nn_tsdb *db = open_db();
  write_counters(db, T0, T0 + HOUR, trickle_rates);
  struct nn_slo_engine *e = engine(db, NULL, SPEC);
  run(e, T0 + 30 * MIN, T0 + HOUR);
  const char *count_q =
      "count({__name__=~\"slo:.+|sloth_slo_info\",sloth_id=\"api-availability\"})";
  const char *budget_q = "ALERTS{alertname=\"SLOErrorBudgetConsumed\",alertstate=\"firing\"}";
  double outputs = instant_value(db, count_q, T0 + HOUR);
  assert_float_equal(outputs, 16, 0); /* 8 windows, 7 meta series, sloth_slo_info */
  assert_float_equal(instant_value(db, budget_q, T0 + HOUR), 1, 0);

  /* Everything is older than the cut: every series goes. */
  assert_true(nn_tsdb_head_truncate(db, T0 + 2 * HOUR) > 0);
  assert_int_equal(nn_tsdb_series_count(db), 0);
  write_counters(db, T0 + 2 * HOUR, T0 + 3 * HOUR, trickle_rates);
  run(e, T0 + 2 * HOUR + 30 * MIN, T0 + 3 * HOUR);
  assert_float_equal(instant_value(db, count_q, T0 + 3 * HOUR), outputs, 0);
  assert_float_equal(instant_value(db, budget_q, T0 + 3 * HOUR), 1, 0);
  assert_float_equal(
      instant_value(db, "slo:objective:ratio{sloth_id=\"api-availability\"}", T0 + 3 * HOUR), 0.999,
      1e-12);
  assert_float_equal(
      instant_value(db, "slo:sli_error:ratio_rate5m{sloth_id=\"api-availability\"}", T0 + 3 * HOUR),
      0.004, 1e-9);
  /* And they are appended by id again: one sample per series per evaluation. */
  assert_float_equal(
      instant_value(db, "count_over_time(slo:objective:ratio{sloth_id=\"api-availability\"}[30m])",
                    T0 + 3 * HOUR),
      60, 0);
  nn_slo_destroy(e);
  nn_tsdb_close(db);
}

static void trickle_tickets_only(void **state)
{
  struct nn_tsdb *db = open_db();
  write_counters(db, T0, T0 + 4 * HOUR, trickle_rates);
  memset(&cap, 0, sizeof(cap));
  struct nn_slo_engine *e = engine(db, NULL, SPEC);
  run(e, T0 + 30000, T0 + 4 * HOUR);
  struct nn_slo_status st;
  assert_int_equal(nn_slo_get_status(e, "api-availability", &st), 0);
  assert_true(st.ticket_firing);
  assert_false(st.page_firing);
  assert_int_equal(cap.page_firing, 0);
  assert_true(cap.ticket_firing > 0);
  assert_string_equal(cap.severity, "ticket");
  assert_float_equal(st.error_ratio[NN_SLO_W_2H], 0.004, 1e-9);
  /* Every notification carries a description (generated: objective and what happens). */
  assert_non_null(strstr(cap.description, "api availability: objective 99.9%"));
  assert_non_null(strstr(cap.description, "burning its error budget too fast"));
  /* generatorURL: the SLO's row on the summary page. */
  assert_string_equal(cap.generator_url, "http://nines.example:9595/#slo-api-availability");
  nn_slo_destroy(e);
  nn_tsdb_close(db);
}

/* Six healthy days, then a day at 0.4% errors (4x): the 1d and 2h windows cross the 3x
 * ticket tier while 4/7 of the 30-day budget is spent. */
static void week_rates(int64_t t, double *ok, double *err)
{
  double e = t > T0 + 6 * 24 * HOUR ? 0.004 : 0;
  *ok = 2 * (1 - e);
  *err = 2 * e;
}

static void at_risk_when_ticket_fires_with_budget_left(void **state)
{
  struct nn_tsdb *db = open_db();
  int64_t end = T0 + 7 * 24 * HOUR;
  write_counters(db, T0, end, week_rates);
  memset(&cap, 0, sizeof(cap));
  struct nn_slo_engine *e = engine(db, NULL, SPEC);
  run(e, end - 10 * MIN, end); /* the first evaluation backfills the week */
  struct nn_slo_status st;
  assert_int_equal(nn_slo_get_status(e, "api-availability", &st), 0);
  assert_true(st.ticket_firing);
  assert_false(st.page_firing);
  assert_float_equal(1 - st.budget_remaining, 4.0 / 7.0, 1e-3);
  assert_string_equal(st.status, "at_risk");
  assert_true(st.time_to_exhaustion > 0 && isfinite(st.time_to_exhaustion));
  nn_slo_destroy(e);
  nn_tsdb_close(db);
}

static void low_rates(int64_t t, double *ok, double *err)
{
  /* 10 requests per hour; one of them fails around 3 a.m. */
  *ok = 10.0 / 3600;
  *err = t > T0 + 3 * HOUR && t <= T0 + 3 * HOUR + 30000 ? 1.0 / 30 : 0;
}

static void low_traffic_does_not_page(void **state)
{
  struct nn_tsdb *db = open_db();
  write_counters(db, T0, T0 + 4 * HOUR, low_rates);
  memset(&cap, 0, sizeof(cap));
  struct nn_slo_engine *e = engine(db, NULL, SPEC);
  run(e, T0 + 30000, T0 + 3 * HOUR + 10 * MIN);
  struct nn_slo_status st;
  assert_int_equal(nn_slo_get_status(e, "api-availability", &st), 0);
  /* The 1h error ratio is far above 14.4x, but the 5m window holds < 50 events. */
  assert_true(st.error_ratio[NN_SLO_W_1H] > 14.4 * 0.001);
  assert_false(st.page_firing);
  assert_int_equal(cap.page_firing, 0);
  nn_slo_destroy(e);
  nn_tsdb_close(db);
}

static void no_data_is_not_one_hundred_percent(void **state)
{
  struct nn_tsdb *db = open_db();
  struct nn_slo_engine *e = engine(db, NULL, SPEC);
  run(e, T0, T0 + 15 * MIN);
  struct nn_slo_status st;
  assert_int_equal(nn_slo_get_status(e, "api-availability", &st), 0);
  assert_string_equal(st.status, "no_data");
  assert_true(isnan(st.budget_remaining));
  assert_true(isnan(st.error_ratio[NN_SLO_W_PERIOD]));
  assert_true(st.no_data_firing);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 24);
  assert_int_equal(nn_slo_json(e, &b), 0);
  json_error_t jerr;
  json_t *j = json_loads(b.data, 0, &jerr);
  assert_non_null(j);
  json_t *slo = json_array_get(json_object_get(json_object_get(j, "data"), "slos"), 0);
  assert_true(json_is_null(json_object_get(slo, "budget_remaining")));
  assert_true(json_is_null(json_object_get(slo, "sli")));
  assert_string_equal(json_string_value(json_object_get(slo, "status")), "no_data");
  json_decref(j);
  nn_buf_fini(&b);
  nn_slo_destroy(e);
  nn_tsdb_close(db);
}

/* Bursty traffic: idle half-hours, so the oldest slot of a 1h window can be idle. */
static void bursty_rates(int64_t t, double *ok, double *err)
{
  int64_t minute = (t - T0 - 1) / MIN;
  bool idle = minute % 60 >= 50 && minute % 60 < 60;
  double e = minute >= 95 && minute < 105 ? 0.1 : 0.002;
  *ok = idle ? 0 : 30 * (1 - e) + (double)(minute % 7);
  *err = idle ? 0 : 30 * e;
}

static void sli_1h_equals_sloth_generated_expression(void **state)
{
  struct nn_tsdb *db = open_db();
  write_counters(db, T0, T0 + 3 * HOUR, bursty_rates);
  struct nn_slo_engine *e = engine(db, NULL, SPEC);
  /* At T0 + 2h the 1h window starts in an idle stretch (minutes 50..59 of hour 1). */
  int64_t ts = T0 + 2 * HOUR - 5 * MIN;
  run(e, T0 + 30000, ts);
  struct nn_slo_status st;
  assert_int_equal(nn_slo_get_status(e, "api-availability", &st), 0);
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  /* Sloth's generated slo:sli_error:ratio_rate1h expression (examples/_gen). */
  const char *sloth = "(sum(rate(http_requests_total{job=\"api\",code=~\"5..\"}[1h])))\n/\n"
                      "(sum(rate(http_requests_total{job=\"api\"}[1h])))";
  struct nn_promql_expr *x;
  struct nn_promql_error perr;
  struct nn_promql_result res;
  assert_int_equal(nn_promql_parse(sloth, strlen(sloth), &x, &perr), 0);
  assert_int_equal(nn_promql_eval_instant(&q, x, ts, NULL, &res, &perr), 0);
  assert_int_equal(res.nseries, 1);
  assert_true(st.error_ratio[NN_SLO_W_1H] > 0.01); /* the 10% burst is inside */
  assert_float_equal(st.error_ratio[NN_SLO_W_1H], res.series[0].v[0], 1e-9);
  nn_promql_result_fini(&res);
  /* And the recorded series equals it too. */
  nn_promql_expr_free(x);
  const char *rec = "slo:sli_error:ratio_rate1h{sloth_id=\"api-availability\"}";
  assert_int_equal(nn_promql_parse(rec, strlen(rec), &x, &perr), 0);
  assert_int_equal(nn_promql_eval_instant(&q, x, ts, NULL, &res, &perr), 0);
  assert_int_equal(res.nseries, 1);
  assert_string_equal(nn_labels_get(res.series[0].labels, res.series[0].nlabels, "sloth_window"),
                      "1h");
  assert_float_equal(res.series[0].v[0], st.error_ratio[NN_SLO_W_1H], 1e-12);
  nn_promql_result_fini(&res);
  nn_promql_expr_free(x);
  nn_slo_destroy(e);
  nn_tsdb_close(db);
}

static void ledger_survives_restart(void **state)
{
  char dir[] = "/tmp/nn-slo-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  struct nn_tsdb *db = open_db();
  write_counters(db, T0, T0 + 5 * HOUR, spike_rates);
  /* A: runs without a break. B: stops at 2h (snapshot), restarts and replays to 5h. */
  struct nn_slo_engine *a = engine(db, NULL, SPEC);
  struct nn_slo_engine *b = engine(db, dir, SPEC);
  run(a, T0 + 30000, T0 + 2 * HOUR);
  run(b, T0 + 30000, T0 + 2 * HOUR);
  nn_slo_destroy(b); /* writes the snapshot */
  b = engine(db, dir, SPEC);
  const struct nn_slo_ledger *la = &a->rt[0].ledger, *lb = &b->rt[0].ledger;
  assert_true(b->rt[0].loaded);
  assert_int_equal(la->head_min, lb->head_min);
  assert_int_equal(la->last_eval_ms, lb->last_eval_ms);
  assert_memory_equal(la->fine_total, lb->fine_total, NN_SLO_FINE_SLOTS * sizeof(double));
  assert_memory_equal(la->fine_bad, lb->fine_bad, NN_SLO_FINE_SLOTS * sizeof(double));
  assert_memory_equal(la->coarse_total, lb->coarse_total, la->ncoarse * sizeof(double));
  run(a, T0 + 2 * HOUR + 30000, T0 + 5 * HOUR);
  nn_slo_eval_at(b, T0 + 5 * HOUR); /* replays the 3 hours it missed */
  struct nn_slo_status sa, sb;
  assert_int_equal(nn_slo_get_status(a, "api-availability", &sa), 0);
  assert_int_equal(nn_slo_get_status(b, "api-availability", &sb), 0);
  for (int w = 0; w < NN_SLO_NWINDOWS; w++)
    assert_float_equal(sa.error_ratio[w], sb.error_ratio[w], 1e-9);
  assert_float_equal(sa.total_period, sb.total_period, 1e-6);
  /* A fresh engine backfills from stored series and agrees as well. */
  struct nn_slo_engine *c = engine(db, NULL, SPEC);
  nn_slo_eval_at(c, T0 + 5 * HOUR);
  struct nn_slo_status sc;
  assert_int_equal(nn_slo_get_status(c, "api-availability", &sc), 0);
  assert_float_equal(sa.total_period, sc.total_period, 1e-6);
  assert_float_equal(sa.error_ratio[NN_SLO_W_6H], sc.error_ratio[NN_SLO_W_6H], 1e-9);
  nn_slo_destroy(a);
  nn_slo_destroy(b);
  nn_slo_destroy(c);
  nn_tsdb_close(db);
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

/* 0.085% errors for 2 h, then 0.11%: the period (all data) consumes 85% of the budget, then
 * 97.5%; neither rate reaches a burn-rate tier (1x over 3d and 6h needs > 0.1% over 6 h). */
static void budget_policy_rates(int64_t t, double *ok, double *err)
{
  double e = t <= T0 + 2 * HOUR ? 0.00085 : 0.0011;
  *ok = 200 * (1 - e);
  *err = 200 * e;
}

static void budget_policy_alerts_at_80_and_95(void **state)
{
  /* The thresholds on their own. */
  struct nn_slo_spec s = std_spec(0.999, 30);
  struct nn_slo_ledger l;
  double consumed[] = {0.5, 0.79, 0.81, 0.94, 0.96, 1.5};
  int want[] = {0, 0, 80, 80, 95, 95};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    assert_int_equal(nn__slo_ledger_init(&l, s.period_min, 0), 0);
    nn__slo_ledger_add(&l, 28000000, consumed[i] * 1000 * 0.001, 1000);
    struct nn_slo_values v;
    nn__slo_compute(&s, &l, (28000000 + 1) * MIN, 50, 10, &v);
    assert_int_equal(v.budget_level, want[i]);
    nn__slo_ledger_fini(&l);
  }

  /* Through the engine: 80% fires, then 95% fires and the 80% one resolves. */
  struct nn_tsdb *db = open_db();
  write_counters(db, T0, T0 + 4 * HOUR, budget_policy_rates);
  memset(&cap, 0, sizeof(cap));
  struct nn_slo_engine *e = engine(db, NULL, SPEC);
  run(e, T0 + 30000, T0 + 2 * HOUR);
  struct nn_slo_status st;
  assert_int_equal(nn_slo_get_status(e, "api-availability", &st), 0);
  assert_float_equal(1 - st.budget_remaining, 0.85, 1e-6);
  assert_int_equal(st.budget_alert, 80);
  assert_false(st.page_firing || st.ticket_firing);
  assert_true(cap.budget80 > 0);
  assert_int_equal(cap.budget95, 0);
  assert_non_null(strstr(cap.budget_description, "80% of the period's error budget is spent"));
  run(e, T0 + 2 * HOUR + 30000, T0 + 4 * HOUR);
  assert_int_equal(nn_slo_get_status(e, "api-availability", &st), 0);
  assert_true(1 - st.budget_remaining > 0.95);
  assert_int_equal(st.budget_alert, 95);
  assert_false(st.page_firing || st.ticket_firing);
  assert_true(cap.budget95 > 0);
  assert_true(cap.budget80_resolved > 0);
  /* The ALERTS series says which level fires now. */
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  struct nn_promql_expr *x;
  struct nn_promql_error perr;
  struct nn_promql_result res;
  const char *qs = "ALERTS{alertname=\"SLOErrorBudgetConsumed\",alertstate=\"firing\"}";
  assert_int_equal(nn_promql_parse(qs, strlen(qs), &x, &perr), 0);
  assert_int_equal(nn_promql_eval_instant(&q, x, T0 + 4 * HOUR, NULL, &res, &perr), 0);
  assert_int_equal(res.nseries, 1);
  assert_string_equal(nn_labels_get(res.series[0].labels, res.series[0].nlabels, "budget_consumed"),
                      "95");
  nn_promql_result_fini(&res);
  nn_promql_expr_free(x);
  nn_slo_destroy(e);
  nn_tsdb_close(db);
}

static int64_t minute_of(int y, int mon, int d, int h, int mi)
{
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
  return (int64_t)timegm(&tm) / 60;
}

static struct nn_slo_tz fixed_tz(int off)
{
  struct nn_slo_tz tz = {.std_s = off};
  return tz;
}

static void calendar_month_and_quarter_in_time_zone(void **state)
{
  /* 2026-03-31 23:29 UTC is 2026-04-01 01:29 at +02:00 and 18:29 on March 31 at -05:00. */
  int64_t m = minute_of(2026, 3, 31, 23, 29);
  struct nn_slo_tz z[3] = {fixed_tz(0), fixed_tz(7200), fixed_tz(-18000)};
  assert_int_equal(nn__slo_calendar_start(m, NULL, false), minute_of(2026, 3, 1, 0, 0));
  assert_int_equal(nn__slo_calendar_start(m, &z[0], true), minute_of(2026, 1, 1, 0, 0));
  assert_int_equal(nn__slo_calendar_start(m, &z[1], false), minute_of(2026, 3, 31, 22, 0));
  assert_int_equal(nn__slo_calendar_start(m, &z[1], true), minute_of(2026, 3, 31, 22, 0));
  assert_int_equal(nn__slo_calendar_start(m, &z[2], false), minute_of(2026, 3, 1, 5, 0));
  assert_int_equal(nn__slo_calendar_start(m, &z[2], true), minute_of(2026, 1, 1, 5, 0));
  assert_int_equal(nn__slo_calendar_start(minute_of(2026, 11, 15, 12, 0), &z[0], true),
                   minute_of(2026, 10, 1, 0, 0));
  int32_t ym = nn__slo_month_of(m, &z[1]);
  assert_int_equal(ym, 2026 * 12 + 3); /* April (month0 = 3) */

  /* The period window starts at the calendar boundary of the SLO's time zone: 10 events a
   * minute from 20:00 UTC, 1 bad a minute until 22:00 UTC, none after. */
  struct nn_slo_spec s = std_spec(0.999, 30);
  s.period_kind = NN_SLO_MONTH;
  double want_total[3] = {2100, 900, 2100}, want_bad[3] = {120, 0, 120};
  for (int k = 0; k < 3; k++) {
    struct nn_slo_ledger l;
    assert_int_equal(nn__slo_ledger_init(&l, s.period_min, &z[k]), 0);
    for (int64_t i = minute_of(2026, 3, 31, 20, 0); i <= m; i++)
      nn__slo_ledger_add(&l, i, i < minute_of(2026, 3, 31, 22, 0) ? 1 : 0, 10);
    struct nn_slo_values v;
    nn__slo_compute(&s, &l, (m + 1) * MIN, 50, 10, &v);
    assert_float_equal(v.total[NN_SLO_W_PERIOD], want_total[k], 1e-9);
    assert_float_equal(v.bad[NN_SLO_W_PERIOD], want_bad[k], 1e-9);
    nn__slo_ledger_fini(&l);
  }
  /* A quarter at -05:00 covers the same events as the month here. */
  s.period_kind = NN_SLO_QUARTER;
  struct nn_slo_ledger l;
  assert_int_equal(nn__slo_ledger_init(&l, 90 * 1440, &z[2]), 0);
  for (int64_t i = minute_of(2026, 3, 31, 20, 0); i <= m; i++)
    nn__slo_ledger_add(&l, i, 1, 10);
  struct nn_slo_values v;
  nn__slo_compute(&s, &l, (m + 1) * MIN, 50, 10, &v);
  assert_float_equal(v.total[NN_SLO_W_PERIOD], 2100, 1e-9);
  nn__slo_ledger_fini(&l);
}

/* Length of the calendar month ending at UTC minute last (inclusive), measured through the
 * ledger: one event a minute since well before the month. */
static double month_window_minutes(const struct nn_slo_tz *tz, int64_t first, int64_t last)
{
  struct nn_slo_spec s = std_spec(0.999, 30);
  s.period_kind = NN_SLO_MONTH;
  struct nn_slo_ledger l;
  assert_int_equal(nn__slo_ledger_init(&l, s.period_min, tz), 0);
  for (int64_t i = first; i <= last; i++)
    nn__slo_ledger_add(&l, i, 0, 1);
  struct nn_slo_values v;
  nn__slo_compute(&s, &l, (last + 1) * MIN, 50, 10, &v);
  nn__slo_ledger_fini(&l);
  return v.total[NN_SLO_W_PERIOD];
}

/* IANA zones from the tz database: Europe/Berlin changes on the last Sundays of March and
 * October (01:00 UTC), America/New_York on the second Sunday of March and the first of
 * November; months and quarters start at local midnight and DST months are 1 h shorter or
 * longer. */
static void calendar_periods_in_iana_zones(void **state)
{
  struct nn_slo_tz be, ny, sy, tz;
  assert_int_equal(nn__slo_tz_parse("Europe/Berlin", &be), 0);
  assert_int_equal(nn__slo_tz_parse("America/New_York", &ny), 0);
  assert_int_equal(nn__slo_tz_parse("Australia/Sydney", &sy), 0);
  assert_true(be.dst && ny.dst && sy.dst);
  assert_int_equal(be.std_s, 3600);
  assert_int_equal(ny.std_s, -18000);

  int64_t s = 60;
  assert_int_equal(nn__slo_tz_offset(&be, minute_of(2026, 3, 29, 0, 59) * s), 3600);
  assert_int_equal(nn__slo_tz_offset(&be, minute_of(2026, 3, 29, 1, 0) * s), 7200);
  assert_int_equal(nn__slo_tz_offset(&be, minute_of(2026, 10, 25, 0, 59) * s), 7200);
  assert_int_equal(nn__slo_tz_offset(&be, minute_of(2026, 10, 25, 1, 0) * s), 3600);
  assert_int_equal(nn__slo_tz_offset(&be, minute_of(2027, 3, 28, 1, 0) * s), 7200);
  assert_int_equal(nn__slo_tz_offset(&be, minute_of(2027, 3, 28, 0, 59) * s), 3600);
  assert_int_equal(nn__slo_tz_offset(&ny, minute_of(2026, 3, 8, 6, 59) * s), -18000);
  assert_int_equal(nn__slo_tz_offset(&ny, minute_of(2026, 3, 8, 7, 0) * s), -14400);
  assert_int_equal(nn__slo_tz_offset(&ny, minute_of(2026, 11, 1, 5, 59) * s), -14400);
  assert_int_equal(nn__slo_tz_offset(&ny, minute_of(2026, 11, 1, 6, 0) * s), -18000);
  /* Southern hemisphere: daylight time spans the new year. */
  assert_int_equal(nn__slo_tz_offset(&sy, minute_of(2026, 1, 15, 0, 0) * s), 39600);
  assert_int_equal(nn__slo_tz_offset(&sy, minute_of(2026, 7, 15, 0, 0) * s), 36000);

  /* Month and quarter starts at local midnight. */
  int64_t m = minute_of(2026, 3, 31, 21, 59); /* 23:59 CEST, still March in Berlin */
  assert_int_equal(nn__slo_calendar_start(m, &be, false), minute_of(2026, 2, 28, 23, 0));
  assert_int_equal(nn__slo_calendar_start(m, &be, true), minute_of(2025, 12, 31, 23, 0));
  assert_int_equal(nn__slo_month_of(m, &be), 2026 * 12 + 2);
  assert_int_equal(nn__slo_month_of(m + 1, &be), 2026 * 12 + 3);
  assert_int_equal(nn__slo_calendar_start(m + 1, &be, true), minute_of(2026, 3, 31, 22, 0));
  int64_t o = minute_of(2026, 10, 31, 22, 59); /* 23:59 CET on October 31 */
  assert_int_equal(nn__slo_calendar_start(o, &be, false), minute_of(2026, 9, 30, 22, 0));
  assert_int_equal(nn__slo_calendar_start(o, &be, true), minute_of(2026, 9, 30, 22, 0));
  assert_int_equal(nn__slo_calendar_start(o + 1, &be, false), minute_of(2026, 10, 31, 23, 0));
  assert_int_equal(nn__slo_calendar_start(minute_of(2027, 1, 5, 0, 0), &be, true),
                   minute_of(2026, 12, 31, 23, 0));
  int64_t n = minute_of(2026, 4, 1, 3, 59); /* 23:59 EDT on March 31 */
  assert_int_equal(nn__slo_calendar_start(n, &ny, false), minute_of(2026, 3, 1, 5, 0));
  assert_int_equal(nn__slo_calendar_start(n + 1, &ny, true), minute_of(2026, 4, 1, 4, 0));
  assert_int_equal(nn__slo_calendar_start(minute_of(2026, 12, 1, 4, 59), &ny, false),
                   minute_of(2026, 11, 1, 4, 0));
  assert_int_equal(nn__slo_calendar_start(minute_of(2026, 12, 1, 5, 0), &ny, false),
                   minute_of(2026, 12, 1, 5, 0));

  /* The period window of a DST month: March 1 h shorter, October / November 1 h longer. */
  assert_float_equal(month_window_minutes(&be, minute_of(2026, 2, 20, 0, 0), m), 31 * 1440 - 60,
                     1e-9);
  assert_float_equal(month_window_minutes(&be, minute_of(2026, 9, 20, 0, 0), o), 31 * 1440 + 60,
                     1e-9);
  assert_float_equal(month_window_minutes(&ny, minute_of(2026, 2, 20, 0, 0), n), 31 * 1440 - 60,
                     1e-9);
  assert_float_equal(
      month_window_minutes(&ny, minute_of(2026, 10, 20, 0, 0), minute_of(2026, 12, 1, 4, 59)),
      30 * 1440 + 60, 1e-9);
  struct nn_slo_tz fx = fixed_tz(7200);
  assert_float_equal(
      month_window_minutes(&fx, minute_of(2026, 2, 20, 0, 0), minute_of(2026, 3, 31, 21, 59)),
      31 * 1440, 1e-9);

  /* Fixed offsets keep working; unknown or unsafe names are errors. */
  assert_int_equal(nn__slo_tz_parse("+05:30", &tz), 0);
  assert_true(!tz.dst && tz.std_s == 19800);
  assert_int_equal(nn__slo_tz_parse("UTC", &tz), 0);
  assert_true(!tz.dst && tz.std_s == 0);
  assert_int_equal(nn__slo_tz_parse("Asia/Kolkata", &tz), 0);
  assert_true(!tz.dst && tz.std_s == 19800);
  assert_int_equal(nn__slo_tz_parse("Europe/Nowhere", &tz), NN_EINVAL);
  assert_int_equal(nn__slo_tz_parse("../../etc/passwd", &tz), NN_EINVAL);
  assert_int_equal(nn__slo_tz_parse("/etc/passwd", &tz), NN_EINVAL);
  assert_int_equal(nn__slo_tz_parse("Europe", &tz), NN_EINVAL); /* a directory */
  assert_int_equal(nn__slo_tz_parse("", &tz), NN_EINVAL);
  assert_int_equal(nn__slo_tz_parse_posix("CET-1CEST,M3.5.0,M10.5.0/3", &tz), 0);
  assert_true(nn__slo_tz_equal(&tz, &be));
  assert_int_equal(nn__slo_tz_parse_posix("<+03>-3", &tz), 0);
  assert_int_equal(tz.std_s, 10800);
  assert_int_equal(nn__slo_tz_parse_posix("CET-1CEST", &tz), NN_EINVAL);
  assert_int_equal(nn__slo_tz_parse_posix("EST5EDT,J60,J300", &tz), NN_EINVAL);
  assert_int_equal(nn__slo_tz_parse_posix("CET-1CEST,M13.5.0,M10.5.0", &tz), NN_EINVAL);
  assert_int_equal(nn__slo_tz_from_tzif((const unsigned char *)"TZif2", 5, &tz), NN_EINVAL);

  /* A spec names the zone for the whole file or per SLO. */
  const char *spec = "version: nines/v1\nservice: a\ntime_zone: America/New_York\n"
                     "period: quarter\nslos:\n  - name: x\n    objective: 99\n"
                     "    sli: {availability: {metric: m}}\n  - name: y\n    objective: 99\n"
                     "    time_zone: Europe/Berlin\n    sli: {availability: {metric: m}}\n";
  struct nn_slo_set *set = NULL;
  char err[512];
  assert_int_equal(nn_slo_set_load_string("tz.yml", spec, strlen(spec), &set, err, sizeof(err)), 0);
  assert_true(set->v[0].tz_set && nn__slo_tz_equal(&set->v[0].tz, &ny));
  assert_true(set->v[1].tz_set && nn__slo_tz_equal(&set->v[1].tz, &be));
  assert_int_equal(set->v[1].period_kind, NN_SLO_QUARTER);
  nn_slo_set_destroy(set);
}

/* The API's daily series uses local days: in Europe/Berlin March 29 2026 has 23 hours. */
static void daily_series_uses_local_days(void **state)
{
  struct nn_slo_spec s = std_spec(0.999, 30);
  s.period_kind = NN_SLO_MONTH;
  s.id = (char *)"a-b";
  s.service = (char *)"a";
  s.name = (char *)"b";
  s.format = (char *)"nines/v1";
  assert_int_equal(nn__slo_tz_parse("Europe/Berlin", &s.tz), 0);
  struct nn_slo_rt r;
  memset(&r, 0, sizeof(r));
  r.spec = &s;
  assert_int_equal(nn__slo_ledger_init(&r.ledger, s.period_min, &s.tz), 0);
  int64_t last = minute_of(2026, 4, 2, 21, 59); /* 23:59 CEST on April 2 */
  for (int64_t i = minute_of(2026, 2, 25, 0, 0); i <= last; i++)
    nn__slo_ledger_add(&r.ledger, i, 0, 1);
  struct nn_slo_engine e;
  memset(&e, 0, sizeof(e));
  e.rt = &r;
  e.nrt = 1;
  struct nn_buf b;
  nn_buf_init(&b, 1 << 22);
  assert_int_equal(nn_slo_json(&e, &b), 0);
  json_error_t jerr;
  json_t *j = json_loads(b.data, 0, &jerr);
  assert_non_null(j);
  json_t *daily = json_object_get(
      json_array_get(json_object_get(json_object_get(j, "data"), "slos"), 0), "daily");
  assert_int_equal(json_array_size(daily), 30);
  int seen = 0;
  for (size_t i = 0; i < json_array_size(daily); i++) {
    json_t *d = json_array_get(daily, i);
    const char *date = json_string_value(json_object_get(d, "date"));
    double total = json_number_value(json_object_get(d, "total"));
    double want = !strcmp(date, "2026-03-29") ? 1380 : 1440;
    seen += !strcmp(date, "2026-03-29") || !strcmp(date, "2026-04-02");
    assert_float_equal(total, want, 1e-9);
  }
  assert_int_equal(seen, 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(daily, 29), "date")),
                      "2026-04-02");
  json_decref(j);
  nn_buf_fini(&b);
  nn__slo_ledger_fini(&r.ledger);
}

/* Every output series the issue lists, with Sloth's label names, so Sloth's dashboards work. */
static void outputs_use_sloth_names(void **state)
{
  struct nn_tsdb *db = open_db();
  write_counters(db, T0, T0 + 2 * HOUR, trickle_rates);
  memset(&cap, 0, sizeof(cap));
  struct nn_slo_engine *e = engine(db, NULL, SPEC);
  run(e, T0 + 30000, T0 + 2 * HOUR);
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  static const char *const names[] = {
      "slo:sli_error:ratio_rate5m",  "slo:sli_error:ratio_rate30m",
      "slo:sli_error:ratio_rate1h",  "slo:sli_error:ratio_rate2h",
      "slo:sli_error:ratio_rate6h",  "slo:sli_error:ratio_rate1d",
      "slo:sli_error:ratio_rate3d",  "slo:sli_error:ratio_rate30d",
      "slo:error_budget:ratio",      "slo:objective:ratio",
      "slo:period_burn_rate:ratio",  "slo:time_until_exhaustion:seconds",
      "slo:current_burn_rate:ratio", "slo:period_error_budget_remaining:ratio"};
  double want_objective = 0.999, want_budget = 0.001;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char qs[256];
    snprintf(qs, sizeof(qs),
             "%s{sloth_service=\"api\",sloth_slo=\"availability\",sloth_id=\"api-availability\"}",
             names[i]);
    struct nn_promql_expr *x;
    struct nn_promql_error perr;
    struct nn_promql_result res;
    assert_int_equal(nn_promql_parse(qs, strlen(qs), &x, &perr), 0);
    assert_int_equal(nn_promql_eval_instant(&q, x, T0 + 2 * HOUR, NULL, &res, &perr), 0);
    if (res.nseries != 1)
      fprintf(stderr, "%s: %zu series\n", qs, res.nseries);
    assert_int_equal(res.nseries, 1);
    double v = res.series[0].v[0];
    if (!strcmp(names[i], "slo:objective:ratio"))
      assert_float_equal(v, want_objective, 1e-12);
    else if (!strcmp(names[i], "slo:error_budget:ratio"))
      assert_float_equal(v, want_budget, 1e-12);
    else if (!strcmp(names[i], "slo:period_burn_rate:ratio"))
      assert_float_equal(v, 4, 1e-6); /* 0.4% errors against a 0.1% budget */
    else if (!strncmp(names[i], "slo:sli_error:ratio_rate", 24))
      assert_float_equal(v, 0.004, 1e-6);
    else if (!strcmp(names[i], "slo:time_until_exhaustion:seconds"))
      assert_float_equal(v, 0, 0); /* 4x over all the data: the budget is gone */
    nn_promql_result_fini(&res);
    nn_promql_expr_free(x);
  }
  nn_slo_destroy(e);
  nn_tsdb_close(db);
}

/* ---- Specs ------------------------------------------------------------------------------- */

static struct nn_slo_set *load_fixture(const char *name)
{
  char path[1024], err[512];
  snprintf(path, sizeof(path), "%s/tests/fixtures/slo/%s", NN_SOURCE_DIR, name);
  char *v[] = {path};
  struct nn_cfg_strlist g = {v, 1};
  struct nn_slo_set *s = NULL;
  int rc = nn_slo_set_load_files(&g, &s, err, sizeof(err));
  if (rc < 0)
    fprintf(stderr, "%s\n", err);
  assert_int_equal(rc, 0);
  return s;
}

static void sloth_examples_load(void **state)
{
  struct nn_slo_set *s = load_fixture("sloth-getting-started.yml");
  assert_int_equal(nn_slo_set_count(s), 1);
  assert_string_equal(nn_slo_set_id(s, 0), "myservice-requests-availability");
  assert_float_equal(s->v[0].objective, 0.999, 1e-12);
  assert_int_equal(s->v[0].page.for_ms, 5 * MIN);
  assert_string_equal(s->v[0].alert_name, "MyServiceHighErrorRate");
  assert_string_equal(s->v[0].team, "myteam");
  nn_slo_set_destroy(s);
  s = load_fixture("sloth-multifile.yml");
  assert_int_equal(nn_slo_set_count(s), 2);
  assert_string_equal(nn_slo_set_id(s, 1), "myservice2-requests-availability");
  assert_float_equal(s->v[1].objective, 0.9999, 1e-12);
  nn_slo_set_destroy(s);
  s = load_fixture("nines-native.yml");
  assert_int_equal(nn_slo_set_count(s), 3);
  assert_string_equal(
      s->v[0].error_query,
      "sum(rate(http_requests_total{job=\"checkout\", handler=\"/pay\",code=~\"5..\"}"
      "[{{.window}}]))");
  assert_non_null(strstr(s->v[1].error_query, "le=\"0.3\""));
  assert_int_equal(s->v[1].period_min, 7 * 1440);
  assert_float_equal(nn__slo_factor(&s->v[1], 0), 8.0 * 168 / 100, 1e-12);
  assert_int_equal(s->v[2].period_kind, NN_SLO_MONTH);
  assert_int_equal(s->v[2].tz.std_s, 3600);
  assert_string_equal(s->v[0].project, "shop");
  nn_slo_set_destroy(s);
}

static void expect_error(const char *text, const char *want)
{
  struct nn_slo_set *s = NULL;
  char err[1024];
  int rc = nn_slo_set_load_string("bad.yml", text, strlen(text), &s, err, sizeof(err));
  if (rc == 0 || !strstr(err, want))
    fprintf(stderr, "got rc %d: %s (want %s)\n", rc, rc ? err : "", want);
  assert_true(rc < 0);
  assert_null(s);
  assert_non_null(strstr(err, want));
}

static void bad_specs_are_rejected_with_positions(void **state)
{
  expect_error("version: \"prometheus/v1\"\nservice: a\nslos:\n  - name: x\n    objective: 99\n"
               "    colour: red\n    sli: {raw: {error_ratio_query: \"vector(0)+{{.window}}\"}}\n",
               "bad.yml:6:5: slo: unknown field \"colour\"");
  expect_error("version: \"prometheus/v1\"\nservice: a\nslos:\n  - name: x\n    objective: 99\n"
               "    sli:\n      plugin: {id: sloth-common/availability}\n",
               "sli.plugin: Sloth SLI plugins are Go code");
  expect_error("version: \"prometheus/v1\"\nservice: a\nslos:\n  - name: x\n    objective: 100\n"
               "    sli: {events: {error_query: a, total_query: b}}\n",
               "bad.yml:5:16: objective: 100 is out of range");
  expect_error("version: \"prometheus/v1\"\nservice: a\nslos:\n  - name: x\n    objective: 99\n"
               "    sli:\n      events:\n        error_query: sum(rate(x[5m]))\n"
               "        total_query: sum(rate(x[{{.window}}]))\n",
               "bad.yml:8:22: sli.events.error_query: the query must use {{.window}}");
  expect_error("version: \"prometheus/v1\"\nservice: a\nslos:\n  - name: x\n    objective: 99\n"
               "    sli:\n      events:\n        error_query: sum(rate(x[{{.window}}])\n"
               "        total_query: sum(rate(x[{{.window}}]))\n",
               "bad.yml:8:22: sli.events.error_query: ");
  expect_error("version: nines/v2\n", "version: expected");
  expect_error("version: nines/v1\nservice: a\nslos:\n  - name: x\n    objective: 99\n"
               "    period: 13s\n    sli: {availability: {metric: m}}\n",
               "bad.yml:6:13: period:");
  expect_error("version: nines/v1\nservice: a\nslos:\n  - name: x\n    objective: 99\n"
               "    time_zone: Mars/Olympus\n    period: month\n"
               "    sli: {availability: {metric: m}}\n",
               "bad.yml:6:16: time_zone: expected UTC");
  expect_error("version: nines/v1\nslos:\n  - name: x\n    objective: 99\n"
               "    sli: {availability: {metric: m}}\n",
               "no service");
  expect_error("version: nines/v1\nservice: a\nlabels: {sloth_id: x}\nslos: []\n", "reserved");
  expect_error("version: \"prometheus/v1\"\nservice: a\nslos:\n"
               "  - name: x\n    objective: 99\n"
               "    sli: {raw: {error_ratio_query: \"vector(0)+{{.window}}\"}}\n"
               "  - name: x\n    objective: 99\n"
               "    sli: {raw: {error_ratio_query: \"vector(0)+{{.window}}\"}}\n",
               "defined twice");
}

/* sli.raw: Sloth's struct spells the field error_ratio_query, its raw example errorRatioQuery;
 * both load (to the same SLO), both at once is an error. */
static void sloth_raw_sli_both_spellings(void **state)
{
  static const char *const keys[] = {"error_ratio_query", "errorRatioQuery"};
  for (int k = 0; k < 2; k++) {
    char text[1024];
    snprintf(text, sizeof(text),
             "version: \"prometheus/v1\"\nservice: wifi\nlabels: {site: home}\nslos:\n"
             "  - name: satisfaction\n    objective: 95\n    sli:\n      raw:\n        %s: |\n"
             "          1 - (sum(sum_over_time(ratio[{{.window}}])) / "
             "sum(count_over_time(ratio[{{.window}}])))\n"
             "    alerting:\n      name: Wifi\n      page_alert: {labels: {severity: home}}\n"
             "      ticket_alert: {labels: {severity: warning}}\n",
             keys[k]);
    struct nn_slo_set *set = NULL;
    char err[512];
    int rc = nn_slo_set_load_string("raw.yml", text, strlen(text), &set, err, sizeof(err));
    if (rc < 0)
      fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(set->v[0].sli, NN_SLO_SLI_RAW);
    assert_non_null(strstr(set->v[0].ratio_query, "count_over_time(ratio[{{.window}}])"));
    nn_slo_set_destroy(set);
  }
  expect_error("version: \"prometheus/v1\"\nservice: a\nslos:\n  - name: x\n    objective: 99\n"
               "    sli:\n      raw:\n        error_ratio_query: \"vector(0)+{{.window}}\"\n"
               "        errorRatioQuery: \"vector(0)+{{.window}}\"\n",
               "bad.yml:9:26: sli.raw: error_ratio_query and errorRatioQuery are the same field");
}

/* Sloth's per-SLO interval: all, overridden per rule group; only the export uses it. */
static void sloth_interval(void **state)
{
  const char *text =
      "version: \"prometheus/v1\"\nservice: s\nslos:\n  - name: x\n    objective: 99\n"
      "    interval: {all: 5m, alert: 2m}\n"
      "    sli: {raw: {error_ratio_query: \"1 - avg_over_time(up[{{.window}}])\"}}\n"
      "    alerting: {page_alert: {labels: {severity: p}}, ticket_alert: {disable: true}}\n";
  struct nn_slo_set *set = NULL;
  char err[512];
  assert_int_equal(nn_slo_set_load_string("iv.yml", text, strlen(text), &set, err, sizeof(err)), 0);
  assert_int_equal(set->v[0].group_interval_ms[0], 300000);
  assert_int_equal(set->v[0].group_interval_ms[1], 300000);
  assert_int_equal(set->v[0].group_interval_ms[2], 120000);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  assert_int_equal(nn_slo_export_prometheus(set, &b), 0);
  assert_non_null(strstr(b.data, "recordings-s-x\"\n  interval: 5m\n  rules:"));
  assert_non_null(strstr(b.data, "alerts-s-x\"\n  interval: 2m\n  rules:"));
  /* a raw SLI is parenthesised, as Sloth writes it */
  assert_non_null(strstr(b.data, "expr: \"(1 - avg_over_time(up[5m]))\""));
  nn_buf_fini(&b);
  nn_slo_set_destroy(set);
  expect_error("version: \"prometheus/v1\"\nservice: a\nslos:\n  - name: x\n    objective: 99\n"
               "    interval: {every: 1m}\n"
               "    sli: {raw: {error_ratio_query: \"1 - avg_over_time(up[{{.window}}])\"}}\n",
               "bad.yml:6:16: interval: unknown field \"every\"");
  expect_error("version: \"prometheus/v1\"\nservice: a\nslos:\n  - name: x\n    objective: 99\n"
               "    interval: {alert: soon}\n"
               "    sli: {raw: {error_ratio_query: \"1 - avg_over_time(up[{{.window}}])\"}}\n",
               "bad.yml:6:23: interval.alert: expected a duration");
}

static void export_passes_promtool(void **state)
{
  if (system("command -v promtool >/dev/null 2>&1") != 0) {
    skip();
    return;
  }
  const char *files[] = {"sloth-getting-started.yml", "sloth-multifile.yml", "nines-native.yml"};
  for (size_t i = 0; i < 3; i++) {
    struct nn_slo_set *s = load_fixture(files[i]);
    struct nn_buf b;
    nn_buf_init(&b, 1 << 24);
    assert_int_equal(nn_slo_export_prometheus(s, &b), 0);
    assert_non_null(strstr(b.data, "record: slo:sli_error:ratio_rate5m"));
    assert_non_null(strstr(b.data, "sloth_severity: \"page\""));
    char path[] = "/tmp/nn-slo-rules-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "promtool check rules '%s' >/dev/null 2>&1", path);
    int rc = system(cmd);
    if (rc != 0)
      fprintf(stderr, "%s\n", b.data);
    assert_int_equal(rc, 0);
    unlink(path);
    nn_buf_fini(&b);
    nn_slo_set_destroy(s);
  }
}

static void api_json_parses(void **state)
{
  struct nn_tsdb *db = open_db();
  write_counters(db, T0, T0 + 2 * HOUR, trickle_rates);
  memset(&cap, 0, sizeof(cap));
  struct nn_slo_engine *e = engine(db, NULL, SPEC);
  run(e, T0 + 30000, T0 + 2 * HOUR);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 24);
  assert_int_equal(nn_slo_json(e, &b), 0);
  json_error_t jerr;
  json_t *j = json_loads(b.data, 0, &jerr);
  if (!j)
    fprintf(stderr, "%s: %s\n", jerr.text, b.data);
  assert_non_null(j);
  json_t *data = json_object_get(j, "data");
  json_t *slo = json_array_get(json_object_get(data, "slos"), 0);
  assert_string_equal(json_string_value(json_object_get(slo, "id")), "api-availability");
  assert_float_equal(json_number_value(json_object_get(slo, "objective")), 0.999, 1e-12);
  assert_float_equal(json_number_value(json_object_get(slo, "budget_total_minutes")), 43.2, 1e-9);
  double rem = json_number_value(json_object_get(slo, "budget_remaining"));
  assert_float_equal(json_number_value(json_object_get(slo, "budget_remaining_minutes")),
                     rem * 43.2, 1e-6);
  assert_float_equal(json_number_value(json_object_get(json_object_get(slo, "burn_rates"), "1h")),
                     4, 1e-6);
  assert_int_equal(json_array_size(json_object_get(slo, "daily")), 30);
  assert_int_equal(json_array_size(json_object_get(slo, "monthly")), 4);
  assert_true(json_array_size(json_object_get(slo, "burndown")) >= 1);
  assert_true(json_array_size(json_object_get(slo, "alerts")) >= 1);
  assert_string_equal(json_string_value(json_object_get(slo, "team")), "team-a");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(data, "summary"), "total")),
                   1);
  json_decref(j);
  nn_buf_reset(&b);
  assert_int_equal(nn_slo_json_alerts(e, &b), 0);
  j = json_loads(b.data, 0, &jerr);
  assert_non_null(j);
  assert_true(json_array_size(j) >= 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "state")), "firing");
  json_decref(j);
  nn_buf_fini(&b);
  nn_slo_destroy(e);
  nn_tsdb_close(db);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(budget_numbers_match_the_workbook),
      cmocka_unit_test(traffic_weighted_not_mean_of_ratios),
      cmocka_unit_test(windows_cover_part_of_the_oldest_minute),
      cmocka_unit_test(window_cost_does_not_grow_with_period),
      cmocka_unit_test(spike_pages),
      cmocka_unit_test(trickle_tickets_only),
      cmocka_unit_test(at_risk_when_ticket_fires_with_budget_left),
      cmocka_unit_test(low_traffic_does_not_page),
      cmocka_unit_test(no_data_is_not_one_hundred_percent),
      cmocka_unit_test(sli_1h_equals_sloth_generated_expression),
      cmocka_unit_test(ledger_survives_restart),
      cmocka_unit_test(budget_policy_alerts_at_80_and_95),
      cmocka_unit_test(calendar_month_and_quarter_in_time_zone),
      cmocka_unit_test(calendar_periods_in_iana_zones),
      cmocka_unit_test(daily_series_uses_local_days),
      cmocka_unit_test(outputs_use_sloth_names),
      cmocka_unit_test(sloth_examples_load),
      cmocka_unit_test(bad_specs_are_rejected_with_positions),
      cmocka_unit_test(sloth_raw_sli_both_spellings),
      cmocka_unit_test(sloth_interval),
      cmocka_unit_test(export_passes_promtool),
      cmocka_unit_test(api_json_parses),
      cmocka_unit_test(output_series_come_back_after_head_gc),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
