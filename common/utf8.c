/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 validation for label values and log lines. */
#include "common/utf8.h"

#include <stdint.h>
#include <string.h>

size_t nn_utf8_valid_prefix(const char *str, size_t n)
{
  const unsigned char *s = (const unsigned char *)str;
  if (n == 0)
    return 0;
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0)
      lo = 0xa0;
    else if (c == 0xed)
      hi = 0x9f; /* surrogates */
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0)
      lo = 0x90;
    else if (c == 0xf4)
      hi = 0x8f;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return len;
}

bool nn_utf8_valid(const char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    /* ASCII fast path: 8 bytes at a time (32 per step) while no byte has its top bit set. */
    const uint64_t hi = UINT64_C(0x8080808080808080);
    while (n - i >= 32) {
      uint64_t w[4];
      memcpy(w, s + i, sizeof(w));
      if ((w[0] | w[1] | w[2] | w[3]) & hi)
        break;
      i += 32;
    }
    while (n - i >= 8) {
      uint64_t w;
      memcpy(&w, s + i, sizeof(w));
      if (w & hi)
        break;
      i += 8;
    }
    if (i >= n)
      break;
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
