/* SPDX-License-Identifier: Apache-2.0 */
/* One target's scrape loop, as Prometheus's scrapeLoop: a timer at a per-target offset,
 * an HTTP GET, streaming parse into a batch, and a per-target series cache that turns
 * "seen last time, not this time" into stale markers. A failed scrape (HTTP error, parse
 * error, a limit) is an empty scrape: up=0 and stale markers for everything that was live,
 * and none of its samples are emitted. Working memory is shared by every target (one loop
 * thread), so a steady-state scrape allocates only for series it has never seen. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "agent/scrape/internal.h"
#include "common/error.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/pool.h"
#include "common/wire.h"

#define REPORT_N 5
static const char *const report_names[REPORT_N] = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added"};

int64_t nn__scrape_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double stale_nan(void)
{
  uint64_t b = NN_SCRAPE_STALE_NAN_BITS;
  double d;
  memcpy(&d, &b, sizeof(d));
  return d;
}

/* ---- series cache ---- */

static struct nn__scrape_series *cache_find(const struct nn__scrape_cache *c, uint64_t h,
                                            const char *enc, size_t len)
{
  if (!c->nbuckets)
    return NULL;
  for (struct nn__scrape_series *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->next)
    if (e->enc_len == len && memcmp(e->enc, enc, len) == 0)
      return e;
  return NULL;
}

/* Rebuilds the bucket array at nb buckets (a power of two). */
static int cache_rehash(struct nn__scrape_cache *c, size_t nb)
{
  struct nn__scrape_series **b = calloc(nb, sizeof(*b));
  if (!b)
    return NN_ENOMEM;
  for (size_t i = 0; i < c->nbuckets; i++) {
    struct nn__scrape_series *x = c->buckets[i];
    while (x) {
      struct nn__scrape_series *next = x->next;
      size_t k = XXH3_64bits(x->enc, x->enc_len) & (nb - 1);
      x->next = b[k];
      b[k] = x;
      x = next;
    }
  }
  free(c->buckets);
  c->buckets = b;
  c->nbuckets = nb;
  return 0;
}

/* Adds e, whose labels hash to h. Hashes are not kept (8 bytes a series): a rehash, which
 * happens only as the cache doubles, computes them again. */
static int cache_insert(struct nn__scrape_cache *c, struct nn__scrape_series *e, uint64_t h)
{
  /* Four series a bucket on average: lookups by labels happen only for lines whose text is
   * new (the text index serves the rest), so short chains would cost memory for nothing. */
  if (c->n + 1 > 4 * c->nbuckets) {
    int rc = cache_rehash(c, c->nbuckets ? c->nbuckets * 2 : 64);
    if (rc < 0)
      return rc;
  }
  e->next = c->buckets[h & (c->nbuckets - 1)];
  c->buckets[h & (c->nbuckets - 1)] = e;
  c->n++;
  return 0;
}

static void cache_free(struct nn__scrape_cache *c)
{
  for (size_t i = 0; i < c->nbuckets; i++) {
    struct nn__scrape_series *x = c->buckets[i];
    while (x) {
      struct nn__scrape_series *next = x->next;
      free(x);
      x = next;
    }
  }
  free(c->buckets);
  memset(c, 0, sizeof(*c));
}

/* ---- per-target dictionaries ---- */

#define NAMES_MAX        256   /* label names: one byte of index */
#define METRIC_NAMES_MAX 16384 /* __name__ labels: two bytes */
#define DICT_BYTES_MAX   (1u << 20)

static void dict_free(struct nn__scrape_dict *d)
{
  free(d->bytes);
  free(d->off);
  free(d->slots);
  memset(d, 0, sizeof(*d));
}

static int dict_index(struct nn__scrape_dict *d, size_t nslots)
{
  uint32_t *sl = calloc(nslots, sizeof(*sl));
  if (!sl)
    return NN_ENOMEM;
  for (size_t i = 0; i < d->n; i++) {
    size_t k = XXH3_64bits(d->bytes + d->off[i], d->off[i + 1] - d->off[i]) & (nslots - 1);
    while (sl[k])
      k = (k + 1) & (nslots - 1);
    sl[k] = (uint32_t)i + 1;
  }
  free(d->slots);
  d->slots = sl;
  d->nslots = nslots;
  return 0;
}

/* Index of key in d, added if absent; -1 when d is full. A dictionary that once failed to
 * grow takes nothing more, so a label is always stored the same way (the stored form is the
 * series' identity). */
static int dict_get(struct nn__scrape_dict *d, const void *key, size_t len, size_t max)
{
  uint64_t h = XXH3_64bits(key, len);
  size_t k = 0;
  if (d->nslots) {
    for (k = h & (d->nslots - 1); d->slots[k]; k = (k + 1) & (d->nslots - 1)) {
      uint32_t i = d->slots[k] - 1;
      if (d->off[i + 1] - d->off[i] == len && memcmp(d->bytes + d->off[i], key, len) == 0)
        return (int)i;
    }
  }
  if (d->max == 0)
    d->max = max;
  if (d->n >= d->max || d->len + len > DICT_BYTES_MAX)
    return -1;
  if ((d->n + 1) * 2 > d->nslots) {
    if (dict_index(d, d->nslots ? d->nslots * 2 : 32) < 0)
      goto full;
    for (k = h & (d->nslots - 1); d->slots[k];)
      k = (k + 1) & (d->nslots - 1);
  }
  if (d->n + 2 > d->offcap) {
    size_t cap = d->offcap ? d->offcap * 2 : 32;
    uint32_t *o = realloc(d->off, cap * sizeof(*o));
    if (!o)
      goto full;
    d->off = o;
    d->offcap = cap;
    if (d->n == 0)
      d->off[0] = 0;
  }
  if (d->len + len > d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 1024;
    while (cap < d->len + len)
      cap *= 2;
    uint8_t *b = realloc(d->bytes, cap);
    if (!b)
      goto full;
    d->bytes = b;
    d->cap = cap;
  }
  memcpy(d->bytes + d->len, key, len);
  d->len += len;
  d->off[d->n + 1] = (uint32_t)d->len;
  d->slots[k] = (uint32_t)d->n + 1;
  return (int)d->n++;
full:
  d->max = d->n;
  return -1;
}

