/* SPDX-License-Identifier: Apache-2.0 */
/* The evaluator core: selectors, subqueries, operators and the query entry points. Every
 * node is evaluated once for all steps of the query (step-vectorised), so label work
 * (matching signatures, output label sets) is done once per series, not once per step. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "aggregator/promql/internal.h"
#include "common/buf.h"
#include "common/error.h"

#define DEFAULT_LOOKBACK_MS  (5 * 60 * 1000)
#define DEFAULT_MAX_SAMPLES  50000000
#define DEFAULT_SUBQ_STEP_MS 60000
#define TOO_MANY_SAMPLES                                                                           \
  "query processing would load too many samples into memory in query execution"
#define POOL_CAP ((size_t)16 << 30)

typedef struct nn__promql_node node_t;

/* ---- context helpers ---- */

int nn__promql_fail(struct nn__promql_ctx *c, enum nn_promql_errtype t, int rc, const char *fmt,
                    ...)
{
  if (c->rc < 0)
    return c->rc;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
  va_end(ap);
  c->err->type = t;
  c->rc = rc;
  return rc;
}

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int nn__promql_check_deadline(struct nn__promql_ctx *c)
{
  if (c->rc < 0)
    return c->rc;
  if (c->deadline_ns && now_ns() > c->deadline_ns)
    return nn__promql_fail(c, NN_PROMQL_ERR_TIMEOUT, NN_ETIMEDOUT,
                           "query timed out in expression evaluation");
  return 0;
}

static int oom(struct nn__promql_ctx *c)
{
  return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
}

static int account(struct nn__promql_ctx *c, size_t n)
{
  if (c->cur_samples + n > c->opts.max_samples || c->cur_samples + n < c->cur_samples)
    return nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_ELIMIT, TOO_MANY_SAMPLES);
  c->cur_samples += n;
  return 0;
}

static void unaccount(struct nn__promql_ctx *c, size_t n)
{
  c->cur_samples = c->cur_samples >= n ? c->cur_samples - n : 0;
}

int nn__promql_account(struct nn__promql_ctx *c, size_t n)
{
  return account(c, n);
}

void nn__promql_unaccount(struct nn__promql_ctx *c, size_t n)
{
  unaccount(c, n);
}

double *nn__promql_alloc_steps(struct nn__promql_ctx *c, size_t n)
{
  if (account(c, n) < 0)
    return NULL;
  double *v;
  if (n == c->free_steps_n && c->free_steps) {
    v = c->free_steps;
    memcpy(&c->free_steps, v, sizeof(void *));
  } else {
    v = malloc((n ? n : 1) * sizeof(double));
  }
  if (!v) {
    unaccount(c, n);
    oom(c);
    return NULL;
  }
  double a = nn__promql_absent_value();
  for (size_t i = 0; i < n; i++)
    v[i] = a;
  return v;
}

void nn__promql_free_steps(struct nn__promql_ctx *c, double *v, size_t n)
{
  if (!v)
    return;
  if (n == c->free_steps_n) {
    memcpy(v, &c->free_steps, sizeof(void *));
    c->free_steps = v;
  } else {
    free(v);
  }
  unaccount(c, n);
}

int nn__promql_vec_push(struct nn__promql_ctx *c, struct nn__promql_vec *v,
                        const struct nn_label *ls, size_t nls, double *vals, bool drop_name)
{
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 8;
    struct nn__promql_ser *ns = realloc(v->s, nc * sizeof(*ns));
    if (!ns)
      return oom(c);
    v->s = ns;
    v->cap = nc;
  }
  v->s[v->n++] = (struct nn__promql_ser){ls, nls, vals, drop_name};
  return 0;
}

void nn__promql_vec_free(struct nn__promql_ctx *c, struct nn__promql_vec *v, size_t nsteps)
{
  for (size_t i = 0; i < v->n; i++)
    nn__promql_free_steps(c, v->s[i].v, nsteps);
  free(v->s);
  memset(v, 0, sizeof(*v));
}

static void val_free_n(struct nn__promql_ctx *c, struct nn__promql_val *v, size_t nsteps)
{
  if (v->vt == VT_VECTOR)
    nn__promql_vec_free(c, &v->vec, nsteps);
  if (v->sc) {
    nn__promql_free_steps(c, v->sc, nsteps);
    v->sc = NULL;
  }
}

static double *alloc_scalar(struct nn__promql_ctx *c, size_t n)
{
  return nn__promql_alloc_steps(c, n);
}

void nn__promql_rvec_free(struct nn__promql_ctx *c, struct nn__promql_rvec *r)
{
  size_t total = 0;
  for (size_t i = 0; i < r->n; i++)
    total += r->s[i].n;
  unaccount(c, total);
  free(r->s);
  memset(r, 0, sizeof(*r));
}

/* ---- hash map ---- */

static uint64_t mix64(uint64_t x)
{
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

int nn__promql_hmap_init(struct nn__promql_hmap *m, size_t hint)
{
  size_t cap = 16;
  while (cap < hint * 2)
    cap *= 2;
  m->keys = malloc(cap * sizeof(*m->keys));
  m->vals = malloc(cap * sizeof(*m->vals));
  if (!m->keys || !m->vals) {
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    return NN_ENOMEM;
  }
  memset(m->vals, 0xff, cap * sizeof(*m->vals));
  m->cap = cap;
  m->n = 0;
  return 0;
}

void nn__promql_hmap_fini(struct nn__promql_hmap *m)
{
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof(*m));
}

static int hmap_grow(struct nn__promql_hmap *m)
{
  struct nn__promql_hmap nm;
  if (nn__promql_hmap_init(&nm, m->cap) < 0)
    return NN_ENOMEM;
  for (size_t i = 0; i < m->cap; i++) {
    if (m->vals[i] == UINT32_MAX)
      continue;
    size_t j = mix64(m->keys[i]) & (nm.cap - 1);
    while (nm.vals[j] != UINT32_MAX)
      j = (j + 1) & (nm.cap - 1);
    nm.keys[j] = m->keys[i];
    nm.vals[j] = m->vals[i];
    nm.n++;
  }
  nn__promql_hmap_fini(m);
  *m = nm;
  return 0;
}

