/* SPDX-License-Identifier: Apache-2.0 */
/* The inverted index: label name -> value -> sorted list of series refs, and the
 * evaluation of label matchers over it with Prometheus's semantics: a matcher that
 * matches "" also selects series without the label, so it is applied by subtracting the
 * series whose value does not match. Refs grow monotonically, so lists stay sorted by
 * appending; replay may insert out of order and pays a memmove. The matcher evaluation is
 * shared with the blocks (block.c), through nn__tsdb_postings_src. */
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"

static size_t mix(uint64_t x)
{
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return (size_t)x;
}

static int plist_add(struct nn__tsdb_plist *p, uint64_t ref)
{
  if (p->n == 0 && p->cap == 0) {
    p->u.one = ref;
    p->n = 1;
    return 0;
  }
  if (p->cap == 0) {
    if (p->u.one == ref)
      return 0;
    uint64_t *v = malloc(4 * sizeof(*v));
    if (!v)
      return NN_ENOMEM;
    v[0] = p->u.one;
    p->u.v = v;
    p->cap = 4;
  } else if (p->n == p->cap) {
    if (p->cap >= UINT32_MAX / 2)
      return NN_ETOOBIG;
    uint32_t nc = p->cap < 1024 ? p->cap * 2 : p->cap + p->cap / 2;
    uint64_t *v = realloc(p->u.v, nc * sizeof(*v));
    if (!v)
      return NN_ENOMEM;
    p->u.v = v;
    p->cap = nc;
  }
  uint64_t *v = p->u.v;
  if (p->n == 0 || v[p->n - 1] < ref) {
    v[p->n++] = ref;
    return 0;
  }
  size_t lo = 0, hi = p->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (v[mid] < ref)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (v[lo] == ref)
    return 0;
  memmove(v + lo + 1, v + lo, (p->n - lo) * sizeof(*v));
  v[lo] = ref;
  p->n++;
  return 0;
}

static void plist_free(struct nn__tsdb_plist *p)
{
  if (p->cap)
    free(p->u.v);
  memset(p, 0, sizeof(*p));
}

static struct nn__tsdb_pair_slot *pair_find(const struct nn__tsdb_index *idx, uint64_t key)
{
  if (!idx->pairs)
    return NULL;
  for (size_t i = mix(key) & idx->mask; idx->pairs[i].key; i = (i + 1) & idx->mask)
    if (idx->pairs[i].key == key)
      return &idx->pairs[i];
  return NULL;
}

static void pair_put(struct nn__tsdb_pair_slot *t, size_t mask, uint64_t key, uint32_t li,
                     uint32_t vi)
{
  size_t i = mix(key) & mask;
  while (t[i].key)
    i = (i + 1) & mask;
  t[i] = (struct nn__tsdb_pair_slot){key, li, vi};
}

/* Rebuilds the pair table from names and values, with room for `extra` more pairs. */
static int pairs_rebuild(struct nn__tsdb_index *idx, size_t extra)
{
  size_t need = idx->nnames + extra;
  for (uint32_t li = 0; li < idx->nnames; li++)
    need += idx->names[li].n;
  size_t slots = 256;
  while (slots < need * 2)
    slots *= 2;
  struct nn__tsdb_pair_slot *t = calloc(slots, sizeof(*t));
  if (!t)
    return NN_ENOMEM;
  for (uint32_t li = 0; li < idx->nnames; li++) {
    const struct nn__tsdb_lname *ln = &idx->names[li];
    pair_put(t, slots - 1, (uint64_t)ln->name << 32, li, 0);
    for (uint32_t vi = 0; vi < ln->n; vi++)
      pair_put(t, slots - 1, (uint64_t)ln->name << 32 | ln->vals[vi].value, li, vi);
  }
  free(idx->pairs);
  idx->pairs = t;
  idx->mask = slots - 1;
  idx->npairs = need - extra;
  return 0;
}