/* Stores canonical labels as a series keeps them into s->keybuf: remote-write
 * TimeSeries.labels fields, or their shorter forms (internal.h). A label equal to a target
 * label (name and value; both lists are sorted by name, so one merge walk finds them) is a
 * reference; a name or __name__ label is added to the target's dictionaries when it is
 * first seen. The stored form is a function of the label set alone, as identity needs.
 * *full is the expanded size. */
static int encode_labels(struct nn_scrape *s, struct nn__scrape_target *t, const struct nn_label *l,
                         size_t n, size_t *len, size_t *full)
{
  size_t o = 0, exp = 0, j = 0, tn = t->nlabels < 256 ? t->nlabels : 256;
  for (size_t i = 0; i < n; i++) {
    int c = 1;
    while (j < tn && (c = strcmp(t->labels[j].name, l[i].name)) < 0)
      j++;
    bool ref = j < tn && c == 0 && strcmp(t->labels[j].value, l[i].value) == 0;
    size_t nl = 0, vl = 0, sz;
    if (ref) {
      sz = t->toff[j + 1] - t->toff[j];
    } else {
      nl = strlen(l[i].name);
      vl = strlen(l[i].value);
      sz = nn_wire_rw_label_size(nl, vl);
    }
    exp += sz;
    if (exp > UINT32_MAX / 2)
      return NN_ETOOBIG;
    if (o + sz > s->keycap) {
      size_t cap = (o + sz) * 2 + 256;
      char *k = realloc(s->keybuf, cap);
      if (!k)
        return NN_ENOMEM;
      s->keybuf = k;
      s->keycap = cap;
    }
    uint8_t *w = (uint8_t *)s->keybuf + o;
    int d;
    if (ref) {
      w[0] = 0;
      w[1] = (uint8_t)j;
      o += 2;
    } else if (nl == 8 && memcmp(l[i].name, "__name__", 8) == 0) {
      nn_wire_rw_label_put(w, l[i].name, nl, l[i].value, vl);
      if ((d = dict_get(&t->metric_names, w, sz, METRIC_NAMES_MAX)) >= 0) {
        w[0] = 2;
        w[1] = (uint8_t)d;
        w[2] = (uint8_t)(d >> 8);
        o += 3;
      } else {
        o += sz;
      }
    } else if (vl < 128 && (d = dict_get(&t->names, l[i].name, nl, NAMES_MAX)) >= 0) {
      w[0] = 1;
      w[1] = (uint8_t)d;
      w[2] = (uint8_t)vl;
      memcpy(w + 3, l[i].value, vl);
      o += 3 + vl;
    } else {
      o += nn_wire_rw_label_put(w, l[i].name, nl, l[i].value, vl);
    }
  }
  *len = o;
  *full = exp;
  return 0;
}

/* Finds or adds the series for canonical labels l. *added tells whether it is new. */
static struct nn__scrape_series *cache_get(struct nn_scrape *s, struct nn__scrape_target *t,
                                           const struct nn_label *l, size_t n, bool *added)
{
  struct nn__scrape_cache *c = &t->cache;
  size_t len, full;
  *added = false;
  if (encode_labels(s, t, l, n, &len, &full) < 0)
    return NULL;
  uint64_t h = XXH3_64bits(s->keybuf, len);
  struct nn__scrape_series *e = cache_find(c, h, s->keybuf, len);
  if (e)
    return e;
  if (!(e = malloc(offsetof(struct nn__scrape_series, enc) + len)))
    return NULL;
  memset(e, 0, sizeof(*e));
  memcpy(e->enc, s->keybuf, len);
  e->enc_len = (uint32_t)len;
  e->full_len = (uint32_t)full;
  if (cache_insert(c, e, h) < 0) {
    free(e);
    return NULL;
  }
  *added = true;
  return e;
}

/* Reads a varint length (our own encoding: well-formed by construction). */
static const uint8_t *read_len(const uint8_t *p, size_t *len)
{
  size_t v = 0;
  int shift = 0;
  while (*p & 0x80) {
    v |= (size_t)(*p++ & 0x7f) << shift;
    shift += 7;
  }
  *len = v | (size_t)*p << shift;
  return p + 1;
}

static size_t varint_len(size_t v)
{
  size_t n = 1;
  for (; v >= 0x80; v >>= 7)
    n++;
  return n;
}

static uint8_t *put_varint(uint8_t *o, size_t v)
{
  for (; v >= 0x80; v >>= 7)
    *o++ = (uint8_t)(v | 0x80);
  *o++ = (uint8_t)v;
  return o;
}

