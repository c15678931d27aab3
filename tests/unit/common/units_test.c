/* SPDX-License-Identifier: Apache-2.0 */
/* Durations and sizes: the tables follow prometheus/common model.ParseDuration and
 * alecthomas/units ParseBase2Bytes, accepted and rejected inputs alike. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/error.h"
#include "common/units.h"

#define MIN  (60 * 1000LL)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

static void duration_parse_accepts_prometheus_forms(void **state)
{
  static const struct {
    const char *in;
    int64_t ms;
  } t[] = {
      {"0", 0},
      {"0s", 0},
      {"1ms", 1},
      {"500ms", 500},
      {"1s", 1000},
      {"90s", 90000},
      {"5m", 5 * MIN},
      {"1h30m", HOUR + 30 * MIN},
      {"1d2h", DAY + 2 * HOUR},
      {"1w", 7 * DAY},
      {"1y", 365 * DAY},
      {"2y3w4d5h6m7s8ms", 2 * 365 * DAY + 3 * 7 * DAY + 4 * DAY + 5 * HOUR + 6 * MIN + 7008},
      {"01s", 1000},
      {"1h0m", HOUR},
      {"106751d", 106751 * DAY},
      {"9223372036854ms", 9223372036854LL},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    int64_t ms = -1;
    int rc = nn_duration_parse(t[i].in, strlen(t[i].in), &ms);
    if (rc != 0 || ms != t[i].ms)
      fail_msg("%s: rc=%d ms=%lld want %lld", t[i].in, rc, (long long)ms, (long long)t[i].ms);
  }
}

static void duration_parse_rejects_bad_forms(void **state)
{
  static const struct {
    const char *in;
    int rc;
  } t[] = {
      {"", NN_EINVAL},
      {"1", NN_EINVAL},        /* only "0" may go without a unit */
      {"00", NN_EINVAL},       /* likewise */
      {"1.5h", NN_EINVAL},     /* no fractions */
      {"-1s", NN_EINVAL},      /* no sign */
      {"+1s", NN_EINVAL},      /* no sign */
      {"1m1h", NN_EINVAL},     /* decreasing order only */
      {"1s1s", NN_EINVAL},     /* each unit once */
      {"1ms1s", NN_EINVAL},    /* ms is the smallest */
      {"1x", NN_EINVAL},       /* unknown unit */
      {"1ns", NN_EINVAL},      /* Go units are not Prometheus units */
      {"1us", NN_EINVAL},      /* likewise */
      {"1H", NN_EINVAL},       /* case-sensitive */
      {"h", NN_EINVAL},        /* no number */
      {" 1s", NN_EINVAL},      /* no spaces */
      {"1s ", NN_EINVAL},      /* unit " " is unknown after s... */
      {"1h 30m", NN_EINVAL},   /* ...and inside */
      {"293y", NN_ETOOBIG},    /* past int64 nanoseconds */
      {"106752d", NN_ETOOBIG}, /* just past */
      {"9223372036855ms", NN_ETOOBIG},
      {"292y50w", NN_ETOOBIG},
      {"99999999999999999999s", NN_EINVAL}, /* does not fit uint64: strconv fails */
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    int64_t ms = 12345;
    int rc = nn_duration_parse(t[i].in, strlen(t[i].in), &ms);
    if (rc != t[i].rc || ms != 12345)
      fail_msg("\"%s\": rc=%d want %d (ms=%lld)", t[i].in, rc, t[i].rc, (long long)ms);
  }
}

static void duration_parse_honours_length_not_nul(void **state)
{
  int64_t ms;
  assert_int_equal(nn_duration_parse("5mXXX", 2, &ms), 0);
  assert_int_equal(ms, 5 * MIN);
  assert_int_equal(nn_duration_parse("1s\0"
                                     "5",
                                     4, &ms),
                   NN_EINVAL);
}

static void duration_format_matches_prometheus_string(void **state)
{
  static const struct {
    int64_t ms;
    const char *out;
  } t[] = {
      {0, "0s"},
      {1, "1ms"},
      {1000, "1s"},
      {90000, "1m30s"},
      {HOUR + 30 * MIN, "1h30m"},
      {DAY, "1d"},
      {7 * DAY, "1w"},
      {90 * DAY, "90d"}, /* weeks only when exact: not 12w6d */
      {14 * DAY, "2w"},
      {365 * DAY, "1y"},
      {366 * DAY, "366d"},
      {8 * DAY + 1, "8d1ms"},
      {-5 * MIN, "-5m"},
      {INT64_MIN, "-106751991167d7h12m55s808ms"},
  };
  char buf[64];
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    assert_int_equal(nn_duration_format(t[i].ms, buf, sizeof(buf)), 0);
    assert_string_equal(buf, t[i].out);
  }
  assert_int_equal(nn_duration_format(HOUR + 30 * MIN, buf, 5), NN_ETOOBIG);
  assert_int_equal(nn_duration_format(HOUR + 30 * MIN, buf, 6), 0);
}

