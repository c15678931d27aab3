/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, at most U+10FFFF). */
#ifndef NN_COMMON_UTF8_H
#define NN_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when all n bytes of s are valid UTF-8. */
bool nn_utf8_valid(const char *s, size_t n);
/* Length (1-4) of the valid code point starting at s, or 0 when it is invalid. */
size_t nn_utf8_valid_prefix(const char *s, size_t n);

#endif
