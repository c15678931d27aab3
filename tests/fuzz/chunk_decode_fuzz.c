/* SPDX-License-Identifier: Apache-2.0 */
/* Iterates an arbitrary byte string as a Gorilla XOR chunk, and as a block chunk record
 * (encoding byte, then XOR or packed): the decoder must stop cleanly, whatever it decodes
 * must re-encode (XOR, and packed) and decode to the same bits, and resuming from its
 * state after any sample must yield the same rest. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"

#define MAX_SAMPLES 512

/* The samples of a block chunk record, packed again, must decode to the same bits. */
static void packed_round_trip(const uint8_t *data, size_t size)
{
  static int64_t t[MAX_SAMPLES];
  static double v[MAX_SAMPLES];
  struct nn__tsdb_xor_it it;
  nn__tsdb_bchunk_it_init(&it, 2, data, size);
  size_t n = 0;
  while (n < MAX_SAMPLES && nn__tsdb_xor_it_next(&it)) {
    t[n] = it.t;
    v[n] = nn__tsdb_xor_it_value(&it);
    n++;
  }
  if (it.err && it.err != NN_ECORRUPT)
    abort();
  if (n == 0)
    return;
  struct nn_buf b;
  nn_buf_init(&b, 1 << 24);
  if (nn__tsdb_packed_encode(t, v, n, &b) != 0)
    abort();
  struct nn__tsdb_xor_it back;
  nn__tsdb_packed_it_init(&back, (const uint8_t *)b.data, b.len);
  for (size_t i = 0; i < n; i++) {
    if (!nn__tsdb_xor_it_next(&back) || back.t != t[i] ||
        memcmp(&back.v, &v[i], sizeof(double)) != 0)
      abort();
  }
  if (nn__tsdb_xor_it_next(&back) || back.err)
    abort();
  nn_buf_fini(&b);
}

/* Resumed from its state after any sample (the querier's open-chunk checkpoint), the XOR
 * decoder yields what it yielded from there, and stops the same way. */
static void resume_matches(const uint8_t *data, size_t size)
{
  static struct nn__tsdb_xor_ck ck[MAX_SAMPLES];
  static int64_t t[MAX_SAMPLES];
  static uint64_t v[MAX_SAMPLES];
  struct nn__tsdb_xor_it it;
  nn__tsdb_xor_it_init(&it, data, size);
  size_t n = 0;
  bool more = true;
  while (n < MAX_SAMPLES && (more = nn__tsdb_xor_it_next(&it))) {
    t[n] = it.t;
    v[n] = it.v;
    nn__tsdb_xor_it_save(&it, &ck[n++]);
  }
  if (n == 0)
    return;
  size_t k = size % n;
  struct nn__tsdb_xor_it r;
  nn__tsdb_xor_it_init(&r, data, size);
  if (!nn__tsdb_xor_it_resume(&r, &ck[k]))
    abort();
  for (size_t j = k + 1; j < n; j++)
    if (!nn__tsdb_xor_it_next(&r) || r.t != t[j] || r.v != v[j])
      abort();
  if (!more && (nn__tsdb_xor_it_next(&r) || r.err != it.err))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  packed_round_trip(data, size);
  resume_matches(data, size);
  struct nn__tsdb_xor_it it;
  nn__tsdb_xor_it_init(&it, data, size);
  struct nn__tsdb_xor_app a = {0};
  int64_t t[MAX_SAMPLES];
  uint64_t v[MAX_SAMPLES];
  size_t n = 0;
  while (nn__tsdb_xor_it_next(&it)) {
    if (n < MAX_SAMPLES) {
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