uint32_t *nn__promql_hmap_put(struct nn__promql_hmap *m, uint64_t key, bool *found)
{
  if ((m->n + 1) * 2 > m->cap && hmap_grow(m) < 0)
    return NULL;
  size_t j = mix64(key) & (m->cap - 1);
  while (m->vals[j] != UINT32_MAX) {
    if (m->keys[j] == key) {
      *found = true;
      return &m->vals[j];
    }
    j = (j + 1) & (m->cap - 1);
  }
  *found = false;
  m->keys[j] = key;
  m->vals[j] = 0;
  m->n++;
  return &m->vals[j];
}

uint32_t *nn__promql_hmap_get(const struct nn__promql_hmap *m, uint64_t key)
{
  if (!m->cap)
    return NULL;
  size_t j = mix64(key) & (m->cap - 1);
  while (m->vals[j] != UINT32_MAX) {
    if (m->keys[j] == key)
      return &m->vals[j];
    j = (j + 1) & (m->cap - 1);
  }
  return NULL;
}

/* ---- labels ---- */

static bool name_in(const char *name, const char *const *names, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, names[i]) == 0)
      return true;
  return false;
}

const struct nn_label *nn__promql_labels_set(struct nn__promql_ctx *c, const struct nn_label *ls,
                                             size_t nls, const char *name, const char *value,
                                             size_t *outn)
{
  struct nn_label *o = nn_pool_alloc(&c->pool, (nls + 1) * sizeof(*o));
  if (!o) {
    oom(c);
    return NULL;
  }
  size_t k = 0;
  bool placed = value[0] == 0;
  for (size_t i = 0; i < nls; i++) {
    int cmp = strcmp(ls[i].name, name);
    if (!placed && cmp >= 0) {
      o[k++] = (struct nn_label){name, value};
      placed = true;
    }
    if (cmp == 0)
      continue;
    o[k++] = ls[i];
  }
  if (!placed)
    o[k++] = (struct nn_label){name, value};
  *outn = k;
  return o;
}

const struct nn_label *nn__promql_labels_without(struct nn__promql_ctx *c,
                                                 const struct nn_label *ls, size_t nls,
                                                 const char *const *names, size_t nnames,
                                                 bool drop_metric, bool keep, size_t *outn)
{
  struct nn_label *o = nn_pool_alloc(&c->pool, (nls ? nls : 1) * sizeof(*o));
  if (!o) {
    oom(c);
    return NULL;
  }
  size_t k = 0;
  for (size_t i = 0; i < nls; i++) {
    bool in = name_in(ls[i].name, names, nnames);
    if (keep ? !in : (in || (drop_metric && strcmp(ls[i].name, "__name__") == 0)))
      continue;
    o[k++] = ls[i];
  }
  *outn = k;
  return o;
}

uint64_t nn__promql_hash_subset(const struct nn_label *ls, size_t nls, const char *const *names,
                                size_t nnames, bool on)
{
  struct nn_label stackbuf[64] = {{NULL, NULL}};
  struct nn_label *tmp = nls <= 64 ? stackbuf : malloc(nls * sizeof(*tmp));
  if (!tmp)
    return 0;
  size_t k = 0;
  for (size_t i = 0; i < nls; i++) {
    bool in = name_in(ls[i].name, names, nnames);
    if (on ? !in : (in || strcmp(ls[i].name, "__name__") == 0))
      continue;
    tmp[k++] = ls[i];
  }
  uint64_t h = nn_labels_hash(tmp, k);
  if (tmp != stackbuf)
    free(tmp);
  return h;
}

int nn__promql_vec_merge(struct nn__promql_ctx *c, struct nn__promql_vec *v, size_t nsteps)
{
  struct nn__promql_hmap m;
  int rc = 0;
  if (v->n < 2)
    return 0;
  if (nn__promql_hmap_init(&m, v->n) < 0)
    return oom(c);
  size_t w = 0;
  for (size_t i = 0; i < v->n; i++) {
    bool found;
    uint64_t h = nn_labels_hash(v->s[i].ls, v->s[i].nls);
    uint32_t *slot = nn__promql_hmap_put(&m, h, &found);
    if (!slot) {
      rc = oom(c);
      goto out;
    }
    if (!found) {
      *slot = (uint32_t)w;
      v->s[w++] = v->s[i];
      continue;
    }
    struct nn__promql_ser *dst = &v->s[*slot], *src = &v->s[i];
    for (size_t k = 0; k < nsteps; k++) {
      if (nn__promql_absent(src->v[k]))
        continue;
      if (!nn__promql_absent(dst->v[k])) {
        rc = nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL,
                             "vector cannot contain metrics with the same labelset");
        /* keep src reachable so it is freed with the vector */
        v->s[w++] = *src;
        for (size_t r = i + 1; r < v->n; r++)
          v->s[w++] = v->s[r];
        v->n = w;
        goto out;
      }
      dst->v[k] = src->v[k];
    }
    dst->drop_name = dst->drop_name && src->drop_name;
    nn__promql_free_steps(c, src->v, nsteps);
  }
  v->n = w;
out:
  nn__promql_hmap_fini(&m);
  return rc;
}

/* ---- selectors ---- */

int64_t nn__promql_ref_time(const struct nn__promql_ctx *c, int at, int64_t at_ms, int64_t off,
                            int64_t ts)
{
  switch (at) {
  case AT_TIME: ts = at_ms; break;
  case AT_START: ts = c->qstart; break;
  case AT_END: ts = c->qend; break;
  default: break;
  }
  return ts - off;
}

static int do_select(struct nn__promql_ctx *c, const node_t *vs, int64_t mint, int64_t maxt,
                     struct nn_series_set **out)
{
  if (c->nsets == c->capsets) {
    size_t nc = c->capsets ? c->capsets * 2 : 8;
    struct nn_series_set *ns = realloc(c->sets, nc * sizeof(*ns));
    if (!ns)
      return oom(c);
    c->sets = ns;
    c->capsets = nc;
  }
  struct nn_series_set *set = &c->sets[c->nsets];
  memset(set, 0, sizeof(*set));
  struct nn_select_hints h = {mint, maxt, c->opts.max_samples - c->cur_samples};
  if (h.max_samples == 0)
    return nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_ELIMIT, TOO_MANY_SAMPLES);
  int rc = c->q->select(c->q->ctx, vs->matchers, vs->nmatchers, &h, set);
  if (rc == NN_ELIMIT)
    return nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_ELIMIT, TOO_MANY_SAMPLES);
  if (rc == NN_ETIMEDOUT)
    return nn__promql_fail(c, NN_PROMQL_ERR_TIMEOUT, rc, "query timed out in query execution");
  if (rc < 0)
    return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, rc, "error selecting series: %s",
                           nn_strerror(rc));
  c->nsets++;
  *out = set;
  return 0;
}