void nn_scrape_rw_labels(const struct nn_scrape_batch *b, const struct nn_scrape_sample *s,
                         void *out)
{
  const struct nn__scrape_target *t = b->target;
  const struct nn__scrape_series *e = s->series;
  const uint8_t *p = (const uint8_t *)e->enc, *end = p + e->enc_len;
  uint8_t *o = out;
  while (p < end) {
    size_t len;
    switch (*p) {
    case 0:
      len = t->toff[p[1] + 1] - t->toff[p[1]];
      memcpy(o, t->tenc + t->toff[p[1]], len);
      o += len;
      p += 2;
      break;
    case 1: {
      const struct nn__scrape_dict *d = &t->names;
      size_t nl = d->off[p[1] + 1] - d->off[p[1]], vl = p[2];
      *o++ = 0x0a; /* TimeSeries.labels */
      o = put_varint(o, 3 + varint_len(nl) + nl + vl);
      *o++ = 0x0a; /* Label.name */
      o = put_varint(o, nl);
      memcpy(o, d->bytes + d->off[p[1]], nl);
      o += nl;
      *o++ = 0x12; /* Label.value */
      *o++ = (uint8_t)vl;
      memcpy(o, p + 3, vl);
      o += vl;
      p += 3 + vl;
      break;
    }
    case 2: {
      size_t k = (size_t)p[1] | (size_t)p[2] << 8;
      len = t->metric_names.off[k + 1] - t->metric_names.off[k];
      memcpy(o, t->metric_names.bytes + t->metric_names.off[k], len);
      o += len;
      p += 3;
      break;
    }
    default:
      len = (size_t)(read_len(p + 1, &len) - p) + len;
      memcpy(o, p, len);
      o += len;
      p += len;
    }
  }
}

/* ---- series text index ---- */

#define RAW_TOMB                 ((uint64_t)2)
#define RAW_ITER(iter)           ((uint64_t)((iter)&0x3fffffff) << 2)
#define RAW_DROPPED(check, iter) ((uint64_t)(check) << 32 | RAW_ITER(iter) | 1)
#define RAW_IS_SERIES(v)         ((v) > RAW_TOMB && ((v)&3) == 0)
#define RAW_SERIES(v)            ((struct nn__scrape_series *)(uintptr_t)(v))

static void raw_hash(const char *text, size_t len, enum nn_expfmt_format fmt, uint64_t *h0,
                     uint32_t *check)
{
  /* Seeded by the format: the same text may parse differently in the other one. */
  XXH128_hash_t h = XXH3_128bits_withSeed(text, len, (XXH64_hash_t)fmt + 1);
  *h0 = h.low64;
  *check = (uint32_t)h.high64;
}

/* The slot for h0, or NULL; the caller still compares the check bits (raw_match). */
static struct nn__scrape_raw *raw_find(const struct nn__scrape_rawtab *r, uint64_t h0)
{
  if (!r->cap)
    return NULL;
  for (size_t i = h0 & (r->cap - 1);; i = (i + 1) & (r->cap - 1)) {
    struct nn__scrape_raw *x = &r->slots[i];
    if (x->v == 0)
      return NULL;
    if (x->v != RAW_TOMB && x->h0 == h0)
      return x;
  }
}

static bool raw_match(const struct nn__scrape_raw *x, uint32_t check)
{
  return RAW_IS_SERIES(x->v) ? RAW_SERIES(x->v)->check == check : (uint32_t)(x->v >> 32) == check;
}

static void raw_clear(struct nn__scrape_rawtab *r)
{
  if (r->cap)
    memset(r->slots, 0, r->cap * sizeof(*r->slots));
  r->used = r->tombs = r->dropped = 0;
}

static void raw_free(struct nn__scrape_rawtab *r)
{
  free(r->slots);
  memset(r, 0, sizeof(*r));
}

/* Rebuilds the table at cap slots, dropping tombstones. */
static int raw_resize(struct nn__scrape_rawtab *r, size_t cap)
{
  struct nn__scrape_raw *n = calloc(cap, sizeof(*n));
  if (!n)
    return NN_ENOMEM;
  for (size_t i = 0; i < r->cap; i++) {
    struct nn__scrape_raw *x = &r->slots[i];
    if (x->v == 0 || x->v == RAW_TOMB)
      continue;
    size_t j = x->h0 & (cap - 1);
    while (n[j].v)
      j = (j + 1) & (cap - 1);
    n[j] = *x;
  }
  free(r->slots);
  r->slots = n;
  r->cap = cap;
  r->tombs = 0;
  return 0;
}

/* Adds h0 (known to be absent) with value v. False when out of memory: only costs speed. */
static bool raw_add(struct nn__scrape_rawtab *r, uint64_t h0, uint64_t v)
{
  /* Load at most 3/4 counting tombstones, so a probe always ends at an empty slot. */
  if ((r->used + r->tombs + 1) * 4 > r->cap * 3) {
    size_t cap = r->cap ? r->cap : 64;
    while ((r->used + 1) * 2 > cap)
      cap *= 2;
    if (raw_resize(r, cap) < 0)
      return false;
  }
  size_t i = h0 & (r->cap - 1);
  while (r->slots[i].v != 0 && r->slots[i].v != RAW_TOMB)
    i = (i + 1) & (r->cap - 1);
  if (r->slots[i].v == RAW_TOMB)
    r->tombs--;
  r->slots[i] = (struct nn__scrape_raw){h0, v};
  r->used++;
  if (!RAW_IS_SERIES(v))
    r->dropped++;
  return true;
}

/* After a scrape: forgets text whose series was swept and dropped text not seen this time. */
static void raw_prune(struct nn__scrape_target *t, bool any_dead)
{
  struct nn__scrape_rawtab *r = &t->raw;
  if (!any_dead && !r->dropped)
    return;
  for (size_t i = 0; i < r->cap; i++) {
    struct nn__scrape_raw *x = &r->slots[i];
    if (x->v == 0 || x->v == RAW_TOMB)
      continue;
    bool series = RAW_IS_SERIES(x->v);
    if (series ? RAW_SERIES(x->v)->dead
               : (x->v & ~(uint64_t)0xffffffff00000000) != RAW_ITER(t->iter) + 1) {
      if (!series)
        r->dropped--;
      x->v = RAW_TOMB;
      r->used--;
      r->tombs++;
    }
  }
}

/* ---- batch ---- */

static struct nn_scrape_sample sample_of(const struct nn__scrape_series *e, int64_t t, double v)
{
  return (struct nn_scrape_sample){.series = e, .rw_labels_len = e->full_len, .t_ms = t, .v = v};
}

