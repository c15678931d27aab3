/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus API v1 and Loki query endpoints. Responses are built in one bounded buffer;
 * values and timestamps are formatted byte for byte as Prometheus formats them. */
#include "aggregator/web/web.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/logstore/logstore.h"
#include "aggregator/promql/promql.h"
#include "aggregator/promql/selector.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/units.h"
#include "common/urlenc.h"

#define MAX_RESPONSE (512u << 20)
#define MAX_POINTS   11000
#define MAX_MATCH    64
/* Prometheus's defaults for an absent start/end on metadata endpoints. */
#define MIN_TIME_MS (INT64_MIN / 2)
#define MAX_TIME_MS (INT64_MAX / 2)

struct nn_web {
  struct nn_web_opts o;
  struct nn_metric *queries, *query_errors, *query_seconds;
};

struct params {
  struct nn_urlenc_param *v;
  size_t n;
};

/* Envelope */

static void reply_error(struct nn_web *w, struct nn_http_req *req, enum nn_promql_errtype t,
                        const char *msg)
{
  int status = 400;
  switch (t) {
  case NN_PROMQL_ERR_EXECUTION: status = 422; break;
  case NN_PROMQL_ERR_TIMEOUT:
  case NN_PROMQL_ERR_CANCELED: status = 503; break;
  case NN_PROMQL_ERR_INTERNAL: status = 500; break;
  default: break;
  }
  nn_metric_inc(w->query_errors);
  struct nn_buf b;
  nn_buf_init(&b, 64 * 1024);
  nn_buf_printf(&b, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":",
                nn_promql_errtype_name(t == NN_PROMQL_ERR_NONE ? NN_PROMQL_ERR_BAD_DATA : t));
  nn_buf_append_json_str(&b, msg, strlen(msg));
  nn_buf_appendc(&b, '}');
  nn_http_respond_buf(req, status, "application/json", &b);
}

static void reply_bad_param(struct nn_web *w, struct nn_http_req *req, const char *param,
                            const char *why)
{
  char msg[600];
  snprintf(msg, sizeof(msg), "invalid parameter \"%s\": %s", param, why);
  reply_error(w, req, NN_PROMQL_ERR_BAD_DATA, msg);
}

/* Prometheus's message for an unparsable time or duration parameter: `cannot parse "v" to a
 * valid timestamp`, wrapped as "Invalid time value for 'name': ..." where Prometheus reads the
 * parameter through parseTimeParam (optional times), so Grafana shows the same text. */
static void reply_bad_time(struct nn_web *w, struct nn_http_req *req, const char *name,
                           const char *v, const char *what, bool wrapped)
{
  char q[260], why[400];
  size_t o = 0;
  for (const char *s = v ? v : ""; *s && o + 3 < sizeof(q); s++) {
    if (*s == '"' || *s == '\\')
      q[o++] = '\\';
    q[o++] = *s;
  }
  q[o] = '\0';
  if (wrapped)
    snprintf(why, sizeof(why), "Invalid time value for '%s': cannot parse \"%s\" to a valid %s",
             name, q, what);
  else
    snprintf(why, sizeof(why), "cannot parse \"%s\" to a valid %s", q, what);
  reply_bad_param(w, req, name, why);
}

/* Starts {"status":"success","data": in b. */
static void begin_success(struct nn_buf *b)
{
  nn_buf_init(b, MAX_RESPONSE);
  nn_buf_appends(b, "{\"status\":\"success\",\"data\":");
}

static void end_success(struct nn_web *w, struct nn_http_req *req, struct nn_buf *b, int rc)
{
  if (rc == 0)
    rc = nn_buf_appendc(b, '}');
  if (rc < 0) {
    nn_buf_fini(b);
    reply_error(w, req, NN_PROMQL_ERR_INTERNAL,
                rc == NN_ETOOBIG ? "response too large; narrow the query" : nn_strerror(rc));
    return;
  }
  nn_http_respond_buf(req, 200, "application/json", b);
}

/* Parameters */

static int get_params(struct nn_web *w, struct nn_http_req *req, struct params *p)
{
  if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0) {
    nn_http_add_header(req, "Allow", "GET, POST");
    nn_http_respond_error(req, 405, "method not allowed");
    return -1;
  }
  int rc = nn_http_req_params(req, &p->v, &p->n);
  if (rc < 0) {
    reply_error(w, req, NN_PROMQL_ERR_BAD_DATA,
                rc == NN_ENOMEM ? "request too large" : "invalid form or query string encoding");
    return -1;
  }
  return 0;
}

static const char *param(const struct params *p, const char *name)
{
  return nn_urlenc_get(p->v, p->n, name);
}

/* Collects every value of a repeated parameter (match[]). */
static size_t param_all(const struct params *p, const char *name, const char **out, size_t max)
{
  size_t k = 0;
  for (size_t i = 0; i < p->n && k < max; i++)
    if (strlen(name) == p->v[i].name_len && memcmp(p->v[i].name, name, p->v[i].name_len) == 0)
      out[k++] = p->v[i].value;
  return k;
}

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int parse_digits(const char **s, int n, int *out)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    if ((*s)[i] < '0' || (*s)[i] > '9')
      return -1;
    v = v * 10 + ((*s)[i] - '0');
  }
  *s += n;
  *out = v;
  return 0;
}

