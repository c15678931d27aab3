/* SPDX-License-Identifier: Apache-2.0 */
/* A header-only in-memory store implementing struct nn_querier, for PromQL tests: series
 * are appended sample by sample and selected with label matchers like a real store. */
#ifndef NN_TESTS_PROMQL_MEMSTORE_H
#define NN_TESTS_PROMQL_MEMSTORE_H

#include <stdlib.h>
#include <string.h>

#include "aggregator/storage/storage.h"
#include "common/error.h"
#include "common/labels.h"

struct memseries {
  struct nn_label *labels; /* owned strings, sorted */
  size_t nlabels;
  uint64_t hash;
  int64_t *t;
  double *v;
  size_t n, cap;
};

struct memstore {
  struct memseries *s;
  size_t n, cap;
  bool sorted;
};

static inline void memstore_clear(struct memstore *m)
{
  for (size_t i = 0; i < m->n; i++) {
    for (size_t k = 0; k < m->s[i].nlabels; k++) {
      free((char *)m->s[i].labels[k].name);
      free((char *)m->s[i].labels[k].value);
    }
    free(m->s[i].labels);
    free(m->s[i].t);
    free(m->s[i].v);
  }
  free(m->s);
  memset(m, 0, sizeof(*m));
}

/* Finds or creates the series with these (canonical) labels; copies them. */
static inline struct memseries *memstore_series(struct memstore *m, const struct nn_label *ls,
                                                size_t n)
{
  uint64_t h = nn_labels_hash(ls, n);
  for (size_t i = 0; i < m->n; i++)
    if (m->s[i].hash == h && nn_labels_cmp(m->s[i].labels, m->s[i].nlabels, ls, n) == 0)
      return &m->s[i];
  if (m->n == m->cap) {
    size_t nc = m->cap ? m->cap * 2 : 16;
    struct memseries *ns = realloc(m->s, nc * sizeof(*ns));
    if (!ns)
      return NULL;
    m->s = ns;
    m->cap = nc;
  }
  struct memseries *s = &m->s[m->n++];
  memset(s, 0, sizeof(*s));
  s->labels = calloc(n ? n : 1, sizeof(*s->labels));
  for (size_t k = 0; k < n; k++) {
    s->labels[k].name = strdup(ls[k].name);
    s->labels[k].value = strdup(ls[k].value);
  }
  s->nlabels = n;
  s->hash = h;
  m->sorted = false;
  return s;
}

/* Appends a sample; a sample at an existing timestamp replaces it. */
static inline int memstore_append(struct memseries *s, int64_t t, double v)
{
  if (s->n && s->t[s->n - 1] == t) {
    s->v[s->n - 1] = v;
    return 0;
  }
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 16;
    int64_t *nt = realloc(s->t, nc * sizeof(*nt));
    if (!nt)
      return NN_ENOMEM;
    s->t = nt;
    double *nv = realloc(s->v, nc * sizeof(*nv));
    if (!nv)
      return NN_ENOMEM;
    s->v = nv;
    s->cap = nc;
  }
  /* keep time order even if a later load writes earlier samples */
  size_t pos = s->n;
  while (pos > 0 && s->t[pos - 1] > t)
    pos--;
  if (pos < s->n && s->t[pos] == t) {
    s->v[pos] = v;
    return 0;
  }
  memmove(s->t + pos + 1, s->t + pos, (s->n - pos) * sizeof(*s->t));
  memmove(s->v + pos + 1, s->v + pos, (s->n - pos) * sizeof(*s->v));
  s->t[pos] = t;
  s->v[pos] = v;
  s->n++;
  return 0;
}

static inline int memstore_cmp(const void *a, const void *b)
{
  const struct memseries *x = a, *y = b;
  return nn_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static inline void memstore_release(struct nn_series_set *set)
{
  free(set->series);
  set->series = NULL;
  set->n = 0;
}

static inline int memstore_select(void *ctx, const struct nn_matcher *ms, size_t nms,
                                  const struct nn_select_hints *h, struct nn_series_set *out)
{
  struct memstore *m = ctx;
  if (!m->sorted && m->n) {
    qsort(m->s, m->n, sizeof(*m->s), memstore_cmp);
    m->sorted = true;
  }
  memset(out, 0, sizeof(*out));
  out->series = calloc(m->n ? m->n : 1, sizeof(*out->series));
  if (!out->series)
    return NN_ENOMEM;
  out->release = memstore_release;
  size_t total = 0;
  for (size_t i = 0; i < m->n; i++) {
    struct memseries *s = &m->s[i];
    bool ok = true;
    for (size_t k = 0; k < nms && ok; k++) {
      const char *v = nn_labels_get(s->labels, s->nlabels, ms[k].name);
      ok = nn_matcher_matches(&ms[k], v ? v : "");
    }
    if (!ok)
      continue;
    size_t lo = 0, hi = s->n;
    while (lo < s->n && s->t[lo] < h->mint)
      lo++;
    while (hi > lo && s->t[hi - 1] > h->maxt)
      hi--;
    if (hi == lo)
      continue;
    total += hi - lo;
    if (h->max_samples && total > h->max_samples) {
      memstore_release(out);
      return NN_ELIMIT;
    }
    out->series[out->n++] =
        (struct nn_series){s->labels, s->nlabels, s->t + lo, s->v + lo, hi - lo};
  }
  return 0;
}

static inline struct nn_querier memstore_querier(struct memstore *m)
{
  struct nn_querier q = {m, memstore_select, NULL, NULL, NULL};
  return q;
}

#endif
