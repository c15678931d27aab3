/* SPDX-License-Identifier: Apache-2.0 */
/* nines-aggregator: wires ingest, storage, query, rules and web together. */
#include <stdio.h>

int main(void)
{
  puts("nines-aggregator " NN_VERSION);
  return 0;
}
