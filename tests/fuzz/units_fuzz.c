/* SPDX-License-Identifier: Apache-2.0 */
/* Duration and size parsers: no crash on any input, and whatever parses formats back to a
 * string that parses to the same value. Formatting of arbitrary values round-trips too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char buf[128];
  int64_t ms, back;
  if (nn_duration_parse((const char *)data, size, &ms) == 0) {
    if (ms < 0 || ms > NN_DURATION_MAX_MS)
      abort();
    if (nn_duration_format(ms, buf, sizeof(buf)) != 0)
      abort();
    if (nn_duration_parse(buf, strlen(buf), &back) != 0 || back != ms)
      abort();
  }
  uint64_t bytes, bback;
  if (nn_size_parse((const char *)data, size, &bytes) == 0) {
    if (bytes > NN_SIZE_MAX_BYTES)
      abort();
    if (nn_size_format(bytes, buf, sizeof(buf)) != 0)
      abort();
    if (nn_size_parse(buf, strlen(buf), &bback) != 0 || bback != bytes)
      abort();
  }
  if (size >= 8) {
    uint64_t raw;
    memcpy(&raw, data, 8);
    int64_t v = (int64_t)raw;
    if (nn_duration_format(v, buf, sizeof(buf)) != 0)
      abort();
    if (v >= 0 && v <= NN_DURATION_MAX_MS &&
        (nn_duration_parse(buf, strlen(buf), &back) != 0 || back != v))
      abort();
    if (nn_size_format(raw, buf, sizeof(buf)) != 0)
      abort();
    if (raw <= NN_SIZE_MAX_BYTES && (nn_size_parse(buf, strlen(buf), &bback) != 0 || bback != raw))
      abort();
  }
  return 0;
}
