/* SPDX-License-Identifier: Apache-2.0 */
/* The SLO page: verdict counts, roll-up, escaping of hostile names, filters, exports, and
 * page incidents derived from ALERTS series. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../promql/memstore.h"
#include "aggregator/page/page.h"
#include "common/buf.h"
#include "common/error.h"

static const char fixture[] =
    "{\"status\":\"success\",\"data\":{\"slos\":["
    "{\"id\":\"payments-api-availability\",\"service\":\"payments-api\",\"name\":\"availability\","
    "\"description\":\"5xx "
    "ratio\",\"project\":\"payments\",\"team\":\"money\",\"labels\":{\"tier\":"
    "\"1\"},\"objective\":0.999,\"sli\":0.97,\"budget_remaining\":-29,\"budget_total_minutes\":43."
    "2,"
    "\"budget_remaining_minutes\":-1252.8,\"burn_rates\":{\"5m\":30,\"1h\":30,\"period\":30},"
    "\"time_to_exhaustion_seconds\":0,\"status\":\"breached\",\"alerts\":[{\"labels\":{"
    "\"alertname\":\"PaymentsHighErrorRate\",\"severity\":\"page\"}}],\"daily\":[{\"date\":"
    "\"2026-11-21\",\"sli\":0.999},{\"date\":\"2026-11-22\",\"sli\":0.97}],\"burndown\":[{\"date\":"
    "\"2026-11-21\",\"remaining\":1},{\"date\":\"2026-11-22\",\"remaining\":-29}],\"monthly\":[{"
    "\"month\":\"2026-10\",\"sli\":0.9995,\"met\":true,\"complete\":true},{\"month\":\"2026-11\","
    "\"sli\":0.97,\"met\":false,\"complete\":false}]},"
    "{\"id\":\"x\",\"service\":\"<script>alert(1)</script>\",\"name\":\"<img src=x "
    "onerror=alert(2)>\","
    "\"project\":\"search\",\"team\":\"find\",\"objective\":0.99,\"sli\":0.995,\"budget_"
    "remaining\":0.5,"
    "\"budget_total_minutes\":432,\"budget_remaining_minutes\":216,\"burn_rates\":{\"1h\":0.5},"
    "\"time_to_exhaustion_seconds\":null,\"status\":\"ok\",\"alerts\":[],\"daily\":[],\"burndown\":"
    "[],"
    "\"monthly\":[]},"
    "{\"id\":\"y\",\"service\":\"search-worker\",\"name\":\"latency\",\"project\":\"search\","
    "\"team\":"
    "\"find\",\"objective\":0.99,\"sli\":null,\"budget_remaining\":null,\"status\":\"no_data\","
    "\"alerts\":[],\"daily\":[],\"burndown\":[],\"monthly\":[]}"
    "]}}";

static char *render(enum nn_page_format fmt, const struct nn_page_filter *f)
{
  struct nn_buf b;
  nn_buf_init(&b, 1 << 22);
  struct nn_page_opts o = {.title = "Acme SLOs"};
  assert_int_equal(nn_page_render(fixture, strlen(fixture), fmt, f, &o, 1795323000, &b), 0);
  return nn_buf_steal(&b, NULL);
}

static size_t count(const char *hay, const char *needle)
{
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
    n++;
  return n;
}

static void verdict_counts_and_breached_slo(void **state)
{
  char *html = render(NN_PAGE_HTML, NULL);
  assert_non_null(strstr(html, "1 of 3 SLOs breached"));
  assert_non_null(strstr(html, "id=\"count-breached\"><span class=\"n\">1</span>"));
  assert_non_null(strstr(html, "id=\"count-ok\"><span class=\"n\">1</span>"));
  assert_non_null(strstr(html, "id=\"count-no_data\"><span class=\"n\">1</span>"));
  assert_int_equal(count(html, "<tr class=\"slo\""), 3);
  assert_non_null(strstr(html, "data-status=\"breached\" id=\"slo-payments-api-availability\""));
  assert_non_null(strstr(html, "PaymentsHighErrorRate"));
  /* Top burners lists the 30x burner, not the one burning under 1x. */
  const char *tb = strstr(html, "id=\"top-burners\"");
  assert_non_null(tb);
  assert_non_null(strstr(tb, "burning 30.0×"));
  assert_null(strstr(html, "burning 0.5×"));
  /* No data is shown as no data, never as 100%. */
  assert_non_null(strstr(html, "<span class=\"badge no_data\">no data</span>"));
  assert_non_null(strstr(html, "<svg class=\"burndown\""));
  assert_non_null(strstr(html, "<ol class=\"calendar\"><li class=\"met\""));
  assert_non_null(strstr(html, "@media print"));
  assert_null(strstr(html, "<script"));
  /* The project in trouble comes first, and an overspent budget counts as 0 left. */
  assert_true(strstr(html, "data-project=\"payments\"") < strstr(html, "data-project=\"search\""));
  assert_non_null(strstr(html, "id=\"budget-total\"><span class=\"n\">45%</span>"));
  assert_non_null(strstr(tb, "budget exhausted"));
  free(html);
}

