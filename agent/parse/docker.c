/* SPDX-License-Identifier: Apache-2.0 */
/* Docker json-file records: {"log":"...\n","stream":"stdout","time":"..."} (plus optional
 * "attrs"). A hand parser for this one shape: it finds string ends with memchr and copies
 * only when the value has escapes other than the final "\n", which is several times faster
 * than building a jansson tree per line. Docker splits a line every 16 KiB; a "log" value
 * without a trailing newline is such a split and is reported as partial. */
#include "agent/parse/parse.h"

#include <string.h>

#include "common/buf.h"
#include "common/error.h"

static const char *skip_ws(const char *p, const char *end)
{
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    p++;
  return p;
}

/* p is just past an opening quote. Returns the closing quote, or NULL when unterminated. */
static const char *string_end(const char *p, const char *end)
{
  const char *q = p;
  for (;;) {
    const char *quote = memchr(q, '"', (size_t)(end - q));
    if (!quote)
      return NULL;
    /* An escaped quote is preceded by an odd run of backslashes. Each run is walked once,
     * for the quote right after it, so this stays linear. */
    const char *b = quote;
    while (b > p && b[-1] == '\\')
      b--;
    if (((quote - b) & 1) == 0)
      return quote;
    q = quote + 1;
  }
}

static int hex4(const char *p, const char *end, unsigned *out)
{
  if (end - p < 4)
    return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned c = (unsigned char)p[i];
    if (c >= '0' && c <= '9')
      c -= '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      c = (c | 0x20) - 'a' + 10;
    else
      return -1;
    v = v * 16 + c;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Unescapes [p, end) into scratch. Unescaping never grows the text, so reserving end - p
 * up front bounds the write. cut: the text was truncated by the reader, so a dangling escape
 * at the end is dropped instead of rejected. */
static int unescape(const char *p, const char *end, bool cut, struct nn_buf *scratch)
{
  nn_buf_reset(scratch);
  int rc = nn_buf_reserve(scratch, (size_t)(end - p));
  if (rc < 0)
    return rc;
  char *o = scratch->data;
  while (p < end) {
    const char *bs = memchr(p, '\\', (size_t)(end - p));
    size_t span = bs ? (size_t)(bs - p) : (size_t)(end - p);
    memcpy(o, p, span);
    o += span;
    if (!bs)
      break;
    p = bs + 1;
    if (p >= end) {
      if (!cut)
        return NN_EINVAL;
      break;
    }
    char c = *p++;
    switch (c) {
    case '"':
    case '\\':
    case '/': *o++ = c; break;
    case 'b': *o++ = '\b'; break;
    case 'f': *o++ = '\f'; break;
    case 'n': *o++ = '\n'; break;
    case 'r': *o++ = '\r'; break;
    case 't': *o++ = '\t'; break;
    case 'u': {
      unsigned cp, lo;
      if (hex4(p, end, &cp) < 0) {
        if (cut && end - p < 4)
          goto done; /* cut mid-escape by truncation */
        return NN_EINVAL;
      }
      p += 4;
      if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
          hex4(p + 2, end, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        p += 6;
      } else if (cp >= 0xd800 && cp <= 0xdfff) {
        cp = 0xfffd; /* lone surrogate: JSON allows it, UTF-8 cannot carry it */
      }
      o += put_utf8(o, cp);
      break;
    }
    default: return NN_EINVAL;
    }
  }
done:
  scratch->len = (size_t)(o - scratch->data);
  scratch->data[scratch->len] = '\0';
  return 0;
}

/* Skips one JSON value of any type; returns the position after it or NULL. Depth is
 * counted, not recursed, so hostile nesting cannot exhaust the stack. */
static const char *skip_value(const char *p, const char *end)
{
  size_t depth = 0;
  do {
    p = skip_ws(p, end);
    if (p >= end)
      return NULL;
    char c = *p;
    if (c == '"') {
      p = string_end(p + 1, end);
      if (!p)
        return NULL;
      p++;
    } else if (c == '{' || c == '[') {
      depth++;
      p++;
    } else if (c == '}' || c == ']') {
      if (depth == 0)
        return NULL;
      depth--;
      p++;
    } else if (c == ',' || c == ':') {
      if (depth == 0)
        return NULL;
      p++;
    } else {
      /* number, true, false, null */
      const char *s = p;
      while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != ':' &&
             *p != '\t' && *p != '\r' && *p != '\n' && *p != '"' && *p != '{' && *p != '[')
        p++;
      if (p == s)
        return NULL;
    }
  } while (depth > 0);
  return p;
}