static double clean_nan(double v)
{
  return nn__promql_absent(v) ? NAN : v;
}

static int eval_vsel(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                     struct nn__promql_vec *out, bool want_ts)
{
  int64_t lb = c->opts.lookback_ms;
  int64_t rmin = nn__promql_ref_time(c, n->at, n->at_ms, n->offset_ms, nn__promql_ts(g, 0));
  int64_t rmax = nn__promql_ref_time(c, n->at, n->at_ms, n->offset_ms, nn__promql_ts(g, g->n - 1));
  struct nn_series_set *set;
  int rc;
  if ((rc = do_select(c, n, nn__promql_first(c, rmin - lb), rmax, &set)) < 0)
    return rc;
  for (size_t s = 0; s < set->n; s++) {
    const struct nn_series *sr = &set->series[s];
    if ((s & 1023) == 1023 && (rc = nn__promql_check_deadline(c)) < 0)
      return rc;
    if (sr->n == 0)
      continue;
    double *vals = nn__promql_alloc_steps(c, g->n);
    if (!vals)
      return c->rc;
    size_t j = 0;
    bool any = false;
    for (size_t i = 0; i < g->n; i++) {
      int64_t ref = nn__promql_ref_time(c, n->at, n->at_ms, n->offset_ms, nn__promql_ts(g, i));
      while (j < sr->n && sr->t[j] <= ref)
        j++;
      if (j == 0 || nn__promql_before(c, sr->t[j - 1], ref - lb))
        continue;
      double v = sr->v[j - 1];
      if (nn_stale_nan(v))
        continue;
      vals[i] = want_ts ? (double)sr->t[j - 1] / 1000.0 : clean_nan(v);
      any = true;
    }
    if (!any) {
      nn__promql_free_steps(c, vals, g->n);
      continue;
    }
    if ((rc = nn__promql_vec_push(c, out, sr->labels, sr->nlabels, vals, false)) < 0) {
      nn__promql_free_steps(c, vals, g->n);
      return rc;
    }
  }
  return 0;
}

static const node_t *unwrap_parens(const node_t *n)
{
  while (n->kind == N_PAREN)
    n = n->child;
  return n;
}

int nn__promql_eval_range_vector(struct nn__promql_ctx *c, const node_t *n,
                                 const struct nn__promql_grid *g, struct nn__promql_rvec *out)
{
  int rc;
  memset(out, 0, sizeof(*out));
  n = unwrap_parens(n);
  if (n->kind == N_MSEL) {
    const node_t *vs = n->child;
    int64_t rmin = nn__promql_ref_time(c, vs->at, vs->at_ms, vs->offset_ms, nn__promql_ts(g, 0));
    int64_t rmax =
        nn__promql_ref_time(c, vs->at, vs->at_ms, vs->offset_ms, nn__promql_ts(g, g->n - 1));
    struct nn_series_set *set;
    if ((rc = do_select(c, vs, nn__promql_first(c, rmin - n->range_ms), rmax, &set)) < 0)
      return rc;
    out->range_ms = n->range_ms;
    out->offset_ms = vs->offset_ms;
    out->at = vs->at;
    out->at_ms = vs->at_ms;
    out->s = calloc(set->n ? set->n : 1, sizeof(*out->s));
    if (!out->s)
      return oom(c);
    size_t total = 0;
    for (size_t s = 0; s < set->n; s++) {
      const struct nn_series *sr = &set->series[s];
      bool dirty = false;
      for (size_t k = 0; k < sr->n && !dirty; k++)
        dirty = isnan(sr->v[k]) && (nn_stale_nan(sr->v[k]) || nn__promql_absent(sr->v[k]));
      struct nn__promql_rser *rs = &out->s[out->n];
      rs->ls = sr->labels;
      rs->nls = sr->nlabels;
      if (!dirty) {
        rs->t = sr->t;
        rs->v = sr->v;
        rs->n = sr->n;
      } else {
        int64_t *t = nn_pool_alloc(&c->pool, sr->n * sizeof(*t) + 1);
        double *v = nn_pool_alloc(&c->pool, sr->n * sizeof(*v) + 1);
        if (!t || !v)
          return oom(c);
        size_t m = 0;
        for (size_t k = 0; k < sr->n; k++) {
          if (nn_stale_nan(sr->v[k]))
            continue;
          t[m] = sr->t[k];
          v[m++] = clean_nan(sr->v[k]);
        }
        rs->t = t;
        rs->v = v;
        rs->n = m;
      }
      total += rs->n;
      out->n++;
    }
    if ((rc = account(c, total)) < 0) {
      free(out->s);
      memset(out, 0, sizeof(*out));
      return rc;
    }
    return 0;
  }
  if (n->kind != N_SUBQ)
    return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_EINVAL, "expected range vector");
  int64_t step = n->step_ms ? n->step_ms : c->opts.subquery_step_ms;
  int64_t rmin = nn__promql_ref_time(c, n->at, n->at_ms, n->offset_ms, nn__promql_ts(g, 0));
  int64_t rmax = nn__promql_ref_time(c, n->at, n->at_ms, n->offset_ms, nn__promql_ts(g, g->n - 1));
  int64_t lo = rmin - n->range_ms;
  int64_t st = step * (lo / step);
  if (st < lo)
    st += step;
  out->range_ms = n->range_ms;
  out->offset_ms = n->offset_ms;
  out->at = n->at;
  out->at_ms = n->at_ms;
  if (st > rmax)
    return 0;
  struct nn__promql_grid ig = {st, step, (size_t)((rmax - st) / step) + 1};
  if (ig.n > 100000000)
    return nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_ELIMIT, TOO_MANY_SAMPLES);
  struct nn__promql_val iv;
  memset(&iv, 0, sizeof(iv));
  if ((rc = nn__promql_eval(c, n->child, &ig, &iv)) < 0)
    return rc;
  out->s = calloc(iv.vec.n ? iv.vec.n : 1, sizeof(*out->s));
  if (!out->s) {
    val_free_n(c, &iv, ig.n);
    return oom(c);
  }
  size_t total = 0;
  for (size_t s = 0; s < iv.vec.n; s++) {
    struct nn__promql_ser *se = &iv.vec.s[s];
    size_t m = 0;
    for (size_t k = 0; k < ig.n; k++)
      m += !nn__promql_absent(se->v[k]);
    int64_t *t = nn_pool_alloc(&c->pool, m * sizeof(*t) + 1);
    double *v = nn_pool_alloc(&c->pool, m * sizeof(*v) + 1);
    if (!t || !v) {
      val_free_n(c, &iv, ig.n);
      free(out->s);
      out->s = NULL;
      return oom(c);
    }
    m = 0;
    for (size_t k = 0; k < ig.n; k++) {
      if (nn__promql_absent(se->v[k]))
        continue;
      t[m] = nn__promql_ts(&ig, k);
      v[m++] = se->v[k];
    }
    out->s[out->n++] = (struct nn__promql_rser){se->ls, se->nls, t, v, m, se->drop_name};
    total += m;
  }
  val_free_n(c, &iv, ig.n);
  if ((rc = account(c, total)) < 0) {
    free(out->s);
    memset(out, 0, sizeof(*out));
    return rc;
  }
  return 0;
}

