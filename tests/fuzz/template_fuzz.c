/* SPDX-License-Identifier: Apache-2.0 */
/* Alert template text -> parse -> expand with a fixed label set and value -> free. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aggregator/rules/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const struct nn_label labels[] = {
      {"__name__", "up"}, {"instance", "host:9100"}, {"job", "node"}};
  static const struct nn_label ext[] = {{"cluster", "eu"}};
  char err[512];
  struct nn__tmpl *t = NULL;
  if (size > 1 << 14)
    return 0;
  if (nn__tmpl_parse((const char *)data, size, "__alert_Fuzz", &t, err, sizeof(err)) < 0)
    return 0;
  struct nn__tmpl_data d = {.labels = labels,
                            .nlabels = 3,
                            .ext = ext,
                            .next = 1,
                            .ext_url = "http://nines",
                            .value = 1234.5678};
  free(nn__tmpl_expand_text(t, "__alert_Fuzz", &d));
  nn__tmpl_free(t);
  return 0;
}
