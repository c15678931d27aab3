/* SPDX-License-Identifier: Apache-2.0 */
/* Scrape -> remote write. Each sample becomes one ship record: the key is the series'
 * encoded Label fields as the scraper caches them (so the ship groups samples per series,
 * as remote write wants), the piece an encoded Sample. Stale markers go through unchanged,
 * bit for bit. Metric metadata (TYPE, HELP, UNIT) goes in requests of its own, as
 * Prometheus sends it: each family at most once a minute, through a second ship. */
#include "agent/app/metrics.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "agent/app/internal.h"
#include "agent/ship/ship.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/wire.h"

#define OFF(f) offsetof(struct nn_agent_rw_config, f)

const struct nn_cfg_option nn_agent_rw_options[] = {
    {.name = "batch_size",
     .type = NN_CFG_SIZE,
     .offset = OFF(batch_size),
     .def = "1MiB",
     .help = "uncompressed bytes that close a batch"},
    {.name = "batch_wait",
     .type = NN_CFG_DURATION,
     .offset = OFF(batch_wait_ms),
     .def = "1s",
     .help = "age that closes a batch"},
    {.name = "destinations",
     .type = NN_CFG_LIST,
     .offset = OFF(destinations),
     .sub = nn_agent_dest_options,
     .elem_size = sizeof(struct nn_agent_dest_config),
     .help = "remote-write URLs; each has its own queue, retries and spool"},
    {0},
};

/* Prometheus's metadata send_interval. */
#define META_INTERVAL_MS 60000
/* Slots of the family -> last-sent table; a collision only sends a family again. */
#define META_SLOTS 4096

/* WriteRequest.metadata records: the key is a whole encoded MetricMetadata, the piece
 * empty (field 15, unknown to MetricMetadata, which receivers skip). */
static const struct nn_ship_payload metadata_payload = {
    .name = "remote_write",
    .content_type = "application/x-protobuf",
    .extra_header = "X-Prometheus-Remote-Write-Version: 0.1.0",
    .outer_field = 3,
    .key_field = 0,
    .piece_field = 15,
};

struct nn_agent_metrics {
  struct nn_scrape *scrape;
  struct nn_ship *ship;
  struct nn_ship *meta_ship;
  struct {
    uint64_t hash;
    int64_t sent_ms;
  } meta_sent[META_SLOTS];
  struct nn_buf meta_key; /* one encoded MetricMetadata */
  int closing;
  struct nn_ship_http *http;
  uint8_t *key; /* one series' encoded labels */
  size_t keycap;
  struct nn_metric *dropped;
  void (*on_closed)(void *ud);
  void *closed_ud;
};

