/* SPDX-License-Identifier: Apache-2.0 */
/* The option-table binder. One recursive walk serves files, strings, sub-trees and even the
 * defaults (composite defaults are parsed as YAML), so every path reports errors the same
 * way. Every setter releases the previous value first, which is what lets defaults be
 * overridden and a half-bound struct be freed. */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/units.h"
#include "common/yaml.h"

#define SECRET_MAX_BYTES ((size_t)1 << 20)
#define SUGGEST_MAX_LEN  64

struct binder {
  struct nn_cfg_error *err;
  char path[256];
  size_t plen;
};

static void path_push(struct binder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void path_push(struct binder *b, const char *fmt, ...)
{
  if (b->plen >= sizeof(b->path) - 1)
    return;
  va_list ap;
  va_start(ap, fmt);
  int r = vsnprintf(b->path + b->plen, sizeof(b->path) - b->plen, fmt, ap);
  va_end(ap);
  if (r > 0)
    b->plen += (size_t)r < sizeof(b->path) - b->plen ? (size_t)r : sizeof(b->path) - 1 - b->plen;
}

static void path_push_name(struct binder *b, const char *name, size_t n)
{
  int len = (int)(n > 200 ? 200 : n);
  if (b->plen == 0)
    path_push(b, "%.*s", len, name);
  else
    path_push(b, ".%.*s", len, name);
}

static void path_pop(struct binder *b, size_t to)
{
  b->plen = to;
  b->path[to] = '\0';
}

static int verr(struct nn_cfg_error *err, const struct nn_yaml_node *node, const char *fmt,
                va_list ap) __attribute__((format(printf, 3, 0)));

static int verr(struct nn_cfg_error *err, const struct nn_yaml_node *node, const char *fmt,
                va_list ap)
{
  if (node) {
    snprintf(err->file, sizeof(err->file), "%s", node->file ? node->file : "");
    err->line = node->line;
    err->col = node->col;
  }
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  return NN_ECONFIG;
}

int nn_cfg_error_set(struct nn_cfg_error *err, const struct nn_yaml_node *node, const char *fmt,
                     ...)
{
  if (!err)
    return NN_ECONFIG;
  va_list ap;
  va_start(ap, fmt);
  verr(err, node, fmt, ap);
  va_end(ap);
  return NN_ECONFIG;
}

static int fail(struct binder *b, const struct nn_yaml_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct binder *b, const struct nn_yaml_node *node, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  verr(b->err, node, fmt, ap);
  va_end(ap);
  snprintf(b->err->field, sizeof(b->err->field), "%s", b->path);
  return NN_ECONFIG;
}

int nn_cfg_error_format(const struct nn_cfg_error *err, char *buf, size_t len)
{
  struct nn_buf b;
  nn_buf_init(&b, 4096);
  int rc = 0;
  if (err->file[0])
    rc |= nn_buf_printf(&b, "%s:", err->file);
  if (err->line > 0)
    rc |= nn_buf_printf(&b, "%d:%d:", err->line, err->col);
  if (b.len)
    rc |= nn_buf_appendc(&b, ' ');
  if (err->field[0])
    rc |= nn_buf_printf(&b, "field \"%s\": ", err->field);
  rc |= nn_buf_appends(&b, err->msg);
  int n = rc < 0 ? snprintf(buf, len, "%s", err->msg) : snprintf(buf, len, "%s", b.data);
  nn_buf_fini(&b);
  return n;
}

/* --- scalar conversion ------------------------------------------------------------- */

static const char *type_name(enum nn_cfg_type t)
{
  switch (t) {
  case NN_CFG_STR: return "string";
  case NN_CFG_BOOL: return "boolean";
  case NN_CFG_INT: return "integer";
  case NN_CFG_DOUBLE: return "number";
  case NN_CFG_DURATION: return "duration";
  case NN_CFG_SIZE: return "size";
  case NN_CFG_STRLIST: return "list of strings";
  case NN_CFG_STRMAP: return "map of strings";
  case NN_CFG_SECTION: return "section";
  case NN_CFG_LIST: return "list of sections";
  case NN_CFG_CUSTOM: return "custom value";
  }
  return "value";
}

/* The type with its article, for "expected ..." messages. */
static const char *a_type(enum nn_cfg_type t)
{
  switch (t) {
  case NN_CFG_INT: return "an integer";
  case NN_CFG_STR: return "a string";
  case NN_CFG_BOOL: return "a boolean";
  case NN_CFG_DOUBLE: return "a number";
  case NN_CFG_DURATION: return "a duration";
  case NN_CFG_SIZE: return "a size";
  default: return "a value";
  }
}

static bool is_scalar_type(enum nn_cfg_type t)
{
  return t <= NN_CFG_SIZE;
}

static bool parse_bool(const char *s, size_t n, bool *v)
{
  static const char *const t[] = {"true", "True", "TRUE"}, *const f[] = {"false", "False", "FALSE"};
  for (size_t i = 0; i < 3; i++) {
    if (strlen(t[i]) == n && memcmp(t[i], s, n) == 0)
      return *v = true, true;
    if (strlen(f[i]) == n && memcmp(f[i], s, n) == 0)
      return *v = false, true;
  }
  return false;
}

/* YAML 1.2 core schema integers: [-+]?[0-9]+ and 0x[0-9a-fA-F]+. */
static int parse_int(const char *s, size_t n, int64_t *out)
{
  size_t i = 0;
  bool neg = false;
  if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    uint64_t v = 0;
    for (i = 2; i < n; i++) {
      char c = s[i];
      unsigned d;
      if (c >= '0' && c <= '9')
        d = (unsigned)(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = (unsigned)(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = (unsigned)(c - 'A' + 10);
      else
        return NN_EINVAL;
      if (v > ((uint64_t)INT64_MAX - d) / 16)
        return NN_ETOOBIG;
      v = v * 16 + d;
    }
    *out = (int64_t)v;
    return 0;
  }
  if (i < n && (s[i] == '-' || s[i] == '+'))
    neg = s[i++] == '-';
  if (i == n)
    return NN_EINVAL;
  uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return NN_EINVAL;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (lim - d) / 10)
      return NN_ETOOBIG;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
}

/* YAML 1.2 core schema floats, checked before strtod so that its extensions ("0x1p3",
 * "infinity", leading spaces) are not accepted by accident. */
static int parse_double(const char *s, size_t n, double *out)
{
  size_t i = 0;
  bool neg = false;
  if (i < n && (s[i] == '-' || s[i] == '+'))
    neg = s[i++] == '-';
  const char *r = s + i;
  size_t rn = n - i;
  if (rn == 4 &&
      (memcmp(r, ".inf", 4) == 0 || memcmp(r, ".Inf", 4) == 0 || memcmp(r, ".INF", 4) == 0)) {
    *out = neg ? -INFINITY : INFINITY;
    return 0;
  }
  if (i == 0 && n == 4 &&
      (memcmp(s, ".nan", 4) == 0 || memcmp(s, ".NaN", 4) == 0 || memcmp(s, ".NAN", 4) == 0)) {
    *out = NAN;
    return 0;
  }
  size_t digits = 0;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
    digits++;
  if (i < n && s[i] == '.')
    for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
      digits++;
  if (!digits)
    return NN_EINVAL;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '-' || s[i] == '+'))
      i++;
    size_t ed = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
      ed++;
    if (!ed)
      return NN_EINVAL;
  }
  if (i != n || n > 512)
    return NN_EINVAL;
  char tmp[513];
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  errno = 0;
  double v = strtod(tmp, NULL);
  if (errno == ERANGE && isinf(v))
    return NN_ETOOBIG;
  *out = v;
  return 0;
}

