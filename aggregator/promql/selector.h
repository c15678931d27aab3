/* SPDX-License-Identifier: Apache-2.0 */
/* Series selectors as the API's match[] parameter takes them: one vector selector, no
 * functions or ranges (Prometheus's parser.ParseMetricSelector). */
#ifndef NN_AGGREGATOR_PROMQL_SELECTOR_H
#define NN_AGGREGATOR_PROMQL_SELECTOR_H

#include <stddef.h>

#include "aggregator/promql/promql.h"

/* Parses s as a vector selector. *ms points into *expr, which the caller frees with
 * nn_promql_expr_free. NN_EINVAL with Prometheus's message in err otherwise. */
int nn_promql_parse_selector(const char *s, size_t len, struct nn_promql_expr **expr,
                             const struct nn_matcher **ms, size_t *n, struct nn_promql_error *err);

#endif