/* ---- operators ---- */

static bool is_cmp(int op)
{
  return op == TK_EQLC || op == TK_NEQ || op == TK_LTE || op == TK_LSS || op == TK_GTE ||
         op == TK_GTR;
}

static bool is_arith(int op)
{
  return op == TK_ADD || op == TK_SUB || op == TK_MUL || op == TK_DIV || op == TK_POW ||
         op == TK_MOD || op == TK_ATAN2;
}

static double binop(int op, double l, double r, bool *keep)
{
  *keep = true;
  switch (op) {
  case TK_ADD: return l + r;
  case TK_SUB: return l - r;
  case TK_MUL: return l * r;
  case TK_DIV: return l / r;
  case TK_POW: return pow(l, r);
  case TK_MOD: return fmod(l, r);
  case TK_ATAN2: return atan2(l, r);
  case TK_EQLC: *keep = l == r; return l;
  case TK_NEQ: *keep = l != r; return l;
  case TK_GTR: *keep = l > r; return l;
  case TK_LSS: *keep = l < r; return l;
  case TK_GTE: *keep = l >= r; return l;
  case TK_LTE: *keep = l <= r; return l;
  default: *keep = false; return NAN;
  }
}

static int eval_scalar_scalar(struct nn__promql_ctx *c, const node_t *n,
                              const struct nn__promql_grid *g, double *l, double *r,
                              struct nn__promql_val *out)
{
  double *o = alloc_scalar(c, g->n);
  if (!o)
    return c->rc;
  for (size_t i = 0; i < g->n; i++) {
    bool keep;
    double v = binop(n->op, l[i], r[i], &keep);
    o[i] = is_cmp(n->op) ? (keep ? 1.0 : 0.0) : v;
  }
  out->vt = VT_SCALAR;
  out->sc = o;
  return 0;
}

/* vector op scalar, or scalar op vector when swap. Reuses the vector's storage. */
static int eval_vector_scalar(struct nn__promql_ctx *c, const node_t *n,
                              const struct nn__promql_grid *g, struct nn__promql_vec *vec,
                              const double *sc, bool swap, struct nn__promql_val *out)
{
  size_t w = 0;
  bool cmp = is_cmp(n->op);
  for (size_t s = 0; s < vec->n; s++) {
    struct nn__promql_ser *se = &vec->s[s];
    bool any = false;
    for (size_t i = 0; i < g->n; i++) {
      double x = se->v[i];
      if (nn__promql_absent(x))
        continue;
      double l = swap ? sc[i] : x, r = swap ? x : sc[i];
      bool keep;
      double v = binop(n->op, l, r, &keep);
      if (cmp && swap)
        v = r;
      if (n->return_bool) {
        v = keep ? 1.0 : 0.0;
        keep = true;
      }
      if (keep) {
        se->v[i] = v;
        any = true;
      } else {
        se->v[i] = nn__promql_absent_value();
      }
    }
    if (!any) {
      nn__promql_free_steps(c, se->v, g->n);
      continue;
    }
    if (is_arith(n->op) || n->return_bool)
      se->drop_name = true;
    vec->s[w++] = *se;
  }
  vec->n = w;
  out->vt = VT_VECTOR;
  out->vec = *vec;
  memset(vec, 0, sizeof(*vec));
  return 0;
}

