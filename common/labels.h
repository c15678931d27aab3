/* SPDX-License-Identifier: Apache-2.0 */
/* Label sets in the one canonical form shared by agent and aggregator: sorted by name
 * (bytewise), no empty values, names following Prometheus's rules, values valid UTF-8,
 * hashed with xxh3 over "name\xffvalue\xff" pairs. */
#ifndef NN_COMMON_LABELS_H
#define NN_COMMON_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nn_buf;
struct nn_pool;

struct nn_label {
  const char *name; /* NUL-terminated; not owned */
  const char *value;
};

/* [a-zA-Z_][a-zA-Z0-9_]* */
bool nn_label_name_valid(const char *s, size_t n);
/* [a-zA-Z_:][a-zA-Z0-9_:]* */
bool nn_metric_name_valid(const char *s, size_t n);

/* Sorts by name and removes labels whose value is empty (Prometheus treats an empty
 * value as an absent label). Returns the new count. */
size_t nn_labels_canonicalize(struct nn_label *v, size_t n);
/* Checks a canonical set: valid names, no duplicates, sorted, UTF-8 values, __name__ a
 * valid metric name. On failure writes a message naming the label into err. */
int nn_labels_validate(const struct nn_label *v, size_t n, char *err, size_t errlen);
uint64_t nn_labels_hash(const struct nn_label *v, size_t n);
int nn_labels_cmp(const struct nn_label *a, size_t na, const struct nn_label *b, size_t nb);
/* Value of the label called name, or NULL. */
const char *nn_labels_get(const struct nn_label *v, size_t n, const char *name);
/* Writes {a="b", c="d"} with Go-style escaping of \ " and newline. */
int nn_labels_format(const struct nn_label *v, size_t n, struct nn_buf *out);
/* Parses the text form ({a="b", c="d"}, as in a Loki push stream) into pool memory.
 * The result is canonicalized. NN_EINVAL with a message in err on bad input. */
int nn_labels_parse(const char *s, size_t len, struct nn_pool *pool, struct nn_label **out,
                    size_t *n, char *err, size_t errlen);

#endif
