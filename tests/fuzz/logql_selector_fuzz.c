/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the LogQL stream selector and line-filter parser: any input must parse or fail
 * with a positioned message, never crash or leak; a parsed query is run against the
 * input itself as a log line. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn__ls_query q;
  char err[256];
  int rc = nn__logstore_query_parse((const char *)data, size, &q, err, sizeof(err));
  if (rc == 0) {
    if (q.nm == 0)
      __builtin_trap(); /* a successful parse always has a matcher */
    (void)nn__logstore_filters_match(&q, (const char *)data, size);
    for (size_t i = 0; i < q.nm; i++)
      (void)nn_matcher_matches(&q.m[i], "value");
  } else if (rc == NN_EINVAL && strncmp(err, "parse error at line ", 20) != 0) {
    __builtin_trap(); /* every syntax error says where */
  }
  nn__logstore_query_fini(&q);
  return 0;
}
