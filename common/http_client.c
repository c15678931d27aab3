/* SPDX-License-Identifier: Apache-2.0 */
/* curl multi_socket driven by libuv: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION, one uv_poll each) and when to call it back
 * (CURLMOPT_TIMERFUNCTION, one uv_timer); we feed readiness back through
 * curl_multi_socket_action and collect finished transfers with curl_multi_info_read.
 * curl functions are never called from inside curl's own callbacks. */
#include "common/http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"

#define MOD "http_client"

#define DEFAULT_CONNS_PER_HOST 8
#define DEFAULT_TOTAL_CONNS    64
#define DEFAULT_CONNECT_MS     10000
#define DEFAULT_TIMEOUT_MS     30000
#define DEFAULT_MAX_RESPONSE   ((size_t)64 << 20)
#define MAX_RESPONSE_HEADERS   (64 << 10)
#define MAX_HEADER_FIELDS      128

struct sock_ctx {
  uv_poll_t poll; /* first: close callbacks get &poll */
  struct nn_http_client *c;
  curl_socket_t fd;
  bool closing;
  struct sock_ctx *prev, *next;
};

struct hdr_field {
  const char *name;
  const char *value;
  size_t value_len;
};

struct xfer {
  CURL *easy;
  struct nn_http_client *c;
  struct curl_slist *hdrs;
  nn_http_done_fn cb;
  void *ud;
  struct nn_buf body;
  struct nn_buf resp_hdrs;
  bool toobig;
  struct hdr_field fields[MAX_HEADER_FIELDS];
  size_t nfields;
  char errbuf[CURL_ERROR_SIZE];
  struct xfer *prev, *next;
};

struct nn_http_client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  struct xfer *xfers;
  size_t inflight;
  struct sock_ctx *socks;
  size_t open_handles; /* timer + polls whose close callback has not run */
  int dispatch_depth;
  bool destroying;
  bool torn_down;
  char *user_agent;
  char *ca_file;
  char *cert_file;
  char *key_file;
  bool insecure;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void init_curl(void)
{
  curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- teardown helpers ---- */

static void free_client(struct nn_http_client *c)
{
  free(c->user_agent);
  free(c->ca_file);
  free(c->cert_file);
  free(c->key_file);
  free(c);
}

static void on_handle_close(uv_handle_t *h)
{
  struct nn_http_client *c = h->data;
  if (h->type == UV_POLL)
    free(h); /* struct sock_ctx starts with its uv_poll_t */
  if (--c->open_handles == 0 && c->torn_down)
    free_client(c);
}

static void sock_close(struct sock_ctx *sc)
{
  struct nn_http_client *c = sc->c;
  sc->closing = true;
  if (sc->prev)
    sc->prev->next = sc->next;
  else
    c->socks = sc->next;
  if (sc->next)
    sc->next->prev = sc->prev;
  uv_poll_stop(&sc->poll);
  uv_close((uv_handle_t *)&sc->poll, on_handle_close);
}

/* ---- completion ---- */

static void xfer_free(struct xfer *x)
{
  if (x->easy)
    curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->hdrs);
  nn_buf_fini(&x->body);
  nn_buf_fini(&x->resp_hdrs);
  free(x);
}

static void xfer_unlink(struct xfer *x)
{
  struct nn_http_client *c = x->c;
  if (x->prev)
    x->prev->next = x->next;
  else
    c->xfers = x->next;
  if (x->next)
    x->next->prev = x->prev;
  c->inflight--;
}

