/* SPDX-License-Identifier: Apache-2.0 */
/* Builds the position-keeping YAML tree from libyaml's event stream. All nodes and strings
 * live in one capped pool per document; per-collection child lists are gathered in
 * temporary arrays and copied to the pool at their end, so the pool holds no slack. */
#include "common/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/pool.h"

#define TAG_STR     "tag:yaml.org,2002:str"
#define TAG_NULL    "tag:yaml.org,2002:null"
#define DEPTH_LIMIT 1024

struct doc_impl {
  struct nn_yaml_doc pub;
  struct nn_pool pool;
};

struct anchor {
  struct anchor *next;
  const char *name;
  struct nn_yaml_node *node;
};

struct frame {
  struct nn_yaml_node *node;
  const char *anchor;
  struct nn_yaml_node **v; /* SEQ: items; MAP: key, value, key, value ... */
  size_t n, cap;
};

struct loader {
  struct doc_impl *doc;
  struct nn_pool *pool;
  struct nn_yaml_opts opts;
  struct nn_yaml_error *err;
  const char *name;
  struct frame *frames;
  size_t depth;
  size_t expanded; /* upper bound on the walk size of everything built so far */
  struct anchor **buckets;
  size_t nbuckets, nanchors;
  struct nn_yaml_node **roots;
  size_t nroots, roots_cap;
};

static void set_err(struct loader *L, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_err(struct loader *L, int line, int col, const char *fmt, ...)
{
  if (!L->err)
    return;
  snprintf(L->err->file, sizeof(L->err->file), "%s", L->name);
  L->err->line = line;
  L->err->col = col;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(L->err->msg, sizeof(L->err->msg), fmt, ap);
  va_end(ap);
}

static int oom(struct loader *L, int line, int col)
{
  set_err(L, line, col, "out of memory while loading YAML (document too large?)");
  return NN_ENOMEM;
}

static int grow(void **v, size_t *cap, size_t need, size_t elem)
{
  if (need <= *cap)
    return 0;
  size_t nc = *cap ? *cap * 2 : 8;
  while (nc < need)
    nc *= 2;
  if (nc > SIZE_MAX / elem)
    return NN_ENOMEM;
  void *p = realloc(*v, nc * elem);
  if (!p)
    return NN_ENOMEM;
  *v = p;
  *cap = nc;
  return 0;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
  uint64_t h = UINT64_C(1469598103934665603);
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= UINT64_C(1099511628211);
  }
  return h;
}

static void anchors_clear(struct loader *L)
{
  free(L->buckets);
  L->buckets = NULL;
  L->nbuckets = L->nanchors = 0;
}

static struct nn_yaml_node *anchor_find(struct loader *L, const char *name)
{
  if (!L->nbuckets)
    return NULL;
  uint64_t h = hash_bytes(name, strlen(name));
  for (struct anchor *a = L->buckets[h & (L->nbuckets - 1)]; a; a = a->next)
    if (strcmp(a->name, name) == 0)
      return a->node;
  return NULL;
}

/* A later anchor with the same name replaces the earlier one, as YAML specifies. */
static int anchor_set(struct loader *L, const char *name, struct nn_yaml_node *node)
{
  if (L->nanchors + 1 > L->nbuckets / 2) {
    size_t nb = L->nbuckets ? L->nbuckets * 2 : 16;
    struct anchor **b = calloc(nb, sizeof(*b));
    if (!b)
      return NN_ENOMEM;
    for (size_t i = 0; i < L->nbuckets; i++) {
      struct anchor *a = L->buckets[i];
      while (a) {
        struct anchor *next = a->next;
        uint64_t h = hash_bytes(a->name, strlen(a->name));
        a->next = b[h & (nb - 1)];
        b[h & (nb - 1)] = a;
        a = next;
      }
    }
    free(L->buckets);
    L->buckets = b;
    L->nbuckets = nb;
  }
  uint64_t h = hash_bytes(name, strlen(name));
  for (struct anchor *a = L->buckets[h & (L->nbuckets - 1)]; a; a = a->next) {
    if (strcmp(a->name, name) == 0) {
      a->node = node;
      return 0;
    }
  }
  struct anchor *a = nn_pool_alloc(L->pool, sizeof(*a));
  if (!a)
    return NN_ENOMEM;
  a->name = name;
  a->node = node;
  a->next = L->buckets[h & (L->nbuckets - 1)];
  L->buckets[h & (L->nbuckets - 1)] = a;
  L->nanchors++;
  return 0;
}

