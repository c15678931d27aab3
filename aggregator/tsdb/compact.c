/* SPDX-License-Identifier: Apache-2.0 */
/* The store's blocks over time: loading them at open, cutting the head's oldest range
 * into a new block (snapshot on the loop, write on a worker, swap back on the loop, then
 * truncate the head and checkpoint the WAL), and retention by time and size. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "aggregator/tsdb/internal.h"
#include "common/log.h"

/* Without a loop every cut runs inside nn_tsdb_maintain; this bounds one call. */
#define MAX_SYNC_CUTS 256

struct nn__tsdb_cut_job {
  uv_work_t req;
  struct nn_tsdb *db; /* NULL once close has detached the job */
  struct nn__tsdb_snap snap;
  int64_t mint, maxt;
  char *blocks_dir;
  struct nn__tsdb_block *out;
  int rc;
  struct timespec t0;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
};

static double since(const struct timespec *t0)
{
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int nn__tsdb_blocks_add(struct nn_tsdb *db, struct nn__tsdb_block *b)
{
  if (db->nblocks == db->capblocks) {
    size_t nc = db->capblocks ? db->capblocks * 2 : 16;
    struct nn__tsdb_block **nb = realloc(db->blocks, nc * sizeof(*nb));
    if (!nb)
      return NN_ENOMEM;
    db->blocks = nb;
    db->capblocks = nc;
  }
  size_t i = db->nblocks;
  while (i > 0 && db->blocks[i - 1]->mint > b->mint) {
    db->blocks[i] = db->blocks[i - 1];
    i--;
  }
  db->blocks[i] = b;
  db->nblocks++;
  if (db->blocks_maxt == NN__TSDB_NO_T || b->maxt > db->blocks_maxt)
    db->blocks_maxt = b->maxt;
  if (db->blocks_maxt > db->oob_floor)
    db->oob_floor = db->blocks_maxt;
  return 0;
}

static bool has_suffix(const char *s, const char *suf)
{
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

int nn__tsdb_blocks_load(struct nn_tsdb *db)
{
  size_t n = strlen(db->dir) + sizeof("/blocks");
  if (!(db->blocks_dir = malloc(n)))
    return NN_ENOMEM;
  snprintf(db->blocks_dir, n, "%s/blocks", db->dir);
  if (mkdir(db->dir, 0755) < 0 && errno != EEXIST) {
    int rc = NN_ERRNO(errno);
    nn_error("tsdb", "cannot create data directory %s: %s", db->dir, nn_strerror(rc));
    return rc;
  }
  if (mkdir(db->blocks_dir, 0755) < 0 && errno != EEXIST) {
    int rc = NN_ERRNO(errno);
    nn_error("tsdb", "cannot create block directory %s: %s", db->blocks_dir, nn_strerror(rc));
    return rc;
  }
  DIR *d = opendir(db->blocks_dir);
  if (!d) {
    int rc = NN_ERRNO(errno);
    nn_error("tsdb", "cannot list block directory %s: %s", db->blocks_dir, nn_strerror(rc));
    return rc;
  }
  struct dirent *e;
  char path[4096];
  int rc = 0;
  while ((e = readdir(d)) && rc == 0) {
    if (e->d_name[0] == '.')
      continue;
    if (has_suffix(e->d_name, ".tmp") || has_suffix(e->d_name, ".deleted")) {
      /* A cut or a deletion that a crash interrupted. */
      snprintf(path, sizeof(path), "%s/%s", db->blocks_dir, e->d_name);
      nn_warn("tsdb", "removing leftover %s", path);
      char name[512];
      snprintf(name, sizeof(name), "%s", e->d_name);
      nn__tsdb_block_remove_dir(db->blocks_dir, name);
      continue;
    }
    snprintf(path, sizeof(path), "%s/%s", db->blocks_dir, e->d_name);
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
      continue;
    struct nn__tsdb_block *b;
    if (nn__tsdb_block_open(path, e->d_name, &b) < 0) {
      db->bst.corrupt++;
      continue;
    }
    if ((rc = nn__tsdb_blocks_add(db, b)) < 0)
      nn__tsdb_block_close(b);
  }
  closedir(d);
  if (rc == 0 && db->nblocks)
    nn_info("tsdb", "blocks loaded: dir=%s blocks=%zu corrupt=%llu", db->blocks_dir, db->nblocks,
            (unsigned long long)db->bst.corrupt);
  return rc;
}

void nn__tsdb_block_bad(struct nn_tsdb *db, struct nn__tsdb_block *b, const char *what)
{
  if (b->bad)
    return;
  b->bad = true;
  db->bst.corrupt++;
  nn_error("tsdb", "block %s skipped from now on: %s", b->path, what);
}

static void job_free(struct nn__tsdb_cut_job *job)
{
  nn__tsdb_snap_fini(&job->snap);
  nn__tsdb_block_close(job->out);
  free(job->blocks_dir);
  pthread_mutex_destroy(&job->mu);
  pthread_cond_destroy(&job->cv);
  free(job);
}

static void cut_work(uv_work_t *req)
{
  struct nn__tsdb_cut_job *job = req->data;
  job->rc = nn__tsdb_block_write(job->blocks_dir, &job->snap, &job->out);
  nn__tsdb_snap_fini(&job->snap); /* the copy can go before the loop gets to it */
  pthread_mutex_lock(&job->mu);
  job->done = true;
  pthread_cond_signal(&job->cv);
  pthread_mutex_unlock(&job->mu);
}

static int maybe_cut(struct nn_tsdb *db, bool *started);

/* Loop thread: adopts the new block, then lets the head forget the range. */
static void cut_finish(struct nn_tsdb *db, struct nn__tsdb_cut_job *job)
{
  db->cut = NULL;
  int rc = job->rc;
  if (rc == 0) {
    if ((rc = nn__tsdb_blocks_add(db, job->out)) == 0) {
      nn_info("tsdb", "block cut: %s series=%llu samples=%llu chunks=%llu bytes=%llu seconds=%.3f",
              job->out->name, (unsigned long long)job->out->nseries,
              (unsigned long long)job->out->nsamples, (unsigned long long)job->out->nchunks,
              (unsigned long long)job->out->bytes, since(&job->t0));
      job->out = NULL;
      db->bst.cut++;
    }
  }
  if (rc < 0 && rc != NN_ENOTFOUND) {
    /* The range stays in the head (its samples are still refused) and is retried. */
    db->bst.cut_failures++;
    nn_error("tsdb", "block [%lld, %lld) not cut: %s", (long long)job->mint, (long long)job->maxt,
             nn_strerror(rc));
  } else {
    if (db->blocks_maxt == NN__TSDB_NO_T || job->maxt > db->blocks_maxt)
      db->blocks_maxt = job->maxt;
    nn_tsdb_head_truncate(db, job->maxt);
    if (db->wal)
      nn_tsdb_checkpoint(db);
  }
  double secs = since(&job->t0);
  db->bst.cut_seconds_last = secs;
  db->bst.cut_seconds_total += secs;
}

static void on_cut_done(uv_work_t *req, int status)
{
  (void)status; /* never canceled */
  struct nn__tsdb_cut_job *job = req->data;
  struct nn_tsdb *db = job->db;
  if (db) {
    cut_finish(db, job);
    bool started;
    /* A head that spans several ranges (after downtime) is cut one range after another. */
    if (job->rc == 0 || job->rc == NN_ENOTFOUND)
      maybe_cut(db, &started);
  }
  job_free(job);
}

static int64_t floor_to(int64_t t, int64_t r)
{
  int64_t m = t % r;
  return m < 0 ? t - m - r : t - m;
}

/* Starts cutting the oldest full range if the head spans more than 1.5 ranges. */
static int maybe_cut(struct nn_tsdb *db, bool *started)
{
  *started = false;
  int64_t r = db->opt.block_range_ms;
  if (db->cut || db->max_t == NN__TSDB_NO_T || db->min_t == INT64_MAX)
    return 0;
  int64_t from = db->min_t > db->blocks_maxt ? db->min_t : db->blocks_maxt;
  int64_t lo = floor_to(from, r), hi, span;
  if (__builtin_add_overflow(lo, r, &hi) || __builtin_sub_overflow(db->max_t, from, &span) ||
      span <= r + r / 2 || hi > db->max_t)
    return 0;
  struct nn__tsdb_cut_job *job = calloc(1, sizeof(*job));
  if (!job)
    return NN_ENOMEM;
  pthread_mutex_init(&job->mu, NULL);
  pthread_cond_init(&job->cv, NULL);
  clock_gettime(CLOCK_MONOTONIC, &job->t0);
  job->db = db;
  job->mint = lo;
  job->maxt = hi;
  job->req.data = job;
  int rc = 0;
  if (!(job->blocks_dir = strdup(db->blocks_dir))) {
    rc = NN_ENOMEM;
    goto out;
  }
  if ((rc = nn__tsdb_snap_take(db, lo, hi, &job->snap)) < 0)
    goto out;
  /* From here on nothing may enter the range: the snapshot is what the block holds. */
  if (hi > db->oob_floor)
    db->oob_floor = hi;
  db->cut = job;
  *started = true;
  if (db->opt.loop) {
    if ((rc = uv_queue_work(db->opt.loop, &job->req, cut_work, on_cut_done)) < 0) {
      db->cut = NULL;
      goto out;
    }
    return 0;
  }
  cut_work(&job->req);
  cut_finish(db, job); /* logs and counts a failure */
  rc = job->rc == NN_ENOTFOUND ? 0 : job->rc;
  job_free(job);
  return rc;
out:
  if (rc < 0 && !db->cut) {
    db->bst.cut_failures++;
    nn_error("tsdb", "block [%lld, %lld) not cut: %s", (long long)lo, (long long)hi,
             nn_strerror(rc));
  }
  job_free(job);
  return rc;
}

static void delete_block(struct nn_tsdb *db, size_t i, const char *why)
{
  struct nn__tsdb_block *b = db->blocks[i];
  nn_info("tsdb", "block %s deleted (%s): mint=%lld maxt=%lld bytes=%llu", b->name, why,
          (long long)b->mint, (long long)b->maxt, (unsigned long long)b->bytes);
  char name[512];
  snprintf(name, sizeof(name), "%s", b->name);
  nn__tsdb_block_close(b);
  memmove(db->blocks + i, db->blocks + i + 1, (db->nblocks - i - 1) * sizeof(*db->blocks));
  db->nblocks--;
  int rc = nn__tsdb_block_remove_dir(db->blocks_dir, name);
  if (rc < 0)
    nn_error("tsdb", "cannot remove block %s/%s: %s", db->blocks_dir, name, nn_strerror(rc));
  db->bst.deleted++;
}

static void apply_retention(struct nn_tsdb *db, int64_t now_ms)
{
  int64_t cutoff;
  if (!__builtin_sub_overflow(now_ms, db->opt.retention_ms, &cutoff)) {
    /* Oldest first by mint; a block whose range ended before the cutoff goes. */
    for (size_t i = 0; i < db->nblocks;) {
      if (db->blocks[i]->maxt <= cutoff)
        delete_block(db, i, "retention time");
      else
        i++;
    }
  }
  if (!db->opt.retention_bytes)
    return;
  uint64_t total = 0;
  for (size_t i = 0; i < db->nblocks; i++)
    total += db->blocks[i]->bytes;
  while (db->nblocks && total > db->opt.retention_bytes) {
    total -= db->blocks[0]->bytes;
    delete_block(db, 0, "retention size");
  }
}

int nn_tsdb_maintain(struct nn_tsdb *db, int64_t now_ms)
{
  if (!db->blocks_dir)
    return NN_EUNSUPPORTED;
  int rc = 0;
  bool started = true;
  for (int i = 0; i < MAX_SYNC_CUTS && started && !db->cut && rc == 0; i++)
    rc = maybe_cut(db, &started);
  apply_retention(db, now_ms);
  return rc;
}

void nn__tsdb_blocks_fini(struct nn_tsdb *db)
{
  struct nn__tsdb_cut_job *job = db->cut;
  if (job) {
    /* The worker cannot be stopped: wait for it, and leave the job for its completion
     * callback to free, detached from the store. The block it wrote is loaded next time. */
    pthread_mutex_lock(&job->mu);
    while (!job->done)
      pthread_cond_wait(&job->cv, &job->mu);
    pthread_mutex_unlock(&job->mu);
    job->db = NULL;
    db->cut = NULL;
  }
  for (size_t i = 0; i < db->nblocks; i++)
    nn__tsdb_block_close(db->blocks[i]);
  free(db->blocks);
  free(db->blocks_dir);
  db->blocks = NULL;
  db->nblocks = db->capblocks = 0;
  db->blocks_dir = NULL;
}
