/* SPDX-License-Identifier: Apache-2.0 */
/* The aggregator's embedded time-series store: an in-memory head of series (interned
 * labels, a postings index, Gorilla XOR chunks) made durable by a write-ahead log with
 * group commit. Threading: every function here is called from one thread (the loop);
 * only the WAL writer thread inside the store runs write(2) and fdatasync(2). */
#ifndef NN_AGGREGATOR_TSDB_TSDB_H
#define NN_AGGREGATOR_TSDB_TSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/storage/storage.h"
#include "common/error.h"
#include "common/labels.h"

struct uv_loop_s;
struct nn_tsdb;
struct nn_tsdb_appender;

/* "out of bounds": the sample is older than the head accepts (Prometheus's
 * ErrOutOfBounds). common/error.h has no such code yet, so it is an alias of NN_ELIMIT. */
#define NN_TSDB_EOUTOFBOUNDS NN_ELIMIT

struct nn_tsdb_options {
  /* Data directory; the WAL lives in <dir>/wal. NULL keeps everything in memory only. */
  const char *dir;
  /* Event loop that runs durability callbacks. NULL: they run inside nn_tsdb_sync and
   * nn_tsdb_close instead. */
  struct uv_loop_s *loop;
  uint64_t wal_segment_bytes;     /* a segment is closed past this size; default 128 MiB */
  uint32_t wal_flush_interval_ms; /* longest group-commit wait; default 100 */
  size_t wal_flush_bytes;         /* or flush once this much is pending; default 1 MiB */
  size_t wal_max_pending_bytes;   /* commits fail with NN_EAGAIN past this; default 64 MiB */
  bool wal_fsync;                 /* fdatasync after each write; default true */
  /* Samples older than (newest sample in the head - this) are out of bounds. Default 1 h. */
  int64_t out_of_bounds_window_ms;
  size_t appender_max_samples; /* cap per appender (NN_ETOOBIG beyond); default 4,000,000 */
  uint16_t chunk_samples;      /* samples per chunk before it is cut; default 120 */
  /* Blocks (with dir set): once the head spans 1.5x this, its oldest aligned range of
   * this length is written to <dir>/blocks and dropped from the head. Default 2 h. */
  int64_t block_range_ms;
  int64_t retention_ms;     /* blocks ending before now - this are deleted; default 15 d */
  uint64_t retention_bytes; /* oldest blocks deleted while blocks exceed this; 0: no cap */
  /* WAL readers (remote write): with wal_retain, segments numbered >= wal_retain_from
   * are kept at open and by checkpoints until nn_tsdb_wal_retain moves the floor. */
  bool wal_retain;
  uint32_t wal_retain_from;
};

/* Fills o with the defaults above (dir and loop NULL). */
void nn_tsdb_options_default(struct nn_tsdb_options *o);

/* Opens the store: loads the blocks in <dir>/blocks (a corrupt block is logged, counted
 * and skipped), creates <dir>/wal if needed and replays it into the head, dropping what
 * the blocks already hold. Damage in the WAL is truncated, logged and counted, never
 * fatal. Starts the WAL writer thread. Blocks for the replay; call it before the loop runs. */
int nn_tsdb_open(const struct nn_tsdb_options *o, struct nn_tsdb **out);
/* Flushes and fsyncs the WAL, runs outstanding durability callbacks, frees everything.
 * With a loop, the loop must run once more to finish closing the wakeup handle. NULL ok. */
void nn_tsdb_close(struct nn_tsdb *db);

/* An appender collects samples that become visible and are logged together at commit.
 * At most one appender per store may hold uncommitted samples at a time. NULL on OOM. */
struct nn_tsdb_appender *nn_tsdb_appender_create(struct nn_tsdb *db);
/* Rolls back anything uncommitted and frees the appender. NULL ok. */
void nn_tsdb_appender_destroy(struct nn_tsdb_appender *a);
/* Adds one sample for the series with canonical labels ls (nn_labels_canonicalize; a new
 * label set must pass nn_labels_validate, else NN_EINVAL), creating the series if
 * needed; *ref (may be NULL) receives its id. Errors, each leaving the
 * appender usable: NN_EOUTOFORDER (t older than the series' newest), NN_EDUPLICATE (same
 * t, other value), NN_TSDB_EOUTOFBOUNDS (too old for the head), NN_EAGAIN (another
 * appender holds uncommitted samples), NN_ETOOBIG, NN_EINVAL, NN_ENOMEM. Re-sending the
 * newest sample of a series with identical value bits returns 0 and stores nothing. */
