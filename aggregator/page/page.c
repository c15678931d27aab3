/* SPDX-License-Identifier: Apache-2.0 */
/* SLO page rendering. The input is the /api/v1/slos JSON, parsed with jansson; every string
 * from it is escaped for its context (HTML text/attribute, CSV field, Markdown cell). */
#include "aggregator/page/page.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/http_server.h"
#include "common/units.h"
#include "common/urlenc.h"

#define MAX_PAGE (32u << 20)
/* Incidents listed per SLO (the most recent); the count covers all of them. */
#define MAX_INCIDENTS 5
/* Samples one SLO's incident history may read: 30 d of a continuously firing page alert at
 * a 10 s evaluation interval, with room for a few label variants. */
#define MAX_INCIDENT_SAMPLES 2000000

struct nn_page {
  struct nn_page_opts o;
};

static const char *const statuses[] = {"breached", "at_risk", "no_data", "ok"};
static const char *const status_words[] = {"breached", "at risk", "no data", "meeting target"};

static int status_rank(const char *s)
{
  for (int i = 0; i < 4; i++)
    if (s && strcmp(s, statuses[i]) == 0)
      return i;
  return 2;
}

static const char *sget(json_t *o, const char *k)
{
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : "";
}

/* NaN for null or missing: the JSON writer emits null for "no data". */
static double nget(json_t *o, const char *k)
{
  json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Seconds until the budget is gone: the API sends null with "exhaustion": "never" (not
 * burning) or "exhausted", which read as +Inf and 0 here; NaN stays unknown. */
static double tte(json_t *slo)
{
  double s = nget(slo, "time_to_exhaustion_seconds");
  const char *e = json_string_value(json_object_get(slo, "exhaustion"));
  if (isnan(s) && e && !strcmp(e, "never"))
    return INFINITY;
  if (isnan(s) && e && !strcmp(e, "exhausted"))
    return 0;
  return s;
}

static void esc(struct nn_buf *b, const char *s)
{
  for (; *s; s++) {
    switch (*s) {
    case '<': nn_buf_appends(b, "&lt;"); break;
    case '>': nn_buf_appends(b, "&gt;"); break;
    case '&': nn_buf_appends(b, "&amp;"); break;
    case '"': nn_buf_appends(b, "&quot;"); break;
    case '\'': nn_buf_appends(b, "&#39;"); break;
    default: nn_buf_appendc(b, *s);
    }
  }
}

static void pct(struct nn_buf *b, double v, int digits)
{
  if (isnan(v))
    nn_buf_appends(b, "—");
  else
    nn_buf_printf(b, "%.*f%%", digits, v * 100);
}

static void duration(struct nn_buf *b, double s)
{
  if (isnan(s)) {
    nn_buf_appends(b, "—");
    return;
  }
  if (isinf(s)) {
    nn_buf_appends(b, "not burning");
    return;
  }
  if (s <= 0) {
    nn_buf_appends(b, "exhausted");
    return;
  }
  if (s < 3600)
    nn_buf_printf(b, "%.0f min", s / 60);
  else if (s < 2 * 86400)
    nn_buf_printf(b, "%.1f h", s / 3600);
  else
    nn_buf_printf(b, "%.0f days", s / 86400);
}

static void minutes(struct nn_buf *b, double m)
{
  if (isnan(m))
    nn_buf_appends(b, "—");
  else if (fabs(m) < 120)
    nn_buf_printf(b, "%.1f min", m);
  else
    nn_buf_printf(b, "%.1f h", m / 60);
}

static bool matches(json_t *slo, const struct nn_page_filter *f)
{
  if (!f)
    return true;
  if (f->team && *f->team && strcmp(sget(slo, "team"), f->team) != 0)
    return false;
  if (f->project && *f->project && strcmp(sget(slo, "project"), f->project) != 0)
    return false;
  if (f->service && *f->service && strcmp(sget(slo, "service"), f->service) != 0)
    return false;
  if (f->status && *f->status && strcmp(sget(slo, "status"), f->status) != 0)
    return false;
  if (f->label && *f->label) {
    const char *colon = strchr(f->label, ':');
    if (!colon)
      return false;
    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)(colon - f->label), f->label);
    json_t *v = json_object_get(json_object_get(slo, "labels"), name);
    if (!json_is_string(v) || strcmp(json_string_value(v), colon + 1) != 0)
      return false;
  }
  return true;
}

/* The roll-up key: the spec's project, else a project or namespace label, else the service. */
static const char *project_of(json_t *slo)
{
  const char *p = sget(slo, "project");
  json_t *labels = json_object_get(slo, "labels");
  if (!*p)
    p = sget(labels, "project");
  if (!*p)
    p = sget(labels, "namespace");
  return *p ? p : sget(slo, "service");
}

/* Worst status per project, so the projects in trouble come first on the page. */
static struct {
  const char *project;
  int rank;
} worst[512];
static size_t nworst;

static int project_rank(const char *project)
{
  for (size_t i = 0; i < nworst; i++)
    if (strcmp(worst[i].project, project) == 0)
      return worst[i].rank;
  return 3;
}

