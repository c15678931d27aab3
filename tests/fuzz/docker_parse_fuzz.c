/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes Docker json-file records and the stateful parser: lines split at '\n' are fed with
 * offsets, and every entry must stay inside the input, with commit offsets that never go backwards.
 * Each line (JSON like the access logs logs.metrics reads) also goes through the logs -> metrics
 * JSON scanner, which must accept exactly what jansson accepts and give the same fields. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/logmetrics/internal.h"
#include "agent/parse/parse.h"
#include "common/buf.h"

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

static void logmetrics_agree(const char *line, size_t len, int which)
{
  static const struct nn_logmetrics_config cfgs[2] = {
      {.service_field = "service",
       .endpoint_field = "path",
       .method_field = "method",
       .status_field = "status",
       .duration_field = "duration_ms",
       .duration_unit_seconds = 0.001},
      {.service_field = "attrs",
       .endpoint_field = "log",
       .method_field = "",
       .status_field = "stream",
       .duration_field = "time",
       .duration_unit_seconds = 1},
  };
  struct nn__logmetrics_fields a, b;
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  a.seconds = b.seconds = NAN;
  bool ra = nn__logmetrics_json_scan(&cfgs[which], line, len, &a);
  bool rb = nn__logmetrics_json_jansson(&cfgs[which], line, len, &b);
  if (ra != rb)
    abort();
  if (ra && (memcmp(a.key, b.key, sizeof(a.key)) != 0 || strcmp(a.status, b.status) != 0 ||
             !((isnan(a.seconds) && isnan(b.seconds)) ||
               memcmp(&a.seconds, &b.seconds, sizeof(a.seconds)) == 0)))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *s = (const char *)data;
  struct nn_parse_docker_line one;
  struct nn_buf scratch;
  int64_t ns;
  nn_buf_init(&scratch, size + 1);
  (void)nn_parse_docker_line(s, size, size & 1, &scratch, &one);
  nn_buf_fini(&scratch);
  (void)nn_parse_rfc3339(s, size < 40 ? size : 40, &ns);
  struct check c = {0, size};
  struct nn_parse_config cfg = {.format = NN_PARSE_DOCKER, .max_line_size = 64};
  struct nn_parser *p = nn_parse_create(&cfg, on_entry, &c);
  if (!p)
    return 0;
  size_t off = 0;
  uint64_t now = 0;
  while (off < size) {
    const char *nl = memchr(s + off, '\n', size - off);
    size_t len = nl ? (size_t)(nl - (s + off)) : size - off;
    size_t end = nl ? off + len + 1 : size;
    logmetrics_agree(s + off, len, (int)(size & 1));
    nn_parse_feed(p, s + off, len, off, end, len > 200);
    now += 3000;
    nn_parse_tick(p, now);
    off = end;
  }
  nn_parse_flush(p);
  nn_parse_destroy(p);
  return 0;
}