static void hostile_names_are_escaped(void **state)
{
  char *html = render(NN_PAGE_HTML, NULL);
  assert_null(strstr(html, "<script>alert(1)</script>"));
  assert_null(strstr(html, "<img src=x"));
  assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
  assert_non_null(strstr(html, "&lt;img src=x onerror=alert(2)&gt;"));
  free(html);
}

static void filters_narrow_the_page(void **state)
{
  struct nn_page_filter f = {.project = "search"};
  char *html = render(NN_PAGE_HTML, &f);
  assert_int_equal(count(html, "<tr class=\"slo\""), 2);
  assert_null(strstr(html, "slo-payments-api-availability"));
  assert_non_null(strstr(html, "<option value=\"search\" selected>"));
  free(html);
  struct nn_page_filter g = {.label = "tier:1"};
  html = render(NN_PAGE_HTML, &g);
  assert_int_equal(count(html, "<tr class=\"slo\""), 1);
  /* The form keeps the label filter in its text field. */
  assert_non_null(
      strstr(html, "name=\"label\" placeholder=\"tier:1\" size=\"14\" value=\"tier:1\""));
  free(html);
  /* The service select lists every service and marks the chosen one; a hostile label
   * filter is escaped in the field. */
  struct nn_page_filter s = {.service = "search-worker", .label = "\"><script>"};
  html = render(NN_PAGE_HTML, &s);
  assert_int_equal(count(html, "<tr class=\"slo\""), 0);
  assert_non_null(strstr(html, "<select name=\"service\">"));
  assert_non_null(strstr(html, "<option value=\"search-worker\" selected>"));
  assert_non_null(strstr(html, "<option value=\"payments-api\">"));
  assert_null(strstr(html, "<script>"));
  assert_non_null(strstr(html, "value=\"&quot;&gt;&lt;script&gt;\""));
  free(html);
  struct nn_page_filter w = {.service = "search-worker"};
  html = render(NN_PAGE_HTML, &w);
  assert_int_equal(count(html, "<tr class=\"slo\""), 1);
  free(html);
  struct nn_page_filter h = {.status = "breached"};
  html = render(NN_PAGE_CSV, &h);
  assert_int_equal(count(html, "\r\n"), 2);
  free(html);
}

static void csv_and_markdown_exports(void **state)
{
  char *csv = render(NN_PAGE_CSV, NULL);
  assert_true(strncmp(csv, "project,service,slo,status,objective", 36) == 0);
  assert_int_equal(count(csv, "\r\n"), 4);
  assert_non_null(
      strstr(csv, "\"payments\",\"payments-api\",\"availability\",\"breached\",0.999,0.97"));
  free(csv);
  char *md = render(NN_PAGE_MARKDOWN, NULL);
  assert_non_null(
      strstr(md, "**1 of 3 SLOs meeting target** · 0 at risk · 1 breached · 1 without data"));
  assert_non_null(strstr(md, "| payments | payments-api | availability | breached | 99.90% |"));
  assert_non_null(strstr(md, "\\<script>"));
  free(md);
}

static void bad_json_is_an_error(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  assert_int_equal(nn_page_render("{", 1, NN_PAGE_HTML, NULL, NULL, 0, &b), NN_EINVAL);
  assert_int_equal(nn_page_render("{\"data\":{}}", 11, NN_PAGE_HTML, NULL, NULL, 0, &b), NN_EINVAL);
  nn_buf_fini(&b);
}

/* ALERTS{alertstate="firing",sloth_severity="page",sloth_id=id,alertname=name} every
 * minute over [from_min, to_min] (minutes). */
static void firing(struct memstore *ms, const char *id, const char *name, const char *severity,
                   int from_min, int to_min)
{
  struct nn_label ls[] = {{"__name__", "ALERTS"},
                          {"alertname", name},
                          {"alertstate", "firing"},
                          {"sloth_id", id},
                          {"sloth_severity", severity}};
  struct memseries *s = memstore_series(ms, ls, 5);
  for (int m = from_min; m <= to_min; m++)
    memstore_append(s, (int64_t)m * 60000, 1);
}

