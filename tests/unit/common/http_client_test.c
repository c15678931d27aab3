/* SPDX-License-Identifier: Apache-2.0 */
/* The curl-multi client on a libuv loop against our own server (and a raw TCP responder
 * for streamed bodies) on 127.0.0.1: methods, headers, timeouts, caps, refused
 * connections, keep-alive, 200 concurrent requests and cancellation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/error.h"
#include "common/http_client.h"
#include "common/http_server.h"

struct result {
  bool done;
  int rc;
  int status;
  char body[256];
  size_t body_len;
  char retry_after[32];
  char error[256];
  uint64_t at;
};

struct fx {
  uv_loop_t loop;
  struct nn_http_server *srv;
  struct nn_http_client *cli;
  char base[64];
  struct nn_http_req *held[4];
  size_t nheld;
  char remotes[8][64];
  size_t nremotes;
  bool stopped;
  size_t max_conns_seen;
};

static void on_tick(uv_timer_t *t)
{
}

static bool run_until(uv_loop_t *loop, const bool *flag, uint64_t timeout_ms)
{
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, on_tick, 5, 5);
  uint64_t end = uv_now(loop) + timeout_ms;
  while (!*flag && uv_now(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return *flag;
}

static void on_done(const struct nn_http_response *resp, void *ud)
{
  struct result *r = ud;
  r->done = true;
  r->rc = resp->rc;
  r->status = resp->status;
  r->body_len = resp->body_len;
  snprintf(r->body, sizeof(r->body), "%.*s", (int)resp->body_len, resp->body);
  snprintf(r->error, sizeof(r->error), "%s", resp->error);
  const char *h = nn_http_response_header(resp, "retry-after", NULL);
  snprintf(r->retry_after, sizeof(r->retry_after), "%s", h ? h : "");
}

static void send_req(struct fx *f, const struct nn_http_request *tmpl, const char *path,
                     struct result *r)
{
  char url[256];
  snprintf(url, sizeof(url), "%s%s", f->base, path);
  struct nn_http_request req = *tmpl;
  req.url = url;
  memset(r, 0, sizeof(*r));
  assert_int_equal(nn_http_client_send(f->cli, &req, on_done, r), 0);
}

static void on_stopped(void *ud)
{
  ((struct fx *)ud)->stopped = true;
}

/* ---- server side ---- */

static void h_echo(struct nn_http_req *req, void *ud)
{
  struct fx *f = ud;
  char b[256];
  const char *ct = nn_http_req_header(req, "content-type", NULL);
  const char *ua = nn_http_req_header(req, "user-agent", NULL);
  int n = snprintf(b, sizeof(b), "%s %.*s ct=%s ua=%s", req->method, (int)req->body_len,
                   req->body ? (const char *)req->body : "", ct ? ct : "-", ua ? ua : "-");
  if (f->nremotes < 8)
    snprintf(f->remotes[f->nremotes++], sizeof(f->remotes[0]), "%s", req->remote_addr);
  if (nn_http_server_connections(f->srv) > f->max_conns_seen)
    f->max_conns_seen = nn_http_server_connections(f->srv);
  nn_http_add_header(req, "Retry-After", "17");
  nn_http_respond(req, 200, "text/plain", b, (size_t)n);
}

static void h_big(struct nn_http_req *req, void *ud)
{
  static char big[100000];
  memset(big, 'b', sizeof(big));
  nn_http_respond(req, 200, "application/octet-stream", big, sizeof(big));
}

static void h_hold(struct nn_http_req *req, void *ud)
{
  struct fx *f = ud;
  assert_true(f->nheld < 4);
  f->held[f->nheld++] = req;
}

static void h_count(struct nn_http_req *req, void *ud)
{
  struct fx *f = ud;
  if (nn_http_server_connections(f->srv) > f->max_conns_seen)
    f->max_conns_seen = nn_http_server_connections(f->srv);
  nn_http_respond(req, 200, "text/plain", req->query, req->query_len);
}