/* Stores text into a scalar field of type t; quoted tells whether YAML typed it a string. */
static int set_scalar(struct binder *b, const struct nn_yaml_node *pos, enum nn_cfg_type t,
                      const char *s, size_t n, bool quoted, void *field)
{
  int rc = 0;
  int show = (int)(n > 100 ? 100 : n);
  const char *more = n > 100 ? "..." : "";
  if (memchr(s, '\0', n))
    return fail(b, pos, "value contains a NUL byte");
  if (quoted && (t == NN_CFG_BOOL || t == NN_CFG_INT || t == NN_CFG_DOUBLE))
    return fail(b, pos, "expected %s, got the quoted string \"%.*s%s\"; remove the quotes",
                a_type(t), show, s, more);
  switch (t) {
  case NN_CFG_STR: {
    char *v = strndup(s, n);
    if (!v)
      return fail(b, pos, "out of memory");
    free(*(char **)field);
    *(char **)field = v;
    return 0;
  }
  case NN_CFG_BOOL:
    if (!parse_bool(s, n, (bool *)field))
      return fail(b, pos, "expected a boolean (true or false), got \"%.*s%s\"", show, s, more);
    return 0;
  case NN_CFG_INT:
    if ((rc = parse_int(s, n, (int64_t *)field)) == NN_ETOOBIG)
      return fail(b, pos, "integer \"%.*s%s\" is out of range", show, s, more);
    if (rc < 0)
      return fail(b, pos, "expected an integer, got \"%.*s%s\"", show, s, more);
    return 0;
  case NN_CFG_DOUBLE:
    if ((rc = parse_double(s, n, (double *)field)) == NN_ETOOBIG)
      return fail(b, pos, "number \"%.*s%s\" is out of range", show, s, more);
    if (rc < 0)
      return fail(b, pos, "expected a number, got \"%.*s%s\"", show, s, more);
    return 0;
  case NN_CFG_DURATION:
    if ((rc = nn_duration_parse(s, n, (int64_t *)field)) == NN_ETOOBIG)
      return fail(b, pos, "duration \"%.*s%s\" is out of range (at most about 292y)", show, s,
                  more);
    if (rc < 0)
      return fail(b, pos,
                  "expected a duration such as \"30s\", \"5m\" or \"1h30m\" (units y w d h m s "
                  "ms, largest first, whole numbers), got \"%.*s%s\"",
                  show, s, more);
    return 0;
  case NN_CFG_SIZE:
    if ((rc = nn_size_parse(s, n, (uint64_t *)field)) == NN_ETOOBIG)
      return fail(b, pos, "size \"%.*s%s\" is out of range", show, s, more);
    if (rc < 0)
      return fail(b, pos,
                  "expected a size such as \"512MB\", \"1GiB\" or a byte count (units B KB MB "
                  "GB TB PB or KiB MiB GiB TiB PiB), got \"%.*s%s\"",
                  show, s, more);
    return 0;
  default: break;
  }
  return fail(b, pos, "internal error: not a scalar option type");
}

