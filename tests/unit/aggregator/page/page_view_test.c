/* SPDX-License-Identifier: Apache-2.0 */
/* What each SLO row of the summary page shows (issue 8): objective, SLI, budget left in %
 * and in minutes of full outage, the 1 h burn rate, time to exhaustion, the budget
 * burn-down and daily-SLI sparkline as inline SVG, and the calendar of this month and the
 * three before it; the roll-up order project > service > SLO; the team filter; the page
 * refreshing itself without JavaScript or external assets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/page/page.h"
#include "common/buf.h"

/* Builds a /api/v1/slos body: shop/api (two SLOs), shop/worker, and search/api. */
static char *fixture(void)
{
  json_t *slos = json_array();
  static const struct {
    const char *id, *project, *service, *name, *team, *status;
    double sli, remaining, rem_min, burn, tte;
  } s[] = {
      {"shop-api-availability", "shop", "shop-api", "availability", "web", "at_risk", 0.9995, 0.5,
       21.6, 2.5, 5 * 86400},
      {"shop-api-latency", "shop", "shop-api", "latency", "web", "ok", 0.995, 0.9, 388.8, 0.2, -1},
      {"shop-worker-availability", "shop", "shop-worker", "availability", "jobs", "ok", 0.9999,
       0.95, 41.04, 0.1, -1},
      {"search-api-availability", "search", "search-api", "availability", "find", "ok", 0.9999,
       0.99, 42.77, 0.05, -1},
  };
  for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
    json_t *daily = json_array(), *burndown = json_array(), *monthly = json_array();
    for (int d = 0; d < 30; d++) {
      char date[16];
      snprintf(date, sizeof(date), "2026-11-%02d", d + 1);
      json_array_append_new(daily,
                            json_pack("{s:s,s:f}", "date", date, "sli", d == 20 ? 0.99 : 0.9995));
      json_array_append_new(burndown, json_pack("{s:s,s:f}", "date", date, "remaining",
                                                1.0 - d * (1.0 - s[i].remaining) / 29));
    }
    static const char *const months[] = {"2026-09", "2026-10", "2026-11", "2026-12"};
    for (int m = 0; m < 4; m++)
      json_array_append_new(monthly, json_pack("{s:s,s:f,s:b,s:b}", "month", months[m], "sli",
                                               0.999, "met", m != 1, "complete", m != 3));
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:f,s:f,s:f,s:f,s:f,s:{s:f},s:s,s:[],s:o,s:o,s:o}", "id",
                  s[i].id, "project", s[i].project, "service", s[i].service, "name", s[i].name,
                  "team", s[i].team, "objective", 0.999, "sli", s[i].sli, "budget_remaining",
                  s[i].remaining, "budget_total_minutes", 43.2, "budget_remaining_minutes",
                  s[i].rem_min, "burn_rates", "1h", s[i].burn, "status", s[i].status, "alerts",
                  "daily", daily, "burndown", burndown, "monthly", monthly);
    assert_non_null(o);
    if (s[i].tte >= 0)
      json_object_set_new(o, "time_to_exhaustion_seconds", json_real(s[i].tte));
    else /* as /api/v1/slos says "not burning" */
      json_object_set_new(o, "time_to_exhaustion_seconds", json_null());
    json_object_set_new(o, "exhaustion", json_string(s[i].tte >= 0 ? "projected" : "never"));
    json_array_append_new(slos, o);
  }
  json_t *root = json_pack("{s:s,s:{s:o}}", "status", "success", "data", "slos", slos);
  char *text = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return text;
}

static char *render(const struct nn_page_filter *f)
{
  char *json = fixture();
  struct nn_buf b;
  nn_buf_init(&b, 1 << 22);
  struct nn_page_opts o = {.title = "SLOs", .refresh_seconds = 30};
  assert_int_equal(nn_page_render(json, strlen(json), NN_PAGE_HTML, f, &o, 1796649000, &b), 0);
  free(json);
  return nn_buf_steal(&b, NULL);
}

static size_t count(const char *hay, const char *needle)
{
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
    n++;
  return n;
}

/* The text of the row with the given id, up to its end. */
static char *row(const char *html, const char *id)
{
  char key[128];
  snprintf(key, sizeof(key), "id=\"slo-%s\"", id);
  const char *p = strstr(html, key);
  assert_non_null(p);
  const char *e = strstr(p, "</tr>");
  assert_non_null(e);
  return strndup(p, (size_t)(e - p));
}

