/* SPDX-License-Identifier: Apache-2.0 */
/* Remote write and Loki push handlers. A request's decoded form lives in its pool, is
 * appended in one go on the loop thread, and the response waits for the WAL's group
 * commit: a 204 means the data survives a crash. */
#include "aggregator/ingest/ingest.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aggregator/logstore/logstore.h"
#include "aggregator/storage/metadata.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/buf.h"
#include "common/compress.h"
#include "common/error.h"
#include "common/http_server.h"
#include "common/labels.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pool.h"
#include "common/utf8.h"
#include "common/wire.h"

#define OFF(f)         offsetof(struct nn_ingest_config, f)
#define MAX_TENANT_LEN 150
#define RAW_KEEP_BYTES ((size_t)16 << 20)
/* How many series ahead the lookup slot, then the series, are prefetched. */
#define PREFETCH_SLOT   16
#define PREFETCH_SERIES 6

const struct nn_cfg_option nn_ingest_config_options[] = {
    {.name = "max_decompressed_size",
     .type = NN_CFG_SIZE,
     .offset = OFF(max_decompressed_size),
     .def = "128MiB",
     .help = "largest decompressed request body; a bigger one (a decompression bomb) gets 400"},
    {.name = "max_series_per_request",
     .type = NN_CFG_INT,
     .offset = OFF(max_series_per_request),
     .def = "100000",
     .help = "series (remote write) or streams (push) in one request"},
    {.name = "max_labels_per_series",
     .type = NN_CFG_INT,
     .offset = OFF(max_labels_per_series),
     .def = "64",
     .help = "labels on one series or stream"},
    {.name = "max_label_name_length",
     .type = NN_CFG_INT,
     .offset = OFF(max_label_name_length),
     .def = "1024",
     .help = "bytes in a label name"},
    {.name = "max_label_value_length",
     .type = NN_CFG_INT,
     .offset = OFF(max_label_value_length),
     .def = "4096",
     .help = "bytes in a label value"},
    {.name = "max_active_series",
     .type = NN_CFG_INT,
     .offset = OFF(max_active_series),
     .def = "5000000",
     .help = "series in the head; new series beyond it get 429"},
    {.name = "retry_after_seconds",
     .type = NN_CFG_INT,
     .offset = OFF(retry_after_seconds),
     .def = "5",
     .help = "Retry-After sent with 429 answers"},
    {.name = "bearer_token",
     .type = NN_CFG_STR,
     .offset = OFF(bearer_token),
     .flags = NN_CFG_SECRET,
     .help = "when set, writes need 'Authorization: Bearer <token>' (or bearer_token_file)"},
    {.name = "multi_tenancy",
     .type = NN_CFG_BOOL,
     .offset = OFF(multi_tenancy),
     .def = "false",
     .help = "require X-Scope-OrgID; series get a tenant label, logs a tenant of their own"},
    {0},
};

enum { H_WRITE, H_PUSH, H_COUNT };
static const char *const handler_names[H_COUNT] = {"remote_write", "loki_push"};

struct nn_ingest {
  const struct nn_ingest_config *cfg;
  struct nn_tsdb *db;
  struct nn_logstore *logs;
  struct nn_metadata *md; /* may be NULL */
  struct nn_tsdb_appender *app;
  /* Reused between requests (kept up to RAW_KEEP_BYTES): the decompressed remote-write
   * body, which the decoded request points into, and one series' labels. */
  struct nn_buf raw;
  struct nn_label *scratch; /* every series' canonical labels, one request at a time */
  size_t scratch_cap;
  struct prep *prep; /* per series of the request */
  size_t prep_cap;
  struct nn_metric *requests[H_COUNT][6]; /* by status class: 2xx 400 413 415 429 5xx */
  struct nn_metric *samples_total, *samples_rejected, *series_rejected, *bytes_total;
  struct nn_metric *entries_total, *entries_rejected, *entries_dup, *batches_dup;
};

/* One series of a remote-write request, made ready before any is appended. */
struct prep {
  struct nn_label *ls;
  uint32_t nl;
  int st; /* series_labels' answer; the message is made again if needed */
  uint64_t hash;
};

/* Per-request state that outlives the handler while the WAL commit is pending. */
struct pending {
  struct nn_ingest *in;
  struct nn_http_req *req;
  int handler;
  int status; /* answer once durable: 204 or 400 */
  char msg[512];
  struct nn_tsdb_durable_req durable;
  struct nn_logstore_append_result res;
};

