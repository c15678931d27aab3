/* SPDX-License-Identifier: Apache-2.0 */
/* Gorilla XOR chunks: bit-exact round trips of edge values and random data, the
 * compression a regular series gets, and decoder behaviour on damaged input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"

static uint64_t bits_of(double d)
{
  uint64_t b;
  memcpy(&b, &d, sizeof(b));
  return b;
}

static double from_bits(uint64_t b)
{
  double d;
  memcpy(&d, &b, sizeof(d));
  return d;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Packed-encodes n samples (as blocks do), decodes them back through a block chunk
 * record's encoding byte and checks every bit. Returns the encoded length. */
static size_t packed_round_trip(const int64_t *t, const double *v, size_t n)
{
  struct nn_buf b;
  nn_buf_init(&b, 1 << 24);
  assert_int_equal(nn_buf_appendc(&b, NN__TSDB_ENC_PACKED), 0);
  assert_int_equal(nn__tsdb_packed_encode(t, v, n, &b), 0);
  struct nn__tsdb_xor_it it;
  nn__tsdb_bchunk_it_init(&it, 2, (const uint8_t *)b.data, b.len);
  size_t i = 0;
  while (nn__tsdb_xor_it_next(&it)) {
    assert_true(i < n);
    assert_int_equal(it.t, t[i]);
    assert_int_equal(it.v, bits_of(v[i]));
    i++;
  }
  assert_int_equal(it.err, 0);
  assert_int_equal(i, n);
  size_t len = b.len - 1;
  nn_buf_fini(&b);
  return len;
}

/* Encodes n samples, decodes them back and checks every bit; the same in a packed chunk. */
static void round_trip(const int64_t *t, const double *v, size_t n)
{
  packed_round_trip(t, v, n);
  struct nn__tsdb_xor_app a = {0};
  for (size_t i = 0; i < n; i++)
    assert_int_equal(nn__tsdb_xor_append(&a, t[i], v[i]), 0);
  assert_int_equal(a.n, n);
  struct nn__tsdb_xor_it it;
  nn__tsdb_xor_it_init(&it, a.buf, nn__tsdb_xor_len(&a));
  size_t i = 0;
  while (nn__tsdb_xor_it_next(&it)) {
    assert_true(i < n);
    assert_int_equal(it.t, t[i]);
    assert_int_equal(it.v, bits_of(v[i]));
    i++;
  }
  assert_int_equal(it.err, 0);
  assert_int_equal(i, n);
  /* A closed chunk is shrunk to its exact length and still decodes the same. */
  size_t len;
  uint8_t *closed = nn__tsdb_xor_finish(&a, &len);
  assert_non_null(closed);
  nn__tsdb_xor_it_init(&it, closed, len);
  for (i = 0; nn__tsdb_xor_it_next(&it); i++)
    assert_int_equal(it.v, bits_of(v[i]));
  assert_int_equal(i, n);
  free(closed);
}

static void edge_values_round_trip_bit_exact(void **state)
{
  double v[] = {
      0.0,
      -0.0,
      INFINITY,
      -INFINITY,
      NAN,
      from_bits(NN_STALE_NAN_BITS),
      from_bits(0x7ff8000000000001ULL), /* NaN with a payload */
      from_bits(0xfff0000000000001ULL), /* negative signalling NaN */
      1.0,
      from_bits(1),                     /* smallest subnormal */
      from_bits(0x7fefffffffffffffULL), /* DBL_MAX */
      -1e-300,
      42.0,
      42.0,
      42.5,
      from_bits(NN_STALE_NAN_BITS),
      1.0,
  };
  size_t n = sizeof(v) / sizeof(v[0]);
  int64_t t[sizeof(v) / sizeof(v[0])];
  for (size_t i = 0; i < n; i++)
    t[i] = 1700000000000 + (int64_t)i * 15000;
  round_trip(t, v, n);
}

static void extreme_timestamp_deltas_round_trip(void **state)
{
  int64_t t[] = {
      INT64_MIN, INT64_MIN + 1,  -1,       0, 1, 1 + (1 << 13), 1 + (1 << 13) + (1 << 16), 5000000,
      5000001,   INT64_MAX - 10, INT64_MAX};
  size_t n = sizeof(t) / sizeof(t[0]);
  double v[sizeof(t) / sizeof(t[0])];
  for (size_t i = 0; i < n; i++)
    v[i] = (double)i;
  round_trip(t, v, n);
  /* Deltas of delta right at every bucket edge, both signs. */
  int64_t e[64];
  size_t k = 0;
  e[k++] = 1000000;
  e[k++] = 1000000 + 1000000;
  int64_t delta = 1000000;
  int64_t dods[] = {8192,   -8191,   8193,   -8192,   65536, -65535, 65537, -65536,
                    524288, -524287, 524289, -524288, 1,     -1,     0};
  for (size_t i = 0; i < sizeof(dods) / sizeof(dods[0]); i++) {
    delta += dods[i];
    e[k] = e[k - 1] + delta;
    k++;
  }
  double ev[64];
  for (size_t i = 0; i < k; i++)
    ev[i] = 1.5;
  round_trip(e, ev, k);
}

