/* SPDX-License-Identifier: Apache-2.0 */
/* The log WAL: numbered segment files of CRC32C-framed records (push batches and
 * idempotency-key snapshots), replayed on open with torn tails truncated, and group
 * commit: a worker thread fsyncs the records written on the loop thread and wakes the loop
 * through a uv_async_t so done callbacks fire on the loop thread.
 *
 * A waiter's records are fsynced as soon as the loop has run every callback that was ready
 * (a uv_idle handle, armed by the first wait, kicks the worker on the next loop iteration),
 * so pushes handled together share one fsync and clients waiting for their 204 are not kept
 * waiting for the interval; while the worker is fsyncing, more records gather for the next
 * round. sync_interval and sync_bytes still bound an fsync's delay when the loop stays
 * busy, and are the only trigger for records nobody waits for. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"
#include "common/log.h"

#define MOD     "logstore"
#define REC_HDR 8 /* u32 length of type+payload, u32 crc32c of type+payload */

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int seg_path(const struct nn_logstore *s, uint32_t id, struct nn_buf *out)
{
  nn_buf_reset(out);
  return nn_buf_printf(out, "%s/%08u", s->wal_dir, id);
}

static int do_fsync(int fd)
{
  while (fsync(fd) < 0) {
    if (errno != EINTR)
      return NN_ERRNO(errno);
  }
  return 0;
}

static void job_free(struct nn__ls_job *j)
{
  for (size_t i = 0; i < j->nfsync; i++)
    free(j->fsync_paths[i]);
  for (size_t i = 0; i < j->nunlink; i++)
    free(j->unlink_paths[i]);
  free(j->fsync_paths);
  free(j->unlink_paths);
  free(j);
}

/* Runs on the worker (or inline without one): chunk files first, so a segment is only
 * deleted once the chunks holding its entries are on disk. */