static int status_slot(int status)
{
  switch (status) {
  case 400: return 1;
  case 413: return 2;
  case 415: return 3;
  case 429: return 4;
  default: return status >= 500 ? 5 : 0;
  }
}

static void answer(struct nn_ingest *in, struct nn_http_req *req, int handler, int status,
                   const char *msg)
{
  nn_metric_inc(in->requests[handler][status_slot(status)]);
  if (status == 429) {
    char ra[32];
    snprintf(ra, sizeof(ra), "%lld", (long long)in->cfg->retry_after_seconds);
    nn_http_add_header(req, "Retry-After", ra);
  }
  if (status == 204) {
    nn_http_respond(req, 204, NULL, NULL, 0);
    return;
  }
  if (status >= 500)
    NN_LOG_RL(NN_LOG_WARN, "ingest", "%s: %d %s", handler_names[handler], status, msg);
  else
    nn_debug("ingest", "%s: %d %s", handler_names[handler], status, msg);
  nn_http_respond_error(req, status, msg);
}

static bool header_is(const char *v, size_t n, const char *want)
{
  size_t wl = strlen(want);
  return v && n == wl && strncasecmp(v, want, n) == 0;
}

/* Constant-time comparison, so the token cannot be guessed byte by byte from timings. */
static bool token_equal(const char *a, size_t an, const char *b)
{
  size_t bn = strlen(b);
  unsigned char d = an != bn;
  for (size_t i = 0; i < an; i++)
    d |= (unsigned char)(a[i] ^ b[i % (bn ? bn : 1)]);
  return d == 0;
}

/* Authentication and tenant. Returns 0, or an HTTP status with msg filled. */
static int check_access(struct nn_ingest *in, struct nn_http_req *req, const char **tenant,
                        char *msg, size_t msglen)
{
  *tenant = NULL;
  if (strcmp(req->method, "POST") != 0) {
    snprintf(msg, msglen, "method %s not allowed; use POST", req->method);
    return 405;
  }
  if (in->cfg->bearer_token && in->cfg->bearer_token[0]) {
    size_t n;
    const char *auth = nn_http_req_header(req, "authorization", &n);
    if (!auth || n < 7 || strncasecmp(auth, "Bearer ", 7) != 0 ||
        !token_equal(auth + 7, n - 7, in->cfg->bearer_token)) {
      snprintf(msg, msglen, "missing or wrong bearer token");
      return 401;
    }
  }
  if (in->cfg->multi_tenancy) {
    size_t n;
    const char *org = nn_http_req_header(req, "x-scope-orgid", &n);
    if (!org || n == 0) {
      snprintf(msg, msglen, "no org id: set the X-Scope-OrgID header");
      return 401;
    }
    if (n > MAX_TENANT_LEN) {
      snprintf(msg, msglen, "X-Scope-OrgID longer than %d bytes", MAX_TENANT_LEN);
      return 400;
    }
    *tenant = nn_pool_strndup(nn_http_req_pool(req), org, n);
  }
  return 0;
}

/* Maps the Content-Encoding header to a codec; absent means the protocol's default. */
static int request_codec(struct nn_http_req *req, enum nn_codec dflt, enum nn_codec *codec,
                         char *msg, size_t msglen)
{
  size_t n;
  const char *ce = nn_http_req_header(req, "content-encoding", &n);
  if (!ce || n == 0) {
    *codec = dflt;
    return 0;
  }
  char tmp[32];
  snprintf(tmp, sizeof(tmp), "%.*s", (int)(n < 31 ? n : 31), ce);
  if (nn_codec_parse(tmp, codec) < 0 || *codec == NN_CODEC_NONE) {
    snprintf(msg, msglen, "unsupported Content-Encoding \"%.40s\"; use snappy, zstd or lz4", tmp);
    return 415;
  }
  return 0;
}

static int decode_status(int rc)
{
  return rc == NN_ENOMEM ? 500 : 400;
}

/* Checks one series' labels against the limits and puts them in canonical form in v
 * (room for n_labels + 1). Full validation is left to the store, which checks only label
 * sets it does not hold yet. Returns 0 or an HTTP status with msg. */