static struct fx *fx_new(const struct nn_http_client_opts *co)
{
  struct fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->srv = nn_http_server_create(&f->loop, NULL);
  assert_non_null(f->srv);
  assert_int_equal(nn_http_server_route(f->srv, "/echo", 0, h_echo, f), 0);
  assert_int_equal(nn_http_server_route(f->srv, "/big", 0, h_big, f), 0);
  assert_int_equal(nn_http_server_route(f->srv, "/hold", 0, h_hold, f), 0);
  assert_int_equal(nn_http_server_route(f->srv, "/count", 0, h_count, f), 0);
  assert_int_equal(nn_http_server_listen(f->srv, "127.0.0.1:0"), 0);
  snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", nn_http_server_port(f->srv));
  f->cli = nn_http_client_create(&f->loop, co);
  assert_non_null(f->cli);
  return f;
}

static void fx_free(struct fx *f)
{
  nn_http_client_destroy(f->cli);
  for (size_t i = 0; i < f->nheld; i++)
    nn_http_respond(f->held[i], 200, NULL, "", 0);
  uint64_t t0 = uv_now(&f->loop);
  nn_http_server_stop(f->srv, on_stopped, f);
  assert_true(run_until(&f->loop, &f->stopped, 10000));
  assert_true(uv_now(&f->loop) - t0 < 2000); /* nothing left to wait for */
  nn_http_server_destroy(f->srv);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
}

/* ---- tests ---- */