static void random_values_and_irregular_intervals_round_trip(void **state)
{
  enum { N = 2000 };
  int64_t *t = malloc(N * sizeof(*t));
  double *v = malloc(N * sizeof(*v));
  for (int round = 0; round < 20; round++) {
    int64_t now = (int64_t)(rnd() >> 24) - (1LL << 38);
    for (size_t i = 0; i < N; i++) {
      switch (rnd() % 4) {
      case 0: now += 15000; break;
      case 1: now += 1 + (int64_t)(rnd() % 100000); break;
      case 2: now += 1 + (int64_t)(rnd() % (1ULL << 40)); break;
      default: now += 1; break;
      }
      t[i] = now;
      switch (rnd() % 5) {
      case 0: v[i] = from_bits(rnd()); break; /* any bit pattern, NaNs included */
      case 1: v[i] = (double)(rnd() % 1000); break;
      case 2: v[i] = i ? v[i - 1] : 0; break;
      case 3: v[i] = (double)(rnd() % 1000) / 7.0; break;
      default: v[i] = from_bits(NN_STALE_NAN_BITS); break;
      }
    }
    round_trip(t, v, 120);
    round_trip(t, v, N);
  }
  free(t);
  free(v);
}

static void regular_series_compresses_well(void **state)
{
  struct nn__tsdb_xor_app a = {0};
  double counter = 1000;
  for (int i = 0; i < 120; i++) {
    counter += (double)(i % 3);
    assert_int_equal(nn__tsdb_xor_append(&a, 1700000000000 + i * 15000, counter), 0);
  }
  size_t len = nn__tsdb_xor_len(&a);
  print_message("120 samples of a regular counter: %zu bytes (%.2f B/sample)\n", len,
                (double)len / 120);
  assert_true(len < 120 * 3);
  nn__tsdb_xor_free(&a);
}

/* Scraped counters (integer steps), gauges with two decimals and jittered timestamps:
 * what blocks hold, and what the packed encoding is for. */
static void packed_chunks_beat_xor_on_scraped_data(void **state)
{
  enum { N = 240 };
  int64_t t[N];
  double c[N], g[N];
  double counter = 5000;
  for (int i = 0; i < N; i++) {
    t[i] = 1700000000000 + i * 15000 + (int64_t)(rnd() % 7) - 3;
    counter += (double)(rnd() % 16);
    c[i] = counter;
    g[i] = (double)(int64_t)(rnd() % 100000) / 100.0;
  }
  struct nn__tsdb_xor_app a = {0}, b = {0};
  for (int i = 0; i < N; i++) {
    assert_int_equal(nn__tsdb_xor_append(&a, t[i], c[i]), 0);
    assert_int_equal(nn__tsdb_xor_append(&b, t[i], g[i]), 0);
  }
  size_t pc = packed_round_trip(t, c, N), pg = packed_round_trip(t, g, N);
  print_message("240 jittered samples, counter: XOR %zu B, packed %zu B; gauge: XOR %zu B, "
                "packed %zu B\n",
                nn__tsdb_xor_len(&a), pc, nn__tsdb_xor_len(&b), pg);
  assert_true(pc * 2 < nn__tsdb_xor_len(&a));
  assert_true(pg < nn__tsdb_xor_len(&b));
  /* Perfectly regular timestamps and a constant cost nothing per sample. */
  for (int i = 0; i < N; i++) {
    t[i] = 1700000000000 + i * 15000;
    c[i] = 7;
  }
  assert_true(packed_round_trip(t, c, N) < 24);
  /* One stale marker makes the values XOR-encoded; timestamps stay packed. */
  c[100] = from_bits(NN_STALE_NAN_BITS);
  packed_round_trip(t, c, N);
  /* Outliers (a missed scrape, a counter reset) escape without widening every code. */
  for (int i = 0; i < N; i++)
    c[i] = 1000 + i * 3;
  t[50] += 15000;
  c[120] = 0;
  size_t out = packed_round_trip(t, c, N);
  print_message("regular counter with a gap and a reset: %zu B\n", out);
  assert_true(out < 100); /* two bits a sample, plus the escapes */
  nn__tsdb_xor_free(&a);
  nn__tsdb_xor_free(&b);
}

/* Radix-packed codes of every group size: values drawn from ranges of 1 to 2^52 values,
 * counts that leave a short last group. */
