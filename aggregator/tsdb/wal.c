/* SPDX-License-Identifier: Apache-2.0 */
/* The write-ahead log: CRC32C-framed records in numbered segment files, written and
 * fsynced by one writer thread with group commit (an interval or a byte threshold,
 * whichever comes first), and replayed on open. Damage is truncated and counted, never
 * fatal; docs/format/wal.md has the format and the recovery rules. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/tsdb/internal.h"
#include "common/log.h"

struct nn__tsdb_wal {
  struct nn_tsdb *db;
  char *dir;
  uint64_t segment_bytes;
  size_t flush_bytes;
  int64_t interval_ns;
  bool fsync;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  /* Under mu. */
  struct nn_buf pending;
  uint64_t appended, durable;
  uint64_t fail_lo, fail_hi;
  int fail_status;
  int64_t pending_since;
  bool stop, sync_req;
  uint64_t bytes_written, fsyncs, write_failures;
  uint64_t fsync_buckets[NN_TSDB_FSYNC_BUCKETS];
  double fsync_seconds;
  uint32_t seg_current;
  bool rotate_req;
  bool ckpt_req;
  struct nn_buf ckpt;
  uint32_t ckpt_seg;
  uint64_t checkpoints, ckpt_failures, ckpt_bytes, segs_removed;
  bool retain; /* segments >= retain_from are never deleted (WAL readers) */
  uint32_t retain_from;
  /* Writer thread only. */
  struct nn_buf writing;
  int fd;
  uint32_t seg;
  uint64_t seg_size;
};

const double nn_tsdb_fsync_bucket_bounds[NN_TSDB_FSYNC_BUCKETS] = {
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, __builtin_inf()};

/* ---- codec ---- */

int nn__tsdb_put_uvarint(struct nn_buf *b, uint64_t x)
{
  int rc = nn_buf_reserve(b, 10);
  if (rc < 0)
    return rc;
  uint8_t *p = (uint8_t *)b->data + b->len;
  size_t k = 0;
  while (x >= 0x80) {
    p[k++] = (uint8_t)(x | 0x80);
    x >>= 7;
  }
  p[k++] = (uint8_t)x;
  b->len += k;
  b->data[b->len] = '\0';
  return 0;
}

int nn__tsdb_put_varint(struct nn_buf *b, int64_t x)
{
  return nn__tsdb_put_uvarint(b, ((uint64_t)x << 1) ^ (uint64_t)(x >> 63));
}

bool nn__tsdb_get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *x)
{
  uint64_t v = 0;
  const uint8_t *q = *p;
  for (unsigned shift = 0; shift < 70 && q < end; shift += 7) {
    uint8_t b = *q++;
    if (shift == 63 && b > 1)
      return false;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *x = v;
      *p = q;
      return true;
    }
  }
  return false;
}

bool nn__tsdb_get_varint(const uint8_t **p, const uint8_t *end, int64_t *x)
{
  uint64_t z;
  if (!nn__tsdb_get_uvarint(p, end, &z))
    return false;
  *x = (int64_t)((z >> 1) ^ (0 - (z & 1)));
  return true;
}