static struct nn_yaml_node *new_node(struct loader *L, enum nn_yaml_kind kind, yaml_mark_t m)
{
  struct nn_yaml_node *n = nn_pool_calloc(L->pool, sizeof(*n));
  if (!n)
    return NULL;
  n->kind = kind;
  n->file = L->doc->pub.name;
  n->line = (int)(m.line + 1 > INT32_MAX ? INT32_MAX : m.line + 1);
  n->col = (int)(m.column + 1 > INT32_MAX ? INT32_MAX : m.column + 1);
  n->weight = 1;
  return n;
}

static const char *pool_str(struct loader *L, const yaml_char_t *s)
{
  if (!s)
    return NULL;
  return nn_pool_strndup(L->pool, (const char *)s, strlen((const char *)s));
}

static int count_nodes(struct loader *L, size_t add, int line, int col)
{
  if (add > L->opts.max_nodes || L->expanded > L->opts.max_nodes - add) {
    set_err(L, line, col,
            "document too large: more than %zu nodes (each use of an alias counts in full)",
            L->opts.max_nodes);
    return NN_ELIMIT;
  }
  L->expanded += add;
  return 0;
}

/* Hands a finished node to the open collection, or makes it a document root. */
static int attach(struct loader *L, struct nn_yaml_node *node)
{
  if (L->depth == 0) {
    if (grow((void **)&L->roots, &L->roots_cap, L->nroots + 1, sizeof(*L->roots)) < 0)
      return oom(L, node->line, node->col);
    L->roots[L->nroots++] = node;
    return 0;
  }
  struct frame *f = &L->frames[L->depth - 1];
  if (grow((void **)&f->v, &f->cap, f->n + 1, sizeof(*f->v)) < 0)
    return oom(L, node->line, node->col);
  f->v[f->n++] = node;
  return 0;
}

static bool key_hashable(const struct nn_yaml_node *k)
{
  return k->kind == NN_YAML_SCALAR || k->kind == NN_YAML_NULL;
}

static bool keys_equal(const struct nn_yaml_node *a, const struct nn_yaml_node *b)
{
  return a->scalar_len == b->scalar_len && memcmp(a->scalar, b->scalar, a->scalar_len) == 0;
}

static bool is_merge_key(const struct nn_yaml_node *k)
{
  return k->kind == NN_YAML_SCALAR && !k->quoted && k->scalar_len == 2 &&
         memcmp(k->scalar, "<<", 2) == 0;
}

/* Open-addressing set of key nodes for one map, sized for its final pair count. */
struct keyset {
  const struct nn_yaml_node **slot;
  size_t mask;
};

static const struct nn_yaml_node **keyset_slot(struct keyset *s, const struct nn_yaml_node *k)
{
  size_t i = (size_t)hash_bytes(k->scalar, k->scalar_len) & s->mask;
  while (s->slot[i] && !keys_equal(s->slot[i], k))
    i = (i + 1) & s->mask;
  return &s->slot[i];
}