static int series_labels(struct nn_ingest *in, const struct nn_wire_rw_series *ts,
                         const char *tenant, struct nn_label *v, size_t *nout, char *msg,
                         size_t msglen)
{
  size_t n = ts->n_labels;
  if ((int64_t)n > in->cfg->max_labels_per_series) {
    snprintf(msg, msglen, "series has %zu labels, more than the limit of %lld", n,
             (long long)in->cfg->max_labels_per_series);
    return 400;
  }
  for (size_t i = 0; i < n; i++) {
    const char *name = ts->labels[i].name;
    size_t nlen = ts->lens[2 * i], vlen = ts->lens[2 * i + 1];
    if ((int64_t)nlen > in->cfg->max_label_name_length) {
      snprintf(msg, msglen, "label name \"%.64s...\" is %zu bytes, more than the limit of %lld",
               name, nlen, (long long)in->cfg->max_label_name_length);
      return 400;
    }
    if ((int64_t)vlen > in->cfg->max_label_value_length) {
      snprintf(msg, msglen, "value of label \"%.64s\" is %zu bytes, more than the limit of %lld",
               name, vlen, (long long)in->cfg->max_label_value_length);
      return 400;
    }
    v[i] = ts->labels[i];
  }
  if (tenant)
    v[n++] = (struct nn_label){"tenant", tenant};
  n = nn_labels_canonicalize(v, n);
  if (!nn_labels_get(v, n, "__name__")) {
    snprintf(msg, msglen, "series without a metric name (__name__ label)");
    return 400;
  }
  *nout = n;
  return 0;
}

/* Grows the per-request arrays (kept between requests) for wr. */
static int prep_reserve(struct nn_ingest *in, const struct nn_wire_rw_request *wr)
{
  size_t labels = 0;
  for (size_t i = 0; i < wr->n_series; i++)
    labels += (size_t)wr->series[i].n_labels + 1;
  if (labels > in->scratch_cap) {
    struct nn_label *v = realloc(in->scratch, labels * sizeof(*v));
    if (!v)
      return NN_ENOMEM;
    in->scratch = v;
    in->scratch_cap = labels;
  }
  if (wr->n_series > in->prep_cap) {
    struct prep *p = realloc(in->prep, wr->n_series * sizeof(*p));
    if (!p)
      return NN_ENOMEM;
    in->prep = p;
    in->prep_cap = wr->n_series;
  }
  return 0;
}

/* Reads a protobuf varint; false at the end of the buffer or past 10 bytes. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
  uint64_t x = 0;
  for (int shift = 0; shift < 70 && *p < end; shift += 7) {
    uint8_t c = *(*p)++;
    x |= (uint64_t)(c & 0x7f) << shift;
    if (c < 0x80) {
      *v = x;
      return true;
    }
  }
  return false;
}

/* Steps over one field's value of the given wire type. Field 1 of type 2 (the repeated
 * message in both WriteRequest and TimeSeries) comes back as [*sub, *sub_end). */
static bool pb_skip(const uint8_t **p, const uint8_t *end, unsigned wt, const uint8_t **sub,
                    const uint8_t **sub_end)
{
  uint64_t v;
  switch (wt) {
  case 0: return pb_varint(p, end, &v);
  case 1:
    if (end - *p < 8)
      return false;
    *p += 8;
    return true;
  case 2:
    if (!pb_varint(p, end, &v) || v > (uint64_t)(end - *p))
      return false;
    *sub = *p;
    *sub_end = *p + v;
    *p += v;
    return true;
  case 5:
    if (end - *p < 4)
      return false;
    *p += 4;
    return true;
  default: return false;
  }
}

/* Counts series and labels per series in a raw WriteRequest before it is decoded, so a
 * body with a million series or labels is refused by its limit without allocating a
 * struct for each. Malformed protobuf is left to the decoder, which explains it with a
 * byte offset. Returns 0 or 400 with msg. */
static int rw_prescan(const struct nn_ingest_config *cfg, const uint8_t *p, size_t n, char *msg,
                      size_t msglen)
{
  const uint8_t *end = p + n, *ts, *ts_end;
  uint64_t key, nseries = 0;
  while (p < end) {
    if (!pb_varint(&p, end, &key) || !pb_skip(&p, end, (unsigned)(key & 7), &ts, &ts_end))
      return 0;
    if (key != (1 << 3 | 2))
      continue;
    if (++nseries > (uint64_t)cfg->max_series_per_request) {
      snprintf(msg, msglen, "more than %lld series in one request, the limit",
               (long long)cfg->max_series_per_request);
      return 400;
    }
    uint64_t nlabels = 0;
    const uint8_t *q = ts, *l, *l_end;
    while (q < ts_end) {
      if (!pb_varint(&q, ts_end, &key) || !pb_skip(&q, ts_end, (unsigned)(key & 7), &l, &l_end))
        return 0;
      nlabels += key == (1 << 3 | 2);
    }
    if (nlabels > (uint64_t)cfg->max_labels_per_series) {
      snprintf(msg, msglen, "series has %llu labels, more than the limit of %lld",
               (unsigned long long)nlabels, (long long)cfg->max_labels_per_series);
      return 400;
    }
  }
  return 0;
}

