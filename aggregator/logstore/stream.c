/* SPDX-License-Identifier: Apache-2.0 */
/* The store object, tenants, streams and their label index, idempotency keys, and the
 * append path shared by pushes and WAL replay. Streams are keyed per tenant by their
 * canonical label text; the index maps name -> value -> sorted stream ids. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"
#include "common/log.h"
#include "common/pool.h"

#define MOD "logstore"

void nn_logstore_config_defaults(struct nn_logstore_config *c)
{
  memset(c, 0, sizeof(*c));
  c->max_line_bytes = 256 * 1024;
  c->max_streams_per_tenant = 10000;
  c->chunk_target_bytes = 256 * 1024;
  c->max_chunk_age_ns = 2 * 3600 * INT64_C(1000000000);
  c->chunk_idle_ns = 30 * 60 * INT64_C(1000000000);
  c->max_head_bytes = 64u << 20;
  c->retention_ns = 7 * 24 * 3600 * INT64_C(1000000000);
  c->retention_bytes = UINT64_C(10) << 30;
  c->chunk_period_ns = 24 * 3600 * INT64_C(1000000000);
  c->wal_segment_bytes = 16u << 20;
  c->sync_interval_ns = 100 * INT64_C(1000000);
  c->sync_bytes = 1u << 20;
  c->idempotency_keys = 4096;
  c->query_max_bytes = 64u << 20;
  c->dedup_cache_bytes = 16u << 20;
  c->zstd_level = 3;
}

void nn__logstore_fail(struct nn_logstore_append_result *res, int code, const char *fmt, ...)
{
  if (res->first_error)
    return;
  res->first_error = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->error, sizeof(res->error), fmt, ap);
  va_end(ap);
}

static int64_t wall_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- tenants ---- */

/* Loki's tenant id rules: 1..128 bytes of [a-zA-Z0-9!._*'()-]. */
static bool tenant_valid(const char *t)
{
  size_t n = strlen(t);
  if (n == 0 || n > LS_MAX_TENANT_BYTES || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = t[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          strchr("!._*'()-", c)))
      return false;
  }
  return true;
}

struct nn__ls_tenant *nn__logstore_tenant(struct nn_logstore *s, const char *name, bool create)
{
  if (!name || !*name)
    name = NN_LOGSTORE_DEFAULT_TENANT;
  struct nn__ls_tenant *t = nn__logstore_map_get(&s->tenants, name, strlen(name));
  if (t || !create)
    return t;
  t = calloc(1, sizeof(*t));
  if (!t || !(t->name = strdup(name)) ||
      nn__logstore_map_put(&s->tenants, t->name, strlen(t->name), t) < 0) {
    if (t)
      free(t->name);
    free(t);
    return NULL;
  }
  return t;
}

static void tenant_free(struct nn__ls_tenant *t)
{
  nn__logstore_map_fini(&t->streams);
  for (size_t i = 0; i < t->index.cap; i++) {
    struct nn__ls_lname *ln = t->index.slots[i].val;
    if (!t->index.slots[i].key)
      continue;
    for (size_t j = 0; j < ln->values.cap; j++) {
      struct nn__ls_postings *p = ln->values.slots[j].val;
      if (!ln->values.slots[j].key)
        continue;
      free(p->value);
      free(p->ids);
      free(p);
    }
    nn__logstore_map_fini(&ln->values);
    free(ln->name);
    free(ln);
  }
  nn__logstore_map_fini(&t->index);
  free(t->name);
  free(t);
}

/* ---- label index ---- */

static int index_add(struct nn__ls_tenant *t, const char *name, const char *value, uint32_t id)
{
  struct nn__ls_lname *ln = nn__logstore_map_get(&t->index, name, strlen(name));
  if (!ln) {
    ln = calloc(1, sizeof(*ln));
    if (!ln || !(ln->name = strdup(name)) ||
        nn__logstore_map_put(&t->index, ln->name, strlen(ln->name), ln) < 0) {
      if (ln)
        free(ln->name);
      free(ln);
      return NN_ENOMEM;
    }
  }
  struct nn__ls_postings *p = nn__logstore_map_get(&ln->values, value, strlen(value));
  if (!p) {
    p = calloc(1, sizeof(*p));
    if (!p || !(p->value = strdup(value)) ||
        nn__logstore_map_put(&ln->values, p->value, strlen(p->value), p) < 0) {
      if (p)
        free(p->value);
      free(p);
      return NN_ENOMEM;
    }
  }
  if (p->n == p->cap) {
    size_t nc = p->cap ? p->cap * 2 : 4;
    uint32_t *ni = realloc(p->ids, nc * sizeof(*ni));
    if (!ni)
      return NN_ENOMEM;
    p->ids = ni;
    p->cap = nc;
  }
  /* Ids mostly grow, so the insertion point is almost always the end. */
  size_t k = p->n;
  while (k > 0 && p->ids[k - 1] > id)
    k--;
  memmove(p->ids + k + 1, p->ids + k, (p->n - k) * sizeof(*p->ids));
  p->ids[k] = id;
  p->n++;
  return 0;
}

