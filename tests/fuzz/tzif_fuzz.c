/* SPDX-License-Identifier: Apache-2.0 */
/* TZif file bytes -> footer POSIX TZ rule -> offsets and calendar starts around the rule's
 * transitions (every parsed rule must give offsets it declared). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aggregator/slo/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn_slo_tz tz;
  if (nn__slo_tz_from_tzif(data, size, &tz) < 0)
    return 0;
  for (int64_t m = 29000000; m < 29000000 + 366 * 1440; m += 997) {
    int off = nn__slo_tz_offset(&tz, m * 60);
    if (off != tz.std_s && !(tz.dst && off == tz.dst_s))
      abort();
    int64_t start = nn__slo_calendar_start(m, &tz, true);
    (void)nn__slo_month_of(start, &tz);
    (void)nn__slo_tz_utc_min(&tz, nn__slo_tz_local_min(&tz, m));
  }
  return 0;
}