static int ensure_out(struct nn_scrape *s, size_t need)
{
  if (need <= s->out_cap)
    return 0;
  size_t cap = need + need / 2 + 64;
  struct nn_scrape_sample *o = realloc(s->out, cap * sizeof(*o));
  if (!o)
    return NN_ENOMEM;
  s->out = o;
  s->out_cap = cap;
  return 0;
}

/* Scraped samples go straight into the batch handed to the sink. */
static int batch_push(struct nn_scrape *s, struct nn__scrape_series *e, int64_t t, double v)
{
  int rc = ensure_out(s, s->batch_n + 1);
  if (rc < 0)
    return rc;
  s->out[s->batch_n++] = sample_of(e, t, v);
  return 0;
}

/* ---- per-scrape parsing ---- */

struct sctx {
  struct nn__scrape_target *t;
  struct nn_scrape *s;
  enum nn_expfmt_format fmt;
  int64_t ts;
  uint64_t total, added, series_added, dups;
  bool limit_hit;
  bool partial; /* nn_scrape_push_self: no iteration, no sweep */
  int rc;
  char err[320];
};

static int ctx_fail(struct sctx *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ctx_fail(struct sctx *c, int rc, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof(c->err), fmt, ap);
  va_end(ap);
  c->rc = rc;
  return rc;
}

static ssize_t find_label(const struct nn_label *l, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(l[i].name, name) == 0)
      return (ssize_t)i;
  return -1;
}

static int ensure_lab(struct nn_scrape *s, size_t need)
{
  if (need <= s->labcap)
    return 0;
  size_t cap = need * 2;
  struct nn_label *l = realloc(s->lab, cap * sizeof(*l));
  if (!l)
    return NN_ENOMEM;
  s->lab = l;
  s->labcap = cap;
  return 0;
}

/* Adds the target's labels to a scraped set (Prometheus mutateSampleLabels). */
static int merge_target_labels(struct sctx *c, size_t *np)
{
  struct nn__scrape_target *t = c->t;
  struct nn_scrape *s = c->s;
  struct nn_label *l = s->lab;
  size_t n = *np;
  if (t->job->cfg->honor_labels) {
    for (size_t i = 0; i < t->nlabels; i++)
      if (find_label(l, n, t->labels[i].name) < 0 || !*l[find_label(l, n, t->labels[i].name)].value)
        l[n++] = t->labels[i];
    *np = n;
    return 0;
  }
  struct nn_label conf[64];
  size_t nc = 0;
  for (size_t i = 0; i < t->nlabels; i++) {
    ssize_t k = find_label(l, n, t->labels[i].name);
    if (k >= 0) {
      if (*l[k].value && nc < 64)
        conf[nc++] = l[k];
      l[k].value = t->labels[i].value;
    } else {
      l[n++] = t->labels[i];
    }
  }
  /* Shorter names first (stable), each prefixed with exported_ until it is free. */
  for (size_t i = 1; i < nc; i++) {
    struct nn_label x = conf[i];
    size_t j = i;
    while (j > 0 && strlen(conf[j - 1].name) > strlen(x.name)) {
      conf[j] = conf[j - 1];
      j--;
    }
    conf[j] = x;
  }
  for (size_t i = 0; i < nc; i++) {
    char name[512];
    size_t len = strlen(conf[i].name);
    if (len >= sizeof(name))
      continue;
    memcpy(name, conf[i].name, len + 1);
    for (;;) {
      if (len + 9 >= sizeof(name))
        return ctx_fail(c, NN_EINVAL, "label name \"%s\" too long to export", conf[i].name);
      memmove(name + 9, name, len + 1);
      memcpy(name, "exported_", 9);
      len += 9;
      ssize_t k = find_label(l, n, name);
      if (k < 0 || !*l[k].value)
        break;
    }
    char *nm = nn_relabel_scratch_strndup(&s->scratch, name, len);
    if (!nm)
      return ctx_fail(c, NN_ENOMEM, "out of memory");
    ssize_t k = find_label(l, n, nm);
    if (k >= 0) {
      l[k].value = conf[i].value;
    } else {
      l[n].name = nm;
      l[n].value = conf[i].value;
      n++;
    }
  }
  *np = n;
  return 0;
}

static int take_sample(struct sctx *c, struct nn__scrape_series *e,
                       const struct nn_expfmt_sample *sm);

