/* SPDX-License-Identifier: Apache-2.0 */
/* The "data" values of /api/v1/rules and /api/v1/alerts in the shape of Prometheus's
 * web/api/v1 (RuleDiscovery, AlertingRule, RecordingRule, AlertDiscovery), so Grafana's
 * alert list and any Prometheus client read them unchanged. */
#include <stdio.h>
#include <string.h>

#include "aggregator/rules/internal.h"
#include "common/buf.h"
#include "common/error.h"

static const char *state_name(enum nn__alert_state s)
{
  switch (s) {
  case NN__ALERT_FIRING: return "firing";
  case NN__ALERT_PENDING: return "pending";
  default: return "inactive";
  }
}

static int put_str(struct nn_buf *b, const char *s)
{
  return nn_buf_append_json_str(b, s, strlen(s));
}

static int put_lset(struct nn_buf *b, const struct nn__lset *l)
{
  int rc = nn_buf_appendc(b, '{');
  for (size_t i = 0; i < l->n && rc == 0; i++) {
    if (i && (rc = nn_buf_appendc(b, ',')) < 0)
      break;
    if ((rc = put_str(b, l->v[i].name)) == 0 && (rc = nn_buf_appendc(b, ':')) == 0)
      rc = put_str(b, l->v[i].value);
  }
  return rc < 0 ? rc : nn_buf_appendc(b, '}');
}

/* time.Time in JSON; the zero time when ms is 0 (never evaluated). */
static int put_time(struct nn_buf *b, int64_t ms)
{
  char t[64];
  if (ms == 0)
    return nn_buf_appends(b, "\"0001-01-01T00:00:00Z\"");
  nn__fmt_rfc3339(ms, t, sizeof(t));
  return nn_buf_printf(b, "\"%s\"", t);
}

static int put_num(struct nn_buf *b, double v)
{
  char t[64];
  nn_promql_format_float_f(v, t, sizeof(t));
  return nn_buf_appends(b, t);
}

static int put_alert(struct nn_buf *b, const struct nn__alert *a)
{
  char v[48];
  int rc;
  nn__fmt_go_e(a->value, v, sizeof(v));
  if ((rc = nn_buf_appends(b, "{\"labels\":")) < 0 || (rc = put_lset(b, &a->labels)) < 0 ||
      (rc = nn_buf_appends(b, ",\"annotations\":")) < 0 ||
      (rc = put_lset(b, &a->annotations)) < 0 ||
      (rc = nn_buf_printf(b, ",\"state\":\"%s\",\"activeAt\":", state_name(a->state))) < 0 ||
      (rc = put_time(b, a->active_at)) < 0)
    return rc;
  if (a->keep_firing_since && ((rc = nn_buf_appends(b, ",\"keepFiringSince\":")) < 0 ||
                               (rc = put_time(b, a->keep_firing_since)) < 0))
    return rc;
  return nn_buf_printf(b, ",\"value\":\"%s\"}", v);
}

/* Alerts the API shows: not resolved (Prometheus's ActiveAlerts). */
static int put_active_alerts(struct nn_buf *b, const struct nn__rule *r, bool *first)
{
  int rc = 0;
  for (size_t i = 0; i < r->nalerts && rc == 0; i++) {
    const struct nn__alert *a = r->alerts[i];
    if (a->resolved_at)
      continue;
    if (!*first && (rc = nn_buf_appendc(b, ',')) < 0)
      break;
    *first = false;
    rc = put_alert(b, a);
  }
  return rc;
}

static int put_common_tail(struct nn_buf *b, const struct nn__rule *r, const char *type)
{
  int rc;
  static const char *const health[] = {"unknown", "ok", "err"};
  if ((rc = nn_buf_printf(b, ",\"health\":\"%s\"", health[r->health])) < 0)
    return rc;
  if (r->last_error && r->last_error[0] &&
      ((rc = nn_buf_appends(b, ",\"lastError\":")) < 0 || (rc = put_str(b, r->last_error)) < 0))
    return rc;
  if ((rc = nn_buf_appends(b, ",\"evaluationTime\":")) < 0 ||
      (rc = put_num(b, r->eval_seconds)) < 0 ||
      (rc = nn_buf_appends(b, ",\"lastEvaluation\":")) < 0 ||
      (rc = put_time(b, r->last_eval_ms)) < 0)
    return rc;
  return nn_buf_printf(b, ",\"type\":\"%s\"}", type);
}