/* Resolves "<<" merges, rejects duplicate keys and stores the pairs in the pool. */
static int finish_map(struct loader *L, struct frame *f)
{
  struct nn_yaml_node *map = f->node;
  size_t np = f->n / 2, total = 0;
  int rc = 0;
  struct nn_yaml_node **out = NULL;
  struct keyset set = {NULL, 0};

  for (size_t i = 0; i < np; i++) {
    struct nn_yaml_node *k = f->v[2 * i], *v = f->v[2 * i + 1];
    if (!is_merge_key(k)) {
      total++;
      continue;
    }
    if (v->kind == NN_YAML_MAP) {
      total += v->len;
      continue;
    }
    if (v->kind == NN_YAML_SEQ) {
      for (size_t j = 0; j < v->len; j++) {
        if (v->items[j]->kind != NN_YAML_MAP) {
          set_err(L, v->items[j]->line, v->items[j]->col,
                  "merge key \"<<\" needs a map or a sequence of maps, found a %s in the "
                  "sequence",
                  nn_yaml_kind_name(v->items[j]->kind));
          return NN_EINVAL;
        }
        total += v->items[j]->len;
      }
      continue;
    }
    set_err(L, v->line, v->col, "merge key \"<<\" needs a map or a sequence of maps, not a %s",
            nn_yaml_kind_name(v->kind));
    return NN_EINVAL;
  }

  size_t cap = 16;
  while (cap < total * 2)
    cap *= 2;
  set.slot = calloc(cap, sizeof(*set.slot));
  out = malloc((total ? total : 1) * 2 * sizeof(*out));
  if (!set.slot || !out) {
    rc = oom(L, map->line, map->col);
    goto out;
  }
  set.mask = cap - 1;

  size_t n = 0;
  for (size_t i = 0; i < np; i++) {
    struct nn_yaml_node *k = f->v[2 * i], *v = f->v[2 * i + 1];
    if (is_merge_key(k))
      continue;
    if (key_hashable(k)) {
      const struct nn_yaml_node **s = keyset_slot(&set, k);
      if (*s) {
        set_err(L, k->line, k->col, "duplicate key \"%.*s\" in map (first defined at line %d:%d)",
                (int)(k->scalar_len > 200 ? 200 : k->scalar_len), k->scalar, (*s)->line, (*s)->col);
        rc = NN_EINVAL;
        goto out;
      }
      *s = k;
    }
    out[2 * n] = k;
    out[2 * n + 1] = v;
    n++;
  }
  /* Explicit keys win over merged ones, and earlier merge sources over later ones. */
  for (size_t i = 0; i < np; i++) {
    struct nn_yaml_node *k = f->v[2 * i], *v = f->v[2 * i + 1];
    if (!is_merge_key(k))
      continue;
    size_t nsrc = v->kind == NN_YAML_MAP ? 1 : v->len;
    for (size_t j = 0; j < nsrc; j++) {
      const struct nn_yaml_node *src = v->kind == NN_YAML_MAP ? v : v->items[j];
      for (size_t p = 0; p < src->len; p++) {
        struct nn_yaml_node *sk = src->keys[p];
        if (key_hashable(sk)) {
          const struct nn_yaml_node **s = keyset_slot(&set, sk);
          if (*s)
            continue;
          *s = sk;
        }
        out[2 * n] = sk;
        out[2 * n + 1] = src->items[p];
        n++;
      }
    }
  }

  map->len = n;
  map->keys = nn_pool_alloc(L->pool, (n ? n : 1) * sizeof(*map->keys));
  map->items = nn_pool_alloc(L->pool, (n ? n : 1) * sizeof(*map->items));
  if (!map->keys || !map->items) {
    rc = oom(L, map->line, map->col);
    goto out;
  }
  map->weight = 1;
  map->height = 1;
  for (size_t i = 0; i < n; i++) {
    map->keys[i] = out[2 * i];
    map->items[i] = out[2 * i + 1];
    map->weight += out[2 * i]->weight + out[2 * i + 1]->weight;
    if (out[2 * i]->height + 1 > map->height)
      map->height = out[2 * i]->height + 1;
    if (out[2 * i + 1]->height + 1 > map->height)
      map->height = out[2 * i + 1]->height + 1;
  }
out:
  free(set.slot);
  free(out);
  return rc;
}

static int finish_seq(struct loader *L, struct frame *f)
{
  struct nn_yaml_node *seq = f->node;
  seq->len = f->n;
  seq->items = nn_pool_alloc(L->pool, (f->n ? f->n : 1) * sizeof(*seq->items));
  if (!seq->items)
    return oom(L, seq->line, seq->col);
  seq->weight = 1;
  seq->height = 1;
  for (size_t i = 0; i < f->n; i++) {
    seq->items[i] = f->v[i];
    seq->weight += f->v[i]->weight;
    if (f->v[i]->height + 1 > seq->height)
      seq->height = f->v[i]->height + 1;
  }
  return 0;
}

static const char *explicit_tag(const yaml_char_t *tag)
{
  /* "!" is the non-specific tag: it only says "not plain-resolved", nothing useful here. */
  if (!tag || strcmp((const char *)tag, "!") == 0)
    return NULL;
  return (const char *)tag;
}

static bool is_null_text(const char *s, size_t n)
{
  return n == 0 || (n == 1 && s[0] == '~') ||
         (n == 4 &&
          (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 || memcmp(s, "NULL", 4) == 0));
}