static int on_sample(void *ud, const struct nn_expfmt_sample *sm)
{
  struct sctx *c = ud;
  struct nn__scrape_target *t = c->t;
  struct nn_scrape *s = c->s;
  const struct nn_scrape_job_config *cfg = t->job->cfg;
  size_t n = sm->nlabels;
  int rc;

  c->total++;
  if (c->limit_hit)
    return 0; /* keep counting, as Prometheus does, to report the real total */
  if ((rc = ensure_lab(s, n + 2 * t->nlabels + 8)) < 0)
    return ctx_fail(c, rc, "out of memory");
  memcpy(s->lab, sm->labels, n * sizeof(*s->lab));
  nn_relabel_scratch_reset(&s->scratch);
  if ((rc = merge_target_labels(c, &n)) < 0)
    return rc;
  if (cfg->metric_relabel_configs.n) {
    rc = nn_relabel_process(&cfg->metric_relabel_configs, s->lab, &n, s->labcap, &s->scratch);
    if (rc == 0) {
      uint64_t h0;
      uint32_t check;
      raw_hash(sm->series, sm->series_len, c->fmt, &h0, &check);
      if (!raw_find(&t->raw, h0))
        raw_add(&t->raw, h0, RAW_DROPPED(check, t->iter));
      return 0;
    }
    if (rc < 0)
      return ctx_fail(c, rc, "metric relabeling failed: %s", nn_strerror(rc));
    for (size_t i = 0; i < n; i++)
      if (!nn_label_name_valid(s->lab[i].name, strlen(s->lab[i].name)))
        return ctx_fail(c, NN_EINVAL, "invalid metric name or label names: label \"%s\"",
                        s->lab[i].name);
  } else {
    n = nn_labels_canonicalize(s->lab, n);
  }
  const char *name = nn_labels_get(s->lab, n, "__name__");
  if (!name || !nn_metric_name_valid(name, strlen(name)))
    return ctx_fail(c, NN_EINVAL, "__name__ label is missing or invalid after relabeling");
  if (cfg->label_limit && n > (size_t)cfg->label_limit)
    return ctx_fail(c, NN_ELIMIT,
                    "label_limit exceeded (metric: %s, number of labels: %zu, limit: %" PRId64 ")",
                    name, n, cfg->label_limit);
  for (size_t i = 0; i < n && (cfg->label_name_length_limit || cfg->label_value_length_limit);
       i++) {
    if (cfg->label_name_length_limit &&
        strlen(s->lab[i].name) > (size_t)cfg->label_name_length_limit)
      return ctx_fail(
          c, NN_ELIMIT,
          "label_name_length_limit exceeded (metric: %s, label name: %s, limit: %" PRId64 ")", name,
          s->lab[i].name, cfg->label_name_length_limit);
    if (cfg->label_value_length_limit &&
        strlen(s->lab[i].value) > (size_t)cfg->label_value_length_limit)
      return ctx_fail(c, NN_ELIMIT,
                      "label_value_length_limit exceeded (metric: %s, label name: %s, limit: "
                      "%" PRId64 ")",
                      name, s->lab[i].name, cfg->label_value_length_limit);
  }
  c->added++;
  if (cfg->sample_limit && c->added > (uint64_t)cfg->sample_limit) {
    c->limit_hit = true;
    return 0;
  }
  bool added;
  struct nn__scrape_series *e = cache_get(s, t, s->lab, n, &added);
  if (!e)
    return ctx_fail(c, NN_ENOMEM, "out of memory");
  if (added)
    c->series_added++;
  uint64_t h0;
  uint32_t check;
  raw_hash(sm->series, sm->series_len, c->fmt, &h0, &check);
  if (!e->has_raw && !raw_find(&t->raw, h0) && raw_add(&t->raw, h0, (uintptr_t)e)) {
    e->check = check;
    e->has_raw = true;
  }
  return take_sample(c, e, sm);
}

/* The fast path: a line whose series text this target has produced before is mapped to its
 * series (or known to be dropped) without parsing, relabeling or encoding its labels. The
 * same counters and checks apply as in on_sample. */
static int on_series(void *ud, const struct nn_expfmt_sample *sm)
{
  struct sctx *c = ud;
  struct nn__scrape_target *t = c->t;
  const struct nn_scrape_job_config *cfg = t->job->cfg;
  uint64_t h0;
  uint32_t check;
  raw_hash(sm->series, sm->series_len, c->fmt, &h0, &check);
  struct nn__scrape_raw *x = raw_find(&t->raw, h0);
  if (!x || !raw_match(x, check))
    return NN_EXPFMT_PARSE_LABELS;
  c->total++;
  if (c->limit_hit)
    return 0;
  if (!RAW_IS_SERIES(x->v)) {
    x->v = RAW_DROPPED(check, t->iter);
    return 0;
  }
  c->added++;
  if (cfg->sample_limit && c->added > (uint64_t)cfg->sample_limit) {
    c->limit_hit = true;
    return 0;
  }
  return take_sample(c, RAW_SERIES(x->v), sm);
}

static int take_sample(struct sctx *c, struct nn__scrape_series *e,
                       const struct nn_expfmt_sample *sm)
{
  struct nn__scrape_target *t = c->t;
  const struct nn_scrape_job_config *cfg = t->job->cfg;
  int rc;
  if (c->partial) {
    if (e->pushed) {
      c->dups++;
      return 0;
    }
    e->pushed = true;
  } else if (e->seen == t->iter) {
    c->dups++; /* Prometheus: "duplicate sample for timestamp", the first one wins */
    return 0;
  } else {
    e->seen = t->iter;
  }
  int64_t ts = cfg->honor_timestamps && sm->has_ts ? sm->ts_ms : c->ts;
  if ((rc = batch_push(c->s, e, ts, sm->value)) < 0)
    return ctx_fail(c, rc, "out of memory");
  return 0;
}

static int on_meta(void *ud, const struct nn_expfmt_meta *m)
{
  struct sctx *c = ud;
  struct nn_scrape *s = c->s;
  struct nn_scrape_meta *x = NULL;
  if (s->nmeta && strcmp(s->meta[s->nmeta - 1].family, m->family) == 0) {
    x = &s->meta[s->nmeta - 1];
  } else {
    if (s->nmeta == s->meta_cap) {
      size_t cap = s->meta_cap ? s->meta_cap * 2 : 64;
      struct nn_scrape_meta *nm = realloc(s->meta, cap * sizeof(*nm));
      if (!nm)
        return 0; /* metadata is best effort */
      s->meta = nm;
      s->meta_cap = cap;
    }
    char *fam = nn_pool_strndup(&s->meta_pool, m->family, strlen(m->family));
    if (!fam)
      return 0;
    x = &s->meta[s->nmeta++];
    *x = (struct nn_scrape_meta){.family = fam, .type = NN_EXPFMT_UNKNOWN, .help = "", .unit = ""};
  }
  if (m->kind == NN_EXPFMT_META_TYPE) {
    x->type = m->type;
  } else {
    char *txt = nn_pool_strndup(&s->meta_pool, m->text, m->text_len);
    if (txt && m->kind == NN_EXPFMT_META_HELP)
      x->help = txt;
    else if (txt)
      x->unit = txt;
  }
  return 0;
}

