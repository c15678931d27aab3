// SPDX-License-Identifier: Apache-2.0
/* Driver for bench/slo.sh. Two modes:
 *
 *   slo_bench N ITERATIONS        the ledger maths alone: one evaluation cycle of every window
 *                                 pair of N SLOs computed from their ledgers (nn_slo_bench),
 *                                 and the memory one SLO holds for a 30-day period.
 *   slo_bench --full N CYCLES     the whole engine: a store in a temporary directory holding
 *                                 http_requests_total{job="sI",code="200"|"500"} for N jobs
 *                                 (10 minutes of 5 s samples, 100 req/s, 0.2% errors), N
 *                                 native availability SLOs over them (selector {job="sI"},
 *                                 page and ticket tiers), evaluated every 10 s exactly as the
 *                                 aggregator's timer does (nn_slo_eval_at: the two SLI queries
 *                                 per SLO, ledger, slo:* series written and committed, alert
 *                                 state). New samples are appended between cycles (not timed)
 *                                 so every cycle reads fresh data. Reports the median and every
 *                                 cycle's time after two warm-up cycles (the first replays the
 *                                 stored history).
 *
 * Each prints one JSON object on stdout. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/slo/internal.h"
#include "aggregator/slo/slo.h"
#include "aggregator/tsdb/tsdb.h"
#include "common/buf.h"
#include "common/log.h"

static int parse_size(const char *s, size_t *out)
{
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || *end || v == 0 || v > 1000000)
    return -1;
  *out = (size_t)v;
  return 0;
}

static int ledger_mode(size_t n, size_t iters)
{
  double ns = nn_slo_bench(n, iters);
  if (ns < 0) {
    fprintf(stderr, "slo_bench: nn_slo_bench failed (%d)\n", (int)ns);
    return 1;
  }
  struct nn_slo_ledger l;
  if (nn__slo_ledger_init(&l, 30 * 1440, 0) < 0) {
    fprintf(stderr, "slo_bench: ledger init failed\n");
    return 1;
  }
  /* The runtime struct holds the ledger struct inline; count it once. */
  size_t bytes = nn__slo_ledger_bytes(&l) - sizeof(l) + sizeof(struct nn_slo_rt);
  nn__slo_ledger_fini(&l);
  printf("{\"slos\": %zu, \"ns_per_cycle\": %.0f, \"bytes_per_slo\": %zu}\n", n, ns, bytes);
  return 0;
}

/* ---- Full cycle ------------------------------------------------------------------------ */

#define STEP_MS    10000 /* evaluation interval */
#define SAMPLE_MS  5000  /* sample spacing: a [10s] window (left-open) holds two */
#define HISTORY_MS (10 * 60000)
#define RPS        100.0
#define ERR_SHARE  0.002

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static double now_ns(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b);

