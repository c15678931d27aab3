/* SPDX-License-Identifier: Apache-2.0 */
/* The Alertmanager client. Each alert is encoded to JSON once and shared (refcounted) by
 * the queues of every Alertmanager; each queue is a bounded ring that drops its oldest
 * entries when full, and sends one batch at a time. A failed batch is dropped, not retried:
 * the rules engine re-sends every active alert on its resend cadence anyway. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "aggregator/notifier/notifier.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/metrics.h"

#define MOD "notifier"

/* A JSON-encoded alert shared by the queues. */
struct item {
  unsigned refs;
  size_t len;
  char json[];
};

struct am {
  struct nn_notifier *n;
  char *url; /* as configured */
  char *post_url;
  int64_t timeout_ms;
  struct item **ring;
  size_t cap, head, len;
  bool busy;
  size_t inflight; /* alerts in the batch in flight */
  struct nn_buf body;
  uint64_t started_ns;
  struct nn_notifier_am_stats st;
  struct nn_metric *m_sent, *m_errors, *m_latency;
};

struct nn_notifier {
  uv_loop_t *loop;
  struct nn_http_client *http;
  struct am *ams;
  size_t nams;
  size_t batch;
  int64_t drain_ms;
  struct nn_label *ext;
  size_t next;
  struct nn_metric *m_dropped;
  bool stopping, done_called;
  void (*on_done)(void *ud);
  void *done_ud;
  uv_timer_t *timer; /* drain deadline and deferred on_done; freed in its close callback */
  uint64_t drain_deadline;
};

#define OFF(f) offsetof(struct nn_notifier_config, f)
static const struct nn_cfg_option am_options[] = {
    {.name = "url",
     .type = NN_CFG_STR,
     .offset = offsetof(struct nn_notifier_am_config, url),
     .flags = NN_CFG_REQUIRED,
     .help = "Alertmanager base URL, e.g. http://alertmanager:9093 (/api/v2/alerts is added)."},
    {.name = "timeout",
     .type = NN_CFG_DURATION,
     .offset = offsetof(struct nn_notifier_am_config, timeout_ms),
     .def = "10s",
     .help = "Timeout of one POST."},
    {.name = NULL},
};

const struct nn_cfg_option nn_notifier_config_options[] = {
    {.name = "alertmanagers",
     .type = NN_CFG_LIST,
     .offset = OFF(alertmanagers),
     .sub = am_options,
     .elem_size = sizeof(struct nn_notifier_am_config),
     .help = "Alertmanagers; every alert is sent to each of them."},
    {.name = "queue_capacity",
     .type = NN_CFG_INT,
     .offset = OFF(queue_capacity),
     .def = "10000",
     .help = "Alerts queued per Alertmanager; the oldest are dropped beyond it."},
    {.name = "batch_size",
     .type = NN_CFG_INT,
     .offset = OFF(batch_size),
     .def = "256",
     .help = "Maximum alerts per POST."},
    {.name = "drain_timeout",
     .type = NN_CFG_DURATION,
     .offset = OFF(drain_timeout_ms),
     .def = "10s",
     .help = "How long shutdown waits for queued alerts to be sent."},
    {.name = NULL},
};

size_t nn_notifier_format_time(int64_t ms, char *buf, size_t len)
{
  int64_t sec = ms / 1000, frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    sec--;
  }
  time_t t = (time_t)sec;
  struct tm tm;
  gmtime_r(&t, &tm);
  char base[48];
  strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
  if (frac == 0)
    return (size_t)snprintf(buf, len, "%sZ", base);
  char fr[8];
  snprintf(fr, sizeof(fr), "%03d", (int)frac);
  size_t n = strlen(fr);
  while (n > 0 && fr[n - 1] == '0')
    fr[--n] = 0;
  return (size_t)snprintf(buf, len, "%s.%sZ", base, fr);
}

static void item_unref(struct item *it)
{
  if (it && --it->refs == 0)
    free(it);
}

