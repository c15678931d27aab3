/* SPDX-License-Identifier: Apache-2.0 */
/* The h2o-backed HTTP server. One catch-all h2o handler does our own routing, so the
 * 404 text and route precedence are ours. Each request the application sees is a heap
 * object tied to h2o's request through a shared-memory slot whose dispose callback tells
 * us when h2o has let the request go, which makes late responses safe. Connections are
 * tracked here (not inside h2o) so that a stop can close idle keep-alive connections and,
 * after the grace period, force the rest closed with shutdown(2). */
#include "common/http_server.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <h2o.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/pool.h"
#include "common/urlenc.h"

#define MOD "http"

#define DEFAULT_MAX_BODY   (32u << 20)
#define DEFAULT_POOL_BYTES (64u << 20)
#define DEFAULT_GRACE_MS   5000u
#define STOP_SWEEP_MS      20u
#define MAX_HEADER_NAME    256

struct route {
  char *path;
  size_t len;
  unsigned flags;
  nn_http_handler_fn fn;
  void *ud;
};

struct listener {
  uv_tcp_t tcp; /* first: the close callback gets &tcp */
  struct nn_http_server *srv;
  struct listener *next;
};

struct conn {
  uv_tcp_t tcp; /* first: h2o's close callback gets &tcp */
  struct nn_http_server *srv;
  h2o_socket_t *sock; /* owned by h2o; valid while !uv_is_closing(&tcp) */
  struct conn *prev, *next;
};

struct req_slot;

/* The application's view of a request plus our bookkeeping; freed by the respond call. */
struct req_impl {
  struct nn_http_req pub;
  struct nn_http_server *srv; /* NULL once detached from h2o */
  h2o_req_t *h2o;             /* NULL once h2o has disposed of the request */
  struct req_slot *slot;
  struct req_impl *prev, *next; /* srv->pending */
  struct nn_pool pool;
  char remote[INET6_ADDRSTRLEN + 10];
};

/* Lives in h2o's request pool; h2o calls on_slot_dispose when it frees the request. */
struct req_slot {
  struct req_impl *r;
};

struct root_handler {
  h2o_handler_t super;
  struct nn_http_server *srv;
};

enum srv_state { SRV_RUNNING, SRV_STOPPING, SRV_FINISHING, SRV_CLOSING, SRV_STOPPED };

struct nn_http_server {
  uv_loop_t *loop;
  h2o_globalconf_t gconf;
  h2o_context_t ctx;
  h2o_accept_ctx_t accept_ctx;
  SSL_CTX *ssl_ctx;
  char *server_name;
  size_t pool_bytes;
  uint32_t grace_ms;

  struct route *routes;
  size_t nroutes;

  struct listener *listeners;
  size_t nlisteners_open;
  int port;

  struct conn *conns;
  size_t nconns;
  struct req_impl *pending; /* requests handed to the application, not yet answered */

  enum srv_state state;
  bool gconf_inited;
  bool started; /* h2o context and stop timer exist (since the first successful listen) */
  bool forced;
  bool destroy_requested;
  uint64_t deadline;
  uv_timer_t stop_timer;
  void (*on_stopped)(void *);
  void *on_stopped_ud;
};

static const char *reason_phrase(int status)
{
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 413: return "Request Entity Too Large";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Entity";
  case 429: return "Too Many Requests";
  case 499: return "Client Closed Request";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return status < 300 ? "OK" : status < 400 ? "Redirect" : "Error";
  }
}

/* ---- pending list ---- */

static void pending_link(struct nn_http_server *srv, struct req_impl *r)
{
  r->srv = srv;
  r->prev = NULL;
  r->next = srv->pending;
  if (srv->pending)
    srv->pending->prev = r;
  srv->pending = r;
}

/* Severs every tie between r and h2o/the server; r itself stays for the application. */
static void req_detach(struct req_impl *r)
{
  if (r->slot) {
    r->slot->r = NULL;
    r->slot = NULL;
  }
  r->h2o = NULL;
  if (r->srv) {
    if (r->prev)
      r->prev->next = r->next;
    else
      r->srv->pending = r->next;
    if (r->next)
      r->next->prev = r->prev;
    r->srv = NULL;
  }
  r->prev = r->next = NULL;
}

