/* SPDX-License-Identifier: Apache-2.0 */
/* Persisted blocks: an immutable directory per time range holding a chunks file (XOR
 * chunks with CRC32C), an index (symbols, series, postings, postings table, TOC) and
 * meta.json. This file writes them from a head snapshot (off the loop) and reads them
 * through read-only mappings. docs/format/block.md and docs/format/index.md have the
 * layouts; every decoder here is bounds-checked, since the bytes come from disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator/tsdb/internal.h"
#include "common/log.h"

#define INDEX_MAGIC     0x49424e4eu /* "NNBI" on disk */
#define CHUNKS_MAGIC    0x43424e4eu /* "NNBC" on disk */
#define FORMAT_VERSION  1           /* index and meta.json */
#define CHUNKS_VERSION  2 /* 2: an encoding byte starts each chunk; 1 (all XOR) still read */
#define HEADER_LEN      8
#define TOC_SECTIONS    4
#define TOC_LEN         (TOC_SECTIONS * 20 + 8 + 4)
#define META_MAX_BYTES  (64u << 10)
#define PATH_MAX_BYTES  4096
#define WRITE_BUF_BYTES (1u << 20)

/* ---- little-endian helpers ---- */

static uint32_t get32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int put32(struct nn_buf *b, uint32_t x)
{
  uint8_t le[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};
  return nn_buf_append(b, le, 4);
}

static int put64(struct nn_buf *b, uint64_t x)
{
  int rc = put32(b, (uint32_t)x);
  return rc < 0 ? rc : put32(b, (uint32_t)(x >> 32));
}

static int put_header(struct nn_buf *b, uint32_t magic, uint32_t version)
{
  int rc = put32(b, magic);
  return rc < 0 ? rc : put32(b, version);
}

/* ---- index reader ---- */

const char *nn__tsdb_bindex_sym(const struct nn__tsdb_bindex *ix, uint32_t id)
{
  if (id >= ix->nsym)
    return NULL;
  return (const char *)ix->sym_data + get32(ix->sym_offs + 4 * (size_t)id);
}

void nn__tsdb_bindex_pair(const struct nn__tsdb_bindex *ix, uint32_t i, uint32_t *name,
                          uint32_t *value, uint32_t *off)
{
  const uint8_t *e = ix->ptable + 12 * (size_t)i;
  *name = get32(e);
  *value = get32(e + 4);
  *off = get32(e + 8);
}

