/* SPDX-License-Identifier: Apache-2.0 */
/* Aggregation operators. Group membership is computed once per input series (a hash of
 * its grouping labels); each step then only folds values into per-group accumulators,
 * with Prometheus's Kahan summation and overflow-safe mean. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/promql/internal.h"
#include "common/buf.h"
#include "common/error.h"

typedef struct nn__promql_node node_t;

struct acc {
  size_t seen; /* step index this accumulator was last reset for */
  double v, c, mean, cnt;
  bool incr;
};

static int nomem(struct nn__promql_ctx *c)
{
  return nn__promql_fail(c, NN_PROMQL_ERR_INTERNAL, NN_ENOMEM, "out of memory");
}

static void acc_first(int op, struct acc *a, double f)
{
  a->v = f;
  a->mean = f;
  a->c = 0;
  a->cnt = 1;
  a->incr = false;
  if (op == AGG_STDDEV || op == AGG_STDVAR)
    a->v = (isnan(f) || isinf(f)) ? NAN : 0;
  else if (op == AGG_GROUP)
    a->v = 1;
}

static void acc_add(int op, struct acc *a, double f)
{
  switch (op) {
  case AGG_SUM: nn__promql_kahan_inc(f, &a->v, &a->c); break;
  case AGG_AVG: {
    a->cnt++;
    if (!a->incr) {
      double nv = a->v, nc = a->c;
      nn__promql_kahan_inc(f, &nv, &nc);
      if (!isinf(nv)) {
        a->v = nv;
        a->c = nc;
        break;
      }
      a->incr = true;
      a->mean = a->v / (a->cnt - 1);
      a->c /= a->cnt - 1;
    }
    if (isinf(a->mean)) {
      if (isinf(f) && (a->mean > 0) == (f > 0))
        break;
      if (!isinf(f) && !isnan(f))
        break;
    }
    double cur = a->mean + a->c;
    nn__promql_kahan_inc(f / a->cnt - cur / a->cnt, &a->mean, &a->c);
    break;
  }
  case AGG_MAX:
    if (a->v < f || isnan(a->v))
      a->v = f;
    break;
  case AGG_MIN:
    if (a->v > f || isnan(a->v))
      a->v = f;
    break;
  case AGG_COUNT: a->cnt++; break;
  case AGG_STDDEV:
  case AGG_STDVAR: {
    a->cnt++;
    double delta = f - a->mean;
    a->mean += delta / a->cnt;
    a->v += delta * (f - a->mean);
    break;
  }
  default: break;
  }
}

static double acc_result(int op, const struct acc *a)
{
  switch (op) {
  case AGG_SUM: return a->v + a->c;
  case AGG_AVG: return a->incr ? a->mean + a->c : (a->v + a->c) / a->cnt;
  case AGG_COUNT: return a->cnt;
  case AGG_STDVAR: return a->v / a->cnt;
  case AGG_STDDEV: return sqrt(a->v / a->cnt);
  default: return a->v;
  }
}

/* Grouping labels of a series: by keeps the listed names, without drops them and the
 * metric name. */
static const struct nn_label *group_labels(struct nn__promql_ctx *c, const node_t *n,
                                           const struct nn_label *ls, size_t nls,
                                           const char *const *names, size_t nnames, size_t *outn)
{
  return nn__promql_labels_without(c, ls, nls, names, nnames, n->without, !n->without, outn);
}

struct topk_item {
  double v;
  size_t s;
};

static bool topk_before(int op, double a, double b)
{
  /* true when a ranks before b; NaN ranks last */
  if (isnan(a))
    return false;
  if (isnan(b))
    return true;
  return op == AGG_TOPK ? a > b : a < b;
}

static int cmp_topk_desc(const void *x, const void *y)
{
  const struct topk_item *a = x, *b = y;
  if (topk_before(AGG_TOPK, a->v, b->v))
    return -1;
  if (topk_before(AGG_TOPK, b->v, a->v))
    return 1;
  return a->s < b->s ? -1 : a->s > b->s;
}