static void on_slot_dispose(void *p)
{
  struct req_slot *slot = p;
  if (slot->r)
    req_detach(slot->r);
}

static void req_free(struct req_impl *r)
{
  req_detach(r);
  nn_pool_fini(&r->pool);
  free(r);
}

/* ---- response primitives on a live h2o request ---- */

static void on_free_holder(void *p)
{
  free(*(char **)p);
}

static void h2o_add_str_header(h2o_req_t *req, const char *name, const char *value)
{
  /* A CR or LF would let a value taken from a request split the response. */
  if (strpbrk(name, "\r\n: ") || strpbrk(value, "\r\n") || !*name) {
    NN_LOG_RL(NN_LOG_WARN, MOD, "dropping invalid response header %.64s", name);
    return;
  }
  size_t nlen = strlen(name);
  h2o_iovec_t n = h2o_strdup(&req->pool, name, nlen);
  h2o_iovec_t v = h2o_strdup(&req->pool, value, strlen(value));
  h2o_strtolower(n.base, n.len);
  h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
}

/* Sends a complete response; body must stay valid until h2o frees req->pool. */
static void h2o_respond(struct nn_http_server *srv, h2o_req_t *req, int status,
                        const char *content_type, const char *body, size_t len)
{
  static h2o_generator_t generator = {NULL, NULL};
  if (status < 100 || status > 999)
    status = 500; /* h2o asserts on a status that is not three digits */
  req->res.status = status;
  req->res.reason = reason_phrase(status);
  req->res.content_length = len;
  if (content_type)
    h2o_add_str_header(req, "content-type", content_type);
  if (srv && srv->state != SRV_RUNNING)
    req->http1_is_persistent = 0;
  h2o_iovec_t buf = h2o_iovec_init(body, len);
  bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
  h2o_start_response(req, &generator);
  h2o_send(req, &buf, head || len == 0 ? 0 : 1, H2O_SEND_STATE_FINAL);
}

