/* SPDX-License-Identifier: Apache-2.0 */
/* SLO spec loading: Sloth's "prometheus/v1" files read unchanged and the native "nines/v1"
 * format (availability per endpoint and latency-from-histogram SLIs, project/team, periods
 * incl. calendar month and quarter), both validated with file:line:col errors. Every SLI
 * becomes a pair of per-second rate queries (or one ratio query) with {{.window}}. */
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "aggregator/slo/internal.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/units.h"
#include "common/yaml.h"

#define MOD       "slo"
#define MAX_SLOS  10000
#define MAX_QUERY 65536

const int64_t nn__slo_window_min[NN_SLO_W_PERIOD] = {5, 30, 60, 120, 360, 1440, 4320};
const char *const nn__slo_window_name[NN_SLO_W_PERIOD] = {"5m", "30m", "1h", "2h",
                                                          "6h", "1d",  "3d"};
/* Page quick, page slow, ticket quick, ticket slow (SRE Workbook table 5-8). */
const int nn__slo_tier_long[4] = {NN_SLO_W_1H, NN_SLO_W_6H, NN_SLO_W_1D, NN_SLO_W_3D};
const int nn__slo_tier_short[4] = {NN_SLO_W_5M, NN_SLO_W_30M, NN_SLO_W_2H, NN_SLO_W_6H};

double nn__slo_factor(const struct nn_slo_spec *s, int tier)
{
  double period_h = (double)s->period_min / 60.0;
  double long_h = (double)nn__slo_window_min[nn__slo_tier_long[tier]] / 60.0;
  return s->budget_pct[tier] * period_h / 100.0 / long_h;
}

