/* SPDX-License-Identifier: Apache-2.0 */
/* Prints an AST back to PromQL text the way Prometheus's String() methods do, so that a
 * printed expression re-parses to the same tree (used by rules and the @-modifier check). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>

#include "aggregator/promql/internal.h"
#include "common/buf.h"
#include "common/error.h"

static const char *op_str(int op)
{
  switch (op) {
  case TK_ADD: return "+";
  case TK_SUB: return "-";
  case TK_MUL: return "*";
  case TK_DIV: return "/";
  case TK_MOD: return "%";
  case TK_POW: return "^";
  case TK_EQLC: return "==";
  case TK_NEQ: return "!=";
  case TK_LSS: return "<";
  case TK_LTE: return "<=";
  case TK_GTR: return ">";
  case TK_GTE: return ">=";
  case TK_LAND: return "and";
  case TK_LOR: return "or";
  case TK_LUNLESS: return "unless";
  case TK_ATAN2: return "atan2";
  default: return "?";
  }
}

static const char *const agg_names[] = {
    "sum",    "avg",  "count",   "min",      "max",          "group",  "stddev",
    "stdvar", "topk", "bottomk", "quantile", "count_values", "limitk", "limit_ratio",
};

static int print_labels(struct nn_buf *b, const struct nn__promql_strs *s)
{
  int rc;
  if ((rc = nn_buf_appendc(b, '(')) < 0)
    return rc;
  for (size_t k = 0; k < s->n; k++) {
    if (k && (rc = nn_buf_appends(b, ", ")) < 0)
      return rc;
    if (nn_label_name_valid(s->v[k], strlen(s->v[k])))
      rc = nn_buf_appends(b, s->v[k]);
    else
      rc = nn__promql_quote(b, s->v[k]);
    if (rc < 0)
      return rc;
  }
  return nn_buf_appendc(b, ')');
}

static int print_mods(struct nn_buf *b, int at, int64_t at_ms, int64_t off)
{
  int rc = 0;
  if (at == AT_TIME)
    rc = nn_buf_printf(b, " @ %s%lld.%03lld", at_ms < 0 ? "-" : "",
                       (long long)(at_ms < 0 ? -at_ms : at_ms) / 1000,
                       (long long)(at_ms < 0 ? -at_ms : at_ms) % 1000);
  else if (at == AT_START)
    rc = nn_buf_appends(b, " @ start()");
  else if (at == AT_END)
    rc = nn_buf_appends(b, " @ end()");
  if (rc < 0)
    return rc;
  if (off > 0) {
    if ((rc = nn_buf_appends(b, " offset ")) < 0)
      return rc;
    return nn__promql_print_duration(b, off);
  }
  if (off < 0) {
    if ((rc = nn_buf_appends(b, " offset -")) < 0)
      return rc;
    return nn__promql_print_duration(b, -off);
  }
  return 0;
}

/* Names the lexer would read as a keyword or a number must be printed quoted. */
static bool is_reserved(const char *s)
{
  static const char *const words[] = {
      "and",     "or",      "unless",   "atan2",        "offset",      "by",
      "without", "on",      "ignoring", "group_left",   "group_right", "bool",
      "inf",     "nan",     "start",    "end",          "sum",         "avg",
      "count",   "min",     "max",      "group",        "stddev",      "stdvar",
      "topk",    "bottomk", "quantile", "count_values", "limitk",      "limit_ratio"};
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (strcasecmp(s, words[i]) == 0)
      return true;
  return false;
}

static int print_vsel(struct nn_buf *b, const struct nn__promql_node *n)
{
  int rc;
  bool name_plain = n->str && nn_metric_name_valid(n->str, strlen(n->str)) && !is_reserved(n->str);
  if (name_plain && (rc = nn_buf_appends(b, n->str)) < 0)
    return rc;
  size_t shown = 0, name_idx = SIZE_MAX;
  for (size_t k = 0; n->str && k < n->nmatchers && name_idx == SIZE_MAX; k++)
    if (n->matchers[k].type == NN_MATCH_EQ && strcmp(n->matchers[k].name, "__name__") == 0 &&
        strcmp(n->matchers[k].value, n->str) == 0)
      name_idx = k;
  if (name_idx != SIZE_MAX && !name_plain) {
    if ((rc = nn_buf_appendc(b, '{')) < 0 || (rc = nn__promql_quote(b, n->str)) < 0)
      return rc;
    shown++;
  }
  for (size_t k = 0; k < n->nmatchers; k++) {
    const struct nn_matcher *m = &n->matchers[k];
    if (k == name_idx)
      continue;
    if ((rc = nn_buf_appends(b, shown ? ", " : "{")) < 0)
      return rc;
    shown++;
    if (nn_label_name_valid(m->name, strlen(m->name)))
      rc = nn_buf_appends(b, m->name);
    else
      rc = nn__promql_quote(b, m->name);
    if (rc < 0)
      return rc;
    static const char *const ops[] = {"=", "!=", "=~", "!~"};
    if ((rc = nn_buf_appends(b, ops[m->type])) < 0 || (rc = nn__promql_quote(b, m->value)) < 0)
      return rc;
  }
  if (shown && (rc = nn_buf_appendc(b, '}')) < 0)
    return rc;
  return 0;
}

