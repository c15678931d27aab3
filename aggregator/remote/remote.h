/* SPDX-License-Identifier: Apache-2.0 */
/* Remote write out: every destination tails the aggregator's WAL from its own saved
 * position, filters and rewrites series with its write_relabel_configs, and sends the
 * samples through its own agent/ship queue (batches, retries, lz4 disk spool, /metrics).
 * The position is saved only once the receiver acknowledged (or the spool durably holds)
 * everything before it, and the WAL keeps the segments a destination still needs, so a
 * sample goes out once across receiver outages and restarts. docs/remote_write.md. */
#ifndef NN_AGGREGATOR_REMOTE_REMOTE_H
#define NN_AGGREGATOR_REMOTE_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/relabel/relabel.h"
#include "common/compress.h"
#include "common/config.h"

struct nn_tsdb;
struct nn_metrics;

/* One remote_write entry, bound with nn_remote_dest_options. */
struct nn_remote_dest_config {
  char *name;
  char *url;
  enum nn_codec codec;
  struct nn_relabel_config write_relabel_configs;
  char *bearer_token;
  struct nn_cfg_strmap headers;
  int64_t timeout_ms;
  uint64_t batch_size;
  int64_t batch_wait_ms;
  int64_t max_inflight;
  uint64_t queue_max;
  uint64_t spool_max;
  int64_t min_backoff_ms;
  int64_t max_backoff_ms;
  uint64_t max_wal_backlog;
};

/* The option table of one remote_write list entry (for an NN_CFG_LIST). */
extern const struct nn_cfg_option nn_remote_dest_options[];

/* Checks what the table cannot: destination names are unique. NN_ECONFIG with the
 * problem, field path first, in err. */
int nn_remote_config_check(const struct nn_cfg_list *dests, char *err, size_t errlen);

/* The lowest WAL segment a configured destination still needs, from the positions saved
 * under <data_dir>/remote (for nn_tsdb_options.wal_retain_from, before the store opens).
 * *any is false when no destination has a saved position. */
void nn_remote_wal_floor(const char *data_dir, const struct nn_cfg_list *dests, bool *any,
                         uint32_t *floor);

struct nn_remote_opts {
  uv_loop_t *loop;
  const char *data_dir;            /* the store's: the WAL is <data_dir>/wal */
  struct nn_tsdb *db;              /* for the WAL retention floor; must outlive close */
  const struct nn_cfg_list *dests; /* of struct nn_remote_dest_config; borrowed */
  struct nn_metrics *metrics;      /* may be NULL; must outlive the object */
  /* Added to every series that lacks the label (Prometheus's global external_labels);
   * may be NULL; borrowed. */
  const struct nn_cfg_strmap *external_labels;
  int64_t poll_ms; /* how often the WAL is polled for new records; 100 */
};

struct nn_remote;

/* Opens every destination (saved position, spool, series from the WAL checkpoint) and
 * starts tailing. Blocks while reading checkpoint series. NULL with a logged reason. */
struct nn_remote *nn_remote_create(const struct nn_remote_opts *o);
/* Stops reading, closes every ship (requests in flight get up to 5 s; the rest goes to
 * the spool and counts as delivered), saves the positions (fsynced) and frees the object;
 * on_closed then runs from the loop. NULL ok. */
void nn_remote_close(struct nn_remote *r, void (*on_closed)(void *ud), void *ud);

/* A destination's progress, for tests and /metrics. */
struct nn_remote_dest_stats {
  uint64_t samples_read;     /* samples past the saved start position */
  uint64_t samples_sent;     /* handed to the ship */
  uint64_t samples_filtered; /* dropped by write_relabel_configs */
  uint64_t samples_unknown;  /* their series record was never seen */
  uint64_t samples_too_big;  /* refused by the ship (larger than a batch) */
  uint64_t series;           /* series known */
  uint64_t series_retired;   /* forgotten after a WAL checkpoint no longer had them */
  uint32_t read_segment;     /* where the reader is */
  uint32_t saved_segment;    /* saved position */
  uint64_t saved_offset;     /* record offset of the saved position */
  uint64_t position_writes;
  uint64_t segments_skipped;
  bool cut_loose;
  bool caught_up; /* read everything written so far and every sample is acknowledged */
};
int nn_remote_dest_stats(const struct nn_remote *r, size_t i, struct nn_remote_dest_stats *out);

#endif