static int cmp_topk_asc(const void *x, const void *y)
{
  const struct topk_item *a = x, *b = y;
  if (topk_before(AGG_BOTTOMK, a->v, b->v))
    return -1;
  if (topk_before(AGG_BOTTOMK, b->v, a->v))
    return 1;
  return a->s < b->s ? -1 : a->s > b->s;
}

static bool ratio_keep(double r, const struct nn_label *ls, size_t nls)
{
  double off = (double)nn_labels_hash(ls, nls) / 18446744073709551615.0;
  return (r >= 0 && off < r) || (r < 0 && off >= 1.0 + r);
}

static int eval_k(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                  struct nn__promql_vec *in, const double *param, const uint32_t *grp,
                  size_t ngroups, struct nn__promql_val *out)
{
  int op = n->op;
  int rc = 0;
  size_t *first = calloc(ngroups + 1, sizeof(*first));
  size_t *size = calloc(ngroups + 1, sizeof(*size));
  size_t *fill = calloc(ngroups + 1, sizeof(*fill));
  size_t *order = malloc((in->n + 1) * sizeof(*order));
  struct topk_item *items = malloc((in->n + 1) * sizeof(*items));
  double **outv = calloc(in->n + 1, sizeof(*outv));
  if (!first || !size || !fill || !order || !items || !outv) {
    rc = nomem(c);
    goto out;
  }
  for (size_t s = 0; s < in->n; s++)
    size[grp[s]]++;
  size_t acc = 0;
  for (size_t k = 0; k < ngroups; k++) {
    first[k] = acc;
    acc += size[k];
  }
  for (size_t s = 0; s < in->n; s++)
    order[first[grp[s]] + fill[grp[s]]++] = s;
  for (size_t s = 0; s < in->n; s++) {
    outv[s] = nn__promql_alloc_steps(c, g->n);
    if (!outv[s]) {
      rc = c->rc;
      goto out;
    }
  }
  /* for instant queries: the output order (group order, then rank) */
  size_t *inst_order = NULL, ninst = 0;
  if (g->n == 1) {
    inst_order = malloc((in->n + 1) * sizeof(*inst_order));
    if (!inst_order) {
      rc = nomem(c);
      goto out;
    }
  }
  for (size_t i = 0; i < g->n; i++) {
    double p = param ? param[i] : 0;
    int64_t k = 0;
    if (op == AGG_TOPK || op == AGG_BOTTOMK || op == AGG_LIMITK) {
      if (isnan(p)) {
        rc = nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL, "Parameter value is NaN");
        goto loop_out;
      }
      if (p >= 9.223372036854775807e18 || p <= -9.223372036854775807e18) {
        rc = nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL,
                             "Scalar value %g overflows int64", p);
        goto loop_out;
      }
      k = (int64_t)p;
      if (k < 1)
        continue;
    } else {
      if (isnan(p)) {
        rc = nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL, "Ratio value is NaN");
        goto loop_out;
      }
      if (p > 1)
        p = 1;
      if (p < -1)
        p = -1;
    }
    for (size_t gi = 0; gi < ngroups; gi++) {
      size_t m = 0;
      for (size_t q = 0; q < size[gi]; q++) {
        size_t s = order[first[gi] + q];
        double v = in->s[s].v[i];
        if (nn__promql_absent(v))
          continue;
        items[m++] = (struct topk_item){v, s};
      }
      if (!m)
        continue;
      size_t take = m;
      if (op == AGG_TOPK || op == AGG_BOTTOMK) {
        int (*cmp)(const void *, const void *) = op == AGG_TOPK ? cmp_topk_desc : cmp_topk_asc;
        if ((int64_t)m > k && k <= 64) {
          /* small k: keep the best k in order by insertion, O(m*k) instead of a sort */
          size_t kk = (size_t)k, have = 0;
          for (size_t q = 0; q < m; q++) {
            struct topk_item it = items[q];
            if (have == kk && cmp(&it, &items[have - 1]) >= 0)
              continue;
            size_t pos = have < kk ? have++ : kk - 1;
            while (pos > 0 && cmp(&it, &items[pos - 1]) < 0) {
              items[pos] = items[pos - 1];
              pos--;
            }
            items[pos] = it;
          }
          take = kk;
        } else {
          qsort(items, m, sizeof(*items), cmp);
          if ((int64_t)take > k)
            take = (size_t)k;
        }
      } else if (op == AGG_LIMITK) {
        if ((int64_t)take > k)
          take = (size_t)k;
      } else {
        size_t w = 0;
        for (size_t q = 0; q < m; q++)
          if (ratio_keep(p, in->s[items[q].s].ls, in->s[items[q].s].nls))
            items[w++] = items[q];
        take = w;
      }
      for (size_t q = 0; q < take; q++) {
        outv[items[q].s][i] = items[q].v;
        if (inst_order)
          inst_order[ninst++] = items[q].s;
      }
    }
  }