static int set_op(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                  struct nn__promql_vec *L, struct nn__promql_vec *R, struct nn__promql_val *out)
{
  const char *const *names = (const char *const *)n->match_labels.v;
  size_t nn = n->match_labels.n;
  struct nn__promql_hmap m;
  int rc = 0;
  uint32_t *gl = NULL, *gr = NULL;
  size_t *mark = NULL;
  size_t ngroups = 0;
  if (nn__promql_hmap_init(&m, L->n + R->n) < 0)
    return oom(c);
  gl = malloc((L->n + 1) * sizeof(*gl));
  gr = malloc((R->n + 1) * sizeof(*gr));
  if (!gl || !gr) {
    rc = oom(c);
    goto out;
  }
  for (int side = 0; side < 2; side++) {
    struct nn__promql_vec *v = side ? R : L;
    uint32_t *gi = side ? gr : gl;
    for (size_t s = 0; s < v->n; s++) {
      bool found;
      uint32_t *slot = nn__promql_hmap_put(
          &m, nn__promql_hash_subset(v->s[s].ls, v->s[s].nls, names, nn, n->on), &found);
      if (!slot) {
        rc = oom(c);
        goto out;
      }
      if (!found)
        *slot = (uint32_t)ngroups++;
      gi[s] = *slot;
    }
  }
  mark = malloc((ngroups + 1) * sizeof(*mark));
  if (!mark) {
    rc = oom(c);
    goto out;
  }
  for (size_t k = 0; k < ngroups; k++)
    mark[k] = SIZE_MAX;
  /* The side whose presence filters the other: R for and/unless, L for or. */
  struct nn__promql_vec *F = n->op == TK_LOR ? L : R, *K = n->op == TK_LOR ? R : L;
  uint32_t *gf = n->op == TK_LOR ? gl : gr, *gk = n->op == TK_LOR ? gr : gl;
  for (size_t i = 0; i < g->n; i++) {
    for (size_t s = 0; s < F->n; s++)
      if (!nn__promql_absent(F->s[s].v[i]))
        mark[gf[s]] = i;
    for (size_t s = 0; s < K->n; s++) {
      if (nn__promql_absent(K->s[s].v[i]))
        continue;
      bool present = mark[gk[s]] == i;
      bool keep = n->op == TK_LAND ? present : !present;
      if (!keep)
        K->s[s].v[i] = nn__promql_absent_value();
    }
  }
  out->vt = VT_VECTOR;
  memset(&out->vec, 0, sizeof(out->vec));
  for (int side = 0; side < 2; side++) {
    struct nn__promql_vec *v = side ? R : L;
    for (size_t s = 0; s < v->n; s++) {
      struct nn__promql_ser *se = &v->s[s];
      bool any = false;
      if (side == 0 || n->op == TK_LOR)
        for (size_t i = 0; i < g->n && !any; i++)
          any = !nn__promql_absent(se->v[i]);
      if (!any) {
        nn__promql_free_steps(c, se->v, g->n);
        se->v = NULL;
        continue;
      }
      rc = nn__promql_vec_push(c, &out->vec, se->ls, se->nls, se->v, se->drop_name);
      if (rc < 0)
        goto out;
      se->v = NULL;
    }
    free(v->s);
    memset(v, 0, sizeof(*v));
  }
  if (n->op == TK_LOR)
    rc = nn__promql_vec_merge(c, &out->vec, g->n);
out:
  nn__promql_hmap_fini(&m);
  free(gl);
  free(gr);
  free(mark);
  return rc;
}

static int fmt_labels(const struct nn_label *ls, size_t n, char *buf, size_t len)
{
  struct nn_buf b;
  nn_buf_init(&b, 4096);
  int rc = nn_labels_format(ls, n, &b);
  snprintf(buf, len, "%s", rc == 0 && b.data ? b.data : "{}");
  nn_buf_fini(&b);
  return rc;
}

static const struct nn_label *result_metric(struct nn__promql_ctx *c, const node_t *n,
                                            const struct nn__promql_ser *many,
                                            const struct nn__promql_ser *one, size_t *outn)
{
  const struct nn_label *ls = many->ls;
  size_t nls = many->nls;
  if (n->card == CARD_ONE_TO_ONE && n->has_matching) {
    ls = nn__promql_labels_without(c, ls, nls, (const char *const *)n->match_labels.v,
                                   n->match_labels.n, false, n->on, &nls);
    if (!ls)
      return NULL;
  }
  for (size_t k = 0; k < n->include.n; k++) {
    const char *v = nn_labels_get(one->ls, one->nls, n->include.v[k]);
    ls = nn__promql_labels_set(c, ls, nls, n->include.v[k], v ? v : "", &nls);
    if (!ls)
      return NULL;
  }
  *outn = nls;
  return ls;
}

