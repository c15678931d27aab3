/* SPDX-License-Identifier: Apache-2.0 */
/* Scraping end to end against an in-process HTTP server on 127.0.0.1: up and the scrape_*
 * series, stale markers when a series disappears and when the target goes down or away,
 * sample_limit, honor_labels, metric relabeling, file_sd reloads, Kubernetes pod discovery
 * against a local HTTPS API fixture, and (when installed) a real node-exporter. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/scrape/internal.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/error.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/wire.h"

#define MAX_BATCHES 256

static uv_loop_t loop;
static struct nn_http_server *srv;
static int port;
static char body[64 * 1024];
static int status = 200;
static const char *ctype = "text/plain; version=0.0.4";
static char accept_seen[512];

static struct nn_buf batches[MAX_BATCHES];
static int64_t batch_ts[MAX_BATCHES];
static char batch_job[MAX_BATCHES][16];
static size_t nbatches;
static const char *self_address; /* nn_scrape_opts.self_address of the next start() */

static void on_metrics(struct nn_http_req *req, void *ud)
{
  const char *a = nn_http_req_header(req, "Accept", NULL);
  snprintf(accept_seen, sizeof(accept_seen), "%s", a ? a : "");
  nn_http_respond(req, status, ctype, body, strlen(body));
}

/* The expanded labels are remote write's TimeSeries.labels fields of exactly the labels
 * the batch decoded, in order. */
static void check_rw_labels(const struct nn_scrape_batch *b, const struct nn_scrape_sample *s)
{
  uint8_t *enc = malloc(s->rw_labels_len + 1);
  assert_non_null(enc);
  nn_scrape_rw_labels(b, s, enc);
  size_t o = 0;
  for (size_t k = 0; k < s->nlabels; k++) {
    size_t nl = strlen(s->labels[k].name), vl = strlen(s->labels[k].value);
    uint8_t want[1024];
    size_t n = nn_wire_rw_label_size(nl, vl);
    assert_true(n <= sizeof(want) && o + n <= s->rw_labels_len);
    nn_wire_rw_label_put(want, s->labels[k].name, nl, s->labels[k].value, vl);
    assert_memory_equal(enc + o, want, n);
    o += n;
  }
  assert_int_equal(o, s->rw_labels_len);
  free(enc);
}

static void on_batch(void *ud, const struct nn_scrape_batch *b)
{
  if (nbatches >= MAX_BATCHES)
    return;
  batch_ts[nbatches] = b->scrape_time_ms;
  snprintf(batch_job[nbatches], sizeof(batch_job[0]), "%s", b->job);
  struct nn_buf *o = &batches[nbatches++];
  nn_buf_init(o, 1 << 20);
  nn_buf_appends(o, "");
  for (size_t i = 0; i < b->nsamples; i++) {
    const struct nn_scrape_sample *s = &b->samples[i];
    check_rw_labels(b, s);
    const char *name = nn_labels_get(s->labels, s->nlabels, "__name__");
    nn_buf_printf(o, "%s{", name ? name : "?");
    bool first = true;
    for (size_t k = 0; k < s->nlabels; k++) {
      if (strcmp(s->labels[k].name, "__name__") == 0)
        continue;
      /* canonical order is checked here too */
      if (k > 0)
        assert_true(strcmp(s->labels[k - 1].name, s->labels[k].name) < 0);
      nn_buf_printf(o, "%s%s=\"%s\"", first ? "" : ",", s->labels[k].name, s->labels[k].value);
      first = false;
    }
    uint64_t bits;
    memcpy(&bits, &s->v, sizeof(bits));
    if (bits == NN_SCRAPE_STALE_NAN_BITS)
      nn_buf_printf(o, "} STALE\n");
    else
      nn_buf_printf(o, "} %g\n", s->v);
    assert_true(s->t_ms > 1600000000000);
  }
}

/* Value text of the first line of batch i that starts with prefix, or NULL. */
static const char *value_of(size_t i, const char *prefix)
{
  static char v[64];
  const char *p = batches[i].data;
  while (p && *p) {
    const char *nl = strchr(p, '\n');
    if (strncmp(p, prefix, strlen(prefix)) == 0) {
      const char *sp = nl ? memrchr(p, ' ', (size_t)(nl - p)) : NULL;
      if (sp) {
        snprintf(v, sizeof(v), "%.*s", (int)(nl - sp - 1), sp + 1);
        return v;
      }
    }
    p = nl ? nl + 1 : NULL;
  }
  return NULL;
}

static void on_wake(uv_timer_t *t)
{
}

static bool run_until_batches(size_t n, uint64_t timeout_ms)
{
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, on_wake, 10, 10);
  uint64_t end = uv_now(&loop) + timeout_ms;
  while (nbatches < n && uv_now(&loop) < end)
    uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  return nbatches >= n;
}

static void run_for(uint64_t ms)
{
  run_until_batches(SIZE_MAX, ms);
}

static void reset_batches(void)
{
  for (size_t i = 0; i < nbatches; i++)
    nn_buf_fini(&batches[i]);
  nbatches = 0;
}

static struct nn_scrape_config cfg;
static struct nn_scrape *scr;
static struct nn_metrics *metrics;

__attribute__((format(printf, 1, 2))) static void start(const char *yaml_fmt, ...)
{
  char yaml[4096], err[512];
  struct nn_cfg_error ce;
  va_list ap;
  va_start(ap, yaml_fmt);
  vsnprintf(yaml, sizeof(yaml), yaml_fmt, ap);
  va_end(ap);
  memset(&cfg, 0, sizeof(cfg));
  if (nn_cfg_load_string("test.yml", yaml, strlen(yaml), nn_scrape_config_options, &cfg, &ce) < 0) {
    nn_cfg_error_format(&ce, err, sizeof(err));
    fail_msg("config: %s\n%s", err, yaml);
  }
  assert_int_equal(nn_scrape_config_check(&cfg, err, sizeof(err)), 0);
  struct nn_scrape_sink sink = {on_batch, NULL, true};
  metrics = nn_metrics_create();
  struct nn_scrape_opts opts = {.metrics = metrics, .self_address = self_address};
  reset_batches();
  assert_non_null(scr = nn_scrape_create(&loop, &cfg, &opts, &sink));
  assert_int_equal(nn_scrape_start(scr), 0);
}

