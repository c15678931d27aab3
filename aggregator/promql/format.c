/* SPDX-License-Identifier: Apache-2.0 */
/* Float formatting compatible with Go's strconv (shortest digits that round-trip) in the
 * layouts Prometheus's JSON API uses, plus error-type names for the HTTP layer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "aggregator/promql/internal.h"

/* Shortest decimal digits of |v| (v finite, non-zero): digits into d (NUL-terminated),
 * returns their count; *exp is the decimal exponent of the first digit. */
static int shortest_digits(double v, char *d, int *exp)
{
  char tmp[48];
  int n = 0;
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
    if (strtod(tmp, NULL) == v || prec == 17)
      break;
  }
  const char *p = tmp;
  if (*p == '-')
    p++;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9')
      d[n++] = *p;
  *exp = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
  while (n > 1 && d[n - 1] == '0')
    n--;
  d[n] = 0;
  return n;
}

static size_t special(double v, char *buf, size_t len)
{
  const char *s = isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
  return (size_t)snprintf(buf, len, "%s", s);
}

static size_t layout_f(double v, char *buf, size_t len)
{
  if (!isfinite(v))
    return special(v, buf, len);
  if (v == 0)
    return (size_t)snprintf(buf, len, "%s", signbit(v) ? "-0" : "0");
  char d[24], out[400];
  int exp, n = shortest_digits(v, d, &exp);
  size_t o = 0;
  if (v < 0)
    out[o++] = '-';
  if (exp < 0) {
    out[o++] = '0';
    out[o++] = '.';
    for (int k = 0; k < -exp - 1; k++)
      out[o++] = '0';
    for (int k = 0; k < n; k++)
      out[o++] = d[k];
  } else {
    for (int k = 0; k <= exp; k++)
      out[o++] = k < n ? d[k] : '0';
    if (n > exp + 1) {
      out[o++] = '.';
      for (int k = exp + 1; k < n; k++)
        out[o++] = d[k];
    }
  }
  out[o] = 0;
  return (size_t)snprintf(buf, len, "%s", out);
}

size_t nn_promql_format_float_f(double v, char *buf, size_t len)
{
  return layout_f(v, buf, len);
}

size_t nn_promql_format_float(double v, char *buf, size_t len)
{
  if (!isfinite(v))
    return special(v, buf, len);
  double a = fabs(v);
  if (a == 0 || (a >= 1e-6 && a < 1e21))
    return layout_f(v, buf, len);
  char d[24];
  int exp, n = shortest_digits(v, d, &exp);
  char mant[40];
  size_t o = 0;
  if (v < 0)
    mant[o++] = '-';
  mant[o++] = d[0];
  if (n > 1) {
    mant[o++] = '.';
    for (int k = 1; k < n; k++)
      mant[o++] = d[k];
  }
  mant[o] = 0;
  return (size_t)snprintf(buf, len, "%se%c%02d", mant, exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
}

const char *nn_promql_errtype_name(enum nn_promql_errtype t)
{
  switch (t) {
  case NN_PROMQL_ERR_BAD_DATA: return "bad_data";
  case NN_PROMQL_ERR_EXECUTION: return "execution";
  case NN_PROMQL_ERR_TIMEOUT: return "timeout";
  case NN_PROMQL_ERR_CANCELED: return "canceled";
  case NN_PROMQL_ERR_INTERNAL: return "internal";
  default: return "none";
  }
}
