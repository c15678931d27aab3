/* SPDX-License-Identifier: Apache-2.0 */
/* Number and time formatting that matches Go's fmt and strconv byte for byte where the
 * Prometheus API and templates expose them: shortest round-trip digits laid out in %v and
 * %e style, Go's "+Inf"/"NaN" spelling, and time.Time's RFC3339Nano JSON form. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/rules/internal.h"

/* Shortest decimal digits that read back as v (v finite, > 0): digits without a point and
 * the decimal exponent of the first digit. Tries precisions 1..17 with printf's correctly
 * rounded %e, which finds the same digits as Go's shortest algorithm. */
static int shortest_digits(double v, char *digits, int *exp10)
{
  char tmp[40];
  for (int p = 1; p <= 17; p++) {
    snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
    if (strtod(tmp, NULL) == v || p == 17) {
      int nd = 0;
      const char *s = tmp;
      for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
          digits[nd++] = *s;
      while (nd > 1 && digits[nd - 1] == '0')
        nd--;
      digits[nd] = 0;
      *exp10 = (int)strtol(s + 1, NULL, 10);
      return nd;
    }
  }
  return 0;
}

static size_t special(double v, char *buf, size_t len)
{
  if (isnan(v))
    return (size_t)snprintf(buf, len, "NaN");
  return (size_t)snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
}

/* d.ddde±XX from digits. */
static size_t layout_e(bool neg, const char *digits, int nd, int exp10, char *buf, size_t len)
{
  char m[40];
  int k = 0;
  if (neg)
    m[k++] = '-';
  m[k++] = digits[0];
  if (nd > 1) {
    m[k++] = '.';
    for (int i = 1; i < nd; i++)
      m[k++] = digits[i];
  }
  m[k] = 0;
  return (size_t)snprintf(buf, len, "%se%c%02d", m, exp10 < 0 ? '-' : '+', abs(exp10));
}

size_t nn__fmt_go_e(double v, char *buf, size_t len)
{
  if (!isfinite(v))
    return special(v, buf, len);
  if (v == 0)
    return (size_t)snprintf(buf, len, signbit(v) ? "-0e+00" : "0e+00");
  char digits[24];
  int exp10;
  int nd = shortest_digits(fabs(v), digits, &exp10);
  return layout_e(v < 0, digits, nd, exp10, buf, len);
}

size_t nn__fmt_go_v(double v, char *buf, size_t len)
{
  if (!isfinite(v))
    return special(v, buf, len);
  if (v == 0)
    return (size_t)snprintf(buf, len, signbit(v) ? "-0" : "0");
  char digits[24];
  int exp10;
  int nd = shortest_digits(fabs(v), digits, &exp10);
  /* strconv 'g' at shortest precision decides on %e with a fixed precision of 6. */
  if (exp10 < -4 || exp10 >= 6)
    return layout_e(v < 0, digits, nd, exp10, buf, len);
  char out[400];
  size_t k = 0;
  if (v < 0)
    out[k++] = '-';
  int dp = exp10 + 1; /* digits before the point */
  if (dp <= 0) {
    out[k++] = '0';
    out[k++] = '.';
    for (int i = 0; i < -dp; i++)
      out[k++] = '0';
    for (int i = 0; i < nd; i++)
      out[k++] = digits[i];
  } else {
    for (int i = 0; i < dp; i++)
      out[k++] = i < nd ? digits[i] : '0';
    if (nd > dp) {
      out[k++] = '.';
      for (int i = dp; i < nd; i++)
        out[k++] = digits[i];
    }
  }
  out[k] = 0;
  return (size_t)snprintf(buf, len, "%s", out);
}

size_t nn__fmt_go_prec(double v, int prec, char verb, char *buf, size_t len)
{
  if (!isfinite(v))
    return special(v, buf, len);
  if (prec < 0)
    prec = 6;
  if (prec > 100)
    prec = 100;
  switch (verb) {
  case 'e': return (size_t)snprintf(buf, len, "%.*e", prec, v);
  case 'E': return (size_t)snprintf(buf, len, "%.*E", prec, v);
  case 'f': return (size_t)snprintf(buf, len, "%.*f", prec, v);
  case 'F': return (size_t)snprintf(buf, len, "%.*F", prec, v);
  case 'G': return (size_t)snprintf(buf, len, "%.*G", prec, v);
  default: return (size_t)snprintf(buf, len, "%.*g", prec, v);
  }
}

size_t nn__fmt_rfc3339(int64_t ms, char *buf, size_t len)
{
  int64_t sec = ms / 1000, frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    sec--;
  }
  time_t t = (time_t)sec;
  struct tm tm;
  gmtime_r(&t, &tm);
  char base[64];
  strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
  if (frac == 0)
    return (size_t)snprintf(buf, len, "%sZ", base);
  char fr[8];
  snprintf(fr, sizeof(fr), "%03d", (int)frac);
  size_t n = strlen(fr);
  while (n > 0 && fr[n - 1] == '0')
    fr[--n] = 0;
  return (size_t)snprintf(buf, len, "%s.%sZ", base, fr);
}