int nn_tsdb_appender_append(struct nn_tsdb_appender *a, const struct nn_label *ls, size_t n,
                            int64_t t, double v, uint64_t *ref);
/* The store's hash of a canonical label set (the value of nn_labels_hash). */
uint64_t nn_tsdb_labels_hash(const struct nn_label *ls, size_t n);
/* As append, with h = nn_tsdb_labels_hash(ls, n) computed by the caller. */
int nn_tsdb_appender_append_hashed(struct nn_tsdb_appender *a, const struct nn_label *ls, size_t n,
                                   uint64_t h, int64_t t, double v, uint64_t *ref);
/* A hint for batches: starts loading into the cache what appending to the series with
 * labels hash h will read, so that lookups do not each wait for memory. Call it with
 * stage 0 some series ahead of the append, then with stage 1 a few series ahead. */
void nn_tsdb_prefetch(const struct nn_tsdb *db, uint64_t h, int stage);
/* As nn_tsdb_prefetch, for a later nn_tsdb_appender_append_ref(ref): stage 0 loads its
 * table slot, stage 1 (once that arrived) the series. */
void nn_tsdb_prefetch_ref(const struct nn_tsdb *db, uint64_t ref, int stage);
/* As append, for a ref returned earlier; NN_ENOTFOUND if the series is gone. */
int nn_tsdb_appender_append_ref(struct nn_tsdb_appender *a, uint64_t ref, int64_t t, double v);
/* A head series' address (opaque), for a caller that appends to the same series over and
 * over (the SLO engine's outputs): appends skip the lookup by id, and the series can be
 * prefetched in one step. Valid while nn_tsdb_series_epoch returns what it returned when
 * the address was taken: it changes whenever series leave the head (head GC), the only
 * time a series' memory is freed before close. */
struct nn__tsdb_series;
uint64_t nn_tsdb_series_epoch(const struct nn_tsdb *db);
/* The series with id ref, or NULL. */
struct nn__tsdb_series *nn_tsdb_series_find(const struct nn_tsdb *db, uint64_t ref);
/* As append_ref, for an address from nn_tsdb_series_find still valid. */
int nn_tsdb_appender_append_series(struct nn_tsdb_appender *a, struct nn__tsdb_series *s, int64_t t,
                                   double v);
/* As nn_tsdb_prefetch, for a later nn_tsdb_appender_append_series(s). */
void nn_tsdb_prefetch_series(const struct nn__tsdb_series *s);
/* Series in the head: a cheap read for per-series limits (nn_tsdb_stats gathers much more). */
size_t nn_tsdb_series_count(const struct nn_tsdb *db);
/* Logs the samples to the WAL buffer and makes them visible to queries. On failure
 * (NN_EAGAIN when the WAL is backed up, NN_ETOOBIG, NN_EIO after a WAL failure) the
 * appender is rolled back. Either way it is empty and reusable afterwards. */
int nn_tsdb_appender_commit(struct nn_tsdb_appender *a);
/* Drops the uncommitted samples. Series it created stay (empty) until truncated. */
void nn_tsdb_appender_rollback(struct nn_tsdb_appender *a);
/* Number of uncommitted samples. */
size_t nn_tsdb_appender_pending(const struct nn_tsdb_appender *a);

/* A wait for durability, in caller storage (e.g. inside an HTTP request). */
struct nn_tsdb_durable_req;
typedef void (*nn_tsdb_durable_cb)(struct nn_tsdb_durable_req *req, int status);
struct nn_tsdb_durable_req {
  void *data; /* for the caller */
  /* private */
  uint64_t seq;
  nn_tsdb_durable_cb cb;
  struct nn_tsdb_durable_req *next;
};

/* Calls cb(req, 0) once everything committed so far is on stable storage, or cb(req, <0)
 * if writing it failed. Group commit: with a loop, the write starts once the loop has run
 * the callbacks that were ready (so commits made together share one fsync), and at most
 * wal_flush_interval_ms later when the loop stays busy.
 * cb never runs inside this call; it runs on the loop thread, or, without a loop, in
 * nn_tsdb_sync/nn_tsdb_close. req must stay valid until cb runs. */
void nn_tsdb_wal_wait(struct nn_tsdb *db, struct nn_tsdb_durable_req *req, nn_tsdb_durable_cb cb);
/* Starts writing what is pending now instead of at the end of the group-commit interval;
 * returns at once (waiters hear back as usual). For latency-sensitive callers. */
