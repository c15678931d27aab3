/* SPDX-License-Identifier: Apache-2.0 */
/* A subset of Go's text/template as Prometheus uses it in alert labels and annotations:
 * text, comments, trim markers, pipelines of the variables $labels, $value,
 * $externalLabels, $externalURL (and the fields .Labels, .Value, ...), string and number
 * literals, parentheses, and the functions humanize, humanize1024, humanizePercentage,
 * humanizeDuration, humanizeTimestamp, printf, print, toUpper, toLower, title, safeHtml,
 * stripPort, externalURL, the comparisons eq ne lt le gt ge and the logic and or not, with
 * {{if}}/{{else if}}/{{else}}/{{end}}, {{with}}/{{else}} and {{range}} over a map ($labels,
 * $externalLabels) with optional $key, $value variables. Control flow is compiled into the
 * flat node list as conditional jumps. Syntax errors are reported at parse time with Go's
 * wording; valid Go constructs outside the subset (define, variable declarations, query, ...)
 * parse, and fail when executed, which Prometheus turns into the alert text
 * "<error expanding template: ...>"; nn__tmpl_unsupported names them at load time. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator/rules/internal.h"
#include "common/buf.h"
#include "common/error.h"

/* humanizeTimestamp outside Go's time range (a private positive sentinel). */
enum { ERANGE_TS = 1 };

enum arg_kind { A_DOT, A_FIELD, A_VAR, A_STR, A_NUM, A_PIPE, A_BOOL };

struct pipe;

struct arg {
  enum arg_kind kind;
  char *var;     /* A_VAR: name without '$' ("" for $) */
  char **fields; /* A_FIELD, A_VAR: .a.b chain */
  size_t nfields;
  char *str; /* A_STR */
  size_t str_len;
  double num;        /* A_NUM, A_BOOL */
  bool is_int;       /* A_NUM written as an integer */
  struct pipe *pipe; /* A_PIPE */
};

struct cmd {
  char *fn; /* function name, NULL when the command is a single operand */
  struct arg *args;
  size_t nargs;
};

struct pipe {
  struct cmd *cmds;
  size_t n;
};

/* N_IF: evaluate pipe, jump to target when false. N_JUMP: jump to target. N_RANGE: evaluate
 * pipe (a map); empty: jump to target (the else branch or the end); else bind the first
 * element and go on. N_NEXT (closes the body of the N_RANGE at target): bind the next
 * element and jump back after the N_RANGE, or jump to target2 (the end) when done.
 * N_WITH: evaluate pipe; empty: jump to target (the else branch or the end), else make it
 * "." until the N_ENDWITH that closes the body. */
enum node_kind { N_TEXT, N_ACTION, N_IF, N_JUMP, N_RANGE, N_NEXT, N_WITH, N_ENDWITH };

struct node {
  enum node_kind kind;
  char *text; /* N_TEXT */
  size_t len;
  struct pipe *pipe; /* N_ACTION, N_IF, N_RANGE */
  int line;
  size_t target, target2;
  char *key_var, *val_var; /* N_RANGE: names without '$', or NULL */
};

enum block_kind { B_IF, B_RANGE, B_WITH, B_OTHER };

/* An open {{if}}/{{range}}/... while parsing: what {{else}} and {{end}} must patch. */
struct block {
  enum block_kind kind;
  size_t node;      /* B_IF: the N_IF waiting for its false target; B_RANGE: the N_RANGE */
  bool pending;     /* B_IF: node still needs its target */
  bool has_else;    /* an unconditional {{else}} was seen */
  size_t jumps[64]; /* N_JUMPs to the end of the if/else chain */
  size_t njumps;
  size_t nvars; /* declared variables to keep at {{end}} */
};

struct nn__tmpl {
  char *name;
  struct node *nodes;
  size_t n;
  /* A construct that is valid Go but not implemented: execution fails with this text. */
  char *unsupported;
};

/* ---- parsing ---- */

struct parser {
  const char *s, *end;
  const char *name;
  int line;
  char *err;
  size_t errlen;
  bool failed;
  int nesting; /* parentheses */
  char *unsupported;
  char **vars; /* declared variables beyond the predefined ones */
  size_t nvars;
  struct nn__tmpl *t; /* the template being built, for control-flow nodes */
  size_t *cap;
  struct block *blocks;
  size_t nblocks;
};

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct parser *p, const char *fmt, ...)
{
  if (!p->failed) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "template: %s:%d: %s", p->name, p->line, msg);
  }
  p->failed = true;
  return NN_EINVAL;
}

static void mark_unsupported(struct parser *p, const char *what)
{
  if (!p->unsupported) {
    char msg[160];
    snprintf(msg, sizeof(msg), "%s is not supported by nines' template engine", what);
    p->unsupported = strdup(msg);
  }
}

static const char *const implemented_fns[] = {
    "humanize",
    "humanize1024",
    "humanizePercentage",
    "humanizeDuration",
    "humanizeTimestamp",
    "printf",
    "print",
    "toUpper",
    "toLower",
    "title",
    "safeHtml",
    "stripPort",
    "externalURL",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    NULL,
};
/* Go builtins and Prometheus template functions that parse but are not implemented. */
static const char *const known_fns[] = {
    "call",
    "html",
    "index",
    "slice",
    "js",
    "len",
    "println",
    "urlquery",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "match",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "toTime",
    "toDuration",
    "pathPrefix",
    "parseDuration",
    "stripDomain",
    "now",
    "urlQueryEscape",
    NULL,
};

static bool in_list(const char *const *l, const char *s, size_t n)
{
  for (; *l; l++)
    if (strlen(*l) == n && memcmp(*l, s, n) == 0)
      return true;
  return false;
}

static bool var_defined(struct parser *p, const char *s, size_t n)
{
  static const char *const pre[] = {"", "labels", "externalLabels", "externalURL", "value", NULL};
  if (in_list(pre, s, n))
    return true;
  for (size_t i = 0; i < p->nvars; i++)
    if (strlen(p->vars[i]) == n && memcmp(p->vars[i], s, n) == 0)
      return true;
  return false;
}

static bool is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alnum_(char c)
{
  return isalnum((unsigned char)c) || c == '_';
}

static void skip_space(struct parser *p, const char *end)
{
  while (p->s < end && is_space(*p->s)) {
    if (*p->s == '\n')
      p->line++;
    p->s++;
  }
}

static void free_pipe(struct pipe *pp);

static void free_arg(struct arg *a)
{
  free(a->var);
  for (size_t i = 0; i < a->nfields; i++)
    free(a->fields[i]);
  free(a->fields);
  free(a->str);
  free_pipe(a->pipe);
}

static void free_pipe(struct pipe *pp)
{
  if (!pp)
    return;
  for (size_t i = 0; i < pp->n; i++) {
    free(pp->cmds[i].fn);
    for (size_t j = 0; j < pp->cmds[i].nargs; j++)
      free_arg(&pp->cmds[i].args[j]);
    free(pp->cmds[i].args);
  }
  free(pp->cmds);
  free(pp);
}

/* Reads ".a.b" field chains. */
static int parse_fields(struct parser *p, const char *end, struct arg *a)
{
  while (p->s < end && *p->s == '.' && p->s + 1 < end && is_alnum_(p->s[1])) {
    const char *st = ++p->s;
    while (p->s < end && is_alnum_(*p->s))
      p->s++;
    char **nf = realloc(a->fields, (a->nfields + 1) * sizeof(*nf));
    if (!nf)
      return NN_ENOMEM;
    a->fields = nf;
    if (!(a->fields[a->nfields] = strndup(st, (size_t)(p->s - st))))
      return NN_ENOMEM;
    a->nfields++;
  }
  return 0;
}

static int unquote(struct parser *p, const char *end, struct arg *a)
{
  char q = *p->s++;
  struct nn_buf b;
  nn_buf_init(&b, NN__RULES_MAX_TEMPLATE_OUT);
  int rc = 0;
  for (;;) {
    if (p->s >= end || (q == '"' && *p->s == '\n')) {
      rc = perr(p, "unterminated %s string", q == '"' ? "quoted" : "raw quoted");
      goto out;
    }
    char c = *p->s++;
    if (c == q)
      break;
    if (c == '\n')
      p->line++;
    if (q == '"' && c == '\\') {
      if (p->s >= end) {
        rc = perr(p, "unterminated quoted string");
        goto out;
      }
      char e = *p->s++;
      switch (e) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'a': c = '\a'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'v': c = '\v'; break;
      case '\\': c = '\\'; break;
      case '"': c = '"'; break;
      case '\'': c = '\''; break;
      case 'x': {
        if (end - p->s < 2 || !isxdigit((unsigned char)p->s[0]) ||
            !isxdigit((unsigned char)p->s[1])) {
          rc = perr(p, "invalid syntax");
          goto out;
        }
        char hx[3] = {p->s[0], p->s[1], 0};
        c = (char)strtol(hx, NULL, 16);
        p->s += 2;
        break;
      }
      default: rc = perr(p, "invalid syntax"); goto out;
      }
    }
    if ((rc = nn_buf_appendc(&b, c)) < 0)
      goto out;
  }
  a->kind = A_STR;
  a->str_len = b.len;
  a->str = b.data ? nn_buf_steal(&b, NULL) : strdup("");
  if (!a->str)
    rc = NN_ENOMEM;
