/* SPDX-License-Identifier: Apache-2.0 */
/* The storage.h querier over the head: postings select the series, chunks overlapping
 * [mint, maxt] are decoded into arrays owned by the result, and label names and values
 * come from the index. Results copy what they return, so truncating the head later
 * cannot pull memory from under a caller. */
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"
#include "common/pool.h"

struct set_priv {
  struct nn_pool pool;
  struct nn_series *series;
};

struct samples {
  int64_t *t;
  double *v;
  size_t n, cap;
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

static int decode_chunk(const uint8_t *data, size_t len, int64_t mint, int64_t maxt,
                        struct samples *out)
{
  struct nn__tsdb_xor_it it;
  nn__tsdb_xor_it_init(&it, data, len);
  while (nn__tsdb_xor_it_next(&it)) {
    if (it.t < mint)
      continue;
    if (it.t > maxt)
      break;
    if (out->n == out->cap) {
      size_t nc = out->cap ? out->cap * 2 : 256;
      int64_t *nt = realloc(out->t, nc * sizeof(*nt));
      if (!nt)
        return NN_ENOMEM;
      out->t = nt;
      double *nv = realloc(out->v, nc * sizeof(*nv));
      if (!nv)
        return NN_ENOMEM;
      out->v = nv;
      out->cap = nc;
    }
    out->t[out->n] = it.t;
    out->v[out->n] = nn__tsdb_xor_it_value(&it);
    out->n++;
  }
  return it.err;
}

static bool overlaps(const struct nn__tsdb_series *s, int64_t mint, int64_t maxt)
{
  return !nn__tsdb_series_empty(s) && s->head.n && nn__tsdb_series_mint(s) <= maxt &&
         s->head.t >= mint;
}

static int series_samples(const struct nn__tsdb_series *s, int64_t mint, int64_t maxt,
                          struct samples *out)
{
  int rc = 0;
  out->n = 0;
  for (uint32_t i = 0; i < s->nchunks && rc == 0; i++) {
    const struct nn__tsdb_chunk *c = &s->chunks[i];
    if (c->maxt >= mint && c->mint <= maxt)
      rc = decode_chunk(c->data, c->len, mint, maxt, out);
  }
  if (rc == 0 && s->head.n && s->head_mint <= maxt && s->head.t >= mint)
    rc = decode_chunk(s->head.buf, nn__tsdb_xor_len(&s->head), mint, maxt, out);
  return rc;
}

static int cmp_series(const void *a, const void *b)
{
  const struct nn_series *x = a, *y = b;
  return nn_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static int q_select(void *ctx, const struct nn_matcher *ms, size_t nms,
                    const struct nn_select_hints *hints, struct nn_series_set *out)
{
  struct nn_tsdb *db = ctx;
  int64_t mint = hints ? hints->mint : INT64_MIN, maxt = hints ? hints->maxt : INT64_MAX;
  size_t max_samples = hints ? hints->max_samples : 0, total = 0, ns = 0;
  uint64_t *refs = NULL;
  size_t nrefs = 0;
  struct samples sc = {0};
  memset(out, 0, sizeof(*out));
  int rc = nn__tsdb_index_select(db, ms, nms, &refs, &nrefs);
  if (rc < 0)
    return rc;
  struct set_priv *p = calloc(1, sizeof(*p));
  if (!p) {
    rc = NN_ENOMEM;
    goto out;
  }
  nn_pool_init(&p->pool, SIZE_MAX);
  out->priv = p;
  out->release = on_release;
  if (nrefs && !(p->series = malloc(nrefs * sizeof(*p->series)))) {
    rc = NN_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < nrefs; i++) {
    const struct nn__tsdb_series *s = nn__tsdb_series_by_ref(db, refs[i]);
    if (!s || !overlaps(s, mint, maxt))
      continue;
    if ((rc = series_samples(s, mint, maxt, &sc)) < 0)
      goto out;
    if (sc.n == 0)
      continue;
    total += sc.n;
    if (max_samples && total > max_samples) {
      rc = NN_ELIMIT;
      goto out;
    }
    struct nn_series *o = &p->series[ns];
    struct nn_label *ls = nn_pool_alloc(&p->pool, s->nlabels * sizeof(*ls));
    int64_t *t = nn_pool_alloc(&p->pool, sc.n * sizeof(*t));
    double *v = nn_pool_alloc(&p->pool, sc.n * sizeof(*v));
    if (!ls || !t || !v) {
      rc = NN_ENOMEM;
      goto out;
    }
    for (uint32_t k = 0; k < s->nlabels; k++) {
      const char *nm = nn__tsdb_sym_str(&db->syms, s->syms[2 * k]);
      const char *vl = nn__tsdb_sym_str(&db->syms, s->syms[2 * k + 1]);
      ls[k].name = nn_pool_strndup(&p->pool, nm, strlen(nm));
      ls[k].value = nn_pool_strndup(&p->pool, vl, strlen(vl));
      if (!ls[k].name || !ls[k].value) {
        rc = NN_ENOMEM;
        goto out;
      }
    }
    memcpy(t, sc.t, sc.n * sizeof(*t));
    memcpy(v, sc.v, sc.n * sizeof(*v));
    *o = (struct nn_series){ls, s->nlabels, t, v, sc.n};
    ns++;
  }
  if (ns > 1)
    qsort(p->series, ns, sizeof(*p->series), cmp_series);
  out->series = p->series;
  out->n = ns;
out:
  free(refs);
  free(sc.t);
  free(sc.v);
  if (rc < 0 && out->release)
    out->release(out);
  return rc;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Turns the marked symbol ids into a sorted list of copies. */
static int marked_to_list(const struct nn_tsdb *db, const uint8_t *marks, struct nn_strlist *out)
{
  size_t n = 0;
  for (uint32_t id = 1; id < db->syms.n; id++)
    n += marks[id];
  out->v = NULL;
  out->n = 0;
  if (n == 0)
    return 0;
  if (!(out->v = calloc(n, sizeof(*out->v))))
    return NN_ENOMEM;
  for (uint32_t id = 1; id < db->syms.n; id++) {
    if (!marks[id])
      continue;
    if (!(out->v[out->n] = strdup(db->syms.str[id]))) {
      nn_strlist_free(out);
      return NN_ENOMEM;
    }
    out->n++;
  }
  qsort(out->v, out->n, sizeof(*out->v), cmp_str);
  return 0;
}

/* name == NULL: collect label names; otherwise the values of label name. */
static int collect_labels(struct nn_tsdb *db, const char *name, const struct nn_matcher *ms,
                          size_t nms, int64_t mint, int64_t maxt, struct nn_strlist *out)
{
  out->v = NULL;
  out->n = 0;
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
  rc = marked_to_list(db, marks, out);
out:
  free(marks);
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
  out->label_names = q_label_names;
  out->label_values = q_label_values;
}