static void packed_radix_groups_round_trip(void **state)
{
  enum { N = 307 };
  int64_t t[N];
  double v[N];
  static const uint64_t ranges[] = {1, 2, 3, 5, 7, 100, 65537, 1ULL << 31, (1ULL << 52) - 3};
  for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
    for (int i = 0; i < N; i++) {
      t[i] = 1700000000000 + i * 5000 + (int64_t)(rnd() % (ranges[r] < 5 ? ranges[r] : 5));
      v[i] = (double)(rnd() % ranges[r]);
    }
    for (size_t n = 1; n <= N; n += 17)
      packed_round_trip(t, v, n);
  }
}

static void damaged_packed_chunks_stop_with_an_error(void **state)
{
  enum { N = 100 };
  int64_t t[N];
  double v[N];
  for (int i = 0; i < N; i++) {
    t[i] = 1700000000000 + i * 10000 + (i % 5);
    v[i] = (double)(i * i) / 10.0;
  }
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  assert_int_equal(nn__tsdb_packed_encode(t, v, N, &b), 0);
  struct nn__tsdb_xor_it it;
  for (size_t cut = 0; cut < b.len; cut++) {
    nn__tsdb_packed_it_init(&it, (const uint8_t *)b.data, cut);
    size_t k = 0;
    while (nn__tsdb_xor_it_next(&it))
      k++;
    assert_true(k < N);
    assert_int_equal(it.err, NN_ECORRUPT);
  }
  /* Every byte flipped in turn: the decoder stops or decodes, never reads past the end. */
  for (size_t at = 0; at < b.len; at++) {
    uint8_t *copy = malloc(b.len);
    memcpy(copy, b.data, b.len);
    copy[at] ^= 0x5a;
    nn__tsdb_packed_it_init(&it, copy, b.len);
    while (nn__tsdb_xor_it_next(&it))
      ;
    free(copy);
  }
  /* An unknown encoding byte, and an empty record. */
  nn__tsdb_bchunk_it_init(&it, 2, (const uint8_t *)"\x07\x00\x01", 3);
  assert_false(nn__tsdb_xor_it_next(&it));
  assert_int_equal(it.err, NN_ECORRUPT);
  nn__tsdb_bchunk_it_init(&it, 2, (const uint8_t *)"", 0);
  assert_false(nn__tsdb_xor_it_next(&it));
  assert_int_equal(it.err, NN_ECORRUPT);
  assert_int_equal(nn__tsdb_packed_encode(t, v, 0, &b), NN_EINVAL);
  nn_buf_fini(&b);
}

static void damaged_chunks_stop_with_an_error(void **state)
{
  struct nn__tsdb_xor_app a = {0};
  for (int i = 0; i < 50; i++)
    assert_int_equal(nn__tsdb_xor_append(&a, i * 1000 + (i % 7) * 13, (double)i * 1.1), 0);
  size_t len = nn__tsdb_xor_len(&a);
  struct nn__tsdb_xor_it it;
  /* Cut short: the count header promises more than the bytes hold. */
  for (size_t cut = 0; cut < len; cut++) {
    nn__tsdb_xor_it_init(&it, a.buf, cut);
    size_t k = 0;
    while (nn__tsdb_xor_it_next(&it))
      k++;
    assert_true(k < 50);
    if (cut > 0)
      assert_int_equal(it.err, NN_ECORRUPT);
  }
  /* A count larger than the stream. */
  uint8_t *copy = malloc(len);
  memcpy(copy, a.buf, len);
  copy[0] = 0xff;
  nn__tsdb_xor_it_init(&it, copy, len);
  while (nn__tsdb_xor_it_next(&it))
    ;
  assert_int_equal(it.err, NN_ECORRUPT);
  free(copy);
  nn__tsdb_xor_free(&a);
}

static void chunk_refuses_more_than_its_sample_counter_holds(void **state)
{
  struct nn__tsdb_xor_app a = {0};
  for (int i = 0; i < NN__TSDB_CHUNK_MAX_SAMPLES; i++)
    assert_int_equal(nn__tsdb_xor_append(&a, i, 1.0), 0);
  assert_int_equal(nn__tsdb_xor_append(&a, 1 << 20, 1.0), NN_ETOOBIG);
  nn__tsdb_xor_free(&a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(edge_values_round_trip_bit_exact),
      cmocka_unit_test(extreme_timestamp_deltas_round_trip),
      cmocka_unit_test(random_values_and_irregular_intervals_round_trip),
      cmocka_unit_test(regular_series_compresses_well),
      cmocka_unit_test(packed_chunks_beat_xor_on_scraped_data),
      cmocka_unit_test(packed_radix_groups_round_trip),
      cmocka_unit_test(damaged_packed_chunks_stop_with_an_error),
      cmocka_unit_test(damaged_chunks_stop_with_an_error),
      cmocka_unit_test(chunk_refuses_more_than_its_sample_counter_holds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
