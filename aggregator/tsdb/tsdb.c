/* SPDX-License-Identifier: Apache-2.0 */
/* The store's lifecycle (open with WAL replay, close), durability callbacks delivered on
 * the loop thread through a uv_async handle woken by the WAL writer, and statistics.
 *
 * Group commit: a waiter's data is written as soon as the loop has run every callback that
 * was ready (a uv_idle handle, armed by the first wait, kicks the WAL writer on the next
 * loop iteration), so requests handled together share one fsync and clients that all wait
 * for their answers are not kept waiting for the flush interval; while the writer is busy,
 * more commits gather for the next write. The interval and byte threshold still bound a
 * write's delay when the loop stays busy. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "aggregator/tsdb/internal.h"
#include "common/log.h"

struct nn__tsdb_notifier {
  uv_async_t h;
  uv_idle_t idle; /* armed while a wait has not been handed to the WAL writer yet */
  int open;       /* handles not closed yet; the struct is freed when both are */
};

void nn_tsdb_options_default(struct nn_tsdb_options *o)
{
  memset(o, 0, sizeof(*o));
  o->wal_segment_bytes = 128u << 20;
  o->wal_flush_interval_ms = 100;
  o->wal_flush_bytes = 1u << 20;
  o->wal_max_pending_bytes = 64u << 20;
  o->wal_fsync = true;
  o->out_of_bounds_window_ms = 3600 * 1000;
  o->appender_max_samples = 4000000;
  o->chunk_samples = 120;
  o->block_range_ms = 2 * 3600 * 1000;
  o->retention_ms = 15LL * 24 * 3600 * 1000;
}

static void on_async(uv_async_t *h)
{
  nn__tsdb_dispatch(h->data);
}

/* The loop has run every callback that was ready: nothing more will join the waiters'
 * group commit before the loop sleeps, so the writer starts now. */
static void on_idle(uv_idle_t *h)
{
  struct nn_tsdb *db = h->data;
  uv_idle_stop(h);
  if (db->wal)
    nn__tsdb_wal_kick(db->wal);
}

static void on_notifier_close(uv_handle_t *h)
{
  struct nn__tsdb_notifier *n = h->data;
  if (--n->open == 0)
    free(n);
}

void nn__tsdb_wake(struct nn_tsdb *db)
{
  if (db->notifier)
    uv_async_send(&db->notifier->h);
}

