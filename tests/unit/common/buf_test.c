/* SPDX-License-Identifier: Apache-2.0 */
/* Bounded buffer, request pool, UTF-8 validation and error names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/pool.h"
#include "common/utf8.h"

static void buf_refuses_to_grow_past_its_cap(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 10);
  assert_int_equal(nn_buf_append(&b, "0123456789", 10), 0);
  assert_int_equal(nn_buf_appendc(&b, 'x'), NN_ETOOBIG);
  assert_int_equal(b.len, 10);
  assert_string_equal(b.data, "0123456789");
  assert_true(b.cap <= 11);
  nn_buf_reset(&b);
  assert_int_equal(nn_buf_printf(&b, "%d-%s", 42, "abc"), 0);
  assert_string_equal(b.data, "42-abc");
  assert_int_equal(nn_buf_printf(&b, "%s", "toolong"), NN_ETOOBIG);
  assert_int_equal(nn_buf_reserve(&b, SIZE_MAX), NN_ETOOBIG);
  nn_buf_fini(&b);
}

static void json_strings_are_escaped_and_utf8_repaired(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 1024);
  assert_int_equal(nn_buf_append_json_str(&b, "a\"b\\\n\x01\xc3\xa9\xff", 9), 0);
  assert_string_equal(b.data, "\"a\\\"b\\\\\\n\\u0001\xc3\xa9\xef\xbf\xbd\"");
  nn_buf_fini(&b);
}

static void buf_steal_transfers_ownership(void **state)
{
  struct nn_buf b;
  nn_buf_init(&b, 100);
  nn_buf_appends(&b, "hello");
  size_t n;
  char *p = nn_buf_steal(&b, &n);
  assert_int_equal(n, 5);
  assert_string_equal(p, "hello");
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  free(p);
}

static void pool_caps_total_allocation_and_aligns(void **state)
{
  struct nn_pool p;
  nn_pool_init(&p, 100000);
  for (int i = 0; i < 100; i++) {
    void *x = nn_pool_alloc(&p, (size_t)i + 1);
    assert_non_null(x);
    assert_int_equal((uintptr_t)x % 16, 0);
    memset(x, 0xab, (size_t)i + 1);
  }
  assert_null(nn_pool_alloc(&p, 200000));
  void *big = nn_pool_alloc(&p, 50000);
  assert_non_null(big);
  memset(big, 0, 50000);
  assert_null(nn_pool_alloc(&p, 60000));
  char *s = nn_pool_strndup(&p, "abcdef", 3);
  assert_string_equal(s, "abc");
  nn_pool_clear(&p);
  assert_int_equal(p.used, 0);
  assert_non_null(nn_pool_alloc(&p, 60000));
  nn_pool_clear(&p);
}

static void utf8_rejects_overlongs_surrogates_and_truncation(void **state)
{
  assert_true(nn_utf8_valid("plain", 5));
  assert_true(nn_utf8_valid("\xe2\x82\xac \xf0\x9f\x98\x80", 8));
  assert_false(nn_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
  assert_false(nn_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
  assert_false(nn_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
  assert_false(nn_utf8_valid("\xe2\x82", 2));         /* truncated */
  assert_false(nn_utf8_valid("\x80", 1));
}

static void every_error_code_has_a_name(void **state)
{
  for (int rc = NN_EFIRST - 1; rc > NN_ELAST; rc--) {
    const char *s = nn_strerror(rc);
    assert_non_null(s);
    assert_string_not_equal(s, "unknown error");
  }
  assert_string_equal(nn_strerror(NN_ERRNO(ENOENT)), strerror(ENOENT));
  assert_string_equal(nn_strerror(0), "success");
  assert_string_equal(nn_strerror(NN_ELAST), "unknown error");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(buf_refuses_to_grow_past_its_cap),
      cmocka_unit_test(json_strings_are_escaped_and_utf8_repaired),
      cmocka_unit_test(buf_steal_transfers_ownership),
      cmocka_unit_test(pool_caps_total_allocation_and_aligns),
      cmocka_unit_test(utf8_rejects_overlongs_surrogates_and_truncation),
      cmocka_unit_test(every_error_code_has_a_name),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