void nn_tsdb_wal_flush(struct nn_tsdb *db);
/* Writes and fsyncs everything committed so far, blocking the caller, then runs the
 * durability callbacks that are due. For tests, shutdown and tools. */
int nn_tsdb_sync(struct nn_tsdb *db);

/* Drops chunks whose samples are all older than mint, and series left without samples
 * (and without uncommitted ones). Returns the number of series removed. */
size_t nn_tsdb_head_truncate(struct nn_tsdb *db, int64_t mint);

/* Writes the head as a checkpoint into the WAL directory and then deletes the WAL
 * segments it replaces, so replay time and disk use follow the head, not uptime. Meant
 * to follow nn_tsdb_head_truncate. The snapshot is encoded on the calling thread (a
 * copy of the head's chunks, tens of milliseconds for 100k series); the writer thread
 * writes, syncs and renames it. NN_EUNSUPPORTED without a WAL. */
int nn_tsdb_checkpoint(struct nn_tsdb *db);

/* Periodic upkeep, from the loop thread (every few seconds): cuts the head's oldest
 * block range into a block when the head spans more than 1.5 block ranges (the block is
 * written on the loop's thread pool, or within this call without a loop; the head is then
 * truncated and a WAL checkpoint taken), and deletes blocks past retention_ms (relative
 * to now_ms, wall-clock milliseconds) or beyond retention_bytes, oldest first. Returns 0,
 * or the first error (logged; the next call retries). NN_EUNSUPPORTED without a dir. */
int nn_tsdb_maintain(struct nn_tsdb *db, int64_t now_ms);

/* Moves the WAL retention floor: with on, segments numbered >= from are never deleted
 * (checkpoints still replace older ones); off lets checkpoints delete what they cover. */
void nn_tsdb_wal_retain(struct nn_tsdb *db, bool on, uint32_t from);

/* ---- Reading the WAL from outside the store (remote write's tailer) ----
 * A reader walks the records of <data_dir>/wal in order while the store writes them,
 * from a position (segment, byte offset). It never writes or truncates. A position is
 * the start of a record (or a segment's end). docs/format/wal.md has the records. */
enum {
  NN_TSDB_WAL_SERIES = 1,
  NN_TSDB_WAL_SAMPLES = 2,
  NN_TSDB_WAL_CHUNKS = 3,
};

struct nn_tsdb_wal_record {
  uint8_t type;
  const uint8_t *data; /* payload, valid until the next call on the reader */
  size_t len;
  uint32_t segment;
  uint64_t offset; /* of the record's header in the segment */
  uint64_t end;    /* offset just past it: the position to resume after it */
};

struct nn_tsdb_wal_reader_stats {
  uint64_t records;
  uint64_t segments_skipped; /* deleted before the reader got to them */
  uint64_t damaged;          /* sealed segments whose tail could not be read */
  uint64_t damaged_bytes;
};

struct nn_tsdb_wal_reader;
/* Opens a reader of <data_dir>/wal positioned at (segment, offset). NN_ENOMEM only. */
int nn_tsdb_wal_reader_open(const char *data_dir, uint32_t segment, uint64_t offset,
                            struct nn_tsdb_wal_reader **out);
void nn_tsdb_wal_reader_close(struct nn_tsdb_wal_reader *r);
/* The next whole, checksummed record: 1 with rec filled, 0 when nothing more is written
 * yet (call again later), or a negative code for an I/O error. A sealed segment (a later
 * one exists) is left at its end; damage in its tail is skipped, logged and counted. A
 * missing segment (deleted under the reader) is skipped to the next one there. */
int nn_tsdb_wal_reader_next(struct nn_tsdb_wal_reader *r, struct nn_tsdb_wal_record *rec);
/* Where the next record will be read. */
void nn_tsdb_wal_reader_position(const struct nn_tsdb_wal_reader *r, uint32_t *segment,
                                 uint64_t *offset);
void nn_tsdb_wal_reader_stats(const struct nn_tsdb_wal_reader *r,
                              struct nn_tsdb_wal_reader_stats *out);

/* What <data_dir>/wal holds now: the first and last segment numbers (*nsegments 0 when
 * there is none), the last one's size and the newest checkpoint (-1 if none). */
int nn_tsdb_wal_bounds(const char *data_dir, uint32_t *first, uint32_t *last, size_t *nsegments,
                       uint64_t *last_size, int64_t *checkpoint);
/* Bytes of segments numbered >= from (how far a reader at from is behind). */
uint64_t nn_tsdb_wal_bytes_from(const char *data_dir, uint32_t from);