struct ctx {
  char *err;
  size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int fail(struct ctx *c, const struct nn_yaml_node *n,
                                                      const char *fmt, ...)
{
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (c->err && c->errlen) {
    if (n)
      snprintf(c->err, c->errlen, "%s:%d:%d: %s", n->file ? n->file : "", n->line, n->col, msg);
    else
      snprintf(c->err, c->errlen, "%s", msg);
  }
  return NN_ECONFIG;
}

static void kv_free(struct nn_slo_kv *kv)
{
  for (size_t i = 0; i < kv->n; i++) {
    free(kv->k[i]);
    free(kv->v[i]);
  }
  free(kv->k);
  free(kv->v);
  memset(kv, 0, sizeof(*kv));
}

void nn__slo_spec_fini(struct nn_slo_spec *s)
{
  if (!s)
    return;
  free(s->service);
  free(s->name);
  free(s->id);
  free(s->description);
  free(s->file);
  free(s->format);
  free(s->error_query);
  free(s->total_query);
  free(s->ratio_query);
  free(s->project);
  free(s->team);
  free(s->alert_name);
  kv_free(&s->labels);
  kv_free(&s->alert_labels);
  kv_free(&s->alert_annotations);
  kv_free(&s->page.labels);
  kv_free(&s->page.annotations);
  kv_free(&s->ticket.labels);
  kv_free(&s->ticket.annotations);
  memset(s, 0, sizeof(*s));
}

/* Sets *dst to key in kv, replacing an existing value (later levels win). */
static int kv_set(struct nn_slo_kv *kv, const char *k, const char *v)
{
  for (size_t i = 0; i < kv->n; i++) {
    if (strcmp(kv->k[i], k) == 0) {
      char *nv = strdup(v);
      if (!nv)
        return NN_ENOMEM;
      free(kv->v[i]);
      kv->v[i] = nv;
      return 0;
    }
  }
  char **nk = realloc(kv->k, (kv->n + 1) * sizeof(*nk));
  if (!nk)
    return NN_ENOMEM;
  kv->k = nk;
  char **nvv = realloc(kv->v, (kv->n + 1) * sizeof(*nvv));
  if (!nvv)
    return NN_ENOMEM;
  kv->v = nvv;
  kv->k[kv->n] = strdup(k);
  kv->v[kv->n] = strdup(v);
  if (!kv->k[kv->n] || !kv->v[kv->n]) {
    free(kv->k[kv->n]);
    free(kv->v[kv->n]);
    return NN_ENOMEM;
  }
  kv->n++;
  return 0;
}

static int kv_copy(struct nn_slo_kv *dst, const struct nn_slo_kv *src)
{
  for (size_t i = 0; i < src->n; i++) {
    int rc = kv_set(dst, src->k[i], src->v[i]);
    if (rc < 0)
      return rc;
  }
  return 0;
}

/* Rejects keys of map that are not in allowed (NULL-terminated). */
static int check_keys(struct ctx *c, const struct nn_yaml_node *map, const char *what,
                      const char *const *allowed)
{
  if (!map || map->kind == NN_YAML_NULL)
    return 0;
  if (map->kind != NN_YAML_MAP)
    return fail(c, map, "%s: expected a map, got a %s", what, nn_yaml_kind_name(map->kind));
  for (size_t i = 0; i < map->len; i++) {
    const struct nn_yaml_node *k = map->keys[i];
    bool ok = false;
    for (size_t j = 0; allowed[j] && !ok; j++)
      ok = k->kind == NN_YAML_SCALAR && strcmp(k->scalar, allowed[j]) == 0;
    if (!ok) {
      char list[512];
      size_t off = 0;
      list[0] = 0;
      for (size_t j = 0; allowed[j] && off < sizeof(list); j++)
        off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", j ? ", " : "", allowed[j]);
      return fail(c, k, "%s: unknown field \"%s\" (known: %s)", what, k->scalar ? k->scalar : "?",
                  list);
    }
  }
  return 0;
}

static int get_str(struct ctx *c, const struct nn_yaml_node *map, const char *key, const char *what,
                   bool required, char **out)
{
  const struct nn_yaml_node *n = nn_yaml_map_get(map, key);
  if (!n || (n->kind == NN_YAML_NULL && !n->quoted)) {
    if (required)
      return fail(c, map, "%s: missing required field \"%s\"", what, key);
    return 0;
  }
  if (n->kind != NN_YAML_SCALAR && n->kind != NN_YAML_NULL)
    return fail(c, n, "%s.%s: expected a string, got a %s", what, key, nn_yaml_kind_name(n->kind));
  if (strlen(n->scalar) != n->scalar_len)
    return fail(c, n, "%s.%s: NUL byte in string", what, key);
  if (n->scalar_len > MAX_QUERY)
    return fail(c, n, "%s.%s: longer than %d bytes", what, key, MAX_QUERY);
  if (required && n->scalar_len == 0)
    return fail(c, n, "%s.%s: must not be empty", what, key);
  free(*out);
  *out = strdup(n->scalar);
  return *out ? 0 : NN_ENOMEM;
}

static int get_bool(struct ctx *c, const struct nn_yaml_node *map, const char *key,
                    const char *what, bool *out)
{
  const struct nn_yaml_node *n = nn_yaml_map_get(map, key);
  if (!n || n->kind == NN_YAML_NULL)
    return 0;
  if (n->kind == NN_YAML_SCALAR && !n->quoted &&
      (!strcmp(n->scalar, "true") || !strcmp(n->scalar, "True") || !strcmp(n->scalar, "TRUE")))
    *out = true;
  else if (n->kind == NN_YAML_SCALAR && !n->quoted &&
           (!strcmp(n->scalar, "false") || !strcmp(n->scalar, "False") ||
            !strcmp(n->scalar, "FALSE")))
    *out = false;
  else
    return fail(c, n, "%s.%s: expected true or false", what, key);
  return 0;
}

static int get_duration(struct ctx *c, const struct nn_yaml_node *map, const char *key,
                        const char *what, int64_t *out)
{
  const struct nn_yaml_node *n = nn_yaml_map_get(map, key);
  if (!n || n->kind == NN_YAML_NULL)
    return 0;
  if (n->kind != NN_YAML_SCALAR || nn_duration_parse(n->scalar, n->scalar_len, out) < 0)
    return fail(c, n, "%s.%s: expected a duration such as 5m or 1h", what, key);
  return 0;
}

/* Reads a map of scalars (labels, annotations), merging into kv. Label names are checked
 * when labels is set. */
static int get_kv(struct ctx *c, const struct nn_yaml_node *map, const char *key, const char *what,
                  bool labels, struct nn_slo_kv *kv)
{
  const struct nn_yaml_node *n = nn_yaml_map_get(map, key);
  if (!n || n->kind == NN_YAML_NULL)
    return 0;
  if (n->kind != NN_YAML_MAP)
    return fail(c, n, "%s.%s: expected a map of strings", what, key);
  for (size_t i = 0; i < n->len; i++) {
    const struct nn_yaml_node *k = n->keys[i], *v = n->items[i];
    if (k->kind != NN_YAML_SCALAR || (v->kind != NN_YAML_SCALAR && v->kind != NN_YAML_NULL))
      return fail(c, k, "%s.%s: keys and values must be strings", what, key);
    if (strlen(k->scalar) != k->scalar_len || strlen(v->scalar) != v->scalar_len)
      return fail(c, k, "%s.%s: NUL byte in string", what, key);
    if (labels) {
      if (!nn_label_name_valid(k->scalar, k->scalar_len) || !strncmp(k->scalar, "__", 2))
        return fail(c, k, "%s.%s: invalid label name \"%s\"", what, key, k->scalar);
      if (!strncmp(k->scalar, "sloth_", 6))
        return fail(c, k, "%s.%s: label \"%s\" is reserved (sloth_* labels are set by nines)", what,
                    key, k->scalar);
    }
    int rc = kv_set(kv, k->scalar, v->scalar);
    if (rc < 0)
      return rc;
  }
  return 0;
}

int nn__slo_render_query(const char *tmpl, const char *win, struct nn_buf *out)
{
  const char *p = tmpl;
  int rc = 0;
  while (*p && rc == 0) {
    if (p[0] == '{' && p[1] == '{') {
      const char *q = p + 2;
      while (*q == ' ')
        q++;
      if (!strncmp(q, ".window", 7)) {
        q += 7;
        while (*q == ' ')
          q++;
        if (q[0] == '}' && q[1] == '}') {
          rc = nn_buf_appends(out, win);
          p = q + 2;
          continue;
        }
      }
    }
    rc = nn_buf_appendc(out, *p++);
  }
  if (rc == 0 && out->len == 0)
    rc = nn_buf_appends(out, "");
  return rc;
}

/* Checks that a {{.window}} query parses once rendered, reporting at node. */
static int check_query(struct ctx *c, const struct nn_yaml_node *node, const char *what,
                       const char *q, bool need_window)
{
  if (need_window && !strstr(q, ".window"))
    return fail(c, node, "%s: the query must use {{.window}} as its range", what);
  struct nn_buf b;
  nn_buf_init(&b, MAX_QUERY * 4);
  int rc = nn__slo_render_query(q, "5m", &b);
  if (rc < 0) {
    nn_buf_fini(&b);
    return rc == NN_ENOMEM ? rc : fail(c, node, "%s: query too long", what);
  }
  struct nn_promql_expr *e = NULL;
  struct nn_promql_error perr;
  rc = nn_promql_parse(b.data, b.len, &e, &perr);
  if (rc == 0 && nn_promql_expr_type(e) != NN_PROMQL_VECTOR &&
      nn_promql_expr_type(e) != NN_PROMQL_SCALAR)
    rc = fail(c, node, "%s: the query must return an instant vector", what);
  else if (rc == NN_ENOMEM)
    ;
  else if (rc < 0)
    rc = fail(c, node, "%s: %s", what, perr.msg);
  nn_promql_expr_free(e);
  nn_buf_fini(&b);
  return rc;
}

static int parse_objective(struct ctx *c, const struct nn_yaml_node *slo, struct nn_slo_spec *s)
{
  const struct nn_yaml_node *n = nn_yaml_map_get(slo, "objective");
  if (!n)
    return fail(c, slo, "slo \"%s\": missing required field \"objective\"", s->name);
  char *end = NULL;
  double v = n->kind == NN_YAML_SCALAR && !n->quoted ? strtod(n->scalar, &end) : NAN;
  if (!end || *end || !isfinite(v))
    return fail(c, n, "objective: expected a number such as 99.9");
  if (!(v > 0 && v < 100))
    return fail(c, n,
                "objective: %g is out of range: a percentage in (0, 100) (100%% leaves no "
                "error budget)",
                v);
  s->objective = v / 100.0;
  return 0;
}

static int parse_alert(struct ctx *c, const struct nn_yaml_node *n, const char *what,
                       struct nn_slo_alert_spec *a)
{
  static const char *const keys[] = {"disable", "labels", "annotations", "for", NULL};
  int rc;
  if (!n || n->kind == NN_YAML_NULL)
    return 0;
  if ((rc = check_keys(c, n, what, keys)) < 0 ||
      (rc = get_bool(c, n, "disable", what, &a->disable)) < 0 ||
      (rc = get_kv(c, n, "labels", what, true, &a->labels)) < 0 ||
      (rc = get_kv(c, n, "annotations", what, false, &a->annotations)) < 0 ||
      (rc = get_duration(c, n, "for", what, &a->for_ms)) < 0)
    return rc;
  return 0;
}

static int parse_alerting(struct ctx *c, const struct nn_yaml_node *n, bool native,
                          struct nn_slo_spec *s)
{
  static const char *const sloth_keys[] = {"name",       "labels",       "annotations",
                                           "page_alert", "ticket_alert", NULL};
  static const char *const native_keys[] = {
      "name",         "labels",        "annotations",  "page_alert",
      "ticket_alert", "no_data_alert", "budget_alert", NULL};
  int rc;
  if (n && n->kind != NN_YAML_NULL) {
    if ((rc = check_keys(c, n, "alerting", native ? native_keys : sloth_keys)) < 0 ||
        (rc = get_str(c, n, "name", "alerting", false, &s->alert_name)) < 0 ||
        (rc = get_kv(c, n, "labels", "alerting", true, &s->alert_labels)) < 0 ||
        (rc = get_kv(c, n, "annotations", "alerting", false, &s->alert_annotations)) < 0 ||
        (rc = parse_alert(c, nn_yaml_map_get(n, "page_alert"), "alerting.page_alert", &s->page)) <
            0 ||
        (rc = parse_alert(c, nn_yaml_map_get(n, "ticket_alert"), "alerting.ticket_alert",
                          &s->ticket)) < 0)
      return rc;
    struct nn_slo_alert_spec tmp = {0};
    if ((rc = parse_alert(c, nn_yaml_map_get(n, "no_data_alert"), "alerting.no_data_alert", &tmp)) <
        0)
      goto out_tmp;
    s->no_data_disable = tmp.disable;
    kv_free(&tmp.labels);
    kv_free(&tmp.annotations);
    memset(&tmp, 0, sizeof(tmp));
    if ((rc = parse_alert(c, nn_yaml_map_get(n, "budget_alert"), "alerting.budget_alert", &tmp)) <
        0)
      goto out_tmp;
    s->budget_disable = tmp.disable;
  out_tmp:
    kv_free(&tmp.labels);
    kv_free(&tmp.annotations);
    if (rc < 0)
      return rc;
  }
  if (!s->alert_name) {
    s->alert_name = strdup("SLOErrorBudgetBurn");
    if (!s->alert_name)
      return NN_ENOMEM;
  } else if (!nn_metric_name_valid(s->alert_name, strlen(s->alert_name))) {
    return fail(c, nn_yaml_map_get(n, "name"), "alerting.name: \"%s\" is not a valid alert name",
                s->alert_name);
  }
  return 0;
}

/* Period: a duration of whole hours between 1h and 100d, or month / quarter. */
static int parse_period(struct ctx *c, const struct nn_yaml_node *map, struct nn_slo_spec *s)
{
  const struct nn_yaml_node *n = nn_yaml_map_get(map, "period");
  if (!n || n->kind == NN_YAML_NULL)
    return 0;
  if (n->kind != NN_YAML_SCALAR)
    return fail(c, n, "period: expected 30d, 28d, 7d, month or quarter");
  if (!strcmp(n->scalar, "month")) {
    s->period_kind = NN_SLO_MONTH;
    s->period_min = 30 * 1440;
    return 0;
  }
  if (!strcmp(n->scalar, "quarter")) {
    s->period_kind = NN_SLO_QUARTER;
    s->period_min = 90 * 1440;
    return 0;
  }
  int64_t ms;
  if (nn_duration_parse(n->scalar, n->scalar_len, &ms) < 0 || ms % 3600000 != 0 || ms < 86400000 ||
      ms > 100 * 86400000LL)
    return fail(c, n,
                "period: \"%s\" must be whole hours between 1d and 100d (e.g. 30d), or "
                "month or quarter",
                n->scalar);
  s->period_kind = NN_SLO_ROLLING;
  s->period_min = ms / 60000;
  return 0;
}

static int parse_tz(struct ctx *c, const struct nn_yaml_node *map, struct nn_slo_spec *s)
{
  const struct nn_yaml_node *n = nn_yaml_map_get(map, "time_zone");
  if (!n || n->kind == NN_YAML_NULL)
    return 0;
  if (n->kind != NN_YAML_SCALAR || nn__slo_tz_parse(n->scalar, &s->tz) < 0)
    return fail(c, n,
                "time_zone: expected UTC, a fixed offset such as +02:00 or -05:00, or a "
                "zone name of the tz database such as Europe/Berlin");
  s->tz_set = true;
  return 0;
}

static int set_budget_pct(struct nn_slo_spec *s)
{
  /* Sloth's catalog: google-30d / google-28d use 2, 5, 10, 10 %; its 7d example uses
   * 8, 12.5, 20, 42 % so the factors stay meaningful over a short period. */
  static const double std_pct[4] = {2, 5, 10, 10}, w7_pct[4] = {8, 12.5, 20, 42};
  const double *p =
      s->period_kind == NN_SLO_ROLLING && s->period_min == 7 * 1440 ? w7_pct : std_pct;
  memcpy(s->budget_pct, p, sizeof(s->budget_pct));
  return 0;
}

static int finish_spec(struct ctx *c, const struct nn_yaml_node *slo, struct nn_slo_spec *s)
{
  struct nn_buf b;
  nn_buf_init(&b, 1024);
  int rc = nn_buf_printf(&b, "%s-%s", s->service, s->name);
  if (rc < 0) {
    nn_buf_fini(&b);
    return rc == NN_ETOOBIG ? fail(c, slo, "service and slo name too long") : rc;
  }
  s->id = nn_buf_steal(&b, NULL);
  if (!s->id)
    return NN_ENOMEM;
  for (const char *p = s->name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '_' || *p == '.'))
      return fail(c, nn_yaml_map_get(slo, "name"),
                  "name: \"%s\" may only hold letters, digits, '-', '_' and '.'", s->name);
  if (s->page.for_ms < 0 || s->ticket.for_ms < 0)
    return fail(c, slo, "alert for: must not be negative");
  set_budget_pct(s);
  XXH64_state_t *h = XXH64_createState();
  if (!h)
    return NN_ENOMEM;
  XXH64_reset(h, 0);
  const char *parts[] = {s->error_query, s->total_query, s->ratio_query};
  for (size_t i = 0; i < 3; i++) {
    const char *p = parts[i] ? parts[i] : "";
    XXH64_update(h, p, strlen(p) + 1);
  }
  int64_t pk[2] = {s->period_kind, s->period_min};
  XXH64_update(h, pk, sizeof(pk));
  s->fingerprint = XXH64_digest(h);
  XXH64_freeState(h);
  return 0;
}

