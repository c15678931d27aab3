/* SPDX-License-Identifier: Apache-2.0 */
/* Multiline rules: a PCRE2 start pattern, compiled once with JIT and shared by every file's
 * parser. The joining itself lives in parse.c next to the P/F reassembly, because both
 * decide which pending bytes hold the file's checkpoint back. */
#include "agent/parse/internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "agent/parse/parse.h"
#include "common/error.h"

int nn_parse_ml_create(const struct nn_parse_ml_config *cfg, struct nn_parse_ml **out, char *err,
                       size_t errlen)
{
  int errcode;
  PCRE2_SIZE erroff;
  *out = NULL;
  if (!cfg->start_pattern || !cfg->start_pattern[0]) {
    snprintf(err, errlen, "multiline start_pattern is empty");
    return NN_ECONFIG;
  }
  struct nn_parse_ml *ml = calloc(1, sizeof(*ml));
  if (!ml)
    return NN_ENOMEM;
  ml->re = pcre2_compile((PCRE2_SPTR)cfg->start_pattern, PCRE2_ZERO_TERMINATED, 0, &errcode,
                         &erroff, NULL);
  if (!ml->re) {
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(errcode, msg, sizeof(msg));
    snprintf(err, errlen, "multiline start_pattern \"%s\": %s at offset %zu", cfg->start_pattern,
             (const char *)msg, (size_t)erroff);
    free(ml);
    return NN_ECONFIG;
  }
  /* JIT is an optimisation; without it (unsupported arch) matching still works. */
  (void)pcre2_jit_compile(ml->re, PCRE2_JIT_COMPLETE);
  ml->max_lines = cfg->max_lines ? cfg->max_lines : 500;
  ml->max_bytes = cfg->max_bytes;
  ml->flush_timeout_ms = cfg->flush_timeout_ms ? cfg->flush_timeout_ms : 1000;
  *out = ml;
  return 0;
}

void nn_parse_ml_destroy(struct nn_parse_ml *ml)
{
  if (!ml)
    return;
  pcre2_code_free(ml->re);
  free(ml);
}

pcre2_match_data *nn__parse_ml_match_data(const struct nn_parse_ml *ml)
{
  return pcre2_match_data_create(1, NULL);
}

bool nn__parse_ml_is_start(const struct nn_parse_ml *ml, pcre2_match_data *md, const char *line,
                           size_t len)
{
  /* Match errors (e.g. PCRE2_ERROR_MATCHLIMIT on a hostile line) count as "not a start":
   * the line is then joined to the pending entry, which max_lines/max_bytes bound. */
  int rc = pcre2_match(ml->re, (PCRE2_SPTR)line, len, 0, 0, md, NULL);
  return rc >= 0;
}
