/* SPDX-License-Identifier: Apache-2.0 */
/* Rule evaluation driven by explicit timestamps: recording rules write series (seen by
 * later rules of the same group), stale markers, the alert state machine with `for` and
 * keep_firing_for, ALERTS series, when alerts are sent and with which endsAt, limits, state
 * kept across reloads, and the /api/v1/rules and /api/v1/alerts JSON parsed back. */
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

#include "aggregator/rules/internal.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/buf.h"

#define T0 1700000000000LL /* a multiple of every interval used here */

struct sent {
  char alertname[64], instance[64], summary[128], url[256];
  int64_t starts, ends;
};

static struct {
  struct nn_tsdb *db;
  struct nn_rules *r;
  struct sent sent[64];
  size_t nsent;
} f;

static void on_notify(void *ud, const struct nn_notifier_alert *a, size_t n)
{
  for (size_t i = 0; i < n && f.nsent < 64; i++) {
    struct sent *s = &f.sent[f.nsent++];
    memset(s, 0, sizeof(*s));
    const char *v = nn_labels_get(a[i].labels, a[i].nlabels, "alertname");
    snprintf(s->alertname, sizeof(s->alertname), "%s", v ? v : "");
    v = nn_labels_get(a[i].labels, a[i].nlabels, "instance");
    snprintf(s->instance, sizeof(s->instance), "%s", v ? v : "");
    v = nn_labels_get(a[i].annotations, a[i].nannotations, "summary");
    snprintf(s->summary, sizeof(s->summary), "%s", v ? v : "");
    snprintf(s->url, sizeof(s->url), "%s", a[i].generator_url ? a[i].generator_url : "");
    s->starts = a[i].starts_at_ms;
    s->ends = a[i].ends_at_ms;
  }
}