static void duration_round_trips(void **state)
{
  static const int64_t v[] = {0,
                              1,
                              999,
                              1001,
                              59999,
                              HOUR,
                              25 * HOUR + 1,
                              13 * 7 * DAY,
                              3 * 365 * DAY + 2 * DAY,
                              NN_DURATION_MAX_MS};
  char buf[64];
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    int64_t back = -1;
    assert_int_equal(nn_duration_format(v[i], buf, sizeof(buf)), 0);
    assert_int_equal(nn_duration_parse(buf, strlen(buf), &back), 0);
    assert_int_equal(back, v[i]);
  }
}

static void size_parse_accepts_base2_units(void **state)
{
  static const struct {
    const char *in;
    uint64_t bytes;
  } t[] = {
      {"0", 0},
      {"0B", 0},
      {"4096", 4096},
      {"1B", 1},
      {"1KB", 1024},
      {"1KiB", 1024},
      {"512MB", 512ULL << 20},
      {"1GB", 1ULL << 30},
      {"2GiB", 2ULL << 30},
      {"1TB", 1ULL << 40},
      {"1TiB", 1ULL << 40},
      {"1PB", 1ULL << 50},
      {"1PiB", 1ULL << 50},
      {"1MB1KB25B", 1049625},
      {"1MiB1KiB25B", 1049625},
      {"1.5MB", 1572864},
      {"1.5MiB", 1572864},
      {".5KB", 512},
      {"1.KB", 1024},
      {"0.5B0.5B", 1}, /* fractions add up before truncation */
      {"1.9B", 1},
      {"7EB", 7ULL << 60},
      {"9223372036854775807", 9223372036854775807ULL},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    uint64_t b = 99;
    int rc = nn_size_parse(t[i].in, strlen(t[i].in), &b);
    if (rc != 0 || b != t[i].bytes)
      fail_msg("%s: rc=%d bytes=%llu want %llu", t[i].in, rc, (unsigned long long)b,
               (unsigned long long)t[i].bytes);
  }
}

static void size_parse_rejects_bad_forms(void **state)
{
  static const struct {
    const char *in;
    int rc;
  } t[] = {
      {"", NN_EINVAL},
      {"1kB", NN_EINVAL},     /* SI spelling is refused, as Base2Bytes does */
      {"1kiB", NN_EINVAL},    /* binary prefixes are capitalised */
      {"1mb", NN_EINVAL},     /* case-sensitive */
      {"1K", NN_EINVAL},      /* B is required */
      {"1MiB1KB", NN_EINVAL}, /* one unit family per value */
      {"1.5", NN_EINVAL},     /* a fraction needs a unit */
      {".B", NN_EINVAL},
      {"-1MB", NN_EINVAL},
      {"1 MB", NN_EINVAL},
      {"MB", NN_EINVAL},
      {"1XB", NN_EINVAL},
      {"8EB", NN_ETOOBIG}, /* 2^63 does not fit in int64 */
      {"8EiB", NN_ETOOBIG},
      {"9223372036854775808", NN_ETOOBIG},
      {"99999999999999999999999KB", NN_ETOOBIG},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    uint64_t b = 99;
    int rc = nn_size_parse(t[i].in, strlen(t[i].in), &b);
    if (rc != t[i].rc || b != 99)
      fail_msg("\"%s\": rc=%d want %d", t[i].in, rc, t[i].rc);
  }
}

static void size_format_matches_base2bytes_and_round_trips(void **state)
{
  static const struct {
    uint64_t b;
    const char *out;
  } t[] = {
      {0, "0B"},
      {1, "1B"},
      {1025, "1KiB1B"},
      {1048577, "1MiB1B"},
      {512ULL << 20, "512MiB"},
      {(1ULL << 30) + (1ULL << 20), "1GiB1MiB"},
      {UINT64_MAX, "15EiB1023PiB1023TiB1023GiB1023MiB1023KiB1023B"},
  };
  char buf[64];
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    assert_int_equal(nn_size_format(t[i].b, buf, sizeof(buf)), 0);
    assert_string_equal(buf, t[i].out);
    uint64_t back;
    if (t[i].b <= NN_SIZE_MAX_BYTES) {
      assert_int_equal(nn_size_parse(buf, strlen(buf), &back), 0);
      assert_true(back == t[i].b);
    }
  }
  assert_int_equal(nn_size_format(1025, buf, 6), NN_ETOOBIG);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(duration_parse_accepts_prometheus_forms),
      cmocka_unit_test(duration_parse_rejects_bad_forms),
      cmocka_unit_test(duration_parse_honours_length_not_nul),
      cmocka_unit_test(duration_format_matches_prometheus_string),
      cmocka_unit_test(duration_round_trips),
      cmocka_unit_test(size_parse_accepts_base2_units),
      cmocka_unit_test(size_parse_rejects_bad_forms),
      cmocka_unit_test(size_format_matches_base2bytes_and_round_trips),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
