/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the LogQL metric query parser: any input must parse or fail with a positioned
 * message, never crash or leak; a parsed query is walked to check the tree's invariants
 * (a number never stands where a vector is needed, one side of arithmetic is a number). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"

static void check(const struct nn__ls_mexpr *e, bool vector, const uint8_t *data, size_t size)
{
  switch (e->type) {
  case LS_M_NUM:
    if (vector)
      __builtin_trap();
    return;
  case LS_M_RANGE:
    if (e->q.nm == 0 || e->range_ns <= 0 || e->a || e->b)
      __builtin_trap();
    (void)nn__logstore_filters_match(&e->q, (const char *)data, size);
    return;
  case LS_M_AGG:
    if (!e->a || e->b || ((e->op == LS_AG_TOPK || e->op == LS_AG_BOTTOMK) && e->k < 1))
      __builtin_trap();
    check(e->a, true, data, size);
    return;
  case LS_M_BIN:
    if (!e->a || !e->b || ((e->a->type == LS_M_NUM) == (e->b->type == LS_M_NUM)))
      __builtin_trap();
    check(e->a, false, data, size);
    check(e->b, false, data, size);
    return;
  }
  __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn__ls_mexpr *e = NULL;
  char err[256];
  int rc = nn__logstore_metric_parse((const char *)data, size, &e, err, sizeof(err));
  if (rc == 0) {
    if (!e)
      __builtin_trap();
    check(e, true, data, size);
  } else if (e) {
    __builtin_trap(); /* a failed parse leaves nothing to free */
  } else if (rc == NN_EINVAL && strncmp(err, "parse error at line ", 20) != 0) {
    __builtin_trap(); /* every syntax error says where */
  }
  nn__logstore_mexpr_free(e);
  return 0;
}
