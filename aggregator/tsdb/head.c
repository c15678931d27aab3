/* SPDX-License-Identifier: Apache-2.0 */
/* The head: interned label strings, series found by labels hash or by ref, the appender
 * that validates samples (Prometheus's out-of-order, duplicate and out-of-bounds rules)
 * and commits them to the WAL and the series' chunks, and truncation of old data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "aggregator/tsdb/internal.h"
#include "common/log.h"

#define MAX_REF (1ULL << 62)

/* ---- symbols ---- */

static uint32_t str_h32(const char *s)
{
  return (uint32_t)XXH3_64bits(s, strlen(s));
}

static int symtab_rebuild(struct nn__tsdb_symtab *st, uint32_t want_slots)
{
  uint32_t *t = calloc(want_slots, sizeof(*t));
  if (!t)
    return NN_ENOMEM;
  uint32_t mask = want_slots - 1;
  for (uint32_t id = 1; id < st->n; id++) {
    if (!st->str[id])
      continue;
    uint32_t i = st->h32[id] & mask;
    while (t[i])
      i = (i + 1) & mask;
    t[i] = id;
  }
  free(st->table);
  st->table = t;
  st->mask = mask;
  return 0;
}

uint32_t nn__tsdb_sym_find(const struct nn__tsdb_symtab *st, const char *s)
{
  if (!st->table)
    return 0;
  uint32_t h = str_h32(s), id;
  for (uint32_t i = h & st->mask; (id = st->table[i]); i = (i + 1) & st->mask)
    if (st->h32[id] == h && strcmp(st->str[id], s) == 0)
      return id;
  return 0;
}

uint32_t nn__tsdb_sym_intern(struct nn__tsdb_symtab *st, const char *s)
{
  uint32_t h = str_h32(s), id;
  if (st->table) {
    for (uint32_t i = h & st->mask; (id = st->table[i]); i = (i + 1) & st->mask) {
      if (st->h32[id] == h && strcmp(st->str[id], s) == 0) {
        st->refs[id]++;
        return id;
      }
    }
  }
  if (!st->table || (size_t)(st->live + 1) * 2 > (size_t)st->mask + 1) {
    uint32_t slots = st->table ? (st->mask + 1) * 2 : 256;
    if (slots == 0 || symtab_rebuild(st, slots) < 0)
      return 0;
  }
  if (st->free_head) {
    id = st->free_head;
    st->free_head = st->refs[id];
  } else {
    if (st->n == UINT32_MAX)
      return 0;
    if (st->n == st->cap) {
      uint32_t nc = st->cap ? st->cap * 2 : 256;
      char **ns = realloc(st->str, nc * sizeof(*ns));
      if (!ns)
        return 0;
      st->str = ns;
      uint32_t *nr = realloc(st->refs, nc * sizeof(*nr));
      if (!nr)
        return 0;
      st->refs = nr;
      uint32_t *nh = realloc(st->h32, nc * sizeof(*nh));
      if (!nh)
        return 0;
      st->h32 = nh;
      st->cap = nc;
    }
    if (st->n == 0)
      st->n = 1; /* id 0 means "none" */
    id = st->n++;
  }
  st->str[id] = strdup(s);
  if (!st->str[id]) {
    st->refs[id] = st->free_head;
    st->free_head = id;
    return 0;
  }
  st->refs[id] = 1;
  st->h32[id] = h;
  st->live++;
  st->gen++;
  uint32_t i = h & st->mask;
  while (st->table[i])
    i = (i + 1) & st->mask;
  st->table[i] = id;
  return id;
}

/* Drops one reference; the caller rebuilds the table (symtab_rebuild) before the next
 * lookup, which lets truncation free many symbols for one rebuild. */
static void sym_unref(struct nn__tsdb_symtab *st, uint32_t id)
{
  if (--st->refs[id])
    return;
  free(st->str[id]);
  st->str[id] = NULL;
  st->refs[id] = st->free_head;
  st->free_head = id;
  st->live--;
  st->gen++;
}

static void symtab_fini(struct nn__tsdb_symtab *st)
{
  for (uint32_t id = 1; id < st->n; id++)
    free(st->str[id]);
  free(st->str);
  free(st->refs);
  free(st->h32);
  free(st->table);
  memset(st, 0, sizeof(*st));
}

/* ---- series tables ---- */

static size_t mix(uint64_t x)
{
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)x;
}

