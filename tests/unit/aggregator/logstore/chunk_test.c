/* SPDX-License-Identifier: Apache-2.0 */
/* Chunk records and bodies, CRC32C and the private hash map of the log store. The seed
 * corpus of log_chunk_decode_fuzz was written by an independent encoder following
 * docs/format/logstore.md, so decoding it checks the spec against the code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"

static void crc32c_matches_known_vectors(void **state)
{
  assert_int_equal(nn__logstore_crc32c(0, "123456789", 9), 0xE3069283u);
  uint8_t zeros[32] = {0};
  assert_int_equal(nn__logstore_crc32c(0, zeros, 32), 0x8A9136AAu);
  /* Incremental equals one-shot, across the 8-byte stride. */
  const char *s = "The quick brown fox jumps over the lazy dog";
  uint32_t one = nn__logstore_crc32c(0, s, strlen(s));
  uint32_t inc = nn__logstore_crc32c(nn__logstore_crc32c(0, s, 13), s + 13, strlen(s) - 13);
  assert_int_equal(one, inc);
  assert_int_equal(one, 0x22620404u);
}

static size_t read_seed(const char *name, uint8_t *buf, size_t cap)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/log_chunk_decode_fuzz/%s", NN_SOURCE_DIR,
           name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

static void chunk_record_from_the_spec_decodes(void **state)
{
  static uint8_t buf[4096];
  size_t n = read_seed("two_records", buf, sizeof(buf));
  struct nn__ls_chunk_rec rec;
  size_t used;
  assert_int_equal(nn__logstore_chunk_rec_decode(buf, n, &rec, &used), 0);
  assert_true(used < n);
  assert_int_equal(rec.tenant_len, 4);
  assert_memory_equal(rec.tenant, "fake", 4);
  assert_memory_equal(rec.labels, "{app=\"api\", env=\"prod\"}", rec.labels_len);
  assert_int_equal(rec.entries, 20);
  assert_int_equal(rec.max_seq, 7);
  struct nn_buf raw;
  nn_buf_init(&raw, LS_MAX_CHUNK_RAW);
  assert_int_equal(nn__logstore_chunk_decompress(rec.data, rec.len, rec.raw_len, &raw), 0);
  struct nn__ls_body_iter it = {(const uint8_t *)raw.data, raw.len, 0, 0, false};
  struct nn__ls_ent e;
  int k = 0;
  while (nn__logstore_body_next(&it, &e) == 1) {
    char want[64];
    snprintf(want, sizeof(want), "GET /api/v1/users/%d 200", k);
    assert_int_equal(e.len, strlen(want));
    assert_memory_equal(e.line, want, e.len);
    assert_int_equal(e.ts, rec.min_t + k * INT64_C(1000000000));
    k++;
  }
  assert_int_equal(k, 20);
  /* The second record, with structured metadata. */
  struct nn__ls_chunk_rec rec2;
  size_t used2;
  assert_int_equal(nn__logstore_chunk_rec_decode(buf + used, n - used, &rec2, &used2), 0);
  assert_int_equal(used + used2, n);
  assert_int_equal(nn__logstore_chunk_decompress(rec2.data, rec2.len, rec2.raw_len, &raw), 0);
  it = (struct nn__ls_body_iter){(const uint8_t *)raw.data, raw.len, 0, 0, false};
  assert_int_equal(nn__logstore_body_next(&it, &e), 1);
  assert_true(e.mlen > 1);
  assert_non_null(memmem(e.meta, e.mlen, "trace_id", 8));
  nn_buf_fini(&raw);

  /* Every truncation asks for more bytes; every flipped byte is caught. */
  for (size_t cut = 0; cut < used; cut++)
    assert_int_equal(nn__logstore_chunk_rec_decode(buf, cut, &rec, &used2), NN_EAGAIN);
  for (size_t i = 0; i < used; i++) {
    buf[i] ^= 0x20;
    int rc = nn__logstore_chunk_rec_decode(buf, used, &rec, &used2);
    assert_true(rc == NN_ECORRUPT || rc == NN_EAGAIN);
    buf[i] ^= 0x20;
  }
}

static void body_round_trips_unsorted_free_timestamps_and_rejects_garbage(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  int64_t ts[] = {INT64_MIN, -5, 0, 0, 7, INT64_MAX};
  int64_t prev = 0;
  for (size_t i = 0; i < 6; i++) {
    struct nn__ls_ent e = {ts[i], "line", 4, (const uint8_t *)"\0", 1};
    assert_int_equal(nn__logstore_body_put(&b, &prev, &e), 0);
  }
  struct nn__ls_body_iter it = {(const uint8_t *)b.data, b.len, 0, 0, false};
  struct nn__ls_ent e;
  for (size_t i = 0; i < 6; i++) {
    assert_int_equal(nn__logstore_body_next(&it, &e), 1);
    assert_int_equal(e.ts, ts[i]);
  }
  assert_int_equal(nn__logstore_body_next(&it, &e), 0);
  /* A truncated body is corrupt, not an end. */
  it = (struct nn__ls_body_iter){(const uint8_t *)b.data, b.len - 1, 0, 0, false};
  int rc;
  while ((rc = nn__logstore_body_next(&it, &e)) == 1)
    ;
  assert_int_equal(rc, NN_ECORRUPT);
  nn_buf_fini(&b);
}

static void map_survives_inserts_and_deletes_against_a_reference(void **state)
{
  struct nn__ls_map m = {0};
  enum { N = 2000 };
  static char keys[N][16];
  static bool present[N];
  unsigned seed = 1;
  for (int round = 0; round < 20000; round++) {
    seed = seed * 1103515245 + 12345;
    int k = (int)((seed >> 8) % N);
    snprintf(keys[k], sizeof(keys[k]), "k%d", k);
    if ((seed >> 4) & 1) {
      assert_int_equal(nn__logstore_map_put(&m, keys[k], strlen(keys[k]), keys[k]), 0);
      present[k] = true;
    } else {
      void *v = nn__logstore_map_del(&m, keys[k], strlen(keys[k]));
      assert_true(present[k] ? v == keys[k] : v == NULL);
      present[k] = false;
    }
  }
  size_t n = 0;
  for (int k = 0; k < N; k++) {
    if (!keys[k][0])
      continue;
    void *v = nn__logstore_map_get(&m, keys[k], strlen(keys[k]));
    assert_true(present[k] ? v == keys[k] : v == NULL);
    n += present[k];
  }
  assert_int_equal(m.n, n);
  nn__logstore_map_fini(&m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(crc32c_matches_known_vectors),
      cmocka_unit_test(chunk_record_from_the_spec_decodes),
      cmocka_unit_test(body_round_trips_unsorted_free_timestamps_and_rejects_garbage),
      cmocka_unit_test(map_survives_inserts_and_deletes_against_a_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