static void get_post_put_and_head_round_trip(void **state)
{
  struct fx *f = fx_new(&(struct nn_http_client_opts){.user_agent = "tester/2"});
  struct result r;
  send_req(f, &(struct nn_http_request){0}, "/echo", &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "GET  ct=- ua=tester/2");
  assert_string_equal(r.error, "");

  const char *hdrs[] = {"Content-Type: application/x-protobuf"};
  send_req(
      f, &(struct nn_http_request){.body = "hello", .body_len = 5, .headers = hdrs, .nheaders = 1},
      "/echo", &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_string_equal(r.body, "POST hello ct=application/x-protobuf ua=tester/2");

  send_req(f, &(struct nn_http_request){.method = "PUT", .body = "x", .body_len = 1}, "/echo", &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_memory_equal(r.body, "PUT x", 5);

  send_req(f, &(struct nn_http_request){.method = "HEAD"}, "/echo", &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 0);
  fx_free(f);
}

static void response_headers_are_readable(void **state)
{
  struct fx *f = fx_new(NULL);
  struct result r;
  send_req(f, &(struct nn_http_request){0}, "/echo", &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_string_equal(r.retry_after, "17");
  send_req(f, &(struct nn_http_request){0}, "/nothing-here", &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.status, 404);
  assert_string_equal(r.retry_after, "");
  fx_free(f);
}

static void route_that_never_responds_times_out(void **state)
{
  struct fx *f = fx_new(NULL);
  struct result r;
  uint64_t t0 = uv_now(&f->loop);
  send_req(f, &(struct nn_http_request){.timeout_ms = 200}, "/hold", &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  uint64_t took = uv_now(&f->loop) - t0;
  assert_int_equal(r.rc, NN_ETIMEDOUT);
  assert_int_equal(r.status, 0);
  assert_true(r.error[0] != '\0');
  assert_true(took >= 190 && took < 1500);
  fx_free(f);
}

static void response_over_cap_is_etoobig(void **state)
{
  struct fx *f = fx_new(NULL);
  struct result r;
  send_req(f, &(struct nn_http_request){.max_response_bytes = 10000}, "/big", &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.rc, NN_ETOOBIG);
  send_req(f, &(struct nn_http_request){.max_response_bytes = 100000}, "/big", &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.body_len, 100000);
  fx_free(f);
}

/* A raw responder that answers every connection with a chunked body of 64 KiB, so the cap
 * is hit while the body streams in (no Content-Length to reject up front). */
struct raw {
  uv_tcp_t listener;
  uv_tcp_t conn;
  uv_write_t w;
  char resp[70000];
  size_t len;
  bool accepted;
};

static void raw_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
  static char buf[4096];
  *b = uv_buf_init(buf, sizeof(buf));
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
  struct raw *raw = s->data;
  if (n > 0 && raw->len) {
    uv_buf_t out = uv_buf_init(raw->resp, (unsigned)raw->len);
    uv_write(&raw->w, s, &out, 1, NULL);
    raw->len = 0;
  } else if (n < 0) {
    uv_read_stop(s);
  }
}

static void raw_accept(uv_stream_t *l, int status)
{
  struct raw *raw = l->data;
  assert_false(raw->accepted);
  uv_tcp_init(l->loop, &raw->conn);
  raw->conn.data = raw;
  assert_int_equal(uv_accept(l, (uv_stream_t *)&raw->conn), 0);
  raw->accepted = true;
  uv_read_start((uv_stream_t *)&raw->conn, raw_alloc, raw_read);
}

static void streamed_response_over_cap_is_etoobig(void **state)
{
  struct fx *f = fx_new(NULL);
  struct raw *raw = calloc(1, sizeof(*raw));
  raw->len = (size_t)snprintf(raw->resp, sizeof(raw->resp),
                              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", 65536);
  memset(raw->resp + raw->len, 'z', 65536);
  raw->len += 65536;
  memcpy(raw->resp + raw->len, "\r\n0\r\n\r\n", 7);
  raw->len += 7;
  uv_tcp_init(&f->loop, &raw->listener);
  raw->listener.data = raw;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&raw->listener, (struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&raw->listener, 8, raw_accept), 0);
  int alen = sizeof(a);
  uv_tcp_getsockname(&raw->listener, (struct sockaddr *)&a, &alen);
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
  struct result r = {0};
  assert_int_equal(
      nn_http_client_send(f->cli, &(struct nn_http_request){.url = url, .max_response_bytes = 1000},
                          on_done, &r),
      0);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.rc, NN_ETOOBIG);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.error, "maximum"));
  uv_close((uv_handle_t *)&raw->listener, NULL);
  if (raw->accepted)
    uv_close((uv_handle_t *)&raw->conn, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  fx_free(f);
  free(raw);
}

static void connection_refused_is_eio_with_reason(void **state)
{
  struct fx *f = fx_new(NULL);
  /* A port that was free a moment ago: bind, read it, close. */
  uv_tcp_t t;
  uv_tcp_init(&f->loop, &t);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&a, 0), 0);
  int alen = sizeof(a);
  uv_tcp_getsockname(&t, (struct sockaddr *)&a, &alen);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(a.sin_port));
  struct result r = {0};
  assert_int_equal(nn_http_client_send(f->cli, &(struct nn_http_request){.url = url}, on_done, &r),
                   0);
  assert_false(r.done); /* never called from inside send */
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.rc, NN_EIO);
  assert_true(r.error[0] != '\0');
  /* Schemes other than http(s) are refused too. */
  assert_int_equal(nn_http_client_send(
                       f->cli, &(struct nn_http_request){.url = "file:///etc/passwd"}, on_done, &r),
                   0);
  r.done = false;
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.rc, NN_EIO);
  assert_int_equal(nn_http_client_send(f->cli, &(struct nn_http_request){0}, on_done, &r),
                   NN_EINVAL);
  fx_free(f);
}

static void sequential_requests_reuse_one_connection(void **state)
{
  struct fx *f = fx_new(NULL);
  for (int i = 0; i < 5; i++) {
    struct result r;
    send_req(f, &(struct nn_http_request){0}, "/echo", &r);
    assert_true(run_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.status, 200);
  }
  assert_int_equal(f->nremotes, 5);
  for (int i = 1; i < 5; i++)
    assert_string_equal(f->remotes[i], f->remotes[0]);
  assert_int_equal(nn_http_server_connections(f->srv), 1);
  fx_free(f);
}

