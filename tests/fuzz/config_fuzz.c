/* SPDX-License-Identifier: Apache-2.0 */
/* Binds arbitrary YAML into a table that uses every option type (nested sections, lists of
 * sections, secrets, a custom parser), then frees it: LeakSanitizer checks that nn_cfg_free
 * releases everything on success and after any error. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/yaml.h"

struct target {
  char *url;
  int64_t timeout_ms;
  struct nn_cfg_strmap headers;
  struct nn_cfg_strlist tags;
};

struct limits {
  uint64_t max_body;
  double ratio;
  bool strict;
};

struct root {
  char *name;
  bool debug;
  int64_t workers;
  int64_t interval_ms;
  uint64_t spool;
  double ratio;
  struct nn_cfg_strlist globs;
  struct nn_cfg_strmap labels;
  struct limits limits;
  struct nn_cfg_list targets;
  char *password;
  int64_t secret_int;
  char *custom;
};

static int parse_custom(const struct nn_yaml_node *node, void *dst, struct nn_cfg_error *err)
{
  if (node->kind != NN_YAML_SCALAR)
    return nn_cfg_error_set(err, node, "expected a scalar");
  char *v = strndup(node->scalar, node->scalar_len);
  if (!v)
    return nn_cfg_error_set(err, node, "out of memory");
  char **p = dst;
  free(*p);
  *p = v;
  return 0;
}

static void free_custom(void *dst)
{
  char **p = dst;
  free(*p);
  *p = NULL;
}

static const struct nn_cfg_option target_opts[] = {
    {.name = "url",
     .type = NN_CFG_STR,
     .offset = offsetof(struct target, url),
     .flags = NN_CFG_REQUIRED},
    {.name = "timeout",
     .type = NN_CFG_DURATION,
     .offset = offsetof(struct target, timeout_ms),
     .def = "10s"},
    {.name = "headers", .type = NN_CFG_STRMAP, .offset = offsetof(struct target, headers)},
    {.name = "tags",
     .type = NN_CFG_STRLIST,
     .offset = offsetof(struct target, tags),
     .def = "[a, b]"},
    {0},
};

static const struct nn_cfg_option limit_opts[] = {
    {.name = "max_body",
     .type = NN_CFG_SIZE,
     .offset = offsetof(struct limits, max_body),
     .def = "10MB"},
    {.name = "ratio", .type = NN_CFG_DOUBLE, .offset = offsetof(struct limits, ratio)},
    {.name = "strict", .type = NN_CFG_BOOL, .offset = offsetof(struct limits, strict)},
    {0},
};

static const struct nn_cfg_option root_opts[] = {
    {.name = "name", .type = NN_CFG_STR, .offset = offsetof(struct root, name), .def = "x"},
    {.name = "debug", .type = NN_CFG_BOOL, .offset = offsetof(struct root, debug)},
    {.name = "workers", .type = NN_CFG_INT, .offset = offsetof(struct root, workers)},
    {.name = "interval",
     .type = NN_CFG_DURATION,
     .offset = offsetof(struct root, interval_ms),
     .def = "1m"},
    {.name = "spool", .type = NN_CFG_SIZE, .offset = offsetof(struct root, spool)},
    {.name = "ratio", .type = NN_CFG_DOUBLE, .offset = offsetof(struct root, ratio)},
    {.name = "globs", .type = NN_CFG_STRLIST, .offset = offsetof(struct root, globs)},
    {.name = "labels",
     .type = NN_CFG_STRMAP,
     .offset = offsetof(struct root, labels),
     .def = "{a: b}"},
    {.name = "limits",
     .type = NN_CFG_SECTION,
     .offset = offsetof(struct root, limits),
     .sub = limit_opts},
    {.name = "targets",
     .type = NN_CFG_LIST,
     .offset = offsetof(struct root, targets),
     .sub = target_opts,
     .elem_size = sizeof(struct target)},
    {.name = "password",
     .type = NN_CFG_STR,
     .offset = offsetof(struct root, password),
     .flags = NN_CFG_SECRET},
    {.name = "secret_int",
     .type = NN_CFG_INT,
     .offset = offsetof(struct root, secret_int),
     .flags = NN_CFG_SECRET},
    {.name = "custom",
     .type = NN_CFG_CUSTOM,
     .offset = offsetof(struct root, custom),
     .custom = parse_custom,
     .custom_free = free_custom},
    {0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static bool env_set;
  if (!env_set) {
    setenv("NN_FUZZ_SECRET", "hunter2", 1);
    env_set = true;
  }
  struct root r;
  memset(&r, 0, sizeof(r));
  struct nn_cfg_error err;
  int rc = nn_cfg_load_string("fuzz.yaml", (const char *)data, size, root_opts, &r, &err);
  if (rc < 0) {
    if (!err.msg[0])
      abort();
    char buf[2048];
    nn_cfg_error_format(&err, buf, sizeof(buf));
  } else {
    struct target *t = r.targets.items;
    for (size_t i = 0; i < r.targets.n; i++)
      if (!t[i].url)
        abort(); /* REQUIRED was enforced */
  }
  nn_cfg_free(root_opts, &r);
  return 0;
}
