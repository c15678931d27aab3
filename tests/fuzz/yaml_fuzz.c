/* SPDX-License-Identifier: Apache-2.0 */
/* The YAML loader on arbitrary bytes: no crash, no leak, and the tree it returns keeps its
 * promises (bounded depth and walk size, consistent lengths, NUL-terminated scalars). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/yaml.h"

#define MAX_NODES 20000

static size_t walk(const struct nn_yaml_node *n, size_t depth)
{
  if (!n || depth > NN_YAML_DEFAULT_MAX_DEPTH || !n->file || n->line < 1 || n->col < 1)
    abort();
  switch (n->kind) {
  case NN_YAML_NULL:
  case NN_YAML_SCALAR:
    if (!n->scalar || n->scalar[n->scalar_len] != '\0' || n->len != 0)
      abort();
    return 1;
  case NN_YAML_MAP: {
    size_t w = 1;
    for (size_t i = 0; i < n->len; i++) {
      w += walk(nn_yaml_map_key(n, i), depth + 1);
      w += walk(nn_yaml_map_value(n, i), depth + 1);
      if (n->keys[i]->kind == NN_YAML_SCALAR &&
          nn_yaml_map_getn(n, n->keys[i]->scalar, n->keys[i]->scalar_len) == NULL)
        abort();
    }
    return w;
  }
  case NN_YAML_SEQ: {
    size_t w = 1;
    for (size_t i = 0; i < n->len; i++)
      w += walk(nn_yaml_seq_item(n, i), depth + 1);
    return w;
  }
  }
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn_yaml_opts o = {.max_nodes = MAX_NODES};
  if (size && (data[0] & 1))
    o.flags = NN_YAML_MULTI_DOC;
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error err;
  int rc = nn_yaml_load_string_opts("fuzz.yaml", (const char *)data, size, &o, &doc, &err);
  if (rc < 0) {
    if (doc || !err.msg[0])
      abort();
    char buf[1200];
    nn_yaml_error_format(&err, buf, sizeof(buf));
    return 0;
  }
  size_t total = 0;
  for (size_t i = 0; i < doc->nroots; i++) {
    size_t w = walk(doc->roots[i], 0);
    if (w != doc->roots[i]->weight)
      abort();
    total += w;
  }
  if (total > MAX_NODES || walk(doc->root, 0) != doc->root->weight)
    abort();
  nn_yaml_doc_destroy(doc);
  return 0;
}
