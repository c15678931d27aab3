/* SPDX-License-Identifier: Apache-2.0 */
/* Chunks: cutting a head block into a zstd-compressed body, the chunk record format of the
 * per-period chunk files (docs/format/logstore.md), loading them on open, and retention by
 * time and by total compressed size (oldest chunks first). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "aggregator/logstore/internal.h"
#include "common/compress.h"
#include "common/error.h"
#include "common/log.h"

#define MOD "logstore"

/* ---- raw body ---- */

int nn__logstore_body_put(struct nn_buf *b, int64_t *prev, const struct nn__ls_ent *e)
{
  /* Deltas of sorted timestamps are small and non-negative; the wrap-around subtraction
   * is defined on unsigned and decodes back exactly. */
  int rc = ls_put_varint(b, (int64_t)((uint64_t)e->ts - (uint64_t)*prev));
  if (rc == 0)
    rc = ls_put_uvarint(b, e->len);
  if (rc == 0)
    rc = nn_buf_append(b, e->line, e->len);
  if (rc == 0)
    rc = ls_put_uvarint(b, e->mlen);
  if (rc == 0)
    rc = nn_buf_append(b, e->meta, e->mlen);
  *prev = e->ts;
  return rc;
}

int nn__logstore_body_next(struct nn__ls_body_iter *it, struct nn__ls_ent *e)
{
  if (it->i >= it->n)
    return 0;
  int64_t d;
  const uint8_t *line;
  if (!ls_get_varint(it->p, it->n, &it->i, &d) ||
      !ls_get_bytes(it->p, it->n, &it->i, &line, &e->len) ||
      !ls_get_bytes(it->p, it->n, &it->i, &e->meta, &e->mlen) ||
      !nn__logstore_meta_valid(e->meta, e->mlen))
    return NN_ECORRUPT;
  e->ts = (int64_t)((uint64_t)it->prev + (uint64_t)d);
  if (it->started && e->ts < it->prev)
    return NN_ECORRUPT; /* bodies are sorted */
  it->prev = e->ts;
  it->started = true;
  e->line = (const char *)line;
  return 1;
}

int nn__logstore_chunk_decompress(const uint8_t *data, size_t len, uint32_t raw_len,
                                  struct nn_buf *out)
{
  nn_buf_reset(out);
  if (raw_len > LS_MAX_CHUNK_RAW)
    return NN_ECORRUPT;
  int rc = nn_decompress(NN_CODEC_ZSTD, data, len, raw_len, out);
  if (rc == NN_ETOOBIG)
    return NN_ECORRUPT;
  if (rc < 0)
    return rc;
  return out->len == raw_len ? 0 : NN_ECORRUPT;
}

/* ---- chunk records ---- */

static int64_t period_of(int64_t ts, int64_t p)
{
  int64_t q = ts / p, start;
  if (ts % p < 0)
    q--;
  if (__builtin_mul_overflow(q, p, &start))
    return INT64_MIN;
  return start;
}

int nn__logstore_period_path(const struct nn_logstore *s, int64_t start, struct nn_buf *out)
{
  nn_buf_reset(out);
  return nn_buf_printf(out, "%s/%lld.nnlc", s->chunk_dir, (long long)start);
}

static int rec_encode(struct nn_buf *b, const char *tenant, const struct nn__ls_stream *st,
                      const struct nn__ls_chunk *c)
{
  size_t tl = strlen(tenant);
  size_t total = LS_CHUNK_FIXED_HDR + tl + st->keylen + c->len + 4;
  if (tl > 0xffff || st->keylen > 0xffff || total - 8 > LS_MAX_RECORD_BYTES)
    return NN_ETOOBIG;
  uint8_t h[LS_CHUNK_FIXED_HDR];
  ls_put_u32(h, LS_CHUNK_MAGIC);
  ls_put_u32(h + 4, (uint32_t)(total - 8));
  h[8] = 1; /* version */
  h[9] = 1; /* codec: zstd */
  h[10] = h[11] = 0;
  ls_put_u64(h + 12, (uint64_t)c->min_t);
  ls_put_u64(h + 20, (uint64_t)c->max_t);
  ls_put_u64(h + 28, c->max_seq);
  ls_put_u32(h + 36, c->entries);
  ls_put_u32(h + 40, c->raw_len);
  ls_put_u32(h + 44, (uint32_t)c->len);
  h[48] = (uint8_t)tl;
  h[49] = (uint8_t)(tl >> 8);
  h[50] = (uint8_t)st->keylen;
  h[51] = (uint8_t)(st->keylen >> 8);
  nn_buf_reset(b);
  int rc = nn_buf_reserve(b, total);
  if (rc == 0)
    rc = nn_buf_append(b, h, sizeof(h));
  if (rc == 0)
    rc = nn_buf_append(b, tenant, tl);
  if (rc == 0)
    rc = nn_buf_append(b, st->key, st->keylen);
  if (rc == 0)
    rc = nn_buf_append(b, c->data, c->len);
  if (rc == 0) {
    uint8_t crc[4];
    ls_put_u32(crc, nn__logstore_crc32c(0, b->data + 8, b->len - 8));
    rc = nn_buf_append(b, crc, 4);
  }
  return rc;
}

