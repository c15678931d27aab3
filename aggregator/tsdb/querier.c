/* SPDX-License-Identifier: Apache-2.0 */
/* The storage.h querier over the blocks and the head: postings select the series in
 * each source, chunks overlapping [mint, maxt] are decoded into arrays owned by the
 * result, and a series found in several sources (a series spans blocks and the head) is
 * merged by labels, its samples by time. The head answers only from the newest block's
 * end on, so the two never repeat a sample. Results copy what they return, so
 * truncating the head or deleting a block later cannot pull memory from under a caller. */
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"
#include "common/pool.h"

struct set_priv {
  struct nn_pool pool;
  struct nn_series *series;
  size_t n, cap;
  size_t total, max_samples;
};

struct samples {
  int64_t *t;
  double *v;
  size_t n, cap;
  bool fixed; /* t and v are the caller's (not malloc'd): growing copies them out */
};

static void on_release(struct nn_series_set *set)
{
  struct set_priv *p = set->priv;
  if (p) {
    nn_pool_clear(&p->pool);
    free(p->series);
    free(p);
  }
  memset(set, 0, sizeof(*set));
}

static int samples_reserve(struct samples *out, size_t n)
{
  if (out->n + n <= out->cap)
    return 0;
  size_t nc = out->cap ? out->cap * 2 : 256;
  while (nc < out->n + n)
    nc *= 2;
  if (out->fixed) {
    int64_t *nt = malloc(nc * sizeof(*nt));
    double *nv = malloc(nc * sizeof(*nv));
    if (!nt || !nv) {
      free(nt);
      free(nv);
      return NN_ENOMEM;
    }
    memcpy(nt, out->t, out->n * sizeof(*nt));
    memcpy(nv, out->v, out->n * sizeof(*nv));
    out->t = nt;
    out->v = nv;
    out->cap = nc;
    out->fixed = false;
    return 0;
  }
  int64_t *nt = realloc(out->t, nc * sizeof(*nt));
  if (!nt)
    return NN_ENOMEM;
  out->t = nt;
  double *nv = realloc(out->v, nc * sizeof(*nv));
  if (!nv)
    return NN_ENOMEM;
  out->v = nv;
  out->cap = nc;
  return 0;
}

static void samples_free(struct samples *s)
{
  if (!s->fixed) {
    free(s->t);
    free(s->v);
  }
}

/* version: of a block's chunks file (nn__tsdb_bchunk_it_init); 1 for the head's XOR. */
static int decode_chunk(uint32_t version, const uint8_t *data, size_t len, int64_t mint,
                        int64_t maxt, struct samples *out)
{
  struct nn__tsdb_xor_it it;
  nn__tsdb_bchunk_it_init(&it, version, data, len);
  /* The header's count bounds what the chunk can yield, so the loop need not grow. */
  if (samples_reserve(out, it.n) < 0)
    return NN_ENOMEM;
  int64_t *t = out->t;
  double *v = out->v;
  size_t n = out->n, end = out->n + it.n;
  while (n < end && nn__tsdb_xor_it_next(&it)) {
    if (it.t < mint)
      continue;
    if (it.t > maxt)
      break;
    t[n] = it.t;
    v[n++] = nn__tsdb_xor_it_value(&it);
  }
  out->n = n;
  return it.err;
}

/* decode_chunk for a series' open chunk: from the series' checkpoint when the range starts
 * after it, and leaving one at the last sample before the range, so that the next query
 * over the newest samples (a rule's or SLO's next evaluation) skips what this one did. */
static int decode_head(struct nn__tsdb_series *s, int64_t mint, int64_t maxt, struct samples *out)
{
  struct nn__tsdb_xor_it it;
  struct nn__tsdb_xor_ck *sck = nn__tsdb_series_ck(s);
  nn__tsdb_xor_it_init(&it, s->head.buf, nn__tsdb_xor_len(&s->head));
  if (sck->i && sck->t < mint)
    nn__tsdb_xor_it_resume(&it, sck);
  if (samples_reserve(out, (size_t)(it.n - it.i)) < 0)
    return NN_ENOMEM;
  int64_t *t = out->t;
  double *v = out->v;
  size_t n = out->n, end = out->n + (it.n - it.i);
  struct nn__tsdb_xor_ck ck = {.i = 0};
  while (n < end && nn__tsdb_xor_it_next(&it)) {
    if (it.t < mint) {
      nn__tsdb_xor_it_save(&it, &ck);
      continue;
    }
    if (it.t > maxt)
      break;
    t[n] = it.t;
    v[n++] = nn__tsdb_xor_it_value(&it);
  }
  out->n = n;
  if (ck.i && !it.err)
    *sck = ck;
  return it.err;
}

