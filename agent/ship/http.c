/* SPDX-License-Identifier: Apache-2.0 */
/* The ship's HTTP transport: one POST per batch through the shared curl-multi client, with
 * the answer reduced to what the retry logic needs (rc, status, Retry-After, error text). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/ship/ship.h"
#include "common/error.h"
#include "common/http_client.h"

struct req {
  struct req *prev, *next;
  struct nn_ship_http *h;    /* NULL once the transport is gone */
  struct nn_ship_call *call; /* NULL once cancelled */
  nn_ship_complete_fn complete;
  size_t len;
  char body[]; /* copy: the ship's buffer may be freed before curl is done with it */
};

struct nn_ship_http {
  struct nn_http_client *client;
  size_t max_response_bytes;
  struct req *head; /* outstanding requests */
};

static void unlink_req(struct req *r)
{
  if (!r->h)
    return;
  if (r->prev)
    r->prev->next = r->next;
  else
    r->h->head = r->next;
  if (r->next)
    r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

static int64_t now_unix_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_done(const struct nn_http_response *resp, void *ud)
{
  struct req *r = ud;
  unlink_req(r);
  if (r->call) {
    struct nn_ship_response res = {
        .rc = resp->rc,
        .status = resp->status,
        .retry_after_ms = -1,
        .body = resp->rc ? resp->error : resp->body,
        .body_len = resp->rc ? strlen(resp->error) : resp->body_len,
    };
    /* A status with a failed transfer (e.g. body over the cap) still counts as answered. */
    if (res.rc == NN_ETOOBIG && res.status > 0)
      res.rc = 0;
    size_t vlen;
    const char *ra = nn_http_response_header(resp, "Retry-After", &vlen);
    if (ra)
      res.retry_after_ms = nn_ship_retry_after_parse(ra, vlen, now_unix_ms());
    struct nn_ship_call *call = r->call;
    r->call->transport_data = NULL;
    r->complete(call, &res);
  }
  free(r);
}

static int http_send(void *ctx, const struct nn_ship_request *q, struct nn_ship_call *call,
                     nn_ship_complete_fn complete)
{
  struct nn_ship_http *h = ctx;
  struct req *r = malloc(sizeof(*r) + q->body_len + 1);
  if (!r)
    return NN_ENOMEM;
  memset(r, 0, sizeof(*r));
  r->h = h;
  r->call = call;
  r->complete = complete;
  r->len = q->body_len;
  if (q->body_len)
    memcpy(r->body, q->body, q->body_len);
  struct nn_http_request hr = {
      .method = "POST",
      .url = q->url,
      .headers = q->headers,
      .nheaders = q->nheaders,
      .body = r->body,
      .body_len = q->body_len,
      .timeout_ms = q->timeout_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)q->timeout_ms,
      .max_response_bytes = h->max_response_bytes,
  };
  int rc = nn_http_client_send(h->client, &hr, on_done, r);
  if (rc < 0) {
    free(r);
    return rc;
  }
  r->next = h->head;
  if (h->head)
    h->head->prev = r;
  h->head = r;
  call->transport_data = r;
  return 0;
}

static void http_cancel(void *ctx, struct nn_ship_call *call)
{
  struct req *r = call->transport_data;
  if (r)
    r->call = NULL; /* curl finishes or times out on its own; the answer is ignored */
  call->transport_data = NULL;
}

struct nn_ship_http *nn_ship_http_create(struct nn_http_client *client, size_t max_response_bytes)
{
  struct nn_ship_http *h = calloc(1, sizeof(*h));
  if (!h)
    return NULL;
  h->client = client;
  h->max_response_bytes = max_response_bytes ? max_response_bytes : 64 * 1024;
  return h;
}

void nn_ship_http_transport(struct nn_ship_http *h, struct nn_ship_transport *t)
{
  t->send = http_send;
  t->cancel = http_cancel;
  t->ctx = h;
}

void nn_ship_http_destroy(struct nn_ship_http *h)
{
  if (!h)
    return;
  for (struct req *r = h->head, *n; r; r = n) {
    n = r->next;
    r->h = NULL;
    r->call = NULL;
    r->prev = r->next = NULL;
  }
  free(h);
}
