/* SPDX-License-Identifier: Apache-2.0 */
/* Exports SLOs as a Prometheus rule file in Sloth's layout (SLI recordings per window, meta
 * recordings, page and ticket MWMBR alerts), so an external ruler (Prometheus, Mimir,
 * Thanos) can evaluate them. Every string is written as a JSON string, which is a valid
 * YAML double-quoted scalar, so no spec text can break the file's structure. */
#include <stdio.h>
#include <string.h>

#include "aggregator/slo/internal.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/units.h"

static int q(struct nn_buf *b, const char *s)
{
  return nn_buf_append_json_str(b, s, strlen(s));
}

/* {sloth_id="..", sloth_service="..", sloth_slo=".."} selector of the SLO's series. */
static int selector(struct nn_buf *b, const struct nn_slo_spec *s)
{
  struct nn_label l[3] = {
      {"sloth_id", s->id}, {"sloth_service", s->service}, {"sloth_slo", s->name}};
  return nn_labels_format(l, 3, b);
}

static int labels_block(struct nn_buf *b, const struct nn_slo_spec *s, const char *window, bool ids)
{
  int rc = nn_buf_appends(b, "    labels:\n");
  for (size_t i = 0; i < s->labels.n && !rc && ids; i++) {
    rc = nn_buf_printf(b, "      %s: ", s->labels.k[i]);
    rc = rc ? rc : q(b, s->labels.v[i]);
    rc = rc ? rc : nn_buf_appendc(b, '\n');
  }
  if (ids && !rc) {
    rc = nn_buf_appends(b, "      sloth_id: ");
    rc = rc ? rc : q(b, s->id);
    rc = rc ? rc : nn_buf_appends(b, "\n      sloth_service: ");
    rc = rc ? rc : q(b, s->service);
    rc = rc ? rc : nn_buf_appends(b, "\n      sloth_slo: ");
    rc = rc ? rc : q(b, s->name);
    rc = rc ? rc : nn_buf_appendc(b, '\n');
  }
  if (window && !rc)
    rc = nn_buf_printf(b, "      sloth_window: \"%s\"\n", window);
  return rc;
}

/* "- name: sloth-slo-<kind>-<id>", Sloth's interval when the spec sets one, "rules:". */
static int group(struct nn_buf *b, const char *kind, const struct nn_slo_spec *s, int64_t iv_ms)
{
  char d[40];
  int rc = nn_buf_printf(b, "- name: \"sloth-slo-%s-%s\"\n", kind, s->id);
  if (iv_ms > 0 && !rc) {
    nn_duration_format(iv_ms, d, sizeof(d));
    rc = nn_buf_printf(b, "  interval: %s\n", d);
  }
  return rc ? rc : nn_buf_appends(b, "  rules:\n");
}

static int record(struct nn_buf *b, const char *name, const char *expr)
{
  int rc = nn_buf_printf(b, "  - record: %s\n    expr: ", name);
  rc = rc ? rc : q(b, expr);
  return rc ? rc : nn_buf_appendc(b, '\n');
}

static int sli_expr(const struct nn_slo_spec *s, const char *win, struct nn_buf *e)
{
  int rc;
  rc = nn_buf_appendc(e, '(');
  if (s->sli == NN_SLO_SLI_RAW) { /* parenthesised, as Sloth writes it */
    rc = rc ? rc : nn__slo_render_query(s->ratio_query, win, e);
    return rc ? rc : nn_buf_appendc(e, ')');
  }
  rc = rc ? rc : nn__slo_render_query(s->error_query, win, e);
  rc = rc ? rc : nn_buf_appends(e, ")\n/\n(");
  rc = rc ? rc : nn__slo_render_query(s->total_query, win, e);
  return rc ? rc : nn_buf_appendc(e, ')');
}

