/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the LogQL metric query parser: any input must parse or fail with a positioned
 * message, never crash or leak; a parsed query is walked to check the tree's invariants
 * (a number never stands where a vector is needed, one side of arithmetic is a number, an
 * unwrap aggregation has an unwrap), and its pipeline is run over the input as a line. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"

static void check(const struct nn__ls_mexpr *e, bool vector, const uint8_t *data, size_t size)
{
  const char *ul;
  switch (e->type) {
  case LS_M_NUM:
    if (vector)
      __builtin_trap();
    return;
  case LS_M_RANGE:
    if (e->q.nm == 0 || e->range_ns <= 0 || e->a || e->b)
      __builtin_trap();
    (void)nn__logstore_filters_match(&e->q, (const char *)data, size);
    if (nn__logstore_pipeline_unwrap(e->q.pl, &ul) == LS_CONV_NONE && e->fn >= LS_RF_SUM)
      __builtin_trap(); /* the unwrap aggregations always have an unwrap */
    if (e->q.pl) {
      size_t mem = 0, n;
      double v;
      struct nn__ls_prun r;
      nn__logstore_prun_init(&r, e->q.pl, &mem, 1u << 20);
      if (nn__logstore_prun_line(&r, NULL, 0, (const char *)data, size) > 0 &&
          (!ul || nn__logstore_prun_unwrap(&r, &v) > 0))
        (void)nn__logstore_prun_labels(&r, e->labels, e->nlabels, e->grouped, e->without, &n);
      nn__logstore_prun_fini(&r);
    }
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
