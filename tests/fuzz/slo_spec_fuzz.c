/* SPDX-License-Identifier: Apache-2.0 */
/* YAML text -> Sloth / nines SLO spec loading (and rule export of what loaded) -> free. */
#include <stddef.h>
#include <stdint.h>

#include "aggregator/slo/slo.h"
#include "common/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn_slo_set *s = NULL;
  char err[512];
  if (nn_slo_set_load_string("fuzz.yml", (const char *)data, size, &s, err, sizeof(err)) == 0) {
    struct nn_buf b;
    nn_buf_init(&b, 1 << 22);
    nn_slo_export_prometheus(s, &b);
    nn_buf_fini(&b);
    nn_slo_set_destroy(s);
  }
  return 0;
}
