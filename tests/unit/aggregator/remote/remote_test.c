/* SPDX-License-Identifier: Apache-2.0 */
/* Remote write out against an in-process remote-write receiver on 127.0.0.1: the
 * remote_write option table and its positioned errors; every committed sample delivered
 * exactly once, with external labels and write_relabel_configs per destination; across a
 * close and reopen (saved positions); across a receiver outage (retries, spool) and a
 * close while the receiver is down (spooled batches sent by the next run, never read
 * twice from the WAL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "aggregator/remote/remote.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/error.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/pool.h"
#include "common/wire.h"

/* ---- configuration ---- */

struct top {
  struct nn_cfg_list rw;
};

static const struct nn_cfg_option top_options[] = {
    {.name = "remote_write",
     .type = NN_CFG_LIST,
     .offset = offsetof(struct top, rw),
     .sub = nn_remote_dest_options,
     .elem_size = sizeof(struct nn_remote_dest_config)},
    {0},
};

static int load(const char *yaml, struct top *t, char *msg, size_t len)
{
  struct nn_cfg_error err;
  memset(t, 0, sizeof(*t));
  int rc = nn_cfg_load_string("test.yml", yaml, strlen(yaml), top_options, t, &err);
  if (rc < 0)
    nn_cfg_error_format(&err, msg, len);
  else
    rc = nn_remote_config_check(&t->rw, msg, len);
  return rc;
}