static void index_del(struct nn__ls_tenant *t, const char *name, const char *value, uint32_t id)
{
  struct nn__ls_lname *ln = nn__logstore_map_get(&t->index, name, strlen(name));
  if (!ln)
    return;
  struct nn__ls_postings *p = nn__logstore_map_get(&ln->values, value, strlen(value));
  if (!p)
    return;
  for (size_t k = 0; k < p->n; k++) {
    if (p->ids[k] == id) {
      memmove(p->ids + k, p->ids + k + 1, (p->n - k - 1) * sizeof(*p->ids));
      p->n--;
      break;
    }
  }
  if (p->n == 0) {
    nn__logstore_map_del(&ln->values, p->value, strlen(p->value));
    free(p->value);
    free(p->ids);
    free(p);
  }
  if (ln->values.n == 0) {
    nn__logstore_map_del(&t->index, ln->name, strlen(ln->name));
    nn__logstore_map_fini(&ln->values);
    free(ln->name);
    free(ln);
  }
}

/* ---- streams ---- */

static void stream_free(struct nn__ls_stream *st)
{
  if (!st)
    return;
  for (size_t i = 0; i < st->nchunks; i++)
    free(st->chunks[i].data);
  free(st->chunks);
  free(st->head.e);
  free(st->head.buf);
  free(st->labels);
  free(st->key);
  free(st);
}

static int alloc_id(struct nn_logstore *s, uint32_t *id)
{
  if (s->nfree) {
    *id = s->free_ids[--s->nfree];
    return 0;
  }
  if (s->nids == UINT32_MAX)
    return NN_ELIMIT;
  if (s->nids == s->cids) {
    size_t nc = s->cids ? s->cids * 2 : 64;
    struct nn__ls_stream **nb = realloc(s->by_id, nc * sizeof(*nb));
    if (!nb)
      return NN_ENOMEM;
    s->by_id = nb;
    s->cids = nc;
  }
  s->by_id[s->nids] = NULL;
  *id = (uint32_t)s->nids++;
  return 0;
}

static int free_id(struct nn_logstore *s, uint32_t id)
{
  s->by_id[id] = NULL;
  if (s->nfree == s->cfree) {
    size_t nc = s->cfree ? s->cfree * 2 : 64;
    uint32_t *nf = realloc(s->free_ids, nc * sizeof(*nf));
    if (!nf)
      return NN_ENOMEM; /* the id is leaked, not reused: harmless */
    s->free_ids = nf;
    s->cfree = nc;
  }
  s->free_ids[s->nfree++] = id;
  return 0;
}

static struct nn__ls_stream *stream_new(const struct nn_label *v, size_t n, const char *key,
                                        size_t keylen)
{
  struct nn__ls_stream *st = calloc(1, sizeof(*st));
  if (!st)
    return NULL;
  size_t strbytes = 0;
  for (size_t i = 0; i < n; i++)
    strbytes += strlen(v[i].name) + strlen(v[i].value) + 2;
  st->labels = malloc(n * sizeof(*st->labels) + strbytes);
  st->key = malloc(keylen + 1);
  if (!st->labels || !st->key) {
    stream_free(st);
    return NULL;
  }
  char *p = (char *)(st->labels + n);
  for (size_t i = 0; i < n; i++) {
    size_t a = strlen(v[i].name) + 1, b = strlen(v[i].value) + 1;
    memcpy(p, v[i].name, a);
    st->labels[i].name = p;
    p += a;
    memcpy(p, v[i].value, b);
    st->labels[i].value = p;
    p += b;
  }
  st->nlabels = n;
  memcpy(st->key, key, keylen);
  st->key[keylen] = '\0';
  st->keylen = keylen;
  st->min_t = INT64_MAX;
  st->max_t = INT64_MIN;
  return st;
}

