/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the exposition parser: the first byte picks text or OpenMetrics, the rest is the
 * body. Every sample must have __name__ first, sorted unique labels and NUL-terminated
 * strings inside the callback. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/expfmt/expfmt.h"
#include "common/error.h"

static int on_sample(void *ud, const struct nn_expfmt_sample *s)
{
  if (s->nlabels == 0 || strcmp(s->labels[0].name, "__name__") != 0)
    abort();
  for (size_t i = 2; i < s->nlabels; i++)
    if (strcmp(s->labels[i - 1].name, s->labels[i].name) >= 0)
      abort();
  for (size_t i = 0; i < s->nlabels; i++)
    (void)(strlen(s->labels[i].name) + strlen(s->labels[i].value));
  return 0;
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
  if (!p)
    p = nn_expfmt_parser_create(64);
  if (size == 0)
    return 0;
  enum nn_expfmt_format fmt = data[0] & 1 ? NN_EXPFMT_OPENMETRICS : NN_EXPFMT_TEXT;
  /* A copy without a terminator, so reads past the end are caught. */
  char *b = malloc(size - 1 ? size - 1 : 1);
  memcpy(b, data + 1, size - 1);
  struct nn_expfmt_handler h = {on_sample, on_meta, NULL};
  int rc = nn_expfmt_parse(p, fmt, b, size - 1, &h, NULL);
  if (rc < 0 && !nn_expfmt_parser_error(p)[0] && rc != NN_ENOMEM)
    abort();
  free(b);
  return 0;
}