int nn__promql_print_node(struct nn_buf *b, const struct nn__promql_node *n)
{
  int rc = 0;
  char num[400];
  switch (n->kind) {
  case N_NUMBER: nn_promql_format_float_f(n->num, num, sizeof(num)); return nn_buf_appends(b, num);
  case N_STRING: return nn__promql_quote(b, n->str);
  case N_VSEL:
    if ((rc = print_vsel(b, n)) < 0)
      return rc;
    return print_mods(b, n->at, n->at_ms, n->offset_ms);
  case N_MSEL:
    if ((rc = print_vsel(b, n->child)) < 0 || (rc = nn_buf_appendc(b, '[')) < 0 ||
        (rc = nn__promql_print_duration(b, n->range_ms)) < 0 || (rc = nn_buf_appendc(b, ']')) < 0)
      return rc;
    return print_mods(b, n->child->at, n->child->at_ms, n->child->offset_ms);
  case N_SUBQ:
    if ((rc = nn__promql_print_node(b, n->child)) < 0 || (rc = nn_buf_appendc(b, '[')) < 0 ||
        (rc = nn__promql_print_duration(b, n->range_ms)) < 0 || (rc = nn_buf_appendc(b, ':')) < 0)
      return rc;
    if (n->step_ms && (rc = nn__promql_print_duration(b, n->step_ms)) < 0)
      return rc;
    if ((rc = nn_buf_appendc(b, ']')) < 0)
      return rc;
    return print_mods(b, n->at, n->at_ms, n->offset_ms);
  case N_PAREN:
    if ((rc = nn_buf_appendc(b, '(')) < 0 || (rc = nn__promql_print_node(b, n->child)) < 0)
      return rc;
    return nn_buf_appendc(b, ')');
  case N_UNARY:
    if ((rc = nn_buf_appends(b, n->op == TK_SUB ? "-" : "+")) < 0)
      return rc;
    return nn__promql_print_node(b, n->child);
  case N_CALL:
    if ((rc = nn_buf_appends(b, n->func->name)) < 0 || (rc = nn_buf_appendc(b, '(')) < 0)
      return rc;
    for (size_t k = 0; k < n->nargs; k++) {
      if (k && (rc = nn_buf_appends(b, ", ")) < 0)
        return rc;
      if ((rc = nn__promql_print_node(b, n->args[k])) < 0)
        return rc;
    }
    return nn_buf_appendc(b, ')');
  case N_AGG:
    if ((rc = nn_buf_appends(b, agg_names[n->op])) < 0)
      return rc;
    if (n->has_grouping && (n->without || n->grouping.n > 0)) {
      if ((rc = nn_buf_appends(b, n->without ? " without " : " by ")) < 0 ||
          (rc = print_labels(b, &n->grouping)) < 0 || (rc = nn_buf_appendc(b, ' ')) < 0)
        return rc;
    }
    if ((rc = nn_buf_appendc(b, '(')) < 0)
      return rc;
    if (n->param) {
      if ((rc = nn__promql_print_node(b, n->param)) < 0 || (rc = nn_buf_appends(b, ", ")) < 0)
        return rc;
    }
    if ((rc = nn__promql_print_node(b, n->child)) < 0)
      return rc;
    return nn_buf_appendc(b, ')');
  case N_BINARY:
    if ((rc = nn__promql_print_node(b, n->lhs)) < 0 || (rc = nn_buf_appendc(b, ' ')) < 0 ||
        (rc = nn_buf_appends(b, op_str(n->op))) < 0)
      return rc;
    if (n->return_bool && (rc = nn_buf_appends(b, " bool")) < 0)
      return rc;
    if (n->has_matching && (n->on || n->match_labels.n > 0)) {
      if ((rc = nn_buf_appends(b, n->on ? " on " : " ignoring ")) < 0 ||
          (rc = print_labels(b, &n->match_labels)) < 0)
        return rc;
      if (n->card == CARD_MANY_TO_ONE || n->card == CARD_ONE_TO_MANY) {
        if ((rc = nn_buf_appends(b, n->card == CARD_MANY_TO_ONE ? " group_left "
                                                                : " group_right ")) < 0 ||
            (rc = print_labels(b, &n->include)) < 0)
          return rc;
      }
    }
    if ((rc = nn_buf_appendc(b, ' ')) < 0)
      return rc;
    return nn__promql_print_node(b, n->rhs);
  default: return NN_EINVAL;
  }
}

int nn_promql_expr_print(const struct nn_promql_expr *e, struct nn_buf *out)
{
  return nn__promql_print_node(out, e->root);
}
