/* SPDX-License-Identifier: Apache-2.0 */
/* Streaming parser for the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0, as
 * Prometheus's textparse reads them. One callback per sample with its labels (__name__
 * first, the rest sorted by name) and one per HELP/TYPE/UNIT line. The parser keeps its
 * scratch memory between calls, so parsing a scrape allocates nothing per sample. */
#ifndef NN_AGENT_EXPFMT_EXPFMT_H
#define NN_AGENT_EXPFMT_EXPFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/labels.h"

enum nn_expfmt_format {
  NN_EXPFMT_TEXT,        /* text/plain; version=0.0.4 (and anything unrecognised) */
  NN_EXPFMT_OPENMETRICS, /* application/openmetrics-text */
};

/* Same numbering as remote write's MetricMetadata.MetricType. */
enum nn_expfmt_type {
  NN_EXPFMT_UNKNOWN = 0, /* also "untyped" and samples of no declared family */
  NN_EXPFMT_COUNTER = 1,
  NN_EXPFMT_GAUGE = 2,
  NN_EXPFMT_HISTOGRAM = 3,
  NN_EXPFMT_GAUGEHISTOGRAM = 4,
  NN_EXPFMT_SUMMARY = 5,
  NN_EXPFMT_INFO = 6,
  NN_EXPFMT_STATESET = 7,
};

/* The Accept header Prometheus sends when scraping. */
#define NN_EXPFMT_ACCEPT                                                                           \
  "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"  \
  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

/* Valid only during the callback. */
struct nn_expfmt_sample {
  const struct nn_label *labels; /* labels[0] is __name__, the rest sorted, no duplicates */
  size_t nlabels;
  double value;
  bool has_ts;
  int64_t ts_ms;            /* milliseconds; OpenMetrics seconds are converted */
  enum nn_expfmt_type type; /* of the family declared by the last TYPE line, if it matches */
  const char *family;       /* that family's name, or NULL */
  uint32_t line;
  /* The metric name and label block exactly as written (not NUL-terminated): equal text
   * always parses to equal labels, so a caller can key a cache by it. */
  const char *series;
  size_t series_len;
};

enum nn_expfmt_meta_kind { NN_EXPFMT_META_HELP, NN_EXPFMT_META_TYPE, NN_EXPFMT_META_UNIT };

/* Valid only during the callback. */
struct nn_expfmt_meta {
  enum nn_expfmt_meta_kind kind;
  const char *family;
  const char *text; /* HELP (unescaped) or UNIT text, NUL-terminated; "" for TYPE */
  size_t text_len;
  enum nn_expfmt_type type; /* TYPE only */
};

/* on_series returns this to have the sample's labels parsed and on_sample called. */
#define NN_EXPFMT_PARSE_LABELS 1

/* A callback returning non-zero stops the parse; nn_expfmt_parse then returns that value. */
struct nn_expfmt_handler {
  int (*on_sample)(void *ud, const struct nn_expfmt_sample *s);
  int (*on_meta)(void *ud, const struct nn_expfmt_meta *m); /* may be NULL */
  /* Optional fast path for scrapers that see the same lines every time: called first for
   * each sample with series/series_len set, labels NULL and nlabels 0; the label block is
   * only delimited, not checked. Return 0 when done with the sample, NN_EXPFMT_PARSE_LABELS
   * to have it parsed and checked in full and passed to on_sample (the usual path), or
   * another value to stop. Return 0 only for series text on_sample received earlier in the
   * same format: only then is it known to be valid. */
  int (*on_series)(void *ud, const struct nn_expfmt_sample *s);
};

struct nn_expfmt_parser;

/* max_labels caps the labels of one sample (0 = 1024). NULL on out-of-memory. */
struct nn_expfmt_parser *nn_expfmt_parser_create(size_t max_labels);
void nn_expfmt_parser_destroy(struct nn_expfmt_parser *p);

/* Parses data[0..len) in format fmt. Returns 0, NN_EINVAL on malformed input (see
 * nn_expfmt_parser_error), NN_ELIMIT past max_labels, NN_ENOMEM, or a callback's value.
 * Samples before the error have already been delivered: a caller that wants all or nothing
 * buffers them. OpenMetrics `_created` series of counters, histograms and summaries are
 * skipped, and exemplars are checked and dropped, as Prometheus does by default. */
int nn_expfmt_parse(struct nn_expfmt_parser *p, enum nn_expfmt_format fmt, const char *data,
                    size_t len, const struct nn_expfmt_handler *h, void *ud);

/* "line:col: message" for the last failed parse, "" if none. */
const char *nn_expfmt_parser_error(const struct nn_expfmt_parser *p);

/* The format a Content-Type header announces (NULL counts as text). */
enum nn_expfmt_format nn_expfmt_format_from_content_type(const char *content_type);

/* "counter", "gauge", ... ("unknown" for NN_EXPFMT_UNKNOWN). */
const char *nn_expfmt_type_name(enum nn_expfmt_type t);

#endif
