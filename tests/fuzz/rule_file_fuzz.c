/* SPDX-License-Identifier: Apache-2.0 */
/* Rule file text -> load and validate (YAML, PromQL, templates) -> free. */
#include <stddef.h>
#include <stdint.h>

#include "aggregator/rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char err[1024];
  if (size > 1 << 16)
    return 0;
  nn_rules_check_string("fuzz.yml", (const char *)data, size, err, sizeof(err));
  return 0;
}
