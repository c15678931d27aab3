/* SPDX-License-Identifier: Apache-2.0 */
/* Option tables for scrape_configs, spelled as Prometheus spells them, and the checks that
 * need the whole section (inheritance of the global interval and timeout, unique names). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/scrape/internal.h"
#include "common/error.h"
#include "common/yaml.h"

static void params_free(void *dst)
{
  struct nn_cfg_strmap *m = dst;
  for (size_t i = 0; i < m->n; i++) {
    free(m->keys[i]);
    free(m->values[i]);
  }
  free(m->keys);
  free(m->values);
  memset(m, 0, sizeof(*m));
}

static int params_add(struct nn_cfg_strmap *m, const char *k, const char *v)
{
  char **nk = realloc(m->keys, (m->n + 1) * sizeof(char *));
  if (!nk)
    return NN_ENOMEM;
  m->keys = nk;
  char **nv = realloc(m->values, (m->n + 1) * sizeof(char *));
  if (!nv)
    return NN_ENOMEM;
  m->values = nv;
  if (!(m->keys[m->n] = strdup(k)))
    return NN_ENOMEM;
  if (!(m->values[m->n] = strdup(v))) {
    free(m->keys[m->n]);
    return NN_ENOMEM;
  }
  m->n++;
  return 0;
}

/* params: {name: [v1, v2]} (Go url.Values); a single scalar is accepted as a one-item list. */
static int params_parse(const struct nn_yaml_node *node, void *dst, struct nn_cfg_error *err)
{
  struct nn_cfg_strmap *m = dst;
  params_free(m);
  if (node->kind == NN_YAML_NULL)
    return 0;
  if (node->kind != NN_YAML_MAP)
    return nn_cfg_error_set(err, node, "params must be a map of names to lists of values");
  for (size_t i = 0; i < node->len; i++) {
    const struct nn_yaml_node *k = node->keys[i], *v = node->items[i];
    if (k->kind != NN_YAML_SCALAR)
      return nn_cfg_error_set(err, k, "params keys must be strings");
    if (v->kind == NN_YAML_SCALAR) {
      if (params_add(m, k->scalar, v->scalar) < 0)
        return NN_ENOMEM;
      continue;
    }
    if (v->kind != NN_YAML_SEQ)
      return nn_cfg_error_set(err, v, "params values must be lists of strings");
    for (size_t j = 0; j < v->len; j++) {
      if (v->items[j]->kind != NN_YAML_SCALAR)
        return nn_cfg_error_set(err, v->items[j], "params values must be strings");
      if (params_add(m, k->scalar, v->items[j]->scalar) < 0)
        return NN_ENOMEM;
    }
  }
  return 0;
}

#define SC(f) offsetof(struct nn_scrape_static_config, f)
static const struct nn_cfg_option static_options[] = {
    {.name = "targets",
     .type = NN_CFG_STRLIST,
     .offset = SC(targets),
     .def = NULL,
     .help = "host:port addresses to scrape"},
    {.name = "labels",
     .type = NN_CFG_STRMAP,
     .offset = SC(labels),
     .def = NULL,
     .help = "labels added to every target of the group"},
    {.name = NULL},
};

#define FS(f) offsetof(struct nn_scrape_file_sd_config, f)
static const struct nn_cfg_option file_sd_options[] = {
    {.name = "files",
     .type = NN_CFG_STRLIST,
     .offset = FS(files),
     .def = NULL,
     .help = "JSON (.json) or YAML (.yml, .yaml) target files; the last path element may be a glob",
     .flags = NN_CFG_REQUIRED},
    {.name = "refresh_interval",
     .type = NN_CFG_DURATION,
     .offset = FS(refresh_interval_ms),
     .def = "5m",
     .help = "how often files are re-read (changes are also picked up by inotify)"},
    {.name = NULL},
};