static int on_scalar(struct loader *L, yaml_event_t *ev)
{
  struct nn_yaml_node *n = new_node(L, NN_YAML_SCALAR, ev->start_mark);
  if (!n)
    return oom(L, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1);
  int rc = count_nodes(L, 1, n->line, n->col);
  if (rc < 0)
    return rc;
  const char *tag = explicit_tag(ev->data.scalar.tag);
  n->scalar = nn_pool_strndup(L->pool, (const char *)ev->data.scalar.value, ev->data.scalar.length);
  if (!n->scalar || (tag && !(n->tag = pool_str(L, (const yaml_char_t *)tag))))
    return oom(L, n->line, n->col);
  n->scalar_len = ev->data.scalar.length;
  n->quoted =
      ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (tag && strcmp(tag, TAG_STR) == 0);
  if ((tag && strcmp(tag, TAG_NULL) == 0) ||
      (!tag && !n->quoted && is_null_text(n->scalar, n->scalar_len)))
    n->kind = NN_YAML_NULL;
  if (ev->data.scalar.anchor) {
    const char *a = pool_str(L, ev->data.scalar.anchor);
    if (!a || anchor_set(L, a, n) < 0)
      return oom(L, n->line, n->col);
  }
  return attach(L, n);
}

static int on_alias(struct loader *L, yaml_event_t *ev)
{
  int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
  const char *name = (const char *)ev->data.alias.anchor;
  struct nn_yaml_node *target = anchor_find(L, name);
  if (!target) {
    /* Anchors are registered when their node ends, so this also catches an alias inside
     * its own anchor, which would make the tree cyclic. */
    set_err(L, line, col,
            "alias *%.200s refers to no anchor defined before it (or to a node that contains "
            "the alias)",
            name);
    return NN_EINVAL;
  }
  if (L->depth + target->height > L->opts.max_depth) {
    set_err(L, line, col, "nesting deeper than %zu levels (through alias *%.200s)",
            L->opts.max_depth, name);
    return NN_ELIMIT;
  }
  int rc = count_nodes(L, target->weight, line, col);
  if (rc < 0)
    return rc;
  return attach(L, target);
}

static int on_start(struct loader *L, yaml_event_t *ev, enum nn_yaml_kind kind)
{
  int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
  if (L->depth + 1 > L->opts.max_depth) {
    set_err(L, line, col, "nesting deeper than %zu levels", L->opts.max_depth);
    return NN_ELIMIT;
  }
  struct nn_yaml_node *n = new_node(L, kind, ev->start_mark);
  if (!n)
    return oom(L, line, col);
  int rc = count_nodes(L, 1, line, col);
  if (rc < 0)
    return rc;
  const yaml_char_t *anchor, *tag;
  if (kind == NN_YAML_MAP) {
    anchor = ev->data.mapping_start.anchor;
    tag = ev->data.mapping_start.tag;
  } else {
    anchor = ev->data.sequence_start.anchor;
    tag = ev->data.sequence_start.tag;
  }
  const char *t = explicit_tag(tag);
  if (t && !(n->tag = pool_str(L, (const yaml_char_t *)t)))
    return oom(L, line, col);
  struct frame *f = &L->frames[L->depth++];
  memset(f, 0, sizeof(*f));
  f->node = n;
  if (anchor && !(f->anchor = pool_str(L, anchor)))
    return oom(L, line, col);
  return 0;
}

static int on_end(struct loader *L)
{
  struct frame *f = &L->frames[L->depth - 1];
  int rc = f->node->kind == NN_YAML_MAP ? finish_map(L, f) : finish_seq(L, f);
  free(f->v);
  f->v = NULL;
  L->depth--;
  if (rc < 0)
    return rc;
  if (f->anchor && anchor_set(L, f->anchor, f->node) < 0)
    return oom(L, f->node->line, f->node->col);
  return attach(L, f->node);
}

static int parser_error(struct loader *L, yaml_parser_t *p)
{
  if (p->error == YAML_MEMORY_ERROR)
    return oom(L, 0, 0);
  const char *problem = p->problem ? p->problem : "syntax error";
  if (p->error == YAML_READER_ERROR) {
    set_err(L, 0, 0, "%s (at byte offset %zu)", problem, p->problem_offset);
    return NN_EINVAL;
  }
  if (p->context)
    set_err(L, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1, "%s %s (line %d)",
            problem, p->context, (int)p->context_mark.line + 1);
  else
    set_err(L, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1, "%s", problem);
  return NN_EINVAL;
}

static void opts_resolve(struct nn_yaml_opts *o, const struct nn_yaml_opts *in)
{
  if (in)
    *o = *in;
  else
    memset(o, 0, sizeof(*o));
  if (!o->max_bytes)
    o->max_bytes = NN_YAML_DEFAULT_MAX_BYTES;
  if (!o->max_depth)
    o->max_depth = NN_YAML_DEFAULT_MAX_DEPTH;
  if (o->max_depth > DEPTH_LIMIT)
    o->max_depth = DEPTH_LIMIT;
  if (!o->max_nodes)
    o->max_nodes = NN_YAML_DEFAULT_MAX_NODES;
}