int nn__logstore_stream_get(struct nn_logstore *s, struct nn__ls_tenant *t, const char *ltext,
                            size_t llen, const struct nn_label *lset, size_t nlset, bool create,
                            bool enforce_limit, struct nn__ls_stream **out, char *err,
                            size_t errlen)
{
  struct nn_pool pool;
  struct nn_buf key;
  struct nn_label *v = (struct nn_label *)lset;
  size_t n = nlset;
  struct nn__ls_stream *st = NULL;
  int rc = 0;
  nn_pool_init(&pool, 4 * LS_MAX_LABELS_BYTES + 65536);
  nn_buf_init(&key, 2 * LS_MAX_LABELS_BYTES);
  *out = NULL;
  if (!lset) {
    if (llen > LS_MAX_LABELS_BYTES) {
      snprintf(err, errlen, "stream labels are %zu bytes, more than the %u allowed", llen,
               LS_MAX_LABELS_BYTES);
      rc = NN_EINVAL;
      goto out;
    }
    if ((rc = nn_labels_parse(ltext, llen, &pool, &v, &n, err, errlen)) < 0)
      goto out;
  }
  if (n == 0) {
    snprintf(err, errlen, "stream has no labels: at least one label pair is required");
    rc = NN_EINVAL;
    goto out;
  }
  if ((rc = nn_labels_validate(v, n, err, errlen)) < 0)
    goto out;
  if ((rc = nn_labels_format(v, n, &key)) < 0) {
    snprintf(err, errlen, "stream labels too long");
    rc = NN_EINVAL;
    goto out;
  }
  st = nn__logstore_map_get(&t->streams, key.data, key.len);
  if (st) {
    *out = st;
    st = NULL;
    goto out;
  }
  if (!create) {
    rc = NN_ENOTFOUND;
    goto out;
  }
  if (enforce_limit && t->nstreams >= s->cfg.max_streams_per_tenant) {
    snprintf(err, errlen,
             "stream %s refused: tenant '%s' reached its limit of %zu streams "
             "(reduce label cardinality or raise max_streams_per_tenant)",
             key.data, t->name, s->cfg.max_streams_per_tenant);
    rc = NN_ELIMIT;
    goto out;
  }
  if (!(st = stream_new(v, n, key.data, key.len)) || (rc = alloc_id(s, &st->id)) < 0) {
    rc = rc ? rc : NN_ENOMEM;
    goto out;
  }
  st->tenant = t;
  for (size_t i = 0; i < n; i++) {
    if ((rc = index_add(t, st->labels[i].name, st->labels[i].value, st->id)) < 0) {
      for (size_t j = 0; j < i; j++)
        index_del(t, st->labels[j].name, st->labels[j].value, st->id);
      free_id(s, st->id);
      goto out;
    }
  }
  if ((rc = nn__logstore_map_put(&t->streams, st->key, st->keylen, st)) < 0) {
    for (size_t j = 0; j < n; j++)
      index_del(t, st->labels[j].name, st->labels[j].value, st->id);
    free_id(s, st->id);
    goto out;
  }
  s->by_id[st->id] = st;
  t->nstreams++;
  s->st.streams++;
  *out = st;
  st = NULL;
out:
  stream_free(st);
  nn_buf_fini(&key);
  nn_pool_fini(&pool);
  return rc;
}

void nn__logstore_stream_remove(struct nn_logstore *s, struct nn__ls_stream *st)
{
  struct nn__ls_tenant *t = st->tenant;
  for (size_t i = 0; i < st->nlabels; i++)
    index_del(t, st->labels[i].name, st->labels[i].value, st->id);
  nn__logstore_map_del(&t->streams, st->key, st->keylen);
  t->nstreams--;
  s->st.streams--;
  s->st.head_bytes -= st->head.blen;
  free_id(s, st->id);
  while (st->nchunks)
    nn__logstore_chunk_drop(s, st, st->nchunks - 1);
  stream_free(st);
}

/* ---- idempotency keys ---- */

static void key_unlink(struct nn_logstore *s, struct nn__ls_key *k)
{
  if (k->prev)
    k->prev->next = k->next;
  else
    s->key_old = k->next;
  if (k->next)
    k->next->prev = k->prev;
  else
    s->key_new = k->prev;
  k->prev = k->next = NULL;
}

static void key_push_new(struct nn_logstore *s, struct nn__ls_key *k)
{
  k->prev = s->key_new;
  k->next = NULL;
  if (s->key_new)
    s->key_new->next = k;
  else
    s->key_old = k;
  s->key_new = k;
}

static int key_build(const char *tenant, const char *key, size_t klen, char *out, size_t *outlen)
{
  size_t tl = strlen(tenant);
  if (tl > LS_MAX_TENANT_BYTES || klen > LS_MAX_KEY_BYTES)
    return NN_EINVAL;
  memcpy(out, tenant, tl);
  out[tl] = '\0';
  memcpy(out + tl + 1, key, klen);
  *outlen = tl + 1 + klen;
  return 0;
}

static struct nn__ls_key *key_find(struct nn_logstore *s, const char *tenant, const char *key,
                                   size_t klen)
{
  char kb[LS_MAX_TENANT_BYTES + LS_MAX_KEY_BYTES + 2];
  size_t kl;
  if (key_build(tenant, key, klen, kb, &kl) < 0)
    return NULL;
  return nn__logstore_map_get(&s->keys, kb, kl);
}

int nn__logstore_key_add(struct nn_logstore *s, const char *tenant, const char *key, size_t klen,
                         uint64_t seq)
{
  char kb[LS_MAX_TENANT_BYTES + LS_MAX_KEY_BYTES + 2];
  size_t kl;
  int rc = key_build(tenant, key, klen, kb, &kl);
  if (rc < 0 || s->cfg.idempotency_keys == 0)
    return rc;
  struct nn__ls_key *k = nn__logstore_map_get(&s->keys, kb, kl);
  if (k) {
    key_unlink(s, k);
    key_push_new(s, k);
    k->seq = seq;
    return 0;
  }
  k = calloc(1, sizeof(*k));
  if (!k || !(k->k = malloc(kl))) {
    free(k);
    return NN_ENOMEM;
  }
  memcpy(k->k, kb, kl);
  k->klen = kl;
  k->seq = seq;
  if ((rc = nn__logstore_map_put(&s->keys, k->k, k->klen, k)) < 0) {
    free(k->k);
    free(k);
    return rc;
  }
  key_push_new(s, k);
  s->nkeys++;
  while (s->nkeys > s->cfg.idempotency_keys) {
    struct nn__ls_key *old = s->key_old;
    key_unlink(s, old);
    nn__logstore_map_del(&s->keys, old->k, old->klen);
    free(old->k);
    free(old);
    s->nkeys--;
  }
  return 0;
}