static int ensure_pair_room(struct nn__tsdb_index *idx)
{
  if (idx->pairs && (idx->npairs + 1) * 2 <= idx->mask + 1)
    return 0;
  return pairs_rebuild(idx, idx->npairs + 1);
}

static int plist_for(struct nn__tsdb_index *idx, uint32_t name, uint32_t value,
                     struct nn__tsdb_plist **out)
{
  uint64_t key = (uint64_t)name << 32 | value;
  struct nn__tsdb_pair_slot *ps = pair_find(idx, key);
  if (ps) {
    *out = &idx->names[ps->li].vals[ps->vi].pl;
    return 0;
  }
  int rc;
  if ((rc = ensure_pair_room(idx)) < 0)
    return rc;
  struct nn__tsdb_pair_slot *ns = pair_find(idx, (uint64_t)name << 32);
  uint32_t li;
  if (ns) {
    li = ns->li;
  } else {
    if (idx->nnames == idx->capnames) {
      uint32_t nc = idx->capnames ? idx->capnames * 2 : 32;
      struct nn__tsdb_lname *nn = realloc(idx->names, nc * sizeof(*nn));
      if (!nn)
        return NN_ENOMEM;
      idx->names = nn;
      idx->capnames = nc;
    }
    li = idx->nnames++;
    idx->names[li] = (struct nn__tsdb_lname){.name = name};
    pair_put(idx->pairs, idx->mask, (uint64_t)name << 32, li, 0);
    idx->npairs++;
    if ((rc = ensure_pair_room(idx)) < 0)
      return rc;
  }
  struct nn__tsdb_lname *ln = &idx->names[li];
  if (ln->n == ln->cap) {
    uint32_t nc = ln->cap ? ln->cap * 2 : 4;
    struct nn__tsdb_lvalue *nv = realloc(ln->vals, nc * sizeof(*nv));
    if (!nv)
      return NN_ENOMEM;
    ln->vals = nv;
    ln->cap = nc;
  }
  uint32_t vi = ln->n++;
  ln->vals[vi] = (struct nn__tsdb_lvalue){.value = value};
  pair_put(idx->pairs, idx->mask, key, li, vi);
  idx->npairs++;
  *out = &ln->vals[vi].pl;
  return 0;
}

int nn__tsdb_index_add(struct nn__tsdb_index *idx, uint64_t ref, const uint32_t *syms, size_t n)
{
  int rc;
  for (size_t i = 0; i < n; i++) {
    struct nn__tsdb_plist *pl;
    if ((rc = plist_for(idx, syms[2 * i], syms[2 * i + 1], &pl)) < 0)
      return rc;
    if ((rc = plist_add(pl, ref)) < 0)
      return rc;
  }
  return plist_add(&idx->all, ref);
}

void nn__tsdb_index_fini(struct nn__tsdb_index *idx)
{
  for (uint32_t li = 0; li < idx->nnames; li++) {
    for (uint32_t vi = 0; vi < idx->names[li].n; vi++)
      plist_free(&idx->names[li].vals[vi].pl);
    free(idx->names[li].vals);
  }
  free(idx->names);
  free(idx->pairs);
  plist_free(&idx->all);
  memset(idx, 0, sizeof(*idx));
}

const struct nn__tsdb_lname *nn__tsdb_index_name(const struct nn__tsdb_index *idx, uint32_t name)
{
  const struct nn__tsdb_pair_slot *ps = pair_find(idx, (uint64_t)name << 32);
  return ps ? &idx->names[ps->li] : NULL;
}

const struct nn__tsdb_plist *nn__tsdb_index_get(const struct nn__tsdb_index *idx, uint32_t name,
                                                uint32_t value)
{
  if (!name || !value)
    return NULL;
  const struct nn__tsdb_pair_slot *ps = pair_find(idx, (uint64_t)name << 32 | value);
  return ps ? &idx->names[ps->li].vals[ps->vi].pl : NULL;
}