static int cmp_label(const void *a, const void *b)
{
  return strcmp(((const struct nn_label *)a)->name, ((const struct nn_label *)b)->name);
}

static int put_labels(struct nn_buf *b, const struct nn_label *v, size_t n)
{
  int rc = nn_buf_appendc(b, '{');
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (i)
      rc = nn_buf_appendc(b, ',');
    if (rc == 0)
      rc = nn_buf_append_json_str(b, v[i].name, strlen(v[i].name));
    if (rc == 0)
      rc = nn_buf_appendc(b, ':');
    if (rc == 0)
      rc = nn_buf_append_json_str(b, v[i].value, strlen(v[i].value));
  }
  return rc < 0 ? rc : nn_buf_appendc(b, '}');
}

/* Encodes one postableAlert, external labels added where the alert lacks them. */
static struct item *encode(struct nn_notifier *n, const struct nn_notifier_alert *a)
{
  struct nn_buf b;
  struct item *it = NULL;
  struct nn_label *ls = calloc(a->nlabels + n->next + 1, sizeof(*ls));
  if (!ls)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < a->nlabels; i++)
    ls[k++] = a->labels[i];
  for (size_t i = 0; i < n->next; i++)
    if (!nn_labels_get(a->labels, a->nlabels, n->ext[i].name))
      ls[k++] = n->ext[i];
  qsort(ls, k, sizeof(*ls), cmp_label);
  nn_buf_init(&b, 4 << 20);
  char t[48];
  int rc = nn_buf_appends(&b, "{\"labels\":");
  if (rc == 0)
    rc = put_labels(&b, ls, k);
  if (rc == 0 && a->nannotations) {
    rc = nn_buf_appends(&b, ",\"annotations\":");
    if (rc == 0)
      rc = put_labels(&b, a->annotations, a->nannotations);
  }
  if (rc == 0 && a->starts_at_ms) {
    nn_notifier_format_time(a->starts_at_ms, t, sizeof(t));
    rc = nn_buf_printf(&b, ",\"startsAt\":\"%s\"", t);
  }
  if (rc == 0 && a->ends_at_ms) {
    nn_notifier_format_time(a->ends_at_ms, t, sizeof(t));
    rc = nn_buf_printf(&b, ",\"endsAt\":\"%s\"", t);
  }
  if (rc == 0 && a->generator_url && a->generator_url[0]) {
    rc = nn_buf_appends(&b, ",\"generatorURL\":");
    if (rc == 0)
      rc = nn_buf_append_json_str(&b, a->generator_url, strlen(a->generator_url));
  }
  if (rc == 0)
    rc = nn_buf_appendc(&b, '}');
  if (rc == 0 && (it = malloc(sizeof(*it) + b.len + 1))) {
    it->refs = 0;
    it->len = b.len;
    memcpy(it->json, b.data, b.len + 1);
  }
  nn_buf_fini(&b);
  free(ls);
  return it;
}

static void kick(struct am *am);
static void check_drained(struct nn_notifier *n);

static void on_sent(const struct nn_http_response *resp, void *ud)
{
  struct am *am = ud;
  double secs = (double)(uv_hrtime() - am->started_ns) / 1e9;
  am->st.last_latency_seconds = secs;
  if (am->m_latency)
    nn_metric_observe(am->m_latency, secs);
  am->st.batches++;
  if (resp->rc == 0 && resp->status >= 200 && resp->status < 300) {
    am->st.sent += am->inflight;
    if (am->m_sent)
      nn_metric_add(am->m_sent, (double)am->inflight);
  } else {
    am->st.errors += am->inflight;
    am->st.dropped += am->inflight;
    if (am->m_errors)
      nn_metric_add(am->m_errors, (double)am->inflight);
    if (am->n->m_dropped)
      nn_metric_add(am->n->m_dropped, (double)am->inflight);
    NN_LOG_RL(NN_LOG_WARN, MOD, "sending %zu alerts to %s failed: %s", am->inflight, am->post_url,
              resp->rc ? (resp->error[0] ? resp->error : nn_strerror(resp->rc)) : "bad status");
    if (resp->rc == 0)
      NN_LOG_RL(NN_LOG_WARN, MOD, "%s answered %d: %.200s", am->post_url, resp->status, resp->body);
  }
  am->busy = false;
  am->inflight = 0;
  nn_buf_reset(&am->body);
  if (resp->rc == NN_ECANCELED)
    return; /* the client is going away */
  kick(am);
  check_drained(am->n);
}