/* Splits the final response's header block in place into name/value strings. */
static void parse_headers(struct xfer *x)
{
  char *p = x->resp_hdrs.data, *end = p ? p + x->resp_hdrs.len : NULL;
  if (!p)
    return;
  char *nl = memchr(p, '\n', (size_t)(end - p)); /* skip the status line */
  p = nl ? nl + 1 : end;
  while (p < end && x->nfields < MAX_HEADER_FIELDS) {
    char *eol = memchr(p, '\n', (size_t)(end - p));
    char *line_end = eol ? eol : end;
    char *next = eol ? eol + 1 : end;
    if (line_end > p && line_end[-1] == '\r')
      line_end--;
    *line_end = '\0';
    char *colon = memchr(p, ':', (size_t)(line_end - p));
    if (colon && colon > p && *p != ' ' && *p != '\t') {
      *colon = '\0';
      char *v = colon + 1;
      while (*v == ' ' || *v == '\t')
        v++;
      char *ve = line_end;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        *--ve = '\0';
      x->fields[x->nfields++] = (struct hdr_field){p, v, (size_t)(ve - v)};
    }
    p = next;
  }
}

static int map_result(const struct xfer *x, CURLcode res)
{
  switch (res) {
  case CURLE_OK: return 0;
  case CURLE_OPERATION_TIMEDOUT: return NN_ETIMEDOUT;
  case CURLE_FILESIZE_EXCEEDED: return NN_ETOOBIG;
  case CURLE_OUT_OF_MEMORY: return NN_ENOMEM;
  case CURLE_WRITE_ERROR: return x->toobig ? NN_ETOOBIG : NN_EIO;
  default: return NN_EIO;
  }
}

/* Removes x from curl, runs its callback once and frees it. */
static void xfer_complete(struct xfer *x, int rc, const char *error)
{
  struct nn_http_client *c = x->c;
  long status = 0;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_multi_remove_handle(c->multi, x->easy);
  xfer_unlink(x);
  parse_headers(x);
  struct nn_http_response resp = {
      .rc = rc,
      .status = (int)status,
      .body = x->body.data ? x->body.data : "",
      .body_len = x->body.len,
      .error = rc ? error : "",
      .priv = x,
  };
  x->cb(&resp, x->ud);
  xfer_free(x);
}

static void teardown(struct nn_http_client *c);

static void check_done(struct nn_http_client *c)
{
  CURLMsg *msg;
  int left;
  c->dispatch_depth++;
  while (!c->destroying && (msg = curl_multi_info_read(c->multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    struct xfer *x = NULL;
    CURLcode res = msg->data.result; /* msg dies with curl_multi_remove_handle */
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    int rc = map_result(x, res);
    const char *err = x->errbuf[0] ? x->errbuf : curl_easy_strerror(res);
    if (rc == NN_ETOOBIG && res == CURLE_WRITE_ERROR)
      err = "response larger than the configured maximum";
    xfer_complete(x, rc, err);
  }
  c->dispatch_depth--;
  if (c->destroying && c->dispatch_depth == 0 && !c->torn_down)
    teardown(c);
}

/* ---- libuv <-> curl glue ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
  struct sock_ctx *sc = (struct sock_ctx *)h;
  struct nn_http_client *c = sc->c;
  int flags = 0;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  int running;
  curl_multi_socket_action(c->multi, sc->fd, flags, &running);
  check_done(c);
}

static void on_timer(uv_timer_t *t)
{
  struct nn_http_client *c = t->data;
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

static int on_curl_timer(CURLM *m, long ms, void *userp)
{
  struct nn_http_client *c = userp;
  if (c->torn_down || uv_is_closing((uv_handle_t *)&c->timer))
    return 0;
  if (ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
  return 0;
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
  struct nn_http_client *c = userp;
  struct sock_ctx *sc = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (sc && !sc->closing)
      sock_close(sc);
    curl_multi_assign(c->multi, fd, NULL);
    return 0;
  }
  if (!sc) {
    sc = calloc(1, sizeof(*sc));
    if (!sc)
      return -1;
    if (uv_poll_init_socket(c->loop, &sc->poll, fd) < 0) {
      free(sc);
      return -1;
    }
    sc->poll.data = c;
    sc->c = c;
    sc->fd = fd;
    sc->next = c->socks;
    if (c->socks)
      c->socks->prev = sc;
    c->socks = sc;
    c->open_handles++;
    curl_multi_assign(c->multi, fd, sc);
  }
  int ev = 0;
  if (what & CURL_POLL_IN)
    ev |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    ev |= UV_WRITABLE;
  uv_poll_start(&sc->poll, ev, on_poll);
  return 0;
}

/* ---- transfer callbacks ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
  struct xfer *x = ud;
  size_t len = sz * n;
  if (nn_buf_append(&x->body, p, len) < 0) {
    x->toobig = true;
    return 0; /* aborts the transfer; curl closes the connection */
  }
  return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
  struct xfer *x = ud;
  size_t len = sz * n;
  /* A new status line starts a new response (after 100 Continue or a redirect): keep only
   * the final one. */
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
    nn_buf_reset(&x->resp_hdrs);
  if (nn_buf_append(&x->resp_hdrs, p, len) < 0) {
    x->toobig = true;
    return 0;
  }
  return len;
}

