/* SPDX-License-Identifier: Apache-2.0 */
/* Exposes the log store's counters on /metrics through the common registry: each series
 * reads one field of the live stats when the page is rendered, so appends pay nothing. */
#include <stddef.h>
#include <stdlib.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"
#include "common/metrics.h"

struct field {
  const char *name;
  const char *help;
  enum nn_metric_type type;
  size_t off;
};

#define F(n, t, f, h)                                                                              \
  {                                                                                                \
    "nines_logstore_" n, h, t, offsetof(struct nn_logstore_stats, f)                               \
  }
static const struct field fields[] = {
    F("streams", NN_METRIC_GAUGE, streams, "Live log streams, all tenants."),
    F("entries_appended_total", NN_METRIC_COUNTER, entries_appended, "Accepted log entries."),
    F("bytes_appended_total", NN_METRIC_COUNTER, bytes_appended, "Accepted log line bytes."),
    F("entries_rejected_total", NN_METRIC_COUNTER, entries_rejected,
      "Log entries refused (labels, size, age, stream limit)."),
    F("duplicates_dropped_total", NN_METRIC_COUNTER, duplicates_dropped,
      "Exact duplicate log entries dropped (same stream, timestamp and line)."),
    F("dedup_chunk_decodes_total", NN_METRIC_COUNTER, dedup_chunk_decodes,
      "Log chunks decoded to look for a duplicate of an entry older than the head."),
    F("dedup_cache_bytes", NN_METRIC_GAUGE, dedup_cache_bytes,
      "Bytes of decoded log chunks cached for duplicate checks (capped by dedup_cache_bytes)."),
    F("dedup_checks_skipped_total", NN_METRIC_COUNTER, dedup_checks_skipped,
      "Log entries kept without a duplicate check: their push exceeded its chunk decode budget."),
    F("idempotent_replays_total", NN_METRIC_COUNTER, idempotent_replays,
      "Push batches acknowledged again by idempotency key."),
    F("chunks_cut_total", NN_METRIC_COUNTER, chunks_cut, "Head blocks cut into chunks."),
    F("chunks", NN_METRIC_GAUGE, chunks, "Live log chunks."),
    F("chunk_bytes", NN_METRIC_GAUGE, chunk_bytes, "Compressed bytes of live log chunks."),
    F("chunk_raw_bytes", NN_METRIC_GAUGE, chunk_raw_bytes,
      "Uncompressed bytes held by live log chunks."),
    F("head_bytes", NN_METRIC_GAUGE, head_bytes, "Raw bytes in log head blocks."),
    F("wal_bytes_written_total", NN_METRIC_COUNTER, wal_bytes_written, "Bytes written to the WAL."),
    F("wal_fsyncs_total", NN_METRIC_COUNTER, wal_fsyncs,
      "Log WAL fsyncs (group commits: pushes answered together share one)."),
    F("wal_corruptions_total", NN_METRIC_COUNTER, wal_corruptions,
      "Torn or corrupt log WAL tails truncated on open."),
    F("chunk_file_corruptions_total", NN_METRIC_COUNTER, chunk_file_corruptions,
      "Corrupt chunk records truncated on open."),
    F("retention_deleted_chunks_total", NN_METRIC_COUNTER, retention_deleted_chunks,
      "Log chunks deleted by retention."),
    F("wal_segments_deleted_total", NN_METRIC_COUNTER, wal_segments_deleted,
      "Log WAL segments deleted after their entries reached chunk files."),
};
#undef F

struct ref {
  const struct nn_logstore *s;
  size_t off;
};

static double read_field(void *ud)
{
  const struct ref *r = ud;
  uint64_t v;
  memcpy(&v, (const char *)&r->s->st + r->off, sizeof(v));
  return (double)v;
}

int nn_logstore_register_metrics(struct nn_logstore *s, struct nn_metrics *m)
{
  enum { N = sizeof(fields) / sizeof(fields[0]) };
  /* Owned by the store (freed in close), since the registry keeps pointers to them. */
  if (!s->metric_refs && !(s->metric_refs = calloc(N, sizeof(struct ref))))
    return NN_ENOMEM;
  struct ref *refs = s->metric_refs;
  for (size_t i = 0; i < N; i++) {
    refs[i] = (struct ref){s, fields[i].off};
    if (!nn_metrics_func(m, fields[i].type, fields[i].name, fields[i].help, NULL, read_field,
                         &refs[i]))
      return NN_ENOMEM;
  }
  return 0;
}