out:
  nn_buf_fini(&b);
  return rc;
}

static int parse_pipe(struct parser *p, const char *end, bool in_paren, struct pipe **out);

/* One operand. Returns 1 when there is none at p->s (end of command). */
static int parse_operand(struct parser *p, const char *end, struct arg *a)
{
  memset(a, 0, sizeof(*a));
  if (p->s >= end)
    return 1;
  char c = *p->s;
  if (c == '"' || c == '`')
    return unquote(p, end, a);
  if (c == '\'') {
    mark_unsupported(p, "a character constant");
    const char *q = memchr(p->s + 1, '\'', (size_t)(end - p->s - 1));
    if (!q)
      return perr(p, "unterminated character constant");
    p->s = q + 1;
    a->kind = A_NUM;
    return 0;
  }
  if (c == '(') {
    p->s++;
    a->kind = A_PIPE;
    return parse_pipe(p, end, true, &a->pipe);
  }
  if (c == '$') {
    const char *st = ++p->s;
    while (p->s < end && is_alnum_(*p->s))
      p->s++;
    size_t n = (size_t)(p->s - st);
    if (!var_defined(p, st, n))
      return perr(p, "undefined variable \"$%.*s\"", (int)n, st);
    a->kind = A_VAR;
    if (!(a->var = strndup(st, n)))
      return NN_ENOMEM;
    return parse_fields(p, end, a);
  }
  if (c == '.') {
    if (p->s + 1 < end && is_alnum_(p->s[1]) && !isdigit((unsigned char)p->s[1])) {
      a->kind = A_FIELD;
      return parse_fields(p, end, a);
    }
    if (p->s + 1 < end && isdigit((unsigned char)p->s[1]))
      goto number;
    p->s++;
    a->kind = A_DOT;
    return 0;
  }
  if (isdigit((unsigned char)c) || c == '-' || c == '+') {
  number:;
    const char *st = p->s;
    while (p->s < end &&
           (isalnum((unsigned char)*p->s) || *p->s == '.' || *p->s == '_' ||
            ((*p->s == '-' || *p->s == '+') && (p->s == st || p->s[-1] == 'e' || p->s[-1] == 'E'))))
      p->s++;
    char tmp[64];
    size_t n = (size_t)(p->s - st);
    if (n == 0 || n >= sizeof(tmp))
      return perr(p, "bad number syntax: \"%.*s\"", (int)(n > 40 ? 40 : n), st);
    memcpy(tmp, st, n);
    tmp[n] = 0;
    char *e;
    errno = 0;
    double v = strtod(tmp, &e);
    if (*e || n == 0 || !isfinite(v) ||
        (tmp[0] != '-' && tmp[0] != '+' && !isdigit((unsigned char)tmp[0]) && tmp[0] != '.'))
      return perr(p, "bad number syntax: \"%s\"", tmp);
    a->kind = A_NUM;
    a->num = v;
    a->is_int = !strpbrk(tmp, ".eEpP") || (strncmp(tmp, "0x", 2) == 0 && !strpbrk(tmp, ".pP"));
    return 0;
  }
  if (isalpha((unsigned char)c) || c == '_') {
    const char *st = p->s;
    while (p->s < end && is_alnum_(*p->s))
      p->s++;
    size_t n = (size_t)(p->s - st);
    if ((n == 4 && memcmp(st, "true", 4) == 0) || (n == 5 && memcmp(st, "false", 5) == 0)) {
      a->kind = A_BOOL;
      a->num = n == 4;
      return 0;
    }
    if (n == 3 && memcmp(st, "nil", 3) == 0)
      return perr(p, "nil is not a command");
    p->s = st;
    return 1; /* a function name: handled by the caller */
  }
  return 1;
}

static int parse_cmd(struct parser *p, const char *end, struct cmd *cmd)
{
  int rc;
  memset(cmd, 0, sizeof(*cmd));
  for (;;) {
    skip_space(p, end);
    if (p->s >= end || *p->s == '|' || *p->s == ')')
      break;
    if (isalpha((unsigned char)*p->s) || *p->s == '_') {
      const char *st = p->s;
      const char *e = st;
      while (e < end && is_alnum_(*e))
        e++;
      size_t n = (size_t)(e - st);
      if (!((n == 4 && memcmp(st, "true", 4) == 0) || (n == 5 && memcmp(st, "false", 5) == 0))) {
        if (cmd->nargs > 0 || cmd->fn)
          return perr(p, "function \"%.*s\" not allowed as an argument", (int)n, st);
        if (!in_list(implemented_fns, st, n)) {
          if (!in_list(known_fns, st, n))
            return perr(p, "function \"%.*s\" not defined", (int)n, st);
          char what[80];
          snprintf(what, sizeof(what), "function \"%.*s\"", (int)(n > 40 ? 40 : n), st);
          mark_unsupported(p, what);
        }
        if (!(cmd->fn = strndup(st, n)))
          return NN_ENOMEM;
        p->s = e;
        continue;
      }
    }
    struct arg a;
    rc = parse_operand(p, end, &a);
    if (rc < 0) {
      free_arg(&a);
      return rc;
    }
    if (rc == 1)
      return perr(p, "unexpected \"%c\" in command", *p->s);
    struct arg *na = realloc(cmd->args, (cmd->nargs + 1) * sizeof(*na));
    if (!na) {
      free_arg(&a);
      return NN_ENOMEM;
    }
    cmd->args = na;
    cmd->args[cmd->nargs++] = a;
    if (p->s < end && !is_space(*p->s) && *p->s != '|' && *p->s != ')' && *p->s != '(')
      return perr(p, "unexpected \"%c\" in operand", *p->s);
  }
  if (!cmd->fn && cmd->nargs == 0)
    return perr(p, "missing value for command");
  if (!cmd->fn && cmd->nargs > 1)
    return perr(p, "can't give argument to non-function");
  return 0;
}

static int parse_pipe(struct parser *p, const char *end, bool in_paren, struct pipe **out)
{
  int rc = 0;
  if (++p->nesting > NN__RULES_MAX_TEMPLATE_DEPTH)
    return perr(p, "expression nested too deeply");
  struct pipe *pp = calloc(1, sizeof(*pp));
  if (!pp)
    return NN_ENOMEM;
  for (;;) {
    struct cmd *nc = realloc(pp->cmds, (pp->n + 1) * sizeof(*nc));
    if (!nc) {
      rc = NN_ENOMEM;
      goto out;
    }
    pp->cmds = nc;
    rc = parse_cmd(p, end, &pp->cmds[pp->n]);
    pp->n++;
    if (rc < 0)
      goto out;
    skip_space(p, end);
    if (p->s < end && *p->s == '|') {
      p->s++;
      continue;
    }
    if (p->s < end && *p->s == ')') {
      if (!in_paren) {
        rc = perr(p, "unexpected right paren");
        goto out;
      }
      p->s++;
      break;
    }
    if (in_paren) {
      rc = perr(p, "unclosed left paren");
      goto out;
    }
    break;
  }
  /* A pipeline stage after the first receives a value: it must be a function. */
  for (size_t i = 1; i < pp->n; i++)
    if (!pp->cmds[i].fn) {
      rc = perr(p, "non executable command in pipeline stage %zu", i + 1);
      goto out;
    }
out:
  p->nesting--;
  if (rc < 0) {
    free_pipe(pp);
    return rc;
  }
  *out = pp;
  return 0;
}

/* Finds the end of the action that starts at s (after "{{"): the "}}" outside quotes. */
static const char *action_end(const char *s, const char *end)
{
  char q = 0;
  for (; s + 1 < end || (s < end && q); s++) {
    if (q) {
      if (*s == '\\' && q == '"' && s + 1 < end)
        s++;
      else if (*s == q)
        q = 0;
      continue;
    }
    if (*s == '"' || *s == '`' || *s == '\'')
      q = *s;
    else if (s[0] == '}' && s + 1 < end && s[1] == '}')
      return s;
  }
  return NULL;
}