loop_out:
  if (rc == 0) {
    out->vt = VT_VECTOR;
    if (inst_order) {
      for (size_t q = 0; q < ninst && rc == 0; q++) {
        size_t s = inst_order[q];
        rc = nn__promql_vec_push(c, &out->vec, in->s[s].ls, in->s[s].nls, outv[s],
                                 in->s[s].drop_name);
        if (rc == 0)
          outv[s] = NULL;
      }
    } else {
      for (size_t s = 0; s < in->n && rc == 0; s++) {
        bool any = false;
        for (size_t i = 0; i < g->n && !any; i++)
          any = !nn__promql_absent(outv[s][i]);
        if (!any)
          continue;
        rc = nn__promql_vec_push(c, &out->vec, in->s[s].ls, in->s[s].nls, outv[s],
                                 in->s[s].drop_name);
        if (rc == 0)
          outv[s] = NULL;
      }
    }
  }
  free(inst_order);
out:
  if (outv)
    for (size_t s = 0; s < in->n; s++)
      if (outv[s])
        nn__promql_free_steps(c, outv[s], g->n);
  free(first);
  free(size);
  free(fill);
  free(order);
  free(items);
  free(outv);
  return rc;
}

static int eval_count_values(struct nn__promql_ctx *c, const node_t *n,
                             const struct nn__promql_grid *g, struct nn__promql_vec *in,
                             const char *label, struct nn__promql_val *out)
{
  struct nn__promql_hmap m;
  int rc = 0;
  struct nn_label chk = {"a", label};
  char err[8];
  if (!label[0] || nn_labels_validate(&chk, 1, err, sizeof(err)) < 0) {
    struct nn_buf b;
    nn_buf_init(&b, 1024);
    nn__promql_quote(&b, label);
    rc = nn__promql_fail(c, NN_PROMQL_ERR_EXECUTION, NN_EINVAL, "invalid label name %s",
                         b.data ? b.data : "");
    nn_buf_fini(&b);
    return rc;
  }
  if (nn__promql_hmap_init(&m, in->n) < 0)
    return nomem(c);
  out->vt = VT_VECTOR;
  size_t nnames = n->grouping.n;
  const char **names = malloc((nnames + 1) * sizeof(*names));
  if (!names) {
    rc = nomem(c);
    goto out;
  }
  for (size_t k = 0; k < nnames; k++)
    names[k] = n->grouping.v[k];
  if (!n->without)
    names[nnames++] = label;
  char num[400];
  for (size_t i = 0; i < g->n; i++) {
    for (size_t s = 0; s < in->n; s++) {
      double v = in->s[s].v[i];
      if (nn__promql_absent(v))
        continue;
      nn_promql_format_float_f(v, num, sizeof(num));
      char *val = nn_pool_strndup(&c->pool, num, strlen(num));
      size_t nls, ngl;
      const struct nn_label *ls =
          val ? nn__promql_labels_set(c, in->s[s].ls, in->s[s].nls, label, val, &nls) : NULL;
      const struct nn_label *gl = ls ? group_labels(c, n, ls, nls, names, nnames, &ngl) : NULL;
      if (!gl) {
        rc = c->rc ? c->rc : nomem(c);
        goto out;
      }
      bool found;
      uint32_t *slot = nn__promql_hmap_put(&m, nn_labels_hash(gl, ngl), &found);
      if (!slot) {
        rc = nomem(c);
        goto out;
      }
      if (!found) {
        double *vals = nn__promql_alloc_steps(c, g->n);
        if (!vals) {
          rc = c->rc;
          goto out;
        }
        if ((rc = nn__promql_vec_push(c, &out->vec, gl, ngl, vals, false)) < 0) {
          nn__promql_free_steps(c, vals, g->n);
          goto out;
        }
        *slot = (uint32_t)(out->vec.n - 1);
      }
      double *dst = &out->vec.s[*slot].v[i];
      *dst = nn__promql_absent(*dst) ? 1 : *dst + 1;
    }
  }
out:
  free(names);
  nn__promql_hmap_fini(&m);
  return rc;
}