/* Sloth's sli: exactly one of events, raw (plugin is Go code: rejected). */
static int parse_sloth_sli(struct ctx *c, const struct nn_yaml_node *sli, struct nn_slo_spec *s)
{
  static const char *const keys[] = {"events", "raw", "plugin", NULL};
  static const char *const ev_keys[] = {"error_query", "total_query", NULL};
  /* Sloth's Go struct says error_ratio_query; its raw-home-wifi example says errorRatioQuery. */
  static const char *const raw_keys[] = {"error_ratio_query", "errorRatioQuery", NULL};
  int rc;
  if (!sli || sli->kind != NN_YAML_MAP)
    return fail(c, sli, "slo \"%s\": missing sli (events, raw)", s->name);
  if ((rc = check_keys(c, sli, "sli", keys)) < 0)
    return rc;
  const struct nn_yaml_node *ev = nn_yaml_map_get(sli, "events"),
                            *raw = nn_yaml_map_get(sli, "raw"),
                            *pl = nn_yaml_map_get(sli, "plugin");
  if (pl)
    return fail(c, pl,
                "sli.plugin: Sloth SLI plugins are Go code and are not supported by nines; "
                "write the SLI as sli.events or sli.raw");
  if (!!ev + !!raw != 1)
    return fail(c, sli, "sli: exactly one of events or raw is required");
  if (ev) {
    if ((rc = check_keys(c, ev, "sli.events", ev_keys)) < 0 ||
        (rc = get_str(c, ev, "error_query", "sli.events", true, &s->error_query)) < 0 ||
        (rc = get_str(c, ev, "total_query", "sli.events", true, &s->total_query)) < 0 ||
        (rc = check_query(c, nn_yaml_map_get(ev, "error_query"), "sli.events.error_query",
                          s->error_query, true)) < 0 ||
        (rc = check_query(c, nn_yaml_map_get(ev, "total_query"), "sli.events.total_query",
                          s->total_query, true)) < 0)
      return rc;
    s->sli = NN_SLO_SLI_EVENTS;
    return 0;
  }
  if ((rc = check_keys(c, raw, "sli.raw", raw_keys)) < 0)
    return rc;
  const char *rk = nn_yaml_map_get(raw, "errorRatioQuery") ? "errorRatioQuery" : raw_keys[0];
  if (nn_yaml_map_get(raw, raw_keys[0]) && nn_yaml_map_get(raw, raw_keys[1]))
    return fail(c, nn_yaml_map_get(raw, raw_keys[1]),
                "sli.raw: error_ratio_query and errorRatioQuery are the same field; keep one");
  char where[64];
  snprintf(where, sizeof(where), "sli.raw.%s", rk);
  if ((rc = get_str(c, raw, rk, "sli.raw", true, &s->ratio_query)) < 0 ||
      (rc = check_query(c, nn_yaml_map_get(raw, rk), where, s->ratio_query, true)) < 0)
    return rc;
  s->sli = NN_SLO_SLI_RAW;
  return 0;
}