static double cpu_ns(void)
{
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double median(const double *v, size_t n)
{
  double *s = malloc(n * sizeof(double));
  if (!s)
    return -1;
  memcpy(s, v, n * sizeof(double));
  qsort(s, n, sizeof(double), cmp_double);
  double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  free(s);
  return m;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Appends one sample per series at t (counters at RPS and ERR_SHARE since t0). refs holds
 * 2n series ids, filled on the first call. */
static int append_counters(struct nn_tsdb *db, size_t n, uint64_t *refs, bool have_refs, int64_t t0,
                           int64_t t)
{
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  if (!a)
    return -1;
  double secs = (double)(t - t0) / 1000.0;
  double ok = 1e6 + secs * RPS * (1 - ERR_SHARE), er = 1e3 + secs * RPS * ERR_SHARE;
  char job[32];
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (have_refs) {
      rc = nn_tsdb_appender_append_ref(a, refs[2 * i], t, ok);
      if (rc == 0)
        rc = nn_tsdb_appender_append_ref(a, refs[2 * i + 1], t, er);
      continue;
    }
    snprintf(job, sizeof(job), "s%zu", i);
    struct nn_label l200[] = {{"__name__", "http_requests_total"}, {"code", "200"}, {"job", job}};
    struct nn_label l500[] = {{"__name__", "http_requests_total"}, {"code", "500"}, {"job", job}};
    rc = nn_tsdb_appender_append(a, l200, 3, t, ok, &refs[2 * i]);
    if (rc == 0)
      rc = nn_tsdb_appender_append(a, l500, 3, t, er, &refs[2 * i + 1]);
  }
  if (rc == 0)
    rc = nn_tsdb_appender_commit(a);
  nn_tsdb_appender_destroy(a);
  return rc;
}

/* Alerts handed to the notifier (as the aggregator's, minus the HTTP): counted only. */
static size_t notified;
static void on_notify(void *ud, const struct nn_notifier_alert *alerts, size_t n)
{
  (void)ud;
  (void)alerts;
  notified += n;
}

static int full_mode(size_t n, size_t cycles)
{
  char dir[] = "/tmp/nines-slo-bench.XXXXXX";
  if (!mkdtemp(dir)) {
    perror("slo_bench: mkdtemp");
    return 1;
  }
  int ret = 1;
  struct nn_tsdb *db = NULL;
  struct nn_slo_engine *e = NULL;
  double *ns = calloc(cycles, sizeof(double)), *cpu = calloc(cycles, sizeof(double));
  uint64_t *refs = calloc(2 * n, sizeof(uint64_t));
  struct nn_buf spec;
  nn_buf_init(&spec, 1 << 30);
  if (!ns || !cpu || !refs)
    goto out;

  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  o.dir = dir;
  o.wal_fsync = false;
  if (nn_tsdb_open(&o, &db) < 0) {
    fprintf(stderr, "slo_bench: cannot open the store in %s\n", dir);
    goto out;
  }
  int64_t t0 = (int64_t)1700000000000LL; /* aligned to 10 s and 1 min */
  int64_t t = t0;
  for (; t <= t0 + HISTORY_MS; t += SAMPLE_MS)
    if (append_counters(db, n, refs, t > t0, t0, t) < 0) {
      fprintf(stderr, "slo_bench: appending the history failed\n");
      goto out;
    }

  /* The SLOs bench/slo.sh gives the aggregator. */
  nn_buf_appends(&spec, "version: nines/v1\nservice: bench\nperiod: 30d\nslos:\n");
  for (size_t i = 0; i < n; i++)
    nn_buf_printf(&spec,
                  "  - name: slo%zu\n    objective: 99.9\n    sli: {availability: {metric: "
                  "http_requests_total, selector: '{job=\"s%zu\"}'}}\n",
                  i, i);
  struct nn_slo_config cfg;
  struct nn_cfg_error cerr;
  memset(&cfg, 0, sizeof(cfg));
  if (nn_cfg_apply_defaults(nn_slo_config_options, &cfg, &cerr) < 0)
    goto out;
  cfg.evaluation_interval_ms = STEP_MS;
  cfg.persist = false;
  struct nn_slo_opts so = {.db = db, .cfg = &cfg, .notify = on_notify};
  e = nn_slo_create(&so);
  nn_cfg_free(nn_slo_config_options, &cfg);
  struct nn_slo_set *set;
  char err[512];
  if (!e || nn_slo_set_load_string("bench.yml", spec.data, spec.len, &set, err, sizeof(err)) < 0 ||
      nn_slo_reload_set(e, set, err, sizeof(err)) < 0) {
    fprintf(stderr, "slo_bench: loading the SLOs failed: %s\n", err);
    goto out;
  }

  /* Two warm-up cycles (the first replays the history into the ledgers), then the timed
   * ones; each sees one fresh sample per series. */
  t -= SAMPLE_MS; /* the newest sample */
  for (size_t c = 0; c < cycles + 2; c++) {
    t += STEP_MS;
    if (append_counters(db, n, refs, true, t0, t - SAMPLE_MS) < 0 ||
        append_counters(db, n, refs, true, t0, t) < 0) {
      fprintf(stderr, "slo_bench: appending failed\n");
      goto out;
    }
    double a = now_ns(), ca = cpu_ns();
    int rc = nn_slo_eval_at(e, t);
    double b = now_ns(), cb = cpu_ns();
    if (rc < 0) {
      fprintf(stderr, "slo_bench: evaluation failed (%d)\n", rc);
      goto out;
    }
    if (c >= 2) {
      ns[c - 2] = b - a;
      cpu[c - 2] = cb - ca;
    }
  }
  struct nn_slo_status st;
  if (nn_slo_get_status(e, "bench-slo0", &st) < 0 || !(st.error_ratio[0] > 0.0019) ||
      !(st.error_ratio[0] < 0.0021)) {
    fprintf(stderr, "slo_bench: unexpected 5m error ratio %g\n", st.error_ratio[0]);
    goto out;
  }
  struct nn_slo_stats ss;
  nn_slo_stats(e, &ss);
  printf("{\"slos\": %zu, \"mode\": \"full\", \"ns_per_cycle\": %.0f, \"cpu_ns_per_cycle\": %.0f, "
         "\"ledger_bytes_per_slo\": %zu, \"alerts_notified\": %zu, \"cycles_ns\": [",
         n, median(ns, cycles), median(cpu, cycles), ss.ledger_bytes / n, notified);
  for (size_t c = 0; c < cycles; c++)
    printf("%s%.0f", c ? ", " : "", ns[c]);
  printf("]}\n");
  ret = 0;
out:
  nn_slo_destroy(e);
  nn_tsdb_close(db);
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  nn_buf_fini(&spec);
  free(ns);
  free(cpu);
  free(refs);
  return ret;
}

int main(int argc, char **argv)
{
  size_t n, iters;
  bool full = argc == 4 && !strcmp(argv[1], "--full");
  if ((argc != 3 && !full) || parse_size(argv[argc - 2], &n) < 0 ||
      parse_size(argv[argc - 1], &iters) < 0) {
    fprintf(stderr, "usage: slo_bench [--full] N_SLOS ITERATIONS (1..1000000 each)\n");
    return 2;
  }
  return full ? full_mode(n, iters) : ledger_mode(n, iters);
}