static void kick(struct am *am)
{
  if (am->busy || am->len == 0)
    return;
  size_t k = am->len < am->n->batch ? am->len : am->n->batch;
  nn_buf_reset(&am->body);
  int rc = nn_buf_appendc(&am->body, '[');
  for (size_t i = 0; i < k && rc == 0; i++) {
    struct item *it = am->ring[(am->head + i) % am->cap];
    if (i)
      rc = nn_buf_appendc(&am->body, ',');
    if (rc == 0)
      rc = nn_buf_append(&am->body, it->json, it->len);
  }
  if (rc == 0)
    rc = nn_buf_appendc(&am->body, ']');
  for (size_t i = 0; i < k; i++) {
    item_unref(am->ring[am->head]);
    am->ring[am->head] = NULL;
    am->head = (am->head + 1) % am->cap;
    am->len--;
  }
  if (rc < 0) {
    am->st.dropped += k;
    NN_LOG_RL(NN_LOG_ERROR, MOD, "encoding a batch for %s failed: %s", am->post_url,
              nn_strerror(rc));
    return;
  }
  static const char *const hdrs[] = {"Content-Type: application/json"};
  struct nn_http_request req = {.method = "POST",
                                .url = am->post_url,
                                .headers = hdrs,
                                .nheaders = 1,
                                .body = am->body.data,
                                .body_len = am->body.len,
                                .timeout_ms = (uint32_t)am->timeout_ms,
                                .max_response_bytes = 64 << 10};
  am->busy = true;
  am->inflight = k;
  am->started_ns = uv_hrtime();
  rc = nn_http_client_send(am->n->http, &req, on_sent, am);
  if (rc < 0) {
    am->busy = false;
    am->inflight = 0;
    am->st.errors += k;
    am->st.dropped += k;
  }
}

void nn_notifier_send(struct nn_notifier *n, const struct nn_notifier_alert *alerts, size_t count)
{
  if (!n || n->stopping || n->nams == 0)
    return;
  for (size_t i = 0; i < count; i++) {
    struct item *it = encode(n, &alerts[i]);
    if (!it) {
      NN_LOG_RL(NN_LOG_ERROR, MOD, "out of memory encoding an alert; dropped");
      for (size_t j = 0; j < n->nams; j++)
        n->ams[j].st.dropped++;
      continue;
    }
    for (size_t j = 0; j < n->nams; j++) {
      struct am *am = &n->ams[j];
      if (am->len == am->cap) { /* full: the oldest alert gives way */
        item_unref(am->ring[am->head]);
        am->ring[am->head] = NULL;
        am->head = (am->head + 1) % am->cap;
        am->len--;
        am->st.dropped++;
        if (n->m_dropped)
          nn_metric_inc(n->m_dropped);
      }
      am->ring[(am->head + am->len) % am->cap] = it;
      am->len++;
      it->refs++;
    }
    if (it->refs == 0)
      free(it);
  }
  for (size_t j = 0; j < n->nams; j++)
    kick(&n->ams[j]);
}

void nn_notifier_notify(void *ud, const struct nn_notifier_alert *alerts, size_t count)
{
  nn_notifier_send(ud, alerts, count);
}

static double queue_len(void *ud)
{
  return (double)((struct am *)ud)->len;
}

