/* SPDX-License-Identifier: Apache-2.0 */
/* Logs -> metrics. Series live in an open-addressing table keyed by the xxh3 hash of their
 * label values; one entry holds both the request counters (by status) and the latency
 * histogram of its (project, service, method, endpoint). Per line the cost is one pass of the
 * JSON scanner (json.c; or one regex match) and one table lookup; nothing is allocated after
 * a series exists. */
#include "agent/logmetrics/logmetrics.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "agent/logmetrics/internal.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/metrics.h"

#define OFF(f)      offsetof(struct nn_logmetrics_config, f)
#define MAX_BUCKETS 32
#define MAX_STATUS  8 /* distinct status codes kept per series; others fold into "other" */
#define FIELD_MAX   NN__LM_FIELD_MAX
#define NGROUPS     5

const struct nn_cfg_option nn_logmetrics_config_options[] = {
    {.name = "enabled", .type = NN_CFG_BOOL, .offset = OFF(enabled), .def = "false"},
    {.name = "regex",
     .type = NN_CFG_STR,
     .offset = OFF(regex),
     .help = "PCRE2 with named groups service, endpoint, method, status, duration; empty: JSON"},
    {.name = "service_field", .type = NN_CFG_STR, .offset = OFF(service_field), .def = "service"},
    {.name = "endpoint_field", .type = NN_CFG_STR, .offset = OFF(endpoint_field), .def = "path"},
    {.name = "method_field", .type = NN_CFG_STR, .offset = OFF(method_field), .def = "method"},
    {.name = "status_field", .type = NN_CFG_STR, .offset = OFF(status_field), .def = "status"},
    {.name = "duration_field",
     .type = NN_CFG_STR,
     .offset = OFF(duration_field),
     .def = "duration_ms"},
    {.name = "duration_unit_seconds",
     .type = NN_CFG_DOUBLE,
     .offset = OFF(duration_unit_seconds),
     .def = "0.001",
     .help = "seconds per unit of the duration field"},
    {.name = "project_label", .type = NN_CFG_STR, .offset = OFF(project_label), .def = "namespace"},
    {.name = "service_label", .type = NN_CFG_STR, .offset = OFF(service_label), .def = "container"},
    {.name = "buckets",
     .type = NN_CFG_STRLIST,
     .offset = OFF(buckets),
     .def = "[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]"},
    {.name = "max_series",
     .type = NN_CFG_INT,
     .offset = OFF(max_series),
     .def = "2000",
     .help = "label combinations kept; beyond it endpoints fold into __other__"},
    {.name = "push_interval",
     .type = NN_CFG_DURATION,
     .offset = OFF(push_interval_ms),
     .def = "1s",
     .help = "series changed by lines are sent at most this often, ahead of the agent's scrape "
             "of its own /metrics, with that scrape's labels (0s: by that scrape only)"},
    {0},
};

enum {
  F_SERVICE = NN__LM_SERVICE,
  F_ENDPOINT = NN__LM_ENDPOINT,
  F_METHOD = NN__LM_METHOD,
  F_PROJECT = NN__LM_PROJECT,
  NKEY = NN__LM_NKEY
};

struct series {
  uint64_t hash;
  char key[NKEY][FIELD_MAX];
  char status[MAX_STATUS][8];
  uint64_t count[MAX_STATUS + 1]; /* last slot: statuses beyond MAX_STATUS */
  uint64_t bucket[MAX_BUCKETS + 1];
  double sum;
  uint64_t n;
  bool used;
  bool changed; /* in the changed list */
};

struct nn_logmetrics {
  struct nn_logmetrics_config cfg;
  pcre2_code *re;
  pcre2_match_data *md;
  int group[NGROUPS]; /* numbers of the named groups service..duration, negative: absent */
  double bounds[MAX_BUCKETS];
  char le[MAX_BUCKETS + 1][40]; /* the bounds as rendered, "+Inf" last */
  size_t nbounds;
  struct series *tab;
  size_t cap, nseries, max_series;
  uint64_t observed, matched, overflow;
  uint32_t *changed; /* table slots counted since the last clear, nchanged of them */
  size_t nchanged;
};