/* Native selectors are written with braces: {job="api", handler="/pay"}; empty is fine. */
static int selector_body(struct ctx *c, const struct nn_yaml_node *n, const char *sel, char **out)
{
  size_t len = strlen(sel);
  while (len && (sel[len - 1] == ' ' || sel[len - 1] == '\n'))
    len--;
  while (len && (*sel == ' ' || *sel == '\n')) {
    sel++;
    len--;
  }
  if (len == 0) {
    *out = strdup("");
    return *out ? 0 : NN_ENOMEM;
  }
  if (len < 2 || sel[0] != '{' || sel[len - 1] != '}')
    return fail(c, n, "selector: expected label matchers in braces, e.g. {job=\"api\"}");
  *out = strndup(sel + 1, len - 2);
  return *out ? 0 : NN_ENOMEM;
}

/* Takes the text of two buffers as the SLO's error and total queries. */
static int take_queries(struct nn_slo_spec *s, struct nn_buf *eq, struct nn_buf *tq)
{
  s->error_query = nn_buf_steal(eq, NULL);
  s->total_query = nn_buf_steal(tq, NULL);
  return s->error_query && s->total_query ? 0 : NN_ENOMEM;
}

static int parse_native_sli(struct ctx *c, const struct nn_yaml_node *sli, struct nn_slo_spec *s)
{
  static const char *const keys[] = {"availability", "latency", "events", "raw", NULL};
  static const char *const av_keys[] = {"metric", "selector", "code_label", "bad_codes", NULL};
  static const char *const lat_keys[] = {"metric", "selector", "threshold", NULL};
  int rc;
  if (!sli || sli->kind != NN_YAML_MAP)
    return fail(c, sli, "slo \"%s\": missing sli (availability, latency, events or raw)", s->name);
  if ((rc = check_keys(c, sli, "sli", keys)) < 0)
    return rc;
  const struct nn_yaml_node *av = nn_yaml_map_get(sli, "availability"),
                            *lat = nn_yaml_map_get(sli, "latency");
  if (sli->len != 1)
    return fail(c, sli, "sli: exactly one of availability, latency, events or raw is required");
  if (!av && !lat)
    return parse_sloth_sli(c, sli, s);
  char *metric = NULL, *sel = NULL, *body = NULL, *code = NULL, *bad = NULL, *thr = NULL;
  struct nn_buf eq, tq;
  nn_buf_init(&eq, MAX_QUERY);
  nn_buf_init(&tq, MAX_QUERY);
  const struct nn_yaml_node *node = av ? av : lat;
  const char *what = av ? "sli.availability" : "sli.latency";
  if ((rc = check_keys(c, node, what, av ? av_keys : lat_keys)) < 0 ||
      (rc = get_str(c, node, "metric", what, true, &metric)) < 0 ||
      (rc = get_str(c, node, "selector", what, false, &sel)) < 0)
    goto out;
  if (!nn_metric_name_valid(metric, strlen(metric))) {
    rc = fail(c, nn_yaml_map_get(node, "metric"), "%s.metric: \"%s\" is not a metric name", what,
              metric);
    goto out;
  }
  if ((rc = selector_body(c, nn_yaml_map_get(node, "selector"), sel ? sel : "", &body)) < 0)
    goto out;
  const char *sep = body[0] ? "," : "";
  if (av) {
    if ((rc = get_str(c, node, "code_label", what, false, &code)) < 0 ||
        (rc = get_str(c, node, "bad_codes", what, false, &bad)) < 0)
      goto out;
    if (code && !nn_label_name_valid(code, strlen(code))) {
      rc = fail(c, nn_yaml_map_get(node, "code_label"), "%s.code_label: invalid label name", what);
      goto out;
    }
    if (bad && (strchr(bad, '"') || strchr(bad, '\\'))) {
      rc = fail(c, nn_yaml_map_get(node, "bad_codes"),
                "%s.bad_codes: quotes and backslashes "
                "are not allowed",
                what);
      goto out;
    }
    rc = nn_buf_printf(&eq, "sum(rate(%s{%s%s%s=~\"%s\"}[{{.window}}]))", metric, body, sep,
                       code ? code : "code", bad ? bad : "5..");
    rc = rc ? rc : nn_buf_printf(&tq, "sum(rate(%s{%s}[{{.window}}]))", metric, body);
  } else {
    const struct nn_yaml_node *tn = nn_yaml_map_get(node, "threshold");
    if ((rc = get_str(c, node, "threshold", what, true, &thr)) < 0)
      goto out;
    int64_t ms;
    char le[40];
    if (nn_duration_parse(thr, strlen(thr), &ms) == 0 && ms > 0) {
      nn_promql_format_float((double)ms / 1000.0, le, sizeof(le));
    } else {
      char *end;
      double v = strtod(thr, &end);
      if (*end || !(v > 0) || !isfinite(v)) {
        rc = fail(c, tn,
                  "%s.threshold: expected a duration (300ms) or the bucket's le value "
                  "in seconds (0.3)",
                  what);
        goto out;
      }
      nn_promql_format_float(v, le, sizeof(le));
    }
    size_t ml = strlen(metric);
    if (ml > 7 && !strcmp(metric + ml - 7, "_bucket"))
      metric[ml - 7] = 0;
    /* Bad = requests slower than le: count minus the le bucket (Sloth's k8s-apiserver form). */
    rc = nn_buf_printf(&eq,
                       "(sum(rate(%s_count{%s}[{{.window}}])) - "
                       "sum(rate(%s_bucket{%s%sle=\"%s\"}[{{.window}}])))",
                       metric, body, metric, body, sep, le);
    rc = rc ? rc : nn_buf_printf(&tq, "sum(rate(%s_count{%s}[{{.window}}]))", metric, body);
  }
  if (rc < 0 || (rc = take_queries(s, &eq, &tq)) < 0)
    goto out;
  if ((rc = check_query(c, node, what, s->error_query, true)) < 0 ||
      (rc = check_query(c, node, what, s->total_query, true)) < 0)
    goto out;
  s->sli = NN_SLO_SLI_EVENTS;
out:
  nn_buf_fini(&eq);
  nn_buf_fini(&tq);
  free(metric);
  free(sel);
  free(body);
  free(code);
  free(bad);
  free(thr);
  return rc;
}