static double queue_cap(void *ud)
{
  return (double)((struct am *)ud)->cap;
}

/* Metric label value for a URL: quotes and backslashes escaped. */
static void am_label(const char *url, char *out, size_t len)
{
  size_t k = 0;
  k += (size_t)snprintf(out, len, "alertmanager=\"");
  for (const char *p = url; *p && k + 4 < len; p++) {
    if (*p == '"' || *p == '\\')
      out[k++] = '\\';
    out[k++] = *p == '\n' ? ' ' : *p;
  }
  if (k + 2 <= len) {
    out[k++] = '"';
    out[k] = 0;
  }
}

struct nn_notifier *nn_notifier_create(const struct nn_notifier_opts *o)
{
  static const double lat_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  const struct nn_notifier_config *cfg = o->cfg;
  struct nn_notifier *n = calloc(1, sizeof(*n));
  if (!n)
    return NULL;
  n->loop = o->loop;
  n->batch = cfg && cfg->batch_size > 0 ? (size_t)cfg->batch_size : 256;
  n->drain_ms = cfg && cfg->drain_timeout_ms > 0 ? cfg->drain_timeout_ms : 10000;
  size_t cap = cfg && cfg->queue_capacity > 0 ? (size_t)cfg->queue_capacity : 10000;
  struct nn_http_client_opts ho = {.user_agent = o->user_agent};
  if (!(n->http = nn_http_client_create(o->loop, &ho)))
    goto fail;
  if (o->external_labels && o->external_labels->n) {
    size_t en = o->external_labels->n;
    if (!(n->ext = calloc(en, sizeof(*n->ext))))
      goto fail;
    for (size_t i = 0; i < en; i++) {
      n->ext[i].name = strdup(o->external_labels->keys[i]);
      n->ext[i].value = strdup(o->external_labels->values[i]);
      n->next = i + 1;
      if (!n->ext[i].name || !n->ext[i].value)
        goto fail;
    }
  }
  size_t nams = cfg ? cfg->alertmanagers.n : 0;
  if (nams && !(n->ams = calloc(nams, sizeof(*n->ams))))
    goto fail;
  if (o->metrics)
    n->m_dropped = nn_metrics_counter(o->metrics, "nines_notifications_dropped_total",
                                      "Alerts dropped: failed sends and queue overflow.", NULL);
  for (size_t i = 0; i < nams; i++) {
    const struct nn_notifier_am_config *ac =
        &((const struct nn_notifier_am_config *)cfg->alertmanagers.items)[i];
    struct am *am = &n->ams[i];
    n->nams = i + 1;
    am->n = n;
    nn_buf_init(&am->body, 64 << 20);
    if (!ac->url || !ac->url[0]) {
      nn_error(MOD, "alertmanagers[%zu]: url is empty", i);
      goto fail;
    }
    size_t ul = strlen(ac->url);
    while (ul > 0 && ac->url[ul - 1] == '/')
      ul--;
    am->url = strdup(ac->url);
    am->post_url = malloc(ul + sizeof("/api/v2/alerts"));
    am->ring = calloc(cap, sizeof(*am->ring));
    if (!am->url || !am->post_url || !am->ring)
      goto fail;
    memcpy(am->post_url, ac->url, ul);
    memcpy(am->post_url + ul, "/api/v2/alerts", sizeof("/api/v2/alerts"));
    am->cap = cap;
    am->timeout_ms = ac->timeout_ms > 0 ? ac->timeout_ms : 10000;
    am->st.url = am->url;
    if (o->metrics) {
      char lbl[600];
      am_label(am->url, lbl, sizeof(lbl));
      am->m_sent = nn_metrics_counter(o->metrics, "nines_notifications_sent_total",
                                      "Alerts sent to Alertmanager.", lbl);
      am->m_errors = nn_metrics_counter(o->metrics, "nines_notifications_errors_total",
                                        "Alerts in batches that failed.", lbl);
      am->m_latency = nn_metrics_histogram(o->metrics, "nines_notifications_latency_seconds",
                                           "Latency of alert batch POSTs.", lbl, lat_bounds,
                                           sizeof(lat_bounds) / sizeof(lat_bounds[0]));
      nn_metrics_func(o->metrics, NN_METRIC_GAUGE, "nines_notifications_queue_length",
                      "Alerts waiting to be sent.", lbl, queue_len, am);
      nn_metrics_func(o->metrics, NN_METRIC_GAUGE, "nines_notifications_queue_capacity",
                      "Capacity of the alert queue.", lbl, queue_cap, am);
    }
  }
  if (!(n->timer = malloc(sizeof(*n->timer))))
    goto fail;
  uv_timer_init(o->loop, n->timer);
  n->timer->data = n;
  return n;
fail:
  nn_notifier_destroy(n);
  return NULL;
}