static void finish(void)
{
  nn_scrape_destroy(scr);
  scr = NULL;
  run_for(50);
  nn_cfg_free(nn_scrape_config_options, &cfg);
  nn_metrics_destroy(metrics);
  reset_batches();
  self_address = NULL;
  status = 200;
  ctype = "text/plain; version=0.0.4";
}

static int group_setup(void **state)
{
  uv_loop_init(&loop);
  srv = nn_http_server_create(&loop, NULL);
  assert_non_null(srv);
  nn_http_server_route(srv, "/metrics", 0, on_metrics, NULL);
  assert_int_equal(nn_http_server_listen(srv, "127.0.0.1:0"), 0);
  port = nn_http_server_port(srv);
  return 0;
}

static int group_teardown(void **state)
{
  nn_http_server_destroy(srv);
  for (int i = 0; i < 50; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  return 0;
}

#define JOB                                                                                        \
  "scrape_interval: 200ms\nscrape_timeout: 150ms\nscrape_configs:\n- job_name: t\n"                \
  "  static_configs:\n  - targets: ['127.0.0.1:%d']\n    labels: {team: core}\n"

static void up_series_and_staleness(void **state)
{
  char pfx[128];
  snprintf(body, sizeof(body), "# TYPE a counter\na_total 1\nb{x=\"1\"} 2\n");
  start(JOB, port);
  assert_true(run_until_batches(1, 3000));
  assert_non_null(strstr(accept_seen, "application/openmetrics-text;version=1.0.0"));
  snprintf(pfx, sizeof(pfx), "a_total{instance=\"127.0.0.1:%d\",job=\"t\",team=\"core\"}", port);
  assert_string_equal(value_of(0, pfx), "1");
  assert_string_equal(value_of(0, "b{instance="), "2");
  assert_non_null(strstr(batches[0].data, "b{instance=\"127.0.0.1:"));
  assert_non_null(strstr(batches[0].data, ",job=\"t\",team=\"core\",x=\"1\"} 2"));
  assert_string_equal(value_of(0, "up{"), "1");
  assert_string_equal(value_of(0, "scrape_samples_scraped{"), "2");
  assert_string_equal(value_of(0, "scrape_samples_post_metric_relabeling{"), "2");
  assert_string_equal(value_of(0, "scrape_series_added{"), "2");
  assert_non_null(value_of(0, "scrape_duration_seconds{"));
  assert_int_equal(nn_scrape_target_count(scr, "t"), 1);

  /* b disappears: one stale marker for it, a carries on, nothing new added. */
  snprintf(body, sizeof(body), "a_total 3\n");
  size_t seen = nbatches;
  assert_true(run_until_batches(seen + 2, 3000));
  size_t k = seen + 1; /* the first may have raced the body change */
  if (!value_of(seen, "b{") || strcmp(value_of(seen, "b{"), "STALE") != 0)
    k = seen;
  (void)k;
  bool stale_b = false;
  for (size_t i = seen; i < nbatches; i++)
    stale_b = stale_b || (value_of(i, "b{") && strcmp(value_of(i, "b{"), "STALE") == 0);
  assert_true(stale_b);
  size_t last = nbatches - 1;
  assert_string_equal(value_of(last, "a_total{"), "3");
  assert_null(value_of(last, "b{")); /* only one marker, then nothing */
  assert_string_equal(value_of(last, "scrape_series_added{"), "0");

  /* The target fails: up=0 and a stale marker for every series it had. */
  status = 500;
  seen = nbatches;
  assert_true(run_until_batches(seen + 2, 3000));
  bool down = false, stale_a = false;
  for (size_t i = seen; i < nbatches; i++) {
    down = down || (value_of(i, "up{") && strcmp(value_of(i, "up{"), "0") == 0);
    stale_a = stale_a || (value_of(i, "a_total{") && strcmp(value_of(i, "a_total{"), "STALE") == 0);
  }
  assert_true(down);
  assert_true(stale_a);
  struct nn_scrape_stats st;
  nn_scrape_get_stats(scr, &st);
  assert_true(st.scrape_failures >= 1);
  assert_int_equal(st.targets_down, 1);

  /* Back up. */
  status = 200;
  seen = nbatches;
  assert_true(run_until_batches(seen + 2, 3000));
  assert_string_equal(value_of(nbatches - 1, "up{"), "1");
  assert_string_equal(value_of(nbatches - 1, "a_total{"), "3");
  finish();
}

static size_t count_lines(size_t i, const char *prefix)
{
  size_t n = 0;
  for (const char *p = batches[i].data; p && *p;) {
    n += strncmp(p, prefix, strlen(prefix)) == 0;
    p = strchr(p, '\n');
    p = p ? p + 1 : NULL;
  }
  return n;
}

/* Later scrapes map each line's series text to the series the first one built: the same
 * labels, duplicates, drops, conflicts and counters every time, and staleness still works. */
static void repeated_scrapes_use_the_series_cache(void **state)
{
  char pfx[160];
  snprintf(body, sizeof(body),
           "x{a=\"1\"} 1\nx{ a=\"1\" } 2\ndrop_me{a=\"1\"} 5\nkeep{job=\"mine\",a=\"}\"} 3\n");
  start(JOB "  metric_relabel_configs:\n  - {source_labels: [__name__], regex: drop_me, action: "
            "drop}\n",
        port);
  assert_true(run_until_batches(4, 5000));
  snprintf(pfx, sizeof(pfx),
           "keep{a=\"}\",exported_job=\"mine\",instance=\"127.0.0.1:%d\",job=\"t\"", port);
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(count_lines(i, "x{a=\"1\",instance="), 1); /* the second spelling is a dup */
    assert_string_equal(value_of(i, "x{"), "1");
    assert_null(value_of(i, "drop_me{"));
    assert_string_equal(value_of(i, pfx), "3");
    assert_string_equal(value_of(i, "scrape_samples_scraped{"), "4");
    assert_string_equal(value_of(i, "scrape_samples_post_metric_relabeling{"), "3");
    assert_string_equal(value_of(i, "scrape_series_added{"), i == 0 ? "2" : "0");
    assert_int_equal(count_lines(i, ""), 2 + 5);
  }
  /* keep goes away, drop_me changes spelling: one stale marker, still nothing dropped sent. */
  snprintf(body, sizeof(body), "x{a=\"1\"} 1\ndrop_me{a=\"2\"} 5\n");
  size_t seen = nbatches;
  assert_true(run_until_batches(seen + 3, 5000));
  bool stale = false;
  for (size_t i = seen; i < nbatches; i++) {
    stale = stale || (value_of(i, "keep{") && strcmp(value_of(i, "keep{"), "STALE") == 0);
    assert_null(value_of(i, "drop_me{"));
  }
  assert_true(stale);
  assert_null(value_of(nbatches - 1, "keep{"));
  assert_string_equal(value_of(nbatches - 1, "x{"), "1");
  finish();
}