static int parse_rfc3339(const char *s, int64_t *ms)
{
  int y, mo, d, h, mi, sec;
  if (parse_digits(&s, 4, &y) || *s++ != '-' || parse_digits(&s, 2, &mo) || *s++ != '-' ||
      parse_digits(&s, 2, &d) || (*s != 'T' && *s != 't') || !*s++ || parse_digits(&s, 2, &h) ||
      *s++ != ':' || parse_digits(&s, 2, &mi) || *s++ != ':' || parse_digits(&s, 2, &sec))
    return NN_EINVAL;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return NN_EINVAL;
  int64_t frac_ms = 0;
  if (*s == '.') {
    s++;
    int digits = 0;
    int64_t scale = 100;
    while (*s >= '0' && *s <= '9') {
      if (digits < 3)
        frac_ms += (*s - '0') * scale;
      scale /= 10;
      digits++;
      s++;
    }
    if (digits == 0)
      return NN_EINVAL;
  }
  int64_t off = 0;
  if (*s == 'Z' || *s == 'z') {
    s++;
  } else if (*s == '+' || *s == '-') {
    int sign = *s++ == '-' ? -1 : 1, oh, om;
    if (parse_digits(&s, 2, &oh) || *s++ != ':' || parse_digits(&s, 2, &om))
      return NN_EINVAL;
    off = sign * (oh * 3600 + om * 60);
  } else {
    return NN_EINVAL;
  }
  if (*s)
    return NN_EINVAL;
  int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
  *ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - off) * 1000 + frac_ms;
  return 0;
}

int nn_web_parse_time(const char *s, int64_t *ms)
{
  if (!s || !*s)
    return NN_EINVAL;
  char *end;
  double v = strtod(s, &end);
  if (*end == '\0' && end != s) {
    if (!isfinite(v) || fabs(v) > 9.2e15)
      return NN_EINVAL;
    /* Round to milliseconds as Prometheus does (it keeps ns but stores ms). */
    *ms = (int64_t)llround(v * 1000.0);
    return 0;
  }
  return parse_rfc3339(s, ms);
}

int nn_web_parse_duration(const char *s, int64_t *ms)
{
  if (!s || !*s)
    return NN_EINVAL;
  char *end;
  double v = strtod(s, &end);
  if (*end == '\0' && end != s) {
    if (!isfinite(v) || v > 9.2e15 || v < -9.2e15)
      return NN_EINVAL;
    *ms = (int64_t)llround(v * 1000.0);
    return 0;
  }
  return nn_duration_parse(s, strlen(s), ms);
}

int nn_web_write_time(struct nn_buf *out, int64_t ms)
{
  int64_t sec = ms / 1000, rem = ms % 1000;
  if (rem < 0) {
    rem += 1000;
    sec -= 1;
  }
  if (rem == 0)
    return nn_buf_printf(out, "%lld", (long long)sec);
  if (sec == -1 && ms > -1000) /* Go prints -0.5s as "-0.500" */
    return nn_buf_printf(out, "-0.%03lld", (long long)(1000 - rem));
  return nn_buf_printf(out, "%lld.%03lld", (long long)sec, (long long)rem);
}

static int write_labels(struct nn_buf *b, const struct nn_label *ls, size_t n)
{
  int rc = nn_buf_appendc(b, '{');
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (i)
      rc = nn_buf_appendc(b, ',');
    if (rc == 0)
      rc = nn_buf_append_json_str(b, ls[i].name, strlen(ls[i].name));
    if (rc == 0)
      rc = nn_buf_appendc(b, ':');
    if (rc == 0)
      rc = nn_buf_append_json_str(b, ls[i].value, strlen(ls[i].value));
  }
  return rc ? rc : nn_buf_appendc(b, '}');
}

static int write_point(struct nn_buf *b, int64_t t, double v)
{
  char num[40];
  nn_promql_format_float(v, num, sizeof(num));
  int rc = nn_buf_appendc(b, '[');
  if (rc == 0)
    rc = nn_web_write_time(b, t);
  if (rc == 0)
    rc = nn_buf_printf(b, ",\"%s\"]", num);
  return rc;
}

/* Scalar and string results keep Go's plain float64 JSON for their time (float64(t)/1000:
 * 1795326610.5, not .500); only vector and matrix points use the 3-digit form. */
static int write_plain_time(struct nn_buf *b, int64_t t)
{
  char num[400];
  nn_promql_format_float_f((double)t / 1000.0, num, sizeof(num));
  return nn_buf_appends(b, num);
}

static int write_result(struct nn_buf *b, const struct nn_promql_result *r)
{
  int rc;
  switch (r->type) {
  case NN_PROMQL_SCALAR:
    rc = nn_buf_appends(b, "{\"resultType\":\"scalar\",\"result\":[");
    if (rc == 0)
      rc = write_plain_time(b, r->t);
    if (rc == 0) {
      /* Scalars marshal through Go's Scalar.MarshalJSON: value in 'f' layout, never 'e'. */
      char num[400];
      nn_promql_format_float_f(r->scalar, num, sizeof(num));
      rc = nn_buf_printf(b, ",\"%s\"]", num);
    }
    break;
  case NN_PROMQL_STRING:
    rc = nn_buf_appends(b, "{\"resultType\":\"string\",\"result\":[");
    if (rc == 0)
      rc = write_plain_time(b, r->t);
    if (rc == 0)
      rc = nn_buf_appendc(b, ',');
    if (rc == 0)
      rc = nn_buf_append_json_str(b, r->str ? r->str : "", r->str ? strlen(r->str) : 0);
    if (rc == 0)
      rc = nn_buf_appendc(b, ']');
    break;
  case NN_PROMQL_VECTOR:
    rc = nn_buf_appends(b, "{\"resultType\":\"vector\",\"result\":[");
    for (size_t i = 0, k = 0; rc == 0 && i < r->nseries; i++) {
      const struct nn_promql_series *s = &r->series[i];
      if (s->n == 0)
        continue;
      rc = nn_buf_appends(b, k++ ? ",{\"metric\":" : "{\"metric\":");
      if (rc == 0)
        rc = write_labels(b, s->labels, s->nlabels);
      if (rc == 0)
        rc = nn_buf_appends(b, ",\"value\":");
      if (rc == 0)
        rc = write_point(b, s->t[0], s->v[0]);
      if (rc == 0)
        rc = nn_buf_appendc(b, '}');
    }
    if (rc == 0)
      rc = nn_buf_appendc(b, ']');
    break;
  default: /* matrix */
    rc = nn_buf_appends(b, "{\"resultType\":\"matrix\",\"result\":[");
    for (size_t i = 0, k = 0; rc == 0 && i < r->nseries; i++) {
      const struct nn_promql_series *s = &r->series[i];
      if (s->n == 0)
        continue;
      rc = nn_buf_appends(b, k++ ? ",{\"metric\":" : "{\"metric\":");
      if (rc == 0)
        rc = write_labels(b, s->labels, s->nlabels);
      if (rc == 0)
        rc = nn_buf_appends(b, ",\"values\":[");
      for (size_t j = 0; rc == 0 && j < s->n; j++) {
        if (j)
          rc = nn_buf_appendc(b, ',');
        if (rc == 0)
          rc = write_point(b, s->t[j], s->v[j]);
      }
      if (rc == 0)
        rc = nn_buf_appends(b, "]}");
    }
    if (rc == 0)
      rc = nn_buf_appendc(b, ']');
  }
  return rc ? rc : nn_buf_appendc(b, '}');
}

