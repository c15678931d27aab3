/* SPDX-License-Identifier: Apache-2.0 */
/* Self-metrics. Values are doubles stored as atomic 64-bit patterns so that updates from
 * any thread need no lock; histograms keep atomic per-bucket counts. */
#include "common/metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/labels.h"

struct nn_metric {
  struct nn_metric *next;
  enum nn_metric_type type;
  char *name;
  char *help;
  char *labels;
  _Atomic uint64_t bits; /* a double's bits: counter/gauge value, or histogram sum */
  nn_metric_value_fn fn;
  void *ud;
  size_t nbuckets;
  double *bounds;
  _Atomic uint64_t *counts; /* nbuckets + 1 (the +Inf bucket) */
};

#define MAX_COLLECTORS 8

struct nn_metrics {
  struct nn_metric *head;
  size_t n;
  struct {
    nn_metrics_collector_fn fn;
    void *ud;
  } collectors[MAX_COLLECTORS];
  size_t ncollectors;
};

int nn_metrics_add_collector(struct nn_metrics *m, nn_metrics_collector_fn fn, void *ud)
{
  if (m->ncollectors == MAX_COLLECTORS)
    return NN_ELIMIT;
  m->collectors[m->ncollectors].fn = fn;
  m->collectors[m->ncollectors].ud = ud;
  m->ncollectors++;
  return 0;
}

static uint64_t d2u(double d)
{
  uint64_t u;
  memcpy(&u, &d, sizeof(u));
  return u;
}

static double u2d(uint64_t u)
{
  double d;
  memcpy(&d, &u, sizeof(d));
  return d;
}

struct nn_metrics *nn_metrics_create(void)
{
  return calloc(1, sizeof(struct nn_metrics));
}

static void metric_free(struct nn_metric *x)
{
  free(x->name);
  free(x->help);
  free(x->labels);
  free(x->bounds);
  free((void *)x->counts);
  free(x);
}

void nn_metrics_destroy(struct nn_metrics *m)
{
  if (!m)
    return;
  struct nn_metric *x = m->head;
  while (x) {
    struct nn_metric *n = x->next;
    metric_free(x);
    x = n;
  }
  free(m);
}

static struct nn_metric *add(struct nn_metrics *m, enum nn_metric_type type, const char *name,
                             const char *help, const char *labels)
{
  if (!nn_metric_name_valid(name, strlen(name)))
    return NULL;
  struct nn_metric *x = calloc(1, sizeof(*x));
  if (!x)
    return NULL;
  x->type = type;
  x->name = strdup(name);
  x->help = strdup(help ? help : "");
  x->labels = labels && labels[0] ? strdup(labels) : NULL;
  if (!x->name || !x->help || (labels && labels[0] && !x->labels)) {
    metric_free(x);
    return NULL;
  }
  x->next = m->head;
  m->head = x;
  m->n++;
  return x;
}

struct nn_metric *nn_metrics_counter(struct nn_metrics *m, const char *name, const char *help,
                                     const char *labels)
{
  return add(m, NN_METRIC_COUNTER, name, help, labels);
}

struct nn_metric *nn_metrics_gauge(struct nn_metrics *m, const char *name, const char *help,
                                   const char *labels)
{
  return add(m, NN_METRIC_GAUGE, name, help, labels);
}

struct nn_metric *nn_metrics_histogram(struct nn_metrics *m, const char *name, const char *help,
                                       const char *labels, const double *bounds, size_t nbuckets)
{
  struct nn_metric *x = add(m, NN_METRIC_HISTOGRAM, name, help, labels);
  if (!x)
    return NULL;
  x->bounds = malloc(nbuckets * sizeof(double) + 1);
  x->counts = calloc(nbuckets + 1, sizeof(uint64_t));
  if (!x->bounds || !x->counts) {
    /* Leave it registered but inert; render skips nothing, counts stay 0. */
    free(x->bounds);
    free((void *)x->counts);
    x->bounds = NULL;
    x->counts = NULL;
    x->nbuckets = 0;
    return x;
  }
  memcpy(x->bounds, bounds, nbuckets * sizeof(double));
  x->nbuckets = nbuckets;
  return x;
}

