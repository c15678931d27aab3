/* SPDX-License-Identifier: Apache-2.0 */
/* Destination option table and its translation into ship destinations. */
#include "agent/app/dests.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/app/internal.h"
#include "agent/ship/ship.h"
#include "common/error.h"
#include "common/log.h"
#include "common/yaml.h"

#define DOFF(f) offsetof(struct nn_agent_dest_config, f)
#define ROFF(f) offsetof(struct nn_agent_retry_config, f)

static const struct nn_cfg_option retry_options[] = {
    {.name = "min_backoff", .type = NN_CFG_DURATION, .offset = ROFF(min_backoff_ms), .def = "1s"},
    {.name = "max_backoff", .type = NN_CFG_DURATION, .offset = ROFF(max_backoff_ms), .def = "60s"},
    {0},
};

/* The value node of key in map m, or m itself when the key is absent (for positions). */
static const struct nn_yaml_node *value_of(const struct nn_yaml_node *m, const char *key)
{
  for (size_t i = 0; m && m->kind == NN_YAML_MAP && i < m->len; i++)
    if (m->keys[i]->scalar && strcmp(m->keys[i]->scalar, key) == 0)
      return m->items[i];
  return m;
}

/* The retry block: bound with its own table (unknown keys and bad durations are reported at
 * their position), then checked as a whole, which a plain section could not position. */
static int parse_retry(const struct nn_yaml_node *node, void *dst, struct nn_cfg_error *err)
{
  struct nn_agent_retry_config r = {0};
  int rc = nn_cfg_bind(node, retry_options, &r, err);
  if (rc < 0) {
    /* The binder names the retry block as the field; keep the key in the message. */
    if (err->field[0] && !strstr(err->msg, err->field)) {
      char msg[sizeof(err->msg)];
      snprintf(msg, sizeof(msg), "%.200s: %.300s", err->field, err->msg);
      snprintf(err->msg, sizeof(err->msg), "%s", msg);
    }
    return rc;
  }
  if (r.min_backoff_ms < 1)
    return nn_cfg_error_set(err, value_of(node, "min_backoff"),
                            "min_backoff must be at least 1ms (the first retry waits this long)");
  if (r.max_backoff_ms < r.min_backoff_ms) {
    /* Point at max_backoff, or at min_backoff when max_backoff is the default. */
    const struct nn_yaml_node *at = value_of(node, "max_backoff");
    return nn_cfg_error_set(err, at != node ? at : value_of(node, "min_backoff"),
                            "max_backoff (%" PRId64 "ms) is shorter than min_backoff (%" PRId64
                            "ms): raise max_backoff or lower min_backoff",
                            r.max_backoff_ms, r.min_backoff_ms);
  }
  *(struct nn_agent_retry_config *)dst = r;
  return 0;
}

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
    {.name = "retry",
     .type = NN_CFG_CUSTOM,
     .offset = DOFF(retry),
     .def = "{min_backoff: 1s, max_backoff: 60s}",
     .custom = parse_retry,
     .help = "retry timing: {min_backoff, max_backoff}; each failure doubles the delay (with full "
             "jitter) up to max_backoff, which also bounds how long a destination that came back "
             "may wait for the next try (lower it for a faster catch-up after an outage)"},
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
    d[i].backoff_min_ms = src[i].retry.min_backoff_ms;
    d[i].backoff_max_ms = src[i].retry.max_backoff_ms;
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
