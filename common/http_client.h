/* SPDX-License-Identifier: Apache-2.0 */
/* Asynchronous HTTP client on the program's libuv loop: libcurl's multi interface driven
 * by uv_poll and uv_timer ("multi_socket"). Connections are kept alive and reused per
 * host, every response body has a hard cap, and every request ends in exactly one
 * completion callback. */
#ifndef NN_COMMON_HTTP_CLIENT_H
#define NN_COMMON_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct nn_http_client;

struct nn_http_client_opts {
  unsigned max_conns_per_host; /* 0 = 8; further requests to that host wait in a queue */
  unsigned max_total_conns;    /* size of the keep-alive cache; 0 = 64 */
  const char *user_agent;      /* NULL = "nines/<version>" */
  const char *ca_file;         /* PEM bundle to verify servers with; NULL = system store */
  bool insecure_skip_verify;   /* do not verify the server certificate or name */
  const char *cert_file;       /* client certificate (PEM) for mTLS */
  const char *key_file;        /* its private key (PEM) */
};

struct nn_http_request {
  const char *method;         /* NULL = "GET", or "POST" when body_len > 0 */
  const char *url;            /* copied */
  const char *const *headers; /* "Name: value" strings (copied), or NULL */
  size_t nheaders;
  /* Request body, NOT copied: it must stay valid until the completion callback runs. */
  const void *body;
  size_t body_len;
  uint32_t connect_timeout_ms; /* 0 = 10 s */
  uint32_t timeout_ms;         /* whole request, queueing included; 0 = 30 s */
  size_t max_response_bytes;   /* response body cap; 0 = 64 MiB */
  bool decompress;             /* send Accept-Encoding and decode gzip/deflate bodies */
};

/* Passed to the completion callback; valid only during the callback. */
struct nn_http_response {
  int rc;           /* 0, NN_ETIMEDOUT, NN_ECANCELED, NN_ETOOBIG (body over the cap; the
                       connection is dropped), NN_EIO (connect, TLS or protocol failure) or
                       NN_ENOMEM */
  int status;       /* HTTP status, 0 if no response head arrived */
  const char *body; /* NUL-terminated (not counted in body_len); "" when empty */
  size_t body_len;
  const char *error; /* human-readable reason when rc != 0 (curl's text), else "" */
  void *priv;        /* for nn_http_response_header */
};

typedef void (*nn_http_done_fn)(const struct nn_http_response *resp, void *ud);

/* Creates a client on loop. Returns NULL on out-of-memory or when curl cannot be set up. */
struct nn_http_client *nn_http_client_create(uv_loop_t *loop,
                                             const struct nn_http_client_opts *opts);

/* Starts a request; cb runs exactly once, always later from the loop (never from inside
 * this call). Returns 0, NN_EINVAL (no URL), NN_ECANCELED (client being destroyed) or
 * NN_ENOMEM; on error cb is not called. */
int nn_http_client_send(struct nn_http_client *c, const struct nn_http_request *r,
                        nn_http_done_fn cb, void *ud);

/* First response header called name (case-insensitive) of the final response, as a
 * NUL-terminated string valid during the callback, its length in *len (may be NULL);
 * NULL if absent. */
const char *nn_http_response_header(const struct nn_http_response *resp, const char *name,
                                    size_t *len);

/* Number of requests started and not yet completed. */
size_t nn_http_client_inflight(const struct nn_http_client *c);

/* Cancels every request (their callbacks run now, with NN_ECANCELED) and frees the client
 * once libuv has closed its handles (the loop must keep running). May be called from a
 * completion callback. NULL is a no-op. */
void nn_http_client_destroy(struct nn_http_client *c);

#endif