static void query_opts(struct nn_web *w, const struct params *p, struct nn_promql_opts *o,
                       int64_t *timeout_out)
{
  memset(o, 0, sizeof(*o));
  o->lookback_ms = w->o.lookback_ms;
  o->max_samples = w->o.query_max_samples;
  o->timeout_ms = w->o.query_timeout_ms ? w->o.query_timeout_ms : 120000;
  o->prometheus_v2 = w->o.prometheus_v2;
  int64_t t;
  const char *v = param(p, "timeout");
  if (v && nn_web_parse_duration(v, &t) == 0 && t > 0 && t < o->timeout_ms)
    o->timeout_ms = t;
  v = param(p, "lookback_delta");
  if (v && nn_web_parse_duration(v, &t) == 0 && t > 0)
    o->lookback_ms = t;
  *timeout_out = o->timeout_ms;
}

static int parse_query(struct nn_web *w, struct nn_http_req *req, const struct params *p,
                       struct nn_promql_expr **e)
{
  const char *q = param(p, "query");
  if (!q) {
    reply_bad_param(w, req, "query", "parse error: no expression found in input");
    return -1;
  }
  struct nn_promql_error err;
  memset(&err, 0, sizeof(err));
  if (nn_promql_parse(q, strlen(q), e, &err) < 0) {
    reply_bad_param(w, req, "query", err.msg);
    return -1;
  }
  return 0;
}

static void on_query(struct nn_http_req *req, void *ud)
{
  struct nn_web *w = ud;
  struct params p;
  if (get_params(w, req, &p) < 0)
    return;
  int64_t t = now_ms(), timeout;
  const char *ts = param(&p, "time");
  if (ts && nn_web_parse_time(ts, &t) < 0) {
    reply_bad_time(w, req, "time", ts, "timestamp", true);
    return;
  }
  struct nn_promql_expr *e;
  if (parse_query(w, req, &p, &e) < 0)
    return;
  struct nn_promql_opts o;
  query_opts(w, &p, &o, &timeout);
  struct nn_promql_result r;
  struct nn_promql_error err;
  memset(&r, 0, sizeof(r));
  memset(&err, 0, sizeof(err));
  nn_metric_inc(w->queries);
  struct timespec a, z;
  clock_gettime(CLOCK_MONOTONIC, &a);
  int rc = nn_promql_eval_instant(&w->o.querier, e, t, &o, &r, &err);
  clock_gettime(CLOCK_MONOTONIC, &z);
  nn_metric_observe(w->query_seconds,
                    (double)(z.tv_sec - a.tv_sec) + (z.tv_nsec - a.tv_nsec) / 1e9);
  nn_promql_expr_free(e);
  if (rc < 0) {
    reply_error(w, req, err.type, err.msg);
    nn_promql_result_fini(&r);
    return;
  }
  struct nn_buf b;
  begin_success(&b);
  rc = write_result(&b, &r);
  nn_promql_result_fini(&r);
  end_success(w, req, &b, rc);
}

static void on_query_range(struct nn_http_req *req, void *ud)
{
  struct nn_web *w = ud;
  struct params p;
  if (get_params(w, req, &p) < 0)
    return;
  int64_t start, end, step, timeout;
  if (nn_web_parse_time(param(&p, "start"), &start) < 0) {
    reply_bad_time(w, req, "start", param(&p, "start"), "timestamp", false);
    return;
  }
  if (nn_web_parse_time(param(&p, "end"), &end) < 0) {
    reply_bad_time(w, req, "end", param(&p, "end"), "timestamp", false);
    return;
  }
  if (end < start) {
    reply_bad_param(w, req, "end", "end timestamp must not be before start time");
    return;
  }
  if (nn_web_parse_duration(param(&p, "step"), &step) < 0) {
    reply_bad_time(w, req, "step", param(&p, "step"), "duration", false);
    return;
  }
  if (step <= 0) {
    reply_bad_param(w, req, "step",
                    "zero or negative query resolution step widths are not "
                    "accepted. Try a positive integer");
    return;
  }
  if ((end - start) / step > MAX_POINTS) {
    reply_error(w, req, NN_PROMQL_ERR_BAD_DATA,
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing "
                "the query resolution (?step=XX)");
    return;
  }
  struct nn_promql_expr *e;
  if (parse_query(w, req, &p, &e) < 0)
    return;
  enum nn_promql_value_type vt = nn_promql_expr_type(e);
  if (vt != NN_PROMQL_SCALAR && vt != NN_PROMQL_VECTOR) {
    nn_promql_expr_free(e);
    reply_error(w, req, NN_PROMQL_ERR_BAD_DATA,
                vt == NN_PROMQL_MATRIX
                    ? "invalid expression type \"range vector\" for range query, must be "
                      "Scalar or instant Vector"
                    : "invalid expression type \"string\" for range query, must be Scalar "
                      "or instant Vector");
    return;
  }
  struct nn_promql_opts o;
  query_opts(w, &p, &o, &timeout);
  struct nn_promql_result r;
  struct nn_promql_error err;
  memset(&r, 0, sizeof(r));
  memset(&err, 0, sizeof(err));
  nn_metric_inc(w->queries);
  struct timespec a, z;
  clock_gettime(CLOCK_MONOTONIC, &a);
  int rc = nn_promql_eval_range(&w->o.querier, e, start, end, step, &o, &r, &err);
  clock_gettime(CLOCK_MONOTONIC, &z);
  nn_metric_observe(w->query_seconds,
                    (double)(z.tv_sec - a.tv_sec) + (z.tv_nsec - a.tv_nsec) / 1e9);
  nn_promql_expr_free(e);
  if (rc < 0) {
    reply_error(w, req, err.type, err.msg);
    nn_promql_result_fini(&r);
    return;
  }
  r.type = NN_PROMQL_MATRIX; /* range queries always answer a matrix */
  struct nn_buf b;
  begin_success(&b);
  rc = write_result(&b, &r);
  nn_promql_result_fini(&r);
  end_success(w, req, &b, rc);
}