static int vector_binop(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                        struct nn__promql_vec *L, struct nn__promql_vec *R,
                        struct nn__promql_val *out)
{
  const char *const *names = (const char *const *)n->match_labels.v;
  size_t nn = n->match_labels.n;
  bool swap = n->card == CARD_ONE_TO_MANY;
  struct nn__promql_vec *M = swap ? R : L, *O = swap ? L : R;
  struct nn__promql_hmap sigs, pairs, outs;
  int rc = 0;
  int32_t *gm = NULL;
  uint32_t *go = NULL, *cur = NULL;
  size_t *seen = NULL, *matched = NULL;
  size_t ngroups = 0;
  memset(&sigs, 0, sizeof(sigs));
  memset(&pairs, 0, sizeof(pairs));
  memset(&outs, 0, sizeof(outs));
  out->vt = VT_VECTOR;
  memset(&out->vec, 0, sizeof(out->vec));
  if (nn__promql_hmap_init(&sigs, O->n) < 0 || nn__promql_hmap_init(&pairs, M->n) < 0 ||
      nn__promql_hmap_init(&outs, M->n) < 0) {
    rc = oom(c);
    goto out;
  }
  gm = malloc((M->n + 1) * sizeof(*gm));
  go = malloc((O->n + 1) * sizeof(*go));
  if (!gm || !go) {
    rc = oom(c);
    goto out;
  }
  for (size_t s = 0; s < O->n; s++) {
    bool found;
    uint32_t *slot = nn__promql_hmap_put(
        &sigs, nn__promql_hash_subset(O->s[s].ls, O->s[s].nls, names, nn, n->on), &found);
    if (!slot) {
      rc = oom(c);
      goto out;
    }
    if (!found)
      *slot = (uint32_t)ngroups++;
    go[s] = *slot;
  }
  for (size_t s = 0; s < M->n; s++) {
    uint32_t *slot = nn__promql_hmap_get(
        &sigs, nn__promql_hash_subset(M->s[s].ls, M->s[s].nls, names, nn, n->on));
    gm[s] = slot ? (int32_t)*slot : -1;
  }
  seen = malloc((ngroups + 1) * sizeof(*seen));
  matched = malloc((ngroups + 1) * sizeof(*matched));
  cur = malloc((ngroups + 1) * sizeof(*cur));
  if (!seen || !matched || !cur) {
    rc = oom(c);
    goto out;
  }
  for (size_t k = 0; k < ngroups; k++)
    seen[k] = matched[k] = SIZE_MAX;
  for (size_t i = 0; i < g->n; i++) {
    if ((i & 255) == 255 && (rc = nn__promql_check_deadline(c)) < 0)
      goto out;
    for (size_t s = 0; s < O->n; s++) {
      if (nn__promql_absent(O->s[s].v[i]))
        continue;
      uint32_t gi = go[s];
      if (seen[gi] == i) {
        char a[300], b[300], ml[300];
        size_t nml;
        const struct nn_label *mls =
            nn__promql_labels_without(c, O->s[s].ls, O->s[s].nls, names, nn, true, n->on, &nml);
        fmt_labels(mls ? mls : O->s[s].ls, mls ? nml : 0, ml, sizeof(ml));
        fmt_labels(O->s[s].ls, O->s[s].nls, a, sizeof(a));
        fmt_labels(O->s[cur[gi]].ls, O->s[cur[gi]].nls, b, sizeof(b));
        rc = nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL,
                             "found duplicate series for the match group %s on the %s hand-side "
                             "of the operation: [%s, %s];many-to-many matching not allowed: "
                             "matching labels must be unique on one side",
                             ml, swap ? "left" : "right", b, a);
        goto out;
      }
      seen[gi] = i;
      cur[gi] = (uint32_t)s;
    }
    for (size_t s = 0; s < M->n; s++) {
      double mv = M->s[s].v[i];
      int32_t gi = gm[s];
      if (gi < 0 || nn__promql_absent(mv) || seen[gi] != i)
        continue;
      uint32_t j = cur[gi];
      double ov = O->s[j].v[i];
      double l = swap ? ov : mv, r = swap ? mv : ov;
      if (n->card == CARD_ONE_TO_ONE) {
        if (matched[gi] == i) {
          rc = nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL,
                               "multiple matches for labels: many-to-one matching must be explicit "
                               "(group_left/group_right)");
          goto out;
        }
        matched[gi] = i;
      }
      bool keep;
      double v = binop(n->op, l, r, &keep);
      if (n->return_bool) {
        v = keep ? 1.0 : 0.0;
      } else if (!keep) {
        continue;
      }
      bool found;
      uint32_t *pslot = nn__promql_hmap_put(&pairs, ((uint64_t)s << 32) | j, &found);
      if (!pslot) {
        rc = oom(c);
        goto out;
      }
      if (!found) {
        size_t nls;
        const struct nn_label *ls = result_metric(c, n, &M->s[s], &O->s[j], &nls);
        if (!ls) {
          rc = c->rc;
          goto out;
        }
        bool ofound;
        uint32_t *oslot = nn__promql_hmap_put(&outs, nn_labels_hash(ls, nls), &ofound);
        if (!oslot) {
          rc = oom(c);
          goto out;
        }
        if (!ofound) {
          double *vals = nn__promql_alloc_steps(c, g->n);
          if (!vals) {
            rc = c->rc;
            goto out;
          }
          bool drop = is_arith(n->op) || n->return_bool || M->s[s].drop_name;
          if ((rc = nn__promql_vec_push(c, &out->vec, ls, nls, vals, drop)) < 0) {
            nn__promql_free_steps(c, vals, g->n);
            goto out;
          }
          *oslot = (uint32_t)(out->vec.n - 1);
        }
        *pslot = *oslot;
      }
      double *dst = &out->vec.s[*pslot].v[i];
      if (!nn__promql_absent(*dst)) {
        rc = nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL,
                             n->card == CARD_ONE_TO_ONE
                                 ? "vector cannot contain metrics with the same labelset"
                                 : "multiple matches for labels: grouping labels must ensure "
                                   "unique matches");
        goto out;
      }
      *dst = v;
    }
  }
out:
  nn__promql_hmap_fini(&sigs);
  nn__promql_hmap_fini(&pairs);
  nn__promql_hmap_fini(&outs);
  free(gm);
  free(go);
  free(cur);
  free(seen);
  free(matched);
  return rc;
}

static int eval_binary(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                       struct nn__promql_val *out)
{
  struct nn__promql_val l, r;
  int rc;
  memset(&l, 0, sizeof(l));
  memset(&r, 0, sizeof(r));
  if ((rc = nn__promql_eval(c, n->lhs, g, &l)) < 0)
    return rc;
  if ((rc = nn__promql_eval(c, n->rhs, g, &r)) < 0)
    goto out;
  if (l.vt == VT_SCALAR && r.vt == VT_SCALAR) {
    rc = eval_scalar_scalar(c, n, g, l.sc, r.sc, out);
  } else if (l.vt == VT_VECTOR && r.vt == VT_SCALAR) {
    rc = eval_vector_scalar(c, n, g, &l.vec, r.sc, false, out);
  } else if (l.vt == VT_SCALAR && r.vt == VT_VECTOR) {
    rc = eval_vector_scalar(c, n, g, &r.vec, l.sc, true, out);
  } else if (n->op == TK_LAND || n->op == TK_LOR || n->op == TK_LUNLESS) {
    rc = set_op(c, n, g, &l.vec, &r.vec, out);
  } else {
    rc = vector_binop(c, n, g, &l.vec, &r.vec, out);
  }
  if (rc < 0)
    val_free_n(c, out, g->n);
out:
  val_free_n(c, &l, g->n);
  val_free_n(c, &r, g->n);
  return rc;
}

int nn__promql_eval(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                    struct nn__promql_val *out)
{
  int rc;
  memset(out, 0, sizeof(*out));
  if ((rc = nn__promql_check_deadline(c)) < 0)
    return rc;
  switch (n->kind) {
  case N_NUMBER: {
    double *o = alloc_scalar(c, g->n);
    if (!o)
      return c->rc;
    for (size_t i = 0; i < g->n; i++)
      o[i] = n->num;
    out->vt = VT_SCALAR;
    out->sc = o;
    return 0;
  }
  case N_STRING:
    out->vt = VT_STRING;
    out->str = n->str;
    return 0;
  case N_PAREN: return nn__promql_eval(c, n->child, g, out);
  case N_VSEL:
    out->vt = VT_VECTOR;
    rc = eval_vsel(c, n, g, &out->vec, false);
    if (rc < 0)
      nn__promql_vec_free(c, &out->vec, g->n);
    return rc;
  case N_UNARY:
    if ((rc = nn__promql_eval(c, n->child, g, out)) < 0)
      return rc;
    if (n->op != TK_SUB)
      return 0;
    if (out->vt == VT_SCALAR) {
      for (size_t i = 0; i < g->n; i++)
        out->sc[i] = -out->sc[i];
    } else {
      for (size_t s = 0; s < out->vec.n; s++) {
        struct nn__promql_ser *se = &out->vec.s[s];
        for (size_t i = 0; i < g->n; i++)
          if (!nn__promql_absent(se->v[i]))
            se->v[i] = -se->v[i];
        se->drop_name = true;
      }
    }
    return 0;
  case N_BINARY: return eval_binary(c, n, g, out);
  case N_CALL: return nn__promql_eval_call(c, n, g, out);
  case N_AGG: return nn__promql_eval_agg(c, n, g, out);
  case N_MSEL:
  case N_SUBQ:
    return nn__promql_fail(c, NN_PROMQL_ERR_BAD_DATA, NN_EINVAL,
                           "range vector cannot be evaluated as an instant vector");
  default: return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_EINVAL, "unknown node");
  }
}

