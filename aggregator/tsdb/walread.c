/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the WAL while the store writes it, for remote write's per-destination tailers
 * (Prometheus's WAL watcher): whole checksummed records from a (segment, offset)
 * position, the segment change once a later segment exists, and decoders for series and
 * samples records. Reads with pread(2) on the caller's thread; records are at most 64 MiB. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator/tsdb/internal.h"
#include "common/log.h"

_Static_assert((int)NN_TSDB_WAL_SERIES == (int)NN__TSDB_REC_SERIES &&
                   (int)NN_TSDB_WAL_SAMPLES == (int)NN__TSDB_REC_SAMPLES &&
                   (int)NN_TSDB_WAL_CHUNKS == (int)NN__TSDB_REC_CHUNKS,
               "public and internal record types agree");

#define CKPT_PREFIX "checkpoint."

struct nn_tsdb_wal_reader {
  char *dir; /* <data_dir>/wal */
  uint32_t seg;
  uint64_t off;
  int fd; /* of seg, or -1 */
  uint8_t *buf;
  size_t cap;
  struct nn_tsdb_wal_reader_stats st;
};

static uint32_t get_le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool parse_u32(const char *s, uint32_t *out)
{
  size_t l = strlen(s);
  if (l == 0 || l > 9 || strspn(s, "0123456789") != l)
    return false;
  *out = (uint32_t)strtoul(s, NULL, 10);
  return true;
}

static int join_wal(const char *data_dir, char **out)
{
  size_t l = strlen(data_dir) + 5;
  char *d = malloc(l);
  if (!d)
    return NN_ENOMEM;
  snprintf(d, l, "%s/wal", data_dir);
  *out = d;
  return 0;
}

/* Scans the WAL directory: segment range, count, newest checkpoint, and the smallest
 * segment number above after (UINT32_MAX-safe: *next_found says whether one exists). */
struct scan {
  uint32_t first, last;
  size_t n;
  int64_t ckpt;
  uint32_t after, next;
  bool next_found;
  uint64_t bytes_from; /* total size of segments >= after (when sizes is set) */
  bool sizes;
};

static int scan_dir(const char *dir, struct scan *sc)
{
  DIR *d = opendir(dir);
  if (!d)
    return NN_ERRNO(errno);
  struct dirent *e;
  uint32_t num;
  sc->n = 0;
  sc->ckpt = -1;
  sc->next_found = false;
  sc->bytes_from = 0;
  while ((e = readdir(d))) {
    const char *nm = e->d_name;
    if (strncmp(nm, CKPT_PREFIX, strlen(CKPT_PREFIX)) == 0) {
      if (parse_u32(nm + strlen(CKPT_PREFIX), &num) && (int64_t)num > sc->ckpt)
        sc->ckpt = num;
      continue;
    }
    if (!parse_u32(nm, &num))
      continue;
    if (sc->n == 0 || num < sc->first)
      sc->first = num;
    if (sc->n == 0 || num > sc->last)
      sc->last = num;
    sc->n++;
    if (num > sc->after && (!sc->next_found || num < sc->next)) {
      sc->next = num;
      sc->next_found = true;
    }
    struct stat sb;
    if (sc->sizes && num >= sc->after && fstatat(dirfd(d), nm, &sb, 0) == 0)
      sc->bytes_from += (uint64_t)sb.st_size;
  }
  closedir(d);
  return 0;
}

int nn_tsdb_wal_bounds(const char *data_dir, uint32_t *first, uint32_t *last, size_t *nsegments,
                       uint64_t *last_size, int64_t *checkpoint)
{
  char *dir;
  int rc = join_wal(data_dir, &dir);
  if (rc < 0)
    return rc;
  struct scan sc = {0};
  if ((rc = scan_dir(dir, &sc)) < 0) {
    free(dir);
    return rc;
  }
  *first = sc.n ? sc.first : 0;
  *last = sc.n ? sc.last : 0;
  *nsegments = sc.n;
  *checkpoint = sc.ckpt;
  *last_size = 0;
  if (sc.n) {
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/" NN__TSDB_WAL_SEG_FMT, dir, sc.last);
    if (stat(path, &sb) == 0)
      *last_size = (uint64_t)sb.st_size;
  }
  free(dir);
  return 0;
}

uint64_t nn_tsdb_wal_bytes_from(const char *data_dir, uint32_t from)
{
  char *dir;
  if (join_wal(data_dir, &dir) < 0)
    return 0;
  struct scan sc = {.after = from, .sizes = true};
  uint64_t b = scan_dir(dir, &sc) == 0 ? sc.bytes_from : 0;
  free(dir);
  return b;
}

int nn_tsdb_wal_reader_open(const char *data_dir, uint32_t segment, uint64_t offset,
                            struct nn_tsdb_wal_reader **out)
{
  struct nn_tsdb_wal_reader *r = calloc(1, sizeof(*r));
  if (!r || join_wal(data_dir, &r->dir) < 0) {
    free(r);
    return NN_ENOMEM;
  }
  r->seg = segment;
  r->off = offset;
  r->fd = -1;
  *out = r;
  return 0;
}

void nn_tsdb_wal_reader_close(struct nn_tsdb_wal_reader *r)
{
  if (!r)
    return;
  if (r->fd >= 0)
    close(r->fd);
  free(r->buf);
  free(r->dir);
  free(r);
}

void nn_tsdb_wal_reader_position(const struct nn_tsdb_wal_reader *r, uint32_t *segment,
                                 uint64_t *offset)
{
  *segment = r->seg;
  *offset = r->off;
}

void nn_tsdb_wal_reader_stats(const struct nn_tsdb_wal_reader *r,
                              struct nn_tsdb_wal_reader_stats *out)
{
  *out = r->st;
}

/* Reads exactly n bytes at off: 1, 0 when the file is shorter, <0 on error. */
static int read_at(int fd, void *p, size_t n, uint64_t off)
{
  size_t done = 0;
  while (done < n) {
    ssize_t k = pread(fd, (char *)p + done, n - done, (off_t)(off + done));
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return NN_ERRNO(errno);
    if (k == 0)
      return 0;
    done += (size_t)k;
  }
  return 1;
}

/* One record at r->off: 1 read, 0 not (yet) whole, 2 damaged, <0 error. */
static int read_record(struct nn_tsdb_wal_reader *r, struct nn_tsdb_wal_record *rec)
{
  uint8_t h[NN__TSDB_REC_HDR];
  int rc = read_at(r->fd, h, sizeof(h), r->off);
  if (rc <= 0)
    return rc;
  uint32_t len = get_le32(h + 1);
  if (h[0] < NN__TSDB_REC_SERIES || h[0] > NN__TSDB_REC_CHUNKS || len > NN__TSDB_REC_MAX)
    return 2;
  if (r->cap < len || !r->buf) {
    size_t nc = len < 4096 ? 4096 : len;
    uint8_t *nb = realloc(r->buf, nc);
    if (!nb)
      return NN_ENOMEM;
    r->buf = nb;
    r->cap = nc;
  }
  if ((rc = read_at(r->fd, r->buf, len, r->off + sizeof(h))) <= 0)
    return rc;
  uint32_t crc = nn__tsdb_crc32c(0, h, 5);
  crc = nn__tsdb_crc32c(crc, r->buf, len);
  if (crc != get_le32(h + 5))
    return 2;
  rec->type = h[0];
  rec->data = r->buf;
  rec->len = len;
  rec->segment = r->seg;
  rec->offset = r->off;
  rec->end = r->off + sizeof(h) + len;
  return 1;
}

/* Whether a segment after r->seg exists, and the first one. */
static int later_segment(struct nn_tsdb_wal_reader *r, bool *found, uint32_t *next)
{
  char path[4200];
  struct stat sb;
  snprintf(path, sizeof(path), "%s/" NN__TSDB_WAL_SEG_FMT, r->dir, r->seg + 1);
  if (stat(path, &sb) == 0) {
    *found = true;
    *next = r->seg + 1;
    return 0;
  }
  struct scan sc = {.after = r->seg};
  int rc = scan_dir(r->dir, &sc);
  if (rc < 0)
    return rc;
  *found = sc.next_found;
  *next = sc.next;
  return 0;
}

static void move_to(struct nn_tsdb_wal_reader *r, uint32_t seg)
{
  if (r->fd >= 0)
    close(r->fd);
  r->fd = -1;
  r->seg = seg;
  r->off = 0;
}

int nn_tsdb_wal_reader_next(struct nn_tsdb_wal_reader *r, struct nn_tsdb_wal_record *rec)
{
  char path[4200];
  bool found;
  uint32_t next;
  int rc;
  for (;;) {
    if (r->fd < 0) {
      snprintf(path, sizeof(path), "%s/" NN__TSDB_WAL_SEG_FMT, r->dir, r->seg);
      r->fd = open(path, O_RDONLY | O_CLOEXEC);
      if (r->fd < 0) {
        if (errno != ENOENT)
          return NN_ERRNO(errno);
        /* Not written yet, or deleted under us: only a later segment tells which. */
        if ((rc = later_segment(r, &found, &next)) < 0)
          return rc;
        if (!found)
          return 0;
        r->st.segments_skipped += next - r->seg;
        nn_warn("tsdb", "WAL reader: segments %u..%u are gone; continuing at %u", r->seg, next - 1,
                next);
        move_to(r, next);
        continue;
      }
    }
    /* A segment is final once a later one exists (the writer never goes back), so that
     * is checked before the last read: whatever the read then misses is damage. */
    bool sealed = false;
    for (int attempt = 0; attempt < 2; attempt++) {
      rc = read_record(r, rec);
      if (rc < 0)
        return rc;
      if (rc == 1) {
        r->off = rec->end;
        r->st.records++;
        return 1;
      }
      if (attempt == 1)
        break;
      if ((rc = later_segment(r, &found, &next)) < 0)
        return rc;
      if (!found)
        return 0; /* the live segment: the rest is still being written */
      sealed = true;
    }
    if (sealed) {
      struct stat sb;
      if (fstat(r->fd, &sb) == 0 && (uint64_t)sb.st_size > r->off) {
        uint64_t cut = (uint64_t)sb.st_size - r->off;
        r->st.damaged++;
        r->st.damaged_bytes += cut;
        nn_warn("tsdb", "WAL reader: damaged tail skipped: segment=%u offset=%llu bytes=%llu",
                r->seg, (unsigned long long)r->off, (unsigned long long)cut);
      }
      if (next > r->seg + 1) {
        r->st.segments_skipped += next - r->seg - 1;
        nn_warn("tsdb", "WAL reader: segments %u..%u are gone; continuing at %u", r->seg + 1,
                next - 1, next);
      }
      move_to(r, next);
    }
  }
}

struct series_adapter {
  nn_tsdb_wal_series_fn fn;
  void *ctx;
  int rc;
};

static void on_series(void *ctx, uint64_t ref, const struct nn_label *ls, size_t n)
{
  struct series_adapter *a = ctx;
  if (a->rc == 0)
    a->rc = a->fn(a->ctx, ref, ls, n);
}

int nn_tsdb_wal_series_decode(const uint8_t *p, size_t len, nn_tsdb_wal_series_fn fn, void *ctx)
{
  struct series_adapter a = {fn, ctx, 0};
  struct nn__tsdb_wal_visitor v = {.ctx = &a, .series = on_series};
  int rc = nn__tsdb_wal_decode(NN__TSDB_REC_SERIES, p, len, &v);
  return a.rc < 0 ? a.rc : rc;
}

int nn_tsdb_wal_checkpoint_series(const char *data_dir, uint32_t checkpoint,
                                  nn_tsdb_wal_series_fn fn, void *ctx)
{
  struct nn_tsdb_wal_reader *r;
  int rc = nn_tsdb_wal_reader_open(data_dir, 0, 0, &r);
  if (rc < 0)
    return rc;
  char path[4200];
  snprintf(path, sizeof(path), "%s/" CKPT_PREFIX NN__TSDB_WAL_SEG_FMT, r->dir, checkpoint);
  r->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (r->fd < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  struct nn_tsdb_wal_record rec;
  while ((rc = read_record(r, &rec)) == 1) {
    r->off = rec.end;
    if (rec.type == NN__TSDB_REC_SERIES &&
        (rc = nn_tsdb_wal_series_decode(rec.data, rec.len, fn, ctx)) < 0)
      goto out;
  }
  rc = rc < 0 ? rc : 0;
out:
  nn_tsdb_wal_reader_close(r);
  return rc;
}

int nn_tsdb_wal_samples_init(struct nn_tsdb_wal_samples *it, const uint8_t *p, size_t len)
{
  it->p = p;
  it->end = p + len;
  if (!nn__tsdb_get_uvarint(&it->p, it->end, &it->base_ref) ||
      !nn__tsdb_get_varint(&it->p, it->end, &it->base_t))
    return NN_ECORRUPT;
  return 0;
}

int nn_tsdb_wal_samples_next(struct nn_tsdb_wal_samples *it, uint64_t *ref, int64_t *t, double *v)
{
  if (it->p >= it->end)
    return 0;
  int64_t dref, dt;
  if (!nn__tsdb_get_varint(&it->p, it->end, &dref) || !nn__tsdb_get_varint(&it->p, it->end, &dt) ||
      it->end - it->p < 8) {
    it->p = it->end;
    return NN_ECORRUPT;
  }
  uint64_t bits = 0;
  for (int k = 7; k >= 0; k--)
    bits = bits << 8 | it->p[k];
  it->p += 8;
  memcpy(v, &bits, sizeof(*v));
  *ref = it->base_ref + (uint64_t)dref;
  *t = (int64_t)((uint64_t)it->base_t + (uint64_t)dt);
  return 1;
}
