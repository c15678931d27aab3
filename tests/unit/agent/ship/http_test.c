/* SPDX-License-Identifier: Apache-2.0 */
/* The ship over its real HTTP transport against a local server (127.0.0.1, random port):
 * headers and snappy body as a Loki receiver sees them, 2xx acks, 400 dead letters,
 * 429 with Retry-After, and connection errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "agent/ship/ship.h"
#include "common/buf.h"
#include "common/compress.h"
#include "common/error.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/log.h"

static uv_loop_t loop;
static struct nn_http_server *srv;
static struct nn_http_client *client;
static struct nn_ship_http *tp;
static int port;
static char tmpdir[256];

/* What the server answers and saw. */
static int answer = 204;
static const char *retry_after;
static int requests;
static char seen_encoding[64], seen_type[64], seen_tenant[64], seen_id[200], seen_auth[128];
static struct nn_buf seen_body;

static size_t nacks, ndropped;

static void copy_hdr(struct nn_http_req *req, const char *name, char *out, size_t n)
{
  const char *v = nn_http_req_header(req, name, NULL);
  snprintf(out, n, "%s", v ? v : "");
}

static void on_push(struct nn_http_req *req, void *ud)
{
  requests++;
  copy_hdr(req, "Content-Encoding", seen_encoding, sizeof(seen_encoding));
  copy_hdr(req, "Content-Type", seen_type, sizeof(seen_type));
  copy_hdr(req, "X-Scope-OrgID", seen_tenant, sizeof(seen_tenant));
  copy_hdr(req, "X-Nines-Batch-Id", seen_id, sizeof(seen_id));
  copy_hdr(req, "Authorization", seen_auth, sizeof(seen_auth));
  nn_buf_reset(&seen_body);
  if (nn_decompress(NN_CODEC_SNAPPY, req->body, req->body_len, 1 << 20, &seen_body) < 0)
    nn_buf_reset(&seen_body);
  if (retry_after)
    nn_http_add_header(req, "Retry-After", retry_after);
  if (answer == 400)
    nn_http_respond_error(req, 400, "entry too far behind");
  else
    nn_http_respond(req, answer, NULL, NULL, 0);
}

static void on_ack(void *ud, const struct nn_ship_token *t, size_t n, enum nn_ship_outcome o,
                   bool recovered)
{
  nacks += n;
  if (o == NN_SHIP_DROPPED)
    ndropped += n;
}