/* Keeps a WriteRequest's metric metadata (type, help, unit), per tenant. Prometheus sends
 * it in requests of its own every minute; a malformed entry only loses the metadata. */
static void store_metadata(struct nn_ingest *in, struct nn_http_req *req, const void *body,
                           size_t len)
{
  size_t n;
  const char *org = in->cfg->multi_tenancy ? nn_http_req_header(req, "x-scope-orgid", &n) : NULL;
  char tenant[MAX_TENANT_LEN + 1];
  if (org)
    snprintf(tenant, sizeof(tenant), "%.*s", (int)(n < MAX_TENANT_LEN ? n : MAX_TENANT_LEN), org);
  if (in->md)
    nn_metadata_add_write_request(in->md, org ? tenant : NULL, body, len);
}

/* Decompresses a remote-write body into in->raw and decodes it in place, refusing it by
 * the request limits before the decoder allocates anything. Returns 0 or an HTTP status
 * with msg. */
static int rw_unpack(struct nn_ingest *in, enum nn_codec codec, struct nn_http_req *req,
                     struct nn_wire_rw_request *wr, char *msg, size_t msglen)
{
  size_t max = in->cfg->max_decompressed_size;
  struct nn_buf *raw = &in->raw;
  nn_buf_reset(raw);
  int st = 0, rc = nn_decompress(codec, req->body, req->body_len, max, raw);
  if (rc == 0 && !raw->data)
    rc = nn_buf_reserve(raw, 1); /* the decoder NUL-terminates in place: needs a byte */
  if (rc == NN_ETOOBIG) {
    snprintf(msg, msglen, "%s body decompresses to more than the %zu-byte limit",
             nn_codec_name(codec), max);
    st = 400;
  } else if (rc < 0) {
    snprintf(msg, msglen, "%s body: %s", nn_codec_name(codec), nn_strerror(rc));
    st = decode_status(rc);
  } else if ((st = rw_prescan(in->cfg, (const uint8_t *)raw->data, raw->len, msg, msglen)) == 0) {
    store_metadata(in, req, raw->data, raw->len); /* before the in-place decode */
    rc = nn_wire_rw_parse(raw->data, raw->len, nn_http_req_pool(req), wr, msg, msglen);
    st = rc < 0 ? decode_status(rc) : 0;
  }
  return st;
}

static void on_write_durable(struct nn_tsdb_durable_req *d, int status)
{
  struct pending *p = d->data;
  if (status < 0) {
    snprintf(p->msg, sizeof(p->msg), "writing the WAL failed: %s", nn_strerror(status));
    p->status = 500;
  }
  answer(p->in, p->req, H_WRITE, p->status, p->msg);
}

static const char *append_error_text(int rc)
{
  switch (rc) {
  case NN_EOUTOFORDER: return "out of order sample";
  case NN_EDUPLICATE: return "duplicate sample for timestamp";
  case NN_TSDB_EOUTOFBOUNDS: return "out of bounds";
  default: return nn_strerror(rc);
  }
}

/* A label set the store refused as invalid: says why, in the words of nn_labels_validate. */
static void invalid_series_msg(const struct nn_label *ls, size_t n, char *msg, size_t msglen)
{
  if (nn_labels_validate(ls, n, msg, msglen) == 0)
    snprintf(msg, msglen, "invalid label set");
}

