/* SPDX-License-Identifier: Apache-2.0 */
/* The head and its appender: Prometheus's rejection rules, rollback, hash collisions,
 * truncation, and the memory and CPU cost per series and per sample. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregator/tsdb/internal.h"
#include "aggregator/tsdb/tsdb.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static struct nn_tsdb *open_mem(void)
{
  struct nn_tsdb_options o;
  nn_tsdb_options_default(&o);
  struct nn_tsdb *db = NULL;
  assert_int_equal(nn_tsdb_open(&o, &db), 0);
  return db;
}

static uint64_t bits_of(double d)
{
  uint64_t b;
  memcpy(&b, &d, sizeof(b));
  return b;
}

/* Reads back one series' samples through the querier. */
static size_t read_series(struct nn_tsdb *db, const char *name, int64_t *t, double *v, size_t max)
{
  struct nn_querier q;
  nn_tsdb_querier(db, &q);
  struct nn_matcher m;
  char err[64];
  assert_int_equal(nn_matcher_init(&m, NN_MATCH_EQ, "__name__", name, err, sizeof(err)), 0);
  struct nn_select_hints h = {INT64_MIN, INT64_MAX, 0};
  struct nn_series_set set;
  assert_int_equal(q.select(q.ctx, &m, 1, &h, &set), 0);
  size_t n = 0;
  if (set.n == 1) {
    n = set.series[0].n < max ? set.series[0].n : max;
    memcpy(t, set.series[0].t, n * sizeof(*t));
    memcpy(v, set.series[0].v, n * sizeof(*v));
  }
  set.release(&set);
  nn_matcher_fini(&m);
  return n;
}

static void appender_applies_prometheus_rejection_rules(void **state)
{
  struct nn_tsdb *db = open_mem();
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  struct nn_label ls[] = {{"__name__", "up"}, {"job", "api"}};
  uint64_t ref = 0, ref2 = 0;
  assert_int_equal(nn_tsdb_appender_append(a, ls, 2, 10000, 1, &ref), 0);
  assert_true(ref > 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  /* Older than the newest: out of order, also within one batch. */
  assert_int_equal(nn_tsdb_appender_append(a, ls, 2, 9999, 1, NULL), NN_EOUTOFORDER);
  assert_int_equal(nn_tsdb_appender_append(a, ls, 2, 20000, 2, &ref2), 0);
  assert_int_equal(ref2, ref);
  assert_int_equal(nn_tsdb_appender_append(a, ls, 2, 15000, 2, NULL), NN_EOUTOFORDER);
  /* Same timestamp: identical value accepted and dropped; another value rejected. */
  assert_int_equal(nn_tsdb_appender_append(a, ls, 2, 20000, 2, NULL), 0);
  assert_int_equal(nn_tsdb_appender_append(a, ls, 2, 20000, 3, NULL), NN_EDUPLICATE);
  assert_string_equal(nn_strerror(NN_EDUPLICATE), "duplicate sample for timestamp");
  assert_int_equal(nn_tsdb_appender_pending(a), 1);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  /* Far older than the head's newest sample: out of bounds, even for a new series. */
  struct nn_label other[] = {{"__name__", "other"}};
  assert_int_equal(nn_tsdb_appender_append(a, other, 1, 20000 - 3600 * 1000 - 1, 1, NULL),
                   NN_TSDB_EOUTOFBOUNDS);
  assert_int_equal(nn_tsdb_appender_append(a, other, 1, 20000 - 3600 * 1000, 1, NULL), 0);
  assert_int_equal(nn_tsdb_appender_append_ref(a, ref, 30000, 4), 0);
  assert_int_equal(nn_tsdb_appender_append_ref(a, 987654, 30000, 4), NN_ENOTFOUND);
  assert_int_equal(nn_tsdb_appender_append(a, ls, 0, 1, 1, NULL), NN_EINVAL);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);

  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.series, 2);
  assert_int_equal(st.samples_appended_total, 4);
  assert_int_equal(st.out_of_order_total, 2);
  assert_int_equal(st.duplicate_total, 1);
  assert_int_equal(st.duplicate_identical_total, 1);
  assert_int_equal(st.out_of_bounds_total, 1);
  assert_int_equal(st.max_time, 30000);

  int64_t t[8];
  double v[8];
  assert_int_equal(read_series(db, "up", t, v, 8), 3);
  assert_int_equal(t[0], 10000);
  assert_int_equal(t[1], 20000);
  assert_true(v[1] == 2);
  assert_int_equal(t[2], 30000);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);
}

