/* SPDX-License-Identifier: Apache-2.0 */
/* The SLO summary page a VP reads in ten seconds: "are we OK?" on top, then projects,
 * services and SLOs with budget, burn, time to exhaustion, a 30-day burn-down chart, a daily
 * SLI sparkline and a four-month calendar; top burners; filters; CSV and Markdown exports.
 * Server-rendered HTML and inline SVG: no JavaScript, no external assets. The page reads
 * the same JSON that GET /api/v1/slos serves, through a function it is handed, and derives
 * each SLO's page incidents over its window from the ALERTS series through a querier. */
#ifndef NN_AGGREGATOR_PAGE_PAGE_H
#define NN_AGGREGATOR_PAGE_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/storage/storage.h"

struct nn_buf;
struct nn_http_server;

/* Writes the /api/v1/slos response body ({"status":"success","data":{"slos":[...]}}). */
typedef int (*nn_page_json_fn)(void *ud, struct nn_buf *out);

struct nn_page_opts {
  nn_page_json_fn slos; /* may be NULL: the page then says that no SLOs are configured */
  void *ud;
  const char *title;   /* "Service level objectives" when NULL */
  int refresh_seconds; /* meta refresh; 0 = 60 */
  /* The series store, for incident history (ALERTS); select NULL: current alerts only. */
  struct nn_querier querier;
};

/* One page incident: a run of ALERTS{alertstate="firing",sloth_severity="page"} samples
 * of one SLO without a gap longer than NN_PAGE_INCIDENT_GAP_MS. */
struct nn_page_incident {
  int64_t start_ms, end_ms; /* first and last firing sample */
  bool ongoing;             /* the last sample is within the gap of now */
};

/* Samples further apart than this (Prometheus's 5 m lookback) end an incident. */
#define NN_PAGE_INCIDENT_GAP_MS (5 * 60 * 1000)

/* Finds the page incidents of SLO slo_id (its sloth_id label) with samples in [from_ms,
 * now_ms], oldest first, at most max (the most recent ones). *n gets how many were found in
 * all, which may exceed max. Returns 0 or the querier's error. */
int nn_page_incidents(const struct nn_querier *q, const char *slo_id, int64_t from_ms,
                      int64_t now_ms, struct nn_page_incident *out, size_t max, size_t *n);

enum nn_page_format { NN_PAGE_HTML, NN_PAGE_CSV, NN_PAGE_MARKDOWN };

/* Filters from the query string: team=, project=, service=, status=, label=name:value. */
struct nn_page_filter {
  const char *team, *project, *service, *status, *label;
};

/* Renders the page (or an export) from a /api/v1/slos body. NN_EINVAL when json does not
 * have that shape; NN_ETOOBIG past out's cap. now_s is the wall clock for the header. */
int nn_page_render(const char *json, size_t len, enum nn_page_format fmt,
                   const struct nn_page_filter *f, const struct nn_page_opts *o, double now_s,
                   struct nn_buf *out);

struct nn_page;
/* Registers GET /, /slo.csv and /slo.md on srv. opts is copied. NULL on OOM. */
struct nn_page *nn_page_create(const struct nn_page_opts *o, struct nn_http_server *srv);
void nn_page_destroy(struct nn_page *p);

#endif
