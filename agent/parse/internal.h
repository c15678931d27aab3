/* SPDX-License-Identifier: Apache-2.0 */
/* Private to agent/parse: the compiled multiline rule and the timestamp cache. */
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

/* The seconds of the last timestamp's "YYYY-MM-DDTHH:MM:SS" prefix: consecutive log lines
 * mostly share it, so only the fraction and zone are parsed again. */
struct nn__parse_ts_cache {
  char prefix[19];
  bool valid;
  int64_t secs;
};
/* nn_parse_rfc3339 / nn_parse_cri_line through a cache (NULL: none). */
int nn__parse_rfc3339_cached(struct nn__parse_ts_cache *c, const char *s, size_t n,
                             int64_t *out_ns);
struct nn_parse_cri_line;
int nn__parse_cri_line_cached(struct nn__parse_ts_cache *c, const char *line, size_t len,
                              struct nn_parse_cri_line *out);

#endif
