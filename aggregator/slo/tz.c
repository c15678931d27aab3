/* SPDX-License-Identifier: Apache-2.0 */
/* Time zones of calendar periods and daily series: UTC, a fixed offset, or an IANA zone
 * name read from the system tz database (TZif files under $TZDIR or /usr/share/zoneinfo).
 * A zone is kept as the POSIX TZ rule of its TZif footer (standard and daylight offsets and
 * the two yearly transitions), a small value with no allocation; local times are computed
 * without libc's localtime/TZ state, so any thread may use them. Transitions that happened
 * before the zone's current rule (e.g. a DST rule change years ago) are not modelled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/slo/internal.h"
#include "common/error.h"

#define MAX_TZIF (256 * 1024)

static int64_t floordiv(int64_t a, int64_t b)
{
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}
static bool is_alpha(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A zone abbreviation: three or more letters, or <...> (e.g. <+03>). */
static const char *p_name(const char *p)
{
  const char *q = p;
  if (*p == '<') {
    while (*p && *p != '>')
      p++;
    return *p == '>' && p - q >= 4 ? p + 1 : NULL;
  }
  while (is_alpha(*p))
    p++;
  return p - q >= 3 ? p : NULL;
}

/* [+-]h[h[h]][:mm[:ss]] with hours up to max_h; seconds into *out. */
static const char *p_hms(const char *p, int max_h, int32_t *out)
{
  int sign = 1;
  if (*p == '+' || *p == '-')
    sign = *p++ == '-' ? -1 : 1;
  if (!is_digit(*p))
    return NULL;
  int h = 0, n = 0;
  while (is_digit(*p) && n < 3) {
    h = h * 10 + (*p++ - '0');
    n++;
  }
  if (is_digit(*p) || h > max_h)
    return NULL;
  int32_t v = h * 3600;
  for (int k = 0, mul = 60; k < 2 && *p == ':'; k++, mul /= 60) {
    if (!is_digit(p[1]) || !is_digit(p[2]))
      return NULL;
    int x = (p[1] - '0') * 10 + (p[2] - '0');
    if (x > 59)
      return NULL;
    v += x * mul;
    p += 3;
  }
  *out = sign * v;
  return p;
}

static const char *p_int(const char *p, int lo, int hi, int8_t *out)
{
  int v = 0, n = 0;
  while (is_digit(*p) && n < 2) {
    v = v * 10 + (*p++ - '0');
    n++;
  }
  if (!n || is_digit(*p) || v < lo || v > hi)
    return NULL;
  *out = (int8_t)v;
  return p;
}

/* Mm.w.d[/time]; the Julian forms (Jn, n) are not used by current tzdata and rejected. */
static const char *p_rule(const char *p, struct nn_slo_tz_rule *r)
{
  if (*p++ != 'M')
    return NULL;
  if (!(p = p_int(p, 1, 12, &r->mon)) || *p++ != '.' || !(p = p_int(p, 1, 5, &r->week)) ||
      *p++ != '.' || !(p = p_int(p, 0, 6, &r->wday)))
    return NULL;
  r->time_s = 7200;
  if (*p == '/')
    p = p_hms(p + 1, 167, &r->time_s);
  return p;
}

int nn__slo_tz_parse_posix(const char *s, struct nn_slo_tz *tz)
{
  memset(tz, 0, sizeof(*tz));
  const char *p = p_name(s);
  int32_t west;
  if (!p || !(p = p_hms(p, 24, &west)))
    return NN_EINVAL;
  tz->std_s = -west;
  if (!*p)
    return 0;
  if (!(p = p_name(p)))
    return NN_EINVAL;
  tz->dst_s = tz->std_s + 3600;
  if (*p && *p != ',') {
    if (!(p = p_hms(p, 24, &west)))
      return NN_EINVAL;
    tz->dst_s = -west;
  }
  /* Without rules POSIX implies US rules; TZif footers always spell them out. */
  if (*p++ != ',' || !(p = p_rule(p, &tz->start)) || *p++ != ',' || !(p = p_rule(p, &tz->end)) ||
      *p)
    return NN_EINVAL;
  tz->dst = true;
  return 0;
}

static uint32_t be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int nn__slo_tz_from_tzif(const unsigned char *p, size_t n, struct nn_slo_tz *tz)
{
  if (n < 44 || memcmp(p, "TZif", 4) || p[4] < '2')
    return NN_EINVAL;
  uint64_t c[6]; /* isutcnt isstdcnt leapcnt timecnt typecnt charcnt */
  for (int i = 0; i < 6; i++)
    c[i] = be32(p + 20 + 4 * i);
  uint64_t off = 44 + c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
  if (off > n || n - off < 44 || memcmp(p + off, "TZif", 4))
    return NN_EINVAL;
  for (int i = 0; i < 6; i++)
    c[i] = be32(p + off + 20 + 4 * i);
  uint64_t data = off + 44;
  uint64_t types = data + c[3] * 9;
  off = types + c[4] * 6 + c[5] + c[2] * 12 + c[1] + c[0];
  if (c[4] == 0 || off >= n || p[off] != '\n')
    return NN_EINVAL;
  const unsigned char *f = p + off + 1, *e = memchr(f, '\n', n - off - 1);
  if (!e || memchr(f, 0, (size_t)(e - f)) || e - f > 255)
    return NN_EINVAL;
  if (e > f) {
    char s[256];
    memcpy(s, f, (size_t)(e - f));
    s[e - f] = 0;
    return nn__slo_tz_parse_posix(s, tz);
  }
  /* No rule for times after the last transition: the last transition's type holds. */
  uint64_t type = c[3] ? p[data + c[3] * 8 + c[3] - 1] : 0;
  if (type >= c[4])
    return NN_EINVAL;
  int64_t ut = (int32_t)be32(p + types + type * 6);
  if (ut < -25 * 3600 || ut > 26 * 3600)
    return NN_EINVAL;
  memset(tz, 0, sizeof(*tz));
  tz->std_s = (int32_t)ut;
  return 0;
}

