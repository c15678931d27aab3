/* SPDX-License-Identifier: Apache-2.0 */
/* Query-component encoding and decoding as Go's net/url does it. Decoding never grows the
 * input, so a parsed pair needs at most its raw length in pool memory. */
#include "common/urlenc.h"

#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/pool.h"

static int hexval(unsigned char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes s[0..n) into dst (room for n bytes). Returns the decoded length or -1 on an
 * invalid escape. */
static long decode_into(const char *s, size_t n, bool plus_as_space, char *dst)
{
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      int hi, lo;
      if (i + 2 >= n)
        return -1;
      hi = hexval((unsigned char)s[i + 1]);
      lo = hexval((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      dst[o++] = (char)(hi << 4 | lo);
      i += 2;
    } else if (c == '+' && plus_as_space) {
      dst[o++] = ' ';
    } else {
      dst[o++] = (char)c;
    }
  }
  return (long)o;
}

int nn_urlenc_unescape(const char *s, size_t n, bool plus_as_space, struct nn_buf *out)
{
  /* Count first, so the reservation is exact and a cap that fits the result never fails. */
  size_t need = n;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      if (i + 2 >= n || hexval((unsigned char)s[i + 1]) < 0 || hexval((unsigned char)s[i + 2]) < 0)
        return NN_EINVAL;
      need -= 2;
      i += 2;
    }
  }
  int rc = nn_buf_reserve(out, need);
  if (rc < 0)
    return rc;
  long len = decode_into(s, n, plus_as_space, out->data + out->len);
  out->len += (size_t)len;
  out->data[out->len] = '\0';
  return 0;
}

static bool unreserved(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

int nn_urlenc_escape(const char *s, size_t n, struct nn_buf *out)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t need = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    need += unreserved(c) || c == ' ' ? 1 : 3;
  }
  int rc = nn_buf_reserve(out, need);
  if (rc < 0)
    return rc;
  char *d = out->data + out->len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c)) {
      *d++ = (char)c;
    } else if (c == ' ') {
      *d++ = '+';
    } else {
      *d++ = '%';
      *d++ = hex[c >> 4];
      *d++ = hex[c & 15];
    }
  }
  out->len += need;
  out->data[out->len] = '\0';
  return 0;
}

/* Decodes one component into a fresh NUL-terminated pool string. */
static int decode_component(const char *s, size_t n, struct nn_pool *pool, const char **out,
                            size_t *outlen)
{
  char *d = nn_pool_alloc(pool, n + 1);
  if (!d)
    return NN_ENOMEM;
  long len = decode_into(s, n, true, d);
  if (len < 0)
    return NN_EINVAL;
  d[len] = '\0';
  *out = d;
  *outlen = (size_t)len;
  return 0;
}

int nn_urlenc_parse(const char *s, size_t n, struct nn_pool *pool, struct nn_urlenc_param **out,
                    size_t *count)
{
  size_t max = 1;
  for (size_t i = 0; i < n; i++)
    max += s[i] == '&';
  struct nn_urlenc_param *v = nn_pool_alloc(pool, max * sizeof(*v));
  if (!v)
    return NN_ENOMEM;
  size_t k = 0;
  int result = 0;
  const char *p = s, *end = s + n;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *seg_end = amp ? amp : end;
    const char *seg = p;
    size_t seglen = (size_t)(seg_end - seg);
    p = amp ? amp + 1 : end;
    if (memchr(seg, ';', seglen)) {
      result = NN_EINVAL;
      continue;
    }
    if (seglen == 0)
      continue;
    const char *eq = memchr(seg, '=', seglen);
    size_t klen = eq ? (size_t)(eq - seg) : seglen;
    const char *val = eq ? eq + 1 : seg_end;
    int rc = decode_component(seg, klen, pool, &v[k].name, &v[k].name_len);
    if (rc == 0)
      rc = decode_component(val, (size_t)(seg_end - val), pool, &v[k].value, &v[k].value_len);
    if (rc == NN_ENOMEM)
      return rc;
    if (rc < 0) {
      result = rc;
      continue;
    }
    k++;
  }
  *out = v;
  *count = k;
  return result;
}

const char *nn_urlenc_get(const struct nn_urlenc_param *params, size_t count, const char *name)
{
  size_t n = strlen(name);
  for (size_t i = 0; i < count; i++) {
    if (params[i].name_len == n && memcmp(params[i].name, name, n) == 0)
      return params[i].value;
  }
  return NULL;
}
