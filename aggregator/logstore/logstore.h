/* SPDX-License-Identifier: Apache-2.0 */
/* The aggregator's log store: Loki push streams keyed by label set, per-stream head blocks
 * cut into zstd chunks, a CRC32C WAL with group commit and idempotency keys, retention by
 * time and size, and LogQL stream-selector queries answered in Loki's JSON shape.
 * Every function must be called from one thread (the loop thread); only fsync runs on a
 * worker. The on-disk formats are specified in docs/format/logstore.md. */
#ifndef NN_AGGREGATOR_LOGSTORE_LOGSTORE_H
#define NN_AGGREGATOR_LOGSTORE_LOGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/storage/storage.h"
#include "common/labels.h"
#include "common/pool.h"

struct nn_buf;
struct nn_logstore;
struct nn_metrics;
struct uv_loop_s;

/* The tenant used when a push carries none (Loki's single-tenant "fake" org id). */
#define NN_LOGSTORE_DEFAULT_TENANT "fake"

struct nn_logstore_config {
  const char *data_dir;          /* required; files live under <data_dir>/logs/ */
  struct uv_loop_s *loop;        /* NULL: append fsyncs inline and calls done_cb before returning */
  size_t max_line_bytes;         /* 256 KiB; longer lines are rejected */
  size_t max_streams_per_tenant; /* 10000 */
  size_t chunk_target_bytes;     /* 256 KiB of raw lines+metadata cut a head into a chunk */
  int64_t max_chunk_age_ns;      /* 2h: a head older than this is cut; half of it is the
                                    out-of-order acceptance window (Loki's default) */
  int64_t chunk_idle_ns;         /* 30m without appends cuts a head */
  size_t max_head_bytes;         /* 64 MiB over all heads; above it the largest heads are cut */
  int64_t retention_ns;          /* 7d; 0 = keep forever */
  uint64_t retention_bytes;      /* 10 GiB of compressed chunks; 0 = unlimited */
  int64_t chunk_period_ns;       /* 24h: one chunk file per period of chunk start time */
  size_t wal_segment_bytes;      /* 16 MiB */
  int64_t sync_interval_ns;      /* 100 ms: group-commit interval */
  size_t sync_bytes;             /* 1 MiB: unsynced WAL bytes that trigger an early fsync */
  size_t idempotency_keys;       /* 4096 remembered keys (LRU) */
  size_t query_max_bytes;        /* 64 MiB cap on one query's result memory */
  size_t dedup_cache_bytes;      /* 16 MiB of chunks decoded for duplicate checks (LRU, at
                                    least the last one is kept); an entry older than a stream's
                                    newest chunk is looked up in the chunks covering its ts */
  int zstd_level;                /* 3 */
};

/* Fills c with the defaults above (data_dir and loop are NULL). */
void nn_logstore_config_defaults(struct nn_logstore_config *c);

/* Opens (creating directories as needed) the store, loads chunk files and replays the WAL.
 * A torn or corrupt WAL tail is truncated and counted, never fatal. The config is copied
 * (data_dir too). Returns 0 and *out, or a negative code with a message in err. */
int nn_logstore_open(const struct nn_logstore_config *c, struct nn_logstore **out, char *err,
                     size_t errlen);
/* Stops the fsync worker, syncs the WAL, fires pending done callbacks and frees the store.
 * With a loop, the loop must run once more afterwards so libuv can free the async handle.
 * NULL is a no-op. */
void nn_logstore_close(struct nn_logstore *s);

struct nn_logstore_entry {
  int64_t ts_ns;
  const char *line;
  size_t len;
  const struct nn_label *meta; /* structured metadata pairs, may be NULL */
  size_t nmeta;
};

struct nn_logstore_stream_in {
  const char *labels; /* Loki text form {a="b"}, parsed with nn_labels_parse ... */
  size_t labels_len;
  const struct nn_label *lset; /* ... unless this canonical set is given instead */
  size_t nlset;
  const struct nn_logstore_entry *entries;
  size_t n;
};

struct nn_logstore_batch {
  const char *tenant;   /* NULL or "" means NN_LOGSTORE_DEFAULT_TENANT */
  const char *idem_key; /* optional idempotency key (at most 128 bytes), NULL for none */
  const struct nn_logstore_stream_in *streams;
  size_t n;
};

struct nn_logstore_append_result {
  size_t accepted;
  size_t rejected;   /* entries refused: bad labels, too long, too far behind, stream limit */
  size_t duplicates; /* exact duplicates (same stream, ts and line) dropped, not errors */
  bool known_key;    /* the idempotency key was seen before: nothing stored again */
  int first_error;   /* NN_E* code of the first rejection, 0 if none */
  char error[256];   /* its message, naming the stream */
};

/* status is 0 once the batch's WAL record is on stable storage, or a negative code. */
typedef void (*nn_logstore_done_cb)(void *ud, int status);

