/* SPDX-License-Identifier: Apache-2.0 */
/* Scrape -> remote write. Each sample becomes one ship record: the key is the series'
 * encoded Label fields as the scraper caches them (so the ship groups samples per series,
 * as remote write wants), the piece an encoded Sample. Stale markers go through unchanged,
 * bit for bit. */
#include "agent/app/metrics.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "agent/app/internal.h"
#include "agent/ship/ship.h"
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

struct nn_agent_metrics {
  struct nn_scrape *scrape;
  struct nn_ship *ship;
  struct nn_ship_http *http;
  struct nn_metric *dropped;
  void (*on_closed)(void *ud);
  void *closed_ud;
};

static void on_batch(void *ud, const struct nn_scrape_batch *b)
{
  struct nn_agent_metrics *m = ud;
  uint8_t piece[NN_WIRE_RW_SAMPLE_MAX];
  for (size_t i = 0; i < b->nsamples; i++) {
    const struct nn_scrape_sample *s = &b->samples[i];
    /* The scraper keeps each series' labels encoded: only the Sample is new per sample. */
    size_t n = nn_wire_rw_sample_put(piece, s->v, s->t_ms);
    int rc = nn_ship_add(m->ship, s->rw_labels, s->rw_labels_len, piece, n, NULL);
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
                                                 struct nn_metrics *metrics)
{
  struct nn_ship_dest_config *dests = NULL;
  size_t ndests;
  char err[512];
  struct nn_agent_metrics *m = calloc(1, sizeof(*m));
  if (!m)
    return NULL;
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
  struct nn_scrape_opts so = {.metrics = metrics};
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

static void on_ship_closed(void *ud)
{
  struct nn_agent_metrics *m = ud;
  nn_scrape_destroy(m->scrape);
  nn_ship_http_destroy(m->http);
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
  if (m->ship)
    nn_ship_close(m->ship, on_ship_closed, m);
  else
    on_ship_closed(m);
}