int nn__promql_eval_vsel_ts(struct nn__promql_ctx *c, const node_t *n,
                            const struct nn__promql_grid *g, struct nn__promql_vec *out)
{
  return eval_vsel(c, n, g, out, true);
}

/* ---- entry points ---- */

static void ctx_init(struct nn__promql_ctx *c, const struct nn_querier *q,
                     const struct nn_promql_opts *opts, struct nn_promql_error *err)
{
  memset(c, 0, sizeof(*c));
  memset(err, 0, sizeof(*err));
  c->q = q;
  if (opts)
    c->opts = *opts;
  if (c->opts.lookback_ms <= 0)
    c->opts.lookback_ms = DEFAULT_LOOKBACK_MS;
  if (c->opts.max_samples == 0)
    c->opts.max_samples = DEFAULT_MAX_SAMPLES;
  if (c->opts.subquery_step_ms <= 0)
    c->opts.subquery_step_ms = DEFAULT_SUBQ_STEP_MS;
  if (c->opts.timeout_ms > 0)
    c->deadline_ns = now_ns() + c->opts.timeout_ms * 1000000;
  c->err = err;
  nn_pool_init(&c->pool, POOL_CAP);
}

static void ctx_fini(struct nn__promql_ctx *c)
{
  nn__promql_stash_free(c);
  while (c->free_steps) {
    void *next;
    memcpy(&next, c->free_steps, sizeof(void *));
    free(c->free_steps);
    c->free_steps = next;
  }
  for (size_t i = 0; i < c->nsets; i++)
    if (c->sets[i].release)
      c->sets[i].release(&c->sets[i]);
  free(c->sets);
  nn_pool_clear(&c->pool);
}

struct result_priv {
  struct nn_pool pool;
};

static int result_init(struct nn_promql_result *r)
{
  memset(r, 0, sizeof(*r));
  struct result_priv *p = calloc(1, sizeof(*p));
  if (!p)
    return NN_ENOMEM;
  nn_pool_init(&p->pool, POOL_CAP);
  r->priv = p;
  return 0;
}

void nn_promql_result_fini(struct nn_promql_result *r)
{
  if (!r || !r->priv)
    return;
  struct result_priv *p = r->priv;
  nn_pool_clear(&p->pool);
  free(p);
  memset(r, 0, sizeof(*r));
}

static struct nn_label *copy_labels(struct nn_pool *p, const struct nn_label *ls, size_t n,
                                    bool drop_name, size_t *outn)
{
  struct nn_label *o = nn_pool_alloc(p, (n ? n : 1) * sizeof(*o));
  if (!o)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (drop_name && strcmp(ls[i].name, "__name__") == 0)
      continue;
    size_t nl = strlen(ls[i].name), vl = strlen(ls[i].value);
    char *nm = nn_pool_strndup(p, ls[i].name, nl);
    char *vv = nn_pool_strndup(p, ls[i].value, vl);
    if (!nm || !vv)
      return NULL;
    o[k++] = (struct nn_label){nm, vv};
  }
  *outn = k;
  return o;
}

/* Drops __name__ where flagged, then merges equal label sets (delayed name removal). */
static int finalize_names(struct nn__promql_ctx *c, struct nn__promql_vec *v, size_t nsteps)
{
  bool any = false;
  for (size_t s = 0; s < v->n; s++) {
    struct nn__promql_ser *se = &v->s[s];
    if (!se->drop_name || !nn_labels_get(se->ls, se->nls, "__name__"))
      continue;
    size_t nls;
    const struct nn_label *ls =
        nn__promql_labels_without(c, se->ls, se->nls, NULL, 0, true, false, &nls);
    if (!ls)
      return c->rc;
    se->ls = ls;
    se->nls = nls;
    any = true;
  }
  (void)any;
  return nn__promql_vec_merge(c, v, nsteps);
}

