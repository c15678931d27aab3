/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes nn_wire_rw_decode on raw (decompressed) protobuf with a 16 MiB pool. A decoded
 * request must re-encode and decode again to the same shape. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/pool.h"
#include "common/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn_pool pool;
  nn_pool_init(&pool, (size_t)16 << 20);
  Prometheus__WriteRequest *req = NULL, *again = NULL;
  char err[256] = "";
  int rc = nn_wire_rw_decode(data, size, &pool, &req, err, sizeof(err));
  if (rc == 0) {
    size_t labels = 0;
    for (size_t i = 0; i < req->n_timeseries; i++)
      for (size_t l = 0; l < req->timeseries[i]->n_labels; l++)
        labels += strlen(req->timeseries[i]->labels[l]->name) > 0;
    struct nn_buf b;
    nn_buf_init(&b, (size_t)64 << 20);
    if (nn_wire_rw_encode(req, &b) != 0)
      abort();
    if (nn_wire_rw_decode(b.data, b.len, &pool, &again, err, sizeof(err)) != 0 ||
        again->n_timeseries != req->n_timeseries || again->n_metadata != req->n_metadata)
      abort();
    nn_buf_fini(&b);
    (void)labels;
  } else if ((rc != NN_ECORRUPT && rc != NN_ETOOBIG) || err[0] == '\0') {
    abort();
  }
  nn_pool_clear(&pool);
  return 0;
}
