/* SPDX-License-Identifier: Apache-2.0 */
/* JSON for the web layer: GET /api/v1/slos (every SLO with its budget, burn rates, status,
 * alerts, daily SLI and burn-down series and calendar-month compliance) and the SLO
 * alerts in /api/v1/alerts's shape. Everything is read from the ledgers, so a request
 * costs O(days) per SLO and runs no query. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aggregator/slo/internal.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/units.h"

static int64_t sdiv(int64_t a, int64_t b)
{
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

size_t nn__slo_format_time(int64_t ms, char *buf, size_t len)
{
  time_t s = (time_t)sdiv(ms, 1000);
  int frac = (int)(ms - (int64_t)s * 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  if (frac && n + 6 < len) {
    char f[8];
    snprintf(f, sizeof(f), ".%03d", frac);
    size_t fl = strlen(f);
    while (fl > 2 && f[fl - 1] == '0')
      f[--fl] = 0;
    memcpy(buf + n, f, fl + 1);
    n += fl;
  }
  if (n + 2 <= len) {
    buf[n++] = 'Z';
    buf[n] = 0;
  }
  return n;
}

/* A JSON number, or null for NaN and infinities (JSON has neither). */
static int num(struct nn_buf *b, double v)
{
  if (!isfinite(v))
    return nn_buf_appends(b, "null");
  char t[40];
  nn_promql_format_float(v, t, sizeof(t));
  if (strchr(t, 'e') && !strchr(t, '.')) {
    /* "1e-07" is valid JSON already */
  }
  return nn_buf_appends(b, t);
}

static int str(struct nn_buf *b, const char *s)
{
  return nn_buf_append_json_str(b, s, strlen(s));
}

static int kv_obj(struct nn_buf *b, const struct nn_label *v, size_t n)
{
  int rc = nn_buf_appendc(b, '{');
  for (size_t i = 0; i < n && !rc; i++) {
    rc = i ? nn_buf_appendc(b, ',') : 0;
    rc = rc ? rc : str(b, v[i].name);
    rc = rc ? rc : nn_buf_appendc(b, ':');
    rc = rc ? rc : str(b, v[i].value);
  }
  return rc ? rc : nn_buf_appendc(b, '}');
}

static int date_of(int64_t min, const struct nn_slo_tz *tz, char *buf, size_t len, bool month_only)
{
  time_t s = (time_t)(nn__slo_tz_local_min(tz, min) * 60);
  struct tm tm;
  gmtime_r(&s, &tm);
  return (int)strftime(buf, len, month_only ? "%Y-%m" : "%Y-%m-%d", &tm);
}

static int alerts_of(struct nn_buf *b, const struct nn_slo_rt *r, bool full)
{
  static const char *const kinds[] = {"page", "ticket", "no_data", "budget"};
  int rc = 0;
  bool first = true;
  for (int k = 0; k < NN_SLO_NALERTS && !rc; k++) {
    const struct nn_slo_alert_state *a = &r->alerts[k];
    if (a->state == NN_SLO_INACTIVE)
      continue;
    struct nn_slo_lset l;
    char lvl[8], t[48];
    nn__slo_alert_labels(r->spec, k, a->budget_level, lvl, sizeof(lvl), &l);
    l.n = nn_labels_canonicalize(l.v, l.n);
    const char *state = a->state == NN_SLO_FIRING ? "firing" : "pending";
    nn__slo_format_time(a->active_at, t, sizeof(t));
    rc = first ? 0 : nn_buf_appendc(b, ',');
    first = false;
    rc = rc ? rc : nn_buf_appends(b, "{\"labels\":");
    rc = rc ? rc : kv_obj(b, l.v, l.n);
    if (full) {
      struct nn_buf ab;
      struct nn_label ann[16];
      size_t nann = 0;
      nn_buf_init(&ab, 1 << 16);
      rc = rc ? rc : nn__slo_alert_annotations(r->spec, k, &l, &r->last, &ab, ann, &nann);
      rc = rc ? rc : nn_buf_appends(b, ",\"annotations\":");
      rc = rc ? rc : kv_obj(b, ann, nann);
      nn_buf_fini(&ab);
      char v[40];
      nn_promql_format_float(r->last.ratio[NN_SLO_W_1H], v, sizeof(v));
      rc = rc ? rc : nn_buf_printf(b, ",\"state\":\"%s\",\"activeAt\":\"%s\",\"value\":", state, t);
      rc = rc ? rc : str(b, v);
    } else {
      rc = rc ? rc
              : nn_buf_printf(b, ",\"kind\":\"%s\",\"state\":\"%s\",\"active_at\":\"%s\"", kinds[k],
                              state, t);
    }
    rc = rc ? rc : nn_buf_appendc(b, '}');
  }
  return rc;
}

