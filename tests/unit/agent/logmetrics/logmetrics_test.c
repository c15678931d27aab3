/* SPDX-License-Identifier: Apache-2.0 */
/* Logs -> metrics: JSON and regex extraction, histogram maths, the cardinality cap,
 * exposition that promtool accepts, and the changed series rendered alone for a push. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/logmetrics/logmetrics.h"
#include "common/buf.h"
#include "common/config.h"

static const struct nn_label stream[] = {{"container", "api"}, {"namespace", "shop"}};

static struct nn_logmetrics *make(const char *yml, struct nn_logmetrics_config *cfg)
{
  memset(cfg, 0, sizeof(*cfg));
  struct nn_cfg_error err;
  assert_int_equal(
      nn_cfg_load_string("t.yml", yml, strlen(yml), nn_logmetrics_config_options, cfg, &err), 0);
  char e[200];
  struct nn_logmetrics *m = nn_logmetrics_create(cfg, e, sizeof(e));
  assert_non_null(m);
  return m;
}

static char *render(struct nn_logmetrics *m)
{
  struct nn_buf b;
  nn_buf_init(&b, 1 << 22);
  assert_int_equal(nn_logmetrics_render(m, &b), 0);
  return nn_buf_steal(&b, NULL);
}

static void feed(struct nn_logmetrics *m, const char *line)
{
  nn_logmetrics_observe(m, stream, 2, line, strlen(line));
}

static void json_access_logs_become_counters_and_histograms(void **state)
{
  struct nn_logmetrics_config cfg;
  struct nn_logmetrics *m = make("enabled: true\nbuckets: [0.01, 0.1, 1]\n", &cfg);
  feed(m, "{\"method\":\"GET\",\"path\":\"/items\",\"status\":200,\"duration_ms\":5}");
  feed(m, "{\"method\":\"GET\",\"path\":\"/items\",\"status\":200,\"duration_ms\":50}");
  feed(m, "{\"method\":\"GET\",\"path\":\"/items\",\"status\":500,\"duration_ms\":2000}");
  feed(m, "{\"service\":\"billing\",\"method\":\"POST\",\"path\":\"/pay\",\"status\":\"201\"}");
  feed(m, "not json at all");
  feed(m, "{\"msg\":\"started\"}");
  char *t = render(m);
  assert_non_null(strstr(t, "nines_log_http_requests_total{project=\"shop\",service=\"api\","
                            "method=\"GET\",endpoint=\"/items\",status=\"200\"} 2\n"));
  assert_non_null(strstr(t, "status=\"500\"} 1\n"));
  assert_non_null(
      strstr(t, "service=\"billing\",method=\"POST\",endpoint=\"/pay\",status=\"201\"} 1"));
  assert_non_null(strstr(t, "endpoint=\"/items\",le=\"0.01\"} 1\n"));
  assert_non_null(strstr(t, "endpoint=\"/items\",le=\"0.1\"} 2\n"));
  assert_non_null(strstr(t, "endpoint=\"/items\",le=\"1\"} 2\n"));
  assert_non_null(strstr(t, "endpoint=\"/items\",le=\"+Inf\"} 3\n"));
  assert_non_null(strstr(t, "endpoint=\"/items\"} 2.055\n"));
  struct nn_logmetrics_stats st;
  nn_logmetrics_stats(m, &st);
  assert_int_equal(st.observed, 6);
  assert_int_equal(st.matched, 4);
  /* The exposition is valid for promtool. */
  char path[] = "/tmp/nines-lm-XXXXXX";
  int fd = mkstemp(path);
  assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
  close(fd);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "promtool check metrics < %s >/dev/null 2>&1", path);
  int rc = system(cmd);
  unlink(path);
  if (rc != 127 * 256)
    assert_int_equal(rc, 0);
  free(t);
  nn_logmetrics_destroy(m);
  nn_cfg_free(nn_logmetrics_config_options, &cfg);
}

static void regex_named_groups(void **state)
{
  struct nn_logmetrics_config cfg;
  struct nn_logmetrics *m =
      make("enabled: true\nduration_unit_seconds: 1\nregex: '^(?<method>\\S+) (?<endpoint>\\S+) "
           "(?<status>\\d{3}) (?<duration>[0-9.]+)s$'\n",
           &cfg);
  feed(m, "GET /health 200 0.002s");
  feed(m, "GET /health 503 0.2s");
  feed(m, "garbage");
  char *t = render(m);
  assert_non_null(strstr(t, "method=\"GET\",endpoint=\"/health\",status=\"503\"} 1"));
  assert_non_null(strstr(t, "endpoint=\"/health\"} 2\n"));
  free(t);
  nn_logmetrics_destroy(m);
  nn_cfg_free(nn_logmetrics_config_options, &cfg);
}

static void cardinality_is_capped(void **state)
{
  struct nn_logmetrics_config cfg;
  struct nn_logmetrics *m = make("enabled: true\nmax_series: 10\n", &cfg);
  char line[200];
  for (int i = 0; i < 1000; i++) {
    snprintf(line, sizeof(line), "{\"method\":\"GET\",\"path\":\"/u/%d\",\"status\":200}", i);
    feed(m, line);
  }
  struct nn_logmetrics_stats st;
  nn_logmetrics_stats(m, &st);
  assert_int_equal(st.matched, 1000);
  assert_int_equal(st.overflow, 990);
  assert_true(st.series <= 11);
  char *t = render(m);
  assert_non_null(strstr(t, "endpoint=\"__other__\",status=\"200\"} 990\n"));
  assert_non_null(strstr(t, "nines_log_metrics_overflow_total 990\n"));
  free(t);
  nn_logmetrics_destroy(m);
  nn_cfg_free(nn_logmetrics_config_options, &cfg);
}