static void handle_write(struct nn_ingest *in, struct nn_http_req *req)
{
  struct nn_pool *pool = nn_http_req_pool(req);
  char msg[512] = "";
  const char *tenant;
  int st = check_access(in, req, &tenant, msg, sizeof(msg));
  if (st) {
    answer(in, req, H_WRITE, st, msg);
    return;
  }
  size_t n;
  const char *ct = nn_http_req_header(req, "content-type", &n);
  if (ct && n && !header_is(ct, n, "application/x-protobuf") &&
      !header_is(ct, n, "application/x-protobuf;proto=prometheus.WriteRequest")) {
    snprintf(msg, sizeof(msg),
             "unsupported Content-Type \"%.*s\"; remote write 1.0 uses "
             "application/x-protobuf",
             (int)(n < 80 ? n : 80), ct);
    answer(in, req, H_WRITE, 415, msg);
    return;
  }
  enum nn_codec codec;
  if ((st = request_codec(req, NN_CODEC_SNAPPY, &codec, msg, sizeof(msg)))) {
    answer(in, req, H_WRITE, st, msg);
    return;
  }
  nn_metric_add(in->bytes_total, (double)req->body_len);
  struct nn_wire_rw_request wr;
  if ((st = rw_unpack(in, codec, req, &wr, msg, sizeof(msg)))) {
    answer(in, req, H_WRITE, st, msg);
    return;
  }
  int rc;
  if ((int64_t)wr.n_series > in->cfg->max_series_per_request) {
    snprintf(msg, sizeof(msg), "%zu series in one request, more than the limit of %lld",
             wr.n_series, (long long)in->cfg->max_series_per_request);
    answer(in, req, H_WRITE, 400, msg);
    return;
  }

  struct pending *p = nn_pool_calloc(pool, sizeof(*p));
  if (!p) {
    answer(in, req, H_WRITE, 400, "request too large for the request memory cap");
    return;
  }
  p->in = in;
  p->req = req;
  p->handler = H_WRITE;
  p->status = 204;
  size_t rejected = 0, accepted = 0;
  if (prep_reserve(in, &wr) < 0) {
    answer(in, req, H_WRITE, 500, "out of memory");
    return;
  }
  /* Canonical labels and hashes for every series first, so that the loop below can ask
   * for each series' lookup slot, then for the series itself, some series ahead: the
   * lookups then find them in the cache instead of each waiting for memory (a third of
   * the ingest CPU otherwise). */
  struct nn_label *lv = in->scratch;
  char smsg[256];
  for (size_t i = 0; i < wr.n_series; i++) {
    struct prep *pr = &in->prep[i];
    size_t nl = 0;
    pr->ls = lv;
    pr->st = series_labels(in, &wr.series[i], tenant, lv, &nl, smsg, sizeof(smsg));
    pr->nl = (uint32_t)nl;
    lv += wr.series[i].n_labels + 1;
    if (pr->st == 0)
      pr->hash = nn_tsdb_labels_hash(pr->ls, nl);
  }
  for (size_t i = 0; i < wr.n_series && i < PREFETCH_SLOT; i++)
    if (in->prep[i].st == 0)
      nn_tsdb_prefetch(in->db, in->prep[i].hash, 0);
  for (size_t i = 0; i < wr.n_series; i++) {
    const struct nn_wire_rw_series *ts = &wr.series[i];
    const struct prep *pr = &in->prep[i];
    struct nn_label *ls = pr->ls;
    size_t nl = pr->nl;
    if (i + PREFETCH_SLOT < wr.n_series && in->prep[i + PREFETCH_SLOT].st == 0)
      nn_tsdb_prefetch(in->db, in->prep[i + PREFETCH_SLOT].hash, 0);
    if (i + PREFETCH_SERIES < wr.n_series && in->prep[i + PREFETCH_SERIES].st == 0)
      nn_tsdb_prefetch(in->db, in->prep[i + PREFETCH_SERIES].hash, 1);
    st = pr->st;
    if (st) {
      size_t ignored;
      series_labels(in, ts, tenant, ls, &ignored, smsg, sizeof(smsg));
      nn_metric_inc(in->series_rejected);
      rejected += ts->n_samples;
      if (p->status == 204) {
        p->status = st;
        snprintf(p->msg, sizeof(p->msg), "%s", smsg);
      }
      continue;
    }
    uint64_t ref = 0;
    bool have_ref = false;
    for (size_t j = 0; j < ts->n_samples; j++) {
      const struct nn_wire_rw_sample *s = &ts->samples[j];
      if (!have_ref) {
        size_t before = nn_tsdb_series_count(in->db);
        rc = nn_tsdb_appender_append_hashed(in->app, ls, nl, pr->hash, s->t, s->v, &ref);
        size_t after = nn_tsdb_series_count(in->db);
        /* Appending to an existing series is always fine; only a new one is refused. */
        if (after > before && (int64_t)after > in->cfg->max_active_series) {
          nn_tsdb_appender_rollback(in->app);
          snprintf(msg, sizeof(msg), "the limit of %lld active series is reached",
                   (long long)in->cfg->max_active_series);
          answer(in, req, H_WRITE, 429, msg);
          return;
        }
        if (rc == NN_EINVAL) {
          nn_metric_inc(in->series_rejected);
          rejected += ts->n_samples - j;
          if (p->status == 204) {
            invalid_series_msg(ls, nl, smsg, sizeof(smsg));
            p->status = 400;
            snprintf(p->msg, sizeof(p->msg), "%s", smsg);
          }
          break;
        }
        have_ref = rc == 0;
      } else {
        rc = nn_tsdb_appender_append_ref(in->app, ref, s->t, s->v);
      }
      if (rc == 0) {
        accepted++;
        continue;
      }
      if (rc == NN_ENOMEM || rc == NN_ETOOBIG || rc == NN_EAGAIN) {
        nn_tsdb_appender_rollback(in->app);
        answer(in, req, H_WRITE, rc == NN_ENOMEM ? 500 : 429,
               rc == NN_ENOMEM ? "out of memory" : "too many pending samples; retry later");
        return;
      }
      rejected++;
      if (p->status == 204) {
        struct nn_buf lb;
        nn_buf_init(&lb, 256);
        nn_labels_format(ls, nl, &lb);
        p->status = 400;
        snprintf(p->msg, sizeof(p->msg), "%s for series %s at %lld", append_error_text(rc),
                 lb.data ? lb.data : "{}", (long long)s->t);
        nn_buf_fini(&lb);
      }
    }
  }
  rc = nn_tsdb_appender_commit(in->app);
  if (rc < 0) {
    answer(in, req, H_WRITE, rc == NN_EAGAIN ? 429 : 500,
           rc == NN_EAGAIN ? "the WAL is backed up; retry later" : nn_strerror(rc));
    return;
  }
  nn_metric_add(in->samples_total, (double)accepted);
  nn_metric_add(in->samples_rejected, (double)rejected);
  p->durable.data = p;
  nn_tsdb_wal_wait(in->db, &p->durable, on_write_durable);
}

