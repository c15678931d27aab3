/* SPDX-License-Identifier: Apache-2.0 */
/* Private to agent/logmetrics: the fields one access-log line yields, and the two ways of
 * taking them from a JSON line (the scanner the agent uses, and the jansson tree it replaced,
 * kept as the reference that tests and the fuzzer compare it with). */
#ifndef NN_AGENT_LOGMETRICS_INTERNAL_H
#define NN_AGENT_LOGMETRICS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/logmetrics/logmetrics.h"

#define NN__LM_FIELD_MAX  128
#define NN__LM_STATUS_MAX 16

enum { NN__LM_SERVICE, NN__LM_ENDPOINT, NN__LM_METHOD, NN__LM_PROJECT, NN__LM_NKEY };

/* What a line gives: key[] holds service, endpoint and method (project comes from the
 * stream), each NUL-terminated, at most 127 bytes of the value with control characters,
 * quotes and backslashes dropped; an integer value in its decimal form. status is at most 15
 * bytes of the same. seconds is NAN when the line has no numeric duration. Every byte of
 * key[] past a value's NUL is zero, so that the whole array can be hashed. */
struct nn__logmetrics_fields {
  char key[NN__LM_NKEY][NN__LM_FIELD_MAX];
  char status[NN__LM_STATUS_MAX];
  double seconds;
};

/* Appends src[0..n) to dst as copy_field does: at most 127 bytes of src, without control
 * characters, '"' and '\\'; dst is NUL-terminated. */
void nn__logmetrics_copy_field(char *dst, const char *src, size_t n);

/* Fills f (which the caller zeroed, seconds NAN) from a line that must be one JSON object,
 * in one pass and without allocating on ordinary lines. Accepts exactly what jansson 2.14's
 * json_loadb accepts (strict UTF-8, no \u0000, integers within int64, reals that do not
 * overflow, nesting of at most 2,048 values); a key given twice counts by its last value, as
 * in jansson's tree. False when the line is not such an object (f is then unspecified). */
bool nn__logmetrics_json_scan(const struct nn_logmetrics_config *cfg, const char *line, size_t len,
                              struct nn__logmetrics_fields *f);

/* The same through json_loadb and json_object_get: the code the scanner replaced. */
bool nn__logmetrics_json_jansson(const struct nn_logmetrics_config *cfg, const char *line,
                                 size_t len, struct nn__logmetrics_fields *f);

/* nn_metrics_format_value(v) (the shortest form that reads back as v), with most of its
 * search skipped for values of 15 digits or more. */
void nn__logmetrics_format_sum(double v, char *buf, size_t len);

#endif
