/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the log store's chunk decoding: chunk records as read from chunk files (header,
 * CRC, zstd body, entries) and, with a leading 'B', raw chunk bodies directly so the entry
 * decoder is reached without a valid CRC. */
#include <stddef.h>
#include <stdint.h>

#include "aggregator/logstore/internal.h"
#include "common/error.h"

static void walk_body(const uint8_t *p, size_t n, const struct nn__ls_chunk_rec *rec)
{
  struct nn__ls_body_iter it = {p, n, 0, 0, false};
  struct nn__ls_ent e;
  uint64_t count = 0;
  int rc;
  while ((rc = nn__logstore_body_next(&it, &e)) == 1) {
    if (e.len > n || e.mlen > n || !nn__logstore_meta_valid(e.meta, e.mlen))
      __builtin_trap();
    if (rec && (e.ts < rec->min_t || e.ts > rec->max_t))
      return; /* inconsistent header: the store never trusts it for bounds */
    count++;
  }
  (void)count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 0 && data[0] == 'B') {
    walk_body(data + 1, size - 1, NULL);
    return 0;
  }
  struct nn_buf raw;
  nn_buf_init(&raw, LS_MAX_CHUNK_RAW);
  size_t off = 0;
  /* A file holds records back to back. */
  while (off < size) {
    struct nn__ls_chunk_rec rec;
    size_t used = 0;
    if (nn__logstore_chunk_rec_decode(data + off, size - off, &rec, &used) < 0)
      break;
    if (used == 0 || used > size - off)
      __builtin_trap();
    if (nn__logstore_chunk_decompress(rec.data, rec.len, rec.raw_len, &raw) == 0) {
      if (raw.len != rec.raw_len)
        __builtin_trap();
      walk_body((const uint8_t *)raw.data, raw.len, &rec);
    }
    off += used;
  }
  nn_buf_fini(&raw);
  return 0;
}