/* --- secrets ----------------------------------------------------------------------- */

/* Relative secret paths are taken from the directory of the file that names them, as
 * Prometheus does for its *_file options. */
static int secret_path(const struct nn_yaml_node *v, char *out, size_t len)
{
  const char *file = v->file ? v->file : "";
  const char *slash = strrchr(file, '/');
  int r;
  if (v->scalar[0] == '/' || !slash)
    r = snprintf(out, len, "%s", v->scalar);
  else
    r = snprintf(out, len, "%.*s/%s", (int)(slash - file), file, v->scalar);
  return r < 0 || (size_t)r >= len ? NN_ETOOBIG : 0;
}

static int read_secret_file(struct binder *b, const struct nn_yaml_node *v, struct nn_buf *out)
{
  char path[4096];
  if (v->kind != NN_YAML_SCALAR || v->scalar_len == 0)
    return fail(b, v, "expected the path of a file holding the secret, got a %s",
                nn_yaml_kind_name(v->kind));
  if (memchr(v->scalar, '\0', v->scalar_len) || secret_path(v, path, sizeof(path)) < 0)
    return fail(b, v, "invalid file path");
  /* O_NONBLOCK: a FIFO must not hang the loader; only regular files are accepted below. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return fail(b, v, "cannot read secret file \"%s\": %s", path, strerror(errno));
  int rc = 0;
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    rc = fail(b, v, "secret file \"%s\" is not a regular file", path);
    goto out;
  }
  char chunk[4096];
  for (;;) {
    ssize_t r = read(fd, chunk, sizeof(chunk));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rc = fail(b, v, "cannot read secret file \"%s\": %s", path, strerror(errno));
      goto out;
    }
    if (r == 0)
      break;
    if (nn_buf_append(out, chunk, (size_t)r) < 0) {
      rc = fail(b, v, "secret file \"%s\" is larger than %zu bytes", path, SECRET_MAX_BYTES);
      goto out;
    }
  }
  /* Editors and `echo` leave a trailing newline that is never part of a password. */
  size_t s = 0, e = out->len;
  while (s < e && strchr(" \t\r\n", out->data[s]))
    s++;
  while (e > s && strchr(" \t\r\n", out->data[e - 1]))
    e--;
  if (out->len) {
    memmove(out->data, out->data + s, e - s);
    out->len = e - s;
    out->data[out->len] = '\0';
  }
out:
  close(fd);
  return rc;
}

static bool env_name_char(char c, bool first)
{
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (!first && c >= '0' && c <= '9');
}

/* Replaces ${NAME} with the variable's value; "$${" stands for a literal "${". */
static int expand_env(struct binder *b, const struct nn_yaml_node *v, const char *s, size_t n,
                      struct nn_buf *out)
{
  for (size_t i = 0; i < n;) {
    if (s[i] == '$' && i + 2 < n && s[i + 1] == '$' && s[i + 2] == '{') {
      if (nn_buf_append(out, "${", 2) < 0)
        goto toobig;
      i += 3;
      continue;
    }
    if (s[i] != '$' || i + 1 >= n || s[i + 1] != '{') {
      if (nn_buf_appendc(out, s[i++]) < 0)
        goto toobig;
      continue;
    }
    size_t st = i + 2, e = st;
    while (e < n && env_name_char(s[e], e == st))
      e++;
    if (e == st || e >= n || s[e] != '}')
      return fail(b, v,
                  "bad environment variable reference at offset %zu: write ${NAME} with NAME of "
                  "letters, digits and _ (or $${ for a literal ${)",
                  i);
    char name[256];
    if (e - st >= sizeof(name))
      return fail(b, v, "environment variable name too long");
    memcpy(name, s + st, e - st);
    name[e - st] = '\0';
    const char *val = getenv(name);
    if (!val)
      return fail(b, v, "environment variable %s is not set", name);
    if (nn_buf_appends(out, val) < 0)
      goto toobig;
    i = e + 1;
  }
  return 0;
toobig:
  return fail(b, v, "value is longer than %zu bytes after expanding variables", SECRET_MAX_BYTES);
}

