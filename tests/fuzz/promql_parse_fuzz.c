/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the PromQL parser: parse, print, re-parse the printed form, free. A printed
 * expression must always parse again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/promql/promql.h"
#include "common/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn_promql_expr *e = NULL, *e2 = NULL;
  struct nn_promql_error err;
  if (size > 4096)
    return 0;
  if (nn_promql_parse((const char *)data, size, &e, &err) != 0)
    return 0;
  struct nn_buf b;
  nn_buf_init(&b, 1 << 20);
  if (nn_promql_expr_print(e, &b) == 0 && b.data) {
    if (nn_promql_parse(b.data, b.len, &e2, &err) != 0)
      abort();
    nn_promql_expr_free(e2);
  }
  nn_buf_fini(&b);
  nn_promql_expr_free(e);
  return 0;
}