/* Stored label sets use the target's name and __name__ dictionaries and fall back to plain
 * fields past their limits (values of 128 bytes and more, more than 256 label names): every
 * form must expand to the same labels, scrape after scrape. */
static void stored_label_forms_expand_exactly(void **state)
{
  static char big[64 * 1024];
  char v200[201];
  memset(v200, 'v', 200);
  v200[200] = '\0';
  size_t o = 0;
  o += (size_t)snprintf(big + o, sizeof(big) - o, "m{long=\"%s\",z=\"\"} 1\n", v200);
  for (int i = 0; i < 300; i++) /* 300 label names, 300 metric names */
    o += (size_t)snprintf(big + o, sizeof(big) - o, "f%d{n%03d=\"x%d\",team=\"other\"} %d\n", i, i,
                          i, i);
  assert_true(o < sizeof(big) - 1);
  assert_true(o < sizeof(body));
  memcpy(body, big, o + 1);
  start(JOB, port);
  assert_true(run_until_batches(3, 5000));
  char want[400];
  for (size_t b = 0; b < 3; b++) {
    snprintf(want, sizeof(want), "m{instance=\"127.0.0.1:%d\",job=\"t\",long=\"%s\",team=\"core\"}",
             port, v200);
    assert_string_equal(value_of(b, want), "1");
    for (int i = 0; i < 300; i += 37) {
      snprintf(want, sizeof(want),
               "f%d{exported_team=\"other\",instance=\"127.0.0.1:%d\",job=\"t\",n%03d=\"x%d\","
               "team=\"core\"}",
               i, port, i, i);
      char v[16];
      snprintf(v, sizeof(v), "%d", i);
      assert_string_equal(value_of(b, want), v);
    }
    assert_int_equal(count_lines(b, ""), 301 + 5);
  }
  finish();
}

static void sample_limit_fails_the_scrape(void **state)
{
  snprintf(body, sizeof(body), "a 1\nb 2\nc 3\n");
  start(JOB "  sample_limit: 2\n", port);
  assert_true(run_until_batches(1, 3000));
  assert_string_equal(value_of(0, "up{"), "0");
  assert_string_equal(value_of(0, "scrape_samples_scraped{"), "3");
  assert_null(value_of(0, "a{"));
  assert_null(value_of(0, "b{"));
  struct nn_scrape_stats st;
  nn_scrape_get_stats(scr, &st);
  assert_true(st.sample_limit_hits >= 1);
  struct nn_buf out;
  nn_buf_init(&out, 1 << 20);
  nn_metrics_render(metrics, &out);
  assert_non_null(strstr(out.data, "nines_scrape_sample_limit_hits_total{job=\"t\"} "));
  assert_non_null(strstr(out.data, "nines_scrape_targets{job=\"t\",health=\"down\"} 1"));
  nn_buf_fini(&out);
  finish();
}

static void honor_labels_and_exported_prefix(void **state)
{
  snprintf(body, sizeof(body), "a{job=\"other\",instance=\"x\",exported_job=\"y\"} 1\n");
  start(JOB, port);
  assert_true(run_until_batches(1, 3000));
  char want[256];
  snprintf(want, sizeof(want),
           "a{exported_exported_job=\"other\",exported_instance=\"x\",exported_job=\"y\","
           "instance=\"127.0.0.1:%d\",job=\"t\",team=\"core\"} 1",
           port);
  if (!strstr(batches[0].data, want))
    fail_msg("want %s in\n%s", want, batches[0].data);
  finish();

  start(JOB "  honor_labels: true\n", port);
  assert_true(run_until_batches(1, 3000));
  assert_non_null(strstr(batches[0].data,
                         "a{exported_job=\"y\",instance=\"x\",job=\"other\",team=\"core\"} 1"));
  /* up keeps the target's own labels. */
  snprintf(want, sizeof(want), "up{instance=\"127.0.0.1:%d\",job=\"t\",team=\"core\"} 1", port);
  assert_non_null(strstr(batches[0].data, want));
  finish();
}

static void metric_relabel_drop_and_timestamps(void **state)
{
  snprintf(body, sizeof(body), "a 1 1700000000000\nb 2\nc{drop=\"me\"} 3\n");
  start(JOB "  honor_timestamps: true\n  metric_relabel_configs:\n"
            "  - source_labels: [__name__]\n    regex: b\n    action: drop\n"
            "  - regex: drop\n    action: labeldrop\n",
        port);
  assert_true(run_until_batches(1, 3000));
  assert_null(value_of(0, "b{"));
  assert_string_equal(value_of(0, "a{"), "1");
  assert_non_null(strstr(batches[0].data, "c{instance="));
  assert_null(strstr(batches[0].data, "drop="));
  assert_string_equal(value_of(0, "scrape_samples_scraped{"), "3");
  assert_string_equal(value_of(0, "scrape_samples_post_metric_relabeling{"), "2");
  finish();
}