static int add_node(struct nn__tmpl *t, size_t *cap, struct node *n)
{
  if (t->n == *cap) {
    size_t nc = *cap ? *cap * 2 : 8;
    struct node *nv = realloc(t->nodes, nc * sizeof(*nv));
    if (!nv)
      return NN_ENOMEM;
    t->nodes = nv;
    *cap = nc;
  }
  t->nodes[t->n++] = *n;
  return 0;
}

static bool keyword(const char *s, size_t n, const char *kw)
{
  return strlen(kw) == n && memcmp(s, kw, n) == 0;
}

static int push_block(struct parser *p, enum block_kind kind, size_t node)
{
  if (p->nblocks >= NN__RULES_MAX_TEMPLATE_DEPTH)
    return perr(p, "{{if}}/{{range}} nested too deeply");
  if (!p->blocks && !(p->blocks = calloc(NN__RULES_MAX_TEMPLATE_DEPTH, sizeof(*p->blocks))))
    return NN_ENOMEM;
  struct block *b = &p->blocks[p->nblocks++];
  memset(b, 0, sizeof(*b));
  b->kind = kind;
  b->node = node;
  b->pending = kind == B_IF;
  b->nvars = p->nvars;
  return 0;
}

/* Appends a control node; its index is t->n - 1 afterwards. */
static int emit(struct parser *p, enum node_kind kind, struct pipe *pp)
{
  struct node n = {.kind = kind, .pipe = pp, .line = p->line};
  int rc = add_node(p->t, p->cap, &n);
  if (rc < 0)
    free_pipe(pp);
  return rc;
}

/* Parses the pipeline that ends the action (after "if", "else if", "range ... :="). */
static int control_pipe(struct parser *p, const char *end, const char *kw, struct pipe **out)
{
  skip_space(p, end);
  if (p->s >= end)
    return perr(p, "missing value for %s", kw);
  int rc = parse_pipe(p, end, false, out);
  if (rc < 0)
    return rc;
  skip_space(p, end);
  if (p->s < end) {
    free_pipe(*out);
    *out = NULL;
    return perr(p, "unexpected \"%c\" in %s", *p->s, kw);
  }
  return 0;
}

static int declare_var(struct parser *p, const char *s, size_t n, char **name)
{
  char **nv = realloc(p->vars, (p->nvars + 1) * sizeof(*nv));
  if (!nv)
    return NN_ENOMEM;
  p->vars = nv;
  if (!(p->vars[p->nvars] = strndup(s, n)) || !(*name = strndup(s, n)))
    return NN_ENOMEM;
  p->nvars++;
  return 0;
}

/* "range [$k[, $v] :=] pipeline": an N_RANGE with its variables. */
static int parse_range(struct parser *p, const char *end)
{
  char *vars[2] = {NULL, NULL};
  size_t nv = 0;
  int rc = 0;
  skip_space(p, end);
  const char *save = p->s;
  int save_line = p->line;
  /* Variables first, if the action has a ":=". */
  while (p->s < end && *p->s == '$' && nv < 2) {
    const char *st = ++p->s;
    while (p->s < end && is_alnum_(*p->s))
      p->s++;
    size_t n = (size_t)(p->s - st);
    skip_space(p, end);
    bool comma = p->s < end && *p->s == ',';
    bool decl = end - p->s >= 2 && p->s[0] == ':' && p->s[1] == '=';
    if (!comma && !decl)
      break;
    if (n == 0) {
      rc = perr(p, "range can't declare $");
      goto out;
    }
    if ((rc = declare_var(p, st, n, &vars[nv])) < 0)
      goto out;
    nv++;
    p->s += decl ? 2 : 1;
    skip_space(p, end);
    if (decl)
      goto vars_done;
  }
  if (nv > 0) {
    rc = perr(p, "too many declarations in range");
    goto out;
  }
  p->s = save;
  p->line = save_line;
vars_done:;
  struct pipe *pp = NULL;
  if ((rc = control_pipe(p, end, "range", &pp)) < 0)
    goto out;
  if ((rc = emit(p, N_RANGE, pp)) < 0)
    goto out;
  struct node *n = &p->t->nodes[p->t->n - 1];
  /* With one variable it is the element ($v), as in Go. */
  n->key_var = nv == 2 ? vars[0] : NULL;
  n->val_var = nv == 2 ? vars[1] : vars[0];
  vars[0] = vars[1] = NULL;
  rc = push_block(p, B_RANGE, p->t->n - 1);
  /* the block keeps the variables until {{end}} */
  if (rc == 0)
    p->blocks[p->nblocks - 1].nvars = p->nvars - nv;
out:
  free(vars[0]);
  free(vars[1]);
  return rc;
}

static int parse_else(struct parser *p, const char *end)
{
  if (p->nblocks == 0)
    return perr(p, "unexpected {{else}}");
  struct block *b = &p->blocks[p->nblocks - 1];
  if (b->has_else)
    return perr(p, "expected end; found {{else}}");
  skip_space(p, end);
  bool else_if = end - p->s >= 2 && p->s[0] == 'i' && p->s[1] == 'f' &&
                 (end - p->s == 2 || !is_alnum_(p->s[2]));
  if (b->kind == B_OTHER) {
    p->s = end;
    return 0;
  }
  if (b->kind == B_WITH) {
    if (p->s < end)
      return perr(p, "unexpected \"%c\" in else", *p->s);
    /* The body ends: restore ".", skip the else branch; an empty value lands after it. */
    int rc = emit(p, N_ENDWITH, NULL);
    if (rc == 0)
      rc = emit(p, N_JUMP, NULL);
    if (rc < 0)
      return rc;
    b->jumps[b->njumps++] = p->t->n - 1;
    p->t->nodes[b->node].target = p->t->n;
    b->has_else = true;
    return 0;
  }
  if (b->kind == B_RANGE) {
    if (else_if)
      return perr(p, "{{else if}} inside {{range}} is not supported");
    if (p->s < end)
      return perr(p, "unexpected \"%c\" in else", *p->s);
    /* The body ends here: N_NEXT, then the else branch runs when the map was empty. */
    int rc = emit(p, N_NEXT, NULL);
    if (rc < 0)
      return rc;
    p->t->nodes[p->t->n - 1].target = b->node;
    p->t->nodes[b->node].target = p->t->n;
    b->has_else = true;
    return 0;
  }
  if (b->njumps >= sizeof(b->jumps) / sizeof(b->jumps[0]))
    return perr(p, "too many {{else if}} branches");
  int rc = emit(p, N_JUMP, NULL);
  if (rc < 0)
    return rc;
  b->jumps[b->njumps++] = p->t->n - 1;
  p->t->nodes[b->node].target = p->t->n;
  b->pending = false;
  if (!else_if) {
    if (p->s < end)
      return perr(p, "unexpected \"%c\" in else", *p->s);
    b->has_else = true;
    return 0;
  }
  p->s += 2;
  struct pipe *pp = NULL;
  if ((rc = control_pipe(p, end, "if", &pp)) < 0 || (rc = emit(p, N_IF, pp)) < 0)
    return rc;
  b->node = p->t->n - 1;
  b->pending = true;
  return 0;
}

static int parse_end(struct parser *p, const char *end)
{
  if (p->nblocks == 0)
    return perr(p, "unexpected {{end}}");
  skip_space(p, end);
  if (p->s < end)
    return perr(p, "unexpected \"%c\" in end", *p->s);
  struct block *b = &p->blocks[p->nblocks - 1];
  if (b->kind == B_WITH) {
    if (!b->has_else) {
      int rc = emit(p, N_ENDWITH, NULL);
      if (rc < 0)
        return rc;
      p->t->nodes[b->node].target = p->t->n;
    }
    for (size_t i = 0; i < b->njumps; i++)
      p->t->nodes[b->jumps[i]].target = p->t->n;
  } else if (b->kind == B_IF) {
    if (b->pending)
      p->t->nodes[b->node].target = p->t->n;
    for (size_t i = 0; i < b->njumps; i++)
      p->t->nodes[b->jumps[i]].target = p->t->n;
  } else if (b->kind == B_RANGE) {
    if (!b->has_else) {
      int rc = emit(p, N_NEXT, NULL);
      if (rc < 0)
        return rc;
      p->t->nodes[p->t->n - 1].target = b->node;
      p->t->nodes[b->node].target = p->t->n;
    }
    /* the N_NEXT's exit, past the else branch if any */
    for (size_t i = b->node + 1; i < p->t->n; i++)
      if (p->t->nodes[i].kind == N_NEXT && p->t->nodes[i].target == b->node)
        p->t->nodes[i].target2 = p->t->n;
  }
  while (p->nvars > b->nvars)
    free(p->vars[--p->nvars]);
  p->nblocks--;
  return 0;
}