static int put_rule(struct nn_buf *b, const struct nn__rule *r)
{
  int rc;
  if (r->type == NN__RULE_RECORDING) {
    if ((rc = nn_buf_appends(b, "{\"name\":")) < 0 || (rc = put_str(b, r->name)) < 0 ||
        (rc = nn_buf_appends(b, ",\"query\":")) < 0 || (rc = put_str(b, r->query)) < 0)
      return rc;
    if (r->labels.n &&
        ((rc = nn_buf_appends(b, ",\"labels\":")) < 0 || (rc = put_lset(b, &r->labels)) < 0))
      return rc;
    return put_common_tail(b, r, "recording");
  }
  enum nn__alert_state st = NN__ALERT_INACTIVE;
  for (size_t i = 0; i < r->nalerts; i++)
    if (r->alerts[i]->state > st)
      st = r->alerts[i]->state;
  bool first = true;
  if ((rc = nn_buf_printf(b, "{\"state\":\"%s\",\"name\":", state_name(st))) < 0 ||
      (rc = put_str(b, r->name)) < 0 || (rc = nn_buf_appends(b, ",\"query\":")) < 0 ||
      (rc = put_str(b, r->query)) < 0 || (rc = nn_buf_appends(b, ",\"duration\":")) < 0 ||
      (rc = put_num(b, (double)r->for_ms / 1000)) < 0 ||
      (rc = nn_buf_appends(b, ",\"keepFiringFor\":")) < 0 ||
      (rc = put_num(b, (double)r->keep_firing_for_ms / 1000)) < 0 ||
      (rc = nn_buf_appends(b, ",\"labels\":")) < 0 || (rc = put_lset(b, &r->labels)) < 0 ||
      (rc = nn_buf_appends(b, ",\"annotations\":")) < 0 ||
      (rc = put_lset(b, &r->annotations)) < 0 || (rc = nn_buf_appends(b, ",\"alerts\":[")) < 0 ||
      (rc = put_active_alerts(b, r, &first)) < 0 || (rc = nn_buf_appendc(b, ']')) < 0)
    return rc;
  return put_common_tail(b, r, "alerting");
}

struct walk {
  struct nn_buf *b;
  int rc;
  bool first;
};

static void put_group(struct nn__group *g, void *ud)
{
  struct walk *w = ud;
  struct nn_buf *b = w->b;
  int rc = w->rc;
  if (rc < 0)
    return;
  if (!w->first)
    rc = nn_buf_appendc(b, ',');
  w->first = false;
  if (rc == 0 && (rc = nn_buf_appends(b, "{\"name\":")) == 0 && (rc = put_str(b, g->name)) == 0 &&
      (rc = nn_buf_appends(b, ",\"file\":")) == 0 && (rc = put_str(b, g->file)) == 0)
    rc = nn_buf_appends(b, ",\"rules\":[");
  for (size_t i = 0; i < g->nrules && rc == 0; i++) {
    if (i)
      rc = nn_buf_appendc(b, ',');
    if (rc == 0)
      rc = put_rule(b, g->rules[i]);
  }
  if (rc == 0 && (rc = nn_buf_appends(b, "],\"interval\":")) == 0 &&
      (rc = put_num(b, (double)g->interval_ms / 1000)) == 0 &&
      (rc = nn_buf_printf(b, ",\"limit\":%lld,\"evaluationTime\":", (long long)g->limit)) == 0 &&
      (rc = put_num(b, g->eval_seconds)) == 0 &&
      (rc = nn_buf_appends(b, ",\"lastEvaluation\":")) == 0 &&
      (rc = put_time(b, g->last_eval_ms)) == 0)
    rc = nn_buf_appendc(b, '}');
  w->rc = rc;
}

int nn_rules_json_rules(void *ud, struct nn_buf *out)
{
  struct nn_rules *r = ud;
  struct walk w = {.b = out, .first = true};
  if ((w.rc = nn_buf_appends(out, "{\"groups\":[")) < 0)
    return w.rc;
  nn__rules_each_group(r, put_group, &w);
  return w.rc < 0 ? w.rc : nn_buf_appends(out, "]}");
}

static void put_group_alerts(struct nn__group *g, void *ud)
{
  struct walk *w = ud;
  for (size_t i = 0; i < g->nrules && w->rc == 0; i++)
    if (g->rules[i]->type == NN__RULE_ALERTING)
      w->rc = put_active_alerts(w->b, g->rules[i], &w->first);
}

int nn_rules_json_alerts(void *ud, struct nn_buf *out)
{
  struct nn_rules *r = ud;
  struct walk w = {.b = out, .first = true};
  if ((w.rc = nn_buf_appends(out, "{\"alerts\":[")) < 0)
    return w.rc;
  nn__rules_each_group(r, put_group_alerts, &w);
  return w.rc < 0 ? w.rc : nn_buf_appends(out, "]}");
}
