/* SPDX-License-Identifier: Apache-2.0 */
/* The ingest handlers: Prometheus remote write 1.0 (POST /api/v1/write) and Loki push
 * (POST /loki/api/v1/push). They authenticate, enforce limits, decode, append to the
 * stores and answer only once the data is in the WAL, with Prometheus's and Loki's status
 * codes: 204 stored, 400 never retry, 413 too large, 415 unknown encoding, 429 slow down,
 * 5xx our own failure. */
#ifndef NN_AGGREGATOR_INGEST_INGEST_H
#define NN_AGGREGATOR_INGEST_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

struct nn_http_server;
struct nn_logstore;
struct nn_metadata;
struct nn_metrics;
struct nn_tsdb;

/* The request header that carries a batch's idempotency key (sent by nines-agent). */
#define NN_INGEST_IDEMPOTENCY_HEADER "X-Nines-Batch-Id"

struct nn_ingest_config {
  uint64_t max_decompressed_size;
  int64_t max_series_per_request;
  int64_t max_labels_per_series;
  int64_t max_label_name_length;
  int64_t max_label_value_length;
  int64_t max_active_series;
  int64_t retry_after_seconds;
  char *bearer_token; /* secret: bearer_token_file or ${ENV} */
  bool multi_tenancy;
};

extern const struct nn_cfg_option nn_ingest_config_options[];

struct nn_ingest;

/* Registers the ingest routes on srv. The stores and metrics are borrowed; logs may be
 * NULL (then pushes get 503). NULL on out-of-memory. */
struct nn_ingest *nn_ingest_create(const struct nn_ingest_config *cfg, struct nn_tsdb *db,
                                   struct nn_logstore *logs, struct nn_metrics *metrics,
                                   struct nn_http_server *srv);
void nn_ingest_destroy(struct nn_ingest *in);
/* Remote-write metadata goes to md (borrowed; NULL drops it). */
void nn_ingest_set_metadata(struct nn_ingest *in, struct nn_metadata *md);

#endif