static void put_le32(uint8_t *p, uint32_t x)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(x >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int nn__tsdb_rec_begin(struct nn_buf *b, uint8_t type, size_t *off)
{
  static const uint8_t zero[NN__TSDB_REC_HDR - 1];
  *off = b->len;
  int rc = nn_buf_appendc(b, (char)type);
  return rc < 0 ? rc : nn_buf_append(b, zero, sizeof(zero));
}

void nn__tsdb_rec_end(struct nn_buf *b, size_t off)
{
  uint8_t *h = (uint8_t *)b->data + off;
  size_t len = b->len - off - NN__TSDB_REC_HDR;
  put_le32(h + 1, (uint32_t)len);
  uint32_t crc = nn__tsdb_crc32c(0, h, 5);
  crc = nn__tsdb_crc32c(crc, h + NN__TSDB_REC_HDR, len);
  put_le32(h + 5, crc);
}

static int decode_series(const uint8_t *p, size_t len, const struct nn__tsdb_wal_visitor *v)
{
  const uint8_t *q = p, *end = p + len;
  int rc = 0;
  /* Strings are copied out to get terminators; one series fits in len + 2 per label. */
  char *scratch = malloc(len + 2 * NN__TSDB_MAX_LABELS + 1);
  struct nn_label *ls = malloc(NN__TSDB_MAX_LABELS * sizeof(*ls));
  if (!scratch || !ls) {
    rc = NN_ENOMEM;
    goto out;
  }
  while (q < end) {
    uint64_t ref, nl;
    if (!nn__tsdb_get_uvarint(&q, end, &ref) || !nn__tsdb_get_uvarint(&q, end, &nl) || nl == 0 ||
        nl > NN__TSDB_MAX_LABELS) {
      rc = NN_ECORRUPT;
      goto out;
    }
    char *sp = scratch;
    for (uint64_t i = 0; i < 2 * nl; i++) {
      uint64_t sl;
      if (!nn__tsdb_get_uvarint(&q, end, &sl) || sl > (uint64_t)(end - q)) {
        rc = NN_ECORRUPT;
        goto out;
      }
      memcpy(sp, q, sl);
      sp[sl] = '\0';
      if (i % 2 == 0)
        ls[i / 2].name = sp;
      else
        ls[i / 2].value = sp;
      sp += sl + 1;
      q += sl;
    }
    if (v->series)
      v->series(v->ctx, ref, ls, nl);
  }
out:
  free(scratch);
  free(ls);
  return rc;
}

static int decode_samples(const uint8_t *p, size_t len, const struct nn__tsdb_wal_visitor *v)
{
  const uint8_t *q = p, *end = p + len;
  uint64_t base_ref;
  int64_t base_t;
  if (!nn__tsdb_get_uvarint(&q, end, &base_ref) || !nn__tsdb_get_varint(&q, end, &base_t))
    return NN_ECORRUPT;
  while (q < end) {
    int64_t dref, dt;
    if (!nn__tsdb_get_varint(&q, end, &dref) || !nn__tsdb_get_varint(&q, end, &dt) || end - q < 8)
      return NN_ECORRUPT;
    uint64_t bits = 0;
    for (int k = 7; k >= 0; k--)
      bits = bits << 8 | q[k];
    q += 8;
    double val;
    memcpy(&val, &bits, sizeof(val));
    if (v->sample)
      v->sample(v->ctx, base_ref + (uint64_t)dref, (int64_t)((uint64_t)base_t + (uint64_t)dt), val);
  }
  return 0;
}

/* Checkpoint chunks are decoded into samples: the head re-encodes them, which rebuilds
 * the open chunk's encoder state without a second format for it. */
static int decode_chunks(const uint8_t *p, size_t len, const struct nn__tsdb_wal_visitor *v)
{
  const uint8_t *q = p, *end = p + len;
  while (q < end) {
    uint64_t ref, nchunks;
    if (!nn__tsdb_get_uvarint(&q, end, &ref) || !nn__tsdb_get_uvarint(&q, end, &nchunks))
      return NN_ECORRUPT;
    for (uint64_t c = 0; c < nchunks; c++) {
      uint64_t cl;
      if (!nn__tsdb_get_uvarint(&q, end, &cl) || cl > (uint64_t)(end - q))
        return NN_ECORRUPT;
      struct nn__tsdb_xor_it it;
      nn__tsdb_xor_it_init(&it, q, cl);
      while (nn__tsdb_xor_it_next(&it))
        if (v->sample)
          v->sample(v->ctx, ref, it.t, nn__tsdb_xor_it_value(&it));
      if (it.err)
        return it.err;
      q += cl;
    }
  }
  return 0;
}

int nn__tsdb_wal_decode(uint8_t type, const uint8_t *p, size_t len,
                        const struct nn__tsdb_wal_visitor *v)
{
  switch (type) {
  case NN__TSDB_REC_SERIES: return decode_series(p, len, v);
  case NN__TSDB_REC_SAMPLES: return decode_samples(p, len, v);
  case NN__TSDB_REC_CHUNKS: return decode_chunks(p, len, v);
  default: return NN_ECORRUPT;
  }
}

size_t nn__tsdb_wal_scan(const uint8_t *p, size_t len, const struct nn__tsdb_wal_visitor *v,
                         bool *damaged)
{
  size_t off = 0;
  *damaged = false;
  while (off < len) {
    if (len - off < NN__TSDB_REC_HDR) {
      *damaged = true;
      break;
    }
    const uint8_t *h = p + off;
    uint8_t type = h[0];
    uint32_t rlen = get_le32(h + 1);
    if (type < NN__TSDB_REC_SERIES || type > NN__TSDB_REC_CHUNKS || rlen > NN__TSDB_REC_MAX ||
        rlen > len - off - NN__TSDB_REC_HDR) {
      *damaged = true;
      break;
    }
    uint32_t crc = nn__tsdb_crc32c(0, h, 5);
    crc = nn__tsdb_crc32c(crc, h + NN__TSDB_REC_HDR, rlen);
    if (crc != get_le32(h + 5)) {
      *damaged = true;
      break;
    }
    if (nn__tsdb_wal_decode(type, h + NN__TSDB_REC_HDR, rlen, v) < 0 && v->bad_record)
      v->bad_record(v->ctx);
    off += NN__TSDB_REC_HDR + rlen;
  }
  return off;
}

/* ---- replay ---- */

static int cmp_u32(const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Checkpoint names: "checkpoint." and the number of the first segment not covered. */
#define CKPT_PREFIX "checkpoint."

static bool parse_u32(const char *s, uint32_t *out)
{
  size_t l = strlen(s);
  if (l == 0 || l > 9 || strspn(s, "0123456789") != l)
    return false;
  *out = (uint32_t)strtoul(s, NULL, 10);
  return true;
}

/* Segment numbers in dir, sorted, and the newest checkpoint (-1 if none). Leftovers of
 * an interrupted checkpoint (*.tmp) are removed; other files are ignored. */
static int list_segments(const char *dir, uint32_t **out, size_t *n, int64_t *ckpt)
{
  DIR *d = opendir(dir);
  if (!d)
    return NN_ERRNO(errno);
  uint32_t *v = NULL, num;
  size_t cnt = 0, cap = 0;
  int rc = 0;
  struct dirent *e;
  *ckpt = -1;
  while ((e = readdir(d))) {
    const char *nm = e->d_name;
    size_t l = strlen(nm);
    if (l > 4 && strcmp(nm + l - 4, ".tmp") == 0) {
      unlinkat(dirfd(d), nm, 0);
      continue;
    }
    if (strncmp(nm, CKPT_PREFIX, strlen(CKPT_PREFIX)) == 0) {
      if (parse_u32(nm + strlen(CKPT_PREFIX), &num) && (int64_t)num > *ckpt)
        *ckpt = num;
      continue;
    }
    if (!parse_u32(nm, &num))
      continue;
    if (cnt == cap) {
      size_t nc = cap ? cap * 2 : 16;
      uint32_t *nv = realloc(v, nc * sizeof(*nv));
      if (!nv) {
        rc = NN_ENOMEM;
        break;
      }
      v = nv;
      cap = nc;
    }
    v[cnt++] = num;
  }
  closedir(d);
  if (rc < 0) {
    free(v);
    return rc;
  }
  if (cnt)
    qsort(v, cnt, sizeof(*v), cmp_u32);
  *out = v;
  *n = cnt;
  return 0;
}

static int fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return NN_ERRNO(errno);
  int rc = fsync(fd) < 0 ? NN_ERRNO(errno) : 0;
  close(fd);
  return rc;
}

/* Replays one segment; damage is cut off the file. Returns the file's final size. */
static int replay_file(struct nn__tsdb_wal *w, const char *path, bool last,
                       const struct nn__tsdb_wal_visitor *v, uint64_t *size_out)
{
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int rc = NN_ERRNO(errno);
    nn_error("tsdb", "cannot open WAL segment %s: %s", path, nn_strerror(rc));
    return rc;
  }
  struct stat sb;
  int rc = 0;
  if (fstat(fd, &sb) < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  *size_out = (uint64_t)sb.st_size;
  if (sb.st_size == 0)
    goto out;
  void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) {
    rc = NN_ERRNO(errno);
    nn_error("tsdb", "cannot map WAL segment %s: %s", path, nn_strerror(rc));
    goto out;
  }
  madvise(map, (size_t)sb.st_size, MADV_SEQUENTIAL);
  bool damaged;
  size_t good = nn__tsdb_wal_scan(map, (size_t)sb.st_size, v, &damaged);
  munmap(map, (size_t)sb.st_size);
  if (damaged) {
    uint64_t cut = (uint64_t)sb.st_size - good;
    w->db->st.corruptions++;
    w->db->st.truncated_bytes += cut;
    nn_warn("tsdb",
            "damaged WAL record; truncating the segment and keeping what precedes it: "
            "path=%s offset=%zu dropped_bytes=%llu last_segment=%s",
            path, good, (unsigned long long)cut, last ? "true" : "false");
    if (ftruncate(fd, (off_t)good) < 0 || fsync(fd) < 0) {
      rc = NN_ERRNO(errno);
      nn_error("tsdb", "cannot truncate damaged WAL segment %s: %s", path, nn_strerror(rc));
      goto out;
    }
    *size_out = good;
  }
out:
  close(fd);
  return rc;
}