/* Decodes a series record: fn(ctx, ref, labels, n) per series (labels valid during the
 * call only). NN_ECORRUPT when it does not parse; a negative fn result stops and is
 * returned. */
typedef int (*nn_tsdb_wal_series_fn)(void *ctx, uint64_t ref, const struct nn_label *ls, size_t n);
int nn_tsdb_wal_series_decode(const uint8_t *p, size_t len, nn_tsdb_wal_series_fn fn, void *ctx);
/* Reads the series records of checkpoint.<checkpoint> in <data_dir>/wal through fn
 * (blocking; up to the first damage). */
int nn_tsdb_wal_checkpoint_series(const char *data_dir, uint32_t checkpoint,
                                  nn_tsdb_wal_series_fn fn, void *ctx);

/* Iterates the samples of a samples record, in their logged order. */
struct nn_tsdb_wal_samples {
  const uint8_t *p, *end;
  uint64_t base_ref;
  int64_t base_t;
};
/* NN_ECORRUPT when the record's header does not parse. */
int nn_tsdb_wal_samples_init(struct nn_tsdb_wal_samples *it, const uint8_t *p, size_t len);
/* 1 with one sample, 0 at the end, NN_ECORRUPT on damage. */
int nn_tsdb_wal_samples_next(struct nn_tsdb_wal_samples *it, uint64_t *ref, int64_t *t, double *v);

/* A read view of the blocks and the head, valid until nn_tsdb_close. Series found in
 * several blocks and the head are merged by labels. Results own their memory. */
void nn_tsdb_querier(struct nn_tsdb *db, struct nn_querier *out);

#define NN_TSDB_FSYNC_BUCKETS 8
/* Upper bounds (seconds) of the fsync duration histogram buckets; the last is +Inf. */
extern const double nn_tsdb_fsync_bucket_bounds[NN_TSDB_FSYNC_BUCKETS];

struct nn_tsdb_stats {
  uint64_t series;               /* series in the head */
  uint64_t series_created_total; /* includes series replayed from the WAL */
  uint64_t series_removed_total;
  uint64_t symbols;
  uint64_t chunks;                    /* closed + open head chunks */
  uint64_t samples_appended_total;    /* committed samples, replay excluded */
  uint64_t out_of_order_total;        /* rejected: older than the series' newest */
  uint64_t duplicate_total;           /* rejected: same timestamp, other value */
  uint64_t out_of_bounds_total;       /* rejected: too old for the head */
  uint64_t duplicate_identical_total; /* identical re-sends, accepted and dropped */
  int64_t min_time, max_time;         /* head time range; INT64_MAX/INT64_MIN if empty */
  uint64_t wal_records_total;
  uint64_t wal_bytes_written_total;
  uint64_t wal_fsyncs_total;
  double wal_fsync_seconds_total;
  uint64_t wal_fsync_buckets[NN_TSDB_FSYNC_BUCKETS]; /* cumulative, Prometheus style */
  uint64_t wal_write_failures_total;
  uint64_t wal_commit_rejected_total; /* commits refused because the WAL was backed up */
  uint64_t wal_pending_bytes;
  uint64_t wal_segment_current;
  uint64_t wal_checkpoints_total;
  uint64_t wal_checkpoint_failures_total;
  uint64_t wal_checkpoint_bytes; /* size of the last checkpoint */
  uint64_t wal_segments_removed_total;
  /* Replay. */
  uint64_t wal_corruptions_total;    /* damaged places found (torn tails included) */
  uint64_t wal_truncated_bytes;      /* bytes cut off damaged segments */
  uint64_t wal_replay_samples_total; /* samples restored */
  uint64_t wal_replay_dropped_total; /* samples or series records that could not apply */
  double wal_replay_seconds;
  /* Blocks. */
  uint64_t blocks;           /* loaded */
  uint64_t block_bytes;      /* their files' total size */
  uint64_t block_samples;    /* samples in them */
  int64_t blocks_min_time;   /* oldest sample time in blocks; INT64_MAX if none */
  uint64_t blocks_cut_total; /* written from the head */
  uint64_t block_cut_failures_total;
  uint64_t blocks_deleted_total; /* by retention */
  uint64_t blocks_corrupt_total; /* skipped at load, or later for a bad chunk CRC */
  double block_cut_seconds_total;
  double block_cut_seconds_last; /* snapshot to swap, of the newest cut */
};

void nn_tsdb_stats(struct nn_tsdb *db, struct nn_tsdb_stats *out);

#endif
