/* SPDX-License-Identifier: Apache-2.0 */
/* Log queries: stream selection through the label index, a scan of head blocks and chunks
 * in the time range with line filters, a limit applied across streams as Loki applies it
 * (the oldest entries forward, the newest backward), and Loki-shaped JSON output. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"

/* ---- stream selection ---- */

static int ids_cmp(const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Ids of streams whose value for m's label satisfies m, for a matcher that does not match
 * "" (so only streams carrying the label qualify). Sorted, unique. */
static int positive_ids(const struct nn__ls_tenant *t, const struct nn_matcher *m, uint32_t **out,
                        size_t *n)
{
  *out = NULL;
  *n = 0;
  const struct nn__ls_lname *ln = nn__logstore_map_get(&t->index, m->name, strlen(m->name));
  if (!ln)
    return 0;
  size_t total = 0;
  if (m->type == NN_MATCH_EQ) {
    const struct nn__ls_postings *p = nn__logstore_map_get(&ln->values, m->value, strlen(m->value));
    if (!p || !p->n)
      return 0;
    if (!(*out = malloc(p->n * sizeof(**out))))
      return NN_ENOMEM;
    memcpy(*out, p->ids, p->n * sizeof(**out));
    *n = p->n;
    return 0;
  }
  for (size_t i = 0; i < ln->values.cap; i++)
    if (ln->values.slots[i].key)
      total += ((const struct nn__ls_postings *)ln->values.slots[i].val)->n;
  if (!total)
    return 0;
  uint32_t *v = malloc(total * sizeof(*v));
  if (!v)
    return NN_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < ln->values.cap; i++) {
    const struct nn__ls_postings *p = ln->values.slots[i].val;
    if (ln->values.slots[i].key && nn_matcher_matches(m, p->value)) {
      memcpy(v + k, p->ids, p->n * sizeof(*v));
      k += p->n;
    }
  }
  qsort(v, k, sizeof(*v), ids_cmp);
  *out = v;
  *n = k; /* one value per stream and label, so no duplicates */
  return 0;
}