static int replay(struct nn__tsdb_wal *w, const struct nn__tsdb_wal_visitor *v)
{
  uint32_t *segs = NULL;
  size_t n = 0;
  int64_t ckpt = -1;
  char path[4096];
  int rc = list_segments(w->dir, &segs, &n, &ckpt);
  if (rc < 0)
    return rc;
  w->seg = 0;
  if (ckpt >= 0) {
    uint64_t size;
    snprintf(path, sizeof(path), "%s/" CKPT_PREFIX NN__TSDB_WAL_SEG_FMT, w->dir, (uint32_t)ckpt);
    if (replay_file(w, path, false, v, &size) < 0)
      w->db->st.corruptions++;
    w->seg = (uint32_t)ckpt;
  }
  bool first = true;
  for (size_t i = 0; i < n; i++) {
    uint64_t size = 0;
    snprintf(path, sizeof(path), "%s/" NN__TSDB_WAL_SEG_FMT, w->dir, segs[i]);
    if (ckpt >= 0 && segs[i] < (uint32_t)ckpt) {
      /* Covered by the checkpoint; a crash stopped the removal (or a reader retains it). */
      if (!w->retain || segs[i] < w->retain_from)
        unlink(path);
      continue;
    }
    if (!first && segs[i] != segs[i - 1] + 1)
      nn_warn("tsdb", "gap in WAL segments: after=%u next=%u", segs[i - 1], segs[i]);
    first = false;
    rc = replay_file(w, path, i + 1 == n, v, &size);
    if (rc < 0) {
      /* An unreadable segment is skipped; later ones hold independent records. */
      w->db->st.corruptions++;
      rc = 0;
    }
    /* New records go to a fresh segment, except that an empty last one is reused. */
    w->seg = size == 0 && i + 1 == n ? segs[i] : segs[i] + 1;
  }
  free(segs);
  return rc;
}