/* Sloth's rule group intervals (only the export uses them): all, or per group. */
static int parse_sloth_interval(struct ctx *c, const struct nn_yaml_node *n, struct nn_slo_spec *s)
{
  static const char *const keys[] = {"all", "slierror", "metadata", "alert", NULL};
  int64_t all = 0;
  int rc = check_keys(c, n, "interval", keys);
  rc = rc ? rc : get_duration(c, n, "all", "interval", &all);
  for (int i = 0; i < 3 && !rc; i++) {
    s->group_interval_ms[i] = all;
    rc = get_duration(c, n, keys[i + 1], "interval", &s->group_interval_ms[i]);
  }
  return rc;
}

static int push_spec(struct nn_slo_set *set, struct nn_slo_spec *s)
{
  if (set->n >= MAX_SLOS)
    return NN_ELIMIT;
  struct nn_slo_spec *nv = realloc(set->v, (set->n + 1) * sizeof(*nv));
  if (!nv)
    return NN_ENOMEM;
  set->v = nv;
  set->v[set->n++] = *s;
  memset(s, 0, sizeof(*s));
  return 0;
}

/* One document: version decides the format. */
static int load_doc(struct ctx *c, const struct nn_yaml_node *root, struct nn_slo_set *set)
{
  static const char *const sloth_keys[] = {"version", "service",     "labels",
                                           "slos",    "slo_plugins", NULL};
  static const char *const sloth_slo_keys[] = {
      "name", "objective", "description", "labels", "sli", "alerting", "plugins", "interval", NULL};
  static const char *const native_keys[] = {"version", "service",   "project", "team", "labels",
                                            "period",  "time_zone", "slos",    NULL};
  static const char *const native_slo_keys[] = {
      "name",   "service",   "objective",  "description", "project",  "team", "labels",
      "period", "time_zone", "min_events", "sli",         "alerting", NULL};
  int rc = 0;
  if (!root || root->kind == NN_YAML_NULL)
    return 0; /* an empty document ("---" at the end) */
  if (root->kind != NN_YAML_MAP)
    return fail(c, root, "expected a map with version, service and slos");
  const struct nn_yaml_node *ver = nn_yaml_map_get(root, "version");
  bool native;
  if (nn_yaml_scalar_eq(ver, "prometheus/v1"))
    native = false;
  else if (nn_yaml_scalar_eq(ver, "nines/v1"))
    native = true;
  else
    return fail(c, ver ? ver : root,
                "version: expected \"prometheus/v1\" (Sloth) or \"nines/v1\" (native)");
  if ((rc = check_keys(c, root, "spec", native ? native_keys : sloth_keys)) < 0)
    return rc;
  if (nn_yaml_map_get(root, "slo_plugins"))
    nn_warn(MOD, "%s:%d: slo_plugins are Sloth Go plugins; nines ignores them", root->file,
            root->line);
  struct nn_slo_spec base = {0};
  if ((rc = get_str(c, root, "service", "spec", !native, &base.service)) < 0 ||
      (rc = get_kv(c, root, "labels", "spec", true, &base.labels)) < 0)
    goto out;
  base.period_kind = NN_SLO_ROLLING;
  base.period_min = 30 * 1440;
  base.min_events = -1;
  if (native && ((rc = get_str(c, root, "project", "spec", false, &base.project)) < 0 ||
                 (rc = get_str(c, root, "team", "spec", false, &base.team)) < 0 ||
                 (rc = parse_period(c, root, &base)) < 0 || (rc = parse_tz(c, root, &base)) < 0))
    goto out;
  const struct nn_yaml_node *slos = nn_yaml_map_get(root, "slos");
  if (!slos || slos->kind != NN_YAML_SEQ || slos->len == 0) {
    rc = fail(c, slos ? slos : root, "slos: expected a non-empty list of SLOs");
    goto out;
  }
  for (size_t i = 0; i < slos->len; i++) {
    const struct nn_yaml_node *n = slos->items[i];
    struct nn_slo_spec s = {0};
    s.period_kind = base.period_kind;
    s.period_min = base.period_min;
    s.tz = base.tz;
    s.tz_set = base.tz_set;
    s.min_events = -1;
    if ((rc = check_keys(c, n, "slo", native ? native_slo_keys : sloth_slo_keys)) < 0)
      goto next;
    if (n->kind != NN_YAML_MAP) {
      rc = fail(c, n, "slos[%zu]: expected a map", i);
      goto next;
    }
    if ((rc = get_str(c, n, "name", "slo", true, &s.name)) < 0 ||
        (rc = get_str(c, n, "description", "slo", false, &s.description)) < 0)
      goto next;
    if (native && (rc = get_str(c, n, "service", "slo", false, &s.service)) < 0)
      goto next;
    if (!s.service) {
      if (!base.service) {
        rc = fail(c, n, "slo \"%s\": no service (set service on the file or the SLO)", s.name);
        goto next;
      }
      s.service = strdup(base.service);
    }
    s.file = strdup(root->file ? root->file : "");
    s.format = strdup(native ? "nines/v1" : "prometheus/v1");
    if (!s.service || !s.file || !s.format || (rc = kv_copy(&s.labels, &base.labels)) < 0) {
      rc = rc < 0 ? rc : NN_ENOMEM;
      goto next;
    }
    if ((rc = parse_objective(c, n, &s)) < 0 ||
        (rc = get_kv(c, n, "labels", "slo", true, &s.labels)) < 0)
      goto next;
    if (native) {
      const struct nn_yaml_node *me = nn_yaml_map_get(n, "min_events");
      if ((rc = get_str(c, n, "project", "slo", false, &s.project)) < 0 ||
          (rc = get_str(c, n, "team", "slo", false, &s.team)) < 0 ||
          (rc = parse_period(c, n, &s)) < 0 || (rc = parse_tz(c, n, &s)) < 0)
        goto next;
      if (me) {
        char *end = NULL;
        long long v = me->kind == NN_YAML_SCALAR ? strtoll(me->scalar, &end, 10) : -1;
        if (!end || *end || v < 0 || v > 1000000000LL) {
          rc = fail(c, me, "min_events: expected a non-negative integer");
          goto next;
        }
        s.min_events = v;
      }
      if (!s.project && base.project && !(s.project = strdup(base.project))) {
        rc = NN_ENOMEM;
        goto next;
      }
      if (!s.team && base.team && !(s.team = strdup(base.team))) {
        rc = NN_ENOMEM;
        goto next;
      }
      rc = parse_native_sli(c, nn_yaml_map_get(n, "sli"), &s);
    } else {
      if (nn_yaml_map_get(n, "plugins"))
        nn_warn(MOD, "%s:%d: SLO plugins are Sloth Go plugins; nines ignores them", n->file,
                n->line);
      rc = parse_sloth_sli(c, nn_yaml_map_get(n, "sli"), &s);
      rc = rc ? rc : parse_sloth_interval(c, nn_yaml_map_get(n, "interval"), &s);
      /* Sloth specs carry owner labels; use them for the SLO page's roll-up. */
      const char *team = NULL;
      for (size_t k = 0; k < s.labels.n; k++)
        if (!strcmp(s.labels.k[k], "team") || (!team && !strcmp(s.labels.k[k], "owner")))
          team = s.labels.v[k];
      if (rc == 0 && team && !(s.team = strdup(team)))
        rc = NN_ENOMEM;
    }
    if (rc < 0 || (rc = parse_alerting(c, nn_yaml_map_get(n, "alerting"), native, &s)) < 0 ||
        (rc = finish_spec(c, n, &s)) < 0)
      goto next;
    for (size_t k = 0; k < set->n; k++) {
      if (!strcmp(set->v[k].id, s.id)) {
        rc = fail(c, n, "slo \"%s\" of service \"%s\" is defined twice (also in %s)", s.name,
                  s.service, set->v[k].file);
        goto next;
      }
    }
    if ((rc = push_spec(set, &s)) == NN_ELIMIT)
      rc = fail(c, n, "too many SLOs (at most %d)", MAX_SLOS);
  next:
    nn__slo_spec_fini(&s);
    if (rc < 0)
      goto out;
  }
out:
  nn__slo_spec_fini(&base);
  return rc;
}

