/* SPDX-License-Identifier: Apache-2.0 */
/* Rule file loading: Prometheus's rule file format (rulefmt) read from the positioned YAML
 * tree, validated the way `promtool check rules` validates it, with every error naming
 * file:line:col, the group and the rule. Unknown keys are errors, as in Prometheus. */
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/rules/internal.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/units.h"
#include "common/utf8.h"
#include "common/yaml.h"

/* A rule file may name at most this many files through its globs. */
#define MAX_RULE_FILES 10000

struct loader {
  const char *file;
  char *err;
  size_t errlen;
  int64_t default_interval;
};

static int lerr(struct loader *l, const struct nn_yaml_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int lerr(struct loader *l, const struct nn_yaml_node *n, const char *fmt, ...)
{
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n)
    snprintf(l->err, l->errlen, "%s:%d:%d: %s", l->file, n->line, n->col, msg);
  else
    snprintf(l->err, l->errlen, "%s: %s", l->file, msg);
  return NN_ECONFIG;
}

void nn__lset_fini(struct nn__lset *s)
{
  for (size_t i = 0; i < s->n; i++) {
    free((char *)s->v[i].name);
    free((char *)s->v[i].value);
  }
  free(s->v);
  memset(s, 0, sizeof(*s));
}

int nn__lset_copy(struct nn__lset *dst, const struct nn_label *v, size_t n)
{
  memset(dst, 0, sizeof(*dst));
  if (n == 0)
    return 0;
  if (!(dst->v = calloc(n, sizeof(*dst->v))))
    return NN_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    dst->v[i].name = strdup(v[i].name);
    dst->v[i].value = strdup(v[i].value);
    dst->n = i + 1;
    if (!dst->v[i].name || !dst->v[i].value) {
      nn__lset_fini(dst);
      return NN_ENOMEM;
    }
  }
  dst->hash = nn_labels_hash(dst->v, dst->n);
  return 0;
}

void nn__alert_free(struct nn__alert *a)
{
  if (!a)
    return;
  nn__lset_fini(&a->labels);
  nn__lset_fini(&a->annotations);
  free(a);
}

static void rule_free(struct nn__rule *r)
{
  if (!r)
    return;
  free(r->name);
  free(r->query);
  nn_promql_expr_free(r->expr);
  for (size_t i = 0; r->label_tmpls && i < r->labels.n; i++)
    nn__tmpl_free(r->label_tmpls[i]);
  for (size_t i = 0; r->ann_tmpls && i < r->annotations.n; i++)
    nn__tmpl_free(r->ann_tmpls[i]);
  free(r->label_tmpls);
  free(r->ann_tmpls);
  nn__lset_fini(&r->labels);
  nn__lset_fini(&r->annotations);
  free(r->last_error);
  for (size_t i = 0; i < r->nalerts; i++)
    nn__alert_free(r->alerts[i]);
  free(r->alerts);
  for (size_t i = 0; i < r->nprev; i++)
    nn__lset_fini(&r->prev_series[i]);
  free(r->prev_series);
  free(r);
}

void nn__group_free(struct nn__group *g)
{
  if (!g)
    return;
  for (size_t i = 0; i < g->nrules; i++)
    rule_free(g->rules[i]);
  free(g->rules);
  free(g->name);
  free(g->file);
  free(g);
}

void nn__groupset_free(struct nn__groupset *set)
{
  for (size_t i = 0; i < set->n; i++)
    nn__group_free(set->v[i]);
  free(set->v);
  memset(set, 0, sizeof(*set));
}

static const char *scalar(const struct nn_yaml_node *n)
{
  return n && n->kind == NN_YAML_SCALAR ? n->scalar : "";
}

static int get_string(struct loader *l, const struct nn_yaml_node *n, const char *what,
                      const char **out)
{
  if (n->kind == NN_YAML_NULL) {
    *out = "";
    return 0;
  }
  if (n->kind != NN_YAML_SCALAR)
    return lerr(l, n, "%s: expected a string, got a %s", what, nn_yaml_kind_name(n->kind));
  if (strlen(n->scalar) != n->scalar_len)
    return lerr(l, n, "%s: string contains a NUL byte", what);
  *out = n->scalar;
  return 0;
}