/* ---- writer ---- */

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_segment(struct nn__tsdb_wal *w)
{
  char path[4096];
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
    w->seg++;
  }
  snprintf(path, sizeof(path), "%s/" NN__TSDB_WAL_SEG_FMT, w->dir, w->seg);
  w->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (w->fd < 0) {
    int rc = NN_ERRNO(errno);
    nn_error("tsdb", "cannot create WAL segment %s: %s", path, nn_strerror(rc));
    return rc;
  }
  struct stat sb;
  w->seg_size = fstat(w->fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
  pthread_mutex_lock(&w->mu);
  w->seg_current = w->seg;
  pthread_mutex_unlock(&w->mu);
  return fsync_dir(w->dir);
}

/* Writes one batch of whole records. After a failure the segment is abandoned: its
 * tail may hold a partial record, which replay cuts off. */
static int write_batch(struct nn__tsdb_wal *w, const uint8_t *p, size_t n, bool rotate,
                       double *fsync_s)
{
  int rc = 0;
  *fsync_s = -1;
  if (w->fd < 0 || rotate || (w->seg_size > 0 && w->seg_size + n > w->segment_bytes)) {
    if ((rc = open_segment(w)) < 0)
      goto out;
  }
  size_t done = 0;
  while (done < n) {
    ssize_t k = write(w->fd, p + done, n - done);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      rc = NN_ERRNO(errno);
      goto out;
    }
    done += (size_t)k;
  }
  w->seg_size += n;
  if (w->fsync) {
    int64_t t0 = now_ns();
    if (fdatasync(w->fd) < 0) {
      rc = NN_ERRNO(errno);
      goto out;
    }
    *fsync_s = (double)(now_ns() - t0) / 1e9;
  }
out:
  if (rc < 0) {
    NN_LOG_RL(NN_LOG_ERROR, "tsdb", "WAL write to segment %u failed: %s", w->seg, nn_strerror(rc));
    if (w->fd >= 0) {
      close(w->fd);
      w->fd = -1;
      w->seg++;
    }
  }
  return rc;
}