struct nn_logmetrics *nn_logmetrics_create(const struct nn_logmetrics_config *cfg, char *err,
                                           size_t errlen)
{
  struct nn_logmetrics *m = calloc(1, sizeof(*m));
  if (!m) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  m->cfg = *cfg;
  m->max_series = cfg->max_series > 0 ? (size_t)cfg->max_series : 2000;
  if (cfg->buckets.n > MAX_BUCKETS) {
    snprintf(err, errlen, "at most %d buckets", MAX_BUCKETS);
    goto fail;
  }
  for (size_t i = 0; i < cfg->buckets.n; i++) {
    char *end;
    double b = strtod(cfg->buckets.v[i], &end);
    if (*end || !(b > 0) || (i && b <= m->bounds[i - 1])) {
      snprintf(err, errlen, "bucket \"%s\" must be a positive number above the previous one",
               cfg->buckets.v[i]);
      goto fail;
    }
    nn_metrics_format_value(b, m->le[m->nbounds], sizeof(m->le[0]));
    m->bounds[m->nbounds++] = b;
  }
  memcpy(m->le[m->nbounds], "+Inf", 5);
  if (cfg->regex && *cfg->regex) {
    int ec;
    PCRE2_SIZE eo;
    m->re = pcre2_compile((PCRE2_SPTR)cfg->regex, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    if (!m->re) {
      PCRE2_UCHAR msg[200];
      pcre2_get_error_message(ec, msg, sizeof(msg));
      snprintf(err, errlen, "regex: %s at offset %zu", (const char *)msg, (size_t)eo);
      goto fail;
    }
    pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE);
    m->md = pcre2_match_data_create_from_pattern(m->re, NULL);
    static const char *const groups[NGROUPS] = {"service", "endpoint", "method", "status",
                                                "duration"};
    for (int g = 0; g < NGROUPS; g++)
      m->group[g] = pcre2_substring_number_from_name(m->re, (PCRE2_SPTR)groups[g]);
  }
  /* The table stays at most half full, so probes stay short. */
  m->cap = 16;
  while (m->cap < m->max_series * 2 + 2)
    m->cap *= 2;
  m->tab = calloc(m->cap, sizeof(*m->tab));
  m->changed = malloc(m->cap * sizeof(*m->changed));
  if (!m->tab || !m->changed || (m->re && !m->md)) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  return m;
fail:
  nn_logmetrics_destroy(m);
  return NULL;
}

void nn_logmetrics_destroy(struct nn_logmetrics *m)
{
  if (!m)
    return;
  if (m->md)
    pcre2_match_data_free(m->md);
  if (m->re)
    pcre2_code_free(m->re);
  free(m->tab);
  free(m->changed);
  free(m);
}

#define copy_field nn__logmetrics_copy_field

/* limit: series allowed in the table; the __other__ fold may go past the cap (the table
 * has room for twice the cap), so folded lines are never lost. */
static struct series *lookup(struct nn_logmetrics *m, char key[NKEY][FIELD_MAX], size_t limit)
{
  uint64_t h = XXH3_64bits(key, sizeof(char[NKEY][FIELD_MAX]));
  size_t mask = m->cap - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    struct series *s = &m->tab[i];
    if (!s->used) {
      if (m->nseries >= limit)
        return NULL;
      s->used = true;
      s->hash = h;
      memcpy(s->key, key, sizeof(s->key));
      m->nseries++;
      return s;
    }
    if (s->hash == h && memcmp(s->key, key, sizeof(s->key)) == 0)
      return s;
  }
}

static bool record(struct nn_logmetrics *m, char key[NKEY][FIELD_MAX], const char *status,
                   double seconds)
{
  struct series *s = lookup(m, key, m->max_series);
  if (!s) {
    /* Over the cap: keep the signal, lose the endpoint's name. */
    m->overflow++;
    snprintf(key[F_ENDPOINT], FIELD_MAX, "__other__");
    s = lookup(m, key, m->cap / 2 + 1);
    if (!s)
      return false;
  }
  size_t k = 0;
  while (k < MAX_STATUS && s->status[k][0] && strcmp(s->status[k], status) != 0)
    k++;
  if (k < MAX_STATUS && !s->status[k][0])
    snprintf(s->status[k], sizeof(s->status[k]), "%.7s", status);
  s->count[k]++;
  if (!s->changed) {
    s->changed = true;
    m->changed[m->nchanged++] = (uint32_t)(s - m->tab);
  }
  if (!isnan(seconds)) {
    size_t b = 0;
    while (b < m->nbounds && seconds > m->bounds[b])
      b++;
    s->bucket[b]++;
    s->sum += seconds;
    s->n++;
  }
  return true;
}

static const char *stream_label(const struct nn_label *l, size_t n, const char *name)
{
  const char *v = name && *name ? nn_labels_get(l, n, name) : NULL;
  return v ? v : "";
}