/* ---- finishing a scrape ---- */

static void update_health(struct nn__scrape_target *t, int health)
{
  struct nn__scrape_job *j = t->job;
  struct nn_scrape_stats *st = &j->s->stats;
  if (t->health == health)
    return;
  uint64_t *from = t->health < 0 ? &st->targets_unknown
                   : t->health   ? &st->targets_up
                                 : &st->targets_down;
  uint64_t *to = health < 0 ? &st->targets_unknown : health ? &st->targets_up : &st->targets_down;
  struct nn_metric *mf = t->health < 0 ? j->m_unknown : t->health ? j->m_up : j->m_down;
  struct nn_metric *mt = health < 0 ? j->m_unknown : health ? j->m_up : j->m_down;
  if (*from)
    (*from)--;
  (*to)++;
  if (mf)
    nn_metric_add(mf, -1);
  if (mt)
    nn_metric_add(mt, 1);
  t->health = health;
}

/* Skips one length-delimited field. */
static const uint8_t *skip_field(const uint8_t *p)
{
  size_t len;
  p = read_len(p + 1, &len);
  return p + len;
}

/* Removes cache entries not kept; with stale, live ones get a stale marker first. The
 * entries are freed only after the batch went out, since the markers point at them. */
static void sweep(struct nn__scrape_target *t, bool keep_seen, bool include_report, int64_t ts,
                  size_t *nout, struct nn__scrape_series **dead)
{
  struct nn_scrape *s = t->job->s;
  struct nn__scrape_cache *c = &t->cache;
  for (size_t i = 0; i < c->nbuckets; i++) {
    struct nn__scrape_series **pp = &c->buckets[i];
    while (*pp) {
      struct nn__scrape_series *e = *pp;
      bool keep = (e->report && !include_report) || (keep_seen && e->seen == t->iter);
      if (keep) {
        if (!e->report)
          e->live = true;
        pp = &e->next;
        continue;
      }
      if (e->live) {
        s->out[*nout] = sample_of(e, ts, stale_nan());
        (*nout)++;
        s->stats.stale_markers++;
      }
      *pp = e->next;
      c->n--;
      e->dead = true;
      e->next = *dead;
      *dead = e;
    }
  }
}

/* Decodes every sample's labels for a sink that asked for them (strings in label_pool). */
static int decode_labels(struct nn_scrape *s, const struct nn_scrape_batch *b)
{
  for (size_t i = 0; i < b->nsamples; i++) {
    struct nn_scrape_sample *o = &s->out[i];
    uint8_t *buf = nn_pool_alloc(&s->label_pool, o->rw_labels_len + 1);
    if (!buf)
      return NN_ENOMEM;
    nn_scrape_rw_labels(b, o, buf);
    const uint8_t *p = buf, *end = buf + o->rw_labels_len;
    size_t n = 0;
    for (const uint8_t *q = p; q < end; n++)
      q = skip_field(q);
    struct nn_label *l = nn_pool_alloc(&s->label_pool, (n ? n : 1) * sizeof(*l));
    if (!l)
      return NN_ENOMEM;
    for (size_t k = 0; k < n; k++) {
      const uint8_t *f = p + 1, *str[2];
      size_t len[2];
      f = read_len(f, &len[0]); /* the Label message */
      p = f + len[0];
      for (int j = 0; j < 2; j++) {
        f = read_len(f + 1, &len[j]);
        str[j] = f;
        f += len[j];
      }
      l[k].name = nn_pool_strndup(&s->label_pool, (const char *)str[0], len[0]);
      l[k].value = nn_pool_strndup(&s->label_pool, (const char *)str[1], len[1]);
      if (!l[k].name || !l[k].value)
        return NN_ENOMEM;
    }
    o->labels = l;
    o->nlabels = (uint32_t)n;
  }
  return 0;
}

static void emit(struct nn__scrape_target *t, size_t nout, int64_t ts, bool up)
{
  struct nn_scrape *s = t->job->s;
  struct nn_scrape_batch b = {
      .job = t->job->cfg->job_name,
      .instance = t->instance,
      .samples = s->out,
      .nsamples = nout,
      .meta = s->meta,
      .nmeta = s->nmeta,
      .scrape_time_ms = ts,
      .up = up,
      .target = t,
  };
  if (s->sink.labels && decode_labels(s, &b) < 0) {
    NN_LOG_RL(NN_LOG_ERROR, "scrape", "out of memory decoding labels of a scrape of %s", t->url);
    nn_pool_clear(&s->label_pool);
    return;
  }
  s->stats.samples_emitted += nout;
  if (nout && s->sink.on_batch)
    s->sink.on_batch(s->sink.ud, &b);
  nn_pool_clear(&s->label_pool);
}

static void free_dead(struct nn__scrape_series *dead)
{
  while (dead) {
    struct nn__scrape_series *next = dead->next;
    free(dead);
    dead = next;
  }
}