static void openmetrics_by_content_type(void **state)
{
  ctype = "application/openmetrics-text; version=1.0.0; charset=utf-8";
  snprintf(body, sizeof(body), "# TYPE c counter\nc_total 4\nc_created 1.6e9\n# EOF\n");
  start(JOB, port);
  assert_true(run_until_batches(1, 3000));
  assert_string_equal(value_of(0, "c_total{"), "4");
  assert_null(value_of(0, "c_created{"));
  assert_string_equal(value_of(0, "up{"), "1");
  finish();
  /* The same body sent as text fails to parse: up=0. */
  snprintf(body, sizeof(body), "a 1\n# EOF\nb\n");
  ctype = "application/openmetrics-text; version=1.0.0";
  start(JOB, port);
  assert_true(run_until_batches(1, 3000));
  assert_string_equal(value_of(0, "up{"), "0");
  finish();
}

static void relabel_drops_and_rewrites_targets(void **state)
{
  snprintf(body, sizeof(body), "a 1\n");
  start("scrape_interval: 200ms\nscrape_timeout: 100ms\nscrape_configs:\n- job_name: t\n"
        "  params: {module: [m1, m2]}\n"
        "  static_configs:\n  - targets: ['127.0.0.1:%d', 'drop.me:1']\n"
        "  relabel_configs:\n"
        "  - source_labels: [__address__]\n    regex: drop.*\n    action: drop\n"
        "  - source_labels: [__param_module]\n    target_label: module\n"
        "  - target_label: instance\n    replacement: fixed\n",
        port);
  assert_true(run_until_batches(1, 3000));
  assert_int_equal(nn_scrape_target_count(scr, NULL), 1);
  assert_non_null(strstr(batches[0].data, "a{instance=\"fixed\",job=\"t\",module=\"m1\"} 1"));
  finish();
}

/* Which URLs are the agent's own /metrics, for its listen address. */
static void self_targets_by_url(void **state)
{
  const char *l = "127.0.0.1:9596";
  assert_true(nn__scrape_url_is_self("http://127.0.0.1:9596/metrics", l));
  assert_true(nn__scrape_url_is_self("http://localhost:9596/metrics", l));
  assert_false(nn__scrape_url_is_self("http://127.0.0.1:9597/metrics", l));
  assert_false(nn__scrape_url_is_self("https://127.0.0.1:9596/metrics", l));
  assert_false(nn__scrape_url_is_self("http://127.0.0.1:9596/metrics?x=1", l));
  assert_false(nn__scrape_url_is_self("http://127.0.0.1:9596/metricsx", l));
  assert_false(nn__scrape_url_is_self("http://127.0.0.1:9596", l));
  assert_false(nn__scrape_url_is_self("http://10.255.255.1:9596/metrics", l));
  assert_false(nn__scrape_url_is_self("http://127.0.0.1:9596/metrics", NULL));
  assert_false(nn__scrape_url_is_self("http://127.0.0.1:9596/metrics", "bad"));
  /* A wildcard listen address is also loopback and this host's interface addresses. */
  assert_true(nn__scrape_url_is_self("http://127.0.0.1:9596/metrics", "0.0.0.0:9596"));
  assert_true(nn__scrape_url_is_self("http://localhost:9596/metrics", ":9596"));
  assert_true(nn__scrape_url_is_self("http://[::1]:9596/metrics", "[::]:9596"));
  assert_true(nn__scrape_url_is_self("http://[::1]:9596/metrics", "[::1]:9596"));
  assert_false(nn__scrape_url_is_self("http://example.com:9596/metrics", "0.0.0.0:9596"));
  assert_false(nn__scrape_url_is_self("http://10.255.255.1:9596/metrics", "0.0.0.0:9596"));
  struct ifaddrs *ifs, *i;
  if (getifaddrs(&ifs) == 0) {
    for (i = ifs; i; i = i->ifa_next)
      if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !(i->ifa_flags & IFF_LOOPBACK))
        break;
    if (i) {
      char ip[INET_ADDRSTRLEN], url[128];
      inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, ip, sizeof(ip));
      snprintf(url, sizeof(url), "http://%s:9596/metrics", ip);
      assert_true(nn__scrape_url_is_self(url, "0.0.0.0:9596"));
      assert_false(nn__scrape_url_is_self(url, "127.0.0.1:9596"));
    }
    freeifaddrs(ifs);
  }
}

static struct nn__scrape_target *target_of(const char *job)
{
  for (size_t i = 0; i < scr->njobs; i++)
    if (strcmp(scr->jobs[i].cfg->job_name, job) == 0)
      return scr->jobs[i].targets;
  return NULL;
}

/* Lines pushed by the agent go to the targets that scrape the agent, as a scrape would send
 * them (target labels, metric relabeling), in a batch of their own without up & co.; their
 * timestamps fall between that target's scrapes; never while its scrape is in flight, never
 * to a target that is down, nor to other targets. */