static void on_write(struct nn_http_req *req, void *ud)
{
  struct nn_ingest *in = ud;
  handle_write(in, req);
  /* The decoded request pointed into raw; done with it. A body far above the usual size
   * does not pin its memory until the next one. */
  if (in->raw.cap > RAW_KEEP_BYTES)
    nn_buf_fini(&in->raw);
  if (in->scratch_cap * sizeof(*in->scratch) > RAW_KEEP_BYTES) {
    free(in->scratch);
    free(in->prep);
    in->scratch = NULL;
    in->prep = NULL;
    in->scratch_cap = in->prep_cap = 0;
  }
}

/* Loki push */

static void on_push_durable(void *ud, int status)
{
  struct pending *p = ud;
  if (status < 0) {
    snprintf(p->msg, sizeof(p->msg), "writing the WAL failed: %s", nn_strerror(status));
    p->status = 500;
  }
  answer(p->in, p->req, H_PUSH, p->status, p->msg);
}

/* Loki decodes JSON pushes with jsoniter, which takes any bytes inside strings, and its
 * answers show invalid UTF-8 as U+FFFD; jansson refuses such a document outright. Copying
 * the body with each invalid byte replaced by U+FFFD stores what Loki would show. */
static int json_fix_utf8(const char *s, size_t n, struct nn_buf *out)
{
  size_t i = 0;
  while (i < n) {
    size_t run = i, k;
    while (run < n && (k = nn_utf8_valid_prefix(s + run, n - run)) > 0)
      run += k;
    int rc = nn_buf_append(out, s + i, run - i);
    if (rc == 0 && run < n)
      rc = nn_buf_append(out, "\xef\xbf\xbd", 3);
    if (rc < 0)
      return rc;
    i = run + 1;
  }
  return 0;
}