static int cmp_series(const void *a, const void *b)
{
  const struct nn_promql_series *x = a, *y = b;
  return nn_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static int build_result(struct nn__promql_ctx *c, const struct nn__promql_grid *g,
                        struct nn__promql_val *v, bool instant, struct nn_promql_result *r)
{
  struct result_priv *p = r->priv;
  if (v->vt == VT_STRING) {
    r->type = NN_PROMQL_STRING;
    r->t = g->start;
    r->str = nn_pool_strndup(&p->pool, v->str, strlen(v->str));
    return r->str ? 0 : oom(c);
  }
  if (v->vt == VT_SCALAR) {
    if (instant) {
      r->type = NN_PROMQL_SCALAR;
      r->t = g->start;
      r->scalar = v->sc[0];
      return 0;
    }
    r->type = NN_PROMQL_MATRIX;
    r->series = nn_pool_calloc(&p->pool, sizeof(*r->series));
    if (!r->series)
      return oom(c);
    struct nn_promql_series *s = r->series;
    s->t = nn_pool_alloc(&p->pool, g->n * sizeof(*s->t));
    s->v = nn_pool_alloc(&p->pool, g->n * sizeof(*s->v));
    s->labels = nn_pool_alloc(&p->pool, sizeof(*s->labels));
    if (!s->t || !s->v || !s->labels)
      return oom(c);
    for (size_t i = 0; i < g->n; i++) {
      s->t[i] = nn__promql_ts(g, i);
      s->v[i] = v->sc[i];
    }
    s->n = g->n;
    r->nseries = 1;
    return 0;
  }
  int rc = finalize_names(c, &v->vec, g->n);
  if (rc < 0)
    return rc;
  r->type = instant ? NN_PROMQL_VECTOR : NN_PROMQL_MATRIX;
  r->series = nn_pool_calloc(&p->pool, (v->vec.n ? v->vec.n : 1) * sizeof(*r->series));
  if (!r->series)
    return oom(c);
  for (size_t s = 0; s < v->vec.n; s++) {
    struct nn__promql_ser *se = &v->vec.s[s];
    size_t m = 0;
    for (size_t i = 0; i < g->n; i++)
      m += !nn__promql_absent(se->v[i]);
    if (!m)
      continue;
    struct nn_promql_series *o = &r->series[r->nseries];
    o->labels = copy_labels(&p->pool, se->ls, se->nls, false, &o->nlabels);
    o->t = nn_pool_alloc(&p->pool, m * sizeof(*o->t));
    o->v = nn_pool_alloc(&p->pool, m * sizeof(*o->v));
    if (!o->labels || !o->t || !o->v)
      return oom(c);
    for (size_t i = 0; i < g->n; i++) {
      if (nn__promql_absent(se->v[i]))
        continue;
      o->t[o->n] = nn__promql_ts(g, i);
      o->v[o->n++] = se->v[i];
    }
    r->nseries++;
  }
  if (!instant)
    qsort(r->series, r->nseries, sizeof(*r->series), cmp_series);
  return 0;
}

/* An instant query whose expression is a range vector returns the raw samples. */
static int build_matrix_result(struct nn__promql_ctx *c, const node_t *root, int64_t t,
                               struct nn_promql_result *r)
{
  struct nn__promql_grid g = {t, 1, 1};
  struct nn__promql_rvec rv;
  struct result_priv *p = r->priv;
  int rc = nn__promql_eval_range_vector(c, root, &g, &rv);
  if (rc < 0)
    return rc;
  int64_t ref = nn__promql_ref_time(c, rv.at, rv.at_ms, rv.offset_ms, t);
  r->type = NN_PROMQL_MATRIX;
  r->series = nn_pool_calloc(&p->pool, (rv.n ? rv.n : 1) * sizeof(*r->series));
  if (!r->series) {
    rc = oom(c);
    goto out;
  }
  for (size_t s = 0; s < rv.n; s++) {
    struct nn__promql_rser *rs = &rv.s[s];
    size_t lo = 0, hi = 0;
    while (lo < rs->n && nn__promql_before(c, rs->t[lo], ref - rv.range_ms))
      lo++;
    hi = lo;
    while (hi < rs->n && rs->t[hi] <= ref)
      hi++;
    if (hi == lo)
      continue;
    struct nn_promql_series *o = &r->series[r->nseries];
    o->labels = copy_labels(&p->pool, rs->ls, rs->nls, rs->drop_name, &o->nlabels);
    o->t = nn_pool_alloc(&p->pool, (hi - lo) * sizeof(*o->t));
    o->v = nn_pool_alloc(&p->pool, (hi - lo) * sizeof(*o->v));
    if (!o->labels || !o->t || !o->v) {
      rc = oom(c);
      goto out;
    }
    memcpy(o->t, rs->t + lo, (hi - lo) * sizeof(*o->t));
    memcpy(o->v, rs->v + lo, (hi - lo) * sizeof(*o->v));
    o->n = hi - lo;
    r->nseries++;
  }
  qsort(r->series, r->nseries, sizeof(*r->series), cmp_series);
out:
  nn__promql_rvec_free(c, &rv);
  return rc;
}

static int run(const struct nn_querier *q, const struct nn_promql_expr *e, int64_t start,
               int64_t end, int64_t step, bool instant, const struct nn_promql_opts *opts,
               struct nn_promql_result *out, struct nn_promql_error *err)
{
  struct nn__promql_ctx c;
  struct nn__promql_val v;
  int rc;
  ctx_init(&c, q, opts, err);
  memset(&v, 0, sizeof(v));
  if ((rc = result_init(out)) < 0) {
    nn__promql_fail(&c, NN_PROMQL_ERR_INTERNAL, rc, "out of memory");
    goto out;
  }
  c.qstart = start;
  c.qend = end;
  if (instant && e->root->vt == VT_MATRIX) {
    rc = build_matrix_result(&c, e->root, start, out);
    goto out;
  }
  if (!instant && e->root->vt != VT_SCALAR && e->root->vt != VT_VECTOR) {
    rc = nn__promql_fail(&c, NN_PROMQL_ERR_BAD_DATA, NN_EINVAL,
                         "invalid expression type \"%s\" for range query, must be Scalar or "
                         "instant Vector",
                         e->root->vt == VT_MATRIX ? "range vector" : "string");
    goto out;
  }
  struct nn__promql_grid g = {start, step, (size_t)((end - start) / step) + 1};
  if (g.n >= 2) /* a free-list entry must hold a pointer */
    c.free_steps_n = g.n;
  c.root = e->root;
  c.top = g;
  if ((rc = nn__promql_eval(&c, e->root, &g, &v)) < 0)
    goto out;
  rc = build_result(&c, &g, &v, instant, out);
  val_free_n(&c, &v, g.n);
out:
  if (rc < 0) {
    if (c.rc == 0)
      nn__promql_fail(&c, NN_PROMQL_ERR_INTERNAL, rc, "%s", nn_strerror(rc));
    nn_promql_result_fini(out);
  }
  ctx_fini(&c);
  return rc;
}

int nn_promql_eval_instant(const struct nn_querier *q, const struct nn_promql_expr *e, int64_t t,
                           const struct nn_promql_opts *opts, struct nn_promql_result *out,
                           struct nn_promql_error *err)
{
  return run(q, e, t, t, 1, true, opts, out, err);
}

int nn_promql_eval_range(const struct nn_querier *q, const struct nn_promql_expr *e, int64_t start,
                         int64_t end, int64_t step, const struct nn_promql_opts *opts,
                         struct nn_promql_result *out, struct nn_promql_error *err)
{
  memset(err, 0, sizeof(*err));
  if (step <= 0 || end < start) {
    memset(out, 0, sizeof(*out));
    err->type = NN_PROMQL_ERR_BAD_DATA;
    snprintf(err->msg, sizeof(err->msg), "%s",
             step <= 0 ? "zero or negative query resolution step widths are not accepted. Try "
                         "a positive integer"
                       : "end timestamp must not be before start time");
    return NN_EINVAL;
  }
  return run(q, e, start, end, step, false, opts, out, err);
}