static void pushed_samples_go_to_self_targets_between_scrapes(void **state)
{
  char self[64], pfx[160];
  snprintf(self, sizeof(self), "127.0.0.1:%d", port);
  self_address = self;
  snprintf(body, sizeof(body),
           "# TYPE req_total counter\nreq_total{code=\"200\"} 1\nreq_total{code=\"500\"} 1\n"
           "dropme 1\n");
  start("scrape_interval: 1s\nscrape_timeout: 500ms\nscrape_configs:\n"
        "- job_name: self\n  static_configs:\n  - targets: ['%s']\n    labels: {team: core}\n"
        "  metric_relabel_configs:\n  - {source_labels: [__name__], regex: dropme, action: drop}\n"
        "- job_name: peer\n  params: {x: ['1']}\n  static_configs:\n  - targets: ['%s']\n",
        self, self);
  struct nn__scrape_target *t = target_of("self"), *p = target_of("peer");
  assert_non_null(t);
  assert_non_null(p);
  assert_true(t->self);
  assert_false(p->self);
  /* Before its first scrape the target takes pushes too. */
  const char *push = "# TYPE req_total counter\nreq_total{code=\"500\"} 3\ndropme 2\n";
  assert_int_equal(nn_scrape_push_self(scr, push, strlen(push)), 1);
  assert_int_equal(nbatches, 1);
  assert_string_equal(batch_job[0], "self");
  snprintf(pfx, sizeof(pfx), "req_total{code=\"500\",instance=\"%s\",job=\"self\",team=\"core\"}",
           self);
  assert_string_equal(value_of(0, pfx), "3");
  assert_int_equal(count_lines(0, ""), 1); /* no up & co., dropme dropped */
  int64_t first_push = batch_ts[0];
  /* Wait for a scrape of each, then push again. */
  bool self_scraped = false, peer_scraped = false;
  for (int i = 0; i < 40 && !(self_scraped && peer_scraped); i++) {
    run_until_batches(nbatches + 1, 500);
    for (size_t k = 1; k < nbatches; k++) {
      self_scraped = self_scraped || strcmp(batch_job[k], "self") == 0;
      peer_scraped = peer_scraped || strcmp(batch_job[k], "peer") == 0;
    }
  }
  assert_true(self_scraped && peer_scraped);
  size_t sk = 0;
  for (size_t k = 1; k < nbatches; k++)
    if (strcmp(batch_job[k], "self") == 0)
      sk = k;
  assert_true(batch_ts[sk] > first_push); /* the scrape comes after the push */
  assert_string_equal(value_of(sk, pfx), "1");
  assert_string_equal(value_of(sk, "up{"), "1");
  size_t n0 = nbatches;
  assert_int_equal(nn_scrape_push_self(scr, push, strlen(push)), 1);
  assert_int_equal(nbatches, n0 + 1);
  assert_string_equal(batch_job[n0], "self");
  assert_true(batch_ts[n0] > batch_ts[sk]);
  assert_int_equal(count_lines(n0, ""), 1);
  int64_t pushed = batch_ts[n0];
  /* The same series twice in one push: the first one wins. */
  const char *dup = "req_total{code=\"200\"} 5\nreq_total{code=\"200\"} 6\n";
  assert_int_equal(nn_scrape_push_self(scr, dup, strlen(dup)), 1);
  assert_int_equal(count_lines(nbatches - 1, ""), 1);
  assert_string_equal(value_of(nbatches - 1, "req_total{"), "5");
  assert_true(batch_ts[nbatches - 1] > pushed);
  pushed = batch_ts[nbatches - 1];
  /* ...and works again in the next push. */
  assert_int_equal(nn_scrape_push_self(scr, dup, strlen(dup)), 1);
  assert_string_equal(value_of(nbatches - 1, "req_total{"), "5");
  pushed = batch_ts[nbatches - 1];
  /* Text that does not parse is refused; nothing goes out. */
  n0 = nbatches;
  assert_int_equal(nn_scrape_push_self(scr, "a{ 1\n", 5), NN_EINVAL);
  assert_int_equal(nbatches, n0);
  /* While the target's scrape is in flight, try again later. */
  t->inflight = true;
  assert_int_equal(nn_scrape_push_self(scr, push, strlen(push)), NN_EAGAIN);
  t->inflight = false;
  assert_int_equal(nbatches, n0);
  /* The next scrape is stamped after the pushes and ends only the series that was pushed
   * but is not on /metrics. */
  const char *extra = "pushonly 1\n";
  assert_int_equal(nn_scrape_push_self(scr, extra, strlen(extra)), 1);
  assert_string_equal(value_of(nbatches - 1, "pushonly{"), "1");
  pushed = batch_ts[nbatches - 1];
  n0 = nbatches;
  bool next = false;
  for (int i = 0; i < 40 && !next; i++) {
    size_t from = nbatches;
    run_until_batches(nbatches + 1, 500);
    for (size_t k = from; k < nbatches; k++)
      if (strcmp(batch_job[k], "self") == 0) {
        next = true;
        assert_true(batch_ts[k] > pushed);
        assert_string_equal(value_of(k, pfx), "1");
        assert_string_equal(value_of(k, "pushonly{"), "STALE");
        assert_int_equal(count_lines(k, "") - count_lines(k, "pushonly{"), count_lines(k, "") - 1);
        assert_null(strstr(strstr(batches[k].data, "STALE") + 5, "STALE"));
      }
  }
  assert_true(next);
  /* A target that is down gets nothing. */
  status = 500;
  bool down = false;
  for (int i = 0; i < 40 && !down; i++) {
    size_t from = nbatches;
    run_until_batches(nbatches + 1, 500);
    for (size_t k = from; k < nbatches; k++)
      down = down || (strcmp(batch_job[k], "self") == 0 && value_of(k, "up{") &&
                      strcmp(value_of(k, "up{"), "0") == 0);
  }
  assert_true(down);
  n0 = nbatches;
  assert_int_equal(nn_scrape_push_self(scr, push, strlen(push)), 0);
  assert_int_equal(nbatches, n0);
  finish();
}

static void populate_labels_matches_prometheus(void **state)
{
  struct nn_scrape_job_config job = {.job_name = "j",
                                     .scrape_interval_ms = 30000,
                                     .scrape_timeout_ms = 10000,
                                     .metrics_path = "/metrics",
                                     .scheme = "https"};
  struct nn_label in[] = {{"__address__", "example.com"}, {"__meta_x", "y"}, {"env", "prod"}};
  struct nn_label out[32];
  size_t n = 0;
  char err[128];
  struct nn_relabel_scratch sc;
  nn_relabel_scratch_init(&sc);
  assert_int_equal(nn_scrape_populate_labels(&job, in, 3, out, &n, 32, &sc, err, sizeof(err)), 1);
  assert_string_equal(nn_labels_get(out, n, "__address__"), "example.com:443");
  assert_string_equal(nn_labels_get(out, n, "instance"), "example.com:443");
  assert_string_equal(nn_labels_get(out, n, "__scrape_interval__"), "30s");
  assert_string_equal(nn_labels_get(out, n, "job"), "j");
  assert_null(nn_labels_get(out, n, "__meta_x"));
  char *url = nn__scrape_target_url(&job, out, n);
  assert_string_equal(url, "https://example.com:443/metrics");
  free(url);
  struct nn_label bad[] = {{"__address__", "a/b:1"}};
  assert_int_equal(nn_scrape_populate_labels(&job, bad, 1, out, &n, 32, &sc, err, sizeof(err)),
                   NN_EINVAL);
  assert_non_null(strstr(err, "not a valid hostname"));
  struct nn_label none[] = {{"env", "x"}};
  assert_int_equal(nn_scrape_populate_labels(&job, none, 1, out, &n, 32, &sc, err, sizeof(err)),
                   NN_EINVAL);
  assert_string_equal(err, "no address");
  nn_relabel_scratch_fini(&sc);
}