int nn__logstore_chunk_rec_decode(const uint8_t *p, size_t n, struct nn__ls_chunk_rec *out,
                                  size_t *consumed)
{
  if (n < 8)
    return NN_EAGAIN;
  if (ls_get_u32(p) != LS_CHUNK_MAGIC)
    return NN_ECORRUPT;
  uint32_t body = ls_get_u32(p + 4);
  if (body < LS_CHUNK_FIXED_HDR - 8 + 4 || body > LS_MAX_RECORD_BYTES)
    return NN_ECORRUPT;
  if (n - 8 < body)
    return NN_EAGAIN;
  size_t total = 8 + (size_t)body;
  if (p[8] != 1 || p[9] != 1)
    return NN_ECORRUPT;
  out->min_t = (int64_t)ls_get_u64(p + 12);
  out->max_t = (int64_t)ls_get_u64(p + 20);
  out->max_seq = ls_get_u64(p + 28);
  out->entries = ls_get_u32(p + 36);
  out->raw_len = ls_get_u32(p + 40);
  out->len = ls_get_u32(p + 44);
  out->tenant_len = (size_t)p[48] | (size_t)p[49] << 8;
  out->labels_len = (size_t)p[50] | (size_t)p[51] << 8;
  if ((uint64_t)LS_CHUNK_FIXED_HDR + out->tenant_len + out->labels_len + out->len + 4 != total)
    return NN_ECORRUPT;
  if (nn__logstore_crc32c(0, p + 8, total - 12) != ls_get_u32(p + total - 4))
    return NN_ECORRUPT;
  if (out->min_t > out->max_t || out->entries == 0 || out->raw_len > LS_MAX_CHUNK_RAW ||
      out->tenant_len == 0 || out->tenant_len > LS_MAX_TENANT_BYTES || out->labels_len < 2)
    return NN_ECORRUPT;
  out->tenant = (const char *)p + LS_CHUNK_FIXED_HDR;
  out->labels = out->tenant + out->tenant_len;
  out->data = (const uint8_t *)out->labels + out->labels_len;
  if (memchr(out->tenant, '\0', out->tenant_len) || memchr(out->labels, '\0', out->labels_len))
    return NN_ECORRUPT;
  *consumed = total;
  return 0;
}

/* ---- periods ---- */

static struct nn__ls_period *period_get(struct nn_logstore *s, int64_t start, bool create)
{
  for (size_t i = 0; i < s->nperiods; i++)
    if (s->periods[i].start == start)
      return &s->periods[i];
  if (!create)
    return NULL;
  if (s->nperiods == s->cperiods) {
    size_t nc = s->cperiods ? s->cperiods * 2 : 16;
    struct nn__ls_period *np = realloc(s->periods, nc * sizeof(*np));
    if (!np)
      return NULL;
    s->periods = np;
    s->cperiods = nc;
  }
  s->periods[s->nperiods] = (struct nn__ls_period){start, 0, false};
  return &s->periods[s->nperiods++];
}

static void period_release(struct nn_logstore *s, int64_t start)
{
  struct nn__ls_period *p = period_get(s, start, false);
  if (!p || --p->live > 0)
    return;
  struct nn_buf path;
  nn_buf_init(&path, 8192);
  if (nn__logstore_period_path(s, start, &path) == 0 && unlink(path.data) < 0 && errno != ENOENT)
    NN_LOG_RL(NN_LOG_WARN, MOD, "cannot delete chunk file %s: %s", path.data, strerror(errno));
  nn_buf_fini(&path);
  *p = s->periods[--s->nperiods];
}

