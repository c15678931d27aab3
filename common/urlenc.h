/* SPDX-License-Identifier: Apache-2.0 */
/* URL query and form encoding with Go's net/url semantics (url.ParseQuery, QueryUnescape,
 * QueryEscape), so that the HTTP API accepts and produces exactly what Prometheus clients
 * and servers do: '&' separates pairs, ';' is rejected, '+' is a space, and a malformed
 * %-escape is an error rather than a literal. */
#ifndef NN_COMMON_URLENC_H
#define NN_COMMON_URLENC_H

#include <stdbool.h>
#include <stddef.h>

struct nn_buf;
struct nn_pool;

/* One decoded name=value pair. Both strings are NUL-terminated and live in the pool they
 * were parsed into; *_len count bytes, since a decoded %00 may be embedded. */
struct nn_urlenc_param {
  const char *name;
  const char *value;
  size_t name_len;
  size_t value_len;
};

/* Decodes %XX escapes in s[0..n) and appends the result to out. With plus_as_space, '+'
 * becomes ' ' (query and form components). NN_EINVAL on a '%' not followed by two hex
 * digits (out is then unchanged); NN_ETOOBIG past out's cap. */
int nn_urlenc_unescape(const char *s, size_t n, bool plus_as_space, struct nn_buf *out);

/* Appends s[0..n) escaped as a query component (Go's url.QueryEscape): [A-Za-z0-9-_.~]
 * stay, space becomes '+', every other byte becomes %XX (upper-case hex). */
int nn_urlenc_escape(const char *s, size_t n, struct nn_buf *out);

/* Parses a query string or an application/x-www-form-urlencoded body (url.ParseQuery):
 * pairs split on '&', empty pairs skipped, a pair without '=' has the value "", repeated
 * names are kept in order (Prometheus match[]). Results go into pool memory.
 * Like Go, a bad pair (invalid %-escape, or a ';' anywhere in it) is skipped and parsing
 * goes on: the good pairs are returned and the result is NN_EINVAL. NN_ENOMEM when the
 * pool cap is reached (then *out and *count are not set). */
int nn_urlenc_parse(const char *s, size_t n, struct nn_pool *pool, struct nn_urlenc_param **out,
                    size_t *count);

/* The value of the first pair called name, or NULL (Go's Values.Get). */
const char *nn_urlenc_get(const struct nn_urlenc_param *params, size_t count, const char *name);

#endif