static void remove_covered(struct nn__tsdb_wal *w, uint32_t upto)
{
  pthread_mutex_lock(&w->mu);
  /* Segments a reader still needs stay; the checkpoint itself is written regardless. */
  uint32_t keep = w->retain && w->retain_from < upto ? w->retain_from : upto;
  pthread_mutex_unlock(&w->mu);
  DIR *d = opendir(w->dir);
  if (!d)
    return;
  struct dirent *e;
  uint64_t removed = 0;
  uint32_t num;
  while ((e = readdir(d))) {
    const char *nm = e->d_name;
    bool ck = strncmp(nm, CKPT_PREFIX, strlen(CKPT_PREFIX)) == 0;
    if (!parse_u32(ck ? nm + strlen(CKPT_PREFIX) : nm, &num) || num >= upto || (!ck && num >= keep))
      continue;
    if (unlinkat(dirfd(d), nm, 0) == 0 && !ck)
      removed++;
  }
  closedir(d);
  pthread_mutex_lock(&w->mu);
  w->segs_removed += removed;
  pthread_mutex_unlock(&w->mu);
}

/* Writes checkpoint.<seg> atomically (temporary file, fsync, rename, directory fsync),
 * and only then removes what it replaces. */
static int write_checkpoint(struct nn__tsdb_wal *w, const struct nn_buf *b, uint32_t seg)
{
  char tmp[4200], final[4096];
  snprintf(final, sizeof(final), "%s/" CKPT_PREFIX NN__TSDB_WAL_SEG_FMT, w->dir, seg);
  snprintf(tmp, sizeof(tmp), "%s.tmp", final);
  int rc = 0;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  for (size_t done = 0; done < b->len;) {
    ssize_t k = write(fd, b->data + done, b->len - done);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      rc = NN_ERRNO(errno);
      goto out;
    }
    done += (size_t)k;
  }
  if (fsync(fd) < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  close(fd);
  fd = -1;
  if (rename(tmp, final) < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  if ((rc = fsync_dir(w->dir)) < 0)
    goto out;
  remove_covered(w, seg);
out:
  if (fd >= 0)
    close(fd);
  if (rc < 0) {
    unlink(tmp);
    nn_error("tsdb", "cannot write WAL checkpoint %s: %s", final, nn_strerror(rc));
  }
  return rc;
}

static void *writer_main(void *arg)
{
  struct nn__tsdb_wal *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->stop && !w->sync_req && !w->ckpt_req && w->pending.len == 0)
      pthread_cond_wait(&w->work, &w->mu);
    if (w->pending.len == 0) {
      if (w->ckpt_req) {
        struct nn_buf snap = w->ckpt;
        uint32_t seg = w->ckpt_seg;
        nn_buf_init(&w->ckpt, 0);
        pthread_mutex_unlock(&w->mu);
        int rc = write_checkpoint(w, &snap, seg);
        pthread_mutex_lock(&w->mu);
        if (rc < 0)
          w->ckpt_failures++;
        else
          w->checkpoints++;
        w->ckpt_bytes = snap.len;
        w->ckpt_req = false;
        nn_buf_fini(&snap);
      }
      /* A kick that came in while the checkpoint was written is for the data committed
       * meanwhile: keep it, so that data is written now, not after the interval. */
      if (w->pending.len == 0)
        w->sync_req = false;
      pthread_cond_broadcast(&w->done);
      if (w->stop)
        break;
      continue;
    }
    int64_t deadline = w->pending_since + w->interval_ns;
    struct timespec ts = {(time_t)(deadline / 1000000000), (long)(deadline % 1000000000)};
    while (!w->stop && !w->sync_req && !w->ckpt_req && w->pending.len < w->flush_bytes) {
      if (pthread_cond_timedwait(&w->work, &w->mu, &ts) == ETIMEDOUT)
        break;
    }
    struct nn_buf tmp = w->pending;
    w->pending = w->writing;
    w->writing = tmp;
    uint64_t start = w->durable, target = w->appended;
    bool rotate = w->rotate_req;
    w->rotate_req = false;
    if (!w->ckpt_req)
      w->sync_req = false;
    pthread_mutex_unlock(&w->mu);

    double fsync_s;
    int rc = write_batch(w, (const uint8_t *)w->writing.data, w->writing.len, rotate, &fsync_s);
    size_t written = w->writing.len;
    nn_buf_reset(&w->writing);

    pthread_mutex_lock(&w->mu);
    w->durable = target;
    if (rc < 0) {
      w->write_failures++;
      if (!w->fail_status || start < w->fail_lo)
        w->fail_lo = start;
      w->fail_hi = target;
      w->fail_status = rc;
    } else {
      w->bytes_written += written;
      if (fsync_s >= 0) {
        w->fsyncs++;
        w->fsync_seconds += fsync_s;
        for (int b = 0; b < NN_TSDB_FSYNC_BUCKETS; b++)
          if (fsync_s <= nn_tsdb_fsync_bucket_bounds[b])
            w->fsync_buckets[b]++;
      }
    }
    pthread_cond_broadcast(&w->done);
    pthread_mutex_unlock(&w->mu);
    nn__tsdb_wake(w->db);
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

int nn__tsdb_wal_seal(struct nn__tsdb_wal *w, uint32_t *first_uncovered)
{
  int rc = nn__tsdb_wal_sync(w);
  if (rc < 0)
    return rc;
  pthread_mutex_lock(&w->mu);
  /* The writer is idle (everything logged is written, and only this thread logs), so
   * its segment fields are stable. */
  if (w->fd >= 0) {
    *first_uncovered = w->seg + 1;
    w->rotate_req = true;
  } else {
    *first_uncovered = w->seg;
  }
  pthread_mutex_unlock(&w->mu);
  return 0;
}

int nn__tsdb_wal_checkpoint(struct nn__tsdb_wal *w, struct nn_buf *snap, uint32_t seg)
{
  pthread_mutex_lock(&w->mu);
  int rc = 0;
  if (w->ckpt_req || w->stop) {
    rc = NN_EAGAIN;
  } else {
    w->ckpt = *snap;
    nn_buf_init(snap, snap->max);
    w->ckpt_seg = seg;
    w->ckpt_req = true;
    pthread_cond_signal(&w->work);
  }
  pthread_mutex_unlock(&w->mu);
  return rc;
}

int nn__tsdb_wal_log(struct nn__tsdb_wal *w, const void *p, size_t n)
{
  int rc;
  pthread_mutex_lock(&w->mu);
  if (w->stop) {
    rc = NN_EIO;
    goto out;
  }
  bool was_empty = w->pending.len == 0;
  if ((rc = nn_buf_append(&w->pending, p, n)) < 0) {
    if (rc == NN_ETOOBIG)
      rc = n > w->pending.max ? NN_ETOOBIG : NN_EAGAIN;
    goto out;
  }
  w->appended += n;
  if (was_empty)
    w->pending_since = now_ns();
  /* The writer sleeps with nothing pending, or until the deadline: wake it to start the
   * clock, or when the batch is big enough to go now. */
  if (was_empty || (w->pending.len >= w->flush_bytes && w->pending.len - n < w->flush_bytes))
    pthread_cond_signal(&w->work);
out:
  pthread_mutex_unlock(&w->mu);
  return rc;
}

uint64_t nn__tsdb_wal_appended(struct nn__tsdb_wal *w)
{
  pthread_mutex_lock(&w->mu);
  uint64_t a = w->appended;
  pthread_mutex_unlock(&w->mu);
  return a;
}

void nn__tsdb_wal_kick(struct nn__tsdb_wal *w)
{
  pthread_mutex_lock(&w->mu);
  if (w->pending.len) {
    w->sync_req = true;
    pthread_cond_signal(&w->work);
  }
  pthread_mutex_unlock(&w->mu);
}

int nn__tsdb_wal_sync(struct nn__tsdb_wal *w)
{
  pthread_mutex_lock(&w->mu);
  uint64_t target = w->appended;
  int rc = 0;
  if (!w->started) {
    rc = NN_EIO;
  } else if (w->durable < target || w->ckpt_req) {
    w->sync_req = true;
    pthread_cond_signal(&w->work);
    while (w->durable < target || w->ckpt_req)
      pthread_cond_wait(&w->done, &w->mu);
  }
  if (rc == 0 && w->fail_status && w->fail_hi > 0)
    rc = w->fail_status;
  pthread_mutex_unlock(&w->mu);
  return rc;
}

void nn__tsdb_wal_progress(struct nn__tsdb_wal *w, uint64_t *durable, uint64_t *fail_lo,
                           uint64_t *fail_hi, int *fail_status)
{
  pthread_mutex_lock(&w->mu);
  *durable = w->durable;
  *fail_lo = w->fail_lo;
  *fail_hi = w->fail_hi;
  *fail_status = w->fail_status;
  w->fail_lo = w->fail_hi = 0;
  w->fail_status = 0;
  pthread_mutex_unlock(&w->mu);
}

void nn__tsdb_wal_stats(struct nn__tsdb_wal *w, struct nn_tsdb_stats *out)
{
  pthread_mutex_lock(&w->mu);
  out->wal_bytes_written_total = w->bytes_written;
  out->wal_fsyncs_total = w->fsyncs;
  out->wal_fsync_seconds_total = w->fsync_seconds;
  memcpy(out->wal_fsync_buckets, w->fsync_buckets, sizeof(out->wal_fsync_buckets));
  out->wal_write_failures_total = w->write_failures;
  out->wal_pending_bytes = w->pending.len;
  out->wal_segment_current = w->seg_current;
  out->wal_checkpoints_total = w->checkpoints;
  out->wal_checkpoint_failures_total = w->ckpt_failures;
  out->wal_checkpoint_bytes = w->ckpt_bytes;
  out->wal_segments_removed_total = w->segs_removed;
  pthread_mutex_unlock(&w->mu);
}

int nn__tsdb_wal_open(struct nn_tsdb *db, const char *dir, const struct nn__tsdb_wal_visitor *v,
                      struct nn__tsdb_wal **out)
{
  int rc = 0;
  struct nn__tsdb_wal *w = calloc(1, sizeof(*w));
  if (!w)
    return NN_ENOMEM;
  w->db = db;
  w->fd = -1;
  w->segment_bytes = db->opt.wal_segment_bytes;
  w->flush_bytes = db->opt.wal_flush_bytes;
  w->interval_ns = (int64_t)db->opt.wal_flush_interval_ms * 1000000;
  w->fsync = db->opt.wal_fsync;
  w->retain = db->opt.wal_retain;
  w->retain_from = db->opt.wal_retain_from;
  nn_buf_init(&w->pending, db->opt.wal_max_pending_bytes);
  nn_buf_init(&w->writing, db->opt.wal_max_pending_bytes);
  pthread_mutex_init(&w->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->work, &ca);
  pthread_cond_init(&w->done, &ca);
  pthread_condattr_destroy(&ca);
  size_t dl = strlen(dir) + 5;
  if (!(w->dir = malloc(dl))) {
    rc = NN_ENOMEM;
    goto out;
  }
  snprintf(w->dir, dl, "%s/wal", dir);
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
    rc = NN_ERRNO(errno);
    nn_error("tsdb", "cannot create data directory %s: %s", dir, nn_strerror(rc));
    goto out;
  }
  if (mkdir(w->dir, 0755) < 0 && errno != EEXIST) {
    rc = NN_ERRNO(errno);
    nn_error("tsdb", "cannot create WAL directory %s: %s", w->dir, nn_strerror(rc));
    goto out;
  }
  if ((rc = replay(w, v)) < 0) {
    nn_error("tsdb", "cannot read WAL directory %s: %s", w->dir, nn_strerror(rc));
    goto out;
  }
  w->seg_current = w->seg;
  if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
    rc = NN_ENOMEM;
    goto out;
  }
  w->started = true;
out:
  if (rc < 0) {
    nn__tsdb_wal_close(w);
    return rc;
  }
  *out = w;
  return 0;
}

void nn__tsdb_wal_retain(struct nn__tsdb_wal *w, bool on, uint32_t from)
{
  pthread_mutex_lock(&w->mu);
  w->retain = on;
  w->retain_from = from;
  pthread_mutex_unlock(&w->mu);
}

void nn__tsdb_wal_close(struct nn__tsdb_wal *w)
{
  if (!w)
    return;
  if (w->started) {
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
  }
  if (w->fd >= 0)
    close(w->fd);
  nn_buf_fini(&w->pending);
  nn_buf_fini(&w->writing);
  nn_buf_fini(&w->ckpt);
  pthread_cond_destroy(&w->work);
  pthread_cond_destroy(&w->done);
  pthread_mutex_destroy(&w->mu);
  free(w->dir);
  free(w);
}