static void finish(struct sctx *c, bool ok, double duration_s)
{
  struct nn__scrape_target *t = c->t;
  struct nn_scrape *s = c->s;
  struct nn__scrape_job *j = t->job;
  struct nn__scrape_series *dead = NULL;
  size_t nout = 0;

  /* The batch holds distinct series of the cache, and the stale markers are for the other
   * ones: cache.n (up & co. included) is room for both. */
  if (ensure_out(s, REPORT_N + t->cache.n) < 0) {
    snprintf(c->err, sizeof(c->err), "out of memory emitting the scrape");
    ok = false;
    goto out;
  }
  if (ok)
    nout = s->batch_n;
  else
    s->nmeta = 0;
  double vals[REPORT_N] = {ok ? 1 : 0, duration_s, (double)c->total, (double)c->added,
                           (double)c->series_added};
  for (int i = 0; i < REPORT_N; i++) {
    struct nn__scrape_series *e = t->report[i];
    if (!e)
      continue;
    s->out[nout++] = sample_of(e, c->ts, vals[i]);
    e->live = true;
  }
  sweep(t, ok, false, c->ts, &nout, &dead);
  emit(t, nout, c->ts, ok);
out:
  if (!ok)
    raw_clear(&t->raw); /* every series but up & co. was swept */
  else
    raw_prune(t, dead != NULL);
  free_dead(dead);
  s->batch_n = 0;
  s->nmeta = 0;
  nn_pool_clear(&s->meta_pool);

  s->stats.scrapes++;
  s->stats.samples_scraped += c->total;
  if (j->m_scrapes)
    nn_metric_inc(j->m_scrapes);
  if (j->m_samples)
    nn_metric_add(j->m_samples, (double)c->total);
  if (s->m_duration)
    nn_metric_observe(s->m_duration, duration_s);
  if (!ok) {
    s->stats.scrape_failures++;
    if (j->m_failures)
      nn_metric_inc(j->m_failures);
    snprintf(t->last_error, sizeof(t->last_error), "%s", c->err);
    NN_LOG_RL(NN_LOG_WARN, "scrape", "scrape of %s (job %s) failed: %s", t->url, j->cfg->job_name,
              c->err);
  } else {
    t->last_error[0] = '\0';
  }
  update_health(t, ok ? 1 : 0);
}

static void maybe_free(struct nn__scrape_target *t)
{
  if (!t->removed || t->inflight || t->timer_open)
    return;
  struct nn_scrape *s = t->job->s;
  cache_free(&t->cache);
  raw_free(&t->raw);
  free(t->url);
  free(t->labels);
  free(t->tenc);
  free(t->toff);
  dict_free(&t->names);
  dict_free(&t->metric_names);
  free(t);
  nn__scrape_handle_closed(s);
}

/* A cold cache (first scrape, or after a failed one) is sized for the body's lines at once,
 * instead of doubling (and rehashing) a dozen times on the way. */
static void presize(struct nn__scrape_target *t, const char *body, size_t len)
{
  size_t lines = 0, nb = 64, cap = 64;
  for (const char *p = body, *e = body + len; p < e; p++) {
    if (!(p = memchr(p, '\n', (size_t)(e - p))))
      break;
    lines++;
  }
  while (4 * nb < lines + REPORT_N)
    nb *= 2;
  while (cap * 3 < lines * 4)
    cap *= 2;
  if (nb > t->cache.nbuckets)
    cache_rehash(&t->cache, nb); /* failure only costs speed */
  if (cap > t->raw.cap)
    raw_resize(&t->raw, cap);
}

static void on_response(const struct nn_http_response *r, void *ud)
{
  struct nn__scrape_target *t = ud;
  struct nn_scrape *s = t->job->s;
  struct sctx c = {.t = t, .s = s, .ts = t->start_wall_ms};
  t->inflight = false;
  if (t->removed || s->stopped) {
    maybe_free(t);
    return;
  }
  double dur = (double)(uv_hrtime() - t->start_mono_ns) / 1e9;
  t->iter++;
  bool ok = false;
  if (r->rc != 0) {
    snprintf(c.err, sizeof(c.err), "Get \"%s\": %s", t->url,
             r->rc == NN_ETIMEDOUT ? "context deadline exceeded"
             : r->rc == NN_ETOOBIG ? "body size limit exceeded"
                                   : r->error);
  } else if (r->status != 200) {
    snprintf(c.err, sizeof(c.err), "server returned HTTP status %d", r->status);
  } else {
    const char *ct = nn_http_response_header(r, "Content-Type", NULL);
    struct nn_expfmt_handler h = {on_sample, on_meta, on_series};
    c.fmt = nn_expfmt_format_from_content_type(ct);
    if (t->cache.n <= REPORT_N)
      presize(t, r->body, r->body_len);
    int rc = nn_expfmt_parse(s->parser, c.fmt, r->body, r->body_len, &h, &c);
    if (rc < 0 && !c.err[0])
      snprintf(c.err, sizeof(c.err), "%s",
               rc == NN_EINVAL || rc == NN_ELIMIT ? nn_expfmt_parser_error(s->parser)
                                                  : nn_strerror(rc));
    if (rc == 0 && c.limit_hit) {
      snprintf(c.err, sizeof(c.err), "sample limit exceeded (%" PRIu64 " > %" PRId64 ")", c.added,
               t->job->cfg->sample_limit);
      s->stats.sample_limit_hits++;
      if (t->job->m_limit_hits)
        nn_metric_inc(t->job->m_limit_hits);
    }
    ok = rc == 0 && !c.limit_hit;
  }
  finish(&c, ok, dur);
}

static void on_tick(uv_timer_t *timer)
{
  struct nn__scrape_target *t = timer->data;
  struct nn_scrape *s = t->job->s;
  char tmo[64];
  if (t->inflight || t->removed || s->stopped)
    return;
  snprintf(tmo, sizeof(tmo), "X-Prometheus-Scrape-Timeout-Seconds: %g",
           (double)t->timeout_ms / 1000.0);
  const char *headers[] = {"Accept: " NN_EXPFMT_ACCEPT, tmo};
  struct nn_http_request req = {
      .url = t->url,
      .headers = headers,
      .nheaders = 2,
      .timeout_ms = (uint32_t)t->timeout_ms,
      .connect_timeout_ms = (uint32_t)t->timeout_ms,
      .max_response_bytes = t->job->cfg->body_size_limit,
      .decompress = true,
  };
  t->start_wall_ms = nn__scrape_now_ms();
  if (t->start_wall_ms <= t->push_ms) /* after the samples pushed ahead of this scrape */
    t->start_wall_ms = t->push_ms + 1;
  t->start_mono_ns = uv_hrtime();
  int rc = nn_http_client_send(s->http, &req, on_response, t);
  if (rc < 0) {
    struct sctx c = {.t = t, .s = s, .ts = t->start_wall_ms};
    t->iter++;
    snprintf(c.err, sizeof(c.err), "cannot start request: %s", nn_strerror(rc));
    finish(&c, false, 0);
    return;
  }
  t->inflight = true;
}

