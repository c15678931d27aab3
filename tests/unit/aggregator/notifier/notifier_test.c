/* SPDX-License-Identifier: Apache-2.0 */
/* The notifier against an in-process HTTP server on 127.0.0.1: payload shape (labels with
 * external labels, startsAt/endsAt, generatorURL, User-Agent), batching, drop-oldest on a
 * full queue, no retry after a failed batch, fan-out to every Alertmanager, drain on stop,
 * and end to end with the rules engine (endsAt and resend cadence). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "aggregator/notifier/notifier.h"
#include "aggregator/rules/rules.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/http_server.h"

static struct {
  uv_loop_t loop;
  struct nn_http_server *srv[2];
  int port[2];
  json_t *batches[2][32];
  size_t nbatches[2];
  char ua[128];
  int status;
  bool stopped;
} f;

static void on_alerts(struct nn_http_req *req, void *ud)
{
  size_t which = (size_t)(uintptr_t)ud;
  json_error_t je;
  json_t *j = json_loadb(req->body, req->body_len, 0, &je);
  if (j && f.nbatches[which] < 32)
    f.batches[which][f.nbatches[which]++] = j;
  else
    json_decref(j);
  const char *ua = nn_http_req_header(req, "User-Agent", NULL);
  snprintf(f.ua, sizeof(f.ua), "%s", ua ? ua : "");
  nn_http_respond(req, f.status, "application/json", "", 0);
}

static int setup(void **state)
{
  memset(&f, 0, sizeof(f));
  f.status = 200;
  uv_loop_init(&f.loop);
  for (size_t i = 0; i < 2; i++) {
    struct nn_http_server_opts so = {0};
    f.srv[i] = nn_http_server_create(&f.loop, &so);
    if (!f.srv[i] ||
        nn_http_server_route(f.srv[i], "/api/v2/alerts", 0, on_alerts, (void *)(uintptr_t)i) < 0 ||
        nn_http_server_listen(f.srv[i], "127.0.0.1:0") < 0)
      return -1;
    f.port[i] = nn_http_server_port(f.srv[i]);
  }
  return 0;
}

static int nstopped;
static void on_srv_stopped(void *ud)
{
  nstopped++;
}

static int teardown(void **state)
{
  nstopped = 0;
  for (size_t i = 0; i < 2; i++)
    nn_http_server_stop(f.srv[i], on_srv_stopped, NULL);
  for (int i = 0; i < 10000 && nstopped < 2; i++)
    uv_run(&f.loop, UV_RUN_ONCE);
  for (size_t i = 0; i < 2; i++) {
    nn_http_server_destroy(f.srv[i]);
    for (size_t k = 0; k < f.nbatches[i]; k++)
      json_decref(f.batches[i][k]);
  }
  for (int i = 0; i < 10000 && uv_loop_alive(&f.loop); i++)
    uv_run(&f.loop, UV_RUN_NOWAIT);
  return uv_loop_close(&f.loop) == 0 ? 0 : -1;
}

static void on_deadline(uv_timer_t *t)
{
  *(bool *)t->data = true;
}

/* Runs the loop until cond() holds or 5 s passed. */
static bool run_until(bool (*cond)(void))
{
  bool expired = false;
  uv_timer_t t;
  uv_timer_init(&f.loop, &t);
  t.data = &expired;
  uv_timer_start(&t, on_deadline, 5000, 0);
  while (!cond() && !expired)
    uv_run(&f.loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  return cond();
}

static struct nn_notifier *make(size_t nams, int64_t cap, int64_t batch)
{
  static struct nn_notifier_am_config ams[2];
  static char urls[2][64];
  for (size_t i = 0; i < 2; i++) {
    snprintf(urls[i], sizeof(urls[i]), "http://127.0.0.1:%d/", f.port[i]);
    ams[i] = (struct nn_notifier_am_config){.url = urls[i], .timeout_ms = 2000};
  }
  struct nn_notifier_config cfg = {
      .alertmanagers = {.items = ams, .n = nams}, .queue_capacity = cap, .batch_size = batch};
  static char *ek[] = {"cluster", "alertname"}, *ev[] = {"eu", "ignored"};
  struct nn_cfg_strmap ext = {.keys = ek, .values = ev, .n = 2};
  struct nn_notifier_opts o = {.loop = &f.loop, .cfg = &cfg, .external_labels = &ext};
  struct nn_notifier *n = nn_notifier_create(&o);
  assert_non_null(n);
  return n;
}

static struct nn_label lbuf[16][2];
static struct nn_notifier_alert alert(int i)
{
  static char names[16][16];
  snprintf(names[i], sizeof(names[i]), "A%d", i);
  lbuf[i][0] = (struct nn_label){"alertname", names[i]};
  lbuf[i][1] = (struct nn_label){"severity", "page"};
  static const struct nn_label ann[] = {{"summary", "it broke"}};
  return (struct nn_notifier_alert){.labels = lbuf[i],
                                    .nlabels = 2,
                                    .annotations = ann,
                                    .nannotations = 1,
                                    .starts_at_ms = 1700000000000 + i,
                                    .ends_at_ms = 1700000240000,
                                    .generator_url = "http://x/graph?g0.expr=up&g0.tab=1"};
}

static size_t want_batches;
static bool got_batches(void)
{
  return f.nbatches[0] >= want_batches;
}

static void test_payload_shape(void **state)
{
  struct nn_notifier *n = make(1, 100, 10);
  struct nn_notifier_alert a = alert(1);
  nn_notifier_send(n, &a, 1);
  want_batches = 1;
  assert_true(run_until(got_batches));
  json_t *arr = f.batches[0][0];
  assert_true(json_is_array(arr));
  assert_int_equal(json_array_size(arr), 1);
  json_t *o = json_array_get(arr, 0);
  json_t *l = json_object_get(o, "labels");
  assert_string_equal(json_string_value(json_object_get(l, "alertname")), "A1");
  assert_string_equal(json_string_value(json_object_get(l, "cluster")), "eu");
  assert_int_equal(json_object_size(l), 3); /* alertname kept, not overwritten */
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(o, "annotations"), "summary")), "it broke");
  assert_string_equal(json_string_value(json_object_get(o, "startsAt")),
                      "2023-11-14T22:13:20.001Z");
  assert_string_equal(json_string_value(json_object_get(o, "endsAt")), "2023-11-14T22:17:20Z");
  assert_string_equal(json_string_value(json_object_get(o, "generatorURL")),
                      "http://x/graph?g0.expr=up&g0.tab=1");
  assert_true(strncmp(f.ua, "nines/", 6) == 0);
  struct nn_notifier_am_stats st;
  assert_int_equal(nn_notifier_am_stats(n, 0, &st), 0);
  assert_int_equal(st.sent, 1);
  nn_notifier_destroy(n);
}

