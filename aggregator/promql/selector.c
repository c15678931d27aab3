/* SPDX-License-Identifier: Apache-2.0 */
/* match[] selectors, parsed with the full PromQL parser and then checked to be a plain
 * vector selector. */
#include "aggregator/promql/selector.h"

#include <stdio.h>

#include "aggregator/promql/internal.h"
#include "common/error.h"

int nn_promql_parse_selector(const char *s, size_t len, struct nn_promql_expr **expr,
                             const struct nn_matcher **ms, size_t *n, struct nn_promql_error *err)
{
  struct nn_promql_expr *e = NULL;
  int rc = nn_promql_parse(s, len, &e, err);
  if (rc < 0)
    return rc;
  const struct nn__promql_node *node = e->root;
  while (node && node->kind == N_PAREN)
    node = node->child;
  if (!node || node->kind != N_VSEL || node->offset_ms != 0 || node->at != AT_NONE) {
    err->type = NN_PROMQL_ERR_BAD_DATA;
    snprintf(err->msg, sizeof(err->msg),
             "1:1: parse error: expected a series selector such as "
             "up{job=\"x\"}, got an expression");
    nn_promql_expr_free(e);
    return NN_EINVAL;
  }
  *expr = e;
  *ms = node->matchers;
  *n = node->nmatchers;
  return 0;
}