static int alert_rule(struct nn_buf *b, const struct nn_slo_spec *s, int k, struct nn_buf *e)
{
  const struct nn_slo_alert_spec *a = k == NN_SLO_A_PAGE ? &s->page : &s->ticket;
  if (a->disable)
    return 0;
  int t0 = k == NN_SLO_A_PAGE ? 0 : 2, rc = 0;
  char f[2][40], eb[40];
  /* Sloth's arithmetic, (100 - objective%) / 100, so the constant matches its output. */
  nn_promql_format_float((100.0 - s->objective * 100.0) / 100.0, eb, sizeof(eb));
  nn_buf_reset(e);
  for (int t = t0; t < t0 + 2 && !rc; t++) {
    nn_promql_format_float(nn__slo_factor(s, t), f[t - t0], sizeof(f[0]));
    const char *sw = nn__slo_window_name[nn__slo_tier_short[t]];
    const char *lw = nn__slo_window_name[nn__slo_tier_long[t]];
    rc =
        nn_buf_appends(e, t == t0 ? "(\n  (slo:sli_error:ratio_rate"
                                  : "\nor ignoring (sloth_window)\n(\n  (slo:sli_error:ratio_rate");
    rc = rc ? rc : nn_buf_printf(e, "%s", sw);
    rc = rc ? rc : selector(e, s);
    rc = rc ? rc
            : nn_buf_printf(
                  e, " > (%s * %s))\n  and ignoring (sloth_window)\n  (slo:sli_error:ratio_rate%s",
                  f[t - t0], eb, lw);
    rc = rc ? rc : selector(e, s);
    rc = rc ? rc : nn_buf_printf(e, " > (%s * %s))\n)", f[t - t0], eb);
  }
  rc = rc ? rc : nn_buf_printf(b, "  - alert: %s\n    expr: ", s->alert_name);
  rc = rc ? rc : q(b, e->data);
  if (a->for_ms > 0 && !rc) {
    char d[40];
    nn_duration_format(a->for_ms, d, sizeof(d));
    rc = nn_buf_printf(b, "\n    for: %s", d);
  }
  rc = rc ? rc : nn_buf_appends(b, "\n    labels:\n");
  const struct nn_slo_kv *ls[2] = {&s->alert_labels, &a->labels};
  /* Tier labels replace alerting labels of the same name. */
  for (int i = 0; i < 2 && !rc; i++) {
    for (size_t j = 0; j < ls[i]->n && !rc; j++) {
      bool shadowed = false;
      for (size_t m = 0; i == 0 && m < a->labels.n; m++)
        shadowed |= !strcmp(a->labels.k[m], ls[i]->k[j]);
      if (shadowed)
        continue;
      rc = nn_buf_printf(b, "      %s: ", ls[i]->k[j]);
      rc = rc ? rc : q(b, ls[i]->v[j]);
      rc = rc ? rc : nn_buf_appendc(b, '\n');
    }
  }
  rc = rc ? rc
          : nn_buf_printf(b, "      sloth_severity: \"%s\"\n    annotations:\n",
                          k == NN_SLO_A_PAGE ? "page" : "ticket");
  /* The engine's annotation set, left as templates for Prometheus to expand. */
  const struct nn_slo_kv *src[2] = {&s->alert_annotations, &a->annotations};
  char title[200];
  snprintf(title, sizeof(title),
           "(%s) {{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is "
           "too fast.",
           k == NN_SLO_A_PAGE ? "page" : "ticket");
  const char *kk[16] = {"title", "summary"},
             *vv[16] = {title, "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget "
                               "burn rate is over expected."};
  size_t nkv = 2;
  for (int si = 0; si < 2; si++)
    for (size_t i = 0; i < src[si]->n; i++) {
      size_t j = 0;
      while (j < nkv && strcmp(kk[j], src[si]->k[i]))
        j++;
      if (j == 16)
        continue;
      kk[j] = src[si]->k[i];
      vv[j] = src[si]->v[i];
      nkv += j == nkv;
    }
  for (size_t i = 0; i < nkv && !rc; i++) {
    rc = nn_buf_printf(b, "      %s: ", kk[i]);
    rc = rc ? rc : q(b, vv[i]);
    rc = rc ? rc : nn_buf_appendc(b, '\n');
  }
  return rc;
}