static void config_check_errors(void **state)
{
  const char *bad[] = {
      "scrape_configs:\n- job_name: a\n- job_name: a\n",
      "scrape_configs:\n- job_name: a\n  scrape_interval: 5s\n  scrape_timeout: 10s\n",
      "scrape_configs:\n- job_name: a\n  scheme: ftp\n",
      "scrape_configs:\n- job_name: a\n  kubernetes_sd_configs: [{role: node}]\n",
  };
  const char *want[] = {"multiple scrape configs", "timeout greater than", "scheme must be",
                        "not supported"};
  for (size_t i = 0; i < 4; i++) {
    struct nn_scrape_config c = {0};
    struct nn_cfg_error ce;
    char err[256];
    assert_int_equal(
        nn_cfg_load_string("t.yml", bad[i], strlen(bad[i]), nn_scrape_config_options, &c, &ce), 0);
    assert_int_equal(nn_scrape_config_check(&c, err, sizeof(err)), NN_ECONFIG);
    assert_non_null(strstr(err, want[i]));
    nn_cfg_free(nn_scrape_config_options, &c);
  }
  /* Defaults: interval inherited, timeout capped at it. */
  struct nn_scrape_config c = {0};
  struct nn_cfg_error ce;
  char err[256];
  const char *ok = "scrape_interval: 5s\nscrape_configs:\n- job_name: a\n";
  assert_int_equal(nn_cfg_load_string("t.yml", ok, strlen(ok), nn_scrape_config_options, &c, &ce),
                   0);
  assert_int_equal(nn_scrape_config_check(&c, err, sizeof(err)), 0);
  const struct nn_scrape_job_config *j = c.scrape_configs.items;
  assert_int_equal(j->scrape_interval_ms, 5000);
  assert_int_equal(j->scrape_timeout_ms, 5000);
  assert_true(j->honor_timestamps);
  assert_string_equal(j->metrics_path, "/metrics");
  nn_cfg_free(nn_scrape_config_options, &c);
  /* A bad relabel rule is reported with its position. */
  const char *rl = "scrape_configs:\n- job_name: a\n  relabel_configs:\n  - action: nope\n";
  assert_int_equal(nn_cfg_load_string("t.yml", rl, strlen(rl), nn_scrape_config_options, &c, &ce),
                   NN_ECONFIG);
  nn_cfg_error_format(&ce, err, sizeof(err));
  assert_non_null(strstr(err, "t.yml:4:13"));
  assert_non_null(strstr(err, "unknown relabel action"));
  nn_cfg_free(nn_scrape_config_options, &c);
}

static void file_sd_reload(void **state)
{
  char dir[] = "/tmp/nn-scrape-fsd-XXXXXX", path[256], tmp[300];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/targets.json", dir);
  FILE *f = fopen(path, "w");
  fprintf(f, "[{\"targets\": [\"127.0.0.1:%d\"], \"labels\": {\"env\": \"dev\"}}]", port);
  fclose(f);
  snprintf(body, sizeof(body), "a 1\n");
  start("scrape_interval: 200ms\nscrape_timeout: 100ms\nscrape_configs:\n- job_name: f\n"
        "  file_sd_configs:\n  - files: ['%s/*.json']\n    refresh_interval: 10m\n",
        dir);
  assert_true(run_until_batches(1, 3000));
  assert_non_null(strstr(batches[0].data, "a{env=\"dev\",instance=\"127.0.0.1:"));
  assert_int_equal(nn_scrape_target_count(scr, "f"), 1);
  /* Change the label: a new target replaces the old one, which ends with stale markers. */
  snprintf(tmp, sizeof(tmp), "%s/.tmp", dir);
  f = fopen(tmp, "w");
  fprintf(f, "[{\"targets\": [\"127.0.0.1:%d\"], \"labels\": {\"env\": \"prod\"}}]", port);
  fclose(f);
  assert_int_equal(rename(tmp, path), 0);
  size_t seen = nbatches;
  bool stale_dev = false, prod = false;
  for (int i = 0; i < 100 && !(stale_dev && prod); i++) {
    run_until_batches(nbatches + 1, 200);
    for (size_t b = seen; b < nbatches; b++) {
      const char *v = value_of(b, "up{env=\"dev\"");
      stale_dev = stale_dev || (v && strcmp(v, "STALE") == 0);
      prod = prod || strstr(batches[b].data, "a{env=\"prod\"");
    }
  }
  assert_true(stale_dev);
  assert_true(prod);
  assert_int_equal(nn_scrape_target_count(scr, "f"), 1);
  /* A broken file keeps the previous targets. */
  f = fopen(tmp, "w");
  fprintf(f, "[{\"targets\": ");
  fclose(f);
  assert_int_equal(rename(tmp, path), 0);
  run_for(600);
  assert_int_equal(nn_scrape_target_count(scr, "f"), 1);
  struct nn_scrape_stats st;
  nn_scrape_get_stats(scr, &st);
  assert_true(st.discovery_errors >= 1);
  /* An empty list removes it. */
  f = fopen(tmp, "w");
  fprintf(f, "[]");
  fclose(f);
  assert_int_equal(rename(tmp, path), 0);
  for (int i = 0; i < 100 && nn_scrape_target_count(scr, "f"); i++)
    run_for(20);
  assert_int_equal(nn_scrape_target_count(scr, "f"), 0);
  finish();
  unlink(path);
  rmdir(dir);
}

