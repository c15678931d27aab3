/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes relabel configuration: YAML text is bound as a relabel_configs list and, when it
 * is accepted, applied to a fixed label set. Kept sets must come out canonical. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/relabel/relabel.h"
#include "common/config.h"
#include "common/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error ye;
  struct nn_cfg_error ce;
  struct nn_relabel_config cfg;
  if (size > 4096 || nn_yaml_load_string("f.yml", (const char *)data, size, &doc, &ye) < 0)
    return 0;
  if (nn_relabel_config_bind(doc->root, &cfg, &ce) == 0) {
    struct nn_label l[16] = {{"__name__", "http_requests_total"},
                             {"__address__", "10.0.0.1:9100"},
                             {"__meta_kubernetes_pod_label_app", "web"},
                             {"code", "200"},
                             {"instance", "10.0.0.1:9100"},
                             {"job", "api"}};
    size_t n = 6;
    struct nn_relabel_scratch sc;
    nn_relabel_scratch_init(&sc);
    int rc = nn_relabel_process(&cfg, l, &n, 16, &sc);
    if (rc == 1) {
      for (size_t i = 0; i < n; i++) {
        if (!l[i].value[0] || (i && strcmp(l[i - 1].name, l[i].name) >= 0))
          abort();
      }
    }
    nn_relabel_scratch_fini(&sc);
    nn_relabel_config_free(&cfg);
  }
  nn_yaml_doc_destroy(doc);
  return 0;
}