static void h2o_respond_not_found(struct nn_http_server *srv, h2o_req_t *req)
{
  static const char msg[] = "404 page not found\n";
  h2o_add_str_header(req, "x-content-type-options", "nosniff");
  h2o_respond(srv, req, 404, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
}

/* ---- routing and request entry ---- */

static const struct route *route_find(const struct nn_http_server *srv, const char *path,
                                      size_t len)
{
  const struct route *best = NULL;
  for (size_t i = 0; i < srv->nroutes; i++) {
    const struct route *rt = &srv->routes[i];
    if (!(rt->flags & NN_HTTP_ROUTE_PREFIX)) {
      if (rt->len == len && memcmp(rt->path, path, len) == 0)
        return rt;
    } else if (rt->len <= len && memcmp(rt->path, path, rt->len) == 0) {
      if (!best || rt->len > best->len)
        best = rt;
    }
  }
  return best;
}

static void format_remote(h2o_req_t *req, char *out, size_t outlen)
{
  struct sockaddr_storage ss;
  char host[NI_MAXHOST];
  out[0] = '\0';
  socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
  if (sl == 0)
    return;
  size_t hl = h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, host);
  if (hl == SIZE_MAX)
    return;
  int32_t port = h2o_socket_getport((struct sockaddr *)&ss);
  if (ss.ss_family == AF_INET6)
    snprintf(out, outlen, "[%.*s]:%d", (int)hl, host, (int)port);
  else
    snprintf(out, outlen, "%.*s:%d", (int)hl, host, (int)port);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
  struct nn_http_server *srv = ((struct root_handler *)self)->srv;
  const struct route *rt = route_find(srv, req->path_normalized.base, req->path_normalized.len);
  if (!rt) {
    h2o_respond_not_found(srv, req);
    return 0;
  }
  struct req_impl *r = calloc(1, sizeof(*r));
  if (!r) {
    static const char msg[] = "out of memory\n";
    h2o_respond(srv, req, 500, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
    return 0;
  }
  nn_pool_init(&r->pool, srv->pool_bytes);
  r->h2o = req;
  format_remote(req, r->remote, sizeof(r->remote));
  r->pub.remote_addr = r->remote;
  r->pub.method = nn_pool_strndup(&r->pool, req->method.base, req->method.len);
  r->pub.path = nn_pool_strndup(&r->pool, req->path_normalized.base, req->path_normalized.len);
  r->pub.path_len = req->path_normalized.len;
  if (req->query_at != SIZE_MAX && req->query_at < req->path.len) {
    r->pub.query_len = req->path.len - req->query_at - 1;
    r->pub.query = nn_pool_strndup(&r->pool, req->path.base + req->query_at + 1, r->pub.query_len);
  } else {
    r->pub.query = "";
  }
  if (!r->pub.method || !r->pub.path || !r->pub.query) {
    nn_pool_fini(&r->pool);
    free(r);
    static const char msg[] = "request too large\n";
    h2o_respond(srv, req, 431, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
    return 0;
  }
  if (req->entity.base) {
    r->pub.body = req->entity.base;
    r->pub.body_len = req->entity.len;
  }
  r->slot = h2o_mem_alloc_shared(&req->pool, sizeof(*r->slot), on_slot_dispose);
  r->slot->r = r;
  pending_link(srv, r);
  /* r may be freed by the handler (a synchronous response): do not touch it afterwards. */
  rt->fn(&r->pub, rt->ud);
  return 0;
}

/* ---- public request API ---- */

static struct req_impl *impl_of(struct nn_http_req *req)
{
  return (struct req_impl *)((char *)req - offsetof(struct req_impl, pub));
}

const char *nn_http_req_header(struct nn_http_req *req, const char *name, size_t *len)
{
  struct req_impl *r = impl_of(req);
  char lname[MAX_HEADER_NAME];
  size_t n = strlen(name);
  if (!r->h2o || n == 0 || n >= sizeof(lname))
    return NULL;
  for (size_t i = 0; i < n; i++)
    lname[i] = h2o_tolower(name[i]);
  h2o_iovec_t v;
  if (n == 4 && memcmp(lname, "host", 4) == 0) {
    /* h2o moves Host out of the header list into the authority. */
    v = r->h2o->input.authority;
    if (!v.base)
      return NULL;
  } else {
    ssize_t i = h2o_find_header_by_str(&r->h2o->headers, lname, n, -1);
    if (i < 0)
      return NULL;
    v = r->h2o->headers.entries[i].value;
  }
  char *s = nn_pool_strndup(&r->pool, v.base, v.len);
  if (s && len)
    *len = v.len;
  return s;
}

struct nn_pool *nn_http_req_pool(struct nn_http_req *req)
{
  return &impl_of(req)->pool;
}

static bool is_form_content_type(const char *ct)
{
  static const char form[] = "application/x-www-form-urlencoded";
  while (*ct == ' ' || *ct == '\t')
    ct++;
  size_t n = strcspn(ct, "; \t");
  return n == sizeof(form) - 1 && strncasecmp(ct, form, n) == 0;
}

int nn_http_req_params(struct nn_http_req *req, struct nn_urlenc_param **out, size_t *count)
{
  struct nn_pool *pool = nn_http_req_pool(req);
  struct nn_urlenc_param *q = NULL, *b = NULL;
  size_t nq = 0, nb = 0;
  int result = 0, rc;
  const char *m = req->method;
  if ((strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) &&
      req->body_len > 0) {
    const char *ct = nn_http_req_header(req, "Content-Type", NULL);
    if (ct && is_form_content_type(ct)) {
      rc = nn_urlenc_parse(req->body, req->body_len, pool, &b, &nb);
      if (rc == NN_ENOMEM)
        return rc;
      if (rc < 0)
        result = rc;
    }
  }
  rc = nn_urlenc_parse(req->query, req->query_len, pool, &q, &nq);
  if (rc == NN_ENOMEM)
    return rc;
  if (rc < 0 && result == 0)
    result = rc;
  struct nn_urlenc_param *v = nn_pool_alloc(pool, (nb + nq + 1) * sizeof(*v));
  if (!v)
    return NN_ENOMEM;
  if (nb)
    memcpy(v, b, nb * sizeof(*v));
  if (nq)
    memcpy(v + nb, q, nq * sizeof(*v));
  *out = v;
  *count = nb + nq;
  return result;
}

void nn_http_add_header(struct nn_http_req *req, const char *name, const char *value)
{
  struct req_impl *r = impl_of(req);
  if (r->h2o)
    h2o_add_str_header(r->h2o, name, value);
}

void nn_http_respond(struct nn_http_req *req, int status, const char *content_type,
                     const void *body, size_t len)
{
  struct req_impl *r = impl_of(req);
  if (r->h2o) {
    h2o_req_t *h = r->h2o;
    struct nn_http_server *srv = r->srv;
    char *copy = NULL;
    if (len) {
      copy = h2o_mem_alloc_pool(&h->pool, len);
      memcpy(copy, body, len);
    }
    req_detach(r);
    h2o_respond(srv, h, status, content_type, copy, len);
  }
  req_free(r);
}

void nn_http_respond_buf(struct nn_http_req *req, int status, const char *content_type,
                         struct nn_buf *buf)
{
  struct req_impl *r = impl_of(req);
  size_t len = 0;
  char *data = nn_buf_steal(buf, &len);
  if (r->h2o) {
    h2o_req_t *h = r->h2o;
    struct nn_http_server *srv = r->srv;
    if (data) {
      char **holder = h2o_mem_alloc_shared(&h->pool, sizeof(*holder), on_free_holder);
      *holder = data;
    }
    req_detach(r);
    h2o_respond(srv, h, status, content_type, data, data ? len : 0);
  } else {
    free(data);
  }
  req_free(r);
}

void nn_http_respond_error(struct nn_http_req *req, int status, const char *msg)
{
  struct req_impl *r = impl_of(req);
  if (r->h2o) {
    size_t n = strlen(msg);
    char *text = h2o_mem_alloc_pool(&r->h2o->pool, n + 1);
    memcpy(text, msg, n);
    text[n] = '\n';
    h2o_add_str_header(r->h2o, "x-content-type-options", "nosniff");
    h2o_req_t *h = r->h2o;
    struct nn_http_server *srv = r->srv;
    req_detach(r);
    h2o_respond(srv, h, status, "text/plain; charset=utf-8", text, n + 1);
  }
  req_free(r);
}

/* ---- connections ---- */

static void maybe_finish(struct nn_http_server *srv);

static void on_free_handle(uv_handle_t *h)
{
  free(h);
}

static void on_conn_close(uv_handle_t *h)
{
  struct conn *c = (struct conn *)h;
  struct nn_http_server *srv = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  srv->nconns--;
  free(c);
  maybe_finish(srv);
}

static void on_connection(uv_stream_t *ls, int status)
{
  struct listener *l = (struct listener *)ls;
  struct nn_http_server *srv = l->srv;
  if (status < 0) {
    NN_LOG_RL(NN_LOG_WARN, MOD, "accept failed: %s", uv_strerror(status));
    return;
  }
  struct conn *c = calloc(1, sizeof(*c));
  if (!c) {
    NN_LOG_RL(NN_LOG_WARN, MOD, "accept: out of memory");
    return;
  }
  c->srv = srv;
  uv_tcp_init(srv->loop, &c->tcp);
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_free_handle);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  c->sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_close);
  h2o_accept(&srv->accept_ctx, c->sock);
}