/* Handles {{if}}, {{else}}, {{range}}, {{end}} and the keywords nines parses but does not
 * run ({{with}}, {{define}}, {{block}}, {{template}}, {{break}}, {{continue}}). Returns 1
 * when the action was a keyword. */
static int parse_keyword(struct parser *p, const char *end)
{
  const char *st = p->s, *e = st;
  while (e < end && is_alnum_(*e))
    e++;
  size_t n = (size_t)(e - st);
  int rc;
  if (keyword(st, n, "if")) {
    p->s = e;
    struct pipe *pp = NULL;
    if ((rc = control_pipe(p, end, "if", &pp)) < 0 || (rc = emit(p, N_IF, pp)) < 0 ||
        (rc = push_block(p, B_IF, p->t->n - 1)) < 0)
      return rc;
    return 1;
  }
  if (keyword(st, n, "with")) {
    p->s = e;
    struct pipe *pp = NULL;
    if ((rc = control_pipe(p, end, "with", &pp)) < 0 || (rc = emit(p, N_WITH, pp)) < 0 ||
        (rc = push_block(p, B_WITH, p->t->n - 1)) < 0)
      return rc;
    return 1;
  }
  if (keyword(st, n, "range")) {
    p->s = e;
    return (rc = parse_range(p, end)) < 0 ? rc : 1;
  }
  if (keyword(st, n, "else")) {
    p->s = e;
    return (rc = parse_else(p, end)) < 0 ? rc : 1;
  }
  if (keyword(st, n, "end")) {
    p->s = e;
    return (rc = parse_end(p, end)) < 0 ? rc : 1;
  }
  static const char *const openers[] = {"define", "block", NULL};
  if (in_list(openers, st, n)) {
    char what[32];
    snprintf(what, sizeof(what), "{{%.*s}}", (int)n, st);
    mark_unsupported(p, what);
    if ((rc = push_block(p, B_OTHER, 0)) < 0)
      return rc;
    p->s = e;
    skip_space(p, end);
    if (p->s >= end && !keyword(st, n, "define"))
      return perr(p, "missing value for %.*s", (int)n, st);
    p->s = end;
    return 1;
  }
  if (keyword(st, n, "break") || keyword(st, n, "continue")) {
    bool in_range = false;
    for (size_t i = 0; i < p->nblocks; i++)
      in_range |= p->blocks[i].kind == B_RANGE;
    if (!in_range)
      return perr(p, "{{%.*s}} outside {{range}}", (int)n, st);
    char what[32];
    snprintf(what, sizeof(what), "{{%.*s}}", (int)n, st);
    mark_unsupported(p, what);
    p->s = end;
    return 1;
  }
  if (keyword(st, n, "template")) {
    mark_unsupported(p, "{{template}}");
    p->s = end;
    return 1;
  }
  return 0;
}

/* Handles "$x := pipeline" and "$x = pipeline" (parsed, not executed). */
static int parse_decl(struct parser *p, const char *end)
{
  const char *st = p->s + 1, *e = st;
  while (e < end && is_alnum_(*e))
    e++;
  const char *q = e;
  while (q < end && is_space(*q))
    q++;
  bool decl = end - q >= 2 && q[0] == ':' && q[1] == '=';
  bool assign = q < end && q[0] == '=' && !(end - q >= 2 && q[1] == '=');
  if (!decl && !assign)
    return 0;
  size_t n = (size_t)(e - st);
  if (assign && !var_defined(p, st, n))
    return perr(p, "undefined variable \"$%.*s\"", (int)n, st);
  if (decl) {
    char **nv = realloc(p->vars, (p->nvars + 1) * sizeof(*nv));
    if (!nv)
      return NN_ENOMEM;
    p->vars = nv;
    if (!(p->vars[p->nvars] = strndup(st, n)))
      return NN_ENOMEM;
    p->nvars++;
  }
  mark_unsupported(p, "a variable declaration");
  p->s = q + (decl ? 2 : 1);
  struct pipe *pp = NULL;
  int rc = parse_pipe(p, end, false, &pp);
  free_pipe(pp);
  return rc < 0 ? rc : 1;
}