static void incidents_come_from_alerts_history(void **state)
{
  (void)state;
  struct memstore ms = {0};
  /* payments: a 30-minute page 3 days ago, then one that started 10 minutes ago and is
   * still firing (two alert names overlap: one incident); a ticket never counts; another
   * SLO's page is not ours; a page 40 days ago is outside the 30d window. */
  int64_t now_min = 40 * 1440;
  firing(&ms, "payments-api-availability", "PaymentsHighErrorRate", "page", (int)now_min - 3 * 1440,
         (int)now_min - 3 * 1440 + 30);
  firing(&ms, "payments-api-availability", "PaymentsHighErrorRate", "page", (int)now_min - 10,
         (int)now_min);
  firing(&ms, "payments-api-availability", "PaymentsHighErrorRateSlow", "page", (int)now_min - 8,
         (int)now_min - 1);
  firing(&ms, "payments-api-availability", "PaymentsTicket", "ticket", (int)now_min - 2000,
         (int)now_min - 1000);
  firing(&ms, "y", "SearchLatency", "page", (int)now_min - 100, (int)now_min - 90);
  firing(&ms, "payments-api-availability", "PaymentsHighErrorRate", "page", 10, 20);
  struct nn_querier q = memstore_querier(&ms);

  struct nn_page_incident inc[5];
  size_t n;
  int64_t now = now_min * 60000;
  assert_int_equal(
      nn_page_incidents(&q, "payments-api-availability", now - 30LL * 86400000, now, inc, 5, &n),
      0);
  assert_int_equal(n, 2);
  assert_true(inc[0].start_ms == (now_min - 3 * 1440) * 60000);
  assert_true(inc[0].end_ms == (now_min - 3 * 1440 + 30) * 60000);
  assert_false(inc[0].ongoing);
  assert_true(inc[1].start_ms == (now_min - 10) * 60000 && inc[1].end_ms == now);
  assert_true(inc[1].ongoing);
  /* max 1 keeps the most recent; the count is still all of them */
  assert_int_equal(nn_page_incidents(&q, "payments-api-availability", 0, now, inc, 1, &n), 0);
  assert_int_equal(n, 3);
  assert_true(inc[0].start_ms == (now_min - 10) * 60000);
  /* a gap longer than 5 minutes splits an incident */
  firing(&ms, "x", "Gap", "page", 100, 110);
  firing(&ms, "x", "Gap", "page", 116, 120);
  firing(&ms, "x", "Gap2", "page", 125, 125);
  q = memstore_querier(&ms);
  assert_int_equal(nn_page_incidents(&q, "x", 0, now, inc, 5, &n), 0);
  assert_int_equal(n, 2);
  assert_true(inc[0].end_ms == 110 * 60000 && inc[1].start_ms == 116 * 60000 &&
              inc[1].end_ms == 125 * 60000);

  /* The page lists them for the SLO over its period ("30d" when the JSON has none). */
  struct nn_buf b;
  nn_buf_init(&b, 1 << 22);
  struct nn_page_opts o = {.title = "Acme SLOs", .querier = q};
  assert_int_equal(
      nn_page_render(fixture, strlen(fixture), NN_PAGE_HTML, NULL, &o, (double)now / 1000, &b), 0);
  char *html = b.data;
  const char *row = strstr(html, "id=\"slo-payments-api-availability\"");
  assert_non_null(row);
  const char *end = strstr(row, "</tr>");
  const char *cell = strstr(row, "<div class=\"incidents\" data-count=\"2\">");
  assert_true(cell && cell < end);
  assert_non_null(strstr(cell, "2 page incidents in 30d"));
  assert_non_null(strstr(cell, "<li class=\"ongoing\">"));
  assert_non_null(strstr(cell, "(30 min)"));
  /* the SLO without incidents says so; the hostile one is still escaped */
  assert_non_null(strstr(html, "<div class=\"incidents\" data-count=\"0\"></div>"));
  assert_null(strstr(html, "<script>alert(1)"));
  nn_buf_reset(&b);
  assert_int_equal(
      nn_page_render(fixture, strlen(fixture), NN_PAGE_CSV, NULL, &o, (double)now / 1000, &b), 0);
  assert_non_null(strstr(b.data, ",page_incidents\r\n"));
  const char *line = strstr(b.data, "\"payments\",\"payments-api\",\"availability\",");
  if (!line)
    fail_msg("%s", b.data);
  assert_non_null(strstr(line, ",2\r\n"));
  nn_buf_fini(&b);
  memstore_clear(&ms);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(verdict_counts_and_breached_slo),
      cmocka_unit_test(hostile_names_are_escaped),
      cmocka_unit_test(filters_narrow_the_page),
      cmocka_unit_test(csv_and_markdown_exports),
      cmocka_unit_test(bad_json_is_an_error),
      cmocka_unit_test(incidents_come_from_alerts_history),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