/* Symbols are sorted, so a string's id is found by binary search. */
static bool find_sym(const struct nn__tsdb_bindex *ix, const char *s, uint32_t *id)
{
  uint32_t lo = 0, hi = ix->nsym;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = strcmp(nn__tsdb_bindex_sym(ix, mid), s);
    if (c == 0) {
      *id = mid;
      return true;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return false;
}

/* First postings-table entry whose key is >= (name, value). */
static uint32_t ptable_lower(const struct nn__tsdb_bindex *ix, uint32_t name, uint32_t value)
{
  uint64_t key = (uint64_t)name << 32 | value;
  uint32_t lo = 0, hi = ix->npairs;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const uint8_t *e = ix->ptable + 12 * (size_t)mid;
    if (((uint64_t)get32(e) << 32 | get32(e + 4)) < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

bool nn__tsdb_bindex_name_range(const struct nn__tsdb_bindex *ix, const char *s, uint32_t *lo,
                                uint32_t *hi)
{
  uint32_t name;
  if (!find_sym(ix, s, &name))
    return false;
  *lo = ptable_lower(ix, name, 0);
  *hi = name == UINT32_MAX ? ix->npairs : ptable_lower(ix, name + 1, 0);
  return *lo < *hi;
}

static int check_symbols(struct nn__tsdb_bindex *ix, const uint8_t *p, size_t len)
{
  if (len < 4)
    return NN_ECORRUPT;
  uint32_t n = get32(p);
  if (n > (len - 4) / 4)
    return NN_ECORRUPT;
  ix->nsym = n;
  ix->sym_offs = p + 4;
  ix->sym_data = p + 4 + 4 * (size_t)n;
  ix->sym_data_len = len - 4 - 4 * (size_t)n;
  if (ix->sym_data_len > UINT32_MAX)
    return NN_ECORRUPT;
  /* Each string ends with the NUL just before the next one starts, and they ascend. */
  uint32_t prev_end = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t off = get32(ix->sym_offs + 4 * (size_t)i);
    size_t e = i + 1 < n ? get32(ix->sym_offs + 4 * (size_t)(i + 1)) : ix->sym_data_len;
    if (off != prev_end || e <= off || e > ix->sym_data_len)
      return NN_ECORRUPT;
    if (memchr(ix->sym_data + off, 0, e - off) != ix->sym_data + e - 1)
      return NN_ECORRUPT;
    if (i && strcmp(nn__tsdb_bindex_sym(ix, i - 1), nn__tsdb_bindex_sym(ix, i)) >= 0)
      return NN_ECORRUPT;
    prev_end = (uint32_t)e;
  }
  return prev_end == ix->sym_data_len ? 0 : NN_ECORRUPT;
}

static int check_ptable(struct nn__tsdb_bindex *ix, const uint8_t *p, size_t len)
{
  if (len < 4)
    return NN_ECORRUPT;
  uint32_t n = get32(p);
  if ((size_t)n * 12 != len - 4)
    return NN_ECORRUPT;
  ix->ptable = p + 4;
  ix->npairs = n;
  uint64_t prev = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t name, value, off;
    nn__tsdb_bindex_pair(ix, i, &name, &value, &off);
    uint64_t key = (uint64_t)name << 32 | value;
    if (name >= ix->nsym || value >= ix->nsym || off >= ix->postings_len || (i && key <= prev))
      return NN_ECORRUPT;
    prev = key;
  }
  return 0;
}

int nn__tsdb_bindex_init(struct nn__tsdb_bindex *ix, const uint8_t *p, size_t len)
{
  memset(ix, 0, sizeof(*ix));
  if (len < HEADER_LEN + TOC_LEN || get32(p) != INDEX_MAGIC || get32(p + 4) != FORMAT_VERSION)
    return NN_ECORRUPT;
  const uint8_t *toc = p + len - TOC_LEN;
  if (nn__tsdb_crc32c(0, toc, TOC_LEN - 4) != get32(toc + TOC_LEN - 4))
    return NN_ECORRUPT;
  const uint8_t *sec[TOC_SECTIONS];
  size_t seclen[TOC_SECTIONS];
  uint64_t at = HEADER_LEN, limit = len - TOC_LEN;
  /* Sections follow each other in order, inside the file, each under its own CRC. */
  for (int i = 0; i < TOC_SECTIONS; i++) {
    const uint8_t *e = toc + 20 * i;
    uint64_t off = get64(e), n = get64(e + 8);
    if (off != at || n > limit - off)
      return NN_ECORRUPT;
    if (nn__tsdb_crc32c(0, p + off, n) != get32(e + 16))
      return NN_ECORRUPT;
    sec[i] = p + off;
    seclen[i] = n;
    at = off + n;
  }
  if (at != limit)
    return NN_ECORRUPT;
  ix->chunks_len = get64(toc + 20 * TOC_SECTIONS);
  ix->series = sec[1];
  ix->series_len = seclen[1];
  ix->postings = sec[2];
  ix->postings_len = seclen[2];
  if (ix->postings_len == 0 || ix->postings_len > UINT32_MAX)
    return NN_ECORRUPT;
  int rc = check_symbols(ix, sec[0], seclen[0]);
  if (rc == 0)
    rc = check_ptable(ix, sec[3], seclen[3]);
  return rc;
}

/* Appends the postings list at offset off to out. */
static int read_postings(const struct nn__tsdb_bindex *ix, uint64_t off, struct nn__tsdb_refs *out)
{
  if (off >= ix->postings_len)
    return NN_ECORRUPT;
  const uint8_t *q = ix->postings + off, *end = ix->postings + ix->postings_len;
  uint64_t n, ref = 0, d;
  if (!nn__tsdb_get_uvarint(&q, end, &n) || n > (uint64_t)(end - q))
    return NN_ECORRUPT; /* every entry takes a byte at least: the size is bounded */
  int rc = nn__tsdb_refs_reserve(out, (size_t)n);
  if (rc < 0)
    return rc;
  for (uint64_t i = 0; i < n; i++) {
    if (!nn__tsdb_get_uvarint(&q, end, &d) || (i && d == 0) || d > ix->series_len - ref)
      return NN_ECORRUPT;
    ref += d;
    if (ref >= ix->series_len)
      return NN_ECORRUPT;
    out->v[out->n++] = ref;
  }
  return 0;
}

static int bindex_collect(void *ctx, const struct nn_matcher *m, bool want,
                          struct nn__tsdb_refs *out)
{
  const struct nn__tsdb_bindex *ix = ctx;
  uint32_t lo, hi, name, value, off;
  if (!nn__tsdb_bindex_name_range(ix, m->name, &lo, &hi))
    return 0;
  if ((m->type == NN_MATCH_EQ && want) || (m->type == NN_MATCH_NE && !want)) {
    nn__tsdb_bindex_pair(ix, lo, &name, &value, &off);
    if (!find_sym(ix, m->value, &value))
      return 0;
    uint32_t i = ptable_lower(ix, name, value);
    if (i >= hi)
      return 0;
    uint32_t n2, v2;
    nn__tsdb_bindex_pair(ix, i, &n2, &v2, &off);
    return v2 == value ? read_postings(ix, off, out) : 0;
  }
  size_t lists = 0;
  for (uint32_t i = lo; i < hi; i++) {
    nn__tsdb_bindex_pair(ix, i, &name, &value, &off);
    if (nn_matcher_matches(m, nn__tsdb_bindex_sym(ix, value)) != want)
      continue;
    int rc = read_postings(ix, off, out);
    if (rc < 0)
      return rc;
    lists++;
  }
  if (lists > 1)
    nn__tsdb_refs_sort_unique(out);
  return 0;
}

static int bindex_all(void *ctx, struct nn__tsdb_refs *out)
{
  return read_postings(ctx, 0, out);
}

int nn__tsdb_bindex_select(const struct nn__tsdb_bindex *ix, const struct nn_matcher *ms,
                           size_t nms, uint64_t **out, size_t *n)
{
  struct nn__tsdb_postings_src src = {(void *)ix, bindex_collect, bindex_all, NULL, NULL};
  return nn__tsdb_postings_select(&src, ms, nms, out, n);
}

int nn__tsdb_bindex_series(const struct nn__tsdb_bindex *ix, uint64_t ref,
                           struct nn__tsdb_bseries *out)
{
  if (ref >= ix->series_len)
    return NN_ECORRUPT;
  const uint8_t *q = ix->series + ref, *end = ix->series + ix->series_len;
  uint64_t nl, nc, x, y, z;
  if (!nn__tsdb_get_uvarint(&q, end, &nl) || nl == 0 || nl > NN__TSDB_MAX_LABELS)
    return NN_ECORRUPT;
  for (uint64_t i = 0; i < 2 * nl; i++) {
    if (!nn__tsdb_get_uvarint(&q, end, &x) || x >= ix->nsym)
      return NN_ECORRUPT;
    out->syms[i] = (uint32_t)x;
  }
  out->nlabels = (uint32_t)nl;
  if (!nn__tsdb_get_uvarint(&q, end, &nc) || nc == 0 || nc > (uint64_t)(end - q) / 3)
    return NN_ECORRUPT;
  if (nc > out->cap) {
    struct nn__tsdb_bchunk *c = realloc(out->chunks, nc * sizeof(*c));
    if (!c)
      return NN_ENOMEM;
    out->chunks = c;
    out->cap = (uint32_t)nc;
  }
  int64_t prev_maxt = 0;
  uint64_t prev_ref = 0;
  for (uint64_t i = 0; i < nc; i++) {
    int64_t mint;
    if (i == 0) {
      if (!nn__tsdb_get_varint(&q, end, &mint))
        return NN_ECORRUPT;
    } else {
      if (!nn__tsdb_get_uvarint(&q, end, &x) || x == 0 ||
          x > (uint64_t)INT64_MAX - (uint64_t)prev_maxt)
        return NN_ECORRUPT;
      mint = (int64_t)((uint64_t)prev_maxt + x);
    }
    /* INT64_MAX - t computed unsigned is the room above t, whatever t's sign. */
    if (!nn__tsdb_get_uvarint(&q, end, &y) || y > (uint64_t)INT64_MAX - (uint64_t)mint ||
        !nn__tsdb_get_uvarint(&q, end, &z) || (i && z == 0) || z > UINT64_MAX - prev_ref)
      return NN_ECORRUPT;
    struct nn__tsdb_bchunk *c = &out->chunks[i];
    c->mint = mint;
    c->maxt = (int64_t)((uint64_t)mint + y);
    c->ref = prev_ref + z;
    prev_maxt = c->maxt;
    prev_ref = c->ref;
  }
  out->nchunks = (uint32_t)nc;
  return 0;
}

int nn__tsdb_bchunk_read(const uint8_t *p, size_t len, uint64_t ref, const uint8_t **data,
                         size_t *n)
{
  if (ref < HEADER_LEN || ref >= len)
    return NN_ECORRUPT;
  const uint8_t *q = p + ref, *end = p + len;
  uint64_t k;
  if (!nn__tsdb_get_uvarint(&q, end, &k) || k < 2 || k > NN__TSDB_REC_MAX ||
      (uint64_t)(end - q) < k + 4)
    return NN_ECORRUPT;
  if (nn__tsdb_crc32c(0, q, (size_t)k) != get32(q + k))
    return NN_ECORRUPT;
  *data = q;
  *n = (size_t)k;
  return 0;
}

/* ---- block open / close ---- */

static int map_file(const char *path, uint8_t **out, size_t *len)
{
  *out = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NN_ERRNO(errno);
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  if (st.st_size < HEADER_LEN) {
    rc = NN_ECORRUPT;
    goto out;
  }
  void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  *out = m;
  *len = (size_t)st.st_size;
out:
  close(fd);
  return rc;
}

static int read_meta(struct nn__tsdb_block *b, const char *path)
{
  char buf[META_MAX_BYTES];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NN_ERRNO(errno);
  ssize_t k = read(fd, buf, sizeof(buf));
  close(fd);
  if (k < 0)
    return NN_ERRNO(errno);
  if ((size_t)k == sizeof(buf))
    return NN_ETOOBIG;
  json_error_t err;
  json_t *j = json_loadb(buf, (size_t)k, 0, &err);
  if (!j)
    return NN_ECORRUPT;
  int rc = NN_ECORRUPT;
  json_int_t version = 0, mint = 0, maxt = 0, series = 0, samples = 0, chunks = 0;
  if (json_unpack(j, "{s:I, s:I, s:I, s:{s:I, s:I, s:I}}", "version", &version, "mint", &mint,
                  "maxt", &maxt, "stats", "series", &series, "samples", &samples, "chunks",
                  &chunks) == 0 &&
      version == FORMAT_VERSION && mint < maxt && series >= 0 && samples >= 0 && chunks >= 0) {
    b->mint = mint;
    b->maxt = maxt;
    b->nseries = (uint64_t)series;
    b->nsamples = (uint64_t)samples;
    b->nchunks = (uint64_t)chunks;
    b->bytes = (uint64_t)k;
    rc = 0;
  }
  json_decref(j);
  return rc;
}

void nn__tsdb_block_close(struct nn__tsdb_block *b)
{
  if (!b)
    return;
  if (b->imap)
    munmap(b->imap, b->ilen);
  if (b->cmap)
    munmap(b->cmap, b->clen);
  free(b->path);
  free(b->name);
  free(b);
}

int nn__tsdb_block_open(const char *path, const char *name, struct nn__tsdb_block **out)
{
  char p[PATH_MAX_BYTES];
  const char *what = "meta.json";
  int rc = 0;
  struct nn__tsdb_block *b = calloc(1, sizeof(*b));
  if (!b)
    return NN_ENOMEM;
  if (!(b->path = strdup(path)) || !(b->name = strdup(name))) {
    rc = NN_ENOMEM;
    goto out;
  }
  snprintf(p, sizeof(p), "%s/meta.json", path);
  if ((rc = read_meta(b, p)) < 0)
    goto out;
  what = "index";
  snprintf(p, sizeof(p), "%s/index", path);
  if ((rc = map_file(p, &b->imap, &b->ilen)) < 0)
    goto out;
  if ((rc = nn__tsdb_bindex_init(&b->ix, b->imap, b->ilen)) < 0)
    goto out;
  /* Validation touched every page; the pages stay cached by the kernel but need not
   * count against this process until a query reads them. */
  madvise(b->imap, b->ilen, MADV_DONTNEED);
  what = "chunks";
  snprintf(p, sizeof(p), "%s/chunks", path);
  if ((rc = map_file(p, &b->cmap, &b->clen)) < 0)
    goto out;
  b->cversion = get32(b->cmap + 4);
  if (b->clen != b->ix.chunks_len || get32(b->cmap) != CHUNKS_MAGIC || b->cversion < 1 ||
      b->cversion > CHUNKS_VERSION) {
    rc = NN_ECORRUPT;
    goto out;
  }
  b->bytes += b->ilen + b->clen;
out:
  if (rc < 0) {
    nn_error("tsdb", "block %s skipped: %s: %s", path, what, nn_strerror(rc));
    nn__tsdb_block_close(b);
    return rc;
  }
  *out = b;
  return 0;
}

/* ---- writer ---- */

uint32_t nn__tsdb_block_chunks_version = CHUNKS_VERSION;

struct wseries {
  struct nn_label *ls;
  uint32_t nlabels;
  size_t snap; /* index into the snapshot */
};

struct triple {
  uint32_t name, value;
  uint64_t ref;
};

/* Buffered writes to one file, with the running offset. */
struct wfile {
  int fd;
  struct nn_buf b;
  uint64_t off;
};

static int wfile_flush(struct wfile *w)
{
  for (size_t done = 0; done < w->b.len;) {
    ssize_t k = write(w->fd, w->b.data + done, w->b.len - done);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0)
      return NN_ERRNO(errno);
    done += (size_t)k;
  }
  nn_buf_reset(&w->b);
  return 0;
}