static void two_hundred_concurrent_requests_complete(void **state)
{
  struct fx *f = fx_new(&(struct nn_http_client_opts){.max_conns_per_host = 16});
  enum { N = 200 };
  struct result *r = calloc(N, sizeof(*r));
  for (int i = 0; i < N; i++) {
    char path[32];
    snprintf(path, sizeof(path), "/count?i=%d", i);
    send_req(f, &(struct nn_http_request){0}, path, &r[i]);
  }
  assert_int_equal(nn_http_client_inflight(f->cli), N);
  bool all = false;
  for (int spins = 0; spins < 1000 && !all; spins++) {
    run_until(&f->loop, &all, 10);
    all = nn_http_client_inflight(f->cli) == 0;
  }
  assert_true(all);
  for (int i = 0; i < N; i++) {
    char want[32];
    snprintf(want, sizeof(want), "i=%d", i);
    assert_true(r[i].done);
    assert_int_equal(r[i].rc, 0);
    assert_int_equal(r[i].status, 200);
    assert_string_equal(r[i].body, want);
  }
  assert_true(f->max_conns_seen >= 1 && f->max_conns_seen <= 16);
  free(r);
  fx_free(f);
}

static void destroy_cancels_inflight_requests(void **state)
{
  struct fx *f = fx_new(NULL);
  struct result r1, r2;
  send_req(f, &(struct nn_http_request){0}, "/hold", &r1);
  send_req(f, &(struct nn_http_request){0}, "/hold", &r2);
  while (f->nheld < 2)
    uv_run(&f->loop, UV_RUN_ONCE);
  nn_http_client_destroy(f->cli);
  f->cli = NULL;
  assert_true(r1.done && r2.done);
  assert_int_equal(r1.rc, NN_ECANCELED);
  assert_int_equal(r2.rc, NN_ECANCELED);
  fx_free(f);
}

struct reentry {
  struct nn_http_client *cli;
  int calls;
  bool done;
  int rc_send;
};

static void on_done_destroy(const struct nn_http_response *resp, void *ud)
{
  struct reentry *re = ud;
  re->calls++;
  re->done = true;
  nn_http_client_destroy(re->cli);
  /* After destroy, new requests are refused instead of leaking. */
  re->rc_send = nn_http_client_send(re->cli, &(struct nn_http_request){.url = "http://x/"},
                                    on_done_destroy, re);
}

static void destroy_from_completion_callback(void **state)
{
  struct fx *f = fx_new(NULL);
  struct reentry re = {.cli = f->cli};
  char url[96];
  snprintf(url, sizeof(url), "%s/echo", f->base);
  assert_int_equal(
      nn_http_client_send(f->cli, &(struct nn_http_request){.url = url}, on_done_destroy, &re), 0);
  assert_int_equal(
      nn_http_client_send(f->cli, &(struct nn_http_request){.url = url}, on_done_destroy, &re), 0);
  assert_true(run_until(&f->loop, &re.done, 5000));
  assert_int_equal(re.calls, 2); /* the second was canceled by the destroy in the first */
  assert_int_equal(re.rc_send, NN_ECANCELED);
  f->cli = NULL;
  fx_free(f);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(get_post_put_and_head_round_trip),
      cmocka_unit_test(response_headers_are_readable),
      cmocka_unit_test(route_that_never_responds_times_out),
      cmocka_unit_test(response_over_cap_is_etoobig),
      cmocka_unit_test(streamed_response_over_cap_is_etoobig),
      cmocka_unit_test(connection_refused_is_eio_with_reason),
      cmocka_unit_test(sequential_requests_reuse_one_connection),
      cmocka_unit_test(two_hundred_concurrent_requests_complete),
      cmocka_unit_test(destroy_cancels_inflight_requests),
      cmocka_unit_test(destroy_from_completion_callback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