struct nn_metric *nn_metrics_func(struct nn_metrics *m, enum nn_metric_type type, const char *name,
                                  const char *help, const char *labels, nn_metric_value_fn fn,
                                  void *ud)
{
  struct nn_metric *x = add(m, type, name, help, labels);
  if (x) {
    x->fn = fn;
    x->ud = ud;
  }
  return x;
}

void nn_metric_add(struct nn_metric *c, double v)
{
  if (!c)
    return;
  uint64_t old = atomic_load_explicit(&c->bits, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(&c->bits, &old, d2u(u2d(old) + v),
                                                memory_order_relaxed, memory_order_relaxed))
    ;
}

void nn_metric_inc(struct nn_metric *c)
{
  nn_metric_add(c, 1);
}

void nn_metric_set(struct nn_metric *g, double v)
{
  if (g)
    atomic_store_explicit(&g->bits, d2u(v), memory_order_relaxed);
}

void nn_metric_observe(struct nn_metric *h, double v)
{
  if (!h || !h->counts)
    return;
  size_t i = 0;
  while (i < h->nbuckets && v > h->bounds[i])
    i++;
  atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
  nn_metric_add(h, v);
}

double nn_metric_value(const struct nn_metric *c)
{
  if (c->fn)
    return c->fn(c->ud);
  return u2d(atomic_load_explicit(&((struct nn_metric *)c)->bits, memory_order_relaxed));
}

int nn_metrics_format_value(double v, char *buf, size_t len)
{
  if (isnan(v))
    return snprintf(buf, len, "NaN") < 0 ? NN_EINVAL : 0;
  if (isinf(v))
    return snprintf(buf, len, v > 0 ? "+Inf" : "-Inf") < 0 ? NN_EINVAL : 0;
  if (v == floor(v) && fabs(v) < 1e15)
    return snprintf(buf, len, "%.0f", v) < 0 ? NN_EINVAL : 0;
  /* Shortest representation that reads back as the same double. */
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, len, "%.*g", prec, v);
    if (strtod(buf, NULL) == v)
      return 0;
  }
  return 0;
}

static int cmp_metric(const void *a, const void *b)
{
  const struct nn_metric *x = *(struct nn_metric *const *)a;
  const struct nn_metric *y = *(struct nn_metric *const *)b;
  int c = strcmp(x->name, y->name);
  if (c)
    return c;
  return strcmp(x->labels ? x->labels : "", y->labels ? y->labels : "");
}

static const char *type_name(enum nn_metric_type t)
{
  switch (t) {
  case NN_METRIC_COUNTER: return "counter";
  case NN_METRIC_GAUGE: return "gauge";
  case NN_METRIC_HISTOGRAM: return "histogram";
  }
  return "untyped";
}

static int help_escape(struct nn_buf *out, const char *s)
{
  int rc = 0;
  for (; rc == 0 && *s; s++) {
    if (*s == '\\')
      rc = nn_buf_append(out, "\\\\", 2);
    else if (*s == '\n')
      rc = nn_buf_append(out, "\\n", 2);
    else
      rc = nn_buf_appendc(out, *s);
  }
  return rc;
}

static int render_series(struct nn_buf *out, const char *name, const char *suffix,
                         const char *labels, const char *extra, double v)
{
  char num[64];
  nn_metrics_format_value(v, num, sizeof(num));
  int has_l = labels && labels[0], has_e = extra && extra[0];
  if (!has_l && !has_e)
    return nn_buf_printf(out, "%s%s %s\n", name, suffix, num);
  return nn_buf_printf(out, "%s%s{%s%s%s} %s\n", name, suffix, has_l ? labels : "",
                       has_l && has_e ? "," : "", has_e ? extra : "", num);
}