bool nn_logmetrics_observe(struct nn_logmetrics *m, const struct nn_label *stream, size_t nstream,
                           const char *line, size_t len)
{
  m->observed++;
  struct nn__logmetrics_fields f;
  memset(&f, 0, sizeof(f));
  f.seconds = NAN;
  char(*key)[FIELD_MAX] = f.key;
  char *status = f.status;
  if (m->re) {
    int rc = pcre2_match(m->re, (PCRE2_SPTR)line, len, 0, 0, m->md, NULL);
    if (rc < 0)
      return false;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
    for (int g = 0; g < NGROUPS; g++) {
      int num = m->group[g];
      if (num < 0 || num >= rc || ov[2 * num] == PCRE2_UNSET)
        continue;
      const char *v = line + ov[2 * num];
      size_t vl = ov[2 * num + 1] - ov[2 * num];
      if (g < 3)
        copy_field(key[g == 0 ? F_SERVICE : g == 1 ? F_ENDPOINT : F_METHOD], v, vl);
      else if (g == 3)
        copy_field(status, v, vl < NN__LM_STATUS_MAX ? vl : NN__LM_STATUS_MAX - 1);
      else {
        char num_s[40];
        copy_field(num_s, v, vl < sizeof(num_s) ? vl : sizeof(num_s) - 1);
        f.seconds = strtod(num_s, NULL) * m->cfg.duration_unit_seconds;
      }
    }
  } else if (!nn__logmetrics_json_scan(&m->cfg, line, len, &f)) {
    return false;
  }
  if (!status[0] || !key[F_ENDPOINT][0])
    return false; /* not an access-log line */
  if (!key[F_SERVICE][0]) {
    const char *sv = stream_label(stream, nstream, m->cfg.service_label);
    copy_field(key[F_SERVICE], sv, strlen(sv));
  }
  const char *pj = stream_label(stream, nstream, m->cfg.project_label);
  copy_field(key[F_PROJECT], pj, strlen(pj));
  m->matched++;
  return record(m, key, status, f.seconds);
}

void nn__logmetrics_format_sum(double v, char *buf, size_t len)
{
  if (!isfinite(v) || fabs(v) < 1e-300 || (v == floor(v) && fabs(v) < 1e15)) {
    nn_metrics_format_value(v, buf, len);
    return;
  }
  /* nn_metrics_format_value tries %.1g, %.2g, ... until one reads back as v: ~17 snprintf and
   * strtod for a sum of fractions. Those of 14 digits or fewer cannot read back unless the
   * 17-digit form ends within 11 units of a multiple of 1,000 (half an ulp of a normal double
   * is below 11.2 units of its 17th digit), so otherwise the search starts at 15 digits. */
  char d[40];
  snprintf(d, sizeof(d), "%.16e", v);
  const char *m = d + (d[0] == '-'); /* D.DDDDDDDDDDDDDDDDe+XX */
  int r = (m[15] - '0') * 100 + (m[16] - '0') * 10 + (m[17] - '0');
  for (int prec = r > 11 && r < 989 ? 15 : 1; prec <= 17; prec++) {
    snprintf(buf, len, "%.*g", prec, v);
    if (strtod(buf, NULL) == v)
      return;
  }
}

/* A scrape renders every series, ~15 lines each (2,000 series: 30,000 lines), so lines are
 * put together with memcpy: printf and the bound formatting per line cost ~10 ms a render. */
#define RENDER_LINE_MAX (64 + NKEY * (FIELD_MAX + 16) + 128)

struct line {
  char b[RENDER_LINE_MAX];
  size_t n;
};

static void put(struct line *l, const char *s, size_t n)
{
  memcpy(l->b + l->n, s, n);
  l->n += n;
}

static void puts_(struct line *l, const char *s)
{
  put(l, s, strlen(s));
}

static void put_u64(struct line *l, uint64_t v)
{
  char d[20];
  size_t k = sizeof(d);
  do
    d[--k] = (char)('0' + v % 10);
  while (v /= 10);
  put(l, d + k, sizeof(d) - k);
}

/* name{project="..",service="..",method="..",endpoint=".." : the start of a series' lines. */
static void series_start(struct line *l, const char *name, const struct series *s)
{
  l->n = 0;
  puts_(l, name);
  puts_(l, "{project=\"");
  puts_(l, s->key[F_PROJECT]);
  puts_(l, "\",service=\"");
  puts_(l, s->key[F_SERVICE]);
  puts_(l, "\",method=\"");
  puts_(l, s->key[F_METHOD]);
  puts_(l, "\",endpoint=\"");
  puts_(l, s->key[F_ENDPOINT]);
  put(l, "\"", 1);
}

