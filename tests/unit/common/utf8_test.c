/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 validation: the word-at-a-time ASCII fast path agrees with the byte-wise rules at
 * every position and alignment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/utf8.h"

/* The byte-wise reference: what nn_utf8_valid did before the fast path. */
static bool reference_valid(const char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    if ((unsigned char)s[i] < 0x80) {
      i++;
      continue;
    }
    size_t l = nn_utf8_valid_prefix(s + i, n - i);
    if (l == 0)
      return false;
    i += l;
  }
  return true;
}

static void ascii_of_every_length_is_valid(void **state)
{
  char buf[200];
  memset(buf, 'a', sizeof(buf));
  for (size_t off = 0; off < 8; off++)
    for (size_t n = 0; n + off <= sizeof(buf); n++)
      assert_true(nn_utf8_valid(buf + off, n));
}

/* One bad or multi-byte sequence at every position of a long ASCII run, at every alignment:
 * the fast path must hand over to the byte-wise check wherever the sequence lands. */
static void sequences_are_found_at_every_position(void **state)
{
  static const struct {
    const char *seq;
    bool valid;
  } cases[] = {
      {"\xc3\xa9", true},
      {"\xe2\x82\xac", true},
      {"\xf0\x9f\x98\x80", true},
      {"\xff", false},
      {"\x80", false},
      {"\xc0\xaf", false},
      {"\xed\xa0\x80", false},
      {"\xf4\x90\x80\x80", false},
      {"\xe2\x82", false},
      {"\xc3\xa9\xc3\xa9", true},
  };
  char buf[128];
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    size_t sl = strlen(cases[c].seq);
    for (size_t off = 0; off < 8; off++) {
      for (size_t pos = 0; pos + sl + off <= 100; pos++) {
        size_t n = 100 - off;
        memset(buf, 'x', sizeof(buf));
        memcpy(buf + off + pos, cases[c].seq, sl);
        bool got = nn_utf8_valid(buf + off, n);
        assert_int_equal(got, cases[c].valid);
        assert_int_equal(got, reference_valid(buf + off, n));
        /* Cut right after the sequence's first byte: a truncated multi-byte sequence. */
        if (sl > 1) {
          n = pos + 1;
          assert_int_equal(nn_utf8_valid(buf + off, n), reference_valid(buf + off, n));
          assert_false(nn_utf8_valid(buf + off, n));
        }
      }
    }
  }
}

/* Pseudo-random byte strings, mostly ASCII: the fast path agrees with the reference. */
static void random_strings_agree_with_the_reference(void **state)
{
  uint64_t x = 88172645463325252u;
  char buf[96];
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = 0;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t len = x % sizeof(buf);
    for (; n < len; n++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      unsigned r = (unsigned)(x >> 24);
      buf[n] = (char)((r & 0xff) < 240 ? (r >> 8) & 0x7f : (r >> 8) | 0x80);
    }
    assert_int_equal(nn_utf8_valid(buf, len), reference_valid(buf, len));
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ascii_of_every_length_is_valid),
      cmocka_unit_test(sequences_are_found_at_every_position),
      cmocka_unit_test(random_strings_agree_with_the_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