static int stream_push_chunk(struct nn__ls_stream *st, const struct nn__ls_chunk *c)
{
  if (st->nchunks == st->cchunks) {
    size_t nc = st->cchunks ? st->cchunks * 2 : 4;
    struct nn__ls_chunk *n = realloc(st->chunks, nc * sizeof(*n));
    if (!n)
      return NN_ENOMEM;
    st->chunks = n;
    st->cchunks = nc;
  }
  st->chunks[st->nchunks] = *c;
  int64_t prev = st->nchunks ? st->chunks[st->nchunks - 1].pmax_t : INT64_MIN;
  st->chunks[st->nchunks].pmax_t = c->max_t > prev ? c->max_t : prev;
  st->nchunks++;
  if (c->min_t < st->min_t)
    st->min_t = c->min_t;
  if (c->max_t > st->max_t)
    st->max_t = c->max_t;
  if (c->max_seq > st->flushed_seq)
    st->flushed_seq = c->max_seq;
  if (c->max_seq > st->last_seq)
    st->last_seq = c->max_seq;
  return 0;
}

static void stream_bounds(struct nn__ls_stream *st)
{
  st->min_t = INT64_MAX;
  st->max_t = INT64_MIN;
  for (size_t i = 0; i < st->nchunks; i++) {
    if (st->chunks[i].min_t < st->min_t)
      st->min_t = st->chunks[i].min_t;
    if (st->chunks[i].max_t > st->max_t)
      st->max_t = st->chunks[i].max_t;
    st->chunks[i].pmax_t = st->max_t;
  }
  if (st->head.n) {
    if (st->head.e[0].ts < st->min_t)
      st->min_t = st->head.e[0].ts;
    if (st->head.e[st->head.n - 1].ts > st->max_t)
      st->max_t = st->head.e[st->head.n - 1].ts;
  }
}

void nn__logstore_chunk_drop(struct nn_logstore *s, struct nn__ls_stream *st, size_t idx)
{
  struct nn__ls_chunk c = st->chunks[idx];
  memmove(st->chunks + idx, st->chunks + idx + 1, (st->nchunks - idx - 1) * sizeof(c));
  st->nchunks--;
  s->st.chunks--;
  s->st.chunk_bytes -= c.len;
  s->st.chunk_raw_bytes -= c.raw_len;
  nn__logstore_dedup_forget(s, c.data);
  free(c.data);
  period_release(s, c.period);
  stream_bounds(st);
}

/* ---- cutting ---- */

static int append_file(const char *path, const void *p, size_t n)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return NN_ERRNO(errno);
  off_t start = lseek(fd, 0, SEEK_END);
  const uint8_t *b = p;
  int rc = 0;
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      rc = w < 0 ? NN_ERRNO(errno) : NN_EIO;
      /* Leave no half record behind, or every later record in the file is lost. */
      if (start >= 0 && ftruncate(fd, start) < 0)
        rc = NN_EIO;
      break;
    }
    b += w;
    n -= (size_t)w;
  }
  close(fd);
  return rc;
}

int nn__logstore_cut(struct nn_logstore *s, struct nn__ls_stream *st)
{
  struct nn__ls_head *h = &st->head;
  struct nn_buf z, rec, path;
  struct nn__ls_chunk c = {0};
  int rc = 0;
  if (h->n == 0)
    return 0;
  nn_buf_init(&z, LS_MAX_RECORD_BYTES);
  nn_buf_init(&rec, LS_MAX_RECORD_BYTES + 65536);
  nn_buf_init(&path, 8192);
  nn_buf_reset(&s->raw);
  int64_t prev = 0;
  for (size_t i = 0; i < h->n && rc == 0; i++) {
    const struct nn__ls_hentry *he = &h->e[i];
    struct nn__ls_ent e = {he->ts, (const char *)h->buf + he->off, he->len,
                           h->buf + he->off + he->len, he->mlen};
    rc = nn__logstore_body_put(&s->raw, &prev, &e);
  }
  if (rc < 0)
    goto out;
  if ((rc = nn_compress_level(NN_CODEC_ZSTD, s->cfg.zstd_level, s->raw.data, s->raw.len, &z)) < 0)
    goto out;
  c.min_t = h->e[0].ts;
  c.max_t = h->e[h->n - 1].ts;
  c.max_seq = st->last_seq;
  c.entries = (uint32_t)h->n;
  c.raw_len = (uint32_t)s->raw.len;
  c.period = period_of(c.min_t, s->cfg.chunk_period_ns);
  c.len = z.len;
  c.data = (uint8_t *)nn_buf_steal(&z, NULL);
  if (!c.data) {
    rc = NN_ENOMEM;
    goto out;
  }
  if ((rc = rec_encode(&rec, st->tenant->name, st, &c)) < 0 ||
      (rc = nn__logstore_period_path(s, c.period, &path)) < 0)
    goto out;
  struct nn__ls_period *p = period_get(s, c.period, true);
  if (!p) {
    rc = NN_ENOMEM;
    goto out;
  }
  if ((rc = append_file(path.data, rec.data, rec.len)) < 0) {
    NN_LOG_RL(NN_LOG_ERROR, MOD, "writing chunk file %s failed: %s (head of %s kept)", path.data,
              nn_strerror(rc), st->key);
    if (p->live == 0)
      *p = s->periods[--s->nperiods];
    goto out;
  }
  p->live++;
  p->dirty = true;
  if ((rc = stream_push_chunk(st, &c)) < 0) {
    period_release(s, c.period);
    goto out;
  }
  c.data = NULL;
  s->st.chunks_cut++;
  s->st.chunks++;
  s->st.chunk_bytes += c.len;
  s->st.chunk_raw_bytes += c.raw_len;
  s->st.head_bytes -= h->blen;
  /* Release the head's memory: most streams are idle most of the time. */
  free(h->e);
  free(h->buf);
  memset(h, 0, sizeof(*h));
out:
  free(c.data);
  nn_buf_fini(&z);
  nn_buf_fini(&rec);
  nn_buf_fini(&path);
  return rc;
}