int nn__tmpl_parse(const char *text, size_t len, const char *name, struct nn__tmpl **out, char *err,
                   size_t errlen)
{
  int rc = 0;
  size_t cap = 0;
  struct parser p = {
      .s = text, .end = text + len, .name = name, .line = 1, .err = err, .errlen = errlen};
  struct nn__tmpl *t = calloc(1, sizeof(*t));
  *out = NULL;
  if (!t || !(t->name = strdup(name))) {
    rc = NN_ENOMEM;
    goto out;
  }
  p.t = t;
  p.cap = &cap;
  const char *s = text, *end = text + len;
  while (s < end) {
    const char *open = NULL;
    for (const char *q = s; q + 1 < end; q++)
      if (q[0] == '{' && q[1] == '{') {
        open = q;
        break;
      }
    const char *text_end = open ? open : end;
    const char *act = open ? open + 2 : end;
    bool trim_left = open && end - act >= 2 && act[0] == '-' && is_space(act[1]);
    if (trim_left) {
      while (text_end > s && is_space(text_end[-1]))
        text_end--;
      act += 2;
    }
    if (text_end > s) {
      struct node n = {.kind = N_TEXT, .len = (size_t)(text_end - s), .line = p.line};
      /* memcpy, not strndup: the text may hold NUL bytes. */
      if ((n.text = malloc(n.len + 1)) != NULL) {
        memcpy(n.text, s, n.len);
        n.text[n.len] = 0;
      }
      if (!n.text || (rc = add_node(t, &cap, &n)) < 0) {
        free(n.text);
        rc = NN_ENOMEM;
        goto out;
      }
    }
    for (const char *q = s; q < (open ? open : end); q++)
      if (*q == '\n')
        p.line++;
    if (!open)
      break;
    const char *close = action_end(act, end);
    if (!close) {
      rc = perr(&p, "unclosed action");
      goto out;
    }
    const char *body_end = close;
    bool trim_right = body_end - act >= 2 && body_end[-1] == '-' && is_space(body_end[-2]);
    if (trim_right)
      body_end -= 2;
    s = close + 2;
    if (trim_right)
      while (s < end && is_space(*s)) {
        if (*s == '\n')
          p.line++;
        s++;
      }
    p.s = act;
    skip_space(&p, body_end);
    if (end - p.s >= 2 && p.s[0] == '/' && p.s[1] == '*') {
      /* A comment must span the whole action. */
      if (body_end - p.s < 4 || body_end[-1] != '/' || body_end[-2] != '*' ||
          act != (trim_left ? open + 4 : open + 2) || body_end - p.s < 4) {
        rc = perr(&p, "comment ends before closing delimiter");
        goto out;
      }
      for (const char *q = act; q < body_end; q++)
        if (*q == '\n')
          p.line++;
      continue;
    }
    if (p.s >= body_end) {
      rc = perr(&p, "missing value for command");
      goto out;
    }
    rc = parse_keyword(&p, body_end);
    if (rc < 0)
      goto out;
    if (rc == 1)
      continue;
    if (*p.s == '$') {
      rc = parse_decl(&p, body_end);
      if (rc < 0)
        goto out;
      if (rc == 1)
        continue;
    }
    struct node n = {.kind = N_ACTION, .line = p.line};
    if ((rc = parse_pipe(&p, body_end, false, &n.pipe)) < 0)
      goto out;
    skip_space(&p, body_end);
    if (p.s < body_end) {
      free_pipe(n.pipe);
      rc = perr(&p, "unexpected \"%c\" in command", *p.s);
      goto out;
    }
    if ((rc = add_node(t, &cap, &n)) < 0) {
      free_pipe(n.pipe);
      goto out;
    }
  }
  if (p.nblocks > 0) {
    rc = perr(&p, "unexpected EOF");
    goto out;
  }
  t->unsupported = p.unsupported;
  p.unsupported = NULL;
out:
  free(p.unsupported);
  free(p.blocks);
  for (size_t i = 0; i < p.nvars; i++)
    free(p.vars[i]);
  free(p.vars);
  if (rc < 0) {
    if (rc == NN_ENOMEM && !p.failed)
      snprintf(err, errlen, "out of memory parsing template");
    nn__tmpl_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

const char *nn__tmpl_unsupported(const struct nn__tmpl *t)
{
  return t->unsupported;
}

void nn__tmpl_free(struct nn__tmpl *t)
{
  if (!t)
    return;
  for (size_t i = 0; i < t->n; i++) {
    free(t->nodes[i].text);
    free_pipe(t->nodes[i].pipe);
    free(t->nodes[i].key_var);
    free(t->nodes[i].val_var);
  }
  free(t->nodes);
  free(t->name);
  free(t->unsupported);
  free(t);
}

/* ---- execution ---- */

enum val_kind { V_NONE, V_STR, V_NUM, V_BOOL, V_MAP, V_DATA };

struct val {
  enum val_kind kind;
  const char *s; /* V_STR: borrowed or owned (own) */
  size_t len;
  char *own;
  double num;
  bool is_int;
  const struct nn_label *map; /* V_MAP */
  size_t nmap;
};

struct binding {
  const char *name;
  struct val v; /* borrowed */
};

/* One running {{range}}: the node, the map and where the iteration is. */
struct rframe {
  size_t node, idx;
  const struct nn_label *map;
  size_t n, nvars;
  struct val dot;
};

struct exec {
  const struct nn__tmpl *t;
  const struct nn__tmpl_data *d;
  char *err;
  size_t errlen;
  int line;
  struct val dot; /* "." : the data, or the element inside {{range}} */
  struct binding vars[2 * NN__RULES_MAX_TEMPLATE_DEPTH];
  size_t nvars;
  struct rframe frames[NN__RULES_MAX_TEMPLATE_DEPTH];
  size_t nframes;
  struct {
    struct val v; /* owned: the {{with}} value, "." in its body */
    struct val dot;
  } withs[NN__RULES_MAX_TEMPLATE_DEPTH];
  size_t nwith;
  int steps;
};

#define MAX_STEPS 100000

static void val_fini(struct val *v)
{
  free(v->own);
  v->own = NULL;
}

static int xerr(struct exec *x, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int xerr(struct exec *x, const char *at, const char *fmt, ...)
{
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  snprintf(x->err, x->errlen, "template: %s:%d: executing \"%s\" at <%s>: %s", x->t->name, x->line,
           x->t->name, at, msg);
  return NN_EINVAL;
}

static int set_str(struct val *v, char *owned)
{
  if (!owned)
    return NN_ENOMEM;
  v->kind = V_STR;
  v->own = owned;
  v->s = owned;
  v->len = strlen(owned);
  return 0;
}

static const char *type_name(const struct val *v)
{
  switch (v->kind) {
  case V_STR: return "string";
  case V_NUM: return v->is_int ? "int" : "float64";
  case V_BOOL: return "bool";
  case V_MAP: return "map[string]string";
  case V_DATA: return "template.tmplData";
  default: return "<nil>";
  }
}

static int field(struct exec *x, struct val *v, const char *name)
{
  if (v->kind == V_DATA) {
    if (strcmp(name, "Labels") == 0) {
      *v = (struct val){.kind = V_MAP, .map = x->d->labels, .nmap = x->d->nlabels};
    } else if (strcmp(name, "ExternalLabels") == 0) {
      *v = (struct val){.kind = V_MAP, .map = x->d->ext, .nmap = x->d->next};
    } else if (strcmp(name, "Value") == 0) {
      *v = (struct val){.kind = V_NUM, .num = x->d->value};
    } else if (strcmp(name, "ExternalURL") == 0) {
      const char *u = x->d->ext_url ? x->d->ext_url : "";
      *v = (struct val){.kind = V_STR, .s = u, .len = strlen(u)};
    } else {
      return xerr(x, name, "can't evaluate field %s in type template.tmplData", name);
    }
    return 0;
  }
  if (v->kind == V_MAP) {
    const char *s = nn_labels_get(v->map, v->nmap, name);
    /* missingkey=zero: an absent label is the empty string. */
    val_fini(v);
    *v = (struct val){.kind = V_STR, .s = s ? s : "", .len = s ? strlen(s) : 0};
    return 0;
  }
  return xerr(x, name, "can't evaluate field %s in type %s", name, type_name(v));
}

static int eval_pipe(struct exec *x, const struct pipe *pp, struct val *out);

static int eval_arg(struct exec *x, const struct arg *a, struct val *out)
{
  int rc = 0;
  *out = (struct val){0};
  switch (a->kind) {
  case A_DOT: *out = x->dot; return 0;
  case A_STR: *out = (struct val){.kind = V_STR, .s = a->str, .len = a->str_len}; return 0;
  case A_NUM: *out = (struct val){.kind = V_NUM, .num = a->num, .is_int = a->is_int}; return 0;
  case A_BOOL: *out = (struct val){.kind = V_BOOL, .num = a->num}; return 0;
  case A_PIPE: return eval_pipe(x, a->pipe, out);
  case A_VAR:
    for (size_t i = x->nvars; i-- > 0;)
      if (strcmp(x->vars[i].name, a->var) == 0) {
        *out = x->vars[i].v;
        goto fields;
      }
    if (a->var[0] == 0)
      out->kind = V_DATA;
    else if (strcmp(a->var, "labels") == 0)
      *out = (struct val){.kind = V_MAP, .map = x->d->labels, .nmap = x->d->nlabels};
    else if (strcmp(a->var, "externalLabels") == 0)
      *out = (struct val){.kind = V_MAP, .map = x->d->ext, .nmap = x->d->next};
    else if (strcmp(a->var, "value") == 0)
      *out = (struct val){.kind = V_NUM, .num = x->d->value};
    else if (strcmp(a->var, "externalURL") == 0) {
      const char *u = x->d->ext_url ? x->d->ext_url : "";
      *out = (struct val){.kind = V_STR, .s = u, .len = strlen(u)};
    } else
      return xerr(x, a->var, "variable $%s is not supported", a->var);
    break;
  case A_FIELD: *out = x->dot; break;
  }
fields:
  for (size_t i = 0; i < a->nfields && rc == 0; i++)
    rc = field(x, out, a->fields[i]);
  return rc;
}

/* Appends v as Go's fmt prints a value with %v. */
static int print_val(struct nn_buf *b, const struct val *v)
{
  char tmp[64];
  switch (v->kind) {
  case V_STR: return nn_buf_append(b, v->s, v->len);
  case V_NUM:
    if (v->is_int) {
      snprintf(tmp, sizeof(tmp), "%.0f", v->num);
      return nn_buf_appends(b, tmp);
    }
    nn__fmt_go_v(v->num, tmp, sizeof(tmp));
    return nn_buf_appends(b, tmp);
  case V_BOOL: return nn_buf_appends(b, v->num != 0 ? "true" : "false");
  case V_MAP: {
    int rc = nn_buf_appends(b, "map[");
    for (size_t i = 0; i < v->nmap && rc == 0; i++)
      rc = nn_buf_printf(b, "%s%s:%s", i ? " " : "", v->map[i].name, v->map[i].value);
    return rc < 0 ? rc : nn_buf_appendc(b, ']');
  }
  case V_DATA: return nn_buf_appends(b, "{...}");
  default: return nn_buf_appends(b, "<no value>");
  }
}

/* Prometheus's convertToFloat. */
static int to_float(struct exec *x, const char *fn, const struct val *v, double *out)
{
  if (v->kind == V_NUM) {
    *out = v->num;
    return 0;
  }
  if (v->kind == V_STR) {
    char tmp[128];
    size_t n = v->len < sizeof(tmp) - 1 ? v->len : sizeof(tmp) - 1;
    memcpy(tmp, v->s, n);
    tmp[n] = 0;
    char *e;
    errno = 0;
    double d = strtod(tmp, &e);
    if (n == 0 || *e || n != v->len || isspace((unsigned char)tmp[0]))
      return xerr(x, fn, "error calling %s: strconv.ParseFloat: parsing \"%s\": invalid syntax", fn,
                  tmp);
    *out = d;
    return 0;
  }
  return xerr(x, fn, "error calling %s: can't convert %s to float", fn, type_name(v));
}

static int humanize_scaled(double v, const char *const *prefixes, double base, bool up,
                           const char *suffix, struct val *out)
{
  const char *prefix = "";
  for (const char *const *p = prefixes; *p; p++) {
    if (up ? fabs(v) < base : fabs(v) >= 1)
      break;
    prefix = *p;
    v = up ? v / base : v * base;
  }
  char num[64], tmp[96];
  nn__fmt_go_prec(v, 4, 'g', num, sizeof(num));
  snprintf(tmp, sizeof(tmp), "%s%s%s", num, prefix, suffix);
  return set_str(out, strdup(tmp));
}

static const char *const big_si[] = {"k", "M", "G", "T", "P", "E", "Z", "Y", NULL};
static const char *const small_si[] = {"m", "u", "n", "p", "f", "a", "z", "y", NULL};
static const char *const iec[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi", NULL};

static int fmt4g(double v, const char *suffix, struct val *out)
{
  char num[64], tmp[96];
  nn__fmt_go_prec(v, 4, 'g', num, sizeof(num));
  snprintf(tmp, sizeof(tmp), "%s%s", num, suffix);
  return set_str(out, strdup(tmp));
}

static int humanize_duration(double v, struct val *out)
{
  if (isnan(v) || isinf(v))
    return fmt4g(v, "", out);
  if (v == 0)
    return fmt4g(v, "s", out);
  if (fabs(v) >= 1) {
    const char *sign = "";
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    /* Go converts with int64(v); values past its range are clamped here instead of being
     * undefined behaviour. */
    int64_t d = v >= 9.2e18 ? INT64_MAX : (int64_t)v;
    int64_t secs = d % 60, mins = (d / 60) % 60, hours = (d / 3600) % 24, days = d / 86400;
    char tmp[160];
    if (days)
      snprintf(tmp, sizeof(tmp), "%s%lldd %lldh %lldm %llds", sign, (long long)days,
               (long long)hours, (long long)mins, (long long)secs);
    else if (hours)
      snprintf(tmp, sizeof(tmp), "%s%lldh %lldm %llds", sign, (long long)hours, (long long)mins,
               (long long)secs);
    else if (mins)
      snprintf(tmp, sizeof(tmp), "%s%lldm %llds", sign, (long long)mins, (long long)secs);
    else {
      char num[64];
      nn__fmt_go_prec(v, 4, 'g', num, sizeof(num));
      snprintf(tmp, sizeof(tmp), "%s%ss", sign, num);
    }
    return set_str(out, strdup(tmp));
  }
  return humanize_scaled(v, small_si, 1000, false, "s", out);
}

static int humanize_timestamp(double v, struct val *out)
{
  if (isnan(v) || isinf(v))
    return fmt4g(v, "", out);
  /* Go's time range for floatToTime: roughly +-292 years around 1970 in nanoseconds. */
  if (v > 9.2e9 || v < -9.2e9)
    return ERANGE_TS;
  /* model.TimeFromUnixNano(int64(v * 1e9)): millisecond precision. */
  int64_t ms = (int64_t)(v * 1e9) / 1000000;
  int64_t sec = ms / 1000, frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    sec--;
  }
  time_t t = (time_t)sec;
  struct tm tm;
  gmtime_r(&t, &tm);
  char base[64], fr[16] = "", tmp[112];
  strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &tm);
  if (frac) {
    snprintf(fr, sizeof(fr), ".%03lld", (long long)frac);
    size_t n = strlen(fr);
    while (fr[n - 1] == '0')
      fr[--n] = 0;
  }
  snprintf(tmp, sizeof(tmp), "%s%s +0000 UTC", base, fr);
  return set_str(out, strdup(tmp));
}

static int title_case(const struct val *v, struct val *out)
{
  char *s = strndup(v->s, v->len);
  if (!s)
    return NN_ENOMEM;
  /* strings.Title: a letter is upper-cased when the rune before it is a separator; ASCII
   * letters, digits and '_' are not separators, other ASCII is, non-ASCII is not. */
  unsigned char prev = ' ';
  for (size_t i = 0; s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    bool sep = prev < 0x80 && !(isalnum(prev) || prev == '_');
    if (sep && c < 0x80 && islower(c))
      s[i] = (char)toupper(c);
    prev = c;
  }
  return set_str(out, s);
}

/* The C format strings below are assembled from a spec this function has checked
 * character by character (flags, width, precision, one verb), never from raw input. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
/* fmt.Sprintf with Go's verbs for the argument types templates produce. */
static int go_printf(const struct val *args, size_t nargs, struct nn_buf *b)
{
  if (nargs == 0 || args[0].kind != V_STR)
    return NN_EINVAL;
  const char *f = args[0].s, *fe = f + args[0].len;
  size_t ai = 1;
  int rc = 0;
  while (f < fe && rc == 0) {
    if (*f != '%') {
      rc = nn_buf_appendc(b, *f++);
      continue;
    }
    const char *spec = f++;
    while (f < fe && strchr("+-# 0", *f))
      f++;
    while (f < fe && isdigit((unsigned char)*f))
      f++;
    int prec = -1;
    if (f < fe && *f == '.') {
      f++;
      prec = 0;
      while (f < fe && isdigit((unsigned char)*f)) {
        if (prec < 1000)
          prec = prec * 10 + (*f - '0');
        f++;
      }
    }
    if (f >= fe) {
      rc = nn_buf_appends(b, "%!(NOVERB)");
      break;
    }
    char verb = *f++;
    if (f - spec > 12) { /* keeps widths and precisions C's printf handles sanely */
      rc = nn_buf_appends(b, "%!(BADWIDTH)");
      continue;
    }
    if (verb == '%') {
      rc = nn_buf_appendc(b, '%');
      continue;
    }
    if (ai >= nargs) {
      rc = nn_buf_printf(b, "%%!%c(MISSING)", verb);
      continue;
    }
    const struct val *a = &args[ai++];
    /* Flags and width go straight to C's printf, whose meaning for them matches Go's. */
    char cf[32];
    size_t fl = (size_t)(f - spec - 2);
    if (fl > 20)
      fl = 20;
    char tmp[512];
    if (a->kind == V_NUM && verb && strchr("eEfFgG", verb)) {
      if (!isfinite(a->num)) {
        nn__fmt_go_prec(a->num, prec, verb, tmp, sizeof(tmp));
        rc = nn_buf_appends(b, tmp);
        continue;
      }
      if (prec < 0 && (verb == 'g' || verb == 'G')) {
        nn__fmt_go_v(a->num, tmp, sizeof(tmp));
        rc = nn_buf_appends(b, tmp);
        continue;
      }
      snprintf(cf, sizeof(cf), "%%%.*s%c", (int)fl, spec + 1, verb);
      rc = nn_buf_printf(b, cf, a->num);
    } else if (a->kind == V_NUM && a->is_int && a->num >= -9.2e18 && a->num <= 9.2e18 && verb &&
               strchr("dxXo", verb)) {
      /* An integer literal past int64 (Go would refuse it) falls through to the %!d form. */
      snprintf(cf, sizeof(cf), "%%%.*sll%c", (int)fl, spec + 1, verb);
      rc = nn_buf_printf(b, cf, (long long)a->num);
    } else if ((a->kind == V_STR && (verb == 's' || verb == 'v')) ||
               (a->kind != V_STR && verb == 'v')) {
      struct nn_buf sb;
      nn_buf_init(&sb, NN__RULES_MAX_TEMPLATE_OUT);
      rc = print_val(&sb, a);
      if (rc == 0) {
        snprintf(cf, sizeof(cf), "%%%.*ss", (int)fl, spec + 1);
        if (prec >= 0 && a->kind == V_STR) /* %.Ns truncates */
          rc = nn_buf_printf(b, cf, sb.data ? sb.data : "");
        else {
          char cf2[32];
          size_t k = 0;
          for (size_t i = 0; i < fl && spec[1 + i] != '.'; i++)
            cf2[k++] = spec[1 + i];
          cf2[k] = 0;
          char cf3[40];
          snprintf(cf3, sizeof(cf3), "%%%ss", cf2);
          rc = nn_buf_printf(b, cf3, sb.data ? sb.data : "");
        }
      }
      nn_buf_fini(&sb);
    } else if (a->kind == V_STR && verb == 'q') {
      rc = nn_buf_appendc(b, '"');
      for (size_t i = 0; i < a->len && rc == 0; i++) {
        char c = a->s[i];
        if (c == '"' || c == '\\')
          rc = nn_buf_printf(b, "\\%c", c);
        else if (c == '\n')
          rc = nn_buf_appends(b, "\\n");
        else
          rc = nn_buf_appendc(b, c);
      }
      if (rc == 0)
        rc = nn_buf_appendc(b, '"');
    } else {
      struct nn_buf sb;
      nn_buf_init(&sb, 256);
      print_val(&sb, a);
      rc = nn_buf_printf(b, "%%!%c(%s=%s)", verb, type_name(a), sb.data ? sb.data : "");
      nn_buf_fini(&sb);
    }
  }
  if (rc == 0 && ai < nargs) {
    rc = nn_buf_appends(b, "%!(EXTRA ");
    for (size_t i = ai; i < nargs && rc == 0; i++) {
      rc = nn_buf_printf(b, "%s%s=", i > ai ? ", " : "", type_name(&args[i]));
      if (rc == 0)
        rc = print_val(b, &args[i]);
    }
    if (rc == 0)
      rc = nn_buf_appendc(b, ')');
  }
  return rc;
}

#pragma GCC diagnostic pop

/* Go's truth: false, 0, "" and empty maps are false. */
static bool truth(const struct val *v)
{
  switch (v->kind) {
  case V_STR: return v->len > 0;
  case V_NUM:
  case V_BOOL: return v->num != 0;
  case V_MAP: return v->nmap > 0;
  case V_DATA: return true;
  default: return false;
  }
}

enum basic_kind { K_INVALID, K_BOOL, K_INT, K_FLOAT, K_STRING };

static enum basic_kind basic_kind(const struct val *v)
{
  switch (v->kind) {
  case V_BOOL: return K_BOOL;
  case V_NUM: return v->is_int ? K_INT : K_FLOAT;
  case V_STR: return K_STRING;
  default: return K_INVALID;
  }
}

static int str_cmp(const struct val *a, const struct val *b)
{
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->s, b->s, n);
  return c ? c : a->len < b->len ? -1 : a->len > b->len;
}

/* text/template's eq for two values: Go refuses to compare an int with a float64 (so
 * `eq $value 1` is an error and `eq $value 1.0` is not). */
static int eq2(struct exec *x, const char *fn, const struct val *a, const struct val *b, bool *out)
{
  enum basic_kind k1 = basic_kind(a), k2 = basic_kind(b);
  if (k1 != k2 || k1 == K_INVALID)
    return xerr(x, fn, "error calling %s: %s", fn,
                k1 == K_INVALID || k2 == K_INVALID ? "invalid type for comparison"
                                                   : "incompatible types for comparison");
  *out = k1 == K_STRING ? str_cmp(a, b) == 0 : a->num == b->num;
  return 0;
}

static int lt2(struct exec *x, const char *fn, const struct val *a, const struct val *b, bool *out)
{
  enum basic_kind k1 = basic_kind(a), k2 = basic_kind(b);
  if (k1 == K_INVALID || k2 == K_INVALID || k1 == K_BOOL || k2 == K_BOOL)
    return xerr(x, fn, "error calling %s: invalid type for comparison", fn);
  if (k1 != k2)
    return xerr(x, fn, "error calling %s: incompatible types for comparison", fn);
  *out = k1 == K_STRING ? str_cmp(a, b) < 0 : a->num < b->num;
  return 0;
}

/* eq ne lt le gt ge and or not; returns 1 when fn is none of them. */
static int call_logic(struct exec *x, const char *fn, struct val *args, size_t nargs,
                      struct val *out)
{
  bool r = false, e = false;
  int rc = 0;
  if (strcmp(fn, "and") == 0 || strcmp(fn, "or") == 0) {
    if (nargs == 0)
      return xerr(x, fn, "wrong number of args for %s: want at least 1 got 0", fn);
    size_t i = 0;
    bool want = fn[0] == 'o';
    while (i + 1 < nargs && truth(&args[i]) != want)
      i++;
    *out = args[i];
    args[i].own = NULL; /* moves to out */
    return 0;
  }
  if (strcmp(fn, "not") == 0) {
    if (nargs != 1)
      return xerr(x, fn, "wrong number of args for not: want 1 got %zu", nargs);
    *out = (struct val){.kind = V_BOOL, .num = !truth(&args[0])};
    return 0;
  }
  if (strcmp(fn, "eq") == 0) {
    if (nargs < 2)
      return xerr(x, fn, "error calling eq: missing argument for comparison");
    for (size_t i = 1; i < nargs && !r && rc == 0; i++)
      rc = eq2(x, fn, &args[0], &args[i], &r);
  } else if (strcmp(fn, "ne") == 0 || strcmp(fn, "lt") == 0 || strcmp(fn, "le") == 0 ||
             strcmp(fn, "gt") == 0 || strcmp(fn, "ge") == 0) {
    if (nargs != 2)
      return xerr(x, fn, "wrong number of args for %s: want 2 got %zu", fn, nargs);
    if (fn[0] == 'n') {
      rc = eq2(x, fn, &args[0], &args[1], &e);
      r = !e;
    } else {
      /* le = lt || eq, gt = !le, ge = !lt, as Go defines them */
      rc = lt2(x, fn, &args[0], &args[1], &r);
      if (rc == 0 && (fn[0] == 'g' ? fn[1] == 't' : fn[1] == 'e') && !r)
        rc = eq2(x, fn, &args[0], &args[1], &e);
      if (fn[1] == 'e')
        r = fn[0] == 'l' ? r || e : !r;
      else if (fn[0] == 'g')
        r = !(r || e);
    }
  } else {
    return 1;
  }
  if (rc < 0)
    return rc;
  *out = (struct val){.kind = V_BOOL, .num = r};
  return 0;
}

static int call_fn(struct exec *x, const char *fn, struct val *args, size_t nargs, struct val *out)
{
  int rc;
  double v = 0;
  *out = (struct val){0};
  if ((rc = call_logic(x, fn, args, nargs, out)) <= 0)
    return rc;
  if (strcmp(fn, "printf") == 0 || strcmp(fn, "print") == 0) {
    struct nn_buf b;
    nn_buf_init(&b, NN__RULES_MAX_TEMPLATE_OUT);
    if (fn[5] == 'f') {
      if (nargs == 0 || args[0].kind != V_STR) {
        nn_buf_fini(&b);
        return xerr(x, fn, "wrong number or type of args for printf");
      }
      rc = go_printf(args, nargs, &b);
    } else {
      rc = 0;
      /* fmt.Sprint: spaces between operands when neither is a string. */
      for (size_t i = 0; i < nargs && rc == 0; i++) {
        if (i > 0 && args[i].kind != V_STR && args[i - 1].kind != V_STR)
          rc = nn_buf_appendc(&b, ' ');
        if (rc == 0)
          rc = print_val(&b, &args[i]);
      }
    }
    if (rc == 0)
      rc = set_str(out, b.data ? nn_buf_steal(&b, NULL) : strdup(""));
    nn_buf_fini(&b);
    if (rc == NN_ETOOBIG)
      return xerr(x, fn, "output too large");
    return rc;
  }
  if (strcmp(fn, "externalURL") == 0) {
    if (nargs != 0)
      return xerr(x, fn, "wrong number of args for externalURL: want 0 got %zu", nargs);
    const char *u = x->d->ext_url ? x->d->ext_url : "";
    *out = (struct val){.kind = V_STR, .s = u, .len = strlen(u)};
    return 0;
  }
  if (nargs != 1)
    return xerr(x, fn, "wrong number of args for %s: want 1 got %zu", fn, nargs);
  struct val *a = &args[0];
  if (strcmp(fn, "toUpper") == 0 || strcmp(fn, "toLower") == 0 || strcmp(fn, "title") == 0 ||
      strcmp(fn, "safeHtml") == 0 || strcmp(fn, "stripPort") == 0) {
    if (a->kind != V_STR)
      return xerr(x, fn, "wrong type for value; expected string; got %s", type_name(a));
    if (fn[0] == 't' && fn[1] == 'i')
      return title_case(a, out);
    char *s = strndup(a->s, a->len);
    if (!s)
      return NN_ENOMEM;
    if (strcmp(fn, "toUpper") == 0 || strcmp(fn, "toLower") == 0) {
      for (char *p = s; *p; p++)
        *p = (char)(fn[2] == 'U' ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
    } else if (strcmp(fn, "stripPort") == 0) {
      /* net.SplitHostPort; on failure the input is returned unchanged. */
      char *colon = strrchr(s, ':');
      if (s[0] == '[') {
        char *rb = strchr(s, ']');
        if (rb && rb[1] == ':' && rb + 1 == colon) {
          memmove(s, s + 1, (size_t)(rb - s - 1));
          s[rb - s - 1] = 0;
        }
      } else if (colon && strchr(s, ':') == colon) {
        *colon = 0;
      }
    }
    return set_str(out, s);
  }
  if ((rc = to_float(x, fn, a, &v)) < 0)
    return rc;
  if (strcmp(fn, "humanize") == 0) {
    if (v == 0 || isnan(v) || isinf(v))
      return fmt4g(v, "", out);
    if (fabs(v) >= 1)
      return humanize_scaled(v, big_si, 1000, true, "", out);
    return humanize_scaled(v, small_si, 1000, false, "", out);
  }
  if (strcmp(fn, "humanize1024") == 0) {
    if (fabs(v) <= 1 || isnan(v) || isinf(v))
      return fmt4g(v, "", out);
    return humanize_scaled(v, iec, 1024, true, "", out);
  }
  if (strcmp(fn, "humanizePercentage") == 0)
    return fmt4g(v * 100, "%", out);
  if (strcmp(fn, "humanizeDuration") == 0)
    return humanize_duration(v, out);
  if (strcmp(fn, "humanizeTimestamp") == 0) {
    rc = humanize_timestamp(v, out);
    if (rc == ERANGE_TS)
      return xerr(x, fn, "error calling humanizeTimestamp: timestamp out of range");
    return rc;
  }
  return xerr(x, fn, "function %s is not supported", fn);
}

static int eval_pipe(struct exec *x, const struct pipe *pp, struct val *out)
{
  int rc = 0;
  struct val prev = {0};
  bool have_prev = false;
  for (size_t i = 0; i < pp->n; i++) {
    const struct cmd *c = &pp->cmds[i];
    if (!c->fn) {
      rc = eval_arg(x, &c->args[0], &prev);
      have_prev = true;
      if (rc < 0)
        goto out;
      continue;
    }
    size_t n = c->nargs + (have_prev ? 1 : 0);
    struct val args[16];
    if (n > 16) {
      rc = xerr(x, c->fn, "too many arguments");
      goto out;
    }
    size_t k = 0;
    for (; k < c->nargs; k++)
      if ((rc = eval_arg(x, &c->args[k], &args[k])) < 0)
        break;
    if (rc == 0 && have_prev)
      args[k++] = prev;
    if (rc == 0) {
      struct val res;
      rc = call_fn(x, c->fn, args, n, &res);
      if (have_prev)
        prev.own = NULL; /* now owned by args[] */
      for (size_t j = 0; j < k; j++)
        val_fini(&args[j]);
      prev = res;
      have_prev = true;
      if (rc < 0)
        goto out;
    } else {
      for (size_t j = 0; j < k; j++)
        val_fini(&args[j]);
      goto out;
    }
  }
out:
  if (rc < 0) {
    val_fini(&prev);
    return rc;
  }
  *out = prev;
  return 0;
}

static int expand(struct exec *xp, const struct nn__tmpl *t, const struct nn__tmpl_data *d,
                  struct nn_buf *out, char *err, size_t errlen);

int nn__tmpl_expand(const struct nn__tmpl *t, const struct nn__tmpl_data *d, struct nn_buf *out,
                    char *err, size_t errlen)
{
  struct exec *xp = calloc(1, sizeof(*xp));
  if (!xp)
    return NN_ENOMEM;
  int rc = expand(xp, t, d, out, err, errlen);
  while (xp->nwith > 0) /* an error inside a {{with}} body */
    val_fini(&xp->withs[--xp->nwith].v);
  free(xp);
  return rc;
}

/* Binds the range variables and "." to element idx of frame f. */
static void range_bind(struct exec *x, const struct node *n, struct rframe *f)
{
  const struct nn_label *l = &f->map[f->idx];
  struct val key = {.kind = V_STR, .s = l->name, .len = strlen(l->name)};
  struct val val = {.kind = V_STR, .s = l->value, .len = strlen(l->value)};
  x->nvars = f->nvars;
  if (n->key_var)
    x->vars[x->nvars++] = (struct binding){n->key_var, key};
  if (n->val_var)
    x->vars[x->nvars++] = (struct binding){n->val_var, val};
  x->dot = val;
}

/* {{range}} at node i: returns the next node to run. */
static int range_start(struct exec *x, const struct node *n, size_t i, size_t *next)
{
  struct val v;
  int rc = eval_pipe(x, n->pipe, &v);
  if (rc < 0)
    return rc;
  if (v.kind != V_MAP) {
    struct nn_buf b;
    nn_buf_init(&b, 256);
    print_val(&b, &v);
    val_fini(&v);
    rc = xerr(x, "range", "range can't iterate over %s", b.data ? b.data : "");
    nn_buf_fini(&b);
    return rc;
  }
  if (v.nmap == 0) {
    *next = n->target;
    return 0;
  }
  if (x->nframes >= NN__RULES_MAX_TEMPLATE_DEPTH ||
      x->nvars + 2 > sizeof(x->vars) / sizeof(x->vars[0]))
    return xerr(x, "range", "range nested too deeply");
  struct rframe *f = &x->frames[x->nframes++];
  *f = (struct rframe){.node = i, .map = v.map, .n = v.nmap, .nvars = x->nvars, .dot = x->dot};
  range_bind(x, n, f);
  *next = i + 1;
  return 0;
}

static int expand(struct exec *xp, const struct nn__tmpl *t, const struct nn__tmpl_data *d,
                  struct nn_buf *out, char *err, size_t errlen)
{
  *xp = (struct exec){.t = t, .d = d, .err = err, .errlen = errlen, .line = 1};
  struct exec *x = xp;
  x->dot.kind = V_DATA;
  if (t->unsupported) {
    snprintf(err, errlen, "template: %s: %s", t->name, t->unsupported);
    return NN_EINVAL;
  }
  for (size_t i = 0; i < t->n;) {
    const struct node *n = &t->nodes[i];
    int rc = 0;
    size_t next = i + 1;
    x->line = n->line;
    if (n->kind == N_TEXT) {
      rc = nn_buf_append(out, n->text, n->len);
    } else if (n->kind == N_ACTION || n->kind == N_IF) {
      struct val v;
      if ((rc = eval_pipe(x, n->pipe, &v)) < 0)
        return rc;
      if (n->kind == N_ACTION)
        rc = print_val(out, &v);
      else if (!truth(&v))
        next = n->target;
      val_fini(&v);
    } else if (n->kind == N_JUMP) {
      next = n->target;
    } else if (n->kind == N_WITH) {
      struct val v;
      if ((rc = eval_pipe(x, n->pipe, &v)) < 0)
        return rc;
      if (!truth(&v)) {
        val_fini(&v);
        next = n->target;
      } else if (x->nwith >= NN__RULES_MAX_TEMPLATE_DEPTH) {
        val_fini(&v);
        return xerr(x, "with", "{{with}} nested too deeply");
      } else {
        x->withs[x->nwith].v = v;
        x->withs[x->nwith].dot = x->dot;
        x->dot = v;
        x->dot.own = NULL; /* borrowed from withs[] */
        x->nwith++;
      }
    } else if (n->kind == N_ENDWITH && x->nwith > 0) {
      x->nwith--;
      x->dot = x->withs[x->nwith].dot;
      val_fini(&x->withs[x->nwith].v);
    } else if (n->kind == N_RANGE) {
      if ((rc = range_start(x, n, i, &next)) < 0)
        return rc;
    } else if (n->kind == N_NEXT && x->nframes > 0) {
      struct rframe *f = &x->frames[x->nframes - 1];
      if (++f->idx < f->n) {
        range_bind(x, &t->nodes[f->node], f);
        next = f->node + 1;
      } else {
        x->nvars = f->nvars;
        x->dot = f->dot;
        x->nframes--;
        next = n->target2;
      }
    }
    if (rc == NN_ETOOBIG) {
      snprintf(err, errlen, "template: %s: output larger than %d bytes", t->name,
               NN__RULES_MAX_TEMPLATE_OUT);
      return NN_EINVAL;
    }
    if (rc < 0)
      return rc;
    /* Nested ranges multiply: the step budget bounds the work of any template. */
    if (++x->steps > MAX_STEPS) {
      snprintf(err, errlen, "template: %s: more than %d execution steps", t->name, MAX_STEPS);
      return NN_EINVAL;
    }
    i = next;
  }
  return 0;
}

char *nn__tmpl_expand_text(const struct nn__tmpl *t, const char *name,
                           const struct nn__tmpl_data *d)
{
  struct nn_buf b;
  char err[512];
  nn_buf_init(&b, NN__RULES_MAX_TEMPLATE_OUT);
  int rc = nn__tmpl_expand(t, d, &b, err, sizeof(err));
  if (rc == NN_ENOMEM) {
    nn_buf_fini(&b);
    return NULL;
  }
  if (rc < 0) {
    nn_buf_reset(&b);
    if (nn_buf_printf(&b, "<error expanding template: error executing template %s: %s>", name,
                      err) < 0) {
      nn_buf_fini(&b);
      return NULL;
    }
  }
  return b.data ? nn_buf_steal(&b, NULL) : strdup("");
}