static void file_sd_parses_yaml_and_rejects_bad_groups(void **state)
{
  struct nn__scrape_dtarget *v;
  size_t n;
  char err[256];
  const char *y = "- targets: ['a:1', 'b:2']\n  labels:\n    env: x\n- targets: ['c:3']\n";
  assert_int_equal(nn__scrape_file_sd_parse("/x/t.yml", y, strlen(y), &v, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 3);
  assert_string_equal(nn_labels_get(v[1].labels, v[1].n, "__address__"), "b:2");
  assert_string_equal(nn_labels_get(v[1].labels, v[1].n, "env"), "x");
  assert_string_equal(nn_labels_get(v[2].labels, v[2].n, "__meta_filepath"), "/x/t.yml");
  nn__scrape_dtargets_free(v, n);
  const char *bad = "[{\"targets\": \"a:1\"}]";
  assert_int_equal(
      nn__scrape_file_sd_parse("/x/t.json", bad, strlen(bad), &v, &n, err, sizeof(err)), NN_EINVAL);
  assert_non_null(strstr(err, "group 0"));
  const char *badl = "- targets: [a]\n  labels: {\"b-c\": d}\n";
  assert_int_equal(
      nn__scrape_file_sd_parse("/x/t.yaml", badl, strlen(badl), &v, &n, err, sizeof(err)),
      NN_EINVAL);
  assert_non_null(strstr(err, "/x/t.yaml:2:"));
}

static char *read_fixture(const char *name)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/tests/fixtures/k8s/%s", NN_SOURCE_DIR, name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *b = calloc(1, 1 << 20);
  size_t n = fread(b, 1, (1 << 20) - 1, f);
  fclose(f);
  b[n] = '\0';
  return b;
}