static void new_series_with_bad_labels_are_rejected(void **state)
{
  struct nn_tsdb *db = open_mem();
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  struct nn_label unsorted[] = {{"job", "a"}, {"__name__", "m"}};
  struct nn_label empty[] = {{"__name__", "m"}, {"job", ""}};
  struct nn_label badname[] = {{"__name__", "m"}, {"bad-name", "x"}};
  struct nn_label badutf8[] = {{"__name__", "m"}, {"v", "\xff"}};
  struct nn_label dup[] = {{"__name__", "m"}, {"a", "1"}, {"a", "2"}};
  assert_int_equal(nn_tsdb_appender_append(a, unsorted, 2, 1000, 1, NULL), NN_EINVAL);
  assert_int_equal(nn_tsdb_appender_append(a, empty, 2, 1000, 1, NULL), NN_EINVAL);
  assert_int_equal(nn_tsdb_appender_append(a, badname, 2, 1000, 1, NULL), NN_EINVAL);
  assert_int_equal(nn_tsdb_appender_append(a, badutf8, 2, 1000, 1, NULL), NN_EINVAL);
  assert_int_equal(nn_tsdb_appender_append(a, dup, 3, 1000, 1, NULL), NN_EINVAL);
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.series, 0);
  assert_int_equal(nn_tsdb_appender_pending(a), 0);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);
}

static void rollback_forgets_uncommitted_samples(void **state)
{
  struct nn_tsdb *db = open_mem();
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  struct nn_tsdb_appender *b = nn_tsdb_appender_create(db);
  struct nn_label ls[] = {{"__name__", "m"}};
  assert_int_equal(nn_tsdb_appender_append(a, ls, 1, 1000, 1, NULL), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  assert_int_equal(nn_tsdb_appender_append(a, ls, 1, 5000, 5, NULL), 0);
  /* Only one appender may hold uncommitted samples. */
  assert_int_equal(nn_tsdb_appender_append(b, ls, 1, 6000, 6, NULL), NN_EAGAIN);
  nn_tsdb_appender_rollback(a);
  /* After the rollback, 2000 is no longer out of order and b may append. */
  assert_int_equal(nn_tsdb_appender_append(b, ls, 1, 2000, 2, NULL), 0);
  assert_int_equal(nn_tsdb_appender_commit(b), 0);
  int64_t t[4];
  double v[4];
  assert_int_equal(read_series(db, "m", t, v, 4), 2);
  assert_int_equal(t[1], 2000);
  /* Destroying an appender with pending samples rolls them back. */
  assert_int_equal(nn_tsdb_appender_append(a, ls, 1, 3000, 3, NULL), 0);
  nn_tsdb_appender_destroy(a);
  assert_int_equal(nn_tsdb_appender_append(b, ls, 1, 2500, 2, NULL), 0);
  assert_int_equal(nn_tsdb_appender_commit(b), 0);
  nn_tsdb_appender_destroy(b);
  nn_tsdb_close(db);
}

static void stale_nan_and_nan_payloads_are_stored_exactly(void **state)
{
  struct nn_tsdb *db = open_mem();
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  struct nn_label ls[] = {{"__name__", "m"}};
  uint64_t want[] = {NN_STALE_NAN_BITS, 0x7ff8000000000000ULL, 0x8000000000000000ULL,
                     0x7ff8dead00000001ULL, 0x3ff0000000000000ULL};
  for (int i = 0; i < 5; i++) {
    double d;
    memcpy(&d, &want[i], sizeof(d));
    assert_int_equal(nn_tsdb_appender_append(a, ls, 1, 1000 * (i + 1), d, NULL), 0);
  }
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  int64_t t[8];
  double v[8];
  assert_int_equal(read_series(db, "m", t, v, 8), 5);
  for (int i = 0; i < 5; i++)
    assert_int_equal(bits_of(v[i]), want[i]);
  assert_true(nn_stale_nan(v[0]));
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);
}

static void hash_collisions_keep_series_apart(void **state)
{
  struct nn_tsdb *db = open_mem();
  struct nn_label x[] = {{"__name__", "x"}};
  struct nn_label y[] = {{"__name__", "y"}};
  /* Two label sets forced onto one hash value. */
  struct nn__tsdb_series *sx = nn__tsdb_series_create(db, 42, x, 1, 0);
  struct nn__tsdb_series *sy = nn__tsdb_series_create(db, 42, y, 1, 0);
  assert_non_null(sx);
  assert_non_null(sy);
  assert_ptr_equal(nn__tsdb_series_get(db, 42, x, 1), sx);
  assert_ptr_equal(nn__tsdb_series_get(db, 42, y, 1), sy);
  struct nn_label z[] = {{"__name__", "z"}};
  assert_null(nn__tsdb_series_get(db, 42, z, 1));
  assert_ptr_equal(nn__tsdb_series_by_ref(db, sy->ref), sy);
  nn_tsdb_close(db);
}