/* ---- loading ---- */

static int load_record(struct nn_logstore *s, const struct nn__ls_chunk_rec *r, int64_t period)
{
  char tenant[LS_MAX_TENANT_BYTES + 1], err[256];
  memcpy(tenant, r->tenant, r->tenant_len);
  tenant[r->tenant_len] = '\0';
  struct nn__ls_tenant *t = nn__logstore_tenant(s, tenant, true);
  struct nn__ls_stream *st;
  if (!t)
    return NN_ENOMEM;
  int rc = nn__logstore_stream_get(s, t, r->labels, r->labels_len, NULL, 0, true, false, &st, err,
                                   sizeof(err));
  if (rc < 0)
    return rc == NN_ENOMEM ? rc : NN_ECORRUPT;
  struct nn__ls_chunk c = {r->min_t,   r->max_t,   r->max_seq,
                           r->entries, r->raw_len, malloc(r->len ? r->len : 1),
                           r->len,     period,     r->max_t};
  struct nn__ls_period *p = period_get(s, period, true);
  if (!c.data || !p) {
    free(c.data);
    return NN_ENOMEM;
  }
  memcpy(c.data, r->data, r->len);
  if ((rc = stream_push_chunk(st, &c)) < 0) {
    free(c.data);
    return rc;
  }
  p->live++;
  s->st.chunks++;
  s->st.chunk_bytes += c.len;
  s->st.chunk_raw_bytes += c.raw_len;
  if (c.max_seq >= s->wal.next_seq)
    s->wal.next_seq = c.max_seq + 1;
  return 0;
}

static int load_file(struct nn_logstore *s, const char *path, int64_t period)
{
  struct nn_buf b;
  int rc = 0;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return NN_ERRNO(errno);
  nn_buf_init(&b, LS_MAX_RECORD_BYTES + 16);
  off_t off = 0;
  for (;;) {
    uint8_t hdr[8];
    ssize_t r = pread(fd, hdr, 8, off);
    if (r == 0)
      break;
    const char *why = NULL;
    if (r < 8) {
      why = "torn record header";
    } else if (ls_get_u32(hdr) != LS_CHUNK_MAGIC || ls_get_u32(hdr + 4) > LS_MAX_RECORD_BYTES) {
      why = "bad record header";
    } else {
      size_t total = 8 + (size_t)ls_get_u32(hdr + 4);
      nn_buf_reset(&b);
      if ((rc = nn_buf_reserve(&b, total)) < 0)
        break;
      r = pread(fd, b.data, total, off);
      struct nn__ls_chunk_rec rec;
      size_t used;
      if (r < (ssize_t)total) {
        why = "torn record";
      } else if (nn__logstore_chunk_rec_decode((const uint8_t *)b.data, total, &rec, &used) < 0) {
        why = "corrupt record";
      } else {
        rc = load_record(s, &rec, period);
        if (rc == NN_ENOMEM)
          break;
        if (rc < 0)
          why = "record with invalid labels";
        else
          off += (off_t)total;
      }
    }
    if (why) {
      /* Records have no resync marker, so everything after the first bad one goes. */
      s->st.chunk_file_corruptions++;
      nn_warn(MOD, "chunk file %s: %s at offset %lld; truncating there", path, why, (long long)off);
      if (ftruncate(fd, off) < 0)
        nn_warn(MOD, "cannot truncate %s: %s", path, strerror(errno));
      rc = 0;
      break;
    }
  }
  nn_buf_fini(&b);
  close(fd);
  return rc;
}