/* Metadata endpoints */

static int time_range(struct nn_web *w, struct nn_http_req *req, const struct params *p,
                      int64_t *start, int64_t *end)
{
  *start = MIN_TIME_MS;
  *end = MAX_TIME_MS;
  const char *s = param(p, "start"), *e = param(p, "end");
  if (s && nn_web_parse_time(s, start) < 0) {
    reply_bad_time(w, req, "start", s, "timestamp", true);
    return -1;
  }
  if (e && nn_web_parse_time(e, end) < 0) {
    reply_bad_time(w, req, "end", e, "timestamp", true);
    return -1;
  }
  return 0;
}

struct selectors {
  struct nn_promql_expr *exprs[MAX_MATCH];
  const struct nn_matcher *ms[MAX_MATCH];
  size_t nms[MAX_MATCH];
  size_t n;
};

static void selectors_fini(struct selectors *s)
{
  for (size_t i = 0; i < s->n; i++)
    nn_promql_expr_free(s->exprs[i]);
  s->n = 0;
}

static int parse_matches(struct nn_web *w, struct nn_http_req *req, const struct params *p,
                         struct selectors *s)
{
  const char *vals[MAX_MATCH + 1];
  size_t n = param_all(p, "match[]", vals, MAX_MATCH + 1);
  s->n = 0;
  if (n > MAX_MATCH) {
    reply_bad_param(w, req, "match[]", "more than 64 selectors");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    struct nn_promql_error err;
    memset(&err, 0, sizeof(err));
    if (nn_promql_parse_selector(vals[i], strlen(vals[i]), &s->exprs[s->n], &s->ms[s->n],
                                 &s->nms[s->n], &err) < 0) {
      selectors_fini(s);
      reply_bad_param(w, req, "match[]", err.msg);
      return -1;
    }
    s->n++;
  }
  return 0;
}

static int limit_param(struct nn_web *w, struct nn_http_req *req, const struct params *p,
                       size_t *limit)
{
  *limit = 0;
  const char *v = param(p, "limit");
  if (!v || !*v)
    return 0;
  char *end;
  long long l = strtoll(v, &end, 10);
  if (*end || l < 0) {
    reply_bad_param(w, req, "limit", "must be a non-negative integer");
    return -1;
  }
  *limit = (size_t)l;
  return 0;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Merges several sorted string lists into one sorted, unique list in out (which owns the
 * strings afterwards). */
static int merge_lists(struct nn_strlist *lists, size_t n, struct nn_strlist *out)
{
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += lists[i].n;
  out->v = malloc((total ? total : 1) * sizeof(char *));
  out->n = 0;
  if (!out->v)
    return NN_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < lists[i].n; j++)
      out->v[out->n++] = lists[i].v[j];
    free(lists[i].v);
    lists[i].v = NULL;
    lists[i].n = 0;
  }
  qsort(out->v, out->n, sizeof(char *), cmp_str);
  size_t k = 0;
  for (size_t i = 0; i < out->n; i++) {
    if (k && strcmp(out->v[k - 1], out->v[i]) == 0)
      free(out->v[i]);
    else
      out->v[k++] = out->v[i];
  }
  out->n = k;
  return 0;
}

static void reply_strlist(struct nn_web *w, struct nn_http_req *req, const struct nn_strlist *l,
                          size_t limit)
{
  struct nn_buf b;
  begin_success(&b);
  int rc = nn_buf_appendc(&b, '[');
  size_t n = limit && limit < l->n ? limit : l->n;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (i)
      rc = nn_buf_appendc(&b, ',');
    if (rc == 0)
      rc = nn_buf_append_json_str(&b, l->v[i], strlen(l->v[i]));
  }
  if (rc == 0)
    rc = nn_buf_appendc(&b, ']');
  end_success(w, req, &b, rc);
}

/* /api/v1/labels and /api/v1/label/<name>/values share everything but the call. */
static void labels_or_values(struct nn_web *w, struct nn_http_req *req, const char *name)
{
  struct params p;
  if (get_params(w, req, &p) < 0)
    return;
  int64_t start, end;
  size_t limit;
  struct selectors sel;
  if (time_range(w, req, &p, &start, &end) < 0 || limit_param(w, req, &p, &limit) < 0 ||
      parse_matches(w, req, &p, &sel) < 0)
    return;
  struct nn_strlist lists[MAX_MATCH];
  size_t nl = sel.n ? sel.n : 1;
  memset(lists, 0, sizeof(lists));
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < nl; i++) {
    const struct nn_matcher *ms = sel.n ? sel.ms[i] : NULL;
    size_t nms = sel.n ? sel.nms[i] : 0;
    rc = name ? w->o.querier.label_values(w->o.querier.ctx, name, ms, nms, start, end, &lists[i])
              : w->o.querier.label_names(w->o.querier.ctx, ms, nms, start, end, &lists[i]);
  }
  selectors_fini(&sel);
  struct nn_strlist all = {0};
  if (rc == 0)
    rc = merge_lists(lists, nl, &all);
  for (size_t i = 0; i < nl; i++)
    nn_strlist_free(&lists[i]);
  if (rc < 0) {
    nn_strlist_free(&all);
    reply_error(w, req, NN_PROMQL_ERR_INTERNAL, nn_strerror(rc));
    return;
  }
  reply_strlist(w, req, &all, limit);
  nn_strlist_free(&all);
}