static void keys_free(struct nn_logstore *s)
{
  for (struct nn__ls_key *k = s->key_old, *next; k; k = next) {
    next = k->next;
    free(k->k);
    free(k);
  }
  s->key_old = s->key_new = NULL;
  s->nkeys = 0;
  nn__logstore_map_fini(&s->keys);
}

/* ---- the append path ---- */

static int head_reserve(struct nn__ls_head *h, size_t bytes)
{
  if (h->n == h->cap) {
    size_t nc = h->cap ? h->cap * 2 : 64;
    struct nn__ls_hentry *ne = realloc(h->e, nc * sizeof(*ne));
    if (!ne)
      return NN_ENOMEM;
    h->e = ne;
    h->cap = nc;
  }
  if (h->blen + bytes > h->bcap) {
    size_t nc = h->bcap ? h->bcap : 4096;
    while (nc < h->blen + bytes)
      nc *= 2;
    uint8_t *nb = realloc(h->buf, nc);
    if (!nb)
      return NN_ENOMEM;
    h->buf = nb;
    h->bcap = nc;
  }
  return 0;
}

/* First index whose ts >= ts. */
static size_t head_lower(const struct nn__ls_head *h, int64_t ts)
{
  size_t lo = 0, hi = h->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (h->e[mid].ts < ts)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int nn__logstore_apply(struct nn_logstore *s, struct nn__ls_stream *st, const struct nn__ls_ent *e,
                       uint64_t seq, bool replay, struct nn_logstore_append_result *res)
{
  if (replay && seq <= st->flushed_seq)
    return 0;
  if (!replay) {
    if (e->len > s->cfg.max_line_bytes) {
      res->rejected++;
      s->st.entries_rejected++;
      nn__logstore_fail(res, NN_ETOOBIG,
                        "line too long for stream %s: %zu bytes, the limit is %zu bytes", st->key,
                        e->len, s->cfg.max_line_bytes);
      return 0;
    }
    /* A head is cut only between batches, so one push must not give a stream more than
     * a chunk can hold (per entry, at most 20 bytes of varints are added when cut). */
    if (st->head.blen + 20 * (st->head.n + 1) + e->len + e->mlen > LS_MAX_CHUNK_RAW) {
      res->rejected++;
      s->st.entries_rejected++;
      nn__logstore_fail(res, NN_ELIMIT,
                        "too much data for stream %s in one push: at most %u bytes per stream "
                        "and push; split the push",
                        st->key, LS_MAX_CHUNK_RAW);
      return 0;
    }
    /* Loki (since 2.4, unordered_writes) accepts entries older than the stream's newest
     * as long as they are within max_chunk_age/2 of it. */
    int64_t window = s->cfg.max_chunk_age_ns / 2;
    if (st->max_t != INT64_MIN && e->ts < st->max_t - window) {
      res->rejected++;
      s->st.entries_rejected++;
      nn__logstore_fail(res, NN_EOUTOFORDER,
                        "entry too far behind for stream %s: timestamp %lld is older than the "
                        "oldest acceptable timestamp %lld",
                        st->key, (long long)e->ts, (long long)(st->max_t - window));
      return 0;
    }
  }
  struct nn__ls_head *h = &st->head;
  size_t pos = head_lower(h, e->ts);
  for (size_t k = pos; k < h->n && h->e[k].ts == e->ts; k++) {
    if (h->e[k].len == e->len && memcmp(h->buf + h->e[k].off, e->line, e->len) == 0) {
      res->duplicates++;
      s->st.duplicates_dropped++;
      return 0;
    }
  }
  /* Older than the newest chunk: a re-sent entry may have been cut already (an agent that
   * restarts re-batches what it re-reads). In-order pushes skip this on one comparison.
   * Replay runs the same check: a replayed batch is checked only against chunks cut before
   * it was first applied (later ones hold its seq, so it is not replayed), and dropped
   * duplicates were never written to the WAL, so none comes back. */
  if (st->nchunks && e->ts <= st->chunks[st->nchunks - 1].pmax_t &&
      nn__logstore_dedup_find(s, st, e) == 1) {
    res->duplicates++;
    s->st.duplicates_dropped++;
    return 0;
  }
  /* Entries with equal timestamps keep arrival order. */
  while (pos < h->n && h->e[pos].ts == e->ts)
    pos++;
  int rc = head_reserve(h, e->len + e->mlen);
  if (rc < 0)
    return rc;
  if (h->n == 0) {
    h->created_ns = wall_ns();
    h->first_seq = seq;
  }
  h->last_ns = wall_ns();
  memmove(h->e + pos + 1, h->e + pos, (h->n - pos) * sizeof(*h->e));
  h->e[pos] = (struct nn__ls_hentry){e->ts, (uint32_t)h->blen, (uint32_t)e->len, (uint32_t)e->mlen};
  memcpy(h->buf + h->blen, e->line, e->len);
  memcpy(h->buf + h->blen + e->len, e->meta, e->mlen);
  h->blen += e->len + e->mlen;
  h->n++;
  s->st.head_bytes += e->len + e->mlen;
  if (e->ts < st->min_t)
    st->min_t = e->ts;
  if (e->ts > st->max_t)
    st->max_t = e->ts;
  if (seq > st->last_seq)
    st->last_seq = seq;
  res->accepted++;
  s->st.entries_appended++;
  s->st.bytes_appended += e->len;
  return 1;
}

bool nn__logstore_meta_valid(const uint8_t *p, size_t n)
{
  size_t i = 0;
  uint64_t cnt;
  if (!ls_get_uvarint(p, n, &i, &cnt) || cnt > LS_MAX_META_PAIRS)
    return false;
  for (uint64_t k = 0; k < cnt * 2; k++) {
    const uint8_t *b;
    size_t l;
    if (!ls_get_bytes(p, n, &i, &b, &l) || memchr(b, '\0', l))
      return false;
  }
  return i == n;
}

static int meta_encode(struct nn_buf *b, const struct nn_logstore_entry *e, char *err,
                       size_t errlen)
{
  nn_buf_reset(b);
  if (e->nmeta > LS_MAX_META_PAIRS) {
    snprintf(err, errlen, "%zu structured metadata pairs, at most %d allowed", e->nmeta,
             LS_MAX_META_PAIRS);
    return NN_EINVAL;
  }
  int rc = ls_put_uvarint(b, e->nmeta);
  for (size_t i = 0; rc == 0 && i < e->nmeta; i++) {
    const char *nv[2] = {e->meta[i].name, e->meta[i].value};
    if (!nv[0] || !nv[1] || !*nv[0]) {
      snprintf(err, errlen, "structured metadata pair %zu has an empty name", i);
      return NN_EINVAL;
    }
    for (int k = 0; rc == 0 && k < 2; k++) {
      size_t l = strlen(nv[k]);
      rc = ls_put_uvarint(b, l);
      if (rc == 0)
        rc = nn_buf_append(b, nv[k], l);
    }
  }
  if (rc == 0 && b->len == 0)
    rc = nn_buf_appendc(b, 0);
  return rc;
}

/* Appends one accepted entry to the WAL record under construction. */
static int rec_put_entry(struct nn_buf *r, const struct nn__ls_ent *e)
{
  int rc = ls_put_varint(r, e->ts);
  if (rc == 0)
    rc = ls_put_uvarint(r, e->len);
  if (rc == 0)
    rc = nn_buf_append(r, e->line, e->len);
  if (rc == 0)
    rc = ls_put_uvarint(r, e->mlen);
  if (rc == 0)
    rc = nn_buf_append(r, e->meta, e->mlen);
  return rc;
}

static int rec_put_str(struct nn_buf *r, const char *p, size_t n)
{
  int rc = ls_put_uvarint(r, n);
  return rc ? rc : nn_buf_append(r, p, n);
}

/* After a batch: cut heads that reached the target, then keep total head memory under
 * its cap by cutting the largest heads. Done per batch, never mid-batch, so a chunk's
 * max_seq covers every entry that record gave its stream. */
static int cut_after_batch(struct nn_logstore *s, struct nn__ls_stream **touched, size_t n)
{
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++)
    if (touched[i]->head.blen >= s->cfg.chunk_target_bytes)
      rc = nn__logstore_cut(s, touched[i]);
  while (rc == 0 && s->st.head_bytes > s->cfg.max_head_bytes) {
    struct nn__ls_stream *big = NULL;
    for (size_t i = 0; i < s->nids; i++)
      if (s->by_id[i] && (!big || s->by_id[i]->head.blen > big->head.blen))
        big = s->by_id[i];
    if (!big || big->head.blen == 0)
      break;
    rc = nn__logstore_cut(s, big);
  }
  return rc;
}