static void test_config(void **state)
{
  struct top t;
  char msg[1024];
  assert_int_equal(load("remote_write:\n"
                        "  - name: vm\n"
                        "    url: http://127.0.0.1:8428/api/v1/write\n"
                        "    headers: {X-Scope-OrgID: a}\n"
                        "    write_relabel_configs:\n"
                        "      - source_labels: [job]\n"
                        "        regex: api\n"
                        "        action: keep\n",
                        &t, msg, sizeof(msg)),
                   0);
  const struct nn_remote_dest_config *d = t.rw.items;
  assert_int_equal(t.rw.n, 1);
  assert_string_equal(d->name, "vm");
  assert_int_equal(d->codec, NN_CODEC_SNAPPY); /* remote write 1.0 */
  assert_int_equal(d->spool_max, 1ull << 30);
  assert_int_equal(d->max_inflight, 1);
  assert_int_equal(d->write_relabel_configs.n, 1);
  assert_int_equal(d->headers.n, 1);
  nn_cfg_free(top_options, &t);

  static const struct {
    const char *yaml, *want;
  } bad[] = {
      {"remote_write:\n  - name: a/b\n    url: http://h/\n",
       "test.yml:2:11: field \"remote_write[0].name\""},
      {"remote_write:\n  - name: a\n    url: http://h/\n    codec: gzip\n", "test.yml:4:12:"},
      {"remote_write:\n  - name: a\n    url: h:80\n",
       "test.yml:3:10: field \"remote_write[0].url\""},
      {"remote_write:\n  - name: a\n", "missing required field \"url\""},
      {"remote_write:\n  - name: a\n    url: http://h/\n    write_relabel_configs:\n"
       "      - action: explode\n",
       "test.yml:5:"},
      {"remote_write:\n  - name: a\n    url: http://h/\n  - name: a\n    url: http://i/\n",
       "remote_write[1].name"},
      {"remote_write:\n  - name: a\n    url: http://h/\n    max_inflight: 0\n",
       "remote_write[0].max_inflight"},
      {"remote_write:\n  - name: a\n    url: http://h/\n    headers: {Content-Type: x}\n",
       "remote_write[0].headers"},
      {"remote_write:\n  - name: a\n    url: http://h/\n    spool_size: 1GiB\n", "spool_max"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    msg[0] = '\0';
    int rc = load(bad[i].yaml, &t, msg, sizeof(msg));
    if (rc == 0 || !strstr(msg, bad[i].want))
      fail_msg("case %zu: rc=%d msg=%s (want %s)", i, rc, msg, bad[i].want);
    nn_cfg_free(top_options, &t);
  }
}

/* ---- a remote-write receiver ---- */

#define MAX_GOT 65536

static struct {
  uv_loop_t loop;
  struct nn_http_server *srv;
  int port;
  int status;         /* answer; 0 = 204 */
  char *got[MAX_GOT]; /* "labels@t=v" per received sample */
  size_t ngot;
  size_t requests;
  char dir[64];
  struct nn_tsdb *db;
  struct nn_metrics *metrics;
  bool closed;
} f;

static void on_write(struct nn_http_req *req, void *ud)
{
  f.requests++;
  if (f.status) {
    nn_http_respond(req, f.status, "text/plain", "down", 4);
    return;
  }
  struct nn_pool pool;
  nn_pool_init(&pool, 64u << 20);
  Prometheus__WriteRequest *wr = NULL;
  char err[256];
  int rc = nn_wire_rw_unpack(NN_CODEC_SNAPPY, req->body, req->body_len, 64u << 20, &pool, &wr, err,
                             sizeof(err));
  if (rc < 0) {
    nn_pool_clear(&pool);
    nn_http_respond(req, 400, "text/plain", err, strlen(err));
    return;
  }
  for (size_t i = 0; i < wr->n_timeseries; i++) {
    const Prometheus__TimeSeries *ts = wr->timeseries[i];
    char lbl[512];
    size_t o = 0;
    for (size_t l = 0; l < ts->n_labels; l++)
      o += (size_t)snprintf(lbl + o, sizeof(lbl) - o, "%s%s=%s", l ? "," : "", ts->labels[l]->name,
                            ts->labels[l]->value);
    for (size_t s = 0; s < ts->n_samples && f.ngot < MAX_GOT; s++) {
      char *e = malloc(600);
      snprintf(e, 600, "%s@%lld=%g", lbl, (long long)ts->samples[s]->timestamp,
               ts->samples[s]->value);
      f.got[f.ngot++] = e;
    }
  }
  nn_pool_clear(&pool);
  nn_http_respond(req, 204, "text/plain", "", 0);
}

static size_t count(const char *prefix_labels, long long t, double v)
{
  char want[600];
  snprintf(want, sizeof(want), "%s@%lld=%g", prefix_labels, t, v);
  size_t n = 0;
  for (size_t i = 0; i < f.ngot; i++)
    n += strcmp(f.got[i], want) == 0;
  return n;
}

static size_t count_matching(const char *needle)
{
  size_t n = 0;
  for (size_t i = 0; i < f.ngot; i++)
    n += strstr(f.got[i], needle) != NULL;
  return n;
}

static uint64_t segment_bytes; /* 0: the store's default */

static void open_db(void)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  if (segment_bytes)
    o.wal_segment_bytes = segment_bytes;
  o.dir = f.dir;
  o.loop = &f.loop;
  o.wal_flush_interval_ms = 1;
  o.wal_fsync = false;
  assert_int_equal(nn_tsdb_open(&o, &f.db), 0);
}

static int setup(void **state)
{
  memset(&f, 0, sizeof(f));
  snprintf(f.dir, sizeof(f.dir), "/tmp/nn-remote-XXXXXX");
  if (!mkdtemp(f.dir))
    return -1;
  uv_loop_init(&f.loop);
  struct nn_http_server_opts so = {.max_body_bytes = 64u << 20};
  f.srv = nn_http_server_create(&f.loop, &so);
  if (!f.srv || nn_http_server_route(f.srv, "/api/v1/write", 0, on_write, NULL) < 0 ||
      nn_http_server_listen(f.srv, "127.0.0.1:0") < 0)
    return -1;
  f.port = nn_http_server_port(f.srv);
  f.metrics = nn_metrics_create();
  open_db();
  return 0;
}

static void on_stopped(void *ud)
{
  *(bool *)ud = true;
}

static int teardown(void **state)
{
  bool stopped = false;
  nn_http_server_stop(f.srv, on_stopped, &stopped);
  for (int i = 0; i < 10000 && !stopped; i++)
    uv_run(&f.loop, UV_RUN_ONCE);
  nn_http_server_destroy(f.srv);
  nn_tsdb_close(f.db);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  uv_loop_close(&f.loop);
  nn_metrics_destroy(f.metrics);
  for (size_t i = 0; i < f.ngot; i++)
    free(f.got[i]);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f.dir);
  if (system(cmd) != 0)
    return -1;
  return 0;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct nn_remote *cur;
