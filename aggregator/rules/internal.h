/* SPDX-License-Identifier: Apache-2.0 */
/* Types shared by the files of the rules module: parsed rules and groups, alert state,
 * the template engine, and Go-compatible number and time formatting. */
#ifndef NN_AGGREGATOR_RULES_INTERNAL_H
#define NN_AGGREGATOR_RULES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "aggregator/rules/rules.h"
#include "common/labels.h"

struct nn_buf;

/* Prometheus keeps resolved alerts this long so they are re-sent (resolvedRetention). */
#define NN__RULES_RESOLVED_RETENTION_MS (15 * 60 * 1000)
/* Caps on what a rule file may hold, so a hostile file cannot exhaust memory. */
#define NN__RULES_MAX_TEMPLATE_OUT   (64 * 1024)
#define NN__RULES_MAX_TEMPLATE_DEPTH 32

/* ---- templates (template.c) ---- */

struct nn__tmpl;

struct nn__tmpl_data {
  const struct nn_label *labels; /* the sample's labels */
  size_t nlabels;
  const struct nn_label *ext; /* external labels */
  size_t next;
  const char *ext_url;
  double value;
};

/* Parses Go template text (the subset described in template.c). name is used in messages
 * ("__alert_<rule>"). NN_EINVAL with Go's wording in err on a syntax error. */
int nn__tmpl_parse(const char *text, size_t len, const char *name, struct nn__tmpl **out, char *err,
                   size_t errlen);
/* Expands t into out. On an execution error returns NN_EINVAL with the reason in err; out
 * may hold partial output. */
int nn__tmpl_expand(const struct nn__tmpl *t, const struct nn__tmpl_data *d, struct nn_buf *out,
                    char *err, size_t errlen);
void nn__tmpl_free(struct nn__tmpl *t);
/* What the template uses that nines parses but cannot run ("{{with}} is not supported ..."),
 * or NULL. Such a template expands to Prometheus's "<error expanding template: ...>". */
const char *nn__tmpl_unsupported(const struct nn__tmpl *t);
/* Expands text the way an alerting rule does: on failure the result is
 * "<error expanding template: ...>". Returns a heap string (NULL on OOM). */
char *nn__tmpl_expand_text(const struct nn__tmpl *t, const char *name,
                           const struct nn__tmpl_data *d);

/* ---- formatting (format.c) ---- */

/* Go's strconv.FormatFloat(v, 'g', -1, 64) as fmt's %v prints it ("1e+06", "0.5", "+Inf"). */
size_t nn__fmt_go_v(double v, char *buf, size_t len);
/* strconv.FormatFloat(v, 'e', -1, 64): "1e+00", "1.5e-07". */
size_t nn__fmt_go_e(double v, char *buf, size_t len);
/* fmt.Sprintf("%.<prec><verb>", v) for verb in e E f F g G (Go's Inf/NaN spelling). */
size_t nn__fmt_go_prec(double v, int prec, char verb, char *buf, size_t len);
/* Go time.Time JSON form of ms since the epoch (RFC3339Nano, UTC). */
size_t nn__fmt_rfc3339(int64_t ms, char *buf, size_t len);

/* ---- rules and groups (load.c) ---- */

enum nn__rule_type { NN__RULE_RECORDING, NN__RULE_ALERTING };
enum nn__alert_state { NN__ALERT_INACTIVE, NN__ALERT_PENDING, NN__ALERT_FIRING };
enum nn__health { NN__HEALTH_UNKNOWN, NN__HEALTH_OK, NN__HEALTH_ERR };

/* An owned label set (names and values are heap strings). */
struct nn__lset {
  struct nn_label *v;
  size_t n;
  uint64_t hash;
};

struct nn__alert {
  struct nn__lset labels; /* canonical, alertname included */
  struct nn__lset annotations;
  enum nn__alert_state state;
  double value;
  int64_t active_at, fired_at, resolved_at, last_sent_at, valid_until, keep_firing_since;
};

struct nn__rule {
  enum nn__rule_type type;
  char *name;  /* record or alert name */
  char *query; /* the printed expression (Prometheus's String()) */
  struct nn_promql_expr *expr;
  int64_t for_ms, keep_firing_for_ms;
  struct nn__lset labels;      /* as written (templates for alerting rules) */
  struct nn__lset annotations; /* as written */
  struct nn__tmpl **label_tmpls, **ann_tmpls;
  /* State. */
  enum nn__health health;
  char *last_error;
  int64_t last_eval_ms;
  double eval_seconds;
  struct nn__alert **alerts;
  size_t nalerts, alerts_cap;
  bool restored;
  /* Series written at the previous evaluation, for stale markers. */
  struct nn__lset *prev_series;
  size_t nprev;
};

struct nn__group {
  char *name;
  char *file;
  int64_t interval_ms, query_offset_ms;
  int64_t limit;
  struct nn__rule **rules;
  size_t nrules;
  int64_t last_eval_ms; /* evaluation timestamp of the last run, 0 never */
  int64_t next_ts;      /* when the timer runs next */
  double eval_seconds;
  bool restore_pending; /* next evaluation restores `for` state from ALERTS_FOR_STATE */
  struct nn_rules *owner;
  uv_timer_t *timer; /* heap, freed in its close callback */
};

/* A set of groups from one source (files, or one programmatic source). */
struct nn__groupset {
  struct nn__group **v;
  size_t n;
};

/* Loads one rule file text and appends its groups to set. default_interval fills groups
 * without interval. On error err holds "file:line:col: message" and set may hold
 * groups already appended (the caller frees the whole set). */
int nn__rules_load_text(const char *name, const char *text, size_t len, int64_t default_interval,
                        struct nn__groupset *set, char *err, size_t errlen);
/* Expands the globs and loads every file (sorted, each once). */
int nn__rules_load_globs(const struct nn_cfg_strlist *globs, int64_t default_interval,
                         struct nn__groupset *set, char *err, size_t errlen);
void nn__groupset_free(struct nn__groupset *set);
void nn__group_free(struct nn__group *g);
void nn__alert_free(struct nn__alert *a);

int nn__lset_copy(struct nn__lset *dst, const struct nn_label *v, size_t n);
void nn__lset_fini(struct nn__lset *s);

/* ---- the engine (eval.c) ---- */

struct nn_rules {
  struct nn_rules_opts o;
  struct nn_rules_config cfg; /* deep copy */
  struct nn_label *ext;       /* external labels as a canonical set (points into cfg) */
  size_t next;
  struct nn__groupset files;
  char **gen_names; /* programmatic sources */
  struct nn__groupset *gen;
  size_t ngen;
  struct nn_querier q;
  struct nn_rules_stats st;
  bool destroying;
};

/* Evaluates group g at ts: every rule in order, results committed to the head after each
 * rule so later rules see them, alerts handed to notify. */
void nn__group_eval(struct nn_rules *r, struct nn__group *g, int64_t ts);
/* Writes stale markers at t for every series the rule wrote last time (its group went away). */
void nn__rule_mark_stale(struct nn_rules *r, struct nn__rule *rule, int64_t t);
/* Calls fn for every group: files first, then programmatic sources in creation order. */
void nn__rules_each_group(const struct nn_rules *r, void (*fn)(struct nn__group *g, void *ud),
                          void *ud);

#endif