static int stream_key_cmp(const void *a, const void *b)
{
  const struct nn__ls_stream *x = *(struct nn__ls_stream *const *)a;
  const struct nn__ls_stream *y = *(struct nn__ls_stream *const *)b;
  return nn_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

/* The tenant's streams that match every matcher (all when nm == 0) and have data in
 * [start, end), sorted by label set. */
static int select_streams(struct nn_logstore *s, const struct nn__ls_tenant *t,
                          const struct nn_matcher *ms, size_t nm, int64_t start, int64_t end,
                          struct nn__ls_stream ***out, size_t *nout)
{
  uint32_t *set = NULL;
  size_t nset = 0;
  bool all = true;
  int rc = 0;
  *out = NULL;
  *nout = 0;
  for (size_t k = 0; k < nm; k++) {
    if (nn_matcher_matches_empty(&ms[k]))
      continue;
    uint32_t *ids;
    size_t n;
    if ((rc = positive_ids(t, &ms[k], &ids, &n)) < 0)
      goto out;
    if (all) {
      set = ids;
      nset = n;
      all = false;
    } else {
      size_t a = 0, b = 0, w = 0;
      while (a < nset && b < n) {
        if (set[a] < ids[b])
          a++;
        else if (set[a] > ids[b])
          b++;
        else {
          set[w++] = set[a];
          a++;
          b++;
        }
      }
      nset = w;
      free(ids);
    }
    if (nset == 0)
      goto out;
  }
  size_t cap = all ? t->nstreams : nset;
  struct nn__ls_stream **v = malloc((cap ? cap : 1) * sizeof(*v));
  if (!v) {
    rc = NN_ENOMEM;
    goto out;
  }
  size_t n = 0;
  if (all) {
    for (size_t i = 0; i < t->streams.cap; i++)
      if (t->streams.slots[i].key && n < cap)
        v[n++] = t->streams.slots[i].val;
  } else {
    for (size_t i = 0; i < nset; i++)
      v[n++] = s->by_id[set[i]];
  }
  size_t w = 0;
  for (size_t i = 0; i < n; i++) {
    struct nn__ls_stream *st = v[i];
    bool ok = st && st->tenant == t && st->min_t < end && st->max_t >= start;
    for (size_t k = 0; ok && k < nm; k++) {
      const char *val = nn_labels_get(st->labels, st->nlabels, ms[k].name);
      ok = nn_matcher_matches(&ms[k], val ? val : "");
    }
    if (ok)
      v[w++] = st;
  }
  qsort(v, w, sizeof(*v), stream_key_cmp);
  *out = v;
  *nout = w;
out:
  free(set);
  return rc;
}

int nn__logstore_select_streams(struct nn_logstore *s, const struct nn__ls_tenant *t,
                                const struct nn_matcher *ms, size_t nm, int64_t start, int64_t end,
                                struct nn__ls_stream ***out, size_t *nout)
{
  return select_streams(s, t, ms, nm, start, end, out, nout);
}

/* ---- scanning ---- */

struct cand {
  int64_t ts;
  uint32_t sidx, ord;
  char *line; /* malloc'd: line bytes then the metadata block */
  size_t len, mlen;
};

/* A result stream of a query with a pipeline: a label set after the stages. */
struct lgroup {
  struct nn_label *labels; /* one allocation with the strings */
  size_t nl;
  char *key;
};

struct scan {
  struct nn_logstore *s;
  const struct nn__ls_query *q;
  enum nn_logstore_direction dir;
  size_t limit;
  int64_t start, end;
  struct cand *c;
  size_t n, cap;
  size_t bytes;
  bool have_thresh;
  int64_t thresh; /* the worst timestamp among `limit` kept entries */
  struct nn_logstore_query_stats *stats;
  char *err;
  size_t errlen;
  /* With a pipeline: its run state, and the result streams by label set. */
  struct nn__ls_prun run;
  struct lgroup *g;
  size_t ng, cg;
  struct nn__ls_map gmap; /* key -> index + 1 */
};

static int cand_cmp(const void *a, const void *b, void *arg)
{
  const struct cand *x = a, *y = b;
  bool back = *(const enum nn_logstore_direction *)arg == NN_LOGSTORE_BACKWARD;
  if (x->ts != y->ts)
    return (x->ts < y->ts) != back ? -1 : 1;
  if (x->sidx != y->sidx)
    return x->sidx < y->sidx ? -1 : 1;
  if (x->ord != y->ord)
    return (x->ord < y->ord) != back ? -1 : 1;
  return 0;
}

static void cands_trim(struct scan *sc, size_t keep)
{
  if (sc->n)
    qsort_r(sc->c, sc->n, sizeof(*sc->c), cand_cmp, &sc->dir);
  for (size_t i = keep; i < sc->n; i++) {
    sc->bytes -= sc->c[i].len + sc->c[i].mlen + sizeof(struct cand);
    free(sc->c[i].line);
  }
  if (sc->n > keep)
    sc->n = keep;
  if (keep && sc->n == keep) {
    sc->have_thresh = true;
    sc->thresh = sc->c[keep - 1].ts;
  }
}

/* True when no entry at ts can make it into the result any more. */
static bool beyond(const struct scan *sc, int64_t ts)
{
  if (!sc->have_thresh)
    return false;
  return sc->dir == NN_LOGSTORE_FORWARD ? ts > sc->thresh : ts < sc->thresh;
}

static int too_big(struct scan *sc)
{
  snprintf(sc->err, sc->errlen,
           "the query result exceeds %zu bytes; narrow the selector or time range, or lower "
           "the limit",
           sc->s->cfg.query_max_bytes);
  return NN_ELIMIT;
}

/* Runs the pipeline over a line that passed the line filters: 1 with *gidx, the result
 * stream of its label set, or 0 when a label filter drops it. */
static int pipeline_group(struct scan *sc, const struct nn__ls_stream *st,
                          const struct nn__ls_ent *e, uint32_t *gidx)
{
  size_t nl;
  int rc = nn__logstore_prun_line(&sc->run, st->labels, st->nlabels, e->line, e->len);
  if (rc <= 0 || (rc = nn__logstore_prun_labels(&sc->run, NULL, 0, false, false, &nl)) < 0)
    return rc == NN_ELIMIT ? too_big(sc) : rc;
  const struct nn_buf *k = &sc->run.key;
  uintptr_t idx = (uintptr_t)nn__logstore_map_get(&sc->gmap, k->data ? k->data : "", k->len);
  if (idx) {
    *gidx = (uint32_t)(idx - 1);
    return 1;
  }
  size_t bytes = nl * sizeof(struct nn_label) + k->len + k->len + sizeof(struct lgroup) + 64;
  if (sc->bytes + bytes > sc->s->cfg.query_max_bytes || sc->ng >= UINT32_MAX - 1)
    return too_big(sc);
  if (sc->ng == sc->cg) {
    size_t nc = sc->cg ? sc->cg * 2 : 16;
    struct lgroup *ng = realloc(sc->g, nc * sizeof(*ng));
    if (!ng)
      return NN_ENOMEM;
    sc->g = ng;
    sc->cg = nc;
  }
  struct lgroup *g = &sc->g[sc->ng];
  char *mem = malloc(nl * sizeof(struct nn_label) + k->len + 1);
  g->key = malloc(k->len + 1);
  if (!mem || !g->key) {
    free(mem);
    free(g->key);
    return NN_ENOMEM;
  }
  memcpy(g->key, k->data ? k->data : "", k->len);
  g->labels = (struct nn_label *)(void *)mem;
  g->nl = nl;
  char *w = mem + nl * sizeof(struct nn_label);
  memcpy(w, k->data ? k->data : "", k->len); /* name\0value\0..., in label order */
  for (size_t i = 0; i < nl; i++) {
    g->labels[i].name = w;
    w += strlen(w) + 1;
    g->labels[i].value = w;
    w += strlen(w) + 1;
  }
  sc->ng++;
  sc->bytes += bytes;
  if ((rc = nn__logstore_map_put(&sc->gmap, g->key, k->len, (void *)(uintptr_t)sc->ng)) < 0)
    return rc;
  *gidx = (uint32_t)(sc->ng - 1);
  return 1;
}

static int consider(struct scan *sc, const struct nn__ls_stream *st, uint32_t sidx, uint32_t ord,
                    const struct nn__ls_ent *e)
{
  if (e->ts < sc->start || e->ts >= sc->end)
    return 0;
  sc->stats->lines_scanned++;
  sc->stats->bytes_scanned += e->len;
  if (beyond(sc, e->ts) || !nn__logstore_filters_match(sc->q, e->line, e->len))
    return 0;
  const char *line = e->line;
  size_t len = e->len;
  if (sc->q->pl) {
    int rc = pipeline_group(sc, st, e, &sidx);
    if (rc <= 0)
      return rc;
    line = sc->run.line; /* after a line_format, the formatted line */
    len = sc->run.llen;
  }
  size_t need = len + e->mlen + sizeof(struct cand);
  if (sc->bytes + need > sc->s->cfg.query_max_bytes) {
    snprintf(sc->err, sc->errlen,
             "the query result exceeds %zu bytes; narrow the selector or time range, or lower "
             "the limit",
             sc->s->cfg.query_max_bytes);
    return NN_ELIMIT;
  }
  if (sc->n == sc->cap) {
    size_t nc = sc->cap ? sc->cap * 2 : 256;
    struct cand *n = realloc(sc->c, nc * sizeof(*n));
    if (!n)
      return NN_ENOMEM;
    sc->c = n;
    sc->cap = nc;
  }
  char *copy = malloc(len + e->mlen + 1);
  if (!copy)
    return NN_ENOMEM;
  memcpy(copy, line, len);
  memcpy(copy + len, e->meta, e->mlen);
  sc->c[sc->n++] = (struct cand){e->ts, sidx, ord, copy, len, e->mlen};
  sc->bytes += need;
  /* Keep at most 2 x limit candidates: trimming to the best `limit` bounds memory and
   * lets later chunks be skipped by their time range alone. */
  if (sc->limit && sc->n >= 2 * sc->limit)
    cands_trim(sc, sc->limit);
  return 0;
}

static int scan_stream(struct scan *sc, struct nn__ls_stream *st, uint32_t sidx)
{
  uint32_t ord = 0;
  int rc = 0;
  for (size_t k = 0; k < st->nchunks; k++) {
    const struct nn__ls_chunk *c = &st->chunks[k];
    if (c->max_t < sc->start || c->min_t >= sc->end)
      continue;
    if (sc->dir == NN_LOGSTORE_FORWARD ? beyond(sc, c->min_t) : beyond(sc, c->max_t))
      continue;
    sc->stats->chunks_scanned++;
    if ((rc = nn__logstore_chunk_decompress(c->data, c->len, c->raw_len, &sc->s->raw)) < 0) {
      snprintf(sc->err, sc->errlen, "chunk of stream %s is unreadable: %s", st->key,
               nn_strerror(rc));
      return rc;
    }
    struct nn__ls_body_iter it = {(const uint8_t *)sc->s->raw.data, sc->s->raw.len, 0, 0, false};
    struct nn__ls_ent e;
    while ((rc = nn__logstore_body_next(&it, &e)) == 1)
      if ((rc = consider(sc, st, sidx, ord++, &e)) < 0)
        return rc;
    if (rc < 0) {
      snprintf(sc->err, sc->errlen, "chunk of stream %s is corrupt", st->key);
      return rc;
    }
  }
  const struct nn__ls_head *h = &st->head;
  for (size_t k = 0; k < h->n; k++) {
    const struct nn__ls_hentry *he = &h->e[k];
    struct nn__ls_ent e = {he->ts, (const char *)h->buf + he->off, he->len,
                           h->buf + he->off + he->len, he->mlen};
    if ((rc = consider(sc, st, sidx, ord++, &e)) < 0)
      return rc;
  }
  return 0;
}

/* Decodes a metadata block into pool memory. */
static int meta_decode(struct nn_pool *pool, const uint8_t *p, size_t n, struct nn_label **out,
                       size_t *nout)
{
  size_t i = 0;
  uint64_t cnt;
  *out = NULL;
  *nout = 0;
  if (!ls_get_uvarint(p, n, &i, &cnt) || cnt > LS_MAX_META_PAIRS)
    return NN_ECORRUPT;
  if (!cnt)
    return 0;
  struct nn_label *v = nn_pool_alloc(pool, cnt * sizeof(*v));
  if (!v)
    return NN_ELIMIT;
  for (uint64_t k = 0; k < cnt; k++) {
    const uint8_t *a, *b;
    size_t al, bl;
    if (!ls_get_bytes(p, n, &i, &a, &al) || !ls_get_bytes(p, n, &i, &b, &bl))
      return NN_ECORRUPT;
    v[k].name = nn_pool_strndup(pool, (const char *)a, al);
    v[k].value = nn_pool_strndup(pool, (const char *)b, bl);
    if (!v[k].name || !v[k].value)
      return NN_ELIMIT;
  }
  *out = v;
  *nout = (size_t)cnt;
  return 0;
}

/* The label set of result stream i: a stream's, or a pipeline group's. */
static void result_labels(const struct scan *sc, struct nn__ls_stream **streams, size_t i,
                          const struct nn_label **l, size_t *n)
{
  if (sc->q->pl) {
    *l = sc->g[i].labels;
    *n = sc->g[i].nl;
  } else {
    *l = streams[i]->labels;
    *n = streams[i]->nlabels;
  }
}

static int build_result(struct scan *sc, struct nn__ls_stream **streams, size_t nstreams,
                        struct nn_logstore_result *out)
{
  struct nn_pool *pool = &out->pool;
  size_t *counts = calloc(nstreams ? nstreams : 1, sizeof(*counts));
  size_t *slot = calloc(nstreams ? nstreams : 1, sizeof(*slot));
  int rc = 0;
  if (!counts || !slot) {
    rc = NN_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < sc->n; i++)
    counts[sc->c[i].sidx]++;
  size_t used = 0;
  for (size_t i = 0; i < nstreams; i++)
    used += counts[i] > 0;
  out->streams = nn_pool_calloc(pool, (used ? used : 1) * sizeof(*out->streams));
  if (!out->streams)
    goto toobig;
  for (size_t i = 0; i < nstreams; i++) {
    if (!counts[i])
      continue;
    struct nn_logstore_qstream *qs = &out->streams[out->n];
    slot[i] = out->n++;
    const struct nn_label *sl;
    size_t snl;
    result_labels(sc, streams, i, &sl, &snl);
    struct nn_label *labels = nn_pool_alloc(pool, (snl ? snl : 1) * sizeof(*labels));
    qs->entries = nn_pool_alloc(pool, counts[i] * sizeof(*qs->entries));
    if (!labels || !qs->entries)
      goto toobig;
    for (size_t k = 0; k < snl; k++) {
      labels[k].name = nn_pool_strndup(pool, sl[k].name, strlen(sl[k].name));
      labels[k].value = nn_pool_strndup(pool, sl[k].value, strlen(sl[k].value));
      if (!labels[k].name || !labels[k].value)
        goto toobig;
    }
    qs->labels = labels;
    qs->nlabels = snl;
  }
  for (size_t i = 0; i < sc->n; i++) {
    const struct cand *c = &sc->c[i];
    struct nn_logstore_qstream *qs = &out->streams[slot[c->sidx]];
    struct nn_logstore_qentry *qe = &qs->entries[qs->n++];
    struct nn_label *meta;
    qe->ts_ns = c->ts;
    qe->len = c->len;
    if (!(qe->line = nn_pool_strndup(pool, c->line, c->len)))
      goto toobig;
    if ((rc = meta_decode(pool, (const uint8_t *)c->line + c->len, c->mlen, &meta, &qe->nmeta)) <
        0) {
      if (rc == NN_ELIMIT)
        goto toobig;
      goto out;
    }
    qe->meta = meta;
  }
  out->stats.entries_returned = sc->n;
  goto out;
toobig:
  snprintf(sc->err, sc->errlen,
           "the query result exceeds %zu bytes; narrow the selector or "
           "time range, or lower the limit",
           sc->s->cfg.query_max_bytes);
  rc = NN_ELIMIT;
out:
  free(counts);
  free(slot);
  return rc;
}

struct grank {
  const struct lgroup *g;
  uint32_t i;
};
static int grank_cmp(const void *a, const void *b)
{
  const struct grank *x = a, *y = b;
  return nn_labels_cmp(x->g->labels, x->g->nl, y->g->labels, y->g->nl);
}

/* Orders the pipeline's result streams by label set, as streams are, and renumbers the
 * candidates' stream indexes to match. */
static int sort_groups(struct scan *sc)
{
  if (sc->ng < 2)
    return 0;
  struct grank *r = malloc(sc->ng * sizeof(*r));
  uint32_t *to = malloc(sc->ng * sizeof(*to));
  struct lgroup *ng = malloc(sc->ng * sizeof(*ng));
  if (!r || !to || !ng) {
    free(r);
    free(to);
    free(ng);
    return NN_ENOMEM;
  }
  for (size_t i = 0; i < sc->ng; i++)
    r[i] = (struct grank){&sc->g[i], (uint32_t)i};
  qsort(r, sc->ng, sizeof(*r), grank_cmp);
  for (size_t i = 0; i < sc->ng; i++) {
    to[r[i].i] = (uint32_t)i;
    ng[i] = *r[i].g;
  }
  for (size_t i = 0; i < sc->n; i++)
    sc->c[i].sidx = to[sc->c[i].sidx];
  free(sc->g);
  sc->g = ng;
  sc->cg = sc->ng;
  free(r);
  free(to);
  return 0;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int nn_logstore_query(struct nn_logstore *s, const char *tenant, const char *query,
                      int64_t start_ns, int64_t end_ns, enum nn_logstore_direction dir,
                      size_t limit, struct nn_logstore_result *out, char *err, size_t errlen)
{
  struct nn__ls_query q;
  struct nn__ls_stream **streams = NULL;
  size_t nstreams = 0;
  struct scan sc = {0};
  double t0 = now_s();
  int rc;
  memset(out, 0, sizeof(*out));
  nn_pool_init(&out->pool, s->cfg.query_max_bytes);
  if (errlen)
    err[0] = '\0';
  if (!query)
    query = "";
  if ((rc = nn__logstore_query_parse(query, strlen(query), &q, err, errlen)) < 0)
    return rc;
  const char *ul;
  if (nn__logstore_pipeline_unwrap(q.pl, &ul) != LS_CONV_NONE) {
    snprintf(err, errlen,
             "unwrap is only valid in a metric query such as "
             "sum_over_time({app=\"x\"} | unwrap latency [5m])");
    rc = NN_EINVAL;
    goto out;
  }
  if (dir != NN_LOGSTORE_FORWARD && dir != NN_LOGSTORE_BACKWARD) {
    snprintf(err, errlen, "invalid direction");
    rc = NN_EINVAL;
    goto out;
  }
  const struct nn__ls_tenant *t = nn__logstore_tenant(s, tenant, false);
  if (!t || start_ns >= end_ns)
    goto out;
  if ((rc = select_streams(s, t, q.m, q.nm, start_ns, end_ns, &streams, &nstreams)) < 0)
    goto out;
  sc.s = s;
  sc.q = &q;
  sc.dir = dir;
  sc.limit = limit;
  sc.start = start_ns;
  sc.end = end_ns;
  sc.stats = &out->stats;
  sc.err = err;
  sc.errlen = errlen;
  if (q.pl)
    nn__logstore_prun_init(&sc.run, q.pl, &sc.bytes, s->cfg.query_max_bytes);
  for (size_t i = 0; i < nstreams; i++)
    if ((rc = scan_stream(&sc, streams[i], (uint32_t)i)) < 0)
      goto out;
  cands_trim(&sc, limit && limit < sc.n ? limit : sc.n);
  if (q.pl && (rc = sort_groups(&sc)) < 0)
    goto out;
  rc = build_result(&sc, streams, q.pl ? sc.ng : nstreams, out);
out:
  if (q.pl) {
    nn__logstore_prun_fini(&sc.run);
    for (size_t i = 0; i < sc.ng; i++) {
      free(sc.g[i].labels);
      free(sc.g[i].key);
    }
    free(sc.g);
    nn__logstore_map_fini(&sc.gmap);
  }
  for (size_t i = 0; i < sc.n; i++)
    free(sc.c[i].line);
  free(sc.c);
  free(streams);
  nn__logstore_query_fini(&q);
  out->stats.exec_seconds = now_s() - t0;
  return rc;
}

void nn_logstore_result_fini(struct nn_logstore_result *r)
{
  nn_pool_fini(&r->pool);
  r->streams = NULL;
  r->n = 0;
}

/* ---- JSON ---- */

static int write_label_object(struct nn_buf *b, const struct nn_label *v, size_t n)
{
  int rc = nn_buf_appendc(b, '{');
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (i)
      rc = nn_buf_appendc(b, ',');
    if (rc == 0)
      rc = nn_buf_append_json_str(b, v[i].name, strlen(v[i].name));
    if (rc == 0)
      rc = nn_buf_appendc(b, ':');
    if (rc == 0)
      rc = nn_buf_append_json_str(b, v[i].value, strlen(v[i].value));
  }
  return rc ? rc : nn_buf_appendc(b, '}');
}

int nn_logstore_result_write_json(const struct nn_logstore_result *r, unsigned flags,
                                  struct nn_buf *out)
{
  int rc = nn_buf_appends(out, "{\"status\":\"success\",\"data\":{\"resultType\":\"streams\","
                               "\"result\":[");
  for (size_t i = 0; rc == 0 && i < r->n; i++) {
    const struct nn_logstore_qstream *qs = &r->streams[i];
    if (i && (rc = nn_buf_appendc(out, ',')) < 0)
      break;
    if ((rc = nn_buf_appends(out, "{\"stream\":")) < 0 ||
        (rc = write_label_object(out, qs->labels, qs->nlabels)) < 0 ||
        (rc = nn_buf_appends(out, ",\"values\":[")) < 0)
      break;
    for (size_t k = 0; rc == 0 && k < qs->n; k++) {
      const struct nn_logstore_qentry *e = &qs->entries[k];
      rc = nn_buf_printf(out, "%s[\"%lld\",", k ? "," : "", (long long)e->ts_ns);
      if (rc == 0)
        rc = nn_buf_append_json_str(out, e->line, e->len);
      if (rc == 0 && (flags & NN_LOGSTORE_JSON_METADATA) && e->nmeta) {
        rc = nn_buf_appends(out, ",{\"structuredMetadata\":");
        if (rc == 0)
          rc = write_label_object(out, e->meta, e->nmeta);
        if (rc == 0)
          rc = nn_buf_appendc(out, '}');
      }
      if (rc == 0)
        rc = nn_buf_appendc(out, ']');
    }
    if (rc == 0)
      rc = nn_buf_appends(out, "]}");
  }
  if (rc < 0)
    return rc;
  return nn__logstore_write_stats_tail(out, &r->stats);
}

/* Closes a query_range answer's result array and data object with Loki's stats summary. */
int nn__logstore_write_stats_tail(struct nn_buf *out, const struct nn_logstore_query_stats *st)
{
  double secs = st->exec_seconds > 0 ? st->exec_seconds : 1e-9;
  return nn_buf_printf(
      out,
      "],\"stats\":{\"summary\":{\"bytesProcessedPerSecond\":%llu,"
      "\"linesProcessedPerSecond\":%llu,\"totalBytesProcessed\":%llu,"
      "\"totalLinesProcessed\":%llu,\"execTime\":%.6f,\"queueTime\":0,\"subqueries\":0,"
      "\"totalEntriesReturned\":%llu,\"splits\":0,\"shards\":0,"
      "\"totalChunksScanned\":%llu}}}}",
      (unsigned long long)((double)st->bytes_scanned / secs),
      (unsigned long long)((double)st->lines_scanned / secs), (unsigned long long)st->bytes_scanned,
      (unsigned long long)st->lines_scanned, st->exec_seconds,
      (unsigned long long)st->entries_returned, (unsigned long long)st->chunks_scanned);
}

int nn_logstore_strlist_write_json(const struct nn_strlist *l, struct nn_buf *out)
{
  int rc = nn_buf_appends(out, "{\"status\":\"success\",\"data\":[");
  for (size_t i = 0; rc == 0 && i < l->n; i++) {
    if (i)
      rc = nn_buf_appendc(out, ',');
    if (rc == 0)
      rc = nn_buf_append_json_str(out, l->v[i], strlen(l->v[i]));
  }
  return rc ? rc : nn_buf_appends(out, "]}");
}

/* ---- label names and values ---- */

static int str_cmp(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* name == NULL collects label names, otherwise the values of label name. */
static int collect_labels(struct nn_logstore *s, const char *tenant, const char *name,
                          const char *selector, int64_t start, int64_t end, struct nn_strlist *out,
                          char *err, size_t errlen)
{
  struct nn__ls_query q = {0};
  struct nn__ls_stream **streams = NULL;
  const char **v = NULL;
  size_t nstreams = 0, n = 0, cap = 0;
  int rc = 0;
  out->v = NULL;
  out->n = 0;
  if (errlen)
    err[0] = '\0';
  if (selector && (rc = nn__logstore_query_parse(selector, strlen(selector), &q, err, errlen)) < 0)
    return rc;
  const struct nn__ls_tenant *t = nn__logstore_tenant(s, tenant, false);
  if (!t || start >= end)
    goto out;
  if ((rc = select_streams(s, t, q.m, q.nm, start, end, &streams, &nstreams)) < 0)
    goto out;
  for (size_t i = 0; i < nstreams; i++) {
    const struct nn__ls_stream *st = streams[i];
    for (size_t k = 0; k < st->nlabels; k++) {
      const char *x = NULL;
      if (!name)
        x = st->labels[k].name;
      else if (strcmp(st->labels[k].name, name) == 0)
        x = st->labels[k].value;
      if (!x)
        continue;
      if (n == cap) {
        cap = cap ? cap * 2 : 64;
        const char **nv = realloc(v, cap * sizeof(*nv));
        if (!nv) {
          rc = NN_ENOMEM;
          goto out;
        }
        v = nv;
      }
      v[n++] = x;
    }
  }
  if (n)
    qsort(v, n, sizeof(*v), str_cmp);
  out->v = calloc(n ? n : 1, sizeof(*out->v));
  if (!out->v) {
    rc = NN_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    if (out->n && strcmp(out->v[out->n - 1], v[i]) == 0)
      continue;
    if (!(out->v[out->n] = strdup(v[i]))) {
      rc = NN_ENOMEM;
      goto out;
    }
    out->n++;
  }
out:
  if (rc < 0)
    nn_strlist_free(out);
  free(v);
  free(streams);
  nn__logstore_query_fini(&q);
  return rc;
}

int nn_logstore_label_names(struct nn_logstore *s, const char *tenant, const char *selector,
                            int64_t start_ns, int64_t end_ns, struct nn_strlist *out, char *err,
                            size_t errlen)
{
  return collect_labels(s, tenant, NULL, selector, start_ns, end_ns, out, err, errlen);
}

int nn_logstore_label_values(struct nn_logstore *s, const char *tenant, const char *name,
                             const char *selector, int64_t start_ns, int64_t end_ns,
                             struct nn_strlist *out, char *err, size_t errlen)
{
  if (!name || !nn_label_name_valid(name, strlen(name))) {
    out->v = NULL;
    out->n = 0;
    snprintf(err, errlen, "invalid label name \"%s\"", name ? name : "");
    return NN_EINVAL;
  }
  return collect_labels(s, tenant, name, selector, start_ns, end_ns, out, err, errlen);
}

/* ---- series and index stats ---- */

/* First head entry with ts >= t (the head is sorted by ts). */
static size_t head_lower_bound(const struct nn__ls_head *h, int64_t t)
{
  size_t lo = 0, hi = h->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (h->e[mid].ts < t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static bool chunk_overlaps(const struct nn__ls_chunk *c, int64_t start, int64_t end)
{
  return c->min_t < end && c->max_t >= start;
}

/* Whether st holds an entry in [start, end): exact for the head, by time bounds for cut
 * chunks (Loki's index answers at chunk granularity too). Costs O(chunks + log head). */
static bool stream_has_data(const struct nn__ls_stream *st, int64_t start, int64_t end)
{
  size_t k = head_lower_bound(&st->head, start);
  if (k < st->head.n && st->head.e[k].ts < end)
    return true;
  for (size_t i = 0; i < st->nchunks; i++)
    if (chunk_overlaps(&st->chunks[i], start, end))
      return true;
  return false;
}

static int stream_ptr_cmp(const void *a, const void *b)
{
  int c = stream_key_cmp(a, b);
  if (c)
    return c;
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

/* Parses a selector that must have no pipeline; the message names the offending text. */
static int parse_selector_only(const char *sel, struct nn__ls_query *q, char *err, size_t errlen)
{
  char perr[400];
  int rc = nn__logstore_query_parse(sel, strlen(sel), q, perr, sizeof(perr));
  if (rc == 0 && (q->nf || q->pl)) {
    snprintf(perr, sizeof(perr), "only label matchers are supported, not line filters or stages");
    rc = NN_EINVAL;
  }
  if (rc < 0)
    snprintf(err, errlen, "invalid match[] %.200s: %s", sel, perr);
  return rc;
}

/* The union, sorted by label set and without duplicates, of the tenant's streams matching
 * any selector and holding data in [start, end). *out is malloc'd. */
static int select_union(struct nn_logstore *s, const char *tenant, const char *const *sels,
                        size_t nsel, int64_t start, int64_t end, struct nn__ls_stream ***out,
                        size_t *nout, char *err, size_t errlen)
{
  struct nn__ls_stream **all = NULL;
  size_t n = 0;
  int rc = 0;
  *out = NULL;
  *nout = 0;
  if (errlen)
    err[0] = '\0';
  if (nsel == 0) {
    snprintf(err, errlen, "at least one stream selector is required");
    return NN_EINVAL;
  }
  /* Parse every selector first so that a bad one is reported even when the tenant is empty. */
  for (size_t i = 0; i < nsel; i++) {
    struct nn__ls_query q = {0};
    rc = parse_selector_only(sels[i] ? sels[i] : "", &q, err, errlen);
    nn__logstore_query_fini(&q);
    if (rc < 0)
      return rc;
  }
  const struct nn__ls_tenant *t = nn__logstore_tenant(s, tenant, false);
  if (!t || start >= end)
    return 0;
  for (size_t i = 0; i < nsel; i++) {
    struct nn__ls_query q = {0};
    struct nn__ls_stream **v = NULL;
    size_t nv = 0;
    if ((rc = nn__logstore_query_parse(sels[i], strlen(sels[i]), &q, err, errlen)) == 0)
      rc = select_streams(s, t, q.m, q.nm, start, end, &v, &nv);
    nn__logstore_query_fini(&q);
    if (rc == 0 && nv) {
      struct nn__ls_stream **na = realloc(all, (n + nv) * sizeof(*na));
      if (!na)
        rc = NN_ENOMEM;
      else {
        all = na;
        for (size_t k = 0; k < nv; k++)
          if (stream_has_data(v[k], start, end))
            all[n++] = v[k];
      }
    }
    free(v);
    if (rc < 0) {
      free(all);
      return rc;
    }
  }
  if (n > 1)
    qsort(all, n, sizeof(*all), stream_ptr_cmp);
  size_t w = 0;
  for (size_t i = 0; i < n; i++)
    if (!w || all[w - 1] != all[i])
      all[w++] = all[i];
  *out = all;
  *nout = w;
  return 0;
}

int nn_logstore_series(struct nn_logstore *s, const char *tenant, const char *const *selectors,
                       size_t n, int64_t start_ns, int64_t end_ns, struct nn_logstore_result *out,
                       char *err, size_t errlen)
{
  struct nn__ls_stream **v = NULL;
  size_t nv = 0;
  double t0 = now_s();
  memset(out, 0, sizeof(*out));
  nn_pool_init(&out->pool, s->cfg.query_max_bytes);
  int rc = select_union(s, tenant, selectors, n, start_ns, end_ns, &v, &nv, err, errlen);
  if (rc < 0 || nv == 0)
    goto out;
  if (!(out->streams = nn_pool_calloc(&out->pool, nv * sizeof(*out->streams))))
    goto toobig;
  for (size_t i = 0; i < nv; i++) {
    const struct nn__ls_stream *st = v[i];
    struct nn_label *labels = nn_pool_alloc(&out->pool, st->nlabels * sizeof(*labels) + 1);
    if (!labels)
      goto toobig;
    for (size_t k = 0; k < st->nlabels; k++) {
      const struct nn_label *l = &st->labels[k];
      labels[k].name = nn_pool_strndup(&out->pool, l->name, strlen(l->name));
      labels[k].value = nn_pool_strndup(&out->pool, l->value, strlen(l->value));
      if (!labels[k].name || !labels[k].value)
        goto toobig;
    }
    out->streams[i].labels = labels;
    out->streams[i].nlabels = st->nlabels;
    out->n++;
  }
  goto out;
toobig:
  snprintf(err, errlen, "the series result exceeds %zu bytes; narrow the selectors or time range",
           s->cfg.query_max_bytes);
  rc = NN_ELIMIT;
out:
  free(v);
  out->stats.exec_seconds = now_s() - t0;
  return rc;
}

int nn_logstore_series_write_json(const struct nn_logstore_result *r, struct nn_buf *out)
{
  int rc = nn_buf_appends(out, "{\"status\":\"success\",\"data\":[");
  for (size_t i = 0; rc == 0 && i < r->n; i++) {
    if (i)
      rc = nn_buf_appendc(out, ',');
    if (rc == 0)
      rc = write_label_object(out, r->streams[i].labels, r->streams[i].nlabels);
  }
  return rc ? rc : nn_buf_appends(out, "]}");
}

int nn_logstore_index_stats(struct nn_logstore *s, const char *tenant, const char *query,
                            int64_t start_ns, int64_t end_ns, struct nn_logstore_index_stats *out,
                            char *err, size_t errlen)
{
  struct nn__ls_query q = {0};
  struct nn__ls_stream **v = NULL;
  size_t nv = 0;
  int rc;
  memset(out, 0, sizeof(*out));
  if (errlen)
    err[0] = '\0';
  if (!query)
    query = "";
  /* Line filters are accepted and ignored: Loki's index knows streams and chunks only. */
  if ((rc = nn__logstore_query_parse(query, strlen(query), &q, err, errlen)) < 0)
    goto out;
  const struct nn__ls_tenant *t = nn__logstore_tenant(s, tenant, false);
  if (!t || start_ns >= end_ns)
    goto out;
  if ((rc = select_streams(s, t, q.m, q.nm, start_ns, end_ns, &v, &nv)) < 0)
    goto out;
  for (size_t i = 0; i < nv; i++) {
    const struct nn__ls_stream *st = v[i];
    uint64_t chunks = 0;
    for (size_t k = 0; k < st->nchunks; k++) {
      const struct nn__ls_chunk *c = &st->chunks[k];
      if (!chunk_overlaps(c, start_ns, end_ns))
        continue;
      chunks++;
      out->entries += c->entries;
      out->bytes += c->raw_len;
    }
    const struct nn__ls_head *h = &st->head;
    size_t first = head_lower_bound(h, start_ns), last = head_lower_bound(h, end_ns);
    if (first < last) {
      chunks++;
      out->entries += last - first;
      for (size_t k = first; k < last; k++)
        out->bytes += h->e[k].len;
    }
    if (chunks) {
      out->streams++;
      out->chunks += chunks;
    }
  }
out:
  free(v);
  nn__logstore_query_fini(&q);
  return rc;
}
