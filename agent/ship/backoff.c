/* SPDX-License-Identifier: Apache-2.0 */
/* Retry timing: exponential backoff with full jitter (so a fleet of agents that lost the
 * aggregator together does not come back in lockstep), and Retry-After parsing. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/ship/ship.h"

static uint64_t next_rand(uint64_t *s)
{
  uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

int64_t nn_ship_backoff_delay(int64_t min_ms, int64_t max_ms, uint32_t attempt, uint64_t *rng)
{
  if (min_ms < 1)
    min_ms = 1;
  if (max_ms < min_ms)
    max_ms = min_ms;
  int64_t hi = min_ms;
  for (uint32_t i = 1; i < attempt && hi < max_ms; i++)
    hi = hi > max_ms / 2 ? max_ms : hi * 2;
  if (hi > max_ms)
    hi = max_ms;
  uint64_t span = (uint64_t)(hi - min_ms) + 1;
  return min_ms + (int64_t)(next_rand(rng) % span);
}

int64_t nn_ship_retry_after_parse(const char *v, size_t len, int64_t now_unix_ms)
{
  char buf[64];
  while (len > 0 && (*v == ' ' || *v == '\t')) {
    v++;
    len--;
  }
  while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r'))
    len--;
  if (len == 0 || len >= sizeof(buf))
    return -1;
  memcpy(buf, v, len);
  buf[len] = '\0';
  if (buf[0] >= '0' && buf[0] <= '9') {
    int64_t secs = 0;
    for (size_t i = 0; i < len; i++) {
      if (buf[i] < '0' || buf[i] > '9')
        return -1;
      if (secs > 100000000) /* years: the caller caps it anyway */
        return 100000000000ll;
      secs = secs * 10 + (buf[i] - '0');
    }
    return secs * 1000;
  }
  /* IMF-fixdate, e.g. "Wed, 21 Oct 2015 07:28:00 GMT". */
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0')
    return -1;
  int64_t at = (int64_t)timegm(&tm) * 1000;
  return at > now_unix_ms ? at - now_unix_ms : 0;
}