static void test_batches_and_drop_oldest(void **state)
{
  struct nn_notifier *n = make(1, 3, 2);
  struct nn_notifier_alert as[5];
  for (int i = 0; i < 5; i++)
    as[i] = alert(i);
  nn_notifier_send(n, as, 5); /* capacity 3: A0 and A1 give way */
  want_batches = 2;
  assert_true(run_until(got_batches));
  assert_int_equal(json_array_size(f.batches[0][0]), 2);
  assert_int_equal(json_array_size(f.batches[0][1]), 1);
  const char *first = json_string_value(
      json_object_get(json_object_get(json_array_get(f.batches[0][0], 0), "labels"), "alertname"));
  assert_string_equal(first, "A2");
  struct nn_notifier_am_stats st;
  nn_notifier_am_stats(n, 0, &st);
  assert_int_equal(st.dropped, 2);
  assert_int_equal(st.sent, 3);
  assert_int_equal(st.batches, 2);
  nn_notifier_destroy(n);
}

static struct nn_notifier *cur;
static bool batch_done(void)
{
  struct nn_notifier_am_stats st;
  nn_notifier_am_stats(cur, 0, &st);
  return st.batches >= 1;
}

static void test_failed_batch_is_not_retried(void **state)
{
  f.status = 500;
  cur = make(1, 100, 10);
  struct nn_notifier_alert a = alert(0);
  nn_notifier_send(cur, &a, 1);
  assert_true(run_until(batch_done));
  /* Give a retry (which must not happen) a chance to arrive. */
  want_batches = 2;
  run_until(got_batches);
  assert_int_equal(f.nbatches[0], 1);
  struct nn_notifier_am_stats st;
  nn_notifier_am_stats(cur, 0, &st);
  assert_int_equal(st.errors, 1);
  assert_int_equal(st.dropped, 1);
  assert_int_equal(st.sent, 0);
  nn_notifier_destroy(cur);
}