static void on_push(struct nn_http_req *req, void *ud)
{
  struct nn_ingest *in = ud;
  struct nn_pool *pool = nn_http_req_pool(req);
  char msg[512] = "";
  const char *tenant;
  int st = check_access(in, req, &tenant, msg, sizeof(msg));
  if (st) {
    answer(in, req, H_PUSH, st, msg);
    return;
  }
  if (!in->logs) {
    answer(in, req, H_PUSH, 503, "the log store is not enabled");
    return;
  }
  size_t n;
  const char *ct = nn_http_req_header(req, "content-type", &n);
  bool json = ct && n >= 16 && strncasecmp(ct, "application/json", 16) == 0 &&
              (n == 16 || ct[16] == ';' || ct[16] == ' ');
  /* Loki's protobuf body is always snappy-compressed; Content-Encoding snappy is tolerated.
   * A nines agent may use zstd or lz4 instead. JSON bodies are plain unless encoded. */
  enum nn_codec codec;
  if ((st = request_codec(req, json ? NN_CODEC_NONE : NN_CODEC_SNAPPY, &codec, msg, sizeof(msg)))) {
    answer(in, req, H_PUSH, st, msg);
    return;
  }
  nn_metric_add(in->bytes_total, (double)req->body_len);
  Logproto__PushRequest *pr;
  int rc;
  if (json) {
    struct nn_buf raw;
    nn_buf_init(&raw, in->cfg->max_decompressed_size);
    const char *body = req->body;
    size_t blen = req->body_len;
    if (codec != NN_CODEC_NONE) {
      rc = nn_decompress(codec, req->body, req->body_len, in->cfg->max_decompressed_size, &raw);
      if (rc < 0) {
        nn_buf_fini(&raw);
        if (rc == NN_ETOOBIG)
          snprintf(msg, sizeof(msg), "%s body decompresses to more than the %zu-byte limit",
                   nn_codec_name(codec), (size_t)in->cfg->max_decompressed_size);
        else
          snprintf(msg, sizeof(msg), "%s body: %s", nn_codec_name(codec), nn_strerror(rc));
        answer(in, req, H_PUSH, decode_status(rc), msg);
        return;
      }
      body = raw.data ? raw.data : "";
      blen = raw.len;
    }
    struct nn_buf fixed;
    nn_buf_init(&fixed, NN_WIRE_JSON_MAX);
    if (!nn_utf8_valid(body, blen)) {
      rc = json_fix_utf8(body, blen, &fixed);
      if (rc < 0) {
        nn_buf_fini(&fixed);
        nn_buf_fini(&raw);
        snprintf(msg, sizeof(msg),
                 "JSON body with invalid UTF-8 is larger than %zu bytes once repaired",
                 (size_t)NN_WIRE_JSON_MAX);
        answer(in, req, H_PUSH, decode_status(rc), msg);
        return;
      }
      body = fixed.data ? fixed.data : "";
      blen = fixed.len;
    }
    rc = nn_wire_push_decode_json(body, blen, pool, &pr, msg, sizeof(msg));
    nn_buf_fini(&fixed);
    nn_buf_fini(&raw);
  } else {
    rc = nn_wire_push_unpack(codec, req->body, req->body_len, in->cfg->max_decompressed_size, pool,
                             &pr, msg, sizeof(msg));
  }
  if (rc < 0) {
    answer(in, req, H_PUSH, decode_status(rc), msg);
    return;
  }
  if ((int64_t)pr->n_streams > in->cfg->max_series_per_request) {
    snprintf(msg, sizeof(msg), "%zu streams in one push, more than the limit of %lld",
             pr->n_streams, (long long)in->cfg->max_series_per_request);
    answer(in, req, H_PUSH, 400, msg);
    return;
  }

  struct nn_logstore_stream_in *streams =
      nn_pool_calloc(pool, (pr->n_streams + 1) * sizeof(*streams));
  struct pending *p = nn_pool_calloc(pool, sizeof(*p));
  if (!streams || !p) {
    answer(in, req, H_PUSH, 400, "request too large for the request memory cap");
    return;
  }
  size_t total = 0;
  for (size_t i = 0; i < pr->n_streams; i++) {
    Logproto__StreamAdapter *sa = pr->streams[i];
    struct nn_logstore_entry *es = nn_pool_alloc(pool, (sa->n_entries + 1) * sizeof(*es));
    if (!es) {
      answer(in, req, H_PUSH, 400, "request too large for the request memory cap");
      return;
    }
    for (size_t j = 0; j < sa->n_entries; j++) {
      Logproto__EntryAdapter *e = sa->entries[j];
      int64_t sec = e->timestamp ? e->timestamp->seconds : 0;
      int64_t ns = e->timestamp ? e->timestamp->nanos : 0;
      es[j].ts_ns = sec * 1000000000LL + ns;
      es[j].line = e->line ? e->line : "";
      es[j].len = strlen(es[j].line);
      es[j].meta = NULL;
      es[j].nmeta = 0;
      if (e->n_structuredmetadata) {
        struct nn_label *m = nn_pool_alloc(pool, e->n_structuredmetadata * sizeof(*m));
        if (!m) {
          answer(in, req, H_PUSH, 400, "request too large for the request memory cap");
          return;
        }
        for (size_t k = 0; k < e->n_structuredmetadata; k++) {
          m[k].name = e->structuredmetadata[k]->name ? e->structuredmetadata[k]->name : "";
          m[k].value = e->structuredmetadata[k]->value ? e->structuredmetadata[k]->value : "";
        }
        es[j].meta = m;
        es[j].nmeta = e->n_structuredmetadata;
      }
    }
    streams[i].labels = sa->labels ? sa->labels : "";
    streams[i].labels_len = strlen(streams[i].labels);
    streams[i].entries = es;
    streams[i].n = sa->n_entries;
    total += sa->n_entries;
  }
  const char *key = nn_http_req_header(req, NN_INGEST_IDEMPOTENCY_HEADER, &n);
  struct nn_logstore_batch b = {
      .tenant = tenant,
      .idem_key = key && n ? nn_pool_strndup(pool, key, n) : NULL,
      .streams = streams,
      .n = pr->n_streams,
  };
  p->in = in;
  p->req = req;
  p->handler = H_PUSH;
  rc = nn_logstore_append_batch(in->logs, &b, &p->res, on_push_durable, p);
  if (rc < 0) {
    snprintf(msg, sizeof(msg), "storing the push failed: %s", nn_strerror(rc));
    answer(in, req, H_PUSH, rc == NN_EINVAL ? 400 : 500, msg);
    return;
  }
  nn_metric_add(in->entries_total, (double)p->res.accepted);
  nn_metric_add(in->entries_rejected, (double)p->res.rejected);
  nn_metric_add(in->entries_dup, (double)p->res.duplicates);
  if (p->res.known_key)
    nn_metric_inc(in->batches_dup);
  p->status = 204;
  if (p->res.rejected) {
    p->status = 400;
    snprintf(p->msg, sizeof(p->msg), "%zu of %zu entries rejected: %s", p->res.rejected, total,
             p->res.error);
  }
}

