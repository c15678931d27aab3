/* SPDX-License-Identifier: Apache-2.0 */
/* Duration and size parsing with the exact acceptance rules of the Go libraries Prometheus
 * uses, so that a value copied from a Prometheus config means the same thing here. */
#include "common/units.h"

#include <stdbool.h>
#include <string.h>

#include "common/error.h"

#define NS_PER_MS UINT64_C(1000000)

struct dur_unit {
  const char *name;
  uint64_t ns;
};

/* Order matters: a unit may only follow one earlier in this table. */
static const struct dur_unit dur_units[] = {
    {"y", UINT64_C(365) * 24 * 3600 * 1000 * NS_PER_MS},
    {"w", UINT64_C(7) * 24 * 3600 * 1000 * NS_PER_MS},
    {"d", UINT64_C(24) * 3600 * 1000 * NS_PER_MS},
    {"h", UINT64_C(3600) * 1000 * NS_PER_MS},
    {"m", UINT64_C(60) * 1000 * NS_PER_MS},
    {"s", UINT64_C(1000) * NS_PER_MS},
    {"ms", NS_PER_MS},
};
#define N_DUR_UNITS (sizeof(dur_units) / sizeof(dur_units[0]))

static bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}

int nn_duration_parse(const char *s, size_t n, int64_t *ms)
{
  if (n == 1 && s[0] == '0') {
    *ms = 0;
    return 0;
  }
  if (n == 0)
    return NN_EINVAL;
  /* Accumulated in nanoseconds, like time.Duration, so the range check matches Go's. */
  uint64_t dur = 0;
  size_t last = 0; /* 1 + index of the previous unit */
  size_t i = 0;
  while (i < n) {
    if (!is_digit(s[i]))
      return NN_EINVAL;
    uint64_t v = 0;
    bool too_long = false;
    for (; i < n && is_digit(s[i]); i++) {
      unsigned d = (unsigned)(s[i] - '0');
      if (v > (UINT64_MAX - d) / 10)
        too_long = true; /* strconv.ParseUint fails: a syntax error in Prometheus */
      else
        v = v * 10 + d;
    }
    if (too_long)
      return NN_EINVAL;
    size_t us = i;
    while (i < n && !is_digit(s[i]))
      i++;
    size_t ulen = i - us;
    if (ulen == 0)
      return NN_EINVAL;
    size_t u;
    for (u = 0; u < N_DUR_UNITS; u++)
      if (strlen(dur_units[u].name) == ulen && memcmp(dur_units[u].name, s + us, ulen) == 0)
        break;
    if (u == N_DUR_UNITS || u + 1 <= last)
      return NN_EINVAL;
    last = u + 1;
    if (v > (UINT64_C(1) << 63) / dur_units[u].ns)
      return NN_ETOOBIG;
    dur += v * dur_units[u].ns;
    if (dur > (uint64_t)INT64_MAX)
      return NN_ETOOBIG;
  }
  *ms = (int64_t)(dur / NS_PER_MS);
  return 0;
}

int nn_duration_format(int64_t ms, char *buf, size_t len)
{
  static const struct {
    const char *name;
    uint64_t ms;
    bool exact; /* "90d" reads better than "12w6d" */
  } f[] = {
      {"y", UINT64_C(365) * 24 * 3600 * 1000, true},
      {"w", UINT64_C(7) * 24 * 3600 * 1000, true},
      {"d", UINT64_C(24) * 3600 * 1000, false},
      {"h", UINT64_C(3600) * 1000, false},
      {"m", UINT64_C(60) * 1000, false},
      {"s", UINT64_C(1000), false},
      {"ms", UINT64_C(1), false},
  };
  char tmp[64];
  size_t o = 0;
  if (ms == 0) {
    memcpy(tmp, "0s", 2);
    o = 2;
  } else {
    uint64_t v = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    if (ms < 0)
      tmp[o++] = '-';
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
      if (f[i].exact && v % f[i].ms != 0)
        continue;
      uint64_t q = v / f[i].ms;
      if (q == 0)
        continue;
      v -= q * f[i].ms;
      char digits[24];
      size_t nd = 0;
      while (q) {
        digits[nd++] = (char)('0' + q % 10);
        q /= 10;
      }
      while (nd)
        tmp[o++] = digits[--nd];
      size_t ul = strlen(f[i].name);
      memcpy(tmp + o, f[i].name, ul);
      o += ul;
    }
  }
  if (o + 1 > len)
    return NN_ETOOBIG;
  memcpy(buf, tmp, o);
  buf[o] = '\0';
  return 0;
}

