// SPDX-License-Identifier: Apache-2.0
/* Driver for bench/slo.sh: times one SLO evaluation cycle (every window pair of every SLO
 * computed from its ledger, nn_slo_bench) and reports the memory one SLO holds for a 30-day
 * period (its ledger's buffers plus the per-SLO runtime struct). Prints two JSON fields. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "aggregator/slo/internal.h"
#include "aggregator/slo/slo.h"

static int parse_size(const char *s, size_t *out)
{
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || *end || v == 0 || v > 1000000)
    return -1;
  *out = (size_t)v;
  return 0;
}

int main(int argc, char **argv)
{
  size_t n, iters;
  if (argc != 3 || parse_size(argv[1], &n) < 0 || parse_size(argv[2], &iters) < 0) {
    fprintf(stderr, "usage: slo_bench N_SLOS ITERATIONS (1..1000000 each)\n");
    return 2;
  }
  double ns = nn_slo_bench(n, iters);
  if (ns < 0) {
    fprintf(stderr, "slo_bench: nn_slo_bench failed (%d)\n", (int)ns);
    return 1;
  }
  struct nn_slo_ledger l;
  if (nn__slo_ledger_init(&l, 30 * 1440, 0) < 0) {
    fprintf(stderr, "slo_bench: ledger init failed\n");
    return 1;
  }
  /* The runtime struct holds the ledger struct inline; count it once. */
  size_t bytes = nn__slo_ledger_bytes(&l) - sizeof(l) + sizeof(struct nn_slo_rt);
  nn__slo_ledger_fini(&l);
  printf("{\"slos\": %zu, \"ns_per_cycle\": %.0f, \"bytes_per_slo\": %zu}\n", n, ns, bytes);
  return 0;
}