static bool both_got(void)
{
  return f.nbatches[0] >= 1 && f.nbatches[1] >= 1;
}

static void on_stopped(void *ud)
{
  f.stopped = true;
}

static bool stopped(void)
{
  return f.stopped;
}

static void test_every_alertmanager_and_drain_on_stop(void **state)
{
  struct nn_notifier *n = make(2, 100, 256);
  struct nn_notifier_alert a = alert(3);
  nn_notifier_send(n, &a, 1);
  nn_notifier_stop(n, on_stopped, NULL);
  assert_false(f.stopped); /* never from inside stop */
  assert_true(run_until(stopped));
  assert_true(both_got());
  nn_notifier_send(n, &a, 1); /* ignored after stop */
  assert_int_equal(nn_notifier_am_count(n), 2);
  struct nn_notifier_am_stats st;
  nn_notifier_am_stats(n, 1, &st);
  assert_int_equal(st.queue_length, 0);
  nn_notifier_destroy(n);
}

static size_t want_alerts;
static size_t total_alerts(void)
{
  size_t t = 0;
  for (size_t i = 0; i < f.nbatches[0]; i++)
    t += json_array_size(f.batches[0][i]);
  return t;
}
static bool got_alerts(void)
{
  return total_alerts() >= want_alerts;
}

static void test_with_rules_engine_ends_at_and_resend_cadence(void **state)
{
  struct nn_tsdb_options to;
  nn_tsdb_options_default(&to);
  struct nn_tsdb *db;
  assert_int_equal(nn_tsdb_open(&to, &db), 0);
  struct nn_notifier *n = make(1, 100, 256);
  struct nn_rules_config rc = {
      .evaluation_interval_ms = 5000, .resend_delay_ms = 10000, .for_grace_period_ms = 600000};
  struct nn_rules_opts ro = {.db = db, .cfg = &rc, .notify = nn_notifier_notify, .notify_ud = n};
  struct nn_rules *r = nn_rules_create(&ro);
  assert_non_null(r);
  const char *y = "groups:\n- name: g\n  interval: 5s\n  rules:\n  - alert: Always\n"
                  "    expr: vector(1)\n";
  char err[256];
  assert_int_equal(nn_rules_set_generated(r, "t", y, strlen(y), err, sizeof(err)), 0);
  int64_t t0 = 1700000000000;
  /* Evaluations every 5s with a 10s resend delay: sent at +0, +15s, +30s (LAB cadence). */
  for (int i = 0; i <= 6; i++)
    nn_rules_eval_at(r, t0 + i * 5000, true);
  want_alerts = 3;
  assert_true(run_until(got_alerts));
  want_alerts = 4;
  run_until(got_alerts);
  assert_int_equal(total_alerts(), 3);
  /* endsAt = send time + 4 x max(5s, 10s). */
  const char *ends[] = {"2023-11-14T22:14:00Z", "2023-11-14T22:14:15Z", "2023-11-14T22:14:30Z"};
  size_t k = 0;
  for (size_t i = 0; i < f.nbatches[0]; i++)
    for (size_t j = 0; j < json_array_size(f.batches[0][i]); j++, k++) {
      json_t *o = json_array_get(f.batches[0][i], j);
      assert_string_equal(json_string_value(json_object_get(o, "endsAt")), ends[k]);
      assert_string_equal(json_string_value(json_object_get(o, "startsAt")),
                          "2023-11-14T22:13:20Z");
    }
  nn_rules_destroy(r);
  nn_notifier_destroy(n);
  nn_tsdb_close(db);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_payload_shape, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batches_and_drop_oldest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_batch_is_not_retried, setup, teardown),
      cmocka_unit_test_setup_teardown(test_every_alertmanager_and_drain_on_stop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_with_rules_engine_ends_at_and_resend_cadence, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