/* The head's part of a query starts where the blocks end. */
static int64_t head_mint(const struct nn_tsdb *db, int64_t mint)
{
  return db->blocks_maxt != NN__TSDB_NO_T && db->blocks_maxt > mint ? db->blocks_maxt : mint;
}

static bool overlaps(const struct nn__tsdb_series *s, int64_t mint, int64_t maxt)
{
  return !nn__tsdb_series_empty(s) && s->head.n && nn__tsdb_series_mint(s) <= maxt &&
         s->head.t >= mint;
}

static bool block_overlaps(const struct nn__tsdb_block *b, int64_t mint, int64_t maxt)
{
  return !b->bad && b->mint <= maxt && b->maxt > mint;
}

static int series_samples(struct nn__tsdb_series *s, int64_t mint, int64_t maxt,
                          struct samples *out)
{
  int rc = 0;
  out->n = 0;
  for (uint32_t i = 0; i < s->nchunks && rc == 0; i++) {
    const struct nn__tsdb_chunk *c = &s->chunks[i];
    if (c->maxt >= mint && c->mint <= maxt)
      rc = decode_chunk(1, c->data, c->len, mint, maxt, out);
  }
  if (rc == 0 && s->head.n && s->head_mint <= maxt && s->head.t >= mint)
    rc = decode_head(s, mint, maxt, out);
  return rc;
}

