/* SPDX-License-Identifier: Apache-2.0 */
/* Label-set validation, hashing, formatting and parsing. */
#include "common/labels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/pool.h"
#include "common/utf8.h"

#define MAX_PARSED_LABELS 1024

static bool is_alpha_(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}

bool nn_label_name_valid(const char *s, size_t n)
{
  if (n == 0 || !is_alpha_(s[0]))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!is_alpha_(s[i]) && !is_digit(s[i]))
      return false;
  return true;
}

bool nn_metric_name_valid(const char *s, size_t n)
{
  if (n == 0 || !(is_alpha_(s[0]) || s[0] == ':'))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!is_alpha_(s[i]) && !is_digit(s[i]) && s[i] != ':')
      return false;
  return true;
}

static int label_cmp(const void *a, const void *b)
{
  return strcmp(((const struct nn_label *)a)->name, ((const struct nn_label *)b)->name);
}

size_t nn_labels_canonicalize(struct nn_label *v, size_t n)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (v[i].value && v[i].value[0])
      v[k++] = v[i];
  /* Most label sets arrive sorted or nearly so (a few labels appended to a sorted set):
   * insertion sort is linear then, and stable like the merge sort qsort uses. */
  if (k > 64) {
    for (size_t i = 1; i < k; i++) {
      if (strcmp(v[i - 1].name, v[i].name) > 0) {
        qsort(v, k, sizeof(*v), label_cmp);
        break;
      }
    }
    return k;
  }
  for (size_t i = 1; i < k; i++) {
    struct nn_label x = v[i];
    size_t j = i;
    while (j > 0 && strcmp(v[j - 1].name, x.name) > 0) {
      v[j] = v[j - 1];
      j--;
    }
    v[j] = x;
  }
  return k;
}

int nn_labels_validate(const struct nn_label *v, size_t n, char *err, size_t errlen)
{
  for (size_t i = 0; i < n; i++) {
    size_t nl = strlen(v[i].name);
    if (!nn_label_name_valid(v[i].name, nl)) {
      snprintf(err, errlen, "invalid label name \"%.64s\"", v[i].name);
      return NN_EINVAL;
    }
    if (i > 0) {
      int c = strcmp(v[i - 1].name, v[i].name);
      if (c == 0) {
        snprintf(err, errlen, "duplicate label name \"%.64s\"", v[i].name);
        return NN_EINVAL;
      }
      if (c > 0) {
        snprintf(err, errlen, "labels not sorted at \"%.64s\"", v[i].name);
        return NN_EINVAL;
      }
    }
    size_t vl = strlen(v[i].value);
    if (!nn_utf8_valid(v[i].value, vl)) {
      snprintf(err, errlen, "label \"%.64s\" has a value that is not valid UTF-8", v[i].name);
      return NN_EINVAL;
    }
    if (strcmp(v[i].name, "__name__") == 0 && !nn_metric_name_valid(v[i].value, vl)) {
      snprintf(err, errlen, "invalid metric name \"%.64s\"", v[i].value);
      return NN_EINVAL;
    }
  }
  return 0;
}

uint64_t nn_labels_hash(const struct nn_label *v, size_t n)
{
  XXH3_state_t st;
  static const char sep = '\xff';
  XXH3_64bits_reset(&st);
  for (size_t i = 0; i < n; i++) {
    XXH3_64bits_update(&st, v[i].name, strlen(v[i].name));
    XXH3_64bits_update(&st, &sep, 1);
    XXH3_64bits_update(&st, v[i].value, strlen(v[i].value));
    XXH3_64bits_update(&st, &sep, 1);
  }
  return XXH3_64bits_digest(&st);
}

int nn_labels_cmp(const struct nn_label *a, size_t na, const struct nn_label *b, size_t nb)
{
  for (size_t i = 0; i < na && i < nb; i++) {
    int c = strcmp(a[i].name, b[i].name);
    if (c)
      return c;
    c = strcmp(a[i].value, b[i].value);
    if (c)
      return c;
  }
  return na < nb ? -1 : na > nb;
}

const char *nn_labels_get(const struct nn_label *v, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].name, name) == 0)
      return v[i].value;
  return NULL;
}