int nn__logstore_replay_batch(struct nn_logstore *s, const uint8_t *p, size_t n)
{
  size_t i = 8;
  const uint8_t *tn, *key;
  size_t tl, kl;
  char tenant[LS_MAX_TENANT_BYTES + 1], err[256];
  struct nn_logstore_append_result res;
  struct nn__ls_stream **touched = NULL;
  size_t ntouched = 0, ctouched = 0;
  int rc = 0;
  if (n < 8)
    return NN_ECORRUPT;
  uint64_t seq = ls_get_u64(p);
  if (!ls_get_bytes(p, n, &i, &tn, &tl) || tl == 0 || tl > LS_MAX_TENANT_BYTES ||
      !ls_get_bytes(p, n, &i, &key, &kl) || kl > LS_MAX_KEY_BYTES)
    return NN_ECORRUPT;
  memcpy(tenant, tn, tl);
  tenant[tl] = '\0';
  if (!tenant_valid(tenant))
    return NN_ECORRUPT;
  if (seq >= s->wal.next_seq)
    s->wal.next_seq = seq + 1;
  nn__logstore_dedup_batch(s);
  if (kl && (rc = nn__logstore_key_add(s, tenant, (const char *)key, kl, seq)) < 0)
    return rc;
  struct nn__ls_tenant *t = nn__logstore_tenant(s, tenant, true);
  if (!t)
    return NN_ENOMEM;
  memset(&res, 0, sizeof(res));
  while (i < n) {
    const uint8_t *lt;
    size_t ll;
    uint64_t cnt;
    struct nn__ls_stream *st;
    if (!ls_get_bytes(p, n, &i, &lt, &ll) || !ls_get_uvarint(p, n, &i, &cnt) || cnt > n) {
      rc = NN_ECORRUPT;
      goto out;
    }
    err[0] = '\0';
    if ((rc = nn__logstore_stream_get(s, t, (const char *)lt, ll, NULL, 0, true, false, &st, err,
                                      sizeof(err))) < 0) {
      rc = rc == NN_ENOMEM ? rc : NN_ECORRUPT;
      goto out;
    }
    for (uint64_t k = 0; k < cnt; k++) {
      struct nn__ls_ent e;
      const uint8_t *line;
      if (!ls_get_varint(p, n, &i, &e.ts) || !ls_get_bytes(p, n, &i, &line, &e.len) ||
          !ls_get_bytes(p, n, &i, &e.meta, &e.mlen) || !nn__logstore_meta_valid(e.meta, e.mlen)) {
        rc = NN_ECORRUPT;
        goto out;
      }
      e.line = (const char *)line;
      if ((rc = nn__logstore_apply(s, st, &e, seq, true, &res)) < 0)
        goto out;
    }
    if (ntouched == ctouched) {
      size_t nc = ctouched ? ctouched * 2 : 8;
      struct nn__ls_stream **nt = realloc(touched, nc * sizeof(*nt));
      if (!nt) {
        rc = NN_ENOMEM;
        goto out;
      }
      touched = nt;
      ctouched = nc;
    }
    touched[ntouched++] = st;
  }
  rc = cut_after_batch(s, touched, ntouched);
out:
  free(touched);
  return rc;
}