static int job_run(struct nn__ls_job *j)
{
  int rc = 0;
  for (size_t i = 0; i < j->nfsync; i++) {
    int fd = open(j->fsync_paths[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue; /* deleted by retention meanwhile */
    int r = do_fsync(fd);
    close(fd);
    if (r < 0 && rc == 0)
      rc = r;
  }
  for (size_t i = 0; rc == 0 && i < j->nunlink; i++)
    if (unlink(j->unlink_paths[i]) < 0 && errno != ENOENT)
      NN_LOG_RL(NN_LOG_WARN, MOD, "cannot delete WAL segment %s: %s", j->unlink_paths[i],
                strerror(errno));
  return rc;
}

/* One sync round: retired segments, the current one, then queued jobs. Called with mu
 * held; drops it while doing I/O. */
static void sync_round(struct nn__ls_wal *w)
{
  uint64_t target = w->written_pos;
  int fd = w->fd;
  int *retired = w->retired;
  size_t nretired = w->nretired;
  struct nn__ls_job *jobs = w->jobs;
  w->retired = NULL;
  w->nretired = w->cretired = 0;
  w->jobs = w->jobs_tail = NULL;
  w->sync_now = false;
  pthread_mutex_unlock(&w->mu);

  int rc = 0;
  for (size_t i = 0; i < nretired; i++) {
    int r = do_fsync(retired[i]);
    close(retired[i]);
    if (r < 0 && rc == 0)
      rc = r;
  }
  free(retired);
  if (fd >= 0 && rc == 0)
    rc = do_fsync(fd);
  while (jobs) {
    struct nn__ls_job *next = jobs->next;
    int r = rc == 0 ? job_run(jobs) : 0;
    if (r < 0)
      NN_LOG_RL(NN_LOG_WARN, MOD, "fsync of chunk files failed: %s", nn_strerror(r));
    job_free(jobs);
    jobs = next;
  }

  pthread_mutex_lock(&w->mu);
  if (rc < 0 && w->error == 0) {
    w->error = rc;
    nn_error(MOD, "WAL fsync failed: %s; refusing further log appends", nn_strerror(rc));
  }
  if (target > w->synced_pos)
    w->synced_pos = target;
  if (fd >= 0)
    w->fsyncs++;
  if (w->written_pos > w->synced_pos)
    w->first_unsynced_ms = mono_ms();
  pthread_cond_broadcast(&w->done);
}

static void *worker_main(void *arg)
{
  struct nn_logstore *s = arg;
  struct nn__ls_wal *w = &s->wal;
  int64_t interval_ms = s->cfg.sync_interval_ns / 1000000;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    bool pending = w->written_pos > w->synced_pos || w->nretired || w->jobs;
    if (!pending) {
      if (w->stop)
        break;
      pthread_cond_wait(&w->wake, &w->mu);
      continue;
    }
    if (!w->stop && !w->sync_now && !w->jobs &&
        w->written_pos - w->synced_pos < s->cfg.sync_bytes) {
      int64_t deadline = w->first_unsynced_ms + interval_ms;
      if (mono_ms() < deadline) {
        struct timespec ts = {deadline / 1000, (deadline % 1000) * 1000000};
        pthread_cond_timedwait(&w->wake, &w->mu, &ts);
        continue;
      }
    }
    sync_round(w);
    pthread_mutex_unlock(&w->mu);
    if (w->async)
      uv_async_send(w->async);
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Fires the callbacks whose records are durable (all of them after a failure). */
static void drain_waiters(struct nn_logstore *s)
{
  struct nn__ls_wal *w = &s->wal;
  pthread_mutex_lock(&w->mu);
  uint64_t synced = w->synced_pos;
  int err = w->error;
  s->st.wal_fsyncs = w->fsyncs; /* copied here: metrics read s->st on the loop thread */
  pthread_mutex_unlock(&w->mu);
  while (w->waiters && (err < 0 || w->waiters->pos <= synced)) {
    struct nn__ls_waiter *wt = w->waiters;
    w->waiters = wt->next;
    if (!w->waiters)
      w->waiters_tail = NULL;
    wt->cb(wt->ud, err < 0 ? err : 0);
    free(wt);
  }
}

static void on_async(uv_async_t *h)
{
  if (h->data)
    drain_waiters(h->data);
}

static void on_async_closed(uv_handle_t *h)
{
  free(h);
}

/* The loop has run every callback that was ready: nothing more will join the waiters'
 * group commit before the loop sleeps, so the worker fsyncs now. */
static void on_idle(uv_idle_t *h)
{
  uv_idle_stop(h);
  struct nn_logstore *s = h->data;
  if (!s)
    return;
  struct nn__ls_wal *w = &s->wal;
  pthread_mutex_lock(&w->mu);
  if (w->written_pos > w->synced_pos) {
    w->sync_now = true;
    pthread_cond_signal(&w->wake);
  }
  pthread_mutex_unlock(&w->mu);
}

int nn__logstore_wal_sync(struct nn_logstore *s)
{
  struct nn__ls_wal *w = &s->wal;
  pthread_mutex_lock(&w->mu);
  if (w->have_thread) {
    uint64_t target = w->written_pos;
    w->sync_now = true;
    pthread_cond_signal(&w->wake);
    while (w->synced_pos < target && w->error == 0)
      pthread_cond_wait(&w->done, &w->mu);
  } else if (w->written_pos > w->synced_pos || w->nretired || w->jobs) {
    sync_round(w);
  }
  int rc = w->error;
  pthread_mutex_unlock(&w->mu);
  drain_waiters(s);
  return rc;
}

int nn_logstore_sync(struct nn_logstore *s)
{
  return nn__logstore_wal_sync(s);
}

int nn__logstore_wal_wait(struct nn_logstore *s, uint64_t pos, nn_logstore_done_cb cb, void *ud)
{
  struct nn__ls_wal *w = &s->wal;
  if (!cb)
    return 0;
  struct nn__ls_waiter *wt = calloc(1, sizeof(*wt));
  if (!wt)
    return NN_ENOMEM;
  *wt = (struct nn__ls_waiter){pos, cb, ud, NULL};
  if (w->waiters_tail)
    w->waiters_tail->next = wt;
  else
    w->waiters = wt;
  w->waiters_tail = wt;
  if (!w->have_thread) {
    nn__logstore_wal_sync(s); /* fires wt (with the error, if the sync failed) */
    return 0;
  }
  pthread_mutex_lock(&w->mu);
  bool done = w->synced_pos >= pos || w->error;
  pthread_mutex_unlock(&w->mu);
  if (done && w->async)
    uv_async_send(w->async);
  else if (w->idle && !uv_is_active(w->idle))
    uv_idle_start((uv_idle_t *)w->idle, on_idle);
  return 0;
}

void nn__logstore_wal_submit(struct nn_logstore *s, struct nn__ls_job *job)
{
  struct nn__ls_wal *w = &s->wal;
  pthread_mutex_lock(&w->mu);
  if (w->jobs_tail)
    w->jobs_tail->next = job;
  else
    w->jobs = job;
  w->jobs_tail = job;
  pthread_cond_signal(&w->wake);
  if (!w->have_thread)
    sync_round(w);
  pthread_mutex_unlock(&w->mu);
}

/* ---- writing ---- */

static int write_all(int fd, struct iovec *iov, int n)
{
  while (n > 0) {
    ssize_t r = writev(fd, iov, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return r < 0 ? NN_ERRNO(errno) : NN_EIO;
    while (n > 0 && (size_t)r >= iov->iov_len) {
      r -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + r;
      iov->iov_len -= (size_t)r;
    }
  }
  return 0;
}

/* Writes one framed record (data starts with its type byte) to the current segment. */
static int write_rec(struct nn_logstore *s, const void *data, size_t len)
{
  struct nn__ls_wal *w = &s->wal;
  uint8_t hdr[REC_HDR];
  if (len == 0 || len > LS_MAX_RECORD_BYTES)
    return NN_ETOOBIG;
  ls_put_u32(hdr, (uint32_t)len);
  ls_put_u32(hdr + 4, nn__logstore_crc32c(0, data, len));
  struct iovec iov[2] = {{hdr, REC_HDR}, {(void *)data, len}};
  int rc = write_all(w->fd, iov, 2);
  if (rc < 0) {
    /* Cut the partial record off, or replay would stop at it and lose what follows. */
    if (ftruncate(w->fd, (off_t)w->seg_bytes) < 0 || lseek(w->fd, 0, SEEK_END) < 0) {
      pthread_mutex_lock(&w->mu);
      w->error = NN_EIO;
      pthread_mutex_unlock(&w->mu);
    }
    return rc;
  }
  w->seg_bytes += REC_HDR + len;
  s->st.wal_bytes_written += REC_HDR + len;
  pthread_mutex_lock(&w->mu);
  if (w->written_pos == w->synced_pos)
    w->first_unsynced_ms = mono_ms();
  w->written_pos += REC_HDR + len;
  if (w->written_pos - w->synced_pos >= s->cfg.sync_bytes)
    pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  return 0;
}

static int write_keys_snapshot(struct nn_logstore *s)
{
  struct nn_buf b;
  nn_buf_init(&b, LS_MAX_RECORD_BYTES);
  int rc = nn_buf_appendc(&b, LS_REC_KEYS);
  if (rc == 0)
    rc = ls_put_uvarint(&b, s->nkeys);
  for (struct nn__ls_key *k = s->key_old; rc == 0 && k; k = k->next) {
    size_t tl = strlen(k->k);
    rc = ls_put_uvarint(&b, tl);
    if (rc == 0)
      rc = nn_buf_append(&b, k->k, tl);
    if (rc == 0)
      rc = ls_put_uvarint(&b, k->klen - tl - 1);
    if (rc == 0)
      rc = nn_buf_append(&b, k->k + tl + 1, k->klen - tl - 1);
    if (rc == 0)
      rc = ls_put_uvarint(&b, k->seq);
  }
  if (rc == 0)
    rc = write_rec(s, b.data, b.len);
  nn_buf_fini(&b);
  return rc;
}

/* Starts segment id: the previous fd is retired to the worker (or synced and closed). */
static int new_segment(struct nn_logstore *s, uint32_t id)
{
  struct nn__ls_wal *w = &s->wal;
  struct nn_buf path;
  int rc = 0;
  nn_buf_init(&path, 8192);
  if ((rc = seg_path(s, id, &path)) < 0)
    goto out;
  if (w->nsegs == w->csegs) {
    size_t nc = w->csegs ? w->csegs * 2 : 16;
    struct nn__ls_seg *ns = realloc(w->segs, nc * sizeof(*ns));
    if (!ns) {
      rc = NN_ENOMEM;
      goto out;
    }
    w->segs = ns;
    w->csegs = nc;
  }
  int fd = open(path.data, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = NN_ERRNO(errno);
    nn_error(MOD, "cannot create WAL segment %s: %s", path.data, nn_strerror(rc));
    goto out;
  }
  pthread_mutex_lock(&w->mu);
  if (w->fd >= 0) {
    if (w->nretired == w->cretired) {
      size_t nc = w->cretired ? w->cretired * 2 : 4;
      int *nr = realloc(w->retired, nc * sizeof(*nr));
      if (!nr) {
        pthread_mutex_unlock(&w->mu);
        close(fd);
        rc = NN_ENOMEM;
        goto out;
      }
      w->retired = nr;
      w->cretired = nc;
    }
    w->retired[w->nretired++] = w->fd;
  }
  w->fd = fd;
  pthread_mutex_unlock(&w->mu);
  w->segs[w->nsegs++] = (struct nn__ls_seg){id, w->next_seq, w->next_seq - 1};
  w->seg_bytes = 0;
  if ((rc = write_keys_snapshot(s)) < 0)
    goto out;
  w->snapshot_bytes = w->seg_bytes;
out:
  nn_buf_fini(&path);
  return rc;
}

int nn__logstore_wal_write(struct nn_logstore *s, uint8_t type, uint64_t *pos)
{
  struct nn__ls_wal *w = &s->wal;
  int rc;
  if (w->fd < 0)
    return NN_EIO;
  s->rec.data[0] = (char)type;
  if (w->seg_bytes > w->snapshot_bytes &&
      w->seg_bytes + REC_HDR + s->rec.len > s->cfg.wal_segment_bytes) {
    if ((rc = new_segment(s, w->segs[w->nsegs - 1].id + 1)) < 0)
      return rc;
    if (!w->have_thread) {
      pthread_mutex_lock(&w->mu);
      sync_round(w);
      pthread_mutex_unlock(&w->mu);
    }
  }
  if ((rc = write_rec(s, s->rec.data, s->rec.len)) < 0)
    return rc;
  if (type == LS_REC_BATCH && s->rec.len >= 9)
    w->segs[w->nsegs - 1].last_seq = ls_get_u64((const uint8_t *)s->rec.data + 1);
  pthread_mutex_lock(&w->mu);
  *pos = w->written_pos;
  pthread_mutex_unlock(&w->mu);
  return 0;
}

/* ---- truncation ---- */

uint64_t nn__logstore_wal_oldest_seq(const struct nn_logstore *s)
{
  return s->wal.nsegs ? s->wal.segs[0].first_seq : s->wal.next_seq;
}

static int push_path(char ***v, size_t *n, char *p)
{
  if (!p)
    return NN_ENOMEM;
  char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
  if (!nv) {
    free(p);
    return NN_ENOMEM;
  }
  nv[(*n)++] = p;
  *v = nv;
  return 0;
}

int nn__logstore_wal_truncate(struct nn_logstore *s)
{
  struct nn__ls_wal *w = &s->wal;
  uint64_t needed = UINT64_MAX;
  for (size_t i = 0; i < s->nids; i++)
    if (s->by_id[i] && s->by_id[i]->head.n && s->by_id[i]->head.first_seq < needed)
      needed = s->by_id[i]->head.first_seq;
  size_t ndel = 0;
  while (ndel + 1 < w->nsegs && w->segs[ndel].last_seq < needed)
    ndel++;
  bool dirty = false;
  for (size_t i = 0; i < s->nperiods; i++)
    dirty |= s->periods[i].dirty;
  if (ndel == 0 && !dirty)
    return 0;
  struct nn__ls_job *j = calloc(1, sizeof(*j));
  struct nn_buf path;
  int rc = 0;
  if (!j)
    return NN_ENOMEM;
  nn_buf_init(&path, 8192);
  for (size_t i = 0; rc == 0 && i < s->nperiods; i++) {
    if (!s->periods[i].dirty)
      continue;
    if ((rc = nn__logstore_period_path(s, s->periods[i].start, &path)) == 0 &&
        (rc = push_path(&j->fsync_paths, &j->nfsync, strdup(path.data))) == 0)
      s->periods[i].dirty = false;
  }
  for (size_t i = 0; rc == 0 && i < ndel; i++)
    if ((rc = seg_path(s, w->segs[i].id, &path)) == 0)
      rc = push_path(&j->unlink_paths, &j->nunlink, strdup(path.data));
  nn_buf_fini(&path);
  if (rc < 0) {
    job_free(j);
    return rc;
  }
  memmove(w->segs, w->segs + ndel, (w->nsegs - ndel) * sizeof(*w->segs));
  w->nsegs -= ndel;
  s->st.wal_segments_deleted += ndel;
  nn__logstore_wal_submit(s, j);
  return 0;
}

/* ---- replay ---- */

static int replay_keys(struct nn_logstore *s, const uint8_t *p, size_t n)
{
  size_t i = 0;
  uint64_t cnt;
  if (!ls_get_uvarint(p, n, &i, &cnt) || cnt > n)
    return NN_ECORRUPT;
  for (uint64_t k = 0; k < cnt; k++) {
    const uint8_t *t, *key;
    size_t tl, kl;
    uint64_t seq;
    char tenant[LS_MAX_TENANT_BYTES + 1];
    if (!ls_get_bytes(p, n, &i, &t, &tl) || tl == 0 || tl > LS_MAX_TENANT_BYTES ||
        memchr(t, '\0', tl) || !ls_get_bytes(p, n, &i, &key, &kl) || kl > LS_MAX_KEY_BYTES ||
        !ls_get_uvarint(p, n, &i, &seq))
      return NN_ECORRUPT;
    memcpy(tenant, t, tl);
    tenant[tl] = '\0';
    int rc = nn__logstore_key_add(s, tenant, (const char *)key, kl, seq);
    if (rc < 0)
      return rc;
  }
  return i == n ? 0 : NN_ECORRUPT;
}

/* Replays one segment. Returns 0, NN_ECORRUPT with *bad_off set (truncate there), or a
 * fatal error. */
static int replay_segment(struct nn_logstore *s, const char *path, struct nn__ls_seg *seg,
                          off_t *bad_off)
{
  struct nn_buf b;
  int rc = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NN_ERRNO(errno);
  nn_buf_init(&b, LS_MAX_RECORD_BYTES + 16);
  off_t off = 0;
  seg->first_seq = s->wal.next_seq;
  seg->last_seq = s->wal.next_seq - 1;
  bool any = false;
  for (;;) {
    uint8_t hdr[REC_HDR];
    ssize_t r = pread(fd, hdr, REC_HDR, off);
    if (r == 0)
      break;
    uint32_t len = r == REC_HDR ? ls_get_u32(hdr) : 0;
    if (r != REC_HDR || len == 0 || len > LS_MAX_RECORD_BYTES) {
      rc = NN_ECORRUPT;
      break;
    }
    nn_buf_reset(&b);
    if ((rc = nn_buf_reserve(&b, len)) < 0)
      break;
    r = pread(fd, b.data, len, off + REC_HDR);
    const uint8_t *p = (const uint8_t *)b.data;
    if (r != (ssize_t)len || nn__logstore_crc32c(0, p, len) != ls_get_u32(hdr + 4)) {
      rc = NN_ECORRUPT;
      break;
    }
    if (p[0] == LS_REC_BATCH && len >= 9) {
      uint64_t seq = ls_get_u64(p + 1);
      rc = nn__logstore_replay_batch(s, p + 1, len - 1);
      if (rc == 0) {
        if (!any || seq < seg->first_seq)
          seg->first_seq = seq;
        if (seq > seg->last_seq)
          seg->last_seq = seq;
        any = true;
      }
    } else if (p[0] == LS_REC_KEYS) {
      rc = replay_keys(s, p + 1, len - 1);
    } else {
      rc = NN_ECORRUPT;
    }
    if (rc < 0)
      break;
    off += REC_HDR + len;
  }
  *bad_off = off;
  nn_buf_fini(&b);
  close(fd);
  return rc;
}

static int id_cmp(const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

int nn__logstore_wal_open(struct nn_logstore *s, char *err, size_t errlen)
{
  struct nn__ls_wal *w = &s->wal;
  uint32_t *ids = NULL;
  size_t nids = 0, cids = 0;
  struct nn_buf path;
  int rc = 0;
  DIR *d = opendir(s->wal_dir);
  if (!d) {
    snprintf(err, errlen, "logstore: cannot open %s: %s", s->wal_dir, strerror(errno));
    return NN_ERRNO(errno);
  }
  nn_buf_init(&path, 8192);
  struct dirent *de;
  while ((de = readdir(d))) {
    char *end;
    errno = 0;
    unsigned long id = strtoul(de->d_name, &end, 10);
    if (end == de->d_name || *end || errno || id > UINT32_MAX || strlen(de->d_name) != 8)
      continue;
    if (nids == cids) {
      cids = cids ? cids * 2 : 16;
      uint32_t *n = realloc(ids, cids * sizeof(*n));
      if (!n) {
        rc = NN_ENOMEM;
        goto out;
      }
      ids = n;
    }
    ids[nids++] = (uint32_t)id;
  }
  if (nids)
    qsort(ids, nids, sizeof(*ids), id_cmp);
  s->replaying = true;
  for (size_t i = 0; i < nids; i++) {
    struct nn__ls_seg seg = {ids[i], 0, 0};
    off_t bad = 0;
    if ((rc = seg_path(s, ids[i], &path)) < 0)
      goto out;
    rc = replay_segment(s, path.data, &seg, &bad);
    if (rc < 0 && rc != NN_ECORRUPT) {
      snprintf(err, errlen, "logstore: replaying %s: %s", path.data, nn_strerror(rc));
      goto out;
    }
    if (w->nsegs == w->csegs) {
      size_t nc = w->csegs ? w->csegs * 2 : 16;
      struct nn__ls_seg *ns = realloc(w->segs, nc * sizeof(*ns));
      if (!ns) {
        rc = NN_ENOMEM;
        goto out;
      }
      w->segs = ns;
      w->csegs = nc;
    }
    w->segs[w->nsegs++] = seg;
    if (rc == NN_ECORRUPT) {
      /* A torn tail from a crash, or damage: keep what precedes it, drop the rest. */
      s->st.wal_corruptions++;
      nn_warn(MOD, "WAL segment %s is torn or corrupt at offset %lld; truncating it there%s",
              path.data, (long long)bad, i + 1 < nids ? " and dropping later segments" : "");
      if (truncate(path.data, bad) < 0)
        nn_warn(MOD, "cannot truncate %s: %s", path.data, strerror(errno));
      for (size_t k = i + 1; k < nids; k++)
        if (seg_path(s, ids[k], &path) == 0)
          unlink(path.data);
      nids = i + 1;
      rc = 0;
      break;
    }
  }
  s->replaying = false;
  if ((rc = new_segment(s, nids ? ids[nids - 1] + 1 : 0)) < 0) {
    snprintf(err, errlen, "logstore: cannot start a WAL segment in %s: %s", s->wal_dir,
             nn_strerror(rc));
    goto out;
  }
  pthread_mutex_lock(&w->mu);
  sync_round(w);
  s->st.wal_fsyncs = w->fsyncs;
  pthread_mutex_unlock(&w->mu);
  if (s->cfg.loop) {
    uv_async_t *a = calloc(1, sizeof(*a));
    if (!a) {
      rc = NN_ENOMEM;
      goto out;
    }
    if ((rc = uv_async_init(s->cfg.loop, a, on_async)) < 0) {
      free(a);
      snprintf(err, errlen, "logstore: uv_async_init: %s", uv_strerror(rc));
      goto out;
    }
    a->data = s;
    w->async = a;
    uv_idle_t *idle = calloc(1, sizeof(*idle));
    if (!idle) {
      rc = NN_ENOMEM;
      goto out;
    }
    if ((rc = uv_idle_init(s->cfg.loop, idle)) < 0) {
      free(idle);
      snprintf(err, errlen, "logstore: uv_idle_init: %s", uv_strerror(rc));
      goto out;
    }
    idle->data = s;
    w->idle = idle;
    if ((rc = pthread_create(&w->thread, NULL, worker_main, s)) != 0) {
      snprintf(err, errlen, "logstore: cannot start the fsync thread: %s", strerror(rc));
      rc = NN_ERRNO(rc);
      goto out;
    }
    w->have_thread = true;
  }
out:
  closedir(d);
  free(ids);
  nn_buf_fini(&path);
  return rc;
}

void nn__logstore_wal_close(struct nn_logstore *s)
{
  struct nn__ls_wal *w = &s->wal;
  if (w->have_thread) {
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->have_thread = false;
  }
  pthread_mutex_lock(&w->mu);
  if (w->written_pos > w->synced_pos || w->nretired || w->jobs)
    sync_round(w);
  pthread_mutex_unlock(&w->mu);
  drain_waiters(s);
  /* Anything still waiting could not be made durable. */
  while (w->waiters) {
    struct nn__ls_waiter *wt = w->waiters;
    w->waiters = wt->next;
    wt->cb(wt->ud, NN_ECANCELED);
    free(wt);
  }
  w->waiters_tail = NULL;
  if (w->fd >= 0)
    close(w->fd);
  w->fd = -1;
  if (w->async) {
    uv_async_t *a = w->async;
    a->data = NULL;
    uv_close((uv_handle_t *)a, on_async_closed);
    w->async = NULL;
  }
  if (w->idle) {
    uv_idle_t *idle = w->idle;
    idle->data = NULL;
    uv_idle_stop(idle);
    uv_close((uv_handle_t *)idle, on_async_closed);
    w->idle = NULL;
  }
  free(w->segs);
  w->segs = NULL;
  w->nsegs = w->csegs = 0;
}