/* ---- fused aggregation over a range function ---- */

/* sum by (...) (rate(x[5m])) and the like: the range function streams series by series and
 * each series' steps are folded into its group's per-step accumulators at once, so no step
 * array per input series is ever built (100k series x 721 steps would be 577 MB). The fold
 * order per group and step is the input series order, as in the unfused path, so the
 * floating-point results are identical. */
struct fuse {
  struct nn__promql_ctx *c;
  const node_t *n;
  const struct nn__promql_grid *g;
  struct nn__promql_val *out;
  struct nn__promql_hmap m;
  struct acc **accs; /* per group, g->n accumulators; seen != 0 once a value arrived */
  size_t ngroups, cap;
  size_t i0, ns; /* the slice of steps being streamed */
};

static bool fusable_op(int op)
{
  return op == AGG_SUM || op == AGG_AVG || op == AGG_COUNT || op == AGG_MIN || op == AGG_MAX ||
         op == AGG_GROUP || op == AGG_STDDEV || op == AGG_STDVAR;
}

#define ACC_SLOTS (sizeof(struct acc) / sizeof(double))

static int on_fuse_series(void *ud, const struct nn_label *ls, size_t nls, bool drop_name,
                          const double *vals)
{
  struct fuse *f = ud;
  struct nn__promql_ctx *c = f->c;
  const node_t *n = f->n;
  struct nn_label stackbuf[64];
  size_t k = 0;
  const struct nn_label *gl = stackbuf;
  if (nls <= 64) {
    for (size_t i = 0; i < nls; i++) {
      bool in = false;
      for (size_t j = 0; j < n->grouping.n && !in; j++)
        in = strcmp(ls[i].name, n->grouping.v[j]) == 0;
      if (n->without ? (in || strcmp(ls[i].name, "__name__") == 0) : !in)
        continue;
      stackbuf[k++] = ls[i];
    }
  } else if (!(gl = group_labels(c, n, ls, nls, (const char *const *)n->grouping.v, n->grouping.n,
                                 &k))) {
    return c->rc;
  }
  bool found;
  uint32_t *slot = nn__promql_hmap_put(&f->m, nn_labels_hash(gl, k), &found);
  if (!slot)
    return nomem(c);
  if (!found) {
    if (f->ngroups == f->cap) {
      size_t nc = f->cap ? f->cap * 2 : 16;
      struct acc **na = realloc(f->accs, nc * sizeof(*na));
      if (!na)
        return nomem(c);
      f->accs = na;
      f->cap = nc;
    }
    /* The series' labels live only during this call (a streamed select): the group
     * keeps copies. */
    struct nn_label *cp = nn_pool_alloc(&c->pool, (k ? k : 1) * sizeof(*cp));
    if (!cp)
      return nomem(c);
    for (size_t i = 0; i < k; i++) {
      cp[i].name = nn_pool_strndup(&c->pool, gl[i].name, strlen(gl[i].name));
      cp[i].value = nn_pool_strndup(&c->pool, gl[i].value, strlen(gl[i].value));
      if (!cp[i].name || !cp[i].value)
        return nomem(c);
    }
    gl = cp;
    int rc;
    if ((rc = nn__promql_account(c, f->g->n * ACC_SLOTS)) < 0)
      return rc;
    struct acc *a = calloc(f->g->n ? f->g->n : 1, sizeof(*a));
    if (!a) {
      nn__promql_unaccount(c, f->g->n * ACC_SLOTS);
      return nomem(c);
    }
    double *ov = nn__promql_alloc_steps(c, f->g->n);
    if (!ov) {
      nn__promql_unaccount(c, f->g->n * ACC_SLOTS);
      free(a);
      return c->rc;
    }
    if ((rc = nn__promql_vec_push(c, &f->out->vec, gl, k, ov, false)) < 0) {
      nn__promql_unaccount(c, f->g->n * ACC_SLOTS);
      free(a);
      nn__promql_free_steps(c, ov, f->g->n);
      return rc;
    }
    f->accs[f->ngroups] = a;
    *slot = (uint32_t)f->ngroups++;
  }
  if (drop_name)
    f->out->vec.s[*slot].drop_name = true;
  struct acc *a = f->accs[*slot] + f->i0;
  int op = n->op;
  for (size_t i = 0; i < f->ns; i++) {
    double v = vals[i];
    if (nn__promql_absent(v))
      continue;
    if (!a[i].seen) {
      a[i].seen = 1;
      acc_first(op, &a[i], v);
    } else if (op == AGG_SUM) {
      nn__promql_kahan_inc(v, &a[i].v, &a[i].c);
    } else {
      acc_add(op, &a[i], v);
    }
  }
  return 0;
}