static int render_counters(const struct series *s, struct nn_buf *out)
{
  struct line l;
  series_start(&l, "nines_log_http_requests_total", s);
  size_t start = l.n;
  int rc = 0;
  for (size_t k = 0; rc == 0 && k <= MAX_STATUS; k++) {
    if (!s->count[k])
      continue;
    l.n = start;
    puts_(&l, ",status=\"");
    puts_(&l, k < MAX_STATUS ? s->status[k] : "other");
    put(&l, "\"} ", 3);
    put_u64(&l, s->count[k]);
    put(&l, "\n", 1);
    rc = nn_buf_append(out, l.b, l.n);
  }
  return rc;
}

static int render_histogram(const struct nn_logmetrics *m, const struct series *s,
                            struct nn_buf *out)
{
  int rc = 0;
  if (!s->n)
    return 0;
  struct line l;
  series_start(&l, "nines_log_http_request_duration_seconds_bucket", s);
  size_t start = l.n;
  uint64_t cum = 0;
  for (size_t k = 0; rc == 0 && k <= m->nbounds; k++) {
    cum += s->bucket[k];
    l.n = start;
    puts_(&l, ",le=\"");
    puts_(&l, m->le[k]);
    put(&l, "\"} ", 3);
    put_u64(&l, cum);
    put(&l, "\n", 1);
    rc = nn_buf_append(out, l.b, l.n);
  }
  char sum[40];
  nn__logmetrics_format_sum(s->sum, sum, sizeof(sum));
  series_start(&l, "nines_log_http_request_duration_seconds_sum", s);
  put(&l, "} ", 2);
  puts_(&l, sum);
  put(&l, "\n", 1);
  if (rc == 0)
    rc = nn_buf_append(out, l.b, l.n);
  series_start(&l, "nines_log_http_request_duration_seconds_count", s);
  put(&l, "} ", 2);
  put_u64(&l, s->n);
  put(&l, "\n", 1);
  if (rc == 0)
    rc = nn_buf_append(out, l.b, l.n);
  return rc;
}

static const char counters_head[] =
    "# HELP nines_log_http_requests_total Requests seen in access logs.\n"
    "# TYPE nines_log_http_requests_total counter\n";
static const char histogram_head[] =
    "# HELP nines_log_http_request_duration_seconds Request latency from access logs.\n"
    "# TYPE nines_log_http_request_duration_seconds histogram\n";

int nn_logmetrics_render(const struct nn_logmetrics *m, struct nn_buf *out)
{
  int rc = nn_buf_appends(out, counters_head);
  for (size_t i = 0; rc == 0 && i < m->cap; i++)
    if (m->tab[i].used)
      rc = render_counters(&m->tab[i], out);
  if (rc == 0)
    rc = nn_buf_appends(out, histogram_head);
  for (size_t i = 0; rc == 0 && i < m->cap; i++)
    if (m->tab[i].used)
      rc = render_histogram(m, &m->tab[i], out);
  if (rc == 0)
    rc = nn_buf_printf(out,
                       "# HELP nines_log_metrics_overflow_total Lines folded into "
                       "endpoint=\"__other__\" by the series cap.\n"
                       "# TYPE nines_log_metrics_overflow_total counter\n"
                       "nines_log_metrics_overflow_total %llu\n",
                       (unsigned long long)m->overflow);
  return rc;
}

size_t nn_logmetrics_changed(const struct nn_logmetrics *m)
{
  return m->nchanged;
}

int nn_logmetrics_render_changed(const struct nn_logmetrics *m, struct nn_buf *out)
{
  if (!m->nchanged)
    return 0;
  int rc = nn_buf_appends(out, counters_head);
  for (size_t i = 0; rc == 0 && i < m->nchanged; i++)
    rc = render_counters(&m->tab[m->changed[i]], out);
  if (rc == 0)
    rc = nn_buf_appends(out, histogram_head);
  for (size_t i = 0; rc == 0 && i < m->nchanged; i++)
    rc = render_histogram(m, &m->tab[m->changed[i]], out);
  return rc;
}

void nn_logmetrics_clear_changed(struct nn_logmetrics *m)
{
  for (size_t i = 0; i < m->nchanged; i++)
    m->tab[m->changed[i]].changed = false;
  m->nchanged = 0;
}

void nn_logmetrics_stats(const struct nn_logmetrics *m, struct nn_logmetrics_stats *out)
{
  out->observed = m->observed;
  out->matched = m->matched;
  out->overflow = m->overflow;
  out->series = m->nseries;
}