static void tables_insert(struct nn__tsdb_hslot *byh, struct nn__tsdb_series **byr, size_t mask,
                          struct nn__tsdb_series *s)
{
  size_t i = s->hash & mask;
  while (byh[i].s)
    i = (i + 1) & mask;
  byh[i] = (struct nn__tsdb_hslot){s->hash, s};
  i = mix(s->ref) & mask;
  while (byr[i])
    i = (i + 1) & mask;
  byr[i] = s;
}

/* Rebuilds both tables with slots entries from the series still in by_ref. */
static int tables_rebuild(struct nn_tsdb *db, size_t slots)
{
  struct nn__tsdb_hslot *byh = calloc(slots, sizeof(*byh));
  struct nn__tsdb_series **byr = calloc(slots, sizeof(*byr));
  if (!byh || !byr) {
    free(byh);
    free(byr);
    return NN_ENOMEM;
  }
  size_t n = 0;
  if (db->by_ref) {
    for (size_t i = 0; i <= db->mask; i++) {
      if (db->by_ref[i]) {
        tables_insert(byh, byr, slots - 1, db->by_ref[i]);
        n++;
      }
    }
  }
  free(db->by_hash);
  free(db->by_ref);
  db->by_hash = byh;
  db->by_ref = byr;
  db->mask = slots - 1;
  db->nseries = n;
  return 0;
}

struct nn__tsdb_series *nn__tsdb_series_by_ref(const struct nn_tsdb *db, uint64_t ref)
{
  if (!db->by_ref)
    return NULL;
  struct nn__tsdb_series *s;
  for (size_t i = mix(ref) & db->mask; (s = db->by_ref[i]); i = (i + 1) & db->mask)
    if (s->ref == ref)
      return s;
  return NULL;
}

static bool labels_equal(const struct nn_tsdb *db, const struct nn__tsdb_series *s,
                         const struct nn_label *ls, size_t n)
{
  if (s->nlabels != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(db->syms.str[s->syms[2 * i]], ls[i].name) != 0 ||
        strcmp(db->syms.str[s->syms[2 * i + 1]], ls[i].value) != 0)
      return false;
  }
  return true;
}

struct nn__tsdb_series *nn__tsdb_series_get(const struct nn_tsdb *db, uint64_t h,
                                            const struct nn_label *ls, size_t n)
{
  if (!db->by_hash)
    return NULL;
  /* Equal hashes are compared label by label, so a collision costs a compare, never a
   * wrong series. */
  for (size_t i = h & db->mask; db->by_hash[i].s; i = (i + 1) & db->mask)
    if (db->by_hash[i].hash == h && labels_equal(db, db->by_hash[i].s, ls, n))
      return db->by_hash[i].s;
  return NULL;
}

static void series_free(struct nn_tsdb *db, struct nn__tsdb_series *s, uint32_t nsyms)
{
  for (uint32_t i = 0; i < nsyms; i++)
    sym_unref(&db->syms, s->syms[i]);
  for (uint32_t i = 0; i < s->nchunks; i++)
    free(s->chunks[i].data);
  free(s->chunks);
  nn__tsdb_xor_free(&s->head);
  free(s);
}

/* Drops references taken for a series that is not created after all. Strings left at
 * zero stay in the table (freeing them would need a rebuild) until truncation or close;
 * only an out-of-memory path gets here. */
static void syms_release(struct nn_tsdb *db, const struct nn__tsdb_series *s, size_t k)
{
  for (size_t i = 0; i < k; i++)
    if (db->syms.refs[s->syms[i]] > 1)
      db->syms.refs[s->syms[i]]--;
}

struct nn__tsdb_series *nn__tsdb_series_create(struct nn_tsdb *db, uint64_t h,
                                               const struct nn_label *ls, size_t n, uint64_t ref)
{
  if (n == 0 || n > NN__TSDB_MAX_LABELS || ref >= MAX_REF || db->next_ref >= MAX_REF)
    return NULL;
  if (!db->by_ref || (db->nseries + 1) * 4 > (db->mask + 1) * 3) {
    if (tables_rebuild(db, db->by_ref ? (db->mask + 1) * 2 : 1024) < 0)
      return NULL;
  }
  struct nn__tsdb_series *s = calloc(1, nn__tsdb_series_size(n));
  if (!s)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    uint32_t a = nn__tsdb_sym_intern(&db->syms, ls[i].name);
    uint32_t b = a ? nn__tsdb_sym_intern(&db->syms, ls[i].value) : 0;
    if (!b) {
      if (a)
        db->syms.refs[a]--;
      syms_release(db, s, 2 * i);
      free(s);
      return NULL;
    }
    s->syms[2 * i] = a;
    s->syms[2 * i + 1] = b;
  }
  s->nlabels = (uint16_t)n;
  s->hash = h;
  s->last_t = NN__TSDB_NO_T;
  s->ref = ref ? ref : db->next_ref;
  if (s->ref >= db->next_ref)
    db->next_ref = s->ref + 1;
  if (nn__tsdb_index_add(&db->idx, s->ref, s->syms, n) < 0) {
    /* Postings may hold the ref; lookups by ref find nothing and skip it. */
    syms_release(db, s, 2 * n);
    series_free(db, s, 0);
    return NULL;
  }
  tables_insert(db->by_hash, db->by_ref, db->mask, s);
  db->nseries++;
  db->st.series_created++;
  return s;
}

