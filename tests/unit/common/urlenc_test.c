/* SPDX-License-Identifier: Apache-2.0 */
/* Query decoding and escaping against Go's net/url behaviour (ParseQuery, QueryEscape). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/pool.h"
#include "common/urlenc.h"

static void unescape_table_matches_go_query_unescape(void **state)
{
  static const struct {
    const char *in;
    int rc;
    const char *out;
  } cases[] = {
      {"", 0, ""},
      {"abc", 0, "abc"},
      {"a+b", 0, "a b"},
      {"a%20b", 0, "a b"},
      {"%2B", 0, "+"},
      {"%e2%82%AC", 0, "\xe2\x82\xac"},
      {"up%7Bjob%3D%22x%22%7D", 0, "up{job=\"x\"}"},
      {"%", NN_EINVAL, NULL},
      {"%2", NN_EINVAL, NULL},
      {"%zz", NN_EINVAL, NULL},
      {"a%g1", NN_EINVAL, NULL},
      {"100%", NN_EINVAL, NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct nn_buf b;
    nn_buf_init(&b, 1024);
    int rc = nn_urlenc_unescape(cases[i].in, strlen(cases[i].in), true, &b);
    assert_int_equal(rc, cases[i].rc);
    if (rc == 0)
      assert_string_equal(b.len ? b.data : "", cases[i].out);
    nn_buf_fini(&b);
  }
}

static void unescape_keeps_plus_outside_forms(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 64);
  assert_int_equal(nn_urlenc_unescape("a+b%2Fc", 7, false, &b), 0);
  assert_string_equal(b.data, "a+b/c");
  nn_buf_fini(&b);
}

static void unescape_decodes_nul_with_length(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 64);
  assert_int_equal(nn_urlenc_unescape("a%00b", 5, true, &b), 0);
  assert_int_equal(b.len, 3);
  assert_memory_equal(b.data, "a\0b", 3);
  nn_buf_fini(&b);
}

static void escape_table_matches_go_query_escape(void **state)
{
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"", ""},
      {"abcXYZ019-_.~", "abcXYZ019-_.~"},
      {"a b", "a+b"},
      {"a+b", "a%2Bb"},
      {"up{job=\"x\"}", "up%7Bjob%3D%22x%22%7D"},
      {"/?&=#%;:@$,", "%2F%3F%26%3D%23%25%3B%3A%40%24%2C"},
      {"\xe2\x82\xac", "%E2%82%AC"},
      {"rate(x[5m])", "rate%28x%5B5m%5D%29"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct nn_buf b;
    nn_buf_init(&b, 1024);
    assert_int_equal(nn_urlenc_escape(cases[i].in, strlen(cases[i].in), &b), 0);
    assert_string_equal(b.len ? b.data : "", cases[i].out);
    nn_buf_fini(&b);
  }
}

static void escape_respects_buffer_cap(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 5);
  assert_int_equal(nn_urlenc_escape("a b", 3, &b), 0);
  assert_int_equal(nn_urlenc_escape("{}", 2, &b), NN_ETOOBIG);
  assert_string_equal(b.data, "a+b");
  nn_buf_fini(&b);
}

static void parse_keeps_repeated_names_in_order(void **state)
{
  struct nn_pool pool;
  nn_pool_init(&pool, 1 << 20);
  const char *q = "match[]=up&query=rate(x%5B5m%5D)&match[]=%7Bjob%3D%22a%22%7D&&flag&e=";
  struct nn_urlenc_param *p;
  size_t n;
  assert_int_equal(nn_urlenc_parse(q, strlen(q), &pool, &p, &n), 0);
  assert_int_equal(n, 5);
  assert_string_equal(p[0].name, "match[]");
  assert_string_equal(p[0].value, "up");
  assert_string_equal(p[1].value, "rate(x[5m])");
  assert_string_equal(p[2].name, "match[]");
  assert_string_equal(p[2].value, "{job=\"a\"}");
  assert_string_equal(p[3].name, "flag");
  assert_string_equal(p[3].value, "");
  assert_string_equal(p[4].name, "e");
  assert_string_equal(p[4].value, "");
  assert_string_equal(nn_urlenc_get(p, n, "match[]"), "up");
  assert_string_equal(nn_urlenc_get(p, n, "flag"), "");
  assert_null(nn_urlenc_get(p, n, "missing"));
  nn_pool_fini(&pool);
}

static void parse_value_may_contain_equals(void **state)
{
  struct nn_pool pool;
  nn_pool_init(&pool, 1 << 20);
  struct nn_urlenc_param *p;
  size_t n;
  assert_int_equal(nn_urlenc_parse("q=a=b", 5, &pool, &p, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(p[0].value, "a=b");
  nn_pool_fini(&pool);
}

static void parse_skips_bad_pairs_and_reports_einval_like_go(void **state)
{
  struct nn_pool pool;
  nn_pool_init(&pool, 1 << 20);
  struct nn_urlenc_param *p;
  size_t n;
  const char *q = "a=1&b=%zz&c=2;d=3&%=x&e=5";
  assert_int_equal(nn_urlenc_parse(q, strlen(q), &pool, &p, &n), NN_EINVAL);
  assert_int_equal(n, 2);
  assert_string_equal(p[0].name, "a");
  assert_string_equal(p[1].name, "e");
  assert_string_equal(p[1].value, "5");
  nn_pool_fini(&pool);
}

static void parse_empty_input_gives_no_pairs(void **state)
{
  struct nn_pool pool;
  nn_pool_init(&pool, 1 << 20);
  struct nn_urlenc_param *p;
  size_t n = 99;
  assert_int_equal(nn_urlenc_parse("", 0, &pool, &p, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(nn_urlenc_parse("&&&", 3, &pool, &p, &n), 0);
  assert_int_equal(n, 0);
  nn_pool_fini(&pool);
}

static void parse_fails_cleanly_at_pool_cap(void **state)
{
  struct nn_pool pool;
  nn_pool_init(&pool, 256);
  char q[4096];
  for (size_t i = 0; i < sizeof(q) - 1; i += 4)
    memcpy(q + i, "a=b&", 4);
  q[sizeof(q) - 1] = '\0';
  struct nn_urlenc_param *p;
  size_t n;
  assert_int_equal(nn_urlenc_parse(q, strlen(q), &pool, &p, &n), NN_ENOMEM);
  nn_pool_fini(&pool);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(unescape_table_matches_go_query_unescape),
      cmocka_unit_test(unescape_keeps_plus_outside_forms),
      cmocka_unit_test(unescape_decodes_nul_with_length),
      cmocka_unit_test(escape_table_matches_go_query_escape),
      cmocka_unit_test(escape_respects_buffer_cap),
      cmocka_unit_test(parse_keeps_repeated_names_in_order),
      cmocka_unit_test(parse_value_may_contain_equals),
      cmocka_unit_test(parse_skips_bad_pairs_and_reports_einval_like_go),
      cmocka_unit_test(parse_empty_input_gives_no_pairs),
      cmocka_unit_test(parse_fails_cleanly_at_pool_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
