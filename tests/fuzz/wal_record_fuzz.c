/* SPDX-License-Identifier: Apache-2.0 */
/* Feeds arbitrary bytes to the WAL reader, both as a framed segment (CRC-checked) and
 * as raw record payloads (past the CRC, where a bug would otherwise hide), replaying
 * whatever decodes into an in-memory head, then queries it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/tsdb/internal.h"
#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int quiet;
  if (!quiet) {
    nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT);
    quiet = 1;
  }
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  struct nn_tsdb *db;
  if (nn_tsdb_open(&o, &db) < 0)
    abort();
  struct nn__tsdb_wal_visitor v;
  nn__tsdb_replay_visitor(db, &v);
  bool damaged;
  size_t good = nn__tsdb_wal_scan(data, size, &v, &damaged);
  if (good > size || (!damaged && good != size))
    abort();
  if (size > 0) {
    nn__tsdb_wal_decode(data[0] % 4, data + 1, size - 1, &v);
    nn__tsdb_wal_decode(NN__TSDB_REC_CHUNKS, data, size, &v);
    nn__tsdb_wal_decode(NN__TSDB_REC_SERIES, data, size, &v);
    nn__tsdb_wal_decode(NN__TSDB_REC_SAMPLES, data, size, &v);
  }
  nn__tsdb_replay_done(db);

  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  struct nn_series_set set;
  if (q.select(q.ctx, NULL, 0, NULL, &set) == 0) {
    for (size_t i = 0; i < set.n; i++)
      for (size_t k = 1; k < set.series[i].n; k++)
        if (set.series[i].t[k] <= set.series[i].t[k - 1])
          abort();
    set.release(&set);
  }
  struct nn_strlist l;
  if (q.label_names(q.ctx, NULL, 0, INT64_MIN, INT64_MAX, &l) == 0)
    nn_strlist_free(&l);
  nn_tsdb_head_truncate(db, INT64_MAX);
  nn_tsdb_close(db);
  return 0;
}
