/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer with a hard cap (curl's dynbuf). Every buffer fed by the network
 * or a file uses one, so no input can grow memory past its cap. */
#ifndef NN_COMMON_BUF_H
#define NN_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct nn_buf {
  char *data; /* always NUL-terminated after a successful append (not counted in len) */
  size_t len;
  size_t cap;
  size_t max; /* hard cap on len; appends past it fail with NN_ETOOBIG */
};

/* Prepares an empty buffer that may hold up to max bytes. Allocates nothing. */
void nn_buf_init(struct nn_buf *b, size_t max);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void nn_buf_fini(struct nn_buf *b);
/* Empties the buffer but keeps its storage. */
void nn_buf_reset(struct nn_buf *b);
/* Makes room for n more bytes. NN_ETOOBIG past max, NN_ENOMEM on allocation failure. */
int nn_buf_reserve(struct nn_buf *b, size_t n);
int nn_buf_append(struct nn_buf *b, const void *p, size_t n);
int nn_buf_appends(struct nn_buf *b, const char *s);
int nn_buf_appendc(struct nn_buf *b, char c);
int nn_buf_printf(struct nn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int nn_buf_vprintf(struct nn_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Appends s as a JSON string literal, quotes included. Invalid UTF-8 becomes U+FFFD. */
int nn_buf_append_json_str(struct nn_buf *b, const char *s, size_t n);
/* Hands the storage to the caller (who frees it) and leaves b empty. */
char *nn_buf_steal(struct nn_buf *b, size_t *len);

#endif
