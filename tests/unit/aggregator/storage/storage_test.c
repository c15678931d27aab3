/* SPDX-License-Identifier: Apache-2.0 */
/* Label matchers: regex matchers share one compiled regex per pattern (reference counted),
 * each keeps working while others come and go, and whether a matcher matches "" is known
 * from init. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "aggregator/storage/storage.h"
#include "common/error.h"

static void init(struct nn_matcher *m, enum nn_match_type t, const char *v)
{
  char err[128];
  assert_int_equal(nn_matcher_init(m, t, "code", v, err, sizeof(err)), 0);
}

static void regexes_are_shared_by_pattern(void **state)
{
  struct nn_matcher a, b, c, d;
  init(&a, NN_MATCH_RE, "5..");
  init(&b, NN_MATCH_NRE, "5..");
  init(&c, NN_MATCH_RE, "4..");
  assert_ptr_equal(a.re, b.re);
  assert_ptr_not_equal(a.re, c.re);
  assert_true(nn_matcher_matches(&a, "500"));
  assert_false(nn_matcher_matches(&b, "500"));
  assert_true(nn_matcher_matches(&b, "200"));
  assert_false(nn_matcher_matches(&a, "5000")); /* anchored */
  /* The last holder frees the regex; the others keep matching meanwhile. */
  nn_matcher_fini(&a);
  assert_true(nn_matcher_matches(&b, "404"));
  assert_false(nn_matcher_matches(&b, "503"));
  nn_matcher_fini(&b);
  init(&d, NN_MATCH_RE, "5..");
  assert_true(nn_matcher_matches(&d, "599"));
  assert_true(nn_matcher_matches(&c, "404"));
  nn_matcher_fini(&c);
  nn_matcher_fini(&d);
}

static void bad_regexes_fail_as_before(void **state)
{
  struct nn_matcher m;
  char err[128] = "";
  assert_int_equal(nn_matcher_init(&m, NN_MATCH_RE, "code", "5(", err, sizeof(err)), NN_EINVAL);
  assert_non_null(strstr(err, "error parsing regexp \"5(\""));
  /* And again: a failed pattern is not cached. */
  err[0] = 0;
  assert_int_equal(nn_matcher_init(&m, NN_MATCH_RE, "code", "5(", err, sizeof(err)), NN_EINVAL);
  assert_non_null(strstr(err, "missing closing parenthesis"));
}

static void matching_empty_is_known_from_init(void **state)
{
  static const struct {
    enum nn_match_type t;
    const char *v;
    bool empty;
  } rows[] = {
      {NN_MATCH_EQ, "", true},     {NN_MATCH_EQ, "x", false},   {NN_MATCH_NE, "", false},
      {NN_MATCH_NE, "x", true},    {NN_MATCH_RE, ".*", true},   {NN_MATCH_RE, "5..", false},
      {NN_MATCH_NRE, ".*", false}, {NN_MATCH_NRE, "5..", true},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    struct nn_matcher m;
    init(&m, rows[i].t, rows[i].v);
    assert_int_equal(nn_matcher_matches_empty(&m), rows[i].empty);
    assert_int_equal(nn_matcher_matches(&m, ""), rows[i].empty);
    nn_matcher_fini(&m);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(regexes_are_shared_by_pattern),
      cmocka_unit_test(bad_regexes_fail_as_before),
      cmocka_unit_test(matching_empty_is_known_from_init),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