static void rm_rf(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      rm_rf(p);
    else
      unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static int setup(void **state)
{
  assert_int_equal(uv_loop_init(&loop), 0);
  srv = nn_http_server_create(&loop, &(struct nn_http_server_opts){0});
  assert_non_null(srv);
  assert_int_equal(nn_http_server_route(srv, "/loki/api/v1/push", 0, on_push, NULL), 0);
  assert_int_equal(nn_http_server_listen(srv, "127.0.0.1:0"), 0);
  port = nn_http_server_port(srv);
  client = nn_http_client_create(&loop, &(struct nn_http_client_opts){0});
  assert_non_null(client);
  tp = nn_ship_http_create(client, 0);
  assert_non_null(tp);
  nn_buf_init(&seen_body, 1 << 20);
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/nn_ship_http_XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  answer = 204;
  retry_after = NULL;
  requests = 0;
  nacks = ndropped = 0;
  return 0;
}

static void on_stopped(void *ud)
{
  *(bool *)ud = true;
}

static int teardown(void **state)
{
  bool stopped = false;
  nn_ship_http_destroy(tp);
  nn_http_client_destroy(client);
  nn_http_server_stop(srv, on_stopped, &stopped);
  for (int i = 0; i < 1000 && !stopped; i++)
    uv_run(&loop, UV_RUN_ONCE);
  nn_http_server_destroy(srv);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  nn_buf_fini(&seen_body);
  rm_rf(tmpdir);
  return 0;
}

static bool run_until(bool (*pred)(void), int64_t ms)
{
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + (uint64_t)ms;
  while (!pred()) {
    if (uv_now(&loop) > end)
      return false;
    uv_run(&loop, UV_RUN_ONCE);
    uv_update_time(&loop);
  }
  return true;
}

static size_t want_acks;
static bool acks_reached(void)
{
  return nacks >= want_acks;
}
static int want_requests;
static bool requests_reached(void)
{
  return requests >= want_requests;
}
static bool closed;
static bool is_closed(void)
{
  return closed;
}
static void set_closed(void *ud)
{
  closed = true;
}

static struct nn_ship *make_ship(const char *url, struct nn_ship_dest_config *d)
{
  struct nn_ship_config c;
  nn_ship_config_defaults(&c);
  c.name = "logs";
  c.payload = &nn_ship_payload_loki;
  c.data_dir = tmpdir;
  c.batch_wait_ms = 20;
  c.backoff_min_ms = 10;
  c.backoff_max_ms = 20;
  c.retry_after_max_ms = 30;
  c.fsync_interval_ms = 50;
  c.owner.on_ack = on_ack;
  nn_ship_http_transport(tp, &c.transport);
  nn_ship_dest_config_defaults(d);
  d->name = "agg";
  d->url = url;
  d->tenant = "team-a";
  d->bearer_token = "s3cret";
  d->timeout_ms = 2000;
  c.dests = d;
  c.ndests = 1;
  struct nn_ship *s;
  assert_int_equal(nn_ship_create(&loop, &c, &s), 0);
  return s;
}

static void add_lines(struct nn_ship *s, unsigned from, unsigned n)
{
  struct nn_buf e;
  nn_buf_init(&e, 4096);
  for (unsigned i = from; i < from + n; i++) {
    char line[64];
    int len = snprintf(line, sizeof(line), "GET /api %u", i);
    nn_buf_reset(&e);
    assert_int_equal(nn_ship_loki_entry_encode(&e, 1700000000000000000LL + i, line, (size_t)len),
                     0);
    struct nn_ship_token t = {1, i + 1};
    assert_int_equal(nn_ship_add(s, "{app=\"web\"}", 11, e.data, e.len, &t), 0);
  }
  nn_buf_fini(&e);
}

static void close_ship(struct nn_ship *s)
{
  closed = false;
  nn_ship_close(s, set_closed, NULL);
  assert_true(run_until(is_closed, 5000));
}

static void http_transport_delivers_and_handles_statuses(void **state)
{
  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/loki/api/v1/push", port);
  struct nn_ship_dest_config d;
  struct nn_ship *s = make_ship(url, &d);

  /* 204: delivered, headers and body as Loki expects them. */
  add_lines(s, 0, 5);
  want_acks = 1; /* tokens of one id coalesce: one token per batch */
  assert_true(run_until(acks_reached, 5000));
  assert_int_equal(ndropped, 0);
  assert_string_equal(seen_encoding, "snappy");
  assert_string_equal(seen_type, "application/x-protobuf");
  assert_string_equal(seen_tenant, "team-a");
  assert_string_equal(seen_auth, "Bearer s3cret");
  assert_non_null(strstr(seen_id, "logs:"));
  assert_non_null(memmem(seen_body.data, seen_body.len, "{app=\"web\"}", 11));
  assert_non_null(memmem(seen_body.data, seen_body.len, "GET /api 4", 10));
  struct nn_ship_dest_stats st;
  assert_int_equal(nn_ship_dest_stats(s, 0, &st), 0);
  assert_int_equal(st.batches_sent, 1);
  assert_int_equal(st.records_sent, 5);

  /* 429 with Retry-After: 2 (seconds) waits the capped 30 ms, then succeeds. */
  answer = 429;
  retry_after = "2";
  int before = requests;
  add_lines(s, 5, 3);
  want_requests = before + 1;
  assert_true(run_until(requests_reached, 5000));
  answer = 204;
  retry_after = NULL;
  want_acks = 2;
  assert_true(run_until(acks_reached, 5000));
  assert_int_equal(nn_ship_dest_stats(s, 0, &st), 0);
  assert_int_equal(st.last_delay_ms, 30);
  assert_int_equal(st.batches_retried, 1);

  /* 400: not retried, dead-lettered, acked as dropped. */
  answer = 400;
  before = requests;
  add_lines(s, 8, 2);
  want_acks = 3;
  assert_true(run_until(acks_reached, 5000));
  assert_int_equal(ndropped, 1);
  assert_int_equal(requests, before + 1);
  assert_int_equal(nn_ship_dest_stats(s, 0, &st), 0);
  assert_int_equal(st.dropped_rejected, 2);
  assert_int_equal(st.batches_deadlettered, 1);
  close_ship(s);
}

static void http_transport_retries_connection_errors(void **state)
{
  /* A port nobody listens on: bind one, note it, close it. */
  uv_tcp_t t;
  struct sockaddr_in a;
  uv_tcp_init(&loop, &t);
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len);
  int dead = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);

  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/loki/api/v1/push", dead);
  struct nn_ship_dest_config d;
  struct nn_ship *s = make_ship(url, &d);
  add_lines(s, 0, 3);
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + 300;
  struct nn_ship_dest_stats st;
  do {
    uv_run(&loop, UV_RUN_ONCE);
    uv_update_time(&loop);
    assert_int_equal(nn_ship_dest_stats(s, 0, &st), 0);
  } while (st.batches_failed < 3 && uv_now(&loop) < end);
  assert_true(st.batches_failed >= 3);
  assert_true(st.failures >= 3);
  assert_true(st.last_delay_ms >= 10 && st.last_delay_ms <= 20);
  assert_int_equal(nacks, 0);      /* nothing acked while the receiver is unreachable */
  assert_true(st.spool_bytes > 0); /* the failed batch is on disk */
  close_ship(s);
}

int main(void)
{
  nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(http_transport_delivers_and_handles_statuses, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(http_transport_retries_connection_errors, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