/* --- binding ----------------------------------------------------------------------- */

static int bind_table(struct binder *b, const struct nn_yaml_node *node,
                      const struct nn_cfg_option *table, char *dst);
static int defaults_table(struct binder *b, const struct nn_cfg_option *table, char *dst);
static void free_option(const struct nn_cfg_option *o, char *field);

static int bind_scalar(struct binder *b, const struct nn_cfg_option *o,
                       const struct nn_yaml_node *v, bool via_file, void *field)
{
  struct nn_buf tmp;
  int rc = 0;
  nn_buf_init(&tmp, SECRET_MAX_BYTES);
  if (via_file) {
    if ((rc = read_secret_file(b, v, &tmp)) < 0)
      goto out;
    rc = set_scalar(b, v, o->type, tmp.data ? tmp.data : "", tmp.len, false, field);
    goto out;
  }
  if (v->kind == NN_YAML_NULL) {
    rc = fail(b, v, "expected %s, got an empty value", a_type(o->type));
    goto out;
  }
  if (v->kind != NN_YAML_SCALAR) {
    rc = fail(b, v, "expected %s, got a %s", a_type(o->type), nn_yaml_kind_name(v->kind));
    goto out;
  }
  if ((o->flags & NN_CFG_SECRET) && memchr(v->scalar, '$', v->scalar_len)) {
    if ((rc = expand_env(b, v, v->scalar, v->scalar_len, &tmp)) < 0)
      goto out;
    /* Quotes around "${PORT}" are there for YAML's sake; the value itself is untyped. */
    rc = set_scalar(b, v, o->type, tmp.data ? tmp.data : "", tmp.len, false, field);
    goto out;
  }
  rc = set_scalar(b, v, o->type, v->scalar, v->scalar_len, v->quoted, field);
out:
  nn_buf_fini(&tmp);
  return rc;
}

static int bind_strlist(struct binder *b, const struct nn_yaml_node *v,
                        struct nn_cfg_strlist *field)
{
  struct nn_cfg_strlist nl = {NULL, 0};
  size_t base = b->plen;
  int rc = 0;
  if (v->kind != NN_YAML_NULL && v->kind != NN_YAML_SEQ)
    return fail(b, v, "expected a list of strings, got a %s", nn_yaml_kind_name(v->kind));
  if (v->len && !(nl.v = calloc(v->len, sizeof(*nl.v))))
    return fail(b, v, "out of memory");
  for (size_t i = 0; i < nn_yaml_len(v); i++) {
    const struct nn_yaml_node *it = v->items[i];
    path_push(b, "[%zu]", i);
    if (it->kind != NN_YAML_SCALAR)
      rc = fail(b, it, "expected a string, got a %s", nn_yaml_kind_name(it->kind));
    else if (memchr(it->scalar, '\0', it->scalar_len))
      rc = fail(b, it, "value contains a NUL byte");
    else if (!(nl.v[i] = strndup(it->scalar, it->scalar_len)))
      rc = fail(b, it, "out of memory");
    path_pop(b, base);
    if (rc < 0)
      break;
    nl.n++;
  }
  struct nn_cfg_option o = {.type = NN_CFG_STRLIST};
  if (rc < 0) {
    free_option(&o, (char *)&nl);
    return rc;
  }
  free_option(&o, (char *)field);
  *field = nl;
  return 0;
}

