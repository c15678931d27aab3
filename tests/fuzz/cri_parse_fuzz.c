/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes CRI framing and the stateful parser: lines split at '\n' are fed with offsets, and
 * every entry must stay inside the input, with commit offsets that never go backwards. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/parse/parse.h"

struct check {
  uint64_t last_commit;
  uint64_t total;
};

static void on_entry(void *ctx, const struct nn_parse_entry *e)
{
  struct check *c = ctx;
  if (e->commit_offset < c->last_commit || e->commit_offset > c->total ||
      e->start_offset > e->end_offset || e->end_offset > c->total || e->len > 64)
    abort();
  c->last_commit = e->commit_offset;
  if (e->len)
    (void)((volatile const char *)e->line)[e->len - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *s = (const char *)data;
  struct nn_parse_cri_line one;
  int64_t ns;
  (void)nn_parse_cri_line(s, size, &one);
  (void)nn_parse_rfc3339(s, size < 40 ? size : 40, &ns);
  struct check c = {0, size};
  struct nn_parse_config cfg = {.format = NN_PARSE_CRI, .max_line_size = 64};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &c);
  if (!p)
    return 0;
  size_t off = 0;
  uint64_t now = 0;
  while (off < size) {
    const char *nl = memchr(s + off, '\n', size - off);
    size_t len = nl ? (size_t)(nl - (s + off)) : size - off;
    size_t end = nl ? off + len + 1 : size;
    nn_parse_feed(p, s + off, len, off, end, len > 200);
    now += 3000;
    nn_parse_tick(p, now);
    off = end;
  }
  nn_parse_flush(p);
  nn_parse_destroy(p);
  return 0;
}
