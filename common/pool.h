/* SPDX-License-Identifier: Apache-2.0 */
/* A per-request memory pool (h2o's h2o_mem_pool_t): many small allocations, one free.
 * The pool has a byte cap, so a hostile request cannot make it grow without bound. */
#ifndef NN_COMMON_POOL_H
#define NN_COMMON_POOL_H

#include <stddef.h>

struct nn_pool_chunk;

struct nn_pool {
  struct nn_pool_chunk *chunks;
  size_t used; /* bytes handed out, padding included */
  size_t max;  /* cap on used; allocations past it return NULL */
};

void nn_pool_init(struct nn_pool *p, size_t max);
/* Returns 16-byte aligned memory that lives until nn_pool_clear, or NULL past the cap. */
void *nn_pool_alloc(struct nn_pool *p, size_t n);
void *nn_pool_calloc(struct nn_pool *p, size_t n);
/* Copies n bytes of s and NUL-terminates them. */
char *nn_pool_strndup(struct nn_pool *p, const char *s, size_t n);
/* Frees everything allocated from the pool; the pool stays usable. */
void nn_pool_clear(struct nn_pool *p);
#define nn_pool_fini nn_pool_clear

#endif