static int bind_strmap(struct binder *b, const struct nn_yaml_node *v, struct nn_cfg_strmap *field)
{
  struct nn_cfg_strmap nm = {NULL, NULL, 0};
  size_t base = b->plen;
  int rc = 0;
  if (v->kind != NN_YAML_NULL && v->kind != NN_YAML_MAP)
    return fail(b, v, "expected a map of strings, got a %s", nn_yaml_kind_name(v->kind));
  if (v->len && (!(nm.keys = calloc(v->len, sizeof(char *))) ||
                 !(nm.values = calloc(v->len, sizeof(char *)))))
    rc = fail(b, v, "out of memory");
  for (size_t i = 0; rc == 0 && i < nn_yaml_len(v); i++) {
    const struct nn_yaml_node *k = v->keys[i], *it = v->items[i];
    if (k->kind != NN_YAML_SCALAR) {
      rc = fail(b, k, "keys must be strings, got a %s", nn_yaml_kind_name(k->kind));
      break;
    }
    path_push_name(b, k->scalar, k->scalar_len);
    /* A null value is an empty string, as Go's yaml decoder makes it. */
    if (it->kind != NN_YAML_SCALAR && it->kind != NN_YAML_NULL)
      rc = fail(b, it, "expected a string, got a %s", nn_yaml_kind_name(it->kind));
    else if (memchr(k->scalar, '\0', k->scalar_len) || memchr(it->scalar, '\0', it->scalar_len))
      rc = fail(b, it, "value contains a NUL byte");
    else if (!(nm.keys[i] = strndup(k->scalar, k->scalar_len)) ||
             !(nm.values[i] =
                   it->kind == NN_YAML_NULL ? strdup("") : strndup(it->scalar, it->scalar_len)))
      rc = fail(b, it, "out of memory");
    path_pop(b, base);
    if (nm.keys[i])
      nm.n = i + 1;
  }
  struct nn_cfg_option o = {.type = NN_CFG_STRMAP};
  if (rc < 0) {
    free_option(&o, (char *)&nm);
    return rc;
  }
  free_option(&o, (char *)field);
  *field = nm;
  return 0;
}

static int bind_list(struct binder *b, const struct nn_cfg_option *o, const struct nn_yaml_node *v,
                     struct nn_cfg_list *field)
{
  size_t base = b->plen;
  int rc = 0;
  if (v->kind != NN_YAML_NULL && v->kind != NN_YAML_SEQ)
    return fail(b, v, "expected a list (of maps), got a %s", nn_yaml_kind_name(v->kind));
  if (!o->sub || !o->elem_size)
    return fail(b, v, "internal error: list option without sub table or elem_size");
  free_option(o, (char *)field);
  size_t n = nn_yaml_len(v);
  if (n == 0)
    return 0;
  if (n > SIZE_MAX / o->elem_size || !(field->items = calloc(n, o->elem_size)))
    return fail(b, v, "out of memory");
  /* The list is in place before its items are bound, so nn_cfg_free reaches a half-bound
   * item; the rest are zero, which free handles. */
  field->n = n;
  for (size_t i = 0; i < n; i++) {
    char *item = (char *)field->items + i * o->elem_size;
    path_push(b, "[%zu]", i);
    if ((rc = defaults_table(b, o->sub, item)) == 0)
      rc = bind_table(b, v->items[i], o->sub, item);
    path_pop(b, base);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int bind_value(struct binder *b, const struct nn_cfg_option *o, const struct nn_yaml_node *v,
                      bool via_file, char *field)
{
  if (is_scalar_type(o->type))
    return bind_scalar(b, o, v, via_file, field);
  switch (o->type) {
  case NN_CFG_STRLIST: return bind_strlist(b, v, (struct nn_cfg_strlist *)field);
  case NN_CFG_STRMAP: return bind_strmap(b, v, (struct nn_cfg_strmap *)field);
  case NN_CFG_SECTION:
    if (!o->sub)
      return fail(b, v, "internal error: section option without sub table");
    return bind_table(b, v, o->sub, field);
  case NN_CFG_LIST: return bind_list(b, o, v, (struct nn_cfg_list *)field);
  case NN_CFG_CUSTOM: {
    if (!o->custom)
      return fail(b, v, "internal error: custom option without a parser");
    b->err->msg[0] = '\0';
    int rc = o->custom(v, field, b->err);
    if (rc < 0) {
      if (!b->err->msg[0])
        return fail(b, v, "invalid value: %s", nn_strerror(rc));
      if (!b->err->file[0] && v->file)
        snprintf(b->err->file, sizeof(b->err->file), "%s", v->file);
      if (b->err->line == 0) {
        b->err->line = v->line;
        b->err->col = v->col;
      }
      snprintf(b->err->field, sizeof(b->err->field), "%s", b->path);
      return NN_ECONFIG;
    }
    return 0;
  }
  default: break;
  }
  return fail(b, v, "internal error: unknown option type %d", (int)o->type);
}

/* Levenshtein distance, case- and dash-insensitive, so listenAddress and listen-address
 * both find listen_address. Inputs are capped at SUGGEST_MAX_LEN. */
static size_t edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
  size_t row[SUGGEST_MAX_LEN + 1];
  for (size_t j = 0; j <= nb; j++)
    row[j] = j;
  for (size_t i = 1; i <= na; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= nb; j++) {
      char ca = a[i - 1], cb = b[j - 1];
      ca = ca == '-' ? '_' : (ca >= 'A' && ca <= 'Z' ? (char)(ca + 32) : ca);
      cb = cb == '-' ? '_' : (cb >= 'A' && cb <= 'Z' ? (char)(cb + 32) : cb);
      size_t best = diag + (ca != cb);
      if (row[j] + 1 < best)
        best = row[j] + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      diag = row[j];
      row[j] = best;
    }
  }
  return row[nb];
}

