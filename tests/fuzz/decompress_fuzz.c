/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes nn_decompress: the first byte picks the codec, the rest is the body, decoded with
 * a 1 MiB cap. Whatever decodes must survive a compress/decompress round trip unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/compress.h"
#include "common/error.h"

#define CAP ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  enum nn_codec c = (enum nn_codec)(data[0] % 4);
  struct nn_buf out, z, back;
  nn_buf_init(&out, 2 * CAP);
  nn_buf_init(&z, 4 * CAP);
  nn_buf_init(&back, 2 * CAP);
  int rc = nn_decompress(c, data + 1, size - 1, CAP, &out);
  if (rc == 0) {
    if (out.len > CAP)
      abort();
    if (nn_compress(c, out.data, out.len, &z) != 0)
      abort();
    if (nn_decompress(c, z.data, z.len, CAP, &back) != 0 || back.len != out.len ||
        memcmp(back.data, out.data, out.len) != 0)
      abort();
  } else if (rc != NN_ECORRUPT && rc != NN_ETOOBIG) {
    abort();
  } else if (out.len != 0) {
    abort(); /* a failed decode must not leave partial output behind */
  }
  nn_buf_fini(&out);
  nn_buf_fini(&z);
  nn_buf_fini(&back);
  return 0;
}