/* ---- stopping ---- */

static void shutdown_conn(struct conn *c)
{
  uv_os_fd_t fd;
  /* shutdown(2) rather than closing: h2o sees an ordinary EOF or EPIPE on its next read or
   * write and tears the connection down through its own paths, freeing its state. */
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
    shutdown(fd, SHUT_RDWR);
}

/* Closes connections waiting for a next request (all of them once forced). A connection
 * is idle when h2o reads, writes nothing and has no partial request buffered. */
static void sweep_conns(struct nn_http_server *srv, bool all)
{
  for (struct conn *c = srv->conns; c; c = c->next) {
    if (uv_is_closing((uv_handle_t *)&c->tcp))
      continue;
    h2o_socket_t *s = c->sock;
    if (all || (h2o_socket_is_reading(s) && !h2o_socket_is_writing(s) && s->input->size == 0))
      shutdown_conn(c);
  }
}

/* Answers every request the application still holds with 503, so that h2o writes,
 * notices the closed socket and releases the connection. */
static void answer_pending(struct nn_http_server *srv)
{
  static const char msg[] = "server shutting down\n";
  while (srv->pending) {
    struct req_impl *r = srv->pending;
    h2o_req_t *h = r->h2o;
    req_detach(r); /* r stays allocated until the application responds */
    h2o_respond(srv, h, 503, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
  }
}

static void on_stop_timer(uv_timer_t *t);

static void maybe_finish(struct nn_http_server *srv)
{
  if (srv->state != SRV_STOPPING || srv->nconns != 0 || srv->nlisteners_open != 0)
    return;
  srv->state = SRV_FINISHING;
  /* Disposing of h2o's context closes its timers, so it must not run inside libuv's close
   * phase (where we may be now); the timer moves it to the next iteration. */
  uv_timer_start(&srv->stop_timer, on_stop_timer, 0, 0);
}

static void free_server(struct nn_http_server *srv)
{
  if (srv->gconf_inited)
    h2o_config_dispose(&srv->gconf);
  if (srv->ssl_ctx)
    SSL_CTX_free(srv->ssl_ctx);
  for (size_t i = 0; i < srv->nroutes; i++)
    free(srv->routes[i].path);
  free(srv->routes);
  free(srv->server_name);
  free(srv);
}

static void on_stop_timer_close(uv_handle_t *h)
{
  struct nn_http_server *srv = h->data;
  srv->state = SRV_STOPPED;
  if (srv->destroy_requested) {
    free_server(srv);
    return;
  }
  if (srv->on_stopped)
    srv->on_stopped(srv->on_stopped_ud); /* may destroy srv */
}

static void on_stop_timer(uv_timer_t *t)
{
  struct nn_http_server *srv = t->data;
  switch (srv->state) {
  case SRV_STOPPING:
    if (!srv->forced && uv_now(srv->loop) >= srv->deadline) {
      if (srv->pending || srv->nconns)
        nn_warn(MOD, "stop: grace period over, closing %zu connection(s)", srv->nconns);
      answer_pending(srv);
      srv->forced = true;
      return; /* the next tick closes everything, after the 503s had a chance to go out */
    }
    sweep_conns(srv, srv->forced);
    maybe_finish(srv);
    break;
  case SRV_FINISHING:
    h2o_context_dispose(&srv->ctx);
    h2o_config_dispose(&srv->gconf);
    srv->gconf_inited = false;
    if (srv->ssl_ctx)
      SSL_CTX_free(srv->ssl_ctx);
    srv->ssl_ctx = NULL;
    srv->state = SRV_CLOSING;
    /* h2o closed its timers (embedded in srv->ctx) without callbacks; they are finished in
     * this iteration's close phase. 1 ms (not 0) keeps libuv from running this timer again
     * in the current pass, so srv is freed only after that phase. */
    uv_timer_start(&srv->stop_timer, on_stop_timer, 1, 0);
    break;
  case SRV_CLOSING: uv_close((uv_handle_t *)&srv->stop_timer, on_stop_timer_close); break;
  default: break;
  }
}

static void on_listener_close(uv_handle_t *h)
{
  struct listener *l = (struct listener *)h;
  struct nn_http_server *srv = l->srv;
  srv->nlisteners_open--;
  free(l);
  maybe_finish(srv);
}

void nn_http_server_stop(struct nn_http_server *srv, void (*on_stopped)(void *ud), void *ud)
{
  srv->on_stopped = on_stopped;
  srv->on_stopped_ud = ud;
  if (srv->state == SRV_STOPPED) {
    if (on_stopped)
      on_stopped(ud);
    return;
  }
  if (srv->state != SRV_RUNNING)
    return;
  if (!srv->started) {
    /* Never listened: no handle exists, so there is nothing to wait for. */
    srv->state = SRV_STOPPED;
    if (on_stopped)
      on_stopped(ud);
    return;
  }
  srv->state = SRV_STOPPING;
  for (struct listener *l = srv->listeners, *next; l; l = next) {
    next = l->next;
    uv_close((uv_handle_t *)&l->tcp, on_listener_close);
  }
  srv->listeners = NULL;
  /* Not h2o_context_request_shutdown: its HTTP/2 part arms a one-second timer that
   * h2o_context_dispose would then assert on. For HTTP/1 the flag is all it sets: new
   * requests are answered with "Connection: close". */
  srv->ctx.shutdown_requested = 1;
  srv->deadline = uv_now(srv->loop) + srv->grace_ms;
  sweep_conns(srv, false);
  uv_timer_start(&srv->stop_timer, on_stop_timer, STOP_SWEEP_MS, STOP_SWEEP_MS);
  maybe_finish(srv);
}

void nn_http_server_destroy(struct nn_http_server *srv)
{
  if (!srv)
    return;
  if (srv->state == SRV_STOPPED || !srv->started) {
    free_server(srv);
    return;
  }
  srv->destroy_requested = true;
  srv->on_stopped = NULL;
  if (srv->state == SRV_RUNNING) {
    srv->grace_ms = 0;
    nn_http_server_stop(srv, NULL, NULL);
  }
}

/* ---- setup ---- */

/* Splits "host:port", "[v6]:port" or ":port" into a NUL-terminated host and port. */
static int split_host_port(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
  const char *colon = strrchr(s, ':');
  if (!colon)
    return NN_EINVAL;
  const char *h = s;
  size_t hl = (size_t)(colon - s);
  if (hl > 0 && s[0] == '[') {
    if (s[hl - 1] != ']')
      return NN_EINVAL;
    h = s + 1;
    hl -= 2;
  } else if (memchr(s, ':', hl)) {
    return NN_EINVAL; /* a bare IPv6 address needs brackets */
  }
  size_t pl = strlen(colon + 1);
  if (hl >= hostlen || pl == 0 || pl >= portlen || strspn(colon + 1, "0123456789") != pl)
    return NN_EINVAL;
  if (strtoul(colon + 1, NULL, 10) > 65535)
    return NN_EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  memcpy(port, colon + 1, pl + 1);
  return 0;
}

static int listen_on(struct nn_http_server *srv, const struct sockaddr *sa, int *port)
{
  struct listener *l = calloc(1, sizeof(*l));
  if (!l)
    return NN_ENOMEM;
  l->srv = srv;
  int rc = uv_tcp_init(srv->loop, &l->tcp);
  if (rc < 0) {
    free(l);
    return rc;
  }
  if ((rc = uv_tcp_bind(&l->tcp, sa, 0)) < 0 ||
      (rc = uv_listen((uv_stream_t *)&l->tcp, SOMAXCONN, on_connection)) < 0) {
    uv_close((uv_handle_t *)&l->tcp, on_free_handle);
    return rc;
  }
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  *port = 0;
  if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) == 0)
    *port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (srv->port == 0)
    srv->port = *port;
  l->next = srv->listeners;
  srv->listeners = l;
  srv->nlisteners_open++;
  return 0;
}