static int one_slo(struct nn_buf *b, const struct nn_slo_engine *e, const struct nn_slo_rt *r)
{
  const struct nn_slo_spec *s = r->spec;
  const struct nn_slo_values *v = &r->last;
  const struct nn_slo_ledger *l = &r->ledger;
  double eb = 1.0 - s->objective;
  char pbuf[40];
  int rc = nn_buf_appends(b, "{\"id\":");
  rc = rc ? rc : str(b, s->id);
  rc = rc ? rc : nn_buf_appends(b, ",\"service\":");
  rc = rc ? rc : str(b, s->service);
  rc = rc ? rc : nn_buf_appends(b, ",\"name\":");
  rc = rc ? rc : str(b, s->name);
  rc = rc ? rc : nn_buf_appends(b, ",\"description\":");
  rc = rc ? rc : str(b, s->description ? s->description : "");
  rc = rc ? rc : nn_buf_appends(b, ",\"project\":");
  rc = rc ? rc : str(b, s->project ? s->project : "");
  rc = rc ? rc : nn_buf_appends(b, ",\"team\":");
  rc = rc ? rc : str(b, s->team ? s->team : "");
  rc = rc ? rc : nn_buf_appends(b, ",\"spec\":");
  rc = rc ? rc : str(b, s->format);
  rc = rc ? rc : nn_buf_appends(b, ",\"labels\":{");
  for (size_t i = 0; i < s->labels.n && !rc; i++) {
    rc = i ? nn_buf_appendc(b, ',') : 0;
    rc = rc ? rc : str(b, s->labels.k[i]);
    rc = rc ? rc : nn_buf_appendc(b, ':');
    rc = rc ? rc : str(b, s->labels.v[i]);
  }
  const char *pk = s->period_kind == NN_SLO_MONTH     ? "month"
                   : s->period_kind == NN_SLO_QUARTER ? "quarter"
                                                      : "rolling";
  nn_duration_format(s->period_min * 60000, pbuf, sizeof(pbuf));
  rc = rc ? rc
          : nn_buf_printf(b, "},\"period\":\"%s\",\"period_kind\":\"%s\",\"objective\":", pbuf, pk);
  rc = rc ? rc : num(b, s->objective);
  bool have = r->have_last;
  double ratio = have ? v->ratio[NN_SLO_W_PERIOD] : NAN;
  rc = rc ? rc : nn_buf_appends(b, ",\"sli\":");
  rc = rc ? rc : num(b, 1.0 - ratio);
  rc = rc ? rc : nn_buf_appends(b, ",\"error_ratio\":");
  rc = rc ? rc : num(b, ratio);
  rc = rc ? rc : nn_buf_appends(b, ",\"events\":{\"bad\":");
  rc = rc ? rc : num(b, have ? v->bad[NN_SLO_W_PERIOD] : NAN);
  rc = rc ? rc : nn_buf_appends(b, ",\"total\":");
  rc = rc ? rc : num(b, have ? v->total[NN_SLO_W_PERIOD] : NAN);
  double remaining = have ? v->remaining : NAN;
  double period_budget_min = eb * (double)s->period_min;
  rc = rc ? rc : nn_buf_appends(b, "},\"budget_remaining\":");
  rc = rc ? rc : num(b, remaining);
  rc = rc ? rc : nn_buf_appends(b, ",\"budget_total_minutes\":");
  rc = rc ? rc : num(b, period_budget_min);
  rc = rc ? rc : nn_buf_appends(b, ",\"budget_remaining_minutes\":");
  rc = rc ? rc : num(b, remaining * period_budget_min);
  rc = rc ? rc : nn_buf_appends(b, ",\"burn_rates\":{");
  for (int w = 0; w < NN_SLO_NWINDOWS && !rc; w++) {
    rc = nn_buf_printf(b, "%s\"%s\":", w ? "," : "",
                       w < NN_SLO_W_PERIOD ? nn__slo_window_name[w] : "period");
    rc = rc ? rc : num(b, have ? v->ratio[w] / eb : NAN);
  }
  rc = rc ? rc : nn_buf_appends(b, "},\"time_to_exhaustion_seconds\":");
  rc = rc ? rc : num(b, have ? v->tte : NAN);
  rc = rc ? rc
          : nn_buf_printf(b, ",\"exhaustion\":\"%s\"",
                          !have || isnan(v->tte) ? "unknown"
                          : isinf(v->tte)        ? "never"
                          : v->tte <= 0          ? "exhausted"
                                                 : "projected");
  rc = rc ? rc : nn_buf_printf(b, ",\"status\":\"%s\",\"alerts\":[", nn__slo_status(r));
  rc = rc ? rc : alerts_of(b, r, false);
  rc = rc ? rc : nn_buf_appends(b, "]");

  /* Daily SLI for the last 30 local days, and the burn-down over the current period. */
  int64_t end = have ? sdiv(v->ts - 1, 60000) : l->head_min;
  const struct nn_slo_tz *tz = &l->tz;
  rc = rc ? rc : nn_buf_appends(b, ",\"daily\":[");
  if (end != INT64_MIN) {
    /* Local days (23 or 25 hours long on daylight-saving changes). */
    int64_t today = sdiv(nn__slo_tz_local_min(tz, end), 1440) * 1440;
    for (int d = 29; d >= 0 && !rc; d--) {
      int64_t ds = nn__slo_tz_utc_min(tz, today - (int64_t)d * 1440);
      int64_t de = nn__slo_tz_utc_min(tz, today - (int64_t)(d - 1) * 1440) - 1;
      if (de > end)
        de = end;
      double bb, tt;
      nn__slo_ledger_window(l, de, de - ds + 1, &bb, &tt);
      char date[16];
      date_of(ds, tz, date, sizeof(date), false);
      rc = nn_buf_printf(b, "%s{\"date\":\"%s\",\"sli\":", d == 29 ? "" : ",", date);
      rc = rc ? rc : num(b, tt > 0 ? 1.0 - bb / tt : NAN);
      rc = rc ? rc : nn_buf_appends(b, ",\"bad\":");
      rc = rc ? rc : num(b, bb);
      rc = rc ? rc : nn_buf_appends(b, ",\"total\":");
      rc = rc ? rc : num(b, tt);
      rc = rc ? rc : nn_buf_appendc(b, '}');
    }
  }
  rc = rc ? rc : nn_buf_appends(b, "],\"burndown\":[");
  if (end != INT64_MIN && have) {
    int64_t plen =
        s->period_kind == NN_SLO_ROLLING
            ? s->period_min
            : end - nn__slo_calendar_start(end, tz, s->period_kind == NN_SLO_QUARTER) + 1;
    int64_t p0 = end - plen + 1;
    double b0, t0;
    nn__slo_ledger_cum(l, p0 - 1, &b0, &t0);
    double budget_events = eb * v->total[NN_SLO_W_PERIOD];
    bool first = true;
    for (int64_t ld = sdiv(nn__slo_tz_local_min(tz, p0), 1440) * 1440;; ld += 1440) {
      int64_t ds = nn__slo_tz_utc_min(tz, ld), de = nn__slo_tz_utc_min(tz, ld + 1440) - 1;
      if (ds > end || rc)
        break;
      if (de > end)
        de = end;
      if (de < p0)
        continue;
      double bb, tt;
      nn__slo_ledger_cum(l, de, &bb, &tt);
      char date[16];
      date_of(ds, tz, date, sizeof(date), false);
      rc = nn_buf_printf(b, "%s{\"date\":\"%s\",\"remaining\":", first ? "" : ",", date);
      first = false;
      rc = rc ? rc : num(b, budget_events > 0 ? 1.0 - (bb - b0) / budget_events : NAN);
      rc = rc ? rc : nn_buf_appendc(b, '}');
    }
  }
  rc = rc ? rc : nn_buf_appends(b, "],\"monthly\":[");
  if (end != INT64_MIN) {
    int32_t cur = nn__slo_month_of(end, tz);
    for (int k = 3; k >= 0 && !rc; k--) {
      int32_t ym = cur - k;
      double bb = 0, tt = 0;
      for (int i = 0; i < NN_SLO_MONTHS; i++)
        if (l->months[i].ym == ym) {
          bb = l->months[i].bad;
          tt = l->months[i].total;
        }
      double sli = tt > 0 ? 1.0 - bb / tt : NAN;
      rc = nn_buf_printf(b, "%s{\"month\":\"%04d-%02d\",\"sli\":", k == 3 ? "" : ",", ym / 12,
                         ym % 12 + 1);
      rc = rc ? rc : num(b, sli);
      rc = rc ? rc
              : nn_buf_printf(b, ",\"met\":%s,\"complete\":%s}",
                              isnan(sli)            ? "null"
                              : sli >= s->objective ? "true"
                                                    : "false",
                              k ? "true" : "false");
    }
  }
  (void)e;
  return rc ? rc : nn_buf_appends(b, "]}");
}