static void on_labels(struct nn_http_req *req, void *ud)
{
  labels_or_values(ud, req, NULL);
}

static void on_label_values(struct nn_http_req *req, void *ud)
{
  struct nn_web *w = ud;
  /* /api/v1/label/<name>/values */
  const char *rest = req->path + strlen("/api/v1/label/");
  const char *slash = strchr(rest, '/');
  if (!slash || strcmp(slash, "/values") != 0 || slash == rest) {
    nn_http_respond_error(req, 404, "404 page not found");
    return;
  }
  char name[256];
  size_t n = (size_t)(slash - rest);
  if (n >= sizeof(name) || !nn_label_name_valid(rest, n)) {
    char msg[300];
    snprintf(msg, sizeof(msg), "invalid label name: \"%.*s\"", (int)(n < 200 ? n : 200), rest);
    reply_error(w, req, NN_PROMQL_ERR_BAD_DATA, msg);
    return;
  }
  memcpy(name, rest, n);
  name[n] = '\0';
  labels_or_values(w, req, name);
}

static void on_series(struct nn_http_req *req, void *ud)
{
  struct nn_web *w = ud;
  struct params p;
  if (get_params(w, req, &p) < 0)
    return;
  int64_t start, end;
  size_t limit;
  struct selectors sel;
  if (time_range(w, req, &p, &start, &end) < 0 || limit_param(w, req, &p, &limit) < 0 ||
      parse_matches(w, req, &p, &sel) < 0)
    return;
  if (sel.n == 0) {
    reply_error(w, req, NN_PROMQL_ERR_BAD_DATA, "no match[] parameter provided");
    return;
  }
  struct nn_buf b;
  begin_success(&b);
  int rc = nn_buf_appendc(&b, '[');
  size_t written = 0;
  struct nn_series_set sets[MAX_MATCH];
  size_t nsets = 0;
  struct nn_select_hints h = {.mint = start,
                              .maxt = end,
                              .max_samples =
                                  w->o.query_max_samples ? w->o.query_max_samples : 50000000};
  for (size_t i = 0; rc == 0 && i < sel.n; i++) {
    memset(&sets[i], 0, sizeof(sets[i]));
    rc = w->o.querier.select(w->o.querier.ctx, sel.ms[i], sel.nms[i], &h, &sets[i]);
    if (rc == 0)
      nsets++;
  }
  /* Each set is sorted; emit the union in order, skipping duplicates across sets. */
  size_t pos[MAX_MATCH] = {0};
  while (rc == 0 && (!limit || written < limit)) {
    const struct nn_series *best = NULL;
    for (size_t i = 0; i < nsets; i++) {
      while (pos[i] < sets[i].n && sets[i].series[pos[i]].n == 0 && start != MIN_TIME_MS)
        pos[i]++;
      if (pos[i] < sets[i].n) {
        const struct nn_series *s = &sets[i].series[pos[i]];
        if (!best || nn_labels_cmp(s->labels, s->nlabels, best->labels, best->nlabels) < 0)
          best = s;
      }
    }
    if (!best)
      break;
    if (written++)
      rc = nn_buf_appendc(&b, ',');
    if (rc == 0)
      rc = write_labels(&b, best->labels, best->nlabels);
    for (size_t i = 0; i < nsets; i++)
      if (pos[i] < sets[i].n &&
          nn_labels_cmp(sets[i].series[pos[i]].labels, sets[i].series[pos[i]].nlabels, best->labels,
                        best->nlabels) == 0 &&
          &sets[i].series[pos[i]] != best)
        pos[i]++;
    for (size_t i = 0; i < nsets; i++)
      if (pos[i] < sets[i].n && &sets[i].series[pos[i]] == best)
        pos[i]++;
  }
  for (size_t i = 0; i < nsets; i++)
    if (sets[i].release)
      sets[i].release(&sets[i]);
  selectors_fini(&sel);
  if (rc == 0)
    rc = nn_buf_appendc(&b, ']');
  end_success(w, req, &b, rc);
}

static void on_constant(struct nn_http_req *req, void *ud)
{
  const char *body = ud;
  nn_http_respond(req, 200, "application/json", body, strlen(body));
}

/* Prometheus's strconv.Atoi: an optional sign and decimal digits only. */
static bool atoi_param(const char *s, long *out)
{
  const char *d = s + (*s == '+' || *s == '-');
  if (!*d || strspn(d, "0123456789") != strlen(d) || strlen(d) > 18)
    return false;
  *out = strtol(s, NULL, 10);
  return true;
}

/* /api/v1/metadata: limit, limit_per_metric and metric as Prometheus reads them; with
 * multi-tenancy and X-Scope-OrgID, only that tenant's entries. */
static void on_metadata(struct nn_http_req *req, void *ud)
{
  struct nn_web *w = ud;
  struct params p;
  if (get_params(w, req, &p) < 0)
    return;
  long limit = -1, per_metric = -1;
  const char *v = param(&p, "limit");
  if (v && *v && !atoi_param(v, &limit)) {
    reply_error(w, req, NN_PROMQL_ERR_BAD_DATA, "limit must be a number");
    return;
  }
  v = param(&p, "limit_per_metric");
  if (v && *v && !atoi_param(v, &per_metric)) {
    reply_error(w, req, NN_PROMQL_ERR_BAD_DATA, "limit_per_metric must be a number");
    return;
  }
  const char *metric = param(&p, "metric");
  size_t tl;
  const char *th = w->o.multi_tenancy ? nn_http_req_header(req, "x-scope-orgid", &tl) : NULL;
  char tenant[151];
  if (th)
    snprintf(tenant, sizeof(tenant), "%.*s", (int)(tl < 150 ? tl : 150), th);
  struct nn_buf b;
  begin_success(&b);
  int rc = w->o.metadata
               ? nn_metadata_json(w->o.metadata, th ? tenant : NULL,
                                  metric && *metric ? metric : NULL, limit, per_metric, &b)
               : nn_buf_appends(&b, "{}");
  end_success(w, req, &b, rc);
}

