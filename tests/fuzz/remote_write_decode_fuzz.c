/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the two remote-write decoders on raw (decompressed) protobuf with a 16 MiB pool:
 * nn_wire_rw_parse (in place, what ingest uses) must agree with nn_wire_rw_decode
 * (protobuf-c) on every input, down to label strings and sample bits, and a request
 * protobuf-c decoded must re-encode and decode again to the same shape. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/pool.h"
#include "common/wire.h"

static void same_request(const Prometheus__WriteRequest *req, const struct nn_wire_rw_request *got)
{
  if (got->n_series != req->n_timeseries || got->n_metadata != req->n_metadata)
    abort();
  for (size_t i = 0; i < got->n_series; i++) {
    const Prometheus__TimeSeries *rt = req->timeseries[i];
    const struct nn_wire_rw_series *gt = &got->series[i];
    if (gt->n_labels != rt->n_labels || gt->n_samples != rt->n_samples)
      abort();
    for (size_t l = 0; l < gt->n_labels; l++)
      if (strcmp(gt->labels[l].name, rt->labels[l]->name) != 0 ||
          strcmp(gt->labels[l].value, rt->labels[l]->value) != 0 ||
          gt->lens[2 * l] < strlen(gt->labels[l].name))
        abort();
    for (size_t k = 0; k < gt->n_samples; k++)
      if (gt->samples[k].t != rt->samples[k]->timestamp ||
          memcmp(&gt->samples[k].v, &rt->samples[k]->value, sizeof(double)) != 0)
        abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn_pool pool;
  nn_pool_init(&pool, (size_t)16 << 20);
  Prometheus__WriteRequest *req = NULL, *again = NULL;
  char err[256] = "", err2[256] = "";
  int rc = nn_wire_rw_decode(data, size, &pool, &req, err, sizeof(err));

  /* The in-place decoder writes into its input: a private copy with the spare byte. */
  struct nn_pool pool2;
  nn_pool_init(&pool2, (size_t)16 << 20);
  uint8_t *copy = malloc(size + 1);
  if (!copy)
    abort();
  memcpy(copy, data, size);
  struct nn_wire_rw_request got;
  int rc2 = nn_wire_rw_parse(copy, size, &pool2, &got, err2, sizeof(err2));
  /* Pool caps differ (the in-place decoder needs less); otherwise both agree. */
  if (rc != NN_ETOOBIG && rc2 != NN_ETOOBIG && rc != rc2)
    abort();
  if (rc2 != 0 && ((rc2 != NN_ECORRUPT && rc2 != NN_ETOOBIG) || err2[0] == '\0'))
    abort();
  if (rc == 0 && rc2 == 0)
    same_request(req, &got);

  if (rc == 0) {
    struct nn_buf b;
    nn_buf_init(&b, (size_t)64 << 20);
    if (nn_wire_rw_encode(req, &b) != 0)
      abort();
    if (nn_wire_rw_decode(b.data, b.len, &pool, &again, err, sizeof(err)) != 0 ||
        again->n_timeseries != req->n_timeseries || again->n_metadata != req->n_metadata)
      abort();
    nn_buf_fini(&b);
  } else if ((rc != NN_ECORRUPT && rc != NN_ETOOBIG) || err[0] == '\0') {
    abort();
  }
  free(copy);
  nn_pool_clear(&pool2);
  nn_pool_clear(&pool);
  return 0;
}
