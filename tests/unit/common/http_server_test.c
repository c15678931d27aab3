/* SPDX-License-Identifier: Apache-2.0 */
/* The h2o-backed server over real sockets on 127.0.0.1, driven by the project's own HTTP
 * client on the same loop: routing, 404, the body cap, headers, asynchronous responses,
 * clients that leave early, TLS and graceful stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/pool.h"
#include "common/urlenc.h"

/* ---- harness ---- */

struct result {
  bool done;
  int rc;
  int status;
  char body[512];
  size_t body_len;
  char hdr[128];
  bool evil;
  uint64_t at;
};

struct fx {
  uv_loop_t loop;
  struct nn_http_server *srv;
  struct nn_http_client *cli;
  char base[64];
  struct nn_http_req *held[8];
  size_t nheld;
  char seen[512];
  bool stopped;
  uint64_t stopped_at;
};

static void on_tick(uv_timer_t *t)
{
}

/* Runs the loop until *flag is set or timeout_ms passes; returns whether flag got set. */
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
  const char *h = nn_http_response_header(resp, "X-Test", NULL);
  snprintf(r->hdr, sizeof(r->hdr), "%s", h ? h : "");
  r->evil = nn_http_response_header(resp, "X-Evil", NULL) ||
            nn_http_response_header(resp, "Set-Cookie", NULL);
}

static void fetch(struct fx *f, const char *method, const char *path, const char *const *hdrs,
                  size_t nh, const char *body, size_t blen, uint32_t timeout_ms, struct result *r)
{
  char url[256];
  snprintf(url, sizeof(url), "%s%s", f->base, path);
  struct nn_http_request req = {.method = method,
                                .url = url,
                                .headers = hdrs,
                                .nheaders = nh,
                                .body = body,
                                .body_len = blen,
                                .timeout_ms = timeout_ms ? timeout_ms : 5000};
  memset(r, 0, sizeof(*r));
  assert_int_equal(nn_http_client_send(f->cli, &req, on_done, r), 0);
}

static void fetch_wait(struct fx *f, const char *method, const char *path, const char *body,
                       size_t blen, struct result *r)
{
  fetch(f, method, path, NULL, 0, body, blen, 0, r);
  assert_true(run_until(&f->loop, &r->done, 5000));
}

static void on_stopped(void *ud)
{
  struct fx *f = ud;
  f->stopped = true;
  f->stopped_at = uv_now(&f->loop);
}

static struct fx *fx_new(const struct nn_http_server_opts *opts)
{
  struct fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->srv = nn_http_server_create(&f->loop, opts);
  assert_non_null(f->srv);
  f->cli = nn_http_client_create(&f->loop, NULL);
  assert_non_null(f->cli);
  return f;
}

static void fx_listen(struct fx *f, const char *scheme)
{
  assert_int_equal(nn_http_server_listen(f->srv, "127.0.0.1:0"), 0);
  assert_true(nn_http_server_port(f->srv) > 0);
  snprintf(f->base, sizeof(f->base), "%s://127.0.0.1:%d", scheme, nn_http_server_port(f->srv));
}

/* Stops and frees everything; the loop must then have no handle left. */
static void fx_free(struct fx *f)
{
  nn_http_client_destroy(f->cli);
  if (!f->stopped)
    nn_http_server_stop(f->srv, on_stopped, f);
  assert_true(run_until(&f->loop, &f->stopped, 10000));
  nn_http_server_destroy(f->srv);
  for (size_t i = 0; i < f->nheld; i++)
    if (f->held[i])
      nn_http_respond(f->held[i], 200, NULL, "", 0);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
}

/* ---- handlers ---- */

static void h_named(struct nn_http_req *req, void *ud)
{
  nn_http_respond(req, 200, "text/plain", ud, strlen(ud));
}

static void h_echo(struct nn_http_req *req, void *ud)
{
  struct fx *f = ud;
  size_t alen = 0;
  const char *agent = nn_http_req_header(req, "x-AGENT", &alen);
  const char *host = nn_http_req_header(req, "Host", NULL);
  snprintf(f->seen, sizeof(f->seen), "%s %s ?%s body=%zu agent=%s/%zu host=%s remote=%s",
           req->method, req->path, req->query, req->body_len, agent ? agent : "-", alen,
           host ? host : "-", req->remote_addr);
  nn_http_add_header(req, "X-Test", "hello");
  nn_http_add_header(req, "X-Evil", "a\r\nSet-Cookie: x=1");
  nn_http_respond(req, 201, "text/plain", req->body ? req->body : "", req->body_len);
}

