/* SPDX-License-Identifier: Apache-2.0 */
/* The LogQL selector and line-filter parser: what it accepts, how strings unescape, and
 * the positions its errors name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"

static int parse(const char *s, struct nn__ls_query *q, char *err, size_t errlen)
{
  return nn__logstore_query_parse(s, strlen(s), q, err, errlen);
}

static void parses_matchers_and_filters(void **state)
{
  struct nn__ls_query q;
  char err[256];
  assert_int_equal(parse(" {app=\"api\", env=~\"prod|dev\" ,team!=\"x\", pod!~`c.*`,}\n"
                         "  |= \"error\" != `timeout` |~ \"5\\\\d\\\\d\" !~ \"(?i)health\"",
                         &q, err, sizeof(err)),
                   0);
  assert_int_equal(q.nm, 4);
  assert_int_equal(q.m[0].type, NN_MATCH_EQ);
  assert_int_equal(q.m[1].type, NN_MATCH_RE);
  assert_int_equal(q.m[2].type, NN_MATCH_NE);
  assert_int_equal(q.m[3].type, NN_MATCH_NRE);
  assert_string_equal(q.m[3].value, "c.*");
  assert_int_equal(q.nf, 4);
  assert_int_equal(q.f[0].type, LS_FILTER_CONTAINS);
  assert_int_equal(q.f[1].type, LS_FILTER_NOT_CONTAINS);
  assert_string_equal(q.f[2].s, "5\\d\\d");
  assert_true(nn__logstore_filters_match(&q, "an error 503", 12));
  assert_false(nn__logstore_filters_match(&q, "an error 200", 12));
  assert_false(nn__logstore_filters_match(&q, "an error timeout 503", 20));
  assert_false(nn__logstore_filters_match(&q, "HEALTH error 503", 16));
  nn__logstore_query_fini(&q);
}

static void unescapes_go_strings(void **state)
{
  struct nn__ls_query q;
  char err[256];
  assert_int_equal(
      parse("{a=\"q\\\"b\\\\s\\n\\t\\x41\\101\\u00e9\\U0001F600\"}", &q, err, sizeof(err)), 0);
  assert_string_equal(q.m[0].value, "q\"b\\s\n\tAA\xc3\xa9\xf0\x9f\x98\x80");
  nn__logstore_query_fini(&q);
  assert_int_equal(parse("{a=`raw \\n stays`}", &q, err, sizeof(err)), 0);
  assert_string_equal(q.m[0].value, "raw \\n stays");
  nn__logstore_query_fini(&q);
}

static void expect_error(const char *query, const char *pos, const char *what)
{
  struct nn__ls_query q;
  char err[512];
  assert_int_equal(parse(query, &q, err, sizeof(err)), NN_EINVAL);
  if (!strstr(err, pos) || !strstr(err, what))
    fail_msg("query %s: got \"%s\", want \"%s\" and \"%s\"", query, err, pos, what);
  nn__logstore_query_fini(&q);
}

static void errors_name_line_and_column(void **state)
{
  expect_error("", "line 1, col 1", "stream selector");
  expect_error("app=\"x\"", "line 1, col 1", "stream selector");
  expect_error("{}", "col 1", "at least one matcher");
  expect_error("{app}", "line 1, col 5", "expected one of");
  expect_error("{app=x}", "col 6", "quoted string");
  expect_error("{app=\"x\"", "col 9", "unterminated stream selector");
  expect_error("{app=\"x", "col 6", "unterminated string");
  expect_error("{app=\"x\" env=\"y\"}", "col 10", "expected ',' or '}'");
  expect_error("{app=\"x\"}\n  | unpack", "line 2, col 3", "unsupported pipeline stage");
  expect_error("{app=\"x\"} |= 5", "col 14", "quoted string");
  expect_error("{app=\"x\"} foo", "col 11", "line filter");
  expect_error("{app=~\"(\"}", "col 7", "error parsing regexp");
  expect_error("{app=\"x\"} |~ \"[\"", "col 11", "invalid regexp");
  expect_error("{app=\"\\q\"}", "col 7", "unknown escape");
  expect_error("{app=\"\\x4\"}", "col 7", "hex");
  expect_error("{app=\"\\u0000\"}", "col 7", "NUL");
  expect_error("{app!=\"x\"}", "col 1", "empty-compatible");
  expect_error("{1app=\"x\"}", "col 2", "label name");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parses_matchers_and_filters),
      cmocka_unit_test(unescapes_go_strings),
      cmocka_unit_test(errors_name_line_and_column),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