int nn_metrics_render(struct nn_metrics *m, struct nn_buf *out)
{
  struct nn_metric **v = malloc((m->n ? m->n : 1) * sizeof(*v));
  if (!v)
    return NN_ENOMEM;
  size_t i = 0;
  for (struct nn_metric *x = m->head; x; x = x->next)
    v[i++] = x;
  qsort(v, m->n, sizeof(*v), cmp_metric);
  int rc = 0;
  for (i = 0; rc == 0 && i < m->n; i++) {
    struct nn_metric *x = v[i];
    if (i == 0 || strcmp(v[i - 1]->name, x->name) != 0) {
      rc = nn_buf_printf(out, "# HELP %s ", x->name);
      if (rc == 0)
        rc = help_escape(out, x->help);
      if (rc == 0)
        rc = nn_buf_printf(out, "\n# TYPE %s %s\n", x->name, type_name(x->type));
    }
    if (rc < 0)
      break;
    if (x->type != NN_METRIC_HISTOGRAM) {
      rc = render_series(out, x->name, "", x->labels, NULL, nn_metric_value(x));
      continue;
    }
    uint64_t cum = 0;
    char le[80];
    for (size_t b = 0; rc == 0 && b <= x->nbuckets && x->counts; b++) {
      cum += atomic_load_explicit(&x->counts[b], memory_order_relaxed);
      char num[64];
      if (b < x->nbuckets)
        nn_metrics_format_value(x->bounds[b], num, sizeof(num));
      snprintf(le, sizeof(le), "le=\"%s\"", b < x->nbuckets ? num : "+Inf");
      rc = render_series(out, x->name, "_bucket", x->labels, le, (double)cum);
    }
    if (rc == 0)
      rc = render_series(out, x->name, "_sum", x->labels, NULL, nn_metric_value(x));
    if (rc == 0)
      rc = render_series(out, x->name, "_count", x->labels, NULL, (double)cum);
  }
  free(v);
  for (size_t c = 0; rc == 0 && c < m->ncollectors; c++)
    rc = m->collectors[c].fn(m->collectors[c].ud, out);
  return rc;
}

/* Process metrics, read from /proc/self at render time. */

static double start_time_seconds;

static double proc_stat_field(int field)
{
  char buf[1024];
  FILE *f = fopen("/proc/self/stat", "r");
  if (!f)
    return NAN;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields after the command name, which is in parentheses and may contain spaces. */
  char *p = strrchr(buf, ')');
  if (!p)
    return NAN;
  p += 2;
  for (int i = 3; i < field && p; i++) {
    p = strchr(p, ' ');
    if (p)
      p++;
  }
  return p ? strtod(p, NULL) : NAN;
}

static double cpu_seconds(void *ud)
{
  long tck = sysconf(_SC_CLK_TCK);
  return (proc_stat_field(14) + proc_stat_field(15)) / (double)(tck > 0 ? tck : 100);
}

static double rss_bytes(void *ud)
{
  return proc_stat_field(24) * (double)sysconf(_SC_PAGESIZE);
}

static double vsize_bytes(void *ud)
{
  return proc_stat_field(23);
}

static double open_fds(void *ud)
{
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return NAN;
  double n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory stream's own fd */
}

static double max_fds(void *ud)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return NAN;
  return (double)rl.rlim_cur;
}

static double start_time(void *ud)
{
  return start_time_seconds;
}

int nn_metrics_add_process(struct nn_metrics *m)
{
  if (start_time_seconds == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    start_time_seconds = (double)ts.tv_sec + ts.tv_nsec / 1e9;
  }
  if (!nn_metrics_func(m, NN_METRIC_COUNTER, "process_cpu_seconds_total",
                       "Total user and system CPU time spent in seconds.", NULL, cpu_seconds,
                       NULL) ||
      !nn_metrics_func(m, NN_METRIC_GAUGE, "process_resident_memory_bytes",
                       "Resident memory size in bytes.", NULL, rss_bytes, NULL) ||
      !nn_metrics_func(m, NN_METRIC_GAUGE, "process_virtual_memory_bytes",
                       "Virtual memory size in bytes.", NULL, vsize_bytes, NULL) ||
      !nn_metrics_func(m, NN_METRIC_GAUGE, "process_open_fds", "Number of open file descriptors.",
                       NULL, open_fds, NULL) ||
      !nn_metrics_func(m, NN_METRIC_GAUGE, "process_max_fds",
                       "Maximum number of open file descriptors.", NULL, max_fds, NULL) ||
      !nn_metrics_func(m, NN_METRIC_GAUGE, "process_start_time_seconds",
                       "Start time of the process since unix epoch in seconds.", NULL, start_time,
                       NULL))
    return NN_ENOMEM;
  return 0;
}