static char *render_changed(struct nn_logmetrics *m)
{
  struct nn_buf b;
  nn_buf_init(&b, 1 << 22);
  assert_int_equal(nn_logmetrics_render_changed(m, &b), 0);
  nn_buf_appends(&b, "");
  return nn_buf_steal(&b, NULL);
}

/* Every line of a changed series, as the full exposition spells it; nothing of the others. */
static void only_changed_series_are_rendered_for_a_push(void **state)
{
  struct nn_logmetrics_config cfg;
  struct nn_logmetrics *m = make("enabled: true\nbuckets: [0.01, 0.1]\n", &cfg);
  assert_int_equal(nn_logmetrics_changed(m), 0);
  char *t = render_changed(m);
  assert_string_equal(t, "");
  free(t);
  assert_false(nn_logmetrics_observe(m, stream, 2, "not an access log", 17));
  assert_int_equal(nn_logmetrics_changed(m), 0);
  feed(m, "{\"method\":\"GET\",\"path\":\"/a\",\"status\":200,\"duration_ms\":5}");
  feed(m, "{\"method\":\"GET\",\"path\":\"/a\",\"status\":500,\"duration_ms\":50}");
  feed(m, "{\"method\":\"GET\",\"path\":\"/b\",\"status\":200}");
  assert_int_equal(nn_logmetrics_changed(m), 2);
  nn_logmetrics_clear_changed(m);
  assert_int_equal(nn_logmetrics_changed(m), 0);
  t = render_changed(m);
  assert_string_equal(t, "");
  free(t);

  const char *line = "{\"method\":\"GET\",\"path\":\"/a\",\"status\":503,\"duration_ms\":7}";
  assert_true(nn_logmetrics_observe(m, stream, 2, line, strlen(line)));
  feed(m, line);
  assert_int_equal(nn_logmetrics_changed(m), 1);
  char *full = render(m);
  t = render_changed(m);
  /* Each line of the push is a line of the full exposition, HELP and TYPE first. */
  assert_true(strncmp(t, "# HELP nines_log_http_requests_total ", 37) == 0);
  assert_non_null(strstr(t, "# TYPE nines_log_http_request_duration_seconds histogram\n"));
  size_t lines = 0;
  for (char *p = t, *nl; *p; p = nl + 1, lines++) {
    nl = strchr(p, '\n');
    assert_non_null(nl);
    char one[512];
    snprintf(one, sizeof(one), "%.*s", (int)(nl - p + 1), p);
    assert_non_null(strstr(full, one));
    assert_null(strstr(one, "endpoint=\"/b\""));
  }
  /* 4 HELP/TYPE, 3 statuses, 3 buckets, sum, count */
  assert_int_equal(lines, 4 + 3 + 3 + 2);
  assert_non_null(strstr(t, "endpoint=\"/a\",status=\"503\"} 2\n"));
  assert_non_null(strstr(t, "endpoint=\"/a\",status=\"500\"} 1\n"));
  assert_non_null(strstr(t, "endpoint=\"/a\",le=\"+Inf\"} 4\n"));
  assert_null(strstr(t, "overflow"));
  free(t);
  free(full);
  nn_logmetrics_clear_changed(m);

  /* Folded lines mark the __other__ series. */
  nn_logmetrics_destroy(m);
  nn_cfg_free(nn_logmetrics_config_options, &cfg);
  m = make("enabled: true\nmax_series: 1\n", &cfg);
  feed(m, "{\"method\":\"GET\",\"path\":\"/x\",\"status\":200}");
  nn_logmetrics_clear_changed(m);
  feed(m, "{\"method\":\"GET\",\"path\":\"/y\",\"status\":200}");
  assert_int_equal(nn_logmetrics_changed(m), 1);
  t = render_changed(m);
  assert_non_null(strstr(t, "endpoint=\"__other__\",status=\"200\"} 1\n"));
  assert_null(strstr(t, "endpoint=\"/x\""));
  free(t);
  nn_logmetrics_destroy(m);
  nn_cfg_free(nn_logmetrics_config_options, &cfg);
}

static void bad_settings_are_refused(void **state)
{
  struct nn_logmetrics_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  struct nn_cfg_error err;
  const char *yml = "regex: '(?<status>'\n";
  assert_int_equal(
      nn_cfg_load_string("t.yml", yml, strlen(yml), nn_logmetrics_config_options, &cfg, &err), 0);
  char e[200];
  assert_null(nn_logmetrics_create(&cfg, e, sizeof(e)));
  assert_non_null(strstr(e, "regex"));
  nn_cfg_free(nn_logmetrics_config_options, &cfg);
  yml = "buckets: [1, 0.5]\n";
  memset(&cfg, 0, sizeof(cfg));
  assert_int_equal(
      nn_cfg_load_string("t.yml", yml, strlen(yml), nn_logmetrics_config_options, &cfg, &err), 0);
  assert_null(nn_logmetrics_create(&cfg, e, sizeof(e)));
  assert_non_null(strstr(e, "bucket"));
  nn_cfg_free(nn_logmetrics_config_options, &cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(json_access_logs_become_counters_and_histograms),
      cmocka_unit_test(regex_named_groups),
      cmocka_unit_test(cardinality_is_capped),
      cmocka_unit_test(only_changed_series_are_rendered_for_a_push),
      cmocka_unit_test(bad_settings_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
