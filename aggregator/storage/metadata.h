/* SPDX-License-Identifier: Apache-2.0 */
/* Metric metadata (type, help, unit per metric family, per tenant) from remote write's
 * WriteRequest.metadata, served by /api/v1/metadata. The latest entry per family wins. The
 * store is bounded and persisted in a small file in the data directory (format in
 * docs/format/metadata.md). Loop-thread only. */
#ifndef NN_AGGREGATOR_STORAGE_METADATA_H
#define NN_AGGREGATOR_STORAGE_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nn_buf;

/* Remote write's MetricType values. */
enum nn_metadata_type {
  NN_METADATA_UNKNOWN = 0,
  NN_METADATA_COUNTER = 1,
  NN_METADATA_GAUGE = 2,
  NN_METADATA_HISTOGRAM = 3,
  NN_METADATA_GAUGEHISTOGRAM = 4,
  NN_METADATA_SUMMARY = 5,
  NN_METADATA_INFO = 6,
  NN_METADATA_STATESET = 7,
};

/* Longest family name, help or unit kept; longer entries are dropped and counted. */
#define NN_METADATA_MAX_FIELD 4096
/* Bytes of strings the store holds at most, whatever max_entries says. */
#define NN_METADATA_MAX_BYTES (64u << 20)

struct nn_metadata_stats {
  size_t entries;
  uint64_t updates_total; /* entries that changed the store */
  uint64_t dropped_total; /* refused: store full, field too long, not UTF-8, no name */
};

struct nn_metadata;

/* A store of at most max_entries (tenant, family) entries, persisted at path (copied; NULL
 * keeps it in memory only). NULL on out-of-memory. */
struct nn_metadata *nn_metadata_create(const char *path, size_t max_entries);
void nn_metadata_destroy(struct nn_metadata *md);

/* Reads the file at the store's path; a missing file is an empty store. NN_ECORRUPT when
 * the file is damaged (the entries before the damage are kept). */
int nn_metadata_load(struct nn_metadata *md);
/* Adds the entries of a file image (data[len] must be writable; it is unescaped in place).
 * NN_ECORRUPT at the first damaged line, keeping the entries before it. */
int nn_metadata_parse(struct nn_metadata *md, char *data, size_t len);
/* Writes the file (a temporary file renamed over it) if anything changed since the last
 * save; md may be NULL. Not fsynced: senders re-send metadata every minute, so a lost
 * update heals. */
int nn_metadata_save(struct nn_metadata *md);

/* Stores one entry; tenant NULL or "" is the default tenant. Returns 1 if the store
 * changed, 0 if the entry was already there, NN_ELIMIT (counted as dropped) when the store
 * is full (entries or bytes) or a field is too long or not UTF-8, NN_EINVAL without a family name,
 * NN_ENOMEM. */
int nn_metadata_set(struct nn_metadata *md, const char *tenant, const char *family,
                    size_t family_len, int type, const char *help, size_t help_len,
                    const char *unit, size_t unit_len);

/* Stores the metadata entries (field 3) of a decompressed remote-write WriteRequest, and
 * skips everything else. Returns the number of entries seen, or NN_ECORRUPT on a malformed
 * message (entries before the damage are kept). */
int nn_metadata_add_write_request(struct nn_metadata *md, const char *tenant, const void *buf,
                                  size_t n);

/* Writes the "data" object of /api/v1/metadata: {"<family>":[{"type","help","unit"}],...}
 * sorted by family. tenant NULL merges every tenant's entries (distinct ones only);
 * metric NULL means every family; limit < 0 and limit_per_metric <= 0 mean no limit, as in
 * Prometheus. */
int nn_metadata_json(const struct nn_metadata *md, const char *tenant, const char *metric,
                     long limit, long limit_per_metric, struct nn_buf *out);

/* Zeros for md NULL. */
void nn_metadata_stats(const struct nn_metadata *md, struct nn_metadata_stats *st);
const char *nn_metadata_type_name(int type);

#endif