int nn_slo_json(void *ud, struct nn_buf *out)
{
  const struct nn_slo_engine *e = ud;
  size_t counts[4] = {0};
  static const char *const names[4] = {"ok", "at_risk", "breached", "no_data"};
  int rc = nn_buf_appends(out, "{\"status\":\"success\",\"data\":{\"slos\":[");
  for (size_t i = 0; i < e->nrt && !rc; i++) {
    const char *st = nn__slo_status(&e->rt[i]);
    for (int k = 0; k < 4; k++)
      counts[k] += !strcmp(st, names[k]);
    rc = i ? nn_buf_appendc(out, ',') : 0;
    rc = rc ? rc : one_slo(out, e, &e->rt[i]);
  }
  rc = rc ? rc : nn_buf_printf(out, "],\"summary\":{\"total\":%zu", e->nrt);
  for (int k = 0; k < 4 && !rc; k++)
    rc = nn_buf_printf(out, ",\"%s\":%zu", names[k], counts[k]);
  return rc ? rc : nn_buf_appends(out, "}}}");
}

int nn_slo_json_alerts(void *ud, struct nn_buf *out)
{
  const struct nn_slo_engine *e = ud;
  int rc = nn_buf_appendc(out, '[');
  bool first = true;
  for (size_t i = 0; i < e->nrt && !rc; i++) {
    size_t before = out->len;
    if (!first)
      rc = nn_buf_appendc(out, ',');
    size_t mark = out->len;
    rc = rc ? rc : alerts_of(out, &e->rt[i], true);
    if (!rc && out->len == mark) {
      out->len = before; /* no alerts: drop the comma */
      out->data[out->len] = 0;
    } else {
      first = false;
    }
  }
  return rc ? rc : nn_buf_appendc(out, ']');
}