static int wfile_append(struct wfile *w, const void *p, size_t n)
{
  int rc;
  if (w->b.len + n > WRITE_BUF_BYTES && (rc = wfile_flush(w)) < 0)
    return rc;
  if ((rc = nn_buf_append(&w->b, p, n)) < 0)
    return rc;
  w->off += n;
  return 0;
}

static int wfile_open(struct wfile *w, const char *path)
{
  nn_buf_init(&w->b, SIZE_MAX / 2);
  w->off = 0;
  w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  return w->fd < 0 ? NN_ERRNO(errno) : 0;
}

/* Flushes, fsyncs and closes; the fd is closed whatever happens. */
static int wfile_close(struct wfile *w, int rc)
{
  if (rc == 0)
    rc = wfile_flush(w);
  if (rc == 0 && fsync(w->fd) < 0)
    rc = NN_ERRNO(errno);
  if (w->fd >= 0)
    close(w->fd);
  w->fd = -1;
  nn_buf_fini(&w->b);
  return rc;
}

static int fsync_path(const char *path)
{
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return NN_ERRNO(errno);
  int rc = fsync(fd) < 0 ? NN_ERRNO(errno) : 0;
  close(fd);
  return rc;
}

/* Removes a flat directory (block directories hold files only). */
static int remove_flat_dir(const char *path)
{
  DIR *d = opendir(path);
  if (!d)
    return errno == ENOENT ? 0 : NN_ERRNO(errno);
  struct dirent *e;
  char p[PATH_MAX_BYTES];
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
    unlink(p);
  }
  closedir(d);
  return rmdir(path) < 0 ? NN_ERRNO(errno) : 0;
}

