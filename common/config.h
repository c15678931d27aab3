/* SPDX-License-Identifier: Apache-2.0 */
/* Declarative configuration binding (Fluent Bit's config_map): a module describes its
 * options in a table of names, types and struct offsets, and the loader fills the struct
 * from YAML, applies defaults, and reports every mistake with file:line:col, the dotted
 * field path and, for an unknown key, the closest known one. */
#ifndef NN_COMMON_CONFIG_H
#define NN_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nn_buf;
struct nn_yaml_node;

enum nn_cfg_type {
  NN_CFG_STR,      /* char * (heap, NUL-terminated) */
  NN_CFG_BOOL,     /* bool: true/false (also True, TRUE) */
  NN_CFG_INT,      /* int64_t: decimal or 0x hex */
  NN_CFG_DOUBLE,   /* double: YAML float syntax, .inf and .nan included */
  NN_CFG_DURATION, /* int64_t milliseconds, Prometheus syntax ("1h30m") */
  NN_CFG_SIZE,     /* uint64_t bytes ("512MB", "1GiB", "4096") */
  NN_CFG_STRLIST,  /* struct nn_cfg_strlist: a sequence of scalars */
  NN_CFG_STRMAP,   /* struct nn_cfg_strmap: a map of scalar to scalar (labels) */
  NN_CFG_SECTION,  /* a struct embedded at offset, described by sub */
  NN_CFG_LIST,     /* struct nn_cfg_list: a sequence of maps, each an elem_size struct bound
                      with sub */
  NN_CFG_CUSTOM,   /* custom() parses the node into the field at offset */
};

/* Option flags. */
#define NN_CFG_REQUIRED 0x1u /* the key must be present */
/* The value may also come from "<name>_file: path" (a regular file of at most 1 MiB, its
 * content whitespace-trimmed; a relative path is taken from the directory of the YAML file
 * that names it) or contain ${ENV_VAR} references (unset variables are errors; "$${" is a
 * literal "${"). For scalar types only. */
#define NN_CFG_SECRET 0x2u

struct nn_cfg_strlist {
  char **v;
  size_t n;
};

struct nn_cfg_strmap {
  char **keys; /* in document order */
  char **values;
  size_t n;
};

struct nn_cfg_list {
  void *items; /* n structs of the option's elem_size, heap */
  size_t n;
};

struct nn_cfg_error {
  char file[512];
  int line, col;   /* 1-based; 0 when unknown */
  char field[256]; /* dotted path: shipper.urls[2].timeout */
  char msg[512];
};

/* Parses node into dst (the field at the option's offset). On failure return a negative code
 * and describe the problem with nn_cfg_error_set; the binder fills in file and field. dst
 * holds the previous value (zero or an earlier one): release it before overwriting. */
typedef int (*nn_cfg_custom_fn)(const struct nn_yaml_node *node, void *dst,
                                struct nn_cfg_error *err);
/* Releases what a custom parser allocated in dst and zeroes it. */
typedef void (*nn_cfg_custom_free_fn)(void *dst);

struct nn_cfg_option {
  const char *name; /* NULL name ends the table */
  enum nn_cfg_type type;
  size_t offset;
  /* Default as text: scalars in their YAML syntax ("5m", "true"), STR literally, STRLIST /
   * STRMAP / CUSTOM as YAML ("[a, b]", "{k: v}"). NULL: zero / empty. Not for SECTION or
   * LIST (their sub tables carry the defaults). */
  const char *def;
  const char *help;
  const struct nn_cfg_option *sub; /* SECTION and LIST */
  size_t elem_size;                /* LIST */
  unsigned flags;
  nn_cfg_custom_fn custom;
  nn_cfg_custom_free_fn custom_free; /* CUSTOM, optional */
};

/* Sets every option of table (sections included) in dst to its default, releasing values
 * dst held. dst must be zeroed or hold values set through this table. NN_ECONFIG if a
 * default does not parse (a bug in the table), with the field named in err. */
int nn_cfg_apply_defaults(const struct nn_cfg_option *table, void *dst, struct nn_cfg_error *err);
/* Applies defaults, then binds the map node (a NULL node counts as an empty map) into dst.
 * Unknown keys, type errors and missing REQUIRED keys fail with NN_ECONFIG and a
 * positioned message in err. dst as for nn_cfg_apply_defaults; on failure it may be half
 * filled: release it with nn_cfg_free. */
int nn_cfg_bind(const struct nn_yaml_node *node, const struct nn_cfg_option *table, void *dst,
                struct nn_cfg_error *err);
/* Loads a one-document YAML file (or text) and binds its root as nn_cfg_bind does. YAML
 * syntax errors and I/O errors are reported in err too (their own codes are returned). */
int nn_cfg_load_file(const char *path, const struct nn_cfg_option *table, void *dst,
                     struct nn_cfg_error *err);
int nn_cfg_load_string(const char *name, const char *text, size_t len,
                       const struct nn_cfg_option *table, void *dst, struct nn_cfg_error *err);
/* Frees every string, list and map the loader allocated in dst and zeroes those fields. Safe
 * on a zeroed or half-filled struct; scalar fields are left alone. */
void nn_cfg_free(const struct nn_cfg_option *table, void *dst);

/* For custom parsers: records node's position and a message in err. Returns NN_ECONFIG. */
int nn_cfg_error_set(struct nn_cfg_error *err, const struct nn_yaml_node *node, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));
/* Writes `file:line:col: field "x.y": message` (parts without a value are left out). Returns
 * the length the full text needs, like snprintf. */
int nn_cfg_error_format(const struct nn_cfg_error *err, char *buf, size_t len);

/* Documents every option of table, nested ones indented, with type, default, flags and
 * help text, for --help output and generated docs. */
int nn_cfg_write_help(const struct nn_cfg_option *table, struct nn_buf *out);

/* Value of key in m, or NULL. */
const char *nn_cfg_strmap_get(const struct nn_cfg_strmap *m, const char *key);

#endif