/* ---- public API ---- */

const char *nn_http_response_header(const struct nn_http_response *resp, const char *name,
                                    size_t *len)
{
  const struct xfer *x = resp->priv;
  for (size_t i = 0; x && i < x->nfields; i++) {
    if (strcasecmp(x->fields[i].name, name) == 0) {
      if (len)
        *len = x->fields[i].value_len;
      return x->fields[i].value;
    }
  }
  return NULL;
}

size_t nn_http_client_inflight(const struct nn_http_client *c)
{
  return c->inflight;
}

static int setup_easy(struct nn_http_client *c, struct xfer *x, const struct nn_http_request *r)
{
  CURL *e = x->easy;
  CURLcode cc = CURLE_OK;
#define SET(opt, val)                                                                              \
  do {                                                                                             \
    if (cc == CURLE_OK)                                                                            \
      cc = curl_easy_setopt(e, opt, val);                                                          \
  } while (0)
  SET(CURLOPT_URL, r->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_PRIVATE, (void *)x);
  SET(CURLOPT_ERRORBUFFER, x->errbuf);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, (void *)x);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)x);
  SET(CURLOPT_CONNECTTIMEOUT_MS,
      (long)(r->connect_timeout_ms ? r->connect_timeout_ms : DEFAULT_CONNECT_MS));
  SET(CURLOPT_TIMEOUT_MS, (long)(r->timeout_ms ? r->timeout_ms : DEFAULT_TIMEOUT_MS));
  SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->body.max);
  SET(CURLOPT_USERAGENT, c->user_agent);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  if (r->decompress)
    SET(CURLOPT_ACCEPT_ENCODING, "");
  if (c->ca_file)
    SET(CURLOPT_CAINFO, c->ca_file);
  if (c->insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (c->cert_file)
    SET(CURLOPT_SSLCERT, c->cert_file);
  if (c->key_file)
    SET(CURLOPT_SSLKEY, c->key_file);

  const char *m = r->method ? r->method : r->body_len ? "POST" : "GET";
  if (strcmp(m, "GET") == 0 && r->body_len == 0) {
    SET(CURLOPT_HTTPGET, 1L);
  } else if (strcmp(m, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else {
    if (strcmp(m, "POST") == 0 || r->body_len) {
      SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
      SET(CURLOPT_POSTFIELDS, r->body_len ? r->body : (const void *)"");
    }
    if (strcmp(m, "POST") != 0)
      SET(CURLOPT_CUSTOMREQUEST, m);
  }
  /* No "Expect: 100-continue" round trip for larger bodies; our peers answer directly. */
  struct curl_slist *l = curl_slist_append(NULL, "Expect:");
  for (size_t i = 0; l && i < r->nheaders; i++) {
    struct curl_slist *nl = curl_slist_append(l, r->headers[i]);
    if (!nl) {
      curl_slist_free_all(l);
      l = NULL;
    }
    l = nl;
  }
  if (!l)
    return NN_ENOMEM;
  x->hdrs = l;
  SET(CURLOPT_HTTPHEADER, l);
#undef SET
  if (cc != CURLE_OK) {
    nn_warn(MOD, "%s: %s", r->url, curl_easy_strerror(cc));
    return cc == CURLE_OUT_OF_MEMORY ? NN_ENOMEM : NN_EINVAL;
  }
  return 0;
}

int nn_http_client_send(struct nn_http_client *c, const struct nn_http_request *r,
                        nn_http_done_fn cb, void *ud)
{
  if (c->destroying)
    return NN_ECANCELED;
  if (!r->url || !cb)
    return NN_EINVAL;
  struct xfer *x = calloc(1, sizeof(*x));
  if (!x)
    return NN_ENOMEM;
  x->c = c;
  x->cb = cb;
  x->ud = ud;
  nn_buf_init(&x->body, r->max_response_bytes ? r->max_response_bytes : DEFAULT_MAX_RESPONSE);
  nn_buf_init(&x->resp_hdrs, MAX_RESPONSE_HEADERS);
  int rc;
  if (!(x->easy = curl_easy_init())) {
    rc = NN_ENOMEM;
    goto fail;
  }
  if ((rc = setup_easy(c, x, r)) < 0)
    goto fail;
  CURLMcode mc = curl_multi_add_handle(c->multi, x->easy);
  if (mc != CURLM_OK) {
    nn_warn(MOD, "%s: %s", r->url, curl_multi_strerror(mc));
    rc = mc == CURLM_OUT_OF_MEMORY ? NN_ENOMEM : NN_EINVAL;
    goto fail;
  }
  x->next = c->xfers;
  if (c->xfers)
    c->xfers->prev = x;
  c->xfers = x;
  c->inflight++;
  return 0;
fail:
  xfer_free(x);
  return rc;
}

static char *dup_opt(const char *s, bool *oom)
{
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *oom = true;
  return d;
}

struct nn_http_client *nn_http_client_create(uv_loop_t *loop,
                                             const struct nn_http_client_opts *opts)
{
  static const struct nn_http_client_opts defaults = {0};
  if (!opts)
    opts = &defaults;
  pthread_once(&curl_once, init_curl);
  if (curl_init_rc != CURLE_OK) {
    nn_error(MOD, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
    return NULL;
  }
  struct nn_http_client *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  bool oom = false;
  c->loop = loop;
  c->user_agent = dup_opt(opts->user_agent ? opts->user_agent : "nines/" NN_VERSION, &oom);
  c->ca_file = dup_opt(opts->ca_file, &oom);
  c->cert_file = dup_opt(opts->cert_file, &oom);
  c->key_file = dup_opt(opts->key_file, &oom);
  c->insecure = opts->insecure_skip_verify;
  if (oom || !(c->multi = curl_multi_init())) {
    free_client(c);
    return NULL;
  }
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(
      c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
      (long)(opts->max_conns_per_host ? opts->max_conns_per_host : DEFAULT_CONNS_PER_HOST));
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
                    (long)(opts->max_total_conns ? opts->max_total_conns : DEFAULT_TOTAL_CONNS));
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 1;
  return c;
}

static void teardown(struct nn_http_client *c)
{
  c->torn_down = true;
  while (c->xfers)
    xfer_complete(c->xfers, NN_ECANCELED, "client shut down");
  /* Closing cached connections reports CURL_POLL_REMOVE for their sockets. */
  curl_multi_cleanup(c->multi);
  c->multi = NULL;
  while (c->socks)
    sock_close(c->socks);
  uv_close((uv_handle_t *)&c->timer, on_handle_close);
}

void nn_http_client_destroy(struct nn_http_client *c)
{
  if (!c || c->destroying)
    return;
  c->destroying = true;
  if (c->dispatch_depth == 0)
    teardown(c);
}
