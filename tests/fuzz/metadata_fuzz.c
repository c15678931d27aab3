/* SPDX-License-Identifier: Apache-2.0 */
/* The metric metadata store's two decoders: the input as a remote-write WriteRequest (its
 * metadata entries) and as a metadata file image; then the API renders what was stored. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/storage/metadata.h"
#include "common/buf.h"
#include "common/log.h"

static void render(const struct nn_metadata *md, struct nn_buf *b)
{
  nn_buf_reset(b);
  if (nn_metadata_json(md, NULL, NULL, -1, -1, b) < 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int quiet;
  if (!quiet) {
    nn_log_setup(NN_LOG_ERROR, NN_LOG_LOGFMT);
    quiet = 1;
  }
  struct nn_metadata *md = nn_metadata_create(NULL, 64);
  char *copy = malloc(size + 1);
  if (!md || !copy)
    goto out;
  nn_metadata_add_write_request(md, size & 1 ? "tenant" : NULL, data, size);
  memcpy(copy, data, size);
  copy[size] = '\0';
  nn_metadata_parse(md, copy, size);
  struct nn_buf a, b;
  nn_buf_init(&a, 64u << 20);
  nn_buf_init(&b, 64u << 20);
  render(md, &a);
  nn_metadata_json(md, "tenant", "x", 1, 1, &b);
  nn_buf_fini(&a);
  nn_buf_fini(&b);
out:
  free(copy);
  nn_metadata_destroy(md);
  return 0;
}