int nn_labels_format(const struct nn_label *v, size_t n, struct nn_buf *out)
{
  int rc = nn_buf_appendc(out, '{');
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (i)
      rc = nn_buf_append(out, ", ", 2);
    if (rc == 0)
      rc = nn_buf_appends(out, v[i].name);
    if (rc == 0)
      rc = nn_buf_append(out, "=\"", 2);
    for (const char *p = v[i].value; rc == 0 && *p; p++) {
      if (*p == '\\' || *p == '"')
        rc = nn_buf_appendc(out, '\\');
      if (rc == 0)
        rc = *p == '\n' ? nn_buf_append(out, "\\n", 2) : nn_buf_appendc(out, *p);
    }
    if (rc == 0)
      rc = nn_buf_appendc(out, '"');
  }
  if (rc == 0)
    rc = nn_buf_appendc(out, '}');
  return rc;
}

static void skip_ws(const char *s, size_t len, size_t *i)
{
  while (*i < len && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r'))
    (*i)++;
}

int nn_labels_parse(const char *s, size_t len, struct nn_pool *pool, struct nn_label **out,
                    size_t *n, char *err, size_t errlen)
{
  size_t i = 0, cnt = 0, cap = 8;
  struct nn_label *v = nn_pool_alloc(pool, cap * sizeof(*v));
  if (!v)
    return NN_ENOMEM;
  skip_ws(s, len, &i);
  if (i >= len || s[i] != '{') {
    snprintf(err, errlen, "labels must start with '{' at offset %zu", i);
    return NN_EINVAL;
  }
  i++;
  skip_ws(s, len, &i);
  while (i < len && s[i] != '}') {
    size_t ns = i;
    while (i < len && (is_alpha_(s[i]) || is_digit(s[i])))
      i++;
    if (i == ns || !nn_label_name_valid(s + ns, i - ns)) {
      snprintf(err, errlen, "expected a label name at offset %zu", ns);
      return NN_EINVAL;
    }
    size_t ne = i;
    skip_ws(s, len, &i);
    if (i >= len || s[i] != '=') {
      snprintf(err, errlen, "expected '=' at offset %zu", i);
      return NN_EINVAL;
    }
    i++;
    skip_ws(s, len, &i);
    if (i >= len || s[i] != '"') {
      snprintf(err, errlen, "expected '\"' at offset %zu", i);
      return NN_EINVAL;
    }
    i++;
    char *val = nn_pool_alloc(pool, len - i + 1);
    if (!val)
      return NN_ENOMEM;
    size_t vl = 0;
    for (;;) {
      if (i >= len) {
        snprintf(err, errlen, "unterminated label value");
        return NN_EINVAL;
      }
      char c = s[i++];
      if (c == '"')
        break;
      if (c == '\0') {
        snprintf(err, errlen, "NUL byte in label value");
        return NN_EINVAL;
      }
      if (c == '\\') {
        if (i >= len) {
          snprintf(err, errlen, "unterminated escape in label value");
          return NN_EINVAL;
        }
        c = s[i++];
        if (c == 'n')
          c = '\n';
        else if (c == 't')
          c = '\t';
        else if (c != '\\' && c != '"') {
          snprintf(err, errlen, "unknown escape \\%c at offset %zu", c, i - 1);
          return NN_EINVAL;
        }
      }
      val[vl++] = c;
    }
    val[vl] = '\0';
    if (cnt == cap) {
      if (cap >= MAX_PARSED_LABELS) {
        snprintf(err, errlen, "more than %d labels", MAX_PARSED_LABELS);
        return NN_ELIMIT;
      }
      struct nn_label *nv = nn_pool_alloc(pool, cap * 2 * sizeof(*v));
      if (!nv)
        return NN_ENOMEM;
      memcpy(nv, v, cap * sizeof(*v));
      v = nv;
      cap *= 2;
    }
    v[cnt].name = nn_pool_strndup(pool, s + ns, ne - ns);
    v[cnt].value = val;
    if (!v[cnt].name)
      return NN_ENOMEM;
    cnt++;
    skip_ws(s, len, &i);
    if (i < len && s[i] == ',') {
      i++;
      skip_ws(s, len, &i);
    } else if (i < len && s[i] != '}') {
      snprintf(err, errlen, "expected ',' or '}' at offset %zu", i);
      return NN_EINVAL;
    }
  }
  if (i >= len) {
    snprintf(err, errlen, "labels must end with '}'");
    return NN_EINVAL;
  }
  i++;
  skip_ws(s, len, &i);
  if (i != len) {
    snprintf(err, errlen, "unexpected text after '}' at offset %zu", i);
    return NN_EINVAL;
  }
  cnt = nn_labels_canonicalize(v, cnt);
  int rc = nn_labels_validate(v, cnt, err, errlen);
  if (rc < 0)
    return rc;
  *out = v;
  *n = cnt;
  return 0;
}