static void row_shows_every_figure(void **state)
{
  char *html = render(NULL);
  char *r = row(html, "shop-api-availability");
  assert_non_null(strstr(r, "<td class=\"num\">99.90%</td>"));      /* objective */
  assert_non_null(strstr(r, "<td class=\"num sli\">99.950%</td>")); /* SLI over the window */
  assert_non_null(strstr(r, "50.0%<br><span class=\"muted\">21.6 min of outage left")); /* budget */
  assert_non_null(strstr(r, "<td class=\"num burn\">2.5×</td>")); /* burn rate (1h) */
  assert_non_null(strstr(r, "<td class=\"num\">5 days</td>"));    /* time to exhaustion */
  assert_non_null(strstr(r, "<svg class=\"burndown\""));          /* burn-down chart */
  assert_non_null(strstr(r, "<svg class=\"spark\""));             /* daily SLI sparkline */
  /* 30 points in each chart. */
  const char *pl = strstr(strstr(r, "<svg class=\"spark\""), "points=\"");
  assert_non_null(pl);
  size_t pts = 0;
  for (const char *q = pl + 8; *q != '"'; q++)
    pts += *q == ',';
  assert_int_equal(pts, 30);
  /* The calendar: this month (so far) and the three before it, met or missed. */
  assert_non_null(strstr(r,
                         "<ol class=\"calendar\"><li class=\"met\" title=\"2026-09: met\">09</li>"
                         "<li class=\"missed\" title=\"2026-10: missed\">10</li>"
                         "<li class=\"met\" title=\"2026-11: met\">11</li>"
                         "<li class=\"met\" title=\"2026-12: met so far\">12</li></ol>"));
  free(r);
  /* An SLO that is not burning says so rather than showing an unknown "—". */
  r = row(html, "shop-api-latency");
  assert_non_null(strstr(r, "<td class=\"num\">not burning</td>"));
  free(r);
  free(html);
}

static void self_contained_and_refreshing(void **state)
{
  char *html = render(NULL);
  assert_non_null(strstr(html, "<meta http-equiv=\"refresh\" content=\"30\">"));
  assert_null(strstr(html, "<script"));
  assert_null(strstr(html, "<link"));
  assert_null(strstr(html, "src=\""));
  assert_null(strstr(html, "url("));
  assert_non_null(strstr(html, "@media print"));
  free(html);
}

static void rolls_up_project_service_slo(void **state)
{
  char *html = render(NULL);
  /* shop (at risk) before search (ok); within shop, shop-api's table before shop-worker's. */
  const char *shop = strstr(html, "<details class=\"project\" open data-project=\"shop\">");
  const char *search = strstr(html, "<details class=\"project\" open data-project=\"search\">");
  assert_non_null(shop);
  assert_non_null(search);
  assert_true(shop < search);
  const char *api = strstr(shop, "<h3 class=\"service\">shop-api</h3>");
  const char *worker = strstr(shop, "<h3 class=\"service\">shop-worker</h3>");
  assert_true(api && worker && api < worker && worker < search);
  const char *a1 = strstr(html, "id=\"slo-shop-api-availability\"");
  const char *a2 = strstr(html, "id=\"slo-shop-api-latency\"");
  assert_true(api < a1 && api < a2 && a1 < worker && a2 < worker);
  assert_true(strstr(shop, "<span class=\"muted\">3 SLOs") < api);
  free(html);
}

static void team_filter(void **state)
{
  struct nn_page_filter f = {.team = "web"};
  char *html = render(&f);
  assert_int_equal(count(html, "<tr class=\"slo\""), 2);
  assert_null(strstr(html, "id=\"slo-shop-worker-availability\""));
  assert_non_null(strstr(html, "<option value=\"web\" selected>web</option>"));
  /* The other teams stay selectable. */
  assert_non_null(strstr(html, "<option value=\"jobs\">jobs</option>"));
  free(html);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(row_shows_every_figure),
      cmocka_unit_test(self_contained_and_refreshing),
      cmocka_unit_test(rolls_up_project_service_slo),
      cmocka_unit_test(team_filter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