#define KS(f) offsetof(struct nn_scrape_k8s_sd_config, f)
static const struct nn_cfg_option k8s_sd_options[] = {
    {.name = "role",
     .type = NN_CFG_STR,
     .offset = KS(role),
     .def = "pod",
     .help = "only pod is supported"},
    {.name = "api_server",
     .type = NN_CFG_STR,
     .offset = KS(api_server),
     .def = NULL,
     .help = "API server URL; empty means in-cluster (KUBERNETES_SERVICE_HOST/PORT)"},
    {.name = "node_name",
     .type = NN_CFG_STR,
     .offset = KS(node_name),
     .def = NULL,
     .help = "only pods on this node; empty means $NODE_NAME, or every node when that is unset"},
    {.name = "token_file",
     .type = NN_CFG_STR,
     .offset = KS(token_file),
     .def = "/var/run/secrets/kubernetes.io/serviceaccount/token",
     .help = "bearer token file"},
    {.name = "ca_file",
     .type = NN_CFG_STR,
     .offset = KS(ca_file),
     .def = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
     .help = "CA bundle that signed the API server certificate"},
    {.name = "insecure_skip_verify",
     .type = NN_CFG_BOOL,
     .offset = KS(insecure_skip_verify),
     .def = "false",
     .help = "do not verify the API server certificate"},
    {.name = "annotations",
     .type = NN_CFG_BOOL,
     .offset = KS(annotations),
     .def = "true",
     .help = "scrape only pods annotated prometheus.io/scrape: \"true\", at prometheus.io/port and "
             "prometheus.io/path"},
    {.name = "resync_interval",
     .type = NN_CFG_DURATION,
     .offset = KS(resync_interval_ms),
     .def = "5m",
     .help = "full re-list period"},
    {.name = "watch_timeout",
     .type = NN_CFG_DURATION,
     .offset = KS(watch_timeout_ms),
     .def = "1m",
     .help = "length of each watch request before it is renewed"},
    {.name = "namespaces",
     .type = NN_CFG_STRLIST,
     .offset = KS(namespaces),
     .def = NULL,
     .help = "namespaces to watch; empty means all"},
    {.name = NULL},
};

#define JS(f) offsetof(struct nn_scrape_job_config, f)
const struct nn_cfg_option nn_scrape_job_config_options[] = {
    {.name = "job_name",
     .type = NN_CFG_STR,
     .offset = JS(job_name),
     .def = NULL,
     .help = "value of the job label; unique",
     .flags = NN_CFG_REQUIRED},
    {.name = "scrape_interval",
     .type = NN_CFG_DURATION,
     .offset = JS(scrape_interval_ms),
     .def = NULL,
     .help = "default: the global scrape_interval"},
    {.name = "scrape_timeout",
     .type = NN_CFG_DURATION,
     .offset = JS(scrape_timeout_ms),
     .def = NULL,
     .help = "default: the global scrape_timeout, at most scrape_interval"},
    {.name = "metrics_path",
     .type = NN_CFG_STR,
     .offset = JS(metrics_path),
     .def = "/metrics",
     .help = "HTTP path to scrape"},
    {.name = "scheme",
     .type = NN_CFG_STR,
     .offset = JS(scheme),
     .def = "http",
     .help = "http or https"},
    {"params", NN_CFG_CUSTOM, JS(params), NULL, "URL parameters: {name: [values]}",
     .custom = params_parse, .custom_free = params_free},
    {.name = "honor_labels",
     .type = NN_CFG_BOOL,
     .offset = JS(honor_labels),
     .def = "false",
     .help =
         "keep scraped labels that clash with target labels (else they become exported_<name>)"},
    {.name = "honor_timestamps",
     .type = NN_CFG_BOOL,
     .offset = JS(honor_timestamps),
     .def = "true",
     .help = "use timestamps the target exposes"},
    {.name = "sample_limit",
     .type = NN_CFG_INT,
     .offset = JS(sample_limit),
     .def = "0",
     .help = "more samples (after metric relabeling) fail the scrape; 0 = no limit"},
    {.name = "label_limit",
     .type = NN_CFG_INT,
     .offset = JS(label_limit),
     .def = "0",
     .help = "labels per sample; 0 = no limit"},
    {.name = "label_name_length_limit",
     .type = NN_CFG_INT,
     .offset = JS(label_name_length_limit),
     .def = "0",
     .help = "0 = no limit"},
    {.name = "label_value_length_limit",
     .type = NN_CFG_INT,
     .offset = JS(label_value_length_limit),
     .def = "0",
     .help = "0 = no limit"},
    {.name = "body_size_limit",
     .type = NN_CFG_SIZE,
     .offset = JS(body_size_limit),
     .def = "0",
     .help = "larger responses fail the scrape; 0 = 64MiB"},
    {.name = "relabel_configs",
     .type = NN_CFG_CUSTOM,
     .offset = JS(relabel_configs),
     .def = NULL,
     .help = "target relabeling",
     .custom = nn_relabel_cfg_parse,
     .custom_free = nn_relabel_cfg_free},
    {.name = "metric_relabel_configs",
     .type = NN_CFG_CUSTOM,
     .offset = JS(metric_relabel_configs),
     .def = NULL,
     .help = "relabeling of every scraped sample",
     .custom = nn_relabel_cfg_parse,
     .custom_free = nn_relabel_cfg_free},
    {.name = "static_configs",
     .type = NN_CFG_LIST,
     .offset = JS(static_configs),
     .def = NULL,
     .help = "fixed target groups",
     .sub = static_options,
     .elem_size = sizeof(struct nn_scrape_static_config)},
    {.name = "file_sd_configs",
     .type = NN_CFG_LIST,
     .offset = JS(file_sd_configs),
     .def = NULL,
     .help = "target groups from files",
     .sub = file_sd_options,
     .elem_size = sizeof(struct nn_scrape_file_sd_config)},
    {.name = "kubernetes_sd_configs",
     .type = NN_CFG_LIST,
     .offset = JS(kubernetes_sd_configs),
     .def = NULL,
     .help = "pods of this node from the Kubernetes API",
     .sub = k8s_sd_options,
     .elem_size = sizeof(struct nn_scrape_k8s_sd_config)},
    {.name = NULL},
};