static void on_rules_or_alerts(struct nn_web *w, struct nn_http_req *req, nn_web_json_fn fn,
                               void *ud, const char *empty)
{
  struct nn_buf b;
  begin_success(&b);
  int rc = fn ? fn(ud, &b) : nn_buf_appends(&b, empty);
  end_success(w, req, &b, rc);
}

static void on_rules(struct nn_http_req *req, void *ud)
{
  struct nn_web *w = ud;
  on_rules_or_alerts(w, req, w->o.rules_json, w->o.rules_ud, "{\"groups\":[]}");
}

static void on_alerts(struct nn_http_req *req, void *ud)
{
  struct nn_web *w = ud;
  on_rules_or_alerts(w, req, w->o.alerts_json, w->o.alerts_ud, "{\"alerts\":[]}");
}

/* Loki query API */

/* Loki times are bounded to half of int64's range (about 1824-2116), so that a default
 * start (end minus hours) or a `since` can be subtracted without overflow. */
#define LOKI_MAX_NS (INT64_MAX / 2)

static int parse_loki_time(const char *s, int64_t dflt, int64_t *ns)
{
  if (!s || !*s) {
    *ns = dflt;
    return 0;
  }
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (*end == '\0' && end != s) {
    if (errno == ERANGE)
      return NN_EINVAL;
    /* Loki accepts ns integers, or seconds when the number is small enough. */
    *ns = v > -10000000000LL && v < 10000000000LL ? (int64_t)v * 1000000000LL : (int64_t)v;
  } else {
    int64_t ms;
    if (nn_web_parse_time(s, &ms) < 0 || ms > LOKI_MAX_NS / 1000000 || ms < -LOKI_MAX_NS / 1000000)
      return NN_EINVAL;
    *ns = ms * 1000000;
  }
  return *ns > LOKI_MAX_NS || *ns < -LOKI_MAX_NS ? NN_EINVAL : 0;
}

/* `since` (a duration before end) when start is not given; a bad one is an error. */
static int loki_since(const struct params *p, int64_t end, int64_t *start)
{
  const char *since = param(p, "since");
  int64_t ms;
  if (!since || param(p, "start"))
    return 0;
  if (nn_web_parse_duration(since, &ms) < 0 || ms < 0 || ms > LOKI_MAX_NS / 1000000)
    return NN_EINVAL;
  *start = end - ms * 1000000;
  return 0;
}

static void loki_error(struct nn_http_req *req, int status, const char *msg)
{
  nn_http_respond_error(req, status, msg);
}

/* The X-Scope-OrgID tenant into buf, or NULL for the default tenant. */
static const char *loki_tenant(struct nn_http_req *req, char *buf, size_t len)
{
  size_t tl;
  const char *tenant = nn_http_req_header(req, "x-scope-orgid", &tl);
  if (!tenant)
    return NULL;
  snprintf(buf, len, "%.*s", (int)(tl < 150 ? tl : 150), tenant);
  return buf;
}

/* step as Loki reads it: float seconds or a duration; absent, Loki's default of one point
 * per 1/250 of the range, at least 1 s. */
static int loki_step(const char *v, int64_t start, int64_t end, int64_t *step)
{
  if (!v || !*v) {
    double s = floor(((double)end - (double)start) / 250e9);
    *step = s > 1 && s < 1e9 ? (int64_t)s * 1000000000LL : 1000000000LL;
    return 0;
  }
  char *e;
  double d = strtod(v, &e);
  if (*e == '\0' && e != v) {
    if (!(d > 0 && d < 1e9))
      return NN_EINVAL;
    *step = (int64_t)(d * 1e9);
    return *step > 0 ? 0 : NN_EINVAL;
  }
  int64_t ms;
  if (nn_web_parse_duration(v, &ms) < 0 || ms <= 0)
    return NN_EINVAL;
  *step = ms * 1000000;
  return 0;
}

static void reply_json_buf(struct nn_http_req *req, struct nn_buf *b, int rc, const char *toobig)
{
  if (rc < 0) {
    nn_buf_fini(b);
    loki_error(req, 500, toobig);
    return;
  }
  nn_http_respond_buf(req, 200, "application/json", b);
}

/* A metric query over [start, end] at step (instant: at start), answered as Loki does. */
static void loki_metric(struct nn_web *w, struct nn_http_req *req, const char *q, int64_t start,
                        int64_t end, int64_t step, bool instant)
{
  char tbuf[160], err[512];
  struct nn_logstore_mresult r;
  int rc = nn_logstore_metric_query(w->o.logs, loki_tenant(req, tbuf, sizeof(tbuf)), q, start, end,
                                    step, instant, &r, err, sizeof(err));
  if (rc < 0) {
    nn_logstore_mresult_fini(&r);
    loki_error(req, rc == NN_EINVAL || rc == NN_ELIMIT ? 400 : 500, err);
    return;
  }
  struct nn_buf b;
  nn_buf_init(&b, MAX_RESPONSE);
  rc = nn_logstore_mresult_write_json(&r, &b);
  nn_logstore_mresult_fini(&r);
  reply_json_buf(req, &b, rc, "response too large; raise the step or narrow the query");
}

