/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the exposition parser: the first byte picks text or OpenMetrics, the rest is the
 * body. Every sample must have __name__ first, sorted unique labels and NUL-terminated
 * strings inside the callback. The body is then parsed again through the on_series fast
 * path, which takes every series text the first parse delivered: the samples (labels,
 * value, timestamp, type), the return code and the error must come out the same. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/expfmt/expfmt.h"
#include "common/error.h"

#define KNOWN_MAX 4096

struct run {
  uint64_t digest; /* of every sample in order */
  size_t nknown;
  const char *text[KNOWN_MAX];
  size_t len[KNOWN_MAX];
  uint64_t labels[KNOWN_MAX]; /* digest of the labels parsed for text[i] */
  bool learn;
};

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

static void add_sample(struct run *r, uint64_t labels, const struct nn_expfmt_sample *s)
{
  uint64_t bits;
  memcpy(&bits, &s->value, sizeof(bits));
  int64_t ts = s->has_ts ? s->ts_ms : INT64_MIN;
  int type = (int)s->type;
  r->digest = mix(r->digest, &labels, sizeof(labels));
  r->digest = mix(r->digest, &bits, sizeof(bits));
  r->digest = mix(r->digest, &ts, sizeof(ts));
  r->digest = mix(r->digest, &type, sizeof(type));
}

static int on_sample(void *ud, const struct nn_expfmt_sample *s)
{
  struct run *r = ud;
  if (s->nlabels == 0 || strcmp(s->labels[0].name, "__name__") != 0 || !s->series ||
      s->series_len < strlen(s->labels[0].value))
    abort();
  for (size_t i = 2; i < s->nlabels; i++)
    if (strcmp(s->labels[i - 1].name, s->labels[i].name) >= 0)
      abort();
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < s->nlabels; i++) {
    h = mix(h, s->labels[i].name, strlen(s->labels[i].name) + 1);
    h = mix(h, s->labels[i].value, strlen(s->labels[i].value) + 1);
  }
  if (r->learn && r->nknown < KNOWN_MAX) {
    r->text[r->nknown] = s->series;
    r->len[r->nknown] = s->series_len;
    r->labels[r->nknown++] = h;
  }
  add_sample(r, h, s);
  return 0;
}

static int on_series(void *ud, const struct nn_expfmt_sample *s)
{
  struct run *r = ud;
  if (s->labels || !s->series)
    abort();
  for (size_t i = 0; i < r->nknown; i++) {
    if (r->len[i] == s->series_len && memcmp(r->text[i], s->series, s->series_len) == 0) {
      add_sample(r, r->labels[i], s);
      return 0;
    }
  }
  return NN_EXPFMT_PARSE_LABELS;
}

static int on_meta(void *ud, const struct nn_expfmt_meta *m)
{
  if (strlen(m->family) == 0 || strlen(m->text) > m->text_len)
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct nn_expfmt_parser *p;
  static struct run r;
  static char err[512];
  if (!p)
    p = nn_expfmt_parser_create(64);
  if (size == 0)
    return 0;
  enum nn_expfmt_format fmt = data[0] & 1 ? NN_EXPFMT_OPENMETRICS : NN_EXPFMT_TEXT;
  /* A copy without a terminator, so reads past the end are caught. */
  char *b = malloc(size - 1 ? size - 1 : 1);
  memcpy(b, data + 1, size - 1);
  memset(&r, 0, sizeof(r));
  r.learn = true;
  struct nn_expfmt_handler h = {on_sample, on_meta, NULL};
  int rc = nn_expfmt_parse(p, fmt, b, size - 1, &h, &r);
  if (rc < 0 && !nn_expfmt_parser_error(p)[0] && rc != NN_ENOMEM)
    abort();
  snprintf(err, sizeof(err), "%s", nn_expfmt_parser_error(p));
  uint64_t digest = r.digest;
  r.digest = 0;
  r.learn = false;
  struct nn_expfmt_handler fast = {on_sample, on_meta, on_series};
  int rc2 = nn_expfmt_parse(p, fmt, b, size - 1, &fast, &r);
  if (rc != NN_ENOMEM && rc2 != NN_ENOMEM &&
      (rc2 != rc || r.digest != digest || strcmp(err, nn_expfmt_parser_error(p)) != 0))
    abort();
  free(b);
  return 0;
}
