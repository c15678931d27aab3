/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes multiline joining over CRI, Docker and raw input: the first byte picks the format,
 * caps and tick spacing; entries must respect max_bytes and offsets must stay monotonic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/parse/parse.h"

struct check {
  uint64_t last_commit;
  uint64_t total;
  size_t max;
};

static void on_entry(void *ctx, const struct nn_parse_entry *e)
{
  struct check *c = ctx;
  if (e->commit_offset < c->last_commit || e->commit_offset > c->total || e->len > c->max)
    abort();
  c->last_commit = e->commit_offset;
}

static struct nn_parse_ml *rule;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  if (!rule) {
    char err[256];
    struct nn_parse_ml_config mc = {.start_pattern = "^(\\d{4}-\\d\\d-\\d\\d|[A-Z]+ )",
                                    .max_lines = 7,
                                    .max_bytes = 100,
                                    .flush_timeout_ms = 50};
    if (nn_parse_ml_create(&mc, &rule, err, sizeof(err)) < 0)
      abort();
  }
  uint8_t opt = data[0];
  const char *s = (const char *)data + 1;
  size--;
  struct check c = {0, size, 100};
  struct nn_parse_config cfg = {.format = (enum nn_parse_format)(opt & 3),
                                .max_line_size = 80,
                                .partial_timeout_ms = 70,
                                .ml = rule};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &c);
  if (!p)
    return 0;
  size_t off = 0;
  uint64_t now = 0;
  while (off < size) {
    const char *nl = memchr(s + off, '\n', size - off);
    size_t len = nl ? (size_t)(nl - (s + off)) : size - off;
    size_t end = nl ? off + len + 1 : size;
    nn_parse_feed(p, s + off, len, off, end, false);
    now += (opt >> 2) * 2;
    nn_parse_tick(p, now);
    off = end;
  }
  if (opt & 0x80)
    nn_parse_flush(p);
  nn_parse_destroy(p);
  return 0;
}
