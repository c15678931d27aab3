/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus relabel_configs: the eleven actions with Prometheus's defaults, validation
 * messages and semantics (model/relabel/relabel.go), fully anchored regexes with RE2-like
 * syntax on PCRE2 (JIT, match limits, no backreferences or lookaround), and Go
 * Regexp.Expand templates ($1, ${1}, $name, ${name}, $$). Used for target relabeling and
 * per-sample metric_relabel_configs. Not thread-safe: a compiled config owns its match
 * data, so one config is applied by one thread at a time. */
#ifndef NN_AGENT_RELABEL_RELABEL_H
#define NN_AGENT_RELABEL_RELABEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/labels.h"

struct nn_yaml_node;
struct nn_cfg_error;

enum nn_relabel_action {
  NN_RELABEL_REPLACE,
  NN_RELABEL_KEEP,
  NN_RELABEL_DROP,
  NN_RELABEL_KEEPEQUAL,
  NN_RELABEL_DROPEQUAL,
  NN_RELABEL_HASHMOD,
  NN_RELABEL_LABELMAP,
  NN_RELABEL_LABELDROP,
  NN_RELABEL_LABELKEEP,
  NN_RELABEL_LOWERCASE,
  NN_RELABEL_UPPERCASE,
};

/* An anchored regex: matches only the whole input, as Prometheus's "^(?:re)$". */
struct nn_relabel_regex;

/* Compiles pattern. NULL with a message in err on a syntax error or a construct RE2 does
 * not have (backreferences, lookaround, atomic groups, possessive quantifiers). */
struct nn_relabel_regex *nn_relabel_regex_compile(const char *pattern, char *err, size_t errlen);
void nn_relabel_regex_destroy(struct nn_relabel_regex *re);
bool nn_relabel_regex_match(struct nn_relabel_regex *re, const char *s, size_t n);

struct nn_relabel_rule {
  enum nn_relabel_action action;
  char **source_labels;
  size_t nsource;
  char *separator;    /* default ";" */
  char *regex_src;    /* default "(.*)" */
  char *target_label; /* may hold $ references for replace */
  char *replacement;  /* default "$1" */
  uint64_t modulus;
  bool regex_is_default; /* regex not given: enables the add/delete fast path */
  struct nn_relabel_regex *regex;
};

struct nn_relabel_config {
  struct nn_relabel_rule *rules;
  size_t n;
};

/* Binds a YAML sequence of relabel_config maps (NULL node: no rules) into cfg, validating
 * as Prometheus does. NN_ECONFIG with a positioned message in err (unknown action, invalid
 * regex, missing target_label, ...); cfg is then empty. */
int nn_relabel_config_bind(const struct nn_yaml_node *seq, struct nn_relabel_config *cfg,
                           struct nn_cfg_error *err);
void nn_relabel_config_free(struct nn_relabel_config *cfg);

/* NN_CFG_CUSTOM hooks for a struct nn_relabel_config field in an option table. */
int nn_relabel_cfg_parse(const struct nn_yaml_node *node, void *dst, struct nn_cfg_error *err);
void nn_relabel_cfg_free(void *dst);

/* Memory for strings the rules create; reset between label sets keeps its blocks. */
struct nn_relabel_scratch {
  struct nn_relabel_block *blocks;
  struct nn_relabel_block *cur;
};

void nn_relabel_scratch_init(struct nn_relabel_scratch *s);
void nn_relabel_scratch_reset(struct nn_relabel_scratch *s);
void nn_relabel_scratch_fini(struct nn_relabel_scratch *s);
/* Copies p[0..n) into the scratch, NUL-terminated; NULL on out-of-memory. */
char *nn_relabel_scratch_strndup(struct nn_relabel_scratch *s, const char *p, size_t n);

/* Applies every rule of cfg in order to labels[0..*n), an array of capacity cap owned by
 * the caller (label strings are borrowed). Returns 1 when the set is kept (labels then hold
 * the result sorted by name, empty values removed), 0 when a rule dropped it, NN_ETOOBIG
 * when it would need more than cap labels, NN_ENOMEM. Strings the rules made live in
 * scratch until its next reset. */
int nn_relabel_process(const struct nn_relabel_config *cfg, struct nn_label *labels, size_t *n,
                       size_t cap, struct nn_relabel_scratch *scratch);

/* Go's Regexp.Expand of template against subject s with the capture offsets of the last
 * successful nn_relabel_regex_match; exposed for tests. Appends to out (at most outcap-1
 * bytes, NUL-terminated) and returns the full length needed. */
size_t nn_relabel_expand(struct nn_relabel_regex *re, const char *tmpl, const char *s, char *out,
                         size_t outcap);

const char *nn_relabel_action_name(enum nn_relabel_action a);

#endif