static int get_duration(struct loader *l, const struct nn_yaml_node *n, const char *what,
                        int64_t *ms)
{
  if (n->kind == NN_YAML_NULL) {
    *ms = 0;
    return 0;
  }
  if (n->kind != NN_YAML_SCALAR || nn_duration_parse(n->scalar, n->scalar_len, ms) < 0)
    return lerr(l, n, "%s: not a valid duration string: \"%s\"", what,
                n->kind == NN_YAML_SCALAR ? n->scalar : nn_yaml_kind_name(n->kind));
  return 0;
}

static int cmp_label(const void *a, const void *b)
{
  return strcmp(((const struct nn_label *)a)->name, ((const struct nn_label *)b)->name);
}

/* Reads a map of strings into an lset sorted by name. kind is "label" or "annotation". */
static int get_map(struct loader *l, const struct nn_yaml_node *n, const char *ctx,
                   const char *kind, bool labels, struct nn__lset *out)
{
  int rc = 0;
  memset(out, 0, sizeof(*out));
  if (n->kind == NN_YAML_NULL)
    return 0;
  if (n->kind != NN_YAML_MAP)
    return lerr(l, n, "%s: %ss must be a map, got a %s", ctx, kind, nn_yaml_kind_name(n->kind));
  struct nn_label *tmp = calloc(n->len ? n->len : 1, sizeof(*tmp));
  if (!tmp)
    return NN_ENOMEM;
  for (size_t i = 0; i < n->len; i++) {
    const char *k = NULL, *v = NULL;
    if ((rc = get_string(l, n->keys[i], kind, &k)) < 0 ||
        (rc = get_string(l, n->items[i], kind, &v)) < 0)
      goto out;
    if (!nn_label_name_valid(k, strlen(k)) || (labels && strcmp(k, "__name__") == 0)) {
      rc = lerr(l, n->keys[i], "%s: invalid %s name: %s", ctx, kind, k);
      goto out;
    }
    if (!nn_utf8_valid(v, strlen(v))) {
      rc = lerr(l, n->items[i], "%s: invalid %s value: %s", ctx, kind, v);
      goto out;
    }
    tmp[i].name = k;
    tmp[i].value = v;
  }
  qsort(tmp, n->len, sizeof(*tmp), cmp_label);
  rc = nn__lset_copy(out, tmp, n->len);
out:
  free(tmp);
  return rc;
}

static int parse_templates(struct loader *l, const struct nn_yaml_node *map, const char *ctx,
                           const char *kind, const char *tname, const struct nn__lset *set,
                           struct nn__tmpl ***out)
{
  if (set->n == 0)
    return 0;
  if (!(*out = calloc(set->n, sizeof(**out))))
    return NN_ENOMEM;
  for (size_t i = 0; i < set->n; i++) {
    char terr[384];
    int rc = nn__tmpl_parse(set->v[i].value, strlen(set->v[i].value), tname, &(*out)[i], terr,
                            sizeof(terr));
    if (rc == NN_ENOMEM)
      return rc;
    if (rc < 0) {
      const struct nn_yaml_node *at = nn_yaml_map_get(map, set->v[i].name);
      return lerr(l, at ? at : map, "%s: %s \"%s\": %s", ctx, kind, set->v[i].name, terr);
    }
    const char *unsup = nn__tmpl_unsupported((*out)[i]);
    if (unsup) {
      /* Valid for Prometheus (promtool accepts it), so a warning, not a load error. */
      const struct nn_yaml_node *at = nn_yaml_map_get(map, set->v[i].name);
      nn_warn("rules",
              "%s:%d:%d: %s: %s \"%s\": %s; it will expand to \"<error expanding "
              "template: ...>\"",
              l->file, at ? at->line : map->line, at ? at->col : map->col, ctx, kind,
              set->v[i].name, unsup);
    }
  }
  return 0;
}

static bool is_key(const struct nn_yaml_node *k, const char *const *allowed)
{
  for (; *allowed; allowed++)
    if (nn_yaml_scalar_eq(k, *allowed))
      return true;
  return false;
}