static void finish(struct nn_notifier *n)
{
  if (n->done_called || !n->on_done)
    return;
  n->done_called = true;
  uv_timer_stop(n->timer);
  n->on_done(n->done_ud);
}

static bool drained(const struct nn_notifier *n)
{
  for (size_t i = 0; i < n->nams; i++)
    if (n->ams[i].busy || n->ams[i].len)
      return false;
  return true;
}

static void on_timer(uv_timer_t *t)
{
  struct nn_notifier *n = t->data;
  if (!n)
    return;
  if (!drained(n) && uv_now(n->loop) < n->drain_deadline) {
    uv_timer_start(t, on_timer, n->drain_deadline - uv_now(n->loop), 0);
    return;
  }
  for (size_t i = 0; i < n->nams; i++) {
    struct am *am = &n->ams[i];
    if (am->len)
      nn_warn(MOD, "shutdown: %zu alerts for %s not sent", am->len, am->post_url);
    am->st.dropped += am->len;
  }
  finish(n);
}

static void check_drained(struct nn_notifier *n)
{
  if (n->stopping && drained(n))
    uv_timer_start(n->timer, on_timer, 0, 0);
}

void nn_notifier_stop(struct nn_notifier *n, void (*on_done)(void *ud), void *ud)
{
  n->stopping = true;
  n->on_done = on_done;
  n->done_ud = ud;
  n->drain_deadline = uv_now(n->loop) + (uint64_t)n->drain_ms;
  uv_timer_start(n->timer, on_timer, drained(n) ? 0 : (uint64_t)n->drain_ms, 0);
}

static void on_timer_closed(uv_handle_t *h)
{
  free(h);
}

void nn_notifier_destroy(struct nn_notifier *n)
{
  if (!n)
    return;
  n->stopping = true;
  /* Cancels in-flight POSTs; their callbacks run now and still see the queues. */
  nn_http_client_destroy(n->http);
  for (size_t i = 0; i < n->nams; i++) {
    struct am *am = &n->ams[i];
    for (size_t k = 0; am->ring && k < am->len; k++)
      item_unref(am->ring[(am->head + k) % am->cap]);
    free(am->ring);
    free(am->url);
    free(am->post_url);
    nn_buf_fini(&am->body);
  }
  free(n->ams);
  for (size_t i = 0; i < n->next; i++) {
    free((char *)n->ext[i].name);
    free((char *)n->ext[i].value);
  }
  free(n->ext);
  if (n->timer) {
    n->timer->data = NULL;
    uv_timer_stop(n->timer);
    uv_close((uv_handle_t *)n->timer, on_timer_closed);
  }
  free(n);
}

size_t nn_notifier_am_count(const struct nn_notifier *n)
{
  return n->nams;
}

int nn_notifier_am_stats(const struct nn_notifier *n, size_t i, struct nn_notifier_am_stats *out)
{
  if (i >= n->nams)
    return NN_ENOTFOUND;
  *out = n->ams[i].st;
  out->queue_length = n->ams[i].len;
  return 0;
}
