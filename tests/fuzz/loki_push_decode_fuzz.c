/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes Loki push decoding: an even first byte feeds the rest to the protobuf decoder,
 * an odd one to the JSON decoder. A decoded request must re-encode and decode again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/pool.h"
#include "common/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  struct nn_pool pool;
  nn_pool_init(&pool, (size_t)16 << 20);
  Logproto__PushRequest *req = NULL, *again = NULL;
  char err[256] = "";
  int rc;
  if (data[0] % 2 == 0)
    rc = nn_wire_push_decode(data + 1, size - 1, &pool, &req, err, sizeof(err));
  else
    rc = nn_wire_push_decode_json((const char *)data + 1, size - 1, &pool, &req, err, sizeof(err));
  if (rc == 0) {
    struct nn_buf b;
    nn_buf_init(&b, (size_t)64 << 20);
    if (nn_wire_push_encode(req, &b) != 0)
      abort();
    if (nn_wire_push_decode(b.data, b.len, &pool, &again, err, sizeof(err)) != 0 ||
        again->n_streams != req->n_streams)
      abort();
    for (size_t i = 0; i < req->n_streams; i++)
      if (again->streams[i]->n_entries != req->streams[i]->n_entries)
        abort();
    nn_buf_fini(&b);
  } else if (err[0] == '\0' || (rc != NN_ECORRUPT && rc != NN_EINVAL && rc != NN_ETOOBIG)) {
    abort();
  }
  nn_pool_clear(&pool);
  return 0;
}