int nn_http_server_listen(struct nn_http_server *srv, const char *host_port)
{
  char host[256], port[8];
  int bound = 0;
  if (srv->state != SRV_RUNNING)
    return NN_EINVAL;
  if (split_host_port(host_port, host, sizeof(host), port, sizeof(port)) < 0) {
    nn_error(MOD, "listen address %s: want host:port, [ipv6]:port or :port", host_port);
    return NN_EINVAL;
  }
  int rc;
  if (host[0] == '\0') {
    /* ":port" means every address; an IPv6 wildcard socket also takes IPv4 on Linux. */
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    uv_ip6_addr("::", (int)strtoul(port, NULL, 10), &a6);
    rc = listen_on(srv, (struct sockaddr *)&a6, &bound);
    if (rc == UV_EAFNOSUPPORT || rc == UV_EADDRNOTAVAIL) {
      uv_ip4_addr("0.0.0.0", (int)strtoul(port, NULL, 10), &a4);
      rc = listen_on(srv, (struct sockaddr *)&a4, &bound);
    }
  } else {
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
      nn_error(MOD, "listen address %s: %s", host_port, gai_strerror(gai));
      return NN_EINVAL;
    }
    rc = listen_on(srv, res->ai_addr, &bound);
    freeaddrinfo(res);
  }
  if (rc == 0 && !srv->started) {
    /* The h2o context owns libuv handles, so it is created only once there is something
     * to serve: a server that never listened is freed synchronously. */
    h2o_context_init(&srv->ctx, srv->loop, &srv->gconf);
    srv->accept_ctx.ctx = &srv->ctx;
    srv->accept_ctx.hosts = srv->gconf.hosts;
    srv->accept_ctx.ssl_ctx = srv->ssl_ctx;
    uv_timer_init(srv->loop, &srv->stop_timer);
    srv->stop_timer.data = srv;
    srv->started = true;
  }
  if (rc < 0)
    nn_error(MOD, "listen on %s: %s", host_port, nn_strerror(rc));
  else
    nn_info(MOD, "listening on %s (port %d)%s", host_port, bound, srv->ssl_ctx ? " with TLS" : "");
  return rc;
}