static int cmp_series(const void *a, const void *b)
{
  const struct nn_series *x = a, *y = b;
  return nn_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

/* Copies one series (labels as name/value string pairs) into the result. */
static int push(struct set_priv *p, const char *const *strs, size_t nlabels,
                const struct samples *sc)
{
  p->total += sc->n;
  if (p->max_samples && p->total > p->max_samples)
    return NN_ELIMIT;
  if (p->n == p->cap) {
    size_t nc = p->cap ? p->cap * 2 : 64;
    struct nn_series *ns = realloc(p->series, nc * sizeof(*ns));
    if (!ns)
      return NN_ENOMEM;
    p->series = ns;
    p->cap = nc;
  }
  struct nn_label *ls = nn_pool_alloc(&p->pool, nlabels * sizeof(*ls));
  int64_t *t = nn_pool_alloc(&p->pool, sc->n * sizeof(*t));
  double *v = nn_pool_alloc(&p->pool, sc->n * sizeof(*v));
  if (!ls || !t || !v)
    return NN_ENOMEM;
  for (size_t k = 0; k < nlabels; k++) {
    ls[k].name = nn_pool_strndup(&p->pool, strs[2 * k], strlen(strs[2 * k]));
    ls[k].value = nn_pool_strndup(&p->pool, strs[2 * k + 1], strlen(strs[2 * k + 1]));
    if (!ls[k].name || !ls[k].value)
      return NN_ENOMEM;
  }
  memcpy(t, sc->t, sc->n * sizeof(*t));
  memcpy(v, sc->v, sc->n * sizeof(*v));
  p->series[p->n++] = (struct nn_series){ls, nlabels, t, v, sc->n};
  return 0;
}

static int select_head(struct nn_tsdb *db, const struct nn_matcher *ms, size_t nms, int64_t mint,
                       int64_t maxt, struct set_priv *p, struct samples *sc)
{
  uint64_t *refs = NULL;
  size_t nrefs = 0;
  const char *strs[2 * NN__TSDB_MAX_LABELS];
  int rc = nn__tsdb_index_select(db, ms, nms, &refs, &nrefs);
  for (size_t i = 0; i < nrefs && rc == 0; i++) {
    struct nn__tsdb_series *s = nn__tsdb_series_by_ref(db, refs[i]);
    if (!s || !overlaps(s, mint, maxt))
      continue;
    if ((rc = series_samples(s, mint, maxt, sc)) < 0 || sc->n == 0)
      continue;
    for (uint32_t k = 0; k < 2u * s->nlabels; k++)
      strs[k] = nn__tsdb_sym_str(&db->syms, s->syms[k]);
    rc = push(p, strs, s->nlabels, sc);
  }
  free(refs);
  return rc;
}

/* Damage found while reading a block takes the block out, not the query. */
static int block_damage(struct nn_tsdb *db, struct nn__tsdb_block *b, int rc, const char *what)
{
  if (rc != NN_ECORRUPT)
    return rc;
  nn__tsdb_block_bad(db, b, what);
  return 0;
}

static int select_block(struct nn_tsdb *db, struct nn__tsdb_block *b, const struct nn_matcher *ms,
                        size_t nms, int64_t mint, int64_t maxt, struct set_priv *p,
                        struct samples *sc, struct nn__tsdb_bseries *bs)
{
  uint64_t *refs = NULL;
  size_t nrefs = 0;
  const char *strs[2 * NN__TSDB_MAX_LABELS];
  const char *what = "postings";
  size_t n0 = p->n, total0 = p->total;
  int rc = nn__tsdb_bindex_select(&b->ix, ms, nms, &refs, &nrefs);
  for (size_t i = 0; i < nrefs && rc == 0; i++) {
    what = "series entry";
    if ((rc = nn__tsdb_bindex_series(&b->ix, refs[i], bs)) < 0)
      break;
    sc->n = 0;
    what = "chunk checksum";
    for (uint32_t c = 0; c < bs->nchunks && rc == 0; c++) {
      const struct nn__tsdb_bchunk *m = &bs->chunks[c];
      if (m->maxt < mint || m->mint > maxt)
        continue;
      const uint8_t *data;
      size_t len;
      if ((rc = nn__tsdb_bchunk_read(b->cmap, b->clen, m->ref, &data, &len)) == 0)
        rc = decode_chunk(b->cversion, data, len, mint, maxt, sc);
    }
    if (rc < 0 || sc->n == 0)
      continue;
    for (uint32_t k = 0; k < 2 * bs->nlabels; k++)
      strs[k] = nn__tsdb_bindex_sym(&b->ix, bs->syms[k]);
    rc = push(p, strs, bs->nlabels, sc);
  }
  free(refs);
  if (rc == NN_ECORRUPT) {
    /* What this block gave so far goes too: a block answers whole or not at all. */
    p->n = n0;
    p->total = total0;
  }
  return block_damage(db, b, rc, what);
}

/* Merges two time-sorted sample arrays into pool memory; equal times keep a's sample. */
static int merge_samples(struct set_priv *p, struct nn_series *a, const struct nn_series *b)
{
  int64_t *t = nn_pool_alloc(&p->pool, (a->n + b->n) * sizeof(*t));
  double *v = nn_pool_alloc(&p->pool, (a->n + b->n) * sizeof(*v));
  if (!t || !v)
    return NN_ENOMEM;
  size_t i = 0, j = 0, k = 0;
  while (i < a->n || j < b->n) {
    if (j == b->n || (i < a->n && a->t[i] <= b->t[j])) {
      if (j < b->n && a->t[i] == b->t[j])
        j++;
      t[k] = a->t[i];
      v[k++] = a->v[i++];
    } else {
      t[k] = b->t[j];
      v[k++] = b->v[j++];
    }
  }
  a->t = t;
  a->v = v;
  a->n = k;
  return 0;
}

/* Sorts by labels and folds series with equal labels into one. */
static int merge_series(struct set_priv *p)
{
  if (p->n > 1)
    qsort(p->series, p->n, sizeof(*p->series), cmp_series);
  size_t k = 0;
  for (size_t i = 0; i < p->n; i++) {
    if (k && cmp_series(&p->series[k - 1], &p->series[i]) == 0) {
      int rc = merge_samples(p, &p->series[k - 1], &p->series[i]);
      if (rc < 0)
        return rc;
      continue;
    }
    p->series[k++] = p->series[i];
  }
  p->n = k;
  return 0;
}

static int q_select(void *ctx, const struct nn_matcher *ms, size_t nms,
                    const struct nn_select_hints *hints, struct nn_series_set *out)
{
  struct nn_tsdb *db = ctx;
  int64_t mint = hints ? hints->mint : INT64_MIN, maxt = hints ? hints->maxt : INT64_MAX;
  struct samples sc = {0};
  struct nn__tsdb_bseries *bs = NULL;
  int rc = 0;
  memset(out, 0, sizeof(*out));
  struct set_priv *p = calloc(1, sizeof(*p));
  if (!p)
    return NN_ENOMEM;
  nn_pool_init(&p->pool, SIZE_MAX);
  p->max_samples = hints ? hints->max_samples : 0;
  out->priv = p;
  out->release = on_release;
  for (size_t i = 0; i < db->nblocks && rc == 0; i++) {
    struct nn__tsdb_block *b = db->blocks[i];
    if (!block_overlaps(b, mint, maxt))
      continue;
    if (!bs && !(bs = calloc(1, sizeof(*bs)))) {
      rc = NN_ENOMEM;
      break;
    }
    rc = select_block(db, b, ms, nms, mint, maxt, p, &sc, bs);
  }
  if (rc == 0)
    rc = select_head(db, ms, nms, head_mint(db, mint), maxt, p, &sc);
  if (rc == 0)
    rc = merge_series(p);
  out->series = p->series;
  out->n = p->n;
  free(sc.t);
  free(sc.v);
  if (bs)
    free(bs->chunks);
  free(bs);
  if (rc < 0)
    out->release(out);
  return rc;
}

/* ---- streaming select ---- */

#define MAX_RUNS 16 /* sources merged run by run; beyond, sorted together */

/* One matching series in one source. Its labels point into the source's symbols (the
 * head's table or a block's mapping), which stay put while the loop runs the query. */
struct sentry {
  const struct nn_label *ls;
  uint32_t nls;
  uint32_t src; /* index into db->blocks, or db->nblocks for the head */
  union {
    uint64_t ref;               /* a block's series entry */
    struct nn__tsdb_series *hs; /* the head's series, which stays put as its symbols do */
  } u;
};

/* A small select (an SLO's or a rule's few series) runs without the allocator: entries,
 * label arrays and the first samples live in the stream itself, on the caller's stack. */
#define STREAM_INL_ENTRIES 16
#define STREAM_INL_LABELS  128
#define STREAM_INL_SAMPLES 256

struct stream {
  struct nn_tsdb *db;
  const struct nn_matcher *ms;
  size_t nms;
  int64_t mint, maxt;
  struct nn_pool pool; /* label arrays beyond lbl */
  struct sentry *e;    /* e_inl until it outgrows it */
  size_t n, cap;
  struct samples sc, tmp;      /* the series being handed out; a scratch for merging */
  struct nn__tsdb_bseries *bs; /* allocated by the first block searched */
  size_t nlbl;
  struct sentry e_inl[STREAM_INL_ENTRIES];
  struct nn_label lbl[STREAM_INL_LABELS];
  int64_t t_inl[STREAM_INL_SAMPLES];
  double v_inl[STREAM_INL_SAMPLES];
};

static int stream_push(struct stream *st, uint32_t src, uint64_t ref, struct nn__tsdb_series *hs,
                       size_t nls, const char *(*sym)(const void *ctx, uint32_t id),
                       const void *ctx, const uint32_t *syms)
{
  if (st->n == st->cap) {
    size_t nc = st->cap > STREAM_INL_ENTRIES ? st->cap * 2 : 256;
    struct sentry *ne = realloc(st->e == st->e_inl ? NULL : st->e, nc * sizeof(*ne));
    if (!ne)
      return NN_ENOMEM;
    if (st->e == st->e_inl)
      memcpy(ne, st->e_inl, st->n * sizeof(*ne));
    st->e = ne;
    st->cap = nc;
  }
  size_t nl = nls ? nls : 1;
  struct nn_label *ls;
  if (nl <= STREAM_INL_LABELS - st->nlbl) {
    ls = st->lbl + st->nlbl;
    st->nlbl += nl;
  } else if (!(ls = nn_pool_alloc(&st->pool, nl * sizeof(*ls)))) {
    return NN_ENOMEM;
  }
  for (size_t k = 0; k < nls; k++) {
    ls[k].name = sym(ctx, syms[2 * k]);
    ls[k].value = sym(ctx, syms[2 * k + 1]);
    if (!ls[k].name || !ls[k].value)
      return NN_ECORRUPT;
  }
  struct sentry *e = &st->e[st->n++];
  *e = (struct sentry){ls, (uint32_t)nls, src, {ref}};
  if (hs)
    e->u.hs = hs;
  return 0;
}

static const char *head_sym(const void *ctx, uint32_t id)
{
  return nn__tsdb_sym_str(ctx, id);
}

static const char *block_sym(const void *ctx, uint32_t id)
{
  return nn__tsdb_bindex_sym(ctx, id);
}

static int stream_block(struct stream *st, uint32_t bi)
{
  struct nn__tsdb_block *b = st->db->blocks[bi];
  uint64_t *refs = NULL;
  size_t nrefs = 0, n0 = st->n;
  if (!st->bs && !(st->bs = calloc(1, sizeof(*st->bs))))
    return NN_ENOMEM;
  int rc = nn__tsdb_bindex_select(&b->ix, st->ms, st->nms, &refs, &nrefs);
  for (size_t i = 0; i < nrefs && rc == 0; i++) {
    if ((rc = nn__tsdb_bindex_series(&b->ix, refs[i], st->bs)) < 0)
      break;
    bool in = false;
    for (uint32_t c = 0; c < st->bs->nchunks && !in; c++)
      in = st->bs->chunks[c].maxt >= st->mint && st->bs->chunks[c].mint <= st->maxt;
    if (in)
      rc = stream_push(st, bi, refs[i], NULL, st->bs->nlabels, block_sym, &b->ix, st->bs->syms);
  }
  free(refs);
  if (rc == NN_ECORRUPT)
    st->n = n0; /* a block answers whole or not at all */
  return block_damage(st->db, b, rc, "postings or series entry");
}

static int stream_head(struct stream *st, int64_t mint)
{
  struct nn_tsdb *db = st->db;
  uint64_t *refs = NULL;
  size_t nrefs = 0;
  int rc = nn__tsdb_index_select(db, st->ms, st->nms, &refs, &nrefs);
  for (size_t i = 0; i < nrefs && rc == 0; i++) {
    struct nn__tsdb_series *s = nn__tsdb_series_by_ref(db, refs[i]);
    if (s && overlaps(s, mint, st->maxt))
      rc = stream_push(st, (uint32_t)db->nblocks, 0, s, s->nlabels, head_sym, &db->syms, s->syms);
  }
  free(refs);
  return rc;
}

/* nn_labels_cmp, faster where strings are shared: within a source equal strings are one
 * symbol, so most names and values of neighbouring series compare by pointer. */
static int labels_cmp(const struct sentry *x, const struct sentry *y)
{
  size_t n = x->nls < y->nls ? x->nls : y->nls;
  for (size_t i = 0; i < n; i++) {
    const struct nn_label *a = &x->ls[i], *b = &y->ls[i];
    int c;
    if (a->name != b->name && (c = strcmp(a->name, b->name)) != 0)
      return c;
    if (a->value != b->value && (c = strcmp(a->value, b->value)) != 0)
      return c;
  }
  return x->nls < y->nls ? -1 : x->nls > y->nls;
}

static int cmp_sentry(const void *a, const void *b)
{
  const struct sentry *x = a, *y = b;
  int c = labels_cmp(x, y);
  return c ? c : (x->src > y->src) - (x->src < y->src);
}

/* Appends the samples of entry e in [mint, maxt] to st->sc, merging by time when they do
 * not all follow what is there (sources overlap only after out-of-order block writes);
 * on equal times the earlier source's sample stays. */
static int stream_decode(struct stream *st, const struct sentry *e)
{
  struct nn_tsdb *db = st->db;
  struct samples *sc = &st->sc;
  size_t n0 = sc->n;
  int rc = 0;
  if (e->src == db->nblocks) {
    struct nn__tsdb_series *s = e->u.hs;
    int64_t mint = head_mint(db, st->mint), maxt = st->maxt;
    for (uint32_t i = 0; i < s->nchunks && rc == 0; i++) {
      const struct nn__tsdb_chunk *c = &s->chunks[i];
      if (c->maxt >= mint && c->mint <= maxt)
        rc = decode_chunk(1, c->data, c->len, mint, maxt, sc);
    }
    if (rc == 0 && s->head.n && s->head_mint <= maxt && s->head.t >= mint)
      rc = decode_head(s, mint, maxt, sc);
  } else {
    struct nn__tsdb_block *b = db->blocks[e->src];
    if (b->bad)
      return 0;
    if ((rc = nn__tsdb_bindex_series(&b->ix, e->u.ref, st->bs)) == 0) {
      for (uint32_t c = 0; c < st->bs->nchunks && rc == 0; c++) {
        const struct nn__tsdb_bchunk *m = &st->bs->chunks[c];
        if (m->maxt < st->mint || m->mint > st->maxt)
          continue;
        const uint8_t *data;
        size_t len;
        if ((rc = nn__tsdb_bchunk_read(b->cmap, b->clen, m->ref, &data, &len)) == 0)
          rc = decode_chunk(b->cversion, data, len, st->mint, st->maxt, sc);
      }
    }
    if (rc == NN_ECORRUPT) {
      /* The series' earlier parts already went out; the block is skipped from now on. */
      sc->n = n0;
      return block_damage(db, b, rc, "chunk checksum");
    }
  }
  if (rc < 0 || n0 == 0 || sc->n == n0 || sc->t[n0] > sc->t[n0 - 1])
    return rc;
  struct samples *m = &st->tmp; /* may hold the inline buffers after a swap */
  m->n = 0;
  if (samples_reserve(m, sc->n) < 0)
    return NN_ENOMEM;
  size_t i = 0, j = n0, k = 0;
  while (i < n0 || j < sc->n) {
    if (j == sc->n || (i < n0 && sc->t[i] <= sc->t[j])) {
      if (j < sc->n && sc->t[i] == sc->t[j])
        j++;
      m->t[k] = sc->t[i];
      m->v[k++] = sc->v[i++];
    } else {
      m->t[k] = sc->t[j];
      m->v[k++] = sc->v[j++];
    }
  }
  m->n = k;
  struct samples x = *sc;
  *sc = *m;
  *m = x;
  return 0;
}

static int q_select_stream(void *ctx, const struct nn_matcher *ms, size_t nms,
                           const struct nn_select_hints *hints, nn_series_cb fn, void *ud)
{
  struct nn_tsdb *db = ctx;
  struct stream st;
  st.db = db;
  st.ms = ms;
  st.nms = nms;
  st.mint = hints ? hints->mint : INT64_MIN;
  st.maxt = hints ? hints->maxt : INT64_MAX;
  nn_pool_init(&st.pool, SIZE_MAX);
  st.e = st.e_inl;
  st.n = 0;
  st.cap = STREAM_INL_ENTRIES;
  st.sc = (struct samples){st.t_inl, st.v_inl, 0, STREAM_INL_SAMPLES, true};
  st.tmp = (struct samples){NULL, NULL, 0, 0, false};
  st.bs = NULL;
  st.nlbl = 0;
  int rc = 0;
  for (size_t i = 0; i < db->nblocks && rc == 0; i++)
    if (block_overlaps(db->blocks[i], st.mint, st.maxt))
      rc = stream_block(&st, (uint32_t)i);
  if (rc == 0)
    rc = stream_head(&st, head_mint(db, st.mint));
  /* Each source's entries are a run: a block's in label order already (its index holds
   * series in label order), the head's sorted here. Few runs are merged a group of equal
   * label sets at a time; many (a query over many blocks) are sorted together. */
  size_t nruns = 0, run[MAX_RUNS + 1];
  for (size_t i = 0; i < st.n; i++) {
    bool cut = i == 0 || st.e[i].src != st.e[i - 1].src;
    if (cut && nruns < MAX_RUNS + 1)
      run[nruns] = i;
    nruns += cut;
  }
  if (nruns > MAX_RUNS) {
    qsort(st.e, st.n, sizeof(*st.e), cmp_sentry);
    nruns = 1;
    run[0] = 0;
  }
  size_t pos[MAX_RUNS], end[MAX_RUNS];
  for (size_t k = 0; k < nruns; k++) {
    pos[k] = run[k];
    end[k] = k + 1 < nruns ? run[k + 1] : st.n;
    bool sorted = true;
    for (size_t i = pos[k] + 1; i < end[k] && sorted; i++)
      sorted = labels_cmp(&st.e[i - 1], &st.e[i]) < 0;
    if (!sorted)
      qsort(st.e + pos[k], end[k] - pos[k], sizeof(*st.e), cmp_sentry);
  }
  while (rc == 0) {
    /* The smallest label set at the runs' heads, then its entries in source order. */
    size_t best = SIZE_MAX;
    for (size_t k = 0; k < nruns; k++)
      if (pos[k] < end[k] && (best == SIZE_MAX || labels_cmp(&st.e[pos[k]], &st.e[pos[best]]) < 0))
        best = k;
    if (best == SIZE_MAX)
      break;
    const struct sentry *g = &st.e[pos[best]];
    st.sc.n = 0;
    for (size_t k = 0; k < nruns && rc == 0; k++) {
      /* Within a run equal label sets follow each other (one per source, unless sorted
       * together). */
      while (rc == 0 && pos[k] < end[k] &&
             (&st.e[pos[k]] == g || labels_cmp(&st.e[pos[k]], g) == 0))
        rc = stream_decode(&st, &st.e[pos[k]++]);
    }
    if (rc == 0 && st.sc.n) {
      struct nn_series s = {g->ls, g->nls, st.sc.t, st.sc.v, st.sc.n};
      rc = fn(ud, &s);
    }
  }
  nn_pool_clear(&st.pool);
  if (st.e != st.e_inl)
    free(st.e);
  samples_free(&st.sc);
  samples_free(&st.tmp);
  if (st.bs)
    free(st.bs->chunks);
  free(st.bs);
  return rc;
}

/* ---- label names and values ---- */

struct strs {
  const char **v;
  size_t n, cap;
};

static int strs_push(struct strs *s, const char *str)
{
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 64;
    const char **nv = realloc(s->v, nc * sizeof(*nv));
    if (!nv)
      return NN_ENOMEM;
    s->v = nv;
    s->cap = nc;
  }
  s->v[s->n++] = str;
  return 0;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts, removes duplicates and copies the strings into out. */
static int strs_to_list(struct strs *s, struct nn_strlist *out)
{
  out->v = NULL;
  out->n = 0;
  if (s->n == 0)
    return 0;
  qsort(s->v, s->n, sizeof(*s->v), cmp_str);
  if (!(out->v = calloc(s->n, sizeof(*out->v))))
    return NN_ENOMEM;
  for (size_t i = 0; i < s->n; i++) {
    if (out->n && strcmp(out->v[out->n - 1], s->v[i]) == 0)
      continue;
    if (!(out->v[out->n] = strdup(s->v[i]))) {
      nn_strlist_free(out);
      return NN_ENOMEM;
    }
    out->n++;
  }
  return 0;
}

/* name == NULL: collect label names; otherwise the values of label name. */
static int head_labels(struct nn_tsdb *db, const char *name, const struct nn_matcher *ms,
                       size_t nms, int64_t mint, int64_t maxt, struct strs *out)
{
  uint32_t nsym = 0;
  if (name && !(nsym = nn__tsdb_sym_find(&db->syms, name)))
    return 0;
  uint8_t *marks = calloc(db->syms.n + 1, 1);
  if (!marks)
    return NN_ENOMEM;
  int rc = 0;
  bool whole = mint <= db->min_t && maxt >= db->max_t;
  if (nms == 0 && whole) {
    /* The index answers without touching series. */
    if (name) {
      const struct nn__tsdb_lname *ln = nn__tsdb_index_name(&db->idx, nsym);
      for (uint32_t i = 0; ln && i < ln->n; i++)
        marks[ln->vals[i].value] = 1;
    } else {
      for (uint32_t i = 0; i < db->idx.nnames; i++)
        marks[db->idx.names[i].name] = 1;
    }
  } else {
    uint64_t *refs = NULL;
    size_t nrefs = 0;
    if ((rc = nn__tsdb_index_select(db, ms, nms, &refs, &nrefs)) < 0)
      goto out;
    for (size_t i = 0; i < nrefs; i++) {
      const struct nn__tsdb_series *s = nn__tsdb_series_by_ref(db, refs[i]);
      if (!s || !overlaps(s, mint, maxt))
        continue;
      for (uint32_t k = 0; k < s->nlabels; k++) {
        if (!name)
          marks[s->syms[2 * k]] = 1;
        else if (s->syms[2 * k] == nsym)
          marks[s->syms[2 * k + 1]] = 1;
      }
    }
    free(refs);
  }
  for (uint32_t id = 1; id < db->syms.n && rc == 0; id++)
    if (marks[id])
      rc = strs_push(out, db->syms.str[id]);
out:
  free(marks);
  return rc;
}

static int block_labels(struct nn_tsdb *db, struct nn__tsdb_block *b, const char *name,
                        const struct nn_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                        struct strs *out)
{
  const struct nn__tsdb_bindex *ix = &b->ix;
  uint32_t n, v, off, prev = UINT32_MAX;
  int rc = 0;
  if (nms == 0 && b->mint >= mint && b->maxt - 1 <= maxt) {
    uint32_t lo = 0, hi = ix->npairs;
    if (name && !nn__tsdb_bindex_name_range(ix, name, &lo, &hi))
      return 0;
    for (uint32_t i = lo; i < hi && rc == 0; i++) {
      nn__tsdb_bindex_pair(ix, i, &n, &v, &off);
      if (!name && n == prev)
        continue;
      prev = n;
      rc = strs_push(out, nn__tsdb_bindex_sym(ix, name ? v : n));
    }
    return rc;
  }
  struct nn__tsdb_bseries *bs = calloc(1, sizeof(*bs));
  uint64_t *refs = NULL;
  size_t nrefs = 0;
  if (!bs)
    return NN_ENOMEM;
  rc = nn__tsdb_bindex_select(ix, ms, nms, &refs, &nrefs);
  for (size_t i = 0; i < nrefs && rc == 0; i++) {
    if ((rc = nn__tsdb_bindex_series(ix, refs[i], bs)) < 0)
      break;
    /* As for the head: the series' span, not its exact samples, meets the range. */
    bool in_range = bs->chunks[0].mint <= maxt && bs->chunks[bs->nchunks - 1].maxt >= mint;
    for (uint32_t k = 0; in_range && k < bs->nlabels && rc == 0; k++) {
      const char *ln = nn__tsdb_bindex_sym(ix, bs->syms[2 * k]);
      if (!name)
        rc = strs_push(out, ln);
      else if (strcmp(ln, name) == 0)
        rc = strs_push(out, nn__tsdb_bindex_sym(ix, bs->syms[2 * k + 1]));
    }
  }
  free(refs);
  free(bs->chunks);
  free(bs);
  return block_damage(db, b, rc, "postings or series entry");
}

static int collect_labels(struct nn_tsdb *db, const char *name, const struct nn_matcher *ms,
                          size_t nms, int64_t mint, int64_t maxt, struct nn_strlist *out)
{
  struct strs s = {0};
  int rc = 0;
  for (size_t i = 0; i < db->nblocks && rc == 0; i++)
    if (block_overlaps(db->blocks[i], mint, maxt))
      rc = block_labels(db, db->blocks[i], name, ms, nms, mint, maxt, &s);
  if (rc == 0)
    rc = head_labels(db, name, ms, nms, head_mint(db, mint), maxt, &s);
  if (rc == 0)
    rc = strs_to_list(&s, out);
  else
    memset(out, 0, sizeof(*out));
  free(s.v);
  return rc;
}

static int q_label_names(void *ctx, const struct nn_matcher *ms, size_t nms, int64_t mint,
                         int64_t maxt, struct nn_strlist *out)
{
  return collect_labels(ctx, NULL, ms, nms, mint, maxt, out);
}

static int q_label_values(void *ctx, const char *name, const struct nn_matcher *ms, size_t nms,
                          int64_t mint, int64_t maxt, struct nn_strlist *out)
{
  return collect_labels(ctx, name, ms, nms, mint, maxt, out);
}

void nn_tsdb_querier(struct nn_tsdb *db, struct nn_querier *out)
{
  out->ctx = db;
  out->select = q_select;
  out->select_stream = q_select_stream;
  out->label_names = q_label_names;
  out->label_values = q_label_values;
}
