/* SPDX-License-Identifier: Apache-2.0 */
/* YAML documents as a small read-only tree that remembers where every node came from, so a
 * configuration error can point at file:line:col. Built on libyaml's event parser with hard
 * caps on input size, nesting depth and node count (aliases included, which defeats
 * "billion laughs" documents). */
#ifndef NN_COMMON_YAML_H
#define NN_COMMON_YAML_H

#include <stdbool.h>
#include <stddef.h>

enum nn_yaml_kind {
  NN_YAML_NULL,   /* empty value, ~, null, Null, NULL (plain, untagged) or !!null */
  NN_YAML_SCALAR, /* anything else that is not a collection */
  NN_YAML_MAP,
  NN_YAML_SEQ,
};

struct nn_yaml_node {
  enum nn_yaml_kind kind;
  const char *file; /* name given to the loader; lives as long as the document */
  int line, col;    /* 1-based start of the node */
  /* SCALAR and NULL: the text, NUL-terminated (may contain NUL bytes from "\0" escapes,
   * hence scalar_len). "" for an empty value. NULL for collections. */
  char *scalar;
  size_t scalar_len;
  /* True for quoted and block (| >) scalars and for an explicit !!str tag: YAML types these
   * as strings, never as numbers, booleans or null. */
  bool quoted;
  const char *tag;             /* explicit tag, resolved ("tag:yaml.org,2002:str"), or NULL */
  size_t len;                  /* MAP: number of pairs; SEQ: number of items; else 0 */
  struct nn_yaml_node **keys;  /* MAP: keys[i] maps to items[i] */
  struct nn_yaml_node **items; /* MAP values or SEQ items */
  size_t weight; /* nodes reached walking this subtree, alias targets counted per use */
  size_t height; /* 0 for scalars, 1 + tallest child for collections */
};

/* A parsed file. Aliases point at their anchor's node, so the tree is a DAG: walk it, never
 * free nodes individually. All memory belongs to the document. */
struct nn_yaml_doc {
  const char *name;
  struct nn_yaml_node *root;   /* first document; a NULL node for an empty input */
  struct nn_yaml_node **roots; /* every document when loaded with NN_YAML_MULTI_DOC */
  size_t nroots;
};

struct nn_yaml_error {
  char file[512];
  int line, col; /* 1-based; 0 when the error has no position (I/O) */
  char msg[512];
};

/* Loader options; a zero field means its default. */
#define NN_YAML_MULTI_DOC         0x1u /* accept "---" separated documents */
#define NN_YAML_DEFAULT_MAX_BYTES ((size_t)16 << 20)
#define NN_YAML_DEFAULT_MAX_DEPTH 64
#define NN_YAML_DEFAULT_MAX_NODES ((size_t)1 << 20)

struct nn_yaml_opts {
  unsigned flags;
  size_t max_bytes; /* input size */
  size_t max_depth; /* nesting of maps and sequences, through aliases too (at most 1024) */
  size_t max_nodes; /* nodes a full walk visits, each use of an alias counted in full */
};

/* Parses one YAML document from text[0..len). name labels positions in errors and nodes.
 * A second document, a duplicate map key, an undefined or recursive alias, or a cap being
 * reached is an error. On failure *out is NULL, err (if not NULL) holds file:line:col and a
 * message, and the result is NN_EINVAL (syntax), NN_ETOOBIG / NN_ELIMIT (caps) or
 * NN_ENOMEM. Plain "<<" keys merge maps as in YAML 1.1 (explicit keys win). */
int nn_yaml_load_string(const char *name, const char *text, size_t len, struct nn_yaml_doc **out,
                        struct nn_yaml_error *err);
/* As nn_yaml_load_string, reading path (at most max_bytes of it; larger is NN_ETOOBIG). I/O
 * failures return a negated errno. */
int nn_yaml_load_file(const char *path, struct nn_yaml_doc **out, struct nn_yaml_error *err);
/* Both loaders with explicit options; opts may be NULL. */
int nn_yaml_load_string_opts(const char *name, const char *text, size_t len,
                             const struct nn_yaml_opts *opts, struct nn_yaml_doc **out,
                             struct nn_yaml_error *err);
int nn_yaml_load_file_opts(const char *path, const struct nn_yaml_opts *opts,
                           struct nn_yaml_doc **out, struct nn_yaml_error *err);
/* Frees the document and every node; NULL is a no-op. */
void nn_yaml_doc_destroy(struct nn_yaml_doc *doc);

/* Value for key in a MAP whose key is a scalar equal to key, or NULL (also when node is NULL
 * or not a map). */
const struct nn_yaml_node *nn_yaml_map_get(const struct nn_yaml_node *map, const char *key);
const struct nn_yaml_node *nn_yaml_map_getn(const struct nn_yaml_node *map, const char *key,
                                            size_t keylen);
/* Pairs of a MAP and items of a SEQ by index; NULL when out of range or the wrong kind. */
const struct nn_yaml_node *nn_yaml_map_key(const struct nn_yaml_node *map, size_t i);
const struct nn_yaml_node *nn_yaml_map_value(const struct nn_yaml_node *map, size_t i);
const struct nn_yaml_node *nn_yaml_seq_item(const struct nn_yaml_node *seq, size_t i);
/* Number of pairs or items; 0 for scalars and NULL. */
size_t nn_yaml_len(const struct nn_yaml_node *node);
/* True when node is a SCALAR or NULL whose text is exactly s. */
bool nn_yaml_scalar_eq(const struct nn_yaml_node *node, const char *s);
/* "null", "scalar", "map" or "sequence", for messages. */
const char *nn_yaml_kind_name(enum nn_yaml_kind kind);

/* Writes "file:line:col: msg" (the position parts only when known). Returns the length the
 * full text needs, like snprintf. */
int nn_yaml_error_format(const struct nn_yaml_error *err, char *buf, size_t len);

#endif