#define TS(f) offsetof(struct nn_scrape_config, f)
const struct nn_cfg_option nn_scrape_config_options[] = {
    {.name = "scrape_interval",
     .type = NN_CFG_DURATION,
     .offset = TS(scrape_interval_ms),
     .def = "1m",
     .help = "default interval of every job"},
    {.name = "scrape_timeout",
     .type = NN_CFG_DURATION,
     .offset = TS(scrape_timeout_ms),
     .def = NULL,
     .help = "default timeout of every job: 10s, or the interval when shorter"},
    {.name = "scrape_configs",
     .type = NN_CFG_LIST,
     .offset = TS(scrape_configs),
     .def = NULL,
     .help = "jobs, as in Prometheus",
     .sub = nn_scrape_job_config_options,
     .elem_size = sizeof(struct nn_scrape_job_config)},
    {.name = NULL},
};

int nn_scrape_config_check(struct nn_scrape_config *cfg, char *err, size_t errlen)
{
  struct nn_scrape_job_config *jobs = cfg->scrape_configs.items;
  if (cfg->scrape_interval_ms <= 0)
    cfg->scrape_interval_ms = 60000;
  if (cfg->scrape_timeout_ms <= 0) /* Prometheus: 10s, but never above the interval */
    cfg->scrape_timeout_ms = cfg->scrape_interval_ms < 10000 ? cfg->scrape_interval_ms : 10000;
  if (cfg->scrape_timeout_ms > cfg->scrape_interval_ms) {
    snprintf(err, errlen, "global scrape timeout greater than scrape interval");
    return NN_ECONFIG;
  }
  for (size_t i = 0; i < cfg->scrape_configs.n; i++) {
    struct nn_scrape_job_config *j = &jobs[i];
    if (!j->job_name || !*j->job_name) {
      snprintf(err, errlen, "scrape_configs[%zu]: job_name is empty", i);
      return NN_ECONFIG;
    }
    for (size_t k = 0; k < i; k++) {
      if (strcmp(jobs[k].job_name, j->job_name) == 0) {
        snprintf(err, errlen, "found multiple scrape configs with job name \"%s\"", j->job_name);
        return NN_ECONFIG;
      }
    }
    if (j->scrape_interval_ms <= 0)
      j->scrape_interval_ms = cfg->scrape_interval_ms;
    if (j->scrape_timeout_ms > j->scrape_interval_ms) {
      snprintf(err, errlen,
               "scrape timeout greater than scrape interval for scrape config with "
               "job name \"%s\"",
               j->job_name);
      return NN_ECONFIG;
    }
    if (j->scrape_timeout_ms <= 0)
      j->scrape_timeout_ms = cfg->scrape_timeout_ms < j->scrape_interval_ms ? cfg->scrape_timeout_ms
                                                                            : j->scrape_interval_ms;
    if (strcmp(j->scheme, "http") != 0 && strcmp(j->scheme, "https") != 0) {
      snprintf(err, errlen, "job \"%s\": scheme must be http or https, not \"%s\"", j->job_name,
               j->scheme);
      return NN_ECONFIG;
    }
    if (j->metrics_path[0] != '/') {
      snprintf(err, errlen, "job \"%s\": metrics_path must start with /", j->job_name);
      return NN_ECONFIG;
    }
    if (j->sample_limit < 0 || j->label_limit < 0 || j->label_name_length_limit < 0 ||
        j->label_value_length_limit < 0) {
      snprintf(err, errlen, "job \"%s\": limits must not be negative", j->job_name);
      return NN_ECONFIG;
    }
    const struct nn_scrape_k8s_sd_config *ks = j->kubernetes_sd_configs.items;
    for (size_t k = 0; k < j->kubernetes_sd_configs.n; k++) {
      if (strcmp(ks[k].role, "pod") != 0) {
        snprintf(err, errlen,
                 "job \"%s\": kubernetes_sd_configs role \"%s\" is not supported "
                 "(only pod)",
                 j->job_name, ks[k].role);
        return NN_ECONFIG;
      }
    }
  }
  return 0;
}