static int load_rule(struct loader *l, const char *gname, size_t idx, const struct nn_yaml_node *n,
                     struct nn__rule **out)
{
  static const char *const keys[] = {"record",          "alert",  "expr",        "for",
                                     "keep_firing_for", "labels", "annotations", NULL};
  int rc = 0;
  char ctx[512];
  struct nn__rule *r = NULL;
  const struct nn_yaml_node *rec = nn_yaml_map_get(n, "record"),
                            *alert = nn_yaml_map_get(n, "alert"),
                            *expr = nn_yaml_map_get(n, "expr"), *f = nn_yaml_map_get(n, "for"),
                            *kff = nn_yaml_map_get(n, "keep_firing_for"),
                            *labels = nn_yaml_map_get(n, "labels"),
                            *ann = nn_yaml_map_get(n, "annotations");
  const char *name = "";
  snprintf(ctx, sizeof(ctx), "group \"%s\", rule %zu", gname, idx + 1);
  if (n->kind != NN_YAML_MAP)
    return lerr(l, n, "%s: a rule must be a map, got a %s", ctx, nn_yaml_kind_name(n->kind));
  if (rec && (rc = get_string(l, rec, "record", &name)) < 0)
    return rc;
  if (alert && (rc = get_string(l, alert, "alert", &name)) < 0)
    return rc;
  snprintf(ctx, sizeof(ctx), "group \"%s\", rule %zu, \"%s\"", gname, idx + 1, name);
  for (size_t i = 0; i < n->len; i++)
    if (!is_key(n->keys[i], keys))
      return lerr(l, n->keys[i], "%s: field %s not found in type rulefmt.Rule", ctx,
                  scalar(n->keys[i]));
  if (rec && alert && rec->kind != NN_YAML_NULL && alert->kind != NN_YAML_NULL)
    return lerr(l, n, "%s: only one of 'record' and 'alert' must be set", ctx);
  if (!name[0])
    return lerr(l, n, "%s: one of 'record' or 'alert' must be set", ctx);
  const char *etext = "";
  if (expr && (rc = get_string(l, expr, "expr", &etext)) < 0)
    return rc;
  if (!etext[0])
    return lerr(l, n, "%s: field 'expr' must be set in rule", ctx);
  if (!(r = calloc(1, sizeof(*r))) || !(r->name = strdup(name))) {
    rc = NN_ENOMEM;
    goto out;
  }
  r->type = rec && rec->kind != NN_YAML_NULL ? NN__RULE_RECORDING : NN__RULE_ALERTING;
  struct nn_promql_error perr;
  rc = nn_promql_parse(etext, strlen(etext), &r->expr, &perr);
  if (rc == NN_ENOMEM)
    goto out;
  if (rc < 0) {
    rc = lerr(l, expr, "%s: could not parse expression: %s", ctx, perr.msg);
    goto out;
  }
  {
    struct nn_buf b;
    nn_buf_init(&b, 1 << 20);
    rc = nn_promql_expr_print(r->expr, &b);
    r->query = rc == 0 ? (b.data ? nn_buf_steal(&b, NULL) : strdup(etext)) : NULL;
    nn_buf_fini(&b);
    if (!r->query && !(r->query = strdup(etext))) {
      rc = NN_ENOMEM;
      goto out;
    }
    rc = 0;
  }
  if (r->type == NN__RULE_RECORDING) {
    if (ann && ann->kind != NN_YAML_NULL) {
      rc = lerr(l, ann, "%s: invalid field 'annotations' in recording rule", ctx);
      goto out;
    }
    if (f && f->kind != NN_YAML_NULL) {
      rc = lerr(l, f, "%s: invalid field 'for' in recording rule", ctx);
      goto out;
    }
    if (kff && kff->kind != NN_YAML_NULL) {
      rc = lerr(l, kff, "%s: invalid field 'keep_firing_for' in recording rule", ctx);
      goto out;
    }
    if (!nn_metric_name_valid(name, strlen(name))) {
      rc = lerr(l, rec, "%s: invalid recording rule name: %s", ctx, name);
      goto out;
    }
  } else if (!nn_utf8_valid(name, strlen(name))) {
    rc = lerr(l, alert, "%s: invalid alert name: %s", ctx, name);
    goto out;
  }
  if (f && (rc = get_duration(l, f, "for", &r->for_ms)) < 0)
    goto out;
  if (kff && (rc = get_duration(l, kff, "keep_firing_for", &r->keep_firing_for_ms)) < 0)
    goto out;
  if (labels && (rc = get_map(l, labels, ctx, "label", true, &r->labels)) < 0)
    goto out;
  if (ann && (rc = get_map(l, ann, ctx, "annotation", false, &r->annotations)) < 0)
    goto out;
  if (r->type == NN__RULE_ALERTING) {
    char tname[300];
    snprintf(tname, sizeof(tname), "__alert_%s", name);
    if ((rc = parse_templates(l, labels, ctx, "label", tname, &r->labels, &r->label_tmpls)) < 0 ||
        (rc = parse_templates(l, ann, ctx, "annotation", tname, &r->annotations, &r->ann_tmpls)) <
            0)
      goto out;
  }
  r->restored = true;
out:
  if (rc < 0) {
    rule_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

static int load_group(struct loader *l, const struct nn_yaml_node *n, struct nn__group **out)
{
  static const char *const keys[] = {"name", "interval", "limit", "query_offset", "rules", NULL};
  int rc = 0;
  struct nn__group *g = NULL;
  if (n->kind != NN_YAML_MAP)
    return lerr(l, n, "a rule group must be a map, got a %s", nn_yaml_kind_name(n->kind));
  for (size_t i = 0; i < n->len; i++)
    if (!is_key(n->keys[i], keys))
      return lerr(l, n->keys[i], "field %s not found in type rulefmt.RuleGroup",
                  scalar(n->keys[i]));
  const struct nn_yaml_node *name = nn_yaml_map_get(n, "name"),
                            *interval = nn_yaml_map_get(n, "interval"),
                            *limit = nn_yaml_map_get(n, "limit"),
                            *qoff = nn_yaml_map_get(n, "query_offset"),
                            *rules = nn_yaml_map_get(n, "rules");
  const char *gname = "";
  if (name && (rc = get_string(l, name, "name", &gname)) < 0)
    return rc;
  if (!gname[0])
    return lerr(l, n, "Groupname must not be empty");
  if (!(g = calloc(1, sizeof(*g))) || !(g->name = strdup(gname)) || !(g->file = strdup(l->file))) {
    rc = NN_ENOMEM;
    goto out;
  }
  g->interval_ms = l->default_interval;
  if (interval) {
    int64_t v;
    if ((rc = get_duration(l, interval, "interval", &v)) < 0)
      goto out;
    if (v > 0)
      g->interval_ms = v;
  }
  if (qoff && (rc = get_duration(l, qoff, "query_offset", &g->query_offset_ms)) < 0)
    goto out;
  if (limit && limit->kind != NN_YAML_NULL) {
    char *e;
    long long v = strtoll(scalar(limit), &e, 10);
    if (limit->kind != NN_YAML_SCALAR || *e || !scalar(limit)[0] || v < 0) {
      rc = lerr(l, limit, "group \"%s\": limit must be a non-negative integer", gname);
      goto out;
    }
    g->limit = v;
  }
  if (rules && rules->kind != NN_YAML_NULL) {
    if (rules->kind != NN_YAML_SEQ) {
      rc = lerr(l, rules, "group \"%s\": rules must be a list", gname);
      goto out;
    }
    if (rules->len && !(g->rules = calloc(rules->len, sizeof(*g->rules)))) {
      rc = NN_ENOMEM;
      goto out;
    }
    for (size_t i = 0; i < rules->len; i++) {
      if ((rc = load_rule(l, gname, i, rules->items[i], &g->rules[i])) < 0)
        goto out;
      g->nrules++;
    }
  }
  g->restore_pending = true;
out:
  if (rc < 0) {
    nn__group_free(g);
    return rc;
  }
  *out = g;
  return 0;
}

static int set_push(struct nn__groupset *set, struct nn__group *g)
{
  struct nn__group **nv = realloc(set->v, (set->n + 1) * sizeof(*nv));
  if (!nv)
    return NN_ENOMEM;
  set->v = nv;
  set->v[set->n++] = g;
  return 0;
}

static int load_doc(struct loader *l, const struct nn_yaml_node *root, struct nn__groupset *set)
{
  int rc;
  if (root->kind == NN_YAML_NULL)
    return 0;
  if (root->kind != NN_YAML_MAP)
    return lerr(l, root, "a rule file must be a map with a \"groups\" key, got a %s",
                nn_yaml_kind_name(root->kind));
  for (size_t i = 0; i < root->len; i++)
    if (!nn_yaml_scalar_eq(root->keys[i], "groups"))
      return lerr(l, root->keys[i], "field %s not found in type rulefmt.RuleGroups",
                  scalar(root->keys[i]));
  const struct nn_yaml_node *groups = nn_yaml_map_get(root, "groups");
  if (!groups || groups->kind == NN_YAML_NULL)
    return 0;
  if (groups->kind != NN_YAML_SEQ)
    return lerr(l, groups, "groups must be a list, got a %s", nn_yaml_kind_name(groups->kind));
  size_t first = set->n;
  for (size_t i = 0; i < groups->len; i++) {
    struct nn__group *g = NULL;
    if ((rc = load_group(l, groups->items[i], &g)) < 0)
      return rc;
    for (size_t j = first; j < set->n; j++)
      if (strcmp(set->v[j]->name, g->name) == 0) {
        rc = lerr(l, nn_yaml_map_get(groups->items[i], "name"),
                  "groupname: \"%s\" is repeated in the same file", g->name);
        nn__group_free(g);
        return rc;
      }
    if ((rc = set_push(set, g)) < 0) {
      nn__group_free(g);
      return rc;
    }
  }
  return 0;
}

static int yaml_failed(struct loader *l, int rc, const struct nn_yaml_error *ye)
{
  if (rc == NN_ENOMEM)
    return rc;
  nn_yaml_error_format(ye, l->err, l->errlen);
  return NN_ECONFIG;
}

int nn__rules_load_text(const char *name, const char *text, size_t len, int64_t default_interval,
                        struct nn__groupset *set, char *err, size_t errlen)
{
  struct loader l = {.file = name,
                     .err = err,
                     .errlen = errlen,
                     .default_interval = default_interval > 0 ? default_interval : 60000};
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error ye;
  int rc = nn_yaml_load_string(name, text, len, &doc, &ye);
  if (rc < 0)
    return yaml_failed(&l, rc, &ye);
  rc = load_doc(&l, doc->root, set);
  nn_yaml_doc_destroy(doc);
  return rc;
}

static int load_file(const char *path, int64_t default_interval, struct nn__groupset *set,
                     char *err, size_t errlen)
{
  struct loader l = {.file = path,
                     .err = err,
                     .errlen = errlen,
                     .default_interval = default_interval > 0 ? default_interval : 60000};
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error ye;
  int rc = nn_yaml_load_file(path, &doc, &ye);
  if (rc < 0)
    return yaml_failed(&l, rc, &ye);
  rc = load_doc(&l, doc->root, set);
  nn_yaml_doc_destroy(doc);
  return rc;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int nn__rules_load_globs(const struct nn_cfg_strlist *globs, int64_t default_interval,
                         struct nn__groupset *set, char *err, size_t errlen)
{
  int rc = 0;
  char **files = NULL;
  size_t nfiles = 0;
  for (size_t i = 0; globs && i < globs->n; i++) {
    glob_t gl;
    int grc = glob(globs->v[i], GLOB_ERR, NULL, &gl);
    if (grc == GLOB_NOMATCH)
      continue;
    if (grc != 0) {
      snprintf(err, errlen, "rule_files: cannot expand \"%s\": %s", globs->v[i],
               grc == GLOB_NOSPACE ? "out of memory" : "read error");
      rc = grc == GLOB_NOSPACE ? NN_ENOMEM : NN_ECONFIG;
      goto out;
    }
    for (size_t j = 0; j < gl.gl_pathc; j++) {
      if (nfiles >= MAX_RULE_FILES) {
        globfree(&gl);
        snprintf(err, errlen, "rule_files: more than %d files", MAX_RULE_FILES);
        rc = NN_ELIMIT;
        goto out;
      }
      char **nf = realloc(files, (nfiles + 1) * sizeof(*nf));
      if (!nf || !(nf[nfiles] = strdup(gl.gl_pathv[j]))) {
        if (nf)
          files = nf;
        globfree(&gl);
        rc = NN_ENOMEM;
        goto out;
      }
      files = nf;
      nfiles++;
    }
    globfree(&gl);
  }
  if (nfiles)
    qsort(files, nfiles, sizeof(*files), cmp_str);
  for (size_t i = 0; i < nfiles; i++) {
    if (i > 0 && strcmp(files[i], files[i - 1]) == 0)
      continue;
    if ((rc = load_file(files[i], default_interval, set, err, errlen)) < 0)
      goto out;
  }
out:
  for (size_t i = 0; i < nfiles; i++)
    free(files[i]);
  free(files);
  return rc;
}

int nn_rules_check_string(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
  struct nn__groupset set = {0};
  int rc = nn__rules_load_text(name, text, len, 60000, &set, err, errlen);
  nn__groupset_free(&set);
  return rc;
}

int nn_rules_check_files(const struct nn_cfg_strlist *globs, char *err, size_t errlen)
{
  struct nn__groupset set = {0};
  int rc = nn__rules_load_globs(globs, 60000, &set, err, errlen);
  nn__groupset_free(&set);
  return rc;
}
