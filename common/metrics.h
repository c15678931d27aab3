/* SPDX-License-Identifier: Apache-2.0 */
/* The self-metrics registry: counters, gauges and histograms that a program exposes on
 * /metrics in Prometheus text format 0.0.4. Updates are lock-free atomics, so worker
 * threads (fsync, compression) may update them while the loop thread renders. */
#ifndef NN_COMMON_METRICS_H
#define NN_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct nn_buf;
struct nn_metrics;
struct nn_metric;

enum nn_metric_type { NN_METRIC_COUNTER, NN_METRIC_GAUGE, NN_METRIC_HISTOGRAM };

/* Called at render time for a gauge or counter whose value lives elsewhere. */
typedef double (*nn_metric_value_fn)(void *ud);

struct nn_metrics *nn_metrics_create(void);
/* Frees the registry and every metric in it. NULL is a no-op. */
void nn_metrics_destroy(struct nn_metrics *m);

/* Registers one series. name must be a valid metric name; labels is either NULL or the
 * text inside braces, e.g. "reason=\"too_long\"" (copied). Series of one name share one
 * HELP/TYPE block, so register them with the same help and type. Returns NULL on OOM or
 * when name is invalid. */
struct nn_metric *nn_metrics_counter(struct nn_metrics *m, const char *name, const char *help,
                                     const char *labels);
struct nn_metric *nn_metrics_gauge(struct nn_metrics *m, const char *name, const char *help,
                                   const char *labels);
/* A histogram with nbuckets upper bounds in increasing order (+Inf is implied). */
struct nn_metric *nn_metrics_histogram(struct nn_metrics *m, const char *name, const char *help,
                                       const char *labels, const double *bounds, size_t nbuckets);
/* A counter or gauge read through fn at render time. */
struct nn_metric *nn_metrics_func(struct nn_metrics *m, enum nn_metric_type type, const char *name,
                                  const char *help, const char *labels, nn_metric_value_fn fn,
                                  void *ud);
/* Adds process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds, read from /proc at render time. */
int nn_metrics_add_process(struct nn_metrics *m);

void nn_metric_inc(struct nn_metric *c);
void nn_metric_add(struct nn_metric *c, double v);
void nn_metric_set(struct nn_metric *g, double v);
void nn_metric_observe(struct nn_metric *h, double v);
double nn_metric_value(const struct nn_metric *c);

/* Appends text-format families that live elsewhere (e.g. log-derived metrics) after the
 * registry's own. At most 8 collectors. */
typedef int (*nn_metrics_collector_fn)(void *ud, struct nn_buf *out);
int nn_metrics_add_collector(struct nn_metrics *m, nn_metrics_collector_fn fn, void *ud);

/* Renders every metric in text format 0.0.4, families sorted by name, then collectors. */
int nn_metrics_render(struct nn_metrics *m, struct nn_buf *out);
/* Formats v as Prometheus does in exposition (Go 'g'-style shortest, +Inf, -Inf, NaN). */
int nn_metrics_format_value(double v, char *buf, size_t len);

#endif
