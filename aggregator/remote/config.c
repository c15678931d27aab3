/* SPDX-License-Identifier: Apache-2.0 */
/* The remote_write option table, with positioned checks for names, URLs and codecs. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aggregator/remote/remote.h"
#include "common/error.h"
#include "common/yaml.h"

#define OFF(f) offsetof(struct nn_remote_dest_config, f)

static const char *scalar(const struct nn_yaml_node *node)
{
  return node && node->kind == NN_YAML_SCALAR ? node->scalar : NULL;
}

static int parse_name(const struct nn_yaml_node *node, void *dst, struct nn_cfg_error *err)
{
  const char *s = scalar(node);
  if (!s)
    return nn_cfg_error_set(err, node, "expected a name");
  size_t n = strlen(s);
  if (n == 0 || n > 48 || n != node->scalar_len ||
      strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != n ||
      strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
    return nn_cfg_error_set(err, node,
                            "name \"%s\" must be 1 to 48 of A-Z a-z 0-9 _ . - (it names the "
                            "spool directory and the destination label)",
                            s);
  char *v = strdup(s);
  if (!v)
    return NN_ENOMEM;
  free(*(char **)dst);
  *(char **)dst = v;
  return 0;
}

static void free_str(void *dst)
{
  free(*(char **)dst);
  *(char **)dst = NULL;
}

static int parse_url(const struct nn_yaml_node *node, void *dst, struct nn_cfg_error *err)
{
  const char *s = scalar(node);
  if (!s)
    return nn_cfg_error_set(err, node, "expected a URL");
  size_t skip = strncmp(s, "http://", 7) == 0 ? 7 : strncmp(s, "https://", 8) == 0 ? 8 : 0;
  if (!skip || s[skip] == '\0' || s[skip] == '/' || strpbrk(s, " \t\r\n") ||
      strlen(s) != node->scalar_len)
    return nn_cfg_error_set(err, node,
                            "\"%s\" is not an http:// or https:// URL with a host (e.g. "
                            "http://victoria:8428/api/v1/write)",
                            s);
  char *v = strdup(s);
  if (!v)
    return NN_ENOMEM;
  free(*(char **)dst);
  *(char **)dst = v;
  return 0;
}

static int parse_codec(const struct nn_yaml_node *node, void *dst, struct nn_cfg_error *err)
{
  const char *s = scalar(node);
  enum nn_codec c;
  if (!s || nn_codec_parse(s, &c) < 0 || c == NN_CODEC_NONE)
    return nn_cfg_error_set(err, node,
                            "codec must be snappy (remote write 1.0: Prometheus, Mimir, Thanos, "
                            "VictoriaMetrics), zstd or lz4 (another nines aggregator)");
  *(enum nn_codec *)dst = c;
  return 0;
}

const struct nn_cfg_option nn_remote_dest_options[] = {
    {.name = "name",
     .type = NN_CFG_CUSTOM,
     .offset = OFF(name),
     .flags = NN_CFG_REQUIRED,
     .custom = parse_name,
     .custom_free = free_str,
     .help = "short unique name: destination label on /metrics, spool and position directory"},
    {.name = "url",
     .type = NN_CFG_CUSTOM,
     .offset = OFF(url),
     .flags = NN_CFG_REQUIRED,
     .custom = parse_url,
     .custom_free = free_str,
     .help = "remote-write endpoint (Mimir /api/v1/push, Thanos Receive /api/v1/receive, "
             "VictoriaMetrics /api/v1/write)"},
    {.name = "codec",
     .type = NN_CFG_CUSTOM,
     .offset = OFF(codec),
     .def = "snappy",
     .custom = parse_codec,
     .help = "body encoding: snappy (remote write 1.0), zstd or lz4"},
    {.name = "write_relabel_configs",
     .type = NN_CFG_CUSTOM,
     .offset = OFF(write_relabel_configs),
     .custom = nn_relabel_cfg_parse,
     .custom_free = nn_relabel_cfg_free,
     .help = "Prometheus relabel_configs applied to each series before it is sent; a dropped "
             "series is not sent"},
    {.name = "bearer_token",
     .type = NN_CFG_STR,
     .offset = OFF(bearer_token),
     .flags = NN_CFG_SECRET,
     .help = "Authorization: Bearer token (or bearer_token_file)"},
    {.name = "headers",
     .type = NN_CFG_STRMAP,
     .offset = OFF(headers),
     .help = "extra HTTP headers, e.g. {X-Scope-OrgID: team-a}"},
    {.name = "timeout",
     .type = NN_CFG_DURATION,
     .offset = OFF(timeout_ms),
     .def = "30s",
     .help = "per request"},
    {.name = "batch_size",
     .type = NN_CFG_SIZE,
     .offset = OFF(batch_size),
     .def = "1MiB",
     .help = "uncompressed protobuf bytes that close a request"},
    {.name = "batch_wait",
     .type = NN_CFG_DURATION,
     .offset = OFF(batch_wait_ms),
     .def = "1s",
     .help = "age that closes a request"},
    {.name = "max_inflight",
     .type = NN_CFG_INT,
     .offset = OFF(max_inflight),
     .def = "1",
     .help = "concurrent requests (1..16); above 1 a retried request can land after a later "
             "one, which receivers that reject out-of-order samples (Prometheus, Mimir "
             "without out_of_order_time_window) refuse; VictoriaMetrics accepts it"},
    {.name = "queue_max",
     .type = NN_CFG_SIZE,
     .offset = OFF(queue_max),
     .def = "8MiB",
     .help = "bytes of requests queued in memory before they spill to the disk spool"},
    {.name = "spool_max",
     .type = NN_CFG_SIZE,
     .offset = OFF(spool_max),
     .def = "1GiB",
     .help = "disk spool for outages; when full, reading the WAL pauses (the WAL holds the rest)"},
    {.name = "min_backoff",
     .type = NN_CFG_DURATION,
     .offset = OFF(min_backoff_ms),
     .def = "500ms",
     .help = "first retry delay (full jitter, doubling)"},
    {.name = "max_backoff",
     .type = NN_CFG_DURATION,
     .offset = OFF(max_backoff_ms),
     .def = "30s",
     .help = "longest retry delay"},
    {.name = "max_wal_backlog",
     .type = NN_CFG_SIZE,
     .offset = OFF(max_wal_backlog),
     .def = "8GiB",
     .help = "WAL bytes kept for a destination that is behind; past this it is cut loose "
             "(logged and counted) and the store may delete what it has not read"},
    {0},
};

int nn_remote_config_check(const struct nn_cfg_list *dests, char *err, size_t errlen)
{
  const struct nn_remote_dest_config *d = dests->items;
  for (size_t i = 0; i < dests->n; i++) {
    if (d[i].max_inflight < 1 || d[i].max_inflight > 16) {
      snprintf(err, errlen, "remote_write[%zu].max_inflight: %lld is not within 1..16", i,
               (long long)d[i].max_inflight);
      return NN_ECONFIG;
    }
    if (d[i].batch_size < 1024 || d[i].batch_size > (32u << 20)) {
      snprintf(err, errlen, "remote_write[%zu].batch_size: 1KiB to 32MiB", i);
      return NN_ECONFIG;
    }
    if (d[i].min_backoff_ms <= 0 || d[i].max_backoff_ms < d[i].min_backoff_ms) {
      snprintf(err, errlen,
               "remote_write[%zu]: min_backoff must be > 0 and max_backoff at least as long", i);
      return NN_ECONFIG;
    }
    for (size_t h = 0; h < d[i].headers.n; h++) {
      const char *k = d[i].headers.keys[h], *v = d[i].headers.values[h];
      static const char *const reserved[] = {
          "content-type",     "content-encoding",
          "content-length",   "x-prometheus-remote-write-version",
          "x-nines-batch-id", "authorization"};
      bool bad = !*k || strpbrk(k, ": \t\r\n") || strpbrk(v, "\r\n");
      for (size_t r = 0; !bad && r < sizeof(reserved) / sizeof(reserved[0]); r++)
        bad = strcasecmp(k, reserved[r]) == 0;
      if (bad) {
        snprintf(err, errlen,
                 "remote_write[%zu].headers: \"%s\" cannot be set here (a header name without "
                 "':' or spaces, a one-line value, and not one the protocol sets; use "
                 "bearer_token for Authorization)",
                 i, k);
        return NN_ECONFIG;
      }
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(d[i].name, d[j].name) == 0) {
        snprintf(err, errlen,
                 "remote_write[%zu].name: \"%s\" is already the name of remote_write[%zu]; "
                 "names must be unique (they name spool directories)",
                 i, d[i].name, j);
        return NN_ECONFIG;
      }
  }
  return 0;
}