static int parse_fixed(const char *t, struct nn_slo_tz *tz)
{
  memset(tz, 0, sizeof(*tz));
  if (!strcmp(t, "UTC") || !strcmp(t, "Z") || !strcmp(t, "Etc/UTC") || !strcmp(t, "GMT"))
    return 0;
  int sign = t[0] == '+' ? 1 : t[0] == '-' ? -1 : 0;
  if (!sign || strlen(t) != 6 || t[3] != ':')
    return NN_EINVAL;
  for (int i = 1; i < 6; i++)
    if (i != 3 && !is_digit(t[i]))
      return NN_EINVAL;
  int h = (t[1] - '0') * 10 + (t[2] - '0'), m = (t[4] - '0') * 10 + (t[5] - '0');
  if (h > 14 || m > 59)
    return NN_EINVAL;
  tz->std_s = sign * (h * 3600 + m * 60);
  return 0;
}

/* Area/Location names only: letters, digits, '_', '-', '+', '/' and no "." components. */
static bool zone_name_ok(const char *t)
{
  size_t n = strlen(t);
  if (!n || n > 128 || t[0] == '/' || t[n - 1] == '/' || strstr(t, "//"))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!is_alpha(t[i]) && !is_digit(t[i]) && !strchr("_-+/", t[i]))
      return false;
  return true;
}

int nn__slo_tz_parse(const char *t, struct nn_slo_tz *tz)
{
  if (parse_fixed(t, tz) == 0)
    return 0;
  if (!zone_name_ok(t))
    return NN_EINVAL;
  const char *dir = getenv("TZDIR");
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", t);
  FILE *fp = fopen(path, "rb");
  if (!fp)
    return NN_EINVAL;
  unsigned char *buf = malloc(MAX_TZIF);
  int rc = NN_ENOMEM;
  if (buf) {
    size_t n = fread(buf, 1, MAX_TZIF, fp);
    rc = n < MAX_TZIF ? nn__slo_tz_from_tzif(buf, n, tz) : NN_EINVAL;
  }
  free(buf);
  fclose(fp);
  return rc;
}

bool nn__slo_tz_equal(const struct nn_slo_tz *a, const struct nn_slo_tz *b)
{
  if (a->std_s != b->std_s || a->dst != b->dst)
    return false;
  if (!a->dst)
    return true;
  return a->dst_s == b->dst_s && !memcmp(&a->start, &b->start, sizeof(a->start)) &&
         !memcmp(&a->end, &b->end, sizeof(a->end));
}

/* Local (wall-clock before the change) seconds since the epoch of rule r in year y. */
static int64_t rule_local(int y, const struct nn_slo_tz_rule *r)
{
  int64_t first = nn__slo_days_from_civil(y, r->mon, 1);
  int64_t next = r->mon == 12 ? nn__slo_days_from_civil(y + 1, 1, 1)
                              : nn__slo_days_from_civil(y, r->mon + 1, 1);
  int64_t wd1 = ((first + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday */
  int64_t day = first + (r->wday - wd1 + 7) % 7 + (int64_t)(r->week - 1) * 7;
  while (day >= next)
    day -= 7;
  return day * 86400 + r->time_s;
}

int nn__slo_tz_offset(const struct nn_slo_tz *tz, int64_t utc_s)
{
  if (!tz)
    return 0;
  if (!tz->dst)
    return tz->std_s;
  int y, mo, d;
  nn__slo_civil(floordiv(utc_s + tz->std_s, 86400), &y, &mo, &d);
  int64_t on = rule_local(y, &tz->start) - tz->std_s;
  int64_t off = rule_local(y, &tz->end) - tz->dst_s;
  bool in = on < off ? utc_s >= on && utc_s < off : !(utc_s >= off && utc_s < on);
  return in ? tz->dst_s : tz->std_s;
}

int64_t nn__slo_tz_local_min(const struct nn_slo_tz *tz, int64_t m)
{
  return m + nn__slo_tz_offset(tz, m * 60) / 60;
}

int64_t nn__slo_tz_utc_min(const struct nn_slo_tz *tz, int64_t local)
{
  if (!tz)
    return local;
  int o = nn__slo_tz_offset(tz, (local - tz->std_s / 60) * 60);
  o = nn__slo_tz_offset(tz, (local - o / 60) * 60);
  return local - o / 60;
}