static void make_report_series(struct nn__scrape_target *t)
{
  struct nn_scrape *s = t->job->s;
  for (int i = 0; i < REPORT_N; i++) {
    if (ensure_lab(s, t->nlabels + 1) < 0)
      return;
    memcpy(s->lab, t->labels, t->nlabels * sizeof(*s->lab));
    s->lab[t->nlabels] = (struct nn_label){"__name__", report_names[i]};
    size_t n = nn_labels_canonicalize(s->lab, t->nlabels + 1);
    bool added;
    t->report[i] = cache_get(s, t, s->lab, n, &added);
    if (t->report[i])
      t->report[i]->report = true;
  }
}

void nn__scrape_target_start(struct nn__scrape_target *t, uint64_t seed)
{
  struct nn_scrape *s = t->job->s;
  uint64_t interval = (uint64_t)t->interval_ms;
  int64_t now = nn__scrape_now_ms();
  make_report_series(t);
  t->health = -1;
  s->stats.targets_unknown++;
  if (t->job->m_unknown)
    nn_metric_add(t->job->m_unknown, 1);
  /* Prometheus's offset: the same target always scrapes at the same phase of the interval,
   * and targets spread evenly over it. */
  uint64_t base = interval - (uint64_t)now % interval;
  uint64_t next = base + (t->hash ^ seed) % interval;
  if (next > interval)
    next -= interval;
  uv_timer_init(s->loop, &t->timer);
  t->timer.data = t;
  t->timer_open = true;
  uv_timer_start(&t->timer, on_tick, next, interval);
}

static void on_timer_closed(uv_handle_t *h)
{
  struct nn__scrape_target *t = h->data;
  t->timer_open = false;
  maybe_free(t);
}

void nn__scrape_target_remove(struct nn__scrape_target *t, bool stale)
{
  struct nn_scrape *s = t->job->s;
  struct nn__scrape_series *dead = NULL;
  size_t nout = 0;
  if (stale && ensure_out(s, t->cache.n) == 0) {
    int64_t now = nn__scrape_now_ms();
    s->nmeta = 0;
    sweep(t, false, true, now, &nout, &dead);
    emit(t, nout, now, false);
    raw_clear(&t->raw);
    free_dead(dead);
  }
  struct nn_scrape_stats *st = &s->stats;
  uint64_t *cnt = t->health < 0 ? &st->targets_unknown
                  : t->health   ? &st->targets_up
                                : &st->targets_down;
  struct nn_metric *m = t->health < 0 ? t->job->m_unknown
                        : t->health   ? t->job->m_up
                                      : t->job->m_down;
  if (*cnt)
    (*cnt)--;
  if (m)
    nn_metric_add(m, -1);
  t->removed = true;
  s->closing++;
  if (t->timer_open) {
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
  } else {
    maybe_free(t);
  }
}

/* ---- samples pushed ahead of a scrape ---- */

static int push_one(struct nn__scrape_target *t, const char *text, size_t len)
{
  struct nn_scrape *s = t->job->s;
  int64_t ts = nn__scrape_now_ms();
  if (ts <= t->start_wall_ms)
    ts = t->start_wall_ms + 1;
  if (ts <= t->push_ms)
    ts = t->push_ms + 1;
  struct sctx c = {.t = t, .s = s, .ts = ts, .fmt = NN_EXPFMT_TEXT, .partial = true};
  struct nn_expfmt_handler h = {on_sample, on_meta, on_series};
  int rc = nn_expfmt_parse(s->parser, c.fmt, text, len, &h, &c);
  if (rc == 0 && c.limit_hit)
    rc = NN_ELIMIT;
  size_t n = s->batch_n;
  if (rc == 0 && ensure_out(s, n) == 0)
    emit(t, n, ts, true);
  for (size_t i = 0; i < n; i++) {
    struct nn__scrape_series *e = (struct nn__scrape_series *)(uintptr_t)s->out[i].series;
    e->pushed = false;
    /* A pushed series is live: the scrape that no longer finds it ends it. */
    if (rc == 0)
      e->live = true;
  }
  s->batch_n = 0;
  s->nmeta = 0;
  nn_pool_clear(&s->meta_pool);
  if (rc < 0) {
    NN_LOG_RL(NN_LOG_WARN, "scrape", "samples pushed for %s (job %s) not sent: %s", t->url,
              t->job->cfg->job_name,
              c.err[0]          ? c.err
              : rc == NN_EINVAL ? nn_expfmt_parser_error(s->parser)
                                : nn_strerror(rc));
    return NN_EINVAL;
  }
  t->push_ms = ts;
  return 0;
}

int nn_scrape_push_self(struct nn_scrape *s, const char *text, size_t len)
{
  if (!s || s->stopped)
    return 0;
  for (size_t i = 0; i < s->njobs; i++)
    for (struct nn__scrape_target *t = s->jobs[i].targets; t; t = t->next)
      if (t->self && !t->removed && t->inflight)
        return NN_EAGAIN;
  int fed = 0, err = 0;
  for (size_t i = 0; i < s->njobs; i++) {
    for (struct nn__scrape_target *t = s->jobs[i].targets; t; t = t->next) {
      /* A target that is down had its series ended; its next good scrape restarts them. */
      if (!t->self || t->removed || t->health == 0)
        continue;
      if (push_one(t, text, len) < 0)
        err = NN_EINVAL;
      else
        fed++;
    }
  }
  return fed || !err ? fed : err;
}
