/* SPDX-License-Identifier: Apache-2.0 */
/* Bump allocator over a list of chunks. Large requests get a chunk of their own, so one
 * big allocation does not waste the rest of a standard chunk. */
#include "common/pool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_SIZE 16384
#define ALIGN      16
/* The first chunk is small (with its header, a size malloc serves from its per-thread
 * cache) and each next one doubles up to CHUNK_SIZE: a pool that holds a few hundred
 * bytes, as a small query's does, costs no large allocation and free. */
#define FIRST_CHUNK (1024 - 32)

struct nn_pool_chunk {
  struct nn_pool_chunk *next;
  size_t size;
  size_t off;
  _Alignas(ALIGN) unsigned char mem[];
};

void nn_pool_init(struct nn_pool *p, size_t max)
{
  p->chunks = NULL;
  p->used = 0;
  p->max = max;
}

void *nn_pool_alloc(struct nn_pool *p, size_t n)
{
  size_t sz = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  if (sz < n || sz > p->max || p->used > p->max - sz)
    return NULL;
  struct nn_pool_chunk *c = p->chunks;
  if (!c || c->size - c->off < sz) {
    size_t std = !c ? FIRST_CHUNK : c->size >= CHUNK_SIZE / 2 ? CHUNK_SIZE : c->size * 2;
    size_t csz = sz > CHUNK_SIZE / 4 || sz > std ? sz : std;
    struct nn_pool_chunk *nc = malloc(sizeof(*nc) + csz);
    if (!nc)
      return NULL;
    nc->size = csz;
    nc->off = 0;
    if (csz == sz && c) {
      /* A dedicated chunk goes behind the current one, which keeps its free space. */
      nc->next = c->next;
      c->next = nc;
    } else {
      nc->next = c;
      p->chunks = nc;
    }
    c = nc;
  }
  void *r = c->mem + c->off;
  c->off += sz;
  p->used += sz;
  return r;
}

void *nn_pool_calloc(struct nn_pool *p, size_t n)
{
  void *r = nn_pool_alloc(p, n);
  if (r)
    memset(r, 0, n);
  return r;
}

char *nn_pool_strndup(struct nn_pool *p, const char *s, size_t n)
{
  char *r = nn_pool_alloc(p, n + 1);
  if (!r)
    return NULL;
  memcpy(r, s, n);
  r[n] = '\0';
  return r;
}

void nn_pool_clear(struct nn_pool *p)
{
  struct nn_pool_chunk *c = p->chunks;
  while (c) {
    struct nn_pool_chunk *n = c->next;
    free(c);
    c = n;
  }
  p->chunks = NULL;
  p->used = 0;
}
