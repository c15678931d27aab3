/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the LogQL stream selector, line-filter and pipeline stage parser: any input must
 * parse or fail with a positioned message, never crash or leak; a parsed query is run against
 * a log line: the bytes after the input's first NUL if it has one (so the fuzzer controls
 * query and line apart), else the input itself, through the line filters and the stages. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"

/* Runs q's stages over line with stream labels that clash with common extracted names. */
static void run_pipeline(const struct nn__ls_query *q, const char *line, size_t len)
{
  static const struct nn_label base[] = {{"app", "api"}, {"level", "info"}, {"status", "200"}};
  size_t mem = 0, n;
  double v;
  struct nn__ls_prun r;
  nn__logstore_prun_init(&r, q->pl, &mem, 1u << 20);
  for (int pass = 0; pass < 2; pass++) { /* twice: the scratch is reused between lines */
    int rc = nn__logstore_prun_line(&r, base, 3, line, len);
    const char *ul;
    if (rc > 0 && nn__logstore_pipeline_unwrap(q->pl, &ul) != LS_CONV_NONE)
      rc = nn__logstore_prun_unwrap(&r, &v);
    if (rc > 0 && nn__logstore_prun_labels(&r, NULL, 0, false, false, &n) == 0)
      for (size_t i = 1; i < n; i++)
        if (strcmp(r.out[i - 1].name, r.out[i].name) > 0)
          __builtin_trap(); /* the label set comes out sorted */
  }
  if (mem > (1u << 20))
    __builtin_trap(); /* scratch stays within the memory it was given */
  nn__logstore_prun_fini(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn__ls_query q;
  char err[256];
  const char *line = (const char *)data;
  size_t qlen = size, llen = size;
  const char *nul = memchr(data, '\0', size);
  if (nul) {
    qlen = (size_t)(nul - line);
    line = nul + 1;
    llen = size - qlen - 1;
  }
  int rc = nn__logstore_query_parse((const char *)data, qlen, &q, err, sizeof(err));
  if (rc == 0) {
    if (q.nm == 0)
      __builtin_trap(); /* a successful parse always has a matcher */
    (void)nn__logstore_filters_match(&q, line, llen);
    if (q.pl)
      run_pipeline(&q, line, llen);
    for (size_t i = 0; i < q.nm; i++)
      (void)nn_matcher_matches(&q.m[i], "value");
  } else if (rc == NN_EINVAL && strncmp(err, "parse error at line ", 20) != 0) {
    __builtin_trap(); /* every syntax error says where */
  }
  nn__logstore_query_fini(&q);
  return 0;
}
