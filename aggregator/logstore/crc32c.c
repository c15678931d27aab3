/* SPDX-License-Identifier: Apache-2.0 */
/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78) with slice-by-8 tables, for WAL
 * records and chunk records. Kept private to the log store so modules stay independent. */
#include <pthread.h>

#include "aggregator/logstore/internal.h"

static uint32_t tab[8][256];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void init_tables(void)
{
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    tab[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++)
      tab[t][i] = (tab[t - 1][i] >> 8) ^ tab[0][tab[t - 1][i] & 0xff];
}

uint32_t nn__logstore_crc32c(uint32_t crc, const void *buf, size_t n)
{
  pthread_once(&tab_once, init_tables);
  const uint8_t *p = buf;
  crc = ~crc;
  /* Eight bytes per step: each table folds one byte position, so the loop does one
   * 64-bit load's worth of work with eight lookups and no per-bit branching. */
  while (n >= 8) {
    uint32_t lo =
        crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    uint32_t hi =
        (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    crc = tab[7][lo & 0xff] ^ tab[6][(lo >> 8) & 0xff] ^ tab[5][(lo >> 16) & 0xff] ^
          tab[4][lo >> 24] ^ tab[3][hi & 0xff] ^ tab[2][(hi >> 8) & 0xff] ^
          tab[1][(hi >> 16) & 0xff] ^ tab[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--)
    crc = (crc >> 8) ^ tab[0][(crc ^ *p++) & 0xff];
  return ~crc;
}