static size_t cur_n;

static bool caught_up(void)
{
  for (size_t i = 0; i < cur_n; i++) {
    struct nn_remote_dest_stats st;
    assert_int_equal(nn_remote_dest_stats(cur, i, &st), 0);
    if (!st.caught_up)
      return false;
  }
  return true;
}

static bool run_until(bool (*cond)(void), double seconds)
{
  double end = now_s() + seconds;
  while (now_s() < end) {
    uv_run(&f.loop, UV_RUN_NOWAIT);
    if (cond())
      return true;
    usleep(2000);
  }
  return false;
}

static void on_closed(void *ud)
{
  f.closed = true;
}

static bool is_closed(void)
{
  return f.closed;
}

/* Two destinations: "all" (with the external label), and "api" keeping job="api" only. */
static struct nn_cfg_list dests;
static struct top cfg_top;
static struct nn_cfg_strmap ext;

static const char *extra = ""; /* more options for "all" */

static struct nn_remote *open_remote(void)
{
  char yaml[1024];
  snprintf(yaml, sizeof(yaml),
           "remote_write:\n"
           "  - name: all\n"
           "    url: http://127.0.0.1:%d/api/v1/write\n"
           "%s"
           "    batch_wait: 20ms\n"
           "    min_backoff: 10ms\n"
           "    max_backoff: 50ms\n"
           "    queue_max: 4KiB\n"
           "  - name: api\n"
           "    url: http://127.0.0.1:%d/api/v1/write\n"
           "    batch_wait: 20ms\n"
           "    min_backoff: 10ms\n"
           "    max_backoff: 50ms\n"
           "    write_relabel_configs:\n"
           "      - source_labels: [job]\n"
           "        regex: api\n"
           "        action: keep\n"
           "      - target_label: dest\n"
           "        replacement: api\n",
           f.port, extra, f.port);
  char msg[512];
  if (cfg_top.rw.n == 0)
    assert_int_equal(load(yaml, &cfg_top, msg, sizeof(msg)), 0);
  dests = cfg_top.rw;
  static char *ek[] = {"cluster", "job"}, *ev[] = {"eu", "never-overrides"};
  ext = (struct nn_cfg_strmap){ek, ev, 2};
  struct nn_remote_opts o = {
      .loop = &f.loop,
      .data_dir = f.dir,
      .db = f.db,
      .dests = &dests,
      .metrics = f.metrics,
      .external_labels = &ext,
      .poll_ms = 5,
  };
  f.closed = false;
  /* A registry per run: a run's metrics read its own state. */
  nn_metrics_destroy(f.metrics);
  o.metrics = f.metrics = nn_metrics_create();
  cur = nn_remote_create(&o);
  assert_non_null(cur);
  cur_n = dests.n;
  return cur;
}

static void close_remote(void)
{
  nn_remote_close(cur, on_closed, NULL);
  assert_true(run_until(is_closed, 10));
  cur = NULL;
}

/* Appends samples t = base..base+n-1 for series {__name__=m, job=api|web, i=k}. */
static void append(int64_t base, int n)
{
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(f.db);
  for (int k = 0; k < 4; k++) {
    char iv[8];
    snprintf(iv, sizeof(iv), "%d", k);
    struct nn_label ls[] = {{"__name__", "m"}, {"i", iv}, {"job", k % 2 ? "web" : "api"}};
    for (int s = 0; s < n; s++)
      assert_int_equal(nn_tsdb_appender_append(a, ls, 3, base + s, (double)(base + s) + k, NULL),
                       0);
    /* One commit per series: several WAL records. */
    assert_int_equal(nn_tsdb_appender_commit(a), 0);
  }
  nn_tsdb_appender_destroy(a);
  assert_int_equal(nn_tsdb_sync(f.db), 0);
}

