/* SPDX-License-Identifier: Apache-2.0 */
/* Feeds arbitrary bytes to the external WAL reader (remote write's tailer) as a segment
 * file, once as the live segment and once sealed by a later one, and decodes every
 * record it returns through the public series and samples decoders. The reader must
 * never return a record that runs past the file, and must stop (0) rather than loop. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregator/tsdb/tsdb.h"
#include "common/log.h"

static int on_series(void *ctx, uint64_t ref, const struct nn_label *ls, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!ls[i].name || !ls[i].value)
      abort();
  (*(size_t *)ctx)++;
  return 0;
}

static char dir[64], wal[80], seg0[96], seg1[96];

static void read_all(size_t size)
{
  struct nn_tsdb_wal_reader *r;
  if (nn_tsdb_wal_reader_open(dir, 0, 0, &r) < 0)
    abort();
  struct nn_tsdb_wal_record rec;
  size_t nseries = 0, records = 0;
  int rc;
  while ((rc = nn_tsdb_wal_reader_next(r, &rec)) == 1) {
    if (rec.segment == 0 && rec.end > size)
      abort();
    if (++records > size + 1)
      abort(); /* every record takes at least its header */
    if (rec.type == NN_TSDB_WAL_SERIES) {
      nn_tsdb_wal_series_decode(rec.data, rec.len, on_series, &nseries);
    } else if (rec.type == NN_TSDB_WAL_SAMPLES) {
      struct nn_tsdb_wal_samples it;
      uint64_t ref;
      int64_t t;
      double v;
      if (nn_tsdb_wal_samples_init(&it, rec.data, rec.len) == 0)
        while (nn_tsdb_wal_samples_next(&it, &ref, &t, &v) == 1) {
        }
    }
  }
  nn_tsdb_wal_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!dir[0]) {
    nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT);
    snprintf(dir, sizeof(dir), "/tmp/nn-walreader-fuzz-XXXXXX");
    if (!mkdtemp(dir))
      abort();
    snprintf(wal, sizeof(wal), "%s/wal", dir);
    snprintf(seg0, sizeof(seg0), "%s/00000000", wal);
    snprintf(seg1, sizeof(seg1), "%s/00000001", wal);
    mkdir(wal, 0700);
  }
  unlink(seg1);
  int fd = open(seg0, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write(fd, data, size) != (ssize_t)size)
    abort();
  close(fd);
  read_all(size); /* live: a torn tail means "wait" */
  fd = open(seg1, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0)
    abort();
  close(fd);
  read_all(size); /* sealed: a torn tail is skipped */
  struct nn_tsdb_wal_samples it;
  uint64_t ref;
  int64_t t;
  double v;
  if (nn_tsdb_wal_samples_init(&it, data, size) == 0)
    while (nn_tsdb_wal_samples_next(&it, &ref, &t, &v) == 1) {
    }
  size_t n = 0;
  nn_tsdb_wal_series_decode(data, size, on_series, &n);
  return 0;
}