static void rank_projects(json_t **v, size_t n)
{
  nworst = 0;
  for (size_t i = 0; i < n; i++) {
    const char *p = project_of(v[i]);
    int r = status_rank(sget(v[i], "status"));
    size_t k = 0;
    while (k < nworst && strcmp(worst[k].project, p) != 0)
      k++;
    if (k == nworst) {
      if (nworst == sizeof(worst) / sizeof(worst[0]))
        continue;
      worst[nworst].project = p;
      worst[nworst++].rank = r;
    } else if (r < worst[k].rank) {
      worst[k].rank = r;
    }
  }
}

static int cmp_slo(const void *a, const void *b)
{
  json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
  int c = project_rank(project_of(x)) - project_rank(project_of(y));
  if (!c)
    c = strcmp(project_of(x), project_of(y));
  if (!c)
    c = strcmp(sget(x, "service"), sget(y, "service"));
  if (!c)
    c = status_rank(sget(x, "status")) - status_rank(sget(y, "status"));
  if (!c)
    c = strcmp(sget(x, "name"), sget(y, "name"));
  return c;
}

static double burn_1h(json_t *slo)
{
  return nget(json_object_get(slo, "burn_rates"), "1h");
}

static int cmp_burn(const void *a, const void *b)
{
  double x = burn_1h(*(json_t *const *)a), y = burn_1h(*(json_t *const *)b);
  if (isnan(x))
    x = -1;
  if (isnan(y))
    y = -1;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Inline SVG: remaining budget per day over the period (1 = untouched, 0 = spent). */
static void svg_burndown(struct nn_buf *b, json_t *series)
{
  size_t n = json_array_size(series);
  const double w = 160, h = 40, lo = -0.25;
  nn_buf_printf(b,
                "<svg class=\"burndown\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
                "role=\"img\" aria-label=\"error budget over the period\">",
                w, h, w, h);
  double y0 = h - (0 - lo) / (1 - lo) * h;
  nn_buf_printf(b, "<line x1=\"0\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" class=\"zero\"/>", y0, w,
                y0);
  if (n > 0) {
    nn_buf_appends(b, "<polyline class=\"budget\" points=\"");
    for (size_t i = 0; i < n; i++) {
      double v = nget(json_array_get(series, i), "remaining");
      if (isnan(v))
        continue;
      v = v > 1 ? 1 : v < lo ? lo : v;
      double x = n > 1 ? (double)i * w / (double)(n - 1) : w;
      nn_buf_printf(b, "%.1f,%.1f ", x, h - (v - lo) / (1 - lo) * h);
    }
    nn_buf_appends(b, "\"/>");
  }
  nn_buf_appends(b, "</svg>");
}

/* Inline SVG: daily SLI for 30 days against the objective. */
static void svg_sparkline(struct nn_buf *b, json_t *daily, double objective)
{
  size_t n = json_array_size(daily);
  const double w = 120, h = 28;
  double lo = isnan(objective) ? 0.99 : 1 - 2 * (1 - objective);
  for (size_t i = 0; i < n; i++) {
    double v = nget(json_array_get(daily, i), "sli");
    if (!isnan(v) && v < lo)
      lo = v;
  }
  if (lo >= 1)
    lo = 0.99;
  nn_buf_printf(b,
                "<svg class=\"spark\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
                "role=\"img\" aria-label=\"daily SLI, last 30 days\">",
                w, h, w, h);
  if (!isnan(objective)) {
    double y = h - (objective - lo) / (1 - lo) * h;
    nn_buf_printf(b, "<line x1=\"0\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" class=\"objective\"/>", y,
                  w, y);
  }
  nn_buf_appends(b, "<polyline class=\"sli\" points=\"");
  for (size_t i = 0; i < n; i++) {
    double v = nget(json_array_get(daily, i), "sli");
    if (isnan(v))
      continue;
    double x = n > 1 ? (double)i * w / (double)(n - 1) : w;
    nn_buf_printf(b, "%.1f,%.1f ", x, h - (v - lo) / (1 - lo) * h);
  }
  nn_buf_appends(b, "\"/></svg>");
}

static void calendar(struct nn_buf *b, json_t *monthly)
{
  nn_buf_appends(b, "<ol class=\"calendar\">");
  for (size_t i = 0; i < json_array_size(monthly); i++) {
    json_t *m = json_array_get(monthly, i);
    json_t *met = json_object_get(m, "met");
    const char *cls = json_is_true(met) ? "met" : json_is_false(met) ? "missed" : "none";
    const char *word = json_is_true(met) ? "met" : json_is_false(met) ? "missed" : "no data";
    nn_buf_printf(b, "<li class=\"%s\" title=\"", cls);
    esc(b, sget(m, "month"));
    nn_buf_printf(b, ": %s%s\">", word,
                  json_is_false(json_object_get(m, "complete")) ? " so far" : "");
    esc(b, sget(m, "month") + (strlen(sget(m, "month")) >= 5 ? 5 : 0));
    nn_buf_appends(b, "</li>");
  }
  nn_buf_appends(b, "</ol>");
}

static const char css[] =
    ":root{--ok:#1a7f37;--risk:#b35900;--bad:#c62828;--nodata:#6e7781;--ink:#1f2328;"
    "--muted:#59636e;--line:#d1d9e0}"
    "*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,"
    "sans-serif;color:var(--ink);margin:0 auto;max-width:1280px;padding:16px}"
    "h1{font-size:22px;margin:0}h2{font-size:18px;margin:24px 0 8px}h3{font-size:15px;"
    "margin:12px 0 4px;color:var(--muted)}a{color:#0969da}"
    ".updated{color:var(--muted);margin:4px 0 12px}"
    ".verdict{border-radius:8px;padding:16px;margin:8px 0;border:2px solid var(--line)}"
    ".verdict .headline{font-size:26px;font-weight:700;margin:0 0 12px}"
    ".verdict.ok{border-color:var(--ok)}.verdict.at_risk{border-color:var(--risk)}"
    ".verdict.breached{border-color:var(--bad)}"
    ".tiles{display:flex;flex-wrap:wrap;gap:12px}.tile{flex:1 1 140px;padding:10px 12px;"
    "border-radius:6px;background:#f6f8fa}.tile .n{display:block;font-size:28px;font-weight:700}"
    ".tile.ok .n{color:var(--ok)}.tile.at_risk .n{color:var(--risk)}"
    ".tile.breached .n{color:var(--bad)}.tile.no_data .n{color:var(--nodata)}"
    "form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin:12px 0}"
    "form.filters label{display:flex;flex-direction:column;font-size:13px;color:var(--muted)}"
    "table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;"
    "border-bottom:1px solid var(--line);vertical-align:middle}th{font-size:12px;"
    "color:var(--muted);font-weight:600}td.num{font-variant-numeric:tabular-nums}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;"
    "font-weight:600;color:#fff}.badge.ok{background:var(--ok)}.badge.at_risk{"
    "background:var(--risk)}.badge.breached{background:var(--bad)}.badge.no_data{"
    "background:var(--nodata)}"
    "svg .budget{fill:none;stroke:#0969da;stroke-width:1.5}svg .zero{stroke:var(--bad);"
    "stroke-dasharray:3 2}svg .sli{fill:none;stroke:var(--ink);stroke-width:1.2}"
    "svg .objective{stroke:var(--ok);stroke-dasharray:3 2}"
    ".calendar{display:flex;gap:3px;list-style:none;padding:0;margin:0}.calendar li{"
    "width:26px;text-align:center;font-size:11px;border-radius:3px;padding:2px 0;color:#fff}"
    ".calendar .met{background:var(--ok)}.calendar .missed{background:var(--bad)}"
    ".calendar .none{background:var(--nodata)}"
    "details.project{margin:8px 0;border:1px solid var(--line);border-radius:8px;padding:4px 12px}"
    "details.project>summary{font-weight:700;font-size:16px;cursor:pointer;padding:6px 0}"
    ".alerts{color:var(--bad);font-weight:600;overflow-wrap:anywhere;min-width:9em}"
    ".incidents{color:var(--ink);font-weight:400;font-size:.85em}"
    ".incidents ul{margin:.2em 0 0;padding-left:1.1em}.incidents li.ongoing{color:var(--bad)}"
    ".muted{color:var(--muted)}"
    "@media (max-width:700px){.hide-narrow{display:none}td,th{padding:4px}"
    ".verdict .headline{font-size:20px}table{font-size:13px}}"
    "@media print{form.filters,.exports{display:none}details.project{border:none}"
    "body{max-width:none}tr{break-inside:avoid}a{color:inherit;text-decoration:none}}";

/* ---- incidents ---- */

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Appends inc, keeping the last max in out. */
static void keep(struct nn_page_incident *out, size_t max, size_t *n, struct nn_page_incident inc)
{
  if (max > 0) {
    if (*n >= max)
      memmove(out, out + 1, (max - 1) * sizeof(*out));
    out[*n < max ? *n : max - 1] = inc;
  }
  (*n)++;
}

int nn_page_incidents(const struct nn_querier *q, const char *slo_id, int64_t from_ms,
                      int64_t now_ms, struct nn_page_incident *out, size_t max, size_t *n)
{
  static const char *const eq[][2] = {{"__name__", "ALERTS"},
                                      {"alertstate", "firing"},
                                      {"sloth_severity", "page"},
                                      {"sloth_id", NULL}};
  struct nn_matcher ms[4];
  size_t nms = 0;
  char err[128];
  int rc = 0;
  *n = 0;
  for (; nms < 4; nms++) {
    const char *v = eq[nms][1] ? eq[nms][1] : slo_id;
    if ((rc = nn_matcher_init(&ms[nms], NN_MATCH_EQ, eq[nms][0], v, err, sizeof(err))) < 0)
      goto out;
  }
  struct nn_select_hints h = {.mint = from_ms, .maxt = now_ms, .max_samples = MAX_INCIDENT_SAMPLES};
  struct nn_series_set set = {0};
  if ((rc = q->select(q->ctx, ms, nms, &h, &set)) < 0)
    goto out;
  /* The alert's label variants (alertname, tier labels) are one incident stream. */
  size_t total = 0;
  for (size_t s = 0; s < set.n; s++)
    total += set.series[s].n;
  int64_t *ts = malloc((total ? total : 1) * sizeof(*ts));
  if (!ts) {
    rc = NN_ENOMEM;
  } else {
    size_t k = 0;
    for (size_t s = 0; s < set.n; s++)
      for (size_t i = 0; i < set.series[s].n; i++)
        if (!nn_stale_nan(set.series[s].v[i]))
          ts[k++] = set.series[s].t[i];
    qsort(ts, k, sizeof(*ts), cmp_i64);
    struct nn_page_incident cur = {0};
    for (size_t i = 0; i < k; i++) {
      if (i > 0 && ts[i] - cur.end_ms <= NN_PAGE_INCIDENT_GAP_MS) {
        cur.end_ms = ts[i];
        continue;
      }
      if (i > 0)
        keep(out, max, n, cur);
      cur = (struct nn_page_incident){.start_ms = ts[i], .end_ms = ts[i]};
    }
    if (k > 0) {
      cur.ongoing = now_ms - cur.end_ms <= NN_PAGE_INCIDENT_GAP_MS;
      keep(out, max, n, cur);
    }
    free(ts);
  }
  if (set.release)
    set.release(&set);
out:
  for (size_t i = 0; i < nms; i++)
    nn_matcher_fini(&ms[i]);
  return rc;
}

/* Adds "incidents": {"window":"30d","count":N,"list":[{"start","end","ongoing"}]} to each
 * SLO, over its period, from the ALERTS series. */
static void attach_incidents(json_t **v, size_t n, const struct nn_querier *q, double now_s)
{
  int64_t now_ms = (int64_t)(now_s * 1000);
  for (size_t i = 0; i < n; i++) {
    const char *period = sget(v[i], "period");
    int64_t win_ms;
    if (!*period || nn_duration_parse(period, strlen(period), &win_ms) < 0 || win_ms <= 0) {
      period = "30d";
      win_ms = 30LL * 86400 * 1000;
    }
    struct nn_page_incident inc[MAX_INCIDENTS];
    size_t count = 0;
    if (nn_page_incidents(q, sget(v[i], "id"), now_ms - win_ms, now_ms, inc, MAX_INCIDENTS,
                          &count) < 0)
      continue; /* no history: the row shows the current alerts only */
    json_t *list = json_array();
    size_t shown = count < MAX_INCIDENTS ? count : MAX_INCIDENTS;
    for (size_t k = 0; k < shown; k++)
      json_array_append_new(list,
                            json_pack("{s:f,s:f,s:b}", "start", inc[k].start_ms / 1000.0, "end",
                                      inc[k].end_ms / 1000.0, "ongoing", inc[k].ongoing));
    json_object_set_new(
        v[i], "incidents",
        json_pack("{s:s,s:I,s:o}", "window", period, "count", (json_int_t)count, "list", list));
  }
}

/* UTC wall-clock text: "2026-12-01 14:05" (full), "12-01 14:05" or "14:05". */
enum clock_form { CLOCK_FULL, CLOCK_DAY, CLOCK_TIME };
static void clock_text(struct nn_buf *b, double t, enum clock_form f)
{
  time_t tt = (time_t)t;
  struct tm tm;
  char s[32];
  gmtime_r(&tt, &tm);
  if (f == CLOCK_FULL)
    strftime(s, sizeof(s), "%Y-%m-%d %H:%M", &tm);
  else if (f == CLOCK_DAY)
    strftime(s, sizeof(s), "%m-%d %H:%M", &tm);
  else
    strftime(s, sizeof(s), "%H:%M", &tm);
  nn_buf_appends(b, s);
}

/* "3 page incidents in 30d" and the most recent ones, newest first:
 * "2026-12-01 14:05 → 14:35 UTC (30 min)". */
static void render_incidents(struct nn_buf *b, json_t *slo)
{
  json_t *inc = json_object_get(slo, "incidents");
  if (!json_is_object(inc))
    return;
  json_int_t count = json_integer_value(json_object_get(inc, "count"));
  json_t *list = json_object_get(inc, "list");
  nn_buf_printf(b, "<div class=\"incidents\" data-count=\"%lld\">", (long long)count);
  if (count == 0) { /* nothing to say on a quiet row */
    nn_buf_appends(b, "</div>");
    return;
  }
  nn_buf_printf(b, "<span class=\"muted\">%lld page incident%s", (long long)count,
                count == 1 ? "" : "s");
  nn_buf_appends(b, " in ");
  esc(b, sget(inc, "window"));
  nn_buf_appends(b, "</span>");
  if (json_array_size(list) > 0)
    nn_buf_appends(b, "<ul>");
  for (size_t k = json_array_size(list); k-- > 0;) {
    json_t *it = json_array_get(list, k);
    double st = nget(it, "start"), en = nget(it, "end");
    bool ongoing = json_is_true(json_object_get(it, "ongoing"));
    if (isnan(st) || isnan(en))
      continue;
    nn_buf_appends(b, ongoing ? "<li class=\"ongoing\">" : "<li>");
    clock_text(b, st, CLOCK_FULL);
    if (ongoing) {
      nn_buf_appends(b, " UTC, ongoing");
    } else {
      nn_buf_appends(b, " → ");
      clock_text(b, en,
                 (long long)(st / 86400) == (long long)(en / 86400) ? CLOCK_TIME : CLOCK_DAY);
      nn_buf_appends(b, " UTC");
    }
    nn_buf_appends(b, " (");
    double d = en - st;
    if (d < 60)
      nn_buf_appends(b, "<1 min");
    else
      duration(b, d);
    nn_buf_appends(b, ")</li>");
  }
  if (json_array_size(list) > 0)
    nn_buf_appends(b, "</ul>");
  nn_buf_appends(b, "</div>");
}

static void render_row(struct nn_buf *b, json_t *slo)
{
  const char *st = sget(slo, "status");
  double obj = nget(slo, "objective");
  nn_buf_appends(b, "<tr class=\"slo\" data-status=\"");
  esc(b, st);
  nn_buf_appends(b, "\" id=\"slo-");
  esc(b, sget(slo, "id"));
  nn_buf_appends(b, "\"><td><strong>");
  esc(b, sget(slo, "name"));
  nn_buf_appends(b, "</strong>");
  if (*sget(slo, "description")) {
    nn_buf_appends(b, "<br><span class=\"muted\">");
    esc(b, sget(slo, "description"));
    nn_buf_appends(b, "</span>");
  }
  nn_buf_printf(b, "</td><td><span class=\"badge %s\">%s</span></td><td class=\"num\">",
                statuses[status_rank(st)], status_words[status_rank(st)]);
  pct(b, obj, 2);
  nn_buf_appends(b, "</td><td class=\"num sli\">");
  pct(b, nget(slo, "sli"), 3);
  nn_buf_appends(b, "</td><td class=\"num budget\">");
  pct(b, nget(slo, "budget_remaining"), 1);
  nn_buf_appends(b, "<br><span class=\"muted\">");
  minutes(b, nget(slo, "budget_remaining_minutes"));
  nn_buf_appends(b, " of outage left</span></td><td class=\"num burn\">");
  double burn = burn_1h(slo);
  if (isnan(burn))
    nn_buf_appends(b, "—");
  else
    nn_buf_printf(b, "%.1f×", burn);
  nn_buf_appends(b, "</td><td class=\"num\">");
  duration(b, tte(slo));
  nn_buf_appends(b, "</td><td class=\"hide-narrow\">");
  svg_burndown(b, json_object_get(slo, "burndown"));
  nn_buf_appends(b, "</td><td class=\"hide-narrow\">");
  svg_sparkline(b, json_object_get(slo, "daily"), obj);
  nn_buf_appends(b, "</td><td>");
  calendar(b, json_object_get(slo, "monthly"));
  nn_buf_appends(b, "</td><td class=\"alerts\">");
  json_t *alerts = json_object_get(slo, "alerts");
  for (size_t i = 0; i < json_array_size(alerts); i++) {
    json_t *lb = json_object_get(json_array_get(alerts, i), "labels");
    if (i)
      nn_buf_appends(b, "<br>");
    esc(b, sget(lb, "severity"));
    nn_buf_appends(b, ": ");
    esc(b, sget(lb, "alertname"));
  }
  render_incidents(b, slo);
  nn_buf_appends(b, "</td></tr>");
}

static void render_html(struct nn_buf *b, json_t **v, size_t n, const struct nn_page_filter *f,
                        const struct nn_page_opts *o, double now_s, json_t *all)
{
  size_t counts[4] = {0};
  double rem_min = 0, tot_min = 0;
  for (size_t i = 0; i < n; i++) {
    counts[status_rank(sget(v[i], "status"))]++;
    double r = nget(v[i], "budget_remaining_minutes"), t = nget(v[i], "budget_total_minutes");
    if (!isnan(r) && !isnan(t)) {
      /* An overspent SLO has nothing left; it does not eat into the others' budgets. */
      rem_min += r > 0 ? r : 0;
      tot_min += t;
    }
  }
  const char *title = o && o->title ? o->title : "Service level objectives";
  nn_buf_appends(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
  nn_buf_printf(b, "<meta http-equiv=\"refresh\" content=\"%d\"><title>",
                o && o->refresh_seconds > 0 ? o->refresh_seconds : 60);
  esc(b, title);
  nn_buf_printf(b, "</title><style>%s</style></head><body><header><h1>", css);
  esc(b, title);
  time_t t = (time_t)now_s;
  struct tm tm;
  gmtime_r(&t, &tm);
  char when[64];
  strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
  nn_buf_printf(b,
                "</h1><p class=\"updated\">Updated %s · refreshes itself · "
                "<span class=\"exports\"><a href=\"/slo.csv\">CSV</a> · "
                "<a href=\"/slo.md\">Markdown</a> · <a href=\"/api/v1/slos\">JSON</a></span></p>"
                "</header>",
                when);

  /* The ten-second answer. */
  const char *cls = counts[0] ? "breached" : counts[1] ? "at_risk" : n ? "ok" : "no_data";
  nn_buf_printf(b, "<section class=\"verdict %s\" id=\"verdict\"><p class=\"headline\">", cls);
  if (n == 0)
    nn_buf_appends(b, "No SLOs match");
  else if (counts[0])
    nn_buf_printf(b, "%zu of %zu SLOs breached", counts[0], n);
  else if (counts[1])
    nn_buf_printf(b, "%zu of %zu SLOs at risk", counts[1], n);
  else if (counts[3] == n)
    nn_buf_printf(b, "All %zu SLOs meeting target", n);
  else if (counts[2] == n)
    nn_buf_printf(b, "No data yet for the %zu SLOs", n);
  else
    nn_buf_printf(b, "%zu of %zu SLOs meeting target", counts[3], n);
  nn_buf_appends(b, "</p><div class=\"tiles\">");
  static const int order[4] = {3, 1, 0, 2};
  for (int k = 0; k < 4; k++) {
    int i = order[k];
    nn_buf_printf(b, "<div class=\"tile %s\" id=\"count-%s\"><span class=\"n\">%zu</span>%s</div>",
                  statuses[i], statuses[i], counts[i], status_words[i]);
  }
  nn_buf_appends(b, "<div class=\"tile\" id=\"budget-total\"><span class=\"n\">");
  pct(b, tot_min > 0 ? rem_min / tot_min : NAN, 0);
  nn_buf_appends(b, "</span>of the total error budget left</div></div></section>");

  /* Filters: a plain GET form, so it works without JavaScript. */
  nn_buf_appends(b, "<form class=\"filters\" method=\"get\" action=\"/\">");
  static const char *const keys[] = {"team", "project", "service", "status"};
  for (int k = 0; k < 4; k++) {
    const char *cur = !f       ? NULL
                      : k == 0 ? f->team
                      : k == 1 ? f->project
                      : k == 2 ? f->service
                               : f->status;
    nn_buf_printf(b, "<label>%s<select name=\"%s\"><option value=\"\">all</option>", keys[k],
                  keys[k]);
    /* Distinct values over all SLOs, not just the filtered ones. */
    const char *seen[256];
    size_t ns = 0;
    json_t *slos = json_object_get(json_object_get(all, "data"), "slos");
    for (size_t i = 0; i < json_array_size(slos) && ns < 256; i++) {
      const char *val = sget(json_array_get(slos, i), keys[k]);
      if (!*val)
        continue;
      bool dup = false;
      for (size_t j = 0; j < ns && !dup; j++)
        dup = strcmp(seen[j], val) == 0;
      if (dup)
        continue;
      seen[ns++] = val;
      nn_buf_appends(b, "<option value=\"");
      esc(b, val);
      nn_buf_printf(b, "\"%s>", cur && strcmp(cur, val) == 0 ? " selected" : "");
      esc(b, val);
      nn_buf_appends(b, "</option>");
    }
    nn_buf_appends(b, "</select></label>");
  }
  /* Any SLO label, as name:value (the same syntax as the label= URL parameter). */
  nn_buf_appends(b, "<label>label<input type=\"text\" name=\"label\" "
                    "placeholder=\"tier:1\" size=\"14\" value=\"");
  if (f && f->label)
    esc(b, f->label);
  nn_buf_appends(b, "\"></label>");
  nn_buf_appends(b, "<button type=\"submit\">Filter</button> <a href=\"/\">clear</a></form>");

  /* Top burners: highest 1 h burn rate first. */
  json_t **burn = malloc((n ? n : 1) * sizeof(*burn));
  if (burn) {
    memcpy(burn, v, n * sizeof(*burn));
    qsort(burn, n, sizeof(*burn), cmp_burn);
    nn_buf_appends(b, "<section id=\"top-burners\"><h2>Top burners</h2><ol>");
    size_t shown = 0;
    for (size_t i = 0; i < n && shown < 5; i++) {
      double r = burn_1h(burn[i]);
      if (isnan(r) || r <= 1)
        continue;
      nn_buf_appends(b, "<li><a href=\"#slo-");
      esc(b, sget(burn[i], "id"));
      nn_buf_appends(b, "\">");
      esc(b, project_of(burn[i]));
      nn_buf_appends(b, " / ");
      esc(b, sget(burn[i], "service"));
      nn_buf_appends(b, " / ");
      esc(b, sget(burn[i], "name"));
      nn_buf_printf(b, "</a>: burning %.1f× the sustainable rate, ", r);
      double left = nget(burn[i], "budget_remaining");
      if (!isnan(left) && left <= 0) {
        nn_buf_appends(b, "budget exhausted");
      } else {
        nn_buf_appends(b, "budget ");
        pct(b, left, 0);
        nn_buf_appends(b, " left, exhausted in ");
        duration(b, tte(burn[i]));
      }
      nn_buf_appends(b, "</li>");
      shown++;
    }
    if (!shown)
      nn_buf_appends(b,
                     "<li class=\"muted\">Nothing is burning faster than its budget allows.</li>");
    nn_buf_appends(b, "</ol></section>");
    free(burn);
  }

  /* Roll-up: project, then service, then SLO. */
  nn_buf_appends(b, "<section id=\"slos\"><h2>By project</h2>");
  for (size_t i = 0; i < n;) {
    const char *proj = project_of(v[i]);
    size_t j = i, pc[4] = {0};
    while (j < n && strcmp(project_of(v[j]), proj) == 0)
      pc[status_rank(sget(v[j++], "status"))]++;
    nn_buf_appends(b, "<details class=\"project\" open data-project=\"");
    esc(b, proj);
    nn_buf_appends(b, "\"><summary>");
    esc(b, proj);
    nn_buf_printf(b, " <span class=\"muted\">%zu SLOs", j - i);
    for (int k = 0; k < 3; k++)
      if (pc[k])
        nn_buf_printf(b, " · %zu %s", pc[k], status_words[k]);
    nn_buf_appends(b, "</span></summary>");
    for (size_t s = i; s < j;) {
      const char *svc = sget(v[s], "service");
      nn_buf_appends(b, "<h3 class=\"service\">");
      esc(b, svc);
      nn_buf_appends(b, "</h3><table><thead><tr><th>SLO</th><th>Status</th><th>Objective</th>"
                        "<th>SLI</th><th>Budget left</th><th>Burn (1h)</th><th>Exhausted in</th>"
                        "<th class=\"hide-narrow\">Budget, this period</th>"
                        "<th class=\"hide-narrow\">Daily SLI, 30 days</th><th>Last 4 months</th>"
                        "<th>Alerts</th></tr></thead><tbody>");
      while (s < j && strcmp(sget(v[s], "service"), svc) == 0)
        render_row(b, v[s++]);
      nn_buf_appends(b, "</tbody></table>");
    }
    nn_buf_appends(b, "</details>");
    i = j;
  }
  if (n == 0)
    nn_buf_appends(b, "<p class=\"muted\">No SLOs to show. Add spec files under slo.spec_files "
                      "in the aggregator's config (Sloth prometheus/v1 or nines/v1).</p>");
  nn_buf_appends(b, "</section></body></html>\n");
}

/* CSV field: quoted, quotes doubled; a leading = + - @ is neutralised so spreadsheets do
 * not run it as a formula. */
static void csv_field(struct nn_buf *b, const char *s)
{
  nn_buf_appendc(b, '"');
  if (*s == '=' || *s == '+' || *s == '-' || *s == '@')
    nn_buf_appendc(b, '\'');
  for (; *s; s++) {
    if (*s == '"')
      nn_buf_appendc(b, '"');
    nn_buf_appendc(b, *s);
  }
  nn_buf_appendc(b, '"');
}

static void csv_num(struct nn_buf *b, double v)
{
  if (!isnan(v) && !isinf(v))
    nn_buf_printf(b, "%.6g", v);
  else if (isinf(v))
    nn_buf_appends(b, v > 0 ? "+Inf" : "-Inf");
}

static void md_cell(struct nn_buf *b, const char *s)
{
  for (; *s; s++) {
    if (*s == '|' || *s == '\\' || *s == '*' || *s == '_' || *s == '`' || *s == '<' || *s == '[' ||
        *s == ']')
      nn_buf_appendc(b, '\\');
    nn_buf_appendc(b, *s == '\n' || *s == '\r' ? ' ' : *s);
  }
}

static void render_csv(struct nn_buf *b, json_t **v, size_t n)
{
  nn_buf_appends(b, "project,service,slo,status,objective,sli,budget_remaining,"
                    "budget_remaining_minutes,burn_rate_1h,time_to_exhaustion_seconds,"
                    "page_incidents\r\n");
  for (size_t i = 0; i < n; i++) {
    csv_field(b, project_of(v[i]));
    nn_buf_appendc(b, ',');
    csv_field(b, sget(v[i], "service"));
    nn_buf_appendc(b, ',');
    csv_field(b, sget(v[i], "name"));
    nn_buf_appendc(b, ',');
    csv_field(b, sget(v[i], "status"));
    const char *keys[] = {"objective", "sli", "budget_remaining", "budget_remaining_minutes"};
    for (int k = 0; k < 4; k++) {
      nn_buf_appendc(b, ',');
      csv_num(b, nget(v[i], keys[k]));
    }
    nn_buf_appendc(b, ',');
    csv_num(b, burn_1h(v[i]));
    nn_buf_appendc(b, ',');
    csv_num(b, tte(v[i]));
    nn_buf_appendc(b, ',');
    csv_num(b, nget(json_object_get(v[i], "incidents"), "count"));
    nn_buf_appends(b, "\r\n");
  }
}

static void render_md(struct nn_buf *b, json_t **v, size_t n, double now_s)
{
  size_t counts[4] = {0};
  for (size_t i = 0; i < n; i++)
    counts[status_rank(sget(v[i], "status"))]++;
  time_t t = (time_t)now_s;
  struct tm tm;
  gmtime_r(&t, &tm);
  char when[32];
  strftime(when, sizeof(when), "%Y-%m-%d", &tm);
  nn_buf_printf(
      b,
      "## SLO report, %s\n\n**%zu of %zu SLOs meeting target** · %zu at risk · "
      "%zu breached · %zu without data\n\n"
      "| Project | Service | SLO | Status | Objective | SLI | Budget left | Burn (1h) "
      "| Exhausted in | Page incidents |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|\n",
      when, counts[3], n, counts[1], counts[0], counts[2]);
  for (size_t i = 0; i < n; i++) {
    nn_buf_appends(b, "| ");
    md_cell(b, project_of(v[i]));
    nn_buf_appends(b, " | ");
    md_cell(b, sget(v[i], "service"));
    nn_buf_appends(b, " | ");
    md_cell(b, sget(v[i], "name"));
    nn_buf_printf(b, " | %s | ", status_words[status_rank(sget(v[i], "status"))]);
    pct(b, nget(v[i], "objective"), 2);
    nn_buf_appends(b, " | ");
    pct(b, nget(v[i], "sli"), 3);
    nn_buf_appends(b, " | ");
    pct(b, nget(v[i], "budget_remaining"), 1);
    nn_buf_appends(b, " | ");
    double burn = burn_1h(v[i]);
    if (isnan(burn))
      nn_buf_appends(b, "—");
    else
      nn_buf_printf(b, "%.1f×", burn);
    nn_buf_appends(b, " | ");
    duration(b, tte(v[i]));
    nn_buf_appends(b, " | ");
    double inc = nget(json_object_get(v[i], "incidents"), "count");
    if (isnan(inc))
      nn_buf_appends(b, "—");
    else
      nn_buf_printf(b, "%.0f", inc);
    nn_buf_appends(b, " |\n");
  }
}

int nn_page_render(const char *json, size_t len, enum nn_page_format fmt,
                   const struct nn_page_filter *f, const struct nn_page_opts *o, double now_s,
                   struct nn_buf *out)
{
  json_error_t jerr;
  json_t *root = json_loadb(json, len, 0, &jerr);
  json_t *slos = json_object_get(json_object_get(root, "data"), "slos");
  if (!root || !json_is_array(slos)) {
    json_decref(root);
    return NN_EINVAL;
  }
  size_t n = 0, total = json_array_size(slos);
  json_t **v = malloc((total ? total : 1) * sizeof(*v));
  if (!v) {
    json_decref(root);
    return NN_ENOMEM;
  }
  for (size_t i = 0; i < total; i++) {
    json_t *s = json_array_get(slos, i);
    if (json_is_object(s) && matches(s, f))
      v[n++] = s;
  }
  if (o && o->querier.select)
    attach_incidents(v, n, &o->querier, now_s);
  rank_projects(v, n);
  qsort(v, n, sizeof(*v), cmp_slo);
  if (fmt == NN_PAGE_CSV)
    render_csv(out, v, n);
  else if (fmt == NN_PAGE_MARKDOWN)
    render_md(out, v, n, now_s);
  else
    render_html(out, v, n, f, o, now_s, root);
  free(v);
  json_decref(root);
  /* Appends fail only at the buffer's cap; the last one leaves len at the cap. */
  return out->len >= out->max ? NN_ETOOBIG : 0;
}

static const char empty_slos[] = "{\"status\":\"success\",\"data\":{\"slos\":[]}}";

static void serve(struct nn_http_req *req, struct nn_page *p, enum nn_page_format fmt)
{
  struct nn_urlenc_param *params = NULL;
  size_t np = 0;
  nn_http_req_params(req, &params, &np);
  struct nn_page_filter f = {
      .team = nn_urlenc_get(params, np, "team"),
      .project = nn_urlenc_get(params, np, "project"),
      .service = nn_urlenc_get(params, np, "service"),
      .status = nn_urlenc_get(params, np, "status"),
      .label = nn_urlenc_get(params, np, "label"),
  };
  struct nn_buf json, out;
  nn_buf_init(&json, MAX_PAGE);
  nn_buf_init(&out, MAX_PAGE);
  int rc = p->o.slos ? p->o.slos(p->o.ud, &json) : nn_buf_appends(&json, empty_slos);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (rc == 0)
    rc = nn_page_render(json.data ? json.data : "", json.len, fmt, &f, &p->o, (double)ts.tv_sec,
                        &out);
  nn_buf_fini(&json);
  if (rc < 0) {
    nn_buf_fini(&out);
    nn_http_respond_error(req, 500, "cannot render the SLO page");
    return;
  }
  static const char *const types[] = {"text/html; charset=utf-8", "text/csv; charset=utf-8",
                                      "text/markdown; charset=utf-8"};
  if (fmt == NN_PAGE_CSV)
    nn_http_add_header(req, "Content-Disposition", "attachment; filename=\"slo.csv\"");
  nn_http_add_header(
      req, "Content-Security-Policy",
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'");
  nn_http_respond_buf(req, 200, types[fmt], &out);
}

static void on_page(struct nn_http_req *req, void *ud)
{
  serve(req, ud, NN_PAGE_HTML);
}

static void on_csv(struct nn_http_req *req, void *ud)
{
  serve(req, ud, NN_PAGE_CSV);
}

static void on_md(struct nn_http_req *req, void *ud)
{
  serve(req, ud, NN_PAGE_MARKDOWN);
}

struct nn_page *nn_page_create(const struct nn_page_opts *o, struct nn_http_server *srv)
{
  struct nn_page *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->o = *o;
  if (nn_http_server_route(srv, "/", 0, on_page, p) < 0 ||
      nn_http_server_route(srv, "/slo.csv", 0, on_csv, p) < 0 ||
      nn_http_server_route(srv, "/slo.md", 0, on_md, p) < 0) {
    free(p);
    return NULL;
  }
  return p;
}

void nn_page_destroy(struct nn_page *p)
{
  free(p);
}