/* A log query over [start, end) with limit and direction from p. */
static void loki_logs(struct nn_web *w, struct nn_http_req *req, const struct params *p,
                      const char *q, int64_t start, int64_t end)
{
  size_t limit = 100;
  const char *l = param(p, "limit");
  if (l) {
    char *e;
    long long v = strtoll(l, &e, 10);
    if (*e || v < 0) {
      loki_error(req, 400, "invalid limit: must be a non-negative integer");
      return;
    }
    limit = (size_t)v;
  }
  const char *dir = param(p, "direction");
  enum nn_logstore_direction d =
      dir && strcmp(dir, "forward") == 0 ? NN_LOGSTORE_FORWARD : NN_LOGSTORE_BACKWARD;
  char tbuf[160];
  const char *tenant = loki_tenant(req, tbuf, sizeof(tbuf));
  struct nn_logstore_result r;
  char err[512];
  int rc = nn_logstore_query(w->o.logs, tenant, q, start, end, d, limit, &r, err, sizeof(err));
  if (rc < 0) {
    nn_logstore_result_fini(&r);
    loki_error(req, rc == NN_EINVAL ? 400 : 500, err);
    return;
  }
  struct nn_buf b;
  nn_buf_init(&b, MAX_RESPONSE);
  rc = nn_logstore_result_write_json(&r, 0, &b);
  nn_logstore_result_fini(&r);
  reply_json_buf(req, &b, rc, "response too large; add a limit");
}

#define LOKI_HOUR_NS (3600LL * 1000000000)

/* The start of every Loki handler: reads the parameters and answers 503 while the log store
 * is off; then, with a range (start != NULL), reads [start, end) as Loki does: end defaults to
 * now, start to end - since, else end - dflt_ns. On an error it has answered; returns -1. */
static int loki_begin(struct nn_web *w, struct nn_http_req *req, struct params *p, int64_t dflt_ns,
                      int64_t *start, int64_t *end)
{
  if (get_params(w, req, p) < 0)
    return -1;
  if (!w->o.logs) {
    loki_error(req, 503, "the log store is not enabled");
    return -1;
  }
  if (!start)
    return 0;
  if (parse_loki_time(param(p, "end"), now_ms() * 1000000, end) < 0 ||
      parse_loki_time(param(p, "start"), *end - dflt_ns, start) < 0) {
    loki_error(req, 400, "invalid start or end: use ns integers, Unix seconds or RFC3339");
    return -1;
  }
  if (loki_since(p, *end, start) < 0) {
    loki_error(req, 400, "invalid since: use a duration such as 1h");
    return -1;
  }
  return 0;
}

static void on_loki_query_range(struct nn_http_req *req, void *ud)
{
  struct nn_web *w = ud;
  struct params p;
  int64_t start, end;
  if (loki_begin(w, req, &p, LOKI_HOUR_NS, &start, &end) < 0)
    return;
  const char *q = param(&p, "query");
  if (!q) {
    loki_error(req, 400, "query parameter is required");
    return;
  }
  if (nn_logstore_is_log_query(q)) {
    loki_logs(w, req, &p, q, start, end);
    return;
  }
  int64_t step;
  if (loki_step(param(&p, "step"), start, end, &step) < 0) {
    loki_error(req, 400, "invalid step: use a positive number of seconds or a duration such as 1m");
    return;
  }
  loki_metric(w, req, q, start, end, step, false);
}

/* /loki/api/v1/query: a metric query at `time` (default now) answers a vector; a log query
 * answers the `limit` entries of the hour up to and including `time`. */
static void on_loki_query(struct nn_http_req *req, void *ud)
{
  struct nn_web *w = ud;
  struct params p;
  if (loki_begin(w, req, &p, 0, NULL, NULL) < 0)
    return;
  int64_t t;
  if (parse_loki_time(param(&p, "time"), now_ms() * 1000000, &t) < 0) {
    loki_error(req, 400, "invalid time: use ns integers, Unix seconds or RFC3339");
    return;
  }
  const char *q = param(&p, "query");
  if (!q) {
    loki_error(req, 400, "query parameter is required");
    return;
  }
  if (t > INT64_MAX / 2 || t < INT64_MIN / 2) {
    loki_error(req, 400, "invalid time: out of range");
    return;
  }
  if (nn_logstore_is_log_query(q))
    loki_logs(w, req, &p, q, t - LOKI_HOUR_NS, t + 1);
  else
    loki_metric(w, req, q, t, t, 1, true);
}

static void loki_labels(struct nn_web *w, struct nn_http_req *req, const char *name)
{
  struct params p;
  int64_t start, end;
  if (loki_begin(w, req, &p, 6 * LOKI_HOUR_NS, &start, &end) < 0)
    return;
  struct nn_strlist l = {0};
  char err[512], tbuf[160];
  const char *sel = param(&p, "query");
  const char *tenant = loki_tenant(req, tbuf, sizeof(tbuf));
  int rc = name ? nn_logstore_label_values(w->o.logs, tenant, name, sel, start, end, &l, err,
                                           sizeof(err))
                : nn_logstore_label_names(w->o.logs, tenant, sel, start, end, &l, err, sizeof(err));
  if (rc < 0) {
    nn_strlist_free(&l);
    loki_error(req, rc == NN_EINVAL ? 400 : 500, err);
    return;
  }
  reply_strlist(w, req, &l, 0);
  nn_strlist_free(&l);
}

static void on_loki_labels(struct nn_http_req *req, void *ud)
{
  loki_labels(ud, req, NULL);
}

static void on_loki_label_values(struct nn_http_req *req, void *ud)
{
  const char *rest = req->path + strlen("/loki/api/v1/label/");
  const char *slash = strchr(rest, '/');
  char name[256];
  size_t n = slash ? (size_t)(slash - rest) : 0;
  if (!slash || strcmp(slash, "/values") != 0 || n == 0 || n >= sizeof(name)) {
    nn_http_respond_error(req, 404, "404 page not found");
    return;
  }
  memcpy(name, rest, n);
  name[n] = '\0';
  loki_labels(ud, req, name);
}