static void put(const char *name, const char *inst, int64_t t, double v)
{
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(f.db);
  struct nn_label ls[] = {{"__name__", name}, {"instance", inst}, {"job", "node"}};
  assert_int_equal(nn_tsdb_appender_append(a, ls, 3, t, v, NULL), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
}

/* Value of the newest sample at or before t of the series selected by query. */
static int query(const char *q, int64_t t, double *v, size_t *n)
{
  struct nn_promql_expr *e;
  struct nn_promql_error err;
  struct nn_querier qr;
  nn_tsdb_querier(f.db, &qr);
  assert_int_equal(nn_promql_parse(q, strlen(q), &e, &err), 0);
  struct nn_promql_result res;
  struct nn_promql_opts o = {0};
  int rc = nn_promql_eval_instant(&qr, e, t, &o, &res, &err);
  assert_int_equal(rc, 0);
  *n = res.nseries;
  *v = res.nseries ? res.series[0].v[0] : NAN;
  nn_promql_result_fini(&res);
  nn_promql_expr_free(e);
  return 0;
}

static void load(const char *yaml)
{
  char err[512];
  int rc = nn_rules_set_generated(f.r, "test", yaml, strlen(yaml), err, sizeof(err));
  if (rc < 0)
    fail_msg("%s", err);
}

static int setup(void **state)
{
  memset(&f, 0, sizeof(f));
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  if (nn_tsdb_open(&o, &f.db) < 0)
    return -1;
  static char *ek[] = {"cluster"}, *ev[] = {"eu"};
  struct nn_rules_config cfg = {.evaluation_interval_ms = 10000,
                                .resend_delay_ms = 60000,
                                .external_url = "http://nines:9090",
                                .external_labels = {.keys = ek, .values = ev, .n = 1},
                                .for_outage_tolerance_ms = 3600000,
                                .for_grace_period_ms = 600000};
  struct nn_rules_opts ro = {.db = f.db, .cfg = &cfg, .notify = on_notify};
  f.r = nn_rules_create(&ro);
  return f.r ? 0 : -1;
}

static int teardown(void **state)
{
  nn_rules_destroy(f.r);
  nn_tsdb_close(f.db);
  return 0;
}

static void test_recording_rules_write_series_seen_by_later_rules(void **state)
{
  load("groups:\n- name: g\n  rules:\n"
       "  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {src: rec}\n"
       "  - record: job:up:double\n    expr: job:up:sum * 2\n"
       "  - record: scalar:rule\n    expr: scalar(vector(7))\n");
  put("up", "a", T0 - 1000, 1);
  put("up", "b", T0 - 1000, 1);
  assert_int_equal(nn_rules_eval_at(f.r, T0, true), 0);
  double v;
  size_t n;
  query("job:up:sum{job=\"node\",src=\"rec\"}", T0, &v, &n);
  assert_int_equal(n, 1);
  assert_true(v == 2);
  query("job:up:double", T0, &v, &n);
  assert_int_equal(n, 1); /* the second rule saw the first one's result */
  assert_true(v == 4);
  query("scalar:rule", T0, &v, &n);
  assert_true(n == 1 && v == 7);
  /* The input disappears: the recorded series get stale markers and vanish at once. */
  assert_int_equal(nn_rules_eval_at(f.r, T0 + 600000, true), 0);
  query("job:up:sum", T0 + 600000 + 1, &v, &n);
  assert_int_equal(n, 0);
  query("job:up:sum", T0 + 1, &v, &n);
  assert_int_equal(n, 1);
}

static void test_alert_pending_firing_resolved_timeline(void **state)
{
  load("groups:\n- name: a\n  interval: 10s\n  rules:\n"
       "  - alert: Down\n    expr: up == 0\n    for: 20s\n    keep_firing_for: 20s\n"
       "    labels: {severity: page}\n"
       "    annotations: {summary: '{{ $labels.instance }} is down ({{ $value }})'}\n");
  int64_t t = T0;
  for (int i = 0; i < 12; i++)
    put("up", "h1", T0 + i * 10000 - 1, i < 5 ? 0 : 1);
  double v;
  size_t n;
  /* t0: pending, not sent, ALERTS{alertstate="pending"} written. */
  nn_rules_eval_at(f.r, t, true);
  assert_int_equal(f.nsent, 0);
  query("ALERTS{alertname=\"Down\",alertstate=\"pending\",severity=\"page\",instance=\"h1\"}", t,
        &v, &n);
  assert_true(n == 1 && v == 1);
  query("ALERTS_FOR_STATE{alertname=\"Down\"}", t, &v, &n);
  assert_true(n == 1 && v == (double)(T0 / 1000));
  /* t0+10s: still pending. */
  nn_rules_eval_at(f.r, t += 10000, true);
  assert_int_equal(f.nsent, 0);
  /* t0+20s: fires and is sent with endsAt = ts + 4 * max(10s, 60s). */
  nn_rules_eval_at(f.r, t += 10000, true);
  assert_int_equal(f.nsent, 1);
  assert_string_equal(f.sent[0].alertname, "Down");
  assert_string_equal(f.sent[0].summary, "h1 is down (0)");
  assert_int_equal(f.sent[0].starts, T0 + 20000);
  assert_int_equal(f.sent[0].ends, T0 + 20000 + 240000);
  assert_string_equal(f.sent[0].url, "http://nines:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
  query("ALERTS{alertname=\"Down\",alertstate=\"firing\"}", t, &v, &n);
  assert_true(n == 1);
  /* t0+30s, +40s: firing, not re-sent before the resend delay. */
  nn_rules_eval_at(f.r, t += 10000, true);
  nn_rules_eval_at(f.r, t += 10000, true);
  assert_int_equal(f.nsent, 1);
  /* t0+50s: the condition clears; keep_firing_for holds it firing for 20s. */
  nn_rules_eval_at(f.r, t += 10000, true);
  query("ALERTS{alertname=\"Down\",alertstate=\"firing\"}", t, &v, &n);
  assert_true(n == 1);
  nn_rules_eval_at(f.r, t += 10000, true); /* +60s: 10s into keep_firing_for */
  assert_int_equal(f.nsent, 1);
  /* +70s: keep_firing_for over: resolved, sent at once with endsAt = resolution time. */
  nn_rules_eval_at(f.r, t += 10000, true);
  assert_int_equal(f.nsent, 2);
  assert_int_equal(f.sent[1].ends, T0 + 70000);
  assert_int_equal(f.sent[1].starts, T0 + 20000);
  query("ALERTS{alertname=\"Down\"}", t, &v, &n);
  assert_int_equal(n, 0); /* stale-marked */
  /* Resolved alerts are re-sent on the resend cadence (strictly after 60s) ... */
  for (int i = 0; i < 6; i++)
    nn_rules_eval_at(f.r, t += 10000, true);
  assert_int_equal(f.nsent, 2); /* +130s: exactly 60s after the last send: not yet */
  nn_rules_eval_at(f.r, t += 10000, true);
  assert_int_equal(f.nsent, 3);
  assert_int_equal(f.sent[2].ends, T0 + 70000);
  /* ... until 15 minutes after resolution, then forgotten. */
  t = T0 + 70000 + 15 * 60000 + 10000;
  nn_rules_eval_at(f.r, t, true);
  struct nn_rules_stats st;
  nn_rules_stats(f.r, &st);
  assert_int_equal(st.alerts_firing + st.alerts_pending, 0);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  nn_rules_json_rules(f.r, &b);
  assert_non_null(strstr(b.data, "\"alerts\":[]"));
  nn_buf_fini(&b);
}

static void test_pending_alert_that_clears_is_never_sent(void **state)
{
  load("groups:\n- name: a\n  rules:\n  - alert: Flap\n    expr: up == 0\n    for: 1m\n");
  put("up", "h1", T0 - 1, 0);
  put("up", "h1", T0 + 9999, 1);
  nn_rules_eval_at(f.r, T0, true);
  nn_rules_eval_at(f.r, T0 + 10000, true);
  assert_int_equal(f.nsent, 0);
  struct nn_rules_stats st;
  nn_rules_stats(f.r, &st);
  assert_int_equal(st.alerts_pending, 0);
}

static void test_limit_and_duplicate_labelsets_are_rule_errors(void **state)
{
  load("groups:\n- name: l\n  limit: 1\n  rules:\n  - alert: Many\n    expr: up\n"
       "  - record: same\n    expr: up\n    labels: {instance: x}\n");
  put("up", "h1", T0 - 1, 1);
  put("up", "h2", T0 - 1, 1);
  nn_rules_eval_at(f.r, T0, true);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  assert_int_equal(nn_rules_json_rules(f.r, &b), 0);
  json_error_t je;
  json_t *j = json_loads(b.data, 0, &je);
  assert_non_null(j);
  json_t *rules = json_object_get(json_array_get(json_object_get(j, "groups"), 0), "rules");
  assert_int_equal(json_array_size(rules), 2);
  json_t *r0 = json_array_get(rules, 0), *r1 = json_array_get(rules, 1);
  assert_string_equal(json_string_value(json_object_get(r0, "health")), "err");
  assert_string_equal(json_string_value(json_object_get(r0, "lastError")),
                      "exceeded limit of 1 with 2 alerts");
  assert_string_equal(json_string_value(json_object_get(r1, "lastError")),
                      "vector contains metrics with the same labelset after applying rule "
                      "labels");
  json_decref(j);
  nn_buf_fini(&b);
}

static void test_api_json_shapes(void **state)
{
  load("groups:\n- name: api\n  interval: 10s\n  rules:\n"
       "  - record: r:x\n    expr: vector(1)\n"
       "  - alert: Now\n    expr: up > 0\n    labels: {severity: warn}\n"
       "    annotations: {summary: 'v={{ $value }}'}\n");
  put("up", "h1", T0 - 1, 1);
  nn_rules_eval_at(f.r, T0 + 500, true);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  assert_int_equal(nn_rules_json_rules(f.r, &b), 0);
  json_error_t je;
  json_t *j = json_loads(b.data, 0, &je);
  if (!j)
    fail_msg("bad JSON %s: %s", b.data, je.text);
  json_t *g = json_array_get(json_object_get(j, "groups"), 0);
  assert_string_equal(json_string_value(json_object_get(g, "name")), "api");
  assert_string_equal(json_string_value(json_object_get(g, "file")), "test");
  assert_true(json_number_value(json_object_get(g, "interval")) == 10);
  assert_string_equal(json_string_value(json_object_get(g, "lastEvaluation")),
                      "2023-11-14T22:13:20.5Z");
  json_t *rec = json_array_get(json_object_get(g, "rules"), 0);
  assert_string_equal(json_string_value(json_object_get(rec, "type")), "recording");
  assert_string_equal(json_string_value(json_object_get(rec, "health")), "ok");
  assert_null(json_object_get(rec, "lastError"));
  json_t *al = json_array_get(json_object_get(g, "rules"), 1);
  assert_string_equal(json_string_value(json_object_get(al, "type")), "alerting");
  assert_string_equal(json_string_value(json_object_get(al, "state")), "firing");
  assert_string_equal(json_string_value(json_object_get(al, "query")), "up > 0");
  assert_true(json_number_value(json_object_get(al, "duration")) == 0);
  assert_true(json_is_number(json_object_get(al, "keepFiringFor")));
  assert_string_equal(json_string_value(json_object_get(json_object_get(al, "labels"), "severity")),
                      "warn");
  json_t *alert = json_array_get(json_object_get(al, "alerts"), 0);
  assert_string_equal(json_string_value(json_object_get(alert, "value")), "1e+00");
  assert_string_equal(json_string_value(json_object_get(alert, "state")), "firing");
  assert_string_equal(json_string_value(json_object_get(alert, "activeAt")),
                      "2023-11-14T22:13:20.5Z");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(alert, "annotations"), "summary")), "v=1");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(alert, "labels"), "alertname")), "Now");
  json_decref(j);
  nn_buf_reset(&b);
  assert_int_equal(nn_rules_json_alerts(f.r, &b), 0);
  j = json_loads(b.data, 0, &je);
  assert_non_null(j);
  assert_int_equal(json_array_size(json_object_get(j, "alerts")), 1);
  json_decref(j);
  nn_buf_fini(&b);
}