static void h_hold(struct nn_http_req *req, void *ud)
{
  struct fx *f = ud;
  assert_true(f->nheld < 8);
  f->held[f->nheld++] = req;
}

static void h_params(struct nn_http_req *req, void *ud)
{
  struct nn_urlenc_param *p;
  size_t n;
  int rc = nn_http_req_params(req, &p, &n);
  if (rc < 0) {
    nn_http_respond_error(req, 400, "bad params");
    return;
  }
  struct nn_buf b;
  nn_buf_init(&b, 4096);
  nn_buf_printf(&b, "a=%s", nn_urlenc_get(p, n, "a"));
  for (size_t i = 0; i < n; i++)
    if (strcmp(p[i].name, "m[]") == 0)
      nn_buf_printf(&b, " m=%s", p[i].value);
  nn_http_respond_buf(req, 200, "text/plain", &b);
  nn_buf_fini(&b);
}

/* ---- tests ---- */

static void routes_match_exact_then_longest_prefix_else_404(void **state)
{
  struct fx *f = fx_new(NULL);
  assert_int_equal(nn_http_server_route(f->srv, "/a", 0, h_named, "exact-a"), 0);
  assert_int_equal(nn_http_server_route(f->srv, "/p/", NN_HTTP_ROUTE_PREFIX, h_named, "p"), 0);
  assert_int_equal(nn_http_server_route(f->srv, "/p/q/", NN_HTTP_ROUTE_PREFIX, h_named, "pq"), 0);
  assert_int_equal(nn_http_server_route(f->srv, "/p/q/x", 0, h_named, "pqx"), 0);
  assert_int_equal(nn_http_server_route(f->srv, "/a", 0, h_named, "dup"), NN_EEXIST);
  assert_int_equal(nn_http_server_route(f->srv, "nope", 0, h_named, "x"), NN_EINVAL);
  fx_listen(f, "http");
  struct result r;
  fetch_wait(f, "GET", "/a", NULL, 0, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "exact-a");
  fetch_wait(f, "GET", "/p/zz", NULL, 0, &r);
  assert_string_equal(r.body, "p");
  fetch_wait(f, "GET", "/p/q/zz?x=1", NULL, 0, &r);
  assert_string_equal(r.body, "pq");
  fetch_wait(f, "GET", "/p/q/x", NULL, 0, &r);
  assert_string_equal(r.body, "pqx");
  fetch_wait(f, "GET", "/p/./q/../q/x", NULL, 0, &r);
  assert_string_equal(r.body, "pqx");
  fetch_wait(f, "GET", "/a/", NULL, 0, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.status, 404);
  assert_string_equal(r.body, "404 page not found\n");
  fetch_wait(f, "GET", "/", NULL, 0, &r);
  assert_int_equal(r.status, 404);
  fx_free(f);
}

static void request_fields_headers_and_response_headers(void **state)
{
  struct fx *f = fx_new(NULL);
  assert_int_equal(nn_http_server_route(f->srv, "/echo/", NN_HTTP_ROUTE_PREFIX, h_echo, f), 0);
  fx_listen(f, "http");
  struct result r;
  const char *hdrs[] = {"X-Agent: tester/1.0", "Content-Type: application/octet-stream"};
  fetch(f, "POST", "/echo/a%20b?x=1&y=%41", hdrs, 2, "payload", 7, 0, &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.status, 201);
  assert_string_equal(r.body, "payload");
  assert_string_equal(r.hdr, "hello");
  assert_false(r.evil); /* a header value with CR/LF is dropped, not sent */
  char want[256];
  snprintf(
      want, sizeof(want),
      "POST /echo/a b ?x=1&y=%%41 body=7 agent=tester/1.0/10 host=127.0.0.1:%d remote=127.0.0.1:",
      nn_http_server_port(f->srv));
  assert_memory_equal(f->seen, want, strlen(want));
  fx_free(f);
}