static void k8s_pod_role_labels(void **state)
{
  char *text = read_fixture("pods-list.json");
  json_error_t je;
  json_t *root = json_loads(text, 0, &je);
  assert_non_null(root);
  json_t *items = json_object_get(root, "items");
  struct nn__scrape_dtarget *v;
  size_t n;
  /* Without the annotation convention: one target per container port, one for the
   * container without ports, as Prometheus's pod role. */
  assert_int_equal(nn__scrape_k8s_pod_targets(json_array_get(items, 0), false, &v, &n), 0);
  assert_int_equal(n, 3);
  const struct nn_label *l = v[1].labels;
  size_t ln = v[1].n;
  assert_string_equal(nn_labels_get(l, ln, "__address__"), "127.0.0.1:9090");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_namespace"), "shop");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_name"), "web-7d4b9c6f5-x2k8p");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_label_app_kubernetes_io_name"),
                      "web");
  assert_string_equal(
      nn_labels_get(l, ln, "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name"), "true");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_annotation_prometheus_io_scrape"),
                      "true");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_container_name"), "web");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_container_port_name"), "metrics");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_container_port_number"), "9090");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_container_port_protocol"), "TCP");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_container_init"), "false");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_ready"), "true");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_phase"), "Running");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_node_name"), "node-a");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_host_ip"), "10.0.0.11");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_controller_kind"), "ReplicaSet");
  assert_string_equal(nn_labels_get(l, ln, "__meta_kubernetes_pod_controller_name"),
                      "web-7d4b9c6f5");
  assert_non_null(
      strstr(nn_labels_get(l, ln, "__meta_kubernetes_pod_container_id"), "containerd://3f4e"));
  assert_string_equal(nn_labels_get(v[2].labels, v[2].n, "__address__"), "127.0.0.1");
  assert_null(nn_labels_get(v[2].labels, v[2].n, "__meta_kubernetes_pod_container_port_number"));
  nn__scrape_dtargets_free(v, n);
  /* Unannotated, finished and IP-less pods. */
  assert_int_equal(nn__scrape_k8s_pod_targets(json_array_get(items, 1), true, &v, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(nn__scrape_k8s_pod_targets(json_array_get(items, 1), false, &v, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(nn_labels_get(v[0].labels, v[0].n, "__meta_kubernetes_pod_ready"), "false");
  nn__scrape_dtargets_free(v, n);
  assert_int_equal(nn__scrape_k8s_pod_targets(json_array_get(items, 2), true, &v, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(nn__scrape_k8s_pod_targets(json_array_get(items, 3), true, &v, &n), 0);
  assert_int_equal(n, 0);
  json_decref(root);
  free(text);
}

/* ---- Kubernetes API fixture server over HTTPS ---- */

static char *list_body;
static char *watch_body;
static struct nn_http_req *held_watch;
static char seen_auth[256], seen_query[512];
static int watches;

static void on_pods(struct nn_http_req *req, void *ud)
{
  const char *a = nn_http_req_header(req, "Authorization", NULL);
  snprintf(seen_auth, sizeof(seen_auth), "%s", a ? a : "");
  if (strstr(req->query, "watch=1")) {
    watches++;
    if (watches == 1) {
      held_watch = req; /* answered when the test says so */
      return;
    }
    nn_http_respond(req, 200, "application/json", "", 0);
    return;
  }
  snprintf(seen_query, sizeof(seen_query), "%s", req->query);
  nn_http_respond(req, 200, "application/json", list_body, strlen(list_body));
}

static char *substitute_port(const char *text, int p)
{
  char ps[16];
  snprintf(ps, sizeof(ps), "%d", p);
  char *out = calloc(1, strlen(text) + 64);
  const char *at = strstr(text, "@PORT@");
  assert_non_null(at);
  memcpy(out, text, (size_t)(at - text));
  strcat(out, ps);
  strcat(out, at + 6);
  return out;
}

static void k8s_discovery_against_https_fixture(void **state)
{
  char dir[] = "/tmp/nn-scrape-k8s-XXXXXX", cmd[1024], cert[300], key[300], tok[300];
  assert_non_null(mkdtemp(dir));
  snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
  snprintf(key, sizeof(key), "%s/key.pem", dir);
  snprintf(tok, sizeof(tok), "%s/token", dir);
  snprintf(cmd, sizeof(cmd),
           "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
           "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
           key, cert);
  if (system(cmd) != 0)
    skip();
  FILE *f = fopen(tok, "w");
  fprintf(f, "test-token\n");
  fclose(f);
  char *raw = read_fixture("pods-list.json");
  list_body = substitute_port(raw, port);
  free(raw);
  watch_body = read_fixture("pods-watch.json");
  struct nn_http_server_opts so = {.tls_cert_file = cert, .tls_key_file = key};
  struct nn_http_server *api = nn_http_server_create(&loop, &so);
  assert_non_null(api);
  nn_http_server_route(api, "/api/v1/pods", 0, on_pods, NULL);
  assert_int_equal(nn_http_server_listen(api, "127.0.0.1:0"), 0);
  int api_port = nn_http_server_port(api);

  snprintf(body, sizeof(body), "app_requests_total 7\n");
  start("scrape_interval: 200ms\nscrape_timeout: 100ms\nscrape_configs:\n- job_name: pods\n"
        "  kubernetes_sd_configs:\n  - role: pod\n    api_server: https://127.0.0.1:%d\n"
        "    node_name: node-a\n    token_file: %s\n    ca_file: %s\n    watch_timeout: 30s\n"
        "  relabel_configs:\n"
        "  - action: labelmap\n    regex: __meta_kubernetes_pod_label_(.+)\n"
        "  - source_labels: [__meta_kubernetes_namespace]\n    target_label: namespace\n"
        "  - source_labels: [__meta_kubernetes_pod_name]\n    target_label: pod\n",
        api_port, tok, cert);
  assert_true(run_until_batches(1, 5000));
  assert_string_equal(seen_auth, "Bearer test-token");
  assert_non_null(strstr(seen_query, "fieldSelector=spec.nodeName%3Dnode-a"));
  /* One target: both container ports collapse onto the annotated port. */
  assert_int_equal(nn_scrape_target_count(scr, "pods"), 1);
  char want[300];
  snprintf(
      want, sizeof(want),
      "app_requests_total{app_kubernetes_io_name=\"web\",instance=\"127.0.0.1:%d\",job=\"pods\","
      "namespace=\"shop\",pod=\"web-7d4b9c6f5-x2k8p\",pod_template_hash=\"7d4b9c6f5\"} 7",
      port);
  if (!strstr(batches[0].data, want))
    fail_msg("want %s in\n%s", want, batches[0].data);
  assert_non_null(held_watch);

  /* The watch delivers a DELETED event: the target goes, with stale markers. */
  size_t seen = nbatches;
  nn_http_respond(held_watch, 200, "application/json", watch_body, strlen(watch_body));
  held_watch = NULL;
  for (int i = 0; i < 200 && nn_scrape_target_count(scr, "pods"); i++)
    run_for(10);
  assert_int_equal(nn_scrape_target_count(scr, "pods"), 0);
  bool stale_up = false;
  for (size_t b = seen; b < nbatches; b++)
    stale_up = stale_up || (value_of(b, "up{") && strcmp(value_of(b, "up{"), "STALE") == 0);
  assert_true(stale_up);
  finish();
  nn_http_server_destroy(api);
  run_for(50);
  free(list_body);
  free(watch_body);
  unlink(cert);
  unlink(key);
  unlink(tok);
  rmdir(dir);
}

static int free_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  bind(fd, (struct sockaddr *)&a, sizeof(a));
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

static void real_node_exporter(void **state)
{
  const char *bin = "/usr/bin/prometheus-node-exporter";
  if (access(bin, X_OK) != 0)
    skip();
  int p = free_port();
  char listen[64];
  snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", p);
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", 1);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(bin, bin, listen, "--collector.disable-defaults", "--collector.cpu",
          "--collector.meminfo", "--collector.loadavg", (char *)NULL);
    _exit(127);
  }
  assert_true(pid > 0);
  run_for(300);
  start("scrape_interval: 500ms\nscrape_timeout: 400ms\nscrape_configs:\n- job_name: node\n"
        "  static_configs:\n  - targets: ['127.0.0.1:%d']\n",
        p);
  bool ok = false;
  for (int i = 0; i < 20 && !ok; i++) {
    run_until_batches(nbatches + 1, 1000);
    ok = nbatches && value_of(nbatches - 1, "up{") &&
         strcmp(value_of(nbatches - 1, "up{"), "1") == 0;
  }
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  assert_true(ok);
  const char *b = batches[nbatches - 1].data;
  assert_non_null(strstr(b, "node_load1{"));
  assert_non_null(strstr(b, "node_memory_MemTotal_bytes{"));
  assert_non_null(strstr(b, "node_cpu_seconds_total{cpu=\"0\""));
  finish();
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(up_series_and_staleness),
      cmocka_unit_test(repeated_scrapes_use_the_series_cache),
      cmocka_unit_test(stored_label_forms_expand_exactly),
      cmocka_unit_test(sample_limit_fails_the_scrape),
      cmocka_unit_test(honor_labels_and_exported_prefix),
      cmocka_unit_test(metric_relabel_drop_and_timestamps),
      cmocka_unit_test(openmetrics_by_content_type),
      cmocka_unit_test(relabel_drops_and_rewrites_targets),
      cmocka_unit_test(self_targets_by_url),
      cmocka_unit_test(pushed_samples_go_to_self_targets_between_scrapes),
      cmocka_unit_test(populate_labels_matches_prometheus),
      cmocka_unit_test(config_check_errors),
      cmocka_unit_test(file_sd_reload),
      cmocka_unit_test(file_sd_parses_yaml_and_rejects_bad_groups),
      cmocka_unit_test(k8s_pod_role_labels),
      cmocka_unit_test(k8s_discovery_against_https_fixture),
      cmocka_unit_test(real_node_exporter),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