int nn_http_server_port(const struct nn_http_server *srv)
{
  return srv->port;
}

size_t nn_http_server_connections(const struct nn_http_server *srv)
{
  return srv->nconns;
}

int nn_http_server_route(struct nn_http_server *srv, const char *path, unsigned flags,
                         nn_http_handler_fn fn, void *ud)
{
  if (!path || path[0] != '/' || !fn)
    return NN_EINVAL;
  size_t len = strlen(path);
  for (size_t i = 0; i < srv->nroutes; i++) {
    if (srv->routes[i].len == len && srv->routes[i].flags == flags &&
        memcmp(srv->routes[i].path, path, len) == 0)
      return NN_EEXIST;
  }
  struct route *v = realloc(srv->routes, (srv->nroutes + 1) * sizeof(*v));
  if (!v)
    return NN_ENOMEM;
  srv->routes = v;
  char *p = strdup(path);
  if (!p)
    return NN_ENOMEM;
  v[srv->nroutes++] = (struct route){p, len, flags, fn, ud};
  return 0;
}

static void log_ssl_error(const char *what, const char *file)
{
  char msg[256];
  ERR_error_string_n(ERR_get_error(), msg, sizeof(msg));
  nn_error(MOD, "TLS %s %s: %s", what, file, msg);
  ERR_clear_error();
}