static int chunk_seq_cmp(const void *a, const void *b)
{
  const struct nn__ls_chunk *x = a, *y = b;
  return x->max_seq < y->max_seq ? -1 : x->max_seq > y->max_seq;
}

int nn__logstore_chunks_load(struct nn_logstore *s, char *err, size_t errlen)
{
  DIR *d = opendir(s->chunk_dir);
  struct nn_buf path;
  int rc = 0;
  if (!d) {
    snprintf(err, errlen, "logstore: cannot open %s: %s", s->chunk_dir, strerror(errno));
    return NN_ERRNO(errno);
  }
  nn_buf_init(&path, 8192);
  struct dirent *de;
  while ((de = readdir(d))) {
    char *end;
    errno = 0;
    long long start = strtoll(de->d_name, &end, 10);
    if (end == de->d_name || strcmp(end, ".nnlc") != 0 || errno)
      continue;
    if ((rc = nn__logstore_period_path(s, start, &path)) < 0)
      break;
    if ((rc = load_file(s, path.data, start)) < 0) {
      snprintf(err, errlen, "logstore: loading %s: %s", path.data, nn_strerror(rc));
      break;
    }
  }
  closedir(d);
  nn_buf_fini(&path);
  /* Files load in directory order: put each stream's chunks back in cut order (max_seq is
   * unique per stream), which keeps the duplicate check's newest-first scan short. */
  for (size_t i = 0; rc == 0 && i < s->nids; i++) {
    struct nn__ls_stream *st = s->by_id[i];
    if (st && st->nchunks > 1) {
      qsort(st->chunks, st->nchunks, sizeof(*st->chunks), chunk_seq_cmp);
      stream_bounds(st);
    }
  }
  return rc;
}

/* ---- retention ---- */

struct chunk_ref {
  struct nn__ls_stream *st;
  const uint8_t *data;
  int64_t min_t, max_t;
};

static int ref_cmp(const void *a, const void *b)
{
  const struct chunk_ref *x = a, *y = b;
  if (x->min_t != y->min_t)
    return x->min_t < y->min_t ? -1 : 1;
  if (x->max_t != y->max_t)
    return x->max_t < y->max_t ? -1 : 1;
  return 0;
}

int nn__logstore_retention(struct nn_logstore *s, int64_t now_ns)
{
  if (s->cfg.retention_ns > 0) {
    int64_t cutoff = now_ns - s->cfg.retention_ns;
    for (size_t i = 0; i < s->nids; i++) {
      struct nn__ls_stream *st = s->by_id[i];
      for (size_t k = 0; st && k < st->nchunks;) {
        if (st->chunks[k].max_t < cutoff) {
          nn__logstore_chunk_drop(s, st, k);
          s->st.retention_deleted_chunks++;
        } else {
          k++;
        }
      }
    }
  }
  if (s->cfg.retention_bytes == 0 || s->st.chunk_bytes <= s->cfg.retention_bytes)
    return 0;
  struct chunk_ref *refs = malloc((s->st.chunks ? s->st.chunks : 1) * sizeof(*refs));
  size_t n = 0;
  if (!refs)
    return NN_ENOMEM;
  for (size_t i = 0; i < s->nids; i++) {
    struct nn__ls_stream *st = s->by_id[i];
    for (size_t k = 0; st && k < st->nchunks; k++)
      refs[n++] =
          (struct chunk_ref){st, st->chunks[k].data, st->chunks[k].min_t, st->chunks[k].max_t};
  }
  qsort(refs, n, sizeof(*refs), ref_cmp);
  for (size_t i = 0; i < n && s->st.chunk_bytes > s->cfg.retention_bytes; i++) {
    struct nn__ls_stream *st = refs[i].st;
    for (size_t k = 0; k < st->nchunks; k++) {
      if (st->chunks[k].data == refs[i].data) {
        nn__logstore_chunk_drop(s, st, k);
        s->st.retention_deleted_chunks++;
        break;
      }
    }
  }
  free(refs);
  return 0;
}
