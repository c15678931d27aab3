/* SPDX-License-Identifier: Apache-2.0 */
/* Bounded byte buffer. Growth doubles, so appends are amortised O(1). */
#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/utf8.h"

void nn_buf_init(struct nn_buf *b, size_t max)
{
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void nn_buf_fini(struct nn_buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void nn_buf_reset(struct nn_buf *b)
{
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

int nn_buf_reserve(struct nn_buf *b, size_t n)
{
  if (n > b->max || b->len > b->max - n)
    return NN_ETOOBIG;
  size_t need = b->len + n + 1; /* +1 for the terminating NUL */
  if (need <= b->cap)
    return 0;
  size_t ncap = b->cap ? b->cap : 64;
  while (ncap < need)
    ncap *= 2;
  if (ncap > b->max + 1)
    ncap = b->max + 1;
  char *p = realloc(b->data, ncap);
  if (!p)
    return NN_ENOMEM;
  b->data = p;
  b->cap = ncap;
  return 0;
}

int nn_buf_append(struct nn_buf *b, const void *p, size_t n)
{
  int rc = nn_buf_reserve(b, n);
  if (rc < 0)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int nn_buf_appends(struct nn_buf *b, const char *s)
{
  return nn_buf_append(b, s, strlen(s));
}

int nn_buf_appendc(struct nn_buf *b, char c)
{
  return nn_buf_append(b, &c, 1);
}

int nn_buf_vprintf(struct nn_buf *b, const char *fmt, va_list ap)
{
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return NN_EINVAL;
  int rc = nn_buf_reserve(b, (size_t)n);
  if (rc < 0)
    return rc;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int nn_buf_printf(struct nn_buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = nn_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

int nn_buf_append_json_str(struct nn_buf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  int rc = nn_buf_appendc(b, '"');
  size_t i = 0;
  while (rc == 0 && i < n) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x80) {
      size_t l = nn_utf8_valid_prefix(s + i, n - i);
      if (l == 0) {
        rc = nn_buf_append(b, "\xef\xbf\xbd", 3);
        i++;
      } else {
        rc = nn_buf_append(b, s + i, l);
        i += l;
      }
      continue;
    }
    switch (c) {
    case '"': rc = nn_buf_append(b, "\\\"", 2); break;
    case '\\': rc = nn_buf_append(b, "\\\\", 2); break;
    case '\n': rc = nn_buf_append(b, "\\n", 2); break;
    case '\r': rc = nn_buf_append(b, "\\r", 2); break;
    case '\t': rc = nn_buf_append(b, "\\t", 2); break;
    default:
      if (c < 0x20) {
        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        rc = nn_buf_append(b, e, 6);
      } else {
        rc = nn_buf_appendc(b, (char)c);
      }
    }
    i++;
  }
  if (rc == 0)
    rc = nn_buf_appendc(b, '"');
  return rc;
}

char *nn_buf_steal(struct nn_buf *b, size_t *len)
{
  char *p = b->data;
  if (len)
    *len = b->len;
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  return p;
}
