/* SPDX-License-Identifier: Apache-2.0 */
/* CRI log framing (`<RFC3339Nano> <stdout|stderr> <P|F> <message>`, as written by containerd
 * and CRI-O), RFC 3339 timestamps and format sniffing. Hand-written, no regex: this runs once
 * per log line and must cost a few tens of nanoseconds. */
#include "agent/parse/parse.h"

#include <string.h>

#include "agent/parse/internal.h"
#include "common/error.h"

static int digits(const char *s, size_t n, int *out)
{
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned char)s[i] - '0';
    if (d > 9)
      return -1;
    v = v * 10 + (int)d;
  }
  *out = v;
  return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
  static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 29;
  return dm[m - 1];
}

/* The "YYYY-MM-DDTHH:MM:SS" part (19 bytes, n >= 20 checked by the caller) as seconds since
 * the epoch, validated. */
static int rfc3339_prefix(const char *s, int64_t *out_secs)
{
  int y, mo, d, h, mi, sec;
  if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return NN_EINVAL;
  if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) || digits(s + 11, 2, &h) ||
      digits(s + 14, 2, &mi) || digits(s + 17, 2, &sec))
    return NN_EINVAL;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
    return NN_EINVAL;
  /* A leap second (:60) is folded into the next second. */
  *out_secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
  return 0;
}

/* The fraction and zone after the 19-byte prefix whose value is secs. */
static int rfc3339_rest(const char *s, size_t n, int64_t secs, int64_t *out_ns)
{
  size_t i = 19;
  int64_t frac = 0;
  if (s[i] == '.') {
    i++;
    size_t nd = 0;
    while (i < n && (unsigned)((unsigned char)s[i] - '0') <= 9) {
      if (nd < 9) {
        frac = frac * 10 + (s[i] - '0');
        nd++;
      }
      i++;
    }
    if (nd == 0)
      return NN_EINVAL;
    for (; nd < 9; nd++)
      frac *= 10;
  }
  if (i >= n)
    return NN_EINVAL;
  int64_t off = 0;
  if (s[i] == 'Z' || s[i] == 'z') {
    i++;
  } else if (s[i] == '+' || s[i] == '-') {
    int oh, om;
    int sign = s[i] == '-' ? -1 : 1;
    i++;
    if (n - i >= 5 && s[i + 2] == ':') {
      if (digits(s + i, 2, &oh) || digits(s + i + 3, 2, &om))
        return NN_EINVAL;
      i += 5;
    } else if (n - i >= 4) {
      if (digits(s + i, 2, &oh) || digits(s + i + 2, 2, &om))
        return NN_EINVAL;
      i += 4;
    } else {
      return NN_EINVAL;
    }
    if (oh > 23 || om > 59)
      return NN_EINVAL;
    off = sign * (int64_t)(oh * 3600 + om * 60);
  } else {
    return NN_EINVAL;
  }
  if (i != n)
    return NN_EINVAL;
  /* int64 ns covers the years 1678 to 2261; anything outside is not a log timestamp. */
  secs -= off;
  if (secs < -INT64_C(9223372035) || secs > INT64_C(9223372035))
    return NN_EINVAL;
  *out_ns = secs * 1000000000 + frac;
  return 0;
}

int nn__parse_rfc3339_cached(struct nn__parse_ts_cache *c, const char *s, size_t n, int64_t *out_ns)
{
  if (n < 20)
    return NN_EINVAL;
  int64_t secs;
  if (c && c->valid && memcmp(s, c->prefix, sizeof(c->prefix)) == 0) {
    secs = c->secs;
  } else {
    if (rfc3339_prefix(s, &secs) < 0)
      return NN_EINVAL;
    if (c) {
      memcpy(c->prefix, s, sizeof(c->prefix));
      c->secs = secs;
      c->valid = true;
    }
  }
  return rfc3339_rest(s, n, secs, out_ns);
}

int nn_parse_rfc3339(const char *s, size_t n, int64_t *out_ns)
{
  return nn__parse_rfc3339_cached(NULL, s, n, out_ns);
}

int nn__parse_cri_line_cached(struct nn__parse_ts_cache *c, const char *line, size_t len,
                              struct nn_parse_cri_line *out)
{
  const char *sp = memchr(line, ' ', len < 64 ? len : 64);
  if (!sp)
    return NN_EINVAL;
  size_t tlen = (size_t)(sp - line);
  if (nn__parse_rfc3339_cached(c, line, tlen, &out->ts_ns) < 0)
    return NN_EINVAL;
  const char *p = sp + 1;
  size_t rest = len - tlen - 1;
  if (rest >= 7 && memcmp(p, "stdout ", 7) == 0)
    out->stream = NN_PARSE_STREAM_STDOUT;
  else if (rest >= 7 && memcmp(p, "stderr ", 7) == 0)
    out->stream = NN_PARSE_STREAM_STDERR;
  else
    return NN_EINVAL;
  p += 7;
  rest -= 7;
  if (rest < 1 || (p[0] != 'P' && p[0] != 'F'))
    return NN_EINVAL;
  out->partial = p[0] == 'P';
  /* The tag may be followed by ":"-separated future flags (the CRI spec reserves them). */
  size_t k = 1;
  while (k < rest && p[k] != ' ')
    k++;
  if (k > 1 && p[1] != ':')
    return NN_EINVAL;
  if (k < rest) {
    out->msg = p + k + 1;
    out->msg_len = rest - k - 1;
  } else {
    out->msg = p + k;
    out->msg_len = 0;
  }
  return 0;
}

int nn_parse_cri_line(const char *line, size_t len, struct nn_parse_cri_line *out)
{
  return nn__parse_cri_line_cached(NULL, line, len, out);
}

enum nn_parse_format nn_parse_detect(const char *line, size_t len)
{
  struct nn_parse_cri_line c;
  size_t i = 0;
  while (i < len && (line[i] == ' ' || line[i] == '\t'))
    i++;
  if (i < len && line[i] == '{' && len - i >= 7 && memmem(line, len, "\"log\"", 5))
    return NN_PARSE_DOCKER;
  if (nn_parse_cri_line(line, len, &c) == 0)
    return NN_PARSE_CRI;
  return NN_PARSE_RAW;
}