static int load_text(struct ctx *c, const char *name, const char *text, size_t len,
                     struct nn_slo_set *set)
{
  struct nn_yaml_opts yo = {.flags = NN_YAML_MULTI_DOC, .max_bytes = 8u << 20};
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error yerr;
  int rc = name ? nn_yaml_load_string_opts(name, text, len, &yo, &doc, &yerr)
                : nn_yaml_load_file_opts(text, &yo, &doc, &yerr);
  if (rc < 0) {
    if (c->err && c->errlen)
      nn_yaml_error_format(&yerr, c->err, c->errlen);
    return rc == NN_ENOMEM ? rc : (rc == NN_EINVAL ? NN_ECONFIG : rc);
  }
  for (size_t i = 0; i < doc->nroots && rc == 0; i++)
    rc = load_doc(c, doc->roots[i], set);
  if (doc->nroots == 0 && doc->root)
    rc = load_doc(c, doc->root, set);
  nn_yaml_doc_destroy(doc);
  return rc;
}

void nn_slo_set_destroy(struct nn_slo_set *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++)
    nn__slo_spec_fini(&s->v[i]);
  free(s->v);
  free(s);
}

int nn_slo_set_load_string(const char *name, const char *text, size_t len, struct nn_slo_set **out,
                           char *err, size_t errlen)
{
  struct ctx c = {err, errlen};
  *out = NULL;
  struct nn_slo_set *set = calloc(1, sizeof(*set));
  if (!set)
    return NN_ENOMEM;
  int rc = load_text(&c, name ? name : "<string>", text, len, set);
  if (rc < 0) {
    nn_slo_set_destroy(set);
    return rc;
  }
  *out = set;
  return 0;
}