/* Appends a push batch. Accepted entries are visible to queries at once; cb (if not NULL)
 * fires exactly once, on the loop thread, after they are durable (group commit). Entries
 * may be rejected one by one (see res); cb still fires for the accepted rest. Returns 0,
 * or a negative code (NN_EINVAL bad tenant/key, NN_EIO after a WAL failure, NN_ENOMEM) in
 * which case cb never fires. */
int nn_logstore_append_batch(struct nn_logstore *s, const struct nn_logstore_batch *b,
                             struct nn_logstore_append_result *res, nn_logstore_done_cb cb,
                             void *ud);
/* Blocks until everything appended so far is fsynced, then fires due callbacks. For tests
 * and shutdown; the loop thread should rely on group commit instead. */
int nn_logstore_sync(struct nn_logstore *s);
/* Periodic housekeeping (call about every few seconds): cuts aged and idle heads, applies
 * retention, deletes WAL segments whose entries are all in chunk files. now_ns is the wall
 * clock. */
int nn_logstore_tick(struct nn_logstore *s, int64_t now_ns);
/* Cuts every non-empty head into a chunk now (tests, shutdown). */
int nn_logstore_flush(struct nn_logstore *s);

enum nn_logstore_direction { NN_LOGSTORE_FORWARD, NN_LOGSTORE_BACKWARD };

struct nn_logstore_qentry {
  int64_t ts_ns;
  const char *line;
  size_t len;
  const struct nn_label *meta;
  size_t nmeta;
};

struct nn_logstore_qstream {
  const struct nn_label *labels; /* the stream's label set (tenant not included) */
  size_t nlabels;
  struct nn_logstore_qentry *entries; /* sorted by the query's direction */
  size_t n;
};

struct nn_logstore_query_stats {
  uint64_t chunks_scanned;
  uint64_t lines_scanned;
  uint64_t bytes_scanned;
  uint64_t entries_returned;
  double exec_seconds;
};

/* A query result. All memory is in pool; nn_logstore_result_fini frees it. */
struct nn_logstore_result {
  struct nn_logstore_qstream *streams; /* sorted by label set */
  size_t n;
  struct nn_logstore_query_stats stats;
  struct nn_pool pool;
};

/* Runs a LogQL log query: a stream selector {a="b", c=~"x.*"} and an optional pipeline of
 * line filters (|= "s", != "s", |~ "re", !~ "re"). Entries with start_ns <= ts < end_ns are
 * returned, at most limit in all (0 = no limit): the oldest for forward, the newest for
 * backward, as Loki picks them across streams. NN_EINVAL with a positioned message in err
 * for a bad query, NN_ELIMIT when the result exceeds query_max_bytes. out is always
 * initialised, so nn_logstore_result_fini may be called on every path. */
int nn_logstore_query(struct nn_logstore *s, const char *tenant, const char *query,
                      int64_t start_ns, int64_t end_ns, enum nn_logstore_direction dir,
                      size_t limit, struct nn_logstore_result *out, char *err, size_t errlen);
void nn_logstore_result_fini(struct nn_logstore_result *r);

/* Adds Loki's categorized third value element {"structuredMetadata":{...}} to entries that
 * carry metadata. */
#define NN_LOGSTORE_JSON_METADATA 1u
/* Writes Loki's query_range response body: {"status":"success","data":{"resultType":
 * "streams","result":[...],"stats":{...}}}. NN_ETOOBIG when out's cap is reached. */
int nn_logstore_result_write_json(const struct nn_logstore_result *r, unsigned flags,
                                  struct nn_buf *out);

/* ---- LogQL metric queries (metric.c) ----
 * The subset: count_over_time, rate, bytes_over_time, bytes_rate, absent_over_time over a
 * stream selector with line filters, a range [d] and optional offset; sum, count, min, max,
 * avg, topk, bottomk with by/without; arithmetic (+ - * / % ^) between such a vector and a
 * number. A point at t covers entries in (t - offset - range, t - offset], as in Loki. */
#define NN_LOGSTORE_MAX_POINTS 11000 /* points per series of one range query (Loki's) */
#define NN_LOGSTORE_MAX_SERIES 500   /* series in one answer (Loki's max_query_series) */

struct nn_logstore_mseries {
  const struct nn_label *labels;
  size_t nlabels;
  int64_t *ts_ns; /* the steps where the series has a value, ascending */
  double *v;
  size_t n;
};

/* A metric query's answer: a matrix (range query) or a vector (instant). Memory in pool. */
struct nn_logstore_mresult {
  bool vector;
  struct nn_logstore_mseries *series; /* sorted by label set */
  size_t n;
  struct nn_logstore_query_stats stats;
  struct nn_pool pool;
};

/* Whether query, after blanks and # comments, starts with '{': a log query (streams), not a
 * metric query. */