int nn_logstore_append_batch(struct nn_logstore *s, const struct nn_logstore_batch *b,
                             struct nn_logstore_append_result *res, nn_logstore_done_cb cb,
                             void *ud)
{
  const char *tenant = b->tenant && *b->tenant ? b->tenant : NN_LOGSTORE_DEFAULT_TENANT;
  size_t klen = b->idem_key ? strlen(b->idem_key) : 0;
  struct nn__ls_stream **touched = NULL;
  size_t ntouched = 0;
  uint64_t pos = 0;
  char err[256];
  int rc = 0;
  memset(res, 0, sizeof(*res));
  pthread_mutex_lock(&s->wal.mu);
  rc = s->wal.error;
  pos = s->wal.written_pos;
  pthread_mutex_unlock(&s->wal.mu);
  if (rc < 0) {
    snprintf(res->error, sizeof(res->error), "log store WAL failed earlier: %s", nn_strerror(rc));
    return NN_EIO;
  }
  if (!tenant_valid(tenant)) {
    snprintf(res->error, sizeof(res->error),
             "invalid tenant id: 1 to %d characters of [a-zA-Z0-9!._*'()-] expected",
             LS_MAX_TENANT_BYTES);
    return NN_EINVAL;
  }
  if (klen > LS_MAX_KEY_BYTES) {
    snprintf(res->error, sizeof(res->error), "idempotency key longer than %d bytes",
             LS_MAX_KEY_BYTES);
    return NN_EINVAL;
  }
  if (klen) {
    struct nn__ls_key *k = key_find(s, tenant, b->idem_key, klen);
    if (k) {
      /* Touch it, and acknowledge once everything written so far (the original record
       * included) is durable. */
      nn__logstore_key_add(s, tenant, b->idem_key, klen, k->seq);
      res->known_key = true;
      s->st.idempotent_replays++;
      return nn__logstore_wal_wait(s, pos, cb, ud);
    }
  }
  struct nn__ls_tenant *t = nn__logstore_tenant(s, tenant, true);
  if (!t)
    return NN_ENOMEM;
  nn__logstore_dedup_batch(s);
  if (b->n && !(touched = calloc(b->n, sizeof(*touched))))
    return NN_ENOMEM;
  uint64_t seq = s->wal.next_seq;
  struct nn_buf *r = &s->rec;
  nn_buf_reset(r);
  uint8_t seqb[8];
  ls_put_u64(seqb, seq);
  if ((rc = nn_buf_appendc(r, LS_REC_BATCH)) < 0 || (rc = nn_buf_append(r, seqb, 8)) < 0 ||
      (rc = rec_put_str(r, tenant, strlen(tenant))) < 0)
    goto out;
  size_t keypos = r->len, relogged = 0;
  if ((rc = rec_put_str(r, klen ? b->idem_key : "", klen)) < 0)
    goto out;
  for (size_t i = 0; i < b->n; i++) {
    const struct nn_logstore_stream_in *in = &b->streams[i];
    struct nn__ls_stream *st;
    err[0] = '\0';
    rc = nn__logstore_stream_get(s, t, in->labels, in->labels_len, in->lset, in->nlset, true, true,
                                 &st, err, sizeof(err));
    if (rc == NN_ENOMEM)
      goto out;
    if (rc < 0) {
      res->rejected += in->n;
      s->st.entries_rejected += in->n;
      if (rc == NN_ELIMIT)
        nn__logstore_fail(res, rc, "%s", err);
      else
        nn__logstore_fail(res, rc, "invalid stream labels %.*s: %s",
                          (int)(in->labels_len > 120 ? 120 : in->labels_len),
                          in->labels ? in->labels : "", err);
      rc = 0;
      continue;
    }
    size_t sect = r->len, cnt = 0;
    if ((rc = rec_put_str(r, st->key, st->keylen)) < 0)
      goto out;
    size_t cntpos = r->len;
    if ((rc = nn_buf_append(r, "\0\0\0\0\0", 5)) < 0)
      goto out;
    for (size_t k = 0; k < in->n; k++) {
      const struct nn_logstore_entry *ie = &in->entries[k];
      if ((rc = meta_encode(&s->meta, ie, err, sizeof(err))) < 0) {
        if (rc == NN_ENOMEM)
          goto out;
        res->rejected++;
        s->st.entries_rejected++;
        nn__logstore_fail(res, NN_EINVAL, "stream %s: %s", st->key, err);
        rc = 0;
        continue;
      }
      struct nn__ls_ent e = {ie->ts_ns, ie->line ? ie->line : "", ie->len,
                             (const uint8_t *)s->meta.data, s->meta.len};
      uint64_t dups = res->duplicates;
      if ((rc = nn__logstore_apply(s, st, &e, seq, false, res)) < 0)
        goto out;
      /* After a failed WAL write, a duplicate may be one that is in memory only (the
       * client retries after its 5xx): it is logged again, and replay drops it when the
       * first copy is there after all. */
      bool relog = rc == 0 && s->wal.relog && res->duplicates > dups;
      if (relog)
        relogged++;
      if (rc == 1 || relog) {
        if ((rc = rec_put_entry(r, &e)) < 0)
          goto out;
        cnt++;
      }
      rc = 0;
    }
    if (cnt == 0) {
      r->len = sect;
      continue;
    }
    /* A fixed five-byte uvarint (padded continuation bytes) so the count can be patched
     * in place once known. */
    for (int k = 0; k < 5; k++)
      r->data[cntpos + k] = (char)(((cnt >> (7 * k)) & 0x7f) | (k < 4 ? 0x80 : 0));
    touched[ntouched++] = st;
  }
  if (klen && res->rejected) {
    /* The key is only remembered for a fully accepted batch (a resend may then succeed
     * where this one was refused): blank it in the record so replay agrees. */
    size_t kl_bytes = klen < 128 ? 1 : 2;
    memmove(r->data + keypos + 1, r->data + keypos + kl_bytes + klen,
            r->len - keypos - kl_bytes - klen);
    r->data[keypos] = 0;
    r->len -= kl_bytes + klen - 1;
  }
  if (res->accepted > 0 || relogged > 0 || (klen && res->rejected == 0)) {
    if ((rc = nn__logstore_wal_write(s, LS_REC_BATCH, &pos)) < 0) {
      s->wal.relog = true;
      snprintf(res->error, sizeof(res->error), "writing the log WAL failed: %s", nn_strerror(rc));
      goto out;
    }
    s->wal.next_seq = seq + 1;
    if (klen && res->rejected == 0 &&
        (rc = nn__logstore_key_add(s, tenant, b->idem_key, klen, seq)) < 0)
      goto out;
  }
  if ((rc = cut_after_batch(s, touched, ntouched)) < 0)
    goto out;
  rc = nn__logstore_wal_wait(s, pos, cb, ud);
out:
  free(touched);
  return rc;
}