int nn__tsdb_block_remove_dir(const char *blocks_dir, const char *name)
{
  char from[PATH_MAX_BYTES], to[PATH_MAX_BYTES + 16];
  snprintf(from, sizeof(from), "%s/%s", blocks_dir, name);
  snprintf(to, sizeof(to), "%s.deleted", from);
  if (rename(from, to) < 0)
    return NN_ERRNO(errno);
  fsync_path(blocks_dir);
  return remove_flat_dir(to);
}

static int cmp_wseries(const void *a, const void *b)
{
  const struct wseries *x = a, *y = b;
  return nn_labels_cmp(x->ls, x->nlabels, y->ls, y->nlabels);
}

static int cmp_strp(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_triple(const void *a, const void *b)
{
  const struct triple *x = a, *y = b;
  if (x->name != y->name)
    return x->name < y->name ? -1 : 1;
  if (x->value != y->value)
    return x->value < y->value ? -1 : 1;
  return (x->ref > y->ref) - (x->ref < y->ref);
}

static uint32_t sym_id(const char **syms, uint32_t n, const char *s)
{
  const char **f = bsearch(&s, syms, n, sizeof(*syms), cmp_strp);
  return (uint32_t)(f - syms);
}

/* Everything the writer builds, freed in one place. */
struct wstate {
  struct wseries *ws;
  struct nn_label *labels;
  const char **syms;
  uint32_t nsym;
  struct triple *tr;
  size_t ntr, captr;
  struct nn_buf series, postings, index, meta;
  struct nn__tsdb_refs all;
  struct nn__tsdb_bchunk *metas;
  size_t nmetas, capmetas;
  int64_t ct[NN__TSDB_BLOCK_CHUNK_SAMPLES]; /* the chunk being gathered */
  double cv[NN__TSDB_BLOCK_CHUNK_SAMPLES];
  size_t cn;
  struct nn_buf enc;
  struct wfile chunks;
  uint64_t nseries, nsamples, nchunks;
};

static int flush_chunk(struct wstate *w)
{
  if (w->cn == 0)
    return 0;
  if (w->nmetas == w->capmetas) {
    size_t nc = w->capmetas ? w->capmetas * 2 : 16;
    struct nn__tsdb_bchunk *m = realloc(w->metas, nc * sizeof(*m));
    if (!m)
      return NN_ENOMEM;
    w->metas = m;
    w->capmetas = nc;
  }
  w->metas[w->nmetas++] = (struct nn__tsdb_bchunk){w->ct[0], w->ct[w->cn - 1], w->chunks.off};
  nn_buf_reset(&w->enc);
  int rc = 0;
  if (nn__tsdb_block_chunks_version >= 2) {
    rc = nn_buf_appendc(&w->enc, NN__TSDB_ENC_PACKED);
    if (rc == 0)
      rc = nn__tsdb_packed_encode(w->ct, w->cv, w->cn, &w->enc);
  } else {
    struct nn__tsdb_xor_app x = {0};
    for (size_t i = 0; i < w->cn && rc == 0; i++)
      rc = nn__tsdb_xor_append(&x, w->ct[i], w->cv[i]);
    if (rc == 0)
      rc = nn_buf_append(&w->enc, x.buf, nn__tsdb_xor_len(&x));
    nn__tsdb_xor_free(&x);
  }
  w->cn = 0;
  if (rc < 0)
    return rc;
  const uint8_t *data = (const uint8_t *)w->enc.data;
  size_t len = w->enc.len;
  uint8_t hdr[10], crc[4];
  size_t k = 0;
  for (uint64_t x = len;; x >>= 7) {
    hdr[k++] = (uint8_t)(x >= 0x80 ? (x & 0x7f) | 0x80 : x);
    if (x < 0x80)
      break;
  }
  uint32_t c = nn__tsdb_crc32c(0, data, len);
  for (int i = 0; i < 4; i++)
    crc[i] = (uint8_t)(c >> (8 * i));
  rc = wfile_append(&w->chunks, hdr, k);
  if (rc == 0)
    rc = wfile_append(&w->chunks, data, len);
  if (rc == 0)
    rc = wfile_append(&w->chunks, crc, 4);
  w->nchunks++;
  return rc;
}

/* Re-encodes one series' samples in [mint, maxt) into packed chunks of up to
 * NN__TSDB_BLOCK_CHUNK_SAMPLES: longer chunks than the head's 120 spend fewer bytes on
 * chunk headers and first samples, the packed encoding fewer on each sample, and chunks
 * straddling the range are cut to it. */
static int write_series_chunks(struct wstate *w, const struct nn__tsdb_snap *snap,
                               const struct nn__tsdb_snap_series *ss)
{
  const uint8_t *p = (const uint8_t *)snap->data.data + ss->chunk_off;
  int64_t last = INT64_MIN;
  bool any = false;
  int rc = 0;
  w->nmetas = 0;
  for (uint32_t c = 0; c < ss->nchunks && rc == 0; c++) {
    uint32_t len;
    memcpy(&len, p, 4);
    struct nn__tsdb_xor_it it;
    nn__tsdb_xor_it_init(&it, p + 4, len);
    p += 4 + len;
    while (nn__tsdb_xor_it_next(&it)) {
      if (it.t < snap->mint || (any && it.t <= last))
        continue;
      if (it.t >= snap->maxt)
        break;
      w->ct[w->cn] = it.t;
      w->cv[w->cn] = nn__tsdb_xor_it_value(&it);
      w->cn++;
      last = it.t;
      any = true;
      w->nsamples++;
      if (w->cn >= NN__TSDB_BLOCK_CHUNK_SAMPLES && (rc = flush_chunk(w)) < 0)
        break;
    }
    if (rc == 0 && it.err)
      rc = it.err; /* the head's own chunks: a bug, not disk damage */
  }
  if (rc == 0)
    rc = flush_chunk(w);
  return rc;
}

static int encode_series(struct wstate *w, const struct wseries *s, uint64_t *ref)
{
  *ref = w->series.len;
  int rc = nn__tsdb_put_uvarint(&w->series, s->nlabels);
  for (uint32_t i = 0; i < s->nlabels && rc == 0; i++) {
    uint32_t n = sym_id(w->syms, w->nsym, s->ls[i].name);
    uint32_t v = sym_id(w->syms, w->nsym, s->ls[i].value);
    rc = nn__tsdb_put_uvarint(&w->series, n);
    if (rc == 0)
      rc = nn__tsdb_put_uvarint(&w->series, v);
    if (rc == 0 && w->ntr == w->captr) {
      size_t nc = w->captr ? w->captr * 2 : 1024;
      struct triple *t = realloc(w->tr, nc * sizeof(*t));
      if (!t)
        return NN_ENOMEM;
      w->tr = t;
      w->captr = nc;
    }
    if (rc == 0)
      w->tr[w->ntr++] = (struct triple){n, v, *ref};
  }
  if (rc == 0)
    rc = nn__tsdb_put_uvarint(&w->series, w->nmetas);
  for (size_t i = 0; i < w->nmetas && rc == 0; i++) {
    const struct nn__tsdb_bchunk *c = &w->metas[i];
    if (i == 0)
      rc = nn__tsdb_put_varint(&w->series, c->mint);
    else
      rc = nn__tsdb_put_uvarint(&w->series, (uint64_t)c->mint - (uint64_t)w->metas[i - 1].maxt);
    if (rc == 0)
      rc = nn__tsdb_put_uvarint(&w->series, (uint64_t)c->maxt - (uint64_t)c->mint);
    if (rc == 0)
      rc = nn__tsdb_put_uvarint(&w->series, c->ref - (i ? w->metas[i - 1].ref : 0));
  }
  if (rc == 0)
    rc = nn__tsdb_refs_append(&w->all, ref, 1);
  return rc;
}

static int put_postings(struct nn_buf *b, const uint64_t *refs, size_t n)
{
  int rc = nn__tsdb_put_uvarint(b, n);
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = nn__tsdb_put_uvarint(b, refs[i] - (i ? refs[i - 1] : 0));
  return rc;
}

/* Appends one section to the index and its TOC entry to toc. */
static int put_section(struct wstate *w, struct nn_buf *toc, const void *p, size_t n)
{
  int rc = put64(toc, w->index.len);
  if (rc == 0)
    rc = put64(toc, n);
  if (rc == 0)
    rc = put32(toc, nn__tsdb_crc32c(0, p, n));
  if (rc == 0)
    rc = nn_buf_append(&w->index, p, n);
  return rc;
}

static int build_index(struct wstate *w)
{
  struct nn_buf syms, ptable, toc;
  nn_buf_init(&syms, UINT32_MAX);
  nn_buf_init(&ptable, UINT32_MAX);
  nn_buf_init(&toc, TOC_LEN);
  int rc = put32(&syms, w->nsym);
  uint32_t off = 0;
  for (uint32_t i = 0; i < w->nsym && rc == 0; i++) {
    rc = put32(&syms, off);
    off += (uint32_t)strlen(w->syms[i]) + 1;
  }
  for (uint32_t i = 0; i < w->nsym && rc == 0; i++)
    rc = nn_buf_append(&syms, w->syms[i], strlen(w->syms[i]) + 1);
  /* Postings: the list of all series, then one list per label pair. */
  if (rc == 0)
    rc = put_postings(&w->postings, w->all.v, w->all.n);
  if (w->ntr > 1)
    qsort(w->tr, w->ntr, sizeof(*w->tr), cmp_triple);
  uint32_t npairs = 0;
  if (rc == 0)
    rc = put32(&ptable, 0);
  struct nn__tsdb_refs one = {0};
  for (size_t i = 0; i < w->ntr && rc == 0;) {
    size_t j = i;
    one.n = 0;
    while (j < w->ntr && w->tr[j].name == w->tr[i].name && w->tr[j].value == w->tr[i].value) {
      if ((rc = nn__tsdb_refs_append(&one, &w->tr[j].ref, 1)) < 0)
        break;
      j++;
    }
    if (rc < 0)
      break;
    if (w->postings.len > UINT32_MAX) {
      rc = NN_ETOOBIG;
      break;
    }
    rc = put32(&ptable, w->tr[i].name);
    if (rc == 0)
      rc = put32(&ptable, w->tr[i].value);
    if (rc == 0)
      rc = put32(&ptable, (uint32_t)w->postings.len);
    if (rc == 0)
      rc = put_postings(&w->postings, one.v, one.n);
    npairs++;
    i = j;
  }
  free(one.v);
  if (rc == 0) {
    uint8_t *q = (uint8_t *)ptable.data;
    for (int k = 0; k < 4; k++)
      q[k] = (uint8_t)(npairs >> (8 * k));
  }
  if (rc == 0)
    rc = put_header(&w->index, INDEX_MAGIC, FORMAT_VERSION);
  if (rc == 0)
    rc = put_section(w, &toc, syms.data, syms.len);
  if (rc == 0)
    rc = put_section(w, &toc, w->series.data, w->series.len);
  if (rc == 0)
    rc = put_section(w, &toc, w->postings.data, w->postings.len);
  if (rc == 0)
    rc = put_section(w, &toc, ptable.data, ptable.len);
  if (rc == 0)
    rc = put64(&toc, w->chunks.off);
  if (rc == 0)
    rc = put32(&toc, nn__tsdb_crc32c(0, toc.data, toc.len));
  if (rc == 0)
    rc = nn_buf_append(&w->index, toc.data, toc.len);
  nn_buf_fini(&syms);
  nn_buf_fini(&ptable);
  nn_buf_fini(&toc);
  return rc;
}

static int write_whole(const char *path, const void *p, size_t n)
{
  struct wfile f;
  int rc = wfile_open(&f, path);
  if (rc == 0) {
    rc = nn_buf_append(&f.b, p, n);
    f.off = n;
  }
  return wfile_close(&f, rc);
}

/* Parses the snapshot's labels and orders the series and symbols. */
static int prepare(struct wstate *w, const struct nn__tsdb_snap *snap)
{
  size_t total = 0;
  for (size_t i = 0; i < snap->n; i++)
    total += snap->s[i].nlabels;
  w->ws = calloc(snap->n ? snap->n : 1, sizeof(*w->ws));
  w->labels = calloc(total ? total : 1, sizeof(*w->labels));
  const char **all = calloc(2 * total + 1, sizeof(*all));
  if (!w->ws || !w->labels || !all) {
    free(all);
    return NN_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < snap->n; i++) {
    const char *p = snap->data.data + snap->s[i].lab_off;
    w->ws[i] = (struct wseries){w->labels + k, snap->s[i].nlabels, i};
    for (uint32_t j = 0; j < snap->s[i].nlabels; j++, k++) {
      w->labels[k].name = p;
      p += strlen(p) + 1;
      w->labels[k].value = p;
      p += strlen(p) + 1;
      all[2 * k] = w->labels[k].name;
      all[2 * k + 1] = w->labels[k].value;
    }
  }
  qsort(w->ws, snap->n, sizeof(*w->ws), cmp_wseries);
  qsort(all, 2 * total, sizeof(*all), cmp_strp);
  size_t u = 0;
  for (size_t i = 0; i < 2 * total; i++)
    if (u == 0 || strcmp(all[u - 1], all[i]) != 0)
      all[u++] = all[i];
  if (u > UINT32_MAX) {
    free(all);
    return NN_ETOOBIG;
  }
  w->syms = all;
  w->nsym = (uint32_t)u;
  return 0;
}

static int write_meta(struct wstate *w, const struct nn__tsdb_snap *snap, const char *path)
{
  json_t *j = json_pack("{s:i, s:I, s:I, s:{s:I, s:I, s:I}}", "version", FORMAT_VERSION, "mint",
                        (json_int_t)snap->mint, "maxt", (json_int_t)snap->maxt, "stats", "series",
                        (json_int_t)w->nseries, "samples", (json_int_t)w->nsamples, "chunks",
                        (json_int_t)w->nchunks);
  if (!j)
    return NN_ENOMEM;
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(j);
  if (!s)
    return NN_ENOMEM;
  size_t n = strlen(s);
  s[n] = '\n'; /* json_dumps leaves room for the NUL, which becomes the newline */
  int rc = write_whole(path, s, n + 1);
  free(s);
  return rc;
}

int nn__tsdb_block_write(const char *blocks_dir, const struct nn__tsdb_snap *snap,
                         struct nn__tsdb_block **out)
{
  struct wstate w;
  memset(&w, 0, sizeof(w));
  w.chunks.fd = -1;
  nn_buf_init(&w.series, SIZE_MAX / 2);
  nn_buf_init(&w.postings, SIZE_MAX / 2);
  nn_buf_init(&w.index, SIZE_MAX / 2);
  nn_buf_init(&w.enc, SIZE_MAX / 2);
  char name[64], dir[PATH_MAX_BYTES], tmp[PATH_MAX_BYTES + 8], p[PATH_MAX_BYTES + 32];
  snprintf(name, sizeof(name), "%" PRId64 "_%" PRId64, snap->mint, snap->maxt);
  snprintf(dir, sizeof(dir), "%s/%s", blocks_dir, name);
  snprintf(tmp, sizeof(tmp), "%s.tmp", dir);
  bool made = false;
  int rc = prepare(&w, snap);
  if (rc < 0)
    goto out;
  if (mkdir(blocks_dir, 0755) < 0 && errno != EEXIST) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  remove_flat_dir(tmp);
  if (mkdir(tmp, 0755) < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  made = true;
  snprintf(p, sizeof(p), "%s/chunks", tmp);
  if ((rc = wfile_open(&w.chunks, p)) < 0)
    goto out;
  if ((rc = put_header(&w.chunks.b, CHUNKS_MAGIC, nn__tsdb_block_chunks_version)) < 0)
    goto out;
  w.chunks.off = HEADER_LEN;
  for (size_t i = 0; i < snap->n; i++) {
    const struct wseries *s = &w.ws[i];
    if ((rc = write_series_chunks(&w, snap, &snap->s[s->snap])) < 0)
      goto out;
    if (w.nmetas == 0)
      continue;
    uint64_t ref;
    if ((rc = encode_series(&w, s, &ref)) < 0)
      goto out;
    w.nseries++;
  }
  rc = wfile_close(&w.chunks, 0);
  if (rc < 0)
    goto out;
  if (w.nseries == 0) {
    rc = NN_ENOTFOUND;
    goto out;
  }
  if ((rc = build_index(&w)) < 0)
    goto out;
  snprintf(p, sizeof(p), "%s/index", tmp);
  if ((rc = write_whole(p, w.index.data, w.index.len)) < 0)
    goto out;
  snprintf(p, sizeof(p), "%s/meta.json", tmp);
  if ((rc = write_meta(&w, snap, p)) < 0)
    goto out;
  if ((rc = fsync_path(tmp)) < 0)
    goto out;
  remove_flat_dir(dir); /* a leftover of the same range (a cut that crashed) */
  if (rename(tmp, dir) < 0) {
    rc = NN_ERRNO(errno);
    goto out;
  }
  made = false;
  if ((rc = fsync_path(blocks_dir)) < 0)
    goto out;
  rc = nn__tsdb_block_open(dir, name, out);
out:
  if (w.chunks.fd >= 0)
    wfile_close(&w.chunks, rc);
  if (made)
    remove_flat_dir(tmp);
  if (rc < 0 && rc != NN_ENOTFOUND)
    nn_error("tsdb", "cannot write block %s: %s", dir, nn_strerror(rc));
  nn_buf_fini(&w.enc);
  free(w.ws);
  free(w.labels);
  free(w.syms);
  free(w.tr);
  free(w.metas);
  free(w.all.v);
  nn_buf_fini(&w.series);
  nn_buf_fini(&w.postings);
  nn_buf_fini(&w.index);
  return rc;
}

/* ---- snapshot (loop thread) ---- */

void nn__tsdb_snap_fini(struct nn__tsdb_snap *snap)
{
  nn_buf_fini(&snap->data);
  free(snap->s);
  snap->s = NULL;
  snap->n = snap->cap = 0;
}

static int snap_chunk(struct nn__tsdb_snap *snap, const uint8_t *p, size_t n)
{
  uint32_t len = (uint32_t)n;
  int rc = nn_buf_append(&snap->data, &len, 4);
  return rc < 0 ? rc : nn_buf_append(&snap->data, p, n);
}

int nn__tsdb_snap_take(struct nn_tsdb *db, int64_t mint, int64_t maxt, struct nn__tsdb_snap *out)
{
  memset(out, 0, sizeof(*out));
  nn_buf_init(&out->data, SIZE_MAX / 2);
  out->mint = mint;
  out->maxt = maxt;
  int rc = 0;
  for (size_t i = 0; db->by_ref && i <= db->mask && rc == 0; i++) {
    const struct nn__tsdb_series *s = db->by_ref[i];
    if (!s || nn__tsdb_series_empty(s) || nn__tsdb_series_mint(s) >= maxt)
      continue;
    int64_t newest = s->head.n ? s->head.t : s->chunks[s->nchunks - 1].maxt;
    if (newest < mint)
      continue;
    if (out->n == out->cap) {
      size_t nc = out->cap ? out->cap * 2 : 1024;
      struct nn__tsdb_snap_series *ns = realloc(out->s, nc * sizeof(*ns));
      if (!ns) {
        rc = NN_ENOMEM;
        break;
      }
      out->s = ns;
      out->cap = nc;
    }
    struct nn__tsdb_snap_series *ss = &out->s[out->n];
    ss->lab_off = out->data.len;
    ss->nlabels = s->nlabels;
    ss->nchunks = 0;
    for (uint32_t k = 0; k < 2u * s->nlabels && rc == 0; k++) {
      const char *str = nn__tsdb_sym_str(&db->syms, s->syms[k]);
      rc = nn_buf_append(&out->data, str, strlen(str) + 1);
    }
    ss->chunk_off = out->data.len;
    for (uint32_t k = 0; k < s->nchunks && rc == 0; k++) {
      const struct nn__tsdb_chunk *c = &s->chunks[k];
      if (c->maxt < mint || c->mint >= maxt)
        continue;
      rc = snap_chunk(out, c->data, c->len);
      ss->nchunks++;
    }
    if (rc == 0 && s->head.n && s->head_mint < maxt && s->head.t >= mint) {
      rc = snap_chunk(out, s->head.buf, nn__tsdb_xor_len(&s->head));
      ss->nchunks++;
    }
    if (rc == 0 && ss->nchunks)
      out->n++;
  }
  if (rc < 0)
    nn__tsdb_snap_fini(out);
  return rc;
}