int nn_parse_docker_line(const char *line, size_t len, bool lenient, struct nn_buf *scratch,
                         struct nn_parse_docker_line *out)
{
  const char *p = line, *end = line + len;
  bool have_log = false;
  out->ts_ns = 0;
  out->stream = NN_PARSE_STREAM_NONE;
  out->partial = false;
  out->msg = NULL;
  out->msg_len = 0;
  p = skip_ws(p, end);
  if (p >= end || *p != '{')
    return NN_EINVAL;
  p = skip_ws(p + 1, end);
  if (p < end && *p == '}')
    return NN_EINVAL;
  for (;;) {
    if (p >= end || *p != '"')
      return NN_EINVAL;
    const char *k = p + 1;
    const char *ke = string_end(k, end);
    if (!ke)
      return NN_EINVAL;
    size_t klen = (size_t)(ke - k);
    p = skip_ws(ke + 1, end);
    if (p >= end || *p != ':')
      return NN_EINVAL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '"' && klen == 3 && memcmp(k, "log", 3) == 0) {
      const char *v = p + 1;
      const char *ve = string_end(v, end);
      if (!ve) {
        if (!lenient)
          return NN_EINVAL;
        /* Truncated by the reader mid-value: keep what we have, the rest of the record
         * (stream, time) is gone. */
        int rc = unescape(v, end, true, scratch);
        if (rc < 0)
          return rc;
        out->msg = scratch->data;
        out->msg_len = scratch->len;
        return 0;
      }
      const char *bs = memchr(v, '\\', (size_t)(ve - v));
      if (!bs) {
        out->msg = v;
        out->msg_len = (size_t)(ve - v);
        out->partial = true;
      } else if (bs == ve - 2 && bs[1] == 'n') {
        out->msg = v; /* the common case: only the final "\n" is escaped */
        out->msg_len = (size_t)(bs - v);
      } else {
        int rc = unescape(v, ve, false, scratch);
        if (rc < 0)
          return rc;
        out->msg = scratch->data;
        out->msg_len = scratch->len;
        if (out->msg_len > 0 && out->msg[out->msg_len - 1] == '\n')
          out->msg_len--;
        else
          out->partial = true;
      }
      have_log = true;
      p = ve + 1;
    } else if (p < end && *p == '"' && klen == 6 && memcmp(k, "stream", 6) == 0) {
      const char *v = p + 1;
      const char *ve = string_end(v, end);
      if (!ve)
        return NN_EINVAL;
      if (ve - v == 6 && memcmp(v, "stdout", 6) == 0)
        out->stream = NN_PARSE_STREAM_STDOUT;
      else if (ve - v == 6 && memcmp(v, "stderr", 6) == 0)
        out->stream = NN_PARSE_STREAM_STDERR;
      p = ve + 1;
    } else if (p < end && *p == '"' && klen == 4 && memcmp(k, "time", 4) == 0) {
      const char *v = p + 1;
      const char *ve = string_end(v, end);
      if (!ve)
        return NN_EINVAL;
      if (nn_parse_rfc3339(v, (size_t)(ve - v), &out->ts_ns) < 0)
        out->ts_ns = 0;
      p = ve + 1;
    } else {
      p = skip_value(p, end);
      if (!p)
        return NN_EINVAL;
    }
    p = skip_ws(p, end);
    if (p >= end)
      return NN_EINVAL;
    if (*p == '}')
      break;
    if (*p != ',')
      return NN_EINVAL;
    p = skip_ws(p + 1, end);
  }
  if (skip_ws(p + 1, end) != end || !have_log)
    return NN_EINVAL;
  return 0;
}