static int unknown_key(struct binder *b, const struct nn_yaml_node *k,
                       const struct nn_cfg_option *table)
{
  char best[160] = "";
  size_t bestd = SIZE_MAX;
  if (k->scalar_len <= SUGGEST_MAX_LEN) {
    for (const struct nn_cfg_option *o = table; o->name; o++) {
      for (int form = 0; form < ((o->flags & NN_CFG_SECRET) ? 2 : 1); form++) {
        char cand[160];
        snprintf(cand, sizeof(cand), "%s%s", o->name, form ? "_file" : "");
        size_t cl = strlen(cand);
        if (cl > SUGGEST_MAX_LEN)
          continue;
        size_t d = edit_distance(k->scalar, k->scalar_len, cand, cl);
        size_t longest = cl > k->scalar_len ? cl : k->scalar_len;
        /* Close enough to be a typo: a third of the name, and at least one edit. */
        if (d < bestd && d * 3 <= (longest < 3 ? 3 : longest)) {
          bestd = d;
          snprintf(best, sizeof(best), "%s", cand);
        }
      }
    }
  }
  size_t base = b->plen;
  path_push_name(b, k->scalar, k->scalar_len);
  int show = (int)(k->scalar_len > 100 ? 100 : k->scalar_len);
  int rc;
  if (best[0]) {
    rc = fail(b, k, "unknown field \"%.*s\"; did you mean '%s'?", show, k->scalar, best);
  } else {
    struct nn_buf known;
    nn_buf_init(&known, 240);
    for (const struct nn_cfg_option *opt = table; opt->name; opt++) {
      if (nn_buf_printf(&known, "%s%s", known.len ? ", " : "", opt->name) < 0) {
        nn_buf_reset(&known);
        nn_buf_appends(&known, "see --help for the list");
        break;
      }
    }
    rc = fail(b, k, "unknown field \"%.*s\" (known fields: %s)", show, k->scalar,
              known.data ? known.data : "none");
    nn_buf_fini(&known);
  }
  path_pop(b, base);
  return rc;
}

static int bind_table(struct binder *b, const struct nn_yaml_node *node,
                      const struct nn_cfg_option *table, char *dst)
{
  size_t nopt = 0, base = b->plen;
  int rc = 0;
  for (const struct nn_cfg_option *o = table; o->name; o++)
    nopt++;
  if (node && node->kind != NN_YAML_MAP && node->kind != NN_YAML_NULL)
    return fail(b, node, "expected a map of options, got a %s", nn_yaml_kind_name(node->kind));
  /* Which option each key set; for the required check and to catch x plus x_file. */
  const struct nn_yaml_node **seen = calloc(nopt ? nopt : 1, sizeof(*seen));
  if (!seen)
    return fail(b, node, "out of memory");
  for (size_t i = 0; i < nn_yaml_len(node); i++) {
    const struct nn_yaml_node *k = node->keys[i], *v = node->items[i];
    if (k->kind != NN_YAML_SCALAR) {
      rc = fail(b, k, "option names must be plain strings, got a %s", nn_yaml_kind_name(k->kind));
      goto out;
    }
    size_t idx = nopt;
    bool via_file = false;
    for (size_t j = 0; j < nopt; j++) {
      if (strlen(table[j].name) == k->scalar_len &&
          memcmp(table[j].name, k->scalar, k->scalar_len) == 0) {
        idx = j;
        break;
      }
    }
    if (idx == nopt && k->scalar_len > 5 &&
        memcmp(k->scalar + k->scalar_len - 5, "_file", 5) == 0) {
      for (size_t j = 0; j < nopt; j++) {
        if ((table[j].flags & NN_CFG_SECRET) && is_scalar_type(table[j].type) &&
            strlen(table[j].name) == k->scalar_len - 5 &&
            memcmp(table[j].name, k->scalar, k->scalar_len - 5) == 0) {
          idx = j;
          via_file = true;
          break;
        }
      }
    }
    if (idx == nopt) {
      rc = unknown_key(b, k, table);
      goto out;
    }
    const struct nn_cfg_option *o = &table[idx];
    path_push_name(b, o->name, strlen(o->name));
    if (seen[idx]) {
      rc = fail(b, k, "set twice: \"%s\" and \"%s_file\" cannot both be given", o->name, o->name);
      path_pop(b, base);
      goto out;
    }
    seen[idx] = k;
    rc = bind_value(b, o, v, via_file, dst + o->offset);
    path_pop(b, base);
    if (rc < 0)
      goto out;
  }
  for (size_t j = 0; j < nopt; j++) {
    if (!(table[j].flags & NN_CFG_REQUIRED) || seen[j])
      continue;
    path_push_name(b, table[j].name, strlen(table[j].name));
    rc = fail(b, node, "missing required field \"%s\"%s", table[j].name,
              (table[j].flags & NN_CFG_SECRET) ? " (or its _file form)" : "");
    path_pop(b, base);
    goto out;
  }
out:
  free(seen);
  return rc;
}

