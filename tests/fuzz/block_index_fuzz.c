/* SPDX-License-Identifier: Apache-2.0 */
/* Opens a block index from arbitrary bytes and, when it validates, walks everything a
 * query can reach: symbols, the postings table, every postings list, every series entry,
 * matcher selection, and chunk reads with the input doubling as a chunks file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"
#include "common/log.h"

static void walk_series(const struct nn__tsdb_bindex *ix, const uint8_t *data, size_t size,
                        const uint64_t *refs, size_t n, struct nn__tsdb_bseries *bs)
{
  for (size_t i = 0; i < n; i++) {
    if (nn__tsdb_bindex_series(ix, refs[i], bs) < 0)
      continue;
    for (uint32_t k = 0; k < 2 * bs->nlabels; k++)
      if (!nn__tsdb_bindex_sym(ix, bs->syms[k]))
        abort(); /* decoded ids are checked against the symbol table */
    for (uint32_t c = 0; c < bs->nchunks; c++) {
      if (bs->chunks[c].maxt < bs->chunks[c].mint)
        abort();
      const uint8_t *p;
      size_t len;
      if (nn__tsdb_bchunk_read(data, size, bs->chunks[c].ref, &p, &len) == 0) {
        struct nn__tsdb_xor_it it;
        nn__tsdb_bchunk_it_init(&it, 2, p, len);
        while (nn__tsdb_xor_it_next(&it))
          ;
      }
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int quiet;
  if (!quiet) {
    nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT);
    quiet = 1;
  }
  /* A private copy, so that reads past the input are caught by ASan. */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy)
    return 0;
  memcpy(copy, data, size);
  struct nn__tsdb_bindex ix;
  struct nn__tsdb_bseries *bs = calloc(1, sizeof(*bs));
  if (!bs || nn__tsdb_bindex_init(&ix, copy, size) < 0)
    goto out;
  for (uint32_t i = 0; i < ix.nsym; i++)
    if (!nn__tsdb_bindex_sym(&ix, i))
      abort();
  uint64_t *refs = NULL;
  size_t n = 0;
  if (nn__tsdb_bindex_select(&ix, NULL, 0, &refs, &n) == 0) {
    for (size_t i = 1; i < n; i++)
      if (refs[i] <= refs[i - 1])
        abort();
    walk_series(&ix, copy, size, refs, n, bs);
    free(refs);
  }
  /* Matchers built from the index's own first strings reach real postings lists. */
  const char *a = ix.nsym ? nn__tsdb_bindex_sym(&ix, 0) : "x";
  const char *b = ix.nsym > 1 ? nn__tsdb_bindex_sym(&ix, ix.nsym - 1) : "y";
  struct nn_matcher ms[3];
  char err[128];
  bool ok = nn_matcher_init(&ms[0], NN_MATCH_EQ, a, b, err, sizeof(err)) == 0;
  if (ok && nn_matcher_init(&ms[1], NN_MATCH_RE, b, ".+", err, sizeof(err)) < 0) {
    nn_matcher_fini(&ms[0]);
    ok = false;
  }
  if (ok) {
    nn_matcher_init(&ms[2], NN_MATCH_NE, a, "", err, sizeof(err));
    for (size_t k = 0; k < 3; k++) {
      if (nn__tsdb_bindex_select(&ix, ms + k, 3 - k, &refs, &n) == 0) {
        walk_series(&ix, copy, size, refs, n, bs);
        free(refs);
      }
    }
    for (int k = 0; k < 3; k++)
      nn_matcher_fini(&ms[k]);
  }
  uint32_t lo, hi, name, value, off;
  for (uint32_t i = 0; i < ix.npairs; i++)
    nn__tsdb_bindex_pair(&ix, i, &name, &value, &off);
  nn__tsdb_bindex_name_range(&ix, a, &lo, &hi);
out:
  if (bs)
    free(bs->chunks);
  free(bs);
  free(copy);
  return 0;
}