int nn_slo_set_load_files(const struct nn_cfg_strlist *globs, struct nn_slo_set **out, char *err,
                          size_t errlen)
{
  struct ctx c = {err, errlen};
  *out = NULL;
  struct nn_slo_set *set = calloc(1, sizeof(*set));
  if (!set)
    return NN_ENOMEM;
  int rc = 0;
  for (size_t i = 0; globs && i < globs->n && rc == 0; i++) {
    glob_t g;
    int grc = glob(globs->v[i], GLOB_ERR, NULL, &g);
    if (grc == GLOB_NOMATCH) {
      globfree(&g);
      continue;
    }
    if (grc != 0) {
      globfree(&g);
      rc = fail(&c, NULL, "spec_files: cannot expand \"%s\"", globs->v[i]);
      break;
    }
    for (size_t k = 0; k < g.gl_pathc && rc == 0; k++) {
      rc = load_text(&c, NULL, g.gl_pathv[k], 0, set);
      if (rc < 0 && rc != NN_ECONFIG && rc != NN_ENOMEM && err && errlen)
        snprintf(err, errlen, "%s: %s", g.gl_pathv[k], nn_strerror(rc));
    }
    globfree(&g);
  }
  if (rc < 0) {
    nn_slo_set_destroy(set);
    return rc;
  }
  *out = set;
  return 0;
}

size_t nn_slo_set_count(const struct nn_slo_set *s)
{
  return s ? s->n : 0;
}

const char *nn_slo_set_id(const struct nn_slo_set *s, size_t i)
{
  return s && i < s->n ? s->v[i].id : NULL;
}