static int fuse_begin(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                      struct nn__promql_val *out, struct fuse *f)
{
  *f = (struct fuse){.c = c, .n = n, .g = g, .out = out, .i0 = 0, .ns = g->n};
  out->vt = VT_VECTOR;
  return nn__promql_hmap_init(&f->m, 64) < 0 ? nomem(c) : 0;
}

static void fuse_end(struct fuse *f, bool ok)
{
  for (size_t k = 0; k < f->ngroups; k++) {
    double *ov = f->out->vec.s[k].v;
    const struct acc *a = f->accs[k];
    for (size_t i = 0; ok && i < f->g->n; i++)
      if (a[i].seen)
        ov[i] = acc_result(f->n->op, &a[i]);
    free(f->accs[k]);
    nn__promql_unaccount(f->c, f->g->n * ACC_SLOTS);
  }
  free(f->accs);
  nn__promql_hmap_fini(&f->m);
}

/* ---- fused aggregations sharing one select ----
 * error ratios and burn-rate alerts aggregate the same metric several times, with more
 * matchers on one side (code=~"5..") or another range ([5m] and [1h]). Every fused
 * aggregation of the query over one metric (same offset and @) is evaluated from one
 * streamed select on the matchers they all have: each series is decoded once, checked
 * against each aggregation's other matchers, evaluated once per distinct function and
 * range, and folded into each aggregation that takes it. Series order, and so each
 * aggregation's fold order, is the store's label order either way: the values are the
 * same bits as evaluating them one by one. Results wait in the stash until asked for. */

struct nn__promql_stash {
  const node_t *n;
  struct nn__promql_val out;
  bool taken;
};

#define MAX_SHARE 32

static bool matcher_eq(const struct nn_matcher *a, const struct nn_matcher *b)
{
  return a->type == b->type && strcmp(a->name, b->name) == 0 && strcmp(a->value, b->value) == 0;
}

static const node_t *unparen(const node_t *n)
{
  while (n->kind == N_PAREN)
    n = n->child;
  return n;
}

static const node_t *share_vsel(const node_t *n)
{
  if (n->kind != N_AGG || !fusable_op(n->op) || n->param)
    return NULL;
  const node_t *ch = unparen(n->child);
  if (!nn__promql_call_shares(ch))
    return NULL;
  const node_t *vs = nn__promql_call_vsel(ch);
  return vs && vs->str ? vs : NULL;
}

