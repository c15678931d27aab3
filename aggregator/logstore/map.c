/* SPDX-License-Identifier: Apache-2.0 */
/* A small open-addressing hash map (linear probing, backward-shift deletion) from byte
 * strings to pointers, used for tenants, streams, the label index and idempotency keys. */
#include <stdlib.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"

static uint64_t hash_of(const char *key, size_t klen)
{
  return XXH3_64bits(key, klen);
}

static size_t find(const struct nn__ls_map *m, const char *key, size_t klen, uint64_t h)
{
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const struct nn__ls_slot *sl = &m->slots[i];
    if (!sl->key)
      return i;
    if (sl->hash == h && sl->klen == klen && memcmp(sl->key, key, klen) == 0)
      return i;
  }
}

void *nn__logstore_map_get(const struct nn__ls_map *m, const char *key, size_t klen)
{
  if (!m->cap)
    return NULL;
  size_t i = find(m, key, klen, hash_of(key, klen));
  return m->slots[i].key ? m->slots[i].val : NULL;
}

static int grow(struct nn__ls_map *m)
{
  size_t ncap = m->cap ? m->cap * 2 : 16;
  struct nn__ls_slot *ns = calloc(ncap, sizeof(*ns));
  if (!ns)
    return NN_ENOMEM;
  struct nn__ls_map nm = {ns, ncap, m->n};
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key)
      ns[find(&nm, m->slots[i].key, m->slots[i].klen, m->slots[i].hash)] = m->slots[i];
  free(m->slots);
  *m = nm;
  return 0;
}

int nn__logstore_map_put(struct nn__ls_map *m, const char *key, size_t klen, void *val)
{
  /* Load factor at most 3/4 keeps probe sequences short. */
  if ((m->n + 1) * 4 > m->cap * 3) {
    int rc = grow(m);
    if (rc < 0)
      return rc;
  }
  uint64_t h = hash_of(key, klen);
  size_t i = find(m, key, klen, h);
  if (!m->slots[i].key)
    m->n++;
  m->slots[i] = (struct nn__ls_slot){key, klen, h, val};
  return 0;
}

void *nn__logstore_map_del(struct nn__ls_map *m, const char *key, size_t klen)
{
  if (!m->cap)
    return NULL;
  size_t mask = m->cap - 1;
  size_t i = find(m, key, klen, hash_of(key, klen));
  if (!m->slots[i].key)
    return NULL;
  void *val = m->slots[i].val;
  /* Backward-shift: move later members of the probe run into the hole so lookups never
   * need tombstones. */
  size_t j = i;
  for (;;) {
    m->slots[i].key = NULL;
    for (;;) {
      j = (j + 1) & mask;
      if (!m->slots[j].key)
        goto done;
      size_t home = m->slots[j].hash & mask;
      /* Move j into i unless its home lies cyclically in (i, j]. */
      if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
        break;
    }
    m->slots[i] = m->slots[j];
    i = j;
  }
done:
  m->n--;
  return val;
}

void nn__logstore_map_fini(struct nn__ls_map *m)
{
  free(m->slots);
  memset(m, 0, sizeof(*m));
}