static void body_over_cap_gets_413_and_never_reaches_handler(void **state)
{
  struct nn_http_server_opts o = {.max_body_bytes = 1024};
  struct fx *f = fx_new(&o);
  assert_int_equal(nn_http_server_route(f->srv, "/echo", 0, h_echo, f), 0);
  fx_listen(f, "http");
  char big[4096];
  memset(big, 'x', sizeof(big));
  struct result r;
  fetch_wait(f, "POST", "/echo", big, 1000, &r);
  assert_int_equal(r.status, 201);
  assert_int_equal(r.body_len, 1000);
  f->seen[0] = '\0';
  fetch_wait(f, "POST", "/echo", big, sizeof(big), &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.status, 413);
  assert_non_null(strstr(r.body, "too large"));
  assert_string_equal(f->seen, "");
  /* Chunked bodies are capped while they stream in. */
  const char *chunked[] = {"Transfer-Encoding: chunked"};
  fetch(f, "POST", "/echo", chunked, 1, big, sizeof(big), 0, &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.status, 413);
  assert_string_equal(f->seen, "");
  fx_free(f);
}

struct later {
  uv_timer_t t;
  struct nn_http_req *req;
  int status;
};

static void on_later(uv_timer_t *t)
{
  struct later *l = (struct later *)t;
  nn_http_add_header(l->req, "X-Test", "late");
  nn_http_respond(l->req, l->status, "text/plain", "async", 5);
  uv_close((uv_handle_t *)t, NULL);
}

static void h_async(struct nn_http_req *req, void *ud)
{
  struct later *l = ud;
  l->req = req;
  uv_timer_start(&l->t, on_later, 50, 0);
}

static void async_response_from_a_later_loop_turn(void **state)
{
  struct fx *f = fx_new(NULL);
  struct later l = {.status = 202};
  uv_timer_init(&f->loop, &l.t);
  assert_int_equal(nn_http_server_route(f->srv, "/async", 0, h_async, &l), 0);
  fx_listen(f, "http");
  struct result r;
  uint64_t t0 = uv_now(&f->loop);
  fetch_wait(f, "GET", "/async", NULL, 0, &r);
  assert_int_equal(r.status, 202);
  assert_string_equal(r.body, "async");
  assert_string_equal(r.hdr, "late");
  assert_true(uv_now(&f->loop) - t0 >= 45);
  fx_free(f);
}

static void late_response_after_client_left_is_harmless(void **state)
{
  struct fx *f = fx_new(NULL);
  assert_int_equal(nn_http_server_route(f->srv, "/hold", 0, h_hold, f), 0);
  fx_listen(f, "http");
  struct result r;
  fetch(f, "GET", "/hold", NULL, 0, NULL, 0, 100, &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.rc, NN_ETIMEDOUT);
  assert_int_equal(f->nheld, 1);
  /* The client is gone; the response is written into a dead connection, which h2o then
   * closes and frees. */
  nn_http_add_header(f->held[0], "X-Test", "x");
  nn_http_respond(f->held[0], 200, "text/plain", "too late", 8);
  f->held[0] = NULL;
  bool zero = false;
  for (int i = 0; i < 200 && !zero; i++) {
    run_until(&f->loop, &zero, 10);
    zero = nn_http_server_connections(f->srv) == 0;
  }
  assert_true(zero);
  fx_free(f);
}

static void graceful_stop_lets_inflight_request_finish(void **state)
{
  struct fx *f = fx_new(NULL);
  struct later l = {.status = 200};
  uv_timer_init(&f->loop, &l.t);
  assert_int_equal(nn_http_server_route(f->srv, "/async", 0, h_async, &l), 0);
  assert_int_equal(nn_http_server_route(f->srv, "/a", 0, h_named, "a"), 0);
  fx_listen(f, "http");
  struct result r, r2;
  fetch(f, "GET", "/async", NULL, 0, NULL, 0, 0, &r);
  /* Let the request reach the handler, then stop while it is in flight. */
  while (!l.req)
    uv_run(&f->loop, UV_RUN_ONCE);
  nn_http_server_stop(f->srv, on_stopped, f);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "async");
  assert_true(run_until(&f->loop, &f->stopped, 5000));
  /* Listener closed: a new request is refused. */
  fetch_wait(f, "GET", "/a", NULL, 0, &r2);
  assert_int_equal(r2.rc, NN_EIO);
  fx_free(f);
}

