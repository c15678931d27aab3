/* SPDX-License-Identifier: Apache-2.0 */
/* CRC-32C (Castagnoli) for WAL records: SSE4.2's crc32 instruction when the CPU has it,
 * otherwise slice-by-8 tables (about 1 byte per cycle, ten times a bytewise loop). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"

#define POLY 0x82f63b78u /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (POLY & (0u - (c & 1)));
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int s = 1; s < 8; s++)
      table[s][i] = (table[s - 1][i] >> 8) ^ table[0][table[s - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
  while (n && ((uintptr_t)p & 7)) {
    crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    n--;
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    /* Little-endian load: the low 4 bytes mix with the running CRC. */
    uint32_t lo = (uint32_t)w ^ crc, hi = (uint32_t)(w >> 32);
    crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
          table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
          table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--)
    crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) &&                            \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HAVE_HW 1
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = __builtin_ia32_crc32di(c, w);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  while (n--)
    c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
#else
#define HAVE_HW 0
#endif

static int use_hw = -1;

static void detect(void)
{
  table_init();
#if HAVE_HW
  __builtin_cpu_init();
  use_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
  use_hw = 0;
#endif
}

uint32_t nn__tsdb_crc32c(uint32_t crc, const void *p, size_t n)
{
  pthread_once(&table_once, detect);
  crc = ~crc;
#if HAVE_HW
  if (use_hw)
    return ~crc_hw(crc, p, n);
#endif
  return ~crc_sw(crc, p, n);
}

uint32_t nn__tsdb_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
  pthread_once(&table_once, detect);
  return ~crc_sw(~crc, p, n);
}