void nn_yaml_doc_destroy(struct nn_yaml_doc *doc)
{
  if (!doc)
    return;
  struct doc_impl *d = (struct doc_impl *)doc;
  free(d->pub.roots);
  nn_pool_fini(&d->pool);
  free(d);
}

int nn_yaml_load_string_opts(const char *name, const char *text, size_t len,
                             const struct nn_yaml_opts *opts, struct nn_yaml_doc **out,
                             struct nn_yaml_error *err)
{
  struct loader L;
  memset(&L, 0, sizeof(L));
  yaml_parser_t parser;
  bool parser_ok = false;
  int rc = 0;
  size_t ndocs = 0;

  *out = NULL;
  if (err)
    memset(err, 0, sizeof(*err));
  L.err = err;
  L.name = name ? name : "<string>";
  opts_resolve(&L.opts, opts);
  if (len > L.opts.max_bytes) {
    set_err(&L, 0, 0, "YAML input is %zu bytes, more than the limit of %zu", len, L.opts.max_bytes);
    return NN_ETOOBIG;
  }
  L.doc = calloc(1, sizeof(*L.doc));
  L.frames = calloc(L.opts.max_depth + 1, sizeof(*L.frames));
  if (!L.doc || !L.frames) {
    rc = oom(&L, 0, 0);
    goto out;
  }
  /* A generous safety net: the node cap is what really bounds memory. */
  nn_pool_init(&L.doc->pool, L.opts.max_nodes * 256 + L.opts.max_bytes * 2 + (1u << 20));
  L.pool = &L.doc->pool;
  if (!(L.doc->pub.name = nn_pool_strndup(L.pool, L.name, strlen(L.name)))) {
    rc = oom(&L, 0, 0);
    goto out;
  }
  if (!yaml_parser_initialize(&parser)) {
    rc = oom(&L, 0, 0);
    goto out;
  }
  parser_ok = true;
  yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""), text ? len : 0);

  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) {
      rc = parser_error(&L, &parser);
      goto out;
    }
    bool done = false;
    switch (ev.type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT: break;
    case YAML_STREAM_END_EVENT: done = true; break;
    case YAML_DOCUMENT_START_EVENT:
      if (ndocs++ > 0 && !(L.opts.flags & NN_YAML_MULTI_DOC)) {
        set_err(&L, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                "a second YAML document starts here; this file must hold exactly one");
        rc = NN_EINVAL;
      }
      anchors_clear(&L); /* anchors do not cross documents */
      break;
    case YAML_SCALAR_EVENT: rc = on_scalar(&L, &ev); break;
    case YAML_ALIAS_EVENT: rc = on_alias(&L, &ev); break;
    case YAML_SEQUENCE_START_EVENT: rc = on_start(&L, &ev, NN_YAML_SEQ); break;
    case YAML_MAPPING_START_EVENT: rc = on_start(&L, &ev, NN_YAML_MAP); break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: rc = on_end(&L); break;
    }
    yaml_event_delete(&ev);
    if (rc < 0)
      goto out;
    if (done)
      break;
  }

  struct nn_yaml_doc *d = &L.doc->pub;
  if (L.nroots == 0) {
    yaml_mark_t m = {0, 0, 0};
    struct nn_yaml_node *empty = new_node(&L, NN_YAML_NULL, m);
    if (!empty || !(empty->scalar = nn_pool_strndup(L.pool, "", 0))) {
      rc = oom(&L, 0, 0);
      goto out;
    }
    empty->weight = 1;
    d->root = empty;
  } else {
    d->root = L.roots[0];
    d->roots = L.roots;
    d->nroots = L.nroots;
    L.roots = NULL;
  }
  *out = d;
  L.doc = NULL;

out:
  if (parser_ok)
    yaml_parser_delete(&parser);
  while (L.depth > 0)
    free(L.frames[--L.depth].v);
  free(L.frames);
  free(L.roots);
  anchors_clear(&L);
  if (L.doc)
    nn_yaml_doc_destroy(&L.doc->pub);
  return rc;
}

int nn_yaml_load_string(const char *name, const char *text, size_t len, struct nn_yaml_doc **out,
                        struct nn_yaml_error *err)
{
  return nn_yaml_load_string_opts(name, text, len, NULL, out, err);
}