static void collect_shares(const node_t *n, const node_t **out, size_t *nout)
{
  if (!n || *nout == MAX_SHARE)
    return;
  switch (n->kind) {
  case N_SUBQ:
  case N_MSEL: return; /* other grids; selectors */
  case N_AGG:
    if (share_vsel(n)) {
      out[(*nout)++] = n;
      return;
    }
    collect_shares(n->param, out, nout);
    collect_shares(n->child, out, nout);
    return;
  case N_BINARY:
    collect_shares(n->lhs, out, nout);
    collect_shares(n->rhs, out, nout);
    return;
  case N_CALL:
    for (size_t i = 0; i < n->nargs; i++)
      collect_shares(n->args[i], out, nout);
    return;
  default: collect_shares(n->child, out, nout); return;
  }
}

static bool same_source(const node_t *a, const node_t *b)
{
  return strcmp(a->str, b->str) == 0 && a->offset_ms == b->offset_ms && a->at == b->at &&
         a->at_ms == b->at_ms;
}

void nn__promql_stash_free(struct nn__promql_ctx *c)
{
  for (size_t i = 0; i < c->nstash; i++)
    if (!c->stash[i].taken)
      nn__promql_vec_free(c, &c->stash[i].out.vec, c->top.n);
  free(c->stash);
  c->stash = NULL;
  c->nstash = 0;
}

/* Evaluates n and the other fused aggregations of the query over n's metric in one pass;
 * 1 when n has no partner (evaluate it alone). */
static int eval_shared(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                       struct nn__promql_val *out)
{
  const node_t *all[MAX_SHARE], *grp[MAX_SHARE];
  size_t nall = 0, ngrp = 0;
  collect_shares(c->root, all, &nall);
  const node_t *vs = share_vsel(n);
  for (size_t i = 0; i < nall; i++) {
    bool done = false; /* evaluated with an earlier group */
    for (size_t k = 0; k < c->nstash && !done; k++)
      done = c->stash[k].n == all[i];
    if (all[i] == n || (!done && same_source(share_vsel(all[i]), vs)))
      grp[ngrp++] = all[i];
  }
  if (ngrp < 2)
    return 1;
  /* The matchers every member has. */
  const struct nn_matcher *common[64];
  size_t ncommon = 0;
  for (size_t m = 0; m < vs->nmatchers && ncommon < 64; m++) {
    bool in_all = true;
    for (size_t i = 0; i < ngrp && in_all; i++) {
      const node_t *v = share_vsel(grp[i]);
      bool has = false;
      for (size_t k = 0; k < v->nmatchers && !has; k++)
        has = matcher_eq(&v->matchers[k], &vs->matchers[m]);
      in_all = has;
    }
    if (in_all)
      common[ncommon++] = &vs->matchers[m];
  }
  if (ncommon == 0)
    return 1;
  struct nn_matcher *cms = nn_pool_alloc(&c->pool, ncommon * sizeof(*cms));
  struct nn__promql_share *sh = calloc(ngrp, sizeof(*sh));
  struct fuse *fs = calloc(ngrp, sizeof(*fs));
  struct nn__promql_stash *st = realloc(c->stash, (c->nstash + ngrp) * sizeof(*st));
  if (st)
    c->stash = st;
  if (!cms || !sh || !fs || !st) {
    free(sh);
    free(fs);
    return nomem(c);
  }
  for (size_t m = 0; m < ncommon; m++)
    cms[m] = *common[m]; /* shallow: the node keeps ownership */
  int rc = 0;
  size_t begun = 0;
  for (size_t i = 0; i < ngrp && rc == 0; i++) {
    const node_t *v = share_vsel(grp[i]);
    const struct nn_matcher **extra = nn_pool_alloc(&c->pool, (v->nmatchers + 1) * sizeof(*extra));
    if (!extra) {
      rc = nomem(c);
      break;
    }
    size_t ne = 0;
    for (size_t k = 0; k < v->nmatchers; k++) {
      bool in = false;
      for (size_t m = 0; m < ncommon && !in; m++)
        in = matcher_eq(&v->matchers[k], common[m]);
      if (!in)
        extra[ne++] = &v->matchers[k];
    }
    struct nn__promql_stash *e = &c->stash[c->nstash + i];
    memset(e, 0, sizeof(*e));
    e->n = grp[i];
    e->taken = grp[i] == n; /* n's result goes straight to out */
    struct nn__promql_val *o = grp[i] == n ? out : &e->out;
    if ((rc = fuse_begin(c, grp[i], g, o, &fs[i])) < 0)
      break;
    begun++;
    sh[i] = (struct nn__promql_share){unparen(grp[i]->child), extra, ne, on_fuse_series, &fs[i]};
  }
  if (rc == 0)
    rc = nn__promql_eval_range_shared(c, cms, ncommon, sh, ngrp, g);
  for (size_t i = 0; i < begun; i++)
    fuse_end(&fs[i], rc == 0);
  if (rc < 0) {
    for (size_t i = 0; i < ngrp; i++)
      if (grp[i] != n && i < begun)
        nn__promql_vec_free(c, &c->stash[c->nstash + i].out.vec, g->n);
  } else {
    c->nstash += ngrp;
  }
  free(sh);
  free(fs);
  return rc;
}