/* --- defaults and freeing ----------------------------------------------------------- */

/* A bad default is a bug in the option table; say so rather than blame the user's file. */
static void prefix_default(struct binder *b, const struct nn_cfg_option *o)
{
  char msg[sizeof(b->err->msg)];
  snprintf(msg, sizeof(msg), "%s", b->err->msg);
  snprintf(b->err->msg, sizeof(b->err->msg),
           "invalid default \"%.100s\" in the option table: %.360s", o->def, msg);
}

static int default_from_yaml(struct binder *b, const struct nn_cfg_option *o, char *field)
{
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error yerr;
  int rc = nn_yaml_load_string("<default>", o->def, strlen(o->def), &doc, &yerr);
  if (rc < 0) {
    rc = fail(b, NULL, "%s", yerr.msg);
    prefix_default(b, o);
    goto out;
  }
  if ((rc = bind_value(b, o, doc->root, false, field)) < 0) {
    /* Positions inside the default text mean nothing to a user. */
    b->err->file[0] = '\0';
    b->err->line = b->err->col = 0;
    prefix_default(b, o);
  }
out:
  nn_yaml_doc_destroy(doc);
  return rc;
}

static int default_option(struct binder *b, const struct nn_cfg_option *o, char *field)
{
  int rc;
  switch (o->type) {
  case NN_CFG_SECTION:
    if (!o->sub)
      return fail(b, NULL, "internal error: section option without sub table");
    return defaults_table(b, o->sub, field);
  case NN_CFG_LIST: free_option(o, field); return 0;
  case NN_CFG_STR:
    free_option(o, field);
    if (o->def && !(*(char **)field = strdup(o->def)))
      return fail(b, NULL, "out of memory");
    return 0;
  case NN_CFG_BOOL: *(bool *)field = false; break;
  case NN_CFG_INT:
  case NN_CFG_DURATION: *(int64_t *)field = 0; break;
  case NN_CFG_SIZE: *(uint64_t *)field = 0; break;
  case NN_CFG_DOUBLE: *(double *)field = 0; break;
  case NN_CFG_STRLIST:
  case NN_CFG_STRMAP:
  case NN_CFG_CUSTOM: free_option(o, field); break;
  }
  if (!o->def)
    return 0;
  if (is_scalar_type(o->type)) {
    if ((rc = set_scalar(b, NULL, o->type, o->def, strlen(o->def), false, field)) < 0) {
      prefix_default(b, o);
    }
    return rc;
  }
  return default_from_yaml(b, o, field);
}

static int defaults_table(struct binder *b, const struct nn_cfg_option *table, char *dst)
{
  size_t base = b->plen;
  for (const struct nn_cfg_option *o = table; o->name; o++) {
    path_push_name(b, o->name, strlen(o->name));
    int rc = default_option(b, o, dst + o->offset);
    path_pop(b, base);
    if (rc < 0)
      return rc;
  }
  return 0;
}

static void free_table(const struct nn_cfg_option *table, char *dst);