int nn__tsdb_series_commit(struct nn_tsdb *db, struct nn__tsdb_series *s, int64_t t, double v)
{
  if (s->head.n >= db->opt.chunk_samples) {
    if (s->nchunks == s->capchunks) {
      uint32_t nc = s->capchunks ? s->capchunks * 2 : 2;
      struct nn__tsdb_chunk *c = realloc(s->chunks, nc * sizeof(*c));
      if (!c)
        return NN_ENOMEM;
      s->chunks = c;
      s->capchunks = nc;
    }
    struct nn__tsdb_chunk *c = &s->chunks[s->nchunks];
    size_t len;
    c->mint = s->head_mint;
    c->maxt = s->head.t;
    c->n = s->head.n;
    c->data = nn__tsdb_xor_finish(&s->head, &len);
    c->len = (uint32_t)len;
    s->nchunks++;
  }
  if (s->head.n == 0) {
    s->head_mint = t;
    nn__tsdb_series_ck(s)->i = 0; /* of the chunk just closed, if any */
    db->st.chunks++;
  }
  int rc = nn__tsdb_xor_append(&s->head, t, v);
  if (rc < 0)
    return rc;
  if (t > db->max_t)
    db->max_t = t;
  if (t < db->min_t)
    db->min_t = t;
  return 0;
}

/* ---- appender ---- */

struct pending {
  struct nn__tsdb_series *s;
  uint64_t ref; /* s->ref, so that encoding the samples reads no series */
  int64_t t;
  double v;
};

struct nn_tsdb_appender {
  struct nn_tsdb *db;
  struct pending *e;
  size_t n, cap;
  size_t in_record; /* series marked IN_RECORD by the last encode */
  struct nn_buf rec;
};

struct nn_tsdb_appender *nn_tsdb_appender_create(struct nn_tsdb *db)
{
  struct nn_tsdb_appender *a = calloc(1, sizeof(*a));
  if (!a)
    return NULL;
  a->db = db;
  nn_buf_init(&a->rec, db->opt.wal_max_pending_bytes);
  return a;
}

void nn_tsdb_appender_destroy(struct nn_tsdb_appender *a)
{
  if (!a)
    return;
  nn_tsdb_appender_rollback(a);
  free(a->e);
  nn_buf_fini(&a->rec);
  free(a);
}

size_t nn_tsdb_series_count(const struct nn_tsdb *db)
{
  return db->nseries;
}

size_t nn_tsdb_appender_pending(const struct nn_tsdb_appender *a)
{
  return a->n;
}

/* The same value as nn_labels_hash (XXH3 over "name\xffvalue\xff..."), in one call
 * over a stack copy instead of XXH3's streaming state: ten times cheaper on the hot path
 * for ordinary label sets. */
static uint64_t labels_hash(const struct nn_label *ls, size_t n)
{
  char buf[2048];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t a = strlen(ls[i].name), b = strlen(ls[i].value);
    if (a + b + 2 > sizeof(buf) - k)
      return nn_labels_hash(ls, n);
    memcpy(buf + k, ls[i].name, a);
    k += a;
    buf[k++] = '\xff';
    memcpy(buf + k, ls[i].value, b);
    k += b;
    buf[k++] = '\xff';
  }
  return XXH3_64bits(buf, k);
}

/* Samples older than the window behind the newest, or inside a range already cut (or
 * being cut) into a block, are out of bounds. */
static int64_t min_valid(const struct nn_tsdb *db)
{
  int64_t w = NN__TSDB_NO_T;
  if (db->max_t != NN__TSDB_NO_T && db->max_t >= INT64_MIN + db->opt.out_of_bounds_window_ms)
    w = db->max_t - db->opt.out_of_bounds_window_ms;
  return w > db->oob_floor ? w : db->oob_floor;
}

