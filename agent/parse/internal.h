/* SPDX-License-Identifier: Apache-2.0 */
/* Private to agent/parse: the compiled multiline rule. */
#ifndef NN_AGENT_PARSE_INTERNAL_H
#define NN_AGENT_PARSE_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nn_parse_ml {
  pcre2_code *re;
  uint32_t max_lines;
  size_t max_bytes; /* 0: the parser's max_line_size */
  uint32_t flush_timeout_ms;
};

/* True when line starts a new multiline entry. md comes from nn__parse_ml_match_data. */
bool nn__parse_ml_is_start(const struct nn_parse_ml *ml, pcre2_match_data *md, const char *line,
                           size_t len);
pcre2_match_data *nn__parse_ml_match_data(const struct nn_parse_ml *ml);

#endif
