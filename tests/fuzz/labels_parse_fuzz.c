/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes nn_labels_parse (the {a="b"} selector text of a Loki stream). A parsed set must
 * be canonical and must format and parse back to the same labels. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/labels.h"
#include "common/pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn_pool pool;
  nn_pool_init(&pool, (size_t)16 << 20);
  struct nn_label *v = NULL, *w = NULL;
  size_t n = 0, m = 0;
  char err[256] = "";
  int rc = nn_labels_parse((const char *)data, size, &pool, &v, &n, err, sizeof(err));
  if (rc == 0) {
    for (size_t i = 1; i < n; i++)
      if (strcmp(v[i - 1].name, v[i].name) > 0)
        abort();
    struct nn_buf b;
    nn_buf_init(&b, (size_t)4 << 20);
    if (nn_labels_format(v, n, &b) != 0)
      abort();
    if (nn_labels_parse(b.data, b.len, &pool, &w, &m, err, sizeof(err)) != 0 || m != n ||
        nn_labels_cmp(v, n, w, m) != 0)
      abort();
    nn_buf_fini(&b);
  } else if (rc != NN_ENOMEM && err[0] == '\0') {
    abort();
  }
  nn_pool_clear(&pool);
  return 0;
}