static void on_loki_series(struct nn_http_req *req, void *ud)
{
  struct nn_web *w = ud;
  struct params p;
  int64_t start, end;
  if (loki_begin(w, req, &p, LOKI_HOUR_NS, &start, &end) < 0)
    return;
  /* match[] as Prometheus spells it, and Loki's older "match". */
  const char *sels[MAX_MATCH + 1];
  size_t n = param_all(&p, "match[]", sels, MAX_MATCH + 1);
  n += param_all(&p, "match", sels + n, MAX_MATCH + 1 - n);
  if (n == 0) {
    loki_error(req, 400,
               "match[] is required: give at least one stream selector, e.g. "
               "match[]={job=\"varlogs\"}");
    return;
  }
  if (n > MAX_MATCH) {
    loki_error(req, 400, "too many match[] parameters (at most 64)");
    return;
  }
  char tbuf[160], err[512];
  struct nn_logstore_result r;
  int rc = nn_logstore_series(w->o.logs, loki_tenant(req, tbuf, sizeof(tbuf)), sels, n, start, end,
                              &r, err, sizeof(err));
  if (rc < 0) {
    nn_logstore_result_fini(&r);
    loki_error(req, rc == NN_EINVAL ? 400 : 500, err);
    return;
  }
  struct nn_buf b;
  nn_buf_init(&b, MAX_RESPONSE);
  rc = nn_logstore_series_write_json(&r, &b);
  nn_logstore_result_fini(&r);
  if (rc < 0) {
    nn_buf_fini(&b);
    loki_error(req, 500, "response too large; narrow the selectors or time range");
    return;
  }
  nn_http_respond_buf(req, 200, "application/json", &b);
}

static void on_loki_index_stats(struct nn_http_req *req, void *ud)
{
  struct nn_web *w = ud;
  struct params p;
  int64_t start, end;
  if (loki_begin(w, req, &p, LOKI_HOUR_NS, &start, &end) < 0)
    return;
  const char *q = param(&p, "query");
  if (!q) {
    loki_error(req, 400, "query parameter is required");
    return;
  }
  char tbuf[160], err[512];
  struct nn_logstore_index_stats st;
  int rc = nn_logstore_index_stats(w->o.logs, loki_tenant(req, tbuf, sizeof(tbuf)), q, start, end,
                                   &st, err, sizeof(err));
  if (rc < 0) {
    loki_error(req, rc == NN_EINVAL ? 400 : 500, err);
    return;
  }
  struct nn_buf b;
  nn_buf_init(&b, 4096);
  /* Loki answers this endpoint without the status/data envelope. */
  nn_buf_printf(&b, "{\"streams\":%llu,\"chunks\":%llu,\"bytes\":%llu,\"entries\":%llu}",
                (unsigned long long)st.streams, (unsigned long long)st.chunks,
                (unsigned long long)st.bytes, (unsigned long long)st.entries);
  nn_http_respond_buf(req, 200, "application/json", &b);
}

static const char buildinfo[] =
    "{\"status\":\"success\",\"data\":{\"version\":\"2.42.0\",\"revision\":\"nines-" NN_VERSION
    "\",\"branch\":\"main\",\"buildUser\":\"nines\",\"buildDate\":\"\",\"goVersion\":\"none\"}}";
static const char empty_list[] = "{\"status\":\"success\",\"data\":[]}";
static const char empty_targets[] =
    "{\"status\":\"success\",\"data\":{\"activeTargets\":[],\"droppedTargets\":[]}}";

struct nn_web *nn_web_create(const struct nn_web_opts *opts, struct nn_metrics *metrics,
                             struct nn_http_server *srv)
{
  struct nn_web *w = calloc(1, sizeof(*w));
  if (!w)
    return NULL;
  w->o = *opts;
  static const double bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60};
  w->queries =
      nn_metrics_counter(metrics, "nines_promql_queries_total", "PromQL queries run.", NULL);
  w->query_errors = nn_metrics_counter(metrics, "nines_api_errors_total",
                                       "API requests answered with an error.", NULL);
  w->query_seconds = nn_metrics_histogram(metrics, "nines_promql_query_duration_seconds",
                                          "PromQL evaluation time.", NULL, bounds, 10);
  struct {
    const char *path;
    unsigned flags;
    nn_http_handler_fn fn;
    void *ud;
  } routes[] = {
      {"/api/v1/query", 0, on_query, w},
      {"/api/v1/query_range", 0, on_query_range, w},
      {"/api/v1/series", 0, on_series, w},
      {"/api/v1/labels", 0, on_labels, w},
      {"/api/v1/label/", NN_HTTP_ROUTE_PREFIX, on_label_values, w},
      {"/api/v1/metadata", 0, on_metadata, w},
      {"/api/v1/status/buildinfo", 0, on_constant, (void *)buildinfo},
      {"/api/v1/query_exemplars", 0, on_constant, (void *)empty_list},
      {"/api/v1/targets", 0, on_constant, (void *)empty_targets},
      {"/api/v1/rules", 0, on_rules, w},
      {"/api/v1/alerts", 0, on_alerts, w},
      {"/loki/api/v1/query", 0, on_loki_query, w},
      {"/loki/api/v1/query_range", 0, on_loki_query_range, w},
      {"/loki/api/v1/labels", 0, on_loki_labels, w},
      {"/loki/api/v1/label/", NN_HTTP_ROUTE_PREFIX, on_loki_label_values, w},
      {"/loki/api/v1/series", 0, on_loki_series, w},
      {"/loki/api/v1/index/stats", 0, on_loki_index_stats, w},
  };
  for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
    if (nn_http_server_route(srv, routes[i].path, routes[i].flags, routes[i].fn, routes[i].ud) <
        0) {
      nn_web_destroy(w);
      return NULL;
    }
  }
  return w;
}

void nn_web_destroy(struct nn_web *w)
{
  free(w);
}