static void plist_filter(struct nn__tsdb_plist *p, bool (*dead)(void *, uint64_t), void *ctx)
{
  if (p->cap == 0) {
    if (p->n == 1 && dead(ctx, p->u.one))
      p->n = 0;
    return;
  }
  uint32_t k = 0;
  for (uint32_t i = 0; i < p->n; i++)
    if (!dead(ctx, p->u.v[i]))
      p->u.v[k++] = p->u.v[i];
  p->n = k;
  if (k == 0)
    plist_free(p);
}

int nn__tsdb_index_prune(struct nn__tsdb_index *idx, bool (*dead)(void *ctx, uint64_t ref),
                         void *ctx)
{
  uint32_t kn = 0;
  for (uint32_t li = 0; li < idx->nnames; li++) {
    struct nn__tsdb_lname *ln = &idx->names[li];
    uint32_t kv = 0;
    for (uint32_t vi = 0; vi < ln->n; vi++) {
      plist_filter(&ln->vals[vi].pl, dead, ctx);
      if (ln->vals[vi].pl.n)
        ln->vals[kv++] = ln->vals[vi];
    }
    ln->n = kv;
    if (kv)
      idx->names[kn++] = *ln;
    else
      free(ln->vals);
  }
  idx->nnames = kn;
  plist_filter(&idx->all, dead, ctx);
  return pairs_rebuild(idx, 0);
}

/* ---- matcher evaluation over sorted ref arrays ---- */

int nn__tsdb_refs_reserve(struct nn__tsdb_refs *r, size_t n)
{
  if (r->cap - r->n >= n)
    return 0;
  if (n > SIZE_MAX / 2 / sizeof(*r->v) - r->n)
    return NN_ETOOBIG;
  size_t nc = r->cap ? r->cap : 64;
  while (nc - r->n < n)
    nc *= 2;
  uint64_t *nv = realloc(r->v, nc * sizeof(*nv));
  if (!nv)
    return NN_ENOMEM;
  r->v = nv;
  r->cap = nc;
  return 0;
}