static void assert_once(int64_t base, int n)
{
  for (int k = 0; k < 4; k++) {
    char all[128], api[128];
    const char *job = k % 2 ? "web" : "api";
    snprintf(all, sizeof(all), "__name__=m,cluster=eu,i=%d,job=%s", k, job);
    snprintf(api, sizeof(api), "__name__=m,cluster=eu,dest=api,i=%d,job=%s", k, job);
    for (int s = 0; s < n; s++) {
      double v = (double)(base + s) + k;
      size_t c = count(all, base + s, v);
      if (c != 1)
        fail_msg("all: series %d t=%lld arrived %zu times", k, (long long)(base + s), c);
      c = count(api, base + s, v);
      if (c != (k % 2 ? 0u : 1u))
        fail_msg("api: series %d t=%lld arrived %zu times", k, (long long)(base + s), c);
    }
  }
}

static void test_exactly_once_across_reopen(void **state)
{
  append(1000, 50); /* before the first start: a new destination starts at the WAL's end */
  open_remote();
  append(2000, 50);
  assert_true(run_until(caught_up, 10));
  assert_int_equal(count_matching("@1000="), 0);
  assert_once(2000, 50);
  assert_int_equal(f.ngot, 4 * 50 + 2 * 50);
  struct nn_remote_dest_stats st;
  assert_int_equal(nn_remote_dest_stats(cur, 1, &st), 0);
  assert_int_equal(st.samples_filtered, 2 * 50);
  assert_int_equal(st.series, 4);
  close_remote();

  /* Written while no remote runs, then a restart of the store too. */
  append(3000, 30);
  nn_tsdb_close(f.db);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  open_db();
  append(4000, 30);
  open_remote();
  assert_true(run_until(caught_up, 10));
  assert_once(2000, 50);
  assert_once(3000, 30);
  assert_once(4000, 30);
  assert_int_equal(f.ngot, 6 * 50 + 6 * 60);

  /* /metrics shows the destination's queue and filter counters. */
  struct nn_buf out;
  nn_buf_init(&out, 1 << 20);
  assert_int_equal(nn_metrics_render(f.metrics, &out), 0);
  assert_non_null(strstr(out.data,
                         "nines_agent_ship_batches_sent_total{source=\"remote_write.all\","
                         "destination=\"all\"}"));
  assert_non_null(strstr(out.data, "nines_remote_write_samples_dropped_total{destination=\"api\","
                                   "reason=\"write_relabel\"} 120"));
  /* Every series once: two destinations must not both export the same one. */
  char *text = strndup(out.data, out.len), *next;
  char *lines[1024];
  size_t nl = 0;
  for (char *l = text; l && *l && nl < 1024; l = next) {
    next = strchr(l, '\n');
    if (next)
      *next++ = '\0';
    if (l[0] == '#')
      continue;
    char *sp = strrchr(l, ' ');
    if (sp)
      *sp = '\0';
    for (size_t i = 0; i < nl; i++)
      if (strcmp(lines[i], l) == 0)
        fail_msg("/metrics has %s twice", l);
    lines[nl++] = l;
  }
  free(text);
  nn_buf_fini(&out);
  close_remote();
  nn_cfg_free(top_options, &cfg_top);
}

static bool received_requests(void)
{
  return f.requests >= 6;
}

static void test_outage_and_close_while_down(void **state)
{
  open_remote();
  f.status = 503;
  append(5000, 40);
  assert_true(run_until(received_requests, 10)); /* retried, nothing delivered */
  assert_int_equal(f.ngot, 0);
  f.status = 0;
  assert_true(run_until(caught_up, 10));
  assert_once(5000, 40);

  /* Down again, and the remote closes: queued batches go to the spool and count as
   * delivered; the next run sends them from the spool and does not read them again. */
  f.status = 503;
  append(6000, 40);
  size_t before = f.requests;
  for (int i = 0; i < 200 && f.requests < before + 2; i++) {
    uv_run(&f.loop, UV_RUN_NOWAIT);
    usleep(2000);
  }
  close_remote();
  append(7000, 10);
  f.status = 0;
  open_remote();
  assert_true(run_until(caught_up, 10));
  /* Spooled batches are sent from the spool after the new run's acks; wait for them. */
  for (int i = 0; i < 2000 && f.ngot < 540; i++) {
    uv_run(&f.loop, UV_RUN_NOWAIT);
    usleep(2000);
  }
  assert_once(5000, 40);
  assert_once(6000, 40);
  assert_once(7000, 10);
  close_remote();
  nn_cfg_free(top_options, &cfg_top);
}