static double since(const struct timespec *t0)
{
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int nn_tsdb_open(const struct nn_tsdb_options *o, struct nn_tsdb **out)
{
  int rc = 0;
  static uint64_t stores;
  struct nn_tsdb *db = calloc(1, sizeof(*db));
  if (!db)
    return NN_ENOMEM;
  /* Symbol ids cached in matchers name their store by this, not by its address. */
  db->syms.gen = __atomic_add_fetch(&stores, 1, __ATOMIC_RELAXED) << 32;
  db->opt = *o;
  struct nn_tsdb_options def;
  nn_tsdb_options_default(&def);
  if (!db->opt.wal_segment_bytes)
    db->opt.wal_segment_bytes = def.wal_segment_bytes;
  if (!db->opt.wal_flush_bytes)
    db->opt.wal_flush_bytes = def.wal_flush_bytes;
  if (!db->opt.wal_max_pending_bytes)
    db->opt.wal_max_pending_bytes = def.wal_max_pending_bytes;
  if (db->opt.out_of_bounds_window_ms <= 0)
    db->opt.out_of_bounds_window_ms = def.out_of_bounds_window_ms;
  if (!db->opt.appender_max_samples)
    db->opt.appender_max_samples = def.appender_max_samples;
  if (!db->opt.chunk_samples)
    db->opt.chunk_samples = def.chunk_samples;
  if (db->opt.block_range_ms <= 0)
    db->opt.block_range_ms = def.block_range_ms;
  if (db->opt.retention_ms <= 0)
    db->opt.retention_ms = def.retention_ms;
  db->opt.dir = NULL;
  db->next_ref = 1;
  db->min_t = INT64_MAX;
  db->max_t = NN__TSDB_NO_T;
  db->blocks_maxt = NN__TSDB_NO_T;
  db->oob_floor = NN__TSDB_NO_T;
  if (o->loop) {
    db->notifier = calloc(1, sizeof(*db->notifier));
    if (!db->notifier) {
      rc = NN_ENOMEM;
      goto out;
    }
    if ((rc = uv_async_init(o->loop, &db->notifier->h, on_async)) < 0) {
      free(db->notifier);
      db->notifier = NULL;
      goto out;
    }
    db->notifier->h.data = db;
    db->notifier->open = 1;
    if ((rc = uv_idle_init(o->loop, &db->notifier->idle)) < 0)
      goto out;
    db->notifier->idle.data = db;
    db->notifier->open = 2;
  }
  if (o->dir) {
    if (!(db->dir = strdup(o->dir))) {
      rc = NN_ENOMEM;
      goto out;
    }
    if ((rc = nn__tsdb_blocks_load(db)) < 0)
      goto out;
    struct nn__tsdb_wal_visitor v;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    nn__tsdb_replay_visitor(db, &v);
    rc = nn__tsdb_wal_open(db, db->dir, &v, &db->wal);
    nn__tsdb_replay_done(db);
    if (rc < 0)
      goto out;
    /* The WAL may still hold what was cut into blocks (a crash before the checkpoint);
     * those chunks go, and the blocks answer for that range. */
    if (db->blocks_maxt != NN__TSDB_NO_T)
      nn_tsdb_head_truncate(db, db->blocks_maxt);
    db->st.replay_seconds = since(&t0);
    nn_info("tsdb",
            "WAL replayed: dir=%s series=%zu samples=%llu dropped=%llu corruptions=%llu "
            "truncated_bytes=%llu seconds=%.3f",
            db->dir, db->nseries, (unsigned long long)db->st.replay_samples,
            (unsigned long long)db->st.replay_dropped, (unsigned long long)db->st.corruptions,
            (unsigned long long)db->st.truncated_bytes, db->st.replay_seconds);
  }
out:
  if (rc < 0) {
    nn_tsdb_close(db);
    return rc;
  }
  *out = db;
  return 0;
}

void nn_tsdb_wal_retain(struct nn_tsdb *db, bool on, uint32_t from)
{
  if (db->wal)
    nn__tsdb_wal_retain(db->wal, on, from);
}

void nn__tsdb_dispatch(struct nn_tsdb *db)
{
  uint64_t durable = db->mem_seq, lo = 0, hi = 0;
  int fail = 0;
  if (db->wal)
    nn__tsdb_wal_progress(db->wal, &durable, &lo, &hi, &fail);
  if (fail)
    nn__tsdb_head_wal_failed(db);
  while (db->wait_head && db->wait_head->seq <= durable) {
    struct nn_tsdb_durable_req *r = db->wait_head;
    db->wait_head = r->next;
    if (!db->wait_head)
      db->wait_tail = NULL;
    r->next = NULL;
    /* Conservative: anyone whose data may sit in a failed batch hears of the failure;
     * a needless retry only re-sends identical samples, which are accepted. */
    r->cb(r, fail && r->seq > lo ? fail : 0);
  }
}

void nn_tsdb_wal_wait(struct nn_tsdb *db, struct nn_tsdb_durable_req *req, nn_tsdb_durable_cb cb)
{
  req->cb = cb;
  req->seq = db->wal ? nn__tsdb_wal_appended(db->wal) : db->mem_seq;
  req->next = NULL;
  if (db->wait_tail)
    db->wait_tail->next = req;
  else
    db->wait_head = req;
  db->wait_tail = req;
  /* It may be durable already, and then no write will wake the loop. */
  nn__tsdb_wake(db);
  if (db->wal && db->notifier && !uv_is_active((uv_handle_t *)&db->notifier->idle))
    uv_idle_start(&db->notifier->idle, on_idle);
}

void nn_tsdb_wal_flush(struct nn_tsdb *db)
{
  if (db->wal)
    nn__tsdb_wal_kick(db->wal);
  else
    nn__tsdb_wake(db);
}

int nn_tsdb_sync(struct nn_tsdb *db)
{
  int rc = db->wal ? nn__tsdb_wal_sync(db->wal) : 0;
  nn__tsdb_dispatch(db);
  return rc;
}

void nn_tsdb_close(struct nn_tsdb *db)
{
  if (!db)
    return;
  if (db->wal) {
    nn__tsdb_wal_sync(db->wal);
    nn__tsdb_dispatch(db);
    nn__tsdb_wal_close(db->wal);
    db->wal = NULL;
  }
  db->mem_seq = UINT64_MAX; /* everything left is as durable as it will get */
  nn__tsdb_dispatch(db);
  if (db->notifier) {
    struct nn__tsdb_notifier *n = db->notifier;
    /* Closed handles get no more calls; their close callbacks find the struct by data. */
    n->h.data = n;
    if (n->open == 2) {
      n->idle.data = n;
      uv_idle_stop(&n->idle);
      uv_close((uv_handle_t *)&n->idle, on_notifier_close);
    }
    uv_close((uv_handle_t *)&n->h, on_notifier_close);
  }
  nn__tsdb_blocks_fini(db);
  nn__tsdb_head_fini(db);
  free(db->dir);
  free(db);
}

int nn_tsdb_checkpoint(struct nn_tsdb *db)
{
  if (!db->wal)
    return NN_EUNSUPPORTED;
  uint32_t seg;
  struct nn_buf snap;
  nn_buf_init(&snap, SIZE_MAX / 2);
  /* Seal first: everything in the segments before seg is then in the head, so the
   * snapshot taken next covers them. Commits made after the seal land in seg or later
   * and are replayed on top; a sample in both is an identical re-send, skipped. */
  int rc = nn__tsdb_wal_seal(db->wal, &seg);
  if (rc == 0)
    rc = nn__tsdb_head_snapshot(db, &snap);
  if (rc == 0)
    rc = nn__tsdb_wal_checkpoint(db->wal, &snap, seg);
  nn_buf_fini(&snap);
  if (rc < 0)
    nn_error("tsdb", "WAL checkpoint not taken: %s", nn_strerror(rc));
  return rc;
}

void nn_tsdb_stats(struct nn_tsdb *db, struct nn_tsdb_stats *out)
{
  memset(out, 0, sizeof(*out));
  out->series = db->nseries;
  out->series_created_total = db->st.series_created;
  out->series_removed_total = db->st.series_removed;
  out->symbols = db->syms.live;
  out->chunks = db->st.chunks;
  out->samples_appended_total = db->st.samples_appended;
  out->out_of_order_total = db->st.out_of_order;
  out->duplicate_total = db->st.duplicate;
  out->out_of_bounds_total = db->st.out_of_bounds;
  out->duplicate_identical_total = db->st.duplicate_identical;
  out->min_time = db->min_t;
  out->max_time = db->max_t;
  out->wal_records_total = db->st.records;
  out->wal_commit_rejected_total = db->st.commit_rejected;
  out->wal_corruptions_total = db->st.corruptions;
  out->wal_truncated_bytes = db->st.truncated_bytes;
  out->wal_replay_samples_total = db->st.replay_samples;
  out->wal_replay_dropped_total = db->st.replay_dropped;
  out->wal_replay_seconds = db->st.replay_seconds;
  if (db->wal)
    nn__tsdb_wal_stats(db->wal, out);
  out->blocks = db->nblocks;
  out->blocks_min_time = INT64_MAX;
  for (size_t i = 0; i < db->nblocks; i++) {
    out->block_bytes += db->blocks[i]->bytes;
    out->block_samples += db->blocks[i]->nsamples;
    if (db->blocks[i]->mint < out->blocks_min_time)
      out->blocks_min_time = db->blocks[i]->mint;
  }
  out->blocks_cut_total = db->bst.cut;
  out->block_cut_failures_total = db->bst.cut_failures;
  out->blocks_deleted_total = db->bst.deleted;
  out->blocks_corrupt_total = db->bst.corrupt;
  out->block_cut_seconds_total = db->bst.cut_seconds_total;
  out->block_cut_seconds_last = db->bst.cut_seconds_last;
}