static int export_one(struct nn_buf *b, const struct nn_slo_spec *s, struct nn_buf *e)
{
  char pw[40], num[40];
  int rc;
  nn_duration_format(s->period_min * 60000, pw, sizeof(pw));
  rc = group(b, "sli-recordings", s, s->group_interval_ms[0]);
  for (int w = 0; w < NN_SLO_W_PERIOD && !rc; w++) {
    char name[64];
    snprintf(name, sizeof(name), "slo:sli_error:ratio_rate%s", nn__slo_window_name[w]);
    nn_buf_reset(e);
    rc = sli_expr(s, nn__slo_window_name[w], e);
    rc = rc ? rc : record(b, name, e->data);
    rc = rc ? rc : labels_block(b, s, nn__slo_window_name[w], true);
  }
  /* The period window as Sloth writes it: the mean of the 5m ratios (an approximation the
   * nines engine replaces with exact ledger counts). */
  nn_buf_reset(e);
  rc = rc ? rc : nn_buf_appends(e, "sum_over_time(slo:sli_error:ratio_rate5m");
  rc = rc ? rc : selector(e, s);
  rc = rc ? rc
          : nn_buf_printf(
                e, "[%s])\n/ ignoring (sloth_window)\ncount_over_time(slo:sli_error:ratio_rate5m",
                pw);
  rc = rc ? rc : selector(e, s);
  rc = rc ? rc : nn_buf_printf(e, "[%s])", pw);
  char rname[64];
  snprintf(rname, sizeof(rname), "slo:sli_error:ratio_rate%s", pw);
  rc = rc ? rc : record(b, rname, e->data);
  rc = rc ? rc : labels_block(b, s, pw, false);

  rc = rc ? rc : group(b, "meta-recordings", s, s->group_interval_ms[1]);
  nn_promql_format_float(s->objective, num, sizeof(num));
  nn_buf_reset(e);
  rc = rc ? rc : nn_buf_printf(e, "vector(%s)", num);
  rc = rc ? rc : record(b, "slo:objective:ratio", e->data);
  rc = rc ? rc : labels_block(b, s, NULL, true);
  nn_buf_reset(e);
  rc = rc ? rc : nn_buf_printf(e, "vector(1-%s)", num);
  rc = rc ? rc : record(b, "slo:error_budget:ratio", e->data);
  rc = rc ? rc : labels_block(b, s, NULL, true);
  nn_promql_format_float((double)s->period_min / 1440.0, num, sizeof(num));
  nn_buf_reset(e);
  rc = rc ? rc : nn_buf_printf(e, "vector(%s)", num);
  rc = rc ? rc : record(b, "slo:time_period:days", e->data);
  rc = rc ? rc : labels_block(b, s, NULL, true);
  const char *burns[2][2] = {{"slo:current_burn_rate:ratio", "slo:sli_error:ratio_rate5m"},
                             {"slo:period_burn_rate:ratio", rname}};
  for (int i = 0; i < 2 && !rc; i++) {
    nn_buf_reset(e);
    rc = nn_buf_appends(e, burns[i][1]);
    rc = rc ? rc : selector(e, s);
    rc = rc ? rc
            : nn_buf_appends(
                  e,
                  "\n/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio");
    rc = rc ? rc : selector(e, s);
    rc = rc ? rc : record(b, burns[i][0], e->data);
    rc = rc ? rc : labels_block(b, s, NULL, true);
  }
  nn_buf_reset(e);
  rc = rc ? rc : nn_buf_appends(e, "1 - slo:period_burn_rate:ratio");
  rc = rc ? rc : selector(e, s);
  rc = rc ? rc : record(b, "slo:period_error_budget_remaining:ratio", e->data);
  rc = rc ? rc : labels_block(b, s, NULL, true);
  rc = rc ? rc : record(b, "sloth_slo_info", "vector(1)");
  rc = rc ? rc : labels_block(b, s, NULL, true);
  nn_promql_format_float(s->objective * 100, num, sizeof(num));
  rc = rc ? rc
          : nn_buf_printf(b,
                          "      sloth_mode: \"cli-gen-prom\"\n      sloth_objective: \"%s\"\n     "
                          " sloth_spec: ",
                          num);
  rc = rc ? rc : q(b, s->format);
  rc = rc ? rc : nn_buf_appends(b, "\n      sloth_version: \"nines-" NN_VERSION "\"\n");
  if (s->page.disable && s->ticket.disable)
    return rc;
  rc = rc ? rc : group(b, "alerts", s, s->group_interval_ms[2]);
  rc = rc ? rc : alert_rule(b, s, NN_SLO_A_PAGE, e);
  rc = rc ? rc : alert_rule(b, s, NN_SLO_A_TICKET, e);
  return rc;
}

int nn_slo_export_prometheus(const struct nn_slo_set *s, struct nn_buf *out)
{
  struct nn_buf e;
  int rc = nn_buf_appends(out, "# Generated by nines from SLO specs (Sloth-compatible rules).\n"
                               "# DO NOT EDIT.\n");
  rc = rc ? rc : nn_buf_appends(out, s && s->n ? "groups:\n" : "groups: []\n");
  nn_buf_init(&e, (size_t)1 << 22);
  for (size_t i = 0; s && i < s->n && !rc; i++)
    rc = export_one(out, &s->v[i], &e);
  nn_buf_fini(&e);
  return rc;
}