/* Base2Bytes accepts one of two unit families: B KiB MiB ... or the older B KB MB ... */
static int size_unit(const char *u, size_t n, int *family, uint64_t *mult)
{
  static const char prefixes[] = "KMGTPE";
  if (n == 1 && u[0] == 'B') {
    *family = 0; /* belongs to both */
    *mult = 1;
    return 0;
  }
  const char *p = n >= 2 ? memchr(prefixes, u[0], sizeof(prefixes) - 1) : NULL;
  if (!p)
    return NN_EINVAL;
  int fam;
  if (n == 2 && u[1] == 'B')
    fam = 2;
  else if (n == 3 && u[1] == 'i' && u[2] == 'B')
    fam = 1;
  else
    return NN_EINVAL;
  *family = fam;
  *mult = UINT64_C(1) << (10 * (unsigned)(p - prefixes + 1));
  return 0;
}

#define FRAC_DIGITS 18
#define FRAC_SCALE  UINT64_C(1000000000000000000) /* 10^FRAC_DIGITS */

int nn_size_parse(const char *s, size_t n, uint64_t *bytes)
{
  if (n == 0)
    return NN_EINVAL;
  size_t i = 0;
  while (i < n && is_digit(s[i]))
    i++;
  if (i == n) {
    /* A plain byte count; Base2Bytes itself only allows "0" without a unit. */
    uint64_t v = 0;
    for (i = 0; i < n; i++) {
      unsigned d = (unsigned)(s[i] - '0');
      if (v > (NN_SIZE_MAX_BYTES - d) / 10)
        return NN_ETOOBIG;
      v = v * 10 + d;
    }
    *bytes = v;
    return 0;
  }
  /* Fixed point with 18 decimals in 128 bits: exact for every accepted input, and fractions
   * of several elements add up before truncation, as Go's float64 sum does. */
  const unsigned __int128 limit = (unsigned __int128)(UINT64_C(1) << 63) * FRAC_SCALE;
  unsigned __int128 total = 0;
  int family = 0;
  i = 0;
  while (i < n) {
    if (!is_digit(s[i]) && s[i] != '.')
      return NN_EINVAL;
    unsigned __int128 ip = 0;
    bool digits = false;
    for (; i < n && is_digit(s[i]); i++) {
      digits = true;
      ip = ip * 10 + (unsigned)(s[i] - '0');
      if (ip > ((unsigned __int128)1 << 64))
        return NN_ETOOBIG;
    }
    uint64_t frac = 0; /* scaled by 10^FRAC_DIGITS */
    if (i < n && s[i] == '.') {
      i++;
      uint64_t scale = FRAC_SCALE;
      for (; i < n && is_digit(s[i]); i++) {
        digits = true;
        scale /= 10; /* digits past the 18th are dropped */
        frac += (uint64_t)(s[i] - '0') * scale;
      }
    }
    if (!digits)
      return NN_EINVAL;
    size_t us = i;
    while (i < n && !is_digit(s[i]) && s[i] != '.')
      i++;
    int fam;
    uint64_t mult;
    if (size_unit(s + us, i - us, &fam, &mult) < 0)
      return NN_EINVAL;
    if (fam != 0) {
      if (family != 0 && fam != family)
        return NN_EINVAL;
      family = fam;
    }
    /* ip <= 2^64 and mult <= 2^60 keep both products inside 128 bits. */
    unsigned __int128 whole = ip * mult;
    if (whole > (unsigned __int128)1 << 64)
      return NN_ETOOBIG;
    total += whole * FRAC_SCALE + (unsigned __int128)frac * mult;
    if (total >= limit)
      return NN_ETOOBIG;
  }
  *bytes = (uint64_t)(total / FRAC_SCALE);
  return 0;
}

int nn_size_format(uint64_t bytes, char *buf, size_t len)
{
  static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  /* Largest unit first, so collect the parts from the smallest up, then reverse. */
  uint64_t parts[7];
  size_t np = 0;
  uint64_t v = bytes;
  char tmp[96];
  size_t o = 0;
  if (v == 0) {
    memcpy(tmp, "0B", 2);
    o = 2;
  } else {
    for (np = 0; np < 7 && v; np++) {
      parts[np] = v % 1024;
      v /= 1024;
    }
    if (v) /* 2^70 and up cannot happen with 64 bits; keep the loop honest anyway */
      return NN_ETOOBIG;
    for (size_t k = np; k-- > 0;) {
      uint64_t q = parts[k];
      if (q == 0)
        continue;
      char digits[8];
      size_t nd = 0;
      while (q) {
        digits[nd++] = (char)('0' + q % 10);
        q /= 10;
      }
      while (nd)
        tmp[o++] = digits[--nd];
      size_t nl = strlen(names[k]);
      memcpy(tmp + o, names[k], nl);
      o += nl;
    }
  }
  if (o + 1 > len)
    return NN_ETOOBIG;
  memcpy(buf, tmp, o);
  buf[o] = '\0';
  return 0;
}