int nn__tsdb_refs_append(struct nn__tsdb_refs *r, const uint64_t *p, size_t n)
{
  if (n == 0)
    return 0;
  int rc = nn__tsdb_refs_reserve(r, n);
  if (rc < 0)
    return rc;
  memcpy(r->v + r->n, p, n * sizeof(*p));
  r->n += n;
  return 0;
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

void nn__tsdb_refs_sort_unique(struct nn__tsdb_refs *r)
{
  qsort(r->v, r->n, sizeof(*r->v), cmp_u64);
  size_t k = 0;
  for (size_t i = 0; i < r->n; i++)
    if (k == 0 || r->v[k - 1] != r->v[i])
      r->v[k++] = r->v[i];
  r->n = k;
}

/* a = a ∩ b, in place. */
static void refs_intersect(struct nn__tsdb_refs *a, const struct nn__tsdb_refs *b)
{
  size_t i = 0, j = 0, k = 0;
  while (i < a->n && j < b->n) {
    if (a->v[i] < b->v[j])
      i++;
    else if (a->v[i] > b->v[j])
      j++;
    else {
      a->v[k++] = a->v[i];
      i++;
      j++;
    }
  }
  a->n = k;
}

/* a = a \ b, in place. */
static void refs_subtract(struct nn__tsdb_refs *a, const struct nn__tsdb_refs *b)
{
  size_t i = 0, j = 0, k = 0;
  while (i < a->n) {
    while (j < b->n && b->v[j] < a->v[i])
      j++;
    if (j < b->n && b->v[j] == a->v[i])
      i++;
    else
      a->v[k++] = a->v[i++];
  }
  a->n = k;
}

/* Union of the postings of every value of m's label name for which the matcher's result
 * equals want. */
static int head_collect(void *ctx, const struct nn_matcher *m, bool want, struct nn__tsdb_refs *out)
{
  struct nn_tsdb *db = ctx;
  uint32_t name = nn__tsdb_sym_find(&db->syms, m->name);
  const struct nn__tsdb_lname *ln = name ? nn__tsdb_index_name(&db->idx, name) : NULL;
  if (!ln)
    return 0;
  /* Equality (or its negation, wanting the non-matching values) is one lookup. */
  if ((m->type == NN_MATCH_EQ && want) || (m->type == NN_MATCH_NE && !want)) {
    uint32_t value = nn__tsdb_sym_find(&db->syms, m->value);
    const struct nn__tsdb_plist *pl = nn__tsdb_index_get(&db->idx, name, value);
    return pl ? nn__tsdb_refs_append(out, nn__tsdb_plist_refs(pl), pl->n) : 0;
  }
  size_t lists = 0;
  for (uint32_t vi = 0; vi < ln->n; vi++) {
    const struct nn__tsdb_lvalue *lv = &ln->vals[vi];
    if (nn_matcher_matches(m, nn__tsdb_sym_str(&db->syms, lv->value)) != want)
      continue;
    int rc = nn__tsdb_refs_append(out, nn__tsdb_plist_refs(&lv->pl), lv->pl.n);
    if (rc < 0)
      return rc;
    lists++;
  }
  if (lists > 1)
    nn__tsdb_refs_sort_unique(out);
  return 0;
}

/* The symbol ids of m's name and (equality matchers) value in the head, from the matcher's
 * scratch while the head's symbols are unchanged: a rule or SLO query selects with the same
 * matchers every evaluation, and looking their strings up is most of a small select. */
static void head_syms(struct nn_tsdb *db, const struct nn_matcher *m, uint32_t *name,
                      uint32_t *value)
{
  struct nn_matcher *c = (struct nn_matcher *)m; /* only the scratch fields are written */
  if (c->sym_owner != (const void *)&db->syms || c->sym_gen != db->syms.gen) {
    c->sym_name = nn__tsdb_sym_find(&db->syms, m->name);
    c->sym_value = c->sym_name && (m->type == NN_MATCH_EQ || m->type == NN_MATCH_NE)
                       ? nn__tsdb_sym_find(&db->syms, m->value)
                       : 0;
    c->sym_owner = &db->syms;
    c->sym_gen = db->syms.gen;
  }
  *name = c->sym_name;
  *value = c->sym_value;
}

static int head_each(void *ctx, const struct nn_matcher *m, bool want,
                     int (*fn)(void *ud, const uint64_t *refs, size_t n), void *ud)
{
  struct nn_tsdb *db = ctx;
  uint32_t name, value;
  head_syms(db, m, &name, &value);
  const struct nn__tsdb_lname *ln = name ? nn__tsdb_index_name(&db->idx, name) : NULL;
  if (!ln)
    return 0;
  if ((m->type == NN_MATCH_EQ && want) || (m->type == NN_MATCH_NE && !want)) {
    const struct nn__tsdb_plist *pl = nn__tsdb_index_get(&db->idx, name, value);
    return pl && pl->n ? fn(ud, nn__tsdb_plist_refs(pl), pl->n) : 0;
  }
  for (uint32_t vi = 0; vi < ln->n; vi++) {
    const struct nn__tsdb_lvalue *lv = &ln->vals[vi];
    if (!lv->pl.n || nn_matcher_matches(m, nn__tsdb_sym_str(&db->syms, lv->value)) != want)
      continue;
    int rc = fn(ud, nn__tsdb_plist_refs(&lv->pl), lv->pl.n);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static bool head_check(void *ctx, uint64_t ref, const struct nn_matcher *m)
{
  struct nn_tsdb *db = ctx;
  const struct nn__tsdb_series *s = nn__tsdb_series_by_ref(db, ref);
  if (!s)
    return false;
  uint32_t name, value, have = 0;
  head_syms(db, m, &name, &value);
  for (uint32_t k = 0; name && k < s->nlabels && !have; k++)
    if (s->syms[2 * k] == name)
      have = s->syms[2 * k + 1];
  /* An interned value is one id: equal strings, equal ids. */
  if (value && (m->type == NN_MATCH_EQ || m->type == NN_MATCH_NE))
    return (have == value) == (m->type == NN_MATCH_EQ);
  return nn_matcher_matches(m, have ? nn__tsdb_sym_str(&db->syms, have) : "");
}

static int head_all(void *ctx, struct nn__tsdb_refs *out)
{
  struct nn_tsdb *db = ctx;
  const struct nn__tsdb_plist *all = &db->idx.all;
  return nn__tsdb_refs_append(out, nn__tsdb_plist_refs(all), all->n);
}

/* ---- selection narrowing a small candidate set (sources with each) ---- */

struct mark_ctx {
  const uint64_t *cand; /* sorted candidates */
  size_t n;
  unsigned char *hit; /* hit[i]: cand[i] is in one of the lists seen */
  const uint64_t *one;
  size_t none; /* smallest list (seed) */
  bool seen;
};

/* Marks the candidates found in the sorted list v: a merge when the lists are of similar
 * length, else a binary search per candidate in the rest of v. */
static int mark_list(void *ud, const uint64_t *v, size_t n)
{
  struct mark_ctx *m = ud;
  size_t lo = 0;
  if (n / 8 > m->n) {
    for (size_t i = 0; i < m->n && lo < n; i++) {
      size_t hi = n;
      while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < m->cand[i])
          lo = mid + 1;
        else
          hi = mid;
      }
      if (lo < n && v[lo] == m->cand[i])
        m->hit[i] = 1;
    }
    return 0;
  }
  for (size_t i = 0; i < m->n && lo < n; i++) {
    while (lo < n && v[lo] < m->cand[i])
      lo++;
    if (lo < n && v[lo] == m->cand[i])
      m->hit[i] = 1;
  }
  return 0;
}

/* Records the (only) list of an equality matcher. */
static int seed_list(void *ud, const uint64_t *v, size_t n)
{
  struct mark_ctx *m = ud;
  m->one = v;
  m->none = n;
  m->seen = true;
  return 0;
}

/* Candidates tested one by one (postings_src check) rather than against lists. */
#define CHECK_MAX 4

/* Starts from the shortest equality matcher's list and narrows it with the others' lists
 * in place: no list is copied but the shortest. Same result as the generic path. empty[i]
 * is whether ms[i] matches "". */
static int select_narrow(const struct nn__tsdb_postings_src *src, const struct nn_matcher *ms,
                         size_t nms, const bool *empty, struct nn__tsdb_refs *cur)
{
  size_t seed = nms, seed_n = SIZE_MAX;
  const uint64_t *seed_v = NULL;
  /* An equality matcher's one list, found while choosing the seed (NULL: none). */
  const uint64_t *eq_v[32];
  size_t eq_n[32];
  for (size_t i = 0; i < nms; i++) {
    eq_v[i] = NULL;
    if (ms[i].type != NN_MATCH_EQ || empty[i])
      continue;
    struct mark_ctx m = {0};
    int rc = src->each(src->ctx, &ms[i], true, seed_list, &m);
    if (rc < 0)
      return rc;
    if (!m.seen || m.none == 0)
      return 0; /* no series has this label value: nothing matches */
    eq_v[i] = m.one;
    eq_n[i] = m.none;
    if (m.none < seed_n) {
      seed = i;
      seed_n = m.none;
      seed_v = m.one;
    }
  }
  int rc = nn__tsdb_refs_append(cur, seed_v, seed_n);
  if (rc < 0)
    return rc;
  if (src->check && cur->n <= CHECK_MAX) {
    /* A few candidates (an SLO's or a rule's series): test each against the other
     * matchers, reading the series the select reads next anyway, instead of searching long
     * lists (__name__'s) and running a regex per value of a label. Same result. */
    for (size_t i = 0; i < nms && cur->n; i++) {
      if (i == seed)
        continue;
      size_t k = 0;
      for (size_t j = 0; j < cur->n; j++)
        if (src->check(src->ctx, cur->v[j], &ms[i]))
          cur->v[k++] = cur->v[j];
      cur->n = k;
    }
    return 0;
  }
  unsigned char small[256];
  unsigned char *hit = seed_n <= sizeof(small) ? small : malloc(seed_n);
  if (!hit)
    return NN_ENOMEM;
  /* Matchers that do not match "" keep the candidates in their lists; the others drop
   * the candidates in the lists of values they reject. */
  for (int pass = 0; pass < 2 && cur->n; pass++) {
    for (size_t i = 0; i < nms && cur->n; i++) {
      if (i == seed || empty[i] != (pass == 1))
        continue;
      struct mark_ctx m = {.cand = cur->v, .n = cur->n, .hit = hit};
      memset(hit, 0, cur->n);
      if (eq_v[i])
        mark_list(&m, eq_v[i], eq_n[i]);
      else if ((rc = src->each(src->ctx, &ms[i], !empty[i], mark_list, &m)) < 0)
        goto out;
      size_t k = 0;
      for (size_t j = 0; j < cur->n; j++)
        if (hit[j] == (empty[i] ? 0 : 1))
          cur->v[k++] = cur->v[j];
      cur->n = k;
    }
  }
out:
  if (hit != small)
    free(hit);
  return rc;
}

int nn__tsdb_postings_select(const struct nn__tsdb_postings_src *src, const struct nn_matcher *ms,
                             size_t nms, uint64_t **out, size_t *n)
{
  if (src->each && nms <= 32) {
    /* A regex matcher's test against "" runs the regex: once per matcher here. */
    bool empty[32], any_eq = false;
    for (size_t i = 0; i < nms; i++) {
      empty[i] = nn_matcher_matches_empty(&ms[i]);
      any_eq |= ms[i].type == NN_MATCH_EQ && !empty[i];
    }
    if (any_eq) {
      struct nn__tsdb_refs cur = {0};
      int rc = select_narrow(src, ms, nms, empty, &cur);
      if (rc < 0) {
        free(cur.v);
        return rc;
      }
      *out = cur.v;
      *n = cur.n;
      return 0;
    }
  }
  struct nn__tsdb_refs cur = {0}, tmp = {0};
  bool have = false;
  int rc = 0;
  /* Matchers that do not match "" select from their own postings: intersect those. */
  for (size_t i = 0; i < nms; i++) {
    if (nn_matcher_matches_empty(&ms[i]))
      continue;
    tmp.n = 0;
    if ((rc = src->collect(src->ctx, &ms[i], true, &tmp)) < 0)
      goto out;
    if (!have) {
      struct nn__tsdb_refs sw = cur;
      cur = tmp;
      tmp = sw;
      have = true;
    } else {
      refs_intersect(&cur, &tmp);
    }
    if (cur.n == 0)
      goto out;
  }
  if (!have && (rc = src->all(src->ctx, &cur)) < 0)
    goto out;
  /* The rest also select series lacking the label: remove those whose value fails. */
  for (size_t i = 0; i < nms && cur.n; i++) {
    if (!nn_matcher_matches_empty(&ms[i]))
      continue;
    tmp.n = 0;
    if ((rc = src->collect(src->ctx, &ms[i], false, &tmp)) < 0)
      goto out;
    refs_subtract(&cur, &tmp);
  }
out:
  free(tmp.v);
  if (rc < 0) {
    free(cur.v);
    return rc;
  }
  *out = cur.v;
  *n = cur.n;
  return 0;
}

int nn__tsdb_index_select(struct nn_tsdb *db, const struct nn_matcher *ms, size_t nms,
                          uint64_t **out, size_t *n)
{
  struct nn__tsdb_postings_src src = {db, head_collect, head_all, head_each, head_check};
  return nn__tsdb_postings_select(&src, ms, nms, out, n);
}