static void free_option(const struct nn_cfg_option *o, char *field)
{
  switch (o->type) {
  case NN_CFG_STR: {
    char **p = (char **)field;
    free(*p);
    *p = NULL;
    break;
  }
  case NN_CFG_STRLIST: {
    struct nn_cfg_strlist *l = (struct nn_cfg_strlist *)field;
    for (size_t i = 0; i < l->n; i++)
      free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
    break;
  }
  case NN_CFG_STRMAP: {
    struct nn_cfg_strmap *m = (struct nn_cfg_strmap *)field;
    for (size_t i = 0; i < m->n; i++) {
      free(m->keys[i]);
      free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    m->keys = m->values = NULL;
    m->n = 0;
    break;
  }
  case NN_CFG_SECTION:
    if (o->sub)
      free_table(o->sub, field);
    break;
  case NN_CFG_LIST: {
    struct nn_cfg_list *l = (struct nn_cfg_list *)field;
    for (size_t i = 0; o->sub && i < l->n; i++)
      free_table(o->sub, (char *)l->items + i * o->elem_size);
    free(l->items);
    l->items = NULL;
    l->n = 0;
    break;
  }
  case NN_CFG_CUSTOM:
    if (o->custom_free)
      o->custom_free(field);
    break;
  default: break;
  }
}

static void free_table(const struct nn_cfg_option *table, char *dst)
{
  for (const struct nn_cfg_option *o = table; o->name; o++)
    free_option(o, dst + o->offset);
}

/* --- public entry points ------------------------------------------------------------- */

static void binder_init(struct binder *b, struct nn_cfg_error *err)
{
  memset(err, 0, sizeof(*err));
  b->err = err;
  b->plen = 0;
  b->path[0] = '\0';
}

int nn_cfg_apply_defaults(const struct nn_cfg_option *table, void *dst, struct nn_cfg_error *err)
{
  struct nn_cfg_error local;
  struct binder b;
  binder_init(&b, err ? err : &local);
  return defaults_table(&b, table, dst);
}

int nn_cfg_bind(const struct nn_yaml_node *node, const struct nn_cfg_option *table, void *dst,
                struct nn_cfg_error *err)
{
  struct nn_cfg_error local;
  struct binder b;
  binder_init(&b, err ? err : &local);
  int rc = defaults_table(&b, table, dst);
  if (rc == 0)
    rc = bind_table(&b, node, table, dst);
  return rc;
}

static int bind_doc(int rc, struct nn_yaml_doc *doc, const struct nn_yaml_error *yerr,
                    const struct nn_cfg_option *table, void *dst, struct nn_cfg_error *err)
{
  if (rc < 0) {
    if (err) {
      memset(err, 0, sizeof(*err));
      snprintf(err->file, sizeof(err->file), "%s", yerr->file);
      err->line = yerr->line;
      err->col = yerr->col;
      snprintf(err->msg, sizeof(err->msg), "%s", yerr->msg);
    }
    return rc;
  }
  rc = nn_cfg_bind(doc->root, table, dst, err);
  nn_yaml_doc_destroy(doc);
  return rc;
}

int nn_cfg_load_file(const char *path, const struct nn_cfg_option *table, void *dst,
                     struct nn_cfg_error *err)
{
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error yerr;
  int rc = nn_yaml_load_file(path, &doc, &yerr);
  return bind_doc(rc, doc, &yerr, table, dst, err);
}

int nn_cfg_load_string(const char *name, const char *text, size_t len,
                       const struct nn_cfg_option *table, void *dst, struct nn_cfg_error *err)
{
  struct nn_yaml_doc *doc = NULL;
  struct nn_yaml_error yerr;
  int rc = nn_yaml_load_string(name, text, len, &doc, &yerr);
  return bind_doc(rc, doc, &yerr, table, dst, err);
}

void nn_cfg_free(const struct nn_cfg_option *table, void *dst)
{
  if (table && dst)
    free_table(table, dst);
}

const char *nn_cfg_strmap_get(const struct nn_cfg_strmap *m, const char *key)
{
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->keys[i], key) == 0)
      return m->values[i];
  return NULL;
}

/* --- help ---------------------------------------------------------------------------- */

static int help_table(const struct nn_cfg_option *table, struct nn_buf *out, int indent)
{
  int rc = 0;
  for (const struct nn_cfg_option *o = table; o->name && rc == 0; o++) {
    rc = nn_buf_printf(out, "%*s%s: %s", indent, "", o->name, type_name(o->type));
    if (rc == 0 && o->def)
      rc =
          nn_buf_printf(out, o->type == NN_CFG_STR ? " (default \"%s\")" : " (default %s)", o->def);
    if (rc == 0 && (o->flags & NN_CFG_REQUIRED))
      rc = nn_buf_appends(out, " (required)");
    if (rc == 0 && (o->flags & NN_CFG_SECRET))
      rc = nn_buf_printf(out, " (secret: or %s_file: <path>; ${ENV} expanded)", o->name);
    if (rc == 0)
      rc = nn_buf_appendc(out, '\n');
    if (rc == 0 && o->help) {
      /* One line of help per line of the original text, indented under the option. */
      const char *h = o->help;
      while (rc == 0 && *h) {
        const char *nl = strchr(h, '\n');
        size_t l = nl ? (size_t)(nl - h) : strlen(h);
        rc = nn_buf_printf(out, "%*s%.*s\n", indent + 4, "", (int)l, h);
        h += l + (nl ? 1 : 0);
      }
    }
    if (rc == 0 && (o->type == NN_CFG_SECTION || o->type == NN_CFG_LIST) && o->sub)
      rc = help_table(o->sub, out, indent + 2);
  }
  return rc;
}

int nn_cfg_write_help(const struct nn_cfg_option *table, struct nn_buf *out)
{
  return help_table(table, out, 0);
}
