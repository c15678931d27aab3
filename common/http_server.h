/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.1 server on the program's libuv loop, a thin façade over h2o 2.2 (libuv flavour)
 * so that no other module sees an h2o type. Handlers are plain callbacks; a handler may
 * respond at once or later from the loop (asynchronous responses), and a response to a
 * request whose connection has gone away is a safe no-op. HTTP/2 is not offered. */
#ifndef NN_COMMON_HTTP_SERVER_H
#define NN_COMMON_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct nn_buf;
struct nn_pool;
struct nn_urlenc_param;
struct nn_http_server;

struct nn_http_server_opts {
  size_t max_body_bytes;      /* request body cap; larger bodies get 413 and are never
                                 buffered past the cap. 0 means 32 MiB. */
  size_t req_pool_bytes;      /* cap on each request's pool (nn_http_req_pool); 0 = 64 MiB */
  const char *tls_cert_file;  /* PEM certificate chain; with tls_key_file serves HTTPS */
  const char *tls_key_file;   /* PEM private key */
  const char *server_name;    /* value of the Server header; NULL or "" sends none */
  uint32_t read_timeout_ms;   /* reading a request head+body, and keep-alive idle time;
                                 0 = 10 s (h2o's default) */
  uint32_t shutdown_grace_ms; /* how long nn_http_server_stop waits for in-flight requests;
                                 0 = 5 s */
};

/* What a handler sees of a request. All strings are NUL-terminated, and stay valid until
 * the request is answered with nn_http_respond*. */
struct nn_http_req {
  const char *method;
  const char *path;  /* %-decoded and normalised ("." and ".." resolved), without query */
  const char *query; /* raw query string without the '?', "" when there is none */
  size_t path_len;
  size_t query_len;
  /* Request body (NULL/0 when there is none). Valid only until the handler returns: an
   * asynchronous handler copies what it still needs (for example into nn_http_req_pool). */
  const void *body;
  size_t body_len;
  const char *remote_addr; /* "ip:port", "[v6]:port", or "" when unknown */
};

/* A route's handler. It must eventually call nn_http_respond, nn_http_respond_buf or
 * nn_http_respond_error exactly once for req, either before returning or later from the loop
 * thread. Until then req stays valid, even if the client disconnects or the server stops
 * (a stop past its grace period answers 503 itself; the late call then only frees req).
 * h2o 2.2 does not read from a connection while its request is being handled, so a client
 * that leaves is only noticed when the response is written: an asynchronous handler
 * bounds its own wait. */
typedef void (*nn_http_handler_fn)(struct nn_http_req *req, void *ud);

#define NN_HTTP_ROUTE_PREFIX 1u /* match every path starting with the route's path */

/* Creates a server on loop; nothing listens until nn_http_server_listen. Returns NULL on
 * out-of-memory or when the TLS certificate or key cannot be loaded (the reason is logged).
 * Also sets SIGPIPE to ignored if it was at its default, since a peer closing a socket
 * mid-write must be an error code, not the death of the process. */
struct nn_http_server *nn_http_server_create(uv_loop_t *loop,
                                             const struct nn_http_server_opts *opts);

/* Registers a handler for path ("/api/v1/query"). Without flags the path must match
 * exactly; with NN_HTTP_ROUTE_PREFIX any path that starts with it matches. An exact route
 * wins over prefixes, and the longest prefix wins among prefixes. Unmatched paths get 404
 * "404 page not found" (as Go's net/http). NN_EINVAL if path does not start with '/',
 * NN_EEXIST if the same path and flags are already registered. */
int nn_http_server_route(struct nn_http_server *srv, const char *path, unsigned flags,
                         nn_http_handler_fn fn, void *ud);

/* Listens on host_port: "127.0.0.1:9595", "[::1]:9595", "localhost:9595" or ":9595"
 * (every address, IPv6 and IPv4). May be called more than once. A port of 0 picks a free
 * one (see nn_http_server_port). Returns 0, NN_EINVAL for an unparsable address, or a
 * negated errno (e.g. address in use). Host names are resolved synchronously, once. */
int nn_http_server_listen(struct nn_http_server *srv, const char *host_port);
/* Port of the first listening socket, or 0 when not listening. */
int nn_http_server_port(const struct nn_http_server *srv);
/* Open client connections (for self-metrics and tests). */
size_t nn_http_server_connections(const struct nn_http_server *srv);

/* Graceful stop: closes the listeners at once, closes idle keep-alive connections, lets
 * in-flight requests finish for up to shutdown_grace_ms, then answers requests still
 * pending with 503 and closes every connection. on_stopped (may be NULL) runs once every
 * handle is closed (from inside this call if the server never listened); then
 * nn_http_server_destroy frees the server. Calling stop again only replaces on_stopped. */
void nn_http_server_stop(struct nn_http_server *srv, void (*on_stopped)(void *ud), void *ud);
/* Frees the server. A server that is stopped or never listened is freed at once.
 * Otherwise this starts a stop without grace period and the memory is released once libuv
 * has closed every handle (so the loop must run on); no on_stopped callback is called after
 * destroy. NULL is a no-op. */
void nn_http_server_destroy(struct nn_http_server *srv);

/* The first header called name (case-insensitive) as a NUL-terminated copy in the request
 * pool, its length in *len (len may be NULL); NULL if absent. "Host" is supported; the
 * framing headers Content-Length and Transfer-Encoding are not (use body_len). */
const char *nn_http_req_header(struct nn_http_req *req, const char *name, size_t *len);
/* Per-request pool, capped by req_pool_bytes, freed when the request is answered. */
struct nn_pool *nn_http_req_pool(struct nn_http_req *req);
/* Form values as Go's Request.ParseForm: for POST, PUT and PATCH with Content-Type
 * application/x-www-form-urlencoded the body's pairs come first, then the query string's,
 * so nn_urlenc_get gives the body precedence (Go's FormValue) and repeated names keep
 * their order. Results live in the request pool. NN_EINVAL if any pair was malformed (the
 * good pairs are still returned, as Go does); NN_ENOMEM past the pool cap. */
int nn_http_req_params(struct nn_http_req *req, struct nn_urlenc_param **out, size_t *count);

/* Adds a response header (name and value are copied). Call before responding. */
void nn_http_add_header(struct nn_http_req *req, const char *name, const char *value);
/* Sends the response (body is copied) and releases req: req must not be used afterwards.
 * If the connection is gone this only releases req. content_type may be NULL. */
void nn_http_respond(struct nn_http_req *req, int status, const char *content_type,
                     const void *body, size_t len);
/* As nn_http_respond, but takes the storage of buf without copying; buf is left empty. */
void nn_http_respond_buf(struct nn_http_req *req, int status, const char *content_type,
                         struct nn_buf *buf);
/* Plain-text response: msg followed by a newline (Go's http.Error). */
void nn_http_respond_error(struct nn_http_req *req, int status, const char *msg);

#endif