static int eval_agg_fused(struct nn__promql_ctx *c, const node_t *n, const node_t *call,
                          const struct nn__promql_grid *g, struct nn__promql_val *out)
{
  struct fuse f;
  int rc;
  bool top = g->start == c->top.start && g->step == c->top.step && g->n == c->top.n;
  for (size_t i = 0; top && i < c->nstash; i++) {
    if (c->stash[i].n == n && !c->stash[i].taken) {
      c->stash[i].taken = true;
      *out = c->stash[i].out;
      return 0;
    }
  }
  if (top && c->root && share_vsel(n) && (rc = eval_shared(c, n, g, out)) <= 0)
    return rc;
  if ((rc = fuse_begin(c, n, g, out, &f)) < 0)
    return rc;
  /* The range function streams the selection series by series (the store decodes one
   * series at a time), so the whole range goes in one pass. */
  rc = nn__promql_eval_range_stream(c, call, g, on_fuse_series, &f);
  fuse_end(&f, rc == 0);
  return rc;
}

int nn__promql_eval_agg(struct nn__promql_ctx *c, const node_t *n, const struct nn__promql_grid *g,
                        struct nn__promql_val *out)
{
  int op = n->op;
  struct nn__promql_val param, in;
  struct nn__promql_hmap m;
  int rc;
  uint32_t *grp = NULL;
  struct acc *accs = NULL;
  size_t ngroups = 0;
  memset(&param, 0, sizeof(param));
  memset(&in, 0, sizeof(in));
  memset(&m, 0, sizeof(m));
  memset(out, 0, sizeof(*out));
  if (n->param && (rc = nn__promql_eval(c, n->param, g, &param)) < 0)
    return rc;
  const node_t *ch = n->child;
  while (ch->kind == N_PAREN)
    ch = ch->child;
  if (fusable_op(op) && nn__promql_call_streams(ch)) {
    rc = eval_agg_fused(c, n, ch, g, out);
    goto out;
  }
  if ((rc = nn__promql_eval(c, n->child, g, &in)) < 0)
    goto out;
  if (op == AGG_COUNT_VALUES) {
    rc = eval_count_values(c, n, g, &in.vec, param.str ? param.str : "", out);
    goto out;
  }
  const char *const *names = (const char *const *)n->grouping.v;
  size_t nnames = n->grouping.n;
  grp = malloc((in.vec.n + 1) * sizeof(*grp));
  if (!grp || nn__promql_hmap_init(&m, in.vec.n) < 0) {
    rc = nomem(c);
    goto out;
  }
  bool kop = op == AGG_TOPK || op == AGG_BOTTOMK || op == AGG_LIMITK || op == AGG_LIMIT_RATIO;
  for (size_t s = 0; s < in.vec.n; s++) {
    size_t ngl;
    const struct nn_label *gl =
        group_labels(c, n, in.vec.s[s].ls, in.vec.s[s].nls, names, nnames, &ngl);
    if (!gl) {
      rc = c->rc;
      goto out;
    }
    bool found;
    uint32_t *slot = nn__promql_hmap_put(&m, nn_labels_hash(gl, ngl), &found);
    if (!slot) {
      rc = nomem(c);
      goto out;
    }
    if (!found) {
      *slot = (uint32_t)ngroups++;
      if (!kop) {
        double *vals = nn__promql_alloc_steps(c, g->n);
        if (!vals) {
          rc = c->rc;
          goto out;
        }
        if ((rc = nn__promql_vec_push(c, &out->vec, gl, ngl, vals, false)) < 0) {
          nn__promql_free_steps(c, vals, g->n);
          goto out;
        }
      }
    }
    grp[s] = *slot;
    if (!kop && in.vec.s[s].drop_name)
      out->vec.s[*slot].drop_name = true;
  }
  out->vt = VT_VECTOR;
  if (kop) {
    rc = eval_k(c, n, g, &in.vec, param.sc, grp, ngroups, out);
    goto out;
  }
  accs = calloc(ngroups + 1, sizeof(*accs));
  if (!accs) {
    rc = nomem(c);
    goto out;
  }
  for (size_t k = 0; k < ngroups; k++)
    accs[k].seen = SIZE_MAX;
  if (op == AGG_QUANTILE) {
    /* gather each group's values per step */
    size_t *first = calloc(ngroups + 1, sizeof(*first)), *size = calloc(ngroups + 1, sizeof(*size));
    size_t *fill = calloc(ngroups + 1, sizeof(*fill));
    size_t *order = malloc((in.vec.n + 1) * sizeof(*order));
    double *buf = malloc((in.vec.n + 1) * sizeof(*buf));
    if (!first || !size || !fill || !order || !buf) {
      free(first);
      free(size);
      free(fill);
      free(order);
      free(buf);
      rc = nomem(c);
      goto out;
    }
    for (size_t s = 0; s < in.vec.n; s++)
      size[grp[s]]++;
    size_t acc = 0;
    for (size_t k = 0; k < ngroups; k++) {
      first[k] = acc;
      acc += size[k];
    }
    for (size_t s = 0; s < in.vec.n; s++)
      order[first[grp[s]] + fill[grp[s]]++] = s;
    for (size_t i = 0; i < g->n; i++)
      for (size_t k = 0; k < ngroups; k++) {
        size_t nb = 0;
        for (size_t q = 0; q < size[k]; q++) {
          double v = in.vec.s[order[first[k] + q]].v[i];
          if (!nn__promql_absent(v))
            buf[nb++] = v;
        }
        if (nb)
          out->vec.s[k].v[i] = nn__promql_quantile(param.sc[i], buf, nb);
      }
    free(first);
    free(size);
    free(fill);
    free(order);
    free(buf);
  } else {
    for (size_t i = 0; i < g->n; i++) {
      if ((i & 255) == 255 && (rc = nn__promql_check_deadline(c)) < 0)
        goto out;
      for (size_t s = 0; s < in.vec.n; s++) {
        double v = in.vec.s[s].v[i];
        if (nn__promql_absent(v))
          continue;
        struct acc *a = &accs[grp[s]];
        if (a->seen != i) {
          a->seen = i;
          acc_first(op, a, v);
        } else {
          acc_add(op, a, v);
        }
      }
      for (size_t k = 0; k < ngroups; k++)
        if (accs[k].seen == i)
          out->vec.s[k].v[i] = acc_result(op, &accs[k]);
    }
  }
  /* groups without any point (possible only with all-absent inputs) are dropped */
  size_t w = 0;
  for (size_t k = 0; k < out->vec.n; k++) {
    bool any = false;
    for (size_t i = 0; i < g->n && !any; i++)
      any = !nn__promql_absent(out->vec.s[k].v[i]);
    if (any)
      out->vec.s[w++] = out->vec.s[k];
    else
      nn__promql_free_steps(c, out->vec.s[k].v, g->n);
  }
  out->vec.n = w;
out:
  if (param.sc)
    nn__promql_free_steps(c, param.sc, g->n);
  nn__promql_vec_free(c, &in.vec, g->n);
  nn__promql_hmap_fini(&m);
  free(grp);
  free(accs);
  if (rc < 0)
    nn__promql_vec_free(c, &out->vec, g->n);
  return rc;
}