/* Appends a length-delimited string field. */
static int put_str(struct nn_buf *b, unsigned field, const char *s)
{
  size_t n = strlen(s);
  uint8_t hdr[16];
  size_t k = 0;
  hdr[k++] = (uint8_t)(field << 3 | 2);
  for (size_t v = n; k < sizeof(hdr); v >>= 7) {
    hdr[k++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
    if (v < 0x80)
      break;
  }
  int rc = nn_buf_append(b, hdr, k);
  return rc < 0 ? rc : nn_buf_append(b, s, n);
}

/* Ships the families of this scrape not sent in the last minute. */
static void send_metadata(struct nn_agent_metrics *m, const struct nn_scrape_batch *b)
{
  for (size_t i = 0; i < b->nmeta; i++) {
    const struct nn_scrape_meta *md = &b->meta[i];
    uint64_t h = XXH3_64bits(md->family, strlen(md->family));
    size_t slot = h % META_SLOTS;
    if (m->meta_sent[slot].hash == h &&
        b->scrape_time_ms - m->meta_sent[slot].sent_ms < META_INTERVAL_MS &&
        b->scrape_time_ms >= m->meta_sent[slot].sent_ms)
      continue;
    nn_buf_reset(&m->meta_key);
    uint8_t type[2] = {1 << 3 | 0, (uint8_t)md->type}; /* MetricMetadata.type */
    int rc = nn_buf_append(&m->meta_key, type, 2);
    if (rc == 0)
      rc = put_str(&m->meta_key, 2, md->family);
    if (rc == 0 && md->help && *md->help)
      rc = put_str(&m->meta_key, 4, md->help);
    if (rc == 0 && md->unit && *md->unit)
      rc = put_str(&m->meta_key, 5, md->unit);
    if (rc == 0)
      rc = nn_ship_add(m->meta_ship, m->meta_key.data, m->meta_key.len, "", 0, NULL);
    if (rc < 0) {
      NN_LOG_RL(NN_LOG_WARN, "metrics", "metadata of %s not sent: %s", md->family, nn_strerror(rc));
      continue;
    }
    m->meta_sent[slot].hash = h;
    m->meta_sent[slot].sent_ms = b->scrape_time_ms;
  }
}

static void on_batch(void *ud, const struct nn_scrape_batch *b)
{
  struct nn_agent_metrics *m = ud;
  if (m->meta_ship)
    send_metadata(m, b);
  uint8_t piece[NN_WIRE_RW_SAMPLE_MAX];
  for (size_t i = 0; i < b->nsamples; i++) {
    const struct nn_scrape_sample *s = &b->samples[i];
    int rc = 0;
    if (s->rw_labels_len > m->keycap) {
      uint8_t *k = realloc(m->key, s->rw_labels_len);
      if (k) {
        m->key = k;
        m->keycap = s->rw_labels_len;
      } else {
        rc = NN_ENOMEM;
      }
    }
    /* The scraper keeps each series' labels encoded: only the Sample is new per sample. */
    if (rc == 0) {
      nn_scrape_rw_labels(b, s, m->key);
      size_t n = nn_wire_rw_sample_put(piece, s->v, s->t_ms);
      rc = nn_ship_add(m->ship, m->key, s->rw_labels_len, piece, n, NULL);
    }
    if (rc < 0) {
      /* Scraped samples cannot be re-read later; a refused one is counted, never hidden. */
      nn_metric_inc(m->dropped);
      NN_LOG_RL(NN_LOG_WARN, "metrics", "sample of job %s dropped: %s", b->job, nn_strerror(rc));
    }
  }
}

static void on_ack(void *ud, const struct nn_ship_token *tokens, size_t n,
                   enum nn_ship_outcome outcome, bool recovered)
{
}

/* Scraping has no backlog to pause: a paused ship refuses samples past its memory limit,
 * and on_batch counts them. */
static void on_pause(void *ud)
{
}

static void on_resume(void *ud)
{
}

struct nn_agent_metrics *nn_agent_metrics_create(uv_loop_t *loop, struct nn_scrape_config *scrape,
                                                 const struct nn_agent_rw_config *rw,
                                                 const char *data_dir,
                                                 struct nn_http_client *client,
                                                 struct nn_metrics *metrics,
                                                 const char *self_address)
{
  struct nn_ship_dest_config *dests = NULL;
  size_t ndests;
  char err[512];
  struct nn_agent_metrics *m = calloc(1, sizeof(*m));
  if (!m)
    return NULL;
  nn_buf_init(&m->meta_key, 3 * 4096 + 64);
  if (scrape->scrape_configs.n == 0)
    return m;
  if (nn_scrape_config_check(scrape, err, sizeof(err)) < 0) {
    nn_error("metrics", "scrape_configs: %s", err);
    goto fail;
  }
  if (nn__agent_dests(&rw->destinations, "/api/v1/write", &dests, &ndests) < 0)
    goto fail;
  m->dropped = nn_metrics_counter(metrics, "nines_agent_samples_dropped_total",
                                  "Scraped samples the shipper could not take.", NULL);
  m->http = nn_ship_http_create(client, 0);
  if (!m->http)
    goto fail;
  struct nn_ship_config sc;
  nn_ship_config_defaults(&sc);
  sc.name = "metrics";
  sc.payload = &nn_ship_payload_remote_write;
  sc.data_dir = data_dir;
  sc.batch_size = rw->batch_size;
  sc.batch_wait_ms = rw->batch_wait_ms;
  sc.dests = dests;
  sc.ndests = ndests;
  sc.owner = (struct nn_ship_owner){on_ack, on_pause, on_resume, m};
  nn_ship_http_transport(m->http, &sc.transport);
  sc.metrics = metrics;
  if (nn_ship_create(loop, &sc, &m->ship) < 0)
    goto fail;
  /* Metadata is re-sent every minute, so it needs no spool of its own. */
  struct nn_ship_config mc = sc;
  mc.name = "metadata";
  mc.payload = &metadata_payload;
  mc.data_dir = NULL;
  mc.owner = (struct nn_ship_owner){on_ack, on_pause, on_resume, m};
  mc.metrics = NULL;
  if (nn_ship_create(loop, &mc, &m->meta_ship) < 0)
    goto fail;
  struct nn_scrape_opts so = {.metrics = metrics, .self_address = self_address};
  struct nn_scrape_sink sink = {.on_batch = on_batch, .ud = m};
  m->scrape = nn_scrape_create(loop, scrape, &so, &sink);
  if (!m->scrape || nn_scrape_start(m->scrape) < 0)
    goto fail;
  free(dests);
  return m;
fail:
  free(dests);
  nn_agent_metrics_close(m, NULL, NULL);
  return NULL;
}

int nn_agent_metrics_push_self(struct nn_agent_metrics *m, const char *text, size_t len)
{
  if (!m || !m->scrape || !m->ship)
    return 0;
  int rc = nn_scrape_push_self(m->scrape, text, len);
  if (rc > 0)
    nn_ship_flush(m->ship);
  return rc;
}

static void on_ship_closed(void *ud)
{
  struct nn_agent_metrics *m = ud;
  if (--m->closing > 0)
    return;
  nn_scrape_destroy(m->scrape);
  nn_ship_http_destroy(m->http);
  free(m->key);
  nn_buf_fini(&m->meta_key);
  void (*cb)(void *) = m->on_closed;
  void *cud = m->closed_ud;
  free(m);
  if (cb)
    cb(cud);
}

void nn_agent_metrics_close(struct nn_agent_metrics *m, void (*on_closed)(void *ud), void *ud)
{
  if (!m)
    return;
  m->on_closed = on_closed;
  m->closed_ud = ud;
  if (m->scrape)
    nn_scrape_stop(m->scrape);
  /* on_ship_closed runs once per ship, and once more here; the last frees m. */
  m->closing = 1 + (m->ship != NULL) + (m->meta_ship != NULL);
  if (m->ship)
    nn_ship_close(m->ship, on_ship_closed, m);
  if (m->meta_ship)
    nn_ship_close(m->meta_ship, on_ship_closed, m);
  on_ship_closed(m);
}