static bool retired(void)
{
  struct nn_remote_dest_stats a, b;
  assert_int_equal(nn_remote_dest_stats(cur, 0, &a), 0);
  assert_int_equal(nn_remote_dest_stats(cur, 1, &b), 0);
  return a.series_retired == 1 && b.series_retired == 1;
}

static void test_checkpoint_retires_series(void **state)
{
  open_remote();
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(f.db);
  struct nn_label g[] = {{"__name__", "g"}, {"job", "api"}};
  assert_int_equal(nn_tsdb_appender_append(a, g, 2, 10, 1, NULL), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  nn_tsdb_appender_destroy(a);
  append(100, 20);
  assert_true(run_until(caught_up, 10));
  struct nn_remote_dest_stats st;
  assert_int_equal(nn_remote_dest_stats(cur, 0, &st), 0);
  assert_int_equal(st.series, 5);
  /* g leaves the head; the checkpoint lists only the m series. */
  assert_int_equal(nn_tsdb_head_truncate(f.db, 50), 1);
  assert_int_equal(nn_tsdb_checkpoint(f.db), 0);
  append(200, 5); /* the reader moves past the checkpoint's segment */
  assert_true(run_until(retired, 10));
  assert_int_equal(nn_remote_dest_stats(cur, 0, &st), 0);
  assert_int_equal(st.series, 4);
  append(300, 5); /* the m series are still known */
  assert_true(run_until(caught_up, 10));
  assert_int_equal(nn_remote_dest_stats(cur, 0, &st), 0);
  assert_int_equal(st.samples_unknown, 0);
  assert_once(300, 5);
  close_remote();
  nn_cfg_free(top_options, &cfg_top);
}

static bool all_cut_loose(void)
{
  struct nn_remote_dest_stats st;
  assert_int_equal(nn_remote_dest_stats(cur, 0, &st), 0);
  return st.cut_loose;
}

static bool api_spooled(void)
{
  struct nn_remote_dest_stats st;
  assert_int_equal(nn_remote_dest_stats(cur, 1, &st), 0);
  return st.saved_segment >= 39;
}

/* A destination too far behind stops holding the WAL: a checkpoint then deletes segments
 * it has not read, and it skips them (counted) when the receiver is back. */
static void test_cut_loose(void **state)
{
  nn_tsdb_close(f.db);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  segment_bytes = 1024;
  open_db();
  extra = "    max_wal_backlog: 2KiB\n    spool_max: 0\n    batch_size: 1KiB\n";
  open_remote();
  f.status = 503;
  for (int i = 0; i < 40; i++)
    append(1000 + i * 100, 50); /* one write each: 1 KiB segments, far past queue_max */
  assert_true(run_until(all_cut_loose, 10));
  struct nn_remote_dest_stats st;
  assert_int_equal(nn_remote_dest_stats(cur, 1, &st), 0);
  assert_false(st.cut_loose); /* "api" has a spool: it moves on once that is fsynced */
  assert_true(run_until(api_spooled, 10));
  /* The head drops everything, and the checkpoint removes the segments below it. */
  assert_int_equal(nn_tsdb_head_truncate(f.db, INT64_MAX), 4);
  assert_int_equal(nn_tsdb_checkpoint(f.db), 0);
  append(5000, 10);
  f.status = 0;
  assert_true(run_until(caught_up, 10));
  assert_int_equal(nn_remote_dest_stats(cur, 0, &st), 0);
  assert_true(st.segments_skipped > 0);
  assert_int_equal(st.samples_unknown, 0);
  assert_once(5000, 10); /* new series records after the checkpoint: sent */
  close_remote();
  nn_cfg_free(top_options, &cfg_top);
  extra = "";
  segment_bytes = 0;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config),
      cmocka_unit_test_setup_teardown(test_exactly_once_across_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outage_and_close_while_down, setup, teardown),
      cmocka_unit_test_setup_teardown(test_checkpoint_retires_series, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cut_loose, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
