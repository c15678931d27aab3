/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes query parsing and checks that escaping then unescaping gives the input back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/pool.h"
#include "common/urlenc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *s = (const char *)data;
  struct nn_pool pool;
  nn_pool_init(&pool, 1 << 22);
  struct nn_urlenc_param *p;
  size_t n;
  int rc = nn_urlenc_parse(s, size, &pool, &p, &n);
  if (rc == 0 || rc == NN_EINVAL) {
    for (size_t i = 0; i < n; i++) {
      if (strlen(p[i].name) > p[i].name_len || strlen(p[i].value) > p[i].value_len)
        abort();
    }
  } else if (rc != NN_ENOMEM) {
    abort();
  }
  nn_pool_fini(&pool);

  struct nn_buf esc, dec;
  nn_buf_init(&esc, 3 * size + 1);
  nn_buf_init(&dec, size + 1);
  if (nn_urlenc_escape(s, size, &esc) != 0)
    abort();
  if (nn_urlenc_unescape(esc.data ? esc.data : "", esc.len, true, &dec) != 0)
    abort();
  if (dec.len != size || (size && memcmp(dec.data, s, size) != 0))
    abort();
  /* Plain unescape of arbitrary input must never overrun or grow. */
  nn_buf_reset(&dec);
  rc = nn_urlenc_unescape(s, size, false, &dec);
  if ((rc != 0 && rc != NN_EINVAL) || dec.len > size)
    abort();
  nn_buf_fini(&esc);
  nn_buf_fini(&dec);
  return 0;
}