static void stop_answers_503_after_grace_period(void **state)
{
  struct nn_http_server_opts o = {.shutdown_grace_ms = 200};
  struct fx *f = fx_new(&o);
  assert_int_equal(nn_http_server_route(f->srv, "/hold", 0, h_hold, f), 0);
  fx_listen(f, "http");
  struct result r;
  fetch(f, "GET", "/hold", NULL, 0, NULL, 0, 5000, &r);
  while (f->nheld == 0)
    uv_run(&f->loop, UV_RUN_ONCE);
  uint64_t t0 = uv_now(&f->loop);
  nn_http_server_stop(f->srv, on_stopped, f);
  assert_true(run_until(&f->loop, &f->stopped, 5000));
  assert_true(f->stopped_at - t0 >= 190);
  assert_true(f->stopped_at - t0 < 2000);
  assert_true(run_until(&f->loop, &r.done, 5000));
  if (r.rc == 0)
    assert_int_equal(r.status, 503);
  else
    assert_int_equal(r.rc, NN_EIO); /* the forced close may win the race with the 503 */
  /* The handler still owns its request: answering now only frees it. */
  nn_http_respond(f->held[0], 200, NULL, "x", 1);
  f->held[0] = NULL;
  fx_free(f);
}

static void stop_closes_idle_keepalive_connections_quickly(void **state)
{
  struct fx *f = fx_new(NULL); /* default grace is 5 s, read timeout 10 s */
  assert_int_equal(nn_http_server_route(f->srv, "/a", 0, h_named, "a"), 0);
  fx_listen(f, "http");
  struct result r;
  fetch_wait(f, "GET", "/a", NULL, 0, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(nn_http_server_connections(f->srv), 1); /* kept alive by the client */
  uint64_t t0 = uv_now(&f->loop);
  nn_http_server_stop(f->srv, on_stopped, f);
  assert_true(run_until(&f->loop, &f->stopped, 5000));
  assert_true(f->stopped_at - t0 < 1000);
  fx_free(f);
}

static void form_body_values_come_before_query_values(void **state)
{
  struct fx *f = fx_new(NULL);
  assert_int_equal(nn_http_server_route(f->srv, "/params", 0, h_params, NULL), 0);
  fx_listen(f, "http");
  struct result r;
  const char *form[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8"};
  const char *body = "a=body&m%5B%5D=x+1";
  fetch(f, "POST", "/params?a=query&m[]=y", form, 1, body, strlen(body), 0, &r);
  assert_true(run_until(&f->loop, &r.done, 5000));
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "a=body m=x 1 m=y");
  fetch_wait(f, "GET", "/params?a=q&m[]=1&m[]=2", NULL, 0, &r);
  assert_string_equal(r.body, "a=q m=1 m=2");
  fetch_wait(f, "GET", "/params?a=%zz", NULL, 0, &r);
  assert_int_equal(r.status, 400);
  assert_string_equal(r.body, "bad params\n");
  fx_free(f);
}

static void destroy_without_stop_releases_everything(void **state)
{
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct nn_http_server *srv = nn_http_server_create(&loop, NULL);
  assert_non_null(srv);
  assert_int_equal(nn_http_server_listen(srv, "127.0.0.1:0"), 0);
  assert_int_equal(nn_http_server_listen(srv, "[::1]:0") == 0 ||
                       nn_http_server_listen(srv, "localhost:0") == 0,
                   1);
  nn_http_server_destroy(srv);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void server_that_never_listened_is_freed_at_once(void **state)
{
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct nn_http_server *srv = nn_http_server_create(&loop, NULL);
  assert_non_null(srv);
  assert_int_equal(nn_http_server_route(srv, "/a", 0, h_named, "a"), 0);
  nn_http_server_destroy(srv); /* no loop run needed: nothing was opened */
  assert_int_equal(uv_loop_close(&loop), 0);

  assert_int_equal(uv_loop_init(&loop), 0);
  struct fx f = {0};
  srv = nn_http_server_create(&loop, NULL);
  assert_int_equal(nn_http_server_listen(srv, "192.0.2.1:0"), NN_ERRNO(EADDRNOTAVAIL));
  nn_http_server_stop(srv, on_stopped, &f);
  assert_true(f.stopped);
  nn_http_server_destroy(srv);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void listen_rejects_malformed_addresses(void **state)
{
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  struct nn_http_server *srv = nn_http_server_create(&loop, NULL);
  assert_non_null(srv);
  assert_int_equal(nn_http_server_listen(srv, "127.0.0.1"), NN_EINVAL);
  assert_int_equal(nn_http_server_listen(srv, "::1:80"), NN_EINVAL);
  assert_int_equal(nn_http_server_listen(srv, "127.0.0.1:99999"), NN_EINVAL);
  assert_int_equal(nn_http_server_listen(srv, "127.0.0.1:8x"), NN_EINVAL);
  assert_int_equal(nn_http_server_port(srv), 0);
  /* Address in use is a negated errno. */
  assert_int_equal(nn_http_server_listen(srv, "127.0.0.1:0"), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", nn_http_server_port(srv));
  int rc = nn_http_server_listen(srv, addr);
  assert_true(rc < 0 && rc > NN_EFIRST);
  nn_http_server_destroy(srv);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* Writes a fresh self-signed certificate for 127.0.0.1 and its key into dir. */
static void make_cert(const char *cert_path, const char *key_path)
{
  EVP_PKEY *pkey = EVP_EC_gen("P-256");
  assert_non_null(pkey);
  X509 *x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, pkey);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                             0);
  X509_set_issuer_name(x, name);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "IP:127.0.0.1");
  assert_non_null(ext);
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
  FILE *fc = fopen(cert_path, "w"), *fk = fopen(key_path, "w");
  assert_non_null(fc);
  assert_non_null(fk);
  PEM_write_X509(fc, x);
  PEM_write_PrivateKey(fk, pkey, NULL, NULL, 0, NULL, NULL);
  fclose(fc);
  fclose(fk);
  X509_free(x);
  EVP_PKEY_free(pkey);
}

static void tls_round_trip_and_verification_failure(void **state)
{
  char dir[] = "/tmp/nn_http_tls_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char cert[128], key[128];
  snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
  snprintf(key, sizeof(key), "%s/key.pem", dir);
  make_cert(cert, key);

  struct nn_http_server_opts bad = {.tls_cert_file = cert, .tls_key_file = "/nonexistent"};
  uv_loop_t l2;
  uv_loop_init(&l2);
  assert_null(nn_http_server_create(&l2, &bad));
  uv_loop_close(&l2);

  struct nn_http_server_opts o = {.tls_cert_file = cert, .tls_key_file = key};
  struct fx *f = fx_new(&o);
  assert_int_equal(nn_http_server_route(f->srv, "/a", 0, h_named, "secure"), 0);
  fx_listen(f, "https");
  nn_http_client_destroy(f->cli);
  struct nn_http_client_opts co = {.ca_file = cert};
  f->cli = nn_http_client_create(&f->loop, &co);
  assert_non_null(f->cli);
  struct result r;
  fetch_wait(f, "GET", "/a", NULL, 0, &r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "secure");

  /* Without the CA the certificate does not verify. */
  nn_http_client_destroy(f->cli);
  struct nn_http_client_opts strict = {.ca_file = "/dev/null"};
  f->cli = nn_http_client_create(&f->loop, &strict);
  fetch_wait(f, "GET", "/a", NULL, 0, &r);
  assert_int_equal(r.rc, NN_EIO);
  /* Plain HTTP to the TLS port fails cleanly too. */
  nn_http_client_destroy(f->cli);
  f->cli = nn_http_client_create(&f->loop, NULL);
  char plain[80];
  snprintf(plain, sizeof(plain), "http://127.0.0.1:%d", nn_http_server_port(f->srv));
  memcpy(f->base, plain, strlen(plain) + 1);
  fetch_wait(f, "GET", "/a", NULL, 0, &r);
  assert_true(r.rc != 0 || r.status != 200);
  fx_free(f);
  unlink(cert);
  unlink(key);
  rmdir(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(routes_match_exact_then_longest_prefix_else_404),
      cmocka_unit_test(request_fields_headers_and_response_headers),
      cmocka_unit_test(body_over_cap_gets_413_and_never_reaches_handler),
      cmocka_unit_test(async_response_from_a_later_loop_turn),
      cmocka_unit_test(late_response_after_client_left_is_harmless),
      cmocka_unit_test(graceful_stop_lets_inflight_request_finish),
      cmocka_unit_test(stop_answers_503_after_grace_period),
      cmocka_unit_test(stop_closes_idle_keepalive_connections_quickly),
      cmocka_unit_test(form_body_values_come_before_query_values),
      cmocka_unit_test(destroy_without_stop_releases_everything),
      cmocka_unit_test(server_that_never_listened_is_freed_at_once),
      cmocka_unit_test(listen_rejects_malformed_addresses),
      cmocka_unit_test(tls_round_trip_and_verification_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