bool nn_logstore_is_log_query(const char *query);
/* Runs a metric query at the steps start, start+step, ... <= end (instant: end ignored, one
 * step at start, vector result). NN_EINVAL with a positioned message for a bad or
 * unsupported query, NN_ELIMIT (with a message) past NN_LOGSTORE_MAX_POINTS,
 * NN_LOGSTORE_MAX_SERIES or query_max_bytes. out is always initialised: call
 * nn_logstore_mresult_fini on every path. */
int nn_logstore_metric_query(struct nn_logstore *s, const char *tenant, const char *query,
                             int64_t start_ns, int64_t end_ns, int64_t step_ns, bool instant,
                             struct nn_logstore_mresult *out, char *err, size_t errlen);
void nn_logstore_mresult_fini(struct nn_logstore_mresult *r);
/* Loki's answer: {"status":"success","data":{"resultType":"matrix"|"vector","result":[...],
 * "stats":{...}}}; times in Unix seconds, values as strings. */
int nn_logstore_mresult_write_json(const struct nn_logstore_mresult *r, struct nn_buf *out);

/* Sorted unique label names (or values of label name) of the tenant's streams that have
 * data in [start_ns, end_ns) and, when selector is not NULL, match it. */
int nn_logstore_label_names(struct nn_logstore *s, const char *tenant, const char *selector,
                            int64_t start_ns, int64_t end_ns, struct nn_strlist *out, char *err,
                            size_t errlen);
int nn_logstore_label_values(struct nn_logstore *s, const char *tenant, const char *name,
                             const char *selector, int64_t start_ns, int64_t end_ns,
                             struct nn_strlist *out, char *err, size_t errlen);
/* Writes {"status":"success","data":["a","b"]} as /loki/api/v1/labels answers. */
int nn_logstore_strlist_write_json(const struct nn_strlist *l, struct nn_buf *out);

/* Loki's /loki/api/v1/series: the label sets (streams with no entries, sorted, unique) of
 * the tenant's streams that match at least one of the n stream selectors and hold an entry
 * in [start_ns, end_ns), judged exactly in head blocks and by time bounds for cut chunks, as
 * Loki's index does. A selector that does not parse or has line filters is NN_EINVAL with
 * a message naming it in err, n == 0 too; NN_ELIMIT past query_max_bytes. out is always
 * initialised: call nn_logstore_result_fini on every path. */
int nn_logstore_series(struct nn_logstore *s, const char *tenant, const char *const *selectors,
                       size_t n, int64_t start_ns, int64_t end_ns, struct nn_logstore_result *out,
                       char *err, size_t errlen);
/* Writes {"status":"success","data":[{"a":"b"},...]} from a series result. */
int nn_logstore_series_write_json(const struct nn_logstore_result *r, struct nn_buf *out);

/* Loki's /loki/api/v1/index/stats estimate for a query's streams over [start_ns, end_ns):
 * chunks overlapping the range count whole (entries, raw bytes), the head counts as one
 * chunk with its entries in range exactly. Line filters in query are ignored. */
struct nn_logstore_index_stats {
  uint64_t streams, chunks, entries, bytes;
};
int nn_logstore_index_stats(struct nn_logstore *s, const char *tenant, const char *query,
                            int64_t start_ns, int64_t end_ns, struct nn_logstore_index_stats *out,
                            char *err, size_t errlen);

struct nn_logstore_stats {
  uint64_t streams;          /* live streams, all tenants */
  uint64_t entries_appended; /* accepted entries */
  uint64_t bytes_appended;   /* accepted line bytes */
  uint64_t entries_rejected;
  uint64_t duplicates_dropped;   /* in the head or in a chunk */
  uint64_t dedup_chunk_decodes;  /* chunks decoded to look for a duplicate */
  uint64_t dedup_cache_bytes;    /* decoded chunk bytes kept for duplicate checks */
  uint64_t dedup_checks_skipped; /* entries kept unchecked: their batch's decode budget ran out */
  uint64_t idempotent_replays;   /* batches acknowledged again by idempotency key */
  uint64_t chunks_cut;
  uint64_t chunks;          /* live chunks */
  uint64_t chunk_bytes;     /* live compressed chunk bytes */
  uint64_t chunk_raw_bytes; /* live raw bytes those chunks hold */
  uint64_t head_bytes;      /* raw bytes in head blocks */
  uint64_t wal_bytes_written;
  uint64_t wal_fsyncs;             /* fsyncs of the current WAL segment (group commits) */
  uint64_t wal_corruptions;        /* torn or corrupt WAL tails truncated on open */
  uint64_t chunk_file_corruptions; /* corrupt chunk records skipped on open */
  uint64_t retention_deleted_chunks;
  uint64_t wal_segments_deleted;
};
void nn_logstore_get_stats(const struct nn_logstore *s, struct nn_logstore_stats *out);
/* Registers the stats above as nines_logstore_* series read at render time. The store must
 * outlive the registry's rendering (destroy the registry first or together). */
int nn_logstore_register_metrics(struct nn_logstore *s, struct nn_metrics *m);

#endif
