/* SPDX-License-Identifier: Apache-2.0 */
/* Duplicate detection beyond the head block: an entry whose timestamp falls inside a cut
 * chunk's [min_t, max_t] is looked up in that chunk (same timestamp, same line bytes = the
 * same entry, Loki's rule). Chunks are decoded on demand into a small LRU cache capped in
 * bytes over the whole store (dedup_cache_bytes), so the answer never depends on what is
 * cached, only its cost does. In-order pushes never get here (their timestamps are above
 * every chunk's). The work one batch may cause is bounded (LS_DEDUP_BATCH_BYTES decoded):
 * past it, entries are kept unchecked and counted, since a stream written out of order
 * with many overlapping chunks must not turn each push into thousands of decodes. */
#include <stdlib.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"
#include "common/log.h"

#define MOD "logstore"

/* At most this many decoded chunks, whatever their size: the lookup is a linear scan. */
#define LS_DEDUP_MAX_CACHED 256
/* Raw chunk bytes one batch may decode for duplicate checks (about 30 ms of zstd). */
#define LS_DEDUP_BATCH_BYTES (32u << 20)

struct nn__ls_didx {
  int64_t ts;
  uint32_t off; /* line at body+off */
  uint32_t len;
};

struct nn__ls_dchunk {
  const uint8_t *key; /* the chunk's compressed data: unique while the chunk lives */
  uint8_t *body;
  struct nn__ls_didx *idx; /* sorted by ts, as the body is */
  uint32_t n;
  size_t bytes;
  uint64_t used; /* LRU stamp */
};

static size_t dchunk_bytes(uint32_t raw_len, uint32_t n)
{
  return (size_t)raw_len + (size_t)n * sizeof(struct nn__ls_didx) + sizeof(struct nn__ls_dchunk);
}

static void cache_evict(struct nn_logstore *s, size_t i)
{
  struct nn__ls_dcache *c = &s->dcache;
  s->st.dedup_cache_bytes -= c->e[i].bytes;
  free(c->e[i].body);
  free(c->e[i].idx);
  c->e[i] = c->e[--c->n];
}

static void evict_lru(struct nn_logstore *s)
{
  struct nn__ls_dcache *c = &s->dcache;
  size_t lru = 0;
  for (size_t i = 1; i < c->n; i++)
    if (c->e[i].used < c->e[lru].used)
      lru = i;
  cache_evict(s, lru);
}

/* Evicts least recently used chunks until the cache holds at most cap bytes, but keeps the
 * most recently used one: resends hit one chunk many times in a row. */
static void cache_trim(struct nn_logstore *s, size_t cap)
{
  while (s->dcache.n > 1 && s->st.dedup_cache_bytes > cap)
    evict_lru(s);
}

/* Decodes chunk ch into a new cache slot. The cache may exceed its cap until the caller
 * trims it. NN_ELIMIT when the batch's decode budget is spent. */
static int cache_load(struct nn_logstore *s, const struct nn__ls_chunk *ch,
                      struct nn__ls_dchunk **out)
{
  struct nn__ls_dcache *c = &s->dcache;
  struct nn__ls_dchunk d = {ch->data, NULL, NULL, 0, 0, 0};
  struct nn_buf raw;
  int rc;
  nn_buf_init(&raw, LS_MAX_CHUNK_RAW);
  if (ch->raw_len > c->budget) {
    rc = NN_ELIMIT;
    goto out;
  }
  c->budget -= ch->raw_len;
  if (c->n == LS_DEDUP_MAX_CACHED)
    evict_lru(s);
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 8;
    struct nn__ls_dchunk *ne = realloc(c->e, nc * sizeof(*ne));
    if (!ne) {
      rc = NN_ENOMEM;
      goto out;
    }
    c->e = ne;
    c->cap = nc;
  }
  if ((rc = nn__logstore_chunk_decompress(ch->data, ch->len, ch->raw_len, &raw)) < 0)
    goto out;
  if (!(d.idx = malloc((ch->entries ? ch->entries : 1) * sizeof(*d.idx)))) {
    rc = NN_ENOMEM;
    goto out;
  }
  struct nn__ls_body_iter it = {(const uint8_t *)raw.data, raw.len, 0, 0, false};
  struct nn__ls_ent e;
  while ((rc = nn__logstore_body_next(&it, &e)) == 1) {
    if (d.n == ch->entries) {
      rc = NN_ECORRUPT;
      goto out;
    }
    d.idx[d.n++] =
        (struct nn__ls_didx){e.ts, (uint32_t)((const uint8_t *)e.line - it.p), (uint32_t)e.len};
  }
  if (rc < 0)
    goto out;
  d.body = (uint8_t *)nn_buf_steal(&raw, NULL);
  if (!d.body && ch->raw_len) {
    rc = NN_ENOMEM;
    goto out;
  }
  d.bytes = dchunk_bytes(ch->raw_len, d.n);
  d.used = ++c->clock;
  c->e[c->n] = d;
  *out = &c->e[c->n++];
  s->st.dedup_cache_bytes += d.bytes;
  s->st.dedup_chunk_decodes++;
  d.body = NULL;
  d.idx = NULL;