static int add(struct nn_tsdb_appender *a, struct nn__tsdb_series *s, int64_t t, double v)
{
  struct nn_tsdb *db = a->db;
  if (s->last_t != NN__TSDB_NO_T) {
    if (t < s->last_t) {
      db->st.out_of_order++;
      return NN_EOUTOFORDER;
    }
    if (t == s->last_t) {
      if (memcmp(&v, &s->last_v, sizeof(v)) != 0) {
        db->st.duplicate++;
        return NN_EDUPLICATE;
      }
      db->st.duplicate_identical++;
      if (!db->relog)
        return 0;
      /* Logged again (the WAL may have lost it); commit does not store it twice. */
    }
  }
  if (a->n == a->cap) {
    if (a->cap >= db->opt.appender_max_samples)
      return NN_ETOOBIG;
    size_t nc = a->cap ? a->cap * 2 : 256;
    if (nc > db->opt.appender_max_samples)
      nc = db->opt.appender_max_samples;
    struct pending *ne = realloc(a->e, nc * sizeof(*ne));
    if (!ne)
      return NN_ENOMEM;
    a->e = ne;
    a->cap = nc;
  }
  a->e[a->n++] = (struct pending){s, s->ref, t, v};
  s->last_t = t;
  s->last_v = v;
  db->active = a;
  return 0;
}

uint64_t nn_tsdb_labels_hash(const struct nn_label *ls, size_t n)
{
  return labels_hash(ls, n);
}

void nn_tsdb_prefetch(const struct nn_tsdb *db, uint64_t h, int stage)
{
  if (!db->by_hash)
    return;
  const struct nn__tsdb_hslot *slot = &db->by_hash[h & db->mask];
  if (stage == 0) {
    __builtin_prefetch(slot);
    return;
  }
  /* The slot came in at stage 0: start on the series, whose labels the lookup compares. */
  if (slot->s && slot->hash == h) {
    __builtin_prefetch(slot->s);
    __builtin_prefetch((const char *)slot->s + 64);
  }
}

void nn_tsdb_prefetch_ref(const struct nn_tsdb *db, uint64_t ref, int stage)
{
  if (!db->by_ref)
    return;
  struct nn__tsdb_series *const *slot = &db->by_ref[mix(ref) & db->mask];
  if (stage == 0) {
    __builtin_prefetch(slot);
    return;
  }
  /* The slot's first series is the one unless it collided: start on both lines a lookup
   * and an append read. */
  const struct nn__tsdb_series *s = *slot;
  if (s) {
    __builtin_prefetch(s);
    __builtin_prefetch((const char *)s + 64);
  }
}

int nn_tsdb_appender_append(struct nn_tsdb_appender *a, const struct nn_label *ls, size_t n,
                            int64_t t, double v, uint64_t *ref)
{
  return nn_tsdb_appender_append_hashed(a, ls, n, n ? labels_hash(ls, n) : 0, t, v, ref);
}