int nn_yaml_load_file_opts(const char *path, const struct nn_yaml_opts *opts,
                           struct nn_yaml_doc **out, struct nn_yaml_error *err)
{
  struct nn_yaml_opts o;
  struct nn_buf b;
  int rc = 0, fd = -1;
  char chunk[65536];

  *out = NULL;
  if (err)
    memset(err, 0, sizeof(*err));
  opts_resolve(&o, opts);
  nn_buf_init(&b, o.max_bytes);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = NN_ERRNO(errno);
    goto io_err;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    rc = NN_ERRNO(errno);
    goto io_err;
  }
  if (S_ISDIR(st.st_mode)) {
    rc = NN_ERRNO(EISDIR);
    goto io_err;
  }
  for (;;) {
    ssize_t r = read(fd, chunk, sizeof(chunk));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rc = NN_ERRNO(errno);
      goto io_err;
    }
    if (r == 0)
      break;
    if ((rc = nn_buf_append(&b, chunk, (size_t)r)) < 0) {
      if (err) {
        snprintf(err->file, sizeof(err->file), "%s", path);
        snprintf(err->msg, sizeof(err->msg), "file is larger than the limit of %zu bytes",
                 o.max_bytes);
      }
      goto out;
    }
  }
  rc = nn_yaml_load_string_opts(path, b.data ? b.data : "", b.len, &o, out, err);
  goto out;

io_err:
  if (err) {
    snprintf(err->file, sizeof(err->file), "%s", path);
    snprintf(err->msg, sizeof(err->msg), "cannot read file: %s", nn_strerror(rc));
  }
out:
  if (fd >= 0)
    close(fd);
  nn_buf_fini(&b);
  return rc;
}

int nn_yaml_load_file(const char *path, struct nn_yaml_doc **out, struct nn_yaml_error *err)
{
  return nn_yaml_load_file_opts(path, NULL, out, err);
}

const struct nn_yaml_node *nn_yaml_map_getn(const struct nn_yaml_node *map, const char *key,
                                            size_t keylen)
{
  if (!map || map->kind != NN_YAML_MAP)
    return NULL;
  for (size_t i = 0; i < map->len; i++) {
    const struct nn_yaml_node *k = map->keys[i];
    if ((k->kind == NN_YAML_SCALAR || k->kind == NN_YAML_NULL) && k->scalar_len == keylen &&
        memcmp(k->scalar, key, keylen) == 0)
      return map->items[i];
  }
  return NULL;
}

const struct nn_yaml_node *nn_yaml_map_get(const struct nn_yaml_node *map, const char *key)
{
  return nn_yaml_map_getn(map, key, strlen(key));
}

const struct nn_yaml_node *nn_yaml_map_key(const struct nn_yaml_node *map, size_t i)
{
  if (!map || map->kind != NN_YAML_MAP || i >= map->len)
    return NULL;
  return map->keys[i];
}

const struct nn_yaml_node *nn_yaml_map_value(const struct nn_yaml_node *map, size_t i)
{
  if (!map || map->kind != NN_YAML_MAP || i >= map->len)
    return NULL;
  return map->items[i];
}

const struct nn_yaml_node *nn_yaml_seq_item(const struct nn_yaml_node *seq, size_t i)
{
  if (!seq || seq->kind != NN_YAML_SEQ || i >= seq->len)
    return NULL;
  return seq->items[i];
}

size_t nn_yaml_len(const struct nn_yaml_node *node)
{
  return node && (node->kind == NN_YAML_MAP || node->kind == NN_YAML_SEQ) ? node->len : 0;
}

bool nn_yaml_scalar_eq(const struct nn_yaml_node *node, const char *s)
{
  if (!node || (node->kind != NN_YAML_SCALAR && node->kind != NN_YAML_NULL))
    return false;
  size_t n = strlen(s);
  return node->scalar_len == n && memcmp(node->scalar, s, n) == 0;
}

const char *nn_yaml_kind_name(enum nn_yaml_kind kind)
{
  switch (kind) {
  case NN_YAML_NULL: return "null";
  case NN_YAML_SCALAR: return "scalar";
  case NN_YAML_MAP: return "map";
  case NN_YAML_SEQ: return "sequence";
  }
  return "unknown";
}

int nn_yaml_error_format(const struct nn_yaml_error *err, char *buf, size_t len)
{
  if (err->line > 0)
    return snprintf(buf, len, "%s:%d:%d: %s", err->file, err->line, err->col, err->msg);
  if (err->file[0])
    return snprintf(buf, len, "%s: %s", err->file, err->msg);
  return snprintf(buf, len, "%s", err->msg);
}