out:
  free(d.body);
  free(d.idx);
  nn_buf_fini(&raw);
  return rc;
}

/* 1 if the decoded chunk holds an entry with e's timestamp and line bytes. */
static int dchunk_has(const struct nn__ls_dchunk *d, const struct nn__ls_ent *e)
{
  size_t lo = 0, hi = d->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->idx[mid].ts < e->ts)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (size_t k = lo; k < d->n && d->idx[k].ts == e->ts; k++)
    if (d->idx[k].len == e->len && memcmp(d->body + d->idx[k].off, e->line, e->len) == 0)
      return 1;
  return 0;
}

static int chunk_has(struct nn_logstore *s, const struct nn__ls_chunk *ch,
                     const struct nn__ls_ent *e)
{
  struct nn__ls_dcache *c = &s->dcache;
  struct nn__ls_dchunk *d = NULL;
  for (size_t i = 0; i < c->n; i++) {
    if (c->e[i].key == ch->data) {
      d = &c->e[i];
      d->used = ++c->clock;
      break;
    }
  }
  int rc = 0;
  if (!d && (rc = cache_load(s, ch, &d)) < 0)
    return rc;
  rc = dchunk_has(d, e);
  cache_trim(s, s->cfg.dedup_cache_bytes);
  return rc;
}

int nn__logstore_dedup_find(struct nn_logstore *s, const struct nn__ls_stream *st,
                            const struct nn__ls_ent *e)
{
  bool skipped = false;
  /* Scan newest first; pmax_t (the largest max_t of this chunk and every one before it)
   * ends the scan as soon as no older chunk can reach e->ts. */
  for (size_t k = st->nchunks; k-- > 0;) {
    const struct nn__ls_chunk *ch = &st->chunks[k];
    if (ch->pmax_t < e->ts)
      break;
    if (e->ts < ch->min_t || e->ts > ch->max_t)
      continue;
    int rc = chunk_has(s, ch, e);
    if (rc == NN_ELIMIT) {
      skipped = true;
      continue;
    }
    if (rc < 0) {
      /* Accepting a possible duplicate beats losing an entry. */
      NN_LOG_RL(NN_LOG_WARN, MOD,
                "duplicate check against a chunk of stream %s failed: %s (entry kept)", st->key,
                nn_strerror(rc));
      continue;
    }
    if (rc == 1)
      return 1;
  }
  if (skipped)
    s->st.dedup_checks_skipped++;
  return 0;
}

void nn__logstore_dedup_batch(struct nn_logstore *s)
{
  s->dcache.budget = LS_DEDUP_BATCH_BYTES;
}

void nn__logstore_dedup_forget(struct nn_logstore *s, const uint8_t *data)
{
  struct nn__ls_dcache *c = &s->dcache;
  for (size_t i = 0; i < c->n; i++) {
    if (c->e[i].key == data) {
      cache_evict(s, i);
      return;
    }
  }
}

void nn__logstore_dedup_fini(struct nn_logstore *s)
{
  while (s->dcache.n)
    cache_evict(s, 0);
  free(s->dcache.e);
  memset(&s->dcache, 0, sizeof(s->dcache));
}
