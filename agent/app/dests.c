/* SPDX-License-Identifier: Apache-2.0 */
/* Destination option table and its translation into ship destinations. */
#include "agent/app/dests.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/app/internal.h"
#include "agent/ship/ship.h"
#include "common/error.h"
#include "common/log.h"

#define DOFF(f) offsetof(struct nn_agent_dest_config, f)

const struct nn_cfg_option nn_agent_dest_options[] = {
    {.name = "name",
     .type = NN_CFG_STR,
     .offset = DOFF(name),
     .flags = NN_CFG_REQUIRED,
     .help = "short name: metrics label and spool directory"},
    {.name = "url",
     .type = NN_CFG_STR,
     .offset = DOFF(url),
     .flags = NN_CFG_REQUIRED,
     .help = "push URL, e.g. http://nines:9595/loki/api/v1/push"},
    {.name = "codec",
     .type = NN_CFG_STR,
     .offset = DOFF(codec),
     .def = "snappy",
     .help = "snappy (Loki, Prometheus), zstd or lz4 (nines aggregator)"},
    {.name = "tenant", .type = NN_CFG_STR, .offset = DOFF(tenant), .help = "X-Scope-OrgID"},
    {.name = "bearer_token",
     .type = NN_CFG_STR,
     .offset = DOFF(bearer_token),
     .flags = NN_CFG_SECRET,
     .help = "Authorization bearer token (or bearer_token_file)"},
    {.name = "timeout",
     .type = NN_CFG_DURATION,
     .offset = DOFF(timeout_ms),
     .def = "30s",
     .help = "per request"},
    {.name = "spool_max",
     .type = NN_CFG_SIZE,
     .offset = DOFF(spool_max),
     .def = "1GiB",
     .help = "disk spool for outages; when full the tailers pause"},
    {.name = "drop_oldest",
     .type = NN_CFG_BOOL,
     .offset = DOFF(drop_oldest),
     .def = "false",
     .help = "when the spool is full drop the oldest batches (counted) instead of pausing"},
    {0},
};

int nn__agent_dests(const struct nn_cfg_list *list, const char *default_path,
                    struct nn_ship_dest_config **out, size_t *n)
{
  const struct nn_agent_dest_config *src = list->items;
  size_t count = list->n ? list->n : 1;
  struct nn_ship_dest_config *d = calloc(count, sizeof(*d));
  if (!d)
    return NN_ENOMEM;
  for (size_t i = 0; i < list->n; i++) {
    nn_ship_dest_config_defaults(&d[i]);
    d[i].name = src[i].name;
    d[i].url = src[i].url;
    if (nn_codec_parse(src[i].codec, &d[i].codec) < 0 || d[i].codec == NN_CODEC_NONE) {
      nn_error("app", "destination %s: codec must be snappy, zstd or lz4, not \"%s\"", src[i].name,
               src[i].codec);
      free(d);
      return NN_ECONFIG;
    }
    d[i].tenant = src[i].tenant;
    d[i].bearer_token = src[i].bearer_token;
    d[i].timeout_ms = src[i].timeout_ms;
    d[i].spool_max = src[i].spool_max;
    d[i].full_policy = src[i].drop_oldest ? NN_SHIP_FULL_DROP_OLDEST : NN_SHIP_FULL_BLOCK;
  }
  if (list->n == 0) {
    /* Nothing configured: the aggregator on this host, as the demo runs it. */
    static char urls[2][128];
    static int k;
    char *url = urls[k++ & 1];
    snprintf(url, sizeof(urls[0]), "http://127.0.0.1:9595%s", default_path);
    nn_ship_dest_config_defaults(&d[0]);
    d[0].name = "aggregator";
    d[0].url = url;
    d[0].codec = NN_CODEC_ZSTD;
    nn_info("app", "no destinations configured: sending to %s", url);
  }
  *out = d;
  *n = count;
  return 0;
}