/* ---- lifecycle and housekeeping ---- */

static int mkdir_p(const char *path)
{
  char tmp[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof(tmp))
    return NN_EINVAL;
  memcpy(tmp, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (tmp[i] == '/' || tmp[i] == '\0') {
      char c = tmp[i];
      tmp[i] = '\0';
      if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return NN_ERRNO(errno);
      tmp[i] = c;
    }
  }
  return 0;
}

static char *path_join(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  char *p = malloc(la + lb + 2);
  if (p) {
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
  }
  return p;
}

int nn_logstore_open(const struct nn_logstore_config *c, struct nn_logstore **out, char *err,
                     size_t errlen)
{
  int rc;
  *out = NULL;
  if (!c->data_dir || !*c->data_dir) {
    snprintf(err, errlen, "logstore: data_dir is required");
    return NN_ECONFIG;
  }
  if (c->chunk_target_bytes == 0 || c->chunk_target_bytes > LS_MAX_CHUNK_RAW / 2 ||
      c->max_line_bytes == 0 || c->max_line_bytes > LS_MAX_CHUNK_RAW / 2 ||
      c->wal_segment_bytes < 4096 || c->chunk_period_ns <= 0 || c->max_chunk_age_ns <= 0) {
    snprintf(err, errlen,
             "logstore: chunk_target_bytes and max_line_bytes must be 1..%u, "
             "wal_segment_bytes >= 4096, chunk_period and max_chunk_age > 0",
             LS_MAX_CHUNK_RAW / 2);
    return NN_ECONFIG;
  }
  struct nn_logstore *s = calloc(1, sizeof(*s));
  if (!s)
    return NN_ENOMEM;
  s->cfg = *c;
  s->wal.fd = -1;
  pthread_mutex_init(&s->wal.mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->wal.wake, &ca);
  pthread_cond_init(&s->wal.done, &ca);
  pthread_condattr_destroy(&ca);
  nn_buf_init(&s->rec, LS_MAX_RECORD_BYTES);
  nn_buf_init(&s->raw, LS_MAX_CHUNK_RAW);
  nn_buf_init(&s->meta, LS_MAX_RECORD_BYTES);
  s->cfg.data_dir = NULL;
  if (!(s->dir = path_join(c->data_dir, "logs")) || !(s->wal_dir = path_join(s->dir, "wal")) ||
      !(s->chunk_dir = path_join(s->dir, "chunks"))) {
    rc = NN_ENOMEM;
    goto fail;
  }
  if ((rc = mkdir_p(s->wal_dir)) < 0 || (rc = mkdir_p(s->chunk_dir)) < 0) {
    snprintf(err, errlen, "logstore: cannot create %s: %s", s->dir, nn_strerror(rc));
    goto fail;
  }
  s->wal.next_seq = 1;
  if ((rc = nn__logstore_chunks_load(s, err, errlen)) < 0)
    goto fail;
  if ((rc = nn__logstore_wal_open(s, err, errlen)) < 0)
    goto fail;
  *out = s;
  return 0;
fail:
  nn_logstore_close(s);
  return rc;
}

