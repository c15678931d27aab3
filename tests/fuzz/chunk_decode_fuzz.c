/* SPDX-License-Identifier: Apache-2.0 */
/* Iterates an arbitrary byte string as a Gorilla XOR chunk: the decoder must stop
 * cleanly, and whatever it decodes must re-encode and decode to the same bits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn__tsdb_xor_it it;
  nn__tsdb_xor_it_init(&it, data, size);
  struct nn__tsdb_xor_app a = {0};
  int64_t t[512];
  uint64_t v[512];
  size_t n = 0;
  while (nn__tsdb_xor_it_next(&it)) {
    if (n < 512) {
      t[n] = it.t;
      v[n] = it.v;
      if (nn__tsdb_xor_append(&a, it.t, nn__tsdb_xor_it_value(&it)) < 0)
        abort();
      n++;
    }
  }
  if (it.err && it.err != NN_ECORRUPT)
    abort();
  struct nn__tsdb_xor_it back;
  nn__tsdb_xor_it_init(&back, a.buf, nn__tsdb_xor_len(&a));
  for (size_t i = 0; i < n; i++) {
    if (!nn__tsdb_xor_it_next(&back) || back.t != t[i] || back.v != v[i])
      abort();
  }
  if (nn__tsdb_xor_it_next(&back) || back.err)
    abort();
  nn__tsdb_xor_free(&a);
  return 0;
}
