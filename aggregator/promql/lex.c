/* SPDX-License-Identifier: Apache-2.0 */
/* The PromQL lexer: turns a query into tokens with byte positions, and the literal helpers
 * (durations, Go-style string quoting) shared by the parser and the printer. */
#include <stdio.h>
#include <stdlib.h>

#include "aggregator/promql/internal.h"
#include "common/buf.h"
#include "common/error.h"

static bool is_alpha(int c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c)
{
  return c >= '0' && c <= '9';
}

static bool is_space(int c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int push(struct nn__promql_tokens *t, int type, size_t pos, size_t len, const char *msg)
{
  if (t->n == t->cap) {
    size_t nc = t->cap ? t->cap * 2 : 32;
    struct nn__promql_token *nv = realloc(t->v, nc * sizeof(*nv));
    if (!nv)
      return NN_ENOMEM;
    t->v = nv;
    t->cap = nc;
  }
  t->v[t->n++] = (struct nn__promql_token){type, (uint32_t)pos, (uint32_t)len, msg};
  return 0;
}

static bool is_unit_start(const char *q, size_t len, size_t i)
{
  if (i >= len)
    return false;
  switch (q[i]) {
  case 's':
  case 'h':
  case 'd':
  case 'w':
  case 'y': return true;
  case 'm': return true;
  default: return false;
  }
}

/* Scans a number (decimal, hex, exponent, digit underscores). Returns the end offset. */
static size_t scan_number(const char *q, size_t len, size_t i)
{
  if (i + 1 < len && q[i] == '0' && (q[i + 1] == 'x' || q[i + 1] == 'X')) {
    i += 2;
    while (i < len && (is_digit(q[i]) || (q[i] >= 'a' && q[i] <= 'f') ||
                       (q[i] >= 'A' && q[i] <= 'F') || q[i] == '_'))
      i++;
    return i;
  }
  while (i < len && (is_digit(q[i]) || q[i] == '_'))
    i++;
  if (i < len && q[i] == '.') {
    i++;
    while (i < len && (is_digit(q[i]) || q[i] == '_'))
      i++;
  }
  if (i < len && (q[i] == 'e' || q[i] == 'E')) {
    size_t j = i + 1;
    if (j < len && (q[j] == '+' || q[j] == '-'))
      j++;
    if (j < len && is_digit(q[j])) {
      i = j;
      while (i < len && is_digit(q[i]))
        i++;
    }
  }
  return i;
}

/* Scans a duration made of <digits><unit> groups starting at i. Returns the end or 0. */
static size_t scan_duration(const char *q, size_t len, size_t i)
{
  size_t start = i;
  while (i < len && is_digit(q[i])) {
    while (i < len && is_digit(q[i]))
      i++;
    if (!is_unit_start(q, len, i))
      return 0;
    if (q[i] == 'm' && i + 1 < len && q[i + 1] == 's')
      i += 2;
    else
      i++;
  }
  return i > start ? i : 0;
}

int nn__promql_lex(const char *q, size_t len, struct nn__promql_tokens *t)
{
  int paren = 0, bracket = 0, brace = 0;
  size_t i = 0;
  int rc;
#define PUSH(type, p, l)                                                                           \
  do {                                                                                             \
    if ((rc = push(t, type, p, l, NULL)) < 0)                                                      \
      return rc;                                                                                   \
  } while (0)
#define ERR(p, m) return push(t, TK_ERROR, p, 0, m)
  for (;;) {
    while (i < len && is_space((unsigned char)q[i]))
      i++;
    if (i < len && q[i] == '#') {
      while (i < len && q[i] != '\n')
        i++;
      continue;
    }
    if (i >= len) {
      if (brace)
        ERR(i, "unexpected end of input inside braces");
      if (bracket)
        ERR(i, "unclosed left bracket");
      if (paren)
        ERR(i, "unclosed left parenthesis");
      PUSH(TK_EOF, i, 0);
      return 0;
    }
    unsigned char c = (unsigned char)q[i];
    size_t s = i;
    if (is_digit(c) || (c == '.' && i + 1 < len && is_digit((unsigned char)q[i + 1]))) {
      size_t d = is_digit(c) ? scan_duration(q, len, i) : 0;
      size_t e = scan_number(q, len, i);
      if (d > e) {
        if (d < len && (is_alpha((unsigned char)q[d]) || is_digit((unsigned char)q[d])))
          ERR(s, "bad number or duration syntax");
        PUSH(TK_DURATION, s, d - s);
        i = d;
        continue;
      }
      if (e < len && (is_alpha((unsigned char)q[e]) || q[e] == '.'))
        ERR(s, "bad number or duration syntax");
      PUSH(TK_NUMBER, s, e - s);
      i = e;
      continue;
    }
    if (is_alpha(c) || (c == ':' && !bracket && !brace)) {
      while (i < len && (is_alpha((unsigned char)q[i]) || is_digit((unsigned char)q[i]) ||
                         (q[i] == ':' && !bracket && !brace)))
        i++;
      PUSH(TK_IDENT, s, i - s);
      continue;
    }
    if (c == '"' || c == '\'' || c == '`') {
      i++;
      while (i < len && (unsigned char)q[i] != c) {
        if (c != '`' && q[i] == '\\' && i + 1 < len)
          i++;
        else if (c != '`' && q[i] == '\n')
          ERR(s, "unterminated quoted string");
        i++;
      }
      if (i >= len)
        ERR(s, c == '`' ? "unterminated raw string" : "unterminated quoted string");
      i++;
      PUSH(TK_STRING, s, i - s);
      continue;
    }
    i++;
    int two = i < len ? q[i] : 0;
    switch (c) {
    case '(':
      paren++;
      PUSH(TK_LPAREN, s, 1);
      break;
    case ')':
      if (--paren < 0)
        ERR(s, "unexpected right parenthesis ')'");
      PUSH(TK_RPAREN, s, 1);
      break;
    case '{':
      if (brace)
        ERR(s, "unexpected left brace '{' inside braces");
      brace++;
      PUSH(TK_LBRACE, s, 1);
      break;
    case '}':
      if (!brace)
        ERR(s, "unexpected right brace '}'");
      brace--;
      PUSH(TK_RBRACE, s, 1);
      break;
    case '[':
      if (bracket)
        ERR(s, "unexpected left bracket '['");
      bracket++;
      PUSH(TK_LBRACKET, s, 1);
      break;
    case ']':
      if (!bracket)
        ERR(s, "unexpected right bracket ']'");
      bracket--;
      PUSH(TK_RBRACKET, s, 1);
      break;
    case ',': PUSH(TK_COMMA, s, 1); break;
    case ':': PUSH(TK_COLON, s, 1); break;
    case '+': PUSH(TK_ADD, s, 1); break;
    case '-': PUSH(TK_SUB, s, 1); break;
    case '*': PUSH(TK_MUL, s, 1); break;
    case '/': PUSH(TK_DIV, s, 1); break;
    case '%': PUSH(TK_MOD, s, 1); break;
    case '^': PUSH(TK_POW, s, 1); break;
    case '@': PUSH(TK_AT, s, 1); break;
    case '=':
      if (two == '=') {
        i++;
        PUSH(TK_EQLC, s, 2);
      } else if (two == '~') {
        i++;
        PUSH(TK_EQL_REGEX, s, 2);
      } else {
        PUSH(TK_ASSIGN, s, 1);
      }
      break;
    case '!':
      if (two == '=') {
        i++;
        PUSH(TK_NEQ, s, 2);
      } else if (two == '~') {
        i++;
        PUSH(TK_NEQ_REGEX, s, 2);
      } else {
        ERR(s, "unexpected character after '!'");
      }
      break;
    case '<':
      if (two == '=') {
        i++;
        PUSH(TK_LTE, s, 2);
      } else {
        PUSH(TK_LSS, s, 1);
      }
      break;
    case '>':
      if (two == '=') {
        i++;
        PUSH(TK_GTE, s, 2);
      } else {
        PUSH(TK_GTR, s, 1);
      }
      break;
    default: ERR(s, "unexpected character");
    }
  }
#undef PUSH
#undef ERR
}

bool nn__promql_parse_duration(const char *s, size_t n, int64_t *ms)
{
  static const struct {
    const char *u;
    int64_t mult;
  } units[] = {{"y", 365LL * 24 * 3600 * 1000},
               {"w", 7LL * 24 * 3600 * 1000},
               {"d", 24LL * 3600 * 1000},
               {"h", 3600LL * 1000},
               {"m", 60LL * 1000},
               {"s", 1000},
               {"ms", 1}};
  if (n == 1 && s[0] == '0') {
    *ms = 0;
    return true;
  }
  size_t i = 0, next_unit = 0;
  int64_t total = 0;
  if (n == 0)
    return false;
  while (i < n) {
    if (!is_digit((unsigned char)s[i]))
      return false;
    int64_t v = 0;
    while (i < n && is_digit((unsigned char)s[i])) {
      if (v > INT64_MAX / 10)
        return false;
      v = v * 10 + (s[i] - '0');
      i++;
    }
    size_t ul = (i + 1 < n && s[i] == 'm' && s[i + 1] == 's') ? 2 : 1;
    if (i >= n)
      return false;
    size_t u;
    for (u = next_unit; u < 7; u++)
      if (strlen(units[u].u) == ul && memcmp(units[u].u, s + i, ul) == 0)
        break;
    if (u == 7)
      return false;
    next_unit = u + 1;
    i += ul;
    if (v > INT64_MAX / units[u].mult || total > INT64_MAX - v * units[u].mult)
      return false;
    total += v * units[u].mult;
  }
  *ms = total;
  return true;
}

static int hexval(int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static size_t put_utf8(char *o, uint32_t cp)
{
  if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    cp = 0xfffd;
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

char *nn__promql_unquote(struct nn_pool *p, const char *s, size_t n, const char **msg)
{
  char q = s[0];
  char *out = nn_pool_alloc(p, n + 4);
  if (!out) {
    *msg = "out of memory";
    return NULL;
  }
  size_t o = 0;
  if (q == '`') {
    memcpy(out, s + 1, n - 2);
    out[n - 2] = 0;
    if (memchr(out, 0, n - 2)) {
      *msg = "string must not contain a NUL byte";
      return NULL;
    }
    return out;
  }
  for (size_t i = 1; i + 1 < n; i++) {
    if (s[i] != '\\') {
      out[o++] = s[i];
      continue;
    }
    i++;
    if (i + 1 >= n + 0 && i >= n - 1) {
      *msg = "unknown escape sequence";
      return NULL;
    }
    char c = s[i];
    switch (c) {
    case 'a': out[o++] = '\a'; break;
    case 'b': out[o++] = '\b'; break;
    case 'f': out[o++] = '\f'; break;
    case 'n': out[o++] = '\n'; break;
    case 'r': out[o++] = '\r'; break;
    case 't': out[o++] = '\t'; break;
    case 'v': out[o++] = '\v'; break;
    case '\\': out[o++] = '\\'; break;
    case '"':
    case '\'':
      if (c != q) {
        *msg = "unknown escape sequence";
        return NULL;
      }
      out[o++] = c;
      break;
    case 'x':
    case 'u':
    case 'U': {
      size_t nd = c == 'x' ? 2 : c == 'u' ? 4 : 8;
      uint32_t v = 0;
      if (i + nd >= n) {
        *msg = "unknown escape sequence";
        return NULL;
      }
      for (size_t k = 1; k <= nd; k++) {
        int h = hexval((unsigned char)s[i + k]);
        if (h < 0) {
          *msg = "unknown escape sequence";
          return NULL;
        }
        v = v * 16 + (uint32_t)h;
      }
      i += nd;
      if (c == 'x')
        out[o++] = (char)v;
      else
        o += put_utf8(out + o, v);
      break;
    }
    default:
      if (c >= '0' && c <= '7') {
        uint32_t v = 0;
        if (i + 3 > n - 1) {
          *msg = "unknown escape sequence";
          return NULL;
        }
        for (size_t k = 0; k < 3; k++) {
          char d = s[i + k];
          if (d < '0' || d > '7') {
            *msg = "unknown escape sequence";
            return NULL;
          }
          v = v * 8 + (uint32_t)(d - '0');
        }
        if (v > 255) {
          *msg = "unknown escape sequence";
          return NULL;
        }
        i += 2;
        out[o++] = (char)v;
        break;
      }
      *msg = "unknown escape sequence";
      return NULL;
    }
  }
  out[o] = 0;
  if (memchr(out, 0, o)) {
    *msg = "string must not contain a NUL byte";
    return NULL;
  }
  return out;
}

/* Decodes one UTF-8 sequence; returns its length or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  size_t l;
  uint32_t v;
  if ((s[0] & 0xe0) == 0xc0) {
    l = 2;
    v = s[0] & 0x1f;
  } else if ((s[0] & 0xf0) == 0xe0) {
    l = 3;
    v = s[0] & 0x0f;
  } else if ((s[0] & 0xf8) == 0xf0) {
    l = 4;
    v = s[0] & 0x07;
  } else {
    return 0;
  }
  if (l > n)
    return 0;
  for (size_t i = 1; i < l; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3f);
  }
  if ((l == 2 && v < 0x80) || (l == 3 && v < 0x800) || (l == 4 && (v < 0x10000 || v > 0x10ffff)) ||
      (v >= 0xd800 && v <= 0xdfff))
    return 0;
  *cp = v;
  return l;
}

int nn__promql_quote(struct nn_buf *b, const char *s)
{
  int rc;
  size_t n = strlen(s);
  if ((rc = nn_buf_appendc(b, '"')) < 0)
    return rc;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    uint32_t cp;
    size_t l = utf8_len((const unsigned char *)s + i, n - i, &cp);
    if (l == 0) {
      rc = nn_buf_printf(b, "\\x%02x", c);
      i++;
    } else if (l > 1) {
      rc = nn_buf_append(b, s + i, l);
      i += l;
    } else {
      i++;
      switch (c) {
      case '"': rc = nn_buf_appends(b, "\\\""); break;
      case '\\': rc = nn_buf_appends(b, "\\\\"); break;
      case '\n': rc = nn_buf_appends(b, "\\n"); break;
      case '\r': rc = nn_buf_appends(b, "\\r"); break;
      case '\t': rc = nn_buf_appends(b, "\\t"); break;
      case '\a': rc = nn_buf_appends(b, "\\a"); break;
      case '\b': rc = nn_buf_appends(b, "\\b"); break;
      case '\f': rc = nn_buf_appends(b, "\\f"); break;
      case '\v': rc = nn_buf_appends(b, "\\v"); break;
      default:
        if (c < 0x20 || c == 0x7f)
          rc = nn_buf_printf(b, "\\x%02x", c);
        else
          rc = nn_buf_appendc(b, (char)c);
      }
    }
    if (rc < 0)
      return rc;
  }
  return nn_buf_appendc(b, '"');
}

int nn__promql_print_duration(struct nn_buf *b, int64_t ms)
{
  static const struct {
    const char *u;
    int64_t mult;
    bool exact;
  } units[] = {{"y", 365LL * 24 * 3600 * 1000, true},
               {"w", 7LL * 24 * 3600 * 1000, true},
               {"d", 24LL * 3600 * 1000, false},
               {"h", 3600LL * 1000, false},
               {"m", 60LL * 1000, false},
               {"s", 1000, false},
               {"ms", 1, false}};
  int rc;
  if (ms == 0)
    return nn_buf_appends(b, "0s");
  for (size_t i = 0; i < 7; i++) {
    if (units[i].exact && ms % units[i].mult != 0)
      continue;
    int64_t v = ms / units[i].mult;
    if (v > 0) {
      if ((rc = nn_buf_printf(b, "%lld%s", (long long)v, units[i].u)) < 0)
        return rc;
      ms -= v * units[i].mult;
    }
  }
  return 0;
}
