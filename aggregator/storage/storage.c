/* SPDX-License-Identifier: Apache-2.0 */
/* Label matchers over PCRE2, anchored as Prometheus anchors RE2 regexes. */
#include "aggregator/storage/storage.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"

/* Compiled regexes are shared by pattern (reference counted): 10,000 SLO queries with
 * code=~"5.." hold one compiled and JIT-compiled regex, not 10,000 cold copies. The code
 * is read-only once compiled (pcre2 allows matching it from several threads, each matcher
 * has its own match data); the table is only touched by init and fini, under a lock. */
#define RE_BUCKETS 1024
struct re_entry {
  struct re_entry *next;
  pcre2_code *re;
  size_t refs;
  char src[]; /* the matcher's value */
};
static struct re_entry *re_table[RE_BUCKETS];
static pthread_mutex_t re_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t re_bucket(const char *src)
{
  uint64_t h = 14695981039346656037ULL;
  for (const unsigned char *p = (const unsigned char *)src; *p; p++)
    h = (h ^ *p) * 1099511628211ULL;
  return (size_t)(h % RE_BUCKETS);
}

/* A shared compiled regex for value, or NULL with the error code and offset set when it does
 * not compile (error code 0: out of memory). */
static pcre2_code *re_acquire(const char *value, int *ec, PCRE2_SIZE *eo)
{
  size_t bkt = re_bucket(value);
  pthread_mutex_lock(&re_mu);
  for (struct re_entry *e = re_table[bkt]; e; e = e->next) {
    if (!strcmp(e->src, value)) {
      e->refs++;
      pthread_mutex_unlock(&re_mu);
      return e->re;
    }
  }
  pthread_mutex_unlock(&re_mu);
  *ec = 0;
  struct nn_buf b;
  nn_buf_init(&b, strlen(value) + 16);
  if (nn_buf_printf(&b, "^(?:%s)$", value) < 0) {
    nn_buf_fini(&b);
    return NULL;
  }
  /* DOTALL: RE2 in Prometheus is compiled with (?s), so '.' matches newlines. */
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)b.data, b.len, PCRE2_UTF | PCRE2_DOTALL, ec, eo, NULL);
  nn_buf_fini(&b);
  if (!re)
    return NULL;
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
  size_t len = strlen(value);
  struct re_entry *ne = malloc(sizeof(*ne) + len + 1);
  if (!ne) {
    pcre2_code_free(re);
    *ec = 0;
    return NULL;
  }
  memcpy(ne->src, value, len + 1);
  ne->refs = 1;
  ne->re = re;
  pthread_mutex_lock(&re_mu);
  /* Compiled without the lock: another thread may have added the same pattern since. */
  for (struct re_entry *e = re_table[bkt]; e; e = e->next) {
    if (!strcmp(e->src, value)) {
      e->refs++;
      pthread_mutex_unlock(&re_mu);
      pcre2_code_free(re);
      free(ne);
      return e->re;
    }
  }
  ne->next = re_table[bkt];
  re_table[bkt] = ne;
  pthread_mutex_unlock(&re_mu);
  return re;
}

static void re_release(const char *value, pcre2_code *re)
{
  size_t bkt = re_bucket(value);
  pthread_mutex_lock(&re_mu);
  for (struct re_entry **pp = &re_table[bkt]; *pp; pp = &(*pp)->next) {
    struct re_entry *e = *pp;
    if (e->re != re)
      continue;
    if (--e->refs == 0) {
      *pp = e->next;
      pcre2_code_free(e->re);
      free(e);
    }
    break;
  }
  pthread_mutex_unlock(&re_mu);
}

int nn_matcher_init(struct nn_matcher *m, enum nn_match_type type, const char *name,
                    const char *value, char *err, size_t errlen)
{
  memset(m, 0, sizeof(*m));
  m->type = type;
  m->name = strdup(name);
  m->value = strdup(value);
  if (!m->name || !m->value) {
    nn_matcher_fini(m);
    return NN_ENOMEM;
  }
  if (type == NN_MATCH_RE || type == NN_MATCH_NRE) {
    int ec = 0;
    PCRE2_SIZE eo = 0;
    pcre2_code *re = re_acquire(value, &ec, &eo);
    if (!re && ec == 0) {
      nn_matcher_fini(m);
      return NN_ENOMEM;
    }
    if (!re) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(ec, msg, sizeof(msg));
      snprintf(err, errlen, "error parsing regexp \"%s\": %s at offset %zu", value,
               (const char *)msg, eo > 4 ? (size_t)eo - 4 : 0);
      nn_matcher_fini(m);
      return NN_EINVAL;
    }
    m->re = re;
    m->md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!m->md) {
      nn_matcher_fini(m);
      return NN_ENOMEM;
    }
  }
  /* Selects ask this for every matcher of every query: a regex's test runs once here. */
  m->empty = nn_matcher_matches(m, "");
  return 0;
}

void nn_matcher_fini(struct nn_matcher *m)
{
  if (m->md)
    pcre2_match_data_free(m->md);
  if (m->re)
    re_release(m->value, m->re);
  free(m->name);
  free(m->value);
  memset(m, 0, sizeof(*m));
}

bool nn_matcher_matches(const struct nn_matcher *m, const char *value)
{
  switch (m->type) {
  case NN_MATCH_EQ: return strcmp(m->value, value) == 0;
  case NN_MATCH_NE: return strcmp(m->value, value) != 0;
  case NN_MATCH_RE:
  case NN_MATCH_NRE: {
    int r =
        pcre2_match(m->re, (PCRE2_SPTR)value, strlen(value), 0, PCRE2_NO_UTF_CHECK, m->md, NULL);
    bool hit = r >= 0;
    return m->type == NN_MATCH_RE ? hit : !hit;
  }
  }
  return false;
}

bool nn_matcher_matches_empty(const struct nn_matcher *m)
{
  return m->empty;
}

bool nn_stale_nan(double v)
{
  uint64_t bits;
  memcpy(&bits, &v, sizeof(bits));
  return bits == NN_STALE_NAN_BITS;
}

double nn_stale_nan_value(void)
{
  uint64_t bits = NN_STALE_NAN_BITS;
  double v;
  memcpy(&v, &bits, sizeof(v));
  return v;
}

void nn_strlist_free(struct nn_strlist *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

int nn_querier_select_stream(const struct nn_querier *q, const struct nn_matcher *ms, size_t nms,
                             const struct nn_select_hints *hints, nn_series_cb fn, void *ud)
{
  if (q->select_stream)
    return q->select_stream(q->ctx, ms, nms, hints, fn, ud);
  struct nn_select_hints h = {INT64_MIN, INT64_MAX, 0};
  if (hints) {
    h = *hints;
    h.max_samples = 0;
  }
  struct nn_series_set set;
  int rc = q->select(q->ctx, ms, nms, &h, &set);
  if (rc < 0)
    return rc;
  for (size_t i = 0; i < set.n && rc >= 0; i++)
    rc = fn(ud, &set.series[i]);
  set.release(&set);
  return rc < 0 ? rc : 0;
}