struct nn_ingest *nn_ingest_create(const struct nn_ingest_config *cfg, struct nn_tsdb *db,
                                   struct nn_logstore *logs, struct nn_metrics *metrics,
                                   struct nn_http_server *srv)
{
  static const char *const classes[6] = {"2xx", "400", "413", "415", "429", "5xx"};
  struct nn_ingest *in = calloc(1, sizeof(*in));
  if (!in)
    return NULL;
  in->cfg = cfg;
  in->db = db;
  in->logs = logs;
  nn_buf_init(&in->raw, cfg->max_decompressed_size);
  in->app = nn_tsdb_appender_create(db);
  if (!in->app)
    goto fail;
  for (int h = 0; h < H_COUNT; h++) {
    for (int c = 0; c < 6; c++) {
      char l[96];
      snprintf(l, sizeof(l), "handler=\"%s\",code=\"%s\"", handler_names[h], classes[c]);
      in->requests[h][c] = nn_metrics_counter(metrics, "nines_ingest_requests_total",
                                              "Ingest requests by handler and answer.", l);
    }
  }
  in->samples_total = nn_metrics_counter(metrics, "nines_ingest_samples_total",
                                         "Samples stored from remote write.", NULL);
  in->samples_rejected =
      nn_metrics_counter(metrics, "nines_ingest_samples_rejected_total",
                         "Samples refused (out of order, duplicate, invalid).", NULL);
  in->series_rejected = nn_metrics_counter(metrics, "nines_ingest_series_rejected_total",
                                           "Series refused for invalid labels or limits.", NULL);
  in->bytes_total = nn_metrics_counter(metrics, "nines_ingest_received_bytes_total",
                                       "Request body bytes received, before decompression.", NULL);
  in->entries_total = nn_metrics_counter(metrics, "nines_ingest_log_entries_total",
                                         "Log entries stored from Loki push.", NULL);
  in->entries_rejected =
      nn_metrics_counter(metrics, "nines_ingest_log_entries_rejected_total",
                         "Log entries refused (too long, too old, limits).", NULL);
  in->entries_dup = nn_metrics_counter(metrics, "nines_ingest_log_entries_duplicate_total",
                                       "Exact duplicate log entries dropped.", NULL);
  in->batches_dup = nn_metrics_counter(
      metrics, "nines_ingest_push_batches_resent_total",
      "Push batches whose idempotency key was already stored (acknowledged, not stored).", NULL);
  if (nn_http_server_route(srv, "/api/v1/write", 0, on_write, in) < 0 ||
      nn_http_server_route(srv, "/loki/api/v1/push", 0, on_push, in) < 0 ||
      nn_http_server_route(srv, "/api/prom/push", 0, on_push, in) < 0)
    goto fail;
  return in;
fail:
  nn_ingest_destroy(in);
  return NULL;
}

void nn_ingest_set_metadata(struct nn_ingest *in, struct nn_metadata *md)
{
  in->md = md;
}

void nn_ingest_destroy(struct nn_ingest *in)
{
  if (!in)
    return;
  nn_tsdb_appender_destroy(in->app);
  nn_buf_fini(&in->raw);
  free(in->scratch);
  free(in->prep);
  free(in);
}