static void chunks_are_cut_and_truncation_frees_old_data(void **state)
{
  struct nn_tsdb *db = open_mem();
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  struct nn_label old[] = {{"__name__", "old"}, {"pod", "gone"}};
  struct nn_label live[] = {{"__name__", "live"}};
  for (int i = 0; i < 300; i++) {
    assert_int_equal(nn_tsdb_appender_append(a, live, 1, i * 1000, i, NULL), 0);
    if (i < 100)
      assert_int_equal(nn_tsdb_appender_append(a, old, 2, i * 1000, i, NULL), 0);
    assert_int_equal(nn_tsdb_appender_commit(a), 0);
  }
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.chunks, 3 + 1); /* live: 120+120+60, old: 100 */
  assert_int_equal(st.series, 2);
  assert_int_equal(nn_tsdb_head_truncate(db, 150 * 1000), 1);
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.series, 1);
  assert_int_equal(st.series_removed_total, 1);
  assert_int_equal(st.chunks, 2);
  assert_int_equal(st.min_time, 120 * 1000);
  int64_t t[400];
  double v[400];
  assert_int_equal(read_series(db, "live", t, v, 400), 180);
  assert_int_equal(t[0], 120 * 1000);
  assert_int_equal(read_series(db, "old", t, v, 400), 0);
  /* The old label value is gone from the index, and the symbol table still works. */
  assert_int_equal(nn__tsdb_sym_find(&db->syms, "gone"), 0);
  assert_int_equal(nn_tsdb_appender_append(a, old, 2, 300 * 1000, 1, NULL), 0);
  assert_int_equal(nn_tsdb_appender_commit(a), 0);
  assert_int_equal(read_series(db, "old", t, v, 400), 1);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);
}

static long rss_bytes(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
      res = 0;
    fclose(f);
  }
  return res * sysconf(_SC_PAGESIZE);
}

/* CPU time, not wall time: other processes on the machine must not skew the figure. */
static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 100k series shaped like a Kubernetes scrape, 120 samples each (one full chunk): prints
 * the resident bytes per series and the append cost per sample. */
static void memory_and_cpu_per_series(void **state)
{
  size_t nseries = SANITIZED ? 10000 : 100000;
  const int samples = 120;
  static const char *methods[] = {"GET", "POST"};
  static const char *codes[] = {"200", "201", "404", "500", "503"};
  struct nn_label(*sets)[7] = malloc(nseries * sizeof(*sets));
  char(*strs)[3][48] = malloc(nseries * sizeof(*strs));
  for (size_t i = 0; i < nseries; i++) {
    snprintf(strs[i][0], 48, "http_requests_%zu_total", i % 50);
    snprintf(strs[i][1], 48, "10.%zu.%zu.%zu:8080", (i / 65536) % 256, (i / 256) % 256, i % 256);
    snprintf(strs[i][2], 48, "/api/v1/resource%zu", (i / 10) % 40);
    struct nn_label *l = sets[i];
    l[0] = (struct nn_label){"__name__", strs[i][0]};
    l[1] = (struct nn_label){"code", codes[i % 5]};
    l[2] = (struct nn_label){"instance", strs[i][1]};
    l[3] = (struct nn_label){"job", "kubernetes-pods"};
    l[4] = (struct nn_label){"method", methods[(i / 5) % 2]};
    l[5] = (struct nn_label){"namespace", "shop"};
    l[6] = (struct nn_label){"path", strs[i][2]};
  }
  long before = rss_bytes();
  struct nn_tsdb *db = open_mem();
  struct nn_tsdb_appender *a = nn_tsdb_appender_create(db);
  double t0 = now_s();
  for (int k = 0; k < samples; k++) {
    for (size_t i = 0; i < nseries; i++) {
      double v = (double)(k * 3 + (int)(i % 7));
      assert_int_equal(
          nn_tsdb_appender_append(a, sets[i], 7, 1700000000000 + (int64_t)k * 15000, v, NULL), 0);
      if (i % 5000 == 4999)
        assert_int_equal(nn_tsdb_appender_commit(a), 0);
    }
    assert_int_equal(nn_tsdb_appender_commit(a), 0);
  }
  double secs = now_s() - t0;
  long after = rss_bytes();
  double per = (double)(after - before) / (double)nseries;
  print_message("%zu series x %d samples: %.0f bytes RSS per series, %.0f CPU ns per "
                "sample appended (labels hashed, looked up, committed)\n",
                nseries, samples, per, secs * 1e9 / ((double)nseries * samples));
  struct nn_tsdb_stats st;
  nn_tsdb_stats(db, &st);
  assert_int_equal(st.series, nseries);
  assert_int_equal(st.samples_appended_total, (uint64_t)nseries * samples);
  if (!SANITIZED)
    assert_true(per < 2000);
  nn_tsdb_appender_destroy(a);
  nn_tsdb_close(db);
  free(sets);
  free(strs);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(appender_applies_prometheus_rejection_rules),
      cmocka_unit_test(new_series_with_bad_labels_are_rejected),
      cmocka_unit_test(rollback_forgets_uncommitted_samples),
      cmocka_unit_test(stale_nan_and_nan_payloads_are_stored_exactly),
      cmocka_unit_test(hash_collisions_keep_series_apart),
      cmocka_unit_test(chunks_are_cut_and_truncation_frees_old_data),
      cmocka_unit_test(memory_and_cpu_per_series),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
