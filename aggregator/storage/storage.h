/* SPDX-License-Identifier: Apache-2.0 */
/* The read interface between the query engine (promql, web) and the stores (tsdb):
 * label matchers, and a querier that selects series with their samples. Neither side
 * reaches into the other; the querier is a table of function pointers. */
#ifndef NN_AGGREGATOR_STORAGE_STORAGE_H
#define NN_AGGREGATOR_STORAGE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/labels.h"

/* The stale marker: a NaN with these exact bits, never produced otherwise. */
#define NN_STALE_NAN_BITS 0x7ff0000000000002ULL

enum nn_match_type { NN_MATCH_EQ, NN_MATCH_NE, NN_MATCH_RE, NN_MATCH_NRE };

struct nn_matcher {
  enum nn_match_type type;
  char *name;  /* owned */
  char *value; /* owned; for regex types the source text */
  void *re;    /* pcre2_code * compiled as ^(?:value)$, for NN_MATCH_RE / NN_MATCH_NRE */
  void *md;    /* pcre2_match_data * */
  bool empty;  /* whether it matches "" (nn_matcher_matches_empty), set by init */
  /* Scratch of the store that last selected with it (its symbol ids of name and value,
   * valid while that store's symbol generation is sym_gen), so that a query evaluated
   * again and again does not look its strings up each time. Zero after init. */
  const void *sym_owner;
  uint64_t sym_gen;
  uint32_t sym_name, sym_value;
};

/* Builds a matcher. Regexes are RE2-style and fully anchored. NN_EINVAL with a message
 * in err when the regex does not compile. */
int nn_matcher_init(struct nn_matcher *m, enum nn_match_type type, const char *name,
                    const char *value, char *err, size_t errlen);
void nn_matcher_fini(struct nn_matcher *m);
/* value is the label's value, or "" when the series lacks the label. */
bool nn_matcher_matches(const struct nn_matcher *m, const char *value);
/* True when the matcher matches the empty string (so it also selects series without the
 * label, as in Prometheus). */
bool nn_matcher_matches_empty(const struct nn_matcher *m);
bool nn_stale_nan(double v);
double nn_stale_nan_value(void);

/* One selected series: its labels and its samples in [mint, maxt], sorted by time. */
struct nn_series {
  const struct nn_label *labels;
  size_t nlabels;
  const int64_t *t; /* milliseconds since the epoch */
  const double *v;
  size_t n;
};

/* The result of a select; memory belongs to the set until release is called. */
struct nn_series_set {
  struct nn_series *series; /* sorted by label set */
  size_t n;
  void *priv;
  void (*release)(struct nn_series_set *set);
};

struct nn_strlist {
  char **v;
  size_t n;
};
void nn_strlist_free(struct nn_strlist *l);

/* Called once per series of a streamed select, in select's order (sorted by labels). The
 * series, its labels and its samples are valid only during the call. A negative return
 * stops the stream; select_stream returns it. */
typedef int (*nn_series_cb)(void *ud, const struct nn_series *s);

struct nn_select_hints {
  int64_t mint, maxt; /* inclusive, milliseconds */
  size_t max_samples; /* 0 = unlimited; beyond it select fails with NN_ELIMIT */
};

/* A read view of a store. Every function returns 0 or a negative NN_E* code. */
struct nn_querier {
  void *ctx;
  int (*select)(void *ctx, const struct nn_matcher *ms, size_t nms,
                const struct nn_select_hints *hints, struct nn_series_set *out);
  /* Sorted, unique label names of series matching ms (all series when nms == 0). */
  int (*label_names)(void *ctx, const struct nn_matcher *ms, size_t nms, int64_t mint, int64_t maxt,
                     struct nn_strlist *out);
  /* Sorted, unique values of label name among series matching ms. */
  int (*label_values)(void *ctx, const char *name, const struct nn_matcher *ms, size_t nms,
                      int64_t mint, int64_t maxt, struct nn_strlist *out);
  /* As select, but hands the series to fn one at a time, decoded into memory the store
   * reuses, so a select over many series holds one series' samples at a time.
   * hints->max_samples is not applied (the caller counts what it keeps). NULL when the
   * store has none: nn_querier_select_stream falls back to select. */
  int (*select_stream)(void *ctx, const struct nn_matcher *ms, size_t nms,
                       const struct nn_select_hints *hints, nn_series_cb fn, void *ud);
};

/* q->select_stream, or select followed by fn over each series of the set. */
int nn_querier_select_stream(const struct nn_querier *q, const struct nn_matcher *ms, size_t nms,
                             const struct nn_select_hints *hints, nn_series_cb fn, void *ud);

#endif
