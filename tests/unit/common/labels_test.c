/* SPDX-License-Identifier: Apache-2.0 */
/* Label sets: canonical order, validation, hashing, text form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/labels.h"
#include "common/pool.h"

static void canonicalize_sorts_and_drops_empty_values(void **state)
{
  struct nn_label v[] = {{"job", "api"}, {"__name__", "up"}, {"empty", ""}, {"a", "1"}};
  size_t n = nn_labels_canonicalize(v, 4);
  assert_int_equal(n, 3);
  assert_string_equal(v[0].name, "__name__");
  assert_string_equal(v[1].name, "a");
  assert_string_equal(v[2].name, "job");
}

static void validate_rejects_bad_names_duplicates_and_utf8(void **state)
{
  char err[128];
  struct nn_label ok[] = {{"__name__", "http_requests_total"}, {"code", "200"}};
  assert_int_equal(nn_labels_validate(ok, 2, err, sizeof(err)), 0);
  struct nn_label badname[] = {{"bad-name", "x"}};
  assert_int_equal(nn_labels_validate(badname, 1, err, sizeof(err)), NN_EINVAL);
  assert_non_null(strstr(err, "bad-name"));
  struct nn_label dup[] = {{"a", "1"}, {"a", "2"}};
  assert_int_equal(nn_labels_validate(dup, 2, err, sizeof(err)), NN_EINVAL);
  assert_non_null(strstr(err, "duplicate"));
  struct nn_label utf[] = {{"a", "\xff\xfe"}};
  assert_int_equal(nn_labels_validate(utf, 1, err, sizeof(err)), NN_EINVAL);
  struct nn_label metric[] = {{"__name__", "1abc"}};
  assert_int_equal(nn_labels_validate(metric, 1, err, sizeof(err)), NN_EINVAL);
}

static void hash_depends_on_boundaries_not_just_bytes(void **state)
{
  struct nn_label a[] = {{"a", "bc"}};
  struct nn_label b[] = {{"ab", "c"}};
  struct nn_label a2[] = {{"a", "bc"}};
  assert_int_not_equal(nn_labels_hash(a, 1), nn_labels_hash(b, 1));
  assert_int_equal(nn_labels_hash(a, 1), nn_labels_hash(a2, 1));
}

static void format_and_parse_round_trip(void **state)
{
  struct nn_label v[] = {{"app", "a\"b\\c\nd"}, {"job", "x"}};
  struct nn_buf b;
  nn_buf_init(&b, 1024);
  assert_int_equal(nn_labels_format(v, 2, &b), 0);
  assert_string_equal(b.data, "{app=\"a\\\"b\\\\c\\nd\", job=\"x\"}");
  struct nn_pool pool;
  nn_pool_init(&pool, 1 << 20);
  struct nn_label *out;
  size_t n;
  char err[128];
  assert_int_equal(nn_labels_parse(b.data, b.len, &pool, &out, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 2);
  assert_string_equal(out[0].value, "a\"b\\c\nd");
  assert_int_equal(nn_labels_cmp(out, n, v, 2), 0);
  nn_pool_clear(&pool);
  nn_buf_fini(&b);
}

static void parse_reports_where_input_is_wrong(void **state)
{
  struct nn_pool pool;
  nn_pool_init(&pool, 1 << 20);
  struct nn_label *out;
  size_t n;
  char err[128];
  const char *bad[] = {
      "",           "job=\"x\"}",         "{job=x}",    "{job=\"x\"", "{job=\"x\",,}",
      "{1a=\"b\"}", "{a=\"b\"} trailing", "{a=\"\\q\"}"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = 0;
    assert_true(nn_labels_parse(bad[i], strlen(bad[i]), &pool, &out, &n, err, sizeof(err)) < 0);
    assert_true(err[0] != 0);
  }
  assert_int_equal(nn_labels_parse("{ }", 3, &pool, &out, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 0);
  nn_pool_clear(&pool);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(canonicalize_sorts_and_drops_empty_values),
      cmocka_unit_test(validate_rejects_bad_names_duplicates_and_utf8),
      cmocka_unit_test(hash_depends_on_boundaries_not_just_bytes),
      cmocka_unit_test(format_and_parse_round_trip),
      cmocka_unit_test(parse_reports_where_input_is_wrong),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
