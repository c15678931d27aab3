/* SPDX-License-Identifier: Apache-2.0 */
/* Self-metrics registry: text format rendering, histograms, process metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/metrics.h"

static double forty_two(void *ud)
{
  return 42;
}

static void render_groups_series_under_one_help_and_type(void **state)
{
  struct nn_metrics *m = nn_metrics_create();
  struct nn_metric *a =
      nn_metrics_counter(m, "nines_dropped_total", "Dropped lines.", "reason=\"too_long\"");
  struct nn_metric *b =
      nn_metrics_counter(m, "nines_dropped_total", "Dropped lines.", "reason=\"rejected\"");
  struct nn_metric *g = nn_metrics_gauge(m, "nines_files", "Files watched.", NULL);
  nn_metrics_func(m, NN_METRIC_GAUGE, "nines_answer", "The answer.", NULL, forty_two, NULL);
  nn_metric_inc(a);
  nn_metric_add(b, 2.5);
  nn_metric_set(g, 7);
  struct nn_buf out;
  nn_buf_init(&out, 1 << 20);
  assert_int_equal(nn_metrics_render(m, &out), 0);
  assert_string_equal(out.data, "# HELP nines_answer The answer.\n"
                                "# TYPE nines_answer gauge\n"
                                "nines_answer 42\n"
                                "# HELP nines_dropped_total Dropped lines.\n"
                                "# TYPE nines_dropped_total counter\n"
                                "nines_dropped_total{reason=\"rejected\"} 2.5\n"
                                "nines_dropped_total{reason=\"too_long\"} 1\n"
                                "# HELP nines_files Files watched.\n"
                                "# TYPE nines_files gauge\n"
                                "nines_files 7\n");
  nn_buf_fini(&out);
  nn_metrics_destroy(m);
}

static void histogram_buckets_are_cumulative(void **state)
{
  struct nn_metrics *m = nn_metrics_create();
  double bounds[] = {0.1, 1};
  struct nn_metric *h =
      nn_metrics_histogram(m, "nines_latency_seconds", "Latency.", "op=\"send\"", bounds, 2);
  nn_metric_observe(h, 0.05);
  nn_metric_observe(h, 0.5);
  nn_metric_observe(h, 5);
  struct nn_buf out;
  nn_buf_init(&out, 1 << 20);
  assert_int_equal(nn_metrics_render(m, &out), 0);
  assert_non_null(strstr(out.data, "nines_latency_seconds_bucket{op=\"send\",le=\"0.1\"} 1\n"));
  assert_non_null(strstr(out.data, "nines_latency_seconds_bucket{op=\"send\",le=\"1\"} 2\n"));
  assert_non_null(strstr(out.data, "nines_latency_seconds_bucket{op=\"send\",le=\"+Inf\"} 3\n"));
  assert_non_null(strstr(out.data, "nines_latency_seconds_sum{op=\"send\"} 5.55\n"));
  assert_non_null(strstr(out.data, "nines_latency_seconds_count{op=\"send\"} 3\n"));
  nn_buf_fini(&out);
  nn_metrics_destroy(m);
}

static void values_format_as_prometheus_does(void **state)
{
  char b[64];
  nn_metrics_format_value(NAN, b, sizeof(b));
  assert_string_equal(b, "NaN");
  nn_metrics_format_value(INFINITY, b, sizeof(b));
  assert_string_equal(b, "+Inf");
  nn_metrics_format_value(-INFINITY, b, sizeof(b));
  assert_string_equal(b, "-Inf");
  nn_metrics_format_value(0.1, b, sizeof(b));
  assert_string_equal(b, "0.1");
  nn_metrics_format_value(123456789, b, sizeof(b));
  assert_string_equal(b, "123456789");
  nn_metrics_format_value(1e-7, b, sizeof(b));
  assert_string_equal(b, "1e-07");
}

static void invalid_names_are_refused(void **state)
{
  struct nn_metrics *m = nn_metrics_create();
  assert_null(nn_metrics_counter(m, "bad-name", "x", NULL));
  assert_null(nn_metrics_counter(m, "", "x", NULL));
  nn_metrics_destroy(m);
  nn_metrics_destroy(NULL);
}

static void process_metrics_report_real_values(void **state)
{
  struct nn_metrics *m = nn_metrics_create();
  assert_int_equal(nn_metrics_add_process(m), 0);
  struct nn_buf out;
  nn_buf_init(&out, 1 << 20);
  assert_int_equal(nn_metrics_render(m, &out), 0);
  const char *p = strstr(out.data, "\nprocess_resident_memory_bytes ");
  assert_non_null(p);
  double rss = strtod(p + strlen("\nprocess_resident_memory_bytes "), NULL);
  assert_true(rss > 100000 && rss < 10e9);
  p = strstr(out.data, "\nprocess_open_fds ");
  assert_non_null(p);
  assert_true(strtod(p + strlen("\nprocess_open_fds "), NULL) >= 3);
  nn_buf_fini(&out);
  nn_metrics_destroy(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(render_groups_series_under_one_help_and_type),
      cmocka_unit_test(histogram_buckets_are_cumulative),
      cmocka_unit_test(values_format_as_prometheus_does),
      cmocka_unit_test(invalid_names_are_refused),
      cmocka_unit_test(process_metrics_report_real_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