static void test_reload_keeps_alert_state(void **state)
{
  const char *y = "groups:\n- name: k\n  rules:\n  - alert: Keep\n    expr: up == 0\n"
                  "    for: 1m\n";
  load(y);
  put("up", "h1", T0 - 1, 0);
  nn_rules_eval_at(f.r, T0, true);
  load(y); /* same group, same rule: the pending alert keeps its activeAt */
  put("up", "h1", T0 + 59999, 0);
  nn_rules_eval_at(f.r, T0 + 60000, true);
  assert_int_equal(f.nsent, 1);
  assert_int_equal(f.sent[0].starts, T0 + 60000);
}

static void test_for_state_restored_after_restart(void **state)
{
  /* A previous run left ALERTS_FOR_STATE saying the alert has been active since T0 and we
   * went down at T0+5m: after restarting at T0+7m the 30m `for` resumes, shifted by the
   * 2m downtime (activeAt = T0 + 2m). */
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(f.db);
  struct nn_label ls[] = {
      {"__name__", "ALERTS_FOR_STATE"}, {"alertname", "Slow"}, {"instance", "h1"}, {"job", "node"}};
  assert_int_equal(nn_tsdb_appender_append(a, ls, 4, T0 + 300000, (double)(T0 / 1000), NULL), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  put("up", "h1", T0 + 419999, 0);
  load("groups:\n- name: s\n  rules:\n  - alert: Slow\n    expr: up == 0\n    for: 30m\n");
  nn_rules_eval_at(f.r, T0 + 420000, true);
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  nn_rules_json_alerts(f.r, &b);
  assert_non_null(strstr(b.data, "\"activeAt\":\"2023-11-14T22:15:20Z\""));
  nn_buf_fini(&b);
}

static void test_group_eval_timestamps_are_aligned(void **state)
{
  int64_t i = 60000;
  int64_t a = nn_rules_group_eval_ts("g", "f.yml", i, T0 + 12345);
  assert_true(a <= T0 + 12345 && a > T0 + 12345 - i);
  assert_int_equal(nn_rules_group_eval_ts("g", "f.yml", i, a + i + 1), a + i);
  assert_int_equal(nn_rules_group_eval_ts("g", "f.yml", i, a), a);
  /* The offset depends on the group's identity. */
  assert_int_not_equal(nn_rules_group_eval_ts("g2", "f.yml", i, T0) % i, a % i);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_recording_rules_write_series_seen_by_later_rules, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_alert_pending_firing_resolved_timeline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pending_alert_that_clears_is_never_sent, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_limit_and_duplicate_labelsets_are_rule_errors, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_api_json_shapes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reload_keeps_alert_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_for_state_restored_after_restart, setup, teardown),
      cmocka_unit_test(test_group_eval_timestamps_are_aligned),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