static SSL_CTX *load_tls(const char *cert, const char *key)
{
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx)
    return NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    log_ssl_error("certificate", cert);
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    log_ssl_error("private key", key);
    goto fail;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    log_ssl_error("key does not match certificate", cert);
    goto fail;
  }
  return ctx;
fail:
  SSL_CTX_free(ctx);
  return NULL;
}

struct nn_http_server *nn_http_server_create(uv_loop_t *loop,
                                             const struct nn_http_server_opts *opts)
{
  static const struct nn_http_server_opts defaults = {0};
  if (!opts)
    opts = &defaults;
  struct nn_http_server *srv = calloc(1, sizeof(*srv));
  if (!srv)
    return NULL;
  srv->loop = loop;
  srv->pool_bytes = opts->req_pool_bytes ? opts->req_pool_bytes : DEFAULT_POOL_BYTES;
  srv->grace_ms = opts->shutdown_grace_ms ? opts->shutdown_grace_ms : DEFAULT_GRACE_MS;
  srv->server_name = strdup(opts->server_name ? opts->server_name : "");
  if (!srv->server_name) {
    free(srv);
    return NULL;
  }
  if ((opts->tls_cert_file != NULL) != (opts->tls_key_file != NULL)) {
    nn_error(MOD, "TLS needs both a certificate and a key file");
    goto fail;
  }
  if (opts->tls_cert_file && !(srv->ssl_ctx = load_tls(opts->tls_cert_file, opts->tls_key_file)))
    goto fail;

  h2o_config_init(&srv->gconf);
  srv->gconf.server_name = h2o_iovec_init(srv->server_name, strlen(srv->server_name));
  srv->gconf.max_request_entity_size =
      opts->max_body_bytes ? opts->max_body_bytes : DEFAULT_MAX_BODY;
  srv->gconf.http1.upgrade_to_http2 = 0;
  if (opts->read_timeout_ms)
    srv->gconf.http1.req_timeout = opts->read_timeout_ms;
  h2o_hostconf_t *host =
      h2o_config_register_host(&srv->gconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
  struct root_handler *h = (void *)h2o_create_handler(path, sizeof(*h));
  h->super.on_req = on_req;
  h->srv = srv;
  srv->gconf_inited = true;

  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
  return srv;
fail:
  free_server(srv);
  return NULL;
}