int nn_tsdb_appender_append_hashed(struct nn_tsdb_appender *a, const struct nn_label *ls, size_t n,
                                   uint64_t h, int64_t t, double v, uint64_t *ref)
{
  struct nn_tsdb *db = a->db;
  if (db->active && db->active != a)
    return NN_EAGAIN;
  if (n == 0 || n > NN__TSDB_MAX_LABELS)
    return NN_EINVAL;
  if (t < min_valid(db)) {
    db->st.out_of_bounds++;
    return NN_TSDB_EOUTOFBOUNDS;
  }
  struct nn__tsdb_series *s = nn__tsdb_series_get(db, h, ls, n);
  if (!s) {
    /* Only new label sets are checked: a found series equals one checked before. */
    char err[160];
    if (nn_labels_validate(ls, n, err, sizeof(err)) < 0) {
      NN_LOG_RL(NN_LOG_WARN, "tsdb", "series rejected: %s", err);
      return NN_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
      if (!ls[i].value[0])
        return NN_EINVAL;
    if (!(s = nn__tsdb_series_create(db, h, ls, n, 0)))
      return NN_ENOMEM;
  }
  if (ref)
    *ref = s->ref;
  return add(a, s, t, v);
}

int nn_tsdb_appender_append_ref(struct nn_tsdb_appender *a, uint64_t ref, int64_t t, double v)
{
  struct nn_tsdb *db = a->db;
  if (db->active && db->active != a)
    return NN_EAGAIN;
  struct nn__tsdb_series *s = nn__tsdb_series_by_ref(db, ref);
  if (!s)
    return NN_ENOTFOUND;
  if (t < min_valid(db)) {
    db->st.out_of_bounds++;
    return NN_TSDB_EOUTOFBOUNDS;
  }
  return add(a, s, t, v);
}

uint64_t nn_tsdb_series_epoch(const struct nn_tsdb *db)
{
  return db->st.series_removed;
}

struct nn__tsdb_series *nn_tsdb_series_find(const struct nn_tsdb *db, uint64_t ref)
{
  return nn__tsdb_series_by_ref(db, ref);
}

int nn_tsdb_appender_append_series(struct nn_tsdb_appender *a, struct nn__tsdb_series *s, int64_t t,
                                   double v)
{
  struct nn_tsdb *db = a->db;
  if (db->active && db->active != a)
    return NN_EAGAIN;
  if (t < min_valid(db)) {
    db->st.out_of_bounds++;
    return NN_TSDB_EOUTOFBOUNDS;
  }
  return add(a, s, t, v);
}

void nn_tsdb_prefetch_series(const struct nn__tsdb_series *s)
{
  /* Both lines an append reads; the series sits at any 16-byte offset. */
  __builtin_prefetch(s);
  __builtin_prefetch((const char *)s + 64);
  __builtin_prefetch((const char *)s + 127);
}

static void reset_last(struct nn__tsdb_series *s)
{
  if (s->head.n) {
    s->last_t = s->head.t;
    memcpy(&s->last_v, &s->head.v, sizeof(s->last_v));
  } else {
    s->last_t = NN__TSDB_NO_T;
  }
}

void nn_tsdb_appender_rollback(struct nn_tsdb_appender *a)
{
  /* The committed state lives in each series' open chunk, so undoing is a reset. */
  for (size_t i = 0; i < a->n; i++)
    reset_last(a->e[i].s);
  a->n = 0;
  if (a->db->active == a)
    a->db->active = NULL;
}

static int put_str(struct nn_buf *b, const char *s)
{
  size_t n = strlen(s);
  int rc = nn__tsdb_put_uvarint(b, n);
  return rc < 0 ? rc : nn_buf_append(b, s, n);
}

/* Encodes a series record for series not yet logged, then the samples record. */
static int encode(struct nn_tsdb_appender *a)
{
  struct nn_tsdb *db = a->db;
  struct nn_buf *b = &a->rec;
  size_t off = 0;
  int rc = 0;
  bool open = false;
  nn_buf_reset(b);
  a->in_record = 0;
  for (size_t i = 0; i < a->n && rc == 0; i++) {
    struct nn__tsdb_series *s = a->e[i].s;
    /* A big batch has evicted the series since their append: fetch the flags ahead. */
    if (i + 8 < a->n)
      __builtin_prefetch(&a->e[i + 8].s->flags);
    if (s->flags & (NN__TSDB_SERIES_LOGGED | NN__TSDB_SERIES_IN_RECORD))
      continue;
    s->flags |= NN__TSDB_SERIES_IN_RECORD;
    a->in_record++;
    if (!open) {
      if ((rc = nn__tsdb_rec_begin(b, NN__TSDB_REC_SERIES, &off)) < 0)
        break;
      open = true;
    }
    rc = nn__tsdb_put_uvarint(b, s->ref);
    if (rc == 0)
      rc = nn__tsdb_put_uvarint(b, s->nlabels);
    for (uint32_t k = 0; rc == 0 && k < 2u * s->nlabels; k++)
      rc = put_str(b, db->syms.str[s->syms[k]]);
  }
  if (rc < 0)
    return rc;
  if (open) {
    nn__tsdb_rec_end(b, off);
    db->st.records++;
  }
  if ((rc = nn__tsdb_rec_begin(b, NN__TSDB_REC_SAMPLES, &off)) < 0)
    return rc;
  uint64_t base_ref = a->e[0].ref;
  int64_t base_t = a->e[0].t;
  rc = nn__tsdb_put_uvarint(b, base_ref);
  if (rc == 0)
    rc = nn__tsdb_put_varint(b, base_t);
  for (size_t i = 0; i < a->n && rc == 0; i++) {
    if ((rc = nn_buf_reserve(b, 30)) < 0)
      break;
    rc = nn__tsdb_put_varint(b, (int64_t)(a->e[i].ref - base_ref));
    if (rc == 0)
      rc = nn__tsdb_put_varint(b, (int64_t)((uint64_t)a->e[i].t - (uint64_t)base_t));
    uint64_t bits;
    memcpy(&bits, &a->e[i].v, sizeof(bits));
    uint8_t le[8];
    for (int k = 0; k < 8; k++)
      le[k] = (uint8_t)(bits >> (8 * k));
    if (rc == 0)
      rc = nn_buf_append(b, le, 8);
  }
  if (rc < 0)
    return rc;
  nn__tsdb_rec_end(b, off);
  db->st.records++;
  return 0;
}

static void clear_in_record(struct nn_tsdb_appender *a, bool logged)
{
  if (!a->in_record)
    return; /* most commits log no new series: then no series needs visiting */
  for (size_t i = 0; i < a->n; i++) {
    struct nn__tsdb_series *s = a->e[i].s;
    if (s->flags & NN__TSDB_SERIES_IN_RECORD) {
      s->flags &= (uint8_t)~NN__TSDB_SERIES_IN_RECORD;
      if (logged)
        s->flags |= NN__TSDB_SERIES_LOGGED;
    }
  }
}

int nn_tsdb_appender_commit(struct nn_tsdb_appender *a)
{
  struct nn_tsdb *db = a->db;
  int rc = 0;
  if (a->n == 0)
    goto out;
  if (db->wal) {
    rc = encode(a);
    if (rc == 0)
      rc = nn__tsdb_wal_log(db->wal, a->rec.data, a->rec.len);
    clear_in_record(a, rc == 0);
    if (rc < 0) {
      if (rc == NN_EAGAIN)
        db->st.commit_rejected++;
      nn_tsdb_appender_rollback(a);
      goto out;
    }
  } else {
    db->mem_seq++;
  }
  for (size_t i = 0; i < a->n; i++) {
    struct pending *p = &a->e[i];
    /* The series were touched at append time but a big batch has evicted them since;
     * the order is known, so fetch ahead. */
    if (i + 8 < a->n)
      __builtin_prefetch(a->e[i + 8].s);
    if (i + 4 < a->n && a->e[i + 4].s->head.buf)
      __builtin_prefetch(a->e[i + 4].s->head.buf + (a->e[i + 4].s->head.nbits >> 3), 1);
    if (p->s->head.n > 0 && p->t <= p->s->head.t)
      continue; /* an identical resend, logged again (db->relog) */
    int crc = nn__tsdb_series_commit(db, p->s, p->t, p->v);
    if (crc < 0) {
      /* Only OOM gets here; the WAL has the sample, so a restart restores it. */
      NN_LOG_RL(NN_LOG_ERROR, "tsdb",
                "sample of series %llu lost from memory (it is in the WAL): %s",
                (unsigned long long)p->s->ref, nn_strerror(crc));
      reset_last(p->s);
      continue;
    }
    db->st.samples_appended++;
  }
  a->n = 0;
out:
  if (db->active == a)
    db->active = NULL;
  nn_buf_reset(&a->rec);
  return rc;
}

void nn__tsdb_head_wal_failed(struct nn_tsdb *db)
{
  db->relog = true;
  for (size_t i = 0; i <= db->mask; i++)
    if (db->by_ref[i])
      db->by_ref[i]->flags &= (uint8_t)~NN__TSDB_SERIES_LOGGED;
}

/* ---- checkpoint snapshot ---- */

#define SNAP_RECORD_BYTES (1u << 20)

static int put_chunk(struct nn_buf *b, const uint8_t *p, size_t n)
{
  int rc = nn__tsdb_put_uvarint(b, n);
  return rc < 0 ? rc : nn_buf_append(b, p, n);
}

/* One pass over the series per record type; records are cut near 1 MiB so that replay
 * never needs one huge allocation. */
static int snapshot_pass(struct nn_tsdb *db, struct nn_buf *b, uint8_t type)
{
  size_t off = 0;
  bool open = false;
  int rc = 0;
  for (size_t i = 0; i <= db->mask && rc == 0; i++) {
    struct nn__tsdb_series *s = db->by_ref[i];
    if (!s)
      continue;
    if (nn__tsdb_series_empty(s)) {
      /* Left out of the checkpoint, so its series record goes away with the old
       * segments: the next commit for it must log the series again. */
      s->flags &= (uint8_t)~NN__TSDB_SERIES_LOGGED;
      continue;
    }
    if (!open) {
      if ((rc = nn__tsdb_rec_begin(b, type, &off)) < 0)
        break;
      open = true;
    }
    rc = nn__tsdb_put_uvarint(b, s->ref);
    if (type == NN__TSDB_REC_SERIES) {
      if (rc == 0)
        rc = nn__tsdb_put_uvarint(b, s->nlabels);
      for (uint32_t k = 0; rc == 0 && k < 2u * s->nlabels; k++)
        rc = put_str(b, db->syms.str[s->syms[k]]);
    } else {
      if (rc == 0)
        rc = nn__tsdb_put_uvarint(b, s->nchunks + (s->head.n ? 1u : 0u));
      for (uint32_t k = 0; rc == 0 && k < s->nchunks; k++)
        rc = put_chunk(b, s->chunks[k].data, s->chunks[k].len);
      if (rc == 0 && s->head.n)
        rc = put_chunk(b, s->head.buf, nn__tsdb_xor_len(&s->head));
    }
    if (rc == 0 && b->len - off > SNAP_RECORD_BYTES) {
      nn__tsdb_rec_end(b, off);
      open = false;
    }
  }
  if (rc == 0 && open)
    nn__tsdb_rec_end(b, off);
  return rc;
}

int nn__tsdb_head_snapshot(struct nn_tsdb *db, struct nn_buf *b)
{
  if (!db->by_ref)
    return 0;
  int rc = snapshot_pass(db, b, NN__TSDB_REC_SERIES);
  return rc < 0 ? rc : snapshot_pass(db, b, NN__TSDB_REC_CHUNKS);
}

/* ---- truncation ---- */

static bool ref_dead(void *ctx, uint64_t ref)
{
  return nn__tsdb_series_by_ref(ctx, ref) == NULL;
}

size_t nn_tsdb_head_truncate(struct nn_tsdb *db, int64_t mint)
{
  if (db->active || !db->by_ref)
    return 0; /* uncommitted samples point at series */
  size_t removed = 0;
  int64_t new_min = INT64_MAX;
  for (size_t i = 0; i <= db->mask; i++) {
    struct nn__tsdb_series *s = db->by_ref[i];
    if (!s)
      continue;
    uint32_t drop = 0;
    while (drop < s->nchunks && s->chunks[drop].maxt < mint)
      free(s->chunks[drop++].data);
    if (drop) {
      memmove(s->chunks, s->chunks + drop, (s->nchunks - drop) * sizeof(*s->chunks));
      s->nchunks -= drop;
      db->st.chunks -= drop;
    }
    if (s->nchunks == 0 && (s->head.n == 0 || s->head.t < mint)) {
      db->st.chunks -= s->head.n ? 1 : 0;
      db->by_ref[i] = NULL;
      series_free(db, s, 2u * s->nlabels);
      removed++;
      continue;
    }
    int64_t smin = nn__tsdb_series_mint(s);
    if (smin < new_min)
      new_min = smin;
  }
  if (!removed) {
    db->min_t = new_min;
    return 0;
  }
  /* Rebuilding at the same size keeps this simple; the table shrinks never, the head's
   * series count being mostly steady. */
  if (tables_rebuild(db, db->mask + 1) < 0 || nn__tsdb_index_prune(&db->idx, ref_dead, db) < 0 ||
      symtab_rebuild(&db->syms, db->syms.mask + 1) < 0) {
    nn_error("tsdb", "out of memory rebuilding the head index after truncation");
  }
  db->st.series_removed += removed;
  db->min_t = new_min;
  if (db->nseries == 0)
    db->max_t = NN__TSDB_NO_T;
  return removed;
}

void nn__tsdb_head_fini(struct nn_tsdb *db)
{
  if (db->by_ref) {
    for (size_t i = 0; i <= db->mask; i++)
      if (db->by_ref[i])
        series_free(db, db->by_ref[i], 0);
  }
  free(db->by_ref);
  free(db->by_hash);
  db->by_ref = NULL;
  db->by_hash = NULL;
  symtab_fini(&db->syms);
  nn__tsdb_index_fini(&db->idx);
  free(db->alias_keys);
  free(db->alias_vals);
}

/* ---- WAL replay ---- */

static struct nn__tsdb_series *alias_get(const struct nn_tsdb *db, uint64_t ref)
{
  if (!db->alias_keys)
    return NULL;
  for (size_t i = mix(ref) & db->alias_mask; db->alias_keys[i]; i = (i + 1) & db->alias_mask)
    if (db->alias_keys[i] == ref)
      return db->alias_vals[i];
  return NULL;
}

static int alias_put(struct nn_tsdb *db, uint64_t ref, struct nn__tsdb_series *s)
{
  if (!db->alias_keys || (db->nalias + 1) * 2 > db->alias_mask + 1) {
    size_t slots = db->alias_keys ? (db->alias_mask + 1) * 2 : 64;
    uint64_t *k = calloc(slots, sizeof(*k));
    struct nn__tsdb_series **v = calloc(slots, sizeof(*v));
    if (!k || !v) {
      free(k);
      free(v);
      return NN_ENOMEM;
    }
    for (size_t i = 0; db->alias_keys && i <= db->alias_mask; i++) {
      if (!db->alias_keys[i])
        continue;
      size_t j = mix(db->alias_keys[i]) & (slots - 1);
      while (k[j])
        j = (j + 1) & (slots - 1);
      k[j] = db->alias_keys[i];
      v[j] = db->alias_vals[i];
    }
    free(db->alias_keys);
    free(db->alias_vals);
    db->alias_keys = k;
    db->alias_vals = v;
    db->alias_mask = slots - 1;
  }
  size_t j = mix(ref) & db->alias_mask;
  while (db->alias_keys[j] && db->alias_keys[j] != ref)
    j = (j + 1) & db->alias_mask;
  if (!db->alias_keys[j])
    db->nalias++;
  db->alias_keys[j] = ref;
  db->alias_vals[j] = s;
  return 0;
}

static void on_replay_series(void *ctx, uint64_t ref, const struct nn_label *ls, size_t n)
{
  struct nn_tsdb *db = ctx;
  char err[160];
  bool empty_value = false;
  for (size_t i = 0; i < n; i++)
    empty_value |= !ls[i].value[0];
  if (ref == 0 || ref >= MAX_REF || n == 0 || empty_value ||
      nn_labels_validate(ls, n, err, sizeof(err)) < 0) {
    db->st.replay_dropped++;
    return;
  }
  uint64_t h = labels_hash(ls, n);
  struct nn__tsdb_series *s = nn__tsdb_series_get(db, h, ls, n);
  if (s) {
    /* The same labels under another ref: an earlier record was lost or the series was
     * re-created; samples under either ref belong to this series. */
    if (s->ref != ref && alias_put(db, ref, s) < 0)
      db->st.replay_dropped++;
    return;
  }
  if (nn__tsdb_series_by_ref(db, ref)) {
    db->st.replay_dropped++; /* one ref, two label sets: keep the first */
    return;
  }
  s = nn__tsdb_series_create(db, h, ls, n, ref);
  if (!s) {
    db->st.replay_dropped++;
    return;
  }
  s->flags |= NN__TSDB_SERIES_LOGGED;
}

static void on_replay_sample(void *ctx, uint64_t ref, int64_t t, double v)
{
  struct nn_tsdb *db = ctx;
  /* Refs seen anywhere are never handed out again, even if their series record was
   * lost: orphaned samples must not attach to a new series on the next replay. */
  if (ref < MAX_REF && ref >= db->next_ref)
    db->next_ref = ref + 1;
  struct nn__tsdb_series *s = nn__tsdb_series_by_ref(db, ref);
  if (!s)
    s = alias_get(db, ref);
  if (!s) {
    db->st.replay_dropped++;
    return;
  }
  if (s->last_t != NN__TSDB_NO_T && t <= s->last_t) {
    if (t < s->last_t || memcmp(&v, &s->last_v, sizeof(v)) != 0)
      db->st.replay_dropped++;
    return;
  }
  if (nn__tsdb_series_commit(db, s, t, v) < 0) {
    db->st.replay_dropped++;
    return;
  }
  s->last_t = t;
  s->last_v = v;
  db->st.replay_samples++;
}

static void on_replay_bad_record(void *ctx)
{
  struct nn_tsdb *db = ctx;
  db->st.replay_dropped++;
}

void nn__tsdb_replay_visitor(struct nn_tsdb *db, struct nn__tsdb_wal_visitor *v)
{
  v->ctx = db;
  v->series = on_replay_series;
  v->sample = on_replay_sample;
  v->bad_record = on_replay_bad_record;
}

void nn__tsdb_replay_done(struct nn_tsdb *db)
{
  free(db->alias_keys);
  free(db->alias_vals);
  db->alias_keys = NULL;
  db->alias_vals = NULL;
  db->nalias = 0;
}