void nn_logstore_close(struct nn_logstore *s)
{
  if (!s)
    return;
  nn__logstore_wal_close(s);
  nn__logstore_dedup_fini(s);
  for (size_t i = 0; i < s->nids; i++)
    stream_free(s->by_id[i]);
  free(s->by_id);
  free(s->free_ids);
  for (size_t i = 0; i < s->tenants.cap; i++)
    if (s->tenants.slots[i].key)
      tenant_free(s->tenants.slots[i].val);
  nn__logstore_map_fini(&s->tenants);
  keys_free(s);
  free(s->periods);
  free(s->metric_refs);
  nn_buf_fini(&s->rec);
  nn_buf_fini(&s->raw);
  nn_buf_fini(&s->meta);
  pthread_cond_destroy(&s->wal.wake);
  pthread_cond_destroy(&s->wal.done);
  pthread_mutex_destroy(&s->wal.mu);
  free(s->dir);
  free(s->wal_dir);
  free(s->chunk_dir);
  free(s);
}

int nn_logstore_flush(struct nn_logstore *s)
{
  for (size_t i = 0; i < s->nids; i++) {
    int rc;
    if (s->by_id[i] && s->by_id[i]->head.n && (rc = nn__logstore_cut(s, s->by_id[i])) < 0)
      return rc;
  }
  return 0;
}

int nn_logstore_tick(struct nn_logstore *s, int64_t now_ns)
{
  int rc;
  for (size_t i = 0; i < s->nids; i++) {
    struct nn__ls_stream *st = s->by_id[i];
    if (!st || st->head.n == 0)
      continue;
    if (now_ns - st->head.created_ns >= s->cfg.max_chunk_age_ns ||
        now_ns - st->head.last_ns >= s->cfg.chunk_idle_ns)
      if ((rc = nn__logstore_cut(s, st)) < 0)
        return rc;
  }
  if ((rc = nn__logstore_retention(s, now_ns)) < 0)
    return rc;
  if ((rc = nn__logstore_wal_truncate(s)) < 0)
    return rc;
  /* A stream with nothing left may go once no WAL segment can still replay into it. */
  uint64_t oldest = nn__logstore_wal_oldest_seq(s);
  for (size_t i = 0; i < s->nids; i++) {
    struct nn__ls_stream *st = s->by_id[i];
    if (st && st->head.n == 0 && st->nchunks == 0 && st->last_seq < oldest)
      nn__logstore_stream_remove(s, st);
  }
  return 0;
}

void nn_logstore_get_stats(const struct nn_logstore *s, struct nn_logstore_stats *out)
{
  *out = s->st;
}
