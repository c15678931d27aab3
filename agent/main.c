/* SPDX-License-Identifier: Apache-2.0 */
/* nines-agent: wires discovery, tailing, scraping and shipping together. */
#include <stdio.h>

int main(void)
{
  puts("nines-agent " NN_VERSION);
  return 0;
}
